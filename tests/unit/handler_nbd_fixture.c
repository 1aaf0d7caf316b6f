/* SPDX-License-Identifier: Apache-2.0 */
/*
 * handler_nbd_fixture.c: the core for the nbd handler's unit test: the
 * accessors, completions, the watched fds polled in a loop that calls
 * fd_ready and batch_done as a ring thread would, and nbdkit servers.
 */
#include "handler_nbd_fixture.h"

#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

int tcmu_log_level_current = TCMU_LOG_DEBUG;
char log_text[1 << 16];

void tcmu_log_message(int level, const struct tcmu_device *dev, const char *format, ...)
{
	size_t used = strlen(log_text);
	va_list arguments;

	(void)dev;
	va_start(arguments, format);
	vsnprintf(log_text + used, sizeof(log_text) - used - 1, format, arguments);
	va_end(arguments);
	fprintf(stderr, "[%d] %s\n", level, log_text + used);
	strncat(log_text, "\n", sizeof(log_text) - strlen(log_text) - 1);
}

const struct tcmu_handler *handler;

void tcmu_request_complete(struct tcmu_request *req, int result)
{
	req->completions++;
	req->result = result;
	if (req->next)
		assert_int_equal(handler->write(req->next_dev, req->next, req->next_iov, 1, 0,
						req->next_iov->iov_len, 0), 0);
}

void tcmu_request_complete_lba_status(struct tcmu_request *req, bool mapped, uint64_t length)
{
	req->lba_status = true;
	req->lba_status_mapped = mapped;
	req->lba_status_length = length;
	tcmu_request_complete(req, 0);
}

const char *tcmu_device_get_name(const struct tcmu_device *dev) { (void)dev; return "n0"; }
const char *tcmu_device_get_subtype(const struct tcmu_device *dev) { (void)dev; return "nbd"; }
const char *tcmu_device_get_backstore(const struct tcmu_device *dev) { (void)dev; return "user_0/n0"; }
const char *tcmu_device_get_config(const struct tcmu_device *dev) { return dev->config; }
uint64_t tcmu_device_get_size(const struct tcmu_device *dev) { return dev->size; }
uint32_t tcmu_device_get_block_size(const struct tcmu_device *dev) { (void)dev; return 512; }
bool tcmu_device_get_write_cache(const struct tcmu_device *dev) { return dev->write_cache; }
void *tcmu_device_get_private(const struct tcmu_device *dev) { return dev->private_data; }
void tcmu_device_set_private(struct tcmu_device *dev, void *private_data)
{
	dev->private_data = private_data;
}

void tcmu_device_set_unmap_supported(struct tcmu_device *dev, bool supported)
{
	dev->unmap_supported = supported;
}

void tcmu_device_set_write_protected(struct tcmu_device *dev, bool write_protected)
{
	dev->write_protected = write_protected;
}

void tcmu_device_set_state(struct tcmu_device *dev, enum tcmu_device_state state,
			   const char *reason)
{
	static const char *const names[] = { "open", "reconnecting", "blocklisted", "failed" };

	tcmu_log_message(TCMU_LOG_WARN, dev, "state: %s%s%s", names[state], reason ? ": " : "",
			 reason ? reason : "");
}

int tcmu_device_watch_fd(struct tcmu_device *dev, int fd, uint32_t events)
{
	int free_slot = -1;

	assert_true(fd >= 0);
	for (int i = 0; i < MAX_WATCHES; i++) {
		if (dev->watched_fds[i] == fd) {
			dev->watched_events[i] = events;
			return 0;
		}
		if (dev->watched_fds[i] < 0 && free_slot < 0)
			free_slot = i;
	}
	assert_true(free_slot >= 0);
	dev->watched_fds[free_slot] = fd;
	dev->watched_events[free_slot] = events;
	return 0;
}

int tcmu_device_unwatch_fd(struct tcmu_device *dev, int fd)
{
	for (int i = 0; i < MAX_WATCHES; i++) {
		if (dev->watched_fds[i] == fd) {
			dev->watched_fds[i] = -1;
			return 0;
		}
	}
	return -ENOENT;
}

int64_t now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* One round of the ring thread's loop: wait up to 100 ms, call fd_ready, batch_done. */
void loop_once(struct tcmu_device *dev)
{
	struct pollfd polls[MAX_WATCHES];
	int count = 0;

	for (int i = 0; i < MAX_WATCHES; i++) {
		if (dev->watched_fds[i] < 0)
			continue;
		polls[count].fd = dev->watched_fds[i];
		polls[count].events = (dev->watched_events[i] & TCMU_FD_READABLE ? POLLIN : 0) |
				      (dev->watched_events[i] & TCMU_FD_WRITABLE ? POLLOUT : 0);
		polls[count++].revents = 0;
	}
	assert_true(poll(polls, (nfds_t)count, 100) >= 0);
	for (int i = 0; i < count; i++) {
		uint32_t events = 0;

		if (polls[i].revents & (POLLIN | POLLHUP | POLLERR))
			events |= TCMU_FD_READABLE;
		if (polls[i].revents & POLLOUT)
			events |= TCMU_FD_WRITABLE;
		if (events)
			handler->fd_ready(dev, polls[i].fd, events);
	}
	handler->batch_done(dev);
}

