/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/magic.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "berth-bind-user.h"
#include "berth-caps.h"
#include "berth-cgroup.h"
#include "berth-child.h"
#include "berth-console.h"
#include "berth-mount.h"
#include "berth-seccomp.h"
#include "log.h"
#include "util.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* The child's errors go to the monitor, not to our stderr: from the first
 * mount on, stderr may be the container's console (dropped with
 * --console=passive) and the journal's socket is gone after pivot_root. Each
 * failing step logs once, so the first error is the cause; it travels with
 * STARTUP_MSG_ERROR and the monitor logs it, once, wherever its own logs go. */
typedef struct ChildError {
        int error;
        char message[SYNC_TEXT_MAX];
} ChildError;

static void child_error_sink(int level, int error, const char *message, void *userdata) {
        ChildError *e = userdata;

        if (!isempty(e->message))
                return;
        e->error = -error;
        (void) snprintf(e->message, sizeof e->message, "%s", message);
}

/* ---- users, from the container's own /etc/passwd (never the host's NSS) ---- */

typedef struct UserRecord {
        uid_t uid;
        gid_t gid;
        char *name, *home, *shell;
} UserRecord;

static void user_record_done(UserRecord *u) {
        free(u->name);
        free(u->home);
        free(u->shell);
}

/* USER (a name or a UID) in the passwd file F. */
static int find_user_in(FILE *f, const char *user, UserRecord *ret) {
        char line[1024];
        unsigned numeric;
        bool by_uid = safe_atou(user, &numeric) >= 0;

        if (!f)
                return negative_errno();
        while (fgets(line, sizeof line, f)) {
                char *fields[7] = {}, *p = line;
                size_t n = 0;

                line[strcspn(line, "\n")] = 0;
                while (n < 7 && (fields[n++] = strsep(&p, ":")))
                        ;
                if (!fields[6])
                        continue;
                unsigned uid, gid;
                if (safe_atou(fields[2], &uid) < 0 || safe_atou(fields[3], &gid) < 0)
                        continue;
                if (by_uid ? uid != numeric : !streq(fields[0], user))
                        continue;
                *ret = (UserRecord) {
                        .uid = uid, .gid = gid,
                        .name = strdup(fields[0]), .home = strdup(fields[5]), .shell = strdup(fields[6]),
                };
                if (!ret->name || !ret->home || !ret->shell) {
                        user_record_done(ret);
                        return -ENOMEM;
                }
                return 0;
        }
        if (by_uid) {
                /* a numeric UID without an entry is fine, as in nspawn */
                *ret = (UserRecord) { .uid = numeric, .gid = numeric, .home = strdup("/"), .shell = strdup("/bin/sh") };
                return ret->home && ret->shell ? 0 : -ENOMEM;
        }
        return -ESRCH;
}

/* A --bind-user= user by name, as the guest's nss-systemd would find it in /run/host/userdb; NULL if
 * USER is none of them. */
static const BindUser *find_bound_user(const UserNamespace *un, const char *user) {
        for (size_t i = 0; un && user && i < un->n_bind_users; i++)
                if (streq(un->bind_users[i].name, user))
                        return &un->bind_users[i];
        return NULL;
}

/* In the container, after pivot_root: the container's /etc/passwd, then the bound users. */
static int find_user(const UserNamespace *un, const char *user, UserRecord *ret) {
        _cleanup_fclose_ FILE *f = fopen("/etc/passwd", "re");
        const BindUser *b;
        int r;

        r = find_user_in(f, user, ret);
        if (r != -ESRCH || !(b = find_bound_user(un, user)))
                return r;
        *ret = (UserRecord) {
                .uid = b->uid, .gid = b->uid,
                .name = strdup(b->name), .home = path_join("/run/host/home", b->name),
                .shell = strdup(b->shell ?: "/bin/sh"),
        };
        if (!ret->name || !ret->home || !ret->shell) {
                user_record_done(ret);
                return -ENOMEM;
        }
        return 0;
}

/* Who reads the credentials: the payload's --user= (as nspawn gives them to it), else the
 * container's root; as host ids. Looked up in the tree under ROOT before pivot_root (the tree is
 * hostile: resolved inside it); a user that is not found leaves them to root, and the payload's
 * own lookup later says what is wrong. */
static void credentials_reader(const char *root, const Settings *s, const UserNamespace *un, uid_t *ret_uid,
                               gid_t *ret_gid) {
        _cleanup_close_ int root_fd = -EBADF, fd = -EBADF;
        _cleanup_fclose_ FILE *f = NULL;
        uid_t owner = userns_owner(un);
        const BindUser *b;
        UserRecord u = {};

        *ret_uid = owner;
        *ret_gid = owner;
        if (!s->user || s->n_credentials == 0)
                return;
        /* a bound user (never in the tree's /etc/passwd: berth refuses that): its id inside is its host id */
        b = find_bound_user(un, s->user);
        if (b) {
                *ret_uid = b->host_uid;
                *ret_gid = b->host_gid;
                return;
        }
        root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0)
                return;
        fd = open_regular_in_root(root_fd, "etc/passwd", NULL);
        if (fd < 0 || !(f = fdopen(fd, "re")))
                return;
        TAKE_FD(fd);
        if (find_user_in(f, s->user, &u) < 0)
                return;
        *ret_uid = owner + u.uid;
        *ret_gid = owner + u.gid;
        user_record_done(&u);
}

static int supplementary_groups(const char *name, gid_t gid, gid_t *groups, size_t max, size_t *ret_n) {
        _cleanup_fclose_ FILE *f = fopen("/etc/group", "re");
        char line[4096];
        size_t n = 0;

        groups[n++] = gid;
        if (f && name)
                while (n < max && fgets(line, sizeof line, f)) {
                        char *fields[4] = {}, *p = line;
                        size_t k = 0;
                        unsigned g;

                        line[strcspn(line, "\n")] = 0;
                        while (k < 4 && (fields[k++] = strsep(&p, ":")))
                                ;
                        if (!fields[3] || safe_atou(fields[2], &g) < 0)
                                continue;
                        for (char *m, *q = fields[3]; (m = strsep(&q, ","));)
                                if (streq(m, name) && g != gid) {
                                        groups[n++] = g;
                                        break;
                                }
                }
        *ret_n = n;
        return 0;
}

