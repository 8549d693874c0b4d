/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <sys/types.h>

/* The container's cgroup: below berth's own cgroup, in every hierarchy the
 * kernel has: cgroup2 and each v1 hierarchy that /proc/self/cgroup lists, named
 * ones and ones mounted nowhere included (see berth-cgroup.c).
 *
 * Naming, OWN being berth's own cgroup in each hierarchy:
 *     OWN/berth-MACHINE                  the machine's
 *     OWN/berth-MACHINE/supervisor       berth itself, only where it had to move
 *                                        out of OWN (cgroup2, see berth-cgroup.c)
 *     OWN/berth-MACHINE/policy           the device policy; no process of its own;
 *                                        only in cgroup2 and the v1 devices hierarchy
 *     OWN/berth-MACHINE/policy/payload   the container; its cgroup namespace root
 * In the other v1 hierarchies OWN/berth-MACHINE is the container's.
 * "berth-" keeps the names clear of cgroupfs' own files and makes leftovers
 * recognisable; the machine name (unique on the host, held by the registry
 * lock) makes them unique. The full paths go into the registry record
 * (CGROUP_PATH=), so that a later berth finds them even from another cgroup. */

typedef enum CGroupLayout {
        CGROUP_LAYOUT_LEGACY,  /* v1 only */
        CGROUP_LAYOUT_HYBRID,  /* v1 controllers + an empty cgroup2 at /sys/fs/cgroup/unified */
        CGROUP_LAYOUT_UNIFIED, /* /sys/fs/cgroup is cgroup2 */
        _CGROUP_LAYOUT_MAX,
        _CGROUP_LAYOUT_INVALID = -EINVAL,
} CGroupLayout;

typedef struct CGroup {
        char *name;          /* relative name of the machine's cgroup directory, "berth-foo" */
        char *unified_path;  /* absolute fs path of the container cgroup (".../berth-foo/payload") in cgroup2, or NULL */
        char **v1_paths;     /* absolute fs paths of the container cgroup in mounted v1 hierarchies */
        char **detached;     /* hierarchies mounted nowhere we look, pairs of controllers ("" for
                              * cgroup2) and the container cgroup's path below our cgroup
                              * namespace's root there; in the record as CGROUP_DETACHED= */
        bool unified_is_root;/* /sys/fs/cgroup itself is cgroup2 (pure unified host) */

        /* Set when berth moved itself into .../berth-foo/supervisor to enable
         * controllers for the container; cgroup_destroy() moves it back. */
        char *supervisor_path;
        char *own_path;            /* berth's cgroup2 cgroup before the move */
        char *enabled_controllers; /* what we enabled in own_path's cgroup.subtree_control */
} CGroup;

CGroup *cgroup_free(CGroup *cg);
static inline void cgroup_freep(CGroup **cg) {
        cgroup_free(*cg);
}

const char *cgroup_layout_to_string(CGroupLayout l);
CGroupLayout cgroup_layout_from_string(const char *s);
/* Looks at /sys/fs/cgroup. */
int cgroup_detect_layout(CGroupLayout *ret);

/* Puts the device policy on the container's policy cgroups: the one in the v1
 * devices hierarchy and the cgroup2 one (each NULL if there is none), both
 * without children yet. V1_DETACHED: that v1 hierarchy is mounted nowhere we
 * look (CGroup.detached), where what joins the machine later (berthctl exec)
 * does not follow. Logs. */
typedef int (*CGroupPolicyFunc)(const char *v1_devices, bool v1_detached, const char *unified);

/* Create the container cgroup for MACHINE below our own cgroup, in every
 * hierarchy, with APPLY_POLICY's policy on its parent, where the container
 * cannot change it. Leftovers of a dead instance at the same place are killed
 * and removed first, so call it with the machine's registry lock held, and
 * before forking the container. Logs. */
int cgroup_create(const char *machine, CGroupPolicyFunc apply_policy, CGroup **ret);
/* Find (without creating) the cgroup a previous instance for MACHINE used
 * below our own cgroup. -ENOENT if there is none. */
