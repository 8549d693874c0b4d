#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck disable=SC2016 # the single-quoted commands are run by the container's shell
# shellcheck disable=SC2317 # helpers called through wait_for
# berthctl's machine verbs on real machines, without systemd: list, status, show, poweroff,
# reboot, terminate, kill, wait, exec, shell, login, console, start, enable, copy-to,
# copy-from, bind. Machines run in the background with a passive console, as `berthctl start`
# starts them.
. "$(dirname "$0")/lib.sh"
require_root
require_berthctl
. "$(dirname "$0")/lib-machines.sh"

# ---- helpers ----

# A machine name of this case: other test runs on the host use other names.
mname() {
        echo "bctl-${1}-$$-${RANDOM}"
}

leader_of() {
        sed -n 's/^LEADER=//p' "/run/berth/machines/$1"
}

# ---- list ----

test_list_shows_running_machine() {
        local n
        n=$(mname list)
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" -b
        ctl list
        assert_eq 0 "$RC"
        assert_match "$OUT" "^MACHINE +CLASS +SERVICE +OS +VERSION +ADDRESSES +STATE"
        assert_match "$OUT" "^$n +container +berth +berthtest +1 +- +running$"
        assert_match "$OUT" "machines? listed"
        ctl list --no-legend
        assert_not_contains "$OUT" "MACHINE"
        assert_not_contains "$OUT" "listed"
        assert_match "$OUT" "^$n "
        # no verb at all is "list"
        run "$BERTHCTL" --no-legend
        assert_match "$OUT" "^$n "
        local mode
        for mode in short pretty; do
                ctl list --json="$mode"
                assert_eq 0 "$RC"
                printf '%s' "$OUT" | python3 -c '
import json, sys
l = json.load(sys.stdin)
m = [x for x in l if x["machine"] == sys.argv[1]]
assert len(m) == 1, l
assert m[0]["state"] == "running" and m[0]["os"] == "berthtest" and m[0]["version"] == "1", m
assert m[0]["class"] == "container" and m[0]["service"] == "berth", m
' "$n" || fail "list --json=$mode: bad JSON or values: $OUT"
        done
}

test_list_hides_killed_machine() {
        local n
        # the dead instance's record stays until a berth starts: in a run dir of the case's own,
        # no other run's berth cleans it meanwhile
        private_run_dir
        n=$(mname stale)
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" -b
        kill -9 "$BG_PID"
        wait "$BG_PID" || true
        [ -e "$RUN_DIR/machines/$n" ] || fail "the killed berth's record is gone (nothing stale to show)"
        ctl list --no-legend
        assert_eq 0 "$RC"
        assert_not_contains "$OUT" "$n"
        ctl list --json=short
        assert_not_contains "$OUT" "$n"
        # never acted on
        ctl status "$n"
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "$n"
        ctl poweroff "$n"
        assert_eq 1 "$RC"
        ctl kill "$n"
        assert_eq 1 "$RC"
        ctl exec "$n" /bin/true
        assert_eq 1 "$RC"
}

# ---- status, show ----

test_status_and_show() {
        local n leader
        n=$(mname status)
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" -b
        leader=$(leader_of "$n")
        ctl status "$n"
        assert_eq 0 "$RC"
        assert_match "$OUT" "^ *State: running$"
        assert_match "$OUT" "^ *Leader: $leader \(init"
        assert_match "$OUT" "^ *Root: $ROOT$"
        assert_match "$OUT" "^ *OS: berth test tree 1$"
        assert_match "$OUT" "^ *Since: "
        assert_match "$OUT" "^ *Network: host$"
        assert_match "$OUT" "^ *CGroup: .*berth-$n/policy/payload$"
        assert_match "$OUT" "─$leader init"
        ctl status --json=pretty "$n"
        printf '%s' "$OUT" | python3 -c 'import json,sys; d = json.load(sys.stdin); assert d["State"] == "running", d' ||
                fail "status --json: $OUT"

        ctl show "$n"
        assert_eq 0 "$RC"
        assert_match "$OUT" "^Name=$n$"
        assert_match "$OUT" "^Leader=$leader$"
        assert_match "$OUT" "^State=running$"
        assert_match "$OUT" "^RootDirectory=$ROOT$"
        assert_match "$OUT" "^PoweroffSignal=SIGUSR2$"
        assert_match "$OUT" "^RebootSignal=SIGTERM$"
        ctl show -p State -p Leader "$n"
        assert_eq "Leader=$leader
State=running" "$OUT"
        ctl show "$n" --property=OS
        assert_eq "OS=berthtest" "$OUT"
        ctl show --json=short "$n"
        printf '%s' "$OUT" | python3 -c 'import json,sys; d = json.load(sys.stdin); assert d["Leader"] == int(sys.argv[1]), d' "$leader" ||
                fail "show --json: $OUT"
        # all machines: a JSON array
        ctl show --json=short
        printf '%s' "$OUT" | python3 -c 'import json,sys; l = json.load(sys.stdin); assert any(d["Name"] == sys.argv[1] for d in l)' "$n" ||
                fail "show --json (all): $OUT"

        ctl status --json=short "no-such-machine-$$" "$n"
        assert_eq 1 "$RC"
        printf '%s' "$OUT" | python3 -c 'import json,sys; assert len(json.load(sys.stdin)) == 1' ||
                fail "status --json with a missing machine: $OUT"
        ctl status "$n" "no-such-machine-$$"
        assert_eq 1 "$RC"
        assert_contains "$OUT" "State: running"
        assert_contains "$ERR" "no-such-machine-$$"

        # the tiny tree keeps no journal: one line says so (or that the host's has nothing of it)
        ctl status "$n"
        if [ -d /var/log/journal ] || [ -d /run/log/journal ]; then
                assert_eq "-- No entries --" "$(journal_part "$OUT")"
        else
                assert_eq "No journal of machine '$n' to show: the host keeps none, and its tree has no persistent one (see berth's --link-journal=)." \
                        "$(journal_part "$OUT")"
        fi
        ctl status -n 0 "$n"
        assert_not_contains "$OUT" "No journal"
        assert_not_contains "$OUT" "No entries"
        # machinectl's options that change nothing here
        ctl --no-pager --no-ask-password status "$n" --lines=0 -l
        assert_eq 0 "$RC"
        assert_contains "$OUT" "State: running"
}

