#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck disable=SC2317 # the cases are called by run_tests
#
# berth as a systemd citizen: the whole script runs inside a systemd test host
# (test/tools/systemd-host.sh: Debian 12 with systemd as PID 1, booted in a container with a pure
# cgroup2 hierarchy), with berth from the build tree. All cases share that one host.
. "$(dirname "$0")/lib.sh"
systemd_host_reexec "$@"
require_root

# ---- the test host itself ----

test_host_pid1_is_systemd() {
        assert_eq systemd "$(cat /proc/1/comm)"
        run systemctl is-system-running --wait
        assert_match "$OUT" '^(running|degraded)$'
        assert_eq cgroup2fs "$(stat -f -c %T /sys/fs/cgroup)"
}

test_host_system_bus() {
        assert_ok busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus GetId
        assert_match "$OUT" '^s "[0-9a-f]{32}"$'
}

test_host_machined_activatable() {
        assert_ok busctl --system call org.freedesktop.machine1 /org/freedesktop/machine1 \
                org.freedesktop.machine1.Manager ListMachines
        assert_contains "$OUT" '".host"'
        assert_ok systemctl is-active systemd-machined.service
}

test_host_delegated_scope() {
        local unit=berth-test-delegate-$$.scope
        # shellcheck disable=SC2016 # expanded by the scope's shell
        assert_ok systemd-run --quiet --scope --unit="$unit" -p Delegate=yes sh -c '
                cg=/sys/fs/cgroup$(sed -n "s/^0:://p" /proc/self/cgroup)
                mkdir "$cg/sub" && echo $$ >"$cg/sub/cgroup.procs" && sed -n "s/^0:://p" /proc/self/cgroup'
        assert_eq "/system.slice/$unit/sub" "$OUT"
}

run_tests
