# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
# Helpers for the scripts that drive machines through berthctl without systemd
# (test-berthctl.sh, test-berthctl-habits.sh); sourced after lib.sh and
# require_berthctl.

ctl() {
        run "$BERTHCTL" "$@"
}

# start_bg NAME DIR [BERTH ARGS...]: starts berth in the background (passive console unless ARGS
# say otherwise), its output in $T/NAME.log, $BG_PID its PID; waits until it is running.
start_bg() {
        local name=$1 dir=$2
        shift 2
        "$BERTH" -D "$dir" -M "$name" --console=passive -q "$@" </dev/null >"$T/$name.log" 2>&1 &
        BG_PID=$!
        if ! "$BERTHCTL" wait "$name" --timeout=120s; then
                sed 's/^/# berth: /' "$T/$name.log"
                fail "machine '$name' did not come up"
        fi
}

# bg_exit: waits (120 s at most) for the berth of start_bg, sets $BG_RC to its exit status.
# shellcheck disable=SC2034 # BG_RC is for the script that sources this
bg_exit() {
        BG_RC=0
        timeout 120 tail --pid="$BG_PID" -f /dev/null || true
        wait "$BG_PID" || BG_RC=$?
}

# is_gone NAME: the machine has no record any more
is_gone() {
        [ ! -e "/run/berth/machines/$1" ]
}
