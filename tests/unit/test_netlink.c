/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_netlink.c: TCM-USER events as the kernel builds them (and as it
 * never should), fed to the parser and to the event handling, with the
 * device layer replaced by fakes defined here (the linker then leaves
 * device.c out of this executable).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>

#include "tcmu_internal.h"

#define FAMILY 0x1b
#define UIO_NAME "tcm-user/1/disk0/alloc/"

/* ---- building events ---- */

static struct nl_msg *event_start(uint8_t command)
{
	struct nl_msg *msg = nlmsg_alloc();

	assert_non_null(msg);
	assert_non_null(genlmsg_put(msg, 0, 0, FAMILY, 0, 0, command, 2));
	return msg;
}

/* The three attributes the kernel puts in every event, in its order. */
static struct nl_msg *event_with_device(uint8_t command, const char *uio_name, uint32_t minor,
					uint32_t device_id)
{
	struct nl_msg *msg = event_start(command);

	assert_int_equal(nla_put_string(msg, TCMU_ATTR_DEVICE, uio_name), 0);
	assert_int_equal(nla_put_u32(msg, TCMU_ATTR_MINOR, minor), 0);
	assert_int_equal(nla_put_u32(msg, TCMU_ATTR_DEVICE_ID, device_id), 0);
	return msg;
}

static int parse(struct nl_msg *msg, struct netlink_event *event)
{
	return netlink_parse_event(nlmsg_hdr(msg), event);
}

/* ---- parsing ---- */

static void test_parse_added(void **state)
{
	struct nl_msg *msg = event_with_device(TCMU_CMD_ADDED_DEVICE, UIO_NAME, 3, 42);
	struct netlink_event event;

	(void)state;
	assert_int_equal(parse(msg, &event), 0);
	assert_int_equal(event.command, TCMU_CMD_ADDED_DEVICE);
	assert_string_equal(event.uio_name, UIO_NAME);
	assert_int_equal(event.uio_minor, 3);
	assert_true(event.has_device_id);
	assert_int_equal(event.device_id, 42);
	assert_int_equal(event.change.what, 0);
	nlmsg_free(msg);
}

static void test_parse_removed(void **state)
{
	struct nl_msg *msg = event_with_device(TCMU_CMD_REMOVED_DEVICE, UIO_NAME, 0, 7);
	struct netlink_event event;

	(void)state;
	assert_int_equal(parse(msg, &event), 0);
	assert_int_equal(event.command, TCMU_CMD_REMOVED_DEVICE);
	assert_int_equal(event.device_id, 7);
	nlmsg_free(msg);
}

static void test_parse_reconfig_each_kind(void **state)
{
	struct netlink_event event;
	struct nl_msg *msg;

	(void)state;
	msg = event_with_device(TCMU_CMD_RECONFIG_DEVICE, UIO_NAME, 1, 5);
	assert_int_equal(nla_put_string(msg, TCMU_ATTR_DEV_CFG, "alloc/new\n"), 0);
	assert_int_equal(parse(msg, &event), 0);
	assert_int_equal(event.change.what, TCMU_CHANGE_CONFIG);
	assert_string_equal(event.dev_config, "alloc/new\n");
	nlmsg_free(msg);

	/* The kernel puts a PAD attribute before 64-bit values when needed. */
	msg = event_with_device(TCMU_CMD_RECONFIG_DEVICE, UIO_NAME, 1, 5);
	assert_int_equal(nla_put(msg, TCMU_ATTR_PAD, 0, NULL), 0);
	assert_int_equal(nla_put_u64(msg, TCMU_ATTR_DEV_SIZE, 1ull << 40), 0);
	assert_int_equal(parse(msg, &event), 0);
	assert_int_equal(event.change.what, TCMU_CHANGE_SIZE);
	assert_true(event.change.size == 1ull << 40);
	assert_null(event.dev_config);
	nlmsg_free(msg);

	msg = event_with_device(TCMU_CMD_RECONFIG_DEVICE, UIO_NAME, 1, 5);
	assert_int_equal(nla_put_u8(msg, TCMU_ATTR_WRITECACHE, 1), 0);
	assert_int_equal(parse(msg, &event), 0);
	assert_int_equal(event.change.what, TCMU_CHANGE_WRITE_CACHE);
	assert_true(event.change.write_cache);
	nlmsg_free(msg);

	msg = event_with_device(TCMU_CMD_RECONFIG_DEVICE, UIO_NAME, 1, 5);
	assert_int_equal(nla_put_u8(msg, TCMU_ATTR_WRITECACHE, 0), 0);
	assert_int_equal(parse(msg, &event), 0);
	assert_int_equal(event.change.what, TCMU_CHANGE_WRITE_CACHE);
	assert_false(event.change.write_cache);
	nlmsg_free(msg);
}

