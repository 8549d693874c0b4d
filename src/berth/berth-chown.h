/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* --private-users-ownership=chown: the tree's ownership shifted once, on disk, from the 65536 ids
 * starting at FROM to those starting at TO; a later start with the same range finds it shifted and
 * does nothing. Every inode below DIR_FD (a directory of the tree): its owner and group, the ids
 * in its POSIX ACLs, and its file capabilities (which a chown drops: written again, for the
 * range's root). Set-user-ID and set-group-ID bits survive. Ids outside FROM's range are left as
 * they are, so a hard link met twice is shifted once.
 *
 * The tree is hostile: nothing is resolved by path, no symlink is followed (a symlink's own owner
 * is shifted), no mount point is entered. Logs. */
int tree_shift_ownership(int dir_fd, const char *what, uint32_t from, uint32_t to);
