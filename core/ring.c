/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ring.c: the TCMU command ring (mailbox version 2).
 *
 * Ownership. The kernel produces entries and moves mailbox->cmd_head; we
 * read cmd_head with an acquire load so that the entry it covers is
 * visible. We own mailbox->cmd_tail and store it with release ordering
 * after the responses of every entry it passes were written, so that the
 * kernel sees them when it sees the tail. `consumed` is our private read
 * position: entries between cmd_tail and consumed are in flight.
 *
 * Completion order. Commands may finish in any order (handlers may use
 * threads). Each response is written into the command's own entry, and the
 * tail only moves over a run of finished entries, oldest first; PAD and TMR
 * entries need no answer and are passed with their neighbours. The kernel
 * walks entries from its old tail to the new one and finds each command by
 * the cmd_id in the entry, so this works with and without CAP_OOOC.
 *
 * Security. The kernel is trusted, but a corrupt ring must not make us
 * read or write outside the map: every length and offset in an entry is
 * checked against the ring and the map before it is used. An entry whose
 * own length is impossible leaves no way to find the next one, so the
 * ring is marked broken and nothing more is read from it; a command whose
 * CDB or data offsets are impossible is answered with CHECK CONDITION.
 *
 * Locking. ring->lock protects the in-flight list, the free list, the
 * tail and `consumed` (written only by the serving thread, read under the
 * lock by completing threads). Handlers are called without it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tcmu_internal.h"

#define REQUEST_POOL_CHUNK 64

int ring_init(struct tcmu_ring *ring, struct tcmu_device *dev, void *map, size_t map_size,
	      ring_dispatch_fn dispatch, ring_kick_fn kick)
{
	struct tcmu_mailbox *mailbox = map;
	pthread_condattr_t condattr;
	uint32_t cmdr_off, cmdr_size, tail;

	memset(ring, 0, sizeof(*ring));
	if (map_size < sizeof(*mailbox))
		return -EINVAL;
	if (mailbox->version != TCMU_MAILBOX_VERSION) {
		tcmu_dev_err(dev, "mailbox version %u, expected %u", mailbox->version,
			     TCMU_MAILBOX_VERSION);
		return -EPROTO;
	}
	cmdr_off = mailbox->cmdr_off;
	cmdr_size = mailbox->cmdr_size;
	tail = __atomic_load_n(&mailbox->cmd_tail, __ATOMIC_ACQUIRE);
	if (cmdr_off < sizeof(*mailbox) || cmdr_size == 0 || cmdr_size % TCMU_OP_ALIGN_SIZE ||
	    cmdr_off > map_size || cmdr_size > map_size - cmdr_off || tail >= cmdr_size) {
		tcmu_dev_err(dev, "mailbox describes a command ring outside the map "
			     "(offset %u, size %u, tail %u, map %zu)", cmdr_off, cmdr_size, tail,
			     map_size);
		return -EPROTO;
	}

	ring->dev = dev;
	ring->map = map;
	ring->map_size = map_size;
	ring->mailbox = mailbox;
	ring->cmdr = (uint8_t *)map + cmdr_off;
	ring->cmdr_size = cmdr_size;
	ring->consumed = tail;
	ring->dispatch = dispatch;
	ring->kick = kick;
	pthread_mutex_init(&ring->lock, NULL);
	pthread_condattr_init(&condattr);
	pthread_condattr_setclock(&condattr, CLOCK_MONOTONIC);
	pthread_cond_init(&ring->drained, &condattr);
	pthread_condattr_destroy(&condattr);
	return 0;
}

void ring_destroy(struct tcmu_ring *ring)
{
	size_t i;

	if (!ring->mailbox)
		return;
	for (i = 0; i < ring->pool_chunk_count; i++) {
		struct tcmu_request *chunk = ring->pool_chunks[i];
		size_t j;

		for (j = 0; j < REQUEST_POOL_CHUNK; j++)
			free(chunk[j].iov);
		free(chunk);
	}
	free(ring->pool_chunks);
	pthread_cond_destroy(&ring->drained);
	pthread_mutex_destroy(&ring->lock);
	memset(ring, 0, sizeof(*ring));
}

