/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <sys/types.h>

/* The container's cgroup: a child of berth's own cgroup, in the unified
 * (cgroup2) hierarchy and, on a hybrid/legacy host, in each mounted v1
 * hierarchy too (so that pids/memory/devices apply and the whole container can
 * be found and killed).
 *
 * Naming, the same relative path in every hierarchy, OWN being berth's own
 * cgroup there:
 *     OWN/berth-MACHINE/payload       the container; the guest's cgroup root
 *     OWN/berth-MACHINE/supervisor    berth itself, only where it had to move
 *                                     out of OWN (see berth-cgroup.c)
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
        char **v1_paths;     /* absolute fs paths of the container cgroup in v1 hierarchies */
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

/* Create the container cgroup for MACHINE below our own cgroup. Leftovers of
 * a dead instance at the same place are killed and removed first, so call it
 * with the machine's registry lock held, and before forking the container.
 * Logs. */
int cgroup_create(const char *machine, CGroup **ret);
/* Find (without creating) the cgroup a previous instance for MACHINE used
 * below our own cgroup. -ENOENT if there is none. */
int cgroup_find(const char *machine, CGroup **ret);
/* Rebuild a CGroup from the paths a record lists (CGROUP_PATH=). Paths that
 * are not on a cgroup file system are dropped. -ENOENT if none is left. */
int cgroup_from_paths(char * const *paths, CGroup **ret);
/* Every container cgroup path (unified first), for the record. NULL on OOM. */
char **cgroup_paths(const CGroup *cg);
/* The container cgroup in the v1 hierarchy that has CONTROLLER ("devices",
 * "pids", "name=systemd"), or NULL. */
const char *cgroup_v1_path(const CGroup *cg, const char *controller);
/* Move PID into the container cgroup in every hierarchy. Logs. */
int cgroup_attach(const CGroup *cg, pid_t pid);
/* Kill everything in the container cgroup (recursively) and remove it, in
 * every hierarchy. Returns the number of processes killed, or a negative
 * errno if something could not be removed. Logs. */
int cgroup_destroy(CGroup *cg);
/* In the child after unshare(CLONE_NEWCGROUP): mount the container's cgroup2 at
 * ROOT/sys/fs/cgroup, writable, so that the guest's init can delegate. Logs. */
int cgroup_mount_in_container(const char *root);
