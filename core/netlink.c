/* SPDX-License-Identifier: Apache-2.0 */
/*
 * netlink.c: the kernel's TCM-USER generic netlink family.
 *
 * The kernel multicasts ADDED_DEVICE, REMOVED_DEVICE and RECONFIG_DEVICE
 * on the "config" group. Each carries DEVICE (the UIO name), MINOR and
 * DEVICE_ID (LIO's dev_index); RECONFIG adds one of DEV_CFG, DEV_SIZE or
 * WRITECACHE. Once SET_FEATURES declared reply support, the configfs
 * write that caused an event blocks until we send the matching *_DONE
 * with CMD_STATUS; the kernel matches the reply by DEVICE_ID and command.
 * So every event that names a device id gets exactly one reply, even a
 * malformed one (-EINVAL) or one for a device we do not know: a missing
 * reply hangs the administrator's configfs write until block_netlink /
 * reset_netlink is used.
 *
 * Events are read with recvmsg() straight into a buffer and walked here,
 * so that messages from anyone but the kernel are dropped and acks and
 * errors for our own replies are seen; libnl builds, sends and parses.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include "tcmu_internal.h"

#define TCMU_FAMILY_NAME "TCM-USER"
#define TCMU_MULTICAST_GROUP "config"
/* The kernel registers the family with this version. */
#define TCMU_FAMILY_VERSION 2

/* dev_config is at most 256 bytes in the kernel; the UIO name adds hba and name. */
#define STRING_ATTRIBUTE_MAX 4096
/*
 * Events are multicast and unacknowledged; when the socket overflows they
 * are lost and the kernel waits for replies forever. A few hundred events
 * queued while one device attaches fit in this.
 */
#define RECEIVE_BUFFER_BYTES (1 << 20)
#define SET_FEATURES_TIMEOUT_MS 5000
#define UIO_NAME_PREFIX "tcm-user/"
#define MODULE_PARAMETERS "/sys/module/target_core_user/parameters/"

static struct nl_sock *sock;
static int family_id = -1;
/* The kernel builds events with NLMSG_GOODSIZE (at most 8 KiB). */
static uint8_t receive_buffer[32768] __attribute__((aligned(NLMSG_ALIGNTO)));

static struct nla_policy event_policy[TCMU_ATTR_MAX + 1] = {
	[TCMU_ATTR_DEVICE] = { .type = NLA_STRING, .maxlen = STRING_ATTRIBUTE_MAX },
	[TCMU_ATTR_MINOR] = { .type = NLA_U32, .maxlen = sizeof(uint32_t) },
	[TCMU_ATTR_DEV_CFG] = { .type = NLA_STRING, .maxlen = STRING_ATTRIBUTE_MAX },
	[TCMU_ATTR_DEV_SIZE] = { .type = NLA_U64, .maxlen = sizeof(uint64_t) },
	[TCMU_ATTR_WRITECACHE] = { .type = NLA_U8, .maxlen = sizeof(uint8_t) },
	[TCMU_ATTR_DEVICE_ID] = { .type = NLA_U32, .maxlen = sizeof(uint32_t) },
};

static const char *command_name(uint8_t command)
{
	switch (command) {
	case TCMU_CMD_ADDED_DEVICE:
		return "ADDED_DEVICE";
	case TCMU_CMD_REMOVED_DEVICE:
		return "REMOVED_DEVICE";
	case TCMU_CMD_RECONFIG_DEVICE:
		return "RECONFIG_DEVICE";
	default:
		return "unknown command";
	}
}

static int nl_error_to_errno(int nl_error)
{
	switch (nl_error < 0 ? -nl_error : nl_error) {
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_PERM:
		return -EPERM;
	case NLE_AGAIN:
		return -EAGAIN;
	case NLE_OBJ_NOTFOUND:
		return -ENOENT;
	case NLE_INVAL:
		return -EINVAL;
	case NLE_OPNOTSUPP:
		return -EOPNOTSUPP;
	default:
		return -EIO;
	}
}

/* ---- parsing: no socket, no device, only the message ---- */