/* The pool only grows, so after warm-up taking a request allocates nothing. */
static struct tcmu_request *request_take_locked(struct tcmu_ring *ring)
{
	struct tcmu_request *req, *chunk;
	struct iovec *iov;
	uint32_t iov_capacity;
	void **chunks;
	size_t i;

	if (!ring->free_list) {
		chunk = calloc(REQUEST_POOL_CHUNK, sizeof(*chunk));
		if (!chunk)
			return NULL;
		chunks = realloc(ring->pool_chunks, (ring->pool_chunk_count + 1) * sizeof(*chunks));
		if (!chunks) {
			free(chunk);
			return NULL;
		}
		ring->pool_chunks = chunks;
		ring->pool_chunks[ring->pool_chunk_count++] = chunk;
		for (i = 0; i < REQUEST_POOL_CHUNK; i++) {
			chunk[i].next = ring->free_list;
			ring->free_list = &chunk[i];
		}
	}
	req = ring->free_list;
	ring->free_list = req->next;
	iov = req->iov;
	iov_capacity = req->iov_capacity;
	memset(req, 0, sizeof(*req));
	req->iov = iov;
	req->iov_capacity = iov_capacity;
	return req;
}

/* Moves the tail over finished work. Returns true when it moved. */
static bool tail_advance_locked(struct tcmu_ring *ring)
{
	uint32_t tail = __atomic_load_n(&ring->mailbox->cmd_tail, __ATOMIC_RELAXED);
	uint32_t new_tail = tail;
	struct tcmu_request *req;

	while ((req = ring->in_flight_head) && req->done) {
		new_tail = req->end_offset;
		ring->in_flight_head = req->next;
		if (!ring->in_flight_head)
			ring->in_flight_tail = NULL;
		req->next = ring->free_list;
		ring->free_list = req;
		ring->in_flight--;
	}
	/* Nothing in flight: PAD and TMR entries up to `consumed` are passed too. */
	if (!ring->in_flight_head)
		new_tail = ring->consumed;
	if (new_tail == tail)
		return false;
	__atomic_store_n(&ring->mailbox->cmd_tail, new_tail, __ATOMIC_RELEASE);
	return true;
}

/* Called with the lock held after the tail moved: kick now or at batch end. */
static bool kick_now_locked(struct tcmu_ring *ring)
{
	if (ring->batch_depth > 0 && pthread_equal(ring->serving_thread, pthread_self())) {
		ring->kick_pending = true;
		return false;
	}
	return true;
}

void ring_batch_begin(struct tcmu_ring *ring)
{
	pthread_mutex_lock(&ring->lock);
	if (ring->batch_depth++ == 0)
		ring->serving_thread = pthread_self();
	pthread_mutex_unlock(&ring->lock);
}

void ring_batch_end(struct tcmu_ring *ring)
{
	bool kick = false;

	pthread_mutex_lock(&ring->lock);
	if (--ring->batch_depth == 0) {
		kick = ring->kick_pending;
		ring->kick_pending = false;
	}
	/* Under the lock, as in ring_complete_request(). */
	if (kick)
		ring->kick(ring);
	pthread_mutex_unlock(&ring->lock);
}

