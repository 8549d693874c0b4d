/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "berth-settings.h"

/* Validate one --system-call-filter= word list at parse time (names and @groups). -EINVAL with the bad word in *ret_bad. */
int seccomp_parse_filter(Settings *s, const char *arg, char **ret_bad);
/* In the child, last thing before exec: load the allow-list (minus what the
 * capabilities in CAPS don't cover, plus/minus --system-call-filter=), and
 * the ioctl(TIOCSTI/TIOCLINUX) block. Logs. */
int seccomp_apply(const Settings *s, uint64_t caps);
