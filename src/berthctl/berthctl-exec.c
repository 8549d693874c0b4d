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
#include <sys/mman.h>
#include <sys/mount.h>
#include <linux/keyctl.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include "event-loop.h"
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

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

/* ---------------------------------------------------------------------------------------------------- */
/* exec, shell, login: a command in the machine's namespaces, without D-Bus in the guest                */
/* ---------------------------------------------------------------------------------------------------- */

/*
 * Process model:
 *
 *   berthctl (host namespaces, unconfined, the caller's stdio): forwards its stdio to and from the
 *   command's pipes, or the guest's pty
 *    └─ waiter: host PID namespace and cgroups, so the guest can never see it. The parent of the
 *       inner child: forwards signals to it and passes on its exit status.
 *        └─ confiner: on the host it joins the machine's cgroups (so that what it forks is born
 *           there: there is no moment in which a process of ours in the guest's PID namespace sits
 *           outside the guest's device policy) and reads the container's seccomp programs from the
 *           cache. Then it joins every namespace of the machine (the user namespace first,
 *           atomically through a pidfd of the leader; its own PID namespace does not change with
 *           setns()), which puts it at the root of the guest's mount namespace, the tree; enters the
 *           working directory, sets no_new_privs, loads the filter, drops to the container's
 *           capabilities, closes every fd but the socket to berthctl, a pipe from the waiter and
 *           its stdio (our pipes, never a host file), and only then clones, with CLONE_PARENT, and
 *           exits: so no host process stays in the guest's cgroups.
 *    └─ inner child (the waiter's child): in the machine's PID namespace, the first process of
 *       ours the guest can see. It is as confined as the container's payload from its first
 *       instruction, holds nothing of the host (the socket and the pipes are anonymous, its binary
 *       is a sealed memfd, see exec_seal_self()) and does only what a guest process may do: waits
 *       for the confiner to be gone, a session, a pty in the guest's devpts, the user, exec.
 *
 * Trust boundary: container root can ptrace the inner child (it keeps CAP_SYS_PTRACE in the host's
 * user namespace when there is no user namespace of its own, so dumpability does not protect us),
 * and it can open /proc/PID/fd/N and /proc/PID/exe of it and of the command. So what the inner child
 * holds is treated as handed to the guest: the caller's terminal and files reach the command only
 * through the pipes that berthctl forwards, or through a pty of the guest's devpts; no pidfd of a
 * host process (setns() on one would give the guest the host's PID namespace). What the guest
 * sends back on the socket (a pty master, an error) is untrusted data to berthctl, and the waiter
 * learns the inner child's PID from the kernel, not from the guest.
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
        gid_t tty_gid;      /* the guest's tty group, for the pty; (gid_t) -1: as devpts made it */
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

/* Make our own binary a sealed memfd copy of itself, once (execveat of the copy, same argv and
 * environment). The guest can open /proc/PID/exe of the inner child: were that berthctl's file on
 * the host, it could keep it open and, once no berthctl runs, reopen it for writing through
 * /proc/self/fd/N and replace the host's berthctl (CVE-2019-5736 against runc). A sealed memfd
 * cannot be written by anyone. Returns 0 when already sealed; on success does not return. Logs. */
