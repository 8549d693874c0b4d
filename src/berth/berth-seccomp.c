/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <link.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "berth-seccomp.h"
#include "dl-load.h"
#include "log.h"
#include "registry.h"
#include "util.h"

/* The system call policy of a container.
 *
 * Two filters are loaded, and the kernel applies the stricter answer of both:
 *
 *  1. An allow-list on syscall numbers: everything listed in policy_rows[] (whose capability the
 *     container keeps) is allowed, a few things are refused with ENOSYS (refuse_enosys[]), and
 *     everything else fails with EPERM. Only the native architecture is in it: a syscall made
 *     through another ABI (int 0x80 on x86-64, i386 or x32 binaries) kills the process with
 *     SIGSYS. That blocks the classic "same syscall, other number" bypass without building and
 *     checking a second and third policy; the price is that 32-bit binaries don't run in
 *     containers ("Bad system call"), which Debian/Fedora guests don't need.
 *  2. A small filter on arguments (default allow) for what the allow-list lets through but
 *     must not: TIOCSTI/TIOCLINUX, remounts that make things writable, audit sockets. It is
 *     separate because libseccomp can't mix an unconditional rule and conditional rules with
 *     different actions for one syscall in one filter.
 *
 * Who builds them: libseccomp builds the argument filter, and we generate the allow-list
 * ourselves (seccomp_list_generate()) on the architectures we know the AUDIT_ARCH_* of (x86-64,
 * aarch64 and a few more: NATIVE_AUDIT_ARCH); elsewhere libseccomp builds it too. Why: the kernel's
 * cost of loading a program grows with its length (it checks it, converts it to eBPF, and
 * prepares its per-syscall action cache by emulating the program for every syscall number), and
 * libseccomp emits one comparison per syscall: 392 instructions for the default policy, loaded in
 * ~0.75 ms on every start, most of the child's seccomp step. The allowed numbers form a few dozen
 * runs of consecutive numbers, so a tree of range tests says the same in 65 instructions, loaded in
 * about half the time. It is a pure function of the policy's bitmaps and does what libseccomp's
 * program does for every number and architecture (the unit test runs both), down to the kernel's
 * action cache still seeing what is always allowed: it only uses the instructions that cache can
 * emulate. Both programs are made in the monitor before the child starts and kept in a cache (see
 * there); the child only loads them. */

/* libseccomp is loaded only when a program has to be built or a syscall name resolved (dl-load.h):
 * a start whose programs are in the cache (below) never maps it. */
#define SECCOMP_SYMBOLS(X)                                                                              \
        X(seccomp_attr_set) X(seccomp_export_bpf) X(seccomp_init) X(seccomp_release)                     \
        X(seccomp_rule_add_exact) X(seccomp_syscall_resolve_name) X(seccomp_syscall_resolve_name_arch)
SECCOMP_SYMBOLS(DL_DECLARE)

static void *seccomp_handle;
static const char *seccomp_load_error;

/* -ELIBACC when it can't be loaded, the loader's words in seccomp_load_error. Doesn't log. */
static int libseccomp_load(void) {
        static const DlSymbol symbols[] = { SECCOMP_SYMBOLS(DL_ENTRY) };
        int r;

        r = dl_load(&seccomp_handle, "libseccomp.so.2", symbols, ELEMENTSOF(symbols), &seccomp_load_error);
        return r < 0 ? -ELIBACC : 0;
}

const char *seccomp_library_error(void) {
        return seccomp_load_error ?: "libseccomp.so.2 is not loaded";
}

/* ---- syscall groups, named and cut as in systemd.exec(5) ---- */

#define G(name, ...) static const char *const name[] = { __VA_ARGS__, NULL }

G(group_default,
  "arch_prctl", "brk", "cacheflush", "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64",
  "clock_nanosleep", "clock_nanosleep_time64", "execve", "exit", "exit_group", "futex", "futex_requeue",
  "futex_time64", "futex_wait", "futex_waitv", "futex_wake", "get_robust_list", "get_thread_area", "getegid",
  "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getpgid", "getpgrp",
  "getpid", "getppid", "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit",
  "getsid", "gettid", "gettimeofday", "getuid", "getuid32", "map_shadow_stack", "membarrier", "mmap", "mmap2",
  "mprotect", "mseal", "munmap", "nanosleep", "pause", "prlimit64", "restart_syscall", "riscv_flush_icache",
  "riscv_hwprobe", "rseq", "rt_sigreturn", "sched_getaffinity", "sched_yield", "set_robust_list",
  "set_thread_area", "set_tid_address", "set_tls", "sigreturn", "time", "ugetrlimit");
G(group_aio,
  "io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "io_setup", "io_submit",
  "io_uring_enter", "io_uring_register", "io_uring_setup");
G(group_basic_io,
  "_llseek", "close", "close_range", "dup", "dup2", "dup3", "lseek", "pread64", "preadv", "preadv2", "pwrite64",
  "pwritev", "pwritev2", "read", "readv", "write", "writev");
G(group_chown, "chown", "chown32", "fchown", "fchown32", "fchownat", "lchown", "lchown32");
G(group_clock, "adjtimex", "clock_adjtime", "clock_adjtime64", "clock_settime", "clock_settime64", "settimeofday",
  "stime");
G(group_cpu_emulation, "modify_ldt", "subpage_prot", "switch_endian", "vm86", "vm86old");
G(group_debug, "lookup_dcookie", "perf_event_open", "pidfd_getfd", "ptrace", "rtas", "sys_debug_setcontext");
G(group_file_system,
  "access", "cachestat", "chdir", "chmod", "close", "creat", "faccessat", "faccessat2", "fallocate", "fchdir",
  "fchmod", "fchmodat", "fchmodat2", "fcntl", "fcntl64", "fgetxattr", "file_getattr", "file_setattr", "flistxattr",
  "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "ftruncate", "ftruncate64",
  "futimesat", "getcwd", "getdents", "getdents64", "getxattr", "getxattrat", "inotify_add_watch", "inotify_init",
  "inotify_init1", "inotify_rm_watch", "lgetxattr", "link", "linkat", "listxattr", "listxattrat", "llistxattr",
  "lremovexattr", "lsetxattr", "lstat", "lstat64", "mkdir", "mkdirat", "mknod", "mknodat", "mmap", "mmap2",
  "munmap", "newfstatat", "oldfstat", "oldlstat", "oldstat", "open", "openat", "openat2", "readlink",
  "readlinkat", "removexattr", "removexattrat", "rename", "renameat", "renameat2", "rmdir", "setxattr",
  "setxattrat", "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "truncate",
  "truncate64", "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes");
G(group_io_event,
  "_newselect", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2",
  "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "poll", "ppoll", "ppoll_time64", "pselect6",
  "pselect6_time64", "select");
G(group_ipc,
  "ipc", "memfd_create", "memfd_secret", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
  "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "msgctl", "msgget", "msgrcv",
  "msgsnd", "pipe", "pipe2", "process_vm_readv", "process_vm_writev", "semctl", "semget", "semop", "semtimedop",
  "semtimedop_time64", "shmat", "shmctl", "shmdt", "shmget");
G(group_keyring, "add_key", "keyctl", "request_key");
G(group_memlock, "mlock", "mlock2", "mlockall", "munlock", "munlockall");
G(group_module, "delete_module", "finit_module", "init_module");
G(group_mount,
  "chroot", "fsconfig", "fsmount", "fsopen", "fspick", "listmount", "mount", "mount_setattr", "move_mount",
  "open_tree", "open_tree_attr", "pivot_root", "statmount", "umount", "umount2");
G(group_network_io,
  "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt", "listen", "recv", "recvfrom",
  "recvmmsg", "recvmmsg_time64", "recvmsg", "send", "sendmmsg", "sendmsg", "sendto", "setsockopt", "shutdown",
  "socket", "socketcall", "socketpair");
G(group_obsolete,
  "_sysctl", "afs_syscall", "bdflush", "break", "create_module", "ftime", "get_kernel_syms", "getpmsg", "gtty",
  "idle", "lock", "mpx", "prof", "profil", "putpmsg", "query_module", "security", "sgetmask", "ssetmask", "stty",
  "sysfs", "tuxcall", "ulimit", "uselib", "ustat", "vserver");
