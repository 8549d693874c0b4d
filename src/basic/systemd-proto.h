/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The three things berth says to a systemd it runs under, spoken directly instead of through
 * libsystemd: linking that library (with libgcrypt, lzma, zstd, lz4) cost every start ~2 ms and
 * every monitor ~80 kB of private memory, for a few datagrams whose format systemd documents as
 * stable (sd_notify(3), systemd's JOURNAL_NATIVE_PROTOCOL). libc only; none of these log. */

#include <stdbool.h>
#include <stddef.h>

/* Is the host booted with systemd (its /run/systemd/system/ is a directory)? */
bool systemd_booted(void);

/* Sends STATE ("READY=1", "STATUS=...", newline-separated) as one datagram to ADDRESS, a socket
 * path or "@name" for an abstract socket (the forms of $NOTIFY_SOCKET). 0 when ADDRESS is NULL
 * or empty (no supervisor listens), 1 when sent. */
int notify_send_to(const char *address, const char *state);
/* The same to $NOTIFY_SOCKET. */
int notify_send(const char *state);

typedef struct JournalField {
        const char *name;  /* upper case, digits and '_' */
        const char *value; /* NULL: the field is left out */
} JournalField;

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

/* One journal entry of the N FIELDS as a datagram to the journal's native socket at PATH: a value
 * with a newline in it goes in the protocol's binary form, the others as NAME=VALUE lines. */
int journal_send_to(const char *path, const JournalField *fields, size_t n);
