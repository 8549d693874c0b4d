#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# berthctl's image verbs: list-images, image-status, show-image, clone, rename, remove,
# read-only, clean, import-tar, export-tar, import-fs. Every case works in its own image
# directories under $T ($BERTH_IMAGE_PATH: "pool" is the writable one, "vendor" a read-only
# one) with settings files in $T/etc ($BERTH_SETTINGS_PATH).
# shellcheck disable=SC2317 # the test_* functions are called by run_tests
# shellcheck disable=SC2015 # "[ A ] && [ B ] || fail": fail runs when either check fails, as meant
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-image.sh"
require_root
require_berthctl

bctl() {
        run "$BERTHCTL" "$@"
}

# Sets up $T/pool, $T/vendor and $T/etc and points berthctl at them.
pools() {
        mkdir -p "$T/pool" "$T/vendor" "$T/etc"
        export BERTH_IMAGE_PATH="$T/pool:$T/vendor" BERTH_SETTINGS_PATH="$T/etc"
}

# A listing of a tree that two copies share: names, types, modes, owners, sizes of files,
# symlink targets, hard link counts of files and a checksum of each file's data.
tree_listing() {
        (
                cd "$1" || exit 1
                find . -type d -printf 'd %p %m %U %G\n'
                find . ! -type d -printf '%y %p %m %U %G %s %n %l\n'
                find . -type f -exec md5sum {} +
        ) | sort
}

assert_same_tree() {
        local d
        if ! d=$(diff -u <(tree_listing "$1") <(tree_listing "$2")); then
                sed -n '1,40s/^/#   /p' <<<"$d" >&2
                fail "trees '$1' and '$2' differ"
        fi
}

# Names of the images in the JSON of list-images, one a line.
json_names() {
        python3 -c 'import json, sys
for i in json.load(sys.stdin):
    print(i["name"])'
}

# ---- listing and looking ----

