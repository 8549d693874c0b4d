#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Point 4: what an init expects to find in a container.
. "$(dirname "$0")/lib.sh"
require_root

B=(--console=pipe -q)

in_container() {
        berth "${B[@]}" -D "$ROOT" "$@"
}

test_container_environment() {
        make_tiny_tree "$ROOT"
        in_container --uuid=0123456789abcdef0123456789abcdef /usr/bin/payload env
        assert_eq 0 "$RC"
        assert_contains "$OUT" "container=berth"
        assert_contains "$OUT" "container_uuid=01234567-89ab-cdef-0123-456789abcdef"
        assert_contains "$OUT" "NOTIFY_SOCKET=/run/host/notify"
        assert_contains "$OUT" "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

test_random_uuid_differs_per_run() {
        make_tiny_tree "$ROOT"
        in_container /bin/sh -c 'echo $container_uuid'
        local a=$OUT
        in_container /bin/sh -c 'echo $container_uuid'
        assert_match "$a" '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$'
        [ "$a" != "$OUT" ] || fail "same uuid twice: $a"
}

test_run_host_files() {
        make_tiny_tree "$ROOT"
        in_container /usr/bin/payload cat /run/host/container-manager
        assert_eq berth "$OUT"
        in_container /usr/bin/payload cat /run/host/os-release
        assert_eq "$(cat /etc/os-release)" "$OUT"
}

test_machine_id() {
        make_tiny_tree "$ROOT"
        : >"$ROOT/etc/machine-id"
        in_container --uuid=0123456789abcdef0123456789abcdef /usr/bin/payload cat /etc/machine-id
        assert_eq 0123456789abcdef0123456789abcdef "$OUT"
        # the tree itself is not changed
        assert_eq "" "$(cat "$ROOT/etc/machine-id")"
        # a machine ID the tree has is kept
        echo 11111111111111111111111111111111 >"$ROOT/etc/machine-id"
        in_container /usr/bin/payload cat /etc/machine-id
        assert_eq 11111111111111111111111111111111 "$OUT"
}

test_dev_is_minimal() {
        make_tiny_tree "$ROOT"
        in_container /bin/ls /dev
        for d in null zero full random urandom tty ptmx pts shm mqueue fd stdin stdout stderr; do
                assert_contains "$OUT" "$d"
        done
        for d in sda vda mem kmsg loop0 kvm; do
                if grep -qx "$d" <<<"$OUT"; then fail "/dev/$d exists in the container"; fi
        done
        in_container /bin/sh -c 'echo x >/dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c'
        assert_eq 0 "$RC"
        assert_eq $'4\n4' "$OUT"
}

test_dev_pts_is_private() {
        make_tiny_tree "$ROOT"
        in_container /usr/bin/payload mounts
        assert_match "$OUT" ' /dev/pts [^ ]+ .*- devpts '
        # the host's ptys are not visible
        local host_n container_n
        host_n=$(ls /dev/pts | wc -l)
        in_container /bin/ls /dev/pts
        container_n=$(echo "$OUT" | grep -cv '^ptmx$' || true)
        [ "$container_n" -le 1 ] || fail "container sees $container_n ptys (host has $host_n)"
}

test_proc_sys_read_only() {
        make_tiny_tree "$ROOT"
        in_container /usr/bin/payload write /proc/sys/kernel/hostname evil
        assert_eq 1 "$RC"
        assert_contains "$OUT" "errno=EROFS"
        in_container /usr/bin/payload write /proc/sys/vm/drop_caches 3
        assert_eq 1 "$RC"
}

test_sys_read_only() {
        make_tiny_tree "$ROOT"
        in_container /usr/bin/payload write /sys/class/net/lo/mtu 1280
        assert_eq 1 "$RC"
        assert_contains "$OUT" "errno=EROFS"
}

test_sensitive_proc_files_masked() {
        make_tiny_tree "$ROOT"
        for f in /proc/kcore /proc/kallsyms /proc/keys /proc/timer_list /proc/sysrq-trigger; do
                [ -e "$f" ] || continue
                in_container /bin/sh -c "wc -c <$f"
                assert_eq 0 "$RC" "reading $f"
                assert_eq 0 "$OUT" "$f must read as empty"
        done
        in_container /usr/bin/payload write /proc/sysrq-trigger h
        assert_eq 1 "$RC"
        in_container /bin/ls /proc/irq
        assert_eq "" "$OUT"
}

test_run_and_tmp_are_tmpfs() {
        make_tiny_tree "$ROOT"
        in_container /usr/bin/payload mounts
        assert_match "$OUT" ' /run [^ ]+ .*- tmpfs '
        assert_match "$OUT" ' /tmp [^ ]+ .*- tmpfs '
        in_container /bin/sh -c 'echo x >/tmp/f && echo y >/run/f && cat /tmp/f /run/f'
        assert_eq $'x\ny' "$OUT"
        [ ! -e "$ROOT/tmp/f" ] || fail "/tmp write reached the tree"
}

test_hostname_and_machine() {
        make_tiny_tree "$ROOT"
        local web1
        web1=$(unique_name web1)
        in_container /bin/hostname
        assert_eq "$ROOT_NAME" "$OUT" "the default host name: the tree's name"
        in_container -M "$web1" /bin/hostname
        assert_eq "$web1" "$OUT"
        in_container -M "$web1" --hostname=other /bin/hostname
        assert_eq other "$OUT"
        [ "$(hostname)" != other ] || fail "host name of the host changed"
}

test_setenv_and_chdir() {
        make_tiny_tree "$ROOT"
        mkdir -p "$ROOT/srv/app"
        in_container -E FOO=bar -E container=override --chdir=/srv/app /bin/sh -c 'echo $FOO $container; pwd'
        assert_eq $'bar override\n/srv/app' "$OUT"
        in_container --chdir=/nope /bin/true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "/nope"
}

test_user() {
        make_tiny_tree "$ROOT"
        in_container -u tester /usr/bin/payload id
        assert_eq 0 "$RC"
        assert_contains "$OUT" "1000"
        in_container -u tester /bin/sh -c 'echo $HOME $USER; pwd'
        assert_eq $'/home/tester tester\n/home/tester' "$OUT"
        in_container -u nosuchuser /bin/true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "nosuchuser"
        # a non-root user has no capabilities left
        in_container -u tester /usr/bin/payload caps
        assert_contains "$OUT" "CapEff=0000000000000000"
}

test_resolv_conf_and_timezone() {
        [ -f /etc/resolv.conf ] || skip "host has no /etc/resolv.conf"
        make_tiny_tree "$ROOT"
        in_container --resolv-conf=copy-host /usr/bin/payload cat /etc/resolv.conf
        assert_eq "$(cat /etc/resolv.conf)" "$OUT"
        in_container --resolv-conf=delete /usr/bin/payload cat /etc/resolv.conf
        assert_eq 1 "$RC"
        if [ -f /etc/localtime ]; then
                in_container --timezone=copy /bin/sh -c 'wc -c </etc/localtime'
                assert_eq "$(wc -c </etc/localtime)" "$OUT"
        fi
        # read-only tree: bound instead of written
        rm -f "$ROOT/etc/resolv.conf"; touch "$ROOT/etc/resolv.conf"
        in_container --read-only --resolv-conf=bind-host /usr/bin/payload cat /etc/resolv.conf
        assert_eq "$(cat /etc/resolv.conf)" "$OUT"
        assert_eq "" "$(cat "$ROOT/etc/resolv.conf")"
}

test_no_host_fds_leak() {
        make_tiny_tree "$ROOT"
        exec 7</etc/hostname
        in_container /usr/bin/payload fds
        exec 7<&-
        assert_eq 0 "$RC"
        assert_not_contains "$OUT" "hostname"
        # only stdio
        local n
        n=$(echo "$OUT" | grep -cE '^[0-9]+ ' || true)
        [ "$n" -le 4 ] || fail "too many fds: $OUT"
}

# --suppress-sync / SuppressSync=: the sync calls do nothing and say 0 (each has a way to fail
# otherwise), O_SYNC and O_DSYNC opens are refused; without it all is as usual
test_suppress_sync() {
        local name
        make_tiny_tree "$ROOT"
        in_container /usr/bin/payload syncs /tmp/x
        assert_eq 0 "$RC"
        assert_eq "fsync=EINVAL fdatasync=EINVAL sync_file_range=ESPIPE syncfs=EBADF msync=EINVAL open-osync=0 openat-odsync=0 open=0" \
                "$(echo $OUT)"
        in_container --suppress-sync=yes /usr/bin/payload syncs /tmp/x
        assert_eq 0 "$RC"
        assert_eq "fsync=0 fdatasync=0 sync_file_range=0 syncfs=0 msync=0 open-osync=EINVAL openat-odsync=EINVAL open=0" \
                "$(echo $OUT)"
        # a shell's sync works (and does nothing)
        in_container --suppress-sync=yes /bin/sh -c 'sync && echo synced'
        assert_eq synced "$OUT"
        # from a settings file
        name=$(unique_name sync)
        make_tiny_tree "$T/m/$name"
        printf '[Exec]\nSuppressSync=yes\n' >"$T/m/$name.nspawn"
        berth "${B[@]}" -D "$T/m/$name" /usr/bin/payload syncs /tmp/x
        assert_eq 0 "$RC" "$ERR"
        assert_contains "$OUT" "fsync=0"
}

run_tests
