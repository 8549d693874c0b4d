#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# berthctl pull-tar, pull-raw, import-raw and export-raw. Each case serves files from $T/www over
# HTTP on 127.0.0.1 (a python3 http.server of its own, on a port unique to the run, with two
# paths that misbehave on purpose) and pulls into its own image directory $T/pool
# ($BERTH_IMAGE_PATH). Signatures use a throw-away key made by the case ($BERTH_IMPORT_KEYRING).
# shellcheck disable=SC2317 # the test_* functions are called by run_tests
. "$(dirname "$0")/lib.sh"
require_root
require_berthctl

bctl() {
        run "$BERTHCTL" "$@"
}

case_setup() {
        mkdir -p "$T/pool" "$T/www" "$T/etc"
        export BERTH_IMAGE_PATH="$T/pool" BERTH_SETTINGS_PATH="$T/etc"
        # the signature cases set their own; a keyring of the host's must not make a case pass
        export BERTH_IMPORT_KEYRING="$T/no-keyring.gpg"
}

# serve: starts the HTTP server on $PORT for $T/www; $URL is its base. /truncated/F sends a
# Content-Length larger than F and closes after F; /error/F answers 500; /slow/F sends F a
# kilobyte every 50 ms.
serve() {
        PORT=$(unique_port)
        URL="http://127.0.0.1:$PORT"
        cat >"$T/server.py" <<-'EOF'
		import http.server, os, sys, time
		class H(http.server.SimpleHTTPRequestHandler):
		    def log_message(self, *a):
		        pass
		    def do_GET(self):
		        for prefix in ("/truncated/", "/error/", "/slow/"):
		            if self.path.startswith(prefix):
		                data = open(os.path.join(sys.argv[2], self.path[len(prefix):]), "rb").read()
		                if prefix == "/error/":
		                    self.send_error(500)
		                    return
		                self.send_response(200)
		                self.send_header("Content-Length", str(len(data) + (4096 if prefix == "/truncated/" else 0)))
		                self.end_headers()
		                if prefix == "/slow/":
		                    for i in range(0, len(data), 1024):
		                        self.wfile.write(data[i:i + 1024])
		                        self.wfile.flush()
		                        time.sleep(0.05)
		                else:
		                    self.wfile.write(data)
		                return
		        return super().do_GET()
		def handler(*a, **k):
		    return H(*a, directory=sys.argv[2], **k)
		s = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), handler)
		open(sys.argv[3], "w").close()
		s.serve_forever()
		EOF
        python3 "$T/server.py" "$PORT" "$T/www" "$T/server.ready" >"$T/server.log" 2>&1 &
        wait_for test -e "$T/server.ready" || fail "the HTTP server did not start: $(cat "$T/server.log")"
}

# sums DIR: SHA256SUMS of the files in DIR
sums() {
        (cd "$1" && find . -maxdepth 1 -type f ! -name 'SHA256SUMS*' -printf '%P\n' | sort | xargs sha256sum) >"$1/SHA256SUMS"
}

assert_pool_empty() {
        [ -z "$(ls -A "$T/pool")" ] || fail "${1:-the failed pull} left: $(ls -A "$T/pool")"
}

# a raw image of the tiny tree: one ext4 file system, no partition table
make_raw() {
        make_tiny_tree "$T/tree"
        truncate -s 48M "$1"
        mkfs.ext4 -q -F -d "$T/tree" "$1"
}

test_pull_tar_runs() {
        local name
        name=$(unique_name tiny)
        make_tiny_tree "$T/tree"
        tar -C "$T/tree" -cJf "$T/www/$name.tar.xz" .
        sums "$T/www"
        serve
        bctl pull-tar --verify=checksum "$URL/$name.tar.xz"
        assert_eq 0 "$RC"
        [ -d "$T/pool/$name/usr/bin" ] || fail "no image '$name' in the pool"
        [ -z "$(find "$T/pool" -maxdepth 1 -name '.#*')" ] || fail "temporaries left in the pool"
        berth --console=pipe -q -D "$T/pool/$name" /usr/bin/payload echo pulled
        assert_eq 0 "$RC"
        assert_eq pulled "$OUT"

        # --json says what came in; --force replaces, --read-only marks it
        bctl pull-tar --verify=checksum "$URL/$name.tar.xz"
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "--force"
        bctl pull-tar --verify=checksum --force --read-only --json=short "$URL/$name.tar.xz" other
        assert_eq 0 "$RC"
        assert_contains "$OUT" '"name":"other"'
        assert_contains "$OUT" "\"sha256\":\"$(sha256sum <"$T/www/$name.tar.xz" | cut -d' ' -f1)\""
        bctl show-image other -p ReadOnly
        assert_eq "ReadOnly=yes" "$OUT"
        (cd "$T/pool" && chattr -i other) || :
}

