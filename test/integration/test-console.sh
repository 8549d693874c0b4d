#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck disable=SC2016 # the single-quoted commands are run by the container's shell
# shellcheck disable=SC2317 # helpers called through wait_for
# The console: --console=interactive|read-only|passive|pipe|autopipe, the devpts instance, the
# forwarder (input, output, window size, Ctrl-] x3), and that nothing inside reaches the host's
# terminal. Cases that need a real terminal run berth in a tmux pane.
. "$(dirname "$0")/lib.sh"
require_root

# ---- a terminal: a tmux server of the case's own, one pane running bash ----

tm() {
        TERM=xterm tmux -S "$T/.tmux" "$@"
}

pane() {
        tm capture-pane -p -J -t t -S -500
}

pane_has() {
        grep -qF -- "$1" <<<"$(pane)"
}

pane_has_line() {
        grep -qxF -- "$1" <<<"$(pane)"
}

# The exit status printed by "...; echo RC=$?" in the pane (the last one).
pane_rc() {
        pane | sed -n 's/^RC=\([0-9][0-9]*\)$/\1/p' | tail -n 1
}

pane_done() {
        [ -n "$(pane_rc)" ]
}

# A typed line that, with the prompt, exactly fills N rows makes readline wrap onto an empty row;
# tmux marks it wrapped and capture-pane -J then joins the command's first output line to it.
# A trailing space keeps such a line off the margin.
type_line() {
        local line=$1 width
        width=$(tm display-message -p -t t '#{pane_width}')
        (( (${#PROMPT} + ${#line}) % width == 0 )) && line+=" "
        tm send-keys -t t -l -- "$line"
        tm send-keys -t t Enter
}

PROMPT='PROMPT> '

# Starts the pane (100 columns, 30 rows) with a bash whose prompt is "PROMPT> ".
tmux_start() {
        command -v tmux >/dev/null 2>&1 || skip "tmux is not installed (apt-get install tmux)"
        tm -f /dev/null new-session -d -s t -x 100 -y 30 \
                "env PS1='PROMPT> ' HISTFILE=/dev/null bash --norc --noprofile -i"
        trap 'tm kill-server >/dev/null 2>&1 || true' EXIT
        wait_for pane_has 'PROMPT>' || fail "the tmux pane did not start"
}

# in_pane ARGS...: runs berth with ARGS in the pane, then prints RC=<its exit status> on a line of its own.
in_pane() {
        type_line "$(printf '%q ' "$BERTH" "$@"); printf '\\nRC=%s\\n' \$?"
}

show_pane() {
        echo "# pane:"
        pane | sed 's/^/#   /'
}

# After berth is gone: a command typed into the pane's shell must run exactly as typed. A
# keystroke pushed into the host terminal from inside (TIOCSTI "x") would be read first and
# turn it into "xecho ...".
assert_no_injection() {
        type_line "echo END-MARK"
        wait_for pane_has_line END-MARK || {
                show_pane
                fail "the host shell did not run 'echo END-MARK' as typed: something was injected"
        }
        if grep -q 'command not found' <<<"$(pane)"; then
                show_pane
                fail "input was injected into the host terminal"
        fi
}

# Strips the carriage returns the pty adds (ONLCR).
nocr() {
        printf '%s\n' "$1" | tr -d '\r'
}

# ---- interactive ----

test_interactive_console_is_a_tty_and_takes_input() {
        make_tiny_tree "$ROOT"
        tmux_start
        in_pane -D "$ROOT" -q --console=interactive \
                /bin/sh -c 'payload tty; read x; echo "got:$x"'
        wait_for pane_has 'stderr=/dev/console' || { show_pane; fail "no tty output"; }
        type_line "hello world"
        wait_for pane_done || { show_pane; fail "berth did not exit"; }
        pane_has_line 'stdin=/dev/console' || { show_pane; fail "stdin is not /dev/console"; }
        pane_has_line 'stdout=/dev/console' || { show_pane; fail "stdout is not /dev/console"; }
        pane_has_line 'got:hello world' || { show_pane; fail "typed input did not reach the payload"; }
        assert_eq 0 "$(pane_rc)"
}

test_default_on_a_tty_is_interactive() {
        make_tiny_tree "$ROOT"
        tmux_start
        in_pane -D "$ROOT" -q /bin/sh -c 'payload tty; read x; echo "got:$x"'
        wait_for pane_has 'stderr=/dev/console' || { show_pane; fail "no console"; }
        type_line "abc"
        wait_for pane_done || { show_pane; fail "berth did not exit"; }
        pane_has_line 'got:abc' || { show_pane; fail "input not forwarded by default on a tty"; }
}

test_autopipe_on_a_tty_is_interactive() {
        make_tiny_tree "$ROOT"
        tmux_start
        in_pane -D "$ROOT" -q --console=autopipe /usr/bin/payload tty
        wait_for pane_done || { show_pane; fail "berth did not exit"; }
        pane_has_line 'stdout=/dev/console' || { show_pane; fail "autopipe on a tty did not pick interactive"; }
        assert_eq 0 "$(pane_rc)"
}

test_window_size_is_followed() {
        make_tiny_tree "$ROOT"
        tmux_start
        in_pane -D "$ROOT" -q /bin/sh -c 'payload winsize; while read x; do payload winsize; done; echo bye'
        wait_for pane_has_line '30 100' || { show_pane; fail "the console did not start with the terminal's size"; }

        tm resize-window -t t -x 80 -y 20
        # each Enter makes the payload print the size again; SIGWINCH and the key may race
        resized() {
                tm send-keys -t t Enter
                sleep 0.1
                pane_has_line '20 80'
        }
        wait_for resized || { show_pane; fail "the console's size did not follow the terminal"; }
        tm send-keys -t t C-d
        wait_for pane_done || { show_pane; fail "EOF (Ctrl-D) did not reach the payload"; }
        assert_eq 0 "$(pane_rc)"
}

test_ctrl_bracket_three_times_kills_and_restores_terminal() {
        make_tiny_tree "$ROOT"
        tmux_start
        type_line "stty -g >$T/stty.before"
        in_pane -D "$ROOT" -q /bin/sh -c 'echo started; exec payload sleep 120'
        wait_for pane_has_line started || { show_pane; fail "the payload did not start"; }

        # two are not enough
        tm send-keys -t t C-] C-]
        sleep 1.5
        pane_done && { show_pane; fail "two Ctrl-] ended the container"; }

        tm send-keys -t t C-] C-] C-]
        wait_for pane_done || { show_pane; fail "Ctrl-] three times did not end berth"; }
        [ "$(pane_rc)" != 0 ] || fail "berth exited with 0 after the escape"
        type_line "stty -g >$T/stty.after"
        wait_for test -s "$T/stty.after"
        assert_eq "$(cat "$T/stty.before")" "$(cat "$T/stty.after")" "terminal settings after the escape"
        assert_no_injection
}

