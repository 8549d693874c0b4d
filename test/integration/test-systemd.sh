#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck disable=SC2317 # the cases are called by run_tests
#
# berth as a systemd citizen: the whole script runs inside a systemd test host
# (test/tools/systemd-host.sh: Debian 12 with systemd as PID 1, booted in a container with a pure
# cgroup2 hierarchy), with berth from the build tree. All cases share that one host; each uses
# machine names of its own.
. "$(dirname "$0")/lib.sh"
systemd_host_reexec "$@"
require_root
# shellcheck disable=SC2034 # read by lib.sh
RUN_TIMEOUT=300
# shellcheck disable=SC2034 # read by lib.sh
WAIT_TIMEOUT=180
# the job's stderr is the host's journal: berth would log there, not to stderr
unset JOURNAL_STREAM

DEB_TREE=$("$BERTH_SRC/test/tools/make-debian-tree.sh" "$BERTH_TEST_CACHE")

# ---- helpers ----

# boot_scoped NAME [ARGS...]: boots the Debian tree (volatile) as machine NAME in the background,
# in a scope of its own; berth's messages go to $T/NAME.log, the guest's console to $T/NAME.out,
# berth's exit status to $T/NAME.rc.
# Returns when the guest is up.
boot_scoped() {
        local name=$1
        shift
        rm -f "$T/$name.rc" "$T/$name.pid"
        (
                rc=0
                "$BERTH" -q -D "$DEB_TREE" --volatile=overlay -M "$name" -b --console=pipe "$@" \
                        </dev/null >"$T/$name.out" 2>"$T/$name.log" &
                echo $! >"$T/$name.pid"
                wait $! || rc=$?
                echo "$rc" >"$T/$name.rc"
        ) &
        wait_for guest_is_up "$name" || fail "machine $name did not come up: $(cat "$T/$name.log")"
}

# the guest's init said READY=1 (the record of this berth, not one that a killed instance left),
# and, if registered, its bus answers
guest_is_up() {
        local state pid
        pid=$(cat "$T/$1.pid" 2>/dev/null) || pid=
        if [ -n "$pid" ]; then
                grep -qx "PID=$pid" "/run/berth/machines/$1" 2>/dev/null || return 1
        fi
        grep -qx STATE=ready "/run/berth/machines/$1" 2>/dev/null || return 1
        # (not the record of a berth that was just killed: that says ready too)
        kill -0 "$(berth_pid "$1")" 2>/dev/null || return 1
        is_registered "$1" || return 0
        state=$(systemctl -M "$1" is-system-running 2>/dev/null) || true
        [ "$state" = running ] || [ "$state" = degraded ]
}

is_registered() {
        machinectl show "$1" >/dev/null 2>&1
}

not_registered() {
        ! is_registered "$1"
}

has_exited() {
        [ -e "$T/$1.rc" ]
}

# wait_exit NAME: waits for the berth of boot_scoped NAME to exit, sets $RC to its status.
wait_exit() {
        wait_for has_exited "$1" || fail "berth for $1 did not exit: $(cat "$T/$1.log")"
        RC=$(cat "$T/$1.rc")
}

berth_pid() {
        sed -n 's/^PID=//p' "/run/berth/machines/$1"
}

# mprop PROPERTY MACHINE (machinectl 252 has no -P)
mprop() {
        machinectl show --property="$1" --value "$2"
}

no_units() {
        [ -z "$(systemctl list-units --all --no-legend --plain "$1")" ]
}

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

# ---- registration and the scope ----

test_scope_and_registration() {
        local leader
        boot_scoped sc1
        assert_ok machinectl list --no-legend
        assert_match "$OUT" '^sc1 +container +berth '
        assert_eq machine-sc1.scope "$(mprop Unit sc1)"
        assert_eq berth "$(mprop Service sc1)"
        assert_eq "$DEB_TREE" "$(mprop RootDirectory sc1)"
        assert_eq yes "$(prop machine-sc1.scope Delegate)"
        assert_eq closed "$(prop machine-sc1.scope DevicePolicy)"
        assert_eq 16384 "$(prop machine-sc1.scope TasksMax)"
        assert_eq machine.slice "$(prop machine-sc1.scope Slice)"
        # the guest's init has a subtree of its own below the scope, and sees it as its root
        leader=$(mprop Leader sc1)
        assert_eq "0::/machine.slice/machine-sc1.scope/berth-sc1/policy/payload/init.scope" \
                "$(grep '^0::' "/proc/$leader/cgroup")"
        assert_ok machinectl shell sc1 /bin/cat /proc/1/cgroup
        assert_match "$OUT" '^0::/init.scope'
        assert_ok machinectl poweroff sc1
        wait_exit sc1
        assert_eq 0 "$RC" "machinectl poweroff ends berth with 0"
        wait_for not_registered sc1
        wait_for no_units 'machine-sc1*' || fail "the scope is still there"
}

