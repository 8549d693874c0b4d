/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "berth-mount.h"
#include "log.h"
#include "util.h"

/* The API file systems of a container, as one table. Everything here runs in
 * the container's child: a new mount namespace whose propagation from the host
 * is already cut, a new PID namespace (so /proc shows the container's
 * processes), real root on the host. ROOT is the tree, before pivot_root. */

typedef enum MountFlags {
        MOUNT_FATAL = 1 << 0,          /* failure ends the container start */
        MOUNT_MKDIR = 1 << 1,          /* create the mount point (a directory) */
        MOUNT_BIND_SELF = 1 << 2,      /* bind the path onto itself (recursively) */
        MOUNT_READ_ONLY = 1 << 7,      /* with MOUNT_BIND_SELF: then make it read-only */
        MOUNT_NET_RW = 1 << 3,         /* only where /proc/sys/net stays writable (net_writable()) */
        MOUNT_HOST_NET = 1 << 4,       /* only without --private-network */
        MOUNT_CGROUP = 1 << 5,         /* the cgroup2 mount of the container's cgroup namespace */
        MOUNT_OPTIONAL = 1 << 6,       /* skip quietly if the mount point is missing */
        MOUNT_OWNED = 1 << 8,          /* a tmpfs the container's root owns (user namespace) */
        MOUNT_TMP = 1 << 9,            /* /tmp: not with $SYSTEMD_NSPAWN_TMPFS_TMP=0 */
        MOUNT_API_RO = 1 << 10,        /* keeps kernel knobs read-only: with $SYSTEMD_NSPAWN_API_VFS_WRITABLE=1
                                        * a bind is left out, a file system mounted without MS_RDONLY */
} MountFlags;

typedef struct MountEntry {
        const char *what;
        const char *where;   /* relative to ROOT */
        const char *type;
        const char *options;
        unsigned long flags;
        MountFlags mflags;
} MountEntry;

#define NS (MS_NOSUID)
#define NSD (MS_NOSUID | MS_NODEV)
#define NSDE (MS_NOSUID | MS_NODEV | MS_NOEXEC)

static const MountEntry api_mounts[] = {
        { "proc", "/proc", "proc", NULL, NSDE, MOUNT_FATAL | MOUNT_MKDIR },
        /* kernel knobs read-only; with a network namespace of its own the
         * container may tune its network, as in nspawn */
        { NULL, "/proc/sys/net", NULL, NULL, 0, MOUNT_FATAL | MOUNT_BIND_SELF | MOUNT_NET_RW | MOUNT_API_RO },
        { NULL, "/proc/sys", NULL, NULL, 0, MOUNT_FATAL | MOUNT_BIND_SELF | MOUNT_READ_ONLY | MOUNT_API_RO },
        { "sysfs", "/sys", "sysfs", NULL, NSDE | MS_RDONLY, MOUNT_FATAL | MOUNT_MKDIR | MOUNT_API_RO },
        { NULL, "/sys/fs/cgroup", NULL, NULL, 0, MOUNT_FATAL | MOUNT_CGROUP },
        { "tmpfs", "/dev", "tmpfs", "mode=0755,size=4m,nr_inodes=64k", NS | MS_STRICTATIME, MOUNT_FATAL | MOUNT_MKDIR | MOUNT_OWNED },
        { "tmpfs", "/dev/shm", "tmpfs", "mode=1777,size=50%,nr_inodes=1m", NSD | MS_STRICTATIME, MOUNT_FATAL | MOUNT_MKDIR | MOUNT_OWNED },
        { "mqueue", "/dev/mqueue", "mqueue", NULL, NSDE, MOUNT_FATAL | MOUNT_MKDIR },
        { "tmpfs", "/run", "tmpfs", "mode=0755,size=20%,nr_inodes=800k", NSD | MS_STRICTATIME, MOUNT_FATAL | MOUNT_MKDIR | MOUNT_OWNED },
        { "tmpfs", "/tmp", "tmpfs", "mode=1777,size=50%,nr_inodes=1m", NSD | MS_STRICTATIME, MOUNT_FATAL | MOUNT_MKDIR | MOUNT_OWNED | MOUNT_TMP },
};

/* Kernel interfaces a container must not read or poke: masked with an empty
 * read-only file or directory. A mask that cannot be applied fails the start
 * (nspawn silently skips some of these; we fail closed). */
