/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "berth-chown.h"
#include "log.h"
#include "util.h"

#define RANGE 65536U
#define MAX_DEPTH 512

/* the posix_acl_xattr format: a version, then entries of tag, permissions and id */
#define ACL_XATTR_VERSION 2
#define ACL_TAG_USER 0x02
#define ACL_TAG_GROUP 0x08

/* the security.capability formats: v2 without, v3 with the root id it is valid for */
#define CAP_REVISION_MASK 0xFF000000U
#define CAP_REVISION_2 0x02000000U
#define CAP_REVISION_3 0x03000000U
#define CAP_V2_SIZE 20
#define CAP_V3_SIZE 24

typedef struct Shift {
        uint32_t from, to;
        unsigned long n;
        unsigned long devices_left; /* device nodes the device policy kept us from shifting */
        char *blocked;              /* the inode whose attributes refused the chown (its path) ... */
        unsigned blocked_flags;     /* ... and which: FS_IMMUTABLE_FL, FS_APPEND_FL */
} Shift;

static uint32_t shift_id(const Shift *s, uint32_t id) {
        return id >= s->from && id - s->from < RANGE ? id - s->from + s->to : id;
}

static bool in_from(const Shift *s, uint32_t id) {
        return id >= s->from && id - s->from < RANGE;
}

static int shift_acl(const char *path, const char *name, const Shift *s) {
        uint8_t buf[4 + 8 * 1024];
        bool changed = false;
        ssize_t n;

        n = getxattr(path, name, buf, sizeof buf);
        if (n < 0)
                return errno == ENODATA || errno == EOPNOTSUPP ? 0 : negative_errno();
        if (n < 4 || (n - 4) % 8 != 0)
                return -EBADMSG;
        for (ssize_t off = 4; off < n; off += 8) {
                uint16_t tag;
                uint32_t id;

                memcpy(&tag, buf + off, 2);
                memcpy(&id, buf + off + 4, 4);
                if ((tag == ACL_TAG_USER || tag == ACL_TAG_GROUP) && shift_id(s, id) != id) {
                        id = shift_id(s, id);
                        memcpy(buf + off + 4, &id, 4);
                        changed = true;
                }
        }
        return changed ? RET_NERRNO(setxattr(path, name, buf, (size_t) n, 0)) : 0;
}

/* The attributes (chattr +i, +a) of the inode behind FD (O_PATH) that forbid every change of its
 * owner, 0 when none or not known. Only of regular files and directories: the ioctl needs the
 * inode opened, and opening a device node or a FIFO of a hostile tree could act on it. Reopened
 * through FD, so it is the inode the chown failed on, not whatever has that name now. */
static unsigned chown_blocking_flags(int fd, const struct stat *st) {
        _cleanup_close_ int rfd = -EBADF;
        char path[64];
        int flags = 0;

        if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode))
                return 0;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        rfd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (rfd < 0 || ioctl(rfd, FS_IOC_GETFLAGS, &flags) < 0)
                return 0;
        return (unsigned) flags & (FS_IMMUTABLE_FL | FS_APPEND_FL);
}

