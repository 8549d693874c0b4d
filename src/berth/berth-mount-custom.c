/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Custom mounts: --bind=, --bind-ro=, --tmpfs=, --overlay=, --overlay-ro= and
 * --inaccessible=, in systemd-nspawn's syntax and meaning.
 *
 * Three phases:
 *   parse    (command line)   fills Settings.custom_mounts; pure string work.
 *   prepare  (parent, host)   sorts the list, checks host sources, creates the
 *                             temporary directories and overlay work
 *                             directories that berth owns (recorded in ->work).
 *   apply    (child)          mounts each entry under the container root.
 *   cleanup  (parent, exit)   removes what prepare created.
 *
 * Trust boundary: host paths (bind sources, overlay layers) come from the user
 * who started berth and are resolved normally. Everything inside the container
 * tree (destinations, "+" sources) is hostile: the tree may contain symlinks
 * that point anywhere on the host, and another process sharing the tree may
 * swap them at any time. Such paths are only ever resolved with
 * openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS) against an fd of the root, and
 * mounts are attached with move_mount() to the fd that resolution returned, so
 * no string path into the tree is ever handed to the kernel's mount code.
 *
 * Meaning of CustomMount.work: a directory that berth created on the host and
 * removes at exit. For a bind with an empty source it is the temporary source
 * itself; for an overlay with an empty upper layer it is a temporary directory
 * holding both "upper" and "work"; for an overlay with a host upper directory it
 * is the overlay work directory, a sibling of the upper directory.
 */

#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "berth-caps.h"
#include "berth-mount.h"
#include "log.h"
#include "util.h"


/* ---------------------------------------------------------------------------
 * Parsing
 * ------------------------------------------------------------------------- */

/* Splits s at unescaped ':'; "\X" stands for X (so "\:" embeds a colon and
 * "\\" a backslash), like nspawn. A trailing lone backslash is an error. At
 * most max fields are split off; with rest != NULL the unsplit remainder after
 * the max-th colon goes there verbatim (NULL if there was none). */
static int split_colon(const char *s, size_t max, char ***ret, char **ret_rest) {
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ char *cur = NULL;
        size_t n = 0;
        int r;

        cur = malloc(strlen(s) + 1);
        if (!cur)
                return -ENOMEM;

        for (const char *p = s;; p++) {
                if (*p == '\\') {
                        p++;
                        if (*p == 0)
                                return -EINVAL;
                        cur[n++] = *p;
                        continue;
                }
                if (*p == ':' || *p == 0) {
                        cur[n] = 0;
                        r = strv_extend(&l, cur);
                        if (r < 0)
                                return r;
                        n = 0;
                        if (*p == 0)
                                break;
                        if (ret_rest && strv_length(l) == max) {
                                char *rest = strdup(p + 1);
                                if (!rest)
                                        return -ENOMEM;
                                *ret_rest = rest;
                                *ret = TAKE_PTR(l);
                                return 0;
                        }
                        continue;
                }
                cur[n++] = *p;
        }

        if (ret_rest)
                *ret_rest = NULL;
        *ret = TAKE_PTR(l);
        return 0;
}

static bool path_has_dotdot(const char *p) {
        for (const char *c = p; (c = strstr(c, "..")); c += 2)
                if ((c == p || c[-1] == '/') && (c[2] == 0 || c[2] == '/'))
                        return true;
        return false;
}

#define DETAIL(d, msg) ((d) ? (void) (*(d) = (msg)) : (void) 0)

/* A path inside the container: absolute, no "..", not "/" itself. Returned
 * normalized ("//" and "/./" collapsed, no trailing slash). */
static int container_path_normalize(const char *p, char **ret, const char **detail) {
        char *r, *w;

        if (isempty(p))
                return DETAIL(detail, "the path in the container is empty"), -EINVAL;
        if (!path_is_absolute(p))
                return DETAIL(detail, "the path in the container must be absolute"), -EINVAL;
        if (path_has_dotdot(p))
                return DETAIL(detail, "'..' is not allowed in paths in the container"), -EINVAL;
        if (strlen(p) >= PATH_MAX)
                return DETAIL(detail, "the path is too long"), -EINVAL;

        r = malloc(strlen(p) + 1);
        if (!r)
                return -ENOMEM;
        w = r;
        for (const char *c = p; *c;) {
                if (*c == '/') {
                        c++;
                        continue;
                }
                if (c[0] == '.' && (c[1] == '/' || c[1] == 0)) {
                        c++;
                        continue;
                }
                *w++ = '/';
                while (*c && *c != '/')
                        *w++ = *c++;
        }
        *w = 0;
        if (w == r) { /* "/" or only "." components: the container root */
                free(r);
                return DETAIL(detail, "the container's root directory cannot be a mount point"), -EINVAL;
        }
        *ret = r;
        return 0;
}

/* A source path: "+/x" (relative to the container root; kept with the "+"),
 * or a host path (made absolute against the current directory, like nspawn).
 * Empty is for the caller to decide. */
static int source_path_parse(const char *p, char **ret, const char **detail) {
        if (isempty(p))
                return DETAIL(detail, "the source path is empty"), -EINVAL;

        if (p[0] == '+') {
                _cleanup_free_ char *n = NULL;
                char *j;
                int r;

                if (!path_is_absolute(p + 1))
                        return DETAIL(detail, "'+' must be followed by an absolute path in the container"), -EINVAL;
                if (p[1 + strspn(p + 1, "/")] == 0)
                        n = strdup("/"); /* "+/": the container root itself is fine as a source */
                else {
                        r = container_path_normalize(p + 1, &n, detail);
                        if (r < 0)
                                return r;
                }
                if (!n)
                        return -ENOMEM;
                j = strjoin("+", n);
                if (!j)
                        return -ENOMEM;
                *ret = j;
                return 0;
        }

        return path_make_absolute_cwd(p, ret);
}

/* nspawn's bind options: rbind/norbind, and how ids are mapped with a user namespace
 * (noidmap, idmap, rootidmap, owneridmap; the last one given wins, as in nspawn). */
static int parse_bind_options(const char *opts, bool *recursive, BindIdmap *idmap, const char **detail) {
        _cleanup_strv_free_ char **l = NULL;
        int r;

        if (isempty(opts))
                return 0;

        r = strv_split(opts, ",", &l);
        if (r < 0)
                return r;

        STRV_FOREACH(o, l) {
                BindIdmap m;

                if (isempty(*o))
                        continue;
                if (streq(*o, "rbind"))
                        *recursive = true;
                else if (streq(*o, "norbind"))
                        *recursive = false;
                else if ((m = bind_idmap_from_string(*o)) >= 0)
                        *idmap = m;
                else
                        return DETAIL(detail, "unknown mount option, expected rbind, norbind, noidmap, idmap, "
                                              "rootidmap or owneridmap"),
                               -EINVAL;
        }
        return 0;
}

