/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The root tree: --template= (copy a tree into a missing or empty directory),
 * and the mount that the container pivots into: a plain bind of the tree,
 * an overlay with a throw-away upper layer (--ephemeral, --volatile=overlay),
 * a tmpfs with the tree's /usr (--volatile=yes) or the tree with a tmpfs /var
 * (--volatile=state); --read-only last.
 *
 * Trust boundary: s->directory and s->template are host paths given by the
 * user and resolved normally. Paths inside the tree (its /usr and /var) are
 * hostile and resolved with openat2(RESOLVE_IN_ROOT), mounts attached to the
 * resolved fds. The template copy never follows a symlink of the template and
 * writes only below the new directory through fds.
 */

#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "berth-mount.h"
#include "berth-rootsrc.h"
#include "berth-userns.h"
#include "copy.h"
#include "log.h"
#include "util.h"

/* ---------------------------------------------------------------------------
 * --template=: in the parent, before the container starts
 * ------------------------------------------------------------------------- */

typedef struct TemplateProgress {
        const char *template;
        uint64_t last;          /* usec, CLOCK_MONOTONIC */
        bool enabled;           /* stderr is a terminal */
} TemplateProgress;

static void template_progress_show(const CopyContext *c, TemplateProgress *p, bool final) {
        uint64_t n;

        if (!p->enabled)
                return;
        n = now_usec(CLOCK_MONOTONIC);
        if (!final && n - p->last < 200 * USEC_PER_MSEC)
                return;
        p->last = n;
        fprintf(stderr, "\rCopying template '%s': %" PRIu64 " files, %" PRIu64 " MiB%s", p->template, c->n_files,
                c->n_bytes >> 20, final ? "\n" : "");
}

static int template_progress(const CopyContext *c, void *userdata) {
        template_progress_show(c, userdata, false);
        return 0;
}

