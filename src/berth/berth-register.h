/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "berth-rootsrc.h"
#include "berth-settings.h"

/* berth as a systemd citizen: where systemd is PID 1 and the system bus is
 * there, the container runs in a unit of its own (a transient scope
 * "machine-NAME.scope" in machine.slice, or the unit berth was started in with
 * --keep-unit, such as berth@NAME.service) and is registered with
 * systemd-machined, so that machinectl, systemctl -M, systemd-run -M and
 * journalctl -M find it. Everything here talks to the host's system bus; the
 * container's side is untouched.
 *
 * Order of calls in the monitor:
 *   register_open()      after the machine's registry lock is taken
 *   register_unit()      before the container cgroup is made (it must end up
 *                        below the scope)
 *   register_machine()   once the leader's PID is known and it sits in its
 *                        cgroup, before the guest runs
 *   register_close()     on every exit path, after the container is gone */

typedef struct Registration Registration;

/* Decides from --register= whether to register and connects to the system
 * bus. *ret is NULL when berth runs unregistered (--register=no, or auto on a
 * host without systemd or without a system bus). Logs. */
int register_open(const Settings *s, Registration **ret);

/* With a scope: creates machine-NAME.scope holding berth itself, with the
 * device policy and the --property= assignments, and waits for its job. A
 * stale scope of a dead instance (we hold the machine's lock) is stopped
 * first. With --keep-unit: finds our own unit and applies --property= to it.
 * Logs. */
int register_unit(Registration *r, const Settings *s);

/* The unit the container runs in, or NULL. */
const char *register_unit_name(const Registration *r);

/* Registers the machine with systemd-machined (RegisterMachineWithNetwork,
 * RegisterMachine on older machined). A stale registration of the same name
 * whose leader is dead is dropped first. A missing machined is a notice with
 * --register=auto, an error with --register=yes. Logs. */
/* IFINDEXES: the machine's host-side interfaces (RegisterMachineWithNetwork) */
int register_machine(Registration *r, const Settings *s, const uint8_t uuid[16], pid_t leader, const int *ifindexes, size_t n_ifindexes);

/* Unregisters (if registered) and disconnects. NULL is fine. Logs warnings. */
Registration *register_close(Registration *r);

/* The journal of the guest, visible to the host's journalctl
 * (--link-journal=): "host" makes the host's /var/log/journal/ID a bind mount
 * of the guest's /var/log/journal/ID (added to MOUNTS, the run's custom mounts), "guest"
 * symlinks the host's /var/log/journal/ID to the tree's. ID is the tree's
 * /etc/machine-id, or the container UUID (UUID; systemd takes it from
 * $container_uuid) when the tree has none. "auto" links only where the host
 * already has /var/log/journal/ID. Call in the monitor, before
 * custom_mounts_prepare(). Logs. */
int link_journal_prepare(const Settings *s, const RootSource *root, uid_t owner, const uint8_t uuid[16],
                         CustomMount **mounts, size_t *n_mounts);

/* --property=NAME=VALUE: 0 if berth knows NAME and VALUE parses; -EINVAL with
 * a static detail otherwise. */
int unit_property_check(const char *assignment, const char **ret_detail);

/* "machine-" + NAME escaped as systemd escapes unit name parts + ".scope". */
int scope_name_for_machine(const char *machine, char **ret);

const char *register_mode_to_string(RegisterMode m);
RegisterMode register_mode_from_string(const char *s);  /* also takes booleans */
const char *link_journal_to_string(LinkJournal l);
LinkJournal link_journal_from_string(const char *s);
