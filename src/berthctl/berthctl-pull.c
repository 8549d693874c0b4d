/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pull-tar and pull-raw: machinectl's verbs that download an image and import it.
 *
 * The download goes with libcurl into a hidden temporary file in the image directory
 * (.#berthctl-NAME-XXXXXX, flock()ed while we live, so that 'berthctl clean' removes it should
 * we be killed), its SHA-256 computed on the way. Before anything is extracted or put in place
 * it is checked as --verify= says, as machinectl does: SHA256SUMS in the URL's directory must
 * list the file's name with that checksum, and (signature, the default) SHA256SUMS.gpg must be a
 * good signature of SHA256SUMS by a key of the import keyring, which gpgv checks. Only then does
 * the file go through import-tar's or import-raw's path (berthctl-import.c: a tar in a mount
 * namespace where only the new directory is writable, decompressors in a pipe) into a second
 * temporary that is renamed into place. A refused, failed or interrupted pull leaves nothing.
 *
 * The URL is not trusted either: only http, https and file, redirects only to http and https,
 * and nothing of it reaches a local path but the name of the new image, which must be a valid
 * machine name.
 */

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berthctl.h"
#include "berthctl-images.h"
#include "berthctl-import.h"
#include "copy.h"
#include "dl-load.h"
#include "log.h"
#include "util.h"

static const char *const import_verify_table[_IMPORT_VERIFY_MAX] = {
        [IMPORT_VERIFY_SIGNATURE] = "signature",
        [IMPORT_VERIFY_CHECKSUM] = "checksum",
        [IMPORT_VERIFY_NO] = "no",
};

#define CURL_SYMBOLS(X)                                                                                 \
        X(curl_easy_cleanup) X(curl_easy_getinfo) X(curl_easy_init) X(curl_easy_perform)                \
        X(curl_easy_setopt) X(curl_easy_strerror) X(curl_free) X(curl_global_init) X(curl_url)          \
        X(curl_url_cleanup) X(curl_url_get) X(curl_url_set) X(curl_url_strerror)
#define LIBCRYPTO_SYMBOLS(X)                                                                            \
        X(EVP_DigestFinal_ex) X(EVP_DigestInit_ex) X(EVP_DigestUpdate) X(EVP_MD_CTX_free)               \
        X(EVP_MD_CTX_new) X(EVP_sha256)
CURL_SYMBOLS(DL_DECLARE)
LIBCRYPTO_SYMBOLS(DL_DECLARE)

/* libcurl and OpenSSL's libcrypto, loaded by the pull verbs only (dl-load.h): the other verbs
 * start without them and the dozen libraries they bring. Logs. */
static int pull_libraries_load(void) {
        static const DlSymbol curl_symbols[] = { CURL_SYMBOLS(DL_ENTRY) };
        static const DlSymbol crypto_symbols[] = { LIBCRYPTO_SYMBOLS(DL_ENTRY) };
        static void *curl_handle, *crypto_handle;
        const char *e;
        int r;

        r = dl_load(&curl_handle, "libcurl.so.4", curl_symbols, ELEMENTSOF(curl_symbols), &e);
        if (r < 0)
                return log_error_errno(r, "Failed to load libcurl, which downloads need: %s. Install libcurl4.", e);
        r = dl_load(&crypto_handle, "libcrypto.so.3", crypto_symbols, ELEMENTSOF(crypto_symbols), &e);
        if (r < 0)
                return log_error_errno(r, "Failed to load OpenSSL's libcrypto, which checksums need: %s. Install "
                                          "libssl3.", e);
        return 0;
}

const char *import_verify_to_string(ImportVerify v) {
        return v >= 0 && v < _IMPORT_VERIFY_MAX ? import_verify_table[v] : NULL;
}

int import_verify_from_string(const char *s) {
        return string_table_lookup(import_verify_table, _IMPORT_VERIFY_MAX, s);
}

/* Where the keys that sign SHA256SUMS are: berth's own keyring first, then systemd's (which
 * machinectl uses, and Debian's systemd-container fills with the keys of systemd's images).
 * $BERTH_IMPORT_KEYRING replaces the list. */
static const char *const keyring_paths[] = {
        "/etc/berth/import-pubring.gpg",
        "/etc/systemd/import-pubring.gpg",
        "/usr/lib/systemd/import-pubring.gpg",
};

