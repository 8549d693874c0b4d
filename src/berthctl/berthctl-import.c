/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Importing and exporting images: import-tar, export-tar, import-raw, export-raw, import-fs.
 *
 * Archives are read and written by the host's tar program in a child, not by
 * an extractor of ours: GNU tar knows the formats, sparse files, xattrs and
 * ACLs. An archive is hostile input (pull-tar fetches them from the network),
 * so on import the tar stream passes a gate on its way to tar (tar-check.h):
 * it reads the headers and refuses the whole archive at a member with an
 * absolute name or "..", one below a symlink the archive made, a hard link out
 * of the tree, a device node, a setuid file or a file capability (the last
 * three unless asked), and when the stream grows beyond --max-size= or
 * --max-files=. tar then extracts only into a fresh temporary directory (see
 * TempImage), relative to it, and since no member lies below a symlink of the
 * archive, no path it resolves leaves it. tar does not rely on that alone: it
 * runs in a mount namespace of its own where everything but the temporary
 * directory is read-only, so a write that escapes the directory through a bug
 * of tar's meets EROFS.
 *
 * We feed tar the archive through a pipe, which gives the progress line, and
 * decompress it ourselves in a child (the decompressor chosen from the magic
 * bytes), so that the gate sees the tar stream. Raw images go through the
 * xz, gzip, zstd or bzip2 programs in a pipe too: no second
 * implementation of the formats in berthctl, and a decompressor bug stays in
 * a child that can only write to a pipe.
 */

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "berth-devices.h"
#include "berthctl.h"
#include "berthctl-images.h"
#include "berthctl-import.h"
#include "copy.h"
#include "log.h"
#include "machine-name.h"
#include "tar-check.h"
#include "util.h"

/* In a child, before it runs a program that writes into the temporary DIR: a mount namespace
 * of its own (slave, nothing goes back to the host) in which every mount is read-only but a
 * bind mount of DIR on itself. */
