/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image-policy.h"
#include "util.h"

static const struct {
        const char *name;
        uint32_t flags;
} flag_table[] = {
        { "verity", PARTITION_POLICY_VERITY },
        { "signed", PARTITION_POLICY_SIGNED },
        { "encrypted", PARTITION_POLICY_ENCRYPTED },
        { "unprotected", PARTITION_POLICY_UNPROTECTED },
        { "unused", PARTITION_POLICY_UNUSED },
        { "absent", PARTITION_POLICY_ABSENT },
        { "open", PARTITION_POLICY_OPEN },
        { "ignore", PARTITION_POLICY_IGNORE },
        { "read-only-on", PARTITION_POLICY_READ_ONLY_ON },
        { "read-only-off", PARTITION_POLICY_READ_ONLY_OFF },
        { "growfs-on", PARTITION_POLICY_GROWFS_ON },
        { "growfs-off", PARTITION_POLICY_GROWFS_OFF },
        { "btrfs", PARTITION_POLICY_BTRFS },
        { "erofs", PARTITION_POLICY_EROFS },
        { "ext4", PARTITION_POLICY_EXT4 },
        { "f2fs", PARTITION_POLICY_F2FS },
        { "squashfs", PARTITION_POLICY_SQUASHFS },
        { "vfat", PARTITION_POLICY_VFAT },
        { "xfs", PARTITION_POLICY_XFS },
};

/* libblkid's names of the file systems a policy can name */
static const struct {
        const char *blkid;
        uint32_t flag;
} fstype_table[] = {
        { "btrfs", PARTITION_POLICY_BTRFS }, { "erofs", PARTITION_POLICY_EROFS },
        { "ext4", PARTITION_POLICY_EXT4 },   { "ext3", PARTITION_POLICY_EXT4 },
        { "ext2", PARTITION_POLICY_EXT4 },   { "f2fs", PARTITION_POLICY_F2FS },
        { "squashfs", PARTITION_POLICY_SQUASHFS }, { "vfat", PARTITION_POLICY_VFAT },
        { "xfs", PARTITION_POLICY_XFS },
};

#define ROOTLIKE (PARTITION_POLICY_VERITY | PARTITION_POLICY_SIGNED | PARTITION_POLICY_ENCRYPTED | \
                  PARTITION_POLICY_UNPROTECTED | PARTITION_POLICY_ABSENT)
#define PLAIN (PARTITION_POLICY_ENCRYPTED | PARTITION_POLICY_UNPROTECTED | PARTITION_POLICY_ABSENT)

const ImagePolicy image_policy_container = {
        .flags = {
                [PARTITION_ROOT] = ROOTLIKE,
                [PARTITION_USR] = ROOTLIKE,
                [PARTITION_HOME] = PLAIN,
                [PARTITION_SRV] = PLAIN,
                [PARTITION_VAR] = PLAIN,
                [PARTITION_TMP] = PLAIN,
                [PARTITION_ESP] = PARTITION_POLICY_UNPROTECTED | PARTITION_POLICY_ABSENT,
                [PARTITION_XBOOTLDR] = PARTITION_POLICY_UNPROTECTED | PARTITION_POLICY_ABSENT,
        },
        .listed = {
                [PARTITION_ROOT] = true, [PARTITION_USR] = true, [PARTITION_HOME] = true,
                [PARTITION_SRV] = true, [PARTITION_VAR] = true, [PARTITION_TMP] = true,
                [PARTITION_ESP] = true, [PARTITION_XBOOTLDR] = true,
        },
        .default_flags = PARTITION_POLICY_IGNORE,
};

static const char *const use_table[_PARTITION_USE_MAX] = {
        [PARTITION_USE_NONE] = "none",
        [PARTITION_USE_UNPROTECTED] = "unprotected",
        [PARTITION_USE_VERITY] = "verity",
        [PARTITION_USE_SIGNED] = "signed",
};

const char *partition_use_to_string(PartitionUse u) {
        return u >= 0 && u < _PARTITION_USE_MAX ? use_table[u] : NULL;
}