static int exec_seal_self(void) {
        const unsigned seals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
        _cleanup_close_ int self = -EBADF, mfd = -EBADF;
        struct stat st;
        int r;

        self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        if (self < 0)
                return log_error_errno(negative_errno(), "Failed to open our own binary: %m");
        r = fcntl(self, F_GET_SEALS);
        if (r >= 0 && ((unsigned) r & seals) == seals)
                return 0;
        if (!berthctl_argv)
                return log_error_errno(-EINVAL, "Cannot run a sealed copy of berthctl: no argument vector.");
        if (fstat(self, &st) < 0)
                return log_error_errno(negative_errno(), "Failed to read our own binary: %m");
        mfd = memfd_create("berthctl", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
        if (mfd < 0 && errno == EINVAL) /* kernels before 6.3 know no MFD_EXEC, and execute memfds anyway */
                mfd = memfd_create("berthctl", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (mfd < 0)
                return log_error_errno(negative_errno(), "Failed to create a memfd for a sealed copy of berthctl: %m");
        for (off_t left = st.st_size; left > 0;) {
                ssize_t k = copy_file_range(self, NULL, mfd, NULL, (size_t) left, 0);
                if (k < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP))
                        k = sendfile(mfd, self, NULL, (size_t) left);
                if (k < 0)
                        return log_error_errno(negative_errno(), "Failed to copy berthctl into a memfd: %m");
                if (k == 0)
                        return log_error_errno(-EIO, "Failed to copy berthctl into a memfd: short read.");
                left -= k;
        }
        if (fcntl(mfd, F_ADD_SEALS, seals) < 0)
                return log_error_errno(negative_errno(), "Failed to seal the copy of berthctl: %m");
        self = safe_close(self);
        (void) syscall(SYS_execveat, mfd, "", berthctl_argv, environ, AT_EMPTY_PATH);
        return log_error_errno(negative_errno(), "Failed to execute the sealed copy of berthctl: %m");
}

/* The machine's cgroups. The helper joins them itself, on the host (its cgroup namespace and
 * credentials are the host's), before it joins any namespace, and closes them before the fork: so
 * the fds of the host's cgroup.procs files never reach a process the guest can see, and the inner
 * child is born in the machine's cgroups. */
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
                _cleanup_free_ char *procs = NULL, *leader = NULL, *lprocs = NULL, *devices = NULL;
                bool is_unified = unified && streq(*p, unified);
                int fd, fb = -EBADF;

                /* the v1 devices cgroup carries the device policy wherever the host mounts it
                 * (berth-devices.c): a command outside it would hold CAP_MKNOD with no policy */
                devices = strjoin(*p, "/devices.list");
                if (!devices)
                        return log_oom();
                bool required = is_unified || access(devices, F_OK) >= 0;

                if (j->n >= ELEMENTSOF(j->fd)) {
                        if (required)
                                return log_error_errno(-E2BIG, "Machine '%s' is in more cgroup hierarchies than berthctl "
                                                               "can join (%zu): refusing to run a command outside %s.",
                                                       m->name, ELEMENTSOF(j->fd), *p);
                        log_debug("Not joining '%s' of machine '%s': too many hierarchies.", *p, m->name);
                        continue;
                }
                procs = strjoin(*p, "/cgroup.procs");
                if (!procs)
                        return log_oom();
                fd = open(procs, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
                if (fd < 0) {
                        if (required)
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
                j->required[j->n] = required;
                j->n++;
        }
        return 0;
}

/* Join (write "0": ourselves), then close the fds. Logs. */
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

/* STDIO[0..2] onto 0, 1, 2 (through fds above them, so that they may be any of 0..2). */
static int move_stdio(const int stdio[3]) {
        int tmp[3] = { -EBADF, -EBADF, -EBADF }, r = 0;

        for (int i = 0; i < 3 && r >= 0; i++) {
                tmp[i] = fcntl(stdio[i], F_DUPFD_CLOEXEC, 3);
                if (tmp[i] < 0)
                        r = negative_errno();
        }
        for (int i = 0; i < 3 && r >= 0; i++)
                if (dup2(tmp[i], i) < 0)
                        r = negative_errno();
        for (int i = 0; i < 3; i++)
                safe_close(tmp[i]);
        return r;
}

/* The guest's pty: the master goes to berthctl, the slave becomes our stdio and controlling
 * terminal, owned by the user the command runs as. In the inner child, confined: the guest's
 * /dev/pts is the guest's, and whatever it put there is opened as a guest process would open it.
 * Logs. */
static int inner_pty(const ExecRequest *req, int sock) {
        const char *machine = req->m->name;
        _cleanup_close_ int master = -EBADF, slave = -EBADF;
        struct statfs sfs;
        int unlock = 0;

        master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (master < 0)
                return log_error_errno(negative_errno(), "Failed to open /dev/pts/ptmx in machine '%s': %m", machine);
        if (fstatfs(master, &sfs) < 0 || sfs.f_type != DEVPTS_SUPER_MAGIC)
                return log_error_errno(-ENOTTY, "Failed to set up a pty in machine '%s': its /dev/pts/ptmx is not on devpts.",
                                       machine);
        if (fd_set_nonblock(master, false) < 0 || ioctl(master, TIOCSPTLCK, &unlock) < 0 ||
            (slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0 || ioctl(slave, TIOCSCTTY, 0) < 0)
                return log_error_errno(negative_errno(), "Failed to set up a pty in machine '%s': %m", machine);
        /* The session's user owns its terminal, group tty, 0620, as login and machinectl leave it:
         * write(1) and mesg need it, and so does whatever reopens ttyname() (script, ssh's and
         * gpg's passphrase prompts), which fails on a pty of root's. On the fd: the name in the
         * guest's /dev/pts is the guest's to play with. In the guest's user namespace, so the ids
         * are the guest's. Not fatal: the guest's root may have dropped CAP_CHOWN. */
        if (fchmod(slave, 0620) < 0 || fchown(slave, req->uid, req->tty_gid) < 0)
                log_warning_errno(negative_errno(), "Failed to give the pty in machine '%s' to UID %u, ignoring: %m",
                                  machine, (unsigned) req->uid);
        for (int i = 0; i < 3; i++)
                if (dup2(slave, i) < 0)
                        return log_error_errno(negative_errno(), "Failed to make the pty our stdio: %m");
        return send_message(sock, EXEC_MSG_MASTER, 0, master);
}

#if BERTH_TEST_HOOKS
static bool park_exec = false;
#endif

/* The memory that /proc/PID/environ shows, from the host's /proc (the guest's could say anything). */
static int environment_range(uintptr_t *ret_start, uintptr_t *ret_end) {
        _cleanup_free_ char *stat = NULL;
        unsigned long long start, end;
        char *p;
        int r;

        r = read_full_file("/proc/self/stat", &stat, NULL);
        if (r < 0)
                return r;
        /* after the name in parentheses: field 3 on; env_start and env_end are fields 50 and 51 */
        p = strrchr(stat, ')');
        for (int field = 2; p && field < 50; field++)
                p = strchr(p + 1, ' ');
        if (!p || sscanf(p, " %llu %llu", &start, &end) != 2 || end <= start || end - start > 16 * 1024 * 1024)
                return -EBADMSG;
        *ret_start = (uintptr_t) start;
        *ret_end = (uintptr_t) end;
        return 0;
}

/* The inner child: in all of the machine's namespaces and cgroups, confined like the container.
 * GO is the read end of a pipe whose write end the waiter closes once the confiner is gone: only
 * then is the guest's cgroup free of host processes (for systemd in the guest, a PID 0 in
 * init.scope). Never returns. */
_noreturn_ static void exec_inner_child(const ExecRequest *req, int sock, int go) {
        sigset_t none;
        char c;
        int r;

        /* our parent is the waiter (CLONE_PARENT): we die with it; if it is gone already, we are
         * the guest init's child now (our parent outside the PID namespace shows as 0) */
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != 0)
                _exit(EXIT_FAILURE);
        for (size_t i = 0; i < ELEMENTSOF(forwarded_signals); i++)
                (void) signal(forwarded_signals[i], SIG_DFL);
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);

#if BERTH_TEST_HOOKS
        /* Test builds only (meson -Dtest-hooks=true): stop where we are most exposed, the first
         * moment the guest can see us (still root, holding the socket and the stdio pipes), so that
         * a test inside the container can check what the guest sees, without racing. */
        if (park_exec)
                (void) raise(SIGSTOP);
#endif

        while (read(go, &c, 1) < 0 && errno == EINTR)
                ;
        safe_close(go);

        /* not the host terminal's session: it must not become our controlling terminal */
        if (setsid() < 0) {
                r = log_error_errno(negative_errno(), "Failed to start a session: %m");
                goto fail;
        }
        if (req->pty) {
                r = inner_pty(req, sock);
                if (r < 0)
                        goto fail;
        }
        if (req->uid != 0 || req->gid != 0) {
                if (setgroups(req->n_groups, req->groups) < 0 || setresgid(req->gid, req->gid, req->gid) < 0 ||
                    setresuid(req->uid, req->uid, req->uid) < 0) {
                        r = log_error_errno(negative_errno(), "Failed to change to UID %u: %m", (unsigned) req->uid);
                        goto fail;
                }
                /* a credential change clears the parent-death signal */
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        }

        if (req->home && chdir(req->home) < 0)
                (void) chdir("/");

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

/* Everything of the confiner up to the clone: see the process model above. Logs. */
static int confine(const ExecRequest *req, int pidfd, int sock, int go, const int stdio[3]) {
        const MachineRecord *rec = req->m->record;
        Settings s = { .syscall_allow = rec->syscall_allow, .syscall_deny = rec->syscall_deny };
        uintptr_t env_start = 0, env_end = 0;
        _cleanup_(seccomp_filter_freep) SeccompFilter *filter = NULL;
        CGroupJoin cg = {};
        int flags, r;

        /* The caller's environment (host paths, tokens, the agent sockets of a login session) is in
         * the memory that /proc/PID/environ of the inner child shows the guest until it executes
         * the command, which gets req->env, a copy. Found on the host, blanked below. */
        r = environment_range(&env_start, &env_end);
        if (r < 0)
                return log_error_errno(r, "Failed to find our environment in /proc/self/stat: %m");
#if BERTH_TEST_HOOKS
        park_exec = getenv("BERTH_TEST_PARK_EXEC");
#endif

        /* On the host still: the program cache is under the host's /run. */
        r = seccomp_prepare(&s, rec->capabilities, &filter);
        if (r < 0)
                return r;
        r = cgroup_join_open(req->m, &cg);
        if (r >= 0)
                r = cgroup_join(&cg, req->m->name);
        cgroup_join_done(&cg);
        if (r < 0)
                return r;

        /* whatever fds berthctl was started with (a directory fd of the host would be a way out of
         * the container's root) stay outside; the stdio are our pipes from here on */
        r = move_stdio(stdio);
        if (r >= 0)
                r = close_all_fds((const int[]) { pidfd, sock, go }, 3);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the file descriptors of the command: %m");
        /* our errors go to berthctl through the stderr pipe now: not to a journal socket, which
         * after setns() would be the guest's */
        (void) unsetenv("JOURNAL_STREAM");
        log_open();
        memset((void *) env_start, 0, env_end - env_start);
        clearenv();

        flags = namespace_flags(req->m->leader);
        if (setns(pidfd, flags) < 0)
                return log_error_errno(negative_errno(), "Failed to join the namespaces of machine '%s': %m", req->m->name);
        /* setns() of the mount namespace put us at its root: the tree, since berth pivoted there */
        if (flags & CLONE_NEWUSER) {
                /* the guest's root, not an unmapped host root, in a user namespace of its own */
                (void) setgroups(0, NULL);
                if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
                        return log_error_errno(negative_errno(), "Failed to become root of the user namespace of machine '%s': %m",
                                               req->m->name);
        }
        /* none of the caller's supplementary groups (they are host gids) go along; a user of the guest
         * gets the guest's in the inner child */
        if (!(flags & CLONE_NEWUSER) && setgroups(0, NULL) < 0)
                return log_error_errno(negative_errno(), "Failed to drop the supplementary groups: %m");
        /* nor the caller's session keyring: an anonymous one of its own */
        if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, 0, 0, 0, 0) < 0 && errno != ENOSYS)
                log_debug_errno(negative_errno(), "Failed to join a keyring of our own, ignoring: %m");
        /* the root only: the home directory is the guest's to choose (an automount or FUSE directory
         * could hang us), so the inner child enters it, confined and as the user */
        if (chdir("/") < 0)
                return log_error_errno(negative_errno(), "Failed to enter the root of machine '%s': %m", req->m->name);

        /* the container's own order (berth-child.c): no_new_privs, the filter, then the bounding set */
        if (rec->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return log_error_errno(negative_errno(), "Failed to set no_new_privs: %m");
        r = seccomp_apply(&s, rec->capabilities, filter);
        if (r < 0)
                return r;
        return capability_apply(rec->capabilities);
}