static int isolate_writes(const char *dir) {
        struct mount_attr ro = { .attr_set = MOUNT_ATTR_RDONLY };
        _cleanup_close_ int tree = -EBADF;

        if (unshare(CLONE_NEWNS) < 0)
                return negative_errno();
        if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
                return negative_errno();
        tree = open_tree(AT_FDCWD, dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (tree < 0)
                return negative_errno();
        if (mount_setattr(AT_FDCWD, "/", AT_RECURSIVE, &ro, sizeof ro) < 0)
                return negative_errno();
        return RET_NERRNO(move_mount(tree, "", AT_FDCWD, dir, MOVE_MOUNT_F_EMPTY_PATH));
}

typedef enum SpawnStage {
        SPAWN_EXEC,
        SPAWN_ISOLATE,
        SPAWN_FDS,
} SpawnStage;

/* An exec failure comes back through a pipe as the stage and an errno. */
int program_spawn(char *const *argv, int stdin_fd, int stdout_fd, int stderr_fd, const int *keep, size_t n_keep,
                  const char *writable_dir, pid_t *ret_pid) {
        _cleanup_close_pair_ int errpipe[2] = { -EBADF, -EBADF };
        _cleanup_close_ int null_fd = -EBADF;
        int e[2] = { 0, 0 };
        ssize_t k;
        pid_t pid;

        if (n_keep > 8)
                return log_error_errno(-E2BIG, "Too many fds for '%s'.", argv[0]);
        if (pipe2(errpipe, O_CLOEXEC) < 0)
                return log_error_errno(negative_errno(), "Failed to create a pipe: %m");
        if (stdin_fd < 0) {
                null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (null_fd < 0)
                        return log_error_errno(negative_errno(), "Failed to open /dev/null: %m");
                stdin_fd = null_fd;
        }
        pid = fork();
        if (pid < 0)
                return log_error_errno(negative_errno(), "Failed to start %s: %m", argv[0]);
        if (pid == 0) {
                /* the child: our namespaces (a mount namespace of its own with WRITABLE_DIR), our privileges */
                int all[9] = { errpipe[1] }, r;
                sigset_t none;

                (void) signal(SIGINT, SIG_DFL);
                (void) signal(SIGTERM, SIG_DFL);
                (void) signal(SIGHUP, SIG_DFL);
                (void) signal(SIGPIPE, SIG_DFL);
                sigemptyset(&none);
                (void) sigprocmask(SIG_SETMASK, &none, NULL);
                if (writable_dir && (r = isolate_writes(writable_dir)) < 0) {
                        e[0] = SPAWN_ISOLATE;
                        errno = -r;
                        goto fail;
                }
                e[0] = SPAWN_FDS;
                for (size_t i = 0; i < n_keep; i++)
                        all[i + 1] = keep[i];
                if (dup2(stdin_fd, STDIN_FILENO) < 0 ||
                    (stdout_fd >= 0 && stdout_fd != STDOUT_FILENO && dup2(stdout_fd, STDOUT_FILENO) < 0) ||
                    (stderr_fd >= 0 && stderr_fd != STDERR_FILENO && dup2(stderr_fd, STDERR_FILENO) < 0) ||
                    close_all_fds(all, n_keep + 1) < 0)
                        goto fail;
                for (size_t i = 0; i < n_keep; i++)
                        if (fd_set_cloexec(keep[i], false) < 0)
                                goto fail;
                e[0] = SPAWN_EXEC;
                execvp(argv[0], argv);
        fail:
                e[1] = errno;
                (void) !write(errpipe[1], e, sizeof e);
                _exit(127);
        }
        errpipe[1] = safe_close(errpipe[1]);
        do
                k = read(errpipe[0], e, sizeof e);
        while (k < 0 && errno == EINTR);
        if (k == sizeof e) {
                (void) waitpid(pid, NULL, 0);
                if (e[0] == SPAWN_ISOLATE)
                        return log_error_errno(-e[1], "Failed to make the host read-only for %s in a mount namespace "
                                                      "of its own: %m", argv[0]);
                return log_error_errno(-e[1], "Failed to run %s: %m%s", argv[0],
                                       e[0] == SPAWN_EXEC && e[1] == ENOENT ? " (is it installed?)" : "");
        }
        *ret_pid = pid;
        return 0;
}

int program_wait(pid_t pid, const char *prog, int ok_status, const char *what, bool quiet) {
        bool killed = false;
        int status;

        for (;;) {
                if (cancelled && !killed) {
                        (void) kill(pid, SIGTERM);
                        killed = true;
                }
                if (waitpid(pid, &status, 0) >= 0)
                        break;
                if (errno != EINTR)
                        return log_error_errno(negative_errno(), "Failed to wait for %s: %m", prog);
        }
        if (cancelled)
                return log_error_errno(-ECANCELED, "Interrupted: %s stopped, nothing is left behind.", what);
        if (WIFEXITED(status) && WEXITSTATUS(status) <= ok_status)
                return 0;
        if (quiet)
                return -EIO;
        if (WIFEXITED(status))
                return log_error_errno(-EIO, "Failed to %s: %s exited with status %d (its messages are above).", what,
                                       prog, WEXITSTATUS(status));
        return log_error_errno(-EIO, "Failed to %s: %s was killed by signal %d.", what, prog, WTERMSIG(status));
}

static const char *const compression_option[_COMPRESSION_MAX] = {
        [COMPRESSION_NONE] = NULL,
        [COMPRESSION_GZIP] = "--gzip",
        [COMPRESSION_XZ] = "--xz",
        [COMPRESSION_ZSTD] = "--zstd",
        [COMPRESSION_BZIP2] = "--bzip2",
};

static const char *const compression_program[_COMPRESSION_MAX] = {
        [COMPRESSION_NONE] = NULL,
        [COMPRESSION_GZIP] = "gzip",
        [COMPRESSION_XZ] = "xz",
        [COMPRESSION_ZSTD] = "zstd",
        [COMPRESSION_BZIP2] = "bzip2",
};

/* tar's own detection works on files only, not on the pipe we feed it: look at the magic bytes. */
Compression compression_from_magic(const uint8_t *b, size_t n) {
        if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b)
                return COMPRESSION_GZIP;
        if (n >= 6 && memcmp(b, "\xfd" "7zXZ\0", 6) == 0)
                return COMPRESSION_XZ;
        if (n >= 4 && memcmp(b, "\x28\xb5\x2f\xfd", 4) == 0)
                return COMPRESSION_ZSTD;
        if (n >= 3 && memcmp(b, "BZh", 3) == 0)
                return COMPRESSION_BZIP2;
        return COMPRESSION_NONE;
}

static const struct {
        const char *suffix;
        Compression compression;
} tar_suffixes[] = {
        { ".tar.gz", COMPRESSION_GZIP },   { ".tgz", COMPRESSION_GZIP },   { ".tar.xz", COMPRESSION_XZ },
        { ".txz", COMPRESSION_XZ },        { ".tar.zst", COMPRESSION_ZSTD }, { ".tzst", COMPRESSION_ZSTD },
        { ".tar.bz2", COMPRESSION_BZIP2 }, { ".tbz2", COMPRESSION_BZIP2 }, { ".tbz", COMPRESSION_BZIP2 },
        { ".tar", COMPRESSION_NONE },      { ".gz", COMPRESSION_GZIP },    { ".xz", COMPRESSION_XZ },
        { ".zst", COMPRESSION_ZSTD },      { ".bz2", COMPRESSION_BZIP2 },
}, raw_suffixes[] = {
        { ".raw.gz", COMPRESSION_GZIP },   { ".raw.xz", COMPRESSION_XZ },  { ".raw.zst", COMPRESSION_ZSTD },
        { ".raw.bz2", COMPRESSION_BZIP2 }, { ".img.gz", COMPRESSION_GZIP }, { ".img.xz", COMPRESSION_XZ },
        { ".img.zst", COMPRESSION_ZSTD },  { ".raw", COMPRESSION_NONE },   { ".img", COMPRESSION_NONE },
        { ".gz", COMPRESSION_GZIP },       { ".xz", COMPRESSION_XZ },      { ".zst", COMPRESSION_ZSTD },
        { ".bz2", COMPRESSION_BZIP2 },
};

