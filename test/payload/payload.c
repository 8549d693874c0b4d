/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * berth-test-payload: a static multi-call program that test trees carry as /usr/bin/payload.
 * It tries one thing from inside a container and reports what happened.
 *
 *   payload APPLET [ARGS...]
 *
 * Exit status: 0 the action succeeded, 1 it failed (stdout then has a line ending in
 * "errno=NAME", e.g. "errno=EPERM"), 2 usage error (message on stderr).
 * Actions without other output print "ok" on success.
 *
 * "syscall NAME" applets call something a container must usually not be allowed to do, with
 * arguments chosen so that an allowed call fails harmlessly in argument checking (or does
 * nothing). They print "ok" or "errno=NAME" and exit 1 only when the call was BLOCKED (EPERM,
 * EACCES or ENOSYS: capability check or seccomp), 0 when the kernel let it through.
 *
 * It is libc-only on purpose (no berth headers): it must stay a small static binary.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_tun.h>
#include <linux/reboot.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>

extern char **environ;

/* <sys/ptrace.h> and <linux/ptrace.h> do not mix; the two requests we use */
#define PTRACE_ATTACH_ 16
#define PTRACE_DETACH_ 17

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define streq(a, b) (strcmp((a), (b)) == 0)

static const char *errno_name(int e) {
        static char buf[32];
        const char *n = strerrorname_np(e);

        if (n)
                return n;
        snprintf(buf, sizeof buf, "%d", e);
        return buf;
}

/* Reports a failed step: "[STEP ]errno=NAME" on stdout, exit status 1. */
static int fail_step(const char *step, int e) {
        if (step)
                printf("%s errno=%s\n", step, errno_name(e));
        else
                printf("errno=%s\n", errno_name(e));
        return 1;
}

static int fail_errno(void) {
        return fail_step(NULL, errno);
}

static int ok(void) {
        printf("ok\n");
        return 0;
}

static int usage(const char *msg) {
        fprintf(stderr, "payload: %s\n", msg);
        return 2;
}

