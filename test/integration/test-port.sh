#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck disable=SC2317 # helpers called through wait_for
# Port forwarding (-p/--port=, Port=) on real machines with a veth: TCP and UDP reached from the
# host's localhost (the proxy), from the host's own address on the link (nftables DNAT in OUTPUT)
# and from another network namespace (DNAT in PREROUTING), before and after the guest's address
# changes, over IPv4 and IPv6 (an IPv6-only guest reached from another namespace and through the
# proxy from ::1); a guest that names an address the host does not route to it gets no forward, and
# a member of a zone that takes another's address neither gets nor gives a forward to it; the
# nftables table is there while the machine runs and gone after it stops and after a SIGKILL and
# the next start; bad input and a port another machine forwards are refused and leave nothing.
#
# Traffic only goes between addresses this test sets on links that berth (or the test) made, in
# the host's namespace or in network namespaces of the test's own; forwarding from another
# namespace is shown in a namespace of the test's own that plays the host, since the real host
# keeps net.ipv4.ip_forward as it is. Names, subnets and ports carry a tag of this run.
. "$(dirname "$0")/lib.sh"
require_root

if [ -z "${BERTHCTL:-}" ] || [ ! -x "$BERTHCTL" ]; then
        echo "1..0 # SKIP \$BERTHCTL is not set to the berthctl binary (run through 'meson test')"
        exit 0
fi
if ! command -v ip >/dev/null || ! command -v nsenter >/dev/null || ! command -v nft >/dev/null ||
        ! busybox nc --help >/dev/null 2>&1; then
        echo "1..0 # SKIP needs ip (iproute2), nsenter, nft (nftables) and busybox's nc on the host"
        exit 0
fi

RUNID=$(printf '%s' "$BERTH_TEST_RUN" | md5sum | cut -c1-5)
_h=$(printf '%s' "$BERTH_TEST_RUN" | cksum | cut -d' ' -f1)
# one /24 per run, away from test-network's 10.20-219 range; cases take /29s in it
NET="10.$((_h % 30 + 220)).$(((_h / 30) % 250))"

# ---- helpers ----

# short enough that ve-NAME needs no shortening
mname() {
        echo "p${1}${RUNID}"
}

leader_of() {
        sed -n 's/^LEADER=//p' "${BERTH_RUN_DIR:-/run/berth}/machines/$1"
}

# stop NAME: powers the machine off and waits for its berth (of start_bg).
stop() {
        "$BERTHCTL" poweroff "$1" >/dev/null 2>&1 || true
        timeout 20 tail --pid="${BG_PIDS[$1]}" -f /dev/null || fail "machine '$1' did not stop"
}

# in_guest NAME CMD...: runs CMD of the guest's tree in all of its namespaces; what it leaves
# running dies with the guest.
in_guest() {
        local name=$1
        shift
        nsenter -t "$(leader_of "$name")" -n -m -p -u -r -w -- "$@"
}

# in_netns NAME CMD...: runs a host command in machine NAME's network namespace only.
in_netns() {
        local name=$1
        shift
        nsenter -t "$(leader_of "$name")" -n -- "$@"
}

# guest_servers NAME: a TCP server on port 80 that says "hello from NAME" to each connection,
# a UDP echo server on port 81.
guest_servers() {
        in_guest "$1" /bin/busybox nc -ll -p 80 -e /bin/echo "hello from $1" </dev/null >/dev/null 2>&1 &
        in_guest "$1" /usr/bin/payload udp-echo 81 </dev/null >/dev/null 2>&1 &
}

# tcp_says ADDRESS PORT TEXT: a connection to ADDRESS:PORT gets TEXT ($NETNS_RUN before nc).
tcp_says() {
        local got
        # shellcheck disable=SC2086
        got=$(${NETNS_RUN:-} timeout 5 busybox nc -w 3 "$1" "$2" </dev/null 2>/dev/null) || return 1
        [ "$got" = "$3" ]
}

# udp_says ADDRESS PORT: a datagram to ADDRESS:PORT is echoed.
udp_says() {
        local got
        # shellcheck disable=SC2086
        got=$(${NETNS_RUN:-} "$BERTH_PAYLOAD" udp-ask "$1" "$2" "ping-$RUNID" 2>/dev/null) || return 1
        [ "$got" = "echo:ping-$RUNID" ]
}

link_gone() {
        ! ip link show dev "$1" >/dev/null 2>&1
}

table_of() {
        echo "berth-$1"
}

table_exists() {
        # shellcheck disable=SC2086
        ${NETNS_RUN:-} nft list table inet "$(table_of "$1")" >/dev/null 2>&1
}

table_gone() {
        ! table_exists "$1"
}

bridge_table_exists() {
        nft list table bridge "$(table_of "$1")" >/dev/null 2>&1
}

