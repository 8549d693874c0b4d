/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <linux/openat2.h>
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

void strv_free(char **l) {
        if (!l)
                return;
        for (char **i = l; *i; i++)
                free(*i);
        free(l);
}

size_t strv_length(char * const *l) {
        size_t n = 0;
        while (l && l[n])
                n++;
        return n;
}

int strv_consume(char ***l, char *value) {
        size_t n = strv_length(*l);
        char **c;

        if (!value)
                return -ENOMEM;
        c = realloc(*l, sizeof(char *) * (n + 2));
        if (!c) {
                free(value);
                return -ENOMEM;
        }
        c[n] = value;
        c[n + 1] = NULL;
        *l = c;
        return 0;
}

int strv_extend(char ***l, const char *value) {
        return strv_consume(l, strdup(value));
}

char **strv_copy(char * const *l) {
        char **r = calloc(strv_length(l) + 1, sizeof(char *));
        size_t i = 0;

        if (!r)
                return NULL;
        STRV_FOREACH(s, l) {
                r[i] = strdup(*s);
                if (!r[i]) {
                        strv_free(r);
                        return NULL;
                }
                i++;
        }
        return r;
}

bool strv_contains(char * const *l, const char *s) {
        STRV_FOREACH(i, l)
                if (streq(*i, s))
                        return true;
        return false;
}

