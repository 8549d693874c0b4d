/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The model of one container: everything the command line and settings files
 * can say. Parsing fills it (berth-options.c, berth-settings-file.c); from
 * settings_verify() on it is frozen: container_run() takes it const, and what
 * a run derives from it (the UUID, work dirs, the seccomp program) lives in
 * its Runtime (berth-runtime.h). */

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>

#include "berth-credentials.h"
#include "berth-userns.h"
#include "image-policy.h"
#include "cleanup.h"

typedef enum StartMode {
        START_PID1,   /* COMMAND is PID 1 */
        START_PID2,   /* our stub init is PID 1, COMMAND is PID 2 (--as-pid2) */
        START_BOOT,   /* the tree's init is PID 1 (--boot) */
        _START_MODE_MAX,
        _START_MODE_INVALID = -EINVAL,
} StartMode;

/* $SYSTEMD_NSPAWN_API_VFS_WRITABLE: how much of the kernel's knobs (/proc/sys, /sys) the container
 * may write, as nspawn has it. */
typedef enum ApiVfsMode {
        API_VFS_READ_ONLY, /* unset or false: read-only; /proc/sys/net writable with a network of its own */
        API_VFS_NETWORK,   /* "network": /proc/sys/net writable whatever the network (-U: only its own) */
        API_VFS_WRITABLE,  /* true: /proc/sys and /sys writable (never with a user namespace) */
} ApiVfsMode;

typedef enum ConsoleMode {
        CONSOLE_INTERACTIVE,
        CONSOLE_READ_ONLY,
        CONSOLE_PASSIVE,
        CONSOLE_PIPE,
        CONSOLE_AUTOPIPE, /* resolved to INTERACTIVE or PIPE before start */
        _CONSOLE_MODE_MAX,
        _CONSOLE_MODE_INVALID = -EINVAL,
} ConsoleMode;

typedef enum VolatileMode {
        VOLATILE_NO,
        VOLATILE_YES,     /* tmpfs root, /usr from the tree read-only */
        VOLATILE_STATE,   /* tree read-only, tmpfs /var */
        VOLATILE_OVERLAY, /* tree as lower layer of an overlay with a tmpfs upper layer */
        _VOLATILE_MODE_MAX,
        _VOLATILE_MODE_INVALID = -EINVAL,
} VolatileMode;

typedef enum ResolvConfMode {
        RESOLV_CONF_OFF,
        RESOLV_CONF_COPY_HOST,
        RESOLV_CONF_COPY_STATIC,
        RESOLV_CONF_COPY_UPLINK,
        RESOLV_CONF_COPY_STUB,
        RESOLV_CONF_REPLACE_HOST,
        RESOLV_CONF_REPLACE_STATIC,
        RESOLV_CONF_REPLACE_UPLINK,
        RESOLV_CONF_REPLACE_STUB,
        RESOLV_CONF_BIND_HOST,
        RESOLV_CONF_BIND_STATIC,
        RESOLV_CONF_BIND_UPLINK,
        RESOLV_CONF_BIND_STUB,
        RESOLV_CONF_DELETE,
        RESOLV_CONF_AUTO,
        _RESOLV_CONF_MODE_MAX,
        _RESOLV_CONF_MODE_INVALID = -EINVAL,
} ResolvConfMode;

typedef enum TimezoneMode {
        TIMEZONE_OFF,
        TIMEZONE_COPY,
        TIMEZONE_BIND,
        TIMEZONE_SYMLINK,
        TIMEZONE_DELETE,
        TIMEZONE_AUTO,
        _TIMEZONE_MODE_MAX,
        _TIMEZONE_MODE_INVALID = -EINVAL,
} TimezoneMode;

typedef enum CustomMountType {
        CUSTOM_MOUNT_BIND,
        CUSTOM_MOUNT_TMPFS,
        CUSTOM_MOUNT_OVERLAY,
        CUSTOM_MOUNT_INACCESSIBLE,
        _CUSTOM_MOUNT_TYPE_MAX,
        _CUSTOM_MOUNT_TYPE_INVALID = -EINVAL,
} CustomMountType;

/* A bind's ID mapping (nspawn's bind options). With the container's range at X (0 without a user
 * namespace, as in nspawn): */
typedef enum BindIdmap {
        BIND_NOIDMAP,    /* none: host id X+z is z inside, other ids are nobody (the default) */
        BIND_IDMAP,      /* host id z is z inside, through the container's own user namespace */
        BIND_ROOTIDMAP,  /* the source's host owner is root inside, nothing else is mapped */
        BIND_OWNERIDMAP, /* the source's host owner is the destination's owner inside, nothing else */
        _BIND_IDMAP_MAX,
        _BIND_IDMAP_INVALID = -EINVAL,
} BindIdmap;

