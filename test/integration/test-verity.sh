#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# dm-verity and the image policy for -i/--image=: --root-hash=, --root-hash-sig=, --verity-data=,
# --image-policy=, the side files IMAGE.roothash/.usrhash/.roothash.p7s/.verity, and the image's
# root-verity partition. Images are made here with veritysetup, sfdisk and mkfs in $T, never kept.
# Where the kernel has device-mapper, an image with a root hash boots through dm-verity; where it
# has none (our CI kernel), berth refuses it before attaching anything, and the one-time userspace
# check (--image-policy=root=unprotected) runs it after comparing the data with the root hash.
. "$(dirname "$0")/lib.sh"
require_root
. "$(dirname "$0")/lib-image.sh"

B=(--console=pipe -q)

T_ROOT=4f68bce3-e8cd-4db1-96e7-fbcaf984b709
T_HOME=933ac7e1-2eb4-4f13-b844-0e14e2aef915
T_SWAP=0657fd6d-a4ab-43c4-84e5-0933c84b4f4f
T_ROOT_VERITY=2c7357ed-ebd2-46d9-aec1-23d437ec2bf5

need_tools() {
        local t
        [ "$(uname -m)" = x86_64 ] || skip "the images use x86-64 partition types"
        for t in sfdisk mkfs.ext4 losetup veritysetup "$@"; do
                command -v "$t" >/dev/null || skip "$t is missing (packages fdisk, e2fsprogs, cryptsetup-bin)"
        done
        [ -e /dev/loop-control ] || skip "no /dev/loop-control: the kernel has no loop devices"
}

# the driver, not a node: libdevmapper leaves /dev/mapper/control behind where the kernel has no
# device-mapper, and only a node with the driver behind it opens
dm_available() {
        grep -q ' device-mapper$' /proc/misc || (exec 3<>/dev/mapper/control) 2>/dev/null
}

