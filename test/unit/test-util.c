/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests for src/basic/util.c. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"
#include "util.h"

static void test_strv(void) {
        _cleanup_strv_free_ char **l = NULL, **c = NULL;

        CHECK(strv_length(NULL) == 0);
        CHECK(!strv_contains(NULL, "a"));
        CHECK(strv_extend(&l, "a") == 0);
        CHECK(strv_extend(&l, "b") == 0);
        CHECK(strv_consume(&l, strdup("c")) == 0);
        CHECK(strv_length(l) == 3);
        CHECK(streq(l[0], "a") && streq(l[1], "b") && streq(l[2], "c") && !l[3]);
        CHECK(strv_contains(l, "b"));
        CHECK(!strv_contains(l, "d"));
        CHECK(strv_consume(&l, NULL) == -ENOMEM);
        CHECK(strv_length(l) == 3);

        c = strv_copy(l);
        CHECK(c && c != l && strv_length(c) == 3 && c[0] != l[0] && streq(c[2], "c"));

        size_t n = 0;
        STRV_FOREACH(s, l)
                n++;
        CHECK(n == 3);
        STRV_FOREACH(s, (char **) NULL)
                n++;
        CHECK(n == 3);
}

static void test_strv_split(void) {
        struct {
                const char *s, *sep;
                const char *expect[6];
        } cases[] = {
                { "a:b:c", ":", { "a", "b", "c" } },
                { "a::b", ":", { "a", "", "b" } },
                { "", ":", { "" } },
                { ":", ":", { "", "" } },
                { "a b,c", " ,", { "a", "b", "c" } },
                { "abc", ":", { "abc" } },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_strv_free_ char **l = NULL;
                size_t n = 0;

                CHECK(strv_split(cases[i].s, cases[i].sep, &l) == 0);
                while (cases[i].expect[n])
                        n++;
                CHECK(strv_length(l) == n);
                for (size_t j = 0; j < n && j < strv_length(l); j++)
                        CHECK(streq(l[j], cases[i].expect[j]));
        }
}

static void test_strings(void) {
        _cleanup_free_ char *j = NULL, *p = NULL;

        j = strjoin("a", "bc", NULL, "d");
        CHECK(j && streq(j, "abcd"));
        CHECK(startswith("foobar", "foo"));
        CHECK(startswith("foo", ""));
        CHECK(!startswith("fo", "foo"));
        CHECK(streq(strempty(startswith_ptr("foobar", "foo")), "bar"));
        CHECK(!startswith_ptr("foobar", "bar"));
        CHECK(endswith("foobar", "bar"));
        CHECK(endswith("foobar", ""));
        CHECK(!endswith("ar", "bar"));
        CHECK(strdup_or_null(NULL) == NULL);
        CHECK(free_and_strdup(&p, "x") >= 0 && p && streq(p, "x"));
        CHECK(free_and_strdup(&p, NULL) >= 0 && !p);
}