# journal_part TEXT: status's last paragraph, the journal lines
journal_part() {
        printf '%s\n' "$1" | awk 'BEGIN { RS = "" } { p = $0 } END { print p }'
}

test_missing_machine_is_a_one_line_error() {
        local v m="no-such-machine-$$"
        for v in status show poweroff reboot terminate kill wait console login; do
                if [ "$v" = wait ]; then
                        ctl wait "$m" --timeout=0.2s
                else
                        ctl "$v" "$m"
                fi
                assert_eq 1 "$RC" "berthctl $v"
                assert_one_line_error "berthctl $v"
                assert_contains "$ERR" "$m" "berthctl $v"
        done
        for v in exec shell copy-from bind; do
                ctl "$v" "$m" /bin/true
                assert_eq 1 "$RC" "berthctl $v"
                assert_one_line_error "berthctl $v"
                assert_contains "$ERR" "$m" "berthctl $v"
        done
}

# ---- poweroff, reboot, terminate, kill ----

test_poweroff_busybox_guest() {
        local n
        n=$(mname poff)
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" -b
        ctl poweroff "$n"
        assert_eq 0 "$RC"
        # machinectl's SIGRTMIN+4 would be ignored by busybox init; its own signal is not
        bg_exit
        assert_eq 0 "$BG_RC" "berth's exit status after poweroff"
        is_gone "$n" || fail "the record is still there"
}

test_reboot_busybox_guest() {
        local n
        n=$(mname reboot)
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" -b
        ctl reboot "$n"
        assert_eq 0 "$RC"
        bg_exit
        assert_eq 133 "$BG_RC" "berth's exit status after reboot"
}

test_reboot_refused_for_a_command() {
        local n
        n=$(mname noreboot)
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" /usr/bin/payload sleep 100
        ctl reboot "$n"
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "reboot"
        ctl list --no-legend
        assert_match "$OUT" "^$n .* running$"
}

test_terminate() {
        local n
        n=$(mname term)
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" -b
        ctl terminate "$n"
        assert_eq 0 "$RC"
        is_gone "$n" || fail "terminate returned before the record was gone"
        bg_exit
        [ "$BG_RC" != 0 ] || fail "berth exited 0 after SIGKILL of its container"
        ctl list --no-legend
        assert_not_contains "$OUT" "$n"
}

test_kill_reaches_the_payload() {
        local n
        n=$(mname kill)
        make_tiny_tree "$ROOT"
        # the leader only: payload signals reports what it got
        start_bg "$n" "$ROOT" --console=pipe /usr/bin/payload signals 30
        wait_for grep -q ready "$T/$n.log" || fail "payload signals did not start"
        ctl kill --kill-whom=leader --signal=SIGHUP "$n"
        assert_eq 0 "$RC"
        bg_exit
        assert_eq 0 "$BG_RC" "payload exit status"
        assert_contains "$(<"$T/$n.log")" "SIGHUP"

        # all processes (the default), options after the machine name
        n=$(mname killall)
        start_bg "$n" "$ROOT" --console=pipe /bin/sh -c 'trap "echo got-USR1; exit 0" USR1; echo ready; while :; do sleep 0.1; done'
        wait_for grep -q ready "$T/$n.log" || fail "the shell did not start"
        ctl kill "$n" --signal=SIGUSR1
        assert_eq 0 "$RC"
        bg_exit
        assert_eq 0 "$BG_RC"
        assert_contains "$(<"$T/$n.log")" "got-USR1"

        ctl kill "$n" --kill-whom=nobody
        assert_eq 1 "$RC"
}

# ---- wait ----

test_wait_until_ready() {
        local n
        n=$(mname ready)
        make_tiny_tree "$ROOT"
        "$BERTH" -D "$ROOT" -M "$n" --console=pipe -q --notify-ready=yes \
                /bin/sh -c 'sleep 1; payload notify READY=1; exec payload sleep 100' </dev/null >"$T/log" 2>&1 &
        ctl wait "$n" --until=ready --timeout=120s
        assert_eq 0 "$RC"
        ctl show -p State "$n"
        assert_eq "State=ready" "$OUT"
        # already there: at once
        ctl wait "$n" --until=running
        assert_eq 0 "$RC"
}

