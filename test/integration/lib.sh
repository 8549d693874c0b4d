# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# The library every integration test sources:
#
#       #!/bin/bash
#       . "$(dirname "$0")/lib.sh"
#       require_root
#
#       test_hello() {
#               make_tiny_tree "$ROOT"
#               berth -D "$ROOT" /usr/bin/payload echo hello
#               assert_eq 0 "$RC"
#               assert_eq hello "$OUT"
#       }
#
#       run_tests
#
# Each test_* function is one TAP test case, run in order of definition in its own subshell
# with `set -eu -o pipefail`, its own scratch directory $T (also the working directory) and
# its output kept in a log that is shown as "# ..." diagnostics when the case fails. $ROOT
# ($T/$ROOT_NAME) is where a case puts its usual tree; $ROOT_NAME, unique to the run, is the
# machine name berth gives it by default. A function case_setup, if the script defines one,
# runs first in every case.
# After each case: every process that still carries the case's marker in its environment
# (berth started by the case, directly or in the background) and their descendants are
# killed, every mount under $T is unmounted, and $T is removed (kept when
# BERTH_TEST_KEEP=1).
#
# Environment (set by meson): BERTH, BERTH_PAYLOAD, BERTH_SRC, BERTH_BUILD.
# Knobs: TEST_FILTER (regex on case names), RUN_TIMEOUT (s, default 120),
# WAIT_TIMEOUT (s, default 60), BERTH_TEST_CACHE (default /var/cache/berth-test),
# BERTH_TEST_KEEP=1 (keep $T), BERTH_TEST_VERBOSE=1 (show logs of passing cases too).
#
# Determinism: the suite runs on busy 2-core machines, next to other test runs and other
# containers. So a case
#   - waits for a state by polling it (wait_for CMD, or wait_for a function that checks the
#     state): never `wait_for test "$(cmd)" ...`, whose $(cmd) runs once, before the wait;
#     never a sleep that guesses how long something takes. The timeouts are generous: a wait
#     that succeeds costs only the time until the state is there;
#   - names everything that is seen host-wide after the run (machines, hence the trees whose
#     names become machine names; cgroups; units; links, zones, nftables tables, ports) with
#     unique_name, unique_short_name or unique_port, never a fixed name that a second run or a
#     user's own machine may hold at the same time: $ROOT is the case's usual tree;
#   - kills only what it started, by the PID it got ($!, a record of its own berth): never by
#     name or pattern (pkill, killall: another run's processes have the same names; test-lint
#     refuses them); the runner's own cleanup checks every PID again just before the signal;
#   - never expects to be alone: a start of any berth cleans after every dead instance, so a
#     case that keeps a dead instance around on purpose uses a run dir of its own
#     (BERTH_RUN_DIR, see private_run_dir); host_snapshot looks at this run's names only.

: "${BERTH_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
if [ -z "${BERTH:-}" ] && [ -n "${BERTH_BUILD:-}" ]; then
        BERTH="$BERTH_BUILD/berth"
fi
if [ -z "${BERTH_PAYLOAD:-}" ] && [ -n "${BERTH_BUILD:-}" ]; then
        BERTH_PAYLOAD="$BERTH_BUILD/test/berth-test-payload"
fi
: "${BERTH_TEST_CACHE:=/var/cache/berth-test}"
: "${RUN_TIMEOUT:=120}"
: "${WAIT_TIMEOUT:=60}"
# berth.conf of the host (if it has one) would change every default: none unless a test names one
export BERTH_CONF="${BERTH_CONF-}"
export BERTH_SRC BERTH_TEST_CACHE
[ -n "${BERTH:-}" ] && export BERTH
[ -n "${BERTH_PAYLOAD:-}" ] && export BERTH_PAYLOAD
[ -n "${BERTH_BUILD:-}" ] && export BERTH_BUILD

# Marks every process started by this run (see host_snapshot) and by each case (cleanup).
BERTH_TEST_RUN="${BERTH_TEST_RUN:-$$.$RANDOM}"
export BERTH_TEST_RUN

# ---- names unique to this run ----

# The prefix of every name this run gives to something that is seen host-wide: "t" and five hex
# digits derived from BERTH_TEST_RUN, short enough for link names (15 characters).
BT_PREFIX=t$(printf '%s' "$BERTH_TEST_RUN" | md5sum | cut -c1-5)
export BT_PREFIX

# unique_name WORD: "$BT_PREFIX-WORD", cut to 64 characters (a valid machine name, host name,
# unit name part and nftables table name when WORD is made of letters, digits, '-' and '_').
unique_name() {
        local n="$BT_PREFIX-$1"
        n=${n:0:64}
        while [[ $n == *[-.] ]]; do
                n=${n%?}
        done
        echo "$n"
}

# unique_short_name WORD: "$BT_PREFIX" and WORD in 15 characters at most (network interfaces,
# zones).
unique_short_name() {
        local n="$BT_PREFIX$1"
        echo "${n:0:15}"
}

