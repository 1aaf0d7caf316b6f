/* SPDX-License-Identifier: Apache-2.0 */
/*
 * device_list.c: the daemon's list of attached devices. The main thread
 * adds and removes devices; any thread may look one up. A device that a
 * command of another device uses (EXTENDED COPY between devices) is
 * referenced for as long as that command runs, and its detach waits for
 * the references to go: it is taken off the list first, so no new one
 * can be taken.
 */
#include <string.h>

#include "tcmu_internal.h"

static pthread_mutex_t device_list_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t device_reference_dropped = PTHREAD_COND_INITIALIZER;
static struct tcmu_device *device_list;

void device_list_add(struct tcmu_device *dev)
{
	pthread_mutex_lock(&device_list_lock);
	dev->next = device_list;
	device_list = dev;
	pthread_mutex_unlock(&device_list_lock);
}

void device_list_remove(struct tcmu_device *dev)
{
	struct tcmu_device **link;

	pthread_mutex_lock(&device_list_lock);
	for (link = &device_list; *link; link = &(*link)->next) {
		if (*link == dev) {
			*link = dev->next;
			break;
		}
	}
	dev->next = NULL;
	pthread_mutex_unlock(&device_list_lock);
}

void device_list_mark_leaving(void)
{
	pthread_mutex_lock(&device_list_lock);
	for (struct tcmu_device *dev = device_list; dev; dev = dev->next)
		__atomic_store_n(&dev->leaving, true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&device_list_lock);
}

struct tcmu_device *device_list_first(void)
{
	return device_list;
}

struct tcmu_device *device_find_by_uio_name(const char *uio_name)
{
	struct tcmu_device *dev;

	pthread_mutex_lock(&device_list_lock);
	for (dev = device_list; dev; dev = dev->next)
		if (strcmp(dev->uio_name, uio_name) == 0)
			break;
	pthread_mutex_unlock(&device_list_lock);
	return dev;
}

struct tcmu_device *device_find_by_minor(unsigned int uio_minor)
{
	struct tcmu_device *dev;

	pthread_mutex_lock(&device_list_lock);
	for (dev = device_list; dev; dev = dev->next)
		if (dev->uio_minor == uio_minor)
			break;
	pthread_mutex_unlock(&device_list_lock);
	return dev;
}

struct tcmu_device *device_find_by_name(const char *name)
{
	struct tcmu_device *dev;

	pthread_mutex_lock(&device_list_lock);
	for (dev = device_list; dev; dev = dev->next)
		if (strcmp(dev->name, name) == 0 || strcmp(dev->backstore, name) == 0)
			break;
	pthread_mutex_unlock(&device_list_lock);
	return dev;
}

struct tcmu_device *device_get_by_designator(const uint8_t designator[16])
{
	struct tcmu_device *found = NULL;
	unsigned int matches = 0;

	pthread_mutex_lock(&device_list_lock);
	for (struct tcmu_device *dev = device_list; dev; dev = dev->next) {
		uint8_t candidate[16];

		scsi_naa_designator(dev, candidate);
		if (memcmp(candidate, designator, sizeof(candidate)) == 0) {
			found = dev;
			matches++;
		}
	}
	/* Two devices with one WWN: which one the initiator meant is unknowable. */
	if (matches != 1)
		found = NULL;
	if (found)
		found->references++;
	pthread_mutex_unlock(&device_list_lock);
	return found;
}

void device_put(struct tcmu_device *dev)
{
	pthread_mutex_lock(&device_list_lock);
	if (--dev->references == 0)
		pthread_cond_broadcast(&device_reference_dropped);
	pthread_mutex_unlock(&device_list_lock);
}

void device_wait_unreferenced(struct tcmu_device *dev)
{
	pthread_mutex_lock(&device_list_lock);
	if (dev->references)
		tcmu_dev_info(dev, "waiting for %u EXTENDED COPY command(s) of other devices "
			      "to stop using it", dev->references);
	while (dev->references)
		pthread_cond_wait(&device_reference_dropped, &device_list_lock);
	pthread_mutex_unlock(&device_list_lock);
}
