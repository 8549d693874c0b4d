#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The documentation against the option table: `berth --help` is generated from
# option_table[] (src/berth/berth-options.c), so every option in it must be in
# the man page, in both shell completions and in the README's options table,
# with the same short name, argument and fixed values, and nothing in them may
# name an option that is gone. Needs no root.
. "$(dirname "$0")/lib.sh"

if [ -z "${BERTH:-}" ] || [ ! -x "$BERTH" ]; then
        echo "1..0 # SKIP \$BERTH is not set to the berth binary (run through 'meson test')"
        exit 0
fi

MAN="$BERTH_SRC/man/berth.1"
BASH_COMP="$BERTH_SRC/shell-completion/bash/berth"
ZSH_COMP="$BERTH_SRC/shell-completion/zsh/_berth"
README="$BERTH_SRC/README.md"
GEN="$BERTH_SRC/test/tools/gen-options-table.sh"

# One line per option of --help: SECTION SHORT LONG ARG METAVAR VALUES HELP (tab-separated,
# "-" for empty). Made once; the cases run in subshells that inherit it.
OPTIONS_TSV=$("$GEN" -b "$BERTH" --tsv 2>&1) || OPTIONS_TSV=
export OPTIONS_TSV

# ---- helpers ----

# options: the tsv, failing the case if --help could not be parsed
options() {
        if [ -z "$OPTIONS_TSV" ] || [ "$(printf '%s\n' "$OPTIONS_TSV" | wc -l)" -lt 10 ]; then
                fail "could not read the options from '$BERTH --help'"
        fi
        printf '%s\n' "$OPTIONS_TSV"
}

# need_options: fails the case unless --help could be parsed (so that no loop over the
# options passes by running zero times)
need_options() {
        options >/dev/null
}

# has_long FILE NAME: FILE mentions --NAME as a whole option name
has_long() {
        grep -Eq -- "(^|[^A-Za-z0-9-])--$1([^A-Za-z0-9-]|\$)" "$2"
}

# block FILE: the lines between "# options:begin" and "# options:end"
block() {
        sed -n '/# options:begin/,/# options:end/p' "$1"
}

# long_tokens: every --name in stdin, one per line
long_tokens() {
        grep -Eo -- '(^|[^A-Za-z0-9-])--[a-z0-9][a-z0-9-]*' | sed -E 's/^[^-]*--/--/; s/-+$//' | sort -u
}

# short_tokens: every -X (a letter alone) in stdin
short_tokens() {
        grep -Eo -- "(^|[^A-Za-z0-9-])-[A-Za-z]([^A-Za-z0-9-]|\$)" | sed -E 's/^[^-]*-([A-Za-z]).*/-\1/' | sort -u
}

