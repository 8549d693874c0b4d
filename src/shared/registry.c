/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "machine-name.h"
#include "registry.h"
#include "util.h"

/* Ownership of a machine is the flock() on RUN/locks/NAME.lock, nothing else:
 * the kernel drops it when the owner dies however it dies, so a record whose
 * lock can be taken is stale by definition. PIDs in the record are for humans
 * and for berthctl, never proof of life (they get reused). */

static char *run_dir_override = NULL;

int registry_set_run_dir(const char *path) {
        return free_and_strdup(&run_dir_override, path);
}

const char *registry_run_dir(void) {
        const char *e;

        if (run_dir_override)
                return run_dir_override;
        e = getenv("BERTH_RUN_DIR");
        if (!isempty(e) && path_is_absolute(e))
                return e;
        return BERTH_RUN_DIR;
}

static int registry_path(const char *sub, const char *name, const char *suffix, char **ret) {
        char *p;

        if (!machine_name_is_valid(name))
                return -EINVAL;
        p = strjoin(registry_run_dir(), "/", sub, "/", name, strempty(suffix));
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

int registry_scratch_dir(const char *name, char **ret) {
        return registry_path("scratch", name, NULL, ret);
}

MachineRecord *machine_record_free(MachineRecord *r) {
        if (!r)
                return NULL;
        free(r->name);
        free(r->root);
        free(r->unit);
        free(r->state);
        free(r->cgroup);
        strv_free(r->cgroup_paths);
        strv_free(r->cgroup_detached);
        strv_free(r->scratch);
        strv_free(r->loop_devices);
        free(r->uuid);
        free(r->class);
        free(r->service);
        free(r->console);
        strv_free(r->syscall_allow);
        strv_free(r->syscall_deny);
        strv_free(r->network_links);
        free(r->network_zone);
        strv_free(r->interfaces);
        strv_free(r->ports);
        free(r->nft_table);
        free(r);
        return NULL;
}

/* The PID that holds the flock() on FD's inode exclusively, from /proc/locks (by device and
 * inode; lines with "->" are waiters, not holders): > 0 that PID, 0 nobody exclusively (shared
 * holders only, probers, or none any more; a holder our PID namespace cannot see also reads 0, and
 * is waited for like a prober, up to the deadline), negative errno: cannot tell. */
static pid_t flock_exclusive_holder_of(const struct stat *st) {
        _cleanup_fclose_ FILE *f = NULL;
        char line[256];

        f = fopen("/proc/locks", "re");
        if (!f)
                return negative_errno();
        while (fgets(line, sizeof line, f)) {
                unsigned maj, min;
                unsigned long long ino;
                int pid;

                if (strstr(line, "->") ||
                    sscanf(line, "%*d: FLOCK ADVISORY WRITE %d %x:%x:%llu", &pid, &maj, &min, &ino) != 4)
                        continue;
                if (maj == major(st->st_dev) && min == minor(st->st_dev) && ino == (unsigned long long) st->st_ino)
                        return pid;
        }
        return 0;
}

static pid_t flock_exclusive_holder(int fd) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return negative_errno();
        return flock_exclusive_holder_of(&st);
}

/* Whether PID, the exclusive holder of NAME's lock, is NAME's running instance: its record names
 * it. Otherwise it is another start's stale cleanup (stale_cleanup_all() locks a dead instance's
 * name while it removes what that left), or an instance so new that it has not written its record
 * yet: both are over soon. */
static bool holder_is_owner(const char *name, pid_t pid) {
        _cleanup_(machine_record_freep) MachineRecord *rec = NULL;

        return registry_read(name, &rec) >= 0 && rec->pid == pid;
}

/* flock() and unlink() race: A unlinks the lock file at exit, B had opened it
 * just before and gets the lock after A closes, C meanwhile creates a fresh
 * file and locks that one too: two owners. So after taking the lock we check
 * that the path still names the inode we locked, and start over if not. With
 * that check, removing lock files at exit is safe, and /run does not fill up
 * with one lock file per machine ever started. */
/* NAME: whose lock PATH is, to tell its owner from those that hold it for a moment; NULL: do not
 * wait for anyone. */
