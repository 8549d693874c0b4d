#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# -i/--image=: raw disk images (GPT with the Discoverable Partitions types, or one file
# system) made here with sfdisk, mkfs.ext4, mksquashfs and mkfs.erofs in $T, never kept.
# What runs, what -x and --read-only do to the image's bytes, which images are refused with
# one line, and that no loop device is left behind after an exit or a SIGKILL.
. "$(dirname "$0")/lib.sh"
require_root
. "$(dirname "$0")/lib-image.sh"

B=(--console=pipe -q)
RUN_DIR=/run/berth

T_ROOT=4f68bce3-e8cd-4db1-96e7-fbcaf984b709
T_USR=8484680c-9521-48c6-9c11-b0720656f69e
T_HOME=933ac7e1-2eb4-4f13-b844-0e14e2aef915
T_ROOT_VERITY=2c7357ed-ebd2-46d9-aec1-23d437ec2bf5
T_LINUX=0fc63daf-8483-4772-8e79-3d69d8477de4

need_tools() {
        local t
        [ "$(uname -m)" = x86_64 ] || skip "the images use x86-64 partition types"
        for t in sfdisk mkfs.ext4 mksquashfs mkfs.erofs losetup "$@"; do
                command -v "$t" >/dev/null || skip "$t is missing (packages fdisk, e2fsprogs, squashfs-tools, erofs-utils)"
        done
        [ -e /dev/loop-control ] || skip "no /dev/loop-control: the kernel has no loop devices"
}

new_name() {
        unique_name "$(echo "image-${FUNCNAME[1]#test_}${1:+-$1}" | tr _ -)"
}

# fs_image KIND DIR FILE [SIZE_MB]: a file system of DIR's contents in FILE.
fs_image() {
        local kind=$1 dir=$2 file=$3 size=${4:-48}
        rm -f "$file"
        case $kind in
        ext4) truncate -s "${size}M" "$file"; mkfs.ext4 -q -F -d "$dir" "$file" ;;
        squashfs) mksquashfs "$dir" "$file" -quiet -no-progress >/dev/null ;;
        erofs) mkfs.erofs --quiet "$file" "$dir" >/dev/null ;;
        esac
}

# tiny_gpt IMG [FSKIND]: the tiny tree as the root partition of a GPT image.
tiny_gpt() {
        make_tiny_tree "$T/tree"
        fs_image "${2:-ext4}" "$T/tree" "$ROOT.fs"
        gpt_image "$1" "$T_ROOT:$ROOT.fs"
        rm -f "$ROOT.fs"
}

record_has_leader() {
        [ -n "$(sed -n 's/^LEADER=//p' "$RUN_DIR/machines/$1" 2>/dev/null)" ]
}

# ---- what runs ----

test_gpt_ext4_runs_a_command() {
        need_tools
        tiny_gpt "$T/tiny.raw"
        berth "${B[@]}" -M "$(new_name)" -i "$T/tiny.raw" /usr/bin/payload echo hello
        assert_eq 0 "$RC"
        assert_eq hello "$OUT"
        # the root is the image's ext4, nodev and nosuid
        berth "${B[@]}" -M "$(new_name)" -i "$T/tiny.raw" /bin/sh -c 'grep " / " /proc/self/mounts'
        assert_eq 0 "$RC"
        assert_match "$OUT" '^/dev/loop[0-9]+ / ext4 rw,nosuid,nodev'
        assert_nothing_attached
}

test_writes_persist_in_the_image() {
        need_tools
        tiny_gpt "$T/tiny.raw"
        berth "${B[@]}" -M "$(new_name)" -i "$T/tiny.raw" /bin/sh -c 'echo kept >/etc/written'
        assert_eq 0 "$RC"
        berth "${B[@]}" -M "$(new_name)" -i "$T/tiny.raw" /bin/cat /etc/written
        assert_eq kept "$OUT"
        assert_nothing_attached
}

