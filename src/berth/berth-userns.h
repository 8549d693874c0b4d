/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* User namespaces (--private-users=, -U): which range of host ids the
 * container's 0..COUNT-1 map to, how that range is chosen (pick), and how it is
 * kept from two running machines at once.
 *
 * A picked range is 65536 ids at a multiple of 65536 in nspawn's window
 * (USERNS_PICK_MIN..USERNS_PICK_MAX), derived from the machine name so that a
 * machine gets the same range on every start while it is free. A range is
 * free when nothing else uses any id of it:
 *   - a user or group of the host (/etc/passwd, /etc/group),
 *   - a range handed out to users (/etc/subuid, /etc/subgid),
 *   - a running user namespace (/proc/PID/uid_map and gid_map of every process,
 *     whoever made it),
 *   - a range locked by a running systemd-nspawn or berth: nspawn's lock files,
 *     USERNS_LOCK_DIR/BASE, held with an open file description lock (F_OFD_SETLK)
 *     for the life of the container. berth takes the same locks, so nspawn and
 *     berth never pick the same range; a lock dies with its process, a lock file
 *     left by a crash is removed by the next start (userns_lock_cleanup_stale()).
 * Picking and locking happen under one berth-wide lock (UidSources.global_lock). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define USERNS_PICK_MIN UINT32_C(0x00080000)
#define USERNS_PICK_MAX UINT32_C(0x6FFF0000) /* the last base */
#define USERNS_RANGE_SIZE UINT32_C(0x10000)
#define USERNS_LOCK_DIR "/run/systemd/nspawn-uid"

typedef enum UserNamespaceMode {
        USERNS_NO,
        USERNS_FIXED,    /* UID[:COUNT] */
        USERNS_YES,      /* 65536 ids at the owner of the tree's root directory */
        USERNS_PICK,     /* a free range, see above */
        USERNS_IDENTITY, /* 0..65535 mapped to themselves */
        _USERNS_MODE_MAX,
        _USERNS_MODE_INVALID = -22, /* -EINVAL */
} UserNamespaceMode;

typedef enum UserNamespaceOwnership {
        USERNS_OWNERSHIP_OFF,   /* the tree is used as it is on disk */
        USERNS_OWNERSHIP_CHOWN, /* the tree is shifted to the range once */
        USERNS_OWNERSHIP_MAP,   /* the tree is mounted idmapped */
        USERNS_OWNERSHIP_AUTO,  /* map where the file system can, else as nspawn */
        _USERNS_OWNERSHIP_MAX,
        _USERNS_OWNERSHIP_INVALID = -22,
} UserNamespaceOwnership;

typedef struct UidRange {
        uint32_t start;
        uint32_t count;
} UidRange;

const char *userns_mode_to_string(UserNamespaceMode m);
UserNamespaceMode userns_mode_from_string(const char *s); /* the keywords only, no ranges */
const char *userns_ownership_to_string(UserNamespaceOwnership o);
UserNamespaceOwnership userns_ownership_from_string(const char *s);

/* --private-users=: no|yes|pick|identity|UID[:COUNT] (booleans too). *ret_range only for
 * USERNS_FIXED. -EINVAL, with *ret_detail saying why, on garbage. */
int userns_parse(const char *s, UserNamespaceMode *ret_mode, UidRange *ret_range, const char **ret_detail);
/* "UID[:COUNT]", COUNT defaulting to 65536; no empty ranges, none past 2^32-2
 * (4294967295 is the invalid id). */
int uid_range_parse(const char *s, UidRange *ret);

bool uid_range_overlaps(UidRange a, UidRange b);

/* The first candidate base for MACHINE: a hash of the name, in the window, aligned. */
uint32_t userns_pick_candidate(const char *machine);
/* The first base, from userns_pick_candidate() on in steps of 65536 (wrapping in the
 * window), whose range overlaps none of USED. -EBUSY if the window is full. */
int userns_pick_free(const char *machine, const UidRange *used, size_t n_used, uint32_t *ret_base);

/* Where the ranges in use are read from; the tests point it elsewhere. */
typedef struct UidSources {
        const char *passwd, *group;  /* ids as single-id ranges */
        const char *subuid, *subgid; /* NAME:START:COUNT */
        const char *proc;            /* PID/uid_map, PID/gid_map */
        const char *lock_dir;        /* nspawn's range locks */
        const char *global_lock;     /* berth's lock around picking */
} UidSources;

extern const UidSources uid_sources_host;

/* Every range in use on the host according to SRC (see the top). Unreadable
 * sources that do not exist count as empty. */
