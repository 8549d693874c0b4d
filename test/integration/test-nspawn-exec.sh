#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# nspawn's options for how the payload is executed and seen: --personality=, --pivot-root=,
# --background=, with their settings keys, on real containers; bad values are one line each and
# change nothing.
. "$(dirname "$0")/lib.sh"
require_root

B=(--console=pipe -q)

# --personality= / Personality=: the execution domain, as uname -m reports it in the container
test_personality() {
        local name
        [ "$(uname -m)" = x86_64 ] || skip "the host is not x86-64 (it is $(uname -m))"
        make_tiny_tree "$ROOT"
        berth "${B[@]}" -D "$ROOT" /bin/uname -m
        assert_eq 0 "$RC"
        assert_eq x86_64 "$OUT" "without --personality="
        berth "${B[@]}" -D "$ROOT" --personality=x86 /bin/uname -m
        assert_eq 0 "$RC" "$ERR"
        assert_eq i686 "$OUT" "--personality=x86"
        berth "${B[@]}" -D "$ROOT" --personality=x86 -a /bin/sh -c 'uname -m; cat /proc/1/personality'
        assert_eq 0 "$RC" "$ERR"
        assert_eq "i686
00000008" "$OUT" "--personality=x86 --as-pid2: the payload and the stub init"
        run setarch i686 "$BERTH" "${B[@]}" -D "$ROOT" --personality=x86-64 /bin/uname -m
        assert_eq 0 "$RC" "$ERR"
        assert_eq x86_64 "$OUT" "--personality=x86-64 from an i686 shell"
        # from a settings file; the command line wins
        name=$(unique_name pers)
        make_tiny_tree "$T/m/$name"
        printf '[Exec]\nPersonality=x86\n' >"$T/m/$name.nspawn"
        berth "${B[@]}" -D "$T/m/$name" /bin/uname -m
        assert_eq 0 "$RC" "$ERR"
        assert_eq i686 "$OUT" "Personality=x86"
        berth "${B[@]}" -D "$T/m/$name" --personality=x86-64 /bin/uname -m
        assert_eq x86_64 "$OUT" "the command line wins"
        # bad values: one line, nothing runs
        berth "${B[@]}" -D "$ROOT" --personality=sparc /usr/bin/payload write /tmp/ran x
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "Invalid --personality= value 'sparc': expected one of: x86-64 x86."
        printf '[Exec]\nPersonality=i386\n' >"$T/m/$name.nspawn"
        berth "${B[@]}" -D "$T/m/$name" /bin/true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "$name.nspawn:2"
        assert_contains "$ERR" "Personality="
        berth --personality=help
        assert_eq 0 "$RC"
        assert_eq "x86-64
x86" "$OUT"
}

run_tests
