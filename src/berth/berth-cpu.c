/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "berth-cpu.h"
#include "log.h"
#include "util.h"

/* Two ways a scheduler puts a new task where we lose time, both measured on this kind of host.
 * A helper we sleep for: the idlest CPU a busy host has is still busy, and the helper waits there
 * while ours goes idle (berth's locked-mounts helper on two busy CPUs: 1.8 ms median from clone()
 * to its first instruction, 0.06 ms pinned to ours). The container's first process, which works
 * beside us: a scheduler that packs tasks onto few CPUs (a VM's kernel, sparing vCPU wake-ups)
 * queued it on ours and left the other idle (perf sched), so it started only when we slept after
 * the cgroup work (3-4 ms), and the two took turns on one CPU. */

int cpu_mask_restore(const cpu_set_t *saved) {
        cpu_set_t all, now;

        if (sched_getaffinity(0, sizeof now, &now) < 0)
                return -errno;
        if (CPU_EQUAL(&now, saved))
                return 0; /* never narrowed (refused, or one CPU): nothing to undo */
        memset(&all, 0xff, sizeof all);
        if (sched_setaffinity(0, sizeof all, &all) < 0)
                return -errno;
        if (sched_getaffinity(0, sizeof now, &now) < 0)
                return -errno;
        if (CPU_EQUAL(&now, saved))
                return 0;
        /* SAVED was narrower than our cpuset (a taskset): that again, where it still fits */
        (void) sched_setaffinity(0, sizeof *saved, saved);
        return 0;
}

pid_t clone_on_our_cpu(CpuPin *pin, int (*fn)(void *), void *stack_top, int flags, void *arg, int *ret_pidfd) {
        int cpu = sched_getcpu(), saved_errno, r;
        cpu_set_t one;
        pid_t pid;

        pin->pinned = false;
        if (cpu >= 0 && cpu < CPU_SETSIZE && sched_getaffinity(0, sizeof pin->saved, &pin->saved) >= 0) {
                CPU_ZERO(&one);
                CPU_SET(cpu, &one);
                pin->pinned = sched_setaffinity(0, sizeof one, &one) >= 0;
        }
        pid = clone(fn, stack_top, flags, arg, ret_pidfd);
        saved_errno = errno;
        r = cpu_unpin(pin);
        if (r < 0)
                log_warning_errno(r, "Failed to take our CPU mask back, staying on one CPU: %m");
        errno = saved_errno;
        return pid;
}

int cpu_unpin(const CpuPin *pin) {
        return pin->pinned ? cpu_mask_restore(&pin->saved) : 0;
}

void cpu_spread_prepare(CpuSpread *s) {
        *s = (CpuSpread) { .cpu = sched_getcpu() };
        s->active = s->cpu >= 0 && s->cpu < CPU_SETSIZE && sched_getaffinity(0, sizeof s->all, &s->all) >= 0 &&
                    CPU_COUNT(&s->all) > 1 && CPU_ISSET(s->cpu, &s->all);
}

/* The mask S's owner has, without its CPU */
static void cpu_spread_other(const CpuSpread *s, cpu_set_t *ret) {
        *ret = s->all;
        CPU_CLR(s->cpu, ret);
}

void cpu_spread_child(const CpuSpread *s, pid_t pid) {
        cpu_set_t other;

        if (!s->active)
                return;
        cpu_spread_other(s, &other);
        /* queued, not running yet: the kernel moves it at once. A failure costs time only. */
        (void) sched_setaffinity(pid, sizeof other, &other);
}

void cpu_spread_self(const CpuSpread *s) {
        cpu_set_t other;

        /* we ran before the parent could move us (we preempted it): we move */
        if (!s->active || sched_getcpu() != s->cpu)
                return;
        cpu_spread_other(s, &other);
        (void) sched_setaffinity(0, sizeof other, &other);
}

int cpu_spread_done(const CpuSpread *s) {
        return s->active ? cpu_mask_restore(&s->all) : 0;
}
