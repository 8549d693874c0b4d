/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "berth-settings.h"
#include "berth-userns.h"

/* Staging point (in the container's mount namespace only) used for scratch
 * tmpfs mounts such as the upper layer of --ephemeral. Created once. */
#define BERTH_STAGING_DIR "/run/berth/.staging"

/* --- the fd-based mount API, shared by the files below; these don't log --- */
/* mount_setattr() on the mount FD (RECURSIVE: and every mount below it): SET and CLR are
 * MOUNT_ATTR_* flags, PROPAGATION 0 (unchanged) or MS_SLAVE, MS_PRIVATE, ... (berth-mount.c) */
int mount_attr_set(int fd, uint64_t set, uint64_t clr, uint64_t propagation, bool recursive);
/* move_mount() of the (detached) mount FD onto PATH below DFD; "" for DFD itself (berth-mount.c) */
int mount_attach(int fd, int dfd, const char *path);
/* A new tmpfs as a detached mount. OPTIONS: comma list of tmpfs parameters (mode=, size=, ...) and
 * mount flag names (ro, nosuid, ...), NULL for none; ATTR: the MOUNT_ATTR_* flags to start from.
 * On a bad option ERR (if not NULL) says which (berth-mount-custom.c). */
/* OWNER: uid and gid of the tmpfs root unless OPTIONS say, 0 for none. */
int mount_tmpfs_new(const char *options, uint64_t attr, uid_t owner, char *err, size_t err_size, int *ret_fd);

/* --- berth-mount.c: API file systems, in the child, under ROOT before pivot_root --- */
/* The host's os-release as the monitor read it (runtime_prepare()), for /run/host/os-release:
 * TEXT of SIZE bytes, or ERROR (a negative errno; -ENOENT: the host has none). */
typedef struct HostOsRelease {
        char *text;
        size_t size;
        int error;
} HostOsRelease;
/* /etc/os-release, else /usr/lib/os-release. Does not log. */
void host_os_release_read(HostOsRelease *ret);
void host_os_release_done(HostOsRelease *h);
/* /proc, /sys, /dev (tmpfs + basic nodes), /dev/shm, /dev/mqueue, /run, /tmp, /run/host; not
 * /sys/fs/cgroup, which needs the container's cgroup namespace: cgroup_mount_in_container(). */
/* OWNER: uid and gid of the tmpfs roots (the root of the user namespace, 0 without one). */
int mount_api_filesystems(const char *root, const Settings *s, uid_t owner, const HostOsRelease *os);
/* After everything else is mounted: /proc/sys & co read-only, sensitive files masked.
 * Fails closed: a mask that cannot be applied is an error. */
int mount_protect_kernel(const char *root);
/* the container's /run/host (made by the API file systems' step): an fd, or a logged error */
int run_host_open(const char *root);

/* --- berth-root.c: the root tree --- */
/* In the parent, before the container starts: --template copy. Logs. */
int root_prepare(const Settings *s);
/* In the child, after its mount namespace is private: makes s->directory a mount
 * point holding the tree the container sees: the root source's detached mount
 * (a directory's, or with --image= the tree of the image's partitions, with -x
 * already under its overlay), an overlay for --ephemeral and --volatile=overlay
 * of a directory, tmpfs + /usr for --volatile=yes, ... Returns the path to
 * pivot into in *ret_root (malloc'd). Logs. */
typedef struct RootSource RootSource;
/* U: the container's user namespace (NULL or fd < 0: none). With u->idmap the tree, and with
 * --volatile= and -x the parts of it that are used, are mounted idmapped through it; berth's tmpfs
 * mounts and what it creates in them belong to its root (userns_owner()). */
int root_mount(const Settings *s, const RootSource *root, const UserNamespace *u, char **ret_root);
/* In the child, after all other mounts, before pivot_root: --read-only and
 * --volatile=state read-only remounts. Logs. */
int root_finalize(const char *root, const Settings *s);

/* --- berth-mount-custom.c: --bind, --bind-ro, --tmpfs, --overlay, --overlay-ro, --inaccessible --- */
/* Parse one option argument in nspawn's syntax and append to s. -EINVAL on bad syntax,
 * *ret_detail (if not NULL) says what. */
int custom_mount_parse_bind(Settings *s, const char *arg, bool read_only, const char **ret_detail);
int custom_mount_parse_tmpfs(Settings *s, const char *arg, const char **ret_detail);
int custom_mount_parse_overlay(Settings *s, const char *arg, bool read_only, const char **ret_detail);
int custom_mount_parse_inaccessible(Settings *s, const char *arg, const char **ret_detail);
void custom_mount_free_all(CustomMount *l, size_t n);
/* A deep copy of N mounts (the runtime's list, which prepare fills in; the settings stay as parsed). */
int custom_mounts_copy(const CustomMount *l, size_t n, CustomMount **ret);
/* In the parent, on the runtime's copy: check that sources exist, create temp dirs for empty
 * sources and overlay work dirs (CustomMount.work: what berth made and removes at exit), sort by
 * destination. MACHINE names the temp dirs. Logs. */
int custom_mounts_prepare(CustomMount *l, size_t n, const char *machine);
/* In the child, under ROOT before pivot_root, parents before children (prepare sorts). Logs. */
/* U: the container's user namespace (NULL or fd < 0: none): its root owns --tmpfs= roots unless
 * their options say otherwise, mount points berth creates and temporary sources; binds are idmapped
 * as their options say, overlay layers on the host as the tree is (u->idmap). */
int custom_mounts_apply(const char *root, const CustomMount *l, size_t n, const UserNamespace *u);
/* Creates NAME below PARENT (MODE: S_IFDIR or S_IFREG and permissions) with fsuid and fsgid OWNER,
 * so that it belongs to the container's root also on an idmapped mount. Exists already: 0. */
int create_owned(int parent, const char *name, mode_t mode, uid_t owner);
/* In the parent at exit (and after a crash, from the record): remove work dirs. */
void custom_mounts_cleanup(const CustomMount *l, size_t n);