static int lock_file(const char *path, const char *name, int *ret_fd) {
        unsigned waited_ms = 0;

        for (unsigned attempt = 0;; attempt++) {
                _cleanup_close_ int fd = -EBADF;
                struct stat a, b;

                /* root's alone: whoever may open a lock file may flock() it, and a user who held a
                 * dead instance's lock (its file stays behind) would keep that machine from ever
                 * starting again. Users see who runs through /proc/locks (registry_is_live()). */
                fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0600);
                if (fd < 0)
                        return negative_errno();
                if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                        unsigned ms;
                        pid_t holder;

                        if (errno != EWOULDBLOCK)
                                return negative_errno();
                        if (!name)
                                return -EBUSY;
                        /* The machine is taken only if its running instance holds the lock. Others
                         * hold it for a moment: probers (registry_is_live(), shared: every start's
                         * stale cleanup probes every record, berthctl does too) and another start
                         * cleaning up after a dead instance of this name (exclusive). Under load
                         * the scheduler stretches that moment: in a fleet of 120 started at once,
                         * one start was called "already running" after the 62 ms we used to wait.
                         * Wait for those as long as they take, up to 10 s; where /proc/locks
                         * cannot tell, 62 ms as before. */
                        holder = flock_exclusive_holder(fd);
                        if ((holder > 0 && holder_is_owner(name, holder)) || (holder < 0 && attempt >= 5) ||
                            waited_ms >= 10000)
                                return -EBUSY;
                        ms = MIN(2u << MIN(attempt, 5u), 50u);
                        (void) usleep(ms * 1000);
                        waited_ms += ms;
                        continue;
                }
                if (fstat(fd, &a) < 0)
                        return negative_errno();
                if (stat(path, &b) < 0) {
                        if (errno == ENOENT)
                                continue;
                        return negative_errno();
                }
                if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
                        continue;
                *ret_fd = TAKE_FD(fd);
                return 0;
        }
}

static int lock_machine(const char *name, bool wait, int *ret_fd) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = registry_path("locks", name, ".lock", &path);
        if (r < 0)
                return r;
        r = mkdir_parents(path, 0755);
        if (r < 0)
                return r;
        return lock_file(path, wait ? name : NULL, ret_fd);
}

int registry_lock_machine(const char *name, int *ret_fd) {
        return lock_machine(name, true, ret_fd);
}

int registry_try_lock_machine(const char *name, int *ret_fd) {
        return lock_machine(name, false, ret_fd);
}

