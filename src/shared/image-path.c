/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "image-path.h"
#include "machine-name.h"
#include "util.h"

static const char *const default_search_path[] = {
        "/etc/machines", "/run/machines", "/var/lib/machines", "/var/lib/container",
        "/usr/local/lib/machines", "/usr/lib/machines",
};

int image_search_path(char ***ret) {
        _cleanup_strv_free_ char **l = NULL, **split = NULL;
        const char *e = getenv("BERTH_IMAGE_PATH");

        if (!isempty(e)) {
                if (strv_split(e, ":", &split) < 0)
                        return -ENOMEM;
                STRV_FOREACH(p, split)
                        if (!isempty(*p) && strv_extend(&l, *p) < 0)
                                return -ENOMEM;
        } else
                for (size_t i = 0; i < ELEMENTSOF(default_search_path); i++)
                        if (strv_extend(&l, default_search_path[i]) < 0)
                                return -ENOMEM;
        *ret = TAKE_PTR(l);
        return 0;
}

const char *image_search_path_description(void) {
        return !isempty(getenv("BERTH_IMAGE_PATH"))
                       ? "$BERTH_IMAGE_PATH"
                       : "/etc/machines, /run/machines, /var/lib/machines, /var/lib/container, "
                         "/usr/local/lib/machines or /usr/lib/machines";
}

int image_find(const char *name, char **ret_path, bool *ret_raw) {
        _cleanup_strv_free_ char **dirs = NULL;
        int r;

        if (!machine_name_is_valid(name))
                return -EINVAL;
        r = image_search_path(&dirs);
        if (r < 0)
                return r;
        STRV_FOREACH(d, dirs) {
                _cleanup_free_ char *p = path_join(*d, name), *raw = strjoin(*d, "/", name, ".raw");
                struct stat st;

                if (!p || !raw)
                        return -ENOMEM;
                if (stat(p, &st) >= 0 && S_ISDIR(st.st_mode)) {
                        *ret_path = TAKE_PTR(p);
                        *ret_raw = false;
                        return 0;
                }
                if (stat(raw, &st) >= 0 && S_ISREG(st.st_mode)) {
                        *ret_path = TAKE_PTR(raw);
                        *ret_raw = true;
                        return 0;
                }
        }
        return -ENOENT;
}