static void test_parse_reconfig_without_change(void **state)
{
	struct nl_msg *msg = event_with_device(TCMU_CMD_RECONFIG_DEVICE, UIO_NAME, 1, 5);
	struct netlink_event event;

	(void)state;
	assert_int_equal(parse(msg, &event), -EINVAL);
	/* Still answerable. */
	assert_true(event.has_device_id);
	assert_int_equal(event.device_id, 5);
	nlmsg_free(msg);
}

static void test_parse_missing_attributes(void **state)
{
	struct netlink_event event;
	struct nl_msg *msg;

	(void)state;
	msg = event_start(TCMU_CMD_ADDED_DEVICE);
	assert_int_equal(nla_put_string(msg, TCMU_ATTR_DEVICE, UIO_NAME), 0);
	assert_int_equal(nla_put_u32(msg, TCMU_ATTR_DEVICE_ID, 9), 0);
	assert_int_equal(parse(msg, &event), -EINVAL);
	assert_true(event.has_device_id);
	assert_int_equal(event.device_id, 9);
	nlmsg_free(msg);

	msg = event_start(TCMU_CMD_ADDED_DEVICE);
	assert_int_equal(nla_put_u32(msg, TCMU_ATTR_MINOR, 1), 0);
	assert_int_equal(nla_put_u32(msg, TCMU_ATTR_DEVICE_ID, 9), 0);
	assert_int_equal(parse(msg, &event), -EINVAL);
	assert_true(event.has_device_id);
	assert_null(event.uio_name);
	nlmsg_free(msg);

	msg = event_start(TCMU_CMD_REMOVED_DEVICE);
	assert_int_equal(nla_put_string(msg, TCMU_ATTR_DEVICE, UIO_NAME), 0);
	assert_int_equal(nla_put_u32(msg, TCMU_ATTR_MINOR, 1), 0);
	assert_int_equal(parse(msg, &event), -EINVAL);
	/* Nothing to answer with: the kernel matches replies by device id. */
	assert_false(event.has_device_id);
	nlmsg_free(msg);

	msg = event_start(TCMU_CMD_ADDED_DEVICE);
	assert_int_equal(parse(msg, &event), -EINVAL);
	assert_false(event.has_device_id);
	nlmsg_free(msg);
}

