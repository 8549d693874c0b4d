/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "berth-port-proxy.h"
#include "berth-port.h"
#include "dl-load.h"
#include "log.h"
#include "registry.h"
#include "util.h"

/* The process model: all of this runs in the monitor, in the host's namespaces. The nftables
 * table is host state: the record names it (NFT_TABLE=) before it exists, so that a berth killed
 * at any point leaves nothing that the next start does not remove (berth-stale.c). Ports go into
 * the record (PORT=) under the ports lock, which is how a second machine learns that a port is
 * taken. What the guest controls is its address: see network_guest_addresses() for why only an
 * address the host routes through the machine's own link is ever a target. On a bridge that link
 * is shared: see bridge_guard_text() for what keeps a forward's frames on the machine's own port. */

/* ---- parsing ---- */

static int parse_port(const char *s, size_t n, uint16_t *ret) {
        unsigned v = 0;

        if (n == 0 || n > 5)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned) (s[i] - '0');
        }
        if (v == 0 || v > 65535)
                return -ERANGE;
        *ret = (uint16_t) v;
        return 0;
}

int port_forward_parse(const char *arg, PortForward *ret, const char **ret_detail) {
        PortForward p = { .protocol = IPPROTO_TCP };
        const char *s = strempty(arg), *colon;
        int r;

        if (startswith(s, "tcp:"))
                s += 4;
        else if (startswith(s, "udp:")) {
                p.protocol = IPPROTO_UDP;
                s += 4;
        } else if ((colon = strchr(s, ':')) &&
                   (strchr(colon + 1, ':') || strspn(s, "0123456789") != (size_t) (colon - s))) {
                *ret_detail = "the protocol must be tcp or udp";
                return -EINVAL;
        }
        colon = strchr(s, ':');
        r = parse_port(s, colon ? (size_t) (colon - s) : strlen(s), &p.host_port);
        if (r >= 0 && colon)
                r = parse_port(colon + 1, strlen(colon + 1), &p.container_port);
        else
                p.container_port = p.host_port;
        if (r == -ERANGE) {
                *ret_detail = "ports are 1 to 65535";
                return -EINVAL;
        }
        if (r < 0) {
                *ret_detail = "expected [tcp|udp:]HOSTPORT[:CONTAINERPORT], e.g. tcp:8080:80";
                return -EINVAL;
        }
        *ret = p;
        return 0;
}

void port_forward_format(const PortForward *p, char ret[static PORT_FORWARD_STRING_MAX]) {
        snprintf(ret, PORT_FORWARD_STRING_MAX, "%s:%u:%u", p->protocol == IPPROTO_UDP ? "udp" : "tcp",
                 p->host_port, p->container_port);
}

void port_table_name(const char *machine, char ret[static 128]) {
        snprintf(ret, 128, PORT_TABLE_PREFIX "%s", machine);
}

unsigned long long netns_self(void) {
        struct stat st;
        return stat("/proc/self/ns/net", &st) < 0 ? 0 : (unsigned long long) st.st_ino;
}

/* ---- libnftables ---- */

#define NFT_SYMBOLS(X)                                                                                  \
        X(nft_ctx_new) X(nft_ctx_free) X(nft_ctx_buffer_output) X(nft_ctx_buffer_error)                \
        X(nft_ctx_get_error_buffer) X(nft_run_cmd_from_buffer)
NFT_SYMBOLS(DL_DECLARE)

/* libnftables, loaded at the first forward (dl-load.h): *ret_error says why it could not be */
static int nft_load(char **ret_error) {
        static const DlSymbol symbols[] = { NFT_SYMBOLS(DL_ENTRY) };
        static void *handle;
        const char *e;
        int r;

        r = dl_load(&handle, "libnftables.so.1", symbols, ELEMENTSOF(symbols), &e);
        if (r < 0 && ret_error)
                *ret_error = strjoin("port forwarding needs libnftables (install libnftables1): ", e);
        return r;
}

static void nft_ctx_freep(struct nft_ctx **c) {
        if (*c)
                sym_nft_ctx_free(*c);
}

/* Runs CMDS as one transaction: all of it or nothing. On failure *ret_error (if given) is the
 * first line nft said. Doesn't log. */