/* "debian-12.tar.xz" -> "debian-12", "fedora.raw.xz" -> "fedora" (RAW: the suffixes of raw images) */
int image_name_from_file(const char *file, bool raw, char **ret) {
        _cleanup_free_ char *n = strdup(path_basename(file));
        size_t k = raw ? ELEMENTSOF(raw_suffixes) : ELEMENTSOF(tar_suffixes);

        if (!n)
                return -ENOMEM;
        for (size_t i = 0; i < k; i++) {
                const char *suffix = raw ? raw_suffixes[i].suffix : tar_suffixes[i].suffix;
                if (endswith(n, suffix) && strlen(n) > strlen(suffix)) {
                        n[strlen(n) - strlen(suffix)] = 0;
                        break;
                }
        }
        if (!image_name_is_valid(n))
                return -EINVAL;
        *ret = TAKE_PTR(n);
        return 0;
}

/* The compression an export to FILE gets from its suffix (RAW: the suffixes of raw images); none
 * for standard output ("-"). */
static Compression compression_from_suffix(const char *file, bool raw) {
        size_t k = raw ? ELEMENTSOF(raw_suffixes) : ELEMENTSOF(tar_suffixes);

        for (size_t i = 0; !streq(file, "-") && i < k; i++)
                if (endswith(file, raw ? raw_suffixes[i].suffix : tar_suffixes[i].suffix))
                        return raw ? raw_suffixes[i].compression : tar_suffixes[i].compression;
        return COMPRESSION_NONE;
}

/* Reads until N >= WANT bytes are in BUF (or the end). */
static int read_head(int in, uint8_t *buf, size_t size, size_t want, size_t *ret_n) {
        size_t n = 0;

        while (n < want) {
                ssize_t k = read(in, buf + n, size - n);
                if (k < 0) {
                        if (errno == EINTR && !cancelled)
                                continue;
                        return cancelled ? -ECANCELED : negative_errno();
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        *ret_n = n;
        return 0;
}

#define SPARSE_BLOCK 4096

static bool block_is_zero(const uint8_t *p, size_t n) {
        return n > 0 && p[0] == 0 && memcmp(p, p + 1, n - 1) == 0;
}

/* Copies IN to its end into OUT, starting with the N bytes in BUF. SPARSE (OUT is a fresh
 * regular file): blocks of zeros become holes, as a disk image has many. Returns -ECANCELED on
 * Ctrl-C, -EPIPE when OUT's reader is gone. */
static int copy_stream(int in, int out, uint8_t *buf, size_t n, size_t size, bool sparse, ProgressBar *bar) {
        uint64_t done = 0;
        bool hole = false;

        for (;;) {
                for (size_t off = 0; off < n;) {
                        size_t l = MIN((size_t) SPARSE_BLOCK, n - off);
                        if (sparse && l == SPARSE_BLOCK && block_is_zero(buf + off, l)) {
                                if (lseek(out, (off_t) l, SEEK_CUR) < 0)
                                        return negative_errno();
                                hole = true;
                        } else {
                                int r = loop_write(out, buf + off, l);
                                if (r < 0)
                                        return cancelled ? -ECANCELED : r;
                                hole = false;
                        }
                        off += l;
                }
                done += n;
                progress_bar_update(bar, done);
                if (cancelled)
                        return -ECANCELED;
                ssize_t k = read(in, buf, size);
                if (k < 0) {
                        if (errno == EINTR && !cancelled)
                                continue;
                        return cancelled ? -ECANCELED : negative_errno();
                }
                if (k == 0)
                        break;
                n = (size_t) k;
        }
        /* a hole at the end: the file's size says where it ends */
        if (hole && ftruncate(out, (off_t) done) < 0)
                return negative_errno();
        return 0;
}

/* Device nodes out of an archive: only those every container may use (berth's device
 * policy). A node of a host disk in a tree under /var/lib/machines would be one chmod away
 * from the disk's data for whoever reaches the tree, and the container could not use it. */
static int scrub_device_nodes(int dir_fd, unsigned depth, unsigned *n_removed) {
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int fd, r;

        if (depth > 256)
                return -ELOOP;
        fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        d = fdopendir(fd);
        if (!d) {
                r = negative_errno();
                safe_close(fd);
                return r;
        }
        while ((errno = 0, de = readdir(d))) {
                struct stat st;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (de->d_type != DT_DIR && de->d_type != DT_CHR && de->d_type != DT_BLK && de->d_type != DT_UNKNOWN)
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return negative_errno();
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int sub = openat(dirfd(d), de->d_name,
                                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub < 0)
                                return negative_errno();
                        r = scrub_device_nodes(sub, depth + 1, n_removed);
                        if (r < 0)
                                return r;
                        continue;
                }
                if ((!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode)) || device_node_allowed(st.st_mode, st.st_rdev))
                        continue;
                if (unlinkat(dirfd(d), de->d_name, 0) < 0)
                        return negative_errno();
                (*n_removed)++;
        }
        return errno > 0 ? -errno : 0;
}

