/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <linux/sched.h> /* struct clone_args, CLONE_INTO_CGROUP */
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "berth-cgroup.h"
#include "berth-child.h"
#include "berth-console.h"
#include "berth-container.h"
#include "berth-cpu.h"
#include "berth-devices.h"
#include "berth-image.h"
#include "berth-mount.h"
#include "berth-network.h"
#include "berth-port.h"
#include "berth-seccomp.h"
#include "berth-register.h"
#include "berth-rootsrc.h"
#include "berth-runtime.h"
#include "berth-limits.h"
#include "berth-stale.h"
#include "berth-userns.h"
#include "berth-startup.h"
#include "event-loop.h"
#include "log.h"
#include "systemd-proto.h"
#include "registry.h"
#include "util.h"

#define DEFAULT_STOP_TIMEOUT_USEC (90 * USEC_PER_SEC)
#define EXIT_STATUS_REBOOT 133

/* berth, the monitor: stays in the host's namespaces, owns every piece of
 * host state the container needs (lock, record, cgroups, work dirs) and tears
 * it down on every exit path; a later start cleans up after a monitor that was
 * killed (berth-stale.c). The process model, the namespaces of each process
 * and the trust boundary: berth-startup.h. */
typedef struct Monitor {
        const Settings *settings;
        RootSource root;         /* the tree, resolved once into a detached mount */
        Runtime runtime;         /* what this run derived from the settings; the child gets it read-only */
        Event *event;
        pid_t pid;               /* the container's PID 1, in our PID namespace */
        pid_t setup_pid;         /* the child that builds the tree: PID 1 itself, or with -U PID 2 until
                                  * the locked mount namespace is made (0: reaped) */
        int init_sync_fd;        /* -U: the monitor's end of the sync socket to PID 1 (not owned) */
        int setup_mntns;         /* the setup child's mount namespace, held from the locked copy until the
                                  * payload runs: the last process to leave a mount namespace tears it down
                                  * (umounts and an RCU grace period, 0.1-3 ms here), and that should not be
                                  * the child on its way to the payload, nor, with -U, the setup child we
                                  * wait for; we drop it in parallel with the payload */
        int stop_signal;
        unsigned n_stop_requests;
        EventSource *stop_timer;
        int notify_fd;
        Forwarder *forwarder;
        CGroup *cgroup;
        bool cgroup_joined;         /* the setup child joins the container cgroup itself (CGroupJoin) */
        int init_joined_fd;         /* -U: where PID 1 says whether it joined it too (ChildParams) */
        Registration *registration; /* systemd's unit and machined's registration, or NULL */
        Image *image;               /* --image=: loop devices and the detached tree, or NULL */
        Network *network;           /* the machine's links (berth-network.c) */
        Ports *ports;               /* --port= forwards: nftables table, localhost proxy (berth-port.c) */
        int ports_lock;             /* held from ports_reserve() until the record lists the ports */
        UserNamespace userns;       /* the container's user namespace and its range, or none */
        MachineRecord record;
        char **cgroup_paths, **cgroup_detached, **scratch, **loops; /* the record's lists */
        char uuid[37];                           /* the record's UUID= */
        int root_lock;                           /* the tree's or image's lock */
        bool ready;
        int exit_status;
        bool exited;
} Monitor;

/* ---- event handlers ---- */

static void monitor_kill(Monitor *m, int sig) {
        char buf[16];
        if (m->pid <= 0 || m->exited)
                return;
        log_debug("Sending %s to the container.", signal_to_string(sig, buf));
        if (kill(m->pid, sig) < 0 && errno != ESRCH)
                log_warning_errno(negative_errno(), "Failed to signal the container, ignoring: %m");
}

static int on_stop_timeout(EventSource *src, uint64_t usec, void *userdata) {
        Monitor *m = userdata;
        log_warning("Machine '%s' did not stop in time, killing it.", m->settings->machine);
        monitor_kill(m, SIGKILL);
        return 0;
}

static void record_set_state(Monitor *m, const char *state) {
        m->record.state = (char *) state;
        (void) registry_write(&m->record);
}

static int on_stop_signal(EventSource *src, const struct signalfd_siginfo *si, void *userdata) {
        Monitor *m = userdata;
        uint64_t timeout = m->settings->stop_timeout_usec ?: DEFAULT_STOP_TIMEOUT_USEC;
        int r;

        if (m->n_stop_requests++ > 0 || m->stop_signal == SIGKILL) {
                monitor_kill(m, SIGKILL);
                return 0;
        }
        if (!m->settings->quiet)
                log_info("Asking machine '%s' to stop (send the signal again to kill it).", m->settings->machine);
        record_set_state(m, "stopping");
        monitor_kill(m, m->stop_signal);
        if (timeout != UINT64_MAX) {
                r = event_add_time_relative(m->event, &m->stop_timer, timeout, on_stop_timeout, m);
                if (r < 0)
                        log_warning_errno(r, "Failed to arm the stop timeout, ignoring: %m");
        }
        return 0;
}

static int on_child(EventSource *src, const siginfo_t *si, void *userdata) {
        Monitor *m = userdata;

        m->exited = true;
        switch (si->si_code) {
        case CLD_EXITED:
                m->exit_status = si->si_status;
                break;
        case CLD_KILLED:
        case CLD_DUMPED:
                /* reboot(2) in a PID namespace ends its init with SIGHUP
                 * (restart) or SIGINT (power off, halt) */
                if (si->si_status == SIGHUP)
                        m->exit_status = EXIT_STATUS_REBOOT;
                else if (si->si_status == SIGINT)
                        m->exit_status = 0;
                else
                        m->exit_status = 128 + si->si_status;
                break;
        default:
                m->exit_status = EXIT_FAILURE;
        }
        return event_exit(m->event, 0);
}

/* The console's hot keys. The terminal is raw here: a line ends in "\r" so that the next one starts
 * at its left edge. */
