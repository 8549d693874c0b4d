/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Parsing of --bind=, --bind-ro=, --tmpfs=, --overlay=, --overlay-ro= and
 * --inaccessible= in nspawn's syntax, and the ordering and temporary
 * directories of custom_mounts_prepare(). TAP. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth-mount.h"
#include "berth-settings.h"
#include "log.h"
#include "util.h"

static int n_test = 0, n_failed = 0;
static char *results = NULL; /* TAP lines, printed after the plan */

static void check(bool ok, const char *name) {
        char line[512];
        char *j;

        n_test++;
        if (!ok)
                n_failed++;
        snprintf(line, sizeof line, "%sok %d - %s\n", ok ? "" : "not ", n_test, name);
        j = strjoin(strempty(results), line);
        if (!j)
                abort();
        free(results);
        results = j;
}

static bool str_eq(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return streq(a, b);
}

static bool strv_eq(char **l, const char *const *expected) {
        size_t i = 0;
        for (; expected[i]; i++)
                if (!l || !l[i] || !streq(l[i], expected[i]))
                        return false;
        return !l || !l[i];
}

typedef int (*ParseFn)(Settings *s, const char *arg, bool ro);

static int parse_bind(Settings *s, const char *arg, bool ro) {
        return custom_mount_parse_bind(s, arg, ro, NULL);
}
static int parse_overlay(Settings *s, const char *arg, bool ro) {
        return custom_mount_parse_overlay(s, arg, ro, NULL);
}

static int parse_tmpfs(Settings *s, const char *arg, bool ro) {
        return custom_mount_parse_tmpfs(s, arg, NULL);
}
static int parse_inaccessible(Settings *s, const char *arg, bool ro) {
        return custom_mount_parse_inaccessible(s, arg, NULL);
}

/* Parses one argument into a fresh Settings; returns the result, *ret gets a copy of the entry. */
static int parse_one(ParseFn fn, const char *arg, bool ro, Settings *s) {
        *s = (Settings) {};
        int r = fn(s, arg, ro);
        if (r >= 0 && s->n_custom_mounts != 1)
                return -EBADMSG;
        return r;
}

