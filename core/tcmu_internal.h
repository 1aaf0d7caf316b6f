/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tcmu_internal.h: the daemon's private interfaces, one section per file.
 * Handlers never include this; they see libtcmu.h only.
 */
#ifndef TCMU_INTERNAL_H
#define TCMU_INTERNAL_H

#include <sys/uio.h>
/* linux/target_core_user.h pulls in linux/uio.h, whose struct iovec clashes with glibc's. */
#define __LINUX_UIO_H
#include <linux/target_core_user.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "handlers.h"
#include "histogram.h"
#include "libtcmu.h"
#include "scsi.h"
#include "worker_task.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The one clock for timeouts and intervals: nanoseconds, never set back. */
static inline uint64_t monotonic_ns(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec;
}

/* ---------------------------------------------------------------- log.c */

/* Where log lines go besides stderr; NULL dir closes the file. */
int log_open_file(const char *dir);
/* Reopens the log file (SIGHUP, after logrotate moved it). */
int log_reopen_file(void);
void log_close_file(void);
void log_set_level(int level);
/* Formats and writes one line: tcmu_log_message() of libtcmu.c. */
void log_message_v(int level, const struct tcmu_device *dev, const char *format, va_list args);

/* -------------------------------------------------------------- stats.c */

struct tcmu_device;
struct tcmu_request;

enum stats_kind {
	STATS_KIND_READ,
	STATS_KIND_WRITE,
	STATS_KIND_FLUSH,
	STATS_KIND_UNMAP,
	STATS_KIND_WRITE_SAME,
	STATS_KIND_COMPARE_AND_WRITE,
	STATS_KIND_EXTENDED_COPY,
	STATS_KIND_OTHER,
	STATS_KIND_COUNT
};

#define STATS_LATENCY_BUCKETS HISTOGRAM_BUCKETS

struct stats_kind_counters {
	uint64_t commands;
	uint64_t bytes;			/* data transferred, either way */
	uint64_t latency_sum_ns;
	uint64_t latency_buckets[STATS_LATENCY_BUCKETS];
};

struct device_stats {
	struct stats_kind_counters kinds[STATS_KIND_COUNT];
	uint64_t errors_by_sense_key[16];	/* CHECK CONDITION, by sense key */
	uint64_t errors_other_status;		/* BUSY, RESERVATION CONFLICT... */
	uint32_t in_flight_max;
	/* CLOCK_MONOTONIC when counted: a wall clock read per command costs a syscall under some clock sources */
	uint64_t last_command_ns;		/* 0: never */
	uint64_t last_error_ns;
	/* CLOCK_REALTIME, filled by stats_snapshot() (stats_wall_clock()) */
	uint64_t last_command_us;		/* 0: never */
	uint64_t last_error_us;
};

enum stats_kind stats_kind_of_opcode(uint8_t opcode);
const char *stats_kind_name(enum stats_kind kind);
const char *stats_sense_key_name(unsigned int sense_key);
const char *stats_state_name(enum tcmu_device_state state);
/* Counts one completion; the caller holds the ring's lock. */
void stats_record_completion(struct device_stats *stats, const struct tcmu_request *req,
			     uint8_t scsi_status, const uint8_t *sense, size_t sense_length);
/* Fills last_command_us and last_error_us from the monotonic times. */
void stats_wall_clock(struct device_stats *stats);
/* A consistent copy of a device's counters and the commands in flight now. */
void stats_snapshot(struct tcmu_device *dev, struct device_stats *ret_stats,
		    uint32_t *ret_in_flight);
/* Sets the handler's state and its reason: tcmu_device_set_state() of libtcmu.c. */
void stats_set_state(struct tcmu_device *dev, enum tcmu_device_state state, const char *reason);
/* The handler's state and its reason (tcmu_device_set_state). */
enum tcmu_device_state stats_device_state(struct tcmu_device *dev, char *ret_reason,
					  size_t reason_size);

/* ------------------------------------------------------------ metrics.c */

/* The time the daemon counts its uptime from; main() calls it first thing. */
void metrics_daemon_started(void);
uint64_t metrics_daemon_start_us(void);
/* Every device's statistics in Prometheus' text format; g_free() it. Main thread. */
char *metrics_render(void);
/*
 * Keeps path (an absolute *.prom) rewritten every few seconds for
 * node_exporter's textfile collector; NULL stops and removes the file.
 * Main thread, GLib's default main context.
 */