/* The confiner: host PID namespace, in the machine's cgroups from its first steps until it exits
 * right after the clone. Never returns. */
_noreturn_ static void exec_confiner(const ExecRequest *req, int pidfd, int sock, int go, const int stdio[3]) {
        pid_t pid;
        int r;

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        r = confine(req, pidfd, sock, go, stdio);
        if (r < 0)
                goto fail;
        pidfd = safe_close(pidfd);
        /* the waiter's child, not ours: we leave the guest's cgroups by exiting at once */
        pid = (pid_t) syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, NULL, NULL, 0);
        if (pid < 0) {
                r = log_error_errno(negative_errno(), "Failed to fork in machine '%s': %m", req->m->name);
                goto fail;
        }
        if (pid == 0)
                exec_inner_child(req, sock, go);
        _exit(EXIT_SUCCESS);

fail:
        (void) send_message(sock, EXEC_MSG_FAILED, r, -EBADF);
        _exit(EXIT_FAILURE);
}

/* Our only child but the confiner, which is gone: the inner child (from the kernel's list, not
 * from anything the guest could have written). 0 if there is none. */
static pid_t inner_child_pid(void) {
        _cleanup_free_ char *s = NULL;
        char path[64], *e = NULL;
        unsigned long p;

        snprintf(path, sizeof path, "/proc/self/task/%d/children", (int) getpid());
        if (read_full_file(path, &s, NULL) < 0)
                return 0;
        errno = 0;
        p = strtoul(s, &e, 10);
        if (errno != 0 || e == s || p == 0 || p > INT_MAX)
                return 0;
        return (pid_t) p;
}

