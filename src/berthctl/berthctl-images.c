/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* being written */
#include "berthctl.h"
#include "log.h"

#define NOT_YET(fn) \
        int fn(int argc, char *argv[]) { return log_error_errno(-EOPNOTSUPP, "'%s' is not implemented yet.", argv[0]); }
NOT_YET(verb_list_images)
NOT_YET(verb_image_status)
NOT_YET(verb_clone)
NOT_YET(verb_rename)
NOT_YET(verb_remove)
NOT_YET(verb_read_only)
NOT_YET(verb_clean)
NOT_YET(verb_import_tar)
NOT_YET(verb_export_tar)
NOT_YET(verb_import_fs)
