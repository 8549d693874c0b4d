/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "berth-settings.h"

/* In the child, under ROOT before pivot_root, after /dev is mounted: mount a
 * new devpts instance at ROOT/dev/pts, /dev/ptmx -> pts/ptmx, and for modes
 * other than pipe allocate the console pty and bind its slave to /dev/console.
 * Returns the master fd (or -EBADF for pipe) in *ret_master. Logs. */
int console_setup_child(const char *root, ConsoleMode mode, int *ret_master);
/* In the child after pivot_root: make /dev/console the payload's stdio and controlling tty (non-pipe modes). */
int console_attach_stdio(ConsoleMode mode);

/* Parent side: forwards between our stdin/stdout and the pty master. */
typedef struct Forwarder Forwarder;
typedef void (*forwarder_escape_t)(void *userdata);

/* Puts the host terminal in raw mode for INTERACTIVE (restored by forwarder_free on every exit path),
 * follows SIGWINCH, and calls ESCAPE when Ctrl-] is pressed three times within a second. */
int forwarder_new(sd_event *e, int master, ConsoleMode mode, bool quiet, forwarder_escape_t escape,
                  void *userdata, Forwarder **ret);
/* Drain what is left to read from the master, then restore the terminal. */
Forwarder *forwarder_free(Forwarder *f);
static inline void forwarder_freep(Forwarder **f) {
        forwarder_free(*f);
}
/* Resolve CONSOLE_AUTOPIPE and the default from our stdio. */
ConsoleMode console_mode_resolve(ConsoleMode m, bool set);
