/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scsi_gate.c: the per-device write gate. Ordinary writes share it; a
 * COMPARE AND WRITE holds it alone (SBC-3 5.2: its read, compare and
 * write are one atomic operation for every other command that writes).
 * Waiting requests queue in arrival order, so a compare-and-write is not
 * starved by a stream of writes, and writes queued behind it keep their
 * order.
 *
 * Lock order: gate_lock is a leaf; waiting commands are started after it
 * is released.
 */
#include "tcmu_internal.h"

static bool may_start(const struct scsi_device_state *state, bool exclusive)
{
	if (state->exclusive_in_flight)
		return false;
	return !exclusive || state->writes_in_flight == 0;
}

static bool is_exclusive(const struct tcmu_request *req)
{
	return scsi_command_of(req)->flags & SCSI_COMMAND_EXCLUSIVE;
}

static void take(struct scsi_device_state *state, bool exclusive)
{
	if (exclusive)
		state->exclusive_in_flight = true;
	else
		state->writes_in_flight++;
}

bool scsi_gate_enter(struct tcmu_request *req, bool exclusive)
{
	struct scsi_device_state *state = &req->dev->scsi;

	pthread_mutex_lock(&state->gate_lock);
	if (!state->gate_waiting_head && may_start(state, exclusive)) {
		take(state, exclusive);
		pthread_mutex_unlock(&state->gate_lock);
		return true;
	}
	req->scsi_private = NULL;
	if (state->gate_waiting_tail)
		state->gate_waiting_tail->scsi_private = req;
	else
		state->gate_waiting_head = req;
	state->gate_waiting_tail = req;
	pthread_mutex_unlock(&state->gate_lock);
	return false;
}

void scsi_gate_leave(struct tcmu_device *dev, bool exclusive)
{
	struct scsi_device_state *state = &dev->scsi;
	struct tcmu_request *ready_head = NULL, *ready_tail = NULL;

	pthread_mutex_lock(&state->gate_lock);
	if (exclusive)
		state->exclusive_in_flight = false;
	else
		state->writes_in_flight--;
	while (state->gate_waiting_head &&
	       may_start(state, is_exclusive(state->gate_waiting_head))) {
		struct tcmu_request *req = state->gate_waiting_head;

		state->gate_waiting_head = req->scsi_private;
		if (!state->gate_waiting_head)
			state->gate_waiting_tail = NULL;
		take(state, is_exclusive(req));
		req->scsi_private = NULL;
		if (ready_tail)
			ready_tail->scsi_private = req;
		else
			ready_head = req;
		ready_tail = req;
	}
	pthread_mutex_unlock(&state->gate_lock);

	while (ready_head) {
		struct tcmu_request *req = ready_head;

		ready_head = req->scsi_private;
		req->scsi_private = NULL;
		scsi_command_of(req)->execute(req);
	}
}