static int feeder_spawn(int in, const uint8_t *buf, size_t n, int *ret_fd, pid_t *ret_pid);

/* The tar stream from SRC, starting with the N bytes in BUF, through the gate CHECK into OUT
 * (tar's input). Stops after the end-of-archive blocks. PROGRESS_FD: where the progress is the
 * offset of the compressed input a decompressor reads (-EBADF: the bytes we pass). Returns
 * -EPERM or -EBADMSG when the gate refuses (CHECK->error says why), -ECANCELED on Ctrl-C. */
static int tar_pump(int src, int out, uint8_t *buf, size_t n, size_t size, TarCheck *check, int progress_fd,
                    ProgressBar *bar) {
        uint64_t done = 0;
        int r;

        for (;;) {
                if (n > 0) {
                        r = tar_check_feed(check, buf, n);
                        if (r < 0)
                                return r;
                }
                for (size_t w = 0; w < n;) {
                        ssize_t k = write(out, buf + w, n - w);
                        if (k < 0) {
                                if (errno == EINTR && !cancelled)
                                        continue;
                                if (cancelled)
                                        return -ECANCELED;
                                /* EPIPE: tar gave up, program_wait() says why */
                                return errno == EPIPE ? 0 : negative_errno();
                        }
                        w += (size_t) k;
                }
                done += n;
                if (progress_fd >= 0) {
                        off_t o = lseek(progress_fd, 0, SEEK_CUR);
                        progress_bar_update(bar, o > 0 ? (uint64_t) o : 0);
                } else
                        progress_bar_update(bar, done);
                if (check->done)
                        return 0;
                if (cancelled)
                        return -ECANCELED;
                ssize_t k = read(src, buf, size);
                if (k < 0) {
                        if (errno == EINTR && !cancelled)
                                continue;
                        return cancelled ? -ECANCELED : negative_errno();
                }
                if (k == 0)
                        return 0;
                n = (size_t) k;
        }
}

static void child_stop(pid_t *pid) {
        if (*pid <= 0)
                return;
        (void) kill(*pid, SIGTERM);
        while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
                ;
        *pid = 0;
}

int import_tar_into(int in, const char *label, uint64_t size, TempImage *t) {
        _cleanup_free_ char *dir_opt = NULL, *prefix = NULL, *what = NULL, *what_dec = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_close_pair_ int p[2] = { -EBADF, -EBADF }, dec[2] = { -EBADF, -EBADF };
        _cleanup_close_ int fed = -EBADF;
        TarCheck check = {
                .max_bytes = arg.max_size,
                .max_entries = arg.max_files,
                .keep_devices = arg.keep_devices,
                .keep_setuid = arg.keep_setuid,
                .keep_caps = arg.keep_caps,
                .device_allowed = device_node_allowed,
        };
        const size_t bufsize = 256 * 1024;
        pid_t pid = 0, dpid = 0, feeder = 0;
        int src = in, progress_fd = -EBADF;
        unsigned n_removed = 0;
        ProgressBar bar;
        Compression comp;
        size_t n;
        int r, q;

        buf = malloc(bufsize);
        if (!buf)
                return log_oom();
        r = read_head(in, buf, bufsize, 6, &n);
        if (r == -ECANCELED)
                return log_error_errno(r, "Interrupted: nothing is left behind.");
        if (r < 0)
                return log_error_errno(r, "Failed to read archive '%s': %m", label);
        if (n == 0)
                return log_error_errno(-EINVAL, "Archive '%s' is empty.", label);
        comp = compression_from_magic(buf, n);

        dir_opt = strjoin("--directory=", t->path);
        prefix = strjoin("Importing '", path_basename(label), "'");
        what = strjoin("extract '", label, "'");
        what_dec = strjoin("decompress '", label, "'");
        if (!dir_opt || !prefix || !what || !what_dec)
                return log_oom();

        /* We decompress in a child of our own rather than in tar, so that the gate sees the tar
         * stream itself: its headers, and how far it expands. */
        if (comp != COMPRESSION_NONE) {
                char *argv_d[] = { (char *) compression_program[comp], (char *) "-dc", NULL };
                int dsrc;

                if (lseek(in, 0, SEEK_SET) == 0) {
                        dsrc = in;
                        progress_fd = in; /* the decompressor's reads move the offset we share */
                } else {
                        r = feeder_spawn(in, buf, n, &fed, &feeder);
                        if (r < 0)
                                return r;
                        dsrc = fed;
                        size = 0;
                }
                if (pipe2(dec, O_CLOEXEC) < 0) {
                        r = log_error_errno(negative_errno(), "Failed to create a pipe: %m");
                        goto fail;
                }
                r = program_spawn(argv_d, dsrc, dec[1], -EBADF, NULL, 0, NULL, &dpid);
                if (r < 0)
                        goto fail;
                dec[1] = safe_close(dec[1]);
                fed = safe_close(fed);
                src = dec[0];
                n = 0;
        }

        /* --numeric-owner: the archive's uids, not the host's names for them;
         * --xattrs-include=*: file capabilities and ACLs, not only user.* (but no capabilities
         * unless asked: the gate refuses them, tar leaves them out should it see one we did not) */
        char *tar_argv[] = {
                (char *) "tar", (char *) "--extract", (char *) "--file=-", dir_opt, (char *) "--numeric-owner",
                (char *) "--same-owner", (char *) "--preserve-permissions", (char *) "--xattrs",
                (char *) "--xattrs-include=*",
                (char *) (arg.keep_caps ? "--acls" : "--xattrs-exclude=security.capability"),
                (char *) (arg.keep_caps ? NULL : "--acls"), NULL,
        };
        if (pipe2(p, O_CLOEXEC) < 0) {
                r = log_error_errno(negative_errno(), "Failed to create a pipe: %m");
                goto fail;
        }
        r = program_spawn(tar_argv, p[0], -EBADF, -EBADF, NULL, 0, t->path, &pid);
        if (r < 0)
                goto fail;
        p[0] = safe_close(p[0]);

        progress_bar_init(&bar, stderr, prefix, size, progress_wanted());
        r = tar_pump(src, p[1], buf, n, bufsize, &check, progress_fd, &bar);
        progress_bar_finish(&bar);
        if (r < 0) {
                if (r == -ECANCELED)
                        r = log_error_errno(r, "Interrupted: nothing is left behind.");
                else if ((r == -EPERM || r == -EBADMSG) && check.error)
                        r = log_error_errno(r, "Refusing archive '%s': %s.", label, check.error);
                else
                        r = log_error_errno(r, "Failed to read archive '%s': %m", label);
                goto fail;
        }
        p[1] = safe_close(p[1]);
        dec[0] = safe_close(dec[0]);
        q = program_wait(pid, "tar", 0, what, false);
        pid = 0;
        if (q < 0) {
                r = q;
                goto fail;
        }
        if (dpid > 0 && !check.done) {
                /* the stream ended without the end-of-archive blocks: the decompressor says why, if it knows */
                q = program_wait(dpid, compression_program[comp], 0, what_dec, false);
                dpid = 0;
                if (q < 0) {
                        r = q;
                        goto fail;
                }
        }
        child_stop(&dpid);
        child_stop(&feeder);

        if (!arg.keep_devices) {
                /* the gate let only these through; a second look, as tar could read more than it */
                r = scrub_device_nodes(t->fd, 0, &n_removed);
                if (r < 0)
                        return log_error_errno(r, "Failed to look for device nodes in the tree of '%s': %m", label);
                if (n_removed > 0)
                        log_warning("Removed %u device node%s of '%s' that a container may not use.", n_removed,
                                    n_removed == 1 ? "" : "s", label);
        }
        tar_check_done(&check);
        return 0;

fail:
        /* tar first, while its input is open: a stream cut short would make it complain */
        child_stop(&pid);
        p[1] = safe_close(p[1]);
        dec[0] = safe_close(dec[0]);
        child_stop(&dpid);
        child_stop(&feeder);
        tar_check_done(&check);
        return r;
}

