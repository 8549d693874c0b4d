#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# User namespaces (--private-users=, -U): the map the container gets, ranges of two machines
# at once, the tree mounted idmapped (files the guest creates are stored as without -U, the
# tree's ownership never changes), hostile actions of container root that the user namespace
# takes away, range locks shared with systemd-nspawn and cleaned after a crash, bad input.
. "$(dirname "$0")/lib.sh"
require_root

B=(--console=pipe -q)
LOCKS=/run/systemd/nspawn-uid

machine() {
        # the same in every subshell of the case, so that $(machine) names one machine
        unique_name "uns-$(echo "${FUNCNAME[1]#test_}" | tr _ - | cut -c1-40)${1:+-$1}"
}

# map_of TEXT: "INSIDE OUTSIDE COUNT" of the first uid_map line in TEXT, spaces squeezed
map_of() {
        # a here-string: under pipefail, head leaving early could SIGPIPE a printf still writing
        awk 'NR == 1 { print $1, $2, $3 }' <<<"$1"
}

# in_window BASE: a picked range's base
in_window() {
        [ "$1" -ge $((0x80000)) ] && [ "$1" -le $((0x6FFF0000)) ] && [ $(($1 % 65536)) -eq 0 ]
}

# owners DIR: "UID:GID PATH" of everything in DIR, sorted
owners() {
        (cd "$1" && find . -xdev -printf '%U:%G %p\n' | sort -k2)
}

held_locks() { # the ranges of $LOCKS that a live process holds
        local f
        for f in "$LOCKS"/[0-9]*; do
                [ -e "$f" ] || continue
                if ! flock_free "$f"; then
                        echo "${f##*/}"
                fi
        done
}

# flock_free FILE: nobody holds FILE's open file description lock (nspawn's kind). A missing
# file is free too: any berth starting beside us (a second test run) removes unheld lock files.
flock_free() {
        python3 - "$1" <<-'EOF'
	import fcntl, struct, sys
	try:
	    fd = open(sys.argv[1], "rb")
	except FileNotFoundError:
	    sys.exit(0)
	lk = struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0)
	r = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, lk)
	sys.exit(0 if struct.unpack("hhqqi", r)[0] == fcntl.F_UNLCK else 1)
	EOF
}

# assert_no_leftovers NAME: nothing of machine NAME on the host (this run's own machines only:
# other test runs may start and stop machines meanwhile), and no range lock nobody holds
assert_no_leftovers() {
        [ ! -e "/run/berth/machines/$1" ] || fail "the record of $1 is left"
        [ ! -e "/run/berth/locks/$1.lock" ] || fail "the lock of $1 is left"
        [ -z "$(find /sys/fs/cgroup/ -maxdepth 6 -type d -name "berth-$1" 2>/dev/null)" ] || fail "cgroups of $1 are left"
        [ -z "$(findmnt -rn -o TARGET | grep -F "$1" || true)" ] || fail "mounts of $1 are left"
        # a berth beside us (a second test run) holds a fresh file unlocked for an instant, and one
        # it SIGKILLs leaves its file until its next start: only a file that stays unheld is ours
        WAIT_TIMEOUT=10 wait_for no_unheld_locks || fail "range locks left behind, unheld: $(unheld_locks)"
}

unheld_locks() {
        local f
        for f in "$LOCKS"/[0-9]*; do
                [ -e "$f" ] || continue
                flock_free "$f" && [ -e "$f" ] && echo "${f##*/}"
        done
        return 0
}

no_unheld_locks() {
        [ -z "$(unheld_locks)" ]
}

# ---- the map ----

test_uid_map_inside() {
        local map base
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -M "$(machine)" -D "$ROOT" -U /bin/sh -c \
                'cat /proc/self/uid_map; cat /proc/self/gid_map; id -u; id -g; hostname x && hostname'
        assert_eq 0 "$RC" "-U runs"
        map=$(map_of "$OUT")
        base=${map#0 }
        base=${base% *}
        assert_eq "0 $base 65536" "$map" "uid_map: 65536 ids from 0"
        in_window "$base" || fail "base $base is not a multiple of 65536 in nspawn's window"
        assert_eq "0 $base 65536" "$(printf '%s\n' "$OUT" | sed -n 2p | awk '{ print $1, $2, $3 }')" "gid_map"
        assert_eq "0
0
x" "$(printf '%s\n' "$OUT" | tail -n 3)" "root inside, and its own host name"
        # the same machine name picks the same range next time
        berth "${B[@]}" -M "$(machine)" -D "$ROOT" -U /bin/cat /proc/self/uid_map
        assert_eq "0 $base 65536" "$(map_of "$OUT")" "stable across starts"
        # without: the host's map
        berth "${B[@]}" -M "$(machine)" -D "$ROOT" /bin/cat /proc/self/uid_map
        assert_eq "0 0 4294967295" "$(map_of "$OUT")" "no user namespace by default"
}

test_explicit_range_and_identity() {
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -M "$(machine)" -D "$ROOT" --private-users=1879048192:65536 /bin/cat /proc/self/uid_map
        assert_eq 0 "$RC"
        assert_eq "0 1879048192 65536" "$(map_of "$OUT")"
        berth "${B[@]}" -M "$(machine)" -D "$ROOT" --private-users=identity /bin/cat /proc/self/uid_map
        assert_eq 0 "$RC"
        assert_eq "0 0 65536" "$(map_of "$OUT")"
}

test_two_machines_get_disjoint_ranges() {
        local a b pa pb ma mb
        a=$(machine a)
        b=$(machine b)
        make_tiny_tree "$T/a"
        make_tiny_tree "$T/b"
        start_bg --no-wait --loud "$a" "$T/a" --console=pipe -U /bin/sh -c 'cat /proc/self/uid_map > /root/map; exec sleep 100'
        pa=$BG_PID
        start_bg --no-wait --loud "$b" "$T/b" --console=pipe -U /bin/sh -c 'cat /proc/self/uid_map > /root/map; exec sleep 100'
        pb=$BG_PID
        wait_for test -s "$T/a/root/map" || fail "machine a did not start: $(cat "$T/$a.log")"
        wait_for test -s "$T/b/root/map" || fail "machine b did not start: $(cat "$T/$b.log")"
        ma=$(awk '{ print $2 }' "$T/a/root/map")
        mb=$(awk '{ print $2 }' "$T/b/root/map")
        [ "$ma" != "$mb" ] || fail "both machines got $ma"
        [ $((ma + 65536)) -le "$mb" ] || [ $((mb + 65536)) -le "$ma" ] || fail "ranges $ma and $mb overlap"
        # both ranges are locked as nspawn locks them
        grep -qx "$ma" <<<"$(held_locks)" || fail "range $ma is not locked in $LOCKS"
        grep -qx "$mb" <<<"$(held_locks)" || fail "range $mb is not locked in $LOCKS"
        # the same name as a running machine's hash, from a third machine: never the same range
        berth "${B[@]}" -M "$a-x" -D "$T/a" -U /bin/cat /proc/self/uid_map
        stop_bg "$pa"
        stop_bg "$pb"
        [ ! -e "$LOCKS/$ma" ] || fail "range $ma still has a lock file after the machine ended"
        [ ! -e "$LOCKS/$mb" ] || fail "range $mb still has a lock file after the machine ended"
}

# berthctl status and show: the range, as machinectl's "UID Shift"
test_berthctl_shows_the_range() {
        local name base
        [ -x "${BERTHCTL:-}" ] || skip "\$BERTHCTL is not set to the berthctl binary (run through 'meson test')"
        name=$(machine)
        make_tiny_tree "$ROOT"
        start_bg --loud "$name" "$ROOT" --console=pipe -U /bin/sh -c 'cat /proc/self/uid_map > /root/map; exec sleep 100'
        wait_for test -s "$ROOT/root/map" || fail "did not start: $(cat "$T/$name.log")"
        base=$(awk '{ print $2 }' "$ROOT/root/map")
        run "$BERTHCTL" show "$name" --property=UIDShift --property=UIDRange
        assert_eq 0 "$RC"
        assert_eq "UIDShift=$base
UIDRange=65536" "$OUT"
        run "$BERTHCTL" status "$name"
        assert_match "$OUT" "UID Shift: $base"
        stop_bg "$BG_PID"
}

# systemd-nspawn's lock on the range the machine name hashes to: berth picks another
test_nspawn_range_lock_is_honoured() {
        local name base other
        name=$(machine)
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -M "$name" -D "$ROOT" -U /bin/cat /proc/self/uid_map
        base=$(map_of "$OUT" | awk '{ print $2 }')
        in_window "$base" || fail "no range: $OUT $ERR"
        mkdir -p "$LOCKS"
        # hold it the way nspawn does (an open file description lock), until the fifo closes
        mkfifo "$T/hold"
        python3 - "$LOCKS/$base" "$T/hold" <<-'EOF' &
	import fcntl, struct, sys
	fd = open(sys.argv[1], "a+b")
	fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0))
	open(sys.argv[2], "w").close()   # locked
	open(sys.argv[2]).read()         # wait for the test
	EOF
        local holder=$!
        cat "$T/hold" >/dev/null
        berth "${B[@]}" -M "$name" -D "$ROOT" -U /bin/cat /proc/self/uid_map
        other=$(map_of "$OUT" | awk '{ print $2 }')
        echo >"$T/hold"
        wait "$holder" || true
        rm -f "$LOCKS/$base"
        assert_eq 0 "$RC"
        in_window "$other" || fail "no range the second time: $OUT"
        [ "$other" != "$base" ] || fail "berth took range $base that nspawn's lock holds"
}

