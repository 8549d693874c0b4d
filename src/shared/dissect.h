/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What a raw disk image holds, read with libblkid: a GPT partition table laid
 * out by the Discoverable Partitions Specification (partitions found by their
 * type UUIDs for this architecture), or one file system without a partition
 * table. Nothing is attached or mounted here: the image is only read, and it
 * is untrusted input (its table may lie about sizes, its file systems may be
 * anything), so every finding is checked against the file's size and the
 * allow-list of file systems before anyone hands it to the kernel. No logging. */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

typedef enum PartitionDesignator {
        PARTITION_ROOT,
        PARTITION_USR,
        PARTITION_HOME,
        PARTITION_SRV,
        PARTITION_VAR,
        PARTITION_TMP,
        PARTITION_ESP,
        PARTITION_XBOOTLDR,
        PARTITION_ROOT_VERITY,
        PARTITION_USR_VERITY,
        PARTITION_ROOT_VERITY_SIG,
        PARTITION_USR_VERITY_SIG,
        PARTITION_SWAP,         /* found so that an image policy can ask for it; never mounted */
        _PARTITION_DESIGNATOR_MAX,
        _PARTITION_DESIGNATOR_INVALID = -22,
} PartitionDesignator;

/* GPT partition attribute bits the specification gives meaning to */
#define GPT_FLAG_GROWFS (UINT64_C(1) << 59)
#define GPT_FLAG_READ_ONLY (UINT64_C(1) << 60)
#define GPT_FLAG_NO_AUTO (UINT64_C(1) << 63)

typedef struct DissectedPartition {
        bool found;
        unsigned partno;        /* GPT entry number (1-based), 0: the whole image is one file system */
        uint64_t offset;        /* bytes from the start of the image */
        uint64_t size;          /* bytes */
        bool read_only;         /* GPT attribute 60 */
        bool growfs;            /* GPT attribute 59 */
        char *uuid;             /* GPT partition UUID, lowercase; NULL without a table */
        char *fstype;           /* libblkid's name, NULL if no file system was recognized */
        char *label;            /* GPT partition name, may be NULL */
} DissectedPartition;

typedef struct DissectedImage {
        bool has_table;         /* GPT; false: a single file system */
        uint64_t image_size;
        DissectedPartition partitions[_PARTITION_DESIGNATOR_MAX];
} DissectedImage;

void dissected_image_done(DissectedImage *m);

/* Reads the image behind FD (a regular file or block device). On failure, *ret_detail
 * (if not NULL) gets a malloc'd clause saying what is wrong with the image ("it has two
 * root partitions (2 and 3)"), for the caller's one-line error. Errors: -ENOMEDIUM nothing recognizable, -EPROTONOSUPPORT
 * a partition table other than GPT, -ENXIO no root or /usr for this architecture,
 * -ENOTUNIQ a partition type found twice, -ERANGE a partition beyond the image's end
 * (truncated), -EMEDIUMTYPE a file system not on the allow-list, -EUCLEAN a partition
 * without a recognizable file system. */
int dissect_image_fd(int fd, DissectedImage *ret, char **ret_detail);

/* The file system type to give fsopen() for a partition's libblkid type, or NULL if
 * berth does not mount it there: ext4 (ext2/3 too), xfs, btrfs, squashfs, erofs; vfat
 * only on the ESP and XBOOTLDR. */
const char *dissect_fstype_allowed(PartitionDesignator d, const char *fstype);

/* "root", "usr", ..., "root-verity-sig" and back */
const char *partition_designator_to_string(PartitionDesignator d);
PartitionDesignator partition_designator_from_string(const char *s);
/* Where a partition is mounted in the tree: "/usr", "/home", ...; NULL for root and verity. */
const char *partition_designator_mount_point(PartitionDesignator d);
bool partition_designator_is_verity(PartitionDesignator d);
/* Whether the partition holds a file system berth may mount: not the verity data,
 * signatures, or swap. */
bool partition_designator_has_fs(PartitionDesignator d);
/* root-verity for root, usr-verity-sig's data is usr, ...; _PARTITION_DESIGNATOR_INVALID if none */
PartitionDesignator partition_verity_of(PartitionDesignator data);
PartitionDesignator partition_verity_sig_of(PartitionDesignator data);
PartitionDesignator partition_verity_to_data(PartitionDesignator verity);     /* for hash and sig partitions */
/* The designator of a GPT type UUID (lowercase or not) for this architecture, or
 * _PARTITION_DESIGNATOR_INVALID for types berth does not use. */
PartitionDesignator partition_designator_from_type_uuid(const char *uuid);
