/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "berth-caps.h"
#include "log.h"
#include "util.h"

/* The names the kernel and capabilities(7) use, indexed by number. Kept as a
 * table of our own so that berth needs neither libcap nor a libc that knows
 * the newest capabilities. */
static const char *const capability_names[] = {
        [CAP_CHOWN] = "CAP_CHOWN",
        [CAP_DAC_OVERRIDE] = "CAP_DAC_OVERRIDE",
        [CAP_DAC_READ_SEARCH] = "CAP_DAC_READ_SEARCH",
        [CAP_FOWNER] = "CAP_FOWNER",
        [CAP_FSETID] = "CAP_FSETID",
        [CAP_KILL] = "CAP_KILL",
        [CAP_SETGID] = "CAP_SETGID",
        [CAP_SETUID] = "CAP_SETUID",
        [CAP_SETPCAP] = "CAP_SETPCAP",
        [CAP_LINUX_IMMUTABLE] = "CAP_LINUX_IMMUTABLE",
        [CAP_NET_BIND_SERVICE] = "CAP_NET_BIND_SERVICE",
        [CAP_NET_BROADCAST] = "CAP_NET_BROADCAST",
        [CAP_NET_ADMIN] = "CAP_NET_ADMIN",
        [CAP_NET_RAW] = "CAP_NET_RAW",
        [CAP_IPC_LOCK] = "CAP_IPC_LOCK",
        [CAP_IPC_OWNER] = "CAP_IPC_OWNER",
        [CAP_SYS_MODULE] = "CAP_SYS_MODULE",
        [CAP_SYS_RAWIO] = "CAP_SYS_RAWIO",
        [CAP_SYS_CHROOT] = "CAP_SYS_CHROOT",
        [CAP_SYS_PTRACE] = "CAP_SYS_PTRACE",
        [CAP_SYS_PACCT] = "CAP_SYS_PACCT",
        [CAP_SYS_ADMIN] = "CAP_SYS_ADMIN",
        [CAP_SYS_BOOT] = "CAP_SYS_BOOT",
        [CAP_SYS_NICE] = "CAP_SYS_NICE",
        [CAP_SYS_RESOURCE] = "CAP_SYS_RESOURCE",
        [CAP_SYS_TIME] = "CAP_SYS_TIME",
        [CAP_SYS_TTY_CONFIG] = "CAP_SYS_TTY_CONFIG",
        [CAP_MKNOD] = "CAP_MKNOD",
        [CAP_LEASE] = "CAP_LEASE",
        [CAP_AUDIT_WRITE] = "CAP_AUDIT_WRITE",
        [CAP_AUDIT_CONTROL] = "CAP_AUDIT_CONTROL",
        [CAP_SETFCAP] = "CAP_SETFCAP",
        [CAP_MAC_OVERRIDE] = "CAP_MAC_OVERRIDE",
        [CAP_MAC_ADMIN] = "CAP_MAC_ADMIN",
        [CAP_SYSLOG] = "CAP_SYSLOG",
        [CAP_WAKE_ALARM] = "CAP_WAKE_ALARM",
        [CAP_BLOCK_SUSPEND] = "CAP_BLOCK_SUSPEND",
        [CAP_AUDIT_READ] = "CAP_AUDIT_READ",
        [CAP_PERFMON] = "CAP_PERFMON",
        [CAP_BPF] = "CAP_BPF",
        [CAP_CHECKPOINT_RESTORE] = "CAP_CHECKPOINT_RESTORE",
};

#define CAP_MASK(c) (UINT64_C(1) << (c))

/* systemd-nspawn's default bounding set (see systemd-nspawn(1), --capability=), so that trees
 * that boot under nspawn boot under berth with the same privileges. Notably absent: CAP_NET_ADMIN
 * (the caller adds it with a private network), CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_SYS_TIME,
 * CAP_SYS_PACCT, CAP_IPC_LOCK, CAP_SYSLOG, CAP_MAC_*, CAP_BPF, CAP_PERFMON: none of them is
 * namespaced, so each would let the container change the host. */