typedef struct CustomMount {
        CustomMountType type;
        bool read_only;
        bool recursive;     /* binds: rbind (default) or norbind */
        BindIdmap idmap;    /* binds: the ID mapping option */
        char *source;       /* bind: host path; overlay: NULL */
        char *destination;  /* path inside the container, absolute and normalized */
        char *options;      /* tmpfs mount options */
        char **lower;       /* overlay: lower dirs, host paths, top-most first */
        char *upper;        /* overlay: upper dir on the host, NULL for --overlay-ro */
        char *work;         /* overlay: work dir made by berth next to upper, removed at exit */
} CustomMount;

/* The settings that both the command line and a settings file can set, one bit each
 * (SETTING_MASK()). parse_argv() records in Settings.cli_set which of them the
 * command line set; the settings file merge (berth-settings-file.c) reads it. */
typedef enum SettingKind {
        SETTING_NONE,              /* not settable from a settings file */
        SETTING_START_MODE,        /* Boot=, ProcessTwo= */
        SETTING_PARAMETERS,        /* Parameters= */
        SETTING_EPHEMERAL,
        SETTING_HOSTNAME,
        SETTING_UUID,              /* MachineID= */
        SETTING_ENVIRONMENT,
        SETTING_WORKING_DIRECTORY,
        SETTING_USER,
        SETTING_PRIVATE_NETWORK,
        SETTING_READ_ONLY,
        SETTING_VOLATILE,
        SETTING_CUSTOM_MOUNTS,     /* Bind=, BindReadOnly=, TemporaryFileSystem=, Overlay*=, Inaccessible= */
        SETTING_RESOLV_CONF,
        SETTING_TIMEZONE,
        SETTING_CAPABILITY,
        SETTING_DROP_CAPABILITY,
        SETTING_NO_NEW_PRIVILEGES,
        SETTING_SYSCALL_FILTER,
        SETTING_RLIMIT,            /* Limit*= */
        SETTING_OOM_SCORE_ADJUST,
        SETTING_CPU_AFFINITY,
        SETTING_KILL_SIGNAL,
        SETTING_NOTIFY_READY,
        SETTING_LINK_JOURNAL,
        SETTING_NETWORK_VETH,        /* VirtualEthernet= */
        SETTING_NETWORK_VETH_EXTRA,  /* VirtualEthernetExtra= */
        SETTING_NETWORK_BRIDGE,      /* Bridge= */
        SETTING_NETWORK_ZONE,        /* Zone= */
        SETTING_NETWORK_INTERFACE,   /* Interface= */
        SETTING_NETWORK_MACVLAN,     /* MACVLAN= */
        SETTING_NETWORK_IPVLAN,      /* IPVLAN= */
        SETTING_PORT,                /* Port= */
        SETTING_PRIVATE_USERS,     /* PrivateUsers=: mode and range */
        SETTING_PRIVATE_USERS_OWNERSHIP,
        SETTING_CREDENTIALS,       /* SetCredential=, LoadCredential= */
        SETTING_SUPPRESS_SYNC,
        SETTING_AMBIENT_CAPABILITY,
        SETTING_PERSONALITY,
        SETTING_PIVOT_ROOT,
        SETTING_BIND_USER,         /* BindUser= */
        SETTING_BIND_USER_SHELL,   /* BindUserShell= */
        _SETTING_KIND_MAX,
} SettingKind;

#define SETTING_MASK(k) ((k) == SETTING_NONE ? UINT64_C(0) : UINT64_C(1) << (k))

/* --settings=: whether NAME.berth/NAME.nspawn is read and how far it is trusted */
typedef enum SettingsMode {
        SETTINGS_MODE_YES,      /* read it; privileged keys only from trusted places */
        SETTINGS_MODE_NO,       /* read no file */
        SETTINGS_MODE_OVERRIDE, /* as yes, but the file's values win over the command line's */
        SETTINGS_MODE_TRUSTED,  /* as yes, and privileged keys count wherever the file is */
        _SETTINGS_MODE_MAX,
        _SETTINGS_MODE_INVALID = -EINVAL,
} SettingsMode;

/* --register=: AUTO (0, the default) registers when systemd and its bus are there */
typedef enum RegisterMode {
        REGISTER_AUTO,
        REGISTER_NO,
        REGISTER_YES,
        _REGISTER_MODE_MAX,
        _REGISTER_MODE_INVALID = -EINVAL,
} RegisterMode;

