/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rbd.h: what the rbd handler's files share (rbd.c: the handler and the
 * device's life; rbd_config.c: the config string; rbd_cluster.c: the
 * connection to the cluster; rbd_io.c: commands as librbd requests;
 * rbd_helper.c: threads for calls that wait for the cluster). Sees
 * libtcmu.h only, as the handler does.
 */
#ifndef RBD_H
#define RBD_H

#include "libtcmu.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <rados/librados.h>
#include <rbd/librbd.h>

/* Seconds check_config may wait for each step: D-Bus callers wait for it. */
#define RBD_CHECK_TIMEOUT 5
/* ... and for all of them (the monitors, then the image's first objects). */
#define RBD_CHECK_TOTAL_TIMEOUT (2 * RBD_CHECK_TIMEOUT)
/* Seconds open may wait for the monitors. */
#define RBD_CONNECT_TIMEOUT 15
#define RBD_DEFAULT_OSD_OP_TIMEOUT 20
#define RBD_MAX_OSD_OP_TIMEOUT 86400
#define RBD_MAX_GATEWAYS 16

struct rbd_config {
	char *pool;
	char *namespace;	/* "" for the default namespace */
	char *image;
	char *name;		/* "pool/image" or "pool/namespace/image", for messages */
	char *conf;		/* NULL: librados's search */
	char *id;		/* NULL: admin */
	unsigned osd_op_timeout;
	/* gateway=N/M (rbd_alua.c): gateway N of M; 0: the only gateway */
	unsigned gateway_group;
	unsigned gateway_count;
	bool osd_op_timeout_given;
};

struct rbd_io;
struct rbd_state;

/* rbd_helper.c's unit of work, first in the job of each kind. */
struct rbd_helper_job {
	struct rbd_state *state;
	/* On the helper thread: does the job and hands it back (it may be freed). */
	void (*run)(struct rbd_helper_job *job);
	struct rbd_helper_job *next;
};

/* A handler-wide thread and its queue (rbd_helper.c). */
struct rbd_helper {
	pthread_mutex_t lock;
	pthread_cond_t queued;
	pthread_cond_t finished;
	/* The jobs waiting, oldest first. */
	struct rbd_helper_job *first;
	/* The device whose job runs (the job may be freed once done). */
	struct rbd_state *running;
	pthread_t thread;
	bool started;
	bool stopping;
};

#define RBD_HELPER_INITIALIZER { .lock = PTHREAD_MUTEX_INITIALIZER,		\
				 .queued = PTHREAD_COND_INITIALIZER,		\
				 .finished = PTHREAD_COND_INITIALIZER }

/* A compare and write for rbd_locked.c's thread. */
struct rbd_locked_job {
	struct rbd_helper_job helper;
	struct tcmu_device *dev;
	struct rbd_state *state;
	uint64_t offset;
	uint64_t length;
	char *buffer;		/* the data to compare, then the data to write */
	ssize_t result;		/* 0, -EILSEQ or -errno */
	uint64_t mismatch;	/* -EILSEQ: the first differing byte, from offset */
	/* On the helper thread: hands the job back to the ring thread. */
	void (*done)(struct rbd_locked_job *job);
};

/* An allocation map query for rbd_lba_status.c's thread. */
struct rbd_lba_status_job {
	struct rbd_helper_job helper;
	uint64_t offset;
	uint64_t length;
	int result;		/* 0 or -errno */
	bool mapped;		/* the answer: the state at offset... */
	uint64_t same_length;	/* ...and for how many bytes it holds */
	/* On the helper thread: whether its command was answered already (BUSY). */
	bool (*answered)(struct rbd_lba_status_job *job);
	/* On the helper thread: hands the job back to the ring thread. */
	void (*done)(struct rbd_lba_status_job *job);
};