static void test_bind(void) {
        Settings s;
        char *cwd = getcwd(NULL, 0);
        _cleanup_free_ char *rel = path_join(cwd, "some/dir");

        check(parse_one(parse_bind, "/a", false, &s) == 0 &&
              s.custom_mounts[0].type == CUSTOM_MOUNT_BIND && str_eq(s.custom_mounts[0].source, "/a") &&
              str_eq(s.custom_mounts[0].destination, "/a") && s.custom_mounts[0].recursive &&
              !s.custom_mounts[0].read_only,
              "bind: one path is source and destination, rbind, writable");
        settings_free(&s);

        check(parse_one(parse_bind, "/a:/b", true, &s) == 0 && str_eq(s.custom_mounts[0].source, "/a") &&
              str_eq(s.custom_mounts[0].destination, "/b") && s.custom_mounts[0].read_only,
              "bind-ro: source and destination");
        settings_free(&s);

        check(parse_one(parse_bind, "/a:/b:norbind", false, &s) == 0 && !s.custom_mounts[0].recursive,
              "bind: norbind");
        settings_free(&s);

        check(parse_one(parse_bind, "/a:/b:norbind,rbind", false, &s) == 0 &&
              s.custom_mounts[0].recursive,
              "bind: the last of rbind/norbind wins");
        settings_free(&s);

        check(parse_one(parse_bind, "/a:/b", false, &s) == 0 && s.custom_mounts[0].idmap == BIND_NOIDMAP,
              "bind: noidmap is the default");
        settings_free(&s);

        check(parse_one(parse_bind, "/a:/b:idmap,noidmap", false, &s) == 0 &&
              s.custom_mounts[0].idmap == BIND_NOIDMAP,
              "bind: noidmap");
        settings_free(&s);

        check(parse_one(parse_bind, "/a:/b:", false, &s) == 0 && s.custom_mounts[0].recursive,
              "bind: empty option list");
        settings_free(&s);

        check(parse_one(parse_bind, "/a:/b:idmap", false, &s) == 0 && s.custom_mounts[0].idmap == BIND_IDMAP,
              "bind: idmap");
        settings_free(&s);

        check(parse_one(parse_bind, "/a:/b:norbind,rootidmap", false, &s) == 0 &&
              s.custom_mounts[0].idmap == BIND_ROOTIDMAP && !s.custom_mounts[0].recursive,
              "bind: rootidmap with norbind");
        settings_free(&s);

        check(parse_one(parse_bind, "/a:/b:rootidmap,owneridmap", false, &s) == 0 &&
              s.custom_mounts[0].idmap == BIND_OWNERIDMAP,
              "bind: owneridmap, the last mapping option wins");
        settings_free(&s);

        check(parse_one(parse_bind, "/a:/b:owneridmap=5", false, &s) == -EINVAL,
              "bind: owneridmap takes no value");
        settings_free(&s);

        check(parse_one(parse_bind, "/a:/b:bogus", false, &s) == -EINVAL, "bind: unknown option");
        settings_free(&s);

        check(parse_one(parse_bind, "/a:/b:rbind:x", false, &s) == -EINVAL,
              "bind: a fourth field is an error");
        settings_free(&s);

        check(parse_one(parse_bind, "/a\\:b:/c\\\\d", false, &s) == 0 &&
              str_eq(s.custom_mounts[0].source, "/a:b") && str_eq(s.custom_mounts[0].destination, "/c\\d"),
              "bind: \\: and \\\\ escapes");
        settings_free(&s);

        check(parse_one(parse_bind, "/with\\:colon", false, &s) == 0 &&
              str_eq(s.custom_mounts[0].source, "/with:colon") &&
              str_eq(s.custom_mounts[0].destination, "/with:colon"),
              "bind: escaped colon in a single path");
        settings_free(&s);

        check(parse_one(parse_bind, "/a\\", false, &s) == -EINVAL, "bind: trailing backslash");
        settings_free(&s);

        check(parse_one(parse_bind, "+/usr/share:/mnt", false, &s) == 0 &&
              str_eq(s.custom_mounts[0].source, "+/usr/share") && str_eq(s.custom_mounts[0].destination, "/mnt"),
              "bind: + source relative to the container root");
        settings_free(&s);

        check(parse_one(parse_bind, "+/var/log", false, &s) == 0 &&
              str_eq(s.custom_mounts[0].source, "+/var/log") &&
              str_eq(s.custom_mounts[0].destination, "/var/log"),
              "bind: + source alone: destination without the +");
        settings_free(&s);

        check(parse_one(parse_bind, "+/:/mnt", false, &s) == 0 &&
              str_eq(s.custom_mounts[0].source, "+/"),
              "bind: +/ is the container root");
        settings_free(&s);

        check(parse_one(parse_bind, "+usr:/mnt", false, &s) == -EINVAL,
              "bind: + needs an absolute path");
        settings_free(&s);

        check(parse_one(parse_bind, "+/../etc:/mnt", false, &s) == -EINVAL, "bind: + with ..");
        settings_free(&s);

        check(parse_one(parse_bind, ":/scratch", false, &s) == 0 && !s.custom_mounts[0].source &&
              str_eq(s.custom_mounts[0].destination, "/scratch"),
              "bind: empty source is a temporary directory");
        settings_free(&s);

        check(parse_one(parse_bind, "", false, &s) == -EINVAL, "bind: empty argument");
        settings_free(&s);

        check(parse_one(parse_bind, ":", false, &s) == -EINVAL, "bind: empty source and destination");
        settings_free(&s);

        check(parse_one(parse_bind, "some/dir:/x", false, &s) == 0 &&
              str_eq(s.custom_mounts[0].source, rel),
              "bind: relative source is taken from the current directory");
        settings_free(&s);

        check(parse_one(parse_bind, "some/dir", false, &s) == -EINVAL,
              "bind: relative single path (destination not absolute)");
        settings_free(&s);

        check(parse_one(parse_bind, "/a:rel", false, &s) == -EINVAL, "bind: relative destination");
        settings_free(&s);

        check(parse_one(parse_bind, "/a:", false, &s) == -EINVAL, "bind: empty destination");
        settings_free(&s);

        check(parse_one(parse_bind, "/a:/x/../etc", false, &s) == -EINVAL,
              "bind: .. in the destination");
        settings_free(&s);

        check(parse_one(parse_bind, "/a:/..", false, &s) == -EINVAL, "bind: /.. as destination");
        settings_free(&s);

        check(parse_one(parse_bind, "/a:/", false, &s) == -EINVAL, "bind: the root as destination");
        settings_free(&s);

        check(parse_one(parse_bind, "/a:/x..y/.z", false, &s) == 0 &&
              str_eq(s.custom_mounts[0].destination, "/x..y/.z"),
              "bind: names with dots are fine");
        settings_free(&s);

        check(parse_one(parse_bind, "/a:/b//c/./d/", false, &s) == 0 &&
              str_eq(s.custom_mounts[0].destination, "/b/c/d"),
              "bind: destination is normalized");
        settings_free(&s);

        s = (Settings) {};
        check(custom_mount_parse_bind(&s, "/a", false, NULL) == 0 && custom_mount_parse_bind(&s, "/b:/c", true, NULL) == 0 &&
              s.n_custom_mounts == 2 && str_eq(s.custom_mounts[1].destination, "/c") &&
              s.custom_mounts[1].read_only && !s.custom_mounts[0].read_only,
              "bind: repeated options append");
        settings_free(&s);
        free(cwd);
}

