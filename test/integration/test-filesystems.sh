#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# File systems: --bind, --bind-ro, --tmpfs, --overlay, --overlay-ro, --inaccessible, --read-only,
# --ephemeral, --volatile= and --template=, with nspawn's syntax and meaning.
. "$(dirname "$0")/lib.sh"
require_root

B=(--console=pipe -q)

# A listing of a tree (paths, types, modes, owners, sizes, link targets) to compare before/after.
tree_state() {
        (cd "$1" && find . -printf '%p %y %m %u %g %s %l\n' | sort)
}

# A host directory with a file, to bind into containers.
make_src() {
        mkdir -p "$T/src"
        echo host-data >"$T/src/file"
}

# Temporary directories berth makes for empty sources (KIND: bind or overlay) of this case's
# machine ($ROOT_NAME): other runs make theirs at the same time.
list_berth_tmp() {
        find "${TMPDIR:-/var/tmp}" -maxdepth 1 -name "berth-$1-$ROOT_NAME-*" 2>/dev/null | sort
}

# ---- --bind, --bind-ro ----

test_bind_reads_and_writes_host_dir() {
        make_tiny_tree "$ROOT"
        make_src
        berth "${B[@]}" -D "$ROOT" --bind="$T/src:/mnt/src" /usr/bin/payload cat /mnt/src/file
        assert_eq 0 "$RC"
        assert_eq host-data "$OUT"
        berth "${B[@]}" -D "$ROOT" --bind="$T/src:/mnt/src" /usr/bin/payload write /mnt/src/file changed
        assert_eq 0 "$RC"
        assert_eq changed "$(cat "$T/src/file")"
}

test_bind_single_path_is_same_path_inside() {
        make_tiny_tree "$ROOT"
        make_src
        berth "${B[@]}" -D "$ROOT" --bind="$T/src" /usr/bin/payload cat "$T/src/file"
        assert_eq 0 "$RC"
        assert_eq host-data "$OUT"
}

test_bind_ro_write_fails_erofs() {
        make_tiny_tree "$ROOT"
        make_src
        berth "${B[@]}" -D "$ROOT" --bind-ro="$T/src:/mnt/src" /usr/bin/payload write /mnt/src/file changed
        assert_eq 1 "$RC"
        assert_contains "$OUT" "errno=EROFS"
        assert_eq host-data "$(cat "$T/src/file")"
        berth "${B[@]}" -D "$ROOT" --bind-ro="$T/src:/mnt/src" /usr/bin/payload cat /mnt/src/file
        assert_eq 0 "$RC"
        assert_eq host-data "$OUT"
}

test_bind_ro_is_read_only_in_submounts() {
        make_tiny_tree "$ROOT"
        make_src
        mkdir "$T/src/sub"
        mount -t tmpfs berth-test "$T/src/sub"
        echo sub-data >"$T/src/sub/file"
        # rbind is the default: the submount comes along ...
        berth "${B[@]}" -D "$ROOT" --bind-ro="$T/src:/m" /usr/bin/payload cat /m/sub/file
        assert_eq 0 "$RC"
        assert_eq sub-data "$OUT"
        # ... read-only too
        berth "${B[@]}" -D "$ROOT" --bind-ro="$T/src:/m" /usr/bin/payload write /m/sub/file x
        assert_eq 1 "$RC"
        assert_contains "$OUT" "errno=EROFS"
        berth "${B[@]}" -D "$ROOT" --bind-ro="$T/src:/m" /usr/bin/payload touch /m/sub/new
        assert_eq 1 "$RC"
        assert_contains "$OUT" "errno=EROFS"
        assert_eq sub-data "$(cat "$T/src/sub/file")"
        umount "$T/src/sub"
}