test_wait_fails_when_machine_dies_or_times_out() {
        local n
        n=$(mname waitdie)
        make_tiny_tree "$ROOT"
        "$BERTH" -D "$ROOT" -M "$n" --console=pipe -q /bin/sh -c 'sleep 1' </dev/null >"$T/log" 2>&1 &
        ctl wait "$n" --until=ready --timeout=120s
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "stopped"

        n=$(mname waitto)
        start_bg "$n" "$ROOT" -b
        ctl wait "$n" --until=ready --timeout=1s
        assert_eq 1 "$RC"
        assert_contains "$ERR" "not ready"
        ctl wait "$n" --until=bogus
        assert_eq 1 "$RC"
}

# ---- exec, shell, login ----

test_exec_exit_status_and_separate_streams() {
        local n
        n=$(mname exec)
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" -b
        ctl exec "$n" /bin/sh -c 'echo out; echo err >&2; exit 7'
        assert_eq 7 "$RC"
        assert_eq out "$OUT"
        assert_eq err "$ERR"
        ctl exec "$n" payload hostname
        assert_eq 0 "$RC"
        assert_eq "$n" "$OUT"
        # stdin passes through
        RC=0
        OUT=$(echo piped | "$BERTHCTL" exec "$n" cat) || RC=$?
        assert_eq 0 "$RC"
        assert_eq piped "$OUT"
        # the environment is clean: PATH, container=, -E
        ctl exec -E FOO=bar "$n" payload env
        assert_contains "$OUT" "container=berth"
        assert_contains "$OUT" "FOO=bar"
        assert_not_contains "$OUT" "BERTH_TEST_RUN"
        # options after the machine name belong to the command
        ctl exec "$n" /bin/sh -c 'echo "$0 $1"' --json=short x
        assert_eq "--json=short x" "$OUT"
        ctl exec "$n" /no/such/command
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "/no/such/command"
        # killed by a signal: 128+N, as a shell says
        ctl exec "$n" /bin/sh -c 'kill -9 $$'
        assert_eq 137 "$RC"
        # signals to berthctl go to the command
        "$BERTHCTL" exec "$n" payload signals 20 >"$T/sig.out" 2>"$T/sig.err" &
        local pid=$!
        wait_for grep -q ready "$T/sig.err" || fail "payload signals did not start"
        kill -TERM "$pid"
        RC=0
        wait "$pid" || RC=$?
        assert_eq 0 "$RC" "exit status of the signalled command"
        assert_eq SIGTERM "$(<"$T/sig.out")"
        # fds berthctl was given stay on the host
        ctl exec "$n" payload fds 3<"$T"
        assert_eq 0 "$RC"
        if grep -q '^3 ' <<<"$OUT"; then
                fail "fd 3 of berthctl reached the command: $OUT"
        fi
        # no pty unless asked
        ctl exec "$n" payload tty
        assert_not_contains "$OUT" "/dev/pts"
        ctl exec -t "$n" payload tty
        assert_eq 0 "$RC"
        assert_contains "$OUT" "stdout=/dev/pts/"
}

test_exec_is_confined_like_the_container() {
        local n leader bnd
        n=$(mname conf)
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" -b --drop-capability=CAP_NET_RAW --no-new-privileges=yes
        leader=$(leader_of "$n")
        bnd=$(sed -n 's/^CapBnd:\t*//p' "/proc/$leader/status")
        ctl exec "$n" cat /proc/self/status
        assert_eq 0 "$RC"
        assert_match "$OUT" "^CapBnd:[[:space:]]+$bnd$"
        assert_match "$OUT" "^Seccomp:[[:space:]]+2$"
        assert_match "$OUT" "^NoNewPrivs:[[:space:]]+1$"
        ctl exec "$n" payload hascap CAP_NET_RAW
        assert_eq 1 "$RC"
        # in the container's PID namespace and cgroup
        ctl exec "$n" /bin/sh -c 'echo $$'
        [ "$OUT" -lt 1000 ] || fail "not in the container's PID namespace: PID $OUT"
        ctl exec "$n" cat /proc/self/cgroup
        assert_contains "$OUT" "0::/"
        grep -q "^0::.*berth-$n/payload" "/proc/$leader/cgroup" || true
}