static int find_keyring(char **ret) {
        const char *e = getenv("BERTH_IMPORT_KEYRING");

        if (e) {
                if (access(e, R_OK) < 0)
                        return log_error_errno(negative_errno(), "Failed to open keyring '%s' ($BERTH_IMPORT_KEYRING): "
                                                                 "%m; or pass --verify=checksum.", e);
                *ret = strdup(e);
                return *ret ? 0 : log_oom();
        }
        for (size_t i = 0; i < ELEMENTSOF(keyring_paths); i++)
                if (access(keyring_paths[i], R_OK) >= 0) {
                        *ret = strdup(keyring_paths[i]);
                        return *ret ? 0 : log_oom();
                }
        return log_error_errno(-ENOKEY, "No keyring to check signatures with: put the signers' keys into %s, or "
                                        "pass --verify=checksum.", keyring_paths[0]);
}

/* ---- URLs ---- */

typedef struct PullUrl {
        char *url;       /* as libcurl normalized it ("a/../b" resolved) */
        char *file;      /* its last path component, decoded */
        char *sums_url;  /* SHA256SUMS in the same directory */
        char *sig_url;   /* SHA256SUMS.gpg */
} PullUrl;

/* The cleanups run on every return of verb_pull(), also the one where libcurl or libcrypto could
 * not be loaded and the sym_ pointers are NULL: they call into a library only for what it made. */
static void curl_free_nonnull(char *p) {
        if (p)
                sym_curl_free(p);
}

static void pull_url_done(PullUrl *u) {
        curl_free_nonnull(u->url);
        free(u->file);
        curl_free_nonnull(u->sums_url);
        curl_free_nonnull(u->sig_url);
}

static void curl_url_cleanupp(CURLU **h) {
        if (*h)
                sym_curl_url_cleanup(*h);
}

static void curl_freep(char **p) {
        curl_free_nonnull(*p);
}

/* The URL of NAME next to the file (no query, no fragment). */
static int sibling_url(CURLU *h, const char *dir, const char *name, char **ret) {
        _cleanup_free_ char *path = strjoin(dir, name);

        if (!path)
                return -ENOMEM;
        if (sym_curl_url_set(h, CURLUPART_PATH, path, 0) != CURLUE_OK || sym_curl_url_set(h, CURLUPART_QUERY, NULL, 0) != CURLUE_OK ||
            sym_curl_url_set(h, CURLUPART_FRAGMENT, NULL, 0) != CURLUE_OK || sym_curl_url_get(h, CURLUPART_URL, ret, 0) != CURLUE_OK)
                return -EINVAL;
        return 0;
}

static int pull_url_parse(const char *s, PullUrl *ret) {
        _cleanup_(curl_url_cleanupp) CURLU *h = sym_curl_url();
        _cleanup_(curl_freep) char *scheme = NULL, *path = NULL, *decoded = NULL;
        _cleanup_free_ char *dir = NULL;
        PullUrl u = {};
        CURLUcode uc;
        char *slash;

        if (!h)
                return log_oom();
        if (isempty(s))
                return log_error_errno(-EINVAL, "Invalid URL: empty; expected http://, https:// or file://.");
        uc = sym_curl_url_set(h, CURLUPART_URL, s, 0);
        if (uc != CURLUE_OK)
                return log_error_errno(-EINVAL, "Invalid URL '%s': %s; expected http://, https:// or file://.", s,
                                       sym_curl_url_strerror(uc));
        if (sym_curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            (!streq(scheme, "http") && !streq(scheme, "https") && !streq(scheme, "file")))
                return log_error_errno(-EPROTONOSUPPORT, "Invalid URL '%s': only http://, https:// and file:// are "
                                                         "supported.", s);
        if (sym_curl_url_get(h, CURLUPART_PATH, &path, 0) != CURLUE_OK ||
            sym_curl_url_get(h, CURLUPART_PATH, &decoded, CURLU_URLDECODE) != CURLUE_OK)
                return log_error_errno(-EINVAL, "Invalid URL '%s': it has no path.", s);
        slash = strrchr(decoded, '/');
        if (isempty(slash ? slash + 1 : decoded))
                return log_error_errno(-EINVAL, "Invalid URL '%s': it names a directory, not a file.", s);
        u.file = strdup(slash ? slash + 1 : decoded);
        dir = strdup(path);
        if (!u.file || !dir)
                return log_oom();
        slash = strrchr(dir, '/');
        if (slash)
                slash[1] = 0;
        else
                dir[0] = 0;
        if (sym_curl_url_get(h, CURLUPART_URL, &u.url, 0) != CURLUE_OK ||
            sibling_url(h, dir, "SHA256SUMS", &u.sums_url) < 0 || sibling_url(h, dir, "SHA256SUMS.gpg", &u.sig_url) < 0) {
                pull_url_done(&u);
                return log_error_errno(-EINVAL, "Invalid URL '%s'.", s);
        }
        *ret = u;
        return 0;
}

