/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Settings files: every key, the errors, the merge with the command line, trust. */
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth-caps.h"
#include "berth-options.h"
#include "berth-register.h"
#include "berth-settings-file.h"
#include "log.h"
#include "tap.h"
#include "util.h"

#include <linux/capability.h>

static bool streq_ptr_safe(const char *a, const char *b) {
        return a && b && streq(a, b);
}

static char *mfree_local(char *p) {
        free(p);
        return NULL;
}

/* Parses TEXT as file "t.berth"; what berth logged (stderr) goes to *ret_log. */
static int parse_text(const char *text, bool trusted, SettingsFile *ret, char **ret_log) {
        char tmpl[] = "/tmp/test-settings-file.XXXXXX";
        int saved, fd, r;
        FILE *f;

        fflush(stderr);
        fd = mkstemp(tmpl);
        if (fd < 0)
                return -errno;
        (void) unlink(tmpl);
        saved = dup(STDERR_FILENO);
        (void) dup2(fd, STDERR_FILENO);

        f = fmemopen((void *) text, strlen(text), "r");
        *ret = (SettingsFile) {};
        r = f ? settings_file_parse(f, "t.berth", trusted, ret) : -ENOMEM;
        if (f)
                fclose(f);

        fflush(stderr);
        (void) dup2(saved, STDERR_FILENO);
        close(saved);
        if (ret_log) {
                char buf[4096] = {};
                ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
                *ret_log = strdup(n > 0 ? buf : "");
        }
        close(fd);
        return r;
}

/* the one error a bad file gives */
static bool fails_with(const char *text, const char *message) {
        _cleanup_(settings_file_done) SettingsFile f = {};
        _cleanup_free_ char *log = NULL;
        int r = parse_text(text, true, &f, &log);
        bool ok = r < 0 && log && strstr(log, message) && strchr(log, '\n') == log + strlen(log) - 1;
        if (!ok)
                printf("# expected an error '%s', got r=%d log='%s'\n", message, r, strna(log));
        return ok;
}

static int parse_cli(Settings *s, char **argv) {
        optind = 0;
        *s = (Settings) { .notify_ready = -1 };
        return parse_argv((int) strv_length(argv), argv, s);
}

#define ARGV(...) ((char *[]) { "berth", __VA_ARGS__, NULL })

static void test_mode_round_trip(void) {
        for (int i = 0; i < _SETTINGS_MODE_MAX; i++)
                CHECK(settings_mode_from_string(settings_mode_to_string(i)) == (SettingsMode) i);
        CHECK(settings_mode_from_string("true") == SETTINGS_MODE_YES);
        CHECK(settings_mode_from_string("0") == SETTINGS_MODE_NO);
        CHECK(settings_mode_from_string("maybe") < 0);
        CHECK(settings_mode_from_string("") < 0);
        CHECK(settings_mode_to_string(_SETTINGS_MODE_MAX) == NULL);
}

static void test_key_table(void) {
        size_t n = settings_keys_count();
        unsigned supported = 0;

        CHECK(n >= 50);
        for (size_t i = 0; i < n; i++) {
                const char *section, *option, *name;
                bool ok, privileged;

                name = settings_key_describe(i, &section, &option, &ok, &privileged);
                CHECK(name && section);
                CHECK(streq(section, "Exec") || streq(section, "Files") || streq(section, "Network"));
                if (option) {
                        const OptionDef *o = option_find(option);
                        CHECK(o);
                        /* the key and the option record the same setting */
                        CHECK(o && o->setting != SETTING_NONE);
                }
                if (ok)
                        supported++;
                else
                        CHECK(!option && !privileged);
                for (size_t j = i + 1; j < n; j++) {
                        const char *s2, *o2;
                        bool a, b;
                        const char *n2 = settings_key_describe(j, &s2, &o2, &a, &b);
                        CHECK(!(streq(name, n2) && streq(section, s2)));
                }
        }
        CHECK(supported >= 35);
        CHECK(settings_key_describe(n, &(const char *) { NULL }, &(const char *) { NULL }, &(bool) { 0 },
                                    &(bool) { 0 }) == NULL);
        CHECK(option_find("settings") && !option_find("no-such-option"));
}

