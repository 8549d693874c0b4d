/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "loop.h"
#include "util.h"

/* Another process may take the device LOOP_CTL_GET_FREE gave us before we
 * configure it (-EBUSY): ask again, a bounded number of times. */
#define LOOP_ATTACH_TRIES 64

int loop_attach(int image_fd, uint64_t offset, uint64_t size, bool read_only, LoopDevice *ret) {
        _cleanup_close_ int control = -EBADF;
        struct loop_config config = {
                .fd = (uint32_t) image_fd,
                .info = {
                        .lo_offset = offset,
                        .lo_sizelimit = size,
                        .lo_flags = LO_FLAGS_AUTOCLEAR | (read_only ? LO_FLAGS_READ_ONLY : 0),
                },
        };
        char path[32];

        control = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
        if (control < 0)
                return negative_errno();

        for (unsigned i = 0; i < LOOP_ATTACH_TRIES; i++) {
                _cleanup_close_ int fd = -EBADF;
                int nr;

                nr = ioctl(control, LOOP_CTL_GET_FREE);
                if (nr < 0)
                        return negative_errno();
                snprintf(path, sizeof path, "/dev/loop%i", nr);
                fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
                if (fd < 0) {
                        if (errno == ENOENT || errno == ENXIO)
                                continue; /* removed meanwhile */
                        return negative_errno();
                }
                if (ioctl(fd, LOOP_CONFIGURE, &config) < 0) {
                        if (errno == EBUSY)
                                continue;
                        return negative_errno();
                }
                *ret = (LoopDevice) { .fd = TAKE_FD(fd), .nr = (unsigned) nr };
                memcpy(ret->path, path, sizeof path);
                return 0;
        }
        return -EBUSY;
}

void loop_device_done(LoopDevice *d) {
        d->fd = safe_close(d->fd);
}

int loop_detach_if_backed_by(const char *path, uint64_t image_dev, uint64_t image_ino) {
        _cleanup_close_ int fd = -EBADF;
        struct loop_info64 info = {};
        unsigned nr;

        /* only what our records can name: never a path from elsewhere */
        if (!startswith(path, "/dev/loop") || safe_atou(path + strlen("/dev/loop"), &nr) < 0)
                return -EINVAL;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd < 0)
                return errno == ENOENT || errno == ENXIO ? 0 : negative_errno();
        if (ioctl(fd, LOOP_GET_STATUS64, &info) < 0)
                return errno == ENXIO ? 0 : negative_errno(); /* ENXIO: not bound */
        if (info.lo_device != image_dev || info.lo_inode != image_ino || !(info.lo_flags & LO_FLAGS_AUTOCLEAR))
                return 0;
        /* With a mount still on it the kernel only marks it to go with its last user. */
        if (ioctl(fd, LOOP_CLR_FD) < 0 && errno != ENXIO)
                return negative_errno();
        return 1;
}
