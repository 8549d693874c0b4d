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

/* An empty or relative element of $LD_LIBRARY_PATH names the working directory, which may be a
 * container's tree: dl_load() searches from / instead. The child runs with LD_LIBRARY_PATH=. in a
 * directory that holds a library of the name it asks for (a copy of libcap): it must not load it. */
static int relative_path_child(void) {
        static int (*sym_cap_free)(void *);
        const DlSymbol symbols[] = { { "cap_free", (void **) &sym_cap_free } };
        void *handle = NULL;
        const char *e = NULL;

        return dl_load(&handle, "libberth-dl-test.so.1", symbols, 1, &e) == -EOPNOTSUPP && !handle ? 0 : 1;
}

static void test_searches_no_relative_library_path(void) {
        char dir[] = "/tmp/test-dl-load.XXXXXX", cmd[256];
        int status = 0;
        pid_t pid;

        CHECK(mkdtemp(dir));
        snprintf(cmd, sizeof cmd, "cp \"$(ldconfig -p | sed -n 's/^.*libcap.so.2 .*=> //p' | head -n1)\" %s/libberth-dl-test.so.1",
                 dir);
        if (system(cmd) != 0) {
                printf("# skipped: no libcap.so.2 to copy\n");
                (void) rmdir(dir);
                return;
        }
        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                char *argv[] = { (char *) "test-dl-load", (char *) "--relative-path-child", NULL };
                char *envp[] = { (char *) "LD_LIBRARY_PATH=.", NULL };

                if (chdir(dir) < 0)
                        _exit(2);
                execve("/proc/self/exe", argv, envp);
                _exit(3);
        }
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        snprintf(cmd, sizeof cmd, "rm -rf -- %s", dir);
        (void) system(cmd);
}

int main(int argc, char *argv[]) {
        static const TapCase cases[] = {
                { "resolves_every_symbol_once", test_resolves_every_symbol_once },
                { "all_or_nothing", test_all_or_nothing },
                { "refuses_after_the_root_changed", test_refuses_after_the_root_changed },
                { "searches_no_relative_library_path", test_searches_no_relative_library_path },
        };

        if (argc > 1 && strcmp(argv[1], "--relative-path-child") == 0)
                return relative_path_child();
        return tap_run(cases, ELEMENTSOF(cases));
}