void ring_complete_request(struct tcmu_request *req, uint8_t scsi_status,
			   const uint8_t *sense, size_t sense_length, uint32_t read_length)
{
	struct tcmu_ring *ring = req->ring;
	struct tcmu_cmd_entry *entry = req->entry;
	uint64_t data_length = req->data_length;
	ring_drained_fn on_drained = NULL;
	bool kick = false;

	/* The response area overlaps the request area: nothing of it is read after this. */
	entry->rsp.scsi_status = scsi_status;
	if (sense_length > TCMU_SENSE_BUFFERSIZE)
		sense_length = TCMU_SENSE_BUFFERSIZE;
	memset(entry->rsp.sense_buffer, 0, TCMU_SENSE_BUFFERSIZE);
	if (sense_length)
		memcpy(entry->rsp.sense_buffer, sense, sense_length);
	/*
	 * A short data-in transfer must be reported, or the initiator takes
	 * stale buffer bytes for data. Only data-in commands pass a length:
	 * the kernel would report a residual for a write too.
	 */
	if (scsi_status == 0 && read_length > 0 && read_length < data_length &&
	    (ring->mailbox->flags & TCMU_MAILBOX_FLAG_CAP_READ_LEN)) {
		entry->rsp.read_len = read_length;
		entry->hdr.uflags |= TCMU_UFLAG_READ_LEN;
	}

	pthread_mutex_lock(&ring->lock);
	stats_record_completion(&ring->dev->stats, req, scsi_status, sense, sense_length);
	req->done = true;
	if (tail_advance_locked(ring))
		kick = kick_now_locked(ring);
	/*
	 * Kicked under the lock: once in_flight is 0 a detach may free the
	 * ring as soon as it gets the lock, so nothing of it is touched after
	 * the unlock (but by the one that calls on_drained, to which it then
	 * belongs).
	 */
	if (kick)
		ring->kick(ring);
	if (ring->in_flight == 0) {
		pthread_cond_broadcast(&ring->drained);
		on_drained = ring->on_drained;
		ring->on_drained = NULL;
	}
	pthread_mutex_unlock(&ring->lock);
	if (on_drained)
		on_drained(ring);
}

/*
 * Copies bytes of an entry out of the shared map. The map is writable by
 * others, so every field is read from it once, into a local, and only the
 * local is used: the barrier keeps the compiler from reading the map again
 * in place of the copy (a check and a use would then see two values).
 */
