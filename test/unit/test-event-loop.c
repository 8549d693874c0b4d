/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "event-loop.h"
#include "tap.h"
#include "util.h"

/* What the handlers saw, in order: one letter each. */
static char trace[64];

static void trace_add(char c) {
        size_t n = strlen(trace);
        if (n + 1 < sizeof trace)
                trace[n] = c, trace[n + 1] = 0;
}

static int exit_after(EventSource *s, void *userdata) {
        return event_exit(userdata, 42);
}

/* ---- io ---- */

typedef struct IoCtx {
        Event *e;
        int calls;
        uint32_t revents;
        size_t read_bytes;
        bool read_one;     /* read a byte per call only */
        EventSource *victim;
        char letter;
} IoCtx;

static int on_io(EventSource *s, int fd, uint32_t revents, void *userdata) {
        IoCtx *c = userdata;
        char buf[16];
        ssize_t k;

        c->calls++;
        c->revents = revents;
        trace_add(c->letter ?: 'i');
        if (revents & EPOLLIN) {
                k = read(fd, buf, c->read_one ? 1 : sizeof buf);
                if (k > 0)
                        c->read_bytes += (size_t) k;
        }
        if (c->victim)
                c->victim = event_source_disable_unref(c->victim);
        return 0;
}

static void run_once(Event *e) {
        EventSource *d = NULL;
        /* a defer source is dispatched after io of the same wake-up: one round, then out */
        CHECK(event_add_defer(e, &d, exit_after, e) == 0);
        CHECK(event_loop(e) == 42);
        event_source_unref(d);
}

