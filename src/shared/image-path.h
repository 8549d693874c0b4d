/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* Where a machine's image is looked up by name, as systemd-nspawn -M does: $BERTH_IMAGE_PATH
 * (colon-separated, for tests and unusual setups), else /etc/machines, /run/machines,
 * /var/lib/machines, /var/lib/container, /usr/local/lib/machines, /usr/lib/machines. */
int image_search_path(char ***ret);

/* The image of machine NAME: the first directory NAME or regular file NAME.raw along the search
 * path. -ENOENT: none; -EINVAL: not a valid machine name. */
int image_find(const char *name, char **ret_path, bool *ret_raw);

/* The search path for messages: "$BERTH_IMAGE_PATH" or the list of places. */
const char *image_search_path_description(void);
