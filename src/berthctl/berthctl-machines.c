/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * berthctl's machine verbs, without systemd: everything is read from berth's runtime registry
 * (/run/berth/machines) and done to the machine's processes directly.
 *
 * The "backend" is the pair machine_list()/machine_get(): they fill MachineInfo, which is all the
 * verbs look at. With systemd, they also ask systemd-machined (berthctl-bus.c): machines of other
 * managers (systemd-nspawn, ...) are listed too, and a berth machine known to both shows once, its
 * berth record adding what machined does not know (console, confinement, cgroups). Such a foreign
 * machine has no record (m->record is NULL): berthctl shows it, and stops, terminates and signals it
 * through machined, but refuses exec, shell, login, console, copy and bind on it
 * (machine_get_berth_logged()): they enter the machine with berth's confinement, which only a
 * berth machine's record tells.
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
#include "image-path.h"
#include "berth-console.h"
#include "berth-seccomp.h"
#include "berth-settings.h"
#include "berthctl.h"
#include "log.h"
#include "machine-name.h"
#include "registry.h"
#include "util.h"
#include "berthctl-machine.h"


/* ---------------------------------------------------------------------------------------------------- */
/* The backend: machines from the registry                                                              */
/* ---------------------------------------------------------------------------------------------------- */

MachineInfo *machine_info_free(MachineInfo *m) {
        if (!m)
                return NULL;
        free(m->name);
        free(m->os);
        free(m->version);
        free(m->pretty_os);
        machine_record_free(m->record);
        strv_free(m->owned);
        free(m);
        return NULL;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Names of the live machines: berth's (stale records are left out) and machined's, each once. */
static int machine_list(char ***ret) {
        _cleanup_strv_free_ char **all = NULL, **live = NULL, **bus = NULL;
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
        if (bus_machine_list(&bus) >= 0)
                STRV_FOREACH(n, bus)
                        if (!strv_contains(live, *n) && strv_extend(&live, *n) < 0)
                                return -ENOMEM;
        if (!live && !(live = calloc(1, sizeof(char *))))
                return -ENOMEM;
        qsort(live, strv_length(live), sizeof(char *), cmp_str);
        *ret = TAKE_PTR(live);
        return 0;
}

/* -ENXIO: no such machine (or only a stale record). Doesn't log. */
int machine_get(const char *name, MachineInfo **ret) {
        _cleanup_(machine_info_freep) MachineInfo *m = NULL;
        _cleanup_(machine_record_freep) MachineRecord *rec = NULL;
        int r;

        if (!machine_name_is_valid(name))
                return -EINVAL;
        m = calloc(1, sizeof *m);
        if (!m || !(m->name = strdup(name)))
                return -ENOMEM;
        r = registry_read(name, &rec);
        if (r < 0 && r != -ENOENT)
                return r;
        if (r >= 0) {
                r = registry_is_live(name);
                if (r < 0)
                        return r;
                if (r == 0)
                        rec = machine_record_free(rec);
        }
        if (!rec) {
                /* not berth's (or berth's record is stale): only what machined knows */
                r = bus_machine_fill(name, m);
                if (r < 0)
                        return r == -ENXIO ? -ENXIO : r;
                *ret = TAKE_PTR(m);
                return 0;
        }
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
        (void) bus_machine_fill(name, m); /* what the record leaves unset, and whether it's registered */
        *ret = TAKE_PTR(m);
        return 0;
}

/* machine_get() that logs the one-line error verbs print. */
int machine_get_logged(const char *name, MachineInfo **ret) {
        int r = machine_get(name, ret);
        if (r == -ENXIO)
                return log_error_errno(r, "No machine '%s' is running.", name);
        if (r == -EINVAL)
                return log_error_errno(r, "Invalid machine name '%s'.", name);
        if (r < 0)
                return log_error_errno(r, "Failed to read the record of machine '%s': %m", name);
        return 0;
}

/* machine_get_logged() for the verbs that enter a machine with its confinement: refuses a machine
 * without a berth record (another manager's). */
int machine_get_berth_logged(const char *name, MachineInfo **ret) {
        _cleanup_(machine_info_freep) MachineInfo *m = NULL;
        int r = machine_get_logged(name, &m);
        if (r < 0)
                return r;
        if (!m->record)
                return log_error_errno(-EOPNOTSUPP,
                                       "Machine '%s' is not a berth machine (its service is '%s'): exec, shell, login, "
                                       "console, copy and bind need one. Use the tools of its manager.",
                                       name, m->service ?: "n/a");
        *ret = TAKE_PTR(m);
        return 0;
}

/* The unified (cgroup2) one of the record's cgroup paths, or NULL. */
const char *machine_unified_cgroup(const MachineInfo *m) {
        if (!m->record)
                return NULL;
        STRV_FOREACH(p, m->record->cgroup_paths) {
                struct statfs sfs;
                if (statfs(*p, &sfs) >= 0 && (uint64_t) sfs.f_type == CGROUP2_SUPER_MAGIC)
                        return *p;
        }
        return NULL;
}

/* Pins the machine's leader: a pidfd, taken while the machine's berth is still alive, for a leader
 * that is still in the machine's cgroup. After that the PID cannot name another process. Logs. */
int machine_open_leader(const MachineInfo *m, int *ret_pidfd) {
        _cleanup_close_ int pidfd = -EBADF;
        _cleanup_free_ char *cg = NULL;
        char path[64];
        int r;

        if (!m->record)
                return log_error_errno(-EOPNOTSUPP, "Machine '%s' is not a berth machine.", m->name);
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
int machine_open_root(const MachineInfo *m, int *ret) {
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
                struct stat st;
                _cleanup_close_ int fd = open_regular_in_root(root, paths[i], &st);
                _cleanup_free_ char *data = NULL;
                char buf[64];

                if (fd < 0 || st.st_size > 64 * 1024)
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

bool same_namespace(pid_t pid, const char *ns) {
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

static int status_one(const char *name, unsigned *n_printed) {
        _cleanup_(machine_info_freep) MachineInfo *m = NULL;
        _cleanup_(fields_freep) Fields *f = NULL;
        _cleanup_strv_free_ char **addrs = NULL;
        char leader[320], since[160], ts[64], span[64], comm[256], uid_shift[16] = "";
        bool host = false;
        int r;

        r = machine_get_logged(name, &m);
        if (r < 0)
                return r;
        if (m->record && m->record->uid_range)
                snprintf(uid_shift, sizeof uid_shift, "%u", m->record->uid_shift);
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
            (m->monitor > 0 ? fields_add(f, "Monitor", CELL_INT, (long long) m->monitor)
                            : fields_add(f, "Monitor", CELL_STRING, NULL)) < 0 ||
            fields_add(f, "Class", CELL_STRING, m->class) < 0 ||
            fields_add(f, "Service", CELL_STRING, m->service) < 0 ||
            fields_add(f, "Root", CELL_STRING, m->root) < 0 ||
            fields_add(f, "Unit", CELL_STRING, m->unit) < 0 ||
            fields_add(f, "OS", CELL_STRING, m->pretty_os ?: m->os) < 0 ||
            fields_add(f, "Addresses", CELL_STRV, host || strv_isempty(addrs) ? NULL : addrs) < 0 ||
            fields_add(f, "Network", CELL_STRING, host ? "host" : "private") < 0 ||
            fields_add(f, "UID Shift", CELL_STRING, m->record && m->record->uid_range ? uid_shift : NULL) < 0 ||
            fields_add(f, "Interfaces", CELL_STRV, m->record ? m->record->interfaces : NULL) < 0 ||
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
        machine_journal_print(m, arg.lines, arg.output);
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
        char sig[16], sig2[16], caps[32], uid_shift[16] = "", uid_range[16] = "";
        _cleanup_strv_free_ char **addrs = NULL;
        bool host;

        machine_read_os_release(m);
        (void) machine_addresses(m, &host, &addrs);
        f = fields_new();
        if (!f)
                return log_oom();
        static const MachineRecord none = {};
        if (!rec)
                rec = (MachineRecord *) &none; /* another manager's machine: no confinement to show */
        snprintf(caps, sizeof caps, "%llx", rec->capabilities);
        snprintf(uid_shift, sizeof uid_shift, "%u", rec->uid_shift);
        snprintf(uid_range, sizeof uid_range, "%u", rec->uid_range);
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
            fields_add(f, "Interfaces", CELL_STRV, rec->interfaces) < 0 ||
            fields_add(f, "CGroup", CELL_STRING, rec->cgroup) < 0 ||
            fields_add(f, "CGroupPaths", CELL_STRV, rec->cgroup_paths) < 0 ||
            fields_add(f, "Console", CELL_STRING, m->console) < 0 ||
            fields_add(f, "PoweroffSignal", CELL_STRING,
                       rec->poweroff_signal > 0 ? signal_to_string(rec->poweroff_signal, sig) : NULL) < 0 ||
            fields_add(f, "RebootSignal", CELL_STRING,
                       rec->reboot_signal > 0 ? signal_to_string(rec->reboot_signal, sig2) : NULL) < 0 ||
            fields_add(f, "Capabilities", CELL_STRING, m->record ? caps : NULL) < 0 ||
            fields_add(f, "NoNewPrivileges", CELL_BOOL, rec->no_new_privileges) < 0 ||
            fields_add(f, "UIDShift", CELL_STRING, rec->uid_range ? uid_shift : NULL) < 0 ||
            fields_add(f, "UIDRange", CELL_STRING, rec->uid_range ? uid_range : NULL) < 0 ||
            fields_add(f, "SystemCallAllow", CELL_STRV, rec->syscall_allow) < 0 ||
            fields_add(f, "SystemCallDeny", CELL_STRV, rec->syscall_deny) < 0 ||
            fields_add(f, "Registered", CELL_BOOL, m->registered) < 0)
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

/* Waits until machined forgets the machine. */
static int wait_unregistered(const char *name, uint64_t timeout) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + timeout;

        while (bus_machine_registered(name) > 0) {
                if (now_usec(CLOCK_MONOTONIC) >= deadline)
                        return -ETIMEDOUT;
                (void) usleep(POLL_USEC);
        }
        return 0;
}

int verb_poweroff(int argc, char *argv[]) {
        bool reboot = streq(argv[0], "reboot") || streq(argv[0], "restart");
        int r, ret = 0;

        for (int i = 1; i < argc; i++) {
                _cleanup_(machine_info_freep) MachineInfo *m = NULL;
                _cleanup_close_ int pidfd = -EBADF;
                char buf[16];
                int sig;

                r = machine_get_logged(argv[i], &m);
                if (r >= 0 && !m->record) {
                        /* another manager's machine: its init's signals, as machinectl sends them */
                        r = bus_machine_kill(m->name, "leader", reboot ? SIGINT : SIGRTMIN + 4);
                        if (r < 0 && ret == 0)
                                ret = r;
                        continue;
                }
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
                if (r >= 0 && m->registered) {
                        /* machined stops the machine's unit */
                        r = bus_machine_terminate(m->name);
                        if (r >= 0) {
                                r = m->record ? wait_gone(m->name, timeout) : wait_unregistered(m->name, timeout);
                                if (r < 0)
                                        log_error_errno(r, "Machine '%s' was terminated, but is still there.", m->name);
                        }
                        if (r < 0 && ret == 0)
                                ret = r;
                        continue;
                }
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
                if (r >= 0 && !m->record) {
                        /* another manager's machine: machined signals its unit's processes */
                        r = bus_machine_kill(m->name, all ? "all" : "leader", sig);
                        if (r < 0 && ret == 0)
                                ret = r;
                        continue;
                }
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

                        if (streq(until, "stopped")) {
                                /* after poweroff, which returns at once: gone from our records and machined's */
                                if (r == -ENXIO)
                                        break;
                                if (r < 0)
                                        return log_error_errno(r, "Failed to read the record of machine '%s': %m", argv[i]);
                        } else if (r >= 0) {
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
                                                       seen || streq(until, "stopped") ? "was" : "did not appear, and was",
                                                       until, format_timespan(timeout, span, sizeof span));
                        (void) usleep(POLL_USEC);
                }
        }
        return 0;
}

/* ---------------------------------------------------------------------------------------------------- */
/* start, enable, disable                                                                               */
/* ---------------------------------------------------------------------------------------------------- */

/* The image of NAME, as berth -M finds it (a directory, or NAME.raw). Logs. */
static int find_image(const char *name, char **ret, bool *ret_raw) {
        int r = image_find(name, ret, ret_raw);

        if (r == -ENOENT)
                return log_error_errno(r, "No image '%s' in %s.", name, image_search_path_description());
        if (r < 0)
                return log_error_errno(r, "Failed to look up image '%s': %m", name);
        return 0;
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

/* berth's exit status when the guest asked for a reboot (as berth@.service's RestartForceExitStatus=) */
#define EXIT_STATUS_REBOOT 133

/* The parent of PID, 0 if unknown. */
static pid_t pid_parent(pid_t pid) {
        _cleanup_free_ char *stat = NULL;
        char path[64], *p;
        int ppid;

        if (pid <= 0)
                return 0;
        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        if (read_full_file(path, &stat, NULL) < 0)
                return 0;
        /* "PID (COMM) STATE PPID ...": COMM may hold anything, so from its last ')' */
        p = strrchr(stat, ')');
        if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
                return 0;
        return (pid_t) ppid;
}

/* What berth@.service is without systemd: runs berth for image NAME (with a user namespace, as the
 * unit) and runs it again when the guest
 * asks for a reboot (exit status 133, Restart= in the unit), so that 'berthctl reboot' brings a
 * machine back as it does under systemd. Stays in the host's namespaces, holds nothing of the
 * container's, and exits with berth's last exit status. */
static int supervise_berth(const char *berth_path, const char *path, bool raw, const char *name) {
        for (;;) {
                int status;
                pid_t pid = fork();

                if (pid < 0)
                        return EXIT_FAILURE;
                if (pid == 0) {
                        /* as berth@.service starts it: a user namespace and a veth of its own, unless
                         * its trusted .nspawn file says PrivateUsers=no or [Network] otherwise */
                        execl(berth_path, berth_path, raw ? "--image" : "--directory", path, "-M", name, "-b", "-U",
                              "--console=passive", "-q", "--network-veth", "--settings=override", (char *) NULL);
                        dprintf(STDERR_FILENO, "Failed to execute '%s': %s\n", berth_path, strerror(errno));
                        _exit(EXIT_FAILURE);
                }
                while (waitpid(pid, &status, 0) < 0)
                        if (errno != EINTR)
                                return EXIT_FAILURE;
                if (!WIFEXITED(status))
                        return 128 + WTERMSIG(status);
                if (WEXITSTATUS(status) != EXIT_STATUS_REBOOT)
                        return WEXITSTATUS(status);
                dprintf(STDOUT_FILENO, "Machine '%s' asked for a reboot, starting it again.\n", name);
        }
}

static int start_one(const char *name, const char *berth_path) {
        _cleanup_free_ char *dir = NULL, *logdir = NULL, *logfile = NULL;
        uint64_t timeout = arg.timeout_usec ?: DEFAULT_WAIT_USEC, deadline;
        bool raw = false;
        pid_t pid;
        int r, status;

        if (!machine_name_is_valid(name))
                return log_error_errno(-EINVAL, "Invalid machine name '%s'.", name);
        /* not registry_is_live(): another start's stale cleanup of a dead instance of this name
         * holds its lock for a moment, and the berth we start waits for it */
        if (registry_is_running(name) > 0)
                return log_error_errno(-EEXIST, "Machine '%s' is already running.", name);
        r = find_image(name, &dir, &raw);
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
                /* detached: its own session, no terminal, its output in the log */
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                int lf = open(logfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
                if (null < 0 || lf < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(lf, STDOUT_FILENO) < 0 ||
                    dup2(lf, STDERR_FILENO) < 0)
                        _exit(EXIT_FAILURE);
                (void) setsid();
                sigset_t none;
                sigemptyset(&none);
                (void) sigprocmask(SIG_SETMASK, &none, NULL);
                _exit(supervise_berth(berth_path, dir, raw, name));
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
                if (machine_get(name, &m) >= 0 && pid_parent(m->monitor) == pid && state_reached(m->state, "running"))
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

        if (bus_have_systemd()) {
                /* systemctl start berth@NAME.service: the unit is active once the guest is ready */
                for (int i = 1; i < argc; i++) {
                        _cleanup_free_ char *unit = NULL;

                        if (!machine_name_is_valid(argv[i]))
                                r = log_error_errno(-EINVAL, "Invalid machine name '%s'.", argv[i]);
                        else if (!(unit = strjoin("berth@", argv[i], ".service")))
                                r = log_oom();
                        else
                                r = bus_start_unit(unit, arg.timeout_usec ?: DEFAULT_WAIT_USEC);
                        if (r >= 0 && !arg.quiet)
                                log_info("Started machine '%s' (%s).", argv[i], unit);
                        if (r < 0 && ret == 0)
                                ret = r;
                }
                return ret;
        }
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
        _cleanup_strv_free_ char **units = NULL;
        int r;

        if (!bus_have_systemd())
                return log_error_errno(-EOPNOTSUPP,
                                       "Cannot %s machines: starting them at boot needs systemd (systemctl %s berth@NAME.service), "
                                       "and this system does not run systemd.",
                                       argv[0], argv[0]);
        for (int i = 1; i < argc; i++) {
                _cleanup_free_ char *unit = NULL;
                if (!machine_name_is_valid(argv[i]))
                        return log_error_errno(-EINVAL, "Invalid machine name '%s'.", argv[i]);
                unit = strjoin("berth@", argv[i], ".service");
                if (!unit || strv_consume(&units, TAKE_PTR(unit)) < 0)
                        return log_oom();
        }
        /* the units are wanted by machines.target, which is enabled along, as machinectl does */
        if (enable && strv_extend(&units, "machines.target") < 0)
                return log_oom();
        r = bus_enable_units(units, enable);
        if (r < 0 || !arg.now)
                return r;
        /* --now: start or stop the machines' units too, as systemctl does */
        for (int i = 1; i < argc; i++) {
                int q = enable ? bus_start_unit(units[i - 1], arg.timeout_usec ?: DEFAULT_WAIT_USEC)
                               : bus_stop_unit(units[i - 1], arg.timeout_usec ?: DEFAULT_WAIT_USEC);
                if (q < 0 && r >= 0)
                        r = q;
        }
        return r;
}
