#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# berth@.service against systemd-nspawn@.service, side by side on the same tree, inside the
# systemd test host (test/tools/systemd-host.sh: the machine itself has no systemd). Not a
# pass/fail test: it prints medians and ratios.
#
# For each run, alternating between the two units (machines "bb" and "nb", each
# /var/lib/machines/NAME as a writable overlay over the cached Debian 12 tree, pristine for
# every run):
#   active   time from `systemctl start UNIT` until it returns: the unit is active. berth@ is
#            Type=notify with --notify-ready=yes, so that is when the guest reported READY=1;
#            nspawn@ as shipped has no --notify-ready: it is active once the container runs.
#   running  time from the same start until `systemctl -M NAME is-system-running` says
#            running (polled every 20 ms; the same for both): the guest is up and reachable
#            through machined.
#   stop     time of `systemctl stop UNIT` (berth asks the guest to power off, nspawn to halt).
# nspawn@ runs with its shipped options minus -U and --network-veth (a drop-in), since
# berth@ has neither a user namespace nor a veth: the comparison is of the same work.
#
# Usage: test/bench/bench-systemd.sh [--runs N]     (default 5)
# Environment: BERTH_BUILD (build directory with berth), BERTH_TEST_CACHE.
# Needs root. Exits 77 (skip) when it cannot run here; outside the test host it boots one
# (about a second) and runs itself there.
set -euo pipefail

RUNS=5
while [ $# -gt 0 ]; do
        case $1 in
        --runs) RUNS=$2; shift 2 ;;
        *) echo "usage: $0 [--runs N]" >&2; exit 2 ;;
        esac
done

BERTH_SRC=${BERTH_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
: "${BERTH_TEST_CACHE:=/var/cache/berth-test}"

if [ "${BERTH_IN_TEST_HOST:-0}" != 1 ]; then
        if [ "$(id -u)" != 0 ]; then
                echo "bench-systemd: needs root" >&2
                exit 77
        fi
        if [ -z "${BERTH_BUILD:-}" ] && [ -n "${BERTH:-}" ]; then
                BERTH_BUILD=$(dirname "$BERTH")
        fi
        export BERTH_BUILD=${BERTH_BUILD:-$BERTH_SRC/build} BERTH_SRC BERTH_TEST_CACHE
        exec "$BERTH_SRC/test/tools/systemd-host.sh" "$0" --runs "$RUNS"
fi

# ---- inside the test host ----

TREE=$("$BERTH_SRC/test/tools/make-debian-tree.sh" "$BERTH_TEST_CACHE")

now_ms() {
        local t=${EPOCHREALTIME/[.,]/}
        echo $((t / 1000))
}

# fresh_tree NAME: /var/lib/machines/NAME as a pristine overlay over the cached tree
fresh_tree() {
        local d=/var/lib/machines/$1 o=/run/bench-trees/$1
        if mountpoint -q "$d"; then
                umount "$d"
        fi
        rm -rf "$o"
        mkdir -p "$d" "$o/upper" "$o/work"
        mount -t overlay overlay -o "lowerdir=$TREE,upperdir=$o/upper,workdir=$o/work" "$d"
}

setup_units() {
        sed "s|^ExecStart=berth |ExecStart=$BERTH |" "$BERTH_SRC/units/berth@.service" \
                >/etc/systemd/system/berth@.service
        mkdir -p /etc/systemd/system/systemd-nspawn@.service.d
        cat >/etc/systemd/system/systemd-nspawn@.service.d/bench.conf <<-EOF
	[Service]
	ExecStart=
	ExecStart=systemd-nspawn --quiet --keep-unit --boot --link-journal=try-guest --settings=override --machine=%i
	EOF
        systemctl daemon-reload
}

guest_running() {
        [ "$(systemctl -M "$1" is-system-running 2>/dev/null)" = running ]
}

# one UNIT NAME: appends "active running stop" (ms) to $OUT_DIR/UNIT
one() {
        local unit=$1 name=$2 t0 t1 t2 t3 t4 deadline
        fresh_tree "$name"
        t0=$(now_ms)
        systemctl start "$unit" || { journalctl -u "$unit" --no-pager | tail -20 >&2; return 1; }
        t1=$(now_ms)
        deadline=$((t0 + 60000))
        until guest_running "$name"; do
                [ "$(now_ms)" -lt "$deadline" ] || { echo "$unit: the guest did not reach running" >&2; return 1; }
                sleep 0.02
        done
        t2=$(now_ms)
        sleep 1
        t3=$(now_ms)
        systemctl stop "$unit"
        t4=$(now_ms)
        echo "$((t1 - t0)) $((t2 - t0)) $((t4 - t3))" >>"$OUT_DIR/$unit"
}

median_col() {
        awk -v c="$2" '{ print $c }' "$1" | sort -n | awk '{ v[NR] = $1 } END {
                if (NR == 0) { print "nan"; exit }
                if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() {
        awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
}

OUT_DIR=$(mktemp -d)
setup_units
# warm-up: the first boot of either pays for cold caches
one berth@bb.service bb >/dev/null
one systemd-nspawn@nb.service nb >/dev/null
: >"$OUT_DIR/berth@bb.service"
: >"$OUT_DIR/systemd-nspawn@nb.service"
for ((i = 0; i < RUNS; i++)); do
        one berth@bb.service bb
        one systemd-nspawn@nb.service nb
done

echo "systemctl start to active / to a running guest, and stop, in the systemd test host; medians of $RUNS runs (ms)"
printf '%-28s %10s %10s %10s\n' unit active running stop
for u in berth@bb.service systemd-nspawn@nb.service; do
        printf '%-28s %10s %10s %10s\n' "$u" "$(median_col "$OUT_DIR/$u" 1)" "$(median_col "$OUT_DIR/$u" 2)" \
                "$(median_col "$OUT_DIR/$u" 3)"
done
printf '%-28s %10s %10s %10s\n' "ratio berth/nspawn" \
        "$(ratio "$(median_col "$OUT_DIR/berth@bb.service" 1)" "$(median_col "$OUT_DIR/systemd-nspawn@nb.service" 1)")" \
        "$(ratio "$(median_col "$OUT_DIR/berth@bb.service" 2)" "$(median_col "$OUT_DIR/systemd-nspawn@nb.service" 2)")" \
        "$(ratio "$(median_col "$OUT_DIR/berth@bb.service" 3)" "$(median_col "$OUT_DIR/systemd-nspawn@nb.service" 3)")"
echo "(nspawn@ is active once its container runs, berth@ once the guest said READY=1: compare 'running')"
echo "raw (active running stop):"
for u in berth@bb.service systemd-nspawn@nb.service; do
        echo "  $u: $(tr '\n' ',' <"$OUT_DIR/$u")"
done
rm -rf "$OUT_DIR"
