/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Copying trees and measuring them, for --template= (berth) and for the image
 * verbs of berthctl (clone, import-fs).
 *
 * The copy works through directory fds only: it never follows a symlink of
 * the source (an image is hostile: a symlink to /etc stays a symlink) and
 * writes only below the destination fd. File data goes by reflink where the
 * file system can share blocks (btrfs, xfs), else by copy_file_range(), else
 * by read()/write(); holes of sparse files stay holes. Owners, modes (set-id
 * bits included), extended attributes (ACLs, file capabilities), times,
 * symlinks, device nodes, fifos, sockets and hard links are kept.
 *
 * None of this logs: a failure returns a negative errno and leaves, in the
 * context, which entry failed and what was being done to it, for the caller's
 * message. */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

typedef enum CopyFlags {
        COPY_SAME_FS = 1 << 0,     /* mount points below the top are copied as empty directories */
} CopyFlags;

typedef struct CopyContext CopyContext;

/* Called after each entry and each chunk of file data; a negative return
 * aborts the copy with that error (Ctrl-C). */
typedef int (*copy_progress_fn_t)(const CopyContext *c, void *userdata);

struct CopyContext {
        CopyFlags flags;
        copy_progress_fn_t progress;
        void *userdata;

        /* out: what was done */
        uint64_t n_files;
        uint64_t n_bytes;          /* file data copied (or shared by reflink) */
        /* out, on failure: the entry (relative to the top) and the step */
        char *error_path;
        const char *error_op;      /* "open", "create", "copy the data of", ... */

        /* internal */
        dev_t src_dev, dst_dev;
        ino_t dst_ino;
        int dst_root;
        bool no_reflink, no_copy_file_range;
        void *links;
};

/* Copies the contents of the directory SRC_FD into the (empty) directory
 * DST_FD, then the attributes of SRC_FD onto DST_FD. A directory of the source
 * that is DST_FD itself (the copy made inside the source) is skipped. */
int copy_tree_fd(int src_fd, int dst_fd, CopyContext *c);
/* One regular file: data (reflink, holes kept) and attributes, FROM onto the new file TO. */
int copy_file_fd(int from, int to, CopyContext *c);
/* Frees what the context holds (error_path, the hard link table). */
void copy_context_done(CopyContext *c);

/* Disk usage of a tree, like du -s: st_blocks of every inode once (hard links
 * counted once), staying on the tree's file system, never following a
 * symlink. RET_APPARENT (optional): the sum of the regular files' sizes,
 * what a copy has to move. */
int tree_usage_fd(int dir_fd, uint64_t *ret_usage, uint64_t *ret_apparent);

/* A progress line on a terminal: "\rPREFIX [====>    ]  42% 105.2M/250.0M 88.1M/s".
 * Quiet when F is not a terminal. Prints only if at least 200 ms passed since
 * the last line, and nothing at all during the first half second (short
 * operations stay quiet). TOTAL 0: no bar, only bytes and rate. */
typedef struct ProgressBar {
        FILE *f;
        const char *prefix;
        uint64_t total;
        uint64_t start;             /* usec, CLOCK_MONOTONIC */
        uint64_t last;
        bool shown;
        bool enabled;
} ProgressBar;

void progress_bar_init(ProgressBar *p, FILE *f, const char *prefix, uint64_t total, bool enabled);
void progress_bar_update(ProgressBar *p, uint64_t done);
/* Erases the line if one was shown. */
void progress_bar_finish(ProgressBar *p);
