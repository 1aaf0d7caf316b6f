/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rbd.c: a disk kept in a Ceph RBD image, through librbd and librados.
 *
 * Configuration string (RBD_CONFIG_DESCRIPTION; README.md, tcmu-runner(8)):
 *   pool/image[;osd_op_timeout=N][;conf=/path/ceph.conf][;id=client]
 *   pool/namespace/image[;...]
 * so targetcli's cfgstring=rbd/lun0 and the dev_config
 * rbd/rbd/lun0;osd_op_timeout=30 that other gateways save both name image
 * lun0 of pool rbd. Each option at most once, in any order. check_config
 * connects and opens the image read-only, each step bounded by
 * RBD_CHECK_TIMEOUT seconds (D-Bus callers wait for it), and says what is
 * wrong. Snapshots (pool/image@snap) are not served.
 *
 * The device's size is the image's: open refuses another dev_size. A larger
 * size grows the image (rbd_resize); a smaller one is refused, as shrinking
 * destroys data. A running device keeps its image and options.
 *
 * I/O: every command is one asynchronous librbd request, any number in
 * flight. librbd signals completions on an eventfd
 * (rbd_set_image_notification) that the device's ring thread watches;
 * fd_ready collects them (rbd_poll_io_events) and completes the commands
 * there, so no librbd thread touches the ring. The librbd cache is off: a
 * write completes once the cluster has it; FUA writes are followed by a
 * flush, as is SYNCHRONIZE CACHE. UNMAP is rbd_aio_write_zeroes, which
 * removes whole objects (rbd du shows the space freed) and zeros partial
 * ones, so the range reads as zeros as the core promises (a discard may skip
 * partial objects). GET LBA STATUS reports the objects the image has.
 *
 * Faults: a request the cluster does not answer within osd_op_timeout
 * fails with -ETIMEDOUT, completed as -EAGAIN (BUSY: the initiator
 * retries). A client the cluster blocklisted (another gateway broke its
 * lock) gets -ESHUTDOWN for everything from then on, so no write gets
 * through. Each transition is logged once.
 */
#include "libtcmu.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <rados/librados.h>
#include <rbd/librbd.h>

/* Seconds check_config may wait for each step: D-Bus callers wait for it. */
#define RBD_CHECK_TIMEOUT 5
/* Seconds open may wait for the monitors. */
#define RBD_CONNECT_TIMEOUT 15
#define RBD_DEFAULT_OSD_OP_TIMEOUT 20
#define RBD_MAX_OSD_OP_TIMEOUT 86400
/* Completions collected per rbd_poll_io_events call. */
#define RBD_POLL_BATCH 32
/* GET LBA STATUS looks at most this far ahead (a short answer is allowed). */
#define RBD_LBA_STATUS_SPAN (256ull << 20)

#define RBD_CONFIG_DESCRIPTION							\
	"pool/image[;osd_op_timeout=N][;conf=/path/ceph.conf][;id=client]\n"	\
	"or pool/namespace/image[;...]: the RBD image that holds the disk, e.g.\n" \
	"rbd/lun0. osd_op_timeout: seconds before a command the cluster does not\n" \
	"answer fails with BUSY (default 20; 0 waits forever). conf: the cluster's\n" \
	"ceph.conf (default $CEPH_CONF, then /etc/ceph/ceph.conf). id: the client\n" \
	"name without 'client.' (default admin). The device size must equal the\n" \
	"image size; a larger size grows the image."

struct rbd_config {
	char *pool;
	char *namespace;	/* "" for the default namespace */
	char *image;
	char *name;		/* "pool/image" or "pool/namespace/image", for messages */
	char *conf;		/* NULL: librados's search */
	char *id;		/* NULL: admin */
	unsigned osd_op_timeout;
	bool osd_op_timeout_given;
};

struct rbd_state {
	struct rbd_config config;
	rados_t cluster;
	rados_ioctx_t ioctx;
	rbd_image_t image;
	int event_fd;
	/* Ring thread only: the transitions logged once. */
	bool cluster_late;
	bool blocklisted;
};

enum rbd_io_kind { RBD_IO_READ, RBD_IO_WRITE, RBD_IO_FLUSH, RBD_IO_ZEROES };

/* One librbd request, from submission to fd_ready. */
struct rbd_io {
	struct tcmu_device *dev;
	struct tcmu_request *req;
	enum rbd_io_kind kind;
	bool flush_after;	/* FUA: a flush once the write completed */
	uint64_t offset;
	uint64_t length;
	size_t iov_count;
	struct iovec iov[];
};

