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

# --pivot-root= / PivotRoot=: a directory of the tree (an OSTree deployment) becomes the root; the
# old root is gone, or at the second path
test_pivot_root() {
        local name dep=/ostree/deploy/os/deploy/0
        make_tiny_tree "$ROOT"
        make_tiny_tree "$ROOT$dep"
        mkdir -p "$ROOT$dep/sysroot"
        echo outer >"$ROOT/etc/which"
        echo inner >"$ROOT$dep/etc/which"
        berth "${B[@]}" -D "$ROOT" /bin/cat /etc/which
        assert_eq outer "$OUT" "without --pivot-root="
        berth "${B[@]}" -D "$ROOT" --pivot-root="$dep" /bin/sh -c 'cat /etc/which; ls -d /ostree 2>/dev/null || echo gone'
        assert_eq 0 "$RC" "$ERR"
        assert_eq "inner
gone" "$OUT" "the deployment is the root, the old root is gone"
        berth "${B[@]}" -D "$ROOT" --pivot-root="$dep:/sysroot" /bin/sh -c \
                'cat /etc/which /sysroot/etc/which; ls /sysroot/ostree/deploy/os/deploy; ls /proc/1/ >/dev/null && echo proc'
        assert_eq 0 "$RC" "$ERR"
        assert_eq "inner
outer
0
proc" "$OUT" "the old root at /sysroot, the API file systems in the new root"
        # --read-only: the old root too
        berth "${B[@]}" -D "$ROOT" --read-only --pivot-root="$dep:/sysroot" /bin/sh -c \
                'touch /x 2>/dev/null || echo new-ro; touch /sysroot/x 2>/dev/null || echo old-ro'
        assert_eq "new-ro
old-ro" "$OUT"
        # --boot boots the deployment's init, and the check for an init looks there
        printf '#!/bin/sh\necho "booted $(cat /etc/which)"\n' >"$ROOT$dep/sbin/init.sh"
        chmod 0755 "$ROOT$dep/sbin/init.sh"
        ln -sf init.sh "$ROOT$dep/sbin/init"
        berth "${B[@]}" -D "$ROOT" -b --pivot-root="$dep:/sysroot"
        assert_eq 0 "$RC" "$ERR"
        assert_eq "booted inner" "$OUT"
        rm "$ROOT$dep/sbin/init"
        berth "${B[@]}" -D "$ROOT" -b --pivot-root="$dep"
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "Cannot boot"
        # a symlink inside the tree that stays in it is followed, as in the tree
        ln -s "$dep" "$ROOT/current"
        berth "${B[@]}" -D "$ROOT" --pivot-root=/current /bin/cat /etc/which
        assert_eq inner "$OUT" "through /current"
        # from a settings file; the command line wins, and "" takes the file's away
        name=$(unique_name pivot)
        mkdir -p "$T/m"
        mv "$ROOT" "$T/m/$name"
        printf '[Exec]\nPivotRoot=%s:/sysroot\n' "$dep" >"$T/m/$name.nspawn"
        berth "${B[@]}" -D "$T/m/$name" /bin/cat /etc/which /sysroot/etc/which
        assert_eq 0 "$RC" "$ERR"
        assert_eq "inner
outer" "$OUT" "PivotRoot="
        berth "${B[@]}" -D "$T/m/$name" --pivot-root= /bin/cat /etc/which
        assert_eq outer "$OUT" "--pivot-root= empty: no pivot"
}