test_pull_raw_runs() {
        local name c
        name=$(unique_name disk)
        make_raw "$T/disk.raw"
        cp "$T/disk.raw" "$T/www/$name.raw"
        xz -T0 -c "$T/disk.raw" >"$T/www/$name.raw.xz"
        gzip -c "$T/disk.raw" >"$T/www/$name-gz.raw.gz"
        zstd -q -c "$T/disk.raw" >"$T/www/$name-zst.raw.zst"
        sums "$T/www"
        serve
        bctl pull-raw --verify=checksum "$URL/$name.raw.xz"
        assert_eq 0 "$RC"
        cmp "$T/disk.raw" "$T/pool/$name.raw" || fail "the pulled image differs from the served one"
        [ "$(du -k "$T/pool/$name.raw" | cut -f1)" -lt 40000 ] || fail "the pulled image is not sparse"
        berth --console=pipe -q -i "$T/pool/$name.raw" /usr/bin/payload echo from-image
        assert_eq 0 "$RC"
        assert_eq from-image "$OUT"
        for c in "$name-gz.raw.gz" "$name-zst.raw.zst"; do
                bctl pull-raw --verify=checksum "$URL/$c"
                assert_eq 0 "$RC" "pull-raw $c"
                cmp "$T/disk.raw" "$T/pool/${c%%.*}.raw" || fail "$c differs"
        done
        bctl pull-raw --verify=checksum "$URL/$name.raw" plain
        assert_eq 0 "$RC"
        cmp "$T/disk.raw" "$T/pool/plain.raw" || fail "the uncompressed pull differs"
        [ -z "$(find "$T/pool" -maxdepth 1 -name '.#*')" ] || fail "temporaries left in the pool"
}

test_checksum_refusals_leave_nothing() {
        make_tiny_tree "$T/tree"
        tar -C "$T/tree" -czf "$T/www/good.tar.gz" .
        cp "$T/www/good.tar.gz" "$T/www/unlisted.tar.gz"
        sums "$T/www"
        sed -i '/unlisted/d' "$T/www/SHA256SUMS"
        serve
        # a damaged file: its checksum is not the listed one
        printf 'x' >>"$T/www/good.tar.gz"
        bctl pull-tar --verify=checksum "$URL/good.tar.gz" x
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "does not match"
        assert_pool_empty
        bctl pull-tar --verify=checksum "$URL/unlisted.tar.gz" x
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "lists no checksum"
        assert_pool_empty
        rm "$T/www/SHA256SUMS"
        bctl pull-tar --verify=checksum "$URL/unlisted.tar.gz" x
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "--verify=no"
        assert_pool_empty
        bctl pull-tar --verify=no "$URL/unlisted.tar.gz" x
        assert_eq 0 "$RC"
}

