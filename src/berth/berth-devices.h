/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "berth-cgroup.h"

/* Device policy that berth enforces itself, without systemd: everything but
 * the basic set is denied (mknod and open) below the container's policy
 * cgroups (a CGroupPolicyFunc): in the v1 devices hierarchy (V1, or NULL) and
 * as a BPF_CGROUP_DEVICE program in cgroup2 (UNIFIED, or NULL), the program
 * only where there is no mounted v1 devices hierarchy (V1 NULL, or
 * V1_DETACHED). Logs. */
int devices_apply_policy(const char *v1, bool v1_detached, const char *unified);

/* A device node of this type and number is one every container may use (the table above the
 * policy): what berthctl keeps of the device nodes in an imported archive. */
bool device_node_allowed(mode_t mode, dev_t rdev);
