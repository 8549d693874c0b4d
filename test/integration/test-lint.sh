#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The rules that keep the integration suite deterministic (see the top of lib.sh), checked on
# the test scripts themselves: a wait re-runs its whole check, and nothing seen host-wide gets a
# fixed name. Needs neither root nor a build.
. "$(dirname "$0")/lib.sh"

DIR=$BERTH_SRC/test/integration

# The scripts whose cases run on this machine; those that run inside a systemd test host of their
# own (systemd_host_reexec) may use fixed names there: nothing else runs in that host.
on_this_host() {
        local f
        for f in "$DIR"/test-*.sh; do
                [ "$f" != "$DIR/test-lint.sh" ] || continue
                grep -q '^systemd_host_reexec' "$f" || echo "$f"
        done
}

# shows the offending lines and fails with MSG
refuse() {
        local msg=$1 lines=$2
        if [ -n "$lines" ]; then
                printf '%s\n' "$lines" | sed "s|^$DIR/||; s/^/#   /" >&2
                fail "$msg"
        fi
}

test_wait_for_reruns_its_check() {
        local lines
        # wait_for's arguments up to a "||": an unescaped $( there is expanded once, before the
        # wait (a check with a substitution belongs in a function or in sh -c '...')
        lines=$(grep -nE '(^|[[:space:];(])wait_for[[:space:]][^|]*(^|[^\\])\$\(' "$DIR"/*.sh |
                grep -v '^[^:]*:[0-9]*:[[:space:]]*#') || true
        refuse 'wait_for with a command substitution in its arguments: it is expanded once, before the wait' "$lines"
}

test_no_fixed_tree_or_machine_names() {
        local lines
        # shellcheck disable=SC2016 # the pattern is the literal text
        # a start on a tree named root without -M: "root" is the machine name then, in every run
        lines=$(on_this_host | xargs grep -nE -- '-D "?\$T/(fs)?root([^A-Za-z0-9_.-]|$)' |
                grep -vE -- '(-M|--machine)[= ]' || true)
        refuse 'a start on a tree named "root" without -M: its name is the default machine name, use $ROOT' "$lines"
        lines=$(on_this_host | xargs grep -nE -- '(-M|--machine=?)[[:space:]]*[a-z][a-z0-9-]*([[:space:]]|$)' |
                grep -v 'bash_complete' || true)
        refuse 'a fixed machine name: use unique_name' "$lines"
        lines=$(on_this_host | xargs grep -nE '/run/berth/machines/[a-z]' || true)
        refuse 'the record of a fixed machine name: use unique_name' "$lines"
}

# A reader that leaves early (head, grep -q, grep -m) behind a pipe: the writer dies of SIGPIPE
# if it is still writing, and under pipefail the whole check then fails or, negated, passes. Such
# a check is right or wrong by timing. Match on a here-string or a file instead.
test_no_early_leaving_reader_behind_a_pipe() {
        local lines
        lines=$(grep -nE '(^|[^|])\|[[:space:]]*(head([[:space:]]|$)|grep([[:space:]]+-[A-Za-z]+)*[[:space:]]+-[A-Za-z]*[qm])' \
                "$DIR"/*.sh "$BERTH_SRC"/test/tools/*.sh "$BERTH_SRC"/test/bench/run "$BERTH_SRC"/.ci/run \
                "$BERTH_SRC"/quickstart.sh | grep -v '^[^:]*:[0-9]*:[[:space:]]*#' | grep -v 'sigpipe: wanted' || true)
        refuse 'head or grep -q/-m behind a pipe: the writer can die of SIGPIPE (use first_line or grep ... <<<"$(cmd)")' "$lines"
}

# pkill, killall and kill by pattern (pgrep | xargs kill) pick processes by name: another run's
# berth, sleep or shell has the same name. A case kills what it started, by the PID it got
# from $! (or through berth); lib.sh kills what a case left by its marker.
test_no_kill_by_name() {
        local lines
        lines=$(grep -nE '(^|[^A-Za-z_-])(pkill|killall)([[:space:]]|$)|pgrep.*\|[[:space:]]*xargs[[:space:]]+kill' \
                "$DIR"/*.sh "$BERTH_SRC"/test/tools/*.sh "$BERTH_SRC"/.ci/run |
                grep -v '^[^:]*:[0-9]*:[[:space:]]*#' | grep -v "^$DIR/test-lint.sh:" || true)
        refuse 'a kill by name or pattern: it can hit the processes of another run (kill the PID you started)' "$lines"
}

# One start_bg, lib.sh's: it removes the log of an earlier start under the same name, and waits for
# the record of the berth it started. Copies of it in the scripts had drifted apart, and one that
# reused a log read an earlier start's "booted" in it.
test_one_start_bg() {
        local lines
        lines=$(grep -nE '^[[:space:]]*(function[[:space:]]+)?(start_bg|wait_bg|stop_bg)[[:space:]]*\(\)' \
                "$DIR"/*.sh | grep -v "^$DIR/lib.sh:" || true)
        refuse 'a start_bg, wait_bg or stop_bg of its own: use the one of lib.sh (with its options)' "$lines"
}

test_unique_names() {
        local a b
        a=$(unique_name x)
        [[ $a == "$BT_PREFIX-x" ]] || fail "unique_name x: $a"
        [[ $BT_PREFIX =~ ^t[0-9a-f]{5}$ ]] || fail "BT_PREFIX: $BT_PREFIX"
        a=$(unique_name "$(printf 'a%.0s' {1..80})")
        assert_eq 64 "${#a}" "a long name is cut to 64 characters"
        a=$(unique_short_name veth-with-a-long-name)
        [ "${#a}" -le 15 ] || fail "unique_short_name: $a is longer than 15"
        [[ $a == "$BT_PREFIX"* ]] || fail "unique_short_name: $a"
        a=$(unique_port)
        b=$(unique_port 1)
        assert_eq $((a + 1)) "$b"
        [ "$a" -ge 20000 ] && [ "$a" -lt 60000 ] || fail "unique_port: $a"
        # another run, another prefix
        b=$(BERTH_TEST_RUN=other.1 bash -c ". '$DIR/lib.sh'; echo \$BT_PREFIX")
        [ "$b" != "$BT_PREFIX" ] || fail "two runs, one prefix"
}

run_tests