int cgroup_find(const char *machine, CGroup **ret);
/* Rebuild a CGroup from the paths a record lists (CGROUP_PATH=, and CGROUP_DETACHED= for the
 * hierarchies mounted nowhere). Paths that are not on a cgroup file system, and detached entries
 * not of our shape, are dropped. -ENOENT if none is left. */
int cgroup_from_paths(char * const *paths, char * const *detached, CGroup **ret);
/* Every container cgroup path (unified first), for the record; not those of
 * hierarchies mounted nowhere. NULL on OOM. */
char **cgroup_paths(const CGroup *cg);
/* The container cgroups in hierarchies mounted nowhere, "CONTROLLERS:PATH" (PATH below the root
 * of our cgroup namespace there), for the record's CGROUP_DETACHED=. NULL on OOM. */
char **cgroup_detached(const CGroup *cg);
/* The container cgroup in the v1 hierarchy that has CONTROLLER ("devices",
 * "pids", "name=systemd"), or NULL. */
const char *cgroup_v1_path(const CGroup *cg, const char *controller);
/* Move PID into the container cgroup in every hierarchy. Logs. */
int cgroup_attach(const CGroup *cg, pid_t pid);
/* What a new process needs to join the container cgroup by itself, without the cost of
 * cgroup_attach(): each write to a cgroup.procs file takes the kernel's global threadgroup lock
 * for writing, which waits for an RCU grace period whenever none of its writers ran in the last
 * one (about 8 ms on an idle 2-CPU host: most lone starts). A single-threaded process that moves
 * itself by writing 0 to a v1 "tasks" file skips that lock, and clone3()'s CLONE_INTO_CGROUP
 * makes the process in its cgroup2 cgroup without it. Only where that covers every hierarchy the
 * machine has (cgroup2 mounted, or none): otherwise cgroup_join_open() gives -EOPNOTSUPP. */
typedef struct CGroupJoin {
        int unified_fd;  /* the container's cgroup2 cgroup, for CLONE_INTO_CGROUP; -EBADF: none */
        int procs_fd;    /* its cgroup.procs, open for writing, for a process not born there (-U's
                          * PID 1, made inside the user namespace, where CLONE_INTO_CGROUP is
                          * refused): its write waits for the grace period, but in that process,
                          * beside the start-up; the kernel checks it with our credentials, those
                          * of the opener (from 5.16). -EBADF: not asked for */
        int *tasks_fds;  /* its "tasks" file in each v1 hierarchy, open for writing */
        size_t n_tasks;
} CGroupJoin;
#define CGROUP_JOIN_NULL ((CGroupJoin) { .unified_fd = -EBADF, .procs_fd = -EBADF })
/* WITH_PROCS: procs_fd too. */
int cgroup_join_open(const CGroup *cg, bool with_procs, CGroupJoin *ret);
/* In the new process, single-threaded, before anything else: into each v1 hierarchy's container
 * cgroup, and with PROCS into the cgroup2 one (otherwise it was CLONE_INTO_CGROUP's). */
int cgroup_join_self(const CGroupJoin *j, bool procs);
void cgroup_join_close(CGroupJoin *j);
/* Hands the container's cgroup2 cgroup to OWNER (uid and gid, the root of its user namespace):
 * the directory and the files a delegated subtree's owner writes (cgroup.procs, cgroup.threads,
 * cgroup.subtree_control), as systemd delegates. The v1 hierarchies stay the host's: the
 * container sees only cgroup2. Logs. */
int cgroup_delegate(const CGroup *cg, uid_t owner);
/* Kill everything in the container cgroup (recursively) and remove it, in
 * every hierarchy. Returns the number of processes killed, or a negative
 * errno if something could not be removed. Logs. */
int cgroup_destroy(CGroup *cg);
/* In the child after unshare(CLONE_NEWCGROUP): mount the container's cgroup2 at
 * ROOT/sys/fs/cgroup, writable, so that the guest's init can delegate. Its root
 * is the container's payload cgroup. Logs. */
int cgroup_mount_in_container(const char *root);