void metrics_textfile_set(const char *path);

/* --------------------------------------------------------------- ring.c */

/*
 * One SCSI command taken from the ring. Requests live in a per-ring pool
 * that only grows, so steady-state I/O allocates nothing. The CDB and the
 * iovecs are copied out of the entry (the entry's iovec array is only
 * 4-byte aligned), the iovec offsets translated into addresses after a
 * bounds check. The iovec array is kept with the request when it returns
 * to the pool, so it is allocated once per pool slot, not per command.
 */
#define TCMU_MAX_CDB_LENGTH 32

struct tcmu_ring;

struct tcmu_request {
	struct tcmu_device *dev;
	struct tcmu_ring *ring;
	struct tcmu_cmd_entry *entry;
	uint32_t end_offset;		/* ring offset just past the entry */
	uint16_t cmd_id;
	bool done;

	uint8_t cdb[TCMU_MAX_CDB_LENGTH];
	uint32_t cdb_length;
	struct iovec *iov;
	uint32_t iov_count;
	uint32_t iov_capacity;		/* entries allocated at iov */
	uint64_t data_length;		/* sum of iov lengths */
	uint64_t arrival_ns;		/* CLOCK_MONOTONIC when taken from the ring */

	/*
	 * Set by the SCSI layer before it hands the request to a handler;
	 * tcmu_request_complete() calls it with the handler's result.
	 */
	void (*io_done)(struct tcmu_request *req, int result);
	/* Where a handler's compare_and_write found a difference (REQUEST_MISCOMPARE). */
	uint64_t miscompare_offset;
	/* A query_lba_status's answer (tcmu_request_complete_lba_status()). */
	bool lba_status_mapped;
	uint64_t lba_status_length;
	/* Scratch space for multi-step SCSI commands (COMPARE AND WRITE...). */
	void *scsi_private;
	/* The command table entry scsi_execute() found for the CDB. */
	const struct scsi_command *command;
	/* Its place in a write gate's queue while it waits there. */
	struct scsi_gate_waiter gate_waiter;

	struct tcmu_request *next;	/* ring order while in flight, free list after */
};

/*
 * The io_done result of tcmu_request_complete_miscompare(): positive, so
 * that no handler's -errno can be taken for it.
 */
#define REQUEST_MISCOMPARE 1

/* Called for every well-formed CMD entry; must lead to one ring_complete_request(). */
typedef void (*ring_dispatch_fn)(struct tcmu_request *req);
/* Tells the kernel that the tail moved (write to the uio fd). */
typedef void (*ring_kick_fn)(struct tcmu_ring *ring);
/* The last command in flight completed (ring_call_when_drained). */
typedef void (*ring_drained_fn)(struct tcmu_ring *ring);

struct tcmu_ring {
	struct tcmu_device *dev;
	void *map;			/* start of the UIO map: the mailbox */
	size_t map_size;
	struct tcmu_mailbox *mailbox;
	uint8_t *cmdr;			/* mailbox + cmdr_off */
	uint32_t cmdr_size;
	uint32_t consumed;		/* next entry to read; only the serving thread moves it */

	ring_dispatch_fn dispatch;
	ring_kick_fn kick;

	pthread_mutex_t lock;		/* in_flight list, tail, pool */
	struct tcmu_request *in_flight_head;	/* oldest first */
	struct tcmu_request *in_flight_tail;
	struct tcmu_request *free_list;
	void **pool_chunks;
	size_t pool_chunk_count;
	uint32_t in_flight;

	/* Set while the serving thread runs a batch: its completions defer the kick. */
	pthread_t serving_thread;
	unsigned int batch_depth;
	bool kick_pending;
	bool broken;			/* a malformed entry was seen; nothing more is read */
	bool starved;			/* an entry waits for memory for its request; serving thread */
	pthread_cond_t drained;		/* signalled when in_flight drops to 0 */
	ring_drained_fn on_drained;	/* ring_call_when_drained() */
};

/* Bytes of the ring's data area (after the command ring); 0 before it is mapped. */
static inline size_t ring_data_area_size(const struct tcmu_ring *ring)
{
	if (!ring->map || !ring->cmdr)
		return 0;
	return ring->map_size - (size_t)(ring->cmdr - (const uint8_t *)ring->map) -
	       ring->cmdr_size;
}

