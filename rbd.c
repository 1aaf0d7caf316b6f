/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rbd.c: a disk kept in a Ceph RBD image, through librbd and librados: the
 * handler and the life of a device (check, open, resize, close).
 *
 * Configuration string (RBD_CONFIG_DESCRIPTION; README.md, tcmu-runner(8);
 * parsed in rbd_config.c): pool/image[;osd_op_timeout=N][;conf=...][;id=...].
 * check_config connects and opens the image read-only on a thread of its own
 * and answers within RBD_CHECK_TOTAL_TIMEOUT seconds in all (D-Bus callers wait
 * for it), saying what is wrong. The unit serial is the image's id.
 *
 * The device's size is the image's: open refuses another dev_size. A larger
 * size grows the image (rbd_resize); a smaller one is refused, as shrinking
 * destroys data. A running device keeps its image and options. The I/O is
 * in rbd_io.c.
 *
 * COMPARE AND WRITE of one 512-byte block is librbd's, atomic against every
 * client of the image; longer ones are the core's (rbd_io.c says why).
 */
#include "rbd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define RBD_CONFIG_DESCRIPTION							\
	"pool/image[;osd_op_timeout=N][;conf=/path/ceph.conf][;id=client][;gateway=N/M]\n" \
	"or pool/namespace/image[;...]: the RBD image that holds the disk, e.g.\n" \
	"rbd/lun0. osd_op_timeout: seconds before a command the cluster does not\n" \
	"answer fails with BUSY (default 20; 0 waits forever). conf: the cluster's\n" \
	"ceph.conf (default $CEPH_CONF, then /etc/ceph/ceph.conf). id: the client\n" \
	"name without 'client.' (default admin). The device size must equal the\n" \
	"image size; a larger size grows the image. gateway: gateway N of M (at\n" \
	"most 16) when several serve the image as one LUN: the one holding the\n" \
	"image's lock is active/optimized, the others standby (ALUA); the\n" \
	"backstore's alua_support must be 0."

static int rbd_check_config(const char *text, char **ret_reason)
{
	struct rbd_config config;
	int result;

	result = rbd_parse_config(text, &config, ret_reason);
	if (result < 0)
		return result;
	return rbd_check_cluster(&config, ret_reason);
}

/*
 * The unit serial (VPD 0x80, and 0x83's designators derived from it) is
 * the image's id, the same for every gateway that serves the image, so that
 * an initiator sees one disk on every path. Images of the old format have
 * no id: their object name prefix is as unique.
 */
static int rbd_set_identity(struct tcmu_device *dev, struct rbd_state *state, char **ret_reason)
{
	char id[RBD_MAX_BLOCK_NAME_SIZE];
	int result;

	result = rbd_get_id(state->image, id, sizeof(id));
	if (result < 0)
		result = rbd_get_block_name_prefix(state->image, id, sizeof(id));
	if (result < 0)
		return rbd_refuse(ret_reason, result, "id of image '%s': %s", state->config.name,
				  strerror(-result));
	result = tcmu_device_set_unit_serial(dev, id);
	if (result < 0)
		return rbd_refuse(ret_reason, result, "unit serial '%s' of image '%s': %s", id,
				  state->config.name, strerror(-result));
	tcmu_dev_info(dev, "unit serial %s: the id of image '%s'", id, state->config.name);
	return 0;
}

