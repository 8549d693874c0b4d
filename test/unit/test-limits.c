/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Host limits (berth-limits.c): root's inotify instances are counted. TAP. */
#include <sys/inotify.h>
#include <unistd.h>

#include "berth-limits.h"
#include "log.h"
#include "tap.h"
#include "util.h"

/* The walk counts each process's instances, ours exactly: the host-wide sum changes whenever any
 * other root process (another test run, a fleet of guests) opens or closes one, so that is only
 * checked to include ours while we hold them. */
static void test_inotify_count_follows_instances(void) {
        unsigned before, after, total;
        int fds[3];

        before = inotify_instances_of_pid(getpid());
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                fds[i] = inotify_init1(IN_CLOEXEC);
        after = inotify_instances_of_pid(getpid());
        CHECK(after == before + ELEMENTSOF(fds));
        if (geteuid() == 0) {
                CHECK(inotify_instances_of_root(&total) == 0);
                CHECK(total >= after);
        } else
                printf("# our instances are charged to root only when we are root: the host-wide count skipped\n");
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                safe_close(fds[i]);
        CHECK(inotify_instances_of_pid(getpid()) == before);
}

int main(void) {
        static const TapCase cases[] = {
                { "inotify instances of root are counted", test_inotify_count_follows_instances },
        };
        log_set_max_level(LOG_CRIT);
        return tap_run(cases, ELEMENTSOF(cases));
}