G(group_pkey, "pkey_alloc", "pkey_free", "pkey_mprotect");
G(group_privileged,
  "@chown", "@clock", "@module", "@raw-io", "@reboot", "@swap", "_sysctl", "acct", "bpf", "capset", "chroot",
  "fanotify_init", "fanotify_mark", "nfsservctl", "open_by_handle_at", "pivot_root", "quotactl", "quotactl_fd",
  "setdomainname", "setfsuid", "setfsuid32", "setgroups", "setgroups32", "sethostname", "setresuid",
  "setresuid32", "setreuid", "setreuid32", "setuid", "setuid32", "vhangup");
G(group_process,
  "capget", "clone", "clone3", "execveat", "fork", "getrusage", "kill", "pidfd_open", "pidfd_send_signal", "prctl",
  "rt_sigqueueinfo", "rt_tgsigqueueinfo", "setns", "swapcontext", "tgkill", "times", "tkill", "unshare", "vfork",
  "wait4", "waitid", "waitpid");
G(group_raw_io, "ioperm", "iopl", "pciconfig_iobase", "pciconfig_read", "pciconfig_write", "s390_pci_mmio_read",
  "s390_pci_mmio_write");
G(group_reboot, "kexec_file_load", "kexec_load", "reboot");
G(group_resources,
  "ioprio_set", "mbind", "migrate_pages", "move_pages", "nice", "process_madvise", "sched_setaffinity",
  "sched_setattr", "sched_setparam", "sched_setscheduler", "set_mempolicy", "set_mempolicy_home_node",
  "setpriority", "setrlimit");
G(group_sandbox, "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "seccomp");
G(group_setuid,
  "setgid", "setgid32", "setgroups", "setgroups32", "setregid", "setregid32", "setresgid", "setresgid32",
  "setresuid", "setresuid32", "setreuid", "setreuid32", "setuid", "setuid32");
G(group_signal,
  "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
  "sigaction", "sigaltstack", "signal", "signalfd", "signalfd4", "sigpending", "sigprocmask", "sigsuspend");
G(group_swap, "swapoff", "swapon");
G(group_sync, "fdatasync", "fsync", "msync", "sync", "sync_file_range", "sync_file_range2", "syncfs");
G(group_system_service,
  "@aio", "@basic-io", "@chown", "@default", "@file-system", "@io-event", "@ipc", "@keyring", "@memlock",
  "@network-io", "@process", "@resources", "@setuid", "@signal", "@sync", "@timer", "capset",
  "copy_file_range", "fadvise64", "fadvise64_64", "flock", "get_mempolicy", "getcpu", "getpriority", "ioctl",
  "ioprio_get", "kcmp", "madvise", "mremap", "name_to_handle_at", "oldolduname", "olduname", "personality",
  "readahead", "readdir", "remap_file_pages", "sched_get_priority_max", "sched_get_priority_min",
  "sched_getattr", "sched_getparam", "sched_getscheduler", "sched_rr_get_interval",
  "sched_rr_get_interval_time64", "sendfile", "sendfile64", "setfsgid", "setfsgid32", "setfsuid",
  "setfsuid32", "setpgid", "setsid", "splice", "sysinfo", "tee", "umask", "uname", "userfaultfd", "vmsplice");
G(group_timer,
  "alarm", "getitimer", "setitimer", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
  "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime",
  "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times");

static const SyscallGroup syscall_groups[] = {
        { "@default", group_default },
        { "@aio", group_aio },
        { "@basic-io", group_basic_io },
        { "@chown", group_chown },
        { "@clock", group_clock },
        { "@cpu-emulation", group_cpu_emulation },
        { "@debug", group_debug },
        { "@file-system", group_file_system },
        { "@io-event", group_io_event },
        { "@ipc", group_ipc },
        { "@keyring", group_keyring },
        { "@memlock", group_memlock },
        { "@module", group_module },
        { "@mount", group_mount },
        { "@network-io", group_network_io },
        { "@obsolete", group_obsolete },
        { "@pkey", group_pkey },
        { "@privileged", group_privileged },
        { "@process", group_process },
        { "@raw-io", group_raw_io },
        { "@reboot", group_reboot },
        { "@resources", group_resources },
        { "@sandbox", group_sandbox },
        { "@setuid", group_setuid },
        { "@signal", group_signal },
        { "@swap", group_swap },
        { "@sync", group_sync },
        { "@system-service", group_system_service },
        { "@timer", group_timer },
};

/* ---- the container policy ---- */

typedef struct PolicyRow {
        int capability; /* needed in the container's bounding set for the row to apply, or -1 */
        const char *item;
} PolicyRow;

/* What a container may call. The groups a full Debian/Fedora guest needs (systemd, journald,
 * logind, dbus, getty, apt, bash) are unconditional; groups that change non-namespaced kernel
 * state follow the capability the kernel would check anyway, so --capability=CAP_SYS_TIME really
 * lets the guest set the clock.
 *
 * Knowingly left out (EPERM), whatever the capabilities:
 *   @swap                   swapon/swapoff act on the host's memory
 *   @cpu-emulation          modify_ldt & co: old attack surface, nothing in a guest needs it
 *   @obsolete, @pkey        nothing needs them; pkeys aren't useful to the guest's services
 *   kexec_load, kexec_file_load   replace the host kernel, even with CAP_SYS_BOOT
 *   open_by_handle_at       with CAP_DAC_READ_SEARCH (in the default set) it opens any file of a
 *                           host file system by handle: the "shocker" escape
 *   quotactl, quotactl_fd   quota on the host's file systems
 *   lookup_dcookie, nfsservctl, fanotify_init, fanotify_mark (whole-filesystem watches)
 *   bpf (unless CAP_BPF)    bpffs, maps and programs aren't namespaced; also would let the guest
 *                           detach berth's device policy
 *   perf_event_open (unless CAP_PERFMON): host-wide performance data
 *   listns                  enumerates the host's namespaces
 * Refused with ENOSYS instead (refuse_enosys[]). */
static const PolicyRow policy_rows[] = {
        { -1, "@default" },
        { -1, "@aio" },
        { -1, "@basic-io" },
        { -1, "@chown" },
        { -1, "@file-system" },
        { -1, "@io-event" },
        { -1, "@ipc" },
        /* mlock within RLIMIT_MEMLOCK needs no capability; gpg and ssh-agent use it. */
        { -1, "@memlock" },
        { -1, "@mount" },
        { -1, "@network-io" },
        { -1, "@process" },
        { -1, "@resources" },
        { -1, "@sandbox" },
        { -1, "@setuid" },
        { -1, "@signal" },
        { -1, "@sync" },
        { -1, "@timer" },

        { -1, "capget" },
        { -1, "capset" },
        { -1, "copy_file_range" },
        { -1, "fadvise64" },
        { -1, "fadvise64_64" },
        { -1, "flock" },
        { -1, "get_mempolicy" },
        { -1, "getcpu" },
        { -1, "getpriority" },
        { -1, "ioctl" }, /* but see the argument filter */
        { -1, "ioprio_get" },
        { -1, "kcmp" },
        { -1, "lsm_get_self_attr" },
        { -1, "lsm_list_modules" },
        { -1, "lsm_set_self_attr" },
        { -1, "madvise" },
        { -1, "mincore" },
        { -1, "mremap" },
        { -1, "name_to_handle_at" },
        { -1, "oldolduname" },
        { -1, "olduname" },
        { -1, "personality" },
        { -1, "readahead" },
        { -1, "readdir" },
        { -1, "remap_file_pages" },
        { -1, "sched_get_priority_max" },
        { -1, "sched_get_priority_min" },
        { -1, "sched_getattr" },
        { -1, "sched_getparam" },
        { -1, "sched_getscheduler" },
        { -1, "sched_rr_get_interval" },
        { -1, "sched_rr_get_interval_time64" },
        { -1, "sendfile" },
        { -1, "sendfile64" },
        { -1, "setdomainname" }, /* the UTS namespace is the container's */
        { -1, "setfsgid" },
        { -1, "setfsgid32" },
        { -1, "setfsuid" },
        { -1, "setfsuid32" },
        { -1, "sethostname" },
        { -1, "setpgid" },
        { -1, "setsid" },
        { -1, "splice" },
        { -1, "sysinfo" },
        { -1, "tee" },
        { -1, "umask" },
        { -1, "uname" },
        { -1, "vmsplice" },

        /* Non-namespaced kernel state: only with the capability that guards it. */
        { CAP_SYS_TIME, "@clock" },
        { CAP_SYS_MODULE, "@module" },
        { CAP_SYS_RAWIO, "@raw-io" },
        { CAP_SYS_BOOT, "reboot" }, /* the pid namespace turns it into "exit PID 1" */
        { CAP_SYS_PACCT, "acct" },
        { CAP_SYSLOG, "syslog" },
        { CAP_SYS_TTY_CONFIG, "vhangup" },
        { CAP_SYS_PTRACE, "ptrace" },
        { CAP_SYS_PTRACE, "pidfd_getfd" },
        /* userfaultfd can stall kernel copies at will, the building block of many kernel
         * exploits; the kernel itself gates its unrestricted use on CAP_SYS_PTRACE. */
        { CAP_SYS_PTRACE, "userfaultfd" },
        { CAP_BPF, "bpf" },
        { CAP_PERFMON, "perf_event_open" },
};

/* Taken out of the allow-list again and answered with ENOSYS, so that userspace takes them for
 * "not built into this kernel" and uses its fallback (EPERM makes most callers give up):
 *   @keyring           keyrings are not namespaced: keys would be shared with the host and
 *                      every other container (nspawn refuses them too)
 *   io_uring_*         a large, fast-moving kernel attack surface that nothing in a guest's
 *                      base system needs; liburing users fall back to epoll/threads
 *   mount_setattr,     can make a read-only API mount writable, and seccomp can't see into
 *   open_tree_attr     struct mount_attr; util-linux and systemd fall back to mount(2)
 *                      (see the note on remounts below)
 *   listns             see above
 * --system-call-filter=NAME allows them back. */
static const char *const refuse_enosys[] = {
        "@keyring", "io_uring_setup", "io_uring_enter", "io_uring_register", "mount_setattr", "open_tree_attr",
        "listns", NULL,
};

/* Syscalls newer than the libseccomp some distributions ship (Debian 12's 2.5.4 stops before
 * statmount). Since Linux 5.1 a new syscall gets the same number on every architecture that uses
 * the generic table, x86-64 included (alpha, mips and ia64 add an offset: not used there). */
#if (defined(__x86_64__) && !defined(__ILP32__)) || defined(__aarch64__) || defined(__riscv) || \
        defined(__loongarch64)
#define HAVE_GENERIC_SYSCALL_NUMBERS 1
#endif
static const struct {
        const char *name;
        int nr;
} syscall_fallback[] = {
        { "cachestat", 451 },          { "fchmodat2", 452 },         { "map_shadow_stack", 453 },
        { "futex_wake", 454 },         { "futex_wait", 455 },        { "futex_requeue", 456 },
        { "statmount", 457 },          { "listmount", 458 },         { "lsm_get_self_attr", 459 },
        { "lsm_set_self_attr", 460 },  { "lsm_list_modules", 461 },  { "mseal", 462 },
        { "setxattrat", 463 },         { "getxattrat", 464 },        { "listxattrat", 465 },
        { "removexattrat", 466 },      { "open_tree_attr", 467 },    { "file_getattr", 468 },
        { "file_setattr", 469 },       { "listns", 470 },
};

/* Syscall numbers above the newest one we know are answered with ENOSYS: a libc newer than this
 * table calls them first and falls back only on ENOSYS (what EPERM broke for Docker with
 * clone3 and faccessat2). FUTURE_SYSCALLS_MAX bounds the range. */
#define FIRST_FUTURE_SYSCALL 471
#define FUTURE_SYSCALLS_MAX 512

#define NR_MAX SECCOMP_NR_MAX /* bitmap size: native syscall numbers are far below this */

/* Bump when anything that goes into the programs changes without changing the bitmaps (the
 * argument filter, the bad-architecture action): cached programs are found by this. The identity
 * of the berth binary goes into the hash as well, so that a rebuilt berth never picks up a
 * program of an older one even if nobody bumped this. */
#define POLICY_FORMAT "berth-seccomp-5"

typedef struct Program {
        struct sock_filter *insns;
        size_t len;
} Program;

struct SeccompFilter {
        uint64_t allow[NR_MAX / 64];
        uint64_t enosys[NR_MAX / 64];
        uint64_t hash;
        bool suppress_sync; /* --suppress-sync: in the argument filter */
        Program list; /* the allow-list */
        Program args; /* the argument filter */
        bool from_cache;
};

static inline void bit_set(uint64_t *m, int nr, bool b) {
        if (nr < 0 || nr >= NR_MAX)
                return;
        if (b)
                m[nr / 64] |= UINT64_C(1) << (nr % 64);
        else
                m[nr / 64] &= ~(UINT64_C(1) << (nr % 64));
}

static inline bool bit_get(const uint64_t *m, int nr) {
        return nr >= 0 && nr < NR_MAX && (m[nr / 64] >> (nr % 64)) & 1;
}

const SyscallGroup *seccomp_groups(size_t *ret_n) {
        *ret_n = ELEMENTSOF(syscall_groups);
        return syscall_groups;
}

const SyscallGroup *seccomp_group_find(const char *name) {
        if (!name || name[0] != '@')
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(syscall_groups); i++)
                if (streq(syscall_groups[i].name, name))
                        return syscall_groups + i;
        return NULL;
}