test_squashfs_and_erofs_roots() {
        need_tools
        local kind
        make_tiny_tree "$T/tree"
        for kind in squashfs erofs; do
                # a bare file system, no partition table
                fs_image "$kind" "$T/tree" "$T/$kind.raw"
                berth "${B[@]}" -M "$(new_name "$kind")" -i "$T/$kind.raw" /bin/sh -c \
                        'grep " / " /proc/self/mounts; touch /x 2>&1; true'
                assert_eq 0 "$RC" "$kind"
                assert_match "$OUT" "^/dev/loop[0-9]+ / $kind ro,nosuid,nodev"
                assert_contains "$OUT" "Read-only file system"
                # and as the root partition of a GPT
                gpt_image "$T/$kind-gpt.raw" "$T_ROOT:$T/$kind.raw"
                berth "${B[@]}" -M "$(new_name "$kind")" -i "$T/$kind-gpt.raw" /usr/bin/payload echo "$kind"
                assert_eq 0 "$RC" "$kind in GPT"
                assert_eq "$kind" "$OUT"
        done
        assert_nothing_attached
}

# root, /usr and /home each a partition of its own, mounted where the tree has them
test_partitions_mount_in_place() {
        need_tools
        make_tiny_tree "$T/tree"
        mkdir -p "$T/usr" "$T/home"
        cp -a "$T/tree/usr/." "$T/usr/"
        rm -rf "$T/tree/usr"
        mkdir "$T/tree/usr"
        echo from-home >"$T/home/marker"
        fs_image ext4 "$T/tree" "$ROOT.fs" 24
        fs_image erofs "$T/usr" "$T/usr.fs"
        fs_image ext4 "$T/home" "$T/home.fs" 8
        gpt_image "$T/multi.raw" "$T_ROOT:$ROOT.fs" "$T_USR:$T/usr.fs" "$T_HOME:$T/home.fs"
        berth "${B[@]}" -M "$(new_name)" -i "$T/multi.raw" /bin/sh -c \
                '/usr/bin/payload echo payload; cat /home/marker; grep -E " /(usr|home) " /proc/self/mounts'
        assert_eq 0 "$RC"
        assert_contains "$OUT" payload
        assert_contains "$OUT" from-home
        assert_match "$OUT" '/usr erofs ro,nosuid,nodev'
        assert_match "$OUT" '/home ext4 rw,nosuid,nodev'
        assert_nothing_attached
}

# --volatile=state: the image's root read-only, a fresh tmpfs on /var
test_volatile_state() {
        need_tools
        local before
        tiny_gpt "$T/tiny.raw"
        before=$(sha256sum <"$T/tiny.raw")
        berth "${B[@]}" -M "$(new_name)" --volatile=state -i "$T/tiny.raw" /bin/sh -c \
                'touch /etc/x 2>&1; echo w >/var/tmp/y && cat /var/tmp/y; grep -E " / | /var " /proc/self/mounts'
        assert_eq 0 "$RC"
        assert_contains "$OUT" "Read-only file system"
        assert_match "$OUT" '^/dev/loop[0-9]+ / ext4 ro,'
        assert_match "$OUT" '^tmpfs /var tmpfs'
        assert_eq "$before" "$(sha256sum <"$T/tiny.raw")"
        assert_nothing_attached
}

# host binds on an image's root, also under -x
test_binds_into_image() {
        need_tools
        tiny_gpt "$T/tiny.raw"
        mkdir "$T/src"
        echo host-data >"$T/src/file"
        berth "${B[@]}" -M "$(new_name)" -x -i "$T/tiny.raw" --bind-ro="$T/src:/mnt/src" /bin/cat /mnt/src/file
        assert_eq 0 "$RC"
        assert_eq host-data "$OUT"
        berth "${B[@]}" -M "$(new_name)" -i "$T/tiny.raw" --bind="$T/src:/mnt/src" /bin/sh -c 'echo back >/mnt/src/new'
        assert_eq 0 "$RC"
        assert_eq back "$(cat "$T/src/new")"
        assert_nothing_attached
}

# NAME.nspawn next to NAME.raw is the image's settings file, as next to a tree
test_settings_file_next_to_image() {
        need_tools
        local n
        n=$(new_name)
        mkdir "$T/pool"
        tiny_gpt "$T/pool/$n.raw"
        printf '[Exec]\nEnvironment=FROMFILE=yes\n' >"$T/pool/$n.nspawn"
        berth "${B[@]}" -i "$T/pool/$n.raw" /bin/sh -c 'echo "$FROMFILE"'
        assert_eq 0 "$RC"
        assert_eq yes "$OUT"
        assert_nothing_attached
}