/* Sets up ring state over an already mapped mailbox; validates its header. */
int ring_init(struct tcmu_ring *ring, struct tcmu_device *dev, void *map, size_t map_size,
	      ring_dispatch_fn dispatch, ring_kick_fn kick);
void ring_destroy(struct tcmu_ring *ring);
/* Consumes every entry between the tail and the head. Returns commands dispatched or -errno. */
int ring_process(struct tcmu_ring *ring);
/*
 * Writes the response into the entry and advances the tail over finished
 * entries. read_length: bytes of data-in filled, when fewer than the buffer
 * holds (the kernel then reports the residual); 0 for commands without
 * data-in or that filled it all.
 */
void ring_complete_request(struct tcmu_request *req, uint8_t scsi_status,
			   const uint8_t *sense, size_t sense_length, uint32_t read_length);
/*
 * Brackets work of the serving thread (a batch of commands, a handler's
 * fd_ready): the completions it makes inside reach the kernel with one
 * kick at the end. Nests.
 */
void ring_batch_begin(struct tcmu_ring *ring);
void ring_batch_end(struct tcmu_ring *ring);
/*
 * Did the last ring_process() stop at an entry for want of memory? No kick
 * will come for it, so the serving thread retries soon. Serving thread only.
 */
bool ring_starved(const struct tcmu_ring *ring);
/* New entries past what was consumed? Only for the thread that serves the ring. */
bool ring_has_entries(struct tcmu_ring *ring);
/*
 * Has the completion that ends the last command in flight call drained,
 * on its thread, after its last use of the ring. Returns false, and
 * drained is not called, when nothing is in flight.
 */
bool ring_call_when_drained(struct tcmu_ring *ring, ring_drained_fn drained);
/* Commands taken from the ring and not yet answered. */
unsigned int ring_in_flight(struct tcmu_ring *ring);
/* Waits until every dispatched command is complete, at most timeout_ms. -ETIMEDOUT otherwise. */
int ring_wait_drained(struct tcmu_ring *ring, int timeout_ms);

/* ------------------------------------------------------------- device.c */

struct ring_worker;
struct worker_watch;
struct watch_set;

struct tcmu_device {
	char *name;			/* configfs object name */
	char *subtype;
	char *config;			/* handler's part of dev_config */
	char *dev_config;		/* as the kernel has it: "<subtype>/<...>" */
	char *uio_name;			/* tcm-user/<hba>/<name>/<subtype>/<cfg> */
	char *configfs_dir;		/* /sys/kernel/config/target/core/user_<hba>/<name> */
	char *log_prefix;		/* "subtype/name" */
	char *backstore;		/* "user_<hba>/<name>" */
	char *unit_serial;		/* configfs wwn/vpd_unit_serial, "" when unset */
	unsigned int uio_minor;
	unsigned int hba_number;
	uint32_t device_id;		/* LIO dev_index, echoed in netlink replies */

	int uio_fd;
	void *map;
	size_t map_size;
	struct tcmu_ring ring;

	const struct tcmu_handler *handler;
	void *private_data;
	bool handler_open;
	/* The handler said this device's storage cannot deallocate. */
	bool unmap_unsupported;

	uint64_t size;
	uint32_t block_size;
	uint32_t max_sectors;
	bool write_cache;

	struct scsi_device_state scsi;	/* owned by the SCSI layer (scsi.h) */

	/* Counted at completion under ring.lock (stats.c). */
	struct device_stats stats;
	/* What the handler says of its storage (tcmu_device_set_state). */
	pthread_mutex_t state_lock;
	enum tcmu_device_state state;
	char state_reason[160];

	struct ring_worker *worker;
	struct worker_watch *ring_watch;	/* the uio fd in the worker's epoll set */
	struct worker_watch *watches;	/* the handler's fds (tcmu_device_watch_fd) */
	struct watch_set *watch_set;	/* the serving worker's, from attach to detach */
	/* Its detach timed out: how the worker frees it once drained (worker.c). */
	void (*release)(struct tcmu_device *dev);
	struct tcmu_device *next_release;
	struct tcmu_device *next;	/* the daemon's device list */
	unsigned int references;	/* device_get_by_designator(); under the list's lock */
	bool leaving;			/* being detached: copies stop using it */
	bool removed_by_kernel;		/* being detached for good (REMOVED) */
};

