/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "berth-port-proxy.h"
#include "util.h"

/* Connections at once per forwarded port: beyond this a new one is closed at once, so that a flood
 * of them costs the monitor a bounded amount of memory (2 * PROXY_BUFFER each). */
#define PROXY_MAX_CONNECTIONS 256
#define PROXY_BUFFER (64 * 1024)
/* Out of fds or memory: how long the listeners rest before they try again */
#define PROXY_RETRY_USEC (100 * 1000)

/* UDP: client addresses served at once per forwarded port (a socket each), how long one lasts
 * after its last datagram either way (as conntrack's UDP timeout for a flow with answers), and
 * how many datagrams one wakeup moves, so that one busy side cannot starve the others. */
#define RELAY_MAX_ASSOCIATIONS 256
#define RELAY_IDLE_USEC (60 * USEC_PER_SEC)
#define RELAY_BURST 64
#define RELAY_BUFFER (64 * 1024)

typedef struct Connection Connection;
typedef struct Association Association;

typedef union SockAddr {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
        struct sockaddr_storage storage;
} SockAddr;

/* One direction of a connection: bytes read from one side wait here until the other side takes
 * them. EOF once the reading side ended; then, when it is empty, the writing side is shut down. */
typedef struct Pipe {
        char *buf;
        size_t len, off;
        bool eof, shut;
} Pipe;

struct Connection {
        PortProxy *proxy;
        Connection *prev, *next;
        int fd[2];                 /* 0: the local client, 1: the guest */
        EventSource *src[2];
        Pipe pipe[2];              /* pipe[i]: read from fd[i], written to fd[1 - i] */
        bool connecting;           /* fd[1] not connected yet */
};

/* UDP: one local client address (127.0.0.1:P or [::1]:P) and the socket of its own that carries
 * its datagrams to the guest, so that the guest's answers come back to it alone. Kept in order of
 * their last datagram, the most recent first. */
struct Association {
        PortProxy *proxy;
        Association *prev, *next;
        int listen_index;     /* the listening socket the client wrote to, and that answers it */
        SockAddr client;
        socklen_t client_len;
        SockAddr target;      /* the guest's address when it was made */
        socklen_t target_len;
        int fd;               /* connected to TARGET */
        EventSource *src;
        uint64_t last_usec;   /* CLOCK_MONOTONIC of the last datagram either way */
};

struct PortProxy {
        int protocol;     /* IPPROTO_TCP or IPPROTO_UDP */
        int listen_fd[2]; /* 127.0.0.1, ::1 */
        EventSource *listen_src[2];
        EventSource *retry_src; /* wakes the listeners that pause_accepting() stopped */
        Event *event;
        const GuestAddresses *guest;
        uint16_t container_port;
        Connection *connections;
        unsigned n_connections;
        /* UDP */
        Association *associations, *oldest;
        unsigned n_associations;
        EventSource *idle_src; /* ends the associations that fell idle */
        char *datagram;            /* RELAY_BUFFER, for one datagram at a time */
};

static Connection *connection_free(Connection *c) {
        if (!c)
                return NULL;
        for (int i = 0; i < 2; i++) {
                event_source_disable_unref(c->src[i]);
                safe_close(c->fd[i]);
                free(c->pipe[i].buf);
        }
        if (c->prev)
                c->prev->next = c->next;
        else
                c->proxy->connections = c->next;
        if (c->next)
                c->next->prev = c->prev;
        c->proxy->n_connections--;
        free(c);
        return NULL;
}

/* What each side should be watched for now: reading while its pipe has room, writing while the
 * other side's pipe has something for it (or while the connect is under way). */
