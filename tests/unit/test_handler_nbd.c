/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The nbd handler, dlopened from the build tree and driven as a ring thread
 * would drive it (handler_nbd_fixture.c plays the core) against real
 * nbdkit servers. Config strings and their refusals, connection
 * timeouts, data round trips, FUA, unmap, read-only and too small exports,
 * server errors and their errnos, reconnection after the server dies or
 * stops answering (;timeout=), and the allocation map.
 */
#include "handler_nbd_fixture.h"

#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>



static void test_grammar_refusals(void **state)
{
	char many_words[400] = "exec:nbdkit";

	(void)state;
	expect_refused("", "neither an NBD URI");
	expect_refused("nbdx://host/export", "cannot connect");
	expect_refused("/var/lib/disk.img", "neither an NBD URI");
	expect_refused("http://host/export", "neither an NBD URI");
	expect_refused("NBD://host/export", "neither an NBD URI");
	expect_refused("nbd:/host/export", "neither an NBD URI");
	expect_refused("exec", "neither an NBD URI");
	expect_refused("exec:", "needs a server command");
	expect_refused("exec:%20%20", "needs a server command");
	expect_refused("exec:nbdkit%", "not followed by two hex digits");
	expect_refused("exec:nbdkit%4", "not followed by two hex digits");
	expect_refused("exec:nbdkit%zz", "not followed by two hex digits");
	expect_refused("exec:nbdkit%0Amemory", "control characters");
	expect_refused("exec:nbdkit memory 1M;timeout=", "is not a timeout");
	expect_refused("exec:nbdkit memory 1M;timeout=-1", "is not a timeout");
	expect_refused("nbd://127.0.0.1:1/;timeout=3601", "is not a timeout");
	/* As many words as a config string can hold (the kernel keeps 255 bytes). */
	for (int i = 0; i < 120; i++)
		strcat(many_words, " x");
	expect_refused(many_words, "cannot connect");
	/* libnbd's own URI parser speaks for malformed URIs. */
	expect_refused("nbd+unix:///export", "cannot connect");
	expect_refused("nbd://[::1/export", "cannot connect");
}

static void test_exec_has_no_shell(void **state)
{
	char config[256], marker[64];

	(void)state;
	snprintf(marker, sizeof(marker), "/tmp/tcmu-nbd-test-%d", (int)getpid());
	unlink(marker);
	/* Each would create the marker if a shell ran the command. */
	snprintf(config, sizeof(config), "exec:nbdkit memory 1M;touch %s", marker);
	expect_refused(config, "cannot connect to the server started by");
	snprintf(config, sizeof(config), "exec:nbdkit memory 1M $(touch %s)", marker);
	expect_refused(config, "cannot connect");
	snprintf(config, sizeof(config), "exec:nbdkit memory 1M `touch %s`", marker);
	expect_refused(config, "cannot connect");
	snprintf(config, sizeof(config), "exec:nbdkit memory 1M | touch %s", marker);
	expect_refused(config, "cannot connect");
	snprintf(config, sizeof(config), "exec:touch %s", marker);
	expect_refused(config, "cannot connect");
	/* The last one did run touch, as argv, with the name taken literally. */
	assert_int_equal(access(marker, F_OK), 0);
	unlink(marker);
	snprintf(config, sizeof(config), "exec:sh -c touch%%20%s", marker);
	expect_refused(config, "cannot connect");
	expect_refused("exec:/nonexistent/nbd-server", "cannot connect");
	expect_accepted("exec:nbdkit memory 1M");
	/* Percent-encoded, as targetcli keeps it. */
	expect_accepted("exec%3Anbdkit%20memory%201M");
	expect_accepted("exec:nbdkit%20--filter=error memory 1M error-rate=0%25");
	expect_accepted("exec:nbdkit memory 1M;timeout=0");
	expect_accepted("exec:nbdkit memory 1M%3Btimeout=5");
}