int strv_split(const char *s, const char *sep, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        const char *p = s;
        int r;

        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (;;) {
                size_t k = strcspn(p, sep);
                r = strv_consume(&l, strndup(p, k));
                if (r < 0)
                        return r;
                if (p[k] == 0)
                        break;
                p += k + 1;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

char *strjoin_internal(const char *first, ...) {
        va_list ap;
        size_t l = 0;
        char *r, *p;

        va_start(ap, first);
        for (const char *s = first; s != (const char *) -1; s = va_arg(ap, const char *))
                if (s)
                        l += strlen(s);
        va_end(ap);

        r = malloc(l + 1);
        if (!r)
                return NULL;
        p = r;
        va_start(ap, first);
        for (const char *s = first; s != (const char *) -1; s = va_arg(ap, const char *))
                if (s)
                        p = stpcpy(p, s);
        va_end(ap);
        *p = 0;
        return r;
}

bool startswith(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

const char *startswith_ptr(const char *s, const char *prefix) {
        size_t l = strlen(prefix);
        return strncmp(s, prefix, l) == 0 ? s + l : NULL;
}

bool endswith(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

char *strdup_or_null(const char *s) {
        return s ? strdup(s) : NULL;
}

int free_and_strdup(char **p, const char *s) {
        char *c = NULL;

        if (s) {
                c = strdup(s);
                if (!c)
                        return -ENOMEM;
        }
        free(*p);
        *p = c;
        return 1;
}

int parse_boolean(const char *s) {
        static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" };
        static const char *const no[] = { "0", "no", "n", "false", "f", "off" };

        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(s, yes[i]) == 0)
                        return 1;
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(s, no[i]) == 0)
                        return 0;
        return -EINVAL;
}

int safe_atollu(const char *s, unsigned long long *ret) {
        char *e = NULL;
        unsigned long long v;

        if (isempty(s) || !isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &e, 10);
        if (errno > 0)
                return -errno;
        if (!e || *e)
                return -EINVAL;
        *ret = v;
        return 0;
}

int safe_atou64(const char *s, uint64_t *ret) {
        unsigned long long v;
        int r = safe_atollu(s, &v);
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

int safe_atou(const char *s, unsigned *ret) {
        unsigned long long v;
        int r = safe_atollu(s, &v);
        if (r < 0)
                return r;
        if (v > UINT_MAX)
                return -ERANGE;
        *ret = (unsigned) v;
        return 0;
}

int safe_atoi(const char *s, int *ret) {
        char *e = NULL;
        long v;

        if (isempty(s) || isspace((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        v = strtol(s, &e, 10);
        if (errno > 0)
                return -errno;
        if (!e || *e)
                return -EINVAL;
        if (v < INT_MIN || v > INT_MAX)
                return -ERANGE;
        *ret = (int) v;
        return 0;
}

int parse_pid(const char *s, pid_t *ret) {
        unsigned u;
        int r = safe_atou(s, &u);
        if (r < 0)
                return r;
        if (u == 0 || u > INT_MAX)
                return -ERANGE;
        *ret = (pid_t) u;
        return 0;
}

int parse_sec(const char *s, uint64_t *ret_usec) {
        static const struct {
                const char *suffix;
                uint64_t usec;
        } table[] = {
                { "us", 1 }, { "ms", USEC_PER_MSEC }, { "s", USEC_PER_SEC }, { "sec", USEC_PER_SEC },
                { "m", 60 * USEC_PER_SEC }, { "min", 60 * USEC_PER_SEC }, { "h", 3600 * USEC_PER_SEC },
                { "", USEC_PER_SEC },
        };
        char *e = NULL;
        double v;

        if (isempty(s))
                return -EINVAL;
        if (streq(s, "infinity")) {
                *ret_usec = UINT64_MAX;
                return 0;
        }
        if (!(isdigit((unsigned char) s[0]) || s[0] == '.'))
                return -EINVAL;
        errno = 0;
        v = strtod(s, &e);
        /* strtod() also takes exponents and hex: only plain decimals are times */
        if (errno > 0 || e == s || v < 0 || strspn(s, "0123456789.") != (size_t) (e - s))
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (streq(e, table[i].suffix)) {
                        double u = v * (double) table[i].usec;
                        /* converting a double beyond UINT64_MAX is undefined */
                        if (u >= 18446744073709551615.0)
                                return -ERANGE;
                        *ret_usec = (uint64_t) u;
                        return 0;
                }
        return -EINVAL;
}

static const char *const signal_names[_NSIG] = {
        [SIGHUP] = "HUP", [SIGINT] = "INT", [SIGQUIT] = "QUIT", [SIGILL] = "ILL", [SIGTRAP] = "TRAP",
        [SIGABRT] = "ABRT", [SIGBUS] = "BUS", [SIGFPE] = "FPE", [SIGKILL] = "KILL", [SIGUSR1] = "USR1",
        [SIGSEGV] = "SEGV", [SIGUSR2] = "USR2", [SIGPIPE] = "PIPE", [SIGALRM] = "ALRM", [SIGTERM] = "TERM",
        [SIGSTKFLT] = "STKFLT", [SIGCHLD] = "CHLD", [SIGCONT] = "CONT", [SIGSTOP] = "STOP", [SIGTSTP] = "TSTP",
        [SIGTTIN] = "TTIN", [SIGTTOU] = "TTOU", [SIGURG] = "URG", [SIGXCPU] = "XCPU", [SIGXFSZ] = "XFSZ",
        [SIGVTALRM] = "VTALRM", [SIGPROF] = "PROF", [SIGWINCH] = "WINCH", [SIGIO] = "IO", [SIGPWR] = "PWR",
        [SIGSYS] = "SYS",
};

int signal_from_string(const char *s) {
        const char *p, *q;
        int n;

        if (isempty(s))
                return -EINVAL;
        p = startswith_ptr(s, "SIG") ?: s;
        for (int i = 1; i < (int) ELEMENTSOF(signal_names); i++)
                if (signal_names[i] && streq(p, signal_names[i]))
                        return i;
        if ((q = startswith_ptr(p, "RTMIN"))) {
                if (*q == 0)
                        return SIGRTMIN;
                if (*q != '+' || !isdigit((unsigned char) q[1]) || safe_atoi(q + 1, &n) < 0 ||
                    n > SIGRTMAX - SIGRTMIN)
                        return -EINVAL;
                return SIGRTMIN + n;
        }
        if ((q = startswith_ptr(p, "RTMAX"))) {
                if (*q == 0)
                        return SIGRTMAX;
                if (*q != '-' || !isdigit((unsigned char) q[1]) || safe_atoi(q + 1, &n) < 0 ||
                    n > SIGRTMAX - SIGRTMIN)
                        return -EINVAL;
                return SIGRTMAX - n;
        }
        /* numbers only without "SIG" */
        if (p == s && isdigit((unsigned char) s[0]) && safe_atoi(s, &n) >= 0 && n > 0 && n <= SIGRTMAX)
                return n;
        return -EINVAL;
}

const char *signal_to_string(int sig, char buf[static 16]) {
        if (sig > 0 && sig < (int) ELEMENTSOF(signal_names) && signal_names[sig])
                snprintf(buf, 16, "SIG%s", signal_names[sig]);
        else if (sig >= SIGRTMIN && sig <= SIGRTMAX)
                snprintf(buf, 16, "SIGRTMIN+%i", sig - SIGRTMIN);
        else
                snprintf(buf, 16, "%i", sig);
        return buf;
}

bool path_is_absolute(const char *p) {
        return p && p[0] == '/';
}

bool path_is_normalized(const char *p) {
        if (isempty(p))
                return false;
        if (streq(p, ".") || streq(p, "..") || startswith(p, "./") || startswith(p, "../") ||
            endswith(p, "/.") || endswith(p, "/..") || strstr(p, "/./") || strstr(p, "/../") ||
            strstr(p, "//"))
                return false;
        return true;
}

bool path_is_safe(const char *p) {
        return path_is_absolute(p) && path_is_normalized(p) && strlen(p) < PATH_MAX;
}

char *path_join(const char *a, const char *b) {
        size_t la = strlen(a);

        while (*b == '/')
                b++;
        if (la == 0) /* "" + "b" -> "b", not "/b" */
                return strdup(*b ? b : "/");
        while (la > 0 && a[la - 1] == '/')
                la--;
        char *r = malloc(la + 1 + strlen(b) + 1);
        if (!r)
                return NULL;
        memcpy(r, a, la);
        r[la] = '/';
        strcpy(r + la + 1, b);
        if (*b == 0 && la > 0)
                r[la] = 0; /* "a" + "" -> "a" */
        return r;
}

int path_make_absolute_cwd(const char *p, char **ret) {
        _cleanup_free_ char *cwd = NULL;
        char *r;

        if (path_is_absolute(p))
                r = strdup(p);
        else {
                cwd = getcwd(NULL, 0);
                if (!cwd)
                        return negative_errno();
                r = path_join(cwd, p);
        }
        if (!r)
                return -ENOMEM;
        /* drop trailing slashes and "/./" runs */
        size_t l = strlen(r);
        while (l > 1 && r[l - 1] == '/')
                r[--l] = 0;
        *ret = r;
        return 0;
}

const char *path_basename(const char *p) {
        const char *s = strrchr(p, '/');
        return s ? s + 1 : p;
}

int loop_write(int fd, const void *buf, size_t n) {
        const char *p = buf;
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        return -EIO;
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

int write_string_fd(int fd, const char *s) {
        return loop_write(fd, s, strlen(s));
}

int write_string_file(const char *path, const char *s, int flags) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY | flags, 0644);
        if (fd < 0)
                return negative_errno();
        return write_string_fd(fd, s);
}

int read_full_file(const char *path, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t n = 0, allocated = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        for (;;) {
                if (allocated - n < 4096) {
                        if (allocated > 64 * 1024 * 1024)
                                return -EFBIG;
                        allocated = allocated * 2 + 4096;
                        char *b = realloc(buf, allocated + 1);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                }
                ssize_t k = read(fd, buf + n, allocated - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        if (!buf && !(buf = malloc(1)))
                return -ENOMEM;
        buf[n] = 0;
        if (ret_size)
                *ret_size = n;
        *ret = TAKE_PTR(buf);
        return 0;
}

int read_one_line_file(const char *path, char **ret) {
        char *s;
        int r = read_full_file(path, &s, NULL);
        if (r < 0)
                return r;
        s[strcspn(s, "\n")] = 0;
        *ret = s;
        return 0;
}

/* Both try the deepest directory first: where it exists (/run/berth/locks, every start) that is one
 * mkdir() and not one per component, and a missing one is made with its parents as before. */
int mkdir_parents(const char *path, mode_t mode) {
        _cleanup_free_ char *p = NULL;
        char *slash;

        if (isempty(path))
                return -EINVAL;
        p = strdup(path);
        if (!p)
                return -ENOMEM;
        slash = strrchr(p, '/');
        if (!slash || slash == p)
                return 0; /* in the working directory, or in / */
        *slash = 0;
        return mkdir_p(p, mode);
}

int mkdir_p(const char *path, mode_t mode) {
        int r;

        if (mkdir(path, mode) >= 0 || errno == EEXIST)
                return 0;
        if (errno != ENOENT)
                return negative_errno();
        r = mkdir_parents(path, mode);
        if (r < 0)
                return r;
        if (mkdir(path, mode) < 0 && errno != EEXIST)
                return negative_errno();
        return 0;
}

int touch(const char *path, mode_t mode) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, mode);
        return fd < 0 ? negative_errno() : 0;
}

int copy_file(const char *from, const char *to, mode_t mode) {
        _cleanup_close_ int in = -EBADF, out = -EBADF;
        char buf[16384];

        in = open(from, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (in < 0)
                return negative_errno();
        out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, mode);
        if (out < 0)
                return negative_errno();
        for (;;) {
                ssize_t k = read(in, buf, sizeof buf);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        return 0;
                int r = loop_write(out, buf, (size_t) k);
                if (r < 0)
                        return r;
        }
}

static int rm_rf_at(int dfd, dev_t dev) {
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int r = 0;

        d = fdopendir(dfd);
        if (!d) {
                safe_close(dfd);
                return negative_errno();
        }
        while ((de = readdir(d))) {
                struct stat st;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno != ENOENT && r == 0)
                                r = negative_errno();
                        continue;
                }
                if (S_ISDIR(st.st_mode)) {
                        if (st.st_dev != dev)
                                continue; /* a mount point: never descend */
                        /* nor into a bind mount of the same file system (a tree's owner may plant
                         * one to have us delete what it could not): RESOLVE_NO_XDEV says EXDEV */
                        int sub = openat_beneath(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY);
                        if (sub == -EXDEV)
                                continue;
                        if (sub < 0) {
                                if (r == 0)
                                        r = sub;
                                continue;
                        }
                        int q = rm_rf_at(sub, dev);
                        if (q < 0 && r == 0)
                                r = q;
                        if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT && r == 0)
                                r = negative_errno();
                } else if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT && r == 0)
                        r = negative_errno();
        }
        return r;
}

int rm_rf(const char *path) {
        struct stat st;
        int fd, r;

        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (!S_ISDIR(st.st_mode))
                return RET_NERRNO(unlink(path));
        fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        r = rm_rf_at(fd, st.st_dev);
        if (rmdir(path) < 0 && errno != ENOENT && r == 0)
                r = negative_errno();
        return r;
}

int rm_rf_at_name(int dir_fd, const char *name) {
        struct stat st;
        int fd, r;

        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (!S_ISDIR(st.st_mode))
                return RET_NERRNO(unlinkat(dir_fd, name, 0));
        /* the name may be in a hostile tree: a mount over it is never entered (EXDEV), and the
         * directory opened must be the one looked at */
        fd = openat_beneath(dir_fd, name, O_RDONLY | O_DIRECTORY);
        if (fd < 0)
                return fd;
        struct stat ost;
        if (fstat(fd, &ost) < 0 || ost.st_dev != st.st_dev || ost.st_ino != st.st_ino) {
                safe_close(fd);
                return -ESTALE;
        }
        r = rm_rf_at(fd, st.st_dev);
        if (unlinkat(dir_fd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && r == 0)
                r = negative_errno();
        return r;
}

int fd_set_cloexec(int fd, bool b) {
        int f = fcntl(fd, F_GETFD);
        if (f < 0)
                return negative_errno();
        f = b ? (f | FD_CLOEXEC) : (f & ~FD_CLOEXEC);
        return RET_NERRNO(fcntl(fd, F_SETFD, f));
}

int fd_set_nonblock(int fd, bool b) {
        int f = fcntl(fd, F_GETFL);
        if (f < 0)
                return negative_errno();
        f = b ? (f | O_NONBLOCK) : (f & ~O_NONBLOCK);
        return RET_NERRNO(fcntl(fd, F_SETFL, f));
}

static int cmp_int(const void *a, const void *b) {
        return *(const int *) a - *(const int *) b;
}

int close_all_fds(const int except[], size_t n_except) {
        int sorted[64];
        unsigned from = 3;

        if (n_except > ELEMENTSOF(sorted))
                return -E2BIG;
        memcpy(sorted, except, n_except * sizeof(int));
        qsort(sorted, n_except, sizeof(int), cmp_int);
        for (size_t i = 0; i < n_except; i++) {
                if (sorted[i] < (int) from)
                        continue;
                if ((unsigned) sorted[i] > from &&
                    syscall(SYS_close_range, from, (unsigned) sorted[i] - 1, 0) < 0)
                        return negative_errno();
                from = (unsigned) sorted[i] + 1;
        }
        return RET_NERRNO((int) syscall(SYS_close_range, from, ~0U, 0));
}

uint64_t timespec_to_usec(const struct timespec *ts) {
        return (uint64_t) ts->tv_sec * USEC_PER_SEC + (uint64_t) ts->tv_nsec / NSEC_PER_USEC;
}

uint64_t now_usec(int clock) {
        struct timespec ts;
        (void) clock_gettime(clock, &ts);
        return timespec_to_usec(&ts);
}

int id128_randomize(uint8_t ret[16]) {
        if (getrandom(ret, 16, 0) != 16)
                return negative_errno();
        /* a v4 UUID */
        ret[6] = (ret[6] & 0x0F) | 0x40;
        ret[8] = (ret[8] & 0x3F) | 0x80;
        return 0;
}

int set_detail(char **ret_detail, const char *fmt, ...) {
        va_list ap;
        char *s = NULL;

        if (!ret_detail)
                return 0;
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        free(*ret_detail);
        *ret_detail = s;
        return 0;
}

int string_table_lookup(const char *const *table, size_t n, const char *s) {
        for (size_t i = 0; s && i < n; i++)
                if (table[i] && streq(table[i], s))
                        return (int) i;
        return -EINVAL;
}

int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -EINVAL;
}

int id128_from_string(const char *s, uint8_t ret[16]) {
        uint8_t t[16];
        size_t i = 0;
        bool uuid = strlen(s) == 36;

        if (!uuid && strlen(s) != 32)
                return -EINVAL;
        for (size_t n = 0; n < 16; n++) {
                if (uuid && (i == 8 || i == 13 || i == 18 || i == 23)) {
                        if (s[i] != '-')
                                return -EINVAL;
                        i++;
                }
                int a = unhex(s[i]), b = unhex(s[i + 1]);
                if (a < 0 || b < 0)
                        return -EINVAL;
                t[n] = (uint8_t) (a << 4 | b);
                i += 2;
        }
        memcpy(ret, t, 16);
        return 0;
}

int unhexmem(const char *s, uint8_t **ret, size_t *ret_size) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t l = strlen(s);

        if (l == 0 || l % 2 != 0)
                return -EINVAL;
        buf = malloc(l / 2);
        if (!buf)
                return -ENOMEM;
        for (size_t i = 0; i < l / 2; i++) {
                int a = unhex(s[2 * i]), b = unhex(s[2 * i + 1]);
                if (a < 0 || b < 0)
                        return -EINVAL;
                buf[i] = (uint8_t) (a << 4 | b);
        }
        *ret = TAKE_PTR(buf);
        *ret_size = l / 2;
        return 0;
}

