#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck disable=SC2317 # the cases are called by run_tests
#
# berthctl with systemd: machines from systemd-machined and berth@.service units over D-Bus. The
# whole script runs inside one systemd test host (test/tools/systemd-host.sh, see test-systemd.sh);
# every case uses machine names of its own.
. "$(dirname "$0")/lib.sh"
systemd_host_reexec "$@"
require_root
# shellcheck disable=SC2034 # read by lib.sh
RUN_TIMEOUT=120
# shellcheck disable=SC2034 # read by lib.sh
WAIT_TIMEOUT=30
unset JOURNAL_STREAM

DEB_TREE=$("$BERTH_SRC/test/tools/make-debian-tree.sh" "$BERTH_TEST_CACHE")

# ---- helpers ----

ctl() {
        run "$BERTHCTL" "$@"
}

# machine_tree NAME: /var/lib/machines/NAME, a writable overlay over the cached Debian tree
machine_tree() {
        local d=/var/lib/machines/$1 o=/run/berth-test-trees/$1
        if ! mountpoint -q "$d"; then
                mkdir -p "$d" "$o/upper" "$o/work"
                mount -t overlay overlay -o "lowerdir=$DEB_TREE,upperdir=$o/upper,workdir=$o/work" "$d"
        fi
}

# berth@.service as shipped, running berth from the build tree
install_unit() {
        local u=/etc/systemd/system/berth@.service
        if [ ! -e "$u" ]; then
                sed "s|^ExecStart=berth |ExecStart=$BERTH |" "$BERTH_SRC/units/berth@.service" >"$u"
                systemctl daemon-reload
        fi
}

prop() {
        systemctl show -P "$2" "$1"
}

unit_inactive() {
        [ "$(prop "$1" ActiveState)" != active ] && [ "$(prop "$1" ActiveState)" != deactivating ]
}

is_registered() {
        busctl call org.freedesktop.machine1 /org/freedesktop/machine1 org.freedesktop.machine1.Manager \
                GetMachine s "$1" >/dev/null 2>&1
}

not_registered() {
        ! is_registered "$1"
}

# foreign NAME: a machine of "another manager": a sleep in a service of its own, registered with
# machined by hand with the service name systemd-nspawn
foreign() {
        local pid
        systemd-run --quiet --unit="foreign-$1" sleep 1000 || fail "systemd-run failed"
        wait_for sh -c "[ \"\$(systemctl show -P MainPID foreign-$1)\" -gt 0 ]" || fail "no sleep for $1"
        pid=$(prop "foreign-$1" MainPID)
        busctl call org.freedesktop.machine1 /org/freedesktop/machine1 org.freedesktop.machine1.Manager \
                RegisterMachine sayssus "$1" 0 systemd-nspawn container "$pid" / ||
                fail "RegisterMachine $1 failed"
}

# ---- cases ----

test_start_list_status_exec_kill_poweroff() {
        install_unit
        machine_tree bs1
        ctl start bs1
        assert_eq 0 "$RC" "berthctl start: $ERR"
        assert_eq active "$(prop berth@bs1 ActiveState)"
        assert_ok "$BERTHCTL" wait --until=ready bs1
        # listed once, from berth's record and machined
        ctl list
        assert_match "$OUT" '^bs1 +container +berth '
        assert_eq 1 "$(printf '%s\n' "$OUT" | grep -c '^bs1 ')" "bs1 listed once"
        ctl list --json=short
        assert_match "$OUT" '^\[\{.*"machine":"bs1","class":"container","service":"berth".*\}\]$'
        ctl status bs1
        assert_eq 0 "$RC" "status: $ERR"
        assert_match "$OUT" 'Unit: berth@bs1\.service'
        ctl show bs1
        assert_contains "$OUT" "Registered=yes"
        assert_contains "$OUT" "Unit=berth@bs1.service"
        # exec on a registered berth machine
        assert_ok "$BERTHCTL" exec bs1 true
        # a signal to all of the payload: the guest's systemd takes SIGUSR1 in its stride
        assert_ok "$BERTHCTL" kill --signal=SIGUSR1 bs1
        assert_eq active "$(prop berth@bs1 ActiveState)"
        assert_ok "$BERTHCTL" poweroff bs1
        wait_for unit_inactive berth@bs1 || fail "poweroff did not stop berth@bs1"
        assert_eq success "$(prop berth@bs1 Result)"
        wait_for not_registered bs1 || fail "bs1 still registered"
}

test_start_failure_says_why() {
        install_unit
        ctl start bs-missing
        assert_eq 1 "$RC"
        assert_contains "$ERR" "berth@bs-missing.service"
        assert_contains "$ERR" "result is exit-code"
}