test_shell() {
        local n
        n=$(mname shell)
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" -b
        # a command: its exit status, its streams apart
        ctl shell "$n" /bin/sh -c 'echo out; echo err >&2; exit 5'
        assert_eq 5 "$RC"
        assert_eq out "$OUT"
        assert_eq err "$ERR"
        # a user of the guest: HOME, USER, SHELL, the working directory
        ctl shell "tester@$n" /bin/sh -c 'id -u; echo $HOME $USER $SHELL; pwd'
        assert_eq 0 "$RC"
        assert_eq "1000
/home/tester tester /bin/sh
/home/tester" "$OUT"
        ctl shell --uid=tester "$n" id -u
        assert_eq 1000 "$OUT"
        # on a pty, the user's own, as login leaves it (it stayed root's, and whatever reopens
        # ttyname() as the user failed)
        ctl shell -t "tester@$n" /bin/stat -L -c '%U:%G %a' /proc/self/fd/0
        assert_eq 0 "$RC" "shell -t: $ERR"
        assert_eq "tester:tty 620" "$(tr -d '\r' <<<"$OUT")" "the owner of the user's pty"
        ctl shell "nosuchuser@$n" id
        assert_eq 1 "$RC"
        assert_one_line_error
        # no command: a login shell reading stdin
        RC=0
        OUT=$(printf 'echo $HOME; exit 3\n' | "$BERTHCTL" shell "$n") || RC=$?
        assert_eq 3 "$RC"
        assert_eq /root "$OUT"
}

test_login_needs_a_terminal() {
        local n
        n=$(mname login)
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" -b
        ctl login "$n"
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "terminal"
}

# ---- a terminal for the interactive verbs ----

tm() {
        TERM=xterm tmux -S "$T/.tmux" "$@"
}

pane() {
        tm capture-pane -p -J -t t -S -500
}

pane_has() {
        grep -qF -- "$1" <<<"$(pane)"
}

pane_has_twice() {
        [ "$(pane | grep -cF -- "$1")" -ge 2 ]
}

type_line() {
        tm send-keys -t t -l -- "$1"
        tm send-keys -t t Enter
}

tmux_start() {
        command -v tmux >/dev/null 2>&1 || skip "tmux is not installed (apt-get install tmux)"
        tm -f /dev/null new-session -d -s t -x 100 -y 30 \
                "env PS1='PROMPT> ' HISTFILE=/dev/null bash --norc --noprofile -i"
        trap 'tm kill-server >/dev/null 2>&1 || true' EXIT
        wait_for pane_has 'PROMPT>' || fail "the tmux pane did not start"
}

show_pane() {
        echo "# pane:"
        pane | sed 's/^/#   /'
}

# opens FILE CMD...: runs CMD, prints how often FILE was opened meanwhile (inotify IN_OPEN: every
# open but O_PATH's), then CMD's exit status
opens() {
        python3 - "$@" <<-'EOF'
		import ctypes, os, subprocess, sys
		libc = ctypes.CDLL(None, use_errno=True)
		fd = libc.inotify_init1(os.O_NONBLOCK)
		if fd < 0 or libc.inotify_add_watch(fd, sys.argv[1].encode(), 0x20) < 0:  # IN_OPEN
		    sys.exit("inotify: " + os.strerror(ctypes.get_errno()))
		rc = subprocess.run(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL).returncode
		try:
		    n = len(os.read(fd, 65536)) // 16
		except BlockingIOError:
		    n = 0
		print(n, rc)
		EOF
}

# The guest's root puts a device node (one its policy allows it) where its /etc/group and
# os-release were: berthctl, host root outside that policy, reads those files for a user's
# groups, the pty's tty group and the machine's status, and must open no device there (a
# watchdog's open starts it, a tape's rewinds it), nor wait on a FIFO.
test_shell_opens_no_device_of_the_guest() {
        local n
        n=$(mname nodev)
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT"
        ctl shell "$n" /bin/sh -c 'mv /etc/group /etc/group.orig && mknod /etc/group c 1 3 &&
                mv /etc/os-release /etc/os-release.orig && mkfifo /etc/os-release'
        assert_eq 0 "$RC" "planting the nodes: $ERR"
        [ -c "$ROOT/etc/group" ] && [ -p "$ROOT/etc/os-release" ] || fail "no nodes in the tree"
        run opens "$ROOT/etc/group" "$BERTHCTL" shell -t "tester@$n" /bin/true
        assert_eq "0 0" "$OUT" "opens of the guest's device node by berthctl shell, and its exit status"
        run opens "$ROOT/etc/os-release" "$BERTHCTL" status "$n"
        assert_eq "0 0" "$OUT" "opens of the guest's FIFO by berthctl status, and its exit status"
}

test_shell_on_a_terminal() {
        local n
        n=$(mname tshell)
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" -b
        tmux_start
        type_line "$BERTHCTL shell $n; echo RC=\$?"
        type_line 'payload tty; echo $((6*7)); exit 4'
        wait_for pane_has "RC=4" || {
                show_pane
                fail "the shell did not end with 4"
        }
        pane_has 42 || fail "no output of the shell"
        pane_has "stdin=/dev/pts/" || fail "the shell is not on a pty of the container"
}

test_login_on_a_terminal() {
        local n
        n=$(mname tlogin)
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" -b
        tmux_start
        type_line "$BERTHCTL login $n; echo RC=\$?"
        wait_for pane_has "$n login:" || {
                show_pane
                fail "no login prompt of the guest"
        }
        tm send-keys -t t C-c
        wait_for pane_has "RC=" || {
                show_pane
                fail "login did not end on Ctrl-C"
        }
}