# range_unused BASE: no process on the host runs in a user namespace of that range
range_unused() {
        ! grep -qsE "^ *0 +$1 " /proc/[0-9]*/uid_map
}

test_sigkill_releases_the_range() {
        local name base
        name=$(machine)
        make_tiny_tree "$ROOT"
        start_bg --loud "$name" "$ROOT" --console=pipe -U /bin/sh -c 'cat /proc/self/uid_map > /root/map; exec sleep 100'
        wait_for test -s "$ROOT/root/map" || fail "did not start: $(cat "$T/$name.log")"
        base=$(awk '{ print $2 }' "$ROOT/root/map")
        grep -qx "$base" <<<"$(held_locks)" || fail "range $base not locked"
        kill -KILL "$BG_PID"
        wait "$BG_PID" 2>/dev/null || true
        # the lock died with berth; its file stays until the next start cleans it
        wait_for flock_free "$LOCKS/$base" || fail "range $base still held after SIGKILL"
        berth "${B[@]}" -M "$(machine other)" -D "$ROOT" /bin/true
        assert_eq 0 "$RC"
        [ ! -e "$LOCKS/$base" ] || fail "the next start left the dead instance's lock file $LOCKS/$base"
        # and the range is free again once the killed container's processes are gone (they die
        # with berth, but not at the same instant): the same name gets it back
        wait_for range_unused "$base" || fail "processes of the killed container still use range $base"
        berth "${B[@]}" -M "$name" -D "$ROOT" -U /bin/cat /proc/self/uid_map
        assert_eq "0 $base 65536" "$(map_of "$OUT")"
}

# -x with an overlay and a bind of berth's own directories, berth killed: the overlays and the
# staging tmpfs went with the container's mount namespace; the next start removes the temporary
# and work directories the record lists.
test_sigkill_with_ephemeral_and_overlays_leaves_nothing() {
        local name
        name=$(machine)
        make_tiny_tree "$ROOT"
        mkdir "$T/tmp" "$T/lo" "$T/up"
        TMPDIR=$T/tmp start_bg --loud "$name" "$ROOT" --console=pipe -U -x \
                --overlay="$T/lo::/a" --overlay="$T/lo:$T/up:/b" --bind=:/c \
                /bin/sh -c 'touch /a/x /b/x /c/x /root/x && touch /run/ready; exec sleep 100'
        wait_for test -e "$T/up/x" || fail "did not start: $(cat "$T/$name.log")"
        [ -n "$(ls "$T/tmp")" ] && [ -n "$(find "$T" -maxdepth 1 -name '.#up.berth-work*')" ] ||
                fail "no temporary and work directories: $(ls -a "$T" "$T/tmp")"
        kill -KILL "$BG_PID"
        wait "$BG_PID" 2>/dev/null || true
        wait_for no_processes_of "$name" || fail "the killed container's processes are still there"
        berth "${B[@]}" -M "$name" -D "$ROOT" /bin/true
        assert_eq 0 "$RC"
        assert_eq "" "$(ls "$T/tmp")" "berth's temporary directories"
        assert_eq "" "$(find "$T" -maxdepth 1 -name '.#up.berth-work*')" "the overlay's work directory"
        [ ! -e "$ROOT/root/x" ] || fail "-x wrote to the tree"
        assert_no_leftovers "$name"
}

# -U on a disk image (-x: its partition idmapped below the overlay), berth killed: the loop device
# goes with the mounts (autoclear), the range's lock with berth, nothing stays mounted
test_sigkill_with_an_image_leaves_nothing() {
        local name leader base
        command -v mkfs.ext4 >/dev/null && [ -e /dev/loop-control ] || skip "no mkfs.ext4 or loop devices"
        name=$(machine)
        make_tiny_tree "$T/tree"
        truncate -s 48M "$T/img.raw"
        mkfs.ext4 -q -F -d "$T/tree" "$T/img.raw"
        "$BERTH" --console=pipe -M "$name" -U -x -i "$T/img.raw" /bin/sh -c 'touch /root/x; exec sleep 100' \
                </dev/null >"$T/bg.out" 2>"$T/bg.err" &
        BG_PID=$!
        wait_for grep -q '^LEADER=' "/run/berth/machines/$name" || fail "did not start: $(cat "$T/bg.err")"
        leader=$(sed -n 's/^LEADER=//p' "/run/berth/machines/$name")
        base=$(awk '{ print $2 }' "/proc/$leader/uid_map")
        in_window "$base" || fail "not in a picked range: $(cat "/proc/$leader/uid_map")"
        grep -qF "$T/img.raw" <<<"$(losetup -a)" || fail "no loop device while running"
        kill -KILL "$BG_PID"
        wait "$BG_PID" 2>/dev/null || true
        wait_for no_processes_of "$name" || fail "the killed container's processes are still there"
        wait_for sh -c "! losetup -a | grep -F '$T/img.raw' >/dev/null" || fail "loop devices left: $(losetup -a | grep -F "$T/")"
        wait_for flock_free "$LOCKS/$base" || fail "range $base still held after SIGKILL"
        berth "${B[@]}" -M "$name" -U -i "$T/img.raw" /bin/sh -c 'cat /proc/self/uid_map; ls /root'
        assert_eq 0 "$RC"
        assert_eq "0 $base 65536" "$(map_of "$OUT")" "the same range again"
        assert_not_contains "$OUT" x "-x wrote to the image"
        wait_for sh -c "! losetup -a | grep -F '$T/img.raw' >/dev/null" || fail "loop devices left after exit"
        assert_no_leftovers "$name"
}

# no_processes_of NAME: nothing runs in a cgroup of machine NAME any more
no_processes_of() {
        [ -z "$(find /sys/fs/cgroup/ -maxdepth 6 -type d -name "berth-$1" 2>/dev/null)" ] && return 0
        [ -z "$(find /sys/fs/cgroup/ -maxdepth 7 -path "*berth-$1*" -name cgroup.procs -exec cat {} + 2>/dev/null)" ]
}

# ---- ownership: map ----

test_map_mode_files_are_stored_as_without_userns() {
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -M "$(machine)" -D "$ROOT" /bin/sh -c \
                'touch /root/plain && mkdir /root/plaindir && touch /root/plain1000 && chown 1000:1000 /root/plain1000'
        assert_eq 0 "$RC"
        berth "${B[@]}" -M "$(machine)" -D "$ROOT" -U /bin/sh -c \
                'touch /root/mapped && mkdir /root/mappeddir && touch /root/mapped1000 && chown 1000:1000 /root/mapped1000 && ls -ln /root/plain /root/plain1000'
        assert_eq 0 "$RC"
        assert_eq "$(stat -c %u:%g "$ROOT/root/plain")" "$(stat -c %u:%g "$ROOT/root/mapped")" "root's file"
        assert_eq "$(stat -c %u:%g "$ROOT/root/plaindir")" "$(stat -c %u:%g "$ROOT/root/mappeddir")" "root's dir"
        assert_eq "$(stat -c %u:%g "$ROOT/root/plain1000")" "$(stat -c %u:%g "$ROOT/root/mapped1000")" "user 1000's file"
        assert_eq 0:0 "$(stat -c %u:%g "$ROOT/root/mapped")"
        assert_eq 1000:1000 "$(stat -c %u:%g "$ROOT/root/mapped1000")"
        # and inside, the host's root files look like root's own
        assert_match "$OUT" "^-[rw-]+ +1 0 +0 .*/root/plain$"
}

# ---- ownership: chown ----

# the file capability of FILE as "MAGIC ROOTID" (hex magic, decimal root id; v2 has root id 0)
file_cap() {
        python3 -c '
import os, struct, sys
d = os.getxattr(sys.argv[1], "security.capability", follow_symlinks=False)
magic = struct.unpack_from("<I", d)[0]
print("%08x %d" % (magic & 0xff000000, struct.unpack_from("<I", d, 20)[0] if len(d) == 24 else 0))
' "$1"
}

