/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth-bind-user.h"
#include "berth-mount.h"
#include "berth-settings.h"
#include "log.h"
#include "util.h"

/* The records' "service": nspawn's, so that the guest's tools see host users bound by a container
 * manager as they would under systemd-nspawn. */
#define BIND_USER_SERVICE "io.systemd.NSpawn"

void bind_users_free(BindUser *l, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(l[i].name);
                free(l[i].host_home);
                free(l[i].shell);
        }
        free(l);
}

/* ---- pure parts ---- */

int colon_file_collect(FILE *f, char ***ret_names, uid_t **ret_ids, size_t *ret_n_ids) {
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_free_ char *line = NULL;
        _cleanup_free_ uid_t *ids = NULL;
        size_t size = 0, n = 0;

        while (getline(&line, &size, f) >= 0) {
                char *name = line, *c1, *c2, *c3;
                unsigned v;

                line[strcspn(line, "\n")] = 0;
                if (line[0] == '#' || line[0] == 0)
                        continue;
                c1 = strchr(name, ':');
                c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (!c2)
                        continue;
                *c1 = 0;
                c3 = strchr(c2 + 1, ':');
                if (c3)
                        *c3 = 0;
                if (strv_extend(&names, name) < 0)
                        return -ENOMEM;
                if (safe_atou(c2 + 1, &v) >= 0) {
                        uid_t *a = reallocarray(ids, n + 1, sizeof(uid_t));
                        if (!a)
                                return -ENOMEM;
                        ids = a;
                        ids[n++] = (uid_t) v;
                }
        }
        *ret_names = TAKE_PTR(names);
        *ret_ids = TAKE_PTR(ids);
        *ret_n_ids = n;
        return 0;
}

int bind_user_pick_uid(const uid_t *used, size_t n_used, uint32_t range_count, uid_t *next) {
        for (uid_t c = *next; c <= BIND_USER_UID_MAX && c < range_count; c++) {
                bool taken = false;
                for (size_t i = 0; i < n_used && !taken; i++)
                        taken = used[i] == c;
                if (!taken) {
                        *next = c;
                        return 0;
                }
        }
        return -EBUSY;
}

/* S as a JSON string, quoted */
static char *json_string(const char *s) {
        size_t n = 2;
        char *r, *p;

        for (const char *c = s; *c; c++)
                n += (unsigned char) *c < 0x20 ? 6 : (*c == '"' || *c == '\\') ? 2 : 1;
        r = p = malloc(n + 1);
        if (!r)
                return NULL;
        *p++ = '"';
        for (const unsigned char *c = (const unsigned char *) s; *c; c++) {
                if (*c < 0x20)
                        p += sprintf(p, "\\u%04x", *c);
                else {
                        if (*c == '"' || *c == '\\')
                                *p++ = '\\';
                        *p++ = (char) *c;
                }
        }
        *p++ = '"';
        *p = 0;
        return r;
}

int bind_user_record(const BindUser *u, char **ret) {
        _cleanup_free_ char *name = json_string(u->name), *shell = u->shell ? json_string(u->shell) : NULL;
        char *r;

        if (!name || (u->shell && !shell))
                return -ENOMEM;
        if (asprintf(&r,
                     "{\"userName\":%s,\"uid\":%u,\"gid\":%u,\"homeDirectory\":\"/run/host/home/%s\","
                     "\"service\":\"" BIND_USER_SERVICE "\"%s%s}\n",
                     name, (unsigned) u->uid, (unsigned) u->uid, u->name, shell ? ",\"shell\":" : "",
                     strempty(shell)) < 0)
                return -ENOMEM;
        *ret = r;
        return 0;
}

int bind_group_record(const BindUser *u, char **ret) {
        _cleanup_free_ char *name = json_string(u->name);
        char *r;

        if (!name)
                return -ENOMEM;
        if (asprintf(&r, "{\"groupName\":%s,\"gid\":%u,\"service\":\"" BIND_USER_SERVICE "\"}\n", name,
                     (unsigned) u->uid) < 0)
                return -ENOMEM;
        *ret = r;
        return 0;
}

/* ---- the monitor ---- */

/* The names and ids of the tree's PATH (etc/passwd, etc/group), read inside the tree; none if it
 * has no such file. */
static int tree_db(int tree_fd, const char *path, char ***ret_names, uid_t **ret_ids, size_t *ret_n) {
        _cleanup_fclose_ FILE *f = NULL;
        int fd;

        fd = open_regular_in_root(tree_fd, path, NULL);
        if (fd == -ENOENT) {
                *ret_names = NULL;
                *ret_ids = NULL;
                *ret_n = 0;
                return 0;
        }
        if (fd < 0)
                return log_error_errno(fd, "Failed to open /%s of the container: %m", path);
        f = fdopen(fd, "re");
        if (!f) {
                safe_close(fd);
                return log_oom();
        }
        if (colon_file_collect(f, ret_names, ret_ids, ret_n) < 0)
                return log_oom();
        return 0;
}

