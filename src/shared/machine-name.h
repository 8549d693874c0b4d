/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* A machine name is a valid hostname of at most 64 characters:
 * [a-zA-Z0-9-_.] labels, no leading/trailing dot or dash, no "..". */
bool machine_name_is_valid(const char *s);
/* Derive a machine name from a directory's last component; -EINVAL if none can be made. */
int machine_name_from_path(const char *path, char **ret);
/* The same for an image: "foo.raw" names "foo", like nspawn and machinectl. */
int machine_name_from_image_path(const char *path, char **ret);
