/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "event-loop.h"
#include "util.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* The dispatch order within one wake-up (see event-loop.h); signals have no list of their own here:
 * they are read from the signalfd one at a time, between io and timers. */
typedef enum SourceType {
        SOURCE_IO,
        SOURCE_SIGNAL,
        SOURCE_TIME,
        SOURCE_DEFER,
        SOURCE_CHILD,
        _SOURCE_TYPE_MAX,
} SourceType;

struct EventSource {
        unsigned n_ref;  /* the owner's references: at 0 the source is gone for good */
        unsigned n_pin;  /* a dispatch batch's: keeps the memory, not the source, alive */
        Event *event;    /* NULL: the loop is gone, or the source is */
        SourceType type;
        int enabled;
        bool floating;
        bool pending;
        bool in_epoll;
        void *userdata;
        EventSource *prev, *next;  /* the loop's sources of this type */
        EventSource *batch_next;
        union {
                struct {
                        event_io_handler_t cb;
                        int fd;
                        uint32_t events, revents;
                } io;
                struct {
                        event_time_handler_t cb;
                        uint64_t usec;
                } time;
                struct {
                        event_signal_handler_t cb;
                        int sig;
                } signal;
                struct {
                        event_child_handler_t cb;
                        pid_t pid;
                        int pidfd;
                        bool reaped;
                } child;
                struct {
                        event_handler_t cb;
                } defer;
        };
};

struct Event {
        unsigned n_ref;
        int epoll_fd;
        int signal_fd;      /* -EBADF until the first signal source */
        bool signal_pending;
        EventSource *signal_sources[_NSIG];
        EventSource *sources[_SOURCE_TYPE_MAX];
        uint64_t now;       /* CLOCK_MONOTONIC of the last wake-up; 0: none yet */
        bool exit_requested;
        int exit_code;
};

