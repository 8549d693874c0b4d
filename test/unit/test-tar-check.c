/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The tar gate: archives built here block by block, fed whole and byte by byte. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "tap.h"
#include "tar-check.h"
#include "util.h"

typedef struct Ar {
        uint8_t *b;
        size_t n;
} Ar;

static void put(Ar *a, const void *p, size_t n) {
        a->b = realloc(a->b, a->n + n);
        memcpy(a->b + a->n, p, n);
        a->n += n;
}

static void pad(Ar *a) {
        static const uint8_t z[512];
        if (a->n % 512)
                put(a, z, 512 - a->n % 512);
}

static void hdr(Ar *a, const char *name, char type, unsigned mode, size_t size, const char *link, unsigned maj,
                unsigned min) {
        uint8_t h[512] = { 0 };
        unsigned sum = 0;

        strncpy((char *) h, name, 100);
        snprintf((char *) h + 100, 8, "%07o", mode);
        snprintf((char *) h + 108, 8, "%07o", 0);
        snprintf((char *) h + 116, 8, "%07o", 0);
        snprintf((char *) h + 124, 12, "%011zo", size);
        snprintf((char *) h + 136, 12, "%011o", 0);
        h[156] = (uint8_t) type;
        if (link)
                strncpy((char *) h + 157, link, 100);
        memcpy(h + 257, "ustar\0" "00", 8);
        snprintf((char *) h + 329, 8, "%07o", maj);
        snprintf((char *) h + 337, 8, "%07o", min);
        memset(h + 148, ' ', 8);
        for (size_t i = 0; i < 512; i++)
                sum += h[i];
        snprintf((char *) h + 148, 8, "%06o", sum);
        put(a, h, 512);
}

static void file(Ar *a, const char *name, unsigned mode, const char *data) {
        hdr(a, name, '0', mode, strlen(data), NULL, 0, 0);
        put(a, data, strlen(data));
        pad(a);
}

static void meta(Ar *a, char type, const char *data, size_t n) {
        hdr(a, "././@meta", type, 0644, n, NULL, 0, 0);
        put(a, data, n);
        pad(a);
}

static void pax(Ar *a, const char *key, const char *value) {
        char rec[512];
        size_t l = strlen(key) + strlen(value) + 3, len = l + 1; /* " ", "=", "\n" and the digits */
        for (;;) {
                size_t d = (size_t) snprintf(NULL, 0, "%zu", len);
                if (l + d == len)
                        break;
                len = l + d;
        }
        int k = snprintf(rec, sizeof rec, "%zu %s=%s\n", len, key, value);
        meta(a, 'x', rec, (size_t) k);
}

static void end(Ar *a) {
        static const uint8_t z[1024];
        put(a, z, sizeof z);
}

static bool dev_ok(mode_t mode, dev_t rdev) {
        return S_ISCHR(mode) && rdev == makedev(1, 3);
}

/* feeds A whole and one byte at a time: both must agree; returns the result, *ERR the reason */
static int feed(Ar *a, TarCheck policy, char **err) {
        int r[2];
        for (int w = 0; w < 2; w++) {
                TarCheck c = policy;
                c.device_allowed = dev_ok;
                r[w] = 0;
                if (w == 0)
                        r[w] = tar_check_feed(&c, a->b, a->n);
                else
                        for (size_t i = 0; i < a->n && r[w] >= 0; i++)
                                r[w] = tar_check_feed(&c, a->b + i, 1);
                if (r[w] >= 0 && !c.done)
                        r[w] = -ENODATA;
                if (w == 0 && err)
                        *err = c.error ? strdup(c.error) : NULL;
                tar_check_done(&c);
        }
        CHECK(r[0] == r[1]);
        free(a->b);
        a->b = NULL;
        a->n = 0;
        return r[0];
}

static int feed_default(Ar *a) {
        TarCheck c = TAR_CHECK_NULL;
        return feed(a, c, NULL);
}

static void test_good(void) {
        Ar a = { 0 };
        hdr(&a, "./", '5', 0755, 0, NULL, 0, 0);
        hdr(&a, "./etc/", '5', 0755, 0, NULL, 0, 0);
        file(&a, "./etc/motd", 0644, "hello\n");
        hdr(&a, "./var/mail", '5', 02775, 0, NULL, 0, 0);
        hdr(&a, "./etc/alt", '2', 0777, 0, "/usr/bin/../bin/x", 0, 0);
        hdr(&a, "./etc/h", '1', 0644, 0, "./etc/motd", 0, 0);
        hdr(&a, "./dev/null", '3', 0666, 0, NULL, 1, 3);
        pax(&a, "path", "a/very/long/name/that/is/fine");
        file(&a, "ignored", 0644, "x");
        pax(&a, "SCHILY.xattr.user.foo", "bar");
        file(&a, "withxattr", 0644, "x");
        end(&a);
        CHECK(feed_default(&a) == 0);
}

static void check_refused(Ar *a, TarCheck policy, const char *want) {
        _cleanup_free_ char *err = NULL;
        int r = feed(a, policy, &err);
        CHECK(r < 0);
        if (!err || !strstr(err, want))
                printf("# refused with '%s', wanted '%s'\n", strna(err), want);
        CHECK(err && strstr(err, want));
}

