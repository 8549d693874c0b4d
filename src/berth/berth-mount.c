/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "berth-cgroup.h"
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
        MOUNT_PRIVATE_NET = 1 << 3,    /* only with --private-network */
        MOUNT_HOST_NET = 1 << 4,       /* only without --private-network */
        MOUNT_CGROUP = 1 << 5,         /* the cgroup2 mount of the container's cgroup namespace */
        MOUNT_OPTIONAL = 1 << 6,       /* skip quietly if the mount point is missing */
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
        { NULL, "/proc/sys/net", NULL, NULL, 0, MOUNT_FATAL | MOUNT_BIND_SELF | MOUNT_PRIVATE_NET },
        { NULL, "/proc/sys", NULL, NULL, 0, MOUNT_FATAL | MOUNT_BIND_SELF | MOUNT_READ_ONLY },
        { "sysfs", "/sys", "sysfs", NULL, NSDE | MS_RDONLY, MOUNT_FATAL | MOUNT_MKDIR },
        { NULL, "/sys/fs/cgroup", NULL, NULL, 0, MOUNT_FATAL | MOUNT_CGROUP },
        { "tmpfs", "/dev", "tmpfs", "mode=0755,size=4m,nr_inodes=64k", NS | MS_STRICTATIME, MOUNT_FATAL | MOUNT_MKDIR },
        { "tmpfs", "/dev/shm", "tmpfs", "mode=1777,size=50%,nr_inodes=1m", NSD | MS_STRICTATIME, MOUNT_FATAL | MOUNT_MKDIR },
        { "mqueue", "/dev/mqueue", "mqueue", NULL, NSDE, MOUNT_FATAL | MOUNT_MKDIR },
        { "tmpfs", "/run", "tmpfs", "mode=0755,size=20%,nr_inodes=800k", NSD | MS_STRICTATIME, MOUNT_FATAL | MOUNT_MKDIR },
        { "tmpfs", "/tmp", "tmpfs", "mode=1777,size=50%,nr_inodes=1m", NSD | MS_STRICTATIME, MOUNT_FATAL | MOUNT_MKDIR },
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

static const struct {
        const char *target, *name;
} dev_symlinks[] = {
        { "/proc/self/fd", "fd" },
        { "/proc/self/fd/0", "stdin" },
        { "/proc/self/fd/1", "stdout" },
        { "/proc/self/fd/2", "stderr" },
};

static int bind_self(const char *p, bool read_only) {
        if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0)
                return negative_errno();
        /* Only the top mount: a writable /proc/sys/net bound before stays writable. */
        if (read_only && mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | NSDE, NULL) < 0)
                return negative_errno();
        return 0;
}

static int make_dev_nodes(const char *root) {
        char p[PATH_MAX], h[PATH_MAX];

        for (size_t i = 0; i < ELEMENTSOF(basic_devices); i++) {
                snprintf(p, sizeof p, "%s/dev/%s", root, basic_devices[i].name);
                if (mknod(p, S_IFCHR | 0666, makedev(basic_devices[i].major, basic_devices[i].minor)) >= 0) {
                        (void) chmod(p, 0666); /* umask */
                        continue;
                }
                if (errno != EPERM)
                        return log_error_errno(negative_errno(), "Failed to create device node '%s': %m", p);
                snprintf(h, sizeof h, "/dev/%s", basic_devices[i].name);
                if (touch(p, 0666) < 0 || mount(h, p, NULL, MS_BIND, NULL) < 0)
                        return log_error_errno(negative_errno(), "Failed to bind-mount '%s' to '%s': %m", h, p);
        }
        for (size_t i = 0; i < ELEMENTSOF(dev_symlinks); i++) {
                snprintf(p, sizeof p, "%s/dev/%s", root, dev_symlinks[i].name);
                if (symlink(dev_symlinks[i].target, p) < 0 && errno != EEXIST)
                        return log_error_errno(negative_errno(), "Failed to create '%s': %m", p);
        }
        snprintf(p, sizeof p, "%s/dev/net", root);
        (void) mkdir(p, 0755);
        return 0;
}

static bool entry_applies(const MountEntry *m, const Settings *s) {
        if ((m->mflags & MOUNT_PRIVATE_NET) && !s->private_network)
                return false;
        if ((m->mflags & MOUNT_HOST_NET) && s->private_network)
                return false;
        return true;
}

