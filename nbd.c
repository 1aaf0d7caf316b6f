/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nbd.c: a disk served by an NBD server (qemu-nbd, nbdkit...) through
 * libnbd, many commands in flight, driven from the device's ring thread.
 *
 * Config string, percent-decoded once (%3A, %2C, %20, %25 for ':', ',',
 * ' ', '%', which targetcli would not keep): an NBD URI (libnbd's syntax:
 * nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH, nbds...) or
 * exec:COMMAND ARGS, a server started by socket activation, split at
 * spaces and run with execvp, never by a shell ('$', ';', '|' reach it as
 * they are). Only root creates TCMU devices, so only root chooses what runs.
 *
 * The export must hold the device; a read-only one fails writes with
 * -EROFS. Durable writes use FUA, else a flush after the write. UNMAP is
 * NBD_CMD_WRITE_ZEROES (reads back zeros; a trim leaves data undefined).
 * Server errors: ENOSPC/EDQUOT -> -ENOSPC, EROFS/EPERM -> -EROFS, others
 * -> -EIO. When the connection drops, commands in flight and all until it
 * is back complete with -EAGAIN (BUSY: the initiator retries); reconnection,
 * restarting an exec: server, follows after 0.1 s, backing off to 5 s.
 * check_config, open and close connect or disconnect in bounded time on
 * the caller's thread; the rest runs on the ring thread, woken by libnbd's
 * socket and a timerfd, so the state needs no lock.
 */
#include "libtcmu.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <libnbd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/param.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define NBD_CONNECT_TIMEOUT_MS 5000
/* Starting a server (qemu-nbd opening an image) may take longer than a network's answer. */
#define NBD_EXEC_CONNECT_TIMEOUT_MS 30000
#define NBD_DISCONNECT_TIMEOUT_MS 5000
#define NBD_BACKOFF_FIRST_MS 100
#define NBD_BACKOFF_LAST_MS 5000
/* Largest single zeroing request: NBD lengths are 32-bit. */
#define NBD_ZERO_CHUNK (1ull << 30)

#define NBD_CONFIG_DESCRIPTION							\
	"An NBD URI (nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH, nbds://\n" \
	"with TLS) or exec:COMMAND ARGS, a server run without a shell (split at spaces)\n" \
	"by socket activation, e.g. exec:qemu-nbd -f qcow2 /var/lib/vm.qcow2 or\n"	\
	"exec:nbdkit memory 1G. Percent-decoded once: %3A for ':', %20 for a space,\n" \
	"%2C for ',', %25 for '%'. The export must hold the device size."

/* What a config string names. */
struct nbd_target {
	char *uri;	/* or NULL for exec: */
	char **argv;	/* NULL-terminated, or NULL for a URI */
	char *text;	/* decoded string, for messages */
	char *words;	/* what argv points into */
	unsigned int connect_timeout_ms;
	const char *kind;	/* for messages: "the NBD server at" and the like */
};

struct nbd_state {
	struct tcmu_device *dev;
	struct nbd_target target;
	struct nbd_handle *handle;	/* NULL while disconnected */
	bool ready;			/* handle connected and its export checked */
	int watched_fd;			/* libnbd's socket as watched, or -1 */
	uint32_t watched_events;
	int timer_fd;			/* reconnection backoff and connect timeout */
	unsigned int backoff_ms;
	bool lost;			/* disconnected since a loss was logged */
	struct nbd_command *finished;	/* libnbd part over, for nbd_finish */
	bool read_only, can_fua, can_flush, can_zero;	/* the last connection's export */
};

struct nbd_command {
	struct nbd_state *state;
	struct tcmu_request *req;
	unsigned int pending;		/* libnbd commands not completed yet */
	int result;
	bool flush_after;
	struct nbd_command *next_finished;
};

static int __attribute__((format(printf, 3, 4)))
nbd_refuse(char **ret_reason, int error, const char *format, ...)
{
	va_list arguments;

	va_start(arguments, format);
	if (vasprintf(ret_reason, format, arguments) < 0)
		*ret_reason = NULL;
	va_end(arguments);
	return error;
}

