/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dm-verity through libcryptsetup: it reads the verity superblock, builds the
 * dm table and, without device-mapper, walks the hash tree in userspace
 * (CRYPT_VERITY_CHECK_HASH with no device name), which is the check berth
 * offers where the kernel cannot do it. Everything here runs in the monitor,
 * in the host's namespaces, before the container exists; the image, its side
 * files and its hash tree are untrusted input, and libcryptsetup checks the
 * superblock's fields (sizes, hash name, salt) before using them.
 */

#include <errno.h>
#include <fcntl.h>
#include <libcryptsetup.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth-verity.h"
#include "dl-load.h"
#include "log.h"
#include "util.h"

/* The side files, by nspawn's names: next to IMAGE.raw (or IMAGE, without .raw). */
static const struct {
        const char *suffix;
        PartitionDesignator designator;
} hash_side_files[] = {
        { ".roothash", PARTITION_ROOT },
        { ".usrhash", PARTITION_USR },
};

#define ROOT_HASH_MIN 16
#define ROOT_HASH_MAX 64
#define SIDE_FILE_MAX (64 * 1024)

void verity_config_done(VerityConfig *v) {
        free(v->root_hash);
        free(v->root_hash_from);
        free(v->sig);
        free(v->sig_from);
        free(v->data_path);
        free(v->data_from);
        *v = VERITY_CONFIG_NULL;
}

static char *side_file_path(const char *image_path, const char *suffix) {
        _cleanup_free_ char *base = endswith(image_path, ".raw")
                                            ? strndup(image_path, strlen(image_path) - strlen(".raw"))
                                            : strdup(image_path);
        return base ? strjoin(base, suffix) : NULL;
}

static char *quoted(const char *s) {
        return strjoin("'", s, "'");
}

/* 1 and the contents of PATH, 0 if there is no such file. Logs. */
static int read_side_file(const char *path, char **ret, size_t *ret_size) {
        struct stat st;
        int r;

        if (stat(path, &st) < 0) {
                if (errno == ENOENT)
                        return 0;
                return log_error_errno(negative_errno(), "Cannot use side file '%s' of the image: %m", path);
        }
        if (!S_ISREG(st.st_mode) || st.st_size > SIDE_FILE_MAX)
                return log_error_errno(-EBADMSG, "Cannot use side file '%s' of the image: it is not a regular file of "
                                                 "at most 64 KiB. Remove it, or replace it.", path);
        r = read_full_file(path, ret, ret_size);
        if (r < 0)
                return log_error_errno(r, "Cannot read side file '%s' of the image: %m", path);
        return 1;
}

static int load_hash_side_file(const char *image_path, VerityConfig *v) {
        for (size_t i = 0; i < ELEMENTSOF(hash_side_files); i++) {
                _cleanup_free_ char *path = side_file_path(image_path, hash_side_files[i].suffix), *text = NULL;
                size_t n;
                int r;

                if (!path)
                        return log_oom();
                r = read_side_file(path, &text, &n);
                if (r < 0)
                        return r;
                if (r == 0)
                        continue;
                text[strcspn(text, " \t\r\n")] = 0;
                r = unhexmem(text, &v->root_hash, &v->root_hash_size);
                if (r == -ENOMEM)
                        return log_oom();
                if (r < 0 || v->root_hash_size < ROOT_HASH_MIN || v->root_hash_size > ROOT_HASH_MAX) {
                        free(v->root_hash);
                        v->root_hash = NULL;
                        return log_error_errno(-EBADMSG, "Cannot use side file '%s' of the image: it does not hold a "
                                                         "root hash of 32 to 128 hexadecimal digits. Fix or remove it, "
                                                         "or pass --root-hash=.", path);
                }
                v->designator = hash_side_files[i].designator;
                v->root_hash_from = quoted(path);
                return v->root_hash_from ? 1 : log_oom();
        }
        return 0;
}