test_bind_norbind_leaves_submounts_out() {
        make_tiny_tree "$ROOT"
        make_src
        mkdir "$T/src/sub"
        mount -t tmpfs berth-test "$T/src/sub"
        echo sub-data >"$T/src/sub/file"
        berth "${B[@]}" -D "$ROOT" --bind="$T/src:/m:norbind" /usr/bin/payload ls /m/sub
        assert_eq 0 "$RC"
        assert_eq "" "$OUT"
        berth "${B[@]}" -D "$ROOT" --bind="$T/src:/m:rbind" /usr/bin/payload ls /m/sub
        assert_eq 0 "$RC"
        assert_eq file "$OUT"
        umount "$T/src/sub"
}

test_bind_file() {
        make_tiny_tree "$ROOT"
        echo file-data >"$T/hostfile"
        berth "${B[@]}" -D "$ROOT" --bind-ro="$T/hostfile:/etc/berth-file" /usr/bin/payload cat /etc/berth-file
        assert_eq 0 "$RC"
        assert_eq file-data "$OUT"
        berth "${B[@]}" -D "$ROOT" --bind-ro="$T/hostfile:/etc/berth-file" /usr/bin/payload stat /etc/berth-file
        assert_contains "$OUT" "type=file"
}

test_bind_creates_destination() {
        make_tiny_tree "$ROOT"
        make_src
        berth "${B[@]}" -D "$ROOT" --bind="$T/src:/a/b/c" /usr/bin/payload cat /a/b/c/file
        assert_eq 0 "$RC"
        assert_eq host-data "$OUT"
        [ -d "$ROOT/a/b/c" ] || fail "the mount point was not created in the tree"
}

test_bind_colon_escape() {
        make_tiny_tree "$ROOT"
        mkdir -p "$T/a:b"
        echo colon >"$T/a:b/file"
        berth "${B[@]}" -D "$ROOT" --bind="$T/a\\:b:/x\\:y" /usr/bin/payload cat /x:y/file
        assert_eq 0 "$RC"
        assert_eq colon "$OUT"
}

test_bind_source_relative_to_tree() {
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -D "$ROOT" --bind-ro="+/etc:/mnt/etc" /usr/bin/payload cat /mnt/etc/os-release
        assert_eq 0 "$RC"
        assert_contains "$OUT" "ID=berthtest"
}

test_bind_plus_source_symlink_stays_in_tree() {
        make_tiny_tree "$ROOT"
        ln -s /etc "$ROOT/hostetc"
        # /hostetc -> /etc resolves to the tree's /etc, never the host's
        berth "${B[@]}" -D "$ROOT" --bind-ro="+/hostetc:/mnt/e" /usr/bin/payload ls /mnt/e
        assert_eq 0 "$RC"
        assert_contains "$OUT" inittab
        assert_not_contains "$OUT" fstab
}

test_bind_symlink_destination_does_not_escape() {
        make_tiny_tree "$ROOT"
        make_src
        ln -s /etc "$ROOT/evil"
        ln -s ../../../../../../../../etc "$ROOT/evil2"
        local etc_before
        etc_before=$(ls -1a /etc)
        host_snapshot
        berth "${B[@]}" -D "$ROOT" --bind="$T/src:/evil/berth-escape-test" /usr/bin/payload cat /etc/berth-escape-test/file
        assert_eq 0 "$RC"
        assert_eq host-data "$OUT"
        berth "${B[@]}" -D "$ROOT" --tmpfs=/evil2/berth-escape-test2 /usr/bin/payload true
        assert_eq 0 "$RC"
        berth "${B[@]}" -D "$ROOT" --bind-ro="$T/src/file:/evil/passwd" /usr/bin/payload cat /etc/passwd
        assert_eq 0 "$RC"
        assert_eq host-data "$OUT"
        [ ! -e /etc/berth-escape-test ] || fail "a mount point was created in the host's /etc"
        [ ! -e /etc/berth-escape-test2 ] || fail "a mount point was created in the host's /etc"
        [ -d "$ROOT/etc/berth-escape-test" ] || fail "the mount point was not created in the tree's /etc"
        assert_eq "$etc_before" "$(ls -1a /etc)" "host /etc"
        assert_host_unchanged
}

