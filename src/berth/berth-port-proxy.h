/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The localhost side of a port forward (berth-port.h): sockets on 127.0.0.1:PORT and [::1]:PORT
 * in the monitor. TCP: each connection relayed to the guest's address. UDP: each local client
 * address gets a socket of its own connected to the guest (an association), so that the guest's
 * answers go back to that client; it ends after a minute without datagrams, and the number of them
 * is bounded (the one idle longest makes room for a new client). Runs in the host's namespaces, as
 * the monitor does; what the guest sends is untrusted bytes that are only copied, with bounded
 * buffers and a bounded number of connections and associations. */

#include <stdint.h>
#include "event-loop.h"

#include "berth-network.h"

typedef struct PortProxy PortProxy;

/* Binds the listeners for PROTOCOL (IPPROTO_TCP or IPPROTO_UDP). -EADDRINUSE: a program of the
 * host has the port on localhost already. A host without IPv6 gets the IPv4 listener only.
 * Doesn't log. */
int port_proxy_new(int protocol, uint16_t host_port, PortProxy **ret);

/* Serves connections (datagrams) from E, to CONTAINER_PORT at the address in *GUEST (IPv4 first), which the
 * caller keeps current; without one a connection is closed at once. Doesn't log. */
int port_proxy_start(PortProxy *p, Event *e, const GuestAddresses *guest, uint16_t container_port);

/* Closes the listeners and every connection. Returns NULL. */
PortProxy *port_proxy_free(PortProxy *p);
