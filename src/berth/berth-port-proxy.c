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

typedef struct Connection Connection;

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
        sd_event_source *src[2];
        Pipe pipe[2];              /* pipe[i]: read from fd[i], written to fd[1 - i] */
        bool connecting;           /* fd[1] not connected yet */
};

struct PortProxy {
        int listen_fd[2]; /* 127.0.0.1, ::1 */
        sd_event_source *listen_src[2];
        sd_event_source *retry_src; /* wakes the listeners that pause_accepting() stopped */
        sd_event *event;
        const GuestAddresses *guest;
        uint16_t container_port;
        Connection *connections;
        unsigned n_connections;
};

static Connection *connection_free(Connection *c) {
        if (!c)
                return NULL;
        for (int i = 0; i < 2; i++) {
                sd_event_source_disable_unref(c->src[i]);
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
                r = sd_event_source_set_io_events(c->src[i], events);
                if (r >= 0)
                        r = sd_event_source_set_enabled(c->src[i], events ? SD_EVENT_ON : SD_EVENT_OFF);
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

static int on_connection_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
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

static int connection_new(PortProxy *p, int client) {
        _cleanup_close_ int fd = client, guest = -EBADF;
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } sa = {};
        socklen_t salen;
        Connection *c;
        int r;

        if (p->guest->has_ipv4) {
                sa.in = (struct sockaddr_in) { .sin_family = AF_INET, .sin_port = htons(p->container_port),
                                               .sin_addr = p->guest->ipv4 };
                salen = sizeof sa.in;
        } else if (p->guest->has_ipv6) {
                sa.in6 = (struct sockaddr_in6) { .sin6_family = AF_INET6, .sin6_port = htons(p->container_port),
                                                 .sin6_addr = p->guest->ipv6 };
                salen = sizeof sa.in6;
        } else
                return -EHOSTUNREACH; /* the guest has no address (yet): the client sees a reset */
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
        r = sd_event_add_io(p->event, &c->src[0], c->fd[0], 0, on_connection_io, c);
        if (r >= 0)
                r = sd_event_add_io(p->event, &c->src[1], c->fd[1], EPOLLOUT, on_connection_io, c);
        if (r >= 0)
                r = connection_update(c);
        if (r < 0) {
                connection_free(c);
                return r;
        }
        return 0;
}

static int on_retry(sd_event_source *src, uint64_t usec, void *userdata) {
        PortProxy *p = userdata;

        for (int i = 0; i < 2; i++)
                if (p->listen_src[i])
                        (void) sd_event_source_set_enabled(p->listen_src[i], SD_EVENT_ON);
        return 0;
}

/* accept() failed for want of fds or memory (local clients that hold many connections, several
 * forwarded ports). The connection stays in the backlog and the listening socket readable, so the
 * event loop would call us again at once, for as long as the clients hold on: the listeners rest
 * a moment instead. Without a timer they stay on, as before. */
static void pause_accepting(PortProxy *p) {
        int r;

        if (p->retry_src) {
                r = sd_event_source_set_time_relative(p->retry_src, PROXY_RETRY_USEC);
                if (r >= 0)
                        r = sd_event_source_set_enabled(p->retry_src, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time_relative(p->event, &p->retry_src, CLOCK_MONOTONIC, PROXY_RETRY_USEC, 0,
                                               on_retry, p);
        if (r < 0)
                return;
        for (int i = 0; i < 2; i++)
                if (p->listen_src[i])
                        (void) sd_event_source_set_enabled(p->listen_src[i], SD_EVENT_OFF);
}

static int on_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
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

static int listen_on(int family, uint16_t port, int *ret) {
        _cleanup_close_ int fd = -EBADF;
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } sa = {};
        socklen_t salen;
        int one = 1;

        fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
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
        if (bind(fd, &sa.sa, salen) < 0 || listen(fd, SOMAXCONN) < 0)
                return negative_errno();
        *ret = TAKE_FD(fd);
        return 0;
}

int port_proxy_new(uint16_t host_port, PortProxy **ret) {
        PortProxy *p;
        int r;

        p = calloc(1, sizeof(PortProxy));
        if (!p)
                return -ENOMEM;
        p->listen_fd[0] = p->listen_fd[1] = -EBADF;
        r = listen_on(AF_INET, host_port, &p->listen_fd[0]);
        if (r >= 0) {
                r = listen_on(AF_INET6, host_port, &p->listen_fd[1]);
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

int port_proxy_start(PortProxy *p, sd_event *e, const GuestAddresses *guest, uint16_t container_port) {
        int r;

        p->event = e;
        p->guest = guest;
        p->container_port = container_port;
        for (int i = 0; i < 2; i++) {
                if (p->listen_fd[i] < 0)
                        continue;
                r = sd_event_add_io(e, &p->listen_src[i], p->listen_fd[i], EPOLLIN, on_accept, p);
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
        sd_event_source_disable_unref(p->retry_src);
        for (int i = 0; i < 2; i++) {
                sd_event_source_disable_unref(p->listen_src[i]);
                safe_close(p->listen_fd[i]);
        }
        free(p);
        return NULL;
}
