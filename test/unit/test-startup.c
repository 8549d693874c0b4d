/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The start-up protocol (berth-startup.c): its table, the order both sides
 * keep, the error that names both steps when a message comes out of order,
 * and the child's error relayed to the monitor. Over a real socketpair, no
 * root needed. TAP. */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "berth-startup.h"
#include "log.h"
#include "tap.h"
#include "util.h"

/* what the code under test logged at error level */
static char logged[1024];
static int logged_error;

static void capture(int level, int error, const char *message, void *userdata) {
        logged_error = error;
        (void) snprintf(logged, sizeof logged, "%s", message);
}

static void logged_reset(void) {
        logged[0] = 0;
        logged_error = 0;
}

typedef struct Pair {
        int fd[2];
        Startup monitor, child;
} Pair;

static void pair_open(Pair *p, const Settings *s) {
        CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p->fd) == 0);
        startup_init(&p->monitor, p->fd[0], STARTUP_MONITOR, s);
        startup_init(&p->child, p->fd[1], STARTUP_CHILD, s);
}

static void pair_close(Pair *p) {
        safe_close(p->fd[0]);
        safe_close(p->fd[1]);
}

static void raw_send(int fd, int type) {
        SyncMessage m = { .type = type };
        CHECK(send_message_fd(fd, &m, sizeof m, -EBADF) == 0);
}

static void test_enums(void) {
        for (int i = 0; i < _STARTUP_STEP_MAX; i++) {
                CHECK(startup_step_to_string(i) != NULL);
                CHECK(startup_step_from_string(startup_step_to_string(i)) == (StartupStep) i);
                CHECK(startup_step_sender(i) == STARTUP_MONITOR || startup_step_sender(i) == STARTUP_CHILD);
        }
        for (int i = 0; i < _STARTUP_SIDE_MAX; i++)
                CHECK(startup_side_from_string(startup_side_to_string(i)) == (StartupSide) i);
        CHECK(startup_step_to_string(_STARTUP_STEP_MAX) == NULL);
        CHECK(startup_step_from_string("nope") < 0);
        CHECK(startup_step_from_string(NULL) < 0);
        /* the barriers the runtime relies on */
        CHECK(startup_step_sender(STARTUP_CGROUP_READY) == STARTUP_MONITOR);
        CHECK(startup_step_sender(STARTUP_LOCKED_MOUNTS) == STARTUP_MONITOR);
        CHECK(startup_step_sender(STARTUP_PIVOTED) == STARTUP_CHILD);
        CHECK(STARTUP_CGROUP_READY < STARTUP_CONSOLE && STARTUP_PIVOTED < STARTUP_LOCKED_MOUNTS &&
              STARTUP_LOCKED_MOUNTS < STARTUP_EXEC);
}

/* Both sides walk the whole sequence; the console is skipped by both with --console=pipe. */
static void walk(ConsoleMode mode, bool network) {
        Settings s = { .console_mode = mode, .private_network = network };
        SyncMessage m;
        Pair p;
        int fd;

        pair_open(&p, &s);
        CHECK(startup_send(&p.monitor, STARTUP_CGROUP_READY, 0, 0, -EBADF) == 0);
        CHECK(startup_recv(&p.child, STARTUP_CGROUP_READY, &m, NULL) == 1);
        if (network) {
                CHECK(startup_send(&p.monitor, STARTUP_LINKS_MOVED, 0, 0, -EBADF) == 0);
                CHECK(startup_recv(&p.child, STARTUP_LINKS_MOVED, &m, NULL) == 1);
        } else
                CHECK(!startup_step_applies(STARTUP_LINKS_MOVED, &s));
        CHECK(startup_send(&p.monitor, STARTUP_REGISTERED, 0, 0, -EBADF) == 0);
        CHECK(startup_recv(&p.child, STARTUP_REGISTERED, &m, NULL) == 1);
        if (mode != CONSOLE_PIPE) {
                CHECK(startup_send(&p.child, STARTUP_CONSOLE, 0, 0, p.fd[1]) == 0);
                fd = -EBADF;
                CHECK(startup_recv(&p.monitor, STARTUP_CONSOLE, &m, &fd) == 1);
                CHECK(fd >= 0); /* the fd came along */
                safe_close(fd);
        } else
                CHECK(!startup_step_applies(STARTUP_CONSOLE, &s));
        CHECK(startup_send(&p.child, STARTUP_NOTIFY, 0, 0, -EBADF) == 0);
        CHECK(startup_recv(&p.monitor, STARTUP_NOTIFY, &m, NULL) == 1);
        CHECK(startup_send(&p.child, STARTUP_PIVOTED, 0, 0, -EBADF) == 0);
        CHECK(startup_recv(&p.monitor, STARTUP_PIVOTED, &m, NULL) == 1);
        CHECK(startup_send(&p.monitor, STARTUP_LOCKED_MOUNTS, 0, 0, -EBADF) == 0);
        CHECK(startup_recv(&p.child, STARTUP_LOCKED_MOUNTS, &m, NULL) == 1);
        CHECK(startup_send(&p.child, STARTUP_EXEC, 15, 2, -EBADF) == 0);
        CHECK(startup_recv(&p.monitor, STARTUP_EXEC, &m, NULL) == 1);
        CHECK(m.value == 15 && m.value2 == 2);
        CHECK(p.monitor.next == _STARTUP_STEP_MAX && p.child.next == _STARTUP_STEP_MAX);
        /* the payload's exec closes the child's end */
        p.fd[1] = safe_close(p.fd[1]);
        CHECK(startup_finish(&p.monitor) == 0);
        pair_close(&p);
}

