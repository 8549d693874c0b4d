# SPDX-License-Identifier: LGPL-2.1-or-later
#
# launch.py: starts COUNT guests at once and times them; a helper of test/bench/run.
#
#   python3 launch.py --count N --names PREFIX --sockets DIR --logs DIR [--tree TREE]
#                     [--idle S] [--ready-timeout S] [--stop-timeout S] [--stop-signal SIG]
#                     -- CMD...
#
# Each guest i (1..N) is CMD with every "{name}" replaced by PREFIX-i, started with a
# NOTIFY_SOCKET of its own (DIR/PREFIX-i.sock) and its output in LOGS/PREFIX-i.log. READY is
# the first READY=1 on that socket, timed from the moment the first guest was started: the
# guest's READY=1 as the manager passes it on (--notify-ready=yes), the same for every tool.
# Once every guest is READY (or the timeout passed) and IDLE seconds went by, the RSS and
# PSS of each manager process are read from /proc/PID/smaps_rollup (and, with --tree, the
# PSS of every process whose root mount comes from TREE: the guests), then every manager
# gets STOP_SIGNAL at once and the time until each has exited is taken. Prints one JSON
# object. SIGTERM, SIGINT or SIGHUP stop every guest before it exits.
import argparse
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time


def smaps(pid):
    out = {}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Rss", "Pss"):
                    out[k.lower()] = int(v.split()[0])
    except OSError:
        pass
    return out


def root_source(pid):
    # /proc/PID/root reads as "/" after pivot_root: the root mount's path in its file system tells
    try:
        with open("/proc/%d/mountinfo" % pid) as f:
            for line in f:
                x = line.split()
                if x[4] == "/":
                    return x[3]
    except OSError:
        pass
    return None


def guest_pss(tree, exclude):
    total = 0
    for p in os.listdir("/proc"):
        if p.isdigit() and int(p) not in exclude and root_source(int(p)) == tree:
            total += smaps(int(p)).get("pss", 0)
    return total


def parse_signal(s):
    if s.startswith("SIGRTMIN+"):
        return signal.SIGRTMIN + int(s[9:])
    return getattr(signal, s)


class Guest:
    def __init__(self, name, sock_path, log_path, cmd):
        self.name = name
        self.sock_path = sock_path
        self.cmd = [c.replace("{name}", name) for c in cmd]
        try:
            os.unlink(sock_path)
        except FileNotFoundError:
            pass
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
        self.sock.bind(sock_path)
        self.log = open(log_path, "ab")
        self.proc = None
        self.ready = None
        self.stopped = None

    def start(self):
        env = dict(os.environ, NOTIFY_SOCKET=self.sock_path)
        self.proc = subprocess.Popen(self.cmd, env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)

    def close(self):
        self.sock.close()
        self.log.close()
        try:
            os.unlink(self.sock_path)
        except FileNotFoundError:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--names", required=True)
    ap.add_argument("--sockets", required=True)
    ap.add_argument("--logs", required=True)
    ap.add_argument("--tree")
    ap.add_argument("--idle", type=float, default=3)
    ap.add_argument("--ready-timeout", type=float, default=60)
    ap.add_argument("--stop-timeout", type=float, default=60)
    ap.add_argument("--stop-signal", default="SIGTERM")
    ap.add_argument("cmd", nargs="+")
    a = ap.parse_args()
    stop_sig = parse_signal(a.stop_signal)

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, interrupted)

    guests = [Guest("%s-%d" % (a.names, i), os.path.join(a.sockets, "%s-%d.sock" % (a.names, i)),
                    os.path.join(a.logs, "%s-%d.log" % (a.names, i)), a.cmd) for i in range(1, a.count + 1)]
    res = {"count": a.count}
    try:
        t0 = time.monotonic()
        for g in guests:
            g.start()
        by_fd = {g.sock.fileno(): g for g in guests}
        poll = select.poll()
        for fd in by_fd:
            poll.register(fd, select.POLLIN)
        deadline = t0 + a.ready_timeout
        waiting = len(guests)
        while waiting > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for fd, _ in poll.poll(min(left, 0.05) * 1000):
                g = by_fd[fd]
                try:
                    data = g.sock.recv(65536)
                except BlockingIOError:
                    continue
                if g.ready is None and b"READY=1" in data.split(b"\n"):
                    g.ready = time.monotonic() - t0
                    waiting -= 1
                    poll.unregister(fd)
            if all(g.proc.poll() is not None for g in guests if g.ready is None):
                break  # the rest exited before READY=1
        res["ready"] = [g.ready for g in guests]
        res["failed"] = [g.name for g in guests if g.ready is None]
        if waiting < len(guests):
            time.sleep(a.idle)
        mem = [smaps(g.proc.pid) if g.proc.poll() is None else {} for g in guests]
        res["rss"] = [m.get("rss") for m in mem]
        res["pss"] = [m.get("pss") for m in mem]
        if a.tree:
            res["guest_pss"] = guest_pss(a.tree, {g.proc.pid for g in guests})
        t1 = time.monotonic()
        for g in guests:
            if g.proc.poll() is None:
                g.proc.send_signal(stop_sig)
        deadline = t1 + a.stop_timeout
        killed = 0
        for g in guests:
            try:
                g.proc.wait(timeout=max(0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                killed += 1
                g.proc.kill()
                g.proc.wait()
            g.stopped = time.monotonic() - t1
        res["stop"] = [g.stopped for g in guests]
        res["stop_all"] = time.monotonic() - t1
        res["killed"] = killed
        res["exit"] = [g.proc.returncode for g in guests]
    except KeyboardInterrupt:
        res["error"] = "interrupted"
    finally:
        for g in guests:
            if g.proc is not None and g.proc.poll() is None:
                g.proc.terminate()
        for g in guests:
            if g.proc is not None:
                try:
                    g.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    g.proc.kill()
                    g.proc.wait()
            g.close()
    print(json.dumps(res), flush=True)
    return 130 if res.get("error") == "interrupted" else 0


sys.exit(main())
