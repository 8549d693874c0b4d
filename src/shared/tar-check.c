/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The headers of a tar stream, read as the bytes go by (see tar-check.h). We only need to know
 * where each member starts, its name, type, mode, link target, device numbers and xattr names,
 * so this is a reader of the ustar layout with the two extensions GNU tar writes (pax 'x' and
 * 'g' records, GNU 'L'/'K' long names, old GNU sparse 'S'), not an extractor. Where tar could
 * read a header differently from us (a bad checksum tar would skip to resynchronize, data on a
 * type that has none, a type we do not know, "path" and "GNU.sparse.name" that disagree), the
 * archive is refused: the gate is only worth something if it sees what tar sees.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "tar-check.h"
#include "util.h"

enum {
        ST_HEADER,
        ST_DATA,       /* skipping c->skip bytes, then a header */
        ST_META,       /* collecting c->meta, then its padding */
        ST_SPARSE_EXT, /* GNU sparse extension blocks, then the data */
        ST_ZERO,       /* one zero block seen: the next must be one too */
        ST_END,
};

#define META_MAX (1024 * 1024)

static uint64_t round_block(uint64_t n) {
        return (n + 511) / 512 * 512;
}

static int refuse(TarCheck *c, int r, const char *fmt, ...) {
        va_list ap;

        free(c->error);
        c->error = NULL;
        va_start(ap, fmt);
        if (vasprintf(&c->error, fmt, ap) < 0)
                c->error = NULL;
        va_end(ap);
        return r;
}

/* an octal or base-256 number field; false: not a number */
static bool parse_number(const uint8_t *f, size_t len, uint64_t *ret) {
        uint64_t v = 0;
        size_t i = 0;

        if (f[0] & 0x80) {
                if (f[0] & 0x40)
                        return false; /* negative */
                v = f[0] & 0x3f;
                for (i = 1; i < len; i++) {
                        if (v >> 56)
                                return false;
                        v = v << 8 | f[i];
                }
                *ret = v;
                return true;
        }
        while (i < len && f[i] == ' ')
                i++;
        for (; i < len && f[i] >= '0' && f[i] <= '7'; i++) {
                if (v >> 60)
                        return false;
                v = v * 8 + (uint64_t) (f[i] - '0');
        }
        for (; i < len; i++)
                if (f[i] != ' ' && f[i] != 0)
                        return false;
        *ret = v;
        return true;
}

static bool block_zero(const uint8_t *b) {
        for (size_t i = 0; i < 512; i++)
                if (b[i])
                        return false;
        return true;
}

static bool checksum_ok(const uint8_t *b) {
        uint64_t want;
        unsigned long u = 0;
        long s = 0;

        if (!parse_number(b + 148, 8, &want))
                return false;
        for (size_t i = 0; i < 512; i++) {
                uint8_t v = i >= 148 && i < 156 ? ' ' : b[i];
                u += v;
                s += (signed char) v;
        }
        return want == u || (s >= 0 && want == (uint64_t) s);
}

static char *field(const uint8_t *f, size_t len) {
        return strndup((const char *) f, strnlen((const char *) f, len));
}

/* "./a//b/./c/" -> "a/b/c"; 1: absolute, 2: a ".." component */
static int normalize(const char *in, char **ret) {
        size_t n = strlen(in), o = 0;
        char *out;

        if (in[0] == '/')
                return 1;
        out = malloc(n + 1);
        if (!out)
                return -ENOMEM;
        for (const char *p = in; *p;) {
                size_t l = strcspn(p, "/");
                if (l == 2 && p[0] == '.' && p[1] == '.') {
                        free(out);
                        return 2;
                }
                if (l > 0 && !(l == 1 && p[0] == '.')) {
                        if (o > 0)
                                out[o++] = '/';
                        memcpy(out + o, p, l);
                        o += l;
                }
                p += l;
                p += strspn(p, "/");
        }
        out[o] = 0;
        *ret = out;
        return 0;
}

static uint64_t hash(const char *s, size_t n) {
        uint64_t h = 1469598103934665603ULL;
        for (size_t i = 0; i < n; i++)
                h = (h ^ (uint8_t) s[i]) * 1099511628211ULL;
        return h;
}

static bool link_has(const TarCheck *c, const char *s, size_t n) {
        if (c->n_buckets == 0)
                return false;
        for (size_t i = hash(s, n) & (c->n_buckets - 1);; i = (i + 1) & (c->n_buckets - 1)) {
                const char *e = c->links[i];
                if (!e)
                        return false;
                if (strlen(e) == n && memcmp(e, s, n) == 0)
                        return true;
        }
}

