#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck disable=SC2016 # the single-quoted commands are run by the container's shell
# Credentials (--set-credential=, --load-credential=, --import-credential=, SetCredential=,
# LoadCredential=) and the host's identity in the payload's environment (container_host_*=).
. "$(dirname "$0")/lib.sh"
require_root

B=(--console=pipe -q)

test_set_credential_reaches_the_payload() {
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -D "$ROOT" --set-credential=greeting:'hello\nworld' --set-credential=empty: \
                /bin/sh -c 'echo "dir=$CREDENTIALS_DIRECTORY"; cat "$CREDENTIALS_DIRECTORY/greeting"; echo;
                            stat -c "%n %a %u:%g %s" "$CREDENTIALS_DIRECTORY" "$CREDENTIALS_DIRECTORY"/*'
        assert_eq 0 "$RC" "$ERR"
        assert_eq "dir=/run/host/credentials
hello
world
/run/host/credentials 500 0:0 0
/run/host/credentials/empty 400 0:0 0
/run/host/credentials/greeting 400 0:0 11" "$OUT"
}

test_credentials_are_read_only_and_private() {
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -D "$ROOT" --set-credential=key:secret /bin/sh -c \
                'grep " /run/host/credentials " /proc/self/mountinfo;
                 echo x > /run/host/credentials/key && echo WROTE; touch /run/host/credentials/new && echo MADE; true'
        assert_eq 0 "$RC"
        assert_match "$OUT" " /run/host/credentials ro,nosuid,nodev,noexec"
        assert_not_contains "$OUT" "WROTE"
        assert_not_contains "$OUT" "MADE"
        # nobody but their owner (the container's root here) reads them
        berth "${B[@]}" -D "$ROOT" --set-credential=key:secret /bin/sh -c \
                'chmod 0444 /run/host/credentials/key 2>/dev/null; stat -c "%u %a" /run/host/credentials/key'
        assert_eq "0 400" "$OUT"
        # and nothing of them is on the host's side of the tree
        [ ! -e "$ROOT/run/host/credentials" ] || fail "the credentials were written into the tree"
}

test_no_credentials_no_directory() {
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -D "$ROOT" /bin/sh -c 'echo "dir=${CREDENTIALS_DIRECTORY:-none}"; ls /run/host'
        assert_eq 0 "$RC"
        assert_contains "$OUT" "dir=none"
        assert_not_contains "$OUT" "credentials"
}

test_load_credential_from_file_and_socket() {
        make_tiny_tree "$ROOT"
        printf 'from-file\0bin' >"$T/cred"
        berth "${B[@]}" -D "$ROOT" --load-credential=f:"$T/cred" /bin/sh -c 'od -An -tx1 /run/host/credentials/f | xargs'
        assert_eq 0 "$RC" "$ERR"
        assert_eq "$(od -An -tx1 "$T/cred" | xargs)" "$OUT"
        # an AF_UNIX stream socket is read until it closes, as systemd's LoadCredential= does
        python3 - "$T/sock" <<-'EOF' &
	import socket, sys
	s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
	s.bind(sys.argv[1]); s.listen(1)
	c, _ = s.accept(); c.sendall(b"from-socket"); c.close()
	EOF
        local py=$!
        wait_for test -S "$T/sock" || fail "the socket did not appear"
        berth "${B[@]}" -D "$ROOT" --load-credential=s:"$T/sock" /bin/sh -c 'cat /run/host/credentials/s'
        wait "$py" || true
        assert_eq 0 "$RC" "$ERR"
        assert_eq from-socket "$OUT"
}

test_import_credential_from_berths_own() {
        make_tiny_tree "$ROOT"
        mkdir -p "$T/creds"
        echo one >"$T/creds/app.one"
        echo two >"$T/creds/app.two"
        echo other >"$T/creds/other"
        RC=0
        OUT=$(CREDENTIALS_DIRECTORY=$T/creds "$BERTH" "${B[@]}" -D "$ROOT" --import-credential='app.*' \
                --set-credential=app.two:explicit /bin/sh -c 'cd /run/host/credentials && for f in *; do echo "$f=$(cat $f)"; done' 2>"$T/err") || RC=$?
        assert_eq 0 "$RC" "$(cat "$T/err")"
        assert_eq "app.one=one
app.two=explicit" "$OUT"
        # a relative --load-credential= names one of berth's own
        RC=0
        OUT=$(CREDENTIALS_DIRECTORY=$T/creds "$BERTH" "${B[@]}" -D "$ROOT" --load-credential=x:other \
                /bin/sh -c 'cat /run/host/credentials/x' 2>"$T/err") || RC=$?
        assert_eq 0 "$RC" "$(cat "$T/err")"
        assert_eq other "$OUT"
        # without credentials of its own, an import adds nothing
        berth "${B[@]}" -D "$ROOT" --import-credential='*' /bin/sh -c 'echo "${CREDENTIALS_DIRECTORY:-none}"'
        assert_eq 0 "$RC"
        assert_eq none "$OUT"
}

test_credentials_in_settings_file() {
        local name
        name=$(unique_name cred)
        make_tiny_tree "$T/m/$name"
        echo filed >"$T/cred"
        cat >"$T/m/$name.nspawn" <<-EOF
	[Exec]
	SetCredential=a:from-file
	SetCredential=b:from-file
	LoadCredential=c:$T/cred
	EOF
        # untrusted (next to the tree): SetCredential= counts, LoadCredential= reads a host file: ignored
        berth "${B[@]}" -D "$T/m/$name" --set-credential=b:from-cli /bin/sh -c 'cd /run/host/credentials && for f in *; do echo "$f=$(cat $f)"; done'
        assert_eq 0 "$RC" "$ERR"
        assert_eq "a=from-file
b=from-cli" "$OUT"
        assert_contains "$ERR" "LoadCredential"
        berth "${B[@]}" -D "$T/m/$name" --settings=trusted /bin/sh -c 'cat /run/host/credentials/c'
        assert_eq 0 "$RC" "$ERR"
        assert_eq filed "$OUT"
}

test_credentials_with_userns_belong_to_container_root() {
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -D "$ROOT" -M "$(unique_name credu)" -U --set-credential=k:v /bin/sh -c \
                'stat -c "%u:%g %a" /run/host/credentials/k; cat /run/host/credentials/k'
        assert_eq 0 "$RC" "$ERR"
        assert_eq "0:0 400
v" "$OUT"
}

# The payload's --user= reads them, as with nspawn (a service reads its own); another user does not.
test_credentials_belong_to_the_payload_user() {
        make_tiny_tree "$ROOT"
        local cmd='stat -c "%u:%g %a" /run/host/credentials /run/host/credentials/k; cat /run/host/credentials/k; echo'
        berth "${B[@]}" -D "$ROOT" --set-credential=k:v -u tester /bin/sh -c "$cmd"
        assert_eq 0 "$RC" "$ERR"
        assert_eq "1000:1000 500
1000:1000 400
v" "$OUT"
        berth "${B[@]}" -D "$ROOT" -M "$(unique_name credu2)" -U --set-credential=k:v -u 1000 /bin/sh -c "$cmd"
        assert_eq 0 "$RC" "$ERR"
        assert_eq "1000:1000 500
1000:1000 400
v" "$OUT"
        # a UID without a passwd entry is the user too
        berth "${B[@]}" -D "$ROOT" --set-credential=k:v -u 1234 /bin/sh -c 'cat /run/host/credentials/k'
        assert_eq 0 "$RC" "$ERR"
        assert_eq v "$OUT"
        # nobody else: without --user= another user of the container does not read them
        berth "${B[@]}" -D "$ROOT" --set-credential=k:secret /bin/sh -c \
                'su -s /bin/sh tester -c "cat /run/host/credentials/k" 2>&1 || echo DENIED'
        assert_contains "$OUT" "DENIED"
        assert_not_contains "$OUT" "secret"
}

test_bad_credentials() {
        make_tiny_tree "$ROOT"
        local bad
        for bad in --set-credential=novalue --set-credential=:v --set-credential=a/b:v --set-credential=..:v \
                --set-credential='x:\q' --load-credential=x: --load-credential=x:/no/such/file \
                --load-credential=x:/dev/null --load-credential=x:relative --import-credential=a/b; do
                berth "${B[@]}" -D "$ROOT" "$bad" /bin/true
                assert_eq 1 "$RC" "$bad"
                assert_eq 1 "$(echo "$ERR" | wc -l)" "one line for $bad: $ERR"
                assert_match "$ERR" "^berth: Invalid --(set|load|import)-credential= value"
        done
        head -c $((1024 * 1024 + 1)) /dev/zero >"$T/big"
        berth "${B[@]}" -D "$ROOT" --load-credential=x:"$T/big" /bin/true
        assert_eq 1 "$RC"
        assert_contains "$ERR" "over 1 MiB"
        head -c $((700 * 1024)) /dev/zero >"$T/half"
        berth "${B[@]}" -D "$ROOT" --load-credential=x:"$T/half" --load-credential=y:"$T/half" /bin/true
        assert_eq 1 "$RC"
        assert_contains "$ERR" "more than 1 MiB together"
}

# nspawn's container_host_*: the host's os-release fields, for a guest that wants to know
test_host_identity_in_environment() {
        local id version_id
        make_tiny_tree "$ROOT"
        # shellcheck disable=SC1091
        id=$(. /etc/os-release; echo "${ID:-}")
        # shellcheck disable=SC1091
        version_id=$(. /etc/os-release; echo "${VERSION_ID:-}")
        berth "${B[@]}" -D "$ROOT" /bin/sh -c 'echo "$container_host_id/$container_host_version_id"'
        assert_eq 0 "$RC"
        assert_eq "$id/$version_id" "$OUT"
}

run_tests
