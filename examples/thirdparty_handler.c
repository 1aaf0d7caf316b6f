/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A handler built the way a third party builds one: outside the source
 * tree, against the installed libtcmu.h found through pkg-config, and
 * installed into the handler directory that pkg-config names. It reads
 * zeros and discards writes; it logs through the daemon so that the test
 * sees the daemon's symbols resolve in a separately built object.
 */
#include <errno.h>
#include <libtcmu.h>
#include <string.h>

static int thirdparty_check_config(const char *config, char **ret_reason)
{
	(void)ret_reason;
	return config[0] == '\0' ? 0 : -EINVAL;
}

static int thirdparty_open(struct tcmu_device *dev)
{
	tcmu_dev_info(dev, "thirdparty open, %llu bytes",
		      (unsigned long long)tcmu_device_get_size(dev));
	return 0;
}

static void thirdparty_close(struct tcmu_device *dev)
{
	tcmu_dev_info(dev, "thirdparty close");
}

static int thirdparty_read(struct tcmu_device *dev, struct tcmu_request *req,
			   const struct iovec *iov, size_t iov_count, uint64_t offset,
			   uint64_t length)
{
	(void)dev;
	(void)offset;
	(void)length;
	for (size_t i = 0; i < iov_count; i++)
		memset(iov[i].iov_base, 0, iov[i].iov_len);
	tcmu_request_complete(req, 0);
	return 0;
}

static int thirdparty_write(struct tcmu_device *dev, struct tcmu_request *req,
			    const struct iovec *iov, size_t iov_count, uint64_t offset,
			    uint64_t length, uint32_t flags)
{
	(void)dev;
	(void)iov;
	(void)iov_count;
	(void)offset;
	(void)length;
	(void)flags;
	tcmu_request_complete(req, 0);
	return 0;
}

static int thirdparty_flush(struct tcmu_device *dev, struct tcmu_request *req)
{
	(void)dev;
	tcmu_request_complete(req, 0);
	return 0;
}

static struct tcmu_handler thirdparty_handler = {
	.subtype = "thirdparty",
	.name = "Test handler built outside the tree",
	.config_description = "No configuration.",
	.check_config = thirdparty_check_config,
	.open = thirdparty_open,
	.close = thirdparty_close,
	.read = thirdparty_read,
	.write = thirdparty_write,
	.flush = thirdparty_flush,
};

TCMU_HANDLER_REGISTER(thirdparty_handler)