static int link_add(TarCheck *c, const char *s) {
        if (link_has(c, s, strlen(s)))
                return 0;
        if ((c->n_links + 1) * 2 > c->n_buckets) {
                size_t nb = c->n_buckets ? c->n_buckets * 2 : 64;
                char **nl = calloc(nb, sizeof *nl);
                if (!nl)
                        return -ENOMEM;
                for (size_t i = 0; i < c->n_buckets; i++) {
                        char *e = c->links[i];
                        if (!e)
                                continue;
                        size_t j = hash(e, strlen(e)) & (nb - 1);
                        while (nl[j])
                                j = (j + 1) & (nb - 1);
                        nl[j] = e;
                }
                free(c->links);
                c->links = nl;
                c->n_buckets = nb;
        }
        char *d = strdup(s);
        if (!d)
                return -ENOMEM;
        size_t j = hash(d, strlen(d)) & (c->n_buckets - 1);
        while (c->links[j])
                j = (j + 1) & (c->n_buckets - 1);
        c->links[j] = d;
        c->n_links++;
        return 0;
}

/* the symlink of the archive that NAME (normalized) lies below, or NULL */
static const char *below_link(const TarCheck *c, const char *name, size_t *ret_len) {
        for (const char *p = strchr(name, '/'); p; p = strchr(p + 1, '/'))
                if (link_has(c, name, (size_t) (p - name))) {
                        *ret_len = (size_t) (p - name);
                        return name;
                }
        return NULL;
}

static void member_reset(TarCheck *c) {
        free(c->long_name);
        free(c->long_link);
        free(c->pax_path);
        free(c->pax_linkpath);
        c->long_name = c->long_link = c->pax_path = c->pax_linkpath = NULL;
        c->pax_has_size = c->pax_caps = c->pax_seen = false;
        c->pax_size = 0;
}

static bool key_is_caps(const char *key) {
        const char *x = startswith_ptr(key, "SCHILY.xattr.");
        if (!x)
                x = startswith_ptr(key, "LIBARCHIVE.xattr.");
        return x && streq(x, "security.capability");
}

/* pax records "LEN KEY=VALUE\n" of an 'x' (GLOBAL: 'g') header */
static int parse_pax(TarCheck *c, bool global) {
        const char *p = c->meta, *end = c->meta + c->meta_fill;
        char *sparse_name = NULL, *path = NULL;
        int r = 0;

        while (p < end) {
                uint64_t len = 0;
                const char *q = p, *key, *eq;
                while (q < end && *q >= '0' && *q <= '9' && len < META_MAX)
                        len = len * 10 + (uint64_t) (*q++ - '0');
                if (q == p || q >= end || *q != ' ' || len > (uint64_t) (end - p) || p[len - 1] != '\n') {
                        r = refuse(c, -EBADMSG, "a malformed pax header");
                        goto out;
                }
                key = q + 1;
                eq = memchr(key, '=', (size_t) (p + len - 1 - key));
                if (!eq) {
                        r = refuse(c, -EBADMSG, "a malformed pax header");
                        goto out;
                }
                _cleanup_free_ char *k = strndup(key, (size_t) (eq - key));
                _cleanup_free_ char *v = strndup(eq + 1, (size_t) (p + len - 1 - (eq + 1)));
                if (!k || !v) {
                        r = -ENOMEM;
                        goto out;
                }
                p += len;

                if (key_is_caps(k) && !c->keep_caps) {
                        c->pax_caps = true;
                        continue;
                }
                if (!streq(k, "path") && !streq(k, "linkpath") && !streq(k, "size") && !streq(k, "GNU.sparse.name"))
                        continue;
                if (global) {
                        r = refuse(c, -EPERM, "a global pax header sets '%s'", k);
                        goto out;
                }
                if (streq(k, "size")) {
                        if (safe_atou64(v, &c->pax_size) < 0) {
                                r = refuse(c, -EBADMSG, "a malformed pax size '%s'", v);
                                goto out;
                        }
                        c->pax_has_size = true;
                } else if (streq(k, "linkpath")) {
                        free(c->pax_linkpath);
                        c->pax_linkpath = TAKE_PTR(v);
                } else if (streq(k, "path")) {
                        free(path);
                        path = TAKE_PTR(v);
                } else {
                        free(sparse_name);
                        sparse_name = TAKE_PTR(v);
                }
        }
        if (path && sparse_name && !streq(path, sparse_name)) {
                r = refuse(c, -EBADMSG, "a pax header with two names, '%s' and '%s'", path, sparse_name);
                goto out;
        }
        if (path || sparse_name) {
                free(c->pax_path);
                c->pax_path = sparse_name ? TAKE_PTR(sparse_name) : TAKE_PTR(path);
        }
out:
        if (global && c->pax_caps && r >= 0)
                r = refuse(c, -EPERM, "a global pax header sets a security.capability xattr (--keep-capabilities "
                                      "keeps them)");
        free(sparse_name);
        free(path);
        return r;
}