/* ---- environment and the program to run ---- */

static int build_environment(const ChildParams *p, const UserRecord *u, char ***ret) {
        const Settings *s = p->settings;
        _cleanup_strv_free_ char **env = NULL;
        char uuid[37], buf[PATH_MAX + 16];
        int r = 0;

        id128_to_uuid_string(p->runtime->uuid, uuid);
        r |= strv_extend(&env, "PATH=" DEFAULT_PATH);
        r |= strv_extend(&env, "container=berth");
        snprintf(buf, sizeof buf, "container_uuid=%s", uuid);
        r |= strv_extend(&env, buf);
        snprintf(buf, sizeof buf, "TERM=%s", p->term);
        r |= strv_extend(&env, buf);
        r |= strv_extend(&env, "NOTIFY_SOCKET=/run/host/notify");
        if (s->n_credentials > 0)
                r |= strv_extend(&env, "CREDENTIALS_DIRECTORY=" CREDENTIALS_DIR);
        STRV_FOREACH(e, p->runtime->host_os_env)
                r |= strv_extend(&env, *e);
        if (u) {
                snprintf(buf, sizeof buf, "HOME=%s", u->home);
                r |= strv_extend(&env, buf);
                snprintf(buf, sizeof buf, "SHELL=%s", u->shell);
                r |= strv_extend(&env, buf);
                if (u->name) {
                        snprintf(buf, sizeof buf, "USER=%s", u->name);
                        r |= strv_extend(&env, buf);
                        snprintf(buf, sizeof buf, "LOGNAME=%s", u->name);
                        r |= strv_extend(&env, buf);
                }
        }
        if (r < 0)
                return -ENOMEM;
        /* -E wins over our defaults */
        STRV_FOREACH(e, s->environment) {
                size_t k = strcspn(*e, "=") + 1;
                bool replaced = false;
                for (char **i = env; *i; i++)
                        if (strncmp(*i, *e, k) == 0) {
                                free(*i);
                                if (!(*i = strdup(*e)))
                                        return -ENOMEM;
                                replaced = true;
                        }
                if (!replaced && strv_extend(&env, *e) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(env);
        return 0;
}

static const char *env_get(char **env, const char *name) {
        size_t l = strlen(name);
        STRV_FOREACH(e, env)
                if (strncmp(*e, name, l) == 0 && (*e)[l] == '=')
                        return *e + l + 1;
        return NULL;
}

/* execvpe() searches our PATH, not the payload's: search the payload's PATH
 * ourselves, in the container's root (we are past pivot_root). */
static int exec_search(char **argv, char **env) {
        const char *path = env_get(env, "PATH") ?: DEFAULT_PATH;
        char buf[PATH_MAX];
        int last = -ENOENT;

        if (strchr(argv[0], '/')) {
                execve(argv[0], argv, env);
                return negative_errno();
        }
        for (const char *p = path; *p;) {
                size_t k = strcspn(p, ":");
                if (k > 0 && k + 1 + strlen(argv[0]) < sizeof buf) {
                        snprintf(buf, sizeof buf, "%.*s/%s", (int) k, p, argv[0]);
                        execve(buf, argv, env);
                        if (errno != ENOENT && errno != ENOTDIR)
                                last = negative_errno();
                }
                p += k;
                if (*p == ':')
                        p++;
        }
        return last;
}

static const char *const init_candidates[] = {
        "/usr/lib/systemd/systemd",
        "/lib/systemd/systemd",
        "/sbin/init",
};

/* The signals that ask an init to power off and to reboot: systemd takes
 * SIGRTMIN+4 and SIGINT (ctrl-alt-del), busybox init SIGUSR2 and SIGTERM;
 * sysvinit runs its ctrlaltdel action (a reboot) on SIGINT and has no
 * poweroff signal, so SIGTERM is the best guess there. */
static void init_signals(const char *path, int *ret_poweroff, int *ret_reboot) {
        _cleanup_free_ char *real = realpath(path, NULL);
        const char *b = path_basename(real ?: path);

        if (streq(b, "systemd")) {
                *ret_poweroff = SIGRTMIN + 4;
                *ret_reboot = SIGINT;
        } else if (streq(b, "busybox")) {
                *ret_poweroff = SIGUSR2;
                *ret_reboot = SIGTERM;
        } else {
                *ret_poweroff = SIGTERM;
                *ret_reboot = SIGINT;
        }
}

static int pick_init(const char **ret) {
        for (size_t i = 0; i < ELEMENTSOF(init_candidates); i++)
                if (access(init_candidates[i], X_OK) >= 0) {
                        *ret = init_candidates[i];
                        return 0;
                }
        return -ENOENT;
}

/* ---- process attributes ---- */

/* Like nspawn: unless told otherwise, a container gets the classic soft limit
 * of open files (select() breaks above it) and a hard limit high enough for
 * the services of a booted guest (dbus, journald ask for more). */
#define CONTAINER_NOFILE_SOFT 1024
#define CONTAINER_NOFILE_HARD (512 * 1024)

/* A file of our own in /proc after pivot_root: /proc is the procfs we mounted, unless a custom mount
 * covers it (--bind=DIR:/proc is allowed), so check before writing that it still is one. */
static int write_proc_self(const char *name, const char *value) {
        _cleanup_close_ int dir = -EBADF, fd = -EBADF;
        struct statfs sfs;

        dir = open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0)
                return negative_errno();
        if (fstatfs(dir, &sfs) < 0)
                return negative_errno();
        if (sfs.f_type != PROC_SUPER_MAGIC)
                return -EMEDIUMTYPE;
        fd = openat(dir, name, O_WRONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        return write_string_fd(fd, value);
}

static int apply_resources(const Settings *s) {
        char buf[16];
        int r;

        if (!s->rlimit[RLIMIT_NOFILE]) {
                struct rlimit rl;
                if (getrlimit(RLIMIT_NOFILE, &rl) >= 0) {
                        rl.rlim_cur = MIN(rl.rlim_cur, (rlim_t) CONTAINER_NOFILE_SOFT);
                        rl.rlim_max = MAX(rl.rlim_max, (rlim_t) CONTAINER_NOFILE_HARD);
                        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                                log_debug_errno(negative_errno(), "Failed to raise RLIMIT_NOFILE, ignoring: %m");
                }
        }
        for (int i = 0; i < RLIMIT_NLIMITS; i++)
                if (s->rlimit[i] && setrlimit(i, s->rlimit[i]) < 0)
                        return log_error_errno(negative_errno(), "Failed to set resource limit %i (--rlimit=): %m", i);
        if (s->oom_score_adjust_set) {
                snprintf(buf, sizeof buf, "%i", s->oom_score_adjust);
                r = write_proc_self("oom_score_adj", buf);
                if (r < 0)
                        return log_error_errno(r, "Failed to set the OOM score adjustment (--oom-score-adjust=): %m");
        }
        if (s->cpu_set.set && sched_setaffinity(0, s->cpu_set.allocated, s->cpu_set.set) < 0)
                return log_error_errno(negative_errno(), "Failed to set the CPU affinity (--cpu-affinity=): %m");
        if (s->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return log_error_errno(negative_errno(), "Failed to set no_new_privs: %m");
        return 0;
}

/* To U (NULL or root: stay root). AMBIENT (--ambient-capability=) survives the change and is
 * raised in the ambient set, so that the payload keeps it across execve() as any user; a user
 * other than root keeps nothing else. */
static int change_user(const UserRecord *u, uint64_t ambient) {
        gid_t groups[64];
        size_t n;
        int r;

        if (u && u->uid != 0) {
                (void) supplementary_groups(u->name, u->gid, groups, ELEMENTSOF(groups), &n);
                if (setgroups(n, groups) < 0)
                        return log_error_errno(negative_errno(), "Failed to set supplementary groups: %m");
                if (setresgid(u->gid, u->gid, u->gid) < 0)
                        return log_error_errno(negative_errno(), "Failed to change to group %u: %m", (unsigned) u->gid);
                /* without it the change to a user other than root clears every set */
                if (ambient && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
                        return log_error_errno(negative_errno(), "Failed to keep capabilities across the user change: %m");
                if (setresuid(u->uid, u->uid, u->uid) < 0)
                        return log_error_errno(negative_errno(), "Failed to change to user %u: %m", (unsigned) u->uid);
                /* a credential change clears the parent-death signal */
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (ambient) {
                        (void) prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
                        r = capability_set_exactly(ambient);
                        if (r < 0)
                                return log_error_errno(r, "Failed to keep the ambient capabilities for user %u: %m",
                                                       (unsigned) u->uid);
                }
        }
        r = capability_raise_ambient(ambient);
        if (r < 0)
                return log_error_errno(r, "Failed to raise the ambient capabilities (--ambient-capability=): %m");
        return 0;
}

/* ---- files the container gets from its host ---- */

static int setup_hostname(const Settings *s) {
        const char *h = s->hostname ?: s->machine;
        if (sethostname(h, strlen(h)) < 0)
                return log_error_errno(negative_errno(), "Failed to set the host name to '%s': %m", h);
        return 0;
}

/* Binds the file open as SRC_FD (any fd of it, O_PATH will do) over PATH of the tree at ROOT. PATH is
 * resolved inside the tree (the tree is hostile: /etc may be a symlink to the host's /etc) and must be a
 * regular file there; -EMEDIUMTYPE otherwise. The source is an fd, never a path looked up again: a
 * path in the tree could have become a symlink to a host file since it was written. */
static int bind_file_in_tree(const char *root, const char *path, int src_fd, bool read_only) {
        _cleanup_close_ int rfd = -EBADF, fd = -EBADF;
        char p[64], src[64];
        struct stat st;

        rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rfd < 0)
                return negative_errno();
        fd = open_in_root(rfd, path, O_PATH | O_NOFOLLOW);
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EMEDIUMTYPE;
        snprintf(p, sizeof p, "/proc/self/fd/%i", fd);
        snprintf(src, sizeof src, "/proc/self/fd/%i", src_fd);
        if (mount(src, p, NULL, MS_BIND, NULL) < 0)
                return negative_errno();
        if (!read_only)
                return 0;
        /* the fd still points below the new mount: look the path up again */
        fd = safe_close(fd);
        fd = open_in_root(rfd, path, O_PATH | O_NOFOLLOW);
        if (fd < 0)
                return fd;
        snprintf(p, sizeof p, "/proc/self/fd/%i", fd);
        return RET_NERRNO(mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL));
}

static int bind_host_file_in_tree(const char *root, const char *path, const char *host_path, bool read_only) {
        _cleanup_close_ int src = open(host_path, O_PATH | O_CLOEXEC);

        if (src < 0)
                return negative_errno();
        return bind_file_in_tree(root, path, src, read_only);
}

/* The tree's /run/host, opened inside the tree: it runs after the custom mounts, so /run or /run/host
 * may be a directory of the guest's (--bind=DIR:/run) holding whatever symlinks it planted. Created if
 * a custom mount hid ours; never a symlink itself. */
static int open_run_host(int root_fd, int *ret) {
        _cleanup_close_ int run = -EBADF, host = -EBADF;

        run = open_in_root(root_fd, "run", O_PATH | O_DIRECTORY);
        if (run < 0)
                return run;
        if (mkdirat(run, "host", 0755) < 0 && errno != EEXIST)
                return negative_errno();
        host = openat(run, "host", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (host < 0)
                return negative_errno();
        *ret = TAKE_FD(host);
        return 0;
}

/* A command (not --boot) in a tree with an empty /etc/machine-id gets one
 * for this run, bound over it; systemd as init derives its own from
 * $container_uuid instead. */
static int setup_machine_id(const char *root, const Settings *s, const uint8_t uuid[16]) {
        _cleanup_close_ int rfd = -EBADF, fd = -EBADF, host = -EBADF, file = -EBADF;
        char id[34];
        struct stat st;
        int r;

        if (s->start_mode == START_BOOT)
                return 0;
        rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rfd < 0)
                return log_error_errno(negative_errno(), "Failed to open '%s': %m", root);
        fd = open_in_root(rfd, "/etc/machine-id", O_PATH | O_NOFOLLOW);
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > 0)
                return 0; /* missing, or set: nothing to do */
        id128_to_string(uuid, id);
        strcat(id, "\n");
        r = open_run_host(rfd, &host);
        if (r < 0)
                return log_error_errno(r, "Failed to open /run/host in the container for /etc/machine-id: %m "
                                          "(with a custom mount on /run, it must hold a directory 'host', not a symlink)");
        r = write_file_atomic_at(host, "machine-id", id, strlen(id), 0444, &file);
        if (r >= 0)
                r = bind_file_in_tree(root, "/etc/machine-id", file, false);
        if (r < 0)
                return log_error_errno(r, "Failed to set up /etc/machine-id: %m");
        return 0;
}

typedef struct HostFile {
        char *data;
        size_t size;
} HostFile;

static const char *resolv_source(ResolvConfMode m) {
        switch (m) {
        case RESOLV_CONF_COPY_HOST: case RESOLV_CONF_REPLACE_HOST: case RESOLV_CONF_BIND_HOST:
                return "/etc/resolv.conf";
        case RESOLV_CONF_COPY_STATIC: case RESOLV_CONF_REPLACE_STATIC: case RESOLV_CONF_BIND_STATIC:
                return "/usr/lib/systemd/resolv.conf";
        case RESOLV_CONF_COPY_UPLINK: case RESOLV_CONF_REPLACE_UPLINK: case RESOLV_CONF_BIND_UPLINK:
                return "/run/systemd/resolve/resolv.conf";
        case RESOLV_CONF_COPY_STUB: case RESOLV_CONF_REPLACE_STUB: case RESOLV_CONF_BIND_STUB:
                return "/run/systemd/resolve/stub-resolv.conf";
        default:
                return NULL;
        }
}

static ResolvConfMode resolv_conf_resolve(const Settings *s) {
        if (s->resolv_conf != RESOLV_CONF_AUTO)
                return s->resolv_conf;
        if (s->private_network)
                return RESOLV_CONF_OFF;
        if (s->read_only || s->volatile_mode == VOLATILE_STATE)
                return RESOLV_CONF_BIND_HOST;
        return RESOLV_CONF_COPY_HOST;
}

static TimezoneMode timezone_resolve(const Settings *s) {
        if (s->timezone != TIMEZONE_AUTO)
                return s->timezone;
        if (s->read_only || s->volatile_mode == VOLATILE_STATE)
                return TIMEZONE_BIND;
        return TIMEZONE_OFF; /* don't touch a writable tree unasked */
}

static bool resolv_conf_is_bind(ResolvConfMode rm) {
        return rm == RESOLV_CONF_BIND_HOST || rm == RESOLV_CONF_BIND_STATIC || rm == RESOLV_CONF_BIND_UPLINK ||
               rm == RESOLV_CONF_BIND_STUB;
}

/* Before pivot_root, in the setup mount namespace: the host's files bound into the tree. */
static void host_files_bind(const char *root, const Settings *s) {
        ResolvConfMode rm = resolv_conf_resolve(s);
        const char *src = resolv_source(rm);
        int r;

        if (src && resolv_conf_is_bind(rm)) {
                r = bind_host_file_in_tree(root, "/etc/resolv.conf", src, true);
                if (r < 0)
                        log_debug_errno(r, "Not binding %s to /etc/resolv.conf: %m", src);
        }
        if (timezone_resolve(s) == TIMEZONE_BIND) {
                r = bind_host_file_in_tree(root, "/etc/localtime", "/etc/localtime", true);
                if (r < 0)
                        log_debug_errno(r, "Not binding /etc/localtime: %m");
        }
}

/* While the host's files are in sight: what host_files_write() copies into the tree later. */
static void host_files_read(const Settings *s, HostFile *resolv, HostFile *tz) {
        ResolvConfMode rm = resolv_conf_resolve(s);
        TimezoneMode tm = timezone_resolve(s);
        const char *src = resolv_source(rm);

        if (src && !resolv_conf_is_bind(rm))
                (void) read_full_file(src, &resolv->data, &resolv->size);

        if (tm == TIMEZONE_COPY)
                (void) read_full_file("/etc/localtime", &tz->data, &tz->size);
        else if (tm == TIMEZONE_SYMLINK) {
                char t[PATH_MAX];
                ssize_t k = readlink("/etc/localtime", t, sizeof t - 1);
                if (k > 0) {
                        t[k] = 0;
                        tz->data = strdup(t);
                }
        }
}

/* After pivot_root: paths resolve inside the container only, but its /etc may hold a hard link to a
 * host file (made through a bind of a host directory on the same file system) or sit on a custom mount
 * of a host directory: files are replaced by new ones renamed into place, never written through. */
static void host_files_write(const Settings *s, HostFile *resolv, HostFile *tz) {
        ResolvConfMode rm = resolv_conf_resolve(s);
        TimezoneMode tm = timezone_resolve(s);
        _cleanup_close_ int rfd = -EBADF, etc = -EBADF;
        struct stat st;
        int r;

        if (rm == RESOLV_CONF_OFF && tm == TIMEZONE_OFF)
                return;
        rfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        etc = rfd < 0 ? negative_errno() : open_in_root(rfd, "etc", O_PATH | O_DIRECTORY);
        if (etc < 0) {
                log_debug_errno(etc, "Failed to open /etc of the container, not writing resolv.conf and localtime: %m");
                return;
        }

        if (rm == RESOLV_CONF_DELETE)
                (void) unlinkat(etc, "resolv.conf", 0);
        else if (resolv->data) {
                bool replace = rm >= RESOLV_CONF_REPLACE_HOST && rm <= RESOLV_CONF_REPLACE_STUB;
                if (!replace && fstatat(etc, "resolv.conf", &st, AT_SYMLINK_NOFOLLOW) >= 0 && !S_ISREG(st.st_mode))
                        log_debug("/etc/resolv.conf of the container is not a regular file, leaving it.");
                else {
                        r = write_file_atomic_at(etc, "resolv.conf", resolv->data, resolv->size, 0644, NULL);
                        if (r < 0)
                                log_debug_errno(r, "Failed to write /etc/resolv.conf, ignoring: %m");
                }
        }

        if (tm == TIMEZONE_DELETE)
                (void) unlinkat(etc, "localtime", 0);
        else if (tm == TIMEZONE_COPY && tz->data) {
                r = write_file_atomic_at(etc, "localtime", tz->data, tz->size, 0644, NULL);
                if (r < 0)
                        log_debug_errno(r, "Failed to write /etc/localtime, ignoring: %m");
        } else if (tm == TIMEZONE_SYMLINK && tz->data) {
                const char *zone = strstr(tz->data, "zoneinfo/");
                char target[PATH_MAX];
                if (zone) {
                        snprintf(target, sizeof target, "../usr/share/%s", zone);
                        r = symlink_atomic_at(target, etc, "localtime");
                        if (r < 0)
                                log_debug_errno(r, "Failed to link /etc/localtime, ignoring: %m");
                }
        }
}

/* Bound through an fd of the tree's /run/host (our fresh tmpfs at this point, but resolved inside the
 * tree all the same), with the mode from the umask: no path is looked up twice. */
static int make_notify_socket(const char *root, int *ret) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF, rfd = -EBADF, host = -EBADF;
        mode_t old;
        int one = 1, r;

        rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rfd < 0)
                return log_error_errno(negative_errno(), "Failed to open '%s': %m", root);
        r = open_run_host(rfd, &host);
        if (r < 0)
                return log_error_errno(r, "Failed to open '%s/run/host': %m", root);
        snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%i/notify", host);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(negative_errno(), "Failed to create the notify socket: %m");
        (void) unlinkat(host, "notify", 0);
        old = umask(0111);
        r = RET_NERRNO(bind(fd, (struct sockaddr *) &sa, sizeof sa));
        (void) umask(old);
        if (r < 0)
                return log_error_errno(r, "Failed to bind the notify socket: %m");
        (void) setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
        *ret = TAKE_FD(fd);
        return 0;
}