static void test_parse_wrong_types(void **state)
{
	static const char unterminated[] = { 't', 'c', 'm', '-', 'u', 's', 'e', 'r', '/' };
	struct netlink_event event;
	struct nl_msg *msg;

	(void)state;
	/* A u8 where a u32 belongs: refused, and the device id still read for the reply. */
	msg = event_start(TCMU_CMD_ADDED_DEVICE);
	assert_int_equal(nla_put_string(msg, TCMU_ATTR_DEVICE, UIO_NAME), 0);
	assert_int_equal(nla_put_u8(msg, TCMU_ATTR_MINOR, 1), 0);
	assert_int_equal(nla_put_u32(msg, TCMU_ATTR_DEVICE_ID, 11), 0);
	assert_int_equal(parse(msg, &event), -EINVAL);
	assert_true(event.has_device_id);
	assert_int_equal(event.device_id, 11);
	nlmsg_free(msg);

	/* A u64 device id is not a device id. */
	msg = event_start(TCMU_CMD_ADDED_DEVICE);
	assert_int_equal(nla_put_string(msg, TCMU_ATTR_DEVICE, UIO_NAME), 0);
	assert_int_equal(nla_put_u32(msg, TCMU_ATTR_MINOR, 1), 0);
	assert_int_equal(nla_put_u64(msg, TCMU_ATTR_DEVICE_ID, 11), 0);
	assert_int_equal(parse(msg, &event), -EINVAL);
	assert_false(event.has_device_id);
	nlmsg_free(msg);

	/* A string without its NUL would be read past its end. */
	msg = event_start(TCMU_CMD_ADDED_DEVICE);
	assert_int_equal(nla_put(msg, TCMU_ATTR_DEVICE, sizeof(unterminated), unterminated), 0);
	assert_int_equal(nla_put_u32(msg, TCMU_ATTR_MINOR, 1), 0);
	assert_int_equal(nla_put_u32(msg, TCMU_ATTR_DEVICE_ID, 12), 0);
	assert_int_equal(parse(msg, &event), -EINVAL);
	assert_null(event.uio_name);
	assert_true(event.has_device_id);
	nlmsg_free(msg);

	/* Size as a u32. */
	msg = event_with_device(TCMU_CMD_RECONFIG_DEVICE, UIO_NAME, 1, 5);
	assert_int_equal(nla_put_u32(msg, TCMU_ATTR_DEV_SIZE, 4096), 0);
	assert_int_equal(parse(msg, &event), -EINVAL);
	nlmsg_free(msg);

	/* Not a TCMU UIO device. */
	msg = event_with_device(TCMU_CMD_ADDED_DEVICE, "../../etc/passwd", 1, 5);
	assert_int_equal(parse(msg, &event), -EINVAL);
	assert_true(event.has_device_id);
	nlmsg_free(msg);
}

static void test_parse_unknown_commands(void **state)
{
	static const uint8_t commands[] = {
		TCMU_CMD_UNSPEC, TCMU_CMD_ADDED_DEVICE_DONE, TCMU_CMD_SET_FEATURES, 200,
	};
	struct netlink_event event;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		struct nl_msg *msg = event_with_device(commands[i], UIO_NAME, 1, 5);

		assert_int_equal(parse(msg, &event), -EOPNOTSUPP);
		nlmsg_free(msg);
	}
}

/*
 * Every prefix of a good message, in a buffer of exactly that size (so
 * that a sanitizer build catches any read past it), claiming only what
 * it holds: never accepted, never a crash.
 */
static void test_parse_truncated(void **state)
{
	struct nl_msg *msg = event_with_device(TCMU_CMD_ADDED_DEVICE, UIO_NAME, 3, 42);
	const struct nlmsghdr *whole = nlmsg_hdr(msg);
	struct netlink_event event;

	(void)state;
	for (uint32_t length = sizeof(struct nlmsghdr); length < whole->nlmsg_len; length++) {
		struct nlmsghdr *part = malloc(length);

		assert_non_null(part);
		memcpy(part, whole, length);
		part->nlmsg_len = length;
		assert_int_not_equal(netlink_parse_event(part, &event), 0);
		free(part);
	}
	nlmsg_free(msg);
}

/* An attribute that claims more bytes than the message has is not read. */
static void test_parse_attribute_overrunning_message(void **state)
{
	struct nl_msg *msg = event_with_device(TCMU_CMD_ADDED_DEVICE, UIO_NAME, 3, 42);
	struct nlmsghdr *hdr = nlmsg_hdr(msg);
	struct nlattr *last = (struct nlattr *)((char *)hdr + hdr->nlmsg_len - NLA_HDRLEN - 4);
	struct netlink_event event;

	(void)state;
	assert_int_equal(last->nla_type, TCMU_ATTR_DEVICE_ID);
	last->nla_len = 200;
	assert_int_equal(parse(msg, &event), -EINVAL);
	assert_false(event.has_device_id);
	nlmsg_free(msg);
}

/* ---- fake device layer ---- */

static struct tcmu_device devices[4];
static struct tcmu_device *listed[4];
static int attach_result;
static const char *attached_uio_name;
static unsigned int attached_minor;
static bool attached_reset_ring;
static struct tcmu_device *removed_device;
static struct tcmu_device *reconfigured_device;
static struct tcmu_device_change reconfigured_change;
static char reconfigured_config[256];
static int reconfigure_result;