static void test_io(void) {
        _cleanup_close_pair_ int p[2] = { -EBADF, -EBADF };
        IoCtx c = {};
        EventSource *s = NULL;
        Event *e = NULL;
        int enabled;

        CHECK(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
        CHECK(event_new(&e) == 0);
        c.e = e;
        CHECK(event_add_io(e, &s, p[0], EPOLLIN, on_io, &c) == 0);
        CHECK(event_source_get_enabled(s, &enabled) > 0 && enabled == EVENT_ON);

        CHECK(write(p[1], "ab", 2) == 2);
        c.read_one = true;
        run_once(e);
        CHECK(c.calls == 1 && (c.revents & EPOLLIN) && c.read_bytes == 1);
        /* level-triggered: the byte left makes it ready again */
        /* a second loop needs a new loop object: an exit is for good */
        event_source_unref(s);
        event_unref(e);

        CHECK(event_new(&e) == 0);
        c = (IoCtx) { .read_one = true };
        CHECK(event_add_io(e, &s, p[0], EPOLLIN | EPOLLET, on_io, &c) == 0);
        run_once(e);
        /* edge-triggered: one byte read, one left, and no new edge */
        CHECK(c.calls == 1 && c.read_bytes == 1);
        event_source_unref(s);
        event_unref(e);

        /* ONESHOT: off before the handler, so called once; OFF: not at all; set_io_events */
        CHECK(event_new(&e) == 0);
        c = (IoCtx) { .read_one = true };
        CHECK(write(p[1], "cd", 2) == 2);
        CHECK(event_add_io(e, &s, p[0], EPOLLIN, on_io, &c) == 0);
        CHECK(event_source_set_enabled(s, EVENT_ONESHOT) == 0);
        run_once(e);
        CHECK(c.calls == 1);
        CHECK(event_source_get_enabled(s, &enabled) == 0 && enabled == EVENT_OFF);
        event_unref(e); /* S outlives its loop: detached */
        CHECK(event_source_set_enabled(s, EVENT_ON) == -ESTALE);
        event_source_unref(s);

        CHECK(event_new(&e) == 0);
        c = (IoCtx) {};
        CHECK(event_add_io(e, &s, p[1], 0, on_io, &c) == 0);
        run_once(e);
        CHECK(c.calls == 0); /* the write end is writable, but nobody asked */
        CHECK(event_source_set_io_events(s, EPOLLOUT) == 0);
        run_once(e);
        CHECK(c.calls == 1 && (c.revents & EPOLLOUT));
        event_source_unref(s);
        event_unref(e);

        /* what epoll refuses comes back as epoll's error (the console relies on -EPERM) */
        CHECK(event_new(&e) == 0);
        {
                _cleanup_close_ int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
                CHECK(event_add_io(e, &s, null, EPOLLIN, on_io, &c) == -EPERM);
        }
        event_unref(e);
}

/* ---- timers ---- */

typedef struct TimeCtx {
        Event *e;
        int calls;
        uint64_t at[4];   /* when the handler ran */
        uint64_t loop[4]; /* the loop's time then, which a relative re-arm counts from */
        int rearm;  /* re-arm this many times */
} TimeCtx;

static int on_time(EventSource *s, uint64_t usec, void *userdata) {
        TimeCtx *t = userdata;

        if (t->calls < 4) {
                t->at[t->calls] = now_usec(CLOCK_MONOTONIC);
                CHECK(event_now(t->e, &t->loop[t->calls]) == 0);
        }
        t->calls++;
        trace_add('t');
        if (t->rearm-- > 0) {
                CHECK(event_source_set_time_relative(s, 20 * USEC_PER_MSEC) == 0);
                CHECK(event_source_set_enabled(s, EVENT_ONESHOT) == 0);
                return 0;
        }
        return event_exit(t->e, 0);
}

static void test_timers(void) {
        TimeCtx t = {}, never = {};
        EventSource *s = NULL, *off = NULL, *gone = NULL;
        uint64_t start, now;
        Event *e = NULL;
        int enabled;

        CHECK(event_new(&e) == 0);
        t.e = e;
        t.rearm = 2;
        start = now_usec(CLOCK_MONOTONIC);
        CHECK(event_add_time_relative(e, &s, 30 * USEC_PER_MSEC, on_time, &t) == 0);
        CHECK(event_source_get_enabled(s, &enabled) > 0 && enabled == EVENT_ONESHOT);
        /* due at once, but off: never runs (the port proxy's idle timer starts so) */
        CHECK(event_add_time(e, &off, 0, on_time, &never) == 0);
        CHECK(event_source_set_enabled(off, EVENT_OFF) == 0);
        /* gone before it was due */
        CHECK(event_add_time_relative(e, &gone, 10 * USEC_PER_MSEC, on_time, &never) == 0);
        gone = event_source_unref(gone);

        CHECK(event_loop(e) == 0);
        CHECK(t.calls == 3);
        CHECK(never.calls == 0);
        /* never early: the first 30 ms after it was added, each re-arm 20 ms after the loop's
         * time when it was re-armed (as sd-event, from the wake-up, not from when the handler
         * got to run: a loaded machine may run it late) */
        CHECK(t.at[0] - start >= 30 * USEC_PER_MSEC);
        CHECK(t.at[1] - t.loop[0] >= 20 * USEC_PER_MSEC);
        CHECK(t.at[2] - t.loop[1] >= 20 * USEC_PER_MSEC);
        CHECK(event_now(e, &now) == 0 && now >= t.at[2] - 1000 && now <= now_usec(CLOCK_MONOTONIC));
        CHECK(event_source_get_enabled(s, NULL) == 0);
        event_source_unref(s);
        event_source_unref(off);
        event_unref(e);
}

/* ---- signals ---- */

static int on_signal(EventSource *s, const struct signalfd_siginfo *si, void *userdata) {
        int *got = userdata;
        *got = (int) si->ssi_signo;
        trace_add('s');
        return 0;
}

static void test_signals(void) {
        sigset_t ss, saved, pending;
        EventSource *s = NULL, *dup = NULL;
        Event *e = NULL;
        int got = 0;

        sigemptyset(&ss);
        sigaddset(&ss, SIGUSR1);
        CHECK(event_new(&e) == 0);
        /* not blocked: it would kill us rather than reach the loop */
        CHECK(event_add_signal(e, &s, SIGUSR2, on_signal, &got) == -EBUSY);
        CHECK(sigprocmask(SIG_BLOCK, &ss, &saved) == 0);
        CHECK(event_add_signal(e, &s, SIGUSR1, on_signal, &got) == 0);
        CHECK(event_add_signal(e, &dup, SIGUSR1, on_signal, &got) == -EBUSY);
        CHECK(kill(getpid(), SIGUSR1) == 0);
        run_once(e);
        CHECK(got == SIGUSR1);

        /* off: the signal stays pending in the process, for whoever comes next */
        got = 0;
        CHECK(event_source_set_enabled(s, EVENT_OFF) == 0);
        CHECK(kill(getpid(), SIGUSR1) == 0);
        run_once(e);
        CHECK(got == 0);
        CHECK(sigpending(&pending) == 0 && sigismember(&pending, SIGUSR1));
        s = event_source_unref(s);
        event_unref(e);

        CHECK(event_new(&e) == 0);
        CHECK(event_add_signal(e, NULL, SIGUSR1, on_signal, &got) == 0); /* floating */
        run_once(e);
        CHECK(got == SIGUSR1);
        event_unref(e);
        CHECK(sigprocmask(SIG_SETMASK, &saved, NULL) == 0);
}

/* ---- children ---- */

typedef struct ChildCtx {
        Event *e;
        siginfo_t si;
        bool unreaped_in_handler;
        int calls;
} ChildCtx;

static int on_child(EventSource *s, const siginfo_t *si, void *userdata) {
        ChildCtx *c = userdata;
        siginfo_t probe = {};

        c->calls++;
        c->si = *si;
        /* not reaped yet: still there to be waited for */
        c->unreaped_in_handler = waitid(P_PID, (id_t) si->si_pid, &probe, WEXITED | WNOHANG | WNOWAIT) == 0 &&
                                 probe.si_pid == si->si_pid;
        trace_add('c');
        return event_exit(c->e, 0);
}

static void test_child(void) {
        _cleanup_close_pair_ int p[2] = { -EBADF, -EBADF };
        ChildCtx c = {};
        IoCtx io = { .letter = 'i' };
        Event *e = NULL;
        pid_t pid, other;
        siginfo_t si = {};
        int status;

        /* another child, which the loop must leave alone */
        other = fork();
        if (other == 0)
                _exit(3);
        CHECK(other > 0);

        CHECK(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
        pid = fork();
        if (pid == 0) {
                /* its last words, then its exit: both are there when the loop wakes up */
                (void) write(p[1], "x", 1);
                _exit(7);
        }
        CHECK(pid > 0);
        CHECK(waitid(P_PID, (id_t) pid, &si, WEXITED | WNOWAIT) == 0);

        CHECK(event_new(&e) == 0);
        c.e = e;
        CHECK(event_add_child(e, NULL, pid, WEXITED, on_child, &c) == 0);
        CHECK(event_add_io(e, NULL, p[0], EPOLLIN, on_io, &io) == 0);
        trace[0] = 0;
        CHECK(event_loop(e) == 0);
        CHECK(c.calls == 1);
        CHECK(c.si.si_code == CLD_EXITED && c.si.si_status == 7 && c.si.si_pid == pid);
        CHECK(c.unreaped_in_handler);
        /* what the child said before it ended, before its end */
        CHECK(streq(trace, "ic"));
        /* reaped after the handler */
        CHECK(waitpid(pid, NULL, WNOHANG) < 0 && errno == ECHILD);
        event_unref(e);

        CHECK(waitpid(other, &status, 0) == other && WIFEXITED(status) && WEXITSTATUS(status) == 3);
        CHECK(event_new(&e) == 0);
        CHECK(event_add_child(e, NULL, getpid(), WEXITED | WSTOPPED, on_child, &c) == -EOPNOTSUPP);
        event_unref(e);
}

/* ---- defer, exit, errors ---- */

static int on_defer_count(EventSource *s, void *userdata) {
        int *n = userdata;
        (*n)++;
        trace_add('d');
        return 0;
}

static int on_defer_fail(EventSource *s, void *userdata) {
        int *n = userdata;
        (*n)++;
        return -EIO;
}

typedef struct CountdownCtx {
        Event *e;
        int left;
} CountdownCtx;

static int on_countdown(EventSource *s, void *userdata) {
        CountdownCtx *c = userdata;
        if (--c->left == 0)
                return event_exit(c->e, 5);
        return 0;
}

static void test_defer(void) {
        EventSource *once = NULL, *on = NULL, *fail = NULL, *cd = NULL;
        CountdownCtx c = { .left = 3 };
        int n_once = 0, n_on = 0, n_fail = 0;
        Event *e = NULL;

        CHECK(event_new(&e) == 0);
        c.e = e;
        CHECK(event_add_defer(e, &once, on_defer_count, &n_once) == 0);
        CHECK(event_add_defer(e, &on, on_defer_count, &n_on) == 0);
        CHECK(event_source_set_enabled(on, EVENT_ON) == 0);
        CHECK(event_add_defer(e, &fail, on_defer_fail, &n_fail) == 0);
        CHECK(event_source_set_enabled(fail, EVENT_ON) == 0);
        CHECK(event_add_defer(e, &cd, on_countdown, &c) == 0);
        CHECK(event_source_set_enabled(cd, EVENT_ON) == 0);
        CHECK(event_loop(e) == 5);
        CHECK(n_once == 1);   /* ONESHOT */
        CHECK(n_on >= 2);     /* ON: every round until the exit */
        CHECK(n_fail == 1);   /* a handler's error turns its source off */
        CHECK(event_source_get_enabled(fail, NULL) == 0);
        /* a loop runs again after an exit */
        c.left = 1;
        CHECK(event_loop(e) == 5);
        CHECK(n_fail == 1);
        event_source_unref(once);
        event_source_unref(on);
        event_source_unref(fail);
        event_source_unref(cd);
        event_unref(e);
}

/* ---- removal inside a handler ---- */

static int on_io_exit(EventSource *s, int fd, uint32_t revents, void *userdata) {
        IoCtx *c = userdata;
        c->calls++;
        return event_exit(c->e, 1);
}

static int on_io_free_self(EventSource *s, int fd, uint32_t revents, void *userdata) {
        IoCtx *c = userdata;
        c->calls++;
        event_source_disable_unref(s);
        c->victim = NULL;
        return 0;
}

static void test_removal_in_handler(void) {
        _cleanup_close_pair_ int a[2] = { -EBADF, -EBADF }, b[2] = { -EBADF, -EBADF };
        IoCtx ca = { .letter = 'a' }, *cb;
        EventSource *sa = NULL, *sb = NULL, *d = NULL;
        Event *e = NULL;

        CHECK(pipe2(a, O_CLOEXEC | O_NONBLOCK) == 0);
        CHECK(pipe2(b, O_CLOEXEC | O_NONBLOCK) == 0);
        CHECK(write(a[1], "x", 1) == 1 && write(b[1], "y", 1) == 1);

        /* both ready in one wake-up: whichever runs first frees the other and its context (the
         * proxy frees a connection's both sources so); the other is never called */
        CHECK(event_new(&e) == 0);
        cb = calloc(1, sizeof *cb);
        CHECK(cb);
        cb->letter = 'b';
        CHECK(event_add_io(e, &sa, a[0], EPOLLIN, on_io, &ca) == 0);
        CHECK(event_add_io(e, &sb, b[0], EPOLLIN, on_io, cb) == 0);
        ca.victim = sb;
        cb->victim = sa;
        trace[0] = 0;
        run_once(e);
        CHECK(strlen(trace) == 1);
        CHECK(ca.calls + cb->calls == 1);
        event_source_unref(ca.calls ? sa : sb); /* the survivor */
        free(cb);
        event_unref(e);

        /* a source that frees itself; an exit stops the rest of the wake-up */
        CHECK(write(a[1], "x", 1) == 1);
        CHECK(event_new(&e) == 0);
        ca = (IoCtx) { .e = e };
        IoCtx cself = { .e = e };
        CHECK(event_add_io(e, &sb, b[0], EPOLLIN, on_io_free_self, &cself) == 0);
        CHECK(event_add_io(e, &sa, a[0], EPOLLIN, on_io_exit, &ca) == 0);
        CHECK(event_add_defer(e, &d, exit_after, e) == 0);
        /* the defer source comes after the exit: not run, or the code would be 42 */
        CHECK(event_loop(e) == 1);
        CHECK(ca.calls == 1);
        if (cself.calls == 0)
                event_source_unref(sb); /* epoll reported it second: never ran */
        event_source_unref(d);
        event_source_unref(sa);
        event_unref(e);
}

int main(void) {
        static const TapCase cases[] = {
                { "io", test_io },
                { "timers", test_timers },
                { "signals", test_signals },
                { "child", test_child },
                { "defer", test_defer },
                { "removal_in_handler", test_removal_in_handler },
        };

        return tap_run(cases, ELEMENTSOF(cases));
}