/* Reads DEVICE_ID from attributes that failed validation, for the refusal's reply. */
static void salvage_device_id(struct nlmsghdr *message, struct netlink_event *event)
{
	struct nlattr *attrs[TCMU_ATTR_MAX + 1];

	if (genlmsg_parse(message, 0, attrs, TCMU_ATTR_MAX, NULL) < 0)
		return;
	if (attrs[TCMU_ATTR_DEVICE_ID] && nla_len(attrs[TCMU_ATTR_DEVICE_ID]) == sizeof(uint32_t)) {
		event->device_id = nla_get_u32(attrs[TCMU_ATTR_DEVICE_ID]);
		event->has_device_id = true;
	}
}

int netlink_parse_event(const struct nlmsghdr *hdr, struct netlink_event *ret_event)
{
	/* libnl's parsers take non-const messages but do not write to them. */
	struct nlmsghdr *message = (struct nlmsghdr *)hdr;
	struct nlattr *attrs[TCMU_ATTR_MAX + 1];
	const struct genlmsghdr *genl;

	memset(ret_event, 0, sizeof(*ret_event));
	if (!genlmsg_valid_hdr(message, 0))
		return -EINVAL;
	genl = nlmsg_data(hdr);
	ret_event->command = genl->cmd;
	if (genl->cmd != TCMU_CMD_ADDED_DEVICE && genl->cmd != TCMU_CMD_REMOVED_DEVICE &&
	    genl->cmd != TCMU_CMD_RECONFIG_DEVICE)
		return -EOPNOTSUPP;

	if (genlmsg_parse(message, 0, attrs, TCMU_ATTR_MAX, event_policy) < 0) {
		salvage_device_id(message, ret_event);
		return -EINVAL;
	}

	if (attrs[TCMU_ATTR_DEVICE_ID]) {
		ret_event->device_id = nla_get_u32(attrs[TCMU_ATTR_DEVICE_ID]);
		ret_event->has_device_id = true;
	}
	if (attrs[TCMU_ATTR_DEVICE])
		ret_event->uio_name = nla_get_string(attrs[TCMU_ATTR_DEVICE]);
	if (attrs[TCMU_ATTR_MINOR])
		ret_event->uio_minor = nla_get_u32(attrs[TCMU_ATTR_MINOR]);

	if (!ret_event->has_device_id || !ret_event->uio_name || !attrs[TCMU_ATTR_MINOR])
		return -EINVAL;
	if (strncmp(ret_event->uio_name, UIO_NAME_PREFIX, strlen(UIO_NAME_PREFIX)) != 0)
		return -EINVAL;

	if (genl->cmd == TCMU_CMD_RECONFIG_DEVICE) {
		struct tcmu_device_change *change = &ret_event->change;

		if (attrs[TCMU_ATTR_DEV_CFG]) {
			ret_event->dev_config = nla_get_string(attrs[TCMU_ATTR_DEV_CFG]);
			change->what |= TCMU_CHANGE_CONFIG;
		}
		if (attrs[TCMU_ATTR_DEV_SIZE]) {
			change->size = nla_get_u64(attrs[TCMU_ATTR_DEV_SIZE]);
			change->what |= TCMU_CHANGE_SIZE;
		}
		if (attrs[TCMU_ATTR_WRITECACHE]) {
			change->write_cache = nla_get_u8(attrs[TCMU_ATTR_WRITECACHE]) != 0;
			change->what |= TCMU_CHANGE_WRITE_CACHE;
		}
		if (!change->what)
			return -EINVAL;
	}
	return 0;
}

/* ---- acting on events ---- */

/*
 * "tcm-user/<hba>/<name>/..." -> does dev have that hba and name? The
 * part after the name is the dev_config, which RECONFIG may have changed.
 */
static bool uio_name_is_device(const char *uio_name, const struct tcmu_device *dev)
{
	const char *cursor = uio_name + strlen(UIO_NAME_PREFIX);
	size_t name_length;
	unsigned long hba;
	char *end;

	if (*cursor < '0' || *cursor > '9')
		return false;
	errno = 0;
	hba = strtoul(cursor, &end, 10);
	if (errno || *end != '/' || hba != dev->hba_number)
		return false;
	cursor = end + 1;
	name_length = strcspn(cursor, "/");
	return strlen(dev->name) == name_length && strncmp(cursor, dev->name, name_length) == 0;
}