test_bind_empty_source_is_temporary() {
        make_tiny_tree "$ROOT"
        local before
        before=$(list_berth_tmp bind)
        berth "${B[@]}" -D "$ROOT" --bind=:/scratch /usr/bin/payload touch /scratch/x
        assert_eq 0 "$RC"
        assert_eq "$before" "$(list_berth_tmp bind)" "temporary directories in /var/tmp"
}

test_bind_missing_source_one_line_error() {
        make_tiny_tree "$ROOT"
        local state
        state=$(tree_state "$ROOT")
        host_snapshot
        berth "${B[@]}" -D "$ROOT" --bind=/nonexistent-berth-test:/m /usr/bin/payload true
        [ "$RC" != 0 ] || fail "berth succeeded with a missing bind source"
        assert_one_line_error
        assert_contains "$ERR" "/nonexistent-berth-test"
        assert_contains "$ERR" "--bind="
        assert_contains "$ERR" "No such file or directory"
        assert_eq "$state" "$(tree_state "$ROOT")" "tree"
        assert_host_unchanged
}

test_bind_bad_arguments() {
        make_tiny_tree "$ROOT"
        local arg
        for arg in "" "relative" "/a:relative" "/a:" "/a:/b:bogus" "/a:/x/../y" "/a:/"; do
                berth "${B[@]}" -D "$ROOT" --bind="$arg" /usr/bin/payload true
                [ "$RC" != 0 ] || fail "--bind='$arg' was accepted"
                assert_one_line_error "--bind='$arg'"
        done
}

# The ID-mapping options without a user namespace: the container's range is the host's 0..65535,
# as in nspawn, so rootidmap makes the source's owner the container's (and the host's) root.
test_bind_idmap_without_userns() {
        make_tiny_tree "$ROOT"
        mkdir "$T/src"
        touch "$T/src/f" "$T/src/far"
        chown -R 1000:1000 "$T/src"
        chown 70000:70000 "$T/src/far"
        berth "${B[@]}" -D "$ROOT" --bind="$T/src:/m:rootidmap" /bin/sh -c 'stat -c "%n %u:%g" /m/f /m/far; touch /m/new'
        assert_eq 0 "$RC"
        assert_eq "/m/f 0:0
/m/far 65534:65534" "$OUT" "rootidmap"
        assert_eq 1000:1000 "$(stat -c %u:%g "$T/src/new")" "root's new file belongs to the source's owner"
        berth "${B[@]}" -D "$ROOT" --bind="$T/src:/m:idmap" /bin/stat -c "%n %u:%g" /m/f /m/far
        assert_eq "/m/f 1000:1000
/m/far 65534:65534" "$OUT" "idmap: 0..65535 as they are"
        berth "${B[@]}" -D "$ROOT" --bind="$T/src:/home/tester:owneridmap" --user=tester /bin/sh -c \
                'stat -c "%n %u:%g" /home/tester/f; touch /home/tester/mine'
        assert_eq 0 "$RC"
        assert_eq "/home/tester/f 1000:1000" "$OUT" "owneridmap"
        assert_eq 1000:1000 "$(stat -c %u:%g "$T/src/mine")"
        berth "${B[@]}" -D "$ROOT" --bind-ro=/proc/sys:/m:norbind,rootidmap /usr/bin/payload true
        [ "$RC" != 0 ] || fail "an idmapped procfs was accepted"
        assert_one_line_error
        assert_contains "$ERR" "cannot be mounted idmapped: drop 'rootidmap'"
}

# ---- --tmpfs ----

test_tmpfs_default_mode() {
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -D "$ROOT" --tmpfs=/scratch /usr/bin/payload stat /scratch
        assert_eq 0 "$RC"
        assert_contains "$OUT" "type=dir mode=0755"
        berth "${B[@]}" -D "$ROOT" --tmpfs=/scratch /usr/bin/payload touch /scratch/x
        assert_eq 0 "$RC"
        [ ! -e "$ROOT/scratch/x" ] || fail "the tmpfs write reached the tree"
}

