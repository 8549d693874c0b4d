/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_link.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/ipvlan.h>
#include <netlink/route/link/macvlan.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/addr.h>
#include <netlink/route/route.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>

#include "berth-network.h"
#include "dl-load.h"
#include "log.h"
#include "registry.h"
#include "util.h"

/* The process model here: everything runs in the monitor, in the host's namespaces. The
 * container's network namespace is reached by file descriptor only (IFLA_NET_NS_FD), and, where
 * a link inside must be changed (brought up, moved back to the host at exit), through a netlink
 * socket opened in it: a socket keeps the namespace it was made in, so the monitor enters the
 * namespace just long enough to make one and goes back. Nothing of the guest runs while this
 * happens (it waits for SYNC_CGROUP_READY), so nothing in there can race us or hand us a link
 * under a name we expect. At exit the guest is gone; the monitor holds the namespace open so that
 * moved interfaces can still go back. */

bool ifname_is_valid(const char *name) {
        size_t n = strlen(strempty(name));

        if (n == 0 || n >= IFNAMSIZ || streq(name, ".") || streq(name, ".."))
                return false;
        /* stricter than the kernel (which takes most bytes): names that are safe in any tool, file
         * name and networkd match pattern */
        return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}

/* FNV-1a, 64 bit: stable across builds and hosts, which is what a name derived from it needs */
static uint64_t name_hash(const char *s) {
        uint64_t h = UINT64_C(0xcbf29ce484222325);

        for (; *s; s++) {
                h ^= (unsigned char) *s;
                h *= UINT64_C(0x100000001b3);
        }
        return h;
}

void network_ifname_make(const char *prefix, const char *name, char ret[static IFNAMSIZ]) {
        size_t p = strlen(prefix), n = strlen(name), keep;
        uint64_t h;

        if (p + n < IFNAMSIZ) {
                memcpy(ret, prefix, p);
                memcpy(ret + p, name, n + 1);
                return;
        }
        /* too long: the prefix, as much of the name as leaves room for 8 hex digits of the hash of
         * all of it, so that names that share their start still differ */
        keep = IFNAMSIZ - 1 - p - 8;
        h = name_hash(name);
        snprintf(ret, IFNAMSIZ, "%s%.*s%08x", prefix, (int) keep, name, (unsigned) ((h >> 32) ^ h));
}

int network_pair_parse(const char *arg, char **ret_a, char **ret_b, const char **ret_detail) {
        _cleanup_free_ char *a = NULL, *b = NULL;
        const char *colon = strchr(strempty(arg), ':');

        a = colon ? strndup(arg, (size_t) (colon - arg)) : strdup(strempty(arg));
        if (!a || (colon && !(b = strdup(colon + 1))))
                return -ENOMEM;
        if (!ifname_is_valid(a) || (colon && !ifname_is_valid(b))) {
                *ret_detail = "expected interface names of 1 to 15 characters of letters, digits, '-', '_' and '.'";
                return -EINVAL;
        }
        *ret_a = TAKE_PTR(a);
        *ret_b = TAKE_PTR(b);
        return 0;
}

bool settings_network_links(const Settings *s) {
        return s->network_veth || s->network_bridge || s->network_zone || !strv_isempty(s->network_veth_extra) ||
               !strv_isempty(s->network_interfaces) || !strv_isempty(s->network_macvlan) ||
               !strv_isempty(s->network_ipvlan);
}

/* ---- libnl ---- */

#define LIBNL_SYMBOLS(X)                                                                                \
        X(nl_addr_build) X(nl_addr_get_binary_addr) X(nl_addr_get_len) X(nl_addr_put)                   \
        X(nl_cache_free) X(nl_cache_get_first) X(nl_cache_get_next) X(nl_connect)                       \
        X(nl_socket_add_memberships) X(nl_socket_alloc) X(nl_socket_disable_seq_check)                  \
        X(nl_socket_free) X(nl_socket_get_fd) X(nl_socket_set_nonblocking) X(rtnl_addr_alloc_cache)     \
        X(rtnl_addr_get_family) X(rtnl_addr_get_flags) X(rtnl_addr_get_ifindex)                         \
        X(rtnl_addr_get_local) X(rtnl_addr_get_scope) X(rtnl_link_add) X(rtnl_link_alloc)               \
        X(rtnl_link_alloc_cache) X(rtnl_link_bridge_alloc) X(rtnl_link_change) X(rtnl_link_delete)      \
        X(rtnl_link_get_flags) X(rtnl_link_get_ifindex) X(rtnl_link_get_kernel)                         \
        X(rtnl_link_get_master) X(rtnl_link_get_name) X(rtnl_link_get_type)                             \
        X(rtnl_link_ipvlan_alloc) X(rtnl_link_ipvlan_set_mode) X(rtnl_link_macvlan_alloc)               \
        X(rtnl_link_macvlan_set_mode) X(rtnl_link_put) X(rtnl_link_set_flags) X(rtnl_link_set_link)     \
        X(rtnl_link_set_master) X(rtnl_link_set_name) X(rtnl_link_set_ns_fd) X(rtnl_link_veth_alloc)    \
        X(rtnl_link_veth_get_peer) X(rtnl_link_veth_release) X(rtnl_route_get_nnexthops)                \
        X(rtnl_route_get_type) X(rtnl_route_lookup) X(rtnl_route_nexthop_n)                             \
        X(rtnl_route_nh_get_ifindex) X(rtnl_route_put)