static void on_escape(void *userdata, ConsoleEscape what) {
        Monitor *m = userdata;
        const char *name = m->settings->machine;

        switch (what) {
        case CONSOLE_ESCAPE_KILL:
                if (!m->settings->quiet)
                        log_info("\rKilling machine '%s' (Ctrl-] pressed three times).\r", name);
                monitor_kill(m, SIGKILL);
                break;
        case CONSOLE_ESCAPE_POWEROFF:
                if (m->record.poweroff_signal <= 0) {
                        log_warning("\rMachine '%s' runs a command, not a booted init: it has no poweroff signal "
                                    "(Ctrl-] three times kills it).\r", name);
                        break;
                }
                if (!m->settings->quiet)
                        log_info("\rPowering off machine '%s' (Ctrl-] Ctrl-] p).\r", name);
                monitor_kill(m, m->record.poweroff_signal);
                break;
        case CONSOLE_ESCAPE_REBOOT:
                if (m->record.reboot_signal <= 0) {
                        log_warning("\rMachine '%s' runs a command, not a booted init: it cannot reboot.\r", name);
                        break;
                }
                if (!m->settings->quiet)
                        log_info("\rRebooting machine '%s' (Ctrl-] Ctrl-] r).\r", name);
                monitor_kill(m, m->record.reboot_signal);
                break;
        }
}

/* The guest's sd_notify() messages: READY=1 and STATUS= are passed on to our
 * own supervisor (systemd, with Type=notify). Only our container can reach
 * this socket (it lives in its /run), but its words are still untrusted:
 * nothing but those two keys goes on, and only in printable form. */
/* The guest's sd_notify() messages: READY=1 and STATUS= are passed on to our
 * own supervisor (systemd, with Type=notify). Only our container can reach
 * this socket (it lives in its /run), but its words are still untrusted:
 * nothing but those two keys goes on, and only printable characters. */
static int on_notify(EventSource *src, int fd, uint32_t revents, void *userdata) {
        Monitor *m = userdata;
        char buf[4096], out[sizeof buf + 16];
        size_t k = 0;
        ssize_t n;

        n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
        if (n <= 0)
                return 0;
        buf[n] = 0;
        /* what goes on travels as one message, as it came: a listener that stops at
         * READY=1 still sees the STATUS= that came with it */
        for (char *line, *p = buf; (line = strsep(&p, "\n"));) {
                if (streq(line, "READY=1")) {
                        if (m->ready)
                                continue;
                        m->ready = true;
                        record_set_state(m, "ready");
                        if (!m->settings->notify_ready)
                                continue; /* we said READY=1 ourselves at the start */
                } else if (!startswith(line, "STATUS="))
                        continue;
                if (k > 0)
                        out[k++] = '\n';
                for (const char *c = line; *c && k < sizeof out - 2; c++)
                        out[k++] = (*c >= 0x20 && *c != 0x7f) ? *c : '?';
        }
        out[k] = 0;
        if (k > 0)
                (void) notify_send(out);
        return 0;
}

/* ---- start ---- */

/* A helper on the host enters the container's mount namespace and then a
 * user namespace less privileged than the host's: the container's own
 * (USERNS_FD, --private-users), or a new, empty one. Its new mount namespace,
 * owned by that user namespace, is a copy whose mounts the kernel locks (see
 * join_locked_mounts() in berth-child.c). It runs in the host's PID namespace
 * so it takes no PID in the container.
 *
 * The helper shares our memory and fd table and we sleep until it has exited
 * (CLONE_VM | CLONE_VFORK | CLONE_FILES, as posix_spawn() does): no copy of
 * our page tables and no copy-on-write faults after it, which cost more than
 * the rest of the helper's work where page table updates are expensive (a
 * paravirtualised guest: 1-5 ms a start here). It opens the new namespace into
 * our fd table and leaves its result in ours; while it runs we do nothing, so
 * it may use errno. It shares neither fs_struct nor thread group with us,
 * which setns() and unshare() of a user namespace require. */
typedef struct LockedMountsHelper {
        pid_t child;
        int userns_fd;
        int proc_fd; /* the host's /proc: once in the container's mount namespace, /proc is the
                      * container's, where the helper has no PID */
        int fd;    /* out: the new mount namespace */
        int setup_fd; /* out: the child's own (the setup) mount namespace, kept for the monitor */
        int error; /* out: positive errno */
#if BERTH_TEST_HOOKS
        bool die;  /* BERTH_TEST_KILL_LOCKED_MOUNTS_HELPER: killed before it does anything */
#endif
} LockedMountsHelper;

static int locked_mounts_helper(void *userdata) {
        LockedMountsHelper *h = userdata;
        char path[64];
        int fd;

#if BERTH_TEST_HOOKS
        /* not raise(): it signals the thread id in the TLS we share with the monitor */
        if (h->die)
                (void) kill((pid_t) syscall(SYS_getpid), SIGKILL);
#endif
        snprintf(path, sizeof path, "%d/ns/mnt", (int) h->child);
        fd = h->setup_fd = openat(h->proc_fd, path, O_RDONLY | O_CLOEXEC);
        snprintf(path, sizeof path, "%d/ns/mnt", (int) getpid());
        if (fd < 0 || setns(fd, CLONE_NEWNS) < 0 ||
            (h->userns_fd >= 0 ? setns(h->userns_fd, CLONE_NEWUSER) : unshare(CLONE_NEWUSER)) < 0 ||
            unshare(CLONE_NEWNS) < 0 || (h->fd = openat(h->proc_fd, path, O_RDONLY | O_CLOEXEC)) < 0)
                h->error = errno > 0 ? errno : EIO;
        return 0;
}

/* Returns an fd of the new mount namespace, and one of the child's own (the setup) mount namespace
 * in RET_SETUP_FD. Logs. */
static int make_locked_mount_namespace(pid_t child, int userns_fd, int *ret_fd, int *ret_setup_fd) {
        _Alignas(16) char stack[16384];
        _cleanup_close_ int proc_fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC), fd = -EBADF, setup_fd = -EBADF;
        LockedMountsHelper h = { .child = child, .userns_fd = userns_fd, .proc_fd = proc_fd, .fd = -EBADF,
                                 .setup_fd = -EBADF };
        CpuPin pin;
        char sig[16];
        int status;
        pid_t pid;

        if (proc_fd < 0)
                return log_error_errno(negative_errno(), "Failed to open /proc: %m");
#if BERTH_TEST_HOOKS
        h.die = getenv("BERTH_TEST_KILL_LOCKED_MOUNTS_HELPER") != NULL;
