/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "berth-devices.h"
#include "log.h"
#include "util.h"

/* The device policy of a container: which device nodes it may create (mknod) and open.
 *
 * Trust boundary: the container's root has CAP_MKNOD and, without a user namespace, is root for
 * the kernel's device permission checks. Without a policy it could mknod /dev/sda (or the host's
 * /dev/mem, /dev/kmsg, a USB disk) and read or write the host's disks. systemd-nspawn leaves this
 * to systemd's cgroup handling, so without systemd there is none at all; berth enforces it
 * itself and refuses to start when it can't.
 *
 * Two mechanisms:
 *  - the v1 "devices" controller (hybrid and legacy hosts): "a" into devices.deny, then one line
 *    per device into devices.allow;
 *  - a BPF_PROG_TYPE_CGROUP_DEVICE program attached to the container's cgroup2 directory (pure
 *    cgroup2 hosts, and where the v1 devices hierarchy is mounted nowhere we look).
 * The kernel checks a device against both. Where the host mounts the v1 devices hierarchy, the
 * container and whatever joins it later (berthctl exec writes to every cgroup the record lists)
 * are in berth's v1 devices cgroup, and the program would repeat its rules: it is not loaded there
 * (as systemd on such hosts), which spares every start the verifier and the JIT (0.5-0.6 ms of the
 * monitor's cgroup step, on the way to the child's cgroup namespace). A v1 devices hierarchy
 * mounted nowhere (CGroup.detached) holds the container, but not what berthctl exec starts later,
 * which joins only mounted hierarchies and cgroup2: there the program stays, for those.
 * Each sits on the container's policy cgroup, the parent of its cgroup namespace root
 * (berth-cgroup.h): the guest can mount the v1 devices hierarchy and write its own
 * devices.allow, but the kernel bounds a v1 cgroup's rules by its parent's, and the guest
 * cannot reach its parent's files nor, without bpf() (seccomp), the BPF program. */

typedef struct DeviceRule {
        char type;    /* 'c' or 'b' */
        unsigned major;
        int minor;    /* -1: any */
} DeviceRule;

/* The devices every container gets, read, write and mknod, as nspawn allows them: the basic
 * nodes of /dev, the terminal devices, and tun/fuse, which are namespaced or check permissions
 * themselves. Not 5:1: whatever node it is opened through, the kernel gives the host's system
 * console (a serial port, tty1), to read what is typed there and write to it; the container's
 * /dev/console is a pty of its own devpts (136:N, berth-console.c). */
static const DeviceRule allowed_devices[] = {
        { 'c', 1, 3 },    /* /dev/null */
        { 'c', 1, 5 },    /* /dev/zero */
        { 'c', 1, 7 },    /* /dev/full */
        { 'c', 1, 8 },    /* /dev/random */
        { 'c', 1, 9 },    /* /dev/urandom */
        { 'c', 5, 0 },    /* /dev/tty */
        { 'c', 5, 2 },    /* /dev/ptmx */
        { 'c', 136, -1 }, /* /dev/pts/N */
        { 'c', 10, 200 }, /* /dev/net/tun */
        { 'c', 10, 229 }, /* /dev/fuse */
};

bool device_node_allowed(mode_t mode, dev_t rdev) {
        char type = S_ISCHR(mode) ? 'c' : S_ISBLK(mode) ? 'b' : 0;

        for (size_t i = 0; type && i < ELEMENTSOF(allowed_devices); i++)
                if (allowed_devices[i].type == type && allowed_devices[i].major == major(rdev) &&
                    (allowed_devices[i].minor < 0 || (unsigned) allowed_devices[i].minor == minor(rdev)))
                        return true;
        return false;
}

/* ---- v1 devices controller ---- */

static int devices_v1_apply(const char *path) {
        _cleanup_free_ char *deny = path_join(path, "devices.deny");
        _cleanup_free_ char *allow = path_join(path, "devices.allow");
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (!deny || !allow)
                return log_oom();

        /* Deny first: between the two steps the container is stricter than wanted, never looser.
         * "a" can only be written while the cgroup has no children, i.e. before the payload runs. */
        r = write_string_file(deny, "a", 0);
        if (r < 0)
                return log_error_errno(r, "Failed to write 'a' to '%s': %m", deny);

        /* One rule per write(); one open for all of them. */
        fd = open(allow, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return log_error_errno(negative_errno(), "Failed to open '%s': %m", allow);

        for (size_t i = 0; i < ELEMENTSOF(allowed_devices); i++) {
                const DeviceRule *d = allowed_devices + i;
                char line[64];

                if (d->minor < 0)
                        snprintf(line, sizeof line, "%c %u:* rwm", d->type, d->major);
                else
                        snprintf(line, sizeof line, "%c %u:%d rwm", d->type, d->major, d->minor);
                r = write_string_fd(fd, line);
                if (r < 0)
                        return log_error_errno(r, "Failed to write '%s' to '%s': %m", line, allow);
        }

        log_debug("Device policy set in the v1 devices controller at '%s'.", path);
        return 0;
}

/* ---- cgroup2 BPF program ---- */

#define INSN(c, d, s, o, i) ((struct bpf_insn) { .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define LDX_W(dst, src, off) INSN(BPF_LDX | BPF_W | BPF_MEM, dst, src, off, 0)
#define AND32_IMM(dst, imm) INSN(BPF_ALU | BPF_AND | BPF_K, dst, 0, 0, imm)
#define JNE_IMM(dst, imm, off) INSN(BPF_JMP | BPF_JNE | BPF_K, dst, 0, off, imm)
#define MOV64_IMM(dst, imm) INSN(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* Assembles: for each rule, "type, major (and minor) match -> return 1"; at the end "return 0".
 * The access bits (mknod/read/write) aren't looked at: every rule allows all three. */
static size_t devices_bpf_assemble(struct bpf_insn *insns, size_t max) {
        size_t n = 0;

        /* r1 = struct bpf_cgroup_dev_ctx *; r2 = device type (low 16 bits of access_type),
         * r3 = major, r4 = minor. */
        insns[n++] = LDX_W(BPF_REG_2, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, access_type));
        insns[n++] = AND32_IMM(BPF_REG_2, 0xffff);
        insns[n++] = LDX_W(BPF_REG_3, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, major));
        insns[n++] = LDX_W(BPF_REG_4, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, minor));

        for (size_t i = 0; i < ELEMENTSOF(allowed_devices); i++) {
                const DeviceRule *d = allowed_devices + i;
                int type = d->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR;
                /* Instructions after each jump up to the next rule: [minor check,] mov, exit. */
                int rest = d->minor >= 0 ? 3 : 2;

                if (n + 5 > max)
                        return 0;
                insns[n++] = JNE_IMM(BPF_REG_2, type, rest + 1);
                insns[n++] = JNE_IMM(BPF_REG_3, (int) d->major, rest);
                if (d->minor >= 0)
                        insns[n++] = JNE_IMM(BPF_REG_4, d->minor, 2);
                insns[n++] = MOV64_IMM(BPF_REG_0, 1);
                insns[n++] = EXIT();
        }
        if (n + 2 > max)
                return 0;
        insns[n++] = MOV64_IMM(BPF_REG_0, 0);
        insns[n++] = EXIT();
        return n;
}