# chown shifts the tree to the range on disk, once: owners, ACL ids, file capabilities (for the
# range's root), set-user-ID bits kept; ids outside 0..65535 left; a symlink's target untouched.
# A later start (of any name) finds the shifted tree and keeps its range; -U then needs no mapping.
test_chown_mode_shifts_the_tree_once() {
        local name base
        name=$(machine)
        make_tiny_tree "$ROOT"
        echo canary >"$T/canary"
        chown 4242:4242 "$T/canary"
        ln -s "$T/canary" "$ROOT/root/to-host"
        touch "$ROOT/root/suid" "$ROOT/root/far" "$ROOT/root/capfile"
        chown 1000:1000 "$ROOT/root/suid"
        chmod 4755 "$ROOT/root/suid"
        chown 70000:70000 "$ROOT/root/far"
        setcap cap_net_raw+ep "$ROOT/root/capfile"
        setfacl -m u:1000:rw -m g:1001:r "$ROOT/root/suid"
        berth "${B[@]}" -M "$name" -D "$ROOT" --private-users=pick --private-users-ownership=chown /bin/sh -c \
                'cat /proc/self/uid_map; stat -c "%n %u:%g %A" /root/suid /root/capfile /; touch /root/new'
        assert_eq 0 "$RC" "$ERR"
        base=$(map_of "$OUT" | awk '{ print $2 }')
        assert_contains "$OUT" "/root/suid 1000:1000 -rws"
        assert_contains "$OUT" "/root/capfile 0:0"
        assert_contains "$OUT" "/ 0:0"
        # on disk: shifted
        assert_eq "$base:$base" "$(stat -c %u:%g "$ROOT")" "the top"
        assert_eq "$((base + 1000)):$((base + 1000))" "$(stat -c %u:%g "$ROOT/root/suid")" "suid's owner"
        [[ $(stat -c %a "$ROOT/root/suid") == 4??? ]] || fail "the set-user-ID bit is gone: $(stat -c %a "$ROOT/root/suid")"
        assert_eq "$base:$base" "$(stat -c %u:%g "$ROOT/root/new")" "what the guest made"
        assert_eq "70000:70000" "$(stat -c %u:%g "$ROOT/root/far")" "ids outside the range"
        assert_eq "$base:$base" "$(stat -c %u:%g "$ROOT/root/to-host")" "the symlink itself"
        assert_eq "4242:4242" "$(stat -c %u:%g "$T/canary")" "the symlink's host target"
        assert_eq "03000000 $base" "$(file_cap "$ROOT/root/capfile")" "the file capability, for the range's root"
        assert_contains "$(getfacl -n "$ROOT/root/suid" 2>/dev/null)" "user:$((base + 1000)):rw-"
        assert_contains "$(getfacl -n "$ROOT/root/suid" 2>/dev/null)" "group:$((base + 1001)):r--"
        # again, as another machine: the tree keeps its range and is not shifted twice
        berth --console=pipe -M "$(machine again)" -D "$ROOT" --private-users=pick \
                --private-users-ownership=chown /bin/cat /proc/self/uid_map
        assert_eq 0 "$RC" "$ERR"
        assert_eq "0 $base 65536" "$(map_of "$OUT")"
        assert_not_contains "$ERR" "Shifting"
        assert_eq "$((base + 1000))" "$(stat -c %u "$ROOT/root/suid")"
        # -U on the shifted tree: its range, no mapping
        berth "${B[@]}" -M "$name" -D "$ROOT" -U /bin/sh -c 'cat /proc/self/uid_map; stat -c "%u" /root/suid'
        assert_eq 0 "$RC" "$ERR"
        assert_eq "0 $base 65536" "$(map_of "$OUT")"
        assert_contains "$OUT" "1000"
        # where chown would shift what must stay: refused
        berth "${B[@]}" -M "$name" -D "$ROOT" -x --private-users=pick --private-users-ownership=chown /bin/true
        assert_eq 1 "$RC"
        assert_contains "$ERR" "shifts a directory tree on disk"
}

# An immutable file cannot change its owner: the shift stops and names it with the fix, where it
# once failed with a bare "Operation not permitted" (and a skip, as for device nodes, would leave
# it owned by nobody in the guest). Once the attribute is gone, a start finishes the shift. The
# attribute is cleared on the way out also when the case fails (and lib.sh's cleanup would too).
test_chown_mode_names_an_immutable_file() {
        local name base locked=$ROOT/root/locked
        name=$(machine)
        make_tiny_tree "$ROOT"
        touch "$locked"
        chattr +i "$locked" 2>/dev/null || skip "the file system of $T has no chattr +i"
        # shellcheck disable=SC2064 # $locked now: the case's variables are gone at exit
        trap "chattr -i '$locked' 2>/dev/null || true" EXIT
        berth "${B[@]}" -M "$name" -D "$ROOT" --private-users=pick --private-users-ownership=chown /bin/true
        assert_eq 1 "$RC" "a tree with an immutable file is refused"
        assert_one_line_error
        assert_contains "$ERR" "'$locked' is immutable (chattr +i)"
        assert_contains "$ERR" "Run 'chattr -i' on it"
        assert_eq "0:0" "$(stat -c %u:%g "$locked")" "the immutable file"
        chattr -i "$locked"
        berth "${B[@]}" -M "$name" -D "$ROOT" --private-users=pick --private-users-ownership=chown \
                /bin/sh -c 'cat /proc/self/uid_map; stat -c %u:%g /root/locked'
        assert_eq 0 "$RC" "$ERR"
        base=$(map_of "$OUT" | awk '{ print $2 }')
        assert_contains "$OUT" "0:0"
        assert_eq "$base:$base" "$(stat -c %u:%g "$locked")" "shifted once let go"
        assert_eq "$base:$base" "$(stat -c %u:%g "$ROOT")" "the top: the shift finished"
}

# An overlay whose upper layer is on another file system than its lower (a tmpfs over a tree on
# disk, as the systemd test host's machines): overlayfs cannot be idmapped, so -U shifts it, and
# the files it has not copied up report the lower layer's device. Every file is shifted (the walk
# once skipped those, and the guest saw its own /etc owned by nobody); the lower layer is untouched.
test_auto_shifts_every_file_of_an_overlay_on_two_file_systems() {
        local name base ov=$T/ov up=$T/up
        name=$(machine)
        make_tiny_tree "$ROOT"
        touch "$ROOT/etc/deep-file"
        mkdir "$ov" "$up"
        mount -t tmpfs tmpfs "$up"
        mkdir "$up/u" "$up/w"
        mount -t overlay overlay -o "lowerdir=$ROOT,upperdir=$up/u,workdir=$up/w" "$ov"
        [ "$(stat -c %d "$ov/etc/deep-file")" != "$(stat -c %d "$ov")" ] ||
                fail "the overlay reports one device for its layers: this case needs two"
        berth "${B[@]}" -M "$name" -D "$ov" -U /bin/sh -c \
                'cat /proc/self/uid_map; stat -c "%n %u:%g" /etc/deep-file /bin/sh /etc'
        assert_eq 0 "$RC" "$ERR"
        base=$(map_of "$OUT" | awk '{ print $2 }')
        [ "$base" -gt 0 ] || fail "no range: $OUT"
        assert_contains "$OUT" "/etc/deep-file 0:0"
        assert_contains "$OUT" "/bin/sh 0:0"
        assert_contains "$OUT" "/etc 0:0"
        assert_eq "$base:$base" "$(stat -c %u:%g "$up/u/etc/deep-file")" "the copied-up file"
        assert_eq "0:0" "$(stat -c %u:%g "$ROOT/etc/deep-file")" "the lower layer"
}

test_map_mode_leaves_tree_ownership_unchanged() {
        local before
        make_tiny_tree "$ROOT"
        before=$(owners "$ROOT")
        berth "${B[@]}" -M "$(machine)" -D "$ROOT" -U /bin/sh -c 'ls -lnR / >/dev/null 2>&1; true'
        assert_eq 0 "$RC"
        assert_eq "$before" "$(owners "$ROOT")" "owners of the tree after a -U run"
        # the tree works without -U again, and with it again
        berth "${B[@]}" -M "$(machine)" -D "$ROOT" /bin/sh -c 'touch /root/x'
        assert_eq 0 "$RC"
        berth "${B[@]}" -M "$(machine)" -D "$ROOT" -U /bin/sh -c 'rm /root/x && touch /root/x'
        assert_eq 0 "$RC"
        assert_eq 0:0 "$(stat -c %u:%g "$ROOT/root/x")"
}

test_berths_tmpfs_mounts_belong_to_container_root() {
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -M "$(machine)" -D "$ROOT" -U --tmpfs=/scratch /bin/sh -c \
                'stat -c "%n %u:%g" /run /tmp /dev /dev/shm /scratch; touch /run/a /tmp/b /dev/shm/c /scratch/d && echo wrote'
        assert_eq 0 "$RC"
        assert_eq "/run 0:0
/tmp 0:0
/dev 0:0
/dev/shm 0:0
/scratch 0:0
wrote" "$OUT"
        # the device nodes and links berth makes in /dev too, as nspawn has them
        berth "${B[@]}" -M "$(machine)" -D "$ROOT" -U -x /bin/stat -c "%n %u:%g" /dev/null /dev/urandom /dev/fd
        assert_eq "/dev/null 0:0
/dev/urandom 0:0
/dev/fd 0:0" "$OUT" "/dev's nodes"
        if [ -c /dev/net/tun ]; then
                berth "${B[@]}" -M "$(machine)" -D "$ROOT" -U /bin/stat -c "%n %u:%g" /dev/net /dev/net/tun
                assert_eq "/dev/net 0:0
/dev/net/tun 0:0" "$OUT" "/dev/net/tun"
        fi
        # the console (a pty of the container's devpts) too, with its tty group
        berth -q --console=read-only -M "$(machine)" -D "$ROOT" -U /bin/stat -c "%u:%g" /dev/console
        assert_eq 0 "$RC"
        assert_contains "$OUT" "0:5"
}