static void test_names(void) {
        TarCheck p = TAR_CHECK_NULL;
        Ar a = { 0 };

        file(&a, "/etc/passwd", 0644, "x");
        end(&a);
        check_refused(&a, p, "absolute");
        file(&a, "a/../../x", 0644, "x");
        end(&a);
        check_refused(&a, p, "'..'");
        pax(&a, "path", "../x");
        file(&a, "harmless", 0644, "x");
        end(&a);
        check_refused(&a, p, "'..'");
        meta(&a, 'L', "../../long\0", 11);
        file(&a, "harmless", 0644, "x");
        end(&a);
        check_refused(&a, p, "'..'");
        meta(&a, 'x', "10 path=a\n21 GNU.sparse.name=b\n", 31);
        file(&a, "harmless", 0644, "x");
        end(&a);
        check_refused(&a, p, "two names");
        pax(&a, "path", "a");
        pax(&a, "path", "b");
        file(&a, "harmless", 0644, "x");
        end(&a);
        check_refused(&a, p, "two pax headers");
}

static void test_symlinks(void) {
        TarCheck p = TAR_CHECK_NULL;
        Ar a = { 0 };

        hdr(&a, "l", '2', 0777, 0, "/etc", 0, 0);
        file(&a, "./l//passwd", 0644, "x");
        end(&a);
        check_refused(&a, p, "below 'l'");
        hdr(&a, "d/l", '2', 0777, 0, ".", 0, 0);
        hdr(&a, "d/l/x/", '5', 0755, 0, NULL, 0, 0);
        end(&a);
        check_refused(&a, p, "below 'd/l'");
        /* a hard link to a symlink is one too */
        hdr(&a, "l", '2', 0777, 0, "/etc", 0, 0);
        hdr(&a, "h", '1', 0777, 0, "l", 0, 0);
        file(&a, "h/passwd", 0644, "x");
        end(&a);
        check_refused(&a, p, "below 'h'");
        hdr(&a, "h", '1', 0644, 0, "/etc/shadow", 0, 0);
        end(&a);
        check_refused(&a, p, "out of the tree");
        hdr(&a, "h", '1', 0644, 0, "x/../../etc/shadow", 0, 0);
        end(&a);
        check_refused(&a, p, "out of the tree");
        hdr(&a, "l", '2', 0777, 0, "/etc", 0, 0);
        hdr(&a, "h", '1', 0644, 0, "l/shadow", 0, 0);
        end(&a);
        check_refused(&a, p, "below 'l'");
}

static void test_privileges(void) {
        TarCheck p = TAR_CHECK_NULL, keep = { .keep_devices = true, .keep_setuid = true, .keep_caps = true };
        Ar a = { 0 };

        for (int k = 0; k < 2; k++) {
                hdr(&a, "dev/sda", '4', 0660, 0, NULL, 8, 0);
                end(&a);
                if (k)
                        CHECK(feed(&a, keep, NULL) == 0);
                else
                        check_refused(&a, p, "--keep-devices");
                file(&a, "su", 04755, "x");
                end(&a);
                if (k)
                        CHECK(feed(&a, keep, NULL) == 0);
                else
                        check_refused(&a, p, "--keep-setuid");
                file(&a, "wall", 02755, "x");
                end(&a);
                if (k)
                        CHECK(feed(&a, keep, NULL) == 0);
                else
                        check_refused(&a, p, "setgid");
                pax(&a, "SCHILY.xattr.security.capability", "\x01\x02");
                file(&a, "ping", 0755, "x");
                end(&a);
                if (k)
                        CHECK(feed(&a, keep, NULL) == 0);
                else
                        check_refused(&a, p, "--keep-capabilities");
        }
}

static void test_bounds(void) {
        TarCheck p = { .max_bytes = 10 * 512 }, q = { .max_entries = 3 };
        _cleanup_free_ char *big = malloc(20 * 512 + 1);
        Ar a = { 0 };

        memset(big, 'z', 20 * 512);
        big[20 * 512] = 0;
        file(&a, "big", 0644, big);
        end(&a);
        check_refused(&a, p, "expands beyond");
        for (int i = 0; i < 4; i++)
                file(&a, "f", 0644, "x");
        end(&a);
        check_refused(&a, q, "more than 3 members");
        for (int i = 0; i < 3; i++)
                file(&a, "f", 0644, "x");
        end(&a);
        CHECK(feed(&a, q, NULL) == 0);
}

static void test_malformed(void) {
        TarCheck p = TAR_CHECK_NULL;
        Ar a = { 0 };

        file(&a, "f", 0644, "x");
        a.b[0] = 'g'; /* the checksum no longer fits */
        end(&a);
        check_refused(&a, p, "checksum");
        hdr(&a, "d", '5', 0755, 512, NULL, 0, 0);
        file(&a, "hidden", 0644, "x");
        end(&a);
        check_refused(&a, p, "has data");
        hdr(&a, "m", 'M', 0644, 0, NULL, 0, 0);
        end(&a);
        check_refused(&a, p, "type 'M'");
        file(&a, "f", 0644, "x");
        put(&a, (uint8_t[512]) { 0 }, 512);
        file(&a, "after", 0644, "x");
        end(&a);
        check_refused(&a, p, "lone zero block");
}

int main(void) {
        static const TapCase cases[] = {
                { "good archive", test_good },
                { "names", test_names },
                { "symlinks and hard links", test_symlinks },
                { "devices, setuid, capabilities", test_privileges },
                { "bounds", test_bounds },
                { "malformed", test_malformed },
        };
        return tap_run(cases, ELEMENTSOF(cases));
}