# unique_port [N]: a TCP/UDP port for this run (N: 0..99, for more than one): 20000 plus a
# multiple of 100 derived from BERTH_TEST_RUN.
unique_port() {
        echo $((20000 + (0x${BT_PREFIX#t} % 400) * 100 + ${1:-0}))
}

T=
ROOT=
ROOT_NAME=
OUT=
ERR=
RC=

# ---- skipping and failing ----

require_root() {
        if [ "$(id -u)" != 0 ]; then
                echo "1..0 # SKIP needs root"
                exit 0
        fi
        if [ -z "${BERTH:-}" ] || [ ! -x "$BERTH" ]; then
                echo "1..0 # SKIP \$BERTH is not set to the berth binary (run through 'meson test')"
                exit 0
        fi
        if [ -z "${BERTH_PAYLOAD:-}" ] || [ ! -x "$BERTH_PAYLOAD" ]; then
                echo "1..0 # SKIP \$BERTH_PAYLOAD is not set to the test payload (run through 'meson test')"
                exit 0
        fi
}

# fail MSG: ends the case as failed.
fail() {
        echo "# $*" >&2
        exit 1
}

# skip MSG: ends the case as skipped.
skip() {
        if [ -n "${_BT_CASE_STATE:-}" ]; then
                echo "$*" >"$_BT_CASE_STATE.skip"
        fi
        echo "# SKIP $*" >&2
        exit 77
}

# require_berthctl: skips the script unless $BERTHCTL (else $BERTH_BUILD/berthctl) is the berthctl
# binary; exports BERTHCTL.
require_berthctl() {
        if [ -z "${BERTHCTL:-}" ] && [ -n "${BERTH_BUILD:-}" ]; then
                BERTHCTL="$BERTH_BUILD/berthctl"
        fi
        if [ -z "${BERTHCTL:-}" ] || [ ! -x "$BERTHCTL" ]; then
                echo "1..0 # SKIP \$BERTHCTL is not set to the berthctl binary (run through 'meson test')"
                exit 0
        fi
        export BERTHCTL
}

# require_test_hooks: skips the case unless $BERTH_BUILD is a test build, whose binaries take the
# BERTH_TEST_* fault injections.
require_test_hooks() {
        grep -qx '#define BERTH_TEST_HOOKS 1' "${BERTH_BUILD:-/nonexistent}/config.h" 2>/dev/null ||
                skip "not a test build: meson configure -Dtest-hooks=true (test/run-all does)"
}

# ---- running commands ----

# run CMD...: runs CMD with stdin from /dev/null and a timeout ($RUN_TIMEOUT s), sets $OUT,
# $ERR (trailing newlines stripped, like $(...)) and $RC (124 on timeout). Never fails itself.
run() {
        local base="${_BT_CASE_STATE:-${TMPDIR:-/tmp}/berth-test-run}.$BASHPID" start=$SECONDS

        RC=0
        if declare -F "$1" >/dev/null; then
                ( "$@" ) </dev/null >"$base.out" 2>"$base.err" || RC=$?
        else
                timeout -k 5 "$RUN_TIMEOUT" "$@" </dev/null >"$base.out" 2>"$base.err" || RC=$?
                if [ "$RC" = 137 ] && [ $((SECONDS - start)) -ge "$RUN_TIMEOUT" ]; then
                        RC=124
                fi
        fi
        OUT=$(<"$base.out")
        ERR=$(<"$base.err")
        _BT_LAST_RUN="$*"
        if [ "$RC" = 124 ]; then
                echo "# timed out after ${RUN_TIMEOUT}s: $*" >&2
        fi
        return 0
}

# berth ARGS...: run "$BERTH" ARGS...
berth() {
        run "$BERTH" "$@"
}

# wait_for CMD...: runs CMD (output discarded) every 50 ms until it succeeds; returns 1
# after $WAIT_TIMEOUT s. CMD may be a shell function: put a check that needs a command
# substitution or a pipe into one (or into sh -c '...'), so that the whole check runs again
# on every poll:
#       procs_at_least() { [ "$(wc -l <"$1")" -ge "$2" ]; }
#       wait_for procs_at_least "$cg/cgroup.procs" 2
# not `wait_for test "$(wc -l <...)" -ge 2`: there $(...) is expanded once, before the wait.
wait_for() {
        local now=${EPOCHREALTIME/[.,]/} deadline
        deadline=$((now + ${WAIT_TIMEOUT%.*} * 1000000))
        while :; do
                if "$@" >/dev/null 2>&1; then
                        return 0
                fi
                now=${EPOCHREALTIME/[.,]/}
                if [ "$now" -ge "$deadline" ]; then
                        echo "# timed out after ${WAIT_TIMEOUT}s waiting for: $*" >&2
                        return 1
                fi
                sleep 0.05
        done
}

# ---- assertions: each ends the case with a failure and a diagnostic ----

_bt_show_run() {
        echo "# command exited with $RC"
        echo "# stdout:"
        printf '%s\n' "$OUT" | sed 's/^/#   /'
        echo "# stderr:"
        printf '%s\n' "$ERR" | sed 's/^/#   /'
}

assert_eq() {
        if [ "$1" != "$2" ]; then
                {
                        echo "# ${3:-assert_eq}: values differ"
                        echo "#   expected: '$1'"
                        echo "#   actual:   '$2'"
                        _bt_show_last_run
                } >&2
                exit 1
        fi
}

assert_contains() {
        if [[ "$1" != *"$2"* ]]; then
                {
                        echo "# ${3:-assert_contains}: '$2' not found in:"
                        printf '%s\n' "$1" | sed 's/^/#   /'
                        _bt_show_last_run
                } >&2
                exit 1
        fi
}

assert_not_contains() {
        if [[ "$1" == *"$2"* ]]; then
                {
                        echo "# ${3:-assert_not_contains}: '$2' unexpectedly found in:"
                        printf '%s\n' "$1" | sed 's/^/#   /'
                        _bt_show_last_run
                } >&2
                exit 1
        fi
}

# first_line TEXT: TEXT's first line. Not printf | head: bash writes a line at a time, head leaves
# after the first, and under pipefail the printf's SIGPIPE fails the pipeline (exit status 141).
first_line() {
        printf '%s\n' "${1%%$'\n'*}"
}

# assert_match HAYSTACK REGEX [MSG]: some line of HAYSTACK matches the extended REGEX (grep -E).
assert_match() {
        # a here-string, not printf | grep -q: grep -q leaves at the first match, and under
        # pipefail the SIGPIPE of a printf still writing made a match count as none
        if ! grep -Eq -- "$2" <<<"$1"; then
                {
                        echo "# ${3:-assert_match}: no line matches /$2/ in:"
                        printf '%s\n' "$1" | sed 's/^/#   /'
                        _bt_show_last_run
                } >&2
                exit 1
        fi
}

# Every failed assertion also shows the last command that run() ran, to explain the values.
_bt_show_last_run() {
        [ -n "${_BT_LAST_RUN:-}" ] || return 0
        echo "# last run: $_BT_LAST_RUN"
        echo "#   exit status $RC; stderr:"
        sed -n '1,20s/^/#   /p' <<<"$ERR"
}

# assert_rc EXPECTED CMD...: runs CMD (see run) and checks its exit status.
assert_rc() {
        local expected=$1
        shift
        run "$@"
        if [ "$RC" != "$expected" ]; then
                {
                        echo "# expected exit status $expected: $*"
                        _bt_show_run
                } >&2
                exit 1
        fi
}

assert_ok() {
        assert_rc 0 "$@"
}

# assert_fails CMD...: CMD exits with a status other than 0 and 124 (timeout).
assert_fails() {
        run "$@"
        if [ "$RC" = 0 ] || [ "$RC" = 124 ]; then
                {
                        echo "# expected a failure (not 0, not a timeout): $*"
                        _bt_show_run
                } >&2
                exit 1
        fi
}

# assert_one_line_error: $ERR (of the last run) is exactly one non-empty line.
assert_one_line_error() {
        if [ -z "$ERR" ] || [ "$(printf '%s\n' "$ERR" | wc -l)" != 1 ]; then
                {
                        echo "# ${1:-assert_one_line_error}: expected exactly one line on stderr, got:"
                        printf '%s\n' "$ERR" | sed 's/^/#   /'
                } >&2
                exit 1
        fi
}

# private_run_dir: this case's berths keep their records and locks in $T/run (BERTH_RUN_DIR),
# out of sight of every other berth. For cases that leave a dead instance behind on purpose and
# look at it: a berth of another run or of the host's own, starting meanwhile, would clean it
# (every start cleans after every dead instance). Sets RUN_DIR.
private_run_dir() {
        RUN_DIR=$T/run
        BERTH_RUN_DIR=$RUN_DIR
        export BERTH_RUN_DIR
        mkdir -p "$RUN_DIR"
}

# ---- trees ----

# make_tiny_tree DIR: a small OS tree around busybox and the payload (see _bt_build_tiny).
make_tiny_tree() {
        local dir=$1 proto=${_BT_TINY_PROTO:-}
        if [ -z "$proto" ] || [ ! -d "$proto" ]; then
                proto=$(_bt_tiny_prototype) || return 1
        fi
        if [ -d "$dir" ]; then
                cp -a "$proto/." "$dir/"
        else
                [ -d "${dir%/*}" ] || mkdir -p "${dir%/*}"
                cp -a "$proto" "$dir"
        fi
}

# Prints the path of the prototype, keyed on busybox, the payload and this recipe.
_bt_tiny_proto_path() {
        local key
        key=$(stat -L -c '%s.%Y.%i' /bin/busybox "$BERTH_PAYLOAD" "${BASH_SOURCE[0]}" | md5sum) || return 1
        echo "$BERTH_TEST_CACHE/tiny-${key:0:12}"
}

_bt_tiny_prototype() {
        local busybox=/bin/busybox proto

        if [ ! -x "$busybox" ] || ! "$busybox" --list >/dev/null 2>&1; then
                echo "# /bin/busybox is missing: apt-get install busybox-static" >&2
                return 1
        fi
        proto=$(_bt_tiny_proto_path) || return 1
        # $proto appears (by rename) only when complete.
        if [ ! -d "$proto" ]; then
                mkdir -p "$BERTH_TEST_CACHE"
                (
                        flock 9
                        if [ ! -d "$proto" ]; then
                                rm -rf "$proto.tmp"
                                # prototypes of older payloads, unless another run may still use them
                                find "$BERTH_TEST_CACHE" -maxdepth 1 -name 'tiny-*' -mmin +1440 \
                                        -exec rm -rf {} + 2>/dev/null
                                _bt_build_tiny "$proto.tmp" "$busybox" &&
                                        mv -T "$proto.tmp" "$proto"
                        fi
                ) 9>"$BERTH_TEST_CACHE/.tiny.lock" || return 1
        fi
        echo "$proto"
}

# The tiny tree:
#   /bin/busybox and a symlink per applet in /bin (sh, cat, ls, mount, init, ...),
#   /sbin/init -> ../bin/busybox with /etc/inittab: "::sysinit:/bin/echo booted" and
#       "::shutdown:/bin/echo shutdown" (busybox init: SIGTERM reboots, SIGUSR1 halts,
#       SIGUSR2 powers off; it ignores SIGRTMIN+3/+4),
#   /usr/bin/payload, /etc/os-release (ID=berthtest, VERSION_ID=1; no /usr/lib/os-release),
#   /etc/passwd, /etc/group: root 0, tester 1000:1000 (/home/tester), nobody 65534, group tty 5,
#   an empty /etc/machine-id, empty /dev /proc /sys /run /tmp /var/tmp /root.
_bt_build_tiny() {
        local d=$1 busybox=$2 a
        mkdir -p "$d"/{bin,sbin,usr/bin,usr/lib,etc,dev,proc,sys,run,tmp,var/tmp,root,home/tester}
        chmod 1777 "$d/tmp" "$d/var/tmp"
        chmod 0700 "$d/root"
        cp "$busybox" "$d/bin/busybox"
        for a in $("$busybox" --list); do
                [ "$a" = busybox ] || ln -s busybox "$d/bin/$a"
        done
        ln -sf ../bin/busybox "$d/sbin/init"
        cp "$BERTH_PAYLOAD" "$d/usr/bin/payload"
        chmod 0755 "$d/usr/bin/payload"
        cat >"$d/etc/os-release" <<-EOF
		ID=berthtest
		NAME="berth test tree"
		PRETTY_NAME="berth test tree 1"
		VERSION_ID=1
		EOF
        cat >"$d/etc/passwd" <<-EOF
		root:x:0:0:root:/root:/bin/sh
		tester:x:1000:1000:tester:/home/tester:/bin/sh
		nobody:x:65534:65534:nobody:/nonexistent:/bin/false
		EOF
        cat >"$d/etc/group" <<-EOF
		root:x:0:
		tty:x:5:
		tester:x:1000:
		nogroup:x:65534:
		EOF
        cat >"$d/etc/inittab" <<-EOF
		::sysinit:/bin/echo booted
		::shutdown:/bin/echo shutdown
		EOF
        : >"$d/etc/machine-id"
        chown 1000:1000 "$d/home/tester"
}

# debian_tree: prints the path of the cached Debian 12 tree (building it takes about a
# minute the first time). Skips the case when it cannot be built. Read-only: tests that
# write to it use copy_debian_tree. Use as tree=$(debian_tree), not local tree=$(...).
debian_tree() {
        local tree
        if ! tree=$("$BERTH_SRC/test/tools/make-debian-tree.sh" "$BERTH_TEST_CACHE"); then
                skip "cannot build the Debian test tree (see $BERTH_TEST_CACHE/debootstrap.log)"
        fi
        echo "$tree"
}

# copy_debian_tree DIR: a writable copy of the Debian tree.
copy_debian_tree() {
        local src
        src=$(debian_tree) || exit $?
        mkdir -p "$1"
        cp -a --reflink=auto "$src/." "$1/"
        rm -f "$1/.complete"
}

# ---- berth in the background ----

# start_bg [--no-wait] [--loud] [--tiny] NAME DIR [BERTH ARGS...]: starts berth -D DIR -M NAME
# --console=passive -q ARGS in the background (a --console= in ARGS comes later and counts), stdin
# /dev/null, stdout and stderr in $T/NAME.log; $BG_PID is its PID, ${BG_PIDS[NAME]} too. Then
# wait_bg NAME.
#   --no-wait: returns at once; the caller waits with wait_bg or for a sign of its own (a line in
#       the log, a file the guest writes), e.g. to start machines at the same time.
#   --loud: without -q, so that berth's status messages and warnings are in the log.
#   --tiny: DIR is made a tiny tree first unless it is there.
#   $BG_WRAP, if set, is words before berth that exec it in the same process (nsenter --net=...,
#       prlimit ...).
# The log of an earlier start under NAME goes first: a wait for a line in it must see this
# start's. A case that did not do that once read the first start's "booted" before the second
# start had truncated the file, signalled a shell that had not yet become berth (the signal was
# lost at exec) and waited for ever.
declare -gA BG_PIDS=()
start_bg() {
        local wait=1 quiet=-q tiny=0 name dir log
        while :; do
                case ${1-} in
                --no-wait) wait=0 ;;
                --loud) quiet= ;;
                --tiny) tiny=1 ;;
                *) break ;;
                esac
                shift
        done
        name=$1 dir=$2
        shift 2
        log=$T/$name.log
        [ "$tiny" = 0 ] || [ -d "$dir" ] || make_tiny_tree "$dir"
        rm -f "$log"
        # shellcheck disable=SC2086 # BG_WRAP is words
        ${BG_WRAP:-} "$BERTH" -D "$dir" -M "$name" --console=passive ${quiet:+"$quiet"} "$@" </dev/null >"$log" 2>&1 &
        BG_PID=$!
        BG_PIDS[$name]=$BG_PID
        [ "$wait" = 0 ] || wait_bg "$name"
}

