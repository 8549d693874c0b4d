/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* --private-users= parsing, uid-range math, and the range allocator against
 * fake passwd/group/subuid/subgid files, a fake /proc and a lock dir in a
 * temporary directory: no root needed, nothing of the host's touched. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "berth-bind-user.h"
#include "berth-userns.h"
#include "tap.h"
#include "util.h"

static char tmpdir[] = "/tmp/test-userns-XXXXXX";

static char *p(const char *rel) {
        char *s = strjoin(tmpdir, "/", rel);
        if (!s)
                abort();
        return s;
}

static void put(const char *rel, const char *content) {
        _cleanup_free_ char *path = p(rel);
        (void) mkdir_parents(path, 0755);
        if (write_string_file(path, content, O_CREAT | O_TRUNC) < 0)
                abort();
}

static UidSources sources(void) {
        return (UidSources) {
                .passwd = p("passwd"),
                .group = p("group"),
                .subuid = p("subuid"),
                .subgid = p("subgid"),
                .proc = p("proc"),
                .lock_dir = p("locks"),
                .global_lock = p("global.lock"),
        };
}

static void sources_free(UidSources *s) {
        free((char *) s->passwd);
        free((char *) s->group);
        free((char *) s->subuid);
        free((char *) s->subgid);
        free((char *) s->proc);
        free((char *) s->lock_dir);
        free((char *) s->global_lock);
}

static void reset_files(void) {
        _cleanup_free_ char *proc = p("proc"), *locks = p("locks");
        (void) rm_rf(proc);
        (void) rm_rf(locks);
        put("passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n");
        put("group", "root:x:0:\nnogroup:x:65534:\n");
        put("subuid", "");
        put("subgid", "");
        put("proc/1/uid_map", "         0          0 4294967295\n");
        put("proc/1/gid_map", "         0          0 4294967295\n");
}

static void test_parse(void) {
        UserNamespaceMode m;
        UidRange r;
        const char *d = NULL;

        CHECK(userns_parse("no", &m, &r, &d) == 0 && m == USERNS_NO);
        CHECK(userns_parse("false", &m, &r, &d) == 0 && m == USERNS_NO);
        CHECK(userns_parse("yes", &m, &r, &d) == 0 && m == USERNS_YES);
        CHECK(userns_parse("1", &m, &r, &d) == 0 && m == USERNS_YES);
        CHECK(userns_parse("pick", &m, &r, &d) == 0 && m == USERNS_PICK);
        CHECK(userns_parse("identity", &m, &r, &d) == 0 && m == USERNS_IDENTITY);
        CHECK(userns_parse("524288", &m, &r, &d) == 0 && m == USERNS_FIXED && r.start == 524288 && r.count == 65536);
        CHECK(userns_parse("524288:1000", &m, &r, &d) == 0 && m == USERNS_FIXED && r.count == 1000);
        CHECK(userns_parse("0:65536", &m, &r, &d) == 0 && m == USERNS_FIXED && r.start == 0);

        static const char *const bad[] = { "", "fixed", "maybe", "-1", "0x80000", "1:0", "1:", ":5", "1:2:3",
                                           "4294967295", "4294901760:65536", "99999999999", " 5", "5 ", "1:-1" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                d = NULL;
                if (userns_parse(bad[i], &m, &r, &d) != -EINVAL || !d)
                        printf("# accepted '%s'\n", bad[i]), tap_failed_checks++;
        }
        /* the last id of the space fits, the invalid id does not */
        CHECK(userns_parse("4294901759:65536", &m, &r, &d) == 0);
}

static void test_enums(void) {
        for (int i = 0; i < _USERNS_MODE_MAX; i++)
                CHECK(userns_mode_from_string(userns_mode_to_string(i)) == i);
        for (int i = 0; i < _USERNS_OWNERSHIP_MAX; i++)
                CHECK(userns_ownership_from_string(userns_ownership_to_string(i)) == i);
        CHECK(userns_ownership_from_string("chmod") < 0);
        CHECK(userns_ownership_from_string(NULL) < 0);
}

