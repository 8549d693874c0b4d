/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "berth-cgroup.h"

/* Device policy that berth enforces itself, without systemd: everything but
 * the basic set is denied (mknod and open) for the whole container cgroup.
 * v1 devices controller where it is mounted, a BPF_CGROUP_DEVICE program on
 * cgroup2 otherwise. Logs. */
int devices_apply_policy(const CGroup *cg);