static int split_colon_detail(const char *s, size_t max, char ***ret, char **ret_rest, const char **detail) {
        int r = split_colon(s, max, ret, ret_rest);
        if (r == -EINVAL)
                DETAIL(detail, "a trailing backslash escapes nothing (use \\: for a colon, \\\\ for a backslash)");
        return r;
}

static int custom_mount_parse_bind_full(Settings *s, const char *arg, bool read_only, const char **detail) {
        _cleanup_strv_free_ char **f = NULL;
        _cleanup_free_ char *rest = NULL, *source = NULL, *destination = NULL;
        bool recursive = true;
        BindIdmap idmap = BIND_NOIDMAP;
        CustomMount *m;
        int r;

        r = split_colon_detail(arg, 2, &f, &rest, detail);
        if (r < 0)
                return r;

        if (!isempty(f[0])) {
                r = source_path_parse(f[0], &source, detail);
                if (r < 0)
                        return r;
        }

        if (f[1])
                r = container_path_normalize(f[1], &destination, detail);
        else if (source) /* one path: the same path inside, so it must be absolute as written */
                r = container_path_normalize(f[0][0] == '+' ? f[0] + 1 : f[0], &destination, detail);
        else {
                DETAIL(detail, "expected SOURCE[:DESTINATION[:OPTIONS]]");
                r = -EINVAL;
        }
        if (r < 0)
                return r;

        r = parse_bind_options(rest, &recursive, &idmap, detail);
        if (r < 0)
                return r;

        r = custom_mount_add(s, CUSTOM_MOUNT_BIND, &m);
        if (r < 0)
                return r;
        m->read_only = read_only;
        m->recursive = recursive;
        m->idmap = idmap;
        m->source = TAKE_PTR(source);
        m->destination = TAKE_PTR(destination);
        return 0;
}

static int custom_mount_parse_tmpfs_full(Settings *s, const char *arg, const char **detail) {
        _cleanup_strv_free_ char **f = NULL;
        _cleanup_free_ char *rest = NULL, *destination = NULL, *options = NULL;
        CustomMount *m;
        int r;

        r = split_colon_detail(arg, 1, &f, &rest, detail);
        if (r < 0)
                return r;

        r = container_path_normalize(f[0], &destination, detail);
        if (r < 0)
                return r;

        /* Like nspawn: without options the mode is 0755; with options the
         * kernel's defaults apply unless they say otherwise. */
        options = strdup(isempty(rest) ? "mode=0755" : rest);
        if (!options)
                return -ENOMEM;

        r = custom_mount_add(s, CUSTOM_MOUNT_TMPFS, &m);
        if (r < 0)
                return r;
        m->destination = TAKE_PTR(destination);
        m->options = TAKE_PTR(options);
        return 0;
}

static int custom_mount_parse_overlay_full(Settings *s, const char *arg, bool read_only, const char **detail) {
        _cleanup_strv_free_ char **f = NULL, **lower = NULL;
        _cleanup_free_ char *upper = NULL, *destination = NULL;
        size_t n, n_sources;
        CustomMount *m;
        int r;

        r = split_colon_detail(arg, SIZE_MAX, &f, NULL, detail);
        if (r < 0)
                return r;
        n = strv_length(f);
        if (n < 2)
                return DETAIL(detail, "expected at least two colon-separated paths"), -EINVAL;

        /* Two paths: the second is both the upper (host) directory and the
         * mount point. More: the last one is the mount point, the ones before
         * are host directories, left-most lowest. */
        n_sources = n == 2 ? 2 : n - 1;

        /* The upper (last source) may be empty: a temporary directory. A
         * read-only overlay has no upper layer: every source is a lower layer. */
        for (size_t i = 0; i < n_sources; i++) {
                bool top = i == n_sources - 1;
                char *p = NULL;

                if (isempty(f[i])) {
                        if (n == 2)
                                return DETAIL(detail, "with two paths, neither may be empty"), -EINVAL;
                        if (!top)
                                return DETAIL(detail, "only the upper (last host) directory may be empty"), -EINVAL;
                        if (read_only)
                                return DETAIL(detail, "a read-only overlay has no upper directory to leave empty"),
                                       -EINVAL;
                        continue;
                }
                r = source_path_parse(f[i], &p, detail);
                if (r < 0)
                        return r;
                if (top && n == 2) {
                        /* nspawn: the mount point is the upper path as parsed, without "+" */
                        r = container_path_normalize(p[0] == '+' ? p + 1 : p, &destination, detail);
                        if (r < 0) {
                                free(p);
                                return r;
                        }
                }
                if (top && !read_only)
                        upper = p;
                else {
                        r = strv_consume(&lower, p);
                        if (r < 0)
                                return r;
                }
        }
        if (n > 2) {
                r = container_path_normalize(f[n - 1], &destination, detail);
                if (r < 0)
                        return r;
        }

        /* Stored top-most first, the order of overlayfs' lowerdir= */
        for (size_t i = 0, j = strv_length(lower); j > 1 && i < j - 1; i++, j--) {
                char *t = lower[i];
                lower[i] = lower[j - 1];
                lower[j - 1] = t;
        }

        r = custom_mount_add(s, CUSTOM_MOUNT_OVERLAY, &m);
        if (r < 0)
                return r;
        m->read_only = read_only;
        m->destination = TAKE_PTR(destination);
        m->lower = TAKE_PTR(lower);
        m->upper = TAKE_PTR(upper);
        return 0;
}

static int custom_mount_parse_inaccessible_full(Settings *s, const char *arg, const char **detail) {
        _cleanup_free_ char *destination = NULL;
        CustomMount *m;
        int r;

        r = container_path_normalize(arg, &destination, detail);
        if (r < 0)
                return r;

        r = custom_mount_add(s, CUSTOM_MOUNT_INACCESSIBLE, &m);
        if (r < 0)
                return r;
        m->destination = TAKE_PTR(destination);
        return 0;
}

int custom_mount_parse_bind(Settings *s, const char *arg, bool read_only, const char **ret_detail) {
        return custom_mount_parse_bind_full(s, arg, read_only, ret_detail);
}

int custom_mount_parse_tmpfs(Settings *s, const char *arg, const char **ret_detail) {
        return custom_mount_parse_tmpfs_full(s, arg, ret_detail);
}

