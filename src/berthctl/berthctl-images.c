/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The image verbs: list-images, image-status, show-image, clone, rename,
 * remove, read-only, clean; and what the import verbs (import-tar,
 * export-tar, import-fs in berthctl-import.c) share with them.
 *
 * An image is a directory tree or a NAME.raw file in one of the image
 * directories: $BERTH_IMAGE_PATH (colon-separated), else nspawn's
 * /var/lib/machines, /usr/local/lib/machines, /usr/lib/machines. The first
 * directory is where images are made (clone, import); images in the others
 * are read-only by convention. The first directory holding a name wins.
 * Names starting with '.' are hidden; names starting with ".#" are our
 * temporaries and never images.
 *
 * Trust boundary: the image directories and the names on the command line
 * are the user's (root's); what is inside an image is not. Files in an image
 * are opened with open_in_root() (RESOLVE_IN_ROOT), walks never follow its
 * symlinks.
 *
 * Everything that makes an image builds it in a hidden temporary directory
 * next to its final place (".#berthctl-NAME-XXXXXX", flock()ed while in
 * flight) and renames it into place at the end: an interrupted or failed
 * import or clone leaves no half image, and 'clean' removes the temporaries
 * of processes that died (their lock is free).
 */

#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "berth-verity.h"
#include "berthctl.h"
#include "berthctl-images.h"
#include "copy.h"
#include "dissect.h"
#include "log.h"
#include "machine-name.h"
#include "registry.h"
#include "util.h"

#define TEMP_PREFIX ".#berthctl-"
/* what FS_IOC_[GS]ETFLAGS says on a file system without flags */
#define IN_SET_NOTSUP(r) ((r) == -ENOTTY || (r) == -EOPNOTSUPP || (r) == -ENOSYS)

static const char *const default_image_path[] = {
        "/var/lib/machines",
        "/usr/local/lib/machines",
        "/usr/lib/machines",
};

static const char *const settings_suffixes[] = { ".berth", ".nspawn" };

static const char *const image_type_table[] = {
        [IMAGE_DIRECTORY] = "directory",
        [IMAGE_RAW] = "raw",
};

Image *image_free(Image *i) {
        if (!i)
                return NULL;
        free(i->name);
        free(i->path);
        free(i->pool);
        free(i);
        return NULL;
}

void image_freep(Image **i) {
        image_free(*i);
}

static void image_list_free(Image **l, size_t n) {
        for (size_t i = 0; i < n; i++)
                image_free(l[i]);
        free(l);
}

/* ---- the image path and names ---- */

static int image_path_get(char ***ret) {
        _cleanup_strv_free_ char **l = NULL, **split = NULL;
        const char *e = getenv("BERTH_IMAGE_PATH");
        int r;

        if (e) {
                r = strv_split(e, ":", &split);
                if (r < 0)
                        return r;
                STRV_FOREACH(p, split)
                        if (!isempty(*p) && strv_extend(&l, *p) < 0)
                                return -ENOMEM;
        }
        if (!l)
                for (size_t i = 0; i < ELEMENTSOF(default_image_path); i++)
                        if (strv_extend(&l, default_image_path[i]) < 0)
                                return -ENOMEM;
        *ret = TAKE_PTR(l);
        return 0;
}

bool image_name_is_valid(const char *s) {
        if (isempty(s))
                return false;
        return machine_name_is_valid(s[0] == '.' ? s + 1 : s);
}

static int check_name(const char *s) {
        if (!image_name_is_valid(s))
                return log_error_errno(-EINVAL,
                                       "Invalid image name '%s': use letters, digits, '-', '_' and '.', at most 64, "
                                       "optionally after a leading '.' (hidden).", s);
        return 0;
}

/* ---- discovery ---- */

static uint64_t timespec_usec(int64_t sec, uint32_t nsec) {
        return sec <= 0 ? 0 : (uint64_t) sec * USEC_PER_SEC + nsec / NSEC_PER_USEC;
}

/* Flags, times, read-only mount: cheap, done for every image. */
static void image_fill_details(Image *img) {
        struct statx stx;
        struct statvfs sv;

        if (statx(AT_FDCWD, img->path, 0, STATX_BTIME | STATX_MTIME | STATX_MODE, &stx) >= 0) {
                if (stx.stx_mask & STATX_BTIME)
                        img->crtime = timespec_usec(stx.stx_btime.tv_sec, stx.stx_btime.tv_nsec);
                img->mtime = timespec_usec(stx.stx_mtime.tv_sec, stx.stx_mtime.tv_nsec);
                if (img->type == IMAGE_RAW && (stx.stx_mode & 0222) == 0)
                        img->immutable = true;
                if (stx.stx_attributes_mask & STATX_ATTR_IMMUTABLE && stx.stx_attributes & STATX_ATTR_IMMUTABLE)
                        img->immutable = true;
        }
        img->read_only = img->vendor || img->immutable ||
                         (statvfs(img->path, &sv) >= 0 && (sv.f_flag & ST_RDONLY));
}

/* Looks at NAME in the directory POOL (open as POOL_FD): 1 and *ret if it is an image, 0 if not. */
static int image_from_entry(int pool_fd, const char *pool, const char *entry, bool vendor, Image **ret) {
        _cleanup_(image_freep) Image *img = NULL;
        _cleanup_free_ char *name = NULL;
        struct stat st;
        ImageType type;

        if (startswith(entry, ".#"))
                return 0;
        /* images may be symlinks to trees elsewhere, as with nspawn */
        if (fstatat(pool_fd, entry, &st, 0) < 0)
                return 0;
        if (S_ISDIR(st.st_mode)) {
                type = IMAGE_DIRECTORY;
                name = strdup(entry);
        } else if (S_ISREG(st.st_mode) && endswith(entry, ".raw")) {
                type = IMAGE_RAW;
                name = strndup(entry, strlen(entry) - 4);
        } else
                return 0;
        if (!name)
                return -ENOMEM;
        if (!image_name_is_valid(name))
                return 0; /* lost+found, settings files, what else lives there */

        img = calloc(1, sizeof(Image));
        if (!img)
                return -ENOMEM;
        img->name = TAKE_PTR(name);
        img->path = path_join(pool, entry);
        img->pool = strdup(pool);
        if (!img->path || !img->pool)
                return -ENOMEM;
        img->type = type;
        img->hidden = img->name[0] == '.';
        img->vendor = vendor;
        img->usage = UINT64_MAX;
        image_fill_details(img);
        *ret = TAKE_PTR(img);
        return 1;
}

