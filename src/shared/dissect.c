/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <blkid.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/fs.h>

#include "dissect.h"
#include "dl-load.h"
#include "util.h"

static const char *const designator_table[_PARTITION_DESIGNATOR_MAX] = {
        [PARTITION_ROOT] = "root",
        [PARTITION_USR] = "usr",
        [PARTITION_HOME] = "home",
        [PARTITION_SRV] = "srv",
        [PARTITION_VAR] = "var",
        [PARTITION_TMP] = "tmp",
        [PARTITION_ESP] = "esp",
        [PARTITION_XBOOTLDR] = "xbootldr",
        [PARTITION_ROOT_VERITY] = "root-verity",
        [PARTITION_USR_VERITY] = "usr-verity",
        [PARTITION_ROOT_VERITY_SIG] = "root-verity-sig",
        [PARTITION_USR_VERITY_SIG] = "usr-verity-sig",
        [PARTITION_SWAP] = "swap",
};

static const char *const mount_point_table[_PARTITION_DESIGNATOR_MAX] = {
        [PARTITION_USR] = "/usr",
        [PARTITION_HOME] = "/home",
        [PARTITION_SRV] = "/srv",
        [PARTITION_VAR] = "/var",
        [PARTITION_TMP] = "/var/tmp", /* the specification's "tmp" partition is /var/tmp */
        [PARTITION_ESP] = "/efi",
        [PARTITION_XBOOTLDR] = "/boot",
};

/* The Discoverable Partitions Specification's type UUIDs. The architecture-specific
 * ones (root, usr and their verity data and signatures) for the architecture we run
 * on; an image for another architecture has no root here. */
static const struct {
        const char *uuid;
        PartitionDesignator designator;
} type_table[] = {
#if defined(__x86_64__)
        { "4f68bce3-e8cd-4db1-96e7-fbcaf984b709", PARTITION_ROOT },
        { "8484680c-9521-48c6-9c11-b0720656f69e", PARTITION_USR },
        { "2c7357ed-ebd2-46d9-aec1-23d437ec2bf5", PARTITION_ROOT_VERITY },
        { "77ff5f63-e7b6-4633-acf4-1565b864c0e6", PARTITION_USR_VERITY },
        { "41092b05-9fc8-4523-994f-2def0408b176", PARTITION_ROOT_VERITY_SIG },
        { "e7bb33fb-06cf-4e81-8273-e543b413e2e2", PARTITION_USR_VERITY_SIG },
#elif defined(__aarch64__)
        { "b921b045-1df0-41c3-af44-4c6f280d3fae", PARTITION_ROOT },
        { "b0e01050-ee5f-4390-949a-9101b17104e9", PARTITION_USR },
        { "df3300ce-d69f-4c92-978c-9bfb0f38d820", PARTITION_ROOT_VERITY },
        { "6e11a4e7-fbca-4ded-b9e9-e1a512bb664e", PARTITION_USR_VERITY },
        { "6db69de6-29f4-4758-a7a5-962190f00ce3", PARTITION_ROOT_VERITY_SIG },
        { "c23ce4ff-44bd-4b00-b2d4-b41b3419e02a", PARTITION_USR_VERITY_SIG },
#endif
        { "933ac7e1-2eb4-4f13-b844-0e14e2aef915", PARTITION_HOME },
        { "3b8f8425-20e0-4f3b-907f-1a25a76f98e8", PARTITION_SRV },
        { "4d21b016-b534-45c2-a9fb-5c16e091fd2d", PARTITION_VAR },
        { "7ec6f557-3bc5-4aca-b293-16ef5df639d1", PARTITION_TMP },
        { "c12a7328-f81f-11d2-ba4b-00a0c93ec93b", PARTITION_ESP },
        { "bc13c2ff-59e6-4262-a352-b275fd6f7172", PARTITION_XBOOTLDR },
        { "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f", PARTITION_SWAP },
};

#if defined(__x86_64__)
#define ARCH_NAME "x86-64"
#elif defined(__aarch64__)
#define ARCH_NAME "arm64"
#else
#define ARCH_NAME "this architecture (berth knows none of its partition types)"
#endif

/* The file systems berth lets the kernel parse from an image: the common
 * image builders' choices, each a maintained and fuzzed driver. vfat only
 * where the specification puts it. */
static const struct {
        const char *blkid;
        const char *fs;
        bool boot_only;
} fs_allow[] = {
        { "ext4", "ext4", false },
        { "ext3", "ext4", false },
        { "ext2", "ext4", false },
        { "xfs", "xfs", false },
        { "btrfs", "btrfs", false },
        { "squashfs", "squashfs", false },
        { "erofs", "erofs", false },
        { "vfat", "vfat", true },
};

