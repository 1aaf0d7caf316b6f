/* SPDX-License-Identifier: Apache-2.0 */
/*
 * device.c: one TCMU device from attach to detach. Attaching reads the
 * device's configfs attributes, picks the handler by subtype, opens it,
 * maps the UIO region and hands the ring to a worker. Every failure path
 * goes through device_detach(), so a half-attached device is torn down by
 * the same code as a removed one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tcmu_internal.h"

#define CONFIGFS_CORE "/sys/kernel/config/target/core"
#define SYSFS_UIO "/sys/class/uio"
#define UIO_NAME_PREFIX "tcm-user/"
#define DRAIN_TIMEOUT_MS 30000

static unsigned int drain_timeout_ms = DRAIN_TIMEOUT_MS;

void device_set_drain_timeout(unsigned int milliseconds)
{
	drain_timeout_ms = milliseconds;
}

/* ---- attach ---- */

static void device_ring_kick(struct tcmu_ring *ring)
{
	uint32_t value = 0;

	/* A write to the uio fd makes the kernel collect completions. */
	if (write(ring->dev->uio_fd, &value, sizeof(value)) != sizeof(value))
		tcmu_dev_err(ring->dev, "kick: %m");
}

static int device_read_attribute(struct tcmu_device *dev, const char *attribute,
				 uint64_t *ret_value)
{
	char *path;
	int result;

	if (asprintf(&path, "%s/%s", dev->configfs_dir, attribute) < 0)
		return -ENOMEM;
	result = sysfs_read_u64(path, ret_value);
	if (result < 0)
		tcmu_dev_err(dev, "read %s: %s", path, strerror(-result));
	free(path);
	return result;
}

/* "T10 VPD Unit Serial Number: <serial>" in configfs; empty when unset. */
static int device_read_unit_serial(struct tcmu_device *dev)
{
	const char *separator;
	char *path, *text;
	int result;

	if (asprintf(&path, "%s/wwn/vpd_unit_serial", dev->configfs_dir) < 0)
		return -ENOMEM;
	result = sysfs_read_string(path, &text);
	free(path);
	if (result < 0) {
		dev->unit_serial = strdup("");
		return dev->unit_serial ? 0 : -ENOMEM;
	}
	separator = strstr(text, ": ");
	dev->unit_serial = strdup(separator ? separator + 2 : "");
	free(text);
	return dev->unit_serial ? 0 : -ENOMEM;
}

static int device_action(struct tcmu_device *dev, const char *action, const char *value)
{
	char *path;
	int result;

	if (asprintf(&path, "%s/action/%s", dev->configfs_dir, action) < 0)
		return -ENOMEM;
	result = sysfs_write_string(path, value);
	if (result < 0)
		tcmu_dev_err(dev, "write %s to %s: %s", value, path, strerror(-result));
	free(path);
	return result;
}

/*
 * A ring left by an earlier daemon may hold commands that nobody will
 * finish. Block the device so the kernel queues new commands meanwhile,
 * have the kernel fail the stale ones with BUSY (the initiator retries
 * them) and reset head and tail, then let commands flow again.
 */
static int device_reset_ring(struct tcmu_device *dev)
{
	int result, unblock;

	result = device_action(dev, "block_dev", "1");
	if (result < 0)
		return result;
	result = device_action(dev, "reset_ring", "1");
	unblock = device_action(dev, "block_dev", "0");
	return result < 0 ? result : unblock;
}