uint64_t capability_default_set(void) {
        return CAP_MASK(CAP_AUDIT_CONTROL) | CAP_MASK(CAP_AUDIT_WRITE) | CAP_MASK(CAP_CHOWN) |
               CAP_MASK(CAP_DAC_OVERRIDE) | CAP_MASK(CAP_DAC_READ_SEARCH) | CAP_MASK(CAP_FOWNER) |
               CAP_MASK(CAP_FSETID) | CAP_MASK(CAP_IPC_OWNER) | CAP_MASK(CAP_KILL) | CAP_MASK(CAP_LEASE) |
               CAP_MASK(CAP_LINUX_IMMUTABLE) | CAP_MASK(CAP_MKNOD) | CAP_MASK(CAP_NET_BIND_SERVICE) |
               CAP_MASK(CAP_NET_BROADCAST) | CAP_MASK(CAP_NET_RAW) | CAP_MASK(CAP_SETFCAP) |
               CAP_MASK(CAP_SETGID) | CAP_MASK(CAP_SETPCAP) | CAP_MASK(CAP_SETUID) |
               CAP_MASK(CAP_SYS_ADMIN) | CAP_MASK(CAP_SYS_BOOT) | CAP_MASK(CAP_SYS_CHROOT) |
               CAP_MASK(CAP_SYS_NICE) | CAP_MASK(CAP_SYS_PTRACE) | CAP_MASK(CAP_SYS_RESOURCE) |
               CAP_MASK(CAP_SYS_TTY_CONFIG);
}

int capability_from_name(const char *name) {
        const char *n;

        if (isempty(name))
                return -EINVAL;

        /* Accept "CAP_SYS_ADMIN", "cap_sys_admin" and "sys_admin". */
        n = strncasecmp(name, "CAP_", 4) == 0 ? name + 4 : name;
        for (size_t i = 0; i < ELEMENTSOF(capability_names); i++)
                if (capability_names[i] && strcasecmp(n, capability_names[i] + 4) == 0)
                        return (int) i;

        return -EINVAL;
}

const char *capability_to_name(int cap) {
        if (cap < 0 || (size_t) cap >= ELEMENTSOF(capability_names))
                return NULL;
        return capability_names[cap];
}

int capability_last_cap(void) {
        static int cached = -1;
        int lo = 0, hi = 63; /* capability 0 exists: the last one is in [lo, hi] */

        if (cached >= 0)
                return cached;

        /* Asked of the kernel, never of /proc/sys/kernel/cap_last_cap: berthctl exec calls this after
         * it entered a guest's mount namespace, where container root may have mounted a lie over that
         * file to keep capabilities from being dropped. The bounding set answers EINVAL past the
         * last capability the kernel knows, and for no number below it (cap_valid()): bisected, six
         * calls. */
        while (lo < hi) {
                int c = (lo + hi + 1) / 2;

                if (prctl(PR_CAPBSET_READ, (unsigned long) c, 0, 0, 0) < 0 && errno == EINVAL)
                        hi = c - 1;
                else
                        lo = c;
        }
        return (cached = lo);
}

uint64_t capability_all(void) {
        int last = MAX(capability_last_cap(), (int) ELEMENTSOF(capability_names) - 1);

        return last >= 63 ? UINT64_MAX : (UINT64_C(1) << (last + 1)) - 1;
}

/* Asked of the kernel each time. */
static uint64_t bounding_set_read(void) {
        uint64_t mask = 0;
        int r;

        /* The kernel knows the capabilities 0..CAP_LAST_CAP and answers EINVAL for every number past
         * them (cap_valid()): the first EINVAL ends the set. */
        for (int c = 0; c < 64; c++) {
                r = prctl(PR_CAPBSET_READ, (unsigned long) c, 0, 0, 0);
                if (r < 0 && errno == EINVAL)
                        break;
                if (r > 0)
                        mask |= CAP_MASK(c);
        }
        return mask;
}

static struct {
        pid_t pid; /* whose set it is; 0: none */
        uint64_t mask;
} bounding_cache;

void capability_forget(void) {
        bounding_cache.pid = 0;
}

uint64_t capability_bounding_set(void) {
        pid_t pid = getpid();

        /* The monitor asks three times before the clone (settings, the warning, the runtime), 42
         * prctl() calls each where a system call costs a microsecond: the answer is remembered
         * for the process that asked. A process's set changes through capability_apply() (which
         * forgets the answer) and by entering a user namespace: the container's processes forget
         * what the monitor knew as they start (capability_forget() in child_prologue()), and a
         * pid of another process is a miss anyway. */
        if (bounding_cache.pid != pid) {
                bounding_cache.mask = bounding_set_read();
                bounding_cache.pid = pid;
        }
        return bounding_cache.mask;
}

int capability_parse_list(const char *s, uint64_t *ret, bool *ret_all) {
        _cleanup_strv_free_ char **words = NULL;
        uint64_t mask = 0;
        bool all = false, any = false;
        int r;

        /* nspawn's --capability= takes commas; settings files use spaces. Take both. */
        r = strv_split(strempty(s), ", \t\n", &words);
        if (r < 0)
                return r;

        STRV_FOREACH(w, words) {
                int c;

                if (isempty(*w))
                        continue;
                any = true;
                if (strcasecmp(*w, "all") == 0) {
                        all = true;
                        mask |= capability_all();
                        continue;
                }
                c = capability_from_name(*w);
                if (c < 0)
                        return c;
                mask |= CAP_MASK(c);
        }
        if (!any)
                return -EINVAL;

        *ret = mask;
        if (ret_all)
                *ret_all = all;
        return 0;
}

