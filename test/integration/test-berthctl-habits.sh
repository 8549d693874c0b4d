#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck disable=SC2317 # helpers called through wait_for
# machinectl habits that berthctl keeps, without systemd: cat and edit of settings files, stop and
# restart as aliases of poweroff
# and reboot, wait --until=stopped, show --value and -P, -l, a reboot of a machine that
# 'berthctl start' started brings it back, 'berthctl start' gives a user namespace, remove takes the
# start log along, shell and login without a machine (the host, to machinectl) refused.
. "$(dirname "$0")/lib.sh"
require_root
require_berthctl
. "$(dirname "$0")/lib-machines.sh"
. "$(dirname "$0")/lib-ssh.sh"

mname() {
        echo "habit-${1}-$$-${RANDOM}"
}

monitor_of() {
        sed -n 's/^PID=//p' "/run/berth/machines/$1" 2>/dev/null
}

# running_with_new_monitor NAME OLDPID: the machine runs again, under another berth
running_with_new_monitor() {
        local pid
        pid=$(monitor_of "$1")
        [ -n "$pid" ] && [ "$pid" != "$2" ] &&
                grep -qx -e running -e ready <<<"$("$BERTHCTL" show -P State "$1" 2>/dev/null)"
}

test_stop_is_poweroff() {
        local n
        n=$(mname stop)
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" -b
        ctl stop "$n"
        assert_eq 0 "$RC"
        bg_exit
        assert_eq 0 "$BG_RC" "berth's exit status after stop"
}

test_restart_is_reboot() {
        local n
        n=$(mname restart)
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" -b
        ctl restart "$n"
        assert_eq 0 "$RC"
        bg_exit
        assert_eq 133 "$BG_RC" "berth's exit status after restart"
}

test_wait_until_stopped() {
        local n
        n=$(mname waitstop)
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" -b
        ctl poweroff "$n"
        assert_eq 0 "$RC"
        ctl wait --until=stopped --timeout=120s "$n"
        assert_eq 0 "$RC"
        is_gone "$n" || fail "wait --until=stopped returned while the record is still there"
        bg_exit
        # a machine that is not there is stopped already
        ctl wait --until=stopped "$n"
        assert_eq 0 "$RC"
        # one that does not stop: the timeout, in one line
        start_bg "$n" "$ROOT" /usr/bin/payload sleep 100
        ctl wait --until=stopped --timeout=1s "$n"
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "not stopped"
        ctl terminate "$n"
        bg_exit
        ctl wait --until=nonsense "$n"
        assert_eq 1 "$RC"
        assert_one_line_error
}

test_show_value() {
        local n
        n=$(mname value)
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" /usr/bin/payload sleep 100
        ctl show -P State "$n"
        assert_eq 0 "$RC"
        assert_match "$OUT" '^(running|ready)$'
        ctl show --property=Name --value "$n"
        assert_eq "$n" "$OUT"
        ctl show -p Name -p RootDirectory --value "$n"
        assert_eq "$n
$ROOT" "$OUT"
        ctl show -l -p Name "$n"
        assert_eq "Name=$n" "$OUT"
        ctl show -P "" "$n"
        assert_eq 1 "$RC"
        assert_one_line_error
        ctl terminate "$n"
        bg_exit
}

test_reboot_of_a_started_machine_comes_back() {
        local n old
        n=$(mname reboot)
        make_tiny_tree "$T/images/$n"
        BERTH_IMAGE_PATH="$T/images" ctl start "$n"
        assert_eq 0 "$RC"
        old=$(monitor_of "$n")
        [ -n "$old" ] || fail "no monitor PID in the record"
        ctl reboot "$n"
        assert_eq 0 "$RC"
        wait_for running_with_new_monitor "$n" "$old" ||
                fail "the machine did not come back after reboot"
        ctl poweroff "$n"
        assert_eq 0 "$RC"
        ctl wait --until=stopped --timeout=120s "$n"
        assert_eq 0 "$RC"
        # powered off for good: it stays off
        sleep 0.5
        is_gone "$n" || fail "the machine came back after poweroff"
        assert_contains "$(cat "/run/berth/logs/$n.log")" "asked for a reboot"
        rm -f "/run/berth/logs/$n.log"
}