# /dev/pts, its ptmx and the /dev/ptmx link are the guest root's, as on a host and with nspawn -U.
# berth makes the devpts instance as host root in the host's user namespace, so these were host
# root's, which the guest sees as nobody: ls showed 65534, and its root could not even chmod ptmx.
# ptys opened inside (the console, berthctl's) belong to the guest's root and tty group already.
test_devpts_belongs_to_container_root() {
        local c expected="/dev/pts 0:0 755
/dev/pts/ptmx 0:0 666
/dev/ptmx 0:0 777
chmod"
        make_tiny_tree "$ROOT"
        for c in pipe read-only; do
                berth -q --console=$c -M "$(machine)" -D "$ROOT" -U /bin/sh -c \
                        'stat -c "%n %u:%g %a" /dev/pts /dev/pts/ptmx /dev/ptmx; chmod 0666 /dev/pts/ptmx && echo chmod'
                assert_eq 0 "$RC" "--console=$c: $ERR"
                assert_eq "$expected" "$(tr -d '\r' <<<"$OUT")" "--console=$c"
        done
        # the instance is still the container's own, not the host's
        berth "${B[@]}" -M "$(machine)" -D "$ROOT" -U /bin/sh -c 'ls /dev/pts | xargs'
        assert_eq "ptmx" "$OUT" "a fresh instance"
        # without a user namespace, as before
        berth "${B[@]}" -M "$(machine)" -D "$ROOT" /bin/stat -c "%n %u:%g %a" /dev/pts /dev/pts/ptmx /dev/ptmx
        assert_eq "${expected%$'\n'chmod}" "$OUT" "without -U"
}

# The pty berthctl opens for a command on a -U machine is one of the guest's devpts, owned by the
# guest's root and tty group, and the guest's root can hand it on (as login does). A user's shell
# gets it as the user the guest knows (not the range's host id, which the guest sees as nobody).
test_berthctl_pty_with_userns() {
        local name
        [ -x "${BERTHCTL:-}" ] || skip "\$BERTHCTL is not set to the berthctl binary (run through 'meson test')"
        name=$(machine)
        make_tiny_tree "$ROOT"
        start_bg --loud "$name" "$ROOT" --console=pipe -U /bin/sh -c ': >/root/up; exec sleep 100'
        wait_for test -e "$ROOT/root/up" || fail "did not start: $(cat "$T/$name.log")"
        run "$BERTHCTL" exec -t "$name" /bin/sh -c \
                't=$(tty); stat -c "%u:%g %a" "$t" /dev/pts/ptmx; chown 1:5 "$t" && stat -c %u:%g "$t"'
        assert_eq 0 "$RC" "berthctl exec -t: $ERR"
        assert_eq "0:5 620
0:0 666
1:5" "$(tr -d '\r' <<<"$OUT")"
        run "$BERTHCTL" shell -t "tester@$name" /bin/stat -L -c "%u:%g %a" /proc/self/fd/0
        assert_eq 0 "$RC" "berthctl shell -t: $ERR"
        assert_eq "1000:5 620" "$(tr -d '\r' <<<"$OUT")" "the pty of tester's shell"
        stop_bg "$BG_PID"
}

test_cgroup_is_delegated_to_container_root() {
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -M "$(machine)" -D "$ROOT" -U /bin/sh -c '
                stat -c "%n %u" /sys/fs/cgroup /sys/fs/cgroup/cgroup.procs /sys/fs/cgroup/cgroup.subtree_control
                mkdir /sys/fs/cgroup/sub && echo $$ > /sys/fs/cgroup/sub/cgroup.procs && echo moved'
        if [ "$RC" != 0 ] && [[ "$ERR" == *"no cgroup2"* ]]; then
                skip "the host has no cgroup2 hierarchy"
        fi
        assert_eq 0 "$RC"
        assert_eq "/sys/fs/cgroup 0
/sys/fs/cgroup/cgroup.procs 0
/sys/fs/cgroup/cgroup.subtree_control 0
moved" "$OUT"
}

# ---- the root's variants: -x and --volatile= ----

# The guest's root owns its root directory, writes where the mode lets it, and nothing reaches
# the tree: -x and --volatile=overlay keep writes on a tmpfs upper layer over the tree (mounted
# idmapped), --volatile=yes gives a tmpfs root with the tree's /usr, --volatile=state a tmpfs /var.
test_ephemeral_and_volatile_with_userns() {
        local before v name
        name=$(machine)
        make_tiny_tree "$ROOT"
        before=$(owners "$ROOT")
        for v in --ephemeral --volatile=overlay; do
                berth "${B[@]}" -M "$name" -D "$ROOT" -U "$v" /bin/sh -c '
                        cat /proc/self/uid_map
                        stat -c "%n %u:%g" / /root /etc/os-release
                        touch /root/new /etc/new && mkdir /newdir && chown 1000:1000 /newdir && echo x >> /etc/os-release &&
                        rm /etc/inittab && stat -c "%n %u:%g" /root/new /newdir'
                assert_eq 0 "$RC" "-U $v"
                [ "$(map_of "$OUT")" != "0 0 4294967295" ] || fail "-U $v: no user namespace"
                assert_eq "/ 0:0
/root 0:0
/etc/os-release 0:0
/root/new 0:0
/newdir 1000:1000" "$(printf '%s\n' "$OUT" | tail -n +2)" "-U $v"
        done
        berth "${B[@]}" -M "$name" -D "$ROOT" -U --volatile=yes /usr/bin/payload stat /
        assert_eq 0 "$RC"
        assert_contains "$OUT" "uid=0 gid=0"
        berth "${B[@]}" -M "$name" -D "$ROOT" -U --volatile=yes /usr/bin/payload stat /usr/bin/payload
        assert_contains "$OUT" "uid=0 gid=0"
        for p in /etc/new /var/new /root/new /newfile; do
                berth "${B[@]}" -M "$name" -D "$ROOT" -U --volatile=yes /usr/bin/payload touch "$p"
                assert_eq 0 "$RC" "--volatile=yes: the guest's root writes $p"
        done
        berth "${B[@]}" -M "$name" -D "$ROOT" -U --volatile=yes /usr/bin/payload touch /usr/new
        assert_contains "$OUT" "errno=EROFS"
        berth "${B[@]}" -M "$name" -D "$ROOT" -U --volatile=state /bin/sh -c \
                'stat -c "%n %u:%g" / /var; touch /var/new && echo wrote; touch /root/new'
        assert_eq "/ 0:0
/var 0:0
wrote" "$OUT" "--volatile=state"
        assert_contains "$ERR" "Read-only file system"
        assert_eq "$before" "$(owners "$ROOT")" "the tree after -x and --volatile= runs"
        [ ! -e "$ROOT/root/new" ] && [ -e "$ROOT/etc/inittab" ] || fail "a write of the guest reached the tree"
        assert_no_leftovers "$name"
}

# A tree shifted to its range (ownership off, nothing idmapped): the upper layers take the
# shifted owner, and berth's temporary overlay and bind directories belong to the range's root.
test_ephemeral_on_a_shifted_tree() {
        local name base
        name=$(machine)
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -M "$name" -D "$ROOT" -U /bin/cat /proc/self/uid_map
        base=$(map_of "$OUT" | awk '{ print $2 }')
        in_window "$base" || fail "no range: $OUT"
        chown -R "$base:$base" "$ROOT"
        mkdir "$T/lower"
        echo low >"$T/lower/f"
        berth "${B[@]}" -M "$name" -D "$ROOT" -U -x --overlay="$T/lower::/ovl" --bind=:/scratch /bin/sh -c '
                cat /proc/self/uid_map
                stat -c "%n %u:%g" / /root /ovl /scratch
                touch /root/new /ovl/new /scratch/new && echo wrote'
        assert_eq 0 "$RC"
        assert_eq "0 $base 65536" "$(map_of "$OUT")" "the shifted tree keeps its range"
        assert_eq "/ 0:0
/root 0:0
/ovl 0:0
/scratch 0:0
wrote" "$(printf '%s\n' "$OUT" | tail -n +2)"
        [ ! -e "$ROOT/root/new" ] || fail "-x wrote to the tree"
        assert_eq "$base:$base" "$(stat -c %u:%g "$ROOT/root")" "the tree stays shifted"
}

# ---- --overlay= ----

# With the tree mounted idmapped, so are the overlay's host layers: the guest sees the host's
# owners as without -U, and what it writes lands in the upper directory with the ids it has
# without -U (whiteouts too); berth's work directory goes at exit.
test_overlay_with_userns() {
        local name
        name=$(machine)
        make_tiny_tree "$ROOT"
        mkdir -p "$T/lo" "$T/lo2" "$T/up" "$ROOT/srv/up"
        echo low >"$T/lo/f"
        echo low2 >"$T/lo2/g"
        chown 1000:1000 "$T/lo2/g"
        berth "${B[@]}" -M "$name" -D "$ROOT" -U --overlay="$T/lo:$T/lo2:$T/up:/mnt" /bin/sh -c '
                stat -c "%n %u:%g" /mnt /mnt/f /mnt/g
                echo new > /mnt/new && mkdir /mnt/d && echo more >> /mnt/f && touch /mnt/u &&
                chown 1000:1000 /mnt/u && rm /mnt/g && echo wrote'
        assert_eq 0 "$RC"
        assert_eq "/mnt 0:0
/mnt/f 0:0
/mnt/g 1000:1000
wrote" "$OUT"
        assert_eq "0:0 ./d
0:0 ./f
0:0 ./new
1000:1000 ./u" "$(cd "$T/up" && find . -mindepth 1 -type f -o -mindepth 1 -type d | sort | xargs stat -c '%u:%g %n')" \
                "the upper directory on the host"
        [ -c "$T/up/g" ] || fail "no whiteout for the removed file"
        assert_eq "low" "$(cat "$T/lo/f")" "the lower layer"
        assert_eq 1000:1000 "$(stat -c %u:%g "$T/lo2/g")" "the lower layer's owner"
        [ -z "$(find "$T" -maxdepth 1 -name '.#*berth-work*')" ] || fail "the work directory is left: $(ls -a "$T")"
        # an empty upper (berth's temporary directory), a read-only overlay, an upper in the tree
        berth "${B[@]}" -M "$name" -D "$ROOT" -U --overlay="$T/lo::/a" --overlay-ro="$T/lo:$T/lo2:/b" \
                --overlay="$T/lo:+/srv/up:/c" /bin/sh -c '
                touch /a/new && echo a; touch /b/new || echo b; stat -c "%n %u:%g" /b/g; touch /c/new && echo c'
        assert_eq "a
b
/b/g 1000:1000
c" "$OUT"
        assert_eq 0:0 "$(stat -c %u:%g "$ROOT/srv/up/new")" "the upper directory in the tree"
        assert_no_leftovers "$name"
}

