/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* The runtime registry under /run/berth: one record per running machine,
 * owned by the berth instance that holds its lock. A record whose lock is
 * free belongs to a dead instance (stale) and is cleaned by the next start.
 *
 * Layout (the run dir is /run/berth unless $BERTH_RUN_DIR or
 * registry_set_run_dir() says otherwise, which the tests use):
 *   RUN/machines/NAME     the record: KEY=VALUE lines, replaced atomically
 *   RUN/locks/NAME.lock   flock()ed (LOCK_EX) by the owner for its lifetime
 *   RUN/scratch/NAME/     the instance's scratch space, removed with the record
 * Locks and scratch dirs live in their own directories because "x.lock" and
 * "x.d" are valid machine names themselves.
 *
 * Record keys: NAME, PID, LEADER, ROOT, UNIT, STATE, CGROUP, UUID, CLASS,
 * SERVICE, CONSOLE, TIMESTAMP, POWEROFF_SIGNAL, REBOOT_SIGNAL, CAPABILITIES (hex),
 * NO_NEW_PRIVILEGES, NETWORK_ZONE, NETNS (the inode of berth's network namespace), NFT_TABLE,
 * UID_SHIFT and UID_RANGE (a user namespace), and repeated CGROUP_PATH=, CGROUP_DETACHED=
 * ("CONTROLLERS:PATH", a hierarchy mounted nowhere, see berth-cgroup.h), SCRATCH=, LOOP=,
 * SYSCALL_ALLOW=, SYSCALL_DENY=, NETWORK_LINK= ("NAME IFINDEX"), INTERFACE= and PORT=
 * ("tcp:HOSTPORT:CONTAINERPORT") lines.
 * In values a backslash is written as two backslashes and a newline as
 * backslash-n; unknown keys are ignored (older and newer berths share /run). */

#define BERTH_RUN_DIR "/run/berth"
#define BERTH_MACHINES_DIR "/run/berth/machines"

typedef struct MachineRecord {
        char *name;
        pid_t pid;          /* the berth (monitor) process */
        pid_t leader;       /* the container's PID 1, as seen from the host */
        char *root;         /* the tree, or the image (--image=) */
        char *unit;         /* systemd unit, if any */
        char *state;        /* "starting", "running", "stopping" */
        char *cgroup;       /* relative cgroup name, see berth-cgroup.h */
        char **cgroup_paths;/* absolute paths of the container cgroup in every hierarchy (cgroup_paths()) */
        char **cgroup_detached; /* "CONTROLLERS:PATH" of hierarchies mounted nowhere (cgroup_detached()) */
        char **scratch;     /* host paths stale cleanup removes (overlay work dirs, ephemeral copies) */
        char **loop_devices;/* "/dev/loopN" attached to the image ROOT names (--image=) */
        char *uuid;
        char *class;        /* "container" */
        char *service;      /* "berth" */
        char *console;      /* path of the console socket, if any */
        unsigned long long timestamp; /* CLOCK_REALTIME usec at start */
        /* what a manager (berthctl) needs to act like berth would */
        int poweroff_signal;   /* what asks the guest's init to power off (0: unknown) */
        int reboot_signal;     /* ... to reboot (0: the guest cannot be rebooted) */
        unsigned long long capabilities; /* bounding set of the container */
        bool no_new_privileges;
        unsigned uid_shift;    /* --private-users: the host id of the container's root ... */
        unsigned uid_range;    /* ... and how many ids it has; 0: no user namespace */
        char **syscall_allow;  /* --system-call-filter= additions and removals */
        char **syscall_deny;
        /* private networking (berth-network.c) */
        char **network_links;  /* "NAME IFINDEX" of host links berth made: stale cleanup removes them */
        char *network_zone;    /* the zone bridge joined: stale cleanup removes it when unused */
        char **interfaces;     /* the machine's host-side interfaces, for display */
        /* the network namespace berth ran in (inode of /proc/self/ns/net, 0: unknown): links and
         * nftables tables are that namespace's, and only a berth in it can remove them */
        unsigned long long netns;
        char **ports;          /* --port= forwards, "PROTO:HOSTPORT:CONTAINERPORT" (berth-port.c) */
        char *nft_table;       /* the nftables table of the forwards (family inet): stale cleanup deletes it */
} MachineRecord;

MachineRecord *machine_record_free(MachineRecord *r);
static inline void machine_record_freep(MachineRecord **r) {
        machine_record_free(*r);
}

/* Override the run dir (tests); NULL: back to $BERTH_RUN_DIR or /run/berth. */
int registry_set_run_dir(const char *path);
const char *registry_run_dir(void);
/* RUN/scratch/NAME: not created here. */
int registry_scratch_dir(const char *name, char **ret);

/* Take the machine's lock. -EBUSY: another live instance has it (its record names the holder).
 * Waits, up to 10 s, while others hold it for a moment (probers, another start's cleanup after a
 * dead instance). The fd is O_CLOEXEC; keep it open for the instance's lifetime. */
int registry_lock_machine(const char *name, int *ret_fd);
/* The same without waiting for anyone: -EBUSY at once if anybody holds it (stale cleanup of other
 * machines' leftovers, which must not hold up a start). */
int registry_try_lock_machine(const char *name, int *ret_fd);
/* Lock a tree or image: shared for read-only uses (ephemeral), exclusive otherwise. -EBUSY if taken. */
int registry_lock_root(const char *directory, bool shared, int *ret_fd);
/* The same on the tree's root directory FD (opened O_RDONLY), which it takes over, also on failure. */
int registry_lock_root_fd(int fd, bool shared, int *ret_fd);
/* Write (replace) the record atomically: RUN/machines is created as needed. */
int registry_write(const MachineRecord *r);
int registry_read(const char *name, MachineRecord **ret);
/* Remove record, scratch dir and lock file. Call with the lock held, as the
 * last step of teardown, then close the lock fd. */
int registry_remove(const char *name);
/* The half-written records a writer killed before its rename() left; for the lock's holder. */
int registry_remove_temp_records(const char *name);
/* Is the record's owner alive (its lock held)? 1 yes, 0 no. */
int registry_is_live(const char *name);
/* Does the machine's running instance hold its lock (its record names the holder)? 1 yes, 0 no:
 * free, or held for a moment by another start's stale cleanup of a dead instance or by a start
 * that has not written its record yet, which a start of the machine waits for
 * (registry_lock_machine()). Where /proc/locks cannot tell, as registry_is_live(). */
int registry_is_running(const char *name);
/* Names of all records. */
int registry_list(char ***ret);
