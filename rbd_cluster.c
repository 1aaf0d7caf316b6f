/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rbd_cluster.c: the rbd handler's connection to a Ceph cluster and its
 * image, with librados's waits bounded (client_mount_timeout,
 * rados_osd_op_timeout) and the librbd cache off, so that a write completes
 * only once the cluster has it.
 */
#include "rbd.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

/* The "mon host" librados uses, for messages. */
static const char *rbd_mon_host(rados_t cluster, char *buffer, size_t size)
{
	if (rados_conf_get(cluster, "mon_host", buffer, size) < 0 || buffer[0] == '\0')
		snprintf(buffer, size, "none configured");
	return buffer;
}

int rbd_attach(const struct rbd_config *config, unsigned connect_timeout,
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

void rbd_detach(struct rbd_state *state)
{
	rbd_close(state->image);
	rados_ioctx_destroy(state->ioctx);
	rados_shutdown(state->cluster);
}