static bool name_in_groups(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(syscall_groups); i++)
                for (const char *const *m = syscall_groups[i].members; *m; m++)
                        if (streq(*m, name))
                                return true;
        return false;
}

int seccomp_syscall_resolve(const char *name) {
        static const uint32_t other_arches[] = { SCMP_ARCH_X86,     SCMP_ARCH_X86_64, SCMP_ARCH_AARCH64,
                                                 SCMP_ARCH_ARM,     SCMP_ARCH_PPC64,  SCMP_ARCH_S390X,
                                                 SCMP_ARCH_MIPS,    SCMP_ARCH_PPC };
        int nr;

        if (isempty(name) || name[0] == '@')
                return -EINVAL;
        if (libseccomp_load() < 0)
                return -ELIBACC;

        nr = sym_seccomp_syscall_resolve_name(name);
        if (nr >= 0)
                return nr;

#ifdef HAVE_GENERIC_SYSCALL_NUMBERS
        for (size_t i = 0; i < ELEMENTSOF(syscall_fallback); i++)
                if (streq(syscall_fallback[i].name, name))
                        return syscall_fallback[i].nr;
#endif
        /* Negative: a multiplexed pseudo-syscall (socketcall on x86-64) or unknown here. */
        if (nr != __NR_SCMP_ERROR || name_in_groups(name))
                return -EOPNOTSUPP;
        for (size_t i = 0; i < ELEMENTSOF(other_arches); i++)
                if (sym_seccomp_syscall_resolve_name_arch(other_arches[i], name) != __NR_SCMP_ERROR)
                        return -EOPNOTSUPP;
        for (size_t i = 0; i < ELEMENTSOF(syscall_fallback); i++)
                if (streq(syscall_fallback[i].name, name))
                        return -EOPNOTSUPP;
        return -EINVAL;
}

/* Sets or clears every syscall NAME stands for in M. DEPTH guards against groups that include
 * each other (a unit test checks there are none). */