test_scope_name_is_escaped() {
        boot_scoped sc-2.x
        assert_eq 'machine-sc\x2d2.x.scope' "$(mprop Unit sc-2.x)"
        assert_ok machinectl poweroff sc-2.x
        wait_exit sc-2.x
        assert_eq 0 "$RC"
}

test_register_no_leaves_machined_alone() {
        boot_scoped sc3 --register=no
        not_registered sc3 || fail "machine sc3 is registered with --register=no"
        no_units 'machine-sc3*' || fail "a scope was made with --register=no"
        kill "$(berth_pid sc3)"
        wait_exit sc3
        assert_eq 0 "$RC"
}

test_slice_and_properties() {
        boot_scoped sc4 --slice=berthtest.slice --property=MemoryMax=100M --property=CPUWeight=50 \
                --property=TasksMax=500 --property="DeviceAllow=/dev/loop-control rw"
        assert_eq berthtest.slice "$(prop machine-sc4.scope Slice)"
        assert_eq 104857600 "$(prop machine-sc4.scope MemoryMax)"
        assert_eq 50 "$(prop machine-sc4.scope CPUWeight)"
        assert_eq 500 "$(prop machine-sc4.scope TasksMax)"
        assert_contains "$(prop machine-sc4.scope DeviceAllow)" "/dev/loop-control rw"
        assert_ok machinectl poweroff sc4
        wait_exit sc4
}

test_property_errors() {
        assert_fails "$BERTH" -D "$DEB_TREE" --property=Bogus=1 true
        assert_contains "$ERR" "unknown property"
        assert_one_line_error
        assert_fails "$BERTH" -D "$DEB_TREE" --property=MemoryMax=lots true
        assert_contains "$ERR" "expected a size"
        assert_fails "$BERTH" -D "$DEB_TREE" --property=Delegate=no true
        assert_contains "$ERR" "Delegate=yes"
}

test_keep_unit_registers_the_service() {
        assert_ok systemd-run --unit=berth-test-ku1 -p Delegate=yes -q "$BERTH" -q -D "$DEB_TREE" \
                --volatile=overlay -M ku1 -b --keep-unit --console=pipe --property=CPUWeight=42
        wait_for guest_is_up ku1 || fail "machine ku1 did not come up: $(journalctl -u berth-test-ku1 --no-pager)"
        assert_eq berth-test-ku1.service "$(mprop Unit ku1)"
        assert_eq 42 "$(prop berth-test-ku1.service CPUWeight)"
        no_units 'machine-ku1*' || fail "a scope was made with --keep-unit"
        assert_match "$(grep '^0::' "/proc/$(mprop Leader ku1)/cgroup")" \
                '^0::/system.slice/berth-test-ku1.service/berth-ku1/policy/payload/'
        assert_ok machinectl poweroff ku1
        wait_for unit_stopped_name berth-test-ku1.service || fail "the service did not end"
        not_registered ku1 || fail "still registered"
}

unit_stopped_name() {
        [ "$(prop "$1" ActiveState)" != active ] && [ "$(prop "$1" ActiveState)" != deactivating ]
}

# ---- machinectl, systemctl -M, systemd-run -M, journalctl -M ----

test_machinectl_status_shell_login() {
        boot_scoped ma1
        assert_ok machinectl status ma1 --no-pager
        assert_contains "$OUT" "Service: berth; class container"
        assert_contains "$OUT" "Unit: machine-ma1.scope"
        assert_ok machinectl shell ma1 /bin/true
        # shellcheck disable=SC2016 # expanded in the guest
        assert_ok machinectl shell ma1 /bin/sh -c 'echo hello from $(cat /proc/1/comm)'
        assert_contains "$OUT" "hello from systemd"
        # login wants a terminal: script(1) gives it one
        run timeout 4 script -qec "machinectl login ma1" /dev/null
        assert_contains "$OUT" "Connected to machine ma1"
        assert_match "$OUT" ' login: *$'
        assert_ok machinectl poweroff ma1
        wait_exit ma1
}