static int unbase64_char(char c) {
        static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *p = c ? strchr(alphabet, c) : NULL;
        return p ? (int) (p - alphabet) : -EINVAL;
}

int unbase64mem(const char *s, uint8_t **ret, size_t *ret_size) {
        _cleanup_free_ uint8_t *buf = NULL;
        uint32_t acc = 0;
        size_t n = 0, bits = 0, pad = 0, chars = 0;

        buf = malloc(strlen(s) / 4 * 3 + 3);
        if (!buf)
                return -ENOMEM;
        for (const char *p = s; *p; p++) {
                int v;

                if (strchr(" \t\n\r", *p))
                        continue;
                if (*p == '=') {
                        pad++;
                        chars++;
                        continue;
                }
                if (pad > 0) /* data after padding */
                        return -EINVAL;
                v = unbase64_char(*p);
                if (v < 0)
                        return -EINVAL;
                chars++;
                acc = acc << 6 | (uint32_t) v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        buf[n++] = (uint8_t) (acc >> bits);
                }
        }
        /* whole quads only, at most two '=' of padding, and no stray bits set */
        if (n == 0 || chars % 4 != 0 || pad > 2 || (acc & ((1u << bits) - 1)) != 0)
                return -EINVAL;
        *ret = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

char *id128_to_string(const uint8_t id[16], char buf[static 33]) {
        for (size_t i = 0; i < 16; i++)
                sprintf(buf + 2 * i, "%02x", id[i]);
        return buf;
}