static void test_tmpfs(void) {
        Settings s;

        check(parse_one(parse_tmpfs, "/t", false, &s) == 0 && s.custom_mounts[0].type == CUSTOM_MOUNT_TMPFS &&
              str_eq(s.custom_mounts[0].destination, "/t") && str_eq(s.custom_mounts[0].options, "mode=0755"),
              "tmpfs: path alone gets mode=0755");
        settings_free(&s);

        check(parse_one(parse_tmpfs, "/t:size=10M,mode=0700", false, &s) == 0 &&
              str_eq(s.custom_mounts[0].options, "size=10M,mode=0700"),
              "tmpfs: options are passed as given");
        settings_free(&s);

        check(parse_one(parse_tmpfs, "/t:", false, &s) == 0 && str_eq(s.custom_mounts[0].options, "mode=0755"),
              "tmpfs: empty options get mode=0755");
        settings_free(&s);

        check(parse_one(parse_tmpfs, "/a\\:b:size=1M", false, &s) == 0 &&
              str_eq(s.custom_mounts[0].destination, "/a:b") && str_eq(s.custom_mounts[0].options, "size=1M"),
              "tmpfs: escaped colon in the path");
        settings_free(&s);

        check(parse_one(parse_tmpfs, "tmp", false, &s) == -EINVAL, "tmpfs: relative path");
        settings_free(&s);
        check(parse_one(parse_tmpfs, "", false, &s) == -EINVAL, "tmpfs: empty path");
        settings_free(&s);
        check(parse_one(parse_tmpfs, ":mode=0755", false, &s) == -EINVAL, "tmpfs: empty path with options");
        settings_free(&s);
        check(parse_one(parse_tmpfs, "/a/../b", false, &s) == -EINVAL, "tmpfs: .. in the path");
        settings_free(&s);
        check(parse_one(parse_tmpfs, "/", false, &s) == -EINVAL, "tmpfs: the root");
        settings_free(&s);
}