static void test_parse_boolean(void) {
        const char *yes[] = { "1", "yes", "YES", "y", "true", "True", "t", "on" };
        const char *no[] = { "0", "no", "n", "false", "FALSE", "f", "off" };
        const char *bad[] = { "", "2", "yess", " yes", "onn", "-1", "nope" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                CHECK(parse_boolean(yes[i]) == 1);
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                CHECK(parse_boolean(no[i]) == 0);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                CHECK(parse_boolean(bad[i]) == -EINVAL);
        CHECK(parse_boolean(NULL) == -EINVAL);
}

static void test_safe_atoi(void) {
        int i = 4711;

        CHECK(safe_atoi("0", &i) == 0 && i == 0);
        CHECK(safe_atoi("-5", &i) == 0 && i == -5);
        CHECK(safe_atoi("2147483647", &i) == 0 && i == 2147483647);
        CHECK(safe_atoi("-2147483648", &i) == 0 && i == INT32_MIN);
        i = 4711;
        CHECK(safe_atoi("2147483648", &i) == -ERANGE);
        CHECK(safe_atoi("99999999999999999999", &i) == -ERANGE);
        CHECK(safe_atoi("", &i) == -EINVAL);
        CHECK(safe_atoi(NULL, &i) == -EINVAL);
        CHECK(safe_atoi(" 1", &i) == -EINVAL);
        CHECK(safe_atoi("1 ", &i) == -EINVAL);
        CHECK(safe_atoi("1x", &i) == -EINVAL);
        CHECK(safe_atoi("x", &i) == -EINVAL);
        CHECK(i == 4711); /* untouched on failure */
}

static void test_safe_atou(void) {
        unsigned u = 4711;
        uint64_t v = 0;
        pid_t pid = 0;

        CHECK(safe_atou("0", &u) == 0 && u == 0);
        CHECK(safe_atou("4294967295", &u) == 0 && u == 4294967295U);
        u = 4711;
        CHECK(safe_atou("4294967296", &u) == -ERANGE);
        CHECK(safe_atou("-1", &u) == -EINVAL);
        CHECK(safe_atou("+1", &u) == -EINVAL);
        CHECK(safe_atou(" 1", &u) == -EINVAL);
        CHECK(safe_atou("", &u) == -EINVAL);
        CHECK(safe_atou("12a", &u) == -EINVAL);
        CHECK(u == 4711);
        CHECK(safe_atou64("18446744073709551615", &v) == 0 && v == UINT64_MAX);
        CHECK(safe_atou64("18446744073709551616", &v) == -ERANGE);
        CHECK(parse_pid("1", &pid) == 0 && pid == 1);
        CHECK(parse_pid("0", &pid) < 0);
        CHECK(parse_pid("-1", &pid) < 0);
        CHECK(parse_pid("2147483648", &pid) < 0);
}

static void test_parse_sec(void) {
        struct {
                const char *s;
                uint64_t usec;
        } good[] = {
                { "0", 0 },
                { "5", 5 * USEC_PER_SEC },
                { "5s", 5 * USEC_PER_SEC },
                { "5sec", 5 * USEC_PER_SEC },
                { "1.5", 1500 * USEC_PER_MSEC },
                { "0.5s", 500 * USEC_PER_MSEC },
                { ".5", 500 * USEC_PER_MSEC },
                { "100ms", 100 * USEC_PER_MSEC },
                { "7us", 7 },
                { "2m", 120 * USEC_PER_SEC },
                { "2min", 120 * USEC_PER_SEC },
                { "1h", 3600 * USEC_PER_SEC },
                { "infinity", UINT64_MAX },
        };
        const char *bad[] = { "", "s", "-1", "-1s", "5x", "5 s", " 5", "5ss", "abc", "nan", "inf", "1e400" };
        uint64_t u;

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                u = 4711;
                int r = parse_sec(good[i].s, &u);
                if (r < 0 || u != good[i].usec)
                        printf("# parse_sec(\"%s\") = %d, %llu\n", good[i].s, r, (unsigned long long) u);
                CHECK(r == 0 && u == good[i].usec);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                u = 4711;
                int r = parse_sec(bad[i], &u);
                if (r >= 0)
                        printf("# parse_sec(\"%s\") accepted: %llu\n", bad[i], (unsigned long long) u);
                CHECK(r < 0 && u == 4711);
        }
        CHECK(parse_sec(NULL, &u) == -EINVAL);
        /* would overflow uint64_t microseconds */
        CHECK(parse_sec("100000000000000000h", &u) < 0);
}

