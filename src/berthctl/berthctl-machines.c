/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * berthctl's machine verbs, without systemd: everything is read from berth's runtime registry
 * (/run/berth/machines) and done to the machine's processes directly.
 *
 * The "backend" is the pair machine_list()/machine_get(): they fill MachineInfo, which is all the
 * verbs look at. A machined backend (sd-bus) can fill the same struct later; the verbs that act on a
 * machine (exec, copy, bind) only need its leader and its confinement.
 *
 * Liveness: a record is only believed while its berth holds the machine's lock
 * (registry_is_live()). A stale record (its berth was killed) is never listed and never acted on:
 * its leader PID may belong to someone else by now. Before a signal goes to a leader, the PID is
 * pinned with a pidfd and the lock checked again after that, so that a PID reused in between is
 * never signalled.
 *
 * Trust: the guest's files (os-release, passwd, the paths of copy-to/copy-from, bind's
 * destination) are resolved below /proc/LEADER/root with RESOLVE_IN_ROOT, or from inside the
 * machine's mount namespace, never by string concatenation on the host.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/mount.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-event.h>
#include <systemd/sd-journal.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "berth-caps.h"
#include "berth-console.h"
#include "berth-seccomp.h"
#include "berth-settings.h"
#include "berthctl.h"
#include "log.h"
#include "machine-name.h"
#include "registry.h"
#include "util.h"

#define DEFAULT_WAIT_USEC (90 * USEC_PER_SEC)
#define POLL_USEC (50 * USEC_PER_MSEC)
#define CONTAINER_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define ESCAPE_CHAR 0x1d /* Ctrl-] */

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static int pidfd_open_(pid_t pid) {
        return (int) syscall(SYS_pidfd_open, pid, 0);
}

static int pidfd_send_signal_(int pidfd, int sig) {
        return (int) syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* ---------------------------------------------------------------------------------------------------- */
/* The backend: machines from the registry                                                              */
/* ---------------------------------------------------------------------------------------------------- */

typedef struct MachineInfo {
        char *name;
        char *class, *service, *state, *root, *unit, *uuid;
        pid_t leader;     /* 0 while starting */
        pid_t monitor;    /* the berth process */
        uint64_t since;   /* CLOCK_REALTIME usec */
        char *console;    /* the console socket, if any */
        char *os, *version, *pretty_os; /* from the guest's os-release, if it could be read */
        MachineRecord *record; /* the registry backend's record: confinement, cgroups */
} MachineInfo;

static MachineInfo *machine_info_free(MachineInfo *m) {
        if (!m)
                return NULL;
        free(m->name);
        free(m->os);
        free(m->version);
        free(m->pretty_os);
        machine_record_free(m->record);
        free(m);
        return NULL;
}
static inline void machine_info_freep(MachineInfo **m) {
        machine_info_free(*m);
}

/* Names of the live machines. Stale records are left out. */
static int machine_list(char ***ret) {
        _cleanup_strv_free_ char **all = NULL, **live = NULL;
        int r;

        r = registry_list(&all);
        if (r < 0)
                return r;
        STRV_FOREACH(n, all)
                if (registry_is_live(*n) > 0) {
                        r = strv_extend(&live, *n);
                        if (r < 0)
                                return r;
                }
        if (!live && !(live = calloc(1, sizeof(char *))))
                return -ENOMEM;
        *ret = TAKE_PTR(live);
        return 0;
}

/* -ENXIO: no such machine (or only a stale record). Doesn't log. */
static int machine_get(const char *name, MachineInfo **ret) {
        _cleanup_(machine_info_freep) MachineInfo *m = NULL;
        _cleanup_(machine_record_freep) MachineRecord *rec = NULL;
        int r;

        if (!machine_name_is_valid(name))
                return -EINVAL;
        r = registry_read(name, &rec);
        if (r == -ENOENT)
                return -ENXIO;
        if (r < 0)
                return r;
        r = registry_is_live(name);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENXIO;

        m = calloc(1, sizeof *m);
        if (!m || !(m->name = strdup(name)))
                return -ENOMEM;
        m->class = rec->class;
        m->service = rec->service;
        m->state = rec->state;
        m->root = rec->root;
        m->unit = rec->unit;
        m->uuid = rec->uuid;
        m->leader = rec->leader;
        m->monitor = rec->pid;
        m->since = rec->timestamp;
        m->console = rec->console;
        m->record = TAKE_PTR(rec);
        *ret = TAKE_PTR(m);
        return 0;
}

/* machine_get() that logs the one-line error verbs print. */
static int machine_get_logged(const char *name, MachineInfo **ret) {
        int r = machine_get(name, ret);
        if (r == -ENXIO)
                return log_error_errno(r, "No machine '%s' is running.", name);
        if (r == -EINVAL)
                return log_error_errno(r, "Invalid machine name '%s'.", name);
        if (r < 0)
                return log_error_errno(r, "Failed to read the record of machine '%s': %m", name);
        return 0;
}

/* The unified (cgroup2) one of the record's cgroup paths, or NULL. */
static const char *machine_unified_cgroup(const MachineInfo *m) {
        STRV_FOREACH(p, m->record->cgroup_paths) {
                struct statfs sfs;
                if (statfs(*p, &sfs) >= 0 && (uint64_t) sfs.f_type == CGROUP2_SUPER_MAGIC)
                        return *p;
        }
        return NULL;
}

/* Pins the machine's leader: a pidfd, taken while the machine's berth is still alive, for a leader
 * that is still in the machine's cgroup. After that the PID cannot name another process. Logs. */
static int machine_open_leader(const MachineInfo *m, int *ret_pidfd) {
        _cleanup_close_ int pidfd = -EBADF;
        _cleanup_free_ char *cg = NULL;
        char path[64];
        int r;

        if (m->leader <= 0)
                return log_error_errno(-EAGAIN, "Machine '%s' is still starting, try again in a moment (or "
                                                "'berthctl wait %s').", m->name, m->name);
        pidfd = pidfd_open_(m->leader);
        if (pidfd < 0)
                return log_error_errno(negative_errno(), "Machine '%s' is gone: %m", m->name);
        r = registry_is_live(m->name);
        if (r <= 0)
                return log_error_errno(-ESRCH, "Machine '%s' is gone.", m->name);
        /* The record names the cgroup; a leader that is not in it is not the leader. */
        snprintf(path, sizeof path, "/proc/%d/cgroup", (int) m->leader);
        if (m->record->cgroup && read_full_file(path, &cg, NULL) >= 0 && !strstr(cg, m->record->cgroup))
                return log_error_errno(-ESRCH, "The leader of machine '%s' (PID %d) is not in its cgroup, refusing.",
                                       m->name, (int) m->leader);
        *ret_pidfd = TAKE_FD(pidfd);
        return 0;
}

/* An O_PATH fd of the guest's root (through /proc/LEADER/root). Doesn't log. */
static int machine_open_root(const MachineInfo *m, int *ret) {
        char path[64];
        int fd;

        if (m->leader <= 0)
                return -EAGAIN;
        snprintf(path, sizeof path, "/proc/%d/root", (int) m->leader);
        fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        *ret = fd;
        return 0;
}

/* A value of an os-release file, unquoted. */
static char *os_release_value(const char *data, const char *key) {
        size_t kl = strlen(key);

        for (const char *l = data; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                const char *e;
                size_t n;
                char *v;

                if (strncmp(l, key, kl) != 0 || l[kl] != '=')
                        continue;
                l += kl + 1;
                e = strchr(l, '\n');
                n = e ? (size_t) (e - l) : strlen(l);
                if (n >= 2 && (l[0] == '"' || l[0] == '\'') && l[n - 1] == l[0]) {
                        l++;
                        n -= 2;
                }
                v = strndup(l, n);
                /* the guest's words: no escape sequences on our terminal */
                for (char *c = v; c && *c; c++)
                        if ((unsigned char) *c < 0x20 || *c == 0x7f)
                                *c = '?';
                return v;
        }
        return NULL;
}

static void machine_read_os_release(MachineInfo *m) {
        static const char *const paths[] = { "etc/os-release", "usr/lib/os-release" };
        _cleanup_close_ int root = -EBADF;

        if (machine_open_root(m, &root) < 0)
                return;
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                _cleanup_close_ int fd = open_in_root(root, paths[i], O_RDONLY | O_NOCTTY | O_NONBLOCK);
                _cleanup_free_ char *data = NULL;
                char buf[64];
                struct stat st;

                if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > 64 * 1024)
                        continue;
                snprintf(buf, sizeof buf, "/proc/self/fd/%d", fd);
                if (read_full_file(buf, &data, NULL) < 0)
                        continue;
                m->os = os_release_value(data, "ID");
                m->version = os_release_value(data, "VERSION_ID");
                m->pretty_os = os_release_value(data, "PRETTY_NAME");
                return;
        }
}

static bool same_namespace(pid_t pid, const char *ns) {
        char a[64], b[64];
        struct stat sa, sb;

        snprintf(a, sizeof a, "/proc/%d/ns/%s", (int) pid, ns);
        snprintf(b, sizeof b, "/proc/self/ns/%s", ns);
        return stat(a, &sa) >= 0 && stat(b, &sb) >= 0 && sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

/* The machine's addresses (not loopback), read in a child that joined its network namespace.
 * *ret is NULL for a machine on the host's network (its addresses would be the host's), and an
 * empty list for one with only loopback. Doesn't log. */
static int machine_addresses(const MachineInfo *m, bool *ret_host, char ***ret) {
        _cleanup_close_pair_ int pipefd[2] = { -EBADF, -EBADF };
        _cleanup_close_ int pidfd = -EBADF;
        _cleanup_free_ char *data = NULL;
        char **l = NULL;
        char buf[4096];
        size_t n = 0;
        ssize_t k;
        pid_t pid;

        *ret = NULL;
        *ret_host = false;
        if (m->leader <= 0)
                return 0;
        if (same_namespace(m->leader, "net")) {
                *ret_host = true;
                return 0;
        }
        pidfd = pidfd_open_(m->leader);
        if (pidfd < 0)
                return negative_errno();
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return negative_errno();
        pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                /* host namespaces but the network one; nothing of the guest runs here */
                struct ifaddrs *ifa = NULL;
                FILE *f;

                pipefd[0] = safe_close(pipefd[0]);
                if (setns(pidfd, CLONE_NEWNET) < 0 || getifaddrs(&ifa) < 0)
                        _exit(EXIT_FAILURE);
                f = fdopen(pipefd[1], "w");
                if (!f)
                        _exit(EXIT_FAILURE);
                for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
                        char a[INET6_ADDRSTRLEN];
                        if (!i->ifa_addr || (i->ifa_flags & IFF_LOOPBACK))
                                continue;
                        if (i->ifa_addr->sa_family == AF_INET)
                                inet_ntop(AF_INET, &((struct sockaddr_in *) i->ifa_addr)->sin_addr, a, sizeof a);
                        else if (i->ifa_addr->sa_family == AF_INET6)
                                inet_ntop(AF_INET6, &((struct sockaddr_in6 *) i->ifa_addr)->sin6_addr, a, sizeof a);
                        else
                                continue;
                        fprintf(f, "%s\n", a);
                }
                fclose(f);
                _exit(EXIT_SUCCESS);
        }
        pipefd[1] = safe_close(pipefd[1]);
        while (n < sizeof buf - 1 && (k = read(pipefd[0], buf + n, sizeof buf - 1 - n)) != 0) {
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                n += (size_t) k;
        }
        buf[n] = 0;
        (void) waitpid(pid, NULL, 0);
        if (strv_split(buf, "\n", &l) < 0)
                return -ENOMEM;
        /* drop the empty field after the last newline */
        size_t len = strv_length(l);
        if (len > 0 && isempty(l[len - 1])) {
                free(l[len - 1]);
                l[len - 1] = NULL;
        }
        *ret = l;
        return 0;
}

