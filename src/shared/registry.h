/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* The runtime registry under /run/berth: one record per running machine,
 * owned by the berth instance that holds its lock. A record whose lock is
 * free belongs to a dead instance (stale) and is cleaned by the next start. */

#define BERTH_RUN_DIR "/run/berth"
#define BERTH_MACHINES_DIR "/run/berth/machines"

typedef struct MachineRecord {
        char *name;
        pid_t pid;          /* the berth (monitor) process */
        pid_t leader;       /* the container's PID 1, as seen from the host */
        char *root;         /* the tree */
        char *unit;         /* systemd unit, if any */
        char *state;        /* "starting", "running", "stopping" */
        char *cgroup;       /* relative cgroup name, see berth-cgroup.h */
        char *uuid;
        char *class;        /* "container" */
        char *service;      /* "berth" */
        char *console;      /* path of the console socket, if any */
        unsigned long long timestamp; /* CLOCK_REALTIME usec at start */
} MachineRecord;

MachineRecord *machine_record_free(MachineRecord *r);
static inline void machine_record_freep(MachineRecord **r) {
        machine_record_free(*r);
}

/* Take the machine's lock (non-blocking). -EBUSY: another live instance has it. */
int registry_lock_machine(const char *name, int *ret_fd);
/* Lock a tree: shared for read-only uses (ephemeral), exclusive otherwise. -EBUSY if taken. */
int registry_lock_root(const char *directory, bool shared, int *ret_fd);
int registry_write(const MachineRecord *r);
int registry_read(const char *name, MachineRecord **ret);
int registry_remove(const char *name);
/* Is the record's owner alive (its lock held)? */
int registry_is_live(const char *name);
/* Names of all records. */
int registry_list(char ***ret);
