/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* dm-verity for --image=: what asks for it (--root-hash=, --root-hash-sig=, --verity-data=,
 * the side files IMAGE.roothash, IMAGE.usrhash, IMAGE.roothash.p7s, IMAGE.usrhash.p7s,
 * IMAGE.verity, the image's root-verity/usr-verity partitions), and the two ways berth uses
 * it through libcryptsetup:
 *
 *   - activation: a read-only dm-verity device over the data partition, which the kernel
 *     checks block by block on every read, with the root hash's signature checked by the
 *     kernel against its keyring when there is one. Needs device-mapper.
 *   - a one-time check in userspace: libcryptsetup reads the whole partition and its hash
 *     tree and compares the result with the root hash. Needs no device-mapper, and protects
 *     only against what was wrong before the start: the image can change afterwards.
 *
 * Logs (it is berth's image start-up). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dissect.h"
#include "image-policy.h"

typedef struct VerityConfig {
        PartitionDesignator designator; /* root or usr; _PARTITION_DESIGNATOR_INVALID: nothing from outside */
        uint8_t *root_hash;
        size_t root_hash_size;
        char *root_hash_from;           /* "--root-hash=" or "'PATH'", for messages */
        uint8_t *sig;
        size_t sig_size;
        char *sig_from;
        char *data_path;                /* the hash tree outside the image */
        char *data_from;
} VerityConfig;

#define VERITY_CONFIG_NULL ((VerityConfig) { .designator = _PARTITION_DESIGNATOR_INVALID })

void verity_config_done(VerityConfig *v);

/* Gathers the options and the side files next to IMAGE_PATH (the options win) for the image M:
 * the hash goes to the root partition, or to /usr where the image has no root (.usrhash: /usr).
 * Logs a one-line error for an unreadable or malformed side file. */
int verity_config_load(const char *image_path, const DissectedImage *m, const uint8_t *root_hash,
                       size_t root_hash_size, const uint8_t *sig, size_t sig_size, const char *data_path,
                       VerityConfig *ret);

/* What the configuration and the image offer, for image_policy_decide(). */
void verity_config_offer(const VerityConfig *v, const DissectedImage *m, VerityOffer ret[_PARTITION_DESIGNATOR_MAX]);

/* Whether this kernel can set up a dm-verity device: device-mapper is there. */
bool verity_dm_available(void);

/* The one-time check in userspace: DATA (a device or file holding exactly the partition) against
 * the hash tree in HASH, superblock at its start. 0 good, -EPERM the data or the tree do not give
 * the root hash, other errors: the tree cannot be read. Logs. */
int verity_check_userspace(const char *what, const char *data, const char *hash, const VerityConfig *v);

/* Activates NAME (/dev/mapper/NAME) over DATA with the tree in HASH, read-only, with the
 * signature when SIGNED. The device is marked for deferred removal once opened by the caller's
 * mount: it goes when the last user does, which includes a SIGKILLed berth. Logs. */
int verity_activate(const char *what, const char *name, const char *data, const char *hash, const VerityConfig *v,
                    bool signed_, char **ret_path);
/* Marks NAME for removal when its last user goes (right away if it has none). */
int verity_deactivate_deferred(const char *name);
