/* SPDX-License-Identifier: Apache-2.0 */
/* dev_config_split(): "<subtype>/[;option=value;...]<handler config>". */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "tcmu_internal.h"

static void expect_split(const char *dev_config, const char *subtype, const char *config)
{
	char *got_subtype = NULL, *got_config = NULL;

	assert_int_equal(dev_config_split(dev_config, &got_subtype, &got_config), 0);
	assert_string_equal(got_subtype, subtype);
	assert_string_equal(got_config, config);
	free(got_subtype);
	free(got_config);
}

static void test_subtype_and_config(void **state)
{
	(void)state;
	expect_split("file//var/tmp/f1.img", "file", "/var/tmp/f1.img");
	expect_split("file/relative/dir/x.img", "file", "relative/dir/x.img");
	expect_split("alloc/", "alloc", "");
}

static void test_leading_options_are_skipped(void **state)
{
	(void)state;
	expect_split("file/;timeout=30;/tmp/x.img", "file", "/tmp/x.img");
	expect_split("file/;timeout=30;retries=2;/tmp/x.img", "file", "/tmp/x.img");
	/* Not an option: no '=' before the next ';'. */
	expect_split("file/;odd;name", "file", "odd;name");
}

static void test_trailing_newline_is_dropped(void **state)
{
	(void)state;
	expect_split("alloc/\n", "alloc", "");
	expect_split("file//tmp/x.img\n", "file", "/tmp/x.img");
}

static void test_malformed_is_refused(void **state)
{
	char *subtype, *config;

	(void)state;
	assert_int_equal(dev_config_split(NULL, &subtype, &config), -EINVAL);
	assert_int_equal(dev_config_split("alloc", &subtype, &config), -EINVAL);
	assert_int_equal(dev_config_split("/tmp/x.img", &subtype, &config), -EINVAL);
	assert_int_equal(dev_config_split("", &subtype, &config), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subtype_and_config),
		cmocka_unit_test(test_leading_options_are_skipped),
		cmocka_unit_test(test_trailing_newline_is_dropped),
		cmocka_unit_test(test_malformed_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