static int connection_update(Connection *c) {
        for (int i = 0; i < 2; i++) {
                Pipe *in = &c->pipe[i], *out = &c->pipe[1 - i];
                uint32_t events = 0;
                int r;

                if (c->connecting)
                        /* nothing moves before the guest's side is there */
                        events = i == 1 ? EPOLLOUT : 0;
                else {
                        if (!in->eof && in->len < PROXY_BUFFER)
                                events |= EPOLLIN;
                        if (out->len > 0)
                                events |= EPOLLOUT;
                }
                r = event_source_set_io_events(c->src[i], events);
                if (r >= 0)
                        r = event_source_set_enabled(c->src[i], events ? EVENT_ON : EVENT_OFF);
                if (r < 0)
                        return r;
        }
        /* both directions ended and were passed on: done */
        if (c->pipe[0].shut && c->pipe[1].shut)
                return -ECONNRESET;
        return 0;
}

/* Moves what it can through pipe I: read from fd[I], write to fd[1 - I]. Negative: the
 * connection is over (an error, or a side that went away while we had bytes for it). */
static int pipe_pump(Connection *c, int i) {
        Pipe *p = &c->pipe[i];
        ssize_t k;

        if (!p->eof && p->len < PROXY_BUFFER) {
                if (p->off > 0 && p->len > 0)
                        memmove(p->buf, p->buf + p->off, p->len);
                p->off = 0;
                k = recv(c->fd[i], p->buf + p->len, PROXY_BUFFER - p->len, MSG_DONTWAIT);
                if (k > 0)
                        p->len += (size_t) k;
                else if (k == 0)
                        p->eof = true;
                else if (errno != EAGAIN && errno != EINTR)
                        return -errno;
        }
        if (p->len > 0) {
                k = send(c->fd[1 - i], p->buf + p->off, p->len, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (k > 0) {
                        p->off += (size_t) k;
                        p->len -= (size_t) k;
                } else if (k < 0 && errno != EAGAIN && errno != EINTR)
                        return -errno;
        }
        if (p->eof && p->len == 0 && !p->shut) {
                (void) shutdown(c->fd[1 - i], SHUT_WR);
                p->shut = true;
        }
        return 0;
}

static int on_connection_io(EventSource *src, int fd, uint32_t revents, void *userdata) {
        Connection *c = userdata;
        int r = 0;

        if (c->connecting && fd == c->fd[1]) {
                int err = 0;
                socklen_t len = sizeof err;

                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
                        connection_free(c);
                        return 0;
                }
                c->connecting = false;
        }
        if (!c->connecting)
                for (int i = 0; i < 2 && r >= 0; i++)
                        r = pipe_pump(c, i);
        if (r >= 0)
                r = connection_update(c);
        if (r < 0)
                connection_free(c);
        return 0;
}

/* Where the guest is served now: its IPv4 address first. -EHOSTUNREACH: it has none (yet). */
static int guest_target(const PortProxy *p, SockAddr *ret, socklen_t *ret_len) {
        *ret = (SockAddr) {};
        if (p->guest->has_ipv4) {
                ret->in = (struct sockaddr_in) { .sin_family = AF_INET, .sin_port = htons(p->container_port),
                                                 .sin_addr = p->guest->ipv4 };
                *ret_len = sizeof ret->in;
        } else if (p->guest->has_ipv6) {
                ret->in6 = (struct sockaddr_in6) { .sin6_family = AF_INET6, .sin6_port = htons(p->container_port),
                                                   .sin6_addr = p->guest->ipv6 };
                *ret_len = sizeof ret->in6;
        } else
                return -EHOSTUNREACH;
        return 0;
}