static const char *const masked_paths[] = {
        "/proc/kallsyms",
        "/proc/kcore",
        "/proc/keys",
        "/proc/key-users",
        "/proc/timer_list",
        "/proc/sched_debug",
        "/proc/sysrq-trigger",
        "/proc/latency_stats",
        "/proc/kmsg",
        "/proc/config.gz",
        "/proc/acpi",
        "/proc/asound",
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/scsi",
        "/proc/driver",
        "/sys/firmware",
        "/sys/kernel/debug",
        "/sys/kernel/tracing",
        "/sys/kernel/security",
};

/* Character devices every container gets: created with mknod, or bind-mounted
 * from the host's /dev where mknod is not allowed (berth itself in a container). */
static const struct {
        const char *name;
        unsigned major, minor;
} basic_devices[] = {
        { "null", 1, 3 },  { "zero", 1, 5 },    { "full", 1, 7 },
        { "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
};

/* Devices the container gets when the host has them, with the host's mode, as nspawn gives them:
 * tun and fuse check permissions themselves and are namespace-aware, and the device policy
 * (berth-devices.c) allows them. */
static const struct {
        const char *name;
        unsigned major, minor;
} optional_devices[] = {
        { "net/tun", 10, 200 },
        { "fuse", 10, 229 },
};

static const struct {
        const char *target, *name;
} dev_symlinks[] = {
        { "/proc/self/fd", "fd" },
        { "/proc/self/fd/0", "stdin" },
        { "/proc/self/fd/1", "stdout" },
        { "/proc/self/fd/2", "stderr" },
};

int mount_attr_set(int fd, uint64_t set, uint64_t clr, uint64_t propagation, bool recursive) {
        struct mount_attr attr = {
                .attr_set = set,
                .attr_clr = clr,
                .propagation = propagation,
        };

        return RET_NERRNO(mount_setattr(fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr, sizeof attr));
}

int mount_attach(int fd, int dfd, const char *path) {
        return RET_NERRNO(move_mount(fd, "", dfd, path,
                                     MOVE_MOUNT_F_EMPTY_PATH | (isempty(path) ? MOVE_MOUNT_T_EMPTY_PATH : 0)));
}

/* mount(2) onto the inode FD refers to: the target is FD's magic link in the host's /proc (we are
 * before pivot_root), never a path of the tree looked up again. */
static int mount_on_fd(const char *what, int fd, const char *type, unsigned long flags, const char *options) {
        char p[64];

        snprintf(p, sizeof p, "/proc/self/fd/%i", fd);
        return RET_NERRNO(mount(what, p, type, flags, options));
}

/* Clones the mount at SRC_FD (recursively if asked), sets ATTR on its top mount only (a writable
 * /proc/sys/net bound before stays writable) and attaches it on the inode DST_FD refers to. */
static int bind_fd_on_fd(int src_fd, int dst_fd, bool recursive, uint64_t attr) {
        _cleanup_close_ int tree = -EBADF;
        struct mount_attr a = { .attr_set = attr };

        tree = open_tree(src_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0));
        if (tree < 0)
                return negative_errno();
        if (attr != 0 && mount_setattr(tree, "", AT_EMPTY_PATH, &a, sizeof a) < 0)
                return negative_errno();
        return RET_NERRNO(move_mount(tree, "", dst_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH));
}

/* Splits WHERE ("/dev/shm") into the directory it is in, opened inside the tree at ROOT_FD, and its
 * last component. A top-level WHERE ("/proc") is in ROOT_FD itself: no fd then (-EBADF). */
static int open_parent_in_root(int root_fd, const char *where, int *ret_parent, const char **ret_name) {
        const char *slash = strrchr(where, '/');
        char parent[PATH_MAX];
        int fd = -EBADF;

        if (!slash || isempty(slash + 1) || (size_t) (slash - where) >= sizeof parent)
                return -EINVAL;
        if (slash > where) {
                snprintf(parent, sizeof parent, "%.*s", (int) (slash - where), where);
                fd = open_in_root(root_fd, parent, O_PATH | O_DIRECTORY);
                if (fd < 0)
                        return fd;
        }
        *ret_parent = fd;
        *ret_name = slash + 1;
        return 0;
}

