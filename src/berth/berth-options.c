/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth-caps.h"
#include "berth-console.h"
#include "berth-image.h"
#include "berth-mount.h"
#include "berth-network.h"
#include "berth-port.h"
#include "berth-options.h"
#include "berth-register.h"
#include "berth-seccomp.h"
#include "berth-settings-file.h"
#include "image-path.h"
#include "log.h"
#include "machine-name.h"
#include "util.h"

/* ---- parsers: one per option, they only fill Settings ---- */

static int parse_path_option(char **field, const char *arg, const char **detail) {
        if (isempty(arg)) {
                *detail = "path is empty";
                return -EINVAL;
        }
        char *p;
        int r = path_make_absolute_cwd(arg, &p);
        if (r < 0)
                return r;
        free(*field);
        *field = p;
        return 0;
}

static int p_directory(Settings *s, const char *arg, const char **detail) {
        return parse_path_option(&s->directory, arg, detail);
}

static int p_image(Settings *s, const char *arg, const char **detail) {
        return parse_path_option(&s->image, arg, detail);
}

static int p_image_policy(Settings *s, const char *arg, const char **detail) {
        static char buf[192];
        _cleanup_free_ char *bad = NULL;
        ImagePolicy p;
        int r;

        r = image_policy_from_string(strempty(arg), &p, &bad);
        if (r == -EBADSLT)
                snprintf(buf, sizeof buf, "unknown partition '%s' (known: root, usr, home, srv, var, tmp, esp, "
                         "xbootldr, swap, root-verity, usr-verity, root-verity-sig, usr-verity-sig)", strna(bad));
        else if (r == -EBADRQC)
                snprintf(buf, sizeof buf, "unknown flag '%s' (known: verity, signed, encrypted, unprotected, unused, "
                         "absent, open, ignore, read-only-on/off, growfs-on/off, and file system types)", strna(bad));
        else if (r == -ENOTUNIQ)
                snprintf(buf, sizeof buf, "'%s' has two rules", strna(bad));
        else if (r == -EINVAL)
                snprintf(buf, sizeof buf, "'%s' is not PARTITION=FLAGS; expected rules such as "
                         "root=verity+signed:usr=unprotected:=absent, or one of '*', '-', '~'", strna(bad));
        if (r < 0) {
                *detail = r == -ENOMEM ? NULL : buf;
                return r == -ENOMEM ? r : -EINVAL;
        }
        free(s->image_policy);
        s->image_policy = malloc(sizeof p);
        if (!s->image_policy)
                return -ENOMEM;
        *s->image_policy = p;
        return 0;
}

/* dm-verity root hashes: at least 128 bits (nspawn's minimum), at most a SHA-512 digest */
#define ROOT_HASH_MIN 16
#define ROOT_HASH_MAX 64

static int p_root_hash(Settings *s, const char *arg, const char **detail) {
        _cleanup_free_ uint8_t *h = NULL;
        size_t n;
        int r;

        r = unhexmem(strempty(arg), &h, &n);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                *detail = "expected the root hash in hexadecimal, an even number of digits (veritysetup format "
                          "prints it as 'Root hash:')";
                return -EINVAL;
        }
        if (n < ROOT_HASH_MIN || n > ROOT_HASH_MAX) {
                *detail = "a root hash is 32 to 128 hexadecimal digits (128 to 512 bits)";
                return -EINVAL;
        }
        free(s->root_hash);
        s->root_hash = TAKE_PTR(h);
        s->root_hash_size = n;
        return 0;
}

/* A signature file is a few KiB; anything much bigger is not one. */
#define ROOT_HASH_SIG_MAX (64 * 1024)

static int p_root_hash_sig(Settings *s, const char *arg, const char **detail) {
        static char buf[PATH_MAX + 64];
        _cleanup_free_ uint8_t *sig = NULL;
        size_t n;
        int r;

        if (startswith(strempty(arg), "base64:")) {
                r = unbase64mem(arg + strlen("base64:"), &sig, &n);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        *detail = "the text after 'base64:' is not base64";
                        return -EINVAL;
                }
        } else {
                _cleanup_free_ char *data = NULL;

                if (!path_is_absolute(strempty(arg))) {
                        *detail = "expected an absolute path of a DER-encoded PKCS#7 signature file, or 'base64:' and "
                                  "the signature in base64";
                        return -EINVAL;
                }
                r = read_full_file(arg, &data, &n);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        snprintf(buf, sizeof buf, "cannot read the signature file: %s", strerror(-r));
                        *detail = buf;
                        return r;
                }
                sig = (uint8_t *) TAKE_PTR(data);
        }
        if (n == 0 || n > ROOT_HASH_SIG_MAX) {
                *detail = n == 0 ? "the signature is empty" : "the signature is larger than 64 KiB: not a PKCS#7 signature";
                return -EINVAL;
        }
        free(s->root_hash_sig);
        s->root_hash_sig = TAKE_PTR(sig);
        s->root_hash_sig_size = n;
        return 0;
}

static int p_verity_data(Settings *s, const char *arg, const char **detail) {
        return parse_path_option(&s->verity_data, arg, detail);
}

static int p_template(Settings *s, const char *arg, const char **detail) {
        return parse_path_option(&s->template, arg, detail);
}

static int p_ephemeral(Settings *s, const char *arg, const char **detail) {
        s->ephemeral = true;
        return 0;
}

static int p_as_pid2(Settings *s, const char *arg, const char **detail) {
        if (s->start_mode == START_BOOT) {
                *detail = "conflicts with --boot";
                return -EINVAL;
        }
        s->start_mode = START_PID2;
        return 0;
}

static int p_boot(Settings *s, const char *arg, const char **detail) {
        if (s->start_mode == START_PID2) {
                *detail = "conflicts with --as-pid2";
                return -EINVAL;
        }
        s->start_mode = START_BOOT;
        return 0;
}

static int p_chdir(Settings *s, const char *arg, const char **detail) {
        if (!path_is_safe(arg)) {
                *detail = "expected an absolute, normalized path inside the container";
                return -EINVAL;
        }
        return free_and_strdup(&s->working_directory, arg);
}

/* NEW[:OLD], both absolute paths in the tree; "" goes back to no pivot */
static int p_pivot_root(Settings *s, const char *arg, const char **detail) {
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ char *new_root = NULL;
        const char *colon = strchr(strempty(arg), ':');

        if (isempty(arg)) {
                strv_free(s->pivot_root);
                s->pivot_root = NULL;
                return 0;
        }
        new_root = strndup(arg, colon ? (size_t) (colon - arg) : strlen(arg));
        if (!new_root || strv_extend(&l, new_root) < 0 || (colon && strv_extend(&l, colon + 1) < 0))
                return -ENOMEM;
        STRV_FOREACH(p, l)
                if (!path_is_safe(*p)) {
                        *detail = "expected NEWROOT[:OLDROOT], absolute paths in the tree without '..' or '.'";
                        return -EINVAL;
                }
        if (streq(l[0], "/")) {
                *detail = "the new root must be a directory below the tree's root";
                return -EINVAL;
        }
        strv_free(s->pivot_root);
        s->pivot_root = TAKE_PTR(l);
        return 0;
}

/* An ANSI (X3.64) SGR background colour: 40..47, 100..107, 48;5;N or 48;2;R;G;B; "" for none */
static int p_background(Settings *s, const char *arg, const char **detail) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n;
        int v[5];

        if (isempty(arg)) {
                free(s->background);
                s->background = NULL;
                return 0;
        }
        *detail = "expected an ANSI background colour: 40 to 47, 100 to 107, 48;5;N or 48;2;R;G;B";
        if (strlen(arg) > 20 || strspn(arg, "0123456789;") != strlen(arg) || strv_split(arg, ";", &l) < 0)
                return -EINVAL;
        n = strv_length(l);
        if (n > ELEMENTSOF(v))
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (isempty(l[i]) || strlen(l[i]) > 3 || (v[i] = atoi(l[i])) > 255)
                        return -EINVAL;
        if (!((n == 1 && ((v[0] >= 40 && v[0] <= 47) || (v[0] >= 100 && v[0] <= 107))) ||
              (n == 3 && v[0] == 48 && v[1] == 5) || (n == 5 && v[0] == 48 && v[1] == 2)))
                return -EINVAL;
        *detail = NULL;
        return free_and_strdup(&s->background, arg);
}

static int p_user(Settings *s, const char *arg, const char **detail) {
        if (isempty(arg) || strpbrk(arg, ":/ \t\n") || strlen(arg) > 256) {
                *detail = "expected a user name or numeric UID";
                return -EINVAL;
        }
        return free_and_strdup(&s->user, arg);
}

