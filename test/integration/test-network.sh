#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck disable=SC2317 # helpers called through wait_for
# Private networking on real machines: --network-veth, -bridge, -zone, -veth-extra, -interface,
# -macvlan, -ipvlan, -namespace-path; names, teardown, stale cleanup after SIGKILL, bad input.
#
# Traffic only ever goes between addresses this test sets, on links it (or berth for it) made:
# in the containers' namespaces, in network namespaces the test makes, and (host <-> guest) on
# the machine's own ve- link. Link, bridge, zone and machine names carry a tag of this run, so
# two runs side by side never meet; the IPv4 subnet is derived from the same tag.
. "$(dirname "$0")/lib.sh"
require_root

if [ -z "${BERTHCTL:-}" ] || [ ! -x "$BERTHCTL" ]; then
        echo "1..0 # SKIP \$BERTHCTL is not set to the berthctl binary (run through 'meson test')"
        exit 0
fi
if ! command -v ip >/dev/null || ! command -v nsenter >/dev/null || ! busybox ping --help >/dev/null 2>&1; then
        echo "1..0 # SKIP needs ip (iproute2), nsenter and busybox's ping on the host"
        exit 0
fi

RUNID=$(printf '%s' "$BERTH_TEST_RUN" | md5sum | cut -c1-5)
_h=$(printf '%s' "$BERTH_TEST_RUN" | cksum | cut -d' ' -f1)
NET="10.$((_h % 200 + 20)).$(((_h / 200) % 250))"

# ---- helpers ----

# short enough that ve-NAME needs no shortening (at most 12 characters)
mname() {
        echo "${1}${RUNID}"
}

leader_of() {
        sed -n 's/^LEADER=//p' "/run/berth/machines/$1"
}

# stop NAME: powers the machine off and waits for its berth (of start_bg).
stop() {
        "$BERTHCTL" poweroff "$1" >/dev/null 2>&1 || true
        timeout 20 tail --pid="${BG_PIDS[$1]}" -f /dev/null || fail "machine '$1' did not stop"
}

# in_ns NAME CMD...: runs a host command in machine NAME's network namespace.
in_ns() {
        local name=$1
        shift
        nsenter -t "$(leader_of "$name")" -n -- "$@"
}

# What this run has on the host: links, records and network namespaces that carry its tag (other
# runs and other engineers' machines come and go meanwhile, and are not ours to compare).
net_state() {
        {
                ip -o link show | awk -F': ' '{ print $2 }' | sed 's/@.*//'
                find /run/berth -path /run/berth/cache -prune -o -print
                ip netns list
        } 2>/dev/null | grep -F "$RUNID" | sort || true
        return 0
}

net_snapshot() {
        net_state >"$T/.net-snapshot"
}

assert_net_unchanged() {
        local d
        if ! d=$(diff -u "$T/.net-snapshot" <(net_state)); then
                printf '%s\n' "$d" | sed 's/^/#   /' >&2
                fail "links, records or namespaces of this run are left behind"
        fi
}

ping_ok() {
        busybox ping -c 1 -W 2 "$1" >/dev/null 2>&1
}

link_exists() {
        ip link show dev "$1" >/dev/null 2>&1
}

link_gone() {
        ! ip link show dev "$1" >/dev/null 2>&1
}

# A network namespace of the test's own, for the far end of links.
make_test_netns() {
        TEST_NETNS="berth-test-$RUNID-$1"
        ip netns add "$TEST_NETNS"
}

cleanup_links() {
        local l
        for l in "$@"; do
                ip link delete "$l" >/dev/null 2>&1 || true
        done
        [ -z "${TEST_NETNS:-}" ] || ip netns delete "$TEST_NETNS" >/dev/null 2>&1 || true
}

# ---- veth ----

