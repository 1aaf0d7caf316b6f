/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_netlink.c: libFuzzer target for the parsing of TCM-USER events.
 * The input is one netlink message as it would sit in the receive
 * buffer; like the receive loop, the harness guarantees that the length
 * the header claims is readable. An event that parses must be usable as
 * parsed: its strings terminated, its reply buildable.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netlink/msg.h>

#include "tcmu_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct netlink_event event;
	struct nlmsghdr *hdr;
	int ret;

	if (size < sizeof(*hdr) || size > 65536)
		return 0;
	hdr = malloc(size);
	if (!hdr)
		return 0;
	memcpy(hdr, data, size);
	if (hdr->nlmsg_len > size)
		hdr->nlmsg_len = (uint32_t)size;

	ret = netlink_parse_event(hdr, &event);
	if (ret == 0) {
		struct nl_msg *reply;

		if (!event.has_device_id || !event.uio_name || strlen(event.uio_name) == 0)
			abort();
		if (event.dev_config)
			(void)strlen(event.dev_config);
		reply = netlink_build_reply(0x10, event.command, event.device_id, -EINVAL);
		if (!reply)
			abort();
		nlmsg_free(reply);
	} else if (ret != -EINVAL && ret != -EOPNOTSUPP) {
		abort();
	}
	free(hdr);
	return 0;
}