# an image of /usr only: the root is a fresh tmpfs with the merged-/usr links
test_usr_only_image() {
        need_tools
        local a
        mkdir -p "$T/usr/bin" "$T/usr/lib"
        cp /bin/busybox "$T/usr/bin/busybox"
        for a in sh cat echo; do ln -s busybox "$T/usr/bin/$a"; done
        cp "$BERTH_PAYLOAD" "$T/usr/bin/payload"
        printf 'ID=berthtest\nVERSION_ID=1\n' >"$T/usr/lib/os-release"
        fs_image erofs "$T/usr" "$T/usr.fs"
        gpt_image "$T/usr.raw" "$T_USR:$T/usr.fs"
        berth "${B[@]}" -M "$(new_name)" -i "$T/usr.raw" /bin/sh -c 'cat /usr/lib/os-release; echo ok >/etc/w; cat /etc/w'
        assert_eq 0 "$RC"
        assert_contains "$OUT" ID=berthtest
        assert_contains "$OUT" ok
        assert_nothing_attached
}

# the cached Debian tree as the root partition of a GPT image, booted until its systemd
# says READY=1, then powered off by a stop request
test_debian_image_boots() {
        need_tools
        local tree name pid rc=0
        tree=$(debian_tree)
        name=$(new_name)
        fs_image ext4 "$tree" "$ROOT.fs" 640
        gpt_image "$T/debian.raw" "$T_ROOT:$ROOT.fs"
        rm -f "$ROOT.fs"
        "$BERTH" --console=pipe -q -M "$name" -i "$T/debian.raw" -b </dev/null >"$T/out" 2>&1 &
        pid=$!
        WAIT_TIMEOUT=90 wait_for grep -q '^STATE=ready' "$RUN_DIR/machines/$name" ||
                fail "the guest never became ready: $(tail -5 "$T/out")"
        kill -TERM "$pid"
        wait "$pid" || rc=$?
        assert_eq 0 "$rc" "berth's exit status after a stop request"
        assert_nothing_attached
}

# berthctl start NAME finds NAME.raw in the image path and boots it with -i
test_berthctl_start_raw() {
        need_tools
        [ -n "${BERTHCTL:-}" ] && [ -x "$BERTHCTL" ] || skip "\$BERTHCTL is not set to the berthctl binary (run through 'meson test')"
        local n
        n=$(new_name)
        mkdir -p "$T/images"
        tiny_gpt "$T/images/$n.raw"
        BERTH_IMAGE_PATH="$T/images" run "$BERTHCTL" start "$n"
        assert_eq 0 "$RC"
        run "$BERTHCTL" show -p State -p RootDirectory "$n"
        assert_eq "RootDirectory=$T/images/$n.raw
State=running" "$OUT"
        [ -n "$(our_loops)" ] || fail "no loop device while running"
        run "$BERTHCTL" poweroff "$n"
        assert_eq 0 "$RC"
        wait_for test ! -e "$RUN_DIR/machines/$n" || fail "the machine did not stop"
        rm -f "$RUN_DIR/logs/$n.log"
        assert_nothing_attached
}

# ---- -U: the image's file systems mounted idmapped ----

# owner_in_image IMG PATH: "uid=U gid=G" of PATH as the image stores it (read without -U)
owner_in_image() {
        berth "${B[@]}" -M "$(unique_name image-owner)" --read-only -i "$1" /usr/bin/payload stat "$2"
        [ "$RC" = 0 ] || fail "cannot look at $2 in $1: $ERR"
        printf '%s\n' "$OUT" | grep -oE 'uid=[0-9]+ gid=[0-9]+'
}

# the picked range is the container's, the image's root-owned files are root's inside, and
# what the guest writes is stored with the owner it has inside, as without -U
test_userns_on_ext4_image() {
        need_tools
        local map
        tiny_gpt "$T/tiny.raw"
        berth "${B[@]}" -M "$(new_name)" -U -i "$T/tiny.raw" /bin/sh -c \
                'cat /proc/self/uid_map; /usr/bin/payload stat /etc/passwd; echo w >/root/w; mkdir /home/tester/d;
                 chown 1000:1000 /home/tester/d; /usr/bin/payload stat /home/tester'
        assert_eq 0 "$RC"
        map=$(first_line "$OUT" | awk '{ print $1, $3 }')
        assert_eq "0 65536" "$map" "uid_map inside"
        assert_not_contains "$OUT" " 0          0 4294967295"
        assert_contains "$OUT" "type=file mode=0644 uid=0 gid=0"
        assert_contains "$OUT" "type=dir mode=0755 uid=1000 gid=1000"
        assert_eq "uid=0 gid=0" "$(owner_in_image "$T/tiny.raw" /root/w)" "a file root wrote, on disk"
        assert_eq "uid=1000 gid=1000" "$(owner_in_image "$T/tiny.raw" /home/tester/d)" "a chown to 1000, on disk"
        # without idmapping (ownership off), the image's files belong to nobody inside
        berth "${B[@]}" -M "$(new_name off)" -U --private-users-ownership=off -i "$T/tiny.raw" /usr/bin/payload \
                stat /etc/passwd
        assert_eq 0 "$RC"
        assert_contains "$OUT" "uid=65534 gid=65534"
        assert_nothing_attached
}