#endif
        pid = clone_on_our_cpu(&pin, locked_mounts_helper, stack + sizeof stack,
                               CLONE_VM | CLONE_VFORK | CLONE_FILES | SIGCHLD, &h, NULL);
        if (pid < 0)
                return log_error_errno(negative_errno(), "Failed to start a helper for the locked mount namespace: %m");
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return log_error_errno(negative_errno(), "Failed to wait for the helper of the locked mount namespace: %m");
        /* shared fd table: whatever it opened is ours to close */
        fd = h.fd;
        setup_fd = h.setup_fd;
        /* killed (the OOM killer, an admin), it leaves neither an fd nor an error: say so here, where
         * the cause is known, not let the child fail on a missing fd */
        if (WIFSIGNALED(status))
                return log_error_errno(-EPROTO, "Failed to make a locked mount namespace for the container: its helper was killed by %s.",
                                       signal_to_string(WTERMSIG(status), sig));
        if (h.error == ENOENT && setup_fd < 0)
                return -ESRCH; /* the child is gone: not logged, its own error says why (the caller) */
        if (h.error > 0)
                return log_error_errno(-h.error, "Failed to make a locked mount namespace for the container: %m");
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || fd < 0)
                return log_error_errno(-EPROTO, "Failed to make a locked mount namespace for the container: its helper ended without one.");
        *ret_fd = TAKE_FD(fd);
        *ret_setup_fd = TAKE_FD(setup_fd);
        return 0;
}

/* ---- the monitor's side of the start-up protocol (berth-startup.h) ---- */

static int step_cgroup_ready(Monitor *m, Startup *p, const SyncMessage *msg, int fd) {
        int r;

        /* we move only who does not join by itself (spawn()): the setup child where it was not born
         * in the cgroup, -U's PID 1 where it was not asked to (otherwise it joins, or we move it,
         * before it takes over: step_locked_mounts()) */
        r = m->cgroup_joined ? 0 : cgroup_attach(m->cgroup, m->setup_pid);
        if (r >= 0 && m->pid != m->setup_pid && m->init_joined_fd < 0)
                r = cgroup_attach(m->cgroup, m->pid);
        if (r < 0)
                return log_error_errno(r, "Failed to move the container into its cgroup: %m");
        return startup_send(p, STARTUP_CGROUP_READY, 0, 0, -EBADF);
}

static int step_links_moved(Monitor *m, Startup *p, const SyncMessage *msg, int fd) {
        int r;

        /* the links, while the child waits in its new network namespace: there before anything of
         * the guest runs. The record names them even after a failure half way, for the teardown
         * of a monitor that dies meanwhile. */
        r = network_setup(m->network, m->settings, m->pid);
        m->record.network_links = network_record_links(m->network);
        m->record.network_zone = (char *) network_record_zone(m->network);
        m->record.interfaces = network_interfaces(m->network);
        if (m->record.network_links || m->record.network_zone)
                (void) registry_write(&m->record);
        /* the forwards need the veth; the record named their table before it was made */
        if (r >= 0)
                r = ports_start(m->ports, m->event, m->network);
        if (r < 0) {
                /* before the child hears the sync socket close and says so: the error above is the one */
                (void) kill(m->pid, SIGKILL);
                return r;
        }
        return startup_send(p, STARTUP_LINKS_MOVED, 0, 0, -EBADF);
}

static int step_registered(Monitor *m, Startup *p, const SyncMessage *msg, int fd) {
        int *ifindexes;
        size_t n_ifindexes = network_ifindexes(m->network, &ifindexes);
        int r;

        /* the leader is known and in its cgroup, the guest does not run yet: machined's view is
         * complete before anything in the guest can ask for it */
        r = register_machine(m->registration, m->settings, m->runtime.uuid, m->pid, ifindexes, n_ifindexes);
        if (r < 0)
                return r;
        return startup_send(p, STARTUP_REGISTERED, 0, 0, -EBADF);
}

static int step_console(Monitor *m, Startup *p, const SyncMessage *msg, int fd) {
        const Settings *s = m->settings;
        int r;

        if (fd < 0)
                return log_error_errno(-EBADMSG, "The container's setup sent no console.");
        r = forwarder_new(m->event, fd, s->console_mode, s->quiet, on_escape, m, &m->forwarder);
        if (r < 0) {
                safe_close(fd);
                return log_error_errno(r, "Failed to set up the console: %m");
        }
        r = forwarder_set_background(m->forwarder, s->background);
        if (r < 0)
                return r;
        /* a console no terminal is attached to gets a socket for `berthctl console`; in the
         * scratch dir, so that the record's removal and stale cleanup take it along */
        if (s->console_mode == CONSOLE_PASSIVE || s->console_mode == CONSOLE_READ_ONLY) {
                _cleanup_free_ char *dir = NULL, *path = NULL;
                if (registry_scratch_dir(s->machine, &dir) >= 0 && (path = strjoin(dir, "/console")) &&
                    forwarder_listen(m->forwarder, path) >= 0)
                        m->record.console = (char *) forwarder_socket_path(m->forwarder);
                else
                        log_warning("No console socket for machine '%s', 'berthctl console' will not work.",
                                    s->machine);
        }
        return 0;
}