test_list_images() {
        pools
        make_tiny_tree "$T/pool/one"
        make_tiny_tree "$T/pool/.hidden"
        make_tiny_tree "$T/vendor/vend"
        make_tiny_tree "$T/vendor/one"  # hidden behind pool/one
        truncate -s 1M "$T/pool/disk.raw"
        echo "[Exec]" >"$T/pool/one.berth" # a settings file, not an image
        mkdir "$T/pool/not a name"

        bctl list-images
        assert_eq 0 "$RC"
        assert_match "$OUT" '^NAME +TYPE +RO +USAGE +CREATED +MODIFIED'
        assert_match "$OUT" '^one +directory +no +[0-9.]+[KM] '
        assert_match "$OUT" '^disk +raw +no '
        assert_match "$OUT" '^vend +directory +yes '
        assert_not_contains "$OUT" ".hidden"
        assert_not_contains "$OUT" "not a name"
        assert_eq 3 "$(printf '%s\n' "$OUT" | grep -c -E ' (directory|raw) ')" "one line per image, the hidden one left out"
        assert_match "$OUT" '^3 images listed\.$'

        bctl list-images --all --no-legend
        assert_eq 0 "$RC"
        assert_match "$OUT" '^\.hidden +directory'
        assert_not_contains "$OUT" "NAME"
        assert_not_contains "$OUT" "listed"

        bctl list-images --all --json=short
        assert_eq 0 "$RC"
        assert_eq ".hidden disk one vend" "$(printf '%s\n' "$OUT" | json_names | tr '\n' ' ' | sed 's/ $//')"
        printf '%s\n' "$OUT" | python3 -c '
import json, sys
images = {i["name"]: i for i in json.load(sys.stdin)}
one = images["one"]
assert one["type"] == "directory" and one["ro"] is False, one
assert one["usage"] > 1000000 and one["created"] > 0 and one["modified"] > 0, one
assert images["vend"]["ro"] is True, images["vend"]
assert images["disk"]["type"] == "raw", images["disk"]
' || fail "list-images --json: unexpected values in $OUT"

        rm -rf "${T:?}/pool"/* "${T:?}/pool"/.hidden "$T/vendor"/*
        bctl list-images
        assert_eq 0 "$RC"
        assert_eq "No images." "$OUT"
        bctl list-images --json=short
        assert_eq "[]" "$OUT"
}

test_usage_is_like_du() {
        pools
        make_tiny_tree "$T/pool/one"
        ln "$T/pool/one/bin/busybox" "$T/pool/one/busybox-again" # counted once, as du does
        local du_bytes start end
        du_bytes=$(($(du -s -B1 "$T/pool/one" | cut -f1)))
        bctl show-image one --property=Usage
        assert_eq "Usage=$du_bytes" "$OUT"

        tree=$(debian_tree)
        ln -s "$tree" "$T/pool/debian" # an image may be a symlink to a tree elsewhere
        start=${EPOCHREALTIME/[.,]/}
        bctl list-images
        end=${EPOCHREALTIME/[.,]/}
        assert_eq 0 "$RC"
        assert_match "$OUT" '^debian +directory +no +[0-9.]+M '
        # a figure for the log, not a pass mark: on a busy machine any bound is a guess (speed
        # goals live in test/bench)
        echo "# list-images with the Debian tree: $(((end - start) / 1000)) ms"
}

test_image_status_and_show_image() {
        pools
        make_tiny_tree "$T/pool/one"
        echo one-host >"$T/pool/one/etc/hostname"
        echo 0123456789abcdef0123456789abcdef >"$T/pool/one/etc/machine-id"

        bctl image-status one
        assert_eq 0 "$RC"
        assert_eq one "$(first_line "$OUT")"
        assert_match "$OUT" "^ *Path: $T/pool/one\$"
        assert_match "$OUT" '^ *Type: directory$'
        assert_match "$OUT" '^ *Read-only: no$'
        assert_match "$OUT" '^ *Usage: [0-9.]+M$'
        assert_match "$OUT" '^ *Created: [A-Z][a-z]{2} [0-9]{4}-'
        assert_match "$OUT" '^ *Modified: [A-Z][a-z]{2} [0-9]{4}-'
        assert_match "$OUT" '^ *OS: berth test tree 1$'
        assert_match "$OUT" '^ *Hostname: one-host$'
        assert_match "$OUT" '^ *Machine ID: 0123456789abcdef0123456789abcdef$'

        bctl show-image one
        assert_eq 0 "$RC"
        assert_match "$OUT" '^Name=one$'
        assert_match "$OUT" "^Path=$T/pool/one\$"
        assert_match "$OUT" '^Type=directory$'
        assert_match "$OUT" '^ReadOnly=no$'
        assert_match "$OUT" '^Usage=[0-9]+$'
        assert_match "$OUT" '^CreationTimestamp=[0-9]+$'
        assert_match "$OUT" '^ModificationTimestamp=[0-9]+$'
        assert_match "$OUT" '^OperatingSystem=berth test tree 1$'

        bctl show-image one --property=Type -p ReadOnly
        assert_eq "$(printf 'Type=directory\nReadOnly=no')" "$OUT"

        bctl show-image one --json=short
        assert_eq 0 "$RC"
        printf '%s\n' "$OUT" | python3 -c 'import json, sys; d = json.load(sys.stdin); assert d["Name"] == "one" and d["ReadOnly"] is False, d' ||
                fail "show-image --json: $OUT"

        make_tiny_tree "$T/vendor/two"
        bctl image-status one two --json=short
        assert_eq 0 "$RC"
        printf '%s\n' "$OUT" | python3 -c 'import json, sys; l = json.load(sys.stdin); assert [d["Name"] for d in l] == ["one", "two"], l' ||
                fail "image-status --json with two images: $OUT"

        bctl show-image
        assert_eq 0 "$RC"
        assert_match "$OUT" "^PoolPath=$T/pool\$"

        bctl image-status one nosuch
        assert_eq 1 "$RC"
        assert_contains "$OUT" "Path: $T/pool/one"
        assert_eq "berthctl: No image 'nosuch' in $T/pool, $T/vendor." "$ERR"
}

test_image_status_never_follows_symlinks_out() {
        pools
        make_tiny_tree "$T/pool/abs"
        rm -rf "$T/pool/abs/etc"
        ln -s /etc "$T/pool/abs/etc"           # the host's /etc, were it followed
        make_tiny_tree "$T/pool/rel"
        rm "$T/pool/rel/etc/os-release"
        ln -s ../../../../../../../../etc/os-release "$T/pool/rel/etc/os-release"
        ln -s /etc/hostname "$T/pool/rel/etc/hostname"
        mkfifo "$T/pool/rel/etc/machine-id.fifo"
        rm -f "$T/pool/rel/etc/machine-id"
        ln -s machine-id.fifo "$T/pool/rel/etc/machine-id" # must not block

        local host_os
        host_os=$(. /etc/os-release && echo "$PRETTY_NAME")
        bctl image-status abs rel
        assert_eq 0 "$RC"
        assert_not_contains "$OUT" "$host_os"
        assert_not_contains "$OUT" "Hostname: $(hostname)"
        assert_match "$OUT" '^ *OS: unknown'
        bctl show-image rel -p OperatingSystem -p Hostname -p MachineID
        assert_eq "$(printf 'OperatingSystem=\nHostname=\nMachineID=')" "$OUT"
        # the usage walk does not follow them either: the host's /etc is not counted
        bctl show-image abs -p Usage
        [ "${OUT#Usage=}" -lt $((8 * 1024 * 1024)) ] || fail "usage of 'abs' counts what its symlinks point at: $OUT"
}

# ---- raw images: partitions ----

# x86-64 types of the Discoverable Partitions Specification
T_ROOT=4f68bce3-e8cd-4db1-96e7-fbcaf984b709
T_USR=8484680c-9521-48c6-9c11-b0720656f69e
T_ROOT_VERITY=2c7357ed-ebd2-46d9-aec1-23d437ec2bf5

need_image_tools() {
        local t
        [ "$(uname -m)" = x86_64 ] || skip "the images use x86-64 partition types"
        for t in sfdisk mkfs.ext4 mksquashfs "$@"; do
                command -v "$t" >/dev/null || skip "$t is missing (packages fdisk, e2fsprogs, squashfs-tools, cryptsetup-bin)"
        done
}

# The rows of show-image's Partitions= lines, without the UUIDs (random), one a line.
partition_rows() {
        bctl show-image "$1" -p Partitions --value
        assert_eq 0 "$RC"
        sed 's/ uuid=[^ ]*//' <<<"$OUT"
}

