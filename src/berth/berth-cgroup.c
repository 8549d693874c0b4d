/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "berth-cgroup.h"
#include "log.h"
#include "machine-name.h"
#include "util.h"

/* Where the container's cgroup goes, and why there.
 *
 * It is a child of our own cgroup, never a sibling: under systemd our own
 * cgroup is the delegated unit cgroup (berth@NAME.service, Delegate=yes), and
 * everything above it belongs to systemd. Outside systemd, the cgroup that
 * started us is as good a parent as any and keeps the container accounted to
 * whoever started berth.
 *
 * cgroup2 forbids processes in a (non-root) cgroup that hands controllers to
 * its children ("no internal processes"). To give the container pids, memory,
 * cpu... berth must therefore leave its own cgroup first. We do that only when
 * it is ours alone (cgroup.procs lists just us: the unit case): berth moves
 * into OWN/berth-NAME/supervisor, enables the available controllers in OWN
 * and OWN/berth-NAME, and the container gets OWN/berth-NAME/payload. Where
 * others share our cgroup (a login shell's session scope), we do not move
 * them or ourselves: the container gets no controllers of its own but is
 * still one cgroup to find and kill. At exit the move is undone, so a berth
 * outside systemd leaves nothing behind (systemd would trim a unit's cgroup
 * anyway). Keeping supervisor and payload under one berth-NAME directory
 * (instead of nspawn's bare "payload"/"supervisor") lets several machines
 * share one parent and keeps a machine's leftovers in one place.
 *
 * On hybrid hosts (this project's CI) the cgroup2 hierarchy has no controllers
 * at all, so no move is ever needed; the same relative path is created in
 * every v1 hierarchy too, where the internal-process rule does not exist.
 *
 * Trust boundary. Without a user namespace, container root holds
 * CAP_SYS_ADMIN in the host's user namespace and may mount any cgroup
 * hierarchy; what it sees there is the subtree of its cgroup namespace root,
 * the cgroup it was in at unshare(CLONE_NEWCGROUP). So in every hierarchy the
 * kernel has, cpu to name=systemd, mounted or not, that root must be a cgroup
 * of its own: were it the hierarchy's root, the guest could write its
 * release_agent, which the host runs as root (and a v1 hierarchy with any
 * child cgroup refuses the remount that would set it otherwise). And it must
 * not be where the device policy is: a v1 devices cgroup may widen its own
 * devices.allow up to what its parent allows. Hence the policy cgroup between
 * the machine's and the container's: the guest can neither see nor write it,
 * and the v1 devices controller bounds every child by its parent. Only the
 * hierarchies that can carry a device policy have it: the v1 one with the
 * devices controller, and cgroup2 (the BPF program, berth-devices.c). In every
 * other v1 hierarchy berth sets nothing that the guest must not change, and
 * the machine's cgroup is the container's. Each cgroup is a mkdir at the start
 * and an rmdir at the end (about 25 and 12 us here, the memory controller's
 * 90), each under the kernel's one cgroup_mutex: with three levels in every
 * hierarchy a start on a hybrid host made 30, now 14. */

#define CGROUP_ROOT "/sys/fs/cgroup"
#define KILL_TIMEOUT_USEC (5 * USEC_PER_SEC)

static const char *const layout_table[_CGROUP_LAYOUT_MAX] = {
        [CGROUP_LAYOUT_LEGACY] = "legacy",
        [CGROUP_LAYOUT_HYBRID] = "hybrid",
        [CGROUP_LAYOUT_UNIFIED] = "unified",
};

const char *cgroup_layout_to_string(CGroupLayout l) {
        return l >= 0 && l < _CGROUP_LAYOUT_MAX ? layout_table[l] : NULL;
}

CGroupLayout cgroup_layout_from_string(const char *s) {
        return (CGroupLayout) string_table_lookup(layout_table, _CGROUP_LAYOUT_MAX, s);
}

/* Does the hierarchy with CONTROLLERS ("cpu,cpuacct") have controller C? */
static bool controllers_have(const char *controllers, const char *c) {
        _cleanup_strv_free_ char **l = NULL;

        return strv_split(controllers, ",", &l) >= 0 && strv_contains(l, c);
}

static int fs_type(const char *path, long *ret) {
        struct statfs sfs;

        if (statfs(path, &sfs) < 0)
                return negative_errno();
        *ret = (long) sfs.f_type;
        return 0;
}

static bool is_cgroup_fs(const char *path, bool *ret_v2) {
        long t;

        if (fs_type(path, &t) < 0)
                return false;
        if (t == CGROUP2_SUPER_MAGIC) {
                if (ret_v2)
                        *ret_v2 = true;
                return true;
        }
        if (t == CGROUP_SUPER_MAGIC) {
                if (ret_v2)
                        *ret_v2 = false;
                return true;
        }
        return false;
}

/* What the host mounts where is looked at once per process: a start asks for it in stale cleanup and
 * again in cgroup_create(), and each look is a statfs() per hierarchy (on a hybrid host ~12). The
 * host does not remount /sys/fs/cgroup under a starting machine; our own cgroup, which may change
 * meanwhile (register_unit() moves us into a scope), is read anew every time. */
static CGroupLayout cached_layout = _CGROUP_LAYOUT_INVALID;
static char **cached_v1_mounts; /* "CONTROLLERS MOUNT", MOUNT empty where there is none */
/* The machine cgroups cgroup_find() last found none of, in the order of own_hierarchies() */
static char **known_absent;

int cgroup_detect_layout(CGroupLayout *ret) {
        long t;
        int r;

        if (cached_layout >= 0) {
                *ret = cached_layout;
                return 0;
        }
        r = fs_type(CGROUP_ROOT, &t);
        if (r < 0)
                return r;
        if (t == CGROUP2_SUPER_MAGIC)
                cached_layout = CGROUP_LAYOUT_UNIFIED;
        else if (fs_type(CGROUP_ROOT "/unified", &t) >= 0 && t == CGROUP2_SUPER_MAGIC)
                cached_layout = CGROUP_LAYOUT_HYBRID;
        else
                cached_layout = CGROUP_LAYOUT_LEGACY;
        *ret = cached_layout;
        return 0;
}

static const char *unified_mount(CGroupLayout l) {
        return l == CGROUP_LAYOUT_UNIFIED ? CGROUP_ROOT : l == CGROUP_LAYOUT_HYBRID ? CGROUP_ROOT "/unified" : NULL;
}

CGroup *cgroup_free(CGroup *cg) {
        if (!cg)
                return NULL;
        free(cg->name);
        free(cg->unified_path);
        strv_free(cg->v1_paths);
        strv_free(cg->detached);
        free(cg->supervisor_path);
        free(cg->own_path);
        free(cg->enabled_controllers);
        free(cg);
        return NULL;
}

/* One line of /proc/self/cgroup, resolved to a directory we can use now. */
typedef struct Hierarchy {
        char *controllers; /* "" for cgroup2, "cpu,cpuacct", "name=systemd", ... */
        char *rel;         /* our cgroup, relative to our cgroup namespace's root there */
        int fd;            /* a detached mount of it, when the host has it mounted nowhere we look */
        char *own;         /* fs path of our own cgroup: MOUNT/REL, or /proc/self/fd/FD/REL */
} Hierarchy;

static void hierarchies_free(Hierarchy *h, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(h[i].controllers);
                free(h[i].rel);
                free(h[i].own);
                safe_close(h[i].fd);
        }
        free(h);
}

