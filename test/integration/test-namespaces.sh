#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Point 3: namespaces, pivot_root, the container's cgroup.
. "$(dirname "$0")/lib.sh"
require_root

B=(--console=pipe -q)

in_container() {
        berth "${B[@]}" -D "$ROOT" "$@"
}

ns_of() { readlink "/proc/$1/ns/$2"; }

test_new_namespaces() {
        make_tiny_tree "$ROOT"
        in_container /bin/sh -c 'for n in mnt pid uts ipc cgroup net; do readlink /proc/self/ns/$n; done'
        assert_eq 0 "$RC"
        local i=0
        for n in mnt pid uts ipc cgroup; do
                local inside
                inside=$(sed -n "$((i + 1))p" <<<"$OUT")
                [ "$inside" != "$(ns_of $$ $n)" ] || fail "$n namespace is the host's"
                i=$((i + 1))
        done
        # without --private-network the network is the host's
        assert_eq "$(ns_of $$ net)" "$(sed -n 6p <<<"$OUT")"
}

test_pid_namespace() {
        make_tiny_tree "$ROOT"
        in_container /bin/sh -c 'ls /proc | grep -c "^[0-9]"'
        [ "$OUT" -le 3 ] || fail "container sees $OUT processes"
}

test_private_network_has_only_lo() {
        make_tiny_tree "$ROOT"
        in_container --private-network /bin/sh -c 'readlink /proc/self/ns/net; ls /sys/class/net'
        assert_eq 0 "$RC"
        [ "$(sed -n 1p <<<"$OUT")" != "$(ns_of $$ net)" ] || fail "network namespace is the host's"
        assert_eq lo "$(sed -n '2,$p' <<<"$OUT" | tr '\n' ' ' | sed 's/ $//')"
        # with a network of its own, the container may tune it
        in_container --private-network /usr/bin/payload write /proc/sys/net/ipv4/ip_forward 1
        assert_eq 0 "$RC"
        # and without, it may not
        in_container /usr/bin/payload write /proc/sys/net/ipv4/ip_forward 1
        assert_eq 1 "$RC"
}

test_mounts_stay_inside() {
        make_tiny_tree "$ROOT"
        host_snapshot
        in_container /bin/sh -c 'mkdir -p /mnt && mount -t tmpfs none /mnt && echo ok'
        assert_eq ok "$OUT"
        assert_host_unchanged
        [ -z "$(findmnt -rn -o TARGET | grep "^$T")" ] || fail "mounts left under $T"
}

test_old_root_detached() {
        make_tiny_tree "$ROOT"
        echo host-only >"$T/marker"
        in_container /usr/bin/payload mounts
        assert_eq 0 "$RC"
        # no mount of the host's tree is visible: every mount point is inside the container
        # (field 5 of mountinfo; field 4 is the path inside the mounted file system)
        assert_not_contains "$(awk '{print $5}' <<<"$OUT")" "$T"
        # the root is the tree; nothing above it can be reached
        in_container /bin/sh -c 'cd /; cd ..; ls /'
        assert_not_contains "$OUT" marker
        in_container /bin/cat /proc/1/root/../marker
        assert_eq 1 "$RC"
}

test_cgroup_namespace_root() {
        local before
        make_tiny_tree "$ROOT"
        before=$(cgroup_roots)
        in_container /usr/bin/payload cat /proc/self/cgroup
        assert_eq 0 "$RC"
        # every hierarchy the host has (had throughout), each at the root of the container's view
        assert_cgroup_roots "$OUT" "$before"
        grep -qx "0::/" <<<"$OUT" || fail "no cgroup2 line '0::/' in: $OUT"
        in_container /usr/bin/payload mounts
        assert_match "$OUT" ' /sys/fs/cgroup [^ ]+ .*- cgroup2 '
        # and that root is a cgroup of its own, not the hierarchy's root: only non-root cgroups
        # have cgroup.events and cgroup.type
        in_container /bin/sh -c 'ls /sys/fs/cgroup'
        assert_eq 0 "$RC"
        assert_contains "$OUT" cgroup.events
        assert_contains "$OUT" cgroup.type
}

test_cgroup_is_child_of_berths() {
        make_tiny_tree "$ROOT"
        "$BERTH" "${B[@]}" -D "$ROOT" /usr/bin/payload sleep 30 &
        local pid=$!
        local leader record=/run/berth/machines/$ROOT_NAME
        wait_for grep -q '^LEADER=[1-9]' "$record" || fail "no leader: $(cat "$record" 2>&1)"
        leader=$(sed -n 's/^LEADER=//p' "$record")
        local own child
        own=$(sed -n 's/^0:://p' "/proc/$pid/cgroup")
        child=$(sed -n 's/^0:://p' "/proc/$leader/cgroup")
        local prefix="${own%/}/"
        case "$child" in
        "$prefix"*) ;;
        *) fail "container cgroup '$child' is not below berth's '$own'" ;;
        esac
        kill -TERM "$pid"
        wait "$pid" || true
}

test_guest_can_delegate() {
        make_tiny_tree "$ROOT"
        in_container /bin/sh -c 'mkdir /sys/fs/cgroup/sub && echo $$ >/sys/fs/cgroup/sub/cgroup.procs && cat /proc/self/cgroup'
        assert_eq 0 "$RC"
        assert_contains "$OUT" "0::/sub"
}

run_tests