test_image_status_partitions() {
        need_image_tools veritysetup
        pools
        mkdir -p "$T/src/etc"
        echo partitioned >"$T/src/etc/hostname"
        mkfs.ext4 -q -d "$T/src" "$T/root.fs" 4M
        mksquashfs "$T/src" "$T/usr.fs" -quiet -noappend >/dev/null
        veritysetup format "$T/root.fs" "$T/root.verity" >/dev/null

        # a GPT image: root (read-only by its GPT flag), /usr, the root's hash tree
        gpt_image "$T/pool/disk.raw" "$T_ROOT:$T/root.fs" "$T_USR:$T/usr.fs" "$T_ROOT_VERITY:$T/root.verity"
        sfdisk -q --part-attrs "$T/pool/disk.raw" 1 GUID:60
        assert_eq "designator=root partno=1 fstype=ext4 size=4194304 offset=1048576 ro=yes verity=root-verity
designator=usr partno=2 fstype=squashfs size=1048576 offset=5242880 ro=no verity=-
designator=root-verity partno=3 fstype=- size=1048576 offset=6291456 ro=no verity=hash tree of root" \
                "$(partition_rows disk)"
        bctl show-image disk -p Partitions
        assert_match "$OUT" "^Partitions=designator=root partno=1 fstype=ext4 size=4194304 offset=1048576 uuid=$(sfdisk --part-uuid "$T/pool/disk.raw" 1 | tr 'A-Z' 'a-z') ro=yes "
        bctl image-status disk
        assert_eq 0 "$RC"
        assert_match "$OUT" "Partitions: DESIGNATOR +PARTNO +FSTYPE +SIZE +OFFSET +UUID +RO +VERITY"
        assert_match "$OUT" "^ +root +1 +ext4 +4.0M +1.0M +[0-9a-f-]{36} +yes +root-verity$"
        assert_match "$OUT" "^ +usr +2 +squashfs +1.0M +5.0M +[0-9a-f-]{36} +no +-$"
        # a root hash next to the image counts too
        echo 0123456789abcdef0123456789abcdef >"$T/pool/disk.roothash"
        assert_contains "$(first_line "$(partition_rows disk)")" "verity=root-verity, '$T/pool/disk.roothash'"
        bctl image-status disk --json=short
        python3 -c 'import json, sys
p = json.loads(sys.argv[1])["Partitions"]
assert [x["designator"] for x in p] == ["root", "usr", "root-verity"], p
assert p[0]["size"] == 4194304 and p[0]["offset"] == 1048576 and p[0]["ro"] is True, p[0]
assert p[0]["fstype"] == "ext4" and len(p[0]["uuid"]) == 36 and p[0]["partno"] == 1, p[0]
assert p[1]["verity"] is None and p[2]["fstype"] is None, p' "$OUT" || fail "wrong JSON: $OUT"

        # a single file system: one entry, the whole file
        cp "$T/root.fs" "$T/pool/single.raw"
        assert_eq "designator=root partno=0 fstype=ext4 size=4194304 offset=0 ro=no verity=-" "$(partition_rows single)"
        # nothing berth can use: said, and the rest of the status still shown
        truncate -s 1M "$T/pool/empty.raw"
        bctl image-status empty
        assert_eq 0 "$RC"
        assert_contains "$OUT" "Partitions: none berth can use: it has neither a partition table nor a file system"
        assert_contains "$OUT" "Usage:"
        bctl show-image empty --json=short
        assert_contains "$OUT" '"Partitions":null,"PartitionError":"it has neither a partition table nor a file system"'
        # a directory has no partitions
        make_tiny_tree "$T/pool/tree"
        bctl image-status tree
        assert_not_contains "$OUT" "Partitions"
        assert_nothing_attached
}

child_of() {
        local c
        c=$(<"/proc/$1/task/$1/children")
        echo "${c%% *}"
}

# parked PID: PID's child (berthctl under timeout) stopped itself
parked() {
        local c
        c=$(child_of "$1")
        [ -n "$c" ] && [[ $(<"/proc/$c/stat") == *") T "* ]]
}

# swap_while_parked fifo|device: image-status of the pool's image 'swapped' in the background
# ($PARKED: its timeout; its output in $T/out and $T/err), parked by a test build between the
# lookup, which takes only regular files, and the open; meanwhile the image becomes a FIFO or a
# device node (/dev/null's). The caller lets berthctl go on: kill -CONT "$(child_of "$PARKED")".
swap_while_parked() {
        require_test_hooks
        pools
        truncate -s 1M "$T/pool/swapped.raw"
        BERTH_TEST_PARK_IMAGE_OPEN=1 timeout 10 "$BERTHCTL" image-status swapped </dev/null >"$T/out" 2>"$T/err" &
        PARKED=$!
        wait_for parked "$PARKED" || fail "berthctl did not park before opening the image: $(<"$T/err")"
        rm -f "$T/pool/swapped.raw"
        case $1 in
        fifo) mkfifo "$T/pool/swapped.raw" ;;
        device) mknod "$T/pool/swapped.raw" c 1 3 ;;
        *) fail "swap_while_parked: no kind '$1'" ;;
        esac
}

