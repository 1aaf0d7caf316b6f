/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake_ring.c: the kernel's side of an in-memory TCMU ring (fake_ring.h).
 * The head is stored with release ordering, as the kernel publishes it, so
 * that a ring served by another thread sees whole entries.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "fake_ring.h"

int fake_ring_create(struct fake_ring *fake)
{
	fake->map = aligned_alloc(4096, FAKE_RING_MAP_SIZE);
	if (!fake->map)
		return -ENOMEM;
	memset(fake->map, 0, FAKE_RING_MAP_SIZE);
	fake->mailbox = (struct tcmu_mailbox *)fake->map;
	fake->mailbox->version = TCMU_MAILBOX_VERSION;
	fake->mailbox->flags = TCMU_MAILBOX_FLAG_CAP_OOOC | TCMU_MAILBOX_FLAG_CAP_READ_LEN;
	fake->mailbox->cmdr_off = FAKE_RING_CMDR_OFF;
	fake->mailbox->cmdr_size = FAKE_RING_CMDR_SIZE;
	return 0;
}

void fake_ring_destroy(struct fake_ring *fake)
{
	free(fake->map);
	fake->map = NULL;
	fake->mailbox = NULL;
}

struct tcmu_cmd_entry *fake_ring_entry_at(const struct fake_ring *fake, uint32_t offset)
{
	return (struct tcmu_cmd_entry *)(fake->map + FAKE_RING_CMDR_OFF + offset);
}

static uint32_t cdb_position(uint32_t iov_count)
{
	uint32_t after_iovs = (uint32_t)offsetof(struct tcmu_cmd_entry, req.iov) +
			      iov_count * (uint32_t)sizeof(struct iovec);

	return after_iovs > sizeof(struct tcmu_cmd_entry) ? after_iovs
							   : (uint32_t)sizeof(struct tcmu_cmd_entry);
}

uint32_t fake_ring_entry_length(uint32_t iov_count, uint32_t cdb_length)
{
	uint32_t length = cdb_position(iov_count) + cdb_length;

	return (length + TCMU_OP_ALIGN_SIZE - 1) & ~(uint32_t)(TCMU_OP_ALIGN_SIZE - 1);
}

void fake_ring_set_len_op(struct tcmu_cmd_entry_hdr *hdr, enum tcmu_opcode op, uint32_t length)
{
	uint32_t len_op = 0;

	tcmu_hdr_set_op(&len_op, op);
	tcmu_hdr_set_len(&len_op, length);
	memcpy(&hdr->len_op, &len_op, sizeof(len_op));
}

static void publish_head(struct fake_ring *fake, uint32_t head)
{
	__atomic_store_n(&fake->mailbox->cmd_head, head, __ATOMIC_RELEASE);
}

void fake_ring_put_pad(struct fake_ring *fake, uint32_t length)
{
	uint32_t head = fake->mailbox->cmd_head;
	struct tcmu_cmd_entry *entry = fake_ring_entry_at(fake, head);

	memset(entry, 0, sizeof(entry->hdr));
	fake_ring_set_len_op(&entry->hdr, TCMU_OP_PAD, length);
	publish_head(fake, (head + length) % FAKE_RING_CMDR_SIZE);
}

uint32_t fake_ring_put_command(struct fake_ring *fake, uint16_t cmd_id, const uint8_t *cdb,
			       uint32_t cdb_length, uint32_t data_offset, uint32_t data_length)
{
	uint32_t iov_count = data_length ? 1 : 0;
	uint32_t length = fake_ring_entry_length(iov_count, cdb_length);
	uint32_t head = fake->mailbox->cmd_head;
	struct tcmu_cmd_entry *entry;
	struct iovec iov;
	uint32_t cdb_in_entry;

	if (FAKE_RING_CMDR_SIZE - head < length) {
		fake_ring_put_pad(fake, FAKE_RING_CMDR_SIZE - head);
		head = 0;
	}
	entry = fake_ring_entry_at(fake, head);
	memset(entry, 0, length);
	fake_ring_set_len_op(&entry->hdr, TCMU_OP_CMD, length);
	entry->hdr.cmd_id = cmd_id;
	entry->req.iov_cnt = iov_count;
	cdb_in_entry = cdb_position(iov_count);
	entry->req.cdb_off = FAKE_RING_CMDR_OFF + head + cdb_in_entry;
	memcpy((uint8_t *)entry + cdb_in_entry, cdb, cdb_length);
	if (iov_count) {
		iov.iov_base = (void *)(uintptr_t)data_offset;
		iov.iov_len = data_length;
		memcpy((uint8_t *)entry + offsetof(struct tcmu_cmd_entry, req.iov), &iov,
		       sizeof(iov));
	}
	publish_head(fake, (head + length) % FAKE_RING_CMDR_SIZE);
	return head;
}