/*
 * Attaches to the TCMU device behind a UIO name ("tcm-user/...") and minor:
 * reads its configfs attributes, finds its handler, opens the handler,
 * maps and resets the ring and starts serving it. Returns 0 or -errno
 * (and then nothing is left open).
 */
int device_attach(const char *uio_name, unsigned int uio_minor, bool reset_ring,
		  struct tcmu_device **ret_device);
/*
 * Stops serving, waits for in-flight commands, closes the handler, frees.
 * When commands are still in flight after the drain timeout, it returns
 * and the device stays until the last completes; its worker then closes
 * and frees it. NULL-safe.
 */
void device_detach(struct tcmu_device *dev);
/* How long a detach waits for commands in flight before it leaves them to finish (tests). */
void device_set_drain_timeout(unsigned int milliseconds);
/*
 * The kernel removed the device for good (REMOVED netlink event): detaches
 * it as device_detach() does, then calls the handler's remove so that it
 * releases what only this device owned (alloc's memory). NULL-safe.
 */
void device_remove(struct tcmu_device *dev);
/* Applies a RECONFIG / ChangeMedium change. 0 or -errno. */
int device_reconfigure(struct tcmu_device *dev, const struct tcmu_device_change *change);

/* Attaches every tcm-user UIO device that exists now. Returns how many. */
int device_attach_existing(void);
/* Daemon shutdown: every device detached, none removed. */
void device_detach_all(void);

/* -------------------------------------------------------- write_cache.c */

/* Turning the write cache off: write-through from now on, before the flush. */
void write_cache_begin(struct tcmu_device *dev, bool write_cache);
/* The change failed: the cache is as before it. */
void write_cache_restore(struct tcmu_device *dev, bool write_cache);
/* The flush before turning it off failed (-errno): it stays on, and that is logged. */
void write_cache_flush_failed(struct tcmu_device *dev, int error);
/* The handler's reconfigure hears of it, and may refuse (then restored). 0 or -errno. */
int write_cache_tell_handler(struct tcmu_device *dev, bool write_cache);
/* The change is in force; logged. */
void write_cache_commit(struct tcmu_device *dev, bool write_cache);

/* ---------------------------------------------------------- device_io.c */

/* A handler's read or write that a command of another device needs. */
struct device_io {
	struct worker_task task;	/* when posted to dev's worker */
	struct tcmu_device *dev;
	struct tcmu_request *req;	/* completed through its io_done, as usual */
	bool write;
	const struct iovec *iov;	/* one buffer */
	uint64_t offset;
	uint64_t length;
	uint32_t flags;			/* TCMU_WRITE_* */
};

/*
 * Fills io and calls dev's handler to read or write length bytes at offset
 * into or from iov, on the thread that serves dev: at once when that is
 * this thread, else posted to it; either way in a batch of dev (see
 * device_run_in_batch), and a refusal then completes req with its error:
 * returns 0. Where no worker serves dev, calls the handler at once and
 * returns what it returned. io stays untouched until req completes.
 */
int device_io_issue(struct device_io *io, struct tcmu_device *dev, struct tcmu_request *req,
		    bool write, const struct iovec *iov, uint64_t offset, uint64_t length,
		    uint32_t flags);

/*
 * Runs function, which may call dev's handler, on dev's worker thread as a
 * batch of dev: an asynchronous handler gets its batch_done afterwards
 * (libtcmu.h promises one after every call, so it never needs to wake
 * itself to submit), and completions kick the ring once, at the end.
 */
void device_run_in_batch(struct tcmu_device *dev,
			 void (*function)(struct tcmu_device *dev, void *argument), void *argument);

/* -------------------------------------------------------- device_list.c */

/* The list of attached devices; only the main thread changes it. */
struct tcmu_device *device_find_by_uio_name(const char *uio_name);
/* The kernel renames the UIO device when dev_config changes; the minor stays. */
struct tcmu_device *device_find_by_minor(unsigned int uio_minor);
struct tcmu_device *device_find_by_name(const char *name);
void device_list_add(struct tcmu_device *dev);
void device_list_remove(struct tcmu_device *dev);
struct tcmu_device *device_list_first(void);
/* The daemon stops: every listed device's copies stop at their next chunk. */
void device_list_mark_leaving(void);
/*
 * The one listed device whose NAA designator (VPD page 83h) this is, with
 * a reference that keeps it attached until device_put(); NULL when no
 * device or more than one has it.
 */
