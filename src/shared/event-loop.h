/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* berth's event loop: epoll, a signalfd, pidfds. What the monitor needed of sd-event and no more, so
 * that berth does not link libsystemd (issue #15: ~2 ms of every start and ~80 kB per monitor).
 *
 * The semantics are sd-event's where berth relied on them:
 *  - io and signal sources start ON; timers, defer and child sources ONESHOT. A ONESHOT source is
 *    turned OFF before its handler runs, so the handler may enable it again.
 *  - Timers are CLOCK_MONOTONIC, in µs, absolute (event_add_time) or from now (_relative); due at
 *    or after their time, never before.
 *  - A signal source needs its signal blocked by the caller (else -EBUSY), and one source per
 *    signal and loop (else -EBUSY).
 *  - A child source (WEXITED only) gets the child's siginfo; the child is reaped after the handler.
 *    Only that child: other children of the process stay to whoever waits for them.
 *  - A handler that returns < 0 gets its source turned OFF; the loop goes on.
 *  - event_exit() ends event_loop() after the running handler: nothing else is dispatched.
 * Order: the events of one wake-up are dispatched io and signals first, then timers, defer sources,
 * and child exits last. So what a child said (a notify message, the last output of its console)
 * before it exited is handled before its exit, whatever order the kernel reported them in.
 * A source turned off or unreferenced by a handler is never dispatched afterwards, not even for an
 * event already fetched in the same wake-up: sources are reference counted, and the batch holds
 * its own references.
 * Sources made with RET == NULL belong to the loop ("floating") and go with it. A source that
 * outlives its loop is detached: set_* calls return -ESTALE, unref frees it. */

#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/types.h>

typedef struct Event Event;
typedef struct EventSource EventSource;

enum {
        EVENT_OFF = 0,
        EVENT_ON = 1,
        EVENT_ONESHOT = -1,
};

typedef int (*event_io_handler_t)(EventSource *s, int fd, uint32_t revents, void *userdata);
typedef int (*event_time_handler_t)(EventSource *s, uint64_t usec, void *userdata);
typedef int (*event_signal_handler_t)(EventSource *s, const struct signalfd_siginfo *si, void *userdata);
typedef int (*event_child_handler_t)(EventSource *s, const siginfo_t *si, void *userdata);
typedef int (*event_handler_t)(EventSource *s, void *userdata);

int event_new(Event **ret);
Event *event_ref(Event *e);
Event *event_unref(Event *e);
static inline void event_unrefp(Event **e) {
        event_unref(*e);
}

/* The fd stays the caller's; EVENTS as epoll's (EPOLLET included). epoll's errors as they are
 * (-EPERM: a regular file or /dev/null, which never block). */
int event_add_io(Event *e, EventSource **ret, int fd, uint32_t events, event_io_handler_t cb, void *userdata);
int event_add_time(Event *e, EventSource **ret, uint64_t usec, event_time_handler_t cb, void *userdata);
int event_add_time_relative(Event *e, EventSource **ret, uint64_t usec, event_time_handler_t cb, void *userdata);
int event_add_signal(Event *e, EventSource **ret, int sig, event_signal_handler_t cb, void *userdata);
int event_add_child(Event *e, EventSource **ret, pid_t pid, int options, event_child_handler_t cb, void *userdata);
int event_add_defer(Event *e, EventSource **ret, event_handler_t cb, void *userdata);

/* Runs until event_exit() (at once if it was called before); returns its CODE, or a negative errno
 * if waiting failed. It can be run again afterwards. */
int event_loop(Event *e);
int event_exit(Event *e, int code);
/* CLOCK_MONOTONIC of the current wake-up (the clock itself before the first one). */
int event_now(Event *e, uint64_t *ret);

EventSource *event_source_ref(EventSource *s);
/* NULL is fine; return NULL, for "s = event_source_unref(s);" */
EventSource *event_source_unref(EventSource *s);
EventSource *event_source_disable_unref(EventSource *s);
static inline void event_source_unrefp(EventSource **s) {
        event_source_unref(*s);
}
int event_source_set_enabled(EventSource *s, int enabled);
/* > 0 if ON or ONESHOT, 0 if OFF; *RET (may be NULL) the state */
int event_source_get_enabled(EventSource *s, int *ret);
int event_source_set_io_events(EventSource *s, uint32_t events);
int event_source_set_time(EventSource *s, uint64_t usec);
int event_source_set_time_relative(EventSource *s, uint64_t usec);