/* One inode, open as FD (O_PATH, never followed). */
static int shift_inode(int fd, const struct stat *st, Shift *s) {
        uint8_t cap[CAP_V3_SIZE];
        ssize_t cap_size = -1;
        char path[64];
        bool link = S_ISLNK(st->st_mode);

        if (!in_from(s, st->st_uid) && !in_from(s, st->st_gid))
                return 0; /* outside the range, or shifted already (a hard link met before) */

        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        if (!link) {
                /* a chown drops the capabilities: kept to be written again */
                cap_size = getxattr(path, "security.capability", cap, sizeof cap);
                if (cap_size < 0 && errno != ENODATA && errno != EOPNOTSUPP)
                        return negative_errno();
        }
        if (fchownat(fd, "", shift_id(s, st->st_uid), shift_id(s, st->st_gid), AT_EMPTY_PATH) < 0) {
                /* on an overlay a chown copies the node up, a mknod that a device policy (as
                 * berth@.service's DevicePolicy=closed) refuses: the node stays as it is, and the
                 * guest (its own /dev, its own device policy) could not open it anyway */
                int r = negative_errno();

                if (r == -EPERM && (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode))) {
                        s->devices_left++;
                        return 0;
                }
                /* an immutable or append-only file refuses too: never skipped, the guest would
                 * find it owned by nobody; the user is told which one and how to let it go */
                if (r == -EPERM && (s->blocked_flags = chown_blocking_flags(fd, st)) != 0) {
                        char buf[PATH_MAX];
                        ssize_t k = readlink(path, buf, sizeof buf - 1);

                        if (k > 0) {
                                buf[k] = 0;
                                s->blocked = strdup(buf);
                        }
                }
                return r;
        }
        s->n++;
        if (link)
                return 0;
        /* and the set-user-ID and set-group-ID bits */
        if ((st->st_mode & (S_ISUID | S_ISGID)) && chmod(path, st->st_mode & 07777) < 0)
                return negative_errno();
        if (cap_size == CAP_V2_SIZE || cap_size == CAP_V3_SIZE) {
                uint32_t magic, rootid = 0;

                memcpy(&magic, cap, 4);
                if (cap_size == CAP_V3_SIZE)
                        memcpy(&rootid, cap + 20, 4);
                /* valid for the range's root now: a v3 capability with its root id */
                rootid = shift_id(s, rootid);
                magic = (magic & ~CAP_REVISION_MASK) | CAP_REVISION_3;
                memcpy(cap, &magic, 4);
                memcpy(cap + 20, &rootid, 4);
                if (setxattr(path, "security.capability", cap, CAP_V3_SIZE, 0) < 0)
                        return negative_errno();
        }
        if (!link) {
                int r = shift_acl(path, "system.posix_acl_access", s);
                if (r >= 0 && S_ISDIR(st->st_mode))
                        r = shift_acl(path, "system.posix_acl_default", s);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int shift_dir(int dir_fd, Shift *s, unsigned depth, const char *what) {
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int fd, r;

        if (depth > MAX_DEPTH)
                return log_error_errno(-ELOOP, "The tree '%s' is nested more than %u directories deep: not shifting it.",
                                       what, MAX_DEPTH);
        fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return negative_errno();
        }
        while ((de = readdir(d))) {
                _cleanup_close_ int e = -EBADF;
                struct stat st;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                e = openat_beneath(dirfd(d), de->d_name, O_PATH); /* -EXDEV: a mount point */
                if (e == -EXDEV)
                        continue; /* a mount point: another file system's business */
                if (e == -ENOENT)
                        continue; /* gone meanwhile */
                if (e < 0)
                        return e;
                /* no st_dev test: RESOLVE_NO_XDEV keeps the walk on this mount, and overlayfs reports
                 * a lower layer's device for the files it has not copied up, which a device test
                 * would skip (it did: -U on an overlay whose layers sit on two file systems shifted
                 * the directories only) */
                if (fstat(e, &st) < 0)
                        return negative_errno();
                r = shift_inode(e, &st, s);
                if (r < 0)
                        return r;
                if (S_ISDIR(st.st_mode)) {
                        r = shift_dir(e, s, depth + 1, what);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* PATH, which the kernel gave for an inode below TOP, as the user knows it: below WHAT. The tree
 * may be a detached or private mount, so the kernel's path can start at the tree's top ("/") or
 * anywhere above it. */
static char *tree_path(int top, const char *what, const char *path) {
        char fd_path[64], buf[PATH_MAX];
        size_t n;
        ssize_t k;

        snprintf(fd_path, sizeof fd_path, "/proc/self/fd/%d", top);
        k = readlink(fd_path, buf, sizeof buf - 1);
        if (k <= 0)
                return strdup(path);
        buf[k] = 0;
        n = streq(buf, "/") ? 0 : (size_t) k;
        if (strncmp(path, buf, n) != 0 || path[n] != '/')
                return strdup(path);
        return strjoin(what, path + n);
}

int tree_shift_ownership(int dir_fd, const char *what, uint32_t from, uint32_t to) {
        _cleanup_close_ int top = -EBADF;
        Shift s = { .from = from, .to = to };
        uint64_t start = now_usec(CLOCK_MONOTONIC);
        struct stat st;
        int r;

        top = openat(dir_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (top < 0 || fstat(top, &st) < 0)
                return log_error_errno(negative_errno(), "Failed to open the tree '%s': %m", what);
        /* the children first, the top last: a tree whose top is shifted is a tree that was */
        r = shift_dir(top, &s, 0, what);
        if (r >= 0)
                r = shift_inode(top, &st, &s);
        if (r < 0 && s.blocked_flags != 0) {
                char flag = s.blocked_flags & FS_IMMUTABLE_FL ? 'i' : 'a';
                _cleanup_free_ char *path = s.blocked ? tree_path(top, what, s.blocked) : NULL;

                r = log_error_errno(r, "Failed to shift the ownership of '%s': '%s' is %s (chattr +%c), its owner "
                                       "cannot change. Run 'chattr -%c' on it and start again with the same range to "
                                       "finish the shift (%lu files done).",
                                    what, path ?: "a file of the tree",
                                    flag == 'i' ? "immutable" : "append-only", flag, flag, s.n);
                free(s.blocked);
                return r;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to shift the ownership of '%s' (%lu files done; a start with the same "
                                          "range finishes it): %m", what, s.n);
        log_debug("Shifted %lu files of '%s' in %" PRIu64 " ms.", s.n, what,
                  (now_usec(CLOCK_MONOTONIC) - start) / 1000);
        if (s.devices_left > 0)
                log_info("%lu device nodes of '%s' could not be shifted (creating them on this file system is "
                         "not allowed here, as on an overlay under a closed device policy): the guest sees them "
                         "owned by nobody.", s.devices_left, what);
        return 0;
}