static int connection_new(PortProxy *p, int client) {
        _cleanup_close_ int fd = client, guest = -EBADF;
        SockAddr sa;
        socklen_t salen;
        Connection *c;
        int r;

        r = guest_target(p, &sa, &salen);
        if (r < 0)
                return r; /* the guest has no address (yet): the client sees a reset */
        if (p->n_connections >= PROXY_MAX_CONNECTIONS)
                return -EMFILE;

        guest = socket(sa.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (guest < 0)
                return negative_errno();
        if (connect(guest, &sa.sa, salen) < 0 && errno != EINPROGRESS)
                return negative_errno();

        c = calloc(1, sizeof(Connection));
        if (!c)
                return -ENOMEM;
        c->proxy = p;
        c->fd[0] = TAKE_FD(fd);
        c->fd[1] = TAKE_FD(guest);
        c->connecting = true;
        c->next = p->connections;
        if (c->next)
                c->next->prev = c;
        p->connections = c;
        p->n_connections++;
        for (int i = 0; i < 2; i++)
                if (!(c->pipe[i].buf = malloc(PROXY_BUFFER))) {
                        connection_free(c);
                        return -ENOMEM;
                }
        r = event_add_io(p->event, &c->src[0], c->fd[0], 0, on_connection_io, c);
        if (r >= 0)
                r = event_add_io(p->event, &c->src[1], c->fd[1], EPOLLOUT, on_connection_io, c);
        if (r >= 0)
                r = connection_update(c);
        if (r < 0) {
                connection_free(c);
                return r;
        }
        return 0;
}

static int on_retry(EventSource *src, uint64_t usec, void *userdata) {
        PortProxy *p = userdata;

        for (int i = 0; i < 2; i++)
                if (p->listen_src[i])
                        (void) event_source_set_enabled(p->listen_src[i], EVENT_ON);
        return 0;
}

/* accept() failed for want of fds or memory (local clients that hold many connections, several
 * forwarded ports). The connection stays in the backlog and the listening socket readable, so the
 * event loop would call us again at once, for as long as the clients hold on: the listeners rest
 * a moment instead. Without a timer they stay on, as before. */
static void pause_accepting(PortProxy *p) {
        int r;

        if (p->retry_src) {
                r = event_source_set_time_relative(p->retry_src, PROXY_RETRY_USEC);
                if (r >= 0)
                        r = event_source_set_enabled(p->retry_src, EVENT_ONESHOT);
        } else
                r = event_add_time_relative(p->event, &p->retry_src, PROXY_RETRY_USEC, on_retry, p);
        if (r < 0)
                return;
        for (int i = 0; i < 2; i++)
                if (p->listen_src[i])
                        (void) event_source_set_enabled(p->listen_src[i], EVENT_OFF);
}

static int on_accept(EventSource *src, int fd, uint32_t revents, void *userdata) {
        PortProxy *p = userdata;

        for (;;) {
                int client = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (client < 0 && (errno == EINTR || errno == ECONNABORTED))
                        continue; /* a client that went away already: the next one */
                if (client < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM))
                        pause_accepting(p);
                if (client < 0)
                        break; /* EAGAIN: all taken */
                /* a connection we cannot serve is closed at once: the client sees it end */
                (void) connection_new(p, client);
        }
        return 0;
}


/* ---- UDP ---- */

static void association_unlink(Association *a) {
        PortProxy *p = a->proxy;

        if (a->prev)
                a->prev->next = a->next;
        else
                p->associations = a->next;
        if (a->next)
                a->next->prev = a->prev;
        else
                p->oldest = a->prev;
        a->prev = a->next = NULL;
}

static void association_push_front(Association *a) {
        PortProxy *p = a->proxy;

        a->next = p->associations;
        if (a->next)
                a->next->prev = a;
        else
                p->oldest = a;
        p->associations = a;
}

static Association *association_free(Association *a) {
        if (!a)
                return NULL;
        association_unlink(a);
        a->proxy->n_associations--;
        event_source_disable_unref(a->src);
        safe_close(a->fd);
        free(a);
        return NULL;
}

static uint64_t relay_now(PortProxy *p) {
        uint64_t t = 0;
        (void) event_now(p->event, &t);
        return t;
}

/* The idle timer is due when the oldest association falls idle; off without associations. */
static void idle_timer_update(PortProxy *p) {
        if (!p->idle_src)
                return;
        if (!p->oldest) {
                (void) event_source_set_enabled(p->idle_src, EVENT_OFF);
                return;
        }
        if (event_source_set_time(p->idle_src, p->oldest->last_usec + RELAY_IDLE_USEC) >= 0)
                (void) event_source_set_enabled(p->idle_src, EVENT_ONESHOT);
}

