/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
int main(void) {
        fprintf(stderr, "berthctl: not written yet\n");
        return 1;
}
