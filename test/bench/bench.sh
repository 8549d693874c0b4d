#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# berth against its references, measured side by side in the same run. Not a pass/fail test:
# it prints numbers and ratios.
#
#   1. Start cost: median wall time of /bin/true in a busybox tree, for
#        berth -q --console=pipe -D TREE /bin/true
#        systemd-nspawn --register=no --keep-unit -q -D TREE /bin/true
#        unshare --fork --pid --mount --uts --ipc chroot TREE /bin/true      (the floor)
#      with hyperfine if it is installed (warm-up runs, medians from its JSON), else a loop
#      over `date +%s%N`.
#   2. Boot: time from the start of the process to the guest's READY=1, for a copy of the
#      Debian 12 test tree (test/tools/make-debian-tree.sh), booted with
#        berth -b --notify-ready=yes            and
#        systemd-nspawn -b --notify-ready=yes --register=no --keep-unit,
#      each given a NOTIFY_SOCKET of ours (a small python3 helper binds it, starts the
#      command and times the arrival of READY=1). While the guest idles, the RSS and PSS of
#      the monitor process (berth, or nspawn's main process) are read from
#      /proc/PID/smaps_rollup; then the monitor gets SIGTERM (berth asks the guest to power
#      off, nspawn to halt) and the time until it has exited is the stop time. Runs alternate
#      between the two to spread any drift of the machine's load evenly.
#
# Usage: test/bench/bench.sh [--runs N] [--boot-runs N] [--idle SECONDS] [--no-start] [--no-boot]
# Environment: BERTH (the binary; default $BERTH_BUILD/berth, then build/berth),
#   BERTH_TEST_CACHE (where the Debian tree is cached, default /var/cache/berth-test).
# Needs root. Exits 77 (skip) when it cannot run here.
#
# About systemd-nspawn without systemd as PID 1 (as on this kind of machine): --register=no
# alone fails ("Failed to open system bus"), because nspawn then wants to create a scope
# unit; --keep-unit makes it stay in its own cgroup and needs no bus. It still prints
# 'Attempted to remove disk file system under "/run/systemd/nspawn/propagate/NAME", and we
# can't allow that.' at exit (its propagation directory is not on a tmpfs here): harmless,
# the exit status is 0. No SYSTEMD_NSPAWN_LOCK or other setting is needed.
#
# To run it from meson, the build could declare
#   benchmark('bench', find_program('test/bench/bench.sh'), env : integration_env,
#             depends : [berth], timeout : 1800)
# and `meson test -C build --benchmark -v bench` shows the table.
#
# Everything it starts is cleaned up on exit, also on Ctrl-C or SIGTERM: its processes (and
# any guest process whose root is in its scratch directory), mounts below that directory,
# and the directory itself.
set -euo pipefail

BERTH_SRC=${BERTH_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${BERTH:-}" ]; then
        if [ -n "${BERTH_BUILD:-}" ]; then
                BERTH=$BERTH_BUILD/berth
        else
                BERTH=$BERTH_SRC/build/berth
        fi
fi
: "${BERTH_TEST_CACHE:=/var/cache/berth-test}"
RUNS=30
BOOT_RUNS=5
WARMUP=3
IDLE=3
DO_START=1
DO_BOOT=1

while [ $# -gt 0 ]; do
        case $1 in
        --runs) RUNS=$2; shift 2 ;;
        --boot-runs) BOOT_RUNS=$2; shift 2 ;;
        --idle) IDLE=$2; shift 2 ;;
        --no-start) DO_START=0; shift ;;
        --no-boot) DO_BOOT=0; shift ;;
        -h | --help) sed -n '3,38p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "Unknown argument '$1', see --help." >&2; exit 2 ;;
        esac
done

if [ "$(id -u)" != 0 ]; then
        echo "bench: needs root." >&2
        exit 77
fi
if [ ! -x "$BERTH" ]; then
        echo "bench: no berth binary at '$BERTH': build it, or set \$BERTH." >&2
        exit 77
fi
if ! command -v python3 >/dev/null; then
        echo "bench: python3 is needed to parse results and to time READY=1 (apt-get install python3)." >&2
        exit 77
fi

WORK=$(mktemp -d /var/tmp/berth-bench.XXXXXX)
NAME_PREFIX="bench-$$"
HELPER_PID=

# ---- cleanup ----

