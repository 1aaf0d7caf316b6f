/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_netlink: netlink_parse_event() on arbitrary bytes, as one message
 * of the TCM-USER family would arrive. The message is copied into a buffer
 * of exactly nlmsg_len bytes, the length the parser may read, so that
 * AddressSanitizer catches any read past it. A successful parse must hand
 * back strings that lie, terminated, inside the message.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netlink.h>

#include "tcmu_internal.h"

static const uint8_t *message_start;
static size_t message_length;

/* The string must start inside the message and end before it does. */
static void check_string(const char *string)
{
	const uint8_t *start = (const uint8_t *)string;

	if (start < message_start || start >= message_start + message_length)
		abort();
	if (!memchr(start, '\0', message_length - (size_t)(start - message_start)))
		abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(TCMU_LOG_CRIT);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct netlink_event event;
	struct nlmsghdr header;
	uint8_t *message;
	size_t length;
	int result;

	if (size < sizeof(header))
		return 0;
	memcpy(&header, data, sizeof(header));
	length = header.nlmsg_len;
	if (length < sizeof(header) || length > size)
		length = size;
	message = malloc(length);
	if (!message)
		return 0;
	memcpy(message, data, length);
	header.nlmsg_len = (uint32_t)length;
	memcpy(message, &header, sizeof(header));
	message_start = message;
	message_length = length;

	result = netlink_parse_event((const struct nlmsghdr *)message, &event);
	if (result != 0 && result != -EINVAL && result != -EOPNOTSUPP)
		abort();
	if (result == 0) {
		if (event.command != TCMU_CMD_ADDED_DEVICE &&
		    event.command != TCMU_CMD_REMOVED_DEVICE &&
		    event.command != TCMU_CMD_RECONFIG_DEVICE)
			abort();
		if (!event.uio_name || !event.has_device_id)
			abort();
		check_string(event.uio_name);
		if (strncmp(event.uio_name, "tcm-user/", strlen("tcm-user/")) != 0)
			abort();
		if (event.dev_config)
			check_string(event.dev_config);
		/* A RECONFIG must say what it changes; the raw config string is its value. */
		if (event.command == TCMU_CMD_RECONFIG_DEVICE && !event.change.what)
			abort();
		if ((event.change.what & TCMU_CHANGE_CONFIG) && !event.dev_config)
			abort();
	}
	free(message);
	return 0;
}