# Ctrl-] Ctrl-] p powers the guest off with its init's signal, r reboots it (berth's 133); the
# message in the raw terminal ends at the left edge, so the next line is not shifted.
test_hot_keys_power_off_and_reboot() {
        make_tiny_tree "$ROOT"
        tmux_start
        type_line "stty -g >$T/stty.before"
        in_pane -D "$ROOT" -b
        wait_for pane_has_line booted || { show_pane; fail "the guest did not boot"; }
        tm send-keys -t t C-] C-] p
        wait_for pane_done || { show_pane; fail "Ctrl-] Ctrl-] p did not power the guest off"; }
        assert_eq 0 "$(pane_rc)"
        # (the guest's terminal echoes the keys, so "shutdown" may follow them on their line)
        pane_has shutdown || { show_pane; fail "the guest's init did not run its shutdown"; }
        grep -q "^Powering off machine '.*' (Ctrl-\] Ctrl-\] p)\.\$" <<<"$(pane)" ||
                { show_pane; fail "the message is not on a line of its own"; }
        grep -q "^berth: Container .* exited successfully\.\$" <<<"$(pane)" ||
                { show_pane; fail "the next line does not start at the left edge"; }

        tm send-keys -t t C-l
        tm clear-history -t t
        in_pane -D "$ROOT" -b
        wait_for pane_has_line booted || { show_pane; fail "the guest did not boot again"; }
        tm send-keys -t t C-] C-] r
        wait_for pane_done || { show_pane; fail "Ctrl-] Ctrl-] r did not reboot the guest"; }
        assert_eq 133 "$(pane_rc)"
        type_line "stty -g >$T/stty.after"
        wait_for test -s "$T/stty.after"
        assert_eq "$(cat "$T/stty.before")" "$(cat "$T/stty.after")" "terminal settings after the hot keys"
}