static void test_overlap(void) {
        CHECK(uid_range_overlaps((UidRange) { 0, 10 }, (UidRange) { 9, 1 }));
        CHECK(!uid_range_overlaps((UidRange) { 0, 10 }, (UidRange) { 10, 1 }));
        CHECK(uid_range_overlaps((UidRange) { 100, 1 }, (UidRange) { 0, 4294967295U }));
        CHECK(!uid_range_overlaps((UidRange) { 5, 0 }, (UidRange) { 0, 10 }));
        CHECK(uid_range_overlaps((UidRange) { 4294901759U, 65536 }, (UidRange) { 4294967294U, 1 }));
}

static void test_candidate(void) {
        uint32_t a = userns_pick_candidate("web"), b = userns_pick_candidate("web");
        CHECK(a == b); /* stable */
        CHECK(a >= USERNS_PICK_MIN && a <= USERNS_PICK_MAX && a % USERNS_RANGE_SIZE == 0);
        /* different names spread */
        unsigned same = 0;
        char name[16];
        for (int i = 0; i < 100; i++) {
                snprintf(name, sizeof name, "m%d", i);
                uint32_t c = userns_pick_candidate(name);
                CHECK(c >= USERNS_PICK_MIN && c <= USERNS_PICK_MAX && c % USERNS_RANGE_SIZE == 0);
                same += c == a;
        }
        CHECK(same < 3);
}

static void test_pick_free(void) {
        uint32_t first = userns_pick_candidate("web"), base;
        UidRange used[] = {
                { first, 1 },                           /* one id of the first candidate */
                { first + USERNS_RANGE_SIZE + 65535, 1 }, /* the last id of the second */
        };
        CHECK(userns_pick_free("web", NULL, 0, &base) == 0 && base == first);
        CHECK(userns_pick_free("web", used, ELEMENTSOF(used), &base) == 0);
        if (first + 2 * USERNS_RANGE_SIZE <= USERNS_PICK_MAX)
                CHECK(base == first + 2 * USERNS_RANGE_SIZE);
        else
                CHECK(base != first && base % USERNS_RANGE_SIZE == 0);

        /* the window wraps */
        UidRange tail = { first, USERNS_PICK_MAX + USERNS_RANGE_SIZE - first };
        CHECK(userns_pick_free("web", &tail, 1, &base) == 0 && base == USERNS_PICK_MIN);
        /* and can be full */
        UidRange all = { 0, 4294967295U };
        CHECK(userns_pick_free("web", &all, 1, &base) == -EBUSY);
}

static void test_map_lines(void) {
        UidRange u;
        CHECK(uid_map_line_parse("         0     524288      65536\n", &u) == 0 && u.start == 524288 && u.count == 65536);
        CHECK(uid_map_line_parse("0 0 4294967295", &u) == -ENOENT);
        CHECK(uid_map_line_parse("0 1000 1", &u) == 0 && u.start == 1000 && u.count == 1);
        CHECK(uid_map_line_parse("garbage", &u) == -EINVAL);
        CHECK(uid_map_line_parse("0 5 0", &u) == -EINVAL);
}

/* --bind-user=: the range with single ids cut out and mapped to host ids */
static void test_map_format(void) {
        const uint32_t inside[] = { 60514, 60515, 60600 }, outside[] = { 1001, 1002, 1003 };
        UidRange r = { 524288, 65536 };
        char *m = NULL;

        CHECK(uid_map_format(r, NULL, NULL, 0, &m) == 0 && streq(m, "0 524288 65536\n"));
        free(m);
        CHECK(uid_map_format(r, inside, outside, 1, &m) == 0 &&
              streq(m, "0 524288 60514\n60514 1001 1\n60515 584803 5021\n"));
        free(m);
        /* neighbours: no empty range between them */
        CHECK(uid_map_format(r, inside, outside, 3, &m) == 0 &&
              streq(m, "0 524288 60514\n60514 1001 1\n60515 1002 1\n60516 584804 84\n60600 1003 1\n"
                       "60601 584889 4935\n"));
        free(m);
        /* the last id of the range, and ids out of order or outside the range */
        const uint32_t last[] = { 65535 }, bad[] = { 60515, 60514 }, over[] = { 65536 };
        CHECK(uid_map_format(r, last, outside, 1, &m) == 0 && streq(m, "0 524288 65535\n65535 1001 1\n"));
        free(m);
        CHECK(uid_map_format(r, bad, outside, 2, &m) == -EINVAL);
        CHECK(uid_map_format(r, over, outside, 1, &m) == -EINVAL);
}