test_systemctl_and_systemd_run_in_the_guest() {
        boot_scoped ma2
        assert_ok systemctl -M ma2 is-system-running
        assert_match "$OUT" '^(running|degraded)$'
        local leader
        leader=$(mprop Leader ma2)
        assert_ok systemd-run -M ma2 --wait -q touch /run/berth-test-was-here
        [ -e "/proc/$leader/root/run/berth-test-was-here" ] || fail "systemd-run -M did not run in the guest"
        [ ! -e /run/berth-test-was-here ] || fail "systemd-run -M ran on the host"
        assert_rc 3 systemd-run -M ma2 --wait -q sh -c 'exit 3'
        assert_ok machinectl poweroff ma2
        wait_exit ma2
}

test_journalctl_M() {
        boot_scoped ma3
        assert_ok journalctl -M ma3 -b --no-pager -q
        assert_contains "$OUT" "Reached target multi-user.target"
        assert_ok machinectl poweroff ma3
        wait_exit ma3
}

test_machinectl_reboot() {
        boot_scoped ma4
        assert_ok machinectl reboot ma4
        wait_exit ma4
        assert_eq 133 "$RC" "a reboot ends berth with 133"
        wait_for not_registered ma4
}

test_machinectl_terminate() {
        boot_scoped ma5
        assert_ok machinectl terminate ma5
        wait_exit ma5
        wait_for not_registered ma5
        wait_for no_units 'machine-ma5*' || fail "the scope is still there"
}