static int step_notify(Monitor *m, Startup *p, const SyncMessage *msg, int fd) {
        int r;

        if (fd < 0)
                return log_error_errno(-EBADMSG, "The container's setup sent no notify socket.");
        m->notify_fd = fd;
        r = event_add_io(m->event, NULL, fd, EPOLLIN, on_notify, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the notify socket: %m");
        return 0;
}

/* -U: waits for the setup child's exit after its last step. Logs. */
static int reap_setup_child(Monitor *m) {
        int status;

        if (waitpid(m->setup_pid, &status, 0) < 0)
                return log_error_errno(negative_errno(), "Failed to wait for the container's setup: %m");
        m->setup_pid = 0;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return log_error_errno(-EPROTO, "The container's setup ended with status 0x%x after its last step.",
                                       (unsigned) status);
        return 0;
}

/* -U: PID 1 in the container's cgroup before it takes over. It moved itself there while the setup
 * child worked (its write to cgroup.procs waits for the kernel's grace period, see CGroupJoin), or
 * says it could not; then we move it. Logs. */
static int init_in_cgroup(Monitor *m) {
        char c = 0;
        ssize_t n;

        if (m->init_joined_fd < 0)
                return 0;
        while ((n = read(m->init_joined_fd, &c, 1)) < 0 && errno == EINTR)
                ;
        m->init_joined_fd = safe_close(m->init_joined_fd);
        if (n == 1 && c == '1')
                return 0;
        /* (nothing read: it died, which its wait status tells the event loop) */
        int r = cgroup_attach(m->cgroup, m->pid);
        if (r < 0)
                return log_error_errno(r, "Failed to move the container into its cgroup: %m");
        return 0;
}

static int step_locked_mounts(Monitor *m, Startup *p, const SyncMessage *msg, int fd) {
        _cleanup_close_ int ns = -EBADF;
        int r;

        r = make_locked_mount_namespace(m->setup_pid, m->userns.fd, &ns, &m->setup_mntns);
        if (r == -ESRCH) {
                /* the child went on meanwhile (its limits, the host's files) and failed there */
                r = startup_child_error(p);
                return r < 0 ? r : log_error_errno(-ESRCH, "The container's setup ended before its mounts could be locked.");
        }
        if (r < 0)
                return r;
        if (m->setup_pid == m->pid)
                return startup_send(p, STARTUP_LOCKED_MOUNTS, 0, 0, ns);
        /* -U: the setup child's part is done. It goes (a host-root process never shares the PID
         * namespace with anything of the guest's), then PID 1 takes the start-up over. */
        r = startup_send(p, STARTUP_LOCKED_MOUNTS, 0, 0, -EBADF);
        if (r < 0)
                return r;
        r = reap_setup_child(m);
        if (r >= 0)
                r = init_in_cgroup(m);
        if (r < 0)
                return r;
        startup_handover(p, m->init_sync_fd, STARTUP_LOCKED_MOUNTS);
        return startup_send(p, STARTUP_LOCKED_MOUNTS, 0, 0, ns);
}

static int step_exec(Monitor *m, Startup *p, const SyncMessage *msg, int fd) {
        safe_close(fd);
        m->stop_signal = msg->value;
        m->record.poweroff_signal = msg->value == SIGKILL ? 0 : msg->value;
        m->record.reboot_signal = msg->value2;
        return 0;
}

/* What the monitor does at each step: its own steps are done and sent, the child's are
 * received first (MSG, FD) and then handled. NULL: a barrier only. */
typedef int (*MonitorStepFn)(Monitor *m, Startup *p, const SyncMessage *msg, int fd);
static const MonitorStepFn monitor_steps[_STARTUP_STEP_MAX] = {
        [STARTUP_CGROUP_READY] = step_cgroup_ready,
        [STARTUP_LINKS_MOVED] = step_links_moved,
        [STARTUP_REGISTERED] = step_registered,
        [STARTUP_CONSOLE] = step_console,
        [STARTUP_NOTIFY] = step_notify,
        [STARTUP_PIVOTED] = NULL,
        [STARTUP_LOCKED_MOUNTS] = step_locked_mounts,
        [STARTUP_EXEC] = step_exec,
};

static int run_startup(Monitor *m, int sync_fd) {
        Startup p;
        int r;

        startup_init(&p, sync_fd, STARTUP_MONITOR, m->settings);
        while (p.next < _STARTUP_STEP_MAX) {
                StartupStep step = p.next;
                SyncMessage msg = {};
                int fd = -EBADF;

                if (startup_step_sender(step) == STARTUP_CHILD) {
                        r = startup_recv(&p, step, &msg, &fd);
                        if (r < 0)
                                return r;
                }
                r = monitor_steps[step] ? monitor_steps[step](m, &p, &msg, fd) : 0;
                if (!monitor_steps[step])
                        safe_close(fd);
                if (r < 0)
                        return r;
        }
        return startup_finish(&p);
}

typedef struct InitHelper {
        const ChildParams *params;
        const CpuPin *pin; /* the monitor's CPUs, to take back */
        int result; /* out: PID 1's pid, or a negative errno (logged) */
} InitHelper;

static int init_helper(void *userdata) {
        InitHelper *h = userdata;
        pid_t init = 0;
        int r;

        /* started on the monitor's CPU (clone_on_our_cpu()), it takes the whole mask back at once:
         * PID 1 and the guest must not inherit one CPU (until --cpu-affinity= sets theirs) */
        r = cpu_unpin(h->pin);
        if (r < 0) {
                h->result = log_error_errno(r, "Failed to give the container's PID 1 its CPUs back: %m");
                return 0;
        }
        r = child_init_spawn(h->params, &init);
        h->result = r < 0 ? r : init;
        return 0;
}

/* The init helper's stack: PID 1, cloned from the helper, goes on running on (its copy of) it until
 * it execs, so it is as large as a main thread's; only the pages touched cost anything. */
#define INIT_HELPER_STACK_SIZE (8U * 1024U * 1024U)

/* -U: the container's PID 1, made in its own PID namespace by a helper (child_init_spawn()), and
 * the PID namespace entered for the setup child's clone (RET_HOST_PIDNS: ours, to go back to).
 * We are in the container's network namespace meanwhile: the helper and PID 1 are made in it.
 * The helper shares our memory (CLONE_VM, CLONE_VFORK: we sleep until it has made PID 1 and
 * exited), not our fd table or file system information (setns() into a user namespace refuses a
 * shared one): a fork() here copied our page tables once more and took a copy-on-write fault for
 * every page either side touched afterwards, a few ms for a process that only makes another one.
 * PID 1's clone from it is the one copy of our memory. */
static int spawn_init(Monitor *m, const ChildParams *params, int *ret_host_pidns) {
        _cleanup_close_ int pidns = -EBADF, host_pidns = -EBADF;
        CpuPin pin = {};
        InitHelper h = { .params = params, .pin = &pin, .result = -EPROTO };
        size_t page = (size_t) sysconf(_SC_PAGESIZE);
        char path[64];
        void *stack;
        pid_t helper;
        int status = 0;

        stack = mmap(NULL, INIT_HELPER_STACK_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
        if (stack == MAP_FAILED)
                return log_error_errno(negative_errno(), "Failed to allocate a stack for the helper of the container's PID 1: %m");
        /* a guard page below it: an overflow faults, never writes into whatever is mapped there */
        (void) mprotect(stack, page, PROT_NONE);
        /* we wait for it (CLONE_VFORK): on our CPU */
        helper = clone_on_our_cpu(&pin, init_helper, (char *) stack + INIT_HELPER_STACK_SIZE,
                                  CLONE_VM | CLONE_VFORK | SIGCHLD, &h, NULL);
        if (helper < 0) {
                (void) munmap(stack, INIT_HELPER_STACK_SIZE);
                return log_error_errno(negative_errno(), "Failed to start a helper for the container's PID 1: %m");
        }
        while (waitpid(helper, &status, 0) < 0 && errno == EINTR)
                ;
        /* PID 1 runs on a copy of its own */
        (void) munmap(stack, INIT_HELPER_STACK_SIZE);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || h.result == 0)
                return log_error_errno(-EPROTO, "The helper for the container's PID 1 ended without a word.");
        if (h.result < 0)
                return h.result; /* it logged */
        m->pid = (pid_t) h.result;

        snprintf(path, sizeof path, "/proc/%d/ns/pid", (int) m->pid);
        pidns = open(path, O_RDONLY | O_CLOEXEC);
        host_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
        if (pidns < 0 || host_pidns < 0)
                return log_error_errno(negative_errno(), "Failed to open the container's PID namespace: %m");
        if (setns(pidns, CLONE_NEWPID) < 0)
                return log_error_errno(negative_errno(), "Failed to enter the container's PID namespace: %m");
        *ret_host_pidns = TAKE_FD(host_pidns);
        return 0;
}

static int monitor_cgroup(Monitor *m);
static int monitor_record(Monitor *m);

/* The setup child's clone: with JOIN, clone3() into the container's cgroup2 cgroup (CGroupJoin),
 * and *RET_JOINED says the child joins the rest itself. A kernel without clone3() or
 * CLONE_INTO_CGROUP (before 5.7) makes it with clone(), where we are, as before, and the monitor
 * moves it (step_cgroup_ready()). A raw clone behaves like fork() here: we are single-threaded. */
static pid_t clone_child(unsigned long flags, const CGroupJoin *join, ChildParams *params, bool *ret_joined) {
        *ret_joined = false;
#if BERTH_TEST_HOOKS
        /* BERTH_TEST_NO_CLONE_INTO_CGROUP=1: a kernel without it */
        if (!isempty(getenv("BERTH_TEST_NO_CLONE_INTO_CGROUP")))
                join = NULL;
#endif
        if (join && join->unified_fd >= 0) {
                struct clone_args args = {
                        .flags = flags | CLONE_INTO_CGROUP,
                        .exit_signal = SIGCHLD,
                        .cgroup = (uint64_t) join->unified_fd,
                };
                pid_t pid;

                params->cgroup_join = join;
                pid = (pid_t) syscall(SYS_clone3, &args, sizeof args);
                if (pid >= 0) {
                        *ret_joined = true;
                        return pid;
                }
                log_debug_errno(negative_errno(), "clone3() into the container's cgroup failed, moving the child there "
                                "afterwards: %m");
                params->cgroup_join = NULL;
        }
        return (pid_t) syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, 0);
}

