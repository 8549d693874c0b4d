/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Importing and exporting images: import-tar, export-tar, import-fs.
 *
 * Archives are read and written by the host's tar program in a child, not by
 * a tar parser of ours: GNU tar knows the formats, sparse files, xattrs and
 * ACLs. It extracts only into a fresh temporary directory (see TempImage),
 * refuses members with "..", and creates symlinks that point outside (absolute
 * or with "..") only at the end of the extraction, so that no member is
 * written through one. We feed it the archive through a pipe, which gives the
 * progress line, and choose the decompressor from the magic bytes, since tar
 * cannot detect compression on a pipe.
 */

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "berthctl.h"
#include "berthctl-images.h"
#include "copy.h"
#include "log.h"
#include "machine-name.h"
#include "util.h"

/* Runs tar, the host's, with our privileges in the host's namespaces: it only
 * reads or writes the archive and the temporary directory or image named on
 * its command line. STDIN_FD/STDOUT_FD: what tar gets (-EBADF: /dev/null,
 * our stdout). An exec failure comes back through a pipe as an errno. */
static int tar_spawn(char *const *argv, int stdin_fd, int stdout_fd, pid_t *ret_pid) {
        _cleanup_close_pair_ int errpipe[2] = { -EBADF, -EBADF };
        _cleanup_close_ int null_fd = -EBADF;
        ssize_t k;
        pid_t pid;
        int e = 0;

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
                return log_error_errno(negative_errno(), "Failed to start tar: %m");
        if (pid == 0) {
                sigset_t all;
                int keep[] = { errpipe[1] };

                (void) signal(SIGINT, SIG_DFL);
                (void) signal(SIGTERM, SIG_DFL);
                (void) signal(SIGHUP, SIG_DFL);
                (void) signal(SIGPIPE, SIG_DFL);
                sigemptyset(&all);
                (void) sigprocmask(SIG_SETMASK, &all, NULL);
                if (dup2(stdin_fd, STDIN_FILENO) < 0 ||
                    (stdout_fd >= 0 && stdout_fd != STDOUT_FILENO && dup2(stdout_fd, STDOUT_FILENO) < 0) ||
                    close_all_fds(keep, 1) < 0)
                        goto fail;
                execvp("tar", argv);
        fail:
                e = errno;
                (void) !write(errpipe[1], &e, sizeof e);
                _exit(127);
        }
        errpipe[1] = safe_close(errpipe[1]);
        do
                k = read(errpipe[0], &e, sizeof e);
        while (k < 0 && errno == EINTR);
        if (k == sizeof e) {
                (void) waitpid(pid, NULL, 0);
                return log_error_errno(-e, "Failed to run tar: %m%s", e == ENOENT ? " (install GNU tar)" : "");
        }
        *ret_pid = pid;
        return 0;
}

/* Waits for tar; a Ctrl-C meanwhile stops it. OK_STATUS: the highest exit status that is success. */
static int tar_wait(pid_t pid, int ok_status, const char *what) {
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
                        return log_error_errno(negative_errno(), "Failed to wait for tar: %m");
        }
        if (cancelled)
                return log_error_errno(-ECANCELED, "Interrupted: %s stopped, nothing is left behind.", what);
        if (WIFEXITED(status) && WEXITSTATUS(status) <= ok_status)
                return 0;
        if (WIFEXITED(status))
                return log_error_errno(-EIO, "Failed to %s: tar exited with status %d (its messages are above).", what,
                                       WEXITSTATUS(status));
        return log_error_errno(-EIO, "Failed to %s: tar was killed by signal %d.", what, WTERMSIG(status));
}

typedef enum Compression {
        COMPRESSION_NONE,
        COMPRESSION_GZIP,
        COMPRESSION_XZ,
        COMPRESSION_ZSTD,
        COMPRESSION_BZIP2,
} Compression;

static const char *const compression_option[] = {
        [COMPRESSION_NONE] = NULL,
        [COMPRESSION_GZIP] = "--gzip",
        [COMPRESSION_XZ] = "--xz",
        [COMPRESSION_ZSTD] = "--zstd",
        [COMPRESSION_BZIP2] = "--bzip2",
};

/* tar's own detection works on files only, not on the pipe we feed it: look at the magic bytes. */
static Compression compression_from_magic(const uint8_t *b, size_t n) {
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
};

/* "debian-12.tar.xz" -> "debian-12" */
static int image_name_from_archive(const char *file, char **ret) {
        _cleanup_free_ char *n = strdup(path_basename(file));

        if (!n)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(tar_suffixes); i++)
                if (endswith(n, tar_suffixes[i].suffix) && strlen(n) > strlen(tar_suffixes[i].suffix)) {
                        n[strlen(n) - strlen(tar_suffixes[i].suffix)] = 0;
                        break;
                }
        if (!image_name_is_valid(n))
                return -EINVAL;
        *ret = TAKE_PTR(n);
        return 0;
}