# read-only file systems are idmapped too (this kernel allows it for squashfs and erofs); -x puts
# its overlay on the idmapped partition, so what the guest writes there is root's inside
test_userns_on_squashfs_and_erofs() {
        need_tools
        local kind
        make_tiny_tree "$T/tree"
        for kind in squashfs erofs; do
                fs_image "$kind" "$T/tree" "$T/$kind.raw"
                berth "${B[@]}" -M "$(new_name "$kind")" -U -i "$T/$kind.raw" /bin/sh -c \
                        'cat /proc/self/uid_map; grep " / " /proc/self/mounts; /usr/bin/payload stat /etc/passwd'
                assert_eq 0 "$RC" "$kind"
                assert_match "$OUT" "^ *0 +[1-9][0-9]* +65536"
                assert_match "$OUT" "/ $kind ro,nosuid,nodev,.*idmapped"
                assert_contains "$OUT" "type=file mode=0644 uid=0 gid=0"
                berth "${B[@]}" -M "$(new_name "$kind-x")" -U -x -i "$T/$kind.raw" /bin/sh -c \
                        'echo w >/etc/w && /usr/bin/payload stat /etc/w && /usr/bin/payload stat /'
                assert_eq 0 "$RC" "$kind with -x"
                assert_eq "type=file mode=0644 uid=0 gid=0
type=dir mode=0755 uid=0 gid=0" "$(printf '%s\n' "$OUT" | sed 's/ size=.*//')" "$kind with -x"
        done
        assert_nothing_attached
}

# each partition is idmapped: an erofs /usr below an ext4 root, and the tmpfs root of a
# /usr-only image
test_userns_on_partitions_and_usr_only() {
        need_tools
        local a
        make_tiny_tree "$T/tree"
        mkdir -p "$T/usr"
        cp -a "$T/tree/usr/." "$T/usr/"
        rm -rf "$T/tree/usr"
        fs_image ext4 "$T/tree" "$ROOT.fs" 24
        fs_image erofs "$T/usr" "$T/usr.fs"
        gpt_image "$T/multi.raw" "$T_ROOT:$ROOT.fs" "$T_USR:$T/usr.fs"
        # no /usr in the root: the mount point is made as the container's root
        berth "${B[@]}" -M "$(new_name)" -U -i "$T/multi.raw" /bin/sh -c \
                '/usr/bin/payload stat /usr/bin/payload; /usr/bin/payload stat /usr'
        assert_eq 0 "$RC"
        assert_contains "$OUT" "type=file mode=0755 uid=0 gid=0"
        assert_contains "$OUT" "type=dir mode=0755 uid=0 gid=0"
        assert_eq "uid=0 gid=0" "$(owner_in_image "$T/multi.raw" /usr)" "the mount point made, on disk"

        rm -rf "$T/usr"
        mkdir -p "$T/usr/bin" "$T/usr/lib"
        cp /bin/busybox "$T/usr/bin/busybox"
        for a in sh cat echo; do ln -s busybox "$T/usr/bin/$a"; done
        cp "$BERTH_PAYLOAD" "$T/usr/bin/payload"
        printf 'ID=berthtest\nVERSION_ID=1\n' >"$T/usr/lib/os-release"
        fs_image erofs "$T/usr" "$T/usr.fs"
        gpt_image "$T/usr.raw" "$T_USR:$T/usr.fs"
        berth "${B[@]}" -M "$(new_name usr)" -U -i "$T/usr.raw" /bin/sh -c \
                '/usr/bin/payload stat /; /usr/bin/payload stat /usr/bin/busybox; echo ok >/etc/w; /usr/bin/payload stat /etc/w'
        assert_eq 0 "$RC"
        assert_eq "type=dir mode=0755 uid=0 gid=0
type=file mode=0755 uid=0 gid=0
type=file mode=0644 uid=0 gid=0" "$(printf '%s\n' "$OUT" | sed 's/ size=.*//')"
        assert_nothing_attached
}

