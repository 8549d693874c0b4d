/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>

#include "dl-load.h"

/* The root directory the program started with, before main(): the dynamic loader searches the
 * library path of the process's root, so a process that has entered a container's mount namespace
 * or root (setns, pivot_root, chroot) would load the container's copy of a library, code the guest
 * wrote, as host root. No caller does that today; this makes sure none ever does. */
static struct stat start_root;
static bool start_root_known;

__attribute__((constructor)) static void remember_root(void) {
        start_root_known = stat("/", &start_root) >= 0;
}

static bool root_is_ours(void) {
        struct stat st;

        return start_root_known && stat("/", &st) >= 0 && st.st_dev == start_root.st_dev &&
               st.st_ino == start_root.st_ino;
}

int dl_load(void **handle, const char *soname, const DlSymbol *symbols, size_t n, const char **ret_error) {
        static char error[512];
        void *h;

        if (*handle)
                return 0;
        if (!root_is_ours()) {
                snprintf(error, sizeof error, "refusing to load %s: this process's root directory is no longer "
                                              "the one it started with", soname);
                *ret_error = error;
                return -EPERM;
        }
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