/* A child that writes the N bytes we read already, then the rest of IN, into a pipe: the
 * decompressor's input when IN cannot be rewound (standard input). */
static int feeder_spawn(int in, const uint8_t *buf, size_t n, int *ret_fd, pid_t *ret_pid) {
        _cleanup_close_pair_ int p[2] = { -EBADF, -EBADF };
        pid_t pid;

        if (pipe2(p, O_CLOEXEC) < 0)
                return log_error_errno(negative_errno(), "Failed to create a pipe: %m");
        pid = fork();
        if (pid < 0)
                return log_error_errno(negative_errno(), "Failed to fork: %m");
        if (pid == 0) {
                uint8_t b[64 * 1024];
                int keep[] = { in, p[1] };

                (void) signal(SIGPIPE, SIG_DFL);
                if (close_all_fds(keep, ELEMENTSOF(keep)) < 0 || loop_write(p[1], buf, n) < 0)
                        _exit(EXIT_FAILURE);
                for (;;) {
                        ssize_t k = read(in, b, sizeof b);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k <= 0)
                                _exit(k < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
                        if (loop_write(p[1], b, (size_t) k) < 0)
                                _exit(EXIT_FAILURE);
                }
        }
        *ret_fd = TAKE_FD(p[0]);
        *ret_pid = pid;
        return 0;
}