static int spawn(Monitor *m) {
        const Settings *s = m->settings;
        _cleanup_close_pair_ int pair[2] = { -EBADF, -EBADF }, init_pair[2] = { -EBADF, -EBADF };
        const NamespaceEntry *net = &m->runtime.namespaces.ns[NAMESPACE_NET];
        bool own_pidns = m->runtime.namespaces.ns[NAMESPACE_PID].source == NAMESPACE_USERNS;
        _cleanup_close_ int netns = -EBADF, host_netns = -EBADF, host_pidns = -EBADF;
        unsigned long flags = namespace_plan_clone_flags(&m->runtime.namespaces);
        _cleanup_(cgroup_join_close) CGroupJoin join = CGROUP_JOIN_NULL;
        bool use_join;
        const char *term = getenv("TERM");
        pid_t pid;
        int r;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
                return log_error_errno(negative_errno(), "Failed to create the sync socket: %m");

        /* The cgroups before the child, so that it is born into them (clone_child()). */
        r = monitor_cgroup(m);
        if (r < 0)
                return r;
        r = cgroup_join_open(m->cgroup, own_pidns, &join);
        use_join = r >= 0;
        if (r < 0)
                log_debug_errno(r, "The child cannot join the container's cgroup by itself, moving it there: %m");

        ChildParams params = {
                .settings = s,
                .runtime = &m->runtime,
                .root = &m->root,
                .userns = &m->userns,
                .sync_fd = pair[1],
                .term = s->console_mode == CONSOLE_PIPE || isempty(term) ? "vt220" : term,
                .cgroup_joined_fd = -EBADF,
        };

        /* --network-namespace-path=: the child is born in that namespace. We enter it for the clone
         * only (nothing else happens meanwhile: we are single-threaded) and go back. */
        if (net->source == NAMESPACE_PATH && net->after == NAMESPACE_AT_CLONE) {
                netns = open(net->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                host_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
                if (netns < 0 || host_netns < 0)
                        return log_error_errno(negative_errno(), "Failed to open network namespace '%s': %m",
                                               s->network_namespace_path);
                if (setns(netns, CLONE_NEWNET) < 0)
                        return log_error_errno(negative_errno(), "Failed to join network namespace '%s': %m",
                                               s->network_namespace_path);
        }

        /* -U with a private network: the network namespace the monitor made with the user namespace */
        if (net->source == NAMESPACE_USERNS) {
                host_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
                if (host_netns < 0 || setns(m->userns.netns_fd, CLONE_NEWNET) < 0)
                        return log_error_errno(negative_errno(), "Failed to enter the container's network namespace: %m");
        }

        /* -U: PID 1 first, in a PID namespace of the user namespace's; the setup child is born in it */
        r = 0;
        if (own_pidns) {
                ChildParams init_params = params;
                _cleanup_close_pair_ int joined[2] = { -EBADF, -EBADF };

                /* PID 1 joins the container's cgroup by itself, beside the setup child's work
                 * (CGroupJoin.procs_fd) */
                if (use_join && pipe2(joined, O_CLOEXEC) >= 0) {
                        init_params.cgroup_join = &join;
                        init_params.cgroup_joined_fd = joined[1];
                        m->init_joined_fd = TAKE_FD(joined[0]);
                }

                if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, init_pair) < 0)
                        r = log_error_errno(negative_errno(), "Failed to create the sync socket: %m");
                init_params.sync_fd = init_pair[1];
                if (r >= 0)
                        r = spawn_init(m, &init_params, &host_pidns);
                m->init_sync_fd = init_pair[0];
        }

        /* It works beside us while we write the record: on another CPU. */
        cpu_spread_prepare(&params.spread);
        pid = r < 0 ? 0 : clone_child(flags, use_join ? &join : NULL, &params, &m->cgroup_joined);
        if (pid != 0 || r < 0) {
                /* we would go on in the container's namespaces: nothing below may run */
                if (host_netns >= 0 && setns(host_netns, CLONE_NEWNET) < 0) {
                        log_error_errno(negative_errno(), "Failed to return to the host's network namespace, aborting: %m");
                        abort();
                }
                if (host_pidns >= 0 && setns(host_pidns, CLONE_NEWPID) < 0) {
                        log_error_errno(negative_errno(), "Failed to return to our PID namespace, aborting: %m");
                        abort();
                }
        }
        if (r < 0)
                return r;
        if (pid < 0)
                return log_error_errno(negative_errno(), "Failed to create the container's namespaces: %m");
        if (pid > 0) {
                cpu_spread_child(&params.spread, pid);
                log_timing("monitor", "clone");
                if (m->cgroup_joined)
                        log_debug("The child was born in the container's cgroup2 cgroup and joins the others itself.");
        }
        if (pid == 0) {
                pair[0] = safe_close(pair[0]);
                /* (the tasks files it keeps: child_prologue() writes to them first) */
                netns = safe_close(netns);
                host_netns = safe_close(host_netns);
                child_main(&params);
        }
        m->setup_pid = pid;
        if (!own_pidns)
                m->pid = pid;
        pair[1] = safe_close(pair[1]);
        init_pair[1] = safe_close(init_pair[1]);

        r = event_add_child(m->event, NULL, m->pid, WEXITED, on_child, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the container: %m");

        cgroup_join_close(&join);
        r = monitor_record(m);
        if (r < 0) {
                /* before the child hears the sync socket close and says so: the error above is the one */
                if (m->setup_pid != m->pid)
                        (void) kill(m->setup_pid, SIGKILL);
                (void) kill(m->pid, SIGKILL);
                return r;
        }
        r = run_startup(m, pair[0]);
        m->setup_mntns = safe_close(m->setup_mntns);
        return r;
}

