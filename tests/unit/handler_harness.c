/* SPDX-License-Identifier: Apache-2.0 */
#include "handler_harness.h"

#include <stdarg.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/stat.h>
#include <cmocka.h>

/* Long enough for any storage the tests use; a request never completed fails. */
#define ASYNC_COMPLETION_TIMEOUT_MS 10000

/* A wait on the watched fds; short, since another thread may reap the request. */
#define ASYNC_POLL_MS 10

static unsigned int completion_sequence;

int tcmu_log_level_current = TCMU_LOG_DEBUG;

/* Handlers may log from several threads at once. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char *log_text;
static size_t log_length;
static void *handler_handle;

void tcmu_request_complete(struct tcmu_request *req, int result)
{
	req->result = result;
	req->sequence = __atomic_add_fetch(&completion_sequence, 1, __ATOMIC_SEQ_CST);
	/* Last: a thread waiting for the count then reads the rest. */
	__atomic_add_fetch(&req->completions, 1, __ATOMIC_RELEASE);
}

void tcmu_request_complete_miscompare(struct tcmu_request *req, uint64_t offset)
{
	req->miscompare = true;
	req->miscompare_offset = offset;
	tcmu_request_complete(req, 0);
}

const char *tcmu_device_get_name(const struct tcmu_device *dev) { return dev->name; }
const char *tcmu_device_get_subtype(const struct tcmu_device *dev) { return dev->subtype; }
const char *tcmu_device_get_backstore(const struct tcmu_device *dev) { return dev->backstore; }
const char *tcmu_device_get_config(const struct tcmu_device *dev) { return dev->config; }
uint64_t tcmu_device_get_size(const struct tcmu_device *dev) { return dev->size; }
uint32_t tcmu_device_get_block_size(const struct tcmu_device *dev) { return dev->block_size; }
bool tcmu_device_get_write_cache(const struct tcmu_device *dev) { return dev->write_cache; }
void *tcmu_device_get_private(const struct tcmu_device *dev) { return dev->private_data; }
void tcmu_device_set_unmap_supported(struct tcmu_device *dev, bool supported)
{
	dev->unmap_unsupported = !supported;
}
void tcmu_device_set_write_protected(struct tcmu_device *dev, bool write_protected)
{
	dev->write_protected = write_protected;
}
/* The length and ends checked as the core does (test_scsi_inquiry tests the rest). */
int tcmu_device_set_unit_serial(struct tcmu_device *dev, const char *serial)
{
	size_t length = serial ? strlen(serial) : 0;

	if (length == 0 || length >= sizeof(dev->unit_serial) || serial[0] == ' ' ||
	    serial[length - 1] == ' ')
		return -EINVAL;
	memcpy(dev->unit_serial, serial, length + 1);
	return 0;
}
int tcmu_device_watch_fd(struct tcmu_device *dev, int fd, uint32_t events)
{
	unsigned int i;

	if (fd < 0 || (events & ~(TCMU_FD_READABLE | TCMU_FD_WRITABLE)))
		return -EINVAL;
	for (i = 0; i < dev->watched_count; i++) {
		if (dev->watched_fds[i] == fd) {
			dev->watched_events[i] = events;
			return 0;
		}
	}
	if (dev->watched_count == HARNESS_MAX_WATCHES)
		return -ENOMEM;
	dev->watched_fds[dev->watched_count] = fd;
	dev->watched_events[dev->watched_count++] = events;
	return 0;
}

int tcmu_device_unwatch_fd(struct tcmu_device *dev, int fd)
{
	unsigned int i;

	for (i = 0; i < dev->watched_count; i++) {
		if (dev->watched_fds[i] == fd) {
			dev->watched_count--;
			dev->watched_fds[i] = dev->watched_fds[dev->watched_count];
			dev->watched_events[i] = dev->watched_events[dev->watched_count];
			return 0;
		}
	}
	return -ENOENT;
}

void tcmu_device_set_state(struct tcmu_device *dev, enum tcmu_device_state state,
			   const char *reason)
{
	dev->state = state;
	snprintf(dev->state_reason, sizeof(dev->state_reason), "%s", reason ? reason : "");
}

void tcmu_device_set_private(struct tcmu_device *dev, void *private_data)
{
	dev->private_data = private_data;
}

void tcmu_log_message(int level, const struct tcmu_device *dev, const char *format, ...)
{
	va_list arguments;
	char *message;
	int length;

	va_start(arguments, format);
	length = vasprintf(&message, format, arguments);
	va_end(arguments);
	assert_true(length >= 0);
	fprintf(stderr, "[%d] %s: %s\n", level, dev ? dev->name : "-", message);
	pthread_mutex_lock(&log_lock);
	log_text = realloc(log_text, log_length + (size_t)length + 2);
	assert_non_null(log_text);
	memcpy(log_text + log_length, message, (size_t)length);
	log_length += (size_t)length;
	log_text[log_length++] = '\n';
	log_text[log_length] = '\0';
	pthread_mutex_unlock(&log_lock);
	free(message);
}