static void test_bind_user_ids(void) {
        const uid_t used[] = { 0, 60514, 60516, 65534 };
        uid_t next = BIND_USER_UID_MIN;
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_free_ uid_t *ids = NULL;
        size_t n = 0;
        FILE *f;

        CHECK(bind_user_pick_uid(used, ELEMENTSOF(used), 65536, &next) == 0 && next == 60515);
        next = 60516;
        CHECK(bind_user_pick_uid(used, ELEMENTSOF(used), 65536, &next) == 0 && next == 60517);
        next = BIND_USER_UID_MAX + 1;
        CHECK(bind_user_pick_uid(used, ELEMENTSOF(used), 65536, &next) == -EBUSY);
        /* a range too small for the window */
        next = BIND_USER_UID_MIN;
        CHECK(bind_user_pick_uid(NULL, 0, 1000, &next) == -EBUSY);

        const char db[] = "root:x:0:0:root:/root:/bin/sh\n# comment\n\nbroken\nalice:x:60514:60514::/home/a:\n"
                          "grp:x:abc:\n";
        f = fmemopen((void *) db, sizeof db - 1, "r");
        CHECK(f && colon_file_collect(f, &names, &ids, &n) == 0);
        if (f)
                fclose(f);
        CHECK(strv_length(names) == 3 && streq(names[0], "root") && streq(names[1], "alice") && streq(names[2], "grp"));
        CHECK(n == 2 && ids[0] == 0 && ids[1] == 60514);
}

static void test_bind_user_records(void) {
        BindUser u = { .name = (char *) "alice", .uid = 60514, .host_uid = 1001 };
        char *j = NULL;

        CHECK(bind_user_record(&u, &j) == 0 &&
              streq(j, "{\"userName\":\"alice\",\"uid\":60514,\"gid\":60514,\"homeDirectory\":\"/run/host/home/alice\","
                       "\"service\":\"io.systemd.NSpawn\"}\n"));
        free(j);
        u.shell = (char *) "/bin/\"odd\\sh\n";
        CHECK(bind_user_record(&u, &j) == 0 && strstr(j, ",\"shell\":\"/bin/\\\"odd\\\\sh\\u000a\"}\n"));
        free(j);
        CHECK(bind_group_record(&u, &j) == 0 &&
              streq(j, "{\"groupName\":\"alice\",\"gid\":60514,\"service\":\"io.systemd.NSpawn\"}\n"));
        free(j);
}

static bool has(const UidRange *l, size_t n, uint32_t start, uint32_t count) {
        for (size_t i = 0; i < n; i++)
                if (l[i].start == start && l[i].count == count)
                        return true;
        return false;
}

static void test_collect(void) {
        UidSources s = sources();
        _cleanup_free_ UidRange *l = NULL;
        size_t n = 0;
        int fd;

        reset_files();
        put("subuid", "alice:100000:65536\n# comment\nbroken\nbob:165536:0\n");
        put("subgid", "alice:200000:1000\n");
        put("proc/77/uid_map", "0 1048576 65536\n");
        /* a zombie (a killed container's PID 1 its reaper has not reaped yet) holds nothing */
        put("proc/78/uid_map", "0 2097152 65536\n");
        put("proc/78/stat", "78 (sl) eep) Z 1 78 78 0 -1\n"); /* ")" in the name too */
        put("proc/77/gid_map", "0 1048576 65536\n1 7 1\n");
        put("proc/self/uid_map", "0 9999999 1\n"); /* not a PID: skipped */
        put("locks/2097152", "");                   /* a lock file nobody holds */
        CHECK(userns_lock_take(s.lock_dir, 3145728, &fd) == 0);

        CHECK(uid_sources_collect(&s, &l, &n) == 0);
        CHECK(has(l, n, 0, 1) && has(l, n, 65534, 1));
        CHECK(has(l, n, 100000, 65536) && has(l, n, 200000, 1000));
        CHECK(has(l, n, 1048576, 65536) && has(l, n, 7, 1));
        CHECK(has(l, n, 3145728, 65536));
        CHECK(!has(l, n, 2097152, 65536));
        CHECK(!has(l, n, 9999999, 1));
        CHECK(!has(l, n, 0, 4294967295U));
        userns_lock_release(s.lock_dir, 3145728, fd);
        sources_free(&s);
}