static void test_every_key_parses(void) {
        _cleanup_(settings_file_done) SettingsFile f = {};
        Settings *s = &f.settings;
        const char *text =
                "[Exec]\n"
                "Boot=yes\n"
                "Parameters=--log-level=debug 'a b' \"c d\"\n"
                "Environment=FOO=1 \"BAR=x y\"\n"
                "WorkingDirectory=/srv\n"
                "User=tester\n"
                "Capability=CAP_NET_ADMIN CAP_SYS_TIME\n"
                "DropCapability=CAP_MKNOD\n"
                "NoNewPrivileges=yes\n"
                "KillSignal=SIGTERM\n"
                "MachineID=0123456789abcdef0123456789abcdef\n"
                "NotifyReady=yes\n"
                "SystemCallFilter=@clock\n"
                "SystemCallFilter=~@reboot\n"
                "LimitNOFILE=1024:4096\n"
                "LimitCORE=infinity\n"
                "LimitCPU=10\nLimitFSIZE=10\nLimitDATA=10\nLimitSTACK=10000000\nLimitRSS=10\nLimitAS=infinity\n"
                "LimitNPROC=100\nLimitMEMLOCK=10\nLimitLOCKS=10\nLimitSIGPENDING=10\nLimitMSGQUEUE=10\n"
                "LimitNICE=0\nLimitRTPRIO=0\nLimitRTTIME=10\n"
                "OOMScoreAdjust=-100\n"
                "CPUAffinity=0,1\n"
                "Hostname=filehost\n"
                "ResolvConf=copy-host\n"
                "Timezone=bind\n"
                "Ephemeral=no\n"
                "LinkJournal=try-guest\n"
                "PrivateUsers=1000000:65536\n"
                "SetCredential=one:a\\x20b\n"
                "LoadCredential=two:/etc/os-release\n"
                "SuppressSync=yes\n"
                "PivotRoot=/ostree/deploy/0:/sysroot\n"
#if defined(__x86_64__)
                "Personality=x86\n"
#else
                "Personality=" PERSONALITY_VALUES "\n"
#endif
                "AmbientCapability=CAP_NET_RAW\n"
                "[Files]\n"
                "PrivateUsersOwnership=map\n"
                "ReadOnly=yes\n"
                "Volatile=state\n"
                "Bind=/srv:/mnt\n"
                "BindReadOnly=/etc:/host-etc:norbind,rootidmap\n"
                "TemporaryFileSystem=/scratch:size=10M\n"
                "Inaccessible=/secret\n"
                "Overlay=/a:/b:/c\n"
                "OverlayReadOnly=/a:/b:/d\n"
                "BindUser=alice 'bob'\n"
                "BindUserShell=/bin/zsh\n"
                "[Network]\n"
                "Private=yes\n"
                "VirtualEthernet=yes\n"
                "VirtualEthernetExtra=ex1:in1\n"
                "VirtualEthernetExtra=ex2\n"
                "Interface=eth1 'eth2:lan0'\n"
                "MACVLAN=eth3\n"
                "IPVLAN=eth4:iv0 eth5\n"
                "Bridge=br0\n"
                "Zone=web\n"
                "Port=8080:80\n"
                "Port=udp:53\n";
        int r = parse_text(text, true, &f, NULL);
        CHECK(r == 0);
        if (r < 0)
                return;
        CHECK(s->start_mode == START_BOOT);
        CHECK(strv_length(s->parameters) == 3 && streq(s->parameters[1], "a b") && streq(s->parameters[2], "c d"));
        CHECK(strv_length(s->environment) == 2 && streq(s->environment[1], "BAR=x y"));
        CHECK(streq(s->working_directory, "/srv"));
        CHECK(streq(s->user, "tester"));
        CHECK(s->capability == ((UINT64_C(1) << CAP_NET_ADMIN) | (UINT64_C(1) << CAP_SYS_TIME)));
        CHECK(s->drop_capability == UINT64_C(1) << CAP_MKNOD);
        CHECK(s->no_new_privileges);
        CHECK(s->kill_signal == SIGTERM);
        CHECK(s->uuid_set && s->uuid[0] == 0x01 && s->uuid[15] == 0xef);
        CHECK(s->notify_ready == 1);
        CHECK(strv_contains(s->syscall_allow, "@clock") && strv_contains(s->syscall_deny, "@reboot"));
        CHECK(s->rlimit[RLIMIT_NOFILE] && s->rlimit[RLIMIT_NOFILE]->rlim_cur == 1024 &&
              s->rlimit[RLIMIT_NOFILE]->rlim_max == 4096);
        CHECK(s->rlimit[RLIMIT_CORE] && s->rlimit[RLIMIT_CORE]->rlim_cur == RLIM_INFINITY);
        for (int i = 0; i < RLIMIT_NLIMITS; i++)
                CHECK(s->rlimit[i]);
        CHECK(s->oom_score_adjust_set && s->oom_score_adjust == -100);
        CHECK(s->cpu_set.set && CPU_ISSET_S(1, s->cpu_set.allocated, s->cpu_set.set));
        CHECK(streq(s->hostname, "filehost"));
        CHECK(s->resolv_conf == RESOLV_CONF_COPY_HOST);
        CHECK(s->timezone == TIMEZONE_BIND);
        CHECK(!s->ephemeral);
        CHECK(s->link_journal == link_journal_from_string("try-guest"));
        CHECK(s->read_only);
        CHECK(s->volatile_mode == VOLATILE_STATE);
        CHECK(s->n_custom_mounts == 6);
        CHECK(s->n_custom_mounts > 1 && s->custom_mounts[0].idmap == BIND_NOIDMAP &&
              s->custom_mounts[1].idmap == BIND_ROOTIDMAP && !s->custom_mounts[1].recursive &&
              s->custom_mounts[1].read_only);
        CHECK(s->private_network);
        CHECK(s->network_veth);
        CHECK(strv_length(s->network_veth_extra) == 2 && streq(s->network_veth_extra[0], "ex1:in1"));
        CHECK(strv_length(s->network_interfaces) == 2 && streq(s->network_interfaces[1], "eth2:lan0"));
        CHECK(strv_length(s->network_macvlan) == 1 && strv_length(s->network_ipvlan) == 2);
        CHECK(streq(s->network_bridge, "br0") && streq(s->network_zone, "web"));
        CHECK(strv_length(s->ports) == 2 && streq(s->ports[0], "tcp:8080:80") && streq(s->ports[1], "udp:53:53"));
        CHECK(s->userns_mode == USERNS_FIXED && s->uid_range.start == 1000000 && s->uid_range.count == 65536);
        CHECK(s->n_credentials == 2 && streq(s->credentials[0].id, "one") && s->credentials[0].size == 3 &&
              memcmp(s->credentials[0].data, "a b", 3) == 0 && streq(s->credentials[1].id, "two") &&
              s->credentials[1].size > 0);
        CHECK(s->suppress_sync);
        CHECK(s->personality != PERSONALITY_INHERIT);
        CHECK(strv_length(s->pivot_root) == 2 && streq(s->pivot_root[0], "/ostree/deploy/0") &&
              streq(s->pivot_root[1], "/sysroot"));
        CHECK(s->ambient_capability == UINT64_C(1) << CAP_NET_RAW);
        CHECK(s->userns_ownership == USERNS_OWNERSHIP_MAP && s->userns_ownership_set);
        CHECK(strv_length(s->bind_users) == 2 && streq(s->bind_users[1], "bob"));
        CHECK(streq_ptr_safe(s->bind_user_shell, "/bin/zsh") && !s->bind_user_shell_copy);
        for (SettingKind k = SETTING_START_MODE; k < _SETTING_KIND_MAX; k++)
                CHECK(f.set & SETTING_MASK(k));
}

