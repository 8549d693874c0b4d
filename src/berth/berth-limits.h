/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Host limits that make a booted guest fail without a word. A guest's systemd that cannot get an
 * inotify instance exits 255 before it says anything; the per-user limit
 * (fs.inotify.max_user_instances, 128 by default) is shared by every root process on the host and
 * every container whose user namespace root made, so a fleet of about 20 guests uses it up. berth
 * looks before it boots a guest and again when a guest's init fails, and says in one line which
 * limit and how to raise it. It never changes a limit itself. */

#include <stdbool.h>
#include <sys/types.h>

typedef struct HostLimit {
        const char *sysctl;     /* its name, as for sysctl(8) */
        const char *path;       /* under /proc/sys */
        const char *what;       /* what it counts */
        unsigned per_guest;     /* what a booted systemd guest takes, about */
        unsigned suggest;       /* a value to raise it to */
        int (*in_use)(unsigned *ret);
        bool costly;            /* in_use() walks every process: at most once in a while, see below */
} HostLimit;

/* How many inotify instances are charged to host root: held by processes that run as root in the
 * host's user namespace, or in a user namespace that root made. */
int inotify_instances_of_root(unsigned *ret);
/* The inotify instances process PID holds (0 if it cannot be looked at): what the count above
 * adds up for each process. */
unsigned inotify_instances_of_pid(pid_t pid);

/* For every limit that a booted guest would push past its value: one warning line naming the
 * limit, what is in use, and the sysctl that raises it. MACHINE for the message; AFTER_FAILURE:
 * the guest's init has failed already (the line then says that this may be why). Returns how
 * many lines were logged. */
int host_limits_check(const char *machine, bool after_failure);