/* ---------------------------------------------------------------------------------------------------- */
/* list, status, show                                                                                   */
/* ---------------------------------------------------------------------------------------------------- */

int verb_list(int argc, char *argv[]) {
        static const char *const headers[] = { "MACHINE", "CLASS", "SERVICE", "OS", "VERSION", "ADDRESSES", "STATE", NULL };
        _cleanup_(table_freep) Table *t = NULL;
        _cleanup_strv_free_ char **names = NULL;
        int r;

        r = machine_list(&names);
        if (r < 0)
                return log_error_errno(r, "Failed to list machines in %s: %m", registry_run_dir());
        t = table_new(headers);
        if (!t)
                return log_oom();
        STRV_FOREACH(n, names) {
                _cleanup_(machine_info_freep) MachineInfo *m = NULL;
                _cleanup_strv_free_ char **addrs = NULL;
                bool host;

                if (machine_get(*n, &m) < 0)
                        continue; /* went away meanwhile */
                machine_read_os_release(m);
                (void) machine_addresses(m, &host, &addrs);
                if (table_add(t, CELL_STRING, m->name) < 0 || table_add(t, CELL_STRING, m->class) < 0 ||
                    table_add(t, CELL_STRING, m->service) < 0 || table_add(t, CELL_STRING, m->os) < 0 ||
                    table_add(t, CELL_STRING, m->version) < 0 ||
                    table_add(t, CELL_STRV, strv_isempty(addrs) ? NULL : addrs) < 0 ||
                    table_add(t, CELL_STRING, m->state) < 0)
                        return log_oom();
        }
        r = table_print(t, stdout);
        if (r < 0)
                return log_oom();
        if (arg.json == JSON_OFF && arg.legend) {
                if (table_rows(t) == 0)
                        printf("No machines.\n");
                else
                        printf("\n%zu machine%s listed.\n", table_rows(t), table_rows(t) == 1 ? "" : "s");
        }
        return 0;
}

