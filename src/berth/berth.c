/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <unistd.h>

#include "berth-container.h"
#include "berth-options.h"
#include "berth-settings-file.h"
#include "log.h"

int main(int argc, char *argv[]) {
        Settings s = { .notify_ready = -1 };
        int r, status = EXIT_SUCCESS;

        log_set_prefix("berth");
        log_open();

        r = parse_argv(argc, argv, &s);
        if (r <= 0) /* error, or --help/--version */
                goto finish;
        /* under systemd, errors of the settings file carry MACHINE= too (-M; else set below) */
        log_set_machine(s.machine);
        if (geteuid() != 0) {
                r = log_error_errno(-EPERM, "berth needs to run as root.");
                goto finish;
        }
        if (s.cleanup) {
                /* as nspawn: the name from -M, or from -D/-i, and nothing else is looked at */
                r = settings_machine_name(&s);
                if (r >= 0)
                        r = container_cleanup(s.machine);
                goto finish;
        }
        r = settings_find_image(&s);
        if (r < 0)
                goto finish;
        /* berth.conf: the host's defaults (a user namespace for every machine), below the command line */
        r = host_config_load(&s);
        if (r < 0)
                goto finish;
        /* NAME.berth/NAME.nspawn: merged into what the command line said, before anything checks it */
        r = settings_file_load(&s);
        if (r < 0)
                goto finish;
        r = settings_verify(&s);
        if (r < 0)
                goto finish;
        log_set_machine(s.machine);

        r = container_run(&s, &status); /* from here on the settings are frozen */
finish:
        settings_free(&s);
        return r < 0 ? EXIT_FAILURE : status;
}
