#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Point 9: every option fed an empty and a malformed value, bad trees, bad
# names: a one-line error naming what is wrong, exit status 1, host unchanged.
. "$(dirname "$0")/lib.sh"
require_root

# long options that take a value, from the help text (the option table)
value_options() {
        "$BERTH" --help | grep -oE -- '--[a-z0-9-]+(\[?=)' | sed -E 's/\[?=$//' | sort -u
}

flag_options() {
        # the help text once: "berth --help | grep -q" would die of SIGPIPE under pipefail
        local help
        help=$("$BERTH" --help)
        grep -oE -- '--[a-z0-9-]+' <<<"$help" | sort -u | while read -r o; do
                grep -qE -- "$o\[?=" <<<"$help" || echo "$o"
        done
}

test_every_option_rejects_empty_and_garbage() {
        make_tiny_tree "$ROOT"
        local opts
        opts=$(value_options)
        [ "$(wc -l <<<"$opts")" -gt 20 ] || fail "too few options found in --help: $opts"
        host_snapshot
        local o v
        for o in $opts; do
                for v in "" "@@garbage@@" "relative/../x" ":::" "$(printf 'a%.0s' {1..300})"; do
                        # a glob of credential names: one that matches nothing imports nothing, as with
                        # nspawn (only what cannot be a glob of names is refused)
                        [ "$o" = --import-credential ] && [[ $v != "" && $v != */* ]] && continue
                        # an empty value resets what a settings file set, as nspawn's does (checked
                        # for --pivot-root= in test-nspawn-exec)
                        [[ $o == --background || $o == --pivot-root ]] && [ -z "$v" ] && continue
                        # --setenv takes "NAME" as a variable of ours: make sure none is set
                        berth -D "$ROOT" --console=pipe -q "$o=$v" /bin/true
                        if [ "$RC" != 1 ]; then
                                fail "$o='$v' was accepted (exit $RC): $ERR"
                        fi
                        assert_one_line_error
                        assert_contains "$ERR" "${o#--}" "error for $o='$v' names the option"
                done
        done
        assert_host_unchanged
}

test_flags_reject_values() {
        local o
        for o in $(flag_options); do
                [ "$o" = --help ] || [ "$o" = --version ] && continue
                berth "$o=yes" -D /nonexistent /bin/true
                assert_eq 1 "$RC" "$o=yes"
                assert_one_line_error
                assert_contains "$ERR" "$o"
        done
}

test_missing_value_and_unknown_option() {
        berth --machine
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "machine"
        berth --no-such-option
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "--no-such-option"
        berth -Z
        assert_eq 1 "$RC"
        assert_one_line_error
}

# A unit's child inherits $JOURNAL_STREAM with its stderr sent elsewhere (a script's 2>file): the
# error must come out where stderr goes, not vanish into the journal (or nowhere, as here).
test_errors_follow_stderr_not_an_inherited_journal_stream() {
        JOURNAL_STREAM=1:2 berth --no-such-option
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "--no-such-option"
        JOURNAL_STREAM=1:2 run "$BERTHCTL" no-such-verb
        assert_eq 1 "$RC"
        assert_contains "$ERR" "no-such-verb"
}

test_tree_errors() {
        host_snapshot
        berth --console=pipe -q -D "$T/missing" /bin/true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "$T/missing"

        touch "$T/file"
        berth --console=pipe -q -D "$T/file" /bin/true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "not a directory"

        mkdir -p "$T/noos/bin"
        berth --console=pipe -q -D "$T/noos" /bin/true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "os-release"

        make_tiny_tree "$ROOT"
        rm -f "$ROOT/sbin/init"
        berth --console=pipe -q -D "$ROOT" -b
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "init"

        berth --console=pipe -q -D / /bin/true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_host_unchanged
}

test_conflicting_options() {
        make_tiny_tree "$ROOT"
        local combo
        for combo in "-b -a" "-a -b" "-x --template=$ROOT" "-x --volatile=yes" "--read-only --volatile=overlay" \
                "-b --user=root" "-b --chdir=/"; do
                # shellcheck disable=SC2086
                berth --console=pipe -q -D "$ROOT" $combo
                assert_eq 1 "$RC" "$combo"
                assert_one_line_error
        done
}

test_bad_directory_name_needs_machine() {
        mkdir -p "$T/bad name!"
        make_tiny_tree "$T/bad name!/"
        berth --console=pipe -q -D "$T/bad name!" /bin/true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "--machine="
        berth --console=pipe -q -D "$T/bad name!" -M "$(unique_name ok)" /usr/bin/payload true
        assert_eq 0 "$RC"
}

test_help_and_version() {
        berth --help
        assert_eq 0 "$RC"
        assert_contains "$OUT" "--directory=PATH"
        berth --version
        assert_eq 0 "$RC"
        assert_match "$OUT" '^berth [0-9]'
}

run_tests