/* The waiter: host PID namespace and cgroups, never visible to the guest; the parent of the inner
 * child, through CLONE_PARENT. Forwards signals to it and passes on its exit status. Never
 * returns. */
_noreturn_ static void exec_waiter(const ExecRequest *req, int pidfd, int sock, const int stdio[3]) {
        _cleanup_close_pair_ int go[2] = { -EBADF, -EBADF };
        int status;
        pid_t pid;

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        install_forwarding();
        if (pipe2(go, O_CLOEXEC) < 0) {
                (void) send_message(sock, EXEC_MSG_FAILED, log_error_errno(negative_errno(), "Failed to create a pipe: %m"),
                                    -EBADF);
                _exit(EXIT_FAILURE);
        }
        pid = fork();
        if (pid < 0) {
                (void) send_message(sock, EXEC_MSG_FAILED, log_error_errno(negative_errno(), "Failed to fork: %m"), -EBADF);
                _exit(EXIT_FAILURE);
        }
        if (pid == 0) {
                go[1] = safe_close(go[1]);
                exec_confiner(req, pidfd, sock, go[0], stdio);
        }
        /* the streams and the socket end with the command, not with us */
        (void) close_all_fds((const int[]) { go[1] }, 1);
        for (int i = 0; i < 3; i++)
                (void) close(i);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        _exit(EXIT_FAILURE);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                _exit(EXIT_FAILURE); /* it told berthctl why */
        forward_to = inner_child_pid();
        go[1] = safe_close(go[1]);
        for (;;) {
                pid = waitpid(-1, &status, 0);
                if (pid < 0 && errno == EINTR)
                        continue;
                if (pid < 0)
                        _exit(EXIT_FAILURE);
                break;
        }
        if (WIFEXITED(status))
                _exit(WEXITSTATUS(status));
        _exit(128 + WTERMSIG(status));
}