/* Where a v1 hierarchy with these controllers is mounted: /sys/fs/cgroup/LIST
 * by convention ("name=" dropped), or a symlink named after one of them. */
static char *v1_mount_uncached(const char *controllers) {
        _cleanup_strv_free_ char **l = NULL;
        const char *list = startswith_ptr(controllers, "name=") ?: controllers;
        char *p;

        p = strjoin(CGROUP_ROOT "/", list);
        if (!p)
                return NULL;
        if (is_cgroup_fs(p, NULL))
                return p;
        free(p);
        if (strv_split(controllers, ",", &l) < 0)
                return NULL;
        STRV_FOREACH(c, l) {
                p = strjoin(CGROUP_ROOT "/", startswith_ptr(*c, "name=") ?: *c);
                if (!p)
                        return NULL;
                if (is_cgroup_fs(p, NULL))
                        return p;
                free(p);
        }
        return NULL;
}

/* v1_mount_uncached(), looked up once per process (see cached_layout). */
static char *v1_mount(const char *controllers) {
        char *found;

        STRV_FOREACH(p, cached_v1_mounts) {
                size_t l = strlen(controllers);

                if (strncmp(*p, controllers, l) == 0 && (*p)[l] == ' ')
                        return isempty(*p + l + 1) ? NULL : strdup(*p + l + 1);
        }
        found = v1_mount_uncached(controllers);
        /* (out of memory: not cached, looked at again next time) */
        (void) strv_consume(&cached_v1_mounts, strjoin(controllers, " ", found ?: ""));
        return found;
}

/* The ID /proc/self/cgroup lists for the hierarchy of CONTROLLERS ("cpu,cpuacct", "name=foo",
 * "" for cgroup2), -ENOENT if it lists none. */
static int hierarchy_id(const char *controllers) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/cgroup", "re");
        char line[4096];

        if (!f)
                return negative_errno();
        while (fgets(line, sizeof(line), f)) {
                char *c = strchr(line, ':'), *end;
                unsigned id;

                if (!c || !(end = strchr(c + 1, ':')))
                        continue;
                *c = *end = 0;
                if (streq(c + 1, controllers) && safe_atou(line, &id) >= 0 && id <= INT_MAX)
                        return (int) id;
        }
        return -ENOENT;
}

/* A hierarchy the host has but does not mount where we look (a named one that
 * some tool made, a v1 hierarchy of a half-migrated host, cgroup2 on a legacy
 * host) still needs the container's cgroup: otherwise the container's cgroup
 * namespace root there is the hierarchy's root, with its release_agent. We
 * mount it detached (fsmount(): no mount namespace sees it, nothing on the
 * host changes) and reach it through /proc/self/fd/FD.
 *
 * A v1 mount joins the hierarchy that has exactly its controllers and name, and
 * creates one if there is none: a named hierarchy without controllers that went
 * away since /proc/self/cgroup listed it (its last cgroup and mount gone) would be
 * made anew by us, and live on as long as berths keep making cgroups in it. So
 * the mount must land in the hierarchy with ID (the one listed; < 0: listed now):
 * /proc/self/cgroup, read again while we hold the mount, says which one it is.
 * Another one (IDs are not reused) is closed again, which destroys it if we made
 * it: -ESTALE. cgroup2 is always there. */
static int open_detached(const char *controllers, int id) {
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_close_ int fs = -EBADF, fd = -EBADF;
        bool v2 = isempty(controllers), any = false;

        if (!v2 && id < 0) {
                id = hierarchy_id(controllers);
                if (id < 0)
                        return id;
        }
        fs = fsopen(v2 ? "cgroup2" : "cgroup", FSOPEN_CLOEXEC);
        if (fs < 0)
                return negative_errno();
        if (!v2 && strv_split(controllers, ",", &l) < 0)
                return -ENOMEM;
        STRV_FOREACH(c, l) {
                const char *name = startswith_ptr(*c, "name=");
                int q = name ? fsconfig(fs, FSCONFIG_SET_STRING, "name", name, 0)
                             : fsconfig(fs, FSCONFIG_SET_FLAG, *c, NULL, 0);
                if (q < 0)
                        return negative_errno();
                any = any || !name;
        }
        if (!v2 && !any && fsconfig(fs, FSCONFIG_SET_FLAG, "none", NULL, 0) < 0)
                return negative_errno();
        if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return negative_errno();
        fd = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
        if (fd < 0)
                return negative_errno();
        if (!v2) {
                int now = hierarchy_id(controllers);

                /* (a listing we could not read says nothing: an error, never "gone") */
                if (now < 0 && now != -ENOENT)
                        return now;
                if (now != id)
                        return -ESTALE; /* fd closed: a hierarchy we made has no cgroup and no mount, it goes */
        }
        return TAKE_FD(fd);
}

/* open_detached(), for a hierarchy that may go away meanwhile: a named one that a tool (or
 * another test run) made and destroys again fails to mount (EBUSY) while it goes. Gone, it is
 * no concern of the container's: -ENOENT. Still there, it is tried again for a while. */
static int open_detached_or_gone(const char *controllers, int id) {
        for (int attempt = 0;; attempt++) {
                int fd = open_detached(controllers, id);

                if (fd >= 0 || fd == -EPERM || fd == -EACCES || fd == -ENOSYS)
                        return fd;
                if (fd == -ESTALE)
                        return -ENOENT;
                int now = hierarchy_id(controllers);
                if (now == -ENOENT || (now >= 0 && now != id))
                        return -ENOENT;
                if (attempt >= 100)
                        return fd == -ENOENT ? -EIO : fd;
                (void) usleep(20 * USEC_PER_MSEC);
        }
}

static char *join_rel(const char *base, const char *rel) {
        return streq(rel, "/") ? strdup(base) : strjoin(base, rel);
}

static char *fd_path(int fd) {
        char buf[64];

        snprintf(buf, sizeof(buf), "/proc/self/fd/%d", fd);
        return strdup(buf);
}

/* Our own cgroup in every hierarchy the kernel has, cgroup2 first (index 0).
 * With DETACHED, hierarchies that are not mounted where we look are mounted
 * detached (see open_detached()); without, they are left out. */
