/* SPDX-License-Identifier: Apache-2.0 */
/*
 * handler_reverse.c: a test handler (handler_reverse.so, built by tests/)
 * that proves out-of-order completion through the real ring. It keeps the
 * disk in memory and is asynchronous: read, write and flush only queue the
 * request; batch_done arms a timerfd that the ring thread watches, and when
 * it fires fd_ready moves the data and completes every queued request,
 * newest first.
 *
 * Config string: "reverse/[HOLD_MS][:ro]": how long requests are held
 * after the batch that queued them (default 1 ms), so that a removal meets
 * requests in flight; ":ro" makes the device write-protected. Its unit
 * serial number is "reverse-<name>", and it does COMPARE AND WRITE itself
 * (queued like the rest): the libtcmu 1.2 calls, through a real kernel.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <libtcmu.h>

enum reverse_op { REVERSE_READ, REVERSE_WRITE, REVERSE_FLUSH, REVERSE_COMPARE_AND_WRITE };

struct reverse_request {
	struct tcmu_request *req;
	enum reverse_op op;
	const struct iovec *iov;
	size_t iov_count;
	uint64_t offset;
	/* COMPARE AND WRITE: iov is what to compare with, then this is written. */
	const struct iovec *write_iov;
	size_t write_count;
};

struct reverse_state {
	uint8_t *medium;
	int timer_fd;
	long hold_ms;
	bool timer_armed;
	struct reverse_request *queued;
	size_t queued_count;
	size_t queued_capacity;
	struct reverse_request *spare;	/* the other array, while fd_ready answers one */
	size_t spare_capacity;
	unsigned long completed;
	unsigned long overtaking;	/* completed before an older request */
};

static int reverse_check_config(const char *config, char **ret_reason)
{
	char *end;

	errno = 0;
	if (*config && (strtol(config, &end, 10) < 0 || errno || (*end && strcmp(end, ":ro")))) {
		*ret_reason = strdup("the config is a hold time in milliseconds, or empty, "
				     "then optionally ':ro'");
		return -EINVAL;
	}
	return 0;
}

static int reverse_open(struct tcmu_device *dev)
{
	struct reverse_state *state = calloc(1, sizeof(*state));
	const char *config = tcmu_device_get_config(dev);
	char serial[128];
	bool read_only;
	int result;

	if (!state)
		return -ENOMEM;
	state->hold_ms = *config ? strtol(config, NULL, 10) : 1;
	state->medium = calloc(1, tcmu_device_get_size(dev));
	state->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (!state->medium || state->timer_fd < 0) {
		result = state->medium ? -errno : -ENOMEM;
		tcmu_dev_err(dev, "reverse open: %s", strerror(-result));
		goto fail;
	}
	result = tcmu_device_watch_fd(dev, state->timer_fd, TCMU_FD_READABLE);
	if (result < 0) {
		tcmu_dev_err(dev, "reverse open: watch: %s", strerror(-result));
		goto fail;
	}
	if (snprintf(serial, sizeof(serial), "reverse-%s", tcmu_device_get_name(dev)) >=
	    (int)sizeof(serial))
		serial[sizeof(serial) - 1] = '\0';
	result = tcmu_device_set_unit_serial(dev, serial);
	if (result < 0) {
		tcmu_dev_err(dev, "reverse open: serial: %s", strerror(-result));
		goto fail;
	}
	read_only = strstr(config, ":ro") != NULL;
	tcmu_device_set_write_protected(dev, read_only);
	tcmu_device_set_private(dev, state);
	tcmu_dev_info(dev, "reverse open, %llu bytes, requests held %ld ms%s",
		      (unsigned long long)tcmu_device_get_size(dev), state->hold_ms,
		      read_only ? ", read-only" : "");
	return 0;

fail:
	if (state->timer_fd >= 0)
		close(state->timer_fd);
	free(state->medium);
	free(state);
	return result;
}

static void reverse_close(struct tcmu_device *dev)
{
	struct reverse_state *state = tcmu_device_get_private(dev);

	tcmu_dev_info(dev, "reverse close: %lu requests completed (%lu before an older one), "
		      "%zu still queued", state->completed, state->overtaking, state->queued_count);
	close(state->timer_fd);
	free(state->queued);
	free(state->spare);
	free(state->medium);
	free(state);
}

