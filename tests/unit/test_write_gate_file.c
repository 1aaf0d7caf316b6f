/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The write gate and COMPARE AND WRITE with a real asynchronous handler:
 * handler_file.so on its io_uring, served by a real ring worker, with
 * fake_ring.c playing the kernel. Each round puts 25 commands on the ring
 * at once, so that all are in flight together and the io_uring may
 * complete them in any order. In arrival order, every region gets a write,
 * a COMPARE AND WRITE of what that write left, and another write: the
 * compare must see the first write (it waited for it), never the second
 * (that waited for the compare-and-write), so every one succeeds and each
 * region ends with its second write. A COMPARE AND WRITE of data that is
 * not there miscompares and writes nothing. Both blocks of a
 * compare-and-write change together or not at all.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_ring.h"
#include "tcmu_internal.h"

#define BLOCK 512u
#define CAW_BLOCKS 2u
#define REGION_BYTES (CAW_BLOCKS * BLOCK)
#define REGIONS 8u
#define ROUNDS 20u
#define DEADLINE_MS 10000
#define SENSE_KEY_MISCOMPARE 0x0e

struct fixture {
	struct fake_ring fake;
	struct tcmu_device *dev;
	void *handle;
	char directory[64];
	char path[128];
	uint16_t next_cmd_id;
	uint32_t data_used;
	uint32_t entries[64];
	unsigned int entry_count;
};

static void count_kick(struct tcmu_ring *ring)
{
	(void)ring;
}

static int setup(void **state)
{
	struct fixture *fixture = calloc(1, sizeof(*fixture));
	const struct tcmu_handler *(*handler_init)(void);
	struct tcmu_device *dev = calloc(1, sizeof(*dev));

	assert_non_null(fixture);
	assert_non_null(dev);
	snprintf(fixture->directory, sizeof(fixture->directory), "/var/tmp/tcmu-gate-test-XXXXXX");
	assert_non_null(mkdtemp(fixture->directory));
	snprintf(fixture->path, sizeof(fixture->path), "%s/disk.img", fixture->directory);
	fixture->handle = dlopen(HANDLER_FILE_PATH, RTLD_NOW | RTLD_LOCAL);
	assert_non_null(fixture->handle);
	*(void **)&handler_init = dlsym(fixture->handle, "handler_init");
	assert_non_null(handler_init);

	assert_int_equal(fake_ring_create(&fixture->fake), 0);
	dev->name = strdup("gate");
	dev->subtype = strdup("file");
	dev->config = strdup(fixture->path);
	dev->log_prefix = strdup("file/gate");
	dev->backstore = strdup("user_0/gate");
	dev->size = 1024 * 1024;
	dev->block_size = BLOCK;
	dev->write_cache = true;
	dev->uio_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(dev->uio_fd >= 0);
	scsi_device_init(dev);
	dev->handler = handler_init();
	assert_int_equal(dev->handler->open(dev), 0);
	dev->handler_open = true;
	assert_int_equal(ring_init(&dev->ring, dev, fixture->fake.map, FAKE_RING_MAP_SIZE,
				   scsi_execute, count_kick), 0);
	fixture->dev = dev;
	assert_int_equal(workers_start(1), 0);
	assert_int_equal(worker_add_device(dev), 0);
	*state = fixture;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fixture = *state;

	device_detach(fixture->dev);
	workers_stop();
	fake_ring_destroy(&fixture->fake);
	dlclose(fixture->handle);
	unlink(fixture->path);
	rmdir(fixture->directory);
	free(fixture);
	return 0;
}

/* Queues a command whose data-out is data (length bytes) without telling the worker. */
static void put(struct fixture *fixture, const uint8_t *cdb, const void *data, uint32_t length)
{
	uint32_t offset = FAKE_RING_DATA_OFF + fixture->data_used;

	assert_true(offset + length <= FAKE_RING_MAP_SIZE);
	memcpy(fixture->fake.map + offset, data, length);
	fixture->data_used += length;
	assert_true(fixture->entry_count < 64);
	fixture->entries[fixture->entry_count++] =
		fake_ring_put_command(&fixture->fake, fixture->next_cmd_id++, cdb, 16, offset,
				      length);
}

static void put_write(struct fixture *fixture, uint64_t lba, const void *data)
{
	uint8_t cdb[16] = { 0x8a };

	for (unsigned int i = 0; i < 8; i++)
		cdb[2 + i] = (uint8_t)(lba >> (56 - 8 * i));
	cdb[13] = CAW_BLOCKS;
	put(fixture, cdb, data, REGION_BYTES);
}

static void put_compare_and_write(struct fixture *fixture, uint64_t lba, const void *compare,
				  const void *write)
{
	uint8_t cdb[16] = { 0x89 };
	uint8_t data[2 * REGION_BYTES];

	for (unsigned int i = 0; i < 8; i++)
		cdb[2 + i] = (uint8_t)(lba >> (56 - 8 * i));
	cdb[13] = CAW_BLOCKS;
	memcpy(data, compare, REGION_BYTES);
	memcpy(data + REGION_BYTES, write, REGION_BYTES);
	put(fixture, cdb, data, sizeof(data));
}