const char *harness_log(void)
{
	return log_text ? log_text : "";
}

void harness_log_clear(void)
{
	free(log_text);
	log_text = NULL;
	log_length = 0;
}

const struct tcmu_handler *harness_load(const char *path)
{
	const struct tcmu_handler *(*init)(void);
	const struct tcmu_handler *handler;

	handler_handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!handler_handle)
		fail_msg("dlopen %s: %s", path, dlerror());
	*(void **)&init = dlsym(handler_handle, "handler_init");
	assert_non_null(init);
	handler = init();
	assert_non_null(handler);
	assert_int_equal(handler->abi_version, TCMU_HANDLER_ABI_VERSION);
	assert_int_equal(handler->struct_size, sizeof(struct tcmu_handler));
	assert_non_null(handler->open);
	assert_non_null(handler->close);
	assert_non_null(handler->read);
	assert_non_null(handler->write);
	assert_non_null(handler->flush);
	return handler;
}

void harness_unload(void)
{
	if (handler_handle)
		dlclose(handler_handle);
	handler_handle = NULL;
	harness_log_clear();
}

/* Cuts length bytes at buffer into up to 4 iovecs of unequal sizes. */
static size_t split(void *buffer, size_t length, struct iovec iov[4])
{
	size_t count = 0;
	char *position = buffer;

	while (length > 0 && count < 3) {
		size_t piece = length / 3 + 1;

		if (piece > length)
			piece = length;
		iov[count].iov_base = position;
		iov[count].iov_len = piece;
		position += piece;
		length -= piece;
		count++;
	}
	if (length > 0 || count == 0) {
		iov[count].iov_base = position;
		iov[count].iov_len = length;
		count++;
	}
	return count;
}

void harness_serve_watched_fds(const struct tcmu_handler *handler, struct tcmu_device *dev)
{
	struct pollfd polled[HARNESS_MAX_WATCHES];
	unsigned int i, count = 0;
	int ready;

	for (i = 0; i < dev->watched_count; i++) {
		if (!dev->watched_events[i])
			continue;
		polled[count].fd = dev->watched_fds[i];
		polled[count].events = (dev->watched_events[i] & TCMU_FD_READABLE ? POLLIN : 0) |
				       (dev->watched_events[i] & TCMU_FD_WRITABLE ? POLLOUT : 0);
		count++;
	}
	if (count == 0)
		fail_msg("the handler took a request, did not complete it and watches no fd");
	ready = poll(polled, count, ASYNC_POLL_MS);
	if (ready <= 0)
		return;
	for (i = 0; i < count; i++) {
		uint32_t watched = (polled[i].events & POLLIN ? TCMU_FD_READABLE : 0) |
				   (polled[i].events & POLLOUT ? TCMU_FD_WRITABLE : 0);
		uint32_t events = (polled[i].revents & POLLIN ? TCMU_FD_READABLE : 0) |
				  (polled[i].revents & POLLOUT ? TCMU_FD_WRITABLE : 0);

		/* As the core does: an error or hang-up reports every event watched. */
		if (polled[i].revents & (POLLERR | POLLHUP))
			events |= watched;
		events &= watched;
		if (!events)
			continue;
		dev->fd_ready_calls++;
		handler->fd_ready(dev, polled[i].fd, events);
	}
	if (handler->batch_done)
		handler->batch_done(dev);
}

static int finish(const struct tcmu_handler *handler, struct tcmu_device *dev,
		  struct tcmu_request *req, int returned)
{
	if (returned < 0) {
		assert_int_equal(req->completions, 0);
		return returned;
	}
	assert_int_equal(returned, 0);
	return harness_wait(handler, dev, req);
}

int harness_wait(const struct tcmu_handler *handler, struct tcmu_device *dev,
		 struct tcmu_request *req)
{
	int rounds = ASYNC_COMPLETION_TIMEOUT_MS / ASYNC_POLL_MS;

	if (handler->batch_done)
		handler->batch_done(dev);
	while (handler->fd_ready && __atomic_load_n(&req->completions, __ATOMIC_ACQUIRE) == 0) {
		if (rounds-- == 0)
			fail_msg("request not completed within %d ms", ASYNC_COMPLETION_TIMEOUT_MS);
		harness_serve_watched_fds(handler, dev);
	}
	assert_int_equal(__atomic_load_n(&req->completions, __ATOMIC_ACQUIRE), 1);
	return req->result;
}

int harness_read(const struct tcmu_handler *handler, struct tcmu_device *dev,
		 uint64_t offset, void *buffer, size_t length)
{
	struct tcmu_request req = { 0 };
	struct iovec iov[4];
	size_t count = split(buffer, length, iov);

	return finish(handler, dev, &req, handler->read(dev, &req, iov, count, offset, length));
}

