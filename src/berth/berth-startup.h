/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The start-up of a container: who runs where, and the ordered protocol
 * between the two processes that build it.
 *
 *   berth, the monitor         host namespaces, real root, the host's
 *     |                        credentials. All privileged work on the host
 *     |                        happens here and only here: the machine lock,
 *     |                        the record, cgroups and scope, the runtime
 *     |                        state (berth-runtime.h), the locked mount
 *     |                        namespace; later the root source's detached
 *     |                        mounts, idmapped mounts, loop devices, uid/gid
 *     |                        maps, host-side links. What the child needs of
 *     |                        it travels as fds over the sync socket.
 *     | clone(2) into the namespace plan's new namespaces (berth-nsplan.h):
 *     v mount, PID, UTS, IPC, (network); still the host's user namespace
 *   child (the container's PID 1 until exec; with -U see below)
 *     |                        unshares its cgroup namespace once the monitor
 *     |                        has put it in its cgroup, builds the tree's
 *     |                        mounts (API file systems, custom mounts, masks,
 *     |                        read-only mounts), pivots, enters the locked
 *     |                        mount namespace (made by the monitor in another
 *     |                        user namespace: every mount in it is locked),
 *     |                        drops capabilities, loads seccomp, executes.
 *     | fork(2), --as-pid2 only
 *     v
 *   stub init (PID 1)  ---  payload (PID 2); without --as-pid2 the child
 *                           itself becomes the payload (PID 1).
 *
 * With -U the PID namespace belongs to the container's user namespace: a
 * helper of the monitor enters the user namespace, unshares the PID namespace
 * and clones the container's PID 1 into it (the monitor's child), which waits.
 * The child above is born into that PID namespace as PID 2, host root, does
 * its steps up to STARTUP_PIVOTED and exits when STARTUP_LOCKED_MOUNTS
 * releases it; the monitor reaps it, then sends STARTUP_LOCKED_MOUNTS again to
 * PID 1 on PID 1's own sync socket (startup_handover()), and PID 1 does the
 * rest: the locked mount namespace, its UTS, IPC and cgroup namespaces,
 * seccomp, capabilities, STARTUP_EXEC and the exec.
 *
 * Trust boundary: the monitor trusts nothing that comes from the container.
 * The tree is hostile from the first mount on (paths in it are resolved with
 * RESOLVE_IN_ROOT, never by string); the child's code is ours until exec, but
 * what the monitor receives from it is checked (only the expected step, fds
 * where fds belong, printable text only); the payload is hostile, and by the
 * time it runs the sync socket is closed (O_CLOEXEC).
 *
 * The protocol: a fixed sequence of steps (startup_steps[] in
 * berth-startup.c), each owned by the monitor or by the child, each a message
 * on the sync socket (SOCK_SEQPACKET) that is the barrier the other side
 * waits for. Steps that do not apply to a run (the console with
 * --console=pipe) are skipped by both sides alike. A message out of order is
 * an error that names the step that came and the step expected. The child
 * may instead send STARTUP_MSG_ERROR at any time: its errno and message, which
 * the monitor logs once. After the last step the payload's exec closes the
 * child's end: EOF tells the monitor that the start is done.
 */

#include <stdbool.h>
#include <stdint.h>

#include "berth-settings.h"

typedef enum StartupStep {
        STARTUP_CGROUP_READY,  /* monitor: the child is in its cgroup; it unshares cgroup now */
        STARTUP_LINKS_MOVED,   /* monitor: the network links are in the child's namespace (--private-network) */
        STARTUP_REGISTERED,    /* monitor: machined knows the leader (and its links) */
        STARTUP_CONSOLE,       /* child: the console's pty master (fd); not with --console=pipe */
        STARTUP_NOTIFY,        /* child: the socket behind /run/host/notify (fd) */
        STARTUP_PIVOTED,       /* child: all mounts made, masks and read-only mounts too, pivoted */
        STARTUP_LOCKED_MOUNTS, /* monitor: the mount namespace whose mounts are locked (fd) */
        STARTUP_EXEC,          /* child: about to execute; value: poweroff signal, value2: reboot signal */
        _STARTUP_STEP_MAX,
        _STARTUP_STEP_INVALID = -EINVAL,
} StartupStep;

/* Not a step: the child failed (error, text: its message). Valid at any time. */
#define STARTUP_MSG_ERROR 0x7f

typedef enum StartupSide {
        STARTUP_MONITOR,
        STARTUP_CHILD,
        _STARTUP_SIDE_MAX,
        _STARTUP_SIDE_INVALID = -EINVAL,
} StartupSide;

#define SYNC_TEXT_MAX 512

typedef struct SyncMessage {
        int32_t type;             /* a StartupStep or STARTUP_MSG_ERROR */
        int32_t error;
        int32_t value;
        int32_t value2;
        char text[SYNC_TEXT_MAX]; /* NUL-terminated; STARTUP_MSG_ERROR: the child's error message, or empty */
} SyncMessage;

/* One end of the protocol: which side we are and how far the start has come. */
typedef struct Startup {
        int fd;                   /* our end of the sync socket, not owned */
        StartupSide side;
        const Settings *settings; /* what decides which steps apply */
        StartupStep next;         /* the next step that applies; _STARTUP_STEP_MAX: all done */
} Startup;

void startup_init(Startup *p, int fd, StartupSide side, const Settings *s);
/* The other end moves to another process (-U: the container's PID 1 takes over from the setup
 * child after STARTUP_PIVOTED): FD is the end that talks to it from now on, NEXT the step due. */
void startup_handover(Startup *p, int fd, StartupStep next);

const char *startup_step_to_string(StartupStep s);
StartupStep startup_step_from_string(const char *s);
const char *startup_side_to_string(StartupSide s);
StartupSide startup_side_from_string(const char *s);
StartupSide startup_step_sender(StartupStep s);
bool startup_step_applies(StartupStep s, const Settings *settings);

/* Is a message of TYPE from the other side the one due now? Advances on success; -EPROTO with a
 * log line naming the step that came and the step expected otherwise. */
int startup_check(Startup *p, int type);
/* Our step STEP, which must be the one due now (-EPROTO otherwise), with an optional FD. Logs. */
int startup_send(Startup *p, StartupStep step, int value, int value2, int fd);
/* Waits for the other side's step STEP. Returns 1 with the message (and fd, if it brought one;
 * -EBADF else). 0 is never returned: EOF is -EPIPE. A STARTUP_MSG_ERROR in the monitor is
 * logged (the child's words, printable characters only) and its error returned. Logs. */
int startup_recv(Startup *p, StartupStep step, SyncMessage *ret, int *ret_fd);
/* The monitor, after the last step: waits for the EOF of the payload's exec. 0 on EOF, the child's
 * logged error if its exec failed, -EPROTO on anything else. Logs. */
int startup_finish(Startup *p);
/* The child, on failure: ERROR (< 0) and its message TEXT (NULL: none) to the monitor. */
/* The monitor, after one of its steps failed: an error the child sent before it (it may have failed
 * first, and so caused ours) is logged, and returned; 0 if none is waiting. Never blocks. */
int startup_child_error(Startup *p);
int startup_send_error(Startup *p, int error, const char *text);