test_tmpfs_options() {
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -D "$ROOT" --tmpfs=/scratch:mode=0700,size=1M /usr/bin/payload stat /scratch
        assert_eq 0 "$RC"
        assert_contains "$OUT" "mode=0700"
        berth "${B[@]}" -D "$ROOT" --tmpfs=/scratch:ro /usr/bin/payload touch /scratch/x
        assert_eq 1 "$RC"
        assert_contains "$OUT" "errno=EROFS"
        berth "${B[@]}" -D "$ROOT" --tmpfs=/scratch:bogus=1 /usr/bin/payload true
        [ "$RC" != 0 ] || fail "a bad tmpfs option was accepted"
        assert_one_line_error
        assert_contains "$ERR" "/scratch"
        assert_contains "$ERR" "bogus"
}

# ---- --overlay, --overlay-ro ----

make_layers() {
        mkdir -p "$T/lower" "$T/upper"
        echo lower-a >"$T/lower/a"
        echo lower-b >"$T/lower/b"
}

test_overlay_writes_land_in_upper() {
        make_tiny_tree "$ROOT"
        make_layers
        berth "${B[@]}" -D "$ROOT" --overlay="$T/lower:$T/upper:/ov" /usr/bin/payload cat /ov/a
        assert_eq 0 "$RC"
        assert_eq lower-a "$OUT"
        berth "${B[@]}" -D "$ROOT" --overlay="$T/lower:$T/upper:/ov" /usr/bin/payload write /ov/a changed
        assert_eq 0 "$RC"
        berth "${B[@]}" -D "$ROOT" --overlay="$T/lower:$T/upper:/ov" /usr/bin/payload touch /ov/new
        assert_eq 0 "$RC"
        assert_eq lower-a "$(cat "$T/lower/a")" "lower layer"
        assert_eq changed "$(cat "$T/upper/a")" "upper layer"
        [ -e "$T/upper/new" ] || fail "new file not in the upper layer"
        [ ! -e "$T/lower/new" ] || fail "new file in the lower layer"
        # the work directory berth made next to the upper one is gone
        assert_not_contains "$(ls -a "$T")" ".#upper"
}

test_overlay_two_paths() {
        make_tiny_tree "$ROOT"
        make_layers
        echo upper-b >"$T/upper/b"
        # two paths: the second is the upper layer and also the mount point
        berth "${B[@]}" -D "$ROOT" --overlay="$T/lower:$T/upper" /usr/bin/payload cat "$T/upper/b"
        assert_eq 0 "$RC"
        assert_eq upper-b "$OUT"
        berth "${B[@]}" -D "$ROOT" --overlay="$T/lower:$T/upper" /usr/bin/payload cat "$T/upper/a"
        assert_eq lower-a "$OUT"
}

test_overlay_temporary_upper() {
        make_tiny_tree "$ROOT"
        make_layers
        local before
        before=$(list_berth_tmp overlay)
        berth "${B[@]}" -D "$ROOT" --overlay="$T/lower::/ov" /usr/bin/payload write /ov/a changed
        assert_eq 0 "$RC"
        assert_eq lower-a "$(cat "$T/lower/a")"
        assert_eq "$before" "$(list_berth_tmp overlay)" "temporary directories in /var/tmp"
}

test_overlay_tree_var_writable() {
        make_tiny_tree "$ROOT"
        local state
        state=$(tree_state "$ROOT")
        # nspawn's example: a writable throw-away layer over the tree's own directory
        berth "${B[@]}" -D "$ROOT" --read-only --overlay=+/etc::/etc /usr/bin/payload touch /etc/new
        assert_eq 0 "$RC"
        assert_eq "$state" "$(tree_state "$ROOT")" "tree"
}

test_overlay_ro() {
        make_tiny_tree "$ROOT"
        make_layers
        mkdir -p "$T/top"
        echo top-b >"$T/top/b"
        berth "${B[@]}" -D "$ROOT" --overlay-ro="$T/lower:$T/top:/ov" /usr/bin/payload cat /ov/b
        assert_eq 0 "$RC"
        assert_eq top-b "$OUT"
        berth "${B[@]}" -D "$ROOT" --overlay-ro="$T/lower:$T/top:/ov" /usr/bin/payload cat /ov/a
        assert_eq lower-a "$OUT"
        berth "${B[@]}" -D "$ROOT" --overlay-ro="$T/lower:$T/top:/ov" /usr/bin/payload touch /ov/new
        assert_eq 1 "$RC"
        assert_contains "$OUT" "errno=EROFS"
}

