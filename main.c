/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c: options, start-up and the main loop. The main thread runs a GLib
 * loop that owns netlink events (and D-Bus); rings are served by the
 * worker threads (worker.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glib-unix.h>
#include <glib.h>
#include <libkmod.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tcmu_internal.h"

#define DEFAULT_CONFIG_FILE "/etc/tcmu/tcmu.conf"
#define LOCK_FILE "/run/tcmu-runner.lock"

struct options {
	const char *handler_path;
	const char *config_file;
	bool config_file_given;
	const char *log_dir;
	bool debug;
	long nofile;
};

static void print_help(FILE *stream)
{
	fprintf(stream,
"Usage: tcmu-runner [OPTION]...\n"
"Serve the Linux kernel's TCMU (target_core_user) backstores from userspace.\n"
"\n"
"tcmu-runner answers the SCSI commands that LIO sends to user:<subtype>\n"
"backstores, with the handler whose subtype matches the backstore's config\n"
"string (\"<subtype>/<handler config>\"). It attaches backstores that already\n"
"exist when it starts and follows new, removed and reconfigured ones through\n"
"the kernel's TCM-USER netlink family. Run it as root; it stays in the\n"
"foreground and logs to stderr (and to the log directory when one is set).\n"
"\n"
"Options:\n"
"  -h, --help               show this help and exit\n"
"  -V, --version            show the version and exit\n"
"  -d, --debug              log at debug level (log_level 4), whatever tcmu.conf says\n"
"  -f, --nofile N           raise the open file limit to N (each device uses a few)\n"
"      --handler-path DIR   load handler_*.so from DIR\n"
"                           (default: %s)\n"
"  -l, --tcmu-log-dir DIR   also write the log to DIR/tcmu-runner.log\n"
"                           (overrides log_dir in the config file)\n"
"      --config FILE        read settings from FILE (default: %s;\n"
"                           a missing default file is not an error)\n"
"\n"
"Config file settings (key = value):\n"
"  log_level = N            0 critical, 1 error, 2 warning, 3 info (default),\n"
"                           4 debug, 5 every SCSI command\n"
"  log_dir = DIR            directory of tcmu-runner.log\n"
"  ring_poll_us = N         how long, in microseconds, a worker polls its rings\n"
"                           for new commands before it sleeps: 0 (off) to %d,\n"
"                           default %d\n"
"  xcopy_group = NAME ...   devices EXTENDED COPY may copy between, one line per\n"
"                           group; NAME is user_<hba>/<name> or <name>\n"
"  metrics_textfile = FILE  keep the devices' statistics in FILE (absolute,\n"
"                           *.prom) for Prometheus' node_exporter (off by\n"
"                           default); tcmu-admin(8) shows them on demand\n"
"A changed log_level, ring_poll_us, metrics_textfile or xcopy_group applies\n"
"without a restart.\n"
"\n"
"Signals: SIGINT and SIGTERM stop taking new commands, finish those in flight,\n"
"close the devices (they stay in the kernel for the next daemon) and exit 0.\n"
"SIGHUP reopens the log file.\n"
"\n"
"Exit status: 0 after a clean stop, 1 when the daemon cannot start (the reason\n"
"is logged), 2 on a usage error.\n",
		TCMU_DEFAULT_HANDLER_DIR, DEFAULT_CONFIG_FILE, TCMU_RING_POLL_US_MAX,
		TCMU_RING_POLL_US_DEFAULT);
}

static int parse_options(int argc, char **argv, struct options *options)
{
	enum { OPTION_HANDLER_PATH = 256, OPTION_CONFIG };
	static const struct option long_options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "debug", no_argument, NULL, 'd' },
		{ "nofile", required_argument, NULL, 'f' },
		{ "handler-path", required_argument, NULL, OPTION_HANDLER_PATH },
		{ "tcmu-log-dir", required_argument, NULL, 'l' },
		{ "config", required_argument, NULL, OPTION_CONFIG },
		{ NULL, 0, NULL, 0 },
	};
	int option;

	while ((option = getopt_long(argc, argv, "hVdf:l:", long_options, NULL)) != -1) {
		switch (option) {
		case 'h':
			print_help(stdout);
			exit(0);
		case 'V':
			printf("tcmu-runner %s\n", TCMU_VERSION_STRING);
			exit(0);
		case 'd':
			options->debug = true;
			break;
		case 'f': {
			char *end;

			errno = 0;
			options->nofile = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || options->nofile <= 0) {
				fprintf(stderr, "tcmu-runner: --nofile: '%s' is not a positive "
					"number\n", optarg);
				return -EINVAL;
			}
			break;
		}
		case 'l':
			options->log_dir = optarg;
			break;
		case OPTION_HANDLER_PATH:
			options->handler_path = optarg;
			break;
		case OPTION_CONFIG:
			options->config_file = optarg;
			options->config_file_given = true;
			break;
		default:
			fprintf(stderr, "Try 'tcmu-runner --help' for more information.\n");
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tcmu-runner: unexpected argument '%s'\n"
			"Try 'tcmu-runner --help' for more information.\n", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

static int kernel_module_load(void)
{
	struct kmod_module *module = NULL;
	struct kmod_ctx *context;
	int result;

	if (access("/sys/module/target_core_user", F_OK) == 0)
		return 0;
	context = kmod_new(NULL, NULL);
	if (!context)
		return -ENOMEM;
	result = kmod_module_new_from_name(context, "target_core_user", &module);
	if (result == 0)
		result = kmod_module_probe_insert_module(module, KMOD_PROBE_APPLY_BLACKLIST, NULL,
						      NULL, NULL, NULL);
	if (result > 0)
		result = -EPERM;	/* blacklisted */
	if (module)
		kmod_module_unref(module);
	kmod_unref(context);
	if (result < 0)
		tcmu_err("cannot load kernel module target_core_user: %s; this kernel needs "
			 "CONFIG_TARGET_CORE_USER (try 'modprobe target_core_user')",
			 strerror(-result));
	else
		tcmu_info("loaded kernel module target_core_user");
	return result;
}

/* Two daemons serving one ring would corrupt it: the second one refuses. */
static int instance_lock(void)
{
	char pid_text[32];
	int fd;

	fd = open(LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		tcmu_err("open %s: %m", LOCK_FILE);
		return -errno;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		ssize_t length = pread(fd, pid_text, sizeof(pid_text) - 1, 0);

		pid_text[length > 0 ? length : 0] = '\0';
		tcmu_err("another tcmu-runner (pid %s) is already serving TCMU devices; "
			 "stop it first", length > 0 ? strtok(pid_text, "\n") : "unknown");
		close(fd);
		return -EBUSY;
	}
	snprintf(pid_text, sizeof(pid_text), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid_text, strlen(pid_text), 0) < 0)
		tcmu_warn("write %s: %m", LOCK_FILE);
	return fd;
}

