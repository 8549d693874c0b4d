/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berth-mount.h"
#include "berth-register.h"
#include "berth-runtime.h"
#include "log.h"
#include "util.h"

/* The host's identity for the payload, as nspawn passes it: container_host_id= for ID= and so on,
 * for the fields the host's os-release has. */
static int host_os_environment(const HostOsRelease *os, char ***ret) {
        static const char *const fields[] = { "ID", "VERSION_ID", "BUILD_ID", "VARIANT_ID", "IMAGE_ID",
                                              "IMAGE_VERSION" };
        _cleanup_strv_free_ char **env = NULL, **lines = NULL;
        int r;

        if (os->error == -ENOMEM)
                return os->error;
        if (os->error < 0) {
                *ret = NULL;
                return 0; /* no os-release: nothing to say */
        }
        r = strv_split(os->text, "\n", &lines);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                STRV_FOREACH(l, lines) {
                        const char *v = startswith_ptr(*l, fields[i]);
                        _cleanup_free_ char *e = NULL;
                        char name[32] = {};
                        size_t k;

                        if (!v || *v != '=')
                                continue;
                        v++;
                        k = strlen(v);
                        /* os-release quotes with '' or "" and escapes nothing in these fields */
                        if (k >= 2 && (v[0] == '"' || v[0] == '\'') && v[k - 1] == v[0]) {
                                v++;
                                k -= 2;
                        }
                        for (size_t j = 0; fields[i][j] && j < sizeof name - 1; j++)
                                name[j] = (char) tolower((unsigned char) fields[i][j]);
                        if (asprintf(&e, "container_host_%s=%.*s", name, (int) k, v) < 0)
                                return -ENOMEM;
                        if (strv_consume(&env, TAKE_PTR(e)) < 0)
                                return -ENOMEM;
                        break;
                }
        *ret = TAKE_PTR(env);
        return 0;
}

int runtime_prepare(const Settings *s, const RootSource *root, uid_t tree_owner, Runtime *ret) {
        Runtime rt = {
                .capabilities = settings_container_capabilities(s),
                .host_os_release.error = -ENOENT,
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
        r = link_journal_prepare(s, root, tree_owner, rt.uuid, &rt.mounts, &rt.n_mounts);
        if (r < 0)
                goto fail;
        r = custom_mounts_prepare(rt.mounts, rt.n_mounts, s->machine);
        if (r < 0)
                goto fail;

        /* read once, here: for the payload's environment and for the child's /run/host */
        host_os_release_read(&rt.host_os_release);
        r = host_os_environment(&rt.host_os_release, &rt.host_os_env);
        if (r < 0) {
                log_oom();
                goto fail;
        }

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
        strv_free(rt->host_os_env);
        host_os_release_done(&rt->host_os_release);
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