int custom_mount_parse_overlay(Settings *s, const char *arg, bool read_only, const char **ret_detail) {
        return custom_mount_parse_overlay_full(s, arg, read_only, ret_detail);
}

int custom_mount_parse_inaccessible(Settings *s, const char *arg, const char **ret_detail) {
        return custom_mount_parse_inaccessible_full(s, arg, ret_detail);
}

void custom_mount_free_all(CustomMount *l, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(l[i].source);
                free(l[i].destination);
                free(l[i].options);
                strv_free(l[i].lower);
                free(l[i].upper);
                free(l[i].work);
        }
        free(l);
}

/* ---------------------------------------------------------------------------
 * Parent: prepare and clean up
 * ------------------------------------------------------------------------- */

static const char *option_name(const CustomMount *m) {
        switch (m->type) {
        case CUSTOM_MOUNT_BIND:
                return m->read_only ? "--bind-ro=" : "--bind=";
        case CUSTOM_MOUNT_TMPFS:
                return "--tmpfs=";
        case CUSTOM_MOUNT_OVERLAY:
                return m->read_only ? "--overlay-ro=" : "--overlay=";
        case CUSTOM_MOUNT_INACCESSIBLE:
                return "--inaccessible=";
        default:
                return "?";
        }
}

static const char *verb_name(const CustomMount *m) {
        switch (m->type) {
        case CUSTOM_MOUNT_BIND:
                return "bind-mount";
        case CUSTOM_MOUNT_OVERLAY:
                return "overlay-mount";
        case CUSTOM_MOUNT_TMPFS:
                return "mount tmpfs on";
        default:
                return "make inaccessible";
        }
}

/* Component-wise comparison, so a parent sorts before everything below it
 * ("/a" < "/a/b" < "/a-b"). */
static int path_compare(const char *a, const char *b) {
        for (;;) {
                size_t la, lb;
                int c;

                while (*a == '/')
                        a++;
                while (*b == '/')
                        b++;
                if (!*a || !*b)
                        return (*a != 0) - (*b != 0);
                la = strcspn(a, "/");
                lb = strcspn(b, "/");
                c = memcmp(a, b, MIN(la, lb));
                if (c != 0)
                        return c;
                if (la != lb)
                        return la < lb ? -1 : 1;
                a += la;
                b += lb;
        }
}

/* Like nspawn, mount in the order of the destinations so that a mount below
 * another one's destination lands on top of it, whatever the order on the
 * command line. Stable: for one destination, the later option wins. */
static void sort_mounts(CustomMount *l, size_t n) {
        for (size_t i = 1; i < n; i++) {
                CustomMount t = l[i];
                size_t j = i;
                while (j > 0 && path_compare(l[j - 1].destination, t.destination) > 0) {
                        l[j] = l[j - 1];
                        j--;
                }
                l[j] = t;
        }
}

static int check_host_path(const CustomMount *m, const char *path, bool want_dir) {
        struct stat st;

        if (stat(path, &st) < 0)
                return log_error_errno(negative_errno(), "Failed to %s '%s': %m (%s)", verb_name(m), path,
                                       option_name(m));
        if (want_dir && !S_ISDIR(st.st_mode))
                return log_error_errno(-ENOTDIR, "Failed to %s '%s': not a directory (%s)", verb_name(m), path,
                                       option_name(m));
        return 0;
}

/* Where temporary directories go: $TMPDIR if it is an absolute path (as systemd-nspawn
 * has it; the unit tests use it), else /var/tmp. */
static const char *temp_dir_base(void) {
        const char *e = getenv("TMPDIR");

        return !isempty(e) && path_is_absolute(e) ? e : "/var/tmp";
}

/* /var/tmp/berth-KIND-MACHINE-XXXXXX: the machine name lets a later start
 * find what a killed instance left behind. */
static int make_temp_dir(const char *kind, const char *machine, char **ret) {
        char *t;

        if (streq(temp_dir_base(), "/var/tmp"))
                (void) mkdir_p("/var/tmp", 01777);
        t = strjoin(temp_dir_base(), "/berth-", kind, "-", machine ?: "unnamed", "-XXXXXX");
        if (!t)
                return -ENOMEM;
        if (!mkdtemp(t)) {
                int r = negative_errno();
                free(t);
                return r;
        }
        *ret = t;
        return 0;
}

/* The overlay work directory must be on the upper directory's file system and
 * must not be inside it: make it a hidden sibling. */
static int make_sibling_work_dir(const char *upper, char **ret) {
        _cleanup_free_ char *parent = NULL;
        char *t, *slash;

        parent = strdup(upper);
        if (!parent)
                return -ENOMEM;
        slash = strrchr(parent, '/');
        if (!slash || slash[1] == 0)
                return -EINVAL;
        *slash = 0;
        t = strjoin(isempty(parent) ? "" : parent, "/.#", slash + 1, ".berth-work-XXXXXX");
        if (!t)
                return -ENOMEM;
        if (!mkdtemp(t)) {
                int r = negative_errno();
                free(t);
                return r;
        }
        *ret = t;
        return 0;
}

static int prepare_bind(CustomMount *m, const char *machine) {
        int r;

        if (m->source && m->source[0] == '+')
                return 0; /* inside the tree: checked in the child */
        if (m->source)
                return check_host_path(m, m->source, false);

        r = make_temp_dir("bind", machine, &m->work);
        if (r < 0)
                return log_error_errno(r, "Failed to create a temporary directory in %s for %s%s: %m",
                                       temp_dir_base(), option_name(m), m->destination);
        (void) chmod(m->work, 0755);
        m->source = strdup(m->work);
        if (!m->source)
                return log_oom();
        return 0;
}

static int prepare_overlay(CustomMount *m, const char *machine) {
        int r;

        STRV_FOREACH(l, m->lower)
                if ((*l)[0] != '+') {
                        r = check_host_path(m, *l, true);
                        if (r < 0)
                                return r;
                }

        if (m->read_only)
                return 0;

        if (!m->upper) {
                /* work = D, upper = D/upper, overlay work dir = D/work */
                r = make_temp_dir("overlay", machine, &m->work);
                if (r < 0)
                        return log_error_errno(r, "Failed to create a temporary directory in %s for %s%s: %m",
                                               temp_dir_base(), option_name(m), m->destination);
                m->upper = path_join(m->work, "upper");
                _cleanup_free_ char *w = path_join(m->work, "work");
                if (!m->upper || !w)
                        return log_oom();
                if (mkdir(m->upper, 0755) < 0 || mkdir(w, 0700) < 0)
                        return log_error_errno(negative_errno(), "Failed to create '%s': %m", m->upper);
                return 0;
        }

        if (m->upper[0] == '+')
                return 0; /* work dir is made inside the tree by the child */

        r = check_host_path(m, m->upper, true);
        if (r < 0)
                return r;
        r = make_sibling_work_dir(m->upper, &m->work);
        if (r < 0)
                return log_error_errno(r, "Failed to create a work directory next to '%s' (%s): %m", m->upper,
                                       option_name(m));
        return 0;
}

