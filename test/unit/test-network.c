/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include <netinet/in.h>

#include "berth-network.h"
#include "berth-port.h"
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

static bool port_is(const char *arg, const char *want) {
        char buf[PORT_FORWARD_STRING_MAX];
        const char *detail = NULL;
        PortForward p;

        if (port_forward_parse(arg, &p, &detail) < 0)
                return false;
        port_forward_format(&p, buf);
        return streq(buf, want);
}

static bool port_fails(const char *arg, const char *want_detail) {
        const char *detail = NULL;
        PortForward p;

        return port_forward_parse(arg, &p, &detail) == -EINVAL && detail && strstr(detail, want_detail);
}

static void test_port_parse(void) {
        char t[128];

        CHECK(port_is("80", "tcp:80:80"));
        CHECK(port_is("8080:80", "tcp:8080:80"));
        CHECK(port_is("tcp:8080:80", "tcp:8080:80"));
        CHECK(port_is("udp:53", "udp:53:53"));
        CHECK(port_is("udp:5353:53", "udp:5353:53"));
        CHECK(port_is("tcp:65535:1", "tcp:65535:1"));
        /* the form they are stored in parses to itself */
        CHECK(port_is("udp:53:53", "udp:53:53"));

        CHECK(port_fails("sctp:80", "tcp or udp"));
        CHECK(port_fails("sctp:80:80", "tcp or udp"));
        CHECK(port_fails("TCP:80", "tcp or udp"));
        CHECK(port_fails("0", "1 to 65535"));
        CHECK(port_fails("70000", "1 to 65535"));
        CHECK(port_fails("tcp:80:0", "1 to 65535"));
        CHECK(port_fails("", "expected"));
        CHECK(port_fails("tcp:", "expected"));
        CHECK(port_fails("80:", "expected"));
        CHECK(port_fails(":80", "expected"));
        CHECK(port_fails("-1", "expected"));
        CHECK(port_fails("+80", "expected"));
        CHECK(port_fails("080080", "expected"));
        CHECK(port_fails("8080:80:1", "tcp or udp"));
        CHECK(port_fails("tcp:1:2:3", "expected"));
        CHECK(port_fails(" 80", "expected"));

        port_table_name("web.example-1", t);
        CHECK(streq(t, "berth-web.example-1"));
}

int main(void) {
        static const TapCase cases[] = {
                { "interface names the kernel takes", test_ifname_valid },
                { "host-side names: prefixes, shortened and hashed past 15 characters, stable", test_ifname_make },
                { "IF[:NAME] pairs", test_pair_parse },
                { "--port= values: [tcp|udp:]HOSTPORT[:CONTAINERPORT], ports 1-65535", test_port_parse },
        };
        return tap_run(cases, ELEMENTSOF(cases));
}