static void association_touch(Association *a) {
        a->last_usec = relay_now(a->proxy);
        if (a->proxy->associations != a) {
                association_unlink(a);
                association_push_front(a);
        }
}

static int on_idle(EventSource *src, uint64_t usec, void *userdata) {
        PortProxy *p = userdata;
        uint64_t now = relay_now(p);

        while (p->oldest && p->oldest->last_usec + RELAY_IDLE_USEC <= now)
                association_free(p->oldest);
        idle_timer_update(p);
        return 0;
}

/* The guest answers on an association's socket: to its client, from the port it wrote to. */
static int on_association_io(EventSource *src, int fd, uint32_t revents, void *userdata) {
        Association *a = userdata;
        PortProxy *p = a->proxy;

        for (int i = 0; i < RELAY_BURST; i++) {
                ssize_t n = recv(fd, p->datagram, RELAY_BUFFER, MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        break;
                if (n < 0)
                        continue; /* an ICMP error of an earlier datagram (nothing listens yet): read, go on */
                (void) sendto(p->listen_fd[a->listen_index], p->datagram, (size_t) n, MSG_DONTWAIT,
                              &a->client.sa, a->client_len);
                association_touch(a);
        }
        return 0;
}

/* A socket of its own for a client, connected to the guest. At the bound, or out of fds, the one
 * idle longest makes room: a new client is always served, and what a flood of source ports
 * costs the monitor stays at RELAY_MAX_ASSOCIATIONS sockets. */
static int association_new(PortProxy *p, int listen_index, const SockAddr *client, socklen_t client_len,
                           const SockAddr *target, socklen_t target_len, Association **ret) {
        _cleanup_close_ int fd = -EBADF;
        Association *a;
        int r;

        if (p->n_associations >= RELAY_MAX_ASSOCIATIONS)
                association_free(p->oldest);
        fd = socket(target->sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 && (errno == EMFILE || errno == ENFILE) && p->oldest) {
                association_free(p->oldest);
                fd = socket(target->sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        }
        if (fd < 0)
                return negative_errno();
        if (connect(fd, &target->sa, target_len) < 0)
                return negative_errno();

        a = calloc(1, sizeof(Association));
        if (!a)
                return -ENOMEM;
        a->proxy = p;
        a->listen_index = listen_index;
        memcpy(&a->client, client, client_len);
        a->client_len = client_len;
        memcpy(&a->target, target, target_len);
        a->target_len = target_len;
        a->fd = TAKE_FD(fd);
        a->last_usec = relay_now(p);
        association_push_front(a);
        p->n_associations++;
        r = event_add_io(p->event, &a->src, a->fd, EPOLLIN, on_association_io, a);
        if (r < 0) {
                association_free(a);
                return r;
        }
        *ret = a;
        return 0;
}

static Association *association_find(PortProxy *p, int listen_index, const SockAddr *client, socklen_t len) {
        for (Association *a = p->associations; a; a = a->next)
                if (a->listen_index == listen_index && a->client_len == len && memcmp(&a->client, client, len) == 0)
                        return a;
        return NULL;
}

/* A datagram from a local client: to the guest, through the client's association. Each one is
 * read whatever becomes of it, so the socket never stays readable for want of fds. */
static int on_datagram(EventSource *src, int fd, uint32_t revents, void *userdata) {
        PortProxy *p = userdata;
        int index = fd == p->listen_fd[0] ? 0 : 1;

        for (int i = 0; i < RELAY_BURST; i++) {
                SockAddr client = {}, target;
                socklen_t client_len = sizeof client, target_len;
                Association *a;
                ssize_t n;

                n = recvfrom(fd, p->datagram, RELAY_BUFFER, MSG_DONTWAIT, &client.sa, &client_len);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        break;
                if (n < 0 || client_len > sizeof client)
                        continue;
                if (guest_target(p, &target, &target_len) < 0)
                        continue; /* the guest has no address (yet): dropped, as on a network */
                a = association_find(p, index, &client, client_len);
                /* the guest moved: its answers come from the new address, on a new socket */
                if (a && (a->target_len != target_len || memcmp(&a->target, &target, target_len) != 0))
                        a = association_free(a);
                if (!a && association_new(p, index, &client, client_len, &target, target_len, &a) < 0)
                        continue;
                (void) send(a->fd, p->datagram, (size_t) n, MSG_DONTWAIT);
                association_touch(a);
        }
        idle_timer_update(p);
        return 0;
}

static int listen_on(int protocol, int family, uint16_t port, int *ret) {
        _cleanup_close_ int fd = -EBADF;
        SockAddr sa = {};
        socklen_t salen;
        int one = 1;

        fd = socket(family, (protocol == IPPROTO_UDP ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        /* a restart of the machine finds its port in TIME_WAIT: that is no conflict */
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
                return negative_errno();
        if (family == AF_INET) {
                sa.in = (struct sockaddr_in) { .sin_family = AF_INET, .sin_port = htons(port),
                                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
                salen = sizeof sa.in;
        } else {
                if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
                        return negative_errno();
                sa.in6 = (struct sockaddr_in6) { .sin6_family = AF_INET6, .sin6_port = htons(port),
                                                 .sin6_addr = in6addr_loopback };
                salen = sizeof sa.in6;
        }
        if (bind(fd, &sa.sa, salen) < 0)
                return negative_errno();
        if (protocol == IPPROTO_TCP && listen(fd, SOMAXCONN) < 0)
                return negative_errno();
        *ret = TAKE_FD(fd);
        return 0;
}

int port_proxy_new(int protocol, uint16_t host_port, PortProxy **ret) {
        PortProxy *p;
        int r;

        p = calloc(1, sizeof(PortProxy));
        if (!p)
                return -ENOMEM;
        p->protocol = protocol;
        p->listen_fd[0] = p->listen_fd[1] = -EBADF;
        if (protocol == IPPROTO_UDP && !(p->datagram = malloc(RELAY_BUFFER))) {
                port_proxy_free(p);
                return -ENOMEM;
        }
        r = listen_on(protocol, AF_INET, host_port, &p->listen_fd[0]);
        if (r >= 0) {
                r = listen_on(protocol, AF_INET6, host_port, &p->listen_fd[1]);
                /* no IPv6 on this host, or no ::1: localhost is 127.0.0.1 alone */
                if (r == -EAFNOSUPPORT || r == -EADDRNOTAVAIL)
                        r = 0;
        }
        if (r < 0) {
                port_proxy_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

int port_proxy_start(PortProxy *p, Event *e, const GuestAddresses *guest, uint16_t container_port) {
        int r;

        p->event = e;
        p->guest = guest;
        p->container_port = container_port;
        if (p->protocol == IPPROTO_UDP) {
                r = event_add_time(e, &p->idle_src, 0, on_idle, p);
                if (r < 0)
                        return r;
                (void) event_source_set_enabled(p->idle_src, EVENT_OFF);
        }
        for (int i = 0; i < 2; i++) {
                if (p->listen_fd[i] < 0)
                        continue;
                r = event_add_io(e, &p->listen_src[i], p->listen_fd[i], EPOLLIN,
                                    p->protocol == IPPROTO_UDP ? on_datagram : on_accept, p);
                if (r < 0)
                        return r;
        }
        return 0;
}

PortProxy *port_proxy_free(PortProxy *p) {
        if (!p)
                return NULL;
        while (p->connections)
                connection_free(p->connections);
        while (p->associations)
                association_free(p->associations);
        event_source_disable_unref(p->idle_src);
        event_source_disable_unref(p->retry_src);
        for (int i = 0; i < 2; i++) {
                event_source_disable_unref(p->listen_src[i]);
                safe_close(p->listen_fd[i]);
        }
        free(p->datagram);
        free(p);
        return NULL;
}