static void test_unreachable_servers(void **state)
{
	struct sockaddr_in address = { .sin_family = AF_INET };
	socklen_t address_length = sizeof(address);
	char config[128];
	int64_t start;
	int listener;

	(void)state;
	expect_refused("nbd+unix:///?socket=/nonexistent/nbd.sock", "cannot connect to the NBD server at");
	/* A port where nothing listens answers at once. */
	listener = socket(AF_INET, SOCK_STREAM, 0);
	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(listener, (struct sockaddr *)&address, sizeof(address)), 0);
	assert_int_equal(getsockname(listener, (struct sockaddr *)&address, &address_length), 0);
	snprintf(config, sizeof(config), "nbd://127.0.0.1:%u/", ntohs(address.sin_port));
	expect_refused(config, "Connection refused");
	/* A server that takes the connection but never speaks: bounded wait. */
	assert_int_equal(listen(listener, 4), 0);
	start = now_ms();
	expect_refused(config, "no answer in time");
	assert_true(now_ms() - start >= 4500);
	assert_true(now_ms() - start < 9000);
	close(listener);
}


static void test_missing_export(void **state)
{
	char directory[] = "/tmp/tcmu-nbd-test-XXXXXX", config[256];
	pid_t server;

	(void)state;
	assert_non_null(mkdtemp(directory));
	server = start_nbdkit(directory, "--filter=exportname memory 1M exportname=good "
					 "exportname-strict=true");
	snprintf(config, sizeof(config), "nbd+unix:///bad?socket=%s/sock", directory);
	expect_refused(config, "cannot connect to the NBD server at");
	snprintf(config, sizeof(config), "nbd+unix:///good?socket=%s/sock", directory);
	expect_accepted(config);
	/* Started with every signal blocked, as the test runs: only SIGKILL stops it. */
	kill(server, SIGKILL);
	snprintf(config, sizeof(config), "rm -rf %s", directory);
	assert_int_equal(system(config), 0);
}

static void test_io(void **state)
{
	struct tcmu_device dev = new_device("exec:nbdkit memory 16M", 16 * MIB);
	static char data[256 * 1024], back[256 * 1024];

	(void)state;
	assert_int_equal(handler->open(&dev), 0);
	assert_non_null(strstr(log_text, "connected to the server started by 'exec:nbdkit memory 16M'"));
	assert_true(dev.unmap_supported);
	assert_false(dev.write_protected);
	fill(data, sizeof(data), 1);
	assert_int_equal(transfer(&dev, true, MIB, data, sizeof(data), 0), 0);
	assert_int_equal(transfer(&dev, false, MIB, back, sizeof(back), 0), 0);
	assert_memory_equal(data, back, sizeof(data));
	/* The last block of the device. */
	fill(data, 4096, 2);
	assert_int_equal(transfer(&dev, true, 16 * MIB - 4096, data, 4096, TCMU_WRITE_FUA), 0);
	assert_int_equal(transfer(&dev, false, 16 * MIB - 4096, back, 4096, 0), 0);
	assert_memory_equal(data, back, 4096);
	/* Without a write cache every write is durable. */
	dev.write_cache = false;
	fill(data, sizeof(data), 3);
	assert_int_equal(transfer(&dev, true, 0, data, sizeof(data), 0), 0);
	dev.write_cache = true;
	assert_int_equal(flush(&dev), 0);
	assert_int_equal(unmap(&dev, 64 * 1024, 64 * 1024), 0);
	assert_int_equal(transfer(&dev, false, 0, back, sizeof(back), 0), 0);
	assert_memory_equal(back, data, 64 * 1024);
	for (size_t i = 64 * 1024; i < 128 * 1024; i++)
		assert_int_equal(back[i], 0);
	assert_memory_equal(back + 128 * 1024, data + 128 * 1024, sizeof(data) - 128 * 1024);
	/* Many commands in flight at once. */
	{
		struct tcmu_request requests[32] = { { 0 } };
		struct iovec iov[32];

		for (int i = 0; i < 32; i++) {
			iov[i] = (struct iovec){ .iov_base = data + i * 4096, .iov_len = 4096 };
			assert_int_equal(handler->write(&dev, &requests[i], &iov[i], 1,
							2 * MIB + (uint64_t)i * 4096, 4096, 0), 0);
		}
		for (int i = 0; i < 32; i++)
			assert_int_equal(wait_request(&dev, &requests[i], 0), 0);
		assert_int_equal(transfer(&dev, false, 2 * MIB, back, 32 * 4096, 0), 0);
		assert_memory_equal(back, data, 32 * 4096);
	}
	close_device(&dev);
}

