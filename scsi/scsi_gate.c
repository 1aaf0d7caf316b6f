/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scsi_gate.c: the per-device write gate. Ordinary writes share it; a
 * COMPARE AND WRITE holds it alone (SBC-3 5.2: its read, compare and
 * write are one atomic operation for every other command that writes).
 * Waiting requests queue in arrival order, so a compare-and-write is not
 * starved by a stream of writes, and writes queued behind it keep their
 * order. An EXTENDED COPY that writes another device waits at that
 * device's gate with the same request, so a request holds one gate at a
 * time: it never waits at a gate while holding another.
 *
 * Lock order: gate_lock is a leaf; waiting requests proceed after it is
 * released.
 */
#include "scsi_internal.h"

static bool may_start(const struct scsi_device_state *state, bool exclusive)
{
	if (state->exclusive_in_flight)
		return false;
	return !exclusive || state->writes_in_flight == 0;
}

static void take(struct scsi_device_state *state, bool exclusive)
{
	if (exclusive)
		state->exclusive_in_flight = true;
	else
		state->writes_in_flight++;
}

bool scsi_gate_enter(struct tcmu_device *dev, struct tcmu_request *req, bool exclusive,
		     void (*proceed)(struct tcmu_request *req))
{
	struct scsi_device_state *state = &dev->scsi;
	struct scsi_gate_waiter *waiter = &req->gate_waiter;

	pthread_mutex_lock(&state->gate_lock);
	if (!state->gate_waiting_head && may_start(state, exclusive)) {
		take(state, exclusive);
		pthread_mutex_unlock(&state->gate_lock);
		return true;
	}
	*waiter = (struct scsi_gate_waiter){ .req = req, .exclusive = exclusive,
					     .proceed = proceed };
	if (state->gate_waiting_tail)
		state->gate_waiting_tail->next = waiter;
	else
		state->gate_waiting_head = waiter;
	state->gate_waiting_tail = waiter;
	pthread_mutex_unlock(&state->gate_lock);
	return false;
}

void scsi_gate_leave(struct tcmu_device *dev, bool exclusive)
{
	struct scsi_device_state *state = &dev->scsi;
	struct scsi_gate_waiter *ready_head = NULL, *ready_tail = NULL;

	pthread_mutex_lock(&state->gate_lock);
	if (exclusive)
		state->exclusive_in_flight = false;
	else
		state->writes_in_flight--;
	while (state->gate_waiting_head && may_start(state, state->gate_waiting_head->exclusive)) {
		struct scsi_gate_waiter *waiter = state->gate_waiting_head;

		state->gate_waiting_head = waiter->next;
		if (!state->gate_waiting_head)
			state->gate_waiting_tail = NULL;
		take(state, waiter->exclusive);
		waiter->next = NULL;
		if (ready_tail)
			ready_tail->next = waiter;
		else
			ready_head = waiter;
		ready_tail = waiter;
	}
	pthread_mutex_unlock(&state->gate_lock);

	/* A request may enter another gate from proceed, reusing its waiter: read next first. */
	while (ready_head) {
		struct scsi_gate_waiter *waiter = ready_head;

		ready_head = waiter->next;
		waiter->proceed(waiter->req);
	}
}
