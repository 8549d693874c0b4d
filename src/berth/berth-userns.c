/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "berth-bind-user.h"
#include "berth-chown.h"
#include "berth-cpu.h"
#include "berth-settings.h"
#include "berth-userns.h"
#include "log.h"
#include "util.h"

static const char *const userns_mode_table[_USERNS_MODE_MAX] = {
        [USERNS_NO] = "no",
        [USERNS_FIXED] = "fixed",
        [USERNS_YES] = "yes",
        [USERNS_PICK] = "pick",
        [USERNS_IDENTITY] = "identity",
};

static const char *const userns_ownership_table[_USERNS_OWNERSHIP_MAX] = {
        [USERNS_OWNERSHIP_OFF] = "off",
        [USERNS_OWNERSHIP_CHOWN] = "chown",
        [USERNS_OWNERSHIP_MAP] = "map",
        [USERNS_OWNERSHIP_AUTO] = "auto",
};

const char *userns_mode_to_string(UserNamespaceMode m) {
        return m >= 0 && m < _USERNS_MODE_MAX ? userns_mode_table[m] : NULL;
}

UserNamespaceMode userns_mode_from_string(const char *s) {
        for (int i = 0; i < _USERNS_MODE_MAX; i++)
                if (s && streq(s, userns_mode_table[i]))
                        return i;
        return _USERNS_MODE_INVALID;
}

const char *userns_ownership_to_string(UserNamespaceOwnership o) {
        return o >= 0 && o < _USERNS_OWNERSHIP_MAX ? userns_ownership_table[o] : NULL;
}

UserNamespaceOwnership userns_ownership_from_string(const char *s) {
        for (int i = 0; i < _USERNS_OWNERSHIP_MAX; i++)
                if (s && streq(s, userns_ownership_table[i]))
                        return i;
        return _USERNS_OWNERSHIP_INVALID;
}

/* ---- parsing ---- */

static int parse_id(const char *s, uint32_t *ret) {
        unsigned long long v;

        /* decimal only: "0x80000" reads as garbage, as in nspawn */
        if (isempty(s) || strspn(s, "0123456789") != strlen(s) || safe_atollu(s, &v) < 0 || v > UINT32_MAX)
                return -EINVAL;
        *ret = (uint32_t) v;
        return 0;
}

int uid_range_parse(const char *s, UidRange *ret) {
        _cleanup_free_ char *a = NULL;
        const char *colon;
        uint32_t start, count = USERNS_RANGE_SIZE;

        colon = strchr(strempty(s), ':');
        a = colon ? strndup(s, (size_t) (colon - s)) : strdup(strempty(s));
        if (!a)
                return -ENOMEM;
        if (parse_id(a, &start) < 0 || (colon && parse_id(colon + 1, &count) < 0))
                return -EINVAL;
        /* 4294967295 is (uid_t) -1, which no map may contain */
        if (count == 0 || (uint64_t) start + count > UINT32_MAX)
                return -ERANGE;
        *ret = (UidRange) { start, count };
        return 0;
}

int userns_parse(const char *s, UserNamespaceMode *ret_mode, UidRange *ret_range, const char **ret_detail) {
        UserNamespaceMode m;
        UidRange range = {};
        int r;

        if (isempty(s)) {
                *ret_detail = "expected no, yes, pick, identity or UID[:COUNT]";
                return -EINVAL;
        }
        m = userns_mode_from_string(s);
        if (m == USERNS_FIXED)
                m = _USERNS_MODE_INVALID; /* a range, not the word */
        if (m < 0) {
                r = parse_boolean(s);
                if (r >= 0)
                        m = r ? USERNS_YES : USERNS_NO;
        }
        if (m < 0) {
                r = uid_range_parse(s, &range);
                if (r == -ENOMEM)
                        return r;
                if (r == -ERANGE) {
                        *ret_detail = "the range must hold at least one id and end below 4294967295";
                        return -EINVAL;
                }
                if (r < 0) {
                        *ret_detail = "expected no, yes, pick, identity or UID[:COUNT] (decimal numbers)";
                        return -EINVAL;
                }
                m = USERNS_FIXED;
        }
        *ret_mode = m;
        if (ret_range)
                *ret_range = range;
        return 0;
}

/* ---- range math ---- */

bool uid_range_overlaps(UidRange a, UidRange b) {
        if (a.count == 0 || b.count == 0)
                return false;
        return (uint64_t) a.start < (uint64_t) b.start + b.count && (uint64_t) b.start < (uint64_t) a.start + a.count;
}