static gboolean on_stop_signal(gpointer loop)
{
	tcmu_info("stopping: finishing commands in flight");
	g_main_loop_quit(loop);
	return G_SOURCE_CONTINUE;
}

static gboolean on_hangup(gpointer unused)
{
	(void)unused;
	if (log_reopen_file() < 0)
		tcmu_err("reopen log file: %m");
	return G_SOURCE_CONTINUE;
}

static gboolean on_netlink(gint fd, GIOCondition condition, gpointer unused)
{
	(void)fd;
	(void)condition;
	(void)unused;
	netlink_dispatch();
	return G_SOURCE_CONTINUE;
}

static void apply_config(const struct options *options, struct tcmu_config *config)
{
	const char *path = options->config_file ? options->config_file : DEFAULT_CONFIG_FILE;
	int result;

	result = config_file_load(path, config);
	if (result < 0 && (options->config_file_given || result != -ENOENT))
		tcmu_warn("config file %s: %s; using defaults", path, strerror(-result));
	if (options->debug)
		config->log_level = TCMU_LOG_DEBUG;
	log_set_level(config->log_level);
	if (copy_groups_set(config->xcopy_groups, config->xcopy_group_count) < 0)
		tcmu_err("out of memory for the xcopy_group lines of %s; copies stay on their "
			 "device", path);
	if (options->log_dir) {
		free(config->log_dir);
		config->log_dir = strdup(options->log_dir);
	}
	if (config->log_dir) {
		result = log_open_file(config->log_dir);
		if (result < 0)
			tcmu_warn("cannot write the log to %s/tcmu-runner.log: %s; logging to "
				  "stderr only", config->log_dir, strerror(-result));
	}
}

