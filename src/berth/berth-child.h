/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "berth-settings.h"
#include "berth-userns.h"

/* The sync socket between berth (the monitor, host namespaces) and the
 * container's first process. SOCK_SEQPACKET, one message per step. The child
 * holds its end O_CLOEXEC, so a successful exec of the payload shows up as
 * EOF on the parent's end. */
typedef enum SyncMessageType {
        SYNC_CGROUP_READY = 1, /* parent -> child: you are in the container cgroup, unshare it now */
        SYNC_CONSOLE_FD,       /* child -> parent: the console pty master (SCM_RIGHTS) */
        SYNC_NOTIFY_FD,        /* child -> parent: the socket behind /run/host/notify (SCM_RIGHTS) */
        SYNC_EXEC,             /* child -> parent: setup done; value = poweroff signal, value2 = reboot signal */
        SYNC_ERROR,            /* child -> parent: setup failed with error; text: what the child logged */
        SYNC_PIVOTED,          /* child -> parent: in the tree; lock my mounts please */
        SYNC_LOCKED_MOUNTS,    /* parent -> child: a mount namespace to move to (SCM_RIGHTS), or error */
} SyncMessageType;

#define SYNC_TEXT_MAX 512

typedef struct SyncMessage {
        int32_t type;
        int32_t error;
        int32_t value;
        int32_t value2;
        char text[SYNC_TEXT_MAX]; /* NUL-terminated; SYNC_ERROR: the child's error message, or empty */
} SyncMessage;

int sync_send(int fd, SyncMessageType type, int error, int value, int value2, int pass_fd);
/* SYNC_ERROR with ERROR (< 0) and the message TEXT (NULL or truncated to fit). */
int sync_send_error(int fd, int error, const char *text);
/* Returns 0 on EOF, 1 on a message (*ret_fd set if one came along, else -EBADF). */
int sync_recv(int fd, SyncMessage *ret, int *ret_fd);

typedef struct ChildParams {
        const Settings *settings;
        int sync_fd;
        const char *term;       /* $TERM for the payload */
        int root_fd;            /* --image=: the detached tree the monitor made, or -EBADF */
        const UserNamespace *userns; /* the monitor's: fd -EBADF without --private-users */
} ChildParams;

/* Body of the container's first process; never returns. */
_noreturn_ void child_main(const ChildParams *p);

/* berth-stub-init.c: PID 1 for --as-pid2: reaps, forwards stop signals to
 * PID 2 and exits with its status. Never returns. */
_noreturn_ void stub_init_run(pid_t payload);