/* "tcm-user/<hba>/<name>/<subtype>/<config>": the config may contain '/'. */
static int device_parse_uio_name(struct tcmu_device *dev, const char *uio_name)
{
	const char *hba_text, *name_start, *name_end;
	char *end;
	unsigned long hba;

	if (strncmp(uio_name, UIO_NAME_PREFIX, strlen(UIO_NAME_PREFIX)) != 0)
		return -EINVAL;
	hba_text = uio_name + strlen(UIO_NAME_PREFIX);
	errno = 0;
	hba = strtoul(hba_text, &end, 10);
	if (errno || end == hba_text || *end != '/' || hba > UINT32_MAX)
		return -EINVAL;
	name_start = end + 1;
	name_end = strchr(name_start, '/');
	if (!name_end || name_end == name_start)
		return -EINVAL;

	dev->hba_number = (unsigned int)hba;
	dev->name = strndup(name_start, (size_t)(name_end - name_start));
	dev->dev_config = strdup(name_end + 1);
	dev->uio_name = strdup(uio_name);
	if (!dev->name || !dev->dev_config || !dev->uio_name)
		return -ENOMEM;
	if (asprintf(&dev->configfs_dir, CONFIGFS_CORE "/user_%u/%s", dev->hba_number,
		     dev->name) < 0) {
		dev->configfs_dir = NULL;
		return -ENOMEM;
	}
	if (asprintf(&dev->backstore, "user_%u/%s", dev->hba_number, dev->name) < 0) {
		dev->backstore = NULL;
		return -ENOMEM;
	}
	return 0;
}

static int device_map_uio(struct tcmu_device *dev)
{
	char path[64];
	uint64_t map_size;
	int result;

	snprintf(path, sizeof(path), SYSFS_UIO "/uio%u/maps/map0/size", dev->uio_minor);
	result = sysfs_read_u64(path, &map_size);
	if (result < 0) {
		tcmu_dev_err(dev, "read %s: %s", path, strerror(-result));
		return result;
	}
	snprintf(path, sizeof(path), "/dev/uio%u", dev->uio_minor);
	dev->uio_fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (dev->uio_fd < 0) {
		result = -errno;
		tcmu_dev_err(dev, "open %s: %m", path);
		return result;
	}
	dev->map = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_SHARED, dev->uio_fd, 0);
	if (dev->map == MAP_FAILED) {
		result = -errno;
		dev->map = NULL;
		tcmu_dev_err(dev, "mmap %s (%" PRIu64 " bytes): %m", path, map_size);
		return result;
	}
	dev->map_size = map_size;
	return 0;
}

static int device_read_attributes(struct tcmu_device *dev)
{
	uint64_t size, block_size, max_sectors, write_cache;
	int result;

	result = device_read_attribute(dev, "attrib/dev_size", &size);
	if (result == 0)
		result = device_read_attribute(dev, "attrib/hw_block_size", &block_size);
	if (result == 0)
		result = device_read_attribute(dev, "attrib/hw_max_sectors", &max_sectors);
	if (result == 0)
		result = device_read_attribute(dev, "attrib/emulate_write_cache", &write_cache);
	if (result < 0)
		return result;
	if (block_size < 512 || block_size > 65536 || (block_size & (block_size - 1))) {
		tcmu_dev_err(dev, "unusable hw_block_size %" PRIu64, block_size);
		return -EINVAL;
	}
	if (size < block_size) {
		tcmu_dev_err(dev, "dev_size %" PRIu64 " is smaller than one block (%" PRIu64
			     "); set dev_size in control before enabling", size, block_size);
		return -EINVAL;
	}
	dev->size = size;
	dev->block_size = (uint32_t)block_size;
	dev->max_sectors = max_sectors > UINT32_MAX ? UINT32_MAX : (uint32_t)max_sectors;
	dev->write_cache = write_cache != 0;
	return device_read_unit_serial(dev);
}

static int device_open_handler(struct tcmu_device *dev)
{
	const struct tcmu_handler *handler;
	char *reason = NULL;
	int result;

	handler = handler_find(dev->subtype);
	if (!handler) {
		tcmu_dev_err(dev, "no handler for subtype '%s'", dev->subtype);
		return -ENOENT;
	}
	result = handler_require(handler, &reason);
	if (result < 0) {
		tcmu_dev_err(dev, "the %s handler is not available: %s", dev->subtype,
			     reason ? reason : strerror(-result));
		free(reason);
		return result;
	}
	dev->handler = handler;
	if (handler->check_config) {
		result = handler->check_config(dev->config, &reason);
		if (result < 0) {
			tcmu_dev_err(dev, "config '%s' refused: %s", dev->config,
				     reason ? reason : strerror(-result));
			free(reason);
			return result;
		}
		free(reason);
	}
	result = handler->open(dev);
	if (result < 0) {
		tcmu_dev_err(dev, "handler could not open the device: %s", strerror(-result));
		return result;
	}
	dev->handler_open = true;
	return 0;
}

