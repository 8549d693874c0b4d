/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * -i/--image=: a raw disk image as the container's root.
 *
 * Trust boundary: the image is hostile input to the kernel. The monitor (host
 * namespaces, full privileges) reads its partition table with libblkid
 * (dissect.c), lets the kernel parse only file systems of an allow-list,
 * mounts them nodev and nosuid (noexec for the ESP and XBOOTLDR), and only
 * with the fd-based mount API: the mounts are detached (fsmount), put
 * together into one tree that is attached nowhere in the host's namespace,
 * and the child attaches that tree in its own mount namespace. Paths inside
 * the image (its /usr, /home, ... mount points) are resolved with
 * openat2(RESOLVE_IN_ROOT) in the image's own tree.
 *
 * Before anything is attached, the image policy (--image-policy=) decides which
 * partitions are used and how, and an image that asks for dm-verity where the
 * kernel has no device-mapper is refused: its data is never mounted unprotected
 * unless the policy says so, and then only after a one-time check in userspace
 * when a root hash is known (berth-verity.c).
 *
 * Host state: one loop device per partition, all with autoclear, so that the
 * kernel detaches them when the last mount and fd go, which includes a monitor
 * killed with SIGKILL (its fds close, its container's namespace dies). The
 * record names them all the same (LOOP=), and stale cleanup detaches any that
 * are still bound to the image. A dm-verity device is marked for deferred
 * removal as soon as its partition is mounted, so it goes with its mount.
 */

#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth-image.h"
#include "berth-mount.h"
#include "berth-userns.h"
#include "log.h"
#include "util.h"

/* attached in this order: /var before /var/tmp, /boot before /efi's fallback */
static const PartitionDesignator mount_order[] = {
        PARTITION_USR, PARTITION_VAR, PARTITION_TMP, PARTITION_HOME, PARTITION_SRV, PARTITION_XBOOTLDR, PARTITION_ESP,
};

static int set_mount_attr(int fd, uint64_t set, bool recursive) {
        struct mount_attr attr = { .attr_set = set };

        return RET_NERRNO(mount_setattr(fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr, sizeof attr));
}

/* The kernel's own words about a failed fsconfig(), appended to our message. */
static void fs_context_message(int fs_fd, char *buf, size_t n) {
        ssize_t k;

        buf[0] = 0;
        k = read(fs_fd, buf, n - 1);
        if (k <= 2) {
                buf[0] = 0;
                return;
        }
        buf[k] = 0;
        buf[strcspn(buf, "\n")] = 0;
        memmove(buf, buf + 2, strlen(buf + 2) + 1); /* "e " prefix */
}

static int mount_partition(const Image *img, PartitionDesignator d, bool read_only, int *ret_fd) {
        const DissectedPartition *p = &img->dissected.partitions[d];
        const char *fs = dissect_fstype_allowed(d, p->fstype);
        _cleanup_close_ int fs_fd = -EBADF;
        uint64_t attrs = MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID;
        char msg[256];
        int fd;

        if (!fs) /* dissect_image_fd() refused these already */
                return log_error_errno(-EMEDIUMTYPE, "Refusing to mount file system '%s' of image '%s'.",
                                       strna(p->fstype), img->path);
        if (d == PARTITION_ESP || d == PARTITION_XBOOTLDR)
                attrs |= MOUNT_ATTR_NOEXEC;
        if (read_only)
                attrs |= MOUNT_ATTR_RDONLY;

        fs_fd = fsopen(fs, FSOPEN_CLOEXEC);
        if (fs_fd < 0)
                return log_error_errno(negative_errno(), "Failed to mount the %s partition of image '%s': this kernel "
                                                         "has no %s file system: %m",
                                       partition_designator_to_string(d), img->path, fs);
        if (fsconfig(fs_fd, FSCONFIG_SET_STRING, "source", img->dm_paths[d] ?: img->loops[d].path, 0) < 0 ||
            (read_only && fsconfig(fs_fd, FSCONFIG_SET_FLAG, "ro", NULL, 0) < 0) ||
            fsconfig(fs_fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
                int r = negative_errno();
                fs_context_message(fs_fd, msg, sizeof msg);
                return log_error_errno(r, "Failed to mount the %s partition (%s) of image '%s': %m%s%s%s",
                                       partition_designator_to_string(d), fs, img->path, msg[0] ? " (" : "", msg,
                                       msg[0] ? ")" : "");
        }
        fd = fsmount(fs_fd, FSMOUNT_CLOEXEC, (unsigned) attrs);
        if (fd < 0)
                return log_error_errno(negative_errno(), "Failed to mount the %s partition of image '%s': %m",
                                       partition_designator_to_string(d), img->path);
        *ret_fd = fd;
        return 0;
}

static int make_tmpfs(const char *mode, int *ret_fd) {
        _cleanup_close_ int fs_fd = -EBADF;
        int fd;

        fs_fd = fsopen("tmpfs", FSOPEN_CLOEXEC);
        if (fs_fd < 0)
                return negative_errno();
        if (fsconfig(fs_fd, FSCONFIG_SET_STRING, "source", "tmpfs", 0) < 0 ||
            fsconfig(fs_fd, FSCONFIG_SET_STRING, "mode", mode, 0) < 0 ||
            fsconfig(fs_fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return negative_errno();
        fd = fsmount(fs_fd, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID);
        if (fd < 0)
                return negative_errno();
        *ret_fd = fd;
        return 0;
}

/* -x on an image: the partition's read-only mount as the lower layer of an
 * overlay whose upper and work directories live on UPPER_TMPFS, a detached
 * tmpfs no path leads to. The layers are given as fds (lowerdir+, upperdir and
 * workdir with FSCONFIG_SET_FD), so none of it needs a path on the host; when
 * the container is gone, so is every write, and the image is never written. */
static int overlay_partition(const Image *img, PartitionDesignator d, int upper_tmpfs, int *mnt_fd) {
        _cleanup_close_ int fs_fd = -EBADF, upper = -EBADF, work = -EBADF;
        char up[32], wk[32], msg[256];
        struct stat st;
        int fd;

        snprintf(up, sizeof up, "upper-%s", partition_designator_to_string(d));
        snprintf(wk, sizeof wk, "work-%s", partition_designator_to_string(d));
        if (fstat(*mnt_fd, &st) < 0 || mkdirat(upper_tmpfs, up, 0755) < 0 || mkdirat(upper_tmpfs, wk, 0700) < 0 ||
            fchownat(upper_tmpfs, up, st.st_uid, st.st_gid, 0) < 0 || fchmodat(upper_tmpfs, up, st.st_mode & 07777, 0) < 0)
                return log_error_errno(negative_errno(), "Failed to set up the upper layer for image '%s': %m", img->path);
        upper = openat(upper_tmpfs, up, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        work = openat(upper_tmpfs, wk, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (upper < 0 || work < 0)
                return log_error_errno(negative_errno(), "Failed to open the upper layer for image '%s': %m", img->path);

        fs_fd = fsopen("overlay", FSOPEN_CLOEXEC);
        if (fs_fd < 0)
                return log_error_errno(negative_errno(), "Failed to set up an overlay on image '%s': %m", img->path);
        if (fsconfig(fs_fd, FSCONFIG_SET_STRING, "source", "overlay", 0) < 0 ||
            fsconfig(fs_fd, FSCONFIG_SET_FD, "lowerdir+", NULL, *mnt_fd) < 0 ||
            fsconfig(fs_fd, FSCONFIG_SET_FD, "upperdir", NULL, upper) < 0 ||
            fsconfig(fs_fd, FSCONFIG_SET_FD, "workdir", NULL, work) < 0 ||
            fsconfig(fs_fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
                int r = negative_errno();
                fs_context_message(fs_fd, msg, sizeof msg);
                return log_error_errno(r, "Failed to mount an overlay on the %s partition of image '%s': %m%s%s%s",
                                       partition_designator_to_string(d), img->path, msg[0] ? " (" : "", msg,
                                       msg[0] ? ")" : "");
        }
        fd = fsmount(fs_fd, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID);
        if (fd < 0)
                return log_error_errno(negative_errno(), "Failed to mount an overlay on image '%s': %m", img->path);
        safe_close(*mnt_fd);
        *mnt_fd = fd;
        return 0;
}

/* A /usr-only image: a fresh tmpfs as root with the usual top-level
 * directories and the merged-/usr symlinks (/bin -> usr/bin, ...). */
static int make_usr_only_root(int usr_fd, int *ret_fd) {
        static const char *const dirs[] = { "usr", "etc", "var", "dev", "proc", "sys", "run", "tmp", "root", "home", "mnt", "srv" };
        static const char *const links[] = { "bin", "sbin", "lib", "lib32", "lib64", "libx32" };
        _cleanup_close_ int root = -EBADF;
        int r;

        r = make_tmpfs("0755", &root);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++)
                if (mkdirat(root, dirs[i], streq(dirs[i], "root") ? 0700 : 0755) < 0)
                        return negative_errno();
        if (fchmodat(root, "tmp", 01777, 0) < 0)
                return negative_errno();
        for (size_t i = 0; i < ELEMENTSOF(links); i++) {
                struct stat st;

                if (fstatat(usr_fd, links[i], &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
                        continue;
                char target[32];
                snprintf(target, sizeof target, "usr/%s", links[i]);
                if (symlinkat(target, root, links[i]) < 0)
                        return negative_errno();
        }
        *ret_fd = TAKE_FD(root);
        return 0;
}

/* Attaches the partition's mount at its place in the detached tree, a missing mount point made
 * as OWNER (the container's root). 1 done, 0 skipped (no mount point and none can be made). */
static int attach_partition(const Image *img, PartitionDesignator d, int tree, bool tree_writable, uid_t owner,
                            int *mnt_fd) {
        const char *where = partition_designator_mount_point(d);
        _cleanup_close_ int dir = -EBADF;
        int r;

        if (d == PARTITION_ESP && !img->dissected.partitions[PARTITION_XBOOTLDR].found) {
                /* no XBOOTLDR: the ESP goes to /efi, or to /boot where the image has only that */
                dir = open_in_root(tree, "efi", O_PATH | O_DIRECTORY);
                if (dir == -ENOENT)
                        dir = open_in_root(tree, "boot", O_PATH | O_DIRECTORY);
        } else
                dir = open_in_root(tree, where, O_PATH | O_DIRECTORY);
        if (dir == -ENOENT && tree_writable && d != PARTITION_ESP && d != PARTITION_XBOOTLDR) {
                _cleanup_close_ int parent = -EBADF;
                const char *base = path_basename(where);
                _cleanup_free_ char *pdir = strndup(where, (size_t) (base - where));

                if (!pdir)
                        return log_oom();
                parent = open_in_root(tree, pdir, O_PATH | O_DIRECTORY);
                /* as the container's root: on an idmapped root, host root has no id to create with */
                if (parent >= 0 && create_owned(parent, base, S_IFDIR | 0755, owner) >= 0)
                        dir = open_in_root(tree, where, O_PATH | O_DIRECTORY);
        }
        if (dir == -ENOENT) {
                log_warning("Not mounting the %s partition of image '%s': the image has no %s to mount it on%s.",
                            partition_designator_to_string(d), img->path, where,
                            tree_writable ? "" : " and its root is read-only");
                return 0;
        }
        if (dir < 0)
                return log_error_errno(dir, "Failed to open %s in image '%s': %m", where, img->path);
        r = RET_NERRNO(move_mount(*mnt_fd, "", dir, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH));
        if (r < 0)
                return log_error_errno(r, "Failed to mount the %s partition of image '%s' on %s: %m",
                                       partition_designator_to_string(d), img->path, where);
        return 1;
}

/* The data partition D with its hash tree: on a loop device of its own at the
 * verity partition's slot (the tree in the image, or --verity-data=/.verity). */
static int attach_hash_tree(Image *img, PartitionDesignator d) {
        PartitionDesignator vd = partition_verity_of(d);
        const DissectedPartition *vp = &img->dissected.partitions[vd];
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (img->verity.designator == d && img->verity.data_path) {
                fd = open(img->verity.data_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return log_error_errno(negative_errno(), "Failed to open the hash tree %s of image '%s': %m",
                                               img->verity.data_from, img->path);
                r = loop_attach(fd, 0, 0, true, &img->loops[vd]);
        } else
                r = loop_attach(img->fd, vp->offset, vp->size, true, &img->loops[vd]);
        if (r < 0)
                return log_error_errno(r, "Failed to attach a loop device to the hash tree of the %s partition of "
                                          "image '%s': %m", partition_designator_to_string(d), img->path);
        return 0;
}

/* Whether the data partition D has what a check against its root hash needs. */
static bool verity_checkable(const Image *img, PartitionDesignator d) {
        return img->verity.designator == d && img->verity.root_hash &&
               (img->verity.data_path || img->dissected.partitions[partition_verity_of(d)].found);
}

/* dm-verity over the data partition's loop, or the one-time check in userspace where it
 * is used unprotected and has a root hash. */
static int protect_partition(Image *img, PartitionDesignator d) {
        PartitionDesignator vd = partition_verity_of(d);
        PartitionUse use = img->use[d];
        _cleanup_free_ char *what = NULL;
        char name[64];
        int r;

        if (vd < 0 || (use == PARTITION_USE_UNPROTECTED && !verity_checkable(img, d)))
                return 0;
        what = strjoin("the ", partition_designator_to_string(d), " partition of image '", img->path, "'");
        if (!what)
                return log_oom();
        r = attach_hash_tree(img, d);
        if (r < 0)
                return r;
        if (use == PARTITION_USE_UNPROTECTED) {
                log_debug("Checking %s against the root hash from %s in userspace (once: this kernel does not check "
                         "it on reads).", what, img->verity.root_hash_from);
                r = verity_check_userspace(what, img->loops[d].path, img->loops[vd].path, &img->verity);
                loop_device_done(&img->loops[vd]);
                return r;
        }
        /* unique among berths: the pid; the device goes once its mount does (deferred removal) */
        snprintf(name, sizeof name, "berth-%i-%s-verity", (int) getpid(), partition_designator_to_string(d));
        img->dm_names[d] = strdup(name);
        if (!img->dm_names[d])
                return log_oom();
        r = verity_activate(what, name, img->loops[d].path, img->loops[vd].path, &img->verity,
                            use == PARTITION_USE_SIGNED, &img->dm_paths[d]);
        if (r < 0) {
                free(img->dm_names[d]);
                img->dm_names[d] = NULL;
        }
        return r;
}

/* Read-only: asked for, the image says so, the file system is read-only by design, or
 * verity protects it (dm-verity devices are read-only, and a checked partition must stay
 * what was checked). */
static bool partition_read_only(const Image *img, PartitionDesignator d, ImageFlags flags) {
        const DissectedPartition *p = &img->dissected.partitions[d];

        return (flags & (IMAGE_READ_ONLY | IMAGE_EPHEMERAL)) || p->read_only || streq(p->fstype, "squashfs") ||
               streq(p->fstype, "erofs") || img->use[d] == PARTITION_USE_VERITY ||
               img->use[d] == PARTITION_USE_SIGNED || verity_checkable(img, d);
}

/* Every partition used: a loop device (dm-verity over it where asked) and a detached mount of its
 * file system, in img->mounts[], nothing put together yet. */
static int image_mount_partitions(Image *img) {
        int r;

        for (PartitionDesignator d = 0; d < _PARTITION_DESIGNATOR_MAX; d++) {
                const DissectedPartition *p = &img->dissected.partitions[d];
                bool ro;

                if (!p->found || !partition_designator_has_fs(d) || img->use[d] == PARTITION_USE_NONE)
                        continue;
                ro = partition_read_only(img, d, img->flags);
                r = loop_attach(img->fd, p->offset, p->size, ro, &img->loops[d]);
                if (r < 0)
                        return log_error_errno(r, "Failed to attach a loop device to the %s partition of image "
                                                  "'%s': %m", partition_designator_to_string(d), img->path);
                log_debug("Attached %s partition %u of '%s' to %s.", partition_designator_to_string(d), p->partno,
                          img->path, img->loops[d].path);
                r = protect_partition(img, d);
                if (r < 0)
                        return r;
                r = mount_partition(img, d, ro, &img->mounts[d]);
                if (r < 0)
                        return r;
                if (img->dm_names[d]) {
                        /* the mount holds the device now: it goes with the mount, even after a SIGKILL */
                        r = verity_deactivate_deferred(img->dm_names[d]);
                        if (r < 0)
                                log_warning_errno(r, "Failed to mark %s for removal when unmounted, ignoring: %m",
                                                  img->dm_paths[d]);
                }
        }
        return 0;
}

/* The partition's detached mount, idmapped through USERNS_FD: what its file system stores as
 * 0..65535 the container's user namespace sees as its own 0..65535. */
static int idmap_partition(const Image *img, PartitionDesignator d, int userns_fd) {
        const char *fs = img->dissected.partitions[d].fstype;
        int r;

#if BERTH_TEST_HOOKS
        /* a file system this kernel cannot idmap (every one on the allow-list can here) */
        const char *refuse = getenv("BERTH_TEST_IDMAP_REFUSE");
        if (refuse && fs && streq(refuse, fs))
                r = -EINVAL;
        else
#endif
                r = mount_make_idmapped(img->mounts[d], userns_fd);
        if (r < 0)
                return log_error_errno(r, "Cannot mount the %s partition (%s) of image '%s' idmapped: %m. berth does "
                                          "not chown images: pass --private-users-ownership=off if the image's files "
                                          "are owned by the range already, or run it without -U.",
                                       partition_designator_to_string(d), strna(fs), img->path);
        return 0;
}

int image_assemble(Image *img, int userns_fd, uid_t owner) {
        bool ephemeral = img->flags & IMAGE_EPHEMERAL;
        _cleanup_close_ int upper_tmpfs = -EBADF, tree = -EBADF;
        bool tree_writable;
        int r;

        if (ephemeral) {
                r = make_tmpfs("0755", &upper_tmpfs);
                if (r < 0)
                        return log_error_errno(r, "Failed to create the tmpfs for the upper layers: %m");
        }

        for (PartitionDesignator d = 0; d < _PARTITION_DESIGNATOR_MAX; d++) {
                if (img->mounts[d] < 0)
                        continue;
                /* overlayfs cannot be idmapped itself, but takes idmapped lower layers: the
                 * partition first, its overlay (whose upper layer takes the owner of the
                 * lower root as mapped) on top */
                if (userns_fd >= 0) {
                        r = idmap_partition(img, d, userns_fd);
                        if (r < 0)
                                return r;
                }
                if (ephemeral && d != PARTITION_ESP && d != PARTITION_XBOOTLDR) {
                        r = overlay_partition(img, d, upper_tmpfs, &img->mounts[d]);
                        if (r < 0)
                                return r;
                }
        }

        if (img->mounts[PARTITION_ROOT] >= 0) {
                tree = TAKE_FD(img->mounts[PARTITION_ROOT]);
                tree_writable = ephemeral || !partition_read_only(img, PARTITION_ROOT, img->flags);
        } else {
                r = make_usr_only_root(img->mounts[PARTITION_USR], &tree);
                if (r == 0 && userns_fd >= 0)
                        /* made by us as host root: its directories are the container root's */
                        r = mount_make_idmapped(tree, userns_fd);
                if (r < 0)
                        return log_error_errno(r, "Failed to make a root for the /usr-only image '%s': %m",
                                               img->path);
                tree_writable = true;
        }

        for (size_t i = 0; i < ELEMENTSOF(mount_order); i++) {
                PartitionDesignator d = mount_order[i];

                if (img->mounts[d] < 0)
                        continue;
                r = attach_partition(img, d, tree, tree_writable, owner, &img->mounts[d]);
                if (r < 0)
                        return r;
                img->mounts[d] = safe_close(img->mounts[d]);
        }
        if ((img->flags & IMAGE_READ_ONLY) && !ephemeral) {
                r = set_mount_attr(tree, MOUNT_ATTR_RDONLY, true);
                if (r < 0)
                        return log_error_errno(r, "Failed to make image '%s' read-only: %m", img->path);
        }
        img->tree_fd = TAKE_FD(tree);
        return 0;
}

int image_root_mount(const Image *img) {
        return img->mounts[PARTITION_ROOT] >= 0 ? img->mounts[PARTITION_ROOT] : img->mounts[PARTITION_USR];
}

static const char *policy_name(const ImageOptions *o, char **buf) {
        if (!o->policy)
                return "nspawn's default for containers";
        if (image_policy_to_string(o->policy, buf) < 0)
                return "--image-policy=";
        return *buf;
}

/* The image policy's decision, and every refusal that needs nothing attached. */
static int image_decide(Image *img, const ImageOptions *o) {
        VerityOffer offer[_PARTITION_DESIGNATOR_MAX];
        _cleanup_free_ char *detail = NULL, *pol = NULL;
        PartitionDesignator vd = _PARTITION_DESIGNATOR_INVALID;
        int r;

        r = verity_config_load(img->path, &img->dissected, o->root_hash, o->root_hash_size, o->root_hash_sig,
                               o->root_hash_sig_size, o->verity_data, &img->verity);
        if (r < 0)
                return r;
        verity_config_offer(&img->verity, &img->dissected, offer);
        for (PartitionDesignator d = 0; d < _PARTITION_DESIGNATOR_MAX && vd < 0; d++)
                if (offer[d].why)
                        vd = d;

        r = image_policy_decide(o->policy ?: &image_policy_container, &img->dissected, offer, img->use, &detail);
        if (r == -ENOMEM)
                return log_oom();
        if (r == -ENOKEY)
                return log_error_errno(r, "Refusing image '%s': %s; berth does not mount verity-protected data "
                                          "unprotected unless told to. Pass what is missing (--root-hash=, "
                                          "--verity-data=), or --image-policy=%s=unprotected to use it without "
                                          "verity.", img->path, strna(detail), partition_designator_to_string(vd));
        if (r == -ERFKILL)
                return log_error_errno(r, "Refusing image '%s': %s (image policy: %s). Change --image-policy=, or use "
                                          "another image.", img->path, strna(detail), policy_name(o, &pol));
        if (r < 0)
                return log_error_errno(r, "Refusing image '%s': %s.", img->path, strna(detail));

        for (PartitionDesignator d = 0; d < _PARTITION_DESIGNATOR_MAX; d++) {
                if (img->use[d] == PARTITION_USE_VERITY || img->use[d] == PARTITION_USE_SIGNED) {
                        if (verity_dm_available())
                                continue;
                        return log_error_errno(-EOPNOTSUPP,
                                               "Refusing image '%s': its %s partition is to be used with dm-verity "
                                               "(root hash from %s, hash tree from %s), and this kernel has no "
                                               "device-mapper (/dev/mapper/control). Run it on a kernel with "
                                               "dm-verity, or pass --image-policy=%s=unprotected to check it once in "
                                               "userspace against the root hash and mount it without dm-verity.",
                                               img->path, partition_designator_to_string(d),
                                               img->verity.root_hash_from,
                                               img->verity.data_from ?: "the image's verity partition",
                                               partition_designator_to_string(d));
                }
                if (img->use[d] != PARTITION_USE_UNPROTECTED || img->verity.designator != d)
                        continue;
                if (img->verity.root_hash && !verity_checkable(img, d))
                        log_warning("Not checking the %s partition of image '%s' against the root hash from %s: "
                                    "there is no hash tree for it.", partition_designator_to_string(d), img->path,
                                    img->verity.root_hash_from);
                if (img->verity.sig)
                        log_notice("Not checking the signature from %s: only the kernel's dm-verity checks "
                                   "signatures, and the policy has the %s partition used without it.",
                                   img->verity.sig_from, partition_designator_to_string(d));
        }
        return 0;
}

int image_open(const char *path, const ImageOptions *o, Image **ret) {
        _cleanup_(image_freep) Image *img = NULL;
        _cleanup_free_ char *detail = NULL;
        ImageFlags flags = o->flags;
        bool ro = flags & (IMAGE_READ_ONLY | IMAGE_EPHEMERAL);
        int r;

        img = calloc(1, sizeof *img);
        if (!img)
                return log_oom();
        img->fd = img->tree_fd = -EBADF;
        img->flags = flags;
        img->verity = VERITY_CONFIG_NULL;
        for (size_t i = 0; i < ELEMENTSOF(img->loops); i++) {
                img->loops[i] = LOOP_DEVICE_NULL;
                img->mounts[i] = -EBADF;
        }
        img->path = strdup(path);
        if (!img->path)
                return log_oom();

        img->fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY);
        if (img->fd < 0) {
                r = negative_errno();
                if (!ro && (r == -EROFS || r == -EACCES || r == -EPERM))
                        return log_error_errno(r, "Failed to open image '%s' for writing: %m. Pass --read-only (or "
                                                  "--ephemeral) to use it without writing.", path);
                return log_error_errno(r, "Failed to open image '%s' (--image=): %m", path);
        }

        r = dissect_image_fd(img->fd, &img->dissected, &detail);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return log_error_errno(r, "Cannot use image '%s': %s.", path, detail ?: strerror(-r));

        r = image_decide(img, o);
        if (r < 0)
                return r;

        r = image_mount_partitions(img);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(img);
        return 0;
}

Image *image_free(Image *i) {
        if (!i)
                return NULL;
        /* the mounts first: with autoclear, a loop goes once neither a mount nor an fd holds it */
        safe_close(i->tree_fd);
        for (size_t k = 0; k < ELEMENTSOF(i->mounts); k++)
                safe_close(i->mounts[k]);
        for (size_t k = 0; k < ELEMENTSOF(i->dm_names); k++) {
                /* deferred: a device still mounted goes with its last mount */
                if (i->dm_names[k])
                        (void) verity_deactivate_deferred(i->dm_names[k]);
                free(i->dm_names[k]);
                free(i->dm_paths[k]);
        }
        for (size_t k = 0; k < ELEMENTSOF(i->loops); k++)
                loop_device_done(&i->loops[k]);
        verity_config_done(&i->verity);
        safe_close(i->fd);
        dissected_image_done(&i->dissected);
        free(i->path);
        free(i);
        return NULL;
}

char **image_loop_paths(const Image *i) {
        _cleanup_strv_free_ char **l = NULL;

        for (size_t k = 0; k < ELEMENTSOF(i->loops); k++)
                if (i->loops[k].fd >= 0 && strv_extend(&l, i->loops[k].path) < 0)
                        return NULL;
        if (!l)
                l = calloc(1, sizeof(char *));
        return TAKE_PTR(l);
}
