#!/usr/bin/env python3
"""Where a QD1 command's time goes, from BENCH_PROFILE=trace's tracepoints.

bench/guest_profile.sh records, while fio runs one command at a time on a
disk, the disk's requests issued and completed (block_rq_issue/complete),
the syscalls of the daemon's and fio's threads, the scheduler's switches and
wake-ups, work items, rescheduling IPIs and io_uring's hand-offs. This
splits each command, from its issue to the next one's, into steps:

  issue -> daemon      the kernel queues it on the ring (tcm_loop's and the
                       target's work) and the daemon finds it: polling, or
                       woken from epoll_wait (share "woken")
  daemon -> I/O call   the daemon's user code up to its preadv/pwritev or
                       io_uring_enter
  I/O call             that syscall (the data copy; a submission for io_uring)
  I/O call -> kick     up to the write that tells the kernel of the
                       completion (for io_uring: waiting for the completion)
  kick -> complete     the kernel completes the command (the write, then the
                       target's completion work) up to the block layer
  complete -> issue    fio takes the completion and issues the next one

For the kernel's backstores only the last step and issue -> complete exist.
Medians over the commands traced; tracepoints cost a few µs each under TCG,
so the traced cycle is longer than fio's untraced latency. At any queue
depth it also counts the syscalls of the daemon's busiest thread (the ring
thread) per command completed, by kind (I/O calls, kicks: one per batch,
epoll_wait: one per sleep, others), with the median µs of each.

usage: trace_profile.py TRACE_FILE...   (prints Markdown tables)
"""
import os
import re
import statistics
import sys
from collections import Counter

LINE = re.compile(r"^\s*(?P<comm>.*?)-(?P<pid>\d+)\s+\[(?P<cpu>\d+)\]\s+(?:\S+\s+)?"
                  r"(?P<ts>\d+\.\d+):\s+(?P<event>\w+):\s?(?P<rest>.*)$")
NR = re.compile(r"NR (\d+)")
# x86-64 syscall numbers.
IO_CALLS = {17, 18, 19, 20, 295, 296, 327, 328, 426}  # pread64 pwrite64 readv writev preadv pwritev preadv2 pwritev2 io_uring_enter
EPOLL_WAITS = {232, 281, 441}  # epoll_wait, epoll_pwait, epoll_pwait2
WRITE = 1
STEPS = ["issue -> daemon", "daemon -> I/O call", "I/O call", "I/O call -> kick",
         "kick -> complete", "complete -> issue"]


def parse(path):
    """Events as (time µs, pid, event, rest), and the daemon's thread ids."""
    events, daemon = [], set()
    with open(path, errors="replace") as stream:
        for line in stream:
            if line.startswith("# daemon threads:"):
                daemon = {int(word) for word in line.split(":", 1)[1].split()}
                continue
            match = LINE.match(line)
            if match:
                events.append((float(match["ts"]) * 1e6, int(match["pid"]), match["event"],
                               match["rest"]))
    return events, daemon


def first(events, start, end, test):
    for event in events[start:end]:
        if test(event):
            return event
    return None


def nr_of(event):
    match = NR.search(event[3])
    return int(match.group(1)) if match else -1


def wakes(event, pids):
    if event[2] != "sched_wakeup":
        return False
    match = re.search(r"pid=(\d+)", event[3])
    return bool(match) and int(match.group(1)) in pids


def analyse(path):
    events, daemon = parse(path)
    issues = [i for i, event in enumerate(events) if event[2] == "block_rq_issue"]
    steps = {step: [] for step in STEPS}
    cycles, issue_to_complete = [], []
    woken = commands = 0
    per_cycle = Counter()
    work = Counter()
    for this, following in zip(issues, issues[1:]):
        done = first(events, this, following, lambda e: e[2] == "block_rq_complete")
        if not done:
            continue
        commands += 1
        start, end = events[this][0], events[following][0]
        cycles.append(end - start)
        issue_to_complete.append(done[0] - start)
        steps["complete -> issue"].append(end - done[0])
        for event in events[this:following]:
            if event[2] in ("sched_switch", "sched_wakeup", "reschedule_entry",
                            "io_uring_queue_async_work", "workqueue_execute_start"):
                per_cycle[event[2]] += 1
            if event[2] == "workqueue_execute_start":
                work[event[3].rsplit("function ", 1)[-1]] += 1
        if not daemon:
            continue
        window = range(this, following)
        pick = io_enter = io_exit = kick = None
        for i in window:
            event = events[i]
            if event[1] not in daemon or event[2] not in ("sys_enter", "sys_exit"):
                continue
            nr = nr_of(event)
            if pick is None:
                if (event[2] == "sys_exit" and nr in EPOLL_WAITS) or \
                   (event[2] == "sys_enter" and nr in IO_CALLS):
                    pick = event
                else:
                    continue
            if io_enter is None and event[2] == "sys_enter" and nr in IO_CALLS:
                io_enter = event
            elif io_enter and io_exit is None and event[2] == "sys_exit" and nr in IO_CALLS:
                io_exit = event
            elif io_exit and event[2] == "sys_enter" and nr == WRITE:
                kick = event
                break
        if not (pick and io_enter and io_exit and kick):
            continue
        if any(wakes(event, daemon) for event in events[this:events.index(pick, this)]):
            woken += 1
        steps["issue -> daemon"].append(pick[0] - start)
        steps["daemon -> I/O call"].append(io_enter[0] - pick[0])
        steps["I/O call"].append(io_exit[0] - io_enter[0])
        steps["I/O call -> kick"].append(kick[0] - io_exit[0])
        steps["kick -> complete"].append(done[0] - kick[0])
    return {
        "commands": commands,
        "cycle": statistics.median(cycles) if cycles else None,
        "issue -> complete": statistics.median(issue_to_complete) if cycles else None,
        "steps": {step: statistics.median(values) if values else None
                  for step, values in steps.items()},
        "split": len(steps["issue -> daemon"]),
        "woken": woken,
        "per_cycle": {name: count / commands for name, count in per_cycle.items()} if commands else {},
        "work": [name for name, _ in work.most_common(3)],
    }