static int nbd_percent_decode(const char *config, char *text, char **ret_reason)
{
	for (const char *c = config; *c; c++) {
		char hex[3] = { c[1], c[1] ? c[2] : '\0', '\0' };

		*text = *c;
		if (*c == '%' && (!isxdigit((unsigned char)hex[0]) || !isxdigit((unsigned char)hex[1])))
			return nbd_refuse(ret_reason, -EINVAL, "'%%' at byte %zu is not followed by two "
					  "hex digits (%%25 is a '%%')", (size_t)(c - config));
		if (*c == '%') {
			*text = (char)strtol(hex, NULL, 16);
			c += 2;
		}
		if ((unsigned char)*text < 0x20 || *text == 0x7f)
			return nbd_refuse(ret_reason, -EINVAL, "the config string contains control characters");
		text++;
	}
	*text = '\0';
	return 0;
}

/* argv points into words, which this splits at spaces. */
static int nbd_split_command(char *words, char ***ret_argv, char **ret_reason)
{
	/* n bytes hold at most (n + 1) / 2 words, and the NULL ends them. */
	char **argv = calloc(strlen(words) / 2 + 2, sizeof(*argv));
	size_t count = 0;
	char *saved;

	*ret_argv = argv;
	if (!argv)
		return nbd_refuse(ret_reason, -ENOMEM, "out of memory");
	for (char *word = strtok_r(words, " ", &saved); word; word = strtok_r(NULL, " ", &saved))
		argv[count++] = word;
	if (count == 0)
		return nbd_refuse(ret_reason, -EINVAL,
				  "exec: needs a server command, e.g. exec:nbdkit memory 1G");
	return 0;
}

static void nbd_target_free(struct nbd_target *target)
{
	free(target->argv);
	free(target->words);
	free(target->text);
	*target = (struct nbd_target){ 0 };
}

/* Parses config into target; on failure a reason and target empty. 0 or -errno. */
static int nbd_target_parse(const char *config, struct nbd_target *target, char **ret_reason)
{
	int result;

	*target = (struct nbd_target){ .text = malloc(strlen(config) + 1) };
	result = target->text ? nbd_percent_decode(config, target->text, ret_reason)
			      : nbd_refuse(ret_reason, -ENOMEM, "out of memory");
	if (result == 0 && strncmp(target->text, "exec:", strlen("exec:")) == 0) {
		target->words = strdup(target->text + strlen("exec:"));
		result = target->words ? nbd_split_command(target->words, &target->argv, ret_reason)
				       : nbd_refuse(ret_reason, -ENOMEM, "out of memory");
		target->connect_timeout_ms = NBD_EXEC_CONNECT_TIMEOUT_MS;
		target->kind = "the server started by";
	} else if (result == 0 && strncmp(target->text, "nbd", 3) == 0 &&
		   strstr(target->text, "://")) {
		/* libnbd's URI parser judges the rest, scheme included. */
		target->uri = target->text;
		target->connect_timeout_ms = NBD_CONNECT_TIMEOUT_MS;
		target->kind = "the NBD server at";
	} else if (result == 0) {
		result = nbd_refuse(ret_reason, -EINVAL,
				    "'%s' is neither an NBD URI (nbd://HOST/EXPORT, "
				    "nbd+unix:///EXPORT?socket=PATH, nbds://...) nor exec:SERVER "
				    "COMMAND", target->text);
	}
	if (result < 0)
		nbd_target_free(target);
	return result;
}

