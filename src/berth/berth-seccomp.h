/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "berth-settings.h"

/* Validate one --system-call-filter= word list at parse time (names and @groups). -EINVAL with the bad word in *ret_bad,
 * -ELIBACC when libseccomp can't be loaded (seccomp_library_error() says why). */
int seccomp_parse_filter(Settings *s, const char *arg, char **ret_bad);
/* In the child, last thing before exec: load the allow-list (minus what the
 * capabilities in CAPS don't cover, plus/minus --system-call-filter=), and
 * the ioctl(TIOCSTI/TIOCLINUX) block. Logs.
 *
 * Loading a filter needs CAP_SYS_ADMIN unless no_new_privs is already set, so
 * call this before capability_apply() and before changing to --user=. The
 * filter lets capset(), prctl() and the set*id() calls through. */
typedef struct SeccompFilter SeccompFilter;
/* PREPARED: what seccomp_prepare() made for the same S and CAPS, or NULL (built here then). */
int seccomp_apply(const Settings *s, uint64_t caps, SeccompFilter *prepared);
/* Optional, in the monitor before the child is cloned: builds the programs (or reads them
 * from /run/berth/cache, which the child can no longer see) so that seccomp_apply() only has
 * to load them: ~0.1 ms instead of ~3 ms. The filter is the run's (Runtime.seccomp). Logs. */
int seccomp_prepare(const Settings *s, uint64_t caps, SeccompFilter **ret);

/* The pieces of seccomp_apply(), for tests and timing. None of these log above debug. */
int seccomp_filter_build(const Settings *s, uint64_t caps, SeccompFilter **ret);
/* The same, through /run/berth/cache when USE_CACHE (root only). */
int seccomp_filter_build_cached(const Settings *s, uint64_t caps, bool use_cache, SeccompFilter **ret);
bool seccomp_filter_from_cache(const SeccompFilter *f);
bool seccomp_filter_equal(const SeccompFilter *a, const SeccompFilter *b);
int seccomp_filter_load(SeccompFilter *f);
SeccompFilter *seccomp_filter_free(SeccompFilter *f);
static inline void seccomp_filter_freep(SeccompFilter **f) {
        seccomp_filter_free(*f);
}
/* Is syscall number NR allowed by F (ignoring argument filters)? */
bool seccomp_filter_allows(const SeccompFilter *f, int nr);

/* The allow-list program, for tests. Its policy: two bitmaps of SECCOMP_NR_MAX bits, the numbers
 * allowed and those refused with ENOSYS (the rest: EPERM); seccomp_filter_bitmap() gives F's. */
#define SECCOMP_NR_MAX 1024
struct sock_filter;
const uint64_t *seccomp_filter_bitmap(const SeccompFilter *f, bool enosys);
void seccomp_filter_list_program(const SeccompFilter *f, const struct sock_filter **ret, size_t *ret_len);
/* The AUDIT_ARCH_* whose allow-list berth generates itself, or 0 where libseccomp builds it. */
uint32_t seccomp_native_arch(void);
/* The allow-list berth generates for ARCH (any AUDIT_ARCH_*, native or not), and the one libseccomp
 * builds for the native architecture. Freed with free(). */
int seccomp_list_generate(const uint64_t *allow, const uint64_t *enosys, uint32_t arch, struct sock_filter **ret,
                          size_t *ret_len);
int seccomp_list_libseccomp(const uint64_t *allow, const uint64_t *enosys, struct sock_filter **ret,
                            size_t *ret_len);

/* The syscall groups, named as in systemd.exec(5) ("@basic-io"). Members are
 * syscall names or other "@groups"; NULL-terminated. */
typedef struct SyscallGroup {
        const char *name;
        const char *const *members;
} SyscallGroup;
const SyscallGroup *seccomp_groups(size_t *ret_n);
const SyscallGroup *seccomp_group_find(const char *name);
/* Number of a syscall on the native architecture: >= 0; -EOPNOTSUPP if the
 * name is a syscall that does not exist here (or that the libseccomp in use
 * does not know); -EINVAL if it is no syscall name at all; -ELIBACC without libseccomp. */
int seccomp_syscall_resolve(const char *name);
/* Why libseccomp, which the functions above load when they first need it (-ELIBACC), could not
 * be loaded: the dynamic loader's words. */
const char *seccomp_library_error(void);
