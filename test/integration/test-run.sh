#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Point 1: running a command, as PID 1 or as PID 2 under the stub init.
. "$(dirname "$0")/lib.sh"
require_root

B=(--console=pipe -q)

test_true_exits_zero() {
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -D "$ROOT" /usr/bin/payload true
        assert_eq 0 "$RC"
        assert_eq "" "$ERR"
}

test_exit_status_is_the_payloads() {
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -D "$ROOT" /usr/bin/payload exit 42
        assert_eq 42 "$RC"
        berth "${B[@]}" -D "$ROOT" -a /usr/bin/payload exit 7
        assert_eq 7 "$RC"
}

# BERTH_LOG_LEVEL=debug times the start-up: a line per step of the protocol (berth-startup.c) on the
# side that sends it and on the side that waits for it, and per piece of work of the monitor and the
# child in between, each with its duration, so that a slow start can be attributed. Steps that do not
# apply to the run (the console with --console=pipe) are not there; below debug there is no line.
test_debug_log_times_each_startup_step() {
        local step
        make_tiny_tree "$ROOT"
        BERTH_LOG_LEVEL=debug berth "${B[@]}" -D "$ROOT" /usr/bin/payload true
        assert_eq 0 "$RC"
        for step in cgroup-ready registered notify-socket locked-mounts; do
                assert_match "$ERR" "^berth: Timing: monitor (waited for )?$step: [0-9]+\.[0-9]{3} ms \(at [0-9]+\.[0-9]{3} ms\)$"
        done
        for step in cgroup-ready registered locked-mounts; do
                assert_match "$ERR" "Timing: child waited for $step: [0-9.]+ ms"
        done
        for step in notify-socket pivoted exec; do
                assert_match "$ERR" "Timing: child $step: [0-9.]+ ms"
                assert_match "$ERR" "Timing: monitor waited for $step: [0-9.]+ ms"
        done
        for step in open-root cgroup clone "waited for the payload's exec" "teardown: cgroups"; do
                assert_match "$ERR" "Timing: monitor $step: [0-9.]+ ms"
        done
        for step in root-mount api-filesystems pivot-root seccomp capabilities; do
                assert_match "$ERR" "Timing: child $step: [0-9.]+ ms"
        done
        assert_not_contains "$ERR" "Timing: child console:"
        assert_not_contains "$ERR" "Timing: monitor links-moved"

        berth "${B[@]}" -D "$ROOT" /usr/bin/payload true
        assert_eq 0 "$RC"
        assert_eq "" "$ERR"
}

# The child builds its root and API file systems while the monitor makes the cgroups, not idle
# until cgroup-ready (issue 15): only the cgroup namespace and /sys/fs/cgroup wait for it. The
# child's timing lines come from one process, in the order of its steps; without -U and with it
# (the setup child's path).
test_child_mounts_before_cgroup_ready() {
        local order opts
        make_tiny_tree "$ROOT"
        for opts in "" "-U"; do
                BERTH_LOG_LEVEL=debug berth "${B[@]}" $opts -D "$ROOT" /usr/bin/payload true
                assert_eq 0 "$RC"
                order=$(sed -nE 's/^berth: Timing: child (mount-propagation|root-mount|api-filesystems|waited for cgroup-ready|cgroup-namespace, cgroup mount|bind-user): .*/\1/p' <<<"$ERR" | tr '\n' ,)
                assert_eq "mount-propagation,root-mount,api-filesystems,waited for cgroup-ready,cgroup-namespace, cgroup mount,bind-user," "$order"
        done
}

# The libraries that only some machines need (dl-load.h) are loaded when a machine needs them: a
# plain machine's monitor maps none of them, one with a veth maps libnl and still not the others.
# Mapping all of them cost every start ~10 ms of CPU and each monitor ~360 kB of private memory.
# libseccomp is needed only to build a system call filter that is not in the cache yet, libsystemd
# only to register with machined (not here: no systemd), and linking it cost every start ~2 ms.
monitor_maps() {
        { grep -oE "lib(nl-route-3|nftables|cryptsetup|crypto|blkid|seccomp|systemd)\.so[.0-9]*" "/proc/$1/maps" || true; } |
                sort -u | tr '\n' ' '
}

