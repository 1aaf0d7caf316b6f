/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tcmu_admin.c: tcmu-admin, the operator's view of a running tcmu-runner:
 * its devices, what each has done (commands, bytes, latency percentiles,
 * errors), a refreshing per-device rate view, the run-time log level and
 * the Prometheus metrics. It only talks D-Bus (the daemon's status objects,
 * core/dbus_status.c), so it works the same on an installed service and in
 * the tests, and anyone may read; changing the log level takes root.
 */
#include <errno.h>
#include <gio/gio.h>
#include <inttypes.h>
#include <json-glib/json-glib.h>
#include <locale.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin_daemon.h"
#include "histogram.h"

static const char usage_text[] =
	"Usage: tcmu-admin [--json] COMMAND [ARGUMENTS]\n"
	"\n"
	"Shows what a running tcmu-runner and its devices are doing, over D-Bus\n"
	"(service " SERVICE " on the system bus).\n"
	"\n"
	"Commands:\n"
	"  status              the daemon: version, uptime, handlers, workers, ring\n"
	"                      polling window, log level, number of devices\n"
	"  list                every device: name, handler, size, state, config string\n"
	"  stats [DEVICE...]   per device and command kind: commands, bytes, latency\n"
	"                      p50/p99/p99.9, and errors by sense key; DEVICE is a\n"
	"                      name (test_0) or a backstore (user_0/test_0)\n"
	"  top [-i SECONDS] [-n COUNT]\n"
	"                      per device every SECONDS (default 1): reads and writes\n"
	"                      per second, MB/s, p99 latency in that interval,\n"
	"                      commands in flight; COUNT samples, then exit (default:\n"
	"                      until interrupted). On a terminal the screen is\n"
	"                      redrawn, otherwise one table per sample is appended\n"
	"  log-level LEVEL     set the daemon's log level now (0 crit .. 5 every SCSI\n"
	"                      command); root only; tcmu.conf's log_level applies\n"
	"                      again when that file changes\n"
	"  metrics             the statistics in Prometheus' text format\n"
	"\n"
	"Options:\n"
	"  --json              status, list and stats as JSON (schema:\n"
	"                      tcmu-admin.schema.json in the documentation)\n"
	"  -h, --help          this text\n"
	"\n"
	"Exit status: 0 on success, 1 when the daemon cannot be asked or refuses,\n"
	"2 on a usage error.\n";

/* "64.0 MiB", as targetcli prints sizes (g_format_size's no-break space would not grep). */
static char *human_size(uint64_t bytes)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double value = (double)bytes;
	size_t unit = 0;

	if (bytes < 1024)
		return g_strdup_printf("%" PRIu64 " B", bytes);
	value /= 1024;
	while (value >= 1024 && unit + 1 < G_N_ELEMENTS(units)) {
		value /= 1024;
		unit++;
	}
	return g_strdup_printf("%.1f %s", value, units[unit]);
}

static void print_json(JsonBuilder *builder)
{
	g_autoptr(JsonGenerator) generator = json_generator_new();
	g_autoptr(JsonNode) root = json_builder_get_root(builder);
	g_autofree char *text = NULL;

	json_generator_set_pretty(generator, TRUE);
	json_generator_set_root(generator, root);
	text = json_generator_to_data(generator, NULL);
	puts(text);
}

/* ---- status ---- */