static void test_process_two_and_booleans(void) {
        _cleanup_(settings_file_done) SettingsFile f = {}, g = {};
        CHECK(parse_text("[Exec]\nProcessTwo=on\n[Network]\nPrivate=false\n[Files]\nReadOnly=0\n", true, &f, NULL) == 0);
        CHECK(f.settings.start_mode == START_PID2);
        CHECK(!f.settings.private_network && !f.settings.read_only);
        CHECK(f.set & SETTING_MASK(SETTING_PRIVATE_NETWORK));
        /* Boot=no after Boot=yes: back to a command as PID 1 */
        CHECK(parse_text("[Exec]\nBoot=yes\nBoot=no\nEphemeral=yes\n", true, &g, NULL) == 0);
        CHECK(g.settings.start_mode == START_PID1);
        CHECK(g.settings.ephemeral);
}

static void test_errors_name_file_line_and_key(void) {
        CHECK(fails_with("[Exec]\nBoot=maybe\n", "t.berth:2: Invalid value for Boot=: 'maybe' (expected a boolean)."));
        CHECK(fails_with("[Exec\n", "t.berth:1: Invalid section header '[Exec'."));
        CHECK(fails_with("Boot=yes\n", "t.berth:1: Key 'Boot' is outside of any section."));
        CHECK(fails_with("[Exec]\n\nBoot\n", "t.berth:3: Expected KEY=VALUE or [SECTION], got 'Boot'."));
        CHECK(fails_with("[Exec]\n=yes\n", "t.berth:2: Assignment without a key."));
        CHECK(fails_with("[Exec]\nBoot=yes\nProcessTwo=yes\n",
                         "t.berth:3: Invalid value for ProcessTwo=: 'yes' (cannot be combined with Boot=yes)."));
        CHECK(fails_with("[Files]\nVolatile=sometimes\n", "t.berth:2: Invalid value for Volatile=: 'sometimes'"));
        CHECK(fails_with("[Exec]\nResolvConf=bogus\n", "(expected one of: off copy-host"));
        CHECK(fails_with("[Exec]\nHostname=bad name\n", "t.berth:2: Invalid value for Hostname=: 'bad name' (expected a valid host name"));
        CHECK(fails_with("[Exec]\nKillSignal=SIGKILL\n", "Invalid value for KillSignal=: 'SIGKILL'"));
        CHECK(fails_with("[Exec]\nLimitNOFILE=lots\n", "t.berth:2: Invalid value for LimitNOFILE=: 'lots'"));
        CHECK(fails_with("[Exec]\nOOMScoreAdjust=5000\n", "expected an integer from -1000 to 1000"));
        CHECK(fails_with("[Exec]\nCapability=CAP_NOPE\n", "Invalid value for Capability=: 'CAP_NOPE'"));
        CHECK(fails_with("[Exec]\nSystemCallFilter=nosuchcall\n", "unknown system call or group 'nosuchcall'"));
        CHECK(fails_with("[Exec]\nMachineID=xyz\n", "Invalid value for MachineID=: 'xyz' (expected a UUID)."));
        CHECK(fails_with("[Exec]\nWorkingDirectory=rel\n", "Invalid value for WorkingDirectory=: 'rel'"));
        CHECK(fails_with("[Exec]\nParameters=\"open\n", "(a quote is not closed)."));
        /* a bare name would copy berth's own environment into the container */
        CHECK(fails_with("[Exec]\nEnvironment=PATH\n", "Invalid value for Environment=: 'PATH' (expected VAR=VALUE)."));
        CHECK(fails_with("[Files]\nBind=relative:/mnt\n", "(host paths in a settings file must be absolute)."));
        CHECK(fails_with("[Files]\nBind=/a:/b:upmap\n", "Invalid value for Bind=: '/a:/b:upmap'"));
        CHECK(fails_with("[Exec]\nBoot=yes\\\n", "ends in a line continuation"));
        CHECK(fails_with("[Exec]\nBoot=\\\nmaybe\n", "t.berth:2: Invalid value for Boot=: 'maybe'"));
}

