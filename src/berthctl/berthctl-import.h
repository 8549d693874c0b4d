/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the import verbs (berthctl-import.c) and the pull verbs (berthctl-pull.c) share:
 * helper programs (tar, xz, gzip, zstd, gpgv) in a child, and filling a temporary image from
 * a stream. All of these log their errors. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "berthctl-images.h"

typedef enum Compression {
        COMPRESSION_NONE,
        COMPRESSION_GZIP,
        COMPRESSION_XZ,
        COMPRESSION_ZSTD,
        COMPRESSION_BZIP2,
        _COMPRESSION_MAX,
} Compression;

Compression compression_from_magic(const uint8_t *b, size_t n);
/* "debian-12.tar.xz" -> "debian-12" (RAW: "x.raw.xz" -> "x"); -EINVAL: not a valid image name. */
int image_name_from_file(const char *file, bool raw, char **ret);

/* Runs ARGV (found in $PATH) in a child with our privileges: STDIN_FD, STDOUT_FD, STDERR_FD
 * (-EBADF: /dev/null, our stdout, our stderr) and the fds in KEEP (made inheritable). With
 * WRITABLE_DIR the child gets a mount namespace in which everything but that directory is
 * read-only. */
int program_spawn(char *const *argv, int stdin_fd, int stdout_fd, int stderr_fd, const int *keep, size_t n_keep,
                  const char *writable_dir, pid_t *ret_pid);
/* Waits for it; a Ctrl-C meanwhile stops it. OK_STATUS: the highest exit status that is
 * success. WHAT: "extract 'x.tar'", for the message. QUIET: return -EIO without logging. */
int program_wait(pid_t pid, const char *prog, int ok_status, const char *what, bool quiet);

/* The archive or image read from IN (a file or a pipe, compressed or not) into the temporary
 * T. LABEL names the input in messages, SIZE (0: unknown) is for the progress line. */
int import_tar_into(int in, const char *label, uint64_t size, TempImage *t);
int import_raw_into(int in, const char *label, uint64_t size, TempImage *t);
