/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The container's console.
 *
 * Two halves:
 *
 *  - In the child (berth-child.c calls us): a private devpts instance at /dev/pts, /dev/ptmx pointing
 *    into it, and for every mode but pipe one pty allocated in that instance whose slave is bind-mounted
 *    over an empty /dev/console. The master goes back to the parent. Right before exec the payload gets
 *    /dev/console as its controlling tty and stdio.
 *
 *  - In the parent (the "forwarder"): bytes are copied between berth's stdin/stdout and the pty master
 *    on the event loop (src/shared/event-loop.h).
 *
 * Trust boundary: everything on the slave side is the container's. The host terminal is never handed
 * to the payload in the non-pipe modes: the payload's stdio is replaced by /dev/console before exec and
 * the forwarder only copies bytes, so nothing inside (TIOCSTI, TIOCLINUX, TIOCSETD, vhangup, job
 * control) can act on the host tty; a TIOCSTI on /dev/console injects into the container's own pty.
 * In pipe mode the payload inherits berth's stdio as is, which may be the host tty: the payload is put
 * in a session of its own (so the host tty is not its controlling terminal, and it gets no SIGINT,
 * SIGTSTP or SIGHUP from it), and the seccomp filter (berth-seccomp.c) denies TIOCSTI and TIOCLINUX,
 * because with CAP_SYS_ADMIN the kernel allows TIOCSTI on any tty, controlling or not.
 */

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>

#include "berth-console.h"
#include "log.h"
#include "util.h"

/* ---------------------------------------------------------------------------------------------------- */
/* Child side                                                                                           */
/* ---------------------------------------------------------------------------------------------------- */

/* The mode of the devpts instance: the same policy a host's /dev/pts has (tty group 5, 0620 slaves,
 * a world-usable ptmx so that unprivileged users in the container can open ptys). */
#define DEVPTS_PTMXMODE "0666"
#define DEVPTS_MODE "0620"
#define DEVPTS_GID_NUM 5

static int open_dev_dir(const char *root, int *ret) {
        _cleanup_close_ int root_fd = -EBADF, dev_fd = -EBADF;
        struct open_how how = {
                .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                /* ROOT/dev is the tmpfs the runtime mounted: a symlink there would be the tree's */
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        struct statfs sfs;

        root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0)
                return log_error_errno(errno, "Failed to open the container root '%s': %m", root);

        dev_fd = (int) syscall(SYS_openat2, root_fd, "dev", &how, sizeof how);
        if (dev_fd < 0)
                return log_error_errno(errno, "Failed to open '%s/dev': %m", root);

        /* We create and replace nodes in there: never do that in the tree on disk. */
        if (fstatfs(dev_fd, &sfs) < 0)
                return log_error_errno(errno, "Failed to stat '%s/dev': %m", root);
        if (sfs.f_type != TMPFS_MAGIC)
                return log_error_errno(-EINVAL, "Refusing to set up the console: '%s/dev' is not a tmpfs.", root);

        *ret = TAKE_FD(dev_fd);
        return 0;
}

/* A devpts instance is made by host root in the host's user namespace: its root directory and its
 * ptmx belong to host root, which a user namespace shows as nobody. As a host has them (and nspawn
 * gives its guests), they go to the guest's root; this changes only this instance's inodes. */
static int chown_devpts(int fd, const char *path, const char *root, uid_t owner) {
        if (owner == 0)
                return 0;
        if (fchownat(fd, path, owner, owner, AT_SYMLINK_NOFOLLOW | (path[0] ? 0 : AT_EMPTY_PATH)) < 0)
                return log_error_errno(errno, "Failed to hand '%s/dev/pts%s%s' to the container's root: %m", root,
                                       path[0] ? "/" : "", path);
        return 0;
}