# table_forwards_to NAME ADDRESS: the machine's table DNATs to ADDRESS.
table_forwards_to() {
        # shellcheck disable=SC2086
        grep -qF "dnat ip to $2:" <<<"$(${NETNS_RUN:-} nft list table inet "$(table_of "$1")" 2>/dev/null)"
}

table_forwards_to6() {
        # shellcheck disable=SC2086
        grep -qF "dnat ip6 to [$2]:" <<<"$(${NETNS_RUN:-} nft list table inet "$(table_of "$1")" 2>/dev/null)"
}

# What this run has on the host: links, records, tables and namespaces that carry its tag.
net_state() {
        {
                ip -o link show | awk -F': ' '{ print $2 }' | sed 's/@.*//'
                find /run/berth -path /run/berth/cache -prune -o -print
                ip netns list
                nft list tables
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
                fail "links, records, tables or namespaces of this run are left behind"
        fi
}

# addresses NAME SUBNET HOSTPART: the host side of ve-NAME gets SUBNET.1/29, the guest
# SUBNET.HOSTPART/29 and a default route through the host.
addresses() {
        ip ${NETNS_NAME:+-n "$NETNS_NAME"} addr add "$2.1/29" dev "ve-$1"
        in_netns "$1" ip addr add "$2.$3/29" dev host0
        in_netns "$1" ip route add default via "$2.1"
}

# ---- cases ----

test_port_from_localhost_and_the_hosts_address_follows_the_guest() {
        local n p u sub="$NET"
        n=$(mname a)
        p=$(unique_port 1)
        u=$(unique_port 2)
        net_snapshot
        start_bg --tiny "$n" "$T/$n" -b -n -p "$p:80" --port="udp:$u:81"
        # the table is there from the start, with no target yet
        table_exists "$n" || fail "no nftables table $(table_of "$n") while the machine runs"
        assert_contains "$(cat "/run/berth/machines/$n")" "PORT=tcp:$p:80"
        assert_contains "$(cat "/run/berth/machines/$n")" "NFT_TABLE=$(table_of "$n")"
        guest_servers "$n"
        addresses "$n" "$sub" 2
        wait_for table_forwards_to "$n" "$sub.2" || fail "the table does not forward to the guest's address"
        # localhost (the proxy), both families, and the host's own address on the link (DNAT)
        wait_for tcp_says 127.0.0.1 "$p" "hello from $n" || fail "127.0.0.1:$p does not reach the guest"
        if grep -q '::1' <<<"$(ip -6 addr show dev lo 2>/dev/null)"; then
                tcp_says ::1 "$p" "hello from $n" || fail "[::1]:$p does not reach the guest"
        fi
        wait_for tcp_says "$sub.1" "$p" "hello from $n" || fail "$sub.1:$p (the host's address) does not reach the guest"
        wait_for udp_says "$sub.1" "$u" || fail "udp $sub.1:$u does not reach the guest"
        # UDP from localhost (the relay), both families
        wait_for udp_says 127.0.0.1 "$u" || fail "udp 127.0.0.1:$u does not reach the guest"
        if grep -q '::1' <<<"$(ip -6 addr show dev lo 2>/dev/null)"; then
                udp_says ::1 "$u" || fail "udp [::1]:$u does not reach the guest"
        fi

        # the guest moves to another address: the forwards follow, the old one is gone
        in_netns "$n" ip addr del "$sub.2/29" dev host0
        in_netns "$n" ip addr add "$sub.3/29" dev host0
        in_netns "$n" ip route replace default via "$sub.1"
        wait_for table_forwards_to "$n" "$sub.3" || fail "the table did not follow the guest to $sub.3"
        table_forwards_to "$n" "$sub.2" && fail "the table still forwards to the old address"
        wait_for tcp_says 127.0.0.1 "$p" "hello from $n" || fail "localhost does not reach the guest at its new address"
        wait_for tcp_says "$sub.1" "$p" "hello from $n" || fail "the host's address does not reach the guest at its new address"
        wait_for udp_says "$sub.1" "$u" || fail "udp does not reach the guest at its new address"
        wait_for udp_says 127.0.0.1 "$u" || fail "udp from localhost does not reach the guest at its new address"

        # IPv6: a global (ULA) address on both sides
        local v6
        v6="fd42:$(printf '%x' "0x${RUNID:0:4}"):1" # as nft prints it: no leading zeros
        ip -6 addr add "$v6::1/64" dev "ve-$n" nodad
        in_netns "$n" ip -6 addr add "$v6::2/64" dev host0 nodad
        wait_for table_forwards_to6 "$n" "$v6::2" || fail "the table does not forward to the guest's IPv6 address"
        wait_for tcp_says "$v6::1" "$p" "hello from $n" || fail "[$v6::1]:$p (the host's IPv6 address) does not reach the guest"
        wait_for udp_says "$v6::1" "$u" || fail "udp [$v6::1]:$u does not reach the guest"

        stop "$n"
        table_gone "$n" || fail "the table is left after the machine stopped"
        run busybox nc -w 2 127.0.0.1 "$p"
        [ "$RC" != 0 ] || fail "127.0.0.1:$p still answers after the machine stopped"
        assert_net_unchanged
}

# A hostile guest names addresses the host does not route to it: its own host's address on the
# link (a local address of the host: the forward would reach the host's own services) and one of
# a network elsewhere, IPv4 and IPv6. Neither becomes a target; the one the host does route to it
# does.
test_guest_cannot_point_its_forwards_elsewhere() {
        local n p sub="$NET" far="10.$((_h % 30 + 220)).$((((_h / 30) + 7) % 250))" v6 far6
        v6="fd42:$(printf '%x' "0x${RUNID:0:4}"):4" # as nft prints it: no leading zeros
        far6="fd42:$(printf '%x' "0x${RUNID:0:4}"):5"
        n=$(mname h)
        p=$(unique_port 3)
        start_bg --tiny "$n" "$T/$n" -b -n -p "$p:80"
        guest_servers "$n"
        ip addr add "$sub.9/29" dev "ve-$n"
        ip -6 addr add "$v6::9/64" dev "ve-$n" nodad
        # IPv6 first, the newest first in the guest's list: the routed one, then the others
        in_netns "$n" ip -6 addr add "$v6::10/64" dev host0 nodad
        in_netns "$n" ip -6 addr add "$v6::9/128" dev host0 nodad
        in_netns "$n" ip -6 addr add "$far6::5/64" dev host0 nodad
        # first in the guest's list, so they would be picked if they were taken at all
        in_netns "$n" ip addr add "$sub.9/32" dev host0
        in_netns "$n" ip addr add "$far.5/24" dev host0
        in_netns "$n" ip addr add "$sub.10/29" dev host0
        wait_for table_forwards_to "$n" "$sub.10" || fail "the guest's routed address is not the target"
        table_forwards_to "$n" "$sub.9" && fail "the host's own address became a target"
        table_forwards_to "$n" "$far.5" && fail "an address routed elsewhere became a target"
        # the IPv4 address came last: the table has seen the IPv6 ones too
        table_forwards_to6 "$n" "$v6::10" || fail "the guest's routed IPv6 address is not the target"
        table_forwards_to6 "$n" "$v6::9" && fail "the host's own IPv6 address became a target"
        table_forwards_to6 "$n" "$far6::5" && fail "an IPv6 address routed elsewhere became a target"
        # (the host's address in the guest would also swallow the answers to the host's connections)
        in_netns "$n" ip addr del "$sub.9/32" dev host0
        in_netns "$n" ip -6 addr del "$v6::9/128" dev host0
        wait_for tcp_says 127.0.0.1 "$p" "hello from $n" || fail "localhost does not reach the guest"
        stop "$n"
        table_gone "$n" || fail "the table is left"
}

# guest_mac NAME: the MAC address of the guest's host0.
guest_mac() {
        in_netns "$1" ip -o link show dev host0 | sed -n 's|.*link/ether \([0-9a-f:]*\).*|\1|p'
}

# neigh_is NAME ADDRESS BRIDGE: the host's neighbour entry for ADDRESS on BRIDGE has the MAC of
# guest NAME's host0.
neigh_is() {
        grep -qi "lladdr $(guest_mac "$1") " <<<"$(ip neigh show "$2" dev "$3") "
}

# claimed NAME ADDRESS BRIDGE HOSTADDRESS: guest NAME asks HOSTADDRESS something from ADDRESS (an
# ARP request first, whose sender the host learns), and the host's entry has its MAC now.
claimed() {
        in_netns "$1" ip neigh flush dev host0
        in_netns "$1" busybox ping -c 1 -W 1 "$4" >/dev/null 2>&1 || true
        neigh_is "$1" "$2" "$3"
}

# Two machines of one zone, whose bridge the host routes both over: the second puts the first
# one's address on its host0 in place of its own. Its forward must not deliver to the first (which
# would expose a port the first never forwarded), from the host's address or localhost; and once
# the host's neighbour entry for the address is the second's, the first one's forward must not
# deliver to the second; over IPv6 the first as well. Meanwhile the first one's forward to that
# same port may fail too: the second can do that on a shared bridge anyway.
test_zone_member_cannot_take_or_get_another_ones_forward() {
        local a b pa pb zone=fz$RUNID sub="$NET" v6
        v6="fd42:$(printf '%x' "0x${RUNID:0:4}"):6" # as nft prints it: no leading zeros
        a=$(mname za)
        b=$(mname zb)
        pa=$(unique_port 13)
        pb=$(unique_port 14)
        net_snapshot
        start_bg --tiny "$a" "$T/$a" -b --network-zone="$zone" -p "$pa:80"
        start_bg --tiny "$b" "$T/$b" -b --network-zone="$zone" -p "$pb:80"
        guest_servers "$a"
        guest_servers "$b"
        ip addr add "$sub.57/29" dev "vz-$zone"
        in_netns "$a" ip addr add "$sub.58/29" dev host0
        in_netns "$b" ip addr add "$sub.59/29" dev host0
        wait_for tcp_says "$sub.57" "$pa" "hello from $a" || fail "the forward of $a does not reach it over the zone"
        wait_for tcp_says "$sub.57" "$pb" "hello from $b" || fail "the forward of $b does not reach it over the zone"
        wait_for tcp_says 127.0.0.1 "$pb" "hello from $b" || fail "localhost does not reach $b over the zone"
        neigh_is "$a" "$sub.58" "vz-$zone" || fail "the host's neighbour entry for $sub.58 is not $a's"

        # over IPv6: b puts a's address on its host0 too (no DAD, which would have refused it)
        ip -6 addr add "$v6::1/64" dev "vz-$zone" nodad
        in_netns "$a" ip -6 addr add "$v6::2/64" dev host0 nodad
        wait_for tcp_says "$v6::1" "$pa" "hello from $a" || fail "the forward of $a does not reach it over IPv6"
        in_netns "$b" ip -6 addr add "$v6::2/64" dev host0 nodad
        wait_for table_forwards_to6 "$b" "$v6::2" || fail "the table of $b did not follow it to $v6::2"
        tcp_says "$v6::1" "$pb" "hello from $a" && fail "over IPv6, the forward of $b delivers to $a, whose address it took"
        in_netns "$b" ip -6 addr del "$v6::2/64" dev host0

        # b takes a's address; the host's neighbour entry for it is still a's
        in_netns "$b" ip addr del "$sub.59/29" dev host0
        in_netns "$b" ip addr add "$sub.58/29" dev host0
        wait_for table_forwards_to "$b" "$sub.58" || fail "the table of $b did not follow it to $sub.58"
        tcp_says "$sub.57" "$pb" "hello from $a" && fail "the forward of $b delivers to $a, whose address it took"
        tcp_says 127.0.0.1 "$pb" "hello from $a" && fail "localhost's forward of $b delivers to $a"
        neigh_is "$a" "$sub.58" "vz-$zone" || fail "the host's neighbour entry for $sub.58 went to $b: the case showed nothing"

        # b makes the host send it what is for a's address
        wait_for claimed "$b" "$sub.58" "vz-$zone" "$sub.57" || fail "$b did not get the host's neighbour entry for $sub.58"
        tcp_says "$sub.57" "$pa" "hello from $b" && fail "the forward of $a delivers to $b, which took its address"
        tcp_says 127.0.0.1 "$pa" "hello from $b" && fail "localhost's forward of $a delivers to $b"
        neigh_is "$b" "$sub.58" "vz-$zone" || fail "the host's neighbour entry for $sub.58 went back to $a: the case showed nothing"

        # b gives it back: each forward reaches its own machine again
        in_netns "$b" ip addr del "$sub.58/29" dev host0
        in_netns "$b" ip addr add "$sub.59/29" dev host0
        wait_for claimed "$a" "$sub.58" "vz-$zone" "$sub.57" || fail "$a did not get its neighbour entry back"
        wait_for tcp_says "$sub.57" "$pa" "hello from $a" || fail "the forward of $a does not reach it again"
        wait_for tcp_says 127.0.0.1 "$pb" "hello from $b" || fail "the forward of $b does not reach it again"
        stop "$a"
        stop "$b"
        assert_net_unchanged
}

# Forwarding from elsewhere: a namespace of the test plays the host (forwarding on there only), a
# second one is another machine on its network.
test_port_from_another_namespace() {
        local n p hostns="berth-test-$RUNID-ph" client="berth-test-$RUNID-pc" sub="$NET" lan
        lan="10.$((_h % 30 + 220)).$((((_h / 30) + 3) % 250))"
        n=$(mname o)
        p=$(unique_port 4)
        net_snapshot
        ip netns add "$hostns"
        ip netns add "$client"
        # shellcheck disable=SC2064
        trap "ip netns delete '$hostns' 2>/dev/null; ip netns delete '$client' 2>/dev/null" EXIT
        ip -n "$hostns" link set lo up
        ip netns exec "$hostns" sysctl -qw net.ipv4.ip_forward=1
        ip -n "$hostns" link add "pl$RUNID" type veth peer name "pc$RUNID" netns "$client"
        ip -n "$hostns" addr add "$lan.1/24" dev "pl$RUNID"
        ip -n "$hostns" link set "pl$RUNID" up
        ip -n "$client" addr add "$lan.2/24" dev "pc$RUNID"
        ip -n "$client" link set "pc$RUNID" up
        ip -n "$client" link set lo up

        BG_WRAP="nsenter --net=/run/netns/$hostns" start_bg --tiny "$n" "$T/$n" -b -n -p "$p:80"
        guest_servers "$n"
        NETNS_NAME=$hostns addresses "$n" "$sub" 2
        NETNS_RUN="ip netns exec $hostns" wait_for table_forwards_to "$n" "$sub.2" ||
                fail "the table in the namespace does not forward to the guest"
        NETNS_RUN="ip netns exec $client" wait_for tcp_says "$lan.1" "$p" "hello from $n" ||
                fail "another namespace does not reach the guest through $lan.1:$p"
        NETNS_RUN="ip netns exec $hostns" wait_for tcp_says 127.0.0.1 "$p" "hello from $n" ||
                fail "the namespace's localhost does not reach the guest"
        # after the guest's address changes
        in_netns "$n" ip addr del "$sub.2/29" dev host0
        in_netns "$n" ip addr add "$sub.3/29" dev host0
        in_netns "$n" ip route replace default via "$sub.1"
        NETNS_RUN="ip netns exec $client" wait_for tcp_says "$lan.1" "$p" "hello from $n" ||
                fail "another namespace does not reach the guest at its new address"
        # not in the host's namespace
        table_exists "$n" && fail "the table went into the host's namespace"
        stop "$n"
        NETNS_RUN="ip netns exec $hostns" table_gone "$n" || fail "the table is left in the namespace"
        ip netns delete "$hostns"
        ip netns delete "$client"
        trap - EXIT
        assert_net_unchanged
}

has_temporary_address() {
        local a
        a=$(in_netns "$1" ip -6 addr show dev host0)
        awk '/temporary/ && !/tentative/ { found = 1 } END { exit !found }' <<<"$a"
}

# berth_in_ns NETNS ARGS...: berth in a namespace of the test; sets RC, ERR
berth_in_ns() {
        local ns=$1
        shift
        RC=0
        ERR=$(ip netns exec "$ns" "$BERTH" "$@" 2>&1 >/dev/null </dev/null) || RC=$?
}

# reached_over_ipv6 WHERE: the guest of test_port_over_ipv6_from_another_namespace (its n, p, u,
# client, hostns and lan6) is reached, TCP and UDP, from the client namespace through
# [lan6::1] and from the host namespace's ::1; WHERE says which address of the guest, for the failure.
reached_over_ipv6() {
        NETNS_RUN="ip netns exec $client" wait_for tcp_says "$lan6::1" "$p" "hello from $n" ||
                fail "another namespace does not reach the guest through [$lan6::1]:$p $1"
        NETNS_RUN="ip netns exec $client" wait_for udp_says "$lan6::1" "$u" ||
                fail "udp from another namespace does not reach the guest through [$lan6::1]:$u $1"
        NETNS_RUN="ip netns exec $hostns" wait_for tcp_says ::1 "$p" "hello from $n" ||
                fail "the namespace's ::1 does not reach the guest $1"
        NETNS_RUN="ip netns exec $hostns" wait_for udp_says ::1 "$u" ||
                fail "udp from the namespace's ::1 does not reach the guest $1"
}

# The same over IPv6, with a guest that has no IPv4 address at all: another machine on the
# namespace-host's network reaches the guest through [lan6::1]:PORT (ip6 DNAT in PREROUTING), the
# namespace's ::1 through the monitor's proxy (which then has only the guest's IPv6 address to go
# to), before and after the guest's IPv6 address changes; the old target goes.
test_port_over_ipv6_from_another_namespace() {
        local n p u hostns="berth-test-$RUNID-p6h" client="berth-test-$RUNID-p6c" v6 lan6
        v6="fd42:$(printf '%x' "0x${RUNID:0:4}"):2" # as nft prints it: no leading zeros
        lan6="fd42:$(printf '%x' "0x${RUNID:0:4}"):3"
        n=$(mname s)
        p=$(unique_port 11)
        u=$(unique_port 12)
        net_snapshot
        ip netns add "$hostns"
        ip netns add "$client"
        # shellcheck disable=SC2064
        trap "ip netns delete '$hostns' 2>/dev/null; ip netns delete '$client' 2>/dev/null" EXIT
        ip -n "$hostns" link set lo up
        ip netns exec "$hostns" sysctl -qw net.ipv6.conf.all.forwarding=1
        ip -n "$hostns" link add "p6l$RUNID" type veth peer name "p6c$RUNID" netns "$client"
        ip -n "$hostns" -6 addr add "$lan6::1/64" dev "p6l$RUNID" nodad
        ip -n "$hostns" link set "p6l$RUNID" up
        ip -n "$client" -6 addr add "$lan6::2/64" dev "p6c$RUNID" nodad
        ip -n "$client" link set "p6c$RUNID" up
        ip -n "$client" link set lo up

        BG_WRAP="nsenter --net=/run/netns/$hostns" start_bg --tiny "$n" "$T/$n" -b -n -p "$p:80" -p "udp:$u:81"
        guest_servers "$n"
        ip -n "$hostns" -6 addr add "$v6::1/64" dev "ve-$n" nodad
        in_netns "$n" ip -6 addr add "$v6::2/64" dev host0 nodad
        in_netns "$n" ip -6 route add default via "$v6::1"
        NETNS_RUN="ip netns exec $hostns" wait_for table_forwards_to6 "$n" "$v6::2" ||
                fail "the table in the namespace does not forward to the guest's IPv6 address"
        reached_over_ipv6 "at its IPv6 address"

        # the guest moves to another IPv6 address: the forwards follow, the old target goes
        in_netns "$n" ip -6 addr add "$v6::3/64" dev host0 nodad
        in_netns "$n" ip -6 addr del "$v6::2/64" dev host0
        in_netns "$n" ip -6 route replace default via "$v6::1"
        NETNS_RUN="ip netns exec $hostns" wait_for table_forwards_to6 "$n" "$v6::3" ||
                fail "the table did not follow the guest to $v6::3"
        NETNS_RUN="ip netns exec $hostns" table_forwards_to6 "$n" "$v6::2" &&
                fail "the table still forwards to the guest's old IPv6 address"
        reached_over_ipv6 "at its new IPv6 address"

        # Newer addresses that are worse targets, each followed by a change of the guest's IPv4
        # address, which shows once the table has it that berth has looked at what came before:
        # a deprecated address (not for new connections), then a temporary (privacy) one the
        # kernel makes for a new stable address, and replaces on its own.
        ip -n "$hostns" addr add "$NET.49/29" dev "ve-$n"
        in_netns "$n" ip -6 addr add "$v6::4/64" dev host0 nodad preferred_lft 0
        in_netns "$n" ip addr add "$NET.50/29" dev host0
        NETNS_RUN="ip netns exec $hostns" wait_for table_forwards_to "$n" "$NET.50" ||
                fail "the table does not forward to the guest's IPv4 address"
        NETNS_RUN="ip netns exec $hostns" table_forwards_to6 "$n" "$v6::3" ||
                fail "a deprecated address took the place of the guest's stable one"
        in_netns "$n" sysctl -qw net.ipv6.conf.host0.accept_dad=0 net.ipv6.conf.host0.use_tempaddr=2
        in_netns "$n" ip -6 addr add "$v6::5/64" dev host0 nodad mngtmpaddr
        wait_for has_temporary_address "$n" || fail "the kernel made no temporary address"
        in_netns "$n" ip addr del "$NET.50/29" dev host0
        in_netns "$n" ip addr add "$NET.51/29" dev host0
        NETNS_RUN="ip netns exec $hostns" wait_for table_forwards_to "$n" "$NET.51" ||
                fail "the table did not follow the guest's IPv4 address"
        NETNS_RUN="ip netns exec $hostns" table_forwards_to6 "$n" "$v6::5" ||
                fail "the target is not the guest's newest stable address: $(grep -F 'dnat ip6' <<<"$(ip netns exec "$hostns" nft list table inet "$(table_of "$n")")" | sed -n 1p)"
        NETNS_RUN="ip netns exec $client" wait_for tcp_says "$lan6::1" "$p" "hello from $n" ||
                fail "another namespace does not reach the guest at its stable address"
        table_exists "$n" && fail "the table went into the host's namespace"
        stop "$n"
        NETNS_RUN="ip netns exec $hostns" table_gone "$n" || fail "the table is left in the namespace"

        # forwarding off for a family: berth says which setting, once per family, and sets none
        make_tiny_tree "$ROOT"
        berth_in_ns "$hostns" -D "$ROOT" -M "$n" -n -p "$p:80" /usr/bin/payload true
        assert_eq 0 "$RC" "$ERR"
        assert_contains "$ERR" "net.ipv4.ip_forward=0"
        assert_not_contains "$ERR" "net.ipv6.conf.all.forwarding"
        ip netns exec "$hostns" sysctl -qw net.ipv6.conf.all.forwarding=0
        berth_in_ns "$hostns" -D "$ROOT" -M "$n" -n -p "$p:80" /usr/bin/payload true
        assert_eq 0 "$RC" "$ERR"
        assert_contains "$ERR" "IPv6 forwarding is off on this host (net.ipv6.conf.all.forwarding=0)"
        assert_eq 0 "$(ip netns exec "$hostns" sysctl -n net.ipv6.conf.all.forwarding)"
        ip netns delete "$hostns"
        ip netns delete "$client"
        trap - EXIT
        assert_net_unchanged
}

test_port_of_a_running_machine_is_refused() {
        local a b p
        a=$(mname da)
        b=$(mname db)
        p=$(unique_port 5)
        start_bg --tiny "$a" "$T/$a" -b -n -p "udp:$p" -p "$p:80"
        make_tiny_tree "$T/$b"
        net_snapshot
        berth -D "$T/$b" -M "$b" -n -q -p "$((p + 50)):80" -p "$p:80" /bin/true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "machine '$a' forwards tcp port $p already"
        berth -D "$T/$b" -M "$b" -n -q --port="udp:$p:53" /bin/true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "machine '$a' forwards udp port $p already"
        link_gone "ve-$b" || fail "ve-$b is left"
        table_gone "$b" || fail "a table of '$b' is left"
        assert_net_unchanged
        stop "$a"
        # the port is free again
        berth -D "$T/$b" -M "$b" -n -q -p "$p:80" /usr/bin/payload true
        assert_eq 0 "$RC" "$ERR"
        table_gone "$b" || fail "the table of '$b' is left"
}

# A killed berth leaves its tables; the next start of any berth removes them. In a run dir of the
# case's own, so that no other berth cleans it first and the "left" state can be seen.
test_sigkill_leaves_no_table_after_the_next_start() {
        local n p
        n=$(mname k)
        p=$(unique_port 6)
        private_run_dir
        # in a zone: the bridge family's table of a machine on a bridge goes too
        start_bg --tiny "$n" "$T/$n" -b --network-zone="kz$RUNID" -p "$p:80"
        table_exists "$n" || fail "no table while the machine runs"
        bridge_table_exists "$n" || fail "no bridge table while the machine runs in a zone"
        kill -KILL "$BG_PID"
        timeout 20 tail --pid="$BG_PID" -f /dev/null || fail "berth did not die"
        table_exists "$n" || fail "the killed berth's table is gone already (this case shows its removal)"
        make_tiny_tree "$ROOT"
        berth -D "$ROOT" -M "$(mname k2)" -q /usr/bin/payload true
        assert_eq 0 "$RC" "$ERR"
        table_gone "$n" || fail "the next start did not remove the dead instance's table"
        bridge_table_exists "$n" && fail "the next start did not remove the dead instance's bridge table"
        link_gone "vz-kz$RUNID" || fail "the next start did not remove the dead instance's zone"
        [ ! -e "$RUN_DIR/machines/$n" ] || fail "the dead instance's record is left"
}

cpu_ticks() { # utime + stime of process $1, in clock ticks
        awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# Local clients that hold more connections to the proxy than the monitor has fds for: what cannot
# be accepted waits in the listening socket's backlog, which stays readable. The monitor must not
# spin on it (it did, at 100% CPU, for as long as the clients held on); once they let go, the
# port serves again.
test_proxy_out_of_fds_does_not_spin() {
        local n p sub="$NET" holder t0 t1
        n=$(mname f)
        p=$(unique_port 7)
        BG_WRAP="prlimit --nofile=64:64" start_bg --tiny "$n" "$T/$n" -b -n -p "$p:80"
        guest_servers "$n"
        ip addr add "$sub.25/29" dev "ve-$n"
        in_netns "$n" ip addr add "$sub.26/29" dev host0
        wait_for tcp_says 127.0.0.1 "$p" "hello from $n" || fail "127.0.0.1:$p does not reach the guest"
        python3 - "$p" >"$T/holder.out" 2>&1 <<-'PY' &
	import socket, sys, time
	held = []
	for _ in range(60):
	    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
	    held.append(s)
	print("held", flush=True)
	time.sleep(600)
	PY
        holder=$!
        wait_for grep -q held "$T/holder.out" || fail "the clients did not connect: $(cat "$T/holder.out")"
        t0=$(cpu_ticks "$BG_PID")
        sleep 2 # a measurement, not a wait for a state: the CPU time the monitor uses meanwhile
        t1=$(cpu_ticks "$BG_PID")
        kill "$holder" 2>/dev/null || true
        wait "$holder" 2>/dev/null || true
        [ $((t1 - t0)) -le 20 ] || fail "the monitor used $((t1 - t0)) ticks in 2 s with its fds used up: it spins"
        wait_for tcp_says 127.0.0.1 "$p" "hello from $n" || fail "127.0.0.1:$p does not serve again"
        stop "$n"
}

fd_count() {
        find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l
}

# A local user floods the UDP relay from more client addresses than it keeps, with the monitor
# short of fds: the relay keeps a bounded number of sockets, does not spin, and a new client is
# still answered (the one idle longest made room for it).
test_udp_relay_flood_is_bounded() {
        local n u sub="$NET" t0 t1
        n=$(mname u)
        u=$(unique_port 9)
        BG_WRAP="prlimit --nofile=128:128" start_bg --tiny "$n" "$T/$n" -b -n -p "udp:$u:81"
        guest_servers "$n"
        ip addr add "$sub.33/29" dev "ve-$n"
        in_netns "$n" ip addr add "$sub.34/29" dev host0
        wait_for udp_says 127.0.0.1 "$u" || fail "udp 127.0.0.1:$u does not reach the guest"
        python3 - "$u" >"$T/flood.out" 2>&1 <<-'PY'
	import socket, sys
	# 1000 client addresses, each a socket of its own, more than the monitor has fds for
	for _ in range(1000):
	    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	    s.sendto(b"flood", ("127.0.0.1", int(sys.argv[1])))
	    s.close()
	print("sent", flush=True)
	PY
        grep -q sent "$T/flood.out" || fail "the flood was not sent: $(cat "$T/flood.out")"
        # the guest still answers a new client: someone made room
        wait_for udp_says 127.0.0.1 "$u" || fail "udp 127.0.0.1:$u does not answer a new client after the flood"
        t0=$(cpu_ticks "$BG_PID")
        sleep 2 # a measurement, not a wait for a state: the CPU time the monitor uses meanwhile
        t1=$(cpu_ticks "$BG_PID")
        [ $((t1 - t0)) -le 20 ] || fail "the monitor used $((t1 - t0)) ticks in 2 s after the flood: it spins"
        stop "$n"
}

# Without fd pressure the relay keeps at most 256 client addresses per port.
test_udp_relay_keeps_a_bounded_number_of_clients() {
        local n u sub="$NET" fds0 fds
        n=$(mname v)
        u=$(unique_port 10)
        start_bg --tiny "$n" "$T/$n" -b -n -p "udp:$u:81"
        guest_servers "$n"
        ip addr add "$sub.41/29" dev "ve-$n"
        in_netns "$n" ip addr add "$sub.42/29" dev host0
        wait_for udp_says 127.0.0.1 "$u" || fail "udp 127.0.0.1:$u does not reach the guest"
        fds0=$(fd_count "$BG_PID")
        python3 - "$u" >"$T/many.out" 2>&1 <<-'PY'
	import socket, sys
	for _ in range(600):
	    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	    s.sendto(b"many", ("127.0.0.1", int(sys.argv[1])))
	    s.close()
	print("sent", flush=True)
	PY
        grep -q sent "$T/many.out" || fail "the datagrams were not sent: $(cat "$T/many.out")"
        wait_for udp_says 127.0.0.1 "$u" || fail "udp 127.0.0.1:$u does not answer a new client"
        fds=$(fd_count "$BG_PID")
        [ $((fds - fds0)) -le 256 ] || fail "the monitor holds $((fds - fds0)) more fds after 600 clients"
        [ $((fds - fds0)) -ge 100 ] || fail "only $((fds - fds0)) associations after 600 clients: the relay is not what answered"
        stop "$n"
}

test_settings_file_port() {
        local n p
        n=$(mname f)
        p=$(unique_port 7)
        # trusted (BERTH_SETTINGS_PATH): the key counts
        mkdir -p "$T/etc"
        printf '[Network]\nVirtualEthernet=yes\nPort=tcp:%s:80\n' "$p" >"$T/etc/$n.nspawn"
        BERTH_SETTINGS_PATH="$T/etc" start_bg --tiny "$n" "$T/$n" -b
        assert_contains "$(cat "/run/berth/machines/$n")" "PORT=tcp:$p:80"
        table_exists "$n" || fail "Port= made no table"
        stop "$n"
        table_gone "$n" || fail "the table is left"
        # untrusted (next to the tree): ignored, and said so
        rm -r "${T:?}/etc"
        make_tiny_tree "$T/$n"
        printf '[Network]\nPort=%s\n' "$p" >"$T/$n.nspawn"
        berth -D "$T/$n" -M "$n" -n /usr/bin/payload true
        assert_eq 0 "$RC" "$ERR"
        assert_contains "$ERR" "Ignoring Port= in untrusted $T/$n.nspawn"
        table_gone "$n" || fail "an untrusted Port= made a table"
}

test_bad_input() {
        local n p args
        n=$(mname b)
        p=$(unique_port 8)
        make_tiny_tree "$ROOT"
        net_snapshot
        for args in "-p $p" "--private-network -p $p" "--network-veth-extra=x$RUNID -p $p" \
                "-n --port=sctp:$p" "-n --port=$p:80:81" "-n -p 0" "-n -p 70000" "-n -p $p:0" \
                "-n -p $p:65536" "-n --port=" "-n -p tcp:" "-n -p $p -p $p:81"; do
                # shellcheck disable=SC2086 # ARGS are words
                berth -D "$ROOT" -M "$n" $args /usr/bin/payload true
                [ "$RC" = 1 ] || fail "$args: exit status $RC, expected 1"
                assert_one_line_error "$args"
                assert_contains "$ERR" "port" "$args"
        done
        berth -D "$ROOT" -M "$n" -p "$p" /usr/bin/payload true
        assert_contains "$ERR" "needs a private network with a virtual Ethernet link"
        berth -D "$ROOT" -M "$n" -n -p "sctp:$p" /usr/bin/payload true
        assert_contains "$ERR" "tcp or udp"
        berth -D "$ROOT" -M "$n" -n -p 70000 /usr/bin/payload true
        assert_contains "$ERR" "1 to 65535"
        assert_net_unchanged
}

run_tests
