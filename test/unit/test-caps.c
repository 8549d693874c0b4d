/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Capability name table, list parsing and nspawn's default set. TAP. */
#include <errno.h>
#include <sched.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "berth-caps.h"
#include "util.h"

static int n_tests, n_failed;

static void check(bool ok, const char *name) {
        n_tests++;
        if (!ok)
                n_failed++;
        printf("%sok %d - %s\n", ok ? "" : "not ", n_tests, name);
}

#define BIT(c) (UINT64_C(1) << (c))

static void test_round_trip(void) {
        bool ok = true;

        for (int c = 0; c <= CAP_LAST_CAP; c++) {
                const char *n = capability_to_name(c);
                char lower[64];

                if (!n || !startswith(n, "CAP_") || capability_from_name(n) != c) {
                        printf("# round trip failed for %d (%s)\n", c, strna(n));
                        ok = false;
                        continue;
                }
                /* lower case, without the prefix */
                snprintf(lower, sizeof lower, "%s", n + 4);
                for (char *p = lower; *p; p++)
                        *p = (char) (*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
                if (capability_from_name(lower) != c) {
                        printf("# '%s' does not parse\n", lower);
                        ok = false;
                }
        }
        check(ok, "every capability name round-trips, with and without CAP_, any case");
}

static void test_names(void) {
        check(streq(strna(capability_to_name(CAP_SYS_ADMIN)), "CAP_SYS_ADMIN") &&
                      streq(strna(capability_to_name(CAP_CHECKPOINT_RESTORE)), "CAP_CHECKPOINT_RESTORE") &&
                      streq(strna(capability_to_name(CAP_CHOWN)), "CAP_CHOWN"),
              "names match the kernel's numbering");
        check(!capability_to_name(-1) && !capability_to_name(CAP_LAST_CAP + 1) && !capability_to_name(63),
              "out-of-range numbers have no name");
        check(capability_from_name("") == -EINVAL && capability_from_name(NULL) == -EINVAL &&
                      capability_from_name("CAP_") == -EINVAL && capability_from_name("CAP_FOO") == -EINVAL &&
                      capability_from_name("all") == -EINVAL && capability_from_name("CAP_SYS_ADMINX") == -EINVAL &&
                      capability_from_name("21") == -EINVAL,
              "garbage names are rejected");
}

static void test_default_set(void) {
        static const int expected[] = {
                CAP_AUDIT_CONTROL, CAP_AUDIT_WRITE, CAP_CHOWN,          CAP_DAC_OVERRIDE,   CAP_DAC_READ_SEARCH,
                CAP_FOWNER,        CAP_FSETID,      CAP_IPC_OWNER,      CAP_KILL,           CAP_LEASE,
                CAP_LINUX_IMMUTABLE, CAP_MKNOD,     CAP_NET_BIND_SERVICE, CAP_NET_BROADCAST, CAP_NET_RAW,
                CAP_SETFCAP,       CAP_SETGID,      CAP_SETPCAP,        CAP_SETUID,         CAP_SYS_ADMIN,
                CAP_SYS_BOOT,      CAP_SYS_CHROOT,  CAP_SYS_NICE,       CAP_SYS_PTRACE,     CAP_SYS_RESOURCE,
                CAP_SYS_TTY_CONFIG,
        };
        uint64_t m = 0;

        for (size_t i = 0; i < ELEMENTSOF(expected); i++)
                m |= BIT(expected[i]);
        check(capability_default_set() == m, "default set is exactly nspawn's 26 capabilities");
        check(!(capability_default_set() & (BIT(CAP_SYS_MODULE) | BIT(CAP_NET_ADMIN) | BIT(CAP_SYS_TIME) |
                                            BIT(CAP_SYS_RAWIO) | BIT(CAP_BPF) | BIT(CAP_MAC_ADMIN))),
              "default set lacks the non-namespaced ones");
}

static void test_all(void) {
        uint64_t all = capability_all();

        check(capability_last_cap() >= CAP_CHECKPOINT_RESTORE || capability_last_cap() >= 36,
              "cap_last_cap is read");
        check((all & BIT(CAP_CHECKPOINT_RESTORE)) && (all & BIT(0)) && (all & capability_default_set()) ==
                      capability_default_set(),
              "all covers every known capability");
}

static void test_parse_list(void) {
        uint64_t m = 0;
        bool all = true;

        check(capability_parse_list("CAP_SYS_MODULE", &m, &all) == 0 && m == BIT(CAP_SYS_MODULE) && !all,
              "parse one name");
        check(capability_parse_list("CAP_SYS_MODULE,cap_net_admin", &m, &all) == 0 &&
                      m == (BIT(CAP_SYS_MODULE) | BIT(CAP_NET_ADMIN)),
              "parse a comma list, any case");
        check(capability_parse_list("CAP_SYS_TIME CAP_SYSLOG", &m, NULL) == 0 &&
                      m == (BIT(CAP_SYS_TIME) | BIT(CAP_SYSLOG)),
              "parse a space list");
        check(capability_parse_list("all", &m, &all) == 0 && all && m == capability_all(), "parse all");
        m = 42;
        check(capability_parse_list("", &m, &all) == -EINVAL && capability_parse_list(",", &m, &all) == -EINVAL &&
                      capability_parse_list("CAP_SYS_ADMIN,CAP_NOPE", &m, &all) == -EINVAL &&
                      capability_parse_list("CAP_SYS_ADMIN;CAP_CHOWN", &m, &all) == -EINVAL && m == 42,
              "reject empty and bad lists without touching the result");
}

/* capability_apply() in a forked child: the bounding set must end up as asked. Needs root. */
static void test_apply(void) {
        uint64_t keep = capability_default_set() & ~BIT(CAP_SYS_ADMIN);
        int status;
        pid_t pid;

        if (geteuid() != 0) {
                n_tests++;
                printf("ok %d - capability_apply # SKIP not root\n", n_tests);
                return;
        }

        pid = fork();
        if (pid == 0) {
                uint64_t before = 0;

                /* The bounding set we run with may lack some already (this VM's lacks one). */
                for (int c = 0; c <= capability_last_cap(); c++)
                        if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) > 0)
                                before |= BIT(c);
                if (capability_apply(keep) < 0)
                        _exit(2);
                for (int c = 0; c <= capability_last_cap(); c++) {
                        int in = prctl(PR_CAPBSET_READ, c, 0, 0, 0);
                        if (in != !!(keep & before & BIT(c)))
                                _exit(3);
                }
                /* CAP_SYS_ADMIN is gone from the effective set too: unshare() needs it. */
                if (unshare(CLONE_NEWUTS) == 0 || errno != EPERM)
                        _exit(4);
                /* a non-root user ends up with nothing */
                if (setresuid(65534, 65534, 65534) < 0)
                        _exit(5);
                if (prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) != 0)
                        _exit(6);
                if (chown("/", 0, 0) == 0 || errno != EPERM)
                        _exit(7);
                _exit(0);
        }
        if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) != 0)
                printf("# child failed at step %d\n", WEXITSTATUS(status));
        check(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "capability_apply drops the bounding and effective sets, setuid clears the rest");
}

int main(void) {
        test_round_trip();
        test_names();
        test_default_set();
        test_all();
        test_parse_list();
        test_apply();
        printf("1..%d\n", n_tests);
        return n_failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
