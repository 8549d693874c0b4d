/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth-mount.h"
#include "berth-options.h"
#include "berth-settings-file.h"
#include "log.h"
#include "machine-name.h"
#include "util.h"

/* ---- --settings= ---- */

static const char *const settings_mode_table[_SETTINGS_MODE_MAX] = {
        [SETTINGS_MODE_YES] = "yes",
        [SETTINGS_MODE_NO] = "no",
        [SETTINGS_MODE_OVERRIDE] = "override",
        [SETTINGS_MODE_TRUSTED] = "trusted",
};

const char *settings_mode_to_string(SettingsMode m) {
        if ((int) m < 0 || m >= _SETTINGS_MODE_MAX)
                return NULL;
        return settings_mode_table[m];
}

SettingsMode settings_mode_from_string(const char *s) {
        int b = parse_boolean(s);
        if (b >= 0)
                return b ? SETTINGS_MODE_YES : SETTINGS_MODE_NO;
        return (SettingsMode) string_table_lookup(settings_mode_table, _SETTINGS_MODE_MAX, s);
}

/* ---- the keys ----
 *
 * One row per key of systemd.nspawn(5). A key of berth's either hands its value to the parser of
 * the command-line option with the same meaning (so a value means the same in both places), or
 * to a small adapter where the file's syntax differs (booleans for what are flags on the command
 * line, Limit*= for --rlimit=, quoted word lists). A key of nspawn's that berth has no option
 * for is an error that says so, unless its value asks for what berth does anyway
 * (PrivateUsers=no).
 *
 * Privileged keys are those that give the container more than the default: more capabilities or
 * system calls, host files and directories, network interfaces (a network namespace of its own
 * comes with CAP_NET_ADMIN), a chosen machine ID, resource limits, OOM score, CPU affinity, the
 * guest's journal on the host (LinkJournal=), and a copy of the tree on the host (Ephemeral=). As with nspawn, they count only in files from
 * trusted places (/etc, /run) or with --settings=trusted; elsewhere (next to the image, where
 * downloaded images bring their own) berth checks them, ignores them and says so. */

typedef enum KeyFlags {
        KEY_PRIVILEGED = 1 << 0,
} KeyFlags;

typedef struct SettingsKey SettingsKey;
typedef int (*key_parser_t)(const SettingsKey *k, Settings *s, const char *value, const char **detail);

struct SettingsKey {
        const char *section;
        const char *name;
        key_parser_t parse;       /* NULL: nspawn has the key, berth does not support it */
        const char *option;       /* the command-line option that does the work */
        size_t offset;            /* key_flag: the bool in Settings */
        int arg;                  /* key_start_mode: StartMode; key_rlimit: RLIMIT_*; key_mount: type */
        KeyFlags flags;
        const char *berth_value;  /* unsupported keys: the value that asks for what berth does anyway */
};

static int call_option(const SettingsKey *k, Settings *s, const char *value, const char **detail) {
        const OptionDef *o = option_find(k->option);
        if (!o)
                return -EINVAL; /* a typo in the table below; test-settings-file checks every row */
        return o->parse(s, value, detail);
}

/* the value as the option takes it */
static int key_option(const SettingsKey *k, Settings *s, const char *value, const char **detail) {
        return call_option(k, s, value, detail);
}

/* Ephemeral=, ReadOnly=, Private=: a boolean for what is a flag on the command line */
static int key_flag(const SettingsKey *k, Settings *s, const char *value, const char **detail) {
        int b = parse_boolean(value);
        if (b < 0) {
                *detail = "expected a boolean";
                return -EINVAL;
        }
        if (b)
                return call_option(k, s, NULL, detail);
        *(bool *) ((uint8_t *) s + k->offset) = false;
        return 0;
}

/* Boot=, ProcessTwo= */
static int key_start_mode(const SettingsKey *k, Settings *s, const char *value, const char **detail) {
        int b = parse_boolean(value);
        if (b < 0) {
                *detail = "expected a boolean";
                return -EINVAL;
        }
        if (!b) {
                if (s->start_mode == (StartMode) k->arg)
                        s->start_mode = START_PID1;
                return 0;
        }
        if (s->start_mode != START_PID1 && s->start_mode != (StartMode) k->arg) {
                *detail = k->arg == START_BOOT ? "cannot be combined with ProcessTwo=yes"
                                               : "cannot be combined with Boot=yes";
                return -EINVAL;
        }
        s->start_mode = k->arg;
        return 0;
}

