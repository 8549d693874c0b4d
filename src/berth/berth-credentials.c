/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "berth-credentials.h"
#include "berth-mount.h"
#include "log.h"
#include "util.h"

bool credential_id_valid(const char *id) {
        size_t n = strlen(id);

        if (n == 0 || n > NAME_MAX || streq(id, ".") || streq(id, ".."))
                return false;
        for (const char *c = id; *c; c++)
                if (*c == '/' || (unsigned char) *c < ' ' || *c == 0x7f)
                        return false;
        return true;
}

void credential_free_all(Credential *list, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(list[i].id);
                /* secrets: not left in freed memory */
                if (list[i].data)
                        explicit_bzero(list[i].data, list[i].size);
                free(list[i].data);
        }
        free(list);
}

size_t credentials_total_size(const Credential *list, size_t n) {
        size_t t = 0;

        for (size_t i = 0; i < n; i++)
                t += list[i].size;
        return t;
}

int credential_put(Credential **list, size_t *n, char *id, char *data, size_t size) {
        Credential *l;

        for (size_t i = 0; i < *n; i++)
                if (streq((*list)[i].id, id)) {
                        free(id);
                        explicit_bzero((*list)[i].data, (*list)[i].size);
                        free((*list)[i].data);
                        (*list)[i].data = data;
                        (*list)[i].size = size;
                        return 0;
                }
        l = realloc(*list, sizeof(Credential) * (*n + 1));
        if (!l) {
                free(id);
                free(data);
                return -ENOMEM;
        }
        l[(*n)++] = (Credential) { .id = id, .data = data, .size = size };
        *list = l;
        return 0;
}

/* "ID:REST": a copy of ID, checked; REST points into ARG */
static int split_id(const char *arg, char **ret_id, const char **ret_rest, const char **detail) {
        const char *colon = strchr(strempty(arg), ':');
        char *id;

        if (!colon) {
                *detail = "expected ID:VALUE (ID:PATH for --load-credential=)";
                return -EINVAL;
        }
        id = strndup(arg, (size_t) (colon - arg));
        if (!id)
                return -ENOMEM;
        if (!credential_id_valid(id)) {
                free(id);
                *detail = "the ID must be a file name: not empty, '.' or '..', without '/' or control characters";
                return -EINVAL;
        }
        *ret_id = id;
        *ret_rest = colon + 1;
        return 0;
}

/* C escapes, as systemd's SetCredential= takes them; may contain NUL bytes */
static int unescape(const char *s, char **ret, size_t *ret_size, const char **detail) {
        static const char simple[] = "a\ab\bf\fn\nr\rt\tv\v\\\\\"\"''";
        _cleanup_free_ char *out = malloc(strlen(s) + 1);
        size_t n = 0;

        if (!out)
                return -ENOMEM;
        for (const char *p = s; *p; p++) {
                const char *e;

                if (*p != '\\') {
                        out[n++] = *p;
                        continue;
                }
                p++;
                if (*p == 'x' && unhex(p[1]) >= 0 && unhex(p[2]) >= 0) {
                        out[n++] = (char) (unhex(p[1]) << 4 | unhex(p[2]));
                        p += 2;
                } else if (*p >= '0' && *p <= '3' && p[1] >= '0' && p[1] <= '7' && p[2] >= '0' && p[2] <= '7') {
                        out[n++] = (char) ((p[0] - '0') << 6 | (p[1] - '0') << 3 | (p[2] - '0'));
                        p += 2;
                } else if (*p && (e = strchr(simple, *p)) && (e - simple) % 2 == 0) {
                        out[n++] = e[1];
                } else {
                        *detail = "a bad escape in VALUE (known: \\n \\t \\r \\a \\b \\f \\v \\\\ \\\" \\' \\xHH \\NNN)";
                        return -EINVAL;
                }
        }
        out[n] = 0;
        *ret = TAKE_PTR(out);
        *ret_size = n;
        return 0;
}

int credential_parse_set(const char *arg, char **ret_id, char **ret_data, size_t *ret_size, const char **detail) {
        _cleanup_free_ char *id = NULL;
        const char *value;
        int r;

        r = split_id(arg, &id, &value, detail);
        if (r < 0)
                return r;
        r = unescape(value, ret_data, ret_size, detail);
        if (r < 0)
                return r;
        if (*ret_size > CREDENTIAL_SIZE_MAX) {
                free(*ret_data);
                *detail = "the value is over 1 MiB";
                return -E2BIG;
        }
        *ret_id = TAKE_PTR(id);
        return 0;
}

static int read_fd_limited(int fd, char **ret, size_t *ret_size) {
        _cleanup_free_ char *buf = malloc(CREDENTIAL_SIZE_MAX + 1);
        size_t n = 0;

        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k = read(fd, buf + n, CREDENTIAL_SIZE_MAX + 1 - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n > CREDENTIAL_SIZE_MAX)
                        return -E2BIG;
        }
        *ret = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

static int read_credential_source(const char *path, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        if (stat(path, &st) < 0)
                return negative_errno();
        if (S_ISSOCK(st.st_mode)) {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };

                if (strlen(path) >= sizeof sa.sun_path)
                        return -ENAMETOOLONG;
                strcpy(sa.sun_path, path);
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return negative_errno();
                if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                        return negative_errno();
                (void) shutdown(fd, SHUT_WR);
        } else if (S_ISREG(st.st_mode)) {
                fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return negative_errno();
        } else
                return -EBADFD;
        return read_fd_limited(fd, ret, ret_size);
}