static int nft_run(const char *cmds, char **ret_error) {
        _cleanup_(nft_ctx_freep) struct nft_ctx *ctx = NULL;
        const char *e;
        int r;

        r = nft_load(ret_error);
        if (r < 0)
                return r;
        ctx = sym_nft_ctx_new(NFT_CTX_DEFAULT);
        if (!ctx)
                return -ENOMEM;
        /* nothing on our stdout or stderr: what nft says goes into our messages */
        if (sym_nft_ctx_buffer_output(ctx) < 0 || sym_nft_ctx_buffer_error(ctx) < 0)
                return -ENOMEM;
        if (sym_nft_run_cmd_from_buffer(ctx, cmds) == 0)
                return 0;
        e = sym_nft_ctx_get_error_buffer(ctx);
        if (ret_error) {
                const char *start = e && startswith(e, "Error: ") ? e + 7 : strempty(e);
                *ret_error = strndup(start, strcspn(start, "\n"));
        }
        return e && strstr(e, "No such file or directory") ? -ENOENT : -EIO;
}

static bool table_name_ok(const char *t) {
        size_t n = strlen(strempty(t));
        /* a record is root's, but a bad line must not turn into some other nft command */
        return n > strlen(PORT_TABLE_PREFIX) && n < 128 && startswith(t, PORT_TABLE_PREFIX) &&
               strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}

/* FAMILY: "inet" (the forwards) or "bridge" (their guard on a bridge). */
static int table_delete(const char *family, const char *table, char **ret_error) {
        _cleanup_free_ char *cmd = strjoin("delete table ", family, " ", table, "\n");
        return cmd ? nft_run(cmd, ret_error) : -ENOMEM;
}

/* ---- the machine's ports ---- */

struct Ports {
        const char *machine;
        bool quiet;
        char table[128];
        bool table_made;
        PortForward *forwards;
        size_t n_forwards;
        PortProxy **proxies; /* per forward: NULL where localhost is another program's */
        char **record;       /* PORT= lines */
        Network *network;
        int bridge_port;        /* the machine's port on its bridge (ifindex), 0: not on one */
        bool bridge_table_made; /* the bridge family's table of the same name */
        GuestAddresses guest;   /* the target now: the proxies read it */
        bool rules_made;        /* the table has rules for GUEST */
};

