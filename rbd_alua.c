/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rbd_alua.c: one image served by several gateways as one logical unit,
 * active/passive. The gateway whose client holds the image's exclusive lock
 * is active/optimized; the others are standby (active/active gateways would
 * pass the lock back and forth on every write).
 *
 * The groups are gateways 1 to M of the config string's gateway=N/M, and
 * their states come from the cluster, so that every gateway reports the
 * same thing on its path: a gateway that takes the lock records its group
 * on the image (metadata "tcmu.gateway.<group>" = its client's address,
 * which is how librbd names the lock's owner), and the group recorded for
 * the current owner is the active one.
 *
 * A gateway that restarts finds the lock free, held by another gateway
 * (it joins as standby), or still held by its own earlier instance, which
 * died before anyone took over: it breaks that lock, fencing whatever that
 * instance still had in flight, and takes the image back.
 *
 * Taking over (SET TARGET PORT GROUPS asking for active/optimized) breaks the
 * owner's lock, which blocklists the owner's client (librbd's
 * rbd_blocklist_on_break_lock, on by default), before acquiring it: a write
 * the old owner still has in flight can then no longer land after ours.
 * librbd's lock calls wait for the cluster, so a takeover runs on the
 * device's job thread and completes the command from there. One job at a
 * time (a takeover, or a fenced gateway's rejoin: rbd_rejoin.c), joined
 * before the next and when the device closes: a job never outlives the
 * device's state, nor the handler's code.
 *
 * Initiators poll REPORT TARGET PORT GROUPS (multipathd on every path
 * check), and finding the owner takes two requests to the cluster on the
 * ring thread, so the answer is kept for OWNER_CACHE_SECONDS. It is
 * forgotten sooner when it may have changed: when this gateway takes over
 * or steps back, and when the image's header changes (librbd's update
 * watch), which every takeover does by recording the new owner's group. A
 * gateway whose commands found it blocklisted asks the cluster every time.
 */
#include "rbd.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GATEWAY_KEY_PREFIX "tcmu.gateway."
#define MAX_OWNERS 8
#define OWNER_CACHE_SECONDS 5

struct rbd_takeover {
	struct tcmu_device *dev;
	struct rbd_state *state;
	struct tcmu_request *req;
	uint8_t wanted;
};

struct rbd_job {
	struct tcmu_device *dev;
	struct rbd_state *state;
	void (*function)(void *argument);
	void *argument;
};

/* The lock's owner's address into owner ("" when unlocked). */
static int lock_owner(struct rbd_state *state, char *owner, size_t size)
{
	char *owners[MAX_OWNERS];
	size_t count = MAX_OWNERS;
	rbd_lock_mode_t mode;
	int result;

	owner[0] = '\0';
	result = rbd_lock_get_owners(state->image, &mode, owners, &count);
	if (result == -ENOENT)
		return 0;
	if (result < 0)
		return result;
	if (count > 0)
		snprintf(owner, size, "%s", owners[0]);
	rbd_lock_get_owners_cleanup(owners, count);
	return 0;
}

/*
 * Records on the image, while holding the lock, that this gateway's group
 * is the lock's owner as librbd names it (its client's address), so that
 * every gateway finds which group is active.
 */
static int record_owner(struct rbd_state *state)
{
	char key[sizeof(GATEWAY_KEY_PREFIX) + 8];

	snprintf(key, sizeof(key), GATEWAY_KEY_PREFIX "%u", state->config.gateway_group);
	return rbd_metadata_set(state->image, key, state->address);
}

void rbd_forget_active_group(struct rbd_state *state)
{
	pthread_mutex_lock(&state->lock);
	state->active_checked = 0;
	state->active_generation++;
	pthread_mutex_unlock(&state->lock);
}

void rbd_header_updated(void *argument)
{
	rbd_forget_active_group(argument);
}

/*
 * Whether owner took the lock as this gateway's group: then it is an
 * earlier instance of this gateway (killed, or its host restarted), whose
 * lock nobody else would break while it keeps the group reported active.
 */
static bool held_by_earlier_instance(struct rbd_state *state, const char *owner)
{
	char key[sizeof(GATEWAY_KEY_PREFIX) + 8], value[256];
	size_t length = sizeof(value);

	snprintf(key, sizeof(key), GATEWAY_KEY_PREFIX "%u", state->config.gateway_group);
	return rbd_metadata_get(state->image, key, value, &length) == 0 &&
	       strcmp(value, owner) == 0 && strcmp(owner, state->address) != 0;
}

int rbd_alua_open(struct tcmu_device *dev, struct rbd_state *state, char **ret_reason)
{
	char owner[256];
	char *addresses = NULL;
	int result;

	if (!state->config.gateway_group)
		return 0;
	result = rados_getaddrs(state->cluster, &addresses);
	if (result < 0)
		return rbd_refuse(ret_reason, result, "address of this gateway's client: %s",
				  strerror(-result));
	state->address = strdup(addresses);
	free(addresses);
	if (!state->address)
		return -ENOMEM;
	result = tcmu_device_set_port_group(dev, (uint16_t)state->config.gateway_group);
	if (result < 0)
		return rbd_refuse(ret_reason, result, "target port group %u refused",
				  state->config.gateway_group);
	result = rbd_update_watch(state->image, &state->update_handle, rbd_header_updated,
				  state);
	if (result < 0)
		return rbd_refuse(ret_reason, result, "watching image '%s': %s",
				  state->config.name, strerror(-result));
	state->update_watched = true;
	/* The first gateway up takes the free lock; the others wait as standby. */
	result = lock_owner(state, owner, sizeof(owner));
	if (result == 0 && owner[0] && held_by_earlier_instance(state, owner)) {
		tcmu_dev_info(dev, "the lock of image '%s' is held by %s, an earlier instance of "
			      "gateway %u: breaking it and blocklisting that client", state->config.name,
			      owner, state->config.gateway_group);
		result = rbd_lock_break(state->image, RBD_LOCK_MODE_EXCLUSIVE, owner);
		if (result == 0 || result == -ENOENT)
			result = lock_owner(state, owner, sizeof(owner));
	}
	if (result == 0 && !owner[0] &&
	    rbd_lock_acquire(state->image, RBD_LOCK_MODE_EXCLUSIVE) == 0 &&
	    record_owner(state) == 0) {
		tcmu_device_set_port_state(dev, TCMU_PORT_ACTIVE_OPTIMIZED);
		tcmu_dev_info(dev, "gateway %u/%u of image '%s' (client %s): active/optimized",
			      state->config.gateway_group, state->config.gateway_count,
			      state->config.name, state->address);
		return 0;
	}
	tcmu_dev_info(dev, "gateway %u/%u of image '%s' (client %s): standby%s%s",
		      state->config.gateway_group, state->config.gateway_count,
		      state->config.name, state->address,
		      owner[0] ? ", the lock is held by " : "", owner);
	return 0;
}

void rbd_alua_close(struct rbd_state *state)
{
	if (state->update_watched)
		rbd_update_unwatch(state->image, state->update_handle);
	state->update_watched = false;
	free(state->address);
	state->address = NULL;
}

/* Asks the cluster which group is active: the one recorded for the lock's owner. */
static int find_active_group(struct rbd_state *state, unsigned *ret_group)
{
	char owner[256], keys[2048], values[4096];
	size_t keys_length = sizeof(keys), values_length = sizeof(values);
	const char *key, *value;
	int result;

	*ret_group = 0;
	result = lock_owner(state, owner, sizeof(owner));
	if (result < 0 || !owner[0])
		return result;
	result = rbd_metadata_list(state->image, GATEWAY_KEY_PREFIX, RBD_MAX_GATEWAYS + 1,
				   keys, &keys_length, values, &values_length);
	if (result < 0)
		return result;
	for (key = keys, value = values; key < keys + keys_length && *key;
	     key += strlen(key) + 1, value += strlen(value) + 1) {
		if (strncmp(key, GATEWAY_KEY_PREFIX, strlen(GATEWAY_KEY_PREFIX)) != 0)
			break;
		if (strcmp(value, owner) == 0)
			*ret_group = (unsigned)strtoul(key + strlen(GATEWAY_KEY_PREFIX), NULL, 10);
	}
	return 0;
}

/* The active group, from the cluster unless it was found recently. */
static int active_group(struct tcmu_device *dev, struct rbd_state *state, unsigned *ret_group)
{
	uint64_t now = rbd_now();
	unsigned generation;
	bool fenced;
	int result;

	pthread_mutex_lock(&state->lock);
	if (state->active_checked && !state->blocklisted &&
	    now - state->active_checked < OWNER_CACHE_SECONDS * 1000000000ull) {
		*ret_group = state->active_group;
		pthread_mutex_unlock(&state->lock);
		return 0;
	}
	generation = state->active_generation;
	fenced = state->blocklisted;
	pthread_mutex_unlock(&state->lock);
	/*
	 * An unavailable path gets path checks, not commands: a rejoin that
	 * could not start before is started again from here too.
	 */
	if (fenced)
		rbd_fenced(dev, state);

	result = find_active_group(state, ret_group);
	/* Blocklisted: its lock is gone, and it must not write again. */
	if (result == -ESHUTDOWN)
		rbd_fenced(dev, state);
	if (result < 0) {
		tcmu_dev_warn(dev, "target port groups of '%s': %s", state->config.name,
			      strerror(-result));
		return result;
	}
	tcmu_dev_dbg(dev, "target port groups of '%s' from the cluster: group %u active",
		     state->config.name, *ret_group);
	pthread_mutex_lock(&state->lock);
	/* A change noticed while the cluster answered makes this answer old. */
	if (generation == state->active_generation) {
		state->active_group = *ret_group;
		state->active_checked = now;
	}
	pthread_mutex_unlock(&state->lock);
	return 0;
}

/* Groups 1 to M; the active one is the group recorded for the lock's owner. */
int rbd_get_port_groups(struct tcmu_device *dev, struct tcmu_port_group *groups, size_t max)
{
	struct rbd_state *state = tcmu_device_get_private(dev);
	unsigned active, count = state->config.gateway_count;
	int result;

	result = active_group(dev, state, &active);
	if (result < 0)
		return result;
	if (count > max)
		count = (unsigned)max;
	for (unsigned i = 0; i < count; i++) {
		groups[i].id = (uint16_t)(i + 1);
		groups[i].state = i + 1 == active ? TCMU_PORT_ACTIVE_OPTIMIZED : TCMU_PORT_STANDBY;
	}
	/* Another gateway took the lock over: this one is standby now. */
	if (active != state->config.gateway_group &&
	    !__atomic_load_n(&state->taking_over, __ATOMIC_ACQUIRE))
		tcmu_device_set_port_state(dev, TCMU_PORT_STANDBY);
	return (int)count;
}

/* Fences the owner (break with blocklisting) unless it is us, then locks. */
static int take_over(struct rbd_takeover *takeover)
{
	struct rbd_state *state = takeover->state;
	char owner[256];
	int result;

	result = lock_owner(state, owner, sizeof(owner));
	if (result < 0)
		return result;
	if (owner[0] && strcmp(owner, state->address) != 0) {
		tcmu_dev_info(takeover->dev, "taking image '%s' over from %s: breaking its lock and "
			      "blocklisting it", state->config.name, owner);
		result = rbd_lock_break(state->image, RBD_LOCK_MODE_EXCLUSIVE, owner);
		if (result < 0 && result != -ENOENT)
			return result;
	}
	result = rbd_lock_acquire(state->image, RBD_LOCK_MODE_EXCLUSIVE);
	return result < 0 ? result : record_owner(state);
}

static void takeover_job(void *argument)
{
	struct rbd_takeover *takeover = argument;
	int result;

	if (takeover->wanted == TCMU_PORT_ACTIVE_OPTIMIZED) {
		__atomic_store_n(&takeover->state->taking_over, true, __ATOMIC_RELEASE);
		tcmu_device_set_port_state(takeover->dev, TCMU_PORT_TRANSITIONING);
		result = take_over(takeover);
		tcmu_device_set_port_state(takeover->dev, result == 0 ?
					   TCMU_PORT_ACTIVE_OPTIMIZED : TCMU_PORT_STANDBY);
		__atomic_store_n(&takeover->state->taking_over, false, __ATOMIC_RELEASE);
	} else {
		tcmu_device_set_port_state(takeover->dev, takeover->wanted);
		result = rbd_lock_release(takeover->state->image);
		if (result == -EINVAL || result == -ENOENT)
			result = 0;	/* we did not hold it */
	}
	rbd_forget_active_group(takeover->state);
	if (result < 0)
		tcmu_dev_err(takeover->dev, "%s image '%s': %s",
			     takeover->wanted == TCMU_PORT_ACTIVE_OPTIMIZED ? "taking over" :
			     "releasing", takeover->state->config.name, strerror(-result));
	if (result == -ESHUTDOWN)
		rbd_fenced(takeover->dev, takeover->state);
	tcmu_request_complete(takeover->req, result);
	free(takeover);
}

int rbd_set_port_state(struct tcmu_device *dev, struct tcmu_request *req, uint8_t wanted)
{
	struct rbd_takeover *takeover = calloc(1, sizeof(*takeover));
	int result;

	if (!takeover)
		return -ENOMEM;
	takeover->dev = dev;
	takeover->state = tcmu_device_get_private(dev);
	takeover->req = req;
	takeover->wanted = wanted;
	/* Busy while a takeover or a rejoin runs: the initiator asks again. */
	result = rbd_job_start(dev, takeover->state, takeover_job, takeover);
	if (result < 0)
		free(takeover);
	return result;
}

/*
 * The job runs its function, then the rejoins asked for meanwhile; it
 * ends under the lock, so that rbd_job_start joins a thread that has
 * nothing left to do.
 */
static void *job_thread(void *argument)
{
	struct rbd_job job = *(struct rbd_job *)argument;
	struct rbd_state *state = job.state;
	bool rejoin;

	free(argument);
	if (job.function)
		job.function(job.argument);
	for (;;) {
		pthread_mutex_lock(&state->lock);
		rejoin = state->rejoin_wanted && !state->closing;
		state->rejoin_wanted = false;
		if (!rejoin)
			state->job_running = false;
		pthread_mutex_unlock(&state->lock);
		if (!rejoin)
			return NULL;
		rbd_rejoin_run(job.dev, state);
	}
}

int rbd_job_start(struct tcmu_device *dev, struct rbd_state *state,
		  void (*function)(void *argument), void *argument)
{
	struct rbd_job *job = malloc(sizeof(*job));
	int result;

	if (!job)
		return -ENOMEM;
	*job = (struct rbd_job){ .dev = dev, .state = state, .function = function,
				 .argument = argument };
	pthread_mutex_lock(&state->lock);
	if (state->job_running || state->closing) {
		pthread_mutex_unlock(&state->lock);
		free(job);
		return -EAGAIN;
	}
	if (state->job_started)
		pthread_join(state->job, NULL);
	state->job_started = false;
	result = -pthread_create(&state->job, NULL, job_thread, job);
	if (result == 0)
		state->job_started = state->job_running = true;
	pthread_mutex_unlock(&state->lock);
	if (result < 0)
		free(job);
	return result;
}

void rbd_job_stop(struct rbd_state *state)
{
	bool started;

	pthread_mutex_lock(&state->lock);
	state->closing = true;
	pthread_cond_broadcast(&state->job_changed);
	started = state->job_started;
	state->job_started = false;
	pthread_mutex_unlock(&state->lock);
	if (started)
		pthread_join(state->job, NULL);
}