static void test_locks(void) {
        UidSources s = sources();
        _cleanup_free_ char *f = p("locks/524288");
        int fd, fd2, status;
        pid_t pid;

        reset_files();
        CHECK(userns_lock_take(s.lock_dir, 524288, &fd) == 0);
        CHECK(access(f, F_OK) == 0);
        /* an open file description lock: another open of the same file is refused,
         * also in the same process */
        CHECK(userns_lock_take(s.lock_dir, 524288, &fd2) == -EBUSY);
        pid = fork();
        if (pid == 0)
                _exit(userns_lock_take(s.lock_dir, 524288, &fd2) == -EBUSY ? 0 : 1);
        CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
        CHECK(userns_lock_cleanup_stale(s.lock_dir) == 0); /* held: kept */
        CHECK(access(f, F_OK) == 0);
        userns_lock_release(s.lock_dir, 524288, fd);
        CHECK(access(f, F_OK) < 0 && errno == ENOENT);

        /* a lock file left by a crash: the process died, the lock with it */
        pid = fork();
        if (pid == 0) {
                int x;
                _exit(userns_lock_take(s.lock_dir, 589824, &x) == 0 ? 0 : 1);
        }
        CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
        put("locks/not-a-range", "");
        CHECK(userns_lock_cleanup_stale(s.lock_dir) == 1);
        _cleanup_free_ char *g = p("locks/589824"), *h = p("locks/not-a-range");
        CHECK(access(g, F_OK) < 0);
        CHECK(access(h, F_OK) == 0);
        sources_free(&s);
}

