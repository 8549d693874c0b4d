/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "berth-child.h"
#include "log.h"

/* PID 1 of a --as-pid2 container. The kernel only delivers signals to a PID
 * namespace's init that it has handlers for, and orphans of the namespace
 * are re-parented to it: so this stays small and does just two things, reap
 * every child and pass stop/terminal signals on to PID 2, then leave with
 * PID 2's exit status. */

static const int forwarded[] = {
        SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCONT, SIGWINCH,
};

_noreturn_ void stub_init_run(pid_t payload) {
        sigset_t mask;
        int status = EXIT_FAILURE;

        (void) prctl(PR_SET_NAME, "berth-init");
        sigfillset(&mask);
        (void) sigprocmask(SIG_SETMASK, &mask, NULL);

        for (;;) {
                siginfo_t si;
                int sig = sigwaitinfo(&mask, &si);

                if (sig < 0)
                        continue;
                if (sig == SIGCHLD) {
                        for (;;) {
                                int st;
                                pid_t pid = waitpid(-1, &st, WNOHANG);
                                if (pid <= 0)
                                        break;
                                if (pid != payload)
                                        continue;
                                if (WIFEXITED(st))
                                        status = WEXITSTATUS(st);
                                else if (WIFSIGNALED(st))
                                        status = 128 + WTERMSIG(st);
                                /* PID 2 is gone: leaving takes the rest of the namespace with us */
                                _exit(status);
                        }
                        continue;
                }
                for (size_t i = 0; i < ELEMENTSOF(forwarded); i++)
                        if (forwarded[i] == sig) {
                                (void) kill(payload, sig);
                                break;
                        }
        }
}