static void make_device(struct tcmu_device *dev, unsigned int hba, const char *name,
			const char *uio_name, unsigned int minor)
{
	memset(dev, 0, sizeof(*dev));
	dev->hba_number = hba;
	dev->name = (char *)name;
	dev->uio_name = (char *)uio_name;
	dev->uio_minor = minor;
}

static bool is_listed(const struct tcmu_device *dev)
{
	for (size_t i = 0; i < ARRAY_SIZE(listed); i++) {
		if (listed[i] == dev)
			return true;
	}
	return false;
}

int device_attach(const char *uio_name, unsigned int uio_minor, bool reset_ring,
		  struct tcmu_device **ret_device)
{
	attached_uio_name = uio_name;
	attached_minor = uio_minor;
	attached_reset_ring = reset_ring;
	if (attach_result < 0)
		return attach_result;
	make_device(&devices[3], 1, "new", uio_name, uio_minor);
	*ret_device = &devices[3];
	return 0;
}

void device_remove(struct tcmu_device *dev)
{
	assert_false(is_listed(dev));
	removed_device = dev;
}

int device_reconfigure(struct tcmu_device *dev, const struct tcmu_device_change *change)
{
	reconfigured_device = dev;
	reconfigured_change = *change;
	if (change->config)
		snprintf(reconfigured_config, sizeof(reconfigured_config), "%s", change->config);
	return reconfigure_result;
}

void device_list_add(struct tcmu_device *dev)
{
	for (size_t i = 0; i < ARRAY_SIZE(listed); i++) {
		if (!listed[i]) {
			listed[i] = dev;
			return;
		}
	}
	fail();
}

void device_list_remove(struct tcmu_device *dev)
{
	for (size_t i = 0; i < ARRAY_SIZE(listed); i++) {
		if (listed[i] == dev) {
			listed[i] = NULL;
			return;
		}
	}
	fail();
}

struct tcmu_device *device_find_by_uio_name(const char *uio_name)
{
	for (size_t i = 0; i < ARRAY_SIZE(listed); i++) {
		if (listed[i] && strcmp(listed[i]->uio_name, uio_name) == 0)
			return listed[i];
	}
	return NULL;
}

struct tcmu_device *device_find_by_minor(unsigned int uio_minor)
{
	for (size_t i = 0; i < ARRAY_SIZE(listed); i++) {
		if (listed[i] && listed[i]->uio_minor == uio_minor)
			return listed[i];
	}
	return NULL;
}

/* Device 0: user_1/disk0 on uio0; device 1: user_2/disk0 on uio1. */
static int reset_devices(void **state)
{
	(void)state;
	memset(listed, 0, sizeof(listed));
	make_device(&devices[0], 1, "disk0", UIO_NAME, 0);
	make_device(&devices[1], 2, "disk0", "tcm-user/2/disk0/file/a.img", 1);
	listed[0] = &devices[0];
	listed[1] = &devices[1];
	attach_result = 0;
	attached_uio_name = NULL;
	removed_device = NULL;
	reconfigured_device = NULL;
	memset(&reconfigured_change, 0, sizeof(reconfigured_change));
	reconfigured_config[0] = '\0';
	reconfigure_result = 0;
	return 0;
}

static struct netlink_event event_for(uint8_t command, const char *uio_name, uint32_t minor)
{
	return (struct netlink_event){
		.command = command, .has_device_id = true, .device_id = 77,
		.uio_name = uio_name, .uio_minor = minor,
	};
}

/* ---- handling ---- */

static void test_added_attaches_and_lists(void **state)
{
	struct netlink_event event = event_for(TCMU_CMD_ADDED_DEVICE, "tcm-user/1/new/alloc/", 5);

	(void)state;
	assert_int_equal(netlink_handle_event(&event), 0);
	assert_string_equal(attached_uio_name, "tcm-user/1/new/alloc/");
	assert_int_equal(attached_minor, 5);
	/* A new device's ring is fresh; resetting is for rings a previous daemon left. */
	assert_false(attached_reset_ring);
	assert_true(is_listed(&devices[3]));
	assert_int_equal(devices[3].device_id, 77);
}

