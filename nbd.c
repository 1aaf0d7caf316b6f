/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nbd.c: a disk served by an NBD server (qemu-nbd, nbdkit...) through
 * libnbd, many commands in flight, driven from the device's ring thread.
 * The config string (nbd_config.c) names an NBD URI or an exec: server;
 * nbd_connection.c opens and closes the connections.
 *
 * The export must hold the device; a read-only one makes the device
 * write-protected (and its writes fail with -EROFS should one reach us). Durable writes use FUA, else a flush after the write. UNMAP is
 * NBD_CMD_WRITE_ZEROES (reads back zeros; a trim leaves data undefined).
 * Server errors: ENOSPC/EDQUOT -> -ENOSPC, EROFS/EPERM -> -EROFS, others
 * -> -EIO. When the connection drops, or a command waits longer than the
 * ;timeout= option for its answer (the connection is then dropped),
 * commands in flight and all until it is back complete with -EAGAIN (BUSY:
 * the initiator retries); reconnection, restarting an exec: server,
 * follows after 0.1 s, backing off to 5 s. check_config, open and close
 * connect or disconnect in bounded time on the caller's thread; the rest
 * runs on the ring thread, woken by libnbd's socket and two timerfds, so
 * the state needs no lock (only the export's size, which reconfigure
 * reads on the main thread, is atomic).
 */
#include "libtcmu.h"
#include "nbd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/param.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define NBD_BACKOFF_FIRST_MS 100
#define NBD_BACKOFF_LAST_MS 5000
/* Largest single zeroing or block status request: NBD lengths are 32-bit. */
#define NBD_REQUEST_MAX (1ull << 30)

struct nbd_state {
	struct tcmu_device *dev;
	struct nbd_target target;
	struct nbd_handle *handle;	/* NULL while disconnected */
	bool ready;			/* handle connected and its export checked */
	int watched_fd;			/* libnbd's socket as watched, or -1 */
	uint32_t watched_events;
	int timer_fd;			/* reconnection backoff and connect timeout */
	int watchdog_fd;		/* ticks while commands are in flight */
	unsigned int backoff_ms;
	bool lost;			/* disconnected since a loss was logged */
	struct nbd_command *in_flight;	/* taken, not completed yet */
	struct nbd_command *finished;	/* libnbd part over, for nbd_finish */
	uint64_t export_size;		/* atomic: reconfigure reads it */
	/* The last connection's export. */
	bool read_only, can_fua, can_flush, can_zero, can_block_status;
};

struct nbd_command {
	struct nbd_state *state;
	struct tcmu_request *req;
	unsigned int pending;		/* counts: its own and libnbd's closures not freed */
	unsigned int issued, answered;	/* libnbd commands, and those the server answered */
	int result;
	bool flush_after;
	bool lba_status;		/* a query_lba_status, answered in extent */
	struct nbd_extent_answer extent;
	int64_t issued_ms;		/* when its current NBD command was issued */
	struct nbd_command *next_finished;
	struct nbd_command *previous, *next;	/* in state->in_flight */
};

/*
 * Takes what a fresh connection's export offers and logs it after what;
 * refuses an export smaller than the device.
 */