# --volatile= with -U: berth's tmpfs mounts belong to the container's root, the image's
# partitions are idmapped below them
test_userns_with_volatile() {
        need_tools
        local mode before
        tiny_gpt "$T/tiny.raw"
        before=$(sha256sum <"$T/tiny.raw")
        for mode in yes state overlay; do
                berth "${B[@]}" -M "$(new_name "$mode")" -U --volatile=$mode -i "$T/tiny.raw" /usr/bin/payload stat /usr/bin/payload
                assert_eq 0 "$RC" "--volatile=$mode"
                assert_contains "$OUT" "type=file mode=0755 uid=0 gid=0" "--volatile=$mode"
                berth "${B[@]}" -M "$(new_name "$mode")" -U --volatile=$mode -i "$T/tiny.raw" /usr/bin/payload mkdir /var/v
                assert_eq 0 "$RC" "--volatile=$mode: a directory in /var"
        done
        assert_eq "$before" "$(sha256sum <"$T/tiny.raw")" "the image's checksum"
        assert_nothing_attached
}

# a file system that cannot be idmapped (none on this kernel's allow-list: the test build
# pretends): -U with ownership auto refuses with one line rather than chown an image, and runs
# as asked with ownership off on an image shifted to its range already
test_userns_on_a_file_system_that_cannot_be_idmapped() {
        need_tools
        require_test_hooks
        local base=$((0x3ff00000))
        make_tiny_tree "$T/tree"
        fs_image squashfs "$T/tree" "$T/sq.raw"
        BERTH_TEST_IDMAP_REFUSE=squashfs berth_image "${B[@]}" -M "$(new_name)" -U -i "$T/sq.raw" /usr/bin/payload true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "cannot be mounted idmapped"
        assert_contains "$ERR" "--private-users-ownership=off"
        assert_nothing_attached
        # a /usr partition that cannot be, below a root that can
        mkdir -p "$T/usr"
        cp -a "$T/tree/usr/." "$T/usr/"
        fs_image ext4 "$T/tree" "$ROOT.fs" 24
        fs_image squashfs "$T/usr" "$T/usr.fs"
        gpt_image "$T/multi.raw" "$T_ROOT:$ROOT.fs" "$T_USR:$T/usr.fs"
        BERTH_TEST_IDMAP_REFUSE=squashfs berth_image "${B[@]}" -M "$(new_name usr)" -U -i "$T/multi.raw" /usr/bin/payload true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "Cannot mount the usr partition (squashfs)"
        assert_nothing_attached
        # shifted to a range in the window: pick takes that range, auto needs no idmapping
        chown -R "$base:$base" "$T/tree"
        fs_image squashfs "$T/tree" "$T/shifted.raw"
        BERTH_TEST_IDMAP_REFUSE=squashfs berth "${B[@]}" -M "$(new_name shifted)" -U -i "$T/shifted.raw" /bin/sh -c \
                'cat /proc/self/uid_map; /usr/bin/payload stat /etc/passwd'
        assert_eq 0 "$RC"
        assert_match "$OUT" "^ *0 +$base +65536"
        assert_contains "$OUT" "uid=0 gid=0"
        assert_nothing_attached
}

# ---- -x and --read-only leave the image's bytes alone ----