test_hot_keys_need_a_booted_init() {
        make_tiny_tree "$ROOT"
        tmux_start
        in_pane -D "$ROOT" -q /bin/sh -c 'echo started; exec payload sleep 120'
        wait_for pane_has_line started || { show_pane; fail "the payload did not start"; }
        tm send-keys -t t C-] C-] p
        wait_for pane_has "no poweroff signal" || { show_pane; fail "no word on a refused poweroff"; }
        pane_done && { show_pane; fail "Ctrl-] Ctrl-] p ended a command"; }
        tm send-keys -t t C-] C-] C-]
        wait_for pane_done || { show_pane; fail "Ctrl-] three times did not end berth"; }
}

test_terminal_restored_after_normal_exit() {
        make_tiny_tree "$ROOT"
        tmux_start
        type_line "stty -g >$T/stty.before"
        in_pane -D "$ROOT" -q /usr/bin/payload exit 3
        wait_for pane_done || { show_pane; fail "berth did not exit"; }
        assert_eq 3 "$(pane_rc)"
        type_line "stty -g >$T/stty.after"
        wait_for test -s "$T/stty.after"
        assert_eq "$(cat "$T/stty.before")" "$(cat "$T/stty.after")" "terminal settings after exit"
}

# ---- read-only, passive ----

test_read_only_prints_output_and_ignores_input() {
        make_tiny_tree "$ROOT"
        tmux_start
        in_pane -D "$ROOT" -q --console=read-only \
                /bin/sh -c 'payload tty; echo started; read -t 3 x; echo "got:[$x]"'
        wait_for pane_has_line started || { show_pane; fail "no output in read-only mode"; }
        type_line "typed"
        wait_for pane_done || { show_pane; fail "berth did not exit"; }
        pane_has_line 'stdin=/dev/console' || { show_pane; fail "the payload's stdin is not the console"; }
        pane_has_line 'got:[]' || { show_pane; fail "input reached the payload in read-only mode"; }
}

test_default_without_tty_is_read_only() {
        make_tiny_tree "$ROOT"
        berth -D "$ROOT" -q /bin/sh -c 'payload tty; echo to-stderr >&2'
        assert_eq 0 "$RC"
        OUT=$(nocr "$OUT")
        assert_contains "$OUT" "stdin=/dev/console"
        assert_contains "$OUT" "stdout=/dev/console"
        # the console carries stderr too, to our stdout
        assert_contains "$OUT" "to-stderr"
}

test_read_only_last_words_are_printed() {
        make_tiny_tree "$ROOT"
        berth -D "$ROOT" -q --console=read-only \
                /bin/sh -c 'i=0; while [ $i -lt 3000 ]; do echo "line $i"; i=$((i+1)); done; echo "Powering off."'
        assert_eq 0 "$RC"
        OUT=$(nocr "$OUT")
        assert_eq 3001 "$(printf '%s\n' "$OUT" | wc -l)" "lines of console output"
        assert_eq "Powering off." "$(printf '%s\n' "$OUT" | tail -n 1)"
}