/* ---- downloads ---- */

typedef struct Download {
        const char *url;
        int fd;               /* the body goes here, or (-EBADF) into mem, at most max bytes */
        char *mem;
        size_t size, max;
        EVP_MD_CTX *sha;      /* or NULL */
        uint64_t n;
        ProgressBar *bar;     /* or NULL */
        int error;            /* of ours, while writing */
} Download;

static size_t download_write(char *p, size_t size, size_t nmemb, void *userdata) {
        Download *d = userdata;
        size_t l = size * nmemb;
        int r;

        if (cancelled)
                return 0;
        if (d->fd >= 0) {
                r = loop_write(d->fd, p, l);
                if (r < 0) {
                        d->error = r;
                        return 0;
                }
        } else {
                char *m;
                if (d->size + l > d->max) {
                        d->error = -EFBIG;
                        return 0;
                }
                m = realloc(d->mem, d->size + l + 1);
                if (!m) {
                        d->error = -ENOMEM;
                        return 0;
                }
                d->mem = m;
                memcpy(d->mem + d->size, p, l);
                d->size += l;
                d->mem[d->size] = 0;
        }
        if (d->sha && sym_EVP_DigestUpdate(d->sha, p, l) != 1) {
                d->error = -EIO;
                return 0;
        }
        d->n += l;
        return l;
}

static int download_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                             curl_off_t ulnow) {
        Download *d = userdata;

        if (cancelled)
                return 1;
        if (d->bar) {
                if (d->bar->total == 0 && dltotal > 0)
                        d->bar->total = (uint64_t) dltotal;
                progress_bar_update(d->bar, (uint64_t) dlnow);
        }
        return 0;
}

static void curl_easy_cleanupp(CURL **c) {
        if (*c)
                sym_curl_easy_cleanup(*c);
}

/* HINT: appended to the message when the server has no such file. */
static int download(Download *d, const char *hint) {
        _cleanup_(curl_easy_cleanupp) CURL *c = sym_curl_easy_init();
        char err[CURL_ERROR_SIZE] = "";
        long code = 0;
        CURLcode cc;

        if (!c)
                return log_oom();
        if (sym_curl_easy_setopt(c, CURLOPT_URL, d->url) != CURLE_OK ||
            sym_curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,file") != CURLE_OK ||
            /* never from the network to a local file */
            sym_curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK ||
            sym_curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L) != CURLE_OK ||
            sym_curl_easy_setopt(c, CURLOPT_MAXREDIRS, 16L) != CURLE_OK ||
            sym_curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L) != CURLE_OK ||
            sym_curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            sym_curl_easy_setopt(c, CURLOPT_USERAGENT, "berthctl/" BERTH_VERSION) != CURLE_OK ||
            sym_curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err) != CURLE_OK ||
            sym_curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 60L) != CURLE_OK ||
            /* a server that stalls for a minute is gone */
            sym_curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L) != CURLE_OK ||
            sym_curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L) != CURLE_OK ||
            sym_curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, download_write) != CURLE_OK ||
            sym_curl_easy_setopt(c, CURLOPT_WRITEDATA, d) != CURLE_OK ||
            sym_curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L) != CURLE_OK ||
            sym_curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, download_progress) != CURLE_OK ||
            sym_curl_easy_setopt(c, CURLOPT_XFERINFODATA, d) != CURLE_OK)
                return log_error_errno(-EIO, "Failed to set up the download of '%s'.", d->url);

        cc = sym_curl_easy_perform(c);
        if (cancelled)
                return log_error_errno(-ECANCELED, "Interrupted: nothing is left behind.");
        if (d->error == -EFBIG)
                return log_error_errno(-EFBIG, "Failed to download '%s': it is larger than %zu bytes, not a list of "
                                               "checksums or a signature.", d->url, d->max);
        if (d->error < 0)
                return log_error_errno(d->error, "Failed to save the download of '%s': %m", d->url);
        if (cc == CURLE_HTTP_RETURNED_ERROR) {
                (void) sym_curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
                return log_error_errno(code == 404 ? -ENOENT : -EIO, "Failed to download '%s': the server answered "
                                       "%ld%s%s.", d->url, code, code == 404 ? " (not found)" : "",
                                       code == 404 ? strempty(hint) : "");
        }
        if (cc == CURLE_FILE_COULDNT_READ_FILE)
                return log_error_errno(-ENOENT, "Failed to download '%s': no such file%s.", d->url, strempty(hint));
        if (cc != CURLE_OK)
                return log_error_errno(-EIO, "Failed to download '%s': %s.", d->url, *err ? err : sym_curl_easy_strerror(cc));
        return 0;
}

