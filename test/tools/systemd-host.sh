#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# systemd-host.sh [-s] SCRIPT [ARGS...]
#
# Boots the cached Debian 12 tree (make-debian-tree.sh) with systemd as PID 1 in a container
# (Debian's systemd-nspawn), runs SCRIPT in it once the host has reached multi-user.target, powers
# the host off and exits with SCRIPT's exit status; SCRIPT's stdout and stderr come out on ours.
# The development and CI machines have no systemd of their own: this host is where registration,
# berth@.service, machined and the journal are tested (see /work/shared/testhost.md for the
# measurements behind every choice below).
#
# The host:
#   - systemd-nspawn --boot with SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1: its own cgroup namespace and a
#     pure cgroup2 mount (without it the guest sees the machine's hybrid layout and delegation
#     fails); no cgroup controllers are available in it, only the hierarchy;
#   - --volatile=overlay: the cached tree is the lower layer of an overlay on tmpfs, so every run
#     starts from a pristine tree and runs can go in parallel;
#   - --private-network: veths made by tests stay off the machine's network;
#   - its own cgroup per run below /sys/fs/cgroup/systemd and /sys/fs/cgroup/unified, which the
#     runner moves into before starting nspawn (--keep-unit: nspawn stays where it is started and
#     creates its payload/supervisor cgroups there);
#   - --register=no: there is no machined on the machine;
#   - --system-call-filter=bpf: berth inside sets up a device policy, which on a pure cgroup2
#     hierarchy is a BPF program attached to the container's cgroup; bpf(2) is not in nspawn's
#     default filter (without it berth refuses to start: "Failed to apply the device policy").
#     nspawn's default capabilities are enough (CAP_SYS_ADMIN covers loading the program);
#     --capability=all changes nothing for the tests;
#   - read-only binds of the build directory and the source tree at the same paths as here (the
#     guest is Debian 12 too: the binaries' libraries match), and of the test cache (Debian tree,
#     tiny tree prototypes);
#   - /berth-job (read-write): SCRIPT, its environment, and results/ (stdout, stderr, status).
# SCRIPT runs from berth-test-job.service (Type=exec, After=multi-user.target, pulled in with
# systemd.wants= on PID 1's command line), as root, with BERTH, BERTHCTL, BERTH_PAYLOAD,
# BERTH_SRC, BERTH_BUILD, BERTH_TEST_CACHE, CI, TEST_FILTER and the BERTH_TEST_* knobs of the
# caller passed through, and BERTH_IN_TEST_HOST=1.
#
# Exit status: SCRIPT's, or 125 if the host could not be started or did not report a status
# (then the host's console and, when the job ran, its journal are shown on stderr). Never a skip:
# a machine where the host cannot start must fail the tests that need it.
#
# Options: -s keeps the run directory (console log, results, the journal of a failed job) and
# prints its path, for debugging; the same as BERTH_HOST_KEEP=1.
# Knobs: BERTH_HOST_TIMEOUT (s, default 600), BERTH_HOST_EXTRA (more nspawn arguments),
# BERTH_HOST_CAPABILITY and BERTH_HOST_SYSCALLS (nspawn's --capability= and
# --system-call-filter= for the host; empty: nspawn's defaults),
# BERTH_BUILD (default: the berth binary's directory from $BERTH, or SRC/build).
set -euo pipefail

keep=${BERTH_HOST_KEEP:-0}
if [ "${1:-}" = -s ]; then
        keep=1
        shift
