/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stats.c: what every device has done, for operators (tcmu-admin, D-Bus,
 * Prometheus). Commands are counted when they complete, inside the ring
 * lock that completion takes anyway, so counting adds no lock and no
 * atomic operation to the fast path; readers copy the counters under the
 * same lock.
 * Latencies go into histogram.h's log-scale histogram.
 */
#include <string.h>
#include <time.h>

#include "tcmu_internal.h"

static const char *const kind_names[STATS_KIND_COUNT] = {
	[STATS_KIND_READ] = "read",
	[STATS_KIND_WRITE] = "write",
	[STATS_KIND_FLUSH] = "flush",
	[STATS_KIND_UNMAP] = "unmap",
	[STATS_KIND_WRITE_SAME] = "write_same",
	[STATS_KIND_COMPARE_AND_WRITE] = "compare_and_write",
	[STATS_KIND_EXTENDED_COPY] = "extended_copy",
	[STATS_KIND_OTHER] = "other",
};

/* SPC-4 table 27, in the words of Prometheus labels. */
static const char *const sense_key_names[16] = {
	"no_sense", "recovered_error", "not_ready", "medium_error",
	"hardware_error", "illegal_request", "unit_attention", "data_protect",
	"blank_check", "vendor_specific", "copy_aborted", "aborted_command",
	"reserved_0c", "volume_overflow", "miscompare", "completed",
};

static const char *const state_names[] = {
	[TCMU_DEVICE_STATE_OPEN] = "open",
	[TCMU_DEVICE_STATE_RECONNECTING] = "reconnecting",
	[TCMU_DEVICE_STATE_BLOCKLISTED] = "blocklisted",
	[TCMU_DEVICE_STATE_FAILED] = "failed",
};

const char *stats_kind_name(enum stats_kind kind)
{
	return kind_names[kind];
}

const char *stats_sense_key_name(unsigned int sense_key)
{
	return sense_key_names[sense_key & 0xf];
}

const char *stats_state_name(enum tcmu_device_state state)
{
	if ((unsigned int)state >= ARRAY_SIZE(state_names))
		return "unknown";
	return state_names[state];
}

enum stats_kind stats_kind_of_opcode(uint8_t opcode)
{
	switch (opcode) {
	case SCSI_OP_READ_6: case SCSI_OP_READ_10: case SCSI_OP_READ_12: case SCSI_OP_READ_16:
		return STATS_KIND_READ;
	case SCSI_OP_WRITE_6: case SCSI_OP_WRITE_10: case SCSI_OP_WRITE_12: case SCSI_OP_WRITE_16:
	case SCSI_OP_WRITE_AND_VERIFY_10: case SCSI_OP_WRITE_AND_VERIFY_16:
		return STATS_KIND_WRITE;
	case SCSI_OP_SYNCHRONIZE_CACHE_10: case SCSI_OP_SYNCHRONIZE_CACHE_16:
		return STATS_KIND_FLUSH;
	case SCSI_OP_UNMAP:
		return STATS_KIND_UNMAP;
	case SCSI_OP_WRITE_SAME_10: case SCSI_OP_WRITE_SAME_16:
		return STATS_KIND_WRITE_SAME;
	case SCSI_OP_COMPARE_AND_WRITE:
		return STATS_KIND_COMPARE_AND_WRITE;
	case SCSI_OP_EXTENDED_COPY:
		return STATS_KIND_EXTENDED_COPY;
	default:
		return STATS_KIND_OTHER;
	}
}

static uint64_t realtime_us(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return (uint64_t)now.tv_sec * 1000000ULL + (uint64_t)now.tv_nsec / 1000;
}

/* The wall clock time of a monotonic one in the past; 0 stays 0 (never). */
static uint64_t realtime_us_of(uint64_t monotonic, uint64_t now_monotonic, uint64_t now_realtime_us)
{
	uint64_t ago_us;

	if (monotonic == 0)
		return 0;
	ago_us = now_monotonic > monotonic ? (now_monotonic - monotonic) / 1000 : 0;
	return now_realtime_us > ago_us ? now_realtime_us - ago_us : 1;
}

