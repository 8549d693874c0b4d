/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The localhost side of a TCP port forward (berth-port.h): listening sockets on 127.0.0.1:PORT and
 * [::1]:PORT in the monitor, each connection relayed to the guest's address. Runs in the host's
 * namespaces, as the monitor does; the guest's side of a connection is untrusted bytes that are
 * only copied, with bounded buffers and a bounded number of connections. */

#include <stdint.h>
#include <systemd/sd-event.h>

#include "berth-network.h"

typedef struct PortProxy PortProxy;

/* Binds the listeners. -EADDRINUSE: a program of the host has the port on localhost already. A
 * host without IPv6 gets the IPv4 listener only. Doesn't log. */
int port_proxy_new(uint16_t host_port, PortProxy **ret);

/* Serves connections from E, to CONTAINER_PORT at the address in *GUEST (IPv4 first), which the
 * caller keeps current; without one a connection is closed at once. Doesn't log. */
int port_proxy_start(PortProxy *p, sd_event *e, const GuestAddresses *guest, uint16_t container_port);

/* Closes the listeners and every connection. Returns NULL. */
PortProxy *port_proxy_free(PortProxy *p);
