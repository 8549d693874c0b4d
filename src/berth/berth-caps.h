/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* nspawn's default bounding set */
uint64_t capability_default_set(void);
int capability_from_name(const char *name);      /* "CAP_SYS_ADMIN" or "sys_admin"; -EINVAL */
const char *capability_to_name(int cap);
int capability_last_cap(void);
uint64_t capability_all(void);
/* The calling thread's bounding set: what any process we start can have at most. Remembered for
 * the process that asked; capability_forget() forgets it (a process whose set may differ from its
 * parent's: one that entered a user namespace). */
uint64_t capability_bounding_set(void);
void capability_forget(void);
/* "CAP_A,CAP_B" or "all" -> mask; -EINVAL naming nothing */
int capability_parse_list(const char *s, uint64_t *ret, bool *ret_all);

/* Makes the effective set the permitted one: what a change of fsuid away from 0 clears (the file
 * system capabilities) comes back. Does not log. */
int capability_raise_effective(void);

/* In the child just before exec: drop everything not in KEEP from the
 * bounding set (and ambient/inheritable), keep them effective/permitted for
 * root payloads. */
int capability_apply(uint64_t keep);
/* Permitted, effective and inheritable become exactly CAPS (after a change to a user other than
 * root with PR_SET_KEEPCAPS). Does not log. */
int capability_set_exactly(uint64_t caps);
/* Raises CAPS in the ambient set (and the inheritable one it needs); each must be permitted. Does
 * not log. */
int capability_raise_ambient(uint64_t caps);
