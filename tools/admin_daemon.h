/* SPDX-License-Identifier: Apache-2.0 */
/*
 * admin_daemon.h: what tcmu-admin reads from the daemon over D-Bus
 * (admin_daemon.c), used by its commands (tcmu_admin.c).
 */
#ifndef TCMU_ADMIN_DAEMON_H
#define TCMU_ADMIN_DAEMON_H

#include <gio/gio.h>
#include <stdbool.h>
#include <stdint.h>

#include "histogram.h"

#define SERVICE "org.kernel.TCMUService1"
#define DAEMON_PATH "/org/kernel/TCMUService1/daemon"
#define DAEMON_INTERFACE "org.kernel.TCMUService1.Daemon"
#define DEVICE_INTERFACE "org.kernel.TCMUService1.Device"
#define CALL_TIMEOUT_MS 10000

/* The command kinds the daemon counts, as its properties name them. */
#define ADMIN_KIND_COUNT 8
extern const char *const admin_kinds[ADMIN_KIND_COUNT];

/* The system bus, connected by main(). */
extern GDBusConnection *bus;

/* Prints "tcmu-admin: " and the message on stderr; returns 1. */
int fail(const char *format, ...) __attribute__((format(printf, 1, 2)));
/* Every property of an interface at path, as a{sv}; NULL after a message. */
GVariant *get_all(const char *path, const char *interface);
uint64_t lookup_u64(GVariant *dict, const char *key);

/* One device's properties, with its histograms unpacked. */
struct device {
	GVariant *properties;
	const char *name, *backstore, *handler, *config, *state, *state_reason;
	uint64_t size;
	uint32_t in_flight, in_flight_max;
};

/* A kind's histogram from LatencyBuckets; 0 buckets when the kind is missing. */
size_t device_buckets(const struct device *device, const char *kind,
		      uint64_t buckets[HISTOGRAM_BUCKETS]);
uint64_t device_kind_value(const struct device *device, const char *property,
			   const char *kind);
/* The daemon's devices; names (or NULL) select by name or backstore. 0, or 1 after a message. */
int devices_read(GVariant *daemon, char **wanted, struct device **ret_devices,
		 size_t *ret_count);
void devices_release(struct device *devices, size_t count);
/* The daemon's histogram bounds (its release may differ from ours). */
void bucket_bounds(GVariant *daemon, uint64_t bounds[HISTOGRAM_BUCKETS]);

#endif
