/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rbd_lba_status.c: GET LBA STATUS of an rbd device, from the image's
 * allocation map (rbd_diff_iterate2, from the object map when the image
 * has fast-diff). librbd has no asynchronous form of it, and while the
 * cluster is away it waits up to rados_osd_op_timeout: on a ring worker
 * that would stall every device the worker serves. So the queries run on
 * one handler-wide thread (rbd_helper.c), in order, and each answer goes
 * back to the device's ring thread through the event fd its librbd
 * completions use (rbd_io.c), which completes the command there. The query
 * is one of the device's requests in flight, so its command gets BUSY at
 * the device's deadline like the others while the cluster is away.
 */
#include "rbd.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

/* One query looks at most this far ahead (a short answer is allowed). */
#define RBD_LBA_STATUS_SPAN (256ull << 20)

static struct rbd_helper query_helper = RBD_HELPER_INITIALIZER;

struct rbd_extent_query {
	uint64_t position;	/* end of the run known so far */
	uint64_t end;		/* first byte not asked about */
	bool mapped;		/* set by the first extent with data at the start */
};

/* rbd_diff_iterate2 reports the extents that hold data, in order. */
static int rbd_extent_seen(uint64_t offset, size_t length, int exists, void *argument)
{
	struct rbd_extent_query *query = argument;

	if (!exists || offset + length <= query->position)
		return 0;
	if (offset > query->position) {
		/* A hole: it ends the mapped run, or is the answer up to offset. */
		if (!query->mapped)
			query->position = offset < query->end ? offset : query->end;
		return -ECANCELED;
	}
	query->mapped = true;
	query->position = offset + length < query->end ? offset + length : query->end;
	return 0;
}

/* On the helper thread: the answer in job->mapped and job->same_length, or job->result. */
static void rbd_lba_status_run(struct rbd_helper_job *helper_job)
{
	struct rbd_lba_status_job *job = (struct rbd_lba_status_job *)helper_job;
	struct rbd_state *state = helper_job->state;
	uint64_t length = job->length < RBD_LBA_STATUS_SPAN ? job->length : RBD_LBA_STATUS_SPAN;
	struct rbd_extent_query query = { .position = job->offset, .end = job->offset + length };
	int result;

	/*
	 * Its deadline answered it while queries before it waited for the
	 * cluster: not asked, so that the queue drains at once when the
	 * cluster is back (its result, like a late one, is dropped).
	 */
	if (job->answered(job)) {
		job->result = -ETIMEDOUT;
		job->done(job);
		return;
	}
	/* Whole objects: from the object map when the image has fast-diff. */
	result = rbd_diff_iterate2(state->image, NULL, job->offset, length, 1, 1,
				   rbd_extent_seen, &query);
	if (result == -ECANCELED)
		result = 0;
	if (query.position == job->offset)	/* no data at all */
		query.position = query.end;
	job->result = result;
	job->mapped = query.mapped;
	job->same_length = query.position - job->offset;
	job->done(job);
}

int rbd_lba_status_submit(struct rbd_lba_status_job *job, struct rbd_state *state)
{
	job->helper.state = state;
	job->helper.run = rbd_lba_status_run;
	return rbd_helper_submit(&query_helper, &job->helper);
}

void rbd_lba_status_forget(struct rbd_state *state)
{
	rbd_helper_forget(&query_helper, state);
}

void rbd_lba_status_stop(void)
{
	rbd_helper_stop(&query_helper);
}