test_console_attach_and_detach() {
        local n
        n=$(mname console)
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" /bin/sh
        ctl show -p Console "$n"
        assert_match "$OUT" "^Console=/.+"
        tmux_start
        type_line "$BERTHCTL console $n; echo RC=\$?"
        wait_for pane_has "Connected to machine" || {
                show_pane
                fail "console did not connect"
        }
        type_line 'echo $((7*6))'
        wait_for pane_has 42 || {
                show_pane
                fail "the console's shell did not answer"
        }
        # one client at a time
        ctl console "$n"
        assert_eq 1 "$RC"
        assert_contains "$ERR" "in use"
        tm send-keys -t t C-] C-] C-]
        wait_for pane_has "RC=0" || {
                show_pane
                fail "Ctrl-] three times did not detach"
        }
        pane_has "Detached" || fail "no word about the detach"
        # the machine keeps running, and the console can be had again
        ctl list --no-legend
        assert_match "$OUT" "^$n .* running$"
        type_line "$BERTHCTL console $n; echo RC2=\$?"
        # typed before berthctl has the terminal, it could be lost when berthctl makes it raw
        wait_for pane_has_twice "Connected to machine" || {
                show_pane
                fail "the console did not connect again"
        }
        type_line 'exit 0'
        wait_for pane_has "RC2=0" || {
                show_pane
                fail "the console did not end when the machine stopped"
        }
        bg_exit
        assert_eq 0 "$BG_RC"
}

test_console_refused_without_socket() {
        local n
        n=$(mname noconsole)
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" --console=pipe /usr/bin/payload sleep 100
        ctl console "$n"
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "console"
}

# ---- start, enable ----

test_start_in_the_background() {
        local n pid
        n=$(mname start)
        make_tiny_tree "$T/images/$n"
        BERTH_IMAGE_PATH="$T/nothing:$T/images" ctl start "$n"
        assert_eq 0 "$RC"
        ctl show -p State -p RootDirectory "$n"
        assert_eq "RootDirectory=$T/images/$n
State=running" "$OUT"
        # a veth of its own, as berth@.service and systemd-nspawn@.service give it
        grep -q '^INTERFACE=ve-' "/run/berth/machines/$n" || fail "berthctl start gave no veth: $(cat "/run/berth/machines/$n")"
        # already running
        BERTH_IMAGE_PATH="$T/images" ctl start "$n"
        assert_eq 1 "$RC"
        assert_contains "$ERR" "already running"
        pid=$(sed -n 's/^PID=//p' "/run/berth/machines/$n")
        ctl poweroff "$n"
        assert_eq 0 "$RC"
        wait_for is_gone "$n" || fail "the machine did not stop"
        rm -f "/run/berth/logs/$n.log"
        # not there, or raw
        BERTH_IMAGE_PATH="$T/images" ctl start "nosuch-$n"
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "No image"
        # a raw image is started with -i: an empty one fails in berth's words
        : >"$T/images/raw-$n.raw"
        BERTH_IMAGE_PATH="$T/images" ctl start "raw-$n"
        assert_eq 1 "$RC"
        assert_contains "$ERR" "it is empty"
        rm -f "/run/berth/logs/raw-$n.log"
        # a tree that cannot boot: berth's own words
        mkdir -p "$T/images/bad-$n"
        BERTH_IMAGE_PATH="$T/images" ctl start "bad-$n"
        assert_eq 1 "$RC"
        assert_contains "$ERR" "os-release"
        rm -f "/run/berth/logs/bad-$n.log"
        : "$pid"
}

lock_is_held() {
        ! flock -n -x "$1" true
}

# Another start's stale cleanup holds the lock of a dead instance's name for a moment (exclusive,
# and not by the PID that a record names): berthctl start of that name is not "already running"
# then, as the berth it starts waits for the cleaner. It used to ask only whether the lock was held.
test_start_while_a_cleaner_holds_the_lock() {
        local n holder lock
        n=$(mname startcl)
        make_tiny_tree "$T/images/$n"
        lock=/run/berth/locks/$n.lock
        mkdir -p /run/berth/locks
        flock --exclusive "$lock" sleep 3 &
        holder=$!
        wait_for lock_is_held "$lock" || fail "flock did not take the lock"
        BERTH_IMAGE_PATH="$T/images" ctl start "$n"
        assert_eq 0 "$RC" "berthctl start while a cleaner held the lock: $ERR"
        wait "$holder"
        ctl poweroff "$n"
        assert_eq 0 "$RC"
        wait_for is_gone "$n" || fail "the machine did not stop"
        rm -f "/run/berth/logs/$n.log"
}

# A trusted settings file's [Network] replaces the veth that berthctl start gives by default.
test_start_settings_file_network_wins() {
        local n
        n=$(mname startnet)
        make_tiny_tree "$T/images/$n"
        mkdir -p "$T/etc"
        printf '[Network]\nVirtualEthernet=no\n' >"$T/etc/$n.nspawn"
        BERTH_SETTINGS_PATH="$T/etc" BERTH_IMAGE_PATH="$T/images" ctl start "$n"
        assert_eq 0 "$RC" "$ERR"
        grep -q '^INTERFACE=' "/run/berth/machines/$n" && fail "VirtualEthernet=no still gave a veth"
        # the host's network: the guest sees the host's own links
        assert_eq "$(readlink /proc/self/ns/net)" "$(readlink "/proc/$(sed -n 's/^LEADER=//p' "/run/berth/machines/$n")/ns/net")"
        ctl poweroff "$n"
        assert_eq 0 "$RC"
        wait_for is_gone "$n" || fail "the machine did not stop"
        rm -f "/run/berth/logs/$n.log"
}

