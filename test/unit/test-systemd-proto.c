/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What berth says to systemd without libsystemd: sd_notify()'s datagrams to a path or an abstract
 * socket, and journal entries in the native protocol, as a listener receives them. */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "systemd-proto.h"
#include "tap.h"
#include "util.h"

/* A datagram socket bound to ADDRESS ("/path" or "@abstract"), as systemd's would be. */
static int listener(const char *address) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t l = strlen(address);
        int fd;

        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        memcpy(sa.sun_path, address, l);
        if (address[0] == '@')
                sa.sun_path[0] = 0;
        else
                l++;
        if (bind(fd, (struct sockaddr *) &sa, (socklen_t) (offsetof(struct sockaddr_un, sun_path) + l)) < 0) {
                close(fd);
                return -errno;
        }
        return fd;
}

static ssize_t receive(int fd, char *buf, size_t size) {
        return recv(fd, buf, size, MSG_DONTWAIT);
}

static void test_notify_to_a_path(void) {
        char dir[] = "/tmp/berth-test-notify-XXXXXX", path[64], buf[64];
        int fd;

        CHECK(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/notify", dir);
        fd = listener(path);
        CHECK(fd >= 0);
        CHECK(notify_send_to(path, "READY=1\nSTATUS=up") == 1);
        CHECK(receive(fd, buf, sizeof buf) == 17 && memcmp(buf, "READY=1\nSTATUS=up", 17) == 0);
        close(fd);
        (void) unlink(path);
        (void) rmdir(dir);
}

static void test_notify_to_an_abstract_socket(void) {
        char address[64], buf[64];
        int fd;

        snprintf(address, sizeof address, "@berth-test-notify-%d", (int) getpid());
        fd = listener(address);
        CHECK(fd >= 0);
        CHECK(notify_send_to(address, "READY=1") == 1);
        CHECK(receive(fd, buf, sizeof buf) == 7 && memcmp(buf, "READY=1", 7) == 0);
        close(fd);
}

static void test_notify_without_a_supervisor(void) {
        CHECK(notify_send_to(NULL, "READY=1") == 0);
        CHECK(notify_send_to("", "READY=1") == 0);
        CHECK(notify_send_to("relative/notify", "READY=1") == -EINVAL);
        CHECK(notify_send_to("@", "READY=1") == -EINVAL);
}

static void test_journal_native_protocol(void) {
        static const char expect_head[] = "MESSAGE\n";
        static const char expect_tail[] = "two\nlines\nPRIORITY=3\nEMPTY=\n";
        char dir[] = "/tmp/berth-test-journal-XXXXXX", path[64], buf[256];
        const JournalField fields[] = {
                { "MESSAGE", "two\nlines" },
                { "ERRNO", NULL },
                { "PRIORITY", "3" },
                { "EMPTY", "" },
        };
        uint64_t len;
        ssize_t n;
        int fd;

        CHECK(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/socket", dir);
        fd = listener(path);
        CHECK(fd >= 0);
        CHECK(journal_send_to(path, fields, ELEMENTSOF(fields)) == 1);
        n = receive(fd, buf, sizeof buf);
        /* a value with a newline: its name, a newline, its length (64 bits, little endian), the
         * value and a newline; the others NAME=VALUE lines; a NULL value not at all */
        CHECK(n == (ssize_t) (strlen(expect_head) + sizeof len + strlen(expect_tail)));
        CHECK(memcmp(buf, expect_head, strlen(expect_head)) == 0);
        memcpy(&len, buf + strlen(expect_head), sizeof len);
        CHECK(le64toh(len) == 9);
        CHECK(memcmp(buf + strlen(expect_head) + sizeof len, expect_tail, strlen(expect_tail)) == 0);
        close(fd);
        (void) unlink(path);
        (void) rmdir(dir);

        CHECK(journal_send_to(path, fields, ELEMENTSOF(fields)) < 0);
}

int main(void) {
        static const TapCase cases[] = {
                { "notify_to_a_path", test_notify_to_a_path },
                { "notify_to_an_abstract_socket", test_notify_to_an_abstract_socket },
                { "notify_without_a_supervisor", test_notify_without_a_supervisor },
                { "journal_native_protocol", test_journal_native_protocol },
        };

        return tap_run(cases, ELEMENTSOF(cases));
}
