/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Credentials (--set-credential=, --load-credential=, --import-credential=, SetCredential=,
 * LoadCredential=): small named blobs the host hands the container, as systemd's service
 * credentials. The guest finds them as read-only files of its root, mode 0400, in
 * CREDENTIALS_DIR, and $CREDENTIALS_DIRECTORY names it: a systemd guest imports them as its system
 * credentials. Their contents are read on the host when the options are parsed; the child writes
 * them into a memory file system of their own before the container sees its root. */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define CREDENTIALS_DIR "/run/host/credentials"
#define CREDENTIAL_SIZE_MAX (1024U * 1024U)          /* one credential */
#define CREDENTIALS_TOTAL_SIZE_MAX (1024U * 1024U)   /* all of them together */

typedef struct Credential {
        char *id;       /* the file name in CREDENTIALS_DIR */
        char *data;
        size_t size;
} Credential;

/* A file name of its own: not empty, not "." or "..", no "/", no control characters, at most
 * NAME_MAX bytes. */
bool credential_id_valid(const char *id);

/* Adds ID with DATA (both taken, freed on failure) to the list; an ID already there is replaced. */
int credential_put(Credential **list, size_t *n, char *id, char *data, size_t size);
void credential_free_all(Credential *list, size_t n);
size_t credentials_total_size(const Credential *list, size_t n);

/* "ID:VALUE", VALUE with C escapes (\n, \t, \xHH, \NNN, \\ ...) resolved. *detail says what is wrong. */
int credential_parse_set(const char *arg, char **ret_id, char **ret_data, size_t *ret_size, const char **detail);
/* "ID:PATH": the contents of PATH (a regular file, or an AF_UNIX stream socket to read until EOF).
 * A relative PATH is looked up in our own $CREDENTIALS_DIRECTORY (berth run as a service that
 * was given credentials). */
int credential_parse_load(const char *arg, char **ret_id, char **ret_data, size_t *ret_size, const char **detail);
/* Adds every credential of our own $CREDENTIALS_DIRECTORY whose name matches GLOB and whose ID is
 * not in the list yet. None when we were given none. */
int credentials_import(const char *glob, Credential **list, size_t *n);

/* In the child, in the container's mount namespace before pivot_root: a fresh memory file system
 * on ROOT/run/host/credentials holding the credentials, owned by UID:GID (host ids of the container's
 * root, or of the payload's --user=), directory 0500, files 0400, mounted read-only. Nothing with an
 * empty list. Logs. */
int credentials_mount(const char *root, const Credential *list, size_t n, uid_t uid, gid_t gid);