# The man page, read by awk: "ss NAME" for each .SS of OPTIONS, "entry SS FORM" for each
# option entry there (the tag line after .TP, with fonts, quotes and blanks taken out:
# "-D,--directory=PATH", "--volatile[=MODE]"), and "mention --NAME" for every option named
# anywhere, except in example lines (.nf) that run other programs than berth.
man_facts() {
        awk '
        /^\.SH/ { s = $0; sub(/^\.SH[ \t]*/, "", s); gsub(/"/, "", s); opts = (s == "OPTIONS"); ss = ""; tp = 0; next }
        /^\.SS/ { if (opts) { ss = $0; sub(/^\.SS[ \t]*/, "", ss); gsub(/"/, "", ss); print "ss\t" ss }; tp = 0; next }
        /^\.nf/ { nf = 1 }
        /^\.fi/ { nf = 0 }
        /^\.TP/ { tp = 1; next }
        {
                if (tp && opts) {
                        n = $0
                        sub(/^\.[A-Za-z]+[ \t]*/, "", n)
                        gsub(/\\f[RBIP]/, "", n); gsub(/\\-/, "-", n); gsub(/\\&/, "", n); gsub(/["[:space:]]/, "", n)
                        if (n ~ /^-/) print "entry\t" ss "\t" n
                }
                tp = 0
                m = $0
                if (nf) { i = index(m, "berth "); m = i ? substr(m, i) : "" }
                while (match(m, /\\-\\-[a-z0-9]([a-z0-9]|\\-)*/)) {
                        t = substr(m, RSTART, RLENGTH); m = substr(m, RSTART + RLENGTH)
                        gsub(/\\-/, "-", t); sub(/-+$/, "", t)
                        print "mention\t" t
                }
        }' "$MAN"
}

# form SHORT LONG ARG META: how the option is written in a man page entry
form() {
        local f=
        [ "$1" != - ] && f="-$1,"
        f+="--$2"
        case $3 in
        required) f+="=$4" ;;
        optional) f+="[=$4]" ;;
        esac
        printf '%s\n' "$f"
}

# ---- --help and --version ----

test_help_lists_options() {
        berth --help
        assert_eq 0 "$RC" "berth --help exits 0"
        assert_eq "" "$ERR" "berth --help writes nothing to stderr"
        local n
        n=$(options | wc -l)
        [ "$n" -ge 30 ] || fail "only $n options parsed from --help"
        # every option has a help text and sits in a section
        options | while IFS=$'\t' read -r section short long arg meta values help; do
                [ "$section" != - ] || fail "--$long is not in a section of --help"
                [ "$help" != - ] || fail "--$long has no help text"
                [ "$arg" = none ] || [ "$meta" != - ] || fail "--$long takes a value but shows no metavar"
        done
        # long names are unique, short names too
        local dup
        dup=$(options | cut -f3 | sort | uniq -d)
        assert_eq "" "$dup" "duplicate long options"
        dup=$(options | cut -f2 | grep -vx -- - | sort | uniq -d || true)
        assert_eq "" "$dup" "duplicate short options"
}

test_version() {
        local want
        want=$(sed -nE "s/^[[:space:]]*version[[:space:]]*:[[:space:]]*'([^']+)'.*/\1/p" "$BERTH_SRC/meson.build" | sed -n 1p)
        [ -n "$want" ] || fail "no version in meson.build"
        berth --version
        assert_eq 0 "$RC"
        assert_eq "berth $want" "$OUT"
}

# ---- the man page ----

test_man_has_every_option() {
        need_options
        local facts section short long arg meta values help want n
        facts=$(man_facts)
        while IFS=$'\t' read -r section short long arg meta values help; do
                want=$(form "$short" "$long" "$arg" "$meta")
                n=$(printf '%s\n' "$facts" | awk -F'\t' -v w="$want" '$1 == "entry" && $3 == w' | wc -l)
                [ "$n" = 1 ] || fail "man page: expected one entry '$want' in OPTIONS, found $n (entries for --$long: $(printf '%s\n' "$facts" | grep -F -- "--$long" | grep '^entry' | cut -f3 | tr '\n' ' '))"
                # under the .SS of its --help section
                printf '%s\n' "$facts" | awk -F'\t' -v w="$want" -v s="$section" '$1 == "entry" && $3 == w && $2 == s { ok = 1 } END { exit !ok }' ||
                        fail "man page: '$want' is not under '.SS $section' as in --help"
        done < <(options)
}

test_man_has_no_stale_option() {
        need_options
        local facts forms e t
        facts=$(man_facts)
        forms=$(options | while IFS=$'\t' read -r _ short long arg meta _ _; do form "$short" "$long" "$arg" "$meta"; done)
        while IFS= read -r e; do
                printf '%s\n' "$forms" | grep -xF -- "$e" >/dev/null || fail "man page: entry '$e' matches no option of --help (stale, or its argument changed)"
        done < <(printf '%s\n' "$facts" | awk -F'\t' '$1 == "entry" { print $3 }')
        while IFS= read -r t; do
                options | cut -f3 | grep -xF -- "${t#--}" >/dev/null || fail "man page: mentions '$t', which berth --help does not have"
        done < <(printf '%s\n' "$facts" | awk -F'\t' '$1 == "mention" { print $2 }' | sort -u)
}

test_man_sections_follow_help() {
        need_options
        local want got
        want=$(options | cut -f1 | uniq)
        got=$(man_facts | awk -F'\t' '$1 == "ss" { print $2 }')
        assert_eq "$want" "$got" "the .SS of OPTIONS, in order, are the sections of --help"
        local s
        for s in NAME SYNOPSIS DESCRIPTION OPTIONS ENVIRONMENT FILES '"EXIT STATUS"' SECURITY EXAMPLES '"SEE ALSO"'; do
                grep -qxF ".SH $s" "$MAN" || fail "man page: no section .SH $s"
        done
}

test_man_renders_without_warnings() {
        command -v groff >/dev/null || skip "groff is not installed (apt-get install groff-base)"
        local w
        w=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$MAN" 2>&1)
        assert_eq "" "$w" "groff -ww warnings"
        # and it says what the container sees
        local doc
        doc=$(LC_ALL=C.UTF-8 MANWIDTH=200 groff -man -Tutf8 "$MAN" 2>/dev/null | sed 's/.\x08//g')
        assert_contains "$doc" "container=berth"
        assert_contains "$doc" "/run/host/notify"
        assert_contains "$doc" "133"
        assert_contains "$doc" "systemd-nspawn(1)"
        assert_contains "$doc" "machinectl(1)"
}

# ---- the completions ----

test_bash_completion_has_every_option() {
        need_options
        local section short long arg meta values help toks
        toks=$(block "$BASH_COMP" | short_tokens)
        while IFS=$'\t' read -r section short long arg meta values help; do
                has_long "$long" "$BASH_COMP" || fail "bash completion: --$long is missing"
                if [ "$short" != - ]; then
                        printf '%s\n' "$toks" | grep -xF -- "-$short" >/dev/null || fail "bash completion: -$short (--$long) is missing"
                fi
        done < <(options)
}

test_zsh_completion_has_every_option() {
        need_options
        local section short long arg meta values help
        while IFS=$'\t' read -r section short long arg meta values help; do
                has_long "$long" "$ZSH_COMP" || fail "zsh completion: --$long is missing"
                if [ "$short" != - ]; then
                        # written as {-X,--long} or {-X+,--long=}: the pair must be the same as in --help
                        block "$ZSH_COMP" | grep -E -- "\{-$short\+?,--$long=?\}" >/dev/null ||
                                fail "zsh completion: no {-$short,--$long} pair"
                fi
        done < <(options)
}

# The argument kinds in the bash completion: its own option lists, evaluated.
test_bash_completion_argument_kinds() {
        need_options
        local lists section short long arg meta values help kind want_shorts='' got_shorts
        # one line per list: "noarg -h --help ...", "arg ...", "optarg ...", "shorts DuEM"
        # shellcheck disable=SC2016
        lists=$(bash -c 'eval "f() { $(sed -n "/# options:begin/,/# options:end/p" "$1")
                echo noarg \$opts_noarg; echo arg \$opts_arg; echo optarg \$opts_optarg; echo shorts \$shorts_arg; }"; f' _ "$BASH_COMP")
        in_list() {
                printf '%s\n' "$lists" | awk -v k="$1" '$1 == k' | tr ' ' '\n' | tail -n +2 | grep -xF -- "$2" >/dev/null
        }
        while IFS=$'\t' read -r section short long arg meta values help; do
                kind=noarg
                [ "$arg" = required ] && kind=arg
                [ "$arg" = optional ] && kind=optarg
                in_list "$kind" "--$long" || fail "bash completion: --$long should be in opts_$kind"
                if [ "$short" != - ]; then
                        in_list "$kind" "-$short" || fail "bash completion: -$short should be in opts_$kind"
                        if [ "$arg" = required ]; then
                                want_shorts+=$short
                        fi
                fi
        done < <(options)
        got_shorts=$(printf '%s\n' "$lists" | awk '$1 == "shorts" { print $2 }')
        assert_eq "$(fold -w1 <<<"$want_shorts" | sort | tr -d '\n')" "$(fold -w1 <<<"$got_shorts" | sort | tr -d '\n')" \
                "shorts_arg: the short options that take a value"
}

test_zsh_completion_argument_kinds() {
        need_options
        local specs section short long arg meta values help
        # each spec: the option names before the description, with {a,b} expanded:
        # -X / --long (no value), -X+ / --long= (value), --long=- with :: (optional, after '=')
        specs=$(block "$ZSH_COMP" | grep -v '^[[:space:]]*#' | sed -E "s/^[[:space:]]*'\(([^)]*)\)'/'/; s/^[[:space:]]*'\([^)]*\)/'/" |
                sed -E "s/^[[:space:]]*'?\*?//; s/\[.*//; s/'//g" |
                sed -E 's/^\{([^,]*),([^}]*)\}$/\1\n\2/' | grep -E '^-' || true)
        while IFS=$'\t' read -r section short long arg meta values help; do
                local want
                case $arg in
                none) want="--$long" ;;
                required) want="--$long=" ;;
                optional) want="--$long=-" ;;
                esac
                printf '%s\n' "$specs" | grep -xF -- "$want" >/dev/null || fail "zsh completion: expected a spec '$want' for --$long (got: $(printf '%s\n' "$specs" | grep -F -- "--$long" | tr '\n' ' '))"
                if [ "$short" != - ]; then
                        want="-$short"
                        [ "$arg" = required ] && want+="+"
                        printf '%s\n' "$specs" | grep -xF -- "$want" >/dev/null || fail "zsh completion: expected a spec '$want' for --$long"
                fi
        done < <(options)
}

test_completions_have_no_stale_option() {
        need_options
        local f t longs shorts
        longs=$(options | cut -f3 | sed 's/^/--/')
        shorts=$(options | cut -f2 | grep -vx -- - | sed 's/^/-/' || true)
        for f in "$BASH_COMP" "$ZSH_COMP"; do
                while IFS= read -r t; do
                        printf '%s\n' "$longs" | grep -xF -- "$t" >/dev/null || fail "${f#"$BERTH_SRC"/}: names '$t', which berth --help does not have"
                done < <(grep -v '^[[:space:]]*#' "$f" | long_tokens)
                while IFS= read -r t; do
                        printf '%s\n' "$shorts" | grep -xF -- "$t" >/dev/null || fail "${f#"$BERTH_SRC"/}: names '$t', which berth --help does not have"
                done < <(block "$f" | grep -v '^[[:space:]]*#' | short_tokens)
        done
}

test_completions_have_fixed_values() {
        need_options
        local section short long arg meta values help f n=0
        while IFS=$'\t' read -r section short long arg meta values help; do
                [ "$values" != - ] || continue
                n=$((n + 1))
                for f in "$BASH_COMP" "$ZSH_COMP"; do
                        grep -F -- "$values" "$f" | grep -E -- "(^|[^A-Za-z0-9-])--$long([^A-Za-z0-9-]|\$)" >/dev/null ||
                                fail "${f#"$BERTH_SRC"/}: no line with --$long and its values '$values'"
                done
        done < <(options)
        [ "$n" -gt 0 ] || fail "no option with fixed values in --help"
}

# Runs the bash completion for the command line $1 (the cursor at its end) in a bash
# with bash-completion's helpers if they are installed, or with stand-ins. Prints COMPREPLY,
# one per line.
bash_complete() {
        complete_with "$BASH_COMP" _berth berth "$1"
}

# complete_with FILE FUNC PROG LINE: sources the completion FILE and runs its FUNC for PROG
# on LINE, as bash_complete does
complete_with() {
        # shellcheck disable=SC2016
        bash --norc --noprofile -c '
                comp=$1 func=$2 prog=$3 line=$4
                if [ -r /usr/share/bash-completion/bash_completion ]; then
                        . /usr/share/bash-completion/bash_completion
                        # split like readline: at blanks, and "=" and ":" are words of their own
                        read -r -a COMP_WORDS <<<"$(sed -E "s/([=:])/ \1 /g" <<<"$line")"
                        [[ $line == *[\ =:] ]] && COMP_WORDS+=("")
                else
                        # stand-ins: -s splits --opt=value, no word breaks at "=" or ":"
                        _init_completion() {
                                words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD
                                cur=${words[cword]}; prev=${words[cword - 1]}; split=false
                                if [[ $cur == --*=* ]]; then prev=${cur%%=*}; cur=${cur#*=}; split=true; fi
                        }
                        _filedir() { mapfile -t COMPREPLY < <(compgen -f -- "$cur"); }
                        read -r -a COMP_WORDS <<<"$line"
                        [[ $line == *" " ]] && COMP_WORDS+=("")
                fi
                compopt() { :; }
                . "$comp"
                COMP_LINE=$line COMP_POINT=${#line} COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
                COMPREPLY=()
                "$func" "$prog" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
                printf "%s\n" "${COMPREPLY[@]}"
        ' _ "$@"
}

test_bash_completion_works() {
        need_options
        if [ ! -r /usr/share/bash-completion/bash_completion ]; then
                echo "# bash-completion is not installed: using stand-ins for its helpers"
        fi
        local got want section short long arg meta values help
        got=$(bash_complete "berth --con")
        assert_eq "--console=" "$got" "berth --con<TAB>"

        got=$(bash_complete "berth --console=" | sort)
        want=$(options | awk -F'\t' '$3 == "console" { print $6 }' | tr ' ' '\n' | sort)
        assert_eq "$want" "$got" "berth --console=<TAB>"

        got=$(bash_complete "berth --console=pa")
        assert_eq "passive" "$got" "berth --console=pa<TAB>"

        # an optional value too: '=' and no space, so that the value completes next
        got=$(bash_complete "berth --vol")
        assert_eq "--volatile=" "$got" "berth --vol<TAB>"

        # every option with fixed values completes exactly those
        while IFS=$'\t' read -r section short long arg meta values help; do
                [ "$values" != - ] || continue
                got=$(bash_complete "berth --$long=" | sort)
                want=$(tr ' ' '\n' <<<"$values" | sort)
                assert_eq "$want" "$got" "berth --$long=<TAB>"
        done < <(options)

        # all long options after "--", no duplicates
        got=$(bash_complete "berth --" | sed 's/=$//' | sort)
        want=$(options | cut -f3 | sed 's/^/--/' | sort)
        assert_eq "$want" "$got" "berth --<TAB>"

        # capabilities: the last element of a list
        got=$(bash_complete "berth --capability=CAP_NET_ADMIN,CAP_SYS_AD")
        assert_eq "CAP_NET_ADMIN,CAP_SYS_ADMIN" "$got" "berth --capability=...,CAP_SYS_AD<TAB>"

        # after the first non-option argument, options are the command's business
        mkdir -p "$T/tree/bin" "$T/tree/etc"
        : >"$T/tree/bin/true-ish"
        got=$(bash_complete "berth -q -D $T/tree /bin/tru")
        assert_contains "$got" "/bin/true-ish" "the command is completed in the tree"
        got=$(bash_complete "berth -D $T/tree /bin/sh --con")
        assert_not_contains "$got" "--console" "no berth options after the command"
}

test_bash_completion_machine_names() {
        mkdir -p "$T/run/machines" "$T/run/locks"
        : >"$T/run/machines/alpha"
        : >"$T/run/machines/beta"
        : >"$T/run/machines/beta.lock"
        local got
        got=$(BERTH_RUN_DIR="$T/run" bash_complete "berth -M " | sort | tr '\n' ' ')
        assert_eq "alpha beta " "$got" "berth -M <TAB>"
        got=$(BERTH_RUN_DIR="$T/run" bash_complete "berth --machine=al")
        assert_eq "alpha" "$got" "berth --machine=al<TAB>"
}

test_zsh_completion_syntax() {
        command -v zsh >/dev/null || skip "zsh is not installed (apt-get install zsh)"
        run zsh -n "$ZSH_COMP"
        assert_eq 0 "$RC" "zsh -n _berth: $ERR"
        head -n1 "$ZSH_COMP" | grep -x '#compdef berth' >/dev/null || fail "_berth must start with '#compdef berth'"
}

test_bash_completion_syntax() {
        run bash -n "$BASH_COMP"
        assert_eq 0 "$RC" "bash -n: $ERR"
        if command -v shellcheck >/dev/null; then
                run shellcheck -s bash "$BASH_COMP"
                assert_eq 0 "$RC" "shellcheck: $OUT"
        fi
}

# ---- the README ----

test_readme_options_table() {
        need_options
        [ -e "$README" ] || skip "README.md does not exist yet"
        grep -qxF '<!-- options table: generated -->' "$README" || skip "README.md has no options table marker"
        grep -qxF '<!-- end options table -->' "$README" ||
                fail "README.md has no '<!-- end options table -->': run test/tools/gen-options-table.sh --update README.md"
        local want got d
        want=$("$GEN" -b "$BERTH")
        got=$(sed -n '/^<!-- options table: generated -->$/,/^<!-- end options table -->$/p' "$README" | sed '1d;$d')
        if ! d=$(diff -u <(printf '%s\n' "$want") <(printf '%s\n' "$got")); then
                printf '%s\n' "$d" | sed 's/^/# /' >&2
                fail "README.md's options table is out of date: run 'BERTH=build/berth test/tools/gen-options-table.sh --update README.md'"
        fi
}

# ---- berthctl ----
# `berthctl --help` against man/berthctl.1 and both of its completions: every verb of its
# "Commands:" and every option of its "Options:" is in them, and they name nothing that
# --help does not have.

CTL_MAN="$BERTH_SRC/man/berthctl.1"
CTL_BASH="$BERTH_SRC/shell-completion/bash/berthctl"
CTL_ZSH="$BERTH_SRC/shell-completion/zsh/_berthctl"

CTL_HELP=
if [ -n "${BERTHCTL:-}" ] && [ -x "$BERTHCTL" ]; then
        CTL_HELP=$("$BERTHCTL" --help 2>&1) || CTL_HELP=
fi
export CTL_HELP

# need_ctl: skips the case without $BERTHCTL, fails it when --help cannot be read
need_ctl() {
        if [ -z "${BERTHCTL:-}" ] || [ ! -x "$BERTHCTL" ]; then
                skip "\$BERTHCTL is not set to the berthctl binary (run through 'meson test')"
        fi
        [ "$(ctl_verbs | wc -l)" -ge 20 ] || fail "could not read the verbs from '$BERTHCTL --help'"
        [ "$(ctl_options | wc -l)" -ge 15 ] || fail "could not read the options from '$BERTHCTL --help'"
}

# ctl_verbs: the verbs of --help's "Commands:", one per line
_ctl_parse_verbs() {
        printf '%s\n' "$CTL_HELP" | awk '/^[^[:space:]]/ { c = ($0 == "Commands:"); next } c && NF { print $1 }'
}

# ctl_verbs_with_args: the verbs whose synopsis in --help takes arguments
_ctl_parse_verbs_with_args() {
        printf '%s\n' "$CTL_HELP" | awk '/^[^[:space:]]/ { c = ($0 == "Commands:"); next }
                c && NF { s = $0; sub(/^[[:space:]]+/, "", s); sub(/[[:space:]][[:space:]].*/, "", s); if (s ~ / /) print $1 }'
}

# ctl_options: one line per option of --help's "Options:": SHORT LONG ARG (tab-separated,
# SHORT "-" when there is none, ARG none, required or optional)
_ctl_parse_options() {
        printf '%s\n' "$CTL_HELP" | awk '/^[^[:space:]]/ { o = ($0 == "Options:"); next }
                o && NF {
                        short = "-"; l = $1
                        if ($1 ~ /^-[A-Za-z]$/) { short = substr($1, 2); l = $2 }
                        if (l !~ /^--[a-z0-9]/) next
                        arg = "none"
                        if (l ~ /\[=/) arg = "optional"; else if (l ~ /=/) arg = "required"
                        sub(/^--/, "", l); sub(/[[=].*/, "", l)
                        print short "\t" l "\t" arg
                }'
}

# Parsed once; the cases run in subshells that inherit them.
CTL_VERBS=$(_ctl_parse_verbs)
CTL_VERBS_WITH_ARGS=$(_ctl_parse_verbs_with_args)
CTL_OPTIONS=$(_ctl_parse_options)
export CTL_VERBS CTL_VERBS_WITH_ARGS CTL_OPTIONS
ctl_verbs() {
        printf '%s\n' "$CTL_VERBS"
}
ctl_verbs_with_args() {
        printf '%s\n' "$CTL_VERBS_WITH_ARGS"
}
ctl_options() {
        printf '%s\n' "$CTL_OPTIONS"
}

# ctl_longs: --NAME for each option of --help; ctl_shorts: -X likewise
ctl_longs() {
        ctl_options | cut -f2 | sed 's/^/--/'
}
ctl_shorts() {
        ctl_options | cut -f1 | grep -vx -- - | sed 's/^/-/' || true
}

# in_lines WORD: WORD is one of the lines of stdin
in_lines() {
        grep -xF -- "$1" >/dev/null
}

# The man page, read by awk:
#   "verb VERB" for each entry (.TP or .TQ) of a section "... COMMANDS";
#   "entry SHORTS LONG ARG" for each long option of an entry of OPTIONS (SHORTS: the short
#   options of the same entry, or "-"; ARG: none, required, optional);
#   "mention SECTION --NAME" for every option named anywhere;
#   "verbref VERB" for "berthctl VERB" in quotes and in the examples (.nf).
ctl_man_facts() {
        awk '
        function norm(s) {
                sub(/^\.[A-Za-z]+[ \t]*/, "", s)
                gsub(/\\f[RBIP]/, "", s); gsub(/\\-/, "-", s); gsub(/\\&/, "", s)
                gsub(/"/, " ", s); gsub(/[[:space:]]+/, " ", s); sub(/^ /, "", s)
                return s
        }
        /^\.SH/ { sec = $0; sub(/^\.SH[ \t]*/, "", sec); gsub(/"/, "", sec); tp = 0; next }
        /^\.nf/ { nf = 1 }
        /^\.fi/ { nf = 0 }
        /^\.T[PQ]/ { tp = 1; next }
        {
                if (tp) {
                        n = norm($0)
                        if (sec == "OPTIONS" && n ~ /^-/) {
                                k = split(n, w, /[ ,]+/); shorts = ""; nl = 0
                                for (i = 1; i <= k; i++) {
                                        if (w[i] ~ /^-[A-Za-z]$/) shorts = shorts substr(w[i], 2)
                                        else if (w[i] ~ /^--[a-z0-9]/) longs[++nl] = w[i]
                                }
                                for (i = 1; i <= nl; i++) {
                                        l = longs[i]; arg = "none"
                                        if (l ~ /\[=/) arg = "optional"; else if (l ~ /=/) arg = "required"
                                        sub(/^--/, "", l); sub(/[[=].*/, "", l)
                                        print "entry\t" (shorts == "" ? "-" : shorts) "\t" l "\t" arg
                                }
                        } else if (sec ~ /COMMANDS$/) {
                                split(n, w, " "); print "verb\t" w[1]
                        }
                }
                tp = 0
                m = $0
                while (match(m, /\\-\\-[a-z0-9]([a-z0-9]|\\-)*/)) {
                        t = substr(m, RSTART, RLENGTH); m = substr(m, RSTART + RLENGTH)
                        gsub(/\\-/, "-", t); sub(/-+$/, "", t)
                        print "mention\t" sec "\t" t
                }
                m = $0; gsub(/\\-/, "-", m)
                if (nf) {
                        i = index(m, "berthctl ")
                        if (i) {
                                k = split(substr(m, i + 9), w, " ")
                                for (j = 1; j <= k; j++) if (w[j] !~ /^-/) { print "verbref\t" w[j]; break }
                        }
                } else {
                        while (match(m, /"berthctl [a-z][a-z-]*"/)) {
                                t = substr(m, RSTART + 10, RLENGTH - 11); m = substr(m, RSTART + RLENGTH)
                                print "verbref\t" t
                        }
                }
        }' "$CTL_MAN"
}

# ctl_complete LINE: runs berthctl's bash completion on LINE (see bash_complete)
ctl_complete() {
        complete_with "$CTL_BASH" _berthctl berthctl "$1"
}

# bash_list NAME: the words of the bash completion's "local NAME='...'" (which may span lines)
bash_list() {
        awk -v n="$1" '
                !on && $0 ~ "^[[:space:]]*local " n "=\x27" { on = 1; sub("^[^\x27]*\x27", "") }
                on { if (index($0, "\x27")) { sub("\x27.*", ""); print; exit } print }' "$CTL_BASH" | tr -s '[:blank:]' '\n' | sed '/^$/d'
}

# case_labels FILE WORD: the labels of the first "case $WORD in" of FILE (up to its esac),
# one word per line; nested case statements are skipped
case_labels() {
        awk -v word="$2" '
                !on && index($0, "case $" word " in") { on = 1; depth = 0; next }
                !on { next }
                /^[[:space:]]*case .* in[[:space:]]*$/ { depth++; next }
                /^[[:space:]]*esac/ { if (depth-- == 0) exit; next }
                depth == 0 && /^[[:space:]]*[^[:space:]#(][^()\047"]*\)([[:space:]]|$)/ {
                        l = $0; sub(/^[[:space:]]*/, "", l); sub(/\).*/, "", l); gsub(/[|[:space:]]+/, "\n", l); print l
                }' "$1" | sed '/^$/d'
}

# zsh_specs: the option specs of _berthctl's _arguments, one name per line, as in
# test_zsh_completion_argument_kinds: -X / --long (no value), -X+ / --long= (value)
zsh_specs() {
        sed -n '/_arguments -C/,/1: :_berthctl_verbs/p' "$CTL_ZSH" | grep -v '^[[:space:]]*#' |
                sed -E "s/^[[:space:]]*'\(([^)]*)\)'/'/; s/^[[:space:]]*'\([^)]*\)/'/" |
                sed -E "s/^[[:space:]]*'?\*?//; s/\[.*//; s/'//g" |
                sed -E 's/^\{([^,]*),([^}]*)\}$/\1\n\2/' | grep -E '^-' || true
}

# zsh_verbs: the verbs that _berthctl_verbs offers
zsh_verbs() {
        sed -n '/^_berthctl_verbs()/,/^}/p' "$CTL_ZSH" | sed -n '/verbs=(/,/^[[:space:]]*)/p' |
                sed -nE "s/^[[:space:]]*['\"]([^:'\"]+):.*/\1/p"
}

test_berthctl_help() {
        need_ctl
        run "$BERTHCTL" --help
        assert_eq 0 "$RC" "berthctl --help exits 0"
        assert_eq "" "$ERR" "berthctl --help writes nothing to stderr"
        local dup want
        dup=$(ctl_verbs | sort | uniq -d)
        assert_eq "" "$dup" "duplicate verbs in berthctl --help"
        dup=$(ctl_options | cut -f2 | sort | uniq -d)
        assert_eq "" "$dup" "duplicate long options in berthctl --help"
        dup=$(ctl_options | cut -f1 | grep -vx -- - | sort | uniq -d || true)
        assert_eq "" "$dup" "duplicate short options in berthctl --help"
        want=$(sed -nE "s/^[[:space:]]*version[[:space:]]*:[[:space:]]*'([^']+)'.*/\1/p" "$BERTH_SRC/meson.build" | sed -n 1p)
        run "$BERTHCTL" --version
        assert_eq 0 "$RC"
        assert_eq "berthctl $want" "$OUT"
}

test_berthctl_man_has_every_verb() {
        need_ctl
        local verbs v n
        verbs=$(ctl_man_facts | awk -F'\t' '$1 == "verb" { print $2 }')
        while IFS= read -r v; do
                n=$(printf '%s\n' "$verbs" | grep -cxF -- "$v" || true)
                [ "$n" = 1 ] || fail "man/berthctl.1: expected one entry for the verb '$v' in a COMMANDS section, found $n"
        done < <(ctl_verbs)
}

test_berthctl_man_has_every_option() {
        need_ctl
        local facts short long arg got
        facts=$(ctl_man_facts | awk -F'\t' '$1 == "entry"')
        while IFS=$'\t' read -r short long arg; do
                got=$(printf '%s\n' "$facts" | awk -F'\t' -v l="$long" '$3 == l { print $2 "\t" $4 }')
                [ -n "$got" ] || fail "man/berthctl.1: no entry for --$long in OPTIONS"
                [ "$(printf '%s\n' "$got" | wc -l)" = 1 ] || fail "man/berthctl.1: more than one entry for --$long"
                assert_eq "$short" "${got%%$'\t'*}" "man/berthctl.1: the short option in the entry of --$long"
                assert_eq "$arg" "${got#*$'\t'}" "man/berthctl.1: whether --$long takes a value (--$long=...)"
        done < <(ctl_options)
}

test_berthctl_man_has_nothing_stale() {
        need_ctl
        local facts t sec berth_longs=
        facts=$(ctl_man_facts)
        while IFS= read -r t; do
                ctl_verbs | in_lines "$t" || fail "man/berthctl.1: has an entry for the verb '$t', which berthctl --help does not have"
        done < <(printf '%s\n' "$facts" | awk -F'\t' '$1 == "verb" { print $2 }')
        while IFS= read -r t; do
                ctl_verbs | in_lines "$t" || fail "man/berthctl.1: names 'berthctl $t', which is no verb of berthctl --help"
        done < <(printf '%s\n' "$facts" | awk -F'\t' '$1 == "verbref" { print $2 }' | sort -u)
        while IFS= read -r t; do
                ctl_options | cut -f2 | in_lines "$t" || fail "man/berthctl.1: has an entry for --$t, which berthctl --help does not have"
        done < <(printf '%s\n' "$facts" | awk -F'\t' '$1 == "entry" { print $3 }')
        while IFS= read -r t; do
                ctl_shorts | in_lines "-$t" || fail "man/berthctl.1: has an entry for -$t, which berthctl --help does not have"
        done < <(printf '%s\n' "$facts" | awk -F'\t' '$1 == "entry" && $2 != "-" { print $2 }' | fold -w1)
        # berthctl's options; outside OPTIONS also berth's (the page tells how berth is run)
        [ -n "$OPTIONS_TSV" ] && berth_longs=$(options | cut -f3 | sed 's/^/--/')
        while IFS=$'\t' read -r sec t; do
                ctl_longs | in_lines "$t" && continue
                [ "$sec" != OPTIONS ] && printf '%s\n' "$berth_longs" | in_lines "$t" && continue
                fail "man/berthctl.1: names '$t' (in $sec), which berthctl --help does not have"
        done < <(printf '%s\n' "$facts" | awk -F'\t' '$1 == "mention" { print $2 "\t" $3 }' | sort -u)
}

test_berthctl_man_renders_without_warnings() {
        command -v groff >/dev/null || skip "groff is not installed (apt-get install groff-base)"
        local w s
        w=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$CTL_MAN" 2>&1)
        assert_eq "" "$w" "groff -ww warnings for man/berthctl.1"
        for s in NAME SYNOPSIS DESCRIPTION '"MACHINE COMMANDS"' '"IMAGE COMMANDS"' OPTIONS '"EXIT STATUS"' ENVIRONMENT FILES EXAMPLES '"SEE ALSO"'; do
                grep -qxF ".SH $s" "$CTL_MAN" || fail "man/berthctl.1: no section .SH $s"
        done
}

test_berthctl_bash_completion_verbs() {
        need_ctl
        local got want v labels
        got=$(ctl_complete "berthctl " | sed '/^$/d' | sort)
        want=$(ctl_verbs | sort)
        assert_eq "$want" "$got" "berthctl <TAB>: the verbs of --help"
        got=$(ctl_complete "berthctl --json=short -q " | sed '/^$/d' | sort)
        assert_eq "$want" "$got" "berthctl --json=short -q <TAB>: the verbs after options"
        # the arguments of every verb that has some are completed, and no branch is stale
        labels=$(case_labels "$CTL_BASH" verb)
        [ -n "$labels" ] || fail "no "case \\\$verb in" in the bash completion"
        while IFS= read -r v; do
                printf '%s\n' "$labels" | in_lines "$v" || fail "bash completion: the arguments of '$v' are not completed (no case for it)"
        done < <(ctl_verbs_with_args)
        while IFS= read -r v; do
                ctl_verbs | in_lines "$v" || fail "bash completion: completes the arguments of '$v', which berthctl --help does not have"
        done <<<"$labels"
}

test_berthctl_bash_completion_options() {
        need_ctl
        local got want t short long arg args
        # every long option after "--", "=" when it takes a value, and only those
        got=$(ctl_complete "berthctl --" | sed '/^$/d' | sort)
        want=$(ctl_options | awk -F'\t' '{ print "--" $2 ($3 == "required" ? "=" : "") }' | sort)
        assert_eq "$want" "$got" "berthctl --<TAB>"
        got=$(ctl_complete "berthctl -" | grep -xE -- '-[A-Za-z]' | sort || true)
        assert_eq "$(ctl_shorts | sort)" "$got" "berthctl -<TAB>: the short options"
        # the options that take a value are the ones skipped with their value when the verb is
        # looked for, and only those
        args=$(bash_list opts_arg)
        while IFS=$'\t' read -r short long arg; do
                if [ "$arg" = required ]; then
                        printf '%s\n' "$args" | in_lines "--$long" || fail "bash completion: --$long takes a value but is not in opts_arg"
                        [ "$short" = - ] || printf '%s\n' "$args" | in_lines "-$short" || fail "bash completion: -$short takes a value but is not in opts_arg"
                fi
        done < <(ctl_options)
        while IFS= read -r t; do
                ctl_options | awk -F'\t' '$3 == "required" { print "--" $2; if ($1 != "-") print "-" $1 }' | in_lines "$t" ||
                        fail "bash completion: '$t' is in opts_arg, but is no option of berthctl --help that takes a value"
        done <<<"$args"
        # nothing stale: every --name in the file, every -X of its option lists and of the
        # values' case
        while IFS= read -r t; do
                ctl_longs | in_lines "$t" || fail "bash completion: names '$t', which berthctl --help does not have"
        done < <(grep -v '^[[:space:]]*#' "$CTL_BASH" | long_tokens)
        while IFS= read -r t; do
                ctl_shorts | in_lines "$t" || fail "bash completion: names '$t', which berthctl --help does not have"
        done < <({ bash_list opts; bash_list opts_arg; case_labels "$CTL_BASH" prev; } | grep -xE -- '-[A-Za-z]' | sort -u)
}

test_berthctl_bash_completion_works() {
        need_ctl
        local got
        got=$(ctl_complete "berthctl li" | sort | tr '\n' ' ')
        assert_eq "list list-images " "$got" "berthctl li<TAB>"
        got=$(ctl_complete "berthctl --json=" | sort | tr '\n' ' ')
        assert_eq "off pretty short " "$got" "berthctl --json=<TAB>"
        printf '%s\n' "$CTL_HELP" | grep -E -- '--json=.*\(short, pretty, off\)' >/dev/null ||
                fail "berthctl --help no longer says '--json=MODE ... (short, pretty, off)'"
        got=$(ctl_complete "berthctl --json=p")
        assert_eq "pretty" "$got" "berthctl --json=p<TAB>"
        got=$(ctl_complete "berthctl --kill-whom=" | sort | tr '\n' ' ')
        assert_eq "all leader " "$got" "berthctl --kill-whom=<TAB>"
        got=$(ctl_complete "berthctl --until=" | sort | tr '\n' ' ')
        assert_eq "ready running stopped " "$got" "berthctl --until=<TAB>"
        got=$(ctl_complete "berthctl --pro")
        assert_eq "--property=" "$got" "berthctl --pro<TAB>"

        # machine names from the records, image names from the image path
        mkdir -p "$T/run/machines" "$T/images/deb" "$T/images/.hidden" "$T/images2/alp"
        : >"$T/run/machines/alpha"
        : >"$T/run/machines/beta"
        : >"$T/images/fed.raw"
        export BERTH_RUN_DIR="$T/run" BERTH_IMAGE_PATH="$T/images:$T/images2"
        got=$(ctl_complete "berthctl -s SIGKILL kill " | sort | tr '\n' ' ')
        assert_eq "alpha beta " "$got" "berthctl -s SIGKILL kill <TAB>"
        got=$(ctl_complete "berthctl exec al")
        assert_eq "alpha" "$got" "berthctl exec al<TAB>"
        got=$(ctl_complete "berthctl exec alpha /bin/sh --j")
        assert_not_contains "$got" "--json" "no berthctl options for the command run in the machine"
        got=$(ctl_complete "berthctl shell alpha kill -s ")
        assert_not_contains "$got" "SIGKILL" "no values of berthctl options for the command run in the machine"
        got=$(ctl_complete "berthctl exec --j")
        assert_eq "--json=" "$got" "berthctl exec --j<TAB>: options up to the machine"
        got=$(ctl_complete "berthctl start " | sort | tr '\n' ' ')
        assert_eq "alp deb fed " "$got" "berthctl start <TAB>"
        got=$(ctl_complete "berthctl remove .")
        assert_eq ".hidden" "$got" "berthctl remove .<TAB>"
        got=$(ctl_complete "berthctl read-only deb " | sort | tr '\n' ' ')
        assert_eq "no yes " "$got" "berthctl read-only deb <TAB>"
}

test_berthctl_zsh_completion() {
        need_ctl
        local got want t v labels
        got=$(zsh_verbs | sort)
        assert_eq "$(ctl_verbs | sort)" "$got" "_berthctl_verbs: the verbs of berthctl --help"
        labels=$(case_labels "$CTL_ZSH" 'words[1]')
        [ -n "$labels" ] || fail "no 'case \$words[1] in' in the zsh completion"
        while IFS= read -r v; do
                printf '%s\n' "$labels" | in_lines "$v" || fail "zsh completion: the arguments of '$v' are not completed (no case for it)"
        done < <(ctl_verbs_with_args)
        while IFS= read -r v; do
                ctl_verbs | in_lines "$v" || fail "zsh completion: completes the arguments of '$v', which berthctl --help does not have"
        done <<<"$labels"
        # one spec per option name: -X / --long without a value, -X+ / --long= with one
        got=$(zsh_specs | sort)
        want=$(ctl_options | awk -F'\t' '{
                v = ($3 == "required") ? "=" : ($3 == "optional") ? "=-" : ""
                print "--" $2 v; if ($1 != "-") print "-" $1 ($3 == "required" ? "+" : "") }' | sort)
        assert_eq "$want" "$got" "the option specs of _berthctl's _arguments"
        while IFS= read -r t; do
                ctl_longs | in_lines "$t" || fail "zsh completion: names '$t', which berthctl --help does not have"
        done < <(grep -v '^[[:space:]]*#' "$CTL_ZSH" | long_tokens)
}

test_berthctl_completions_syntax() {
        run bash -n "$CTL_BASH"
        assert_eq 0 "$RC" "bash -n berthctl: $ERR"
        if command -v shellcheck >/dev/null; then
                run shellcheck -s bash "$CTL_BASH"
                assert_eq 0 "$RC" "shellcheck: $OUT"
        fi
        head -n1 "$CTL_ZSH" | grep -x '#compdef berthctl' >/dev/null || fail "_berthctl must start with '#compdef berthctl'"
        command -v zsh >/dev/null || skip "zsh is not installed (apt-get install zsh)"
        run zsh -n "$CTL_ZSH"
        assert_eq 0 "$RC" "zsh -n _berthctl: $ERR"
}

run_tests