/* ---- verification ---- */

/* Finds FILE's checksum in SHA256SUMS: "HEX  FILE" or "HEX *FILE" (sha256sum's formats) or
 * "SHA256 (FILE) = HEX" (the BSD format, which Fedora's CHECKSUM files use). */
static int sums_find(const char *sums, const char *file, uint8_t ret[32]) {
        size_t fl = strlen(file);

        for (const char *l = sums; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
                size_t n = strcspn(l, "\r\n");
                const char *hex = NULL;

                if (n > 66 && (l[64] == ' ' && (l[65] == ' ' || l[65] == '*')) && n - 66 == fl &&
                    memcmp(l + 66, file, fl) == 0)
                        hex = l;
                else if (startswith(l, "SHA256 (") && n == 8 + fl + 4 + 64 && memcmp(l + 8, file, fl) == 0 &&
                         memcmp(l + 8 + fl, ") = ", 4) == 0)
                        hex = l + 8 + fl + 4;
                if (!hex)
                        continue;
                for (size_t i = 0; i < 32; i++) {
                        unsigned v;
                        if (sscanf(hex + 2 * i, "%2x", &v) != 1 || !strchr("0123456789abcdefABCDEF", hex[2 * i]) ||
                            !strchr("0123456789abcdefABCDEF", hex[2 * i + 1]))
                                return -EBADMSG;
                        ret[i] = (uint8_t) v;
                }
                return 0;
        }
        return -ENOENT;
}

static int memfd_with(const char *name, const void *data, size_t size) {
        _cleanup_close_ int fd = memfd_create(name, MFD_CLOEXEC);

        if (fd < 0)
                return negative_errno();
        if (loop_write(fd, data, size) < 0 || lseek(fd, 0, SEEK_SET) < 0)
                return negative_errno();
        return TAKE_FD(fd);
}

static void rm_rf_freep(char **p) {
        if (*p) {
                (void) rm_rf(*p);
                free(*p);
        }
}

/* The most telling line of what gpgv said, for a one-line error. */
static char *gpgv_reason(int fd) {
        static const char *const telling[] = { "BAD signature", "Can't check signature", "no valid OpenPGP data",
                                               "not a detached signature", "verify signatures failed" };
        char buf[8192];
        ssize_t k;

        if (lseek(fd, 0, SEEK_SET) < 0 || (k = read(fd, buf, sizeof buf - 1)) <= 0)
                return NULL;
        buf[k] = 0;
        for (size_t i = 0; i < ELEMENTSOF(telling); i++) {
                char *p = strstr(buf, telling[i]);
                if (p) {
                        p[strcspn(p, "\n")] = 0;
                        return strdup(p);
                }
        }
        while (k > 0 && buf[k - 1] == '\n')
                buf[--k] = 0;
        char *last = strrchr(buf, '\n');
        return strdup(last ? last + 1 : buf);
}