#define N_PICK_BASES ((USERNS_PICK_MAX - USERNS_PICK_MIN) / USERNS_RANGE_SIZE + 1)

uint32_t userns_pick_candidate(const char *machine) {
        uint32_t h = UINT32_C(2166136261); /* FNV-1a: stable across builds and hosts */

        for (const char *c = strempty(machine); *c; c++) {
                h ^= (uint8_t) *c;
                h *= UINT32_C(16777619);
        }
        return USERNS_PICK_MIN + (h % N_PICK_BASES) * USERNS_RANGE_SIZE;
}

static bool range_is_free(UidRange r, const UidRange *used, size_t n_used) {
        for (size_t i = 0; i < n_used; i++)
                if (uid_range_overlaps(r, used[i]))
                        return false;
        return true;
}

int userns_pick_free(const char *machine, const UidRange *used, size_t n_used, uint32_t *ret_base) {
        uint32_t first = (userns_pick_candidate(machine) - USERNS_PICK_MIN) / USERNS_RANGE_SIZE;

        for (uint32_t i = 0; i < N_PICK_BASES; i++) {
                uint32_t base = USERNS_PICK_MIN + ((first + i) % N_PICK_BASES) * USERNS_RANGE_SIZE;
                if (range_is_free((UidRange) { base, USERNS_RANGE_SIZE }, used, n_used)) {
                        *ret_base = base;
                        return 0;
                }
        }
        return -EBUSY;
}

/* ---- what is in use ---- */

const UidSources uid_sources_host = {
        .passwd = "/etc/passwd",
        .group = "/etc/group",
        .subuid = "/etc/subuid",
        .subgid = "/etc/subgid",
        .proc = "/proc",
        .lock_dir = USERNS_LOCK_DIR,
        /* next to the range locks: not a range (nspawn and the stale cleanup skip it) */
        .global_lock = USERNS_LOCK_DIR "/.berth-pick.lock",
};

typedef struct RangeList {
        UidRange *ranges;
        size_t n, allocated;
} RangeList;

static int range_list_add(RangeList *l, UidRange r) {
        if (l->n >= l->allocated) {
                size_t k = l->allocated ? l->allocated * 2 : 64;
                UidRange *n = reallocarray(l->ranges, k, sizeof(UidRange));
                if (!n)
                        return -ENOMEM;
                l->ranges = n;
                l->allocated = k;
        }
        l->ranges[l->n++] = r;
        return 0;
}

/* passwd and group: NAME:X:ID:...; subuid and subgid: NAME:START:COUNT */
static int collect_file(const char *path, bool sub, RangeList *l) {
        _cleanup_fclose_ FILE *f = NULL;
        char line[4096];
        int r;

        if (!path)
                return 0;
        f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? 0 : negative_errno();
        while (fgets(line, sizeof line, f)) {
                char *fields[4] = {}, *p = line;
                size_t n = 0;
                uint32_t a, b = 1;

                line[strcspn(line, "\n")] = 0;
                if (line[0] == '#' || line[0] == '+' || line[0] == '-')
                        continue; /* NIS compat lines name no ids */
                while (n < 4 && (fields[n++] = strsep(&p, ":")))
                        ;
                if (sub ? (!fields[2] || parse_id(fields[1], &a) < 0 || parse_id(fields[2], &b) < 0)
                        : (!fields[2] || parse_id(fields[2], &a) < 0))
                        continue;
                if (b == 0)
                        continue;
                r = range_list_add(l, (UidRange) { a, (uint32_t) MIN((uint64_t) b, (uint64_t) UINT32_MAX - a) });
                if (r < 0)
                        return r;
        }
        return 0;
}

int uid_map_line_parse(const char *line, UidRange *ret_outside) {
        unsigned long long inside, outside, count;

        if (sscanf(line, "%llu %llu %llu", &inside, &outside, &count) != 3 || outside > UINT32_MAX ||
            count > UINT32_MAX || count == 0)
                return -EINVAL;
        if (outside == 0 && count == UINT32_MAX)
                return -ENOENT;
        *ret_outside = (UidRange) { (uint32_t) outside, (uint32_t) MIN(count, UINT32_MAX - outside) };
        return 0;
}