static int mark(uint64_t *m, const char *name, bool b, unsigned depth) {
        const SyscallGroup *g;
        int nr;

        if (name[0] != '@') {
                nr = seccomp_syscall_resolve(name);
                /* Syscalls of other architectures, and ones this libseccomp doesn't know: nothing
                 * to allow or refuse (the default refuses them anyway). Not logged: ~100 per start. */
                if (nr == -EOPNOTSUPP)
                        return 0;
                if (nr < 0)
                        return nr;
                bit_set(m, nr, b);
                return 0;
        }

        g = seccomp_group_find(name);
        if (!g || depth > 4)
                return -EINVAL;
        for (const char *const *p = g->members; *p; p++) {
                int r = mark(m, *p, b, depth + 1);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* 1 if W is a syscall or group name, 0 if not, -ELIBACC without libseccomp. */
static int word_is_valid(const char *w) {
        int nr;

        if (w[0] == '@')
                return !!seccomp_group_find(w);
        nr = seccomp_syscall_resolve(w);
        return nr == -ELIBACC ? nr : nr != -EINVAL;
}

int seccomp_parse_filter(Settings *s, const char *arg, char **ret_bad) {
        _cleanup_strv_free_ char **words = NULL;
        const char *p = strempty(arg);
        bool deny = false, any = false;
        int r;

        /* nspawn's syntax: a whitespace-separated list of names and @groups to allow; with "~"
         * in front of the whole list, to refuse. Given more than once, the lists add up; what
         * is refused wins over what is allowed. */
        if (*p == '~') {
                deny = true;
                p++;
        }
        r = strv_split(p, " \t\n", &words);
        if (r < 0)
                return r;

        STRV_FOREACH(w, words) {
                if (isempty(*w))
                        continue;
                any = true;
                r = word_is_valid(*w);
                if (r < 0)
                        return r;
                if (r == 0) {
                        if (ret_bad)
                                *ret_bad = strdup(*w);
                        return -EINVAL;
                }
        }
        if (!any) {
                if (ret_bad)
                        *ret_bad = strdup(strempty(arg));
                return -EINVAL;
        }

        STRV_FOREACH(w, words) {
                if (isempty(*w))
                        continue;
                r = strv_extend(deny ? &s->syscall_deny : &s->syscall_allow, *w);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int compute_policy(SeccompFilter *f, const Settings *s, uint64_t caps) {
        int r;

        f->suppress_sync = s && s->suppress_sync;

        for (size_t i = 0; i < ELEMENTSOF(policy_rows); i++) {
                const PolicyRow *row = policy_rows + i;

                if (row->capability >= 0 && !(caps & (UINT64_C(1) << row->capability)))
                        continue;
                r = mark(f->allow, row->item, true, 0);
                if (r < 0)
                        return r;
        }
        for (const char *const *p = refuse_enosys; *p; p++) {
                r = mark(f->allow, *p, false, 0);
                if (r < 0)
                        return r;
                r = mark(f->enosys, *p, true, 0);
                if (r < 0)
                        return r;
        }
        for (int nr = FIRST_FUTURE_SYSCALL; nr < FUTURE_SYSCALLS_MAX; nr++)
                bit_set(f->enosys, nr, true);

        STRV_FOREACH(w, s ? s->syscall_allow : NULL) {
                r = mark(f->allow, *w, true, 0);
                if (r < 0)
                        return r;
                r = mark(f->enosys, *w, false, 0);
                if (r < 0)
                        return r;
        }
        STRV_FOREACH(w, s ? s->syscall_deny : NULL) {
                r = mark(f->allow, *w, false, 0);
                if (r < 0)
                        return r;
                r = mark(f->enosys, *w, false, 0);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* What a syscall made through another ABI gets: see the top of the file. */
#define LIST_BADARCH_ACTION SECCOMP_RET_KILL_PROCESS

/* ---- the allow-list, generated here ----
 *
 * The program: load the architecture; another one than the native one gets LIST_BADARCH_ACTION
 * (what libseccomp's SCMP_FLTATR_ACT_BADARCH gives in build_list_filter()). Load the number, and
 * find its run: the numbers below NR_MAX by the bitmaps (allowed, else ENOSYS, else EPERM), EPERM
 * above them, and on x86-64 x32's numbers (__X32_SYSCALL_BIT up) killed but for -1, as libseccomp
 * does. Only loads of nr and arch, jumps on constants and returns: what the kernel's action cache
 * can emulate, so that it still lets the allowed numbers through without running the filter.
 *
 * The native architecture's AUDIT_ARCH_* where we generate it; on any other, libseccomp builds the
 * allow-list (build_list_filter()), so that nothing breaks on an architecture we can't test. */
#if defined(__x86_64__) && !defined(__ILP32__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__) && defined(__AARCH64EL__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_I386
#elif defined(__arm__) && defined(__ARMEL__) && defined(__ARM_EABI__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_ARM
#elif defined(__riscv) && __riscv_xlen == 64
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_RISCV64
#elif defined(__s390x__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_S390X
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_PPC64LE
#elif defined(__loongarch64) && defined(AUDIT_ARCH_LOONGARCH64)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_LOONGARCH64
#else
#define NATIVE_AUDIT_ARCH 0
#endif

uint32_t seccomp_native_arch(void) {
        return NATIVE_AUDIT_ARCH;
}

/* A run of consecutive syscall numbers with one action: from FIRST up to the next run's FIRST. */
typedef struct ListRun {
        uint32_t first;
        uint32_t action;
} ListRun;

static void run_append(ListRun *runs, size_t *n, uint32_t first, uint32_t action) {
        if (*n > 0 && runs[*n - 1].action == action)
                return;
        runs[(*n)++] = (ListRun) { first, action };
}

/* The runs are told apart by a balanced tree of "nr >= K" tests, each on the first number of a
 * run (those above it have ruled out the numbers before RUNS[0] and from past the last run).
 *
 * Short form, as long as every jump reaches the end: the tests only, N - 1 of them, and after them
 * one return per action (RETS) that the tests jump to. */
static size_t ret_slot(const uint32_t *rets, size_t n_rets, uint32_t action) {
        for (size_t i = 0; i < n_rets; i++)
                if (rets[i] == action)
                        return i;
        return n_rets; /* can't happen: RETS has every action of the runs */
}

static void tree_emit_short(const ListRun *runs, size_t n, const uint32_t *rets, size_t n_rets, size_t first_ret,
                            struct sock_filter *out, size_t *pos) {
        size_t left = n / 2, p = (*pos)++;
        /* "else": the next test, or a return; "then": past the left subtree's LEFT - 1 tests */
        size_t jf = left > 1 ? 0 : first_ret + ret_slot(rets, n_rets, runs[0].action) - (p + 1),
               jt = n - left > 1 ? left - 1 : first_ret + ret_slot(rets, n_rets, runs[left].action) - (p + 1);

        out[p] = (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, runs[left].first, (uint8_t) jt, (uint8_t) jf);
        if (left > 1)
                tree_emit_short(runs, left, rets, n_rets, first_ret, out, pos);
        if (n - left > 1)
                tree_emit_short(runs + left, n - left, rets, n_rets, first_ret, out, pos);
}

/* Long form, for many runs: a return at each leaf, so that a test jumps at most past its left
 * subtree; where even that is too far for cBPF's 8-bit offsets, the test is followed by a BPF_JA,
 * which has 32 bits. The size depends only on the number of runs. */
static size_t tree_size_long(size_t n) {
        size_t left;

        if (n == 1)
                return 1;
        left = tree_size_long(n / 2);
        return 1 + (left > UINT8_MAX) + left + tree_size_long(n - n / 2);
}

static void tree_emit_long(const ListRun *runs, size_t n, struct sock_filter *out, size_t *pos) {
        size_t left, left_size;

        if (n == 1) {
                out[(*pos)++] = (struct sock_filter) BPF_STMT(BPF_RET | BPF_K, runs[0].action);
                return;
        }
        left = n / 2;
        left_size = tree_size_long(left);
        if (left_size <= UINT8_MAX)
                out[(*pos)++] = (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, runs[left].first, left_size, 0);
        else {
                out[(*pos)++] = (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, runs[left].first, 0, 1);
                out[(*pos)++] = (struct sock_filter) BPF_STMT(BPF_JMP | BPF_JA, (uint32_t) left_size);
        }
        tree_emit_long(runs, left, out, pos);
        tree_emit_long(runs + left, n - left, out, pos);
}

int seccomp_list_generate(const uint64_t *allow, const uint64_t *enosys, uint32_t arch, struct sock_filter **ret,
                          size_t *ret_len) {
        /* every number below NR_MAX its own run at worst, and three more past it */
        _cleanup_free_ ListRun *runs = malloc((NR_MAX + 3) * sizeof *runs);
        static const struct sock_filter head_template[] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0 /* arch */, 1, 0),
                BPF_STMT(BPF_RET | BPF_K, LIST_BADARCH_ACTION),
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        };
        struct sock_filter *insns;
        uint32_t rets[4];
        size_t n = 0, n_rets = 0, len, pos = 0;
        bool short_form;

        if (!runs)
                return -ENOMEM;
        if (arch == 0)
                return -EOPNOTSUPP;
        for (int nr = 0; nr < NR_MAX; nr++)
                run_append(runs, &n, nr,
                           bit_get(allow, nr)    ? SECCOMP_RET_ALLOW :
                           bit_get(enosys, nr)   ? SECCOMP_RET_ERRNO | ENOSYS :
                                                   SECCOMP_RET_ERRNO | EPERM);
        run_append(runs, &n, NR_MAX, SECCOMP_RET_ERRNO | EPERM);
        if (arch == AUDIT_ARCH_X86_64) {
                /* x32's numbers (the x86-64 ABI with __X32_SYSCALL_BIT) are another ABI: killed, as
                 * libseccomp does, but for -1, which goes to the policy (EPERM) as there: the number a
                 * tracer sets to skip a syscall. */
                run_append(runs, &n, 0x40000000u, LIST_BADARCH_ACTION);
                run_append(runs, &n, UINT32_MAX, SECCOMP_RET_ERRNO | EPERM);
        }

        for (size_t i = 0; i < n; i++)
                if (ret_slot(rets, n_rets, runs[i].action) == n_rets)
                        rets[n_rets++] = runs[i].action;
        short_form = n > 1 && n - 1 + n_rets <= UINT8_MAX;
        len = ELEMENTSOF(head_template) + (short_form ? n - 1 + n_rets : tree_size_long(n));
        if (len > BPF_MAXINSNS)
                return -E2BIG;
        insns = malloc(len * sizeof *insns);
        if (!insns)
                return -ENOMEM;
        memcpy(insns, head_template, sizeof head_template);
        insns[1].k = arch;
        pos = ELEMENTSOF(head_template);
        if (short_form) {
                tree_emit_short(runs, n, rets, n_rets, pos + n - 1, insns, &pos);
                for (size_t i = 0; i < n_rets; i++)
                        insns[pos++] = (struct sock_filter) BPF_STMT(BPF_RET | BPF_K, rets[i]);
        } else
                tree_emit_long(runs, n, insns, &pos);
        if (pos != len) { /* can't happen: the sizes above are what the tree_emit_*() write */
                free(insns);
                return -EINVAL;
        }
        *ret = insns;
        *ret_len = len;
        return 0;
}

static int build_list_filter(const SeccompFilter *f, scmp_filter_ctx *ret) {
        scmp_filter_ctx ctx;
        int r;

        ctx = sym_seccomp_init(SCMP_ACT_ERRNO(EPERM));
        if (!ctx)
                return -ENOMEM;
        *ret = ctx;

        /* Other ABIs (i386 via int 0x80, x32) never reach the policy: see the top of the file. */
        r = sym_seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, LIST_BADARCH_ACTION);
        if (r < 0)
                return r;

        /* Only where we don't generate the allow-list ourselves (NATIVE_AUDIT_ARCH), and for tests.
         * Rules by number, unconditional: that keeps libseccomp's work linear. No binary-tree
         * optimization: the kernel caches "always allowed" per syscall number anyway, so the
         * program only runs for the refused ones, and the tree triples the generation time. */
        for (int nr = 0; nr < NR_MAX; nr++) {
                uint32_t action;

                if (bit_get(f->allow, nr))
                        action = SCMP_ACT_ALLOW;
                else if (bit_get(f->enosys, nr))
                        action = SCMP_ACT_ERRNO(ENOSYS);
                else
                        continue;

                r = sym_seccomp_rule_add_exact(ctx, action, nr, 0);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* --suppress-sync, as nspawn's: the calls that wait for the disk return 0 at once; open() and
 * openat() with O_SYNC or O_DSYNC (O_SYNC includes O_DSYNC's bit) fail with EINVAL, and openat2(),
 * whose flags seccomp cannot see, with ENOSYS, so that callers fall back to openat(). */
static int add_suppress_sync(scmp_filter_ctx ctx) {
        /* nspawn's @sync set, with msync(), whose MS_SYNC waits for the disk as fsync() does */
        static const char *const no_ops[] = { "sync", "syncfs", "fsync", "fdatasync", "msync", "sync_file_range",
                                              "sync_file_range2" };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(no_ops); i++) {
                int nr = sym_seccomp_syscall_resolve_name(no_ops[i]);
                if (nr == __NR_SCMP_ERROR || nr < 0)
                        continue; /* not on this architecture */
                r = sym_seccomp_rule_add_exact(ctx, SCMP_ACT_ERRNO(0), nr, 0);
                if (r < 0)
                        return r;
        }
        r = sym_seccomp_rule_add_exact(ctx, SCMP_ACT_ERRNO(EINVAL), SCMP_SYS(open), 1,
                                   SCMP_A1(SCMP_CMP_MASKED_EQ, O_DSYNC, O_DSYNC));
        if (r < 0)
                return r;
        r = sym_seccomp_rule_add_exact(ctx, SCMP_ACT_ERRNO(EINVAL), SCMP_SYS(openat), 1,
                                   SCMP_A2(SCMP_CMP_MASKED_EQ, O_DSYNC, O_DSYNC));
        if (r < 0)
                return r;
        return sym_seccomp_rule_add_exact(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(openat2), 0);
}

static int build_args_filter(const SeccompFilter *f, scmp_filter_ctx *ret) {
        scmp_filter_ctx ctx;
        int r;

        ctx = sym_seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx)
                return -ENOMEM;
        *ret = ctx;

        /* TIOCSTI pushes bytes into a terminal's input queue: a container that shares a terminal
         * with the host (the console in --console=pipe/passive, an inherited fd) would type
         * commands into the host's shell. TIOCLINUX has a subcode that does the same on virtual
         * consoles. The kernel looks only at the low 32 bits of the request, so compare only
         * those: a request with high bits set is the classic way around a plain comparison. */
        static const unsigned long refused_ioctls[] = { TIOCSTI, TIOCLINUX };
        for (size_t i = 0; i < ELEMENTSOF(refused_ioctls); i++) {
                r = sym_seccomp_rule_add_exact(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                                           SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, refused_ioctls[i]));
                if (r < 0)
                        return r;
        }

        /* Not refused here: remounts that make a read-only mount writable. Container root has
         * CAP_SYS_ADMIN in the host's user namespace, so it could "mount -o remount,rw /proc/sys";
         * but refusing every remount without MS_RDONLY breaks systemd's own sandboxing in the
         * guest (ReadWritePaths= re-opens paths below a read-only tree: systemd-logind fails with
         * 226/NAMESPACE), and a fresh proc or sysfs mount elsewhere can't be told apart by
         * seccomp anyway. Only a user namespace closes this; see SECURITY in berth(1). */

        /* The audit subsystem isn't namespaced: with CAP_AUDIT_WRITE (nspawn's default set)
         * the guest's login, sudo and sshd would write into the host's audit log. EAFNOSUPPORT
         * is what they see on a kernel without audit, and they carry on. */
        r = sym_seccomp_rule_add_exact(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 2,
                                   SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, AF_NETLINK),
                                   SCMP_A2(SCMP_CMP_MASKED_EQ, 0xffffffffu, NETLINK_AUDIT));
        if (r < 0)
                return r;

        if (f->suppress_sync) {
                r = add_suppress_sync(ctx);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void seccomp_releasep(scmp_filter_ctx *ctx) {
        if (*ctx)
                sym_seccomp_release(*ctx);
}

/* libseccomp 2.5 can only export into an fd; 2.6's seccomp_export_bpf_mem() isn't in Debian 12. */
static int export_program(scmp_filter_ctx ctx, Program *ret) {
        _cleanup_close_ int fd = -EBADF;
        struct sock_filter *insns;
        off_t size;
        int r;

        fd = memfd_create("berth-seccomp", MFD_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        r = sym_seccomp_export_bpf(ctx, fd);
        if (r < 0)
                return r;
        size = lseek(fd, 0, SEEK_END);
        if (size <= 0 || size % sizeof(struct sock_filter) != 0 || size > BPF_MAXINSNS * (off_t) sizeof(struct sock_filter))
                return -EBADMSG;
        insns = malloc((size_t) size);
        if (!insns)
                return -ENOMEM;
        if (pread(fd, insns, (size_t) size, 0) != size) {
                free(insns);
                return -EIO;
        }
        *ret = (Program) { .insns = insns, .len = (size_t) size / sizeof(struct sock_filter) };
        return 0;
}

int seccomp_list_libseccomp(const uint64_t *allow, const uint64_t *enosys, struct sock_filter **ret,
                            size_t *ret_len) {
        _cleanup_(seccomp_filter_freep) SeccompFilter *f = calloc(1, sizeof *f);
        _cleanup_(seccomp_releasep) scmp_filter_ctx list = NULL;
        Program p;
        int r;

        if (!f)
                return -ENOMEM;
        memcpy(f->allow, allow, sizeof f->allow);
        memcpy(f->enosys, enosys, sizeof f->enosys);
        r = libseccomp_load();
        if (r < 0)
                return r;
        r = build_list_filter(f, &list);
        if (r < 0)
                return r;
        r = export_program(list, &p);
        if (r < 0)
                return r;
        *ret = p.insns;
        *ret_len = p.len;
        return 0;
}

static int generate_programs(SeccompFilter *f) {
        _cleanup_(seccomp_releasep) scmp_filter_ctx args = NULL;
        int r;

        r = libseccomp_load();
        if (r < 0)
                return r;
        if (NATIVE_AUDIT_ARCH != 0)
                r = seccomp_list_generate(f->allow, f->enosys, NATIVE_AUDIT_ARCH, &f->list.insns, &f->list.len);
        else
                r = seccomp_list_libseccomp(f->allow, f->enosys, &f->list.insns, &f->list.len);
        if (r < 0)
                return r;
        r = build_args_filter(f, &args);
        if (r < 0)
                return r;
        return export_program(args, &f->args);
}

const uint64_t *seccomp_filter_bitmap(const SeccompFilter *f, bool enosys) {
        return enosys ? f->enosys : f->allow;
}

void seccomp_filter_list_program(const SeccompFilter *f, const struct sock_filter **ret, size_t *ret_len) {
        *ret = f->list.insns;
        *ret_len = f->list.len;
}

/* ---- the program cache ----
 *
 * libseccomp needs ~3 ms to turn the policy into BPF (most of a container's start-up budget), and
 * the result only depends on the policy. So the programs are kept in /run/berth/cache (in the run
 * dir: $BERTH_RUN_DIR or registry_set_run_dir(), which the tests use), named by a hash of
 * everything that goes into them. /run is a tmpfs: the cache is gone at reboot, when a new
 * libseccomp or kernel may be in use. Trust: the directory must be root's and not writable by
 * anyone else; whoever can write it is root and could replace berth itself.
 *
 * A hit must not load libseccomp (that is most of what the cache saves), so the key can't ask the
 * library for its version: each program names the file of the libseccomp that built it instead,
 * with that file's identity, and a program whose library file has changed since (a package update
 * replaces the file) is built again. */
#define CACHE_MAGIC UINT64_C(0x3363636573687462) /* "bthsecc3" */

typedef struct LibraryId {
        char path[256];
        uint64_t id[4]; /* st_dev, st_ino, st_size, st_mtim in ns */
} LibraryId;

typedef struct CacheHeader {
        uint64_t magic;
        uint64_t hash;
        uint32_t list_len;
        uint32_t args_len;
        uint64_t allow[NR_MAX / 64];
        uint64_t enosys[NR_MAX / 64];
        LibraryId library;
} CacheHeader;

static int library_id_of(const char *path, LibraryId *ret) {
        struct stat st;

        if (!path || path[0] != '/' || strlen(path) >= sizeof ret->path || stat(path, &st) < 0)
                return -ENOENT;
        *ret = (LibraryId) { .id = { st.st_dev, st.st_ino, (uint64_t) st.st_size,
                                     (uint64_t) st.st_mtim.tv_sec * UINT64_C(1000000000) + (uint64_t) st.st_mtim.tv_nsec } };
        strcpy(ret->path, path);
        return 0;
}

/* The file of the libseccomp this process loaded. */
static int loaded_library_id(LibraryId *ret) {
        struct link_map *lm = NULL;

        if (!seccomp_handle || dlinfo(seccomp_handle, RTLD_DI_LINKMAP, &lm) < 0 || !lm)
                return -ENOENT;
        return library_id_of(lm->l_name, ret);
}

/* Is the library file that built a cached program still the same? */
static bool library_unchanged(const LibraryId *recorded) {
        LibraryId now;

        if (memchr(recorded->path, 0, sizeof recorded->path) == NULL || library_id_of(recorded->path, &now) < 0)
                return false;
        return memcmp(now.id, recorded->id, sizeof now.id) == 0;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
        const uint8_t *b = p;

        for (size_t i = 0; i < n; i++) {
                h ^= b[i];
                h *= UINT64_C(0x100000001b3);
        }
        return h;
}

/* The GNU build ID of the running program: names its contents, so it stays the same for a copy of
 * the binary (berthctl runs from a sealed memfd copy of itself, a new inode each time) and changes
 * with every rebuild. dl_iterate_phdr() gives the main program first. */
typedef struct BuildId {
        uint8_t id[64];
        size_t size;
} BuildId;

static int build_id_cb(struct dl_phdr_info *info, size_t size, void *userdata) {
        BuildId *b = userdata;

        for (size_t i = 0; i < info->dlpi_phnum; i++) {
                const ElfW(Phdr) *ph = info->dlpi_phdr + i;
                const uint8_t *p, *end;

                if (ph->p_type != PT_NOTE)
                        continue;
                p = (const uint8_t *) (info->dlpi_addr + ph->p_vaddr);
                end = p + ph->p_memsz;
                while (p + sizeof(ElfW(Nhdr)) <= end) {
                        const ElfW(Nhdr) *n = (const ElfW(Nhdr) *) p;
                        size_t name = (n->n_namesz + 3) & ~(size_t) 3, desc = (n->n_descsz + 3) & ~(size_t) 3;
                        const uint8_t *d = p + sizeof *n + name;

                        if (d + desc > end)
                                break;
                        if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && memcmp(p + sizeof *n, "GNU", 4) == 0 &&
                            n->n_descsz > 0 && n->n_descsz <= sizeof b->id) {
                                memcpy(b->id, d, n->n_descsz);
                                b->size = n->n_descsz;
                                return 1;
                        }
                        p = d + desc;
                }
        }
        return 1; /* only the main program */
}

/* A hash of the running program's build ID (of its file, if it has none): the first half of a
 * cached program's name, so that pruning can tell the programs of another build from ours. */
static uint64_t build_tag(void) {
        static uint64_t tag = 0;
        uint64_t h = UINT64_C(0xcbf29ce484222325);
        struct stat st;
        BuildId b = {};

        if (tag != 0)
                return tag;
        (void) dl_iterate_phdr(build_id_cb, &b);
        if (b.size > 0)
                h = fnv1a(h, b.id, b.size);
        else if (stat("/proc/self/exe", &st) >= 0) {
                uint64_t id[4] = { st.st_dev, st.st_ino, (uint64_t) st.st_size, (uint64_t) st.st_mtim.tv_sec };
                h = fnv1a(h, id, sizeof id);
        }
        tag = h != 0 ? h : 1;
        return tag;
}

/* The key of a cached program: everything the policy is computed from, so that a cache hit
 * needs no name resolution at all. */
static uint64_t policy_hash(const Settings *s, uint64_t caps) {
        uint64_t h = UINT64_C(0xcbf29ce484222325), tag = build_tag();

        h = fnv1a(h, POLICY_FORMAT, strlen(POLICY_FORMAT));
        h = fnv1a(h, &tag, sizeof tag);
        /* The build ID also names the architecture: no need for libseccomp's word on it. The
         * library's version is checked through its file, see above. */
        h = fnv1a(h, &caps, sizeof caps);
        if (s && s->suppress_sync)
                h = fnv1a(h, "suppress-sync", 14);
        /* the word lists, with a separator that can't be part of a word */
        STRV_FOREACH(w, s ? s->syscall_allow : NULL)
                h = fnv1a(h, *w, strlen(*w) + 1);
        h = fnv1a(h, "\n~", 3);
        STRV_FOREACH(w, s ? s->syscall_deny : NULL)
                h = fnv1a(h, *w, strlen(*w) + 1);
        return h;
}

#define CACHE_PATH_MAX (PATH_MAX + 64)

static void cache_dir(char buf[static CACHE_PATH_MAX]) {
        snprintf(buf, CACHE_PATH_MAX, "%s/cache", registry_run_dir());
}

/* The cache is used only if its directory is root's and only root may write to it. Not through a
 * symlink (lstat()): cache_prune() does not follow one, and a cache that is read and written
 * through a link it never prunes would grow without bound. -ELOOP then: no cache at all. */
static int cache_dir_trusted(bool create) {
        char dir[CACHE_PATH_MAX];
        struct stat st;

        cache_dir(dir);
        if (create) {
                (void) mkdir(registry_run_dir(), 0755);
                (void) mkdir(dir, 0700);
        }
        if (lstat(dir, &st) < 0)
                return negative_errno();
        if (S_ISLNK(st.st_mode))
                return -ELOOP;
        if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 0022))
                return -EPERM;
        return 0;
}

/* BUILD-HASH.bpf: the build first, so that pruning knows whose a program is from its name alone. */
#define CACHE_NAME_LEN (16 + 1 + 16 + 4)

static char *cache_name(uint64_t hash, char buf[static CACHE_NAME_LEN + 1]) {
        snprintf(buf, CACHE_NAME_LEN + 1, "%016" PRIx64 "-%016" PRIx64 ".bpf", build_tag(), hash);
        return buf;
}

static char *cache_path(uint64_t hash, char buf[static CACHE_PATH_MAX]) {
        char name[CACHE_NAME_LEN + 1];

        snprintf(buf, CACHE_PATH_MAX, "%s/cache/%s", registry_run_dir(), cache_name(hash, name));
        return buf;
}

/* A hit refreshes the program's mtime when it is older than this, so that the mtime says when a
 * program was last used, give or take this much, and pruning removes the programs not used for
 * longest. Not on every hit: a fresh file costs no syscall more than the read. */
#define CACHE_REFRESH_USEC (10 * 60 * USEC_PER_SEC)

static int cache_read(SeccompFilter *f) {
        _cleanup_free_ char *data = NULL;
        _cleanup_close_ int fd = -EBADF;
        CacheHeader hdr;
        char path[CACHE_PATH_MAX];
        struct stat st;
        size_t size, need;
        uint64_t mtime, now;
        ssize_t k;
        int r;

        if (geteuid() != 0)
                return -ENOENT;
        r = cache_dir_trusted(false);
        if (r < 0) {
                if (r != -ENOENT)
                        log_debug_errno(r, "Not using the seccomp program cache: %m");
                return -ENOENT;
        }
        fd = open(cache_path(f->hash, path), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode) || st.st_size < (off_t) sizeof hdr ||
            st.st_size > (off_t) (sizeof hdr + 2 * BPF_MAXINSNS * sizeof(struct sock_filter)))
                return -EBADMSG;
        /* A program is replaced by rename(), never written in place: its size is the one fstat()
         * gave. One byte more is asked for, so that a file that grew anyway shows. */
        size = (size_t) st.st_size;
        data = malloc(size + 1);
        if (!data)
                return -ENOMEM;
        do
                k = read(fd, data, size + 1);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return negative_errno();
        if ((size_t) k != size)
                return -EBADMSG;

        memcpy(&hdr, data, sizeof hdr);
        if (hdr.magic != CACHE_MAGIC || hdr.hash != f->hash || hdr.list_len == 0 || hdr.args_len == 0 ||
            hdr.list_len > BPF_MAXINSNS || hdr.args_len > BPF_MAXINSNS)
                return -EBADMSG;
        need = sizeof hdr + ((size_t) hdr.list_len + hdr.args_len) * sizeof(struct sock_filter);
        if (size != need)
                return -EBADMSG;
        if (!library_unchanged(&hdr.library))
                return -ESTALE;

        f->list.insns = malloc(hdr.list_len * sizeof(struct sock_filter));
        f->args.insns = malloc(hdr.args_len * sizeof(struct sock_filter));
        if (!f->list.insns || !f->args.insns)
                return -ENOMEM;
        f->list.len = hdr.list_len;
        f->args.len = hdr.args_len;
        memcpy(f->allow, hdr.allow, sizeof f->allow);
        memcpy(f->enosys, hdr.enosys, sizeof f->enosys);
        memcpy(f->list.insns, data + sizeof hdr, f->list.len * sizeof(struct sock_filter));
        memcpy(f->args.insns, data + sizeof hdr + f->list.len * sizeof(struct sock_filter),
               f->args.len * sizeof(struct sock_filter));
        f->from_cache = true;

        /* a hit: used now (see CACHE_REFRESH_USEC) */
        mtime = timespec_to_usec(&st.st_mtim);
        now = now_usec(CLOCK_REALTIME);
        if (now > mtime + CACHE_REFRESH_USEC && futimens(fd, NULL) < 0)
                log_debug_errno(negative_errno(), "Failed to refresh the mtime of %s, ignoring: %m", path);
        return 0;
}

static int cache_write(const SeccompFilter *f) {
        CacheHeader hdr = {
                .magic = CACHE_MAGIC,
                .hash = f->hash,
                .list_len = (uint32_t) f->list.len,
                .args_len = (uint32_t) f->args.len,
        };
        memcpy(hdr.allow, f->allow, sizeof hdr.allow);
        memcpy(hdr.enosys, f->enosys, sizeof hdr.enosys);
        _cleanup_close_ int fd = -EBADF;
        char path[CACHE_PATH_MAX], tmp[CACHE_PATH_MAX + 32];
        int r;

        if (geteuid() != 0)
                return -EPERM;
        r = loaded_library_id(&hdr.library);
        if (r < 0)
                return r;
        r = cache_dir_trusted(true);
        if (r < 0)
                return r;

        /* Written under a temporary name and renamed: a concurrent start reads all or nothing. */
        snprintf(tmp, sizeof tmp, "%s.%d.tmp", cache_path(f->hash, path), (int) getpid());
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return negative_errno();
        r = loop_write(fd, &hdr, sizeof hdr);
        if (r >= 0)
                r = loop_write(fd, f->list.insns, f->list.len * sizeof(struct sock_filter));
        if (r >= 0)
                r = loop_write(fd, f->args.insns, f->args.len * sizeof(struct sock_filter));
        if (r >= 0 && rename(tmp, path) < 0)
                r = negative_errno();
        if (r < 0)
                (void) unlink(tmp);
        return r;
}

/* ---- keeping the cache small ----
 *
 * The build is in every key, so each build of berth (and of berthctl, which uses the cache for
 * exec and shell) writes its programs anew, and each policy adds one: a machine that builds berth
 * gathered thousands of files in /run. So after a miss has written a program, the directory is
 * pruned; a hit never scans it. A program's mtime is when it was last used: written, or read by a
 * hit (cache_read() refreshes it, to within CACHE_REFRESH_USEC). What goes:
 *   - programs of another build, and of berth before the build was in the name (HASH.bpf), once
 *     they were not used for CACHE_OTHER_BUILD_USEC. Not at once: berthctl and a second
 *     installed berth are other builds that are alive, and removing their programs at once would
 *     make each one's miss the other's next miss, for ever. A build that is gone loses them at the
 *     first miss an hour on;
 *   - of this build's programs, all but the CACHE_KEEP_BUILD used last;
 *   - of all programs, all but the CACHE_KEEP_ALL used last: bounded whatever builds come and go;
 *   - temporary files (NAME.PID.tmp) older than CACHE_TMP_USEC, of a writer that died: a writer
 *     needs microseconds, and one whose file went only fails to rename it (which it ignores).
 * The program just written stays. Two misses may prune at once: a name the other one removed
 * first is ENOENT, ignored; a reader opens a program before it reads it, so removing it
 * meanwhile costs nothing. The directory is root's (cache_dir_trusted()); still, only regular
 * files with our names are touched, by name in the directory's fd, and no symlink is followed.
 * Nothing here may fail a start: the caller logs at debug level and goes on. */
#define CACHE_KEEP_BUILD 64
#define CACHE_KEEP_ALL 128
#define CACHE_OTHER_BUILD_USEC (3600 * USEC_PER_SEC)
#define CACHE_TMP_USEC (60 * USEC_PER_SEC)

typedef enum CacheFileKind {
        CACHE_FILE_PROGRAM,
        CACHE_FILE_TEMPORARY,
} CacheFileKind;

typedef struct CacheEntry {
        char name[CACHE_NAME_LEN + 1];
        uint64_t mtime;
        bool ours;
} CacheEntry;

static bool is_hex(const char *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
                        return false;
        return true;
}

/* Is NAME a program (BUILD-HASH.bpf, or HASH.bpf of an older berth: build 0, which is no build's
 * tag) or the temporary file of one (NAME.PID.tmp)? -EINVAL for any other name. */
static int cache_file_kind(const char *name, uint64_t *ret_build) {
        const char *end = strstr(name, ".bpf");
        size_t len;

        if (!end)
                return -EINVAL;
        len = (size_t) (end - name);
        if (len == 16 && is_hex(name, 16))
                *ret_build = 0;
        else if (len == 33 && is_hex(name, 16) && name[16] == '-' && is_hex(name + 17, 16))
                *ret_build = strtoull(name, NULL, 16);
        else
                return -EINVAL;
        end += 4;
        if (*end == 0)
                return CACHE_FILE_PROGRAM;
        if (*end++ != '.' || !(*end >= '0' && *end <= '9'))
                return -EINVAL;
        while (*end >= '0' && *end <= '9')
                end++;
        return streq(end, ".tmp") ? CACHE_FILE_TEMPORARY : -EINVAL;
}

static int cache_entry_newer_first(const void *a, const void *b) {
        const CacheEntry *x = a, *y = b;

        return x->mtime < y->mtime ? 1 : x->mtime > y->mtime ? -1 : strcmp(x->name, y->name);
}

/* Prunes the cache, see above; KEEP_HASH names the program just written. Returns how many files
 * went. */
static int cache_prune(uint64_t keep_hash) {
        _cleanup_closedir_ DIR *d = NULL;
        _cleanup_free_ CacheEntry *entries = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t n = 0, allocated = 0, kept_ours = 1, kept_all = 1; /* the program just written */
        char dir[CACHE_PATH_MAX], keep[CACHE_NAME_LEN + 1];
        uint64_t now = now_usec(CLOCK_REALTIME), tag = build_tag();
        struct dirent *de;
        struct stat st;
        int removed = 0;

        cache_dir(dir);
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (st.st_uid != 0 || (st.st_mode & 0022))
                return -EPERM;
        d = fdopendir(fd);
        if (!d)
                return negative_errno();
        TAKE_FD(fd);
        (void) cache_name(keep_hash, keep);

        while ((de = readdir(d))) {
                uint64_t build, mtime, age;
                int kind = cache_file_kind(de->d_name, &build);

                if (kind < 0 || streq(de->d_name, keep) ||
                    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                        continue;
                mtime = timespec_to_usec(&st.st_mtim);
                age = now > mtime ? now - mtime : 0; /* written "in the future": the clock was set back */
                if ((kind == CACHE_FILE_TEMPORARY && age >= CACHE_TMP_USEC) ||
                    (kind == CACHE_FILE_PROGRAM && build != tag && age >= CACHE_OTHER_BUILD_USEC)) {
                        if (unlinkat(dirfd(d), de->d_name, 0) >= 0)
                                removed++;
                        continue;
                }
                if (kind == CACHE_FILE_TEMPORARY)
                        continue;
                if (n >= allocated) {
                        CacheEntry *e = reallocarray(entries, allocated * 2 + 64, sizeof *e);
                        if (!e)
                                return -ENOMEM;
                        entries = e;
                        allocated = allocated * 2 + 64;
                }
                entries[n] = (CacheEntry) { .mtime = mtime, .ours = build == tag };
                strcpy(entries[n].name, de->d_name); /* cache_file_kind() checked its length */
                n++;
        }

        if (n > 0) /* qsort()'s array may not be NULL, even for none */
                qsort(entries, n, sizeof *entries, cache_entry_newer_first);
        for (size_t i = 0; i < n; i++) {
                if ((entries[i].ours && kept_ours >= CACHE_KEEP_BUILD) || kept_all >= CACHE_KEEP_ALL) {
                        if (unlinkat(dirfd(d), entries[i].name, 0) >= 0)
                                removed++;
                        continue;
                }
                kept_all++;
                kept_ours += entries[i].ours;
        }
        return removed;
}

/* ---- the pieces ---- */

SeccompFilter *seccomp_filter_free(SeccompFilter *f) {
        if (!f)
                return NULL;
        free(f->list.insns);
        free(f->args.insns);
        free(f);
        return NULL;
}

int seccomp_filter_build_cached(const Settings *s, uint64_t caps, bool use_cache, SeccompFilter **ret) {
        _cleanup_(seccomp_filter_freep) SeccompFilter *f = NULL;
        int r;

        f = calloc(1, sizeof *f);
        if (!f)
                return -ENOMEM;

        if (use_cache) {
                f->hash = policy_hash(s, caps);
                r = cache_read(f);
                if (r >= 0) {
                        *ret = TAKE_PTR(f);
                        return 0;
                }
                if (r != -ENOENT)
                        log_debug_errno(r, "Ignoring cached seccomp program %016" PRIx64 ": %m", f->hash);
        }

        r = compute_policy(f, s, caps);
        if (r < 0)
                return r;

        r = generate_programs(f);
        if (r < 0)
                return r;

        if (use_cache) {
                r = cache_write(f);
                if (r < 0)
                        log_debug_errno(r, "Failed to cache the seccomp program, ignoring: %m");
                else {
                        r = cache_prune(f->hash);
                        if (r < 0)
                                log_debug_errno(r, "Failed to prune the seccomp cache, ignoring: %m");
                        else if (r > 0)
                                log_debug("Removed %d old seccomp programs from the cache.", r);
                }
        }

        *ret = TAKE_PTR(f);
        return 0;
}

int seccomp_filter_build(const Settings *s, uint64_t caps, SeccompFilter **ret) {
        return seccomp_filter_build_cached(s, caps, false, ret);
}

bool seccomp_filter_from_cache(const SeccompFilter *f) {
        return f->from_cache;
}

bool seccomp_filter_equal(const SeccompFilter *a, const SeccompFilter *b) {
        return memcmp(a->allow, b->allow, sizeof a->allow) == 0 && memcmp(a->enosys, b->enosys, sizeof a->enosys) == 0 &&
               a->list.len == b->list.len && a->args.len == b->args.len &&
               memcmp(a->list.insns, b->list.insns, a->list.len * sizeof(struct sock_filter)) == 0 &&
               memcmp(a->args.insns, b->args.insns, a->args.len * sizeof(struct sock_filter)) == 0;
}

bool seccomp_filter_allows(const SeccompFilter *f, int nr) {
        return bit_get(f->allow, nr);
}

static int load_program(const Program *p) {
        struct sock_fprog prog = { .len = (unsigned short) p->len, .filter = p->insns };

        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
                return negative_errno();
        return 0;
}

int seccomp_filter_load(SeccompFilter *f) {
        int r;

        /* The argument filter first: once the allow-list is in, seccomp() must be on it for the
         * second load to work, and a user may have refused it with --system-call-filter=~seccomp. */
        r = load_program(&f->args);
        if (r < 0)
                return r;
        return load_program(&f->list);
}

/* ---- what the runtime calls ---- */

int seccomp_prepare(const Settings *s, uint64_t caps, SeccompFilter **ret) {
        _cleanup_(seccomp_filter_freep) SeccompFilter *f = NULL;
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
        int r;

        r = seccomp_filter_build_cached(s, caps, true, &f);
        if (r == -ELIBACC)
                return log_error_errno(r, "Failed to build the system call filter: %s. Install libseccomp2.",
                                       seccomp_library_error());
        if (r < 0)
                return log_error_errno(r, "Failed to build the system call filter: %m");
        log_debug("Seccomp programs (%zu+%zu instructions) %s in %" PRIu64 " us.", f->list.len, f->args.len,
                  f->from_cache ? "read from the cache" : "built", now_usec(CLOCK_MONOTONIC) - t0);
        *ret = TAKE_PTR(f);
        return 0;
}

int seccomp_apply(const Settings *s, uint64_t caps, SeccompFilter *prepared) {
        _cleanup_(seccomp_filter_freep) SeccompFilter *built = NULL;
        uint64_t t0 = now_usec(CLOCK_MONOTONIC), t1;
        SeccompFilter *f;
        int r;

        if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0 && errno == EINVAL) {
                log_warning("The kernel has no seccomp support: running the container without a system call filter.");
                return 0;
        }

        if (prepared)
                f = prepared;
        else {
                /* Not prepared in the monitor: build it here, without the cache (we are in the
                 * container's mount namespace, where the host's /run isn't). That needs libseccomp
                 * loaded already: dl_load() refuses to load it from the container's tree. */
                r = seccomp_filter_build_cached(s, caps, false, &built);
                if (r == -ELIBACC)
                        return log_error_errno(r, "Failed to build the system call filter in the container: %s",
                                               seccomp_library_error());
                if (r < 0)
                        return log_error_errno(r, "Failed to build the system call filter: %m");
                f = built;
        }

        r = seccomp_filter_load(f);
        if (r == -EACCES && prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 0)
                return log_error_errno(r,
                                       "Failed to load the system call filter: needs CAP_SYS_ADMIN or no_new_privs "
                                       "(load it before dropping capabilities).");
        if (r < 0)
                return log_error_errno(r, "Failed to load the system call filter: %m");
        t1 = now_usec(CLOCK_MONOTONIC);
        log_debug("Seccomp filter %s and loaded in %" PRIu64 " us.", built ? "built" : "prepared", t1 - t0);
        return 0;
}