static struct tcmu_device *find_device(const struct netlink_event *event)
{
	struct tcmu_device *dev = device_find_by_uio_name(event->uio_name);

	if (dev)
		return dev;
	/* The minor survives a dev_config change, which renames the UIO device. */
	dev = device_find_by_minor(event->uio_minor);
	if (dev && uio_name_is_device(event->uio_name, dev))
		return dev;
	return NULL;
}

/* A device the kernel replaced without our hearing of its removal. */
static void drop_stale_device(struct tcmu_device *dev, const struct netlink_event *event)
{
	tcmu_dev_warn(dev, "%s (UIO minor %u) takes its place: the REMOVED event for this "
		      "device was lost; dropping it", event->uio_name, event->uio_minor);
	device_list_remove(dev);
	device_remove(dev);
}

static int handle_added(const struct netlink_event *event)
{
	struct tcmu_device *dev = device_find_by_minor(event->uio_minor);
	int result;

	if (dev && uio_name_is_device(event->uio_name, dev)) {
		/* Found by the start-up scan, which raced with this event. */
		dev->device_id = event->device_id;
		tcmu_dev_info(dev, "already served (found at start)");
		return 0;
	}
	if (dev)
		drop_stale_device(dev, event);
	/* Same name, so not the same minor (that case returned above). */
	dev = device_find_by_uio_name(event->uio_name);
	if (dev)
		drop_stale_device(dev, event);

	result = device_attach(event->uio_name, event->uio_minor, false, &dev);
	if (result < 0) {
		tcmu_err("device %s not added: %s", event->uio_name, strerror(-result));
		return result;
	}
	dev->device_id = event->device_id;
	device_list_add(dev);
	return 0;
}

static int handle_removed(const struct netlink_event *event)
{
	struct tcmu_device *dev = find_device(event);

	if (!dev) {
		/* Nothing of ours to release; refusing would only fail the kernel's removal. */
		tcmu_warn("REMOVED_DEVICE for %s, which this daemon does not serve", event->uio_name);
		return 0;
	}
	tcmu_dev_info(dev, "removed by the kernel");
	device_list_remove(dev);
	device_remove(dev);
	return 0;
}

static int handle_reconfig(const struct netlink_event *event)
{
	struct tcmu_device_change change = event->change;
	struct tcmu_device *dev = find_device(event);
	char *dev_config = NULL;
	int result;

	if (!dev) {
		tcmu_err("RECONFIG_DEVICE for %s, which this daemon does not serve", event->uio_name);
		return -ENODEV;
	}
	if (event->dev_config) {
		size_t length;

		/* configfs hands the kernel the written bytes, so `echo` leaves a newline. */
		dev_config = strdup(event->dev_config);
		if (!dev_config)
			return -ENOMEM;
		length = strlen(dev_config);
		if (length > 0 && dev_config[length - 1] == '\n')
			dev_config[length - 1] = '\0';
		change.config = dev_config;
	}
	result = device_reconfigure(dev, &change);
	free(dev_config);
	return result;
}

int netlink_handle_event(const struct netlink_event *event)
{
	switch (event->command) {
	case TCMU_CMD_ADDED_DEVICE:
		return handle_added(event);
	case TCMU_CMD_REMOVED_DEVICE:
		return handle_removed(event);
	case TCMU_CMD_RECONFIG_DEVICE:
		return handle_reconfig(event);
	default:
		return -EOPNOTSUPP;
	}
}

/* ---- the socket ---- */

static uint8_t reply_command(uint8_t event_command)
{
	switch (event_command) {
	case TCMU_CMD_ADDED_DEVICE:
		return TCMU_CMD_ADDED_DEVICE_DONE;
	case TCMU_CMD_REMOVED_DEVICE:
		return TCMU_CMD_REMOVED_DEVICE_DONE;
	default:
		return TCMU_CMD_RECONFIG_DEVICE_DONE;
	}
}