char *id128_to_uuid_string(const uint8_t id[16], char buf[static 37]) {
        char *p = buf;
        for (size_t i = 0; i < 16; i++) {
                if (i == 4 || i == 6 || i == 8 || i == 10)
                        *p++ = '-';
                p += sprintf(p, "%02x", id[i]);
        }
        return buf;
}

#define OPEN_IN_ROOT_RETRIES 64U

int open_in_root(int root_fd, const char *path, int flags) {
        struct open_how how = {
                .flags = (uint64_t) (flags | O_CLOEXEC),
                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        };
        int fd;

        while (*path == '/')
                path++;
        /* With RESOLVE_IN_ROOT, a ".." (a symlink such as /sbin/init -> ../bin/busybox) fails with
         * EAGAIN when any rename or mount anywhere on the host raced the walk: on a busy host that is
         * common, and means nothing about the tree. Try again, a bounded number of times. */
        for (unsigned i = 0;; i++) {
                fd = (int) syscall(SYS_openat2, root_fd, isempty(path) ? "." : path, &how, sizeof how);
                if (fd >= 0 || errno != EAGAIN || i >= OPEN_IN_ROOT_RETRIES)
                        break;
        }
        return fd < 0 ? negative_errno() : fd;
}

int open_regular_in_root(int root_fd, const char *path, struct stat *ret_st) {
        _cleanup_close_ int path_fd = -EBADF;
        char fd_path[64];
        struct stat st;
        int fd;

        path_fd = open_in_root(root_fd, path, O_PATH);
        if (path_fd < 0)
                return path_fd;
        if (fstat(path_fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        /* the same inode, whatever has its name by now */
        snprintf(fd_path, sizeof fd_path, "/proc/self/fd/%d", path_fd);
        fd = open(fd_path, O_RDONLY | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (ret_st)
                *ret_st = st;
        return fd;
}

int openat_beneath(int dir_fd, const char *name, int flags) {
        struct open_how how = {
                .flags = (uint64_t) (flags | O_NOFOLLOW | O_CLOEXEC),
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        int fd = (int) syscall(SYS_openat2, dir_fd, name, &how, sizeof how);
        return fd < 0 ? negative_errno() : fd;
}

static int temp_name_for(const char *name, char buf[static NAME_MAX + 1]) {
        uint64_t rnd;

        if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != sizeof rnd)
                rnd = now_usec(CLOCK_MONOTONIC) ^ ((uint64_t) getpid() << 32);
        if ((size_t) snprintf(buf, NAME_MAX + 1, ".#%.200s%016llx", name, (unsigned long long) rnd) > NAME_MAX)
                return -ENAMETOOLONG;
        return 0;
}

int write_file_atomic_at(int dir_fd, const char *name, const void *data, size_t size, mode_t mode, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        char tmp[NAME_MAX + 1];
        int r;

        if (strchr(name, '/') || isempty(name))
                return -EINVAL;
        r = temp_name_for(name, tmp);
        if (r < 0)
                return r;
        /* O_EXCL: a fresh inode, never a file (or a hard link, or a symlink's target) that was there */
        fd = openat(dir_fd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, mode & 07777);
        if (fd < 0)
                return negative_errno();
        r = loop_write(fd, data, size);
        if (r >= 0)
                r = RET_NERRNO(fchmod(fd, mode & 07777)); /* whatever the umask */
        if (r >= 0)
                r = RET_NERRNO(renameat(dir_fd, tmp, dir_fd, name));
        if (r < 0) {
                (void) unlinkat(dir_fd, tmp, 0);
                return r;
        }
        if (ret_fd)
                *ret_fd = TAKE_FD(fd);
        return 0;
}

int symlink_atomic_at(const char *target, int dir_fd, const char *name) {
        char tmp[NAME_MAX + 1];
        int r;

        if (strchr(name, '/') || isempty(name))
                return -EINVAL;
        r = temp_name_for(name, tmp);
        if (r < 0)
                return r;
        if (symlinkat(target, dir_fd, tmp) < 0)
                return negative_errno();
        if (renameat(dir_fd, tmp, dir_fd, name) < 0) {
                r = negative_errno();
                (void) unlinkat(dir_fd, tmp, 0);
                return r;
        }
        return 0;
}

int send_message_fd(int sock, const void *data, size_t size, int fd) {
        struct iovec iov = { .iov_base = (void *) data, .iov_len = size };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (fd >= 0) {
                mh.msg_control = &control;
                mh.msg_controllen = sizeof control;
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &fd, sizeof(int));
        }
        return sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 ? negative_errno() : 0;
}

int recv_message_fd(int sock, void *data, size_t size, int *ret_fd) {
        struct iovec iov = { .iov_base = data, .iov_len = size };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct msghdr mh = {
                .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof control,
        };
        int passed = -EBADF;
        ssize_t n;

        do
                n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return negative_errno();
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                        memcpy(&passed, CMSG_DATA(c), sizeof(int));
        if (n == 0 || (size_t) n != size) {
                safe_close(passed);
                return n == 0 ? 0 : -EBADMSG;
        }
        if (ret_fd)
                *ret_fd = passed;
        else
                safe_close(passed);
        return 1;
}

char *overlay_option_escape(const char *p) {
        char *r = malloc(strlen(p) * 2 + 1), *w = r;

        if (!r)
                return NULL;
        for (; *p; p++) {
                if (*p == ':' || *p == '\\' || *p == ',')
                        *w++ = '\\';
                *w++ = *p;
        }
        *w = 0;
        return r;
}

char *format_bytes(uint64_t bytes, char *buf, size_t n) {
        static const char suffixes[] = "BKMGTPE";
        double v = (double) bytes;
        size_t i = 0;

        if (bytes == UINT64_MAX) {
                snprintf(buf, n, "-");
                return buf;
        }
        while (v >= 1024 && i < sizeof suffixes - 2) {
                v /= 1024;
                i++;
        }
        if (i == 0)
                snprintf(buf, n, "%lluB", (unsigned long long) bytes);
        else
                snprintf(buf, n, "%.1f%c", v, suffixes[i]);
        return buf;
}
