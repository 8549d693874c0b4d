#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck disable=SC2317 # cases are called by run_tests
# A corpus of nspawn command lines and .nspawn files as users write them (the shapes of the
# systemd-nspawn(1) and systemd.nspawn(5) examples and of common tutorials: a shell in a tree, a
# boot, binds, an ephemeral or read-only run, a user, private networking, a user namespace, SELinux
# labels), run with berth in systemd-nspawn's place and nothing else changed. Each either works, as
# shown by what the container does, or fails in one line that names what berth lacks.
. "$(dirname "$0")/lib.sh"
require_root

# settings files only from where a case puts them
export BERTH_SETTINGS_PATH=

# nspawn LINE: runs "systemd-nspawn LINE" with berth in its place; DIR in LINE is the case's tree.
# The line is given as a user would type it (shell words, quotes and all). Without a terminal on
# stdin the console is read-only, as nspawn's: the guest writes to a pseudo-terminal, whose line
# discipline ends lines with CR LF; the CRs are dropped before comparing.
nspawn() {
        local line=${1//DIR/$ROOT}
        eval "run \"\$BERTH\" $line"
        OUT=${OUT//$'\r'/}
}

# booted FILE: the tiny tree's init said "booted" in FILE (a console line, CR LF)
booted() {
        grep -qx $'booted\r\\?' "$1"
}

test_shell_in_a_tree() {
        make_tiny_tree "$ROOT"
        nspawn "-D DIR /bin/sh -c 'echo in-container; cat /etc/os-release'"
        assert_eq 0 "$RC"
        assert_contains "$OUT" "in-container"
        assert_contains "$OUT" "ID=berthtest"
        # the short form of the examples, options bundled
        nspawn "-qD DIR /bin/echo quiet"
        assert_eq 0 "$RC"
        assert_eq quiet "$OUT"
}

test_boot_a_tree() {
        make_tiny_tree "$ROOT"
        # busybox's init powers off on SIGUSR2; berth's --kill-signal= picks it, as nspawn's does
        "$BERTH" -bD "$ROOT" --kill-signal=SIGUSR2 -q </dev/null >"$T/boot.out" 2>&1 &
        local pid=$!
        wait_for booted "$T/boot.out" || fail "no boot: $(cat "$T/boot.out")"
        kill -TERM "$pid"
        RC=0
        wait "$pid" || RC=$?
        assert_eq 0 "$RC" "berth's exit status after SIGTERM"
        grep -q '^shutdown' "$T/boot.out" || fail "init did not shut down: $(cat "$T/boot.out")"
}

test_binds() {
        make_tiny_tree "$ROOT"
        mkdir -p "$T/data"
        echo payload-data >"$T/data/file"
        echo ro-data >"$T/ro"
        nspawn "-D DIR --bind=$T/data:/data --bind-ro=$T/ro:/etc/ro-file /bin/sh -c 'cat /data/file /etc/ro-file; echo w >/data/new; echo x >/etc/ro-file'"
        assert_eq 1 "$RC" "the read-only bind refused the write"
        assert_contains "$OUT" "payload-data"
        assert_contains "$OUT" "ro-data"
        assert_eq w "$(cat "$T/data/new")" "written through the bind"
        assert_eq ro-data "$(cat "$T/ro")"
}

test_ephemeral_and_read_only() {
        make_tiny_tree "$ROOT"
        nspawn "-xD DIR /bin/sh -c 'echo gone >/etc/ephemeral && cat /etc/ephemeral'"
        assert_eq 0 "$RC"
        assert_eq gone "$OUT"
        [ ! -e "$ROOT/etc/ephemeral" ] || fail "--ephemeral wrote to the tree"
        nspawn "--read-only -D DIR /bin/touch /etc/x"
        assert_eq 1 "$RC"
        assert_contains "$OUT" "Read-only file system" "the guest's error, on its console"
        [ ! -e "$ROOT/etc/x" ] || fail "--read-only wrote to the tree"
}

test_user_environment_and_directory() {
        make_tiny_tree "$ROOT"
        nspawn "-D DIR -u tester --setenv=LANG=C.UTF-8 --chdir=/tmp /bin/sh -c 'id -u; echo \$LANG; pwd'"
        assert_eq 0 "$RC"
        assert_eq $'1000\nC.UTF-8\n/tmp' "$OUT"
}

test_private_network_and_as_pid2() {
        make_tiny_tree "$ROOT"
        nspawn "--private-network -aD DIR /bin/sh -c 'ls /sys/class/net; echo pid \$\$'"
        assert_eq 0 "$RC"
        assert_eq $'lo\npid 2' "$OUT"
}

test_user_namespace() {
        make_tiny_tree "$ROOT"
        nspawn "-U -D DIR /bin/cat /proc/self/uid_map"
        assert_eq 0 "$RC"
        assert_match "$OUT" "^ *0 +[1-9][0-9]* +65536 *$"
        nspawn "--private-users=pick --private-users-ownership=auto -D DIR /usr/bin/payload stat /etc/passwd"
        assert_eq 0 "$RC"
        assert_contains "$OUT" "uid=0 gid=0"
}

test_tmpfs_and_capability() {
        make_tiny_tree "$ROOT"
        nspawn "-D DIR --tmpfs=/var/log --capability=CAP_NET_ADMIN --drop-capability=CAP_MKNOD /bin/sh -c 'grep \" /var/log \" /proc/self/mounts; grep ^CapBnd /proc/self/status'"
        assert_eq 0 "$RC"
        assert_contains "$OUT" "tmpfs"
        local bnd
        bnd=$(sed -n 's/^CapBnd:[[:space:]]*//p' <<<"$OUT")
        (( (0x$bnd >> 12) & 1 )) || fail "CAP_NET_ADMIN not in the bounding set: $bnd"
        (( ((0x$bnd >> 27) & 1) == 0 )) || fail "CAP_MKNOD still in the bounding set: $bnd"
}

# SELinux labels: berth has no SELinux support; the line names the option and changes nothing
test_selinux_labels_name_what_is_missing() {
        make_tiny_tree "$ROOT"
        host_snapshot
        nspawn "-L system_u:object_r:svirt_sandbox_file_t:s0:c0,c1 -Z system_u:system_r:svirt_lxc_net_t:s0:c0,c1 -D DIR /bin/sh"
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "SELinux"
        assert_host_unchanged
}

# nspawn_with_file ARGS...: berth ARGS, with the settings files of settings_file trusted
nspawn_with_file() {
        run env BERTH_SETTINGS_PATH="$T/etc" "$BERTH" "$@"
        OUT=${OUT//$'\r'/}
}

# settings_file NAME: writes stdin as the trusted settings file of machine NAME
settings_file() {
        mkdir -p "$T/etc"
        cat >"$T/etc/$1.nspawn"
}

# A .nspawn file of the kind the man page and tutorials show, for a shell in the tree
test_nspawn_file_exec_and_files() {
        make_tiny_tree "$ROOT"
        mkdir -p "$T/share"
        echo shared >"$T/share/f"
        settings_file "$ROOT_NAME" <<EOF
# a container with a share and its own environment
[Exec]
Environment=GREETING=hello
WorkingDirectory=/tmp
PrivateUsers=no

[Files]
Bind=$T/share:/srv/share
TemporaryFileSystem=/var/cache
ReadOnly=no

[Network]
Private=yes
EOF
        nspawn_with_file -D "$ROOT" /bin/sh -c \
                'echo $GREETING; pwd; cat /srv/share/f; grep -c " /var/cache tmpfs" /proc/self/mounts; ls /sys/class/net'
        assert_eq 0 "$RC"
        assert_eq $'hello\n/tmp\nshared\n1\nlo' "$OUT"
}

# a boot from a file: Boot=yes and Parameters= (the init's arguments), as in the examples
test_nspawn_file_boot() {
        make_tiny_tree "$ROOT"
        settings_file "$ROOT_NAME" <<EOF
[Exec]
Boot=yes
KillSignal=SIGUSR2
EOF
        env BERTH_SETTINGS_PATH="$T/etc" "$BERTH" -D "$ROOT" -q </dev/null >"$T/boot.out" 2>&1 &
        local pid=$!
        wait_for booted "$T/boot.out" || fail "no boot: $(cat "$T/boot.out")"
        kill -TERM "$pid"
        RC=0
        wait "$pid" || RC=$?
        assert_eq 0 "$RC"
}

# A vendor's file with keys from a newer nspawn: warnings that name them, and the machine starts
test_nspawn_file_with_newer_keys_starts() {
        make_tiny_tree "$ROOT"
        settings_file "$ROOT_NAME" <<EOF
[Exec]
Environment=A=1
SomeFutureKey=yes

[Network]
SomeOtherFutureKey=1
EOF
        nspawn_with_file -D "$ROOT" /bin/sh -c 'echo $A'
        assert_eq 0 "$RC"
        assert_eq 1 "$OUT"
        assert_contains "$ERR" "SomeFutureKey"
        assert_contains "$ERR" "SomeOtherFutureKey"
}

run_tests
