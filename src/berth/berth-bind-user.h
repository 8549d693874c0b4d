/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* --bind-user=USER, as nspawn's: a user of the host, with its home directory, inside a container
 * that runs in a user namespace.
 *
 *   - The user gets a uid in the container, the first one from BIND_USER_UID_MIN..MAX that the
 *     tree's /etc/passwd and /etc/group do not use, and the same number as gid. The container's
 *     uid_map and gid_map map exactly that id to the user's host uid (and its private group's host
 *     gid), cut out of the container's range: files the user makes inside belong to it on the host.
 *   - Its home is bound (not idmapped: the map does it) on /run/host/home/USER.
 *   - Its user and group records, trimmed to what the container needs (name, uid, gid, home, the
 *     shell with --bind-user-shell=), are JSON user records in /run/host/userdb/ (USER.user,
 *     UID.user, USER.group, GID.group), where nss-systemd and userdbctl in the guest find them.
 *     As nspawn, berth writes nothing to the guest's /etc: a guest without nss-systemd does not
 *     resolve the name, though the files and ids are there.
 * Refused, as nspawn refuses them: root and nobody, users without a group of their own name, a
 * user or group of that name already in the tree, host ids inside the container's range. */

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "berth-userns.h"

#define BIND_USER_UID_MIN UINT32_C(60514)
#define BIND_USER_UID_MAX UINT32_C(60577)

typedef struct BindUser {
        char *name;      /* the user's and its private group's name */
        uid_t host_uid;
        gid_t host_gid;
        char *host_home; /* bound on /run/host/home/NAME */
        char *shell;     /* the record's shell, NULL: none */
        uid_t uid;       /* uid and gid inside */
} BindUser;

void bind_users_free(BindUser *l, size_t n);

/* The names (field 1) and ids (field 3) of a passwd- or group-format file; comments and short lines
 * are skipped. Does not log. */
int colon_file_collect(FILE *f, char ***ret_names, uid_t **ret_ids, size_t *ret_n_ids);

/* The first id from *NEXT on, up to BIND_USER_UID_MAX and below RANGE_COUNT, not in USED: *NEXT.
 * -EBUSY if there is none. */
int bind_user_pick_uid(const uid_t *used, size_t n_used, uint32_t range_count, uid_t *next);

/* The JSON user and group records (one line each, newline-terminated), as the guest reads them. */
int bind_user_record(const BindUser *u, char **ret);
int bind_group_record(const BindUser *u, char **ret);

/* In the monitor: looks up S's --bind-user= users on the host and picks their ids against the
 * tree's /etc (TREE_FD: the tree's root) and RANGE_COUNT. Nothing with no users. Logs. */
int bind_users_resolve(const struct Settings *s, int tree_fd, uint32_t range_count, BindUser **ret, size_t *ret_n);

/* In the monitor, once the range is known: refuses host ids that the range maps already. Logs. */
int bind_users_check_range(const BindUser *l, size_t n, UidRange range);

/* In the child, under ROOT before pivot_root, with /run/host made: the records in /run/host/userdb
 * and the homes on /run/host/home, everything owned by the container's root. Logs. */
int bind_users_setup(const char *root, const UserNamespace *u);