static void test_overlay(void) {
        Settings s;

        check(parse_one(parse_overlay, "/l:/u", false, &s) == 0 &&
              s.custom_mounts[0].type == CUSTOM_MOUNT_OVERLAY &&
              strv_eq(s.custom_mounts[0].lower, (const char *[]) { "/l", NULL }) &&
              str_eq(s.custom_mounts[0].upper, "/u") && str_eq(s.custom_mounts[0].destination, "/u"),
              "overlay: two paths: lower, and upper that is also the mount point");
        settings_free(&s);

        check(parse_one(parse_overlay, "/l1:/l2:/u:/dst", false, &s) == 0 &&
              strv_eq(s.custom_mounts[0].lower, (const char *[]) { "/l2", "/l1", NULL }) &&
              str_eq(s.custom_mounts[0].upper, "/u") && str_eq(s.custom_mounts[0].destination, "/dst"),
              "overlay: lowers stored top-most first, upper, destination");
        settings_free(&s);

        check(parse_one(parse_overlay, "/l::/dst", false, &s) == 0 && !s.custom_mounts[0].upper &&
              strv_eq(s.custom_mounts[0].lower, (const char *[]) { "/l", NULL }),
              "overlay: empty upper is a temporary directory");
        settings_free(&s);

        check(parse_one(parse_overlay, "+/var::/var", false, &s) == 0 &&
              strv_eq(s.custom_mounts[0].lower, (const char *[]) { "+/var", NULL }) && !s.custom_mounts[0].upper &&
              str_eq(s.custom_mounts[0].destination, "/var"),
              "overlay: +/var::/var (nspawn's example)");
        settings_free(&s);

        check(parse_one(parse_overlay, "/l:+/u", false, &s) == 0 &&
              str_eq(s.custom_mounts[0].upper, "+/u") && str_eq(s.custom_mounts[0].destination, "/u"),
              "overlay: two paths with a + upper");
        settings_free(&s);

        {
                char *cwd = getcwd(NULL, 0);
                _cleanup_free_ char *u = path_join(cwd, "up"), *l = path_join(cwd, "low");
                check(parse_one(parse_overlay, "low:up", false, &s) == 0 &&
                      strv_eq(s.custom_mounts[0].lower, (const char *[]) { l, NULL }) &&
                      str_eq(s.custom_mounts[0].upper, u) && str_eq(s.custom_mounts[0].destination, u),
                      "overlay: two relative paths are made absolute, the upper one is the mount point");
                settings_free(&s);
                free(cwd);
        }

        check(parse_one(parse_overlay, "/l\\:1:/u:/d\\:x", false, &s) == 0 &&
              strv_eq(s.custom_mounts[0].lower, (const char *[]) { "/l:1", NULL }) &&
              str_eq(s.custom_mounts[0].destination, "/d:x"),
              "overlay: escaped colons");
        settings_free(&s);

        check(parse_one(parse_overlay, "/l1:/l2:/dst", true, &s) == 0 && s.custom_mounts[0].read_only &&
              !s.custom_mounts[0].upper &&
              strv_eq(s.custom_mounts[0].lower, (const char *[]) { "/l2", "/l1", NULL }) &&
              str_eq(s.custom_mounts[0].destination, "/dst"),
              "overlay-ro: every source is a lower layer");
        settings_free(&s);

        check(parse_one(parse_overlay, "/l:/u", true, &s) == 0 &&
              strv_eq(s.custom_mounts[0].lower, (const char *[]) { "/u", "/l", NULL }) &&
              str_eq(s.custom_mounts[0].destination, "/u"),
              "overlay-ro: two paths");
        settings_free(&s);

        check(parse_one(parse_overlay, "/l::/d", true, &s) == -EINVAL,
              "overlay-ro: an empty upper makes no sense");
        settings_free(&s);
        check(parse_one(parse_overlay, "/l", false, &s) == -EINVAL, "overlay: one path");
        settings_free(&s);
        check(parse_one(parse_overlay, "", false, &s) == -EINVAL, "overlay: empty");
        settings_free(&s);
        check(parse_one(parse_overlay, ":/u", false, &s) == -EINVAL, "overlay: empty lower");
        settings_free(&s);
        check(parse_one(parse_overlay, "/l:", false, &s) == -EINVAL, "overlay: empty upper of two");
        settings_free(&s);
        check(parse_one(parse_overlay, "/l:/u:rel", false, &s) == -EINVAL,
              "overlay: relative destination");
        settings_free(&s);
        check(parse_one(parse_overlay, "/l:/u:", false, &s) == -EINVAL, "overlay: empty destination");
        settings_free(&s);
        check(parse_one(parse_overlay, "/l:/u:/a/../b", false, &s) == -EINVAL,
              "overlay: .. in the destination");
        settings_free(&s);
        check(parse_one(parse_overlay, "+l:/u:/d", false, &s) == -EINVAL,
              "overlay: + needs an absolute path");
        settings_free(&s);
}