struct tcmu_device *device_get_by_designator(const uint8_t designator[16]);
void device_put(struct tcmu_device *dev);
/* Returns when no reference is left; call after device_list_remove(). */
void device_wait_unreferenced(struct tcmu_device *dev);

/* ------------------------------------------------------------- worker.c */

/* Threads that serve rings; devices are spread over them. */
int workers_start(unsigned int count);
/*
 * Returns how many devices were left open because commands of theirs were
 * still in flight (a handler's threads may yet complete them: its code
 * must stay loaded).
 */
unsigned int workers_stop(void);
int worker_add_device(struct tcmu_device *dev);
/*
 * Largest window a worker polls its rings before it sleeps (ring_poll_us);
 * 0: never poll. Logs a change; main thread.
 */
void workers_set_poll_limit(unsigned int microseconds);
unsigned int workers_get_poll_limit(void);
/* A worker's polling window and what it is tuned from (worker_poll.c). */
struct poll_tuning {
	uint64_t window_ns;		/* the next poll's window; 0: sleep at once */
	uint64_t gap_ns;		/* decaying maximum of the recent gaps */
	unsigned int batches_off;	/* batches left without polling */
	unsigned int backoff;		/* length of the next such pause */
};
/* How many polls lost their CPU (and stopped polling for a while) so far. */
uint64_t workers_polls_lost_cpu(void);
/* For worker.c (worker_poll.c): the largest window (0: off). */
uint64_t worker_poll_limit_ns(void);
/*
 * After a batch: gap_ns from its end to the next work (found by polling
 * or woken up for), whether the poll lost its CPU meanwhile, and the
 * largest window; sets tuning->window_ns for the next poll.
 */
void worker_poll_tune(struct poll_tuning *tuning, uint64_t gap_ns, bool preempted,
		      uint64_t limit_ns);
/*
 * Any thread: runs task on the thread that serves dev, after the events
 * pending there. False, doing nothing, when this is that thread or no
 * worker serves dev (then the caller runs it itself).
 */
bool worker_post(struct tcmu_device *dev, struct worker_task *task);
unsigned int workers_count(void);
/*
 * Detach, first step: the worker takes no more commands from the ring but
 * goes on serving the handler's watched fds, through which requests in
 * flight complete.
 */
int worker_stop_ring(struct tcmu_device *dev);
/*
 * Ends the watches and returns when the worker no longer touches the
 * device. Also frees the watches of a device that was never served.
 */
int worker_remove_device(struct tcmu_device *dev);
typedef void (*worker_function_fn)(struct tcmu_device *dev, void *argument);
/*
 * Runs function on the thread that serves dev's ring, between two batches
 * (so no synchronous handler call for the ring is in progress), and
 * returns when it returned. 0 or -errno (then it did not run).
 */
int worker_run(struct tcmu_device *dev, worker_function_fn function, void *argument);
/*
 * The calls above wait 5 s at most for the worker to take the request (a
 * handler call that does not return can hold it), then return -ETIMEDOUT:
 * an add or a function did not happen; a ring stop or a removal happens
 * later, so the device must stay allocated. Otherwise 0 (or the add's or
 * function's -errno).
 */
/*
 * For a device whose commands outlive its detach (after worker_stop_ring):
 * once the last completes, the worker ends the device's watches, forgets
 * it and calls release(dev) on its own thread. Returns false, and does
 * nothing, when no command is in flight any more.
 */
bool worker_release_when_drained(struct tcmu_device *dev,
				 void (*release)(struct tcmu_device *dev));

/* ----------------------------------------------------------- fd_watch.c */

/* What an epoll entry of a ring worker stands for: its data points to one of these. */
enum watch_kind {
	WATCH_CONTROL,		/* the worker's control channel */
	WATCH_RING,		/* a device's uio fd */
	WATCH_HANDLER,		/* a handler's fd (tcmu_device_watch_fd) */
	WATCH_RETIRED,		/* ended during this batch of events; freed after it */
};

