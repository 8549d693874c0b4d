/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "dissect.h"
#include "loop.h"

/* Where the child attaches an image's tree in its own mount namespace before
 * it builds the container's root there (an empty directory on the host; the
 * mount exists only in each container's namespace, so all share it). */
#define BERTH_IMAGE_ROOT_DIR "/run/berth/.image-root"

typedef enum ImageFlags {
        IMAGE_READ_ONLY = 1 << 0, /* --read-only: read-only loops and mounts */
        IMAGE_EPHEMERAL = 1 << 1, /* -x, --volatile=overlay: read-only image under a throw-away overlay */
} ImageFlags;

/* An image opened by the monitor: its loop devices (one per partition) and a
 * detached mount tree of its partitions (open_tree/fsmount fd, not attached
 * anywhere), which the child attaches. */
typedef struct Image {
        char *path;
        int fd;                 /* the image file, O_RDONLY with IMAGE_READ_ONLY or IMAGE_EPHEMERAL */
        DissectedImage dissected;
        LoopDevice loops[_PARTITION_DESIGNATOR_MAX];
        int tree_fd;            /* the detached root tree */
} Image;

/* In the monitor, in the host's namespaces. Dissects the image, refuses what
 * berth does not mount (verity without device-mapper, file systems outside the
 * allow-list), attaches a loop device per partition and mounts them nodev,
 * nosuid into one detached tree. Logs a one-line error; on failure nothing
 * stays attached. */
int image_open(const char *path, ImageFlags flags, Image **ret);
Image *image_free(Image *i);
static inline void image_freep(Image **i) {
        image_free(*i);
}

/* The loop devices in use ("/dev/loopN"), for the record. */
char **image_loop_paths(const Image *i);