int device_attach(const char *uio_name, unsigned int uio_minor, bool reset_ring,
		  struct tcmu_device **ret_device)
{
	struct tcmu_device *dev;
	int result;

	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->uio_fd = -1;
	dev->uio_minor = uio_minor;
	pthread_mutex_init(&dev->state_lock, NULL);
	scsi_device_init(dev);

	result = device_parse_uio_name(dev, uio_name);
	if (result < 0) {
		tcmu_err("unusable TCMU device name '%s'", uio_name);
		goto fail;
	}
	result = dev_config_split(dev->dev_config, &dev->subtype, &dev->config);
	if (result < 0) {
		tcmu_err("device %s: config '%s' is not <subtype>/<config>", dev->backstore,
			 dev->dev_config);
		goto fail;
	}
	if (asprintf(&dev->log_prefix, "%s/%s", dev->subtype, dev->name) < 0) {
		dev->log_prefix = NULL;
		result = -ENOMEM;
		goto fail;
	}

	result = device_read_attributes(dev);
	if (result < 0)
		goto fail;
	result = device_open_handler(dev);
	if (result < 0)
		goto fail;
	result = device_map_uio(dev);
	if (result < 0)
		goto fail;
	if (reset_ring) {
		result = device_reset_ring(dev);
		if (result < 0)
			goto fail;
	}
	result = ring_init(&dev->ring, dev, dev->map, dev->map_size, scsi_execute, device_ring_kick);
	if (result < 0)
		goto fail;
	result = worker_add_device(dev);
	if (result < 0) {
		tcmu_dev_err(dev, "cannot start serving the ring: %s", strerror(-result));
		goto fail;
	}
	tcmu_dev_info(dev, "attached: %s, %" PRIu64 " bytes, block size %u, write cache %s",
		      dev->backstore, dev->size, dev->block_size,
		      dev->write_cache ? "on" : "off");
	*ret_device = dev;
	return 0;

fail:
	device_detach(dev);
	return result;
}

/* ---- detach ---- */

/* The end of a detach: nothing is in flight, the worker has let go. */
static void device_close_and_free(struct tcmu_device *dev)
{
	bool removed_by_kernel = dev->removed_by_kernel;

	if (dev->handler_open) {
		dev->handler->close(dev);
		if (removed_by_kernel && dev->handler->remove)
			dev->handler->remove(dev);
		tcmu_dev_info(dev, "%s", removed_by_kernel ? "removed" : "detached");
	}
	ring_destroy(&dev->ring);
	if (dev->map)
		munmap(dev->map, dev->map_size);
	if (dev->uio_fd >= 0)
		close(dev->uio_fd);
	free(dev->name);
	free(dev->subtype);
	free(dev->config);
	free(dev->dev_config);
	free(dev->uio_name);
	free(dev->configfs_dir);
	free(dev->log_prefix);
	free(dev->backstore);
	free(dev->unit_serial);
	scsi_device_destroy(dev);
	pthread_mutex_destroy(&dev->state_lock);
	free(dev);
}