static int flags_from_string(const char *s, uint32_t *ret, char **ret_bad) {
        _cleanup_strv_free_ char **words = NULL;
        uint32_t flags = 0;
        int r;

        if (isempty(s) || streq(s, "-")) {
                *ret = 0;
                return 0;
        }
        r = strv_split(s, "+", &words);
        if (r < 0)
                return r;
        STRV_FOREACH(w, words) {
                size_t i;

                for (i = 0; i < ELEMENTSOF(flag_table); i++)
                        if (streq(flag_table[i].name, *w))
                                break;
                if (i >= ELEMENTSOF(flag_table)) {
                        if (ret_bad)
                                *ret_bad = strdup(*w);
                        return -EBADRQC;
                }
                flags |= flag_table[i].flags;
        }
        *ret = flags;
        return 0;
}

int image_policy_from_string(const char *s, ImagePolicy *ret, char **ret_bad) {
        _cleanup_strv_free_ char **rules = NULL;
        ImagePolicy p = {};
        bool have_default = false;
        int r;

        if (ret_bad)
                *ret_bad = NULL;
        if (!s)
                return -EINVAL;
        if (isempty(s) || streq(s, "-") || streq(s, "*") || streq(s, "~")) {
                p.default_flags = streq(s, "*")   ? PARTITION_POLICY_OPEN
                                  : streq(s, "~") ? PARTITION_POLICY_ABSENT
                                                  : PARTITION_POLICY_IGNORE;
                *ret = p;
                return 0;
        }
        p.default_flags = PARTITION_POLICY_IGNORE;

        r = strv_split(s, ":", &rules);
        if (r < 0)
                return r;
        STRV_FOREACH(rule, rules) {
                const char *eq = strchr(*rule, '=');
                _cleanup_free_ char *name = NULL;
                PartitionDesignator d;
                uint32_t flags;

                if (!eq) {
                        if (ret_bad)
                                *ret_bad = strdup(*rule);
                        return -EINVAL;
                }
                name = strndup(*rule, (size_t) (eq - *rule));
                if (!name)
                        return -ENOMEM;
                r = flags_from_string(eq + 1, &flags, ret_bad);
                if (r < 0)
                        return r;
                if (isempty(name)) {
                        if (have_default) {
                                if (ret_bad)
                                        *ret_bad = strdup(*rule);
                                return -ENOTUNIQ;
                        }
                        have_default = true;
                        p.default_flags = flags;
                        continue;
                }
                d = partition_designator_from_string(name);
                if (d < 0) {
                        if (ret_bad)
                                *ret_bad = TAKE_PTR(name);
                        return -EBADSLT;
                }
                if (p.listed[d]) {
                        if (ret_bad)
                                *ret_bad = TAKE_PTR(name);
                        return -ENOTUNIQ;
                }
                p.listed[d] = true;
                p.flags[d] = flags;
        }
        *ret = p;
        return 0;
}

int partition_policy_flags_to_string(uint32_t flags, char **ret) {
        char buf[256] = "";
        size_t k = 0;

        for (size_t i = 0; i < ELEMENTSOF(flag_table); i++) {
                uint32_t f = flag_table[i].flags;

                if (f == PARTITION_POLICY_OPEN || f == PARTITION_POLICY_IGNORE || (flags & f) != f)
                        continue;
                k += (size_t) snprintf(buf + k, sizeof buf - k, "%s%s", k ? "+" : "", flag_table[i].name);
        }
        *ret = strdup(k ? buf : "-");
        return *ret ? 0 : -ENOMEM;
}

