/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Private networking: the links a machine gets (veth, bridge and zone ports, extra veths, moved
 * host interfaces, macvlan/ipvlan children) and their teardown, with libnl-route-3. All of it is
 * done by the monitor, in the host's namespaces, while the child waits for SYNC_CGROUP_READY:
 * the links are in the container's network namespace before anything of the guest runs. */

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/types.h>
#include "event-loop.h"

#include "berth-settings.h"

/* Host-side name prefixes, as nspawn has them: systemd-networkd's stock 80-container-ve.network,
 * 80-container-vb.network and 80-container-vz.network match them. */
#define NETWORK_VETH_PREFIX "ve-"
#define NETWORK_BRIDGE_VETH_PREFIX "vb-"
#define NETWORK_ZONE_PREFIX "vz-"
#define NETWORK_MACVLAN_PREFIX "mv-"
#define NETWORK_IPVLAN_PREFIX "iv-"
#define NETWORK_GUEST_VETH "host0"

/* A network interface name berth takes: 1-15 letters, digits, '-', '_' or '.', not "." or "..". */
bool ifname_is_valid(const char *name);

/* PREFIX followed by NAME, as is when that fits in 15 characters; else PREFIX, the start of NAME
 * and 8 hex digits of a hash of all of NAME: stable from one start to the next, and two long
 * names that share a start get different interface names. */
void network_ifname_make(const char *prefix, const char *name, char ret[static IFNAMSIZ]);

/* "A[:B]" of --network-interface=, --network-macvlan=, --network-veth-extra=: both valid interface
 * names; *ret_b is NULL without ':'. On -EINVAL *ret_detail says why. */
int network_pair_parse(const char *arg, char **ret_a, char **ret_b, const char **ret_detail);

/* Does the machine get links of its own (any of the --network-* options but the namespace path)? */
bool settings_network_links(const Settings *s);

typedef struct Network Network;

/* Empty state, owned by the monitor; network_setup() fills it step by step, so that
 * network_teardown() undoes a setup that failed half way too. */
Network *network_new(void);

/* Creates and moves the links into the network namespace of LEADER (which waits). Logs. */
int network_setup(Network *n, const Settings *s, pid_t leader);

/* What the record keeps: "NAME IFINDEX" of each host-side link berth made (removed by the
 * teardown or the next start's stale cleanup), the zone's bridge (NULL: none), and the
 * host-side interfaces for display (created links and moved interfaces). */
char **network_record_links(const Network *n);
const char *network_record_zone(const Network *n);
char **network_interfaces(const Network *n);
/* The ifindex of the machine's veth on the host where it is a port of a bridge (--network-bridge=,
 * --network-zone=), else 0. */
int network_bridge_port(const Network *n);
/* Host ifindexes of the machine's host-side links, for machined's RegisterMachineWithNetwork. */
size_t network_ifindexes(const Network *n, int **ret);

/* The guest's addresses for port forwarding: the first global, settled IPv4 and IPv6 address on its
 * veth (host0, by index), each only if the host routes it through the machine's own link (its veth,
 * or the bridge that is a port of): the guest picks its addresses, and must not be able to name
 * the host's own or a far one. -ENODEV: the machine has no veth. Doesn't log. */
typedef struct GuestAddresses {
        bool has_ipv4, has_ipv6;
        struct in_addr ipv4;
        struct in6_addr ipv6;
} GuestAddresses;
int network_guest_addresses(Network *n, GuestAddresses *ret);

/* Calls CB (soon after, at most every 100ms) when the guest's addresses or the host's addresses,
 * routes or links change, from the event loop E. Sources go with network_teardown(). Doesn't log. */
int network_watch(Network *n, Event *e, void (*cb)(void *userdata), void *userdata);

/* Moves interfaces back to the host, deletes what berth made, removes the zone's bridge when its
 * last machine left. Logs failures as warnings. Frees n; returns NULL. */
Network *network_teardown(Network *n);

/* After a dead instance: LINKS ("NAME IFINDEX", from its record) that still exist with that index
 * are deleted, and ZONE's bridge if no machine uses it any more. Returns how many links and
 * bridges were removed. Logs. */
int network_stale_cleanup(char **links, const char *zone);