/* parses TEXT (trusted), which must succeed with exactly WARNING as its one line of output */
static bool warns(const char *text, const char *warning) {
        _cleanup_(settings_file_done) SettingsFile f = {};
        _cleanup_free_ char *log = NULL;
        int r = parse_text(text, true, &f, &log);
        bool ok = r == 0 && log && strstr(log, warning) && strchr(log, '\n') == log + strlen(log) - 1;
        if (!ok)
                printf("# expected success with the warning '%s', got r=%d log='%s'\n", warning, r, strna(log));
        return ok;
}

static void test_unknown_keys_and_sections_warn(void) {
        _cleanup_(settings_file_done) SettingsFile f = {};
        _cleanup_free_ char *log = NULL;

        CHECK(warns("# c\n[Exec]\nFoo=1\n", "t.berth:3: Unknown key 'Foo' in section [Exec], ignoring."));
        CHECK(warns("[Exec]\nReadOnly=yes\n", "t.berth:2: Unknown key 'ReadOnly' in section [Exec], ignoring."));
        CHECK(warns("[Nope]\nA=b\nC=d\n", "t.berth:1: Unknown section [Nope], ignoring its keys."));
        /* the rest of the file still counts */
        CHECK(parse_text("[Exec]\nFoo=1\nBoot=yes\n[Later]\nX=1\n[Files]\nReadOnly=yes\n", true, &f, &log) == 0);
        CHECK(f.settings.start_mode == START_BOOT);
        CHECK(f.settings.read_only);
        CHECK(log && strstr(log, "'Foo'") && strstr(log, "[Later]"));
}

static void test_unsupported_keys(void) {
        /* ignoring these would take isolation away: refused */
        CHECK(fails_with("[Network]\nPort=sctp:80\n", "t.berth:2: Invalid value for Port=: 'sctp:80' (the protocol must be tcp or udp)."));
        CHECK(fails_with("[Network]\nPort=0\n", "Invalid value for Port=: '0' (ports are 1 to 65535)."));
        CHECK(fails_with("[Network]\nZone=averyveryverylongzone\n", "Invalid value for Zone="));
        CHECK(fails_with("[Network]\nInterface=eth0 a:b:c\n", "Invalid value for Interface="));
        CHECK(fails_with("[Exec]\nPrivateUsers=0x80000\n", "Invalid value for PrivateUsers=: '0x80000'"));
        /* these only give the guest less, or change no boundary: a warning */
        CHECK(warns("[Files]\nPrivateUsersChown=yes\n", "Key 'PrivateUsersChown' in section [Files] is not supported by berth yet, ignoring."));

        /* what berth does anyway, or nothing at all, is fine */
        _cleanup_(settings_file_done) SettingsFile f = {};
        CHECK(parse_text("[Network]\nPort=\n[Exec]\n"
                         "[Files]\nPrivateUsersChown=no\n",
                         false, &f, NULL) == 0);
        CHECK(f.set == 0);
}

static void test_syntax(void) {
        _cleanup_(settings_file_done) SettingsFile f = {};
        _cleanup_free_ char *log = NULL;
        const char *text =
                "# comment\n"
                "; another\n"
                "\n"
                "   [Exec]   \n"
                "  Hostname  =  first  \n"
                "Hostname=second\n"              /* a scalar: the last one wins */
                "Environment=A=1\n"
                "Environment=B=2 \\\n"           /* continued */
                "  C=3\n"
                "Environment=A=4\n"              /* the same variable again: the later value */
                "Capability=CAP_SYS_TIME\n"
                "Capability=\n"                  /* empty: the list so far is gone */
                "Capability=CAP_NET_RAW\n"
                "LimitNOFILE=10\n"
                "LimitNOFILE=\n"
                "[X-Vendor]\n"                   /* extensions are ignored */
                "Anything=goes\n"
                "[Files]\n"
                "X-Note=ignored too\n"
                "Bind=/a:/a\n"
                "BindReadOnly=/b:/b\n"
                "Bind=\n"                        /* resets Bind= only, not BindReadOnly= */
                "Bind=/c:/c\n"
                "Volatile=yes\n"
                "Volatile=\n";                   /* back to unset */
        int r = parse_text(text, true, &f, &log);
        CHECK(r == 0);
        if (r < 0) {
                printf("# %s", log);
                return;
        }
        CHECK(streq(f.settings.hostname, "second"));
        CHECK(strv_length(f.settings.environment) == 3);
        CHECK(strv_contains(f.settings.environment, "A=4") && strv_contains(f.settings.environment, "C=3"));
        CHECK(f.settings.capability == UINT64_C(1) << CAP_NET_RAW);
        CHECK(!f.settings.rlimit[RLIMIT_NOFILE]);
        CHECK(f.settings.n_custom_mounts == 2);
        CHECK(f.settings.n_custom_mounts == 2 && f.settings.custom_mounts[0].read_only &&
              streq(f.settings.custom_mounts[1].destination, "/c"));
        CHECK(!(f.set & SETTING_MASK(SETTING_VOLATILE)));
        CHECK(isempty(log));
}

/* ---- merge ---- */

static void load(Settings *s, SettingsFile *f, const char *text, bool trusted, bool override) {
        int r = parse_text(text, trusted, f, NULL);
        CHECK(r == 0);
        if (r == 0)
                CHECK(settings_merge(s, f, override) == 0);
}

