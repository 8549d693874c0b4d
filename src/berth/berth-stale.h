/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Clean what a dead berth instance for machine NAME left behind: its
 * processes (killed), its cgroups, its record, its overlay work dirs.
 * Only to be called with the machine's registry lock held. 0: nothing was
 * there, 1: something was cleaned. Logs what it cleaned once, at LEVEL
 * (LOG_INFO for the machine being started, LOG_DEBUG for others). */
int stale_cleanup(const char *name, int level);

/* Clean after every dead instance, whatever its name: each stale record (its
 * lock free) is locked, cleaned and removed. Run at every start, so that a
 * berth killed with SIGKILL leaves nothing behind for longer than until the
 * next berth starts. SELF (ours, locked already) is skipped. Logs each at
 * debug level only. Returns the number of instances cleaned. */
int stale_cleanup_all(const char *self);