int credential_parse_load(const char *arg, char **ret_id, char **ret_data, size_t *ret_size, const char **detail) {
        static __thread char msg[PATH_MAX + 128];
        _cleanup_free_ char *id = NULL, *joined = NULL;
        const char *path, *dir;
        int r;

        r = split_id(arg, &id, &path, detail);
        if (r < 0)
                return r;
        if (isempty(path)) {
                *detail = "the PATH is empty";
                return -EINVAL;
        }
        if (!path_is_absolute(path)) {
                dir = getenv("CREDENTIALS_DIRECTORY");
                if (isempty(dir)) {
                        *detail = "a relative PATH names one of berth's own credentials, and berth was given none "
                                  "($CREDENTIALS_DIRECTORY is not set): give an absolute path";
                        return -EINVAL;
                }
                if (strchr(path, '/')) {
                        *detail = "a relative PATH names one of berth's own credentials: a plain name, no '/'";
                        return -EINVAL;
                }
                joined = path_join(dir, path);
                if (!joined)
                        return -ENOMEM;
                path = joined;
        }
        r = read_credential_source(path, ret_data, ret_size);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                snprintf(msg, sizeof msg, "cannot read '%s': %s", path,
                         r == -E2BIG   ? "it is over 1 MiB"
                         : r == -EBADFD ? "not a regular file or socket"
                                        : strerror(-r));
                *detail = msg;
                return r;
        }
        *ret_id = TAKE_PTR(id);
        return 0;
}

int credentials_import(const char *glob, Credential **list, size_t *n) {
        _cleanup_closedir_ DIR *d = NULL;
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        struct dirent *de;
        int r;

        if (isempty(dir))
                return 0;
        d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : negative_errno();
        while ((de = readdir(d))) {
                _cleanup_free_ char *path = NULL, *id = NULL;
                char *data = NULL;
                size_t size;
                bool have = false;

                if (!credential_id_valid(de->d_name) || fnmatch(glob, de->d_name, 0) != 0)
                        continue;
                for (size_t i = 0; i < *n; i++)
                        have = have || streq((*list)[i].id, de->d_name);
                if (have)
                        continue; /* set or loaded explicitly: that one stands */
                path = path_join(dir, de->d_name);
                id = strdup(de->d_name);
                if (!path || !id)
                        return -ENOMEM;
                r = read_credential_source(path, &data, &size);
                if (r < 0)
                        return log_error_errno(r, "Failed to import credential '%s' from '%s': %m", de->d_name, dir);
                r = credential_put(list, n, TAKE_PTR(id), data, size);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- in the child ---- */

static int make_memory_fs(int *ret_fd) {
        _cleanup_close_ int fs = -EBADF;
        int mnt;

        /* ramfs never swaps secrets out; tmpfs where there is none */
        fs = fsopen("ramfs", FSOPEN_CLOEXEC);
        if (fs < 0) {
                fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
                if (fs < 0)
                        return negative_errno();
        }
        if (fsconfig(fs, FSCONFIG_SET_STRING, "source", "credentials", 0) < 0 ||
            fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0700", 0) < 0 ||
            fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return negative_errno();
        mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
        if (mnt < 0)
                return negative_errno();
        *ret_fd = mnt;
        return 0;
}

int credentials_mount(const char *root, const Credential *list, size_t n, uid_t uid, gid_t gid) {
        _cleanup_close_ int mnt = -EBADF, dir = -EBADF, host = -EBADF;
        int r;

        if (n == 0)
                return 0;
        r = make_memory_fs(&mnt);
        if (r < 0)
                return log_error_errno(r, "Failed to make a file system for the credentials: %m");
        dir = openat(mnt, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0)
                return log_error_errno(negative_errno(), "Failed to open the credentials' file system: %m");
        for (size_t i = 0; i < n; i++) {
                _cleanup_close_ int fd = openat(dir, list[i].id, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
                if (fd < 0)
                        return log_error_errno(negative_errno(), "Failed to create credential '%s': %m", list[i].id);
                r = loop_write(fd, list[i].data, list[i].size);
                if (r >= 0 && fchown(fd, uid, gid) < 0)
                        r = negative_errno();
                if (r < 0)
                        return log_error_errno(r, "Failed to write credential '%s': %m", list[i].id);
        }
        if (fchown(dir, uid, gid) < 0 || fchmod(dir, 0500) < 0)
                return log_error_errno(negative_errno(), "Failed to give the credentials to the payload's user: %m");
        r = mount_attr_set(mnt, MOUNT_ATTR_RDONLY, 0, 0, false);
        if (r < 0)
                return log_error_errno(r, "Failed to make the credentials read-only: %m");

        host = run_host_open(root);
        if (host < 0)
                return host;
        if (mkdirat(host, "credentials", 0500) < 0 && errno != EEXIST)
                return log_error_errno(negative_errno(), "Failed to create '%s" CREDENTIALS_DIR "': %m", root);
        r = mount_attach(mnt, host, "credentials");
        if (r < 0)
                return log_error_errno(r, "Failed to mount the credentials on '%s" CREDENTIALS_DIR "': %m", root);
        return 0;
}
