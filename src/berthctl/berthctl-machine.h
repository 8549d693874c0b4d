/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the machine verbs share: the machine backend (berthctl-machines.c),
 * exec/shell/login/console (berthctl-exec.c) and copy/bind
 * (berthctl-transfer.c). See berthctl-machines.c for the backend's rules. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "registry.h"
#include "util.h"

#define DEFAULT_WAIT_USEC (90 * USEC_PER_SEC)
#define POLL_USEC (50 * USEC_PER_MSEC)
#define CONTAINER_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define ESCAPE_CHAR 0x1d /* Ctrl-] */

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static inline int pidfd_open_(pid_t pid) {
        return (int) syscall(SYS_pidfd_open, pid, 0);
}

static inline int pidfd_send_signal_(int pidfd, int sig) {
        return (int) syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

typedef struct MachineInfo {
        char *name;
        char *class, *service, *state, *root, *unit, *uuid;
        pid_t leader;     /* 0 while starting */
        pid_t monitor;    /* the berth process */
        uint64_t since;   /* CLOCK_REALTIME usec */
        char *console;    /* the console socket, if any */
        char *os, *version, *pretty_os; /* from the guest's os-release, if it could be read */
        MachineRecord *record; /* the registry backend's record: confinement, cgroups; NULL for a
                                * machine only machined knows (another manager's) */
        bool registered;  /* known to systemd-machined */
        pid_t bus_leader; /* the leader machined names, 0 if not registered */
        char **owned;     /* strings filled from machined, which the fields above point into */
} MachineInfo;

MachineInfo *machine_info_free(MachineInfo *m);
int machine_get(const char *name, MachineInfo **ret);
int machine_get_logged(const char *name, MachineInfo **ret);
int machine_get_berth_logged(const char *name, MachineInfo **ret);
const char *machine_unified_cgroup(const MachineInfo *m);
int machine_open_leader(const MachineInfo *m, int *ret_pidfd);
int machine_open_root(const MachineInfo *m, int *ret);
bool same_namespace(pid_t pid, const char *ns);
/* berthctl-journal.c: status's journal lines of machine M (nothing with LINES 0). */
void machine_journal_print(const MachineInfo *m, unsigned lines, int output_mode);
/* The last error UNIT logged since SINCE (CLOCK_REALTIME usec), waiting up to WAIT usec; NULL if none. */
char *unit_last_error(const char *unit, uint64_t since, uint64_t wait);
static inline void machine_info_freep(MachineInfo **m) {
        machine_info_free(*m);
}

/* The systemd backend (berthctl-bus.c): machined and the service manager over the system bus.
 * Without systemd (not PID 1, or no system bus) bus_have_systemd() is false and the bus_machine_*()
 * calls return -ENXIO. */
bool bus_have_systemd(void);
bool bus_have_machined(void);
int bus_machine_list(char ***ret);
int bus_machine_fill(const char *name, MachineInfo *m);
int bus_machine_registered(const char *name);
int bus_machine_kill(const char *name, const char *whom, int sig);
int bus_machine_terminate(const char *name);
int bus_start_unit(const char *unit, uint64_t timeout);
int bus_stop_unit(const char *unit, uint64_t timeout);
int bus_enable_units(char **units, bool enable);

/* Messages between berthctl and its children, with an fd attached now and then. */
typedef enum ExecMessageType {
        EXEC_MSG_MASTER,      /* the pty master (fd attached) */
        EXEC_MSG_FAILED,      /* setup failed; the child logged why */
        EXEC_MSG_EXEC_FAILED, /* execve() failed: error */
} ExecMessageType;

typedef struct ExecMessage {
        int type;
        int error;
} ExecMessage;

static inline int send_message(int sock, int type, int error, int fd) {
        ExecMessage msg = { .type = type, .error = error };
        return send_message_fd(sock, &msg, sizeof msg, fd);
}

/* 0 on EOF, 1 with a message (*ret_fd: its fd or -EBADF). */
static inline int recv_message(int sock, ExecMessage *ret, int *ret_fd) {
        return recv_message_fd(sock, ret, sizeof *ret, ret_fd);
}