static void print_cmdline(pid_t pid, char *buf, size_t n) {
        char path[64];
        _cleanup_close_ int fd = -EBADF;
        ssize_t k;

        snprintf(path, sizeof path, "/proc/%d/cmdline", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        k = fd >= 0 ? read(fd, buf, n - 1) : -1;
        if (k <= 0) {
                snprintf(path, sizeof path, "/proc/%d/comm", (int) pid);
                _cleanup_free_ char *comm = NULL;
                if (read_one_line_file(path, &comm) >= 0)
                        snprintf(buf, n, "[%s]", comm);
                else
                        snprintf(buf, n, "?");
                return;
        }
        buf[k] = 0;
        for (ssize_t i = 0; i < k; i++)
                if (buf[i] == 0 || buf[i] == '\n')
                        buf[i] = ' ';
                else if ((unsigned char) buf[i] < 0x20)
                        buf[i] = '?';
        while (k > 0 && buf[k - 1] == ' ')
                buf[--k] = 0;
}

/* The cgroup tree below DIR, with its processes, like systemd-cgls. */
static void print_cgroup_tree(int dfd, const char *prefix, unsigned depth) {
        _cleanup_free_ char *procs = NULL;
        _cleanup_strv_free_ char **pids = NULL, **subs = NULL;
        _cleanup_close_ int pfd = -EBADF;
        DIR *d;
        struct dirent *de;
        char buf[256], path[64];

        if (depth > 16)
                return;
        pfd = openat(dfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
        if (pfd >= 0) {
                snprintf(path, sizeof path, "/proc/self/fd/%d", pfd);
                if (read_full_file(path, &procs, NULL) >= 0)
                        (void) strv_split(procs, "\n", &pids);
        }
        int dup_fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
        if (dup_fd >= 0 && (d = fdopendir(dup_fd))) {
                while ((de = readdir(d)))
                        if (de->d_type == DT_DIR && de->d_name[0] != '.')
                                (void) strv_extend(&subs, de->d_name);
                closedir(d);
        } else
                safe_close(dup_fd);

        size_t n_p = 0, n_s = strv_length(subs), total, i = 0;
        STRV_FOREACH(p, pids)
                if (!isempty(*p))
                        n_p++;
        total = n_p + n_s;
        STRV_FOREACH(p, pids) {
                pid_t pid;
                if (isempty(*p) || parse_pid(*p, &pid) < 0)
                        continue;
                print_cmdline(pid, buf, sizeof buf);
                i++;
                printf("%s%s%d %s\n", prefix, i == total ? "└─" : "├─", (int) pid, buf);
        }
        STRV_FOREACH(s, subs) {
                _cleanup_close_ int sfd = openat(dfd, *s, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                _cleanup_free_ char *np = NULL;
                i++;
                printf("%s%s%s\n", prefix, i == total ? "└─" : "├─", *s);
                np = strjoin(prefix, i == total ? "  " : "│ ");
                if (sfd >= 0 && np)
                        print_cgroup_tree(sfd, np, depth + 1);
        }
}

/* The last lines of the guest's persistent journal, if it keeps one. Quiet if none. */
static void print_journal(const MachineInfo *m, unsigned lines) {
        _cleanup_close_ int root = -EBADF, dfd = -EBADF;
        sd_journal *j = NULL;
        int r;

        if (machine_open_root(m, &root) < 0)
                return;
        dfd = open_in_root(root, "var/log/journal", O_RDONLY | O_DIRECTORY);
        if (dfd < 0)
                return;
        r = sd_journal_open_directory_fd(&j, dfd, 0);
        if (r < 0)
                return;
        if (sd_journal_seek_tail(j) >= 0 && sd_journal_previous_skip(j, lines) > 0) {
                bool first = true;
                while (sd_journal_next(j) > 0) {
                        const void *d;
                        size_t l;
                        uint64_t usec = 0;
                        char ts[64] = "", ident[64] = "?", msg[512] = "";
                        time_t t;
                        struct tm tm;

                        (void) sd_journal_get_realtime_usec(j, &usec);
                        t = (time_t) (usec / USEC_PER_SEC);
                        if (localtime_r(&t, &tm))
                                strftime(ts, sizeof ts, "%b %d %H:%M:%S", &tm);
                        if (sd_journal_get_data(j, "SYSLOG_IDENTIFIER", &d, &l) >= 0)
                                snprintf(ident, sizeof ident, "%.*s", (int) MIN(l - 18, sizeof ident - 1), (const char *) d + 18);
                        if (sd_journal_get_data(j, "MESSAGE", &d, &l) >= 0)
                                snprintf(msg, sizeof msg, "%.*s", (int) MIN(l - 8, sizeof msg - 1), (const char *) d + 8);
                        for (char *c = msg; *c; c++)
                                if ((unsigned char) *c < 0x20)
                                        *c = ' ';
                        if (first)
                                printf("\n");
                        first = false;
                        printf("%s %s: %s\n", ts, ident, msg);
                }
        }
        sd_journal_close(j);
}

static int status_one(const char *name, unsigned *n_printed) {
        _cleanup_(machine_info_freep) MachineInfo *m = NULL;
        _cleanup_(fields_freep) Fields *f = NULL;
        _cleanup_strv_free_ char **addrs = NULL;
        char leader[320], since[160], ts[64], span[64], comm[256];
        bool host = false;
        int r;

        r = machine_get_logged(name, &m);
        if (r < 0)
                return r;
        machine_read_os_release(m);
        (void) machine_addresses(m, &host, &addrs);

        f = fields_new();
        if (!f)
                return log_oom();
        if (m->since > 0) {
                uint64_t now = now_usec(CLOCK_REALTIME);
                snprintf(since, sizeof since, "%s; %s ago", format_timestamp(m->since, ts, sizeof ts),
                         format_timespan(now > m->since ? now - m->since : 0, span, sizeof span));
        } else
                snprintf(since, sizeof since, "n/a");
        if (m->leader > 0) {
                print_cmdline(m->leader, comm, sizeof comm);
                snprintf(leader, sizeof leader, "%d (%s)", (int) m->leader, comm);
        } else
                snprintf(leader, sizeof leader, "n/a");

        if (fields_add(f, "Name", CELL_STRING, m->name) < 0 ||
            fields_add(f, "State", CELL_STRING, m->state) < 0 ||
            fields_add(f, "Since", CELL_STRING, since) < 0 ||
            fields_add(f, "Leader", CELL_STRING, leader) < 0 ||
            fields_add(f, "Monitor", CELL_INT, (long long) m->monitor) < 0 ||
            fields_add(f, "Class", CELL_STRING, m->class) < 0 ||
            fields_add(f, "Service", CELL_STRING, m->service) < 0 ||
            fields_add(f, "Root", CELL_STRING, m->root) < 0 ||
            fields_add(f, "Unit", CELL_STRING, m->unit) < 0 ||
            fields_add(f, "OS", CELL_STRING, m->pretty_os ?: m->os) < 0 ||
            fields_add(f, "Addresses", CELL_STRV, host || strv_isempty(addrs) ? NULL : addrs) < 0 ||
            fields_add(f, "Network", CELL_STRING, host ? "host" : "private") < 0 ||
            fields_add(f, "Console", CELL_STRING, m->console) < 0)
                return log_oom();

        bool first = (*n_printed)++ == 0;
        if (arg.json != JSON_OFF) {
                if (!first)
                        fputs(",", stdout);
                return fields_print(f, stdout, false);
        }
        if (!first)
                printf("\n");
        printf("%s%s%s\n", m->name, m->uuid ? " - " : "", strempty(m->uuid));
        r = fields_print(f, stdout, false);
        if (r < 0)
                return log_oom();
        const char *cg = machine_unified_cgroup(m);
        if (cg) {
                _cleanup_close_ int dfd = open(cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                printf("%*s: %s\n", 9, "CGroup", cg);
                if (dfd >= 0)
                        print_cgroup_tree(dfd, "           ", 0);
        }
        print_journal(m, 10);
        return 0;
}

int verb_status(int argc, char *argv[]) {
        int r, ret = 0;
        bool array = arg.json != JSON_OFF && argc > 2;
        unsigned n_printed = 0;

        if (array)
                fputs("[", stdout);
        for (int i = 1; i < argc; i++) {
                r = status_one(argv[i], &n_printed);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        if (array)
                fputs("]\n", stdout);
        return ret;
}

static int show_one(MachineInfo *m, bool first) {
        _cleanup_(fields_freep) Fields *f = NULL;
        MachineRecord *rec = m->record;
        char sig[16], sig2[16], caps[32];
        _cleanup_strv_free_ char **addrs = NULL;
        bool host;

        machine_read_os_release(m);
        (void) machine_addresses(m, &host, &addrs);
        f = fields_new();
        if (!f)
                return log_oom();
        snprintf(caps, sizeof caps, "%llx", rec->capabilities);
        if (fields_add(f, "Name", CELL_STRING, m->name) < 0 ||
            fields_add(f, "Id", CELL_STRING, m->uuid) < 0 ||
            fields_add(f, "Class", CELL_STRING, m->class) < 0 ||
            fields_add(f, "Service", CELL_STRING, m->service) < 0 ||
            fields_add(f, "Unit", CELL_STRING, m->unit) < 0 ||
            fields_add(f, "Leader", CELL_UINT, (unsigned long long) m->leader) < 0 ||
            fields_add(f, "Monitor", CELL_UINT, (unsigned long long) m->monitor) < 0 ||
            fields_add(f, "RootDirectory", CELL_STRING, m->root) < 0 ||
            fields_add(f, "State", CELL_STRING, m->state) < 0 ||
            fields_add(f, "Timestamp", CELL_TIMESTAMP, (unsigned long long) m->since) < 0 ||
            fields_add(f, "OS", CELL_STRING, m->os) < 0 ||
            fields_add(f, "Version", CELL_STRING, m->version) < 0 ||
            fields_add(f, "Addresses", CELL_STRV, strv_isempty(addrs) ? NULL : addrs) < 0 ||
            fields_add(f, "CGroup", CELL_STRING, rec->cgroup) < 0 ||
            fields_add(f, "CGroupPaths", CELL_STRV, rec->cgroup_paths) < 0 ||
            fields_add(f, "Console", CELL_STRING, m->console) < 0 ||
            fields_add(f, "PoweroffSignal", CELL_STRING,
                       rec->poweroff_signal > 0 ? signal_to_string(rec->poweroff_signal, sig) : NULL) < 0 ||
            fields_add(f, "RebootSignal", CELL_STRING,
                       rec->reboot_signal > 0 ? signal_to_string(rec->reboot_signal, sig2) : NULL) < 0 ||
            fields_add(f, "Capabilities", CELL_STRING, caps) < 0 ||
            fields_add(f, "NoNewPrivileges", CELL_BOOL, rec->no_new_privileges) < 0 ||
            fields_add(f, "SystemCallAllow", CELL_STRV, rec->syscall_allow) < 0 ||
            fields_add(f, "SystemCallDeny", CELL_STRV, rec->syscall_deny) < 0)
                return log_oom();
        if (!first)
                fputs(arg.json != JSON_OFF ? "," : "\n", stdout);
        return fields_print(f, stdout, true);
}

int verb_show(int argc, char *argv[]) {
        _cleanup_strv_free_ char **names = NULL;
        int r, ret = 0;
        bool first = true, array;

        if (argc > 1) {
                names = strv_copy(argv + 1);
                if (!names)
                        return log_oom();
        } else {
                r = machine_list(&names);
                if (r < 0)
                        return log_error_errno(r, "Failed to list machines: %m");
        }
        array = arg.json != JSON_OFF && (argc != 2);
        if (array)
                fputs("[", stdout);
        STRV_FOREACH(n, names) {
                _cleanup_(machine_info_freep) MachineInfo *m = NULL;
                r = argc > 1 ? machine_get_logged(*n, &m) : machine_get(*n, &m);
                if (r < 0) {
                        if (argc > 1 && ret == 0)
                                ret = r;
                        continue;
                }
                r = show_one(m, first);
                first = false;
                if (r < 0 && ret == 0)
                        ret = r;
        }
        if (array)
                fputs("]\n", stdout);
        return ret;
}

/* ---------------------------------------------------------------------------------------------------- */
/* poweroff, reboot, terminate, kill                                                                    */
/* ---------------------------------------------------------------------------------------------------- */

/* Waits until the machine's berth is gone (its lock free). */
static int wait_gone(const char *name, uint64_t timeout) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + timeout;

        while (registry_is_live(name) > 0) {
                if (now_usec(CLOCK_MONOTONIC) >= deadline)
                        return -ETIMEDOUT;
                (void) usleep(POLL_USEC / 2);
        }
        return 0;
}

int verb_poweroff(int argc, char *argv[]) {
        bool reboot = streq(argv[0], "reboot");
        int r, ret = 0;

        for (int i = 1; i < argc; i++) {
                _cleanup_(machine_info_freep) MachineInfo *m = NULL;
                _cleanup_close_ int pidfd = -EBADF;
                char buf[16];
                int sig;

                r = machine_get_logged(argv[i], &m);
                if (r >= 0) {
                        sig = reboot ? m->record->reboot_signal : m->record->poweroff_signal;
                        if (sig <= 0)
                                r = log_error_errno(-EOPNOTSUPP,
                                                    reboot ? "Cannot reboot machine '%s': it runs a command, not a booted init "
                                                             "(no reboot signal in its record). Use 'berthctl terminate'."
                                                           : "Cannot power off machine '%s': its payload has no poweroff signal. "
                                                             "Use 'berthctl terminate'.",
                                                    m->name);
                }
                if (r >= 0)
                        r = machine_open_leader(m, &pidfd);
                if (r >= 0 && pidfd_send_signal_(pidfd, sig) < 0)
                        r = log_error_errno(negative_errno(), "Failed to send %s to machine '%s': %m",
                                            signal_to_string(sig, buf), m->name);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        return ret;
}

int verb_terminate(int argc, char *argv[]) {
        uint64_t timeout = arg.timeout_usec ?: DEFAULT_WAIT_USEC;
        int r, ret = 0;

        for (int i = 1; i < argc; i++) {
                _cleanup_(machine_info_freep) MachineInfo *m = NULL;
                _cleanup_close_ int pidfd = -EBADF;

                r = machine_get_logged(argv[i], &m);
                if (r >= 0)
                        r = machine_open_leader(m, &pidfd);
                if (r >= 0 && pidfd_send_signal_(pidfd, SIGKILL) < 0 && errno != ESRCH)
                        r = log_error_errno(negative_errno(), "Failed to kill machine '%s': %m", m->name);
                if (r >= 0) {
                        r = wait_gone(m->name, timeout);
                        if (r < 0)
                                log_error_errno(r, "Machine '%s' was killed, but its berth (PID %d) did not exit in time.",
                                                m->name, (int) m->monitor);
                }
                if (r < 0 && ret == 0)
                        ret = r;
        }
        return ret;
}

/* Signals every process in the cgroup DFD and below. Returns the number signalled. */
static int kill_cgroup(int dfd, int sig, unsigned depth) {
        _cleanup_free_ char *procs = NULL;
        _cleanup_strv_free_ char **pids = NULL;
        _cleanup_close_ int pfd = -EBADF;
        char path[64];
        DIR *d;
        struct dirent *de;
        int n = 0;

        if (depth > 64)
                return 0;
        pfd = openat(dfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
        if (pfd >= 0) {
                snprintf(path, sizeof path, "/proc/self/fd/%d", pfd);
                if (read_full_file(path, &procs, NULL) >= 0)
                        (void) strv_split(procs, "\n", &pids);
        }
        STRV_FOREACH(p, pids) {
                pid_t pid;
                if (parse_pid(*p, &pid) >= 0 && kill(pid, sig) >= 0)
                        n++;
        }
        int dup_fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
        if (dup_fd < 0)
                return n;
        d = fdopendir(dup_fd);
        if (!d) {
                safe_close(dup_fd);
                return n;
        }
        while ((de = readdir(d))) {
                if (de->d_type != DT_DIR || de->d_name[0] == '.')
                        continue;
                _cleanup_close_ int sfd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                if (sfd >= 0)
                        n += kill_cgroup(sfd, sig, depth + 1);
        }
        closedir(d);
        return n;
}

int verb_kill(int argc, char *argv[]) {
        int sig = arg.signal ?: SIGTERM, r, ret = 0;
        bool all = !arg.kill_whom || streq(arg.kill_whom, "all");
        char buf[16];

        for (int i = 1; i < argc; i++) {
                _cleanup_(machine_info_freep) MachineInfo *m = NULL;
                _cleanup_close_ int pidfd = -EBADF;

                r = machine_get_logged(argv[i], &m);
                if (r >= 0)
                        r = machine_open_leader(m, &pidfd);
                if (r >= 0 && !all && pidfd_send_signal_(pidfd, sig) < 0)
                        r = log_error_errno(negative_errno(), "Failed to send %s to the leader of machine '%s': %m",
                                            signal_to_string(sig, buf), m->name);
                if (r >= 0 && all) {
                        const char *cg = machine_unified_cgroup(m);
                        _cleanup_close_ int dfd = -EBADF;

                        /* the cgroup cannot be reused while the berth holding the lock lives:
                         * checked in machine_open_leader() just now */
                        if (!cg && !strv_isempty(m->record->cgroup_paths))
                                cg = m->record->cgroup_paths[0];
                        if (cg)
                                dfd = open(cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        if (dfd < 0)
                                r = log_error_errno(dfd == -EBADF ? -ENOENT : negative_errno(),
                                                    "Failed to open the cgroup of machine '%s': %m", m->name);
                        else if (kill_cgroup(dfd, sig, 0) == 0)
                                r = log_error_errno(-ESRCH, "No process of machine '%s' could be signalled.", m->name);
                }
                if (r < 0 && ret == 0)
                        ret = r;
        }
        return ret;
}

/* ---------------------------------------------------------------------------------------------------- */
/* wait                                                                                                 */
/* ---------------------------------------------------------------------------------------------------- */

static bool state_reached(const char *state, const char *until) {
        if (!state)
                return false;
        if (streq(until, "ready"))
                return streq(state, "ready");
        return streq(state, "running") || streq(state, "ready");
}

int verb_wait(int argc, char *argv[]) {
        const char *until = arg.until ?: "running";
        uint64_t timeout = arg.timeout_usec ?: DEFAULT_WAIT_USEC;
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + timeout;
        char span[64];

        for (int i = 1; i < argc; i++)
                if (!machine_name_is_valid(argv[i]))
                        return log_error_errno(-EINVAL, "Invalid machine name '%s'.", argv[i]);

        for (int i = 1; i < argc; i++) {
                bool seen = false;

                for (;;) {
                        _cleanup_(machine_info_freep) MachineInfo *m = NULL;
                        int r = machine_get(argv[i], &m);

                        if (r >= 0) {
                                seen = true;
                                if (state_reached(m->state, until))
                                        break;
                                if (m->state && streq(m->state, "stopping"))
                                        return log_error_errno(-ESRCH, "Machine '%s' is stopping.", argv[i]);
                        } else if (r == -ENXIO) {
                                if (seen)
                                        return log_error_errno(-ESRCH, "Machine '%s' stopped before it was %s.",
                                                               argv[i], until);
                        } else
                                return log_error_errno(r, "Failed to read the record of machine '%s': %m", argv[i]);
                        if (now_usec(CLOCK_MONOTONIC) >= deadline)
                                return log_error_errno(-ETIMEDOUT, "Machine '%s' %s not %s after %s.", argv[i],
                                                       seen ? "was" : "did not appear, and was",
                                                       until, format_timespan(timeout, span, sizeof span));
                        (void) usleep(POLL_USEC);
                }
        }
        return 0;
}

/* ---------------------------------------------------------------------------------------------------- */
/* start, enable, disable                                                                               */
/* ---------------------------------------------------------------------------------------------------- */

/* Where images are looked for: $BERTH_IMAGE_PATH (colon-separated, for tests and unusual setups), else
 * machinectl's places. */
static int image_search_path(char ***ret) {
        const char *e = getenv("BERTH_IMAGE_PATH");

        if (!isempty(e))
                return strv_split(e, ":", ret);
        return strv_split("/var/lib/machines:/usr/local/lib/machines:/usr/lib/machines", ":", ret);
}

/* The directory of image NAME. -ENOENT: none; -EMEDIUMTYPE: only a raw image. Logs. */
static int image_find_directory(const char *name, char **ret) {
        _cleanup_strv_free_ char **dirs = NULL;
        int r;

        r = image_search_path(&dirs);
        if (r < 0)
                return log_oom();
        STRV_FOREACH(d, dirs) {
                _cleanup_free_ char *p = NULL, *raw = NULL;
                struct stat st;

                if (isempty(*d))
                        continue;
                p = path_join(*d, name);
                raw = strjoin(*d, "/", name, ".raw");
                if (!p || !raw)
                        return log_oom();
                if (stat(p, &st) >= 0 && S_ISDIR(st.st_mode)) {
                        *ret = TAKE_PTR(p);
                        return 0;
                }
                if (stat(raw, &st) >= 0 && S_ISREG(st.st_mode))
                        return log_error_errno(-EMEDIUMTYPE, "Cannot start '%s': it is a raw disk image (%s), which berth "
                                                             "cannot boot yet. Import it as a directory tree.", name, raw);
        }
        return log_error_errno(-ENOENT, "No image '%s' in %s.", name,
                               getenv("BERTH_IMAGE_PATH") ? "$BERTH_IMAGE_PATH"
                                                          : "/var/lib/machines, /usr/local/lib/machines or /usr/lib/machines");
}

/* berth next to us (a build tree, or the same bin dir), else from $PATH. */
static int find_berth(char **ret) {
        _cleanup_free_ char *self = NULL;
        char buf[PATH_MAX];
        ssize_t k;

        k = readlink("/proc/self/exe", buf, sizeof buf - 1);
        if (k > 0) {
                buf[k] = 0;
                char *slash = strrchr(buf, '/');
                if (slash) {
                        *slash = 0;
                        self = strjoin(buf, "/berth");
                        if (!self)
                                return -ENOMEM;
                        if (access(self, X_OK) >= 0) {
                                *ret = TAKE_PTR(self);
                                return 0;
                        }
                }
        }
        const char *path = getenv("PATH") ?: CONTAINER_PATH;
        _cleanup_strv_free_ char **l = NULL;
        if (strv_split(path, ":", &l) < 0)
                return -ENOMEM;
        STRV_FOREACH(d, l) {
                _cleanup_free_ char *p = path_join(*d, "berth");
                if (!p)
                        return -ENOMEM;
                if (path_is_absolute(p) && access(p, X_OK) >= 0) {
                        *ret = TAKE_PTR(p);
                        return 0;
                }
        }
        return -ENOENT;
}

static void log_last_line(const char *logfile) {
        _cleanup_free_ char *data = NULL;
        char *end, *start;

        if (read_full_file(logfile, &data, NULL) < 0)
                return;
        end = data + strlen(data);
        while (end > data && end[-1] == '\n')
                *--end = 0;
        start = strrchr(data, '\n');
        start = start ? start + 1 : data;
        if (!isempty(start))
                log_error("berth said: %s", start);
}

static int start_one(const char *name, const char *berth_path) {
        _cleanup_free_ char *dir = NULL, *logdir = NULL, *logfile = NULL;
        uint64_t timeout = arg.timeout_usec ?: DEFAULT_WAIT_USEC, deadline;
        pid_t pid;
        int r, status;

        if (!machine_name_is_valid(name))
                return log_error_errno(-EINVAL, "Invalid machine name '%s'.", name);
        if (registry_is_live(name) > 0)
                return log_error_errno(-EEXIST, "Machine '%s' is already running.", name);
        r = image_find_directory(name, &dir);
        if (r < 0)
                return r;

        logdir = strjoin(registry_run_dir(), "/logs");
        logfile = strjoin(registry_run_dir(), "/logs/", name, ".log");
        if (!logdir || !logfile)
                return log_oom();
        r = mkdir_p(logdir, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to create '%s': %m", logdir);

        pid = fork();
        if (pid < 0)
                return log_error_errno(negative_errno(), "Failed to fork: %m");
        if (pid == 0) {
                /* berth, detached: its own session, no terminal, its output in the log */
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                int lf = open(logfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
                if (null < 0 || lf < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(lf, STDOUT_FILENO) < 0 ||
                    dup2(lf, STDERR_FILENO) < 0)
                        _exit(EXIT_FAILURE);
                (void) setsid();
                sigset_t none;
                sigemptyset(&none);
                (void) sigprocmask(SIG_SETMASK, &none, NULL);
                execl(berth_path, berth_path, "-D", dir, "-M", name, "-b", "--console=passive", "-q", (char *) NULL);
                dprintf(STDERR_FILENO, "Failed to execute '%s': %s\n", berth_path, strerror(errno));
                _exit(EXIT_FAILURE);
        }

        deadline = now_usec(CLOCK_MONOTONIC) + timeout;
        for (;;) {
                _cleanup_(machine_info_freep) MachineInfo *m = NULL;
                pid_t k = waitpid(pid, &status, WNOHANG);

                if (k == pid) {
                        log_error("Machine '%s' failed to start: berth exited with status %d (log: %s).", name,
                                  WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), logfile);
                        log_last_line(logfile);
                        return -ESRCH;
                }
                if (machine_get(name, &m) >= 0 && m->monitor == pid && state_reached(m->state, "running"))
                        break;
                if (now_usec(CLOCK_MONOTONIC) >= deadline) {
                        char span[64];
                        return log_error_errno(-ETIMEDOUT, "Machine '%s' is not running after %s, leaving it (log: %s).",
                                               name, format_timespan(timeout, span, sizeof span), logfile);
                }
                (void) usleep(POLL_USEC);
        }
        if (!arg.quiet)
                log_info("Started machine '%s' from %s (berth PID %d, log: %s).", name, dir, (int) pid, logfile);
        return 0;
}

int verb_start(int argc, char *argv[]) {
        _cleanup_free_ char *berth_path = NULL;
        int r, ret = 0;

        r = find_berth(&berth_path);
        if (r < 0)
                return log_error_errno(r, "Failed to find the berth binary next to berthctl or in $PATH: %m");
        for (int i = 1; i < argc; i++) {
                r = start_one(argv[i], berth_path);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        return ret;
}

int verb_enable(int argc, char *argv[]) {
        bool enable = streq(argv[0], "enable");
        _cleanup_strv_free_ char **args = NULL;
        pid_t pid;
        int status;

        if (access("/run/systemd/system", F_OK) < 0)
                return log_error_errno(-EOPNOTSUPP,
                                       "Cannot %s machines: starting them at boot needs systemd (systemctl %s berth@NAME.service), "
                                       "and this system does not run systemd.",
                                       argv[0], argv[0]);
        if (strv_extend(&args, "systemctl") < 0 || strv_extend(&args, argv[0]) < 0)
                return log_oom();
        for (int i = 1; i < argc; i++) {
                _cleanup_free_ char *unit = NULL;
                if (!machine_name_is_valid(argv[i]))
                        return log_error_errno(-EINVAL, "Invalid machine name '%s'.", argv[i]);
                unit = strjoin("berth@", argv[i], ".service");
                if (!unit || strv_consume(&args, TAKE_PTR(unit)) < 0)
                        return log_oom();
        }
        pid = fork();
        if (pid < 0)
                return log_error_errno(negative_errno(), "Failed to fork: %m");
        if (pid == 0) {
                execvp("systemctl", args);
                dprintf(STDERR_FILENO, "berthctl: Failed to execute systemctl: %s\n", strerror(errno));
                _exit(EXIT_FAILURE);
        }
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return log_error_errno(-EIO, "systemctl %s failed.", enable ? "enable" : "disable");
        return 0;
}

/* ---------------------------------------------------------------------------------------------------- */
/* exec, shell, login: a command in the machine's namespaces, without D-Bus in the guest                */
/* ---------------------------------------------------------------------------------------------------- */

/*
 * Process model:
 *
 *   berthctl (host namespaces)
 *    └─ outer child: opens the machine's cgroup.procs files, then setns() into the machine's
 *       namespaces but the cgroup one, through a pidfd of its leader (atomically, so that a leader
 *       that dies meanwhile cannot make us join half of them). Its own PID namespace does not
 *       change with setns(), so it stays a host process (and in our cgroup): it forwards signals to
 *       the command and passes on its exit status.
 *        └─ inner child: in the machine's PID namespace. Joins the machine's cgroup and then its
 *           cgroup namespace, opens a pty in the machine's devpts if asked, applies the container's
 *           confinement (capabilities, no_new_privs, seccomp, the user) and executes the command.
 *
 * Trust boundary: after setns() everything the inner child sees is the guest's (its /dev/pts, its
 * PATH lookup, its binaries); the confinement is applied before anything of the guest runs, and the
 * host terminal is never the command's controlling terminal (a session of its own, and the
 * container's seccomp filter that blocks TIOCSTI).
 */

typedef struct ExecRequest {
        const MachineInfo *m;
        char **argv;        /* the command */
        const char *file;   /* what to execute: NULL: argv[0], looked up in the guest's PATH */
        char **env;
        uid_t uid;
        gid_t gid;
        gid_t groups[64];
        size_t n_groups;
        const char *home;   /* working directory, NULL: / */
        bool pty;
} ExecRequest;

typedef enum ExecMessageType {
        EXEC_MSG_MASTER,      /* the pty master (fd attached) */
        EXEC_MSG_FAILED,      /* setup failed; the child logged why */
        EXEC_MSG_EXEC_FAILED, /* execve() failed: error */
} ExecMessageType;

typedef struct ExecMessage {
        int type;
        int error;
} ExecMessage;

static int send_message(int sock, int type, int error, int fd) {
        ExecMessage msg = { .type = type, .error = error };
        struct iovec iov = { .iov_base = &msg, .iov_len = sizeof msg };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (fd >= 0) {
                mh.msg_control = &control;
                mh.msg_controllen = sizeof control;
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &fd, sizeof(int));
        }
        return sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 ? negative_errno() : 0;
}

/* 0 on EOF, 1 with a message. */
static int recv_message(int sock, ExecMessage *ret, int *ret_fd) {
        struct iovec iov = { .iov_base = ret, .iov_len = sizeof *ret };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof control };
        ssize_t k;

        *ret_fd = -EBADF;
        do
                k = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return negative_errno();
        if (k == 0)
                return 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                        memcpy(ret_fd, CMSG_DATA(c), sizeof(int));
        if ((size_t) k != sizeof *ret) {
                *ret_fd = safe_close(*ret_fd);
                return -EBADMSG;
        }
        return 1;
}

static volatile pid_t forward_to = 0;

static void forward_signal(int sig) {
        if (forward_to > 0)
                (void) kill(forward_to, sig);
}

static const int forwarded_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };

static void install_forwarding(void) {
        struct sigaction sa = { .sa_handler = forward_signal, .sa_flags = SA_RESTART };
        sigset_t ss;

        sigemptyset(&ss);
        for (size_t i = 0; i < ELEMENTSOF(forwarded_signals); i++) {
                (void) sigaction(forwarded_signals[i], &sa, NULL);
                sigaddset(&ss, forwarded_signals[i]);
        }
        (void) sigprocmask(SIG_UNBLOCK, &ss, NULL);
}

/* The machine's cgroups, opened on the host before any setns(): the inner child joins them by
 * writing "0" (itself) to these fds, so that only the command and what it starts are in the
 * machine's cgroup, never the outer child (a host process the guest could not make sense of). */
typedef struct CGroupJoin {
        int fd[16];        /* cgroup.procs to write to */
        int fallback[16];  /* where to go if that fails, or -EBADF */
        bool required[16]; /* the unified one must work */
        size_t n;
} CGroupJoin;

static void cgroup_join_done(CGroupJoin *j) {
        for (size_t i = 0; i < j->n; i++) {
                safe_close(j->fd[i]);
                safe_close(j->fallback[i]);
        }
        j->n = 0;
}

/* In the unified hierarchy the leader's own cgroup: for a systemd guest that is init.scope, a
 * leaf; the container cgroup itself has controllers enabled and must stay free of processes. */
static char *leader_unified_cgroup(const MachineInfo *m, const char *unified) {
        _cleanup_free_ char *cg = NULL;
        const char *v = NULL, *idx_p, *idx_v;
        char path[64];

        snprintf(path, sizeof path, "/proc/%d/cgroup", (int) m->leader);
        if (read_full_file(path, &cg, NULL) < 0)
                return NULL;
        for (char *l = cg; l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
                if (startswith(l, "0::")) {
                        char *e = strchr(l, '\n');
                        if (e)
                                *e = 0;
                        v = l + 3;
                        break;
                }
        idx_p = m->record->cgroup ? strstr(unified, m->record->cgroup) : NULL;
        idx_v = v && m->record->cgroup ? strstr(v, m->record->cgroup) : NULL;
        /* UNIFIED is MOUNT + the beginning of V, and the leader's cgroup is below it */
        if (!idx_p || !idx_v || (size_t) (idx_p - unified) < (size_t) (idx_v - v) || !startswith(idx_v, idx_p) ||
            strstr(v, "/.."))
                return NULL;
        _cleanup_free_ char *mount = strndup(unified, (size_t) (idx_p - unified) - (size_t) (idx_v - v));
        return mount ? strjoin(mount, v) : NULL;
}

static int cgroup_join_open(const MachineInfo *m, CGroupJoin *j) {
        const char *unified = machine_unified_cgroup(m);

        STRV_FOREACH(p, m->record->cgroup_paths) {
                _cleanup_free_ char *procs = NULL, *leader = NULL, *lprocs = NULL;
                bool is_unified = unified && streq(*p, unified);
                int fd, fb = -EBADF;

                if (j->n >= ELEMENTSOF(j->fd))
                        break;
                procs = strjoin(*p, "/cgroup.procs");
                if (!procs)
                        return log_oom();
                fd = open(procs, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
                if (fd < 0) {
                        if (is_unified)
                                return log_error_errno(negative_errno(), "Failed to open the cgroup of machine '%s' (%s): %m",
                                                       m->name, *p);
                        log_debug_errno(negative_errno(), "Failed to open '%s', ignoring: %m", procs);
                        continue;
                }
                if (is_unified && (leader = leader_unified_cgroup(m, unified)) && !streq(leader, *p) &&
                    (lprocs = strjoin(leader, "/cgroup.procs"))) {
                        fb = fd;
                        fd = open(lprocs, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
                        if (fd < 0) {
                                fd = fb;
                                fb = -EBADF;
                        }
                }
                j->fd[j->n] = fd;
                j->fallback[j->n] = fb;
                j->required[j->n] = is_unified;
                j->n++;
        }
        return 0;
}

/* In the inner child: join, then forget the fds. Logs. */
static int cgroup_join(CGroupJoin *j, const char *machine) {
        int r = 0;

        for (size_t i = 0; i < j->n; i++) {
                int q = write_string_fd(j->fd[i], "0");
                if (q < 0 && j->fallback[i] >= 0)
                        q = write_string_fd(j->fallback[i], "0");
                if (q < 0 && j->required[i] && r == 0)
                        r = log_error_errno(q, "Failed to join the cgroup of machine '%s': %m", machine);
                else if (q < 0)
                        log_debug_errno(q, "Failed to join a v1 cgroup of machine '%s', ignoring: %m", machine);
        }
        cgroup_join_done(j);
        return r;
}

static int namespace_flags(pid_t leader) {
        static const struct {
                const char *name;
                int flag;
        } table[] = {
                { "user", CLONE_NEWUSER }, { "mnt", CLONE_NEWNS },  { "pid", CLONE_NEWPID },
                { "uts", CLONE_NEWUTS },   { "ipc", CLONE_NEWIPC }, { "net", CLONE_NEWNET },
                { "cgroup", CLONE_NEWCGROUP },
        };
        int flags = 0;

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (!same_namespace(leader, table[i].name))
                        flags |= table[i].flag;
        /* the mount namespace always: it also moves our root into the container */
        return flags | CLONE_NEWNS;
}

/* The inner child: in all of the machine's namespaces. Never returns. */
_noreturn_ static void exec_inner_child(const ExecRequest *req, CGroupJoin *cg, int pidfd, bool cgroup_ns, int sock) {
        const MachineRecord *rec = req->m->record;
        Settings s = { .syscall_allow = rec->syscall_allow, .syscall_deny = rec->syscall_deny };
        sigset_t none;
        int r;

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (size_t i = 0; i < ELEMENTSOF(forwarded_signals); i++)
                (void) signal(forwarded_signals[i], SIG_DFL);
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);

        /* the cgroup first, while our cgroup namespace is still the host's, then its namespace */
        r = cgroup_join(cg, req->m->name);
        if (r < 0)
                goto fail;
        if (cgroup_ns && setns(pidfd, CLONE_NEWCGROUP) < 0) {
                r = log_error_errno(negative_errno(), "Failed to join the cgroup namespace of machine '%s': %m",
                                    req->m->name);
                goto fail;
        }

        /* not the host terminal's session: it must not become our controlling terminal */
        if (setsid() < 0) {
                r = log_error_errno(negative_errno(), "Failed to start a session: %m");
                goto fail;
        }
        if (req->pty) {
                _cleanup_close_ int master = -EBADF, slave = -EBADF;
                int unlock = 0;

                master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC | O_NOFOLLOW);
                if (master < 0) {
                        r = log_error_errno(negative_errno(), "Failed to open /dev/pts/ptmx in machine '%s': %m",
                                            req->m->name);
                        goto fail;
                }
                if (ioctl(master, TIOCSPTLCK, &unlock) < 0 ||
                    (slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0 ||
                    ioctl(slave, TIOCSCTTY, 0) < 0) {
                        r = log_error_errno(negative_errno(), "Failed to set up a pty in machine '%s': %m", req->m->name);
                        goto fail;
                }
                r = send_message(sock, EXEC_MSG_MASTER, 0, master);
                if (r < 0)
                        goto fail;
                for (int i = 0; i < 3; i++)
                        if (dup2(slave, i) < 0) {
                                r = negative_errno();
                                goto fail;
                        }
        }
        if (!req->home || chdir(req->home) < 0)
                (void) chdir("/");
        /* whatever fds berthctl was started with (a directory fd of the host would be a way out of
         * the container's root) stay outside; only the socket to berthctl is left, and it is O_CLOEXEC */
        r = close_all_fds((const int[]) { sock }, 1);
        if (r < 0) {
                log_error_errno(r, "Failed to close file descriptors: %m");
                goto fail;
        }

        if (rec->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
                r = log_error_errno(negative_errno(), "Failed to set no_new_privs: %m");
                goto fail;
        }
        /* the container's own order (berth-child.c): bounding set, then the filter */
        r = capability_apply(rec->capabilities);
        if (r < 0)
                goto fail;
        r = seccomp_apply(&s, rec->capabilities);
        if (r < 0)
                goto fail;
        if (req->uid != 0 || req->gid != 0) {
                if (setgroups(req->n_groups, req->groups) < 0 || setresgid(req->gid, req->gid, req->gid) < 0 ||
                    setresuid(req->uid, req->uid, req->uid) < 0) {
                        r = log_error_errno(negative_errno(), "Failed to change to UID %u: %m", (unsigned) req->uid);
                        goto fail;
                }
        }

        environ = req->env;
        if (req->file)
                execv(req->file, req->argv);
        else
                execvp(req->argv[0], req->argv);
        (void) send_message(sock, EXEC_MSG_EXEC_FAILED, negative_errno(), -EBADF);
        _exit(127);

fail:
        (void) send_message(sock, EXEC_MSG_FAILED, r, -EBADF);
        _exit(EXIT_FAILURE);
}

/* The outer child: host PID namespace, joins the rest. Never returns. */
_noreturn_ static void exec_outer_child(const ExecRequest *req, int pidfd, int sock) {
        CGroupJoin cg = {};
        int r, status, flags;
        pid_t pid;

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        install_forwarding();

        r = cgroup_join_open(req->m, &cg);
        if (r < 0)
                goto fail;
        flags = namespace_flags(req->m->leader);
        if (setns(pidfd, flags & ~CLONE_NEWCGROUP) < 0) {
                r = log_error_errno(negative_errno(), "Failed to join the namespaces of machine '%s': %m", req->m->name);
                goto fail;
        }
        pid = fork();
        if (pid < 0) {
                r = log_error_errno(negative_errno(), "Failed to fork in machine '%s': %m", req->m->name);
                goto fail;
        }
        if (pid == 0)
                exec_inner_child(req, &cg, pidfd, flags & CLONE_NEWCGROUP, sock);
        cgroup_join_done(&cg);
        forward_to = pid;
        safe_close(sock);
        safe_close(pidfd);
        /* don't keep the caller's terminal open longer than the command does */
        for (;;) {
                if (waitpid(pid, &status, 0) < 0) {
                        if (errno == EINTR)
                                continue;
                        _exit(EXIT_FAILURE);
                }
                break;
        }
        if (WIFEXITED(status))
                _exit(WEXITSTATUS(status));
        _exit(128 + WTERMSIG(status));

fail:
        (void) send_message(sock, EXEC_MSG_FAILED, r, -EBADF);
        _exit(EXIT_FAILURE);
}

typedef struct PtyLoop {
        sd_event *event;
        pid_t child;
        int status;
} PtyLoop;

static int on_exec_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
        PtyLoop *l = userdata;
        l->status = si->si_code == CLD_EXITED ? si->si_status : 128 + si->si_status;
        return sd_event_exit(l->event, 0);
}

static int on_exec_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        PtyLoop *l = userdata;
        (void) kill(l->child, (int) si->ssi_signo);
        return 0;
}

/* Forwards between our stdio and the pty until the outer child exits. Returns its status. */
static int pty_loop(pid_t child, int master) {
        _cleanup_(forwarder_freep) Forwarder *f = NULL;
        PtyLoop l = { .child = child, .status = EXIT_FAILURE };
        int r;

        r = sd_event_new(&l.event);
        if (r < 0)
                return log_error_errno(r, "Failed to create an event loop: %m");
        r = sd_event_add_child(l.event, NULL, child, WEXITED, on_exec_child, &l);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(forwarded_signals); i++)
                r = sd_event_add_signal(l.event, NULL, forwarded_signals[i], on_exec_signal, &l);
        if (r >= 0)
                r = forwarder_new(l.event, master, CONSOLE_INTERACTIVE, true, NULL, NULL, &f);
        if (r < 0) {
                (void) kill(child, SIGKILL);
                (void) waitpid(child, NULL, 0);
                sd_event_unref(l.event);
                return log_error_errno(r, "Failed to forward the pty: %m");
        }
        r = sd_event_loop(l.event);
        f = forwarder_free(f); /* prints what is left, restores the terminal */
        sd_event_unref(l.event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return l.status;
}

/* Runs REQ, returns the command's exit status as VERB_EXIT_STATUS() or a negative errno. */
static int exec_run(const ExecRequest *req) {
        _cleanup_close_pair_ int pair[2] = { -EBADF, -EBADF };
        _cleanup_close_ int pidfd = -EBADF, master = -EBADF;
        sigset_t ss, saved;
        int r, status, failed = 0;
        pid_t pid;

        r = machine_open_leader(req->m, &pidfd);
        if (r < 0)
                return r;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
                return log_error_errno(negative_errno(), "Failed to create a socket pair: %m");

        /* blocked before the fork: a signal that comes early is forwarded, not lost or fatal */
        sigemptyset(&ss);
        sigaddset(&ss, SIGCHLD);
        for (size_t i = 0; i < ELEMENTSOF(forwarded_signals); i++)
                sigaddset(&ss, forwarded_signals[i]);
        (void) sigprocmask(SIG_BLOCK, &ss, &saved);

        pid = fork();
        if (pid < 0)
                return log_error_errno(negative_errno(), "Failed to fork: %m");
        if (pid == 0) {
                pair[0] = safe_close(pair[0]);
                exec_outer_child(req, pidfd, pair[1]);
        }
        pair[1] = safe_close(pair[1]);

        /* until EOF: the command was executed (the socket is O_CLOEXEC) or setup failed */
        for (;;) {
                ExecMessage msg;
                int fd;

                r = recv_message(pair[0], &msg, &fd);
                if (r <= 0)
                        break;
                if (msg.type == EXEC_MSG_MASTER && fd >= 0 && master < 0)
                        master = fd;
                else if (msg.type == EXEC_MSG_EXEC_FAILED) {
                        errno = -msg.error;
                        failed = log_error_errno(msg.error, "Failed to execute '%s' in machine '%s': %m",
                                                 req->file ?: req->argv[0], req->m->name);
                        safe_close(fd);
                } else {
                        failed = msg.error < 0 ? msg.error : -EIO;
                        safe_close(fd);
                }
        }

        if (!failed && req->pty && master >= 0) {
                status = pty_loop(pid, TAKE_FD(master));
                (void) sigprocmask(SIG_SETMASK, &saved, NULL);
                return status < 0 ? status : VERB_EXIT_STATUS(status);
        }

        /* plain stdio: wait, forwarding signals to the outer child */
        forward_to = pid;
        install_forwarding();
        for (;;) {
                if (waitpid(pid, &status, 0) < 0) {
                        if (errno == EINTR)
                                continue;
                        status = -1;
                }
                break;
        }
        forward_to = 0;
        (void) sigprocmask(SIG_SETMASK, &saved, NULL);
        if (failed)
                return failed;
        if (status < 0)
                return log_error_errno(-ECHILD, "Lost the command in machine '%s'.", req->m->name);
        if (WIFEXITED(status))
                return VERB_EXIT_STATUS(WEXITSTATUS(status));
        return VERB_EXIT_STATUS(128 + WTERMSIG(status));
}

static bool want_pty(void) {
        if (arg.tty)
                return true;
        if (arg.no_tty)
                return false;
        return isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
}

static int build_env(char ***env, bool pty, const char *const *extra) {
        const char *term = getenv("TERM");

        if (strv_extend(env, "PATH=" CONTAINER_PATH) < 0 || strv_extend(env, "container=berth") < 0)
                return -ENOMEM;
        if (pty || !isempty(term)) {
                _cleanup_free_ char *t = strjoin("TERM=", isempty(term) ? "vt220" : term);
                if (!t || strv_extend(env, t) < 0)
                        return -ENOMEM;
        }
        for (const char *const *e = extra; e && *e; e++)
                if (strv_extend(env, *e) < 0)
                        return -ENOMEM;
        STRV_FOREACH(e, arg.setenv) {
                /* -E replaces what we set */
                size_t k = strcspn(*e, "=") + 1;
                for (char **o = *env; o && *o; o++)
                        if (strncmp(*o, *e, k) == 0) {
                                free(*o);
                                for (char **q = o; *q; q++)
                                        q[0] = q[1];
                                break;
                        }
                if (strv_extend(env, *e) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int verb_exec(int argc, char *argv[]) {
        _cleanup_(machine_info_freep) MachineInfo *m = NULL;
        _cleanup_strv_free_ char **env = NULL;
        ExecRequest req = {};
        int r;

        r = machine_get_logged(argv[1], &m);
        if (r < 0)
                return r;
        req.m = m;
        req.argv = argv + 2;
        req.pty = want_pty();
        if (build_env(&env, req.pty, NULL) < 0)
                return log_oom();
        req.env = env;
        return exec_run(&req);
}

/* A user of the guest, from its /etc/passwd (read through /proc/LEADER/root, in its root). */
typedef struct GuestUser {
        char *name, *home, *shell;
        uid_t uid;
        gid_t gid;
} GuestUser;

static void guest_user_done(GuestUser *u) {
        free(u->name);
        free(u->home);
        free(u->shell);
}

static int read_guest_file(const MachineInfo *m, const char *path, char **ret) {
        _cleanup_close_ int root = -EBADF, fd = -EBADF;
        char buf[64];
        struct stat st;
        int r;

        r = machine_open_root(m, &root);
        if (r < 0)
                return r;
        fd = open_in_root(root, path, O_RDONLY | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode) || st.st_size > 16 * 1024 * 1024)
                return -EBADF;
        snprintf(buf, sizeof buf, "/proc/self/fd/%d", fd);
        return read_full_file(buf, ret, NULL);
}

static int guest_find_user(const MachineInfo *m, const char *who, GuestUser *ret) {
        _cleanup_free_ char *data = NULL;
        char *save = NULL;
        uid_t want = (uid_t) -1;
        unsigned u;
        int r;

        r = read_guest_file(m, "etc/passwd", &data);
        if (r < 0 && streq(who, "root")) {
                *ret = (GuestUser) { .name = strdup("root"), .home = strdup("/root"), .shell = strdup("/bin/sh") };
                return ret->name && ret->home && ret->shell ? 0 : -ENOMEM;
        }
        if (r < 0)
                return r;
        if (safe_atou(who, &u) >= 0)
                want = (uid_t) u;
        for (char *l = strtok_r(data, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                char *f[7] = {};
                size_t n = 0;
                unsigned uid, gid;

                for (char *p = l, *c; n < 7 && (c = strsep(&p, ":"));)
                        f[n++] = c;
                if (n < 7 || safe_atou(f[2], &uid) < 0 || safe_atou(f[3], &gid) < 0)
                        continue;
                if (want != (uid_t) -1 ? uid != want : !streq(f[0], who))
                        continue;
                *ret = (GuestUser) {
                        .name = strdup(f[0]),
                        .home = strdup(isempty(f[5]) ? "/" : f[5]),
                        .shell = strdup(isempty(f[6]) ? "/bin/sh" : f[6]),
                        .uid = uid,
                        .gid = gid,
                };
                return ret->name && ret->home && ret->shell ? 0 : -ENOMEM;
        }
        return -ESRCH;
}

static void guest_groups(const MachineInfo *m, const GuestUser *u, ExecRequest *req) {
        _cleanup_free_ char *data = NULL;
        char *save = NULL;

        req->groups[req->n_groups++] = u->gid;
        if (read_guest_file(m, "etc/group", &data) < 0)
                return;
        for (char *l = strtok_r(data, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                char *f[4] = {};
                size_t n = 0;
                unsigned gid;

                for (char *p = l, *c; n < 4 && (c = strsep(&p, ":"));)
                        f[n++] = c;
                if (n < 4 || safe_atou(f[2], &gid) < 0 || gid == u->gid)
                        continue;
                for (char *p = f[3], *c; (c = strsep(&p, ","));)
                        if (streq(c, u->name) && req->n_groups < ELEMENTSOF(req->groups)) {
                                req->groups[req->n_groups++] = gid;
                                break;
                        }
        }
}

/* shell and login: a login shell (or COMMAND) as a user of the guest. */
static int run_as_user(const char *machine, const char *user, char **command, bool login) {
        _cleanup_(machine_info_freep) MachineInfo *m = NULL;
        _cleanup_strv_free_ char **env = NULL, **extra = NULL;
        _cleanup_free_ char *argv0 = NULL;
        static char *login_argv[] = { (char *) "login", NULL };
        GuestUser u = {};
        ExecRequest req = {};
        char *shell_argv[2] = {};
        int r;

        r = machine_get_logged(machine, &m);
        if (r < 0)
                return r;
        r = guest_find_user(m, user, &u);
        if (r < 0)
                return log_error_errno(r, "Failed to find user '%s' in the /etc/passwd of machine '%s'%s", user, m->name,
                                       r == -ESRCH ? "." : ": %m");

        req.m = m;
        req.uid = u.uid;
        req.gid = u.gid;
        req.home = u.home;
        if (login) {
                req.pty = true;
                req.argv = login_argv;
        } else
                req.pty = want_pty();
        if (u.uid != 0 || u.gid != 0)
                guest_groups(m, &u, &req);
        if (!login && strv_isempty(command)) {
                /* a login shell: argv[0] is "-sh" */
                argv0 = strjoin("-", path_basename(u.shell));
                if (!argv0) {
                        guest_user_done(&u);
                        return log_oom();
                }
                shell_argv[0] = argv0;
                req.argv = shell_argv;
                req.file = u.shell;
        } else if (!login)
                req.argv = command;

        _cleanup_free_ char *h = strjoin("HOME=", u.home), *sh = strjoin("SHELL=", u.shell),
                            *un = strjoin("USER=", u.name), *ln = strjoin("LOGNAME=", u.name);
        if (!h || !sh || !un || !ln || strv_extend(&extra, h) < 0 || strv_extend(&extra, sh) < 0 ||
            strv_extend(&extra, un) < 0 || strv_extend(&extra, ln) < 0 ||
            build_env(&env, req.pty, (const char *const *) extra) < 0) {
                guest_user_done(&u);
                return log_oom();
        }
        req.env = env;
        r = exec_run(&req);
        guest_user_done(&u);
        return r;
}

int verb_shell(int argc, char *argv[]) {
        _cleanup_free_ char *user = NULL;
        const char *machine, *at;

        if (argc < 2)
                return log_error_errno(-EINVAL, "'shell' needs a machine: berthctl shell [USER@]NAME [COMMAND...] "
                                                "(berthctl does not open shells on the host).");
        machine = argv[1];
        at = strchr(machine, '@');
        if (at) {
                user = strndup(machine, (size_t) (at - machine));
                machine = at + 1;
                if (!user)
                        return log_oom();
                if (isempty(user)) {
                        free(user);
                        user = NULL;
                }
        }
        if (!user && arg.uid && !(user = strdup(arg.uid)))
                return log_oom();
        return run_as_user(machine, user ?: "root", argv + 2, false);
}

int verb_login(int argc, char *argv[]) {
        if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
                return log_error_errno(-ENOTTY, "Cannot log in to machine '%s': standard input and output must be a "
                                                "terminal (use 'berthctl shell %s COMMAND' in scripts).",
                                       argv[1], argv[1]);
        return run_as_user(argv[1], "root", NULL, true);
}

/* ---------------------------------------------------------------------------------------------------- */
/* console                                                                                              */
/* ---------------------------------------------------------------------------------------------------- */

static volatile sig_atomic_t console_quit = 0;

static void on_quit_signal(int sig) {
        console_quit = sig;
}

/* Three Ctrl-] in a row, the first and the last within a second. */
static bool console_escape(const char *p, size_t n, unsigned *count, uint64_t *first) {
        for (size_t i = 0; i < n; i++) {
                uint64_t now;
                if (p[i] != ESCAPE_CHAR) {
                        *count = 0;
                        continue;
                }
                now = now_usec(CLOCK_MONOTONIC);
                if (*count == 0 || now - *first > USEC_PER_SEC) {
                        *first = now;
                        *count = 1;
                } else if (++*count >= 3)
                        return true;
        }
        return false;
}

static int console_forward(int sock, const char *name) {
        char in[4096], out[16384];
        unsigned count = 0;
        uint64_t first = 0;
        bool stdin_open = true;

        for (;;) {
                struct pollfd p[2] = {
                        { .fd = sock, .events = POLLIN },
                        { .fd = stdin_open ? STDIN_FILENO : -1, .events = POLLIN },
                };
                ssize_t k;

                if (console_quit)
                        return 0;
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return log_error_errno(negative_errno(), "Failed to poll: %m");
                }
                if (p[0].revents) {
                        k = read(sock, out, sizeof out);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k <= 0) {
                                if (!arg.quiet)
                                        fprintf(stderr, "\r\nThe console of machine '%s' was closed (the machine stopped).\r\n", name);
                                return 0;
                        }
                        if (loop_write(STDOUT_FILENO, out, (size_t) k) < 0)
                                return 0;
                }
                if (p[1].revents) {
                        k = read(STDIN_FILENO, in, sizeof in);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k <= 0) {
                                /* no more input: keep showing output until the user or the machine ends it */
                                stdin_open = false;
                                continue;
                        }
                        if (console_escape(in, (size_t) k, &count, &first)) {
                                if (!arg.quiet)
                                        fprintf(stderr, "\r\nDetached from machine '%s', it keeps running.\r\n", name);
                                return 0;
                        }
                        if (loop_write(sock, in, (size_t) k) < 0)
                                return 0;
                }
        }
}

int verb_console(int argc, char *argv[]) {
        _cleanup_(machine_info_freep) MachineInfo *m = NULL;
        _cleanup_close_ int sock = -EBADF;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct termios saved, raw;
        bool restore = false;
        char hello;
        ssize_t k;
        int r;

        r = machine_get_logged(argv[1], &m);
        if (r < 0)
                return r;
        if (isempty(m->console))
                return log_error_errno(-ENOTSUP, "Machine '%s' has no console to attach to: its console is on the terminal "
                                                 "berth runs on (--console=interactive), or it has none (--console=pipe).",
                                       m->name);
        if (strlen(m->console) >= sizeof sa.sun_path)
                return log_error_errno(-ENAMETOOLONG, "Console socket path of machine '%s' is too long.", m->name);
        strcpy(sa.sun_path, m->console);
        sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (sock < 0)
                return log_error_errno(negative_errno(), "Failed to create a socket: %m");
        if (connect(sock, (struct sockaddr *) &sa, sizeof sa) < 0)
                return log_error_errno(negative_errno(), "Failed to connect to the console of machine '%s': %m", m->name);
        /* berth says 'A' (attached) or 'B' (someone else is) first */
        do
                k = read(sock, &hello, 1);
        while (k < 0 && errno == EINTR);
        if (k != 1 || hello != 'A')
                return log_error_errno(-EBUSY, "The console of machine '%s' is in use by another client.", m->name);

        /* SIGPIPE: an EPIPE is the end of the session, not of berthctl before the terminal is restored */
        (void) signal(SIGPIPE, SIG_IGN);
        struct sigaction sa_quit = { .sa_handler = on_quit_signal };
        (void) sigaction(SIGTERM, &sa_quit, NULL);
        (void) sigaction(SIGHUP, &sa_quit, NULL);
        (void) sigaction(SIGINT, &sa_quit, NULL);

        if (!arg.quiet)
                fprintf(stderr, "Connected to machine '%s'. Press ^] three times within 1s to detach.\n", m->name);
        if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) >= 0) {
                raw = saved;
                cfmakeraw(&raw);
                raw.c_oflag |= OPOST; /* keep \n -> \r\n of our own messages sane */
                if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) >= 0)
                        restore = true;
        }
        r = console_forward(sock, m->name);
        if (restore)
                (void) tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        return r;
}

/* ---------------------------------------------------------------------------------------------------- */
/* copy-to, copy-from                                                                                   */
/* ---------------------------------------------------------------------------------------------------- */

/* Everything below works on fds: the source is walked with O_PATH|O_NOFOLLOW and reopened through
 * its own fd, the destination is created relative to directory fds we hold, with O_EXCL and
 * O_NOFOLLOW. A symlink on either side is copied as a symlink, never followed; so a guest that
 * plants "etc -> /etc" or swaps a directory for a symlink while we copy gets nowhere on the host. */

static int reopen_fd(int fd, int flags) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        int r = open(path, flags | O_CLOEXEC | O_NOCTTY);
        return r < 0 ? negative_errno() : r;
}

static int copy_fd(int src, const struct stat *st, int dst_dir, const char *name, unsigned depth);

/* copy-from: a guest's setuid or setgid file must not become one on the host */
static mode_t copy_mode_mask = 07777;

static int copy_attrs(int fd, const struct stat *st) {
        struct timespec ts[2] = { st->st_atim, st->st_mtim };
        if (fchown(fd, st->st_uid, st->st_gid) < 0)
                log_debug_errno(negative_errno(), "Failed to change owner, ignoring: %m");
        if (fchmod(fd, st->st_mode & copy_mode_mask) < 0)
                return negative_errno();
        (void) futimens(fd, ts);
        return 0;
}

static int copy_regular(int src, const struct stat *st, int dst_dir, const char *name) {
        _cleanup_close_ int in = -EBADF, out = -EBADF;
        char buf[65536];
        int r;

        in = reopen_fd(src, O_RDONLY);
        if (in < 0)
                return in;
        out = openat(dst_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
        if (out < 0)
                return negative_errno();
        for (;;) {
                ssize_t k = copy_file_range(in, NULL, out, NULL, SIZE_MAX / 2, 0);
                if (k == 0)
                        break;
                if (k > 0)
                        continue;
                if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
                        return negative_errno();
                /* fall back to read/write for the rest */
                while ((k = read(in, buf, sizeof buf)) != 0) {
                        if (k < 0) {
                                if (errno == EINTR)
                                        continue;
                                return negative_errno();
                        }
                        r = loop_write(out, buf, (size_t) k);
                        if (r < 0)
                                return r;
                }
                break;
        }
        return copy_attrs(out, st);
}

static int copy_directory(int src, const struct stat *st, int dst_dir, const char *name, unsigned depth) {
        _cleanup_close_ int out = -EBADF;
        DIR *d;
        struct dirent *de;
        int in, r = 0;

        if (depth > 256)
                return -ELOOP;
        if (mkdirat(dst_dir, name, 0700) < 0 && !(errno == EEXIST && arg.force))
                return negative_errno();
        out = openat(dst_dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (out < 0)
                return negative_errno();
        in = reopen_fd(src, O_RDONLY | O_DIRECTORY);
        if (in < 0)
                return in;
        d = fdopendir(in);
        if (!d) {
                safe_close(in);
                return negative_errno();
        }
        while ((de = readdir(d))) {
                _cleanup_close_ int fd = -EBADF;
                struct stat cst;
                int q;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                fd = openat(dirfd(d), de->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0 || fstat(fd, &cst) < 0) {
                        q = negative_errno();
                } else
                        q = copy_fd(fd, &cst, out, de->d_name, depth + 1);
                if (q < 0) {
                        log_error_errno(q, "Failed to copy '%s': %m", de->d_name);
                        if (r == 0)
                                r = q;
                }
        }
        closedir(d);
        int q = copy_attrs(out, st);
        return r < 0 ? r : q;
}

static int copy_fd(int src, const struct stat *st, int dst_dir, const char *name, unsigned depth) {
        if (arg.force && !S_ISDIR(st->st_mode))
                (void) unlinkat(dst_dir, name, 0);
        if (S_ISREG(st->st_mode))
                return copy_regular(src, st, dst_dir, name);
        if (S_ISDIR(st->st_mode))
                return copy_directory(src, st, dst_dir, name, depth);
        if (S_ISLNK(st->st_mode)) {
                char target[PATH_MAX];
                ssize_t k = readlinkat(src, "", target, sizeof target - 1);
                if (k < 0)
                        return negative_errno();
                target[k] = 0;
                if (symlinkat(target, dst_dir, name) < 0)
                        return negative_errno();
                (void) fchownat(dst_dir, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW);
                return 0;
        }
        if (S_ISFIFO(st->st_mode)) {
                if (mkfifoat(dst_dir, name, st->st_mode & copy_mode_mask) < 0)
                        return negative_errno();
                return 0;
        }
        log_warning("Skipping '%s': device nodes and sockets are not copied.", name);
        return 0;
}

/* Splits PATH into an fd of its directory (opened with OPEN_DIR) and its last component. */
static int split_path(const char *path, char **ret_dir, char **ret_base) {
        const char *slash = strrchr(path, '/');
        char *d, *b;

        while (slash && slash > path && slash[1] == 0) /* trailing slashes */
                return -EINVAL;
        if (!slash) {
                d = strdup(".");
                b = strdup(path);
        } else {
                d = slash == path ? strdup("/") : strndup(path, (size_t) (slash - path));
                b = strdup(slash + 1);
        }
        if (!d || !b) {
                free(d);
                free(b);
                return -ENOMEM;
        }
        if (isempty(b) || streq(b, ".") || streq(b, "..")) {
                free(d);
                free(b);
                return -EINVAL;
        }
        *ret_dir = d;
        *ret_base = b;
        return 0;
}

int verb_copy(int argc, char *argv[]) {
        bool to = streq(argv[0], "copy-to");
        _cleanup_(machine_info_freep) MachineInfo *m = NULL;
        _cleanup_close_ int root = -EBADF, src = -EBADF, dst_dir = -EBADF, existing = -EBADF;
        _cleanup_free_ char *src_dir = NULL, *src_base = NULL, *dir = NULL, *base = NULL;
        const char *from = argv[2], *dest = argc > 3 ? argv[3] : argv[2];
        const char *guest = to ? dest : from;
        struct stat st, est;
        int r;

        r = machine_get_logged(argv[1], &m);
        if (r < 0)
                return r;
        if (!to)
                copy_mode_mask = 01777;
        if (!path_is_absolute(guest))
                return log_error_errno(-EINVAL, "The path in the machine must be absolute: '%s'.", guest);
        r = machine_open_root(m, &root);
        if (r < 0)
                return log_error_errno(r, "Failed to open the root of machine '%s': %m", m->name);

        /* the source: the host's is the user's own path; the guest's is resolved in its root */
        src = to ? open(from, O_PATH | O_CLOEXEC) : open_in_root(root, from, O_PATH);
        if (src < 0)
                return log_error_errno(to ? negative_errno() : src, "Failed to open '%s'%s%s: %m", from,
                                       to ? "" : " in machine ", to ? "" : m->name);
        if (fstat(src, &st) < 0)
                return log_error_errno(negative_errno(), "Failed to stat '%s': %m", from);
        r = split_path(from, &src_dir, &src_base);
        if (r < 0)
                return log_error_errno(r, "Invalid source path '%s'.", from);

        /* an existing directory at the destination: copy into it, as cp does */
        existing = to ? open_in_root(root, dest, O_PATH | O_DIRECTORY) : open(dest, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (existing >= 0 && fstat(existing, &est) >= 0 && !(S_ISDIR(st.st_mode) && arg.force && argc > 3)) {
                dst_dir = TAKE_FD(existing);
                base = TAKE_PTR(src_base);
        } else {
                r = split_path(dest, &dir, &base);
                if (r < 0)
                        return log_error_errno(r, "Invalid destination path '%s'.", dest);
                dst_dir = to ? open_in_root(root, dir, O_PATH | O_DIRECTORY) : open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (dst_dir < 0)
                        return log_error_errno(to ? dst_dir : negative_errno(), "Failed to open directory '%s'%s%s: %m", dir,
                                               to ? " in machine " : "", to ? m->name : "");
        }
        r = copy_fd(src, &st, dst_dir, base, 0);
        if (r == -EEXIST)
                return log_error_errno(r, "Failed to copy '%s' to '%s': the destination exists (--force replaces it).",
                                       from, dest);
        if (r < 0)
                return log_error_errno(r, "Failed to copy '%s' %s machine '%s': %m", from, to ? "into" : "from", m->name);
        return 0;
}

/* ---------------------------------------------------------------------------------------------------- */
/* bind                                                                                                 */
/* ---------------------------------------------------------------------------------------------------- */

int verb_bind(int argc, char *argv[]) {
        _cleanup_(machine_info_freep) MachineInfo *m = NULL;
        _cleanup_close_ int tree = -EBADF, pidfd = -EBADF;
        _cleanup_close_pair_ int pair[2] = { -EBADF, -EBADF };
        _cleanup_free_ char *src = NULL;
        const char *dst;
        struct stat st;
        ExecMessage msg;
        pid_t pid;
        int r, fd;

        r = machine_get_logged(argv[1], &m);
        if (r < 0)
                return r;
        r = path_make_absolute_cwd(argv[2], &src);
        if (r < 0)
                return log_oom();
        dst = argc > 3 ? argv[3] : src;
        if (!path_is_absolute(dst))
                return log_error_errno(-EINVAL, "The path in the machine must be absolute: '%s'.", dst);
        if (stat(src, &st) < 0)
                return log_error_errno(negative_errno(), "Failed to stat '%s': %m", src);

        /* a detached copy of the host's mount tree at SRC, made here, in the host's mount namespace */
        tree = open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
        if (tree < 0)
                return log_error_errno(negative_errno(), "Failed to clone the mount tree at '%s': %m", src);
        if (arg.read_only) {
                struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
                if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
                        return log_error_errno(negative_errno(), "Failed to make the mount of '%s' read-only: %m", src);
        }
        r = machine_open_leader(m, &pidfd);
        if (r < 0)
                return r;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
                return log_error_errno(negative_errno(), "Failed to create a socket pair: %m");

        pid = fork();
        if (pid < 0)
                return log_error_errno(negative_errno(), "Failed to fork: %m");
        if (pid == 0) {
                /* The machine's mount namespace (and so its root); all other namespaces are the host's.
                 * DST is resolved in there: its symlinks cannot lead out of the container. */
                _cleanup_close_ int target = -EBADF;
                int flags = CLONE_NEWNS | (same_namespace(m->leader, "user") ? 0 : CLONE_NEWUSER);

                pair[0] = safe_close(pair[0]);
                if (setns(pidfd, flags) < 0) {
                        r = negative_errno();
                        goto child_fail;
                }
                if (arg.mkdir) {
                        r = S_ISDIR(st.st_mode) ? mkdir_p(dst, 0755) : mkdir_parents(dst, 0755);
                        if (r < 0)
                                goto child_fail;
                        if (!S_ISDIR(st.st_mode)) {
                                r = touch(dst, 0644);
                                if (r < 0 && r != -EEXIST)
                                        goto child_fail;
                        }
                }
                target = open(dst, O_PATH | O_CLOEXEC);
                if (target < 0) {
                        r = negative_errno();
                        goto child_fail;
                }
                if (move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) {
                        r = negative_errno();
                        goto child_fail;
                }
                _exit(EXIT_SUCCESS);
        child_fail:
                (void) send_message(pair[1], EXEC_MSG_FAILED, r, -EBADF);
                _exit(EXIT_FAILURE);
        }
        pair[1] = safe_close(pair[1]);
        r = recv_message(pair[0], &msg, &fd);
        safe_close(fd);
        (void) waitpid(pid, NULL, 0);
        if (r > 0) {
                r = msg.error < 0 ? msg.error : -EIO;
                if (r == -ENOENT && !arg.mkdir)
                        return log_error_errno(r, "Failed to bind '%s' to '%s' in machine '%s': '%s' does not exist "
                                                  "there (--mkdir creates it).", src, dst, m->name, dst);
                return log_error_errno(r, "Failed to bind '%s' to '%s' in machine '%s': %m", src, dst, m->name);
        }
        return 0;
}