int custom_mounts_copy(const CustomMount *l, size_t n, CustomMount **ret) {
        CustomMount *c;

        c = calloc(n ?: 1, sizeof(CustomMount));
        if (!c)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                c[i] = (CustomMount) {
                        .type = l[i].type,
                        .read_only = l[i].read_only,
                        .recursive = l[i].recursive,
                        .idmap = l[i].idmap,
                };
                if ((l[i].source && !(c[i].source = strdup(l[i].source))) ||
                    (l[i].destination && !(c[i].destination = strdup(l[i].destination))) ||
                    (l[i].options && !(c[i].options = strdup(l[i].options))) ||
                    (l[i].lower && !(c[i].lower = strv_copy(l[i].lower))) ||
                    (l[i].upper && !(c[i].upper = strdup(l[i].upper))) ||
                    (l[i].work && !(c[i].work = strdup(l[i].work)))) {
                        custom_mount_free_all(c, i + 1);
                        return -ENOMEM;
                }
        }
        *ret = c;
        return 0;
}

int custom_mounts_prepare(CustomMount *l, size_t n, const char *machine) {
        int r;

        sort_mounts(l, n);

        for (size_t i = 0; i < n; i++) {
                CustomMount *m = &l[i];

                if (m->type == CUSTOM_MOUNT_BIND)
                        r = prepare_bind(m, machine);
                else if (m->type == CUSTOM_MOUNT_OVERLAY)
                        r = prepare_overlay(m, machine);
                else
                        r = 0;
                if (r < 0) {
                        custom_mounts_cleanup(l, n);
                        return r;
                }
        }
        return 0;
}

void custom_mounts_cleanup(const CustomMount *l, size_t n) {
        for (size_t i = 0; i < n; i++) {
                const char *w = l[i].work;
                int r;

                if (!w)
                        continue;
                r = rm_rf(w);
                if (r < 0)
                        log_warning_errno(r, "Failed to remove '%s', ignoring: %m", w);
        }
}

/* ---------------------------------------------------------------------------
 * Child: apply
 * ------------------------------------------------------------------------- */

/* Creates what is missing of DEST inside the tree (directories, and the last
 * component as a directory or an empty file) and returns an O_PATH fd of it.
 * Each step resolves the whole prefix from the root again, so a symlink
 * anywhere on the way is followed only inside the tree. */
/* Mount points berth creates in the tree belong to the container's root (OWNER, with a user
 * namespace): created with that fsuid, so that an idmapped tree stores them as root's, as the
 * guest would. Host root itself cannot create anything on an idmapped mount (EOVERFLOW). */
int create_owned(int parent, const char *name, mode_t mode, uid_t owner) {
        int r = 0, fd;

        if (owner != 0) {
                (void) setfsgid(owner);
                (void) setfsuid(owner);
        }
        if (!S_ISDIR(mode)) {
                fd = openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 07777);
                if (fd < 0 && errno != EEXIST)
                        r = negative_errno();
                safe_close(fd);
        } else if (mkdirat(parent, name, mode & 07777) < 0 && errno != EEXIST)
                r = negative_errno();
        if (owner != 0) {
                (void) setfsuid(0);
                (void) setfsgid(0);
        }
        return r;
}

static int make_destination(int root_fd, const char *dest, bool want_dir, uid_t owner, int *ret_fd) {
        _cleanup_free_ char *buf = NULL;
        char *p;
        int fd;

        fd = open_in_root(root_fd, dest, O_PATH);
        if (fd >= 0)
                goto check;
        if (fd != -ENOENT)
                return fd;

        buf = strdup(dest);
        if (!buf)
                return -ENOMEM;

        p = buf;
        for (;;) {
                _cleanup_close_ int parent = -EBADF;
                char *slash, *name;
                bool last;

                while (*p == '/')
                        p++;
                slash = strchr(p, '/');
                last = !slash;
                name = p;

                /* the parent: buf up to (not including) this component */
                char saved = *name;
                *name = 0;
                parent = open_in_root(root_fd, buf, O_PATH | O_DIRECTORY);
                *name = saved;
                if (parent < 0)
                        return parent;

                if (slash)
                        *slash = 0;
                int q = create_owned(parent, name, last && !want_dir ? S_IFREG | 0644 : S_IFDIR | 0755, owner);
                if (q < 0)
                        return q;
                if (last)
                        break;
                *slash = '/';
                p = slash + 1;
        }

        fd = open_in_root(root_fd, dest, O_PATH);
        if (fd < 0)
                return fd;

check:;
        struct stat st;
        if (fstat(fd, &st) < 0) {
                int r = negative_errno();
                safe_close(fd);
                return r;
        }
        if (want_dir != !!S_ISDIR(st.st_mode)) {
                safe_close(fd);
                return want_dir ? -ENOTDIR : -EISDIR;
        }
        *ret_fd = fd;
        return 0;
}

/* The kernel explains fsconfig() failures in messages readable from the fs
 * context fd ("e overlayfs: ..."). Append the first error to make the log line
 * say what is wrong. */
static void fs_context_error(int fs_fd, char *buf, size_t size) {
        ssize_t k;

        buf[0] = 0;
        for (;;) {
                char line[512];
                k = read(fs_fd, line, sizeof line - 1);
                if (k <= 0)
                        return;
                line[k] = 0;
                line[strcspn(line, "\n")] = 0;
                if (line[0] == 'e' && line[1] == ' ' && buf[0] == 0)
                        snprintf(buf, size, " (%.200s)", line + 2);
        }
}

/* The bind's idmap option as a user namespace for the detached mount TREE_FD of a source owned by
 * SRC_UID, on a destination owned by DEST_UID (host ids): idmap maps through the container's own
 * namespace (host z is z inside); rootidmap maps only the source's owner, to the container's root;
 * owneridmap maps only the source's owner, to the destination's owner. The same map for groups,
 * as in nspawn, so the source's group counts only where its gid equals the owner's uid. Without a
 * user namespace the container's range is the host's 0..65535, as nspawn has it: rootidmap then
 * maps the owner to the host's root. */