# maps_of_a_monitor [BERTH ARGS...]: sets MAPS to what monitor_maps finds in the monitor of $ROOT
# started with ARGS, while it runs. A start before it builds the system call filter and caches
# it, as the first start after a reboot (or of a new berth) does.
maps_of_a_monitor() {
        local rc=0
        berth "${B[@]}" -D "$ROOT" "$@" /usr/bin/payload true
        assert_eq 0 "$RC" "the start that caches the filter ($*)"
        start_bg "$ROOT_NAME" "$ROOT" "${B[@]}" "$@" /usr/bin/payload sleep 30
        MAPS=$(monitor_maps "$BG_PID")
        kill -TERM "$BG_PID"
        wait "$BG_PID" || rc=$?
        assert_eq 137 "$rc" "berth's exit status after SIGTERM ($*)"
}

test_monitor_loads_only_the_libraries_its_machine_uses() {
        make_tiny_tree "$ROOT"
        maps_of_a_monitor
        assert_eq "" "$MAPS"
        maps_of_a_monitor --network-veth
        assert_match "$MAPS" "^libnl-route-3\.so[.0-9]* $"
}

test_command_is_pid1() {
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -D "$ROOT" /usr/bin/payload pid
        assert_eq 0 "$RC"
        assert_eq 1 "$OUT"
}

test_command_found_in_container_path() {
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -D "$ROOT" payload echo found
        assert_eq 0 "$RC"
        assert_eq found "$OUT"
}

test_default_command_is_root_shell() {
        make_tiny_tree "$ROOT"
        RC=0
        OUT=$(echo 'echo shell:$$' | timeout "$RUN_TIMEOUT" "$BERTH" "${B[@]}" -D "$ROOT") || RC=$?
        assert_eq 0 "$RC"
        assert_eq "shell:1" "$OUT"
}

test_missing_command_is_one_line_error() {
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -D "$ROOT" /no/such/program
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "/no/such/program"
}

# The child's errors reach the monitor, which prints them once, whatever the console: with
# --console=passive the child's stderr is the dropped console, yet the cause must be shown.
# And the cause, not a stray errno ("No such process" for a missing user).
test_child_errors_are_one_line_in_every_console_mode() {
        make_tiny_tree "$ROOT"
        for mode in passive pipe read-only; do
                for pid2 in "" --as-pid2; do
                        berth -q --console=$mode $pid2 -D "$ROOT" /no/such/program </dev/null
                        assert_eq 1 "$RC"
                        assert_one_line_error "$mode $pid2: missing payload"
                        assert_contains "$ERR" "Failed to execute '/no/such/program' in the container: No such file"

                        berth -q --console=$mode $pid2 -D "$ROOT" --chdir=/no/such/dir /usr/bin/payload true </dev/null
                        assert_eq 1 "$RC"
                        assert_one_line_error "$mode $pid2: bad --chdir"
                        assert_contains "$ERR" "'/no/such/dir' (--chdir=): No such file"

                        berth -q --console=$mode $pid2 -D "$ROOT" -u nosuchuser /usr/bin/payload true </dev/null
                        assert_eq 1 "$RC"
                        assert_one_line_error "$mode $pid2: bad --user"
                        assert_contains "$ERR" "User 'nosuchuser' does not exist in the container's /etc/passwd"
                        assert_not_contains "$ERR" "No such process"
                done
        done
}

# A tree without /etc/passwd: the error says that the file could not be read, not that the
# user is missing.
test_user_without_passwd_names_the_file() {
        make_tiny_tree "$ROOT"
        rm "$ROOT/etc/passwd"
        berth "${B[@]}" -D "$ROOT" -u tester /usr/bin/payload true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "Failed to read the container's /etc/passwd to find user 'tester' (--user=): No such file"
}

