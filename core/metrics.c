/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.c: the devices' statistics in Prometheus' text exposition format
 * (version 0.0.4), for the D-Bus property that tcmu-admin prints and for
 * node_exporter's textfile collector, which reads a file that the daemon
 * replaces atomically (written beside it, then renamed) every few seconds
 * while `metrics_textfile` is set in tcmu.conf. Names, units and labels
 * follow Prometheus' conventions: counters end in _total, durations are in
 * seconds, every device series carries the labels device and handler.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tcmu_internal.h"

#define METRICS_TEXTFILE_INTERVAL_S 10

static uint64_t daemon_start_us;
static char *textfile_path;
static unsigned int textfile_timer;

void metrics_daemon_started(void)
{
	daemon_start_us = (uint64_t)g_get_real_time();
}

uint64_t metrics_daemon_start_us(void)
{
	return daemon_start_us;
}

/* A label value: backslash, double quote and newline escaped. */
static void append_label_value(GString *out, const char *value)
{
	for (; *value; value++) {
		if (*value == '\\' || *value == '"')
			g_string_append_c(out, '\\');
		if (*value == '\n')
			g_string_append(out, "\\n");
		else
			g_string_append_c(out, *value);
	}
}

static void append_device_labels(GString *out, const struct tcmu_device *dev)
{
	g_string_append(out, "device=\"");
	append_label_value(out, dev->backstore);
	g_string_append(out, "\",handler=\"");
	append_label_value(out, dev->subtype);
	g_string_append_c(out, '"');
}