test_enable_needs_systemd() {
        [ -d /run/systemd/system ] && skip "this host runs systemd"
        ctl enable foo
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "systemd"
        ctl disable foo
        assert_eq 1 "$RC"
        assert_one_line_error
}

# ---- copy-to, copy-from ----

test_copy_to_and_from() {
        local n
        n=$(mname copy)
        make_tiny_tree "$ROOT"
        mkdir -p "$ROOT/data/sub"
        echo guest-file >"$ROOT/data/sub/f"
        cp "$ROOT/bin/busybox" "$ROOT/data/suid"
        chmod 4755 "$ROOT/data/suid"
        ln -s /etc "$ROOT/data/link"
        start_bg "$n" "$ROOT" -b

        # host -> guest, recursive, modes kept
        mkdir -p "$T/src/dir"
        echo hello >"$T/src/dir/a"
        chmod 0751 "$T/src/dir/a"
        chmod 0710 "$T/src/dir"
        ln -s a "$T/src/dir/lnk"
        ctl copy-to "$n" "$T/src/dir" /srv-copy
        assert_eq 0 "$RC"
        ctl exec "$n" /bin/sh -c 'cat /srv-copy/a; stat -c %a /srv-copy/a /srv-copy; readlink /srv-copy/lnk'
        assert_eq "hello
751
710
a" "$OUT"
        # into an existing directory: below it
        ctl copy-to "$n" "$T/src/dir/a" /tmp
        assert_eq 0 "$RC"
        ctl exec "$n" cat /tmp/a
        assert_eq hello "$OUT"
        # exists: refused, unless --force
        ctl copy-to "$n" "$T/src/dir/a" /tmp/a
        assert_eq 1 "$RC"
        assert_contains "$ERR" "force"
        echo changed >"$T/src/dir/a"
        ctl copy-to --force "$n" "$T/src/dir/a" /tmp/a
        assert_eq 0 "$RC"
        ctl exec "$n" cat /tmp/a
        assert_eq changed "$OUT"

        # through the guest's symlink to /etc: the guest's /etc, never the host's
        local marker="berthctl-test-$$-$RANDOM"
        echo "$marker" >"$T/marker"
        ctl copy-to "$n" "$T/marker" "/data/link/$marker"
        assert_eq 0 "$RC"
        [ ! -e "/etc/$marker" ] || {
                rm -f "/etc/$marker"
                fail "copy-to followed the guest's symlink out of the container"
        }
        [ -e "$ROOT/etc/$marker" ] || fail "the file is not in the guest's /etc"

        # guest -> host: the symlink comes as a symlink, not as the host's /etc
        ctl copy-from "$n" /data "$T/out"
        assert_eq 0 "$RC"
        [ -L "$T/out/link" ] || fail "copy-from followed the guest's symlink"
        assert_eq /etc "$(readlink "$T/out/link")"
        assert_eq guest-file "$(<"$T/out/sub/f")"
        # a setuid file of the guest does not become one on the host
        assert_eq 755 "$(stat -c %a "$T/out/suid")"
        # a path through the symlink resolves in the guest
        ctl copy-from "$n" /data/link/os-release "$T/osr"
        assert_eq 0 "$RC"
        assert_contains "$(<"$T/osr")" "ID=berthtest"
        # a path outside the container
        ctl copy-from "$n" /data/link/../../../../etc/hostname "$T/hn"
        [ "$RC" != 0 ] || assert_eq "$(cat "$ROOT/etc/hostname" 2>/dev/null)" "$(<"$T/hn")"
        ctl copy-from "$n" /nonexistent "$T/x"
        assert_eq 1 "$RC"
        assert_one_line_error
        ctl copy-to "$n" "$T/src/dir/a" relative/path
        assert_eq 1 "$RC"
}