test_overlay_missing_lower_error() {
        make_tiny_tree "$ROOT"
        host_snapshot
        berth "${B[@]}" -D "$ROOT" --overlay="/nonexistent-berth-lower::/ov" /usr/bin/payload true
        [ "$RC" != 0 ] || fail "a missing lower layer was accepted"
        assert_one_line_error
        assert_contains "$ERR" "/nonexistent-berth-lower"
        assert_contains "$ERR" "--overlay="
        assert_host_unchanged
}

# ---- --inaccessible ----

test_inaccessible_file() {
        make_tiny_tree "$ROOT"
        echo s3cret >"$ROOT/etc/secret"
        chmod 0644 "$ROOT/etc/secret"
        berth "${B[@]}" -D "$ROOT" --inaccessible=/etc/secret /usr/bin/payload cat /etc/secret
        assert_not_contains "$OUT" s3cret
        berth "${B[@]}" -D "$ROOT" --inaccessible=/etc/secret /usr/bin/payload stat /etc/secret
        assert_contains "$OUT" "type=file mode=0000"
        berth "${B[@]}" -D "$ROOT" --inaccessible=/etc/secret -u tester /usr/bin/payload cat /etc/secret
        assert_eq 1 "$RC"
        assert_contains "$OUT" "errno=EACCES"
        berth "${B[@]}" -D "$ROOT" --inaccessible=/etc/secret /usr/bin/payload write /etc/secret x
        assert_eq 1 "$RC"
        assert_eq s3cret "$(cat "$ROOT/etc/secret")"
}

test_inaccessible_dir() {
        make_tiny_tree "$ROOT"
        mkdir -p "$ROOT/srv/data"
        echo s3cret >"$ROOT/srv/data/file"
        berth "${B[@]}" -D "$ROOT" --inaccessible=/srv/data /usr/bin/payload ls /srv/data
        assert_not_contains "$OUT" file
        berth "${B[@]}" -D "$ROOT" --inaccessible=/srv/data /usr/bin/payload stat /srv/data
        assert_contains "$OUT" "type=dir mode=0000"
        berth "${B[@]}" -D "$ROOT" --inaccessible=/srv/data -u tester /usr/bin/payload ls /srv/data
        assert_eq 1 "$RC"
        assert_contains "$OUT" "errno=EACCES"
}

test_inaccessible_special_files() {
        make_tiny_tree "$ROOT"
        mkfifo "$ROOT/fifo"
        berth "${B[@]}" -D "$ROOT" --inaccessible=/fifo /usr/bin/payload stat /fifo
        assert_eq 0 "$RC"
        assert_contains "$OUT" "type=fifo mode=0000"
        # after the API file systems: a device node of /dev is masked by a dead one
        berth "${B[@]}" -D "$ROOT" --inaccessible=/dev/zero /usr/bin/payload cat /dev/zero
        assert_eq 1 "$RC"
        berth "${B[@]}" -D "$ROOT" --inaccessible=/dev/zero /usr/bin/payload stat /dev/zero
        assert_contains "$OUT" "type=char mode=0000 uid=0 gid=0 rdev=0:0"
}

test_inaccessible_missing_path() {
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -D "$ROOT" --inaccessible=/nonexistent /usr/bin/payload true
        [ "$RC" != 0 ] || fail "a missing path was accepted"
        assert_contains "$ERR" "/nonexistent"
}

# ---- --read-only ----

test_read_only_root() {
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -D "$ROOT" --read-only /usr/bin/payload touch /newfile
        assert_eq 1 "$RC"
        assert_contains "$OUT" "errno=EROFS"
        berth "${B[@]}" -D "$ROOT" --read-only /usr/bin/payload write /etc/os-release x
        assert_eq 1 "$RC"
        assert_contains "$OUT" "errno=EROFS"
        berth "${B[@]}" -D "$ROOT" --read-only /usr/bin/payload touch /tmp/x
        assert_eq 0 "$RC"
        berth "${B[@]}" -D "$ROOT" --read-only /usr/bin/payload touch /run/x
        assert_eq 0 "$RC"
}