# A .raw that is a FIFO by the time image-status opens it is refused at once, not waited on for a
# writer that never comes.
test_image_status_refuses_a_fifo() {
        local rc=0
        swap_while_parked fifo
        kill -CONT "$(child_of "$PARKED")"
        wait "$PARKED" || rc=$?
        [ "$rc" != 124 ] || fail "image-status waited on the FIFO until timeout killed it"
        assert_eq 1 "$rc" "exit status of image-status"
        assert_eq "berthctl: Refusing to read image 'swapped': '$T/pool/swapped.raw' is no longer a regular file." \
                "$(<"$T/err")"
        [ ! -s "$T/out" ] || fail "a status of what is not the image: $(<"$T/out")"
        # a FIFO there from the start is no image at all
        bctl image-status swapped
        assert_eq 1 "$RC"
        assert_contains "$ERR" "No image 'swapped'"
}

# ... and a device node there is not opened at all: an open of a device acts on it (a tape
# rewinds, a watchdog starts) with or without O_NONBLOCK. inotify sees every open but O_PATH's.
test_image_status_opens_no_device() {
        local rc=0
        swap_while_parked device
        # watch the node for opens, let berthctl go on, count what it opened once it is done
        python3 - "$T/pool/swapped.raw" "$(child_of "$PARKED")" >"$T/opens" <<-'EOF'
		import ctypes, os, signal, sys, time
		libc = ctypes.CDLL(None, use_errno=True)
		fd = libc.inotify_init1(os.O_NONBLOCK)
		if fd < 0 or libc.inotify_add_watch(fd, sys.argv[1].encode(), 0x20) < 0:  # IN_OPEN
		    sys.exit("inotify: " + os.strerror(ctypes.get_errno()))
		pid = int(sys.argv[2])
		def running():
		    # (a zombie is done; one reaped between two looks is gone: no stat to read)
		    try:
		        return open("/proc/%d/stat" % pid).read().split(")")[1].split()[0] != "Z"
		    except FileNotFoundError:
		        return False
		os.kill(pid, signal.SIGCONT)
		while running():
		    time.sleep(0.05)
		try:
		    print(len(os.read(fd, 4096)) // 16)
		except BlockingIOError:
		    print(0)
		EOF
        wait "$PARKED" || rc=$?
        assert_eq 1 "$rc" "exit status of image-status"
        assert_contains "$(<"$T/err")" "is no longer a regular file"
        assert_eq 0 "$(<"$T/opens")" "opens of the device node that replaced the image"
}

# ---- clone, rename, remove, read-only ----

test_clone() {
        pools
        make_tiny_tree "$T/pool/one"
        ln "$T/pool/one/bin/busybox" "$T/pool/one/busybox-again"
        truncate -s 1G "$T/pool/one/sparse"
        echo "[Exec]" >"$T/pool/one.berth"

        bctl clone one two
        assert_eq 0 "$RC"
        assert_eq "" "$ERR" "quiet when not on a terminal"
        assert_same_tree "$T/pool/one" "$T/pool/two"
        assert_eq "$(stat -c %i "$T/pool/two/bin/busybox")" "$(stat -c %i "$T/pool/two/busybox-again")" \
                "hard links stay hard links"
        [ "$(du -s "$T/pool/two/sparse" | cut -f1)" -lt 1024 ] || fail "the clone's sparse file lost its holes"
        assert_eq "[Exec]" "$(cat "$T/pool/two.berth")" "the settings file is cloned too"

        # independent copies
        echo changed >"$T/pool/two/etc/hostname"
        rm "$T/pool/two/bin/ls"
        [ ! -e "$T/pool/one/etc/hostname" ] || fail "writing to the clone changed the original"
        [ -L "$T/pool/one/bin/ls" ] || fail "removing from the clone changed the original"

        bctl clone one two
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "exists already"
        bctl clone one two --force
        assert_eq 0 "$RC"
        assert_same_tree "$T/pool/one" "$T/pool/two"

        bctl clone one ro --read-only
        assert_eq 0 "$RC"
        bctl show-image ro -p ReadOnly
        assert_eq "ReadOnly=yes" "$OUT"
        grep -q '^[^ ]*i' <<<"$(lsattr -d "$T/pool/ro")" || fail "no immutable flag on the read-only clone"

        # from a read-only directory into the writable one; a raw image
        make_tiny_tree "$T/vendor/vend"
        bctl clone vend mine
        assert_eq 0 "$RC"
        bctl show-image mine -p ReadOnly -p Path
        assert_eq "$(printf 'Path=%s\nReadOnly=no' "$T/pool/mine")" "$OUT" "properties in their order"
        head -c 100000 /dev/urandom >"$T/pool/disk.raw"
        chmod a-w "$T/pool/disk.raw"
        bctl clone disk disk2
        assert_eq 0 "$RC"
        cmp "$T/pool/disk.raw" "$T/pool/disk2.raw" || fail "the raw clone differs"
        bctl show-image disk2 -p Type -p ReadOnly
        assert_eq "$(printf 'Type=raw\nReadOnly=no')" "$OUT"

        bctl clone nosuch x
        assert_eq 1 "$RC"
        assert_eq "berthctl: No image 'nosuch' in $T/pool, $T/vendor." "$ERR"
        [ -z "$(find "$T/pool" -maxdepth 1 -name '.#*')" ] || fail "temporaries left in the pool"
}

# A raw image: its blocks shared by reflink where the file system can (btrfs here), else
# copied with its holes kept.
test_clone_raw_reflink_and_sparse() {
        local t extents
        for t in mkfs.btrfs filefrag losetup; do
                command -v "$t" >/dev/null || skip "$t is missing (packages btrfs-progs, e2fsprogs, mount)"
        done
        grep -qw btrfs /proc/filesystems || modprobe btrfs 2>/dev/null || skip "the kernel has no btrfs"
        pools

        # no reflink on the pool's file system (ext4 or tmpfs): a copy, holes kept
        truncate -s 64M "$T/pool/sparse.raw"
        head -c 1048576 /dev/urandom | dd of="$T/pool/sparse.raw" bs=1M seek=8 conv=notrunc status=none
        bctl clone sparse sparse2
        assert_eq 0 "$RC"
        cmp "$T/pool/sparse.raw" "$T/pool/sparse2.raw" || fail "the clone differs"
        [ "$(du -k "$T/pool/sparse2.raw" | cut -f1)" -lt 4096 ] ||
                fail "the clone of a 64 MiB image with 1 MiB of data lost its holes: $(du -k "$T/pool/sparse2.raw")"

        # on btrfs: the clone shares the image's blocks
        truncate -s 160M "$T/btrfs.img"
        mkfs.btrfs -q "$T/btrfs.img" >/dev/null
        mkdir "$T/btrfs"
        mount -o loop "$T/btrfs.img" "$T/btrfs" # autoclear: the unmount frees the loop device
        mkdir "$T/btrfs/pool"
        export BERTH_IMAGE_PATH="$T/btrfs/pool"
        head -c $((8 * 1048576)) /dev/urandom >"$T/btrfs/pool/disk.raw"
        sync -f "$T/btrfs/pool/disk.raw"
        bctl clone disk disk2
        assert_eq 0 "$RC"
        cmp "$T/btrfs/pool/disk.raw" "$T/btrfs/pool/disk2.raw" || fail "the reflinked clone differs"
        sync -f "$T/btrfs/pool/disk2.raw"
        extents=$(filefrag -v "$T/btrfs/pool/disk2.raw" | sed -n '/^ *[0-9][0-9]*:/p')
        [ -n "$extents" ] || fail "filefrag shows no extents"
        [ -z "$(grep -v shared <<<"$extents" || true)" ] ||
                fail "extents of the clone not shared with the image: $(grep -v shared <<<"$extents")"
        # and they are copies for writing: the image stays as it was
        cp "$T/btrfs/pool/disk.raw" "$T/disk.copy"
        echo changed | dd of="$T/btrfs/pool/disk2.raw" conv=notrunc status=none
        cmp "$T/btrfs/pool/disk.raw" "$T/disk.copy" || fail "writing to the clone changed the image"
        umount "$T/btrfs"
        assert_nothing_attached
}

test_clone_debian_tree() {
        local tree start end
        tree=$(debian_tree)
        pools
        start=${EPOCHREALTIME/[.,]/}
        bctl import-fs "$tree" deb
        end=${EPOCHREALTIME/[.,]/}
        assert_eq 0 "$RC"
        echo "# import-fs of the Debian tree ($(du -sh "$tree" | cut -f1)): $(((end - start) / 1000)) ms"
        start=${EPOCHREALTIME/[.,]/}
        bctl clone deb deb2
        end=${EPOCHREALTIME/[.,]/}
        assert_eq 0 "$RC"
        echo "# clone of it: $(((end - start) / 1000)) ms"
        assert_same_tree "$tree" "$T/pool/deb2"

        # on a terminal, a long copy shows a progress line; --quiet does not
        script -qec "$BERTHCTL clone deb deb3" /dev/null >"$T/tty.out" </dev/null
        grep -aq "Cloning 'deb'" "$T/tty.out" || echo "# (no progress line: the copy took less than half a second)"
        assert_same_tree "$tree" "$T/pool/deb3"
        script -qec "$BERTHCTL -q clone deb deb4" /dev/null >"$T/tty-q.out" </dev/null
        if grep -aq "Cloning" "$T/tty-q.out"; then
                fail "a progress line despite --quiet"
        fi
        assert_same_tree "$tree" "$T/pool/deb4"
        # Ctrl-C half way: no image, no temporary; SIGKILL half way: a temporary that is no
        # image and that 'clean' removes
        # The copy goes into place by one rename when it is complete: a signal that comes after
        # that rename (berthctl still finishing) meets an image that is whole, which is right, so
        # an image that is there must be complete; what may never be there is a partial one.
        "$BERTHCTL" clone deb intr &
        local pid=$!
        sleep 0.3
        kill -INT "$pid" 2>/dev/null || true # the clone may be done already
        wait "$pid" || true
        if [ -e "$T/pool/intr" ]; then
                echo "# (the clone was in place before SIGINT came)"
                assert_same_tree "$tree" "$T/pool/intr"
                rm -rf "$T/pool/intr"
        fi
        [ -z "$(find "$T/pool" -maxdepth 1 -name '.#*')" ] ||
                fail "an interrupted clone left: $(ls -A "$T/pool")"
        "$BERTHCTL" clone deb killed &
        pid=$!
        sleep 0.3
        kill -KILL "$pid" 2>/dev/null || true # the clone may be done already
        wait "$pid" || true
        if [ -e "$T/pool/killed" ]; then
                echo "# (the clone was in place before SIGKILL came)"
                assert_same_tree "$tree" "$T/pool/killed"
                rm -rf "$T/pool/killed"
        fi
        bctl list-images --all --no-legend
        assert_not_contains "$OUT" "killed"
        bctl clean
        assert_eq 0 "$RC"
        [ -z "$(find "$T/pool" -maxdepth 1 -name '.#*')" ] || fail "clean left: $(ls -A "$T/pool")"

        # the same on a small tree (the total is measured before the copy)
        make_tiny_tree "$T/tiny"
        script -qec "$BERTHCTL import-fs $T/tiny" /dev/null >/dev/null </dev/null
        assert_same_tree "$T/tiny" "$T/pool/tiny"
}

test_rename() {
        pools
        make_tiny_tree "$T/pool/one"
        echo "[Exec]" >"$T/pool/one.berth"
        echo "[Exec]" >"$T/pool/one.nspawn"
        echo "[Files]" >"$T/etc/one.nspawn"

        bctl rename one uno
        assert_eq 0 "$RC"
        [ -d "$T/pool/uno" ] && [ ! -e "$T/pool/one" ] || fail "the image was not renamed"
        [ -f "$T/pool/uno.berth" ] && [ ! -e "$T/pool/one.berth" ] || fail "NAME.berth did not follow"
        [ -f "$T/pool/uno.nspawn" ] && [ ! -e "$T/pool/one.nspawn" ] || fail "NAME.nspawn did not follow"
        [ -f "$T/etc/uno.nspawn" ] && [ ! -e "$T/etc/one.nspawn" ] || fail "the trusted settings file did not follow"

        truncate -s 1M "$T/pool/disk.raw"
        bctl rename disk disk2
        assert_eq 0 "$RC"
        [ -f "$T/pool/disk2.raw" ] || fail "raw image not renamed"

        make_tiny_tree "$T/pool/two"
        bctl rename uno two
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "exists already"
        bctl rename nosuch x
        assert_eq 1 "$RC"
        assert_eq "berthctl: No image 'nosuch' in $T/pool, $T/vendor." "$ERR"
        bctl rename uno .hidden
        assert_eq 0 "$RC"
        bctl list-images --no-legend
        assert_not_contains "$OUT" "hidden"
}

test_remove() {
        pools
        make_tiny_tree "$T/pool/one"
        make_tiny_tree "$T/pool/two"
        truncate -s 1M "$T/pool/disk.raw"
        echo "[Exec]" >"$T/pool/one.berth"
        echo "[Exec]" >"$T/etc/one.nspawn"
        ln -s "$T/pool/two" "$T/pool/link"

        bctl remove one disk
        assert_eq 0 "$RC"
        assert_eq "" "$ERR"
        [ ! -e "$T/pool/one" ] && [ ! -e "$T/pool/disk.raw" ] || fail "not removed"
        [ ! -e "$T/pool/one.berth" ] && [ ! -e "$T/etc/one.nspawn" ] || fail "settings files left behind"
        # a symlinked image: the link goes, not the tree it points to
        bctl remove link
        assert_eq 0 "$RC"
        [ ! -e "$T/pool/link" ] && [ -d "$T/pool/two/bin" ] || fail "removing a symlinked image went wrong"

        bctl remove nosuch
        assert_eq 1 "$RC"
        assert_eq "berthctl: No image 'nosuch' in $T/pool, $T/vendor." "$ERR"
        # the others are still removed
        bctl remove nosuch two
        assert_eq 1 "$RC"
        [ ! -e "$T/pool/two" ] || fail "'two' not removed after the missing one"

        make_tiny_tree "$T/vendor/vend"
        bctl remove vend
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "read-only"
        [ -d "$T/vendor/vend" ] || fail "removed from the read-only directory"
        [ -z "$(find "$T/pool" -maxdepth 1 -name '.#*')" ] || fail "temporaries left in the pool"
}

test_read_only() {
        pools
        make_tiny_tree "$T/pool/one"
        bctl read-only one
        assert_eq 0 "$RC"
        bctl show-image one -p ReadOnly
        assert_eq "ReadOnly=yes" "$OUT"
        bctl image-status one
        assert_match "$OUT" 'Read-only: yes \(immutable flag\)'

        bctl remove one
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_eq "berthctl: Cannot remove image 'one': it is read-only; run 'berthctl read-only one no' first." "$ERR"
        bctl rename one two
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "read-only one no"
        [ -d "$T/pool/one/bin" ] || fail "the read-only image changed"

        bctl read-only one no
        assert_eq 0 "$RC"
        bctl show-image one -p ReadOnly
        assert_eq "ReadOnly=no" "$OUT"
        bctl remove one
        assert_eq 0 "$RC"

        head -c 1000 /dev/zero >"$T/pool/disk.raw"
        bctl read-only disk yes
        assert_eq 0 "$RC"
        assert_eq 444 "$(stat -c %a "$T/pool/disk.raw")"
        bctl remove disk
        assert_eq 1 "$RC"
        bctl read-only disk false
        assert_eq 0 "$RC"
        assert_eq 644 "$(stat -c %a "$T/pool/disk.raw")"

        bctl read-only disk maybe
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "maybe"

        make_tiny_tree "$T/vendor/vend"
        bctl read-only vend
        assert_eq 0 "$RC" "already read-only"
        bctl read-only vend no
        assert_eq 1 "$RC"
        assert_one_line_error
}

test_clean() {
        pools
        make_tiny_tree "$T/pool/one"
        make_tiny_tree "$T/pool/.hid1"
        make_tiny_tree "$T/pool/.hid2"
        make_tiny_tree "$T/pool/ro"
        make_tiny_tree "$T/vendor/.vend"
        truncate -s 1M "$T/pool/.disk.raw"
        mkdir "$T/pool/.#berthctl-dead-abc123" # a temporary of a berthctl that died
        bctl read-only ro

        bctl clean
        assert_eq 0 "$RC"
        assert_contains "$OUT" "Removed image '.hid1'"
        assert_contains "$OUT" "Removed image '.disk'"
        [ ! -e "$T/pool/.hid1" ] && [ ! -e "$T/pool/.hid2" ] && [ ! -e "$T/pool/.disk.raw" ] ||
                fail "hidden images left"
        [ ! -e "$T/pool/.#berthctl-dead-abc123" ] || fail "the dead temporary is left"
        [ -d "$T/pool/one" ] && [ -d "$T/pool/ro" ] && [ -d "$T/vendor/.vend" ] || fail "clean removed too much"

        # a temporary in flight (locked) stays
        mkdir "$T/pool/.#berthctl-busy-abc123"
        flock "$T/pool/.#berthctl-busy-abc123" sleep 30 &
        wait_for sh -c "! flock -n '$T/pool/.#berthctl-busy-abc123' true"
        bctl clean --all -q
        assert_eq 0 "$RC"
        assert_eq "" "$OUT"
        [ -d "$T/pool/.#berthctl-busy-abc123" ] || fail "clean removed a temporary in flight"
        [ ! -e "$T/pool/one" ] || fail "clean --all kept 'one'"
        [ -d "$T/pool/ro" ] || fail "clean --all removed a read-only image"
        [ -d "$T/vendor/.vend" ] || fail "clean --all removed from the read-only directory"
}

# ---- import and export ----

test_tar_round_trip() {
        pools
        make_tiny_tree "$T/src"
        chmod 4755 "$T/src/usr/bin/payload"
        chmod 0710 "$T/src/home/tester"
        mknod "$T/src/dev/null" c 1 3
        mkfifo "$T/src/fifo"
        ln "$T/src/bin/busybox" "$T/src/busybox-again"
        truncate -s 100M "$T/src/sparse"
        echo hello >"$T/src/etc/motd"
        if command -v setcap >/dev/null; then
                cp "$T/src/etc/motd" "$T/src/capfile"
                setcap cap_net_raw+ep "$T/src/capfile"
        fi
        bctl import-fs "$T/src" one
        assert_eq 0 "$RC"
        assert_same_tree "$T/src" "$T/pool/one"

        local s
        for s in tar tar.gz tar.xz tar.zst; do
                bctl export-tar one "$T/one.$s"
                assert_eq 0 "$RC" "export-tar to .$s"
                assert_eq "" "$ERR"
                bctl import-tar --keep-setuid --keep-capabilities "$T/one.$s" "back-${s//./-}"
                assert_eq 0 "$RC" "import-tar of .$s"
                assert_same_tree "$T/src" "$T/pool/back-${s//./-}"
        done
        case $(file -b "$T/one.tar.gz") in gzip*) ;; *) fail "one.tar.gz is not gzip: $(file -b "$T/one.tar.gz")" ;; esac
        case $(file -b "$T/one.tar.zst") in Zstandard*) ;; *) fail "one.tar.zst is not zstd" ;; esac
        [ "$(du -s "$T/pool/back-tar-xz/sparse" | cut -f1)" -lt 1024 ] || fail "the sparse file lost its holes"
        if [ -e "$T/src/capfile" ]; then
                assert_contains "$(getcap "$T/pool/back-tar-zst/capfile")" "cap_net_raw"
        fi

        # a tree with a setuid file is imported only when asked
        bctl import-tar "$T/one.tar" refused
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_match "$ERR" "--keep-(setuid|capabilities)"
        [ ! -e "$T/pool/refused" ] || fail "a refused archive left an image"

        # NAME from the file name; standard input
        cp "$T/one.tar.xz" "$T/debian-12.tar.xz"
        bctl import-tar --keep-setuid --keep-capabilities "$T/debian-12.tar.xz"
        assert_eq 0 "$RC"
        [ -d "$T/pool/debian-12/bin" ] || fail "no image 'debian-12'"
        run sh -c "'$BERTHCTL' import-tar --keep-setuid --keep-capabilities - fromstdin <'$T/one.tar.gz'"
        assert_eq 0 "$RC"
        assert_same_tree "$T/src" "$T/pool/fromstdin"
        run sh -c "'$BERTHCTL' export-tar one - >'$T/stdout.tar'"
        assert_eq 0 "$RC"
        tar -tf "$T/stdout.tar" >"$T/stdout.list"
        grep -qx './etc/motd' "$T/stdout.list" || fail "export to stdout has no ./etc/motd"

        # an existing file is not replaced without --force
        bctl export-tar one "$T/one.tar"
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "--force"
        bctl export-tar one "$T/one.tar" --force
        assert_eq 0 "$RC"
        [ -z "$(find "$T" -maxdepth 1 -name '.#*')" ] || fail "temporaries left next to the archive"
}

