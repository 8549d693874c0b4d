#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck disable=SC2016 # the single-quoted commands are run by the container's shell
# Point 3 (settings files): NAME.berth / NAME.nspawn next to the tree or in a trusted place,
# merged with the command line; untrusted privileged keys ignored with a word; a broken file
# is a FILE:LINE error that changes nothing.
. "$(dirname "$0")/lib.sh"
require_root

# No trusted places but the ones a case makes: the host's /etc/berth and
# /etc/systemd/nspawn stay out of it.
export BERTH_SETTINGS_PATH=

B=(--console=pipe -q)
NAME=$(unique_name stest)

# the tree $T/images/$NAME, its settings files next to it
setup() {
        make_tiny_tree "$T/images/$NAME"
        TREE=$T/images/$NAME
        NEXT=$T/images/$NAME
}

in_box() {
        berth "${B[@]}" -D "$TREE" "$@"
}

# runs berth with $T/etc as the one trusted place
in_box_trusted_dir() {
        mkdir -p "$T/etc"
        run env BERTH_SETTINGS_PATH="$T/etc" "$BERTH" "${B[@]}" -D "$TREE" "$@"
}

test_file_next_to_tree_sets_environment_and_hostname() {
        setup
        cat >"$NEXT.berth" <<-EOF
		# a comment
		[Exec]
		Environment=FOO=from-file "BAR=two words"
		Hostname = filehost

		[Files]
		ReadOnly=yes
		EOF
        in_box /bin/sh -c 'echo "$FOO|$BAR|$(hostname)"; touch /x 2>/dev/null && echo writable || echo read-only'
        assert_eq 0 "$RC"
        assert_eq "from-file|two words|filehost"$'\n'"read-only" "$OUT"
        assert_not_contains "$ERR" "Ignoring"
}

test_parameters_from_file() {
        setup
        printf '[Exec]\nParameters=/bin/echo "hello  there" x\n' >"$NEXT.berth"
        in_box
        assert_eq 0 "$RC"
        assert_eq "hello  there x" "$OUT"
        # a command on the command line wins
        in_box /bin/echo cli
        assert_eq cli "$OUT"
}

test_command_line_wins_for_scalars_and_merges_lists() {
        setup
        mkdir -p "$T/a" "$T/b"
        echo from-a >"$T/a/f"
        echo from-b >"$T/b/f"
        mkdir -p "$T/etc"
        cat >"$T/etc/$NAME.berth" <<-EOF
		[Exec]
		Hostname=filehost
		Environment=A=file B=file
		[Files]
		Bind=$T/a:/a
		EOF
        in_box_trusted_dir --hostname=clihost --bind="$T/b:/b" -E A=cli \
                /bin/sh -c 'hostname; cat /a/f /b/f; echo "$A $B"'
        assert_eq 0 "$RC"
        assert_eq "clihost"$'\n'"from-a"$'\n'"from-b"$'\n'"cli file" "$OUT"
}

test_override_lets_the_file_win() {
        setup
        printf '[Exec]\nHostname=filehost\nEnvironment=A=file\n' >"$NEXT.berth"
        in_box --settings=override --hostname=clihost -E A=cli -E C=cli /bin/sh -c 'echo "$(hostname) $A $C"'
        assert_eq 0 "$RC"
        assert_eq "filehost file cli" "$OUT"
}

test_untrusted_bind_is_ignored_with_a_warning() {
        setup
        mkdir -p "$T/a"
        echo secret >"$T/a/f"
        cat >"$NEXT.nspawn" <<-EOF
		[Exec]
		Hostname=filehost

		[Files]
		Bind=$T/a:/a
		Bind=$T/a:/a2
		EOF
        in_box /bin/sh -c 'hostname; cat /a/f 2>&1 || true'
        assert_eq 0 "$RC"
        assert_contains "$OUT" "filehost"
        assert_not_contains "$OUT" "secret"
        assert_contains "$ERR" "Ignoring Bind= in untrusted $NEXT.nspawn (line 5): pass --settings=trusted to allow it"
        [ "$(grep -c "Ignoring" <<<"$ERR")" = 1 ] || fail "expected one warning, got: $ERR"

        in_box --settings=trusted /bin/sh -c 'cat /a/f /a2/f'
        assert_eq 0 "$RC"
        assert_eq "secret"$'\n'"secret" "$OUT"
        assert_not_contains "$ERR" "Ignoring"
}