/* Whitespace-separated words; '...' and "..." group, backslash escapes the next character. */
static int split_quoted(const char *p, char ***ret, const char **detail) {
        _cleanup_strv_free_ char **l = NULL;
        int r;

        for (;;) {
                _cleanup_free_ char *w = NULL;
                size_t n = 0;
                char quote = 0;

                p += strspn(p, " \t");
                if (!*p)
                        break;
                w = malloc(strlen(p) + 1);
                if (!w)
                        return -ENOMEM;
                for (; *p; p++) {
                        if (!quote && strchr(" \t", *p))
                                break;
                        if (*p == '\\') {
                                if (!p[1]) {
                                        *detail = "a backslash at the end";
                                        return -EINVAL;
                                }
                                w[n++] = *++p;
                        } else if (quote && *p == quote)
                                quote = 0;
                        else if (!quote && (*p == '"' || *p == '\''))
                                quote = *p;
                        else
                                w[n++] = *p;
                }
                if (quote) {
                        *detail = "a quote is not closed";
                        return -EINVAL;
                }
                w[n] = 0;
                r = strv_consume(&l, TAKE_PTR(w));
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

/* Parameters=: the command line, or the init's arguments with Boot=yes */
static int key_parameters(const SettingsKey *k, Settings *s, const char *value, const char **detail) {
        char **l = NULL;
        int r = split_quoted(value, &l, detail);
        if (r < 0)
                return r;
        strv_free(s->parameters);
        s->parameters = l;
        return 0;
}

/* Environment=: one or more quoted VAR=VALUE words. Unlike --setenv=, a bare name is refused: a
 * file must not copy variables out of whatever environment berth was started in. */
static int key_environment(const SettingsKey *k, Settings *s, const char *value, const char **detail) {
        _cleanup_strv_free_ char **l = NULL;
        int r = split_quoted(value, &l, detail);
        if (r < 0)
                return r;
        STRV_FOREACH(w, l)
                if (!strchr(*w, '=')) {
                        *detail = "expected VAR=VALUE";
                        return -EINVAL;
                }
        STRV_FOREACH(w, l) {
                r = call_option(k, s, *w, detail);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Interface=, MACVLAN=, IPVLAN=: a space-separated list, each word as the option takes it */
static int key_words(const SettingsKey *k, Settings *s, const char *value, const char **detail) {
        _cleanup_strv_free_ char **l = NULL;
        int r = split_quoted(value, &l, detail);
        if (r < 0)
                return r;
        STRV_FOREACH(w, l) {
                r = call_option(k, s, *w, detail);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* LimitNOFILE=SOFT[:HARD] is --rlimit=RLIMIT_NOFILE=SOFT[:HARD] */
static int key_rlimit(const SettingsKey *k, Settings *s, const char *value, const char **detail) {
        _cleanup_free_ char *a = strjoin("RLIMIT_", k->name + strlen("Limit"), "=", value);
        if (!a)
                return -ENOMEM;
        return call_option(k, s, a, detail);
}

/* Bind=, Overlay=: a relative host path would be relative to wherever berth was started */
static int key_mount(const SettingsKey *k, Settings *s, const char *value, const char **detail) {
        if (k->arg != CUSTOM_MOUNT_TMPFS && k->arg != CUSTOM_MOUNT_INACCESSIBLE && !strchr("/+:", value[0])) {
                *detail = "host paths in a settings file must be absolute";
                return -EINVAL;
        }
        return call_option(k, s, value, detail);
}

#define KEY(sec, key, fn, opt, f) { .section = sec, .name = key, .parse = fn, .option = opt, .flags = f }
#define KEY_FLAG(sec, key, opt, field, f) \
        { .section = sec, .name = key, .parse = key_flag, .option = opt, .offset = offsetof(Settings, field), .flags = f }
#define KEY_MODE(key, mode) { .section = "Exec", .name = key, .parse = key_start_mode, .arg = mode }
#define KEY_LIMIT(res) \
        { .section = "Exec", .name = "Limit" #res, .parse = key_rlimit, .option = "rlimit", \
          .arg = RLIMIT_##res, .flags = KEY_PRIVILEGED }
#define KEY_MOUNT(key, opt, type) \
        { .section = "Files", .name = key, .parse = key_mount, .option = opt, .arg = type, .flags = KEY_PRIVILEGED }
#define KEY_UNSUPPORTED(sec, key, value) { .section = sec, .name = key, .berth_value = value }

static const SettingsKey settings_keys[] = {
        KEY_MODE("Boot", START_BOOT),
        KEY_MODE("ProcessTwo", START_PID2),
        KEY("Exec", "Parameters", key_parameters, NULL, 0),
        KEY("Exec", "Environment", key_environment, "setenv", 0),
        KEY("Exec", "SetCredential", key_option, "set-credential", 0),
        /* reads a host file */
        KEY("Exec", "LoadCredential", key_option, "load-credential", KEY_PRIVILEGED),
        KEY("Exec", "User", key_option, "user", 0),
        KEY("Exec", "WorkingDirectory", key_option, "chdir", 0),
        KEY("Exec", "Capability", key_option, "capability", KEY_PRIVILEGED),
        KEY("Exec", "DropCapability", key_option, "drop-capability", 0),
        KEY("Exec", "NoNewPrivileges", key_option, "no-new-privileges", 0),
        KEY("Exec", "KillSignal", key_option, "kill-signal", 0),
        KEY("Exec", "MachineID", key_option, "uuid", KEY_PRIVILEGED),
        KEY("Exec", "NotifyReady", key_option, "notify-ready", 0),
        /* privileged for what it allows; what it denies counts from anywhere */
        KEY("Exec", "SystemCallFilter", key_option, "system-call-filter", KEY_PRIVILEGED),
        KEY_LIMIT(CPU), KEY_LIMIT(FSIZE), KEY_LIMIT(DATA), KEY_LIMIT(STACK),
        KEY_LIMIT(CORE), KEY_LIMIT(RSS), KEY_LIMIT(NOFILE), KEY_LIMIT(AS),
        KEY_LIMIT(NPROC), KEY_LIMIT(MEMLOCK), KEY_LIMIT(LOCKS), KEY_LIMIT(SIGPENDING),
        KEY_LIMIT(MSGQUEUE), KEY_LIMIT(NICE), KEY_LIMIT(RTPRIO), KEY_LIMIT(RTTIME),
        KEY("Exec", "OOMScoreAdjust", key_option, "oom-score-adjust", KEY_PRIVILEGED),
        KEY("Exec", "CPUAffinity", key_option, "cpu-affinity", KEY_PRIVILEGED),
        KEY("Exec", "Hostname", key_option, "hostname", 0),
        KEY("Exec", "ResolvConf", key_option, "resolv-conf", 0),
        KEY("Exec", "Timezone", key_option, "timezone", 0),
        KEY_FLAG("Exec", "Ephemeral", "ephemeral", ephemeral, KEY_PRIVILEGED),
        KEY("Exec", "PivotRoot", key_option, "pivot-root", 0),
        KEY("Exec", "AmbientCapability", key_option, "ambient-capability", KEY_PRIVILEGED),
        KEY("Exec", "Personality", key_option, "personality", 0),
        /* privileged for what it weakens (no, identity, a chosen range); pick and yes count from anywhere */
        KEY("Exec", "PrivateUsers", key_option, "private-users", KEY_PRIVILEGED),
        KEY("Exec", "LinkJournal", key_option, "link-journal", KEY_PRIVILEGED),
        KEY("Exec", "SuppressSync", key_option, "suppress-sync", 0),

        KEY_FLAG("Files", "ReadOnly", "read-only", read_only, 0),
        KEY("Files", "Volatile", key_option, "volatile", 0),
        KEY_MOUNT("Bind", "bind", CUSTOM_MOUNT_BIND),
        KEY_MOUNT("BindReadOnly", "bind-ro", CUSTOM_MOUNT_BIND),
        KEY_MOUNT("TemporaryFileSystem", "tmpfs", CUSTOM_MOUNT_TMPFS),
        KEY_MOUNT("Inaccessible", "inaccessible", CUSTOM_MOUNT_INACCESSIBLE),
        KEY_MOUNT("Overlay", "overlay", CUSTOM_MOUNT_OVERLAY),
        KEY_MOUNT("OverlayReadOnly", "overlay-ro", CUSTOM_MOUNT_OVERLAY),
        KEY_UNSUPPORTED("Files", "PrivateUsersChown", "no"),
        /* privileged for chown, which rewrites the tree on disk; the others count from anywhere */
        KEY("Files", "PrivateUsersOwnership", key_option, "private-users-ownership", KEY_PRIVILEGED),
        /* a host user's home directory, as a bind would be */
        KEY("Files", "BindUser", key_words, "bind-user", KEY_PRIVILEGED),
        KEY("Files", "BindUserShell", key_option, "bind-user-shell", 0),

        KEY_FLAG("Network", "Private", "private-network", private_network, KEY_PRIVILEGED),
        KEY_FLAG("Network", "VirtualEthernet", "network-veth", network_veth, KEY_PRIVILEGED),
        KEY("Network", "VirtualEthernetExtra", key_option, "network-veth-extra", KEY_PRIVILEGED),
        KEY("Network", "Interface", key_words, "network-interface", KEY_PRIVILEGED),
        KEY("Network", "MACVLAN", key_words, "network-macvlan", KEY_PRIVILEGED),
        KEY("Network", "IPVLAN", key_words, "network-ipvlan", KEY_PRIVILEGED),
        KEY("Network", "Bridge", key_option, "network-bridge", KEY_PRIVILEGED),
        KEY("Network", "Zone", key_option, "network-zone", KEY_PRIVILEGED),
        KEY("Network", "Port", key_option, "port", KEY_PRIVILEGED),
};

static const char *const settings_sections[] = { "Exec", "Files", "Network" };

size_t settings_keys_count(void) {
        return ELEMENTSOF(settings_keys);
}

const char *settings_key_describe(size_t i, const char **ret_section, const char **ret_option,
                                  bool *ret_supported, bool *ret_privileged) {
        if (i >= ELEMENTSOF(settings_keys))
                return NULL;
        *ret_section = settings_keys[i].section;
        *ret_option = settings_keys[i].option;
        *ret_supported = settings_keys[i].parse;
        *ret_privileged = settings_keys[i].flags & KEY_PRIVILEGED;
        return settings_keys[i].name;
}

static const SettingsKey *key_find(const char *section, const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(settings_keys); i++)
                if (streq(settings_keys[i].section, section) && streq(settings_keys[i].name, name))
                        return &settings_keys[i];
        return NULL;
}

static SettingKind key_setting(const SettingsKey *k) {
        const OptionDef *o;

        if (k->parse == key_start_mode)
                return SETTING_START_MODE;
        if (k->parse == key_parameters)
                return SETTING_PARAMETERS;
        o = k->option ? option_find(k->option) : NULL;
        return o ? o->setting : SETTING_NONE;
}

/* ---- merging: how the command line and the file combine ----
 *
 * The rule:
 *  - A setting with one value (Boot=, Hostname=, User=, ReadOnly=, Volatile=, KillSignal=, ...)
 *    comes from the command line if the command line set it, else from the file. With
 *    --settings=override the file's value wins instead.
 *  - A setting that is a list (Environment=, Bind= and the other mounts, Capability=,
 *    DropCapability=, SystemCallFilter=) is merged: the file's entries, then the command
 *    line's, so that a --bind= on the command line adds to the file's Bind= rather than
 *    dropping them. Where both name the same thing (a variable in Environment=), the
 *    command line's entry wins, or with --settings=override the file's.
 *  - Limit*= counts per resource: a --rlimit=RLIMIT_NOFILE= on the command line outranks
 *    LimitNOFILE=, and leaves the file's other limits alone.
 *  - A command on the command line outranks Parameters= and also Boot= and ProcessTwo=, as
 *    with nspawn.
 */

typedef enum FieldType {
        FIELD_CUSTOM,
        FIELD_BOOL,
        FIELD_INT,     /* int and the enums */
        FIELD_STRING,
        FIELD_STRV,    /* one value that happens to be a list: Parameters= */
} FieldType;

typedef struct SettingField {
        FieldType type;
        size_t offset;
        bool list;  /* merged rather than replaced */
        /* FIELD_CUSTOM: make S have FILE's value (a scalar), or both (a list: FIRST's entries
         * before the others); takes from FILE what it keeps */
        int (*merge)(Settings *s, Settings *file, bool file_last);
        void (*reset)(Settings *s);
} SettingField;

static int merge_uuid(Settings *s, Settings *f, bool file_last) {
        memcpy(s->uuid, f->uuid, sizeof s->uuid);
        s->uuid_set = f->uuid_set;
        return 0;
}

static void reset_uuid(Settings *s) {
        memset(s->uuid, 0, sizeof s->uuid);
        s->uuid_set = false;
}

static int env_put(char ***l, const char *a) {
        size_t k = strcspn(a, "=") + 1;
        for (char **e = *l; e && *e; e++)
                if (strncmp(*e, a, k) == 0)
                        return free_and_strdup(e, a);
        return strv_extend(l, a);
}

static int merge_environment(Settings *s, Settings *f, bool file_last) {
        _cleanup_strv_free_ char **l = NULL;
        char **first = file_last ? s->environment : f->environment;
        char **then = file_last ? f->environment : s->environment;
        int r;

        STRV_FOREACH(e, first)
                if ((r = env_put(&l, *e)) < 0)
                        return r;
        STRV_FOREACH(e, then)
                if ((r = env_put(&l, *e)) < 0)
                        return r;
        strv_free(s->environment);
        s->environment = TAKE_PTR(l);
        return 0;
}

static void reset_environment(Settings *s) {
        strv_free(s->environment);
        s->environment = NULL;
}

static int merge_custom_mounts(Settings *s, Settings *f, bool file_last) {
        size_t n = s->n_custom_mounts + f->n_custom_mounts;
        CustomMount *l;

        if (f->n_custom_mounts == 0)
                return 0;
        if (s->n_custom_mounts == 0) {
                /* nothing to put before or after: the file's array moves as it is (and no
                 * memcpy() from the NULL of an empty list, which is undefined behaviour) */
                l = TAKE_PTR(f->custom_mounts);
        } else {
                l = calloc(n, sizeof(CustomMount));
                if (!l)
                        return -ENOMEM;
                /* the entries move: both arrays are freed shallowly */
                if (file_last) {
                        memcpy(l, s->custom_mounts, s->n_custom_mounts * sizeof(CustomMount));
                        memcpy(l + s->n_custom_mounts, f->custom_mounts, f->n_custom_mounts * sizeof(CustomMount));
                } else {
                        memcpy(l, f->custom_mounts, f->n_custom_mounts * sizeof(CustomMount));
                        memcpy(l + f->n_custom_mounts, s->custom_mounts, s->n_custom_mounts * sizeof(CustomMount));
                }
        }
        free(s->custom_mounts);
        free(f->custom_mounts);
        s->custom_mounts = l;
        s->n_custom_mounts = n;
        f->custom_mounts = NULL;
        f->n_custom_mounts = 0;
        return 0;
}

static void reset_custom_mounts(Settings *s) {
        custom_mount_free_all(s->custom_mounts, s->n_custom_mounts);
        s->custom_mounts = NULL;
        s->n_custom_mounts = 0;
}

static int merge_capability(Settings *s, Settings *f, bool file_last) {
        s->capability |= f->capability;
        s->capability_all = s->capability_all || f->capability_all;
        return 0;
}

static void reset_capability(Settings *s) {
        s->capability = 0;
        s->capability_all = false;
}

static int merge_drop_capability(Settings *s, Settings *f, bool file_last) {
        s->drop_capability |= f->drop_capability;
        return 0;
}

static void reset_drop_capability(Settings *s) {
        s->drop_capability = 0;
}

static int merge_ambient_capability(Settings *s, Settings *f, bool file_last) {
        s->ambient_capability |= f->ambient_capability;
        return 0;
}

static void reset_ambient_capability(Settings *s) {
        s->ambient_capability = 0;
}

static int merge_bind_user_shell(Settings *s, Settings *f, bool file_last) {
        free(s->bind_user_shell);
        s->bind_user_shell = TAKE_PTR(f->bind_user_shell);
        s->bind_user_shell_copy = f->bind_user_shell_copy;
        return 0;
}

static void reset_bind_user_shell(Settings *s) {
        free(s->bind_user_shell);
        s->bind_user_shell = NULL;
        s->bind_user_shell_copy = false;
}

static int strv_prepend_all(char ***l, char **first) {
        size_t n = strv_length(first), m = strv_length(*l);
        char **r;

        if (n == 0)
                return 0;
        r = calloc(n + m + 1, sizeof(char *));
        if (!r)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                r[i] = first[i];
        for (size_t i = 0; i < m; i++)
                r[n + i] = (*l)[i];
        free(*l);
        *l = r;
        first[0] = NULL; /* the strings moved */
        return 0;
}

static int merge_syscall_filter(Settings *s, Settings *f, bool file_last) {
        int r;

        /* order does not matter here: what is denied wins over what is allowed */
        r = strv_prepend_all(&s->syscall_allow, f->syscall_allow);
        if (r < 0)
                return r;
        return strv_prepend_all(&s->syscall_deny, f->syscall_deny);
}

static void reset_syscall_filter(Settings *s) {
        strv_free(s->syscall_allow);
        strv_free(s->syscall_deny);
        s->syscall_allow = s->syscall_deny = NULL;
}

static int merge_rlimit(Settings *s, Settings *f, bool file_last) {
        for (size_t i = 0; i < ELEMENTSOF(s->rlimit); i++) {
                if (!f->rlimit[i] || (s->rlimit[i] && !file_last))
                        continue;
                free(s->rlimit[i]);
                s->rlimit[i] = TAKE_PTR(f->rlimit[i]);
        }
        return 0;
}

static void reset_rlimit(Settings *s) {
        for (size_t i = 0; i < ELEMENTSOF(s->rlimit); i++) {
                free(s->rlimit[i]);
                s->rlimit[i] = NULL;
        }
}

static int merge_oom_score_adjust(Settings *s, Settings *f, bool file_last) {
        s->oom_score_adjust = f->oom_score_adjust;
        s->oom_score_adjust_set = f->oom_score_adjust_set;
        return 0;
}

static void reset_oom_score_adjust(Settings *s) {
        s->oom_score_adjust = 0;
        s->oom_score_adjust_set = false;
}

static int merge_cpu_affinity(Settings *s, Settings *f, bool file_last) {
        free(s->cpu_set.set);
        s->cpu_set = f->cpu_set;
        f->cpu_set = (CPUSet) {};
        return 0;
}

static void reset_cpu_affinity(Settings *s) {
        free(s->cpu_set.set);
        s->cpu_set = (CPUSet) {};
}

static int merge_private_users(Settings *s, Settings *f, bool file_last) {
        s->userns_mode = f->userns_mode;
        s->uid_range = f->uid_range;
        return 0;
}

static void reset_private_users(Settings *s) {
        s->userns_mode = USERNS_NO;
        s->uid_range = (UidRange) {};
}

static int merge_private_users_ownership(Settings *s, Settings *f, bool file_last) {
        s->userns_ownership = f->userns_ownership;
        s->userns_ownership_set = f->userns_ownership_set;
        return 0;
}

static void reset_private_users_ownership(Settings *s) {
        s->userns_ownership = USERNS_OWNERSHIP_OFF;
        s->userns_ownership_set = false;
}

/* credentials: FIRST's, then the others'; the same ID twice keeps the later one */
static int merge_credentials(Settings *s, Settings *f, bool file_last) {
        Settings *first = file_last ? s : f, *then = file_last ? f : s;
        Credential *l = NULL;
        size_t n = 0;
        int r = 0;

        for (Settings **x = (Settings *[]) { first, then, NULL }; *x; x++) {
                for (size_t i = 0; i < (*x)->n_credentials; i++) {
                        Credential *c = &(*x)->credentials[i];
                        if (r >= 0)
                                r = credential_put(&l, &n, TAKE_PTR(c->id), TAKE_PTR(c->data), c->size);
                }
                credential_free_all((*x)->credentials, (*x)->n_credentials);
                (*x)->credentials = NULL;
                (*x)->n_credentials = 0;
        }
        s->credentials = l;
        s->n_credentials = n;
        return r;
}

static void reset_credentials(Settings *s) {
        credential_free_all(s->credentials, s->n_credentials);
        s->credentials = NULL;
        s->n_credentials = 0;
}

#define FIELD(t, f) { .type = t, .offset = offsetof(Settings, f) }
#define CUSTOM(name, is_list) { .type = FIELD_CUSTOM, .list = is_list, .merge = merge_##name, .reset = reset_##name }

static const SettingField setting_fields[_SETTING_KIND_MAX] = {
        [SETTING_START_MODE] = FIELD(FIELD_INT, start_mode),
        [SETTING_PARAMETERS] = FIELD(FIELD_STRV, parameters),
        [SETTING_EPHEMERAL] = FIELD(FIELD_BOOL, ephemeral),
        [SETTING_HOSTNAME] = FIELD(FIELD_STRING, hostname),
        [SETTING_UUID] = CUSTOM(uuid, false),
        [SETTING_ENVIRONMENT] = CUSTOM(environment, true),
        [SETTING_WORKING_DIRECTORY] = FIELD(FIELD_STRING, working_directory),
        [SETTING_USER] = FIELD(FIELD_STRING, user),
        [SETTING_PRIVATE_NETWORK] = FIELD(FIELD_BOOL, private_network),
        [SETTING_READ_ONLY] = FIELD(FIELD_BOOL, read_only),
        [SETTING_VOLATILE] = FIELD(FIELD_INT, volatile_mode),
        [SETTING_CUSTOM_MOUNTS] = CUSTOM(custom_mounts, true),
        [SETTING_RESOLV_CONF] = FIELD(FIELD_INT, resolv_conf),
        [SETTING_TIMEZONE] = FIELD(FIELD_INT, timezone),
        [SETTING_CAPABILITY] = CUSTOM(capability, true),
        [SETTING_DROP_CAPABILITY] = CUSTOM(drop_capability, true),
        [SETTING_NO_NEW_PRIVILEGES] = FIELD(FIELD_BOOL, no_new_privileges),
        [SETTING_SYSCALL_FILTER] = CUSTOM(syscall_filter, true),
        [SETTING_RLIMIT] = CUSTOM(rlimit, true),
        [SETTING_OOM_SCORE_ADJUST] = CUSTOM(oom_score_adjust, false),
        [SETTING_CPU_AFFINITY] = CUSTOM(cpu_affinity, false),
        [SETTING_KILL_SIGNAL] = FIELD(FIELD_INT, kill_signal),
        [SETTING_NOTIFY_READY] = FIELD(FIELD_INT, notify_ready),
        [SETTING_LINK_JOURNAL] = FIELD(FIELD_INT, link_journal),
        /* the network settings go together: see settings_merge() */
        [SETTING_NETWORK_VETH] = FIELD(FIELD_BOOL, network_veth),
        [SETTING_NETWORK_VETH_EXTRA] = FIELD(FIELD_STRV, network_veth_extra),
        [SETTING_NETWORK_BRIDGE] = FIELD(FIELD_STRING, network_bridge),
        [SETTING_NETWORK_ZONE] = FIELD(FIELD_STRING, network_zone),
        [SETTING_NETWORK_INTERFACE] = FIELD(FIELD_STRV, network_interfaces),
        [SETTING_NETWORK_MACVLAN] = FIELD(FIELD_STRV, network_macvlan),
        [SETTING_NETWORK_IPVLAN] = FIELD(FIELD_STRV, network_ipvlan),
        [SETTING_PORT] = FIELD(FIELD_STRV, ports),
        [SETTING_PRIVATE_USERS] = CUSTOM(private_users, false),
        [SETTING_PRIVATE_USERS_OWNERSHIP] = CUSTOM(private_users_ownership, false),
        [SETTING_CREDENTIALS] = CUSTOM(credentials, true),
        [SETTING_SUPPRESS_SYNC] = FIELD(FIELD_BOOL, suppress_sync),
        [SETTING_AMBIENT_CAPABILITY] = CUSTOM(ambient_capability, true),
        [SETTING_PERSONALITY] = FIELD(FIELD_INT, personality),
        [SETTING_PIVOT_ROOT] = FIELD(FIELD_STRV, pivot_root),
        /* the file's users replace the command line's (unless it set some), as nspawn's */
        [SETTING_BIND_USER] = FIELD(FIELD_STRV, bind_users),
        [SETTING_BIND_USER_SHELL] = CUSTOM(bind_user_shell, false),
};

static void field_reset(Settings *s, SettingKind kind) {
        const SettingField *d = &setting_fields[kind];
        void *p = (uint8_t *) s + d->offset;

        switch (d->type) {
        case FIELD_CUSTOM:
                d->reset(s);
                break;
        case FIELD_BOOL:
                *(bool *) p = false;
                break;
        case FIELD_INT:
                *(int *) p = kind == SETTING_NOTIFY_READY ? -1 : 0;
                break;
        case FIELD_STRING:
                free(*(char **) p);
                *(char **) p = NULL;
                break;
        case FIELD_STRV:
                strv_free(*(char ***) p);
                *(char ***) p = NULL;
                break;
        }
}

/* S takes FILE's value of KIND */
static int field_take(Settings *s, Settings *f, SettingKind kind, bool file_last) {
        const SettingField *d = &setting_fields[kind];
        void *to = (uint8_t *) s + d->offset, *from = (uint8_t *) f + d->offset;

        switch (d->type) {
        case FIELD_CUSTOM:
                return d->merge(s, f, file_last);
        case FIELD_BOOL:
                *(bool *) to = *(bool *) from;
                break;
        case FIELD_INT:
                *(int *) to = *(int *) from;
                break;
        case FIELD_STRING:
                free(*(char **) to);
                *(char **) to = TAKE_PTR(*(char **) from);
                break;
        case FIELD_STRV:
                strv_free(*(char ***) to);
                *(char ***) to = TAKE_PTR(*(char ***) from);
                break;
        }
        return 0;
}

/* The network namespace and its links are one setting, as in nspawn: a file that says anything
 * about them (VirtualEthernet=no, Bridge=, Private=, ...) says all of it, so that with
 * --settings=override its [Network] replaces the command line's --network-veth (berth@.service)
 * rather than adding a bridge to it; without override a command line that names any of them
 * keeps the file's out. */
static bool setting_is_network(SettingKind k) {
        return k == SETTING_PRIVATE_NETWORK || (k >= SETTING_NETWORK_VETH && k <= SETTING_NETWORK_IPVLAN);
}

int settings_merge(Settings *s, SettingsFile *file, bool override) {
        uint64_t network = 0;
        bool file_network;
        int r;

        for (SettingKind k = SETTING_NONE + 1; k < _SETTING_KIND_MAX; k++)
                if (setting_is_network(k))
                        network |= SETTING_MASK(k);
        file_network = (file->set & network) && (override || !(s->cli_set & network));
        if (file_network)
                for (SettingKind k = SETTING_NONE + 1; k < _SETTING_KIND_MAX; k++)
                        if (setting_is_network(k))
                                field_reset(s, k);

        for (SettingKind k = SETTING_NONE + 1; k < _SETTING_KIND_MAX; k++) {
                if (!(file->set & SETTING_MASK(k)))
                        continue;
                if (setting_is_network(k)) {
                        if (!file_network)
                                continue; /* the command line's network stands */
                } else if (!setting_fields[k].list && (s->cli_set & SETTING_MASK(k)) && !override)
                        continue; /* the command line's value stands */
                r = field_take(s, &file->settings, k, override);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* An empty assignment resets the setting to unset, as in nspawn: a list loses the file's
 * entries so far (not the command line's), a Limit*= only its resource, a mount key only its
 * own kind of mount. */
static int key_reset(const SettingsKey *k, SettingsFile *file) {
        Settings *s = &file->settings;
        SettingKind kind = key_setting(k);

        if (kind == SETTING_RLIMIT) {
                free(s->rlimit[k->arg]);
                s->rlimit[k->arg] = NULL;
                return 0;
        }
        if (kind == SETTING_CUSTOM_MOUNTS) {
                bool ro = strstr(k->name, "ReadOnly");
                size_t kept = 0, n_gone = 0;
                CustomMount *gone;

                if (s->n_custom_mounts == 0)
                        return 0;
                gone = calloc(s->n_custom_mounts, sizeof(CustomMount));
                if (!gone)
                        return -ENOMEM;
                for (size_t i = 0; i < s->n_custom_mounts; i++) {
                        CustomMount *m = &s->custom_mounts[i];
                        bool same = (int) m->type == k->arg &&
                                    (k->arg == CUSTOM_MOUNT_TMPFS || k->arg == CUSTOM_MOUNT_INACCESSIBLE ||
                                     m->read_only == ro);
                        if (same)
                                gone[n_gone++] = *m;
                        else
                                s->custom_mounts[kept++] = *m;
                }
                s->n_custom_mounts = kept;
                custom_mount_free_all(gone, n_gone);
                return 0;
        }
        field_reset(s, kind);
        if (!setting_fields[kind].list)
                file->set &= ~SETTING_MASK(kind);
        return 0;
}

/* ---- reading the file ---- */

void settings_file_done(SettingsFile *f) {
        free(f->path);
        settings_free(&f->settings);
        *f = (SettingsFile) {};
}

static void strip(char **p) {
        char *s = *p + strspn(*p, " \t\r\n"), *e = s + strlen(s);
        while (e > s && strchr(" \t\r\n", e[-1]))
                *--e = 0;
        *p = s;
}

/* A key of nspawn's that berth lacks: fine if the value asks for what berth does anyway. */
static bool unsupported_key_is_harmless(const SettingsKey *k, const char *value) {
        int a, b;

        if (!k->berth_value)
                return false;
        a = parse_boolean(k->berth_value);
        b = parse_boolean(value);
        if (a >= 0)
                return a == b;
        return streq(k->berth_value, value);
}

/* An nspawn key berth lacks, ignored, would weaken the container when it asks for isolation berth
 * would then not give: a network namespace (every [Network] key but Private= implies one). Returns what the container would run without, or NULL where ignoring only gives
 * the guest less. */
static const char *unsupported_key_protection(const SettingsKey *k) {
        if (streq(k->section, "Network"))
                return "on the host's network";
        return NULL;
}

/* Applies one assignment; logs its error. */
static int assign(SettingsFile *file, const SettingsKey *k, const char *value, unsigned line,
                  unsigned *warn_line) {
        _cleanup_(settings_free) Settings scratch = { .notify_ready = -1 };
        const char *detail = NULL;
        Settings *target = &file->settings;
        bool dropped = false;
        int r;

        if (!k->parse) {
                const char *lost;

                if (isempty(value) || unsupported_key_is_harmless(k, value))
                        return 0;
                lost = unsupported_key_protection(k);
                if (lost)
                        return log_error_errno(-EOPNOTSUPP,
                                               "%s:%u: Key '%s' in section [%s] is not supported by berth yet, and "
                                               "ignoring it would run the container %s: refusing. Remove the key to "
                                               "run without it.",
                                               file->path, line, k->name, k->section, lost);
                /* a vendor's .nspawn must not stop a machine from starting, as with nspawn */
                log_warning("%s:%u: Key '%s' in section [%s] is not supported by berth yet, ignoring.",
                            file->path, line, k->name, k->section);
                return 0;
        }

        if (isempty(value)) {
                r = key_reset(k, file);
                return r < 0 ? log_oom() : 0;
        }

        /* Untrusted and privileged: checked like the others (a bad value is still an error),
         * but into a scratch copy that is thrown away. */
        if ((k->flags & KEY_PRIVILEGED) && !file->trusted) {
                target = &scratch;
                dropped = true;
        }

        r = k->parse(k, target, value, &detail);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0) {
                const OptionDef *o = k->option ? option_find(k->option) : NULL;
                if (!detail && o && o->values)
                        return log_error_errno(r, "%s:%u: Invalid value for %s=: '%s' (expected one of: %s).",
                                               file->path, line, k->name, value, o->values);
                return log_error_errno(r, "%s:%u: Invalid value for %s=: '%s' (%s).", file->path, line,
                                       k->name, value, detail ?: "malformed value");
        }

        if (dropped && key_setting(k) == SETTING_SYSCALL_FILTER) {
                /* what it denies only takes away: that counts from anywhere */
                if (scratch.syscall_deny) {
                        r = strv_prepend_all(&file->settings.syscall_deny, scratch.syscall_deny);
                        if (r < 0)
                                return log_oom();
                        file->set |= SETTING_MASK(SETTING_SYSCALL_FILTER);
                }
                dropped = !strv_isempty(scratch.syscall_allow);
        }
        if (dropped && key_setting(k) == SETTING_PRIVATE_USERS &&
            (scratch.userns_mode == USERNS_PICK || scratch.userns_mode == USERNS_YES)) {
                /* a user namespace only takes away: that counts from anywhere */
                merge_private_users(&file->settings, &scratch, false);
                dropped = false;
        }
        if (dropped && key_setting(k) == SETTING_PRIVATE_USERS_OWNERSHIP &&
            scratch.userns_ownership != USERNS_OWNERSHIP_CHOWN) {
                merge_private_users_ownership(&file->settings, &scratch, false);
                dropped = false;
        }
        if (dropped) {
                if (*warn_line == 0)
                        *warn_line = line;
                return 0;
        }
        file->set |= SETTING_MASK(key_setting(k));
        return 0;
}

/* ALLOWED (0: every key): the SETTING_MASK()s of the keys the file may set; any other key, known or
 * not, and any unknown section are errors (the host configuration: a typo there must not go
 * unnoticed on every start). */
static int parse_file(FILE *f, const char *path, bool trusted, uint64_t allowed, SettingsFile *ret) {
        _cleanup_(settings_file_done) SettingsFile file = {
                .trusted = trusted,
                .settings = { .notify_ready = -1 },
        };
        _cleanup_free_ char *buf = NULL, *joined = NULL;
        unsigned warn_line[ELEMENTSOF(settings_keys)] = {};
        const char *section = NULL;
        bool ignore_section = false;
        unsigned line = 0, first_line = 0;
        size_t size = 0;
        ssize_t n;
        int r;

        file.path = strdup(path);
        if (!file.path)
                return log_oom();

        while ((n = getline(&buf, &size, f)) >= 0) {
                char *l, *eq, *key, *value;
                bool cont;

                line++;
                if ((size_t) n != strlen(buf))
                        return log_error_errno(-EINVAL, "%s:%u: Line contains a NUL byte.", path, line);

                /* a backslash at the end joins the next line, with a space */
                l = buf;
                strip(&l);
                cont = endswith(l, "\\");
                if (cont)
                        l[strlen(l) - 1] = ' ';
                if (joined || cont) {
                        char *j = strjoin(strempty(joined), l);
                        if (!j)
                                return log_oom();
                        free(joined);
                        joined = j;
                        if (first_line == 0)
                                first_line = line;
                        if (cont)
                                continue;
                        l = joined;
                }
                unsigned at = first_line ?: line;
                first_line = 0;

                strip(&l);
                if (l[0] == 0 || l[0] == '#' || l[0] == ';')
                        goto next;

                if (l[0] == '[') {
                        size_t k = strlen(l);
                        if (k < 3 || l[k - 1] != ']' || strpbrk(l + 1, "[]") != l + k - 1)
                                return log_error_errno(-EINVAL, "%s:%u: Invalid section header '%s'.", path, at, l);
                        l[k - 1] = 0;
                        section = NULL;
                        /* [X-...]: extensions, ignored as systemd does */
                        ignore_section = startswith(l + 1, "X-");
                        for (size_t i = 0; i < ELEMENTSOF(settings_sections); i++)
                                if (streq(settings_sections[i], l + 1))
                                        section = settings_sections[i];
                        if (!section && !ignore_section && allowed)
                                return log_error_errno(-EINVAL, "%s:%u: Unknown section [%s]. Only [Exec] and "
                                                       "[Files] are read here.", path, at, l + 1);
                        if (!section && !ignore_section) {
                                /* a newer nspawn's section: warned about and skipped, as nspawn does */
                                log_warning("%s:%u: Unknown section [%s], ignoring its keys.", path, at, l + 1);
                                ignore_section = true;
                        }
                        goto next;
                }

                eq = strchr(l, '=');
                if (!eq)
                        return log_error_errno(-EINVAL, "%s:%u: Expected KEY=VALUE or [SECTION], got '%s'.",
                                               path, at, l);
                *eq = 0;
                key = l;
                value = eq + 1;
                strip(&key);
                strip(&value);
                if (isempty(key))
                        return log_error_errno(-EINVAL, "%s:%u: Assignment without a key.", path, at);
                if (ignore_section || startswith(key, "X-"))
                        goto next;
                if (!section)
                        return log_error_errno(-EINVAL, "%s:%u: Key '%s' is outside of any section.", path, at,
                                               key);

                const SettingsKey *k = key_find(section, key);
                if (allowed && !k)
                        return log_error_errno(-EINVAL, "%s:%u: Unknown key '%s' in section [%s]: this file sets "
                                                        "only [Exec] PrivateUsers= and [Files] PrivateUsersOwnership=.",
                                               path, at, key, section);
                if (allowed && !(SETTING_MASK(key_setting(k)) & allowed))
                        return log_error_errno(-EINVAL, "%s:%u: Key '%s' in section [%s] cannot be set here: this "
                                                        "file sets only [Exec] PrivateUsers= and [Files] "
                                                        "PrivateUsersOwnership= for every machine. Set it in the "
                                                        "machine's settings file.",
                                               path, at, key, section);
                if (!k) {
                        log_warning("%s:%u: Unknown key '%s' in section [%s], ignoring.", path, at, key, section);
                        goto next;
                }
                r = assign(&file, k, value, at, &warn_line[k - settings_keys]);
                if (r < 0)
                        return r;
        next:
                free(joined);
                joined = NULL;
        }
        if (ferror(f))
                return log_error_errno(-EIO, "Failed to read settings file '%s'.", path);
        if (joined)
                return log_error_errno(-EINVAL, "%s:%u: The file ends in a line continuation.", path, line);

        /* only now that the whole file is good: once per key */
        for (size_t i = 0; i < ELEMENTSOF(settings_keys); i++)
                if (warn_line[i] > 0)
                        log_warning("Ignoring %s= in untrusted %s (line %u): pass --settings=trusted to allow it.",
                                    settings_keys[i].name, path, warn_line[i]);

        *ret = file;
        file = (SettingsFile) {};
        return 0;
}

int settings_file_parse(FILE *f, const char *path, bool trusted, SettingsFile *ret) {
        return parse_file(f, path, trusted, 0, ret);
}

/* ---- finding it ---- */

static int parent_directory(const char *directory, char **ret) {
        _cleanup_free_ char *p = strdup(directory);
        size_t n;
        char *slash;

        if (!p)
                return -ENOMEM;
        n = strlen(p);
        while (n > 1 && p[n - 1] == '/')
                p[--n] = 0;
        slash = strrchr(p, '/');
        if (!slash)
                return -EINVAL;
        if (slash == p)
                slash[1] = 0;
        else
                *slash = 0;
        *ret = TAKE_PTR(p);
        return 0;
}

/* 1 if PATH is there (anything but ENOENT: opening it will say what is wrong) */
static int probe(const char *dir, const char *machine, const char *suffix, char **ret) {
        _cleanup_free_ char *p = strjoin(dir, "/", machine, suffix);
        if (!p)
                return -ENOMEM;
        if (faccessat(AT_FDCWD, p, F_OK, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
                return 0;
        *ret = TAKE_PTR(p);
        return 1;
}

int settings_file_find(const char *machine, const char *directory, char **ret_path, bool *ret_trusted) {
        static const char *const trusted_berth[] = { "/etc/berth", "/run/berth", NULL };
        static const char *const trusted_nspawn[] = { "/etc/systemd/nspawn", "/run/systemd/nspawn", NULL };
        static const char *const suffixes[] = { ".berth", ".nspawn" };
        _cleanup_strv_free_ char **override = NULL;
        _cleanup_free_ char *parent = NULL;
        const char *e = getenv("BERTH_SETTINGS_PATH");
        char *p = NULL;
        int r;

        if (e) {
                r = strv_split(e, ":", &override);
                if (r < 0)
                        return r;
        }
        r = parent_directory(directory, &parent);
        if (r < 0)
                return r;

        for (size_t s = 0; s < ELEMENTSOF(suffixes); s++) {
                const char *const *dirs = override ? (const char *const *) override
                                          : s == 0 ? trusted_berth : trusted_nspawn;
                for (size_t i = 0; dirs[i]; i++) {
                        if (isempty(dirs[i]))
                                continue;
                        r = probe(dirs[i], machine, suffixes[s], &p);
                        if (r != 0) {
                                if (r > 0) {
                                        *ret_path = p;
                                        *ret_trusted = true;
                                }
                                return r;
                        }
                }
                r = probe(parent, machine, suffixes[s], &p);
                if (r != 0) {
                        if (r > 0) {
                                *ret_path = p;
                                *ret_trusted = false;
                        }
                        return r;
                }
        }
        return 0;
}

int settings_file_load(Settings *s) {
        _cleanup_(settings_file_done) SettingsFile file = {};
        _cleanup_free_ char *directory = NULL, *machine = NULL, *path = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_close_ int fd = -EBADF;
        bool trusted = false;
        struct stat st;
        int r;

        if (s->settings_mode == SETTINGS_MODE_NO)
                return 0;

        /* the names settings_verify() will use; if it cannot make them, it says so */
        r = path_make_absolute_cwd(s->image ?: s->directory ?: ".", &directory);
        if (r < 0)
                return log_error_errno(r, "Failed to get the current directory: %m");
        if (s->machine)
                machine = strdup(s->machine);
        else if ((s->image ? machine_name_from_image_path(directory, &machine)
                           : machine_name_from_path(directory, &machine)) < 0)
                return 0;
        if (!machine)
                return log_oom();

        r = settings_file_find(machine, directory, &path, &trusted);
        if (r == -ENOMEM)
                return log_oom();
        if (r <= 0)
                return 0;
        trusted = trusted || s->settings_mode == SETTINGS_MODE_TRUSTED;

        /* Next to the image, the file may be the image's own: no symlinks out of there, and no
         * FIFO to hang on. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (trusted ? 0 : O_NOFOLLOW));
        if (fd < 0)
                return log_error_errno(negative_errno(), "Failed to open settings file '%s': %m", path);
        if (fstat(fd, &st) < 0)
                return log_error_errno(negative_errno(), "Failed to stat settings file '%s': %m", path);
        if (!S_ISREG(st.st_mode))
                return log_error_errno(-EINVAL, "Settings file '%s' is not a regular file.", path);
        f = fdopen(fd, "re");
        if (!f)
                return log_error_errno(negative_errno(), "Failed to open settings file '%s': %m", path);
        TAKE_FD(fd);

        r = settings_file_parse(f, path, trusted, &file);
        if (r < 0)
                return r;
        r = settings_merge(s, &file, s->settings_mode == SETTINGS_MODE_OVERRIDE);
        if (r < 0)
                return log_oom();
        log_debug("Read settings file %s (%s).", path, trusted ? "trusted" : "untrusted");
        return 1;
}

/* ---- the host's configuration ---- */

static const char *const host_config_paths[] = {
        "/etc/berth/berth.conf",
        "/run/berth/berth.conf",
        "/usr/lib/berth/berth.conf",
};

int host_config_find(char **ret_path) {
        const char *e = getenv("BERTH_CONF");
        char *p;

        if (e) {
                if (isempty(e))
                        return 0;
                p = strdup(e);
        } else {
                size_t i;

                for (i = 0; i < ELEMENTSOF(host_config_paths); i++)
                        if (faccessat(AT_FDCWD, host_config_paths[i], F_OK, AT_SYMLINK_NOFOLLOW) >= 0 || errno != ENOENT)
                                break;
                if (i == ELEMENTSOF(host_config_paths))
                        return 0;
                p = strdup(host_config_paths[i]);
        }
        if (!p)
                return -ENOMEM;
        *ret_path = p;
        return 1;
}

int host_config_load(Settings *s) {
        _cleanup_(settings_file_done) SettingsFile file = {};
        _cleanup_free_ char *path = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        int r;

        r = host_config_find(&path);
        if (r == -ENOMEM)
                return log_oom();
        if (r <= 0)
                return 0;
        f = fopen(path, "re");
        if (!f && errno == ENOENT && getenv("BERTH_CONF"))
                return log_error_errno(-ENOENT, "Configuration file '%s' ($BERTH_CONF) does not exist. Point "
                                                "$BERTH_CONF at a file, or set it empty to read none.", path);
        if (!f)
                return log_error_errno(negative_errno(), "Failed to open configuration file '%s': %m", path);
        /* the host's own file, written by its administrator: trusted */
        r = parse_file(f, path, true,
                       SETTING_MASK(SETTING_PRIVATE_USERS) | SETTING_MASK(SETTING_PRIVATE_USERS_OWNERSHIP), &file);
        if (r < 0)
                return r;
        /* below the command line (which keeps what it set) and the machine's settings file
         * (merged after this, over what is not the command line's) */
        r = settings_merge(s, &file, false);
        if (r < 0)
                return log_oom();
        log_debug("Read configuration file %s.", path);
        return 1;
}
