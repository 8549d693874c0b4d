#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# An nspawn command line with an option berth does not have gets that option's name and what to
# do instead, in one line, and changes nothing on the host; a typo still gets "see --help".
. "$(dirname "$0")/lib.sh"
require_root

# nspawn options and what berth's message must name; those berth has gained are left out
NSPAWN_ONLY=(
        "--network-veth|--network-veth" "-n|--network-veth" "--network-zone=web|--network-zone"
        "--private-users=pick|--private-users" "-U|--private-users"
        "--private-users-ownership=map|--private-users-ownership" "--image=/x.raw|--image" "-i /x.raw|--image"
        "--root-hash=abc|--root-hash" "--oci-bundle=/b|--oci-bundle" "--set-credential=a:b|--set-credential"
        "--personality=x86|--personality" "--suppress-sync=yes|--suppress-sync" "-Z ctx|--selinux-context"
)

# berth_has OPTION: berth --help lists it (long or short form)
berth_has() {
        local opt=${1%%=*}
        opt=${opt%% *}
        # (not grep -q: stopping early would end berth with SIGPIPE, and pipefail say "no")
        "$BERTH" --help | grep -E -- "(^|[ ,])$opt([ =\[,]|$)" >/dev/null
}

test_nspawn_options_name_themselves_and_the_way_out() {
        local e arg want n=0
        make_tiny_tree "$ROOT"
        for e in "${NSPAWN_ONLY[@]}"; do
                arg=${e%%|*}
                want=${e#*|}
                berth_has "$arg" && continue
                # shellcheck disable=SC2086 # "-p 80" is two words
                berth -D "$ROOT" $arg /usr/bin/payload true
                assert_eq 1 "$RC" "berth $arg"
                assert_one_line_error
                assert_contains "$ERR" "systemd-nspawn's"
                assert_contains "$ERR" "$want"
                assert_not_contains "$ERR" "see --help"
                n=$((n + 1))
        done
        echo "# $n nspawn-only options checked"
}

test_typos_still_point_to_help() {
        make_tiny_tree "$ROOT"
        berth -D "$ROOT" --no-such-option /usr/bin/payload true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "Unknown option '--no-such-option', see --help."
        berth -D "$ROOT" -Y /usr/bin/payload true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "Unknown option '-Y'"
}

test_help_as_a_value_lists_the_choices() {
        local o
        for o in console volatile resolv-conf timezone settings register link-journal private-users-ownership \
                personality notify-ready no-new-privileges suppress-sync; do
                berth "--$o=help"
                assert_eq 0 "$RC" "--$o=help"
                assert_eq "" "$ERR" "--$o=help writes nothing to stderr"
                [ "$(wc -l <<<"$OUT")" -ge 2 ] || fail "--$o=help listed '$OUT'"
        done
        berth --console=help
        assert_eq "interactive
read-only
passive
pipe
autopipe" "$OUT"
        berth --capability=help
        assert_eq 0 "$RC"
        assert_match "$OUT" '^CAP_SYS_ADMIN$'
        berth --drop-capability=help
        assert_contains "$OUT" CAP_NET_RAW
        berth --rlimit=help
        assert_contains "$OUT" RLIMIT_NOFILE
        berth --kill-signal=help
        assert_contains "$OUT" SIGRTMIN+4
        assert_not_contains "$OUT" SIGKILL
        berth --system-call-filter=help
        assert_contains "$OUT" @system-service
        # nothing else happens: no container, no tree needed
        berth -D /nonexistent --volatile=help
        assert_eq 0 "$RC"
}

# -M NAME without -D or -i: the image is looked up by name, as nspawn does, in $BERTH_IMAGE_PATH here
# (nspawn's places otherwise): a directory first, else NAME.raw; the settings file next to it counts
test_machine_name_finds_the_image() {
        local n=lookup-$$-$RANDOM
        make_tiny_tree "$T/second/$n"
        mkdir -p "$T/first"
        printf '[Exec]\nHostname=found-%s\n' "$$" >"$T/second/$n.nspawn"
        cd /
        BERTH_IMAGE_PATH="$T/first:$T/second" berth -M "$n" --console=pipe -q /bin/hostname
        assert_eq 0 "$RC"
        assert_eq "found-$$" "$OUT"
        # nothing by that name: one line naming the places and the way out
        BERTH_IMAGE_PATH="$T/first" berth -M "$n" --console=pipe -q /bin/true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "No image for machine '$n' in \$BERTH_IMAGE_PATH: pass --directory= or --image=."
        # a raw image by that name (a single ext4 file system)
        command -v mkfs.ext4 >/dev/null || skip "mkfs.ext4 is missing (apt-get install e2fsprogs)"
        truncate -s 64M "$T/first/$n.raw"
        mkfs.ext4 -q -F -d "$T/second/$n" "$T/first/$n.raw"
        BERTH_IMAGE_PATH="$T/first:$T/second" berth -M "$n" --console=pipe -q /usr/bin/payload echo from-raw
        assert_eq 0 "$RC"
        assert_eq from-raw "$OUT"
        # an explicit -D still wins
        BERTH_IMAGE_PATH="$T/first" berth -M "$n" -D "$T/second/$n" --console=pipe -q /bin/hostname
        assert_eq 0 "$RC"
}

# /dev/net/tun and /dev/fuse, as nspawn gives them: a tun interface made in a private network, fuse
# opened; the host's mode kept
test_tun_and_fuse_devices() {
        [ -c /dev/net/tun ] || skip "the host has no /dev/net/tun"
        make_tiny_tree "$ROOT"
        berth -D "$ROOT" --console=pipe -q --private-network /bin/sh -c \
                'stat -c "%a %t:%T" /dev/net/tun; payload tun berthtest0 && ip link show berthtest0 >/dev/null && echo linked'
        assert_eq 0 "$RC"
        assert_eq "$(stat -c '%a %t:%T' /dev/net/tun)
berthtest0
linked" "$OUT"
        ip link show berthtest0 >/dev/null 2>&1 && fail "the tun interface is on the host"
        if [ -c /dev/fuse ]; then
                berth -D "$ROOT" --console=pipe -q /usr/bin/payload open /dev/fuse rw
                assert_eq 0 "$RC"
        fi
}

# A tree that gets /sbin (and with it the init) only from a --bind= has nothing berth can check
# before the mounts: $SYSTEMD_NSPAWN_CHECK_OS_RELEASE=0 lets it boot, as nspawn lets it.
test_check_os_release_knob() {
        make_tiny_tree "$ROOT"
        rm -f "$ROOT/etc/os-release" "$ROOT/sbin/init"
        mkdir -p "$T/sbin"
        printf '#!/bin/sh\necho "init from the bind"\n' >"$T/sbin/init"
        chmod 0755 "$T/sbin/init"
        local opts=(-D "$ROOT" --console=pipe -q -b --bind-ro="$T/sbin:/sbin")
        berth "${opts[@]}"
        assert_eq 1 "$RC" "no os-release: refused by default"
        assert_contains "$ERR" "does not look like an OS tree"
        run env SYSTEMD_NSPAWN_CHECK_OS_RELEASE=1 "$BERTH" "${opts[@]}"
        assert_eq 1 "$RC" "=1: checked"
        run env SYSTEMD_NSPAWN_CHECK_OS_RELEASE=foo "$BERTH" "${opts[@]}"
        assert_eq 1 "$RC" "=foo: refused"
        assert_one_line_error
        assert_contains "$ERR" "Invalid \$SYSTEMD_NSPAWN_CHECK_OS_RELEASE value 'foo'"
        run env SYSTEMD_NSPAWN_CHECK_OS_RELEASE=0 "$BERTH" "${opts[@]}"
        assert_eq 0 "$RC" "=0: the init from the bind boots"
        assert_eq "init from the bind" "$OUT"
        # the check skipped, a missing init is still one line, from inside
        run env SYSTEMD_NSPAWN_CHECK_OS_RELEASE=0 "$BERTH" -D "$ROOT" --console=pipe -q -b
        assert_eq 1 "$RC" "=0 and no init at all"
        assert_one_line_error
        assert_contains "$ERR" "No init found in the container"
}

test_tmpfs_tmp_knob() {
        make_tiny_tree "$ROOT"
        run env SYSTEMD_NSPAWN_TMPFS_TMP=0 "$BERTH" -D "$ROOT" --console=pipe -q /bin/sh -c \
                'echo kept >/tmp/f; grep -c " /tmp " /proc/self/mountinfo'
        assert_eq 1 "$RC" "grep found no /tmp mount"
        assert_eq 0 "$OUT"
        assert_eq kept "$(cat "$ROOT/tmp/f")" "the write reached the tree's /tmp"
        rm -f "$ROOT/tmp/f"
        run env SYSTEMD_NSPAWN_TMPFS_TMP=1 "$BERTH" -D "$ROOT" --console=pipe -q /bin/sh -c 'echo x >/tmp/f'
        assert_eq 0 "$RC"
        [ ! -e "$ROOT/tmp/f" ] || fail "=1: /tmp is not a tmpfs"
        run env SYSTEMD_NSPAWN_TMPFS_TMP=nope "$BERTH" -D "$ROOT" /bin/true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "SYSTEMD_NSPAWN_TMPFS_TMP"
}

# $SYSTEMD_NSPAWN_API_VFS_WRITABLE, as nspawn reads it: which kernel knobs the container may write,
# with the host's network and one of its own, and which combinations with -U are refused (TEST-13's
# api_vfs). A knob is "w" if it opens for writing (never written: "test -w" is no test, busybox
# answers it from the mode bits for root), "ro" if the mount refuses.
api_vfs_probe() {
        local value=$1
        shift
        run env ${value:+SYSTEMD_NSPAWN_API_VFS_WRITABLE=$value} "$BERTH" -D "$ROOT" --console=pipe -q "$@" \
                /bin/sh -c 'r=; for f in /proc/sys/kernel/domainname /proc/sys/net/ipv4/ip_forward /sys/class/net/lo/mtu; do
                        if (exec 3>>"$f") 2>/dev/null; then r="$r w"; else r="$r ro"; fi
                done; echo $r'
}

test_api_vfs_writable_knob() {
        local v
        make_tiny_tree "$ROOT"
        # unset and false: nothing writable but a network of the container's own
        for v in "" 0; do
                api_vfs_probe "$v"
                assert_eq 0 "$RC" "'$v': $ERR"
                assert_eq "ro ro ro" "$OUT" "'$v', the host's network"
                api_vfs_probe "$v" --private-network
                assert_eq "ro w ro" "$OUT" "'$v', a network of its own"
        done
        # network: /proc/sys/net writable whatever the network (without -U, as nspawn grants it)
        api_vfs_probe network
        assert_eq 0 "$RC" "network: $ERR"
        assert_eq "ro w ro" "$OUT" "network, the host's network"
        api_vfs_probe network --private-network
        assert_eq "ro w ro" "$OUT" "network, a network of its own"
        # true: /proc/sys and /sys writable; the masks stay
        for v in 1 yes; do
                api_vfs_probe "$v"
                assert_eq 0 "$RC" "$v: $ERR"
                assert_eq "w w w" "$OUT" "$v, the host's network"
                api_vfs_probe "$v" --private-network
                assert_eq "w w w" "$OUT" "$v, a network of its own"
        done
        run env SYSTEMD_NSPAWN_API_VFS_WRITABLE=1 "$BERTH" -D "$ROOT" --console=pipe -q /bin/sh -c \
                '(exec 3>>/proc/sysrq-trigger) 2>/dev/null && echo sysrq; ls /sys/kernel/security | wc -l'
        assert_eq 0 "$OUT" "=1 keeps /proc/sysrq-trigger and /sys/kernel/security masked"
        # with a user namespace: nothing but /proc/sys/net, and that only in its own network
        api_vfs_probe network -U --private-network
        assert_eq 0 "$RC" "network -U --private-network: $ERR"
        assert_eq "ro w ro" "$OUT" "network, -U, a network of its own"
        for v in 1 yes; do
                api_vfs_probe "$v" -U --private-network
                assert_eq 1 "$RC" "$v with -U: refused"
                assert_one_line_error
                assert_contains "$ERR" "SYSTEMD_NSPAWN_API_VFS_WRITABLE=$v cannot be combined with a user namespace"
        done
        api_vfs_probe network -U
        assert_eq 1 "$RC" "network with -U on the host's network: refused"
        assert_one_line_error
        assert_contains "$ERR" "needs a network of its own"
        api_vfs_probe sometimes
        assert_eq 1 "$RC" "garbage: refused"
        assert_one_line_error
        assert_contains "$ERR" "Invalid \$SYSTEMD_NSPAWN_API_VFS_WRITABLE value 'sometimes'"
}

# hostile: asked for a writable /proc/sys/net only, the guest cannot widen it to the rest
test_api_vfs_network_stays_narrow() {
        make_tiny_tree "$ROOT"
        run env SYSTEMD_NSPAWN_API_VFS_WRITABLE=network "$BERTH" -D "$ROOT" --console=pipe -q /bin/sh -c '
                mount -o remount,rw /proc/sys 2>/dev/null && echo remounted-plain
                mount -o remount,bind,rw /proc/sys 2>/dev/null && echo remounted-bind
                mount -o remount,bind,rw /sys 2>/dev/null && echo remounted-sys
                umount -l /proc/sys/net 2>/dev/null; umount -l /proc/sys 2>/dev/null && echo unmounted
                (exec 3>>/proc/sys/kernel/domainname) 2>/dev/null && echo kernel-writable
                (exec 3>>/sys/class/net/lo/mtu) 2>/dev/null && echo sys-writable
                echo done'
        assert_eq 0 "$RC"
        assert_eq done "$OUT"
}

run_tests