int import_raw_into(int in, const char *label, uint64_t size, TempImage *t) {
        _cleanup_free_ char *prefix = NULL, *what = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_close_pair_ int out[2] = { -EBADF, -EBADF };
        _cleanup_close_ int fed = -EBADF;
        const size_t bufsize = 256 * 1024;
        pid_t pid, feeder = 0;
        const char *prog;
        Compression comp;
        ProgressBar bar;
        size_t n;
        int src, r, q = 0;

        buf = malloc(bufsize);
        if (!buf)
                return log_oom();
        r = read_head(in, buf, bufsize, 6, &n);
        if (r == -ECANCELED)
                return log_error_errno(r, "Interrupted: nothing is left behind.");
        if (r < 0)
                return log_error_errno(r, "Failed to read image '%s': %m", label);
        if (n == 0)
                return log_error_errno(-EINVAL, "Image '%s' is empty.", label);
        comp = compression_from_magic(buf, n);
        prefix = strjoin("Importing '", path_basename(label), "'");
        what = strjoin("decompress '", label, "'");
        if (!prefix || !what)
                return log_oom();
        (void) fchmod(t->fd, 0644);

        if (comp == COMPRESSION_NONE) {
                progress_bar_init(&bar, stderr, prefix, size, progress_wanted());
                r = copy_stream(in, t->fd, buf, n, bufsize, true, &bar);
                progress_bar_finish(&bar);
                if (r == -ECANCELED)
                        return log_error_errno(r, "Interrupted: nothing is left behind.");
                if (r < 0)
                        return log_error_errno(r, "Failed to copy image '%s': %m", label);
                return 0;
        }

        prog = compression_program[comp];
        if (lseek(in, 0, SEEK_SET) == 0)
                src = in;
        else {
                r = feeder_spawn(in, buf, n, &fed, &feeder);
                if (r < 0)
                        return r;
                src = fed;
        }
        if (pipe2(out, O_CLOEXEC) < 0)
                return log_error_errno(negative_errno(), "Failed to create a pipe: %m");
        char *argv[] = { (char *) prog, (char *) "-dc", NULL };
        r = program_spawn(argv, src, out[1], -EBADF, NULL, 0, NULL, &pid);
        if (r < 0) {
                if (feeder > 0) {
                        (void) kill(feeder, SIGKILL);
                        (void) waitpid(feeder, NULL, 0);
                }
                return r;
        }
        out[1] = safe_close(out[1]);
        fed = safe_close(fed);

        progress_bar_init(&bar, stderr, prefix, 0, progress_wanted());
        r = read_head(out[0], buf, bufsize, 1, &n);
        if (r >= 0)
                r = copy_stream(out[0], t->fd, buf, n, bufsize, true, &bar);
        progress_bar_finish(&bar);
        out[0] = safe_close(out[0]);
        if (r < 0)
                (void) kill(pid, SIGTERM);
        q = program_wait(pid, prog, 0, what, r < 0);
        if (feeder > 0) {
                int status;
                if (r < 0 || q < 0)
                        (void) kill(feeder, SIGTERM);
                while (waitpid(feeder, &status, 0) < 0 && errno == EINTR)
                        ;
        }
        if (r == -ECANCELED || cancelled)
                return log_error_errno(-ECANCELED, "Interrupted: nothing is left behind.");
        if (r < 0)
                return log_error_errno(r, "Failed to write image '%s': %m", label);
        if (q < 0)
                return q;
        if (n == 0)
                return log_error_errno(-EINVAL, "Image '%s' is empty.", label);
        return 0;
}

/* The archive or image FILE ("-": standard input) to import as NAME (NULL: from FILE's name). */
static int import_open(const char *file, const char *name_arg, bool raw, char **ret_name, int *ret_fd,
                       uint64_t *ret_size) {
        _cleanup_free_ char *name = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *verb = raw ? "import-raw" : "import-tar";
        struct stat st;
        int r;

        if (name_arg)
                name = strdup(name_arg);
        else if (streq(file, "-"))
                return log_error_errno(-EINVAL, "Importing from standard input needs a NAME: berthctl %s - NAME", verb);
        else if ((r = image_name_from_file(file, raw, &name)) < 0 && r != -ENOMEM)
                return log_error_errno(r, "Cannot make an image name from '%s': pass NAME (berthctl %s FILE NAME).",
                                       file, verb);
        if (!name)
                return log_oom();
        if (streq(file, "-"))
                fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
        else
                fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return log_error_errno(negative_errno(), "Failed to open %s '%s': %m", raw ? "image" : "archive", file);
        if (fstat(fd, &st) < 0)
                return log_error_errno(negative_errno(), "Failed to stat '%s': %m", file);
        if (S_ISDIR(st.st_mode))
                return log_error_errno(-EISDIR, "'%s' is a directory: use 'berthctl import-fs %s'.", file, file);
        *ret_name = TAKE_PTR(name);
        *ret_fd = TAKE_FD(fd);
        *ret_size = S_ISREG(st.st_mode) ? (uint64_t) st.st_size : 0;
        return 0;
}

/* import-tar and import-raw (argv[0] tells) */
int verb_import(int argc, char *argv[]) {
        _cleanup_(image_freep) Image *existing = NULL;
        _cleanup_(temp_image_done) TempImage t = TEMP_IMAGE_NULL;
        _cleanup_free_ char *name = NULL, *pool = NULL, *final = NULL;
        _cleanup_close_ int in = -EBADF, lock = -EBADF;
        bool raw = streq(argv[0], "import-raw");
        const char *file = argv[1];
        uint64_t size = 0;
        int r;

        r = import_open(file, argc > 2 ? argv[2] : NULL, raw, &name, &in, &size);
        if (r < 0)
                return r;
        r = prepare_target(name, "replace", &existing, &lock);
        if (r < 0)
                return r;
        cancel_signals_install();
        r = image_pool_writable(&pool);
        if (r < 0)
                return r;
        r = temp_image_make(pool, name, !raw, &t);
        if (r < 0)
                return r;
        r = raw ? import_raw_into(in, file, size, &t) : import_tar_into(in, file, size, &t);
        if (r < 0)
                return r;
        final = strjoin(name, raw ? ".raw" : "");
        if (!final)
                return log_oom();
        r = temp_image_commit(&t, pool, final, existing);
        if (r < 0)
                return r;
        return finish_new_image(pool, name, raw ? IMAGE_RAW : IMAGE_DIRECTORY);
}