static bool ring_idle(const struct fixture *fixture)
{
	return __atomic_load_n(&fixture->fake.mailbox->cmd_tail, __ATOMIC_ACQUIRE) ==
	       __atomic_load_n(&fixture->fake.mailbox->cmd_head, __ATOMIC_ACQUIRE);
}

/* Tells the worker, as the kernel does, and waits until every command queued completed. */
static void run(struct fixture *fixture)
{
	struct timespec pause = { .tv_nsec = 1000000 };
	uint64_t one = 1;

	assert_int_equal(write(fixture->dev->uio_fd, &one, sizeof(one)), sizeof(one));
	for (unsigned int waited = 0; !ring_idle(fixture); waited++) {
		if (waited == DEADLINE_MS)
			fail_msg("commands not completed within %d ms", DEADLINE_MS);
		nanosleep(&pause, NULL);
	}
}

/* The sense key of command number index of the round, or 0 when it succeeded. */
static unsigned int sense_key_of(const struct fixture *fixture, unsigned int index)
{
	const struct tcmu_cmd_entry *entry = fake_ring_entry_at(&fixture->fake,
								fixture->entries[index]);

	if (entry->rsp.scsi_status == 0)
		return 0;
	assert_int_equal(entry->rsp.scsi_status, 2);	/* CHECK CONDITION */
	if ((entry->rsp.sense_buffer[0] & 0x7f) >= 0x72)
		return entry->rsp.sense_buffer[1] & 0x0f;
	return entry->rsp.sense_buffer[2] & 0x0f;
}

static void start_round(struct fixture *fixture)
{
	fixture->data_used = 0;
	fixture->entry_count = 0;
}

/* A region's content: both blocks carry tag (and the region's number), so a torn one shows. */
static void fill(uint8_t *region, unsigned int number, unsigned int tag)
{
	for (unsigned int i = 0; i < REGION_BYTES; i++)
		region[i] = (uint8_t)(tag * 7 + number * 31 + (i % BLOCK));
}

static void read_region(const struct fixture *fixture, unsigned int number, uint8_t *region)
{
	int fd = open(fixture->path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, region, REGION_BYTES, (off_t)number * 4 * REGION_BYTES),
			 REGION_BYTES);
	close(fd);
}

static void test_order_around_compare_and_write(void **state)
{
	struct fixture *fixture = *state;
	uint8_t first[REGIONS][REGION_BYTES], swapped[REGIONS][REGION_BYTES];
	uint8_t second[REGIONS][REGION_BYTES], wrong[REGION_BYTES], found[REGION_BYTES];
	struct device_stats stats;
	uint32_t in_flight;

	for (unsigned int round = 0; round < ROUNDS; round++) {
		start_round(fixture);
		for (unsigned int r = 0; r < REGIONS; r++) {
			uint64_t lba = (uint64_t)r * 4 * CAW_BLOCKS;

			fill(first[r], r, 3 * round);
			fill(swapped[r], r, 3 * round + 1);
			fill(second[r], r, 3 * round + 2);
			put_write(fixture, lba, first[r]);
			put_compare_and_write(fixture, lba, first[r], swapped[r]);
			put_write(fixture, lba, second[r]);
		}
		/* Compares with what the first write of region 0 replaced: must miscompare. */
		fill(wrong, 0, 3 * round - 1);
		put_compare_and_write(fixture, 0, wrong, wrong);
		run(fixture);
		for (unsigned int i = 0; i < 3 * REGIONS; i++) {
			if (sense_key_of(fixture, i))
				fail_msg("round %u: command %u failed", round, i);
		}
		assert_int_equal(sense_key_of(fixture, 3 * REGIONS), SENSE_KEY_MISCOMPARE);
		for (unsigned int r = 0; r < REGIONS; r++) {
			read_region(fixture, r, found);
			assert_memory_equal(found, second[r], REGION_BYTES);
		}
	}
	/* The io_uring had many of them at once: the ring saw them in flight together. */
	stats_snapshot(fixture->dev, &stats, &in_flight);
	assert_true(stats.in_flight_max >= 3 * REGIONS);
}

/*
 * Writes of one region overlapping compare-and-writes that each expect
 * what the write before them left, many rounds: no compare-and-write sees
 * a half-written region or a write that came after it.
 */
static void test_compare_and_write_atomic_against_writes(void **state)
{
	struct fixture *fixture = *state;
	uint8_t images[8][REGION_BYTES], found[REGION_BYTES];

	for (unsigned int round = 0; round < ROUNDS; round++) {
		start_round(fixture);
		/* One region: write tag 0, CAW 0->1, write 2, CAW 2->3, write 4, CAW 4->5, write 6. */
		for (unsigned int tag = 0; tag < 7; tag++)
			fill(images[tag], 0, round * 8 + tag);
		for (unsigned int tag = 0; tag < 7; tag += 2) {
			put_write(fixture, 0, images[tag]);
			if (tag + 1 < 7)
				put_compare_and_write(fixture, 0, images[tag], images[tag + 1]);
		}
		run(fixture);
		for (unsigned int i = 0; i < fixture->entry_count; i++)
			assert_int_equal(sense_key_of(fixture, i), 0);
		read_region(fixture, 0, found);
		assert_memory_equal(found, images[6], REGION_BYTES);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_order_around_compare_and_write, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_compare_and_write_atomic_against_writes, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
