#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck disable=SC2317 # the cases and helpers are called by run_tests
# berthctl exec, shell and login against container root (issue 9, item 1): no process berthctl
# puts into a machine's PID namespace is ever less confined than the container's own processes,
# or holds a file of the host. Checked from inside, as container root, without racing: a test
# build (meson -Dtest-hooks=true, as test/run-all builds) stops exec's first process in the guest
# at its most exposed point when $BERTH_TEST_PARK_EXEC is set, and `payload exec-audit` inspects
# every process it can see (Seccomp, capability sets, NoNewPrivs, the host caller's environment,
# root, cwd, binary, fds), attaches
# to the parked one with ptrace and takes its fds with pidfd_getfd(), then lets it go on.
. "$(dirname "$0")/lib.sh"
require_root

if [ -z "${BERTHCTL:-}" ] && [ -n "${BERTH_BUILD:-}" ]; then
        BERTHCTL=$BERTH_BUILD/berthctl
fi
if [ -z "${BERTHCTL:-}" ] || [ ! -x "$BERTHCTL" ]; then
        echo "1..0 # SKIP \$BERTHCTL is not set to the berthctl binary (run through 'meson test')"
        exit 0
fi

# ---- helpers ----

mname() {
        echo "bexs-${1}-$$-${RANDOM}"
}

record() {
        sed -n "s/^$2=//p" "/run/berth/machines/$1"
}

# The container's bounding set as its PID 1 has it (the record's, less what the host lacks).
bounding_set() {
        sed -n 's/^CapBnd:\t*//p' "/proc/$(record "$1" LEADER)/status"
}

# park_audit NAME [EXEC OPTIONS...]: a parked `berthctl exec NAME OPTIONS... payload ...` with a
# host file as stdin, audited from inside by a second exec; both must succeed.
park_audit() {
        local n=$1 caps nnp ppid
        shift
        caps=$(bounding_set "$n")
        nnp=$(record "$n" NO_NEW_PRIVILEGES)
        printf 'host secret\n' >"$T/secret"
        BERTH_TEST_PARK_EXEC=1 BERTH_TEST_HOST_ENV=secret timeout 60 "$BERTHCTL" exec "$@" "$n" payload seccomp \
                <"$T/secret" >"$T/parked.out" 2>"$T/parked.err" &
        ppid=$!
        run "$BERTHCTL" exec "$n" payload exec-audit "$caps" "${nnp:-0}" 30
        local arc=$RC aout=$OUT
        RC=0
        wait "$ppid" || RC=$?
        echo "# audit:"
        printf '%s\n' "$aout" | sed 's/^/#   /'
        assert_contains "$aout" "parked:" "the parked exec was not found"
        # without a user namespace container root reaches everything: the audit looked at it all
        assert_contains "$aout" "ptrace attached" "the audit could not attach"
        assert_not_contains "$aout" "not reachable" "the audit could not look at every process"
        assert_eq 0 "$arc" "exit status of the audit (FAIL lines above)"
        assert_eq 0 "$RC" "exit status of the parked exec, once let go"
        assert_match "$(<"$T/parked.out")" "^2\s*$" "the parked command's own Seccomp field"
        assert_eq "host secret" "$(<"$T/secret")"
}

# ---- cases ----

test_parked_exec_is_confined_like_the_container() {
        local n
        require_test_hooks
        n=$(mname park)
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" -b
        park_audit "$n"
}

test_parked_exec_with_a_pty_and_no_new_privileges() {
        local n
        require_test_hooks
        n=$(mname parkt)
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" -b --drop-capability=CAP_NET_RAW,CAP_MKNOD --no-new-privileges=yes
        park_audit "$n" -t
}

test_parked_shell_as_a_user() {
        local n caps ppid
        require_test_hooks
        n=$(mname parku)
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" -b
        caps=$(bounding_set "$n")
        BERTH_TEST_PARK_EXEC=1 BERTH_TEST_HOST_ENV=secret timeout 60 "$BERTHCTL" shell "tester@$n" /usr/bin/payload id \
                </dev/null >"$T/parked.out" 2>"$T/parked.err" &
        ppid=$!
        run "$BERTHCTL" exec "$n" payload exec-audit "$caps" 0 30
        local arc=$RC aout=$OUT
        RC=0
        wait "$ppid" || RC=$?
        printf '%s\n' "$aout" | sed 's/^/#   /'
        assert_contains "$aout" "ptrace attached" "the audit could not attach"
        assert_eq 0 "$arc" "exit status of the audit"
        assert_eq 0 "$RC" "exit status of the parked shell"
        assert_contains "$(<"$T/parked.out")" "uid=1000"
}

