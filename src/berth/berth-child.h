/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "berth-cgroup.h"
#include "berth-rootsrc.h"
#include "berth-runtime.h"
#include "berth-settings.h"
#include "berth-startup.h"
#include "berth-userns.h"
#include "berth-cpu.h"

typedef struct ChildParams {
        const Settings *settings;
        const Runtime *runtime;
        const RootSource *root; /* its detached mount becomes the container's root */
        int sync_fd;            /* the child's end of the start-up protocol (berth-startup.h) */
        const char *term;       /* $TERM for the payload */
        const UserNamespace *userns; /* the monitor's: fd -EBADF without --private-users */
        CpuSpread spread;       /* the first process starts beside the monitor (cpu_spread_prepare()) */
        const CGroupJoin *cgroup_join; /* set: born in the container's cgroup2 cgroup, joins the rest
                                        * itself, first thing (NULL: the monitor moves it) */
        int cgroup_joined_fd;   /* -U's PID 1: joins the whole container cgroup itself (CGroupJoin's
                                 * procs_fd too) and says on this pipe whether it could: '1' or '0'
                                 * (then the monitor moves it); -EBADF: not asked to */
} ChildParams;

/* Body of the container's first process (with -U: the setup child); never returns. */
_noreturn_ void child_main(const ChildParams *p);
/* -U: in a helper forked by the monitor, makes the container's PID 1 (the monitor's child) in a
 * new PID namespace owned by the user namespace; it waits for the locked mount namespace on
 * P->sync_fd. The helper is left in the user namespace: it must exit. Logs. */
int child_init_spawn(const ChildParams *p, pid_t *ret);

/* berth-stub-init.c: PID 1 for --as-pid2: reaps, forwards stop signals to
 * PID 2 and exits with its status. Never returns. */
_noreturn_ void stub_init_run(pid_t payload);