LIBNL_SYMBOLS(DL_DECLARE)

/* libnl-route-3 and its libnl-3, loaded for the first machine with links of its own (dl-load.h).
 * Logs. */
static int libnl_load(void) {
        static const DlSymbol symbols[] = { LIBNL_SYMBOLS(DL_ENTRY) };
        static void *handle;
        const char *e;
        int r;

        r = dl_load(&handle, "libnl-route-3.so.200", symbols, ELEMENTSOF(symbols), &e);
        if (r < 0)
                return log_error_errno(r, "Failed to load libnl-route-3, which the network options need: %s. "
                                          "Install libnl-route-3-200.", e);
        return 0;
}

/* libnl reports its own codes; the kernel's errno behind them, for messages and callers */
static int nl_to_errno(int r) {
        static const int map[NLE_MAX + 1] = {
                [NLE_INTR] = EINTR,           [NLE_BAD_SOCK] = EBADF,       [NLE_AGAIN] = EAGAIN,
                [NLE_NOMEM] = ENOMEM,         [NLE_EXIST] = EEXIST,         [NLE_INVAL] = EINVAL,
                [NLE_RANGE] = ERANGE,         [NLE_MSGSIZE] = EMSGSIZE,     [NLE_OPNOTSUPP] = EOPNOTSUPP,
                [NLE_AF_NOSUPPORT] = EAFNOSUPPORT, [NLE_OBJ_NOTFOUND] = ENODEV, [NLE_BUSY] = EBUSY,
                [NLE_NOACCESS] = EACCES,      [NLE_PERM] = EPERM,           [NLE_NODEV] = ENODEV,
                [NLE_IMMUTABLE] = EPERM,      [NLE_DUMP_INTR] = EINTR,
        };
        int e;

        if (r >= 0)
                return r;
        e = -r <= NLE_MAX ? map[-r] : 0;
        return -(e ?: EIO);
}

static void nl_socket_freep(struct nl_sock **sk) {
        if (*sk)
                sym_nl_socket_free(*sk);
}
static void rtnl_link_putp(struct rtnl_link **l) {
        if (*l)
                sym_rtnl_link_put(*l);
}
static void nl_cache_freep(struct nl_cache **c) {
        if (*c)
                sym_nl_cache_free(*c);
}

/* A route netlink socket in the current network namespace. Doesn't log. */
static int nl_open(struct nl_sock **ret) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        int r;

        if (!sym_nl_socket_alloc) /* libnl_load() comes first */
                return -EOPNOTSUPP;
        sk = sym_nl_socket_alloc();
        if (!sk)
                return -ENOMEM;
        r = sym_nl_connect(sk, NETLINK_ROUTE);
        if (r < 0)
                return nl_to_errno(r);
        *ret = TAKE_PTR(sk);
        return 0;
}

/* ... in the namespace NETNS: we enter it, open, and go back to HOST. Doesn't log. */
static int nl_open_in(int netns, int host, struct nl_sock **ret) {
        int r, q;

        if (setns(netns, CLONE_NEWNET) < 0)
                return negative_errno();
        r = nl_open(ret);
        q = RET_NERRNO(setns(host, CLONE_NEWNET));
        if (q < 0) {
                /* we would go on in the container's namespace: nothing below may run */
                log_error_errno(q, "Failed to return to the host's network namespace, aborting: %m");
                abort();
        }
        return r;
}

/* -ENODEV: no such link. Doesn't log. */
static int link_get(struct nl_sock *sk, int ifindex, const char *name, struct rtnl_link **ret) {
        return nl_to_errno(sym_rtnl_link_get_kernel(sk, ifindex, name, ret));
}

static int link_set_up(struct nl_sock *sk, const char *name) {
        _cleanup_(rtnl_link_putp) struct rtnl_link *l = NULL, *change = NULL;
        int r;

        r = link_get(sk, 0, name, &l);
        if (r < 0)
                return r;
        change = sym_rtnl_link_alloc();
        if (!change)
                return -ENOMEM;
        sym_rtnl_link_set_flags(change, IFF_UP);
        return nl_to_errno(sym_rtnl_link_change(sk, l, change, 0));
}

static int link_ifindex(struct nl_sock *sk, const char *name) {
        _cleanup_(rtnl_link_putp) struct rtnl_link *l = NULL;
        int r = link_get(sk, 0, name, &l);
        return r < 0 ? r : sym_rtnl_link_get_ifindex(l);
}

