/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "registry.h"
#include "util.h"

/* The registry pointed at a temporary directory: no root needed. */

static unsigned n_test = 0, n_failed = 0;

static void ok(bool cond, const char *name) {
        n_test++;
        if (!cond)
                n_failed++;
        printf("%sok %u - %s\n", cond ? "" : "not ", n_test, name);
}

static char *path_in(const char *dir, const char *rel) {
        char *p = strjoin(dir, "/", rel);
        if (!p)
                abort();
        return p;
}

static bool exists(const char *dir, const char *rel) {
        _cleanup_free_ char *p = path_in(dir, rel);
        return access(p, F_OK) >= 0;
}

static mode_t mode_of(const char *dir, const char *rel) {
        _cleanup_free_ char *p = path_in(dir, rel);
        struct stat st;
        return stat(p, &st) < 0 ? (mode_t) -1 : (st.st_mode & 07777);
}

static void test_round_trip(void) {
        _cleanup_(machine_record_freep) MachineRecord *back = NULL;
        char *paths[] = { (char *) "/sys/fs/cgroup/unified/berth-foo/payload",
                          (char *) "/sys/fs/cgroup/pids/berth-foo/payload", NULL };
        char *detached[] = { (char *) "name=foo:/berth-foo", (char *) "devices:/berth-foo/policy/payload",
                             NULL };
        char *scratch[] = { (char *) "/var/tmp/work dir", NULL };
        char *loops[] = { (char *) "/dev/loop3", (char *) "/dev/loop12", NULL };
        char *ports[] = { (char *) "tcp:8080:80", (char *) "udp:53:53", NULL };
        MachineRecord r = {
                .name = (char *) "foo",
                .pid = 1234,
                .leader = 1240,
                .root = (char *) "/srv/odd\\name\nwith newline=and equals",
                .state = (char *) "running",
                .cgroup = (char *) "berth-foo",
                .cgroup_paths = paths,
                .cgroup_detached = detached,
                .scratch = scratch,
                .loop_devices = loops,
                .uuid = (char *) "0123456789abcdef0123456789abcdef",
                .class = (char *) "container",
                .service = (char *) "berth",
                .timestamp = 1700000000123456ULL,
                .uid_shift = 1879048192,
                .uid_range = 65536,
                .netns = 4026531840ULL,
                .ports = ports,
                .nft_table = (char *) "berth-foo",
        };

        ok(registry_write(&r) == 0, "write a record");
        ok(registry_read("foo", &back) == 0, "read it back");
        ok(back && streq(back->name, "foo") && back->pid == 1234 && back->leader == 1240,
           "round trip: name, pid, leader");
        ok(back && back->root && streq(back->root, r.root), "round trip: escaped backslash and newline");
        ok(back && streq(strempty(back->state), "running") && streq(strempty(back->cgroup), "berth-foo") &&
                   streq(strempty(back->uuid), r.uuid) && streq(strempty(back->class), "container") &&
                   streq(strempty(back->service), "berth") && !back->unit && !back->console,
           "round trip: strings, unset ones stay NULL");
        ok(back && strv_length(back->cgroup_paths) == 2 && streq(back->cgroup_paths[1], paths[1]) &&
                   strv_length(back->cgroup_detached) == 2 && streq(back->cgroup_detached[0], detached[0]) &&
                   streq(back->cgroup_detached[1], detached[1]) &&
                   strv_length(back->scratch) == 1 && streq(back->scratch[0], scratch[0]) &&
                   strv_length(back->loop_devices) == 2 && streq(back->loop_devices[1], loops[1]),
           "round trip: repeated keys");
        ok(back && back->timestamp == r.timestamp, "round trip: timestamp");
        ok(back && back->uid_shift == 1879048192 && back->uid_range == 65536, "round trip: the user namespace's range");
        ok(back && back->netns == 4026531840ULL && strv_length(back->ports) == 2 && streq(back->ports[1], "udp:53:53") &&
                   streq(strempty(back->nft_table), "berth-foo"),
           "round trip: network namespace, ports, nftables table");

        r.state = (char *) "stopping";
        ok(registry_write(&r) == 0, "rewrite the record");
        machine_record_free(back);
        back = NULL;
        ok(registry_read("foo", &back) == 0 && streq(strempty(back->state), "stopping"), "rewrite replaced it");
}

static void test_files(const char *dir) {
        MachineRecord r = { .name = (char *) "bar" };
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ char *junk = path_in(dir, "machines/.#bar.XXXXXX");
        MachineRecord *m = NULL;

        ok(mode_of(dir, "machines/foo") == 0644 && mode_of(dir, "machines") == 0755, "modes 0644 and 0755");
        ok(registry_write(&r) == 0, "write a second record");
        (void) write_string_file(junk, "NAME=bar\n", O_CREAT);
        ok(registry_list(&l) == 0 && strv_length(l) == 2 && streq(l[0], "bar") && streq(l[1], "foo"),
           "list: both records, sorted, no temporaries");
        ok(registry_read("nothere", &m) == -ENOENT, "read of a missing record: -ENOENT");
        r.name = (char *) "../x";
        ok(registry_write(&r) == -EINVAL, "write with an invalid name: -EINVAL");
        ok(registry_read("a/b", &m) == -EINVAL, "read with an invalid name: -EINVAL");
        (void) unlink(junk);
}