static int nbd_take_export(struct nbd_state *state, struct nbd_handle *handle, const char *what,
			   char **ret_reason)
{
	int64_t export_size = nbd_get_size(handle);
	uint64_t size = tcmu_device_get_size(state->dev);

	if (export_size < 0)
		return nbd_refuse(ret_reason, -EIO, "size of the export: %s", nbd_get_error());
	if ((uint64_t)export_size < size)
		return nbd_refuse(ret_reason, -ENOSPC,
				  "the export of '%s' holds %" PRId64 " bytes, less than the "
				  "device's %" PRIu64 " bytes", state->target.text, export_size, size);
	state->read_only = nbd_is_read_only(handle) != 0;
	state->can_fua = nbd_can_fua(handle) == 1;
	state->can_flush = nbd_can_flush(handle) == 1;
	state->can_zero = nbd_can_zero(handle) == 1;
	state->can_block_status = nbd_can_meta_context(handle, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
	/* The core refuses writes itself and initiators see WP in MODE SENSE. */
	tcmu_device_set_write_protected(state->dev, state->read_only);
	__atomic_store_n(&state->export_size, (uint64_t)export_size, __ATOMIC_RELAXED);
	tcmu_dev_info(state->dev, "%s %s '%s': export of %" PRId64 " bytes, dev size: %" PRIu64 "%s; FUA "
		      "%s, flush %s, zeroing %s, allocation map %s", what, state->target.kind,
		      state->target.text, export_size, size,
		      state->read_only ? ", read-only: writes fail with DATA PROTECT" : "",
		      state->can_fua ? "yes" : "no (a flush follows durable writes)",
		      state->can_flush ? "yes" : "no", state->can_zero ? "yes" : "no",
		      state->can_block_status ? "yes" : "no (GET LBA STATUS reports all mapped)");
	return 0;
}

/* Arms fd once after milliseconds (0 disarms), and then every interval_ms when not 0. */
static void nbd_arm_timer(struct nbd_state *state, int fd, unsigned int milliseconds,
			  unsigned int interval_ms)
{
	struct itimerspec when = {
		.it_value = { .tv_sec = milliseconds / 1000,
			      .tv_nsec = (long)(milliseconds % 1000) * 1000000 },
		.it_interval = { .tv_sec = interval_ms / 1000,
				 .tv_nsec = (long)(interval_ms % 1000) * 1000000 },
	};

	if (timerfd_settime(fd, 0, &when, NULL) < 0)
		tcmu_dev_err(state->dev, "timerfd_settime: %m");
}

/* Watches libnbd's socket for what its state machine waits for. 0 or -errno. */
static int nbd_update_watch(struct nbd_state *state)
{
	int fd = state->handle ? nbd_aio_get_fd(state->handle) : -1;
	unsigned int direction = fd < 0 ? 0 : nbd_aio_get_direction(state->handle);
	uint32_t events = (direction & LIBNBD_AIO_DIRECTION_READ ? TCMU_FD_READABLE : 0) |
			  (direction & LIBNBD_AIO_DIRECTION_WRITE ? TCMU_FD_WRITABLE : 0);
	int result;

	if (state->watched_fd >= 0 && fd != state->watched_fd) {
		tcmu_device_unwatch_fd(state->dev, state->watched_fd);
		state->watched_fd = -1;
	}
	if (fd < 0)
		return state->handle ? -EBADF : 0;
	if (fd == state->watched_fd && events == state->watched_events)
		return 0;
	result = tcmu_device_watch_fd(state->dev, fd, events);
	if (result < 0) {
		tcmu_dev_err(state->dev, "cannot watch the NBD connection: %s", strerror(-result));
		return result;
	}
	state->watched_fd = fd;
	state->watched_events = events;
	return 0;
}

/* Drops the connection (its commands have failed) and schedules the next attempt. */
static void nbd_disconnected(struct nbd_state *state, const char *why)
{
	why = why ? why : "connection closed";
	if (!state->lost) {
		char reason[512];

		/* The core logs the change of state. */
		snprintf(reason, sizeof(reason), "connection to %s '%s' lost (%s); commands get BUSY "
			 "until it is back", state->target.kind, state->target.text, why);
		tcmu_device_set_state(state->dev, TCMU_DEVICE_STATE_RECONNECTING, reason);
		state->lost = true;
	} else {
		tcmu_dev_dbg(state->dev, "reconnection failed: %s", why);
	}
	state->ready = false;
	if (state->watched_fd >= 0)
		tcmu_device_unwatch_fd(state->dev, state->watched_fd);
	state->watched_fd = -1;
	/* Abrupt: the server may not answer, and the ring thread must not wait for it. */
	nbd_handle_close(state->handle, &state->target, false);
	state->handle = NULL;
	nbd_arm_timer(state, state->timer_fd, state->backoff_ms, 0);
	state->backoff_ms = MIN(state->backoff_ms * 2, NBD_BACKOFF_LAST_MS);
}

static void nbd_reconnect_start(struct nbd_state *state)
{
	state->handle = nbd_handle_start(&state->target);
	if (!state->handle) {
		nbd_disconnected(state, nbd_get_error());
	} else {
		nbd_arm_timer(state, state->timer_fd, state->target.connect_timeout_ms, 0);
		nbd_update_watch(state);
	}
}

/* After libnbd did something: follow its connection's state. */
static void nbd_follow_connection(struct nbd_state *state)
{
	char *reason = NULL;

	if (!state->handle)
		return;
	if (nbd_aio_is_dead(state->handle) || nbd_aio_is_closed(state->handle)) {
		nbd_disconnected(state, nbd_get_error());
		return;
	}
	if (!state->ready && nbd_aio_is_ready(state->handle)) {
		if (nbd_take_export(state, state->handle, "reconnected to", &reason) < 0) {
			nbd_disconnected(state, reason ? reason : "unusable export");
			free(reason);
			return;
		}
		state->ready = true;
		state->lost = false;
		tcmu_device_set_state(state->dev, TCMU_DEVICE_STATE_OPEN, NULL);
		state->backoff_ms = NBD_BACKOFF_FIRST_MS;
		nbd_arm_timer(state, state->timer_fd, 0, 0);
	}
	nbd_update_watch(state);
}

/* Drops one count of command; the last one queues it for nbd_finish. */
static void nbd_command_release(struct nbd_command *command)
{
	if (--command->pending > 0)
		return;
	/* Abandoned by a connection closed under it: the server may not have seen it. */
	if (command->result == 0 && command->answered < command->issued)
		command->result = -EAGAIN;
	command->next_finished = command->state->finished;
	command->state->finished = command;
}

/* libnbd's completion callback; inside libnbd, which it must not call. */
static int nbd_command_done(void *user_data, int *error)
{
	struct nbd_command *command = user_data;

	command->answered++;
	if (*error && command->result == 0)
		command->result = nbd_result_from_error(*error);
	return 1;
}

/*
 * libnbd is done with one of command's closures: after its completion,
 * when the call that would have issued it failed, or when nbd_close
 * abandoned it (then the completion never came). Inside libnbd too.
 */
static void nbd_command_freed(void *user_data)
{
	nbd_command_release(user_data);
}

/*
 * The completion of one more libnbd command for command, counted before
 * libnbd sees it: libnbd may call it before the nbd_aio_* call returns.
 */
static nbd_completion_callback nbd_callback(struct nbd_command *command)
{
	command->pending++;
	command->issued++;
	command->issued_ms = nbd_now_ms();
	return (nbd_completion_callback){ .callback = nbd_command_done, .user_data = command,
					  .free = nbd_command_freed };
}

/* The error of a command libnbd refused (it has freed the closure already). */
static void nbd_issued(struct nbd_command *command, int64_t cookie)
{
	if (cookie >= 0 || command->result != 0)
		return;
	command->result = !nbd_aio_is_ready(command->state->handle) ?
			  -EAGAIN : nbd_result_from_error(nbd_get_errno());
}

/* The watchdog looks at commands in flight every quarter of the timeout, 0.1 s to 1 s. */
static unsigned int nbd_watchdog_interval_ms(const struct nbd_state *state)
{
	return MAX(100u, MIN(1000u, state->target.command_timeout_s * 250u));
}

/*
 * A command for req, holding one count of its own while its pieces are
 * issued so that none completing early finishes it; or NULL and the error
 * req is to be refused with.
 */
static struct nbd_command *nbd_command_new(struct nbd_state *state, struct tcmu_request *req,
					   bool is_write, int *ret_error)
{
	struct nbd_command *command = NULL;

	*ret_error = !state->ready ? -EAGAIN : is_write && state->read_only ? -EROFS : 0;
	if (*ret_error == 0 && !(command = malloc(sizeof(*command))))
		*ret_error = -ENOMEM;
	if (!command)
		return NULL;
	*command = (struct nbd_command){ .state = state, .req = req, .pending = 1,
					 .issued_ms = nbd_now_ms(), .next = state->in_flight };
	if (state->in_flight)
		state->in_flight->previous = command;
	else if (state->target.command_timeout_s)
		nbd_arm_timer(state, state->watchdog_fd, nbd_watchdog_interval_ms(state),
			      nbd_watchdog_interval_ms(state));
	state->in_flight = command;
	return command;
}

static void nbd_command_free(struct nbd_command *command)
{
	struct nbd_state *state = command->state;

	if (command->previous)
		command->previous->next = command->next;
	else
		state->in_flight = command->next;
	if (command->next)
		command->next->previous = command->previous;
	free(command);
}

/*
 * Completes the commands whose NBD part is over, or issues the flush that
 * follows a write. Never from a libnbd callback: a completion may make the
 * core call the handler again (the next step of a command), and libnbd must
 * not be called from its own callbacks.
 */
static void nbd_finish(struct nbd_state *state)
{
	while (state->finished) {
		struct nbd_command *command = state->finished;

		state->finished = command->next_finished;
		if (command->result == 0 && command->flush_after) {
			command->flush_after = false;
			command->pending = 1;
			if (state->ready)
				nbd_issued(command, nbd_aio_flush(state->handle, nbd_callback(command), 0));
			else
				command->result = -EAGAIN;
			nbd_command_release(command);
			continue;
		}
		if (command->lba_status && command->result == 0)
			tcmu_request_complete_lba_status(command->req, command->extent.mapped,
							 command->extent.has_extent &&
							 command->extent.run > 0 ?
							 command->extent.run : command->extent.length);
		else
			tcmu_request_complete(command->req, command->result);
		nbd_command_free(command);
	}
}

/*
 * A watchdog tick: a command that waited longer than the timeout for its
 * answer means a server that stopped answering (stopped, hung, or a
 * network that drops packets without a reset). The connection is then
 * dropped as if the server had closed it: its commands complete with BUSY
 * and reconnection starts.
 */
static void nbd_watchdog(struct nbd_state *state)
{
	int64_t now = nbd_now_ms();
	char why[128];

	if (!state->in_flight) {
		nbd_arm_timer(state, state->watchdog_fd, 0, 0);
		return;
	}
	for (struct nbd_command *command = state->in_flight; command; command = command->next) {
		if (command->pending == 0 || !state->handle ||
		    now - command->issued_ms < (int64_t)state->target.command_timeout_s * 1000)
			continue;
		snprintf(why, sizeof(why), "no answer to a command for %u s, the ;timeout= option",
			 state->target.command_timeout_s);
		nbd_disconnected(state, why);
		return;
	}
}

/* One NBD command per piece of iov: no copies, and the server sees them all at once. */
static int nbd_transfer(struct tcmu_device *dev, struct tcmu_request *req, const struct iovec *iov,
			size_t iov_count, uint64_t offset, bool is_write, uint32_t flags)
{
	struct nbd_state *state = tcmu_device_get_private(dev);
	bool durable = is_write && ((flags & TCMU_WRITE_FUA) || !tcmu_device_get_write_cache(dev));
	uint32_t nbd_flags = durable && state->can_fua ? LIBNBD_CMD_FLAG_FUA : 0;
	int result;
	struct nbd_command *command = nbd_command_new(state, req, is_write, &result);

	if (!command)
		return result;
	command->flush_after = durable && !state->can_fua && state->can_flush;
	for (size_t i = 0; i < iov_count && command->result == 0; offset += iov[i++].iov_len) {
		if (iov[i].iov_len == 0)
			continue;
		if (is_write)
			nbd_issued(command, nbd_aio_pwrite(state->handle, iov[i].iov_base,
							   iov[i].iov_len, offset,
							   nbd_callback(command), nbd_flags));
		else
			nbd_issued(command, nbd_aio_pread(state->handle, iov[i].iov_base,
							  iov[i].iov_len, offset,
							  nbd_callback(command), 0));
	}
	nbd_command_release(command);
	return 0;
}

static int nbd_device_read(struct tcmu_device *dev, struct tcmu_request *req,
			   const struct iovec *iov, size_t iov_count, uint64_t offset,
			   uint64_t length __attribute__((unused)))
{
	return nbd_transfer(dev, req, iov, iov_count, offset, false, 0);
}

static int nbd_device_write(struct tcmu_device *dev, struct tcmu_request *req,
			    const struct iovec *iov, size_t iov_count, uint64_t offset,
			    uint64_t length __attribute__((unused)), uint32_t flags)
{
	return nbd_transfer(dev, req, iov, iov_count, offset, true, flags);
}

static int nbd_device_flush(struct tcmu_device *dev, struct tcmu_request *req)
{
	struct nbd_state *state = tcmu_device_get_private(dev);
	struct nbd_command *command;
	int result;

	if (state->ready && (state->read_only || !state->can_flush)) {
		tcmu_request_complete(req, 0);
		return 0;
	}
	command = nbd_command_new(state, req, false, &result);
	if (!command)
		return result;
	nbd_issued(command, nbd_aio_flush(state->handle, nbd_callback(command), 0));
	nbd_command_release(command);
	return 0;
}

static int nbd_device_unmap(struct tcmu_device *dev, struct tcmu_request *req,
		     uint64_t offset, uint64_t length)
{
	struct nbd_state *state = tcmu_device_get_private(dev);
	int result;
	struct nbd_command *command = nbd_command_new(state, req, true, &result);

	if (!command)
		return result;
	/* Advertised only where the server zeroes; a server changed since may not. */
	if (!state->can_zero)
		command->result = -EOPNOTSUPP;
	for (uint64_t done = 0; done < length && command->result == 0; done += NBD_REQUEST_MAX) {
		uint64_t piece = length - done < NBD_REQUEST_MAX ? length - done : NBD_REQUEST_MAX;

		nbd_issued(command, nbd_aio_zero(state->handle, piece, offset + done,
						 nbd_callback(command), 0));
	}
	nbd_command_release(command);
	return 0;
}

static void nbd_device_fd_ready(struct tcmu_device *dev, int fd, uint32_t events)
{
	struct nbd_state *state = tcmu_device_get_private(dev);
	uint64_t expirations;

	if (fd == state->watchdog_fd) {
		if (read(fd, &expirations, sizeof(expirations)) == sizeof(expirations))
			nbd_watchdog(state);
	} else if (fd == state->timer_fd) {
		if (read(fd, &expirations, sizeof(expirations)) < 0)
			return;
		if (state->handle && !state->ready)
			nbd_disconnected(state, "no answer in time");
		else if (!state->handle)
			nbd_reconnect_start(state);
	} else if (state->handle && fd == nbd_aio_get_fd(state->handle)) {
		if ((events & TCMU_FD_WRITABLE) &&
		    (nbd_aio_get_direction(state->handle) & LIBNBD_AIO_DIRECTION_WRITE))
			nbd_aio_notify_write(state->handle);
		if (events & TCMU_FD_READABLE)
			nbd_aio_notify_read(state->handle);
	}
}

/* After each batch of commands and each fd_ready: what libnbd's progress calls for. */
static void nbd_device_batch_done(struct tcmu_device *dev)
{
	struct nbd_state *state = tcmu_device_get_private(dev);

	nbd_finish(state);
	nbd_follow_connection(state);
	nbd_finish(state);
}

/*
 * The server's allocation map, asked like a read on the data connection
 * (nbd_extent_query_start) and answered from fd_ready: a server that is
 * slow to answer holds no ring thread, and one that stops answering is
 * the watchdog's, as for every command.
 */
static int nbd_device_query_lba_status(struct tcmu_device *dev, struct tcmu_request *req,
				       uint64_t offset, uint64_t length)
{
	struct nbd_state *state = tcmu_device_get_private(dev);
	struct nbd_command *command;
	int result;

	if (state->ready && !state->can_block_status) {
		tcmu_request_complete_lba_status(req, true, length);
		return 0;
	}
	command = nbd_command_new(state, req, false, &result);
	if (!command)
		return result;
	command->lba_status = true;
	command->extent.length = MIN(length, NBD_REQUEST_MAX);
	nbd_issued(command, nbd_extent_query_start(state->handle, offset, &command->extent,
						   nbd_callback(command)));
	nbd_command_release(command);
	return 0;
}

/*
 * On the main thread: the server and its export stay; a new size is
 * taken when the export holds it (the core then tells initiators
 * CAPACITY DATA HAS CHANGED). A reconnection that finds the export
 * smaller than the device gives up that connection.
 */
static int nbd_device_reconfigure(struct tcmu_device *dev, const struct tcmu_device_change *change)
{
	struct nbd_state *state = tcmu_device_get_private(dev);
	uint64_t export_size = __atomic_load_n(&state->export_size, __ATOMIC_RELAXED);

	/* The core passes a config only when the string changed. */
	if (change->what & TCMU_CHANGE_CONFIG) {
		tcmu_dev_err(dev, "new config '%s' refused: a running nbd device keeps its server; "
			     "create another backstore instead", change->config);
		return -EOPNOTSUPP;
	}
	if (!(change->what & TCMU_CHANGE_SIZE))
		return 0;
	if (change->size > export_size) {
		tcmu_dev_err(dev, "new size %" PRIu64 " bytes refused: the export of '%s' holds "
			     "only %" PRIu64 " bytes", change->size, state->target.text, export_size);
		return -ENOSPC;
	}
	tcmu_dev_info(dev, "dev size: %" PRIu64 " (the export holds %" PRIu64 " bytes)",
		      change->size, export_size);
	return 0;
}

static int nbd_check_config(const char *config, char **ret_reason)
{
	struct nbd_target target;
	struct nbd_handle *handle;
	int result;

	result = nbd_target_parse(config, &target, ret_reason);
	if (result < 0)
		return result;
	handle = nbd_connect_blocking(&target, &result, ret_reason);
	nbd_handle_close(handle, &target, true);
	nbd_target_free(&target);
	return handle ? 0 : result;
}

static void nbd_state_free(struct tcmu_device *dev, struct nbd_state *state)
{
	tcmu_device_set_private(dev, NULL);
	nbd_handle_close(state->handle, &state->target, true);
	/* EBADF for one never created */
	close(state->timer_fd);
	close(state->watchdog_fd);
	nbd_target_free(&state->target);
	free(state);
}

static int nbd_device_open(struct tcmu_device *dev)
{
	struct nbd_state *state = malloc(sizeof(*state));
	char *reason = NULL;
	int result;

	if (!state)
		return -ENOMEM;
	*state = (struct nbd_state){
		.dev = dev, .watched_fd = -1, .backoff_ms = NBD_BACKOFF_FIRST_MS,
		.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC),
		.watchdog_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC),
	};
	result = state->timer_fd < 0 || state->watchdog_fd < 0 ?
		 nbd_refuse(&reason, -errno, "timerfd_create: %m") :
		 nbd_target_parse(tcmu_device_get_config(dev), &state->target, &reason);
	if (result == 0)
		state->handle = nbd_connect_blocking(&state->target, &result, &reason);
	if (state->handle)
		result = nbd_take_export(state, state->handle, "connected to", &reason);
	if (result == 0) {
		tcmu_device_set_unmap_supported(dev, state->can_zero && !state->read_only);
		tcmu_device_set_private(dev, state);
		result = tcmu_device_watch_fd(dev, state->timer_fd, TCMU_FD_READABLE);
		if (result == 0)
			result = tcmu_device_watch_fd(dev, state->watchdog_fd, TCMU_FD_READABLE);
		if (result == 0)
			result = nbd_update_watch(state);
		if (result < 0)
			nbd_refuse(&reason, result, "cannot watch the connection: %s", strerror(-result));
	}
	if (result < 0) {
		tcmu_dev_err(dev, "%s", reason ? reason : strerror(-result));
		free(reason);
		tcmu_device_unwatch_fd(dev, state->timer_fd);
		tcmu_device_unwatch_fd(dev, state->watchdog_fd);
		nbd_state_free(dev, state);
		return result;
	}
	state->ready = true;
	return 0;
}

static void nbd_device_close(struct tcmu_device *dev)
{
	nbd_state_free(dev, tcmu_device_get_private(dev));
}

static struct tcmu_handler nbd_handler = {
	.subtype = "nbd",
	.name = "Disk served by an NBD server (qemu-nbd, nbdkit...) through libnbd",
	.config_description = NBD_CONFIG_DESCRIPTION,
	.check_config = nbd_check_config,
	.open = nbd_device_open,
	.close = nbd_device_close,
	.read = nbd_device_read,
	.write = nbd_device_write,
	.flush = nbd_device_flush,
	.unmap = nbd_device_unmap,
	.reconfigure = nbd_device_reconfigure,
	.query_lba_status = nbd_device_query_lba_status,
	.fd_ready = nbd_device_fd_ready,
	.batch_done = nbd_device_batch_done,
};

TCMU_HANDLER_REGISTER(nbd_handler)