static int do_pivot_root(const char *root) {
        /* pivot_root(".", ".") stacks the old root on top of the new one;
         * detaching it leaves no path back to the host's tree. */
        if (chdir(root) < 0)
                return log_error_errno(negative_errno(), "Failed to enter '%s': %m", root);
        if (syscall(SYS_pivot_root, ".", ".") < 0)
                return log_error_errno(negative_errno(), "Failed to pivot_root into '%s': %m", root);
        if (umount2(".", MNT_DETACH) < 0)
                return log_error_errno(negative_errno(), "Failed to detach the host's root: %m");
        if (chdir("/") < 0)
                return log_error_errno(negative_errno(), "Failed to change to the new root: %m");
        return 0;
}

/* Container root keeps CAP_SYS_ADMIN in the host's user namespace, so in a
 * mount namespace owned by that user namespace it could remount /proc/sys or
 * /sys read-write, or unmount a mask and read /proc/kcore. The monitor makes
 * a copy of our mount namespace that is owned by a new, empty user namespace
 * (berth-container.c, make_locked_mount_namespace()): the kernel locks every
 * mount copied into a less privileged namespace, so read-only can't be
 * cleared and covered mounts can't be revealed, by anyone, and a fresh proc
 * or sysfs can't be mounted while ours is masked. Our credentials stay the
 * host's: only the namespace's owner changes. */