/*
 * The tamper is a software watchpoint: the page faults on each access; the
 * SIGSEGV handler opens it and sets the trap flag, so the access runs and
 * SIGTRAP follows right after it, where the page is closed again, or, once
 * the watched bytes were touched, the field is changed and the page left
 * open. Only the test thread touches the page while it is armed.
 */
#define TRAP_FLAG 0x100

static struct {
	uint8_t *page;
	size_t page_size;
	uint8_t *watched;
	size_t watched_length;
	uint8_t *field;
	uint32_t value;
	volatile sig_atomic_t armed;
	volatile sig_atomic_t touched;
	volatile sig_atomic_t struck;
	struct sigaction previous_segv;
	struct sigaction previous_trap;
} tamper;

#if defined(__x86_64__)
static void tamper_on_segv(int signal_number, siginfo_t *info, void *context)
{
	ucontext_t *user_context = context;
	uint8_t *address = info->si_addr;

	(void)signal_number;
	if (!tamper.armed || address < tamper.page || address >= tamper.page + tamper.page_size) {
		/* Not ours: the fault repeats under the handler from before. */
		sigaction(SIGSEGV, &tamper.previous_segv, NULL);
		return;
	}
	mprotect(tamper.page, tamper.page_size, PROT_READ | PROT_WRITE);
	if (address >= tamper.watched && address < tamper.watched + tamper.watched_length)
		tamper.touched = 1;
	user_context->uc_mcontext.gregs[REG_EFL] |= TRAP_FLAG;
}

static void tamper_on_trap(int signal_number, siginfo_t *info, void *context)
{
	ucontext_t *user_context = context;

	(void)signal_number;
	(void)info;
	user_context->uc_mcontext.gregs[REG_EFL] &= ~TRAP_FLAG;
	if (!tamper.armed)
		return;
	if (tamper.touched) {
		memcpy(tamper.field, &tamper.value, sizeof(tamper.value));
		tamper.struck = 1;
		tamper.armed = 0;
		return;
	}
	mprotect(tamper.page, tamper.page_size, PROT_NONE);
}
#endif

int fake_ring_tamper(struct fake_ring *fake, uint32_t watched_offset, uint32_t watched_length,
		     uint32_t field_offset, uint32_t value)
{
#if defined(__x86_64__)
	struct sigaction action = { .sa_flags = SA_SIGINFO };
	size_t page_size = (size_t)sysconf(_SC_PAGESIZE);
	uint8_t *page = fake->map + (watched_offset & ~(page_size - 1));

	if (page != fake->map + (field_offset & ~(page_size - 1)))
		return -EINVAL;
	tamper.page = page;
	tamper.page_size = page_size;
	tamper.watched = fake->map + watched_offset;
	tamper.watched_length = watched_length;
	tamper.field = fake->map + field_offset;
	tamper.value = value;
	tamper.touched = 0;
	tamper.struck = 0;
	sigemptyset(&action.sa_mask);
	action.sa_sigaction = tamper_on_segv;
	sigaction(SIGSEGV, &action, &tamper.previous_segv);
	action.sa_sigaction = tamper_on_trap;
	sigaction(SIGTRAP, &action, &tamper.previous_trap);
	tamper.armed = 1;
	if (mprotect(page, page_size, PROT_NONE) < 0)
		return -errno;
	return 0;
#else
	(void)fake;
	(void)watched_offset;
	(void)watched_length;
	(void)field_offset;
	(void)value;
	return -EOPNOTSUPP;
#endif
}

bool fake_ring_untamper(struct fake_ring *fake)
{
	(void)fake;
	tamper.armed = 0;
	mprotect(tamper.page, tamper.page_size, PROT_READ | PROT_WRITE);
	sigaction(SIGSEGV, &tamper.previous_segv, NULL);
	sigaction(SIGTRAP, &tamper.previous_trap, NULL);
	return tamper.struck;
}