static void test_added_attach_failure_is_the_status(void **state)
{
	struct netlink_event event = event_for(TCMU_CMD_ADDED_DEVICE, "tcm-user/1/new/nohandler/", 5);

	(void)state;
	attach_result = -ENOENT;
	assert_int_equal(netlink_handle_event(&event), -ENOENT);
	assert_false(is_listed(&devices[3]));
}

static void test_added_for_device_found_at_start(void **state)
{
	struct netlink_event event = event_for(TCMU_CMD_ADDED_DEVICE, UIO_NAME, 0);

	(void)state;
	assert_int_equal(netlink_handle_event(&event), 0);
	assert_null(attached_uio_name);
	assert_int_equal(devices[0].device_id, 77);
	assert_null(removed_device);
}

static void test_added_on_reused_minor_drops_stale_device(void **state)
{
	struct netlink_event event = event_for(TCMU_CMD_ADDED_DEVICE, "tcm-user/1/other/alloc/", 0);

	(void)state;
	assert_int_equal(netlink_handle_event(&event), 0);
	assert_ptr_equal(removed_device, &devices[0]);
	assert_false(is_listed(&devices[0]));
	assert_true(is_listed(&devices[3]));
}

static void test_added_with_name_of_stale_device(void **state)
{
	/* Device 0's name on a new minor: device 0 was removed without our hearing. */
	struct netlink_event event = event_for(TCMU_CMD_ADDED_DEVICE, UIO_NAME, 6);

	(void)state;
	assert_int_equal(netlink_handle_event(&event), 0);
	assert_ptr_equal(removed_device, &devices[0]);
	assert_false(is_listed(&devices[0]));
	assert_string_equal(attached_uio_name, UIO_NAME);
	assert_int_equal(attached_minor, 6);
	assert_true(is_listed(&devices[3]));
	assert_true(is_listed(&devices[1]));
}

static void test_removed_known_device(void **state)
{
	struct netlink_event event = event_for(TCMU_CMD_REMOVED_DEVICE, UIO_NAME, 0);

	(void)state;
	assert_int_equal(netlink_handle_event(&event), 0);
	assert_ptr_equal(removed_device, &devices[0]);
	assert_false(is_listed(&devices[0]));
	assert_true(is_listed(&devices[1]));
}

static void test_removed_after_rename(void **state)
{
	/* dev_config changed since attach: the kernel's UIO name ends differently. */
	struct netlink_event event = event_for(TCMU_CMD_REMOVED_DEVICE, "tcm-user/2/disk0/file/b.img", 1);

	(void)state;
	assert_int_equal(netlink_handle_event(&event), 0);
	assert_ptr_equal(removed_device, &devices[1]);
}

static void test_removed_unknown_device_succeeds(void **state)
{
	/* Same minor as device 1 but another hba: not that device. */
	struct netlink_event event = event_for(TCMU_CMD_REMOVED_DEVICE, "tcm-user/3/disk0/file/b.img", 1);

	(void)state;
	assert_int_equal(netlink_handle_event(&event), 0);
	assert_null(removed_device);
	assert_true(is_listed(&devices[0]));
	assert_true(is_listed(&devices[1]));
}

static void test_reconfig_config_without_newline(void **state)
{
	struct netlink_event event = event_for(TCMU_CMD_RECONFIG_DEVICE, UIO_NAME, 0);

	(void)state;
	event.change.what = TCMU_CHANGE_CONFIG;
	event.dev_config = "alloc/size=2\n";
	assert_int_equal(netlink_handle_event(&event), 0);
	assert_ptr_equal(reconfigured_device, &devices[0]);
	assert_int_equal(reconfigured_change.what, TCMU_CHANGE_CONFIG);
	assert_string_equal(reconfigured_config, "alloc/size=2");
}

static void test_reconfig_size_status_passed_back(void **state)
{
	struct netlink_event event = event_for(TCMU_CMD_RECONFIG_DEVICE, "tcm-user/2/disk0/file/a.img", 1);

	(void)state;
	event.change.what = TCMU_CHANGE_SIZE;
	event.change.size = 1 << 20;
	reconfigure_result = -EOPNOTSUPP;
	assert_int_equal(netlink_handle_event(&event), -EOPNOTSUPP);
	assert_ptr_equal(reconfigured_device, &devices[1]);
	assert_int_equal(reconfigured_change.what, TCMU_CHANGE_SIZE);
	assert_int_equal(reconfigured_change.size, 1 << 20);
	assert_null(reconfigured_change.config);
}