struct worker_watch {
	enum watch_kind kind;
	struct tcmu_device *dev;
	int fd;
	uint32_t events;		/* TCMU_FD_*; 0: paused, out of the epoll set */
	bool in_epoll;
	struct worker_watch *next;	/* the device's handler watches; the retired list */
};

/* A ring worker's epoll set, as the watches see it; only its owner thread changes it. */
struct watch_set {
	int epoll_fd;
	pthread_t owner;
	unsigned int handler_fds;	/* handler watches in the set: polling checks it */
	struct worker_watch *retired;	/* to free once no event of a batch can name them */
};

/* Takes a watch out of the set, to be freed by watch_set_free_retired(). */
void watch_set_retire(struct watch_set *set, struct worker_watch *watch);
/* After a batch of events, when none of them can name a retired watch. */
void watch_set_free_retired(struct watch_set *set);
/* The handler watches asked for in open() enter the set (all or none). 0 or -errno. */
int watch_set_add_device(struct watch_set *set, struct tcmu_device *dev);
/* Every handler watch of the device leaves the set. */
void watch_set_remove_device(struct watch_set *set, struct tcmu_device *dev);
/* The watches of a device that was never served. */
void watch_list_free(struct tcmu_device *dev);
/* tcmu_device_watch_fd() and tcmu_device_unwatch_fd() of libtcmu.c. */
int watch_fd_set(struct tcmu_device *dev, int fd, uint32_t events);
int watch_fd_remove(struct tcmu_device *dev, int fd);
/* An event of a handler watch: calls fd_ready, then batch_done, in one ring batch. */
void watch_fd_ready(struct worker_watch *watch, uint32_t epoll_events);

/* -------------------------------------------------------- handler_abi.c */

/*
 * Fills ops from the struct a handler's handler_init() returned, whatever
 * handler ABI version it was built for. 0, or -EPROTO (logged, naming
 * path) for a version the daemon does not load or a struct size out of
 * bounds.
 */
int handler_abi_adapt(const char *path, const void *theirs, struct tcmu_handler *ops);

/* ------------------------------------------------------------ netlink.c */

/* Subscribes to TCM-USER/config and declares reply support. Returns the fd to poll. */
int netlink_open(void);
/* Reads and handles pending netlink messages. */
int netlink_dispatch(void);
void netlink_close(void);

/*
 * One TCM-USER event as the kernel sent it, before anything acts on it.
 * Parsing and acting are separate so that tests can feed crafted messages
 * without a socket. Strings point into the message.
 */
struct nlmsghdr;

struct netlink_event {
	uint8_t command;		/* TCMU_CMD_* */
	bool has_device_id;		/* false: the kernel could not match a reply */
	uint32_t device_id;
	const char *uio_name;
	uint32_t uio_minor;
	/* RECONFIG_DEVICE: what; size and write_cache set; the raw dev_config. */
	struct tcmu_device_change change;
	const char *dev_config;		/* "<subtype>/<config>" as written to configfs */
};

/*
 * Parses one message of the family; hdr->nlmsg_len bytes must be readable.
 * Returns 0, -EOPNOTSUPP for a command the daemon does not act on, or
 * -EINVAL when an attribute is missing or malformed; device_id is filled
 * in whenever it could be read, so that even a refusal can be answered.
 */
int netlink_parse_event(const struct nlmsghdr *hdr, struct netlink_event *ret_event);
/* Acts on a parsed event. Returns the reply status: 0 or -errno. */
int netlink_handle_event(const struct netlink_event *event);
/* The *_DONE reply to an event of event_command; NULL when out of memory. */
struct nl_msg;
struct nl_msg *netlink_build_reply(int family, uint8_t event_command, uint32_t device_id,
				   int status);

/* -------------------------------------------------------- config_file.c */

struct tcmu_config {
	int log_level;			/* TCMU_LOG_* */
	char *log_dir;			/* NULL: log to stderr only */
	unsigned int ring_poll_us;	/* largest ring polling window, 0: off */
	/* xcopy_group lines, each "name name ...": devices that may copy between each other */
	char **xcopy_groups;
	size_t xcopy_group_count;
	char *metrics_textfile;		/* Prometheus textfile to keep written, NULL: none */
};