test_signature() {
        if ! command -v gpg >/dev/null || ! command -v gpgv >/dev/null; then
                skip "gpg and gpgv are not installed"
        fi
        make_tiny_tree "$T/tree"
        tar -C "$T/tree" -czf "$T/www/signed.tar.gz" .
        sums "$T/www"
        export GNUPGHOME="$T/gnupg"
        mkdir -m 0700 "$GNUPGHOME"
        gpg -q --batch --passphrase '' --quick-gen-key 'berth test <test@berth.invalid>' ed25519 sign never 2>/dev/null
        gpg -q --batch --export >"$T/keyring.gpg"
        gpg -q --batch --detach-sign -o "$T/www/SHA256SUMS.gpg" "$T/www/SHA256SUMS"
        serve

        # no keyring: refused before anything is fetched
        bctl pull-tar "$URL/signed.tar.gz" x
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "--verify=checksum"
        assert_pool_empty

        export BERTH_IMPORT_KEYRING="$T/keyring.gpg"
        bctl pull-tar "$URL/signed.tar.gz" x
        assert_eq 0 "$RC"
        [ -x "$T/pool/x/usr/bin/payload" ] || fail "the signed archive was not imported"

        # SHA256SUMS changed after signing (a checksum swapped in): bad signature
        cp "$T/www/SHA256SUMS" "$T/sums.orig"
        echo "0000000000000000000000000000000000000000000000000000000000000000  other.tar.gz" >>"$T/www/SHA256SUMS"
        bctl pull-tar "$URL/signed.tar.gz" y
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "BAD signature"
        [ ! -e "$T/pool/y" ] || fail "a badly signed archive was imported"
        # signed by a key that is not in the keyring
        cp "$T/sums.orig" "$T/www/SHA256SUMS"
        gpg -q --batch --passphrase '' --quick-gen-key 'stranger <x@berth.invalid>' ed25519 sign never 2>/dev/null
        gpg -q --batch --yes -u x@berth.invalid --detach-sign -o "$T/www/SHA256SUMS.gpg" "$T/www/SHA256SUMS"
        bctl pull-tar "$URL/signed.tar.gz" y
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "does not check out"
        # no signature at all
        rm "$T/www/SHA256SUMS.gpg"
        bctl pull-tar "$URL/signed.tar.gz" y
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "not signed"
        assert_eq x "$(ls -A "$T/pool")"
}

test_bad_urls_and_names() {
        make_tiny_tree "$T/tree"
        tar -C "$T/tree" -cf "$T/www/a.tar" .
        serve
        local u
        for u in "" "ftp://127.0.0.1/a.tar" "not a url" "/srv/a.tar" "$URL/" "$URL/nosuch.tar" \
                "$URL/../../../../etc/passwd" "$URL/sub/..%2f..%2f..%2fetc%2fshadow" "gopher://127.0.0.1/a.tar"; do
                bctl pull-tar --verify=no "$u" x
                assert_eq 1 "$RC" "pull-tar '$u'"
                assert_one_line_error "pull-tar '$u'"
                assert_pool_empty "pull-tar '$u'"
        done
        bctl pull-tar --verify=no "$URL/nosuch.tar" x
        assert_contains "$ERR" "404"
        bctl pull-tar --verify=no "$URL/a.tar" "bad/name"
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_pool_empty
        bctl pull-tar --verify=no "$URL/a.tar" ".."
        assert_eq 1 "$RC"
        assert_one_line_error
        cp "$T/www/a.tar" "$T/www/bad name!.tar"
        bctl pull-tar --verify=no "$URL/bad%20name!.tar"
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "pass NAME"
        assert_pool_empty
        bctl pull-tar --verify=maybe "$URL/a.tar" x
        assert_eq 1 "$RC"
        assert_one_line_error
        # file:// works too
        bctl pull-tar --verify=no "file://$T/www/a.tar" fromfile
        assert_eq 0 "$RC"
        [ -d "$T/pool/fromfile/bin" ] || fail "no image from file://"
}

# libcurl is loaded at the first pull (dl-load.h): a host without it (here: a libcurl.so.4 first
# in the library path that is not libcurl) gets one line that says what to install, not a
# crash in the cleanup of what was never made
test_missing_library_fails_cleanly() {
        local libc
        libc=$(ldd "$BERTHCTL" | awk '$1 == "libc.so.6" { print $3 }')
        [ -e "$libc" ] || fail "no libc.so.6 in: $(ldd "$BERTHCTL")"
        mkdir "$T/lib"
        ln -s "$libc" "$T/lib/libcurl.so.4"
        run env LD_LIBRARY_PATH="$T/lib" "$BERTHCTL" pull-tar --verify=no "http://127.0.0.1:1/a.tar" x
        assert_eq 1 "$RC" "pull-tar without libcurl"
        assert_one_line_error
        assert_contains "$ERR" "Install libcurl4"
        assert_pool_empty
}

test_server_failures_leave_nothing() {
        make_raw "$T/www/d.raw"
        make_tiny_tree "$T/tree"
        tar -C "$T/tree" -cf "$T/www/a.tar" .
        serve
        bctl pull-raw --verify=no "$URL/truncated/d.raw" x
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_pool_empty "a truncated download"
        bctl pull-tar --verify=no "$URL/truncated/a.tar" x
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_pool_empty "a truncated download"
        bctl pull-tar --verify=no "$URL/error/a.tar" x
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "500"
        assert_pool_empty "a server error"
}