static int join_locked_mounts(Startup *sp) {
        SyncMessage m;
        int r, fd = -EBADF;

        r = startup_recv(sp, STARTUP_LOCKED_MOUNTS, &m, &fd);
        if (r < 0)
                return r;
        if (fd < 0)
                return log_error_errno(-EBADMSG, "The monitor sent no locked mount namespace.");
        r = RET_NERRNO(setns(fd, CLONE_NEWNS));
        safe_close(fd);
        if (r < 0)
                return log_error_errno(r, "Failed to enter the locked mount namespace: %m");
        /* setns() put us at the namespace's root, which is the tree */
        if (chdir("/") < 0)
                return log_error_errno(negative_errno(), "Failed to change to the new root: %m");
        return 0;
}

/* --private-users, in the container's PID 1 (child_init_main()): the trust
 * boundary. The setup child built the tree as host root, in the host's user
 * namespace (which locks the mounts for the guest); we have been root of the
 * container's user namespace (made and mapped by the monitor, the owner of the
 * locked mount namespace we just entered, and of our PID namespace) since the
 * monitor's helper made us: our capabilities count only there, and root is the
 * range's first id on the host. The namespaces the guest must manage itself
 * are made anew, owned by it: UTS (its host name), IPC (with a fresh
 * /dev/mqueue) and cgroup (the same root, the cgroup the monitor delegated to
 * it). The masked /proc stays the only procfs: a fresh one is refused while
 * ours has locked masks. The network namespace is the user namespace's with a
 * private network; the host's, or one joined by path, otherwise. */