static void test_in_order(void) {
        walk(CONSOLE_PASSIVE, false);
        walk(CONSOLE_PIPE, false);
        walk(CONSOLE_PASSIVE, true);
}

/* A message that is not the one due is an error naming both steps. */
static void test_out_of_order(void) {
        Settings s = { .console_mode = CONSOLE_PASSIVE };
        SyncMessage m;
        Pair p;

        /* the child skips the console: the monitor waits for it and gets the notify socket */
        pair_open(&p, &s);
        CHECK(startup_send(&p.monitor, STARTUP_CGROUP_READY, 0, 0, -EBADF) == 0);
        CHECK(startup_send(&p.monitor, STARTUP_REGISTERED, 0, 0, -EBADF) == 0);
        raw_send(p.fd[1], STARTUP_NOTIFY);
        logged_reset();
        CHECK(startup_recv(&p.monitor, STARTUP_CONSOLE, &m, NULL) == -EPROTO);
        printf("# %s\n", logged);
        CHECK(strstr(logged, "'notify-socket'") && strstr(logged, "'console'"));
        pair_close(&p);

        /* a step of the monitor's own, coming from the child */
        pair_open(&p, &s);
        raw_send(p.fd[0], STARTUP_LOCKED_MOUNTS);
        logged_reset();
        CHECK(startup_recv(&p.child, STARTUP_CGROUP_READY, &m, NULL) == -EPROTO);
        CHECK(strstr(logged, "'locked-mounts'") && strstr(logged, "'cgroup-ready'"));
        pair_close(&p);

        /* garbage */
        pair_open(&p, &s);
        CHECK(startup_send(&p.monitor, STARTUP_CGROUP_READY, 0, 0, -EBADF) == 0);
        CHECK(startup_send(&p.monitor, STARTUP_REGISTERED, 0, 0, -EBADF) == 0);
        raw_send(p.fd[1], 4242);
        logged_reset();
        CHECK(startup_recv(&p.monitor, STARTUP_CONSOLE, &m, NULL) == -EPROTO);
        CHECK(strstr(logged, "'unknown' (4242)") && strstr(logged, "'console'"));
        pair_close(&p);

        /* a side may not send out of turn either: the child before the cgroup barrier */
        pair_open(&p, &s);
        logged_reset();
        CHECK(startup_send(&p.child, STARTUP_NOTIFY, 0, 0, -EBADF) == -EPROTO);
        CHECK(strstr(logged, "'notify-socket'") && strstr(logged, "'cgroup-ready'"));
        /* nor send the other side's step, nor wait for its own */
        CHECK(startup_send(&p.child, STARTUP_CGROUP_READY, 0, 0, -EBADF) == -EPROTO);
        CHECK(startup_recv(&p.monitor, STARTUP_CGROUP_READY, &m, NULL) == -EPROTO);
        pair_close(&p);

        /* with --console=pipe the console step does not exist: sending it is out of order */
        s.console_mode = CONSOLE_PIPE;
        pair_open(&p, &s);
        CHECK(startup_send(&p.monitor, STARTUP_CGROUP_READY, 0, 0, -EBADF) == 0);
        CHECK(startup_send(&p.monitor, STARTUP_REGISTERED, 0, 0, -EBADF) == 0);
        raw_send(p.fd[1], STARTUP_CONSOLE);
        logged_reset();
        CHECK(startup_recv(&p.monitor, STARTUP_NOTIFY, &m, NULL) == -EPROTO);
        CHECK(strstr(logged, "'console'") && strstr(logged, "'notify-socket'"));
        pair_close(&p);
}