/* The host's NAME with its private group, checked as nspawn checks it. Logs. */
static int host_user(const char *name, const Settings *s, BindUser *ret) {
        _cleanup_free_ char *buf = NULL;
        struct passwd pw, *p = NULL;
        struct group gr, *g = NULL;
        struct stat st;
        size_t size = 16384;
        int r;

        buf = malloc(size);
        if (!buf)
                return log_oom();
        r = getpwnam_r(name, &pw, buf, size, &p);
        if (r == 0 && !p)
                return log_error_errno(-ESRCH, "Cannot bind user '%s' (--bind-user=): the host has no such user.", name);
        if (r != 0)
                return log_error_errno(-r, "Failed to look up user '%s' on the host (--bind-user=): %m", name);
        if (p->pw_uid == 0)
                return log_error_errno(-EINVAL, "Cannot bind user '%s' (--bind-user=): root cannot be mapped into a "
                                                "container (the container has its own root).", name);
        if (p->pw_uid == 65534)
                return log_error_errno(-EINVAL, "Cannot bind user '%s' (--bind-user=): nobody cannot be mapped into "
                                                "a container (the container has its own).", name);
        *ret = (BindUser) {
                .host_uid = p->pw_uid,
                .host_gid = p->pw_gid,
                .name = strdup(p->pw_name),
                .host_home = strdup(strempty(p->pw_dir)),
                .shell = s->bind_user_shell_copy ? strdup_or_null(p->pw_shell)
                                                 : strdup_or_null(s->bind_user_shell),
        };
        if (!ret->name || !ret->host_home || (s->bind_user_shell_copy && p->pw_shell && !ret->shell) ||
            (!s->bind_user_shell_copy && s->bind_user_shell && !ret->shell))
                return log_oom();
        if (ret->shell && isempty(ret->shell)) {
                free(ret->shell);
                ret->shell = NULL;
        }

        r = getgrgid_r(ret->host_gid, &gr, buf, size, &g);
        if (r != 0 || !g)
                return log_error_errno(r ? -r : -ESRCH, "Cannot bind user '%s' (--bind-user=): its group %u is "
                                       "unknown on the host.", name, (unsigned) ret->host_gid);
        /* one user, one group of its own: a shared group (users) exists in the guest already */
        if (!streq(g->gr_name, ret->name))
                return log_error_errno(-EOPNOTSUPP, "Cannot bind user '%s' (--bind-user=): its group is '%s', not a "
                                       "private group of the same name, and only such users can be mapped.",
                                       name, g->gr_name);

        if (!path_is_absolute(ret->host_home) || stat(ret->host_home, &st) < 0 || !S_ISDIR(st.st_mode))
                return log_error_errno(-ENOENT, "Cannot bind user '%s' (--bind-user=): its home directory '%s' "
                                       "is not a directory on the host.", name, ret->host_home);
        return 0;
}

int bind_users_resolve(const Settings *s, int tree_fd, uint32_t range_count, BindUser **ret, size_t *ret_n) {
        _cleanup_strv_free_ char **pw_names = NULL, **gr_names = NULL;
        _cleanup_free_ uid_t *pw_ids = NULL, *gr_ids = NULL, *used = NULL;
        size_t n_pw = 0, n_gr = 0, n = 0;
        BindUser *l = NULL;
        uid_t next = BIND_USER_UID_MIN;
        int r;

        *ret = NULL;
        *ret_n = 0;
        if (strv_isempty(s->bind_users))
                return 0;

        r = tree_db(tree_fd, "etc/passwd", &pw_names, &pw_ids, &n_pw);
        if (r >= 0)
                r = tree_db(tree_fd, "etc/group", &gr_names, &gr_ids, &n_gr);
        if (r < 0)
                return r;
        /* a uid inside is also the gid: free in both */
        used = calloc(n_pw + n_gr + 1, sizeof(uid_t));
        if (!used)
                return log_oom();
        memcpy(used, pw_ids, n_pw * sizeof(uid_t));
        memcpy(used + n_pw, gr_ids, n_gr * sizeof(uid_t));

        STRV_FOREACH(name, s->bind_users) {
                BindUser *a = reallocarray(l, n + 1, sizeof(BindUser));
                if (!a) {
                        r = log_oom();
                        goto fail;
                }
                l = a;
                l[n] = (BindUser) {};
                r = host_user(*name, s, &l[n]);
                n++;
                if (r < 0)
                        goto fail;
                if (strv_contains(pw_names, l[n - 1].name)) {
                        r = log_error_errno(-EBUSY, "Cannot bind user '%s' (--bind-user=): the container has a user "
                                            "of that name already.", l[n - 1].name);
                        goto fail;
                }
                if (strv_contains(gr_names, l[n - 1].name)) {
                        r = log_error_errno(-EBUSY, "Cannot bind user '%s' (--bind-user=): the container has a group "
                                            "of that name already.", l[n - 1].name);
                        goto fail;
                }
                r = bind_user_pick_uid(used, n_pw + n_gr, range_count, &next);
                if (r < 0) {
                        r = log_error_errno(r, "Cannot bind user '%s' (--bind-user=): no id of %" PRIu32 "..%" PRIu32
                                            " is free in the container.", l[n - 1].name, BIND_USER_UID_MIN,
                                            BIND_USER_UID_MAX);
                        goto fail;
                }
                l[n - 1].uid = next++;
        }
        *ret = l;
        *ret_n = n;
        return 0;

fail:
        bind_users_free(l, n);
        return r;
}