/* -ENOENT if there is no image NAME. */
static int image_find(const char *name, Image **ret) {
        _cleanup_strv_free_ char **path = NULL;
        int r;

        r = image_path_get(&path);
        if (r < 0)
                return r;
        STRV_FOREACH(p, path) {
                _cleanup_close_ int fd = open(*p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                _cleanup_free_ char *raw = NULL;
                if (fd < 0)
                        continue;
                r = image_from_entry(fd, *p, name, p != path, ret);
                if (r != 0)
                        return r;
                raw = strjoin(name, ".raw");
                if (!raw)
                        return -ENOMEM;
                r = image_from_entry(fd, *p, raw, p != path, ret);
                if (r != 0)
                        return r;
        }
        return -ENOENT;
}

/* Finds NAME and logs the one line the user sees when it is not there. */
int image_get(const char *name, Image **ret) {
        int r;

        r = check_name(name);
        if (r < 0)
                return r;
        r = image_find(name, ret);
        if (r == -ENOENT) {
                _cleanup_strv_free_ char **path = NULL;
                _cleanup_free_ char *joined = NULL;
                if (image_path_get(&path) >= 0) {
                        STRV_FOREACH(p, path) {
                                char *j = joined ? strjoin(joined, ", ", *p) : strdup(*p);
                                free(joined);
                                joined = j;
                        }
                }
                return log_error_errno(r, "No image '%s' in %s.", name, strna(joined));
        }
        if (r < 0)
                return log_error_errno(r, "Failed to look up image '%s': %m", name);
        return 0;
}

static int image_cmp(const void *a, const void *b) {
        return strcmp((*(Image *const *) a)->name, (*(Image *const *) b)->name);
}

static int image_discover(bool hidden, Image ***ret, size_t *ret_n) {
        _cleanup_strv_free_ char **path = NULL, **seen = NULL;
        Image **l = NULL;
        size_t n = 0;
        int r;

        r = image_path_get(&path);
        if (r < 0)
                return r;
        STRV_FOREACH(p, path) {
                _cleanup_closedir_ DIR *d = opendir(*p);
                struct dirent *de;
                if (!d)
                        continue;
                while ((de = readdir(d))) {
                        Image *img = NULL;
                        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                                continue;
                        r = image_from_entry(dirfd(d), *p, de->d_name, p != path, &img);
                        if (r < 0)
                                goto fail;
                        if (r == 0)
                                continue;
                        /* the first directory that has a name wins */
                        if ((img->hidden && !hidden) || strv_contains(seen, img->name)) {
                                image_free(img);
                                continue;
                        }
                        Image **m = realloc(l, sizeof(Image *) * (n + 1));
                        if (!m || strv_extend(&seen, img->name) < 0) {
                                if (m)
                                        l = m;
                                image_free(img);
                                r = -ENOMEM;
                                goto fail;
                        }
                        l = m;
                        l[n++] = img;
                }
        }
        if (n > 0)
                qsort(l, n, sizeof(Image *), image_cmp);
        *ret = l;
        *ret_n = n;
        return 0;
fail:
        image_list_free(l, n);
        return r;
}

static void image_compute_usage(Image *img) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        if (img->type == IMAGE_RAW) {
                if (stat(img->path, &st) >= 0)
                        img->usage = (uint64_t) st.st_blocks * 512;
                return;
        }
        fd = open(img->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || tree_usage_fd(fd, &img->usage, NULL) < 0)
                img->usage = UINT64_MAX;
}

/* ---- in use? ---- */

/* The live machine whose tree is PATH, if any. */
static int machine_of_image(const char *path, char **ret) {
        _cleanup_strv_free_ char **names = NULL;
        struct stat st, rst;

        if (stat(path, &st) < 0 || registry_list(&names) < 0)
                return 0;
        STRV_FOREACH(n, names) {
                _cleanup_(machine_record_freep) MachineRecord *m = NULL;
                if (registry_read(*n, &m) < 0 || !m->root || registry_is_live(*n) <= 0)
                        continue;
                if (stat(m->root, &rst) < 0 || rst.st_dev != st.st_dev || rst.st_ino != st.st_ino)
                        continue;
                *ret = strdup(*n);
                return *ret ? 1 : -ENOMEM;
        }
        return 0;
}

/* Takes the tree lock a running berth holds (see registry_lock_root()) so that
 * no berth starts on the image while we change it. -EBUSY, logged with the
 * machine's name, if one runs on it. Raw images have no lock: berth cannot
 * boot them. */
static int image_lock(const Image *img, const char *what, int *ret_fd) {
        _cleanup_free_ char *machine = NULL;
        int fd = -EBADF, r;

        if (img->type == IMAGE_DIRECTORY) {
                r = registry_lock_root(img->path, false, &fd);
                if (r < 0 && r != -EBUSY)
                        return log_error_errno(r, "Failed to lock image '%s': %m", img->name);
        } else
                r = 0;
        if (machine_of_image(img->path, &machine) > 0 || r == -EBUSY) {
                safe_close(fd);
                if (machine)
                        return log_error_errno(-EBUSY, "Cannot %s image '%s': machine '%s' is running on it; "
                                                       "stop it first ('berthctl poweroff %s').",
                                               what, img->name, machine, machine);
                return log_error_errno(-EBUSY, "Cannot %s image '%s': a running berth uses it; stop it first.",
                                       what, img->name);
        }
        *ret_fd = fd;
        return 0;
}

/* The checks before an image is removed, renamed or replaced; returns the lock. */
static int image_check_writable(const Image *img, const char *what, int *ret_lock) {
        if (img->vendor)
                return log_error_errno(-EROFS, "Cannot %s image '%s': it is in '%s', which is read-only "
                                               "(only images in the first image directory are changed).",
                                       what, img->name, img->pool);
        if (img->immutable)
                return log_error_errno(-EROFS, "Cannot %s image '%s': it is read-only; "
                                               "run 'berthctl read-only %s no' first.",
                                       what, img->name, img->name);
        return image_lock(img, what, ret_lock);
}

/* ---- settings files that belong to an image ---- */

/* Where settings files of images live: next to the image, and the trusted
 * places berth reads (or $BERTH_SETTINGS_PATH, which replaces those). */