pull_in_flight() {
        [ -n "$(find "$T/pool" -maxdepth 1 -name '.#berthctl-*' -size +100k)" ]
}

test_interrupted_pull_leaves_nothing() {
        make_raw "$T/www/d.raw"
        serve
        "$BERTHCTL" pull-raw --verify=no "$URL/slow/d.raw" x >"$T/pull.out" 2>&1 &
        local pid=$!
        wait_for pull_in_flight || fail "the download did not start"
        kill -INT "$pid"
        local rc=0
        wait "$pid" || rc=$?
        assert_eq 1 "$rc" "an interrupted pull fails"
        assert_contains "$(cat "$T/pull.out")" "Interrupted"
        assert_pool_empty "an interrupted pull"
}

# archives with hostile members, made with python's tarfile (GNU tar will not write them)
make_hostile() {
        python3 - "$T/www" "$T/outside" <<-'EOF'
		import io, struct, sys, tarfile
		www, outside = sys.argv[1], sys.argv[2]
		def add(t, name, data=b"x", **kw):
		    ti = tarfile.TarInfo(name)
		    for k, v in kw.items():
		        setattr(ti, k, v)
		    if ti.type == tarfile.REGTYPE:
		        ti.size = len(data)
		        t.addfile(ti, io.BytesIO(data))
		    else:
		        t.addfile(ti)
		def make(name, *members, fmt=tarfile.GNU_FORMAT):
		    with tarfile.open(www + "/" + name, "w", format=fmt) as t:
		        add(t, "bin", type=tarfile.DIRTYPE, mode=0o755)
		        for m in members:
		            add(t, *m[:1], **m[1])
		up = "../" * 12
		make("dotdot.tar", ("../../escaped-dotdot", {}))
		make("absolute.tar", (outside + "/escaped-absolute", {}))
		make("symlink.tar", ("l", {"type": tarfile.SYMTYPE, "linkname": outside}), ("l/escaped-symlink", {}))
		make("symrel.tar", ("d/l", {"type": tarfile.SYMTYPE, "linkname": up + outside}),
		     ("d/l/escaped-symrel", {}))
		make("symdir.tar", ("l", {"type": tarfile.SYMTYPE, "linkname": outside}),
		     ("l/escaped-symdir", {"type": tarfile.DIRTYPE, "mode": 0o755}))
		make("symfile.tar", ("f", {"type": tarfile.SYMTYPE, "linkname": outside + "/f"}), ("f", {"data": b"overwritten"}))
		make("hardlink.tar", ("h", {"type": tarfile.LNKTYPE, "linkname": outside + "/f"}))
		make("hardlink-dotdot.tar", ("h", {"type": tarfile.LNKTYPE, "linkname": up + outside + "/f"}))
		make("hardlink-below.tar", ("l", {"type": tarfile.SYMTYPE, "linkname": outside}),
		     ("h", {"type": tarfile.LNKTYPE, "linkname": "l/f"}))
		make("hardlink-symlink.tar", ("l", {"type": tarfile.SYMTYPE, "linkname": outside}),
		     ("h", {"type": tarfile.LNKTYPE, "linkname": "l"}), ("h/escaped-hardlink", {}))
		make("device.tar", ("dev/sda", {"type": tarfile.BLKTYPE, "devmajor": 8, "devminor": 0}))
		make("devmem.tar", ("dev/mem", {"type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 1}))
		make("devnull.tar", ("dev/null", {"type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3, "mode": 0o666}))
		make("setuid.tar", ("suid", {"mode": 0o4755, "uid": 0, "gid": 0}))
		make("setgid.tar", ("sgid", {"mode": 0o2755, "uid": 0, "gid": 0}),
		     ("var/mail", {"type": tarfile.DIRTYPE, "mode": 0o2775}))
		# cap_net_raw+ep, as the kernel stores it (VFS_CAP_REVISION_2)
		cap = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0).decode("utf-8", "surrogateescape")
		make("caps.tar", ("ping", {"pax_headers": {"SCHILY.xattr.security.capability": cap}, "mode": 0o755}),
		     fmt=tarfile.PAX_FORMAT)
		make("many.tar", *[("f%d" % i, {}) for i in range(20)])
		EOF
}

# outside_unchanged: nothing was written next to the pool, in $T/outside or anywhere under $T
outside_unchanged() {
        assert_eq orig "$(cat "$T/outside/f")" "${1:-}: a file outside the tree changed"
        assert_eq f "$(ls -A "$T/outside")" "${1:-}: something was written outside the tree"
        [ -z "$(find "$T" -name 'escaped-*' ! -path "$T/www/*")" ] ||
                fail "${1:-}: written outside the tree: $(find "$T" -name 'escaped-*' ! -path "$T/www/*")"
}

# refused ARCHIVE [OPTION...]: pull-tar refuses it with one line naming it, nothing is left
refused() {
        local a=$1
        shift
        bctl pull-tar --verify=checksum "$@" "$URL/$a" x
        assert_eq 1 "$RC" "pull-tar $a"
        assert_one_line_error "pull-tar $a"
        assert_contains "$ERR" "Refusing archive '$a'"
        assert_pool_empty "pull-tar $a"
        outside_unchanged "pull-tar $a"
}

test_hostile_tars() {
        mkdir "$T/outside"
        echo orig >"$T/outside/f"
        make_hostile
        sums "$T/www"
        serve
        local a
        for a in dotdot absolute symlink symrel symdir hardlink hardlink-dotdot hardlink-below hardlink-symlink; do
                refused "$a.tar"
        done
        # the "unless asked" ones
        refused device.tar
        assert_contains "$ERR" "--keep-devices"
        refused devmem.tar
        refused setuid.tar
        assert_contains "$ERR" "--keep-setuid"
        refused setgid.tar
        refused caps.tar
        assert_contains "$ERR" "--keep-capabilities"
        # imported too, not only pulled
        bctl import-tar "$T/www/setuid.tar" x
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_pool_empty "import-tar setuid.tar"

        # a symlink replaced by a file: the file is new, nothing is written through the symlink
        bctl pull-tar --verify=checksum "$URL/symfile.tar" symfile
        [ "$RC" = 0 ] || [ ! -e "$T/pool/symfile" ] || fail "a failed pull left an image"
        outside_unchanged symfile.tar

        # device nodes every container may use are imported; any with --keep-devices
        bctl pull-tar --verify=checksum "$URL/devnull.tar" devnull
        assert_eq 0 "$RC"
        [ -c "$T/pool/devnull/dev/null" ] || fail "/dev/null was not kept"
        bctl pull-tar --verify=checksum --keep-devices "$URL/device.tar" device
        assert_eq 0 "$RC"
        [ -b "$T/pool/device/dev/sda" ] || fail "--keep-devices did not keep the device node"
        # setuid and setgid files with --keep-setuid; setgid directories always
        bctl pull-tar --verify=checksum --keep-setuid "$URL/setuid.tar" setuid
        assert_eq 0 "$RC"
        assert_eq 4755 "$(stat -c %a "$T/pool/setuid/suid")" "--keep-setuid kept the bit"
        bctl pull-tar --verify=checksum --keep-setuid "$URL/setgid.tar" setgid
        assert_eq 0 "$RC"
        assert_eq 2775 "$(stat -c %a "$T/pool/setgid/var/mail")" "a setgid directory"
        # file capabilities with --keep-capabilities
        bctl pull-tar --verify=checksum --keep-capabilities "$URL/caps.tar" caps
        assert_eq 0 "$RC"
        python3 -c 'import os, sys; os.getxattr(sys.argv[1], "security.capability")' "$T/pool/caps/ping" ||
                fail "--keep-capabilities did not keep the capability"
        outside_unchanged "the imports that were asked for"
}

# a small compressed archive that expands far: refused at the bound, with nothing left
test_tar_bomb() {
        mkdir -p "$T/bomb" "$T/outside"
        echo orig >"$T/outside/f"
        truncate -s 64M "$T/bomb/zeros"
        local z=zstd
        command -v zstd >/dev/null || z=gzip
        tar -C "$T/bomb" -cf - zeros | "$z" -c >"$T/www/bomb.tar.z"
        [ "$(stat -c %s "$T/www/bomb.tar.z")" -lt 1000000 ] || fail "the bomb is not small"
        sums "$T/www"
        serve
        bctl import-tar --max-size=8M "$T/www/bomb.tar.z" bomb
        assert_eq 1 "$RC"
        assert_one_line_error "import-tar of the bomb"
        assert_contains "$ERR" "expands beyond 8.0M"
        assert_pool_empty "import-tar of the bomb"
        refused bomb.tar.z --max-size=8M
        # under the bound it is an archive like any other
        bctl import-tar --max-size=100M "$T/www/bomb.tar.z" bomb
        assert_eq 0 "$RC"
        assert_eq 67108864 "$(stat -c %s "$T/pool/bomb/zeros")"
        rm -rf "${T:?}/pool/bomb"
        # members
        make_hostile
        sums "$T/www"
        refused many.tar --max-files=10
        assert_contains "$ERR" "more than 10 members"
        bctl pull-tar --verify=checksum --max-files=21 "$URL/many.tar" many
        assert_eq 0 "$RC"
        rm -rf "${T:?}/pool/many"
        # bad values
        bctl import-tar --max-size=lots "$T/www/many.tar" x
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_pool_empty "a bad --max-size="
}

# the second wall: should tar ever write outside the new directory, the write meets a read-only
# host (shown with a "tar" that tries)
test_tar_cannot_write_outside() {
        make_tiny_tree "$T/tree"
        tar -C "$T/tree" -cf "$T/a.tar" .
        mkdir "$T/bin"
        cat >"$T/bin/tar" <<-EOF
		#!/bin/sh
		cat >/dev/null
		echo escaped >"$T/escaped" || exit 2
		exit 0
		EOF
        chmod +x "$T/bin/tar"
        run env PATH="$T/bin:$PATH" "$BERTHCTL" import-tar "$T/a.tar" x
        assert_eq 1 "$RC"
        [ ! -e "$T/escaped" ] || fail "tar wrote outside the new image's directory"
        assert_pool_empty
}

test_import_export_raw() {
        make_raw "$T/disk.raw"
        bctl import-raw "$T/disk.raw"
        assert_eq 0 "$RC"
        cmp "$T/disk.raw" "$T/pool/disk.raw" || fail "import-raw changed the image"
        local s
        for s in raw raw.xz raw.gz raw.zst; do
                bctl export-raw disk "$T/out.$s"
                assert_eq 0 "$RC" "export-raw to .$s"
                run sh -c "'$BERTHCTL' import-raw - 'back-${s//./-}' <'$T/out.$s'"
                assert_eq 0 "$RC" "import-raw of .$s from standard input"
                cmp "$T/disk.raw" "$T/pool/back-${s//./-}.raw" || fail "the .$s round trip changed the image"
        done
        case $(file -b "$T/out.raw.xz") in XZ*) ;; *) fail "out.raw.xz is not xz: $(file -b "$T/out.raw.xz")" ;; esac
        [ "$(du -k "$T/pool/back-raw-zst.raw" | cut -f1)" -lt 40000 ] || fail "the imported image is not sparse"
        run sh -c "'$BERTHCTL' export-raw disk - | cmp - '$T/disk.raw'"
        assert_eq 0 "$RC" "export-raw to standard output"

        bctl export-raw disk "$T/out.raw"
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "--force"
        make_tiny_tree "$T/pool/tree"
        bctl export-raw tree "$T/tree.raw"
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "export-tar"
        bctl import-raw "$T/nosuch.raw"
        assert_eq 1 "$RC"
        assert_one_line_error
        head -c 100000 "$T/out.raw.xz" >"$T/cut.raw.xz"
        bctl import-raw "$T/cut.raw.xz" cut
        assert_eq 1 "$RC"
        [ ! -e "$T/pool/cut.raw" ] || fail "a truncated image was imported"
        [ -z "$(find "$T/pool" -maxdepth 1 -name '.#*')" ] || fail "temporaries left in the pool"
        berth --console=pipe -q -M "$(unique_name round-trip)" -i "$T/pool/back-raw-xz.raw" /usr/bin/payload echo round-trip
        assert_eq 0 "$RC"
        assert_eq round-trip "$OUT"
}

run_tests
