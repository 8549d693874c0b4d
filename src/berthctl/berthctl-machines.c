/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* being written */
#include "berthctl.h"
#include "log.h"

#define NOT_YET(fn) \
        int fn(int argc, char *argv[]) { return log_error_errno(-EOPNOTSUPP, "'%s' is not implemented yet.", argv[0]); }
NOT_YET(verb_list)
NOT_YET(verb_status)
NOT_YET(verb_show)
NOT_YET(verb_start)
NOT_YET(verb_login)
NOT_YET(verb_shell)
NOT_YET(verb_exec)
NOT_YET(verb_console)
NOT_YET(verb_wait)
NOT_YET(verb_poweroff)
NOT_YET(verb_terminate)
NOT_YET(verb_kill)
NOT_YET(verb_enable)
NOT_YET(verb_copy)
NOT_YET(verb_bind)
