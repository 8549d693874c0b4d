/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A tiny TAP emitter for the unit tests: TEST(name) { ... } functions
 * collected in a table, CHECK() records a failure with its line. */

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct TapCase {
        const char *name;
        void (*fn)(void);
} TapCase;

static int tap_failed_checks;

#define CHECK(expr)                                                                           \
        do {                                                                                  \
                if (!(expr)) {                                                                \
                        printf("# %s:%d: check failed: %s\n", __FILE__, __LINE__, #expr);     \
                        tap_failed_checks++;                                                  \
                }                                                                             \
        } while (0)

static inline int tap_run(const TapCase *cases, size_t n) {
        int failed = 0;

        printf("1..%zu\n", n);
        for (size_t i = 0; i < n; i++) {
                int before = tap_failed_checks;
                fflush(stdout);
                cases[i].fn();
                bool ok = tap_failed_checks == before;
                printf("%sok %zu - %s\n", ok ? "" : "not ", i + 1, cases[i].name);
                if (!ok)
                        failed++;
        }
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