# Processes whose root directory is in $WORK: guests, also ones that outlived their
# monitor. /proc/PID/root reads as "/" after pivot_root, so the root mount's source path
# in /proc/PID/mountinfo (4th field, for the mount at "/") is what tells.
procs_in_work() {
        python3 - "$WORK" <<'EOF_PY'
import os, sys
work = sys.argv[1]
for p in os.listdir("/proc"):
    if not p.isdigit() or int(p) == os.getpid():
        continue
    try:
        with open("/proc/%s/mountinfo" % p) as f:
            for line in f:
                x = line.split()
                if x[4] == "/" and (x[3] == work or x[3].startswith(work + "/")):
                    print(p)
                    break
    except OSError:
        pass
EOF_PY
}

cleanup() {
        local rc=$? pids m i
        trap - EXIT INT TERM HUP
        set +e
        if [ -n "$HELPER_PID" ] && kill -0 "$HELPER_PID" 2>/dev/null; then
                # the helper stops its child (SIGTERM, then SIGKILL after 5 s)
                kill -TERM "$HELPER_PID" 2>/dev/null
                for ((i = 0; i < 80; i++)); do
                        kill -0 "$HELPER_PID" 2>/dev/null || break
                        sleep 0.1
                done
                kill -KILL "$HELPER_PID" 2>/dev/null
        fi
        for ((i = 0; i < 3; i++)); do
                pids=$(procs_in_work)
                [ -n "$pids" ] || break
                # shellcheck disable=SC2086
                kill -KILL $pids 2>/dev/null
                sleep 0.2
        done
        while read -r m; do
                umount -l "$(printf '%b' "$m")" 2>/dev/null
        done < <(findmnt -rn -o TARGET | grep -E "^$WORK(/|\$)" | sort -r)
        rm -rf --one-file-system "$WORK"
        for m in /run/systemd/nspawn/propagate/"$NAME_PREFIX"-*; do
                [ -d "$m" ] && rmdir "$m" 2>/dev/null
        done
        exit "$rc"
}
trap cleanup EXIT
trap 'echo "bench: interrupted, cleaning up" >&2; exit 130' INT TERM HUP

# ---- helpers ----

have() {
        command -v "$1" >/dev/null
}

# median < numbers: the median of one number per line
median() {
        python3 -c '
import statistics, sys
v = [float(x) for x in sys.stdin.read().split()]
print(statistics.median(v) if v else "nan")'
}

# ratio A B: A/B with two decimals, or "-" if either is missing
ratio() {
        python3 -c '
import sys
try:
    a, b = float(sys.argv[1]), float(sys.argv[2])
    print("%.2fx" % (a / b) if b > 0 else "-")
except ValueError:
    print("-")' "$1" "$2"
}

# fmt_ms SECONDS, fmt_s SECONDS, fmt_mib KIB: for the table ("-" stays "-")
fmt_ms() {
        python3 -c 'import sys; v = sys.argv[1]; print("-" if v in ("-", "nan", "") else "%.1f ms" % (float(v) * 1000))' "$1"
}
fmt_s() {
        python3 -c 'import sys; v = sys.argv[1]; print("-" if v in ("-", "nan", "") else "%.3f s" % float(v))' "$1"
}
fmt_mib() {
        python3 -c 'import sys; v = sys.argv[1]; print("-" if v in ("-", "nan", "") else "%.1f MiB" % (float(v) / 1024))' "$1"
}

# A tree around busybox: /bin/busybox and its applets, /usr (nspawn refuses a tree without
# one), /etc/os-release, /sbin/init.
make_busybox_tree() {
        local d=$1 bb a
        bb=$(command -v busybox) || return 1
        mkdir -p "$d"/{bin,sbin,usr/bin,usr/lib,etc,dev,proc,sys,run,tmp,var/tmp,root}
        cp "$bb" "$d/bin/busybox"
        for a in $("$bb" --list); do
                [ "$a" = busybox ] || ln -s busybox "$d/bin/$a"
        done
        ln -s ../bin/busybox "$d/sbin/init"
        printf 'ID=berthbench\nNAME="berth bench tree"\n' >"$d/etc/os-release"
        : >"$d/etc/machine-id"
}

# ---- part 1: /bin/true ----

declare -A START_MEDIAN=()

