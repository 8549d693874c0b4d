/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* dissect_image_fd() on images made here with sfdisk, mkfs.ext4, mksquashfs,
 * mkfs.erofs and mkfs.vfat in a temporary directory (never committed): what it
 * finds in good images, and the one-clause reason for each bad one. No root
 * needed: nothing is attached or mounted. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dissect.h"
#include "tap.h"
#include "util.h"

static char base[] = "/tmp/berth-test-dissect-XXXXXX";

#define T_ROOT "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"
#define T_USR "8484680c-9521-48c6-9c11-b0720656f69e"
#define T_HOME "933ac7e1-2eb4-4f13-b844-0e14e2aef915"
#define T_ROOT_VERITY "2c7357ed-ebd2-46d9-aec1-23d437ec2bf5"
#define T_ESP "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
#define T_SWAP "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f"
#define T_LINUX "0fc63daf-8483-4772-8e79-3d69d8477de4"

/* Shell helpers the cases use: fs KIND FILE makes a 4 MiB file system holding
 * one file; gpt IMG N makes an image with room for N 4 MiB partitions and
 * reads the sfdisk script from stdin; put IMG PARTNO FSFILE writes a file
 * system into partition PARTNO (1 MiB + (PARTNO-1) * 4 MiB). */
static const char helpers[] =
        "set -e; cd \"$BASE\"; mkdir -p content; echo hello >content/hello;\n"
        "fs() { case $1 in\n"
        "  ext4) truncate -s 4M $2; mkfs.ext4 -q -F -d content $2 ;;\n"
        "  squashfs) rm -f $2; mksquashfs content $2 -quiet -no-progress >/dev/null; truncate -s 4M $2 ;;\n"
        "  erofs) rm -f $2; mkfs.erofs --quiet $2 content >/dev/null; truncate -s 4M $2 ;;\n"
        "  vfat) truncate -s 4M $2; mkfs.vfat $2 >/dev/null ;;\n"
        "  none) truncate -s 4M $2 ;;\n"
        "esac; }\n"
        "gpt() { truncate -s $((2 + $2 * 4))M $1; sfdisk -q $1 >/dev/null; }\n"
        "put() { dd if=$3 of=$1 bs=1M seek=$((1 + ($2 - 1) * 4)) conv=notrunc status=none; }\n";

static int sh(const char *script) {
        _cleanup_free_ char *all = strjoin(helpers, script);
        char cmd[64];
        FILE *f;
        int r;

        if (!all)
                return -ENOMEM;
        snprintf(cmd, sizeof cmd, "BASE=%s bash -s", base);
        f = popen(cmd, "w");
        if (!f)
                return -errno;
        fputs(all, f);
        r = pclose(f);
        return r == 0 ? 0 : -EIO;
}