fi
if [ $# -lt 1 ] || [ ! -r "$1" ]; then
        echo "usage: $0 [-s] SCRIPT [ARGS...]" >&2
        exit 2
fi
script=$1
shift

src=$(realpath "${BERTH_SRC:-$(dirname "${BASH_SOURCE[0]}")/../..}")
if [ -z "${BERTH_BUILD:-}" ]; then
        if [ -n "${BERTH:-}" ]; then
                BERTH_BUILD=$(dirname "$(realpath "$BERTH")")
        else
                BERTH_BUILD=$src/build
        fi
fi
cache=${BERTH_TEST_CACHE:-/var/cache/berth-test}
timeout_s=${BERTH_HOST_TIMEOUT:-600}
# what the host gives berth inside (see the header); overridable to find out what is needed
host_caps=${BERTH_HOST_CAPABILITY-}
host_syscalls=${BERTH_HOST_SYSCALLS-bpf}

die() {
        echo "systemd-host: $*" >&2
        exit 125
}

[ "$(id -u)" = 0 ] || die "needs root"
command -v systemd-nspawn >/dev/null || die "systemd-nspawn is missing: apt-get install systemd-container"
BERTH_BUILD=$(realpath "$BERTH_BUILD")
[ -x "$BERTH_BUILD/berth" ] || die "no berth binary in '$BERTH_BUILD' (set BERTH_BUILD)"

tree=$("$src/test/tools/make-debian-tree.sh" "$cache") || die "cannot build the Debian tree (see $cache/debootstrap.log)"

run=$(mktemp -d /var/tmp/berth-host.XXXXXX)
id=${run##*.}
name=berth-host-$id
cg_name=berth-host-$id
cgroups=()

# shellcheck disable=SC2317 # called by the trap
cleanup() {
        local cg d
        for cg in "${cgroups[@]}"; do
                # nspawn leaves payload/ and supervisor/ behind: deepest first
                if [ -d "$cg" ]; then
                        find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
                fi
        done
        if [ "$keep" = 1 ]; then
                echo "systemd-host: kept $run" >&2
        else
                for d in "$run"/*; do
                        mountpoint -q "$d" && umount -l "$d"
                done
                rm -rf "$run"
        fi
}
trap cleanup EXIT

mkdir -p "$run/job/results"
# A script of the source or build tree runs where it is (bound at the same path, so that it
# finds its neighbours, lib.sh for one); any other is copied in.
script=$(realpath "$script")
case $script in
"$src"/* | "$BERTH_BUILD"/*)
        job_script=$script
        ;;
*)
        cp "$script" "$run/job/script"
        chmod 0755 "$run/job/script"
        job_script=/berth-job/script
        ;;
esac

# The job's environment, as bash assignments (declare -p quotes everything safely).
{
        for v in BERTH BERTHCTL BERTH_PAYLOAD BERTH_TEST_CACHE CI TEST_FILTER RUN_TIMEOUT WAIT_TIMEOUT \
                BERTH_TEST_KEEP BERTH_TEST_VERBOSE BERTH_TEST_MIRROR; do
                if [ -n "${!v+x}" ]; then
                        printf 'export %s=%q\n' "$v" "${!v}"
                fi
        done
        printf 'export BERTH_SRC=%q BERTH_BUILD=%q BERTH_TEST_CACHE=%q BERTH_IN_TEST_HOST=1\n' \
                "$src" "$BERTH_BUILD" "$cache"
        [ -n "${BERTH+x}" ] || printf 'export BERTH=%q\n' "$BERTH_BUILD/berth"
        [ -n "${BERTHCTL+x}" ] || printf 'export BERTHCTL=%q\n' "$BERTH_BUILD/berthctl"
        [ -n "${BERTH_PAYLOAD+x}" ] || printf 'export BERTH_PAYLOAD=%q\n' "$BERTH_BUILD/test/berth-test-payload"
        printf 'SCRIPT=%q\n' "$job_script"
        printf 'ARGS=('
        for a in "$@"; do
                printf '%q ' "$a"
        done
        printf ')\n'
} >"$run/job/env"

cat >"$run/job/run" <<'EOF'
#!/bin/bash
# Runs inside the test host as berth-test-job.service.
. /berth-job/env
cd /berth-job
rc=0
"$SCRIPT" "${ARGS[@]}" </dev/null >/berth-job/results/stdout 2>/berth-job/results/stderr || rc=$?
if [ "$rc" != 0 ]; then
        journalctl -b --no-pager -o short-monotonic >/berth-job/results/journal 2>&1 || true
fi
echo "$rc" >/berth-job/results/status.tmp
mv /berth-job/results/status.tmp /berth-job/results/status
systemctl poweroff --no-block
EOF
chmod 0755 "$run/job/run"

cat >"$run/job/berth-test-job.service" <<'EOF'
[Unit]
Description=berth test job
After=multi-user.target

[Service]
Type=exec
ExecStart=/berth-job/run
StandardOutput=journal
StandardError=journal
EOF

# The runner's own cgroups: nspawn (--keep-unit) and everything it creates live there, and a
# run's leftovers can go with the directory.
for h in systemd unified; do
        if [ -d "/sys/fs/cgroup/$h" ] && [ "$(stat -f -c %T "/sys/fs/cgroup/$h")" != tmpfs ]; then
                mkdir "/sys/fs/cgroup/$h/$cg_name" || die "cannot create a cgroup in /sys/fs/cgroup/$h"
                cgroups+=("/sys/fs/cgroup/$h/$cg_name")
        fi
done
if [ ${#cgroups[@]} = 0 ] && [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
        mkdir "/sys/fs/cgroup/$cg_name" || die "cannot create a cgroup in /sys/fs/cgroup"
        cgroups+=("/sys/fs/cgroup/$cg_name")
fi

# norbind: the host's own root is an overlay mounted on the cached tree's path (inside the cache),
# and a recursive bind of the cache would show the host's live root where tests expect the
# pristine tree
binds=(--bind-ro="$BERTH_BUILD:$BERTH_BUILD:norbind" --bind-ro="$src:$src:norbind"
        --bind-ro="$cache:$cache:norbind" --bind="$run/job:/berth-job"
        --bind-ro="$run/job/berth-test-job.service:/etc/systemd/system/berth-test-job.service")

start=${EPOCHREALTIME/[.,]/}
rc=0
(
        for cg in "${cgroups[@]}"; do
                echo "$BASHPID" >"$cg/cgroup.procs"
        done
        # shellcheck disable=SC2086 # BERTH_HOST_EXTRA is a list of arguments
        SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 exec timeout -k 10 "$timeout_s" systemd-nspawn \
                --quiet --directory="$tree" --volatile=overlay --machine="$name" \
                --private-network --register=no --keep-unit --link-journal=no \
                ${host_caps:+--capability="$host_caps"} ${host_syscalls:+--system-call-filter="$host_syscalls"} \
                --console=pipe "${binds[@]}" ${BERTH_HOST_EXTRA:-} \
                --boot -- systemd.wants=berth-test-job.service systemd.show_status=0
) </dev/null >"$run/console" 2>&1 || rc=$?
end=${EPOCHREALTIME/[.,]/}

if [ ! -e "$run/job/results/status" ]; then
        {
                echo "systemd-host: the test host did not report a status (nspawn exited with $rc" \
                        "after $(((end - start) / 1000)) ms); its console:"
                tail -n 60 "$run/console" | sed 's/^/  | /'
        } >&2
        [ -s "$run/job/results/stdout" ] && cat "$run/job/results/stdout"
        [ -s "$run/job/results/stderr" ] && cat "$run/job/results/stderr" >&2
        exit 125
fi
status=$(<"$run/job/results/status")
cat "$run/job/results/stdout"
cat "$run/job/results/stderr" >&2
if [ "$status" != 0 ] && [ -s "$run/job/results/journal" ]; then
        if [ "$keep" = 1 ]; then
                echo "systemd-host: the host's journal is in $run/job/results/journal" >&2
        else
                echo "systemd-host: the host's journal (last 80 lines):" >&2
                tail -n 80 "$run/job/results/journal" | sed 's/^/  | /' >&2
        fi
fi
echo "systemd-host: host up and down in $(((end - start) / 1000)) ms, script exited with $status" >&2
exit "$status"