/* With --private-network the child waits for the links before registration: a monitor that skipped
 * them is out of order too. */
static void test_links_barrier(void) {
        Settings s = { .console_mode = CONSOLE_PIPE, .private_network = true };
        SyncMessage m;
        Pair p;

        pair_open(&p, &s);
        CHECK(startup_send(&p.monitor, STARTUP_CGROUP_READY, 0, 0, -EBADF) == 0);
        CHECK(startup_recv(&p.child, STARTUP_CGROUP_READY, &m, NULL) == 1);
        raw_send(p.fd[0], STARTUP_REGISTERED);
        logged_reset();
        CHECK(startup_recv(&p.child, STARTUP_LINKS_MOVED, &m, NULL) == -EPROTO);
        CHECK(strstr(logged, "'registered'") && strstr(logged, "'links-moved'"));
        pair_close(&p);
}

/* Anything after the last step but EOF or the child's error is out of order too. */
static void test_after_the_end(void) {
        Settings s = { .console_mode = CONSOLE_PIPE };
        Pair p;

        pair_open(&p, &s);
        p.monitor.next = _STARTUP_STEP_MAX;
        raw_send(p.fd[1], STARTUP_EXEC);
        logged_reset();
        CHECK(startup_finish(&p.monitor) == -EPROTO);
        CHECK(strstr(logged, "'exec'") && strstr(logged, "end of the start-up"));
        pair_close(&p);

        /* finishing early is an error */
        pair_open(&p, &s);
        logged_reset();
        CHECK(startup_finish(&p.monitor) == -EPROTO);
        CHECK(strstr(logged, "'cgroup-ready'"));
        pair_close(&p);
}

/* The child's error reaches the monitor at any step, with its errno and its words, printable only. */
static void test_child_error(void) {
        Settings s = { .console_mode = CONSOLE_PASSIVE };
        SyncMessage m;
        Pair p;

        pair_open(&p, &s);
        CHECK(startup_send(&p.monitor, STARTUP_CGROUP_READY, 0, 0, -EBADF) == 0);
        CHECK(startup_send(&p.monitor, STARTUP_REGISTERED, 0, 0, -EBADF) == 0);
        CHECK(startup_send_error(&p.child, -ENOENT, "Failed to execute '/x\033[2J' in the container") == 0);
        logged_reset();
        CHECK(startup_recv(&p.monitor, STARTUP_CONSOLE, &m, NULL) == -ENOENT);
        CHECK(streq(logged, "Failed to execute '/x?[2J' in the container"));
        CHECK(logged_error == ENOENT);
        pair_close(&p);

        /* after the last step (the exec failed), and without words */
        pair_open(&p, &s);
        p.monitor.next = _STARTUP_STEP_MAX;
        CHECK(startup_send_error(&p.child, -EACCES, NULL) == 0);
        logged_reset();
        CHECK(startup_finish(&p.monitor) == -EACCES);
        CHECK(strstr(logged, "setup failed: Permission denied"));
        pair_close(&p);

        /* the monitor gone: the child's wait ends with an error, not a hang */
        pair_open(&p, &s);
        p.fd[0] = safe_close(p.fd[0]);
        logged_reset();
        CHECK(startup_recv(&p.child, STARTUP_CGROUP_READY, &m, NULL) == -EPIPE);
        CHECK(strstr(logged, "'cgroup-ready'"));
        pair_close(&p);
}

int main(void) {
        static const TapCase cases[] = {
                { "step and side names", test_enums },
                { "both sides in order", test_in_order },
                { "out of order names both steps", test_out_of_order },
                { "links before registration", test_links_barrier },
                { "after the end", test_after_the_end },
                { "the child's error", test_child_error },
        };
        log_set_sink(LOG_ERR, capture, NULL);
        return tap_run(cases, ELEMENTSOF(cases));
}