# machinectl kill sends SIGTERM to every process of the machine by default; a systemd guest
# shuts down from that only sometimes (its PID 1 re-executes itself on SIGTERM while its services
# die), nspawn's or berth's. SIGRTMIN+4 to all is what stopping the scope sends: berth takes it as
# a stop request and the guest's init as a poweroff.
#
# "Could not kill machine: No such device" is systemd's, before 258: KillUnit walks the scope's
# cgroups reading each one's cgroup.procs, and a cgroup that the guest's systemd removes between
# the open and the read (its service just died of the signal) reads as ENODEV, which ends the walk
# with that error (systemd PR #38134 ignores it). systemd signals the scope's own processes before
# it descends, and berth runs there: by the time the walk fails, berth has its stop request. So
# that one error is accepted where systemd is older, and the stop must still be a clean poweroff
# (a second request would have been a SIGKILL: not 0).
test_machinectl_kill() {
        local v
        boot_scoped ma6
        run machinectl kill --signal=SIGRTMIN+4 ma6
        if [ "$RC" != 0 ]; then
                v=$(systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')
                [ "${v:-0}" -lt 258 ] && [ "$ERR" = "Could not kill machine: No such device" ] ||
                        fail "machinectl kill failed ($RC): $ERR"
                echo "# machinectl kill: systemd $v's ENODEV race; the stop request reached berth anyway" >&2
        fi
        wait_exit ma6
        assert_eq 0 "$RC" "the machine powered off (berth got one stop request)"
        wait_for not_registered ma6
}

# ---- crashes ----

test_sigkill_with_a_lingering_scope_then_restart() {
        local leader sleeper
        boot_scoped cr1
        # something that outlives berth in its scope: the scope and the registration linger
        sleep 1000 &
        sleeper=$!
        echo "$sleeper" >/sys/fs/cgroup/machine.slice/machine-cr1.scope/cgroup.procs
        kill -KILL "$(berth_pid cr1)"
        wait_exit cr1
        is_registered cr1 || fail "the registration did not linger (test setup)"
        boot_scoped cr1
        leader=$(mprop Leader cr1)
        if [ -z "$leader" ] || [ ! -e "/proc/$leader" ]; then
                fail "no live leader registered"
        fi
        assert_eq machine-cr1.scope "$(mprop Unit cr1)"
        ! kill -0 "$sleeper" 2>/dev/null || fail "the stale scope's process survived"
        assert_ok machinectl poweroff cr1
        wait_exit cr1
        assert_eq 0 "$RC"
}

test_sigkill_then_immediate_restart() {
        boot_scoped cr2
        kill -KILL "$(berth_pid cr2)"
        wait_exit cr2
        boot_scoped cr2
        assert_eq machine-cr2.scope "$(mprop Unit cr2)"
        assert_ok machinectl poweroff cr2
        wait_exit cr2
        assert_eq 0 "$RC"
}

# ---- devices ----

test_device_policy_denies_a_disk() {
        run "$BERTH" -q -D "$DEB_TREE" --volatile=overlay -M dv1 --console=pipe /bin/sh -c \
                'mknod /tmp/sda b 8 0 2>/dev/null || echo mknod-denied; head -c1 /tmp/sda >/dev/null 2>&1 || echo open-denied'
        assert_eq 0 "$RC"
        assert_match "$OUT" '(mknod|open)-denied'
        run "$BERTH" -q -D "$DEB_TREE" --volatile=overlay -M dv1 --console=pipe /bin/sh -c 'head -c1 /dev/urandom | wc -c'
        assert_eq 1 "$OUT"
}

# ---- berth@.service ----

test_unit_active_only_when_guest_is_ready() {
        install_unit
        machine_tree un1
        assert_ok systemctl start berth@un1
        # start returns when the unit is active: the guest must be up by then
        assert_ok systemctl -M un1 is-system-running
        assert_match "$OUT" '^(running|degraded)$'
        assert_eq active "$(prop berth@un1 ActiveState)"
        assert_eq berth@un1.service "$(mprop Unit un1)"
        [ -n "$(prop berth@un1 StatusText)" ] || fail "no STATUS= from the guest"
        assert_ok systemctl status berth@un1 --no-pager
        assert_match "$OUT" 'Status: "'
        assert_ok systemctl stop berth@un1
        assert_eq inactive "$(prop berth@un1 ActiveState)"
        assert_eq success "$(prop berth@un1 Result)"
        assert_eq 0 "$(prop berth@un1 ExecMainStatus)"
        not_registered un1 || fail "still registered after stop"
}

test_unit_stop_powers_the_guest_off() {
        install_unit
        machine_tree un2
        assert_ok systemctl start berth@un2
        assert_ok systemctl stop berth@un2
        assert_ok journalctl -u berth@un2 --no-pager -q
        assert_contains "$OUT" "Reached target poweroff.target"
        assert_not_contains "$OUT" "did not stop in time"
}

map_line() {
        first_line "$1" | awk '{ print $1, $2, $3 }'
}

# berth.conf in the usual places (this host is a throw-away one: /etc and /usr/lib are ours): the
# administrator's file over the vendor's, the command line over both
test_host_config_files() {
        local out
        unset BERTH_CONF
        mkdir -p /usr/lib/berth /etc/berth
        printf '[Exec]\nPrivateUsers=pick\n' >/usr/lib/berth/berth.conf
        out=$("$BERTH" -q --console=pipe -M hc1 -D "$DEB_TREE" --volatile=overlay /bin/cat /proc/self/uid_map) || fail "berth failed: $out"
        assert_match "$(map_line "$out")" "^0 [1-9][0-9]* 65536$" "/usr/lib/berth/berth.conf"
        printf '[Exec]\nPrivateUsers=no\n' >/etc/berth/berth.conf
        out=$("$BERTH" -q --console=pipe -M hc1 -D "$DEB_TREE" --volatile=overlay /bin/cat /proc/self/uid_map) || fail "berth failed: $out"
        assert_eq "0 0 4294967295" "$(map_line "$out")" "/etc/berth/berth.conf over /usr/lib"
        out=$("$BERTH" -q --console=pipe -M hc1 -D "$DEB_TREE" --volatile=overlay -U /bin/cat /proc/self/uid_map) || fail "berth failed: $out"
        assert_match "$(map_line "$out")" "^0 [1-9][0-9]* 65536$" "-U over berth.conf"
        rm -f /usr/lib/berth/berth.conf /etc/berth/berth.conf
        out=$("$BERTH" -q --console=pipe -M hc1 -D "$DEB_TREE" --volatile=overlay /bin/cat /proc/self/uid_map) || fail "berth failed: $out"
        assert_eq "0 0 4294967295" "$(map_line "$out")" "no berth.conf: nspawn's default"
}

unit_restarted() {
        [ "$(prop berth@un3 NRestarts)" = 1 ] && [ "$(prop berth@un3 ActiveState)" = active ]
}

unit_stopped() {
        [ "$(prop "berth@$1" ActiveState)" = inactive ]
}

test_unit_reboot_restarts() {
        local pid1 pid2
        install_unit
        machine_tree un3
        assert_ok systemctl start berth@un3
        pid1=$(prop berth@un3 MainPID)
        # the guest may go down before its answer is out ("Connection reset by peer"): what
        # counts is that the unit restarts
        run systemctl -M un3 reboot
        wait_for unit_restarted ||
                fail "berth@un3 was not restarted (systemctl reboot: $RC $ERR): $(systemctl status berth@un3 --no-pager)"
        pid2=$(prop berth@un3 MainPID)
        [ "$pid1" != "$pid2" ] || fail "the same main PID after a reboot"
        wait_for guest_is_up un3
        assert_eq berth@un3.service "$(mprop Unit un3)"
        assert_ok systemctl -M un3 poweroff
        wait_for unit_stopped un3 || fail "poweroff in the guest did not stop the unit"
        assert_eq success "$(prop berth@un3 Result)"
}

test_unit_enable_wants_it_from_machines_target() {
        install_unit
        assert_ok systemctl enable berth@un4
        [ -L /etc/systemd/system/machines.target.wants/berth@un4.service ] || fail "no machines.target.wants link"
        assert_ok systemctl list-dependencies --plain --no-pager machines.target
        assert_contains "$OUT" "berth@un4.service"
        assert_ok systemctl disable berth@un4
}

unit_journal_has() {
        grep -qF -- "$2" <<<"$(journalctl -u "$1" --no-pager -q -o cat)"
}

test_unit_failure_is_in_the_journal() {
        install_unit
        assert_fails systemctl start berth@un-missing
        # journald stores what the unit logged when it gets to it, not before start returns
        wait_for unit_journal_has berth@un-missing "No image for machine 'un-missing'" ||
                fail "not in the journal: $(journalctl -u berth@un-missing --no-pager -q -o cat)"
        # through the journal's native socket with berth's fields, not as a line on the unit's stream
        OUT=$(journalctl -u berth@un-missing --no-pager -q -o verbose SYSLOG_IDENTIFIER=berth PRIORITY=3)
        assert_contains "$OUT" "No image for machine 'un-missing'"
        assert_contains "$OUT" "CODE_FUNC="
        assert_contains "$OUT" "CODE_FILE="
}

test_link_journal_guest() {
        local id
        install_unit
        machine_tree un5
        assert_ok systemctl start berth@un5
        id=$(cat "/proc/$(mprop Leader un5)/root/etc/machine-id")
        [ -L "/var/log/journal/$id" ] || fail "no /var/log/journal/$id symlink on the host: $(ls -l /var/log/journal)"
        assert_eq "/var/lib/machines/un5/var/log/journal/$id" "$(readlink "/var/log/journal/$id")"
        # (the guest's journald flushes to the linked directory on its own time)
        wait_for guest_journal_has "$id" "Reached target multi-user.target" ||
                fail "not in the guest's linked journal: $(journalctl -m --no-pager -q -o cat "_MACHINE_ID=$id")"
        assert_ok systemctl stop berth@un5
}

guest_journal_has() {
        grep -q -- "$2" <<<"$(journalctl -m -q --no-pager -o cat "_MACHINE_ID=$1" 2>/dev/null)"
}

test_link_journal_host() {
        local uuid=6a1e5b0c-47a4-4f0a-9b1e-0d1c2e3f4a5b id=6a1e5b0c47a44f0a9b1e0d1c2e3f4a5b
        boot_scoped lj1 --link-journal=host --uuid="$uuid"
        if [ ! -d "/var/log/journal/$id" ] || [ -L "/var/log/journal/$id" ]; then
                fail "no host directory for the guest"
        fi
        wait_for guest_journal_has "$id" "Reached target multi-user.target" ||
                fail "the guest's journal is not in the host's /var/log/journal/$id"
        assert_ok machinectl poweroff lj1
        wait_exit lj1
        assert_eq 0 "$RC"
}

test_link_journal_guest_refused_on_a_volatile_tree() {
        run "$BERTH" -q -D "$DEB_TREE" --volatile=overlay -M lj2 --link-journal=guest --console=pipe /bin/true
        assert_eq 1 "$RC"
        assert_contains "$ERR" "--link-journal=guest"
        assert_one_line_error
        run "$BERTH" -q -D "$DEB_TREE" --volatile=overlay -M lj2 --link-journal=try-guest --console=pipe /bin/true
        assert_eq 0 "$RC"
}

# Last: it takes machined away (and puts it back).
test_zz_without_machined() {
        local svc=/usr/share/dbus-1/system-services/org.freedesktop.machine1.service
        mv "$svc" "$svc.off"
        systemctl stop systemd-machined.service
        busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig
        boot_scoped nm1
        assert_match "$(cat "$T/nm1.log")" 'systemd-machined is not available'
        assert_eq 1 "$(grep -c . "$T/nm1.log")" "one line about it"
        kill "$(berth_pid nm1)"
        wait_exit nm1
        run "$BERTH" -q -D "$DEB_TREE" --volatile=overlay -M nm2 --register=yes --console=pipe /bin/true
        assert_eq 1 "$RC"
        assert_contains "$ERR" "systemd-machined is not available"
        assert_one_line_error
        mv "$svc.off" "$svc"
        busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig
}

run_tests
