/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* copy_tree_fd(), copy_file_fd() and tree_usage_fd() on small generated trees in a
 * temporary directory; no root needed (owners are the caller's). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copy.h"
#include "tap.h"
#include "util.h"

static char base[] = "/tmp/berth-test-copy-XXXXXX";

static char *at(const char *rel) {
        static char buf[8][PATH_MAX];
        static int i;
        i = (i + 1) % 8;
        snprintf(buf[i], sizeof buf[i], "%s/%s", base, rel);
        return buf[i];
}

static void write_file(const char *rel, const char *data, off_t size) {
        int fd = open(at(rel), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        CHECK(fd >= 0);
        if (fd < 0)
                return;
        CHECK(loop_write(fd, data, strlen(data)) == 0);
        if (size > 0)
                CHECK(ftruncate(fd, size) == 0);
        close(fd);
}

static int open_dir(const char *rel) {
        return open(at(rel), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* src/: a file (mode 0751, old mtime), a hard link to it, a relative and an
 * absolute symlink, a fifo, a sparse file, a subdirectory (mode 0700). */
static void make_source(void) {
        struct timespec ts[2] = { { .tv_sec = 1000000000 }, { .tv_sec = 1000000000 } };

        CHECK(mkdir(at("src"), 0755) == 0);
        CHECK(mkdir(at("src/sub"), 0700) == 0);
        write_file("src/sub/file", "hello\n", 0);
        CHECK(chmod(at("src/sub/file"), 0751) == 0);
        CHECK(utimensat(AT_FDCWD, at("src/sub/file"), ts, 0) == 0);
        CHECK(link(at("src/sub/file"), at("src/hardlink")) == 0);
        CHECK(symlink("sub/file", at("src/rel")) == 0);
        CHECK(symlink("/etc/passwd", at("src/abs")) == 0);
        CHECK(mkfifo(at("src/fifo"), 0600) == 0);
        write_file("src/sparse", "x", 64 * 1024 * 1024);
}

static void test_copy_tree(void) {
        CopyContext c = {};
        struct stat a, b, l;
        char target[64] = "";
        int src, dst;

        CHECK(mkdir(at("dst"), 0700) == 0);
        src = open_dir("src");
        dst = open_dir("dst");
        CHECK(src >= 0 && dst >= 0);
        CHECK(copy_tree_fd(src, dst, &c) == 0);
        CHECK(c.error_path == NULL);
        CHECK(c.n_files == 7);
        close(src);
        close(dst);

        CHECK(stat(at("dst/sub/file"), &a) == 0);
        CHECK((a.st_mode & 07777) == 0751);
        CHECK(a.st_mtim.tv_sec == 1000000000);
        CHECK(stat(at("dst/sub"), &b) == 0 && (b.st_mode & 07777) == 0700);
        CHECK(stat(at("dst"), &b) == 0 && (b.st_mode & 07777) == 0755); /* the top takes the source's mode */
        CHECK(stat(at("dst/hardlink"), &b) == 0 && b.st_ino == a.st_ino);
        CHECK(lstat(at("dst/abs"), &l) == 0 && S_ISLNK(l.st_mode));
        CHECK(readlink(at("dst/abs"), target, sizeof target - 1) == 11 && streq(target, "/etc/passwd"));
        CHECK(lstat(at("dst/rel"), &l) == 0 && S_ISLNK(l.st_mode));
        CHECK(lstat(at("dst/fifo"), &l) == 0 && S_ISFIFO(l.st_mode));
        CHECK(stat(at("dst/sparse"), &l) == 0 && l.st_size == 64 * 1024 * 1024);
        CHECK(l.st_blocks * 512 < 1024 * 1024); /* the hole stayed a hole */
        copy_context_done(&c);
}

static void test_copy_into_itself(void) {
        CopyContext c = {};
        int src, dst;

        /* the destination inside the source is not copied into itself */
        CHECK(mkdir(at("src/inner"), 0755) == 0);
        src = open_dir("src");
        dst = open_dir("src/inner");
        CHECK(copy_tree_fd(src, dst, &c) == 0);
        CHECK(access(at("src/inner/sub/file"), F_OK) == 0);
        CHECK(access(at("src/inner/inner"), F_OK) < 0);
        close(src);
        close(dst);
        copy_context_done(&c);
        CHECK(rm_rf(at("src/inner")) == 0);
}

static int abort_progress(const CopyContext *c, void *userdata) {
        return c->n_files >= 2 ? -ECANCELED : 0;
}

static void test_copy_abort_and_errors(void) {
        CopyContext c = { .progress = abort_progress };
        int src, dst;

        CHECK(mkdir(at("dst2"), 0755) == 0);
        src = open_dir("src");
        dst = open_dir("dst2");
        CHECK(copy_tree_fd(src, dst, &c) == -ECANCELED);
        copy_context_done(&c);

        /* a name that exists already in the destination: the failing entry is named */
        c = (CopyContext) {};
        CHECK(copy_tree_fd(src, dst, &c) == -EEXIST);
        CHECK(c.error_path != NULL && c.error_op != NULL);
        copy_context_done(&c);
        close(src);
        close(dst);
}

static void test_copy_file(void) {
        CopyContext c = {};
        struct stat st;
        int from, to;

        from = open(at("src/sparse"), O_RDONLY | O_CLOEXEC);
        to = open(at("copy.raw"), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        CHECK(from >= 0 && to >= 0);
        CHECK(copy_file_fd(from, to, &c) == 0);
        CHECK(fstat(to, &st) == 0 && st.st_size == 64 * 1024 * 1024 && (st.st_mode & 07777) == 0644);
        close(from);
        close(to);
        copy_context_done(&c);
}

static void test_usage(void) {
        uint64_t usage = 0, apparent = 0, sum = 0;
        struct stat st;
        int fd;

        fd = open_dir("src");
        CHECK(tree_usage_fd(fd, &usage, &apparent) == 0);
        close(fd);
        /* the hard link is counted once; symlink targets (/etc/passwd) not at all */
        CHECK(apparent == 6 + 64 * 1024 * 1024);
        const char *const all[] = { "src", "src/sub", "src/sub/file", "src/rel", "src/abs", "src/fifo", "src/sparse" };
        for (size_t i = 0; i < ELEMENTSOF(all); i++) {
                CHECK(lstat(at(all[i]), &st) == 0);
                sum += (uint64_t) st.st_blocks * 512;
        }
        CHECK(usage == sum);

        /* the directory fd is left where it was: a copy through it afterwards sees everything */
        fd = open_dir("src");
        CHECK(tree_usage_fd(fd, &usage, NULL) == 0);
        CHECK(mkdir(at("dst3"), 0755) == 0);
        int dst = open_dir("dst3");
        CopyContext c = {};
        CHECK(copy_tree_fd(fd, dst, &c) == 0);
        CHECK(c.n_files == 7);
        copy_context_done(&c);
        close(dst);
        close(fd);
}

int main(void) {
        static const TapCase cases[] = {
                { "copy_tree", test_copy_tree },
                { "copy_into_itself", test_copy_into_itself },
                { "copy_abort_and_errors", test_copy_abort_and_errors },
                { "copy_file", test_copy_file },
                { "usage", test_usage },
        };
        int r;

        if (!mkdtemp(base)) {
                printf("1..0 # SKIP cannot create a temporary directory\n");
                return 0;
        }
        make_source();
        r = tap_run(cases, ELEMENTSOF(cases));
        (void) rm_rf(base);
        return r;
}
