/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nbd.h: what the nbd handler's files share: the config string as parsed
 * (nbd_config.c), libnbd connections opened, driven and closed in bounded
 * time (nbd_connection.c) and the server's allocation map (nbd_extents.c).
 */
#ifndef NBD_H
#define NBD_H

#include <libnbd.h>
#include <stdbool.h>
#include <stdint.h>

#define NBD_CONNECT_TIMEOUT_MS 5000
/* Starting a server (qemu-nbd opening an image) may take longer than a network's answer. */
#define NBD_EXEC_CONNECT_TIMEOUT_MS 30000
/*
 * How long a command may wait for the server's answer before the
 * connection is given up, when the config string does not say: below
 * the Linux initiator's 30 s, so that it gets BUSY and retries instead
 * of aborting the command itself.
 */
#define NBD_COMMAND_TIMEOUT_DEFAULT_S 20
#define NBD_COMMAND_TIMEOUT_MAX_S 3600
#define NBD_OPTION_TIMEOUT ";timeout="

#define NBD_CONFIG_DESCRIPTION							\
	"An NBD URI (nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH,\n"	\
	"nbds://...?tls-psk-file=PATH with TLS) or exec:COMMAND ARGS, a server run\n"	\
	"without a shell (split at spaces) by socket activation, e.g.\n"		\
	"exec:qemu-nbd -f qcow2 /var/lib/vm.qcow2 or exec:nbdkit memory 1G; then\n"	\
	"optionally ;timeout=SECONDS, how long a command waits for the server before\n" \
	"the connection is reset and the command gets BUSY (default 20, 0 = never).\n" \
	"Percent-decoded once: %3A for ':', %20 for a space, %2C for ',', %25 for\n"	\
	"'%'. The export must hold the device size."

/* What a config string names. */
struct nbd_target {
	char *uri;	/* or NULL for exec: */
	char **argv;	/* NULL-terminated, or NULL for a URI */
	char *text;	/* decoded string without options, for messages */
	char *words;	/* what argv points into */
	unsigned int connect_timeout_ms;
	unsigned int command_timeout_s;	/* 0: commands wait as long as the server takes */
	const char *kind;	/* for messages: "the NBD server at" and the like */
};

/* Stores a malloc'd reason (or NULL when out of memory) and returns error. */
int nbd_refuse(char **ret_reason, int error, const char *format, ...)
	__attribute__((format(printf, 3, 4)));
/* Parses config into target; on failure a reason and target empty. 0 or -errno. */
int nbd_target_parse(const char *config, struct nbd_target *target, char **ret_reason);
void nbd_target_free(struct nbd_target *target);

int64_t nbd_now_ms(void);
/* A handle that starts connecting to target, or NULL (libnbd's error). */
struct nbd_handle *nbd_handle_start(const struct nbd_target *target);
/*
 * Runs handle's state machine on this thread until done() holds, the
 * connection is gone or deadline_ms passes. true when done() held.
 */
bool nbd_drive_until(struct nbd_handle *handle, bool (*done)(struct nbd_handle *, void *),
		     void *argument, int64_t deadline_ms);
/*
 * Ends a connection and the server an exec: target started in bounded
 * time; politely (a clean disconnect first) only when polite. Commands
 * still in flight are abandoned: libnbd calls only their free callbacks.
 */
void nbd_handle_close(struct nbd_handle *handle, const struct nbd_target *target, bool polite);
/* The -errno for the initiator of a server's (or libnbd's) error. */
int nbd_result_from_error(int error);
/* Connects to target in bounded time. The handle, or NULL, *ret_error and a reason. */
struct nbd_handle *nbd_connect_blocking(const struct nbd_target *target, int *ret_error,
					char **ret_reason);

/*
 * What the server's base:allocation map says from an offset: whether the
 * bytes there hold data, and for how many of the next length that stays
 * so (run; no extent: all of them, mapped).
 */
struct nbd_extent_answer {
	uint64_t length;	/* asked for, at most 2^32 - 1 */
	bool has_extent;
	bool mapped;		/* the first extent's state */
	uint64_t run;		/* bytes from the offset in that state */
};

/*
 * Asks handle, with its commands in flight, for the map of answer->length
 * bytes at offset, like the other nbd_aio_* calls: libnbd fills answer
 * before it calls completion, which the caller counts as for any command
 * (answer must live until completion's free). libnbd's cookie, or -1.
 */
int64_t nbd_extent_query_start(struct nbd_handle *handle, uint64_t offset,
			       struct nbd_extent_answer *answer,
			       nbd_completion_callback completion);

#endif