static int capget_raw(struct __user_cap_data_struct data[static 2]) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };

        return syscall(SYS_capget, &h, data) < 0 ? negative_errno() : 0;
}

static int capset_raw(const struct __user_cap_data_struct data[static 2]) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };

        return syscall(SYS_capset, &h, data) < 0 ? negative_errno() : 0;
}

int capability_raise_effective(void) {
        struct __user_cap_data_struct data[2] = {};
        int r;

        r = capget_raw(data);
        if (r < 0)
                return r;
        for (int i = 0; i < 2; i++)
                data[i].effective = data[i].permitted;
        return capset_raw(data);
}

/* Runs in the container's child, after the namespaces and the file systems are set up and before
 * the payload is executed (and before it changes to --user=, if any). We are root (uid 0 in the
 * host's user namespace unless user namespacing is on) with the full set.
 *
 * 1. Bounding set: every capability not in KEEP is dropped for good, so that nothing the payload
 *    executes (setuid-root binaries, file capabilities, root itself) can get it back. Needs
 *    CAP_SETPCAP, which is why this goes first.
 * 2. Ambient set: cleared, so that nothing is handed down to non-root programs by accident.
 * 3. Effective/permitted/inheritable: KEEP ∩ what we have. Root keeps KEEP across execve()
 *    anyway (the kernel gives uid 0 its bounding set), but this also covers the steps between
 *    here and exec.
 *
 * A payload that then switches to a non-root --user= loses every capability in setresuid(): the
 * kernel clears permitted/effective when all uids become non-zero (no SECBIT_KEEP_CAPS is set,
 * and we don't set it). That is what a normal user on a normal system has; setuid-root binaries
 * in the tree (su, sudo) can regain at most the bounding set, unless --no-new-privileges is on.
 *
 * Note for the caller: loading the seccomp filter without no_new_privs needs CAP_SYS_ADMIN, so
 * seccomp_apply() must come before this when CAP_SYS_ADMIN is not in KEEP. Logs. */
int capability_set_exactly(uint64_t caps) {
        struct __user_cap_data_struct data[2] = {};

        for (int i = 0; i < 2; i++)
                data[i].permitted = data[i].effective = data[i].inheritable = (uint32_t) (caps >> (32 * i));
        return capset_raw(data);
}

int capability_raise_ambient(uint64_t caps) {
        struct __user_cap_data_struct data[2] = {};
        int r;

        if (caps == 0)
                return 0;
        /* a capability is raised in the ambient set only from the inheritable one */
        r = capget_raw(data);
        if (r < 0)
                return r;
        for (int i = 0; i < 2; i++)
                data[i].inheritable |= (uint32_t) (caps >> (32 * i)) & data[i].permitted;
        r = capset_raw(data);
        if (r < 0)
                return r;
        for (int c = 0; c < 64; c++)
                if ((caps & CAP_MASK(c)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (unsigned long) c, 0, 0) < 0)
                        return negative_errno();
        return 0;
}

int capability_apply(uint64_t keep) {
        struct __user_cap_data_struct data[2] = {};
        int r;

        /* every number the kernel knows, not only up to what we think the last one is: it answers
         * EINVAL for the first one past CAP_LAST_CAP, and for every one after it (cap_valid()) */
        for (int c = 0; c < 64; c++) {
                if (keep & CAP_MASK(c))
                        continue;
                if (prctl(PR_CAPBSET_DROP, (unsigned long) c, 0, 0, 0) < 0) {
                        if (errno == EINVAL)
                                break;
                        return log_error_errno(negative_errno(), "Failed to drop %s from the bounding set: %m",
                                               strna(capability_to_name(c)));
                }
        }
        /* and check, asking the kernel: whatever went wrong above, nothing runs with more than KEEP */
        capability_forget();
        if (bounding_set_read() & ~keep)
                return log_error_errno(-EPERM, "The bounding set still holds capabilities it must not: refusing to go on.");

        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return log_error_errno(negative_errno(), "Failed to clear the ambient capability set: %m");

        r = capget_raw(data);
        if (r < 0)
                return log_error_errno(r, "Failed to read the capability sets: %m");

        for (int i = 0; i < 2; i++) {
                uint32_t k = (uint32_t) (keep >> (32 * i));

                data[i].permitted &= k;
                data[i].effective &= k;
                data[i].inheritable &= k & data[i].permitted;
        }

        r = capset_raw(data);
        if (r < 0)
                return log_error_errno(r, "Failed to set the capability sets: %m");

        return 0;
}