static int own_hierarchies(CGroupLayout layout, bool detached, Hierarchy **ret, size_t *ret_n) {
        _cleanup_free_ char *listing = NULL;
        Hierarchy *h = NULL;
        size_t n = 0;
        char *line, *saveptr = NULL;
        int r;

        r = read_full_file("/proc/self/cgroup", &listing, NULL);
        if (r < 0)
                return r;
#if BERTH_TEST_HOOKS
        /* BERTH_TEST_CGROUP_GONE=NAME: a named hierarchy that went away right after we read the
         * list (one that does not exist at all): listed, with an ID no hierarchy has */
        const char *gone = getenv("BERTH_TEST_CGROUP_GONE");
        if (!isempty(gone)) {
                char *more = strjoin(listing, "999999:name=", gone, ":/\n");
                if (!more)
                        return -ENOMEM;
                free(listing);
                listing = more;
        }
#endif
        r = 0;
        for (line = strtok_r(listing, "\n", &saveptr); line; line = strtok_r(NULL, "\n", &saveptr)) {
                _cleanup_free_ char *mount = NULL;
                _cleanup_close_ int fd = -EBADF;
                char *ctrl, *path;
                unsigned id;
                bool v2;

                ctrl = strchr(line, ':');
                if (!ctrl)
                        continue;
                *ctrl++ = 0;
                path = strchr(ctrl, ':');
                if (!path)
                        continue;
                *path++ = 0;
                if (safe_atou(line, &id) < 0 || id > INT_MAX)
                        continue;
                v2 = id == 0 && isempty(ctrl);
                if (!v2 && isempty(ctrl))
                        continue;
                if (v2 && layout != CGROUP_LAYOUT_LEGACY)
                        mount = strdup(unified_mount(layout));
                else if (!v2 && layout != CGROUP_LAYOUT_UNIFIED)
                        mount = v1_mount(ctrl);
#if BERTH_TEST_HOOKS
                /* BERTH_TEST_CGROUP_DETACH=CONTROLLER: the v1 hierarchy with it is mounted nowhere we
                 * look, as on a host that mounts it elsewhere */
                const char *undo = getenv("BERTH_TEST_CGROUP_DETACH");
                if (!v2 && !isempty(undo) && controllers_have(ctrl, undo))
                        mount = (free(mount), NULL);
#endif
                if (!mount) {
                        /* (or out of memory: then the detached mount is a detour that works too) */
                        if (!detached)
                                continue;
                        fd = v2 ? open_detached(ctrl, 0) : open_detached_or_gone(ctrl, (int) id);
                        if (fd == -EPERM || fd == -EACCES || fd == -ENOSYS) {
                                /* Nor can the container, which has no more rights than we. */
                                log_debug_errno(fd, "Cannot mount the cgroup hierarchy '%s', nor can the "
                                                "container: leaving it out: %m", v2 ? "cgroup2" : ctrl);
                                continue;
                        }
                        if (fd == -ENOENT) {
                                log_debug("The cgroup hierarchy '%s' went away: leaving it out.", ctrl);
                                continue;
                        }
                        if (fd < 0) {
                                r = log_error_errno(fd, "Failed to mount the cgroup hierarchy '%s' detached: %m",
                                                    v2 ? "cgroup2" : ctrl);
                                break;
                        }
                        mount = fd_path(fd);
                        if (!mount) {
                                r = log_oom();
                                break;
                        }
                }
                Hierarchy *nh = realloc(h, (n + 1) * sizeof(Hierarchy));
                if (!nh) {
                        r = log_oom();
                        break;
                }
                h = nh;
                h[n] = (Hierarchy) {
                        .controllers = strdup(ctrl),
                        .rel = strdup(path),
                        .fd = TAKE_FD(fd),
                        .own = join_rel(mount, path),
                };
                n++;
                if (!h[n - 1].own || !h[n - 1].controllers || !h[n - 1].rel) {
                        r = log_oom();
                        break;
                }
                /* keep cgroup2 in front */
                if (v2 && n > 1) {
                        Hierarchy t = h[n - 1];
                        memmove(h + 1, h, (n - 1) * sizeof(Hierarchy));
                        h[0] = t;
                }
        }
        if (r < 0) {
                hierarchies_free(h, n);
                return r;
        }
        *ret = h;
        *ret_n = n;
        return 0;
}

static int read_attr(const char *dir, const char *attr, char **ret) {
        _cleanup_free_ char *p = path_join(dir, attr);
        char *s;
        int r;

        if (!p)
                return -ENOMEM;
        r = read_full_file(p, &s, NULL);
        if (r < 0)
                return r;
        s[strcspn(s, "\n")] = 0;
        *ret = s;
        return 0;
}

static int write_attr(const char *dir, const char *attr, const char *value) {
        _cleanup_free_ char *p = path_join(dir, attr);

        if (!p)
                return -ENOMEM;
        return write_string_file(p, value, 0);
}

static bool attr_exists(const char *dir, const char *attr) {
        _cleanup_free_ char *p = path_join(dir, attr);
        return p && access(p, F_OK) >= 0;
}

/* The machine's cgroup of a container cgroup path with our shape
 * (".../berth-NAME/policy/payload", or ".../berth-NAME/payload" of older
 * versions); otherwise the path itself (".../berth-NAME" in the hierarchies
 * without a policy cgroup). Everything below it is the machine's. */
static char *machine_dir_of(const char *payload) {
        _cleanup_free_ char *p = strdup(payload);
        char *slash;

        if (!p)
                return NULL;
        slash = strrchr(p, '/');
        if (!slash || !streq(slash + 1, "payload"))
                return TAKE_PTR(p);
        *slash = 0;
        if (startswith(path_basename(p), "berth-"))
                return TAKE_PTR(p);
        slash = strrchr(p, '/');
        if (slash && streq(slash + 1, "policy")) {
                *slash = 0;
                if (startswith(path_basename(p), "berth-"))
                        return TAKE_PTR(p);
        }
        free(p);
        return strdup(payload);
}

/* The policy cgroup above a container cgroup path of our shape
 * (".../berth-NAME/policy/payload"), otherwise the path itself. */
static char *policy_dir_of(const char *payload) {
        _cleanup_free_ char *machine = machine_dir_of(payload);
        _cleanup_free_ char *policy = machine ? path_join(machine, "policy") : NULL;
        _cleanup_free_ char *expect = policy ? path_join(policy, "payload") : NULL;

        if (!expect)
                return NULL;
        return streq(expect, payload) ? TAKE_PTR(policy) : strdup(payload);
}

/* v1 cpuset refuses tasks until cpus and mems are set: a new cgroup gets its parent's. CpusetValues
 * carries them down the chain of cgroups we make (machine, policy, payload): each got the values
 * of the one above, so only the first is read from its parent, and a cgroup we just made is known
 * to be empty. Each look is an open, two reads and a close, in a hierarchy where every start pays
 * the kernel's first cpuset mkdir already. */
typedef struct CpusetValues {
        char *cpus, *mems;
} CpusetValues;

static void cpuset_values_done(CpusetValues *v) {
        free(v->cpus);
        free(v->mems);
        *v = (CpusetValues) {};
}

static void cpuset_init(const char *dir, bool fresh, CpusetValues *v) {
        _cleanup_free_ char *parent = strdup(dir);
        char *slash;

        if (!parent)
                return;
        slash = strrchr(parent, '/');
        if (!slash)
                return;
        *slash = 0;
        for (unsigned i = 0; i < 2; i++) {
                const char *attr = i == 0 ? "cpuset.cpus" : "cpuset.mems";
                char **known = i == 0 ? &v->cpus : &v->mems;
                _cleanup_free_ char *mine = NULL;

                /* one that was there already (a leftover we could not remove) may have its own */
                if (!fresh && read_attr(dir, attr, &mine) >= 0 && !isempty(mine))
                        continue;
                if (!*known && read_attr(parent, attr, known) < 0)
                        continue;
                if (isempty(*known))
                        continue;
                (void) write_attr(dir, attr, *known);
        }
}

/* CPUSET: DIR is in the v1 hierarchy with the cpuset controller (only there is there anything to
 * fill in: a look for cpuset.cpus in every other one cost a syscall per cgroup), and holds what
 * its parent has, if known (NULL: read them). */
/* EXCLUSIVE: one that is there already is an error (-EEXIST), not taken over. */
static int mkdir_cgroup(const char *dir, CpusetValues *cpuset, bool exclusive) {
        bool fresh = true;

        if (mkdir(dir, 0755) < 0) {
                if (errno != EEXIST || exclusive)
                        return negative_errno();
                fresh = false;
        }
        if (cpuset) {
                if (!fresh)
                        /* its parent's values may differ from what we carry */
                        cpuset_values_done(cpuset);
                cpuset_init(dir, fresh, cpuset);
                if (!fresh)
                        /* and its children's parent is this one: read its own next time */
                        cpuset_values_done(cpuset);
        }
        return 0;
}