const char *partition_designator_to_string(PartitionDesignator d) {
        return d >= 0 && d < _PARTITION_DESIGNATOR_MAX ? designator_table[d] : NULL;
}

PartitionDesignator partition_designator_from_string(const char *s) {
        return (PartitionDesignator) string_table_lookup(designator_table, ELEMENTSOF(designator_table), s);
}

const char *partition_designator_mount_point(PartitionDesignator d) {
        return d >= 0 && d < _PARTITION_DESIGNATOR_MAX ? mount_point_table[d] : NULL;
}

bool partition_designator_is_verity(PartitionDesignator d) {
        return d == PARTITION_ROOT_VERITY || d == PARTITION_USR_VERITY || d == PARTITION_ROOT_VERITY_SIG ||
               d == PARTITION_USR_VERITY_SIG;
}

bool partition_designator_has_fs(PartitionDesignator d) {
        return d >= 0 && d < _PARTITION_DESIGNATOR_MAX && !partition_designator_is_verity(d) && d != PARTITION_SWAP;
}

/* data partition, its hash tree, its signature */
static const PartitionDesignator verity_table[][3] = {
        { PARTITION_ROOT, PARTITION_ROOT_VERITY, PARTITION_ROOT_VERITY_SIG },
        { PARTITION_USR, PARTITION_USR_VERITY, PARTITION_USR_VERITY_SIG },
};

PartitionDesignator partition_verity_of(PartitionDesignator data) {
        for (size_t i = 0; i < ELEMENTSOF(verity_table); i++)
                if (verity_table[i][0] == data)
                        return verity_table[i][1];
        return _PARTITION_DESIGNATOR_INVALID;
}

PartitionDesignator partition_verity_sig_of(PartitionDesignator data) {
        for (size_t i = 0; i < ELEMENTSOF(verity_table); i++)
                if (verity_table[i][0] == data)
                        return verity_table[i][2];
        return _PARTITION_DESIGNATOR_INVALID;
}

PartitionDesignator partition_verity_to_data(PartitionDesignator verity) {
        for (size_t i = 0; i < ELEMENTSOF(verity_table); i++)
                if (verity_table[i][1] == verity || verity_table[i][2] == verity)
                        return verity_table[i][0];
        return _PARTITION_DESIGNATOR_INVALID;
}

PartitionDesignator partition_designator_from_type_uuid(const char *uuid) {
        for (size_t i = 0; uuid && i < ELEMENTSOF(type_table); i++)
                if (strcasecmp(type_table[i].uuid, uuid) == 0)
                        return type_table[i].designator;
        return _PARTITION_DESIGNATOR_INVALID;
}

const char *dissect_fstype_allowed(PartitionDesignator d, const char *fstype) {
        for (size_t i = 0; fstype && i < ELEMENTSOF(fs_allow); i++)
                if (streq(fs_allow[i].blkid, fstype)) {
                        if (fs_allow[i].boot_only && d != PARTITION_ESP && d != PARTITION_XBOOTLDR)
                                return NULL;
                        return fs_allow[i].fs;
                }
        return NULL;
}

void dissected_image_done(DissectedImage *m) {
        for (size_t i = 0; i < ELEMENTSOF(m->partitions); i++) {
                free(m->partitions[i].fstype);
                free(m->partitions[i].label);
                free(m->partitions[i].uuid);
        }
        *m = (DissectedImage) {};
}

#define BLKID_SYMBOLS(X)                                                                                \
        X(blkid_do_safeprobe) X(blkid_free_probe) X(blkid_new_probe) X(blkid_partition_get_flags)       \
        X(blkid_partition_get_name) X(blkid_partition_get_partno) X(blkid_partition_get_size)           \
        X(blkid_partition_get_start) X(blkid_partition_get_type_string) X(blkid_partition_get_uuid)     \
        X(blkid_partlist_get_partition) X(blkid_partlist_numof_partitions)                              \
        X(blkid_probe_enable_partitions) X(blkid_probe_enable_superblocks)                              \
        X(blkid_probe_get_partitions) X(blkid_probe_lookup_value) X(blkid_probe_set_device)             \
        X(blkid_probe_set_partitions_flags) X(blkid_probe_set_superblocks_flags)
BLKID_SYMBOLS(DL_DECLARE)

/* libblkid, loaded for the first image (dl-load.h): a machine from a directory starts without it */
static int blkid_load(const char **ret_error) {
        static const DlSymbol symbols[] = { BLKID_SYMBOLS(DL_ENTRY) };
        static void *handle;

        return dl_load(&handle, "libblkid.so.1", symbols, ELEMENTSOF(symbols), ret_error);
}