/* Returns error after storing a malloc'd reason (NULL when out of memory). */
static __attribute__((format(printf, 3, 4))) int rbd_refuse(char **ret_reason, int error, const char *format, ...)
{
	va_list arguments;

	va_start(arguments, format);
	if (vasprintf(ret_reason, format, arguments) < 0)
		*ret_reason = NULL;
	va_end(arguments);
	return error;
}

static void rbd_config_clear(struct rbd_config *config)
{
	free(config->pool);
	free(config->namespace);
	free(config->image);
	free(config->name);
	free(config->conf);
	free(config->id);
	memset(config, 0, sizeof(*config));
}

/* Splits "pool/image" or "pool/namespace/image" into config. 0 or -errno. */
static int rbd_parse_image(const char *spec, struct rbd_config *config, char **ret_reason)
{
	const char *first = strchr(spec, '/');
	const char *second = first ? strchr(first + 1, '/') : NULL;
	const char *image;

	if (!first || (second && strchr(second + 1, '/')))
		return rbd_refuse(ret_reason, -EINVAL,
				  "'%s' is not pool/image or pool/namespace/image", spec);
	image = second ? second + 1 : first + 1;
	if (first == spec || image[0] == '\0' || (second && second == first + 1))
		return rbd_refuse(ret_reason, -EINVAL,
				  "'%s' has an empty pool, namespace or image name", spec);
	if (strchr(image, '@'))
		return rbd_refuse(ret_reason, -EINVAL,
				  "'%s' names a snapshot: only images are served", spec);
	config->pool = strndup(spec, (size_t)(first - spec));
	config->namespace = second ? strndup(first + 1, (size_t)(second - first - 1)) : strdup("");
	config->image = strdup(image);
	config->name = strdup(spec);
	if (!config->pool || !config->namespace || !config->image || !config->name)
		return rbd_refuse(ret_reason, -ENOMEM, "out of memory");
	return 0;
}

static int rbd_parse_option(char *option, struct rbd_config *config, char **ret_reason)
{
	char *value = strchr(option, '=');
	char *end;

	if (!value || value == option)
		return rbd_refuse(ret_reason, -EINVAL,
				  "option '%s' is not name=value", option);
	*value++ = '\0';
	if ((strcmp(option, "osd_op_timeout") == 0 && config->osd_op_timeout_given) ||
	    (strcmp(option, "conf") == 0 && config->conf) ||
	    (strcmp(option, "id") == 0 && config->id))
		return rbd_refuse(ret_reason, -EINVAL, "%s= is given twice", option);
	if (strcmp(option, "osd_op_timeout") == 0) {
		unsigned long seconds;

		config->osd_op_timeout_given = true;
		errno = 0;
		seconds = strtoul(value, &end, 10);
		if (value[0] < '0' || value[0] > '9' || *end || errno ||
		    seconds > RBD_MAX_OSD_OP_TIMEOUT)
			return rbd_refuse(ret_reason, -EINVAL,
					  "osd_op_timeout=%s is not a number of seconds from 0 to %d",
					  value, RBD_MAX_OSD_OP_TIMEOUT);
		config->osd_op_timeout = (unsigned)seconds;
	} else if (strcmp(option, "conf") == 0) {
		if (value[0] != '/')
			return rbd_refuse(ret_reason, -EINVAL,
					  "conf=%s is not an absolute path", value);
		config->conf = strdup(value);
		if (!config->conf)
			return rbd_refuse(ret_reason, -ENOMEM, "out of memory");
	} else if (strcmp(option, "id") == 0) {
		if (value[0] == '\0' || strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
						"abcdefghijklmnopqrstuvwxyz0123456789_.-") !=
					strlen(value))
			return rbd_refuse(ret_reason, -EINVAL,
					  "id=%s is not a client name (letters, digits, '_', '.', '-')",
					  value);
		config->id = strdup(strncmp(value, "client.", 7) == 0 ? value + 7 : value);
		if (!config->id)
			return rbd_refuse(ret_reason, -ENOMEM, "out of memory");
	} else {
		return rbd_refuse(ret_reason, -EINVAL,
				  "unknown option '%s' (known: osd_op_timeout, conf, id)", option);
	}
	return 0;
}