/* --link-journal=: AUTO (0, the default) links only where the host already has
 * /var/log/journal/ID (a directory: as host, a symlink: as guest), else no */
typedef enum LinkJournal {
        LINK_JOURNAL_AUTO,
        LINK_JOURNAL_NO,
        LINK_JOURNAL_HOST,
        LINK_JOURNAL_TRY_HOST,
        LINK_JOURNAL_GUEST,
        LINK_JOURNAL_TRY_GUEST,
        _LINK_JOURNAL_MAX,
        _LINK_JOURNAL_INVALID = -EINVAL,
} LinkJournal;

/* --personality=: the execution domain of the payload (personality(2)), by the architecture name
 * that uname -m should answer to. As nspawn, only the host's own architecture and the 32-bit one
 * it also runs (x86 on x86-64) are known; INHERIT (0, the default) leaves berth's own. */
typedef enum Personality {
        PERSONALITY_INHERIT,
        PERSONALITY_NATIVE,    /* PER_LINUX */
        PERSONALITY_SECONDARY, /* PER_LINUX32 */
        _PERSONALITY_MAX,
        _PERSONALITY_INVALID = -EINVAL,
} Personality;

#if defined(__x86_64__)
#  define PERSONALITY_NAMES "x86-64", "x86"
#  define PERSONALITY_VALUES "x86-64 x86"
#elif defined(__aarch64__)
#  define PERSONALITY_NAMES "arm64", "arm"
#  define PERSONALITY_VALUES "arm64 arm"
#elif defined(__i386__)
#  define PERSONALITY_NAMES "x86", NULL
#  define PERSONALITY_VALUES "x86"
#elif defined(__arm__)
#  define PERSONALITY_NAMES "arm", NULL
#  define PERSONALITY_VALUES "arm"
#else
#  define PERSONALITY_NAMES NULL, NULL
#  define PERSONALITY_VALUES NULL
#endif

typedef struct CPUSet {
        cpu_set_t *set;
        size_t allocated; /* bytes */
} CPUSet;