# A copy never merges into an existing directory unless asked (--force replaces it whole), and a
# device node or socket is an error that names the type; nothing is left half-copied.
# On a -U machine, as with machinectl, what is copied belongs to the receiving side's root: host
# files of any owner become the guest root's (readable by it with mode 0600), the guest's come out
# as host root's (a guest never chooses which host user owns what it hands out). In map mode (the
# tree mounted idmapped: the host's root has no id there) and in chown mode (the tree shifted).
test_copy_on_a_userns_machine_gives_it_to_the_receiving_root() {
        local n mode
        for mode in map chown; do
                n=$(mname "ucopy-$mode")
                rm -rf "$ROOT"
                make_tiny_tree "$ROOT"
                echo "guest $mode" >"$ROOT/root/g"
                start_bg "$n" "$ROOT" -b -U --private-users-ownership="$mode"
                echo "host $mode" >"$T/h"
                chmod 0600 "$T/h"
                chown 1000:1000 "$T/h"
                mkdir -p "$T/hd"
                echo in-dir >"$T/hd/f"
                ctl copy-to "$n" "$T/h" /root/h
                assert_eq 0 "$RC" "copy-to ($mode): $ERR"
                ctl copy-to "$n" "$T/hd" /root/hd
                assert_eq 0 "$RC" "copy-to a directory ($mode): $ERR"
                ctl exec "$n" /bin/sh -c 'stat -c "%n %u:%g %a" /root/h /root/hd /root/hd/f; cat /root/hd/f'
                assert_eq 0 "$RC" "$ERR"
                assert_contains "$OUT" "/root/h 0:0 600"
                assert_contains "$OUT" "/root/hd 0:0"
                assert_contains "$OUT" "/root/hd/f 0:0"
                assert_contains "$OUT" "in-dir"
                ctl exec "$n" /bin/cat /root/h
                assert_eq "host $mode" "$OUT" "the guest's root reads what was copied in"
                ctl exec "$n" /bin/chown 1000:1000 /root/g
                ctl copy-from "$n" /root/g "$T/g-$mode"
                assert_eq 0 "$RC" "copy-from ($mode): $ERR"
                assert_eq "0:0" "$(stat -c %u:%g "$T/g-$mode")" "copy-from gives the host's ids"
                assert_eq "guest $mode" "$(cat "$T/g-$mode")"
                ctl poweroff "$n"
                bg_exit
                assert_eq 0 "$BG_RC"
        done
}

# Hostile: a -U guest cannot delete files of a host directory bound into it (their owner has no id
# in its range). It mounts that directory below a path the user then replaces with copy-to --force:
# the removal of the old copy must not go through the guest's mount.
test_copy_force_never_deletes_through_a_planted_mount() {
        local n
        n=$(mname plant)
        make_tiny_tree "$ROOT"
        mkdir -p "$T/victim" "$T/src"
        echo precious >"$T/victim/keep"
        echo new >"$T/src/f"
        start_bg "$n" "$ROOT" -b -U --bind="$T/victim:/victim:noidmap"
        # (copy-to of src into the directory /dest replaces /dest/src)
        ctl exec "$n" /bin/sh -c 'rm -f /victim/keep 2>/dev/null; mkdir -p /dest/src/sub && mount --bind /victim /dest/src/sub && cat /dest/src/sub/keep'
        assert_eq 0 "$RC" "$ERR"
        assert_eq precious "$OUT"
        [ -e "$T/victim/keep" ] || fail "the guest deleted the host's file itself: the case shows nothing"
        ctl copy-to --force "$n" "$T/src" /dest
        assert_eq "precious" "$(cat "$T/victim/keep" 2>&1)" "the host's file behind the guest's mount"
        ctl poweroff "$n"
        bg_exit
}

test_copy_never_merges_and_refuses_special_files() {
        local n same="$T/same"
        n=$(mname copyx)
        make_tiny_tree "$ROOT"
        # the same absolute path on both sides, as "copy-from MACHINE /etc" has
        mkdir -p "$ROOT$same/gsub" "$same"
        echo guest >"$ROOT$same/gsub/g"
        echo host >"$same/canary"
        start_bg "$n" "$ROOT" -b

        # the host path left out: the same path, never the guest's copy inside the host's
        ctl copy-from "$n" "$same"
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "--force"
        assert_eq "canary" "$(ls -A "$same")" "the host's directory is untouched"
        ctl copy-to "$n" "$same"
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_eq "gsub" "$(ls -A "$ROOT$same")" "the guest's directory is untouched"
        # given and an existing directory: into it, once; the second time it exists
        mkdir "$T/out"
        ctl copy-from "$n" "$same" "$T/out"
        assert_eq 0 "$RC"
        assert_eq guest "$(cat "$T/out/same/gsub/g")"
        echo host >"$T/out/same/extra"
        ctl copy-from "$n" "$same" "$T/out"
        assert_eq 1 "$RC"
        assert_contains "$ERR" "exists"
        # --force: replaced, not merged
        ctl copy-from --force "$n" "$same"
        assert_eq 0 "$RC"
        assert_eq "gsub" "$(ls -A "$same")" "replaced by the guest's directory"
        assert_eq guest "$(cat "$same/gsub/g")"
        ctl copy-from --force "$n" "$same" "$T/out"
        assert_eq 0 "$RC"
        assert_eq "gsub" "$(ls -A "$T/out/same")" "replaced, the host's extra file gone"

        # special files: an error that names the type, nothing created
        ctl copy-from "$n" /dev/null "$T/null"
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "character device"
        [ ! -e "$T/null" ] || fail "something was created for /dev/null"
        ctl copy-to "$n" /dev/null /tmp/null
        assert_eq 1 "$RC"
        assert_contains "$ERR" "character device"
        ctl exec "$n" /bin/sh -c 'ls -A /tmp'
        assert_eq "" "$OUT" "nothing created in the guest's /tmp"
        ctl copy-from "$n" /dev "$T/dev"
        assert_eq 1 "$RC"
        assert_contains "$ERR" "character device"
        [ ! -e "$T/dev" ] || fail "a half copy of /dev was left"
        assert_eq "" "$(find "$T" -maxdepth 1 -name '.#*')" "no temporary copy left"
}

