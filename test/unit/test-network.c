/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "berth-network.h"
#include "tap.h"
#include "util.h"

static void test_ifname_valid(void) {
        CHECK(ifname_is_valid("eth0"));
        CHECK(ifname_is_valid("ve-abcdefghijkl"));   /* 15 */
        CHECK(!ifname_is_valid("ve-abcdefghijklm")); /* 16 */
        CHECK(!ifname_is_valid(""));
        CHECK(!ifname_is_valid(NULL));
        CHECK(!ifname_is_valid("."));
        CHECK(!ifname_is_valid(".."));
        CHECK(!ifname_is_valid("a/b"));
        CHECK(!ifname_is_valid("a:b"));
        CHECK(!ifname_is_valid("a b"));
        CHECK(!ifname_is_valid("a\nb"));
        CHECK(!ifname_is_valid("@@garbage@@"));
        CHECK(ifname_is_valid("enp0s3.100"));
        CHECK(ifname_is_valid("br_lan-2"));
}

static void test_ifname_make(void) {
        char a[IFNAMSIZ], b[IFNAMSIZ], c[IFNAMSIZ];

        /* fits: as is */
        network_ifname_make("ve-", "web", a);
        CHECK(streq(a, "ve-web"));
        network_ifname_make("ve-", "abcdefghijkl", a);
        CHECK(streq(a, "ve-abcdefghijkl"));

        /* too long: 15 characters, the prefix and the start kept */
        network_ifname_make("ve-", "abcdefghijklm", a);
        CHECK(strlen(a) == 15 && startswith(a, "ve-abcd"));
        CHECK(ifname_is_valid(a));

        /* two long names that share their start (and their first 13 characters) differ */
        network_ifname_make("ve-", "webserver-production-1", a);
        network_ifname_make("ve-", "webserver-production-2", b);
        CHECK(!streq(a, b));
        CHECK(strlen(a) == 15 && strlen(b) == 15);
        CHECK(startswith(a, "ve-webs") && startswith(b, "ve-webs"));

        /* stable: the same name gives the same interface name, here and on any other host */
        network_ifname_make("ve-", "webserver-production-1", c);
        CHECK(streq(a, c));
        network_ifname_make("vb-", "webserver-production-1", c);
        CHECK(!streq(a, c) && startswith(c, "vb-") && streq(a + 3, c + 3));

        /* many names of one prefix: no two alike */
        char names[200][IFNAMSIZ];
        for (int i = 0; i < 200; i++) {
                char m[64];
                snprintf(m, sizeof m, "container-with-a-long-name-%d", i);
                network_ifname_make("ve-", m, names[i]);
        }
        for (int i = 0; i < 200; i++)
                for (int j = i + 1; j < 200; j++)
                        CHECK(!streq(names[i], names[j]));
}

static void test_pair_parse(void) {
        _cleanup_free_ char *a = NULL, *b = NULL;
        const char *detail = NULL;

        CHECK(network_pair_parse("eth0", &a, &b, &detail) == 0 && streq(a, "eth0") && !b);
        free(a);
        a = NULL;
        CHECK(network_pair_parse("eth0:lan0", &a, &b, &detail) == 0 && streq(a, "eth0") && streq(b, "lan0"));
        free(a);
        free(b);
        a = b = NULL;
        CHECK(network_pair_parse("", &a, &b, &detail) == -EINVAL && detail);
        CHECK(network_pair_parse(":x", &a, &b, &detail) == -EINVAL);
        CHECK(network_pair_parse("x:", &a, &b, &detail) == -EINVAL);
        CHECK(network_pair_parse("a:b:c", &a, &b, &detail) == -EINVAL);
        CHECK(network_pair_parse("abcdefghijklmnop", &a, &b, &detail) == -EINVAL);
        CHECK(network_pair_parse("eth0:abcdefghijklmnop", &a, &b, &detail) == -EINVAL);
        CHECK(!a && !b);
}

int main(void) {
        static const TapCase cases[] = {
                { "interface names the kernel takes", test_ifname_valid },
                { "host-side names: prefixes, shortened and hashed past 15 characters, stable", test_ifname_make },
                { "IF[:NAME] pairs", test_pair_parse },
        };
        return tap_run(cases, ELEMENTSOF(cases));
}