static int enter_user_namespace(const Settings *s) {
        int flags = CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP, r;

        if (unshare(flags) < 0)
                return log_error_errno(negative_errno(), "Failed to create the namespaces of the user namespace: %m");
        /* a copy of the monitor's (the host's) UTS namespace: the container's name goes in anew */
        r = setup_hostname(s);
        if (r < 0)
                return r;
        /* /dev/mqueue showed the IPC namespace we just left */
        if (mount("mqueue", "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                return log_error_errno(negative_errno(), "Failed to mount /dev/mqueue: %m");
        /* a credential change clears the parent-death signal */
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        return 0;
}

/* R, after a timing mark WHAT at debug level when it is a success (BERTH_LOG_LEVEL=debug shows
 * where the start-up's time goes) */
static int timed(int r, const char *what) {
        if (r >= 0)
                log_timing("child", what);
        return r;
}

/* What the container runs: its init with --boot (and its stop and reboot signals), else the
 * command. Logs. */
static int choose_init(const Settings *s, const char **ret_init, int *ret_stop_signal, int *ret_reboot_signal) {
        int r;

        if (s->start_mode == START_BOOT) {
                r = pick_init(ret_init);
                if (r < 0)
                        return log_error_errno(r, "No init found in the container: tried /usr/lib/systemd/systemd, "
                                                  "/lib/systemd/systemd and /sbin/init. Install one, or run a command without --boot.");
                int poweroff;
                init_signals(*ret_init, &poweroff, ret_reboot_signal);
                *ret_stop_signal = s->kill_signal ?: poweroff;
        } else {
                *ret_stop_signal = s->kill_signal ?: (s->start_mode == START_PID2 ? SIGTERM : SIGKILL);
                *ret_reboot_signal = 0;
        }
        return 0;
}

/* The tree, built as host root. Without -U we are the container's PID 1 and go on to run the
 * payload (returns 1 with RET_*); with -U we are the setup child, PID 2 of the PID namespace
 * whose PID 1 waits to take over (child_init_main()): our part ends once the monitor has copied
 * our mounts into the locked mount namespace (returns 0). */
static int setup_container(const ChildParams *p, Startup *sp, const char **ret_init, int *ret_stop_signal,
                           int *ret_reboot_signal) {
        const Settings *s = p->settings;
        _cleanup_free_ char *root = NULL;
        HostFile resolv = {}, tz = {};
        bool userns = p->userns->fd >= 0;
        uid_t cred_uid;
        gid_t cred_gid;
        SyncMessage m;
        int r, fd;

        /* Namespaces: those the plan made at clone (mount, UTS, IPC, PID
         * without -U, and network with --private-network) are new, user is the
         * host's; with -U we were born into the PID namespace of the
         * container's PID 1, owned by its user namespace; cgroup is still the
         * host's until the monitor has moved us into the container's cgroup
         * and said so. */
        r = timed(namespace_plan_join(&p->runtime->namespaces), "join-namespaces");
        if (r < 0)
                return r;

        /* From here on no mount we make reaches the host. */
        if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0)
                return log_error_errno(negative_errno(), "Failed to cut mount propagation to the host: %m");
        log_timing("child", "mount-propagation");

        /* The tree and its API file systems need neither the cgroup nor the monitor's later steps:
         * made while the monitor makes the cgroups, not after. sysfs shows the network namespace
         * we are in, already the container's (links moved in later show up in it); nothing of the
         * guest runs before the monitor has said "registered". Only /sys/fs/cgroup waits for the
         * cgroup namespace. */
        r = timed(root_mount(s, p->root, p->userns, &root), "root-mount");
        /* attached now (or not used): nothing of it for the payload or the stub init to keep */
        (void) close(p->root->mount_fd);
        if (r < 0)
                return r;
        r = timed(mount_api_filesystems(root, s, userns_owner(p->userns), &p->runtime->host_os_release), "api-filesystems");
        if (r < 0)
                return r;

        r = startup_recv(sp, STARTUP_CGROUP_READY, &m, NULL);
        if (r < 0)
                return r;
        /* kept off the monitor's CPU while it made the cgroups (cpu_spread_child(), or
         * cpu_spread_self() where we ran first): every CPU again, before the payload or a guest's
         * process can inherit the narrower mask */
        r = cpu_spread_done(&p->spread);
        if (r < 0)
                return log_error_errno(r, "Failed to take the monitor's CPU mask back: %m");
        if (unshare((int) namespace_plan_unshare_flags(&p->runtime->namespaces, STARTUP_CGROUP_READY)) < 0)
                return log_error_errno(negative_errno(), "Failed to create a cgroup namespace: %m");
        r = timed(cgroup_mount_in_container(root), "cgroup-namespace, cgroup mount");
        if (r < 0)
                return r;
        /* the monitor's other steps before the rest of the tree: links moved, registered */
        while (sp->next < _STARTUP_STEP_MAX && startup_step_sender(sp->next) == STARTUP_MONITOR) {
                r = startup_recv(sp, sp->next, &m, NULL);
                if (r < 0)
                        return r;
        }
        log_timing("child", "monitor-steps");

        /* in /run/host, before the custom mounts (which may bind below the homes) */
        r = timed(bind_users_setup(root, p->userns), "bind-user");
        if (r < 0)
                return r;

        r = timed(console_setup_child(root, s->console_mode, userns_owner(p->userns), &fd), "console made");
        if (r < 0)
                return r;
        if (fd >= 0) {
                r = startup_send(sp, STARTUP_CONSOLE, 0, 0, fd);
                safe_close(fd);
                if (r < 0)
                        return r;
        }

        r = timed(make_notify_socket(root, &fd), "notify-socket made");
        if (r < 0)
                return r;
        r = startup_send(sp, STARTUP_NOTIFY, 0, 0, fd);
        safe_close(fd);
        if (r < 0)
                return r;

        r = timed(custom_mounts_apply(root, p->runtime->mounts, p->runtime->n_mounts, p->userns), "custom-mounts");
        if (r < 0)
                return r;
        /* after the custom mounts: the user is looked up in the /etc the payload will see */
        credentials_reader(root, s, p->userns, &cred_uid, &cred_gid);
        r = timed(credentials_mount(root, s->credentials, s->n_credentials, cred_uid, cred_gid), "credentials");
        if (r < 0)
                return r;
        r = timed(mount_protect_kernel(root), "protect-kernel");
        if (r < 0)
                return r;
        r = setup_hostname(s);
        if (r < 0)
                return r;
        r = timed(setup_machine_id(root, s, p->runtime->uuid), "hostname, machine-id");
        if (r < 0)
                return r;
        host_files_bind(root, s);
        if (!userns)
                host_files_read(s, &resolv, &tz);
        log_timing("child", "host-files");
        r = timed(root_finalize(root, s), "root-finalize");
        if (r < 0)
                return r;
        r = timed(do_pivot_root(root), "pivot-root");
        if (r < 0)
                return r;
        if (userns) {
                /* the monitor copies our mounts, then releases us: the rest is PID 1's */
                r = startup_send(sp, STARTUP_PIVOTED, 0, 0, -EBADF);
                if (r >= 0)
                        r = startup_recv(sp, STARTUP_LOCKED_MOUNTS, &m, NULL);
                return r < 0 ? r : 0;
        }
        /* Every mask and read-only mount exists: the monitor may copy our mounts now. What does not
         * depend on the copy is done while it makes it, not after: the limits, the host's files
         * (written into the tree's file systems, which the copy shares: no mount is made), the
         * choice of init and our bounding set (remembered, for the system call filter's step). */
        r = startup_send(sp, STARTUP_PIVOTED, 0, 0, -EBADF);
        if (r < 0)
                return r;
        /* before the user namespace: raising limits needs the host's CAP_SYS_RESOURCE */
        r = timed(apply_resources(s), "resources");
        if (r < 0)
                return r;
        host_files_write(s, &resolv, &tz);
        log_timing("child", "host-files written");
        free(resolv.data);
        free(tz.data);
        r = choose_init(s, ret_init, ret_stop_signal, ret_reboot_signal);
        if (r < 0)
                return r;
        (void) capability_bounding_set();
        r = join_locked_mounts(sp);
        return r < 0 ? r : 1;
}

/* Last steps in the process that becomes the payload: stdio, user, exec. */
static int exec_payload(const ChildParams *p, const char *init, UserRecord *u) {
        const Settings *s = p->settings;
        _cleanup_strv_free_ char **env = NULL, **argv = NULL;
        int r;

        r = console_attach_stdio(s->console_mode);
        if (r < 0)
                return r;

        r = build_environment(p, u, &env);
        if (r < 0)
                return log_oom();

        if (init) {
                r = strv_extend(&argv, init);
                STRV_FOREACH(a, s->parameters)
                        r |= strv_extend(&argv, *a);
        } else if (!strv_isempty(s->parameters))
                argv = strv_copy(s->parameters);
        else
                r = strv_extend(&argv, u && !isempty(u->shell) ? u->shell : "/bin/sh");
        if (r < 0 || !argv)
                return log_oom();

        r = change_user(s->user ? u : NULL, s->ambient_capability);
        if (r < 0)
                return r;
        if (chdir(s->working_directory ?: (u && s->user ? u->home : "/")) < 0) {
                if (s->working_directory)
                        return log_error_errno(negative_errno(), "Failed to change to '%s' (--chdir=): %m",
                                               s->working_directory);
                (void) chdir("/");
        }

        r = exec_search(argv, env);
        return log_error_errno(r, "Failed to execute '%s' in the container: %m", argv[0]);
}

/* The container's PID 1 from the finished tree on: the user, seccomp, capabilities, the exec
 * step and (--as-pid2) the stub init, then the payload. Never returns. */
_noreturn_ static void run_payload(const ChildParams *p, Startup *sp, ChildError *error, const char *init,
                                   int stop_signal, int reboot_signal) {
        const Settings *s = p->settings;
        UserRecord user = {}, *u = NULL;
        sigset_t none, all;
        uint64_t caps;
        int r;

        sigemptyset(&none);
        sigfillset(&all);
        if (init == NULL) {
                r = find_user(p->userns, s->user ?: "0", &user);
                if (r == -ESRCH && s->user) {
                        log_error_errno(r, "User '%s' does not exist in the container's /etc/passwd (--user=). "
                                           "Add it to the tree, or pass a user name or UID that exists there.",
                                        s->user);
                        goto fail;
                }
                if (r < 0 && s->user) {
                        log_error_errno(r, "Failed to read the container's /etc/passwd to find user '%s' (--user=): %m",
                                        s->user);
                        goto fail;
                }
                if (r >= 0)
                        u = &user;
                log_timing("child", "user lookup");
        }

        /* --personality=: kept across exec, so the payload (and --as-pid2's stub init) has it */
        if (personality_domain(s->personality) >= 0 &&
            personality((unsigned long) personality_domain(s->personality)) < 0) {
                r = log_error_errno(negative_errno(), "Failed to set the personality '%s' (--personality=): %m",
                                    personality_to_string(s->personality));
                goto fail;
        }

        /* The filter first: loading it without no_new_privs needs CAP_SYS_ADMIN, which
         * --drop-capability= may take away. */
        /* the bounding set as the child sees it here (past the user namespace's setns()); the
         * monitor's program is for the set it saw, else it is built anew */
        caps = settings_effective_capabilities(s);
        r = timed(seccomp_apply(s, caps, caps == p->runtime->capabilities ? p->runtime->seccomp : NULL), "seccomp");
        if (r < 0)
                goto fail;
        r = timed(capability_apply(caps), "capabilities");
        if (r < 0)
                goto fail;

        r = startup_send(sp, STARTUP_EXEC, stop_signal, reboot_signal, -EBADF);
        if (r < 0)
                goto fail;

        if (s->start_mode == START_PID2) {
                int gate[2];
                char c;

                /* PID 2 waits at this gate until PID 1 has let go of the console: the payload
                 * must not find it in /proc/1/fd even for a moment. */
                if (pipe2(gate, O_CLOEXEC) < 0) {
                        r = log_error_errno(negative_errno(), "Failed to create a pipe: %m");
                        goto fail;
                }
                /* blocked before the fork, so that an early SIGCHLD is not lost to the stub */
                (void) sigprocmask(SIG_SETMASK, &all, NULL);
                pid_t pid = fork();
                if (pid < 0) {
                        r = log_error_errno(negative_errno(), "Failed to fork the payload: %m");
                        goto fail;
                }
                if (pid > 0) {
                        safe_close(p->sync_fd);
                        /* The stub must not keep berth's stdio (the host's terminal): PID 2
                         * could reach it through /proc/1/fd. */
                        (void) console_detach_stdio(s->console_mode);
                        safe_close(gate[0]);
                        safe_close(gate[1]); /* opens the gate */
                        stub_init_run(pid);
                }
                safe_close(gate[1]);
                while (read(gate[0], &c, 1) < 0 && errno == EINTR)
                        ;
                safe_close(gate[0]);
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                (void) sigprocmask(SIG_SETMASK, &none, NULL);
        }

        r = exec_payload(p, init, u);
fail:
        (void) startup_send_error(sp, r, error->message);
        _exit(EXIT_FAILURE);
}

/* What both start-up children do first: errors go to the monitor (through ERROR, sent with the
 * step that failed), we die with the monitor (berth killed with SIGKILL takes the container down;
 * the -U PID 1's parent is the monitor too, by CLONE_PARENT), the signals the monitor blocks for
 * its event loop are unblocked for the payload, every fd but KEEP is closed, and the start-up protocol
 * begins on the sync socket. */
/* Returns what joining the container's cgroups gave (CGroupJoin), logged. */
static int child_prologue(const ChildParams *p, const int *keep, size_t n_keep, ChildError *error, Startup *sp) {
        sigset_t none;
        int r;

        log_set_sink(LOG_ERR, child_error_sink, error);
        /* the monitor's bounding set is not ours to assume: -U's PID 1 has its user namespace's */
        capability_forget();
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        /* into the container's cgroups now: what we allocate from here on is the container's */
        r = p->cgroup_join ? cgroup_join_self(p->cgroup_join, p->cgroup_joined_fd >= 0) : 0;
#if BERTH_TEST_HOOKS
        /* BERTH_TEST_INIT_JOIN_FAILS=1: -U's PID 1 cannot join, as on a kernel before 5.16 */
        if (p->cgroup_joined_fd >= 0 && !isempty(getenv("BERTH_TEST_INIT_JOIN_FAILS")))
                r = -EACCES;
#endif
        if (p->cgroup_joined_fd >= 0) {
                /* -U's PID 1: the monitor moves us where we could not (a kernel before 5.16 checks
                 * the writer's credentials, ours in the user namespace) */
                if (r < 0)
                        log_debug_errno(r, "PID 1 could not join the container's cgroup, the monitor moves it: %m");
                (void) write(p->cgroup_joined_fd, r >= 0 ? "1" : "0", 1);
                safe_close(p->cgroup_joined_fd);
                r = 0;
        } else if (r < 0)
                log_error_errno(r, "Failed to move into the container's cgroup: %m");
        (void) close_all_fds(keep, n_keep);
        startup_init(sp, p->sync_fd, STARTUP_CHILD, p->settings);
        return r;
}

_noreturn_ void child_main(const ChildParams *p) {
        const char *init = NULL;
        int r, stop_signal = SIGKILL, reboot_signal = 0;
        int keep[] = { p->sync_fd, p->root->mount_fd, p->userns->fd };
        ChildError error = {};
        Startup sp;

        cpu_spread_self(&p->spread);
        r = child_prologue(p, keep, ELEMENTSOF(keep), &error, &sp);
        if (r >= 0)
                r = setup_container(p, &sp, &init, &stop_signal, &reboot_signal);
        if (r == 0)
                _exit(EXIT_SUCCESS); /* -U: the container's PID 1 takes it from here */
        if (r > 0)
                run_payload(p, &sp, &error, init, stop_signal, reboot_signal);
        (void) startup_send_error(&sp, r, error.message);
        _exit(EXIT_FAILURE);
}

/* -U: the container's PID 1 (see child_init_spawn()). Namespaces: the container's user namespace
 * (we are its root) and a new PID namespace owned by it, whose PID 1 we are; the monitor's
 * network namespace at the clone (the container's); the host's mount, UTS, IPC and cgroup
 * namespaces. We wait, running nothing, while the setup child (PID 2 here, host root) builds the
 * tree; the monitor then reaps it and hands us the locked mount namespace. */
_noreturn_ static void child_init_main(const ChildParams *p) {
        const Settings *s = p->settings;
        const char *init = NULL;
        int r, stop_signal = SIGKILL, reboot_signal = 0;
        int keep[] = { p->sync_fd };
        HostFile resolv = {}, tz = {};
        ChildError error = {};
        Startup sp;

        (void) child_prologue(p, keep, ELEMENTSOF(keep), &error, &sp);
        startup_handover(&sp, p->sync_fd, STARTUP_LOCKED_MOUNTS);
        /* still in the host's mount namespace: the host's files that go into the tree */
        host_files_read(s, &resolv, &tz);
        r = join_locked_mounts(&sp);
        if (r >= 0)
                r = timed(enter_user_namespace(s), "user-namespace");
        if (r >= 0) {
                host_files_write(s, &resolv, &tz);
                log_timing("child", "host-files written");
                r = choose_init(s, &init, &stop_signal, &reboot_signal);
        }
        free(resolv.data);
        free(tz.data);
        if (r >= 0)
                run_payload(p, &sp, &error, init, stop_signal, reboot_signal);
        (void) startup_send_error(&sp, r, error.message);
        _exit(EXIT_FAILURE);
}

/* -U, in a helper the monitor clones (host root, the monitor's namespaces and the container's
 * network namespace; it shares the monitor's memory, which sleeps meanwhile, but not its fd table,
 * credentials or limits): makes the container's PID 1 in a PID namespace owned by the container's
 * user namespace. Only a process inside a user namespace makes a PID namespace it owns, and the
 * kernel gives no handle on a PID namespace before its first process; the tree, though, must be
 * built as host root. So we apply what only host root may raise (resource limits), become root
 * of the user namespace, unshare the PID namespace and clone its PID 1 as the monitor's child
 * (CLONE_PARENT). The monitor then clones the setup child into that PID namespace (as PID 2,
 * still host root). reboot(2) in the guest needs CAP_SYS_BOOT in the PID namespace's owner: the
 * guest's root has it, and the kernel ends PID 1 with SIGHUP (restart) or SIGINT, as without -U.
 * Returns PID 1's pid. Logs. */
int child_init_spawn(const ChildParams *p, pid_t *ret) {
        pid_t pid;
        int r;

        r = timed(apply_resources(p->settings), "resources");
        if (r < 0)
                return r;
        if (setns(p->userns->fd, CLONE_NEWUSER) < 0)
                return log_error_errno(negative_errno(), "Failed to enter the container's user namespace: %m");
        if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
                return log_error_errno(negative_errno(), "Failed to become root of the user namespace: %m");
        if (unshare(CLONE_NEWPID) < 0)
                return log_error_errno(negative_errno(), "Failed to create the container's PID namespace: %m");
        pid = (pid_t) syscall(SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, 0);
        if (pid < 0)
                return log_error_errno(negative_errno(), "Failed to create the container's PID 1: %m");
        if (pid == 0)
                child_init_main(p);
        *ret = pid;
        return 0;
}
