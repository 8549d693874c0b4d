/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dl-load.h"
#include "tap.h"
#include "util.h"

/* a library every process has, and two of its functions */
#define LIBC_SYMBOLS(X) X(getpid) X(strlen)
LIBC_SYMBOLS(DL_DECLARE)

static void test_resolves_every_symbol_once(void) {
        static const DlSymbol symbols[] = { LIBC_SYMBOLS(DL_ENTRY) };
        void *handle = NULL, *first;
        const char *e = NULL;

        CHECK(dl_load(&handle, "libc.so.6", symbols, ELEMENTSOF(symbols), &e) == 0);
        CHECK(handle);
        CHECK(sym_getpid && sym_getpid() == getpid());
        CHECK(sym_strlen && sym_strlen("berth") == 5);
        first = handle;
        CHECK(dl_load(&handle, "libc.so.6", symbols, ELEMENTSOF(symbols), &e) == 0);
        CHECK(handle == first);
}

static int (*sym_no_such_function)(void);
static int (*sym_getppid_)(void);

static void test_all_or_nothing(void) {
        const DlSymbol symbols[] = {
                { "getppid", (void **) &sym_getppid_ },
                { "berth_no_such_function", (void **) &sym_no_such_function },
        };
        void *handle = NULL;
        const char *e = NULL;

        CHECK(dl_load(&handle, "libc.so.6", symbols, ELEMENTSOF(symbols), &e) == -EOPNOTSUPP);
        CHECK(!handle);
        CHECK(!sym_getppid_ && !sym_no_such_function);
        CHECK(e && strstr(e, "berth_no_such_function"));

        e = NULL;
        CHECK(dl_load(&handle, "libberth-no-such-library.so.7", symbols, 1, &e) == -EOPNOTSUPP);
        CHECK(!handle && !sym_getppid_);
        CHECK(e && strstr(e, "libberth-no-such-library.so.7"));
}

/* A process whose root is no longer the one it started with (as if it had entered a
 * container's tree) loads nothing, not even a library it finds there. */
static void test_refuses_after_the_root_changed(void) {
        char dir[] = "/tmp/test-dl-load.XXXXXX";
        int status = 0;
        pid_t pid;

        if (geteuid() != 0) {
                printf("# skipped: chroot needs root\n");
                return;
        }
        CHECK(mkdtemp(dir));
        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                static const DlSymbol symbols[] = { { "getpid", (void **) &sym_getpid } };
                void *handle = NULL;
                const char *e = NULL;

                sym_getpid = NULL;
                if (chroot(dir) < 0 || chdir("/") < 0)
                        _exit(2);
                _exit(dl_load(&handle, "libc.so.6", symbols, 1, &e) == -EPERM && !handle && !sym_getpid &&
                      e && strstr(e, "root directory") ? 0 : 1);
        }
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        (void) rmdir(dir);
}

int main(void) {
        static const TapCase cases[] = {
                { "resolves_every_symbol_once", test_resolves_every_symbol_once },
                { "all_or_nothing", test_all_or_nothing },
                { "refuses_after_the_root_changed", test_refuses_after_the_root_changed },
        };
        return tap_run(cases, ELEMENTSOF(cases));
}