/* gpgv, with nothing but KEYRING (no homedir of ours, no agent): is SIG a good signature of SUMS? */
static int verify_signature(const char *keyring, const Download *sums, const Download *sig) {
        _cleanup_(rm_rf_freep) char *home = strdup("/tmp/berthctl-gpgv-XXXXXX");
        _cleanup_close_ int data_fd = -EBADF, sig_fd = -EBADF, out_fd = -EBADF;
        _cleanup_free_ char *reason = NULL;
        char data_path[64], sig_path[64];
        pid_t pid;
        int r;

        if (!home)
                return log_oom();
        if (!mkdtemp(home)) {
                r = negative_errno();
                free(home);
                home = NULL;
                return log_error_errno(r, "Failed to create a directory for gpgv: %m");
        }
        data_fd = memfd_with("SHA256SUMS", sums->mem, sums->size);
        sig_fd = memfd_with("SHA256SUMS.gpg", sig->mem, sig->size);
        out_fd = memfd_create("gpgv-output", MFD_CLOEXEC);
        if (data_fd < 0 || sig_fd < 0 || out_fd < 0)
                return log_error_errno(-ENOMEM, "Failed to hand the signature to gpgv: %m");
        snprintf(data_path, sizeof data_path, "/proc/self/fd/%d", data_fd);
        snprintf(sig_path, sizeof sig_path, "/proc/self/fd/%d", sig_fd);
        char *argv[] = { (char *) "gpgv", (char *) "--homedir", home, (char *) "--keyring", (char *) keyring,
                         sig_path, data_path, NULL };
        int keep[] = { data_fd, sig_fd };
        r = program_spawn(argv, -EBADF, out_fd, out_fd, keep, ELEMENTSOF(keep), NULL, &pid);
        if (r < 0)
                return r;
        r = program_wait(pid, "gpgv", 0, "check the signature", true);
        if (r == -ECANCELED)
                return r;
        if (r < 0) {
                reason = gpgv_reason(out_fd);
                return log_error_errno(-EBADMSG, "Signature '%s' does not check out with keyring '%s' (gpgv: %s): "
                                                 "nothing was imported.", sig->url, keyring, strna(reason));
        }
        log_debug("Signature '%s' of '%s' is good (keyring '%s').", sig->url, sums->url, keyring);
        return 0;
}

static void evp_md_ctx_freep(EVP_MD_CTX **c) {
        if (*c)
                sym_EVP_MD_CTX_free(*c);
}

/* Fetches SHA256SUMS (and checks its signature, as --verify= says), *ret: FILE's checksum. */
static int fetch_checksum(const PullUrl *u, const char *keyring, uint8_t ret[32]) {
        Download sums = { .url = u->sums_url, .fd = -EBADF, .max = 1024 * 1024 },
                 sig = { .url = u->sig_url, .fd = -EBADF, .max = 64 * 1024 };
        int r;

        r = download(&sums, ": there is no list of checksums next to the file; pass --verify=no to pull without one");
        if (r < 0)
                goto finish;
        if (arg.verify == IMPORT_VERIFY_SIGNATURE) {
                r = download(&sig, ": SHA256SUMS is not signed; pass --verify=checksum to trust it without a signature");
                if (r < 0)
                        goto finish;
                r = verify_signature(keyring, &sums, &sig);
                if (r < 0)
                        goto finish;
        }
        r = sums_find(sums.mem, u->file, ret);
        if (r == -ENOENT)
                r = log_error_errno(r, "'%s' lists no checksum of '%s': nothing was imported.", u->sums_url, u->file);
        else if (r < 0)
                r = log_error_errno(r, "'%s' has a bad checksum line for '%s': nothing was imported.", u->sums_url,
                                    u->file);
finish:
        free(sums.mem);
        free(sig.mem);
        return r;
}

