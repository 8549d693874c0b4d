/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Tree copies and disk usage, see copy.h.
 *
 * Trust boundary: the source tree may be an image that someone else made.
 * Every name is looked up relative to a directory fd with O_NOFOLLOW (or
 * AT_SYMLINK_NOFOLLOW), so a symlink in it is copied as a symlink and never
 * leads the copy, or the walk, out of the tree. Every file is created with
 * O_EXCL below the destination fd, which the caller made fresh.
 */

#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "copy.h"
#include "util.h"

/* Copy file data in chunks of this size: big enough for copy_file_range() to
 * stay efficient, small enough for a progress line to move on big files. */
#define COPY_CHUNK (8U * 1024 * 1024)

static bool errno_in(int e, const int *list, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (list[i] == e)
                        return true;
        return false;
}
#define IN_SET_ERRNO(e, ...) errno_in((e), (const int[]) { __VA_ARGS__ }, ELEMENTSOF(((const int[]) { __VA_ARGS__ })))

/* ---- a set of inodes (hard links), each with an optional path ---- */

typedef struct InodeEntry {
        dev_t dev;
        ino_t ino;
        char *path;
        bool used;
} InodeEntry;

typedef struct InodeSet {
        InodeEntry *e;
        size_t n, size; /* size: a power of two, or 0 */
} InodeSet;

static size_t inode_hash(dev_t dev, ino_t ino, size_t size) {
        uint64_t h = ((uint64_t) ino * 0x9E3779B97F4A7C15ULL) ^ ((uint64_t) dev * 0xC2B2AE3D27D4EB4FULL);
        return (size_t) (h ^ (h >> 29)) & (size - 1);
}

static InodeEntry *inode_set_find(InodeSet *s, dev_t dev, ino_t ino) {
        if (s->size == 0)
                return NULL;
        for (size_t i = inode_hash(dev, ino, s->size);; i = (i + 1) & (s->size - 1)) {
                if (!s->e[i].used)
                        return NULL;
                if (s->e[i].dev == dev && s->e[i].ino == ino)
                        return &s->e[i];
        }
}

/* Adds (dev, ino) with PATH (taken over, may be NULL); the caller checked it is not there. */
static int inode_set_add(InodeSet *s, dev_t dev, ino_t ino, char *path) {
        if ((s->n + 1) * 2 > s->size) {
                size_t size = s->size ? s->size * 2 : 64;
                InodeEntry *e = calloc(size, sizeof(InodeEntry));
                if (!e) {
                        free(path);
                        return -ENOMEM;
                }
                for (size_t i = 0; i < s->size; i++) {
                        if (!s->e[i].used)
                                continue;
                        size_t j = inode_hash(s->e[i].dev, s->e[i].ino, size);
                        while (e[j].used)
                                j = (j + 1) & (size - 1);
                        e[j] = s->e[i];
                }
                free(s->e);
                s->e = e;
                s->size = size;
        }
        size_t i = inode_hash(dev, ino, s->size);
        while (s->e[i].used)
                i = (i + 1) & (s->size - 1);
        s->e[i] = (InodeEntry) { .dev = dev, .ino = ino, .path = path, .used = true };
        s->n++;
        return 0;
}

static void inode_set_free(InodeSet *s) {
        if (!s)
                return;
        for (size_t i = 0; i < s->size; i++)
                free(s->e[i].path);
        free(s->e);
        free(s);
}

/* ---- copy ---- */

static int copy_fail(CopyContext *c, int r, const char *op, const char *path, const char *name) {
        if (!c->error_path) {
                c->error_path = name ? path_join(path, name) : strdup(*path ? path : ".");
                c->error_op = op;
        }
        return r;
}

static int copy_report(CopyContext *c) {
        return c->progress ? c->progress(c, c->userdata) : 0;
}

/* Extended attributes (ACLs and file capabilities among them), best effort:
 * the target may not take them all (security.* needs privileges, trusted.*
 * root, some file systems no user.*). */
