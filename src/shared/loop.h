/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Loop devices over a range of an image file, one per partition: this kernel
 * creates no partition nodes for a loop device's GPT (and hosts without udev
 * would have none anyway), so each partition gets a device of its own at its
 * offset and size. No logging. */

#include <stdbool.h>
#include <stdint.h>

typedef struct LoopDevice {
        int fd;          /* the open device, O_CLOEXEC; -EBADF when none */
        unsigned nr;     /* N of /dev/loopN */
        char path[32];   /* "/dev/loopN" */
} LoopDevice;

#define LOOP_DEVICE_NULL ((LoopDevice) { .fd = -EBADF })

/* Attaches [offset, offset+size) of the file behind IMAGE_FD (size 0: to its end)
 * to a free loop device with LOOP_CONFIGURE, with autoclear: the kernel detaches
 * it when the last user (our fd, a mount) goes away, which also covers a
 * SIGKILLed owner. read_only makes the device refuse writes. */
int loop_attach(int image_fd, uint64_t offset, uint64_t size, bool read_only, LoopDevice *ret);
/* Closes the fd: with autoclear, the device goes once nothing mounts it. */
void loop_device_done(LoopDevice *d);

/* Stale cleanup: detaches PATH ("/dev/loopN") only if it is still backed by the
 * inode IMAGE_DEV:IMAGE_INO (the number may have been given to someone else since).
 * 1 detached (or marked to detach when its last user goes), 0 not ours or free. */
int loop_detach_if_backed_by(const char *path, uint64_t image_dev, uint64_t image_ino);