int harness_write(const struct tcmu_handler *handler, struct tcmu_device *dev,
		  uint64_t offset, const void *buffer, size_t length, uint32_t flags)
{
	struct tcmu_request req = { 0 };
	struct iovec iov[4];
	size_t count = split((void *)buffer, length, iov);

	return finish(handler, dev, &req,
		      handler->write(dev, &req, iov, count, offset, length, flags));
}

int harness_flush(const struct tcmu_handler *handler, struct tcmu_device *dev)
{
	struct tcmu_request req = { 0 };

	return finish(handler, dev, &req, handler->flush(dev, &req));
}

int harness_unmap(const struct tcmu_handler *handler, struct tcmu_device *dev,
		  uint64_t offset, uint64_t length)
{
	struct tcmu_request req = { 0 };

	assert_non_null(handler->unmap);
	return finish(handler, dev, &req, handler->unmap(dev, &req, offset, length));
}

int harness_compare_and_write(const struct tcmu_handler *handler, struct tcmu_device *dev,
			      uint64_t offset, const void *compare, const void *write,
			      size_t length, uint32_t flags, uint64_t *ret_miscompare_offset)
{
	struct tcmu_request req = { 0 };
	struct iovec compare_iov[4], write_iov[4];
	size_t compare_count = split((void *)compare, length, compare_iov);
	size_t write_count = split((void *)write, length, write_iov);
	int result;

	assert_non_null(handler->compare_and_write);
	result = finish(handler, dev, &req,
			handler->compare_and_write(dev, &req, compare_iov, compare_count,
						   write_iov, write_count, offset, length, flags));
	if (req.miscompare) {
		assert_int_equal(result, 0);
		assert_true(req.miscompare_offset < length);
		*ret_miscompare_offset = req.miscompare_offset;
		return 1;
	}
	return result;
}

void harness_pattern(void *buffer, size_t length, unsigned int seed)
{
	unsigned char *bytes = buffer;
	uint32_t state = seed * 2654435761u + 1;

	for (size_t i = 0; i < length; i++) {
		state = state * 1103515245u + 12345u;
		bytes[i] = (unsigned char)(state >> 16);
	}
}

bool harness_is_zero(const void *buffer, size_t length)
{
	const unsigned char *bytes = buffer;

	for (size_t i = 0; i < length; i++)
		if (bytes[i])
			return false;
	return true;
}

void harness_expect_extent(const struct tcmu_handler *handler, struct tcmu_device *dev,
			   uint64_t offset, uint64_t length, bool expected_mapped,
			   uint64_t expected_length)
{
	bool mapped = !expected_mapped;
	uint64_t extent_length = 0;

	assert_non_null(handler->get_lba_status);
	assert_int_equal(handler->get_lba_status(dev, offset, length, &mapped, &extent_length), 0);
	assert_int_equal(mapped, expected_mapped);
	assert_int_equal(extent_length, expected_length);
}

int harness_check_unmap_middle(const struct tcmu_handler *handler, struct tcmu_device *dev,
			       const char *backing_path)
{
	const size_t mib = 1024 * 1024;
	size_t length = 4 * mib;
	char *written = malloc(length);
	char *read_back = malloc(length);
	struct stat before;
	struct stat after;
	int result;

	assert_non_null(written);
	assert_non_null(read_back);
	harness_pattern(written, length, 7);
	assert_int_equal(harness_write(handler, dev, 0, written, length, 0), 0);
	assert_int_equal(harness_flush(handler, dev), 0);
	assert_int_equal(stat(backing_path, &before), 0);
	assert_true(before.st_blocks >= (blkcnt_t)(length / 512));

	result = harness_unmap(handler, dev, mib, 2 * mib);
	if (result == 0) {
		assert_int_equal(stat(backing_path, &after), 0);
		assert_true(after.st_blocks <= before.st_blocks - (blkcnt_t)(2 * mib / 512));
		assert_int_equal(after.st_size, before.st_size);

		assert_int_equal(harness_read(handler, dev, 0, read_back, length), 0);
		assert_memory_equal(read_back, written, mib);
		assert_true(harness_is_zero(read_back + mib, 2 * mib));
		assert_memory_equal(read_back + 3 * mib, written + 3 * mib, mib);

		harness_expect_extent(handler, dev, 0, 16 * mib, true, mib);
		harness_expect_extent(handler, dev, mib, 16 * mib, false, 2 * mib);
		harness_expect_extent(handler, dev, 3 * mib, 16 * mib, true, mib);
		harness_expect_extent(handler, dev, 4 * mib, 12 * mib, false, 12 * mib);
	}
	free(written);
	free(read_back);
	return result;
}