/* One direction of the stdio forwarding: FROM (read) to TO (write). The pipe ends are ours and
 * non-blocking; berthctl's own stdio are left as they are. */
typedef struct Pump {
        int from, to;
        bool own_from, own_to; /* our pipe ends, closed when done */
        char buf[16384];
        size_t len, off;
        bool done;
} Pump;

static void pump_close(Pump *p) {
        if (p->own_from)
                p->from = safe_close(p->from);
        if (p->own_to)
                p->to = safe_close(p->to);
        p->done = true;
}

/* Moves what is there without blocking on our pipe ends. Returns true if anything moved. */
static bool pump_run(Pump *p, bool drain) {
        bool moved = false;
        ssize_t k;

        while (!p->done) {
                if (p->len == 0) {
                        k = read(p->from, p->buf, sizeof p->buf);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k < 0 && errno == EAGAIN)
                                return moved;
                        if (k <= 0) {
                                pump_close(p);
                                return true;
                        }
                        p->len = (size_t) k;
                        p->off = 0;
                        moved = true;
                }
                k = write(p->to, p->buf + p->off, p->len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN)
                        return moved;
                if (k < 0) {
                        /* EPIPE: the reader is gone; the writer gets its EPIPE as it would have */
                        pump_close(p);
                        return true;
                }
                p->off += (size_t) k;
                p->len -= (size_t) k;
                moved = true;
                /* a blocking FROM (our stdin) is read again only when poll() says so */
                if (p->len == 0 && !p->own_from && !drain)
                        return moved;
        }
        return moved;
}