test_stdout_and_stderr_stay_separate() {
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -D "$ROOT" /bin/sh -c 'echo out; echo err >&2; exit 3'
        assert_eq 3 "$RC"
        assert_eq out "$OUT"
        assert_eq err "$ERR"
}

test_stdin_reaches_payload() {
        make_tiny_tree "$ROOT"
        RC=0
        OUT=$(printf 'line1\nline2\n' | timeout "$RUN_TIMEOUT" "$BERTH" "${B[@]}" -D "$ROOT" /bin/cat) || RC=$?
        assert_eq 0 "$RC"
        assert_eq $'line1\nline2' "$OUT"
}

test_as_pid2_runs_command_as_pid2() {
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -D "$ROOT" -a /usr/bin/payload pid
        assert_eq 0 "$RC"
        assert_eq 2 "$OUT"
        berth "${B[@]}" -D "$ROOT" -a /usr/bin/payload ppid
        assert_eq 1 "$OUT"
}

test_as_pid2_reaps_zombies() {
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -D "$ROOT" -a /usr/bin/payload zombies 5
        assert_eq 0 "$RC"
        assert_eq "zombies=0" "$OUT"
}

test_without_as_pid2_nobody_reaps() {
        # the check above would pass without a stub init if the payload reaped itself
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -D "$ROOT" /usr/bin/payload zombies 3
        assert_eq 1 "$RC"
        assert_eq "zombies=3" "$OUT"
}

test_as_pid2_forwards_sigterm() {
        make_tiny_tree "$ROOT"
        "$BERTH" "${B[@]}" -D "$ROOT" -a /usr/bin/payload signals 20 >"$T/out" 2>"$T/err" &
        local pid=$!
        wait_for grep -q ready "$T/err" || fail "payload did not start: $(cat "$T/err")"
        kill -TERM "$pid"
        local rc=0
        wait "$pid" || rc=$?
        assert_eq 0 "$rc"
        assert_eq SIGTERM "$(cat "$T/out")"
}

test_sigterm_kills_pid1_payload() {
        # a plain PID 1 payload gets SIGKILL (nspawn's default for non-boot)
        make_tiny_tree "$ROOT"
        "$BERTH" "${B[@]}" -D "$ROOT" /usr/bin/payload sleep 30 &
        local pid=$!
        wait_for grep -qx STATE=running "/run/berth/machines/$ROOT_NAME" || fail "did not start"
        kill -TERM "$pid"
        local rc=0
        wait "$pid" || rc=$?
        assert_eq 137 "$rc"
}

test_second_sigterm_kills() {
        make_tiny_tree "$ROOT"
        # the payload ignores the stop signal; the second request kills
        "$BERTH" "${B[@]}" --kill-signal=SIGUSR1 -D "$ROOT" /bin/sh -c 'trap "" USR1; echo up; sleep 30' >"$T/out" 2>&1 &
        local pid=$!
        wait_for grep -q up "$T/out" || fail "did not start"
        kill -TERM "$pid"
        # the first request taken (two signals sent at once may arrive as one)
        wait_for grep -qx STATE=stopping "/run/berth/machines/$ROOT_NAME" || fail "the first SIGTERM was not taken"
        kill -0 "$pid" || fail "berth ended on the first SIGTERM although the payload ignores it"
        kill -TERM "$pid"
        local rc=0
        wait "$pid" || rc=$?
        assert_eq 137 "$rc"
}

test_stop_timeout_kills() {
        make_tiny_tree "$ROOT"
        "$BERTH" "${B[@]}" --stop-timeout=500ms --kill-signal=SIGUSR1 -D "$ROOT" /bin/sh -c 'trap "" USR1; echo up; sleep 30' >"$T/out" 2>&1 &
        local pid=$!
        wait_for grep -q up "$T/out" || fail "did not start"
        local start=$SECONDS
        kill -TERM "$pid"
        local rc=0
        wait "$pid" || rc=$?
        assert_eq 137 "$rc"
        # 500 ms, and a busy machine's scheduling; the default stop timeout would be far more
        [ $((SECONDS - start)) -lt 30 ] || fail "took too long"
}

run_tests
