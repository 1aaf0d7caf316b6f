/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rbd_rejoin.c: a gateway the cluster fenced comes back without a restart.
 * Another gateway that took the image over blocklisted this one's client:
 * every request of that client fails from then on (-ESHUTDOWN). The
 * gateway stops submitting at once, reports its path unavailable, and the
 * job thread opens a fresh client of the image (a new address, so the old
 * client's blocklist entry does not apply to it). The ring thread swaps it
 * in once the fenced client has no request in flight (they all complete,
 * with errors, so every command still gets its one completion), and the
 * gateway is standby: it takes the image again only by a takeover, which
 * breaks the owner's lock and fences it in turn. A standalone device
 * (no gateway=) stays fenced: whoever blocklisted it meant it.
 */
#include "rbd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Seconds between attempts when the cluster refuses the fresh client. */
#define REJOIN_RETRY_SECONDS 5

void rbd_fenced(struct tcmu_device *dev, struct rbd_state *state)
{
	bool gateway = state->config.gateway_group != 0, first, start, failed_before;
	int result;

	pthread_mutex_lock(&state->lock);
	first = !state->blocklisted;
	state->blocklisted = true;
	if (first && gateway)
		state->rejoin_wanted = true;
	/*
	 * Wanted with no job to do it: the first call, or a job thread that
	 * could not be created (rejoin_wanted stays set then), which every
	 * later call tries again, so that the gateway is not left out for good.
	 * A job running now (a takeover) does the rejoin when it ends.
	 */
	start = state->rejoin_wanted && !state->job_running && !state->closing;
	pthread_mutex_unlock(&state->lock);
	if (first && !gateway)
		tcmu_device_set_state(dev, TCMU_DEVICE_STATE_BLOCKLISTED,
				      "the Ceph cluster blocklisted this client (another client "
				      "took the image): every command fails");
	if (first && gateway) {
		tcmu_device_set_state(dev, TCMU_DEVICE_STATE_BLOCKLISTED,
				      "the Ceph cluster blocklisted this client (another gateway "
				      "took the image over): commands fail until a fresh client "
				      "rejoins");
		tcmu_device_set_port_state(dev, TCMU_PORT_UNAVAILABLE);
	}
	if (!start)
		return;
	result = rbd_job_start(dev, state, NULL, NULL);
	if (result == -EAGAIN)
		return;
	pthread_mutex_lock(&state->lock);
	failed_before = state->rejoin_start_failed;
	state->rejoin_start_failed = result < 0;
	pthread_mutex_unlock(&state->lock);
	/* Once each way: a failing start is retried with every fenced command. */
	if (result < 0 && !failed_before)
		tcmu_dev_err(dev, "cannot start the rejoin of image '%s': %s; trying again with "
			     "the next command or path check", state->config.name,
			     strerror(-result));
	if (result == 0 && failed_before)
		tcmu_dev_info(dev, "the rejoin of image '%s' started after all",
			      state->config.name);
}

/* Closes client: unwatched, then librbd and librados let go. */
static void close_client(struct rbd_client *client)
{
	struct rbd_state carrier = { .cluster = client->cluster, .ioctx = client->ioctx,
				     .image = client->image };

	if (client->update_watched)
		rbd_update_unwatch(client->image, client->update_handle);
	rbd_detach(&carrier);
	free(client->address);
}

/*
 * Opens a fresh client of the image, its header watched and its
 * completions signalled on the device's event fd, as rbd_open_device and
 * rbd_alua_open do for the first.
 */
static int open_client(struct tcmu_device *dev, struct rbd_state *state,
		       struct rbd_client *client)
{
	struct rbd_state carrier = { 0 };
	char *reason = NULL, *addresses = NULL;
	int result;

	result = rbd_attach(&state->config, RBD_CONNECT_TIMEOUT, state->config.osd_op_timeout,
			    false, &carrier, &reason);
	if (result < 0) {
		tcmu_dev_warn(dev, "rejoining: %s", reason ? reason : strerror(-result));
		free(reason);
		return result;
	}
	*client = (struct rbd_client){ .cluster = carrier.cluster, .ioctx = carrier.ioctx,
				       .image = carrier.image };
	result = rados_getaddrs(client->cluster, &addresses);
	if (result == 0) {
		client->address = strdup(addresses);
		free(addresses);
		if (!client->address)
			result = -ENOMEM;
	}
	if (result == 0)
		result = rbd_update_watch(client->image, &client->update_handle,
					  rbd_header_updated, state);
	if (result == 0) {
		client->update_watched = true;
		result = rbd_set_image_notification(client->image, state->event_fd,
						    EVENT_TYPE_EVENTFD);
	}
	if (result < 0) {
		tcmu_dev_warn(dev, "rejoining: the fresh client of image '%s': %s",
			      state->config.name, strerror(-result));
		close_client(client);
	}
	return result;
}

/* Waits seconds, or less when the device closes: whether it does. */
static bool closing_within(struct rbd_state *state, unsigned seconds)
{
	struct timespec deadline;
	bool closing;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += seconds;
	pthread_mutex_lock(&state->lock);
	while (!state->closing &&
	       pthread_cond_timedwait(&state->job_changed, &state->lock, &deadline) == 0)
		;
	closing = state->closing;
	pthread_mutex_unlock(&state->lock);
	return closing;
}

void rbd_rejoin_run(struct tcmu_device *dev, struct rbd_state *state)
{
	struct rbd_client client;
	uint64_t one = 1;

	tcmu_dev_info(dev, "gateway %u/%u of image '%s' was fenced: opening a fresh client",
		      state->config.gateway_group, state->config.gateway_count,
		      state->config.name);
	while (open_client(dev, state, &client) < 0)
		if (closing_within(state, REJOIN_RETRY_SECONDS))
			return;
	pthread_mutex_lock(&state->lock);
	state->fresh = &client;
	pthread_mutex_unlock(&state->lock);
	/* The ring thread looks at it with the completions (rbd_fd_ready). */
	if (write(state->event_fd, &one, sizeof(one)) < 0)
		tcmu_dev_warn(dev, "waking the ring thread for the rejoin: %m");
	pthread_mutex_lock(&state->lock);
	while (!client.swapped && !state->closing)
		pthread_cond_wait(&state->job_changed, &state->lock);
	state->fresh = NULL;
	pthread_mutex_unlock(&state->lock);
	/* Swapped: client holds the fenced one now. */
	close_client(&client);
}

/* Exchanges what a and b hold of type. */
#define SWAP(type, a, b)		\
	do {				\
		type swapped_ = (a);	\
		(a) = (b);		\
		(b) = swapped_;		\
	} while (0)

void rbd_rejoin_swap(struct tcmu_device *dev, struct rbd_state *state)
{
	struct rbd_client *client;

	pthread_mutex_lock(&state->lock);
	client = state->fresh;
	/*
	 * Requests still in flight hold the fenced image: their answers come
	 * first; so does a resize (rbd_reconfigure wakes us when it ends).
	 */
	if (!client || state->oldest || state->compared || state->image_users) {
		pthread_mutex_unlock(&state->lock);
		return;
	}
	SWAP(rados_t, state->cluster, client->cluster);
	SWAP(rados_ioctx_t, state->ioctx, client->ioctx);
	SWAP(rbd_image_t, state->image, client->image);
	SWAP(char *, state->address, client->address);
	SWAP(uint64_t, state->update_handle, client->update_handle);
	SWAP(bool, state->update_watched, client->update_watched);
	client->swapped = true;
	state->fresh = NULL;
	state->blocklisted = false;
	state->cluster_late = false;
	state->active_checked = 0;
	state->active_generation++;
	pthread_cond_broadcast(&state->job_changed);
	pthread_mutex_unlock(&state->lock);
	tcmu_device_set_port_state(dev, TCMU_PORT_STANDBY);
	tcmu_device_set_state(dev, TCMU_DEVICE_STATE_OPEN,
			      "a fresh client replaced the blocklisted one: standby");
	tcmu_dev_info(dev, "gateway %u/%u of image '%s' (client %s): rejoined as standby",
		      state->config.gateway_group, state->config.gateway_count,
		      state->config.name, state->address);
}