static int command_status(GVariant *daemon, bool json)
{
	g_autoptr(GVariant) handlers = g_variant_lookup_value(daemon, "Handlers",
							      G_VARIANT_TYPE("as"));
	g_autoptr(GVariant) devices = g_variant_lookup_value(daemon, "Devices",
							     G_VARIANT_TYPE("ao"));
	g_autofree const char **handler_names = handlers ? g_variant_get_strv(handlers, NULL) : NULL;
	g_autofree char *handler_list = NULL;
	const char *version = "";
	uint64_t start_us = lookup_u64(daemon, "StartTime");
	uint64_t uptime_s = (uint64_t)(g_get_real_time() - (gint64)start_us) / 1000000;
	uint32_t workers = 0, poll_us = 0;
	int32_t log_level = 0;

	g_variant_lookup(daemon, "Version", "&s", &version);
	g_variant_lookup(daemon, "Workers", "u", &workers);
	g_variant_lookup(daemon, "RingPollMaxUs", "u", &poll_us);
	g_variant_lookup(daemon, "LogLevel", "i", &log_level);
	handler_list = handler_names ? g_strjoinv(" ", (char **)handler_names) : g_strdup("");
	if (json) {
		g_autoptr(JsonBuilder) builder = json_builder_new();

		json_builder_begin_object(builder);
		json_builder_set_member_name(builder, "version");
		json_builder_add_string_value(builder, version);
		json_builder_set_member_name(builder, "uptime_seconds");
		json_builder_add_int_value(builder, (gint64)uptime_s);
		json_builder_set_member_name(builder, "handlers");
		json_builder_begin_array(builder);
		for (size_t i = 0; handler_names && handler_names[i]; i++)
			json_builder_add_string_value(builder, handler_names[i]);
		json_builder_end_array(builder);
		json_builder_set_member_name(builder, "workers");
		json_builder_add_int_value(builder, workers);
		json_builder_set_member_name(builder, "ring_poll_max_us");
		json_builder_add_int_value(builder, poll_us);
		json_builder_set_member_name(builder, "log_level");
		json_builder_add_int_value(builder, log_level);
		json_builder_set_member_name(builder, "devices");
		json_builder_add_int_value(builder, devices ? (gint64)g_variant_n_children(devices) : 0);
		json_builder_end_object(builder);
		print_json(builder);
		return 0;
	}
	printf("version:       %s\n", version);
	printf("uptime:        %" PRIu64 "d %02" PRIu64 ":%02" PRIu64 ":%02" PRIu64 "\n",
	       uptime_s / 86400, uptime_s / 3600 % 24, uptime_s / 60 % 60, uptime_s % 60);
	printf("handlers:      %s\n", handler_list);
	printf("workers:       %u\n", workers);
	printf("ring polling:  up to %u us\n", poll_us);
	printf("log level:     %d\n", log_level);
	printf("devices:       %zu\n", devices ? g_variant_n_children(devices) : (size_t)0);
	return 0;
}

/* ---- list ---- */

static void json_add_device_identity(JsonBuilder *builder, const struct device *device)
{
	json_builder_set_member_name(builder, "name");
	json_builder_add_string_value(builder, device->name);
	json_builder_set_member_name(builder, "backstore");
	json_builder_add_string_value(builder, device->backstore);
	json_builder_set_member_name(builder, "handler");
	json_builder_add_string_value(builder, device->handler);
	json_builder_set_member_name(builder, "size_bytes");
	json_builder_add_int_value(builder, (gint64)device->size);
	json_builder_set_member_name(builder, "config");
	json_builder_add_string_value(builder, device->config);
	json_builder_set_member_name(builder, "state");
	json_builder_add_string_value(builder, device->state);
	json_builder_set_member_name(builder, "state_reason");
	json_builder_add_string_value(builder, device->state_reason);
}

static int command_list(GVariant *daemon, bool json)
{
	struct device *devices;
	size_t count;

	if (devices_read(daemon, NULL, &devices, &count))
		return 1;
	if (json) {
		g_autoptr(JsonBuilder) builder = json_builder_new();

		json_builder_begin_array(builder);
		for (size_t i = 0; i < count; i++) {
			json_builder_begin_object(builder);
			json_add_device_identity(builder, &devices[i]);
			json_builder_end_object(builder);
		}
		json_builder_end_array(builder);
		print_json(builder);
	} else {
		printf("%-24s %-8s %10s %-12s %s\n", "DEVICE", "HANDLER", "SIZE", "STATE", "CONFIG");
		for (size_t i = 0; i < count; i++) {
			g_autofree char *size = human_size(devices[i].size);

			printf("%-24s %-8s %10s %-12s %s\n", devices[i].backstore, devices[i].handler,
			       size, devices[i].state, devices[i].config);
		}
	}
	devices_release(devices, count);
	return 0;
}

/* ---- stats ---- */

static const double quantiles[] = { 0.5, 0.99, 0.999 };
static const char *const quantile_names[] = { "p50", "p99", "p999" };