# Where the host mounts the v1 devices hierarchy nowhere berth looks, the container's cgroup in it is
# made through a detached mount, which berthctl exec does not join: its command is in the host's
# devices cgroup there. The device program on the machine's cgroup2 cgroup, which it does join, must
# then hold the policy for it (berth-devices.c), as the v1 rules do for the machine's own processes.
test_exec_where_the_devices_hierarchy_is_mounted_nowhere() {
        local n
        require_test_hooks
        grep -q '^[0-9]*:\([^:]*,\)\{0,1\}devices[,:]' /proc/self/cgroup || skip "no v1 devices hierarchy here"
        n=$(mname detdev)
        make_tiny_tree "$ROOT"
        BERTH_TEST_CGROUP_DETACH=devices start_bg "$n" "$ROOT" -b
        assert_contains "$(record "$n" CGROUP_DETACHED)" "devices" "the devices hierarchy was not taken as mounted nowhere"
        assert_device_policy run "$BERTHCTL" exec "$n" payload
}

# A host file as the command's stdin: reopening /proc/self/fd/0 for writing (a new open file,
# whatever mode berthctl had it in) must not reach the host file.
test_stdin_from_a_host_file_cannot_be_reopened_for_writing() {
        local n
        n=$(mname reopen)
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" -b
        printf 'original\n' >"$T/hostfile"
        chmod 0444 "$T/hostfile"
        RC=0
        OUT=$(timeout 60 "$BERTHCTL" exec "$n" payload reopen 0 pwned <"$T/hostfile") || RC=$?
        echo "# reopen: $OUT (exit $RC)"
        assert_eq original "$(<"$T/hostfile")" "the host file given as stdin was written from the guest"
        assert_not_contains "$OUT" "type=file" "stdin is the host file itself"
        # and the command still reads what stdin has
        RC=0
        OUT=$(timeout 60 "$BERTHCTL" exec "$n" cat <"$T/hostfile") || RC=$?
        assert_eq 0 "$RC"
        assert_eq original "$OUT"
        # the same through shell, stdout and stderr too: none is a host file
        RC=0
        timeout 60 "$BERTHCTL" shell "$n" /usr/bin/payload fds <"$T/hostfile" >"$T/fds.out" 2>"$T/fds.err" || RC=$?
        assert_eq 0 "$RC"
        assert_match "$(<"$T/fds.out")" "^0 pipe:"
        assert_match "$(<"$T/fds.out")" "^1 pipe:"
        assert_match "$(<"$T/fds.out")" "^2 pipe:"
}

# Container root mounts a lie over /proc/sys/kernel/cap_last_cap, which exec's confiner sees once it
# is in the guest's mount namespace: capabilities are still dropped down to the container's set.
test_fake_cap_last_cap_does_not_keep_capabilities() {
        local n want
        n=$(mname lastcap)
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" /usr/bin/payload sleep 300
        want=$(bounding_set "$n")
        run "$BERTHCTL" exec "$n" /bin/sh -c 'echo 0 >/tmp/lastcap && mount --bind /tmp/lastcap /proc/sys/kernel/cap_last_cap && cat /proc/sys/kernel/cap_last_cap'
        assert_eq 0 "$RC" "planting the fake cap_last_cap"
        assert_eq 0 "$OUT"
        run "$BERTHCTL" exec "$n" /usr/bin/payload caps
        assert_eq 0 "$RC"
        assert_contains "$OUT" "CapBnd=$want"
        assert_contains "$OUT" "CapEff=$want"
        run "$BERTHCTL" terminate "$n"
}

# The caller's supplementary groups (host gids) do not reach the command, nor its session keyring.
test_exec_gets_none_of_the_callers_groups() {
        local n
        command -v setpriv >/dev/null || skip "setpriv is missing (util-linux)"
        n=$(mname groups)
        make_tiny_tree "$T/root"
        start_bg "$n" "$T/root" /usr/bin/payload sleep 300
        run setpriv --groups 4,27,998 -- "$BERTHCTL" exec "$n" /bin/sh -c 'grep "^Groups:" /proc/self/status'
        assert_eq 0 "$RC"
        assert_match "$OUT" '^Groups:[[:space:]]*$'
        run "$BERTHCTL" terminate "$n"
}

run_tests