struct nl_msg *netlink_build_reply(int family, uint8_t event_command, uint32_t device_id,
				   int status)
{
	struct nl_msg *msg = nlmsg_alloc();

	if (!msg)
		return NULL;
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, 0,
			 reply_command(event_command), TCMU_FAMILY_VERSION) ||
	    nla_put_s32(msg, TCMU_ATTR_CMD_STATUS, status) < 0 ||
	    nla_put_u32(msg, TCMU_ATTR_DEVICE_ID, device_id) < 0) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

static void send_reply(const struct netlink_event *event, int status)
{
	struct nl_msg *msg;
	int result;

	msg = netlink_build_reply(family_id, event->command, event->device_id, status);
	if (!msg) {
		tcmu_err("%s reply for device id %u not sent: out of memory",
			 command_name(event->command), event->device_id);
		return;
	}
	result = nl_send_auto(sock, msg);
	if (result < 0)
		tcmu_err("%s reply for device id %u not sent: %s",
			 command_name(event->command), event->device_id, nl_geterror(result));
	nlmsg_free(msg);
}

static void process_event(const struct nlmsghdr *hdr)
{
	struct netlink_event event;
	int status;

	status = netlink_parse_event(hdr, &event);
	if (status == -EOPNOTSUPP) {
		tcmu_dbg("netlink command %u ignored", event.command);
		return;
	}
	if (status < 0 && event.has_device_id) {
		tcmu_err("malformed %s event for device id %u (%s): refused",
			 command_name(event.command), event.device_id,
			 event.uio_name ? event.uio_name : "no device name");
	} else if (status < 0) {
		tcmu_err("malformed %s event without a device id (%s): it cannot be answered",
			 command_name(event.command),
			 event.uio_name ? event.uio_name : "no device name");
	} else {
		tcmu_dbg("%s %s (minor %u, device id %u)", command_name(event.command),
			 event.uio_name, event.uio_minor, event.device_id);
		status = netlink_handle_event(&event);
	}
	/* Without a device id the kernel cannot match a reply to what it waits for. */
	if (event.has_device_id)
		send_reply(&event, status);
}

/* Acks and errors for what we sent; set_features_seq is the one we wait for. */
static void process_error(const struct nlmsghdr *hdr, uint32_t set_features_seq,
			  int *set_features_status)
{
	const struct nlmsgerr *error = NLMSG_DATA(hdr);

	if (hdr->nlmsg_len < NLMSG_LENGTH(sizeof(*error)))
		return;
	if (set_features_status && error->msg.nlmsg_seq == set_features_seq) {
		*set_features_status = error->error;
		return;
	}
	/* Replies go without NLM_F_ACK, so only refusals come back. */
	if (error->error == -ENODEV)
		tcmu_dbg("the kernel was not waiting for our reply (seq %u)", error->msg.nlmsg_seq);
	else if (error->error)
		tcmu_warn("the kernel refused our reply (seq %u): %s", error->msg.nlmsg_seq,
			  strerror(-error->error));
}

static void process_datagram(int length, uint32_t set_features_seq, int *set_features_status)
{
	struct nlmsghdr *hdr = (struct nlmsghdr *)receive_buffer;

	for (; nlmsg_ok(hdr, length); hdr = nlmsg_next(hdr, &length)) {
		if (hdr->nlmsg_type == NLMSG_ERROR)
			process_error(hdr, set_features_seq, set_features_status);
		else if (hdr->nlmsg_type == family_id)
			process_event(hdr);
	}
}

/*
 * Reads every datagram queued on the socket. Returns how many were read,
 * or -errno when the socket failed.
 */