static int devices_bpf_apply(const char *path) {
        struct bpf_insn insns[4 + 5 * ELEMENTSOF(allowed_devices) + 2];
        _cleanup_close_ int prog_fd = -EBADF, cg_fd = -EBADF;
        char verifier_log[4096] = "";
        union bpf_attr attr;
        size_t n;

        n = devices_bpf_assemble(insns, ELEMENTSOF(insns));
        if (n == 0)
                return log_error_errno(-E2BIG, "Failed to assemble the device policy program.");

        memset(&attr, 0, sizeof attr);
        attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
        attr.expected_attach_type = BPF_CGROUP_DEVICE;
        attr.insns = (uint64_t) (uintptr_t) insns;
        attr.insn_cnt = (uint32_t) n;
        attr.license = (uint64_t) (uintptr_t) "GPL";
        strncpy(attr.prog_name, "berth_devices", sizeof attr.prog_name - 1);

        prog_fd = (int) syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
        if (prog_fd < 0) {
                int r = negative_errno();

                /* Again with the verifier's log, for the debug output (not the first time: the
                 * log makes loading several times slower). */
                attr.log_buf = (uint64_t) (uintptr_t) verifier_log;
                attr.log_size = sizeof verifier_log;
                attr.log_level = 1;
                if (syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr) < 0 && verifier_log[0])
                        log_debug("BPF verifier: %s", verifier_log);
                return log_debug_errno(r, "Failed to load the device policy BPF program: %m");
        }

        cg_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cg_fd < 0)
                return log_debug_errno(negative_errno(), "Failed to open cgroup '%s': %m", path);

        /* ALLOW_MULTI: the guest's own systemd may attach programs for its units below ours; all of
         * them must allow an access. The attached program stays until the cgroup is removed. */
        memset(&attr, 0, sizeof attr);
        attr.target_fd = (uint32_t) cg_fd;
        attr.attach_bpf_fd = (uint32_t) prog_fd;
        attr.attach_type = BPF_CGROUP_DEVICE;
        attr.attach_flags = BPF_F_ALLOW_MULTI;
        if (syscall(SYS_bpf, BPF_PROG_ATTACH, &attr, sizeof attr) < 0)
                return log_debug_errno(negative_errno(), "Failed to attach the device policy to '%s': %m", path);

        log_debug("Device policy attached as BPF program to '%s'.", path);
        return 0;
}

int devices_apply_policy(const char *v1, bool v1_detached, const char *unified) {
        int r;

#if BERTH_TEST_HOOKS
        /* BERTH_TEST_DEVICES_BPF_ONLY=1: the program alone, as on a pure cgroup2 host */
        if (unified && getenv("BERTH_TEST_DEVICES_BPF_ONLY"))
                v1 = NULL;
#endif
        if (v1) {
                r = devices_v1_apply(v1);
                if (r < 0)
                        return r;
                /* mounted: every process of the machine is in it, enough on its own */
                if (!v1_detached)
                        return 0;
        }

        if (unified) {
                r = devices_bpf_apply(unified);
                if (r >= 0)
                        return 0;
                if (v1) {
                        log_warning_errno(r,
                                          "Failed to attach the device policy BPF program to '%s', relying on "
                                          "the v1 devices controller alone (berthctl exec's commands are not "
                                          "in it): %m",
                                          unified);
                        return 0;
                }
                return log_error_errno(r,
                                       "Failed to apply the device policy to '%s': %m. Refusing to run the container "
                                       "without one (it could open the host's disks). The kernel needs "
                                       "CONFIG_CGROUP_BPF, or mount the v1 devices controller.",
                                       unified);
        }

        if (v1)
                return 0;

        return log_error_errno(-EOPNOTSUPP,
                               "Failed to apply a device policy: the container cgroup is neither in a v1 devices "
                               "hierarchy nor in cgroup2. Refusing to run the container without one (it could "
                               "open the host's disks); mount the devices controller or cgroup2.");
}