test_veth_host_and_guest_talk() {
        local n ve
        n=$(mname veth)
        ve="ve-$n"
        net_snapshot
        start_bg --tiny "$n" "$T/$n" -b -n
        link_exists "$ve" || fail "no $ve on the host"
        assert_match "$(ip -o link show dev "$ve")" "state (UP|LOWERLAYERDOWN|UNKNOWN)|,UP"
        assert_contains "$(ip -d -o link show dev "$ve")" "veth"
        run in_ns "$n" ip -o link show dev host0
        assert_eq 0 "$RC"
        assert_contains "$OUT" ",UP"
        # no networkd here: the test sets the addresses
        ip addr add "$NET.1/30" dev "$ve"
        in_ns "$n" ip addr add "$NET.2/30" dev host0
        wait_for ping_ok "$NET.2" || fail "the host does not reach the guest over $ve"
        run in_ns "$n" busybox ping -c 1 -W 2 "$NET.1"
        assert_eq 0 "$RC" "the guest does not reach the host"
        # the machine's interfaces: in the record, in status and show
        assert_contains "$(cat "/run/berth/machines/$n")" "INTERFACE=$ve"
        run "$BERTHCTL" status "$n"
        assert_match "$OUT" "Interfaces: $ve$"
        run "$BERTHCTL" show "$n" --json=short
        printf '%s' "$OUT" | python3 -c 'import json,sys; d = json.load(sys.stdin); assert d["Interfaces"] == [sys.argv[1]], d' "$ve" ||
                fail "show --json: no Interfaces: $OUT"
        stop "$n"
        link_gone "$ve" || fail "$ve is left after the machine stopped"
        assert_net_unchanged
}

test_veth_settings_file() {
        local n
        n=$(mname file)
        mkdir -p "$T/etc"
        printf '[Network]\nVirtualEthernet=yes\n' >"$T/etc/$n.nspawn"
        BERTH_SETTINGS_PATH="$T/etc" start_bg --tiny "$n" "$T/$n" -b
        link_exists "ve-$n" || fail "VirtualEthernet=yes made no ve-$n"
        stop "$n"
        link_gone "ve-$n" || fail "ve-$n is left"
}

# ---- zones ----

test_zone_machines_reach_each_other_not_others() {
        local a b c zone=z$RUNID
        a=$(mname za)
        b=$(mname zb)
        c=$(mname zc)
        net_snapshot
        start_bg --tiny "$a" "$T/$a" -b --network-zone="$zone"
        link_exists "vz-$zone" || fail "no zone bridge vz-$zone"
        assert_contains "$(ip -d -o link show dev "vz-$zone")" "bridge"
        start_bg --tiny "$b" "$T/$b" -b --network-zone="$zone"
        start_bg --tiny "$c" "$T/$c" -b --network-zone="${zone}x"
        assert_contains "$(ip -o link show dev "vb-$a")" "master vz-$zone"
        assert_contains "$(ip -o link show dev "vb-$b")" "master vz-$zone"
        assert_contains "$(ip -o link show dev "vb-$c")" "master vz-${zone}x"
        in_ns "$a" ip addr add "$NET.65/24" dev host0
        in_ns "$b" ip addr add "$NET.66/24" dev host0
        in_ns "$c" ip addr add "$NET.67/24" dev host0
        wait_for in_ns "$a" busybox ping -c 1 -W 2 "$NET.66" || fail "two machines of one zone do not reach each other"
        run in_ns "$b" busybox ping -c 1 -W 2 "$NET.65"
        assert_eq 0 "$RC" "b does not reach a"
        run in_ns "$a" busybox ping -c 2 -W 2 "$NET.67"
        assert_eq 1 "$RC" "a machine outside the zone is reachable"
        run in_ns "$c" busybox ping -c 2 -W 2 "$NET.66"
        assert_eq 1 "$RC" "a machine outside the zone reaches into it"
        # the zone stays while it has a machine, and goes with the last
        stop "$a"
        link_gone "vb-$a" || fail "vb-$a is left"
        link_exists "vz-$zone" || fail "the zone went while b was still in it"
        stop "$b"
        link_gone "vz-$zone" || fail "the zone's bridge is left after its last machine"
        stop "$c"
        link_gone "vz-${zone}x" || fail "the other zone's bridge is left"
        assert_net_unchanged
}