static int p_machine(Settings *s, const char *arg, const char **detail) {
        if (!machine_name_is_valid(arg)) {
                *detail = "expected a valid host name of at most 64 characters";
                return -EINVAL;
        }
        return free_and_strdup(&s->machine, arg);
}

static int p_hostname(Settings *s, const char *arg, const char **detail) {
        if (!machine_name_is_valid(arg)) {
                *detail = "expected a valid host name of at most 64 characters";
                return -EINVAL;
        }
        return free_and_strdup(&s->hostname, arg);
}

static int p_uuid(Settings *s, const char *arg, const char **detail) {
        if (isempty(arg) || id128_from_string(arg, s->uuid) < 0) {
                *detail = "expected a UUID";
                return -EINVAL;
        }
        static const uint8_t null[16] = {};
        if (memcmp(s->uuid, null, 16) == 0) {
                *detail = "the null UUID is not allowed";
                return -EINVAL;
        }
        s->uuid_set = true;
        return 0;
}

static bool env_name_is_valid(const char *s, size_t n) {
        if (n == 0 || isdigit((unsigned char) s[0]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(isalnum((unsigned char) s[i]) || s[i] == '_'))
                        return false;
        return true;
}

static int p_set_credential(Settings *s, const char *arg, const char **detail) {
        char *id, *data;
        size_t size;
        int r;

        r = credential_parse_set(arg, &id, &data, &size, detail);
        if (r < 0)
                return r;
        return credential_put(&s->credentials, &s->n_credentials, id, data, size);
}

static int p_load_credential(Settings *s, const char *arg, const char **detail) {
        char *id, *data;
        size_t size;
        int r;

        r = credential_parse_load(arg, &id, &data, &size, detail);
        if (r < 0)
                return r;
        return credential_put(&s->credentials, &s->n_credentials, id, data, size);
}

static int p_import_credential(Settings *s, const char *arg, const char **detail) {
        if (isempty(arg) || strchr(arg, '/')) {
                *detail = "expected a credential name or a glob such as 'ssh.*', without '/'";
                return -EINVAL;
        }
        return strv_extend(&s->import_credentials, arg);
}

static int p_setenv(Settings *s, const char *arg, const char **detail) {
        const char *eq = strchr(strempty(arg), '=');
        char *a;

        if (!eq) {
                /* nspawn: a bare name takes its value from our environment */
                const char *v = env_name_is_valid(strempty(arg), strlen(strempty(arg))) ? getenv(arg) : NULL;
                if (!v) {
                        *detail = "expected VAR=VALUE, or the name of a variable that is set";
                        return -EINVAL;
                }
                a = strjoin(arg, "=", v);
        } else {
                if (!env_name_is_valid(arg, (size_t) (eq - arg))) {
                        *detail = "expected VAR=VALUE with VAR made of letters, digits and '_'";
                        return -EINVAL;
                }
                a = strdup(arg);
        }
        if (!a)
                return -ENOMEM;
        /* a later assignment of the same name wins */
        size_t k = strcspn(a, "=") + 1;
        for (char **e = s->environment; e && *e; e++)
                if (strncmp(*e, a, k) == 0) {
                        free(*e);
                        *e = a;
                        return 0;
                }
        return strv_consume(&s->environment, a);
}

static int p_private_network(Settings *s, const char *arg, const char **detail) {
        s->private_network = true;
        return 0;
}

static int p_network_veth(Settings *s, const char *arg, const char **detail) {
        s->network_veth = true;
        return 0;
}

/* IF[:NAME] options: checked here, split again where they are used */
static int network_pair_add(char ***l, const char *arg, const char **detail) {
        _cleanup_free_ char *a = NULL, *b = NULL;
        int r = network_pair_parse(arg, &a, &b, detail);
        if (r < 0)
                return r;
        if (strv_contains(*l, arg)) {
                *detail = "given twice";
                return -EINVAL;
        }
        return strv_extend(l, arg);
}

static int p_network_veth_extra(Settings *s, const char *arg, const char **detail) {
        return network_pair_add(&s->network_veth_extra, arg, detail);
}

static int p_network_interface(Settings *s, const char *arg, const char **detail) {
        return network_pair_add(&s->network_interfaces, arg, detail);
}

static int p_network_macvlan(Settings *s, const char *arg, const char **detail) {
        return network_pair_add(&s->network_macvlan, arg, detail);
}

static int p_network_ipvlan(Settings *s, const char *arg, const char **detail) {
        return network_pair_add(&s->network_ipvlan, arg, detail);
}

static int p_network_bridge(Settings *s, const char *arg, const char **detail) {
        if (!ifname_is_valid(arg)) {
                *detail = "expected an interface name of 1 to 15 characters of letters, digits, '-', '_' and '.'";
                return -EINVAL;
        }
        return free_and_strdup(&s->network_bridge, arg);
}

static int p_network_zone(Settings *s, const char *arg, const char **detail) {
        char name[IFNAMSIZ + 8];

        /* as with nspawn: the bridge vz-ZONE must be a valid interface name as it is */
        snprintf(name, sizeof name, NETWORK_ZONE_PREFIX "%s", strempty(arg));
        if (isempty(arg) || strlen(arg) > IFNAMSIZ - 1 - strlen(NETWORK_ZONE_PREFIX) || !ifname_is_valid(name)) {
                *detail = "expected a name of 1 to 12 characters of letters, digits, '-', '_' and '.'";
                return -EINVAL;
        }
        return free_and_strdup(&s->network_zone, arg);
}

static int p_port(Settings *s, const char *arg, const char **detail) {
        char buf[PORT_FORWARD_STRING_MAX];
        PortForward p;
        int r;

        r = port_forward_parse(arg, &p, detail);
        if (r < 0)
                return r;
        /* one host port, one target */
        STRV_FOREACH(e, s->ports) {
                PortForward q;
                if (port_forward_parse(*e, &q, detail) >= 0 && port_forward_same_host_port(&p, &q)) {
                        *detail = "that host port is forwarded twice";
                        return -EINVAL;
                }
        }
        port_forward_format(&p, buf);
        return strv_extend(&s->ports, buf);
}

static int p_network_namespace_path(Settings *s, const char *arg, const char **detail) {
        return parse_path_option(&s->network_namespace_path, arg, detail);
}

static int p_private_users(Settings *s, const char *arg, const char **detail) {
        /* without a value: yes, as nspawn */
        return userns_parse(arg ?: "yes", &s->userns_mode, &s->uid_range, detail);
}

static int p_userns_ownership(Settings *s, const char *arg, const char **detail) {
        UserNamespaceOwnership o = userns_ownership_from_string(arg);
        if (o < 0)
                return -EINVAL;
        s->userns_ownership = o;
        s->userns_ownership_set = true;
        return 0;
}

/* -U: nspawn's "a user namespace if the kernel has them", which every kernel berth runs on has */
static int p_userns_pick(Settings *s, const char *arg, const char **detail) {
        s->userns_mode = USERNS_PICK;
        s->userns_ownership = USERNS_OWNERSHIP_AUTO;
        s->userns_ownership_set = true;
        /* both halves outrank a settings file, as if both options were given */
        s->cli_set |= SETTING_MASK(SETTING_PRIVATE_USERS_OWNERSHIP);
        return 0;
}

/* --bind-user=: a host user's name, as useradd makes them (it is also a file name in /run/host/userdb
 * and a key in the guest's user database, so nothing more) */
static int p_bind_user(Settings *s, const char *arg, const char **detail) {
        size_t n = strlen(strempty(arg));

        if (n == 0 || n > 255 || !(isalpha((unsigned char) arg[0]) || arg[0] == '_') ||
            strspn(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != n) {
                *detail = "expected the name of a user of the host";
                return -EINVAL;
        }
        if (strv_contains(s->bind_users, arg))
                return 0;
        return strv_extend(&s->bind_users, arg);
}

/* --bind-user-shell=: no (the default: no shell in the record, the guest's default), yes (the host
 * user's own), or an absolute path inside the container */
static int p_bind_user_shell(Settings *s, const char *arg, const char **detail) {
        int b = parse_boolean(arg);

        if (b < 0 && !path_is_safe(strempty(arg))) {
                *detail = "expected a boolean or an absolute, normalized path of a shell inside the container";
                return -EINVAL;
        }
        s->bind_user_shell_copy = b > 0;
        return free_and_strdup(&s->bind_user_shell, b < 0 ? arg : NULL);
}

static int p_read_only(Settings *s, const char *arg, const char **detail) {
        s->read_only = true;
        return 0;
}

static int p_bind(Settings *s, const char *arg, const char **detail) {
        return custom_mount_parse_bind(s, strempty(arg), false, detail);
}

static int p_bind_ro(Settings *s, const char *arg, const char **detail) {
        return custom_mount_parse_bind(s, strempty(arg), true, detail);
}

static int p_tmpfs(Settings *s, const char *arg, const char **detail) {
        return custom_mount_parse_tmpfs(s, strempty(arg), detail);
}

static int p_overlay(Settings *s, const char *arg, const char **detail) {
        return custom_mount_parse_overlay(s, strempty(arg), false, detail);
}

static int p_overlay_ro(Settings *s, const char *arg, const char **detail) {
        return custom_mount_parse_overlay(s, strempty(arg), true, detail);
}

static int p_inaccessible(Settings *s, const char *arg, const char **detail) {
        return custom_mount_parse_inaccessible(s, strempty(arg), detail);
}

static int p_volatile(Settings *s, const char *arg, const char **detail) {
        VolatileMode m = arg ? volatile_mode_from_string(arg) : VOLATILE_YES;
        if (m < 0)
                return -EINVAL;
        s->volatile_mode = m;
        return 0;
}

/* --console= or --pipe seen in this parse_argv() (which resets it) */
static bool console_mode_set = false;

static int p_console(Settings *s, const char *arg, const char **detail) {
        ConsoleMode m = console_mode_from_string(arg);
        if (m < 0)
                return -EINVAL;
        s->console_mode = m;
        console_mode_set = true;
        return 0;
}

static int p_pipe(Settings *s, const char *arg, const char **detail) {
        s->console_mode = CONSOLE_PIPE;
        console_mode_set = true;
        return 0;
}

static int p_quiet(Settings *s, const char *arg, const char **detail) {
        s->quiet = true;
        return 0;
}

static int p_capability(Settings *s, const char *arg, const char **detail) {
        uint64_t m;
        bool all = false;
        int r = capability_parse_list(strempty(arg), &m, &all);
        if (r < 0) {
                *detail = "expected a comma-separated list of capability names (CAP_...) or 'all'";
                return r;
        }
        s->capability |= m;
        s->capability_all = s->capability_all || all;
        return 0;
}

static int p_drop_capability(Settings *s, const char *arg, const char **detail) {
        uint64_t m;
        bool all = false;
        int r = capability_parse_list(strempty(arg), &m, &all);
        if (r < 0) {
                *detail = "expected a comma-separated list of capability names (CAP_...) or 'all'";
                return r;
        }
        s->drop_capability |= all ? capability_all() : m;
        return 0;
}

static int p_ambient_capability(Settings *s, const char *arg, const char **detail) {
        uint64_t m;
        bool all = false;
        int r = capability_parse_list(strempty(arg), &m, &all);
        if (r < 0) {
                *detail = "expected a comma-separated list of capability names (CAP_...) or 'all'";
                return r;
        }
        s->ambient_capability |= all ? capability_all() : m;
        return 0;
}

static int p_no_new_privileges(Settings *s, const char *arg, const char **detail) {
        int b = parse_boolean(arg);
        if (b < 0)
                return -EINVAL;
        s->no_new_privileges = b;
        return 0;
}

static int p_suppress_sync(Settings *s, const char *arg, const char **detail) {
        int b = parse_boolean(arg);
        if (b < 0)
                return -EINVAL;
        s->suppress_sync = b;
        return 0;
}

static int p_personality(Settings *s, const char *arg, const char **detail) {
        Personality p = personality_from_string(arg);
        if (p < 0) {
                *detail = PERSONALITY_VALUES ? "expected one of: " PERSONALITY_VALUES
                                             : "berth knows no personality of this architecture";
                return -EINVAL;
        }
        s->personality = p;
        return 0;
}

static int p_system_call_filter(Settings *s, const char *arg, const char **detail) {
        static char buf[512];
        _cleanup_free_ char *bad = NULL;
        int r = seccomp_parse_filter(s, strempty(arg), &bad);
        if (r == -EINVAL && bad) {
                snprintf(buf, sizeof buf, "unknown system call or group '%s'", bad);
                *detail = buf;
        } else if (r == -EINVAL)
                *detail = "expected a space-separated list of system calls and @groups, optionally prefixed by '~'";
        else if (r == -ELIBACC) {
                snprintf(buf, sizeof buf, "libseccomp is needed to check system call names: %s",
                         seccomp_library_error());
                *detail = buf;
        }
        return r;
}

static const char *const rlimit_names[RLIMIT_NLIMITS] = {
        [RLIMIT_CPU] = "CPU",       [RLIMIT_FSIZE] = "FSIZE",           [RLIMIT_DATA] = "DATA",
        [RLIMIT_STACK] = "STACK",   [RLIMIT_CORE] = "CORE",             [RLIMIT_RSS] = "RSS",
        [RLIMIT_NOFILE] = "NOFILE", [RLIMIT_AS] = "AS",                 [RLIMIT_NPROC] = "NPROC",
        [RLIMIT_MEMLOCK] = "MEMLOCK", [RLIMIT_LOCKS] = "LOCKS",         [RLIMIT_SIGPENDING] = "SIGPENDING",
        [RLIMIT_MSGQUEUE] = "MSGQUEUE", [RLIMIT_NICE] = "NICE",         [RLIMIT_RTPRIO] = "RTPRIO",
        [RLIMIT_RTTIME] = "RTTIME",
};

int rlimit_from_string(const char *s);
int rlimit_from_string(const char *s) {
        const char *p = startswith_ptr(s, "RLIMIT_") ?: s;
        for (int i = 0; i < RLIMIT_NLIMITS; i++)
                if (rlimit_names[i] && strcasecmp(p, rlimit_names[i]) == 0)
                        return i;
        return -EINVAL;
}

static int parse_rlim(const char *s, rlim_t *ret) {
        unsigned long long v;
        if (streq(s, "infinity")) {
                *ret = RLIM_INFINITY;
                return 0;
        }
        if (safe_atollu(s, &v) < 0)
                return -EINVAL;
        *ret = (rlim_t) v;
        return 0;
}

static int p_rlimit(Settings *s, const char *arg, const char **detail) {
        _cleanup_free_ char *name = NULL;
        const char *eq = strchr(strempty(arg), '='), *colon;
        struct rlimit rl;
        int which;

        *detail = "expected LIMIT=SOFT[:HARD], e.g. RLIMIT_NOFILE=1024:4096, values a number or 'infinity'";
        if (!eq)
                return -EINVAL;
        name = strndup(arg, (size_t) (eq - arg));
        if (!name)
                return -ENOMEM;
        which = rlimit_from_string(name);
        if (which < 0) {
                *detail = "unknown resource limit name (e.g. RLIMIT_NOFILE, RLIMIT_NPROC)";
                return -EINVAL;
        }
        colon = strchr(eq + 1, ':');
        if (colon) {
                _cleanup_free_ char *soft = strndup(eq + 1, (size_t) (colon - eq - 1));
                if (!soft)
                        return -ENOMEM;
                if (parse_rlim(soft, &rl.rlim_cur) < 0 || parse_rlim(colon + 1, &rl.rlim_max) < 0)
                        return -EINVAL;
        } else {
                if (parse_rlim(eq + 1, &rl.rlim_cur) < 0)
                        return -EINVAL;
                rl.rlim_max = rl.rlim_cur;
        }
        if (rl.rlim_cur > rl.rlim_max) {
                *detail = "the soft limit is above the hard limit";
                return -EINVAL;
        }
        if (!s->rlimit[which] && !(s->rlimit[which] = malloc(sizeof(struct rlimit))))
                return -ENOMEM;
        *s->rlimit[which] = rl;
        return 0;
}

static int p_cleanup(Settings *s, const char *arg, const char **detail) {
        s->cleanup = true;
        return 0;
}

static int p_oom_score_adjust(Settings *s, const char *arg, const char **detail) {
        int v;
        if (safe_atoi(arg, &v) < 0 || v < -1000 || v > 1000) {
                *detail = "expected an integer from -1000 to 1000";
                return -EINVAL;
        }
        s->oom_score_adjust = v;
        s->oom_score_adjust_set = true;
        return 0;
}

static int cpu_set_add(CPUSet *c, unsigned cpu) {
        size_t need = CPU_ALLOC_SIZE(cpu + 1);
        if (need > c->allocated) {
                cpu_set_t *n = realloc(c->set, need);
                if (!n)
                        return -ENOMEM;
                memset((uint8_t *) n + c->allocated, 0, need - c->allocated);
                c->set = n;
                c->allocated = need;
        }
        CPU_SET_S(cpu, c->allocated, c->set);
        return 0;
}

static int p_cpu_affinity(Settings *s, const char *arg, const char **detail) {
        _cleanup_strv_free_ char **l = NULL;
        CPUSet c = {};
        int r;

        *detail = "expected a list of CPU indexes and ranges, e.g. 0,2-3";
        if (isempty(arg) || strv_split(arg, ", ", &l) < 0)
                return -EINVAL;
        STRV_FOREACH(w, l) {
                unsigned a, b;
                char *dash = strchr(*w, '-');
                if (isempty(*w))
                        continue;
                if (dash) {
                        *dash = 0;
                        if (safe_atou(*w, &a) < 0 || safe_atou(dash + 1, &b) < 0 || a > b)
                                goto bad;
                } else if (safe_atou(*w, &a) < 0)
                        goto bad;
                else
                        b = a;
                if (b >= 8192)
                        goto bad;
                for (unsigned i = a; i <= b; i++)
                        if ((r = cpu_set_add(&c, i)) < 0) {
                                free(c.set);
                                return r;
                        }
        }
        if (!c.set)
                return -EINVAL;
        free(s->cpu_set.set);
        s->cpu_set = c;
        return 0;
bad:
        free(c.set);
        return -EINVAL;
}

static int p_kill_signal(Settings *s, const char *arg, const char **detail) {
        int sig = signal_from_string(arg);
        if (sig < 0 || sig == SIGKILL || sig == SIGSTOP) {
                *detail = "expected a signal name or number such as SIGRTMIN+4 or SIGTERM (not KILL or STOP)";
                return -EINVAL;
        }
        s->kill_signal = sig;
        return 0;
}

static int p_notify_ready(Settings *s, const char *arg, const char **detail) {
        int b = parse_boolean(arg);
        if (b < 0)
                return -EINVAL;
        s->notify_ready = b;
        return 0;
}

static int p_stop_timeout(Settings *s, const char *arg, const char **detail) {
        uint64_t u;
        if (parse_sec(arg, &u) < 0 || u == 0) {
                *detail = "expected a positive time span such as 90s, 500ms or 2min, or 'infinity'";
                return -EINVAL;
        }
        s->stop_timeout_usec = u;
        return 0;
}

static int p_resolv_conf(Settings *s, const char *arg, const char **detail) {
        ResolvConfMode m = resolv_conf_mode_from_string(arg);
        if (m < 0)
                return -EINVAL;
        s->resolv_conf = m;
        return 0;
}

static int p_timezone(Settings *s, const char *arg, const char **detail) {
        TimezoneMode m = timezone_mode_from_string(arg);
        if (m < 0)
                return -EINVAL;
        s->timezone = m;
        return 0;
}

static int p_settings(Settings *s, const char *arg, const char **detail) {
        SettingsMode m = settings_mode_from_string(arg);
        if (m < 0)
                return -EINVAL;
        s->settings_mode = m;
        return 0;
}

static int p_register(Settings *s, const char *arg, const char **detail) {
        RegisterMode m = register_mode_from_string(arg);
        if (m < 0)
                return -EINVAL;
        s->register_mode = m;
        return 0;
}

static int p_keep_unit(Settings *s, const char *arg, const char **detail) {
        s->keep_unit = true;
        return 0;
}

static int p_slice(Settings *s, const char *arg, const char **detail) {
        size_t n = strlen(strempty(arg));
        if (n <= strlen(".slice") || !endswith(arg, ".slice") || n > 255 || strchr(arg, '/') ||
            strspn(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.\\") != n) {
                *detail = "expected a slice unit name such as machine.slice";
                return -EINVAL;
        }
        return free_and_strdup(&s->slice, arg);
}

static int p_property(Settings *s, const char *arg, const char **detail) {
        int r = unit_property_check(strempty(arg), detail);
        if (r < 0)
                return r;
        return strv_extend(&s->properties, arg);
}

static int p_link_journal(Settings *s, const char *arg, const char **detail) {
        LinkJournal l = link_journal_from_string(arg);
        if (l < 0)
                return -EINVAL;
        s->link_journal = l;
        return 0;
}

/* ---- the table ---- */

const OptionDef option_table[] = {
        { "Commands", "help", 'h', OPTION_ARG_NONE, NULL, NULL, "Show this help", NULL },
        { NULL, "version", 0, OPTION_ARG_NONE, NULL, NULL, "Print the version", NULL },

        { "Image", "directory", 'D', OPTION_ARG_REQUIRED, "PATH", NULL,
          "Root directory of the container (default: the current directory)", p_directory },
        { NULL, "image", 'i', OPTION_ARG_REQUIRED, "PATH", NULL,
          "Raw disk image to run (GPT with the Discoverable Partitions layout, or one file system)", p_image },
        { NULL, "image-policy", 0, OPTION_ARG_REQUIRED, "POLICY", NULL,
          "Which partitions of the image may be used, and how (systemd's image policy syntax)", p_image_policy },
        { NULL, "root-hash", 0, OPTION_ARG_REQUIRED, "HASH", NULL,
          "dm-verity root hash of the image's root (or /usr) partition, in hexadecimal", p_root_hash },
        { NULL, "root-hash-sig", 0, OPTION_ARG_REQUIRED, "SIG", NULL,
          "PKCS#7 signature of the root hash: an absolute path, or base64:DATA", p_root_hash_sig },
        { NULL, "verity-data", 0, OPTION_ARG_REQUIRED, "PATH", NULL,
          "File with the dm-verity hash tree of the root (or /usr) partition", p_verity_data },
        { NULL, "template", 0, OPTION_ARG_REQUIRED, "PATH", NULL,
          "Create the directory as a copy of this tree if it is missing or empty", p_template },
        { NULL, "ephemeral", 'x', OPTION_ARG_NONE, NULL, NULL,
          "Run on a copy-on-write snapshot of the tree that is gone at exit", p_ephemeral, SETTING_EPHEMERAL },
        { NULL, "settings", 0, OPTION_ARG_REQUIRED, "MODE", "yes no override trusted",
          "Read the machine's settings file (NAME.berth, NAME.nspawn), and how far to trust it", p_settings },
        { NULL, "cleanup", 0, OPTION_ARG_NONE, NULL, NULL,
          "Clean up what a dead instance of the machine left behind, and exit", p_cleanup },

        { "Execution", "as-pid2", 'a', OPTION_ARG_NONE, NULL, NULL,
          "Run COMMAND as PID 2 under a minimal init", p_as_pid2, SETTING_START_MODE },
        { NULL, "boot", 'b', OPTION_ARG_NONE, NULL, NULL,
          "Boot the tree's init; arguments are passed to it", p_boot, SETTING_START_MODE },
        { NULL, "chdir", 0, OPTION_ARG_REQUIRED, "PATH", NULL,
          "Working directory of the payload inside the container", p_chdir, SETTING_WORKING_DIRECTORY },
        { NULL, "user", 'u', OPTION_ARG_REQUIRED, "USER", NULL,
          "Run the command as this user of the container", p_user, SETTING_USER },
        { NULL, "setenv", 'E', OPTION_ARG_REQUIRED, "VAR=VALUE", NULL,
          "Set an environment variable for the payload", p_setenv, SETTING_ENVIRONMENT },
        { NULL, "set-credential", 0, OPTION_ARG_REQUIRED, "ID:VALUE", NULL,
          "Pass a credential with this value to the container", p_set_credential, SETTING_CREDENTIALS },
        { NULL, "load-credential", 0, OPTION_ARG_REQUIRED, "ID:PATH", NULL,
          "Pass a credential read from this host file or socket to the container", p_load_credential, SETTING_CREDENTIALS },
        { NULL, "import-credential", 0, OPTION_ARG_REQUIRED, "GLOB", NULL,
          "Pass berth's own credentials whose names match to the container", p_import_credential },
        { NULL, "kill-signal", 0, OPTION_ARG_REQUIRED, "SIGNAL", NULL,
          "Signal that asks the payload to stop (default: the init's poweroff signal with --boot)", p_kill_signal, SETTING_KILL_SIGNAL },
        { NULL, "stop-timeout", 0, OPTION_ARG_REQUIRED, "TIME", NULL,
          "How long a stop request may take before the container is killed (default: 90s)", p_stop_timeout },
        { NULL, "notify-ready", 0, OPTION_ARG_REQUIRED, "BOOL", "yes no",
          "Wait for the guest's READY=1 before reporting readiness", p_notify_ready, SETTING_NOTIFY_READY },
        { NULL, "personality", 0, OPTION_ARG_REQUIRED, "ARCH", PERSONALITY_VALUES,
          "Architecture that uname reports in the container, e.g. x86 for a 32-bit tree on x86-64",
          p_personality, SETTING_PERSONALITY },

        { "Identity", "machine", 'M', OPTION_ARG_REQUIRED, "NAME", NULL,
          "Machine name (default: the image's name); without -D or -i, finds the image by this name", p_machine },
        { NULL, "hostname", 0, OPTION_ARG_REQUIRED, "NAME", NULL,
          "Host name of the container (default: the machine name)", p_hostname, SETTING_HOSTNAME },
        { NULL, "uuid", 0, OPTION_ARG_REQUIRED, "UUID", NULL,
          "Machine UUID (default: random)", p_uuid, SETTING_UUID },

        { "Networking", "private-network", 0, OPTION_ARG_NONE, NULL, NULL,
          "Run in a network namespace of its own with only loopback", p_private_network, SETTING_PRIVATE_NETWORK },
        { NULL, "network-veth", 'n', OPTION_ARG_NONE, NULL, NULL,
          "Add a virtual Ethernet link: ve-NAME on the host, host0 in the container", p_network_veth,
          SETTING_NETWORK_VETH },
        { NULL, "network-veth-extra", 0, OPTION_ARG_REQUIRED, "HOSTIF[:CONTAINERIF]", NULL,
          "Add another virtual Ethernet link with these names", p_network_veth_extra, SETTING_NETWORK_VETH_EXTRA },
        { NULL, "network-bridge", 0, OPTION_ARG_REQUIRED, "BRIDGE", NULL,
          "Add a virtual Ethernet link whose host side vb-NAME joins this existing bridge", p_network_bridge,
          SETTING_NETWORK_BRIDGE },
        { NULL, "network-zone", 0, OPTION_ARG_REQUIRED, "ZONE", NULL,
          "Add a virtual Ethernet link joined to bridge vz-ZONE, made on first use, shared by the zone's machines",
          p_network_zone, SETTING_NETWORK_ZONE },
        { NULL, "network-interface", 0, OPTION_ARG_REQUIRED, "IF[:NAME]", NULL,
          "Move a host interface into the container (back to the host at exit)", p_network_interface,
          SETTING_NETWORK_INTERFACE },
        { NULL, "network-macvlan", 0, OPTION_ARG_REQUIRED, "IF[:NAME]", NULL,
          "Add a macvlan interface on a host interface (default name: mv-IF)", p_network_macvlan,
          SETTING_NETWORK_MACVLAN },
        { NULL, "network-ipvlan", 0, OPTION_ARG_REQUIRED, "IF[:NAME]", NULL,
          "Add an ipvlan interface on a host interface (default name: iv-IF)", p_network_ipvlan,
          SETTING_NETWORK_IPVLAN },
        { NULL, "network-namespace-path", 0, OPTION_ARG_REQUIRED, "PATH", NULL,
          "Join this existing network namespace (e.g. /run/netns/NAME)", p_network_namespace_path },
        { NULL, "port", 'p', OPTION_ARG_REQUIRED, "[tcp|udp:]HOSTPORT[:CONTAINERPORT]", NULL,
          "Forward a host port to the container's veth address (from localhost too); needs -n, "
          "--network-bridge= or --network-zone=", p_port, SETTING_PORT },

        { "User namespaces", "private-users", 0, OPTION_ARG_OPTIONAL, "MODE", NULL,
          "Run in a user namespace: no, yes (the tree owner's range), pick (a free range), identity, "
          "or UID[:COUNT]", p_private_users, SETTING_PRIVATE_USERS },
        { NULL, "private-users-ownership", 0, OPTION_ARG_REQUIRED, "MODE", "off chown map auto",
          "How the tree's ownership meets the range: map mounts it idmapped, chown shifts it on disk, auto maps where possible",
          p_userns_ownership, SETTING_PRIVATE_USERS_OWNERSHIP },
        { NULL, "userns", 'U', OPTION_ARG_NONE, NULL, NULL,
          "Same as --private-users=pick --private-users-ownership=auto (berth's long name for nspawn's -U)",
          p_userns_pick, SETTING_PRIVATE_USERS },
        { NULL, "bind-user", 0, OPTION_ARG_REQUIRED, "USER", NULL,
          "Bind a host user into the container: home at /run/host/home/USER, a user record, an id of its own (needs -U)",
          p_bind_user, SETTING_BIND_USER },
        { NULL, "bind-user-shell", 0, OPTION_ARG_REQUIRED, "BOOL|PATH", NULL,
          "Shell of the --bind-user= users inside: no (the guest's default), yes (their host shell), or a path",
          p_bind_user_shell, SETTING_BIND_USER_SHELL },

        { "File systems", "read-only", 0, OPTION_ARG_NONE, NULL, NULL,
          "Mount the root directory read-only", p_read_only, SETTING_READ_ONLY },
        { NULL, "pivot-root", 0, OPTION_ARG_REQUIRED, "NEWROOT[:OLDROOT]", NULL,
          "Make this directory of the tree the root; the tree at OLDROOT in it, or gone (OSTree-style trees)",
          p_pivot_root, SETTING_PIVOT_ROOT },
        { NULL, "bind", 0, OPTION_ARG_REQUIRED, "SRC[:DST[:OPTS]]", NULL,
          "Bind-mount a host path into the container", p_bind, SETTING_CUSTOM_MOUNTS },
        { NULL, "bind-ro", 0, OPTION_ARG_REQUIRED, "SRC[:DST[:OPTS]]", NULL,
          "Bind-mount a host path read-only", p_bind_ro, SETTING_CUSTOM_MOUNTS },
        { NULL, "tmpfs", 0, OPTION_ARG_REQUIRED, "PATH[:OPTS]", NULL,
          "Mount an empty tmpfs at PATH", p_tmpfs, SETTING_CUSTOM_MOUNTS },
        { NULL, "overlay", 0, OPTION_ARG_REQUIRED, "PATH[:PATH...]:PATH", NULL,
          "Mount an overlay of host directories; writes go to the last host path", p_overlay, SETTING_CUSTOM_MOUNTS },
        { NULL, "overlay-ro", 0, OPTION_ARG_REQUIRED, "PATH[:PATH...]:PATH", NULL,
          "Mount a read-only overlay of host directories", p_overlay_ro, SETTING_CUSTOM_MOUNTS },
        { NULL, "inaccessible", 0, OPTION_ARG_REQUIRED, "PATH", NULL,
          "Make a path of the container inaccessible", p_inaccessible, SETTING_CUSTOM_MOUNTS },
        { NULL, "volatile", 0, OPTION_ARG_OPTIONAL, "MODE", "yes state overlay no",
          "Run with a volatile root, /var, or overlay", p_volatile, SETTING_VOLATILE },
        { NULL, "resolv-conf", 0, OPTION_ARG_REQUIRED, "MODE",
          "off copy-host copy-static copy-uplink copy-stub replace-host replace-static replace-uplink "
          "replace-stub bind-host bind-static bind-uplink bind-stub delete auto",
          "How to set up /etc/resolv.conf", p_resolv_conf, SETTING_RESOLV_CONF },
        { NULL, "timezone", 0, OPTION_ARG_REQUIRED, "MODE", "off copy bind symlink delete auto",
          "How to set up /etc/localtime", p_timezone, SETTING_TIMEZONE },

        { "Console", "console", 0, OPTION_ARG_REQUIRED, "MODE", "interactive read-only passive pipe autopipe",
          "How the console is connected", p_console },
        { NULL, "pipe", 'P', OPTION_ARG_NONE, NULL, NULL, "Same as --console=pipe", p_pipe },
        { NULL, "quiet", 'q', OPTION_ARG_NONE, NULL, NULL, "Do not show status messages", p_quiet },
        { NULL, "background", 0, OPTION_ARG_REQUIRED, "COLOR", NULL,
          "Background colour of the terminal while the container runs, as ANSI SGR (44: blue, 48;5;N, 48;2;R;G;B)",
          p_background },

        { "Security", "capability", 0, OPTION_ARG_REQUIRED, "CAPS", NULL,
          "Keep these capabilities in addition to the default set", p_capability, SETTING_CAPABILITY },
        { NULL, "drop-capability", 0, OPTION_ARG_REQUIRED, "CAPS", NULL,
          "Drop these capabilities from the default set", p_drop_capability, SETTING_DROP_CAPABILITY },
        { NULL, "ambient-capability", 0, OPTION_ARG_REQUIRED, "CAPS", NULL,
          "Pass these capabilities to the payload as ambient ones, also to a --user= other than root",
          p_ambient_capability, SETTING_AMBIENT_CAPABILITY },
        { NULL, "no-new-privileges", 0, OPTION_ARG_REQUIRED, "BOOL", "yes no",
          "Set the no_new_privs flag for the payload", p_no_new_privileges, SETTING_NO_NEW_PRIVILEGES },
        { NULL, "suppress-sync", 0, OPTION_ARG_REQUIRED, "BOOL", "yes no",
          "Make sync(), fsync() and the like do nothing in the container (faster, unsafe on a crash)",
          p_suppress_sync, SETTING_SUPPRESS_SYNC },
        { NULL, "system-call-filter", 0, OPTION_ARG_REQUIRED, "LIST", NULL,
          "Allow (or with ~, deny) system calls and @groups beyond the default", p_system_call_filter, SETTING_SYSCALL_FILTER },

        { "Resources", "rlimit", 0, OPTION_ARG_REQUIRED, "NAME=SOFT[:HARD]", NULL,
          "Set a resource limit for the payload", p_rlimit, SETTING_RLIMIT },
        { NULL, "oom-score-adjust", 0, OPTION_ARG_REQUIRED, "VALUE", NULL,
          "OOM score adjustment of the payload (-1000..1000)", p_oom_score_adjust, SETTING_OOM_SCORE_ADJUST },
        { NULL, "cpu-affinity", 0, OPTION_ARG_REQUIRED, "CPUS", NULL,
          "CPUs the container may run on", p_cpu_affinity, SETTING_CPU_AFFINITY },

        { "Registration", "register", 0, OPTION_ARG_REQUIRED, "MODE", "auto yes no",
          "Run in a scope unit and register with systemd-machined (auto: when the system bus is there)",
          p_register, SETTING_NONE },
        { NULL, "keep-unit", 0, OPTION_ARG_NONE, NULL, NULL,
          "Use the unit berth runs in (berth@.service) instead of a scope of its own", p_keep_unit, SETTING_NONE },
        { NULL, "slice", 'S', OPTION_ARG_REQUIRED, "SLICE", NULL,
          "Slice of the container's scope (default: machine.slice)", p_slice, SETTING_NONE },
        { NULL, "property", 0, OPTION_ARG_REQUIRED, "NAME=VALUE", NULL,
          "Set a property of the container's unit, e.g. MemoryMax=2G", p_property, SETTING_NONE },
        { NULL, "link-journal", 0, OPTION_ARG_REQUIRED, "MODE", "auto no host try-host guest try-guest",
          "Make the guest's journal visible to the host's journalctl", p_link_journal, SETTING_LINK_JOURNAL },
};
const unsigned option_table_size = ELEMENTSOF(option_table);

const OptionDef *option_find(const char *name) {
        for (unsigned i = 0; i < option_table_size; i++)
                if (streq(option_table[i].name, name))
                        return &option_table[i];
        return NULL;
}

/* ---- systemd-nspawn's options that berth does not have ----
 *
 * An nspawn command line with one of these gets the option's name and what to do instead, not the
 * "see --help" of a typo. getopt() matches berth's own options first, so a row here that berth
 * gains later is simply never reached. */
typedef struct NspawnOption {
        const char *name;
        char short_name;
        const char *instead;
} NspawnOption;

#define NO_IMAGE "berth boots directory trees only so far: mount the image (or import it with 'berthctl import-fs') and pass -D"

static const NspawnOption nspawn_options[] = {
        { "private-users-chown", 0, "it is --private-users-ownership=chown in berth, as in newer nspawn" },
        { "image", 'i', NO_IMAGE },
        { "oci-bundle", 0, "berth runs no OCI bundles: pass the bundle's rootfs directory with -D" },
        { "selinux-context", 'Z', "berth has no SELinux support; leave it out" },
        { "selinux-apifs-context", 'L', "berth has no SELinux support; leave it out" },
};

/* The hint for the unknown option in ARG ("--name[=...]" or "-X..."), or NULL. */
static const NspawnOption *nspawn_option_find(const char *arg, char short_name) {
        for (size_t i = 0; i < ELEMENTSOF(nspawn_options); i++) {
                const NspawnOption *o = &nspawn_options[i];
                if (short_name ? o->short_name == short_name
                               : arg && startswith(arg, "--") &&
                                         strncmp(arg + 2, o->name, strcspn(arg + 2, "=")) == 0 &&
                                         strlen(o->name) == strcspn(arg + 2, "="))
                        return o;
        }
        return NULL;
}

static int log_unknown_option(const char *arg, char short_name) {
        const NspawnOption *n = nspawn_option_find(arg, short_name);

        if (n && short_name)
                return log_error_errno(-EOPNOTSUPP, "Option '-%c' (--%s) is systemd-nspawn's, and berth does not "
                                                    "support it: %s.", short_name, n->name, n->instead);
        if (n)
                return log_error_errno(-EOPNOTSUPP, "Option '--%s' is systemd-nspawn's, and berth does not support "
                                                    "it: %s.", n->name, n->instead);
        if (short_name)
                return log_error_errno(-EINVAL, "Unknown option '-%c', or it needs a value, see --help.", short_name);
        return log_error_errno(-EINVAL, "Unknown option '%s', see --help.", arg);
}

void help(void) {
        printf("berth [OPTIONS...] [COMMAND [ARGS...]]\n\n"
               "Boot an OS tree as a container, or run a command in it.\n");
        for (unsigned i = 0; i < option_table_size; i++) {
                const OptionDef *o = &option_table[i];
                char left[64];

                if (o->section)
                        printf("\n%s:\n", o->section);
                snprintf(left, sizeof left, "%s%c%s--%s%s%s%s%s",
                         o->short_name ? "-" : "", o->short_name ? o->short_name : ' ',
                         o->short_name ? " " : " ", o->name,
                         o->arg == OPTION_ARG_OPTIONAL ? "[" : "",
                         o->arg != OPTION_ARG_NONE ? "=" : "",
                         o->metavar ?: "",
                         o->arg == OPTION_ARG_OPTIONAL ? "]" : "");
                if (!o->short_name)
                        memmove(left, left + 1, strlen(left)); /* no short name: indent by the dash only */
                printf("  %-34s %s\n", left, o->help);
                if (o->values)
                        printf("  %-34s   one of: %s\n", "", o->values);
        }
        printf("\nSee the berth(1) man page for details.\n");
}

/* OPTION=help, as nspawn: the values the option takes, one a line. 1 if printed, 0 if the option
 * has no such list. */
static int print_values(const OptionDef *o) {
        if (o->values) {
                _cleanup_strv_free_ char **l = NULL;
                if (strv_split(o->values, " ", &l) < 0)
                        return log_oom();
                STRV_FOREACH(v, l)
                        puts(*v);
                return 1;
        }
        if (streq(o->name, "capability") || streq(o->name, "drop-capability") ||
            streq(o->name, "ambient-capability")) {
                for (int c = 0; c <= capability_last_cap(); c++)
                        if (capability_to_name(c))
                                puts(capability_to_name(c));
                return 1;
        }
        if (streq(o->name, "port")) {
                puts("tcp");
                puts("udp");
                return 1;
        }
        if (streq(o->name, "rlimit")) {
                for (int i = 0; i < RLIMIT_NLIMITS; i++)
                        if (rlimit_names[i])
                                printf("RLIMIT_%s\n", rlimit_names[i]);
                return 1;
        }
        if (streq(o->name, "kill-signal")) {
                char buf[16];
                for (int sig = 1; sig <= SIGRTMAX; sig++)
                        if (sig != SIGKILL && sig != SIGSTOP)
                                puts(signal_to_string(sig, buf));
                return 1;
        }
        if (streq(o->name, "system-call-filter")) {
                size_t n;
                const SyscallGroup *g = seccomp_groups(&n);
                for (size_t i = 0; i < n; i++)
                        puts(g[i].name);
                return 1;
        }
        return 0;
}

int parse_argv(int argc, char *argv[], Settings *s) {
        struct option longopts[ELEMENTSOF(option_table) + 1] = {};
        char shortopts[2 + ELEMENTSOF(option_table) * 2] = "+";
        size_t k = 1;
        int c, idx;

        console_mode_set = false;
        for (unsigned i = 0; i < option_table_size; i++) {
                const OptionDef *o = &option_table[i];
                longopts[i] = (struct option) {
                        .name = o->name,
                        .has_arg = o->arg == OPTION_ARG_NONE       ? no_argument
                                   : o->arg == OPTION_ARG_REQUIRED ? required_argument
                                                                   : optional_argument,
                        .val = 0x100 + (int) i,
                };
                if (o->short_name) {
                        shortopts[k++] = o->short_name;
                        if (o->arg == OPTION_ARG_REQUIRED)
                                shortopts[k++] = ':';
                }
        }
        shortopts[k] = 0;
        opterr = 0;

        while ((c = getopt_long(argc, argv, shortopts, longopts, &idx)) >= 0) {
                const OptionDef *o = NULL;
                const char *detail = NULL;
                int r;

                if (c == '?') {
                        if (optopt >= 0x100) {
                                const OptionDef *bad = &option_table[optopt - 0x100];
                                if (bad->arg == OPTION_ARG_NONE)
                                        return log_error_errno(-EINVAL, "Option '--%s' takes no value, see --help.",
                                                               bad->name);
                                return log_error_errno(-EINVAL, "Option '--%s' needs a value, see --help.",
                                                       bad->name);
                        }
                        return log_unknown_option(argv[optind - 1], optopt > 0 && optopt < 0x100 ? (char) optopt : 0);
                }
                if (c == ':')
                        return log_error_errno(-EINVAL, "Option '%s' needs a value.", argv[optind - 1]);
                if (c >= 0x100)
                        o = &option_table[c - 0x100];
                else
                        for (unsigned i = 0; i < option_table_size; i++)
                                if (option_table[i].short_name == c)
                                        o = &option_table[i];
                if (!o)
                        return log_error_errno(-EINVAL, "Unknown option '%s', see --help.", argv[optind - 1]);

                if (streq(o->name, "help")) {
                        help();
                        return 0;
                }
                if (streq(o->name, "version")) {
                        printf("berth %s\n", BERTH_VERSION);
                        return 0;
                }

                if (optarg && streq(optarg, "help")) {
                        r = print_values(o);
                        if (r != 0)
                                return r < 0 ? r : 0;
                }

                r = o->parse(s, optarg, &detail);
                if (r >= 0)
                        s->cli_set |= SETTING_MASK(o->setting);
                if (r == -ENOMEM)
                        return log_oom();
                if (r < 0) {
                        if (o->arg == OPTION_ARG_NONE)
                                return log_error_errno(r, "Invalid --%s: %s.", o->name, detail ?: "malformed");
                        if (!detail && o->values)
                                return log_error_errno(r, "Invalid --%s= value '%s': expected one of: %s.",
                                                       o->name, strempty(optarg), o->values);
                        return log_error_errno(r, "Invalid --%s= value '%s': %s.", o->name, strempty(optarg),
                                               detail ?: "malformed value");
                }
        }

        if (optind < argc) {
                s->parameters = strv_copy(argv + optind);
                if (!s->parameters)
                        return log_oom();
                /* as with nspawn, a command on the command line also outranks the file's Boot= */
                s->cli_set |= SETTING_MASK(SETTING_PARAMETERS) | SETTING_MASK(SETTING_START_MODE);
        }

        s->console_mode = console_mode_resolve(s->console_mode, console_mode_set);
        return 1;
}

/* --image=: a regular file or a block device; the child mounts it on BERTH_IMAGE_ROOT_DIR,
 * which is what the rest of the start-up takes as the directory. */
static int verify_image(Settings *s) {
        struct stat st;

        if (s->directory)
                return log_error_errno(-EINVAL, "--directory= and --image= cannot be combined: pick one.");
        if (s->template)
                return log_error_errno(-EINVAL, "--template= and --image= cannot be combined.");
        if (stat(s->image, &st) < 0)
                return log_error_errno(negative_errno(), "Cannot use image '%s' (--image=): %m", s->image);
        if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
                return log_error_errno(-EBADFD, "Image '%s' is neither a regular file nor a block device (--image=).",
                                       s->image);
        if (s->verity_data) {
                if (stat(s->verity_data, &st) < 0)
                        return log_error_errno(negative_errno(), "Cannot use verity data '%s' (--verity-data=): %m",
                                               s->verity_data);
                if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
                        return log_error_errno(-EBADFD, "Verity data '%s' is neither a regular file nor a block device "
                                                        "(--verity-data=).", s->verity_data);
        }
        s->directory = strdup(BERTH_IMAGE_ROOT_DIR);
        if (!s->directory)
                return log_oom();
        return 0;
}

int settings_find_image(Settings *s) {
        _cleanup_free_ char *path = NULL;
        bool raw;
        int r;

        if (s->directory || s->image || !s->machine || s->template)
                return 0;
        r = image_find(s->machine, &path, &raw);
        if (r == -ENOENT)
                return log_error_errno(r, "No image for machine '%s' in %s: pass --directory= or --image=.", s->machine,
                                       image_search_path_description());
        if (r < 0)
                return log_error_errno(r, "Failed to look up the image of machine '%s': %m", s->machine);
        if (raw)
                s->image = TAKE_PTR(path);
        else
                s->directory = TAKE_PTR(path);
        return 0;
}

static int verify_directory(Settings *s) {
        struct stat st;
        int r;

        if (s->image)
                return verify_image(s);

        if (s->root_hash || s->root_hash_sig || s->verity_data || s->image_policy)
                return log_error_errno(-EINVAL, "--%s= applies to disk images only: pass --image=, or leave it out.",
                                       s->root_hash       ? "root-hash"
                                       : s->root_hash_sig ? "root-hash-sig"
                                       : s->verity_data   ? "verity-data"
                                                          : "image-policy");

        if (!s->directory) {
                r = path_make_absolute_cwd(".", &s->directory);
                if (r < 0)
                        return log_error_errno(r, "Failed to get the current directory: %m");
        }
        if (streq(s->directory, "/"))
                return log_error_errno(-EINVAL, "Refusing to use the host's root directory as container tree (--directory=/).");

        if (s->template && stat(s->template, &st) < 0)
                return log_error_errno(negative_errno(), "Cannot use template '%s' (--template=): %m", s->template);
        if (s->template && !S_ISDIR(st.st_mode))
                return log_error_errno(-ENOTDIR, "Template '%s' is not a directory (--template=).", s->template);

        if (stat(s->directory, &st) < 0) {
                if (errno == ENOENT && s->template)
                        return 0; /* created from the template */
                return log_error_errno(negative_errno(), "Cannot use container tree '%s' (--directory=): %m",
                                       s->directory);
        }
        if (!S_ISDIR(st.st_mode))
                return log_error_errno(-ENOTDIR, "Container tree '%s' is not a directory (--directory=).",
                                       s->directory);
        return 0;
}

/* Capabilities asked for with --capability= that our bounding set lacks: the guest will not have them,
 * and we say so once, naming them (default ones missing on a container host only at debug level). */
static void warn_missing_capabilities(const Settings *s) {
        uint64_t asked = (s->capability_all ? capability_all() : s->capability) & ~s->drop_capability;
        uint64_t missing = asked & ~capability_bounding_set();
        char list[1024] = "";
        size_t k = 0;

        if (!missing || s->quiet)
                return;
        for (int c = 0; c < 64 && k < sizeof list - 32; c++)
                if ((missing & (UINT64_C(1) << c)) && capability_to_name(c))
                        k += (size_t) snprintf(list + k, sizeof list - k, "%s%s", k ? ", " : "", capability_to_name(c));
        log_warning("Not in berth's capability bounding set, so the container will not have them either: %s.", list);
}

static int verify_network(Settings *s) {
        _cleanup_close_ int fd = -EBADF;
        int t;

        if (s->network_namespace_path) {
                if (settings_network_links(s))
                        return log_error_errno(-EINVAL, "--network-namespace-path= cannot be combined with "
                                                        "the other --network-* options: the links would go into "
                                                        "a namespace that is not the container's own.");
                /* --private-network says "not the host's network", which the named namespace already
                 * is (nspawn accepts the pair). But that namespace is not the container's own: no
                 * CAP_NET_ADMIN and no writable /proc/sys/net in it, as without --private-network. */
                s->private_network = false;
                fd = open(s->network_namespace_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return log_error_errno(negative_errno(), "Cannot open network namespace '%s' "
                                               "(--network-namespace-path=): %m", s->network_namespace_path);
                t = ioctl(fd, NS_GET_NSTYPE);
                if (t != CLONE_NEWNET)
                        return log_error_errno(-EINVAL, "'%s' is not a network namespace (--network-namespace-path=): "
                                               "name one such as /run/netns/NAME or /proc/PID/ns/net.",
                                               s->network_namespace_path);
        }
        if (s->network_bridge && s->network_zone)
                return log_error_errno(-EINVAL, "--network-bridge= and --network-zone= cannot be combined.");
        /* the forwards go to the address of the machine's veth */
        if (!strv_isempty(s->ports) && !s->network_veth && !s->network_bridge && !s->network_zone)
                return log_error_errno(-EINVAL, "--port= needs a private network with a virtual Ethernet link: add "
                                                "--network-veth (or --network-bridge=, --network-zone=).");
        /* links of its own need a network namespace of its own */
        if (settings_network_links(s))
                s->private_network = true;
        return 0;
}

int settings_machine_name(Settings *s) {
        int r;

        if (s->machine)
                return 0;
        if (!s->image && !s->directory)
                return log_error_errno(-EINVAL, "No machine named: pass --machine=NAME (or the tree with --directory=).");
        r = s->image ? machine_name_from_image_path(s->image, &s->machine)
                     : machine_name_from_path(s->directory, &s->machine);
        if (r < 0)
                return log_error_errno(r, "Cannot make a machine name from '%s': pass one with --machine=.",
                                       s->image ?: s->directory);
        return 0;
}

/* systemd-nspawn's environment knobs that berth honours, as booleans: scripts and test suites set
 * them to relax a check or keep a mount away. Each row names the Settings flag that a false value
 * sets. Garbage is refused, as nspawn refuses it, so that a typo does not pass for the default. */
static const struct {
        const char *name;
        size_t offset_if_false;
        const char *what;
} env_knobs[] = {
        { "SYSTEMD_NSPAWN_CHECK_OS_RELEASE", offsetof(Settings, no_os_release_check),
          "0 skips the checks for an os-release file and an init" },
        { "SYSTEMD_NSPAWN_TMPFS_TMP", offsetof(Settings, no_tmpfs_tmp), "0 keeps the tree's own /tmp" },
};

/* $SYSTEMD_NSPAWN_API_VFS_WRITABLE: a boolean or "network", as nspawn reads it. What it may not be
 * combined with is checked once the network and the user namespace are known (verify_api_vfs()). */
static int load_api_vfs_environment(Settings *s) {
        const char *e = getenv("SYSTEMD_NSPAWN_API_VFS_WRITABLE");
        int b;

        if (!e)
                return 0;
        if (streq(e, "network")) {
                s->api_vfs = API_VFS_NETWORK;
                return 0;
        }
        b = parse_boolean(e);
        if (b < 0)
                return log_error_errno(-EINVAL, "Invalid $SYSTEMD_NSPAWN_API_VFS_WRITABLE value '%s': expected a "
                                                "boolean or 'network' (1 makes /proc/sys and /sys writable, "
                                                "'network' only /proc/sys/net). Unset it, or set it to 0.",
                                       e);
        s->api_vfs = b ? API_VFS_WRITABLE : API_VFS_READ_ONLY;
        return 0;
}

/* As nspawn: a container with a user namespace never gets writable kernel knobs, and a writable
 * /proc/sys/net only in a network namespace of its own (the one its root owns, in which the kernel
 * lets it mount sysfs and tune the network); nspawn refuses both, so does berth. */
static int verify_api_vfs(const Settings *s) {
        if (s->userns_mode == USERNS_NO)
                return 0;
        if (s->api_vfs == API_VFS_WRITABLE)
                return log_error_errno(-EINVAL, "$SYSTEMD_NSPAWN_API_VFS_WRITABLE=%s cannot be combined with a user "
                                                "namespace (-U, --private-users=): its /proc/sys and /sys stay "
                                                "read-only, as with systemd-nspawn. Unset the variable, or set it "
                                                "to 'network' and add --private-network.",
                                       getenv("SYSTEMD_NSPAWN_API_VFS_WRITABLE") ?: "1");
        if (s->api_vfs == API_VFS_NETWORK && !s->private_network)
                return log_error_errno(-EINVAL, "$SYSTEMD_NSPAWN_API_VFS_WRITABLE=network with a user namespace (-U, "
                                                "--private-users=) needs a network of its own: add "
                                                "--private-network (or --network-veth...), as systemd-nspawn "
                                                "requires.");
        return 0;
}

int settings_load_environment(Settings *s) {
        for (size_t i = 0; i < ELEMENTSOF(env_knobs); i++) {
                const char *e = getenv(env_knobs[i].name);
                int b;

                if (!e)
                        continue;
                b = parse_boolean(e);
                if (b < 0)
                        return log_error_errno(-EINVAL, "Invalid $%s value '%s': expected a boolean (%s). Unset it, or "
                                                        "set it to 0 or 1.",
                                               env_knobs[i].name, e, env_knobs[i].what);
                *(bool *) ((uint8_t *) s + env_knobs[i].offset_if_false) = !b;
        }
        return load_api_vfs_environment(s);
}

int settings_verify(Settings *s) {
        int r;

        r = settings_load_environment(s);
        if (r < 0)
                return r;
        r = verify_directory(s);
        if (r < 0)
                return r;

        r = settings_machine_name(s);
        if (r < 0)
                return r;
        if (s->ephemeral && s->template)
                return log_error_errno(-EINVAL, "--ephemeral and --template cannot be combined.");
        if (s->ephemeral && s->volatile_mode != VOLATILE_NO)
                return log_error_errno(-EINVAL, "--ephemeral and --volatile= cannot be combined.");
        if (s->pivot_root && s->volatile_mode == VOLATILE_YES)
                return log_error_errno(-EINVAL, "--pivot-root= and --volatile=yes cannot be combined: the root is "
                                                "a fresh tmpfs with only the tree's /usr.");
        if (s->read_only && s->volatile_mode == VOLATILE_OVERLAY)
                return log_error_errno(-EINVAL, "--read-only and --volatile=overlay cannot be combined.");
        if (s->start_mode == START_BOOT && s->user)
                return log_error_errno(-EINVAL, "--user= cannot be combined with --boot: the init runs as root.");
        if (s->start_mode == START_BOOT && s->working_directory)
                return log_error_errno(-EINVAL, "--chdir= cannot be combined with --boot.");
        if (!strv_isempty(s->bind_users) && s->userns_mode == USERNS_NO)
                return log_error_errno(-EINVAL, "--bind-user= needs a user namespace, in which the user gets an id "
                                                "of its own: add -U (or --private-users=pick).");
        r = verify_network(s);
        if (r < 0)
                return r;
        r = verify_api_vfs(s);
        if (r < 0)
                return r;
        if (s->notify_ready < 0)
                s->notify_ready = false;
        if (!s->userns_ownership_set)
                s->userns_ownership = s->userns_mode == USERNS_PICK ? USERNS_OWNERSHIP_AUTO : USERNS_OWNERSHIP_OFF;
        if (s->userns_mode == USERNS_FIXED && s->start_mode == START_BOOT && s->uid_range.count < USERNS_RANGE_SIZE)
                return log_error_errno(-ERANGE, "--private-users=%u:%u gives a booted guest only %u ids: its init "
                                                "and services need 65536 (nobody is 65534). Give COUNT 65536, or "
                                                "use --private-users=pick.",
                                       s->uid_range.start, s->uid_range.count, s->uid_range.count);
        if (s->userns_mode != USERNS_NO && s->userns_ownership == USERNS_OWNERSHIP_CHOWN &&
            (s->image || s->ephemeral || s->volatile_mode != VOLATILE_NO))
                return log_error_errno(-EINVAL, "--private-users-ownership=chown shifts a directory tree on disk, for "
                                                "good: not %s. Use map (the default with -U), which changes nothing.",
                                       s->image ? "an image" : s->ephemeral ? "the tree under --ephemeral's overlay"
                                                                            : "the tree under --volatile=");
        if (s->ambient_capability && s->start_mode == START_BOOT)
                return log_error_errno(-EINVAL, "--ambient-capability= cannot be combined with --boot: an init "
                                                "gives its services their capabilities itself.");
        if (s->ambient_capability & ~settings_container_capabilities(s))
                return log_error_errno(-EINVAL, "--ambient-capability= names capabilities the container does not "
                                                "have: add them with --capability=, or leave them out.");
        STRV_FOREACH(g, s->import_credentials) {
                r = credentials_import(*g, &s->credentials, &s->n_credentials);
                if (r == -ENOMEM)
                        return log_oom();
                if (r < 0)
                        return r;
        }
        if (credentials_total_size(s->credentials, s->n_credentials) > CREDENTIALS_TOTAL_SIZE_MAX)
                return log_error_errno(-E2BIG, "The credentials come to more than 1 MiB together. Pass fewer or "
                                               "smaller ones (a large file is better bound with --bind-ro=).");
        warn_missing_capabilities(s);
        /* kill_signal 0: chosen at start, from the init (boot) or start mode */
        return 0;
}
