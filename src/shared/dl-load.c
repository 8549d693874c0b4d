/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>

#include "dl-load.h"

int dl_load(void **handle, const char *soname, const DlSymbol *symbols, size_t n, const char **ret_error) {
        static char error[512];
        void *h;

        if (*handle)
                return 0;
        /* RTLD_NOW: a library without a symbol we need fails here, not at a call half way
         * through setting up a machine */
        h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
                const char *e = dlerror();
                snprintf(error, sizeof error, "%s", e ?: soname);
                *ret_error = error;
                return -EOPNOTSUPP;
        }
        for (size_t i = 0; i < n; i++) {
                void *p;

                (void) dlerror();
                p = dlsym(h, symbols[i].name);
                if (!p) {
                        snprintf(error, sizeof error, "%s has no symbol '%s'", soname, symbols[i].name);
                        for (size_t j = 0; j < i; j++)
                                *symbols[j].fn = NULL;
                        (void) dlclose(h);
                        *ret_error = error;
                        return -EOPNOTSUPP;
                }
                *symbols[i].fn = p;
        }
        *handle = h;
        return 0;
}
