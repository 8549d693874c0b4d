#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck disable=SC2317 # the cases are called by run_tests
#
# berth and systemd-networkd, as with nspawn: with networkd on the host and in a Debian guest, a
# machine with --network-veth (berth -n, or berth@.service, which gives it by default) gets an IPv4 address by DHCP from the host's networkd (the stock
# 80-container-ve.network matches ve-NAME, 80-container-host0.network the guest's host0) with no
# configuration, reaches a server behind the host through networkd's NAT, and machinectl shows
# its addresses; a trusted settings file's Port= forwards a port of the host to it, reached from
# the outside network and the host's localhost; VirtualEthernet=no there keeps berth@NAME on the
# host's network. Runs inside the systemd test host (test/tools/systemd-host.sh), whose network
# namespace is its own: networkd's forwarding and NAT there never touch the machine's.
#
# The "outside" is a network namespace of the test behind the test host, on a veth the test
# makes: a TCP server there says which address each connection came from, so NAT shows (the
# namespace has no route back to the guest's subnet: without NAT nothing connects at all).
. "$(dirname "$0")/lib.sh"
systemd_host_reexec "$@"
require_root
# shellcheck disable=SC2034 # read by lib.sh
RUN_TIMEOUT=300
# shellcheck disable=SC2034 # read by lib.sh
WAIT_TIMEOUT=120
# the job's stderr is the host's journal: berth would log there, not to stderr
unset JOURNAL_STREAM

DEB_TREE=$("$BERTH_SRC/test/tools/make-debian-tree.sh" "$BERTH_TEST_CACHE")

for f in 80-container-ve.network 80-container-host0.network; do
        if [ ! -e "/usr/lib/systemd/network/$f" ] && [ ! -e "/lib/systemd/network/$f" ]; then
                echo "1..0 # SKIP the test host's systemd has no stock $f"
                exit 0
        fi
done
if [ ! -x /lib/systemd/systemd-networkd ] && [ ! -x /usr/lib/systemd/systemd-networkd ]; then
        echo "1..0 # SKIP the Debian tree has no systemd-networkd"
        exit 0
fi

# the test host's tree has libnftables (berth links it), not the nft command
if ! command -v nft >/dev/null; then
        nft() {
                "$BERTH_BUILD/test/berth-test-nft" "$@"
        }
fi

_h=$(printf '%s' "$BT_PREFIX" | cksum | cut -d' ' -f1)
# the outside network: one /24 per run, away from networkd's pool picks (it avoids addresses in use)
OUTSIDE="172.$((_h % 8 + 20)).$(((_h / 8) % 250))"

# ---- helpers ----

# boot NAME [ARGS...]: boots /var/lib/machines/NAME (machine_tree) in the background; berth's
# messages go to $T/NAME.log, its exit status to $T/NAME.rc. Returns when the guest is up.
boot() {
        local name=$1
        shift
        rm -f "$T/$name.rc" "$T/$name.pid"
        (
                rc=0
                "$BERTH" -q -D "/var/lib/machines/$name" -M "$name" -b --console=pipe "$@" \
                        </dev/null >"$T/$name.out" 2>"$T/$name.log" &
                echo $! >"$T/$name.pid"
                wait $! || rc=$?
                echo "$rc" >"$T/$name.rc"
        ) &
        wait_for guest_is_up "$name" || fail "machine $name did not come up: $(cat "$T/$name.log")"
}

guest_is_up() {
        local state
        grep -qx STATE=ready "/run/berth/machines/$1" 2>/dev/null || return 1
        state=$(systemctl -M "$1" is-system-running 2>/dev/null) || true
        [ "$state" = running ] || [ "$state" = degraded ]
}

has_exited() {
        [ -e "$T/$1.rc" ]
}

leader_of() {
        sed -n 's/^LEADER=//p' "/run/berth/machines/$1"
}

# guest_ipv4 NAME: the global IPv4 address of the guest's host0 (not IPv4LL, which networkd in the
# guest takes without any DHCP server), empty without one.
guest_ipv4() {
        nsenter -t "$(leader_of "$1")" -n ip -4 -o addr show dev host0 scope global 2>/dev/null |
                awk '{ sub("/.*", "", $4); print $4; exit }'
}

has_ipv4() {
        [ -n "$(guest_ipv4 "$1")" ]
}

