/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rbd_cluster.c: the rbd handler's connection to a Ceph cluster and its
 * image, with librados's waits bounded (client_mount_timeout,
 * rados_osd_op_timeout) and the librbd cache off, so that a write completes
 * only once the cluster has it.
 */
#include "rbd.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The "mon host" librados uses, for messages. */
static const char *rbd_mon_host(rados_t cluster, char *buffer, size_t size)
{
	if (rados_conf_get(cluster, "mon_host", buffer, size) < 0 || buffer[0] == '\0')
		snprintf(buffer, size, "none configured");
	return buffer;
}

/*
 * One check: what its thread has done so far, for the answer at the
 * deadline. The caller and the thread each hold a reference; whichever lets
 * go last frees it, so a thread left running past the deadline (librados
 * still connecting) keeps everything it reads, config included, alive.
 */
struct rbd_check {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	unsigned references;
	struct rbd_config config;
	char mon_host[256];
	bool opening;		/* connected: opening the image */
	bool done;
	int result;
	char *reason;
};

/*
 * A check's thread, not joined yet. The threads are joinable, not detached:
 * a detached thread may still be returning through this library's code, or
 * running its thread-local destructors in librados, after it said it ended,
 * and unload's dlclose would pull that code from under it. Joining is the
 * only proof that a thread is gone.
 */
struct rbd_check_thread {
	pthread_t thread;
	struct rbd_check_thread *next;
};

/* Under rbd_checks_lock: the threads that unload, or the next check, joins. */
static pthread_mutex_t rbd_checks_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rbd_check_thread *rbd_check_threads;

static int rbd_attach_checked(const struct rbd_config *config, unsigned connect_timeout,
			      unsigned osd_timeout, bool read_only, struct rbd_state *state,
			      struct rbd_check *check, char **ret_reason)
{
	char name[PATH_MAX], text[32], mon_host[256];
	int result;

	*ret_reason = NULL;
	snprintf(name, sizeof(name), "client.%s", config->id ? config->id : "admin");
	result = rados_create2(&state->cluster, "ceph", name, 0);
	if (result < 0)
		return rbd_refuse(ret_reason, result, "cannot create a Ceph client %s: %s",
				  name, strerror(-result));
	result = rados_conf_read_file(state->cluster, config->conf);
	if (result < 0) {
		if (config->conf)
			rbd_refuse(ret_reason, result, "cannot read Ceph configuration '%s': %s",
				   config->conf, strerror(-result));
		else
			rbd_refuse(ret_reason, result,
				   "no Ceph configuration found ($CEPH_CONF, /etc/ceph/ceph.conf): %s; "
				   "give one with ;conf=/path/ceph.conf", strerror(-result));
		goto out_shutdown;
	}
	/* The daemon's log has our messages; librados would write its own to stderr. */
	rados_conf_set(state->cluster, "log_to_stderr", "false");
	rados_conf_set(state->cluster, "err_to_stderr", "false");
	/* Acknowledged writes must be in the cluster, not in this process. */
	rados_conf_set(state->cluster, "rbd_cache", "false");
	/* librbd copies what it writes: a command answered at its deadline leaves the ring. */
	rados_conf_set(state->cluster, "rbd_disable_zero_copy_writes", "true");
	if (check) {
		pthread_mutex_lock(&check->lock);
		rbd_mon_host(state->cluster, check->mon_host, sizeof(check->mon_host));
		pthread_mutex_unlock(&check->lock);
	}
	snprintf(text, sizeof(text), "%u", connect_timeout);
	rados_conf_set(state->cluster, "client_mount_timeout", text);
	rados_conf_set(state->cluster, "rados_mon_op_timeout", text);
	snprintf(text, sizeof(text), "%u", osd_timeout);
	rados_conf_set(state->cluster, "rados_osd_op_timeout", text);

	result = rados_connect(state->cluster);
	if (result == -ETIMEDOUT) {
		rbd_refuse(ret_reason, result,
			   "the Ceph cluster did not answer within %u s (monitors: %s)",
			   connect_timeout, rbd_mon_host(state->cluster, mon_host, sizeof(mon_host)));
		goto out_shutdown;
	}
	if (result < 0) {
		rbd_refuse(ret_reason, result, "cannot connect to the Ceph cluster as %s (monitors: %s): %s",
			   name, rbd_mon_host(state->cluster, mon_host, sizeof(mon_host)),
			   strerror(-result));
		goto out_shutdown;
	}
	if (check) {
		pthread_mutex_lock(&check->lock);
		check->opening = true;
		pthread_mutex_unlock(&check->lock);
	}
	result = rados_ioctx_create(state->cluster, config->pool, &state->ioctx);
	if (result < 0) {
		if (result == -ENOENT)
			rbd_refuse(ret_reason, result, "the Ceph cluster has no pool '%s'", config->pool);
		else
			rbd_refuse(ret_reason, result, "cannot use pool '%s': %s", config->pool,
				   strerror(-result));
		goto out_shutdown;
	}
	rados_ioctx_set_namespace(state->ioctx, config->namespace);
	if (read_only)
		result = rbd_open_read_only(state->ioctx, config->image, &state->image, NULL);
	else
		result = rbd_open(state->ioctx, config->image, &state->image, NULL);
	if (result == -ENOENT)
		rbd_refuse(ret_reason, result, "no image '%s' in the Ceph cluster", config->name);
	else if (result == -ETIMEDOUT)
		rbd_refuse(ret_reason, result,
			   "opening image '%s': the Ceph cluster did not answer within %u s",
			   config->name, osd_timeout);
	else if (result < 0)
		rbd_refuse(ret_reason, result, "cannot open image '%s': %s", config->name,
			   strerror(-result));
	if (result < 0)
		goto out_ioctx;
	return 0;

out_ioctx:
	rados_ioctx_destroy(state->ioctx);
out_shutdown:
	rados_shutdown(state->cluster);
	return result;
}