static void test_inaccessible(void) {
        Settings s;

        check(parse_one(parse_inaccessible, "/etc/shadow", false, &s) == 0 &&
              s.custom_mounts[0].type == CUSTOM_MOUNT_INACCESSIBLE &&
              str_eq(s.custom_mounts[0].destination, "/etc/shadow"),
              "inaccessible: absolute path");
        settings_free(&s);
        check(parse_one(parse_inaccessible, "etc", false, &s) == -EINVAL, "inaccessible: relative path");
        settings_free(&s);
        check(parse_one(parse_inaccessible, "", false, &s) == -EINVAL, "inaccessible: empty");
        settings_free(&s);
        check(parse_one(parse_inaccessible, "/", false, &s) == -EINVAL, "inaccessible: the root");
        settings_free(&s);
        check(parse_one(parse_inaccessible, "/a/../../etc", false, &s) == -EINVAL, "inaccessible: ..");
        settings_free(&s);
}

static void test_prepare(void) {
        Settings s = {};
        struct stat st;
        bool ok;

        /* order: by destination, parents first, stable for equal destinations */
        ok = custom_mount_parse_tmpfs(&s, "/a/b", NULL) == 0 && custom_mount_parse_tmpfs(&s, "/a-b", NULL) == 0 &&
             custom_mount_parse_tmpfs(&s, "/a:size=1M", NULL) == 0 && custom_mount_parse_tmpfs(&s, "/a:size=2M", NULL) == 0 &&
             custom_mount_parse_inaccessible(&s, "/0", NULL) == 0;
        ok = ok && custom_mounts_prepare(s.custom_mounts, s.n_custom_mounts, s.machine) == 0;
        ok = ok && s.n_custom_mounts == 5 && str_eq(s.custom_mounts[0].destination, "/0") &&
             str_eq(s.custom_mounts[1].options, "size=1M") && str_eq(s.custom_mounts[2].options, "size=2M") &&
             str_eq(s.custom_mounts[3].destination, "/a/b") && str_eq(s.custom_mounts[4].destination, "/a-b");
        check(ok, "prepare: sorted by destination, parents first, stable");
        custom_mounts_cleanup(s.custom_mounts, s.n_custom_mounts);
        settings_free(&s);

        /* a missing source is refused */
        s = (Settings) {};
        ok = custom_mount_parse_bind(&s, "/nonexistent/berth-test:/x", false, NULL) == 0;
        check(ok && custom_mounts_prepare(s.custom_mounts, s.n_custom_mounts, s.machine) == -ENOENT, "prepare: missing bind source is refused");
        settings_free(&s);

        s = (Settings) {};
        ok = custom_mount_parse_overlay(&s, "/nonexistent/berth-test::/x", false, NULL) == 0;
        check(ok && custom_mounts_prepare(s.custom_mounts, s.n_custom_mounts, s.machine) == -ENOENT, "prepare: missing overlay lower is refused");
        settings_free(&s);

        /* empty sources: temporary directories that cleanup removes, in $TMPDIR (a directory of
         * our own, not the host's /var/tmp) */
        char tmpdir[] = "/tmp/berth-test-tmpdir-XXXXXX";
        if (!mkdtemp(tmpdir)) {
                check(false, "prepare: a temporary directory for $TMPDIR");
                return;
        }
        _cleanup_free_ char *old_tmpdir = getenv("TMPDIR") ? strdup(getenv("TMPDIR")) : NULL;
        _cleanup_free_ char *tmpdir_slash = strjoin(tmpdir, "/");
        (void) setenv("TMPDIR", tmpdir, 1);
        s = (Settings) {};
        ok = custom_mount_parse_bind(&s, ":/scratch", false, NULL) == 0 &&
             custom_mount_parse_overlay(&s, "/::/o", false, NULL) == 0 && custom_mounts_prepare(s.custom_mounts, s.n_custom_mounts, s.machine) == 0;
        _cleanup_free_ char *tmp_bind = NULL, *tmp_overlay = NULL;
        if (ok) {
                tmp_bind = strdup(s.custom_mounts[1].work ?: "");
                tmp_overlay = strdup(s.custom_mounts[0].work ?: "");
        }
        check(ok && s.custom_mounts[1].source && stat(s.custom_mounts[1].source, &st) == 0 && S_ISDIR(st.st_mode) &&
                      startswith(s.custom_mounts[1].source, tmpdir_slash),
              "prepare: empty bind source becomes a directory in $TMPDIR");
        check(ok && s.custom_mounts[0].upper && stat(s.custom_mounts[0].upper, &st) == 0 &&
                      startswith(s.custom_mounts[0].upper, tmpdir_slash),
              "prepare: empty overlay upper becomes a directory in $TMPDIR");
        custom_mounts_cleanup(s.custom_mounts, s.n_custom_mounts);
        check(ok && stat(tmp_bind, &st) < 0 && errno == ENOENT && stat(tmp_overlay, &st) < 0 && errno == ENOENT,
              "cleanup: temporary directories removed");
        settings_free(&s);
        if (old_tmpdir)
                (void) setenv("TMPDIR", old_tmpdir, 1);
        else
                (void) unsetenv("TMPDIR");
        (void) rm_rf(tmpdir);

        /* a host upper directory gets a work directory next to it */
        char dir[] = "/tmp/berth-test-overlay-XXXXXX";
        if (!mkdtemp(dir)) {
                check(false, "prepare: overlay work directory next to the upper one");
                return;
        }
        _cleanup_free_ char *lower = path_join(dir, "lower"), *upper = path_join(dir, "upper");
        _cleanup_free_ char *arg = strjoin(lower, ":", upper, ":/x");
        (void) mkdir(lower, 0755);
        (void) mkdir(upper, 0755);
        s = (Settings) {};
        ok = custom_mount_parse_overlay(&s, arg, false, NULL) == 0 && custom_mounts_prepare(s.custom_mounts, s.n_custom_mounts, s.machine) == 0 &&
             s.custom_mounts[0].work && startswith(s.custom_mounts[0].work, dir) &&
             stat(s.custom_mounts[0].work, &st) == 0 && S_ISDIR(st.st_mode);
        _cleanup_free_ char *work = ok ? strdup(s.custom_mounts[0].work) : NULL;
        custom_mounts_cleanup(s.custom_mounts, s.n_custom_mounts);
        check(ok && work && stat(work, &st) < 0 && stat(upper, &st) == 0,
              "prepare: overlay work directory next to the upper one, removed at cleanup");
        settings_free(&s);
        (void) rm_rf(dir);
}

int main(void) {
        log_set_max_level(LOG_CRIT); /* expected failures log; keep TAP output clean */

        test_bind();
        test_tmpfs();
        test_overlay();
        test_inaccessible();
        test_prepare();

        printf("1..%d\n%s", n_test, strempty(results));
        free(results);
        return n_failed > 0 ? 1 : 0;
}