static void append_header(GString *out, const char *name, const char *type, const char *help)
{
	g_string_append_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One device's snapshot, taken once so that every series of a scrape agrees. */
struct device_sample {
	const struct tcmu_device *dev;
	struct device_stats stats;
	uint32_t in_flight;
	enum tcmu_device_state state;
};

static void append_per_kind(GString *out, const struct device_sample *samples, size_t count,
			    const char *name, size_t offset)
{
	for (size_t i = 0; i < count; i++) {
		for (unsigned int kind = 0; kind < STATS_KIND_COUNT; kind++) {
			const uint8_t *counters = (const uint8_t *)&samples[i].stats.kinds[kind];
			uint64_t value;

			memcpy(&value, counters + offset, sizeof(value));
			g_string_append_printf(out, "%s{", name);
			append_device_labels(out, samples[i].dev);
			g_string_append_printf(out, ",kind=\"%s\"} %" PRIu64 "\n",
					       stats_kind_name(kind), value);
		}
	}
}

static void append_latency_histograms(GString *out, const struct device_sample *samples,
				      size_t count)
{
	const char *name = "tcmu_command_duration_seconds";

	append_header(out, name, "histogram",
		      "Time from a command's arrival on the ring to its completion.");
	for (size_t i = 0; i < count; i++) {
		for (unsigned int kind = 0; kind < STATS_KIND_COUNT; kind++) {
			const struct stats_kind_counters *counters = &samples[i].stats.kinds[kind];
			uint64_t cumulative = 0;

			for (unsigned int bucket = 0; bucket < STATS_LATENCY_BUCKETS; bucket++) {
				cumulative += counters->latency_buckets[bucket];
				g_string_append_printf(out, "%s_bucket{", name);
				append_device_labels(out, samples[i].dev);
				g_string_append_printf(out, ",kind=\"%s\",le=\"%.9g\"} %" PRIu64 "\n",
						       stats_kind_name(kind),
						       (double)histogram_bound_ns(bucket) / 1e9,
						       cumulative);
			}
			g_string_append_printf(out, "%s_bucket{", name);
			append_device_labels(out, samples[i].dev);
			g_string_append_printf(out, ",kind=\"%s\",le=\"+Inf\"} %" PRIu64 "\n",
					       stats_kind_name(kind), counters->commands);
			g_string_append_printf(out, "%s_sum{", name);
			append_device_labels(out, samples[i].dev);
			g_string_append_printf(out, ",kind=\"%s\"} %.9f\n", stats_kind_name(kind),
					       (double)counters->latency_sum_ns / 1e9);
			g_string_append_printf(out, "%s_count{", name);
			append_device_labels(out, samples[i].dev);
			g_string_append_printf(out, ",kind=\"%s\"} %" PRIu64 "\n",
					       stats_kind_name(kind), counters->commands);
		}
	}
}

static void append_device_gauge(GString *out, const struct device_sample *samples, size_t count,
				const char *name, const char *type, const char *help,
				double (*value_of)(const struct device_sample *sample))
{
	append_header(out, name, type, help);
	for (size_t i = 0; i < count; i++) {
		g_string_append_printf(out, "%s{", name);
		append_device_labels(out, samples[i].dev);
		g_string_append_printf(out, "} %.17g\n", value_of(&samples[i]));
	}
}

static double in_flight_of(const struct device_sample *sample) { return sample->in_flight; }
static double in_flight_max_of(const struct device_sample *sample) { return sample->stats.in_flight_max; }
static double size_of(const struct device_sample *sample) { return (double)sample->dev->size; }

static double last_command_of(const struct device_sample *sample)
{
	return (double)sample->stats.last_command_us / 1e6;
}

static double last_error_of(const struct device_sample *sample)
{
	return (double)sample->stats.last_error_us / 1e6;
}

char *metrics_render(void)
{
	GString *out = g_string_new(NULL);
	struct device_sample *samples = NULL;
	size_t count = 0, capacity = 0;
	char reason[8];

	for (struct tcmu_device *dev = device_list_first(); dev; dev = dev->next) {
		if (count == capacity) {
			capacity = capacity ? capacity * 2 : 8;
			samples = g_renew(struct device_sample, samples, capacity);
		}
		samples[count].dev = dev;
		stats_snapshot(dev, &samples[count].stats, &samples[count].in_flight);
		samples[count].state = stats_device_state(dev, reason, sizeof(reason));
		count++;
	}

	append_header(out, "tcmu_build_info", "gauge", "The daemon's version; always 1.");
	g_string_append_printf(out, "tcmu_build_info{version=\"%s\"} 1\n", TCMU_VERSION_STRING);
	append_header(out, "tcmu_start_time_seconds", "gauge",
		      "When the daemon started, in seconds since the epoch.");
	g_string_append_printf(out, "tcmu_start_time_seconds %.6f\n", (double)daemon_start_us / 1e6);
	append_header(out, "tcmu_workers", "gauge", "Threads that serve rings.");
	g_string_append_printf(out, "tcmu_workers %u\n", workers_count());

	append_header(out, "tcmu_commands_total", "counter", "Commands completed, by kind.");
	append_per_kind(out, samples, count, "tcmu_commands_total",
			offsetof(struct stats_kind_counters, commands));
	append_header(out, "tcmu_transferred_bytes_total", "counter",
		      "Data moved by completed commands, by kind.");
	append_per_kind(out, samples, count, "tcmu_transferred_bytes_total",
			offsetof(struct stats_kind_counters, bytes));
	append_latency_histograms(out, samples, count);

	append_header(out, "tcmu_errors_total", "counter",
		      "Commands that ended in CHECK CONDITION, by sense key, or in another "
		      "non-GOOD status (sense_key=\"none\").");
	for (size_t i = 0; i < count; i++) {
		for (unsigned int key = 0; key <= 16; key++) {
			uint64_t value = key < 16 ? samples[i].stats.errors_by_sense_key[key]
						  : samples[i].stats.errors_other_status;

			g_string_append(out, "tcmu_errors_total{");
			append_device_labels(out, samples[i].dev);
			g_string_append_printf(out, ",sense_key=\"%s\"} %" PRIu64 "\n",
					       key < 16 ? stats_sense_key_name(key) : "none", value);
		}
	}

	append_device_gauge(out, samples, count, "tcmu_commands_in_flight", "gauge",
			    "Commands taken from the ring and not yet completed.", in_flight_of);
	append_device_gauge(out, samples, count, "tcmu_commands_in_flight_max", "gauge",
			    "The most commands in flight at once since the device was attached.",
			    in_flight_max_of);
	append_device_gauge(out, samples, count, "tcmu_device_size_bytes", "gauge",
			    "The device's size.", size_of);
	append_device_gauge(out, samples, count, "tcmu_last_command_timestamp_seconds", "gauge",
			    "When the last command completed (0: none yet).", last_command_of);
	append_device_gauge(out, samples, count, "tcmu_last_error_timestamp_seconds", "gauge",
			    "When the last command failed (0: none yet).", last_error_of);

	append_header(out, "tcmu_device_state", "gauge",
		      "1 for the state the device's handler reports, 0 for the others.");
	for (size_t i = 0; i < count; i++) {
		for (enum tcmu_device_state state = TCMU_DEVICE_STATE_OPEN;
		     state <= TCMU_DEVICE_STATE_FAILED; state++) {
			g_string_append(out, "tcmu_device_state{");
			append_device_labels(out, samples[i].dev);
			g_string_append_printf(out, ",state=\"%s\"} %d\n", stats_state_name(state),
					       samples[i].state == state);
		}
	}
	g_free(samples);
	return g_string_free(out, FALSE);
}

static int write_textfile(const char *path)
{
	g_autofree char *text = metrics_render();
	g_autofree char *temporary = g_strdup_printf("%s.tmp", path);
	size_t length = strlen(text), written = 0;
	int fd, result = 0;

	/* node_exporter skips files that do not end in .prom, so a half-written .tmp is never read. */
	fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	while (written < length) {
		ssize_t count = write(fd, text + written, length - written);

		if (count < 0) {
			if (errno == EINTR)
				continue;
			result = -errno;
			break;
		}
		written += (size_t)count;
	}
	if (close(fd) < 0 && result == 0)
		result = -errno;
	if (result == 0 && rename(temporary, path) < 0)
		result = -errno;
	if (result < 0)
		unlink(temporary);
	return result;
}

static gboolean textfile_tick(gpointer unused)
{
	static int last_error;
	int result;

	(void)unused;
	result = write_textfile(textfile_path);
	/* Once per distinct failure, not every few seconds. */
	if (result < 0 && result != last_error)
		tcmu_err("metrics_textfile %s: %s", textfile_path, strerror(-result));
	else if (result == 0 && last_error)
		tcmu_info("metrics_textfile %s: written again", textfile_path);
	last_error = result;
	return G_SOURCE_CONTINUE;
}

void metrics_textfile_set(const char *path)
{
	if (g_strcmp0(path, textfile_path) == 0)
		return;
	if (textfile_timer) {
		g_source_remove(textfile_timer);
		textfile_timer = 0;
	}
	/* Stale numbers would look like a device that stopped: the old file goes. */
	if (textfile_path && unlink(textfile_path) < 0 && errno != ENOENT)
		tcmu_warn("metrics_textfile %s: remove: %m", textfile_path);
	g_free(textfile_path);
	textfile_path = g_strdup(path);
	if (!textfile_path)
		return;
	tcmu_info("writing metrics to %s every %d s", textfile_path, METRICS_TEXTFILE_INTERVAL_S);
	textfile_tick(NULL);
	textfile_timer = g_timeout_add_seconds(METRICS_TEXTFILE_INTERVAL_S, textfile_tick, NULL);
}