# time_loop NAME CMD...: fallback without hyperfine; median in seconds into START_MEDIAN[NAME]
time_loop() {
        local name=$1 i t0 t1
        shift
        local -a samples=()
        for ((i = 0; i < WARMUP + RUNS; i++)); do
                t0=$(date +%s%N)
                "$@" </dev/null >/dev/null 2>&1 || true
                t1=$(date +%s%N)
                ((i < WARMUP)) || samples+=("$((t1 - t0))")
        done
        START_MEDIAN[$name]=$(printf '%s\n' "${samples[@]}" | median | python3 -c 'import sys; print(float(sys.stdin.read()) / 1e9)')
}

bench_start() {
        local tree=$WORK/tiny names=() cmds=() i json
        echo "== 1. /bin/true in a busybox tree ($RUNS runs each, $WARMUP warm-up) =="
        if ! make_busybox_tree "$tree"; then
                echo "   no busybox (apt-get install busybox-static): skipped"
                return 0
        fi
        local berth_cmd="$BERTH -q --console=pipe -M $NAME_PREFIX-true -D $tree /bin/true"
        local nspawn_cmd="systemd-nspawn --register=no --keep-unit -q -M $NAME_PREFIX-true-n -D $tree /bin/true"
        local floor_cmd="unshare --fork --pid --mount --uts --ipc chroot $tree /bin/true"

        # each must work once before it is timed
        local n c out
        for n in berth nspawn floor; do
                case $n in
                berth) c=$berth_cmd ;;
                nspawn) have systemd-nspawn || { echo "   systemd-nspawn: not installed (apt-get install systemd-container)"; continue; }; c=$nspawn_cmd ;;
                floor) have unshare || { echo "   unshare: not installed"; continue; }; c=$floor_cmd ;;
                esac
                # shellcheck disable=SC2086
                if ! out=$($c </dev/null 2>&1); then
                        echo "   $n fails, not timed: $c"
                        printf '%s\n' "$out" | sed 's/^/     | /' | tail -n 5
                        continue
                fi
                names+=("$n")
                cmds+=("$c")
        done
        [ ${#names[@]} -gt 0 ] || return 0

        if have hyperfine; then
                local -a args=()
                for i in "${!names[@]}"; do
                        args+=(-n "${names[i]}" "${cmds[i]}")
                done
                hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/start.json" \
                        "${args[@]}" </dev/null | sed 's/^/   /'
                while IFS=$'\t' read -r n json; do
                        START_MEDIAN[$n]=$json
                done < <(python3 -c '
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print("%s\t%s" % (r["command"], r["median"]))' "$WORK/start.json")
        else
                echo "   (hyperfine is not installed: timing with a shell loop, which adds a fork+exec of overhead)"
                for i in "${!names[@]}"; do
                        # shellcheck disable=SC2086
                        time_loop "${names[i]}" ${cmds[i]}
                done
        fi
        for n in "${names[@]}"; do
                printf '   %-7s median %s\n' "$n" "$(fmt_ms "${START_MEDIAN[$n]}")"
        done
}

# ---- part 2: boot to READY=1 ----

write_helper() {
        cat >"$WORK/notify-timer.py" <<'EOF'
# notify-timer.py SOCKET LOG TREE IDLE READY_TIMEOUT STOP_TIMEOUT STOP_SIGNAL CMD...
# Binds a datagram socket at SOCKET, starts CMD with NOTIFY_SOCKET=SOCKET (output to LOG),
# times READY=1 from the start, waits IDLE seconds, reads the memory of CMD's process and
# of the guest (processes whose root mount comes from TREE), sends STOP_SIGNAL and times the exit.
# Prints one JSON object. On SIGTERM/SIGINT/SIGHUP it stops CMD before it exits.
import json, os, signal, socket, subprocess, sys, time


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
    # /proc/PID/root reads as "/" after pivot_root: the source path of the root mount tells
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
        if not p.isdigit() or int(p) == exclude:
            continue
        if root_source(int(p)) == tree:
            total += smaps(int(p)).get("pss", 0)
    return total


def parse_signal(s):
    if s.startswith("SIGRTMIN+"):
        return signal.SIGRTMIN + int(s[9:])
    return getattr(signal, s)


def main():
    sock_path, log_path, tree = sys.argv[1], sys.argv[2], sys.argv[3]
    idle, ready_timeout, stop_timeout = map(float, sys.argv[4:7])
    stop_sig = parse_signal(sys.argv[7])
    cmd = sys.argv[8:]

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, interrupted)
    try:
        os.unlink(sock_path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    sock.bind(sock_path)
    env = dict(os.environ, NOTIFY_SOCKET=sock_path)
    log = open(log_path, "ab")
    res = {}
    child = None
    try:
        t0 = time.monotonic()
        child = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        ready = None
        while ready is None and child.poll() is None:
            left = t0 + ready_timeout - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(min(left, 0.05))
            try:
                data = sock.recv(65536)
            except socket.timeout:
                continue
            if b"READY=1" in data.split(b"\n"):
                ready = time.monotonic() - t0
        res["ready"] = ready
        if ready is None:
            res["error"] = "exited before READY=1" if child.poll() is not None else "no READY=1 in time"
        else:
            time.sleep(idle)
            m = smaps(child.pid)
            res["rss"] = m.get("rss")
            res["pss"] = m.get("pss")
            res["guest_pss"] = guest_pss(tree, child.pid)
        if child.poll() is None:
            t1 = time.monotonic()
            child.send_signal(stop_sig)
            try:
                child.wait(timeout=stop_timeout)
            except subprocess.TimeoutExpired:
                res["stop_killed"] = True
                child.kill()
                child.wait()
            res["stop"] = time.monotonic() - t1
        res["exit"] = child.returncode
    except KeyboardInterrupt:
        res["error"] = "interrupted"
    finally:
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        sock.close()
        try:
            os.unlink(sock_path)
        except FileNotFoundError:
            pass
    print(json.dumps(res), flush=True)
    return 130 if res.get("error") == "interrupted" else 0


sys.exit(main())
EOF
}

declare -A BOOT_READY=() BOOT_STOP=() BOOT_RSS=() BOOT_PSS=() BOOT_GUEST=() BOOT_OK=()

# boot_once NAME STOPSIG CMD...: one run; appends the JSON line to $WORK/boot-NAME.jsonl
boot_once() {
        local name=$1 sig=$2 line
        shift 2
        python3 "$WORK/notify-timer.py" "$WORK/notify-$name.sock" "$WORK/boot-$name.log" "$WORK/deb" \
                "$IDLE" 60 30 "$sig" "$@" >"$WORK/last.json" &
        HELPER_PID=$!
        wait "$HELPER_PID" || true
        HELPER_PID=
        line=$(cat "$WORK/last.json")
        echo "$line" >>"$WORK/boot-$name.jsonl"
        python3 -c '
import json, sys
r = json.loads(sys.argv[2])
if r.get("ready") is None:
    print("   %-6s run failed: %s (exit %s)" % (sys.argv[1], r.get("error"), r.get("exit")))
else:
    print("   %-6s READY=1 after %.3f s, monitor RSS %.1f MiB PSS %.1f MiB, guest PSS %.1f MiB, stopped in %.3f s%s, exit %s" % (
        sys.argv[1], r["ready"], (r.get("rss") or 0) / 1024, (r.get("pss") or 0) / 1024, (r.get("guest_pss") or 0) / 1024,
        r.get("stop", float("nan")), " (killed)" if r.get("stop_killed") else "", r.get("exit")))' "$name" "$line"
}

boot_summary() {
        local name=$1 k v
        [ -s "$WORK/boot-$name.jsonl" ] || return 0
        while IFS=$'\t' read -r k v; do
                case $k in
                ready) BOOT_READY[$name]=$v ;;
                stop) BOOT_STOP[$name]=$v ;;
                rss) BOOT_RSS[$name]=$v ;;
                pss) BOOT_PSS[$name]=$v ;;
                guest_pss) BOOT_GUEST[$name]=$v ;;
                ok) BOOT_OK[$name]=$v ;;
                esac
        done < <(python3 -c '
import json, statistics, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ok = [r for r in rs if r.get("ready") is not None]
print("ok\t%d/%d" % (len(ok), len(rs)))
for k in ("ready", "stop", "rss", "pss", "guest_pss"):
    v = [r[k] for r in ok if r.get(k) is not None]
    print("%s\t%s" % (k, statistics.median(v) if v else "-"))' "$WORK/boot-$name.jsonl")
}