static void copy_from_shared(void *to, const void *from, size_t length)
{
	memcpy(to, from, length);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

/*
 * Fills req from a CMD entry after checking every offset. Returns 0, or
 * -EPROTO when the entry points outside the map, or -ENOMEM; the command is
 * then answered with CHECK CONDITION.
 */
static int request_parse(struct tcmu_ring *ring, struct tcmu_request *req,
			 struct tcmu_cmd_entry *entry, uint32_t length)
{
	size_t iov_offset = offsetof(struct tcmu_cmd_entry, req.iov);
	uint64_t iov_total, cdb_offset, data_length = 0;
	struct tcmu_cmd_entry header;
	uint32_t cdb_length, iov_count, i;
	size_t cdb_available;

	/* The command's fields, read once (length covers them: a CMD entry holds a response). */
	copy_from_shared(&header, entry, iov_offset);
	iov_count = header.req.iov_cnt;
	iov_total = (uint64_t)iov_count + header.req.iov_bidi_cnt + header.req.iov_dif_cnt;
	if (iov_offset > length || iov_total > (length - iov_offset) / sizeof(struct iovec))
		return -EPROTO;

	cdb_offset = header.req.cdb_off;
	if (cdb_offset >= ring->map_size)
		return -EPROTO;
	cdb_available = ring->map_size - cdb_offset;
	if (cdb_available > TCMU_MAX_CDB_LENGTH)
		cdb_available = TCMU_MAX_CDB_LENGTH;
	copy_from_shared(req->cdb, (const uint8_t *)ring->map + cdb_offset, cdb_available);
	cdb_length = scsi_cdb_length(req->cdb, cdb_available);
	if (cdb_length > cdb_available)
		return -EPROTO;
	memset(req->cdb + cdb_length, 0, sizeof(req->cdb) - cdb_length);
	req->cdb_length = cdb_length;

	if (iov_count > req->iov_capacity) {
		struct iovec *grown = realloc(req->iov, iov_count * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		req->iov = grown;
		req->iov_capacity = iov_count;
	}
	for (i = 0; i < iov_count; i++) {
		struct iovec iov;
		uint64_t base;

		copy_from_shared(&iov, (uint8_t *)entry + iov_offset + i * sizeof(iov), sizeof(iov));
		base = (uint64_t)(uintptr_t)iov.iov_base;
		if (base > ring->map_size || iov.iov_len > ring->map_size - base)
			return -EPROTO;
		req->iov[i].iov_base = (uint8_t *)ring->map + base;
		req->iov[i].iov_len = iov.iov_len;
		data_length += iov.iov_len;
	}
	req->iov_count = iov_count;
	req->data_length = data_length;
	return 0;
}

static void ring_mark_broken(struct tcmu_ring *ring, const char *why, uint32_t offset,
			     uint32_t length)
{
	ring->broken = true;
	tcmu_dev_err(ring->dev, "command ring corrupt (%s at offset %u, length %u); "
		     "the device stops serving commands", why, offset, length);
}

/* An entry that needs no answer (PAD, TMR): consumed, and passed by the tail in turn. */
static void ring_pass_entry(struct tcmu_ring *ring, uint32_t next)
{
	pthread_mutex_lock(&ring->lock);
	ring->consumed = next;
	if (tail_advance_locked(ring))
		ring->kick_pending = true;
	pthread_mutex_unlock(&ring->lock);
}

int ring_process(struct tcmu_ring *ring)
{
	uint32_t cmdr_size = ring->cmdr_size, clocked_head = ring->consumed;
	uint64_t arrival_ns = 0;
	struct tcmu_request *req;
	int dispatched = 0;

	if (ring->broken)
		return -EPROTO;

	ring_batch_begin(ring);

	for (;;) {
		uint32_t head = __atomic_load_n(&ring->mailbox->cmd_head, __ATOMIC_ACQUIRE);
		uint32_t offset = ring->consumed;
		struct tcmu_cmd_entry_hdr header;
		struct tcmu_cmd_entry *entry;
		uint32_t len_op, length, available, next;
		int parse_result;

		if (head == offset)
			break;
		/*
		 * One clock read per new head, not per entry: the entries it
		 * covers were all there when it was loaded, and a clock read
		 * can be a syscall (clock_gettime under the HPET).
		 */
		if (head != clocked_head) {
			arrival_ns = monotonic_ns();
			clocked_head = head;
		}
		if (head >= cmdr_size || head % TCMU_OP_ALIGN_SIZE) {
			ring_mark_broken(ring, "head outside the ring", head, 0);
			break;
		}
		available = (head + cmdr_size - offset) % cmdr_size;
		entry = (struct tcmu_cmd_entry *)(ring->cmdr + offset);
		if (available < sizeof(entry->hdr) || cmdr_size - offset < sizeof(entry->hdr)) {
			ring_mark_broken(ring, "truncated entry header", offset, available);
			break;
		}
		/* Published by the acquire load of the head. */
		copy_from_shared(&header, &entry->hdr, sizeof(header));
		len_op = header.len_op;
		length = tcmu_hdr_get_len(len_op);
		if (length < sizeof(entry->hdr) || length % TCMU_OP_ALIGN_SIZE ||
		    length > available || length > cmdr_size - offset) {
			ring_mark_broken(ring, "impossible entry length", offset, length);
			break;
		}
		next = (offset + length) % cmdr_size;

		switch (tcmu_hdr_get_op(len_op)) {
		case TCMU_OP_CMD:
			/* The kernel makes room for the response; without it we would write into the next entry. */
			if (length < sizeof(struct tcmu_cmd_entry)) {
				ring_mark_broken(ring, "command entry shorter than its response",
						 offset, length);
				goto out;
			}
			break;
		case TCMU_OP_TMR:
			tcmu_dev_dbg(ring->dev, "task management notice, type %u",
				     ((struct tcmu_tmr_entry *)entry)->tmr_type);
			ring_pass_entry(ring, next);
			continue;
		case TCMU_OP_PAD:
			ring_pass_entry(ring, next);
			continue;
		default:
			entry->hdr.uflags |= TCMU_UFLAG_UNKNOWN_OP;
			tcmu_dev_warn(ring->dev, "unknown ring entry opcode %u skipped",
				      tcmu_hdr_get_op(len_op));
			ring_pass_entry(ring, next);
			continue;
		}

		pthread_mutex_lock(&ring->lock);
		req = request_take_locked(ring);
		if (!req) {
			/* The entry stays in the ring; the worker retries it soon (ring_starved). */
			pthread_mutex_unlock(&ring->lock);
			if (!ring->starved)
				tcmu_dev_err(ring->dev, "no memory for a request; command left queued "
					     "and retried until there is");
			ring->starved = true;
			break;
		}
		if (ring->starved)
			tcmu_dev_info(ring->dev, "memory for requests again; serving the ring");
		ring->starved = false;
		req->dev = ring->dev;
		req->ring = ring;
		req->entry = entry;
		req->cmd_id = header.cmd_id;
		req->end_offset = next;
		req->arrival_ns = arrival_ns;
		if (ring->in_flight_tail)
			ring->in_flight_tail->next = req;
		else
			ring->in_flight_head = req;
		ring->in_flight_tail = req;
		ring->in_flight++;
		if (ring->in_flight > ring->dev->stats.in_flight_max)
			ring->dev->stats.in_flight_max = ring->in_flight;
		ring->consumed = next;
		pthread_mutex_unlock(&ring->lock);

		parse_result = request_parse(ring, req, entry, length);
		dispatched++;
		if (parse_result < 0) {
			tcmu_dev_err(ring->dev, "command %u at ring offset %u: %s; answered with "
				     "HARDWARE ERROR", req->cmd_id, offset,
				     parse_result == -ENOMEM ? "no memory for its iovecs"
							     : "it points outside the map");
			scsi_finish_internal_failure(req);
			continue;
		}
		ring->dispatch(req);
	}

out:
	ring_batch_end(ring);
	return ring->broken ? -EPROTO : dispatched;
}

bool ring_starved(const struct tcmu_ring *ring)
{
	return ring->starved;
}

bool ring_has_entries(struct tcmu_ring *ring)
{
	/* `consumed` is written only by this, the serving, thread. */
	return !ring->broken &&
	       __atomic_load_n(&ring->mailbox->cmd_head, __ATOMIC_ACQUIRE) != ring->consumed;
}

bool ring_call_when_drained(struct tcmu_ring *ring, ring_drained_fn drained)
{
	bool in_flight;

	pthread_mutex_lock(&ring->lock);
	in_flight = ring->in_flight > 0;
	if (in_flight)
		ring->on_drained = drained;
	pthread_mutex_unlock(&ring->lock);
	return in_flight;
}

unsigned int ring_in_flight(struct tcmu_ring *ring)
{
	unsigned int in_flight;

	pthread_mutex_lock(&ring->lock);
	in_flight = ring->in_flight;
	pthread_mutex_unlock(&ring->lock);
	return in_flight;
}

int ring_wait_drained(struct tcmu_ring *ring, int timeout_ms)
{
	uint64_t deadline_ns = monotonic_ns() + (uint64_t)timeout_ms * 1000000;
	struct timespec deadline = {
		.tv_sec = (time_t)(deadline_ns / 1000000000),
		.tv_nsec = (long)(deadline_ns % 1000000000),
	};
	int result = 0;

	pthread_mutex_lock(&ring->lock);
	while (ring->in_flight > 0 && result == 0)
		result = pthread_cond_timedwait(&ring->drained, &ring->lock, &deadline);
	pthread_mutex_unlock(&ring->lock);
	return result == ETIMEDOUT ? -ETIMEDOUT : 0;
}