/* 1 if PATH is missing or an empty directory, 0 if it has entries */
static int dir_is_missing_or_empty(const char *path) {
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;

        d = opendir(path);
        if (!d)
                return errno == ENOENT ? 1 : negative_errno();
        while ((errno = 0, de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        return 0;
        return errno != 0 ? negative_errno() : 1;
}

int root_prepare(const Settings *s) {
        _cleanup_close_ int src = -EBADF, dst = -EBADF;
        _cleanup_free_ char *tmp = NULL;
        struct stat st;
        _cleanup_(copy_context_done) CopyContext c = {};
        TemplateProgress progress = {};
        uint64_t start;
        int r;

        /* In the parent, on the host, before anything is set up. */
        if (!s->template)
                return 0;

        r = dir_is_missing_or_empty(s->directory);
        if (r < 0)
                return log_error_errno(r, "Failed to check whether '%s' is empty: %m", s->directory);
        if (r == 0)
                return 0; /* already populated: the template is not used */

        src = open(s->template, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (src < 0 || fstat(src, &st) < 0)
                return log_error_errno(negative_errno(), "Failed to open template '%s': %m (--template=)",
                                       s->template);

        /* Copy into a hidden sibling and rename it into place: an interrupted
         * copy never leaves a half-populated tree that the next start would
         * take as complete, and rename() also replaces an empty directory. */
        r = mkdir_parents(s->directory, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to create the parent directories of '%s': %m", s->directory);
        {
                _cleanup_free_ char *parent = strdup(s->directory);
                if (!parent)
                        return log_oom();
                char *slash = strrchr(parent, '/');
                *slash = 0;
                tmp = strjoin(parent, "/.#", slash + 1, ".berth-template-XXXXXX");
                if (!tmp)
                        return log_oom();
        }
        if (!mkdtemp(tmp))
                return log_error_errno(negative_errno(), "Failed to create a directory next to '%s': %m",
                                       s->directory);
        dst = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dst < 0) {
                r = log_error_errno(negative_errno(), "Failed to open '%s': %m", tmp);
                goto fail;
        }

        progress = (TemplateProgress) {
                .template = s->template,
                .enabled = !s->quiet && isatty(STDERR_FILENO),
        };
        /* mount points inside the template: the directory, not what is mounted there */
        c = (CopyContext) {
                .flags = COPY_SAME_FS,
                .progress = template_progress,
                .userdata = &progress,
        };
        start = now_usec(CLOCK_MONOTONIC);
        if (!s->quiet)
                log_info("Populating '%s' from template '%s'.", s->directory, s->template);

        r = copy_tree_fd(src, dst, &c);
        if (r == -ENOMEM) {
                log_oom();
                goto fail;
        }
        if (r < 0) {
                log_error_errno(r, "Failed to %s '%s/%s': %m", c.error_op ?: "copy", s->template,
                                c.error_path ?: ".");
                goto fail;
        }
        template_progress_show(&c, &progress, true);

        if (rename(tmp, s->directory) < 0) {
                r = negative_errno();
                /* Another instance populated it meanwhile: use theirs. */
                if ((r == -ENOTEMPTY || r == -EEXIST) && dir_is_missing_or_empty(s->directory) == 0) {
                        (void) rm_rf(tmp);
                        return 0;
                }
                log_error_errno(r, "Failed to move the copy of template '%s' to '%s': %m", s->template,
                                s->directory);
                goto fail;
        }
        if (!s->quiet)
                log_debug("Copied %" PRIu64 " files (%" PRIu64 " MiB) in %" PRIu64 " ms.", c.n_files,
                          c.n_bytes >> 20, (now_usec(CLOCK_MONOTONIC) - start) / USEC_PER_MSEC);
        return 0;

fail:
        if (progress.enabled && c.n_files > 0)
                fputc('\n', stderr);
        (void) rm_rf(tmp);
        return r;
}

/* ---------------------------------------------------------------------------
 * The root mount: in the child
 * ------------------------------------------------------------------------- */

/* The tree, with the mounts below it, attached on s->directory: the root
 * source's detached mount TREE, or (-EBADF) a new clone of what is mounted
 * there now. With read_only its own sub-mounts become read-only now; the top
 * stays writable until root_finalize() so that mount points can still be
 * created in it. */
static int bind_tree(const Settings *s, int tree_fd, bool read_only, int idmap_fd) {
        _cleanup_close_ int clone = -EBADF;
        int tree = tree_fd, r;

        if (tree < 0) {
                tree = clone = open_tree(AT_FDCWD, s->directory, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
                if (tree < 0)
                        return log_error_errno(negative_errno(), "Failed to bind-mount the tree '%s': %m",
                                               s->directory);
        }
        /* only a mount not yet attached can be idmapped */
        if (idmap_fd >= 0) {
                r = mount_make_idmapped(tree, idmap_fd);
                if (r < 0)
                        return log_error_errno(r, "Failed to mount the tree '%s' idmapped: %m. Use "
                                                  "--private-users-ownership=off with a tree shifted to the range, "
                                                  "or run without a user namespace.", s->directory);
        }
        if (read_only) {
                r = mount_attr_set(tree, MOUNT_ATTR_RDONLY, 0, 0, true);
                if (r >= 0)
                        r = mount_attr_set(tree, 0, MOUNT_ATTR_RDONLY, 0, false);
                if (r < 0)
                        return log_error_errno(r, "Failed to make the mounts below '%s' read-only: %m",
                                               s->directory);
        }
        r = mount_attach(tree, AT_FDCWD, s->directory);
        if (r < 0)
                return log_error_errno(r, "Failed to bind-mount the tree '%s' onto itself: %m", s->directory);
        return 0;
}

/* --ephemeral and --volatile=overlay: the tree as the lower layer, upper and
 * work directories on a tmpfs that exists only in this mount namespace (on
 * BERTH_STAGING_DIR). When the namespace dies, even by SIGKILL, the kernel
 * drops it all: nothing is left on the host and nothing has to be copied.
 * With the tree mounted idmapped (ownership map) the lower layer is the root
 * source's clone, idmapped and attached on the staging tmpfs (overlayfs takes
 * idmapped layers since Linux 5.19): the overlay then shows the guest the tree
 * as a plain -U run does. The upper layer takes the owner and mode of the
 * lower root as seen through that mapping, so the guest's root owns its root
 * directory; what the guest writes lands on the tmpfs with its host ids. */
static int mount_overlay_root(const Settings *s, const RootSource *rs, const UserNamespace *u) {
        _cleanup_close_ int tmp = -EBADF, fs_fd = -EBADF, mnt = -EBADF;
        _cleanup_free_ char *lower = NULL;
        bool idmap = u && u->fd >= 0 && u->idmap;
        struct stat st;
        char upper[sizeof BERTH_STAGING_DIR + 16], work[sizeof BERTH_STAGING_DIR + 16],
                lower_dir[sizeof BERTH_STAGING_DIR + 16];
        int r;

        r = mkdir_p(BERTH_STAGING_DIR, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to create '%s': %m", BERTH_STAGING_DIR);
        r = mount_tmpfs_new("mode=0755", MOUNT_ATTR_NODEV | MOUNT_ATTR_STRICTATIME, 0, NULL, 0, &tmp);
        if (r < 0)
                return log_error_errno(r, "Failed to create the tmpfs for the upper layer: %m");
        if (mkdirat(tmp, "upper", 0755) < 0 || mkdirat(tmp, "work", 0700) < 0 ||
            (idmap && mkdirat(tmp, "lower", 0755) < 0))
                return log_error_errno(negative_errno(), "Failed to create the upper layer: %m");
        r = mount_attach(tmp, AT_FDCWD, BERTH_STAGING_DIR);
        if (r < 0)
                return log_error_errno(r, "Failed to mount a tmpfs on '%s': %m", BERTH_STAGING_DIR);

        snprintf(upper, sizeof upper, "%s/upper", BERTH_STAGING_DIR);
        snprintf(work, sizeof work, "%s/work", BERTH_STAGING_DIR);
        snprintf(lower_dir, sizeof lower_dir, "%s/lower", BERTH_STAGING_DIR);
        if (idmap) {
                /* only a mount not yet attached can be idmapped: the root source's clone is one */
                r = mount_make_idmapped(rs->mount_fd, u->fd);
                if (r < 0)
                        return log_error_errno(r, "Failed to mount the tree '%s' idmapped: %m. Use "
                                                  "--private-users-ownership=off with a tree shifted to the range, "
                                                  "or run without a user namespace.", s->directory);
                r = mount_attach(rs->mount_fd, AT_FDCWD, lower_dir);
                if (r < 0)
                        return log_error_errno(r, "Failed to mount the tree '%s' as the lower layer: %m",
                                               s->directory);
        }
        if (stat(idmap ? lower_dir : s->directory, &st) < 0)
                return log_error_errno(negative_errno(), "Failed to open the tree '%s': %m", s->directory);
        /* the overlay's root directory takes its owner and mode from the upper one */
        if (fchownat(tmp, "upper", st.st_uid, st.st_gid, 0) < 0 ||
            fchmodat(tmp, "upper", st.st_mode & 07777, 0) < 0)
                return log_error_errno(negative_errno(), "Failed to set up the upper layer: %m");

        lower = overlay_option_escape(idmap ? lower_dir : s->directory);
        if (!lower)
                return log_oom();

        fs_fd = fsopen("overlay", FSOPEN_CLOEXEC);
        if (fs_fd < 0)
                return log_error_errno(negative_errno(), "Failed to set up an overlay file system: %m");
        if (fsconfig(fs_fd, FSCONFIG_SET_STRING, "source", "overlay", 0) < 0 ||
            fsconfig(fs_fd, FSCONFIG_SET_STRING, "lowerdir", lower, 0) < 0 ||
            fsconfig(fs_fd, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0 ||
            fsconfig(fs_fd, FSCONFIG_SET_STRING, "workdir", work, 0) < 0 ||
            fsconfig(fs_fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
                char msg[512] = "";
                ssize_t k;

                r = negative_errno();
                k = read(fs_fd, msg, sizeof msg - 1);
                msg[k > 0 ? k : 0] = 0;
                msg[strcspn(msg, "\n")] = 0;
                return log_error_errno(r, "Failed to mount an overlay of '%s': %m%s%s", s->directory,
                                       k > 2 ? ": " : "", k > 2 ? msg + 2 : "");
        }
        mnt = fsmount(fs_fd, FSMOUNT_CLOEXEC, 0);
        if (mnt < 0)
                return log_error_errno(negative_errno(), "Failed to mount an overlay of '%s': %m", s->directory);
        r = mount_attach(mnt, AT_FDCWD, s->directory);
        if (r < 0)
                return log_error_errno(r, "Failed to mount the overlay on '%s': %m", s->directory);
        return 0;
}

/* --volatile=yes: a fresh tmpfs as root, with the tree's /usr read-only in it
 * and the compatibility symlinks (/bin -> usr/bin, ...) a merged-/usr OS
 * expects. With a user namespace the tmpfs and what berth makes in it belong
 * to the container's root, and /usr is idmapped as the tree would be. */
static int mount_volatile_yes(const Settings *s, const UserNamespace *u) {
        static const char *const dirs[] = { "etc", "var", "dev", "proc", "sys", "run", "tmp", "root", "home", "mnt" };
        static const char *const links[] = { "bin", "sbin", "lib", "lib32", "lib64", "libx32" };
        _cleanup_close_ int tree = -EBADF, usr = -EBADF, usr_tree = -EBADF, tmp = -EBADF, root = -EBADF;
        uid_t owner = userns_owner(u);
        int r;

        /* by path, in our mount namespace: the kernel clones no part of a detached mount (the root
         * source's) with open_tree() */
        tree = open(s->directory, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (tree < 0)
                return log_error_errno(negative_errno(), "Failed to open the tree '%s': %m", s->directory);
        usr = open_in_root(tree, "usr", O_PATH | O_DIRECTORY);
        if (usr < 0)
                return log_error_errno(usr, "Failed to open /usr of the tree '%s': %m (--volatile=yes needs a tree "
                                            "with /usr)", s->directory);
        usr_tree = open_tree(usr, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
        if (usr_tree < 0)
                return log_error_errno(negative_errno(), "Failed to bind /usr of the tree: %m");
        if (u && u->fd >= 0 && u->idmap) {
                r = mount_make_idmapped(usr_tree, u->fd);
                if (r < 0)
                        return log_error_errno(r, "Failed to mount /usr of the tree '%s' idmapped: %m", s->directory);
        }
        r = mount_attr_set(usr_tree, MOUNT_ATTR_RDONLY, 0, 0, true);
        if (r < 0)
                return log_error_errno(r, "Failed to make /usr read-only: %m");

        r = mount_tmpfs_new("mode=0755", MOUNT_ATTR_NODEV | MOUNT_ATTR_STRICTATIME, owner, NULL, 0, &tmp);
        if (r < 0)
                return log_error_errno(r, "Failed to create the tmpfs root: %m");
        r = mount_attach(tmp, AT_FDCWD, s->directory);
        if (r < 0)
                return log_error_errno(r, "Failed to mount a tmpfs on '%s': %m", s->directory);

        /* our own fresh tmpfs: nothing hostile in it yet */
        root = open(s->directory, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return log_error_errno(negative_errno(), "Failed to open the tmpfs root: %m");
        if (mkdirat(root, "usr", 0755) < 0)
                return log_error_errno(negative_errno(), "Failed to create /usr: %m");
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++)
                if (mkdirat(root, dirs[i], streq(dirs[i], "root") ? 0700 : 0755) < 0 ||
                    (owner != 0 && fchownat(root, dirs[i], owner, owner, 0) < 0))
                        return log_error_errno(negative_errno(), "Failed to create /%s: %m", dirs[i]);
        (void) fchmodat(root, "tmp", 01777, 0);

        r = mount_attach(usr_tree, root, "usr");
        if (r < 0)
                return log_error_errno(r, "Failed to mount /usr of the tree: %m");

        for (size_t i = 0; i < ELEMENTSOF(links); i++) {
                char target[32];
                struct stat st;

                snprintf(target, sizeof target, "usr/%s", links[i]);
                if (fstatat(root, target, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
                        continue;
                if (symlinkat(target, root, links[i]) < 0 ||
                    (owner != 0 && fchownat(root, links[i], owner, owner, AT_SYMLINK_NOFOLLOW) < 0))
                        return log_error_errno(negative_errno(), "Failed to create /%s: %m", links[i]);
        }
        return 0;
}

/* --volatile=state: the tree (made read-only by root_finalize) with a fresh
 * tmpfs on /var, which belongs to the container's root with a user namespace. */
static int mount_volatile_state(const Settings *s, int tree_fd, const UserNamespace *u) {
        _cleanup_close_ int root = -EBADF, var = -EBADF, tmp = -EBADF;
        uid_t owner = userns_owner(u);
        int r;

        r = bind_tree(s, tree_fd, true, u && u->fd >= 0 && u->idmap ? u->fd : -EBADF);
        if (r < 0)
                return r;

        root = open(s->directory, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return log_error_errno(negative_errno(), "Failed to open the tree '%s': %m", s->directory);
        var = open_in_root(root, "var", O_PATH | O_DIRECTORY);
        if (var == -ENOENT) {
                r = create_owned(root, "var", S_IFDIR | 0755, owner);
                if (r < 0)
                        return log_error_errno(r, "Failed to create /var in the tree: %m");
                var = open_in_root(root, "var", O_PATH | O_DIRECTORY);
        }
        if (var < 0)
                return log_error_errno(var, "Failed to open /var of the tree '%s': %m", s->directory);

        r = mount_tmpfs_new("mode=0755", MOUNT_ATTR_NODEV | MOUNT_ATTR_STRICTATIME, owner, NULL, 0, &tmp);
        if (r < 0)
                return log_error_errno(r, "Failed to create the tmpfs for /var: %m");
        r = mount_attach(tmp, var, "");
        if (r < 0)
                return log_error_errno(r, "Failed to mount a tmpfs on /var: %m");
        return 0;
}

/* --pivot-root=NEW[:OLD], as nspawn's (OSTree trees hold several deployments; the boot loader and
 * initrd would pick one): the directory NEW of the tree, with the mounts below it, is stacked on
 * the tree's mount point and becomes the container's root; the whole tree appears at OLD inside
 * it, or nowhere. Both paths are the tree's (hostile) and resolved in it with RESOLVE_IN_ROOT, the
 * mounts attached to the resolved fds: no symlink planted in the tree leads out of it. The clones
 * keep an ID mapping the tree is mounted with. */
static int pivot_inner_root(const Settings *s) {
        _cleanup_close_ int top = -EBADF, inner = -EBADF, inner_tree = -EBADF, old_tree = -EBADF,
                            new_top = -EBADF, old_dir = -EBADF;
        const char *new_path = s->pivot_root[0], *old_path = s->pivot_root[1];
        int r;

        top = open(s->directory, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (top < 0)
                return log_error_errno(negative_errno(), "Failed to open the tree '%s': %m", s->directory);
        inner = open_in_root(top, new_path, O_PATH | O_DIRECTORY);
        if (inner < 0)
                return log_error_errno(inner, "Cannot use '%s' of the tree as its root (--pivot-root=): %m", new_path);
        inner_tree = open_tree(inner, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
        if (inner_tree < 0)
                return log_error_errno(negative_errno(), "Failed to bind '%s' of the tree (--pivot-root=): %m", new_path);
        if (old_path) {
                old_tree = open_tree(top, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
                if (old_tree < 0)
                        return log_error_errno(negative_errno(), "Failed to bind the tree '%s': %m", s->directory);
                if (s->read_only) {
                        r = mount_attr_set(old_tree, MOUNT_ATTR_RDONLY, 0, 0, true);
                        if (r < 0)
                                return log_error_errno(r, "Failed to make the old root read-only: %m");
                }
        }
        r = mount_attach(inner_tree, AT_FDCWD, s->directory);
        if (r < 0)
                return log_error_errno(r, "Failed to mount '%s' of the tree as its root (--pivot-root=): %m", new_path);
        if (!old_path)
                return 0;

        new_top = open(s->directory, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (new_top < 0)
                return log_error_errno(negative_errno(), "Failed to open the new root '%s': %m", new_path);
        old_dir = open_in_root(new_top, old_path, O_PATH | O_DIRECTORY);
        if (old_dir < 0)
                return log_error_errno(old_dir, "Cannot put the old root on '%s' in '%s' (--pivot-root=): %m",
                                       old_path, new_path);
        r = mount_attach(old_tree, old_dir, "");
        if (r < 0)
                return log_error_errno(r, "Failed to mount the old root on '%s' (--pivot-root=): %m", old_path);
        return 0;
}

int root_mount(const Settings *s, const RootSource *root_source, const UserNamespace *u, char **ret_root) {
        int idmap_fd = u && u->fd >= 0 && u->idmap ? u->fd : -EBADF;
        char *root;
        int r;

        /* In the container's child: new mount namespace, propagation to the
         * host already cut (slave), still the host's root. */
        if (root_source->type == ROOT_SOURCE_IMAGE) {
                /* the image's tree shows up here, in our namespace only; the overlay of
                 * --ephemeral is part of it already (the monitor made it fd-based), and so is
                 * the idmapping of its partitions: what is made here belongs to the
                 * container's root, nothing is idmapped again */
                UserNamespace owner_only = u ? *u : USER_NAMESPACE_NULL;

                owner_only.idmap = false;
                r = mount_attach(root_source->mount_fd, AT_FDCWD, s->directory);
                if (r < 0)
                        return log_error_errno(r, "Failed to mount image '%s' on '%s': %m", s->image, s->directory);
                if (s->ephemeral || s->volatile_mode == VOLATILE_OVERLAY)
                        r = bind_tree(s, -EBADF, false, -EBADF);
                else if (s->volatile_mode == VOLATILE_YES)
                        r = mount_volatile_yes(s, &owner_only);
                else if (s->volatile_mode == VOLATILE_STATE)
                        r = mount_volatile_state(s, -EBADF, &owner_only);
                else
                        r = bind_tree(s, -EBADF, s->read_only, -EBADF);
        } else if (s->ephemeral || s->volatile_mode == VOLATILE_OVERLAY)
                r = mount_overlay_root(s, root_source, u);
        else if (s->volatile_mode == VOLATILE_YES)
                r = mount_volatile_yes(s, u);
        else if (s->volatile_mode == VOLATILE_STATE)
                r = mount_volatile_state(s, root_source->mount_fd, u);
        else
                r = bind_tree(s, root_source->mount_fd, s->read_only, idmap_fd);
        if (r >= 0 && s->pivot_root)
                r = pivot_inner_root(s);
        if (r < 0)
                return r;

        root = strdup(s->directory);
        if (!root)
                return log_oom();
        *ret_root = root;
        return 0;
}

int root_finalize(const char *root, const Settings *s) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        /* --read-only and --volatile=state make the root file system
         * read-only, not recursively: /dev, /run, /tmp, /var (state) and the
         * custom mounts on top stay as they are, like nspawn. */
        if (!s->read_only && s->volatile_mode != VOLATILE_STATE)
                return 0;

        fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(negative_errno(), "Failed to open the container root '%s': %m", root);
        r = mount_attr_set(fd, MOUNT_ATTR_RDONLY, 0, 0, false);
        if (r < 0)
                return log_error_errno(r, "Failed to make the container root read-only: %m");
        return 0;
}