/* The core starts a command's next step from the completion of the previous one. */
static void test_next_step_from_completion(void **state)
{
	struct tcmu_device dev = new_device("exec:nbdkit memory 16M", 16 * MIB);
	static char data[4096], back[4096];
	struct iovec iov = { .iov_base = data, .iov_len = sizeof(data) };
	struct tcmu_request second = { 0 };
	struct tcmu_request first = { .next_dev = &dev, .next = &second, .next_iov = &iov };
	struct iovec first_iov = { .iov_base = back, .iov_len = sizeof(back) };

	(void)state;
	assert_int_equal(handler->open(&dev), 0);
	fill(data, sizeof(data), 4);
	assert_int_equal(wait_request(&dev, &first, handler->read(&dev, &first, &first_iov, 1, 0,
								  sizeof(back))), 0);
	assert_int_equal(wait_request(&dev, &second, 0), 0);
	assert_int_equal(transfer(&dev, false, 0, back, sizeof(back), 0), 0);
	assert_memory_equal(back, data, sizeof(data));
	close_device(&dev);
}

/*
 * A server without FUA (an nbdkit sh plugin that says so and logs the
 * methods called): a durable write is followed by a flush.
 */
static void test_flush_after_write(void **state)
{
	char directory[] = "/tmp/tcmu-nbd-test-XXXXXX", config[256], path[160], calls[4096];
	static char data[4096];
	struct tcmu_device dev;
	FILE *file;
	size_t length;

	(void)state;
	assert_non_null(mkdtemp(directory));
	snprintf(path, sizeof(path), "%s/plugin.sh", directory);
	file = fopen(path, "w");
	assert_non_null(file);
	fprintf(file, "#!/bin/sh\necho \"$1\" >> %s/calls\n"
		"case \"$1\" in\n"
		"get_size) echo 16777216 ;;\n"
		"can_write|can_flush) exit 0 ;;\n"
		"can_fua) echo none ;;\n"
		"pread) dd if=/dev/zero count=$3 iflag=count_bytes status=none ;;\n"
		"pwrite) cat > /dev/null ;;\n"
		"flush) exit 0 ;;\n"
		"*) exit 2 ;;\n"
		"esac\n", directory);
	fclose(file);
	assert_int_equal(chmod(path, 0700), 0);
	snprintf(config, sizeof(config), "exec:nbdkit sh %s", path);
	dev = new_device(config, 16 * MIB);
	assert_int_equal(handler->open(&dev), 0);
	assert_non_null(strstr(log_text, "FUA no"));
	snprintf(path, sizeof(path), "%s/calls", directory);
	unlink(path);
	assert_int_equal(transfer(&dev, true, 0, data, sizeof(data), TCMU_WRITE_FUA), 0);
	file = fopen(path, "r");
	assert_non_null(file);
	length = fread(calls, 1, sizeof(calls) - 1, file);
	calls[length] = '\0';
	fclose(file);
	assert_non_null(strstr(calls, "pwrite\nflush\n"));
	close_device(&dev);
	snprintf(config, sizeof(config), "rm -rf %s", directory);
	assert_int_equal(system(config), 0);
}

static void test_export_too_small(void **state)
{
	struct tcmu_device dev = new_device("exec:nbdkit memory 16M", 32 * MIB);

	(void)state;
	assert_int_equal(handler->open(&dev), -ENOSPC);
	assert_non_null(strstr(log_text, "holds 16777216 bytes, less than the device's 33554432 bytes"));
}

static void test_read_only_export(void **state)
{
	struct tcmu_device dev = new_device("exec:nbdkit -r memory 16M", 16 * MIB);
	static char data[4096];

	(void)state;
	assert_int_equal(handler->open(&dev), 0);
	assert_non_null(strstr(log_text, "read-only"));
	assert_false(dev.unmap_supported);
	assert_true(dev.write_protected);
	assert_int_equal(transfer(&dev, false, 0, data, sizeof(data), 0), 0);
	assert_int_equal(transfer(&dev, true, 0, data, sizeof(data), 0), -EROFS);
	assert_int_equal(unmap(&dev, 0, 4096), -EROFS);
	assert_int_equal(flush(&dev), 0);
	close_device(&dev);
}