test_read_only_leaves_custom_mounts_writable() {
        make_tiny_tree "$ROOT"
        make_src
        berth "${B[@]}" -D "$ROOT" --read-only --bind="$T/src:/m" /usr/bin/payload touch /m/new
        assert_eq 0 "$RC"
        [ -e "$T/src/new" ] || fail "write through the bind mount did not reach the host"
}

# ---- --ephemeral ----

test_ephemeral_writes_vanish() {
        make_tiny_tree "$ROOT"
        local state
        state=$(tree_state "$ROOT")
        berth "${B[@]}" -D "$ROOT" -x /usr/bin/payload touch /newfile
        assert_eq 0 "$RC"
        berth "${B[@]}" -D "$ROOT" -x /usr/bin/payload write /etc/os-release changed
        assert_eq 0 "$RC"
        berth "${B[@]}" -D "$ROOT" --ephemeral /usr/bin/payload cat /etc/os-release
        assert_contains "$OUT" "ID=berthtest"
        assert_eq "$state" "$(tree_state "$ROOT")" "tree"
}

test_ephemeral_concurrent_instances() {
        make_tiny_tree "$ROOT"
        local state
        state=$(tree_state "$ROOT")
        # each writes its mark, then waits until the other has written its own: both run at once
        mkdir "$T/sync"
        # shellcheck disable=SC2016 # for the container's shell
        local script='echo $0 > /mark; touch /sync/$0; i=0
                while [ ! -e /sync/$1 ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i + 1)); done; cat /mark'
        "$BERTH" "${B[@]}" -D "$ROOT" -x -M "$(unique_name fs-eph-a)" --bind="$T/sync:/sync" \
                /bin/sh -c "$script" a b >"$T/a.out" 2>"$T/a.err" </dev/null &
        local pid_a=$!
        "$BERTH" "${B[@]}" -D "$ROOT" -x -M "$(unique_name fs-eph-b)" --bind="$T/sync:/sync" \
                /bin/sh -c "$script" b a >"$T/b.out" 2>"$T/b.err" </dev/null &
        local pid_b=$!
        local rc_a=0 rc_b=0
        wait "$pid_a" || rc_a=$?
        wait "$pid_b" || rc_b=$?
        assert_eq 0 "$rc_a" "instance a ($(cat "$T/a.err"))"
        assert_eq 0 "$rc_b" "instance b ($(cat "$T/b.err"))"
        assert_eq a "$(cat "$T/a.out")"
        assert_eq b "$(cat "$T/b.out")"
        assert_eq "$state" "$(tree_state "$ROOT")" "tree"
}

test_ephemeral_leaves_host_unchanged() {
        make_tiny_tree "$ROOT"
        host_snapshot
        berth "${B[@]}" -D "$ROOT" -x /usr/bin/payload true
        assert_eq 0 "$RC"
        assert_host_unchanged
}

# ---- the root source ----

# The monitor resolves the tree into a detached mount with its propagation cut (slave) before the
# container mounts anything in it: where the tree sits on a shared mount of the host (as under
# systemd, where / is shared), nothing the container mounts below its root shows up on the host.
test_container_mounts_stay_off_a_shared_host_mount() {
        mkdir "$T/shared"
        mount --bind "$T/shared" "$T/shared"
        mount --make-shared "$T/shared"
        make_tiny_tree "$T/shared/root"
        "$BERTH" "${B[@]}" -M "shared-$$" -D "$T/shared/root" --tmpfs=/mnt --bind="$T:/srv" \
                /bin/sh -c 'touch /root/ready; exec sleep 60' &
        local pid=$!
        wait_for test -e "$T/shared/root/root/ready" || fail "the container did not start"
        local mounts
        mounts=$(findmnt -rn -o TARGET | grep "^$T/shared" || true)
        kill "$pid"
        wait "$pid" || true
        assert_eq "$T/shared" "$mounts"
}

