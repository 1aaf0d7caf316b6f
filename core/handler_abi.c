/* SPDX-License-Identifier: Apache-2.0 */
/*
 * handler_abi.c: turns the struct a handler's handler_init() returned into
 * the daemon's struct tcmu_handler, for every handler ABI version the
 * daemon loads. Every version starts with abi_version and struct_size;
 * the rest is read through that version's own layout and adapter, so that
 * a new version does not orphan the handlers built for the ones before.
 *
 * Cutting version 2: libtcmu.h's struct changes and its
 * TCMU_HANDLER_ABI_VERSION becomes 2; handler_abi_v1.h stays as it is;
 * a version 2 entry joins the table (its own layout, copied up to its
 * struct_size), and adapt_v1 maps the version-1 fields onto the new ones
 * (wrapping a callback whose signature changed).
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "handler_abi_v1.h"
#include "tcmu_internal.h"

/* A struct_size beyond this is garbage, not a newer ABI. */
#define STRUCT_SIZE_LIMIT 65536

/* What every version of the struct starts with. */
struct handler_abi_header {
	uint32_t abi_version;
	uint32_t struct_size;
};

#if TCMU_HANDLER_ABI_VERSION == 1
_Static_assert(sizeof(struct tcmu_handler_v1) == sizeof(struct tcmu_handler),
	       "version 1 is current: handler_abi_v1.h must have libtcmu.h's fields");
#endif

/*
 * Version 1: its fields by name, those past its struct_size left zero
 * (a handler built before they were appended).
 */
static void adapt_v1(const void *theirs, size_t size, struct tcmu_handler *ops)
{
	struct tcmu_handler_v1 v1;

	memset(&v1, 0, sizeof(v1));
	memcpy(&v1, theirs, size < sizeof(v1) ? size : sizeof(v1));
	memset(ops, 0, sizeof(*ops));
	ops->abi_version = v1.abi_version;
	ops->struct_size = v1.struct_size;
	ops->subtype = v1.subtype;
	ops->name = v1.name;
	ops->config_description = v1.config_description;
	ops->load = v1.load;
	ops->unload = v1.unload;
	ops->check_config = v1.check_config;
	ops->open = v1.open;
	ops->close = v1.close;
	ops->remove = v1.remove;
	ops->read = v1.read;
	ops->write = v1.write;
	ops->flush = v1.flush;
	ops->unmap = v1.unmap;
	ops->reconfigure = v1.reconfigure;
	ops->get_lba_status = v1.get_lba_status;
	ops->flags = v1.flags;
	ops->fd_ready = v1.fd_ready;
	ops->batch_done = v1.batch_done;
	ops->compare_and_write = v1.compare_and_write;
	ops->get_port_groups = v1.get_port_groups;
	ops->set_port_state = v1.set_port_state;
	ops->query_lba_status = v1.query_lba_status;
}

static const struct handler_abi {
	uint32_t version;
	/* Up to the last required callback (flush). */
	size_t required_size;
	void (*adapt)(const void *theirs, size_t size, struct tcmu_handler *ops);
} handler_abis[] = {
	{ 1, offsetof(struct tcmu_handler_v1, flush) + sizeof(((struct tcmu_handler_v1 *)0)->flush),
	  adapt_v1 },
};

int handler_abi_adapt(const char *path, const void *theirs, struct tcmu_handler *ops)
{
	const struct handler_abi_header *header = theirs;
	const struct handler_abi *abi = NULL;

	for (size_t i = 0; i < ARRAY_SIZE(handler_abis); i++)
		if (handler_abis[i].version == header->abi_version)
			abi = &handler_abis[i];
	if (!abi) {
		tcmu_err("handler '%s' was built for handler ABI version %u, this daemon loads "
			 "versions %u to %u: refused", path, header->abi_version,
			 handler_abis[0].version, TCMU_HANDLER_ABI_VERSION);
		return -EPROTO;
	}
	if (header->struct_size < abi->required_size || header->struct_size > STRUCT_SIZE_LIMIT) {
		tcmu_err("handler '%s' declares a struct size of %u bytes, expected %zu to %u: refused",
			 path, header->struct_size, abi->required_size, STRUCT_SIZE_LIMIT);
		return -EPROTO;
	}
	abi->adapt(theirs, header->struct_size, ops);
	return 0;
}