static int parse_int(const char *s, long long *ret) {
        char *e = NULL;
        long long v;

        if (!s || !*s)
                return -EINVAL;
        errno = 0;
        v = strtoll(s, &e, 0);
        if (errno > 0 || !e || *e)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int cat_fd(int fd) {
        char buf[8192];
        ssize_t k;

        while ((k = read(fd, buf, sizeof buf)) != 0) {
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                fflush(stdout);
                if (write(STDOUT_FILENO, buf, (size_t) k) != k)
                        return -EIO;
        }
        return 0;
}

/* Reads the value of "Key:" from the status file PATH (/proc/PID/status) into buf, trimmed. */
static int status_field_in(const char *path, const char *key, char *buf, size_t size) {
        char line[512];
        size_t l = strlen(key);
        FILE *f = fopen(path, "re");
        int r = -ENOENT;

        if (!f)
                return -errno;
        while (fgets(line, sizeof line, f))
                if (strncmp(line, key, l) == 0 && line[l] == ':') {
                        char *v = line + l + 1;
                        v += strspn(v, " \t");
                        v[strcspn(v, "\n")] = 0;
                        snprintf(buf, size, "%s", v);
                        r = 0;
                        break;
                }
        fclose(f);
        return r;
}

static int proc_status_field(const char *key, char *buf, size_t size) {
        return status_field_in("/proc/self/status", key, buf, size);
}

static int print_status_fields(const char *const *keys, size_t n, bool with_key) {
        char v[256];

        for (size_t i = 0; i < n; i++) {
                int r = proc_status_field(keys[i], v, sizeof v);
                if (r < 0)
                        return fail_step(keys[i], -r);
                if (with_key)
                        printf("%s=%s\n", keys[i], v);
                else
                        printf("%s\n", v);
        }
        return 0;
}

/* ---- simple applets ---- */

static int ap_true(int argc, char **argv) {
        return 0;
}

static int ap_exit(int argc, char **argv) {
        long long v;
        if (argc != 2 || parse_int(argv[1], &v) < 0)
                return usage("usage: exit N");
        fflush(stdout);
        _exit((int) v);
}

static int ap_echo(int argc, char **argv) {
        for (int i = 1; i < argc; i++)
                printf("%s%s", i > 1 ? " " : "", argv[i]);
        printf("\n");
        return 0;
}

static int ap_sleep(int argc, char **argv) {
        char *e = NULL;
        double d;
        struct timespec ts;

        if (argc != 2)
                return usage("usage: sleep SECONDS");
        d = strtod(argv[1], &e);
        if (!e || *e || d < 0)
                return usage("usage: sleep SECONDS");
        ts.tv_sec = (time_t) d;
        ts.tv_nsec = (long) ((d - (double) ts.tv_sec) * 1e9);
        while (nanosleep(&ts, &ts) < 0)
                if (errno != EINTR)
                        return fail_errno();
        return 0;
}

static int ap_pid(int argc, char **argv) {
        printf("%d\n", (int) getpid());
        return 0;
}

static int ap_ppid(int argc, char **argv) {
        printf("%d\n", (int) getppid());
        return 0;
}

static int ap_env(int argc, char **argv) {
        for (char **e = environ; e && *e; e++)
                printf("%s\n", *e);
        return 0;
}

static int ap_cwd(int argc, char **argv) {
        char buf[PATH_MAX];
        if (!getcwd(buf, sizeof buf))
                return fail_errno();
        printf("%s\n", buf);
        return 0;
}

static int ap_id(int argc, char **argv) {
        gid_t groups[256];
        int n = getgroups(ELEMENTSOF(groups), groups);

        printf("uid=%u gid=%u euid=%u egid=%u groups=", (unsigned) getuid(), (unsigned) getgid(),
               (unsigned) geteuid(), (unsigned) getegid());
        for (int i = 0; i < n; i++)
                printf("%s%u", i > 0 ? "," : "", (unsigned) groups[i]);
        printf("\n");
        return 0;
}

static int ap_hostname(int argc, char **argv) {
        struct utsname u;
        if (uname(&u) < 0)
                return fail_errno();
        printf("%s\n", u.nodename);
        return 0;
}

static int ap_cat(int argc, char **argv) {
        int fd, r;

        if (argc != 2)
                return usage("usage: cat FILE");
        fd = open(argv[1], O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return fail_errno();
        r = cat_fd(fd);
        close(fd);
        return r < 0 ? fail_step(NULL, -r) : 0;
}

static int ap_write(int argc, char **argv) {
        size_t l;
        int fd;

        if (argc != 3)
                return usage("usage: write FILE DATA");
        fd = open(argv[1], O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return fail_step("open", errno);
        l = strlen(argv[2]);
        if (write(fd, argv[2], l) != (ssize_t) l) {
                int e = errno ?: EIO;
                close(fd);
                return fail_step("write", e);
        }
        if (close(fd) < 0)
                return fail_step("close", errno);
        return ok();
}

static int ap_mkdir(int argc, char **argv) {
        if (argc != 2)
                return usage("usage: mkdir PATH");
        if (mkdir(argv[1], 0755) < 0)
                return fail_errno();
        return ok();
}

static int ap_touch(int argc, char **argv) {
        int fd;
        if (argc != 2)
                return usage("usage: touch PATH");
        fd = open(argv[1], O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
        if (fd < 0)
                return fail_errno();
        close(fd);
        return ok();
}

static int ap_mknod(int argc, char **argv) {
        long long maj, min;
        mode_t type;
        int fd;

        if (argc != 5 || (!streq(argv[2], "c") && !streq(argv[2], "b")) || parse_int(argv[3], &maj) < 0 ||
            parse_int(argv[4], &min) < 0)
                return usage("usage: mknod PATH c|b MAJOR MINOR");
        type = streq(argv[2], "c") ? S_IFCHR : S_IFBLK;
        if (mknod(argv[1], type | 0600, makedev((unsigned) maj, (unsigned) min)) < 0)
                return fail_step("mknod", errno);
        /* Creating the node is harmless; the device cgroup (or its absence) decides on open. */
        fd = open(argv[1], O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return fail_step("open", errno);
        close(fd);
        return ok();
}

static int ap_open(int argc, char **argv) {
        int flags = O_RDONLY, fd;

        if (argc < 2 || argc > 3)
                return usage("usage: open PATH [r|w|rw]");
        if (argc == 3) {
                if (streq(argv[2], "w"))
                        flags = O_WRONLY;
                else if (streq(argv[2], "rw"))
                        flags = O_RDWR;
                else if (!streq(argv[2], "r"))
                        return usage("usage: open PATH [r|w|rw]");
        }
        fd = open(argv[1], flags | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return fail_errno();
        close(fd);
        return ok();
}

/* A persistent tun interface NAME made through /dev/net/tun (it lives as long as its network
 * namespace); prints the name the kernel gave it. */
static int ap_tun(int argc, char **argv) {
        struct ifreq ifr = { .ifr_flags = IFF_TUN | IFF_NO_PI };
        int fd;

        if (argc != 2 || strlen(argv[1]) >= IFNAMSIZ)
                return usage("usage: tun NAME");
        fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return fail_errno();
        strcpy(ifr.ifr_name, argv[1]);
        if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETPERSIST, 1) < 0) {
                int r = fail_errno();
                close(fd);
                return r;
        }
        printf("%s\n", ifr.ifr_name);
        close(fd);
        return 0;
}

/* ---- credentials and confinement ---- */

static int ap_caps(int argc, char **argv) {
        static const char *const keys[] = { "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb" };
        return print_status_fields(keys, ELEMENTSOF(keys), true);
}

static const char *const cap_names[] = {
        "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid",
        "setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw",
        "ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
        "sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time", "sys_tty_config", "mknod",
        "lease", "audit_write", "audit_control", "setfcap", "mac_override", "mac_admin", "syslog",
        "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
};

static int ap_hascap(int argc, char **argv) {
        static const char *const keys[] = { "CapBnd", "CapEff", "CapPrm" };
        const char *n;
        int cap = -1;
        bool eff = false;

        if (argc != 2)
                return usage("usage: hascap CAP_NAME");
        n = strncasecmp(argv[1], "cap_", 4) == 0 ? argv[1] + 4 : argv[1];
        for (size_t i = 0; i < ELEMENTSOF(cap_names); i++)
                if (strcasecmp(n, cap_names[i]) == 0)
                        cap = (int) i;
        if (cap < 0)
                return usage("unknown capability");
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                char v[64];
                int r = proc_status_field(keys[i], v, sizeof v);
                if (r < 0)
                        return fail_step(keys[i], -r);
                bool set = (strtoull(v, NULL, 16) >> cap) & 1;
                printf("%s%s=%d", i > 0 ? " " : "", keys[i], set);
                if (streq(keys[i], "CapEff"))
                        eff = set;
        }
        printf("\n");
        return eff ? 0 : 1;
}

static int ap_nnp(int argc, char **argv) {
        static const char *const keys[] = { "NoNewPrivs" };
        return print_status_fields(keys, 1, false);
}

static int ap_seccomp(int argc, char **argv) {
        static const char *const keys[] = { "Seccomp" };
        return print_status_fields(keys, 1, false);
}

/* What the sync calls say where each has a way to fail: on a pipe, fsync() and fdatasync() say
 * EINVAL and sync_file_range() ESPIPE, syncfs(-1) EBADF, msync() of an address that is not at a
 * page's start EINVAL; an open() with O_SYNC of PATH works. With
 * --suppress-sync the calls do nothing and say 0, and O_SYNC/O_DSYNC are refused. */
static int ap_syncs(int argc, char **argv) {
        int p[2], fd;

        if (argc != 2)
                return usage("usage: syncs PATH");
        if (pipe(p) < 0)
                return fail_errno();
        printf("fsync=%s\n", fsync(p[0]) < 0 ? strerrorname_np(errno) : "0");
        printf("fdatasync=%s\n", fdatasync(p[0]) < 0 ? strerrorname_np(errno) : "0");
        printf("sync_file_range=%s\n", sync_file_range(p[0], 0, 0, 0) < 0 ? strerrorname_np(errno) : "0");
        printf("syncfs=%s\n", syncfs(-1) < 0 ? strerrorname_np(errno) : "0");
        printf("msync=%s\n", msync((void *) 1, 1, MS_SYNC) < 0 ? strerrorname_np(errno) : "0");
        fd = open(argv[1], O_WRONLY | O_CREAT | O_SYNC | O_CLOEXEC, 0600);
        printf("open-osync=%s\n", fd < 0 ? strerrorname_np(errno) : "0");
        fd = openat(AT_FDCWD, argv[1], O_WRONLY | O_CREAT | O_DSYNC | O_CLOEXEC, 0600);
        printf("openat-odsync=%s\n", fd < 0 ? strerrorname_np(errno) : "0");
        fd = open(argv[1], O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        printf("open=%s\n", fd < 0 ? strerrorname_np(errno) : "0");
        return 0;
}

/* ---- hostile system calls ---- */

static int report_syscall(long r) {
        if (r >= 0)
                return ok();
        int e = errno;
        (void) fail_step(NULL, e);
        return e == EPERM || e == EACCES || e == ENOSYS ? 1 : 0;
}

static int sc_kexec_load(int argc, char **argv) {
        /* 17 segments is one more than KEXEC_SEGMENT_MAX: EINVAL after the capability check. */
        return report_syscall(syscall(SYS_kexec_load, 0UL, 17UL, NULL, 0UL));
}

static int sc_init_module(int argc, char **argv) {
        return report_syscall(syscall(SYS_finit_module, -1, "", 0));
}

static int sc_keyctl(int argc, char **argv) {
        /* KEYCTL_GET_KEYRING_ID (0) of the thread keyring (-1), without creating it. */
        return report_syscall(syscall(SYS_keyctl, 0, -1, 0));
}

static int sc_add_key(int argc, char **argv) {
        /* A key type that does not exist: ENODEV when allowed. */
        return report_syscall(syscall(SYS_add_key, "berth-no-such-type", "berth-test", "x", 1, 0));
}

static int sc_swapon(int argc, char **argv) {
        return report_syscall(swapon("/berth-test-no-such-swap-file", 0));
}

static int sc_reboot(int argc, char **argv) {
        /* CAD_OFF only changes what Ctrl-Alt-Del does (EINVAL in a child PID namespace). */
        return report_syscall(syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
                                      LINUX_REBOOT_CMD_CAD_OFF, NULL));
}

static int sc_unshare_user(int argc, char **argv) {
        return report_syscall(unshare(CLONE_NEWUSER));
}

static int sc_bpf(int argc, char **argv) {
        /* BPF_MAP_CREATE (0) of map type 0 (unspec): EINVAL when allowed. */
        uint64_t attr[16] = {};
        return report_syscall(syscall(SYS_bpf, 0, attr, sizeof attr));
}

static int sc_perf_event_open(int argc, char **argv) {
        /* A software clock counter for ourselves: opening it is harmless. */
        uint32_t attr[32] = {};
        attr[0] = 1;            /* type: PERF_TYPE_SOFTWARE */
        attr[1] = 64;           /* size: PERF_ATTR_SIZE_VER0 */
        long fd = syscall(SYS_perf_event_open, attr, 0, -1, -1, 0UL);
        int e = errno;
        if (fd >= 0)
                close((int) fd);
        errno = e;
        return report_syscall(fd);
}

static int sc_ptrace(int argc, char **argv) {
        /* PEEKDATA of a process we do not trace: ESRCH when allowed. */
        return report_syscall(syscall(SYS_ptrace, 2 /* PTRACE_PEEKDATA */, getppid(), NULL, NULL));
}

static int sc_open_by_handle_at(int argc, char **argv) {
        /* A handle longer than MAX_HANDLE_SZ: EINVAL after the CAP_DAC_READ_SEARCH check. */
        struct {
                unsigned int handle_bytes;
                int handle_type;
                unsigned char f_handle[128];
        } h = { .handle_bytes = 4096 };
        int dfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        long r = syscall(SYS_open_by_handle_at, dfd, &h, O_RDONLY);
        int e = errno;
        if (r >= 0)
                close((int) r);
        if (dfd >= 0)
                close(dfd);
        errno = e;
        return report_syscall(r);
}

static int sc_pivot_root(int argc, char **argv) {
        return report_syscall(syscall(SYS_pivot_root, "/berth-test-no-such-dir", "/berth-test-no-such-dir"));
}

static int sc_mount_proc_sys_rw(int argc, char **argv) {
        return report_syscall(mount(NULL, "/proc/sys", NULL, MS_REMOUNT | MS_BIND, NULL));
}

static int sc_umount(int argc, char **argv) {
        if (argc != 2)
                return usage("usage: syscall umount PATH");
        /* Lazy: a busy mount must not hide whether unmounting is allowed at all. */
        return report_syscall(umount2(argv[1], MNT_DETACH));
}

static int sc_setns_pid1(int argc, char **argv) {
        int fd = open("/proc/1/ns/mnt", O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                int e = errno;
                (void) fail_step("open", e);
                return e == EPERM || e == EACCES ? 1 : 0;
        }
        long r = setns(fd, CLONE_NEWNS);
        int e = errno;
        close(fd);
        errno = e;
        if (r < 0)
                printf("setns ");
        return report_syscall(r);
}

static int sc_sethostname(int argc, char **argv) {
        if (argc != 2)
                return usage("usage: syscall sethostname NAME");
        return report_syscall(sethostname(argv[1], strlen(argv[1])));
}

static int sc_settime(int argc, char **argv) {
        /* settimeofday(NULL, NULL) checks CAP_SYS_TIME and then changes nothing. */
        return report_syscall(syscall(SYS_settimeofday, NULL, NULL));
}

struct applet {
        const char *name;
        int (*fn)(int argc, char **argv);
        const char *help;
};

static const struct applet syscalls[] = {
        { "kexec_load", sc_kexec_load, "" },
        { "init_module", sc_init_module, "(finit_module)" },
        { "keyctl", sc_keyctl, "" },
        { "add_key", sc_add_key, "" },
        { "swapon", sc_swapon, "" },
        { "reboot", sc_reboot, "(LINUX_REBOOT_CMD_CAD_OFF)" },
        { "unshare-user", sc_unshare_user, "" },
        { "bpf", sc_bpf, "" },
        { "perf_event_open", sc_perf_event_open, "" },
        { "ptrace", sc_ptrace, "" },
        { "open_by_handle_at", sc_open_by_handle_at, "" },
        { "pivot_root", sc_pivot_root, "" },
        { "mount-proc-sys-rw", sc_mount_proc_sys_rw, "" },
        { "umount", sc_umount, "PATH (MNT_DETACH)" },
        { "setns-pid1", sc_setns_pid1, "" },
        { "sethostname", sc_sethostname, "NAME" },
        { "settime", sc_settime, "(settimeofday(NULL, NULL))" },
};

static int ap_syscall(int argc, char **argv) {
        if (argc < 2)
                return usage("usage: syscall NAME [ARGS...]");
        for (size_t i = 0; i < ELEMENTSOF(syscalls); i++)
                if (streq(argv[1], syscalls[i].name))
                        return syscalls[i].fn(argc - 1, argv + 1);
        return usage("unknown syscall test");
}

/* ---- terminals ---- */

static int parse_fd_arg(int argc, char **argv, int *ret) {
        long long v = 0;
        if (argc > 2 || (argc == 2 && (parse_int(argv[1], &v) < 0 || v < 0 || v > INT_MAX)))
                return -EINVAL;
        *ret = (int) v;
        return 0;
}

static int ap_tiocsti(int argc, char **argv) {
        int fd;
        if (parse_fd_arg(argc, argv, &fd) < 0)
                return usage("usage: tiocsti [FD]");
        if (ioctl(fd, TIOCSTI, "x") < 0)
                return fail_errno();
        return ok();
}

static int ap_tioclinux(int argc, char **argv) {
        int fd;
        char subcode = 6; /* TIOCL_GETSHIFTSTATE: reads only */
        if (parse_fd_arg(argc, argv, &fd) < 0)
                return usage("usage: tioclinux [FD]");
        if (ioctl(fd, TIOCLINUX, &subcode) < 0)
                return fail_errno();
        return ok();
}

static int ap_tty(int argc, char **argv) {
        static const char *const names[] = { "stdin", "stdout", "stderr" };
        for (int fd = 0; fd < 3; fd++) {
                const char *n = NULL;
                if (isatty(fd))
                        n = ttyname(fd) ?: "tty";
                printf("%s=%s\n", names[fd], n ?: "notty");
        }
        return 0;
}

static int ap_winsize(int argc, char **argv) {
        struct winsize ws;
        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) < 0)
                return fail_errno();
        printf("%u %u\n", ws.ws_row, ws.ws_col);
        return 0;
}

/* ---- resources ---- */

static const struct {
        const char *name;
        int resource;
} rlimits[] = {
        { "CPU", RLIMIT_CPU }, { "FSIZE", RLIMIT_FSIZE }, { "DATA", RLIMIT_DATA },
        { "STACK", RLIMIT_STACK }, { "CORE", RLIMIT_CORE }, { "RSS", RLIMIT_RSS },
        { "NPROC", RLIMIT_NPROC }, { "NOFILE", RLIMIT_NOFILE }, { "MEMLOCK", RLIMIT_MEMLOCK },
        { "AS", RLIMIT_AS }, { "LOCKS", RLIMIT_LOCKS }, { "SIGPENDING", RLIMIT_SIGPENDING },
        { "MSGQUEUE", RLIMIT_MSGQUEUE }, { "NICE", RLIMIT_NICE }, { "RTPRIO", RLIMIT_RTPRIO },
        { "RTTIME", RLIMIT_RTTIME },
};

static void print_rlim(rlim_t v, const char *sep) {
        if (v == RLIM_INFINITY)
                printf("infinity%s", sep);
        else
                printf("%" PRIu64 "%s", (uint64_t) v, sep);
}

static int ap_rlimit(int argc, char **argv) {
        const char *n;
        struct rlimit rl;

        if (argc != 2)
                return usage("usage: rlimit NAME");
        n = strncasecmp(argv[1], "RLIMIT_", 7) == 0 ? argv[1] + 7 : argv[1];
        for (size_t i = 0; i < ELEMENTSOF(rlimits); i++)
                if (strcasecmp(n, rlimits[i].name) == 0) {
                        if (getrlimit(rlimits[i].resource, &rl) < 0)
                                return fail_errno();
                        print_rlim(rl.rlim_cur, " ");
                        print_rlim(rl.rlim_max, "\n");
                        return 0;
                }
        return usage("unknown rlimit");
}

static int ap_oom(int argc, char **argv) {
        char buf[32] = {};
        int fd = open("/proc/self/oom_score_adj", O_RDONLY | O_CLOEXEC);
        ssize_t k;

        if (fd < 0)
                return fail_errno();
        k = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (k < 0)
                return fail_errno();
        buf[strcspn(buf, "\n")] = 0;
        printf("%s\n", buf);
        return 0;
}

static int ap_affinity(int argc, char **argv) {
        cpu_set_t set;
        bool first = true;

        if (sched_getaffinity(0, sizeof set, &set) < 0)
                return fail_errno();
        for (int i = 0; i < CPU_SETSIZE; i++) {
                if (!CPU_ISSET(i, &set))
                        continue;
                int j = i;
                while (j + 1 < CPU_SETSIZE && CPU_ISSET(j + 1, &set))
                        j++;
                printf(first ? "%d" : ",%d", i);
                if (j > i)
                        printf("-%d", j);
                first = false;
                i = j;
        }
        printf("\n");
        return 0;
}

/* ---- processes ---- */

static int ap_notify(int argc, char **argv) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        const char *path = getenv("NOTIFY_SOCKET");
        socklen_t len;
        size_t l;
        int fd;

        if (argc != 2)
                return usage("usage: notify STRING");
        if (!path || !*path || (path[0] != '/' && path[0] != '@'))
                return fail_step("NOTIFY_SOCKET", EINVAL);
        l = strlen(path);
        if (l >= sizeof sa.sun_path)
                return fail_step("NOTIFY_SOCKET", ENAMETOOLONG);
        memcpy(sa.sun_path, path, l);
        if (path[0] == '@') {
                sa.sun_path[0] = 0;
                len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + l);
        } else
                len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + l + 1);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return fail_step("socket", errno);
        if (sendto(fd, argv[1], strlen(argv[1]), MSG_NOSIGNAL, (struct sockaddr *) &sa, len) < 0) {
                int e = errno;
                close(fd);
                return fail_step("sendto", e);
        }
        close(fd);
        return ok();
}