static int mount_devpts(int dev_fd, const char *root, uid_t owner) {
        _cleanup_close_ int fs_fd = -EBADF, mnt_fd = -EBADF;
        char gid[16];
        int r;
        /* with a user namespace, its tty group: the range's root + 5 (the gid is the host's: the
         * instance is made in the host's user namespace) */
        const char *const opts[][2] = {
                { "ptmxmode", DEVPTS_PTMXMODE },
                { "mode", DEVPTS_MODE },
                { "gid", gid },
        };

        snprintf(gid, sizeof gid, "%u", (unsigned) owner + DEVPTS_GID_NUM);

        if (mkdirat(dev_fd, "pts", 0755) < 0 && errno != EEXIST)
                return log_error_errno(errno, "Failed to create '%s/dev/pts': %m", root);

        fs_fd = fsopen("devpts", FSOPEN_CLOEXEC);
        if (fs_fd < 0) {
                char target[64], options[128];
                _cleanup_close_ int pts_fd = -EBADF;

                if (errno != ENOSYS)
                        return log_error_errno(errno, "Failed to open a devpts file system context: %m");

                /* Kernels before 5.2: the classic call, on the directory we already hold. */
                (void) snprintf(target, sizeof target, "/proc/self/fd/%i/pts", dev_fd);
                (void) snprintf(options, sizeof options, "newinstance,ptmxmode=%s,mode=%s,gid=%s", DEVPTS_PTMXMODE,
                                DEVPTS_MODE, gid);
                if (mount("devpts", target, "devpts", MS_NOSUID | MS_NOEXEC, options) < 0)
                        return log_error_errno(errno, "Failed to mount devpts on '%s/dev/pts': %m", root);
                pts_fd = openat(dev_fd, "pts", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (pts_fd < 0)
                        return log_error_errno(errno, "Failed to open '%s/dev/pts': %m", root);
                r = chown_devpts(pts_fd, "", root, owner);
                if (r < 0)
                        return r;
                return chown_devpts(pts_fd, "ptmx", root, owner);
        }

        /* Every devpts mount is its own instance since Linux 4.7; "newinstance" says so for older ones. */
        if (fsconfig(fs_fd, FSCONFIG_SET_FLAG, "newinstance", NULL, 0) < 0)
                return log_error_errno(errno, "Failed to configure devpts (newinstance): %m");
        for (size_t i = 0; i < ELEMENTSOF(opts); i++)
                if (fsconfig(fs_fd, FSCONFIG_SET_STRING, opts[i][0], opts[i][1], 0) < 0)
                        return log_error_errno(errno, "Failed to configure devpts (%s=%s): %m", opts[i][0],
                                               opts[i][1]);
        if (fsconfig(fs_fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return log_error_errno(errno, "Failed to create a devpts instance: %m");

        mnt_fd = fsmount(fs_fd, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
        if (mnt_fd < 0)
                return log_error_errno(errno, "Failed to make a devpts mount: %m");
        /* on the detached mount: no path of the container's is looked up */
        r = chown_devpts(mnt_fd, "", root, owner);
        if (r < 0)
                return r;
        r = chown_devpts(mnt_fd, "ptmx", root, owner);
        if (r < 0)
                return r;
        if (move_mount(mnt_fd, "", dev_fd, "pts", MOVE_MOUNT_F_EMPTY_PATH) < 0)
                return log_error_errno(errno, "Failed to mount devpts on '%s/dev/pts': %m", root);
        return 0;
}

/* A world-writable /dev/ptmx that is the host's device node would allocate ptys in whatever instance
 * the kernel finds at ../pts; the symlink makes the choice explicit and matches what a host has. */
static int link_ptmx(int dev_fd, const char *root, uid_t owner) {
        if (unlinkat(dev_fd, "ptmx", 0) < 0 && errno != ENOENT)
                return log_error_errno(errno, "Failed to remove '%s/dev/ptmx': %m", root);
        if (symlinkat("pts/ptmx", dev_fd, "ptmx") < 0)
                return log_error_errno(errno, "Failed to create '%s/dev/ptmx': %m", root);
        /* the guest's root owns the link too, as /dev's other links */
        if (owner != 0 && fchownat(dev_fd, "ptmx", owner, owner, AT_SYMLINK_NOFOLLOW) < 0)
                return log_error_errno(errno, "Failed to hand '%s/dev/ptmx' to the container's root: %m", root);
        return 0;
}

/* Opens a new pty in the container's devpts instance. The slave is opened through the master
 * (TIOCGPTPEER) rather than by the name /dev/pts/N, so no path inside the container is looked up. */
static int open_pty(int dev_fd, const char *root, int *ret_master, int *ret_slave) {
        _cleanup_close_ int master = -EBADF, slave = -EBADF;
        int unlock = 0;

        master = openat(dev_fd, "pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC | O_NOFOLLOW);
        if (master < 0)
                return log_error_errno(errno, "Failed to open '%s/dev/pts/ptmx': %m", root);
        if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
                return log_error_errno(errno, "Failed to unlock the console pty: %m");

        slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (slave < 0) {
                unsigned n;
                char name[32];

                if (errno != EINVAL && errno != ENOTTY)
                        return log_error_errno(errno, "Failed to open the console pty's slave: %m");

                /* Linux < 4.13. The instance is brand new and only ours, so the name is safe. */
                if (ioctl(master, TIOCGPTN, &n) < 0)
                        return log_error_errno(errno, "Failed to get the console pty's number: %m");
                (void) snprintf(name, sizeof name, "pts/%u", n);
                slave = openat(dev_fd, name, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NOFOLLOW);
                if (slave < 0)
                        return log_error_errno(errno, "Failed to open '%s/dev/%s': %m", root, name);
        }

        *ret_master = TAKE_FD(master);
        *ret_slave = TAKE_FD(slave);
        return 0;
}

static int bind_console(int dev_fd, int slave, const char *root) {
        _cleanup_close_ int fd = -EBADF, tree_fd = -EBADF;

        /* Whatever was there (a device node copied from somewhere, say 5:1, the host's console) goes. */
        if (unlinkat(dev_fd, "console", 0) < 0 && errno != ENOENT)
                return log_error_errno(errno, "Failed to remove '%s/dev/console': %m", root);
        fd = openat(dev_fd, "console", O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return log_error_errno(errno, "Failed to create '%s/dev/console': %m", root);

        /* The slave stays as the devpts options make every pty, 0620 root:tty, as nspawn leaves its
         * console (its /dev/console links to that pty): a host's console is root's alone, but here
         * it is one more pty of the container's own instance, and writing to it reaches berth's
         * forwarder as bytes, as any other pty does its reader. */

        tree_fd = open_tree(slave, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
        if (tree_fd >= 0) {
                if (move_mount(tree_fd, "", dev_fd, "console", MOVE_MOUNT_F_EMPTY_PATH) < 0)
                        return log_error_errno(errno, "Failed to bind the console pty to '%s/dev/console': %m",
                                               root);
                return 0;
        }
        if (errno != ENOSYS)
                return log_error_errno(errno, "Failed to clone the console pty's mount: %m");

        /* Kernels before 5.2. */
        char src[64], dst[64];
        (void) snprintf(src, sizeof src, "/proc/self/fd/%i", slave);
        (void) snprintf(dst, sizeof dst, "/proc/self/fd/%i", fd);
        if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
                return log_error_errno(errno, "Failed to bind the console pty to '%s/dev/console': %m", root);
        return 0;
}

/* Our own stdout or stdin, still the ones berth was started with: the console starts with their size,
 * so that a payload that asks at once sees the right one (the forwarder sets it again, and follows it). */
static void copy_winsize(int master) {
        static const int fds[] = { STDOUT_FILENO, STDIN_FILENO };
        struct winsize ws;

        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                if (isatty(fds[i]) && ioctl(fds[i], TIOCGWINSZ, &ws) >= 0 && ws.ws_row > 0 && ws.ws_col > 0) {
                        (void) ioctl(master, TIOCSWINSZ, &ws);
                        return;
                }
}

/* Runs in the container's child: new mount and PID namespaces, before pivot_root, as real root in the
 * host's user namespace. ROOT/dev is the runtime's tmpfs with the basic nodes; nothing of the container
 * has run yet.
 *
 * Pipe mode: there is no /dev/console at all (as with nspawn). A systemd guest copes best with that:
 * console-getty.service has ConditionPathExists=/dev/console and is skipped, PID 1 keeps logging to the
 * stdio it was given. A /dev/null bound there instead would make agetty fail on it and restart in a
 * loop, and a copy of the host's console would give the guest the host's console. */
int console_setup_child(const char *root, ConsoleMode mode, uid_t owner, int *ret_master) {
        _cleanup_close_ int dev_fd = -EBADF, master = -EBADF, slave = -EBADF;
        int r;

        if (mode < 0 || mode >= _CONSOLE_MODE_MAX || mode == CONSOLE_AUTOPIPE)
                return log_error_errno(-EINVAL, "Console mode is not resolved, refusing.");

        r = open_dev_dir(root, &dev_fd);
        if (r < 0)
                return r;
        r = mount_devpts(dev_fd, root, owner);
        if (r < 0)
                return r;
        r = link_ptmx(dev_fd, root, owner);
        if (r < 0)
                return r;

        if (mode == CONSOLE_PIPE) {
                if (unlinkat(dev_fd, "console", 0) < 0 && errno != ENOENT)
                        return log_error_errno(errno, "Failed to remove '%s/dev/console': %m", root);
                *ret_master = -EBADF;
                return 0;
        }

        r = open_pty(dev_fd, root, &master, &slave);
        if (r < 0)
                return r;
        /* the guest's root owns its console (with a user namespace, the range's root) */
        if (owner != 0 && fchown(slave, owner, owner + DEVPTS_GID_NUM) < 0)
                return log_error_errno(errno, "Failed to hand the console to the container's root: %m");
        r = bind_console(dev_fd, slave, root);
        if (r < 0)
                return r;
        copy_winsize(master);

        *ret_master = TAKE_FD(master);
        return 0;
}

/* What "stty sane" gives, with UTF-8 input processing on: the guest gets a console in a known state
 * whatever the pty or a previous user left in it. The speed bits are kept. */
static int terminal_reset_sane(int fd) {
        struct termios t;

        if (tcgetattr(fd, &t) < 0)
                return negative_errno();

        t.c_iflag = BRKINT | ICRNL | IMAXBEL | IXON | IUTF8;
        t.c_oflag = OPOST | ONLCR;
        t.c_cflag = (t.c_cflag & (CBAUD | CBAUDEX | CIBAUD)) | CS8 | CREAD | HUPCL;
        t.c_lflag = ISIG | ICANON | IEXTEN | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE;

        memset(t.c_cc, 0, sizeof t.c_cc);
        t.c_cc[VINTR] = 003;    /* ^C */
        t.c_cc[VQUIT] = 034;    /* ^\ */
        t.c_cc[VERASE] = 0177;
        t.c_cc[VKILL] = 025;    /* ^U */
        t.c_cc[VEOF] = 004;     /* ^D */
        t.c_cc[VSTART] = 021;   /* ^Q */
        t.c_cc[VSTOP] = 023;    /* ^S */
        t.c_cc[VSUSP] = 032;    /* ^Z */
        t.c_cc[VREPRINT] = 022; /* ^R */
        t.c_cc[VWERASE] = 027;  /* ^W */
        t.c_cc[VLNEXT] = 026;   /* ^V */
        t.c_cc[VDISCARD] = 017; /* ^O */
        t.c_cc[VMIN] = 1;
        t.c_cc[VTIME] = 0;

        return RET_NERRNO(tcsetattr(fd, TCSANOW, &t));
}

/* Makes *FD the standard fds 0, 1 and 2 (without O_CLOEXEC); *FD is given up when it is one of them. */
static int make_stdio(int *fd) {
        for (int i = 0; i < 3; i++) {
                int r = *fd == i ? fd_set_cloexec(i, false) : RET_NERRNO(dup2(*fd, i));
                if (r < 0)
                        return r;
        }
        if (*fd < 3)
                *fd = -EBADF;
        return 0;
}

/* Runs in the container's child after pivot_root, right before exec of the payload. */
int console_attach_stdio(ConsoleMode mode) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        /* A session of its own in every mode: in pipe mode berth's stdio may be the host's terminal, which
         * must not be the payload's controlling tty; in the other modes /dev/console becomes it. */
        if (setsid() < 0 && getsid(0) != getpid())
                return log_error_errno(errno, "Failed to start a new session: %m");

        if (mode == CONSOLE_PIPE)
                return 0;

        fd = open("/dev/console", O_RDWR | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "Failed to open /dev/console: %m");
        if (ioctl(fd, TIOCSCTTY, 0) < 0)
                return log_error_errno(errno, "Failed to make /dev/console the controlling terminal: %m");
        r = terminal_reset_sane(fd);
        if (r < 0)
                return log_error_errno(r, "Failed to reset the console's terminal settings: %m");

        /* From here on the host's terminal (or whatever berth's stdio was) is no longer ours. */
        r = make_stdio(&fd);
        if (r < 0)
                return log_error_errno(r, "Failed to make /dev/console the standard fds: %m");
        return 0;
}

/* For a process of the container that is not the payload and stays (the stub init of --as-pid2): it
 * must not keep berth's stdio, which is the host's terminal when the console is not pipe. Through
 * /proc/1/fd the payload could open it again and read the user's keystrokes or write to the host
 * terminal. /dev/null, not /dev/console: the console is to become the payload's controlling tty,
 * which the stub init must therefore not take. */
int console_detach_stdio(ConsoleMode mode) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (mode == CONSOLE_PIPE)
                return 0; /* the payload has the same stdio anyway */

        fd = open("/dev/null", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "Failed to open /dev/null: %m");
        r = make_stdio(&fd);
        if (r < 0)
                return log_error_errno(r, "Failed to make /dev/null the standard fds: %m");
        return 0;
}

ConsoleMode console_mode_resolve(ConsoleMode m, bool set) {
        bool ttys = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);

        if (!set)
                return ttys ? CONSOLE_INTERACTIVE : CONSOLE_READ_ONLY;
        if (m == CONSOLE_AUTOPIPE)
                return ttys ? CONSOLE_INTERACTIVE : CONSOLE_PIPE;
        return m;
}

/* ---------------------------------------------------------------------------------------------------- */
/* Parent side: the forwarder                                                                           */
/* ---------------------------------------------------------------------------------------------------- */

/*
 * All fds are non-blocking and watched edge-triggered, with a "ready" flag per direction that only an
 * EAGAIN clears. Edge-triggered is what makes the master workable: while no one in the container has the
 * console open (a booting systemd closes and reopens /dev/console, vhangup() does the same, and between
 * console_setup_child() and the payload's exec nothing has it open) the master reads EIO and epoll
 * reports EPOLLHUP on it for as long as that lasts. Level-triggered that is a busy loop; edge-triggered
 * it is one event, and the next one comes when the guest writes again. Writes to the master fail with
 * EIO in that state too, and nothing wakes us when the slave is reopened, so pending input is retried
 * on a timer (only while there is some). The master is never closed before forwarder_free().
 *
 * Berth's stdin/stdout are reopened through /proc/self/fd when they are ttys or pipes, so that
 * O_NONBLOCK is set on a file description of our own and not on the one we share with the shell that
 * started us (which would see EAGAIN after we are gone, or after a crash). Other kinds (sockets) get
 * O_NONBLOCK on the shared description, put back in forwarder_free(). Regular files and /dev/null cannot
 * be watched with epoll; they are always ready.
 */

#define FORWARD_BUFFER_SIZE (16U * 1024U)
/* Rounds of copying per dispatch before other event sources get their turn. */
#define FORWARD_ROUNDS_MAX 64U
#define MASTER_RETRY_USEC (100U * USEC_PER_MSEC)
#define ESCAPE_CHAR 0x1d /* Ctrl-] */
#define ESCAPE_COUNT 3U
#define ESCAPE_WINDOW_USEC USEC_PER_SEC
/* forwarder_free() prints what the guest said last, but waits neither for an output that stopped moving
 * (a terminal stopped with Ctrl-S, a reader that went to sleep) nor for a guest that keeps talking. */
#define DRAIN_STALL_USEC (500U * USEC_PER_MSEC)
#define DRAIN_MAX_USEC (3U * USEC_PER_SEC)

typedef struct StdioEnd {
        int fd;           /* our reopened fd (owned) or the standard fd itself; -EBADF: none */
        bool owned;
        int saved_flags;  /* file status flags to put back on a shared description; -1: untouched */
        EventSource *source;
        bool ready;       /* no EAGAIN since the last event (always true for fds epoll cannot watch) */
        bool done;        /* EOF, error, or not used in this mode */
} StdioEnd;

struct Forwarder {
        Event *event;
        ConsoleMode mode;

        int master;
        EventSource *master_source;
        bool master_readable, master_writable;

        StdioEnd input, output;
        int winsize_fd;   /* the host tty whose size the console follows; not owned; -EBADF: none */

        struct termios saved_termios;
        bool termios_saved;

        EventSource *winch_source, *retry_source, *defer_source;

        char in_buf[FORWARD_BUFFER_SIZE];  /* stdin -> master */
        size_t in_size;
        char out_buf[FORWARD_BUFFER_SIZE]; /* master -> stdout */
        size_t out_size;

        forwarder_escape_t escape;
        void *userdata;
        unsigned escape_count;
        uint64_t escape_first;
        bool escape_pending;
        ConsoleEscape escape_what;

        /* The console socket (passive and read-only modes, see forwarder_listen()): one client at a
         * time gets the console's output and its input goes to the console. */
        int listen_fd;
        char *socket_path;
        EventSource *listen_source;
        int client;
        EventSource *client_source;
        bool client_readable, client_writable;
        char cl_buf[FORWARD_BUFFER_SIZE]; /* master -> client */
        size_t cl_size;

        /* --background=: the SGR parameters of our terminal's background while the container runs,
         * set again after every SGR sequence of the guest that may reset it; NULL: none */
        char *background;
        unsigned sgr_state;     /* 0: text, 1: after ESC, 2: in a CSI sequence */
        char sgr_params[32];    /* of the CSI sequence so far (truncated) */
        size_t sgr_len;
};

static bool forwards_output(ConsoleMode m) {
        return m == CONSOLE_INTERACTIVE || m == CONSOLE_READ_ONLY;
}

static int stdio_end_open(StdioEnd *end, int fd, int open_flags) {
        struct stat st;
        int fl;

        *end = (StdioEnd) { .fd = -EBADF, .saved_flags = -1 };

        if (fstat(fd, &st) < 0) {
                if (errno != EBADF)
                        return negative_errno();
                end->done = true; /* berth was started with this fd closed */
                return 0;
        }

        if (S_ISFIFO(st.st_mode) || isatty(fd)) {
                char path[32];
                int nfd;

                (void) snprintf(path, sizeof path, "/proc/self/fd/%i", fd);
                nfd = open(path, open_flags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
                if (nfd >= 0) {
                        end->fd = nfd;
                        end->owned = true;
                        return 0;
                }
                log_debug_errno(errno, "Failed to reopen fd %i, using it as is: %m", fd);
        }

        /* Never reopen regular files: a new description would start writing at offset 0. */
        fl = fcntl(fd, F_GETFL);
        if (fl < 0)
                return negative_errno();
        if (!(fl & O_NONBLOCK)) {
                if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
                        return negative_errno();
                end->saved_flags = fl;
        }
        end->fd = fd;
        return 0;
}

static void stdio_end_close(StdioEnd *end) {
        end->source = event_source_disable_unref(end->source);
        if (end->owned)
                end->fd = safe_close(end->fd);
        else if (end->fd >= 0 && end->saved_flags >= 0)
                (void) fcntl(end->fd, F_SETFL, end->saved_flags);
        end->fd = -EBADF;
        end->owned = false;
        end->saved_flags = -1;
        end->done = true;
}

static void stdio_end_finish(StdioEnd *end) {
        end->done = true;
        (void) event_source_set_enabled(end->source, EVENT_OFF);
}

/* Ctrl-] three times in a row, or twice and then p or r, the first and the last key within a second.
 * Returns true and sets *ret when a hot key is complete. */
static bool scan_escape(Forwarder *f, const char *p, size_t n, ConsoleEscape *ret) {
        for (size_t i = 0; i < n; i++) {
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                bool in_time = f->escape_count > 0 && now - f->escape_first <= ESCAPE_WINDOW_USEC;

                if (p[i] != ESCAPE_CHAR) {
                        if (in_time && f->escape_count == ESCAPE_COUNT - 1 && (p[i] == 'p' || p[i] == 'r')) {
                                f->escape_count = 0;
                                *ret = p[i] == 'p' ? CONSOLE_ESCAPE_POWEROFF : CONSOLE_ESCAPE_REBOOT;
                                return true;
                        }
                        f->escape_count = 0;
                        continue;
                }
                if (!in_time) {
                        f->escape_first = now;
                        f->escape_count = 1;
                } else if (++f->escape_count >= ESCAPE_COUNT) {
                        f->escape_count = 0;
                        *ret = CONSOLE_ESCAPE_KILL;
                        return true;
                }
        }
        return false;
}

static bool shovel_input(Forwarder *f) {
        ssize_t k;

        if (f->input.done || !f->input.ready || f->in_size >= sizeof f->in_buf)
                return false;

        k = read(f->input.fd, f->in_buf + f->in_size, sizeof f->in_buf - f->in_size);
        if (k < 0) {
                if (errno == EINTR)
                        return true;
                if (errno == EAGAIN) {
                        f->input.ready = false;
                        return false;
                }
                /* EIO: our terminal was hung up */
                log_debug_errno(errno, "Failed to read standard input, not forwarding input any more: %m");
                stdio_end_finish(&f->input);
                return false;
        }
        if (k == 0) {
                stdio_end_finish(&f->input);
                return false;
        }

        if (f->escape && scan_escape(f, f->in_buf + f->in_size, (size_t) k, &f->escape_what)) {
                f->escape_pending = true;
                if (f->escape_what == CONSOLE_ESCAPE_KILL)
                        stdio_end_finish(&f->input);
        }
        f->in_size += (size_t) k;
        return true;
}

static bool shovel_to_master(Forwarder *f) {
        ssize_t k;

        if (f->in_size == 0 || !f->master_writable)
                return false;

        k = write(f->master, f->in_buf, f->in_size);
        if (k < 0) {
                if (errno == EINTR)
                        return true;
                f->master_writable = false;
                if (errno == EAGAIN)
                        return false;
                if (errno == EIO) {
                        /* No one has the console open right now; keep the input for when someone does. */
                        (void) event_source_set_time_relative(f->retry_source, MASTER_RETRY_USEC);
                        (void) event_source_set_enabled(f->retry_source, EVENT_ONESHOT);
                        return false;
                }
                log_debug_errno(errno, "Failed to write to the console, dropping input: %m");
                f->in_size = 0;
                return false;
        }

        memmove(f->in_buf, f->in_buf + k, f->in_size - (size_t) k);
        f->in_size -= (size_t) k;
        return true;
}

/* True if the CSI sequence with these parameters and final byte may reset the background: an SGR
 * ("m") with an empty or "0" field (ESC[m, ESC[0m, ESC[0;1m), or 49 (the default background). */
static bool sgr_may_reset(const char *params, size_t n, char final) {
        size_t i = 0;

        if (final != 'm')
                return false;
        for (;;) {
                size_t k = i;
                while (k < n && params[k] != ';')
                        k++;
                if (k == i || (k - i == 1 && params[i] == '0') || (k - i == 2 && strncmp(params + i, "49", 2) == 0))
                        return true;
                if (k >= n)
                        return false;
                i = k + 1;
        }
}

/* Copies N bytes of the guest's output to the output buffer (room: at least BACKGROUND_GROWTH * N),
 * with our background set again after each SGR sequence that may have reset it. */
#define BACKGROUND_GROWTH 16U
static void copy_with_background(Forwarder *f, const char *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                char c = p[i];

                f->out_buf[f->out_size++] = c;
                if (f->sgr_state == 0) {
                        if (c == '\033')
                                f->sgr_state = 1;
                } else if (f->sgr_state == 1) {
                        f->sgr_state = c == '[' ? 2 : 0;
                        f->sgr_len = 0;
                } else if (c >= 0x40 && c <= 0x7e) {
                        /* the final byte */
                        if (sgr_may_reset(f->sgr_params, f->sgr_len, c))
                                f->out_size += (size_t) sprintf(f->out_buf + f->out_size, "\033[%sm", f->background);
                        f->sgr_state = 0;
                } else if (f->sgr_len < sizeof f->sgr_params)
                        f->sgr_params[f->sgr_len++] = c;
                else
                        f->sgr_params[0] = 'x'; /* too long to be a reset we know */
        }
}

static bool shovel_from_master(Forwarder *f) {
        char tinted[FORWARD_BUFFER_SIZE / BACKGROUND_GROWTH];
        ssize_t k;

        size_t room = sizeof f->out_buf - f->out_size;

        if (f->background)
                room /= BACKGROUND_GROWTH;

        if (f->client >= 0)
                room = MIN(room, sizeof f->cl_buf - f->cl_size);
        if (!f->master_readable || room == 0)
                return false;

        k = read(f->master, f->background ? tinted : f->out_buf + f->out_size, MIN(room, f->background ? sizeof tinted : room));
        if (k < 0) {
                if (errno == EINTR)
                        return true;
                f->master_readable = false;
                /* EIO: the console is closed on the container's side; the next edge says when it talks again */
                if (errno != EAGAIN && errno != EIO)
                        log_debug_errno(errno, "Failed to read from the console, ignoring: %m");
                return false;
        }
        if (k == 0) {
                f->master_readable = false;
                return false;
        }

        if (f->client >= 0) {
                memcpy(f->cl_buf + f->cl_size, f->background ? tinted : f->out_buf + f->out_size, (size_t) k);
                f->cl_size += (size_t) k;
        }
        /* Passive mode, or our stdout is gone: read anyway, so that the guest never blocks on a full console. */
        if (f->output.done)
                return true;
        if (f->background)
                copy_with_background(f, tinted, (size_t) k);
        else
                f->out_size += (size_t) k;
        return true;
}

static bool shovel_output(Forwarder *f) {
        ssize_t k;

        if (f->out_size == 0)
                return false;
        if (f->output.done) {
                f->out_size = 0;
                return true;
        }
        if (!f->output.ready)
                return false;

        k = write(f->output.fd, f->out_buf, f->out_size);
        if (k < 0) {
                if (errno == EINTR)
                        return true;
                if (errno == EAGAIN) {
                        f->output.ready = false;
                        return false;
                }
                log_debug_errno(errno, "Failed to write standard output, discarding console output from now on: %m");
                stdio_end_finish(&f->output);
                f->out_size = 0;
                return true;
        }

        memmove(f->out_buf, f->out_buf + k, f->out_size - (size_t) k);
        f->out_size -= (size_t) k;
        return true;
}

static void client_detach(Forwarder *f) {
        f->client_source = event_source_disable_unref(f->client_source);
        f->client = safe_close(f->client);
        f->cl_size = 0;
        f->in_size = 0; /* what that client typed and the console did not take yet */
}

static bool shovel_client_input(Forwarder *f) {
        ssize_t k;

        if (f->client < 0 || !f->client_readable || f->in_size >= sizeof f->in_buf)
                return false;
        k = recv(f->client, f->in_buf + f->in_size, sizeof f->in_buf - f->in_size, MSG_DONTWAIT);
        if (k < 0) {
                if (errno == EINTR)
                        return true;
                if (errno == EAGAIN) {
                        f->client_readable = false;
                        return false;
                }
        }
        if (k <= 0) {
                /* the client went away (detached): back to the previous mode */
                client_detach(f);
                return true;
        }
        f->in_size += (size_t) k;
        return true;
}

static bool shovel_client_output(Forwarder *f) {
        ssize_t k;

        if (f->client < 0 || f->cl_size == 0 || !f->client_writable)
                return false;
        k = send(f->client, f->cl_buf, f->cl_size, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k < 0) {
                if (errno == EINTR)
                        return true;
                if (errno == EAGAIN) {
                        f->client_writable = false;
                        return false;
                }
                client_detach(f);
                return true;
        }
        memmove(f->cl_buf, f->cl_buf + k, f->cl_size - (size_t) k);
        f->cl_size -= (size_t) k;
        return true;
}

static void forwarder_shovel(Forwarder *f) {
        for (unsigned round = 0;; round++) {
                bool progress = false;

                progress |= shovel_input(f);
                progress |= shovel_to_master(f);
                progress |= shovel_from_master(f);
                progress |= shovel_output(f);
                progress |= shovel_client_input(f);
                progress |= shovel_client_output(f);
                if (!progress)
                        break;
                if (round + 1 >= FORWARD_ROUNDS_MAX) {
                        /* A chatty guest: let the rest of the loop run, then continue where we are. With
                         * edge-triggered sources no new event would come for data already there. */
                        (void) event_source_set_enabled(f->defer_source, EVENT_ONESHOT);
                        break;
                }
        }

        if (f->escape_pending) {
                f->escape_pending = false;
                f->escape(f->userdata, f->escape_what); /* last: it may end the event loop */
        }
}

static int on_master(EventSource *s, int fd, uint32_t revents, void *userdata) {
        Forwarder *f = userdata;

        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
                f->master_readable = true;
        if (revents & (EPOLLOUT | EPOLLHUP | EPOLLERR))
                f->master_writable = true;
        forwarder_shovel(f);
        return 0;
}

static int on_input(EventSource *s, int fd, uint32_t revents, void *userdata) {
        Forwarder *f = userdata;

        f->input.ready = true;
        forwarder_shovel(f);
        return 0;
}

static int on_output(EventSource *s, int fd, uint32_t revents, void *userdata) {
        Forwarder *f = userdata;

        f->output.ready = true;
        forwarder_shovel(f);
        return 0;
}

static int on_retry(EventSource *s, uint64_t usec, void *userdata) {
        Forwarder *f = userdata;

        f->master_writable = true;
        forwarder_shovel(f);
        return 0;
}

static int on_defer(EventSource *s, void *userdata) {
        forwarder_shovel(userdata);
        return 0;
}

void forwarder_window_changed(Forwarder *f) {
        struct winsize ws;

        if (!f || f->winsize_fd < 0 || f->master < 0)
                return;
        if (ioctl(f->winsize_fd, TIOCGWINSZ, &ws) < 0 || ws.ws_row == 0 || ws.ws_col == 0)
                return;
        /* The kernel sends SIGWINCH to the console's foreground process group in the container. */
        (void) ioctl(f->master, TIOCSWINSZ, &ws);
}

static int on_sigwinch(EventSource *s, const struct signalfd_siginfo *si, void *userdata) {
        forwarder_window_changed(userdata);
        return 0;
}

static int watch_stdio_end(Forwarder *f, StdioEnd *end, uint32_t events, event_io_handler_t cb,
                           const char *what) {
        int r;

        if (end->done)
                return 0;
        r = event_add_io(f->event, &end->source, end->fd, events | EPOLLET, cb, f);
        if (r == -EPERM) {
                /* a regular file or /dev/null: epoll refuses them, and they never block */
                end->ready = true;
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to watch %s: %m", what);
        end->ready = true; /* the first round finds out */
        return 0;
}

static int make_raw(Forwarder *f) {
        struct termios raw;

        if (f->input.done || !isatty(f->input.fd))
                return 0;
        if (tcgetattr(f->input.fd, &f->saved_termios) < 0)
                return log_error_errno(errno, "Failed to get the terminal's settings: %m");
        f->termios_saved = true;

        raw = f->saved_termios;
        cfmakeraw(&raw);
        raw.c_cc[VMIN] = 1;
        raw.c_cc[VTIME] = 0;
        if (tcsetattr(f->input.fd, TCSANOW, &raw) < 0)
                return log_error_errno(errno, "Failed to put the terminal in raw mode: %m");
        return 0;
}

/* Written to our terminal directly (blocking for a moment is fine, it is a few bytes); errors are
 * ignored: the terminal only looks different. */
static void write_terminal(Forwarder *f, const char *s) {
        size_t n = strlen(s);

        while (n > 0) {
                ssize_t k = write(f->output.fd, s, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return;
                s += k;
                n -= (size_t) k;
        }
}

int forwarder_set_background(Forwarder *f, const char *color) {
        char buf[64];

        /* only where the console's output reaches a terminal, as nspawn */
        if (!f || isempty(color) || f->output.done || !isatty(f->output.fd))
                return 0;
        f->background = strdup(color);
        if (!f->background)
                return log_oom();
        /* the colour, and the rest of the line in it */
        snprintf(buf, sizeof buf, "\033[%sm\033[K", color);
        write_terminal(f, buf);
        return 1;
}

static void restore_terminal(Forwarder *f) {
        if (!f->termios_saved)
                return;
        f->termios_saved = false;
        /* TCSANOW: TCSADRAIN would hang on a terminal stopped with Ctrl-S. */
        if (tcsetattr(f->input.fd, TCSANOW, &f->saved_termios) < 0)
                log_debug_errno(errno, "Failed to restore the terminal's settings, ignoring: %m");
}

static int forwarder_setup(Forwarder *f) {
        sigset_t ss;
        int r;

        /* A reader of our stdout that goes away (berth ... | head -1) must be an EPIPE for shovel_output(),
         * not the death of the monitor. Blocked rather than ignored: the container child resets its
         * signal mask before exec, an ignored disposition would be inherited by everything it runs. */
        sigemptyset(&ss);
        sigaddset(&ss, SIGPIPE);
        (void) sigprocmask(SIG_BLOCK, &ss, NULL);

        r = fd_set_nonblock(f->master, true);
        if (r < 0)
                return log_error_errno(r, "Failed to make the console master non-blocking: %m");
        r = event_add_io(f->event, &f->master_source, f->master, EPOLLIN | EPOLLOUT | EPOLLET, on_master, f);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the console master: %m");
        f->master_readable = f->master_writable = true;

        if (f->mode == CONSOLE_INTERACTIVE) {
                r = stdio_end_open(&f->input, STDIN_FILENO, O_RDONLY);
                if (r < 0)
                        return log_error_errno(r, "Failed to set up standard input for the console: %m");
        } else
                f->input = (StdioEnd) { .fd = -EBADF, .saved_flags = -1, .done = true };

        if (forwards_output(f->mode)) {
                r = stdio_end_open(&f->output, STDOUT_FILENO, O_WRONLY);
                if (r < 0)
                        return log_error_errno(r, "Failed to set up standard output for the console: %m");
        } else
                f->output = (StdioEnd) { .fd = -EBADF, .saved_flags = -1, .done = true };

        r = watch_stdio_end(f, &f->input, EPOLLIN, on_input, "standard input");
        if (r < 0)
                return r;
        r = watch_stdio_end(f, &f->output, EPOLLOUT, on_output, "standard output");
        if (r < 0)
                return r;

        r = event_add_time_relative(f->event, &f->retry_source, MASTER_RETRY_USEC, on_retry, f);
        if (r < 0)
                return log_error_errno(r, "Failed to add the console retry timer: %m");
        (void) event_source_set_enabled(f->retry_source, EVENT_OFF);

        /* Also runs the first round, whatever epoll reports at first. */
        r = event_add_defer(f->event, &f->defer_source, on_defer, f);
        if (r < 0)
                return log_error_errno(r, "Failed to add the console defer source: %m");
        (void) event_source_set_enabled(f->defer_source, EVENT_ONESHOT);

        if (forwards_output(f->mode)) {
                if (isatty(STDOUT_FILENO))
                        f->winsize_fd = STDOUT_FILENO;
                else if (f->mode == CONSOLE_INTERACTIVE && isatty(STDIN_FILENO))
                        f->winsize_fd = STDIN_FILENO;
        }
        if (f->winsize_fd >= 0) {
                /* the event loop wants the signal blocked; it is ignored by default, so nothing changes for us */
                sigemptyset(&ss);
                sigaddset(&ss, SIGWINCH);
                (void) sigprocmask(SIG_BLOCK, &ss, NULL);
                r = event_add_signal(f->event, &f->winch_source, SIGWINCH, on_sigwinch, f);
                if (r < 0)
                        /* someone else on this loop owns SIGWINCH: they call forwarder_window_changed() */
                        log_debug_errno(r, "Failed to watch SIGWINCH, ignoring: %m");
                forwarder_window_changed(f);
        }

        if (f->mode == CONSOLE_INTERACTIVE)
                return make_raw(f);
        return 0;
}

static int on_client(EventSource *s, int fd, uint32_t revents, void *userdata) {
        Forwarder *f = userdata;

        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
                f->client_readable = true;
        if (revents & (EPOLLOUT | EPOLLHUP | EPOLLERR))
                f->client_writable = true;
        forwarder_shovel(f);
        return 0;
}

static int on_listen(EventSource *s, int fd, uint32_t revents, void *userdata) {
        Forwarder *f = userdata;
        int c, r;

        c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c < 0)
                return 0;
        /* one client at a time: a second one hears "B" (busy) and is closed */
        if (f->client >= 0) {
                (void) send(c, "B", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
                safe_close(c);
                return 0;
        }
        if (send(c, "A", 1, MSG_DONTWAIT | MSG_NOSIGNAL) != 1) {
                safe_close(c);
                return 0;
        }
        r = event_add_io(f->event, &f->client_source, c, EPOLLIN | EPOLLOUT | EPOLLET, on_client, f);
        if (r < 0) {
                log_debug_errno(r, "Failed to watch the console client, ignoring: %m");
                safe_close(c);
                return 0;
        }
        f->client = c;
        f->client_readable = f->client_writable = true;
        f->master_writable = f->master_readable = true;
        (void) event_source_set_enabled(f->defer_source, EVENT_ONESHOT);
        return 0;
}

int forwarder_listen(Forwarder *f, const char *path) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int r;

        if (!f || (f->mode != CONSOLE_PASSIVE && f->mode != CONSOLE_READ_ONLY))
                return -EINVAL;
        if (strlen(path) >= sizeof sa.sun_path)
                return log_error_errno(-ENAMETOOLONG, "Console socket path '%s' is too long.", path);
        strcpy(sa.sun_path, path);
        r = mkdir_parents(path, 0700);
        if (r < 0)
                return log_error_errno(r, "Failed to create the directory of '%s': %m", path);
        (void) unlink(path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(errno, "Failed to create the console socket: %m");
        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return log_error_errno(errno, "Failed to bind the console socket '%s': %m", path);
        f->socket_path = strdup(path);
        if (!f->socket_path) {
                (void) unlink(path);
                return log_oom();
        }
        /* root only: the console is as good as the machine's root login */
        if (chmod(path, 0600) < 0 || listen(fd, 4) < 0) {
                r = log_error_errno(errno, "Failed to listen on the console socket '%s': %m", path);
                goto fail;
        }
        r = event_add_io(f->event, &f->listen_source, fd, EPOLLIN, on_listen, f);
        if (r < 0) {
                log_error_errno(r, "Failed to watch the console socket: %m");
                goto fail;
        }
        f->listen_fd = TAKE_FD(fd);
        return 0;
fail:
        (void) unlink(path);
        free(f->socket_path);
        f->socket_path = NULL;
        return r;
}

const char *forwarder_socket_path(const Forwarder *f) {
        return f && f->listen_fd >= 0 ? f->socket_path : NULL;
}

int forwarder_new(Event *e, int master, ConsoleMode mode, bool quiet, forwarder_escape_t escape,
                  void *userdata, Forwarder **ret) {
        Forwarder *f;
        int r;

        if (!e || !ret)
                return -EINVAL;
        if (mode == CONSOLE_PIPE) {
                *ret = NULL;
                return 0;
        }
        if (mode < 0 || mode >= _CONSOLE_MODE_MAX || mode == CONSOLE_AUTOPIPE || master < 0)
                return log_error_errno(-EINVAL, "Invalid console mode or master, refusing.");

        f = calloc(1, sizeof *f);
        if (!f)
                return log_oom();
        *f = (Forwarder) {
                .event = event_ref(e),
                .mode = mode,
                .master = master,
                .input = { .fd = -EBADF, .saved_flags = -1, .done = true },
                .output = { .fd = -EBADF, .saved_flags = -1, .done = true },
                .winsize_fd = -EBADF,
                .listen_fd = -EBADF,
                .client = -EBADF,
                .escape = mode == CONSOLE_INTERACTIVE ? escape : NULL,
                .userdata = userdata,
        };

        r = forwarder_setup(f);
        if (r < 0) {
                f->master = -EBADF; /* still the caller's */
                forwarder_free(f);
                return r;
        }

        *ret = f;
        return 0;
}

/* Prints what the guest said last ("Powering off."). After the guest is gone the master holds a bounded
 * amount (the pty's buffers), read until EIO. */
static void forwarder_drain(Forwarder *f) {
        uint64_t start, last_progress;

        if (f->master < 0)
                return;

        stdio_end_finish(&f->input);
        f->in_size = 0;
        f->master_readable = true;
        if (!f->output.done)
                f->output.ready = true;

        start = last_progress = now_usec(CLOCK_MONOTONIC);
        for (;;) {
                struct pollfd p;
                uint64_t now, left;
                bool progress = false;

                progress |= shovel_from_master(f);
                progress |= shovel_output(f);

                now = now_usec(CLOCK_MONOTONIC);
                if (progress)
                        last_progress = now;
                if (now - start >= DRAIN_MAX_USEC || now - last_progress >= DRAIN_STALL_USEC)
                        break;
                if (progress)
                        continue;
                if (f->out_size == 0 || f->output.done)
                        break; /* all read and written */

                left = MIN(DRAIN_MAX_USEC - (now - start), DRAIN_STALL_USEC - (now - last_progress));
                p = (struct pollfd) { .fd = f->output.fd, .events = POLLOUT };
                if (poll(&p, 1, (int) ((left + USEC_PER_MSEC - 1) / USEC_PER_MSEC)) < 0 && errno != EINTR)
                        break;
                f->output.ready = true;
        }
}

Forwarder *forwarder_free(Forwarder *f) {
        if (!f)
                return NULL;

        forwarder_drain(f);

        f->master_source = event_source_disable_unref(f->master_source);
        f->winch_source = event_source_disable_unref(f->winch_source);
        f->retry_source = event_source_disable_unref(f->retry_source);
        f->defer_source = event_source_disable_unref(f->defer_source);
        client_detach(f);
        f->listen_source = event_source_disable_unref(f->listen_source);
        f->listen_fd = safe_close(f->listen_fd);
        if (f->socket_path)
                (void) unlink(f->socket_path);
        free(f->socket_path);

        if (f->background && !f->output.done) {
                /* the terminal's own colours again, from here to the end of the line too */
                (void) fd_set_nonblock(f->output.fd, false);
                write_terminal(f, "\033[0m\033[K");
        }
        free(f->background);
        restore_terminal(f);
        stdio_end_close(&f->input);
        stdio_end_close(&f->output);
        f->master = safe_close(f->master);
        event_unref(f->event);
        free(f);
        return NULL;
}
