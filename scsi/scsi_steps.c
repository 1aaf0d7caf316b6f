/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scsi_steps.c: runs a command that needs several handler ops in a row
 * (UNMAP's descriptors, WRITE SAME's chunks, COMPARE AND WRITE's read
 * then write). Handlers may complete an op before the call returns or
 * later from another thread; a hand-off counter decides which side goes
 * on: whoever arrives second. So the loop never recurses per op and no
 * op result is lost or handled twice.
 *
 * On a ring worker the loop gives way after every op: the next op is a
 * task the worker runs once it has served its other rings and control
 * requests, so a command of many ops (a VERIFY of the whole medium) delays
 * them by one op, not by the whole command; the task is a batch of the
 * device, so an asynchronous handler submits the op in its batch_done.
 * Ops completed on a handler's own thread go on there, as before.
 */
#include <stddef.h>

#include "scsi_internal.h"

static void finish(struct scsi_steps *steps)
{
	struct tcmu_request *req = steps->req;
	struct scsi_outcome outcome = steps->outcome;
	uint32_t read_length = steps->read_length;
	bool gated = steps->gated, exclusive = steps->exclusive;

	steps->done(steps);
	if (gated)
		scsi_gate_leave(req->dev, exclusive);
	scsi_finish(req, &outcome, outcome.status == SCSI_STATUS_GOOD ? read_length : 0);
}

static void loop(struct scsi_steps *steps, bool have_result);

static void resume_in_batch(struct tcmu_device *dev, void *argument)
{
	(void)dev;
	loop(argument, false);
}

static void resume(struct worker_task *task)
{
	struct scsi_steps *steps = (struct scsi_steps *)((char *)task -
							 offsetof(struct scsi_steps, resume));

	device_run_in_batch(steps->req->dev, resume_in_batch, steps);
}

/* have_result: an op completed and steps->result holds its result. */
static void loop(struct scsi_steps *steps, bool have_result)
{
	for (;;) {
		int result;

		if (have_result) {
			if (!steps->completed(steps, steps->result))
				break;
			steps->resume.run = resume;
			if (worker_defer(&steps->resume))
				return;
		}
		__atomic_store_n(&steps->handoff, 0, __ATOMIC_RELAXED);
		result = steps->issue(steps);
		if (result > 0)
			break;
		if (result < 0) {
			/* Not taken: the same as an op that failed. */
			steps->result = result;
			have_result = true;
			continue;
		}
		if (__atomic_add_fetch(&steps->handoff, 1, __ATOMIC_ACQ_REL) == 1)
			return;	/* the completion goes on */
		have_result = true;
	}
	finish(steps);
}

void scsi_steps_io_done(struct tcmu_request *req, int result)
{
	struct scsi_steps *steps = req->scsi_private;

	steps->result = result;
	if (__atomic_add_fetch(&steps->handoff, 1, __ATOMIC_ACQ_REL) == 1)
		return;	/* the submitter is still in issue() and goes on */
	loop(steps, true);
}

void scsi_steps_run(struct scsi_steps *steps)
{
	steps->req->scsi_private = steps;
	steps->req->io_done = scsi_steps_io_done;
	steps->outcome = scsi_good();
	loop(steps, false);
}