/* The result of req once the loop completed it; fails after 10 s. */
int wait_request(struct tcmu_device *dev, struct tcmu_request *req, int returned)
{
	int64_t deadline = now_ms() + 10000;

	if (returned < 0) {
		assert_int_equal(req->completions, 0);
		return returned;
	}
	handler->batch_done(dev);
	while (req->completions == 0) {
		assert_true(now_ms() < deadline);
		loop_once(dev);
	}
	assert_int_equal(req->completions, 1);
	return req->result;
}

/* Two unequal iovecs over buffer, as a ring's data area may give. */
int transfer(struct tcmu_device *dev, bool is_write, uint64_t offset, void *buffer,
	     size_t length, uint32_t flags)
{
	struct iovec iov[2] = {
		{ .iov_base = buffer, .iov_len = length / 3 },
		{ .iov_base = (char *)buffer + length / 3, .iov_len = length - length / 3 },
	};
	struct tcmu_request req = { 0 };

	if (is_write)
		return wait_request(dev, &req, handler->write(dev, &req, iov, 2, offset, length,
								flags));
	return wait_request(dev, &req, handler->read(dev, &req, iov, 2, offset, length));
}

int flush(struct tcmu_device *dev)
{
	struct tcmu_request req = { 0 };

	return wait_request(dev, &req, handler->flush(dev, &req));
}

int lba_status(struct tcmu_device *dev, uint64_t offset, uint64_t length, bool *ret_mapped,
	       uint64_t *ret_length, bool *ret_answered_later)
{
	struct tcmu_request req = { 0 };
	int result = handler->query_lba_status(dev, &req, offset, length);

	*ret_answered_later = req.completions == 0;
	result = wait_request(dev, &req, result);
	if (result == 0) {
		assert_true(req.lba_status);
		*ret_mapped = req.lba_status_mapped;
		*ret_length = req.lba_status_length;
	}
	return result;
}

int unmap(struct tcmu_device *dev, uint64_t offset, uint64_t length)
{
	struct tcmu_request req = { 0 };

	return wait_request(dev, &req, handler->unmap(dev, &req, offset, length));
}

void fill(void *buffer, size_t length, unsigned int seed)
{
	unsigned char *bytes = buffer;

	for (size_t i = 0; i < length; i++)
		bytes[i] = (unsigned char)(seed * 31 + i * 7 + i / 251);
}

struct tcmu_device new_device(const char *config, uint64_t size)
{
	struct tcmu_device dev = { .config = config, .size = size, .write_cache = true,
				   .unmap_supported = true };

	for (int i = 0; i < MAX_WATCHES; i++)
		dev.watched_fds[i] = -1;
	return dev;
}

void close_device(struct tcmu_device *dev)
{
	/* The core ends the watches before close. */
	for (int i = 0; i < MAX_WATCHES; i++)
		dev->watched_fds[i] = -1;
	handler->close(dev);
}

int setup(void **state)
{
	(void)state;
	log_text[0] = '\0';
	return 0;
}

/* check_config's answer, with its reason required to contain expected. */
void expect_refused(const char *config, const char *expected)
{
	char *reason = NULL;
	int result = handler->check_config(config, &reason);

	if (result == 0 || !reason || !strstr(reason, expected))
		fail_msg("config '%s': result %d, reason '%s', expected one with '%s'", config,
			 result, reason ? reason : "(none)", expected);
	free(reason);
}

void expect_accepted(const char *config)
{
	char *reason = NULL;
	int result = handler->check_config(config, &reason);

	if (result != 0)
		fail_msg("config '%s' refused (%d): %s", config, result, reason ? reason : "");
	free(reason);
}

/* The pid nbdkit -P writes, once it has (it may write it after its parent exits). */
pid_t read_pid_file(const char *path)
{
	int64_t deadline = now_ms() + 10000;
	FILE *pid_file;
	int pid = 0;

	while (!(pid_file = fopen(path, "r")) || fscanf(pid_file, "%d", &pid) != 1) {
		if (pid_file)
			fclose(pid_file);
		assert_true(now_ms() < deadline);
		usleep(10000);
	}
	fclose(pid_file);
	return (pid_t)pid;
}

/* Starts a background nbdkit on a Unix socket in directory; returns its pid. */
pid_t start_nbdkit(const char *directory, const char *arguments)
{
	char command[512], path[128];

	snprintf(command, sizeof(command), "nbdkit -U %s/sock -P %s/pid %s", directory,
		 directory, arguments);
	assert_int_equal(system(command), 0);
	snprintf(path, sizeof(path), "%s/pid", directory);
	return read_pid_file(path);
}