bench_boot() {
        local tree i
        echo
        echo "== 2. boot a Debian 12 tree to READY=1 ($BOOT_RUNS runs each, alternating; ${IDLE}s idle before the memory is read) =="
        if ! tree=$("$BERTH_SRC/test/tools/make-debian-tree.sh" "$BERTH_TEST_CACHE"); then
                echo "   cannot build the Debian tree (see $BERTH_TEST_CACHE/debootstrap.log): skipped"
                return 0
        fi
        # one writable copy, booted by both in turn
        mkdir -p "$WORK/deb"
        cp -a --reflink=auto "$tree/." "$WORK/deb/"
        rm -f "$WORK/deb/.complete"
        write_helper

        local -a berth_cmd=("$BERTH" -q -b --notify-ready=yes -M "$NAME_PREFIX-boot" -D "$WORK/deb")
        local -a nspawn_cmd=(systemd-nspawn --register=no --keep-unit -q -b --notify-ready=yes -M "$NAME_PREFIX-boot-n" -D "$WORK/deb")
        local do_nspawn=1
        have systemd-nspawn || { echo "   systemd-nspawn: not installed (apt-get install systemd-container)"; do_nspawn=0; }

        for ((i = 1; i <= BOOT_RUNS; i++)); do
                boot_once berth SIGTERM "${berth_cmd[@]}"
                [ "$do_nspawn" = 1 ] && boot_once nspawn SIGTERM "${nspawn_cmd[@]}"
        done
        boot_summary berth
        [ "$do_nspawn" = 1 ] && boot_summary nspawn
        if [ "${BOOT_OK[berth]:-0/0}" != "$BOOT_RUNS/$BOOT_RUNS" ]; then
                echo "   berth's boot log (last lines):"
                tail -n 15 "$WORK/boot-berth.log" 2>/dev/null | sed 's/^/     | /'
        fi
        return 0
}