static int print_result(const char *name, const char *pool, bool raw, const PullUrl *u, const uint8_t digest[32]) {
        _cleanup_(fields_freep) Fields *f = fields_new();
        _cleanup_free_ char *path = strjoin(pool, "/", name, raw ? ".raw" : "");
        char hex[65];

        if (arg.json == JSON_OFF)
                return 0;
        if (!f || !path)
                return log_oom();
        for (size_t i = 0; i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", digest[i]);
        if (fields_add(f, "name", CELL_STRING, name) < 0 || fields_add(f, "type", CELL_STRING, raw ? "raw" : "directory") < 0 ||
            fields_add(f, "path", CELL_STRING, path) < 0 || fields_add(f, "url", CELL_STRING, u->url) < 0 ||
            fields_add(f, "sha256", CELL_STRING, hex) < 0 ||
            fields_add(f, "verified", CELL_STRING, import_verify_to_string(arg.verify)) < 0)
                return log_oom();
        return fields_print(f, stdout, false);
}

/* pull-tar and pull-raw (argv[0] tells) */
int verb_pull(int argc, char *argv[]) {
        _cleanup_(pull_url_done) PullUrl u = {};
        _cleanup_(image_freep) Image *existing = NULL;
        _cleanup_(temp_image_done) TempImage dl = TEMP_IMAGE_NULL, t = TEMP_IMAGE_NULL;
        _cleanup_(evp_md_ctx_freep) EVP_MD_CTX *sha = NULL;
        _cleanup_free_ char *name = NULL, *pool = NULL, *keyring = NULL, *prefix = NULL, *final = NULL;
        _cleanup_close_ int lock = -EBADF;
        bool raw = streq(argv[0], "pull-raw");
        uint8_t want[32], digest[32];
        unsigned dlen = 0;
        ProgressBar bar;
        Download d;
        int r;

        r = pull_libraries_load();
        if (r < 0)
                return r;
        r = pull_url_parse(argv[1], &u);
        if (r < 0)
                return r;
        if (argc > 2)
                name = strdup(argv[2]);
        else if ((r = image_name_from_file(u.file, raw, &name)) < 0 && r != -ENOMEM)
                return log_error_errno(r, "Cannot make an image name from '%s': pass NAME (berthctl %s URL NAME).",
                                       u.file, argv[0]);
        if (!name)
                return log_oom();
        r = prepare_target(name, "replace", &existing, &lock);
        if (r < 0)
                return r;
        if (arg.verify == IMPORT_VERIFY_SIGNATURE && (r = find_keyring(&keyring)) < 0)
                return r;

        if (sym_curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return log_error_errno(-EIO, "Failed to initialize libcurl.");
        cancel_signals_install();
        if (arg.verify != IMPORT_VERIFY_NO && (r = fetch_checksum(&u, keyring, want)) < 0)
                return r;

        r = image_pool_writable(&pool);
        if (r < 0)
                return r;
        r = temp_image_make(pool, name, false, &dl);
        if (r < 0)
                return r;
        sha = sym_EVP_MD_CTX_new();
        prefix = strjoin("Downloading '", u.file, "'");
        if (!sha || !prefix)
                return log_oom();
        if (sym_EVP_DigestInit_ex(sha, sym_EVP_sha256(), NULL) != 1)
                return log_error_errno(-EIO, "Failed to set up SHA-256.");
        progress_bar_init(&bar, stderr, prefix, 0, progress_wanted());
        d = (Download) { .url = u.url, .fd = dl.fd, .sha = sha, .bar = &bar };
        r = download(&d, NULL);
        progress_bar_finish(&bar);
        if (r < 0)
                return r;
        if (sym_EVP_DigestFinal_ex(sha, digest, &dlen) != 1 || dlen != sizeof digest)
                return log_error_errno(-EIO, "Failed to compute the SHA-256 of '%s'.", u.url);
        if (arg.verify != IMPORT_VERIFY_NO && memcmp(digest, want, sizeof want) != 0)
                return log_error_errno(-EBADMSG, "Checksum of '%s' does not match the one in '%s': the download is "
                                                 "damaged or was tampered with; nothing was imported.", u.url, u.sums_url);
        if (d.n == 0)
                return log_error_errno(-EINVAL, "Download of '%s' is empty: nothing was imported.", u.url);

        final = strjoin(name, raw ? ".raw" : "");
        if (!final)
                return log_oom();
        if (lseek(dl.fd, 0, SEEK_SET) < 0)
                return log_error_errno(negative_errno(), "Failed to rewind '%s': %m", dl.path);
        if (raw) {
                uint8_t head[8];
                ssize_t k = pread(dl.fd, head, sizeof head, 0);
                if (k < 0)
                        return log_error_errno(negative_errno(), "Failed to read '%s': %m", dl.path);
                if (compression_from_magic(head, (size_t) k) == COMPRESSION_NONE) {
                        /* already what we want, in the right place: no second copy */
                        (void) fchmod(dl.fd, 0644);
                        r = temp_image_commit(&dl, pool, final, existing);
                        goto done;
                }
        }
        r = temp_image_make(pool, name, !raw, &t);
        if (r < 0)
                return r;
        r = raw ? import_raw_into(dl.fd, u.file, d.n, &t) : import_tar_into(dl.fd, u.file, d.n, &t);
        if (r < 0)
                return r;
        temp_image_done(&dl);
        r = temp_image_commit(&t, pool, final, existing);
done:
        if (r < 0)
                return r;
        r = finish_new_image(pool, name, raw ? IMAGE_RAW : IMAGE_DIRECTORY);
        if (r < 0)
                return r;
        return print_result(name, pool, raw, &u, digest);
}