def thread_time(path):
    """The busiest daemon thread's calls per completed command and their median µs."""
    events, daemon = parse(path)
    if not daemon or not events:
        return None
    calls = Counter(event[1] for event in events
                    if event[1] in daemon and event[2] == "sys_enter")
    if not calls:
        return None
    ring = calls.most_common(1)[0][0]
    completed = sum(1 for event in events if event[2] == "block_rq_complete")
    durations = {what: [] for what in THREAD_COLUMNS}
    entered = None
    for event in events:
        if event[1] != ring or event[2] not in ("sys_enter", "sys_exit"):
            continue
        if event[2] == "sys_enter":
            entered = (event[0], nr_of(event))
            continue
        if not entered or entered[1] != nr_of(event):
            continue
        nr = entered[1]
        what = ("I/O calls" if nr in IO_CALLS else "kicks" if nr == WRITE
                else "epoll_wait" if nr in EPOLL_WAITS else "other syscalls")
        durations[what].append(event[0] - entered[0])
        entered = None
    return {"completed": completed, "span": events[-1][0] - events[0][0],
            "per_command": {what: len(values) / completed if completed else 0
                            for what, values in durations.items()},
            "median": {what: statistics.median(values) if values else None
                       for what, values in durations.items()}}


# Medians, not sums: a vCPU that the loaded host stops for 100 ms inside one
# call would dominate a sum.
THREAD_COLUMNS = ["I/O calls", "kicks", "epoll_wait", "other syscalls"]


def thread_section(paths):
    """The header and rows of the ring thread's table."""
    header = (["kind, job", "commands", "IOPS (traced)"] +
              [f"{what} per command (median µs)" for what in THREAD_COLUMNS])
    rows = []
    for path in paths:
        name = os.path.basename(path)[len("trace."):-len(".txt")]
        result = thread_time(path)
        if not result or not result["completed"]:
            continue
        rows.append([name.replace(".", ", "), str(result["completed"]),
                     f"{result['completed'] / result['span'] * 1e6:.0f}"] +
                    [f"{result['per_command'][what]:.2f} ({cell(result['median'][what])})"
                     for what in THREAD_COLUMNS])
    return header, rows


def cell(value):
    return "–" if value is None else f"{value:.0f}"


def trace_section(paths):
    """The header and rows of the QD1 steps' table: one row per traced kind and job."""
    header = (["kind, job", "commands (split)", "cycle µs", "issue -> complete"] + STEPS +
              ["woken", "ctx switches", "wake-ups", "IPIs", "work items", "io-wq hand-offs",
               "work functions"])
    rows = []
    for path in paths:
        name = os.path.basename(path)[len("trace."):-len(".txt")]
        if not name.endswith("-qd1"):
            continue
        result = analyse(path)
        if not result["commands"]:
            continue
        counts = result["per_cycle"]
        split = result["split"]
        rows.append([name.replace(".", ", "), f"{result['commands']} ({split})",
                     cell(result["cycle"]), cell(result["issue -> complete"])] +
                    [cell(result["steps"][step]) for step in STEPS] +
                    [f"{result['woken'] / split:.2f}" if split else "–"] +
                    [f"{counts.get(event, 0):.2f}" for event in
                     ("sched_switch", "sched_wakeup", "reschedule_entry",
                      "workqueue_execute_start", "io_uring_queue_async_work")] +
                    [", ".join(result["work"])])
    return header, rows


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    from report import table
    print(table(*trace_section(sys.argv[1:])))
    print()
    print(table(*thread_section(sys.argv[1:])))
