/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "berth-settings.h"

/* Runs the container described by S to its end. Returns a negative errno
 * after having logged when the container could not be started (berth exits
 * with 1 then), else 0 with the exit status for berth in *ret_status: the
 * payload's, 133 when the guest rebooted, 128+N when it was killed by N. */
int container_run(const Settings *s, int *ret_status);
/* --cleanup: what a dead instance of MACHINE left behind (and dead instances of other names), as a
 * start would clean it, without starting anything. Refused while the machine runs. Logs. */
int container_cleanup(const char *machine);