# ---- bind mounts and their ID mapping (nspawn's idmap, rootidmap, owneridmap, noidmap) ----

test_bind_idmap_options() {
        local name
        name=$(machine)
        make_tiny_tree "$ROOT"
        mkdir "$T/src" "$T/src1000" "$ROOT/home/u1000"
        echo hi >"$T/src/f"
        chown 1000:1000 "$T/src1000" "$ROOT/home/u1000"
        # noidmap (the default): the host's ids as they are, root's files are nobody's
        berth "${B[@]}" -M "$name" -D "$ROOT" -U --bind="$T/src:/mnt" --bind-ro="$T/src:/ro:noidmap" \
                /bin/sh -c 'stat -c "%n %u:%g" /mnt/f /ro/f; touch /mnt/n || echo denied'
        assert_eq "/mnt/f 65534:65534
/ro/f 65534:65534
denied" "$OUT" "noidmap"
        # idmap: host id z is z inside, and what the guest writes is stored as z
        berth "${B[@]}" -M "$name" -D "$ROOT" -U --bind="$T/src:/mnt:idmap" --bind="$T/src1000:/u:rbind,idmap" \
                /bin/sh -c 'stat -c "%n %u:%g" /mnt/f /u; touch /mnt/n /u/n && chown 1000:1000 /mnt/n && echo wrote'
        assert_eq "/mnt/f 0:0
/u 1000:1000
wrote" "$OUT" "idmap"
        assert_eq 1000:1000 "$(stat -c %u:%g "$T/src/n")" "idmap: the guest's 1000 on the host"
        assert_eq 0:0 "$(stat -c %u:%g "$T/src1000/n")" "idmap: the guest's root on the host"
        rm "$T/src/n" "$T/src1000/n"
        # rootidmap: the source's owner is the guest's root, nobody else is mapped (groups through the
        # same map, so the group of the owner's number only)
        chgrp 1001 "$T/src"
        berth "${B[@]}" -M "$name" -D "$ROOT" -U --bind="$T/src1000:/u:rootidmap" --bind-ro="$T/src:/ro:rootidmap" \
                /bin/sh -c 'stat -c "%n %u:%g" /u /ro /ro/f; touch /u/n && echo wrote; touch /ro/n || echo ro'
        assert_eq "/u 0:0
/ro 0:65534
/ro/f 0:0
wrote
ro" "$OUT" "rootidmap"
        assert_eq 1000:1000 "$(stat -c %u:%g "$T/src1000/n")" "rootidmap: the guest's root writes as the owner"
        # owneridmap: the source's owner is the destination's owner inside, who writes as the owner
        chgrp 0 "$T/src"
        berth "${B[@]}" -M "$name" -D "$ROOT" -U --bind="$T/src:/home/u1000:owneridmap" --user=1000 /bin/sh -c \
                'stat -c "%n %u:%g" /home/u1000 /home/u1000/f; touch /home/u1000/n && echo wrote'
        assert_eq "/home/u1000 1000:1000
/home/u1000/f 1000:1000
wrote" "$OUT" "owneridmap"
        assert_eq 0:0 "$(stat -c %u:%g "$T/src/n")" "owneridmap: the guest's 1000 wrote as the source's owner"
        # the settings file's Bind= takes the same options
        printf '[Files]\nBind=%s:/mnt:idmap\nBindReadOnly=%s:/u:rootidmap\n' "$T/src" "$T/src1000" >"$ROOT.nspawn"
        berth "${B[@]}" --settings=trusted -D "$ROOT" -U /bin/stat -c "%n %u:%g" /mnt/f /u
        assert_eq "/mnt/f 0:0
/u 0:0" "$OUT" "Bind= and BindReadOnly= with ID mapping"
        assert_no_leftovers "$name"
}

# ---- what container root can no longer do ----

# --link-journal=host binds the host's /var/log/journal/ID: with -U it must be the guest root's
# inside (its journald writes there) and what the guest writes must be host root's, as the rest
# of the host's journal.
test_link_journal_host_with_userns() {
        local name id mode
        name=$(machine)
        id=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
        make_tiny_tree "$ROOT"
        echo "$id" >"$ROOT/etc/machine-id"
        mkdir -p "/var/log/journal/$id"
        # shellcheck disable=SC2064 # $id now: the host's directory goes also when the case fails
        trap "rm -rf '/var/log/journal/$id'" EXIT
        # (the host's systemd-journal group is not in the container's range)
        chown root:root "/var/log/journal/$id"
        for mode in no yes pick; do
                berth "${B[@]}" -M "$name" -D "$ROOT" --private-users="$mode" --link-journal=host /bin/sh -c \
                        "stat -c '%u:%g' /var/log/journal/$id; touch /var/log/journal/$id/guest && echo wrote"
                assert_eq 0 "$RC" "--private-users=$mode: $ERR"
                assert_eq "0:0
wrote" "$OUT" "--private-users=$mode"
                assert_eq 0 "$(stat -c %u "/var/log/journal/$id/guest")" "--private-users=$mode: host root's"
                rm "/var/log/journal/$id/guest"
        done
        assert_eq 0:0 "$(stat -c %u:%g "/var/log/journal/$id")" "the host's directory is unchanged"
}

# --link-journal=guest makes the guest's journal directory in its tree: with -U it must be the
# guest root's inside (its journald writes there), in chown mode (the tree shifted) as in map mode.
test_link_journal_guest_with_userns() {
        local name id mode
        name=$(machine)
        for mode in chown map; do
                id=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
                rm -rf "$ROOT"
                make_tiny_tree "$ROOT"
                mkdir -p "$ROOT/var/log/journal"
                echo "$id" >"$ROOT/etc/machine-id"
                # shellcheck disable=SC2064 # $id now: the host's link goes also when the case fails
                trap "rm -f '/var/log/journal/$id'" EXIT
                berth "${B[@]}" -M "$name" -D "$ROOT" -U --private-users-ownership="$mode" --link-journal=guest \
                        /bin/sh -c "stat -c '%u:%g' /var/log/journal/$id; touch /var/log/journal/$id/guest && echo wrote"
                assert_eq 0 "$RC" "$mode: $ERR"
                assert_eq "0:0
wrote" "$OUT" "$mode"
                [ -L "/var/log/journal/$id" ] || fail "$mode: no link on the host"
                rm -f "/var/log/journal/$id"
                [ "$mode" = chown ] || continue
                # a shifted tree whose journal directory a start without -U made as host root
                rm -rf "$ROOT/var/log/journal/$id"
                mkdir -m 02755 "$ROOT/var/log/journal/$id"
                berth "${B[@]}" -M "$name" -D "$ROOT" -U --link-journal=guest \
                        /bin/sh -c "touch /var/log/journal/$id/guest2 && echo wrote"
                assert_eq 0 "$RC" "a root-owned journal directory: $ERR"
                assert_eq wrote "$OUT"
                rm -f "/var/log/journal/$id"
        done
}

# The host's network namespace is not the container's: its root cannot bind privileged ports
# there, and does not get the capability that says it could (as with nspawn)
test_no_net_bind_service_on_the_hosts_network() {
        local name
        name=$(machine)
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -M "$name" -D "$ROOT" /usr/bin/payload hascap CAP_NET_BIND_SERVICE
        assert_eq 0 "$RC" "without -U: $OUT"
        berth "${B[@]}" -M "$name" -D "$ROOT" -U /usr/bin/payload hascap CAP_NET_BIND_SERVICE
        assert_eq "CapBnd=0 CapEff=0 CapPrm=0" "$OUT" "-U"
        berth "${B[@]}" -M "$name" -D "$ROOT" --private-users=identity /usr/bin/payload hascap CAP_NET_BIND_SERVICE
        assert_eq 1 "$RC" "--private-users=identity: $OUT"
        berth "${B[@]}" -M "$name" -D "$ROOT" -U --private-network /usr/bin/payload hascap CAP_NET_BIND_SERVICE
        assert_eq 0 "$RC" "-U with a network of its own: $OUT"
        berth "${B[@]}" -M "$name" -D "$ROOT" -U --capability=CAP_NET_BIND_SERVICE /usr/bin/payload hascap CAP_NET_BIND_SERVICE
        assert_eq 0 "$RC" "-U, asked for: $OUT"
}

