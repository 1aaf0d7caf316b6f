#!/usr/bin/env python3
"""Turn one benchmark run (bench/guest.sh's output directory) into a Markdown
section: for each phase, each figure for each backstore and each ratio of
ours to the backstore it is compared with (alloc to rd_mcp, file to fileio,
on tmpfs and on the slow media; rbd and nbd to file), and `rbd bench` next
to user:rbd.

Figures are medians over the rounds; a ratio is the median of the per-round
ratios, so that load on the shared host that changes between rounds cancels
as far as it can.

usage: report.py OUT_DIR  (prints the section on stdout)
"""
import glob
import json
import os
import statistics
import sys
from collections import defaultdict

from trace_profile import thread_section, trace_section

# phase -> (ours, compared with) pairs
PAIRS = {
    "tmpfs": (("alloc", "rd"), ("file", "fileio")),
    "dm": (("file-dm2", "fileio-dm2"), ("file-dm10", "fileio-dm10")),
    "nbd": (("nbd", "file"), ("nbd", "alloc"), ("alloc", "rd")),
    "rbd": (("rbd", "file"), ("rbd", "fileio"), ("file", "fileio")),
    "ab": (("alloc-a", "alloc-b"), ("file-a", "file-b")),
    "poll": (("alloc-default", "rd"), ("alloc-1000", "rd"), ("alloc-off", "rd"),
             ("file-default", "fileio"), ("file-1000", "fileio"), ("file-off", "fileio")),
}
# phase -> figure -> target ratio (issue 17's targets)
TARGETS = {
    "tmpfs": {"4 KiB random read QD16, IOPS": 0.85, "4 KiB random write QD16, IOPS": 0.85,
              "4 KiB random read QD1, mean latency µs": 2.5,
              "1 MiB sequential read QD4, MiB/s": 0.5,
              "1 MiB sequential write QD4, MiB/s": 0.5},
    "dm": {"4 KiB random read QD16, IOPS": 0.8, "4 KiB random write QD16, IOPS": 0.8},
}
PHASE_TITLE = {
    "tmpfs": "On the guest's tmpfs",
    "dm": "On block devices taking 2 ms and 10 ms per I/O (dm-delay over dm-zero; "
          "write cache off on both; page cache dropped before each job)",
    "nbd": "user:nbd (`exec:nbdkit memory`) next to memory and tmpfs backstores",
    "rbd": "user:rbd on the single-node Ceph (memstore OSD) next to user:file and fileio on tmpfs",
    "ab": "Two daemon builds, a and b, alternating round by round (user:alloc and user:file on tmpfs)",
    "poll": "Ring polling at its default (self-tuned), at ring_poll_us = 1000 and off "
            "(user:alloc and user:file on tmpfs, settings interleaved job by job)",
}
KIND_TITLE = {"rd": "rd_mcp", "fileio": "fileio", "alloc": "user:alloc", "file": "user:file",
              "nbd": "user:nbd", "rbd": "user:rbd"}


def kind_title(kind):
    base, _, delay = kind.partition("-dm")
    if delay:
        return f"{KIND_TITLE[base]} {delay} ms"
    base, _, build = kind.partition("-")
    if build:
        return f"{KIND_TITLE[base]} ({build})"
    return KIND_TITLE.get(kind, kind)

# job -> list of (figure name, extractor, higher_is_better)
def iops(side):
    return lambda job: job[side]["iops"]


def total_iops(job):
    return job["read"]["iops"] + job["write"]["iops"]


def mib_per_s(side):
    return lambda job: job[side]["bw_bytes"] / 1048576


def latency_us(side, field, key):
    def extract(job):
        latency = job[side][field]
        if key == "mean":
            return latency["mean"] / 1000
        return latency.get("percentile", {}).get(key, 0) / 1000
    return extract


FIGURES = {
    "randread-qd16": [("4 KiB random read QD16, IOPS", iops("read"), True)],
    "randwrite-qd16": [("4 KiB random write QD16, IOPS", iops("write"), True)],
    "randread-qd1": [
        ("4 KiB random read QD1, IOPS", iops("read"), True),
        # fio's total latency (lat): from the I/O's submission by fio to its
        # completion. The kernel's backstores complete most commands inside
        # io_submit, so their completion latency (clat, measured from the
        # return of io_submit) leaves out the I/O itself; see BENCHMARKS.md.
        ("4 KiB random read QD1, mean latency µs", latency_us("read", "lat_ns", "mean"),
         False),
        ("4 KiB random read QD1, mean completion latency (clat) µs",
         latency_us("read", "clat_ns", "mean"), False),
        ("4 KiB random read QD1, p99 completion latency (clat) µs",
         latency_us("read", "clat_ns", "99.000000"), False),
    ],
    "randwrite-qd1": [
        ("4 KiB random write QD1, IOPS", iops("write"), True),
        ("4 KiB random write QD1, mean latency µs", latency_us("write", "lat_ns", "mean"),
         False),
    ],
    "seqread-1m-qd4": [("1 MiB sequential read QD4, MiB/s", mib_per_s("read"), True)],
    "seqwrite-1m-qd4": [("1 MiB sequential write QD4, MiB/s", mib_per_s("write"), True)],
    "randrw70-4jobs": [("4 KiB 70/30 random mix, 4 jobs QD4, IOPS", total_iops, True)],
}