# Bad --pivot-root= values and a hostile tree: one line each, nothing runs, the host unchanged.
# The guest plants symlinks to a host directory that is an OS tree of its own: followed on the
# host, the container would run in it.
test_pivot_root_refused() {
        local v
        make_tiny_tree "$ROOT"
        make_tiny_tree "$T/hostos"
        echo host >"$T/hostos/etc/which"
        mkdir -p "$ROOT/inner"
        berth "${B[@]}" -D "$ROOT" /bin/sh -c "ln -s '$T/hostos' /abs && ln -s ../../../../../../../..$T/hostos /rel"
        assert_eq 0 "$RC" "$ERR"
        host_snapshot
        for v in /abs /rel /abs:/tmp; do
                berth "${B[@]}" -D "$ROOT" --pivot-root="$v" /usr/bin/payload write /etc/which escaped
                assert_eq 1 "$RC" "--pivot-root=$v"
                assert_one_line_error
                assert_contains "$ERR" "Cannot use '${v%%:*}' of '$ROOT' as the container's root (--pivot-root=): No such file or directory"
        done
        assert_eq host "$(cat "$T/hostos/etc/which")" "the host's directory"
        berth "${B[@]}" -D "$ROOT" --pivot-root=/missing /bin/true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "Cannot use '/missing'"
        berth "${B[@]}" -D "$ROOT" --pivot-root=/inner:/missing /bin/true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "Cannot put the old root on '/missing' in '/inner'"
        for v in inner /inner/../.. /inner:sysroot /inner:/../x /; do
                berth "${B[@]}" -D "$ROOT" --pivot-root="$v" /bin/true
                assert_eq 1 "$RC" "--pivot-root=$v"
                assert_one_line_error
                assert_contains "$ERR" "Invalid --pivot-root= value '$v'"
        done
        printf '[Exec]\nPivotRoot=../x\n' >"$T/$(basename "$ROOT").nspawn"
        berth "${B[@]}" -D "$ROOT" /bin/true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "PivotRoot="
        rm "$T/$(basename "$ROOT").nspawn"
        berth "${B[@]}" -D "$ROOT" --volatile=yes --pivot-root=/inner /bin/true
        assert_eq 1 "$RC"
        assert_one_line_error
        assert_contains "$ERR" "--volatile=yes cannot be combined"
        assert_host_unchanged
}

# $OUT of script(1) without the carriage returns of the pty and the echo (^@) of the end of input
terminal_text() {
        tr -d '\r' <<<"$OUT" | sed 's/\^@//g'
}

# --background=: the terminal's background in that colour while the container runs, set again after
# each of the guest's SGR resets, and reset at the end; only where the console reaches a terminal
test_background() {
        local cmd v
        command -v script >/dev/null || skip "script(1) is missing (apt-get install bsdutils)"
        make_tiny_tree "$ROOT"
        # shellcheck disable=SC2016 # for the container's shell
        cmd=$(printf '%q ' "$BERTH" -q -D "$ROOT" --background=44 /bin/sh -c 'printf "a\033[0mb\033[1;31mc\033[mz\n"')
        run script -qec "$cmd" /dev/null
        assert_eq 0 "$RC" "$ERR"
        assert_eq "$(printf '\033[44m\033[Ka\033[0m\033[44mb\033[1;31mc\033[m\033[44mz\n\033[0m\033[K')" \
                "$(terminal_text)" "on a terminal"
        cmd=$(printf '%q ' "$BERTH" -q -D "$ROOT" --background=48\;2\;0\;0\;128 /bin/echo x)
        run script -qec "$cmd" /dev/null
        assert_eq "$(printf '\033[48;2;0;0;128m\033[Kx\n\033[0m\033[K')" "$(terminal_text)" "a 24-bit colour"
        # no terminal: nothing added
        berth -q -D "$ROOT" --console=read-only --background=44 /bin/echo x
        assert_eq 0 "$RC"
        assert_eq x "$(tr -d '\r' <<<"$OUT")"
        berth "${B[@]}" -D "$ROOT" --background=44 /bin/echo x
        assert_eq x "$OUT"
        for v in 49 red 38\;5\;1 48\;5\;256 48\;2\;1\;2 "4 4"; do
                berth "${B[@]}" -D "$ROOT" --background="$v" /usr/bin/payload write /tmp/ran x
                assert_eq 1 "$RC" "--background=$v"
                assert_one_line_error
                assert_contains "$ERR" "Invalid --background= value '$v': expected an ANSI background colour"
        done
        [ ! -e "$ROOT/tmp/ran" ] || fail "a bad --background= ran the payload"
}

run_tests