static void json_add_stats(JsonBuilder *builder, const struct device *device,
			   const uint64_t bounds[HISTOGRAM_BUCKETS])
{
	g_autoptr(GVariant) errors = g_variant_lookup_value(device->properties, "Errors",
							    G_VARIANT_TYPE("a{st}"));
	GVariantIter iter;
	const char *key;
	guint64 value;

	json_builder_set_member_name(builder, "in_flight");
	json_builder_add_int_value(builder, device->in_flight);
	json_builder_set_member_name(builder, "in_flight_max");
	json_builder_add_int_value(builder, device->in_flight_max);
	json_builder_set_member_name(builder, "last_command_time_us");
	json_builder_add_int_value(builder, (gint64)lookup_u64(device->properties, "LastCommandTime"));
	json_builder_set_member_name(builder, "last_error_time_us");
	json_builder_add_int_value(builder, (gint64)lookup_u64(device->properties, "LastErrorTime"));
	json_builder_set_member_name(builder, "kinds");
	json_builder_begin_object(builder);
	for (size_t k = 0; k < ADMIN_KIND_COUNT; k++) {
		uint64_t buckets[HISTOGRAM_BUCKETS];

		device_buckets(device, admin_kinds[k], buckets);
		json_builder_set_member_name(builder, admin_kinds[k]);
		json_builder_begin_object(builder);
		json_builder_set_member_name(builder, "commands");
		json_builder_add_int_value(builder, (gint64)device_kind_value(device, "Commands", admin_kinds[k]));
		json_builder_set_member_name(builder, "bytes");
		json_builder_add_int_value(builder, (gint64)device_kind_value(device, "Bytes", admin_kinds[k]));
		json_builder_set_member_name(builder, "latency_sum_seconds");
		json_builder_add_double_value(builder,
			(double)device_kind_value(device, "LatencySumNs", admin_kinds[k]) / 1e9);
		for (size_t q = 0; q < G_N_ELEMENTS(quantiles); q++) {
			g_autofree char *name = g_strdup_printf("latency_%s_seconds", quantile_names[q]);

			json_builder_set_member_name(builder, name);
			json_builder_add_double_value(builder,
				(double)histogram_percentile_ns(buckets, bounds, HISTOGRAM_BUCKETS,
								quantiles[q]) / 1e9);
		}
		json_builder_end_object(builder);
	}
	json_builder_end_object(builder);
	json_builder_set_member_name(builder, "errors");
	json_builder_begin_object(builder);
	if (errors) {
		g_variant_iter_init(&iter, errors);
		while (g_variant_iter_next(&iter, "{&st}", &key, &value)) {
			json_builder_set_member_name(builder, key);
			json_builder_add_int_value(builder, (gint64)value);
		}
	}
	json_builder_end_object(builder);
}

static void print_latency(uint64_t nanoseconds)
{
	if (nanoseconds >= 1000000000ULL)
		printf(" %8.2fs ", (double)nanoseconds / 1e9);
	else if (nanoseconds >= 1000000)
		printf(" %7.2fms ", (double)nanoseconds / 1e6);
	else
		printf(" %7.1fus ", (double)nanoseconds / 1e3);
}

static void print_stats(const struct device *device, const uint64_t bounds[HISTOGRAM_BUCKETS])
{
	g_autoptr(GVariant) errors = g_variant_lookup_value(device->properties, "Errors",
							    G_VARIANT_TYPE("a{st}"));
	g_autofree char *size = human_size(device->size);
	bool any_error = false;
	GVariantIter iter;
	const char *key;
	guint64 value;

	printf("%s (%s, %s, %s%s%s), in flight %u (most %u)\n", device->backstore, device->handler,
	       size, device->state, *device->state_reason ? ": " : "", device->state_reason,
	       device->in_flight, device->in_flight_max);
	printf("  %-18s %12s %14s %10s %10s %10s\n", "KIND", "COMMANDS", "BYTES", "P50", "P99",
	       "P99.9");
	for (size_t k = 0; k < ADMIN_KIND_COUNT; k++) {
		uint64_t commands = device_kind_value(device, "Commands", admin_kinds[k]);
		uint64_t buckets[HISTOGRAM_BUCKETS];

		if (!commands)
			continue;
		device_buckets(device, admin_kinds[k], buckets);
		printf("  %-18s %12" PRIu64 " %14" PRIu64, admin_kinds[k], commands,
		       device_kind_value(device, "Bytes", admin_kinds[k]));
		for (size_t q = 0; q < G_N_ELEMENTS(quantiles); q++)
			print_latency(histogram_percentile_ns(buckets, bounds, HISTOGRAM_BUCKETS,
							      quantiles[q]));
		putchar('\n');
	}
	printf("  errors:");
	if (errors) {
		g_variant_iter_init(&iter, errors);
		while (g_variant_iter_next(&iter, "{&st}", &key, &value)) {
			if (value) {
				printf(" %s=%" PRIu64, key, value);
				any_error = true;
			}
		}
	}
	printf("%s\n", any_error ? "" : " none");
}