/* Deletes the link IFINDEX if it still has NAME (indexes only grow, so that is the one we made).
 * 0: it was gone already. Doesn't log. */
static int link_delete(struct nl_sock *sk, const char *name, int ifindex) {
        _cleanup_(rtnl_link_putp) struct rtnl_link *l = NULL;
        int r;

        r = link_get(sk, ifindex, NULL, &l);
        if (r == -ENODEV)
                return 0;
        if (r < 0)
                return r;
        if (!streq(strempty(sym_rtnl_link_get_name(l)), name))
                return 0;
        r = nl_to_errno(sym_rtnl_link_delete(sk, l));
        return r == -ENODEV ? 0 : r < 0 ? r : 1;
}

/* How many links have the bridge IFINDEX as master. */
static int bridge_ports(struct nl_sock *sk, int ifindex) {
        _cleanup_(nl_cache_freep) struct nl_cache *cache = NULL;
        int r, n = 0;

        r = nl_to_errno(sym_rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache));
        if (r < 0)
                return r;
        for (struct nl_object *o = sym_nl_cache_get_first(cache); o; o = sym_nl_cache_get_next(o))
                if (sym_rtnl_link_get_master((struct rtnl_link *) o) == ifindex)
                        n++;
        return n;
}

/* Zones: creating a zone's bridge and adding a port to it, or removing the last port and then
 * the bridge, happen under one lock, so that a machine joining a zone never finds its bridge
 * deleted under it by one that leaves. The lock is the run directory itself: no lock file to
 * leave behind, and zone changes are short. */