static int settings_dirs(const Image *img, char ***ret) {
        static const char *const trusted[] = { "/etc/berth", "/run/berth", "/etc/systemd/nspawn",
                                               "/run/systemd/nspawn" };
        _cleanup_strv_free_ char **l = NULL, **split = NULL;
        const char *e = getenv("BERTH_SETTINGS_PATH");
        int r;

        if (strv_extend(&l, img->pool) < 0)
                return -ENOMEM;
        if (e) {
                r = strv_split(e, ":", &split);
                if (r < 0)
                        return r;
                STRV_FOREACH(p, split)
                        if (!isempty(*p) && !strv_contains(l, *p) && strv_extend(&l, *p) < 0)
                                return -ENOMEM;
        } else
                for (size_t i = 0; i < ELEMENTSOF(trusted); i++)
                        if (strv_extend(&l, trusted[i]) < 0)
                                return -ENOMEM;
        *ret = TAKE_PTR(l);
        return 0;
}

/* NEW NULL: remove the settings files of IMG; else rename them to NEW's. Best effort. */
static void settings_move(const Image *img, const char *new_name) {
        _cleanup_strv_free_ char **dirs = NULL;

        if (settings_dirs(img, &dirs) < 0) {
                log_oom();
                return;
        }
        STRV_FOREACH(d, dirs)
                for (size_t i = 0; i < ELEMENTSOF(settings_suffixes); i++) {
                        _cleanup_free_ char *from = strjoin(*d, "/", img->name, settings_suffixes[i]);
                        _cleanup_free_ char *to = new_name ? strjoin(*d, "/", new_name, settings_suffixes[i]) : NULL;
                        if (!from || (new_name && !to)) {
                                log_oom();
                                return;
                        }
                        if (access(from, F_OK) < 0)
                                continue;
                        if (new_name ? renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) < 0
                                     : unlink(from) < 0)
                                log_warning_errno(negative_errno(), "Failed to %s settings file '%s'%s%s, ignoring: %m",
                                                  new_name ? "rename" : "remove", from, new_name ? " to " : "",
                                                  strempty(to));
                }
}

/* Copies the settings files next to SRC into POOL, for NEW_NAME. Best effort. */
static void settings_copy(const Image *src, const char *pool, const char *new_name) {
        for (size_t i = 0; i < ELEMENTSOF(settings_suffixes); i++) {
                _cleanup_free_ char *from = strjoin(src->pool, "/", src->name, settings_suffixes[i]);
                _cleanup_free_ char *to = strjoin(pool, "/", new_name, settings_suffixes[i]);
                struct stat st;
                if (!from || !to) {
                        log_oom();
                        return;
                }
                if (lstat(from, &st) < 0 || !S_ISREG(st.st_mode) || access(to, F_OK) >= 0)
                        continue;
                int r = copy_file(from, to, st.st_mode & 07777);
                if (r < 0)
                        log_warning_errno(r, "Failed to copy settings file '%s' to '%s', ignoring: %m", from, to);
        }
}

/* ---- Ctrl-C during long operations ---- */

volatile sig_atomic_t cancelled = 0;

static void on_cancel_signal(int sig) {
        cancelled = sig;
}

/* No SA_RESTART: a blocked read() or write() returns EINTR and the loop looks at 'cancelled'. */
void cancel_signals_install(void) {
        struct sigaction sa = { .sa_handler = on_cancel_signal };
        sigemptyset(&sa.sa_mask);
        (void) sigaction(SIGINT, &sa, NULL);
        (void) sigaction(SIGTERM, &sa, NULL);
        (void) sigaction(SIGHUP, &sa, NULL);
        /* a dead tar child: write() says EPIPE */
        (void) signal(SIGPIPE, SIG_IGN);
}

/* ---- temporaries: where new images are built ---- */


void temp_image_done(TempImage *t) {
        if (t->path) {
                (void) rm_rf(t->path);
                free(t->path);
                t->path = NULL;
        }
        t->fd = safe_close(t->fd);
        t->lock = safe_close(t->lock);
}

int temp_image_make(const char *pool, const char *name, bool directory, TempImage *ret) {
        _cleanup_(temp_image_done) TempImage t = TEMP_IMAGE_NULL;
        int r;

        r = mkdir_p(pool, 0700);
        if (r < 0)
                return log_error_errno(r, "Failed to create image directory '%s': %m", pool);
        t.path = strjoin(pool, "/" TEMP_PREFIX, name, "-XXXXXX");
        if (!t.path)
                return log_oom();
        if (directory) {
                if (!mkdtemp(t.path)) {
                        r = negative_errno();
                        free(t.path);
                        t.path = NULL;
                        return log_error_errno(r, "Failed to create a directory in '%s': %m", pool);
                }
                t.fd = open(t.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (t.fd < 0)
                        return log_error_errno(negative_errno(), "Failed to open '%s': %m", t.path);
                if (flock(t.fd, LOCK_EX | LOCK_NB) < 0)
                        return log_error_errno(negative_errno(), "Failed to lock '%s': %m", t.path);
                t.lock = fcntl(t.fd, F_DUPFD_CLOEXEC, 3);
                /* tar sets it from the archive's "./"; an archive without one gets the usual mode */
                (void) fchmod(t.fd, 0755);
        } else {
                t.fd = mkostemp(t.path, O_CLOEXEC);
                if (t.fd < 0) {
                        r = negative_errno();
                        free(t.path);
                        t.path = NULL;
                        return log_error_errno(r, "Failed to create a file in '%s': %m", pool);
                }
                if (flock(t.fd, LOCK_EX | LOCK_NB) < 0)
                        return log_error_errno(negative_errno(), "Failed to lock '%s': %m", t.path);
        }
        *ret = t;
        t = TEMP_IMAGE_NULL;
        return 0;
}

static int set_immutable(const char *path, bool b) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        int flags;

        if (fd < 0)
                return negative_errno();
        if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0)
                return negative_errno();
        if (!!(flags & FS_IMMUTABLE_FL) == b)
                return 0;
        flags = b ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
        return RET_NERRNO(ioctl(fd, FS_IOC_SETFLAGS, &flags));
}

/* Directories: the immutable flag on the top directory (nothing in it can be
 * added, removed or renamed, and it cannot be removed or renamed itself), as
 * machinectl does where there is no btrfs. Raw files: no write permission. */
static int image_set_read_only(const char *path, ImageType type, bool b) {
        struct stat st;
        int r;

        if (type == IMAGE_DIRECTORY) {
                r = set_immutable(path, b);
                if (IN_SET_NOTSUP(r))
                        return -EOPNOTSUPP;
                return r;
        }
        if (stat(path, &st) < 0)
                return negative_errno();
        if (!b && (r = set_immutable(path, false)) < 0 && !IN_SET_NOTSUP(r))
                return r;
        return RET_NERRNO(chmod(path, b ? (st.st_mode & 07777 & ~0222) : ((st.st_mode & 07777) | 0200)));
}

