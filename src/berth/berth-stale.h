/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Clean what a dead berth instance for machine NAME left behind: its
 * processes (killed), its cgroups, its record, its overlay work dirs.
 * Only to be called with the machine's registry lock held. 0: nothing was
 * there, 1: something was cleaned. Logs what it cleaned at info level. */
int stale_cleanup(const char *name);
