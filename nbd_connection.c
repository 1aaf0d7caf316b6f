/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nbd_connection.c: libnbd connections of the nbd handler opened, driven
 * on the caller's thread and closed, each in bounded time, and the
 * servers of exec: targets ended with them.
 */
#include "nbd.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NBD_DISCONNECT_TIMEOUT_MS 5000

int64_t nbd_now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

struct nbd_handle *nbd_handle_start(const struct nbd_target *target)
{
	struct nbd_handle *handle = nbd_create();
	sigset_t none, previous;
	int result = -1;

	/*
	 * Only root writes config strings, so a URI may name local files
	 * (tls-psk-file, tls-certificates). base:allocation is asked for so
	 * that GET LBA STATUS can tell holes, where the server keeps that map.
	 */
	if (handle && (nbd_set_uri_allow_local_file(handle, true) < 0 ||
		       nbd_add_meta_context(handle, LIBNBD_CONTEXT_BASE_ALLOCATION) < 0)) {
		nbd_close(handle);
		return NULL;
	}
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

bool nbd_drive_until(struct nbd_handle *handle, bool (*done)(struct nbd_handle *, void *),
		     void *argument, int64_t deadline_ms)
{
	while (!done(handle, argument) && !nbd_aio_is_dead(handle) && !nbd_aio_is_closed(handle)) {
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
	return done(handle, argument);
}

static bool nbd_is_ready(struct nbd_handle *handle, void *argument)
{
	(void)argument;
	return nbd_aio_is_ready(handle) == 1;
}

static bool nbd_is_closed(struct nbd_handle *handle, void *argument)
{
	(void)argument;
	return nbd_aio_is_closed(handle) == 1;
}

/*
 * A polite end is a clean disconnect, then SIGTERM for an exec: server
 * (it has no client left and flushes what it holds); SIGKILL when there
 * was no clean disconnect (a server that never got ready, or one that
 * stopped answering).
 */
void nbd_handle_close(struct nbd_handle *handle, const struct nbd_target *target, bool polite)
{
	if (!handle)
		return;
	bool clean = polite && nbd_aio_is_ready(handle) && nbd_aio_disconnect(handle, 0) == 0 &&
		     nbd_drive_until(handle, nbd_is_closed, NULL,
				     nbd_now_ms() + NBD_DISCONNECT_TIMEOUT_MS);

	/* nbd_close waits for the server: it must be on its way out. */
	if (target->argv)
		nbd_kill_subprocess(handle, clean ? SIGTERM : SIGKILL);
	nbd_close(handle);
}

int nbd_result_from_error(int error)
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

struct nbd_handle *nbd_connect_blocking(const struct nbd_target *target, int *ret_error,
					char **ret_reason)
{
	struct nbd_handle *handle = nbd_handle_start(target);
	const char *error;
	bool tls = target->uri && strncmp(target->uri, "nbds", 4) == 0;

	if (handle && nbd_drive_until(handle, nbd_is_ready, NULL,
				      nbd_now_ms() + target->connect_timeout_ms))
		return handle;
	error = nbd_get_error();
	if (handle && !nbd_aio_is_dead(handle) && !nbd_aio_is_closed(handle))
		error = "no answer in time";
	*ret_error = nbd_refuse(ret_reason, -EHOSTUNREACH, "cannot connect to %s '%s': %s%s%s",
				target->kind, target->text, error ? error : "connection closed",
				target->argv ? " (the server's own messages are in the daemon's log)" : "",
				tls && error && strcasestr(error, "tls") ?
				" (the TLS handshake failed: check the key or certificates "
				"against the server's)" : "");
	nbd_handle_close(handle, target, false);
	return NULL;
}