test_ephemeral_leaves_image_unchanged() {
        need_tools
        local before
        tiny_gpt "$T/tiny.raw"
        before=$(sha256sum <"$T/tiny.raw")
        berth "${B[@]}" -M "$(new_name)" -x -i "$T/tiny.raw" /bin/sh -c \
                'echo gone >/etc/ephemeral && cat /etc/ephemeral && rm /etc/os-release && grep " / " /proc/self/mounts'
        assert_eq 0 "$RC"
        assert_contains "$OUT" gone
        assert_match "$OUT" '^overlay / overlay'
        assert_eq "$before" "$(sha256sum <"$T/tiny.raw")" "the image's checksum after -x"
        # nothing of it in the next run
        berth "${B[@]}" -M "$(new_name)" -x -i "$T/tiny.raw" /bin/sh -c 'ls /etc/ephemeral 2>&1; cat /etc/os-release'
        assert_contains "$OUT" "No such file"
        assert_contains "$OUT" ID=berthtest
        # two at once may share the image read-only
        local first
        first=$(new_name a)
        "$BERTH" "${B[@]}" -M "$first" -x -i "$T/tiny.raw" /usr/bin/payload sleep 100 </dev/null \
                >"$T/bg.out" 2>"$T/bg.err" &
        local pid=$!
        wait_for record_has_leader "$first" || fail "the first -x instance did not start: $(cat "$T/bg.err")"
        berth "${B[@]}" -M "$(new_name b)" -x -i "$T/tiny.raw" /usr/bin/payload echo second
        assert_eq 0 "$RC"
        assert_eq second "$OUT"
        # but not with one that writes
        berth_image "${B[@]}" -M "$(new_name c)" -i "$T/tiny.raw" /usr/bin/payload true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "is in use by another machine"
        kill -TERM "$pid"
        wait "$pid" 2>/dev/null || true
        assert_eq "$before" "$(sha256sum <"$T/tiny.raw")" "the image's checksum at the end"
        assert_nothing_attached
}

test_read_only() {
        need_tools
        local before
        tiny_gpt "$T/tiny.raw"
        before=$(sha256sum <"$T/tiny.raw")
        berth "${B[@]}" -M "$(new_name)" --read-only -i "$T/tiny.raw" /bin/sh -c \
                'touch /etc/x 2>&1; grep " / " /proc/self/mounts'
        assert_eq 0 "$RC"
        assert_contains "$OUT" "Read-only file system"
        assert_match "$OUT" ' / ext4 ro,'
        assert_eq "$before" "$(sha256sum <"$T/tiny.raw")"
        # an image on a read-only file system: only with --read-only
        mkdir "$T/ro"
        mount -t tmpfs tmpfs "$T/ro"
        cp "$T/tiny.raw" "$T/ro/tiny.raw"
        mount -o remount,ro "$T/ro"
        berth_image "${B[@]}" -M "$(new_name)" -i "$T/ro/tiny.raw" /usr/bin/payload true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "Read-only file system"
        assert_contains "$ERR" "--read-only"
        berth "${B[@]}" -M "$(new_name)" --read-only -i "$T/ro/tiny.raw" /usr/bin/payload echo ro
        assert_eq 0 "$RC"
        assert_eq ro "$OUT"
        wait_for no_loops || fail "loop devices left: $(our_loops)"
        umount "$T/ro"
}

# ---- bad images: one line, nothing attached ----

test_bad_images_refused() {
        need_tools
        local name img want side
        make_tiny_tree "$T/tree"
        fs_image ext4 "$T/tree" "$ROOT.fs"
        truncate -s 8M "$T/zeros.raw"
        gpt_image "$T/noroot.raw" "$T_LINUX:$ROOT.fs"
        gpt_image "$T/tworoots.raw" "$T_ROOT:$ROOT.fs" "$T_ROOT:$ROOT.fs"
        gpt_image "$T/trunc.raw" "$T_ROOT:$ROOT.fs"
        truncate -s 20M "$T/trunc.raw"
        truncate -s 4M "$T/nofs.fs"
        gpt_image "$T/nofs.raw" "$T_ROOT:$T/nofs.fs"
        mkdir -p "$T/notos"
        echo hi >"$T/notos/file"
        fs_image ext4 "$T/notos" "$T/notos.raw" 8
        gpt_image "$T/verity.raw" "$T_ROOT:$ROOT.fs" "$T_ROOT_VERITY:$T/nofs.fs"
        while read -r img want; do
                berth_image "${B[@]}" -M "$(new_name)" -i "$T/$img" /usr/bin/payload true
                assert_eq 1 "$RC" "$img"
                assert_one_line_error "$img"
                assert_contains "$ERR" "$want"
                assert_nothing_attached
        done <<-EOF
		zeros.raw neither a partition table nor a file system
		noroot.raw no root or /usr partition for x86-64
		tworoots.raw two root partitions
		trunc.raw truncated
		nofs.raw holds no file system
		notos.raw does not look like an OS tree
		verity.raw does not mount verity-protected data unprotected
		EOF
        # a good image with a file that asks for dm-verity next to it, and nothing else of
        # what verity needs (test-verity has the rest)
        for side in roothash usrhash roothash.p7s verity; do
                gpt_image "$T/side.raw" "$T_ROOT:$ROOT.fs"
                echo 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef >"$T/side.$side"
                berth_image "${B[@]}" -M "$(new_name)" -i "$T/side.raw" /usr/bin/payload true
                assert_eq 1 "$RC" "side file .$side"
                assert_one_line_error "side file .$side"
                assert_contains "$ERR" "side.$side' asks for dm-verity"
                assert_nothing_attached
                rm "$T/side.$side"
        done
        berth_image "${B[@]}" -i "$T/missing.raw" /usr/bin/payload true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "No such file"
        berth_image "${B[@]}" -i "$T/tree" /usr/bin/payload true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "neither a regular file nor a block device"
        berth_image "${B[@]}" -D "$T/tree" -i "$T/zeros.raw" /usr/bin/payload true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "cannot be combined"
}