int image_policy_to_string(const ImagePolicy *p, char **ret) {
        _cleanup_free_ char *s = NULL;

        for (PartitionDesignator d = 0; d <= _PARTITION_DESIGNATOR_MAX; d++) {
                _cleanup_free_ char *f = NULL;
                char *n;
                bool dflt = d == _PARTITION_DESIGNATOR_MAX;

                if (!dflt && !p->listed[d])
                        continue;
                if (partition_policy_flags_to_string(dflt ? p->default_flags : p->flags[d], &f) < 0)
                        return -ENOMEM;
                n = strjoin(strempty(s), s ? ":" : "", dflt ? "" : partition_designator_to_string(d), "=", f);
                if (!n)
                        return -ENOMEM;
                free(s);
                s = n;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

/* Fills in the unspecified parts and takes out what makes no sense for D. */
static uint32_t normalize(PartitionDesignator d, uint32_t flags) {
        if (!(flags & _PARTITION_POLICY_USE_MASK))
                flags |= PARTITION_POLICY_OPEN;
        if (!(flags & _PARTITION_POLICY_READ_ONLY_MASK))
                flags |= _PARTITION_POLICY_READ_ONLY_MASK;
        if (!(flags & _PARTITION_POLICY_GROWFS_MASK))
                flags |= _PARTITION_POLICY_GROWFS_MASK;
        /* a hash tree or a signature is the protection, it has none of its own */
        if (partition_designator_is_verity(d))
                flags &= ~(uint32_t) (PARTITION_POLICY_VERITY | PARTITION_POLICY_SIGNED | PARTITION_POLICY_ENCRYPTED);
        /* only root and /usr have verity partitions */
        if (partition_verity_of(d) < 0)
                flags &= ~(uint32_t) (PARTITION_POLICY_VERITY | PARTITION_POLICY_SIGNED);
        return flags;
}

uint32_t image_policy_get(const ImagePolicy *p, PartitionDesignator d) {
        PartitionDesignator data;

        if (p->listed[d])
                return normalize(d, p->flags[d]);

        /* no rule for a hash tree or signature: usable where the data partition's rule allows
         * verity (signed), and always allowed to be absent, since the tree and the signature
         * may come from outside the image (--verity-data=, --root-hash-sig=, side files) */
        data = partition_verity_to_data(d);
        if (data >= 0) {
                uint32_t df = image_policy_get(p, data);
                uint32_t need = d == partition_verity_sig_of(data) ? PARTITION_POLICY_SIGNED
                                                                    : (PARTITION_POLICY_VERITY | PARTITION_POLICY_SIGNED);

                if (df & need)
                        return normalize(d, PARTITION_POLICY_UNPROTECTED | PARTITION_POLICY_ABSENT |
                                                    (df & PARTITION_POLICY_UNUSED) |
                                                    (df & (_PARTITION_POLICY_READ_ONLY_MASK | _PARTITION_POLICY_GROWFS_MASK)));
        }
        return normalize(d, p->default_flags);
}

#define FAIL(err, ...) ({ set_detail(ret_detail, __VA_ARGS__); (err); })

static uint32_t fstype_flag(const char *fstype) {
        for (size_t i = 0; fstype && i < ELEMENTSOF(fstype_table); i++)
                if (streq(fstype_table[i].blkid, fstype))
                        return fstype_table[i].flag;
        return 0;
}

/* The GPT attribute checks of a rule: read-only-on/off, growfs-on/off. */
static int check_attributes(const DissectedPartition *part, PartitionDesignator d, uint32_t f, char **ret_detail) {
        const char *name = partition_designator_to_string(d);

        if (part->partno == 0)
                return 0; /* no table, no attributes */
        if (!(f & (part->read_only ? PARTITION_POLICY_READ_ONLY_ON : PARTITION_POLICY_READ_ONLY_OFF)))
                return FAIL(-ERFKILL, "the policy wants the read-only flag of the %s partition %s, and partition %u has "
                                      "it %s", name, part->read_only ? "off" : "on", part->partno,
                            part->read_only ? "on" : "off");
        if (!(f & (part->growfs ? PARTITION_POLICY_GROWFS_ON : PARTITION_POLICY_GROWFS_OFF)))
                return FAIL(-ERFKILL, "the policy wants the growfs flag of the %s partition %s, and partition %u has "
                                      "it %s", name, part->growfs ? "off" : "on", part->partno,
                            part->growfs ? "on" : "off");
        return 0;
}

/* root and /usr: verity where asked for and allowed, else unprotected where allowed */
static int decide_verity_capable(PartitionDesignator d, uint32_t f, const VerityOffer *v, PartitionUse *use,
                                 char **ret_detail) {
        const char *name = partition_designator_to_string(d);

        if (v->why && (f & (PARTITION_POLICY_VERITY | PARTITION_POLICY_SIGNED))) {
                if (!v->hash)
                        return FAIL(-ENOKEY, "%s asks for dm-verity on the %s partition, and no root hash is known",
                                    v->why, name);
                if (!v->tree)
                        return FAIL(-ENOKEY, "%s asks for dm-verity on the %s partition, and there is no hash tree "
                                             "for it (no %s-verity partition, no --verity-data=)", v->why, name, name);
                if ((f & PARTITION_POLICY_SIGNED) && v->sig)
                        *use = PARTITION_USE_SIGNED;
                else if (f & PARTITION_POLICY_VERITY)
                        *use = PARTITION_USE_VERITY;
                else
                        return FAIL(-ERFKILL, "the policy wants the %s partition used with a signed root hash, and "
                                              "no signature is known", name);
                return 0;
        }
        if (f & PARTITION_POLICY_UNPROTECTED) {
                *use = PARTITION_USE_UNPROTECTED;
                return 0;
        }
        if (f & (PARTITION_POLICY_VERITY | PARTITION_POLICY_SIGNED))
                return FAIL(-ERFKILL, "the policy wants the %s partition used with dm-verity, and the image offers no "
                                      "verity for it (no %s-verity partition, no root hash)", name, name);
        return FAIL(-EOPNOTSUPP, "the policy allows the %s partition only encrypted, and berth opens no LUKS "
                                 "encryption", name);
}

int image_policy_decide(const ImagePolicy *policy, const DissectedImage *img,
                        const VerityOffer verity[_PARTITION_DESIGNATOR_MAX],
                        PartitionUse ret_use[_PARTITION_DESIGNATOR_MAX], char **ret_detail) {
        PartitionUse use[_PARTITION_DESIGNATOR_MAX] = {};
        int r;

        for (PartitionDesignator d = 0; d < _PARTITION_DESIGNATOR_MAX; d++) {
                const DissectedPartition *part = &img->partitions[d];
                const char *name = partition_designator_to_string(d);
                uint32_t f = image_policy_get(policy, d);
                uint32_t fs = fstype_flag(part->fstype);

                if (!part->found) {
                        if (!(f & PARTITION_POLICY_ABSENT))
                                return FAIL(-ERFKILL, "the policy wants a %s partition, and the image has none", name);
                        continue;
                }
                if (!(f & (_PARTITION_POLICY_USE_MASK & ~(uint32_t) PARTITION_POLICY_ABSENT)))
                        return FAIL(-ERFKILL, "the policy wants no %s partition, and the image has one (partition %u)",
                                    name, part->partno);
                if (!(f & (_PARTITION_POLICY_USE_MASK & ~(uint32_t) PARTITION_POLICY_IGNORE))) {
                        use[d] = PARTITION_USE_NONE; /* unused */
                        continue;
                }
                r = check_attributes(part, d, f, ret_detail);
                if (r < 0)
                        return r;
                if (!partition_designator_has_fs(d)) {
                        /* hash trees and signatures are used with their data partition; swap never */
                        continue;
                }
                if ((f & _PARTITION_POLICY_FSTYPE_MASK) && !(f & fs))
                        return FAIL(-ERFKILL, "the policy does not allow the file system of the %s partition (%s)", name,
                                    strna(part->fstype));
                if (partition_verity_of(d) >= 0) {
                        VerityOffer v = verity[d];
                        PartitionDesignator vd = partition_verity_of(d);

                        /* the image's own hash tree counts where the policy lets it be used */
                        if (img->partitions[vd].found && (image_policy_get(policy, vd) & PARTITION_POLICY_UNPROTECTED))
                                v.tree = true;
                        r = decide_verity_capable(d, f, &v, &use[d], ret_detail);
                        if (r < 0)
                                return r;
                } else if (f & PARTITION_POLICY_UNPROTECTED)
                        use[d] = PARTITION_USE_UNPROTECTED;
                else if (f & PARTITION_POLICY_UNUSED)
                        use[d] = PARTITION_USE_NONE;
                else
                        return FAIL(-EOPNOTSUPP, "the policy allows the %s partition only encrypted, and berth opens no "
                                                 "LUKS encryption", name);
        }
        if (use[PARTITION_ROOT] == PARTITION_USE_NONE && use[PARTITION_USR] == PARTITION_USE_NONE)
                return FAIL(-ERFKILL, "the policy leaves neither a root nor a /usr partition to use");
        memcpy(ret_use, use, sizeof use);
        return 0;
}