static void test_signals(void) {
        char buf[16];

        CHECK(signal_from_string("SIGTERM") == SIGTERM);
        CHECK(signal_from_string("TERM") == SIGTERM);
        CHECK(signal_from_string("SIGKILL") == SIGKILL);
        CHECK(signal_from_string("HUP") == SIGHUP);
        CHECK(signal_from_string("15") == 15);
        CHECK(signal_from_string("9") == SIGKILL);
        CHECK(signal_from_string("RTMIN") == SIGRTMIN);
        CHECK(signal_from_string("SIGRTMIN+3") == SIGRTMIN + 3);
        CHECK(signal_from_string("RTMIN+4") == SIGRTMIN + 4);
        CHECK(signal_from_string("SIGRTMAX") == SIGRTMAX);
        CHECK(signal_from_string("RTMAX-1") == SIGRTMAX - 1);
        CHECK(signal_from_string("") == -EINVAL);
        CHECK(signal_from_string(NULL) == -EINVAL);
        CHECK(signal_from_string("SIG") == -EINVAL);
        CHECK(signal_from_string("SIGFOO") == -EINVAL);
        CHECK(signal_from_string("sigterm") == -EINVAL);
        CHECK(signal_from_string("0") == -EINVAL);
        CHECK(signal_from_string("-1") == -EINVAL);
        CHECK(signal_from_string("65") == -EINVAL);
        CHECK(signal_from_string("SIG15") == -EINVAL);
        CHECK(signal_from_string("RTMIN+100") == -EINVAL);
        CHECK(signal_from_string("RTMIN-1") == -EINVAL);
        CHECK(signal_from_string("RTMAX+1") == -EINVAL);

        CHECK(streq(signal_to_string(SIGTERM, buf), "SIGTERM"));
        CHECK(streq(signal_to_string(SIGRTMIN + 3, buf), "SIGRTMIN+3"));
        CHECK(streq(signal_to_string(0, buf), "0"));
        /* every signal round-trips through its name */
        for (int sig = 1; sig <= SIGRTMAX; sig++) {
                if (sig > SIGSYS && sig < SIGRTMIN)
                        continue; /* 32, 33: reserved by glibc, no name */
                int r = signal_from_string(signal_to_string(sig, buf));
                if (r != sig)
                        printf("# signal %d -> \"%s\" -> %d\n", sig, buf, r);
                CHECK(r == sig);
        }
}

static void test_paths(void) {
        struct {
                const char *p;
                bool normalized, safe;
        } cases[] = {
                { "/", true, true },
                { "/a/b", true, true },
                { "a/b", true, false },
                { "/a/./b", false, false },
                { "/a/../b", false, false },
                { "/a//b", false, false },
                { "/a/..", false, false },
                { "/a/.", false, false },
                { "..", false, false },
                { ".", false, false },
                { "../a", false, false },
                { "./a", false, false },
                { "/..", false, false },
                { "/a/..b", true, true },
                { "/a/b.", true, true },
                { "", false, false },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                bool n = path_is_normalized(cases[i].p), s = path_is_safe(cases[i].p);
                if (n != cases[i].normalized || s != cases[i].safe)
                        printf("# \"%s\": normalized=%d safe=%d\n", cases[i].p, n, s);
                CHECK(n == cases[i].normalized);
                CHECK(s == cases[i].safe);
        }
        CHECK(!path_is_safe(NULL));
        CHECK(path_is_absolute("/x"));
        CHECK(!path_is_absolute("x"));
        CHECK(!path_is_absolute(NULL));
        CHECK(streq(path_basename("/a/b"), "b"));
        CHECK(streq(path_basename("b"), "b"));
        CHECK(streq(path_basename("/a/"), ""));

        /* longer than PATH_MAX: not safe */
        char *l = malloc(PATH_MAX + 2);
        CHECK(l);
        if (l) {
                for (size_t i = 0; i < PATH_MAX + 1; i++)
                        l[i] = i % 2 == 0 ? '/' : 'a';
                l[PATH_MAX + 1] = 0;
                CHECK(!path_is_safe(l));
                free(l);
        }
}

