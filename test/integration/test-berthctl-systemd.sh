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
. "$(dirname "$0")/lib-ssh.sh"
# shellcheck disable=SC2034 # read by lib.sh
RUN_TIMEOUT=300
# shellcheck disable=SC2034 # read by lib.sh
WAIT_TIMEOUT=180
unset JOURNAL_STREAM

DEB_TREE=$("$BERTH_SRC/test/tools/make-debian-tree.sh" "$BERTH_TEST_CACHE")

# ---- helpers ----

ctl() {
        run "$BERTHCTL" "$@"
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

# status_shows NAME TEXT: berthctl status shows TEXT among the machine's journal lines
status_shows() {
        grep -qF -- "$2" <<<"$("$BERTHCTL" status -n 1000 -o cat "$1" 2>/dev/null)"
}

# run after every case (see lib.sh), also one that failed half-way
case_teardown() {
        stop_sshd
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
        # its journal lines, as machinectl shows them: the host's entries about the machine
        # (MACHINE=, as berth logs them under systemd) and the guest's own (the unit links its
        # journal, --link-journal=try-guest)
        printf 'MESSAGE=status probe %s\nMACHINE=bs1\n' "$$" | logger --journald
        wait_for status_shows bs1 "status probe $$" || fail "status shows no MACHINE=bs1 line: $OUT"
        wait_for status_shows bs1 "Startup finished" || fail "status shows none of the guest's lines"
        ctl status -n 1 -o cat bs1
        assert_eq 1 "$(printf '%s\n' "$OUT" | awk 'BEGIN { RS = "" } { p = $0 } END { print p }' | wc -l)" "-n 1: $OUT"
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
        # the unit's own reason, from its journal, in one line
        assert_one_line_error
        assert_contains "$ERR" "Failed to start berth@bs-missing.service: No image for machine 'bs-missing'"
        assert_contains "$ERR" "journalctl -u berth@bs-missing.service"
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
        assert_ok "$BERTHCTL" wait rn1 --timeout=120s
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

# ---- -H to a host with systemd-machined and without berthctl ----

# machinectl's verbs go to machinectl -H there (ssh to systemd-stdio-bridge, to machined); the
# others fail in a line that says so. The far side is this host, over ssh on the loopback address,
# with a PATH that has no berthctl.
test_host_without_berthctl_goes_to_machined() {
        local h args
        install_unit
        machine_tree bh1
        assert_ok "$BERTHCTL" start bh1
        assert_ok "$BERTHCTL" wait --until=ready bh1
        start_sshd /usr/sbin:/usr/bin:/sbin:/bin
        h=root@127.0.0.1:$SSH_PORT
        "$BERTH_SSH" -p "$SSH_PORT" root@127.0.0.1 'command -v berthctl' && fail "berthctl is on the far side's PATH"
        # options before the verb as after it
        ctl -H "$h" --no-legend list
        assert_eq 0 "$RC" "list: $ERR"
        assert_match "$OUT" '^bh1 +container +berth '
        grep -q systemd-stdio-bridge "$T/ssh/calls" || fail "not machinectl's transport: $(cat "$T/ssh/calls")"
        ctl -H "$h" status bh1
        assert_eq 0 "$RC" "status: $ERR"
        assert_match "$OUT" 'Unit: berth@bh1\.service'
        ctl -H "$h" show -P Service bh1
        assert_eq 0 "$RC" "show -P: $ERR"
        assert_eq berth "$OUT"
        ctl -H "$h" status bh-none
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "bh-none"
        ctl -H "$h" exec bh1 /bin/true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "berthctl is not installed on 127.0.0.1, and machinectl -H cannot do 'exec' instead"
        # machinectl has shell, on local machines only; export-tar hands machined a file descriptor,
        # which the bus over ssh cannot carry
        for args in "shell bh1 /bin/true" "export-tar bh1 $T/bh1.tar"; do
                # shellcheck disable=SC2086 # the words are the arguments
                ctl -H "$h" $args
                assert_eq 1 "$RC" "$args"
                assert_one_line_error "$args"
                assert_contains "$ERR" "machinectl -H cannot do '${args%% *}'" "$args"
        done
        # machined's poweroff: the guest's systemd shuts down, the unit ends well
        ctl -H "$h" poweroff bh1
        assert_eq 0 "$RC" "poweroff: $ERR"
        wait_for unit_inactive berth@bh1 || fail "poweroff over -H did not stop berth@bh1"
        assert_eq success "$(prop berth@bh1 Result)"
        wait_for not_registered bh1 || fail "bh1 still registered"
}

# ---- shell, login, console, copy, bind, reboot on a berth@.service machine ----

restarted() {
        [ "$(prop "$1" NRestarts)" -ge 1 ] && [ "$(prop "$1" ActiveState)" = active ]
}

test_shell_login_console_copy_bind_reboot_on_a_unit_machine() {
        local leader
        install_unit
        machine_tree bv1
        assert_ok "$BERTHCTL" start bv1
        assert_ok "$BERTHCTL" wait --until=ready bv1
        is_registered bv1 || fail "bv1 is not registered"

        # shell: a command's exit status, its stdout and stderr apart
        ctl shell bv1 /bin/sh -c 'echo out; echo err >&2; exit 3'
        assert_eq 3 "$RC" "shell's exit status"
        assert_eq out "$OUT"
        assert_eq err "$ERR"
        ctl shell bv1 /bin/sh -c 'exit 3'
        assert_eq 3 "$RC"
        assert_eq "" "$OUT"
        assert_eq "" "$ERR"

        # login needs a terminal: refused in a script, with what to use instead
        ctl login bv1
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "terminal"
        assert_contains "$ERR" "berthctl shell bv1"

        # console without a terminal: stdin a pipe that holds the escape (Ctrl-] three times);
        # it attaches (the unit's berth keeps a read-only console) and detaches, the machine
        # keeps running
        # shellcheck disable=SC2016 # expanded by sh
        RUN_TIMEOUT=60 run sh -c 'printf "\035\035\035" | "$0" console "$1"' "$BERTHCTL" bv1
        assert_eq 0 "$RC" "console: $ERR"
        assert_contains "$ERR" "Connected to machine 'bv1'"
        assert_contains "$ERR" "Detached from machine 'bv1'"
        assert_eq active "$(prop berth@bv1 ActiveState)"

        # copy-to and copy-from: a round trip of a file
        printf 'round trip %s\n' "$RANDOM" >"$T/rt"
        chmod 0640 "$T/rt"
        ctl copy-to bv1 "$T/rt" /root/rt
        assert_eq 0 "$RC" "copy-to: $ERR"
        ctl exec bv1 cat /root/rt
        assert_eq "$(<"$T/rt")" "$OUT"
        ctl copy-from bv1 /root/rt "$T/rt.back"
        assert_eq 0 "$RC" "copy-from: $ERR"
        cmp -s "$T/rt" "$T/rt.back" || fail "the round trip changed the file"
        assert_eq 640 "$(stat -c %a "$T/rt.back")"

        # bind --read-only --mkdir: visible inside, not writable, not on the host
        mkdir -p "$T/share"
        echo shared >"$T/share/file"
        ctl bind --read-only --mkdir bv1 "$T/share" /mnt/bv-share
        assert_eq 0 "$RC" "bind: $ERR"
        ctl exec bv1 cat /mnt/bv-share/file
        assert_eq shared "$OUT"
        ctl shell bv1 /bin/sh -c 'touch /mnt/bv-share/new'
        [ "$RC" != 0 ] || fail "touch in a read-only bind succeeded"
        assert_contains "$ERR" "Read-only file system"
        [ ! -e "$T/share/new" ] || fail "a read-only bind was writable"
        grep -q /mnt/bv-share <<<"$(findmnt -rn -o TARGET)" && fail "the bind mount appeared on the host"

        # reboot: berth ends with 133, the unit restarts (RestartForceExitStatus=133), the
        # machine comes back with a new leader
        leader=$(prop berth@bv1 MainPID)
        assert_eq 0 "$(prop berth@bv1 NRestarts)"
        ctl reboot bv1
        assert_eq 0 "$RC" "reboot: $ERR"
        wait_for restarted berth@bv1 || fail "berth@bv1 did not restart: $(systemctl status berth@bv1 --no-pager 2>&1)"
        assert_eq 1 "$(prop berth@bv1 NRestarts)"
        [ "$(prop berth@bv1 MainPID)" != "$leader" ] || fail "the same berth after reboot"
        assert_ok "$BERTHCTL" wait --until=ready bv1
        wait_for is_registered bv1 || fail "bv1 not registered again after reboot"
        ctl list --no-legend
        assert_match "$OUT" '^bv1 +container +berth '
        ctl shell bv1 /bin/sh -c 'exit 4'
        assert_eq 4 "$RC"
        # what was copied in is still there (the same tree)
        ctl exec bv1 cat /root/rt
        assert_eq "$(<"$T/rt")" "$OUT"

        assert_ok "$BERTHCTL" poweroff bv1
        wait_for unit_inactive berth@bv1 || fail "poweroff did not stop berth@bv1"
        assert_eq success "$(prop berth@bv1 Result)"
}

# ---- images in /var/lib/machines ----

# small_image DIR: a tree the image verbs can work on (they do not boot it)
small_image() {
        mkdir -p "$1/etc" "$1/usr/bin" "$1/var/data"
        printf 'NAME="bv image"\nPRETTY_NAME="bv image 1"\nID=bvimage\n' >"$1/etc/os-release"
        echo bvhost >"$1/etc/hostname"
        head -c 100000 /dev/urandom >"$1/var/data/blob"
        ln -s ../../etc/hostname "$1/var/data/link"
}

test_images_in_var_lib_machines() {
        install_unit
        machine_tree bv2
        small_image /var/lib/machines/bvi
        assert_ok "$BERTHCTL" start bv2

        ctl list-images
        assert_eq 0 "$RC" "list-images: $ERR"
        assert_match "$OUT" '^bvi +directory +no '
        assert_match "$OUT" '^bv2 +directory +no '
        ctl image-status bvi
        assert_eq 0 "$RC" "image-status: $ERR"
        assert_match "$OUT" '^ *Path: /var/lib/machines/bvi$'
        assert_match "$OUT" '^ *OS: bv image 1$'
        assert_match "$OUT" '^ *Hostname: bvhost$'
        ctl image-status bv2
        assert_eq 0 "$RC"
        assert_match "$OUT" 'Used by: bv2'

        # the running machine's image stays
        ctl remove bv2
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "Cannot remove image 'bv2': machine 'bv2' is running on it"
        [ -d /var/lib/machines/bv2/etc ] || fail "the running machine's image is gone"
        assert_eq active "$(prop berth@bv2 ActiveState)"

        # clone, rename and remove of stopped images; read-only
        ctl clone bvi bvi2
        assert_eq 0 "$RC" "clone: $ERR"
        cmp -s /var/lib/machines/bvi/var/data/blob /var/lib/machines/bvi2/var/data/blob || fail "clone differs"
        assert_eq ../../etc/hostname "$(readlink /var/lib/machines/bvi2/var/data/link)"
        ctl rename bvi2 bvi3
        assert_eq 0 "$RC" "rename: $ERR"
        [ ! -e /var/lib/machines/bvi2 ] || fail "bvi2 is still there after rename"
        [ -d /var/lib/machines/bvi3/etc ] || fail "no bvi3 after rename"
        ctl read-only bvi3
        assert_eq 0 "$RC" "read-only: $ERR"
        ctl show-image bvi3 -p ReadOnly
        assert_eq "ReadOnly=yes" "$OUT"
        ctl list-images --no-legend
        assert_match "$OUT" '^bvi3 +directory +yes '
        ctl remove bvi3
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "read-only"
        ctl read-only bvi3 no
        assert_eq 0 "$RC"
        ctl remove bvi3
        assert_eq 0 "$RC" "remove: $ERR"
        [ ! -e /var/lib/machines/bvi3 ] || fail "bvi3 not removed"
        ctl list-images --no-legend
        assert_not_contains "$OUT" "bvi3"
        assert_match "$OUT" '^bvi +directory'

        # stopped, the machine is gone from list and its image no longer in use
        assert_ok "$BERTHCTL" poweroff bv2
        wait_for unit_inactive berth@bv2 || fail "poweroff did not stop berth@bv2"
        wait_for not_registered bv2 || fail "bv2 still registered"
        ctl image-status bv2
        assert_not_contains "$OUT" "Used by"
        ctl remove bvi
        assert_eq 0 "$RC"
}

run_tests
