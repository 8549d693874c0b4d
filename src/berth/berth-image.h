/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "berth-verity.h"
#include "dissect.h"
#include "image-policy.h"
#include "loop.h"

/* Where the child attaches an image's tree in its own mount namespace before
 * it builds the container's root there (an empty directory on the host; the
 * mount exists only in each container's namespace, so all share it). */
#define BERTH_IMAGE_ROOT_DIR "/run/berth/.image-root"

typedef enum ImageFlags {
        IMAGE_READ_ONLY = 1 << 0, /* --read-only: read-only loops and mounts */
        IMAGE_EPHEMERAL = 1 << 1, /* -x, --volatile=overlay: read-only image under a throw-away overlay */
} ImageFlags;

typedef struct ImageOptions {
        ImageFlags flags;
        const ImagePolicy *policy;      /* --image-policy=; NULL: nspawn's default for containers */
        const uint8_t *root_hash;       /* --root-hash= */
        size_t root_hash_size;
        const uint8_t *root_hash_sig;   /* --root-hash-sig= */
        size_t root_hash_sig_size;
        const char *verity_data;        /* --verity-data= */
} ImageOptions;

/* An image opened by the monitor: its loop devices (one per partition), a detached
 * mount of each partition's file system, and, once assembled, a detached mount tree
 * of them (fsmount fd, not attached anywhere), which the child attaches. */
typedef struct Image {
        char *path;
        int fd;                 /* the image file, O_RDONLY with IMAGE_READ_ONLY or IMAGE_EPHEMERAL */
        DissectedImage dissected;
        PartitionUse use[_PARTITION_DESIGNATOR_MAX];    /* the image policy's decision */
        VerityConfig verity;
        LoopDevice loops[_PARTITION_DESIGNATOR_MAX];    /* the hash tree's: at its verity partition's */
        char *dm_names[_PARTITION_DESIGNATOR_MAX];      /* dm-verity devices over the data partitions */
        char *dm_paths[_PARTITION_DESIGNATOR_MAX];
        ImageFlags flags;
        int mounts[_PARTITION_DESIGNATOR_MAX];         /* each partition's detached mount, until assembled */
        int tree_fd;            /* the detached root tree: image_assemble() */
} Image;

/* In the monitor, in the host's namespaces. Dissects the image, applies the image
 * policy, refuses what berth does not mount (verity where device-mapper is missing,
 * file systems outside the allow-list) before anything is attached, attaches a loop
 * device per partition (dm-verity devices over those used with verity, a userspace check
 * for those used unprotected that have a root hash) and mounts each nodev, nosuid,
 * detached. Logs a one-line error; on failure (and at image_free()) nothing stays attached. */
int image_open(const char *path, const ImageOptions *o, Image **ret);
/* The detached mount whose root is the image's root directory as the file system stores it
 * (the root partition's, or /usr's for a /usr-only image): what its owner and whether it can
 * be idmapped are read from. Before image_assemble(). */
int image_root_mount(const Image *img);
/* Puts the partitions together into img->tree_fd: with USERNS_FD (>= 0) each partition mounted
 * idmapped through that user namespace first (one that cannot be is refused), then -x's
 * overlays, then each at its place; mount points that are missing are made as OWNER (the
 * container's root, 0 without a user namespace). Logs. */
int image_assemble(Image *img, int userns_fd, uid_t owner);
Image *image_free(Image *i);
static inline void image_freep(Image **i) {
        image_free(*i);
}

/* The loop devices in use ("/dev/loopN"), for the record. */
char **image_loop_paths(const Image *i);