/* Calls fn for DIR and each cgroup below it, children before parents. */
static int walk_depth_first(const char *dir, int (*fn)(const char *dir, void *userdata), void *userdata) {
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int r = 0, q;

        d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : negative_errno();
        while ((de = readdir(d))) {
                _cleanup_free_ char *sub = NULL;

                if (de->d_type != DT_DIR || streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                sub = path_join(dir, de->d_name);
                if (!sub)
                        return -ENOMEM;
                q = walk_depth_first(sub, fn, userdata);
                if (q < 0 && r == 0)
                        r = q;
        }
        q = fn(dir, userdata);
        return r < 0 ? r : q;
}

/* The distinct processes that one cgroup_destroy() found in the cgroups it killed: what "killed N
 * processes" counts. A union over every hierarchy and every round, not the largest of the counts
 * taken before the first kill: a listing read at one moment may miss a process that another
 * hierarchy's (or the next round's) shows, and a count taken only when cgroup.events said
 * "populated" counted nothing when it did not. */
typedef struct PidSet {
        pid_t *pids;
        size_t n, allocated;
} PidSet;

static void pid_set_add(PidSet *s, pid_t pid) {
        for (size_t i = 0; i < s->n; i++)
                if (s->pids[i] == pid)
                        return;
        if (s->n == s->allocated) {
                size_t a = s->allocated * 2 + 16;
                pid_t *p = realloc(s->pids, a * sizeof(pid_t));

                if (!p)
                        return; /* only a count */
                s->pids = p;
                s->allocated = a;
        }
        s->pids[s->n++] = pid;
}

typedef struct KillContext {
        unsigned n_seen;   /* processes found (and signalled, if kill) */
        bool kill;
        PidSet *seen;      /* if set, every process found goes here too */
} KillContext;

static int kill_one_cgroup(const char *dir, void *userdata) {
        KillContext *k = userdata;
        _cleanup_free_ char *procs = NULL;
        char *line, *saveptr = NULL;
        int r;

        _cleanup_free_ char *p = path_join(dir, "cgroup.procs");
        if (!p)
                return -ENOMEM;
        r = read_full_file(p, &procs, NULL);
        if (r < 0)
                return r == -ENOENT ? 0 : r;
        for (line = strtok_r(procs, "\n", &saveptr); line; line = strtok_r(NULL, "\n", &saveptr)) {
                pid_t pid;

                if (parse_pid(line, &pid) < 0 || pid == getpid())
                        continue;
                k->n_seen++;
                if (k->seen)
                        pid_set_add(k->seen, pid);
                if (k->kill)
                        (void) kill(pid, SIGKILL);
        }
        return 0;
}

static int rmdir_one_cgroup(const char *dir, void *userdata) {
        if (rmdir(dir) < 0 && errno != ENOENT)
                return negative_errno();
        return 0;
}

static unsigned count_procs(const char *dir) {
        KillContext k = { .kill = false };
        (void) walk_depth_first(dir, kill_one_cgroup, &k);
        return k.n_seen;
}

/* Kill everything below DIR in one hierarchy. cgroup2's cgroup.kill (5.14)
 * does it atomically, forks included, on any cgroup2 hierarchy, even the
 * controller-less one of a hybrid host; elsewhere we signal what cgroup.procs
 * lists and repeat until it stays empty (see remove_tree()). What is found
 * goes into SEEN (if set): before cgroup.kill, which does not tell. */
static void kill_tree(const char *dir, bool v2, PidSet *seen) {
        KillContext k = { .kill = true, .seen = seen };

        if (v2 && attr_exists(dir, "cgroup.kill")) {
                if (seen) {
                        KillContext c = { .kill = false, .seen = seen };
                        (void) walk_depth_first(dir, kill_one_cgroup, &c);
                }
                if (write_attr(dir, "cgroup.kill", "1") >= 0)
                        return;
        }
        (void) walk_depth_first(dir, kill_one_cgroup, &k);
}

/* The container's processes were signalled; they may take a moment to exit
 * (and a fork racing with our read of cgroup.procs may have escaped a
 * round): signal again and retry the removal until the tree is gone. The
 * guest's systemd creates its own sub-cgroups in the delegated tree, hence
 * depth first. */
static int remove_tree(const char *dir, bool v2, PidSet *seen) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + KILL_TIMEOUT_USEC;
        useconds_t delay = 1000;
        int r;

        /* the usual case: nothing left in it, no child cgroup (the caller removed ours) */
        if (rmdir(dir) >= 0 || errno == ENOENT)
                return 0;
        for (;;) {
                r = walk_depth_first(dir, rmdir_one_cgroup, NULL);
                if (r >= 0 || r != -EBUSY || now_usec(CLOCK_MONOTONIC) > deadline)
                        return r;
                kill_tree(dir, v2, seen);
                (void) usleep(delay);
                delay = MIN(delay * 2, 50000u);
        }
}

static int cgroup_new(const char *machine, CGroup **ret) {
        CGroup *cg;

        if (!machine_name_is_valid(machine))
                return -EINVAL;
        cg = calloc(1, sizeof(*cg));
        if (!cg)
                return -ENOMEM;
        cg->name = strjoin("berth-", machine);
        if (!cg->name) {
                free(cg);
                return -ENOMEM;
        }
        *ret = cg;
        return 0;
}

/* The container cgroup in a hierarchy that is not mounted, for CGroup.detached:
 * its path relative to the root of our cgroup namespace there. */
static int add_detached(CGroup *cg, const Hierarchy *h, const char *payload_rel) {
        int r;

        r = strv_extend(&cg->detached, h->controllers);
        if (r >= 0)
                r = strv_extend(&cg->detached, payload_rel);
        return r;
}

/* Can hierarchy H carry a device policy (see the top of the file)? */
static bool hierarchy_has_policy(const Hierarchy *h) {
        return isempty(h->controllers) || controllers_have(h->controllers, "devices");
}

/* The cgroups a machine has in hierarchy H: the machine's, the one with the
 * policy, and the container's below it; where H has no policy, the machine's
 * is all three. */
static int machine_cgroups(const CGroup *cg, const Hierarchy *h, char **ret_dir, char **ret_policy,
                           char **ret_payload, char **ret_payload_rel) {
        bool policy_level = hierarchy_has_policy(h);
        _cleanup_free_ char *dir = path_join(h->own, cg->name);
        _cleanup_free_ char *policy = dir ? (policy_level ? path_join(dir, "policy") : strdup(dir)) : NULL;
        _cleanup_free_ char *payload = policy ? (policy_level ? path_join(policy, "payload") : strdup(dir)) : NULL;
        _cleanup_free_ char *rel = NULL;

        if (!payload)
                return -ENOMEM;
        if (ret_payload_rel) {
                rel = strjoin(streq(h->rel, "/") ? "" : h->rel, "/", cg->name, policy_level ? "/policy/payload" : "");
                if (!rel)
                        return -ENOMEM;
                *ret_payload_rel = TAKE_PTR(rel);
        }
        if (ret_dir)
                *ret_dir = TAKE_PTR(dir);
        if (ret_policy)
                *ret_policy = TAKE_PTR(policy);
        *ret_payload = TAKE_PTR(payload);
        return 0;
}

static bool hierarchy_is_detached(const Hierarchy *h) {
        return h->fd >= 0;
}