static void test_scalars_command_line_wins(void) {
        _cleanup_(settings_free) Settings s = {};
        _cleanup_(settings_file_done) SettingsFile f = {};
        CHECK(parse_cli(&s, ARGV("--hostname=cli", "--read-only", "--kill-signal=SIGINT")) == 1);
        CHECK(s.cli_set == (SETTING_MASK(SETTING_HOSTNAME) | SETTING_MASK(SETTING_READ_ONLY) |
                            SETTING_MASK(SETTING_KILL_SIGNAL)));
        load(&s, &f,
             "[Exec]\nHostname=file\nUser=tester\nKillSignal=SIGTERM\nNotifyReady=yes\n[Files]\nReadOnly=no\n",
             true, false);
        CHECK(streq(s.hostname, "cli"));
        CHECK(s.read_only);
        CHECK(s.kill_signal == SIGINT);
        /* what the command line did not say comes from the file */
        CHECK(streq_ptr_safe(s.user, "tester"));
        CHECK(s.notify_ready == 1);
}

static void test_scalars_override(void) {
        _cleanup_(settings_free) Settings s = {};
        _cleanup_(settings_file_done) SettingsFile f = {};
        CHECK(parse_cli(&s, ARGV("--hostname=cli", "--read-only", "--volatile=state")) == 1);
        load(&s, &f, "[Exec]\nHostname=file\n[Files]\nReadOnly=no\n", true, true);
        CHECK(streq(s.hostname, "file"));
        CHECK(!s.read_only);
        CHECK(s.volatile_mode == VOLATILE_STATE); /* the file did not say */
}

/* The network settings go together, as in nspawn: berth@.service's --network-veth with
 * --settings=override gives way to whatever the file's [Network] says. */
static void test_network_is_one_setting(void) {
        {
                _cleanup_(settings_free) Settings s = {};
                _cleanup_(settings_file_done) SettingsFile f = {};
                CHECK(parse_cli(&s, ARGV("--network-veth")) == 1);
                load(&s, &f, "[Network]\nVirtualEthernet=no\n", true, true);
                CHECK(!s.network_veth && !s.private_network);
        }
        {
                /* a bridge replaces the command line's veth, not adds to it */
                _cleanup_(settings_free) Settings s = {};
                _cleanup_(settings_file_done) SettingsFile f = {};
                CHECK(parse_cli(&s, ARGV("--network-veth", "--network-veth-extra=a:b")) == 1);
                load(&s, &f, "[Network]\nBridge=br0\n", true, true);
                CHECK(!s.network_veth && streq_ptr_safe(s.network_bridge, "br0") && strv_isempty(s.network_veth_extra));
        }
        {
                /* without override, a command line that names the network keeps the file's out */
                _cleanup_(settings_free) Settings s = {};
                _cleanup_(settings_file_done) SettingsFile f = {};
                CHECK(parse_cli(&s, ARGV("--network-veth")) == 1);
                load(&s, &f, "[Network]\nZone=web\nInterface=eth1\n", true, false);
                CHECK(s.network_veth && !s.network_zone && strv_isempty(s.network_interfaces));
        }
        {
                /* a file without [Network] network keys leaves the command line's; Port= is not one */
                _cleanup_(settings_free) Settings s = {};
                _cleanup_(settings_file_done) SettingsFile f = {};
                CHECK(parse_cli(&s, ARGV("--network-veth")) == 1);
                load(&s, &f, "[Exec]\nHostname=file\n[Network]\nPort=8080:80\n", true, true);
                CHECK(s.network_veth && strv_length(s.ports) == 1);
        }
        {
                /* untrusted: the network keys are ignored, the command line's veth stays */
                _cleanup_(settings_free) Settings s = {};
                _cleanup_(settings_file_done) SettingsFile f = {};
                CHECK(parse_cli(&s, ARGV("--network-veth")) == 1);
                CHECK(parse_text("[Network]\nVirtualEthernet=no\n", false, &f, NULL) == 0);
                CHECK(settings_merge(&s, &f, true) == 0);
                CHECK(s.network_veth);
        }
}

static void test_lists_merge(void) {
        _cleanup_(settings_free) Settings s = {};
        _cleanup_(settings_file_done) SettingsFile f = {};
        CHECK(parse_cli(&s, ARGV("--bind=/cli:/cli", "-E", "A=cli", "-E", "C=cli", "--capability=CAP_SYS_TIME",
                                 "--drop-capability=CAP_MKNOD", "--system-call-filter=~@swap",
                                 "--rlimit=RLIMIT_NOFILE=7")) == 1);
        load(&s, &f,
             "[Exec]\nEnvironment=A=file B=file\nCapability=CAP_NET_RAW\nDropCapability=CAP_CHOWN\n"
             "SystemCallFilter=@clock\nLimitNOFILE=100\nLimitNPROC=50\n[Files]\nBind=/file:/file\n",
             true, false);
        /* the file's entries first, then the command line's */
        CHECK(s.n_custom_mounts == 2);
        CHECK(s.n_custom_mounts == 2 && streq(s.custom_mounts[0].destination, "/file") &&
              streq(s.custom_mounts[1].destination, "/cli"));
        CHECK(strv_length(s.environment) == 3);
        CHECK(s.environment && streq(s.environment[0], "A=cli") && streq(s.environment[1], "B=file") &&
              streq(s.environment[2], "C=cli"));
        CHECK(s.capability == ((UINT64_C(1) << CAP_SYS_TIME) | (UINT64_C(1) << CAP_NET_RAW)));
        CHECK(s.drop_capability == ((UINT64_C(1) << CAP_MKNOD) | (UINT64_C(1) << CAP_CHOWN)));
        CHECK(strv_contains(s.syscall_allow, "@clock") && strv_contains(s.syscall_deny, "@swap"));
        /* per resource: the command line's NOFILE, the file's NPROC */
        CHECK(s.rlimit[RLIMIT_NOFILE] && s.rlimit[RLIMIT_NOFILE]->rlim_cur == 7);
        CHECK(s.rlimit[RLIMIT_NPROC] && s.rlimit[RLIMIT_NPROC]->rlim_cur == 50);
}