typedef struct Settings {
        /* what to run */
        char *directory;       /* absolute path of the tree */
        char *template;        /* --template: populate an empty/missing directory from this tree */
        char *image;           /* --image: absolute path of a raw disk image; then directory is the
                                * place the child mounts it (BERTH_IMAGE_ROOT_DIR) */
        ImagePolicy *image_policy;     /* --image-policy=: NULL is nspawn's container default */
        uint8_t *root_hash;            /* --root-hash=: dm-verity root hash of the root (or /usr) partition */
        size_t root_hash_size;
        uint8_t *root_hash_sig;        /* --root-hash-sig=: its PKCS#7 signature (DER) */
        size_t root_hash_sig_size;
        char *verity_data;             /* --verity-data=: the hash tree, outside the image */
        StartMode start_mode;
        char **parameters;     /* COMMAND and args, or the init's args with --boot */
        bool ephemeral;

        /* identity */
        char *machine;         /* validated machine name */
        char *hostname;        /* NULL: the machine name */
        uint8_t uuid[16];
        bool uuid_set;
        char **environment;    /* KEY=VALUE */
        Credential *credentials;    /* --set-credential=, --load-credential=: read when parsed */
        size_t n_credentials;
        char **import_credentials;  /* --import-credential= globs, resolved by settings_verify() */
        char *working_directory;
        char *user;

        /* namespaces */
        bool private_network;
        UserNamespaceMode userns_mode;            /* --private-users=, -U */
        UidRange uid_range;                       /* USERNS_FIXED only */
        UserNamespaceOwnership userns_ownership;  /* --private-users-ownership= */
        bool userns_ownership_set;                /* else: auto with pick, off otherwise (nspawn's rule) */
        char **bind_users;                        /* --bind-user=: host users mapped in (berth-bind-user.c) */
        char *bind_user_shell;                    /* --bind-user-shell=PATH: their shell inside */
        bool bind_user_shell_copy;                /* --bind-user-shell=yes: their host shell */

        /* networking (berth-network.c): any of the links implies private_network (settings_verify()) */
        bool network_veth;            /* -n: ve-NAME on the host, host0 inside */
        char **network_veth_extra;    /* HOSTIF[:CONTAINERIF] */
        char *network_bridge;         /* vb-NAME joins this existing bridge */
        char *network_zone;           /* vb-NAME joins vz-ZONE, made on first use */
        char **network_interfaces;    /* IF[:NAME]: moved in, back at exit */
        char **network_macvlan;       /* IF[:NAME] */
        char **network_ipvlan;        /* IF[:NAME] */
        char *network_namespace_path; /* join this network namespace instead */
        char **ports;                 /* -p: "PROTO:HOSTPORT:CONTAINERPORT", normalized (berth-port.c) */

        /* file systems */
        bool read_only;
        char **pivot_root;          /* --pivot-root=: { NEW } or { NEW, OLD }, absolute and normalized */
        VolatileMode volatile_mode;
        CustomMount *custom_mounts;
        size_t n_custom_mounts;
        ResolvConfMode resolv_conf;
        TimezoneMode timezone;

        /* console */
        ConsoleMode console_mode;
        bool quiet;
        char *background;           /* --background=: SGR parameters, such as 44 or 48;5;17 */

        /* security */
        uint64_t capability;        /* added to the default set */
        uint64_t drop_capability;   /* removed from it */
        uint64_t ambient_capability; /* raised in the payload's ambient set (within the above) */
        bool capability_all;        /* --capability=all */
        bool no_new_privileges;
        bool suppress_sync;         /* the sync calls do nothing (seccomp), O_SYNC/O_DSYNC refused */
        char **syscall_allow;       /* --system-call-filter=NAME|@GROUP */
        char **syscall_deny;        /* --system-call-filter=~NAME|~@GROUP */
        Personality personality;    /* --personality= */
        struct rlimit *rlimit[RLIMIT_NLIMITS];
        int oom_score_adjust;
        bool oom_score_adjust_set;
        CPUSet cpu_set;

        /* lifecycle */
        int kill_signal;            /* 0: the default for the start mode */
        uint64_t stop_timeout_usec; /* 0: the default */
        int notify_ready;           /* -1 unset: yes with --boot if the guest talks, else no */

        /* systemd integration (berth-register.c) */
        RegisterMode register_mode;
        bool keep_unit;             /* run in the unit we were started in, no scope */
        char *slice;                /* NULL: machine.slice */
        char **properties;          /* --property= assignments, checked by unit_property_check() */
        LinkJournal link_journal;

        /* settings files */
        SettingsMode settings_mode; /* --settings= */
        bool cleanup;               /* --cleanup: clean after a dead instance of the machine, run nothing */
        uint64_t cli_set;           /* SETTING_MASK()s of what the command line set */

        /* systemd-nspawn's environment knobs (settings_load_environment()), false by default */
        bool no_os_release_check;   /* $SYSTEMD_NSPAWN_CHECK_OS_RELEASE=0: no os-release or init check */
        bool no_tmpfs_tmp;          /* $SYSTEMD_NSPAWN_TMPFS_TMP=0: the tree's own /tmp */
        ApiVfsMode api_vfs;         /* $SYSTEMD_NSPAWN_API_VFS_WRITABLE */
} Settings;

void settings_free(Settings *s);

int custom_mount_add(Settings *s, CustomMountType t, CustomMount **ret);
int custom_mount_list_add(CustomMount **list, size_t *n, CustomMountType t, CustomMount **ret);

/* the bounding set given to the container: the default plus --capability= minus --drop-capability= */
uint64_t settings_effective_capabilities(const Settings *s);
/* ... as the container's first process will compute it where it applies the set (past the user
 * namespace's setns() with -U), predicted in the monitor: the set the seccomp program is made for */
uint64_t settings_container_capabilities(const Settings *s);

/* enum <-> string tables, one pair per enum */
const char *start_mode_to_string(StartMode m);
StartMode start_mode_from_string(const char *s);
const char *console_mode_to_string(ConsoleMode m);
ConsoleMode console_mode_from_string(const char *s);
const char *volatile_mode_to_string(VolatileMode m);
VolatileMode volatile_mode_from_string(const char *s);  /* also takes booleans */
const char *resolv_conf_mode_to_string(ResolvConfMode m);
ResolvConfMode resolv_conf_mode_from_string(const char *s);
const char *timezone_mode_to_string(TimezoneMode m);
TimezoneMode timezone_mode_from_string(const char *s);
const char *custom_mount_type_to_string(CustomMountType t);
CustomMountType custom_mount_type_from_string(const char *s);
const char *bind_idmap_to_string(BindIdmap m);
BindIdmap bind_idmap_from_string(const char *s);
const char *personality_to_string(Personality p); /* NULL for INHERIT and what this host lacks */
Personality personality_from_string(const char *s);
/* The personality(2) value of P, or -1 for PERSONALITY_INHERIT (leave it). */
long personality_domain(Personality p);
