/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine-name.h"
#include "util.h"

static unsigned n_test = 0, n_failed = 0;

static void ok(int cond, const char *what, const char *arg) {
        n_test++;
        if (!cond)
                n_failed++;
        printf("%sok %u - %s \"", cond ? "" : "not ", n_test, what);
        for (const unsigned char *c = (const unsigned char *) arg; *c; c++)
                printf(*c >= 0x20 && *c < 0x7f && *c != '#' ? "%c" : "\\x%02x", *c);
        printf("\"\n");
}

static void check_from_path(const char *path, int want_r, const char *want) {
        _cleanup_free_ char *name = NULL;
        int r = machine_name_from_path(path, &name);
        ok(r == want_r && (want_r < 0 || (name && streq(name, want))), "from_path", path);
}

int main(void) {
        static const char *const valid[] = {
                "a", "foo", "Foo-Bar", "debian_12", "web.example.com", "a-b", "1", "x.y.z", "0123456789",
                /* 64 characters, HOST_NAME_MAX */
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        };
        static const char *const invalid[] = {
                "", ".", "..", "-x", "x-", ".x", "x.", "a..b", "a/b", "/a", "a b", "a\tb", "a\nb",
                "a:b", "a@b", "a*", "caf\xc3\xa9", "\xe2\x98\x83", "a=b", "a\\b", "$x",
                /* 65 characters */
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        };

        printf("1..%zu\n", ELEMENTSOF(valid) + ELEMENTSOF(invalid) + 1 + 10);
        for (size_t i = 0; i < ELEMENTSOF(valid); i++)
                ok(machine_name_is_valid(valid[i]), "valid", valid[i]);
        for (size_t i = 0; i < ELEMENTSOF(invalid); i++)
                ok(!machine_name_is_valid(invalid[i]), "invalid", invalid[i]);
        ok(!machine_name_is_valid(NULL), "invalid", "(null)");

        check_from_path("/var/lib/machines/foo", 0, "foo");
        check_from_path("/var/lib/machines/foo/", 0, "foo");
        check_from_path("/var/lib/machines/foo//", 0, "foo");
        check_from_path("relative/tree.d", 0, "tree.d");
        check_from_path("bar", 0, "bar");
        check_from_path("/", -EINVAL, NULL);
        check_from_path("", -EINVAL, NULL);
        check_from_path("/srv/my tree", -EINVAL, NULL);
        check_from_path("/srv/..", -EINVAL, NULL);
        check_from_path("/srv/caf\xc3\xa9", -EINVAL, NULL);

        return n_failed > 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