int ports_lock(int *ret_fd) {
        _cleanup_free_ char *dir = strjoin(registry_run_dir(), "/machines");
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (!dir)
                return -ENOMEM;
        r = mkdir_p(dir, 0755);
        if (r < 0)
                return r;
        /* the records' directory: no lock file to leave behind, and it is short (a read of the
         * running machines' records) */
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (flock(fd, LOCK_EX) < 0)
                return negative_errno();
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* Another running machine in this network namespace that forwards a host port of ours: its name
 * in *ret_machine and our forward in *ret_index. 0: none. */
static int find_taken(const Ports *p, unsigned long long netns, char **ret_machine, size_t *ret_index) {
        _cleanup_strv_free_ char **names = NULL;
        int r;

        r = registry_list(&names);
        if (r < 0)
                return r;
        STRV_FOREACH(name, names) {
                _cleanup_(machine_record_freep) MachineRecord *rec = NULL;

                if (streq(*name, p->machine) || registry_is_live(*name) <= 0 || registry_read(*name, &rec) < 0)
                        continue;
                if (rec->netns != 0 && netns != 0 && rec->netns != netns)
                        continue; /* another namespace's ports are not ours */
                STRV_FOREACH(e, rec->ports) {
                        PortForward theirs;
                        const char *detail;

                        if (port_forward_parse(*e, &theirs, &detail) < 0)
                                continue;
                        for (size_t i = 0; i < p->n_forwards; i++)
                                if (port_forward_same_host_port(&theirs, &p->forwards[i])) {
                                        *ret_machine = strdup(*name);
                                        *ret_index = i;
                                        return *ret_machine ? 1 : -ENOMEM;
                                }
                }
        }
        return 0;
}

int ports_reserve(const Settings *s, unsigned long long netns, Ports **ret) {
        _cleanup_free_ char *other = NULL;
        Ports *p;
        size_t k;
        int r;

        *ret = NULL;
        if (strv_isempty(s->ports))
                return 0;
        p = calloc(1, sizeof(Ports));
        if (!p)
                return log_oom();
        *ret = p; /* from here ports_free() undoes what was done */
        p->machine = s->machine;
        p->quiet = s->quiet;
        port_table_name(s->machine, p->table);
        p->forwards = calloc(strv_length(s->ports), sizeof(PortForward));
        p->proxies = calloc(strv_length(s->ports), sizeof(PortProxy *));
        if (!p->forwards || !p->proxies || !(p->record = strv_copy(s->ports)))
                return log_oom();
        STRV_FOREACH(e, s->ports) {
                const char *detail = NULL;
                if (port_forward_parse(*e, &p->forwards[p->n_forwards], &detail) < 0)
                        return log_error_errno(-EINVAL, "Invalid --port= value '%s': %s.", *e, strna(detail));
                p->n_forwards++;
        }

        r = find_taken(p, netns, &other, &k);
        if (r < 0)
                return log_error_errno(r, "Failed to read the records of the running machines: %m");
        if (r > 0) {
                char buf[PORT_FORWARD_STRING_MAX];
                port_forward_format(&p->forwards[k], buf);
                return log_error_errno(-EADDRINUSE, "Cannot forward port %s: machine '%s' forwards %s port %u "
                                                    "already. Pick another host port, or stop '%s' first.",
                                       buf, other, p->forwards[k].protocol == IPPROTO_UDP ? "udp" : "tcp",
                                       p->forwards[k].host_port, other);
        }

        for (size_t i = 0; i < p->n_forwards; i++) {
                const char *proto = p->forwards[i].protocol == IPPROTO_UDP ? "udp" : "tcp";

                r = port_proxy_new(p->forwards[i].protocol, p->forwards[i].host_port, &p->proxies[i]);
                if (r == -EADDRINUSE) {
                        /* as with nspawn, whose DNAT never reaches localhost at all */
                        if (!s->quiet)
                                log_warning("Port %s:%u is in use on the host's localhost by another program: "
                                            "127.0.0.1:%u reaches that program, not machine '%s'.",
                                            proto, p->forwards[i].host_port, p->forwards[i].host_port, s->machine);
                        continue;
                }
                if (r < 0)
                        return log_error_errno(r, "Failed to listen on localhost port %s:%u: %m", proto,
                                               p->forwards[i].host_port);
        }
        return 0;
}

char **ports_record(const Ports *p) {
        return p ? p->record : NULL;
}

const char *ports_record_table(const Ports *p) {
        return p ? p->table : NULL;
}

/* On a bridge (--network-bridge=, --network-zone=) the route check of network_guest_addresses()
 * cannot tell the machine from another member of the bridge: a second machine can put the first
 * one's address on its host0, and have its own host port forwarded to the first (exposing a port
 * the first never forwarded), or answer ARP/ND for it and take the first one's forwards. Which
 * member a frame reaches is only settled when the bridge sends it, so that is where the rule goes:
 * a frame from the host to the target's address and port leaves through the machine's own port
 * or not at all. This covers the DNAT paths and the localhost proxy alike, whatever the neighbour
 * cache and the bridge's forwarding database say, also while they change. A machine that claims
 * another's address makes its own forwards fail and, for the ports it forwards to, the host's
 * traffic to the other one: no more than it can do on a shared bridge anyway (by answering ARP for
 * it), and nothing of the other's reaches it through the host. No reject here: the bridge family
 * rejects in its input paths only. */
static void bridge_guard_text(FILE *f, const Ports *p, const GuestAddresses *a) {
        char addr[INET6_ADDRSTRLEN];

        fprintf(f,
                "table bridge %1$s\ndelete table bridge %1$s\ntable bridge %1$s {\n"
                "  chain output {\n    type filter hook output priority filter; policy accept;\n",
                p->table);
        for (int v6 = 0; v6 < 2; v6++) {
                if (!(v6 ? a->has_ipv6 : a->has_ipv4))
                        continue;
                inet_ntop(v6 ? AF_INET6 : AF_INET, v6 ? (const void *) &a->ipv6 : (const void *) &a->ipv4,
                          addr, sizeof addr);
                for (size_t i = 0; i < p->n_forwards; i++)
                        fprintf(f, "    %s daddr %s %s dport %u oif != %d drop\n", v6 ? "ip6" : "ip", addr,
                                p->forwards[i].protocol == IPPROTO_UDP ? "udp" : "tcp",
                                p->forwards[i].container_port, p->bridge_port);
        }
        fputs("  }\n}\n", f);
}

/* The table's text for the guest's addresses A: a DNAT rule per port and family where A has an
 * address, in PREROUTING (from elsewhere) and OUTPUT (from the host itself, to its own addresses
 * but not to loopback, which the proxy serves), and masquerading of the host's own connections, so
 * that the guest answers through its link whatever its routes. */
static int rules_text(const Ports *p, const GuestAddresses *a, char **ret) {
        static const struct {
                int family;
                const char *nf, *ip, *loopback;
        } fam[] = {
                { AF_INET, "ipv4", "ip", "127.0.0.0/8" },
                { AF_INET6, "ipv6", "ip6", "::1" },
        };
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *f;

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        /* add-then-delete: the table goes whether it exists or not, in the same transaction as
         * its new contents */
        fprintf(f, "table inet %1$s\ndelete table inet %1$s\ntable inet %1$s {\n", p->table);
        for (int c = 0; c < 3; c++) {
                static const char *const chain[] = { "prerouting", "output", "postrouting" };
                static const char *const hook[] = { "type nat hook prerouting priority dstnat",
                                                    "type nat hook output priority -100",
                                                    "type nat hook postrouting priority srcnat" };

                fprintf(f, "  chain %s {\n    %s; policy accept;\n", chain[c], hook[c]);
                for (size_t t = 0; t < ELEMENTSOF(fam); t++) {
                        char addr[INET6_ADDRSTRLEN];
                        bool has = fam[t].family == AF_INET ? a->has_ipv4 : a->has_ipv6;

                        if (!has)
                                continue;
                        inet_ntop(fam[t].family, fam[t].family == AF_INET ? (const void *) &a->ipv4 : (const void *) &a->ipv6,
                                  addr, sizeof addr);
                        for (size_t i = 0; i < p->n_forwards; i++) {
                                const PortForward *pf = &p->forwards[i];
                                const char *proto = pf->protocol == IPPROTO_UDP ? "udp" : "tcp";
                                bool v6 = fam[t].family == AF_INET6;

                                if (c == 0)
                                        fprintf(f, "    fib daddr type local meta nfproto %s %s dport %u dnat %s to %s%s%s:%u\n",
                                                fam[t].nf, proto, pf->host_port, fam[t].ip, v6 ? "[" : "", addr,
                                                v6 ? "]" : "", pf->container_port);
                                else if (c == 1)
                                        fprintf(f, "    fib daddr type local %s daddr != %s %s dport %u dnat %s to %s%s%s:%u\n",
                                                fam[t].ip, fam[t].loopback, proto, pf->host_port, fam[t].ip,
                                                v6 ? "[" : "", addr, v6 ? "]" : "", pf->container_port);
                                else
                                        fprintf(f, "    ct status dnat fib saddr type local %s daddr %s %s dport %u masquerade\n",
                                                fam[t].ip, addr, proto, pf->container_port);
                        }
                }
                fputs("  }\n", f);
        }
        fputs("}\n", f);
        /* in the same transaction: the guard is never behind the forwards */
        if (p->bridge_port > 0)
                bridge_guard_text(f, p, a);
        if (fclose(f) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(buf);
        return 0;
}

static int rules_apply(Ports *p, const GuestAddresses *a, char **ret_error) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = rules_text(p, a, &text);
        if (r < 0)
                return r;
        r = nft_run(text, ret_error);
        if (r < 0)
                return r;
        p->table_made = true;
        p->bridge_table_made = p->bridge_port > 0;
        return 0;
}

static bool guest_same(const GuestAddresses *a, const GuestAddresses *b) {
        return a->has_ipv4 == b->has_ipv4 && a->has_ipv6 == b->has_ipv6 &&
               (!a->has_ipv4 || a->ipv4.s_addr == b->ipv4.s_addr) &&
               (!a->has_ipv6 || memcmp(&a->ipv6, &b->ipv6, sizeof a->ipv6) == 0);
}

/* The guest's addresses or the host's routes may have changed: the rules follow. */
static void ports_refresh(void *userdata) {
        Ports *p = userdata;
        _cleanup_free_ char *error = NULL;
        GuestAddresses a;
        int r;

        r = network_guest_addresses(p->network, &a);
        if (r < 0) {
                log_debug_errno(r, "Failed to read the guest's addresses, ignoring: %m");
                return;
        }
        if (p->rules_made && guest_same(&a, &p->guest))
                return;
        /* the proxy follows at once; nftables as soon as the table is rewritten */
        p->guest = a;
        r = rules_apply(p, &a, &error);
        if (r < 0) {
                log_warning_errno(r, "Failed to update the port forwarding of machine '%s', ignoring: %s",
                                  p->machine, error ?: "out of memory");
                p->rules_made = false;
                return;
        }
        p->rules_made = true;
        if (a.has_ipv4 || a.has_ipv6) {
                char a4[INET_ADDRSTRLEN] = "", a6[INET6_ADDRSTRLEN] = "";
                if (a.has_ipv4)
                        inet_ntop(AF_INET, &a.ipv4, a4, sizeof a4);
                if (a.has_ipv6)
                        inet_ntop(AF_INET6, &a.ipv6, a6, sizeof a6);
                log_debug("Machine '%s': ports forwarded to %s%s%s.", p->machine, a4, *a4 && *a6 ? " and " : "", a6);
        } else
                log_debug("Machine '%s' has no address its ports can be forwarded to (yet).", p->machine);
}

/* Forwarding between links is a host-wide setting: we say what is missing, never flip it. */
static void warn_no_forwarding(const Ports *p) {
        static const struct {
                const char *family, *path, *key;
        } fam[] = {
                { "IPv4", "/proc/sys/net/ipv4/ip_forward", "net.ipv4.ip_forward" },
                { "IPv6", "/proc/sys/net/ipv6/conf/all/forwarding", "net.ipv6.conf.all.forwarding" },
        };

        if (p->quiet)
                return;
        for (size_t i = 0; i < ELEMENTSOF(fam); i++) {
                _cleanup_free_ char *v = NULL;

                if (read_one_line_file(fam[i].path, &v) < 0 || !streq(v, "0"))
                        continue;
                log_warning("%s forwarding is off on this host (%s=0): the ports of machine '%s' are reachable over "
                            "%s from the host itself only. Set it with 'sysctl -w %s=1' to reach them from other hosts.",
                            fam[i].family, fam[i].key, p->machine, fam[i].family, fam[i].key);
        }
}

int ports_start(Ports *p, Event *e, Network *n) {
        _cleanup_free_ char *error = NULL;
        int r;

        if (!p)
                return 0;
        p->network = n;
        p->bridge_port = network_bridge_port(n);
        /* the table from the start, empty until the guest has an address: it is there to be seen,
         * and a failure to make it (no nf_tables in the kernel) is one the user hears now */
        r = rules_apply(p, &p->guest, &error);
        if (r < 0)
                return log_error_errno(r, "Failed to create nftables table '%s' for the ports of machine '%s': %s",
                                       p->table, p->machine, error ?: "out of memory");
        r = network_watch(n, e, ports_refresh, p);
        if (r == -ENODEV)
                return log_error_errno(r, "Port forwarding needs the machine's virtual Ethernet link: pass "
                                          "--network-veth, --network-bridge= or --network-zone=.");
        if (r < 0)
                return log_error_errno(r, "Failed to watch the addresses of machine '%s': %m", p->machine);
        for (size_t i = 0; i < p->n_forwards; i++)
                if (p->proxies[i]) {
                        r = port_proxy_start(p->proxies[i], e, &p->guest, p->forwards[i].container_port);
                        if (r < 0)
                                return log_error_errno(r, "Failed to serve localhost port %s:%u: %m",
                                                       p->forwards[i].protocol == IPPROTO_UDP ? "udp" : "tcp",
                                                       p->forwards[i].host_port);
                }
        warn_no_forwarding(p);
        ports_refresh(p);
        return 0;
}

Ports *ports_free(Ports *p) {
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_forwards; i++)
                port_proxy_free(p->proxies[i]);
        for (int b = 0; b < 2; b++) {
                const char *family = b ? "bridge" : "inet";
                _cleanup_free_ char *error = NULL;
                int r;

                if (!(b ? p->bridge_table_made : p->table_made))
                        continue;
                r = table_delete(family, p->table, &error);
                if (r < 0 && r != -ENOENT)
                        log_warning("Failed to remove nftables table %s '%s', ignoring: %s", family,
                                    p->table, error ?: "out of memory");
        }
        free(p->proxies);
        free(p->forwards);
        strv_free(p->record);
        free(p);
        return NULL;
}

int ports_stale_cleanup(const char *table) {
        int removed = 0;

        if (!table)
                return 0;
        if (!table_name_ok(table)) {
                log_warning("Not removing nftables table '%s' named by a record: not one of berth's.", table);
                return 0;
        }
        /* the record names one table; a machine on a bridge had a guard of that name too */
        for (int b = 0; b < 2; b++) {
                const char *family = b ? "bridge" : "inet";
                _cleanup_free_ char *error = NULL;
                int r;

                r = table_delete(family, table, &error);
                if (r == -ENOENT)
                        continue;
                if (r < 0 && b) {
                        /* most machines never had one, and a kernel without the bridge family
                         * says so in other words: nothing to warn about at every start */
                        log_debug("Failed to remove nftables table bridge '%s', ignoring: %s", table,
                                  error ?: "out of memory");
                        continue;
                }
                if (r < 0)
                        return log_warning_errno(r, "Failed to remove nftables table %s '%s', ignoring: %s",
                                                 family, table, error ?: "out of memory");
                removed = 1;
        }
        return removed;
}