# root_uid_of NAME: the host uid of the machine's root (its leader's uid_map), 0 without -U
root_uid_of() {
        local leader
        leader=$(sed -n 's/^LEADER=//p' "/run/berth/machines/$1" 2>/dev/null)
        [ -n "$leader" ] && awk 'NR == 1 { print $2 }' "/proc/$leader/uid_map"
}

# 'berthctl start' boots with -U, as berth@.service and systemd-nspawn@.service do; a trusted
# settings file's PrivateUsers=no still turns it off (--settings=override, as in the unit)
test_start_gives_a_user_namespace() {
        local n shift
        n=$(mname uns)
        make_tiny_tree "$T/images/$n"
        BERTH_IMAGE_PATH="$T/images" ctl start "$n"
        assert_eq 0 "$RC" "$ERR"
        shift=$(root_uid_of "$n")
        [ -n "$shift" ] && [ "$shift" != 0 ] || fail "no user namespace: the guest's root is host uid '$shift'"
        ctl poweroff "$n"
        assert_eq 0 "$RC"
        ctl wait --until=stopped --timeout=120s "$n"
        assert_eq 0 "$RC"
        mkdir -p "$T/trusted"
        printf '[Exec]\nPrivateUsers=no\n' >"$T/trusted/$n.nspawn"
        BERTH_SETTINGS_PATH=$T/trusted BERTH_IMAGE_PATH="$T/images" ctl start "$n"
        assert_eq 0 "$RC" "$ERR"
        assert_eq 0 "$(root_uid_of "$n")" "the guest's root with PrivateUsers=no in a trusted settings file"
        ctl poweroff "$n"
        assert_eq 0 "$RC"
        ctl wait --until=stopped --timeout=120s "$n"
        assert_eq 0 "$RC"
        rm -f "/run/berth/logs/$n.log"
}

test_remove_takes_the_start_log() {
        local n
        n=$(mname rmlog)
        make_tiny_tree "$T/images/$n"
        BERTH_IMAGE_PATH="$T/images" ctl start "$n"
        assert_eq 0 "$RC"
        [ -e "/run/berth/logs/$n.log" ] || fail "no start log"
        ctl poweroff "$n"
        ctl wait --until=stopped --timeout=120s "$n"
        assert_eq 0 "$RC"
        BERTH_IMAGE_PATH="$T/images" ctl remove "$n"
        assert_eq 0 "$RC"
        [ ! -e "$T/images/$n" ] || fail "the image is still there"
        [ ! -e "/run/berth/logs/$n.log" ] || fail "the start log is still there"
}

# an $EDITOR that replaces the file with $NEW_TEXT
make_editor() {
        cat >"$T/editor" <<'EOF2'
#!/bin/sh
printf '%s\n' "$NEW_TEXT" >"$1"
EOF2
        chmod +x "$T/editor"
}

