/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* berthctl copy-to, copy-from and bind: moving files and mounts into and out of a machine. */
#include <dirent.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/mount.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <linux/securebits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-event.h>
#include <systemd/sd-journal.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "berth-caps.h"
#include "berth-console.h"
#include "berth-seccomp.h"
#include "berth-settings.h"
#include "berthctl.h"
#include "log.h"
#include "machine-name.h"
#include "registry.h"
#include "util.h"
#include "berthctl-machine.h"

/* ---------------------------------------------------------------------------------------------------- */
/* copy-to, copy-from                                                                                   */
/* ---------------------------------------------------------------------------------------------------- */

/* Everything below works on fds: the source is walked with O_PATH|O_NOFOLLOW and reopened through
 * its own fd, the destination is created relative to directory fds we hold, with O_EXCL and
 * O_NOFOLLOW. A symlink on either side is copied as a symlink, never followed; so a guest that
 * plants "etc -> /etc" or swaps a directory for a symlink while we copy gets nowhere on the host. */

/* Device nodes and sockets are not copied: a device node the guest chose must not appear on the host
 * (nor the other way round), and a socket is nothing without its listener. */
static const char *special_file_type(mode_t m) {
        return S_ISCHR(m) ? "character device" : S_ISBLK(m) ? "block device" : S_ISSOCK(m) ? "socket" : NULL;
}

static int reopen_fd(int fd, int flags) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        int r = open(path, flags | O_CLOEXEC | O_NOCTTY);
        return r < 0 ? negative_errno() : r;
}

static int copy_fd(int src, const struct stat *st, int dst_dir, const char *name, unsigned depth);

/* copy-from: a guest's setuid or setgid file must not become one on the host */
static mode_t copy_mode_mask = 07777;

/* Owners: kept as they are, except on a machine with a user namespace, where, as with machinectl,
 * everything copied belongs to the receiving side's root: to the guest's root (we create as it, see
 * verb_copy()), or to the host's root. A guest must not choose which host user owns what it hands
 * out, and no chown by name can be turned by the guest onto something else. */
static bool copy_keep_owners = true;

/* copy-from: the guest's tree is walked; a mount it planted over an entry is not entered */
static bool copy_source_is_guest = false;

static int copy_attrs(int fd, const struct stat *st) {
        struct timespec ts[2] = { st->st_atim, st->st_mtim };
        if (copy_keep_owners && fchown(fd, st->st_uid, st->st_gid) < 0)
                log_debug_errno(negative_errno(), "Failed to change owner, ignoring: %m");
        if (fchmod(fd, st->st_mode & copy_mode_mask) < 0)
                return negative_errno();
        (void) futimens(fd, ts);
        return 0;
}