static int reverse_queue(struct tcmu_device *dev, struct tcmu_request *req, enum reverse_op op,
			 const struct iovec *iov, size_t iov_count, uint64_t offset)
{
	struct reverse_state *state = tcmu_device_get_private(dev);

	if (state->queued_count == state->queued_capacity) {
		size_t capacity = state->queued_capacity ? state->queued_capacity * 2 : 64;
		struct reverse_request *grown = realloc(state->queued, capacity * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		state->queued = grown;
		state->queued_capacity = capacity;
	}
	state->queued[state->queued_count++] = (struct reverse_request){
		.req = req, .op = op, .iov = iov, .iov_count = iov_count, .offset = offset,
	};
	return 0;
}

static int reverse_read(struct tcmu_device *dev, struct tcmu_request *req,
			const struct iovec *iov, size_t iov_count, uint64_t offset, uint64_t length)
{
	(void)length;
	return reverse_queue(dev, req, REVERSE_READ, iov, iov_count, offset);
}

static int reverse_write(struct tcmu_device *dev, struct tcmu_request *req,
			 const struct iovec *iov, size_t iov_count, uint64_t offset,
			 uint64_t length, uint32_t flags)
{
	(void)length;
	(void)flags;
	return reverse_queue(dev, req, REVERSE_WRITE, iov, iov_count, offset);
}

static int reverse_flush(struct tcmu_device *dev, struct tcmu_request *req)
{
	return reverse_queue(dev, req, REVERSE_FLUSH, NULL, 0, 0);
}

static int reverse_compare_and_write(struct tcmu_device *dev, struct tcmu_request *req,
				     const struct iovec *compare_iov, size_t compare_count,
				     const struct iovec *write_iov, size_t write_count,
				     uint64_t offset, uint64_t length, uint32_t flags)
{
	struct reverse_state *state = tcmu_device_get_private(dev);
	int result;

	(void)length;
	(void)flags;
	result = reverse_queue(dev, req, REVERSE_COMPARE_AND_WRITE, compare_iov, compare_count,
			       offset);
	if (result == 0) {
		state->queued[state->queued_count - 1].write_iov = write_iov;
		state->queued[state->queued_count - 1].write_count = write_count;
	}
	return result;
}

/*
 * COMPARE AND WRITE on the ring thread, which alone touches the medium:
 * atomic. The offset of the first byte that differs, or -1 when none.
 */
static int64_t reverse_compare(const struct reverse_state *state,
			       const struct reverse_request *queued)
{
	uint64_t offset = queued->offset, done = 0;

	for (size_t i = 0; i < queued->iov_count; i++) {
		const uint8_t *expected = queued->iov[i].iov_base;

		for (size_t j = 0; j < queued->iov[i].iov_len; j++, done++)
			if (state->medium[offset + done] != expected[j])
				return (int64_t)done;
	}
	return -1;
}

/* After each batch: requests queued now are answered when the timer fires. */
static void reverse_batch_done(struct tcmu_device *dev)
{
	struct reverse_state *state = tcmu_device_get_private(dev);
	struct itimerspec hold = {
		.it_value = { .tv_sec = state->hold_ms / 1000,
			      .tv_nsec = (state->hold_ms % 1000) * 1000000 + 1 },
	};

	if (state->queued_count == 0 || state->timer_armed)
		return;
	if (timerfd_settime(state->timer_fd, 0, &hold, NULL) < 0) {
		tcmu_dev_err(dev, "reverse: arm the timer: %m");
		return;
	}
	state->timer_armed = true;
}

static void reverse_transfer(struct reverse_state *state, const struct reverse_request *queued)
{
	uint64_t offset = queued->offset;

	for (size_t i = 0; i < queued->iov_count; i++) {
		if (queued->op == REVERSE_READ)
			memcpy(queued->iov[i].iov_base, state->medium + offset, queued->iov[i].iov_len);
		else
			memcpy(state->medium + offset, queued->iov[i].iov_base, queued->iov[i].iov_len);
		offset += queued->iov[i].iov_len;
	}
}

static void reverse_fd_ready(struct tcmu_device *dev, int fd, uint32_t events)
{
	struct reverse_state *state = tcmu_device_get_private(dev);
	struct reverse_request *batch = state->queued;
	size_t count = state->queued_count, capacity = state->queued_capacity;
	uint64_t expirations;

	(void)events;
	if (read(fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		tcmu_dev_err(dev, "reverse: read the timer: %m");
	state->timer_armed = false;
	/*
	 * A completion may start the next step of a command (the write of
	 * COMPARE AND WRITE), which queues again: into the other array, to be
	 * answered after the next timer.
	 */
	state->queued = state->spare;
	state->queued_capacity = state->spare_capacity;
	state->queued_count = 0;
	for (size_t i = count; i-- > 0;) {
		int64_t differs = -1;

		if (batch[i].op == REVERSE_COMPARE_AND_WRITE) {
			differs = reverse_compare(state, &batch[i]);
			if (differs < 0)
				reverse_transfer(state, &(struct reverse_request){
					.op = REVERSE_WRITE, .iov = batch[i].write_iov,
					.iov_count = batch[i].write_count, .offset = batch[i].offset });
		} else if (batch[i].op != REVERSE_FLUSH) {
			reverse_transfer(state, &batch[i]);
		}
		state->completed++;
		if (i > 0)
			state->overtaking++;
		if (differs >= 0)
			tcmu_request_complete_miscompare(batch[i].req, (uint64_t)differs);
		else
			tcmu_request_complete(batch[i].req, 0);
	}
	state->spare = batch;
	state->spare_capacity = capacity;
}

static struct tcmu_handler reverse_handler = {
	.subtype = "reverse",
	.name = "Test handler: memory, requests completed newest first from fd_ready",
	.config_description = "[hold time in milliseconds][:ro]",
	.check_config = reverse_check_config,
	.open = reverse_open,
	.close = reverse_close,
	.read = reverse_read,
	.write = reverse_write,
	.flush = reverse_flush,
	.flags = TCMU_HANDLER_NON_ROTATING,
	.fd_ready = reverse_fd_ready,
	.batch_done = reverse_batch_done,
	.compare_and_write = reverse_compare_and_write,
};
TCMU_HANDLER_REGISTER(reverse_handler)