static int zone_lock(int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        r = mkdir_p(registry_run_dir(), 0755);
        if (r < 0)
                return r;
        fd = open(registry_run_dir(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (flock(fd, LOCK_EX) < 0)
                return negative_errno();
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* Removes the zone's bridge if no link is its port. Call with the zone lock. 1: removed. */
static int zone_remove_if_unused(struct nl_sock *sk, const char *bridge) {
        _cleanup_(rtnl_link_putp) struct rtnl_link *l = NULL;
        int r;

        r = link_get(sk, 0, bridge, &l);
        if (r == -ENODEV)
                return 0;
        if (r < 0)
                return r;
        if (!streq(strempty(sym_rtnl_link_get_type(l)), "bridge"))
                return 0; /* not a zone of ours */
        r = bridge_ports(sk, sym_rtnl_link_get_ifindex(l));
        if (r != 0)
                return r < 0 ? r : 0;
        r = nl_to_errno(sym_rtnl_link_delete(sk, l));
        return r == -ENODEV ? 0 : r < 0 ? r : 1;
}

/* ---- the machine's links ---- */

typedef struct MovedInterface {
        char *host_name;   /* its name on the host, which it gets back */
        int inner_ifindex; /* its index in the container */
} MovedInterface;

struct Network {
        struct nl_sock *sk;       /* in the host's network namespace */
        struct nl_sock *sk_inner; /* in the container's */
        int host_netns;
        int netns;                /* the container's, held until teardown */
        char **links;             /* "NAME IFINDEX" of host links we made */
        char *zone;               /* the zone's bridge, if we joined one */
        char **interfaces;        /* host-side names, for display */
        int *ifindexes;
        size_t n_ifindexes;
        MovedInterface *moved;
        size_t n_moved;
        /* the machine's own veth (host0): where the guest's address for port forwarding lives,
         * and the host link that must route to it (the veth's host side, or its bridge) */
        int guest_ifindex;
        int route_ifindex;
        int port_ifindex; /* the veth's host side where it is a bridge's port, else 0 */
        /* network_watch(): address and route changes, on both sides, rate-limited */
        struct nl_sock *watch_host, *watch_inner;
        EventSource *watch_host_src, *watch_inner_src, *watch_timer;
        void (*watch_cb)(void *userdata);
        void *watch_userdata;
};

Network *network_new(void) {
        Network *n = calloc(1, sizeof(Network));
        if (!n)
                return NULL;
        n->host_netns = n->netns = -EBADF;
        return n;
}

char **network_record_links(const Network *n) {
        return n ? n->links : NULL;
}

const char *network_record_zone(const Network *n) {
        return n ? n->zone : NULL;
}

char **network_interfaces(const Network *n) {
        return n ? n->interfaces : NULL;
}

int network_bridge_port(const Network *n) {
        return n ? n->port_ifindex : 0;
}

size_t network_ifindexes(const Network *n, int **ret) {
        *ret = n ? n->ifindexes : NULL;
        return n ? n->n_ifindexes : 0;
}

static int remember_host_link(Network *n, const char *name, int ifindex, bool made) {
        char buf[IFNAMSIZ + 16];
        int *l;

        if (made) {
                snprintf(buf, sizeof buf, "%s %d", name, ifindex);
                if (strv_extend(&n->links, buf) < 0)
                        return -ENOMEM;
        }
        if (strv_extend(&n->interfaces, name) < 0)
                return -ENOMEM;
        if (!made)
                return 0; /* machined lists host-side links; a moved interface is not one any more */
        l = realloc(n->ifindexes, sizeof(int) * (n->n_ifindexes + 1));
        if (!l)
                return -ENOMEM;
        n->ifindexes = l;
        l[n->n_ifindexes++] = ifindex;
        return 0;
}

/* A veth pair: HOST on the host (a port of MASTER if > 0), INNER in the container, both up. */
static int add_veth(Network *n, const char *host, const char *inner, int master) {
        struct rtnl_link *l = sym_rtnl_link_veth_alloc(), *peer;
        int r, ifindex;

        if (!l)
                return log_oom();
        sym_rtnl_link_set_name(l, host);
        if (master > 0)
                sym_rtnl_link_set_master(l, master);
        peer = sym_rtnl_link_veth_get_peer(l);
        sym_rtnl_link_set_name(peer, inner);
        sym_rtnl_link_set_ns_fd(peer, n->netns);
        sym_rtnl_link_put(peer);
        r = nl_to_errno(sym_rtnl_link_add(n->sk, l, NLM_F_CREATE | NLM_F_EXCL));
        sym_rtnl_link_veth_release(l);
        if (r == -EEXIST)
                return log_error_errno(r, "Failed to create veth '%s': an interface of that name exists on the host. "
                                          "Remove it, or pick another name.", host);
        if (r < 0)
                return log_error_errno(r, "Failed to create veth '%s' (container side '%s'): %m", host, inner);
        ifindex = link_ifindex(n->sk, host);
        if (ifindex < 0)
                return log_error_errno(ifindex, "Failed to find the new veth '%s': %m", host);
        r = remember_host_link(n, host, ifindex, true);
        if (r < 0)
                return log_oom();
        r = link_set_up(n->sk, host);
        if (r >= 0)
                r = link_set_up(n->sk_inner, inner);
        if (r < 0)
                return log_error_errno(r, "Failed to bring up veth '%s': %m", host);
        return 0;
}

/* The bridge of --network-bridge=: must exist and be a bridge. Returns its ifindex. */
static int bridge_find(struct nl_sock *sk, const char *name) {
        _cleanup_(rtnl_link_putp) struct rtnl_link *l = NULL;
        int r;

        r = link_get(sk, 0, name, &l);
        if (r == -ENODEV)
                return log_error_errno(r, "Bridge '%s' does not exist (--network-bridge=): create it first, or name "
                                          "an existing one.", name);
        if (r < 0)
                return log_error_errno(r, "Failed to look up bridge '%s': %m", name);
        if (!streq(strempty(sym_rtnl_link_get_type(l)), "bridge"))
                return log_error_errno(-ENOTSUP, "Interface '%s' is not a bridge (--network-bridge=): name a bridge.",
                                       name);
        return sym_rtnl_link_get_ifindex(l);
}

/* The zone's bridge, made (up, no address) if it is missing. Call with the zone lock. */
static int zone_bridge(struct nl_sock *sk, const char *bridge) {
        _cleanup_(rtnl_link_putp) struct rtnl_link *l = NULL;
        int r;

        r = link_get(sk, 0, bridge, &l);
        if (r >= 0) {
                if (!streq(strempty(sym_rtnl_link_get_type(l)), "bridge"))
                        return log_error_errno(-EEXIST, "Cannot use zone bridge '%s': an interface of that name "
                                                        "exists and is not a bridge.", bridge);
                return sym_rtnl_link_get_ifindex(l);
        }
        if (r != -ENODEV)
                return log_error_errno(r, "Failed to look up zone bridge '%s': %m", bridge);
        l = sym_rtnl_link_bridge_alloc();
        if (!l)
                return log_oom();
        sym_rtnl_link_set_name(l, bridge);
        r = nl_to_errno(sym_rtnl_link_add(sk, l, NLM_F_CREATE | NLM_F_EXCL));
        if (r < 0)
                return log_error_errno(r, "Failed to create zone bridge '%s': %m", bridge);
        r = link_set_up(sk, bridge);
        if (r < 0)
                return log_error_errno(r, "Failed to bring up zone bridge '%s': %m", bridge);
        r = link_ifindex(sk, bridge);
        if (r < 0)
                return log_error_errno(r, "Failed to find the new zone bridge '%s': %m", bridge);
        return r;
}

static int setup_veth(Network *n, const Settings *s) {
        _cleanup_close_ int lock = -EBADF;
        char host[IFNAMSIZ];
        int master = 0, r;

        if (s->network_zone) {
                char bridge[IFNAMSIZ];

                network_ifname_make(NETWORK_ZONE_PREFIX, s->network_zone, bridge);
                r = zone_lock(&lock);
                if (r < 0)
                        return log_error_errno(r, "Failed to lock the zones in %s: %m", registry_run_dir());
                master = zone_bridge(n->sk, bridge);
                if (master < 0)
                        return master;
                n->zone = strdup(bridge);
                if (!n->zone)
                        return log_oom();
        } else if (s->network_bridge) {
                master = bridge_find(n->sk, s->network_bridge);
                if (master < 0)
                        return master;
        }
        network_ifname_make(master > 0 ? NETWORK_BRIDGE_VETH_PREFIX : NETWORK_VETH_PREFIX, s->machine, host);
        r = add_veth(n, host, NETWORK_GUEST_VETH, master);
        if (r < 0 && n->zone)
                (void) zone_remove_if_unused(n->sk, n->zone); /* we may have made it */
        if (r < 0)
                return r;
        /* by index: the guest may rename its side, and an index is never reused for another link */
        n->guest_ifindex = link_ifindex(n->sk_inner, NETWORK_GUEST_VETH);
        n->route_ifindex = master > 0 ? master : link_ifindex(n->sk, host);
        n->port_ifindex = master > 0 ? link_ifindex(n->sk, host) : 0;
        r = n->guest_ifindex < 0   ? n->guest_ifindex
            : n->route_ifindex < 0 ? n->route_ifindex
                                   : n->port_ifindex;
        if (r < 0)
                return log_error_errno(r, "Failed to find the veth '%s' again: %m", host);
        return 0;
}

static int setup_veth_extra(Network *n, const char *spec) {
        _cleanup_free_ char *host = NULL, *inner = NULL;
        const char *detail;
        int r;

        r = network_pair_parse(spec, &host, &inner, &detail);
        if (r < 0)
                return log_error_errno(r, "Invalid --network-veth-extra= value '%s'.", spec);
        return add_veth(n, host, inner ?: host, 0);
}

static int setup_interface(Network *n, const char *spec) {
        _cleanup_free_ char *host = NULL, *inner = NULL;
        _cleanup_(rtnl_link_putp) struct rtnl_link *l = NULL, *change = NULL;
        const char *detail;
        MovedInterface *m;
        int r, ifindex;

        r = network_pair_parse(spec, &host, &inner, &detail);
        if (r < 0)
                return log_error_errno(r, "Invalid --network-interface= value '%s'.", spec);
        r = link_get(n->sk, 0, host, &l);
        if (r == -ENODEV)
                return log_error_errno(r, "Interface '%s' does not exist on the host (--network-interface=).", host);
        if (r < 0)
                return log_error_errno(r, "Failed to look up interface '%s': %m", host);
        if (sym_rtnl_link_get_flags(l) & IFF_LOOPBACK)
                return log_error_errno(-EINVAL, "Cannot move the loopback interface '%s' into a container.", host);
        change = sym_rtnl_link_alloc();
        if (!change)
                return log_oom();
        sym_rtnl_link_set_ns_fd(change, n->netns);
        if (inner)
                sym_rtnl_link_set_name(change, inner);
        r = nl_to_errno(sym_rtnl_link_change(n->sk, l, change, 0));
        if (r < 0)
                return log_error_errno(r, "Failed to move interface '%s' into the container: %m", host);
        /* from here it is ours to give back */
        ifindex = link_ifindex(n->sk_inner, inner ?: host);
        m = realloc(n->moved, sizeof(MovedInterface) * (n->n_moved + 1));
        if (!m)
                return log_oom();
        n->moved = m;
        m[n->n_moved] = (MovedInterface) { .host_name = TAKE_PTR(host), .inner_ifindex = ifindex };
        n->n_moved++;
        if (ifindex < 0)
                return log_error_errno(ifindex, "Failed to find interface '%s' in the container: %m", inner ?: spec);
        r = remember_host_link(n, m[n->n_moved - 1].host_name, sym_rtnl_link_get_ifindex(l), false);
        if (r < 0)
                return log_oom();
        r = link_set_up(n->sk_inner, inner ?: m[n->n_moved - 1].host_name);
        if (r < 0)
                return log_error_errno(r, "Failed to bring up interface '%s' in the container: %m", spec);
        return 0;
}

/* macvlan (IPVLAN false) or ipvlan child of a host interface, made in the container. */
static int setup_vlan(Network *n, const char *spec, bool ipvlan) {
        _cleanup_free_ char *parent = NULL, *inner = NULL;
        _cleanup_(rtnl_link_putp) struct rtnl_link *l = NULL;
        const char *kind = ipvlan ? "ipvlan" : "macvlan", *detail;
        char name[IFNAMSIZ];
        int r, p;

        r = network_pair_parse(spec, &parent, &inner, &detail);
        if (r < 0)
                return log_error_errno(r, "Invalid --network-%s= value '%s'.", kind, spec);
        p = link_ifindex(n->sk, parent);
        if (p == -ENODEV)
                return log_error_errno(p, "Interface '%s' does not exist on the host (--network-%s=).", parent, kind);
        if (p < 0)
                return log_error_errno(p, "Failed to look up interface '%s': %m", parent);
        if (inner)
                snprintf(name, sizeof name, "%s", inner);
        else
                network_ifname_make(ipvlan ? NETWORK_IPVLAN_PREFIX : NETWORK_MACVLAN_PREFIX, parent, name);

        l = ipvlan ? sym_rtnl_link_ipvlan_alloc() : sym_rtnl_link_macvlan_alloc();
        if (!l)
                return log_oom();
        if (ipvlan)
                r = sym_rtnl_link_ipvlan_set_mode(l, IPVLAN_MODE_L2);
        else
                r = sym_rtnl_link_macvlan_set_mode(l, MACVLAN_MODE_BRIDGE);
        if (r < 0)
                return log_error_errno(nl_to_errno(r), "Failed to set up a %s link: %m", kind);
        sym_rtnl_link_set_link(l, p);
        sym_rtnl_link_set_name(l, name);
        sym_rtnl_link_set_ns_fd(l, n->netns);
        r = nl_to_errno(sym_rtnl_link_add(n->sk, l, NLM_F_CREATE | NLM_F_EXCL));
        if (r == -EOPNOTSUPP && ipvlan)
                return log_error_errno(r, "Failed to create ipvlan interface '%s' on '%s': this kernel has no ipvlan "
                                          "support (CONFIG_IPVLAN). Use --network-macvlan= instead.", name, parent);
        if (r == -EOPNOTSUPP || r == -EINVAL)
                return log_error_errno(r, "Failed to create %s interface '%s' on '%s': '%s' cannot carry one (%m); "
                                          "name an Ethernet interface.", kind, name, parent, parent);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s interface '%s' on '%s': %m", kind, name, parent);
        r = link_set_up(n->sk_inner, name);
        if (r < 0)
                return log_error_errno(r, "Failed to bring up %s interface '%s' in the container: %m", kind, name);
        return 0;
}

int network_setup(Network *n, const Settings *s, pid_t leader) {
        char path[64];
        int r;

        if (!settings_network_links(s))
                return 0;
        r = libnl_load();
        if (r < 0)
                return r;
        snprintf(path, sizeof path, "/proc/%d/ns/net", (int) leader);
        n->netns = open(path, O_RDONLY | O_CLOEXEC);
        if (n->netns < 0)
                return log_error_errno(negative_errno(), "Failed to open the container's network namespace: %m");
        n->host_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        if (n->host_netns < 0)
                return log_error_errno(negative_errno(), "Failed to open the host's network namespace: %m");
        r = nl_open(&n->sk);
        if (r >= 0)
                r = nl_open_in(n->netns, n->host_netns, &n->sk_inner);
        if (r < 0)
                return log_error_errno(r, "Failed to open a netlink socket: %m");

        if (s->network_veth || s->network_bridge || s->network_zone) {
                r = setup_veth(n, s);
                if (r < 0)
                        return r;
        }
        STRV_FOREACH(e, s->network_veth_extra)
                if ((r = setup_veth_extra(n, *e)) < 0)
                        return r;
        STRV_FOREACH(e, s->network_interfaces)
                if ((r = setup_interface(n, *e)) < 0)
                        return r;
        STRV_FOREACH(e, s->network_macvlan)
                if ((r = setup_vlan(n, *e, false)) < 0)
                        return r;
        STRV_FOREACH(e, s->network_ipvlan)
                if ((r = setup_vlan(n, *e, true)) < 0)
                        return r;
        return 0;
}

/* ---- the guest's address, for port forwarding ---- */

static void rtnl_route_putp(struct rtnl_route **r) {
        if (*r)
                sym_rtnl_route_put(*r);
}
static void nl_addr_putp(struct nl_addr **a) {
        if (*a)
                sym_nl_addr_put(*a);
}

/* Does the host send ADDR out through the machine's own link, as a unicast route (not to an
 * address of its own)? The guest chooses its address: without this it could name the host's
 * address or another machine's, and have the host forward its ports there. On a bridge this says
 * only which bridge: another member may claim the same address, and which member a frame reaches
 * is settled per frame, by ARP/ND and the bridge's forwarding database, both of which the members
 * can sway. berth-port.c keeps a forward's frames on the machine's own port for that. */
static bool host_routes_to_guest(Network *n, struct nl_addr *addr) {
        _cleanup_(rtnl_route_putp) struct rtnl_route *route = NULL;
        struct rtnl_nexthop *nh;

        if (sym_rtnl_route_lookup(n->sk, addr, &route) < 0 || !route)
                return false;
        if (sym_rtnl_route_get_type(route) != RTN_UNICAST || sym_rtnl_route_get_nnexthops(route) != 1)
                return false;
        nh = sym_rtnl_route_nexthop_n(route, 0);
        return nh && sym_rtnl_route_nh_get_ifindex(nh) == n->route_ifindex;
}

int network_guest_addresses(Network *n, GuestAddresses *ret) {
        _cleanup_(nl_cache_freep) struct nl_cache *cache = NULL;
        GuestAddresses a = {};
        int rank[2] = { INT_MAX, INT_MAX }; /* of what a holds, per family: lower is better */
        int r;

        if (!n || n->guest_ifindex <= 0 || !n->sk_inner)
                return -ENODEV;
        r = nl_to_errno(sym_rtnl_addr_alloc_cache(n->sk_inner, &cache));
        if (r < 0)
                return r;
        for (struct nl_object *o = sym_nl_cache_get_first(cache); o; o = sym_nl_cache_get_next(o)) {
                struct rtnl_addr *ra = (struct rtnl_addr *) o;
                struct nl_addr *local = sym_rtnl_addr_get_local(ra);
                int family = sym_rtnl_addr_get_family(ra);
                bool *has = family == AF_INET ? &a.has_ipv4 : &a.has_ipv6;
                int *best = &rank[family == AF_INET ? 0 : 1], this;
                unsigned flags = sym_rtnl_addr_get_flags(ra);
                _cleanup_(nl_addr_putp) struct nl_addr *host = NULL;

                if (sym_rtnl_addr_get_ifindex(ra) != n->guest_ifindex || !local ||
                    (family != AF_INET && family != AF_INET6))
                        continue;
                /* a global address, settled: not link-local, not one that may still go (DAD) */
                if (sym_rtnl_addr_get_scope(ra) != RT_SCOPE_UNIVERSE || (flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)))
                        continue;
                /* The kernel lists the newest first, but the newest is not the best target: a
                 * stable address goes before a temporary (privacy) one, which the kernel replaces on
                 * its own, and both before a deprecated one, on its way out and not for new
                 * connections. The first of the best kind wins. */
                this = (flags & IFA_F_DEPRECATED) ? 2 : (flags & IFA_F_TEMPORARY) ? 1 : 0;
                if (this >= *best)
                        continue;
                if (sym_nl_addr_get_len(local) != (family == AF_INET ? sizeof(struct in_addr) : sizeof(struct in6_addr)))
                        continue;
                /* the address alone, as a host route asks for it */
                host = sym_nl_addr_build(family, sym_nl_addr_get_binary_addr(local), sym_nl_addr_get_len(local));
                if (!host)
                        return -ENOMEM;
                if (!host_routes_to_guest(n, host))
                        continue;
                memcpy(family == AF_INET ? (void *) &a.ipv4 : (void *) &a.ipv6, sym_nl_addr_get_binary_addr(local),
                       sym_nl_addr_get_len(local));
                *has = true;
                *best = this;
        }
        *ret = a;
        return 0;
}

/* Rate limit: a guest that changes its addresses in a loop costs us one look every 100ms. */
#define WATCH_DELAY_USEC (100 * 1000)

static int on_watch_timer(EventSource *src, uint64_t usec, void *userdata) {
        Network *n = userdata;
        n->watch_cb(n->watch_userdata);
        return 0;
}

static int on_watch(EventSource *src, int fd, uint32_t revents, void *userdata) {
        Network *n = userdata;
        char buf[8192];
        int r;

        /* what changed does not matter, only that something did: read what is there, look again
         * soon. ENOBUFS (we missed some) says the same. A bounded number per wake-up: the guest
         * makes these events, and must not keep us here; the rest wakes us again. */
        for (int i = 0; i < 64; i++) {
                ssize_t k = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                if (k < 0 && errno != ENOBUFS && errno != EINTR)
                        break;
        }
        r = event_source_get_enabled(n->watch_timer, NULL);
        if (r > 0)
                return 0; /* a look is due already */
        (void) event_source_set_time_relative(n->watch_timer, WATCH_DELAY_USEC);
        (void) event_source_set_enabled(n->watch_timer, EVENT_ONESHOT);
        return 0;
}

static int watch_socket(struct nl_sock *sk, bool routes) {
        int r;

        sym_nl_socket_disable_seq_check(sk);
        r = sym_nl_socket_add_memberships(sk, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR, 0);
        if (r >= 0 && routes)
                r = sym_nl_socket_add_memberships(sk, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE, RTNLGRP_LINK, 0);
        if (r >= 0)
                r = sym_nl_socket_set_nonblocking(sk);
        return nl_to_errno(r);
}

int network_watch(Network *n, Event *e, void (*cb)(void *userdata), void *userdata) {
        int r;

        if (!n || n->guest_ifindex <= 0)
                return -ENODEV;
        n->watch_cb = cb;
        n->watch_userdata = userdata;
        /* the guest's addresses; on the host, its addresses and routes (the route to the guest) */
        r = nl_open_in(n->netns, n->host_netns, &n->watch_inner);
        if (r >= 0)
                r = watch_socket(n->watch_inner, false);
        if (r >= 0)
                r = nl_open(&n->watch_host);
        if (r >= 0)
                r = watch_socket(n->watch_host, true);
        if (r < 0)
                return r;
        r = event_add_time_relative(e, &n->watch_timer, WATCH_DELAY_USEC, on_watch_timer, n);
        if (r >= 0)
                r = event_source_set_enabled(n->watch_timer, EVENT_OFF);
        if (r >= 0)
                r = event_add_io(e, &n->watch_inner_src, sym_nl_socket_get_fd(n->watch_inner), EPOLLIN, on_watch, n);
        if (r >= 0)
                r = event_add_io(e, &n->watch_host_src, sym_nl_socket_get_fd(n->watch_host), EPOLLIN, on_watch, n);
        return r;
}

/* ---- teardown ---- */

static int parse_link_entry(const char *e, char name[static IFNAMSIZ], int *ret_ifindex) {
        const char *sp = strrchr(e, ' ');

        if (!sp || (size_t) (sp - e) >= IFNAMSIZ || safe_atoi(sp + 1, ret_ifindex) < 0 || *ret_ifindex <= 0)
                return -EINVAL;
        memcpy(name, e, (size_t) (sp - e));
        name[sp - e] = 0;
        return ifname_is_valid(name) ? 0 : -EINVAL;
}

/* Deletes LINKS, then the zone's bridge if unused (under the zone lock when there is a zone).
 * Returns how many were removed. Logs warnings. */
static int remove_links(struct nl_sock *sk, char **links, const char *zone) {
        _cleanup_close_ int lock = -EBADF;
        int removed = 0, r;

        if (zone) {
                r = zone_lock(&lock);
                if (r < 0)
                        log_warning_errno(r, "Failed to lock the zones, removing zone '%s' anyway: %m", zone);
        }
        STRV_FOREACH(e, links) {
                char name[IFNAMSIZ];
                int ifindex;

                if (parse_link_entry(*e, name, &ifindex) < 0) {
                        log_warning("Ignoring malformed link entry '%s'.", *e);
                        continue;
                }
                r = link_delete(sk, name, ifindex);
                if (r < 0)
                        log_warning_errno(r, "Failed to remove interface '%s', ignoring: %m", name);
                else
                        removed += r;
        }
        if (zone && ifname_is_valid(zone)) {
                r = zone_remove_if_unused(sk, zone);
                if (r < 0)
                        log_warning_errno(r, "Failed to remove zone bridge '%s', ignoring: %m", zone);
                else
                        removed += r;
        }
        return removed;
}

Network *network_teardown(Network *n) {
        if (!n)
                return NULL;
        /* moved interfaces first: once the namespace goes, the kernel destroys virtual ones (veth,
         * macvlan) and gives physical ones back under their container names */
        for (size_t i = 0; i < n->n_moved; i++) {
                _cleanup_(rtnl_link_putp) struct rtnl_link *l = NULL, *change = NULL;
                int r;

                if (n->moved[i].inner_ifindex <= 0 || !n->sk_inner)
                        continue;
                r = link_get(n->sk_inner, n->moved[i].inner_ifindex, NULL, &l);
                if (r >= 0 && !(change = sym_rtnl_link_alloc()))
                        r = -ENOMEM;
                if (r >= 0) {
                        sym_rtnl_link_set_ns_fd(change, n->host_netns);
                        sym_rtnl_link_set_name(change, n->moved[i].host_name);
                        r = nl_to_errno(sym_rtnl_link_change(n->sk_inner, l, change, 0));
                }
                if (r < 0)
                        log_warning_errno(r, "Failed to move interface '%s' back to the host, ignoring: %m",
                                          n->moved[i].host_name);
        }
        if (n->sk)
                (void) remove_links(n->sk, n->links, n->zone);

        for (size_t i = 0; i < n->n_moved; i++)
                free(n->moved[i].host_name);
        free(n->moved);
        strv_free(n->links);
        strv_free(n->interfaces);
        free(n->zone);
        free(n->ifindexes);
        if (n->sk)
                sym_nl_socket_free(n->sk);
        if (n->sk_inner)
                sym_nl_socket_free(n->sk_inner);
        event_source_disable_unref(n->watch_host_src);
        event_source_disable_unref(n->watch_inner_src);
        event_source_disable_unref(n->watch_timer);
        if (n->watch_host)
                sym_nl_socket_free(n->watch_host);
        if (n->watch_inner)
                sym_nl_socket_free(n->watch_inner);
        safe_close(n->netns);
        safe_close(n->host_netns);
        free(n);
        return NULL;
}

int network_stale_cleanup(char **links, const char *zone) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        int r;

        if (strv_isempty(links) && !zone)
                return 0;
        r = libnl_load();
        if (r < 0)
                return r;
        r = nl_open(&sk);
        if (r < 0)
                return log_warning_errno(r, "Failed to open a netlink socket, not removing a dead instance's links: %m");
        return remove_links(sk, links, zone);
}
