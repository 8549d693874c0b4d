#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Times commands in interleaved rounds, for test/bench/run's "start" part (issue #15).
#
# A timer that runs each command as a block of N runs, one after the other (as hyperfine does),
# lets the machine's drift (other work on a shared VM comes and goes within seconds) land on one
# command and not on the other, and a ratio of two medians measured a minute apart then moves with
# it. Here every round runs every command once, in an order shuffled afresh each round, so a
# command and its reference run within a fraction of a second of each other; a ratio is taken per
# round (A's time over B's in that round) and its median and quartiles over the rounds are what
# is reported, beside each command's median and quartiles over all its runs.
#
# Each run: posix_spawn with stdin, stdout and stderr on /dev/null, timed with perf_counter_ns
# around it and its wait4(), which also gives its CPU time (user+system of it and of the
# descendants it waited for). A run that exits non-zero is counted as failed and left out.
#
# Usage: interleave.py [--rounds R] [--warmup W] [--ratio A/B]... [--seed S] -- NAME CMD [NAME CMD]...
#   CMD is one string, split as a shell would (shlex), run without a shell.
# Prints tab-separated lines:
#   cmd NAME MEDIAN Q1 Q3 CPU_MEAN OK FAILED      (seconds)
#   ratio A/B MEDIAN Q1 Q3 ROUNDS                  (per-round ratios)
#   load MIN MAX                                   (1-minute load average, read each round)
import argparse
import os
import random
import shlex
import shutil
import statistics
import sys
import time


def run(argv):
    """One run of argv: (seconds, CPU seconds, ok)."""
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=NULL_STDIO)
    _, status, ru = os.wait4(pid, 0)
    t1 = time.perf_counter_ns()
    return (t1 - t0) / 1e9, ru.ru_utime + ru.ru_stime, os.waitstatus_to_exitcode(status) == 0


def quartiles(v):
    if len(v) < 2:
        return (v[0], v[0]) if v else (float("nan"), float("nan"))
    q = statistics.quantiles(v, n=4)
    return q[0], q[2]


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


NULL_STDIO = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--ratio", action="append", default=[])
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("commands", nargs="+")
    a = p.parse_args()
    if len(a.commands) % 2:
        p.error("NAME CMD pairs expected")
    names = a.commands[0::2]
    cmds = {}
    for n, c in zip(names, a.commands[1::2]):
        argv = shlex.split(c)
        path = shutil.which(argv[0])
        if path is None:
            p.error("%s: %s not found" % (n, argv[0]))
        cmds[n] = [path] + argv[1:]
    rng = random.Random(a.seed)

    order = list(names)
    for _ in range(a.warmup):
        rng.shuffle(order)
        for n in order:
            run(cmds[n])

    times = {n: [] for n in names}
    cpu = {n: [] for n in names}
    failed = {n: 0 for n in names}
    rounds = []  # per round: {name: seconds}
    load = []
    for _ in range(a.rounds):
        rng.shuffle(order)
        this = {}
        for n in order:
            t, c, ok = run(cmds[n])
            if not ok:
                failed[n] += 1
                continue
            times[n].append(t)
            cpu[n].append(c)
            this[n] = t
        rounds.append(this)
        load.append(loadavg())

    for n in names:
        v = times[n]
        med = statistics.median(v) if v else float("nan")
        q1, q3 = quartiles(v)
        c = statistics.mean(cpu[n]) if cpu[n] else float("nan")
        print("cmd\t%s\t%.6f\t%.6f\t%.6f\t%.6f\t%d\t%d" % (n, med, q1, q3, c, len(v), failed[n]))
    for r in a.ratio:
        x, y = r.split("/", 1)
        v = [this[x] / this[y] for this in rounds if x in this and y in this]
        if not v:
            continue
        q1, q3 = quartiles(v)
        print("ratio\t%s\t%.4f\t%.4f\t%.4f\t%d" % (r, statistics.median(v), q1, q3, len(v)))
    if load:
        print("load\t%.2f\t%.2f" % (min(load), max(load)))


if __name__ == "__main__":
    sys.exit(main())