static int setup_event(Monitor *m) {
        static const int stop_signals[] = { SIGTERM, SIGINT, SIGHUP };
        sigset_t ss;
        int r;

        r = event_new(&m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to create the event loop: %m");
        sigemptyset(&ss);
        sigaddset(&ss, SIGCHLD);
        sigaddset(&ss, SIGWINCH);
        /* a reader of our stdout that goes away must not kill the monitor; blocked, not
         * ignored, so that the payload does not inherit an ignored SIGPIPE */
        sigaddset(&ss, SIGPIPE);
        for (size_t i = 0; i < ELEMENTSOF(stop_signals); i++)
                sigaddset(&ss, stop_signals[i]);
        /* systemd stops the container's scope with SIGRTMIN+4 to every process in it
         * (KillSignal=, berth-register.c): to us it is a stop request like SIGTERM */
        sigaddset(&ss, SIGRTMIN + 4);
        if (sigprocmask(SIG_BLOCK, &ss, NULL) < 0)
                return log_error_errno(negative_errno(), "Failed to block signals: %m");
        for (size_t i = 0; i < ELEMENTSOF(stop_signals); i++) {
                r = event_add_signal(m->event, NULL, stop_signals[i], on_stop_signal, m);
                if (r < 0)
                        return log_error_errno(r, "Failed to watch signal %i: %m", stop_signals[i]);
        }
        r = event_add_signal(m->event, NULL, SIGRTMIN + 4, on_stop_signal, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch SIGRTMIN+4: %m");
        return 0;
}

static void announce_exit(const Monitor *m) {
        const char *name = m->settings->machine;

        /* with --pipe our stderr is the payload's too: as with nspawn, its output stays its own */
        if (m->settings->quiet || m->settings->console_mode == CONSOLE_PIPE)
                return;
        if (m->exit_status == 0)
                log_info("Container %s exited successfully.", name);
        else if (m->exit_status == EXIT_STATUS_REBOOT)
                log_info("Container %s is being rebooted.", name);
        else if (m->exit_status > 128)
                log_info("Container %s was terminated by signal %i.", name, m->exit_status - 128);
        else
                log_info("Container %s failed with error code %i.", name, m->exit_status);
}

/* Two machines never write one tree or image: the lock is shared only for uses that never write. */
static int lock_root(const Settings *s, const RootSource *rs, bool read_only, int *ret_fd) {
        bool shared = read_only || s->ephemeral || s->volatile_mode == VOLATILE_OVERLAY || s->volatile_mode == VOLATILE_YES;
        const char *what = s->image ? "Image" : "Tree", *path = s->image ?: s->directory;
        int r;

        /* a tree through its root source's mount; an image before anything of it is attached */
        r = rs ? root_source_lock(rs, shared, ret_fd) : registry_lock_root(path, shared, ret_fd);
        if (r == -EBUSY)
                return log_error_errno(r, "%s '%s' is in use by another machine: stop it first%s.", what, path,
                                       s->ephemeral ? "" : ", or run this one with --ephemeral if the other one is too");
        if (r < 0)
                return log_error_errno(r, "Failed to lock %s '%s': %m", s->image ? "image" : "tree", path);
        return 0;
}

/* --image=: locked before anything is attached; the checks of the tree run on
 * the detached mount (the root source), which exists nowhere in the host's namespace. */
static int open_image(const Settings *s, int *root_lock, Image **ret) {
        ImageOptions o = {
                .policy = s->image_policy,
                .root_hash = s->root_hash,
                .root_hash_size = s->root_hash_size,
                .root_hash_sig = s->root_hash_sig,
                .root_hash_sig_size = s->root_hash_sig_size,
                .verity_data = s->verity_data,
        };
        int r;

        if (s->read_only || s->volatile_mode == VOLATILE_YES || s->volatile_mode == VOLATILE_STATE)
                o.flags |= IMAGE_READ_ONLY;
        if (s->ephemeral || s->volatile_mode == VOLATILE_OVERLAY)
                o.flags |= IMAGE_EPHEMERAL;
        r = lock_root(s, NULL, o.flags != 0, root_lock);
        if (r < 0)
                return r;
        return image_open(s->image, &o, ret);
}

/* The tree: an image, or a directory after --template=; resolved once into the root source, locked,
 * given its user namespace (-U), checked through it. Logs. */
static int monitor_open_root(Monitor *m) {
        const Settings *s = m->settings;
        int r;

        if (s->image) {
                /* the user namespace between the partitions' mounts and their tree: its idmapping
                 * goes on each partition, below -x's overlays, which cannot be idmapped */
                r = open_image(s, &m->root_lock, &m->image);
                if (r >= 0)
                        r = userns_setup(s, image_root_mount(m->image), &m->userns);
                if (r >= 0)
                        r = image_assemble(m->image, m->userns.idmap ? m->userns.fd : -EBADF,
                                           userns_owner(&m->userns));
                if (r >= 0)
                        r = root_source_from_image(s, m->image->tree_fd, &m->root);
        } else {
                r = root_prepare(s);
                if (r >= 0)
                        r = root_source_open(s, &m->root);
                if (r >= 0)
                        r = lock_root(s, &m->root, false, &m->root_lock);
                if (r >= 0)
                        r = userns_setup(s, m->root.mount_fd, &m->userns);
        }
        if (r < 0)
                return r;
        log_timing("monitor", "user-namespace");
        return root_source_check(&m->root, s);
}

/* The record, with what stale cleanup needs after a crash of ours: every cgroup path, scratch dir
 * and loop device. Logs. */
static int monitor_write_record(Monitor *m) {
        const Settings *s = m->settings;
        int r;

        m->cgroup_paths = cgroup_paths(m->cgroup);
        m->cgroup_detached = cgroup_detached(m->cgroup);
        if (!m->cgroup_paths || !m->cgroup_detached || runtime_scratch(&m->runtime, &m->scratch) < 0 ||
            (m->image && !(m->loops = image_loop_paths(m->image))))
                return log_oom();
        m->record = (MachineRecord) {
                .name = s->machine,
                .pid = getpid(),
                .root = s->image ?: s->directory,
                .state = (char *) "starting",
                .cgroup = m->cgroup->name,
                .cgroup_paths = m->cgroup_paths,
                .cgroup_detached = m->cgroup_detached,
                .scratch = m->scratch,
                .loop_devices = m->loops,
                .uuid = id128_to_uuid_string(m->runtime.uuid, m->uuid),
                .class = (char *) "container",
                .service = (char *) "berth",
                .unit = (char *) register_unit_name(m->registration),
                .timestamp = now_usec(CLOCK_REALTIME),
                .capabilities = m->runtime.capabilities,
                .no_new_privileges = s->no_new_privileges,
                .uid_shift = m->userns.fd >= 0 ? m->userns.range.range.start : 0,
                .uid_range = m->userns.fd >= 0 ? m->userns.range.range.count : 0,
                .syscall_allow = s->syscall_allow,
                .syscall_deny = s->syscall_deny,
                .netns = netns_self(),
                .ports = ports_record(m->ports),
                .nft_table = (char *) ports_record_table(m->ports),
        };
        r = registry_write(&m->record);
        if (r < 0)
                return log_error_errno(r, "Failed to record machine '%s' in %s: %m", s->machine, BERTH_MACHINES_DIR);
        /* our ports are in the record: a machine starting after us sees them taken */
        m->ports_lock = safe_close(m->ports_lock);
        return 0;
}

/* The container's cgroups, made before the clone: the setup child is born into them, or (where it
 * cannot join by itself, see clone_child()) waits for STARTUP_CGROUP_READY (step_cgroup_ready(),
 * which moves it in) before its cgroup namespace, /sys/fs/cgroup or anything of the guest. The
 * cgroup of a monitor SIGKILLed before its record is found as before: a lock file without a record
 * (cgroup_find()). Logs. */
static int monitor_cgroup(Monitor *m) {
        int r;

        r = cgroup_create(m->settings->machine, devices_apply_policy, &m->cgroup);
        if (r < 0)
                return r;
        log_timing("monitor", "cgroup");
#if BERTH_TEST_HOOKS
        /* BERTH_TEST_DIE_BEFORE_RECORD: killed with the cgroups made and no record yet */
        if (getenv("BERTH_TEST_DIE_BEFORE_RECORD"))
                (void) kill(getpid(), SIGKILL);
#endif
        if (m->userns.fd >= 0) {
                /* the guest's cgroup belongs to its root, so that its init can manage it */
                r = cgroup_delegate(m->cgroup, userns_owner(&m->userns));
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The record that names the cgroups (and what else stale cleanup needs), right after the clone,
 * while the child joins its namespaces; a failure here kills it (monitor_teardown()). Logs. */
static int monitor_record(Monitor *m) {
        int r;

        r = monitor_write_record(m);
        if (r < 0)
                return r;
        log_timing("monitor", "record");
        return 0;
}

/* Every exit path: the container goes, then the host state it had, in reverse order of making. */
static void monitor_teardown(Monitor *m) {
        forwarder_free(m->forwarder); /* restores the terminal first: nothing below may leave it raw */
        m->forwarder = NULL;
        m->setup_mntns = safe_close(m->setup_mntns);
        if (m->setup_pid > 0 && m->setup_pid != m->pid) {
                /* -U, a failed start: the setup child first. It is PID 2 of PID 1's namespace, and
                 * PID 1 does not finish dying while a process of its namespace is left unreaped. */
                (void) kill(m->setup_pid, SIGKILL);
                (void) waitpid(m->setup_pid, NULL, 0);
        }
        if (m->pid > 0 && !m->exited) {
                /* failed setup or event loop: the container goes */
                (void) kill(m->pid, SIGKILL);
                (void) waitpid(m->pid, NULL, 0);
        }
        m->registration = register_close(m->registration);
        /* before the links: the table and the localhost listeners */
        m->ports = ports_free(m->ports);
        m->record.ports = NULL;
        m->record.nft_table = NULL;
        m->ports_lock = safe_close(m->ports_lock);
        /* the guest is gone: moved interfaces go back, links and an unused zone bridge go away */
        m->network = network_teardown(m->network);
        m->record.network_links = m->record.interfaces = NULL;
        m->record.network_zone = NULL;
        log_timing("monitor", "teardown: container, registration, network");
        if (m->cgroup) {
                int q = cgroup_destroy(m->cgroup);
                if (q < 0)
                        log_warning_errno(q, "Failed to remove the cgroups of machine '%s', ignoring: %m",
                                          m->settings->machine);
        }
        log_timing("monitor", "teardown: cgroups");
        runtime_done(&m->runtime);
        root_source_done(&m->root);
        /* the container is gone, its mounts with it: with our fds closed the loop devices go */
        m->image = image_free(m->image);
        userns_done(&m->userns);
        m->root_lock = safe_close(m->root_lock);
        (void) registry_remove(m->settings->machine);
        cgroup_free(m->cgroup);
        m->init_joined_fd = safe_close(m->init_joined_fd);
        strv_free(m->cgroup_paths);
        strv_free(m->cgroup_detached);
        strv_free(m->scratch);
        strv_free(m->loops);
        event_source_unref(m->stop_timer);
        safe_close(m->notify_fd);
        event_unref(m->event);
        log_timing("monitor", "teardown: the rest");
}

int container_cleanup(const char *machine) {
        _cleanup_close_ int lock = -EBADF;
        int r, n;

        r = registry_lock_machine(machine, &lock);
        if (r == -EBUSY)
                return log_error_errno(r, "Machine '%s' is running: there is nothing of a dead instance to clean up. "
                                          "Stop it first, if that is what you meant.", machine);
        if (r < 0)
                return log_error_errno(r, "Failed to lock machine '%s': %m", machine);
        n = stale_cleanup(machine, LOG_INFO);
        (void) registry_remove(machine);
        /* and what dead instances of other names left, as every start does */
        (void) stale_cleanup_all(machine);
        (void) userns_lock_cleanup_stale(USERNS_LOCK_DIR);
        if (n <= 0)
                log_info("Nothing of machine '%s' was left to clean up.", machine);
        return 0;
}

int container_run(const Settings *s, int *ret_status) {
        _cleanup_close_ int machine_lock = -EBADF;
        Monitor m = {
                .settings = s,
                .root = ROOT_SOURCE_NULL,
                .root_lock = -EBADF,
                .userns = USER_NAMESPACE_NULL,
                .notify_fd = -EBADF,
                .init_sync_fd = -EBADF,
                .init_joined_fd = -EBADF,
                .setup_mntns = -EBADF,
                .ports_lock = -EBADF,
                .stop_signal = SIGKILL,
        };
        int r;

        log_timing("monitor", "options, settings");
        /* the image's mount point too, image or not: created once, it never shows up
         * as a change on the host in the middle of someone's run */
        r = mkdir_p(BERTH_MACHINES_DIR, 0755);
        if (r >= 0)
                r = mkdir_p(BERTH_STAGING_DIR, 0755);
        if (r >= 0)
                r = mkdir_p(BERTH_IMAGE_ROOT_DIR, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to create '%s': %m", BERTH_RUN_DIR);

        r = registry_lock_machine(s->machine, &machine_lock);
        if (r == -EBUSY)
                return log_error_errno(r, "Machine '%s' is already running. Pick another name with --machine=, "
                                          "or stop the running one first.", s->machine);
        if (r < 0)
                return log_error_errno(r, "Failed to lock machine '%s': %m", s->machine);
        log_timing("monitor", "machine-lock");

        /* we own the name now: whatever a dead instance left is ours to clean, and so is
         * what dead instances of other names left */
        (void) stale_cleanup(s->machine, LOG_INFO);
        (void) stale_cleanup_all(s->machine);
        /* ranges whose holder died: their locks went with it, the files stay behind */
        (void) userns_lock_cleanup_stale(USERNS_LOCK_DIR);
        log_timing("monitor", "stale-cleanup");

        /* nspawn's man page: untrusted code must always run in a user namespace. An OS booted as
         * plain root is the common way to miss that; an explicit --private-users=no says it was chosen. */
        if (!s->quiet && s->start_mode == START_BOOT && s->userns_mode == USERNS_NO &&
            !(s->cli_set & SETTING_MASK(SETTING_PRIVATE_USERS)))
                log_warning("Machine '%s' boots without a user namespace: its root is the host's root. Pass -U to "
                            "give it one (or --private-users=no to say this is meant).", s->machine);

        m.network = network_new();
        if (!m.network) {
                r = log_oom();
                goto finish;
        }
        if (!strv_isempty(s->ports)) {
                /* a port another machine forwards is refused before anything is made */
                r = ports_lock(&m.ports_lock);
                if (r < 0) {
                        log_error_errno(r, "Failed to lock the port forwards in %s: %m", registry_run_dir());
                        goto finish;
                }
                r = ports_reserve(s, netns_self(), &m.ports);
                if (r < 0)
                        goto finish;
        }
        r = monitor_open_root(&m);
        if (r < 0)
                goto finish;
        log_timing("monitor", "open-root");
        /* what berth creates in the tree belongs to the guest's root: host root on disk where the
         * tree is mounted idmapped (or there is no user namespace), the range's root otherwise */
        r = runtime_prepare(s, &m.root, m.userns.fd >= 0 && !m.userns.idmap ? userns_owner(&m.userns) : 0,
                            &m.runtime);
        if (r < 0)
                goto finish;
        log_timing("monitor", "runtime");
        /* the scope first: the container cgroup is made below the cgroup we are in */
        r = register_open(s, &m.registration);
        if (r < 0)
                goto finish;
        log_timing("monitor", "register-open");
        r = register_unit(m.registration, s);
        if (r < 0)
                goto finish;
        log_timing("monitor", "register-unit");
        r = setup_event(&m);
        if (r < 0)
                goto finish;
        log_timing("monitor", "event-loop");

        if (!s->quiet && s->console_mode == CONSOLE_INTERACTIVE)
                log_info("Spawning container %s on %s.\nPress Ctrl-] three times within 1s to kill container.",
                         s->machine, s->image ?: s->directory);

        r = spawn(&m);
        if (r < 0)
                goto finish;

        m.record.leader = m.pid;
        record_set_state(&m, m.ready ? "ready" : "running");
        if (!s->notify_ready)
                (void) notify_send("READY=1");
        /* A limit the guest's init would run into makes it exit without a word: say so. Looked at
         * (a scan of /proc, ~10 ms) while the init starts, not before: the start-up does not wait. */
        if (s->start_mode == START_BOOT) {
                (void) host_limits_check(s->machine, false);
                log_timing("monitor", "host limits");
        }

        /* The start-up's memory (settings files, mount tables, the seccomp program) is freed by now;
         * give its pages back, so that a monitor that waits for its machine for days holds only what
         * waiting needs (issue #15: berth's own memory per machine in a fleet). */
        (void) malloc_trim(0);

        r = event_loop(m.event);
        if (r < 0)
                log_error_errno(r, "Event loop failed: %m");
        else
                r = 0;
        log_timing("monitor", "the machine ran");

finish:
        monitor_teardown(&m);
        if (r < 0)
                return r;
        announce_exit(&m);
        /* an init that failed before it was up: perhaps for a host limit, which it cannot tell */
        if (s->start_mode == START_BOOT && !m.ready && m.exit_status != 0 && m.exit_status != EXIT_STATUS_REBOOT)
                (void) host_limits_check(s->machine, true);
        *ret_status = m.exit_status;
        return 0;
}