test_import_failure_leaves_nothing() {
        pools
        make_tiny_tree "$T/src"
        tar -C "$T/src" -czf "$T/good.tar.gz" .
        head -c 300000 "$T/good.tar.gz" >"$T/cut.tar.gz"
        echo "not an archive" >"$T/junk.tar"
        : >"$T/empty.tar"

        local f
        for f in cut.tar.gz junk.tar empty.tar; do
                bctl import-tar "$T/$f" x
                assert_eq 1 "$RC" "import-tar of $f"
                assert_match "$ERR" "^berthctl: .*'$T/$f'"
                [ -z "$(ls -A "$T/pool")" ] || fail "import-tar of $f left: $(ls -A "$T/pool")"
        done
        bctl import-tar "$T/nosuch.tar"
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "nosuch.tar"
        bctl import-tar "$T/src" x
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "import-fs"

        # over an existing image: refused, unless --force
        bctl import-tar "$T/good.tar.gz" good
        assert_eq 0 "$RC"
        echo mark >"$T/pool/good/mark"
        bctl import-tar "$T/good.tar.gz" good
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "--force"
        [ -e "$T/pool/good/mark" ] || fail "the existing image changed"
        bctl import-tar --force "$T/good.tar.gz" good
        assert_eq 0 "$RC"
        [ ! -e "$T/pool/good/mark" ] || fail "--force did not replace the image"
        # a failed --force import leaves the old image as it was
        echo mark >"$T/pool/good/mark"
        bctl import-tar --force "$T/cut.tar.gz" good
        assert_eq 1 "$RC"
        [ -e "$T/pool/good/mark" ] || fail "a failed import replaced the image"
        assert_eq "good" "$(ls -A "$T/pool")"
}