test_hostile_actions_fail_in_userns() {
        local core
        make_tiny_tree "$ROOT"
        core=$(cat /proc/sys/kernel/core_pattern)
        berth "${B[@]}" -M "$(machine)" -D "$ROOT" -U /bin/sh -c '
                mkdir -p /run/p /run/c
                grep CapEff /proc/self/status
                mount -t proc proc /run/p 2>/dev/null && echo FRESH-PROC
                unshare -m sh -c "mount -t proc proc /run/p 2>/dev/null && echo FRESH-PROC-UNSHARED
                        echo \"|/bin/evil\" > /run/p/sys/kernel/core_pattern 2>/dev/null && echo CORE-WRITTEN"
                echo "|/bin/evil" > /proc/sys/kernel/core_pattern 2>/dev/null && echo CORE-WRITTEN
                mknod /tmp/sda b 8 0 2>/dev/null && echo MKNOD
                mknod /tmp/mem c 1 1 2>/dev/null && head -c1 /tmp/mem >/dev/null 2>&1 && echo MEM-READ
                mount -o remount,rw /sys 2>/dev/null && echo SYS-RW
                mount -o remount,bind,rw /sys 2>/dev/null && echo SYS-RW-BIND
                mount -o remount,bind,rw /proc/sys 2>/dev/null && echo PROC-SYS-RW
                umount -l /proc/kcore 2>/dev/null && echo KCORE-UNMASKED
                mount -t cgroup -o none,name=evil cgroup /run/c 2>/dev/null && echo CGROUP1 &&
                        echo /bin/evil > /run/c/release_agent 2>/dev/null && echo RELEASE-AGENT
                echo 1 > /sys/fs/cgroup/release_agent 2>/dev/null && echo RELEASE-AGENT
                echo c > /proc/sysrq-trigger 2>/dev/null && echo SYSRQ
                case "$(payload syscall init_module 2>/dev/null)" in ok*) echo MODULE ;; esac
                echo done'
        assert_eq 0 "$RC"
        # root inside has its capabilities (in its namespace; CAP_NET_BIND_SERVICE not on the
        # host's network)...
        assert_contains "$OUT" "CapEff:	00000000fdecabff"
        # ...and none of this worked
        assert_eq "done" "$(printf '%s\n' "$OUT" | tail -n +2)"
        assert_eq "$core" "$(cat /proc/sys/kernel/core_pattern)" "the host's core_pattern"
        [ ! -e "$ROOT/tmp/sda" ] || fail "a device node reached the tree"
        assert_no_leftovers "$(machine)"
}

# --ambient-capability= with -U: the container's set is the one in its user namespace, where the
# kernel gives a full bounding set whatever the host took from berth; a capability of nspawn's
# default set that the host's bounding set lacks is still the container's, and can be ambient
test_ambient_capability_with_userns() {
        make_tiny_tree "$ROOT"
        grep -q '^nobody:' "$ROOT/etc/passwd" || skip "no user nobody in the tiny tree"
        run setpriv --bounding-set=-sys_resource "$BERTH" "${B[@]}" -M "$(machine)" -D "$ROOT" -U -u nobody \
                --ambient-capability=CAP_SYS_RESOURCE /usr/bin/payload caps
        assert_eq 0 "$RC" "$ERR"
        assert_contains "$OUT" "CapAmb=0000000001000000"
        assert_contains "$OUT" "CapEff=0000000001000000"
        assert_no_leftovers "$(machine)"
}

# binfmt_misc is per user namespace: what the container registers is its own
test_binfmt_misc_registers_nothing_on_the_host() {
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -M "$(machine)" -D "$ROOT" -U /bin/sh -c '
                mkdir -p /run/b
                if mount -t binfmt_misc none /run/b 2>/dev/null; then
                        echo ":berthtest$$:E::berthtest::/bin/sh:" > /run/b/register 2>/dev/null && echo registered
                        ls /run/b
                fi'
        assert_eq 0 "$RC"
        mkdir -p "$T/binfmt"
        mount -t binfmt_misc none "$T/binfmt" || skip "cannot mount binfmt_misc on the host to look"
        local host
        host=$(ls "$T/binfmt")
        umount "$T/binfmt"
        assert_not_contains "$host" berthtest
}

# ---- --bind-user= ----

# host_user WORD: a user (and its private group) of the host for this case, made now, removed when
# the case ends; prints its name
host_user() {
        local u
        u=$(unique_short_name "$1")
        useradd --create-home --user-group --shell=/bin/sh "$u" >/dev/null || skip "cannot add user $u (useradd)"
        echo "$u"
}

# json_field TEXT FIELD: FIELD of the JSON object TEXT, or "<absent>"; fails on malformed JSON
json_field() {
        python3 -c 'import json, sys; print(json.loads(sys.argv[1]).get(sys.argv[2], "<absent>"))' "$1" "$2"
}

test_bind_user() {
        local a b uid_a gid_a uid_b map
        a=$(host_user bua)
        b=$(host_user bub)
        # shellcheck disable=SC2064 # the names now
        trap "userdel -r -f $a >/dev/null 2>&1; userdel -r -f $b >/dev/null 2>&1; true" EXIT
        uid_a=$(id -u "$a")
        gid_a=$(id -g "$a")
        uid_b=$(id -u "$b")
        echo hello >"/home/$a/foo"
        chown "$a:$a" "/home/$a/foo"
        make_tiny_tree "$ROOT"
        # the tree uses 60514 already: the first user gets the next free id
        echo "taken:x:60514:60514::/:/bin/sh" >>"$ROOT/etc/passwd"

        berth "${B[@]}" -M "$(machine)" -D "$ROOT" -U --bind-user="$a" --bind-user="$b" /bin/sh -c "
                cat /proc/self/uid_map; echo ==; cat /proc/self/gid_map; echo ==
                stat -c '%u:%g %s' /run/host/home/$a/foo; cat /run/host/home/$a/foo
                stat -c '%u:%g' /run/host/home/$b
                echo ==; cat /run/host/userdb/$a.user; echo ==; cat /run/host/userdb/$a.group
                echo ==; for l in 60515.user 60515.group 60516.user; do readlink /run/host/userdb/\$l; done
                echo ==; stat -c '%u:%g %a' /run/host/userdb/$a.user /run/host/home /run/host/userdb"
        assert_eq 0 "$RC" "-U --bind-user= runs"
        map=$(awk -v RS='==\n' 'NR == 1' <<<"$OUT" | awk '{ print $1, $2, $3 }')
        # the range around the users' ids, each of them mapped to its host id
        assert_contains "$map" "60515 $uid_a 1"
        assert_contains "$map" "60516 $uid_b 1"
        assert_eq 5 "$(wc -l <<<"$map")" "uid_map: range, user, user, range: $map"
        assert_contains "$(awk -v RS='==\n' 'NR == 2' <<<"$OUT" | awk '{ print $1, $2, $3 }')" "60515 $gid_a 1"
        local files user group
        files=$(awk -v RS='==\n' 'NR == 3' <<<"$OUT")
        assert_eq "60515:60515 6
hello
60516:60516" "$files" "the homes are the host's, the users' own inside"
        user=$(awk -v RS='==\n' 'NR == 4' <<<"$OUT")
        assert_eq "$a" "$(json_field "$user" userName)"
        assert_eq 60515 "$(json_field "$user" uid)"
        assert_eq 60515 "$(json_field "$user" gid)"
        assert_eq "/run/host/home/$a" "$(json_field "$user" homeDirectory)"
        assert_eq "<absent>" "$(json_field "$user" shell)" "no shell without --bind-user-shell"
        group=$(awk -v RS='==\n' 'NR == 5' <<<"$OUT")
        assert_eq "$a 60515" "$(json_field "$group" groupName) $(json_field "$group" gid)"
        assert_eq "$a.user
$a.group
$b.user" "$(awk -v RS='==\n' 'NR == 6' <<<"$OUT" | sed '/^$/d')" "the records by id"
        assert_eq "0:0 644
0:0 755
0:0 755" "$(awk -v RS='==\n' 'NR == 7' <<<"$OUT" | sed '/^$/d')" "the container's root owns them"

        # what the user makes inside is its own on the host; --user= finds it by name, as nspawn's
        # does through the guest's nss-systemd
        berth "${B[@]}" -M "$(machine)" -D "$ROOT" -U --bind-user="$a" --user="$a" /bin/sh -c \
                'id -u; pwd; echo "$HOME"; echo made >inside'
        assert_eq 0 "$RC"
        assert_eq "60515
/run/host/home/$a
/run/host/home/$a" "$OUT"
        assert_eq "$uid_a:$gid_a" "$(stat -c %u:%g "/home/$a/inside")" "a file of the user, on the host"

        # --bind-user-shell=: the host's shell, or one given
        berth "${B[@]}" -M "$(machine)" -D "$ROOT" -U --bind-user="$a" --bind-user-shell=yes \
                /bin/cat "/run/host/userdb/$a.user"
        assert_eq 0 "$RC"
        assert_eq /bin/sh "$(json_field "$OUT" shell)"
        berth "${B[@]}" -M "$(machine)" -D "$ROOT" -U --bind-user="$a" --bind-user-shell=/bin/ash \
                /bin/cat "/run/host/userdb/$a.user"
        assert_eq /bin/ash "$(json_field "$OUT" shell)"
        assert_no_leftovers "$(machine)"
}