/* Bytes a program read so far: its rchar, all files of the image it read. */
static uint64_t process_read_bytes(pid_t pid) {
        char path[64], line[128];
        _cleanup_fclose_ FILE *f = NULL;
        unsigned long long v = 0;

        snprintf(path, sizeof path, "/proc/%d/io", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return 0;
        while (fgets(line, sizeof line, f))
                if (sscanf(line, "rchar: %llu", &v) == 1)
                        break;
        return v;
}

/* program_wait() with a progress line for export: a pidfd tells when the program is done. */
static int export_wait(pid_t pid, const char *prog, int ok_status, uint64_t total, const char *prefix,
                       const char *what) {
        _cleanup_close_ int pidfd = -EBADF;
        ProgressBar bar;

        progress_bar_init(&bar, stderr, prefix, total, progress_wanted());
        pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        while (pidfd >= 0 && bar.enabled && !cancelled) {
                struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
                int k = poll(&pfd, 1, 200);
                if (k != 0)
                        break; /* done, or interrupted: program_wait() sorts it out */
                progress_bar_update(&bar, process_read_bytes(pid));
        }
        progress_bar_finish(&bar);
        return program_wait(pid, prog, ok_status, what, false);
}

/* Where an export goes: standard output ("-", never a terminal), or a hidden temporary next to
 * FILE (*ret_tmp) that export_done() renames to FILE when complete: no half archive under its name. */
static int export_open(const char *file, char **ret_tmp, int *ret_fd) {
        _cleanup_free_ char *dir = NULL, *tmp = NULL;
        char *slash;
        int fd;

        if (streq(file, "-")) {
                if (isatty(STDOUT_FILENO))
                        return log_error_errno(-EINVAL, "Refusing to write an image to a terminal: redirect "
                                                        "standard output or name a FILE.");
                *ret_tmp = NULL;
                *ret_fd = STDOUT_FILENO;
                return 0;
        }
        if (!arg.force && access(file, F_OK) >= 0)
                return log_error_errno(-EEXIST, "File '%s' exists: pass --force to replace it.", file);
        dir = strdup(file);
        if (!dir)
                return log_oom();
        slash = strrchr(dir, '/');
        if (slash)
                slash[1] = 0;
        tmp = strjoin(slash ? dir : "", ".#", path_basename(file), ".berthctl-XXXXXX");
        if (!tmp)
                return log_oom();
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(negative_errno(), "Failed to create '%s': %m", file);
        *ret_tmp = TAKE_PTR(tmp);
        *ret_fd = fd;
        return 0;
}

/* R < 0: removes the temporary. Closes FD unless it is our stdout. */
static int export_done(int r, const char *file, char *tmp, int fd) {
        if (r >= 0 && tmp) {
                mode_t um = umask(0);
                umask(um);
                (void) fchmod(fd, 0666 & ~um);
                if (fsync(fd) < 0 || rename(tmp, file) < 0)
                        r = log_error_errno(negative_errno(), "Failed to write '%s': %m", file);
        }
        if (r < 0 && tmp)
                (void) unlink(tmp);
        free(tmp);
        if (fd != STDOUT_FILENO)
                safe_close(fd);
        return r;
}

int verb_export_tar(int argc, char *argv[]) {
        _cleanup_(image_freep) Image *img = NULL;
        _cleanup_free_ char *dir_opt = NULL, *prefix = NULL, *what = NULL;
        const char *file = argv[2];
        Compression comp;
        uint64_t usage = 0, total = 0;
        char *tmp = NULL;
        int out, r;
        pid_t pid;

        r = image_get(argv[1], &img);
        if (r < 0)
                return r;
        if (img->type != IMAGE_DIRECTORY)
                return log_error_errno(-EMEDIUMTYPE, "Cannot export image '%s' as tar: it is a raw image, not a "
                                                     "directory (use 'berthctl export-raw %s').", img->name, img->name);
        comp = compression_from_suffix(file, false);
        dir_opt = strjoin("--directory=", img->path);
        prefix = strjoin("Exporting '", img->name, "'");
        what = strjoin("export image '", img->name, "'");
        if (!dir_opt || !prefix || !what)
                return log_oom();
        r = export_open(file, &tmp, &out);
        if (r < 0)
                return r;
        if (progress_wanted()) {
                _cleanup_close_ int fd = open(img->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd >= 0)
                        (void) tree_usage_fd(fd, &usage, &total);
        }
        /* --one-file-system: what is mounted inside a tree is not the image */
        char *tar_argv[] = {
                (char *) "tar", (char *) "--create", (char *) "--file=-", dir_opt, (char *) "--numeric-owner",
                (char *) "--xattrs", (char *) "--xattrs-include=*", (char *) "--acls", (char *) "--sparse",
                (char *) "--one-file-system", (char *) (compression_option[comp] ?: "."),
                (char *) (compression_option[comp] ? "." : NULL), NULL,
        };
        cancel_signals_install();
        r = program_spawn(tar_argv, -EBADF, out, -EBADF, NULL, 0, NULL, &pid);
        if (r >= 0)
                /* 1: "file changed as we read it", a tree in use */
                r = export_wait(pid, "tar", 1, total, prefix, what);
        return export_done(r, file, tmp, out);
}

int verb_export_raw(int argc, char *argv[]) {
        _cleanup_(image_freep) Image *img = NULL;
        _cleanup_free_ char *prefix = NULL, *what = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_close_ int in = -EBADF;
        const char *file = argv[2];
        Compression comp;
        const size_t bufsize = 256 * 1024;
        char *tmp = NULL;
        struct stat st, ost;
        int out, r;
        pid_t pid;

        r = image_get(argv[1], &img);
        if (r < 0)
                return r;
        if (img->type != IMAGE_RAW)
                return log_error_errno(-EMEDIUMTYPE, "Cannot export image '%s' as a raw image: it is a directory "
                                                     "(use 'berthctl export-tar %s').", img->name, img->name);
        comp = compression_from_suffix(file, true);
        in = open(img->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (in < 0 || fstat(in, &st) < 0)
                return log_error_errno(negative_errno(), "Failed to open image '%s': %m", img->path);
        prefix = strjoin("Exporting '", img->name, "'");
        what = strjoin("compress image '", img->name, "'");
        buf = malloc(bufsize);
        if (!prefix || !what || !buf)
                return log_oom();
        r = export_open(file, &tmp, &out);
        if (r < 0)
                return r;
        cancel_signals_install();
        if (comp != COMPRESSION_NONE) {
                /* -T0: xz on every CPU; the others ignore what they do not know only for xz, so only there */
                char *argv_c[] = { (char *) compression_program[comp], (char *) "-c",
                                   (char *) (comp == COMPRESSION_XZ ? "-T0" : NULL), NULL };
                r = program_spawn(argv_c, in, out, -EBADF, NULL, 0, NULL, &pid);
                if (r >= 0)
                        r = export_wait(pid, compression_program[comp], 0, (uint64_t) st.st_size, prefix, what);
        } else {
                ProgressBar bar;
                size_t n;

                progress_bar_init(&bar, stderr, prefix, (uint64_t) st.st_size, progress_wanted());
                r = read_head(in, buf, bufsize, 1, &n);
                if (r >= 0)
                        r = copy_stream(in, out, buf, n, bufsize, fstat(out, &ost) >= 0 && S_ISREG(ost.st_mode) && tmp,
                                        &bar);
                progress_bar_finish(&bar);
                if (r == -ECANCELED)
                        r = log_error_errno(r, "Interrupted: nothing is left behind.");
                else if (r < 0)
                        r = log_error_errno(r, "Failed to write image '%s' to '%s': %m", img->name, file);
        }
        return export_done(r, file, tmp, out);
}

/* ---- import-fs ---- */

int verb_import_fs(int argc, char *argv[]) {
        _cleanup_(image_freep) Image *existing = NULL;
        _cleanup_(temp_image_done) TempImage t = TEMP_IMAGE_NULL;
        _cleanup_free_ char *name = NULL, *pool = NULL, *prefix = NULL;
        _cleanup_close_ int lock = -EBADF;
        const char *dir = argv[1];
        struct stat st;
        int r;

        if (stat(dir, &st) < 0)
                return log_error_errno(negative_errno(), "Failed to open directory '%s': %m", dir);
        if (!S_ISDIR(st.st_mode))
                return log_error_errno(-ENOTDIR, "'%s' is not a directory%s.", dir,
                                       S_ISREG(st.st_mode) ? " (an archive? use 'berthctl import-tar')" : "");
        if (argc > 2)
                name = strdup(argv[2]);
        else if ((r = machine_name_from_path(dir, &name)) < 0 && r != -ENOMEM)
                return log_error_errno(r, "Cannot make an image name from '%s': pass NAME (berthctl import-fs "
                                          "DIRECTORY NAME).", dir);
        if (!name)
                return log_oom();
        r = prepare_target(name, "replace", &existing, &lock);
        if (r < 0)
                return r;
        r = image_pool_writable(&pool);
        if (r < 0)
                return r;
        r = temp_image_make(pool, name, true, &t);
        if (r < 0)
                return r;
        prefix = strjoin("Importing '", dir, "'");
        if (!prefix)
                return log_oom();
        r = copy_into_temp(dir, true, prefix, &t);
        if (r < 0)
                return r;
        r = temp_image_commit(&t, pool, name, existing);
        if (r < 0)
                return r;
        return finish_new_image(pool, name, IMAGE_DIRECTORY);
}
