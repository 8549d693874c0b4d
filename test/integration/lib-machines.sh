# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
# Helpers for the scripts that drive machines through berthctl without systemd
# (test-berthctl.sh, test-berthctl-habits.sh); sourced after lib.sh and
# require_berthctl.

ctl() {
        run "$BERTHCTL" "$@"
}

# bg_exit: waits (120 s at most) for the berth of start_bg (lib.sh), sets $BG_RC to its exit status.
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