static int idmap_bind(int tree_fd, const CustomMount *m, const UserNamespace *u, uid_t src_uid, uid_t dest_uid) {
        _cleanup_close_ int own = -EBADF;
        char map[64];
        int r;

        if (m->idmap == BIND_NOIDMAP)
                return 0;
        if (m->idmap == BIND_IDMAP && u && u->fd >= 0)
                r = 0;
        else {
                if (m->idmap == BIND_IDMAP)
                        snprintf(map, sizeof map, "0 0 %u\n", (unsigned) USERNS_RANGE_SIZE);
                else
                        snprintf(map, sizeof map, "%u %u 1\n", (unsigned) src_uid,
                                 (unsigned) (m->idmap == BIND_ROOTIDMAP ? userns_owner(u) : dest_uid));
                r = userns_make_mapped(map, &own);
        }
        if (r < 0)
                return log_error_errno(r, "Failed to create the user namespace that maps '%s' (%s:%s): %m",
                                       m->source, option_name(m), bind_idmap_to_string(m->idmap));
        r = mount_make_idmapped(tree_fd, own >= 0 ? own : u->fd);
        if (r < 0)
                return log_error_errno(r, "Failed to bind-mount '%s' with '%s' (%s): %m. Its file system (or one "
                                          "mounted below it) cannot be mounted idmapped: drop '%s'%s.",
                                       m->source, bind_idmap_to_string(m->idmap), option_name(m),
                                       bind_idmap_to_string(m->idmap), m->recursive ? ", or add norbind" : "");
        return 0;
}

static int apply_bind(int root_fd, const CustomMount *m, const UserNamespace *u) {
        _cleanup_close_ int src_fd = -EBADF, tree_fd = -EBADF, dest_fd = -EBADF;
        unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (m->recursive ? AT_RECURSIVE : 0);
        uid_t owner = userns_owner(u), dest_uid = owner;
        struct stat st;
        int r;

        if (!m->source) /* custom_mounts_prepare() fills in temporary sources */
                return log_error_errno(-EINVAL, "Bind mount on '%s' has no source.", m->destination);

        /* a temporary source (berth's own, empty) belongs to the container's root, as nspawn has it;
         * through an idmapped bind the host's root is that already */
        if (m->work && streq(m->source, m->work) && owner != 0 && m->idmap == BIND_NOIDMAP &&
            chown(m->work, owner, owner) < 0)
                return log_error_errno(negative_errno(), "Failed to hand '%s' to the container's root: %m (%s)",
                                       m->work, option_name(m));

        if (m->source[0] == '+') {
                src_fd = open_in_root(root_fd, m->source + 1, O_PATH);
                if (src_fd < 0)
                        return log_error_errno(src_fd, "Failed to bind-mount '%s' of the container: %m (%s)",
                                               m->source + 1, option_name(m));
                tree_fd = open_tree(src_fd, "", flags | AT_EMPTY_PATH);
        } else
                tree_fd = open_tree(AT_FDCWD, m->source, flags);
        if (tree_fd < 0)
                return log_error_errno(negative_errno(), "Failed to bind-mount '%s': %m (%s)", m->source,
                                       option_name(m));

        if (fstat(tree_fd, &st) < 0)
                return log_error_errno(negative_errno(), "Failed to stat '%s': %m", m->source);

        /* Recursively: a read-only bind must not leave a writable submount. */
        if (m->read_only) {
                r = mount_attr_set(tree_fd, MOUNT_ATTR_RDONLY, 0, 0, true);
                if (r < 0)
                        return log_error_errno(r, "Failed to make the bind mount of '%s' read-only: %m",
                                               m->source);
        }

        /* the mapping first, so that a source that cannot be idmapped leaves no mount point behind;
         * a destination berth is about to create will belong to the container's root */
        if (m->idmap == BIND_OWNERIDMAP) {
                _cleanup_close_ int fd = open_in_root(root_fd, m->destination, O_PATH);
                struct stat dest_st;

                if (fd < 0 && fd != -ENOENT)
                        return log_error_errno(fd, "Failed to open '%s' in the container: %m (%s)", m->destination,
                                               option_name(m));
                if (fd >= 0 && fstat(fd, &dest_st) < 0)
                        return log_error_errno(negative_errno(), "Failed to stat '%s' in the container: %m",
                                               m->destination);
                if (fd >= 0)
                        dest_uid = dest_st.st_uid;
        }
        /* only a mount not yet attached can be idmapped */
        r = idmap_bind(tree_fd, m, u, st.st_uid, dest_uid);
        if (r < 0)
                return r;

        r = make_destination(root_fd, m->destination, S_ISDIR(st.st_mode), owner, &dest_fd);
        if (r == -ENOTDIR || r == -EISDIR)
                return log_error_errno(r, "Failed to bind-mount '%s' on '%s': the source is %sa directory, the "
                                       "destination is %s (%s)",
                                       m->source, m->destination, S_ISDIR(st.st_mode) ? "" : "not ",
                                       r == -ENOTDIR ? "not" : "one", option_name(m));
        if (r < 0)
                return log_error_errno(r, "Failed to create the mount point '%s' in the container: %m (%s)",
                                       m->destination, option_name(m));

        r = mount_attach(tree_fd, dest_fd, "");
        if (r < 0)
                return log_error_errno(r, "Failed to bind-mount '%s' on '%s': %m (%s)", m->source, m->destination,
                                       option_name(m));
        return 0;
}

typedef struct MountFlagName {
        const char *name;
        uint64_t set;
        uint64_t clear;
} MountFlagName;

/* Per-mount flags that may appear in --tmpfs= options; they are not file
 * system parameters, so they must not reach fsconfig(). */
static const MountFlagName mount_flag_names[] = {
        { "ro",          MOUNT_ATTR_RDONLY,      0                      },
        { "rw",          0,                      MOUNT_ATTR_RDONLY      },
        { "nosuid",      MOUNT_ATTR_NOSUID,      0                      },
        { "suid",        0,                      MOUNT_ATTR_NOSUID      },
        { "nodev",       MOUNT_ATTR_NODEV,       0                      },
        { "dev",         0,                      MOUNT_ATTR_NODEV       },
        { "noexec",      MOUNT_ATTR_NOEXEC,      0                      },
        { "exec",        0,                      MOUNT_ATTR_NOEXEC      },
        { "noatime",     MOUNT_ATTR_NOATIME,     MOUNT_ATTR__ATIME      },
        { "relatime",    MOUNT_ATTR_RELATIME,    MOUNT_ATTR__ATIME      },
        { "strictatime", MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME      },
        { "atime",       MOUNT_ATTR_RELATIME,    MOUNT_ATTR__ATIME      },
        { "nodiratime",  MOUNT_ATTR_NODIRATIME,  0                      },
        { "diratime",    0,                      MOUNT_ATTR_NODIRATIME  },
        { "nosymfollow", MOUNT_ATTR_NOSYMFOLLOW, 0                      },
        { "symfollow",   0,                      MOUNT_ATTR_NOSYMFOLLOW },
};