def load(path):
    with open(path) as stream:
        text = stream.read()
    # fio may print notes before the JSON document.
    return json.loads(text[text.index("{"):])


def read_meta(out):
    meta = {}
    lines = []
    for name in ("host.txt", "meta.txt"):
        path = os.path.join(out, name)
        if os.path.exists(path):
            with open(path) as stream:
                lines += [line.rstrip("\n") for line in stream if line.strip()]
    for line in lines:
        key, _, value = line.partition(" ")
        meta[key] = value
    return meta, lines


def fmt(value):
    if value is None:
        return "–"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio_cell(ratios, higher_is_better, target):
    if not ratios:
        return "–"
    value = statistics.median(ratios)
    cell = f"{value:.2f}"
    if len(ratios) > 1:
        cell += f" ({min(ratios):.2f}–{max(ratios):.2f})"
    if target is not None:
        met = value >= target if higher_is_better else value <= target
        cell += (" ✅" if met else " ❌") + (f" ≥{target}" if higher_is_better else f" ≤{target}")
    return cell


def single_section(out, phase, kinds):
    # figure -> kind -> [value per round]
    values = defaultdict(lambda: defaultdict(list))
    prefix = "single.round" if phase == "tmpfs" else f"{phase}.round"
    rounds = sorted(name for name in os.listdir(os.path.join(out, "raw"))
                    if name.startswith(prefix))
    order = []
    for name in rounds:
        for job in load(os.path.join(out, "raw", name))["jobs"]:
            job_name, _, kind = job["jobname"].rpartition(".")
            for title, extract, _ in FIGURES.get(job_name, []):
                if title not in order:
                    order.append(title)
                values[title][kind].append(extract(job))
    higher_of = {title: higher for figures in FIGURES.values() for title, _, higher in figures}
    pairs = [(ours, theirs) for ours, theirs in PAIRS.get(phase, ())
             if ours in kinds and theirs in kinds]
    header = ["figure"] + [kind_title(k) for k in kinds] + \
             [f"{kind_title(ours)} / {kind_title(theirs)}" for ours, theirs in pairs]
    rows = []
    for title in order:
        higher, target = higher_of[title], TARGETS.get(phase, {}).get(title)
        row = [title]
        for kind in kinds:
            series = values[title].get(kind)
            row.append(fmt(statistics.median(series)) if series else "–")
        for ours, theirs in pairs:
            a, b = values[title].get(ours, []), values[title].get(theirs, [])
            ratios = [x / y for x, y in zip(a, b) if y]
            row.append(ratio_cell(ratios, higher, target))
        rows.append(row)
    raw = []
    for title in order:
        for kind in kinds:
            series = values[title].get(kind, [])
            raw.append([title, kind_title(kind)] + [fmt(v) for v in series])
    return header, rows, raw, max((len(row) - 2 for row in raw), default=0)


def four_section(out, kinds, single_iops):
    per_kind = defaultdict(list)     # kind -> [ [iops per device] per round ]
    for name in sorted(os.listdir(os.path.join(out, "raw"))):
        if not name.startswith("four.round"):
            continue
        round_values = defaultdict(list)
        for job in load(os.path.join(out, "raw", name))["jobs"]:
            _, kind, _ = job["jobname"].split(".")
            round_values[kind].append(job["read"]["iops"])
        for kind, devices in round_values.items():
            per_kind[kind].append(devices)
    if not per_kind:
        return None
    header = ["kind", "aggregate IOPS", "per device (min–max)", "min / max device",
              "aggregate / one device QD16"]
    rows = []
    aggregates = {}
    for kind in kinds:
        if kind not in per_kind:
            continue
        aggregate = [sum(devices) for devices in per_kind[kind]]
        aggregates[kind] = aggregate
        lows = [min(devices) for devices in per_kind[kind]]
        highs = [max(devices) for devices in per_kind[kind]]
        fairness = statistics.median([min(d) / max(d) for d in per_kind[kind] if max(d)])
        one = single_iops.get(kind)
        scale = f"{statistics.median(aggregate) / one:.2f}" if one else "–"
        rows.append([KIND_TITLE[kind], fmt(statistics.median(aggregate)),
                     f"{fmt(statistics.median(lows))}–{fmt(statistics.median(highs))}",
                     f"{fairness:.2f}", scale])
    for ours, theirs in PAIRS["tmpfs"]:
        if ours in aggregates and theirs in aggregates:
            ratios = [a / b for a, b in zip(aggregates[ours], aggregates[theirs]) if b]
            rows.append([f"{ours} / {KIND_TITLE[theirs]}", ratio_cell(ratios, True, None),
                         "", "", ""])
    return header, rows