static void noop_handler(int sig) {
}

static int ap_signals(int argc, char **argv) {
        const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGRTMIN + 3, SIGRTMIN + 4 };
        struct sigaction sa = { .sa_handler = noop_handler };
        struct timespec ts = {};
        long long timeout = -1;
        siginfo_t si;
        sigset_t mask;
        int sig;

        if (argc > 2 || (argc == 2 && (parse_int(argv[1], &timeout) < 0 || timeout < 0)))
                return usage("usage: signals [TIMEOUT_SECONDS]");
        /* Blocked signals are queued even for PID 1 of a PID namespace; the handler is for
         * kernels that would otherwise drop a default-action signal sent to an init. */
        sigemptyset(&mask);
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++) {
                sigaddset(&mask, sigs[i]);
                (void) sigaction(sigs[i], &sa, NULL);
        }
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return fail_errno();
        fprintf(stderr, "ready\n");
        ts.tv_sec = (time_t) timeout;
        do
                sig = timeout >= 0 ? sigtimedwait(&mask, &si, &ts) : sigwaitinfo(&mask, &si);
        while (sig < 0 && errno == EINTR);
        if (sig < 0)
                return fail_errno();
        if (sig >= SIGRTMIN && sig <= SIGRTMAX)
                printf("SIGRTMIN+%d\n", sig - SIGRTMIN);
        else
                printf("SIG%s\n", sigabbrev_np(sig) ?: "?");
        return 0;
}