static int command_stats(GVariant *daemon, char **wanted, bool json)
{
	uint64_t bounds[HISTOGRAM_BUCKETS];
	struct device *devices;
	size_t count;

	if (devices_read(daemon, wanted, &devices, &count))
		return 1;
	bucket_bounds(daemon, bounds);
	if (json) {
		g_autoptr(JsonBuilder) builder = json_builder_new();

		json_builder_begin_array(builder);
		for (size_t i = 0; i < count; i++) {
			json_builder_begin_object(builder);
			json_add_device_identity(builder, &devices[i]);
			json_add_stats(builder, &devices[i], bounds);
			json_builder_end_object(builder);
		}
		json_builder_end_array(builder);
		print_json(builder);
	} else {
		for (size_t i = 0; i < count; i++) {
			if (i)
				putchar('\n');
			print_stats(&devices[i], bounds);
		}
	}
	devices_release(devices, count);
	return 0;
}

/* ---- top ---- */

/* What top compares between two samples of one device. */
struct rates {
	char *backstore;
	uint64_t reads, writes, read_bytes, write_bytes;
	uint64_t buckets[HISTOGRAM_BUCKETS];	/* every kind together */
};

static void rates_take(const struct device *device, struct rates *ret_rates)
{
	ret_rates->backstore = g_strdup(device->backstore);
	ret_rates->reads = device_kind_value(device, "Commands", "read");
	ret_rates->writes = device_kind_value(device, "Commands", "write");
	ret_rates->read_bytes = device_kind_value(device, "Bytes", "read");
	ret_rates->write_bytes = device_kind_value(device, "Bytes", "write");
	memset(ret_rates->buckets, 0, sizeof(ret_rates->buckets));
	for (size_t k = 0; k < ADMIN_KIND_COUNT; k++) {
		uint64_t buckets[HISTOGRAM_BUCKETS];

		device_buckets(device, admin_kinds[k], buckets);
		for (unsigned int b = 0; b < HISTOGRAM_BUCKETS; b++)
			ret_rates->buckets[b] += buckets[b];
	}
}

static int command_top(GVariant *daemon, double interval, long count)
{
	bool terminal = isatty(STDOUT_FILENO);
	struct rates *previous = NULL;
	size_t previous_count = 0;
	uint64_t bounds[HISTOGRAM_BUCKETS];
	gint64 previous_time = 0;
	int result = 0;

	bucket_bounds(daemon, bounds);
	/* The first sample is the baseline: a rate needs two. */
	for (long sample = 0; count < 0 || sample <= count; sample++) {
		g_autoptr(GVariant) now_daemon = get_all(DAEMON_PATH, DAEMON_INTERFACE);
		struct device *devices;
		struct rates *current;
		size_t device_count;
		gint64 now;
		double seconds;

		if (!now_daemon || devices_read(now_daemon, NULL, &devices, &device_count)) {
			result = 1;
			break;
		}
		now = g_get_monotonic_time();
		current = g_new0(struct rates, device_count ? device_count : 1);
		for (size_t i = 0; i < device_count; i++)
			rates_take(&devices[i], &current[i]);
		seconds = (double)(now - previous_time) / 1e6;
		if (sample > 0) {
			if (terminal)
				fputs("\033[H\033[2J", stdout);
			printf("%-24s %-8s %9s %9s %9s %9s %10s %8s %s\n", "DEVICE", "HANDLER", "R/S",
			       "W/S", "RMB/S", "WMB/S", "P99_MS", "INFLIGHT", "STATE");
			for (size_t i = 0; i < device_count; i++) {
				const struct rates *before = NULL;
				uint64_t delta[HISTOGRAM_BUCKETS];

				for (size_t j = 0; j < previous_count; j++)
					if (strcmp(previous[j].backstore, current[i].backstore) == 0)
						before = &previous[j];
				/* A device new in this interval counts from zero. */
				for (unsigned int b = 0; b < HISTOGRAM_BUCKETS; b++)
					delta[b] = current[i].buckets[b] - (before ? before->buckets[b] : 0);
				printf("%-24s %-8s %9.1f %9.1f %9.2f %9.2f %10.3f %8u %s\n",
				       devices[i].backstore, devices[i].handler,
				       (double)(current[i].reads - (before ? before->reads : 0)) / seconds,
				       (double)(current[i].writes - (before ? before->writes : 0)) / seconds,
				       (double)(current[i].read_bytes - (before ? before->read_bytes : 0)) /
					       seconds / 1e6,
				       (double)(current[i].write_bytes - (before ? before->write_bytes : 0)) /
					       seconds / 1e6,
				       (double)histogram_percentile_ns(delta, bounds, HISTOGRAM_BUCKETS,
								       0.99) / 1e6,
				       devices[i].in_flight, devices[i].state);
			}
			if (!terminal)
				putchar('\n');
			fflush(stdout);
		}
		for (size_t j = 0; j < previous_count; j++)
			g_free(previous[j].backstore);
		g_free(previous);
		previous = current;
		previous_count = device_count;
		previous_time = now;
		devices_release(devices, device_count);
		if (count >= 0 && sample == count)
			break;
		g_usleep((gulong)(interval * 1e6));
	}
	for (size_t j = 0; j < previous_count; j++)
		g_free(previous[j].backstore);
	g_free(previous);
	return result;
}