/* Forwards our stdio to and from the command's pipes until the helper exits (then what the command
 * left in the pipes is still passed on). Returns the helper's exit status or a negative errno. */
static int stdio_loop(pid_t child, int in_w, int out_r, int err_r) {
        _cleanup_close_ int pidfd = -EBADF;
        Pump *pumps = NULL;
        bool exited = false;
        int status = -1;
        int r = 0;

        pumps = calloc(3, sizeof(Pump));
        if (!pumps)
                return log_oom();
        pumps[0] = (Pump) { .from = STDIN_FILENO, .to = in_w, .own_to = true };
        pumps[1] = (Pump) { .from = out_r, .to = STDOUT_FILENO, .own_from = true };
        pumps[2] = (Pump) { .from = err_r, .to = STDERR_FILENO, .own_from = true };
        if (fd_set_nonblock(in_w, true) < 0 || fd_set_nonblock(out_r, true) < 0 || fd_set_nonblock(err_r, true) < 0) {
                r = log_error_errno(negative_errno(), "Failed to set up the streams of the command: %m");
                goto finish;
        }
        pidfd = pidfd_open_(child);
        if (pidfd < 0) {
                r = log_error_errno(negative_errno(), "Failed to watch the command: %m");
                goto finish;
        }

        while (!exited) {
                struct pollfd p[4] = { { .fd = pidfd, .events = POLLIN } };

                for (int i = 0; i < 3; i++) {
                        Pump *u = pumps + i;
                        p[i + 1].fd = -1;
                        if (u->done)
                                continue;
                        if (u->len == 0)
                                p[i + 1] = (struct pollfd) { .fd = u->from, .events = POLLIN };
                        else
                                p[i + 1] = (struct pollfd) { .fd = u->to, .events = POLLOUT };
                }
                if (poll(p, 4, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        r = log_error_errno(negative_errno(), "Failed to poll: %m");
                        goto finish;
                }
                if (p[0].revents)
                        exited = true;
                for (int i = 0; i < 3; i++)
                        if (p[i + 1].revents)
                                (void) pump_run(pumps + i, false);
        }
        /* what the command wrote before it ended is in the pipes; what something it left behind
         * writes later is not waited for */
        for (int i = 1; i < 3; i++)
                while (!pumps[i].done && pump_run(pumps + i, true))
                        ;

finish:
        for (int i = 0; i < 3; i++)
                pump_close(pumps + i);
        free(pumps);
        for (;;) {
                if (waitpid(child, &status, 0) < 0) {
                        if (errno == EINTR)
                                continue;
                        return r < 0 ? r : log_error_errno(-ECHILD, "Lost the command.");
                }
                break;
        }
        if (r < 0)
                return r;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

typedef struct PtyLoop {
        Event *event;
        pid_t child;
        int status;
} PtyLoop;

static int on_exec_child(EventSource *s, const siginfo_t *si, void *userdata) {
        PtyLoop *l = userdata;
        l->status = si->si_code == CLD_EXITED ? si->si_status : 128 + si->si_status;
        return event_exit(l->event, 0);
}

static int on_exec_signal(EventSource *s, const struct signalfd_siginfo *si, void *userdata) {
        PtyLoop *l = userdata;
        (void) kill(l->child, (int) si->ssi_signo);
        return 0;
}

/* Forwards between our stdio and the pty until the helper exits. Returns its status. */
static int pty_loop(pid_t child, int master) {
        _cleanup_(forwarder_freep) Forwarder *f = NULL;
        PtyLoop l = { .child = child, .status = EXIT_FAILURE };
        int r;

        r = event_new(&l.event);
        if (r < 0)
                return log_error_errno(r, "Failed to create an event loop: %m");
        r = event_add_child(l.event, NULL, child, WEXITED, on_exec_child, &l);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(forwarded_signals); i++)
                r = event_add_signal(l.event, NULL, forwarded_signals[i], on_exec_signal, &l);
        if (r >= 0)
                r = forwarder_new(l.event, master, CONSOLE_INTERACTIVE, true, NULL, NULL, &f);
        if (r < 0) {
                (void) kill(child, SIGKILL);
                (void) waitpid(child, NULL, 0);
                event_unref(l.event);
                return log_error_errno(r, "Failed to forward the pty: %m");
        }
        r = event_loop(l.event);
        f = forwarder_free(f); /* prints what is left, restores the terminal */
        event_unref(l.event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return l.status;
}

/* Runs REQ, returns the command's exit status as VERB_EXIT_STATUS() or a negative errno. */
static int exec_run(const ExecRequest *req) {
        _cleanup_close_pair_ int pair[2] = { -EBADF, -EBADF }, in[2] = { -EBADF, -EBADF },
                                 out[2] = { -EBADF, -EBADF }, err[2] = { -EBADF, -EBADF };
        _cleanup_close_ int pidfd = -EBADF, master = -EBADF, helper_fd = -EBADF;
        struct sigaction sa_pipe = { .sa_handler = SIG_IGN }, saved_pipe;
        sigset_t ss, saved;
        int r, status, failed = 0;
        pid_t pid;

        r = exec_seal_self(); /* done by the verbs already: then only checked */
        if (r < 0)
                return r;
        r = machine_open_leader(req->m, &pidfd);
        if (r < 0)
                return r;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
                return log_error_errno(negative_errno(), "Failed to create a socket pair: %m");
        /* The command's stdio, also with a pty (where they carry what the helpers log until the pty
         * is set up): pipes that we forward, never our own fds, which may be host files that the
         * guest could reopen through /proc/PID/fd/N in another mode. */
        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
                return log_error_errno(negative_errno(), "Failed to create pipes: %m");

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
                exec_waiter(req, pidfd, pair[1], (const int[]) { in[0], out[1], err[1] });
        }
        pair[1] = safe_close(pair[1]);
        in[0] = safe_close(in[0]);
        out[1] = safe_close(out[1]);
        err[1] = safe_close(err[1]);
        forward_to = pid;
        install_forwarding();
        (void) sigaction(SIGPIPE, &sa_pipe, &saved_pipe);

        /* Until EOF: the command was executed (the socket is O_CLOEXEC) or setup failed; or the
         * helper is gone (the guest may have taken a copy of the socket from the inner child). */
        helper_fd = pidfd_open_(pid);
        for (;;) {
                struct pollfd p[2] = { { .fd = pair[0], .events = POLLIN }, { .fd = helper_fd, .events = POLLIN } };
                ExecMessage msg;
                int fd;

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (!p[0].revents)
                        break;
                r = recv_message(pair[0], &msg, &fd);
                if (r <= 0)
                        break;
                /* from a process the guest can ptrace: any number at all */
                if (msg.error >= 0 || msg.error < -4095)
                        msg.error = -EIO;
                if (msg.type == EXEC_MSG_MASTER && fd >= 0 && master < 0)
                        master = fd;
                else if (msg.type == EXEC_MSG_EXEC_FAILED && msg.error < 0) {
                        errno = -msg.error;
                        failed = log_error_errno(msg.error, "Failed to execute '%s' in machine '%s': %m",
                                                 req->file ?: req->argv[0], req->m->name);
                        safe_close(fd);
                } else {
                        failed = msg.error < 0 ? msg.error : -EIO;
                        safe_close(fd);
                }
        }

        if (!failed && req->pty && master < 0)
                failed = log_error_errno(-EIO, "Failed to get a pty of machine '%s': its process ended early.",
                                         req->m->name);
        if (!failed && req->pty) {
                /* the command's stdio is the pty; what went to the pipes was the helpers' */
                in[1] = safe_close(in[1]);
                out[0] = safe_close(out[0]);
                if (fd_set_nonblock(err[0], true) >= 0)
                        (void) pump_run(&(Pump) { .from = TAKE_FD(err[0]), .to = STDERR_FILENO, .own_from = true }, true);
                /* pty_loop() takes the signals through the event loop: blocked again */
                (void) sigprocmask(SIG_BLOCK, &ss, NULL);
                status = pty_loop(pid, TAKE_FD(master));
        } else
                status = stdio_loop(pid, TAKE_FD(in[1]), TAKE_FD(out[0]), TAKE_FD(err[0]));
        forward_to = 0;
        (void) sigaction(SIGPIPE, &saved_pipe, NULL);
        (void) sigprocmask(SIG_SETMASK, &saved, NULL);
        if (failed)
                return failed;
        if (status < 0)
                return status;
        return VERB_EXIT_STATUS(status);
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

        /* first, so that the work before exec_run() is not done twice */
        r = exec_seal_self();
        if (r < 0)
                return r;
        r = machine_get_berth_logged(argv[1], &m);
        if (r < 0)
                return r;
        req.m = m;
        req.argv = argv + 2;
        req.tty_gid = (gid_t) -1;
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
        fd = open_regular_in_root(root, path, &st);
        if (fd < 0)
                return fd;
        if (st.st_size > 16 * 1024 * 1024)
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

/* The tty group of the guest's /etc/group, (gid_t) -1 when it has none: the group of the pty a
 * user gets (devpts gives every pty the group of its gid= option, berth's 5, which need not be the
 * guest's). */
static gid_t guest_tty_group(const MachineInfo *m) {
        _cleanup_free_ char *data = NULL;
        char *save = NULL;

        if (read_guest_file(m, "etc/group", &data) < 0)
                return (gid_t) -1;
        for (char *l = strtok_r(data, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                char *f[3] = {};
                size_t n = 0;
                unsigned gid;

                for (char *p = l, *c; n < 3 && (c = strsep(&p, ":"));)
                        f[n++] = c;
                if (n == 3 && streq(f[0], "tty") && safe_atou(f[2], &gid) >= 0)
                        return (gid_t) gid;
        }
        return (gid_t) -1;
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

        r = exec_seal_self();
        if (r < 0)
                return r;
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
        req.tty_gid = guest_tty_group(m);
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

/* machinectl's shell and login without a machine (or with ".host") mean the host, through
 * machined's PTY forwarding and a PAM login session. berthctl has neither (it works without
 * systemd) and a shell of berthctl's own environment would not be the clean session the habit
 * expects: refused, with the ways that do it. */
static int refuse_host(const char *verb) {
        return log_error_errno(-EOPNOTSUPP, "berthctl %s needs a machine: berthctl does not open sessions on the host "
                                            "('.host', machinectl's meaning of no machine). Name a machine, or use "
                                            "'machinectl %s' where systemd runs, or 'su -'.",
                               verb, verb);
}

static bool is_host(const char *machine) {
        return isempty(machine) || streq(machine, ".host");
}

int verb_shell(int argc, char *argv[]) {
        _cleanup_free_ char *user = NULL;
        const char *machine, *at;

        if (argc < 2)
                return refuse_host("shell");
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
        if (is_host(machine))
                return refuse_host("shell");
        if (!user && arg.uid && !(user = strdup(arg.uid)))
                return log_oom();
        return run_as_user(machine, user ?: "root", argv + 2, false);
}

int verb_login(int argc, char *argv[]) {
        if (argc < 2 || is_host(argv[1]))
                return refuse_host("login");
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
