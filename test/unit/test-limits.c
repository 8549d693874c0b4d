/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Host limits (berth-limits.c): root's inotify instances are counted. TAP. */
#include <sys/inotify.h>
#include <unistd.h>

#include "berth-limits.h"
#include "log.h"
#include "tap.h"
#include "util.h"

static void test_inotify_count_follows_instances(void) {
        unsigned before, after;
        int fds[3];

        if (geteuid() != 0) {
                printf("# our instances are charged to root only when we are root, skipped\n");
                return;
        }
        /* other root processes may open and close theirs meanwhile: look for a rise by ours at
         * least once in a few tries */
        for (int attempt = 0; attempt < 5; attempt++) {
                CHECK(inotify_instances_of_root(&before) == 0);
                for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                        fds[i] = inotify_init1(IN_CLOEXEC);
                CHECK(inotify_instances_of_root(&after) == 0);
                for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                        safe_close(fds[i]);
                if (after == before + ELEMENTSOF(fds))
                        break;
        }
        CHECK(after == before + ELEMENTSOF(fds));
}

int main(void) {
        static const TapCase cases[] = {
                { "inotify instances of root are counted", test_inotify_count_follows_instances },
        };
        log_set_max_level(LOG_CRIT);
        return tap_run(cases, ELEMENTSOF(cases));
}