static int meta_done(TarCheck *c) {
        char *s;
        int r = 0;

        switch (c->meta_type) {
        case 'L':
        case 'K':
                s = strndup(c->meta, strnlen(c->meta, c->meta_fill));
                if (!s)
                        return -ENOMEM;
                if (c->meta_type == 'L') {
                        free(c->long_name);
                        c->long_name = s;
                } else {
                        free(c->long_link);
                        c->long_link = s;
                }
                break;
        case 'x':
        case 'g':
                r = parse_pax(c, c->meta_type == 'g');
                break;
        }
        free(c->meta);
        c->meta = NULL;
        c->meta_fill = c->meta_size = 0;
        return r;
}

static int member(TarCheck *c, const uint8_t *b) {
        _cleanup_free_ char *raw = NULL, *name = NULL, *rawlink = NULL, *target = NULL;
        char type = (char) b[156];
        uint64_t mode, size, dmaj = 0, dmin = 0;
        bool ustar = memcmp(b + 257, "ustar\0", 6) == 0;
        size_t len;
        int r;

        if (!parse_number(b + 100, 8, &mode) || !parse_number(b + 124, 12, &size))
                return refuse(c, -EBADMSG, "a malformed header");

        /* headers of the next member: their data is collected */
        if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
                if (size > META_MAX)
                        return refuse(c, -EBADMSG, "an extended header of %llu bytes", (unsigned long long) size);
                if (type == 'x' && c->pax_seen)
                        return refuse(c, -EBADMSG, "two pax headers for one member");
                c->pax_seen = c->pax_seen || type == 'x';
                free(c->meta);
                c->meta = malloc((size_t) size + 1);
                if (!c->meta)
                        return -ENOMEM;
                c->meta_type = type;
                c->meta_size = (size_t) size;
                c->meta_fill = 0;
                c->state = ST_META;
                return 0;
        }
        if (c->pax_has_size)
                size = c->pax_size;

        c->entries++;
        if (c->max_entries > 0 && c->entries > c->max_entries) {
                c->limit_hit = true;
                return refuse(c, -EPERM, "it has more than %llu members (--max-files=)",
                              (unsigned long long) c->max_entries);
        }

        if (c->pax_path)
                raw = strdup(c->pax_path);
        else if (c->long_name)
                raw = strdup(c->long_name);
        else if (ustar && b[345]) {
                _cleanup_free_ char *prefix = field(b + 345, 155), *n = field(b, 100);
                raw = prefix && n ? strjoin(prefix, "/", n) : NULL;
        } else
                raw = field(b, 100);
        if (!raw)
                return -ENOMEM;

        /* a regular file whose name ends in "/" is a directory to tar */
        if ((type == '0' || type == 0 || type == '7') && endswith(raw, "/")) {
                if (size > 0)
                        return refuse(c, -EBADMSG, "member '%s' is a directory with data", raw);
                type = '5';
        }

        r = normalize(raw, &name);
        if (r < 0)
                return r;
        if (r == 1)
                return refuse(c, -EPERM, "member '%s' has an absolute name", raw);
        if (r == 2)
                return refuse(c, -EPERM, "member '%s' has a '..' in its name", raw);
        if (isempty(name) && type != '5')
                return refuse(c, -EPERM, "a member without a name");
        if (below_link(c, name, &len))
                return refuse(c, -EPERM, "member '%s' lies below '%.*s', a symlink of the archive", raw, (int) len,
                              name);
        if (c->pax_caps && !c->keep_caps)
                return refuse(c, -EPERM, "member '%s' has a security.capability xattr (--keep-capabilities keeps them)",
                              raw);

        switch (type) {
        case 0:
        case '0':
        case '7':
        case 'S':
                if ((mode & (S_ISUID | S_ISGID)) && !c->keep_setuid)
                        return refuse(c, -EPERM, "member '%s' is set%cid (--keep-setuid keeps such bits)", raw,
                                      mode & S_ISUID ? 'u' : 'g');
                c->skip = round_block(size);
                c->state = ST_DATA;
                if (type == 'S' && b[482])
                        c->state = ST_SPARSE_EXT;
                break;
        case '1':
                if (c->pax_linkpath)
                        rawlink = strdup(c->pax_linkpath);
                else if (c->long_link)
                        rawlink = strdup(c->long_link);
                else
                        rawlink = field(b + 157, 100);
                if (!rawlink)
                        return -ENOMEM;
                r = normalize(rawlink, &target);
                if (r < 0)
                        return r;
                if (r > 0 || isempty(target))
                        return refuse(c, -EPERM, "hard link '%s' points out of the tree, to '%s'", raw, rawlink);
                if (below_link(c, target, &len))
                        return refuse(c, -EPERM, "hard link '%s' points below '%.*s', a symlink of the archive", raw,
                                      (int) len, target);
                /* a hard link to a symlink is a symlink */
                if (link_has(c, target, strlen(target)) && link_add(c, name) < 0)
                        return -ENOMEM;
                __attribute__((fallthrough));
        case '2':
                if (type == '2' && link_add(c, name) < 0)
                        return -ENOMEM;
                __attribute__((fallthrough));
        case '3':
        case '4':
        case '5':
        case '6':
                if (size > 0)
                        return refuse(c, -EBADMSG, "member '%s' of type '%c' has data", raw, type);
                if (type == '3' || type == '4') {
                        mode_t m = type == '3' ? S_IFCHR : S_IFBLK;
                        if (!parse_number(b + 329, 8, &dmaj) || !parse_number(b + 337, 8, &dmin) ||
                            dmaj > UINT32_MAX || dmin > UINT32_MAX)
                                return refuse(c, -EBADMSG, "a malformed header");
                        if (!c->keep_devices &&
                            !(c->device_allowed && c->device_allowed(m, makedev((unsigned) dmaj, (unsigned) dmin))))
                                return refuse(c, -EPERM, "member '%s' is the device node %c %llu:%llu "
                                                         "(--keep-devices keeps them)", raw, type == '3' ? 'c' : 'b',
                                              (unsigned long long) dmaj, (unsigned long long) dmin);
                }
                c->state = ST_HEADER;
                break;
        default:
                if (type >= 0x20 && type < 0x7f)
                        return refuse(c, -EBADMSG, "member '%s' has the type '%c', which berthctl does not import",
                                      raw, type);
                return refuse(c, -EBADMSG, "member '%s' has the type 0x%02x, which berthctl does not import", raw,
                              (unsigned) (uint8_t) type);
        }
        if (c->state == ST_SPARSE_EXT)
                c->skip = round_block(size); /* after the extension blocks */
        member_reset(c);
        return 0;
}