static int import_pump(int in, int out, uint8_t *buf, size_t n, size_t size, ProgressBar *bar) {
        uint64_t done = 0;

        for (;;) {
                for (size_t w = 0; w < n;) {
                        ssize_t k = write(out, buf + w, n - w);
                        if (k < 0) {
                                if (errno == EINTR && !cancelled)
                                        continue;
                                /* EPIPE: tar gave up, tar_wait() says why */
                                return errno == EPIPE || cancelled ? 0 : negative_errno();
                        }
                        w += (size_t) k;
                }
                done += n;
                progress_bar_update(bar, done);
                ssize_t k = read(in, buf, size);
                if (k < 0) {
                        if (errno == EINTR && !cancelled)
                                continue;
                        return cancelled ? 0 : negative_errno();
                }
                if (k == 0)
                        return 0;
                n = (size_t) k;
        }
}

int verb_import_tar(int argc, char *argv[]) {
        _cleanup_(image_freep) Image *existing = NULL;
        _cleanup_(temp_image_done) TempImage t = TEMP_IMAGE_NULL;
        _cleanup_free_ char *name = NULL, *pool = NULL, *dir_opt = NULL, *prefix = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_close_ int in_fd = -EBADF, lock = -EBADF;
        _cleanup_close_pair_ int p[2] = { -EBADF, -EBADF };
        const char *file = argv[1];
        const size_t size = 256 * 1024;
        ProgressBar bar;
        struct stat st;
        Compression comp;
        size_t n = 0;
        pid_t pid;
        int in, r;

        if (argc > 2)
                name = strdup(argv[2]);
        else if (streq(file, "-"))
                return log_error_errno(-EINVAL, "Importing from standard input needs a NAME: berthctl import-tar - NAME");
        else if ((r = image_name_from_archive(file, &name)) < 0)
                return log_error_errno(r, "Cannot make an image name from '%s': pass NAME (berthctl import-tar FILE "
                                          "NAME).", file);
        if (!name)
                return log_oom();
        r = prepare_target(name, "replace", &existing, &lock);
        if (r < 0)
                return r;

        if (streq(file, "-"))
                in = STDIN_FILENO;
        else {
                in = in_fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (in_fd < 0)
                        return log_error_errno(negative_errno(), "Failed to open archive '%s': %m", file);
        }
        if (fstat(in, &st) < 0)
                return log_error_errno(negative_errno(), "Failed to stat '%s': %m", file);
        if (S_ISDIR(st.st_mode))
                return log_error_errno(-EISDIR, "'%s' is a directory: use 'berthctl import-fs %s'.", file, file);

        buf = malloc(size);
        if (!buf)
                return log_oom();
        cancel_signals_install();
        while (n < 6) {
                ssize_t k = read(in, buf + n, size - n);
                if (k < 0) {
                        if (errno == EINTR && !cancelled)
                                continue;
                        return log_error_errno(negative_errno(), "Failed to read archive '%s': %m", file);
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        if (n == 0)
                return log_error_errno(-EINVAL, "Archive '%s' is empty.", file);
        comp = compression_from_magic(buf, n);

        r = image_pool_writable(&pool);
        if (r < 0)
                return r;
        r = temp_image_make(pool, name, true, &t);
        if (r < 0)
                return r;
        dir_opt = strjoin("--directory=", t.path);
        prefix = strjoin("Importing '", path_basename(file), "'");
        if (!dir_opt || !prefix)
                return log_oom();
        /* --numeric-owner: the archive's uids, not the host's names for them;
         * --xattrs-include=*: file capabilities and ACLs, not only user.* */
        char *tar_argv[] = {
                (char *) "tar", (char *) "--extract", (char *) "--file=-", dir_opt, (char *) "--numeric-owner",
                (char *) "--same-owner", (char *) "--preserve-permissions", (char *) "--xattrs",
                (char *) "--xattrs-include=*", (char *) "--acls", (char *) compression_option[comp], NULL,
        };
        if (pipe2(p, O_CLOEXEC) < 0)
                return log_error_errno(negative_errno(), "Failed to create a pipe: %m");
        r = tar_spawn(tar_argv, p[0], -EBADF, &pid);
        if (r < 0)
                return r;
        p[0] = safe_close(p[0]);

        progress_bar_init(&bar, stderr, prefix, S_ISREG(st.st_mode) ? (uint64_t) st.st_size : 0, progress_wanted());
        r = import_pump(in, p[1], buf, n, size, &bar);
        p[1] = safe_close(p[1]);
        progress_bar_finish(&bar);
        if (r < 0) {
                (void) kill(pid, SIGTERM);
                (void) tar_wait(pid, 0, "import");
                return log_error_errno(r, "Failed to read archive '%s': %m", file);
        }
        free(prefix);
        prefix = strjoin("extract '", file, "'");
        if (!prefix)
                return log_oom();
        r = tar_wait(pid, 0, prefix);
        if (r < 0)
                return r;

        r = temp_image_commit(&t, pool, name, existing);
        if (r < 0)
                return r;
        return finish_new_image(pool, name, IMAGE_DIRECTORY);
}

/* Bytes tar read so far: its rchar, all files of the image it read. */
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

/* tar_wait() with a progress line for export: a pidfd tells when tar is done. */
static int export_wait(pid_t pid, uint64_t total, const char *prefix, const char *what) {
        _cleanup_close_ int pidfd = -EBADF;
        ProgressBar bar;

        progress_bar_init(&bar, stderr, prefix, total, progress_wanted());
        pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        while (pidfd >= 0 && bar.enabled && !cancelled) {
                struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
                int k = poll(&pfd, 1, 200);
                if (k != 0)
                        break; /* done, or interrupted: tar_wait() sorts it out */
                progress_bar_update(&bar, process_read_bytes(pid));
        }
        progress_bar_finish(&bar);
        /* 1: "file changed as we read it", a tree in use */
        return tar_wait(pid, 1, what);
}

int verb_export_tar(int argc, char *argv[]) {
        _cleanup_(image_freep) Image *img = NULL;
        _cleanup_free_ char *dir_opt = NULL, *tmp = NULL, *prefix = NULL, *what = NULL;
        _cleanup_close_ int out = -EBADF;
        const char *file = argv[2];
        Compression comp = COMPRESSION_NONE;
        uint64_t usage = 0, total = 0;
        bool to_stdout = streq(file, "-");
        pid_t pid;
        int r;

        r = image_get(argv[1], &img);
        if (r < 0)
                return r;
        if (img->type != IMAGE_DIRECTORY)
                return log_error_errno(-EMEDIUMTYPE, "Cannot export image '%s' as tar: it is a raw image, not a "
                                                     "directory (copy '%s' instead).", img->name, img->path);
        for (size_t i = 0; !to_stdout && i < ELEMENTSOF(tar_suffixes); i++)
                if (endswith(file, tar_suffixes[i].suffix)) {
                        comp = tar_suffixes[i].compression;
                        break;
                }

        if (to_stdout) {
                if (isatty(STDOUT_FILENO))
                        return log_error_errno(-EINVAL, "Refusing to write an archive to a terminal: redirect "
                                                        "standard output or name a FILE.");
                out = STDOUT_FILENO;
        } else {
                _cleanup_free_ char *dir = strdup(file);
                char *slash;
                if (!dir)
                        return log_oom();
                if (!arg.force && access(file, F_OK) >= 0)
                        return log_error_errno(-EEXIST, "File '%s' exists: pass --force to replace it.", file);
                slash = strrchr(dir, '/');
                if (slash)
                        slash[1] = 0;
                tmp = strjoin(slash ? dir : "", ".#", path_basename(file), ".berthctl-XXXXXX");
                if (!tmp)
                        return log_oom();
                /* written next to FILE and renamed when complete: no half archive under its name */
                out = mkostemp(tmp, O_CLOEXEC);
                if (out < 0) {
                        free(tmp);
                        tmp = NULL;
                        return log_error_errno(negative_errno(), "Failed to create '%s': %m", file);
                }
        }

        dir_opt = strjoin("--directory=", img->path);
        prefix = strjoin("Exporting '", img->name, "'");
        what = strjoin("export image '", img->name, "'");
        if (!dir_opt || !prefix || !what) {
                r = log_oom();
                goto fail;
        }
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
        r = tar_spawn(tar_argv, -EBADF, out, &pid);
        if (r < 0)
                goto fail;
        r = export_wait(pid, total, prefix, what);
        if (r < 0)
                goto fail;
        if (tmp) {
                mode_t um = umask(0);
                umask(um);
                (void) fchmod(out, 0666 & ~um);
                if (fsync(out) < 0 || rename(tmp, file) < 0) {
                        r = log_error_errno(negative_errno(), "Failed to write '%s': %m", file);
                        goto fail;
                }
                free(tmp);
                tmp = NULL;
        }
        if (out == STDOUT_FILENO)
                out = -EBADF;
        return 0;

fail:
        if (tmp)
                (void) unlink(tmp);
        if (out == STDOUT_FILENO)
                out = -EBADF;
        return r;
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