int registry_lock_root(const char *directory, bool shared, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;

        /* The lock sits on the tree's (or image's) own inode, not on a file derived from its
         * path, so that two spellings of one tree (symlinks, bind mounts) still
         * collide. Shared for users that never write to the tree (ephemeral,
         * read-only), exclusive for everyone else. */
        fd = open(directory, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return negative_errno();
        return registry_lock_root_fd(TAKE_FD(fd), shared, ret_fd);
}

int registry_lock_root_fd(int fd, bool shared, int *ret_fd) {
        _cleanup_close_ int f = fd;

        if (flock(f, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? -EBUSY : negative_errno();
        *ret_fd = TAKE_FD(f);
        return 0;
}

int registry_is_live(const char *name) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r;

        r = registry_path("locks", name, ".lock", &path);
        if (r < 0)
                return r;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        if (fd < 0 && errno == EACCES) {
                /* a user's berthctl: the lock file is root's (see lock_file()), the kernel's table
                 * of locks says whether someone holds it exclusively */
                struct stat st;
                pid_t holder;

                if (lstat(path, &st) < 0)
                        return errno == ENOENT ? 0 : negative_errno();
                holder = flock_exclusive_holder_of(&st);
                return holder < 0 ? -EACCES : holder > 0;
        }
        if (fd < 0)
                return errno == ENOENT ? 0 : negative_errno();
        /* A shared probe: it conflicts with the owner's exclusive lock but not
         * with other probers, and is dropped at once (close) if we got it. */
        if (flock(fd, LOCK_SH | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? 1 : negative_errno();
        return 0;
}

int registry_is_running(const char *name) {
        _cleanup_free_ char *path = NULL;
        struct stat st;
        pid_t holder;
        int r;

        r = registry_is_live(name);
        if (r <= 0)
                return r;
        r = registry_path("locks", name, ".lock", &path);
        if (r < 0)
                return r;
        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        holder = flock_exclusive_holder_of(&st);
        if (holder < 0)
                return 1; /* cannot tell: held is running, as registry_is_live() says */
        if (holder == 0)
                return registry_is_live(name); /* let go since, or a holder we cannot see */
        return holder_is_owner(name, holder);
}

static int fput_escaped(FILE *f, const char *key, const char *value) {
        if (!value)
                return 0;
        fputs(key, f);
        fputc('=', f);
        for (const char *p = value; *p; p++) {
                if (*p == '\\')
                        fputs("\\\\", f);
                else if (*p == '\n')
                        fputs("\\n", f);
                else
                        fputc(*p, f);
        }
        fputc('\n', f);
        return 0;
}

static void unescape(char *s) {
        char *w = s;

        for (char *p = s; *p; p++) {
                if (*p == '\\' && p[1] == 'n') {
                        *w++ = '\n';
                        p++;
                } else if (*p == '\\' && p[1] == '\\') {
                        *w++ = '\\';
                        p++;
                } else
                        *w++ = *p;
        }
        *w = 0;
}

int registry_write(const MachineRecord *r) {
        _cleanup_free_ char *path = NULL, *tmp = NULL, *dir = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        int fd, q;

        if (!r || !machine_name_is_valid(r->name))
                return -EINVAL;
        q = registry_path("machines", r->name, NULL, &path);
        if (q < 0)
                return q;
        dir = strjoin(registry_run_dir(), "/machines");
        tmp = strjoin(dir ?: "", "/.#", r->name, ".XXXXXX");
        if (!dir || !tmp)
                return -ENOMEM;
        q = mkdir_p(dir, 0755);
        if (q < 0)
                return q;

        /* Write a temporary file next to the record and rename() it over: a
         * reader (berthctl, a stale cleanup) sees the old record or the new
         * one, never half of one. Dot files are never listed as records. */
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        f = fdopen(fd, "w");
        if (!f) {
                q = negative_errno();
                safe_close(fd);
                goto fail;
        }
        if (fchmod(fd, 0644) < 0) {
                q = negative_errno();
                goto fail;
        }

        fput_escaped(f, "NAME", r->name);
        if (r->pid > 0)
                fprintf(f, "PID=%d\n", (int) r->pid);
        if (r->leader > 0)
                fprintf(f, "LEADER=%d\n", (int) r->leader);
        fput_escaped(f, "ROOT", r->root);
        fput_escaped(f, "UNIT", r->unit);
        fput_escaped(f, "STATE", r->state);
        fput_escaped(f, "CGROUP", r->cgroup);
        STRV_FOREACH(p, r->cgroup_paths)
                fput_escaped(f, "CGROUP_PATH", *p);
        STRV_FOREACH(p, r->cgroup_detached)
                fput_escaped(f, "CGROUP_DETACHED", *p);
        STRV_FOREACH(p, r->scratch)
                fput_escaped(f, "SCRATCH", *p);
        STRV_FOREACH(p, r->loop_devices)
                fput_escaped(f, "LOOP", *p);
        fput_escaped(f, "UUID", r->uuid);
        fput_escaped(f, "CLASS", r->class);
        fput_escaped(f, "SERVICE", r->service);
        fput_escaped(f, "CONSOLE", r->console);
        if (r->timestamp > 0)
                fprintf(f, "TIMESTAMP=%llu\n", r->timestamp);
        if (r->poweroff_signal > 0)
                fprintf(f, "POWEROFF_SIGNAL=%d\n", r->poweroff_signal);
        if (r->reboot_signal > 0)
                fprintf(f, "REBOOT_SIGNAL=%d\n", r->reboot_signal);
        fprintf(f, "CAPABILITIES=%llx\n", r->capabilities);
        if (r->no_new_privileges)
                fprintf(f, "NO_NEW_PRIVILEGES=1\n");
        if (r->uid_range > 0)
                fprintf(f, "UID_SHIFT=%u\nUID_RANGE=%u\n", r->uid_shift, r->uid_range);
        STRV_FOREACH(p, r->syscall_allow)
                fput_escaped(f, "SYSCALL_ALLOW", *p);
        STRV_FOREACH(p, r->syscall_deny)
                fput_escaped(f, "SYSCALL_DENY", *p);
        STRV_FOREACH(p, r->network_links)
                fput_escaped(f, "NETWORK_LINK", *p);
        fput_escaped(f, "NETWORK_ZONE", r->network_zone);
        STRV_FOREACH(p, r->interfaces)
                fput_escaped(f, "INTERFACE", *p);
        if (r->netns > 0)
                fprintf(f, "NETNS=%llu\n", r->netns);
        STRV_FOREACH(p, r->ports)
                fput_escaped(f, "PORT", *p);
        fput_escaped(f, "NFT_TABLE", r->nft_table);

        if (fflush(f) != 0 || ferror(f)) {
                q = errno > 0 ? -errno : -EIO;
                goto fail;
        }
        if (rename(tmp, path) < 0) {
                q = negative_errno();
                goto fail;
        }
        return 0;

fail:
        (void) unlink(tmp);
        return q;
}

static int set_field(MachineRecord *m, const char *key, const char *value) {
        static const struct {
                const char *key;
                size_t offset;
        } strings[] = {
                { "NAME", offsetof(MachineRecord, name) },     { "ROOT", offsetof(MachineRecord, root) },
                { "UNIT", offsetof(MachineRecord, unit) },     { "STATE", offsetof(MachineRecord, state) },
                { "CGROUP", offsetof(MachineRecord, cgroup) }, { "UUID", offsetof(MachineRecord, uuid) },
                { "CLASS", offsetof(MachineRecord, class) },   { "SERVICE", offsetof(MachineRecord, service) },
                { "CONSOLE", offsetof(MachineRecord, console) },
                { "NETWORK_ZONE", offsetof(MachineRecord, network_zone) },
                { "NFT_TABLE", offsetof(MachineRecord, nft_table) },
        };

        for (size_t i = 0; i < ELEMENTSOF(strings); i++)
                if (streq(key, strings[i].key))
                        return free_and_strdup((char **) ((char *) m + strings[i].offset), value);
        if (streq(key, "CGROUP_PATH"))
                return strv_extend(&m->cgroup_paths, value);
        if (streq(key, "CGROUP_DETACHED"))
                return strv_extend(&m->cgroup_detached, value);
        if (streq(key, "SCRATCH"))
                return strv_extend(&m->scratch, value);
        if (streq(key, "LOOP"))
                return strv_extend(&m->loop_devices, value);
        if (streq(key, "NETWORK_LINK"))
                return strv_extend(&m->network_links, value);
        if (streq(key, "INTERFACE"))
                return strv_extend(&m->interfaces, value);
        if (streq(key, "PORT"))
                return strv_extend(&m->ports, value);
        if (streq(key, "NETNS")) {
                (void) safe_atollu(value, &m->netns); /* a garbled number is as good as none */
                return 0;
        }
        if (streq(key, "PID")) {
                (void) parse_pid(value, &m->pid); /* a garbled number is as good as none */
                return 0;
        }
        if (streq(key, "LEADER")) {
                (void) parse_pid(value, &m->leader); /* a garbled number is as good as none */
                return 0;
        }
        if (streq(key, "TIMESTAMP")) {
                (void) safe_atollu(value, &m->timestamp); /* a garbled number is as good as none */
                return 0;
        }
        if (streq(key, "POWEROFF_SIGNAL")) {
                (void) safe_atoi(value, &m->poweroff_signal);
                return 0;
        }
        if (streq(key, "REBOOT_SIGNAL")) {
                (void) safe_atoi(value, &m->reboot_signal);
                return 0;
        }
        if (streq(key, "CAPABILITIES")) {
                char *e = NULL;
                errno = 0;
                unsigned long long v = strtoull(value, &e, 16);
                if (errno == 0 && e && *e == 0)
                        m->capabilities = v;
                return 0;
        }
        if (streq(key, "NO_NEW_PRIVILEGES")) {
                m->no_new_privileges = parse_boolean(value) > 0;
                return 0;
        }
        if (streq(key, "UID_SHIFT") || streq(key, "UID_RANGE")) {
                /* a garbled value reads as no user namespace */
                (void) safe_atou(value, streq(key, "UID_SHIFT") ? &m->uid_shift : &m->uid_range);
                return 0;
        }
        if (streq(key, "SYSCALL_ALLOW"))
                return strv_extend(&m->syscall_allow, value);
        if (streq(key, "SYSCALL_DENY"))
                return strv_extend(&m->syscall_deny, value);
        return 0; /* unknown keys: written by a newer berth, ignore */
}

int registry_read(const char *name, MachineRecord **ret) {
        _cleanup_(machine_record_freep) MachineRecord *m = NULL;
        _cleanup_free_ char *path = NULL, *data = NULL;
        char *line, *saveptr = NULL;
        int r;

        r = registry_path("machines", name, NULL, &path);
        if (r < 0)
                return r;
        r = read_full_file(path, &data, NULL);
        if (r < 0)
                return r;
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        for (line = strtok_r(data, "\n", &saveptr); line; line = strtok_r(NULL, "\n", &saveptr)) {
                char *eq = strchr(line, '=');

                if (!eq || line[0] == '#')
                        continue;
                *eq = 0;
                unescape(eq + 1);
                r = set_field(m, line, eq + 1);
                if (r < 0)
                        return r;
        }
        /* The file name is what identifies the record; trust it over the contents. */
        r = free_and_strdup(&m->name, name);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

/* The temporary files of registry_write() for NAME (".#NAME.XXXXXX"), which a writer killed between
 * mkostemp() and rename() leaves. Only for the holder of the machine's lock, which no writer then
 * is. Returns how many it removed. */
int registry_remove_temp_records(const char *name) {
        _cleanup_free_ char *dir = NULL, *prefix = NULL;
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int n = 0;

        if (!machine_name_is_valid(name))
                return -EINVAL;
        dir = strjoin(registry_run_dir(), "/machines");
        prefix = strjoin(".#", name, ".");
        if (!dir || !prefix)
                return -ENOMEM;
        d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : negative_errno();
        while ((de = readdir(d))) {
                const char *rest = startswith_ptr(de->d_name, prefix);

                /* exactly mkostemp()'s six characters: ".#a.b.XXXXXX" is machine "a.b"'s, not "a"'s */
                if (!rest || strlen(rest) != 6 || strchr(rest, '.'))
                        continue;
                if (unlinkat(dirfd(d), de->d_name, 0) >= 0)
                        n++;
        }
        return n;
}

int registry_remove(const char *name) {
        _cleanup_free_ char *record = NULL, *scratch = NULL, *lock = NULL;
        int r, ret = 0;

        r = registry_path("machines", name, NULL, &record);
        if (r < 0)
                return r;
        r = registry_path("scratch", name, NULL, &scratch);
        if (r < 0)
                return r;
        r = registry_path("locks", name, ".lock", &lock);
        if (r < 0)
                return r;
        if (unlink(record) < 0 && errno != ENOENT)
                ret = negative_errno();
        r = rm_rf(scratch);
        if (r < 0 && ret == 0)
                ret = r;
        /* Last, and only by the lock's holder: see lock_file() for why this is safe. */
        if (unlink(lock) < 0 && errno != ENOENT && ret == 0)
                ret = negative_errno();
        return ret;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char * const *) a, *(char * const *) b);
}

int registry_list(char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_closedir_ DIR *d = NULL;
        _cleanup_free_ char *dir = NULL;
        struct dirent *de;
        int r;

        dir = strjoin(registry_run_dir(), "/machines");
        if (!dir)
                return -ENOMEM;
        d = opendir(dir);
        if (!d) {
                if (errno != ENOENT)
                        return negative_errno();
        } else
                while ((de = readdir(d))) {
                        /* temporaries are dot files, and no machine name starts with a dot */
                        if (!machine_name_is_valid(de->d_name))
                                continue;
                        if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
                                continue;
                        r = strv_extend(&l, de->d_name);
                        if (r < 0)
                                return r;
                }
        if (!l) {
                l = calloc(1, sizeof(char *));
                if (!l)
                        return -ENOMEM;
        }
        qsort(l, strv_length(l), sizeof(char *), cmp_str);
        *ret = TAKE_PTR(l);
        return 0;
}