struct rbd_state {
	struct rbd_config config;
	rados_t cluster;
	rados_ioctx_t ioctx;
	rbd_image_t image;
	int event_fd;		/* librbd's completions */
	int timer_fd;		/* the oldest command's deadline; -1 without osd_op_timeout */
	/*
	 * Guards what follows: EXTENDED COPY from another device submits on
	 * that device's thread.
	 */
	pthread_mutex_t lock;
	/* Every librbd request not collected yet, oldest first. */
	struct rbd_io *oldest, *newest;
	bool timer_armed;
	bool cluster_late;
	bool blocklisted;
	/*
	 * COMPARE AND WRITE requests librbd answered, newest first: their
	 * completions come through a callback, not the event socket.
	 */
	struct rbd_io *compared;
	uint64_t stripe_unit;	/* the image's, which a compare and write must not cross */
	bool exclusive_lock;	/* the image has the exclusive-lock feature */
	/* rbd_locked.c's second handle of the image, opened on first use. */
	rbd_image_t locked_image;
	char *address;		/* this client's, recorded for the gateway (rbd_alua.c) */
	bool taking_over;	/* atomic: a SET TARGET PORT GROUPS is under way */
	/*
	 * rbd_alua.c, under lock: the active group found last (0: none), when
	 * (rbd_now(); 0: ask the cluster again), and how often it was
	 * forgotten, so that an answer older than a change is not kept.
	 */
	unsigned active_group;
	uint64_t active_checked;
	unsigned active_generation;
	uint64_t update_handle;	/* librbd's watch on the image's header */
	bool update_watched;
	/*
	 * rbd_alua.c, under lock: the one thread at a time that waits for the
	 * cluster off the ring thread (a takeover, a rejoin). It is joined
	 * before the next starts and when the device closes, so that none
	 * outlives the state it uses or the handler's code.
	 */
	pthread_t job;
	bool job_started;	/* not joined yet */
	bool job_running;	/* not ended yet */
	pthread_cond_t job_changed;
	/*
	 * rbd_rejoin.c, under lock: a fenced gateway's fresh client, ready to
	 * replace the blocklisted one once none of its requests is in flight
	 * (NULL: none waiting); whether the job thread is to open one; whether
	 * the device is closing (job_changed: it is, or the swap was done).
	 */
	struct rbd_client *fresh;
	bool rejoin_wanted;
	bool closing;
	bool rejoin_start_failed;	/* logged once; rbd_fenced tries again */
	/*
	 * Under lock: calls that use image off the ring thread (rbd_reconfigure
	 * on the main thread), which rbd_rejoin_swap waits for as it waits for
	 * the requests in flight.
	 */
	unsigned image_users;
};

/* A connection to the cluster and the image opened through it. */
struct rbd_client {
	rados_t cluster;
	rados_ioctx_t ioctx;
	rbd_image_t image;
	char *address;
	uint64_t update_handle;
	bool update_watched;
	bool swapped;		/* under rbd_state.lock: now holds the blocklisted one */
};

/* rbd_config.c */

/* Returns error after storing a malloc'd reason (NULL when out of memory). */
__attribute__((format(printf, 3, 4)))
int rbd_refuse(char **ret_reason, int error, const char *format, ...);
/* Parses the handler's config string into config (cleared on failure). */
int rbd_parse_config(const char *text, struct rbd_config *config, char **ret_reason);
void rbd_config_clear(struct rbd_config *config);

/* rbd_cluster.c */

/*
 * Connects to the cluster and opens the image (read-only for a check):
 * the monitors may take connect_timeout seconds, each request to the OSDs
 * osd_timeout. On failure, nothing is left open and *ret_reason says why.
 */
int rbd_attach(const struct rbd_config *config, unsigned connect_timeout,
	       unsigned osd_timeout, bool read_only, struct rbd_state *state,
	       char **ret_reason);
void rbd_detach(struct rbd_state *state);
/*
 * check_config's connection and read-only open, answered within
 * RBD_CHECK_TOTAL_TIMEOUT seconds in all: a thread does them, and is left to end
 * on its own when the cluster is slower (joined by a later check once ended,
 * or by rbd_checks_wait). Takes config (cleared).
 */
int rbd_check_cluster(struct rbd_config *config, char **ret_reason);
/* Joins every check's thread, ended or still running (before the handler is unloaded). */
void rbd_checks_wait(void);

/* rbd_io.c: the handler's I/O callbacks (struct tcmu_handler). */

int rbd_device_read(struct tcmu_device *dev, struct tcmu_request *req,
		    const struct iovec *iov, size_t iov_count, uint64_t offset,
		    uint64_t length);
int rbd_device_write(struct tcmu_device *dev, struct tcmu_request *req,
		     const struct iovec *iov, size_t iov_count, uint64_t offset,
		     uint64_t length, uint32_t flags);
int rbd_device_flush(struct tcmu_device *dev, struct tcmu_request *req);
int rbd_device_unmap(struct tcmu_device *dev, struct tcmu_request *req,
		     uint64_t offset, uint64_t length);