/* Chosen by measurement, see BENCHMARKS.md. */
#define TCMU_RING_POLL_US_DEFAULT 1000
#define TCMU_RING_POLL_US_MAX 100000
#define TCMU_CONFIG_DEFAULTS { .log_level = TCMU_LOG_INFO, .ring_poll_us = TCMU_RING_POLL_US_DEFAULT }

/* Reads settings over the defaults already in config; bad lines are warned about and skipped. */
int config_file_load(const char *path, struct tcmu_config *config);
void config_release(struct tcmu_config *config);

/* ------------------------------------------------------- config_watch.c */

/*
 * Follows the config file from the GLib main loop and applies a changed
 * log_level and xcopy_group lines; pinned_level >= 0 (--debug) keeps that level whatever the file
 * says. 0 or -errno, and then the reason is logged and the daemon runs on
 * without following the file.
 */
int config_watch_start(const char *path, int pinned_level);
void config_watch_stop(void);

/* -------------------------------------------------------- copy_groups.c */

/*
 * Puts the xcopy_group lines of the config file in force, replacing those
 * before, and logs them when they changed. 0 or -ENOMEM (nothing changed).
 */
int copy_groups_set(char *const *groups, size_t count);
/* May EXTENDED COPY move data between the two devices? Always for the same one. */
bool copy_groups_allow(const struct tcmu_device *first, const struct tcmu_device *second);

/* ----------------------------------------------------------- sysfs_io.c */

/* Reads a whole attribute file, trailing newline removed; caller frees. */
int sysfs_read_string(const char *path, char **ret_value);
/* Reads a number in C syntax (decimal, or 0x hex as uio map sizes are). */
int sysfs_read_u64(const char *path, uint64_t *ret_value);
int sysfs_write_string(const char *path, const char *value);

/* --------------------------------------------------------- config_str.c */

/*
 * Splits a dev_config "<subtype>/[;opt=val;...]<handler config>" into the
 * subtype and the handler part. Returns 0 or -EINVAL.
 */
int dev_config_split(const char *dev_config, char **ret_subtype, char **ret_handler_config);

/* --------------------------------------------------------------- dbus.c */

/*
 * Offers org.kernel.TCMUService1 on the system bus for the loaded
 * handlers; call after handlers_load(), on the thread that runs the
 * default GLib main context. A missing bus is logged, not an error.
 * Returns 0 or -errno.
 */
int dbus_start(void);
/*
 * Leaves the bus. Runs the default main context until method calls in
 * progress are answered (30 s at most), so call it before netlink_close().
 * Returns how many calls are still running: a handler's check may be
 * among them, so its handler must then stay loaded.
 */
unsigned int dbus_stop(void);

typedef struct _GDBusConnection GDBusConnection;
typedef struct _GDBusMethodInvocation GDBusMethodInvocation;
/*
 * Runs run(invocation, data) once the bus says the caller is root (or the
 * daemon's own uid), and refuses the call otherwise. run answers it, with
 * dbus_call_reply_status() when the method returns (is).
 */
void dbus_call_as_root(GDBusMethodInvocation *invocation,
		       void (*run)(GDBusMethodInvocation *invocation, void *data), void *data);
void dbus_call_reply_status(GDBusMethodInvocation *invocation, int status, const char *reason);
/*
 * The checks of a config string ("<subtype>/<config>") the daemon makes
 * itself: its form, subtype, what configfs would mangle, that the handler
 * is loaded. Main thread. Returns 0 and the handler's part of the string
 * (free()) in *ret_config, or -errno and a reason to g_free().
 */
int dbus_config_prepare(const struct tcmu_handler *handler, const char *dev_config,
			char **ret_config, char **ret_reason);
/*
 * The handler's own check of its part; may wait seconds for a server, so
 * never on the main thread. Returns 0, or -errno and a reason to g_free().
 */
int dbus_config_check_by_handler(const struct tcmu_handler *handler, const char *config,
				 char **ret_reason);
/* ChangeMedium (dbus_medium.c), called through dbus_call_as_root(). */
void dbus_change_medium_run(GDBusMethodInvocation *invocation,
			    const struct tcmu_handler *handler);

/* ------------------------------------------------------- dbus_status.c */

/* The daemon and device status objects on connection. 0 or -errno (logged). */
int dbus_status_register(GDBusConnection *connection);
void dbus_status_unregister(void);

#endif