int cgroup_find(const char *machine, CGroup **ret) {
        _cleanup_(cgroup_freep) CGroup *cg = NULL;
        _cleanup_strv_free_ char **absent = NULL;
        bool absent_unknown = false;
        Hierarchy *h = NULL;
        size_t n = 0;
        CGroupLayout layout;
        int r;

        r = cgroup_new(machine, &cg);
        if (r < 0)
                return r;
        r = cgroup_detect_layout(&layout);
        if (r < 0)
                return r;
        cg->unified_is_root = layout == CGROUP_LAYOUT_UNIFIED;
        r = own_hierarchies(layout, true, &h, &n);
        if (r < 0)
                return r;
        strv_free(known_absent);
        known_absent = NULL;
        for (size_t i = 0; i < n && r >= 0; i++) {
                _cleanup_free_ char *dir = NULL, *payload = NULL, *rel = NULL;
                struct stat st = {};

                r = machine_cgroups(cg, h + i, &dir, NULL, &payload, &rel);
                if (r < 0)
                        break;
                /* A machine dir without payload (berth died between the
                 * mkdirs) still counts: destroy works on the machine dir. */
                if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
                        bool enoent = st.st_mode == 0 && errno == ENOENT;

                        /* (a detached mount's path names an fd, which says nothing next time) */
                        if (enoent && !absent_unknown && !hierarchy_is_detached(h + i))
                                absent_unknown = strv_consume(&absent, TAKE_PTR(dir)) < 0;
                        else
                                absent_unknown = true;
                        continue;
                }
                absent_unknown = true;
                if (hierarchy_is_detached(h + i))
                        r = add_detached(cg, h + i, rel);
                else if (isempty(h[i].controllers))
                        cg->unified_path = TAKE_PTR(payload);
                else
                        r = strv_consume(&cg->v1_paths, TAKE_PTR(payload));
        }
        hierarchies_free(h, n);
        if (r < 0)
                return r;
        if (!cg->unified_path && !cg->v1_paths && !cg->detached) {
                if (!absent_unknown)
                        known_absent = TAKE_PTR(absent);
                return -ENOENT;
        }
        *ret = TAKE_PTR(cg);
        return 0;
}

/* A CGROUP_DETACHED= entry, "CONTROLLERS:PATH", checked: controllers as the kernel spells them,
 * and a container cgroup path of our shape (.../berth-NAME/policy/payload, or .../berth-NAME in a
 * hierarchy without a policy cgroup, or .../berth-NAME/payload of older versions), so that a bad line
 * never has us kill or remove anything else. Its machine's cgroup name goes to RET_NAME. */