test_cat_and_edit_settings() {
        local n
        n=$(mname cat)
        make_tiny_tree "$T/images/$n"
        make_editor
        export BERTH_IMAGE_PATH="$T/images" BERTH_SETTINGS_PATH="$T/etc"
        # none yet: the error names edit
        ctl cat "$n"
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "berthctl edit $n"
        # next to the image: shown, and said to be untrusted
        printf '[Exec]\nHostname=beside\n' >"$T/images/$n.nspawn"
        ctl cat "$n"
        assert_eq 0 "$RC"
        assert_eq "# $T/images/$n.nspawn (untrusted: privileged keys are ignored)
[Exec]
Hostname=beside" "$OUT"
        # edit makes a trusted copy, which berth then reads
        NEW_TEXT=$'[Exec]\nHostname=edited' EDITOR="$T/editor" ctl edit "$n"
        assert_eq 0 "$RC"
        assert_eq "[Exec]
Hostname=edited" "$(cat "$T/etc/$n.nspawn")"
        assert_eq "[Exec]
Hostname=beside" "$(cat "$T/images/$n.nspawn")" "the file next to the image is left alone"
        ctl cat "$n"
        assert_eq "# $T/etc/$n.nspawn
[Exec]
Hostname=edited" "$OUT"
        berth --console=pipe -q -D "$T/images/$n" -M "$n" /bin/hostname
        assert_eq edited "$OUT"
        # a broken edit changes nothing and is kept aside
        NEW_TEXT=$'[Exec]\nBoot=maybe' EDITOR="$T/editor" ctl edit "$n"
        assert_eq 1 "$RC"
        assert_contains "$ERR" "Invalid value for Boot="
        assert_contains "$ERR" "the edit is kept in"
        assert_contains "$(cat "$T/etc/$n.nspawn")" "Hostname=edited"
        ls "$T/etc/$n.nspawn.edit-"* >/dev/null || fail "the broken edit was not kept"
        # an editor that fails: nothing changes, nothing is left
        rm -f "$T/etc/$n.nspawn.edit-"*
        EDITOR=false ctl edit "$n"
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_eq "" "$(ls "$T/etc" | grep edit- || true)"
        ctl cat "nosuch-$n"
        assert_eq 1 "$RC"
        assert_one_line_error
}

# the set berthctl shows is the one the guest has, also where berth's own bounding set lacks some
# of the defaults (this VM drops CAP_SYS_RESOURCE); asking for one it lacks is a warning
test_show_capabilities_are_the_guests() {
        local n leader shown real
        n=$(mname caps)
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" /usr/bin/payload sleep 100
        leader=$(sed -n 's/^LEADER=//p' "/run/berth/machines/$n")
        real=$(sed -n 's/^CapBnd:\t*//p' "/proc/$leader/status")
        ctl show -P Capabilities "$n"
        shown=$OUT
        assert_eq "$((0x$real))" "$((0x$shown))" "Capabilities (shown $shown, the guest's CapBnd $real)"
        ctl terminate "$n"
        bg_exit
        # a capability our bounding set lacks, asked for: said so, and not recorded
        capsh --drop=cap_sys_time -- -c "exec $BERTH -D $ROOT -M $n --console=pipe --capability=CAP_SYS_TIME \
                /usr/bin/payload caps" >"$T/out" 2>"$T/err" </dev/null || fail "berth failed: $(cat "$T/err")"
        assert_contains "$(cat "$T/err")" "will not have them either: CAP_SYS_TIME."
}

test_enable_now_needs_systemd() {
        [ -d /run/systemd/system ] && skip "this host runs systemd"
        ctl enable --now foo
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "systemd"
}

# machinectl's shell/login without a machine (or ".host") mean the host: berthctl refuses in one
# line that names what does it, and starts nothing
test_shell_and_login_without_a_machine_are_refused() {
        local args
        for args in "shell" "shell .host" "shell root@.host" "shell @.host /bin/true" "login" "login .host"; do
                # shellcheck disable=SC2086 # the words are the arguments
                ctl $args
                assert_eq 1 "$RC" "berthctl $args"
                assert_one_line_error "berthctl $args"
                assert_contains "$ERR" "does not open sessions on the host ('.host'" "berthctl $args"
                assert_contains "$ERR" "machinectl ${args%% *}" "berthctl $args"
                assert_eq "" "$OUT" "berthctl $args"
        done
}

# run after every case (see lib.sh), also one that failed half-way
case_teardown() {
        stop_sshd
}