static void blkid_free_probep(blkid_probe *p) {
        if (*p)
                sym_blkid_free_probe(*p);
}

#define FAIL(err, ...) ({ set_detail(ret_detail, __VA_ARGS__); (err); })

/* The file system in [offset, offset+size) of FD: 1 and *ret its libblkid name, 0 none. */
static int probe_fstype(int fd, uint64_t offset, uint64_t size, char **ret) {
        _cleanup_(blkid_free_probep) blkid_probe pr = NULL;
        const char *v = NULL;
        int r;

        errno = 0;
        pr = sym_blkid_new_probe();
        if (!pr)
                return errno > 0 ? -errno : -ENOMEM;
        if (sym_blkid_probe_set_device(pr, fd, (blkid_loff_t) offset, (blkid_loff_t) size) < 0)
                return errno > 0 ? -errno : -EIO;
        sym_blkid_probe_enable_partitions(pr, 0);
        sym_blkid_probe_enable_superblocks(pr, 1);
        sym_blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE);
        errno = 0;
        r = sym_blkid_do_safeprobe(pr);
        if (r == -2)
                return -ENOTUNIQ; /* two signatures: which one the kernel takes is a guess */
        if (r < 0)
                return errno > 0 ? -errno : -EIO;
        if (r == 1 || sym_blkid_probe_lookup_value(pr, "TYPE", &v, NULL) < 0 || !v)
                return 0;
        *ret = strdup(v);
        return *ret ? 1 : -ENOMEM;
}

static int image_size(int fd, uint64_t *ret) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (S_ISREG(st.st_mode)) {
                *ret = (uint64_t) st.st_size;
                return 0;
        }
        if (S_ISBLK(st.st_mode))
                return RET_NERRNO(ioctl(fd, BLKGETSIZE64, ret));
        return -EBADFD;
}

static int dissect_gpt(int fd, blkid_probe pr, DissectedImage *m, char **ret_detail) {
        blkid_partlist pl;
        int n, r;

        errno = 0;
        pl = sym_blkid_probe_get_partitions(pr);
        if (!pl)
                return FAIL(errno > 0 ? -errno : -EIO, "its partition table cannot be read");
        n = sym_blkid_partlist_numof_partitions(pl);
        for (int i = 0; i < n; i++) {
                blkid_partition pp = sym_blkid_partlist_get_partition(pl, i);
                PartitionDesignator d;
                DissectedPartition *p;
                uint64_t start, size, flags;
                const char *name, *puuid;

                if (!pp)
                        continue;
                d = partition_designator_from_type_uuid(sym_blkid_partition_get_type_string(pp));
                if (d < 0)
                        continue; /* swap, other architectures, plain Linux data: not ours to mount */
                flags = sym_blkid_partition_get_flags(pp);
                if ((flags & GPT_FLAG_NO_AUTO) && d != PARTITION_ROOT)
                        continue; /* the image asks not to be mounted automatically there */
                if (sym_blkid_partition_get_start(pp) < 0 || sym_blkid_partition_get_size(pp) <= 0)
                        return FAIL(-ERANGE, "partition %i has an invalid extent", sym_blkid_partition_get_partno(pp));
                start = (uint64_t) sym_blkid_partition_get_start(pp) * 512;
                size = (uint64_t) sym_blkid_partition_get_size(pp) * 512;
                if (start > m->image_size || size > m->image_size - start)
                        return FAIL(-ERANGE, "partition %i (%s) ends beyond the end of the image: the image is "
                                             "truncated",
                                    sym_blkid_partition_get_partno(pp), partition_designator_to_string(d));
                p = &m->partitions[d];
                if (p->found)
                        return FAIL(-ENOTUNIQ, "it has two %s partitions (%u and %i): berth cannot tell which one to use",
                                    partition_designator_to_string(d), p->partno, sym_blkid_partition_get_partno(pp));
                name = sym_blkid_partition_get_name(pp);
                *p = (DissectedPartition) {
                        .found = true,
                        .partno = (unsigned) sym_blkid_partition_get_partno(pp),
                        .offset = start,
                        .size = size,
                        .read_only = flags & GPT_FLAG_READ_ONLY,
                        .growfs = flags & GPT_FLAG_GROWFS,
                };
                if (!isempty(name) && !(p->label = strdup(name)))
                        return -ENOMEM;
                puuid = sym_blkid_partition_get_uuid(pp);
                if (!isempty(puuid)) {
                        if (!(p->uuid = strdup(puuid)))
                                return -ENOMEM;
                        for (char *c = p->uuid; *c; c++)
                                *c = (char) tolower((unsigned char) *c);
                }
                if (!partition_designator_has_fs(d))
                        continue; /* hash trees, signatures and swap: no file systems to mount */
                r = probe_fstype(fd, start, size, &p->fstype);
                if (r == -ENOMEM)
                        return r;
                if (r == -ENOTUNIQ)
                        return FAIL(r, "partition %u (%s) carries more than one file system signature", p->partno,
                                    partition_designator_to_string(d));
                if (r < 0)
                        return FAIL(r, "partition %u (%s) cannot be read: %s", p->partno,
                                    partition_designator_to_string(d), strerror(-r));
        }
        return 0;
}