/* Each error the server answers with, and what the initiator gets for it. */
static void test_server_errors(void **state)
{
	static const struct {
		const char *error;
		int result;
	} cases[] = {
		{ "EIO", -EIO }, { "ENOSPC", -ENOSPC }, { "EPERM", -EROFS }, { "EINVAL", -EIO },
	};
	static char data[4096];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char config[256];
		struct tcmu_device dev;

		snprintf(config, sizeof(config), "exec:nbdkit --filter=error memory 16M error=%s "
			 "error-pwrite-rate=100%%25", cases[i].error);
		dev = new_device(config, 16 * MIB);
		assert_int_equal(handler->open(&dev), 0);
		assert_int_equal(transfer(&dev, false, 0, data, sizeof(data), 0), 0);
		assert_int_equal(transfer(&dev, true, 0, data, sizeof(data), 0), cases[i].result);
		close_device(&dev);
	}
}

/* Whether every thread of pid is stopped (state T in /proc/PID/task/TID/stat). */
static bool process_stopped(pid_t pid)
{
	char command[128];

	snprintf(command, sizeof(command), "! grep -qv '^[0-9]* ([^)]*) T ' /proc/%d/task/*/stat",
		 (int)pid);
	return system(command) == 0;
}

/*
 * The exec: server gets a signal (SIGKILL: it dies; SIGSTOP: it stops
 * answering, and options hold a ;timeout=): a read meanwhile gets
 * BUSY, after the timeout for a stopped server; then a new server serves.
 */
static void check_server_gone(int signal_number, const char *options, int64_t busy_after_ms)
{
	char directory[] = "/tmp/tcmu-nbd-test-XXXXXX", config[256], path[160];
	struct tcmu_device dev;
	static char data[4096];
	int64_t start;
	pid_t pid;
	int result;

	assert_non_null(mkdtemp(directory));
	snprintf(config, sizeof(config), "exec:nbdkit -P %s/pid memory 16M%s", directory, options);
	snprintf(path, sizeof(path), "%s/pid", directory);
	dev = new_device(config, 16 * MIB);
	assert_int_equal(handler->open(&dev), 0);
	pid = read_pid_file(path);
	unlink(path);
	assert_int_equal(kill(pid, signal_number), 0);
	/* A stop takes effect on each of the server's threads in its own time. */
	while (signal_number == SIGSTOP && !process_stopped(pid))
		usleep(10000);

	/* Retried (BUSY) while the server is away, then served again. */
	start = now_ms();
	assert_int_equal(transfer(&dev, false, 0, data, sizeof(data), 0), -EAGAIN);
	/* Generous: a loaded machine delays the watchdog's tick. */
	assert_true(now_ms() - start >= busy_after_ms - 100 && now_ms() - start < busy_after_ms + 8000);
	for (int i = 0; i < 2; i++) {
		/* A read, then a FUA write; each retried, as a loaded machine may time one out. */
		do {
			assert_true(now_ms() - start < 30000);
			loop_once(&dev);
			result = transfer(&dev, i == 1, 0, data, sizeof(data), i == 1 ? TCMU_WRITE_FUA : 0);
		} while (result == -EAGAIN);
		assert_int_equal(result, 0);
	}
	/* A new server, and each transition logged once. */
	assert_int_not_equal(read_pid_file(path), pid);
	assert_non_null(strstr(log_text, "state: reconnecting: connection to the server started by"));
	assert_null(strstr(strstr(log_text, "state: reconnecting") + 1, "state: reconnecting"));
	assert_non_null(strstr(log_text, "state: open"));
	assert_non_null(strstr(log_text, "reconnected to"));
	close_device(&dev);
	snprintf(config, sizeof(config), "rm -rf %s", directory);
	assert_int_equal(system(config), 0);
}

static void test_reconnect_after_server_death(void **state)
{
	(void)state;
	check_server_gone(SIGKILL, "", 0);
}

static void test_command_timeout(void **state)
{
	(void)state;
	check_server_gone(SIGSTOP, ";timeout=1", 1000);
	assert_non_null(strstr(log_text, "no answer to a command for 1 s"));
}

