/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "systemd-proto.h"
#include "util.h"

bool systemd_booted(void) {
        struct stat st;

        return lstat("/run/systemd/system/", &st) >= 0 && S_ISDIR(st.st_mode);
}

/* ADDRESS as a sockaddr: "/path" or "@abstract" (its leading NUL, no trailing one). */
static int unix_address(const char *address, struct sockaddr_un *ret, socklen_t *ret_len) {
        size_t l = strlen(address);

        if ((address[0] != '/' && address[0] != '@') || l < 2 || l >= sizeof ret->sun_path)
                return -EINVAL;
        *ret = (struct sockaddr_un) { .sun_family = AF_UNIX };
        memcpy(ret->sun_path, address, l);
        if (address[0] == '@') {
                ret->sun_path[0] = 0;
                *ret_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + l);
        } else
                *ret_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + l + 1);
        return 0;
}

static int send_datagram(const char *address, struct iovec *iov, size_t n_iov) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa;
        struct msghdr mh = { .msg_name = &sa, .msg_iov = iov, .msg_iovlen = n_iov };
        socklen_t sl;
        int r;

        r = unix_address(address, &sa, &sl);
        if (r < 0)
                return r;
        mh.msg_namelen = sl;
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
                return negative_errno();
        return 1;
}

int notify_send_to(const char *address, const char *state) {
        struct iovec iov = { .iov_base = (char *) state, .iov_len = strlen(state) };

        if (isempty(address))
                return 0;
        return send_datagram(address, &iov, 1);
}

int notify_send(const char *state) {
        return notify_send_to(getenv("NOTIFY_SOCKET"), state);
}

int journal_send_to(const char *path, const JournalField *fields, size_t n) {
        /* per field: name, "=" or "\n" + length, value, "\n" */
        struct iovec iov[5 * 16];
        uint64_t lengths[16];
        size_t k = 0;

        if (n > ELEMENTSOF(lengths))
                return -E2BIG;
        for (size_t i = 0; i < n; i++) {
                const char *v = fields[i].value;

                if (!v)
                        continue;
                iov[k++] = (struct iovec) { (char *) fields[i].name, strlen(fields[i].name) };
                if (strchr(v, '\n')) {
                        lengths[i] = htole64((uint64_t) strlen(v));
                        iov[k++] = (struct iovec) { (char *) "\n", 1 };
                        iov[k++] = (struct iovec) { &lengths[i], sizeof lengths[i] };
                } else
                        iov[k++] = (struct iovec) { (char *) "=", 1 };
                iov[k++] = (struct iovec) { (char *) v, strlen(v) };
                iov[k++] = (struct iovec) { (char *) "\n", 1 };
        }
        return send_datagram(path, iov, k);
}