static void test_locks(const char *dir) {
        _cleanup_close_pair_ int p[2] = { -EBADF, -EBADF };
        int fd1 = -EBADF, fd2 = -EBADF, r;
        pid_t pid;
        char c;

        ok(registry_is_live("foo") == 0, "not live before anyone locks");
        ok(registry_lock_machine("foo", &fd1) == 0, "take the lock");
        ok(fd1 >= 0 && (fcntl(fd1, F_GETFD) & FD_CLOEXEC), "lock fd is O_CLOEXEC");
        ok(registry_lock_machine("foo", &fd2) == -EBUSY, "second lock (another fd) is refused: -EBUSY");
        ok(registry_is_live("foo") == 1, "live while locked");
        ok(registry_lock_machine("foo", &fd2) == -EBUSY, "a prober does not keep the lock");
        fd1 = safe_close(fd1);
        ok(registry_is_live("foo") == 0, "not live after close");

        /* an owner in another process, killed */
        if (pipe2(p, O_CLOEXEC) < 0)
                abort();
        pid = fork();
        if (pid == 0) {
                int fd;
                if (registry_lock_machine("foo", &fd) < 0)
                        _exit(1);
                (void) write(p[1], "x", 1);
                pause();
                _exit(0);
        }
        p[1] = safe_close(p[1]);
        ok(read(p[0], &c, 1) == 1, "child took the lock");
        ok(registry_is_live("foo") == 1, "live while the child owns it");
        ok(registry_lock_machine("foo", &fd2) == -EBUSY, "refused while the child owns it");
        (void) kill(pid, SIGKILL);
        (void) waitpid(pid, NULL, 0);
        ok(registry_is_live("foo") == 0, "not live after the owner was killed");
        r = registry_lock_machine("foo", &fd2);
        ok(r == 0, "the lock can be taken after the owner died");

        ok(exists(dir, "locks/foo.lock"), "lock file exists");
        ok(registry_remove("foo") == 0, "remove");
        ok(!exists(dir, "machines/foo") && !exists(dir, "locks/foo.lock"), "remove took record and lock file");
        /* the old, unlinked lock file is still held: a new starter must not be fooled by it */
        ok(registry_lock_machine("foo", &fd1) == 0, "a new lock after remove works");
        ok(registry_is_live("foo") == 1, "and is seen as live");
        fd1 = safe_close(fd1);
        fd2 = safe_close(fd2);
}

static void test_scratch_remove(const char *dir) {
        _cleanup_free_ char *s = NULL, *f = NULL, *want = path_in(dir, "scratch/bar");
        MachineRecord r = { .name = (char *) "bar" };
        int fd = -EBADF;

        ok(registry_scratch_dir("bar", &s) == 0 && streq(s, want), "scratch dir path");
        (void) mkdir_p(s, 0755);
        f = path_in(s, "file");
        (void) touch(f, 0644);
        ok(registry_lock_machine("bar", &fd) == 0 && registry_write(&r) == 0, "lock and write bar");
        ok(registry_remove("bar") == 0 && !exists(dir, "scratch/bar") && !exists(dir, "machines/bar"),
           "remove takes the scratch dir too");
        safe_close(fd);
}

static void test_root_lock(const char *dir) {
        int a = -EBADF, b = -EBADF, c = -EBADF;

        ok(registry_lock_root(dir, false, &a) == 0, "exclusive tree lock");
        ok(registry_lock_root(dir, false, &b) == -EBUSY, "second exclusive tree lock: -EBUSY");
        ok(registry_lock_root(dir, true, &b) == -EBUSY, "shared tree lock while exclusive: -EBUSY");
        a = safe_close(a);
        ok(registry_lock_root(dir, true, &a) == 0 && registry_lock_root(dir, true, &b) == 0,
           "two shared tree locks");
        ok(registry_lock_root(dir, false, &c) == -EBUSY, "exclusive while shared: -EBUSY");
        ok(registry_lock_root("/nonexistent/tree", false, &c) == -ENOENT, "missing tree: -ENOENT");
        safe_close(a);
        safe_close(b);
}

static void test_env(const char *dir) {
        (void) setenv("BERTH_RUN_DIR", "/tmp/some/where", 1);
        (void) registry_set_run_dir(NULL);
        ok(streq(registry_run_dir(), "/tmp/some/where"), "$BERTH_RUN_DIR overrides /run/berth");
        (void) unsetenv("BERTH_RUN_DIR");
        ok(streq(registry_run_dir(), "/run/berth"), "default /run/berth");
        (void) registry_set_run_dir(dir);
}

int main(void) {
        char dir[] = "/tmp/test-registry.XXXXXX";

        if (!mkdtemp(dir)) {
                printf("1..0 # SKIP cannot create a temporary directory\n");
                return 77;
        }
        (void) registry_set_run_dir(dir);
        test_round_trip();
        test_files(dir);
        test_locks(dir);
        test_scratch_remove(dir);
        test_root_lock(dir);
        test_env(dir);
        (void) rm_rf(dir);
        printf("1..%u\n", n_test); /* TAP allows the plan last */
        return n_failed > 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