static int log_read_only_error(int r, const char *name, const char *path) {
        if (r == -EOPNOTSUPP)
                return log_error_errno(r, "Failed to mark image '%s' read-only: the file system of '%s' has no "
                                          "immutable flag.", name, path);
        return log_error_errno(r, "Failed to change the read-only flag of image '%s': %m", name);
}

/* Moves the finished temporary into place as POOL/FINAL. EXISTING (--force):
 * the image it replaces, locked by the caller, or NULL. On success the
 * temporary is gone from T. */
int temp_image_commit(TempImage *t, const char *pool, const char *final, const Image *existing) {
        _cleanup_free_ char *target = path_join(pool, final);
        int r;

        if (!target)
                return log_oom();
        if (existing && streq(existing->path, target)) {
                /* swap in one step: the name never points at nothing */
                if (renameat2(AT_FDCWD, t->path, AT_FDCWD, target, RENAME_EXCHANGE) < 0)
                        return log_error_errno(negative_errno(), "Failed to replace '%s': %m", target);
                /* t->path is the old image now: temp_image_done() removes it */
                r = rm_rf(t->path);
                if (r < 0)
                        log_warning_errno(r, "Failed to remove the replaced image in '%s', ignoring: %m", t->path);
                free(t->path);
                t->path = NULL;
                return 0;
        }
        if (renameat2(AT_FDCWD, t->path, AT_FDCWD, target, RENAME_NOREPLACE) < 0) {
                r = negative_errno();
                if (r == -EEXIST)
                        return log_error_errno(r, "Cannot create '%s': it exists (pass --force to replace it).",
                                               target);
                return log_error_errno(r, "Failed to move the new image to '%s': %m", target);
        }
        free(t->path);
        t->path = NULL;
        /* replaced a NAME.raw by a NAME directory, or the other way round */
        if (existing && !existing->vendor && (r = rm_rf(existing->path)) < 0)
                log_warning_errno(r, "Failed to remove the replaced image '%s', ignoring: %m", existing->path);
        return 0;
}

/* The first image directory: where new images go. */
int image_pool_writable(char **ret) {
        _cleanup_strv_free_ char **path = NULL;
        int r;

        r = image_path_get(&path);
        if (r < 0)
                return log_oom();
        *ret = strdup(path[0]);
        return *ret ? 0 : log_oom();
}

/* For clone and import: NEW must be a valid, unused name, unless --force
 * replaces it. *ret_existing, *ret_lock: the image to replace (locked). */