static int copy_regular(int src, const struct stat *st, int dst_dir, const char *name) {
        _cleanup_close_ int in = -EBADF, out = -EBADF;
        char buf[65536];
        int r;

        in = reopen_fd(src, O_RDONLY);
        if (in < 0)
                return in;
        out = openat(dst_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
        if (out < 0)
                return negative_errno();
        for (;;) {
                ssize_t k = copy_file_range(in, NULL, out, NULL, SIZE_MAX / 2, 0);
                if (k == 0)
                        break;
                if (k > 0)
                        continue;
                if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
                        return negative_errno();
                /* fall back to read/write for the rest */
                while ((k = read(in, buf, sizeof buf)) != 0) {
                        if (k < 0) {
                                if (errno == EINTR)
                                        continue;
                                return negative_errno();
                        }
                        r = loop_write(out, buf, (size_t) k);
                        if (r < 0)
                                return r;
                }
                break;
        }
        return copy_attrs(out, st);
}

static int copy_directory(int src, const struct stat *st, int dst_dir, const char *name, unsigned depth) {
        _cleanup_close_ int out = -EBADF;
        DIR *d;
        struct dirent *de;
        int in, r = 0;

        if (depth > 256)
                return -ELOOP;
        /* always a new directory: a copy never merges into one that is there (see copy_into_place()) */
        if (mkdirat(dst_dir, name, 0700) < 0)
                return negative_errno();
        /* the guest may have put a mount (of a host directory) over the new name since: not entered */
        out = openat_beneath(dst_dir, name, O_RDONLY | O_DIRECTORY);
        if (out < 0)
                return out;
        in = reopen_fd(src, O_RDONLY | O_DIRECTORY);
        if (in < 0)
                return in;
        d = fdopendir(in);
        if (!d) {
                safe_close(in);
                return negative_errno();
        }
        while ((de = readdir(d))) {
                _cleanup_close_ int fd = -EBADF;
                struct stat cst;
                int q;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                fd = copy_source_is_guest ? openat_beneath(dirfd(d), de->d_name, O_PATH)
                                          : RET_NERRNO(openat(dirfd(d), de->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
                if (fd < 0)
                        q = fd;
                else if (fstat(fd, &cst) < 0)
                        q = negative_errno();
                else
                        q = copy_fd(fd, &cst, out, de->d_name, depth + 1);
                if (q == -EMEDIUMTYPE && special_file_type(cst.st_mode))
                        log_error("Failed to copy '%s': it is a %s; only files, directories, symbolic links and "
                                  "fifos are copied.", de->d_name, special_file_type(cst.st_mode));
                else if (q < 0 && q != -EMEDIUMTYPE) /* a special file further down: named there */
                        log_error_errno(q, "Failed to copy '%s': %m", de->d_name);
                if (q < 0) {
                        if (r == 0)
                                r = q;
                }
        }
        closedir(d);
        int q = copy_attrs(out, st);
        return r < 0 ? r : q;
}

static int copy_fd(int src, const struct stat *st, int dst_dir, const char *name, unsigned depth) {
        if (special_file_type(st->st_mode))
                return -EMEDIUMTYPE;
        if (S_ISREG(st->st_mode))
                return copy_regular(src, st, dst_dir, name);
        if (S_ISDIR(st->st_mode))
                return copy_directory(src, st, dst_dir, name, depth);
        if (S_ISLNK(st->st_mode)) {
                char target[PATH_MAX];
                ssize_t k = readlinkat(src, "", target, sizeof target - 1);
                if (k < 0)
                        return negative_errno();
                target[k] = 0;
                if (symlinkat(target, dst_dir, name) < 0)
                        return negative_errno();
                if (copy_keep_owners) {
                        /* through an fd of the link itself: the name may have been swapped meanwhile */
                        _cleanup_close_ int l = openat_beneath(dst_dir, name, O_PATH);
                        struct stat lst;
                        if (l >= 0 && fstat(l, &lst) >= 0 && S_ISLNK(lst.st_mode))
                                (void) fchownat(l, "", st->st_uid, st->st_gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
                }
                return 0;
        }
        if (S_ISFIFO(st->st_mode)) {
                if (mkfifoat(dst_dir, name, st->st_mode & copy_mode_mask) < 0)
                        return negative_errno();
                return 0;
        }
        return -EMEDIUMTYPE;
}

/* The copy is made under a temporary name next to its destination and renamed into place only when it
 * is complete: a failed copy leaves nothing, and an existing destination is never merged into or
 * written through. Without --force an existing one is an error (-EEXIST); with --force it is swapped
 * out whole (RENAME_EXCHANGE) and then removed. */
static int copy_into_place(int src, const struct stat *st, int dst_dir, const char *name) {
        char tmp[NAME_MAX + 1];
        struct stat est;
        uint64_t rnd = 0;
        bool exists;
        int r;

        exists = fstatat(dst_dir, name, &est, AT_SYMLINK_NOFOLLOW) >= 0;
        if (exists && !arg.force)
                return -EEXIST;
        (void) getrandom(&rnd, sizeof rnd, GRND_NONBLOCK);
        snprintf(tmp, sizeof tmp, ".#berthctl-copy-%016llx", (unsigned long long) rnd);
        r = copy_fd(src, st, dst_dir, tmp, 0);
        if (r >= 0) {
                unsigned flags = exists ? RENAME_EXCHANGE : RENAME_NOREPLACE;
                r = RET_NERRNO(renameat2(dst_dir, tmp, dst_dir, name, flags));
                if (r == -ENOENT && exists) /* gone in the meantime */
                        r = RET_NERRNO(renameat2(dst_dir, tmp, dst_dir, name, RENAME_NOREPLACE));
        }
        /* on success what was there is at tmp now; on failure our partial copy is */
        (void) rm_rf_at_name(dst_dir, tmp);
        return r;
}

/* Splits PATH into an fd of its directory (opened with OPEN_DIR) and its last component. */
static int split_path(const char *path, char **ret_dir, char **ret_base) {
        const char *slash = strrchr(path, '/');
        char *d, *b;

        while (slash && slash > path && slash[1] == 0) /* trailing slashes */
                return -EINVAL;
        if (!slash) {
                d = strdup(".");
                b = strdup(path);
        } else {
                d = slash == path ? strdup("/") : strndup(path, (size_t) (slash - path));
                b = strdup(slash + 1);
        }
        if (!d || !b) {
                free(d);
                free(b);
                return -ENOMEM;
        }
        if (isempty(b) || streq(b, ".") || streq(b, "..")) {
                free(d);
                free(b);
                return -EINVAL;
        }
        *ret_dir = d;
        *ret_base = b;
        return 0;
}

/* What a copy into a -U machine creates is created as the guest's root: where its tree is mounted
 * idmapped the host's root has no id there (a create fails with EOVERFLOW), the guest root's does,
 * and on a shifted tree it is the owner wanted. Only the file system ids change; with
 * SECBIT_NO_SETUID_FIXUP (added to the bits we had, put back after) our capabilities stay. */
static int fs_ids_become(uid_t id, int *ret_saved_bits) {
        int bits = prctl(PR_GET_SECUREBITS);

        if (bits < 0 || prctl(PR_SET_SECUREBITS, bits | SECBIT_NO_SETUID_FIXUP) < 0)
                return negative_errno();
        (void) setfsuid(id);
        (void) setfsgid(id);
        if ((uid_t) setfsuid((uid_t) -1) != id || (gid_t) setfsgid((gid_t) -1) != id) {
                (void) setfsuid(0);
                (void) setfsgid(0);
                (void) prctl(PR_SET_SECUREBITS, bits);
                return -EPERM;
        }
        *ret_saved_bits = bits;
        return 0;
}

static void fs_ids_restore(int saved_bits) {
        (void) setfsuid(0);
        (void) setfsgid(0);
        (void) prctl(PR_SET_SECUREBITS, saved_bits);
}

int verb_copy(int argc, char *argv[]) {
        bool to = streq(argv[0], "copy-to");
        _cleanup_(machine_info_freep) MachineInfo *m = NULL;
        _cleanup_close_ int root = -EBADF, src = -EBADF, dst_dir = -EBADF, existing = -EBADF;
        _cleanup_free_ char *src_dir = NULL, *src_base = NULL, *dir = NULL, *base = NULL;
        const char *from = argv[2], *dest = argc > 3 ? argv[3] : argv[2];
        const char *guest = to ? dest : from;
        bool into = false;
        uid_t guest_root = 0;
        int saved_bits = 0;
        struct stat st;
        int r;

        r = machine_get_berth_logged(argv[1], &m);
        if (r < 0)
                return r;
        if (!to)
                copy_mode_mask = 01777;
        if (m->record && m->record->uid_range > 0 && m->record->uid_shift > 0) {
                guest_root = m->record->uid_shift;
                copy_keep_owners = false;
        }
        copy_source_is_guest = !to;
        if (!path_is_absolute(guest))
                return log_error_errno(-EINVAL, "The path in the machine must be absolute: '%s'.", guest);
        r = machine_open_root(m, &root);
        if (r < 0)
                return log_error_errno(r, "Failed to open the root of machine '%s': %m", m->name);

        /* the source: the host's is the user's own path; the guest's is resolved in its root */
        src = to ? open(from, O_PATH | O_CLOEXEC) : open_in_root(root, from, O_PATH);
        if (src < 0)
                return log_error_errno(to ? negative_errno() : src, "Failed to open '%s'%s%s: %m", from,
                                       to ? "" : " in machine ", to ? "" : m->name);
        if (fstat(src, &st) < 0)
                return log_error_errno(negative_errno(), "Failed to stat '%s': %m", from);
        r = split_path(from, &src_dir, &src_base);
        if (r < 0)
                return log_error_errno(r, "Invalid source path '%s'.", from);

        if (special_file_type(st.st_mode))
                return log_error_errno(-EMEDIUMTYPE, "Refusing to copy '%s': it is a %s; only files, directories, "
                                                     "symbolic links and fifos are copied.",
                                       from, special_file_type(st.st_mode));

        /* A destination that was given and is an existing directory: the copy goes into it, as cp
         * does. One that was left out is the source's own path, and the copy is that path exactly (a
         * host's /etc never receives the guest's as /etc/etc). */
        if (argc > 3)
                existing = to ? open_in_root(root, dest, O_PATH | O_DIRECTORY)
                              : open(dest, O_PATH | O_DIRECTORY | O_CLOEXEC);
        into = existing >= 0;
        if (into) {
                dst_dir = TAKE_FD(existing);
                base = TAKE_PTR(src_base);
        } else {
                r = split_path(dest, &dir, &base);
                if (r < 0)
                        return log_error_errno(r, "Invalid destination path '%s'.", dest);
                dst_dir = to ? open_in_root(root, dir, O_PATH | O_DIRECTORY) : open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (dst_dir < 0)
                        return log_error_errno(to ? dst_dir : negative_errno(), "Failed to open directory '%s'%s%s: %m", dir,
                                               to ? " in machine " : "", to ? m->name : "");
        }
        if (to && guest_root > 0) {
                r = fs_ids_become(guest_root, &saved_bits);
                if (r < 0)
                        return log_error_errno(r, "Failed to write as the root of machine '%s' (host id %u): %m",
                                               m->name, (unsigned) guest_root);
        }
        r = copy_into_place(src, &st, dst_dir, base);
        if (to && guest_root > 0)
                fs_ids_restore(saved_bits);
        if (r == -EEXIST) {
                _cleanup_free_ char *target = into ? path_join(dest, base) : NULL;
                return log_error_errno(r, "Failed to copy '%s' to '%s': it exists%s (--force replaces it).", from,
                                       target ?: dest, to ? " in the machine" : " on the host");
        }
        if (r == -EMEDIUMTYPE)
                return log_error_errno(r, "Failed to copy '%s' %s machine '%s': it holds a device node or socket "
                                          "(named above), which is not copied; nothing was copied.",
                                       from, to ? "into" : "from", m->name);
        if (r < 0)
                return log_error_errno(r, "Failed to copy '%s' %s machine '%s': %m", from, to ? "into" : "from", m->name);
        return 0;
}

/* ---------------------------------------------------------------------------------------------------- */
/* bind                                                                                                 */
/* ---------------------------------------------------------------------------------------------------- */

int verb_bind(int argc, char *argv[]) {
        _cleanup_(machine_info_freep) MachineInfo *m = NULL;
        _cleanup_close_ int tree = -EBADF, pidfd = -EBADF;
        _cleanup_close_pair_ int pair[2] = { -EBADF, -EBADF };
        _cleanup_free_ char *src = NULL;
        const char *dst;
        struct stat st;
        ExecMessage msg;
        pid_t pid;
        int r, fd;

        r = machine_get_berth_logged(argv[1], &m);
        if (r < 0)
                return r;
        r = path_make_absolute_cwd(argv[2], &src);
        if (r < 0)
                return log_oom();
        dst = argc > 3 ? argv[3] : src;
        if (!path_is_absolute(dst))
                return log_error_errno(-EINVAL, "The path in the machine must be absolute: '%s'.", dst);
        if (stat(src, &st) < 0)
                return log_error_errno(negative_errno(), "Failed to stat '%s': %m", src);

        /* a detached copy of the host's mount tree at SRC, made here, in the host's mount namespace */
        tree = open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
        if (tree < 0)
                return log_error_errno(negative_errno(), "Failed to clone the mount tree at '%s': %m", src);
        if (arg.read_only) {
                struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
                if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
                        return log_error_errno(negative_errno(), "Failed to make the mount of '%s' read-only: %m", src);
        }
        r = machine_open_leader(m, &pidfd);
        if (r < 0)
                return r;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
                return log_error_errno(negative_errno(), "Failed to create a socket pair: %m");

        pid = fork();
        if (pid < 0)
                return log_error_errno(negative_errno(), "Failed to fork: %m");
        if (pid == 0) {
                /* The machine's mount namespace (and so its root); all other namespaces are the host's.
                 * DST is resolved in there: its symlinks cannot lead out of the container. */
                _cleanup_close_ int target = -EBADF;
                int flags = CLONE_NEWNS | (same_namespace(m->leader, "user") ? 0 : CLONE_NEWUSER);

                pair[0] = safe_close(pair[0]);
                if (setns(pidfd, flags) < 0) {
                        r = negative_errno();
                        goto child_fail;
                }
                if (arg.mkdir) {
                        r = S_ISDIR(st.st_mode) ? mkdir_p(dst, 0755) : mkdir_parents(dst, 0755);
                        if (r < 0)
                                goto child_fail;
                        if (!S_ISDIR(st.st_mode)) {
                                r = touch(dst, 0644);
                                if (r < 0 && r != -EEXIST)
                                        goto child_fail;
                        }
                }
                target = open(dst, O_PATH | O_CLOEXEC);
                if (target < 0) {
                        r = negative_errno();
                        goto child_fail;
                }
                if (move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) {
                        r = negative_errno();
                        goto child_fail;
                }
                _exit(EXIT_SUCCESS);
        child_fail:
                (void) send_message(pair[1], EXEC_MSG_FAILED, r, -EBADF);
                _exit(EXIT_FAILURE);
        }
        pair[1] = safe_close(pair[1]);
        r = recv_message(pair[0], &msg, &fd);
        safe_close(fd);
        (void) waitpid(pid, NULL, 0);
        if (r > 0) {
                r = msg.error < 0 ? msg.error : -EIO;
                if (r == -ENOENT && !arg.mkdir)
                        return log_error_errno(r, "Failed to bind '%s' to '%s' in machine '%s': '%s' does not exist "
                                                  "there (--mkdir creates it).", src, dst, m->name, dst);
                return log_error_errno(r, "Failed to bind '%s' to '%s' in machine '%s': %m", src, dst, m->name);
        }
        return 0;
}