def many_section(out, kinds, meta_lines):
    rows = []
    for kind in kinds:
        path = os.path.join(out, "raw", f"many.{kind}.json")
        if not os.path.exists(path):
            continue
        jobs = load(path)["jobs"]
        device_iops = [job["read"]["iops"] for job in jobs]
        meta = dict(line.split(" ", 2)[1:] for line in meta_lines
                    if line.startswith(kind + " many_"))
        threads = ""
        for line in meta_lines:
            words = line.split()
            if line.startswith(f"daemon many-{kind}-idle threads"):
                threads = words[-1]
            if line.startswith(f"daemon many-{kind}-busy threads"):
                threads += f" idle / {words[-1]} busy"
        rows.append([KIND_TITLE[kind], meta.get("many_count", str(len(jobs))),
                     meta.get("many_create_ms", "–"), meta.get("many_remove_ms", "–"),
                     fmt(sum(device_iops)), fmt(min(device_iops)),
                     str(sum(1 for value in device_iops if value == 0)), threads or "–"])
    header = ["kind", "devices", "create ms (all)", "remove ms (all)", "aggregate IOPS",
              "min device IOPS", "devices with 0 IOPS", "daemon threads"]
    return header, rows


def rbd_bench_rate(path):
    """Operations per second from `rbd bench`'s summary line, else from its
    per-second lines (SEC, cumulative OPS, ...), first to last."""
    points = []
    with open(path) as stream:
        for line in stream:
            words = line.split()
            if words[:1] == ["elapsed:"] and "ops/sec:" in words:
                return float(words[words.index("ops/sec:") + 1])
            if len(words) >= 3 and words[0].isdigit() and words[1].isdigit():
                points.append((int(words[0]), int(words[1])))
    if len(points) < 2 or points[-1][0] == points[0][0]:
        return None
    return (points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0])


def rbd_bench_section(out, phase_rows, kinds):
    """`rbd bench` on the LUN's image after the rounds, next to user:rbd
    (operations per second; for the 1 MiB jobs that is MiB/s)."""
    if "rbd" not in kinds:
        return []
    column = 1 + kinds.index("rbd")
    ours = {row[0]: row[column] for row in phase_rows}
    rows = []
    for job, figures in FIGURES.items():
        path = os.path.join(out, "raw", f"rbdbench.{job}.txt")
        if not os.path.exists(path):
            continue
        with open(path) as stream:
            command = stream.readline().strip()
        rate = rbd_bench_rate(path)
        title = figures[0][0]
        cell = ours.get(title, "–")
        ratio = f"{float(cell) / rate:.2f}" if rate and cell != "–" else "–"
        # Its mean time per operation, from Little's law: threads / rate.
        words = command.split()
        depth = int(words[words.index("--io-threads") + 1]) if "--io-threads" in words else 0
        per_op = fmt(depth / rate * 1e6) if rate and depth else "–"
        cpu = "–"
        with open(path) as stream:
            for line in stream:
                if line.startswith("cpu_us_per_op "):
                    cpu = line.split()[1]
        rows.append([title, fmt(rate), per_op, cpu, cell, ratio, f"`{command}`"])
    if not rows:
        return []
    return ["`rbd bench` on the same image after the rounds (the LUN removed), against "
            "user:rbd through the kernel:\n",
            table(["figure", "rbd bench", "rbd bench µs per op", "rbd bench CPU µs per op",
                   "user:rbd", "user:rbd / rbd bench", "command"], rows),
            ""]