# in_guest NAME CMD...: runs CMD of the guest's tree in all of its namespaces.
in_guest() {
        local name=$1
        shift
        nsenter -t "$(leader_of "$name")" -n -m -p -u -i -r -w -- "$@"
}

# peer_seen NAME ADDRESS PORT EXPECTED: a connection from the guest to ADDRESS:PORT is answered,
# and the server saw it come from EXPECTED.
peer_seen() {
        local got
        # shellcheck disable=SC2016 # expanded by the guest's bash
        got=$(in_guest "$1" timeout 5 /bin/bash -c 'exec 3<>"/dev/tcp/$0/$1" && cat <&3' "$2" "$3" 2>/dev/null) ||
                return 1
        [ "$got" = "peer:$4" ]
}

machinectl_shows() {
        grep -qF "$2" <<<"$(machinectl status "$1" 2>/dev/null)"
}

# ---- cases ----

# networkd_guest NAME: networkd running on the test host, and /var/lib/machines/NAME with networkd
# enabled (Debian ships it disabled).
networkd_guest() {
        systemctl start systemd-networkd.service || fail "systemd-networkd does not start in the test host"
        machine_tree "$1"
        systemctl --root="/var/lib/machines/$1" enable systemd-networkd.service >/dev/null 2>&1 ||
                fail "cannot enable systemd-networkd in the guest's tree"
}

# make_outside PORT: a namespace behind the test host ($OUTSIDE.2, the host $OUTSIDE.1), made once
# per run, with a tcp-peer server on PORT for this case (what a case leaves running dies with it).
make_outside() {
        local outside="berth-test-$BT_PREFIX-out"
        if [ ! -e "/run/netns/$outside" ]; then
                make_outside_namespace "$outside"
        fi
        ip netns exec "$outside" "$BERTH_PAYLOAD" tcp-peer "$1" </dev/null >/dev/null 2>&1 &
}

make_outside_namespace() {
        local outside=$1
        ip netns add "$outside"
        ip link add "o$BT_PREFIX" type veth peer name eth0 netns "$outside"
        ip addr add "$OUTSIDE.1/24" dev "o$BT_PREFIX"
        ip link set "o$BT_PREFIX" up
        ip -n "$outside" addr add "$OUTSIDE.2/24" dev eth0
        ip -n "$outside" link set eth0 up
        ip -n "$outside" link set lo up
}

# dhcp_and_nat NAME PORT: the guest gets an address by DHCP from the host's networkd, reaches the
# outside through its NAT, and machinectl shows the address.
dhcp_and_nat() {
        local name=$1 port=$2 addr
        wait_for has_ipv4 "$name" || fail "the guest got no IPv4 address by DHCP: $(
                nsenter -t "$(leader_of "$name")" -n ip addr show dev host0 2>&1; networkctl status "ve-$name" 2>&1)"
        addr=$(guest_ipv4 "$name")
        echo "# the guest's address by DHCP: $addr"
        # the host's side is networkd's, as for an nspawn machine
        assert_contains "$(networkctl status "ve-$name" 2>&1)" "80-container-ve.network"
        # out through the host's NAT: the server sees the host's address, not the guest's
        wait_for peer_seen "$name" "$OUTSIDE.2" "$port" "$OUTSIDE.1" ||
                fail "the guest ($addr) does not reach $OUTSIDE.2:$port through the host's NAT: $(
                        in_guest "$name" ip route 2>&1; nft list ruleset 2>&1 | grep -A3 masq)"
        wait_for machinectl_shows "$name" "$addr" || fail "machinectl status does not show $addr: $(machinectl status "$name" 2>&1)"
}

test_dhcp_and_nat_from_the_hosts_networkd() {
        local name port
        name=$(unique_short_name nd)
        port=$(unique_port 1)
        networkd_guest "$name"
        make_outside "$port"
        boot "$name" --network-veth
        dhcp_and_nat "$name" "$port"
        machinectl poweroff "$name"
        wait_for has_exited "$name" || fail "berth for $name did not exit"
        assert_eq 0 "$(cat "$T/$name.rc")"
        ip link show "ve-$name" >/dev/null 2>&1 && fail "ve-$name is left"
        return 0
}