# ---- run ----

echo "berth benchmark: $("$BERTH" --version 2>/dev/null || echo "berth ?"), $(systemd-nspawn --version 2>/dev/null | head -n1 || echo "no nspawn"), kernel $(uname -r), $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
[ "$DO_START" = 1 ] && bench_start
[ "$DO_BOOT" = 1 ] && bench_boot

# ---- summary ----

row() {
        printf '%-40s %12s %12s %12s %13s %12s\n' "$@"
}
echo
echo "== summary (medians) =="
row "" berth nspawn floor berth/nspawn berth/floor
if [ "$DO_START" = 1 ]; then
        row "/bin/true, busybox tree" "$(fmt_ms "${START_MEDIAN[berth]:--}")" "$(fmt_ms "${START_MEDIAN[nspawn]:--}")" \
                "$(fmt_ms "${START_MEDIAN[floor]:--}")" "$(ratio "${START_MEDIAN[berth]:--}" "${START_MEDIAN[nspawn]:--}")" \
                "$(ratio "${START_MEDIAN[berth]:--}" "${START_MEDIAN[floor]:--}")"
fi
if [ "$DO_BOOT" = 1 ]; then
        row "Debian boot to READY=1 (${BOOT_OK[berth]:-0/0}, ${BOOT_OK[nspawn]:-0/0} ok)" \
                "$(fmt_s "${BOOT_READY[berth]:--}")" "$(fmt_s "${BOOT_READY[nspawn]:--}")" "" \
                "$(ratio "${BOOT_READY[berth]:--}" "${BOOT_READY[nspawn]:--}")" ""
        row "stop after SIGTERM (guest poweroff)" "$(fmt_s "${BOOT_STOP[berth]:--}")" "$(fmt_s "${BOOT_STOP[nspawn]:--}")" "" \
                "$(ratio "${BOOT_STOP[berth]:--}" "${BOOT_STOP[nspawn]:--}")" ""
        row "monitor RSS, guest idle" "$(fmt_mib "${BOOT_RSS[berth]:--}")" "$(fmt_mib "${BOOT_RSS[nspawn]:--}")" "" \
                "$(ratio "${BOOT_RSS[berth]:--}" "${BOOT_RSS[nspawn]:--}")" ""
        row "monitor PSS, guest idle" "$(fmt_mib "${BOOT_PSS[berth]:--}")" "$(fmt_mib "${BOOT_PSS[nspawn]:--}")" "" \
                "$(ratio "${BOOT_PSS[berth]:--}" "${BOOT_PSS[nspawn]:--}")" ""
        row "guest PSS (all its processes), idle" "$(fmt_mib "${BOOT_GUEST[berth]:--}")" "$(fmt_mib "${BOOT_GUEST[nspawn]:--}")" "" \
                "$(ratio "${BOOT_GUEST[berth]:--}" "${BOOT_GUEST[nspawn]:--}")" ""
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
