#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Point 2: booting a Debian 12 tree with systemd, and a busybox tree with its init.
. "$(dirname "$0")/lib.sh"
require_root
# a Debian boot on a busy machine
RUN_TIMEOUT=300
BOOT_WAIT=240
DEBTEST=$(unique_name debtest)

# One writable copy of the cached Debian tree for the whole file: a boot
# writes to it (journal, random seed), and copying it per case costs seconds.
DEB=/var/tmp/berth-boot-tree.$$
cleanup_deb() { rm -rf "$DEB"; }
trap cleanup_deb EXIT

debian() {
        if [ ! -e "$DEB/.ready" ]; then
                copy_debian_tree "$DEB"
                touch "$DEB/.ready"
        fi
}

# A unit in the guest that waits until the boot is finished, writes what
# systemd says about it to /probe.out and then runs ACTION (poweroff, reboot).
install_probe() {
        local action=$1
        rm -f "$DEB/probe.out"
        cat >"$DEB/etc/systemd/system/berth-probe.service" <<-UNIT
	[Unit]
	Description=berth boot probe
	After=multi-user.target
	[Service]
	Type=exec
	ExecStart=/bin/sh -c 'systemctl is-system-running --wait >/probe.out 2>&1; systemctl --failed --no-legend --plain >>/probe.out 2>&1; sync; systemctl $action'
	[Install]
	WantedBy=multi-user.target
	UNIT
        ln -sf /etc/systemd/system/berth-probe.service "$DEB/etc/systemd/system/multi-user.target.wants/berth-probe.service"
}

remove_probe() {
        rm -f "$DEB/etc/systemd/system/berth-probe.service" "$DEB/etc/systemd/system/multi-user.target.wants/berth-probe.service"
}

test_debian_boots_to_multi_user_and_powers_off() {
        debian
        install_probe poweroff
        berth --console=pipe -q -D "$DEB" -M "$DEBTEST" -b
        remove_probe
        assert_eq 0 "$RC" "poweroff inside ends berth with 0"
        [ -e "$DEB/probe.out" ] || fail "the probe did not run: $OUT $ERR"
        local state
        state=$(cat "$DEB/probe.out")
        assert_eq running "$state" "system state and failed units"
}

# binfmt_misc and a fresh procfs in a booted systemd guest with binfmt.d rules (as
# qemu-user-static installs): its systemd mounts nothing at /proc/sys/fs/binfmt_misc and
# registers nothing (closed); root in it can still mount the host's binfmt_misc and, after
# unshare -m, a procfs with a writable core_pattern (open by design without a user namespace,
# berth(1) SECURITY; opened for writing, never written). The host's entries and sysctls stay
# as they were, and the guest boots with no failed unit.
test_debian_guest_binfmt_misc_and_fresh_proc() {
        debian
        local binfmt_before sysctl_before
        binfmt_before=$(host_binfmt_state) || skip "cannot mount binfmt_misc on this host"
        sysctl_before=$(host_sysctl_state)
        mkdir -p "$DEB/etc/binfmt.d"
        echo ":berth-test-$$:M::BERTHTESTMAGIC::/bin/false:" >"$DEB/etc/binfmt.d/berth-test.conf"
        cat >"$DEB/usr/local/sbin/berth-binfmt-probe" <<-'PROBE'
	#!/bin/sh
	systemctl is-system-running --wait
	systemctl --failed --no-legend --plain
	grep -q " /proc/sys/fs/binfmt_misc " /proc/self/mounts && echo "binfmt_misc mounted by the guest"
	echo "systemd-binfmt: $(systemctl show -P ConditionResult systemd-binfmt.service)"
	mkdir -p /run/b /run/p
	mount -t binfmt_misc binfmt_misc /run/b && (exec 3>>/run/b/register) && echo "hole: binfmt_misc register openable"
	umount /run/b
	mount -t proc proc /run/p 2>/dev/null && echo "fresh proc in the container's namespace"
	unshare -m sh -c 'mount -t proc proc /run/p && (exec 3>>/run/p/sys/kernel/core_pattern) &&
	        echo "hole: core_pattern openable after unshare -m"'
	PROBE
        chmod 755 "$DEB/usr/local/sbin/berth-binfmt-probe"
        rm -f "$DEB/probe.out"
        cat >"$DEB/etc/systemd/system/berth-probe.service" <<-UNIT
	[Unit]
	Description=berth binfmt probe
	After=multi-user.target
	[Service]
	Type=exec
	ExecStart=/bin/sh -c '/usr/local/sbin/berth-binfmt-probe >/probe.out 2>&1; sync; systemctl poweroff'
	[Install]
	WantedBy=multi-user.target
	UNIT
        ln -sf /etc/systemd/system/berth-probe.service "$DEB/etc/systemd/system/multi-user.target.wants/berth-probe.service"
        berth --console=pipe -q --private-users=no -D "$DEB" -M "debbf-$$" -b
        remove_probe
        rm -f "$DEB/usr/local/sbin/berth-binfmt-probe" "$DEB/etc/binfmt.d/berth-test.conf"
        assert_eq "$binfmt_before" "$(host_binfmt_state)" "host binfmt_misc entries"
        assert_eq "$sysctl_before" "$(host_sysctl_state)" "host sysctls"
        assert_eq 0 "$RC" "poweroff inside ends berth with 0"
        [ -e "$DEB/probe.out" ] || fail "the probe did not run: $OUT $ERR"
        OUT=$(cat "$DEB/probe.out")
        assert_eq "running
systemd-binfmt: no
hole: binfmt_misc register openable
hole: core_pattern openable after unshare -m" "$OUT" "state, failed units, binfmt_misc and proc as documented"
}

