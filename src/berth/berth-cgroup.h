/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* The container's cgroup: a child of berth's own cgroup, in the unified
 * (cgroup2) hierarchy and, on a hybrid/legacy host, in each mounted v1
 * hierarchy too (so that pids/memory/devices apply and the whole container can
 * be found and killed). */

typedef struct CGroup {
        char *name;          /* relative name of the container cgroup, e.g. "berth-foo" */
        char *unified_path;  /* absolute fs path in the cgroup2 hierarchy, or NULL */
        char **v1_paths;     /* absolute fs paths in v1 hierarchies */
        bool unified_is_root;/* /sys/fs/cgroup itself is cgroup2 (pure unified host) */
} CGroup;

CGroup *cgroup_free(CGroup *cg);
static inline void cgroup_freep(CGroup **cg) {
        cgroup_free(*cg);
}

/* Create the container cgroup for MACHINE below our own cgroup. Logs. */
int cgroup_create(const char *machine, CGroup **ret);
/* Find (without creating) the cgroup a previous instance for MACHINE used. */
int cgroup_find(const char *machine, CGroup **ret);
/* Move PID into the container cgroup in every hierarchy. */
int cgroup_attach(const CGroup *cg, pid_t pid);
/* Kill everything in the container cgroup (recursively) and remove it. */
int cgroup_destroy(CGroup *cg);
/* In the child after unshare(CLONE_NEWCGROUP): mount the container's cgroup2 at
 * ROOT/sys/fs/cgroup, writable, so that the guest's init can delegate. Logs. */
int cgroup_mount_in_container(const char *root);