/* The state letter of PID in /proc/PID/stat ('Z' for a zombie), or 0 when it is gone (reaped). */
static char pid_state(pid_t pid) {
        char path[64], buf[512];
        ssize_t k;
        int fd;

        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        k = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (k <= 0)
                return 0;
        buf[k] = 0;
        const char *p = strrchr(buf, ')');
        return p && p[1] == ' ' ? p[2] : 0;
}

/* Makes N orphaned zombies and reports how many are left after up to 2 s: "zombies=K".
 * A child forks N grandchildren that exit at once, then exits itself, so the grandchildren
 * are re-parented to the PID namespace's init (or a subreaper). If that init reaps, K is 0
 * (exit 0); if nobody reaps, e.g. when the payload itself is PID 1, K is N (exit 1). */
static int ap_zombies(int argc, char **argv) {
        long long n;
        int p[2], left = 0;
        pid_t child, pids[256];
        size_t got = 0;

        if (argc != 2 || parse_int(argv[1], &n) < 0 || n < 1 || n > (long long) ELEMENTSOF(pids))
                return usage("usage: zombies N (1..256)");
        if (pipe2(p, O_CLOEXEC) < 0)
                return fail_step("pipe", errno);
        fflush(stdout);
        child = fork();
        if (child < 0)
                return fail_step("fork", errno);
        if (child == 0) {
                close(p[0]);
                for (long long i = 0; i < n; i++) {
                        pid_t g = fork();
                        if (g == 0)
                                _exit(0);
                        if (g > 0 && write(p[1], &g, sizeof g) != sizeof g)
                                _exit(1);
                }
                _exit(0);
        }
        close(p[1]);
        while (got < (size_t) n) {
                ssize_t k = read(p[0], &pids[got], sizeof(pid_t));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k != sizeof(pid_t))
                        break;
                got++;
        }
        close(p[0]);
        (void) waitpid(child, NULL, 0);
        /* A grandchild that has not run its _exit() yet is neither a zombie nor reaped: wait until
         * each one is one or the other (on a busy machine that takes a while), then give a reaper
         * 2 s. Counting only zombies early made a slow exit look like a reap. */
        for (int tries = 0, rounds = 0; tries < 40 && rounds < 1200; rounds++) { /* 60 s at most */
                struct timespec ts = { .tv_nsec = 50 * 1000 * 1000 };
                int alive = 0;
                left = 0;
                for (size_t i = 0; i < got; i++) {
                        char st = pid_state(pids[i]);
                        left += st == 'Z';
                        alive += st != 'Z' && st != 0;
                }
                if (left == 0 && alive == 0)
                        break;
                if (alive == 0)
                        tries++;
                (void) nanosleep(&ts, NULL);
        }
        printf("zombies=%d\n", left);
        return left == 0 ? 0 : 1;
}