# The cgroup escapes of a container without a user namespace, tried by root in a booted guest
# (systemd manages its own cgroups there): no v1 hierarchy shows its release_agent, none of
# the host's release_agent values changes, the v1 device policy cannot be widened; and the
# guest still boots with no failed unit.
test_debian_guest_cannot_reach_release_agent_or_widen_devices() {
        debian
        local agents_before agents_after f roots_before h
        agents_before=$(for f in /sys/fs/cgroup/*/release_agent; do echo "$f=$(cat "$f")"; done)
        roots_before=$(cgroup_roots)
        cat >"$DEB/usr/local/sbin/berth-cgroup-probe" <<-'PROBE'
	#!/bin/sh
	systemctl is-system-running --wait
	systemctl --failed --no-legend --plain
	mkdir -p /run/cgt
	for h in $(awk -F: '$1 != 0 { print $2 }' /proc/self/cgroup); do
	        case $h in name=*) o=none,$h ;; *) o=$h ;; esac
	        mount -t cgroup -o "$o" cgroup /run/cgt || { echo "unmountable $o"; continue; }
	        echo "mounted $o"
	        find /run/cgt -name release_agent
	        { echo /berth-test-evil >/run/cgt/release_agent; } 2>/dev/null && echo "wrote $o"
	        mount -o remount,release_agent=/berth-test-evil /run/cgt 2>/dev/null && echo "remounted $o"
	        if [ "$o" = devices ]; then
	                for rule in a "b 8:0 rwm" "c 1:1 rwm"; do
	                        { echo "$rule" >/run/cgt/devices.allow; } 2>/dev/null && echo "widened: $rule"
	                done
	        fi
	        umount /run/cgt
	done
	PROBE
        chmod 755 "$DEB/usr/local/sbin/berth-cgroup-probe"
        rm -f "$DEB/probe.out"
        cat >"$DEB/etc/systemd/system/berth-probe.service" <<-UNIT
	[Unit]
	Description=berth cgroup probe
	After=multi-user.target
	[Service]
	Type=exec
	ExecStart=/bin/sh -c '/usr/local/sbin/berth-cgroup-probe >/probe.out 2>&1; sync; systemctl poweroff'
	[Install]
	WantedBy=multi-user.target
	UNIT
        ln -sf /etc/systemd/system/berth-probe.service "$DEB/etc/systemd/system/multi-user.target.wants/berth-probe.service"
        berth --console=pipe -q -D "$DEB" -M "debcg-$$" -b
        remove_probe
        rm -f "$DEB/usr/local/sbin/berth-cgroup-probe"
        agents_after=$(for f in /sys/fs/cgroup/*/release_agent; do echo "$f=$(cat "$f")"; done)
        if [ "$agents_before" != "$agents_after" ]; then
                for f in /sys/fs/cgroup/*/release_agent; do
                        grep -qx "$f=" <<<"$agents_before" && echo >"$f"
                done
                fail "the guest changed the host's release_agent: before '$agents_before', after '$agents_after'"
        fi
        assert_eq 0 "$RC" "poweroff inside ends berth with 0"
        [ -e "$DEB/probe.out" ] || fail "the probe did not run: $OUT $ERR"
        OUT=$(cat "$DEB/probe.out")
        assert_eq running "$(head -n 1 <<<"$OUT")" "system state"
        # the hierarchies the host had throughout, as the probe names them: another run's named
        # ones come and go meanwhile (lib.sh), and the guest may find one it listed gone
        assert_eq "" "$(sed -n '2,$p' <<<"$OUT" | grep -v -e '^mounted ' -e '^unmountable ')" \
                "failed units, release_agent files, successful writes"
        assert_eq "" "$(still_unmountable "$OUT" "$roots_before")" "hierarchies the guest could not mount"
        for h in $(stable_v1_mount_opts "$roots_before"); do
                assert_contains "$OUT" "mounted $h"
        done
}

test_reboot_inside_exits_133() {
        debian
        install_probe reboot
        berth --console=pipe -q -D "$DEB" -M "$DEBTEST" -b
        remove_probe
        assert_eq 133 "$RC"
}

test_sigterm_powers_guest_off_cleanly() {
        debian
        rm -f "$DEB/var/log/shutdown-marker"
        # a unit whose stop leaves a mark: proof of a clean shutdown rather than a kill
        cat >"$DEB/etc/systemd/system/berth-mark.service" <<-UNIT
	[Service]
	Type=oneshot
	RemainAfterExit=yes
	ExecStart=/bin/true
	ExecStop=/bin/sh -c 'echo stopped >/var/log/shutdown-marker'
	[Install]
	WantedBy=multi-user.target
	UNIT
        ln -sf /etc/systemd/system/berth-mark.service "$DEB/etc/systemd/system/multi-user.target.wants/berth-mark.service"
        "$BERTH" --console=pipe -q -D "$DEB" -M "$DEBTEST" -b >"$T/out" 2>&1 &
        local pid=$!
        WAIT_TIMEOUT=$BOOT_WAIT wait_for grep -q '^STATE=ready' "/run/berth/machines/$DEBTEST" || fail "guest never became ready: $(cat "$T/out")"
        kill -TERM "$pid"
        local rc=0
        wait "$pid" || rc=$?
        rm -f "$DEB/etc/systemd/system/berth-mark.service" "$DEB/etc/systemd/system/multi-user.target.wants/berth-mark.service"
        assert_eq 0 "$rc"
        assert_eq stopped "$(cat "$DEB/var/log/shutdown-marker" 2>/dev/null)"
}

# Listens on a datagram socket like systemd's NOTIFY_SOCKET and writes what arrives to a file (made
# once it listens). The socket: a path, or "@name" for an abstract one.
notify_listener() {
        # stdout must not be the caller's: $(notify_listener ...) would wait for it to close
        python3 - "$1" "$2" >/dev/null 2>&1 <<-'PY' &
	import socket, sys, time
	s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
	s.bind("\0" + sys.argv[1][1:] if sys.argv[1].startswith("@") else sys.argv[1])
	s.settimeout(300)
	with open(sys.argv[2], "w") as out:
	    try:
	        while True:
	            msg = s.recv(4096).decode()
	            out.write(msg + "\n"); out.flush()
	            if "READY=1" in msg:
	                break
	    except socket.timeout:
	        pass
	PY
        echo $!
}

test_notify_ready_passes_guest_readiness() {
        command -v python3 >/dev/null || skip "python3 missing"
        debian
        local lpid
        lpid=$(notify_listener "$T/notify.sock" "$T/notify.out")
        wait_for test -S "$T/notify.sock" || fail "listener did not start"
        NOTIFY_SOCKET="$T/notify.sock" "$BERTH" --console=pipe -q -D "$DEB" -M "$DEBTEST" -b --notify-ready=yes >"$T/out" 2>&1 &
        local pid=$!
        WAIT_TIMEOUT=$BOOT_WAIT wait_for grep -q READY=1 "$T/notify.out" || fail "no READY=1: $(cat "$T/out")"
        # by the time we are told, the guest has really reached its target
        grep -q '^STATE=ready' "/run/berth/machines/$DEBTEST" || fail "READY=1 passed on before the guest's"
        grep -q '^STATUS=' "$T/notify.out" || fail "no STATUS= passed on: $(cat "$T/notify.out")"
        kill -TERM "$pid"
        wait "$pid" || true
        wait "$lpid" 2>/dev/null || true
}

test_notify_ready_no_reports_at_start() {
        command -v python3 >/dev/null || skip "python3 missing"
        make_tiny_tree "$ROOT"
        local lpid
        lpid=$(notify_listener "$T/notify.sock" "$T/notify.out")
        wait_for test -S "$T/notify.sock" || fail "listener did not start"
        NOTIFY_SOCKET="$T/notify.sock" "$BERTH" --console=pipe -q -D "$ROOT" /usr/bin/payload sleep 100 &
        local pid=$!
        wait_for grep -q READY=1 "$T/notify.out" || fail "no READY=1"
        kill -TERM "$pid"
        wait "$pid" || true
        wait "$lpid" 2>/dev/null || true
}

# systemd gives some services an abstract socket (NOTIFY_SOCKET=@name)
test_notify_ready_to_an_abstract_socket() {
        command -v python3 >/dev/null || skip "python3 missing"
        make_tiny_tree "$ROOT"
        local lpid sock="@berth-test-notify-$ROOT_NAME"
        lpid=$(notify_listener "$sock" "$T/notify.out")
        wait_for test -e "$T/notify.out" || fail "listener did not start"
        NOTIFY_SOCKET=$sock "$BERTH" --console=pipe -q -D "$ROOT" /usr/bin/payload sleep 100 &
        local pid=$!
        wait_for grep -q READY=1 "$T/notify.out" || fail "no READY=1"
        kill -TERM "$pid"
        wait "$pid" || true
        wait "$lpid" 2>/dev/null || true
}

test_guest_notify_socket() {
        # a payload's READY=1 reaches berth through /run/host/notify
        make_tiny_tree "$ROOT"
        "$BERTH" --console=pipe -q -D "$ROOT" /bin/sh -c '/usr/bin/payload notify "READY=1"; sleep 100' &
        local pid=$!
        wait_for grep -q '^STATE=ready' "/run/berth/machines/$ROOT_NAME" || fail "READY=1 from the guest not seen"
        kill -TERM "$pid"
        wait "$pid" || true
}

test_busybox_init_boots_and_stops_on_sigterm() {
        make_tiny_tree "$ROOT"
        "$BERTH" --console=pipe -q -D "$ROOT" -b >"$T/out" 2>&1 &
        local pid=$!
        wait_for grep -q booted "$T/out" || fail "busybox init did not run sysinit: $(cat "$T/out")"
        kill -TERM "$pid"
        local rc=0
        wait "$pid" || rc=$?
        assert_eq 0 "$rc" "busybox init powered off on SIGUSR2"
        grep -q shutdown "$T/out" || fail "shutdown actions did not run: $(cat "$T/out")"
}

# A host limit a booted guest would run into (root's inotify instances: a guest's systemd that
# gets none exits 255 without a word) is named in one line, with the sysctl that raises it: while
# the guest starts, and again when its init has failed. Limits are host-wide: the test build takes
# an assumed value from $BERTH_TEST_HOST_LIMIT instead of lowering the real one under other tests.
test_host_limit_warnings() {
        grep -qx '#define BERTH_TEST_HOOKS 1' "${BERTH_BUILD:-/nonexistent}/config.h" 2>/dev/null ||
                skip "not a test build: meson configure -Dtest-hooks=true (test/run-all does)"
        local name log
        name=$(unique_name limits)
        log=$T/$name.log
        make_tiny_tree "$ROOT"
        BERTH_TEST_HOST_LIMIT=fs.inotify.max_user_instances=5 start_bg "$name" "$ROOT" --console=pipe --private-users=no -b
        wait_for grep -q booted "$log" || fail "busybox init did not run: $(cat "$log")"
        wait_for grep -q "may fail to boot" "$log" || fail "no warning: $(cat "$log")"
        stop_bg "$BG_PID"
        assert_eq 1 "$(grep -c "^berth:" "$log")" "one line of berth's: $(cat "$log")"
        assert_match "$(grep "^berth:" "$log")" "^berth: Machine '$name' may fail to boot: [0-9]+ of the host's 5 inotify instances are in use \\(fs.inotify.max_user_instances\\), and a booted systemd takes about [0-9]+\\. Raise it: sysctl -w fs.inotify.max_user_instances=[0-9]+\\.\$"
        # room enough: nothing said (start_bg removes the first start's log: its "booted", read
        # before the new start truncated the file, once sent SIGTERM to a shell not yet turned into
        # berth, which lost it, and the case waited for ever)
        BERTH_TEST_HOST_LIMIT=fs.inotify.max_user_instances=1000000 start_bg "$name" "$ROOT" --console=pipe --private-users=no -b
        wait_for grep -q booted "$log" || fail "busybox init did not run: $(cat "$log")"
        stop_bg "$BG_PID"
        assert_eq "" "$(grep "^berth:" "$log")"
        # an init that fails at once: perhaps for want of the limit, which it cannot say
        printf '#!/bin/sh\nexit 255\n' >"$ROOT/sbin/init.fail"
        chmod +x "$ROOT/sbin/init.fail"
        mv "$ROOT/sbin/init" "$ROOT/sbin/init.real"
        mv "$ROOT/sbin/init.fail" "$ROOT/sbin/init"
        RC=0
        BERTH_TEST_HOST_LIMIT=fs.inotify.max_user_instances=1 \
                "$BERTH" --console=pipe -q -D "$ROOT" -M "$name" --private-users=no -b >"$T/out" 2>"$T/err" || RC=$?
        assert_eq 255 "$RC"
        assert_contains "$(cat "$T/err")" "Machine '$name' may have failed for want of inotify instances"
        RC=0
        BERTH_TEST_HOST_LIMIT=fs.inotify.max_user_instances=1000000 \
                "$BERTH" --console=pipe -q -D "$ROOT" -M "$name" --private-users=no -b >"$T/out" 2>"$T/err" || RC=$?
        assert_eq 255 "$RC"
        assert_not_contains "$(cat "$T/err")" "for want of"
        mv "$ROOT/sbin/init.real" "$ROOT/sbin/init"
}

# Counting root's inotify instances walks every fd of every process: a fleet started at once would
# walk its guests' processes once per guest. A count is reused host-wide for a while
# (RUN/host-limits/SYSCTL: "USEC COUNT STARTS"), each start adding what a guest takes, and made
# again only when that estimate comes near the limit.
boottime_usec() {
        awk '{ printf "%.0f\n", $1 * 1000000 }' /proc/uptime
}

test_host_limit_count_is_reused_for_a_while() {
        grep -qx '#define BERTH_TEST_HOOKS 1' "${BERTH_BUILD:-/nonexistent}/config.h" 2>/dev/null ||
                skip "not a test build: meson configure -Dtest-hooks=true (test/run-all does)"
        local name f at
        name=$(unique_name count)
        private_run_dir
        make_tiny_tree "$ROOT"
        f=$RUN_DIR/host-limits/fs.inotify.max_user_instances
        mkdir -p "$RUN_DIR/host-limits"
        boot_once() {
                BERTH_TEST_COUNT_FRESH_SEC=600 BERTH_TEST_HOST_LIMIT=fs.inotify.max_user_instances=$1 \
                        start_bg "$name" "$ROOT" --console=pipe --private-users=no -b
                wait_for grep -q booted "$T/$name.log" || fail "busybox init did not run: $(cat "$T/$name.log")"
                wait_for grep -q " $2\$" "$f" || fail "the count is '$(cat "$f")', expected its starts at $2"
                stop_bg "$BG_PID"
        }
        # a count of 7 made just now, 3 starts since: the next start takes it (7 + 4 * 10 = 47, room
        # enough under 1000000) without walking anything
        at=$(boottime_usec)
        echo "$at 7 3" >"$f"
        boot_once 1000000 4
        assert_eq "$at 7 4" "$(cat "$f")"
        assert_eq "" "$(grep "^berth:" "$T/$name.log")"
        # near the limit (7 + 5 * 10 + 10 > 60): counted again, and the starts begin anew
        boot_once 60 0
        [ "$(cut -d' ' -f1 "$f")" -gt "$at" ] || fail "not counted again: $(cat "$f")"
}

test_boot_arguments_reach_init() {
        debian
        install_probe poweroff
        # the probe's unit is named on the init's command line: systemd.wants= adds it to
        # the boot transaction even without the [Install] link
        rm -f "$DEB/etc/systemd/system/multi-user.target.wants/berth-probe.service"
        berth --console=pipe -q -D "$DEB" -M "$DEBTEST" -b systemd.wants=berth-probe.service
        remove_probe
        assert_eq 0 "$RC"
        [ -e "$DEB/probe.out" ] || fail "init did not get its arguments"
}

run_tests