def daemon_mean_us(before_path, after_path, side):
    """The daemon's mean latency of a job's commands of one kind (read or
    write), in µs: from tcmu-admin's counters before and after the job
    (fio's ramp included), or None without both snapshots."""
    if not (os.path.exists(before_path) and os.path.exists(after_path)):
        return None
    snapshots = []
    for path in (before_path, after_path):
        with open(path) as stream:
            snapshots.append(json.load(stream)[0]["kinds"][side])
    before, after = snapshots
    commands = after["commands"] - before["commands"]
    if commands <= 0:
        return None
    return (after["latency_sum_seconds"] - before["latency_sum_seconds"]) / commands * 1e6


def daemon_latency_section(out, phase, kinds):
    """fio's mean latency of each job next to the daemon's own for the same
    commands: what is left is the kernel's part (the initiator, tcm_loop,
    the target core, the ring's hand-off both ways)."""
    rows = []
    raw = os.path.join(out, "raw")
    for job in FIGURES:
        side = "write" if "write" in job else "read"
        for kind in kinds:
            pairs = []
            for name in sorted(os.listdir(raw)):
                prefix = f"stats.{phase}.round"
                suffix = f".{job}.{kind}.before.json"
                if not (name.startswith(prefix) and name.endswith(suffix)):
                    continue
                round_number = name[len(prefix):-len(suffix)]
                stem = os.path.join(raw, name[:-len(".before.json")])
                daemon = daemon_mean_us(stem + ".before.json", stem + ".after.json", side)
                fio_file = os.path.join(raw, ("single" if phase == "tmpfs" else phase)
                                        + f".round{round_number}.json")
                if daemon is None or not os.path.exists(fio_file):
                    continue
                for result in load(fio_file)["jobs"]:
                    if result["jobname"] == f"{job}.{kind}":
                        pairs.append((result[side]["lat_ns"]["mean"] / 1000, daemon))
            if not pairs:
                continue
            fio_mean = statistics.median(p[0] for p in pairs)
            daemon_mean = statistics.median(p[1] for p in pairs)
            rows.append([job, kind_title(kind), fmt(fio_mean), fmt(daemon_mean),
                         fmt(fio_mean - daemon_mean), f"{daemon_mean / fio_mean:.2f}"])
    if not rows:
        return []
    return ["Mean latency per command, fio's (initiator to completion) against the "
            "daemon's own (tcmu-admin: from the ring thread's first sight of the command to "
            "its completion; fio's ramp included), median over rounds, µs:\n",
            table(["job", "kind", "fio", "daemon", "outside the daemon", "daemon's share"],
                  rows), ""]


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main():
    out = sys.argv[1]
    meta, meta_lines = read_meta(out)
    kinds = meta.get("kinds", "rd fileio alloc file").split()
    text = []
    title = meta.get("date", "undated run")
    text.append(f"### {title}{' (quick)' if meta.get('quick') == '1' else ''}\n")
    text.append(f"- command: `{meta.get('command', '?')}`")
    text.append(f"- commit: {meta.get('commit', '?')} (bench scripts); daemon from "
                f"{meta.get('build', '?')}")
    text.append(f"- VM: {meta.get('vm', '?')}; guest sees {meta.get('cpus', '?')} CPUs, "
                f"{int(meta.get('mem_kib', '0')) // 1024} MiB; kernel {meta.get('kernel', '?')}; "
                f"{meta.get('fio', '?')}")
    text.append(f"- host: {meta.get('host', '?')}; load average before {meta.get('load_before', '?')}, "
                f"after {meta.get('load_after', '?')}")
    text.append(f"- {meta.get('rounds', '?')} rounds of {meta.get('runtime', '?')} s per job "
                f"and kind, devices of {meta.get('size_mib', '?')} MiB; "
                f"user backstore control extras: `{meta.get('user_control') or 'none'}`; "
                f"tcmu.conf extras: `{meta.get('daemon_config') or 'none'}`")
    for side in ("a", "b"):
        if f"build_{side}" in meta:
            text.append(f"- build {side}: {meta[f'build_{side}']}")
    if "clocksource" in meta:
        text.append(f"- guest clock source: {meta['clocksource']}")
    text.append("")

    phases = meta.get("phases", "tmpfs").split()
    phase_kinds, devices, phase = {}, defaultdict(list), "tmpfs"
    for line in meta_lines:
        words = line.split()
        if words[0] == "phase":
            phase = words[1]
            phase_kinds[phase] = words[2:]
        elif words[0].startswith("device-"):
            devices[phase].append(f"{kind_title(words[0][len('device-'):])}: "
                                  + " ".join(words[1:]))
    raw_tables = []
    rows = []
    for phase in phases:
        these = phase_kinds.get(phase, kinds if phase == "tmpfs" else [])
        header, phase_rows, raw, rounds = single_section(out, phase, these)
        if not raw:
            continue
        text.append(f"#### {PHASE_TITLE.get(phase, phase)}\n")
        text.extend(f"- {line}" for line in devices.get(phase, []))
        text.append("")
        text.append("One device of each kind (median over rounds; ratio: median of per-round "
                    "ratios, range in brackets; latency ratios: lower is better):\n")
        text.append(table(header, phase_rows))
        text.append("")
        text.extend(daemon_latency_section(out, phase, these))
        if phase == "rbd":
            text.extend(rbd_bench_section(out, phase_rows, these))
        raw_tables.append((phase, rounds, raw))
        if phase == "tmpfs":
            rows = phase_rows
    kinds = phase_kinds.get("tmpfs", kinds)

    single_iops = {}
    for row_title, kind_values in [(r[0], r[1:1 + len(kinds)]) for r in rows]:
        if row_title.startswith("4 KiB random read QD16"):
            for kind, cell in zip(kinds, kind_values):
                if cell != "–":
                    single_iops[kind] = float(cell)
    four = four_section(out, kinds, single_iops)
    if four:
        text.append("Four devices of a kind driven at once (4 KiB random read QD16 each):\n")
        text.append(table(*four))
        text.append("")

    header, rows = many_section(out, kinds, meta_lines)
    if rows:
        text.append("Many devices of a kind, all driven at once (4 KiB random read QD4 each):\n")
        text.append(table(header, rows))
        text.append("")

    daemon = [line[len("daemon "):] for line in meta_lines
              if line.startswith("daemon ") and " pid" not in line and "many-" not in line]
    if daemon:
        text.append("Daemon threads and memory (after-four-alloc: 4 idle alloc devices; "
                    "after-four-file: 4 alloc + 4 file):\n")
        text.extend(f"    {line}" for line in daemon)
        text.append("")

    cpu_rows = []
    for line in meta_lines:
        words = line.split()
        if words[0] != "cpu" or len(words) < 13:
            continue
        value = dict(zip(words[3::2], words[4::2]))
        cpu_rows.append([kind_title(words[1]), words[2], value["iops"],
                         value["daemon"], value["daemon_user_share"], value["ctxt_per_io"]])
    if cpu_rows:
        # System-wide and fio sums lose the runtime of tasks that exit between the
        # snapshots (short-lived processes cost milliseconds under TCG), so only the
        # daemon's runtime (long-lived threads) and the context switch count are shown.
        text.append("Where the time goes (BENCH_PROFILE=cpu): the daemon's CPU µs per I/O "
                    "from its threads' scheduler runtime, the user-mode share of it, and "
                    "context switches per I/O in the whole guest:\n")
        text.append(table(["kind", "job", "IOPS", "daemon µs/IO", "daemon user share",
                           "ctx switches/IO"], cpu_rows))
        text.append("")

    thread_rows = []
    for line in meta_lines:
        words = line.split()
        if words[0] != "cputhreads" or len(words) < 4:
            continue
        shares = sorted(((float(value), name) for name, _, value in
                         (word.partition("=") for word in words[3:])), reverse=True)
        thread_rows.append([kind_title(words[1]), words[2],
                            ", ".join(f"{name} {fmt(value)}" for value, name in shares[:6])])
    if thread_rows:
        text.append("The daemon's CPU µs per I/O by thread name (BENCH_PROFILE=cpu; "
                    "the six busiest):\n")
        text.append(table(["kind", "job", "threads"], thread_rows))
        text.append("")

    traces = sorted(glob.glob(os.path.join(out, "trace.*.txt")))
    header, trace_rows = trace_section(traces)
    if trace_rows:
        text.append("Where a QD1 command's time goes (BENCH_PROFILE=trace; "
                    "bench/trace_profile.py says what each step holds): medians in µs "
                    "over the commands traced, the share of them that woke the daemon, "
                    "and events per command:\n")
        text.append(table(header, trace_rows))
        text.append("")
    header, thread_rows = thread_section(traces)
    if thread_rows:
        text.append("The daemon's ring thread (BENCH_PROFILE=trace): its syscalls per "
                    "command completed, by kind, and the median µs of one:\n")
        text.append(table(header, thread_rows))
        text.append("")

    text.append("<details><summary>Raw figures per round</summary>\n")
    for phase, rounds, raw in raw_tables:
        text.append(table([f"figure ({phase})", "kind"] +
                          [f"round {i + 1}" for i in range(rounds)], raw))
        text.append("")
    text.append("</details>\n")
    print("\n".join(text))


if __name__ == "__main__":
    main()
