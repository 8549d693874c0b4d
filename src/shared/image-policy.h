/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* --image-policy=: systemd's image dissection policy (systemd.image-policy(7)), which
 * partitions of an image may be used and with what protection. The grammar:
 *
 *     POLICY := "*" | "-" | "~" | RULE [":" RULE]...
 *     RULE   := [DESIGNATOR] "=" FLAGS        (no designator: the default for the unlisted)
 *     FLAGS  := "" | "-" | FLAG ["+" FLAG]...
 *
 * with FLAG one of verity, signed, encrypted, unprotected, unused, absent (and open, ignore
 * for all of them and for unused+absent), read-only-on/off, growfs-on/off, and the file
 * system types. "*" allows everything, "-" ignores everything (unused+absent), "~" wants
 * everything absent. A rule naming no use flag allows every use; one naming no read-only
 * (growfs) flag allows both values.
 *
 * image_policy_decide() applies a policy to a dissected image: pure logic, no logging,
 * so that the unit tests can feed it every combination. */

#include <stdbool.h>
#include <stdint.h>

#include "dissect.h"

typedef enum PartitionPolicyFlags {
        PARTITION_POLICY_VERITY = 1 << 0,
        PARTITION_POLICY_SIGNED = 1 << 1,
        PARTITION_POLICY_ENCRYPTED = 1 << 2,
        PARTITION_POLICY_UNPROTECTED = 1 << 3,
        PARTITION_POLICY_UNUSED = 1 << 4,
        PARTITION_POLICY_ABSENT = 1 << 5,
        PARTITION_POLICY_OPEN = (1 << 6) - 1,
        PARTITION_POLICY_IGNORE = PARTITION_POLICY_UNUSED | PARTITION_POLICY_ABSENT,
        _PARTITION_POLICY_USE_MASK = PARTITION_POLICY_OPEN,

        PARTITION_POLICY_READ_ONLY_ON = 1 << 6,
        PARTITION_POLICY_READ_ONLY_OFF = 1 << 7,
        _PARTITION_POLICY_READ_ONLY_MASK = PARTITION_POLICY_READ_ONLY_ON | PARTITION_POLICY_READ_ONLY_OFF,
        PARTITION_POLICY_GROWFS_ON = 1 << 8,
        PARTITION_POLICY_GROWFS_OFF = 1 << 9,
        _PARTITION_POLICY_GROWFS_MASK = PARTITION_POLICY_GROWFS_ON | PARTITION_POLICY_GROWFS_OFF,

        PARTITION_POLICY_BTRFS = 1 << 10,
        PARTITION_POLICY_EROFS = 1 << 11,
        PARTITION_POLICY_EXT4 = 1 << 12,
        PARTITION_POLICY_F2FS = 1 << 13,
        PARTITION_POLICY_SQUASHFS = 1 << 14,
        PARTITION_POLICY_VFAT = 1 << 15,
        PARTITION_POLICY_XFS = 1 << 16,
        _PARTITION_POLICY_FSTYPE_MASK = ((1 << 17) - 1) & ~((1 << 10) - 1),
} PartitionPolicyFlags;

typedef struct ImagePolicy {
        uint32_t flags[_PARTITION_DESIGNATOR_MAX]; /* 0: no rule for it */
        bool listed[_PARTITION_DESIGNATOR_MAX];
        uint32_t default_flags;
} ImagePolicy;

/* systemd-nspawn's default for --image=: root and /usr in any protection, the other
 * partitions unprotected (or encrypted), swap and everything unknown ignored. */
extern const ImagePolicy image_policy_container;

/* -EINVAL bad syntax, -EBADSLT unknown designator, -EBADRQC unknown flag, -ENOTUNIQ a designator
 * (or the default) given twice. *ret_bad (if not NULL) gets the offending word, malloc'd. */
int image_policy_from_string(const char *s, ImagePolicy *ret, char **ret_bad);
/* The policy back in the grammar, every rule spelt out (round-trips through from_string). */
int image_policy_to_string(const ImagePolicy *p, char **ret);
/* "verity+unprotected+read-only-on", "-" for none */
int partition_policy_flags_to_string(uint32_t flags, char **ret);

/* The effective flags for D: its rule, else (for verity and signature partitions) what the
 * data partition's rule implies, else the default; unspecified parts filled in, and the
 * protection flags that make no sense for D taken out. */
uint32_t image_policy_get(const ImagePolicy *p, PartitionDesignator d);

/* How a partition is used */
typedef enum PartitionUse {
        PARTITION_USE_NONE,          /* absent, unused, or nothing to mount (verity data, swap) */
        PARTITION_USE_UNPROTECTED,
        PARTITION_USE_VERITY,        /* through dm-verity with the root hash */
        PARTITION_USE_SIGNED,        /* through dm-verity with the root hash and its signature */
        _PARTITION_USE_MAX,
} PartitionUse;

const char *partition_use_to_string(PartitionUse u);

/* What the image offers for verity, per data partition (root, usr). */
typedef struct VerityOffer {
        bool hash;              /* a root hash is known (option, side file) */
        bool tree;              /* a hash tree outside the image (--verity-data=, .verity); the image's own
                                 * verity partition counts too where the policy lets it be used */
        bool sig;               /* a signature of the root hash (option, side file) */
        const char *why;        /* what asks for verity, NULL if nothing does; for messages: "the image's
                                 * root-verity partition", "--root-hash=", "'x.roothash'" */
} VerityOffer;

/* Decides the use of every partition of IMG under POLICY. On failure *ret_detail gets a malloc'd
 * clause saying what the policy forbids ("the policy wants root used with verity, and ..."):
 * -ERFKILL the policy forbids what the image has (or lacks), -ENOKEY verity asked for but the
 * root hash or the hash tree is missing, -EOPNOTSUPP only encryption allowed (berth opens no LUKS).
 *
 * A partition that asks for verity (a verity partition, side files, options: VERITY[d].why set)
 * is used with verity whenever the policy allows it, never silently without: it is used
 * unprotected only if the policy leaves verity out for it. */
int image_policy_decide(const ImagePolicy *policy, const DissectedImage *img,
                        const VerityOffer verity[_PARTITION_DESIGNATOR_MAX],
                        PartitionUse ret_use[_PARTITION_DESIGNATOR_MAX], char **ret_detail);