static int64_t nbd_now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* A handle that starts connecting to target, or NULL (libnbd's error). */
static struct nbd_handle *nbd_handle_start(const struct nbd_target *target)
{
	struct nbd_handle *handle = nbd_create();
	sigset_t none, previous;
	int result = -1;

	/* A server keeps the forking thread's signal mask; ring threads block all (SIGTERM). */
	sigemptyset(&none);
	pthread_sigmask(SIG_SETMASK, &none, &previous);
	if (handle)
		result = target->argv ? nbd_aio_connect_systemd_socket_activation(handle, target->argv)
				      : nbd_aio_connect_uri(handle, target->uri);
	pthread_sigmask(SIG_SETMASK, &previous, NULL);
	if (result < 0)
		nbd_close(handle);	/* NULL-safe */
	return result < 0 ? NULL : handle;
}

/*
 * Runs handle's state machine on this thread until done() holds, the
 * connection is gone or deadline_ms passes. true when done() held.
 */
static bool nbd_drive_until(struct nbd_handle *handle, int (*done)(struct nbd_handle *),
			    int64_t deadline_ms)
{
	while (!done(handle) && !nbd_aio_is_dead(handle) && !nbd_aio_is_closed(handle)) {
		unsigned int direction = nbd_aio_get_direction(handle);
		struct pollfd poll_fd = { .fd = nbd_aio_get_fd(handle) };
		int64_t left = deadline_ms - nbd_now_ms();

		if (left <= 0 || poll_fd.fd < 0)
			return false;
		poll_fd.events = (direction & LIBNBD_AIO_DIRECTION_READ ? POLLIN : 0) |
				 (direction & LIBNBD_AIO_DIRECTION_WRITE ? POLLOUT : 0);
		if (poll(&poll_fd, 1, (int)left) < 0 && errno != EINTR)
			return false;
		if ((poll_fd.revents & POLLOUT) && nbd_aio_notify_write(handle) < 0)
			return false;
		if ((poll_fd.revents & (POLLIN | POLLHUP | POLLERR)) &&
		    nbd_aio_notify_read(handle) < 0)
			return false;
	}
	return done(handle);
}

/*
 * Ends a connection and the server an exec: target started, within bounded
 * time: a clean disconnect, then SIGTERM (the server has no client left and
 * flushes what it holds); SIGKILL when there was no clean disconnect (a
 * server that never got ready, or one that stopped answering).
 */
static void nbd_handle_close(struct nbd_handle *handle, const struct nbd_target *target)
{
	if (!handle)
		return;
	bool clean = nbd_aio_is_ready(handle) && nbd_aio_disconnect(handle, 0) == 0 &&
		     nbd_drive_until(handle, nbd_aio_is_closed,
				     nbd_now_ms() + NBD_DISCONNECT_TIMEOUT_MS);

	/* nbd_close waits for the server: it must be on its way out. */
	if (target->argv)
		nbd_kill_subprocess(handle, clean ? SIGTERM : SIGKILL);
	nbd_close(handle);
}

/* Connects to target in bounded time. The handle, or NULL and a reason. */
static struct nbd_handle *nbd_connect_blocking(const struct nbd_target *target, int *ret_error,
					       char **ret_reason)
{
	struct nbd_handle *handle = nbd_handle_start(target);
	const char *error;

	if (handle && nbd_drive_until(handle, nbd_aio_is_ready,
				      nbd_now_ms() + target->connect_timeout_ms))
		return handle;
	error = nbd_get_error();
	if (handle && !nbd_aio_is_dead(handle) && !nbd_aio_is_closed(handle))
		error = "no answer in time";
	*ret_error = nbd_refuse(ret_reason, -EHOSTUNREACH, "cannot connect to %s '%s': %s%s",
				target->kind, target->text,
				error ? error : "connection closed", target->argv ?
				" (the server's own messages are in the daemon's log)" : "");
	nbd_handle_close(handle, target);
	return NULL;
}

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
	tcmu_dev_info(state->dev, "%s %s '%s': export of %" PRId64 " bytes, dev size: %" PRIu64 "%s; FUA "
		      "%s, flush %s, zeroing %s", what, state->target.kind, state->target.text,
		      export_size, size, state->read_only ? ", read-only: writes fail with DATA PROTECT" : "",
		      state->can_fua ? "yes" : "no (a flush follows durable writes)",
		      state->can_flush ? "yes" : "no", state->can_zero ? "yes" : "no");
	return 0;
}

static void nbd_arm_timer(struct nbd_state *state, unsigned int milliseconds)
{
	struct itimerspec when = { .it_value = { .tv_sec = milliseconds / 1000,
						  .tv_nsec = (long)(milliseconds % 1000) * 1000000 } };

	if (timerfd_settime(state->timer_fd, 0, &when, NULL) < 0)
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
	nbd_handle_close(state->handle, &state->target);
	state->handle = NULL;
	nbd_arm_timer(state, state->backoff_ms);
	state->backoff_ms = MIN(state->backoff_ms * 2, NBD_BACKOFF_LAST_MS);
}

static void nbd_reconnect_start(struct nbd_state *state)
{
	state->handle = nbd_handle_start(&state->target);
	if (!state->handle) {
		nbd_disconnected(state, nbd_get_error());
	} else {
		nbd_arm_timer(state, state->target.connect_timeout_ms);
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
		nbd_arm_timer(state, 0);
	}
	nbd_update_watch(state);
}