test_passive_forwards_nothing_and_never_blocks() {
        make_tiny_tree "$ROOT"
        # far more than a pty buffers: a guest whose console is not read would hang here
        berth -D "$ROOT" -q --console=passive \
                /bin/sh -c 'payload tty; i=0; while [ $i -lt 20000 ]; do echo "line $i"; i=$((i+1)); done'
        assert_eq 0 "$RC"
        assert_eq "" "$OUT"
}

test_stdout_reader_gone() {
        make_tiny_tree "$ROOT"
        # berth must see EPIPE, not die of SIGPIPE
        RC=0
        timeout 60 "$BERTH" -D "$ROOT" -q --console=read-only \
                /bin/sh -c 'i=0; while [ $i -lt 20000 ]; do echo "line $i"; i=$((i+1)); done' \
                </dev/null 2>"$T/err" | head -n 1 >/dev/null || RC=$? # sigpipe: wanted
        assert_eq 0 "$RC" "pipeline status (berth's exit status)"
}

# The guest closes /dev/console and opens it again later (a booting systemd does): the forwarder
# must neither spin on the master's EPOLLHUP nor stop forwarding.
test_console_closed_and_reopened() {
        local pid ticks
        make_tiny_tree "$ROOT"
        "$BERTH" -D "$ROOT" -q --console=read-only /bin/sh -c \
                'echo first; exec </dev/null >/dev/null 2>&1; sleep 3; exec </dev/console >/dev/console 2>&1; echo back' \
                </dev/null >"$T/out" 2>"$T/err" &
        pid=$!
        # the console is about to be closed for 3 s: look at berth's CPU time over 1.5 s of that
        wait_for grep -q first "$T/out" || fail "the payload did not start: $(cat "$T/err")"
        local before
        before=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
        sleep 1.5
        # utime + stime, in clock ticks (usually 100/s): a busy loop would have used ~150
        ticks=$(($(awk '{ print $14 + $15 }' "/proc/$pid/stat") - before))
        wait "$pid" || fail "berth failed: $(cat "$T/err")"
        [ "$ticks" -lt 30 ] || fail "berth used $ticks clock ticks of CPU while the console was closed"
        assert_eq "first back" "$(tr -d '\r' <"$T/out" | xargs)"
}

# ---- pipe, autopipe ----

test_pipe_passes_stdio_through_separately() {
        make_tiny_tree "$ROOT"
        RC=0
        printf 'in-data\n' | timeout 60 "$BERTH" -D "$ROOT" -q --console=pipe \
                /bin/sh -c 'payload tty >&2; read x; echo "out:$x"; echo "err:$x" >&2' \
                >"$T/out" 2>"$T/err" || RC=$?
        assert_eq 0 "$RC"
        assert_eq "out:in-data" "$(cat "$T/out")" "stdout"
        assert_eq "stdin=notty
stdout=notty
stderr=notty
err:in-data" "$(cat "$T/err")" "stderr"
}

# without -q too: berth's stderr is the payload's, so berth adds no status line of its own to it
# (systemd's own nspawn test compares `cat <>/dev/fuse 2>&1` output with the error alone)
test_pipe_stderr_is_the_payloads_alone() {
        make_tiny_tree "$ROOT"
        berth -D "$ROOT" --console=pipe /bin/sh -c 'echo oops >&2; exit 3'
        assert_eq 3 "$RC"
        assert_eq "oops" "$ERR"
        berth -D "$ROOT" --console=autopipe /bin/sh -c 'echo fine >&2'
        assert_eq 0 "$RC"
        assert_eq "fine" "$ERR"
        # other modes still say how the container ended
        berth -D "$ROOT" --console=read-only /bin/sh -c 'exit 3'
        assert_eq 3 "$RC"
        assert_contains "$ERR" "failed with error code 3"
}

test_autopipe_without_tty_is_pipe() {
        make_tiny_tree "$ROOT"
        berth -D "$ROOT" -q --console=autopipe /bin/sh -c 'payload tty; echo err >&2'
        assert_eq 0 "$RC"
        assert_eq "stdin=notty
stdout=notty
stderr=notty" "$OUT"
        assert_eq "err" "$ERR"
}

# ---- /dev ----