new_name() {
        unique_name "$(echo "verity-${FUNCNAME[1]#test_}${1:+-$1}" | tr _ -)"
}

# verity_fs: the tiny tree as ext4 in $ROOT.fs (16 MiB), its hash tree in $T/tree.verity;
# HASH is its root hash
verity_fs() {
        make_tiny_tree "$T/tree"
        echo verity-data >"$T/tree/marker"
        truncate -s 16M "$ROOT.fs"
        mkfs.ext4 -q -F -d "$T/tree" "$ROOT.fs"
        rm -f "$T/tree.verity"
        HASH=$(veritysetup format "$ROOT.fs" "$T/tree.verity" | sed -n 's/^Root hash:[[:space:]]*//p')
        [ ${#HASH} = 64 ] || fail "veritysetup format printed no root hash"
}

# the root hash with its last digit changed (to 0, or to 1 where it is 0 already: a hash ending in
# 0, one in sixteen, made "${HASH:0:63}0" the right one)
wrong_hash() {
        if [ "${HASH: -1}" = 0 ]; then echo "${HASH:0:63}1"; else echo "${HASH:0:63}0"; fi
}

# verity_gpt IMG: root and root-verity partitions
verity_gpt() {
        verity_fs
        gpt_image "$1" "$T_ROOT:$ROOT.fs" "$T_ROOT_VERITY:$T/tree.verity"
}

# refused WANT ARGS...: berth refuses with one line containing WANT, and attaches nothing
refused() {
        local want=$1
        shift
        berth_image "${B[@]}" -M "$(new_name)" "$@" /usr/bin/payload true
        assert_eq 1 "$RC" "$*"
        assert_one_line_error "$*"
        assert_contains "$ERR" "$want"
        assert_nothing_attached
}

# ---- the options ----

test_option_values_refused() {
        need_tools
        local h64=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
        verity_gpt "$T/v.raw"
        while IFS='|' read -r arg want; do
                berth_image "${B[@]}" -i "$T/v.raw" "$arg" /usr/bin/payload true
                assert_eq 1 "$RC" "$arg"
                assert_one_line_error "$arg"
                assert_contains "$ERR" "$want"
        done <<-EOF
		--root-hash=xyz|expected the root hash in hexadecimal
		--root-hash=${h64}0|expected the root hash in hexadecimal
		--root-hash=|expected the root hash in hexadecimal
		--root-hash=0x${h64:2}|expected the root hash in hexadecimal
		--root-hash=0123456789abcdef|a root hash is 32 to 128 hexadecimal digits
		--root-hash=${h64}${h64}00|a root hash is 32 to 128 hexadecimal digits
		--root-hash-sig=$T/missing.p7s|cannot read the signature file: No such file
		--root-hash-sig=relative.p7s|expected an absolute path
		--root-hash-sig=base64:!!!|is not base64
		--root-hash-sig=base64:|is not base64
		--root-hash-sig=$T|cannot read the signature file
		--root-hash-sig=/dev/null|the signature is empty
		--verity-data=$T/missing.verity|Cannot use verity data '$T/missing.verity' (--verity-data=): No such file
		--verity-data=$T|neither a regular file nor a block device
		--verity-data=|path is empty
		--image-policy=root|'root' is not PARTITION=FLAGS
		--image-policy=rot=verity|unknown partition 'rot'
		--image-policy=root=verity+sigend|unknown flag 'sigend'
		--image-policy=root=verity:root=signed|'root' has two rules
		--image-policy==absent:=unused|'=unused' has two rules
		EOF
        # on a directory tree these mean nothing
        make_tiny_tree "$ROOT"
        for arg in --root-hash=$h64 --root-hash-sig=base64:aGVsbG8= --verity-data="$T/tree.verity" --image-policy='*'; do
                berth_image "${B[@]}" -D "$ROOT" "$arg" /usr/bin/payload true
                assert_eq 1 "$RC" "$arg"
                assert_one_line_error "$arg"
                assert_contains "$ERR" "applies to disk images only"
        done
        assert_nothing_attached
}

# ---- refusals without device-mapper, before anything is attached ----

test_no_dm_refused_before_attaching() {
        need_tools
        dm_available && skip "this kernel has device-mapper: the refusal is for kernels without it"
        verity_gpt "$T/v.raw"
        # the image's root-verity partition and the right hash: refused, naming cause and fix
        refused "this kernel has no device-mapper" -i "$T/v.raw" --root-hash="$HASH"
        assert_contains "$ERR" "root hash from --root-hash=, hash tree from the image's verity partition"
        assert_contains "$ERR" "--image-policy=root=unprotected"
        # the hash from the side file, the tree from the partition
        echo "$HASH" >"$T/v.roothash"
        refused "root hash from '$T/v.roothash'" -i "$T/v.raw"
        assert_contains "$ERR" "no device-mapper"
        # signed, with a signature the kernel would check
        printf 'not-a-real-signature' >"$T/v.roothash.p7s"
        refused "no device-mapper" -i "$T/v.raw" --image-policy=root=signed
        # one file system with .roothash and .verity next to it
        cp "$ROOT.fs" "$T/single.raw"
        echo "$HASH" >"$T/single.roothash"
        cp "$T/tree.verity" "$T/single.verity"
        refused "hash tree from '$T/single.verity'), and this kernel has no device-mapper" -i "$T/single.raw"
}

# A control node without the driver behind it (libdevmapper makes one; this machine had one after
# a day of tests, and berth then tried dm-verity and failed at "name is invalid or still in use")
# is not device-mapper: the refusal stands. The test build looks at a node the test made.
test_no_dm_refused_with_a_stale_control_node() {
        need_tools mknod
        grep -qx '#define BERTH_TEST_HOOKS 1' "${BERTH_BUILD:-/nonexistent}/config.h" 2>/dev/null ||
                skip "not a test build: meson configure -Dtest-hooks=true (test/run-all does)"
        dm_available && skip "this kernel has device-mapper: the refusal is for kernels without it"
        verity_gpt "$T/v.raw"
        mknod "$T/control" c 10 236
        BERTH_TEST_DM_CONTROL=$T/control refused "this kernel has no device-mapper" -i "$T/v.raw" --root-hash="$HASH"
}

test_dm_boot() {
        need_tools
        dm_available || skip "this kernel has no device-mapper (/dev/mapper/control): dm-verity cannot be set up here"
        verity_gpt "$T/v.raw"
        berth_image "${B[@]}" -M "$(new_name)" -i "$T/v.raw" --root-hash="$HASH" /bin/sh -c \
                'cat /marker; grep " / " /proc/self/mounts'
        assert_eq 0 "$RC"
        assert_contains "$OUT" verity-data
        assert_match "$OUT" '^/dev/mapper/berth-[0-9]+-root-verity / ext4 ro,'
        assert_nothing_attached
        # a wrong hash: refused by the kernel
        refused "rejects the root hash" -i "$T/v.raw" --root-hash="$(wrong_hash)"
}

# ---- what asks for verity, and what is missing ----

test_missing_pieces_refused() {
        need_tools
        verity_gpt "$T/v.raw"
        # the verity partition, no hash anywhere: never mounted unprotected by default
        refused "root-verity partition asks for dm-verity on the root partition, and no root hash is known" -i "$T/v.raw"
        assert_contains "$ERR" "--image-policy=root=unprotected"
        # a hash and no tree
        gpt_image "$T/plain.raw" "$T_ROOT:$ROOT.fs"
        refused "--root-hash= asks for dm-verity on the root partition, and there is no hash tree" \
                -i "$T/plain.raw" --root-hash="$HASH"
        # a malformed side file
        echo "not hex" >"$T/plain.roothash"
        refused "plain.roothash' of the image: it does not hold a root hash" -i "$T/plain.raw"
        rm "$T/plain.roothash"
        # a hash tree for a partition the image does not have
        echo "$HASH" >"$T/plain.usrhash"
        refused "plain.usrhash' asks for dm-verity on its usr partition, and the image has none" -i "$T/plain.raw"
        rm "$T/plain.usrhash"
        # a hash tree that is not one (no verity superblock)
        head -c 1M /dev/zero >"$T/zero.verity"
        refused "has no valid verity superblock" -i "$T/plain.raw" --root-hash="$HASH" --verity-data="$T/zero.verity" \
                --image-policy=root=unprotected
}

# ---- the one-time check in userspace ----

test_userspace_check() {
        need_tools
        local before
        verity_gpt "$T/v.raw"
        before=$(sha256sum <"$T/v.raw")
        # the right hash: checked, then mounted read-only without dm-verity
        berth_image "${B[@]}" -M "$(new_name)" -i "$T/v.raw" --root-hash="$HASH" --image-policy=root=unprotected \
                /bin/sh -c 'cat /marker; grep " / " /proc/self/mounts; touch /x 2>&1; true'
        assert_eq 0 "$RC"
        assert_contains "$OUT" verity-data
        assert_match "$OUT" '^/dev/loop[0-9]+ / ext4 ro,'
        assert_contains "$OUT" "Read-only file system"
        assert_eq "$before" "$(sha256sum <"$T/v.raw")"
        # -x still works on a checked image: writes go to the overlay
        berth_image "${B[@]}" -M "$(new_name)" -x -i "$T/v.raw" --root-hash="$HASH" --image-policy=root=unprotected \
                /bin/sh -c 'echo w >/x && cat /x'
        assert_eq 0 "$RC"
        assert_eq w "$OUT"
        assert_eq "$before" "$(sha256sum <"$T/v.raw")"
        # a wrong hash of the right length
        refused "does not match the root hash from --root-hash=" -i "$T/v.raw" --root-hash="$(wrong_hash)" \
                --image-policy=root=unprotected
        # a hash of another length than the tree's (sha256)
        refused "has 20 bytes, and the hash tree uses sha256, whose hashes have 32" -i "$T/v.raw" \
                --root-hash="${HASH:0:40}" --image-policy=root=unprotected
        # a changed byte in the data partition (the marker file's block, 1 MiB in)
        # (in a new file, written through to the disk: nothing of what the earlier runs read of
        # v.raw, in any cache, can stand in for the changed block)
        local off
        off=$(grep -m1 -abo verity-data "$T/v.raw" | cut -d: -f1)
        [ -n "$off" ] || fail "the marker is not in the image"
        cp "$T/v.raw" "$T/changed.raw"
        printf 'V' | dd of="$T/changed.raw" bs=1 seek="$off" conv=notrunc,fsync status=none
        [ "$(sha256sum <"$T/changed.raw")" != "$before" ] || fail "the byte was not changed"
        refused "does not match the root hash" -i "$T/changed.raw" --root-hash="$HASH" --image-policy=root=unprotected
}

# the side files and --verity-data= on one file system without a partition table
test_side_files_single_fs() {
        need_tools
        verity_fs
        cp "$ROOT.fs" "$T/single.raw"
        echo "$HASH" >"$T/single.roothash"
        cp "$T/tree.verity" "$T/single.verity"
        berth_image "${B[@]}" -M "$(new_name)" -i "$T/single.raw" --image-policy=root=unprotected /bin/cat /marker
        assert_eq 0 "$RC"
        assert_eq verity-data "$OUT"
        # the option wins over the side file: a wrong --root-hash= is refused
        refused "does not match the root hash from --root-hash=" -i "$T/single.raw" --root-hash="$(wrong_hash)" \
                --image-policy=root=unprotected
        # --verity-data= elsewhere, no side files
        rm "$T/single.roothash" "$T/single.verity"
        mv "$T/tree.verity" "$T/elsewhere.tree"
        berth_image "${B[@]}" -M "$(new_name)" -i "$T/single.raw" --root-hash="$HASH" --verity-data="$T/elsewhere.tree" \
                --image-policy=root=unprotected /bin/cat /marker
        assert_eq 0 "$RC"
        assert_eq verity-data "$OUT"
        # a wrong side-file hash
        echo "$(wrong_hash)" >"$T/single.roothash"
        refused "single.roothash' (checked in userspace)" -i "$T/single.raw" --verity-data="$T/elsewhere.tree" \
                --image-policy=root=unprotected
        assert_nothing_attached
}

# ---- the image policy ----

test_policy_enforced() {
        need_tools
        verity_fs
        truncate -s 4M "$T/swap.fs"
        mkdir -p "$T/home"
        echo home >"$T/home/marker"
        truncate -s 8M "$T/home.fs"
        mkfs.ext4 -q -F -d "$T/home" "$T/home.fs"
        gpt_image "$T/p.raw" "$T_ROOT:$ROOT.fs" "$T_HOME:$T/home.fs" "$T_SWAP:$T/swap.fs"
        # what the image lacks or has against the policy
        refused "the policy wants the root partition used with dm-verity, and the image offers no verity" \
                -i "$T/p.raw" --image-policy=root=verity
        refused "wants no home partition, and the image has one (partition 2)" \
                -i "$T/p.raw" --image-policy=root=unprotected:home=absent
        refused "wants no swap partition" -i "$T/p.raw" --image-policy='root=unprotected:swap=absent:=ignore'
        refused "only encrypted, and berth opens no LUKS" -i "$T/p.raw" --image-policy=root=encrypted
        refused "leaves neither a root nor a /usr" -i "$T/p.raw" --image-policy='root=unused:=ignore'
        refused "does not allow the file system of the root partition (ext4)" \
                -i "$T/p.raw" --image-policy=root=unprotected+squashfs
        refused "read-only flag of the root partition on" -i "$T/p.raw" --image-policy=root=read-only-on
        refused "wants a srv partition, and the image has none" -i "$T/p.raw" --image-policy='=open:srv=unprotected'
        refused "wants no root partition" -i "$T/p.raw" --image-policy='~'
        # home left unused: not mounted
        berth_image "${B[@]}" -M "$(new_name)" -i "$T/p.raw" --image-policy='root=unprotected+ext4:home=unused' \
                /bin/sh -c 'cat /home/marker 2>&1; true'
        assert_eq 0 "$RC"
        assert_contains "$OUT" "No such file"
        # nspawn's default: home mounted, swap ignored
        berth_image "${B[@]}" -M "$(new_name)" -i "$T/p.raw" /bin/cat /home/marker
        assert_eq 0 "$RC"
        assert_eq home "$OUT"
        assert_nothing_attached
}
run_tests
