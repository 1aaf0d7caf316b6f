/* SPDX-License-Identifier: Apache-2.0 */
/*
 * copy_groups.c: the operator's opt-in to EXTENDED COPY between devices
 * (tcmu.conf xcopy_group lines). The ring does not say which initiator
 * sent a command, so the copy manager cannot check that the initiator may
 * reach the other device: only the administrator, who maps the LUNs, can
 * say that every initiator of one device may also read and write another.
 * Each group names devices that may copy between each other; a device
 * always may copy within itself.
 *
 * A name with a '/' is a backstore, "user_<hba>/<name>"; one without is
 * the device name, whatever its HBA. Two devices must be named by two
 * different members of one group, so a bare name never lets two devices
 * of that name copy between each other. Devices named here need not
 * exist yet. The groups are replaced as a whole when the file changes, from the
 * main thread, while copies on worker threads ask.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tcmu_internal.h"

static pthread_mutex_t groups_lock = PTHREAD_MUTEX_INITIALIZER;
static char **groups;		/* each "name name ...", one space apart */
static size_t group_count;

static bool groups_equal(char *const *other, size_t other_count)
{
	if (other_count != group_count)
		return false;
	for (size_t i = 0; i < group_count; i++)
		if (strcmp(groups[i], other[i]) != 0)
			return false;
	return true;
}

static void groups_free(char **list, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(list[i]);
	free(list);
}

int copy_groups_set(char *const *new_groups, size_t new_count)
{
	char **copy = NULL, **old;
	size_t old_count;

	if (new_count) {
		copy = calloc(new_count, sizeof(*copy));
		if (!copy)
			return -ENOMEM;
		for (size_t i = 0; i < new_count; i++) {
			copy[i] = strdup(new_groups[i]);
			if (!copy[i]) {
				groups_free(copy, i);
				return -ENOMEM;
			}
		}
	}
	pthread_mutex_lock(&groups_lock);
	if (groups_equal(new_groups, new_count)) {
		pthread_mutex_unlock(&groups_lock);
		groups_free(copy, new_count);
		return 0;
	}
	old = groups;
	old_count = group_count;
	groups = copy;
	group_count = new_count;
	pthread_mutex_unlock(&groups_lock);
	groups_free(old, old_count);

	if (!new_count)
		tcmu_info("EXTENDED COPY: no xcopy_group; each copy stays on its own device");
	for (size_t i = 0; i < new_count; i++)
		tcmu_info("EXTENDED COPY allowed between the devices of xcopy_group %zu: %s", i + 1,
			  new_groups[i]);
	return 0;
}

static bool member_names(const char *member, size_t length, const struct tcmu_device *dev)
{
	const char *name = memchr(member, '/', length) ? dev->backstore : dev->name;

	return name && strlen(name) == length && memcmp(name, member, length) == 0;
}

/* Two different members of the group name the two devices. */
static bool group_allows(const char *group, const struct tcmu_device *first,
			 const struct tcmu_device *second)
{
	for (const char *member = group; *member; member += strspn(member, " ")) {
		size_t length = strcspn(member, " ");

		if (member_names(member, length, first)) {
			for (const char *other = group; *other; other += strspn(other, " ")) {
				size_t other_length = strcspn(other, " ");

				if (other != member && member_names(other, other_length, second))
					return true;
				other += other_length;
			}
		}
		member += length;
	}
	return false;
}

bool copy_groups_allow(const struct tcmu_device *first, const struct tcmu_device *second)
{
	bool allowed = false;

	if (first == second)
		return true;
	pthread_mutex_lock(&groups_lock);
	for (size_t i = 0; i < group_count && !allowed; i++)
		allowed = group_allows(groups[i], first, second);
	pthread_mutex_unlock(&groups_lock);
	return allowed;
}