static int block(TarCheck *c, const uint8_t *b) {
        switch (c->state) {
        case ST_HEADER:
                if (block_zero(b)) {
                        c->state = ST_ZERO;
                        return 0;
                }
                if (!checksum_ok(b))
                        return refuse(c, -EBADMSG, "a header with a bad checksum after %llu members",
                                      (unsigned long long) c->entries);
                return member(c, b);
        case ST_ZERO:
                if (!block_zero(b))
                        return refuse(c, -EBADMSG, "a lone zero block after %llu members",
                                      (unsigned long long) c->entries);
                c->state = ST_END;
                c->done = true;
                return 0;
        case ST_SPARSE_EXT:
                if (!b[504])
                        c->state = ST_DATA;
                return 0;
        }
        return 0;
}

int tar_check_feed(TarCheck *c, const uint8_t *p, size_t n) {
        int r;

        if (c->error)
                return -EPERM;
        c->bytes += n;
        if (c->max_bytes > 0 && c->bytes > c->max_bytes) {
                char buf[32];
                c->limit_hit = true;
                return refuse(c, -EPERM, "it expands beyond %s (--max-size=)", format_bytes(c->max_bytes, buf, sizeof buf));
        }
        while (n > 0 && c->state != ST_END) {
                size_t k;

                if (c->state == ST_DATA) {
                        k = (size_t) MIN((uint64_t) n, c->skip);
                        c->skip -= k;
                        p += k;
                        n -= k;
                        if (c->skip == 0)
                                c->state = ST_HEADER;
                        continue;
                }
                if (c->state == ST_META) {
                        if (c->meta_fill < c->meta_size) {
                                k = MIN(n, c->meta_size - c->meta_fill);
                                memcpy(c->meta + c->meta_fill, p, k);
                                c->meta_fill += k;
                                p += k;
                                n -= k;
                        }
                        if (c->meta_fill == c->meta_size) {
                                c->meta[c->meta_fill] = 0;
                                c->skip = round_block(c->meta_size) - c->meta_size;
                                r = meta_done(c);
                                if (r < 0)
                                        return r;
                                c->state = c->skip > 0 ? ST_DATA : ST_HEADER;
                        }
                        continue;
                }
                k = MIN(n, sizeof c->block - c->fill);
                memcpy(c->block + c->fill, p, k);
                c->fill += k;
                p += k;
                n -= k;
                if (c->fill < sizeof c->block)
                        continue;
                c->fill = 0;
                r = block(c, c->block);
                if (r < 0)
                        return r;
        }
        return 0;
}

void tar_check_done(TarCheck *c) {
        member_reset(c);
        free(c->meta);
        c->meta = NULL;
        free(c->error);
        c->error = NULL;
        for (size_t i = 0; i < c->n_buckets; i++)
                free(c->links[i]);
        free(c->links);
        c->links = NULL;
        c->n_links = c->n_buckets = 0;
}