int uid_sources_collect(const UidSources *src, UidRange **ret, size_t *ret_n);

/* One uid_map/gid_map line "INSIDE OUTSIDE COUNT": the host side as a range. The
 * initial namespace's "0 0 4294967295" gives -ENOENT (it maps, it does not use). */
int uid_map_line_parse(const char *line, UidRange *ret_outside);

/* The lock of the range at BASE in DIR (non-blocking): -EBUSY if a live process
 * holds it. The fd holds it; userns_lock_release() drops it and removes the file. */
int userns_lock_take(const char *dir, uint32_t base, int *ret_fd);
void userns_lock_release(const char *dir, uint32_t base, int fd);
/* Removes the lock files in DIR that nobody holds. Returns how many. */
int userns_lock_cleanup_stale(const char *dir);

/* A held range: what the monitor keeps for the container's life. */
typedef struct UserNamespaceRange {
        UidRange range;
        const char *lock_dir;
        uint32_t *lock_bases; /* the 64K blocks of the window that the range covers, locked */
        int *lock_fds;
        size_t n_locks;
} UserNamespaceRange;

void userns_range_release(UserNamespaceRange *r);

/* Allocates the range for MODE (PICK, FIXED, YES, IDENTITY) under SRC's global lock:
 * PICK: the tree's shifted range if TREE_OWNER says it was shifted (a multiple of 65536 in
 * the window), else a free range; FIXED and YES: the given range, which must be free;
 * IDENTITY: 0..65535, shared by design. Locks what it hands out. On -EBUSY (and
 * -EADDRINUSE for a fixed range in use) *ret_detail says what is in the way. Does not log. */
int userns_range_allocate(const UidSources *src, UserNamespaceMode mode, UidRange fixed, const char *machine,
                          uid_t tree_owner, UserNamespaceRange *ret, char **ret_detail);

/* A uid_map or gid_map: RANGE from 0 inside, except the N single ids INSIDE[i] (ascending, below
 * range.count), which map to OUTSIDE[i]; the range's ids of those are left out. */
int uid_map_format(UidRange range, const uint32_t *inside, const uint32_t *outside, size_t n, char **ret);

/* ---- the runtime: in the monitor, before the container's child exists ---- */

struct Settings;

/* The container's user namespace, made and mapped by the monitor (host namespaces) before the
 * child is cloned. The child mounts the tree idmapped through fd (detached mounts only), and
 * enters it after pivot_root, together with the locked mount namespace that the monitor makes
 * owned by it (berth-container.c). */
typedef struct UserNamespace {
        UserNamespaceRange range;
        int fd;       /* the user namespace, its uid_map and gid_map written; -EBADF: none */
        bool idmap;   /* mount the tree idmapped through fd (ownership map) */
        /* The network namespace of a private network, owned by the user namespace and made with it
         * before the container is cloned (the plan's NAMESPACE_USERNS), so that container root may
         * configure its links and mount sysfs. -EBADF: not made. */
        int netns_fd;
        /* --bind-user=: host users with one id each inside, cut out of the range (berth-bind-user.h) */
        struct BindUser *bind_users;
        size_t n_bind_users;
} UserNamespace;

#define USER_NAMESPACE_NULL ((UserNamespace) { .fd = -EBADF, .netns_fd = -EBADF })

/* Allocates the range, resolves the ownership mode against the tree's file system, makes the
 * user namespace. TREE_FD: a detached mount whose root is the tree's root (the root source's, or
 * the root partition's of an image): its owner and whether it can be idmapped decide. Nothing
 * with --private-users=no. Logs. */
int userns_setup(const struct Settings *s, int tree_fd, UserNamespace *ret);
/* Closes the namespace and releases the range's locks. */
void userns_done(UserNamespace *u);
/* The owner (uid = gid) of what berth creates for the container (its tmpfs mounts): the range's
 * root, 0 without a user namespace. */
static inline uid_t userns_owner(const UserNamespace *u) {
        return u && u->fd >= 0 ? u->range.range.start : 0;
}
/* A new user namespace with MAP ("INSIDE OUTSIDE COUNT" lines) as both its uid_map and gid_map,
 * held by the returned fd: what an idmapped mount maps through. Host root only; works from the
 * container's child too (a PID namespace of its own, the host's /proc). */
int userns_make_mapped(const char *map, int *ret_fd);
/* Makes the detached mount MNT_FD (and the mounts below it) idmapped through USERNS_FD. */
int mount_make_idmapped(int mnt_fd, int userns_fd);
