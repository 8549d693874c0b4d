/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "berth-options.h"
#include "berth-register.h"
#include "log.h"
#include "tap.h"
#include "util.h"

static void test_enum_round_trip(void) {
        for (int i = 0; i < _REGISTER_MODE_MAX; i++)
                CHECK(register_mode_from_string(register_mode_to_string(i)) == (RegisterMode) i);
        for (int i = 0; i < _LINK_JOURNAL_MAX; i++)
                CHECK(link_journal_from_string(link_journal_to_string(i)) == (LinkJournal) i);
        CHECK(register_mode_from_string("true") == REGISTER_YES);
        CHECK(register_mode_from_string("0") == REGISTER_NO);
        CHECK(register_mode_from_string("maybe") < 0);
        CHECK(link_journal_from_string("yes") < 0);
        CHECK(link_journal_from_string(NULL) < 0);
        CHECK(register_mode_to_string(_REGISTER_MODE_MAX) == NULL);
        CHECK(link_journal_to_string(-1) == NULL);
        /* zero-initialized Settings mean the defaults */
        CHECK(REGISTER_AUTO == 0 && LINK_JOURNAL_AUTO == 0);
}

static void check_scope(const char *machine, const char *expected) {
        _cleanup_free_ char *n = NULL;
        CHECK(scope_name_for_machine(machine, &n) == 0);
        if (n && !streq(n, expected))
                printf("# scope for '%s': '%s', expected '%s'\n", machine, n, expected);
        CHECK(n && streq(n, expected));
}

static void test_scope_names(void) {
        check_scope("foo", "machine-foo.scope");
        check_scope("my-box", "machine-my\\x2dbox.scope");
        check_scope("a.b_c:d", "machine-a.b_c:d.scope");
        check_scope(".x", "machine-\\x2ex.scope");
        check_scope("Deb12", "machine-Deb12.scope");
}

static void test_properties(void) {
        static const char *const good[] = {
                "MemoryMax=2G", "MemoryMax=infinity", "MemoryHigh=1048576", "MemorySwapMax=0", "TasksMax=100",
                "TasksMax=infinity", "CPUWeight=1", "CPUWeight=10000", "IOWeight=500", "CPUQuota=50%",
                "CPUQuota=200%", "CPUAccounting=yes", "MemoryAccounting=false", "Description=a container",
                "CollectMode=inactive-or-failed", "DevicePolicy=strict", "KillMode=mixed", "TimeoutStopSec=30s",
                "RuntimeMaxSec=infinity", "DeviceAllow=/dev/sda r", "DeviceAllow=char-usb rw", "DeviceAllow=/dev/kvm",
        };
        static const char *const bad[] = {
                "", "=", "MemoryMax", "MemoryMax=", "MemoryMax=2X", "MemoryMax=-1", "MemoryMax=99999999999E",
                "TasksMax=0", "TasksMax=lots", "CPUWeight=0", "CPUWeight=10001", "CPUQuota=50", "CPUQuota=0%",
                "CPUAccounting=perhaps", "Description=", "CollectMode=never", "DevicePolicy=open",
                "KillMode=all", "TimeoutStopSec=soon", "DeviceAllow=sda", "DeviceAllow=/dev/sda x",
                "Delegate=no", "Slice=foo.slice", "Bogus=1", "memorymax=1G",
        };

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                const char *detail = NULL;
                int r = unit_property_check(good[i], &detail);
                if (r < 0)
                        printf("# refused: %s (%s)\n", good[i], strna(detail));
                CHECK(r == 0);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                const char *detail = NULL;
                int r = unit_property_check(bad[i], &detail);
                if (r >= 0)
                        printf("# accepted: %s\n", bad[i]);
                CHECK(r == -EINVAL);
                CHECK(detail != NULL);
        }
}

static void test_options(void) {
        char *argv[] = { "berth", "--register=no", "--keep-unit", "--slice=foo.slice", "--property=MemoryMax=1G",
                         "--property=CPUWeight=20", "--link-journal=try-host", NULL };
        char *bad_slice[] = { "berth", "--slice=foo", NULL };
        char *bad_prop[] = { "berth", "--property=Nope=1", NULL };
        Settings s = { .notify_ready = -1 };

        optind = 0;
        CHECK(parse_argv((int) ELEMENTSOF(argv) - 1, argv, &s) == 1);
        CHECK(s.register_mode == REGISTER_NO);
        CHECK(s.keep_unit);
        CHECK(streq(strempty(s.slice), "foo.slice"));
        CHECK(strv_length(s.properties) == 2);
        CHECK(s.link_journal == LINK_JOURNAL_TRY_HOST);
        settings_free(&s);

        s = (Settings) { .notify_ready = -1 };
        optind = 0;
        CHECK(parse_argv((int) ELEMENTSOF(bad_slice) - 1, bad_slice, &s) < 0);
        settings_free(&s);
        s = (Settings) { .notify_ready = -1 };
        optind = 0;
        CHECK(parse_argv((int) ELEMENTSOF(bad_prop) - 1, bad_prop, &s) < 0);
        settings_free(&s);
}

static void test_open_without_systemd(void) {
        /* --register=no never touches the bus; elsewhere the result depends on the host */
        Settings s = { .machine = (char *) "x", .register_mode = REGISTER_NO };
        Registration *r = (Registration *) 1;

        CHECK(register_open(&s, &r) == 0);
        CHECK(r == NULL);
        CHECK(register_unit(NULL, &s) == 0);
        CHECK(register_machine(NULL, &s, s.uuid, 1, NULL, 0) == 0);
        CHECK(register_close(NULL) == NULL);
        CHECK(register_unit_name(NULL) == NULL);
}

int main(void) {
        static const TapCase cases[] = {
                { "enum round trip", test_enum_round_trip },
                { "scope names", test_scope_names },
                { "unit properties", test_properties },
                { "options", test_options },
                { "no registration", test_open_without_systemd },
        };
        log_set_max_level(LOG_CRIT);
        return tap_run(cases, ELEMENTSOF(cases));
}