static int receive_pending(uint32_t set_features_seq, int *set_features_status)
{
	int datagrams = 0;

	for (;;) {
		struct sockaddr_nl from = { 0 };
		struct iovec iov = { .iov_base = receive_buffer, .iov_len = sizeof(receive_buffer) };
		struct msghdr header = {
			.msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1,
		};
		ssize_t length;

		length = recvmsg(nl_socket_get_fd(sock), &header, MSG_DONTWAIT);
		if (length < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return datagrams;
			if (errno == ENOBUFS) {
				tcmu_crit("netlink events were lost (receive buffer full); a configfs "
					  "write may wait for a reply until 1 is written to "
					  "/sys/module/target_core_user/parameters/block_netlink and "
					  "then to reset_netlink");
				continue;
			}
			tcmu_err("netlink receive: %m");
			return -errno;
		}
		datagrams++;
		if (header.msg_flags & MSG_TRUNC) {
			tcmu_err("netlink message over %zu bytes dropped", sizeof(receive_buffer));
			continue;
		}
		if (header.msg_namelen != sizeof(from) || from.nl_family != AF_NETLINK ||
		    from.nl_pid != 0) {
			tcmu_warn("netlink message from port %u ignored: only the kernel is heard",
				  from.nl_pid);
			continue;
		}
		process_datagram((int)length, set_features_seq, set_features_status);
	}
}

int netlink_dispatch(void)
{
	if (!sock)
		return -EBADF;
	return receive_pending(0, NULL);
}

/*
 * Tells the kernel to wait for our replies. Events that arrive meanwhile
 * are handled as usual, which is why the group is joined first: an
 * ADDED sent between the two steps is then answered, not lost.
 */
/* Sends SET_FEATURES; ret_seq gets its sequence number. 0 or -errno. */
static int send_set_features(bool reply_supported, int flags, uint32_t *ret_seq)
{
	struct nl_msg *msg;
	int result;

	msg = nlmsg_alloc();
	if (!msg)
		return -ENOMEM;
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family_id, 0, flags,
			 TCMU_CMD_SET_FEATURES, TCMU_FAMILY_VERSION) ||
	    nla_put_u8(msg, TCMU_ATTR_SUPP_KERN_CMD_REPLY, reply_supported) < 0) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	result = nl_send_auto(sock, msg);
	*ret_seq = nlmsg_hdr(msg)->nlmsg_seq;
	nlmsg_free(msg);
	if (result < 0) {
		tcmu_err("netlink SET_FEATURES not sent: %s", nl_geterror(result));
		return nl_error_to_errno(result);
	}
	return 0;
}

static int declare_reply_support(void)
{
	uint64_t deadline_ns = monotonic_ns() + (uint64_t)SET_FEATURES_TIMEOUT_MS * 1000000;
	int status = 1, result;
	uint32_t seq;

	result = send_set_features(true, NLM_F_ACK, &seq);
	if (result < 0)
		return result;

	while (status > 0) {
		struct pollfd pollfd = { .fd = nl_socket_get_fd(sock), .events = POLLIN };
		uint64_t now_ns = monotonic_ns();

		if (now_ns >= deadline_ns) {
			tcmu_err("the kernel did not answer SET_FEATURES within %d ms",
				 SET_FEATURES_TIMEOUT_MS);
			return -ETIMEDOUT;
		}
		result = poll(&pollfd, 1, (int)((deadline_ns - now_ns + 999999) / 1000000));
		if (result < 0 && errno != EINTR)
			return -errno;
		if (result > 0) {
			result = receive_pending(seq, &status);
			if (result < 0)
				return result;
		}
	}
	if (status < 0) {
		errno = -status;
		tcmu_err("the kernel refused SET_FEATURES (declaring netlink reply support): %m%s",
			 status == -EPERM ? " (needs CAP_NET_ADMIN: run as root)" : "");
		return status;
	}
	return 0;
}

/*
 * A daemon that died while the kernel waited for its reply left that
 * configfs write blocked, uninterruptibly, and nobody will ever answer
 * it: the event went to the dead socket. reset_netlink fails such waits
 * (-EINTR) but only while block_netlink is set, which also makes new
 * events fail (-EAGAIN) instead of going unheard until we have joined
 * the group. The instance lock guarantees no other daemon is waited for.
 * Returns whether netlink is now blocked (and must be unblocked).
 */