/* ---- files ---- */

static const char *mode_type(mode_t m) {
        switch (m & S_IFMT) {
        case S_IFREG: return "file";
        case S_IFDIR: return "dir";
        case S_IFLNK: return "link";
        case S_IFCHR: return "char";
        case S_IFBLK: return "block";
        case S_IFIFO: return "fifo";
        case S_IFSOCK: return "socket";
        default: return "unknown";
        }
}

static int ap_stat(int argc, char **argv) {
        struct stat st;

        if (argc != 2)
                return usage("usage: stat PATH");
        if (lstat(argv[1], &st) < 0)
                return fail_errno();
        printf("type=%s mode=%04o uid=%u gid=%u", mode_type(st.st_mode), (unsigned) (st.st_mode & 07777),
               (unsigned) st.st_uid, (unsigned) st.st_gid);
        if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
                printf(" rdev=%u:%u", major(st.st_rdev), minor(st.st_rdev));
        if (S_ISREG(st.st_mode))
                printf(" size=%" PRIu64, (uint64_t) st.st_size);
        printf("\n");
        return 0;
}

static int cmp_int(const void *a, const void *b) {
        return *(const int *) a - *(const int *) b;
}

static int ap_ls(int argc, char **argv) {
        struct dirent **list = NULL;
        int n;

        if (argc != 2)
                return usage("usage: ls DIR");
        n = scandir(argv[1], &list, NULL, alphasort);
        if (n < 0)
                return fail_errno();
        for (int i = 0; i < n; i++) {
                if (!streq(list[i]->d_name, ".") && !streq(list[i]->d_name, ".."))
                        printf("%s\n", list[i]->d_name);
                free(list[i]);
        }
        free(list);
        return 0;
}

static int ap_mounts(int argc, char **argv) {
        char *args[] = { "cat", "/proc/self/mountinfo", NULL };
        return ap_cat(2, args);
}

static int ap_fds(int argc, char **argv) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        int fds[1024];
        size_t n = 0;

        if (!d)
                return fail_errno();
        while ((de = readdir(d)) && n < ELEMENTSOF(fds))
                if (isdigit((unsigned char) de->d_name[0]) && atoi(de->d_name) != dirfd(d))
                        fds[n++] = atoi(de->d_name);
        closedir(d);
        qsort(fds, n, sizeof fds[0], cmp_int);
        for (size_t i = 0; i < n; i++) {
                char path[64], target[PATH_MAX];
                ssize_t k;

                snprintf(path, sizeof path, "/proc/self/fd/%d", fds[i]);
                k = readlink(path, target, sizeof target - 1);
                target[k < 0 ? 0 : k] = 0;
                printf("%d %s\n", fds[i], target);
        }
        return 0;
}

