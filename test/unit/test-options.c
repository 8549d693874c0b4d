/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "berth-options.h"
#include "berth-settings.h"
#include "log.h"
#include "tap.h"
#include "util.h"

static int parse(Settings *s, char **argv) {
        int argc = (int) strv_length(argv);
        optind = 0; /* getopt keeps state between calls */
        *s = (Settings) { .notify_ready = -1 };
        return parse_argv(argc, argv, s);
}

#define ARGV(...) ((char *[]) { "berth", __VA_ARGS__, NULL })

static void test_enum_round_trip(void) {
        for (int i = 0; i < _START_MODE_MAX; i++)
                CHECK(start_mode_from_string(start_mode_to_string(i)) == (StartMode) i);
        for (int i = 0; i < _CONSOLE_MODE_MAX; i++)
                CHECK(console_mode_from_string(console_mode_to_string(i)) == (ConsoleMode) i);
        for (int i = 0; i < _VOLATILE_MODE_MAX; i++)
                CHECK(volatile_mode_from_string(volatile_mode_to_string(i)) == (VolatileMode) i);
        for (int i = 0; i < _RESOLV_CONF_MODE_MAX; i++)
                CHECK(resolv_conf_mode_from_string(resolv_conf_mode_to_string(i)) == (ResolvConfMode) i);
        for (int i = 0; i < _TIMEZONE_MODE_MAX; i++)
                CHECK(timezone_mode_from_string(timezone_mode_to_string(i)) == (TimezoneMode) i);
        for (int i = 0; i < _CUSTOM_MOUNT_TYPE_MAX; i++)
                CHECK(custom_mount_type_from_string(custom_mount_type_to_string(i)) == (CustomMountType) i);
        for (int i = 0; i < _BIND_IDMAP_MAX; i++)
                CHECK(bind_idmap_from_string(bind_idmap_to_string(i)) == (BindIdmap) i);
        for (int i = PERSONALITY_NATIVE; i < _PERSONALITY_MAX; i++)
                CHECK(!personality_to_string(i) || personality_from_string(personality_to_string(i)) == (Personality) i);
        CHECK(personality_to_string(PERSONALITY_INHERIT) == NULL && personality_from_string("bogus") < 0);
        CHECK(personality_from_string(NULL) < 0);
#if defined(__x86_64__)
        CHECK(personality_from_string("x86") == PERSONALITY_SECONDARY);
        CHECK(personality_from_string("x86-64") == PERSONALITY_NATIVE);
#endif
        CHECK(console_mode_from_string("bogus") < 0);
        CHECK(volatile_mode_from_string("true") == VOLATILE_YES);
        CHECK(volatile_mode_from_string("0") == VOLATILE_NO);
        CHECK(start_mode_to_string(_START_MODE_MAX) == NULL);
}

static void test_table_consistent(void) {
        for (unsigned i = 0; i < option_table_size; i++) {
                const OptionDef *o = &option_table[i];
                CHECK(o->name && o->help);
                CHECK(o->parse || streq(o->name, "help") || streq(o->name, "version"));
                CHECK(o->arg == OPTION_ARG_NONE || o->metavar);
                for (unsigned j = i + 1; j < option_table_size; j++) {
                        CHECK(!streq(o->name, option_table[j].name));
                        CHECK(!o->short_name || o->short_name != option_table[j].short_name);
                }
        }
}

static void test_basic(void) {
        Settings s;

        CHECK(parse(&s, ARGV("-D", "/srv/tree", "-b", "--", "systemd.unit=rescue.target")) == 1);
        CHECK(streq(s.directory, "/srv/tree"));
        CHECK(s.start_mode == START_BOOT);
        CHECK(strv_length(s.parameters) == 1 && streq(s.parameters[0], "systemd.unit=rescue.target"));
        settings_free(&s);

        /* options end at the command: its own options are left alone */
        CHECK(parse(&s, ARGV("-D", "/t", "-q", "/bin/ls", "-l", "--boot")) == 1);
        CHECK(s.start_mode == START_PID1 && s.quiet);
        CHECK(strv_length(s.parameters) == 3 && streq(s.parameters[2], "--boot"));
        settings_free(&s);

        CHECK(parse(&s, ARGV("-D", "rel/tree", "-M", "web-1", "--hostname=h1", "--private-network", "-P")) == 1);
        CHECK(s.directory[0] == '/' && endswith(s.directory, "/rel/tree"));
        CHECK(streq(s.machine, "web-1") && streq(s.hostname, "h1") && s.private_network);
        CHECK(s.console_mode == CONSOLE_PIPE);
        settings_free(&s);

        /* nspawn's short names */
        CHECK(parse(&s, ARGV("-D", "/t", "-S", "web.slice", "/bin/true")) == 1);
        CHECK(streq(s.slice, "web.slice"));
        settings_free(&s);
}

/* A --console= of one parse must not stay "set" for the next one: without it, the default
 * depends on our stdio (read-only when it is not a terminal, as here). */
static void test_console_default_per_parse(void) {
        Settings s;
        int saved = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3), null = open("/dev/null", O_RDONLY | O_CLOEXEC);

        CHECK(saved >= 0 && null >= 0 && dup2(null, STDIN_FILENO) == STDIN_FILENO);
        CHECK(parse(&s, ARGV("-D", "/t", "--console=passive")) == 1);
        CHECK(s.console_mode == CONSOLE_PASSIVE);
        settings_free(&s);
        CHECK(parse(&s, ARGV("-D", "/t", "--pipe")) == 1);
        CHECK(s.console_mode == CONSOLE_PIPE);
        settings_free(&s);
        CHECK(parse(&s, ARGV("-D", "/t")) == 1);
        CHECK(s.console_mode == CONSOLE_READ_ONLY);
        settings_free(&s);
        CHECK(dup2(saved, STDIN_FILENO) == STDIN_FILENO);
        close(saved);
        close(null);
}