test_import_fs() {
        pools
        make_tiny_tree "$T/src/mytree"
        ln -s /etc/shadow "$T/src/mytree/etc/abs-link"
        bctl import-fs "$T/src/mytree"
        assert_eq 0 "$RC"
        assert_same_tree "$T/src/mytree" "$T/pool/mytree"
        assert_eq /etc/shadow "$(readlink "$T/pool/mytree/etc/abs-link")" "symlinks are copied, not followed"
        bctl import-fs "$T/src/mytree" --read-only copy2
        assert_eq 0 "$RC"
        bctl show-image copy2 -p ReadOnly
        assert_eq "ReadOnly=yes" "$OUT"

        bctl import-fs "$T/src/mytree"
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "exists already"
        bctl import-fs "$T/nosuch" x
        assert_eq 1 "$RC"
        assert_one_line_error
        mkdir "$T/src/bad name"
        bctl import-fs "$T/src/bad name"
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "NAME"
}

# ---- safety ----

test_running_machine_image_is_kept() {
        pools
        local name run_dir=${BERTH_RUN_DIR:-/run/berth} pid
        name=$(unique_name bimg-run)
        make_tiny_tree "$T/pool/$name"
        # running until stopped below, however slow the machine
        "$BERTH" -D "$T/pool/$name" --console=pipe -q /usr/bin/payload sleep 1000 </dev/null >"$T/berth.out" 2>&1 &
        pid=$!
        wait_for grep -q "^STATE=running" "$run_dir/machines/$name" || fail "the machine did not start: $(cat "$T/berth.out")"

        bctl remove "$name"
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "Cannot remove image '$name': machine '$name' is running on it"
        bctl rename "$name" other
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "machine '$name' is running on it"
        bctl read-only "$name"
        assert_eq 1 "$RC"
        assert_one_line_error
        bctl clean --all
        assert_eq 0 "$RC"
        assert_contains "$OUT" "Kept image '$name': in use by machine '$name'"
        [ -d "$T/pool/$name/bin" ] || fail "the running machine's image is gone"
        bctl image-status "$name"
        assert_match "$OUT" "Used by: $name"
        # reading it is fine
        bctl clone "$name" copy
        assert_eq 0 "$RC"

        # the tree lock alone (a berth that has not written its record yet) also counts
        flock "$T/pool/copy" sleep 30 &
        wait_for sh -c "! flock -n '$T/pool/copy' true"
        bctl remove copy
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "a running berth uses it"

        # stopped, it can go (and the machine leaves nothing behind on the host)
        kill -TERM "$pid"
        wait "$pid" || true
        bctl remove "$name"
        assert_eq 0 "$RC"
}