# berth@.service gives --network-veth, as systemd-nspawn@.service: the same with no options at all.
test_unit_gets_a_veth_by_default() {
        local name port
        name=$(unique_short_name nu)
        port=$(unique_port 2)
        networkd_guest "$name"
        make_outside "$port"
        install_unit
        assert_ok systemctl start "berth@$name"
        ip link show "ve-$name" >/dev/null 2>&1 || fail "berth@$name has no ve-$name"
        dhcp_and_nat "$name" "$port"
        assert_ok systemctl stop "berth@$name"
        ip link show "ve-$name" >/dev/null 2>&1 && fail "ve-$name is left"
        return 0
}

# said NETNS_CMD ADDRESS PORT: what a TCP server at ADDRESS:PORT says, from the test host's
# bash, in the namespace NETNS_CMD enters ("" for the test host's own).
said() {
        # shellcheck disable=SC2016,SC2086 # expanded by that bash; NETNS_CMD is words
        ${1:-} timeout 5 /bin/bash -c 'exec 3<>"/dev/tcp/$0/$1" && cat <&3' "$2" "$3" 2>/dev/null
}

# forwarded NETNS_CMD ADDRESS PORT EXPECTED: a connection to ADDRESS:PORT reaches the guest's
# tcp-peer server, which saw it come from EXPECTED ("" for any address).
forwarded() {
        local got
        got=$(said "$1" "$2" "$3") || return 1
        if [ -n "$4" ]; then
                [ "$got" = "peer:$4" ]
        else
                [[ $got == peer:?* ]]
        fi
}

# Port= in the trusted settings file of berth@NAME: the guest, addressed by the host's networkd,
# is reached through the forward from the outside network (DNAT of the test host's address there)
# and from the test host's localhost (the monitor's proxy); nothing of the forward is left after
# the unit stops.
test_unit_port_forward_reaches_the_guest() {
        local name port hport gport outside="berth-test-$BT_PREFIX-out" server ruleset
        name=$(unique_short_name np)
        port=$(unique_port 3)
        hport=$(unique_port 4)
        gport=$(unique_port 5)
        networkd_guest "$name"
        make_outside "$port"
        install_unit
        mkdir -p /etc/systemd/nspawn
        printf '[Network]\nPort=tcp:%s:%s\n' "$hport" "$gport" >"/etc/systemd/nspawn/$name.nspawn"
        assert_ok systemctl start "berth@$name"
        dhcp_and_nat "$name" "$port"
        # the server in the guest's network namespace: the guest's tree has none that says who came
        nsenter -t "$(leader_of "$name")" -n "$BERTH_PAYLOAD" tcp-peer "$gport" </dev/null >/dev/null 2>&1 &
        server=$!
        assert_contains "$(nft list tables 2>&1)" "table inet berth-$name"
        wait_for forwarded "ip netns exec $outside" "$OUTSIDE.1" "$hport" "$OUTSIDE.2" ||
                fail "the outside does not reach the guest through $OUTSIDE.1:$hport: $(
                        said "ip netns exec $outside" "$OUTSIDE.1" "$hport"; nft list table inet "berth-$name" 2>&1)"
        wait_for forwarded "" 127.0.0.1 "$hport" "" || fail "the test host's 127.0.0.1:$hport does not reach the guest"
        kill "$server" 2>/dev/null || true
        assert_ok systemctl stop "berth@$name"
        rm -f "/etc/systemd/nspawn/$name.nspawn"
        ruleset=$(nft list ruleset 2>&1) || fail "cannot list the ruleset: $ruleset"
        assert_not_contains "$ruleset" "berth-$name"
        assert_not_contains "$ruleset" "dport $hport"
        ip link show "ve-$name" >/dev/null 2>&1 && fail "ve-$name is left"
        return 0
}

# ... unless the machine's trusted settings file says VirtualEthernet=no: the host's network.
test_unit_settings_file_keeps_the_hosts_network() {
        local name
        name=$(unique_short_name nn)
        machine_tree "$name"
        install_unit
        mkdir -p /etc/systemd/nspawn
        printf '[Network]\nVirtualEthernet=no\n' >"/etc/systemd/nspawn/$name.nspawn"
        assert_ok systemctl start "berth@$name"
        ip link show "ve-$name" >/dev/null 2>&1 && fail "VirtualEthernet=no still gave ve-$name"
        assert_eq "$(readlink /proc/self/ns/net)" "$(readlink "/proc/$(leader_of "$name")/ns/net")"
        assert_ok systemctl stop "berth@$name"
        rm -f "/etc/systemd/nspawn/$name.nspawn"
}

run_tests
