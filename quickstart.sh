#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Quick start on a fresh Debian 12 machine, as root:
#   installs the build dependencies with apt-get, builds berth in ./build (nothing is
#   installed system-wide), creates a small Debian 12 tree with systemd in
#   /var/lib/machines/demo (debootstrap, about a minute the first time; cached in
#   /var/cache/berth-test, where the test suite finds it too) and boots it:
#       build/berth -D /var/lib/machines/demo -b
# Log in as root (no password); press Ctrl-] three times within a second to kill the
# container, or run 'poweroff' inside. Run it again to boot the same tree again.
# Options: --no-boot (prepare only), --fresh (recreate the demo tree).
set -euo pipefail

cd "$(dirname "$0")"
DEMO=/var/lib/machines/demo
boot=1
fresh=0
for a in "$@"; do
        case $a in
        --no-boot) boot=0 ;;
        --fresh) fresh=1 ;;
        *) echo "quickstart.sh: unknown argument '$a' (known: --no-boot, --fresh)" >&2; exit 2 ;;
        esac
done

if [ "$(id -u)" != 0 ]; then
        echo "quickstart.sh: run me as root (containers need it)." >&2
        exit 1
fi

packages=(meson ninja-build pkg-config gcc libc6-dev libsystemd-dev libmount-dev libblkid-dev
          libseccomp-dev libnl-route-3-dev libcryptsetup-dev cryptsetup-bin libnftables-dev nftables debootstrap
          libcurl4-openssl-dev libssl-dev systemd-container busybox-static iproute2 util-linux fdisk e2fsprogs
          squashfs-tools erofs-utils btrfs-progs dosfstools libcap2-bin xz-utils zstd gpgv gpg)
missing=()
for p in "${packages[@]}"; do
        [ "$(dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
        echo "==> Installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "==> Building berth in ./build"
[ -e build/build.ninja ] || meson setup build >/dev/null
ninja -C build

if [ "$fresh" = 1 ]; then
        rm -rf --one-file-system "$DEMO"
fi
if [ ! -e "$DEMO/etc/os-release" ] && [ ! -e "$DEMO/usr/lib/os-release" ]; then
        echo "==> Creating the demo tree in $DEMO (Debian 12, minbase + systemd + dbus)"
        tree=$(test/tools/make-debian-tree.sh)
        mkdir -p "$DEMO"
        cp -a --reflink=auto "$tree/." "$DEMO/"
        rm -f "$DEMO/.complete"
        echo demo >"$DEMO/etc/hostname"
fi

if [ "$boot" = 1 ]; then
        echo "==> Booting: build/berth -D $DEMO -b"
        echo "    (log in as root without a password; Ctrl-] three times within 1s kills the container)"
        exec build/berth -D "$DEMO" -b
fi
echo "==> Ready: build/berth -D $DEMO -b"
