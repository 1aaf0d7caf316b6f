/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_handler_rbd.c: handler_rbd.so's config string checks without a
 * cluster: every malformed string is refused with its reason, and a cluster
 * whose monitor does not answer is refused within seconds, not hung on.
 * The I/O paths run against a real cluster in tests/vm/test_rbd_*.sh.
 */
#include "handler_harness.h"

#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

static void expect_refusal(const struct tcmu_handler *handler, const char *config,
			   int expected_result, const char *expected_reason)
{
	char *reason = NULL;
	int result = handler->check_config(config, &reason);

	if (result != expected_result)
		fail_msg("'%s': %d (%s), expected %d", config, result, reason ? reason : "",
			 expected_result);
	assert_non_null(reason);
	if (!strstr(reason, expected_reason))
		fail_msg("'%s': reason '%s' lacks '%s'", config, reason, expected_reason);
	free(reason);
}

static void test_malformed(void **state)
{
	const struct tcmu_handler *handler = harness_load(HANDLER_RBD_PATH);

	(void)state;
	assert_string_equal(handler->subtype, "rbd");
	assert_non_null(strstr(handler->config_description, "osd_op_timeout"));
	expect_refusal(handler, "", -EINVAL, "no image given");
	expect_refusal(handler, "lun0", -EINVAL, "is not pool/image");
	expect_refusal(handler, "rbd/ns/lun0/x", -EINVAL, "is not pool/image");
	expect_refusal(handler, "rbd/", -EINVAL, "empty pool, namespace or image");
	expect_refusal(handler, "/lun0", -EINVAL, "empty pool, namespace or image");
	expect_refusal(handler, "rbd//lun0", -EINVAL, "empty pool, namespace or image");
	expect_refusal(handler, "rbd/lun0@snap", -EINVAL, "names a snapshot");
	expect_refusal(handler, "rbd/lun0\n", -EINVAL, "control characters");
	expect_refusal(handler, "rbd/lun0;cache=1", -EINVAL, "unknown option 'cache'");
	expect_refusal(handler, "rbd/lun0;osd_op_timeout", -EINVAL, "is not name=value");
	expect_refusal(handler, "rbd/lun0;osd_op_timeout=ten", -EINVAL, "not a number of seconds");
	expect_refusal(handler, "rbd/lun0;osd_op_timeout=-1", -EINVAL, "not a number of seconds");
	expect_refusal(handler, "rbd/lun0;osd_op_timeout=99999999", -EINVAL,
		       "not a number of seconds");
	expect_refusal(handler, "rbd/lun0;osd_op_timeout=5;osd_op_timeout=6", -EINVAL,
		       "given twice");
	expect_refusal(handler, "rbd/lun0;conf=ceph.conf", -EINVAL, "not an absolute path");
	expect_refusal(handler, "rbd/lun0;id=a b", -EINVAL, "not a client name");
	expect_refusal(handler, "rbd/lun0;id=a;id=b", -EINVAL, "given twice");
	expect_refusal(handler, "rbd/lun0;gateway=1", -EINVAL, "is not N/M");
	expect_refusal(handler, "rbd/lun0;gateway=0/2", -EINVAL, "is not N/M");
	expect_refusal(handler, "rbd/lun0;gateway=3/2", -EINVAL, "is not N/M");
	expect_refusal(handler, "rbd/lun0;gateway=1/17", -EINVAL, "is not N/M");
	expect_refusal(handler, "rbd/lun0;gateway=1/0", -EINVAL, "is not N/M");
	expect_refusal(handler, "rbd/lun0;gateway=two/2", -EINVAL, "is not N/M");
	expect_refusal(handler, "rbd/lun0;gateway=1/2x", -EINVAL, "is not N/M");
	expect_refusal(handler, "rbd/lun0;gateway=1/2;gateway=2/2", -EINVAL, "given twice");
	expect_refusal(handler, "rbd/lun0;conf=/nonexistent/ceph.conf", -ENOENT,
		       "cannot read Ceph configuration '/nonexistent/ceph.conf'");
	handler->unload();
	harness_unload();
}

/* The threads of this process, as /proc lists them until they are gone for good. */
static unsigned thread_count(void)
{
	DIR *directory = opendir("/proc/self/task");
	struct dirent *entry;
	unsigned count = 0;

	assert_non_null(directory);
	while ((entry = readdir(directory)))
		if (entry->d_name[0] != '.')
			count++;
	closedir(directory);
	return count;
}

static double seconds_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (now.tv_nsec - start->tv_nsec) / 1e9;
}

/* A monitor address nobody listens on: librados hunts until its timeout. */
static void test_unreachable_cluster(void **state)
{
	const struct tcmu_handler *handler = harness_load(HANDLER_RBD_PATH);
	char directory[] = "/tmp/test_handler_rbd.XXXXXX";
	char conf[sizeof(directory) + 16], config[sizeof(conf) + 64];
	unsigned threads_before = thread_count();
	struct timespec start;
	FILE *file;

	(void)state;
	assert_non_null(mkdtemp(directory));
	snprintf(conf, sizeof(conf), "%s/ceph.conf", directory);
	file = fopen(conf, "w");
	assert_non_null(file);
	fprintf(file, "[global]\nmon host = 127.0.0.1:1\nauth client required = none\n"
		      "keyring = /dev/null\nlog file = /dev/null\n");
	fclose(file);

	/* The form other gateways save, options after the image. */
	snprintf(config, sizeof(config), "rbd/lun0;osd_op_timeout=30;conf=%s;id=gateway", conf);
	clock_gettime(CLOCK_MONOTONIC, &start);
	expect_refusal(handler, config, -ETIMEDOUT,
		       "the Ceph cluster did not answer within 5 s (monitors: ");
	/* 5 s in all, whatever librados's steps take (slack for a loaded machine). */
	if (seconds_since(&start) > 8)
		fail_msg("check_config took %.1f s for an unreachable cluster", seconds_since(&start));

	unlink(conf);
	rmdir(directory);
	/* As the daemon does before it exits: no check's thread outlives the library. */
	handler->unload();
	/* Joined, not merely ended: a thread still exiting would run unmapped code. */
	assert_int_equal(thread_count(), threads_before);
	harness_unload();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_unreachable_cluster),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
