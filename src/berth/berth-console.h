/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include "event-loop.h"

#include "berth-settings.h"

/* In the child, under ROOT before pivot_root, after /dev is mounted: mount a
 * new devpts instance at ROOT/dev/pts, /dev/ptmx -> pts/ptmx, and for modes
 * other than pipe allocate the console pty and bind its slave to /dev/console.
 * Returns the master fd (or -EBADF for pipe) in *ret_master. Logs. */
/* OWNER: the container's root on the host (its user namespace's range), 0 without one. */
int console_setup_child(const char *root, ConsoleMode mode, uid_t owner, int *ret_master);
/* In the child after pivot_root: make /dev/console the payload's stdio and controlling tty (non-pipe modes). */
int console_attach_stdio(ConsoleMode mode);

/* In the child, in a process of the container that is not the payload (the --as-pid2 stub init), after
 * it forked the payload: stdio to /dev/null in non-pipe modes, so that berth's stdio (the host terminal)
 * is not reachable through /proc/1/fd from inside. Logs. */
int console_detach_stdio(ConsoleMode mode);

/* Parent side: forwards between our stdin/stdout and the pty master. */
typedef struct Forwarder Forwarder;
/* The console's hot keys: Ctrl-] three times within a second kills the container; Ctrl-] twice and
 * then p or r (within a second) asks its init to power off or to reboot. */
typedef enum ConsoleEscape {
        CONSOLE_ESCAPE_KILL,
        CONSOLE_ESCAPE_POWEROFF,
        CONSOLE_ESCAPE_REBOOT,
} ConsoleEscape;
typedef void (*forwarder_escape_t)(void *userdata, ConsoleEscape what);

/* INTERACTIVE: stdin -> master -> stdout, the host terminal (stdin, if a tty) in raw mode until
 * forwarder_free(); ESCAPE(USERDATA, WHAT) is called for a hot key (see ConsoleEscape); after KILL
 * no more input is forwarded
 * (it may call event_exit(), it must not free the forwarder). READ_ONLY: master -> stdout only.
 * PASSIVE: the master is read and the output dropped, so that the guest never blocks on its console.
 * PIPE: nothing to do, *RET = NULL and MASTER untouched. Follows SIGWINCH with a signal source of the event loop
 * (blocks SIGWINCH in the calling thread); the console gets the host terminal's size at once. Blocks
 * SIGPIPE (a reader of our stdout that goes away is an EPIPE, not the monitor's death).
 * Takes ownership of MASTER on success only. QUIET is unused (the caller prints the banner). Logs. */
int forwarder_new(Event *e, int master, ConsoleMode mode, bool quiet, forwarder_escape_t escape,
                  void *userdata, Forwarder **ret);
/* --background=COLOR: our terminal's background in this SGR colour (such as 44, 48;5;N) while the
 * container runs, reset at the end; only if the console's output goes to a terminal. 1 if set. */
int forwarder_set_background(Forwarder *f, const char *color);
/* PASSIVE and READ_ONLY: listen on the unix stream socket PATH (mode 0600, parents created, removed by
 * forwarder_free()) for `berthctl console`. One client at a time: it gets the byte 'A', then the
 * console's output (in read-only mode berth's stdout still gets it too) and its input goes to the
 * console; when it disconnects, the console goes back to what it was. A second client gets 'B' (busy)
 * and is closed. Logs. */
int forwarder_listen(Forwarder *f, const char *path);
/* The socket's path while listening, else NULL. Owned by F. */
const char *forwarder_socket_path(const Forwarder *f);
/* Copy the host terminal's size to the console again. Only needed if the caller's event loop owns
 * SIGWINCH itself (then forwarder_new() cannot add its own source); NULL is fine. */
void forwarder_window_changed(Forwarder *f);
/* Prints what is left in the master (gives up after 0.5 s without progress, 3 s in all), restores the
 * host terminal and fd flags, closes the master. NULL is fine; returns NULL, so "f = forwarder_free(f);" makes repeated calls safe. */
Forwarder *forwarder_free(Forwarder *f);
static inline void forwarder_freep(Forwarder **f) {
        forwarder_free(*f);
}
/* Resolve CONSOLE_AUTOPIPE and the default from our stdio. */
ConsoleMode console_mode_resolve(ConsoleMode m, bool set);