static void test_conflicts(void) {
        Settings s;
        CHECK(parse(&s, ARGV("-b", "-a")) < 0);
        settings_free(&s);
        CHECK(parse(&s, ARGV("-a", "-b")) < 0);
        settings_free(&s);
}

static void test_setenv(void) {
        Settings s;

        setenv("BERTH_TEST_VAR", "from-env", 1);
        CHECK(parse(&s, ARGV("-E", "A=1", "-E", "B=x=y", "-E", "A=2", "-E", "BERTH_TEST_VAR")) == 1);
        CHECK(strv_length(s.environment) == 3);
        CHECK(strv_contains(s.environment, "A=2"));
        CHECK(strv_contains(s.environment, "B=x=y"));
        CHECK(strv_contains(s.environment, "BERTH_TEST_VAR=from-env"));
        settings_free(&s);

        CHECK(parse(&s, ARGV("-E", "=x")) < 0);
        settings_free(&s);
        CHECK(parse(&s, ARGV("-E", "1A=x")) < 0);
        settings_free(&s);
        CHECK(parse(&s, ARGV("-E", "BERTH_TEST_UNSET_VAR")) < 0);
        settings_free(&s);
}

static void test_rlimit(void) {
        Settings s;

        CHECK(parse(&s, ARGV("--rlimit=RLIMIT_NOFILE=1024:2048", "--rlimit=NPROC=infinity")) == 1);
        CHECK(s.rlimit[RLIMIT_NOFILE] && s.rlimit[RLIMIT_NOFILE]->rlim_cur == 1024 &&
              s.rlimit[RLIMIT_NOFILE]->rlim_max == 2048);
        CHECK(s.rlimit[RLIMIT_NPROC] && s.rlimit[RLIMIT_NPROC]->rlim_cur == RLIM_INFINITY);
        settings_free(&s);

        const char *bad[] = { "", "NOFILE", "NOFILE=", "FOO=1", "NOFILE=2:1", "NOFILE=a", "NOFILE=1:", "=1" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char arg[64];
                snprintf(arg, sizeof arg, "--rlimit=%s", bad[i]);
                CHECK(parse(&s, ARGV(arg)) < 0);
                settings_free(&s);
        }
}

static void test_cpu_affinity(void) {
        Settings s;

        CHECK(parse(&s, ARGV("--cpu-affinity=0,2-3")) == 1);
        CHECK(s.cpu_set.set);
        CHECK(CPU_ISSET_S(0, s.cpu_set.allocated, s.cpu_set.set));
        CHECK(!CPU_ISSET_S(1, s.cpu_set.allocated, s.cpu_set.set));
        CHECK(CPU_ISSET_S(3, s.cpu_set.allocated, s.cpu_set.set));
        settings_free(&s);

        const char *bad[] = { "", "x", "3-1", "1-", "-1", "99999" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char arg[64];
                snprintf(arg, sizeof arg, "--cpu-affinity=%s", bad[i]);
                CHECK(parse(&s, ARGV(arg)) < 0);
                settings_free(&s);
        }
}

static void test_values(void) {
        Settings s;

        CHECK(parse(&s, ARGV("--kill-signal=SIGRTMIN+4", "--oom-score-adjust=-500", "--notify-ready=yes",
                             "--no-new-privileges=true", "--volatile", "--uuid=0123456789abcdef0123456789abcdef",
                             "--stop-timeout=5s", "--resolv-conf=bind-host", "--timezone=off")) == 1);
        CHECK(s.kill_signal == SIGRTMIN + 4);
        CHECK(s.oom_score_adjust_set && s.oom_score_adjust == -500);
        CHECK(s.notify_ready == 1 && s.no_new_privileges);
        CHECK(s.volatile_mode == VOLATILE_YES);
        CHECK(s.uuid_set && s.uuid[0] == 0x01 && s.uuid[15] == 0xef);
        CHECK(s.stop_timeout_usec == 5 * USEC_PER_SEC);
        CHECK(s.resolv_conf == RESOLV_CONF_BIND_HOST && s.timezone == TIMEZONE_OFF);
        settings_free(&s);

        const char *bad[] = {
                "--kill-signal=SIGKILL", "--kill-signal=NOPE", "--oom-score-adjust=1001", "--oom-score-adjust=",
                "--notify-ready=maybe", "--volatile=sometimes", "--uuid=xyz",
                "--uuid=00000000000000000000000000000000", "--console=", "--console=tty", "--chdir=relative",
                "--chdir=/a/../b", "--machine=", "--machine=a/b", "--hostname=-x", "--stop-timeout=0",
                "--stop-timeout=soon", "--resolv-conf=yes", "--timezone=utc", "--user=", "--user=a:b",
                "--directory=", "--template=", "--no-such-option",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int r = parse(&s, ARGV((char *) bad[i]));
                if (r >= 0)
                        printf("# accepted: %s\n", bad[i]);
                CHECK(r < 0);
                settings_free(&s);
        }
}

int main(void) {
        static const TapCase cases[] = {
                { "enum round trip", test_enum_round_trip },
                { "option table consistent", test_table_consistent },
                { "basic parsing", test_basic },
                { "console default per parse", test_console_default_per_parse },
                { "conflicting start modes", test_conflicts },
                { "setenv", test_setenv },
                { "rlimit", test_rlimit },
                { "cpu affinity", test_cpu_affinity },
                { "option values", test_values },
        };
        log_set_max_level(LOG_CRIT); /* the bad values log their errors; keep the TAP stream readable */
        return tap_run(cases, ELEMENTSOF(cases));
}