test_devpts_is_a_private_instance() {
        make_tiny_tree "$ROOT"
        berth -D "$ROOT" -q --console=read-only /bin/sh -c \
                'ls /dev/pts | xargs; readlink /dev/ptmx; grep " /dev/pts " /proc/self/mountinfo; payload stat /dev/console'
        assert_eq 0 "$RC"
        OUT=$(nocr "$OUT")
        # the console's pty and nothing of the host's
        assert_contains "$OUT" "0 ptmx"
        assert_contains "$OUT" "pts/ptmx"
        assert_match "$OUT" " /dev/pts .*nosuid.*noexec.* - devpts .*gid=5,mode=620,ptmxmode=666"
        # nspawn's console mode and group (root:tty 0620): it was 0600
        assert_contains "$OUT" "type=char mode=0620 uid=0 gid=5"
}

test_pipe_mode_has_no_dev_console() {
        make_tiny_tree "$ROOT"
        berth -D "$ROOT" -q --console=pipe /bin/sh -c 'ls /dev/pts | xargs; payload stat /dev/console'
        assert_eq "ptmx
errno=ENOENT" "$OUT"
}

# ---- nothing reaches the host terminal ----

test_tiocsti_interactive_stays_inside() {
        make_tiny_tree "$ROOT"
        tmux_start
        # TIOCSTI on /dev/console only reaches the container's own pty (or is refused)
        in_pane -D "$ROOT" -q /usr/bin/payload tiocsti 0
        wait_for pane_done || { show_pane; fail "berth did not exit"; }
        assert_no_injection
}

test_tiocsti_pipe_on_a_tty_fails() {
        make_tiny_tree "$ROOT"
        tmux_start
        # berth's stdin is the host terminal here, and the payload gets it as is
        in_pane -D "$ROOT" -q --console=pipe /usr/bin/payload tiocsti 0
        wait_for pane_done || { show_pane; fail "berth did not exit"; }
        pane_has_line ok && { show_pane; fail "TIOCSTI on the host terminal succeeded"; }
        [ "$(pane_rc)" != 0 ] || { show_pane; fail "TIOCSTI on the host terminal succeeded"; }
        assert_no_injection
}

test_pipe_on_a_tty_has_no_controlling_terminal() {
        make_tiny_tree "$ROOT"
        tmux_start
        in_pane -D "$ROOT" -q --console=pipe /bin/sh -c 'payload tty; cat /dev/tty && echo ctty-open'
        wait_for pane_done || { show_pane; fail "berth did not exit"; }
        pane_has_line 'stdin=notty' && { show_pane; fail "stdin is not the terminal"; }
        pane_has_line 'ctty-open' && { show_pane; fail "the payload has the host terminal as controlling tty"; }
        return 0
}

# --as-pid2: the stub init (PID 1) stays in the container next to the payload; it must not keep
# berth's stdio (the host terminal), or the payload reaches it through /proc/1/fd.
test_as_pid2_stub_holds_no_host_stdio() {
        make_tiny_tree "$ROOT"
        berth -D "$ROOT" -q -a --console=read-only /bin/sh -c 'echo LEAKED >/proc/1/fd/1; echo LEAKED >/proc/1/fd/2; true'
        assert_eq 0 "$RC"
        assert_not_contains "$OUT" "LEAKED" "berth's stdout written through PID 1's fd"
        assert_not_contains "$ERR" "LEAKED" "berth's stderr written through PID 1's fd"
}

test_as_pid2_host_terminal_unreachable() {
        make_tiny_tree "$ROOT"
        tmux_start
        in_pane -D "$ROOT" -q -a /bin/sh -c 'for f in 0 1 2; do echo "HOST-TTY""-WRITE-$f" >/proc/1/fd/$f; done; true'
        wait_for pane_done || { show_pane; fail "berth did not exit"; }
        pane_has HOST-TTY-WRITE && { show_pane; fail "the payload wrote to the host terminal through PID 1's fds"; }
        assert_eq 0 "$(pane_rc)"
}

run_tests
