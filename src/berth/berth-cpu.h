/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <sched.h>
#include <stdbool.h>
#include <sys/types.h>

/* Where the processes berth clones start (berth-cpu.c says why). */

/* A helper we sleep until it is done with (CLONE_VFORK, or a wait right after): clone(FN,
 * STACK_TOP, FLAGS, ARG, RET_PIDFD) started on our CPU, which goes idle as we sleep, so that it
 * runs at once. We are pinned to our CPU around the clone and take our mask back after it (a
 * warning if we cannot); the helper starts with the one CPU and, if it makes processes that
 * outlive it, takes PIN's mask back first (cpu_unpin()). Returns as clone() does (errno set). */
typedef struct CpuPin {
        cpu_set_t saved; /* our mask before */
        bool pinned;     /* false (as zeroed): nothing to take back */
} CpuPin;
pid_t clone_on_our_cpu(CpuPin *pin, int (*fn)(void *), void *stack_top, int flags, void *arg, int *ret_pidfd);
/* PIN's mask back for the calling thread (see cpu_mask_restore()): 0 or a negative errno */
int cpu_unpin(const CpuPin *pin);

/* The container's first process works beside us until it needs the cgroups we make meanwhile:
 * it starts on a CPU other than ours. cpu_spread_prepare() before the clone, then
 * cpu_spread_child() in the parent and cpu_spread_self() first thing in the child (whichever runs
 * first moves it); the child takes the whole mask back with cpu_spread_done() once it waits for
 * us anyway, before anything of the container's runs (0, or a negative errno). Nothing to do on
 * one CPU, or for a zeroed CpuSpread. */
typedef struct CpuSpread {
        cpu_set_t all; /* the parent's mask */
        int cpu;       /* the parent's CPU */
        bool active;   /* false (as zeroed): no spreading, nothing to take back */
} CpuSpread;
void cpu_spread_prepare(CpuSpread *s);
void cpu_spread_child(const CpuSpread *s, pid_t pid);
void cpu_spread_self(const CpuSpread *s);
int cpu_spread_done(const CpuSpread *s);

/* The calling thread's mask back to SAVED, as it was before we narrowed it. Where SAVED is every
 * CPU our cpuset allows, by asking for every CPU: the kernel (from 6.2) keeps an explicit mask
 * across later cpuset changes, and a full one keeps following the cpuset. A mask that no longer
 * fits (the cpuset changed meanwhile) leaves every CPU we may use. 0, or a negative errno. */
int cpu_mask_restore(const cpu_set_t *saved);