test_terminate_a_unit_machine() {
        install_unit
        machine_tree bs2
        assert_ok "$BERTHCTL" start bs2
        assert_ok "$BERTHCTL" terminate bs2
        wait_for unit_inactive berth@bs2 || fail "berth@bs2 still active after terminate"
        wait_for not_registered bs2 || fail "bs2 still registered after terminate"
        ctl list
        assert_not_contains "$OUT" "bs2"
}

test_enable_disable() {
        install_unit
        assert_ok "$BERTHCTL" enable bs3
        assert_eq enabled "$(systemctl is-enabled berth@bs3)"
        [ -L /etc/systemd/system/machines.target.wants/berth@bs3.service ] || fail "no machines.target.wants link"
        assert_eq enabled "$(systemctl is-enabled machines.target)"
        assert_ok systemctl list-dependencies --plain --no-pager machines.target
        assert_contains "$OUT" "berth@bs3.service"
        assert_ok "$BERTHCTL" disable bs3
        [ ! -e /etc/systemd/system/machines.target.wants/berth@bs3.service ] || fail "the wants link is still there"
        assert_eq disabled "$(systemctl is-enabled berth@bs3 || true)"
}

test_unregistered_berth_machine_still_listed() {
        "$BERTH" -q -D "$DEB_TREE" --volatile=overlay -M rn1 --register=no --console=pipe \
                /bin/sleep 1000 </dev/null >"$T/rn1.log" 2>&1 &
        assert_ok "$BERTHCTL" wait rn1 --timeout=20s
        not_registered rn1 || fail "rn1 is registered"
        ctl list
        assert_match "$OUT" '^rn1 +container +berth '
        ctl show rn1
        assert_contains "$OUT" "Registered=no"
        assert_ok "$BERTHCTL" exec rn1 true
        assert_ok "$BERTHCTL" terminate rn1
        wait
}

test_another_managers_machine() {
        foreign fm1
        ctl list
        assert_match "$OUT" '^fm1 +container +systemd-nspawn '
        ctl list --json=short
        assert_contains "$OUT" '"machine":"fm1","class":"container","service":"systemd-nspawn"'
        ctl status fm1
        assert_eq 0 "$RC" "status: $ERR"
        assert_match "$OUT" 'Unit: foreign-fm1\.service'
        assert_match "$OUT" "Leader: $(prop foreign-fm1 MainPID) "
        ctl show fm1
        assert_contains "$OUT" "Service=systemd-nspawn"
        ctl exec fm1 true
        assert_eq 1 "$RC"
        assert_contains "$ERR" "not a berth machine"
        assert_one_line_error
        # kill goes through machined: SIGUSR1 ends the sleep
        assert_ok "$BERTHCTL" kill --signal=SIGUSR1 --kill-whom=leader fm1
        wait_for not_registered fm1 || fail "fm1 still registered after SIGUSR1"
        assert_eq signal "$(prop foreign-fm1 Result)"
}

test_a_systemd_nspawn_machine() {
        systemd-run --quiet --unit=nspawn-ns1 systemd-nspawn -q -D "$DEB_TREE" --volatile=overlay -M ns1 \
                --keep-unit /bin/sleep 1000 || fail "systemd-run systemd-nspawn failed"
        wait_for is_registered ns1 || fail "systemd-nspawn did not register ns1: $(systemctl status nspawn-ns1 --no-pager)"
        ctl list
        assert_match "$OUT" '^ns1 +container +systemd-nspawn '
        ctl list --json=short
        assert_contains "$OUT" '"machine":"ns1","class":"container","service":"systemd-nspawn"'
        ctl status ns1
        assert_eq 0 "$RC" "status: $ERR"
        assert_match "$OUT" 'Unit: nspawn-ns1\.service'
        assert_match "$OUT" "Root: $DEB_TREE\$"
        ctl copy-to ns1 /etc/hostname /tmp/x
        assert_eq 1 "$RC"
        assert_contains "$ERR" "not a berth machine"
        assert_ok "$BERTHCTL" terminate ns1
        not_registered ns1 || fail "ns1 still registered after terminate"
        wait_for unit_inactive nspawn-ns1 || fail "nspawn-ns1 still active"
}

test_another_managers_machine_poweroff_terminate() {
        foreign fm2
        foreign fm3
        # machinectl's poweroff: SIGRTMIN+4 to the leader, which ends a sleep
        assert_ok "$BERTHCTL" poweroff fm2
        wait_for not_registered fm2 || fail "fm2 still registered after poweroff"
        assert_ok "$BERTHCTL" terminate fm3
        not_registered fm3 || fail "fm3 still registered after terminate"
        unit_inactive foreign-fm3 || fail "foreign-fm3 still active"
}

run_tests
