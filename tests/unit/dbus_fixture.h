/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dbus_fixture.h: the private bus, the service in a child process and the
 * client calls that test_dbus.c's tests share (dbus_fixture.c).
 */
#ifndef DBUS_FIXTURE_H
#define DBUS_FIXTURE_H

#include <gio/gio.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "tcmu_internal.h"

#define SERVICE "org.kernel.TCMUService1"
#define NOBODY_UID 65534
#define MIB (1024u * 1024u)

enum test_mode { MODE_OPEN, MODE_POLICY, MODE_NOBUS };

extern enum test_mode test_mode;
/* The test's scratch directory; fake configfs directories live under it. */
extern char test_directory[];
extern char bus_address[256];
extern pid_t service_pid;
extern char service_log[320];
/* dev_size of user_1/slow: a FIFO, so that a write to it blocks as the kernel's can. */
extern char slow_dev_size[320];
extern GDBusConnection *test_connection;
extern const struct tcmu_handler *file_handler;
extern const struct tcmu_handler *alloc_handler;

/* cmocka group setup and teardown: bus, service, connection; then all gone. */
int group_setup(void **state);
int group_teardown(void **state);
/* Stops the service (SIGTERM) or waits for it; its exit status, or 128 + signal. */
int service_stop(void);
int service_stop_wait(void);

/* A method of /org/kernel/TCMUService1/SUBTYPE; NULL and *error on failure. */
GVariant *call(const char *subtype, const char *method, GVariant *parameters,
	       const char *reply_type, GError **error);
bool check_config(const char *subtype, const char *config, char **ret_reason);
int change_medium(const char *subtype, const char *name, uint64_t size,
		  const char *config, char **ret_reason);
/* The contents of a fake configfs attribute, "user_N/NAME", "dev_size". */
char *attribute_read(const char *hba_and_name, const char *attribute);
int gdbus_as_nobody(char **arguments, char **ret_output);

#endif