# ---- host state ----

test_name_from_image_and_record() {
        need_tools
        local name
        name=$(new_name)
        tiny_gpt "$T/$name.raw"
        "$BERTH" "${B[@]}" -i "$T/$name.raw" /usr/bin/payload sleep 100 </dev/null >"$T/bg.out" 2>"$T/bg.err" &
        local pid=$!
        wait_for record_has_leader "$name" || fail "berth did not start: $(cat "$T/bg.err")"
        assert_eq "$T/$name.raw" "$(sed -n 's/^ROOT=//p' "$RUN_DIR/machines/$name")"
        local loops
        loops=$(sed -n 's/^LOOP=//p' "$RUN_DIR/machines/$name")
        assert_match "$loops" '^/dev/loop[0-9]+$'
        assert_contains "$(our_loops)" "$loops"
        kill -TERM "$pid"
        wait "$pid" 2>/dev/null || true
        assert_nothing_attached
}

test_sigkill_leaves_no_loop_device() {
        need_tools
        local name pid
        name=$(new_name)
        tiny_gpt "$T/tiny.raw"
        "$BERTH" "${B[@]}" -M "$name" -i "$T/tiny.raw" /usr/bin/payload sleep 100 </dev/null >"$T/bg.out" 2>"$T/bg.err" &
        pid=$!
        wait_for record_has_leader "$name" || fail "berth did not start: $(cat "$T/bg.err")"
        [ -n "$(our_loops)" ] || fail "no loop device while running"
        kill -KILL "$pid"
        wait "$pid" 2>/dev/null || true
        # autoclear: the kernel lets them go with the last mount and fd
        assert_nothing_attached
        # the next start cleans the record (unless another run's start did already: every
        # start cleans every dead instance) and runs on the same image
        berth "${B[@]}" -M "$name" -i "$T/tiny.raw" /usr/bin/payload echo again
        assert_eq 0 "$RC"
        assert_eq again "$OUT"
        [ ! -e "$RUN_DIR/machines/$name" ] || fail "record left behind"
        assert_nothing_attached
}

# Stale cleanup detaches only what the dead instance attached: a loop device of the
# record's image with autoclear. A number that now belongs to someone else (another
# file, or the same file attached by hand) is left alone.
test_stale_cleanup_leaves_foreign_loops() {
        need_tools
        local name dev
        # the planted record in a run dir of the case's own: no other run's berth may meet it
        private_run_dir
        name=$(new_name)
        tiny_gpt "$T/tiny.raw"
        dev=$(losetup -f --show -r "$T/tiny.raw")
        mkdir -p "$RUN_DIR/machines"
        printf 'NAME=%s\nROOT=%s\nLOOP=%s\nLOOP=/etc/passwd\n' "$name" "$T/tiny.raw" "$dev" >"$RUN_DIR/machines/$name"
        berth "${B[@]}" -M "$(new_name run)" -i "$T/tiny.raw" --read-only /usr/bin/payload echo ran
        assert_eq 0 "$RC"
        assert_eq ran "$OUT"
        [ ! -e "$RUN_DIR/machines/$name" ] || fail "the stale record was not cleaned"
        grep -qF "$T/tiny.raw" <<<"$(losetup "$dev")" || fail "stale cleanup detached $dev, which berth did not attach"
        losetup -d "$dev"
        assert_nothing_attached
}

run_tests
