#!/bin/bash
# Build (once) and cache a Debian 12 tree with systemd for boot tests.
# The cache is keyed on the package list so that a change of list rebuilds it.
# Usage: make-debian-tree.sh [CACHE_DIR]; prints the tree's path on stdout.
set -euo pipefail

# libcryptsetup12, which berth links (dm-verity), comes with systemd here: bookworm's systemd depends on it
# libnftables1: berth links it (port forwarding)
# openssh-server (and its openssh-client): tests of berthctl -H start an sshd of their own in the
# systemd test host, and machinectl's transport runs ssh there; the package, not the machine's
# binaries bound in, because sshd also needs its user, /run/sshd and libraries that minbase lacks
PACKAGES="systemd,systemd-sysv,dbus,iproute2,procps,systemd-container,libnl-3-200,libnl-route-3-200,libnftables1,openssh-server"
SUITE=bookworm
MIRROR=${BERTH_TEST_MIRROR:-http://deb.debian.org/debian}
CACHE=${1:-${BERTH_TEST_CACHE:-/var/cache/berth-test}}
key=$(printf '%s %s minbase v2' "$SUITE" "$PACKAGES" | sha256sum | cut -c1-12)
tree="$CACHE/debian-$SUITE-$key"

if [ -e "$tree/.complete" ]; then
        echo "$tree"
        exit 0
fi

command -v debootstrap >/dev/null || { echo "debootstrap is not installed: apt-get install debootstrap" >&2; exit 1; }
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if [ -e "$tree/.complete" ]; then echo "$tree"; exit 0; fi
rm -rf "$tree.tmp"
echo "Creating Debian $SUITE tree in $tree (about a minute)..." >&2
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$tree.tmp" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 || {
        echo "debootstrap failed, see $CACHE/debootstrap.log" >&2; tail -5 "$CACHE/debootstrap.log" >&2; exit 1; }
# A root without password so that a console login works in tests, and no
# leftover machine-id: berth gives each boot its own.
chroot "$tree.tmp" passwd -d root >/dev/null
: >"$tree.tmp/etc/machine-id"
# dbus's postinst made an id of its own, which systemd prefers to $container_uuid when
# /etc/machine-id is empty: every guest (and the systemd test host) would share it
ln -sf /etc/machine-id "$tree.tmp/var/lib/dbus/machine-id"
# The tree is every test host's and every booted guest's root: no sshd on port 22 at boot in any of
# them (a test starts its own, on a port of its own), and no host key that all of them would share
# (the package's postinst made one; a test makes its own)
chroot "$tree.tmp" systemctl mask --quiet ssh.service ssh.socket
rm -f "$tree.tmp"/etc/ssh/ssh_host_*
rm -rf "$tree.tmp/var/cache/apt/archives/"*.deb
rm -rf "$tree"
mv "$tree.tmp" "$tree"
touch "$tree/.complete"
echo "$tree"
