/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* berthctl exec, shell, login and console: commands and terminals in a running machine. */
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
#include "berthctl-machine.h"

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

        r = machine_get_berth_logged(argv[1], &m);
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

        r = machine_get_berth_logged(machine, &m);
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

        r = machine_get_berth_logged(argv[1], &m);
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