# -H runs berthctl on the other host over ssh, with the same verb, options and arguments (quoted
# as given), the exit status of a command coming back; -H itself is not passed on
test_host_over_ssh() {
        local n h
        n=$(mname ssh)
        start_sshd
        h="root@127.0.0.1:$SSH_PORT"
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" /usr/bin/payload sleep 300
        ctl -H "$h" list --no-legend
        assert_eq 0 "$RC" "list over ssh"
        assert_contains "$OUT" "$n"
        ctl --host="$h" show -P State "$n"
        assert_eq 0 "$RC"
        assert_eq running "$OUT"
        # arguments with spaces and quotes arrive as they were, a command's status comes back, stdin goes over
        ctl exec "$n" /bin/sh -c 'echo "[$1]"; exit 7' sh "a 'b' \"c\" \$d"
        assert_eq 7 "$RC" "locally"
        assert_eq "[a 'b' \"c\" \$d]" "$OUT"
        ctl -H "$h" exec "$n" /bin/sh -c 'echo "[$1]"; exit 7' sh "a 'b' \"c\" \$d"
        assert_eq 7 "$RC" "over ssh"
        assert_eq "[a 'b' \"c\" \$d]" "$OUT"
        assert_eq "from stdin" "$(echo "from stdin" | "$BERTHCTL" -H "$h" exec "$n" /bin/cat)"
        # -H after the verb, and the command's own -H left alone
        ctl exec -H "$h" "$n" /bin/sh -c 'echo "$@"' sh -H x
        assert_eq 0 "$RC"
        assert_eq "-H x" "$OUT"
        # a machine the far side does not have: its one-line error
        ctl -H "$h" show -P State "$(mname none)"
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "No machine"
        ctl -H "$h" terminate "$n"
        assert_eq 0 "$RC"
        bg_exit
}

# shell's status is its command's, 254 too: that is not taken for "no berthctl there" (which handed
# the shell over to machinectl -H after the command had run)
test_host_shell_status_254() {
        local n
        n=$(mname sshsh)
        start_sshd
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" -b
        ctl -H "root@127.0.0.1:$SSH_PORT" shell "$n" /bin/sh -c 'echo ran >>/ran; exit 254'
        assert_eq 254 "$RC" "shell over ssh: $ERR"
        ctl exec "$n" /bin/cat /ran
        assert_eq ran "$OUT" "the command ran once"
        ctl terminate "$n"
        assert_eq 0 "$RC"
        bg_exit
}

# Without berthctl there, machinectl's verbs go to machinectl -H (systemd-machined over ssh);
# berthctl-only ones say why not
test_host_without_berthctl() {
        start_sshd /usr/sbin:/usr/bin:/sbin:/bin
        ctl -H "root@127.0.0.1:$SSH_PORT" exec x /bin/true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "berthctl is not installed on 127.0.0.1, and machinectl -H cannot do 'exec' instead"
        # the verb, not the first argument, whatever options come before it
        ctl -H "root@127.0.0.1:$SSH_PORT" -q --timeout=1s wait x
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "machinectl -H cannot do 'wait'"
        ctl -H "root@127.0.0.1:$SSH_PORT" list
        if command -v machinectl >/dev/null; then
                # machinectl ran (its own words): it could not reach a machined there (no systemd here)
                assert_eq 1 "$RC"
                assert_contains "$ERR" "Could not get machines"
        else
                assert_eq 1 "$RC"
                assert_one_line_error
                assert_contains "$ERR" "machinectl"
        fi
}

test_bad_host() {
        local h
        for h in "" "-oProxyCommand=x" "user@" "@host" "host:0" "host:99999" "host:x" "a:b:c" "[::1" "host/machine" "ho st" "[]"; do
                ctl -H "$h" list
                assert_eq 1 "$RC" "-H '$h'"
                assert_one_line_error "-H '$h'"
                assert_contains "$ERR" "host" "-H '$h'"
        done
        ctl -qH localhost list
        assert_eq 1 "$RC"
        assert_contains "$ERR" "on its own"
}

run_tests