static void device_release(struct tcmu_device *dev, bool removed_by_kernel)
{
	bool timed_out = false;

	if (!dev)
		return;
	/*
	 * Copies that use it or that it received stop at their next chunk,
	 * so that neither its drain nor the wait for other devices' copies
	 * lasts as long as a copy can, whether the kernel removes it or the
	 * daemon stops.
	 */
	__atomic_store_n(&dev->leaving, true, __ATOMIC_RELEASE);
	dev->removed_by_kernel = removed_by_kernel;
	/* Requests in flight may complete through the handler's watched fds. */
	if (dev->worker) {
		unsigned int in_flight;

		if (worker_stop_ring(dev) < 0)
			goto left_to_worker;
		in_flight = ring_in_flight(&dev->ring);
		if (in_flight)
			tcmu_dev_info(dev, "waiting for %u command(s) in flight", in_flight);
		timed_out = ring_wait_drained(&dev->ring, drain_timeout_ms) < 0;
	}
	/* Copies that other devices received may still read or write this one. */
	device_wait_unreferenced(dev);
	/*
	 * Requests in flight use the ring, the map, the handler and the
	 * device: all stay until the last one completes, and its completion
	 * has the worker close and free the device. The worker goes on
	 * serving the handler's fds meanwhile.
	 */
	if (timed_out) {
		tcmu_dev_err(dev, "%u command(s) still in flight after %u ms; the device stays "
			     "open until the last completes, then is closed and freed",
			     ring_in_flight(&dev->ring), drain_timeout_ms);
		if (worker_release_when_drained(dev, device_close_and_free))
			return;
	}
	if (worker_remove_device(dev) < 0)
		goto left_to_worker;
	device_close_and_free(dev);
	return;

left_to_worker:
	tcmu_dev_err(dev, "left open and allocated: its ring worker may still use it");
}

void device_detach(struct tcmu_device *dev)
{
	device_release(dev, false);
}

void device_remove(struct tcmu_device *dev)
{
	device_release(dev, true);
}

void device_detach_all(void)
{
	struct tcmu_device *dev;

	/* All first: a copy between two devices stops before the first detach waits. */
	device_list_mark_leaving();
	while ((dev = device_list_first())) {
		device_list_remove(dev);
		device_detach(dev);
	}
}

int device_attach_existing(void)
{
	struct dirent *entry;
	int attached = 0;
	DIR *directory;

	directory = opendir(SYSFS_UIO);
	if (!directory)
		return errno == ENOENT ? 0 : -errno;
	while ((entry = readdir(directory))) {
		struct tcmu_device *dev;
		unsigned int minor;
		char path[300], *name;

		if (sscanf(entry->d_name, "uio%u", &minor) != 1)
			continue;
		snprintf(path, sizeof(path), SYSFS_UIO "/%s/name", entry->d_name);
		if (sysfs_read_string(path, &name) < 0)
			continue;
		if (strncmp(name, UIO_NAME_PREFIX, strlen(UIO_NAME_PREFIX)) == 0 &&
		    !device_find_by_minor(minor)) {
			if (device_attach(name, minor, true, &dev) == 0) {
				device_list_add(dev);
				attached++;
			} else {
				tcmu_err("existing device %s not served (see above)", name);
			}
		}
		free(name);
	}
	closedir(directory);
	return attached;
}

/* ---- reconfigure ---- */

struct device_flush_wait {
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	bool done;
	int result;
};

static void device_flush_done(struct tcmu_request *req, int result)
{
	struct device_flush_wait *wait = req->scsi_private;

	pthread_mutex_lock(&wait->lock);
	wait->result = result;
	wait->done = true;
	pthread_cond_broadcast(&wait->done_cond);
	pthread_mutex_unlock(&wait->lock);
}

/* On the ring's thread, where the handler expects its calls. */
static void device_flush_start(struct tcmu_device *dev, void *argument)
{
	struct tcmu_request *req = argument;
	int result = dev->handler->flush(dev, req);

	if (result < 0)
		device_flush_done(req, result);
}

/* Makes every write the handler completed so far durable. 0 or -errno. */
static int device_flush(struct tcmu_device *dev)
{
	struct device_flush_wait wait = {
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.done_cond = PTHREAD_COND_INITIALIZER,
	};
	struct tcmu_request req = {
		.dev = dev,
		.io_done = device_flush_done,
		.scsi_private = &wait,
	};
	int result = worker_run(dev, device_flush_start, &req);

	if (result < 0)
		return result;
	pthread_mutex_lock(&wait.lock);
	while (!wait.done)
		pthread_cond_wait(&wait.done_cond, &wait.lock);
	pthread_mutex_unlock(&wait.lock);
	return wait.result;
}

/*
 * Turns the write cache off: write-through first, so that a write from now
 * on is durable by itself, then a flush for the writes completed into the
 * cache before. A failed flush turns the cache back on. 0 or -errno.
 */