int dissect_image_fd(int fd, DissectedImage *ret, char **ret_detail) {
        _cleanup_(blkid_free_probep) blkid_probe pr = NULL;
        _cleanup_(dissected_image_done) DissectedImage m = {};
        const char *pttype = NULL, *e;
        int r;

        r = image_size(fd, &m.image_size);
        if (r == -EBADFD)
                return FAIL(r, "it is neither a regular file nor a block device");
        if (r < 0)
                return r;
        if (m.image_size == 0)
                return FAIL(-ENOMEDIUM, "it is empty");
        if (blkid_load(&e) < 0)
                return FAIL(-EOPNOTSUPP, "libblkid, which reads images, cannot be loaded (%s): install libblkid1", e);

        errno = 0;
        pr = sym_blkid_new_probe();
        if (!pr)
                return errno > 0 ? -errno : -ENOMEM;
        if (sym_blkid_probe_set_device(pr, fd, 0, 0) < 0)
                return errno > 0 ? -errno : -EIO;
        sym_blkid_probe_enable_superblocks(pr, 0);
        sym_blkid_probe_enable_partitions(pr, 1);
        sym_blkid_probe_set_partitions_flags(pr, BLKID_PARTS_ENTRY_DETAILS);
        errno = 0;
        r = sym_blkid_do_safeprobe(pr);
        if (r == -2)
                return FAIL(-ENOTUNIQ, "it carries more than one partition table signature");
        if (r < 0)
                return FAIL(errno > 0 ? -errno : -EIO, "its partition table cannot be read");
        if (r == 0)
                (void) sym_blkid_probe_lookup_value(pr, "PTTYPE", &pttype, NULL);

        if (pttype && streq(pttype, "gpt")) {
                m.has_table = true;
                r = dissect_gpt(fd, pr, &m, ret_detail);
                if (r < 0)
                        return r;
        } else if (pttype && streq(pttype, "PMBR"))
                /* a protective MBR whose GPT libblkid rejected: the headers or the
                 * backup header at the end are missing or damaged */
                return FAIL(-ERANGE, "it has a protective MBR but no valid GPT: the image is truncated or damaged");
        else if (pttype)
                return FAIL(-EPROTONOSUPPORT, "its partition table is '%s', berth reads GPT (or a file system "
                                              "without a partition table)", pttype);
        else {
                DissectedPartition *p = &m.partitions[PARTITION_ROOT];

                r = probe_fstype(fd, 0, m.image_size, &p->fstype);
                if (r == -ENOMEM)
                        return r;
                if (r == -ENOTUNIQ)
                        return FAIL(r, "it carries more than one file system signature");
                if (r < 0)
                        return FAIL(r, "it cannot be read: %s", strerror(-r));
                if (r == 0)
                        return FAIL(-ENOMEDIUM, "it has neither a partition table nor a file system");
                p->found = true;
                p->size = m.image_size;
        }

        if (!m.partitions[PARTITION_ROOT].found && !m.partitions[PARTITION_USR].found)
                return FAIL(-ENXIO, "its GPT has no root or /usr partition for %s", ARCH_NAME);

        for (PartitionDesignator d = 0; d < _PARTITION_DESIGNATOR_MAX; d++) {
                DissectedPartition *p = &m.partitions[d];

                if (!p->found || !partition_designator_has_fs(d))
                        continue;
                if (!p->fstype)
                        return FAIL(-EUCLEAN, "partition %u (%s) holds no file system berth recognizes", p->partno,
                                    partition_designator_to_string(d));
                if (!dissect_fstype_allowed(d, p->fstype))
                        return FAIL(-EMEDIUMTYPE, "the %s file system is '%s', which berth does not mount from images "
                                                  "(allowed: ext4, xfs, btrfs, squashfs, erofs; vfat on the ESP)",
                                    partition_designator_to_string(d), p->fstype);
        }

        *ret = m;
        m = (DissectedImage) {};
        return 0;
}