int verity_config_load(const char *image_path, const DissectedImage *m, const uint8_t *root_hash,
                       size_t root_hash_size, const uint8_t *sig, size_t sig_size, const char *data_path,
                       VerityConfig *ret) {
        _cleanup_(verity_config_done) VerityConfig v = VERITY_CONFIG_NULL;
        const char *d_name;
        int r;

        if (root_hash) {
                /* nspawn's --root-hash= is the root's; an image of /usr alone has it for /usr */
                v.designator = m->partitions[PARTITION_ROOT].found ? PARTITION_ROOT : PARTITION_USR;
                v.root_hash = malloc(root_hash_size);
                v.root_hash_from = strdup("--root-hash=");
                if (!v.root_hash || !v.root_hash_from)
                        return log_oom();
                memcpy(v.root_hash, root_hash, root_hash_size);
                v.root_hash_size = root_hash_size;
        } else {
                r = load_hash_side_file(image_path, &v);
                if (r < 0)
                        return r;
        }
        d_name = v.designator == PARTITION_USR ? "usr" : "root";

        if (sig) {
                v.sig = malloc(sig_size);
                v.sig_from = strdup("--root-hash-sig=");
                if (!v.sig || !v.sig_from)
                        return log_oom();
                memcpy(v.sig, sig, sig_size);
                v.sig_size = sig_size;
        } else {
                _cleanup_free_ char *suffix = strjoin(".", d_name, "hash.p7s"), *path = NULL, *data = NULL;

                if (!suffix || !(path = side_file_path(image_path, suffix)))
                        return log_oom();
                r = read_side_file(path, &data, &v.sig_size);
                if (r < 0)
                        return r;
                if (r > 0) {
                        if (v.sig_size == 0)
                                return log_error_errno(-EBADMSG, "Cannot use side file '%s' of the image: it is empty. "
                                                                 "Remove it, or put the signature in it.", path);
                        v.sig = (uint8_t *) TAKE_PTR(data);
                        if (!(v.sig_from = quoted(path)))
                                return log_oom();
                }
        }

        if (data_path) {
                v.data_path = strdup(data_path);
                v.data_from = strdup("--verity-data=");
                if (!v.data_path || !v.data_from)
                        return log_oom();
        } else {
                _cleanup_free_ char *path = side_file_path(image_path, ".verity");
                struct stat st;

                if (!path)
                        return log_oom();
                if (stat(path, &st) >= 0) {
                        if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
                                return log_error_errno(-EBADFD, "Cannot use side file '%s' of the image: it is neither a "
                                                                "regular file nor a block device.", path);
                        v.data_from = quoted(path);
                        v.data_path = TAKE_PTR(path);
                        if (!v.data_from)
                                return log_oom();
                } else if (errno != ENOENT)
                        return log_error_errno(negative_errno(), "Cannot use side file '%s' of the image: %m", path);
        }

        /* a signature or a hash tree without a hash: for root, unless the hash said otherwise */
        if (v.designator < 0 && (v.sig || v.data_path))
                v.designator = m->partitions[PARTITION_ROOT].found ? PARTITION_ROOT : PARTITION_USR;
        if (v.designator >= 0 && !m->partitions[v.designator].found)
                return log_error_errno(-ENXIO, "Refusing image '%s': %s asks for dm-verity on its %s partition, and the "
                                               "image has none. Remove it, or use the image it belongs to.", image_path,
                                       v.root_hash_from ?: v.sig_from ?: v.data_from,
                                       partition_designator_to_string(v.designator));
        *ret = v;
        v = VERITY_CONFIG_NULL;
        return 0;
}