static void test_lists_merge_override(void) {
        _cleanup_(settings_free) Settings s = {};
        _cleanup_(settings_file_done) SettingsFile f = {};
        CHECK(parse_cli(&s, ARGV("--bind=/cli:/cli", "-E", "A=cli", "--rlimit=RLIMIT_NOFILE=7")) == 1);
        load(&s, &f, "[Exec]\nEnvironment=A=file\nLimitNOFILE=100\n[Files]\nBind=/file:/file\n", true, true);
        CHECK(s.n_custom_mounts == 2); /* still merged */
        CHECK(strv_length(s.environment) == 1 && streq(s.environment[0], "A=file"));
        CHECK(s.rlimit[RLIMIT_NOFILE] && s.rlimit[RLIMIT_NOFILE]->rlim_cur == 100);
}

/* Mount keys in the file, none on the command line: the merge starts from an empty list (it once
 * did memcpy(l, NULL, 0), undefined behaviour that the sanitizer lane's UBSan stops at). */
static void test_file_mounts_without_cli_mounts(void) {
        static const char text[] =
                "[Files]\nBind=/file:/file\nBindReadOnly=/ro:/ro\nTemporaryFileSystem=/tmpfs\n"
                "Inaccessible=/gone\nOverlay=/lower:/upper:/ov\n";

        for (int override = 0; override <= 1; override++) {
                _cleanup_(settings_free) Settings s = {};
                _cleanup_(settings_file_done) SettingsFile f = {};

                CHECK(parse_cli(&s, ARGV("--hostname=cli")) == 1);
                CHECK(s.n_custom_mounts == 0 && !s.custom_mounts);
                load(&s, &f, text, true, override);
                CHECK(s.n_custom_mounts == 5);
                CHECK(s.n_custom_mounts == 5 && streq(s.custom_mounts[0].destination, "/file") &&
                      s.custom_mounts[1].read_only && streq(s.custom_mounts[4].destination, "/ov"));
                CHECK(f.settings.n_custom_mounts == 0 && !f.settings.custom_mounts);
        }
        /* and the other way round: command-line mounts, a file without any */
        {
                _cleanup_(settings_free) Settings s = {};
                _cleanup_(settings_file_done) SettingsFile f = {};

                CHECK(parse_cli(&s, ARGV("--bind=/cli:/cli")) == 1);
                load(&s, &f, "[Exec]\nHostname=file\n", true, false);
                CHECK(s.n_custom_mounts == 1 && streq(s.custom_mounts[0].destination, "/cli"));
        }
}

static void test_command_outranks_boot(void) {
        _cleanup_(settings_free) Settings s = {}, t = {};
        _cleanup_(settings_file_done) SettingsFile f = {}, g = {};
        const char *text = "[Exec]\nBoot=yes\nParameters=--unit=rescue.target\n";

        CHECK(parse_cli(&s, ARGV("-D", "/tmp", "/bin/sh", "-c", "true")) == 1);
        load(&s, &f, text, true, false);
        CHECK(s.start_mode == START_PID1);
        CHECK(strv_length(s.parameters) == 3 && streq(s.parameters[0], "/bin/sh"));

        /* no command: the file's */
        CHECK(parse_cli(&t, ARGV("-D", "/tmp")) == 1);
        load(&t, &g, text, true, false);
        CHECK(t.start_mode == START_BOOT);
        CHECK(strv_length(t.parameters) == 1 && streq(t.parameters[0], "--unit=rescue.target"));
}

/* ---- trust ---- */

static unsigned count(const char *haystack, const char *needle) {
        unsigned n = 0;
        for (const char *p = haystack; p && (p = strstr(p, needle)); p++)
                n++;
        return n;
}