# wait_bg NAME: waits until the machine's record is that of the berth that start_bg started last
# as NAME and says it runs (120 s at most); when that berth exits first or the time is up, shows
# its log and fails the case.
wait_bg() {
        local name=$1 pid=${BG_PIDS[$1]}
        if ! WAIT_TIMEOUT=120 wait_for _bt_bg_settled "$name" "$pid" || ! _bt_bg_running "$name" "$pid"; then
                sed 's/^/# berth: /' "$T/$name.log" >&2
                fail "machine '$name' did not come up (berth $pid)"
        fi
}

# stop_bg PID: SIGTERM to a berth of start_bg, waits until it has exited.
stop_bg() {
        kill -TERM "$1" 2>/dev/null || true
        wait "$1" 2>/dev/null || true
}

# _bt_bg_running NAME PID: the record of machine NAME is that of the berth with PID (not one that
# an earlier, killed instance left) and says the machine runs
_bt_bg_running() {
        local r
        r=$(cat "${BERTH_RUN_DIR:-/run/berth}/machines/$1" 2>/dev/null) || return 1
        grep -qx "PID=$2" <<<"$r" && grep -Eqx 'STATE=(running|ready)' <<<"$r"
}

# _bt_bg_settled NAME PID: the berth with PID runs machine NAME or has exited (a zombie not yet
# waited for counts as exited)
_bt_bg_settled() {
        local s
        _bt_bg_running "$1" "$2" && return 0
        s=$(cat "/proc/$2/stat" 2>/dev/null) || return 0
        s=${s##*) }
        [ "${s%% *}" = Z ]
}

# ---- host state ----

# What host_snapshot compares: what this run could have changed, not what other runs or the
# host's own containers change at the same time:
#   - the mounts a berth of this case could leave on the host: in $T (trees, binds of the case's
#     files), in /run/berth (or $BERTH_RUN_DIR: the staging mounts) and /var/lib/machines, or of
#     something in $T; not the rest of the host's mount table, which others change (ip netns,
#     another run's systemd test host);
#   - what /run/berth (or $BERTH_RUN_DIR) holds for machines named with this run's prefix (the
#     directories themselves are shared; any berth creates them), and any mount there;
#   - the cgroups and the network links named with this run's prefix;
#   - the berth processes this run started.
_bt_host_state() {
        local run_dir=${BERTH_RUN_DIR:-/run/berth}
        echo "## mounts"
        findmnt -rn -o TARGET,SOURCE | sort | while read -r target source; do
                case $target in
                "$T" | "$T"/* | "$run_dir" | "$run_dir"/* | /run/berth | /run/berth/* | \
                        /var/lib/machines | /var/lib/machines/*) ;;
                *) [[ $source == *"$T"* ]] || continue ;;
                esac
                printf '%s %s\n' "$target" "$source"
        done || true
        echo "## $run_dir"
        # (the seccomp filter cache there grows legitimately)
        if [ -e "$run_dir" ]; then
                find "$run_dir" -mindepth 2 -path "$run_dir/cache/*" -prune -o -name "*$BT_PREFIX*" -print |
                        sort || true
        fi
        echo "## cgroups"
        find /sys/fs/cgroup/*/ -type d -name "*berth*$BT_PREFIX*" 2>/dev/null | sort || true
        echo "## links"
        ip -o link show 2>/dev/null | awk '{ print $2 }' | grep -F -- "$BT_PREFIX" | sort || true
        echo "## berth processes"
        _bt_berth_processes
}

# Processes named berth that this test run started (other people's berths are not ours).
_bt_berth_processes() {
        local p comm cmdline
        for p in $(grep -lzx "BERTH_TEST_RUN=$BERTH_TEST_RUN" /proc/[0-9]*/environ 2>/dev/null); do
                p=${p%/environ}
                read -r comm 2>/dev/null <"$p/comm" || continue
                [ "$comm" = berth ] || continue
                cmdline=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
                printf '%s %s\n' "${p#/proc/}" "$cmdline"
        done
        return 0
}

# host_snapshot [NAME]: records mounts, /run/berth, berth cgroups, network links and berth
# processes; assert_host_unchanged [NAME] fails the case with the diff if any changed.
host_snapshot() {
        _bt_host_state >"$T/.host-snapshot.${1:-default}"
}

assert_host_unchanged() {
        local snap="$T/.host-snapshot.${1:-default}" now="$T/.host-now" d
        [ -e "$snap" ] || fail "assert_host_unchanged: no host_snapshot ${1:-} taken"
        _bt_host_state >"$now"
        if ! d=$(diff -u "$snap" "$now"); then
                {
                        echo "# the host changed:"
                        printf '%s\n' "$d" | tail -n +3 | sed 's/^/#   /'
                } >&2
                exit 1
        fi
}

# host_sysctl_state: the host's values that a guest without a user namespace could change
# through a fresh procfs (see berth(1), SECURITY).
host_sysctl_state() {
        local f
        for f in kernel/core_pattern kernel/modprobe kernel/hotplug fs/suid_dumpable; do
                [ -r "/proc/sys/$f" ] && printf '%s=%s\n' "$f" "$(cat "/proc/sys/$f")"
        done
        return 0
}

# host_binfmt_state: the entries of the host's binfmt_misc instance, read in a private mount
# namespace of our own (nothing is mounted on the host). Fails if it cannot be mounted.
host_binfmt_state() {
        unshare -m --propagation private sh -c '
                d=$(mktemp -d) && mount -t binfmt_misc binfmt_misc "$d" && ls "$d" | sort | tr "\n" " "
                r=$?; umount "$d" 2>/dev/null; rmdir "$d"; exit $r'
}

# ---- the runner ----

# Case names in order of definition: as they appear in the script, then any others
# (defined with eval, for example) in alphabetical order.
_bt_case_names() {
        local script=$1 n
        local -A seen=()
        local -a declared=()

        while read -r _ _ n; do
                [[ $n == test_* ]] && declared+=("$n")
        done < <(declare -F)
        while read -r n; do
                if [ -z "${seen[$n]:-}" ] && declare -F "$n" >/dev/null; then
                        seen[$n]=1
                        echo "$n"
                fi
        done < <(sed -nE -e 's/^[[:space:]]*function[[:space:]]+(test_[A-Za-z0-9_]+).*$/\1/p' \
                         -e 's/^[[:space:]]*(test_[A-Za-z0-9_]+)[[:space:]]*\(\).*$/\1/p' "$script")
        for n in "${declared[@]}"; do
                [ -n "${seen[$n]:-}" ] || echo "$n"
        done
}

# _bt_still_marked PID MARKER: PID is (still) a process that carries MARKER. Checked again just
# before every signal: with pid_max at 32768 and another run beside us, a PID read a moment ago
# may be someone else's process by now.
_bt_still_marked() {
        grep -qzx -- "$2" "/proc/$1/environ" 2>/dev/null
}

# _bt_same_process PID START: PID is (still) the process that started at START (field 22 of
# /proc/PID/stat, in clock ticks since boot): a PID reused since is another start.
_bt_same_process() {
        local stat rest
        local -a fields
        read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
        rest=${stat##*) }
        read -r -a fields <<<"$rest"
        [ "${fields[19]}" = "$2" ]
}

# Kills what a case left running: processes carrying its marker and their descendants.
# A berth still running is asked to stop first (SIGTERM twice), so that it tears down
# what it set up; SIGKILL is for what is left after that. Every PID is checked again right
# before it is signalled (_bt_still_marked, _bt_same_process): never a signal by a stale PID.
_bt_kill_case_processes() {
        local marker=$1 p pid stat rest round grew comm
        local -a fields monitors=() live=()
        local -A parent=() start=() victims=() marked=()

        for p in $(grep -lzx "$marker" /proc/[0-9]*/environ 2>/dev/null); do
                p=${p%/environ}
                read -r comm 2>/dev/null <"$p/comm" || continue
                [ "$comm" = berth ] && monitors+=("${p#/proc/}")
        done
        if [ ${#monitors[@]} -gt 0 ]; then
                for pid in "${monitors[@]}"; do
                        _bt_still_marked "$pid" "$marker" && kill -TERM "$pid" 2>/dev/null
                done
                sleep 0.2
                for pid in "${monitors[@]}"; do
                        _bt_still_marked "$pid" "$marker" && kill -TERM "$pid" 2>/dev/null
                done
                for round in $(seq 50); do
                        live=()
                        for pid in "${monitors[@]}"; do
                                _bt_still_marked "$pid" "$marker" && live+=("$pid")
                        done
                        [ ${#live[@]} -gt 0 ] || break
                        sleep 0.1
                done
        fi

        for round in 1 2 3 4 5 6 7 8 9 10; do
                victims=()
                marked=()
                for p in $(grep -lzx "$marker" /proc/[0-9]*/environ 2>/dev/null); do
                        p=${p%/environ}
                        [ "${p#/proc/}" = "$$" ] || victims[${p#/proc/}]=1
                done
                [ ${#victims[@]} -eq 0 ] && return 0
                for pid in "${!victims[@]}"; do
                        marked[$pid]=1
                done
                parent=()
                start=()
                for p in /proc/[0-9]*; do
                        read -r stat 2>/dev/null <"$p/stat" || continue
                        rest=${stat##*) }
                        read -r -a fields <<<"$rest"
                        parent[${p#/proc/}]=${fields[1]}
                        start[${p#/proc/}]=${fields[19]}
                done
                # a marked PID that was reused before the snapshot has another's children
                for pid in "${!victims[@]}"; do
                        _bt_still_marked "$pid" "$marker" || unset "victims[$pid]" "marked[$pid]"
                done
                grew=1
                while [ $grew = 1 ]; do
                        grew=0
                        for pid in "${!parent[@]}"; do
                                if [ -z "${victims[$pid]:-}" ] && [ -n "${victims[${parent[$pid]}]:-}" ]; then
                                        victims[$pid]=1
                                        grew=1
                                fi
                        done
                done
                [ "$round" = 1 ] && echo "# killing processes left by the case: ${!victims[*]}"
                for pid in "${!victims[@]}"; do
                        if [ -n "${marked[$pid]:-}" ]; then
                                _bt_still_marked "$pid" "$marker" || continue
                        else
                                # a descendant (a container's processes carry no marker): the one
                                # the snapshot saw, not a newcomer with its PID
                                [ -n "${start[$pid]:-}" ] && _bt_same_process "$pid" "${start[$pid]}" || continue
                        fi
                        kill -KILL "$pid" 2>/dev/null
                done
                sleep 0.1
        done
        echo "# processes left by the case survived SIGKILL"
}

# The cgroups of dead instances in the case's own run dir (private_run_dir): no later berth
# looks there to clean them. Their processes are gone by now (they carried the case's marker).
_bt_cleanup_private_run_dir() {
        local run=$1/run rec path cg top
        [ -d "$run/machines" ] || return 0
        # berth's own cleanup first: it finds the cgroups in hierarchies mounted nowhere too
        # (CGROUP_DETACHED=), which the loop below cannot reach
        if [ -n "${BERTH:-}" ] && [ -x "$BERTH" ]; then
                for rec in "$run"/machines/*; do
                        [ -f "$rec" ] || continue
                        BERTH_RUN_DIR=$run timeout 30 "$BERTH" -q --cleanup -M "${rec##*/}" </dev/null || true
                done
        fi
        for rec in "$run"/machines/*; do
                [ -f "$rec" ] || continue
                cg=$(sed -n '/^CGROUP=/{s///p;q}' "$rec")
                [ -n "$cg" ] || continue
                while IFS= read -r path; do
                        # the machine's cgroup (CGROUP=, berth-NAME) in each hierarchy, deepest first
                        case $path in
                        /sys/fs/cgroup/*/"$cg"/* | /sys/fs/cgroup/*/"$cg") ;;
                        *) continue ;;
                        esac
                        top=${path%%/"$cg"/*}
                        top=${top%/"$cg"}/$cg
                        [ -d "$top" ] && find "$top" -depth -type d -exec rmdir {} \; 2>/dev/null
                done < <(sed -n 's/^CGROUP_PATH=//p' "$rec")
        done
        return 0
}

_bt_cleanup_dir() {
        local dir=$1 mp i
        local -a mps=()
        [ -n "$dir" ] && [ -d "$dir" ] || return 0
        # In reverse order of mounting, so that stacked mounts go first.
        while read -r _ _ _ _ mp _; do
                mp=$(printf '%b' "$mp")
                if [ "$mp" = "$dir" ] || [[ $mp == "$dir"/* ]]; then
                        mps+=("$mp")
                fi
        done </proc/self/mountinfo
        for ((i = ${#mps[@]} - 1; i >= 0; i--)); do
                umount -l "${mps[$i]}" 2>/dev/null
        done
        if [ "${BERTH_TEST_KEEP:-0}" = 1 ]; then
                echo "# kept $dir"
                return 0
        fi
        rm -rf --one-file-system "$dir" 2>/dev/null || {
                chattr -R -i "$dir" 2>/dev/null
                rm -rf --one-file-system "$dir" 2>/dev/null
        } || echo "# could not remove $dir"
}

# Runs one case; its log and skip reason live next to $T ($T.log, $T.skip) so that
# the case can do what it wants inside $T.
_bt_run_case() {
        local n=$1 name=$2 log rc marker reason=
        marker="BERTH_TEST_CASE=$BERTH_TEST_RUN.$n"
        T=$(mktemp -d /var/tmp/berth-test.XXXXXX)
        # the case's usual tree: its name is the default machine name, unique to this run and case
        # (a record that a killed berth of an earlier case left is never taken for this case's)
        ROOT_NAME=$(unique_name "root$n")
        ROOT=$T/$ROOT_NAME
        log="$T.log"

        (
                # shellcheck disable=SC2163 # $marker is NAME=VALUE
                export "$marker" T ROOT ROOT_NAME _BT_CASE_STATE="$T"
                cd "$T" || exit 1
                set -eu -o pipefail
                if declare -F case_setup >/dev/null; then
                        case_setup
                fi
                "$name"
        ) </dev/null >>"$log" 2>&1 # append: what the case leaves running may still write
        rc=$?

        # what the case started that the marker does not find (a daemon that rewrites its
        # environment, as sshd does for its process title): the script's case_teardown stops it,
        # also when the case failed half-way
        if declare -F case_teardown >/dev/null; then
                (
                        export T ROOT ROOT_NAME
                        case_teardown
                ) </dev/null >>"$log" 2>&1
        fi
        _bt_kill_case_processes "$marker" >>"$log" 2>&1
        _bt_cleanup_private_run_dir "$T" >>"$log" 2>&1
        _bt_cleanup_dir "$T" >>"$log" 2>&1

        case $rc in
        0)
                echo "ok $n - $name"
                ;;
        77)
                [ -e "$T.skip" ] && reason=$(<"$T.skip")
                echo "ok $n - $name # SKIP ${reason:-skipped}"
                ;;
        *)
                echo "not ok $n - $name"
                echo "# exit status $rc"
                ;;
        esac
        if [ "$rc" != 0 ] && [ "$rc" != 77 ] || [ "${BERTH_TEST_VERBOSE:-0}" = 1 ]; then
                sed -e 's/^# \{0,1\}//' -e 's/^/# /' "$log"
        fi
        rm -f "$T".*
        T=
        ROOT=
        [ "$rc" = 0 ] || [ "$rc" = 77 ]
}

# run_tests: runs the test_* cases (those matching $TEST_FILTER), prints TAP, exits 0 iff
# none failed.
run_tests() {
        local script=${BASH_SOURCE[1]:-$0} name n=0 failed=0
        local -a names=()

        while read -r name; do
                if [ -z "${TEST_FILTER:-}" ] || [[ $name =~ $TEST_FILTER ]]; then
                        names+=("$name")
                fi
        done < <(_bt_case_names "$script")

        # Computed once: make_tiny_tree is then a single cp.
        if [ -n "${BERTH_PAYLOAD:-}" ] && [ -e "$BERTH_PAYLOAD" ]; then
                _BT_TINY_PROTO=$(_bt_tiny_proto_path 2>/dev/null) || _BT_TINY_PROTO=
        fi

        trap '_bt_kill_case_processes "BERTH_TEST_CASE=$BERTH_TEST_RUN.$n"; _bt_cleanup_dir "$T"; exit 130' INT TERM
        set +e
        echo "1..${#names[@]}"
        for name in "${names[@]}"; do
                n=$((n + 1))
                # Not in an || list: that would switch off set -e inside the case.
                _bt_run_case "$n" "$name"
                # shellcheck disable=SC2181
                [ $? = 0 ] || failed=$((failed + 1))
        done
        trap - INT TERM
        [ "$failed" = 0 ] || echo "# $failed of ${#names[@]} failed"
        exit $((failed > 0))
}

# ---- systemd test host ----
# Registration, berth@.service, machined and the journal need systemd as PID 1, which the
# development and CI machines do not have: test/tools/systemd-host.sh boots one in a container
# (about a second) from the cached Debian tree and runs a script in it, with berth from the
# build tree. A host that does not come up is a failed test, never a skip.
#
# systemd_host_run SCRIPT [ARGS...]: runs SCRIPT in a freshly booted test host; sets $OUT,
#     $ERR and $RC like run (RC 125: the host did not come up, $ERR says why). Timeout:
#     $SYSTEMD_HOST_TIMEOUT s (default 600).
# systemd_host_reexec [ARGS...]: at the top of a test script, after sourcing lib.sh: outside the
#     test host, runs the whole script inside one host (its cases share that host) and exits with
#     its status, its TAP on our stdout; inside (in_systemd_host) it returns.
# in_systemd_host: true inside the test host.

in_systemd_host() {
        [ "${BERTH_IN_TEST_HOST:-0}" = 1 ]
}

systemd_host_run() {
        local RUN_TIMEOUT=${SYSTEMD_HOST_TIMEOUT:-600}
        BERTH_HOST_TIMEOUT=$((RUN_TIMEOUT - 10)) run "$BERTH_SRC/test/tools/systemd-host.sh" "$@"
}

systemd_host_reexec() {
        local script=${BASH_SOURCE[1]:-$0} out rc=0

        in_systemd_host && return 0
        require_root
        out=$(BERTH_HOST_TIMEOUT=${SYSTEMD_HOST_TIMEOUT:-600} \
                "$BERTH_SRC/test/tools/systemd-host.sh" "$script" "$@") || rc=$?
        if ! grep -q '^1\.\.' <<<"$out"; then
                [ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/# /'
                echo "1..1"
                echo "not ok 1 - start the systemd test host (test/tools/systemd-host.sh exited with $rc)"
                exit 1
        fi
        printf '%s\n' "$out"
        exit "$rc"
}

# ---- helpers for test files that run inside the systemd test host ----

# machine_tree NAME: /var/lib/machines/NAME, a writable overlay over the cached Debian tree
# ($DEB_TREE). The test host's root is an overlay itself, so the upper layer lives on /run's tmpfs.
machine_tree() {
        local d=/var/lib/machines/$1 o=/run/berth-test-trees/$1
        if ! mountpoint -q "$d"; then
                mkdir -p "$d" "$o/upper" "$o/work"
                mount -t overlay overlay -o "lowerdir=$DEB_TREE,upperdir=$o/upper,workdir=$o/work" "$d"
        fi
}

# install_unit: berth@.service as shipped, running berth from the build tree.
install_unit() {
        local u=/etc/systemd/system/berth@.service
        if [ ! -e "$u" ]; then
                sed "s|^ExecStart=berth |ExecStart=$BERTH |" "$BERTH_SRC/units/berth@.service" >"$u"
                systemctl daemon-reload
        fi
}

# prop UNIT PROPERTY: one property of a unit.
prop() {
        systemctl show -P "$2" "$1"
}

# assert_device_policy CMD...: CMD (a runner that sets OUT and RC, with the mknod applet's
# arguments appended, run as container root) is held to the device policy: 8:0 and 1:1 refused
# with EPERM (and no node in the tree, $ROOT), 1:3 of the basic set made and opened
assert_device_policy() {
        "$@" mknod /dev/sda b 8 0
        assert_eq 1 "$RC" "mknod of 8:0 by: $*"
        assert_contains "$OUT" errno=EPERM
        "$@" mknod /root/mem c 1 1
        assert_eq 1 "$RC" "mknod of 1:1 by: $*"
        assert_contains "$OUT" errno=EPERM
        [ ! -e "$ROOT/root/mem" ] || fail "device node created in the tree"
        "$@" mknod /dev/null2 c 1 3
        assert_eq 0 "$RC" "mknod and open of 1:3 by: $*"
}

# host_lock NAME: an exclusive lock NAME shared with every other test run on this host (a second
# CI run beside this one), held until the case ends (its subshell closes the fd): for a case
# that changes a host-wide path that the same case of another run changes too
host_lock() {
        mkdir -p "$BERTH_TEST_CACHE"
        exec {_bt_host_lock_fd}>"$BERTH_TEST_CACHE/.$1.lock"
        flock "$_bt_host_lock_fd"
}

# ---- cgroup hierarchies that another run may make or remove meanwhile ----
# Other test runs on the host (a second CI run beside this one) make and remove named v1
# hierarchies of their own at any moment: a list of the host's hierarchies read before a
# container ran and one read after may differ from each other and from the container's.
# What a case can hold the container to is the hierarchies the host had both before and after.

# cgroup_roots: this shell's /proc/self/cgroup with every path "/", sorted
cgroup_roots() {
        sed 's|:[^:]*$|:/|' /proc/self/cgroup | sort
}

# stable_cgroup_roots BEFORE: the lines of cgroup_roots that BEFORE (its output before the run)
# has and the host still has now
stable_cgroup_roots() {
        comm -12 <(printf '%s\n' "$1") <(cgroup_roots)
}

# v1_mount_opts HIERARCHY: the mount options that select an existing v1 hierarchy (its field
# in /proc/self/cgroup): its controllers, with "none" for a named one without any
v1_mount_opts() {
        case ",$1," in
        *,name=*) if [ "$(tr , '\n' <<<"$1" | grep -vc '^name=')" = 0 ]; then echo "none,$1"; else echo "$1"; fi ;;
        *) echo "$1" ;;
        esac
}

# stable_v1_mount_opts BEFORE: v1_mount_opts of each v1 hierarchy of stable_cgroup_roots BEFORE
stable_v1_mount_opts() {
        local h
        for h in $(stable_cgroup_roots "$1" | awk -F: '$1 != 0 && $2 != "" { print $2 }'); do
                v1_mount_opts "$h"
        done
}

# still_unmountable OUT BEFORE: the "unmountable OPTS" lines of OUT (a container's report of the
# hierarchies it tried to mount) for a hierarchy the host had throughout; one that another run
# removed meanwhile may well be unmountable
still_unmountable() {
        local stable line
        stable=$(stable_v1_mount_opts "$2")
        while IFS= read -r line; do
                [[ $line == "unmountable "* ]] || continue
                grep -qxF -- "${line#unmountable }" <<<"$stable" && echo "$line"
        done <<<"$1"
        return 0
}

# assert_cgroup_roots OUT BEFORE: OUT (a container's /proc/self/cgroup, among other lines) puts
# it at the root of its cgroup namespace in every hierarchy it lists, and lists every hierarchy
# of stable_cgroup_roots BEFORE
assert_cgroup_roots() {
        local out line
        out=$(grep -E '^[0-9]+:' <<<"$1" | sort)
        [ -n "$out" ] || fail "no /proc/self/cgroup lines in: $1"
        while IFS= read -r line; do
                [[ $line == *:/ ]] || fail "the container is not at its cgroup namespace root in '$line'"
        done <<<"$out"
        assert_eq "" "$(comm -23 <(stable_cgroup_roots "$2") <(printf '%s\n' "$out"))" \
                "hierarchies the host had throughout that the container does not list at its root"
}