/* Opens the directory WHERE of the tree as a mount point, made if missing (CREATE). Whatever
 * non-directory the tree has there (a symlink planted at /proc or /dev, say) is removed, never
 * followed; without CREATE it is refused. The common case, a directory that is there, takes one
 * call: a start opens a dozen of these. */
static int open_mount_point(int root_fd, const char *where, bool create, int *ret) {
        _cleanup_close_ int parent = -EBADF;
        const char *name;
        int dir, r, fd;

        if (!create) {
                fd = open_in_root(root_fd, where, O_PATH | O_DIRECTORY | O_NOFOLLOW);
                if (fd < 0)
                        return fd;
                *ret = fd;
                return 0;
        }
        r = open_parent_in_root(root_fd, where, &parent, &name);
        if (r < 0)
                return r;
        dir = parent >= 0 ? parent : root_fd;
        /* O_NOFOLLOW | O_DIRECTORY: ENOTDIR for a symlink (dangling or not) and any other
         * non-directory, ENOENT for nothing */
        fd = openat(dir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && (errno == ENOENT || errno == ENOTDIR)) {
                if (errno == ENOTDIR && unlinkat(dir, name, 0) < 0)
                        return negative_errno();
                if (mkdirat(dir, name, 0755) < 0 && errno != EEXIST)
                        return negative_errno();
                fd = openat(dir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (fd < 0)
                return negative_errno();
        *ret = fd;
        return 0;
}

/* The nodes, links and directories berth makes in the container's /dev belong to its root (OWNER,
 * with a user namespace), as nspawn has them: else they are nobody's in the guest. A node bound
 * from the host (where mknod is refused) keeps the host's owner. */
static void dev_chown(int dev_fd, const char *name, uid_t owner) {
        if (owner != 0)
                (void) fchownat(dev_fd, name, owner, owner, AT_SYMLINK_NOFOLLOW);
}

/* DEV_FD: the container's fresh /dev tmpfs. Runs with a umask of 0 (the nodes get their modes
 * exactly); UMASK_SAVED, the one it replaced, applies to what else it creates, as it would have. */
static int make_dev_nodes_unmasked(int dev_fd, const char *root, uid_t owner, mode_t umask_saved) {
        int r;

        for (size_t i = 0; i < ELEMENTSOF(basic_devices); i++) {
                const char *n = basic_devices[i].name;
                _cleanup_close_ int fd = -EBADF, host = -EBADF;
                char h[64];

                r = RET_NERRNO(mknodat(dev_fd, n, S_IFCHR | 0666,
                                       makedev(basic_devices[i].major, basic_devices[i].minor)));
                if (r >= 0) {
                        dev_chown(dev_fd, n, owner);
                        continue;
                }
                if (r != -EPERM)
                        return log_error_errno(r, "Failed to create device node '%s/dev/%s': %m", root, n);
                snprintf(h, sizeof h, "/dev/%s", n);
                fd = openat(dev_fd, n, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666 & ~umask_saved);
                host = open(h, O_PATH | O_CLOEXEC);
                r = fd < 0 || host < 0 ? negative_errno() : bind_fd_on_fd(host, fd, false, 0);
                if (r < 0)
                        return log_error_errno(r, "Failed to bind-mount '%s' to '%s/dev/%s': %m", h, root, n);
        }
        for (size_t i = 0; i < ELEMENTSOF(dev_symlinks); i++)
                if (symlinkat(dev_symlinks[i].target, dev_fd, dev_symlinks[i].name) >= 0)
                        dev_chown(dev_fd, dev_symlinks[i].name, owner);
                else if (errno != EEXIST)
                        return log_error_errno(negative_errno(), "Failed to create '%s/dev/%s': %m", root,
                                               dev_symlinks[i].name);
        if (mkdirat(dev_fd, "net", 0755 & ~umask_saved) >= 0)
                dev_chown(dev_fd, "net", owner);
        for (size_t i = 0; i < ELEMENTSOF(optional_devices); i++) {
                const char *n = optional_devices[i].name;
                dev_t dev = makedev(optional_devices[i].major, optional_devices[i].minor);
                _cleanup_close_ int fd = -EBADF, host = -EBADF;
                char h[64];
                struct stat st;

                snprintf(h, sizeof h, "/dev/%s", n);
                host = open(h, O_PATH | O_CLOEXEC);
                if (host < 0 || fstat(host, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != dev)
                        continue; /* the host has none: neither has the container */
                r = RET_NERRNO(mknodat(dev_fd, n, S_IFCHR | (st.st_mode & 0666), dev));
                if (r >= 0)
                        dev_chown(dev_fd, n, owner);
                if (r == -EPERM) {
                        fd = openat(dev_fd, n, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                    0600 & ~umask_saved);
                        r = fd < 0 ? negative_errno() : bind_fd_on_fd(host, fd, false, 0);
                }
                if (r < 0)
                        log_warning_errno(r, "Failed to provide /dev/%s in the container, ignoring: %m", n);
        }
        return 0;
}

/* One umask(0) for all the nodes, not two umask() calls around each. */
static int make_dev_nodes(int dev_fd, const char *root, uid_t owner) {
        mode_t old = umask(0);
        int r;

        r = make_dev_nodes_unmasked(dev_fd, root, owner, old);
        (void) umask(old);
        return r;
}

void host_os_release_read(HostOsRelease *ret) {
        HostOsRelease h = {};

        h.error = read_full_file("/etc/os-release", &h.text, &h.size);
        if (h.error == -ENOENT)
                h.error = read_full_file("/usr/lib/os-release", &h.text, &h.size);
        if (h.error > 0)
                h.error = 0;
        *ret = h;
}

void host_os_release_done(HostOsRelease *h) {
        free(h->text);
        *h = (HostOsRelease) { .error = -ENOENT };
}

/* /run/host: what the container learns about its host, in our fresh /run tmpfs, written as new files
 * renamed into place all the same. OS: the host's os-release, read by the monitor (the child's first
 * read of a file costs it fresh heap pages, ~0.15 ms where a page fault is expensive). */
static int write_run_host(int root_fd, const char *root, const HostOsRelease *os) {
        _cleanup_close_ int run = -EBADF, host = -EBADF;
        int r;

        run = open_in_root(root_fd, "run", O_PATH | O_DIRECTORY);
        if (run < 0)
                return log_error_errno(run, "Failed to open '%s/run': %m", root);
        if (mkdirat(run, "host", 0755) < 0 && errno != EEXIST)
                return log_error_errno(negative_errno(), "Failed to create '%s/run/host': %m", root);
        host = openat(run, "host", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (host < 0)
                return log_error_errno(negative_errno(), "Failed to open '%s/run/host': %m", root);
        r = write_file_atomic_at(host, "container-manager", "berth\n", 6, 0444, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to write '%s/run/host/container-manager': %m", root);
        r = os->error;
        if (r == -ENOENT)
                return 0;
        if (r >= 0)
                r = write_file_atomic_at(host, "os-release", os->text, os->size, 0444, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to copy the host's os-release to '%s/run/host/os-release': %m", root);
        return 0;
}

/* /proc/sys/net stays writable in a network namespace of the container's own, as in nspawn, and
 * with $SYSTEMD_NSPAWN_API_VFS_WRITABLE=network whatever the network (settings_verify() allows that
 * with a user namespace only in a network of its own; without one nspawn, asked so, lets root tune
 * the host's network too). */
static bool net_writable(const Settings *s) {
        return s->private_network || s->api_vfs == API_VFS_NETWORK;
}

/* The container's /run/host, as write_run_host made it in berth's fresh /run tmpfs (nothing of the
 * tree's is followed on the way), for what later steps put there: an fd, or a logged error. */
int run_host_open(const char *root) {
        _cleanup_close_ int root_fd = -EBADF;
        int host;

        root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0)
                return log_error_errno(negative_errno(), "Failed to open the container root '%s': %m", root);
        host = open_in_root(root_fd, "run/host", O_PATH | O_DIRECTORY);
        if (host < 0)
                return log_error_errno(host, "Failed to open '%s/run/host': %m", root);
        return host;
}

static bool entry_applies(const MountEntry *m, const Settings *s) {
        if ((m->mflags & MOUNT_NET_RW) && !net_writable(s))
                return false;
        if ((m->mflags & MOUNT_API_RO) && (m->mflags & MOUNT_BIND_SELF) && s->api_vfs == API_VFS_WRITABLE)
                return false;
        if ((m->mflags & MOUNT_HOST_NET) && s->private_network)
                return false;
        if ((m->mflags & MOUNT_TMP) && s->no_tmpfs_tmp)
                return false;
        return true;
}

int mount_api_filesystems(const char *root, const Settings *s, uid_t owner, const HostOsRelease *os) {
        _cleanup_close_ int root_fd = -EBADF;
        char opts[256];
        int r;

        root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0)
                return log_error_errno(negative_errno(), "Failed to open the container root '%s': %m", root);

        for (size_t i = 0; i < ELEMENTSOF(api_mounts); i++) {
                const MountEntry *m = &api_mounts[i];
                _cleanup_close_ int fd = -EBADF;

                if (!entry_applies(m, s))
                        continue;
                /* made before the cgroup namespace (which exists only once the monitor has moved
                 * the child into its cgroup): the child mounts it itself right after unsharing
                 * (cgroup_mount_in_container()) */
                if (m->mflags & MOUNT_CGROUP)
                        continue;
                /* Every mount point is opened inside the tree and mounted on through its fd: the
                 * top-level ones are the tree's own (hostile) directories, the others lie in file
                 * systems we just mounted. */
                r = open_mount_point(root_fd, m->where, m->mflags & MOUNT_MKDIR, &fd);
                if (r < 0) {
                        if (r == -ENOENT && (m->mflags & MOUNT_OPTIONAL))
                                continue;
                        return log_error_errno(r, "Failed to %s mount point '%s%s': %m",
                                               m->mflags & MOUNT_MKDIR ? "create" : "find", root, m->where);
                }
                if (m->mflags & MOUNT_BIND_SELF)
                        r = bind_fd_on_fd(fd, fd, true,
                                          m->mflags & MOUNT_READ_ONLY ? MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                                                                                MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC
                                                                      : 0);
                else {
                        const char *o = m->options;
                        unsigned long flags = m->flags;
                        if ((m->mflags & MOUNT_API_RO) && s->api_vfs == API_VFS_WRITABLE)
                                flags &= ~MS_RDONLY;
                        if ((m->mflags & MOUNT_OWNED) && owner != 0) {
                                snprintf(opts, sizeof opts, "%s,uid=%u,gid=%u", m->options, (unsigned) owner,
                                         (unsigned) owner);
                                o = opts;
                        }
                        r = mount_on_fd(m->what, fd, m->type, flags, o);
                }
                if (r < 0) {
                        if (!(m->mflags & MOUNT_FATAL)) {
                                log_debug_errno(r, "Failed to mount '%s%s', ignoring: %m", root, m->where);
                                continue;
                        }
                        return log_error_errno(r, "Failed to mount %s on '%s%s': %m", m->type ?: "a read-only bind",
                                               root, m->where);
                }
                if (streq(m->where, "/dev")) {
                        _cleanup_close_ int dev = open_in_root(root_fd, "dev", O_PATH | O_DIRECTORY);
                        if (dev < 0)
                                return log_error_errno(dev, "Failed to open '%s/dev': %m", root);
                        r = make_dev_nodes(dev, root, owner);
                        if (r < 0)
                                return r;
                }
        }
        return write_run_host(root_fd, root, os);
}

/* The masks: the first file mask is a clone of our /dev/null, the first directory mask a fresh empty
 * read-only tmpfs; every further one is a clone of the first of its kind, taken through the fd it was
 * attached with (a mount in our namespace now, which open_tree() may clone on any kernel). A clone
 * has the first one's flags and shows as it does in mountinfo; it costs less than a new tmpfs or a
 * clone plus mount_setattr(): about 20 masks a start. The directory masks share one superblock:
 * empty, read-only and of size 0, whoever asks (the mounts are locked, see join_locked_mounts()). */
typedef struct Masks {
        int null_fd;  /* our /dev/null */
        int file_fd;  /* the first file mask, attached; -EBADF before it */
        int dir_fd;   /* the first directory mask, attached; -EBADF before it */
} Masks;

static void masks_done(Masks *m) {
        m->file_fd = safe_close(m->file_fd);
        m->dir_fd = safe_close(m->dir_fd);
}

/* An empty read-only tmpfs, detached: as mount("tmpfs", ..., MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC,
 * "mode=0555,size=0") would make it. */
static int empty_tmpfs(void) {
        _cleanup_close_ int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
        int fd;

        if (fs < 0 || fsconfig(fs, FSCONFIG_SET_STRING, "source", "tmpfs", 0) < 0 ||
            fsconfig(fs, FSCONFIG_SET_FLAG, "ro", NULL, 0) < 0 ||
            fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0555", 0) < 0 ||
            fsconfig(fs, FSCONFIG_SET_STRING, "size", "0", 0) < 0 ||
            fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return negative_errno();
        fd = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
        return fd < 0 ? negative_errno() : fd;
}

/* Attaches the first mask of a kind, TREE (a detached mount, taken), on DST_FD and keeps it in
 * *KEEP for the clones. */
static int attach_first_mask(int tree, int dst_fd, int *keep) {
        _cleanup_close_ int t = tree;

        if (t < 0)
                return t;
        if (move_mount(t, "", dst_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                return negative_errno();
        *keep = TAKE_FD(t);
        return 0;
}

/* A clone of the mount at SRC_FD, taking flags set on it, or -errno. */
static int clone_with_attr(int src_fd, uint64_t attr) {
        _cleanup_close_ int tree = -EBADF;

        tree = open_tree(src_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
        if (tree < 0)
                return negative_errno();
        if (mount_attr_set(tree, attr, 0, 0, false) < 0)
                return negative_errno();
        return TAKE_FD(tree);
}

/* After the custom mounts: PATH is looked up inside the tree (a custom mount on /proc or /sys may hold
 * anything) and must be a file or directory, never a symlink; the mask goes onto the fd. */
static int mask_path(int root_fd, Masks *m, const char *root, const char *path) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int r;

        fd = open_in_root(root_fd, path, O_PATH | O_NOFOLLOW);
        if (fd == -ENOENT)
                return 0; /* nothing to hide */
        if (fd < 0)
                return log_error_errno(fd, "Failed to check '%s%s' before masking it: %m", root, path);
        if (fstat(fd, &st) < 0)
                return log_error_errno(negative_errno(), "Failed to check '%s%s' before masking it: %m", root, path);
        if (S_ISDIR(st.st_mode))
                r = m->dir_fd >= 0 ? bind_fd_on_fd(m->dir_fd, fd, false, 0)
                                   : attach_first_mask(empty_tmpfs(), fd, &m->dir_fd);
        else if (S_ISLNK(st.st_mode))
                r = -ELOOP;
        else
                /* not nodev: the mask is a device node (null) */
                r = m->file_fd >= 0 ? bind_fd_on_fd(m->file_fd, fd, false, 0)
                                    : attach_first_mask(clone_with_attr(m->null_fd, MOUNT_ATTR_RDONLY |
                                                                                          MOUNT_ATTR_NOSUID |
                                                                                          MOUNT_ATTR_NOEXEC),
                                                        fd, &m->file_fd);
        if (r < 0)
                return log_error_errno(r, "Failed to mask '%s': %m", path);
        return 0;
}

int mount_protect_kernel(const char *root) {
        _cleanup_close_ int root_fd = -EBADF, dev = -EBADF, null_fd = -EBADF;
        Masks m = { .file_fd = -EBADF, .dir_fd = -EBADF };
        struct stat st;
        int r = 0;

        root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0)
                return log_error_errno(negative_errno(), "Failed to open the container root '%s': %m", root);
        /* /dev/null of our /dev tmpfs: a custom mount over /dev would have to be looked at first */
        dev = open_in_root(root_fd, "dev", O_PATH | O_DIRECTORY);
        null_fd = dev < 0 ? dev : openat(dev, "null", O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (null_fd < 0)
                return log_error_errno(dev < 0 ? dev : negative_errno(), "Failed to open '%s/dev/null' for the masks: %m",
                                       root);
        if (fstat(null_fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
                return log_error_errno(-EMEDIUMTYPE, "Refusing to mask with '%s/dev/null': it is not the null device "
                                                     "(a custom mount on /dev?).", root);
        m.null_fd = null_fd;
        for (size_t i = 0; i < ELEMENTSOF(masked_paths) && r >= 0; i++)
                r = mask_path(root_fd, &m, root, masked_paths[i]);
        masks_done(&m);
        return r;
}
