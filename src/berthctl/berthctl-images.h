/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the image verbs (berthctl-images.c) and the import verbs
 * (berthctl-import.c: import-tar, export-tar, import-fs) share: finding
 * images, and making new ones in a temporary that is renamed into place. All
 * of these log their errors. */

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum ImageType {
        IMAGE_DIRECTORY,
        IMAGE_RAW,
} ImageType;

typedef struct Image {
        char *name;
        char *path;           /* POOL/NAME or POOL/NAME.raw */
        char *pool;
        ImageType type;
        bool hidden;
        bool vendor;          /* not in the first image directory: read-only by convention */
        bool immutable;       /* FS_IMMUTABLE_FL, or a raw file without write permission */
        bool read_only;       /* any of these, or a read-only mount */
        uint64_t crtime;      /* usec, 0: unknown */
        uint64_t mtime;
        uint64_t usage;       /* UINT64_MAX: not computed */
} Image;

Image *image_free(Image *i);
void image_freep(Image **i);
/* A machine name, or '.' and a machine name for a hidden image. */
bool image_name_is_valid(const char *s);
/* Finds image NAME; says so in one line if it is not there or the name is invalid. */
int image_get(const char *name, Image **ret);

/* A hidden directory (or file) in the writable image directory, flock()ed
 * while it is being filled: 'clean' removes those whose owner died. */
typedef struct TempImage {
        char *path;
        int fd;        /* the directory, or the raw file */
        int lock;      /* flock() on the directory while it is in flight, see 'clean' */
} TempImage;
#define TEMP_IMAGE_NULL ((TempImage) { .fd = -EBADF, .lock = -EBADF })

int temp_image_make(const char *pool, const char *name, bool directory, TempImage *ret);
/* Removes what is left of it. */
void temp_image_done(TempImage *t);
/* Renames it to POOL/FINAL; EXISTING (--force): the image it replaces, or NULL. */
int temp_image_commit(TempImage *t, const char *pool, const char *final, const Image *existing);
/* Copies the tree (or raw file) SRC_PATH into it, with a progress line on a terminal. */
int copy_into_temp(const char *src_path, bool directory, const char *prefix, TempImage *t);

/* The first image directory, where new images go. */
int image_pool_writable(char **ret);
/* NEW_NAME is valid and unused, or --force replaces *ret_existing (locked: *ret_lock). */
int prepare_target(const char *new_name, const char *what, Image **ret_existing, int *ret_lock);
/* After the new image is in place: --read-only. */
int finish_new_image(const char *pool, const char *name, ImageType type);

/* Ctrl-C, SIGTERM and SIGHUP set 'cancelled' instead of killing us, so that
 * temporaries are removed; SIGPIPE is ignored. */
extern volatile sig_atomic_t cancelled;
void cancel_signals_install(void);
/* Not -q and stderr is a terminal. */
bool progress_wanted(void);