/* ---- what berthctl exec puts into the container ---- */

/* Reads "Key:" of /proc/PID/status. */
static int pid_status_field(int pid, const char *key, char *buf, size_t size) {
        char path[64];

        snprintf(path, sizeof path, "/proc/%d/status", pid);
        return status_field_in(path, key, buf, size);
}

/* Not there (gone) or not ours to reach (a non-dumpable process of another user namespace): the
 * guest cannot use it either. */
static bool unreachable(int e) {
        return e == ENOENT || e == ESRCH || e == EACCES || e == EPERM;
}

/* Is the object behind the magic link (or pidfd_getfd() copy) something of the guest? Pipes,
 * sockets and anonymous inodes are no file of anyone's file system; a path must name, in our
 * root, the very same inode. Returns NULL if fine, else why not. */
static const char *guest_object(const char *link, int fd, char *why, size_t size) {
        char target[PATH_MAX];
        struct stat a, b;
        ssize_t k;

        k = readlink(link, target, sizeof target - 1);
        if (k < 0)
                return unreachable(errno) ? NULL : (snprintf(why, size, "readlink %s: %s", link, errno_name(errno)), why);
        target[k] = 0;
        if (strncmp(target, "pipe:[", 6) == 0 || strncmp(target, "socket:[", 8) == 0 ||
            strncmp(target, "anon_inode:", 11) == 0)
                return NULL;
        if ((fd >= 0 ? fstat(fd, &a) : stat(link, &a)) < 0)
                return unreachable(errno) ? NULL : (snprintf(why, size, "stat %s: %s", link, errno_name(errno)), why);
        if (target[0] != '/' || stat(target, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
                snprintf(why, size, "%s -> '%s' is not that file in the container (dev %u:%u ino %llu)", link, target,
                         major(a.st_dev), minor(a.st_dev), (unsigned long long) a.st_ino);
                return why;
        }
        return NULL;
}

static bool audit_fail(int pid, const char *what) {
        printf("%d: FAIL %s\n", pid, what);
        return false;
}

/* One process the container can see: confined like the container, root and files inside it. */
static bool audit_pid(int pid, uint64_t bnd, bool nnp) {
        static const char *const masks[] = { "CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb" };
        char path[PATH_MAX], v[256], why[PATH_MAX + 128];
        struct stat root, st;
        bool good = true;
        DIR *d;
        struct dirent *de;
        int fd;

        if (pid_status_field(pid, "Seccomp", v, sizeof v) < 0)
                return true; /* gone */
        if (!streq(v, "2")) {
                snprintf(why, sizeof why, "Seccomp: %s, not 2 (filter)", v);
                good = audit_fail(pid, why);
        }
        for (size_t i = 0; i < ELEMENTSOF(masks); i++) {
                if (pid_status_field(pid, masks[i], v, sizeof v) < 0)
                        return true;
                uint64_t m = strtoull(v, NULL, 16);
                if ((i == 0 && m != bnd) || (m & ~bnd) || (streq(masks[i], "CapAmb") && m != 0)) {
                        snprintf(why, sizeof why, "%s: %s, the container's bounding set is %016llx", masks[i], v,
                                 (unsigned long long) bnd);
                        good = audit_fail(pid, why);
                }
        }
        if (nnp && pid_status_field(pid, "NoNewPrivs", v, sizeof v) >= 0 && !streq(v, "1"))
                good = audit_fail(pid, "NoNewPrivs: 0, the container has 1");

        /* the host caller's environment: exec-audit's caller sets BERTH_TEST_HOST_ENV in it */
        snprintf(path, sizeof path, "/proc/%d/environ", pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
                char env[65536];
                ssize_t k = read(fd, env, sizeof env - 1);
                close(fd);
                for (ssize_t i = 0; k > 0 && i < k; i += (ssize_t) strlen(env + i) + 1) {
                        env[k] = 0;
                        if (strncmp(env + i, "BERTH_TEST_HOST_ENV=", 20) == 0)
                                good = audit_fail(pid, "its /proc/PID/environ shows the host caller's environment");
                }
        }

        snprintf(path, sizeof path, "/proc/%d/root", pid);
        if (stat("/", &root) < 0 || stat(path, &st) < 0) {
                if (!unreachable(errno))
                        good = audit_fail(pid, "cannot stat its root");
                else
                        printf("%d: not reachable: errno=%s\n", pid, errno_name(errno));
        } else if (st.st_dev != root.st_dev || st.st_ino != root.st_ino)
                good = audit_fail(pid, "its root is not the container's");
        snprintf(path, sizeof path, "/proc/%d/cwd", pid);
        if (guest_object(path, -1, why, sizeof why))
                good = audit_fail(pid, why);
        /* its binary: a file of the container or a memfd; never writable (CVE-2019-5736) */
        snprintf(path, sizeof path, "/proc/%d/exe", pid);
        {
                char target[PATH_MAX];
                ssize_t k = readlink(path, target, sizeof target - 1);
                target[k < 0 ? 0 : k] = 0;
                if (k > 0 && strncmp(target, "/memfd:", 7) != 0 && guest_object(path, -1, why, sizeof why))
                        good = audit_fail(pid, why);
                fd = open(path, O_WRONLY | O_CLOEXEC | O_NONBLOCK);
                if (fd >= 0) {
                        close(fd);
                        printf("%d: FAIL %s ('%s') opens for writing\n", pid, path, target);
                        good = false;
                }
        }

        snprintf(path, sizeof path, "/proc/%d/fd", pid);
        d = opendir(path);
        if (!d)
                return good;
        while ((de = readdir(d))) {
                char link[PATH_MAX];
                if (!isdigit((unsigned char) de->d_name[0]))
                        continue;
                if (pid == getpid() && atoi(de->d_name) == dirfd(d))
                        continue;
                snprintf(link, sizeof link, "/proc/%d/fd/%s", pid, de->d_name);
                if (guest_object(link, -1, why, sizeof why))
                        good = audit_fail(pid, why);
        }
        closedir(d);
        return good;
}

/* The first stopped process that is not us: the exec parked by BERTH_TEST_PARK_EXEC. */
static int find_stopped(void) {
        DIR *d = opendir("/proc");
        struct dirent *de;
        int found = 0;

        if (!d)
                return 0;
        while (!found && (de = readdir(d))) {
                char v[64];
                int pid = atoi(de->d_name);
                if (pid <= 0 || pid == getpid())
                        continue;
                if (pid_status_field(pid, "State", v, sizeof v) >= 0 && v[0] == 'T')
                        found = pid;
        }
        closedir(d);
        return found;
}

/* Attach to the parked process as a debugger would and take each of its fds (pidfd_getfd()): none
 * may be a file outside the container. */
static bool audit_ptrace(int pid) {
        char path[64], why[PATH_MAX + 128];
        bool good = true;
        int pidfd, status;
        DIR *d;
        struct dirent *de;

        if (syscall(SYS_ptrace, PTRACE_ATTACH_, pid, 0, 0) < 0) {
                printf("%d: ptrace attach refused: errno=%s\n", pid, errno_name(errno));
                return true;
        }
        (void) waitpid(pid, &status, __WALL);
        printf("%d: ptrace attached\n", pid);
        pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        snprintf(path, sizeof path, "/proc/%d/fd", pid);
        d = opendir(path);
        while (pidfd >= 0 && d && (de = readdir(d))) {
                char link[PATH_MAX];
                int n = atoi(de->d_name), fd;
                if (!isdigit((unsigned char) de->d_name[0]))
                        continue;
                fd = (int) syscall(SYS_pidfd_getfd, pidfd, n, 0);
                if (fd < 0) {
                        printf("%d: pidfd_getfd %d: errno=%s\n", pid, n, errno_name(errno));
                        continue;
                }
                snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
                if (guest_object(link, fd, why, sizeof why)) {
                        printf("%d: FAIL its fd %d (taken with pidfd_getfd): %s\n", pid, n, why);
                        good = false;
                }
                close(fd);
        }
        if (d)
                closedir(d);
        if (pidfd >= 0)
                close(pidfd);
        (void) syscall(SYS_ptrace, PTRACE_DETACH_, pid, 0, SIGSTOP);
        return good;
}

/* exec-audit BND NNP [TIMEOUT]: waits for a parked process (stopped), checks every process we
 * can see (seccomp, capabilities within BND (hex), NoNewPrivs if NNP is 1, root, cwd, binary, fds),
 * attaches to the parked one, then lets it go on (SIGCONT). "ok" if all of it holds. */
static int ap_exec_audit(int argc, char **argv) {
        long long timeout = 30, nnp;
        uint64_t bnd;
        bool good = true;
        int parked = 0;
        DIR *d;
        struct dirent *de;

        if (argc < 3 || parse_int(argv[2], &nnp) < 0 || (argc > 3 && parse_int(argv[3], &timeout) < 0))
                return usage("usage: exec-audit BOUNDING_SET_HEX NNP [TIMEOUT]");
        bnd = strtoull(argv[1], NULL, 16);
        for (long long i = 0; i < timeout * 20 && !(parked = find_stopped()); i++)
                usleep(50000);
        if (!parked) {
                printf("no parked process appeared within %llds\n", timeout);
                return 1;
        }
        printf("parked: %d\n", parked);
        d = opendir("/proc");
        if (!d)
                return fail_errno();
        while ((de = readdir(d))) {
                int pid = atoi(de->d_name);
                if (pid > 0 && !audit_pid(pid, bnd, nnp == 1))
                        good = false;
        }
        closedir(d);
        if (!audit_ptrace(parked))
                good = false;
        (void) kill(parked, SIGCONT);
        if (good)
                return ok();
        return 1;
}

/* reopen FD DATA: opens /proc/self/fd/FD for writing (a new open file, whatever mode FD has) and
 * writes DATA: a host file given as stdin must not become writable this way. */
static int ap_reopen(int argc, char **argv) {
        char path[64];
        struct stat st;
        int fd;

        if (argc != 3)
                return usage("usage: reopen FD DATA");
        snprintf(path, sizeof path, "/proc/self/fd/%s", argv[1]);
        if (stat(path, &st) >= 0)
                printf("type=%s\n", S_ISREG(st.st_mode) ? "file" : S_ISFIFO(st.st_mode) ? "fifo" :
                       S_ISSOCK(st.st_mode) ? "socket" : S_ISCHR(st.st_mode) ? "chr" : S_ISDIR(st.st_mode) ? "dir" : "other");
        fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return fail_errno();
        if (write(fd, argv[2], strlen(argv[2])) < 0) {
                close(fd);
                return fail_errno();
        }
        close(fd);
        return ok();
}

/* ---- UDP, for port forwarding (no UDP in busybox's nc) ---- */

/* udp-echo PORT: answers each datagram on PORT (IPv4 and IPv6) with "echo:" and its text, forever. */
static int ap_udp_echo(int argc, char **argv) {
        struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
        long long port;
        int fd, zero = 0;

        if (argc != 2 || parse_int(argv[1], &port) < 0 || port < 1 || port > 65535)
                return usage("usage: udp-echo PORT");
        sa.sin6_port = htons((uint16_t) port);
        fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return fail_step("socket", errno);
        (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return fail_step("bind", errno);
        fprintf(stderr, "ready\n");
        for (;;) {
                char in[1024], out[1100];
                struct sockaddr_storage from;
                socklen_t fromlen = sizeof from;
                ssize_t n = recvfrom(fd, in, sizeof in - 1, 0, (struct sockaddr *) &from, &fromlen);
                if (n < 0)
                        continue;
                in[n] = 0;
                n = snprintf(out, sizeof out, "echo:%s", in);
                (void) sendto(fd, out, (size_t) n, 0, (struct sockaddr *) &from, fromlen);
        }
}

/* udp-ask ADDRESS PORT TEXT: sends TEXT, prints the answer; exit 1 without one within 2 seconds. */
static int ap_udp_ask(int argc, char **argv) {
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } sa = {};
        socklen_t len;
        long long port;
        char buf[1100];
        struct pollfd p;
        ssize_t n;
        int fd;

        if (argc != 4 || parse_int(argv[2], &port) < 0 || port < 1 || port > 65535)
                return usage("usage: udp-ask ADDRESS PORT TEXT");
        if (inet_pton(AF_INET, argv[1], &sa.in.sin_addr) == 1) {
                sa.in.sin_family = AF_INET;
                sa.in.sin_port = htons((uint16_t) port);
                len = sizeof sa.in;
        } else if (inet_pton(AF_INET6, argv[1], &sa.in6.sin6_addr) == 1) {
                sa.in6.sin6_family = AF_INET6;
                sa.in6.sin6_port = htons((uint16_t) port);
                len = sizeof sa.in6;
        } else
                return usage("udp-ask: ADDRESS must be an IPv4 or IPv6 address");
        fd = socket(sa.sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return fail_step("socket", errno);
        if (connect(fd, &sa.sa, len) < 0 || send(fd, argv[3], strlen(argv[3]), 0) < 0)
                return fail_step("send", errno);
        p = (struct pollfd) { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 2000) != 1)
                return fail_step("poll (no answer)", ETIMEDOUT);
        n = recv(fd, buf, sizeof buf - 1, 0);
        if (n < 0)
                return fail_step("recv", errno);
        buf[n] = 0;
        printf("%s\n", buf);
        return 0;
}

/* tcp-peer PORT: answers each TCP connection on PORT (IPv4 and IPv6) with "peer:" and the address
 * it came from, forever: shows whether a connection was NATed on its way. */
static int ap_tcp_peer(int argc, char **argv) {
        struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
        long long port;
        int fd, zero = 0, one = 1;

        if (argc != 2 || parse_int(argv[1], &port) < 0 || port < 1 || port > 65535)
                return usage("usage: tcp-peer PORT");
        sa.sin6_port = htons((uint16_t) port);
        fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return fail_step("socket", errno);
        (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(fd, 16) < 0)
                return fail_step("bind", errno);
        fprintf(stderr, "ready\n");
        for (;;) {
                struct sockaddr_in6 from;
                socklen_t fromlen = sizeof from;
                char addr[INET6_ADDRSTRLEN], out[INET6_ADDRSTRLEN + 8];
                const char *a;
                int c = accept4(fd, (struct sockaddr *) &from, &fromlen, SOCK_CLOEXEC);
                if (c < 0)
                        continue;
                a = inet_ntop(AF_INET6, &from.sin6_addr, addr, sizeof addr);
                if (a && strncmp(a, "::ffff:", 7) == 0 && strchr(a, '.'))
                        a += 7; /* an IPv4 client, as IPv4 */
                int n = snprintf(out, sizeof out, "peer:%s\n", a ?: "?");
                (void) write(c, out, (size_t) n);
                close(c);
        }
}

static int ap_help(int argc, char **argv);

static const struct applet applets[] = {
        { "true", ap_true, "" },
        { "exit", ap_exit, "N" },
        { "echo", ap_echo, "ARGS..." },
        { "sleep", ap_sleep, "SECONDS" },
        { "pid", ap_pid, "" },
        { "ppid", ap_ppid, "" },
        { "env", ap_env, "" },
        { "cwd", ap_cwd, "" },
        { "id", ap_id, "" },
        { "hostname", ap_hostname, "" },
        { "cat", ap_cat, "FILE" },
        { "write", ap_write, "FILE DATA" },
        { "mkdir", ap_mkdir, "PATH" },
        { "touch", ap_touch, "PATH" },
        { "mknod", ap_mknod, "PATH c|b MAJOR MINOR" },
        { "open", ap_open, "PATH [r|w|rw]" },
        { "tun", ap_tun, "NAME" },
        { "caps", ap_caps, "" },
        { "hascap", ap_hascap, "CAP_NAME" },
        { "nnp", ap_nnp, "" },
        { "syncs", ap_syncs, "PATH" },
        { "seccomp", ap_seccomp, "" },
        { "syscall", ap_syscall, "NAME [ARGS...]" },
        { "tiocsti", ap_tiocsti, "[FD]" },
        { "tioclinux", ap_tioclinux, "[FD]" },
        { "tty", ap_tty, "" },
        { "winsize", ap_winsize, "" },
        { "rlimit", ap_rlimit, "NAME" },
        { "oom", ap_oom, "" },
        { "affinity", ap_affinity, "" },
        { "notify", ap_notify, "STRING" },
        { "signals", ap_signals, "[TIMEOUT]" },
        { "zombies", ap_zombies, "N" },
        { "stat", ap_stat, "PATH" },
        { "ls", ap_ls, "DIR" },
        { "mounts", ap_mounts, "" },
        { "fds", ap_fds, "" },
        { "exec-audit", ap_exec_audit, "BOUNDING_SET_HEX NNP [TIMEOUT]" },
        { "reopen", ap_reopen, "FD DATA" },
        { "udp-echo", ap_udp_echo, "PORT" },
        { "udp-ask", ap_udp_ask, "ADDRESS PORT TEXT" },
        { "tcp-peer", ap_tcp_peer, "PORT" },
        { "help", ap_help, "" },
};

static int ap_help(int argc, char **argv) {
        printf("usage: payload APPLET [ARGS...]\n");
        for (size_t i = 0; i < ELEMENTSOF(applets); i++)
                printf("  %s %s\n", applets[i].name, applets[i].help);
        printf("syscall tests (exit 1 when blocked with EPERM/EACCES/ENOSYS):\n");
        for (size_t i = 0; i < ELEMENTSOF(syscalls); i++)
                printf("  syscall %s %s\n", syscalls[i].name, syscalls[i].help);
        return 0;
}

int main(int argc, char **argv) {
        const char *name;
        int r;

        /* Called as "payload APPLET ..." or through a symlink named after the applet. */
        name = strrchr(argv[0], '/');
        name = name ? name + 1 : argv[0];
        if (strcmp(name, "payload") == 0 || strcmp(name, "berth-test-payload") == 0) {
                if (argc < 2) {
                        (void) ap_help(0, NULL);
                        return 2;
                }
                argc--;
                argv++;
                name = argv[0];
        }
        for (size_t i = 0; i < ELEMENTSOF(applets); i++)
                if (streq(name, applets[i].name)) {
                        r = applets[i].fn(argc, argv);
                        fflush(stdout);
                        return r;
                }
        fprintf(stderr, "payload: unknown applet '%s'\n", name);
        return 2;
}