/* Offloads a compare and write librbd can do atomically; otherwise -EOPNOTSUPP. */
int rbd_device_compare_and_write(struct tcmu_device *dev, struct tcmu_request *req,
				 const struct iovec *compare_iov, size_t compare_count,
				 const struct iovec *write_iov, size_t write_count,
				 uint64_t offset, uint64_t length, uint32_t flags);
/* librbd's completions (event_fd) and the commands' deadlines (timer_fd). */
void rbd_fd_ready(struct tcmu_device *dev, int fd, uint32_t events);
/* After rbd_detach: frees the requests the cluster never answered. */
void rbd_io_forget(struct rbd_state *state);
/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t rbd_now(void);
/* GET LBA STATUS, answered from rbd_lba_status.c's thread. */
int rbd_device_query_lba_status(struct tcmu_device *dev, struct tcmu_request *req,
				uint64_t offset, uint64_t length);

/* rbd_helper.c: a handler-wide thread for calls that wait for the cluster. */

/* Queues job (job->state and job->run set); starts the thread on first use. */
int rbd_helper_submit(struct rbd_helper *helper, struct rbd_helper_job *job);
/* Before the image closes: drops state's queued jobs, waits for its running one. */
void rbd_helper_forget(struct rbd_helper *helper, struct rbd_state *state);
/* When the handler is unloaded: the thread ends once the queue is empty. */
void rbd_helper_stop(struct rbd_helper *helper);

/* rbd_lba_status.c: GET LBA STATUS from the image's allocation map. */

/* Queues job for the handler's query thread, which calls job->done. */
int rbd_lba_status_submit(struct rbd_lba_status_job *job, struct rbd_state *state);
/* Before the image closes: drops state's queued queries, waits for its running one. */
void rbd_lba_status_forget(struct rbd_state *state);
/* When the handler is unloaded. */
void rbd_lba_status_stop(void);

/* rbd_locked.c: compare and write under the image's exclusive lock. */

/* Queues job for the handler's helper thread, which calls job->done. */
int rbd_locked_submit(struct rbd_locked_job *job);
/* Before the image closes: drops state's queued jobs, waits for its running one. */
void rbd_locked_forget(struct rbd_state *state);
/* When the handler is unloaded. */
void rbd_locked_stop(void);

/* rbd_alua.c: one image through several gateways (gateway=N). */

/* Records the gateway on the image and makes it a target port group, in standby. */
int rbd_alua_open(struct tcmu_device *dev, struct rbd_state *state, char **ret_reason);
/* Before the image closes. */
void rbd_alua_close(struct rbd_state *state);
int rbd_get_port_groups(struct tcmu_device *dev, struct tcmu_port_group *groups, size_t max);
int rbd_set_port_state(struct tcmu_device *dev, struct tcmu_request *req, uint8_t state);
/*
 * Runs function(argument) on the device's job thread, then the rejoin that
 * rbd_fenced asked for meanwhile: -EAGAIN while another job runs (it does
 * that rejoin), or once the device is closing.
 */
int rbd_job_start(struct tcmu_device *dev, struct rbd_state *state,
		  void (*function)(void *argument), void *argument);
/* On close: the job stops waiting (for a swap, for a retry) and is joined. */
void rbd_job_stop(struct rbd_state *state);
/* librbd: the image's header changed (another gateway recorded itself). */
void rbd_header_updated(void *argument);
/* The active group may have changed: the next REPORT asks the cluster. */
void rbd_forget_active_group(struct rbd_state *state);

/* rbd_rejoin.c: a fenced gateway comes back as standby with a fresh client. */

/*
 * The cluster blocklisted this client (state->blocklisted is set):
 * commands fail from now on without reaching librbd, and in gateway mode
 * a fresh client is opened to replace it. Any thread, as often as a command
 * finds the client fenced: a rejoin that could not start starts then.
 */
void rbd_fenced(struct tcmu_device *dev, struct rbd_state *state);
/* On the ring thread: takes the fresh client once the fenced one is idle. */
void rbd_rejoin_swap(struct tcmu_device *dev, struct rbd_state *state);
/* On the job thread: opens a fresh client and waits for rbd_rejoin_swap. */
void rbd_rejoin_run(struct tcmu_device *dev, struct rbd_state *state);

#endif