test_bad_names() {
        pools
        make_tiny_tree "$T/pool/one"
        local n verb
        for n in .. . / "" a/b ../one -x "a b" "$(printf 'x%.0s' {1..70})" "one/../one"; do
                for verb in image-status remove read-only; do
                        bctl "$verb" "$n"
                        assert_eq 1 "$RC" "$verb '$n'"
                        assert_one_line_error "$verb '$n'"
                done
                bctl clone one "$n"
                assert_eq 1 "$RC" "clone one '$n'"
                assert_one_line_error "clone one '$n'"
                bctl rename one "$n"
                assert_eq 1 "$RC" "rename one '$n'"
                assert_one_line_error "rename one '$n'"
                bctl import-fs "$T/pool/one" "$n"
                assert_eq 1 "$RC" "import-fs '$n'"
                assert_one_line_error "import-fs '$n'"
        done
        bctl image-status ..
        assert_contains "$ERR" "Invalid image name '..'"
        [ -d "$T/pool/one/bin" ] && [ "$(ls -A "$T/pool")" = one ] || fail "the pool changed: $(ls -A "$T/pool")"
        # wrong argument counts
        bctl clone one
        assert_eq 1 "$RC"
        assert_one_line_error
        bctl export-tar one
        assert_eq 1 "$RC"
        assert_one_line_error
}

run_tests
