/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "dl-load.h"
#include "util.h"

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
        _cleanup_close_ int cwd = -EBADF;
        void *h;
        int k;

        if (*handle)
                return 0;
        if (!root_is_ours()) {
                snprintf(error, sizeof error, "refusing to load %s: this process's root directory is no longer "
                                              "the one it started with", soname);
                *ret_error = error;
                return -EPERM;
        }
        /* From /: an empty or relative element of $LD_LIBRARY_PATH is searched relative to the
         * working directory, which may be a container's tree (berth -D . runs in it), and the
         * guest may be running and writing there by now. RTLD_NOW: a library without a symbol we
         * need fails here, not at a call half way through setting up a machine. */
        cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (cwd < 0 || chdir("/") < 0) {
                k = negative_errno();
                snprintf(error, sizeof error, "cannot leave the working directory to load %s", soname);
                *ret_error = error;
                return k;
        }
        h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
        k = fchdir(cwd) < 0 ? negative_errno() : 0;
        if (k < 0) {
                if (h)
                        (void) dlclose(h);
                snprintf(error, sizeof error, "cannot return to the working directory after loading %s", soname);
                *ret_error = error;
                return k;
        }
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
