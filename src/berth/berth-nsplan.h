/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Which namespaces a container gets, computed once from its settings
 * (namespace_plan_make(), kept in the Runtime) instead of fixed clone flags.
 * For each kind: the host's, a new one, or one joined from a path; and when
 * it is made: at clone(2), or by the child at a step of the start-up protocol
 * (berth-startup.h). The cgroup namespace, for one, is unshared by the child
 * only after STARTUP_CGROUP_READY, when it sits in the container's cgroup.
 *
 * User namespaces: without -U every namespace of the container is owned by
 * the host's user namespace, and the container's final mount namespace is
 * made by the monitor in a new, empty user namespace whose only job is to lock
 * the mounts (make_locked_mount_namespace() in berth-container.c: mounts
 * copied into a namespace owned by a less privileged user namespace are
 * locked). With -U the monitor makes the container's user namespace
 * (userns_setup()) and, owned by it, a private network namespace and the PID
 * namespace (NAMESPACE_USERNS): container root may then configure its own
 * links, mount sysfs and reboot(2) (which needs CAP_SYS_BOOT in the PID
 * namespace's owner). A PID namespace is owned by the user namespace of the
 * process that makes it, and has no handle before its first process, so the
 * container's PID 1 is made first, inside the user namespace, by a helper of
 * the monitor (child_init_spawn() in berth-child.c); the setup child, still
 * host root, is born in that PID namespace as PID 2, sets up the tree and
 * goes; PID 1 enters the locked mount namespace and unshares UTS, IPC and
 * cgroup there (child_init_main()). A fresh procfs stays out of the guest's
 * reach: berth's /proc has locked masks, so the kernel refuses another. */

#include <stdbool.h>

#include "berth-settings.h"
#include "berth-startup.h"

typedef enum NamespaceKind {
        NAMESPACE_MOUNT,
        NAMESPACE_PID,
        NAMESPACE_UTS,
        NAMESPACE_IPC,
        NAMESPACE_NET,
        NAMESPACE_CGROUP,
        NAMESPACE_USER,
        _NAMESPACE_KIND_MAX,
        _NAMESPACE_KIND_INVALID = -EINVAL,
} NamespaceKind;

typedef enum NamespaceSource {
        NAMESPACE_HOST,  /* the host's, shared */
        NAMESPACE_NEW,   /* a new one */
        NAMESPACE_PATH,  /* joined with setns() from a path, e.g. /run/netns/NAME */
        NAMESPACE_USERNS, /* a new one owned by the container's user namespace: made by the monitor
                           * with it (UserNamespace.netns_fd), entered around clone(2) so that the
                           * child is born in it */
        _NAMESPACE_SOURCE_MAX,
        _NAMESPACE_SOURCE_INVALID = -EINVAL,
} NamespaceSource;

/* The user namespace that owns the container's final (locked) mount namespace. */
typedef enum NamespaceOwner {
        NAMESPACE_OWNER_LOCK,      /* a new, empty one made for locking the mounts only */
        NAMESPACE_OWNER_CONTAINER, /* the container's own user namespace (.user NEW or PATH) */
        _NAMESPACE_OWNER_MAX,
        _NAMESPACE_OWNER_INVALID = -EINVAL,
} NamespaceOwner;

/* When NEW: made at clone(2) (AT_CLONE), or by the child once that step's message came. */
#define NAMESPACE_AT_CLONE _STARTUP_STEP_INVALID

typedef struct NamespaceEntry {
        NamespaceSource source;
        const char *path;   /* NAMESPACE_PATH: the namespace file (a string of the settings) */
        StartupStep after;  /* NAMESPACE_NEW: NAMESPACE_AT_CLONE or the step after which the child unshares;
                             * NAMESPACE_PATH: NAMESPACE_AT_CLONE (the monitor enters it for the clone)
                             * or the child joins it first thing (namespace_plan_join()) */
} NamespaceEntry;

typedef struct NamespacePlan {
        NamespaceEntry ns[_NAMESPACE_KIND_MAX];
        NamespaceOwner final_mount_owner;
} NamespacePlan;

/* Pure: no system calls. */
void namespace_plan_make(const Settings *s, NamespacePlan *ret);
/* CLONE_NEW* flags of the namespaces made at clone(2). */
unsigned long namespace_plan_clone_flags(const NamespacePlan *p);
/* CLONE_NEW* flags of the namespaces the child unshares after STEP. */
unsigned long namespace_plan_unshare_flags(const NamespacePlan *p, StartupStep step);
/* In the child, first thing: joins the NAMESPACE_PATH namespaces not entered at clone. Logs. */
int namespace_plan_join(const NamespacePlan *p);

const char *namespace_kind_to_string(NamespaceKind k);
NamespaceKind namespace_kind_from_string(const char *s);
unsigned long namespace_kind_clone_flag(NamespaceKind k);