static void test_allocate(void) {
        UidSources s = sources();
        UserNamespaceRange a = {}, b = {}, c = {};
        _cleanup_free_ char *d = NULL;
        uint32_t first = userns_pick_candidate("web");

        reset_files();
        /* stable: the hashed candidate, again after a release */
        CHECK(userns_range_allocate(&s, USERNS_PICK, (UidRange) {}, "web", 0, &a, &d) == 0);
        CHECK(a.range.start == first && a.range.count == 65536 && a.n_locks == 1);
        /* a second machine of the same name hash never gets the same range while the first runs */
        CHECK(userns_range_allocate(&s, USERNS_PICK, (UidRange) {}, "web", 0, &b, &d) == 0);
        CHECK(b.range.start != a.range.start && !uid_range_overlaps(a.range, b.range));
        userns_range_release(&b);
        userns_range_release(&a);
        CHECK(userns_range_allocate(&s, USERNS_PICK, (UidRange) {}, "web", 0, &a, &d) == 0 && a.range.start == first);
        userns_range_release(&a);

        /* host ids and subuid ranges are avoided */
        char buf[128];
        snprintf(buf, sizeof buf, "root:x:0:0::/:/bin/sh\nsvc:x:%u:%u::/:/bin/sh\n", first + 5, first + 5);
        put("passwd", buf);
        snprintf(buf, sizeof buf, "alice:%u:65536\n", first + USERNS_RANGE_SIZE);
        put("subgid", buf);
        CHECK(userns_range_allocate(&s, USERNS_PICK, (UidRange) {}, "web", 0, &a, &d) == 0);
        CHECK(a.range.start != first && a.range.start != first + USERNS_RANGE_SIZE);
        userns_range_release(&a);

        /* a running user namespace (an nspawn -U, a rootless podman) is avoided */
        reset_files();
        snprintf(buf, sizeof buf, "0 %u 65536\n", first);
        put("proc/4242/uid_map", buf);
        CHECK(userns_range_allocate(&s, USERNS_PICK, (UidRange) {}, "web", 0, &a, &d) == 0 && a.range.start != first);
        userns_range_release(&a);

        /* a fixed range: must be free, and is locked like a picked one */
        reset_files();
        CHECK(userns_range_allocate(&s, USERNS_FIXED, (UidRange) { first, 65536 }, "x", 0, &a, &d) == 0);
        CHECK(userns_range_allocate(&s, USERNS_PICK, (UidRange) {}, "web", 0, &b, &d) == 0 && b.range.start != first);
        free(d), d = NULL;
        CHECK(userns_range_allocate(&s, USERNS_FIXED, (UidRange) { first + 1000, 10 }, "y", 0, &c, &d) == -EADDRINUSE);
        CHECK(d != NULL);
        free(d), d = NULL;
        CHECK(userns_range_allocate(&s, USERNS_FIXED, (UidRange) { 65000, 1000 }, "y", 0, &c, &d) == -EADDRINUSE);
        CHECK(d && strstr(d, "65534"));
        free(d), d = NULL;
        userns_range_release(&b);
        userns_range_release(&a);
        /* a range across two blocks locks both */
        CHECK(userns_range_allocate(&s, USERNS_FIXED, (UidRange) { USERNS_PICK_MIN + 60000, 10000 }, "x", 0, &a,
                                    &d) == 0 && a.n_locks == 2);
        userns_range_release(&a);

        /* a shifted tree keeps its range; an unshifted one (root, or odd owners) is picked for */
        CHECK(userns_range_allocate(&s, USERNS_PICK, (UidRange) {}, "web", 0x1230000, &a, &d) == 0 &&
              a.range.start == 0x1230000);
        userns_range_release(&a);
        CHECK(userns_range_allocate(&s, USERNS_PICK, (UidRange) {}, "web", 1000, &a, &d) == 0 && a.range.start == first);
        userns_range_release(&a);
        /* yes: the owner of the tree; 0 is the host's own ids */
        CHECK(userns_range_allocate(&s, USERNS_YES, (UidRange) {}, "web", 0x1230000, &a, &d) == 0 &&
              a.range.start == 0x1230000 && a.n_locks == 1);
        userns_range_release(&a);
        CHECK(userns_range_allocate(&s, USERNS_YES, (UidRange) {}, "web", 0, &a, &d) == 0 && a.range.start == 0 &&
              a.n_locks == 0);
        free(d), d = NULL;
        CHECK(userns_range_allocate(&s, USERNS_YES, (UidRange) {}, "web", 1000, &a, &d) == -EINVAL && d);
        free(d), d = NULL;
        CHECK(userns_range_allocate(&s, USERNS_IDENTITY, (UidRange) {}, "web", 0, &a, &d) == 0 &&
              a.range.start == 0 && a.range.count == 65536);

        _cleanup_free_ char *locks = p("locks");
        CHECK(userns_lock_cleanup_stale(locks) == 0); /* every release removed its files */
        sources_free(&s);
}

int main(void) {
        static const TapCase cases[] = {
                { "parse", test_parse },
                { "enums", test_enums },
                { "overlap", test_overlap },
                { "candidate", test_candidate },
                { "pick_free", test_pick_free },
                { "map_lines", test_map_lines },
                { "map_format", test_map_format },
                { "bind_user_ids", test_bind_user_ids },
                { "bind_user_records", test_bind_user_records },
                { "collect", test_collect },
                { "locks", test_locks },
                { "allocate", test_allocate },
        };
        int r;

        if (!mkdtemp(tmpdir))
                return EXIT_FAILURE;
        r = tap_run(cases, ELEMENTSOF(cases));
        (void) rm_rf(tmpdir);
        return r;
}