/* ---- log-level, metrics ---- */

static int command_log_level(const char *text)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	const char *reason;
	char *end;
	long level;
	int status;

	errno = 0;
	level = strtol(text, &end, 10);
	if (errno || end == text || *end || level < 0 || level > 5) {
		fail("log-level takes 0 to 5, not '%s'", text);
		return 2;
	}
	reply = g_dbus_connection_call_sync(bus, SERVICE, DAEMON_PATH, DAEMON_INTERFACE,
					    "SetLogLevel", g_variant_new("(i)", (int)level),
					    G_VARIANT_TYPE("(is)"), G_DBUS_CALL_FLAGS_NONE,
					    CALL_TIMEOUT_MS, NULL, &error);
	if (!reply) {
		if (g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED))
			return fail("only root may change the log level (%s)", error->message);
		return fail("SetLogLevel: %s", error->message);
	}
	g_variant_get(reply, "(i&s)", &status, &reason);
	if (status < 0)
		return fail("the daemon refused: %s", reason);
	return 0;
}

static int command_metrics(GVariant *daemon)
{
	const char *text = "";

	g_variant_lookup(daemon, "Metrics", "&s", &text);
	fputs(text, stdout);
	return 0;
}

int main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) daemon = NULL;
	bool json = false;
	const char *command;
	int argi = 1, result;

	setlocale(LC_ALL, "");
	for (; argi < argc && argv[argi][0] == '-'; argi++) {
		if (strcmp(argv[argi], "--json") == 0) {
			json = true;
		} else if (strcmp(argv[argi], "-h") == 0 || strcmp(argv[argi], "--help") == 0) {
			fputs(usage_text, stdout);
			return 0;
		} else {
			fail("unknown option '%s'", argv[argi]);
			fputs(usage_text, stderr);
			return 2;
		}
	}
	if (argi >= argc) {
		fputs(usage_text, stderr);
		return 2;
	}
	command = argv[argi++];
	if (strcmp(command, "log-level") == 0 && argc - argi != 1) {
		fail("log-level takes one argument, the level (0 to 5)");
		return 2;
	}
	if (strcmp(command, "status") != 0 && strcmp(command, "list") != 0 &&
	    strcmp(command, "stats") != 0 && strcmp(command, "top") != 0 &&
	    strcmp(command, "log-level") != 0 && strcmp(command, "metrics") != 0) {
		fail("unknown command '%s'", command);
		fputs(usage_text, stderr);
		return 2;
	}

	bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
	if (!bus)
		return fail("no system bus: %s", error->message);
	if (strcmp(command, "log-level") == 0) {
		result = command_log_level(argv[argi]);
		goto out;
	}
	daemon = get_all(DAEMON_PATH, DAEMON_INTERFACE);
	if (!daemon) {
		result = 1;
		goto out;
	}
	if (strcmp(command, "status") == 0) {
		result = command_status(daemon, json);
	} else if (strcmp(command, "list") == 0) {
		result = command_list(daemon, json);
	} else if (strcmp(command, "stats") == 0) {
		result = command_stats(daemon, argv + argi, json);
	} else if (strcmp(command, "metrics") == 0) {
		result = command_metrics(daemon);
	} else {
		double interval = 1;
		long count = -1;
		int option;

		optind = argi;
		while ((option = getopt(argc, argv, "i:n:")) != -1) {
			char *end;

			if (option == 'i') {
				interval = strtod(optarg, &end);
				if (*end || !(interval >= 0.1 && interval <= 3600)) {
					fail("top -i takes 0.1 to 3600 seconds, not '%s'", optarg);
					result = 2;
					goto out;
				}
			} else if (option == 'n') {
				count = strtol(optarg, &end, 10);
				if (*end || count < 1) {
					fail("top -n takes a positive count, not '%s'", optarg);
					result = 2;
					goto out;
				}
			} else {
				result = 2;
				goto out;
			}
		}
		result = command_top(daemon, interval, count);
	}
out:
	g_clear_object(&bus);
	return result;
}