/* GET LBA STATUS from nbdkit memory's map: a hole, the data written, a hole. */
static void test_allocation_map(void **state)
{
	struct tcmu_device dev = new_device("exec:nbdkit memory 16M", 16 * MIB);
	static char data[4096];
	bool mapped, answered_later;
	uint64_t length;

	(void)state;
	assert_int_equal(handler->open(&dev), 0);
	fill(data, sizeof(data), 3);
	assert_int_equal(transfer(&dev, true, 4 * MIB, data, sizeof(data), 0), 0);
	/* Asked like a read: the answer comes from fd_ready, not within the call. */
	assert_null(handler->get_lba_status);
	assert_int_equal(lba_status(&dev, 0, 16 * MIB, &mapped, &length, &answered_later), 0);
	assert_true(answered_later);
	assert_false(mapped);
	assert_int_equal(length, 4 * MIB);
	assert_int_equal(lba_status(&dev, 4 * MIB, 12 * MIB, &mapped, &length, &answered_later),
			 0);
	assert_true(mapped);
	assert_true(length >= sizeof(data) && length < MIB);
	assert_int_equal(lba_status(&dev, 5 * MIB, 11 * MIB, &mapped, &length, &answered_later),
			 0);
	assert_false(mapped);
	assert_int_equal(length, 11 * MIB);
	close_device(&dev);
}

/*
 * GET LBA STATUS of a stopped server: the call returns at once (the ring
 * thread serves its other devices meanwhile), and the watchdog answers the
 * query with BUSY after the ;timeout=, as it does a read.
 */
static void test_allocation_map_server_stopped(void **state)
{
	char directory[] = "/tmp/tcmu-nbd-test-XXXXXX", config[256], path[160];
	struct tcmu_device dev;
	struct tcmu_request req = { 0 };
	int64_t start;
	pid_t pid;

	(void)state;
	assert_non_null(mkdtemp(directory));
	snprintf(config, sizeof(config), "exec:nbdkit -P %s/pid memory 16M;timeout=1", directory);
	snprintf(path, sizeof(path), "%s/pid", directory);
	dev = new_device(config, 16 * MIB);
	assert_int_equal(handler->open(&dev), 0);
	pid = read_pid_file(path);
	assert_int_equal(kill(pid, SIGSTOP), 0);
	while (!process_stopped(pid))
		usleep(10000);

	start = now_ms();
	assert_int_equal(handler->query_lba_status(&dev, &req, 0, 16 * MIB), 0);
	handler->batch_done(&dev);
	assert_true(now_ms() - start < 500);
	assert_int_equal(req.completions, 0);
	assert_int_equal(wait_request(&dev, &req, 0), -EAGAIN);
	assert_false(req.lba_status);
	/* Generous: a loaded machine delays the watchdog's tick. */
	assert_true(now_ms() - start >= 900 && now_ms() - start < 9000);
	kill(pid, SIGCONT);
	close_device(&dev);
	snprintf(config, sizeof(config), "rm -rf %s", directory);
	assert_int_equal(system(config), 0);
}

static void *handler_handle;

int main(void)
{
	const struct tcmu_handler *(*init)(void);
	sigset_t all;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_grammar_refusals, setup),
		cmocka_unit_test_setup(test_exec_has_no_shell, setup),
		cmocka_unit_test_setup(test_unreachable_servers, setup),
		cmocka_unit_test_setup(test_missing_export, setup),
		cmocka_unit_test_setup(test_io, setup),
		cmocka_unit_test_setup(test_next_step_from_completion, setup),
		cmocka_unit_test_setup(test_flush_after_write, setup),
		cmocka_unit_test_setup(test_export_too_small, setup),
		cmocka_unit_test_setup(test_read_only_export, setup),
		cmocka_unit_test_setup(test_server_errors, setup),
		cmocka_unit_test_setup(test_reconnect_after_server_death, setup),
		cmocka_unit_test_setup(test_command_timeout, setup),
		cmocka_unit_test_setup(test_allocation_map, setup),
		cmocka_unit_test_setup(test_allocation_map_server_stopped, setup),
	};

	/* A dying server must not kill the test through a write to its socket. */
	signal(SIGPIPE, SIG_IGN);
	/* As on a ring thread, which blocks every signal: servers must still stop. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	handler_handle = dlopen(HANDLER_NBD_PATH, RTLD_NOW | RTLD_LOCAL);
	if (!handler_handle) {
		fprintf(stderr, "dlopen %s: %s\n", HANDLER_NBD_PATH, dlerror());
		return 1;
	}
	*(void **)&init = dlsym(handler_handle, "handler_init");
	handler = init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