int mount_tmpfs_new(const char *options, uint64_t attr, uid_t owner, char *err, size_t err_size, int *ret_fd) {
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_close_ int fs_fd = -EBADF;
        int mnt_fd, r;

        char none[1];

        if (!err) {
                err = none;
                err_size = sizeof none;
        }
        err[0] = 0;
        fs_fd = fsopen("tmpfs", FSOPEN_CLOEXEC);
        if (fs_fd < 0)
                return negative_errno();
        if (fsconfig(fs_fd, FSCONFIG_SET_STRING, "source", "tmpfs", 0) < 0)
                return negative_errno();
        if (owner != 0) {
                /* the root of the user namespace owns it; uid=/gid= in OPTIONS still win */
                char id[16];
                snprintf(id, sizeof id, "%u", (unsigned) owner);
                if (fsconfig(fs_fd, FSCONFIG_SET_STRING, "uid", id, 0) < 0 ||
                    fsconfig(fs_fd, FSCONFIG_SET_STRING, "gid", id, 0) < 0)
                        return negative_errno();
        }

        if (options) {
                r = strv_split(options, ",", &l);
                if (r < 0)
                        return r;
        }
        STRV_FOREACH(o, l) {
                const MountFlagName *f = NULL;
                char *eq;

                if (isempty(*o))
                        continue;
                for (size_t i = 0; i < ELEMENTSOF(mount_flag_names); i++)
                        if (streq(*o, mount_flag_names[i].name))
                                f = &mount_flag_names[i];
                if (f) {
                        attr = (attr & ~f->clear) | f->set;
                        continue;
                }
                eq = strchr(*o, '=');
                if (eq) {
                        *eq = 0;
                        r = RET_NERRNO(fsconfig(fs_fd, FSCONFIG_SET_STRING, *o, eq + 1, 0));
                        *eq = '=';
                } else
                        r = RET_NERRNO(fsconfig(fs_fd, FSCONFIG_SET_FLAG, *o, NULL, 0));
                if (r < 0) {
                        fs_context_error(fs_fd, err, err_size);
                        if (!err[0])
                                snprintf(err, err_size, " (option '%s')", *o);
                        return r;
                }
        }

        if (fsconfig(fs_fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
                r = negative_errno();
                fs_context_error(fs_fd, err, err_size);
                return r;
        }
        mnt_fd = fsmount(fs_fd, FSMOUNT_CLOEXEC, (unsigned) attr);
        if (mnt_fd < 0)
                return negative_errno();
        *ret_fd = mnt_fd;
        return 0;
}

static int apply_tmpfs(int root_fd, const CustomMount *m, uid_t owner) {
        _cleanup_close_ int mnt_fd = -EBADF, dest_fd = -EBADF;
        char err[256];
        int r;

        r = mount_tmpfs_new(m->options, MOUNT_ATTR_NODEV | MOUNT_ATTR_STRICTATIME, owner, err, sizeof err, &mnt_fd);
        if (r < 0)
                return log_error_errno(r, "Failed to mount tmpfs on '%s' with options '%s': %m%s (--tmpfs=)",
                                       m->destination, strempty(m->options), err);

        r = make_destination(root_fd, m->destination, true, owner, &dest_fd);
        if (r < 0)
                return log_error_errno(r, "Failed to create the mount point '%s' in the container: %m (--tmpfs=)",
                                       m->destination);
        r = mount_attach(mnt_fd, dest_fd, "");
        if (r < 0)
                return log_error_errno(r, "Failed to mount tmpfs on '%s': %m (--tmpfs=)", m->destination);
        return 0;
}

/* With the tree mounted idmapped (ownership map), the overlay's host layers are mounted idmapped
 * too, so that the guest sees them as it sees the tree and what it writes to the upper layer is
 * stored with the ids it has without a user namespace: DIR is cloned (without the mounts below it,
 * which overlayfs does not look into anyway), idmapped through the container's namespace, and
 * named to overlayfs as RET_PATH, /proc/self/fd/N of the detached clone. The fd is kept in FDS. */
static int idmapped_clone(const CustomMount *m, const UserNamespace *u, const char *dir, int fds[], size_t *n_fds,
                          char ret_path[static 32]) {
        int fd, r;

        fd = open_tree(AT_FDCWD, dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (fd < 0)
                return log_error_errno(negative_errno(), "Failed to overlay-mount '%s': %m (%s)", dir, option_name(m));
        fds[(*n_fds)++] = fd;
        r = mount_make_idmapped(fd, u->fd);
        if (r < 0)
                return log_error_errno(r, "Failed to overlay-mount '%s' idmapped: %m (%s). With the tree mounted "
                                          "idmapped, so are the overlay's layers, and this file system cannot be: "
                                          "move the layer, or pass --private-users-ownership=off with a tree "
                                          "shifted to the range.", dir, option_name(m));
        snprintf(ret_path, 32, "/proc/self/fd/%d", fd);
        return 0;
}

static bool userns_maps_tree(const UserNamespace *u) {
        return u && u->fd >= 0 && u->idmap;
}

/* A layer path for overlayfs: host paths as they are (idmapped like the tree, see above); "+"
 * paths resolved inside the tree and passed as the /proc/self/fd link of the resolved fd, so
 * the kernel never walks the tree's symlinks itself. The fds are kept in FDS until the mount
 * is made. */
static int layer_path(int root_fd, const CustomMount *m, const UserNamespace *u, const char *p, int fds[],
                      size_t *n_fds, char **ret) {
        char buf[32];
        int fd;

        if (p[0] != '+') {
                if (userns_maps_tree(u)) {
                        int r = idmapped_clone(m, u, p, fds, n_fds, buf);
                        if (r < 0)
                                return r;
                        p = buf;
                }
                *ret = overlay_option_escape(p);
                return *ret ? 0 : log_oom();
        }
        fd = open_in_root(root_fd, p + 1, O_PATH | O_DIRECTORY);
        if (fd < 0)
                return log_error_errno(fd, "Failed to overlay-mount '%s' of the container: %m (%s)", p + 1,
                                       option_name(m));
        fds[(*n_fds)++] = fd;
        snprintf(buf, sizeof buf, "/proc/self/fd/%d", fd);
        *ret = strdup(buf);
        return *ret ? 0 : log_oom();
}

/* For an upper directory inside the tree ("+"), the work directory has to be
 * made inside the tree too, next to it. The name is fixed so that repeated
 * runs reuse it instead of piling up directories. It belongs to the
 * container's root (OWNER), which also lets it be made on an idmapped tree. */
static int tree_work_dir(int root_fd, const CustomMount *m, uid_t owner, int fds[], size_t *n_fds, char **ret) {
        _cleanup_free_ char *parent = NULL, *name = NULL;
        _cleanup_close_ int pfd = -EBADF;
        const char *base;
        char buf[64];
        int fd, r;

        parent = strdup(m->upper + 1);
        if (!parent)
                return log_oom();
        *strrchr(parent, '/') = 0;
        base = path_basename(m->upper + 1);
        name = strjoin(".#", base, ".berth-work");
        if (!name)
                return log_oom();

        pfd = open_in_root(root_fd, parent, O_PATH | O_DIRECTORY);
        if (pfd < 0)
                return log_error_errno(pfd, "Failed to open '%s' of the container: %m (%s)", parent,
                                       option_name(m));
        r = create_owned(pfd, name, S_IFDIR | 0700, owner);
        if (r < 0)
                return log_error_errno(r, "Failed to create a work directory next to '%s' of the "
                                       "container: %m (%s)", m->upper + 1, option_name(m));
        fd = openat(pfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(negative_errno(), "Failed to open the work directory next to '%s': %m",
                                       m->upper + 1);
        fds[(*n_fds)++] = fd;
        snprintf(buf, sizeof buf, "/proc/self/fd/%d", fd);
        *ret = strdup(buf);
        return *ret ? 0 : log_oom();
}

/* The upper and work directories of a host upper layer (see the comment on CustomMount.work at the
 * top: D/upper and D/work of a temporary D, or the user's directory and berth's sibling of it).
 * overlayfs wants both on one mount, so idmapped they are names below one idmapped clone of their
 * parent. A temporary upper layer that is not idmapped belongs to the container's root. */
static int host_upper_and_work(const CustomMount *m, const UserNamespace *u, int fds[], size_t *n_fds,
                               char **ret_upper, char **ret_work) {
        _cleanup_free_ char *parent = NULL, *upper = NULL, *work = NULL;
        bool temporary = startswith(m->upper, m->work);
        uid_t owner = userns_owner(u);
        char fd_path[32];
        int r;

        if (!userns_maps_tree(u)) {
                if (temporary && owner != 0 && chown(m->upper, owner, owner) < 0)
                        return log_error_errno(negative_errno(), "Failed to hand '%s' to the container's root: "
                                               "%m (%s)", m->upper, option_name(m));
                work = temporary ? path_join(m->work, "work") : strdup(m->work);
                if (!work)
                        return log_oom();
                *ret_upper = overlay_option_escape(m->upper);
                *ret_work = overlay_option_escape(work);
                return *ret_upper && *ret_work ? 0 : log_oom();
        }

        parent = strdup(temporary ? m->work : m->upper);
        if (!parent)
                return log_oom();
        if (!temporary)
                *strrchr(parent, '/') = 0;
        r = idmapped_clone(m, u, isempty(parent) ? "/" : parent, fds, n_fds, fd_path);
        if (r < 0)
                return r;
        upper = path_join(fd_path, temporary ? "upper" : path_basename(m->upper));
        work = path_join(fd_path, temporary ? "work" : path_basename(m->work));
        if (!upper || !work)
                return log_oom();
        *ret_upper = overlay_option_escape(upper);
        *ret_work = overlay_option_escape(work);
        return *ret_upper && *ret_work ? 0 : log_oom();
}

/* overlayfs works in its layers (the work directory, whiteouts, copy-up) with the credentials of
 * the process that created it. Host root's fsuid 0 has no id on an idmapped upper layer (the kernel
 * says EOVERFLOW and overlayfs falls back to read-only), so an overlay whose layers are idmapped is
 * created with the fsuid and fsgid of the container's root, which the mapping stores as the host's
 * 0, and with the capabilities that leaving fsuid 0 takes from the effective set raised again. */
static int overlay_create(int fs_fd, const UserNamespace *u) {
        uid_t owner = userns_owner(u);
        int r;

        if (!userns_maps_tree(u) || owner == 0)
                return RET_NERRNO(fsconfig(fs_fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0));
        (void) setfsgid(owner);
        (void) setfsuid(owner);
        r = capability_raise_effective();
        if (r >= 0)
                r = RET_NERRNO(fsconfig(fs_fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0));
        /* back at fsuid 0 the kernel raises the file system capabilities again */
        (void) setfsuid(0);
        (void) setfsgid(0);
        if (r < 0)
                errno = -r; /* the caller reads the kernel's explanation and errno */
        return r;
}

static int apply_overlay(int root_fd, const CustomMount *m, const UserNamespace *u) {
        _cleanup_close_ int fs_fd = -EBADF, mnt_fd = -EBADF, dest_fd = -EBADF;
        _cleanup_free_ char *lowerdir = NULL, *upper = NULL, *work = NULL;
        size_t n_lower = strv_length(m->lower), n_fds = 0;
        char err[256] = "";
        int r;

        int *fds = calloc(n_lower + 2, sizeof(int));
        if (!fds)
                return log_oom();

        for (size_t i = 0; i < n_lower; i++) {
                _cleanup_free_ char *p = NULL;
                char *j;

                r = layer_path(root_fd, m, u, m->lower[i], fds, &n_fds, &p);
                if (r < 0)
                        goto finish;
                j = lowerdir ? strjoin(lowerdir, ":", p) : strdup(p);
                if (!j) {
                        r = log_oom();
                        goto finish;
                }
                free(lowerdir);
                lowerdir = j;
        }

        /* at most two more fds: the upper layer and its work directory */
        if (m->upper && m->upper[0] == '+') {
                r = layer_path(root_fd, m, u, m->upper, fds, &n_fds, &upper);
                if (r >= 0)
                        r = tree_work_dir(root_fd, m, userns_owner(u), fds, &n_fds, &work);
        } else if (m->upper)
                r = host_upper_and_work(m, u, fds, &n_fds, &upper, &work);
        else
                r = 0;
        if (r < 0)
                goto finish;

        fs_fd = fsopen("overlay", FSOPEN_CLOEXEC);
        if (fs_fd < 0) {
                r = log_error_errno(negative_errno(), "Failed to set up an overlay file system: %m (%s)",
                                    option_name(m));
                goto finish;
        }
        if (fsconfig(fs_fd, FSCONFIG_SET_STRING, "source", "overlay", 0) < 0 ||
            fsconfig(fs_fd, FSCONFIG_SET_STRING, "lowerdir", lowerdir, 0) < 0 ||
            (upper && fsconfig(fs_fd, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0) ||
            (work && fsconfig(fs_fd, FSCONFIG_SET_STRING, "workdir", work, 0) < 0) ||
            overlay_create(fs_fd, u) < 0) {
                r = negative_errno();
                fs_context_error(fs_fd, err, sizeof err);
                r = log_error_errno(r, "Failed to overlay-mount on '%s': %m%s (%s)", m->destination, err,
                                    option_name(m));
                goto finish;
        }
        mnt_fd = fsmount(fs_fd, FSMOUNT_CLOEXEC, m->read_only ? MOUNT_ATTR_RDONLY : 0);
        if (mnt_fd < 0) {
                r = log_error_errno(negative_errno(), "Failed to overlay-mount on '%s': %m (%s)", m->destination,
                                    option_name(m));
                goto finish;
        }

        r = make_destination(root_fd, m->destination, true, userns_owner(u), &dest_fd);
        if (r < 0) {
                r = log_error_errno(r, "Failed to create the mount point '%s' in the container: %m (%s)",
                                    m->destination, option_name(m));
                goto finish;
        }
        r = mount_attach(mnt_fd, dest_fd, "");
        if (r < 0)
                r = log_error_errno(r, "Failed to overlay-mount on '%s': %m (%s)", m->destination, option_name(m));

finish:
        for (size_t i = 0; i < n_fds; i++)
                safe_close(fds[i]);
        free(fds);
        return r;
}

/* A bind mount of "node" on the detached tmpfs MNT_FD. Kernels before 6.15
 * refuse to clone from a detached mount (EINVAL): there, the tmpfs is attached
 * for a moment on the staging directory, which exists only in this mount
 * namespace's view, and detached again after the clone. */
static int clone_node(int mnt_fd, int *ret_fd) {
        char path[sizeof BERTH_STAGING_DIR + 8];
        int fd, r;

        fd = open_tree(mnt_fd, "node", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (fd >= 0) {
                *ret_fd = fd;
                return 0;
        }
        if (errno != EINVAL)
                return negative_errno();

        if (move_mount(mnt_fd, "", AT_FDCWD, BERTH_STAGING_DIR, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                return negative_errno();
        snprintf(path, sizeof path, "%s/node", BERTH_STAGING_DIR);
        fd = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        r = fd < 0 ? negative_errno() : 0;
        (void) umount2(BERTH_STAGING_DIR, MNT_DETACH | UMOUNT_NOFOLLOW);
        if (r < 0)
                return r;
        *ret_fd = fd;
        return 0;
}

/* Over-mounts the path with an empty, mode 0000, read-only node of the same
 * type, made on a private tmpfs that exists only as a detached mount. */
static int apply_inaccessible(int root_fd, const CustomMount *m) {
        _cleanup_close_ int dest_fd = -EBADF, mnt_fd = -EBADF, tree_fd = -EBADF;
        const uint64_t locked = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
        char err[256];
        struct stat st;
        int r;

        dest_fd = open_in_root(root_fd, m->destination, O_PATH);
        if (dest_fd < 0)
                return log_error_errno(dest_fd, "Failed to make '%s' inaccessible: %m (--inaccessible=)",
                                       m->destination);
        if (fstat(dest_fd, &st) < 0)
                return log_error_errno(negative_errno(), "Failed to stat '%s': %m", m->destination);

        if (S_ISDIR(st.st_mode)) {
                /* the tmpfs root itself is the empty directory */
                r = mount_tmpfs_new("mode=0000,size=4k,nr_inodes=2", locked, 0, err, sizeof err, &tree_fd);
                if (r < 0)
                        return log_error_errno(r, "Failed to create an inaccessible directory: %m%s", err);
        } else {
                r = mount_tmpfs_new("mode=0700,size=4k,nr_inodes=4", MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                               0, err, sizeof err, &mnt_fd);
                if (r < 0)
                        return log_error_errno(r, "Failed to create an inaccessible node: %m%s", err);
                /* A device node gets 0:0 and lives on a nodev mount: it opens nothing. */
                if (mknodat(mnt_fd, "node", (st.st_mode & S_IFMT) | 0000, makedev(0, 0)) < 0)
                        return log_error_errno(negative_errno(), "Failed to create an inaccessible node: %m");
                r = clone_node(mnt_fd, &tree_fd);
                if (r < 0)
                        return log_error_errno(r, "Failed to bind the inaccessible node: %m");
                r = mount_attr_set(tree_fd, locked, 0, 0, false);
                if (r < 0)
                        return log_error_errno(r, "Failed to make the inaccessible node read-only: %m");
        }

        r = mount_attach(tree_fd, dest_fd, "");
        if (r < 0)
                return log_error_errno(r, "Failed to make '%s' inaccessible: %m (--inaccessible=)", m->destination);
        return 0;
}

int custom_mounts_apply(const char *root, const CustomMount *l, size_t n, const UserNamespace *u) {
        _cleanup_close_ int root_fd = -EBADF;
        int r;

        /* In the container's child: new mount namespace whose propagation is
         * already private/slave, still the host's root (before pivot_root).
         * ROOT is the tree's mount point, a path berth made and trusts; all
         * paths below it are resolved through root_fd. */
        if (n == 0)
                return 0;

        root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0)
                return log_error_errno(negative_errno(), "Failed to open the container root '%s': %m", root);

        for (size_t i = 0; i < n; i++) {
                const CustomMount *m = &l[i];

                switch (m->type) {
                case CUSTOM_MOUNT_BIND:
                        r = apply_bind(root_fd, m, u);
                        break;
                case CUSTOM_MOUNT_TMPFS:
                        r = apply_tmpfs(root_fd, m, userns_owner(u));
                        break;
                case CUSTOM_MOUNT_OVERLAY:
                        r = apply_overlay(root_fd, m, u);
                        break;
                case CUSTOM_MOUNT_INACCESSIBLE:
                        r = apply_inaccessible(root_fd, m);
                        break;
                default:
                        r = log_error_errno(-EINVAL, "Unknown custom mount type %d.", (int) m->type);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}
