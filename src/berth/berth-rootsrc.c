/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth-mount.h"
#include "berth-rootsrc.h"
#include "log.h"
#include "registry.h"
#include "util.h"

static const char *const root_source_type_table[_ROOT_SOURCE_TYPE_MAX] = {
        [ROOT_SOURCE_DIRECTORY] = "directory",
        [ROOT_SOURCE_IMAGE] = "image",
};

const char *root_source_type_to_string(RootSourceType t) {
        return t >= 0 && t < _ROOT_SOURCE_TYPE_MAX ? root_source_type_table[t] : NULL;
}

int root_source_open(const Settings *s, RootSource *ret) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        fd = open_tree(AT_FDCWD, s->directory, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
        if (fd < 0)
                return log_error_errno(negative_errno(), "Cannot open container tree '%s': %m", s->directory);
        /* A clone of a shared mount joins its peer group: what the container mounts below its
         * root would reach the host. Slave: the host's later mounts still reach in, nothing goes
         * out (as a container's mount namespace made MS_SLAVE has it). */
        r = mount_attr_set(fd, 0, 0, MS_SLAVE, true);
        if (r < 0)
                return log_error_errno(r, "Failed to cut the propagation of the tree '%s' to the host: %m",
                                       s->directory);
        *ret = (RootSource) {
                .type = ROOT_SOURCE_DIRECTORY,
                .path = s->directory,
                .mount_fd = TAKE_FD(fd),
        };
        return 0;
}

int root_source_from_image(const Settings *s, int tree_fd, RootSource *ret) {
        int fd;

        fd = fcntl(tree_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return log_error_errno(negative_errno(), "Failed to duplicate the tree of image '%s': %m", s->image);
        *ret = (RootSource) {
                .type = ROOT_SOURCE_IMAGE,
                .path = s->image,
                .mount_fd = fd,
        };
        return 0;
}

void root_source_done(RootSource *rs) {
        safe_close(rs->mount_fd);
        *rs = ROOT_SOURCE_NULL;
}

int root_source_lock(const RootSource *rs, bool shared, int *ret_fd) {
        int fd;

        /* flock() needs a real open file, not the O_PATH-like mount fd; the inode is the tree's */
        fd = openat(rs->mount_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        return registry_lock_root_fd(fd, shared, ret_fd); /* takes FD */
}

static bool tree_has_regular(int dfd, const char *path, bool executable) {
        _cleanup_close_ int fd = open_in_root(dfd, path, O_PATH);
        struct stat st;

        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return false;
        return !executable || (st.st_mode & 0111);
}

int root_source_check(const RootSource *rs, const Settings *s) {
        static const char *const inits[] = { "usr/lib/systemd/systemd", "lib/systemd/systemd", "sbin/init" };
        const char *fix = rs->type == ROOT_SOURCE_IMAGE ? "Point --image= at an image of an OS"
                                                         : "Point --directory= at the root of an OS tree";
        _cleanup_close_ int pivot = -EBADF, old = -EBADF;
        int root_fd = rs->mount_fd;

        /* --pivot-root=: both directories must be there (resolved inside the tree, as the child will),
         * and the OS is the one in the new root */
        if (s->pivot_root) {
                pivot = open_in_root(rs->mount_fd, s->pivot_root[0], O_PATH | O_DIRECTORY);
                if (pivot < 0)
                        return log_error_errno(pivot, "Cannot use '%s' of '%s' as the container's root "
                                                      "(--pivot-root=): %m", s->pivot_root[0], rs->path);
                if (s->pivot_root[1]) {
                        old = open_in_root(pivot, s->pivot_root[1], O_PATH | O_DIRECTORY);
                        if (old < 0)
                                return log_error_errno(old, "Cannot put the old root on '%s' in '%s' of '%s' "
                                                            "(--pivot-root=): %m. Create that directory in it.",
                                                       s->pivot_root[1], s->pivot_root[0], rs->path);
                }
                root_fd = pivot;
        }

        if (s->volatile_mode == VOLATILE_YES)
                return 0; /* only /usr is used; os-release may live in /usr/lib */
        /* $SYSTEMD_NSPAWN_CHECK_OS_RELEASE=0: a tree that gets its /usr or /etc from --bind= has neither
         * here; the child still says so if no init turns up once everything is mounted */
        if (s->no_os_release_check) {
                log_debug("Not checking '%s' for an os-release file and an init ($SYSTEMD_NSPAWN_CHECK_OS_RELEASE=0).",
                          rs->path);
                return 0;
        }
        if (!tree_has_regular(root_fd, "etc/os-release", false) &&
            !tree_has_regular(root_fd, "usr/lib/os-release", false))
                return log_error_errno(-ENOMEDIUM,
                                       "'%s' does not look like an OS tree: it has neither /etc/os-release nor "
                                       "/usr/lib/os-release. %s.",
                                       rs->path, fix);
        if (s->start_mode == START_BOOT) {
                for (size_t i = 0; i < ELEMENTSOF(inits); i++)
                        if (tree_has_regular(root_fd, inits[i], true))
                                return 0;
                return log_error_errno(-ENOEXEC,
                                       "Cannot boot '%s': no init in it (tried /usr/lib/systemd/systemd, "
                                       "/lib/systemd/systemd, /sbin/init). Install one, or run a command without --boot.",
                                       rs->path);
        }
        return 0;
}