test_trusted_place_honours_privileged_keys() {
        setup
        mkdir -p "$T/a" "$T/etc"
        echo shared >"$T/a/f"
        printf '[Files]\nBindReadOnly=%s:/a\n' "$T/a" >"$T/etc/$NAME.nspawn"
        # and it wins over the untrusted one next to the image
        printf '[Exec]\nHostname=untrusted\n' >"$NEXT.nspawn"
        in_box_trusted_dir /bin/sh -c 'cat /a/f; hostname; echo x >/a/f 2>/dev/null || echo ro'
        assert_eq 0 "$RC"
        assert_eq "shared"$'\n'"$NAME"$'\n'"ro" "$OUT"
        assert_not_contains "$ERR" "Ignoring"
}

test_nspawn_file_read_when_no_berth_file() {
        setup
        printf '[Exec]\nHostname=fromnspawn\n' >"$NEXT.nspawn"
        in_box /bin/hostname
        assert_eq 0 "$RC"
        assert_eq fromnspawn "$OUT"
        printf '[Exec]\nHostname=fromberth\n' >"$NEXT.berth"
        in_box /bin/hostname
        assert_eq fromberth "$OUT"
}

test_settings_no_ignores_the_file() {
        setup
        printf '[Exec]\nHostname=filehost\nBoot=maybe\n' >"$NEXT.berth"
        in_box --settings=no /bin/hostname
        assert_eq 0 "$RC"
        assert_eq "$NAME" "$OUT"
}

test_machine_name_picks_the_file() {
        setup
        local other
        other=$(unique_name other)
        printf '[Exec]\nHostname=bynamefile\n' >"$T/images/$other.berth"
        berth "${B[@]}" -D "$TREE" -M "$other" /bin/hostname
        assert_eq 0 "$RC"
        assert_eq bynamefile "$OUT"
}

# host_unchanged_by FUNC: FUNC leaves the host as it was. Other test runs on this host may start
# or stop containers meanwhile: a change is only a failure if it shows up in all three tries.
host_unchanged_by() {
        local try
        for try in first second; do
                echo "# $try try"
                host_snapshot
                "$@"
                if (assert_host_unchanged) >/dev/null 2>&1; then
                        return 0
                fi
        done
        host_snapshot
        "$@"
        assert_host_unchanged
}

broken_files() {
        local bad
        for bad in 'Boot=maybe|Invalid value for Boot=: '"'maybe'"' (expected a boolean)' \
                'Hostname=bad name|Invalid value for Hostname='; do
                printf '# broken\n[Exec]\n%s\n' "${bad%%|*}" >"$NEXT.berth"
                in_box --bind=/tmp:/mnt /bin/true
                assert_eq 1 "$RC" "${bad%%|*}"
                assert_one_line_error
                assert_contains "$ERR" "$NEXT.berth:3: ${bad#*|}"
        done
        printf '[Network]\nPrivate=yes\nPort=sctp:80\n' >"$NEXT.berth"
        in_box /bin/true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "$NEXT.berth:3: Invalid value for Port=: 'sctp:80' (the protocol must be tcp or udp)"
}

test_vendor_file_with_newer_keys_still_starts() {
        setup
        cat >"$NEXT.nspawn" <<-EOF
		[Exec]
		Environment=FOO=vendor
		SomeFutureKey=yes
		[Files]
		PrivateUsersChown=yes
		[Future]
		Anything=1
		EOF
        in_box /bin/sh -c 'echo "$FOO"'
        assert_eq 0 "$RC"
        assert_eq vendor "$OUT"
        assert_contains "$ERR" "$NEXT.nspawn:3: Unknown key 'SomeFutureKey' in section [Exec], ignoring."
        assert_contains "$ERR" "$NEXT.nspawn:5: Key 'PrivateUsersChown' in section [Files] is not supported by berth yet, ignoring."
        assert_contains "$ERR" "$NEXT.nspawn:6: Unknown section [Future], ignoring its keys."
}

test_broken_file_fails_and_changes_nothing() {
        setup
        host_unchanged_by broken_files
}

test_settings_option_rejects_garbage() {
        berth --settings=sometimes -D /nonexistent /bin/true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "--settings="
}

test_fifo_next_to_tree_does_not_hang() {
        setup
        mkfifo "$NEXT.berth"
        in_box /bin/true
        assert_eq 1 "$RC"
        assert_contains "$ERR" "not a regular file"
}

run_tests