/* A zombie still shows its uid_map until its parent (for a killed berth's container: the host's
 * init) reaps it, which may take a while on a busy host; it runs nothing, so its range is free. */
static bool process_is_dead(const char *proc, const char *pid) {
        _cleanup_free_ char *stat = NULL;
        char path[PATH_MAX];
        const char *p;

        snprintf(path, sizeof path, "%s/%s/stat", proc, pid);
        if (read_full_file(path, &stat, NULL) < 0)
                return false; /* gone, or no stat to tell: its maps, if any, decide */
        p = strrchr(stat, ')');
        return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

/* Every process of a user namespace shows the same maps: they are read once per namespace
 * (by the inode of /proc/PID/ns/user; most processes share the host's), not twice per process,
 * which was most of the cost of a -U start on a host with a few hundred processes. */
typedef struct SeenNamespaces {
        ino_t *inodes;
        size_t n;
} SeenNamespaces;

/* The inode of the user namespace of process PID, 0 if there is no ns link to tell (a test's
 * fake /proc, a process gone meanwhile) */
static ino_t user_namespace_of(const char *proc, const char *pid) {
        char path[PATH_MAX], link[64];
        unsigned long long ino;
        ssize_t n;

        snprintf(path, sizeof path, "%s/%s/ns/user", proc, pid);
        /* readlink(), not stat(): the link's text, "user:[INODE]", names the namespace, where
         * stat() follows it into nsfs, about twice the cost, for every process on the host */
        n = readlink(path, link, sizeof link - 1);
        if (n <= 0)
                return 0;
        link[n] = 0;
        if (sscanf(link, "user:[%llu]", &ino) != 1)
                return 0;
        return (ino_t) ino;
}

static bool namespace_seen(const SeenNamespaces *seen, ino_t ino) {
        for (size_t i = 0; ino != 0 && i < seen->n; i++)
                if (seen->inodes[i] == ino)
                        return true;
        return false;
}

static void namespace_add(SeenNamespaces *seen, ino_t ino) {
        ino_t *n;

        if (ino == 0)
                return;
        n = reallocarray(seen->inodes, seen->n + 1, sizeof(ino_t));
        if (!n)
                return; /* it is read again, then */
        seen->inodes = n;
        seen->inodes[seen->n++] = ino;
}

static int collect_maps_of(const char *proc, const char *name, SeenNamespaces *seen, RangeList *l) {
        static const char *const maps[] = { "uid_map", "gid_map" };
        pid_t pid;
        ino_t ino;
        int r;

        if (parse_pid(name, &pid) < 0)
                return 0;
        ino = user_namespace_of(proc, name);
        if (namespace_seen(seen, ino) || process_is_dead(proc, name))
                return 0;
        namespace_add(seen, ino);
        for (size_t i = 0; i < ELEMENTSOF(maps); i++) {
                _cleanup_fclose_ FILE *f = NULL;
                char path[PATH_MAX], line[256];
                UidRange u;

                snprintf(path, sizeof path, "%s/%s/%s", proc, name, maps[i]);
                f = fopen(path, "re");
                if (!f)
                        continue; /* gone meanwhile */
                while (fgets(line, sizeof line, f))
                        if (uid_map_line_parse(line, &u) >= 0 && (r = range_list_add(l, u)) < 0)
                                return r;
        }
        return 0;
}

static int collect_maps(const char *proc, RangeList *l) {
        _cleanup_closedir_ DIR *d = NULL;
        SeenNamespaces seen = {};
        struct dirent *de;
        int r = 0;

        if (!proc)
                return 0;
        d = opendir(proc);
        if (!d)
                return errno == ENOENT ? 0 : negative_errno();
        while (r >= 0 && (de = readdir(d)))
                r = collect_maps_of(proc, de->d_name, &seen, l);
        free(seen.inodes);
        return r;
}
static int lock_is_held(int dfd, const char *name) {
        _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

        if (fd < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
                return negative_errno();
        return fl.l_type != F_UNLCK;
}

static int collect_locks(const char *dir, RangeList *l) {
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int r;

        if (!dir)
                return 0;
        d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : negative_errno();
        while ((de = readdir(d))) {
                uint32_t base;

                if (parse_id(de->d_name, &base) < 0)
                        continue;
                r = lock_is_held(dirfd(d), de->d_name);
                if (r <= 0)
                        continue;
                r = range_list_add(l, (UidRange) { base, (uint32_t) MIN((uint64_t) USERNS_RANGE_SIZE,
                                                                         (uint64_t) UINT32_MAX - base) });
                if (r < 0)
                        return r;
        }
        return 0;
}

int uid_sources_collect(const UidSources *src, UidRange **ret, size_t *ret_n) {
        RangeList l = {};
        int r;

        r = collect_file(src->passwd, false, &l);
        if (r >= 0)
                r = collect_file(src->group, false, &l);
        if (r >= 0)
                r = collect_file(src->subuid, true, &l);
        if (r >= 0)
                r = collect_file(src->subgid, true, &l);
        if (r >= 0)
                r = collect_maps(src->proc, &l);
        if (r >= 0)
                r = collect_locks(src->lock_dir, &l);
        if (r < 0) {
                free(l.ranges);
                return r;
        }
        *ret = l.ranges;
        *ret_n = l.n;
        return 0;
}

/* ---- locks ---- */

int userns_lock_take(const char *dir, uint32_t base, int *ret_fd) {
        char path[PATH_MAX];
        int r;

        r = mkdir_p(dir, 0755);
        if (r < 0)
                return r;
        snprintf(path, sizeof path, "%s/%" PRIu32, dir, base);
        for (;;) {
                struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
                _cleanup_close_ int fd = open(path, O_CREAT | O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
                struct stat st;

                if (fd < 0)
                        return negative_errno();
                if (fcntl(fd, F_OFD_SETLK, &fl) < 0)
                        return errno == EAGAIN || errno == EACCES ? -EBUSY : negative_errno();
                /* the owner before us removed it between our open and our lock: take a fresh one */
                if (fstat(fd, &st) < 0)
                        return negative_errno();
                if (st.st_nlink > 0) {
                        *ret_fd = TAKE_FD(fd);
                        return 0;
                }
        }
}

void userns_lock_release(const char *dir, uint32_t base, int fd) {
        char path[PATH_MAX];

        if (fd < 0)
                return;
        /* removed while held, so that nobody takes the file we are about to drop */
        snprintf(path, sizeof path, "%s/%" PRIu32, dir, base);
        (void) unlink(path);
        safe_close(fd);
}

int userns_lock_cleanup_stale(const char *dir) {
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int n = 0;

        d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : negative_errno();
        while ((de = readdir(d))) {
                uint32_t base;
                int fd;

                if (parse_id(de->d_name, &base) < 0)
                        continue;
                if (userns_lock_take(dir, base, &fd) < 0)
                        continue; /* held: a live container's */
                userns_lock_release(dir, base, fd);
                n++;
        }
        return n;
}

/* ---- allocation ---- */

void userns_range_release(UserNamespaceRange *r) {
        for (size_t i = 0; i < r->n_locks; i++)
                userns_lock_release(r->lock_dir, r->lock_bases[i], r->lock_fds[i]);
        free(r->lock_bases);
        free(r->lock_fds);
        *r = (UserNamespaceRange) {};
}

static int describe_conflict(UidRange want, const UidRange *used, size_t n, char **ret_detail) {
        for (size_t i = 0; i < n; i++)
                if (uid_range_overlaps(want, used[i])) {
                        char buf[128];
                        snprintf(buf, sizeof buf, "ids %" PRIu32 "..%" PRIu32 " are in use on the host",
                                 used[i].start, (uint32_t) (used[i].start + used[i].count - 1));
                        *ret_detail = strdup(buf);
                        return 0;
                }
        return 0;
}

/* Locks every 64K block of the window that RANGE touches: what nspawn and other
 * berths pick from. Ranges outside the window are seen through /proc only. */
static int lock_blocks(const UidSources *src, UidRange range, UserNamespaceRange *ret) {
        uint64_t first = MAX((uint64_t) range.start & ~(uint64_t) (USERNS_RANGE_SIZE - 1), (uint64_t) USERNS_PICK_MIN);
        uint64_t end = MIN((uint64_t) range.start + range.count, (uint64_t) USERNS_PICK_MAX + USERNS_RANGE_SIZE);
        size_t n = first < end ? (size_t) ((end - first + USERNS_RANGE_SIZE - 1) / USERNS_RANGE_SIZE) : 0;
        int r;

        *ret = (UserNamespaceRange) { .range = range, .lock_dir = src->lock_dir };
        if (n == 0)
                return 0;
        ret->lock_bases = calloc(n, sizeof(uint32_t));
        ret->lock_fds = calloc(n, sizeof(int));
        if (!ret->lock_bases || !ret->lock_fds) {
                userns_range_release(ret);
                return -ENOMEM;
        }
        for (uint64_t b = first; b < end; b += USERNS_RANGE_SIZE) {
                int fd;
                r = userns_lock_take(src->lock_dir, (uint32_t) b, &fd);
                if (r < 0) {
                        userns_range_release(ret);
                        return r;
                }
                ret->lock_bases[ret->n_locks] = (uint32_t) b;
                ret->lock_fds[ret->n_locks++] = fd;
        }
        return 0;
}

static bool is_shifted_base(uid_t owner) {
        return owner >= USERNS_PICK_MIN && owner <= USERNS_PICK_MAX && (owner & (USERNS_RANGE_SIZE - 1)) == 0;
}

int userns_range_allocate(const UidSources *src, UserNamespaceMode mode, UidRange fixed, const char *machine,
                          uid_t tree_owner, UserNamespaceRange *ret, char **ret_detail) {
        _cleanup_close_ int global = -EBADF;
        _cleanup_free_ UidRange *used = NULL;
        size_t n_used = 0;
        UidRange want;
        int r;

        *ret_detail = NULL;
        if (mode == USERNS_IDENTITY) {
                /* the host's own ids, mapped to themselves: nothing to keep apart */
                *ret = (UserNamespaceRange) { .range = { 0, USERNS_RANGE_SIZE }, .lock_dir = src->lock_dir };
                return 0;
        }
        if (mode == USERNS_YES) {
                if (tree_owner % USERNS_RANGE_SIZE != 0) {
                        *ret_detail = strdup("the owner of the tree's root directory is not a multiple of 65536");
                        return -EINVAL;
                }
                fixed = (UidRange) { tree_owner, USERNS_RANGE_SIZE };
                if (tree_owner == 0) {
                        /* nspawn's yes on an unshifted tree: the host's own ids, as identity */
                        *ret = (UserNamespaceRange) { .range = fixed, .lock_dir = src->lock_dir };
                        return 0;
                }
                mode = USERNS_FIXED;
        }

        r = mkdir_parents(src->global_lock, 0755);
        if (r < 0)
                return r;
        global = open(src->global_lock, O_CREAT | O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
        if (global < 0)
                return negative_errno();
        if (flock(global, LOCK_EX) < 0)
                return negative_errno();

        r = uid_sources_collect(src, &used, &n_used);
        if (r < 0)
                return r;

        if (mode == USERNS_FIXED) {
                if (!range_is_free(fixed, used, n_used)) {
                        (void) describe_conflict(fixed, used, n_used, ret_detail);
                        return -EADDRINUSE;
                }
                r = lock_blocks(src, fixed, ret);
                if (r == -EBUSY)
                        *ret_detail = strdup("another container holds the lock of a part of the range");
                return r;
        }

        /* PICK: a tree that a chown shifted keeps its range */
        if (is_shifted_base(tree_owner)) {
                want = (UidRange) { tree_owner, USERNS_RANGE_SIZE };
                if (!range_is_free(want, used, n_used)) {
                        char buf[160];
                        snprintf(buf, sizeof buf, "the tree is shifted to %" PRIu32 "..%" PRIu32
                                 ", which another container or the host uses", want.start,
                                 want.start + want.count - 1);
                        *ret_detail = strdup(buf);
                        return -EADDRINUSE;
                }
                return lock_blocks(src, want, ret);
        }
        for (;;) {
                uint32_t base;
                UidRange *n;

                r = userns_pick_free(machine, used, n_used, &base);
                if (r < 0) {
                        *ret_detail = strdup("every range of the window is in use");
                        return r;
                }
                r = lock_blocks(src, (UidRange) { base, USERNS_RANGE_SIZE }, ret);
                if (r != -EBUSY)
                        return r;
                /* taken since we looked (an nspawn, which does not take our global lock): next */
                n = reallocarray(used, n_used + 1, sizeof(UidRange));
                if (!n)
                        return -ENOMEM;
                used = n;
                used[n_used++] = (UidRange) { base, USERNS_RANGE_SIZE };
        }
}

int uid_map_format(UidRange range, const uint32_t *inside, const uint32_t *outside, size_t n, char **ret) {
        _cleanup_free_ char *m = NULL;
        size_t size = 0;
        uint32_t at = 0;
        FILE *f;

        f = open_memstream(&m, &size);
        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i <= n; i++) {
                uint32_t end = i < n ? inside[i] : range.count;
                if (end < at || end > range.count || (i < n && end == range.count)) {
                        fclose(f);
                        return -EINVAL;
                }
                if (end > at)
                        fprintf(f, "%" PRIu32 " %" PRIu32 " %" PRIu32 "\n", at, range.start + at, end - at);
                if (i < n) {
                        fprintf(f, "%" PRIu32 " %" PRIu32 " 1\n", inside[i], outside[i]);
                        at = inside[i] + 1;
                }
        }
        if (fclose(f) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(m);
        return 0;
}

/* ---- the runtime ---- */

int mount_make_idmapped(int mnt_fd, int userns_fd) {
        struct mount_attr attr = {
                .attr_set = MOUNT_ATTR_IDMAP,
                .userns_fd = (uint64_t) userns_fd,
        };
        return RET_NERRNO(mount_setattr(mnt_fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr));
}

/* A helper is born in a new user namespace (and, with a private network, a new network namespace
 * that the user namespace owns) and waits; we write its maps (as host root, so that setgroups()
 * stays allowed inside), keep fds of the namespaces and kill it. It
 * shares our memory (CLONE_VM) but runs on a stack of its own and does next to nothing: no copy of
 * our page tables for a process that lives a millisecond, which where page table updates are
 * expensive (a paravirtualised guest) costs more than the rest of its work. */
static int userns_helper(void *userdata) {
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;)
                (void) pause();
        return 0;
}

/* The pid of PIDFD's process as the procfs at /proc counts it (a pidfd's fdinfo says it in the
 * PID namespace of the procfs it is read through): in the container's child, clone() returns a
 * pid of the container's PID namespace, while /proc there is still the host's. */
static int proc_pid_of(int pidfd, pid_t *ret) {
        _cleanup_fclose_ FILE *f = NULL;
        char path[64], line[128];
        unsigned long long v;

        snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
        f = fopen(path, "re");
        if (!f)
                return negative_errno();
        while (fgets(line, sizeof line, f)) {
                const char *p = line + 4;
                if (strncmp(line, "Pid:", 4) != 0)
                        continue;
                p += strspn(p, " \t");
                line[strcspn(line, "\n")] = 0;
                if (safe_atollu(p, &v) < 0 || v == 0 || v > INT32_MAX)
                        return -EIO;
                *ret = (pid_t) v;
                return 0;
        }
        return -EIO;
}

static int open_ns_of(pid_t pid, const char *which, int *ret_fd) {
        char path[64];
        int fd;

        snprintf(path, sizeof path, "/proc/%d/ns/%s", (int) pid, which);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        *ret_fd = fd;
        return 0;
}

/* A user namespace with UID_MAP and GID_MAP; with RET_NETNS also a network namespace that it owns. */
static int userns_make_full(const char *uid_map, const char *gid_map, int *ret_fd, int *ret_netns) {
        static _Alignas(16) char stack[4096];
        _cleanup_close_ int pidfd = -EBADF, fd = -EBADF, netns = -EBADF;
        char path[64];
        CpuPin pin;
        int r = 0;
        pid_t pid, proc_pid = 0;

        /* The helper only has to exist, but its exit, which we wait for below, runs on its CPU: ours,
         * not a busy one it would wait for. */
        pid = clone_on_our_cpu(&pin, userns_helper, stack + sizeof stack,
                               CLONE_VM | CLONE_NEWUSER | (ret_netns ? CLONE_NEWNET : 0) | CLONE_PIDFD | SIGCHLD, NULL,
                               &pidfd);
        if (pid < 0)
                return negative_errno();
        r = proc_pid_of(pidfd, &proc_pid);
        if (r >= 0) {
                snprintf(path, sizeof path, "/proc/%d/uid_map", (int) proc_pid);
                r = write_string_file(path, uid_map, 0);
        }
        if (r >= 0) {
                snprintf(path, sizeof path, "/proc/%d/gid_map", (int) proc_pid);
                r = write_string_file(path, gid_map, 0);
        }
        if (r >= 0)
                r = open_ns_of(proc_pid, "user", &fd);
        if (r >= 0 && ret_netns)
                r = open_ns_of(proc_pid, "net", &netns);
        (void) kill(pid, SIGKILL);
        (void) waitpid(pid, NULL, 0);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        if (ret_netns)
                *ret_netns = TAKE_FD(netns);
        return 0;
}

int userns_make_mapped(const char *map, int *ret_fd) {
        return userns_make_full(map, map, ret_fd, NULL);
}

/* The range, with the bound users' ids cut out of it and mapped to their host ids */
static int userns_make(UidRange r, bool net, UserNamespace *u) {
        _cleanup_free_ char *uid_map = NULL, *gid_map = NULL;
        _cleanup_free_ uint32_t *inside = NULL, *host_uid = NULL, *host_gid = NULL;
        int q;

        inside = calloc(u->n_bind_users + 1, sizeof(uint32_t));
        host_uid = calloc(u->n_bind_users + 1, sizeof(uint32_t));
        host_gid = calloc(u->n_bind_users + 1, sizeof(uint32_t));
        if (!inside || !host_uid || !host_gid)
                return -ENOMEM;
        for (size_t i = 0; i < u->n_bind_users; i++) {
                inside[i] = u->bind_users[i].uid;
                host_uid[i] = u->bind_users[i].host_uid;
                host_gid[i] = u->bind_users[i].host_gid;
        }
        q = uid_map_format(r, inside, host_uid, u->n_bind_users, &uid_map);
        if (q >= 0)
                q = uid_map_format(r, inside, host_gid, u->n_bind_users, &gid_map);
        if (q < 0)
                return q;
        return userns_make_full(uid_map, gid_map, &u->fd, net ? &u->netns_fd : NULL);
}

/* Can the tree's file system be mounted idmapped? Tried on a throw-away clone of the detached
 * mount TREE_FD. */
static int tree_can_idmap(const Settings *s, int tree_fd, int userns_fd) {
        _cleanup_close_ int mnt = open_tree(tree_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
        if (mnt < 0)
                return negative_errno();
#if BERTH_TEST_HOOKS
        /* a file system this kernel cannot idmap (every one berth mounts from images can here) */
        static const struct { const char *name; long magic; } fs[] = {
                { "ext4", EXT4_SUPER_MAGIC }, { "squashfs", SQUASHFS_MAGIC }, { "erofs", EROFS_SUPER_MAGIC_V1 },
        };
        const char *refuse = getenv("BERTH_TEST_IDMAP_REFUSE");
        struct statfs sfs;
        if (s->image && refuse && fstatfs(mnt, &sfs) >= 0)
                for (size_t i = 0; i < ELEMENTSOF(fs); i++)
                        if ((long) sfs.f_type == fs[i].magic && streq(refuse, fs[i].name))
                                return -EINVAL;
#endif
        return mount_make_idmapped(mnt, userns_fd);
}

int userns_setup(const Settings *s, int tree_fd, UserNamespace *ret) {
        _cleanup_free_ char *detail = NULL;
        UserNamespace u = USER_NAMESPACE_NULL;
        const char *what = s->image ?: s->directory;
        struct stat st;
        int r;

        *ret = USER_NAMESPACE_NULL;
        if (s->userns_mode == USERNS_NO)
                return 0;

        if (fstat(tree_fd, &st) < 0)
                return log_error_errno(negative_errno(), "Failed to look at the tree '%s': %m", what);
        if (st.st_uid != st.st_gid && s->userns_mode == USERNS_YES)
                return log_error_errno(-EINVAL, "--private-users=yes takes the range from the owner of '%s', but "
                                                "its user (%u) and group (%u) differ. Shift the tree to one range, or "
                                                "use --private-users=pick.",
                                       what, (unsigned) st.st_uid, (unsigned) st.st_gid);

        r = userns_range_allocate(&uid_sources_host, s->userns_mode, s->uid_range, s->machine,
                                  st.st_uid == st.st_gid ? st.st_uid : 0, &u.range, &detail);
        if (r == -ENOMEM)
                return log_oom();
        if (r == -EADDRINUSE || r == -EBUSY || r == -EINVAL)
                return log_error_errno(r, "Cannot use a user namespace range for machine '%s': %s. %s", s->machine,
                                       detail ?: "in use",
                                       s->userns_mode == USERNS_PICK
                                               ? "Stop a machine, or free ids on the host."
                                               : "Pick another range, or use --private-users=pick.");
        if (r < 0)
                return log_error_errno(r, "Failed to allocate a user namespace range: %m");

        log_timing("monitor", "user-namespace range");
        r = bind_users_resolve(s, tree_fd, u.range.range.count, &u.bind_users, &u.n_bind_users);
        if (r >= 0)
                r = bind_users_check_range(u.bind_users, u.n_bind_users, u.range.range);
        if (r < 0) {
                userns_done(&u);
                return r;
        }
        r = userns_make(u.range.range, s->private_network && !s->network_namespace_path, &u);
        if (r < 0) {
                userns_done(&u);
                return log_error_errno(r, "Failed to create a user namespace for %" PRIu32 "..%" PRIu32
                                          ": %m. The kernel may not allow user namespaces "
                                          "(user.max_user_namespaces); run without --private-users/-U.",
                                       u.range.range.start, u.range.range.start + u.range.range.count - 1);
        }

        /* what the tree's ownership is against the range */
        switch (s->userns_ownership) {
        case USERNS_OWNERSHIP_OFF:
                break;
        case USERNS_OWNERSHIP_AUTO:
                /* a tree already shifted to the range, and ranges that map host ids to themselves,
                 * need no mapping */
                if (u.range.range.start == 0 || st.st_uid == u.range.range.start)
                        break;
                __attribute__((fallthrough));
        case USERNS_OWNERSHIP_MAP:
                if (u.range.range.start == 0)
                        break; /* identity: nothing to map */
                log_timing("monitor", "user-namespace made");
                r = tree_can_idmap(s, tree_fd, u.fd);
                if (r < 0 && s->image) {
                        /* nspawn's auto would chown; an image is often read-only, and a chown would
                         * rewrite it for good: berth leaves that to the user */
                        userns_done(&u);
                        return log_error_errno(r, "The file system of image '%s' cannot be mounted idmapped: %m. "
                                                  "berth does not chown images: pass --private-users-ownership=off "
                                                  "if its files are owned by the range already, or run it without -U "
                                                  "(for a machine that /etc/berth/berth.conf gives one: "
                                                  "PrivateUsers=no in its trusted settings file).",
                                               s->image);
                }
                if (r < 0 && s->userns_ownership == USERNS_OWNERSHIP_AUTO) {
                        /* as nspawn: where the file system cannot be mapped, auto shifts the tree */
                        log_info("The file system of '%s' cannot be mounted idmapped (%s): shifting its ownership "
                                 "instead.", s->directory, strerror(-r));
                        goto shift;
                }
                if (r < 0) {
                        userns_done(&u);
                        return log_error_errno(r, "The file system of '%s' cannot be mounted idmapped: %m. Pass "
                                                  "--private-users-ownership=chown to shift the tree to the range "
                                                  "on disk instead, or run without -U (for a machine that "
                                                  "/etc/berth/berth.conf gives one: PrivateUsers=no in its trusted "
                                                  "settings file).",
                                               s->directory);
                }
                u.idmap = true;
                break;
        case USERNS_OWNERSHIP_CHOWN:
        shift:
                if (u.range.range.start == 0 || st.st_uid == u.range.range.start)
                        break; /* identity, or shifted to the range already */
                if (!s->quiet)
                        log_info("Shifting the ownership of '%s' to host ids %" PRIu32 "..%" PRIu32 " on disk "
                                 "(--private-users-ownership=chown), once.", s->directory, u.range.range.start,
                                 u.range.range.start + u.range.range.count - 1);
                r = tree_shift_ownership(tree_fd, s->directory, st.st_uid - st.st_uid % USERNS_RANGE_SIZE,
                                         u.range.range.start);
                if (r < 0) {
                        userns_done(&u);
                        return r;
                }
                break;
        default:
                userns_done(&u);
                return log_error_errno(-EOPNOTSUPP, "Ownership mode '%s' is not supported.",
                                       userns_ownership_to_string(s->userns_ownership));
        }

        if (!s->quiet)
                log_debug("User namespace: host ids %" PRIu32 "..%" PRIu32 " are 0..%" PRIu32 " in machine '%s'%s.",
                          u.range.range.start, u.range.range.start + u.range.range.count - 1,
                          u.range.range.count - 1, s->machine, u.idmap ? ", tree mounted idmapped" : "");
        *ret = u;
        return 0;
}

void userns_done(UserNamespace *u) {
        u->fd = safe_close(u->fd);
        u->netns_fd = safe_close(u->netns_fd);
        userns_range_release(&u->range);
        bind_users_free(u->bind_users, u->n_bind_users);
        *u = USER_NAMESPACE_NULL;
}