/* dissects BASE/NAME; returns the error and the detail in *detail (caller frees) */
static int dissect(const char *name, DissectedImage *ret, char **detail) {
        char path[PATH_MAX];
        int fd, r;

        snprintf(path, sizeof path, "%s/%s", base, name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = dissect_image_fd(fd, ret, detail);
        close(fd);
        return r;
}

static void test_tables(void) {
        for (PartitionDesignator d = 0; d < _PARTITION_DESIGNATOR_MAX; d++) {
                const char *s = partition_designator_to_string(d);
                CHECK(s);
                CHECK(partition_designator_from_string(s) == d);
        }
        CHECK(partition_designator_from_string("nope") < 0);
        CHECK(partition_designator_to_string(_PARTITION_DESIGNATOR_MAX) == NULL);
        CHECK(partition_designator_from_type_uuid(T_ROOT) == PARTITION_ROOT);
        CHECK(partition_designator_from_type_uuid("4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709") == PARTITION_ROOT);
        CHECK(partition_designator_from_type_uuid(T_ESP) == PARTITION_ESP);
        CHECK(partition_designator_from_type_uuid(T_ROOT_VERITY) == PARTITION_ROOT_VERITY);
        CHECK(partition_designator_from_type_uuid(T_SWAP) == PARTITION_SWAP);
        CHECK(!partition_designator_has_fs(PARTITION_SWAP));
        CHECK(!partition_designator_has_fs(PARTITION_ROOT_VERITY));
        CHECK(partition_designator_has_fs(PARTITION_HOME));
        CHECK(partition_verity_of(PARTITION_USR) == PARTITION_USR_VERITY);
        CHECK(partition_verity_sig_of(PARTITION_ROOT) == PARTITION_ROOT_VERITY_SIG);
        CHECK(partition_verity_of(PARTITION_HOME) < 0);
        CHECK(partition_verity_to_data(PARTITION_USR_VERITY_SIG) == PARTITION_USR);
        CHECK(partition_verity_to_data(PARTITION_ROOT) < 0);
        CHECK(partition_designator_from_type_uuid(T_LINUX) < 0);
        CHECK(partition_designator_from_type_uuid(NULL) < 0);
        CHECK(streq(partition_designator_mount_point(PARTITION_USR), "/usr"));
        CHECK(streq(partition_designator_mount_point(PARTITION_TMP), "/var/tmp"));
        CHECK(partition_designator_mount_point(PARTITION_ROOT) == NULL);
        CHECK(partition_designator_is_verity(PARTITION_USR_VERITY_SIG));
        CHECK(!partition_designator_is_verity(PARTITION_USR));
        CHECK(streq(dissect_fstype_allowed(PARTITION_ROOT, "ext4"), "ext4"));
        CHECK(streq(dissect_fstype_allowed(PARTITION_ROOT, "ext2"), "ext4"));
        CHECK(streq(dissect_fstype_allowed(PARTITION_USR, "erofs"), "erofs"));
        CHECK(streq(dissect_fstype_allowed(PARTITION_ESP, "vfat"), "vfat"));
        CHECK(dissect_fstype_allowed(PARTITION_ROOT, "vfat") == NULL);
        CHECK(dissect_fstype_allowed(PARTITION_ROOT, "ntfs") == NULL);
        CHECK(dissect_fstype_allowed(PARTITION_ROOT, NULL) == NULL);
}

static void test_gpt_layout(void) {
        _cleanup_(dissected_image_done) DissectedImage m = {};
        _cleanup_free_ char *detail = NULL;

        CHECK(sh("fs ext4 r; fs squashfs u; fs ext4 h; fs vfat e\n"
                 "gpt a.raw 5 <<EOF\nlabel: gpt\n"
                 "size=4MiB, type=" T_SWAP "\n"
                 "size=4MiB, type=" T_ROOT ", name=root-x86-64\n"
                 "size=4MiB, type=" T_USR "\n"
                 "size=4MiB, type=" T_HOME ", attrs=\"GUID:59,60\", uuid=AAAAAAAA-1111-2222-3333-444444444444\n"
                 "size=4MiB, type=" T_ESP "\nEOF\n"
                 "put a.raw 2 r; put a.raw 3 u; put a.raw 4 h; put a.raw 5 e\n") == 0);
        CHECK(dissect("a.raw", &m, &detail) == 0);
        CHECK(m.has_table);
        CHECK(m.partitions[PARTITION_ROOT].found);
        CHECK(m.partitions[PARTITION_ROOT].partno == 2);
        CHECK(m.partitions[PARTITION_ROOT].offset == 5 * 1024 * 1024);
        CHECK(m.partitions[PARTITION_ROOT].size == 4 * 1024 * 1024);
        CHECK(streq(strna(m.partitions[PARTITION_ROOT].fstype), "ext4"));
        CHECK(streq(strna(m.partitions[PARTITION_ROOT].label), "root-x86-64"));
        CHECK(!m.partitions[PARTITION_ROOT].read_only);
        CHECK(streq(strna(m.partitions[PARTITION_USR].fstype), "squashfs"));
        CHECK(m.partitions[PARTITION_HOME].found && m.partitions[PARTITION_HOME].read_only);
        CHECK(m.partitions[PARTITION_HOME].growfs && !m.partitions[PARTITION_ROOT].growfs);
        CHECK(streq(strna(m.partitions[PARTITION_HOME].uuid), "aaaaaaaa-1111-2222-3333-444444444444"));
        /* swap is found (a policy may ask for it), with no file system looked for */
        CHECK(m.partitions[PARTITION_SWAP].found && m.partitions[PARTITION_SWAP].partno == 1);
        CHECK(!m.partitions[PARTITION_SWAP].fstype);
        CHECK(streq(strna(m.partitions[PARTITION_ESP].fstype), "vfat"));
        CHECK(!m.partitions[PARTITION_SRV].found);
        CHECK(!m.partitions[PARTITION_ROOT_VERITY].found);
}

static void test_single_fs(void) {
        static const char *const kinds[] = { "ext4", "squashfs", "erofs" };

        for (size_t i = 0; i < ELEMENTSOF(kinds); i++) {
                _cleanup_(dissected_image_done) DissectedImage m = {};
                _cleanup_free_ char *detail = NULL;
                char script[128];

                snprintf(script, sizeof script, "fs %s single.raw\n", kinds[i]);
                CHECK(sh(script) == 0);
                CHECK(dissect("single.raw", &m, &detail) == 0);
                CHECK(!m.has_table);
                CHECK(m.partitions[PARTITION_ROOT].found);
                CHECK(m.partitions[PARTITION_ROOT].offset == 0);
                CHECK(m.partitions[PARTITION_ROOT].size == 4 * 1024 * 1024);
                CHECK(streq(strna(m.partitions[PARTITION_ROOT].fstype), kinds[i]));
                if (detail)
                        printf("# unexpected detail for %s: %s\n", kinds[i], detail);
        }
}

static void test_usr_only(void) {
        _cleanup_(dissected_image_done) DissectedImage m = {};
        _cleanup_free_ char *detail = NULL;

        CHECK(sh("fs erofs u\ngpt usr.raw 1 <<EOF\nlabel: gpt\nsize=4MiB, type=" T_USR "\nEOF\nput usr.raw 1 u\n") == 0);
        CHECK(dissect("usr.raw", &m, &detail) == 0);
        CHECK(!m.partitions[PARTITION_ROOT].found);
        CHECK(m.partitions[PARTITION_USR].found);
        CHECK(streq(strna(m.partitions[PARTITION_USR].fstype), "erofs"));
}

static void test_verity_found(void) {
        _cleanup_(dissected_image_done) DissectedImage m = {};
        _cleanup_free_ char *detail = NULL;

        CHECK(sh("fs ext4 r\ngpt v.raw 2 <<EOF\nlabel: gpt\nsize=4MiB, type=" T_ROOT "\nsize=4MiB, type=" T_ROOT_VERITY
                 "\nEOF\nput v.raw 1 r\n") == 0);
        CHECK(dissect("v.raw", &m, &detail) == 0);
        CHECK(m.partitions[PARTITION_ROOT].found);
        CHECK(m.partitions[PARTITION_ROOT_VERITY].found);
        CHECK(m.partitions[PARTITION_ROOT_VERITY].fstype == NULL);
}

/* each bad image: the error and a word that must be in the reason */
static void test_bad_images(void) {
        static const struct {
                const char *name;
                const char *script;
                int error;
                const char *word;
        } cases[] = {
                { "zeros.raw", "truncate -s 8M zeros.raw\n", -ENOMEDIUM, "neither a partition table nor a file system" },
                { "empty.raw", ": >empty.raw\n", -ENOMEDIUM, "empty" },
                { "noroot.raw", "fs ext4 r\ngpt noroot.raw 1 <<EOF\nlabel: gpt\nsize=4MiB, type=" T_LINUX "\nEOF\n"
                                "put noroot.raw 1 r\n", -ENXIO, "no root or /usr partition for x86-64" },
                { "tworoots.raw", "fs ext4 r\ngpt tworoots.raw 2 <<EOF\nlabel: gpt\nsize=4MiB, type=" T_ROOT
                                  "\nsize=4MiB, type=" T_ROOT "\nEOF\nput tworoots.raw 1 r; put tworoots.raw 2 r\n",
                  -ENOTUNIQ, "two root partitions (1 and 2)" },
                { "trunc.raw", "fs ext4 r\ngpt trunc.raw 2 <<EOF\nlabel: gpt\nsize=4MiB, type=" T_HOME
                               "\nsize=4MiB, type=" T_ROOT "\nEOF\nput trunc.raw 1 r; put trunc.raw 2 r\n"
                               "truncate -s 7M trunc.raw\n", -ERANGE, "truncated" },
                { "dos.raw", "fs ext4 r\ntruncate -s 6M dos.raw\nprintf 'label: dos\\nsize=4MiB, type=83\\n' | "
                             "sfdisk -q dos.raw >/dev/null\nput dos.raw 1 r\n", -EPROTONOSUPPORT, "'dos'" },
                { "nofs.raw", "gpt nofs.raw 1 <<EOF\nlabel: gpt\nsize=4MiB, type=" T_ROOT "\nEOF\n", -EUCLEAN,
                  "partition 1 (root) holds no file system" },
                { "vfatroot.raw", "fs vfat r\ngpt vfatroot.raw 1 <<EOF\nlabel: gpt\nsize=4MiB, type=" T_ROOT "\nEOF\n"
                                  "put vfatroot.raw 1 r\n", -EMEDIUMTYPE, "root file system is 'vfat'" },
                { "vfatsingle.raw", "fs vfat vfatsingle.raw\n", -EMEDIUMTYPE, "'vfat'" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(dissected_image_done) DissectedImage m = {};
                _cleanup_free_ char *detail = NULL;
                int r;

                CHECK(sh(cases[i].script) == 0);
                r = dissect(cases[i].name, &m, &detail);
                if (r != cases[i].error || !detail || !strstr(detail, cases[i].word)) {
                        printf("# %s: got %i (%s), expected %i with \"%s\"\n", cases[i].name, r, strna(detail),
                               cases[i].error, cases[i].word);
                        CHECK(false);
                }
                /* one clause for a one-line error */
                CHECK(!detail || !strchr(detail, '\n'));
        }
}

int main(void) {
        static const TapCase cases[] = {
                { "tables", test_tables },
                { "gpt_layout", test_gpt_layout },
                { "single_fs", test_single_fs },
                { "usr_only", test_usr_only },
                { "verity_found", test_verity_found },
                { "bad_images", test_bad_images },
        };
        static const char *const tools[] = { "sfdisk", "mkfs.ext4", "mksquashfs", "mkfs.erofs", "mkfs.vfat" };
        char cmd[128];
        int r;

#if !defined(__x86_64__)
        printf("1..0 # SKIP the generated images use x86-64 partition types\n");
        return 77;
#endif
        for (size_t i = 0; i < ELEMENTSOF(tools); i++) {
                snprintf(cmd, sizeof cmd, "PATH=$PATH:/usr/sbin:/sbin command -v %s >/dev/null", tools[i]);
                if (system(cmd) != 0) {
                        printf("1..0 # SKIP %s is missing (packages fdisk, e2fsprogs, squashfs-tools, erofs-utils, "
                               "dosfstools)\n", tools[i]);
                        return 77;
                }
        }
        setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
        if (!mkdtemp(base))
                return EXIT_FAILURE;
        r = tap_run(cases, ELEMENTSOF(cases));
        (void) rm_rf(base);
        return r;
}
