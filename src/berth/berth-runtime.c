/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "berth-mount.h"
#include "berth-register.h"
#include "berth-runtime.h"
#include "log.h"
#include "util.h"

int runtime_prepare(const Settings *s, const RootSource *root, Runtime *ret) {
        Runtime rt = {
                .capabilities = settings_effective_capabilities(s),
        };
        int r;

        namespace_plan_make(s, &rt.namespaces);
        if (s->uuid_set)
                memcpy(rt.uuid, s->uuid, sizeof rt.uuid);
        else {
                r = id128_randomize(rt.uuid);
                if (r < 0)
                        return log_error_errno(r, "Failed to generate a machine UUID: %m");
        }

        r = custom_mounts_copy(s->custom_mounts, s->n_custom_mounts, &rt.mounts);
        if (r < 0)
                return log_oom();
        rt.n_mounts = s->n_custom_mounts;

        /* may add a bind mount: before custom_mounts_prepare() sorts and checks them */
        r = link_journal_prepare(s, root, rt.uuid, &rt.mounts, &rt.n_mounts);
        if (r < 0)
                goto fail;
        r = custom_mounts_prepare(rt.mounts, rt.n_mounts, s->machine);
        if (r < 0)
                goto fail;

        /* here, where /run/berth/cache is visible: the child only loads the programs */
        r = seccomp_prepare(s, rt.capabilities, &rt.seccomp);
        if (r < 0)
                goto fail;

        *ret = rt;
        return 0;

fail:
        runtime_done(&rt);
        return r;
}

void runtime_done(Runtime *rt) {
        custom_mounts_cleanup(rt->mounts, rt->n_mounts);
        custom_mount_free_all(rt->mounts, rt->n_mounts);
        seccomp_filter_free(rt->seccomp);
        *rt = (Runtime) {};
}

int runtime_scratch(const Runtime *rt, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;

        for (size_t i = 0; i < rt->n_mounts; i++)
                if (rt->mounts[i].work && strv_extend(&l, rt->mounts[i].work) < 0)
                        return -ENOMEM;
        *ret = TAKE_PTR(l);
        return 0;
}
