/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "berth-limits.h"
#include "log.h"
#include "registry.h"
#include "util.h"

/* The effective uid of process PID as the host sees it ("Uid:" of its status: real, effective,
 * saved, fs) */
static int euid_of(int proc_fd, const char *pid, uid_t *ret) {
        _cleanup_fclose_ FILE *f = NULL;
        char path[300], line[256];
        unsigned r, e;
        int fd;

        snprintf(path, sizeof path, "%s/status", pid);
        fd = openat(proc_fd, path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        f = fdopen(fd, "re");
        if (!f) {
                safe_close(fd);
                return negative_errno();
        }
        while (fgets(line, sizeof line, f))
                if (sscanf(line, "Uid: %u %u", &r, &e) == 2) {
                        *ret = (uid_t) e;
                        return 0;
                }
        return -EIO;
}

/* Whom the process's inotify instances are charged to at the host's level: its own euid in the
 * host's user namespace, else the owner of its user namespace (made by root: root). Approximate
 * for nested user namespaces, which are charged to whoever made the outermost one. */
static bool charged_to_root(int proc_fd, const char *pid, ino_t host_userns) {
        _cleanup_close_ int ns = -EBADF;
        char path[300];
        struct stat st;
        uid_t uid;

        snprintf(path, sizeof path, "%s/ns/user", pid);
        ns = openat(proc_fd, path, O_RDONLY | O_CLOEXEC);
        if (ns < 0 || fstat(ns, &st) < 0)
                return false;
        if (st.st_ino == host_userns)
                return euid_of(proc_fd, pid, &uid) >= 0 && uid == 0;
        if (ioctl(ns, NS_GET_OWNER_UID, &uid) < 0)
                return false;
        return uid == 0;
}

static unsigned inotify_fds_of(int proc_fd, const char *pid) {
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        char path[300], link[64];
        unsigned n = 0;
        int fd;

        snprintf(path, sizeof path, "%s/fd", pid);
        fd = openat(proc_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return 0;
        }
        while ((de = readdir(d))) {
                ssize_t k = readlinkat(dirfd(d), de->d_name, link, sizeof link - 1);
                if (k <= 0)
                        continue;
                link[k] = 0;
                if (streq(link, "anon_inode:inotify"))
                        n++;
        }
        return n;
}

unsigned inotify_instances_of_pid(pid_t pid) {
        _cleanup_close_ int proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        char name[32];

        if (proc_fd < 0)
                return 0;
        snprintf(name, sizeof name, "%i", (int) pid);
        return inotify_fds_of(proc_fd, name);
}

int inotify_instances_of_root(unsigned *ret) {
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        struct stat st;
        unsigned n = 0;

        if (stat("/proc/self/ns/user", &st) < 0)
                return negative_errno();
        d = opendir("/proc");
        if (!d)
                return negative_errno();
        /* a process's instances, counted once per process: threads share them */
        while ((de = readdir(d))) {
                unsigned k;

                if (de->d_name[0] < '1' || de->d_name[0] > '9')
                        continue;
                k = inotify_fds_of(dirfd(d), de->d_name);
                if (k > 0 && charged_to_root(dirfd(d), de->d_name, st.st_ino))
                        n += k;
        }
        *ret = n;
        return 0;
}

/* tasks on the host: the 4th field of /proc/loadavg is RUNNING/TOTAL */
static int tasks_in_use(unsigned *ret) {
        _cleanup_free_ char *s = NULL;
        unsigned running, total;
        int r;

        r = read_one_line_file("/proc/loadavg", &s);
        if (r < 0)
                return r;
        if (sscanf(s, "%*s %*s %*s %u/%u", &running, &total) != 2)
                return -EIO;
        *ret = total;
        return 0;
}

static const HostLimit host_limits[] = {
        { "fs.inotify.max_user_instances", "fs/inotify/max_user_instances", "inotify instances", 10, 1024,
          inotify_instances_of_root, .costly = true },
        { "kernel.pid_max", "kernel/pid_max", "process IDs", 64, 4194304, tasks_in_use },
};

static int limit_value(const HostLimit *l, unsigned *ret) {
        _cleanup_free_ char *s = NULL;
        char path[128];
        int r;

#if BERTH_TEST_HOOKS
        /* BERTH_TEST_HOST_LIMIT=NAME=VALUE: the value to assume for NAME (limits are host-wide: a
         * test must not lower the real one while other tests run) */
        const char *t = getenv("BERTH_TEST_HOST_LIMIT");
        size_t k = strlen(l->sysctl);
        if (t && strncmp(t, l->sysctl, k) == 0 && t[k] == '=')
                return safe_atou(t + k + 1, ret);
#endif
        snprintf(path, sizeof path, "/proc/sys/%s", l->path);
        r = read_one_line_file(path, &s);
        if (r < 0)
                return r;
        return safe_atou(s, ret);
}

/* A costly count (inotify instances: a walk of every fd of every process) is made at most once in
 * COUNT_FRESH_USEC host-wide. A fleet started at once would otherwise walk its N guests' processes
 * N times, a cost that grows with the square of the fleet and lands on the same busy CPUs the
 * guests boot on. The last count is kept in RUN/host-limits/SYSCTL ("USEC COUNT STARTS", under
 * its flock); a start within that time takes it, plus what a guest takes for each start since
 * (this one too), as its estimate, and counts again only when that estimate comes near the limit,
 * where the warning matters. An estimate only ever errs high. */
#define COUNT_FRESH_USEC (5 * USEC_PER_SEC)

static int in_use_estimated(const HostLimit *l, unsigned max, unsigned *ret) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        unsigned long long at;
        unsigned count, starts, used;
        uint64_t now = now_usec(CLOCK_BOOTTIME), fresh = COUNT_FRESH_USEC;
        char buf[96];
        ssize_t n;
        int r;

#if BERTH_TEST_HOOKS
        /* BERTH_TEST_COUNT_FRESH_SEC=N: how long a count stays fresh, for a test on a busy machine */
        unsigned t;
        if (safe_atou(getenv("BERTH_TEST_COUNT_FRESH_SEC"), &t) >= 0)
                fresh = t * USEC_PER_SEC;
#endif

        path = strjoin(registry_run_dir(), "/host-limits/", l->sysctl);
        if (!path)
                return -ENOMEM;
        r = mkdir_parents(path, 0755);
        if (r >= 0)
                fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0600);
        if (fd < 0 || flock(fd, LOCK_EX) < 0)
                return l->in_use(ret); /* no shared count: count */

        n = pread(fd, buf, sizeof buf - 1, 0);
        buf[MAX(n, 0)] = 0;
        if (n > 0 && sscanf(buf, "%llu %u %u", &at, &count, &starts) == 3 && at <= now &&
            now - at < fresh) {
                used = count + l->per_guest * (starts + 1);
                if (used + l->per_guest <= max) {
                        snprintf(buf, sizeof buf, "%llu %u %u\n", at, count, starts + 1);
                        if (pwrite(fd, buf, strlen(buf), 0) >= 0)
                                (void) ftruncate(fd, (off_t) strlen(buf));
                        *ret = used;
                        return 0;
                }
        }
        r = l->in_use(&used);
        if (r < 0)
                return r;
        snprintf(buf, sizeof buf, "%llu %u 0\n", (unsigned long long) now, used);
        if (pwrite(fd, buf, strlen(buf), 0) >= 0)
                (void) ftruncate(fd, (off_t) strlen(buf));
        *ret = used;
        return 0;
}

int host_limits_check(const char *machine, bool after_failure) {
        int n = 0;

        for (size_t i = 0; i < ELEMENTSOF(host_limits); i++) {
                const HostLimit *l = &host_limits[i];
                unsigned max, used;

                if (limit_value(l, &max) < 0 ||
                    (l->costly && !after_failure ? in_use_estimated(l, max, &used) : l->in_use(&used)) < 0)
                        continue; /* nothing known: nothing to say */
                if (used + (after_failure ? 0 : l->per_guest) <= max && !(after_failure && used + 2 > max))
                        continue;
                if (after_failure)
                        log_warning("Machine '%s' may have failed for want of %s: %u of the host's %u are in use "
                                    "(%s). Raise it: sysctl -w %s=%u.",
                                    machine, l->what, used, max, l->sysctl, l->sysctl, l->suggest);
                else
                        log_warning("Machine '%s' may fail to boot: %u of the host's %u %s are in use (%s), and a "
                                    "booted systemd takes about %u. Raise it: sysctl -w %s=%u.",
                                    machine, used, max, l->what, l->sysctl, l->per_guest, l->sysctl, l->suggest);
                n++;
        }
        return n;
}
