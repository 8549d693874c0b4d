/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "machine-name.h"
#include "util.h"

/* 64 is HOST_NAME_MAX on Linux: the name doubles as the container's default
 * hostname, so it must fit sethostname(). It also becomes part of file names
 * under /run/berth and of cgroup names ("berth-NAME"), which is why the
 * character set is so small: no '/', no whitespace, nothing a shell or a
 * KEY=VALUE record would have to quote. */
#define MACHINE_NAME_MAX 64

static bool is_name_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
               c == '_' || c == '.';
}

bool machine_name_is_valid(const char *s) {
        size_t n;

        if (isempty(s))
                return false;
        n = strlen(s);
        if (n > MACHINE_NAME_MAX)
                return false;
        /* A leading '-' would read as an option on every command line the name
         * is passed to; dots separate non-empty labels (this also rules out "."
         * and ".."). */
        if (s[0] == '.' || s[0] == '-' || s[n - 1] == '.' || s[n - 1] == '-')
                return false;
        for (size_t i = 0; i < n; i++) {
                if (!is_name_char(s[i]))
                        return false;
                if (s[i] == '.' && s[i + 1] == '.')
                        return false;
        }
        return true;
}

int machine_name_from_image_path(const char *path, char **ret) {
        _cleanup_free_ char *p = NULL;

        if (!endswith(path ?: "", ".raw"))
                return machine_name_from_path(path, ret);
        p = strndup(path, strlen(path) - strlen(".raw"));
        if (!p)
                return -ENOMEM;
        return machine_name_from_path(p, ret);
}

int machine_name_from_path(const char *path, char **ret) {
        _cleanup_free_ char *p = NULL;
        const char *b;
        size_t n;

        if (isempty(path))
                return -EINVAL;
        p = strdup(path);
        if (!p)
                return -ENOMEM;
        /* "/var/lib/machines/foo/" names "foo", like the path without the slash */
        n = strlen(p);
        while (n > 1 && p[n - 1] == '/')
                p[--n] = 0;
        b = path_basename(p);
        /* Like nspawn we do not mangle the name into something valid: a name the
         * user never wrote would surprise them in every later berthctl call.
         * The caller asks for -M instead. */
        if (!machine_name_is_valid(b))
                return -EINVAL;
        char *s = strdup(b);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}