int prepare_target(const char *new_name, const char *what, Image **ret_existing, int *ret_lock) {
        _cleanup_(image_freep) Image *existing = NULL;
        int r;

        r = check_name(new_name);
        if (r < 0)
                return r;
        r = image_find(new_name, &existing);
        if (r == -ENOENT) {
                *ret_existing = NULL;
                *ret_lock = -EBADF;
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to look up image '%s': %m", new_name);
        if (!arg.force)
                return log_error_errno(-EEXIST, "Image '%s' exists already in '%s': pick another name, or pass "
                                                "--force to replace it.", new_name, existing->pool);
        if (existing->vendor) {
                /* the new one goes into the first directory and hides it */
                *ret_existing = NULL;
                *ret_lock = -EBADF;
                return 0;
        }
        r = image_check_writable(existing, what, ret_lock);
        if (r < 0)
                return r;
        *ret_existing = TAKE_PTR(existing);
        return 0;
}

/* ---- list-images ---- */

int verb_list_images(int argc, char *argv[]) {
        static const char *const headers[] = { "NAME", "TYPE", "RO", "USAGE", "CREATED", "MODIFIED", NULL };
        _cleanup_(table_freep) Table *t = NULL;
        Image **l = NULL;
        size_t n = 0;
        int r;

        r = image_discover(arg.all, &l, &n);
        if (r < 0)
                return log_error_errno(r, "Failed to list images: %m");
        t = table_new(headers);
        if (!t) {
                r = log_oom();
                goto finish;
        }
        for (size_t i = 0; i < n; i++) {
                image_compute_usage(l[i]);
                if (table_add(t, CELL_STRING, l[i]->name) < 0 ||
                    table_add(t, CELL_STRING, image_type_table[l[i]->type]) < 0 ||
                    table_add(t, CELL_BOOL, l[i]->read_only) < 0 ||
                    table_add(t, CELL_SIZE, (unsigned long long) l[i]->usage) < 0 ||
                    table_add(t, CELL_TIMESTAMP, (unsigned long long) l[i]->crtime) < 0 ||
                    table_add(t, CELL_TIMESTAMP, (unsigned long long) l[i]->mtime) < 0) {
                        r = log_oom();
                        goto finish;
                }
        }
        if (n == 0 && arg.json == JSON_OFF) {
                if (arg.legend && !arg.quiet)
                        printf("No images.\n");
                r = 0;
                goto finish;
        }
        r = table_print(t, stdout);
        if (r < 0)
                log_oom();
        else if (arg.legend && arg.json == JSON_OFF)
                printf("\n%zu image%s listed.\n", n, n == 1 ? "" : "s");
finish:
        image_list_free(l, n);
        return r;
}

/* ---- image-status, show-image ---- */

/* A small regular file of the image, looked up inside it: its symlinks resolve
 * within the tree (an absolute one to /etc means the image's /etc), never to
 * the host's files, and a fifo or device there does not block or get read. */
static int image_read_file(int root_fd, const char *path, char **ret) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t n = 0;

        fd = open_regular_in_root(root_fd, path, &st);
        if (fd < 0)
                return fd;
        buf = malloc(64 * 1024 + 1);
        if (!buf)
                return -ENOMEM;
        while (n < 64 * 1024) {
                ssize_t k = read(fd, buf + n, 64 * 1024 - n);
                if (k < 0)
                        return negative_errno();
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        return 0;
}

/* KEY's value in an os-release file: quotes and backslash escapes removed. */
static char *os_release_value(const char *data, const char *key) {
        size_t kl = strlen(key);

        for (const char *line = data; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
                const char *v, *end;
                char *r, *w;
                char quote = 0;

                line += strspn(line, " \t");
                if (!strneq(line, key, kl) || line[kl] != '=')
                        continue;
                v = line + kl + 1;
                end = strchrnul(v, '\n');
                r = w = malloc((size_t) (end - v) + 1);
                if (!r)
                        return NULL;
                for (const char *p = v; p < end; p++) {
                        if (!quote && (*p == '"' || *p == '\''))
                                quote = *p;
                        else if (quote && *p == quote)
                                quote = 0;
                        else if (*p == '\\' && p + 1 < end)
                                *w++ = *++p;
                        else
                                *w++ = *p;
                }
                *w = 0;
                while (w > r && (w[-1] == ' ' || w[-1] == '\t' || w[-1] == '\r'))
                        *--w = 0;
                return r;
        }
        return NULL;
}

typedef struct ImageInside {
        char *os;         /* PRETTY_NAME, or NAME VERSION_ID */
        char *hostname;
        char *machine_id;
} ImageInside;

static void image_inside_done(ImageInside *i) {
        free(i->os);
        free(i->hostname);
        free(i->machine_id);
}

static void image_look_inside(const Image *img, ImageInside *ret) {
        _cleanup_close_ int root = -EBADF;
        _cleanup_free_ char *data = NULL;

        *ret = (ImageInside) {};
        if (img->type != IMAGE_DIRECTORY)
                return; /* raw images are not looked into (no loop devices here) */
        root = open(img->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return;
        if (image_read_file(root, "/etc/os-release", &data) >= 0 ||
            image_read_file(root, "/usr/lib/os-release", &data) >= 0) {
                ret->os = os_release_value(data, "PRETTY_NAME");
                if (isempty(ret->os)) {
                        _cleanup_free_ char *name = os_release_value(data, "NAME");
                        _cleanup_free_ char *version = os_release_value(data, "VERSION_ID");
                        free(ret->os);
                        ret->os = name ? strjoin(name, version ? " " : "", strempty(version)) : NULL;
                }
                free(data);
                data = NULL;
        }
        if (image_read_file(root, "/etc/hostname", &data) >= 0) {
                data[strcspn(data, "\n")] = 0;
                if (!isempty(data))
                        ret->hostname = strdup(data);
                free(data);
                data = NULL;
        }
        if (image_read_file(root, "/etc/machine-id", &data) >= 0) {
                data[strcspn(data, "\n")] = 0;
                if (strlen(data) == 32)
                        ret->machine_id = strdup(data);
        }
}

/* What protects partition D with dm-verity, for image-status: the image's own verity and
 * signature partitions and the side files next to it; NULL if nothing does. */
static char *partition_verity(const DissectedImage *m, const VerityConfig *v, PartitionDesignator d) {
        const char *what[5];
        char *joined = NULL;
        size_t n = 0;
        PartitionDesignator vd = partition_verity_of(d), sd = partition_verity_sig_of(d);

        if (partition_designator_is_verity(d)) {
                PartitionDesignator data = partition_verity_to_data(d);
                bool sig = d == PARTITION_ROOT_VERITY_SIG || d == PARTITION_USR_VERITY_SIG;
                return strjoin(sig ? "signature of " : "hash tree of ", partition_designator_to_string(data));
        }
        if (vd >= 0 && m->partitions[vd].found)
                what[n++] = partition_designator_to_string(vd);
        if (sd >= 0 && m->partitions[sd].found)
                what[n++] = partition_designator_to_string(sd);
        if (v->designator == d) {
                if (v->root_hash_from)
                        what[n++] = v->root_hash_from;
                if (v->sig_from)
                        what[n++] = v->sig_from;
                if (v->data_from)
                        what[n++] = v->data_from;
        }
        for (size_t i = 0; i < n; i++) {
                char *j = strjoin(joined ?: "", joined ? ", " : "", what[i]);
                free(joined);
                if (!j)
                        return NULL;
                joined = j;
        }
        return joined;
}

/* The partitions of a raw image, as dissect_image_fd() finds them (what berth --image= would
 * use), in the order of their offsets. Reads the image, attaches nothing. On an image berth
 * cannot use, *RET_ERROR says why; -EBADFD (logged) if it is no longer a regular file. */
static int image_partitions(const Image *img, Table **ret, char **ret_error) {
        static const char *const headers[] = { "DESIGNATOR", "PARTNO", "FSTYPE", "SIZE", "OFFSET", "UUID",
                                               "RO", "VERITY", NULL };
        _cleanup_(dissected_image_done) DissectedImage m = {};
        _cleanup_(verity_config_done) VerityConfig v = VERITY_CONFIG_NULL;
        _cleanup_(table_freep) Table *t = NULL;
        _cleanup_free_ char *detail = NULL;
        _cleanup_close_ int path_fd = -EBADF, fd = -EBADF;
        PartitionDesignator order[_PARTITION_DESIGNATOR_MAX];
        char fd_path[64];
        struct stat st;
        size_t n = 0;
        int level, r;

#if BERTH_TEST_HOOKS
        /* Test builds only (meson -Dtest-hooks=true): stop between finding the image and opening
         * it, so that a test can put something else under its name. */
        if (getenv("BERTH_TEST_PARK_IMAGE_OPEN"))
                (void) raise(SIGSTOP);
#endif
        /* The image was a regular file when it was listed, but anyone who can write the image
         * directory can swap in a FIFO (an open that waits for a writer forever) or a device (an
         * open acts on it, O_NONBLOCK or not) since: look at what is there through O_PATH, which
         * opens nothing, and open that inode only if it is a regular file. */
        path_fd = open(img->path, O_PATH | O_CLOEXEC);
        if (path_fd < 0)
                return negative_errno();
        if (fstat(path_fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return log_error_errno(-EBADFD,
                                       "Refusing to read image '%s': '%s' is no longer a regular file.", img->name,
                                       img->path);
        snprintf(fd_path, sizeof fd_path, "/proc/self/fd/%d", path_fd);
        fd = open(fd_path, O_RDONLY | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        r = dissect_image_fd(fd, &m, &detail);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                *ret_error = strdup(detail ?: strerror(-r));
                return *ret_error ? 0 : -ENOMEM;
        }
        /* the side files (.roothash, .verity, ...): a broken one is berth's to report at start */
        level = log_get_max_level();
        log_set_max_level(LOG_EMERG);
        r = verity_config_load(img->path, &m, NULL, 0, NULL, 0, NULL, &v);
        log_set_max_level(level);
        if (r == -ENOMEM)
                return r;

        for (PartitionDesignator d = 0; d < _PARTITION_DESIGNATOR_MAX; d++)
                if (m.partitions[d].found) {
                        size_t i = n++;
                        for (; i > 0 && m.partitions[order[i - 1]].offset > m.partitions[d].offset; i--)
                                order[i] = order[i - 1];
                        order[i] = d;
                }
        t = table_new(headers);
        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const DissectedPartition *p = &m.partitions[order[i]];
                _cleanup_free_ char *verity = partition_verity(&m, &v, order[i]);

                if (table_add(t, CELL_STRING, partition_designator_to_string(order[i])) < 0 ||
                    table_add(t, CELL_UINT, (unsigned long long) p->partno) < 0 ||
                    table_add(t, CELL_STRING, p->fstype) < 0 ||
                    table_add(t, CELL_SIZE, (unsigned long long) p->size) < 0 ||
                    table_add(t, CELL_SIZE, (unsigned long long) p->offset) < 0 ||
                    table_add(t, CELL_STRING, p->uuid) < 0 ||
                    table_add(t, CELL_BOOL, p->read_only) < 0 ||
                    table_add(t, CELL_STRING, verity) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(t);
        return 0;
}

static const char *image_read_only_reason(const Image *img) {
        if (img->vendor)
                return "yes (read-only image directory)";
        if (img->immutable)
                return img->type == IMAGE_DIRECTORY ? "yes (immutable flag)" : "yes (no write permission)";
        if (img->read_only)
                return "yes (read-only file system)";
        return "no";
}

static int image_fields(Image *img, bool show_style, Fields **ret) {
        _cleanup_(image_inside_done) ImageInside in = {};
        _cleanup_free_ char *machine = NULL;
        Fields *f;
        bool json = show_style || arg.json != JSON_OFF;
        int r = 0;

        image_compute_usage(img);
        image_look_inside(img, &in);
        (void) machine_of_image(img->path, &machine);
        f = fields_new();
        if (!f)
                return -ENOMEM;
        if (json) {
                r = r ?: fields_add(f, "Name", CELL_STRING, img->name);
                r = r ?: fields_add(f, "Path", CELL_STRING, img->path);
                r = r ?: fields_add(f, "Type", CELL_STRING, image_type_table[img->type]);
                r = r ?: fields_add(f, "ReadOnly", CELL_BOOL, img->read_only);
                r = r ?: fields_add(f, "Hidden", CELL_BOOL, img->hidden);
                r = r ?: fields_add(f, "Usage", CELL_SIZE, (unsigned long long) img->usage);
                r = r ?: fields_add(f, "CreationTimestamp", CELL_TIMESTAMP, (unsigned long long) img->crtime);
                r = r ?: fields_add(f, "ModificationTimestamp", CELL_TIMESTAMP, (unsigned long long) img->mtime);
                r = r ?: fields_add(f, "OperatingSystem", CELL_STRING, in.os);
                r = r ?: fields_add(f, "Hostname", CELL_STRING, in.hostname);
                r = r ?: fields_add(f, "MachineID", CELL_STRING, in.machine_id);
                r = r ?: fields_add(f, "UsedBy", CELL_STRING, machine);
        } else {
                r = r ?: fields_add(f, "Path", CELL_STRING, img->path);
                r = r ?: fields_add(f, "Type", CELL_STRING, image_type_table[img->type]);
                r = r ?: fields_add(f, "Read-only", CELL_STRING, image_read_only_reason(img));
                r = r ?: fields_add(f, "Usage", CELL_SIZE, (unsigned long long) img->usage);
                r = r ?: fields_add(f, "Created", CELL_TIMESTAMP, (unsigned long long) img->crtime);
                r = r ?: fields_add(f, "Modified", CELL_TIMESTAMP, (unsigned long long) img->mtime);
                if (img->type == IMAGE_DIRECTORY)
                        r = r ?: fields_add(f, "OS", CELL_STRING, in.os ?: "unknown (no os-release)");
                if (in.hostname)
                        r = r ?: fields_add(f, "Hostname", CELL_STRING, in.hostname);
                if (in.machine_id)
                        r = r ?: fields_add(f, "Machine ID", CELL_STRING, in.machine_id);
                if (machine)
                        r = r ?: fields_add(f, "Used by", CELL_STRING, machine);
        }
        if (r >= 0 && img->type == IMAGE_RAW) {
                _cleanup_(table_freep) Table *t = NULL;
                _cleanup_free_ char *error = NULL;

                r = image_partitions(img, &t, &error);
                /* -EBADFD: not the image it was a moment ago, said; no status of something else */
                if (r < 0 && r != -ENOMEM && r != -EBADFD) {
                        /* unreadable: say so, the rest of the status still stands */
                        error = strdup(strerror(-r));
                        r = error ? 0 : -ENOMEM;
                }
                if (r >= 0 && error && !json) {
                        _cleanup_free_ char *s = strjoin("none berth can use: ", error);
                        r = s ? fields_add(f, "Partitions", CELL_STRING, s) : -ENOMEM;
                } else if (r >= 0) {
                        /* the table is the block's now, also when this fails */
                        r = fields_add(f, "Partitions", CELL_TABLE, TAKE_PTR(t));
                        if (r >= 0 && error)
                                r = fields_add(f, "PartitionError", CELL_STRING, error);
                }
        }
        if (r < 0) {
                fields_free(f);
                return r;
        }
        *ret = f;
        return 0;
}

/* show-image without names: the image directories, as machinectl shows its pool. */
static int show_pool(void) {
        _cleanup_(fields_freep) Fields *f = fields_new();
        _cleanup_strv_free_ char **path = NULL;
        struct statvfs sv;
        uint64_t usage = UINT64_MAX, limit = UINT64_MAX;
        int r;

        if (!f || image_path_get(&path) < 0)
                return log_oom();
        if (statvfs(path[0], &sv) >= 0) {
                limit = (uint64_t) sv.f_blocks * sv.f_frsize;
                usage = limit - (uint64_t) sv.f_bfree * sv.f_frsize;
        }
        r = fields_add(f, "PoolPath", CELL_STRING, path[0]);
        r = r ?: fields_add(f, "PoolUsage", CELL_SIZE, (unsigned long long) usage);
        r = r ?: fields_add(f, "PoolLimit", CELL_SIZE, (unsigned long long) limit);
        r = r ?: fields_add(f, "ImagePath", CELL_STRV, path);
        if (r < 0)
                return log_oom();
        return fields_print(f, stdout, true);
}

int verb_image_status(int argc, char *argv[]) {
        bool show = streq(argv[0], "show-image");
        bool many = argc > 2, first = true;
        int ret = 0, r;

        if (argc <= 1)
                return show_pool();

        if (arg.json != JSON_OFF && many)
                fputs("[", stdout);
        for (int i = 1; i < argc; i++) {
                _cleanup_(image_freep) Image *img = NULL;
                _cleanup_(fields_freep) Fields *f = NULL;

                r = image_get(argv[i], &img);
                if (r < 0) {
                        ret = r;
                        continue;
                }
                r = image_fields(img, show, &f);
                if (r == -ENOMEM)
                        return log_oom();
                if (r < 0) {
                        ret = r;
                        continue;
                }
                if (arg.json != JSON_OFF) {
                        if (many && !first)
                                fputs(",", stdout);
                } else if (!first)
                        fputc('\n', stdout);
                if (!show && arg.json == JSON_OFF)
                        printf("%s%s%s\n", colors_enabled() ? "\033[1m" : "", img->name,
                               colors_enabled() ? "\033[0m" : "");
                first = false;
                r = fields_print(f, stdout, show);
                if (r < 0)
                        return log_oom();
        }
        if (arg.json != JSON_OFF && many)
                fputs("]\n", stdout);
        return ret;
}

/* ---- copies with a progress line ---- */

static int copy_progress_cb(const CopyContext *c, void *userdata) {
        if (cancelled)
                return -ECANCELED;
        progress_bar_update(userdata, c->n_bytes);
        return 0;
}

bool progress_wanted(void) {
        return !arg.quiet && isatty(STDERR_FILENO);
}

/* Copies the directory or raw file SRC_PATH into the temporary T. */
int copy_into_temp(const char *src_path, bool directory, const char *prefix, TempImage *t) {
        _cleanup_(copy_context_done) CopyContext c = {};
        _cleanup_close_ int src = -EBADF;
        ProgressBar bar;
        uint64_t usage = 0, total = 0;
        int r;

        src = open(src_path, O_RDONLY | O_CLOEXEC | O_NOCTTY | (directory ? O_DIRECTORY : 0));
        if (src < 0)
                return log_error_errno(negative_errno(), "Failed to open '%s': %m", src_path);
        if (progress_wanted()) {
                struct stat st;
                if (directory)
                        (void) tree_usage_fd(src, &usage, &total);
                else if (fstat(src, &st) >= 0)
                        total = (uint64_t) st.st_size;
        }
        progress_bar_init(&bar, stderr, prefix, total, progress_wanted());
        c = (CopyContext) {
                .flags = COPY_SAME_FS,
                .progress = copy_progress_cb,
                .userdata = &bar,
        };
        cancel_signals_install();
        r = directory ? copy_tree_fd(src, t->fd, &c) : copy_file_fd(src, t->fd, &c);
        progress_bar_finish(&bar);
        if (r == -ECANCELED)
                return log_error_errno(r, "Interrupted: the partial copy is removed.");
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return log_error_errno(r, "Failed to %s '%s%s%s': %m", c.error_op ?: "copy", src_path,
                                       directory ? "/" : "", directory ? strempty(c.error_path) : "");
        log_debug("Copied %" PRIu64 " files, %" PRIu64 " bytes.", c.n_files, c.n_bytes);
        return 0;
}

/* After the new image is in place: --read-only. */
int finish_new_image(const char *pool, const char *name, ImageType type) {
        _cleanup_free_ char *p = strjoin(pool, "/", name, type == IMAGE_RAW ? ".raw" : "");
        int r;

        if (!p)
                return log_oom();
        if (type == IMAGE_RAW && !arg.read_only) {
                /* a clone of a read-only raw image is writable, as with machinectl */
                r = image_set_read_only(p, type, false);
                if (r < 0)
                        log_warning_errno(r, "Failed to make '%s' writable, ignoring: %m", p);
                return 0;
        }
        if (!arg.read_only)
                return 0;
        r = image_set_read_only(p, type, true);
        if (r < 0)
                return log_read_only_error(r, name, p);
        return 0;
}

/* ---- clone ---- */

int verb_clone(int argc, char *argv[]) {
        _cleanup_(image_freep) Image *src = NULL, *existing = NULL;
        _cleanup_(temp_image_done) TempImage t = TEMP_IMAGE_NULL;
        _cleanup_free_ char *pool = NULL, *prefix = NULL, *final = NULL;
        _cleanup_close_ int lock = -EBADF;
        const char *new_name = argv[2];
        int r;

        r = image_get(argv[1], &src);
        if (r < 0)
                return r;
        r = prepare_target(new_name, "replace", &existing, &lock);
        if (r < 0)
                return r;
        r = image_pool_writable(&pool);
        if (r < 0)
                return r;
        r = temp_image_make(pool, new_name, src->type == IMAGE_DIRECTORY, &t);
        if (r < 0)
                return r;
        prefix = strjoin("Cloning '", src->name, "'");
        final = strjoin(new_name, src->type == IMAGE_RAW ? ".raw" : "");
        if (!prefix || !final)
                return log_oom();
        r = copy_into_temp(src->path, src->type == IMAGE_DIRECTORY, prefix, &t);
        if (r < 0)
                return r;
        r = temp_image_commit(&t, pool, final, existing);
        if (r < 0)
                return r;
        settings_copy(src, pool, new_name);
        return finish_new_image(pool, new_name, src->type);
}

/* ---- rename ---- */

int verb_rename(int argc, char *argv[]) {
        _cleanup_(image_freep) Image *img = NULL, *other = NULL;
        _cleanup_free_ char *target = NULL;
        _cleanup_close_ int lock = -EBADF;
        const char *new_name = argv[2];
        int r;

        r = image_get(argv[1], &img);
        if (r < 0)
                return r;
        r = check_name(new_name);
        if (r < 0)
                return r;
        r = image_find(new_name, &other);
        if (r >= 0)
                return log_error_errno(-EEXIST, "Cannot rename image '%s' to '%s': image '%s' exists already in '%s'.",
                                       img->name, new_name, new_name, other->pool);
        if (r != -ENOENT)
                return log_error_errno(r, "Failed to look up image '%s': %m", new_name);
        r = image_check_writable(img, "rename", &lock);
        if (r < 0)
                return r;
        target = strjoin(img->pool, "/", new_name, img->type == IMAGE_RAW ? ".raw" : "");
        if (!target)
                return log_oom();
        if (renameat2(AT_FDCWD, img->path, AT_FDCWD, target, RENAME_NOREPLACE) < 0)
                return log_error_errno(negative_errno(), "Failed to rename image '%s' to '%s': %m", img->name,
                                       new_name);
        settings_move(img, new_name);
        return 0;
}

/* ---- remove, clean ---- */

/* The caller checked and locked it. A directory first moves out of the way
 * (a temporary name), so that it is gone at once and a failure half way
 * leaves only a hidden temporary that 'clean' removes later. */
static int image_remove(const Image *img) {
        _cleanup_free_ char *tmp = NULL;
        struct stat st;
        uint8_t rnd[4];
        char suffix[16];
        int r;

        if (lstat(img->path, &st) < 0)
                return log_error_errno(negative_errno(), "Failed to remove image '%s': %m", img->name);
        if (!S_ISDIR(st.st_mode)) {
                /* a raw file, or a symlink to a tree elsewhere: only the name goes */
                if (unlink(img->path) < 0)
                        return log_error_errno(negative_errno(), "Failed to remove image '%s': %m", img->name);
                settings_move(img, NULL);
                return 0;
        }
        if (getrandom(rnd, sizeof rnd, 0) != sizeof rnd)
                return log_error_errno(negative_errno(), "Failed to get random bytes: %m");
        snprintf(suffix, sizeof suffix, "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
        tmp = strjoin(img->pool, "/" TEMP_PREFIX "removing-", img->name, "-", suffix);
        if (!tmp)
                return log_oom();
        if (renameat2(AT_FDCWD, img->path, AT_FDCWD, tmp, RENAME_NOREPLACE) < 0)
                return log_error_errno(negative_errno(), "Failed to remove image '%s': %m", img->name);
        settings_move(img, NULL);
        r = rm_rf(tmp);
        if (r < 0)
                return log_error_errno(r, "Failed to remove all of image '%s': %m; the rest is in '%s' "
                                          "('berthctl clean' retries).", img->name, tmp);
        return 0;
}

int verb_remove(int argc, char *argv[]) {
        int ret = 0, r;

        for (int i = 1; i < argc; i++) {
                _cleanup_(image_freep) Image *img = NULL;
                _cleanup_close_ int lock = -EBADF;

                r = image_get(argv[i], &img);
                if (r >= 0)
                        r = image_check_writable(img, "remove", &lock);
                if (r >= 0)
                        r = image_remove(img);
                if (r >= 0) {
                        /* the log of its last 'berthctl start' goes with it */
                        _cleanup_free_ char *log = strjoin(registry_run_dir(), "/logs/", img->name, ".log");
                        if (log && unlink(log) < 0 && errno != ENOENT)
                                log_warning_errno(negative_errno(), "Failed to remove '%s', ignoring: %m", log);
                }
                if (r < 0)
                        ret = r;
        }
        return ret;
}

/* Temporaries of berthctl processes that are gone: their lock is free. */
static int clean_temporaries(const char *pool) {
        _cleanup_closedir_ DIR *d = opendir(pool);
        struct dirent *de;
        int ret = 0;

        if (!d)
                return 0;
        while ((de = readdir(d))) {
                _cleanup_free_ char *p = NULL;
                _cleanup_close_ int fd = -EBADF;

                if (!startswith(de->d_name, TEMP_PREFIX))
                        continue;
                fd = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
                if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0)
                        continue; /* in flight */
                p = path_join(pool, de->d_name);
                if (!p)
                        return log_oom();
                int r = rm_rf(p);
                if (r < 0)
                        ret = log_error_errno(r, "Failed to remove the leftover '%s': %m", p);
                else if (!arg.quiet)
                        printf("Removed leftover '%s'.\n", p);
        }
        return ret;
}

int verb_clean(int argc, char *argv[]) {
        _cleanup_free_ char *pool = NULL;
        Image **l = NULL;
        size_t n = 0;
        int ret = 0, r;

        r = image_discover(true, &l, &n);
        if (r < 0)
                return log_error_errno(r, "Failed to list images: %m");
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *machine = NULL;
                Image *img = l[i];
                int lock = -EBADF;
                char sz[32];

                r = 0;
                if (!img->hidden && !arg.all)
                        continue;
                if (img->vendor)
                        continue; /* never ours to remove */
                if (img->immutable) {
                        if (!arg.quiet)
                                printf("Kept read-only image '%s'.\n", img->name);
                        continue;
                }
                if (img->type == IMAGE_DIRECTORY) {
                        r = registry_lock_root(img->path, false, &lock);
                        if (r < 0 && r != -EBUSY) {
                                ret = log_error_errno(r, "Failed to lock image '%s': %m", img->name);
                                continue;
                        }
                }
                if (machine_of_image(img->path, &machine) > 0 || r == -EBUSY) {
                        safe_close(lock);
                        if (!arg.quiet)
                                printf("Kept image '%s': in use%s%s%s.\n", img->name, machine ? " by machine '" : "",
                                       strempty(machine), machine ? "'" : "");
                        continue;
                }
                image_compute_usage(img);
                r = image_remove(img);
                safe_close(lock);
                if (r < 0) {
                        ret = r;
                        continue;
                }
                if (!arg.quiet)
                        printf("Removed image '%s', freed %s.\n", img->name, format_bytes(img->usage, sz, sizeof sz));
        }
        image_list_free(l, n);

        r = image_pool_writable(&pool);
        if (r < 0)
                return r;
        r = clean_temporaries(pool);
        return ret < 0 ? ret : r;
}

/* ---- read-only ---- */

int verb_read_only(int argc, char *argv[]) {
        _cleanup_(image_freep) Image *img = NULL;
        _cleanup_close_ int lock = -EBADF;
        int b = 1, r;

        r = image_get(argv[1], &img);
        if (r < 0)
                return r;
        if (argc > 2) {
                b = parse_boolean(argv[2]);
                if (b < 0)
                        return log_error_errno(-EINVAL, "Invalid boolean '%s': expected yes or no.", argv[2]);
        }
        if (img->vendor) {
                if (b)
                        return 0;
                return log_error_errno(-EROFS, "Cannot make image '%s' writable: it is in '%s', which is read-only "
                                               "(clone it to get a writable copy).", img->name, img->pool);
        }
        if (img->read_only && !img->immutable)
                return log_error_errno(-EROFS, "Cannot change image '%s': it is on a read-only file system.",
                                       img->name);
        if (img->immutable == (bool) b)
                return 0;
        r = image_lock(img, "change the read-only flag of", &lock);
        if (r < 0)
                return r;
        r = image_set_read_only(img->path, img->type, b);
        if (r < 0)
                return log_read_only_error(r, img->name, img->path);
        return 0;
}