static void test_untrusted_privileged_keys_are_ignored(void) {
        _cleanup_(settings_file_done) SettingsFile f = {};
        _cleanup_free_ char *log = NULL;
        const char *text =
                "[Exec]\n"
                "Hostname=h\n"
                "Capability=CAP_SYS_ADMIN\n"
                "DropCapability=CAP_MKNOD\n"
                "SystemCallFilter=@clock\n"
                "SystemCallFilter=~@reboot\n"
                "LimitNOFILE=100\n"
                "MachineID=0123456789abcdef0123456789abcdef\n"
                "OOMScoreAdjust=-1000\n"
                "CPUAffinity=0\n"
                "Ephemeral=yes\n"
                "LinkJournal=host\n"
                "PrivateUsers=identity\n"
                "[Files]\n"
                "Bind=/etc:/mnt\n"
                "Bind=/root:/mnt2\n"
                "Inaccessible=/x\n"
                "ReadOnly=yes\n"
                "[Network]\n"
                "Private=yes\n"
                "Port=8080:80\n"
                "[Exec]\n"
                "AmbientCapability=CAP_NET_RAW\n"
                "[Files]\n"
                "BindUser=alice\n"
                "BindUserShell=yes\n";
        CHECK(parse_text(text, false, &f, &log) == 0);
        /* a host user's home is a host directory; its shell inside is not */
        CHECK(strv_isempty(f.settings.bind_users) && count(log, "Ignoring BindUser= in untrusted t.berth (line 25)") == 1);
        CHECK(f.settings.bind_user_shell_copy);
        CHECK(streq_ptr_safe(f.settings.hostname, "h"));
        CHECK(f.settings.capability == 0);
        CHECK(f.settings.ambient_capability == 0);
        CHECK(count(log, "Ignoring AmbientCapability= in untrusted t.berth (line 23)") == 1);
        CHECK(f.settings.drop_capability == UINT64_C(1) << CAP_MKNOD);
        CHECK(strv_isempty(f.settings.syscall_allow) && strv_contains(f.settings.syscall_deny, "@reboot"));
        CHECK(!f.settings.rlimit[RLIMIT_NOFILE]);
        CHECK(!f.settings.uuid_set && !f.settings.oom_score_adjust_set && !f.settings.cpu_set.set);
        CHECK(!f.settings.ephemeral && !f.settings.private_network);
        CHECK(strv_isempty(f.settings.ports));
        CHECK(count(log, "Ignoring Port= in untrusted t.berth (line 21)") == 1);
        CHECK(f.settings.n_custom_mounts == 0);
        CHECK(f.settings.read_only);
        CHECK(!(f.set & (SETTING_MASK(SETTING_CAPABILITY) | SETTING_MASK(SETTING_CUSTOM_MOUNTS) |
                         SETTING_MASK(SETTING_PRIVATE_NETWORK) | SETTING_MASK(SETTING_UUID))));
        /* once per key, with the first line, at warning level */
        CHECK(count(log, "Ignoring Bind= in untrusted t.berth (line 15): pass --settings=trusted to allow it.") == 1);
        CHECK(count(log, "Ignoring Bind=") == 1);
        CHECK(count(log, "Ignoring Capability= in untrusted t.berth (line 3)") == 1);
        CHECK(count(log, "Ignoring SystemCallFilter= in untrusted t.berth (line 5)") == 1);
        CHECK(count(log, "Ignoring Inaccessible=") == 1);
        CHECK(count(log, "Ignoring Private=") == 1);
        CHECK(count(log, "Ignoring LimitNOFILE=") == 1);
        CHECK(count(log, "Ignoring MachineID=") == 1);
        CHECK(count(log, "Ignoring OOMScoreAdjust=") == 1);
        CHECK(count(log, "Ignoring CPUAffinity=") == 1);
        CHECK(count(log, "Ignoring Ephemeral=") == 1);
        CHECK(count(log, "Ignoring LinkJournal=") == 1);
        CHECK(count(log, "Ignoring PrivateUsers= in untrusted t.berth (line 13)") == 1);
        CHECK(f.settings.userns_mode == USERNS_NO && !(f.set & SETTING_MASK(SETTING_PRIVATE_USERS)));
        CHECK(count(log, "Ignoring") == 15);
        CHECK(count(log, "DropCapability") == 0 && count(log, "ReadOnly") == 0 && count(log, "Hostname") == 0);
}

/* a user namespace only takes away: pick and yes count from anywhere, what weakens it does not */
static void test_untrusted_private_users(void) {
        static const struct {
                const char *value;
                UserNamespaceMode want;
        } cases[] = {
                { "pick", USERNS_PICK }, { "yes", USERNS_YES },     { "no", USERNS_NO },
                { "identity", USERNS_NO }, { "524288:65536", USERNS_NO },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(settings_file_done) SettingsFile f = {};
                _cleanup_free_ char *text = strjoin("[Exec]\nPrivateUsers=", cases[i].value, "\n"), *log = NULL;
                CHECK(parse_text(text, false, &f, &log) == 0);
                CHECK(f.settings.userns_mode == cases[i].want);
                CHECK(!!(f.set & SETTING_MASK(SETTING_PRIVATE_USERS)) == (cases[i].want != USERNS_NO));
                CHECK(count(log, "Ignoring PrivateUsers=") == (cases[i].want == USERNS_NO));
        }
        /* PrivateUsersOwnership=: chown rewrites the tree on disk, only from a trusted file */
        static const struct {
                const char *value;
                bool counts;
        } owners[] = { { "map", true }, { "auto", true }, { "off", true }, { "chown", false } };
        for (size_t i = 0; i < ELEMENTSOF(owners); i++) {
                _cleanup_(settings_file_done) SettingsFile f = {};
                _cleanup_free_ char *text = strjoin("[Files]\nPrivateUsersOwnership=", owners[i].value, "\n"),
                                    *log = NULL;
                CHECK(parse_text(text, false, &f, &log) == 0);
                CHECK(!!(f.set & SETTING_MASK(SETTING_PRIVATE_USERS_OWNERSHIP)) == owners[i].counts);
                CHECK(count(log, "Ignoring PrivateUsersOwnership=") == !owners[i].counts);
        }
        _cleanup_(settings_file_done) SettingsFile t = {};
        CHECK(parse_text("[Files]\nPrivateUsersOwnership=chown\n", true, &t, NULL) == 0);
        CHECK(t.settings.userns_ownership == USERNS_OWNERSHIP_CHOWN);
        /* a later no after a pick in the same file is ignored too */
        _cleanup_(settings_file_done) SettingsFile g = {};
        CHECK(parse_text("[Exec]\nPrivateUsers=pick\nPrivateUsers=no\n", false, &g, NULL) == 0);
        CHECK(g.settings.userns_mode == USERNS_PICK);
}