static void copy_xattrs(int from, int to) {
        _cleanup_free_ char *names = NULL, *value = NULL;
        ssize_t n;

        n = flistxattr(from, NULL, 0);
        if (n <= 0)
                return;
        names = malloc(n);
        if (!names)
                return;
        n = flistxattr(from, names, n);
        if (n <= 0)
                return;
        for (char *p = names; p < names + n; p += strlen(p) + 1) {
                ssize_t k = fgetxattr(from, p, NULL, 0);
                if (k < 0)
                        continue;
                free(value);
                value = malloc(k + 1);
                if (!value)
                        return;
                k = fgetxattr(from, p, value, k);
                if (k < 0)
                        continue;
                (void) fsetxattr(to, p, value, k, 0);
        }
}

/* Owner first, then mode (chown clears the set-id bits), xattrs (chown also
 * drops security.capability), times last. */
static int copy_attributes(int from, int to, const struct stat *st) {
        struct timespec ts[2] = { st->st_atim, st->st_mtim };

        if (fchown(to, st->st_uid, st->st_gid) < 0)
                return negative_errno();
        if (fchmod(to, st->st_mode & 07777) < 0)
                return negative_errno();
        copy_xattrs(from, to);
        (void) futimens(to, ts);
        return 0;
}

/* LEN bytes (UINT64_MAX: up to the end) from offset OFF of FROM to the same offset of TO. */
static int copy_range(int from, int to, uint64_t off, uint64_t len, CopyContext *c) {
        static char buf[256 * 1024];
        int r;

        while (len > 0) {
                size_t chunk = (size_t) MIN(len, (uint64_t) COPY_CHUNK);
                ssize_t k = -1;

                if (!c->no_copy_file_range) {
                        loff_t in = (loff_t) off, out = (loff_t) off;
                        k = copy_file_range(from, &in, to, &out, chunk, 0);
                        if (k < 0) {
                                if (!IN_SET_ERRNO(errno, EXDEV, EINVAL, EOPNOTSUPP, ENOSYS, EBADF))
                                        return negative_errno();
                                /* the pair of file systems cannot: from here on, read and write */
                                c->no_copy_file_range = true;
                        }
                }
                if (c->no_copy_file_range) {
                        k = pread(from, buf, MIN(chunk, sizeof buf), (off_t) off);
                        if (k < 0) {
                                if (errno == EINTR)
                                        continue;
                                return negative_errno();
                        }
                        for (ssize_t w = 0; w < k;) {
                                ssize_t q = pwrite(to, buf + w, (size_t) (k - w), (off_t) (off + (uint64_t) w));
                                if (q < 0) {
                                        if (errno == EINTR)
                                                continue;
                                        return negative_errno();
                                }
                                w += q;
                        }
                }
                if (k == 0)
                        return 0; /* end of file */
                off += (uint64_t) k;
                if (len != UINT64_MAX)
                        len -= (uint64_t) k;
                c->n_bytes += (uint64_t) k;
                r = copy_report(c);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int copy_data(int from, int to, const struct stat *st, CopyContext *c) {
        uint64_t off = 0;
        int r;

        /* A reflink shares the blocks (btrfs, xfs): instant, no space used. */
        if (!c->no_reflink) {
                if (ioctl(to, FICLONE, from) >= 0) {
                        c->n_bytes += (uint64_t) st->st_size;
                        return copy_report(c);
                }
                /* not this file system, or not between these two: stop asking */
                if (IN_SET_ERRNO(errno, EOPNOTSUPP, ENOTTY, EXDEV, ENOSYS))
                        c->no_reflink = true;
        }

        /* Fewer blocks than bytes: the file may have holes (/var/log/lastlog is
         * a sparse file of gigabytes): copy the data segments only. */
        if ((uint64_t) st->st_blocks * 512 >= (uint64_t) st->st_size)
                return copy_range(from, to, 0, UINT64_MAX, c);

        for (;;) {
                off_t data = lseek(from, (off_t) off, SEEK_DATA);
                if (data < 0) {
                        if (errno == ENXIO)
                                break; /* only a hole is left */
                        if (IN_SET_ERRNO(errno, EINVAL, EOPNOTSUPP))
                                return copy_range(from, to, 0, UINT64_MAX, c);
                        return negative_errno();
                }
                off_t hole = lseek(from, data, SEEK_HOLE);
                if (hole < 0)
                        return negative_errno();
                if (hole <= data)
                        break;
                r = copy_range(from, to, (uint64_t) data, (uint64_t) (hole - data), c);
                if (r < 0)
                        return r;
                off = (uint64_t) hole;
        }
        return RET_NERRNO(ftruncate(to, st->st_size));
}

static int copy_dir_contents(int src_dir, int dst_dir, const char *path, CopyContext *c);

static int copy_directory(int src_dir, int dst_dir, const char *name, const char *path, const struct stat *st,
                          CopyContext *c) {
        _cleanup_close_ int s = -EBADF, d = -EBADF;
        _cleanup_free_ char *sub = NULL;
        int r;

        /* the copy being made inside the source: never copy it into itself */
        if (st->st_dev == c->dst_dev && st->st_ino == c->dst_ino)
                return 0;
        if (mkdirat(dst_dir, name, 0700) < 0)
                return copy_fail(c, negative_errno(), "create directory", path, name);
        s = openat(src_dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (s < 0)
                return copy_fail(c, negative_errno(), "open directory", path, name);
        d = openat(dst_dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (d < 0)
                return copy_fail(c, negative_errno(), "open directory", path, name);
        sub = path_join(path, name);
        if (!sub)
                return -ENOMEM;
        /* a mount point below the top: the directory, not what is mounted there */
        if (!(c->flags & COPY_SAME_FS) || st->st_dev == c->src_dev) {
                r = copy_dir_contents(s, d, sub, c);
                if (r < 0)
                        return r;
        }
        r = copy_attributes(s, d, st);
        if (r < 0)
                return copy_fail(c, r, "set the attributes of", sub, NULL);
        return 0;
}

static int copy_regular(int src_dir, int dst_dir, const char *name, const char *path, const struct stat *st,
                        CopyContext *c) {
        _cleanup_close_ int s = -EBADF, d = -EBADF;
        int r;

        s = openat(src_dir, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
        if (s < 0)
                return copy_fail(c, negative_errno(), "open", path, name);
        d = openat(dst_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (d < 0)
                return copy_fail(c, negative_errno(), "create", path, name);
        r = copy_data(s, d, st, c);
        if (r < 0)
                return copy_fail(c, r, "copy the data of", path, name);
        r = copy_attributes(s, d, st);
        if (r < 0)
                return copy_fail(c, r, "set the attributes of", path, name);
        return 0;
}

/* symlinks, device nodes, fifos, sockets */
static int copy_special(int src_dir, int dst_dir, const char *name, const char *path, const struct stat *st,
                        CopyContext *c) {
        struct timespec ts[2] = { st->st_atim, st->st_mtim };

        if (S_ISLNK(st->st_mode)) {
                char target[PATH_MAX + 1];
                ssize_t k = readlinkat(src_dir, name, target, sizeof target - 1);
                if (k < 0)
                        return copy_fail(c, negative_errno(), "read symlink", path, name);
                target[k] = 0;
                if (symlinkat(target, dst_dir, name) < 0)
                        return copy_fail(c, negative_errno(), "create symlink", path, name);
        } else if (mknodat(dst_dir, name, st->st_mode, st->st_rdev) < 0)
                return copy_fail(c, negative_errno(), "create node", path, name);

        if (fchownat(dst_dir, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
                return copy_fail(c, negative_errno(), "set the owner of", path, name);
        if (!S_ISLNK(st->st_mode) && fchmodat(dst_dir, name, st->st_mode & 07777, 0) < 0)
                return copy_fail(c, negative_errno(), "set the mode of", path, name);
        (void) utimensat(dst_dir, name, ts, AT_SYMLINK_NOFOLLOW);
        return 0;
}

static int copy_entry(int src_dir, int dst_dir, const char *name, const char *path, CopyContext *c) {
        InodeSet *links = c->links;
        struct stat st;
        int r;

        if (fstatat(src_dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return copy_fail(c, negative_errno(), "stat", path, name);
        c->n_files++;
        r = copy_report(c);
        if (r < 0)
                return r;

        if (S_ISDIR(st.st_mode))
                return copy_directory(src_dir, dst_dir, name, path, &st, c);

        /* a second name of an inode already copied: a second name of the copy */
        if (st.st_nlink > 1) {
                InodeEntry *e = inode_set_find(links, st.st_dev, st.st_ino);
                if (e) {
                        if (linkat(c->dst_root, e->path, dst_dir, name, 0) >= 0)
                                return 0;
                        /* the first copy is gone or cannot be linked to: copy again */
                }
        }

        if (S_ISREG(st.st_mode))
                r = copy_regular(src_dir, dst_dir, name, path, &st, c);
        else
                r = copy_special(src_dir, dst_dir, name, path, &st, c);
        if (r < 0)
                return r;

        if (st.st_nlink > 1 && !inode_set_find(links, st.st_dev, st.st_ino)) {
                char *p = path_join(path, name);
                if (!p)
                        return -ENOMEM;
                r = inode_set_add(links, st.st_dev, st.st_ino, p);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int copy_dir_contents(int src_dir, int dst_dir, const char *path, CopyContext *c) {
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int fd, r;

        /* a new open file description: a dup would share (and move) the caller's read position */
        fd = openat(src_dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return copy_fail(c, negative_errno(), "read directory", path, NULL);
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return copy_fail(c, negative_errno(), "read directory", path, NULL);
        }
        while ((errno = 0, de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                r = copy_entry(src_dir, dst_dir, de->d_name, path, c);
                if (r < 0)
                        return r;
        }
        if (errno != 0)
                return copy_fail(c, negative_errno(), "read directory", path, NULL);
        return 0;
}

int copy_tree_fd(int src_fd, int dst_fd, CopyContext *c) {
        struct stat st, dst_st;
        int r;

        if (fstat(src_fd, &st) < 0)
                return copy_fail(c, negative_errno(), "stat", "", NULL);
        if (fstat(dst_fd, &dst_st) < 0)
                return copy_fail(c, negative_errno(), "stat", "", NULL);
        if (!c->links) {
                c->links = calloc(1, sizeof(InodeSet));
                if (!c->links)
                        return -ENOMEM;
        }
        c->src_dev = st.st_dev;
        c->dst_dev = dst_st.st_dev;
        c->dst_ino = dst_st.st_ino;
        c->dst_root = dst_fd;

        r = copy_dir_contents(src_fd, dst_fd, "", c);
        if (r < 0)
                return r;
        r = copy_attributes(src_fd, dst_fd, &st);
        if (r < 0)
                return copy_fail(c, r, "set the attributes of", "", NULL);
        return 0;
}

int copy_file_fd(int from, int to, CopyContext *c) {
        struct stat st;
        int r;

        if (fstat(from, &st) < 0)
                return copy_fail(c, negative_errno(), "stat", "", NULL);
        if (!S_ISREG(st.st_mode))
                return copy_fail(c, -EBADFD, "copy", "", NULL);
        c->n_files++;
        r = copy_data(from, to, &st, c);
        if (r < 0)
                return copy_fail(c, r, "copy the data of", "", NULL);
        r = copy_attributes(from, to, &st);
        if (r < 0)
                return copy_fail(c, r, "set the attributes of", "", NULL);
        return 0;
}

void copy_context_done(CopyContext *c) {
        free(c->error_path);
        c->error_path = NULL;
        inode_set_free(c->links);
        c->links = NULL;
}

/* ---- disk usage ---- */

typedef struct UsageWalk {
        dev_t dev;
        uint64_t usage, apparent;
        InodeSet links;
} UsageWalk;

static int usage_walk(int dir_fd, UsageWalk *w) {
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int fd, r;

        fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* see copy_dir_contents() */
        if (fd < 0)
                return negative_errno();
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return negative_errno();
        }
        while ((errno = 0, de = readdir(d))) {
                struct stat st;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (fstatat(dir_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT)
                                continue; /* removed meanwhile: the tree may be in use */
                        return negative_errno();
                }
                if (st.st_dev != w->dev)
                        continue; /* a mount point: not the tree's */
                if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
                        if (inode_set_find(&w->links, st.st_dev, st.st_ino))
                                continue;
                        r = inode_set_add(&w->links, st.st_dev, st.st_ino, NULL);
                        if (r < 0)
                                return r;
                }
                w->usage += (uint64_t) st.st_blocks * 512;
                if (S_ISREG(st.st_mode))
                        w->apparent += (uint64_t) st.st_size;
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int sub = openat(dir_fd, de->d_name,
                                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub < 0) {
                                if (errno == ENOENT)
                                        continue;
                                return negative_errno();
                        }
                        r = usage_walk(sub, w);
                        if (r < 0)
                                return r;
                }
        }
        return errno != 0 ? negative_errno() : 0;
}

int tree_usage_fd(int dir_fd, uint64_t *ret_usage, uint64_t *ret_apparent) {
        UsageWalk w = {};
        struct stat st;
        int r;

        if (fstat(dir_fd, &st) < 0)
                return negative_errno();
        w.dev = st.st_dev;
        w.usage = (uint64_t) st.st_blocks * 512;
        r = usage_walk(dir_fd, &w);
        free(w.links.e); /* no paths stored */
        if (r < 0)
                return r;
        *ret_usage = w.usage;
        if (ret_apparent)
                *ret_apparent = w.apparent;
        return 0;
}

/* ---- progress line ---- */

void progress_bar_init(ProgressBar *p, FILE *f, const char *prefix, uint64_t total, bool enabled) {
        *p = (ProgressBar) {
                .f = f,
                .prefix = prefix,
                .total = total,
                .start = now_usec(CLOCK_MONOTONIC),
                .enabled = enabled && isatty(fileno(f)),
        };
}

void progress_bar_update(ProgressBar *p, uint64_t done) {
        char d[16], t[16], rate[16], bar[64], line[512];
        struct winsize ws = {};
        uint64_t n, elapsed;
        unsigned columns = 80, percent;
        int width;

        if (!p->enabled)
                return;
        n = now_usec(CLOCK_MONOTONIC);
        elapsed = n - p->start;
        if (elapsed < 500 * USEC_PER_MSEC || n - p->last < 200 * USEC_PER_MSEC)
                return;
        p->last = n;
        p->shown = true;

        if (ioctl(fileno(p->f), TIOCGWINSZ, &ws) >= 0 && ws.ws_col > 0)
                columns = ws.ws_col;
        format_bytes(done, d, sizeof d);
        format_bytes((uint64_t) ((double) done * USEC_PER_SEC / (double) elapsed), rate, sizeof rate);
        if (p->total == 0) {
                snprintf(line, sizeof line, "%s %s %s/s", p->prefix, d, rate);
        } else {
                percent = (unsigned) MIN((uint64_t) 100, done * 100 / p->total);
                format_bytes(p->total, t, sizeof t);
                /* what is left of the line for the bar, brackets included */
                width = (int) MIN((unsigned) sizeof bar - 1, columns > 60 ? columns - 50 : 10) - 2;
                if (width < 5)
                        width = 5;
                int filled = (int) (percent * (unsigned) width / 100);
                for (int i = 0; i < width; i++)
                        bar[i] = i < filled ? '=' : i == filled ? '>' : ' ';
                bar[width] = 0;
                snprintf(line, sizeof line, "%s [%s] %3u%% %s/%s %s/s", p->prefix, bar, percent, d, t, rate);
        }
        if (strlen(line) >= columns)
                line[columns - 1] = 0;
        fprintf(p->f, "\r%s\033[K", line);
        fflush(p->f);
}

void progress_bar_finish(ProgressBar *p) {
        if (!p->shown)
                return;
        fputs("\r\033[K", p->f);
        fflush(p->f);
        p->shown = false;
}