static uint64_t usec_add(uint64_t a, uint64_t b) {
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

int event_new(Event **ret) {
        Event *e;

        if (!ret)
                return -EINVAL;
        e = calloc(1, sizeof *e);
        if (!e)
                return -ENOMEM;
        e->n_ref = 1;
        e->signal_fd = -EBADF;
        e->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (e->epoll_fd < 0) {
                int r = -errno;
                free(e);
                return r;
        }
        *ret = e;
        return 0;
}

Event *event_ref(Event *e) {
        if (e)
                e->n_ref++;
        return e;
}

static int signal_mask_update(Event *e) {
        sigset_t mask;
        int fd;

        sigemptyset(&mask);
        for (EventSource *s = e->sources[SOURCE_SIGNAL]; s; s = s->next)
                if (s->enabled != EVENT_OFF)
                        sigaddset(&mask, s->signal.sig);
        if (e->signal_fd < 0 && sigisemptyset(&mask))
                return 0;
        fd = signalfd(e->signal_fd >= 0 ? e->signal_fd : -1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (e->signal_fd < 0) {
                struct epoll_event ev = { .events = EPOLLIN, .data.ptr = e };
                if (epoll_ctl(e->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                        int r = -errno;
                        (void) close(fd);
                        return r;
                }
                e->signal_fd = fd;
        }
        return 0;
}

/* The fd an io or child source has in epoll, else -EBADF. */
static int source_fd(const EventSource *s) {
        if (s->type == SOURCE_IO)
                return s->io.fd;
        if (s->type == SOURCE_CHILD && !s->child.reaped)
                return s->child.pidfd;
        return -EBADF;
}

static int source_watch(EventSource *s, bool on) {
        Event *e = s->event;
        int fd = source_fd(s);

        if (s->type == SOURCE_SIGNAL)
                return signal_mask_update(e);
        if (fd < 0 || on == s->in_epoll)
                return 0;
        if (on) {
                struct epoll_event ev = {
                        .events = s->type == SOURCE_IO ? s->io.events : EPOLLIN,
                        .data.ptr = s,
                };
                if (epoll_ctl(e->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
                        return -errno;
        } else
                (void) epoll_ctl(e->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
        s->in_epoll = on;
        return 0;
}

int event_source_set_enabled(EventSource *s, int enabled) {
        int old, r;

        if (!s)
                return -EINVAL;
        if (!s->event)
                return -ESTALE;
        if (enabled != EVENT_OFF && enabled != EVENT_ON && enabled != EVENT_ONESHOT)
                return -EINVAL;
        if (s->type == SOURCE_CHILD && s->child.reaped && enabled != EVENT_OFF)
                return -ESRCH;
        old = s->enabled;
        s->enabled = enabled;
        if ((old == EVENT_OFF) == (enabled == EVENT_OFF))
                return 0;
        if (enabled == EVENT_OFF)
                s->pending = false;
        r = source_watch(s, enabled != EVENT_OFF);
        if (r < 0) {
                s->enabled = old;
                (void) source_watch(s, old != EVENT_OFF);
        }
        return r;
}

int event_source_get_enabled(EventSource *s, int *ret) {
        if (!s)
                return -EINVAL;
        if (ret)
                *ret = s->enabled;
        return s->enabled != EVENT_OFF;
}

static void source_free_memory(EventSource *s) {
        if (s->type == SOURCE_CHILD)
                (void) safe_close(s->child.pidfd);
        free(s);
}

/* Off and out of the loop; the memory stays while a batch holds it. */
static void source_disconnect(EventSource *s) {
        Event *e = s->event;

        if (!e)
                return;
        if (s->enabled != EVENT_OFF)
                (void) event_source_set_enabled(s, EVENT_OFF);
        s->enabled = EVENT_OFF;
        s->pending = false;
        if (s->type == SOURCE_SIGNAL && e->signal_sources[s->signal.sig] == s)
                e->signal_sources[s->signal.sig] = NULL;
        if (s->prev)
                s->prev->next = s->next;
        else
                e->sources[s->type] = s->next;
        if (s->next)
                s->next->prev = s->prev;
        s->prev = s->next = NULL;
        s->event = NULL;
}

EventSource *event_source_ref(EventSource *s) {
        if (s)
                s->n_ref++;
        return s;
}

EventSource *event_source_unref(EventSource *s) {
        if (!s || --s->n_ref > 0)
                return NULL;
        source_disconnect(s);
        if (s->n_pin == 0)
                source_free_memory(s);
        return NULL;
}

EventSource *event_source_disable_unref(EventSource *s) {
        if (s && s->event)
                (void) event_source_set_enabled(s, EVENT_OFF);
        return event_source_unref(s);
}

Event *event_unref(Event *e) {
        if (!e || --e->n_ref > 0)
                return NULL;
        for (SourceType t = 0; t < _SOURCE_TYPE_MAX; t++)
                while (e->sources[t]) {
                        EventSource *s = e->sources[t];
                        bool floating = s->floating;

                        source_disconnect(s);
                        if (floating)
                                event_source_unref(s);
                }
        (void) safe_close(e->signal_fd);
        (void) safe_close(e->epoll_fd);
        free(e);
        return NULL;
}

static int source_new(Event *e, EventSource **ret, SourceType type, void *userdata, EventSource **ret_s) {
        EventSource *s;

        if (!e)
                return -EINVAL;
        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->n_ref = 1;
        s->event = e;
        s->type = type;
        s->enabled = EVENT_OFF;
        s->floating = !ret;
        s->userdata = userdata;
        s->next = e->sources[type];
        if (s->next)
                s->next->prev = s;
        e->sources[type] = s;
        *ret_s = s;
        return 0;
}

/* Turns the new source on, or frees it; on success hands it out (or leaves it floating). */
static int source_start(EventSource *s, EventSource **ret, int enabled) {
        int r;

        r = event_source_set_enabled(s, enabled);
        if (r < 0) {
                event_source_unref(s);
                return r;
        }
        if (ret)
                *ret = s;
        return 0;
}

int event_add_io(Event *e, EventSource **ret, int fd, uint32_t events, event_io_handler_t cb, void *userdata) {
        EventSource *s;
        int r;

        if (fd < 0 || !cb)
                return -EINVAL;
        r = source_new(e, ret, SOURCE_IO, userdata, &s);
        if (r < 0)
                return r;
        s->io.cb = cb;
        s->io.fd = fd;
        s->io.events = events;
        return source_start(s, ret, EVENT_ON);
}

int event_add_time(Event *e, EventSource **ret, uint64_t usec, event_time_handler_t cb, void *userdata) {
        EventSource *s;
        int r;

        if (!cb)
                return -EINVAL;
        r = source_new(e, ret, SOURCE_TIME, userdata, &s);
        if (r < 0)
                return r;
        s->time.cb = cb;
        s->time.usec = usec;
        return source_start(s, ret, EVENT_ONESHOT);
}

int event_now(Event *e, uint64_t *ret) {
        if (!e || !ret)
                return -EINVAL;
        *ret = e->now > 0 ? e->now : now_usec(CLOCK_MONOTONIC);
        return 0;
}

int event_add_time_relative(Event *e, EventSource **ret, uint64_t usec, event_time_handler_t cb, void *userdata) {
        uint64_t now;
        int r;

        r = event_now(e, &now);
        if (r < 0)
                return r;
        return event_add_time(e, ret, usec_add(now, usec), cb, userdata);
}

int event_add_signal(Event *e, EventSource **ret, int sig, event_signal_handler_t cb, void *userdata) {
        EventSource *s;
        sigset_t blocked;
        int r;

        if (!e || !cb || sig <= 0 || sig >= _NSIG)
                return -EINVAL;
        /* not blocked, the signal would kill us or run its handler rather than reach the signalfd */
        if (sigprocmask(SIG_SETMASK, NULL, &blocked) < 0)
                return -errno;
        if (!sigismember(&blocked, sig) || e->signal_sources[sig])
                return -EBUSY;
        r = source_new(e, ret, SOURCE_SIGNAL, userdata, &s);
        if (r < 0)
                return r;
        s->signal.cb = cb;
        s->signal.sig = sig;
        e->signal_sources[sig] = s;
        return source_start(s, ret, EVENT_ON);
}

int event_add_child(Event *e, EventSource **ret, pid_t pid, int options, event_child_handler_t cb, void *userdata) {
        EventSource *s;
        int fd, r;

        if (!cb || pid <= 0)
                return -EINVAL;
        if (options != WEXITED)
                return -EOPNOTSUPP;
        fd = (int) syscall(SYS_pidfd_open, pid, 0);
        if (fd < 0)
                return -errno;
        r = source_new(e, ret, SOURCE_CHILD, userdata, &s);
        if (r < 0) {
                (void) close(fd);
                return r;
        }
        s->child.cb = cb;
        s->child.pid = pid;
        s->child.pidfd = fd;
        return source_start(s, ret, EVENT_ONESHOT);
}

int event_add_defer(Event *e, EventSource **ret, event_handler_t cb, void *userdata) {
        EventSource *s;
        int r;

        if (!cb)
                return -EINVAL;
        r = source_new(e, ret, SOURCE_DEFER, userdata, &s);
        if (r < 0)
                return r;
        s->defer.cb = cb;
        return source_start(s, ret, EVENT_ONESHOT);
}

int event_source_set_io_events(EventSource *s, uint32_t events) {
        struct epoll_event ev = { .events = events, .data.ptr = s };

        if (!s || s->type != SOURCE_IO)
                return -EINVAL;
        if (!s->event)
                return -ESTALE;
        if (s->io.events == events)
                return 0;
        if (s->in_epoll && epoll_ctl(s->event->epoll_fd, EPOLL_CTL_MOD, s->io.fd, &ev) < 0)
                return -errno;
        s->io.events = events;
        return 0;
}

int event_source_set_time(EventSource *s, uint64_t usec) {
        if (!s || s->type != SOURCE_TIME)
                return -EINVAL;
        if (!s->event)
                return -ESTALE;
        s->time.usec = usec;
        return 0;
}

int event_source_set_time_relative(EventSource *s, uint64_t usec) {
        uint64_t now;

        if (!s || s->type != SOURCE_TIME)
                return -EINVAL;
        if (!s->event)
                return -ESTALE;
        (void) event_now(s->event, &now);
        return event_source_set_time(s, usec_add(now, usec));
}

int event_exit(Event *e, int code) {
        if (!e)
                return -EINVAL;
        e->exit_requested = true;
        e->exit_code = code;
        return 0;
}

/* ---- the loop ---- */

typedef struct Batch {
        EventSource *first, *last;
} Batch;

static void batch_push(Batch *b, EventSource *s) {
        s->n_pin++;
        s->pending = true;
        s->batch_next = NULL;
        if (b->last)
                b->last->batch_next = s;
        else
                b->first = s;
        b->last = s;
}

static void source_unpin(EventSource *s) {
        if (--s->n_pin == 0 && s->n_ref == 0)
                source_free_memory(s);
}

static int source_call(EventSource *s) {
        siginfo_t si = {};

        switch (s->type) {
        case SOURCE_IO:
                return s->io.cb(s, s->io.fd, s->io.revents, s->userdata);
        case SOURCE_TIME:
                return s->time.cb(s, s->time.usec, s->userdata);
        case SOURCE_DEFER:
                return s->defer.cb(s, s->userdata);
        case SOURCE_CHILD: {
                int r;

                /* WNOWAIT: the handler sees the child ended but not reaped yet (its PID is not
                 * reused under it); it is reaped right after */
                if (waitid((idtype_t) P_PIDFD, (id_t) s->child.pidfd, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
                        if (errno != ECHILD)
                                return -errno;
                        /* someone else reaped it: it ended, how is unknown (si_code 0) */
                        si = (siginfo_t) { .si_signo = SIGCHLD };
                        si.si_pid = s->child.pid;
                } else if (si.si_pid == 0)
                        return 0; /* not ended yet: watched on */
                if (s->enabled == EVENT_ONESHOT)
                        s->enabled = EVENT_ON; /* off below, once reaped */
                r = s->child.cb(s, &si, s->userdata);
                (void) waitid((idtype_t) P_PIDFD, (id_t) s->child.pidfd, &si, WEXITED | WNOHANG);
                /* the pidfd stays readable: out of epoll for good, handler or not */
                if (s->event)
                        (void) source_watch(s, false);
                s->child.reaped = true;
                s->enabled = EVENT_OFF;
                return r;
        }
        default:
                return -EINVAL;
        }
}

/* Dispatches the sources of B in order until the loop is asked to exit; unpins them all. */
static void batch_dispatch(Event *e, Batch *b) {
        EventSource *next;

        for (EventSource *s = b->first; s; s = next) {
                next = s->batch_next;
                s->batch_next = NULL;
                if (!e->exit_requested && s->event && s->pending && s->enabled != EVENT_OFF &&
                    (s->type != SOURCE_TIME || s->time.usec <= e->now)) {
                        int r;

                        s->pending = false;
                        /* a child source stays watched until its child has ended (source_call()) */
                        if (s->enabled == EVENT_ONESHOT && s->type != SOURCE_CHILD)
                                (void) event_source_set_enabled(s, EVENT_OFF);
                        r = source_call(s);
                        if (r < 0 && s->event)
                                (void) event_source_set_enabled(s, EVENT_OFF);
                } else
                        s->pending = false;
                source_unpin(s);
        }
        *b = (Batch) {};
}

static void batch_drop(Batch *b) {
        EventSource *next;

        for (EventSource *s = b->first; s; s = next) {
                next = s->batch_next;
                s->batch_next = NULL;
                s->pending = false;
                source_unpin(s);
        }
        *b = (Batch) {};
}

/* One signal at a time, as sd-event: a handler that ends the loop leaves the rest queued. */
static int dispatch_signals(Event *e) {
        while (e->signal_pending && !e->exit_requested) {
                struct signalfd_siginfo si;
                EventSource *s;
                ssize_t n;
                int r;

                n = read(e->signal_fd, &si, sizeof si);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n != (ssize_t) sizeof si) {
                        e->signal_pending = false;
                        if (n < 0 && errno != EAGAIN)
                                return -errno;
                        break;
                }
                if (si.ssi_signo >= _NSIG)
                        continue;
                s = e->signal_sources[si.ssi_signo];
                if (!s || s->enabled == EVENT_OFF)
                        continue;
                s->n_pin++;
                if (s->enabled == EVENT_ONESHOT)
                        (void) event_source_set_enabled(s, EVENT_OFF);
                r = s->signal.cb(s, &si, s->userdata);
                if (r < 0 && s->event)
                        (void) event_source_set_enabled(s, EVENT_OFF);
                source_unpin(s);
        }
        return 0;
}

/* How long epoll may sleep: 0 with a defer source on, until the next timer (rounded up to a
 * millisecond: never early), else for ever. */
static int next_timeout(Event *e) {
        uint64_t next = UINT64_MAX, now;

        for (EventSource *s = e->sources[SOURCE_DEFER]; s; s = s->next)
                if (s->enabled != EVENT_OFF)
                        return 0;
        for (EventSource *s = e->sources[SOURCE_TIME]; s; s = s->next)
                if (s->enabled != EVENT_OFF && s->time.usec < next)
                        next = s->time.usec;
        if (next == UINT64_MAX)
                return -1;
        now = now_usec(CLOCK_MONOTONIC);
        if (next <= now)
                return 0;
        next = (next - now + 999) / 1000;
        return next > INT_MAX ? INT_MAX : (int) next;
}

static int event_run(Event *e) {
        struct epoll_event events[64];
        Batch io = {}, child = {}, timers = {}, defers = {};
        int n, r;

        n = epoll_wait(e->epoll_fd, events, (int) ELEMENTSOF(events), next_timeout(e));
        if (n < 0)
                return errno == EINTR ? 0 : -errno;
        e->now = now_usec(CLOCK_MONOTONIC);

        /* every source of this wake-up pinned before any handler runs: a handler may free the
         * source of an event further down the list */
        for (int i = 0; i < n; i++) {
                EventSource *s = events[i].data.ptr;

                if (events[i].data.ptr == e) {
                        e->signal_pending = true;
                        continue;
                }
                if (s->type == SOURCE_IO) {
                        s->io.revents = events[i].events;
                        batch_push(&io, s);
                } else
                        batch_push(&child, s);
        }
        batch_dispatch(e, &io);
        r = dispatch_signals(e);
        if (r < 0) {
                batch_drop(&child);
                return r;
        }
        if (!e->exit_requested) {
                for (EventSource *s = e->sources[SOURCE_TIME]; s; s = s->next)
                        if (s->enabled != EVENT_OFF && s->time.usec <= e->now)
                                batch_push(&timers, s);
                batch_dispatch(e, &timers);
        }
        if (!e->exit_requested) {
                for (EventSource *s = e->sources[SOURCE_DEFER]; s; s = s->next)
                        if (s->enabled != EVENT_OFF)
                                batch_push(&defers, s);
                batch_dispatch(e, &defers);
        }
        batch_dispatch(e, &child);
        return 0;
}

int event_loop(Event *e) {
        int r = 0;

        if (!e)
                return -EINVAL;
        event_ref(e);
        while (!e->exit_requested) {
                r = event_run(e);
                if (r < 0)
                        break;
        }
        if (r >= 0)
                r = e->exit_code;
        /* a loop can run again (the tests do) */
        e->exit_requested = false;
        event_unref(e);
        return r;
}
