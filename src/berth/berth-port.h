/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Port forwarding (-p, Port=): host ports forwarded to the guest's address on its veth.
 *
 * Three paths reach the guest, each where it can work:
 *  - from other hosts and machines: DNAT in the host's PREROUTING, with nftables (libnftables),
 *    one table per machine (family inet, "berth-NAME");
 *  - from the host itself, to one of its own addresses: DNAT in OUTPUT, and masquerading of those
 *    connections so that the guest's answer comes back through its link whatever its routes;
 *  - from the host's localhost (127.0.0.1, ::1): a TCP proxy and a UDP relay in the monitor
 *    (berth-port-proxy.h). DNAT cannot reach
 *    there without route_localnet, a host-wide setting with a known security history, and ::1 not
 *    at all.
 * The guest's address is the one it has on host0 now, provided the host routes it through the
 * machine's own link (berth-network.c); the table is rewritten when it changes. A machine on a
 * bridge gets a second table of the same name, family bridge: the forwards' frames leave through
 * the machine's own port of the bridge only, whichever member claims the address. */

#include <stdint.h>
#include "event-loop.h"

#include "berth-network.h"
#include "berth-settings.h"

#define PORT_FORWARD_STRING_MAX sizeof("tcp:65535:65535")
#define PORT_TABLE_PREFIX "berth-"

typedef struct PortForward {
        int protocol; /* IPPROTO_TCP or IPPROTO_UDP */
        uint16_t host_port;
        uint16_t container_port;
} PortForward;

/* [tcp|udp:]HOSTPORT[:CONTAINERPORT], ports 1-65535; CONTAINERPORT defaults to HOSTPORT. On -EINVAL
 * *ret_detail says why. */
int port_forward_parse(const char *arg, PortForward *ret, const char **ret_detail);
/* "tcp:8080:80": the form in Settings.ports and the record's PORT= lines. */
void port_forward_format(const PortForward *p, char ret[static PORT_FORWARD_STRING_MAX]);
/* Same protocol and host port. */
static inline bool port_forward_same_host_port(const PortForward *a, const PortForward *b) {
        return a->protocol == b->protocol && a->host_port == b->host_port;
}

/* The table of machine NAME: "berth-NAME" (machine names are valid nftables identifiers then). */
void port_table_name(const char *machine, char ret[static 128]);

typedef struct Ports Ports;

/* With the ports lock held (PORTS_LOCK below): refuses a host port another running machine in this
 * network namespace forwards already, and opens the localhost listeners. Nothing else is made.
 * *ret is NULL without ports. Logs. */
int ports_reserve(const Settings *s, unsigned long long netns, Ports **ret);
/* The ports lock: held from ports_reserve() until the record lists the ports, so that two machines
 * starting at once never both take one port. */
int ports_lock(int *ret_fd);

/* After the links exist: the nftables table (empty until the guest has an address), the guest's
 * addresses watched, the localhost proxy served from the event loop. Logs. */
int ports_start(Ports *p, Event *e, Network *n);
/* The record's PORT= lines and NFT_TABLE= (NULL before ports_start() made a table). */
char **ports_record(const Ports *p);
const char *ports_record_table(const Ports *p);

/* Removes the tables, closes the proxy and its connections. Logs warnings. Returns NULL. */
Ports *ports_free(Ports *p);

/* After a dead instance: deletes its tables named TABLE (inet, and bridge) that exist. 1: removed.
 * Logs. */
int ports_stale_cleanup(const char *table);

/* The inode of our network namespace, for the record's NETNS=; 0 if unknown. */
unsigned long long netns_self(void);