int mount_api_filesystems(const char *root, const Settings *s) {
        char p[PATH_MAX];
        int r;

        for (size_t i = 0; i < ELEMENTSOF(api_mounts); i++) {
                const MountEntry *m = &api_mounts[i];
                struct stat st;

                if (!entry_applies(m, s))
                        continue;
                snprintf(p, sizeof p, "%s%s", root, m->where);

                if (m->mflags & MOUNT_CGROUP) {
                        r = cgroup_mount_in_container(root);
                        if (r < 0)
                                return r;
                        continue;
                }
                /* Mount points are created under ROOT, whose paths we made
                 * ourselves or that are kernel file systems (proc, sys): a
                 * symlink planted in the tree at /proc or /dev is replaced,
                 * never followed. */
                if (m->mflags & MOUNT_MKDIR) {
                        if (lstat(p, &st) >= 0 && !S_ISDIR(st.st_mode)) {
                                if (unlink(p) < 0)
                                        return log_error_errno(negative_errno(),
                                                               "Failed to replace non-directory '%s': %m", p);
                        }
                        r = mkdir_p(p, 0755);
                        if (r < 0)
                                return log_error_errno(r, "Failed to create mount point '%s': %m", p);
                }
                if (m->mflags & MOUNT_BIND_SELF) {
                        if (lstat(p, &st) < 0) {
                                if (m->mflags & MOUNT_OPTIONAL)
                                        continue;
                                return log_error_errno(negative_errno(), "Failed to find '%s': %m", p);
                        }
                        r = bind_self(p, m->mflags & MOUNT_READ_ONLY);
                } else
                        r = RET_NERRNO(mount(m->what, p, m->type, m->flags, m->options));
                if (r < 0) {
                        if (!(m->mflags & MOUNT_FATAL)) {
                                log_debug_errno(r, "Failed to mount '%s', ignoring: %m", p);
                                continue;
                        }
                        return log_error_errno(r, "Failed to mount %s on '%s': %m", m->type ?: "a read-only bind", p);
                }
                if (streq(m->where, "/dev")) {
                        r = make_dev_nodes(root);
                        if (r < 0)
                                return r;
                }
        }

        /* /run/host: what the container learns about its host */
        snprintf(p, sizeof p, "%s/run/host", root);
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
                return log_error_errno(negative_errno(), "Failed to create '%s': %m", p);
        snprintf(p, sizeof p, "%s/run/host/container-manager", root);
        r = write_string_file(p, "berth\n", O_CREAT | O_TRUNC);
        if (r < 0)
                return log_error_errno(r, "Failed to write '%s': %m", p);
        snprintf(p, sizeof p, "%s/run/host/os-release", root);
        r = copy_file("/etc/os-release", p, 0444);
        if (r == -ENOENT)
                r = copy_file("/usr/lib/os-release", p, 0444);
        if (r < 0 && r != -ENOENT)
                return log_error_errno(r, "Failed to copy the host's os-release to '%s': %m", p);
        return 0;
}

static int mask_path(const char *root, const char *path) {
        char p[PATH_MAX], src[PATH_MAX];
        struct stat st;

        snprintf(p, sizeof p, "%s%s", root, path);
        if (lstat(p, &st) < 0) {
                if (errno == ENOENT)
                        return 0; /* nothing to hide */
                return log_error_errno(negative_errno(), "Failed to check '%s' before masking it: %m", p);
        }
        if (S_ISDIR(st.st_mode)) {
                if (mount("tmpfs", p, "tmpfs", MS_RDONLY | NSDE, "mode=0555,size=0") < 0)
                        return log_error_errno(negative_errno(), "Failed to mask '%s': %m", path);
        } else {
                snprintf(src, sizeof src, "%s/dev/null", root);
                /* not nodev: the mask is a device node (null) */
                if (mount(src, p, NULL, MS_BIND, NULL) < 0 ||
                    mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC, NULL) < 0)
                        return log_error_errno(negative_errno(), "Failed to mask '%s': %m", path);
        }
        return 0;
}

int mount_protect_kernel(const char *root) {
        int r;

        for (size_t i = 0; i < ELEMENTSOF(masked_paths); i++) {
                r = mask_path(root, masked_paths[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}