static void test_untrusted_bad_value_is_still_an_error(void) {
        CHECK(fails_with("[Files]\nBind=/a:relative\n", "t.berth:2: Invalid value for Bind=: '/a:relative'"));
        _cleanup_(settings_file_done) SettingsFile f = {};
        _cleanup_free_ char *log = NULL;
        CHECK(parse_text("[Exec]\nCapability=CAP_NOPE\n", false, &f, &log) < 0);
        CHECK(count(log, "t.berth:2: Invalid value for Capability=") == 1 && count(log, "Ignoring") == 0);
}

static void test_trusted_keeps_everything(void) {
        _cleanup_(settings_file_done) SettingsFile f = {};
        _cleanup_free_ char *log = NULL;
        CHECK(parse_text("[Exec]\nCapability=CAP_SYS_TIME\n[Files]\nBind=/etc:/mnt\n[Network]\nPrivate=yes\n", true,
                         &f, &log) == 0);
        CHECK(f.settings.capability && f.settings.n_custom_mounts == 1 && f.settings.private_network);
        CHECK(isempty(log));
}

/* ---- finding the file ---- */

static void touch_file(const char *dir, const char *name) {
        _cleanup_free_ char *p = strjoin(dir, "/", name);
        CHECK(p && write_string_file(p, "[Exec]\n", O_CREAT | O_TRUNC) >= 0);
}

static void test_find(void) {
        char top[] = "/tmp/test-settings-find.XXXXXX";
        _cleanup_free_ char *etc = NULL, *run = NULL, *images = NULL, *tree = NULL, *path = NULL, *env = NULL;
        bool trusted = true;

        CHECK(mkdtemp(top));
        etc = strjoin(top, "/etc");
        run = strjoin(top, "/run");
        images = strjoin(top, "/machines");
        tree = strjoin(images, "/box/");
        env = strjoin(etc, ":", run);
        CHECK(etc && run && images && tree && env);
        CHECK(mkdir_p(etc, 0755) >= 0 && mkdir_p(run, 0755) >= 0 && mkdir_p(tree, 0755) >= 0);
        CHECK(setenv("BERTH_SETTINGS_PATH", env, 1) == 0);

        CHECK(settings_file_find("box", tree, &path, &trusted) == 0);

        /* .nspawn next to the image: untrusted */
        touch_file(images, "box.nspawn");
        CHECK(settings_file_find("box", tree, &path, &trusted) == 1);
        CHECK(path && endswith(path, "/machines/box.nspawn") && !trusted);
        path = mfree_local(path);

        /* a .nspawn in a trusted place comes first */
        touch_file(run, "box.nspawn");
        CHECK(settings_file_find("box", tree, &path, &trusted) == 1);
        CHECK(path && endswith(path, "/run/box.nspawn") && trusted);
        path = mfree_local(path);

        /* any .berth comes before any .nspawn, even an untrusted one */
        touch_file(images, "box.berth");
        CHECK(settings_file_find("box", tree, &path, &trusted) == 1);
        CHECK(path && endswith(path, "/machines/box.berth") && !trusted);
        path = mfree_local(path);

        /* /etc before /run before next to the image */
        touch_file(run, "box.berth");
        touch_file(etc, "box.berth");
        CHECK(settings_file_find("box", tree, &path, &trusted) == 1);
        CHECK(path && endswith(path, "/etc/box.berth") && trusted);
        path = mfree_local(path);

        /* named after the machine, not the directory */
        CHECK(settings_file_find("other", tree, &path, &trusted) == 0);

        CHECK(unsetenv("BERTH_SETTINGS_PATH") == 0);
        CHECK(rm_rf(top) >= 0);
}

int main(void) {
        static const TapCase cases[] = {
                { "settings mode round trip", test_mode_round_trip },
                { "the key table names existing options, no key twice", test_key_table },
                { "every key parses", test_every_key_parses },
                { "ProcessTwo= and booleans for flags", test_process_two_and_booleans },
                { "errors name the file, line and key", test_errors_name_file_line_and_key },
                { "nspawn keys berth lacks: error if ignoring weakens, else a warning", test_unsupported_keys },
                { "unknown keys and sections: a warning, as nspawn", test_unknown_keys_and_sections_warn },
                { "comments, whitespace, continuations, repeats, resets", test_syntax },
                { "scalars: the command line wins", test_scalars_command_line_wins },
                { "scalars: --settings=override, the file wins", test_scalars_override },
                { "the network settings go together", test_network_is_one_setting },
                { "lists merge, file first; rlimits per resource", test_lists_merge },
                { "lists merge with override, the file wins conflicts", test_lists_merge_override },
                { "mount keys in a file, none on the command line, and the reverse", test_file_mounts_without_cli_mounts },
                { "a command on the command line outranks Boot=", test_command_outranks_boot },
                { "untrusted: privileged keys ignored, one warning each", test_untrusted_privileged_keys_are_ignored },
                { "untrusted: a bad privileged value is still an error", test_untrusted_bad_value_is_still_an_error },
                { "untrusted: PrivateUsers= only where it does not weaken", test_untrusted_private_users },
                { "trusted: all keys count", test_trusted_keeps_everything },
                { "finding the file: order and trust", test_find },
        };
        log_set_prefix("berth");
        return tap_run(cases, ELEMENTSOF(cases));
}