int rbd_attach(const struct rbd_config *config, unsigned connect_timeout,
	       unsigned osd_timeout, bool read_only, struct rbd_state *state,
	       char **ret_reason)
{
	return rbd_attach_checked(config, connect_timeout, osd_timeout, read_only, state, NULL,
				  ret_reason);
}

void rbd_detach(struct rbd_state *state)
{
	rbd_close(state->image);
	rados_ioctx_destroy(state->ioctx);
	rados_shutdown(state->cluster);
}

static void rbd_check_free(struct rbd_check *check)
{
	rbd_config_clear(&check->config);
	free(check->reason);
	pthread_cond_destroy(&check->changed);
	pthread_mutex_destroy(&check->lock);
	free(check);
}

/* Lets go of a reference to check, freeing it with the last. */
static void rbd_check_put(struct rbd_check *check)
{
	bool last;

	pthread_mutex_lock(&check->lock);
	last = --check->references == 0;
	pthread_mutex_unlock(&check->lock);
	if (last)
		rbd_check_free(check);
}

static void *rbd_check_thread(void *argument)
{
	struct rbd_check *check = argument;
	struct rbd_state state;
	char *reason = NULL;
	int result;

	result = rbd_attach_checked(&check->config, RBD_CHECK_TIMEOUT, RBD_CHECK_TIMEOUT, true,
				    &state, check, &reason);
	if (result == 0)
		rbd_detach(&state);
	pthread_mutex_lock(&check->lock);
	check->done = true;
	check->result = result;
	check->reason = reason;
	pthread_cond_signal(&check->changed);
	pthread_mutex_unlock(&check->lock);
	rbd_check_put(check);
	return NULL;
}

/* Under rbd_checks_lock: joins the threads that have ended, so that none piles up. */
static void rbd_checks_reap(void)
{
	struct rbd_check_thread **link = &rbd_check_threads, *entry;

	while ((entry = *link)) {
		if (pthread_tryjoin_np(entry->thread, NULL) == 0) {
			*link = entry->next;
			free(entry);
		} else {
			link = &entry->next;
		}
	}
}

int rbd_check_cluster(struct rbd_config *config, char **ret_reason)
{
	struct rbd_check_thread *entry;
	struct rbd_check *check;
	pthread_condattr_t attributes;
	struct timespec deadline;
	int result = 0;

	*ret_reason = NULL;
	entry = calloc(1, sizeof(*entry));
	check = calloc(1, sizeof(*check));
	if (!entry || !check) {
		free(entry);
		free(check);
		return rbd_refuse(ret_reason, -ENOMEM, "out of memory");
	}
	pthread_mutex_init(&check->lock, NULL);
	pthread_condattr_init(&attributes);
	pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
	pthread_cond_init(&check->changed, &attributes);
	pthread_condattr_destroy(&attributes);
	check->references = 2;
	check->config = *config;
	memset(config, 0, sizeof(*config));
	snprintf(check->mon_host, sizeof(check->mon_host), "none configured");

	pthread_mutex_lock(&rbd_checks_lock);
	rbd_checks_reap();
	result = -pthread_create(&entry->thread, NULL, rbd_check_thread, check);
	if (result == 0) {
		entry->next = rbd_check_threads;
		rbd_check_threads = entry;
	}
	pthread_mutex_unlock(&rbd_checks_lock);
	if (result < 0) {
		free(entry);
		rbd_check_free(check);
		return rbd_refuse(ret_reason, result, "cannot start the check: %s",
				  strerror(-result));
	}

	/* librados's own timeouts are per step: the caller waits for one bound. */
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += RBD_CHECK_TOTAL_TIMEOUT;
	pthread_mutex_lock(&check->lock);
	while (!check->done && result != ETIMEDOUT)
		result = pthread_cond_timedwait(&check->changed, &check->lock, &deadline);
	if (check->done) {
		result = check->result;
		*ret_reason = check->reason;
		check->reason = NULL;
	} else if (check->opening) {
		result = rbd_refuse(ret_reason, -ETIMEDOUT,
				    "opening image '%s': the Ceph cluster did not answer within %u s",
				    check->config.name, RBD_CHECK_TOTAL_TIMEOUT);
	} else {
		result = rbd_refuse(ret_reason, -ETIMEDOUT,
				    "the Ceph cluster did not answer within %u s (monitors: %s)",
				    RBD_CHECK_TOTAL_TIMEOUT, check->mon_host);
	}
	pthread_mutex_unlock(&check->lock);
	rbd_check_put(check);
	return result;
}

void rbd_checks_wait(void)
{
	struct rbd_check_thread *entry;

	/* Joined outside the lock: a check starting meanwhile is not held up, and is joined next. */
	for (;;) {
		pthread_mutex_lock(&rbd_checks_lock);
		entry = rbd_check_threads;
		if (entry)
			rbd_check_threads = entry->next;
		pthread_mutex_unlock(&rbd_checks_lock);
		if (!entry)
			return;
		pthread_join(entry->thread, NULL);
		free(entry);
	}
}