/* Parses the handler's config string into config (cleared on failure). */
static int rbd_parse_config(const char *text, struct rbd_config *config, char **ret_reason)
{
	char *copy, *cursor, *field;
	int result;

	*ret_reason = NULL;
	memset(config, 0, sizeof(*config));
	config->osd_op_timeout = RBD_DEFAULT_OSD_OP_TIMEOUT;
	if (text[0] == '\0')
		return rbd_refuse(ret_reason, -EINVAL,
				  "no image given: the configuration string is pool/image[;option=value...]");
	for (const char *c = text; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return rbd_refuse(ret_reason, -EINVAL,
					  "the configuration string contains control characters");
	copy = strdup(text);
	if (!copy)
		return rbd_refuse(ret_reason, -ENOMEM, "out of memory");
	cursor = copy;
	field = strsep(&cursor, ";");
	result = rbd_parse_image(field, config, ret_reason);
	while (result == 0 && (field = strsep(&cursor, ";")))
		if (field[0] != '\0')	/* a trailing or doubled ';' */
			result = rbd_parse_option(field, config, ret_reason);
	free(copy);
	if (result < 0)
		rbd_config_clear(config);
	return result;
}

/* The "mon host" librados uses, for messages. */
static const char *rbd_mon_host(rados_t cluster, char *buffer, size_t size)
{
	if (rados_conf_get(cluster, "mon_host", buffer, size) < 0 || buffer[0] == '\0')
		snprintf(buffer, size, "none configured");
	return buffer;
}

/*
 * Connects to the cluster and opens the image (read-only for a check):
 * the monitors may take connect_timeout seconds, each request to the OSDs
 * osd_timeout. On failure, nothing is left open and *ret_reason says why.
 */
static int rbd_attach(const struct rbd_config *config, unsigned connect_timeout,
		      unsigned osd_timeout, bool read_only, struct rbd_state *state,
		      char **ret_reason)
{
	char name[PATH_MAX], text[32], mon_host[256];
	int result;

	*ret_reason = NULL;
	snprintf(name, sizeof(name), "client.%s", config->id ? config->id : "admin");
	result = rados_create2(&state->cluster, "ceph", name, 0);
	if (result < 0)
		return rbd_refuse(ret_reason, result, "cannot create a Ceph client %s: %s",
				  name, strerror(-result));
	result = rados_conf_read_file(state->cluster, config->conf);
	if (result < 0) {
		if (config->conf)
			rbd_refuse(ret_reason, result, "cannot read Ceph configuration '%s': %s",
				   config->conf, strerror(-result));
		else
			rbd_refuse(ret_reason, result,
				   "no Ceph configuration found ($CEPH_CONF, /etc/ceph/ceph.conf): %s; "
				   "give one with ;conf=/path/ceph.conf", strerror(-result));
		goto out_shutdown;
	}
	/* The daemon's log has our messages; librados would write its own to stderr. */
	rados_conf_set(state->cluster, "log_to_stderr", "false");
	rados_conf_set(state->cluster, "err_to_stderr", "false");
	/* Acknowledged writes must be in the cluster, not in this process. */
	rados_conf_set(state->cluster, "rbd_cache", "false");
	snprintf(text, sizeof(text), "%u", connect_timeout);
	rados_conf_set(state->cluster, "client_mount_timeout", text);
	rados_conf_set(state->cluster, "rados_mon_op_timeout", text);
	snprintf(text, sizeof(text), "%u", osd_timeout);
	rados_conf_set(state->cluster, "rados_osd_op_timeout", text);

	result = rados_connect(state->cluster);
	if (result == -ETIMEDOUT) {
		rbd_refuse(ret_reason, result,
			   "the Ceph cluster did not answer within %u s (monitors: %s)",
			   connect_timeout, rbd_mon_host(state->cluster, mon_host, sizeof(mon_host)));
		goto out_shutdown;
	}
	if (result < 0) {
		rbd_refuse(ret_reason, result, "cannot connect to the Ceph cluster as %s (monitors: %s): %s",
			   name, rbd_mon_host(state->cluster, mon_host, sizeof(mon_host)),
			   strerror(-result));
		goto out_shutdown;
	}
	result = rados_ioctx_create(state->cluster, config->pool, &state->ioctx);
	if (result < 0) {
		if (result == -ENOENT)
			rbd_refuse(ret_reason, result, "the Ceph cluster has no pool '%s'", config->pool);
		else
			rbd_refuse(ret_reason, result, "cannot use pool '%s': %s", config->pool,
				   strerror(-result));
		goto out_shutdown;
	}
	rados_ioctx_set_namespace(state->ioctx, config->namespace);
	if (read_only)
		result = rbd_open_read_only(state->ioctx, config->image, &state->image, NULL);
	else
		result = rbd_open(state->ioctx, config->image, &state->image, NULL);
	if (result == -ENOENT)
		rbd_refuse(ret_reason, result, "no image '%s' in the Ceph cluster", config->name);
	else if (result == -ETIMEDOUT)
		rbd_refuse(ret_reason, result,
			   "opening image '%s': the Ceph cluster did not answer within %u s",
			   config->name, osd_timeout);
	else if (result < 0)
		rbd_refuse(ret_reason, result, "cannot open image '%s': %s", config->name,
			   strerror(-result));
	if (result < 0)
		goto out_ioctx;
	return 0;

out_ioctx:
	rados_ioctx_destroy(state->ioctx);
out_shutdown:
	rados_shutdown(state->cluster);
	return result;
}

static void rbd_detach(struct rbd_state *state)
{
	rbd_close(state->image);
	rados_ioctx_destroy(state->ioctx);
	rados_shutdown(state->cluster);
}

static int rbd_check_config(const char *text, char **ret_reason)
{
	struct rbd_config config;
	struct rbd_state state;
	int result;

	result = rbd_parse_config(text, &config, ret_reason);
	if (result < 0)
		return result;
	result = rbd_attach(&config, RBD_CHECK_TIMEOUT, RBD_CHECK_TIMEOUT, true, &state,
			    ret_reason);
	if (result == 0)
		rbd_detach(&state);
	rbd_config_clear(&config);
	return result;
}

static int rbd_open_device(struct tcmu_device *dev)
{
	struct rbd_state *state;
	char *reason = NULL;
	uint64_t image_size;
	int result;

	state = calloc(1, sizeof(*state));
	if (!state)
		return -ENOMEM;
	state->event_fd = -1;
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

	state->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	result = state->event_fd < 0 ? -errno :
		 rbd_set_image_notification(state->image, state->event_fd, EVENT_TYPE_EVENTFD);
	if (result == 0)
		result = tcmu_device_watch_fd(dev, state->event_fd, TCMU_FD_READABLE);
	if (result < 0) {
		rbd_refuse(&reason, result, "completion notification of '%s': %s",
			   state->config.name, strerror(-result));
		goto out_detach;
	}
	tcmu_device_set_private(dev, state);
	tcmu_dev_info(dev, "dev size: %" PRIu64, image_size);
	return 0;

out_detach:
	rbd_detach(state);
out_free:
	tcmu_dev_err(dev, "%s", reason ? reason : strerror(-result));
	free(reason);
	if (state->event_fd >= 0)
		close(state->event_fd);
	rbd_config_clear(&state->config);
	free(state);
	return result;
}

static void rbd_close_device(struct tcmu_device *dev)
{
	struct rbd_state *state = tcmu_device_get_private(dev);

	tcmu_device_set_private(dev, NULL);
	rbd_detach(state);
	close(state->event_fd);
	rbd_config_clear(&state->config);
	free(state);
}

static const char *const rbd_io_kind_names[] = { "read", "write", "flush", "unmap" };

/* The result a command gets for librbd's result; transitions are logged once. */
static int rbd_command_result(struct tcmu_device *dev, struct rbd_state *state,
			      const struct rbd_io *io, ssize_t result)
{
	if (result >= 0) {
		if (state->cluster_late) {
			state->cluster_late = false;
			tcmu_dev_warn(dev, "the Ceph cluster answers again");
		}
		return 0;
	}
	if (result == -ETIMEDOUT) {
		if (!state->cluster_late) {
			state->cluster_late = true;
			tcmu_dev_err(dev, "the Ceph cluster did not answer a %s within %u s: "
				     "commands fail with BUSY until it does",
				     rbd_io_kind_names[io->kind], state->config.osd_op_timeout);
		}
		return -EAGAIN;
	}
	if (result == -ESHUTDOWN) {
		if (!state->blocklisted) {
			state->blocklisted = true;
			tcmu_dev_err(dev, "the Ceph cluster blocklisted this client (another "
				     "client took the image): every command fails from now on");
		}
		return -ESHUTDOWN;
	}
	tcmu_dev_err(dev, "%s of %" PRIu64 " bytes at %" PRIu64 ": %s",
		     rbd_io_kind_names[io->kind], io->length, io->offset, strerror((int)-result));
	return (int)result;
}

/*
 * Hands io to librbd. 0, or the command's result when librbd did not take
 * it; io is then freed.
 */
static int rbd_submit(struct tcmu_device *dev, struct rbd_state *state, struct rbd_io *io)
{
	rbd_completion_t completion;
	int result;

	result = rbd_aio_create_completion(io, NULL, &completion);
	if (result == 0) {
		switch (io->kind) {
		case RBD_IO_READ:
			result = rbd_aio_readv(state->image, io->iov, (int)io->iov_count,
					       io->offset, completion);
			break;
		case RBD_IO_WRITE:
			result = rbd_aio_writev(state->image, io->iov, (int)io->iov_count,
						io->offset, completion);
			break;
		case RBD_IO_FLUSH:
			result = rbd_aio_flush(state->image, completion);
			break;
		case RBD_IO_ZEROES:
			result = rbd_aio_write_zeroes(state->image, io->offset, io->length,
						      completion, 0, 0);
			break;
		}
		if (result == 0)
			return 0;
		rbd_aio_release(completion);
	}
	result = rbd_command_result(dev, state, io, result);
	free(io);
	return result;
}

static int rbd_start(struct tcmu_device *dev, struct tcmu_request *req, enum rbd_io_kind kind,
		     const struct iovec *iov, size_t iov_count, uint64_t offset,
		     uint64_t length, bool flush_after)
{
	struct rbd_io *io;

	assert(iov_count <= INT_MAX);
	/* librbd may keep the iovec array until the request completes. */
	io = malloc(sizeof(*io) + iov_count * sizeof(*iov));
	if (!io)
		return -ENOMEM;
	*io = (struct rbd_io){ .dev = dev, .req = req, .kind = kind, .flush_after = flush_after,
			       .offset = offset, .length = length, .iov_count = iov_count };
	if (iov_count)
		memcpy(io->iov, iov, iov_count * sizeof(*iov));
	return rbd_submit(dev, tcmu_device_get_private(dev), io);
}

static int rbd_device_read(struct tcmu_device *dev, struct tcmu_request *req,
			   const struct iovec *iov, size_t iov_count, uint64_t offset,
			   uint64_t length)
{
	return rbd_start(dev, req, RBD_IO_READ, iov, iov_count, offset, length, false);
}

static int rbd_device_write(struct tcmu_device *dev, struct tcmu_request *req,
			    const struct iovec *iov, size_t iov_count, uint64_t offset,
			    uint64_t length, uint32_t flags)
{
	return rbd_start(dev, req, RBD_IO_WRITE, iov, iov_count, offset, length,
			 flags & TCMU_WRITE_FUA);
}

static int rbd_device_flush(struct tcmu_device *dev, struct tcmu_request *req)
{
	return rbd_start(dev, req, RBD_IO_FLUSH, NULL, 0, 0, 0, false);
}

static int rbd_device_unmap(struct tcmu_device *dev, struct tcmu_request *req,
			    uint64_t offset, uint64_t length)
{
	return rbd_start(dev, req, RBD_IO_ZEROES, NULL, 0, offset, length, false);
}

/* A librbd request is done: complete its command, or flush after a FUA write. */
static void rbd_io_done(struct rbd_state *state, struct rbd_io *io, ssize_t result)
{
	struct tcmu_request *req = io->req;
	int command_result;

	if (result >= 0 && io->flush_after) {
		io->kind = RBD_IO_FLUSH;
		io->flush_after = false;
		command_result = rbd_submit(io->dev, state, io);
		if (command_result < 0)
			tcmu_request_complete(req, command_result);
		return;
	}
	command_result = rbd_command_result(io->dev, state, io, result);
	free(io);
	tcmu_request_complete(req, command_result);
}

static void rbd_fd_ready(struct tcmu_device *dev, int fd, uint32_t events)
{
	struct rbd_state *state = tcmu_device_get_private(dev);
	rbd_completion_t completions[RBD_POLL_BATCH];
	uint64_t count;
	int collected;

	(void)events;
	/* Reset first: a completion after the poll below raises it again. */
	if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		tcmu_dev_warn(dev, "reading the completion eventfd: %m");
	do {
		collected = rbd_poll_io_events(state->image, completions, RBD_POLL_BATCH);
		if (collected < 0) {
			errno = -collected;
			tcmu_dev_err(dev, "collecting librbd completions: %m");
			return;
		}
		for (int i = 0; i < collected; i++) {
			struct rbd_io *io = rbd_aio_get_arg(completions[i]);
			ssize_t result = rbd_aio_get_return_value(completions[i]);

			rbd_aio_release(completions[i]);
			rbd_io_done(state, io, result);
		}
	} while (collected == RBD_POLL_BATCH);
}

struct rbd_extent_query {
	uint64_t position;	/* end of the run known so far */
	uint64_t end;		/* first byte not asked about */
	bool mapped;		/* set by the first extent with data at the start */
};

/* rbd_diff_iterate2 reports the extents that hold data, in order. */
static int rbd_extent_seen(uint64_t offset, size_t length, int exists, void *argument)
{
	struct rbd_extent_query *query = argument;

	if (!exists || offset + length <= query->position)
		return 0;
	if (offset > query->position) {
		/* A hole: it ends the mapped run, or is the answer up to offset. */
		if (!query->mapped)
			query->position = offset < query->end ? offset : query->end;
		return -ECANCELED;
	}
	query->mapped = true;
	query->position = offset + length < query->end ? offset + length : query->end;
	return 0;
}

static int rbd_get_lba_status(struct tcmu_device *dev, uint64_t offset, uint64_t length,
			      bool *ret_mapped, uint64_t *ret_length)
{
	struct rbd_state *state = tcmu_device_get_private(dev);
	struct rbd_extent_query query = { .position = offset };
	int result;

	assert(length > 0);
	if (length > RBD_LBA_STATUS_SPAN)
		length = RBD_LBA_STATUS_SPAN;
	query.end = offset + length;
	/* Whole objects: from the object map when the image has fast-diff. */
	result = rbd_diff_iterate2(state->image, NULL, offset, length, 1, 1,
				   rbd_extent_seen, &query);
	if (result < 0 && result != -ECANCELED) {
		errno = -result;
		tcmu_dev_err(dev, "allocation map of %" PRIu64 " bytes at %" PRIu64 ": %m",
			     length, offset);
		return result;
	}
	if (query.position == offset)	/* no data at all */
		query.position = query.end;
	*ret_mapped = query.mapped;
	*ret_length = query.position - offset;
	return 0;
}

static int rbd_reconfigure(struct tcmu_device *dev, const struct tcmu_device_change *change)
{
	struct rbd_state *state = tcmu_device_get_private(dev);
	uint64_t image_size;
	int result;

	/* The core passes a config only when the string changed. */
	if (change->what & TCMU_CHANGE_CONFIG) {
		tcmu_dev_err(dev, "new config '%s' refused: a running rbd device keeps its "
			     "image and options; create another backstore instead", change->config);
		return -EOPNOTSUPP;
	}
	if (!(change->what & TCMU_CHANGE_SIZE))
		return 0;
	result = rbd_get_size(state->image, &image_size);
	if (result < 0) {
		errno = -result;
		tcmu_dev_err(dev, "size of the image: %m");
		return result;
	}
	if (change->size < image_size) {
		tcmu_dev_err(dev, "new size %" PRIu64 " refused: the image holds %" PRIu64
			     " bytes and shrinking it would destroy data (shrink it with "
			     "`rbd resize --allow-shrink` first)", change->size, image_size);
		return -EINVAL;
	}
	if (change->size > image_size) {
		result = rbd_resize(state->image, change->size);
		if (result < 0) {
			errno = -result;
			tcmu_dev_err(dev, "growing the image to %" PRIu64 " bytes: %m",
				     change->size);
			return result;
		}
		tcmu_dev_info(dev, "image grown from %" PRIu64 " to %" PRIu64 " bytes",
			      image_size, change->size);
	}
	tcmu_dev_info(dev, "dev size: %" PRIu64, change->size);
	return 0;
}

static struct tcmu_handler rbd_handler = {
	.subtype = "rbd",
	.name = "Ceph RBD image",
	.config_description = RBD_CONFIG_DESCRIPTION,
	.check_config = rbd_check_config,
	.open = rbd_open_device,
	.close = rbd_close_device,
	.read = rbd_device_read,
	.write = rbd_device_write,
	.flush = rbd_device_flush,
	.unmap = rbd_device_unmap,
	.reconfigure = rbd_reconfigure,
	.get_lba_status = rbd_get_lba_status,
	.fd_ready = rbd_fd_ready,
};

TCMU_HANDLER_REGISTER(rbd_handler)