static int parse_detached(const char *entry, char **ret_controllers, char **ret_rel, char **ret_name) {
        _cleanup_free_ char *ctrl = NULL, *rel = NULL, *dir = NULL;
        const char *colon = strchr(entry, ':');

        if (!colon)
                return -EINVAL;
        ctrl = strndup(entry, (size_t) (colon - entry));
        rel = strdup(colon + 1);
        if (!ctrl || !rel)
                return -ENOMEM;
        if (ctrl[strspn(ctrl, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.,=-")] != 0 ||
            rel[0] != '/' || !path_is_safe(rel))
                return -EINVAL;
        dir = machine_dir_of(rel);
        if (!dir)
                return -ENOMEM;
        if (!startswith(path_basename(dir), "berth-"))
                return -EINVAL;
        *ret_name = strdup(path_basename(dir));
        if (!*ret_name)
                return -ENOMEM;
        *ret_controllers = TAKE_PTR(ctrl);
        *ret_rel = TAKE_PTR(rel);
        return 0;
}

int cgroup_from_paths(char * const *paths, char * const *detached, CGroup **ret) {
        _cleanup_(cgroup_freep) CGroup *cg = NULL;
        CGroupLayout layout;
        int r;

        cg = calloc(1, sizeof(*cg));
        if (!cg)
                return -ENOMEM;
        if (cgroup_detect_layout(&layout) >= 0)
                cg->unified_is_root = layout == CGROUP_LAYOUT_UNIFIED;
        STRV_FOREACH(p, paths) {
                _cleanup_free_ char *dir = NULL;
                bool v2;

                /* The record is root's, but still: never kill or rmdir anything
                 * that is not a cgroup. */
                if (!path_is_safe(*p) || !startswith(*p, CGROUP_ROOT "/"))
                        continue;
                dir = machine_dir_of(*p);
                if (!dir)
                        return -ENOMEM;
                if (!startswith(path_basename(dir), "berth-") || !is_cgroup_fs(dir, &v2))
                        continue;
                if (!cg->name) {
                        cg->name = strdup(path_basename(dir));
                        if (!cg->name)
                                return -ENOMEM;
                }
                if (v2 && !cg->unified_path) {
                        cg->unified_path = strdup(*p);
                        if (!cg->unified_path)
                                return -ENOMEM;
                } else if (!v2) {
                        r = strv_extend(&cg->v1_paths, *p);
                        if (r < 0)
                                return r;
                }
        }
        /* The hierarchies mounted nowhere: their cgroups are found through the record too, also
         * by a berth in another cgroup there than the dead one's (cgroup_find() looks only
         * below our own). */
        STRV_FOREACH(d, detached) {
                _cleanup_free_ char *ctrl = NULL, *rel = NULL, *name = NULL;

                r = parse_detached(*d, &ctrl, &rel, &name);
                if (r == -ENOMEM)
                        return r;
                if (r < 0 || (cg->name && !streq(cg->name, name)))
                        continue;
                if (!cg->name)
                        cg->name = TAKE_PTR(name);
                r = strv_extend(&cg->detached, ctrl);
                if (r >= 0)
                        r = strv_extend(&cg->detached, rel);
                if (r < 0)
                        return r;
        }
        if (!cg->unified_path && !cg->v1_paths && !cg->detached)
                return -ENOENT;
        *ret = TAKE_PTR(cg);
        return 0;
}

char **cgroup_detached(const CGroup *cg) {
        char **l = NULL;

        for (char **d = cg->detached; d && d[0] && d[1]; d += 2) {
                char *e = strjoin(d[0], ":", d[1]);

                if (!e || strv_consume(&l, e) < 0) {
                        strv_free(l);
                        return NULL;
                }
        }
        if (!l)
                l = calloc(1, sizeof(char *));
        return l;
}

char **cgroup_paths(const CGroup *cg) {
        char **l = NULL;

        if (cg->unified_path && strv_extend(&l, cg->unified_path) < 0)
                return NULL;
        STRV_FOREACH(p, cg->v1_paths)
                if (strv_extend(&l, *p) < 0) {
                        strv_free(l);
                        return NULL;
                }
        if (!l)
                l = calloc(1, sizeof(char *));
        return l;
}

const char *cgroup_v1_path(const CGroup *cg, const char *controller) {
        /* The paths are MOUNT/OWN/berth-NAME/payload and MOUNT is
         * /sys/fs/cgroup/<list>: match the list's members. */
        STRV_FOREACH(p, cg->v1_paths) {
                const char *rest = startswith_ptr(*p, CGROUP_ROOT "/");
                _cleanup_strv_free_ char **l = NULL;
                _cleanup_free_ char *list = NULL;
                const char *want = startswith_ptr(controller, "name=") ?: controller;

                if (!rest)
                        continue;
                list = strndup(rest, strcspn(rest, "/"));
                if (!list || strv_split(list, ",", &l) < 0)
                        return NULL;
                if (strv_contains(l, want))
                        return *p;
        }
        return NULL;
}

/* Leave OWN for OWN/berth-NAME/supervisor and enable OWN's available
 * controllers for our children, if OWN is ours alone. See the top of the
 * file. Failure is not fatal: the container then runs without controllers. */
static void maybe_move_to_supervisor(CGroup *cg, const char *own, const char *machine_dir) {
        _cleanup_free_ char *procs = NULL, *available = NULL, *supervisor = NULL, *self = NULL, *pidfile = NULL;
        _cleanup_strv_free_ char **ctrls = NULL;
        char buf[32];
        int r;

        /* The real root cgroup has no cgroup.events and no internal-process
         * rule; its subtree_control is the host's business, not ours. */
        if (!attr_exists(own, "cgroup.events"))
                return;
        if (read_attr(own, "cgroup.controllers", &available) < 0 || isempty(available))
                return;
        pidfile = path_join(own, "cgroup.procs");
        if (!pidfile || read_full_file(pidfile, &procs, NULL) < 0)
                return;
        snprintf(buf, sizeof(buf), "%d\n", (int) getpid());
        if (!streq(procs, buf)) {
                log_debug("Not alone in cgroup '%s': the container gets no controllers of its own.", own);
                return;
        }

        supervisor = path_join(machine_dir, "supervisor");
        if (!supervisor || mkdir_cgroup(supervisor, NULL, false) < 0)
                return;
        snprintf(buf, sizeof(buf), "%d", (int) getpid());
        r = write_attr(supervisor, "cgroup.procs", buf);
        if (r < 0) {
                log_debug_errno(r, "Failed to move into '%s', ignoring: %m", supervisor);
                (void) rmdir(supervisor);
                return;
        }
        cg->supervisor_path = TAKE_PTR(supervisor);
        cg->own_path = strdup(own);

        if (strv_split(available, " ", &ctrls) < 0)
                return;
        STRV_FOREACH(c, ctrls) {
                _cleanup_free_ char *plus = strjoin("+", *c);

                if (isempty(*c) || !plus)
                        continue;
                r = write_attr(own, "cgroup.subtree_control", plus);
                if (r < 0) {
                        log_debug_errno(r, "Failed to enable controller '%s' in '%s', ignoring: %m", *c, own);
                        continue;
                }
                char *joined = cg->enabled_controllers ? strjoin(cg->enabled_controllers, " ", *c) : strdup(*c);
                if (joined) {
                        free(cg->enabled_controllers);
                        cg->enabled_controllers = joined;
                }
        }
}

/* Hand every controller the machine dir has on to the payload. */
static void enable_all(const char *dir) {
        _cleanup_free_ char *available = NULL;
        _cleanup_strv_free_ char **ctrls = NULL;

        if (read_attr(dir, "cgroup.controllers", &available) < 0 || isempty(available))
                return;
        if (strv_split(available, " ", &ctrls) < 0)
                return;
        STRV_FOREACH(c, ctrls) {
                _cleanup_free_ char *plus = strjoin("+", *c);
                int r;

                if (isempty(*c) || !plus)
                        continue;
                r = write_attr(dir, "cgroup.subtree_control", plus);
                if (r < 0)
                        log_debug_errno(r, "Failed to enable controller '%s' in '%s', ignoring: %m", *c, dir);
        }
}

/* Whether the machine's cgroup is there already in one of the hierarchies H (true when we can't tell).
 * Stale cleanup (cgroup_find()) looked for exactly these under the machine's lock, which the caller
 * still holds: where it found none of them (known_absent), nobody can have made one since. Our own
 * cgroup may have changed since (register_unit()): then the directories differ and we look. */
static bool has_leftovers(const CGroup *cg, const Hierarchy *h, size_t n) {
        _cleanup_strv_free_ char **absent = TAKE_PTR(known_absent); /* good for one start */
        bool same = strv_length(absent) == n;

        for (size_t i = 0; i < n && same; i++) {
                _cleanup_free_ char *dir = path_join(h[i].own, cg->name);

                same = dir && streq(dir, absent[i]);
        }
        if (same)
                return false;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *dir = path_join(h[i].own, cg->name);

                if (!dir || access(dir, F_OK) >= 0 || errno != ENOENT)
                        return true;
        }
        return false;
}

int cgroup_create(const char *machine, CGroupPolicyFunc apply_policy, CGroup **ret) {
        _cleanup_(cgroup_freep) CGroup *cg = NULL, *old = NULL;
        const char *v1_devices_policy = NULL, *unified_policy = NULL;
        bool v1_devices_detached = false;
        _cleanup_(cpuset_values_done) CpusetValues cpuset_values = {}; /* one hierarchy has cpuset */
        char **policies = NULL;
        Hierarchy *h = NULL;
        size_t n = 0;
        CGroupLayout layout;
        int r;

        r = cgroup_new(machine, &cg);
        if (r < 0)
                return log_error_errno(r, "Failed to set up cgroup for '%s': %m", machine);
        r = cgroup_detect_layout(&layout);
        if (r < 0)
                return log_error_errno(r, "Failed to look at " CGROUP_ROOT ": %m");
        cg->unified_is_root = layout == CGROUP_LAYOUT_UNIFIED;
        r = own_hierarchies(layout, true, &h, &n);
        if (r < 0)
                return r;
        /* One look per hierarchy; the search (cgroup_find()) only when there is something. We hold
         * the machine's lock, so whoever made these is dead. */
        if (has_leftovers(cg, h, n) && cgroup_find(machine, &old) >= 0) {
                log_info("Removing leftover cgroup '%s' of a dead instance.", old->name);
                (void) cgroup_destroy(old);
        }
        policies = calloc(n + 1, sizeof(char *));
        if (!policies) {
                hierarchies_free(h, n);
                return log_oom();
        }

        /* First the machine's cgroup in every hierarchy and the policy cgroup where
         * there is one, then the policy, then the container's cgroup below it: a v1 devices
         * cgroup takes "a" in devices.deny only while it has no children, and
         * children start with their parent's rules. Each hierarchy is recorded
         * in CG before anything is made in it, so that cgroup_destroy() cleans
         * up after a failure half way. */
        for (size_t i = 0; i < n && r >= 0; i++) {
                bool v2 = isempty(h[i].controllers);
                CpusetValues *cpuset = controllers_have(h[i].controllers, "cpuset") ? &cpuset_values : NULL;
                _cleanup_free_ char *dir = NULL, *payload = NULL, *rel = NULL;

                r = machine_cgroups(cg, h + i, &dir, &policies[i], &payload, &rel);
                if (r < 0) {
                        log_oom();
                        break;
                }
                if (hierarchy_is_detached(h + i))
                        r = add_detached(cg, h + i, rel);
                else if (v2)
                        cg->unified_path = TAKE_PTR(payload);
                else
                        r = strv_consume(&cg->v1_paths, TAKE_PTR(payload));
                if (r < 0) {
                        log_oom();
                        break;
                }
                /* The machine's own: new. We removed a dead instance's above, holding the lock no
                 * other berth of this machine gets; one that is there now was made by someone
                 * else meanwhile (who can write where our cgroup is: a delegated subtree's owner),
                 * and the container must not live in a cgroup another owns. */
#if BERTH_TEST_HOOKS
                /* BERTH_TEST_CGROUP_RACE=1: another makes the machine's cgroup right before us */
                if (getenv("BERTH_TEST_CGROUP_RACE"))
                        (void) mkdir(dir, 0755);
#endif
                r = mkdir_cgroup(dir, cpuset, true);
                if (r == -EEXIST) {
                        log_error("Cgroup '%s' appeared while berth made it: another made it (whoever may write "
                                  "to berth's own cgroup). Refusing to put the container into it.", dir);
                        break;
                }
                if (r >= 0 && v2) {
                        maybe_move_to_supervisor(cg, h[i].own, dir);
                        enable_all(dir);
                }
                if (r >= 0 && hierarchy_has_policy(h + i))
                        r = mkdir_cgroup(policies[i], cpuset, false);
                if (r >= 0 && v2)
                        enable_all(policies[i]);
                if (r < 0)
                        /* In any hierarchy the container is not put into, its
                         * cgroup namespace root would be the root of that
                         * hierarchy, release_agent and all. */
                        log_error_errno(r, "Failed to create cgroup '%s' in the %s hierarchy: %m. Refusing to "
                                        "leave the container in the hierarchy's root cgroup.",
                                        policies[i], v2 ? "cgroup2" : h[i].controllers);
                else if (v2)
                        unified_policy = policies[i];
                else if (controllers_have(h[i].controllers, "devices")) {
                        v1_devices_policy = policies[i];
                        v1_devices_detached = hierarchy_is_detached(h + i);
                }
        }
        if (r >= 0 && apply_policy)
                r = apply_policy(v1_devices_policy, v1_devices_detached, unified_policy);
        for (size_t i = 0; i < n && r >= 0; i++) {
                _cleanup_free_ char *payload = NULL;

                if (!hierarchy_has_policy(h + i))
                        continue; /* the machine's is the container's */
                payload = path_join(policies[i], "payload");
                if (!payload)
                        r = log_oom();
                else {
                        r = mkdir_cgroup(payload, controllers_have(h[i].controllers, "cpuset") ? &cpuset_values
                                                                                               : NULL, false);
                        if (r < 0)
                                log_error_errno(r, "Failed to create cgroup '%s': %m", payload);
                }
        }
        strv_free(policies);
        hierarchies_free(h, n);
        if (r < 0) {
                (void) cgroup_destroy(cg);
                return r;
        }
        if (!cg->unified_path && !cg->v1_paths && !cg->detached)
                return log_error_errno(-EOPNOTSUPP, "Failed to find a cgroup hierarchy to put the container in.");
        log_debug("Container cgroup: %s%s%s (%zu hierarchies not mounted)", strna(cg->unified_path),
                  cg->v1_paths ? " and v1 " : "", cg->v1_paths ? cg->v1_paths[0] : "", strv_length(cg->detached) / 2);
        *ret = TAKE_PTR(cg);
        return 0;
}

/* Calls FN with a usable path of each container cgroup in a hierarchy that is
 * not mounted (see open_detached()). Stops at the first error. A hierarchy that
 * is gone (its cgroups with it) is skipped, never made anew. */
static int foreach_detached(const CGroup *cg, int (*fn)(const char *path, const char *controllers, void *userdata),
                            void *userdata) {
        int r = 0;

        for (char **d = cg->detached; d && d[0] && d[1] && r >= 0; d += 2) {
                _cleanup_close_ int fd = -EBADF;
                _cleanup_free_ char *base = NULL, *path = NULL;

                fd = open_detached(d[0], -1);
                if (fd == -ENOENT || fd == -ESTALE) {
                        log_debug("The cgroup hierarchy '%s' is gone, and the machine's cgroup in it.", d[0]);
                        continue;
                }
                if (fd < 0)
                        return log_error_errno(fd, "Failed to mount the cgroup hierarchy '%s' detached: %m",
                                               isempty(d[0]) ? "cgroup2" : d[0]);
                base = fd_path(fd);
                path = base ? strjoin(base, d[1]) : NULL;
                if (!path)
                        return log_oom();
                r = fn(path, d[0], userdata);
        }
        return r;
}

static int attach_one(const char *path, const char *controllers, void *userdata) {
        const char *pid = userdata;
        int r;

        r = write_attr(path, "cgroup.procs", pid);
        if (r < 0)
                return log_error_errno(r, "Failed to move process %s into cgroup '%s' of hierarchy '%s': %m", pid,
                                       path, isempty(controllers) ? "cgroup2" : controllers);
        return 0;
}

int cgroup_delegate(const CGroup *cg, uid_t owner) {
        static const char *const files[] = { "cgroup.procs", "cgroup.threads", "cgroup.subtree_control" };
        _cleanup_close_ int fd = -EBADF;

        if (!cg->unified_path)
                return 0;
        fd = open(cg->unified_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fchown(fd, owner, owner) < 0)
                return log_error_errno(negative_errno(), "Failed to hand cgroup '%s' to the container's root: %m",
                                       cg->unified_path);
        for (size_t i = 0; i < ELEMENTSOF(files); i++)
                if (fchownat(fd, files[i], owner, owner, AT_SYMLINK_NOFOLLOW) < 0 && errno != ENOENT)
                        return log_error_errno(negative_errno(), "Failed to hand '%s/%s' to the container's root: %m",
                                               cg->unified_path, files[i]);
        return 0;
}

int cgroup_attach(const CGroup *cg, pid_t pid) {
        char buf[32];
        int r;

        snprintf(buf, sizeof(buf), "%d", (int) pid);
        if (cg->unified_path) {
                r = write_attr(cg->unified_path, "cgroup.procs", buf);
                if (r < 0)
                        return log_error_errno(r, "Failed to move process %d into cgroup '%s': %m", (int) pid,
                                               cg->unified_path);
        }
        STRV_FOREACH(p, cg->v1_paths) {
                r = write_attr(*p, "cgroup.procs", buf);
                if (r < 0)
                        return log_error_errno(r, "Failed to move process %d into cgroup '%s': %m", (int) pid, *p);
        }
        return foreach_detached(cg, attach_one, buf);
}

void cgroup_join_close(CGroupJoin *j) {
        j->unified_fd = safe_close(j->unified_fd);
        j->procs_fd = safe_close(j->procs_fd);
        for (size_t i = 0; i < j->n_tasks; i++)
                safe_close(j->tasks_fds[i]);
        free(j->tasks_fds);
        j->tasks_fds = NULL;
        j->n_tasks = 0;
}

static int join_add_tasks(const char *path, const char *controllers, void *userdata) {
        CGroupJoin *j = userdata;
        _cleanup_free_ char *tasks = NULL;
        int *fds, fd;

        if (isempty(controllers))
                return -EOPNOTSUPP; /* cgroup2 mounted nowhere: no fd of it for the clone */
        tasks = path_join(path, "tasks");
        if (!tasks)
                return -ENOMEM;
        fd = open(tasks, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return negative_errno();
        fds = realloc(j->tasks_fds, (j->n_tasks + 1) * sizeof(int));
        if (!fds) {
                safe_close(fd);
                return -ENOMEM;
        }
        j->tasks_fds = fds;
        j->tasks_fds[j->n_tasks++] = fd;
        return 0;
}

int cgroup_join_open(const CGroup *cg, bool with_procs, CGroupJoin *ret) {
        CGroupJoin j = CGROUP_JOIN_NULL;
        int r = 0;

        if (cg->unified_path) {
                j.unified_fd = open(cg->unified_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (j.unified_fd < 0)
                        r = negative_errno();
                else if (with_procs) {
                        j.procs_fd = openat(j.unified_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
                        if (j.procs_fd < 0)
                                r = negative_errno();
                }
        }
        STRV_FOREACH(p, cg->v1_paths)
                if (r >= 0)
                        r = join_add_tasks(*p, "v1", &j);
        if (r >= 0)
                r = foreach_detached(cg, join_add_tasks, &j);
        if (r < 0) {
                cgroup_join_close(&j);
                return r;
        }
        *ret = j;
        return 0;
}

int cgroup_join_self(const CGroupJoin *j, bool procs) {
        if (procs && j->procs_fd >= 0 && write(j->procs_fd, "0", 1) != 1)
                return errno > 0 ? -errno : -EIO;
        for (size_t i = 0; i < j->n_tasks; i++)
                if (write(j->tasks_fds[i], "0", 1) != 1)
                        return errno > 0 ? -errno : -EIO;
        return 0;
}

/* Undo maybe_move_to_supervisor(): we can only go back into OWN once it hands
 * no controllers to children, and may only take back what we enabled. If a
 * sibling still uses them, we stay in the supervisor cgroup. */
static void leave_supervisor(CGroup *cg) {
        _cleanup_strv_free_ char **ctrls = NULL;
        _cleanup_free_ char *machine_dir = NULL;
        char buf[32];
        int r;

        if (!cg->supervisor_path || !cg->own_path)
                return;
        machine_dir = strdup(cg->supervisor_path);
        if (!machine_dir)
                return;
        *strrchr(machine_dir, '/') = 0;
        if (cg->enabled_controllers && strv_split(cg->enabled_controllers, " ", &ctrls) >= 0)
                STRV_FOREACH(c, ctrls) {
                        _cleanup_free_ char *minus = strjoin("-", *c);

                        if (!minus)
                                continue;
                        (void) write_attr(machine_dir, "cgroup.subtree_control", minus);
                        (void) write_attr(cg->own_path, "cgroup.subtree_control", minus);
                }
        snprintf(buf, sizeof(buf), "%d", (int) getpid());
        r = write_attr(cg->own_path, "cgroup.procs", buf);
        if (r < 0) {
                log_debug_errno(r, "Failed to move back into cgroup '%s', staying in '%s': %m", cg->own_path,
                                cg->supervisor_path);
                return;
        }
        (void) rmdir(cg->supervisor_path);
        free(cg->supervisor_path);
        cg->supervisor_path = NULL;
}

/* Does anything still live in the machine's cgroup2 subtree? (cgroup.events,
 * recursive by definition.) True when we can't tell. */
static bool populated(const CGroup *cg) {
        _cleanup_free_ char *dir = NULL, *events = NULL, *data = NULL;

        if (!cg->unified_path)
                return true;
        dir = cg->supervisor_path ? strdup(cg->unified_path) : machine_dir_of(cg->unified_path);
        events = dir ? path_join(dir, "cgroup.events") : NULL;
        if (!events || read_full_file(events, &data, NULL) < 0)
                return true;
        return !strstr(data, "populated 0");
}

/* A hierarchy that is not mounted has no cgroup.kill; cgroup2 (or a mounted
 * v1 hierarchy) has killed everything already, but a container on a host
 * without either still gets its processes killed here. */
static int destroy_detached(const char *path, const char *controllers, void *userdata) {
        unsigned *killed = userdata;
        _cleanup_free_ char *dir = machine_dir_of(path);
        int r;

        if (!dir)
                return log_oom();
        *killed = MAX(*killed, count_procs(dir));
        r = remove_tree(dir, isempty(controllers), NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to remove cgroup '%s' of hierarchy '%s': %m", dir,
                                  isempty(controllers) ? "cgroup2" : controllers);
        return 0; /* on to the next */
}

int cgroup_destroy(CGroup *cg) {
        _cleanup_strv_free_ char **all = NULL;
        PidSet seen = {};
        unsigned killed = 0;
        int r = 0, q;

        if (!cg)
                return 0;
        all = cgroup_paths(cg);
        if (!all)
                return log_oom();

        /* Note who is there first (cgroup.kill does not tell), then kill in
         * every hierarchy: on cgroup2 one write does it all. While berth itself sits
         * in the machine dir (supervisor), only the payload is killed;
         * otherwise everything in the machine dir is a leftover. cgroup2 sees
         * every process of the machine: when it says nothing is left (the
         * usual case: the PID namespace died with its init), there is nothing
         * to count or kill anywhere, and stopping is just the rmdirs. */
        STRV_FOREACH(p, populated(cg) ? all : NULL) {
                _cleanup_free_ char *target = cg->supervisor_path ? strdup(*p) : machine_dir_of(*p);

                if (!target) {
                        free(seen.pids);
                        return log_oom();
                }
                kill_tree(target, streq(*p, strempty(cg->unified_path)), &seen);
        }

        STRV_FOREACH(p, all) {
                bool v2 = streq(*p, strempty(cg->unified_path));
                /* the policy cgroup too: while it hands controllers on to the
                 * payload, leave_supervisor() cannot take them back */
                _cleanup_free_ char *container = policy_dir_of(*p);

                if (!container) {
                        free(seen.pids);
                        return log_oom();
                }
                if (!streq(container, *p))
                        (void) rmdir(*p); /* empty, as a rule: then the policy cgroup goes with one rmdir too */
                q = remove_tree(container, v2, &seen);
                if (q < 0) {
                        log_warning_errno(q, "Failed to remove cgroup '%s': %m", container);
                        if (r == 0)
                                r = q;
                        continue;
                }
                if (v2)
                        leave_supervisor(cg);
                if (v2 && cg->supervisor_path)
                        continue; /* we are still in there */
                _cleanup_free_ char *dir = machine_dir_of(*p);
                if (dir && !streq(dir, *p)) {
                        q = remove_tree(dir, v2, &seen);
                        if (q < 0) {
                                log_warning_errno(q, "Failed to remove cgroup '%s': %m", dir);
                                if (r == 0)
                                        r = q;
                        }
                }
        }
        leave_supervisor(cg); /* if cgroup_create() failed before the payload existed */
        killed = (unsigned) seen.n;
        free(seen.pids);
        q = foreach_detached(cg, destroy_detached, &killed);
        if (q < 0 && r == 0)
                r = q;
        return r < 0 ? r : (int) killed;
}

int cgroup_mount_in_container(const char *root) {
        _cleanup_free_ char *where = NULL;
        _cleanup_close_ int root_fd = -EBADF, fd = -EBADF;
        char p[64];

        /* We are the container's child: new mount and cgroup namespaces, put
         * into the container cgroup before unsharing the latter, so a fresh
         * cgroup2 mount shows that cgroup as "/" and nothing above it. The
         * guest may create and populate sub-cgroups there (delegation), which
         * is what systemd in the guest needs to run in unified mode; it cannot
         * reach our supervisor cgroup or anything else of the host's. That
         * holds on a legacy host too, where cgroup_create() put the container
         * into cgroup2 through a detached mount. sysfs under ROOT/sys is
         * read-only, but a mount point on it works. Like every mount point
         * in the tree it is opened inside the tree and mounted on through
         * its fd. */
        where = path_join(root, "sys/fs/cgroup");
        if (!where)
                return log_oom();
        root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0)
                return log_error_errno(negative_errno(), "Failed to open the container root '%s': %m", root);
        fd = open_in_root(root_fd, "sys/fs/cgroup", O_PATH | O_DIRECTORY | O_NOFOLLOW);
        if (fd < 0)
                return log_error_errno(fd, "Failed to open '%s': %m", where);
        snprintf(p, sizeof p, "/proc/self/fd/%i", fd);
        if (mount("cgroup2", p, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                return log_error_errno(negative_errno(), "Failed to mount cgroup2 on '%s': %m", where);
        return 0;
}