# ---- --volatile ----

test_volatile_yes() {
        make_tiny_tree "$ROOT"
        local state
        state=$(tree_state "$ROOT")
        berth "${B[@]}" -D "$ROOT" --volatile=yes /usr/bin/payload ls /etc
        assert_eq 0 "$RC"
        assert_not_contains "$OUT" inittab
        berth "${B[@]}" -D "$ROOT" --volatile=yes /usr/bin/payload touch /newfile
        assert_eq 0 "$RC"
        berth "${B[@]}" -D "$ROOT" --volatile=yes /usr/bin/payload touch /usr/newfile
        assert_eq 1 "$RC"
        assert_contains "$OUT" "errno=EROFS"
        berth "${B[@]}" -D "$ROOT" --volatile /usr/bin/payload true
        assert_eq 0 "$RC"
        assert_eq "$state" "$(tree_state "$ROOT")" "tree"
}

test_volatile_state() {
        make_tiny_tree "$ROOT"
        local state
        state=$(tree_state "$ROOT")
        berth "${B[@]}" -D "$ROOT" --volatile=state /usr/bin/payload touch /newfile
        assert_eq 1 "$RC"
        assert_contains "$OUT" "errno=EROFS"
        berth "${B[@]}" -D "$ROOT" --volatile=state /usr/bin/payload touch /var/newfile
        assert_eq 0 "$RC"
        berth "${B[@]}" -D "$ROOT" --volatile=state /usr/bin/payload ls /var
        assert_eq "" "$OUT"
        berth "${B[@]}" -D "$ROOT" --volatile=state /usr/bin/payload cat /etc/os-release
        assert_contains "$OUT" "ID=berthtest"
        assert_eq "$state" "$(tree_state "$ROOT")" "tree"
}

test_volatile_overlay() {
        make_tiny_tree "$ROOT"
        local state
        state=$(tree_state "$ROOT")
        berth "${B[@]}" -D "$ROOT" --volatile=overlay /usr/bin/payload touch /newfile
        assert_eq 0 "$RC"
        berth "${B[@]}" -D "$ROOT" --volatile=overlay /usr/bin/payload write /etc/os-release x
        assert_eq 0 "$RC"
        assert_eq "$state" "$(tree_state "$ROOT")" "tree"
}

# ---- --template ----

test_template_creates_directory() {
        make_tiny_tree "$T/tpl"
        local state
        state=$(tree_state "$T/tpl")
        berth "${B[@]}" -D "$T/fs-new" --template="$T/tpl" /usr/bin/payload cat /etc/os-release
        assert_eq 0 "$RC"
        assert_contains "$OUT" "ID=berthtest"
        [ -x "$T/fs-new/usr/bin/payload" ] || fail "the new tree has no payload"
        assert_eq "$state" "$(tree_state "$T/tpl")" "template"
        assert_eq "$state" "$(tree_state "$T/fs-new")" "copy (modes, owners, symlinks)"
        assert_not_contains "$(ls -a "$T")" ".#fs-new"
}

test_template_fills_empty_directory_only() {
        make_tiny_tree "$T/tpl"
        mkdir "$T/fs-empty"
        berth "${B[@]}" -D "$T/fs-empty" --template="$T/tpl" /usr/bin/payload true
        assert_eq 0 "$RC"
        [ -x "$T/fs-empty/usr/bin/payload" ] || fail "the empty directory was not populated"
        # a populated directory is used as it is
        make_tiny_tree "$T/fs-full"
        echo mine >"$T/fs-full/etc/marker"
        rm "$T/tpl/etc/inittab"
        berth "${B[@]}" -D "$T/fs-full" --template="$T/tpl" /usr/bin/payload cat /etc/marker
        assert_eq 0 "$RC"
        assert_eq mine "$OUT"
        [ -e "$T/fs-full/etc/inittab" ] || fail "the populated directory was touched"
}

run_tests
