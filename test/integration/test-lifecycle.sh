#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The life of a machine on the host: its name and tree are taken while it runs, it is
# recorded in /run/berth, it dies with berth, what a dead instance left is cleaned by the
# next start, a normal exit leaves nothing, and the guest gets its own cgroup2 tree.

. "$BERTH_SRC/test/integration/lib.sh"
require_root

# Every case keeps its records in a run dir of its own: the dead instances that the cases make
# on purpose must stay until the case looks at them, and a berth of another run or of the host's
# own that starts meanwhile would clean them (every start cleans after every dead instance).
case_setup() {
        private_run_dir
}

# Where the host's cgroup2 hierarchy is mounted (pure unified or hybrid).
unified_mount() {
        if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
                echo /sys/fs/cgroup
        elif [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
                echo /sys/fs/cgroup/unified
        else
                return 1
        fi
}

require_unified() {
        unified_mount >/dev/null || skip "the host has no cgroup2 hierarchy"
}

# A name per case (and WORD), unique to the run.
new_name() {
        unique_name "$(echo "lc-${FUNCNAME[1]#test_}${1:+-$1}" | tr _ -)"
}

record() {
        echo "$RUN_DIR/machines/$1"
}

# record_get NAME KEY: the first value of KEY in the record.
record_get() {
        sed -n "/^$2=/{s///p;q}" "$(record "$1")" 2>/dev/null
}

record_state_is() {
        grep -qx "STATE=$2" "$(record "$1")" 2>/dev/null
}

# All cgroup directories named after the machine, in every hierarchy.
machine_cgroups() {
        find /sys/fs/cgroup/ -xdev -type d -name "berth-$1" 2>/dev/null || true
        find /sys/fs/cgroup/*/ -xdev -type d -name "berth-$1" 2>/dev/null || true
}

# at_least N CMD...: CMD prints N lines or more
at_least() {
        local n=$1
        shift
        [ "$("$@" | wc -l)" -ge "$n" ]
}

# Every pid in the machine's cgroup2 subtree.
machine_pids() {
        local u d
        u=$(unified_mount) || return 0
        for d in $(find "$u" -type d -name "berth-$1" 2>/dev/null); do
                find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null
        done
}

pids_gone() {
        local p
        for p in "$@"; do
                # a zombie is gone for our purpose: it holds nothing but its pid
                if [ -e "/proc/$p" ] && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null; then
                        return 1
                fi
        done
        return 0
}

no_leftovers() {
        [ ! -e "$(record "$1")" ] && [ -z "$(machine_cgroups "$1")" ]
}

assert_no_leftovers() {
        local name=$1 cgs
        [ ! -e "$(record "$name")" ] || fail "record of '$name' left behind: $(cat "$(record "$name")")"
        cgs=$(machine_cgroups "$name")
        [ -z "$cgs" ] || fail "cgroups of '$name' left behind: $cgs"
        [ ! -e "$RUN_DIR/locks/$name.lock" ] || fail "lock file of '$name' left behind"
        [ ! -e "$RUN_DIR/scratch/$name" ] || fail "scratch dir of '$name' left behind"
        [ -z "$(find "$RUN_DIR/machines" -maxdepth 1 -name ".#$name.??????" 2>/dev/null)" ] ||
                fail "a temporary record of '$name' left behind"
}

test_same_name_refused() {
        local name
        name=$(new_name)
        make_tiny_tree "$T/a"
        make_tiny_tree "$T/b"
        start_bg "$name" "$T/a" /usr/bin/payload sleep 60
        local first=$BG_PID

        berth -M "$name" -D "$T/b" /usr/bin/payload true
        [ "$RC" != 0 ] || fail "a second machine named '$name' started"
        assert_one_line_error
        assert_contains "$ERR" "$name"
        assert_contains "$ERR" "already running"
        kill -0 "$first" || fail "the first instance died"
        assert_eq "$first" "$(record_get "$name" PID)" "the record still names the first instance"
        stop_bg "$first"
        assert_no_leftovers "$name"
}

# Others hold a machine's lock for a moment: every start's stale cleanup probes every record
# (shared), and a start that cleans up after a dead instance of the name holds it (exclusive). A
# start waits for them, however long the scheduler lets them take, rather than calling the machine
# "already running" (one of a fleet of 120 started at once was, after the 62 ms berth waited). Its
# own running instance, which the record names, is refused at once (test_same_name_refused).
lock_is_held() {
        ! flock -n -x "$1" true
}

test_same_name_waits_for_a_prober_and_a_cleaner() {
        local name mode holder
        name=$(new_name)
        make_tiny_tree "$T/a"
        mkdir -p "$RUN_DIR/locks"
        for mode in --shared --exclusive; do
                flock "$mode" "$RUN_DIR/locks/$name.lock" sleep 1 &
                holder=$!
                wait_for lock_is_held "$RUN_DIR/locks/$name.lock" || fail "flock $mode did not take the lock"
                berth -M "$name" -D "$T/a" /usr/bin/payload true
                assert_eq 0 "$RC" "with a $mode lock held for a second: $ERR"
                wait "$holder"
        done
        assert_no_leftovers "$name"
}

# held_or_given_up LOCK PID: LOCK is held, or the process PID that was to take it is gone
held_or_given_up() {
        lock_is_held "$1" || pids_gone "$2"
}

# A user of the host opens what the file's mode lets them, and whoever opens a lock file may
# flock() it: a user who held a machine's lock after its berth was killed (the file stays behind)
# kept that machine from starting ever again, every start waited 10 s for them and said "already
# running". The lock file is root's; a user's berthctl still sees the machine run (/proc/locks).
test_a_user_cannot_hold_the_lock() {
        local name lock holder leader
        command -v setpriv >/dev/null || skip "setpriv is missing (util-linux)"
        name=$(new_name)
        make_tiny_tree "$T/tree"
        chmod 0755 "$T" "$RUN_DIR"
        start_bg "$name" "$T/tree" /usr/bin/payload sleep 100
        lock=$RUN_DIR/locks/$name.lock
        run setpriv --reuid=65534 --regid=65534 --clear-groups "$BERTHCTL" list --no-legend
        assert_contains "$OUT" "$name" "a user's berthctl list"
        leader=$(record_get "$name" LEADER)
        kill -KILL "$BG_PID"
        wait "$BG_PID" 2>/dev/null || true
        wait_for pids_gone "$leader" || fail "the container survived berth's SIGKILL"
        [ -e "$lock" ] || fail "the killed berth left no lock file"
        # longer than a start waits for a holder that is not the machine's (10 s)
        setpriv --reuid=65534 --regid=65534 --clear-groups flock --shared "$lock" sleep 15 2>/dev/null &
        holder=$!
        wait_for held_or_given_up "$lock" "$holder" || fail "the user's flock neither took the lock nor gave up"
        berth -M "$name" -D "$T/tree" /usr/bin/payload true
        assert_eq 0 "$RC" "a start with a user holding the lock of its dead instance: $ERR"
        wait "$holder" 2>/dev/null || true
        assert_no_leftovers "$name"
}

test_same_tree_refused() {
        local a b
        a=$(new_name a)
        b=$(new_name b)
        make_tiny_tree "$T/tree"
        start_bg "$a" "$T/tree" /usr/bin/payload sleep 60

        berth -M "$b" -D "$T/tree" /usr/bin/payload true
        [ "$RC" != 0 ] || fail "a second machine on the same tree started"
        assert_one_line_error
        assert_contains "$ERR" "$T/tree"
        assert_no_leftovers "$b"
        kill -0 "$BG_PID" || fail "the first instance died"
        stop_bg "$BG_PID"
        assert_no_leftovers "$a"
}

# assert_in_machine_cgroups NAME PID: PID is in machine NAME's container cgroup in every hierarchy:
# below the policy cgroup that holds the device policy in cgroup2 and the v1 devices hierarchy,
# the machine's own in the others (berth-cgroup.h)
assert_in_machine_cgroups() {
        [ -z "$(awk -F: -v m="/berth-$1" '{
                want = ($2 == "" || $2 ~ /(^|,)devices(,|$)/) ? m "/policy/payload" : m
                if (substr($3, length($3) - length(want) + 1) != want) print
        }' "/proc/$2/cgroup")" ] ||
                fail "process $2 is not in machine $1's cgroup everywhere: $(cat "/proc/$2/cgroup")"
}

test_record_while_running() {
        local name leader cg
        name=$(new_name)
        make_tiny_tree "$T/tree"
        start_bg "$name" "$T/tree" /usr/bin/payload sleep 60
        wait_for record_state_is "$name" running ||
                fail "state never became running: $(cat "$(record "$name")")"

        assert_eq "$(stat -c %a "$(record "$name")")" 644 "record mode"
        assert_eq "$BG_PID" "$(record_get "$name" PID)" "PID="
        assert_eq "$T/tree" "$(record_get "$name" ROOT)" "ROOT="
        assert_eq "$name" "$(record_get "$name" NAME)" "NAME="
        leader=$(record_get "$name" LEADER)
        kill -0 "$leader" || fail "LEADER=$leader is not alive"
        assert_eq "$BG_PID" "$(awk '/^PPid:/ { print $2 }' "/proc/$leader/status")" "the leader is berth's child"
        assert_in_machine_cgroups "$name" "$leader"
        # stale cleanup of a later start needs the paths, wherever this one ran
        cg=$(record_get "$name" CGROUP_PATH)
        [ -n "$cg" ] || fail "no CGROUP_PATH= in the record: $(cat "$(record "$name")")"
        grep -qx "$leader" "$cg/cgroup.procs" || fail "the leader is not in CGROUP_PATH=$cg"
        [ -e "$RUN_DIR/locks/$name.lock" ] || fail "no lock file"
        stop_bg "$BG_PID"
        assert_no_leftovers "$name"
}

# The child is born into the container's cgroup2 cgroup (clone3's CLONE_INTO_CGROUP) and moves
# itself into the v1 ones; with -U, PID 1 moves itself into all. Where the kernel has no
# CLONE_INTO_CGROUP (a test hook plays such a kernel), the monitor moves the child, as before;
# where -U's PID 1 cannot move itself (a kernel before 5.16: the other hook), the monitor moves it.
# Each way, the payload's processes end up in the machine's cgroups everywhere, and none of them
# in berth's own.
test_payload_in_its_cgroups_each_way() {
        require_test_hooks
        local name leader mode hook pid
        make_tiny_tree "$T/tree"
        for mode in plain -U; do
                for hook in "" 1 init; do
                        [ "$hook" != init ] || [ "$mode" = -U ] || continue
                        name=$(new_name)
                        # shellcheck disable=SC2046 # no option, or -U
                        BERTH_LOG_LEVEL=debug BERTH_TEST_NO_CLONE_INTO_CGROUP=${hook/init/} \
                                BERTH_TEST_INIT_JOIN_FAILS=${hook/1/} start_bg --loud "$name" \
                                "$T/tree" $([ "$mode" = plain ] || echo -U) /usr/bin/payload sleep 60
                        if [ "$hook" != 1 ]; then
                                assert_contains "$(cat "$T/$name.log")" "born in the container's cgroup2 cgroup"
                        else
                                assert_not_contains "$(cat "$T/$name.log")" "born in the container's"
                        fi
                        if [ "$hook" = init ]; then
                                assert_contains "$(cat "$T/$name.log")" "PID 1 could not join"
                        elif [ "$mode" = -U ]; then
                                assert_not_contains "$(cat "$T/$name.log")" "PID 1 could not join"
                        fi
                        leader=$(record_get "$name" LEADER)
                        assert_in_machine_cgroups "$name" "$leader"
                        for pid in $(cat "/proc/$leader/task/$leader/children"); do
                                assert_in_machine_cgroups "$name" "$pid"
                        done
                        stop_bg "$BG_PID"
                        assert_no_leftovers "$name"
                done
        done
}

test_sigkill_takes_container_down() {
        local name pids leader
        require_unified
        name=$(new_name)
        make_tiny_tree "$T/tree"
        # sh, two sleepers in the background and one that sh may exec
        start_bg "$name" "$T/tree" /bin/sh -c '/usr/bin/payload sleep 100 & /bin/sleep 100 & /usr/bin/payload sleep 100; true'
        wait_for at_least 4 machine_pids "$name" || fail "the container's processes did not appear"
        leader=$(record_get "$name" LEADER)
        pids=$(machine_pids "$name")
        kill -KILL "$BG_PID"
        wait "$BG_PID" 2>/dev/null || true
        # shellcheck disable=SC2086
        wait_for pids_gone "$leader" $pids ||
                fail "processes of the container survived berth's SIGKILL: $(ps -o pid,stat,args -p "$(echo $pids | tr ' ' ,)")"
        # what the dead instance left goes with the next start under its name
        berth -M "$name" -D "$T/tree" /usr/bin/payload true
        assert_eq 0 "$RC" "start after SIGKILL"
        assert_no_leftovers "$name"
}

test_restart_after_sigkill_cleans() {
        local name leader
        name=$(new_name)
        make_tiny_tree "$T/tree"
        start_bg "$name" "$T/tree" /usr/bin/payload sleep 100
        leader=$(record_get "$name" LEADER)
        kill -KILL "$BG_PID"
        wait "$BG_PID" 2>/dev/null || true
        wait_for pids_gone "$leader" || fail "the leader survived"
        [ -e "$(record "$name")" ] || fail "expected the killed instance's record to stay behind"

        # a new instance owns the name, replaces the record and runs
        start_bg "$name" "$T/tree" /usr/bin/payload sleep 100
        assert_eq "$BG_PID" "$(record_get "$name" PID)" "the record names the new instance"
        assert_eq 1 "$(machine_cgroups "$name" | grep -c "^$(unified_mount)/")" "one cgroup2 cgroup for the machine"
        stop_bg "$BG_PID"
        assert_no_leftovers "$name"

        # and a start after a SIGKILL in the foreground case
        start_bg "$name" "$T/tree" /usr/bin/payload sleep 100
        kill -KILL "$BG_PID"
        wait "$BG_PID" 2>/dev/null || true
        berth -M "$name" -D "$T/tree" /usr/bin/payload true
        assert_eq 0 "$RC" "start after SIGKILL"
        assert_no_leftovers "$name"
}

# The cgroups are made while the child starts (after the clone), the record that names them right
# after: a berth killed in between leaves cgroups and a lock file but no record, and --cleanup (or
# the next start) still finds and removes the cgroups; the child, waiting for its cgroup, goes too.
test_sigkill_before_record_cleans() {
        require_test_hooks
        local name
        name=$(new_name)
        make_tiny_tree "$T/tree"
        BERTH_TEST_DIE_BEFORE_RECORD=1 berth -M "$name" -D "$T/tree" /usr/bin/payload sleep 100
        assert_eq 137 "$RC" "killed by the hook"
        [ ! -e "$(record "$name")" ] || fail "a record was written before the hook"
        [ -n "$(machine_cgroups "$name")" ] || fail "no cgroups made before the hook"
        berth --cleanup -M "$name"
        assert_eq 0 "$RC"
        assert_no_leftovers "$name"
}

# A berth killed while it writes its record (between the temporary file and its rename()) leaves
# the temporary file: --cleanup removes it, and not that of a machine whose name only starts alike.
test_cleanup_removes_a_half_written_record() {
        local name
        name=$(new_name)
        mkdir -p "$RUN_DIR/machines"
        echo "NAME=$name" >"$RUN_DIR/machines/.#$name.Ab3dEf"
        echo "NAME=$name.x" >"$RUN_DIR/machines/.#$name.x.Ab3dEf"
        berth --cleanup -M "$name"
        assert_eq 0 "$RC" "$ERR"
        assert_match "$ERR" "^berth: Cleaned up after a dead instance of machine '$name': .*removed a half-written record"
        assert_no_leftovers "$name"
        [ -e "$RUN_DIR/machines/.#$name.x.Ab3dEf" ] || fail "removed the temporary record of machine '$name.x'"
        rm -f "$RUN_DIR/machines/.#$name.x.Ab3dEf"
}

# --cleanup, as nspawn's: cleans after a dead instance of the machine without starting anything,
# says so in one line; with nothing to clean, says that; refused while the machine runs
test_cleanup_option() {
        local name leader
        name=$(new_name)
        make_tiny_tree "$T/tree"
        start_bg "$name" "$T/tree" /usr/bin/payload sleep 100
        berth --cleanup -M "$name"
        assert_eq 1 "$RC"
        assert_contains "$ERR" "is running"
        [ -e "$(record "$name")" ] || fail "--cleanup touched a running machine's record"
        leader=$(record_get "$name" LEADER)
        kill -KILL "$BG_PID"
        wait "$BG_PID" 2>/dev/null || true
        wait_for pids_gone "$leader" || fail "the leader survived"
        [ -e "$(record "$name")" ] || fail "expected the killed instance's record to stay behind"
        berth --cleanup -M "$name"
        assert_eq 0 "$RC" "$ERR"
        assert_match "$ERR" "^berth: Cleaned up after a dead instance of machine '$name': .*removed cgroups"
        assert_no_leftovers "$name"
        [ ! -e "$T/tree/.berth-started" ] || fail "--cleanup started something"
        berth --cleanup -D "$T/tree" -M "$name"
        assert_eq 0 "$RC"
        assert_eq "berth: Nothing of machine '$name' was left to clean up." "$ERR"
        berth --cleanup
        assert_eq 1 "$RC"
        assert_contains "$ERR" "pass --machine=NAME"
}

# Whatever name it had: the next berth that starts, of any name, cleans after a
# killed instance (a test machine with a one-off name would otherwise leave its
# cgroups and record behind for good).
# It says so at debug level only: a start reports on its own machine, not on others (a user's,
# another test's), and -q or not, the one-line errors of a start stay one line.
test_any_start_cleans_other_dead_instances() {
        local dead dead2 other
        dead=$(new_name dead)
        dead2=$(new_name dead2)
        other=$(new_name other)
        make_tiny_tree "$T/tree"
        make_tiny_tree "$T/tree2"
        make_tiny_tree "$T/other"
        start_bg "$dead" "$T/tree" /usr/bin/payload sleep 100
        kill -KILL "$BG_PID"
        wait "$BG_PID" 2>/dev/null || true
        [ -e "$(record "$dead")" ] || fail "expected the killed instance's record to stay behind"
        [ -n "$(machine_cgroups "$dead")" ] || fail "expected the killed instance's cgroups to stay behind"

        berth -M "$other" -D "$T/other" /usr/bin/payload true
        assert_eq 0 "$RC"
        assert_not_contains "$ERR" "Cleaned up" "a start's messages about another machine (not at debug level)"
        assert_no_leftovers "$dead"
        assert_no_leftovers "$other"

        # at debug level: once
        start_bg "$dead2" "$T/tree2" /usr/bin/payload sleep 100
        kill -KILL "$BG_PID"
        wait "$BG_PID" 2>/dev/null || true
        BERTH_LOG_LEVEL=debug berth -M "$other" -D "$T/other" /usr/bin/payload true
        assert_eq 0 "$RC"
        assert_eq 1 "$(grep -c "Cleaned up after a dead instance of machine '$dead2'" <<<"$ERR")" \
                "debug lines about the other machine's dead instance"
        assert_no_leftovers "$dead2"
}

# A berth died and, somehow, its container did not: the record and a cgroup with a live
# process in it are there, nobody holds the lock. The cgroup is somewhere else than where
# this berth would put it (the dead one ran in another cgroup): only the record says where.
test_dead_instance_with_survivor() {
        local name u own base cg survivor h
        local -a v1=()
        require_unified
        name=$(new_name)
        make_tiny_tree "$T/tree"
        u=$(unified_mount)
        base="$u/$(unique_name elsewhere)"
        cg="$base/berth-$name/payload"
        mkdir -p "$cg"
        for h in pids devices; do
                if [ "$(stat -f -c %T "/sys/fs/cgroup/$h" 2>/dev/null)" = cgroupfs ]; then
                        mkdir -p "/sys/fs/cgroup/$h/$(unique_name elsewhere)/berth-$name/payload"
                        v1+=("/sys/fs/cgroup/$h/$(unique_name elsewhere)/berth-$name/payload")
                fi
        done
        # the survivor and a child of it, the way a container would have them
        setsid sh -c "echo \$\$ > '$cg/cgroup.procs'; for c in ${v1[*]}; do echo \$\$ > \$c/cgroup.procs; done; sleep 1000 & exec sleep 1000" </dev/null >/dev/null 2>&1 &
        survivor=$!
        wait_for at_least 2 cat "$cg/cgroup.procs" || fail "survivor not in place"
        local pids
        pids=$(cat "$cg/cgroup.procs")
        mkdir -p "$T/scratch-work/deep"
        mkdir -p "$RUN_DIR/machines"
        {
                echo "NAME=$name"
                echo "PID=999999"
                echo "LEADER=$survivor"
                echo "ROOT=$T/tree"
                echo "STATE=running"
                echo "CGROUP=berth-$name"
                echo "CGROUP_PATH=$cg"
                for c in "${v1[@]}"; do echo "CGROUP_PATH=$c"; done
                echo "SCRATCH=$T/scratch-work"
        } >"$(record "$name")"

        berth -M "$name" -D "$T/tree" /usr/bin/payload true
        local rc=$RC err=$ERR
        # whatever happened, do not leave the test's cgroups around
        for c in "$cg" "${v1[@]}"; do
                rmdir "$c" "${c%/payload}" "${c%/berth-*}" 2>/dev/null || true
        done
        RC=$rc ERR=$err
        assert_eq 0 "$RC" "start over a dead instance"
        assert_contains "$ERR" "Cleaned up after a dead instance of machine '$name'"
        assert_contains "$ERR" "killed 2 processes"
        # shellcheck disable=SC2086
        wait_for pids_gone "$survivor" $pids || fail "the survivor was not killed"
        [ ! -e "$T/scratch-work" ] || fail "SCRATCH= dir not removed"
        [ ! -e "$cg" ] || fail "the dead instance's cgroup was not removed"
        for c in "${v1[@]}"; do
                [ ! -e "$c" ] || fail "the dead instance's cgroup $c was not removed"
        done
        assert_no_leftovers "$name"
}

test_normal_exit_leaves_nothing() {
        local name
        name=$(new_name)
        make_tiny_tree "$T/tree"
        berth -M "$name" -D "$T/tree" /usr/bin/payload true
        assert_eq 0 "$RC" "payload true"
        assert_no_leftovers "$name"
        berth -M "$name" -D "$T/tree" /usr/bin/payload exit 3
        assert_eq 3 "$RC" "payload exit 3"
        assert_no_leftovers "$name"
}

# The monitor's helper for the locked mount namespace dies (the OOM killer, an admin): the start
# fails and says why, and leaves nothing. It used to go on as if the helper had made one.
test_locked_mounts_helper_killed() {
        local name
        require_test_hooks
        name=$(new_name)
        make_tiny_tree "$T/tree"
        BERTH_TEST_KILL_LOCKED_MOUNTS_HELPER=1 berth -M "$name" -D "$T/tree" /usr/bin/payload true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "Failed to make a locked mount namespace for the container: its helper was killed by SIGKILL."
        assert_no_leftovers "$name"
}

test_guest_sees_own_cgroup2_root() {
        local name
        require_unified
        name=$(new_name)
        make_tiny_tree "$T/tree"
        berth -M "$name" -D "$T/tree" --pipe /usr/bin/payload cat /proc/self/cgroup
        assert_eq 0 "$RC" "cat /proc/self/cgroup"
        assert_match "$OUT" '^0::/$' "the guest is at the root of its cgroup2 tree"
        berth -M "$name" -D "$T/tree" --pipe /bin/sh -c 'grep " /sys/fs/cgroup " /proc/self/mountinfo'
        assert_eq 0 "$RC" "find the cgroup mount"
        assert_match "$OUT" ' - cgroup2 ' "/sys/fs/cgroup is cgroup2"
        assert_match "$OUT" '^[0-9]+ [0-9]+ [0-9:]+ / /sys/fs/cgroup rw' "mounted at its root, writable"
        berth -M "$name" -D "$T/tree" --pipe /bin/sh -c 'ls /sys/fs/cgroup; echo; wc -l </sys/fs/cgroup/cgroup.procs'
        assert_eq 0 "$RC" "list /sys/fs/cgroup"
        assert_not_contains "$OUT" "berth-" "the host's cgroups are not visible"
        assert_contains "$OUT" "cgroup.procs"
        assert_no_leftovers "$name"
}

test_guest_can_delegate() {
        local name
        require_unified
        name=$(new_name)
        make_tiny_tree "$T/tree"
        berth -M "$name" -D "$T/tree" --pipe /bin/sh -c \
                'mkdir /sys/fs/cgroup/sub /sys/fs/cgroup/sub/deeper &&
                 echo $$ >/sys/fs/cgroup/sub/deeper/cgroup.procs && cat /proc/self/cgroup'
        assert_eq 0 "$RC" "create a sub-cgroup and move into it"
        assert_match "$OUT" '^0::/sub/deeper$'
        # the guest's sub-cgroups go with the machine
        assert_no_leftovers "$name"
}

run_tests
