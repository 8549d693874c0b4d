/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Where the processes berth clones start (berth-cpu.c). */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "berth-cpu.h"
#include "tap.h"
#include "util.h"

/* a mask that no longer fits (only a CPU that does not exist, as when our cpuset changed
 * meanwhile) leaves every CPU we may use, never one */
static void test_cpu_unpin(void) {
        CpuPin gone = { .pinned = true }, before = { .pinned = true }, none = {};
        cpu_set_t after, both, one;

        CHECK(sched_getaffinity(0, sizeof before.saved, &before.saved) == 0);
        CPU_ZERO(&gone.saved);
        CPU_SET(CPU_SETSIZE - 1, &gone.saved);
        CPU_ZERO(&one);
        CPU_SET(sched_getcpu(), &one);
        CHECK(sched_setaffinity(0, sizeof one, &one) == 0); /* pinned, as clone_on_our_cpu() does */
        CHECK(cpu_unpin(&gone) == 0);
        CHECK(sched_getaffinity(0, sizeof after, &after) == 0);
        /* every CPU we had, at least (more if a taskset narrowed us: the cpuset allows them) */
        CPU_AND(&both, &before.saved, &after);
        CHECK(CPU_EQUAL(&both, &before.saved));
        CHECK(cpu_unpin(&before) == 0);
        CHECK(sched_getaffinity(0, sizeof after, &after) == 0);
        CHECK(CPU_EQUAL(&after, &before.saved));
        CHECK(cpu_unpin(&none) == 0); /* not pinned: nothing to do */
}

/* A mask narrower than the cpuset (a taskset) comes back as it was, not as every CPU */
static void test_cpu_mask_restore_keeps_a_taskset(void) {
        cpu_set_t before, narrow, one, after;
        int cpu = sched_getcpu();

        CHECK(sched_getaffinity(0, sizeof before, &before) == 0);
        if (CPU_COUNT(&before) < 2)
                return; /* one CPU: nothing narrower to keep */
        narrow = before;
        for (int i = 0; i < CPU_SETSIZE; i++)
                if (i != cpu && CPU_ISSET(i, &narrow)) {
                        CPU_CLR(i, &narrow); /* every CPU but one other */
                        break;
                }
        CHECK(sched_setaffinity(0, sizeof narrow, &narrow) == 0);
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        CHECK(sched_setaffinity(0, sizeof one, &one) == 0);
        CHECK(cpu_mask_restore(&narrow) == 0);
        CHECK(sched_getaffinity(0, sizeof after, &after) == 0);
        CHECK(CPU_EQUAL(&after, &narrow));
        CHECK(cpu_mask_restore(&before) == 0);
        CHECK(sched_getaffinity(0, sizeof after, &after) == 0);
        CHECK(CPU_EQUAL(&after, &before));
}

static int report_cpus(void *userdata) {
        cpu_set_t *out = userdata;

        return sched_getaffinity(0, sizeof *out, out) == 0 ? 0 : 1;
}

/* a helper starts with our one CPU; we get our whole mask back */
static void test_clone_on_our_cpu(void) {
        static _Alignas(16) char stack[16384];
        cpu_set_t before, after, helper;
        CpuPin pin;
        int status;
        pid_t pid;

        CHECK(sched_getaffinity(0, sizeof before, &before) == 0);
        pid = clone_on_our_cpu(&pin, report_cpus, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, &helper,
                               NULL);
        CHECK(pid > 0);
        CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
        CHECK(pin.pinned);
        CHECK(CPU_COUNT(&helper) == 1);
        CHECK(CPU_EQUAL(&pin.saved, &before));
        CHECK(sched_getaffinity(0, sizeof after, &after) == 0);
        CHECK(CPU_EQUAL(&after, &before));
}

/* a child starts away from our CPU, and gets our whole mask back */
static void test_cpu_spread(void) {
        cpu_set_t child_mask, back;
        CpuSpread spread;
        int p[2], status;
        char c = 0;
        pid_t pid;

        cpu_spread_prepare(&spread);
        if (!spread.active) {
                CHECK(cpu_spread_done(&spread) == 0);
                return; /* one CPU: nothing to spread */
        }
        CHECK(pipe(p) == 0);
        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                cpu_spread_self(&spread);
                if (read(p[0], &c, 1) != 1 || sched_getaffinity(0, sizeof child_mask, &child_mask) < 0 ||
                    CPU_ISSET(spread.cpu, &child_mask) || cpu_spread_done(&spread) < 0 ||
                    sched_getaffinity(0, sizeof back, &back) < 0 || !CPU_EQUAL(&back, &spread.all))
                        _exit(1);
                _exit(0);
        }
        cpu_spread_child(&spread, pid);
        CHECK(sched_getaffinity(pid, sizeof child_mask, &child_mask) == 0);
        CHECK(!CPU_ISSET(spread.cpu, &child_mask));
        CHECK(write(p[1], &c, 1) == 1);
        CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
        close(p[0]);
        close(p[1]);
}

/* A zeroed CpuSpread (params copied before cpu_spread_prepare()) does nothing: it neither moves a
 * process nor widens a narrowed mask */
static void test_cpu_spread_zeroed(void) {
        cpu_set_t before, one, after;
        CpuSpread zero = {};

        CHECK(sched_getaffinity(0, sizeof before, &before) == 0);
        CPU_ZERO(&one);
        CPU_SET(sched_getcpu(), &one);
        CHECK(sched_setaffinity(0, sizeof one, &one) == 0);
        cpu_spread_self(&zero);
        cpu_spread_child(&zero, getpid());
        CHECK(cpu_spread_done(&zero) == 0);
        CHECK(sched_getaffinity(0, sizeof after, &after) == 0);
        CHECK(CPU_EQUAL(&after, &one));
        CHECK(sched_setaffinity(0, sizeof before, &before) == 0);
}

/* Nothing narrowed (the moves were refused, or came to nothing): cpu_spread_done() has nothing to
 * undo and asks nothing of the kernel that could be refused */
static void test_cpu_spread_done_unchanged(void) {
        CpuSpread spread;

        cpu_spread_prepare(&spread);
        CHECK(cpu_spread_done(&spread) == 0);
}

static const TapCase cases[] = {
        { "cpu_unpin", test_cpu_unpin },
        { "cpu_mask_restore_keeps_a_taskset", test_cpu_mask_restore_keeps_a_taskset },
        { "clone_on_our_cpu", test_clone_on_our_cpu },
        { "cpu_spread", test_cpu_spread },
        { "cpu_spread_zeroed", test_cpu_spread_zeroed },
        { "cpu_spread_done_unchanged", test_cpu_spread_done_unchanged },
};

int main(void) {
        return tap_run(cases, ELEMENTSOF(cases));
}