/*
 * Converted when read, not when counted: the completion reads the
 * monotonic clock for the latency anyway, and under a clock source the vDSO
 * cannot read (the HPET of an emulated guest) each clock read is a syscall
 * of microseconds on the fast path.
 */
void stats_wall_clock(struct device_stats *stats)
{
	uint64_t now_monotonic = monotonic_ns(), now_realtime_us = realtime_us();

	stats->last_command_us = realtime_us_of(stats->last_command_ns, now_monotonic,
						now_realtime_us);
	stats->last_error_us = realtime_us_of(stats->last_error_ns, now_monotonic,
					      now_realtime_us);
}

/* The sense key of fixed (70h/71h) or descriptor (72h/73h) sense data. */
static unsigned int sense_key_of(const uint8_t *sense, size_t sense_length)
{
	if (!sense || sense_length < 3)
		return 0;
	if ((sense[0] & 0x7f) >= 0x72)
		return sense[1] & 0xf;
	return sense[2] & 0xf;
}

void stats_record_completion(struct device_stats *stats, const struct tcmu_request *req,
			     uint8_t scsi_status, const uint8_t *sense, size_t sense_length)
{
	struct stats_kind_counters *kind = &stats->kinds[stats_kind_of_opcode(req->cdb[0])];
	uint64_t now_ns = monotonic_ns();
	uint64_t latency_ns = now_ns - req->arrival_ns;

	kind->commands++;
	kind->bytes += req->data_length;
	kind->latency_sum_ns += latency_ns;
	kind->latency_buckets[histogram_bucket_of(latency_ns)]++;
	stats->last_command_ns = now_ns;
	if (scsi_status == SCSI_STATUS_GOOD)
		return;
	if (scsi_status == SCSI_STATUS_CHECK_CONDITION)
		stats->errors_by_sense_key[sense_key_of(sense, sense_length)]++;
	else
		stats->errors_other_status++;
	stats->last_error_ns = now_ns;
}

void stats_snapshot(struct tcmu_device *dev, struct device_stats *ret_stats,
		    uint32_t *ret_in_flight)
{
	pthread_mutex_lock(&dev->ring.lock);
	*ret_stats = dev->stats;
	*ret_in_flight = dev->ring.in_flight;
	pthread_mutex_unlock(&dev->ring.lock);
	stats_wall_clock(ret_stats);
}

void stats_set_state(struct tcmu_device *dev, enum tcmu_device_state state, const char *reason)
{
	bool changed;

	if ((unsigned int)state >= ARRAY_SIZE(state_names))
		return;
	pthread_mutex_lock(&dev->state_lock);
	changed = dev->state != state ||
		  strcmp(dev->state_reason, reason ? reason : "") != 0;
	if (changed) {
		dev->state = state;
		snprintf(dev->state_reason, sizeof(dev->state_reason), "%s", reason ? reason : "");
	}
	pthread_mutex_unlock(&dev->state_lock);
	if (!changed)
		return;
	if (state == TCMU_DEVICE_STATE_OPEN)
		tcmu_dev_info(dev, "state: open%s%s", reason ? ": " : "", reason ? reason : "");
	else
		tcmu_dev_warn(dev, "state: %s%s%s", state_names[state], reason ? ": " : "",
			      reason ? reason : "");
}

enum tcmu_device_state stats_device_state(struct tcmu_device *dev, char *ret_reason,
					  size_t reason_size)
{
	enum tcmu_device_state state;

	pthread_mutex_lock(&dev->state_lock);
	state = dev->state;
	snprintf(ret_reason, reason_size, "%s", dev->state_reason);
	pthread_mutex_unlock(&dev->state_lock);
	return state;
}