int main(int argc, char **argv)
{
	struct options options = { .handler_path = TCMU_DEFAULT_HANDLER_DIR };
	struct tcmu_config config = TCMU_CONFIG_DEFAULTS;
	GMainLoop *loop = NULL;
	int lock_fd = -1, netlink_fd, result, exit_code = 1;
	unsigned int calls_running = 0;
	long cpus;

	metrics_daemon_started();
	if (parse_options(argc, argv, &options) < 0)
		return 2;
	apply_config(&options, &config);

	if (options.nofile > 0) {
		struct rlimit limit = { .rlim_cur = (rlim_t)options.nofile,
					.rlim_max = (rlim_t)options.nofile };

		if (setrlimit(RLIMIT_NOFILE, &limit) < 0) {
			tcmu_err("--nofile %ld: %m", options.nofile);
			goto out;
		}
	}
	if (geteuid() != 0)
		tcmu_warn("not running as root: netlink, configfs and /dev/uio* need root");

	lock_fd = instance_lock();
	if (lock_fd < 0)
		goto out;
	if (kernel_module_load() < 0)
		goto out;
	result = handlers_load(options.handler_path);
	if (result < 0) {
		tcmu_err("cannot read handler directory %s: %s", options.handler_path,
			 strerror(-result));
		goto out;
	}
	if (result == 0) {
		tcmu_err("no usable handler_*.so in %s (see --handler-path)", options.handler_path);
		goto out;
	}

	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	result = workers_start(cpus > 0 ? (unsigned int)cpus : 1);
	if (result < 0)
		goto out_handlers;
	workers_set_poll_limit(config.ring_poll_us);

	netlink_fd = netlink_open();
	if (netlink_fd < 0)
		goto out_workers;

	loop = g_main_loop_new(NULL, FALSE);
	g_unix_signal_add(SIGINT, on_stop_signal, loop);
	g_unix_signal_add(SIGTERM, on_stop_signal, loop);
	g_unix_signal_add(SIGHUP, on_hangup, NULL);
	g_unix_fd_add(netlink_fd, G_IO_IN, on_netlink, NULL);
	config_watch_start(options.config_file ? options.config_file : DEFAULT_CONFIG_FILE,
			   options.debug ? TCMU_LOG_DEBUG : -1);

	result = device_attach_existing();
	if (result < 0)
		tcmu_err("scan for existing TCMU devices: %s", strerror(-result));
	else if (result > 0)
		tcmu_info("serving %d device(s) that already existed", result);

	dbus_start();
	metrics_textfile_set(config.metrics_textfile);
	tcmu_info("tcmu-runner %s ready", TCMU_VERSION_STRING);
	g_main_loop_run(loop);
	config_watch_stop();
	metrics_textfile_set(NULL);

	calls_running = dbus_stop();
	netlink_close();
	device_detach_all();
	exit_code = 0;
	tcmu_info("stopped");
out_workers:
	if (workers_stop() > 0)
		goto out;
out_handlers:
	/* A handler's code may still run a check for a call that outlived the wait. */
	if (calls_running == 0)
		handlers_unload();
out:
	if (loop)
		g_main_loop_unref(loop);
	if (lock_fd >= 0)
		close(lock_fd);
	config_release(&config);
	log_close_file();
	return exit_code;
}