static void test_reconfig_unknown_device(void **state)
{
	struct netlink_event event = event_for(TCMU_CMD_RECONFIG_DEVICE, "tcm-user/9/x/alloc/", 9);

	(void)state;
	event.change.what = TCMU_CHANGE_WRITE_CACHE;
	assert_int_equal(netlink_handle_event(&event), -ENODEV);
	assert_null(reconfigured_device);
}

/* ---- replies ---- */

static void test_reply_carries_status_and_device_id(void **state)
{
	static const struct {
		uint8_t event;
		uint8_t reply;
	} pairs[] = {
		{ TCMU_CMD_ADDED_DEVICE, TCMU_CMD_ADDED_DEVICE_DONE },
		{ TCMU_CMD_REMOVED_DEVICE, TCMU_CMD_REMOVED_DEVICE_DONE },
		{ TCMU_CMD_RECONFIG_DEVICE, TCMU_CMD_RECONFIG_DEVICE_DONE },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(pairs); i++) {
		struct nl_msg *msg = netlink_build_reply(FAMILY, pairs[i].event, 0xfffffffe, -EINVAL);
		struct nlattr *attrs[TCMU_ATTR_MAX + 1];
		struct nlmsghdr *hdr;
		struct genlmsghdr *genl;

		assert_non_null(msg);
		hdr = nlmsg_hdr(msg);
		assert_int_equal(hdr->nlmsg_type, FAMILY);
		genl = nlmsg_data(hdr);
		assert_int_equal(genl->cmd, pairs[i].reply);
		assert_int_equal(genl->version, 2);
		assert_int_equal(genlmsg_parse(hdr, 0, attrs, TCMU_ATTR_MAX, NULL), 0);
		assert_non_null(attrs[TCMU_ATTR_CMD_STATUS]);
		assert_int_equal(nla_len(attrs[TCMU_ATTR_CMD_STATUS]), 4);
		assert_int_equal(nla_get_s32(attrs[TCMU_ATTR_CMD_STATUS]), -EINVAL);
		assert_non_null(attrs[TCMU_ATTR_DEVICE_ID]);
		assert_int_equal(nla_get_u32(attrs[TCMU_ATTR_DEVICE_ID]), 0xfffffffe);
		nlmsg_free(msg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_added),
		cmocka_unit_test(test_parse_removed),
		cmocka_unit_test(test_parse_reconfig_each_kind),
		cmocka_unit_test(test_parse_reconfig_without_change),
		cmocka_unit_test(test_parse_missing_attributes),
		cmocka_unit_test(test_parse_wrong_types),
		cmocka_unit_test(test_parse_unknown_commands),
		cmocka_unit_test(test_parse_truncated),
		cmocka_unit_test(test_parse_attribute_overrunning_message),
		cmocka_unit_test_setup(test_added_attaches_and_lists, reset_devices),
		cmocka_unit_test_setup(test_added_attach_failure_is_the_status, reset_devices),
		cmocka_unit_test_setup(test_added_for_device_found_at_start, reset_devices),
		cmocka_unit_test_setup(test_added_on_reused_minor_drops_stale_device, reset_devices),
		cmocka_unit_test_setup(test_added_with_name_of_stale_device, reset_devices),
		cmocka_unit_test_setup(test_removed_known_device, reset_devices),
		cmocka_unit_test_setup(test_removed_after_rename, reset_devices),
		cmocka_unit_test_setup(test_removed_unknown_device_succeeds, reset_devices),
		cmocka_unit_test_setup(test_reconfig_config_without_newline, reset_devices),
		cmocka_unit_test_setup(test_reconfig_size_status_passed_back, reset_devices),
		cmocka_unit_test_setup(test_reconfig_unknown_device, reset_devices),
		cmocka_unit_test(test_reply_carries_status_and_device_id),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
