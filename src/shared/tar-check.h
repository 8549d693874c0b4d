/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A gate for a tar stream on its way to tar(1): it reads the headers as the bytes pass and
 * refuses the archive at the first member that must not be extracted, before that member's
 * header reaches tar. An archive is hostile input: a member with an absolute name or a ".."
 * component, a member below a symlink the archive made (a write through it), a hard link
 * whose target is outside the tree or below such a symlink, a device node the policy does
 * not allow, a setuid or setgid file, a security.capability xattr, a header tar would read
 * differently from us (bad checksum, unknown type, data on a type that has none), and an
 * archive that grows beyond MAX_BYTES of stream or MAX_ENTRIES members. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct TarCheck {
        /* the policy, set by the caller */
        uint64_t max_bytes;                 /* of the uncompressed stream; 0: no bound */
        uint64_t max_entries;               /* members; 0: no bound */
        bool keep_devices;                  /* any device node */
        bool keep_setuid;                   /* setuid and setgid bits on files */
        bool keep_caps;                     /* security.capability xattrs */
        bool (*device_allowed)(mode_t mode, dev_t rdev);   /* without keep_devices; NULL: none */

        /* progress */
        uint64_t bytes, entries;
        bool done;                          /* the end-of-archive blocks went by */
        char *error;                        /* why the archive was refused */
        bool limit_hit;                     /* ... because of max_bytes or max_entries */

        /* the parser */
        int state;
        uint8_t block[512];
        size_t fill;
        uint64_t skip;                      /* bytes of data (with padding) still to pass */
        char meta_type;                     /* 'x', 'g', 'L', 'K' whose data we collect */
        char *meta;
        size_t meta_size, meta_fill;
        char *long_name, *long_link;        /* GNU 'L' and 'K' */
        char *pax_path, *pax_linkpath;      /* 'x' */
        bool pax_seen, pax_has_size, pax_caps;
        uint64_t pax_size;

        /* the symlinks the archive made, normalized names: a hash set */
        char **links;
        size_t n_links, n_buckets;
} TarCheck;

#define TAR_CHECK_NULL { .max_bytes = 0 }

/* Passes N bytes of the stream through the gate. 0: they may go on to tar; -EPERM: refused,
 * c->error says why (c->limit_hit for the bounds); -EBADMSG: a malformed archive, likewise. */
int tar_check_feed(TarCheck *c, const uint8_t *p, size_t n);
void tar_check_done(TarCheck *c);
