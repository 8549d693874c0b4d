/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* --image-policy=: the grammar (good and bad strings, round trips), the effective flags of
 * each partition (defaults, verity partitions that follow their data partition), and the
 * decisions on made-up dissected images. Pure logic, no images on disk. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "image-policy.h"
#include "tap.h"
#include "util.h"

static void test_parse_good(void) {
        static const struct {
                const char *in;
                const char *out;
        } cases[] = {
                { "*", "=verity+signed+encrypted+unprotected+unused+absent" },
                { "-", "=unused+absent" },
                { "", "=unused+absent" },
                { "~", "=absent" },
                { "root=verity", "root=verity:=unused+absent" },
                { "root=verity+signed:usr=unprotected+read-only-on:=absent",
                  "root=verity+signed:usr=unprotected+read-only-on:=absent" },
                { "home=open", "home=verity+signed+encrypted+unprotected+unused+absent:=unused+absent" },
                { "swap=ignore:root=", "root=-:swap=unused+absent:=unused+absent" },
                { "root=unprotected+ext4+squashfs:=-", "root=unprotected+ext4+squashfs:=-" },
                { "usr-verity-sig=absent:root-verity=unused+growfs-off",
                  "root-verity=unused+growfs-off:usr-verity-sig=absent:=unused+absent" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                ImagePolicy p, q;
                _cleanup_free_ char *s = NULL, *s2 = NULL, *bad = NULL;

                CHECK(image_policy_from_string(cases[i].in, &p, &bad) == 0);
                CHECK(image_policy_to_string(&p, &s) == 0);
                if (!s || !streq(s, cases[i].out)) {
                        printf("# '%s' -> '%s', expected '%s'\n", cases[i].in, strna(s), cases[i].out);
                        CHECK(false);
                }
                /* round trip */
                CHECK(s && image_policy_from_string(s, &q, NULL) == 0);
                CHECK(image_policy_to_string(&q, &s2) == 0);
                CHECK(s && s2 && streq(s, s2));
        }
}

static void test_parse_bad(void) {
        static const struct {
                const char *in;
                int error;
                const char *bad;
        } cases[] = {
                { "root", -EINVAL, "root" },
                { "root=verity:usr", -EINVAL, "usr" },
                { "rot=verity", -EBADSLT, "rot" },
                { "root-hash=verity", -EBADSLT, "root-hash" },
                { "root=verity+sigend", -EBADRQC, "sigend" },
                { "root=verity++signed", -EBADRQC, "" },
                { "root=verity:root=signed", -ENOTUNIQ, "root" },
                { "=absent:=unused", -ENOTUNIQ, "=unused" },
                { "root=VERITY", -EBADRQC, "VERITY" },
                { "**", -EINVAL, "**" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                ImagePolicy p;
                _cleanup_free_ char *bad = NULL;
                int r = image_policy_from_string(cases[i].in, &p, &bad);

                if (r != cases[i].error || !bad || !streq(bad, cases[i].bad)) {
                        printf("# '%s': got %i ('%s'), expected %i ('%s')\n", cases[i].in, r, strna(bad),
                               cases[i].error, cases[i].bad);
                        CHECK(false);
                }
        }
}

static void test_get(void) {
        ImagePolicy p;
        uint32_t f;

        /* no use flag: every use; no read-only flag: both */
        CHECK(image_policy_from_string("root=read-only-on", &p, NULL) == 0);
        f = image_policy_get(&p, PARTITION_ROOT);
        CHECK((f & _PARTITION_POLICY_USE_MASK) == PARTITION_POLICY_OPEN);
        CHECK((f & _PARTITION_POLICY_READ_ONLY_MASK) == PARTITION_POLICY_READ_ONLY_ON);
        CHECK((f & _PARTITION_POLICY_GROWFS_MASK) == _PARTITION_POLICY_GROWFS_MASK);

        /* verity flags make no sense on home, nor protection on a hash tree */
        CHECK(image_policy_from_string("home=verity+unprotected:root-verity=signed+unprotected", &p, NULL) == 0);
        CHECK((image_policy_get(&p, PARTITION_HOME) & _PARTITION_POLICY_USE_MASK) == PARTITION_POLICY_UNPROTECTED);
        CHECK((image_policy_get(&p, PARTITION_ROOT_VERITY) & _PARTITION_POLICY_USE_MASK) == PARTITION_POLICY_UNPROTECTED);

        /* a verity partition without a rule follows its data partition */
        CHECK(image_policy_from_string("root=verity+absent", &p, NULL) == 0);
        CHECK((image_policy_get(&p, PARTITION_ROOT_VERITY) & _PARTITION_POLICY_USE_MASK) ==
              (PARTITION_POLICY_UNPROTECTED | PARTITION_POLICY_ABSENT));
        /* ... but a signature only where signed is allowed: else the default */
        CHECK((image_policy_get(&p, PARTITION_ROOT_VERITY_SIG) & _PARTITION_POLICY_USE_MASK) == PARTITION_POLICY_IGNORE);
        CHECK(image_policy_from_string("root=unprotected:=absent", &p, NULL) == 0);
        CHECK((image_policy_get(&p, PARTITION_ROOT_VERITY) & _PARTITION_POLICY_USE_MASK) == PARTITION_POLICY_ABSENT);

        /* the container default: root any way, home not with verity, swap ignored */
        f = image_policy_get(&image_policy_container, PARTITION_ROOT);
        CHECK(f & PARTITION_POLICY_SIGNED && f & PARTITION_POLICY_UNPROTECTED && !(f & PARTITION_POLICY_UNUSED));
        CHECK(!(image_policy_get(&image_policy_container, PARTITION_HOME) & PARTITION_POLICY_VERITY));
        CHECK((image_policy_get(&image_policy_container, PARTITION_SWAP) & _PARTITION_POLICY_USE_MASK) ==
              PARTITION_POLICY_IGNORE);
}

/* a made-up image: root ext4 (partition 1) and whatever else the case adds */
static DissectedImage image(void) {
        DissectedImage m = { .has_table = true };

        m.partitions[PARTITION_ROOT] = (DissectedPartition) { .found = true, .partno = 1, .fstype = (char *) "ext4" };
        return m;
}

static int decide(const char *policy, const DissectedImage *m, const VerityOffer *v, PartitionUse use[],
                  const char *want_word) {
        ImagePolicy p;
        VerityOffer none[_PARTITION_DESIGNATOR_MAX] = {};
        _cleanup_free_ char *detail = NULL;
        int r;

        if (policy)
                CHECK(image_policy_from_string(policy, &p, NULL) == 0);
        r = image_policy_decide(policy ? &p : &image_policy_container, m, v ?: none, use, &detail);
        if (want_word && (!detail || !strstr(detail, want_word))) {
                printf("# policy '%s': %i '%s', expected a reason with '%s'\n", strna(policy), r, strna(detail),
                       want_word);
                CHECK(false);
        }
        if (!want_word && r < 0)
                printf("# policy '%s': %i '%s'\n", strna(policy), r, strna(detail));
        CHECK(!detail || !strchr(detail, '\n'));
        return r;
}

static void test_decide_plain(void) {
        PartitionUse use[_PARTITION_DESIGNATOR_MAX];
        DissectedImage m = image();

        CHECK(decide(NULL, &m, NULL, use, NULL) == 0);
        CHECK(use[PARTITION_ROOT] == PARTITION_USE_UNPROTECTED);
        CHECK(decide("*", &m, NULL, use, NULL) == 0);
        CHECK(decide("root=unprotected+ext4", &m, NULL, use, NULL) == 0);
        CHECK(decide("root=unprotected+squashfs", &m, NULL, use, "file system of the root partition (ext4)") == -ERFKILL);
        CHECK(decide("root=verity", &m, NULL, use, "offers no verity") == -ERFKILL);
        CHECK(decide("root=signed+absent", &m, NULL, use, "offers no verity") == -ERFKILL);
        CHECK(decide("root=encrypted", &m, NULL, use, "no LUKS") == -EOPNOTSUPP);
        CHECK(decide("root=absent", &m, NULL, use, "wants no root partition") == -ERFKILL);
        CHECK(decide("~", &m, NULL, use, "wants no root partition") == -ERFKILL);
        CHECK(decide("root=unused", &m, NULL, use, "neither a root nor a /usr") == -ERFKILL);
        CHECK(decide("root=unprotected:home=unprotected", &m, NULL, use, "wants a home partition") == -ERFKILL);
        CHECK(decide("root=unprotected+read-only-on", &m, NULL, use, "read-only flag of the root partition on") ==
              -ERFKILL);
        CHECK(decide("root=unprotected+growfs-on", &m, NULL, use, "growfs flag") == -ERFKILL);
        CHECK(decide("root=unprotected+read-only-off+growfs-off", &m, NULL, use, NULL) == 0);

        /* swap: found, never mounted, but a policy may forbid it */
        m.partitions[PARTITION_SWAP] = (DissectedPartition) { .found = true, .partno = 2 };
        CHECK(decide(NULL, &m, NULL, use, NULL) == 0);
        CHECK(use[PARTITION_SWAP] == PARTITION_USE_NONE);
        CHECK(decide("root=open:swap=absent", &m, NULL, use, "wants no swap partition, and the image has one (partition 2)") == -ERFKILL);

        /* home unused by rule: found, not used */
        m.partitions[PARTITION_HOME] = (DissectedPartition) { .found = true, .partno = 3, .fstype = (char *) "xfs" };
        CHECK(decide("root=open:home=unused:=ignore", &m, NULL, use, NULL) == 0);
        CHECK(use[PARTITION_HOME] == PARTITION_USE_NONE && use[PARTITION_ROOT] == PARTITION_USE_UNPROTECTED);
        /* the container default ignores what it does not know, and mounts home */
        CHECK(decide(NULL, &m, NULL, use, NULL) == 0);
        CHECK(use[PARTITION_HOME] == PARTITION_USE_UNPROTECTED);
}

static void test_decide_verity(void) {
        PartitionUse use[_PARTITION_DESIGNATOR_MAX];
        VerityOffer v[_PARTITION_DESIGNATOR_MAX] = {};
        DissectedImage m = image();

        /* a verity partition, no hash: refused by default, never used unprotected silently */
        m.partitions[PARTITION_ROOT_VERITY] = (DissectedPartition) { .found = true, .partno = 2 };
        v[PARTITION_ROOT].why = "the image's root-verity partition";
        CHECK(decide(NULL, &m, v, use, "no root hash is known") == -ENOKEY);
        /* ... unless the policy leaves verity out */
        CHECK(decide("root=unprotected", &m, v, use, NULL) == 0);
        CHECK(use[PARTITION_ROOT] == PARTITION_USE_UNPROTECTED);
        /* ... and forbidding the hash tree forbids it in the image */
        CHECK(decide("root=unprotected:root-verity=absent", &m, v, use, "wants no root-verity partition") == -ERFKILL);

        v[PARTITION_ROOT].hash = true;
        CHECK(decide(NULL, &m, v, use, NULL) == 0);
        CHECK(use[PARTITION_ROOT] == PARTITION_USE_VERITY);
        CHECK(decide("root=signed", &m, v, use, "no signature is known") == -ERFKILL);
        v[PARTITION_ROOT].sig = true;
        CHECK(decide(NULL, &m, v, use, NULL) == 0);
        CHECK(use[PARTITION_ROOT] == PARTITION_USE_SIGNED);
        /* verity allowed but not signed: the signature is left unused */
        CHECK(decide("root=verity", &m, v, use, NULL) == 0);
        CHECK(use[PARTITION_ROOT] == PARTITION_USE_VERITY);
        /* the hash tree may not be used: nothing to check the hash against */
        CHECK(decide("root=verity:root-verity=unused", &m, v, use, "no hash tree") == -ENOKEY);

        /* a hash and no tree anywhere: refused */
        m.partitions[PARTITION_ROOT_VERITY] = (DissectedPartition) {};
        v[PARTITION_ROOT] = (VerityOffer) { .hash = true, .why = "--root-hash=" };
        CHECK(decide(NULL, &m, v, use, "no hash tree") == -ENOKEY);
        /* an external tree (--verity-data=) */
        v[PARTITION_ROOT].tree = true;
        CHECK(decide(NULL, &m, v, use, NULL) == 0);
        CHECK(use[PARTITION_ROOT] == PARTITION_USE_VERITY);
        CHECK(decide("root=unprotected", &m, v, use, NULL) == 0);
        CHECK(use[PARTITION_ROOT] == PARTITION_USE_UNPROTECTED);
}

int main(void) {
        static const TapCase cases[] = {
                { "parse_good", test_parse_good },
                { "parse_bad", test_parse_bad },
                { "get", test_get },
                { "decide_plain", test_decide_plain },
                { "decide_verity", test_decide_verity },
        };
        return tap_run(cases, ELEMENTSOF(cases));
}
