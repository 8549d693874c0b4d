/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "berth-startup.h"
#include "log.h"
#include "util.h"

/* The start-up sequence, in order (see berth-startup.h for the process model).
 * BARRIER says what the receiving side waits for until the step's message
 * comes. The coming features add their steps here, e.g. a "uid/gid maps
 * written" step of the monitor before the child relies on its user namespace,
 * or "root mounted" (an fd of a detached mount made after the clone) before
 * the child builds its tree. Consecutive steps of one side are sent one after the
 * other; the other side waits for each. */
typedef struct StartupStepInfo {
        const char *name;
        StartupSide sender;
        bool (*applies)(const Settings *s); /* NULL: in every run */
        const char *barrier;
} StartupStepInfo;

static bool has_console(const Settings *s) {
        return s->console_mode != CONSOLE_PIPE;
}

static bool has_network_namespace(const Settings *s) {
        return s->private_network;
}

static const StartupStepInfo startup_steps[_STARTUP_STEP_MAX] = {
        [STARTUP_CGROUP_READY] = {
                "cgroup-ready", STARTUP_MONITOR, NULL,
                "the child unshares its cgroup namespace only once it sits in the container's cgroup: the "
                "namespace's root is the cgroup it is in at that moment",
        },
        [STARTUP_LINKS_MOVED] = {
                "links-moved", STARTUP_MONITOR, has_network_namespace,
                "the monitor made the host-side links and moved their peers into the child's network "
                "namespace (berth-network.c): they exist before anything of the guest runs",
        },
        [STARTUP_REGISTERED] = {
                "registered", STARTUP_MONITOR, NULL,
                "machined knows the leader and its links before anything in the guest can ask for them",
        },
        [STARTUP_CONSOLE] = {
                "console", STARTUP_CHILD, has_console,
                "the monitor forwards the console from here on",
        },
        [STARTUP_NOTIFY] = {
                "notify-socket", STARTUP_CHILD, NULL,
                "the monitor listens for READY=1 before the guest can send it",
        },
        [STARTUP_PIVOTED] = {
                "pivoted", STARTUP_CHILD, NULL,
                "the monitor copies the child's mount namespace only once every mask and read-only mount "
                "exists: the copy locks them",
        },
        [STARTUP_LOCKED_MOUNTS] = {
                "locked-mounts", STARTUP_MONITOR, NULL,
                "the child drops its setup mount namespace for the locked one before it runs anything of the tree's",
        },
        [STARTUP_EXEC] = {
                "exec", STARTUP_CHILD, NULL,
                "the monitor knows how to stop the guest before it runs",
        },
};

static const char *const startup_side_table[_STARTUP_SIDE_MAX] = {
        [STARTUP_MONITOR] = "monitor",
        [STARTUP_CHILD] = "child",
};

const char *startup_step_to_string(StartupStep s) {
        return s >= 0 && s < _STARTUP_STEP_MAX ? startup_steps[s].name : NULL;
}

StartupStep startup_step_from_string(const char *s) {
        for (int i = 0; s && i < _STARTUP_STEP_MAX; i++)
                if (streq(startup_steps[i].name, s))
                        return i;
        return _STARTUP_STEP_INVALID;
}

const char *startup_side_to_string(StartupSide s) {
        return s >= 0 && s < _STARTUP_SIDE_MAX ? startup_side_table[s] : NULL;
}

StartupSide startup_side_from_string(const char *s) {
        for (int i = 0; s && i < _STARTUP_SIDE_MAX; i++)
                if (streq(startup_side_table[i], s))
                        return i;
        return _STARTUP_SIDE_INVALID;
}

StartupSide startup_step_sender(StartupStep s) {
        return s >= 0 && s < _STARTUP_STEP_MAX ? startup_steps[s].sender : _STARTUP_SIDE_INVALID;
}

bool startup_step_applies(StartupStep s, const Settings *settings) {
        if (s < 0 || s >= _STARTUP_STEP_MAX)
                return false;
        return !startup_steps[s].applies || startup_steps[s].applies(settings);
}

static StartupStep next_applicable(const Startup *p, StartupStep from) {
        StartupStep s = from;
        while (s < _STARTUP_STEP_MAX && !startup_step_applies(s, p->settings))
                s++;
        return s;
}

void startup_init(Startup *p, int fd, StartupSide side, const Settings *s) {
        *p = (Startup) {
                .fd = fd,
                .side = side,
                .settings = s,
        };
        p->next = next_applicable(p, 0);
}

void startup_handover(Startup *p, int fd, StartupStep next) {
        p->fd = fd;
        p->next = next_applicable(p, next);
}

static const char *step_name(int type) {
        if (type == STARTUP_MSG_ERROR)
                return "error";
        return startup_step_to_string(type) ?: "unknown";
}

static const char *due_name(StartupStep s) {
        return s >= _STARTUP_STEP_MAX ? "end of the start-up" : startup_step_to_string(s);
}

int startup_check(Startup *p, int type) {
        StartupSide peer = p->side == STARTUP_MONITOR ? STARTUP_CHILD : STARTUP_MONITOR;

        if (p->next < _STARTUP_STEP_MAX && type == (int) p->next && startup_steps[p->next].sender == peer) {
                p->next = next_applicable(p, p->next + 1);
                return 0;
        }
        return log_error_errno(-EPROTO, "Start-up protocol error: step '%s' (%i) came from the %s while the %s "
                                        "waited for step '%s'.",
                               step_name(type), type, startup_side_to_string(peer), startup_side_to_string(p->side),
                               due_name(p->next));
}