static void test_path_join(void) {
        struct {
                const char *a, *b, *expect;
        } cases[] = {
                { "/a", "b", "/a/b" },
                { "/a/", "b", "/a/b" },
                { "/a", "/b", "/a/b" },
                { "/a//", "//b", "/a/b" },
                { "/", "b", "/b" },
                { "/", "/", "/" },
                { "/a", "", "/a" },
                { "a", "b/c", "a/b/c" },
                { "", "b", "b" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *j = path_join(cases[i].a, cases[i].b);
                if (!j || !streq(j, cases[i].expect))
                        printf("# path_join(\"%s\", \"%s\") = \"%s\"\n", cases[i].a, cases[i].b, strna(j));
                CHECK(j && streq(j, cases[i].expect));
        }

        _cleanup_free_ char *abs = NULL, *cwd = getcwd(NULL, 0);
        CHECK(path_make_absolute_cwd("/x/y/", &abs) == 0 && streq(abs, "/x/y"));
        free(abs);
        abs = NULL;
        CHECK(path_make_absolute_cwd("rel", &abs) == 0 && cwd && abs && startswith(abs, cwd) &&
              endswith(abs, "/rel"));
}

static void test_id128(void) {
        uint8_t a[16], b[16];
        char s[33], u[37];

        CHECK(id128_randomize(a) == 0);
        CHECK((a[6] & 0xF0) == 0x40); /* v4 */
        CHECK((a[8] & 0xC0) == 0x80); /* RFC 4122 variant */
        id128_to_string(a, s);
        CHECK(strlen(s) == 32);
        CHECK(id128_from_string(s, b) == 0 && memcmp(a, b, 16) == 0);
        id128_to_uuid_string(a, u);
        CHECK(strlen(u) == 36 && u[8] == '-' && u[13] == '-' && u[18] == '-' && u[23] == '-');
        memset(b, 0, sizeof b);
        CHECK(id128_from_string(u, b) == 0 && memcmp(a, b, 16) == 0);

        CHECK(id128_from_string("0123456789ABCDEF0123456789abcdef", b) == 0 && b[0] == 0x01 && b[7] == 0xef);
        CHECK(streq(id128_to_string(b, s), "0123456789abcdef0123456789abcdef"));

        memcpy(b, a, 16);
        CHECK(id128_from_string("", b) == -EINVAL);
        CHECK(id128_from_string("0123456789abcdef0123456789abcde", b) == -EINVAL);
        CHECK(id128_from_string("0123456789abcdef0123456789abcdeg", b) == -EINVAL);
        CHECK(id128_from_string("0123456789abcdef0123456789abcdef0", b) == -EINVAL);
        CHECK(id128_from_string("01234567-89ab-cdef-0123-456789abcdef", b) == 0);
        CHECK(id128_from_string("01234567x89ab-cdef-0123-456789abcdef", b) == -EINVAL);
        CHECK(id128_from_string("0123456789ab-cdef-0123-456789abcdef-", b) == -EINVAL);
}

static int make_temp_dir(char ret[static 64]) {
        snprintf(ret, 64, "/tmp/berth-test-util.XXXXXX");
        return mkdtemp(ret) ? 0 : -errno;
}

static bool exists(const char *p) {
        struct stat st;
        return lstat(p, &st) == 0;
}

static void test_mkdir_p(void) {
        char d[64], p[256];
        struct stat st;

        CHECK(make_temp_dir(d) == 0);
        snprintf(p, sizeof p, "%s/a/b/c", d);
        CHECK(mkdir_p(p, 0755) == 0);
        CHECK(stat(p, &st) == 0 && S_ISDIR(st.st_mode));
        CHECK(mkdir_p(p, 0755) == 0); /* exists: fine */
        snprintf(p, sizeof p, "%s/x//y/", d);
        CHECK(mkdir_p(p, 0755) == 0);
        snprintf(p, sizeof p, "%s/x/y", d);
        CHECK(stat(p, &st) == 0 && S_ISDIR(st.st_mode));
        snprintf(p, sizeof p, "%s/f/g/h", d);
        CHECK(mkdir_parents(p, 0755) == 0);
        snprintf(p, sizeof p, "%s/f/g", d);
        CHECK(stat(p, &st) == 0 && S_ISDIR(st.st_mode));
        snprintf(p, sizeof p, "%s/f/g/h", d);
        CHECK(!exists(p));
        /* a file in the way */
        snprintf(p, sizeof p, "%s/file", d);
        CHECK(touch(p, 0644) == 0);
        snprintf(p, sizeof p, "%s/file/sub", d);
        CHECK(mkdir_p(p, 0755) == -ENOTDIR);
        CHECK(mkdir_p("", 0755) < 0);
        CHECK(rm_rf(d) == 0);
        CHECK(!exists(d));
}

static void test_rm_rf(void) {
        char d[64], p[256], outside[64], link[256];

        CHECK(make_temp_dir(d) == 0);
        CHECK(make_temp_dir(outside) == 0);
        snprintf(p, sizeof p, "%s/a/b/c", d);
        CHECK(mkdir_p(p, 0755) == 0);
        snprintf(p, sizeof p, "%s/a/b/c/file", d);
        CHECK(write_string_file(p, "x", O_CREAT) == 0);
        snprintf(p, sizeof p, "%s/a/file", d);
        CHECK(write_string_file(p, "x", O_CREAT) == 0);
        snprintf(p, sizeof p, "%s/a/b/ro", d);
        CHECK(mkdir_p(p, 0755) == 0);
        CHECK(chmod(p, 0) == 0); /* root removes it anyway; others can't, then r < 0 */

        /* symlinks are removed, never followed */
        snprintf(p, sizeof p, "%s/keep", outside);
        CHECK(write_string_file(p, "x", O_CREAT) == 0);
        snprintf(link, sizeof link, "%s/a/link", d);
        CHECK(symlink(outside, link) == 0);

        if (geteuid() == 0) {
                CHECK(rm_rf(d) == 0);
                CHECK(!exists(d));
        } else {
                (void) rm_rf(d);
                snprintf(p, sizeof p, "%s/a/b/ro", d);
                CHECK(chmod(p, 0755) == 0);
                CHECK(rm_rf(d) == 0);
                CHECK(!exists(d));
        }
        snprintf(p, sizeof p, "%s/keep", outside);
        CHECK(exists(p));

        /* a plain file, a symlink, something missing */
        CHECK(rm_rf(p) == 0 && !exists(p));
        CHECK(symlink(outside, p) == 0);
        CHECK(rm_rf(p) == 0 && !exists(p) && exists(outside));
        CHECK(rm_rf(p) == 0);
        CHECK(rm_rf(outside) == 0 && !exists(outside));
}

static void test_files(void) {
        char d[64], p[256];
        _cleanup_free_ char *s = NULL, *line = NULL;
        size_t n = 0;

        CHECK(make_temp_dir(d) == 0);
        snprintf(p, sizeof p, "%s/f", d);
        CHECK(write_string_file(p, "x", 0) == -ENOENT);
        CHECK(write_string_file(p, "hello\nworld\n", O_CREAT) == 0);
        CHECK(read_full_file(p, &s, &n) == 0 && n == 12 && streq(s, "hello\nworld\n"));
        CHECK(read_one_line_file(p, &line) == 0 && streq(line, "hello"));
        CHECK(write_string_file(p, "", O_TRUNC) == 0);
        free(s);
        s = NULL;
        CHECK(read_full_file(p, &s, &n) == 0 && n == 0 && s && *s == 0);

        char q[256];
        snprintf(q, sizeof q, "%s/g", d);
        CHECK(write_string_file(p, "copy me", O_TRUNC) == 0);
        CHECK(copy_file(p, q, 0600) == 0);
        free(s);
        s = NULL;
        CHECK(read_full_file(q, &s, NULL) == 0 && streq(s, "copy me"));
        CHECK(rm_rf(d) == 0);
}

/* A file written into a hostile directory replaces what is there, never writes through it. */
static void test_write_file_atomic_at(void) {
        char d[64], p[256], *s = NULL;
        _cleanup_close_ int dfd = -EBADF, fd = -EBADF;
        struct stat st;
        size_t entries = 0;

        CHECK(make_temp_dir(d) == 0);
        dfd = open(d, O_PATH | O_DIRECTORY | O_CLOEXEC);
        CHECK(dfd >= 0);

        /* a hard link to an outside file: the outside file keeps its content */
        snprintf(p, sizeof p, "%s/outside", d);
        CHECK(write_string_file(p, "outside", O_CREAT) == 0);
        CHECK(linkat(dfd, "outside", dfd, "linked", 0) == 0);
        CHECK(write_file_atomic_at(dfd, "linked", "new\n", 4, 0444, &fd) == 0);
        CHECK(fd >= 0 && fstat(fd, &st) == 0 && (st.st_mode & 07777) == 0444 && st.st_nlink == 1);
        CHECK(read_full_file(p, &s, NULL) == 0 && streq(s, "outside"));
        free(s);
        snprintf(p, sizeof p, "%s/linked", d);
        CHECK(read_full_file(p, &s, NULL) == 0 && streq(s, "new\n"));
        free(s);

        /* a symlink to an outside file: replaced by the file */
        CHECK(symlinkat("outside", dfd, "sym") == 0);
        CHECK(write_file_atomic_at(dfd, "sym", "x", 1, 0644, NULL) == 0);
        CHECK(fstatat(dfd, "sym", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode));
        snprintf(p, sizeof p, "%s/outside", d);
        CHECK(read_full_file(p, &s, NULL) == 0 && streq(s, "outside"));
        free(s);

        /* a directory there: an error, and no temporary file left */
        CHECK(mkdirat(dfd, "dir", 0755) == 0);
        CHECK(write_file_atomic_at(dfd, "dir", "x", 1, 0644, NULL) < 0);
        CHECK(write_file_atomic_at(dfd, "a/b", "x", 1, 0644, NULL) == -EINVAL);

        CHECK(symlink_atomic_at("target", dfd, "linked") == 0);
        CHECK(fstatat(dfd, "linked", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode));

        {
                _cleanup_closedir_ DIR *dir = opendir(d);
                struct dirent *de;
                CHECK(dir);
                while (dir && (de = readdir(dir)))
                        if (de->d_name[0] != '.')
                                entries++;
                        else
                                CHECK(streq(de->d_name, ".") || streq(de->d_name, ".."));
        }
        CHECK(entries == 4); /* outside, linked, sym, dir */
        CHECK(rm_rf(d) == 0);
}

static void test_fds(void) {
        int p[2];

        CHECK(pipe(p) == 0);
        CHECK(fd_set_cloexec(p[0], true) == 0 && (fcntl(p[0], F_GETFD) & FD_CLOEXEC));
        CHECK(fd_set_cloexec(p[0], false) == 0 && !(fcntl(p[0], F_GETFD) & FD_CLOEXEC));
        CHECK(fd_set_nonblock(p[1], true) == 0 && (fcntl(p[1], F_GETFL) & O_NONBLOCK));
        CHECK(fd_set_nonblock(p[1], false) == 0 && !(fcntl(p[1], F_GETFL) & O_NONBLOCK));
        CHECK(loop_write(p[1], "abc", 3) == 0);
        CHECK(safe_close(p[0]) == -EBADF);
        CHECK(safe_close(p[1]) == -EBADF);
        CHECK(fd_set_cloexec(p[0], true) == -EBADF);
}

static void test_unhex_unbase64(void) {
        static const struct {
                const char *in;
                const char *out; /* NULL: -EINVAL */
                size_t n;
        } b64[] = {
                { "aGVsbG8=", "hello", 5 },
                { "aGVsbG8h", "hello!", 6 },
                { "aGVs\nbG8h", "hello!", 6 },
                { "aGU=", "he", 2 },
                { "aA==", "h", 1 },
                { "aGVsbG8", NULL, 0 },      /* not a whole quad */
                { "aGVsbG8==", NULL, 0 },    /* 9 characters */
                { "aGU=aGU=", NULL, 0 },     /* data after padding */
                { "aB==", NULL, 0 },         /* stray bits */
                { "a===", NULL, 0 },
                { "aGV*bG8h", NULL, 0 },
                { "", NULL, 0 },
        };
        uint8_t *buf = NULL;
        size_t n = 0;

        CHECK(unhexmem("00ffA5", &buf, &n) == 0 && n == 3 && buf[0] == 0 && buf[1] == 0xff && buf[2] == 0xa5);
        free(buf);
        buf = NULL;
        CHECK(unhexmem("abc", &buf, &n) == -EINVAL);
        CHECK(unhexmem("", &buf, &n) == -EINVAL);
        CHECK(unhexmem("zz", &buf, &n) == -EINVAL);
        CHECK(unhexmem("0x12", &buf, &n) == -EINVAL);
        CHECK(!buf);
        for (size_t i = 0; i < ELEMENTSOF(b64); i++) {
                int r = unbase64mem(b64[i].in, &buf, &n);
                if (b64[i].out) {
                        CHECK(r == 0 && n == b64[i].n && memcmp(buf, b64[i].out, n) == 0);
                        free(buf);
                        buf = NULL;
                } else {
                        if (r != -EINVAL)
                                printf("# unbase64mem('%s') = %i\n", b64[i].in, r);
                        CHECK(r == -EINVAL);
                }
        }
}

static void test_string_table_lookup(void) {
        static const char *const t[] = { NULL, "one", "two" };

        CHECK(string_table_lookup(t, ELEMENTSOF(t), "one") == 1);
        CHECK(string_table_lookup(t, ELEMENTSOF(t), "two") == 2);
        CHECK(string_table_lookup(t, ELEMENTSOF(t), "three") == -EINVAL);
        CHECK(string_table_lookup(t, ELEMENTSOF(t), "") == -EINVAL);
        CHECK(string_table_lookup(t, ELEMENTSOF(t), NULL) == -EINVAL);
        CHECK(string_table_lookup(t, 2, "two") == -EINVAL);
}

static void test_now(void) {
        uint64_t a = now_usec(CLOCK_MONOTONIC), b = now_usec(CLOCK_MONOTONIC);
        CHECK(a > 0 && b >= a);
}

/* A ".." in a RESOLVE_IN_ROOT walk fails with EAGAIN when a rename anywhere on the host races it
 * (as another machine's start-up does on a busy host): open_in_root() must not pass that on as
 * "not there". A child renames back and forth while we resolve /sbin/init -> ../bin/f. */
static void test_open_in_root_during_renames(void) {
        char d[64], p[256], a[300], b[300];
        int root, failed = 0, first_error = 0;
        pid_t pid;

        CHECK(make_temp_dir(d) == 0);
        snprintf(p, sizeof p, "%s/bin", d);
        CHECK(mkdir(p, 0755) == 0);
        snprintf(p, sizeof p, "%s/sbin", d);
        CHECK(mkdir(p, 0755) == 0);
        snprintf(p, sizeof p, "%s/bin/f", d);
        CHECK(close(open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755)) == 0);
        snprintf(p, sizeof p, "%s/sbin/init", d);
        CHECK(symlink("../bin/f", p) == 0);
        snprintf(a, sizeof a, "%s/ra", d);
        snprintf(b, sizeof b, "%s/rb", d);
        CHECK(mkdir(a, 0755) == 0);
        root = open(d, O_PATH | O_DIRECTORY | O_CLOEXEC);
        CHECK(root >= 0);

        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                for (;;) {
                        (void) rename(a, b);
                        (void) rename(b, a);
                }
        }
        for (int i = 0; i < 20000; i++) {
                int fd = open_in_root(root, "/sbin/init", O_PATH);

                if (fd < 0) {
                        failed++;
                        first_error = first_error ?: fd;
                } else
                        close(fd);
        }
        (void) kill(pid, SIGKILL);
        (void) waitpid(pid, NULL, 0);
        close(root);
        if (failed)
                printf("# %d of 20000 failed, the first with %s\n", failed, strerror(-first_error));
        CHECK(failed == 0);
        CHECK(rm_rf(d) == 0);
}

static const TapCase cases[] = {
        { "strv", test_strv },
        { "strv_split", test_strv_split },
        { "strings", test_strings },
        { "parse_boolean", test_parse_boolean },
        { "safe_atoi", test_safe_atoi },
        { "safe_atou", test_safe_atou },
        { "parse_sec", test_parse_sec },
        { "signals", test_signals },
        { "paths", test_paths },
        { "path_join", test_path_join },
        { "id128", test_id128 },
        { "unhex_unbase64", test_unhex_unbase64 },
        { "mkdir_p", test_mkdir_p },
        { "rm_rf", test_rm_rf },
        { "files", test_files },
        { "write_file_atomic_at", test_write_file_atomic_at },
        { "fds", test_fds },
        { "string_table_lookup", test_string_table_lookup },
        { "now_usec", test_now },
        { "open_in_root_during_renames", test_open_in_root_during_renames },
};

int main(void) {
        return tap_run(cases, ELEMENTSOF(cases));
}