static int rbd_open_device(struct tcmu_device *dev)
{
	struct rbd_state *state;
	pthread_condattr_t attributes;
	char *reason = NULL;
	uint64_t image_size, features;
	int result;

	state = calloc(1, sizeof(*state));
	if (!state)
		return -ENOMEM;
	state->event_fd = -1;
	state->timer_fd = -1;
	pthread_mutex_init(&state->lock, NULL);
	/* The rejoin's retries wait on it with a deadline. */
	pthread_condattr_init(&attributes);
	pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
	pthread_cond_init(&state->job_changed, &attributes);
	pthread_condattr_destroy(&attributes);
	result = rbd_parse_config(tcmu_device_get_config(dev), &state->config, &reason);
	if (result < 0)
		goto out_free;
	tcmu_dev_info(dev, "rbd_open '%s' (osd_op_timeout %u s)", state->config.name,
		      state->config.osd_op_timeout);
	result = rbd_attach(&state->config, RBD_CONNECT_TIMEOUT, state->config.osd_op_timeout,
			    false, state, &reason);
	if (result < 0)
		goto out_free;

	result = rbd_get_size(state->image, &image_size);
	if (result < 0) {
		rbd_refuse(&reason, result, "size of image '%s': %s", state->config.name,
			   strerror(-result));
		goto out_detach;
	}
	if (image_size != tcmu_device_get_size(dev)) {
		result = rbd_refuse(&reason, -EINVAL,
				    "image '%s' holds %" PRIu64 " bytes but the device's size is %"
				    PRIu64 ": create the backstore with the image's size",
				    state->config.name, image_size, tcmu_device_get_size(dev));
		goto out_detach;
	}
	result = rbd_get_stripe_unit(state->image, &state->stripe_unit);
	if (result < 0) {
		rbd_refuse(&reason, result, "stripe unit of image '%s': %s", state->config.name,
			   strerror(-result));
		goto out_detach;
	}
	result = rbd_get_features(state->image, &features);
	if (result < 0) {
		rbd_refuse(&reason, result, "features of image '%s': %s", state->config.name,
			   strerror(-result));
		goto out_detach;
	}
	state->exclusive_lock = features & RBD_FEATURE_EXCLUSIVE_LOCK;
	result = rbd_alua_open(dev, state, &reason);
	if (result < 0)
		goto out_detach;

	result = rbd_set_identity(dev, state, &reason);
	if (result < 0)
		goto out_detach;

	state->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	result = state->event_fd < 0 ? -errno :
		 rbd_set_image_notification(state->image, state->event_fd, EVENT_TYPE_EVENTFD);
	if (result == 0 && state->config.osd_op_timeout) {
		state->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (state->timer_fd < 0)
			result = -errno;
	}
	if (result == 0)
		result = tcmu_device_watch_fd(dev, state->event_fd, TCMU_FD_READABLE);
	if (result == 0 && state->timer_fd >= 0) {
		result = tcmu_device_watch_fd(dev, state->timer_fd, TCMU_FD_READABLE);
		if (result < 0)
			tcmu_device_unwatch_fd(dev, state->event_fd);
	}
	if (result < 0) {
		rbd_refuse(&reason, result, "completion notification of '%s': %s",
			   state->config.name, strerror(-result));
		goto out_detach;
	}
	tcmu_device_set_private(dev, state);
	tcmu_dev_info(dev, "dev size: %" PRIu64, image_size);
	return 0;

out_detach:
	rbd_alua_close(state);
	rbd_detach(state);
out_free:
	tcmu_dev_err(dev, "%s", reason ? reason : strerror(-result));
	free(reason);
	if (state->event_fd >= 0)
		close(state->event_fd);
	if (state->timer_fd >= 0)
		close(state->timer_fd);
	pthread_cond_destroy(&state->job_changed);
	pthread_mutex_destroy(&state->lock);
	rbd_config_clear(&state->config);
	free(state);
	return result;
}

static void rbd_close_device(struct tcmu_device *dev)
{
	struct rbd_state *state = tcmu_device_get_private(dev);

	/* Its job may still use the device (a rejoin under way): it ends first. */
	rbd_job_stop(state);
	tcmu_device_set_private(dev, NULL);
	rbd_locked_forget(state);
	rbd_lba_status_forget(state);
	rbd_alua_close(state);
	/* librbd waits for what it still has in flight, then its requests are ours. */
	rbd_detach(state);
	rbd_io_forget(state);
	close(state->event_fd);
	if (state->timer_fd >= 0)
		close(state->timer_fd);
	pthread_cond_destroy(&state->job_changed);
	pthread_mutex_destroy(&state->lock);
	rbd_config_clear(&state->config);
	free(state);
}