int startup_send(Startup *p, StartupStep step, int value, int value2, int fd) {
        SyncMessage m = { .type = step, .value = value, .value2 = value2 };
        int r;

        if (step != p->next || startup_steps[step].sender != p->side)
                return log_error_errno(-EPROTO, "Start-up protocol error: the %s sent step '%s' where step '%s' "
                                                "was due.",
                                       startup_side_to_string(p->side), step_name(step), due_name(p->next));
        r = send_message_fd(p->fd, &m, sizeof m, fd);
        if (r < 0 && p->side == STARTUP_MONITOR) {
                /* gone: most likely it failed, and said why before it went */
                int q = startup_child_error(p);
                if (q < 0)
                        return q;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to send start-up step '%s' to the %s: %m", step_name(step),
                                       p->side == STARTUP_MONITOR ? "container" : "monitor");
        p->next = next_applicable(p, step + 1);
        log_timing(startup_side_to_string(p->side), step_name(step));
        return 0;
}

/* The child's error. Its text was made by our own code, but past pivot_root
 * it may quote names from the tree (hostile): printable characters only. */
static int log_child_error(const SyncMessage *msg) {
        int error = msg->error < 0 ? msg->error : -EIO;
        char text[SYNC_TEXT_MAX];
        size_t k = 0;

        for (const char *c = msg->text; *c && k < sizeof text - 1; c++)
                text[k++] = ((unsigned char) *c >= 0x20 && *c != 0x7f) ? *c : '?';
        text[k] = 0;
        if (k == 0)
                return log_error_errno(error, "The container's setup failed: %m");
        return log_error_errno(error, "%s", text);
}

static int receive(Startup *p, SyncMessage *ret, int *ret_fd) {
        int r = recv_message_fd(p->fd, ret, sizeof *ret, ret_fd);
        /* A peer that exits with a message of ours unread resets the connection: the first recv()
         * reports that (and clears it), what it sent before it went still waits behind. */
        if (r == -ECONNRESET)
                r = recv_message_fd(p->fd, ret, sizeof *ret, ret_fd);
        if (r > 0)
                ret->text[sizeof ret->text - 1] = 0;
        return r;
}

int startup_recv(Startup *p, StartupStep step, SyncMessage *ret, int *ret_fd) {
        const char *peer = p->side == STARTUP_MONITOR ? "container" : "monitor";
        SyncMessage m;
        int r, fd = -EBADF;

        if (step != p->next || startup_steps[step].sender == p->side)
                return log_error_errno(-EPROTO, "Start-up protocol error: the %s waited for step '%s' where step "
                                                "'%s' was due.",
                                       startup_side_to_string(p->side), step_name(step), due_name(p->next));
        r = receive(p, &m, &fd);
        if (r < 0)
                return log_error_errno(r, "Failed to receive start-up step '%s' from the %s: %m", step_name(step),
                                       peer);
        if (log_get_max_level() >= LOG_DEBUG) {
                char what[64];
                (void) snprintf(what, sizeof what, "waited for %s", step_name(step));
                log_timing(startup_side_to_string(p->side), what);
        }
        if (r == 0)
                return log_error_errno(-EPIPE, "Lost the %s while waiting for start-up step '%s'.", peer,
                                       step_name(step));
        if (m.type == STARTUP_MSG_ERROR && p->side == STARTUP_MONITOR) {
                safe_close(fd);
                return log_child_error(&m);
        }
        r = startup_check(p, m.type);
        if (r < 0) {
                safe_close(fd);
                return r;
        }
        *ret = m;
        if (ret_fd)
                *ret_fd = fd;
        else
                safe_close(fd);
        return 1;
}

int startup_finish(Startup *p) {
        SyncMessage m;
        int r, fd = -EBADF;

        if (p->next < _STARTUP_STEP_MAX)
                return log_error_errno(-EPROTO, "Start-up protocol error: finished before step '%s'.",
                                       due_name(p->next));
        r = receive(p, &m, &fd);
        safe_close(fd);
        if (r < 0)
                return log_error_errno(r, "Failed to talk to the container's setup: %m");
        log_timing(startup_side_to_string(p->side), "waited for the payload's exec");
        if (r == 0)
                return 0; /* the payload was executed */
        if (m.type == STARTUP_MSG_ERROR)
                return log_child_error(&m);
        return startup_check(p, m.type); /* fails: nothing is due */
}

int startup_child_error(Startup *p) {
        struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
        SyncMessage m;
        int r, fd = -EBADF;

        if (p->side != STARTUP_MONITOR || poll(&pfd, 1, 0) <= 0 || !(pfd.revents & POLLIN))
                return 0;
        r = receive(p, &m, &fd);
        safe_close(fd);
        if (r <= 0 || m.type != STARTUP_MSG_ERROR)
                return 0;
        return log_child_error(&m);
}

int startup_send_error(Startup *p, int error, const char *text) {
        SyncMessage m = { .type = STARTUP_MSG_ERROR, .error = error < 0 ? error : -EIO };

        if (text)
                (void) snprintf(m.text, sizeof m.text, "%s", text);
        return send_message_fd(p->fd, &m, sizeof m, -EBADF);
}