void verity_config_offer(const VerityConfig *v, const DissectedImage *m, VerityOffer ret[_PARTITION_DESIGNATOR_MAX]) {
        static const struct {
                PartitionDesignator data, verity;
                const char *why;
        } own[] = {
                { PARTITION_ROOT, PARTITION_ROOT_VERITY, "the image's root-verity partition" },
                { PARTITION_USR, PARTITION_USR_VERITY, "the image's usr-verity partition" },
        };

        for (PartitionDesignator d = 0; d < _PARTITION_DESIGNATOR_MAX; d++)
                ret[d] = (VerityOffer) {};
        for (size_t i = 0; i < ELEMENTSOF(own); i++)
                if (m->partitions[own[i].verity].found)
                        ret[own[i].data].why = own[i].why;
        if (v->designator >= 0) {
                VerityOffer *o = &ret[v->designator];

                o->hash = v->root_hash;
                o->sig = v->sig;
                o->tree = v->data_path;
                o->why = o->why ?: v->root_hash_from ?: v->data_from ?: v->sig_from;
        }
}

bool verity_dm_available(void) {
        _cleanup_free_ char *misc = NULL;
        _cleanup_close_ int fd = -EBADF;

        /* A control node that opens: the driver is there (opening it loads a dm-mod module). A node
         * alone proves nothing: libdevmapper makes /dev/mapper/control where the kernel has no
         * device-mapper, and opening that one fails (ENODEV). Without a node that opens, the
         * driver may still be there with no node yet (no udev, no devtmpfs): /proc/misc says. */
        const char *control = "/dev/mapper/control";
#if BERTH_TEST_HOOKS
        /* BERTH_TEST_DM_CONTROL=PATH: look at a control node the test made instead */
        control = getenv("BERTH_TEST_DM_CONTROL") ?: control;
#endif
        fd = open(control, O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (fd >= 0)
                return true;
        if (read_full_file("/proc/misc", &misc, NULL) < 0)
                return false;
        return strstr(misc, " device-mapper\n");
}

/* libcryptsetup's own words about a failure: the last error it logged */
static char last_error[256];

static void log_cb(int level, const char *msg, void *userdata) {
        if (level != CRYPT_LOG_ERROR || !msg)
                return;
        snprintf(last_error, sizeof last_error, "%s", msg);
        last_error[strcspn(last_error, "\n")] = 0;
        log_debug("libcryptsetup: %s", last_error);
}

#define CRYPTSETUP_SYMBOLS(X)                                                                           \
        X(crypt_activate_by_signed_key) X(crypt_activate_by_volume_key) X(crypt_deactivate_by_name)    \
        X(crypt_free) X(crypt_get_verity_info) X(crypt_get_volume_key_size) X(crypt_init_by_name)      \
        X(crypt_init_data_device) X(crypt_load) X(crypt_set_log_callback)
CRYPTSETUP_SYMBOLS(DL_DECLARE)

/* libcryptsetup (and the OpenSSL, device-mapper and argon2 it brings), loaded only for an image
 * with verity (dl-load.h). Logs, when WHAT (the image) is given. */
static int cryptsetup_load(const char *what) {
        static const DlSymbol symbols[] = { CRYPTSETUP_SYMBOLS(DL_ENTRY) };
        static void *handle;
        const char *e;
        int r;

        r = dl_load(&handle, "libcryptsetup.so.12", symbols, ELEMENTSOF(symbols), &e);
        if (r < 0 && what)
                return log_error_errno(r, "Failed to load libcryptsetup, which %s needs for verity: %s. Install "
                                          "libcryptsetup12.", what, e);
        return r;
}

static void crypt_freep(struct crypt_device **cd) {
        if (*cd)
                sym_crypt_free(*cd);
}

/* Opens the tree in HASH (superblock at 0) for DATA and checks the hash's size against it. */
static int open_verity(const char *what, const char *data, const char *hash, const VerityConfig *v, uint32_t flags,
                       struct crypt_device **ret) {
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        struct crypt_params_verity params = { .flags = flags };
        int r, k;

        r = cryptsetup_load(what);
        if (r < 0)
                return r;
        sym_crypt_set_log_callback(NULL, log_cb, NULL);
        last_error[0] = 0;
        r = sym_crypt_init_data_device(&cd, hash, data);
        if (r < 0)
                return log_error_errno(r, "Failed to open the hash tree of %s: %m", what);
        sym_crypt_set_log_callback(cd, log_cb, NULL);
        r = sym_crypt_load(cd, CRYPT_VERITY, &params);
        if (r < 0)
                return log_error_errno(r, "Refusing %s: its hash tree (%s) has no valid verity superblock%s%s: %m",
                                       what, v->data_from ?: "the verity partition", last_error[0] ? ": " : "",
                                       last_error);
        k = sym_crypt_get_volume_key_size(cd);
        if (k > 0 && (size_t) k != v->root_hash_size) {
                struct crypt_params_verity info = {};

                (void) sym_crypt_get_verity_info(cd, &info);
                return log_error_errno(-EINVAL, "Refusing %s: the root hash from %s has %zu bytes, and the hash tree "
                                                "uses %s, whose hashes have %i: pass the root hash that veritysetup "
                                                "format printed.",
                                       what, v->root_hash_from, v->root_hash_size, strna(info.hash_name), k);
        }
        *ret = TAKE_PTR(cd);
        return 0;
}

int verity_check_userspace(const char *what, const char *data, const char *hash, const VerityConfig *v) {
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        int r;

        r = open_verity(what, data, hash, v, CRYPT_VERITY_CHECK_HASH, &cd);
        if (r < 0)
                return r;
        /* no name: nothing is activated, the tree is walked in userspace */
        r = sym_crypt_activate_by_volume_key(cd, NULL, (const char *) v->root_hash, v->root_hash_size, 0);
        /* libcryptsetup: -EPERM a data or hash block that does not match, -EFAULT the root hash */
        if (r == -EPERM || r == -EFAULT)
                return log_error_errno(-EPERM, "Refusing %s: its data does not match the root hash from %s (checked in "
                                          "userspace): the image was changed or damaged, or the hash is not its own.",
                                       what, v->root_hash_from);
        if (r < 0)
                return log_error_errno(r, "Failed to check %s against its root hash%s%s: %m", what,
                                       last_error[0] ? ": " : "", last_error);
        return 0;
}

int verity_activate(const char *what, const char *name, const char *data, const char *hash, const VerityConfig *v,
                    bool signed_, char **ret_path) {
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        r = open_verity(what, data, hash, v, 0, &cd);
        if (r < 0)
                return r;
        path = strjoin("/dev/mapper/", name);
        if (!path)
                return log_oom();
        if (signed_)
                r = sym_crypt_activate_by_signed_key(cd, name, (const char *) v->root_hash, v->root_hash_size,
                                                 (const char *) v->sig, v->sig_size, CRYPT_ACTIVATE_READONLY);
        else
                r = sym_crypt_activate_by_volume_key(cd, name, (const char *) v->root_hash, v->root_hash_size,
                                                 CRYPT_ACTIVATE_READONLY);
        if (r == -EPERM)
                return log_error_errno(r, "Refusing %s: the kernel rejects the root hash from %s%s: it is not the "
                                          "image's, or its signature is not trusted by the kernel's keyring%s%s.",
                                       what, v->root_hash_from, signed_ ? " with its signature" : "",
                                       last_error[0] ? ": " : "", last_error);
        if (r < 0)
                return log_error_errno(r, "Failed to set up dm-verity for %s%s%s: %m", what, last_error[0] ? ": " : "",
                                       last_error);
        *ret_path = TAKE_PTR(path);
        return 0;
}

int verity_deactivate_deferred(const char *name) {
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        int r;

        r = cryptsetup_load(NULL);
        if (r < 0)
                return r;
        r = sym_crypt_init_by_name(&cd, name);
        if (r < 0)
                return r;
        return sym_crypt_deactivate_by_name(cd, name, CRYPT_DEACTIVATE_DEFERRED);
}