# ---- bind ----

test_bind() {
        local n
        n=$(mname bind)
        make_tiny_tree "$ROOT"
        start_bg "$n" "$ROOT" -b
        mkdir -p "$T/share"
        echo shared >"$T/share/file"

        # a missing destination without --mkdir
        ctl bind "$n" "$T/share" /mnt/share
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "--mkdir"

        ctl bind --read-only --mkdir "$n" "$T/share" /mnt/share
        assert_eq 0 "$RC"
        ctl exec "$n" cat /mnt/share/file
        assert_eq shared "$OUT"
        ctl exec "$n" payload touch /mnt/share/new
        assert_eq 1 "$RC"
        assert_contains "$OUT" "EROFS"
        [ ! -e "$T/share/new" ] || fail "a read-only bind was writable"
        # not on the host
        grep -q "/mnt/share" <<<"$(findmnt -rn -o TARGET)" && fail "the bind mount appeared on the host"

        # writable, a file, into an existing directory
        ctl bind "$n" "$T/share" /tmp
        assert_eq 0 "$RC"
        ctl exec "$n" /bin/sh -c 'echo hi >/tmp/from-guest'
        assert_eq 0 "$RC"
        assert_eq hi "$(<"$T/share/from-guest")"
        ctl bind --mkdir "$n" "$T/share/file" /etc/deep/file
        assert_eq 0 "$RC"
        ctl exec "$n" cat /etc/deep/file
        assert_eq shared "$OUT"
}

# ---- a systemd guest ----

test_debian_guest() {
        local n tree
        n=$(mname debian)
        tree=$(debian_tree)
        mkdir -p "$ROOT"
        cp -a --reflink=auto "$tree/." "$ROOT/"
        rm -f "$ROOT/.complete"
        # a persistent journal, so that status shows its last lines
        mkdir -p "$ROOT/var/log/journal"
        "$BERTH" -D "$ROOT" -M "$n" -b --console=passive -q --private-network </dev/null >"$T/log" 2>&1 &
        BG_PID=$!
        ctl wait "$n" --until=ready --timeout=240s
        assert_eq 0 "$RC"
        ctl list --no-legend
        assert_match "$OUT" "^$n +container +berth +debian +12 +- +ready$"
        ctl status "$n"
        assert_match "$OUT" "^ *OS: Debian GNU/Linux 12"
        assert_match "$OUT" "^ *Network: private$"
        assert_match "$OUT" "^ *Addresses: -$"
        assert_match "$OUT" "init.scope"
        assert_match "$OUT" "systemd-journald"
        # the journal's last lines, as machinectl shows them: -n lines, -o format
        wait_for "$BERTHCTL" exec "$n" journalctl -q -n1 || true
        ctl status "$n"
        assert_match "$OUT" "systemd(\[[0-9]+\])?: "
        ctl status -n 3 -o short-unix "$n"
        assert_eq 3 "$(journal_part "$OUT" | wc -l)" "-n 3: $OUT"
        grep -Evq '^[0-9]+\.[0-9]{6} [^ ]+ [^ ]+: ' <<<"$(journal_part "$OUT")" && fail "-o short-unix: $OUT"
        ctl status --lines=2 --output=cat "$n"
        assert_eq 2 "$(journal_part "$OUT" | wc -l)" "--lines=2: $OUT"
        grep -Eq '^[A-Z][a-z]{2} [0-9]{2} ' <<<"$(journal_part "$OUT")" && fail "-o cat has time stamps: $OUT"
        ctl status -n 2 -o json "$n"
        journal_part "$OUT" | python3 -c '
import json, sys
lines = sys.stdin.read().splitlines()
assert len(lines) == 2, lines
for l in lines:
    d = json.loads(l)
    assert "MESSAGE" in d and int(d["__REALTIME_TIMESTAMP"]) > 0, d' || fail "-o json: $OUT"
        ctl status -n 1 -o verbose "$n"
        assert_match "$OUT" "^    MESSAGE="
        assert_match "$OUT" "^    _MACHINE_ID=[0-9a-f]{32}$"
        # commands join the leader's cgroup (init.scope: a leaf), not the guest's root cgroup
        ctl exec "$n" cat /proc/self/cgroup
        assert_eq 0 "$RC"
        assert_contains "$OUT" "0::/init.scope"
        # and only the command: no host process (it would show as PID 0) joins with it
        ctl exec "$n" cat /sys/fs/cgroup/init.scope/cgroup.procs
        assert_eq 0 "$RC"
        if grep -qx 0 <<<"$OUT"; then
                fail "a process of the host is in the guest's init.scope: $OUT"
        fi
        ctl shell "$n" /bin/sh -c 'systemctl is-system-running --wait; echo $HOME $SHELL; exit 9'
        assert_eq 9 "$RC"
        assert_contains "$OUT" "/root /bin/bash"
        ctl poweroff "$n"
        assert_eq 0 "$RC"
        bg_exit
        assert_eq 0 "$BG_RC"
}

run_tests
