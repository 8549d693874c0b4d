# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
# Helpers for the scripts that run berth on raw disk images they make in $T (test-image.sh,
# test-verity.sh); sourced after lib.sh.

# gpt_image IMG TYPE:FSFILE...: a GPT image with one partition per argument, each
# of its file system's size rounded up to MiB, the file system written into it.
gpt_image() {
        local img=$1 spec off=1 mb script="label: gpt"$'\n'
        shift
        for spec in "$@"; do
                mb=$(( ($(stat -c %s "${spec#*:}") + 1048575) / 1048576 ))
                script+="start=$((off * 2048)), size=$((mb * 2048)), type=${spec%%:*}"$'\n'
                off=$((off + mb))
        done
        truncate -s $((off + 1))M "$img"
        printf '%s' "$script" | sfdisk -q "$img" >/dev/null
        off=1
        for spec in "$@"; do
                mb=$(( ($(stat -c %s "${spec#*:}") + 1048575) / 1048576 ))
                dd if="${spec#*:}" of="$img" bs=1M seek="$off" conv=notrunc status=none
                off=$((off + mb))
        done
}

# Loop devices backed by a file under $T: ours, not other people's.
our_loops() {
        losetup -a 2>/dev/null | grep -F "$T/" || true
}

no_loops() {
        [ -z "$(our_loops)" ]
}

assert_nothing_attached() {
        wait_for no_loops || fail "loop devices left: $(our_loops)"
        ! findmnt -rn -o SOURCE,TARGET | grep -F "$T/" || fail "mounts left under $T"
}

# berth_image ARGS...: berth, without the lines of other runs' dead instances that this
# start cleaned (every start cleans every dead instance; issue 10): they are not ours.
berth_image() {
        berth "$@"
        ERR=$(printf '%s\n' "$ERR" | grep -v "Cleaned up after a dead instance" || true)
}