static bool block_and_reset_pending(void)
{
	int result;

	result = sysfs_write_string(MODULE_PARAMETERS "block_netlink", "1");
	if (result < 0) {
		/* Kernels before 4.19 have neither parameter. */
		tcmu_dbg("block_netlink: %s; pending netlink commands not reset",
			 strerror(-result));
		return false;
	}
	result = sysfs_write_string(MODULE_PARAMETERS "reset_netlink", "1");
	if (result < 0)
		tcmu_warn("reset_netlink: %s; a configfs write left waiting by a previous "
			  "daemon stays blocked", strerror(-result));
	return true;
}

static void unblock(void)
{
	int result = sysfs_write_string(MODULE_PARAMETERS "block_netlink", "0");

	if (result < 0)
		tcmu_crit("cannot unblock netlink (%s): every new TCMU device will fail to "
			  "enable until 0 is written to " MODULE_PARAMETERS "block_netlink",
			  strerror(-result));
}

int netlink_open(void)
{
	bool blocked = false;
	int group, fd, result;

	if (sock)
		return nl_socket_get_fd(sock);
	sock = nl_socket_alloc();
	if (!sock)
		return -ENOMEM;
	result = genl_connect(sock);
	if (result < 0) {
		tcmu_err("generic netlink socket: %s", nl_geterror(result));
		result = nl_error_to_errno(result);
		goto fail;
	}

	family_id = genl_ctrl_resolve(sock, TCMU_FAMILY_NAME);
	if (family_id < 0) {
		if (family_id == -NLE_OBJ_NOTFOUND) {
			tcmu_err("generic netlink family " TCMU_FAMILY_NAME " not found: the "
				 "target_core_user kernel module is not loaded");
			result = -ENOENT;
		} else {
			tcmu_err("resolve netlink family " TCMU_FAMILY_NAME ": %s",
				 nl_geterror(family_id));
			result = nl_error_to_errno(family_id);
		}
		goto fail;
	}
	group = genl_ctrl_resolve_grp(sock, TCMU_FAMILY_NAME, TCMU_MULTICAST_GROUP);
	if (group < 0) {
		tcmu_err("netlink family " TCMU_FAMILY_NAME " has no group '" TCMU_MULTICAST_GROUP
			 "': %s", nl_geterror(group));
		result = nl_error_to_errno(group);
		goto fail;
	}

	/*
	 * The resolvers above use libnl's request/ack machinery; from here on
	 * events are unsolicited and our replies unacknowledged.
	 */
	nl_socket_disable_seq_check(sock);
	nl_socket_disable_auto_ack(sock);
	fd = nl_socket_get_fd(sock);
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 || fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
		result = -errno;
		tcmu_err("netlink socket flags: %m");
		goto fail;
	}

	/* SO_RCVBUFFORCE passes rmem_max for root; otherwise take what SO_RCVBUF allows. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &(int){ RECEIVE_BUFFER_BYTES },
		       sizeof(int)) < 0)
		nl_socket_set_buffer_size(sock, RECEIVE_BUFFER_BYTES, 0);

	blocked = block_and_reset_pending();
	result = nl_socket_add_membership(sock, group);
	if (result < 0) {
		tcmu_err("join netlink group " TCMU_FAMILY_NAME "/" TCMU_MULTICAST_GROUP ": %s",
			 nl_geterror(result));
		result = nl_error_to_errno(result);
		goto fail;
	}

	result = declare_reply_support();
	if (result < 0)
		goto fail;
	if (blocked)
		unblock();
	tcmu_dbg("listening to netlink family " TCMU_FAMILY_NAME " (id %d)", family_id);
	return fd;

fail:
	if (blocked)
		unblock();
	netlink_close();
	return result;
}

void netlink_close(void)
{
	uint32_t seq;

	/*
	 * Until the next daemon declares otherwise, configfs writes must not
	 * wait for replies nobody will send; the devices they create are
	 * found by that daemon's scan. (After kill -9 the next start's reset
	 * releases the writes instead.)
	 */
	if (sock && family_id >= 0)
		send_set_features(false, 0, &seq);
	if (sock)
		nl_socket_free(sock);
	sock = NULL;
	family_id = -1;
}