int bind_users_check_range(const BindUser *l, size_t n, UidRange range) {
        for (size_t i = 0; i < n; i++) {
                if (l[i].host_uid >= range.start && l[i].host_uid - range.start < range.count)
                        return log_error_errno(-EINVAL, "Cannot bind user '%s' (--bind-user=): its uid %u is in the "
                                               "container's range %" PRIu32 "..%" PRIu32 " already.", l[i].name,
                                               (unsigned) l[i].host_uid, range.start, range.start + range.count - 1);
                if (l[i].host_gid >= range.start && l[i].host_gid - range.start < range.count)
                        return log_error_errno(-EINVAL, "Cannot bind user '%s' (--bind-user=): its gid %u is in the "
                                               "container's range %" PRIu32 "..%" PRIu32 " already.", l[i].name,
                                               (unsigned) l[i].host_gid, range.start, range.start + range.count - 1);
        }
        return 0;
}

/* ---- the child ---- */

/* DATA as NAME in DIR and ID+SUFFIX a symlink to it, all the container root's */
static int write_record(int dir, const BindUser *u, const char *suffix, const char *data, uid_t owner) {
        _cleanup_close_ int fd = -EBADF;
        char file[300], link[32];
        int r;

        snprintf(file, sizeof file, "%s%s", u->name, suffix);
        snprintf(link, sizeof link, "%u%s", (unsigned) u->uid, suffix);
        r = write_file_atomic_at(dir, file, data, strlen(data), 0644, &fd);
        if (r >= 0 && fchown(fd, owner, owner) < 0)
                r = negative_errno();
        if (r >= 0)
                r = RET_NERRNO(symlinkat(file, dir, link));
        if (r >= 0)
                r = RET_NERRNO(fchownat(dir, link, owner, owner, AT_SYMLINK_NOFOLLOW));
        if (r < 0)
                return log_error_errno(r, "Failed to write /run/host/userdb/%s in the container: %m", file);
        return 0;
}

int bind_users_setup(const char *root, const UserNamespace *u) {
        _cleanup_close_ int host = -EBADF, db = -EBADF;
        CustomMount *homes = NULL;
        uid_t owner = userns_owner(u);
        int r = 0;

        if (!u || u->n_bind_users == 0)
                return 0;

        host = run_host_open(root);
        if (host < 0)
                return host;
        for (const char *const *d = (const char *const[]) { "home", "userdb", NULL }; *d && r >= 0; d++) {
                r = RET_NERRNO(mkdirat(host, *d, 0755));
                if (r >= 0)
                        r = RET_NERRNO(fchownat(host, *d, owner, owner, AT_SYMLINK_NOFOLLOW));
        }
        if (r < 0)
                return log_error_errno(r, "Failed to create /run/host/home or /run/host/userdb in the container: %m");
        db = openat(host, "userdb", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (db < 0)
                return log_error_errno(negative_errno(), "Failed to open /run/host/userdb in the container: %m");

        homes = calloc(u->n_bind_users, sizeof(CustomMount));
        if (!homes)
                return log_oom();
        for (size_t i = 0; i < u->n_bind_users; i++) {
                const BindUser *b = &u->bind_users[i];
                _cleanup_free_ char *user = NULL, *group = NULL;

                r = bind_user_record(b, &user);
                if (r >= 0)
                        r = bind_group_record(b, &group);
                if (r < 0) {
                        r = log_oom();
                        goto finish;
                }
                r = write_record(db, b, ".group", group, owner);
                if (r >= 0)
                        r = write_record(db, b, ".user", user, owner);
                if (r < 0)
                        goto finish;
                homes[i] = (CustomMount) {
                        .type = CUSTOM_MOUNT_BIND,
                        .recursive = true,
                        .idmap = BIND_NOIDMAP, /* the user's own id is mapped: the files are its own inside */
                        .source = b->host_home,
                        .destination = path_join("/run/host/home", b->name),
                };
                if (!homes[i].destination) {
                        r = log_oom();
                        goto finish;
                }
        }
        r = custom_mounts_apply(root, homes, u->n_bind_users, u);
finish:
        for (size_t i = 0; i < u->n_bind_users; i++)
                free(homes[i].destination);
        free(homes);
        return r;
}