/* Checks the image's size against size and grows the image to it. */
static int rbd_resize_image(struct tcmu_device *dev, rbd_image_t image, uint64_t size)
{
	uint64_t image_size;
	int result;

	result = rbd_get_size(image, &image_size);
	if (result < 0) {
		errno = -result;
		tcmu_dev_err(dev, "size of the image: %m");
		return result;
	}
	if (size < image_size) {
		tcmu_dev_err(dev, "new size %" PRIu64 " refused: the image holds %" PRIu64
			     " bytes and shrinking it would destroy data (shrink it with "
			     "`rbd resize --allow-shrink` first)", size, image_size);
		return -EINVAL;
	}
	if (size > image_size) {
		result = rbd_resize(image, size);
		if (result < 0) {
			errno = -result;
			tcmu_dev_err(dev, "growing the image to %" PRIu64 " bytes: %m", size);
			return result;
		}
		tcmu_dev_info(dev, "image grown from %" PRIu64 " to %" PRIu64 " bytes",
			      image_size, size);
	}
	return 0;
}

static int rbd_reconfigure(struct tcmu_device *dev, const struct tcmu_device_change *change)
{
	struct rbd_state *state = tcmu_device_get_private(dev);
	rbd_image_t image;
	uint64_t one = 1;
	int result;

	/* The core passes a config only when the string changed. */
	if (change->what & TCMU_CHANGE_CONFIG) {
		tcmu_dev_err(dev, "new config '%s' refused: a running rbd device keeps its "
			     "image and options; create another backstore instead", change->config);
		return -EOPNOTSUPP;
	}
	if (!(change->what & TCMU_CHANGE_SIZE))
		return 0;
	/*
	 * A rejoin (rbd_rejoin_swap, on the ring thread) swaps the image handle
	 * and closes the fenced one: this call counts as a user of the handle
	 * it read, as a request in flight does, so that it is not swapped out
	 * from under it. The lock is not held across the resize: the ring
	 * thread's commands and librbd's header callback take it, and the
	 * resize waits for the cluster (and for that callback).
	 */
	pthread_mutex_lock(&state->lock);
	if (state->blocklisted) {
		pthread_mutex_unlock(&state->lock);
		tcmu_dev_err(dev, "new size %" PRIu64 " refused: the Ceph cluster blocklisted "
			     "this client%s", change->size, state->config.gateway_group ?
			     "; try again once the gateway has rejoined" : "");
		return -ESHUTDOWN;
	}
	image = state->image;
	state->image_users++;
	pthread_mutex_unlock(&state->lock);

	result = rbd_resize_image(dev, image, change->size);

	pthread_mutex_lock(&state->lock);
	state->image_users--;
	/* A fresh client waits for this call to end: the ring thread swaps it in now. */
	if (state->fresh && !state->image_users && write(state->event_fd, &one, sizeof(one)) < 0)
		tcmu_dev_warn(dev, "waking the ring thread for the rejoin: %m");
	pthread_mutex_unlock(&state->lock);
	if (result == 0)
		tcmu_dev_info(dev, "dev size: %" PRIu64, change->size);
	return result;
}

/* Before the handler's code goes away: its threads end. */
static void rbd_unload(void)
{
	rbd_checks_wait();
	rbd_locked_stop();
	rbd_lba_status_stop();
}

static struct tcmu_handler rbd_handler = {
	.subtype = "rbd",
	.name = "Ceph RBD image",
	.config_description = RBD_CONFIG_DESCRIPTION,
	.unload = rbd_unload,
	.check_config = rbd_check_config,
	.open = rbd_open_device,
	.close = rbd_close_device,
	.read = rbd_device_read,
	.write = rbd_device_write,
	.flush = rbd_device_flush,
	.unmap = rbd_device_unmap,
	.compare_and_write = rbd_device_compare_and_write,
	.reconfigure = rbd_reconfigure,
	.query_lba_status = rbd_device_query_lba_status,
	.fd_ready = rbd_fd_ready,
	.get_port_groups = rbd_get_port_groups,
	.set_port_state = rbd_set_port_state,
};

TCMU_HANDLER_REGISTER(rbd_handler)