# Machines joining and leaving one zone at the same time: the bridge is made once, never deleted
# under a machine that joins, and gone after the last one leaves.
test_zone_joins_and_leaves_at_once() {
        local zone=p$RUNID i round
        net_snapshot
        for round in 1 2; do
                for i in 1 2 3; do
                        start_bg --no-wait --tiny "p$i$RUNID" "$T/p$i$RUNID" -b --network-zone="$zone"
                done
                for i in 1 2 3; do
                        wait_bg "p$i$RUNID"
                done
                for i in 1 2 3; do
                        assert_contains "$(ip -o link show dev "vb-p$i$RUNID")" "master vz-$zone"
                done
                for i in 1 2 3; do
                        "$BERTHCTL" poweroff "p$i$RUNID" >/dev/null 2>&1 &
                done
                for i in 1 2 3; do
                        timeout 30 tail --pid="${BG_PIDS[p$i$RUNID]}" -f /dev/null || fail "round $round: a machine did not stop"
                done
                wait
                link_gone "vz-$zone" || fail "round $round: the zone's bridge is left after all machines left"
        done
        assert_net_unchanged
}

test_sigkill_then_next_start_cleans() {
        local n zone=k$RUNID
        n=$(mname kill)
        net_snapshot
        start_bg --tiny "$n" "$T/$n" -b --network-zone="$zone" --network-veth-extra="xk$RUNID:ext0"
        assert_contains "$(cat "/run/berth/machines/$n")" "NETWORK_ZONE=vz-$zone"
        kill -9 "$BG_PID"
        wait "$BG_PID" 2>/dev/null || true
        # the zone's bridge survives a SIGKILL, and the record says so
        link_exists "vz-$zone" || skip "the zone went with the SIGKILL (nothing left to clean)"
        make_tiny_tree "$T/next"
        berth -D "$T/next" -M "$(mname next)" /bin/true
        assert_eq 0 "$RC"
        [ ! -e "/run/berth/machines/$n" ] || fail "the dead instance's record is left"
        # any start cleans after every dead instance: a berth of another run, built before berth
        # knew links, may have taken the record first and left the links
        if link_exists "vz-$zone" && [[ $ERR != *"Cleaned up after a dead instance of machine '$n'"* ]]; then
                cleanup_links "vz-$zone" "xk$RUNID"
                skip "another (older) berth cleaned the dead instance first"
        fi
        link_gone "vz-$zone" || fail "the next start left the dead instance's zone bridge"
        link_gone "vb-$n" || fail "vb-$n is left"
        link_gone "xk$RUNID" || fail "the extra veth is left"
        assert_net_unchanged
}

# ---- bridge, extra veth, macvlan, moved interfaces ----

test_bridge_onto_test_bridge() {
        local n br=tb$RUNID far=tf$RUNID
        n=$(mname br)
        net_snapshot
        make_test_netns br
        trap 'cleanup_links "$br" "$far"' EXIT
        ip link add "$br" type bridge
        ip link set "$br" up
        # the far end: a veth whose peer sits in the test's namespace
        ip link add "$far" master "$br" type veth peer name far0 netns "$TEST_NETNS"
        ip link set "$far" up
        ip -n "$TEST_NETNS" link set far0 up
        ip -n "$TEST_NETNS" addr add "$NET.129/25" dev far0
        start_bg --tiny "$n" "$T/$n" -b --network-bridge="$br"
        assert_contains "$(ip -o link show dev "vb-$n")" "master $br"
        in_ns "$n" ip addr add "$NET.130/25" dev host0
        wait_for in_ns "$n" busybox ping -c 1 -W 2 "$NET.129" || fail "no traffic over the bridge"
        stop "$n"
        link_gone "vb-$n" || fail "vb-$n is left"
        link_exists "$br" || fail "berth removed the user's bridge"
        cleanup_links "$br" "$far"
        trap - EXIT
        assert_net_unchanged
}