# A trusted settings file binds users as the option does; one next to the tree does not.
test_bind_user_settings_file() {
        local a
        a=$(host_user bus)
        # shellcheck disable=SC2064
        trap "userdel -r -f $a >/dev/null 2>&1; true" EXIT
        make_tiny_tree "$ROOT"
        mkdir -p /run/systemd/nspawn
        printf '[Files]\nBindUser=%s\nBindUserShell=/bin/ash\n' "$a" >"/run/systemd/nspawn/$(machine).nspawn"
        berth "${B[@]}" -M "$(machine)" -D "$ROOT" -U /bin/cat "/run/host/userdb/$a.user"
        rm -f "/run/systemd/nspawn/$(machine).nspawn"
        assert_eq 0 "$RC" "BindUser= in /run/systemd/nspawn"
        assert_eq "$a /bin/ash" "$(json_field "$OUT" userName) $(json_field "$OUT" shell)"
        printf '[Files]\nBindUser=%s\n' "$a" >"$T/$ROOT_NAME.nspawn"
        berth "${B[@]}" -D "$ROOT" -U /bin/sh -c 'ls /run/host/userdb 2>&1; true'
        assert_eq 0 "$RC"
        assert_contains "$OUT" "No such file"
        assert_contains "$ERR" "Ignoring BindUser= in untrusted"
}

test_bind_user_bad_input() {
        local a name before
        a=$(host_user bux)
        # shellcheck disable=SC2064
        trap "userdel -r -f $a >/dev/null 2>&1; true" EXIT
        name=$(machine)
        make_tiny_tree "$ROOT"
        before=$(owners "$ROOT")
        berth "${B[@]}" -M "$name" -D "$ROOT" --bind-user="$a" /bin/true
        assert_eq 1 "$RC" "without -U"
        assert_one_line_error "without -U"
        assert_contains "$ERR" "add -U"
        berth "${B[@]}" -M "$name" -D "$ROOT" -U --bind-user="${a}nope" /bin/true
        assert_eq 1 "$RC" "unknown user"
        assert_one_line_error "unknown user"
        assert_contains "$ERR" "no such user"
        berth "${B[@]}" -M "$name" -D "$ROOT" -U --bind-user=root /bin/true
        assert_eq 1 "$RC" "root"
        assert_one_line_error "root"
        assert_contains "$ERR" "root cannot be mapped"
        berth "${B[@]}" -M "$name" -D "$ROOT" -U --bind-user=../etc /bin/true
        assert_eq 1 "$RC" "a path"
        assert_one_line_error "a path"
        berth "${B[@]}" -M "$name" -D "$ROOT" -U --bind-user="$a" --bind-user-shell=bad /bin/true
        assert_eq 1 "$RC" "--bind-user-shell=bad"
        assert_one_line_error "--bind-user-shell=bad"
        # the host's uid inside the range (identity maps 0..65535 to themselves)
        berth "${B[@]}" -M "$name" -D "$ROOT" --private-users=identity --bind-user="$a" /bin/true
        assert_eq 1 "$RC" "identity"
        assert_one_line_error "identity"
        assert_contains "$ERR" "in the container's range"
        # a user or group of that name in the tree
        cp "$ROOT/etc/passwd" "$T/passwd"
        echo "$a:x:1000:1000::/:/bin/sh" >>"$ROOT/etc/passwd"
        before=$(owners "$ROOT")
        berth "${B[@]}" -M "$name" -D "$ROOT" -U --bind-user="$a" /bin/true
        assert_eq 1 "$RC" "name in the tree's passwd"
        assert_one_line_error "name in the tree's passwd"
        assert_contains "$ERR" "has a user of that name"
        cp "$T/passwd" "$ROOT/etc/passwd"
        echo "$a:x:1000:" >>"$ROOT/etc/group"
        berth "${B[@]}" -M "$name" -D "$ROOT" -U --bind-user="$a" /bin/true
        assert_eq 1 "$RC" "name in the tree's group"
        assert_one_line_error "name in the tree's group"
        assert_contains "$ERR" "has a group of that name"
        assert_no_leftovers "$name"
        assert_eq "$before" "$(owners "$ROOT")" "the tree is untouched"
}

# ---- bad input: one line, nothing left behind ----

test_bad_input() {
        local name v before
        name=$(machine)
        make_tiny_tree "$ROOT"
        before=$(owners "$ROOT")
        for v in --private-users= --private-users=maybe --private-users=0x80000 --private-users=5:0 \
                --private-users=4294967295 --private-users=1:2:3 \
                --private-users-ownership=sideways; do
                berth "${B[@]}" -M "$name" -D "$ROOT" "$v" /bin/true
                assert_eq 1 "$RC" "$v"
                assert_one_line_error "$v"
                assert_contains "$ERR" "--private-users"
        done
        # ranges that overlap the host's users, and a booted guest with too few ids
        berth "${B[@]}" -M "$name" -D "$ROOT" --private-users=0:65536 /bin/true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "in use on the host"
        berth "${B[@]}" -M "$name" -D "$ROOT" --private-users=1879048192:1000 -b
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "need 65536"
        # a bind source that cannot be idmapped: nothing made in the tree
        berth "${B[@]}" -M "$name" -D "$ROOT" -U --bind-ro=/sys/kernel:/mnt:norbind,idmap /bin/true
        assert_eq 1 "$RC" "idmap of sysfs"
        assert_one_line_error "idmap of sysfs"
        assert_contains "$ERR" "cannot be mounted idmapped: drop 'idmap'"
        berth "${B[@]}" -M "$name" -D "$ROOT" -U --bind=/tmp:/mnt:upmap /bin/true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "owneridmap"
        assert_no_leftovers "$name"
        assert_eq "$before" "$(owners "$ROOT")" "the tree is untouched"
}

test_range_of_a_running_machine_is_refused() {
        local a base
        a=$(machine a)
        make_tiny_tree "$T/a"
        make_tiny_tree "$T/b"
        start_bg --loud "$a" "$T/a" --console=pipe -U /bin/sh -c 'cat /proc/self/uid_map > /root/map; exec sleep 100'
        wait_for test -s "$T/a/root/map" || fail "did not start: $(cat "$T/$a.log")"
        base=$(awk '{ print $2 }' "$T/a/root/map")
        local before
        before=$(owners "$T/b")
        berth "${B[@]}" -M "$(machine b)" -D "$T/b" --private-users="$((base + 100)):10" /bin/true
        stop_bg "$BG_PID"
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "in use"
        assert_eq "$before" "$(owners "$T/b")" "the refused tree is untouched"
        assert_no_leftovers "$(machine b)"
}

test_untrusted_settings_file_cannot_weaken() {
        # the file next to the tree is NAME.nspawn for the machine name the tree's name gives
        make_tiny_tree "$ROOT"
        printf '[Exec]\nPrivateUsers=no\n' >"$ROOT.nspawn"
        berth "${B[@]}" -D "$ROOT" -U /bin/cat /proc/self/uid_map
        assert_eq 0 "$RC"
        [ "$(map_of "$OUT")" != "0 0 4294967295" ] || fail "the command line's -U lost to the file"
        # the file alone: its pick counts from an untrusted place, its no does not
        printf '[Exec]\nPrivateUsers=pick\n' >"$ROOT.nspawn"
        berth "${B[@]}" -D "$ROOT" /bin/cat /proc/self/uid_map
        assert_eq 0 "$RC"
        in_window "$(map_of "$OUT" | awk '{ print $2 }')" || fail "PrivateUsers=pick ignored: $OUT"
        printf '[Exec]\nPrivateUsers=identity\n' >"$ROOT.nspawn"
        berth --console=pipe -D "$ROOT" /bin/cat /proc/self/uid_map
        assert_eq 0 "$RC"
        assert_contains "$ERR" "Ignoring PrivateUsers= in untrusted"
        assert_eq "0 0 4294967295" "$(map_of "$OUT")"
}

# ---- namespaces the user namespace owns ----

# With a private network, container root configures its own links (networkd in a -U guest must
# bring host0 up and give it addresses): the network namespace belongs to the user namespace. The
# host's network stays out of reach.
test_private_network_belongs_to_container_root() {
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -M "$(machine)" -D "$ROOT" -U --private-network /bin/sh -c \
                'ip link set lo up && echo lo-up; ip link add in0 type veth peer name in1 && echo veth-made;
                 ip addr add 10.1.2.3/24 dev in0 && echo addr-set'
        assert_eq 0 "$RC" "$ERR"
        assert_eq "lo-up
veth-made
addr-set" "$OUT"
        berth "${B[@]}" -M "$(machine)" -D "$ROOT" -U /bin/sh -c 'ip link set lo down && echo HOST-LO-DOWN; true'
        assert_eq 0 "$RC"
        assert_not_contains "$OUT" HOST-LO-DOWN
        grep -q "UP" <<<"$(ip link show lo)" || fail "the host's lo went down"
}

# ---- boot ----