/* The -errno for the initiator of a server's (or libnbd's) error. */
static int nbd_result_from_error(int error)
{
	if (error == ENOSPC || error == EDQUOT)
		return -ENOSPC;
	if (error == EROFS || error == EPERM)
		return -EROFS;
	if (error == ENOMEM)
		return -ENOMEM;
	/* The connection went away, not the data: the initiator retries. */
	if (error == ENOTCONN || error == ESHUTDOWN || error == ECONNRESET || error == EPIPE)
		return -EAGAIN;
	return error ? -EIO : 0;
}

/* Drops one count of command; the last one queues it for nbd_finish. */
static void nbd_command_release(struct nbd_command *command)
{
	if (--command->pending > 0)
		return;
	command->next_finished = command->state->finished;
	command->state->finished = command;
}

/* libnbd's completion callback; inside libnbd, which it must not call. */
static int nbd_command_done(void *user_data, int *error)
{
	struct nbd_command *command = user_data;

	if (*error && command->result == 0)
		command->result = nbd_result_from_error(*error);
	nbd_command_release(command);
	return 1;
}

/*
 * The completion of one more libnbd command for command, counted before
 * libnbd sees it: libnbd may call it before the nbd_aio_* call returns.
 */
static nbd_completion_callback nbd_callback(struct nbd_command *command)
{
	command->pending++;
	return (nbd_completion_callback){ .callback = nbd_command_done, .user_data = command };
}

/* Takes back the count of a command libnbd refused (then it never calls back). */
static void nbd_issued(struct nbd_command *command, int64_t cookie)
{
	if (cookie >= 0)
		return;
	command->pending--;
	if (command->result == 0)
		command->result = !nbd_aio_is_ready(command->state->handle) ?
				  -EAGAIN : nbd_result_from_error(nbd_get_errno());
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
	else if (command)
		*command = (struct nbd_command){ .state = state, .req = req, .pending = 1 };
	return command;
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
		tcmu_request_complete(command->req, command->result);
		free(command);
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
	for (uint64_t done = 0; done < length && command->result == 0; done += NBD_ZERO_CHUNK) {
		uint64_t piece = length - done < NBD_ZERO_CHUNK ? length - done : NBD_ZERO_CHUNK;

		nbd_issued(command, nbd_aio_zero(state->handle, piece, offset + done,
						 nbd_callback(command), 0));
	}
	nbd_command_release(command);
	return 0;
}

static void nbd_device_fd_ready(struct tcmu_device *dev, int fd, uint32_t events)
{
	struct nbd_state *state = tcmu_device_get_private(dev);

	if (fd == state->timer_fd) {
		uint64_t expirations;

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

static int nbd_check_config(const char *config, char **ret_reason)
{
	struct nbd_target target;
	struct nbd_handle *handle;
	int result;

	result = nbd_target_parse(config, &target, ret_reason);
	if (result < 0)
		return result;
	handle = nbd_connect_blocking(&target, &result, ret_reason);
	nbd_handle_close(handle, &target);
	nbd_target_free(&target);
	return handle ? 0 : result;
}

static void nbd_state_free(struct tcmu_device *dev, struct nbd_state *state)
{
	tcmu_device_set_private(dev, NULL);
	nbd_handle_close(state->handle, &state->target);
	close(state->timer_fd);	/* EBADF when it was never created */
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
	*state = (struct nbd_state){ .dev = dev, .watched_fd = -1, .backoff_ms = NBD_BACKOFF_FIRST_MS,
				     .timer_fd = timerfd_create(CLOCK_MONOTONIC,
								TFD_NONBLOCK | TFD_CLOEXEC) };
	result = state->timer_fd < 0 ? nbd_refuse(&reason, -errno, "timerfd_create: %m") :
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
			result = nbd_update_watch(state);
		if (result < 0)
			nbd_refuse(&reason, result, "cannot watch the connection: %s", strerror(-result));
	}
	if (result < 0) {
		tcmu_dev_err(dev, "%s", reason ? reason : strerror(-result));
		free(reason);
		tcmu_device_unwatch_fd(dev, state->timer_fd);
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
	.fd_ready = nbd_device_fd_ready,
	.batch_done = nbd_device_batch_done,
};

TCMU_HANDLER_REGISTER(nbd_handler)