test_veth_extra() {
        local n x=xe$RUNID
        n=$(mname extra)
        start_bg --tiny "$n" "$T/$n" -b --network-veth-extra="$x:inner7" --network-veth-extra="y$x"
        link_exists "$x" || fail "no $x on the host"
        run in_ns "$n" ip -o link show
        assert_contains "$OUT" "inner7"
        assert_contains "$OUT" "y$x"
        ip addr add "$NET.5/30" dev "$x"
        in_ns "$n" ip addr add "$NET.6/30" dev inner7
        wait_for ping_ok "$NET.6" || fail "no traffic over the extra veth"
        stop "$n"
        link_gone "$x" || fail "$x is left"
        link_gone "y$x" || fail "y$x is left"
}

test_macvlan_over_veth() {
        local n p=tm$RUNID
        n=$(mname mv)
        net_snapshot
        make_test_netns mv
        trap 'cleanup_links "$p"' EXIT
        # a macvlan child cannot talk to its parent: the far end is a veth peer in another namespace
        ip link add "$p" type veth peer name far0 netns "$TEST_NETNS"
        ip link set "$p" up
        ip -n "$TEST_NETNS" link set far0 up
        ip -n "$TEST_NETNS" addr add "$NET.161/28" dev far0
        start_bg --tiny "$n" "$T/$n" -b --network-macvlan="$p"
        run in_ns "$n" ip -d -o link show dev "mv-$p"
        assert_eq 0 "$RC" "no mv-$p in the container"
        assert_contains "$OUT" "macvlan"
        in_ns "$n" ip addr add "$NET.162/28" dev "mv-$p"
        wait_for in_ns "$n" busybox ping -c 1 -W 2 "$NET.161" || fail "no traffic over the macvlan"
        stop "$n"
        cleanup_links "$p"
        trap - EXIT
        assert_net_unchanged
}

test_ipvlan_refused_cleanly() {
        local n p=ti$RUNID
        n=$(mname iv)
        if modprobe -n ipvlan >/dev/null 2>&1 || [ -d /sys/module/ipvlan ]; then
                skip "this kernel has ipvlan: the refusal cannot be shown here"
        fi
        ip link add "$p" type veth peer name "u$p"
        trap 'cleanup_links "$p"' EXIT
        net_snapshot
        make_tiny_tree "$ROOT"
        berth -D "$ROOT" -M "$n" --network-ipvlan="$p:eth3" /bin/true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "no ipvlan support"
        assert_net_unchanged
        cleanup_links "$p"
        trap - EXIT
}

test_interface_moved_in_and_back() {
        local n p=tv$RUNID
        n=$(mname mov)
        make_test_netns mov
        trap 'cleanup_links "$p"' EXIT
        ip link add "$p" type veth peer name far0 netns "$TEST_NETNS"
        ip -n "$TEST_NETNS" link set far0 up
        ip -n "$TEST_NETNS" addr add "$NET.177/28" dev far0
        net_snapshot
        start_bg --tiny "$n" "$T/$n" -b --network-interface="$p:eth7"
        link_gone "$p" || fail "$p is still on the host"
        run in_ns "$n" ip -o link show dev eth7
        assert_eq 0 "$RC" "no eth7 in the container"
        in_ns "$n" ip addr add "$NET.178/28" dev eth7
        wait_for in_ns "$n" busybox ping -c 1 -W 2 "$NET.177" || fail "no traffic over the moved interface"
        run "$BERTHCTL" status "$n"
        assert_match "$OUT" "Interfaces: $p$"
        stop "$n"
        link_exists "$p" || fail "$p did not come back to the host"
        assert_net_unchanged
        cleanup_links "$p"
        trap - EXIT
}

# ---- joining a namespace ----