# a booted OS as plain root gets one line saying so, unless -q, -U or --private-users=no
test_boot_without_userns_warns() {
        local name opts want
        name=$(machine)
        make_tiny_tree "$ROOT"
        for opts in "" "-q" "-U" "--private-users=no"; do
                start_bg --loud "$name" "$ROOT" --console=pipe ${opts:+"$opts"} -b
                wait_for grep -q booted "$T/$name.log" || fail "busybox init did not run ($opts): $(cat "$T/$name.log")"
                stop_bg "$BG_PID"
                want=0
                [ -n "$opts" ] || want=1
                assert_eq "$want" "$(grep -c "boots without a user namespace: its root is the host's root. Pass -U" "$T/$name.log" || true)" \
                        "the warning with '$opts'"
        done
}

# ---- the host's configuration: berth.conf ----

# a user namespace for every machine from berth.conf ($BERTH_CONF stands for /etc/berth/berth.conf,
# which other runs on this host would see); the command line and the settings file win over it
test_host_config_gives_every_machine_a_user_namespace() {
        make_tiny_tree "$ROOT"
        mkdir -p "$T/etc"
        printf '# the site says\n[Exec]\nPrivateUsers=pick\n' >"$T/berth.conf"
        BERTH_CONF=$T/berth.conf berth "${B[@]}" -M "$(machine)" -D "$ROOT" /bin/sh -c \
                'cat /proc/self/uid_map; /usr/bin/payload stat /etc/passwd'
        assert_eq 0 "$RC"
        assert_match "$(map_of "$OUT")" "^0 [1-9][0-9]* 65536$"
        # pick's ownership default, auto: the tree is idmapped
        assert_contains "$OUT" "uid=0 gid=0"
        # the command line wins
        BERTH_CONF=$T/berth.conf berth "${B[@]}" -M "$(machine)" -D "$ROOT" --private-users=no /bin/cat /proc/self/uid_map
        assert_eq "0 0 4294967295" "$(map_of "$OUT")" "--private-users=no over berth.conf"
        # a trusted settings file wins
        printf '[Exec]\nPrivateUsers=no\n' >"$T/etc/$(machine trusted).berth"
        BERTH_CONF=$T/berth.conf BERTH_SETTINGS_PATH=$T/etc berth "${B[@]}" -M "$(machine trusted)" -D "$ROOT" \
                /bin/cat /proc/self/uid_map
        assert_eq "0 0 4294967295" "$(map_of "$OUT")" "a trusted settings file's PrivateUsers=no"
        # an untrusted one cannot take the user namespace away
        printf '[Exec]\nPrivateUsers=no\n' >"$T/$(machine untrusted).nspawn"
        mkdir -p "$T/$(machine untrusted)"
        cp -a "$ROOT/." "$T/$(machine untrusted)/"
        BERTH_CONF=$T/berth.conf BERTH_SETTINGS_PATH='' berth "${B[@]}" -D "$T/$(machine untrusted)" /bin/cat /proc/self/uid_map
        assert_eq 0 "$RC"
        assert_match "$(map_of "$OUT")" "^0 [1-9][0-9]* 65536$"
        assert_contains "$ERR" "Ignoring PrivateUsers="
        # ownership off from the file: the tree as it is on disk
        printf '[Exec]\nPrivateUsers=pick\n[Files]\nPrivateUsersOwnership=off\n' >"$T/berth.conf"
        BERTH_CONF=$T/berth.conf berth "${B[@]}" -M "$(machine)" -D "$ROOT" /usr/bin/payload stat /etc/passwd
        assert_eq 0 "$RC"
        assert_contains "$OUT" "uid=65534 gid=65534"
        # none (set empty) and an empty file: nspawn's default
        for conf in "" "$T/empty.conf"; do
                : >"$T/empty.conf"
                BERTH_CONF=$conf berth "${B[@]}" -M "$(machine)" -D "$ROOT" /bin/cat /proc/self/uid_map
                assert_eq "0 0 4294967295" "$(map_of "$OUT")" "BERTH_CONF='$conf'"
        done
}

test_host_config_bad_input() {
        local conf
        make_tiny_tree "$ROOT"
        for conf in '[Exec]\nPrivateUser=pick\n' '[Exec]\nBoot=yes\n' '[Network]\nPrivate=yes\n' \
                '[Exec]\nPrivateUsers=sometimes\n' 'PrivateUsers=pick\n' '[Files]\nPrivateUsersOwnership=maybe\n'; do
                printf "$conf" >"$T/berth.conf"
                BERTH_CONF=$T/berth.conf berth "${B[@]}" -M "$(machine)" -D "$ROOT" /bin/true
                assert_eq 1 "$RC" "$conf"
                assert_one_line_error
                assert_contains "$ERR" "$T/berth.conf:"
        done
        BERTH_CONF=$T/missing.conf berth "${B[@]}" -M "$(machine)" -D "$ROOT" /bin/true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "does not exist"
        assert_no_leftovers "$(machine)"
}

# ---- reboot ----

# boots_at_least TREE N: the guest's init has booted N times (a uid_map line each, in TREE/boots)
boots_at_least() {
        [ "$(grep -c . "$1/boots" 2>/dev/null)" -ge "$2" ]
}

machine_gone() {
        [ ! -e "/run/berth/machines/$1" ]
}

# A reboot inside a -U guest: reboot(2) needs CAP_SYS_BOOT in the user namespace that owns the
# guest's PID namespace, which must be the guest's own (as with nspawn) for its root to have it.
# The kernel then ends the guest's init with SIGHUP: berth exits with 133, and 'berthctl start'
# (as berth@.service) runs the machine again. Before, the PID namespace was the host's user
# namespace's: reboot(2) failed with EPERM and berth ended with 0, a reboot turned into a poweroff.
test_reboot_inside_comes_back() {
        local n dir
        [ -x "${BERTHCTL:-}" ] || skip "\$BERTHCTL is not set to the berthctl binary (run through 'meson test')"
        n=$(machine)
        dir=$T/images/$n
        make_tiny_tree "$dir"
        # the first boot reboots, the later ones stay up
        cat >"$dir/etc/inittab" <<-'EOF'
	::sysinit:/bin/sh -c 'cat /proc/self/uid_map >>/boots; [ -e /rebooted ] || { : >/rebooted; reboot; }'
	::shutdown:/bin/echo shutdown
	EOF
        # berth itself: the reboot is its 133
        berth "${B[@]}" -M "$n" -D "$dir" -U -b
        assert_eq 133 "$RC" "berth's exit status after a reboot inside: $ERR"
        boots_at_least "$dir" 1 || fail "the guest did not boot"
        in_window "$(awk 'NR == 1 { print $2 }' "$dir/boots")" || fail "no user namespace: $(cat "$dir/boots")"
        assert_no_leftovers "$n"

        # berthctl start, as berth@.service: the machine comes back, then powers off for good
        rm -f "$dir/boots" "$dir/rebooted"
        printf '[Exec]\nPrivateUsers=pick\n' >"$T/images/$n.nspawn"
        BERTH_IMAGE_PATH=$T/images run "$BERTHCTL" start "$n"
        assert_eq 0 "$RC" "berthctl start: $ERR"
        WAIT_TIMEOUT=60 wait_for boots_at_least "$dir" 2 ||
                fail "no second boot after the reboot: $(cat "$dir/boots" 2>&1; cat "/run/berth/logs/$n.log")"
        in_window "$(awk 'NR == 2 { print $2 }' "$dir/boots")" || fail "no user namespace after the reboot: $(cat "$dir/boots")"
        assert_contains "$(cat "/run/berth/logs/$n.log")" "asked for a reboot"
        run "$BERTHCTL" wait "$n" --timeout=60s
        assert_eq 0 "$RC" "the machine is not running after the reboot: $ERR"
        run "$BERTHCTL" poweroff "$n"
        assert_eq 0 "$RC" "poweroff: $ERR"
        WAIT_TIMEOUT=60 wait_for machine_gone "$n" || fail "the machine did not power off: $(cat "/run/berth/logs/$n.log")"
        assert_eq 2 "$(grep -c . "$dir/boots")" "boots: the poweroff must not boot it again"
        rm -f "/run/berth/logs/$n.log"
        assert_no_leftovers "$n"
}

test_debian_boots_with_userns() {
        local tree name start
        tree=$(debian_tree) || exit $?
        copy_debian_tree "$T/deb"
        name=$(machine)
        start=$EPOCHREALTIME
        start_bg --loud "$name" "$T/deb" --console=pipe -U -b
        WAIT_TIMEOUT=120 wait_for grep -q "^STATE=ready" "/run/berth/machines/$name" ||
                fail "no READY=1 from systemd: $(tail -n 20 "$T/$name.log")"
        echo "# ready after $(echo "$EPOCHREALTIME - $start" | bc) s" >&2
        local leader state
        leader=$(sed -n 's/^LEADER=//p' "/run/berth/machines/$name")
        grep -qv '^0$' <<<"$(awk '{ print $2 }' "/proc/$leader/uid_map")" || fail "PID 1 is not in a user namespace"
        WAIT_TIMEOUT=60 wait_for sh -c "[ \"\$(nsenter -t $leader -a systemctl is-system-running --wait 2>/dev/null)\" = running ]" || {
                state=$(nsenter -t "$leader" -a systemctl is-system-running 2>&1 || true)
                nsenter -t "$leader" -a systemctl --failed --no-legend >&2 || true
                fail "system state: $state"
        }
        stop_bg "$BG_PID"
}

run_tests
