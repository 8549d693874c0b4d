/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The root source: where the container's tree comes from. A directory on the
 * host (--directory=), or a disk image (--image=), whose file systems the
 * monitor mounts (loop devices, dissection: berth-image.c) into a detached tree.
 *
 * The monitor resolves it once, after --template= has populated it and
 * before anything looks into it: a detached mount (open_tree() with
 * OPEN_TREE_CLONE | AT_RECURSIVE) of the tree, its propagation from the host
 * one-way (slave), made in the host's mount namespace. Only a mount that is
 * not attached yet can be idmapped (mount_setattr(MOUNT_ATTR_IDMAP)), which
 * a user namespace will need. Every parent-side look into the tree (os-release
 * and init checks, the tree lock, the journal link) goes through its fd, never
 * through the path again; the child attaches the same mount as its root.
 *
 * Trust: the path is the user's (resolved normally, once); everything below
 * the fd is the tree's (hostile): resolve with open_in_root(). */

#include <stdbool.h>

#include "berth-settings.h"

typedef enum RootSourceType {
        ROOT_SOURCE_DIRECTORY,
        ROOT_SOURCE_IMAGE,     /* --image=: the tree of the image's partitions (berth-image.c) */
        _ROOT_SOURCE_TYPE_MAX,
        _ROOT_SOURCE_TYPE_INVALID = -EINVAL,
} RootSourceType;

typedef struct RootSource {
        RootSourceType type;
        const char *path;  /* as the user named it (Settings.directory): for messages and the record */
        int mount_fd;      /* the detached mount of the tree; its root is the tree's root */
} RootSource;

#define ROOT_SOURCE_NULL ((RootSource) { .mount_fd = -EBADF })

/* In the monitor, on the host: a directory. Logs. */
int root_source_open(const Settings *s, RootSource *ret);
/* --image=: the detached tree TREE_FD that image_open() made (duplicated: the Image keeps its own).
 * Logs. */
int root_source_from_image(const Settings *s, int tree_fd, RootSource *ret);
void root_source_done(RootSource *rs);
/* The tree lock (see registry_lock_root()): on the tree's root inode, through the mount. */
int root_source_lock(const RootSource *rs, bool shared, int *ret_fd);
/* Does the tree look like an OS tree (os-release), and has it an init for --boot? Resolved inside
 * the tree, symlinks included. Logs. */
int root_source_check(const RootSource *rs, const Settings *s);

const char *root_source_type_to_string(RootSourceType t);