test_network_namespace_path() {
        local ns="berth-test-$RUNID-join"
        ip netns add "$ns"
        trap 'ip netns delete "$ns"' EXIT
        make_tiny_tree "$ROOT"
        berth -D "$ROOT" -M "$(mname join)" -q --pipe --network-namespace-path="/run/netns/$ns" /bin/sh -c 'stat -L -c %i /proc/self/ns/net'
        assert_eq 0 "$RC"
        assert_eq "$(stat -L -c %i "/run/netns/$ns")" "$OUT"
        # and the host's namespace is not the container's
        assert_eq 0 "$(nsenter -t $$ -n true; echo $?)"
        # --private-network with it, as nspawn accepts: the same namespace, and still not the
        # container's own (no CAP_NET_ADMIN, /proc/sys/net read-only)
        berth -D "$ROOT" -M "$(mname join)" -q --pipe --private-network --network-namespace-path="/run/netns/$ns" \
                /bin/sh -c 'stat -L -c %i /proc/self/ns/net; payload hascap CAP_NET_ADMIN;
                            echo 1 >/proc/sys/net/ipv4/ip_forward 2>/dev/null && echo WROTE; true'
        assert_eq 0 "$RC" "$ERR"
        assert_eq "$(stat -L -c %i "/run/netns/$ns")
CapBnd=0 CapEff=0 CapPrm=0" "$OUT"
        ip netns delete "$ns"
        trap - EXIT
}

# ---- names ----

test_long_names_are_distinct_and_stable() {
        local a b ia ib again
        a="netlongprefix-$RUNID-aaaa"
        b="netlongprefix-$RUNID-bbbb"
        start_bg --tiny "$a" "$T/$a" -b -n
        start_bg --tiny "$b" "$T/$b" -b -n
        ia=$(sed -n 's/^INTERFACE=//p' "/run/berth/machines/$a")
        ib=$(sed -n 's/^INTERFACE=//p' "/run/berth/machines/$b")
        [ "${#ia}" = 15 ] && [ "${#ib}" = 15 ] || fail "expected 15-character names: '$ia' '$ib'"
        [ "$ia" != "$ib" ] || fail "two long names got one interface name: $ia"
        [[ $ia == ve-netl* ]] || fail "the short name lost its prefix: $ia"
        link_exists "$ia" && link_exists "$ib" || fail "the interfaces are not there"
        stop "$a"
        start_bg --tiny "$a" "$T/$a" -b -n
        again=$(sed -n 's/^INTERFACE=//p' "/run/berth/machines/$a")
        assert_eq "$ia" "$again" "the short name is not stable"
        stop "$a"
        stop "$b"
        link_gone "$ia" && link_gone "$ib" || fail "interfaces are left"
}

# ---- bad input: one line, nothing left ----

test_bad_input() {
        local n long=abcdefghijklmnop
        n=$(mname bad)
        make_tiny_tree "$ROOT"
        net_snapshot
        local args
        for args in "--network-bridge=nosuch$RUNID" "--network-bridge=$long" "--network-bridge=" \
                "--network-zone=$long" "--network-zone=" "--network-interface=$long" \
                "--network-interface=nosuch$RUNID" "--network-interface=lo" "--network-macvlan=nosuch$RUNID" \
                "--network-macvlan=lo" "--network-veth-extra=a:$long" "--network-veth-extra=:x" \
                "--network-namespace-path=/etc/os-release" "--network-namespace-path=/nonexistent" \
                "--network-bridge=lo"; do
                berth -D "$ROOT" -M "$n" "$args" /bin/true
                [ "$RC" = 1 ] || fail "$args: exit status $RC, expected 1"
                assert_one_line_error "$args"
        done
        berth -D "$ROOT" -M "$n" --network-zone=a --network-bridge=b /bin/true
        assert_eq 1 "$RC"
        assert_one_line_error
        berth -D "$ROOT" -M "$n" --network-veth --network-namespace-path=/proc/self/ns/net /bin/true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_net_unchanged
}

run_tests