static int device_write_cache_off(struct tcmu_device *dev)
{
	int result;

	write_cache_begin(dev, false);
	result = device_flush(dev);
	if (result < 0)
		write_cache_flush_failed(dev, result);
	return result;
}

int device_reconfigure(struct tcmu_device *dev, const struct tcmu_device_change *change)
{
	struct tcmu_device_change handler_change = { 0 };
	char *subtype = NULL, *config = NULL, *full_config = NULL;
	int result = 0;

	if (change->what & TCMU_CHANGE_CONFIG) {
		result = dev_config_split(change->config, &subtype, &config);
		if (result < 0 || strcmp(subtype, dev->subtype) != 0) {
			tcmu_dev_err(dev, "new config '%s' refused: the subtype must stay '%s'",
				     change->config, dev->subtype);
			result = -EINVAL;
			goto out;
		}
		full_config = strdup(change->config);
		if (!full_config) {
			result = -ENOMEM;
			goto out;
		}
		if (strcmp(config, dev->config) != 0) {
			handler_change.what |= TCMU_CHANGE_CONFIG;
			handler_change.config = config;
		}
	}
	if ((change->what & TCMU_CHANGE_SIZE) && change->size != dev->size) {
		if (change->size < dev->block_size) {
			tcmu_dev_err(dev, "new size %" PRIu64 " is smaller than one block",
				     change->size);
			result = -EINVAL;
			goto out;
		}
		handler_change.what |= TCMU_CHANGE_SIZE;
		handler_change.size = change->size;
	}
	if ((change->what & TCMU_CHANGE_WRITE_CACHE) && change->write_cache != dev->write_cache) {
		handler_change.what |= TCMU_CHANGE_WRITE_CACHE;
		handler_change.write_cache = change->write_cache;
	}

	/* Unchanged values (restoreconfig sends them all) are accepted as they are. */
	if (handler_change.what & ~TCMU_CHANGE_WRITE_CACHE && !dev->handler->reconfigure) {
		tcmu_dev_err(dev, "the %s handler cannot change a running device's %s",
			     dev->subtype,
			     handler_change.what & TCMU_CHANGE_SIZE ? "size" : "config");
		result = -EOPNOTSUPP;
		goto out;
	}
	if ((handler_change.what & TCMU_CHANGE_WRITE_CACHE) && !handler_change.write_cache) {
		result = device_write_cache_off(dev);
		if (result < 0)
			goto out;
	}
	if (handler_change.what && dev->handler->reconfigure) {
		/* The handler logs why it refuses: it made the decision. */
		result = dev->handler->reconfigure(dev, &handler_change);
		if (result < 0) {
			/* Nothing changed, so neither did the cache (flushing it did no harm). */
			if (handler_change.what & TCMU_CHANGE_WRITE_CACHE)
				write_cache_restore(dev, handler_change.write_cache);
			goto out;
		}
	}

	if (handler_change.what & TCMU_CHANGE_CONFIG) {
		free(dev->config);
		dev->config = config;
		config = NULL;
		tcmu_dev_info(dev, "config is now '%s'", dev->config);
	}
	if (full_config) {
		char *uio_name;

		/* The kernel renames the UIO device after the new config. */
		if (asprintf(&uio_name, UIO_NAME_PREFIX "%u/%s/%s", dev->hba_number, dev->name,
			     full_config) >= 0) {
			free(dev->uio_name);
			dev->uio_name = uio_name;
		}
		free(dev->dev_config);
		dev->dev_config = full_config;
		full_config = NULL;
	}
	if (handler_change.what & TCMU_CHANGE_SIZE) {
		__atomic_store_n(&dev->size, handler_change.size, __ATOMIC_RELAXED);
		__atomic_store_n(&dev->scsi.capacity_changed, true, __ATOMIC_RELEASE);
		tcmu_dev_info(dev, "size is now %" PRIu64 " bytes", handler_change.size);
	}
	if (handler_change.what & TCMU_CHANGE_WRITE_CACHE)
		write_cache_commit(dev, handler_change.write_cache);
out:
	free(subtype);
	free(config);
	free(full_config);
	return result;
}
