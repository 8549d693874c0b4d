/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "berth-nsplan.h"
#include "log.h"
#include "util.h"

static const struct {
        const char *name;
        unsigned long flag;
} namespace_kinds[_NAMESPACE_KIND_MAX] = {
        [NAMESPACE_MOUNT] = { "mnt", CLONE_NEWNS },
        [NAMESPACE_PID] = { "pid", CLONE_NEWPID },
        [NAMESPACE_UTS] = { "uts", CLONE_NEWUTS },
        [NAMESPACE_IPC] = { "ipc", CLONE_NEWIPC },
        [NAMESPACE_NET] = { "net", CLONE_NEWNET },
        [NAMESPACE_CGROUP] = { "cgroup", CLONE_NEWCGROUP },
        [NAMESPACE_USER] = { "user", CLONE_NEWUSER },
};

const char *namespace_kind_to_string(NamespaceKind k) {
        return k >= 0 && k < _NAMESPACE_KIND_MAX ? namespace_kinds[k].name : NULL;
}

NamespaceKind namespace_kind_from_string(const char *s) {
        for (int i = 0; s && i < _NAMESPACE_KIND_MAX; i++)
                if (streq(namespace_kinds[i].name, s))
                        return i;
        return _NAMESPACE_KIND_INVALID;
}

unsigned long namespace_kind_clone_flag(NamespaceKind k) {
        return k >= 0 && k < _NAMESPACE_KIND_MAX ? namespace_kinds[k].flag : 0;
}

void namespace_plan_make(const Settings *s, NamespacePlan *ret) {
        static const NamespaceEntry host = { .source = NAMESPACE_HOST, .after = NAMESPACE_AT_CLONE };
        static const NamespaceEntry at_clone = { .source = NAMESPACE_NEW, .after = NAMESPACE_AT_CLONE };
        static const NamespaceEntry owned = { .source = NAMESPACE_USERNS, .after = NAMESPACE_AT_CLONE };
        NamespacePlan p = {
                .ns = {
                        /* the setup mount namespace; the final one is made by the monitor (see the header) */
                        [NAMESPACE_MOUNT] = at_clone,
                        /* -U: owned by the container's user namespace, so that reboot(2) in it works
                         * (CAP_SYS_BOOT in the PID namespace's owner) and ends its init with SIGHUP; made
                         * by the monitor with the container's PID 1, the child is born in it (spawn()) */
                        [NAMESPACE_PID] = s->userns_mode != USERNS_NO ? owned : at_clone,
                        [NAMESPACE_UTS] = at_clone,
                        [NAMESPACE_IPC] = at_clone,
                        /* --network-namespace-path=: the monitor enters it for the clone, the child is
                         * born in it (spawn() in berth-container.c) */
                        [NAMESPACE_NET] = s->network_namespace_path ? (NamespaceEntry) {
                                                  .source = NAMESPACE_PATH,
                                                  .path = s->network_namespace_path,
                                                  .after = NAMESPACE_AT_CLONE,
                                          }
                                          : s->private_network ? (s->userns_mode != USERNS_NO ? owned : at_clone)
                                                               : host,
                        /* its root is the cgroup the child is in when it unshares: the container's */
                        [NAMESPACE_CGROUP] = { .source = NAMESPACE_NEW, .after = STARTUP_CGROUP_READY },
                        [NAMESPACE_USER] = host,
                },
                .final_mount_owner = NAMESPACE_OWNER_LOCK,
        };
        *ret = p;
}

unsigned long namespace_plan_clone_flags(const NamespacePlan *p) {
        unsigned long f = 0;

        for (int k = 0; k < _NAMESPACE_KIND_MAX; k++)
                if (p->ns[k].source == NAMESPACE_NEW && p->ns[k].after == NAMESPACE_AT_CLONE)
                        f |= namespace_kinds[k].flag;
        return f;
}

unsigned long namespace_plan_unshare_flags(const NamespacePlan *p, StartupStep step) {
        unsigned long f = 0;

        for (int k = 0; k < _NAMESPACE_KIND_MAX; k++)
                if (p->ns[k].source == NAMESPACE_NEW && p->ns[k].after == step && step != NAMESPACE_AT_CLONE)
                        f |= namespace_kinds[k].flag;
        return f;
}

int namespace_plan_join(const NamespacePlan *p) {
        for (int k = 0; k < _NAMESPACE_KIND_MAX; k++) {
                _cleanup_close_ int fd = -EBADF;

                if (p->ns[k].source != NAMESPACE_PATH || p->ns[k].after == NAMESPACE_AT_CLONE)
                        continue; /* at clone: the monitor enters it around clone(), the child is born in it */
                fd = open(p->ns[k].path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        return log_error_errno(negative_errno(), "Failed to open the %s namespace '%s': %m",
                                               namespace_kinds[k].name, p->ns[k].path);
                if (setns(fd, (int) namespace_kinds[k].flag) < 0)
                        return log_error_errno(negative_errno(), "Failed to join the %s namespace '%s': %m",
                                               namespace_kinds[k].name, p->ns[k].path);
        }
        return 0;
}
