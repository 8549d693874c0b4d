#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Reads `berth --help` (made from the option table in src/berth/berth-options.c)
# and prints the options in one of these forms:
#
#   gen-options-table.sh [-b BERTH]                  the README's markdown table
#   gen-options-table.sh [-b BERTH] --tsv            one line per option:
#                                                    SECTION<TAB>SHORT<TAB>LONG<TAB>ARG<TAB>METAVAR<TAB>VALUES<TAB>HELP
#                                                    (ARG: none, required or optional; empty fields are "-")
#   gen-options-table.sh [-b BERTH] --update FILE    rewrite the table in FILE (README.md) in place
#
# In FILE the table is the text between the line "<!-- options table: generated -->"
# and the line "<!-- end options table -->"; if the end marker is missing, the table
# replaces the lines after the start marker up to the next blank line that follows a
# table (or nothing), and the end marker is added. Nothing else in FILE changes.
#
# BERTH defaults to $BERTH, then to build/berth in the source tree. --help needs no root.
set -euo pipefail

START_MARKER='<!-- options table: generated -->'
END_MARKER='<!-- end options table -->'

berth=${BERTH:-}
mode=table
file=
while [ $# -gt 0 ]; do
        case $1 in
        -b) berth=$2; shift 2 ;;
        --tsv) mode=tsv; shift ;;
        --update) mode=update; file=$2; shift 2 ;;
        -h | --help) sed -n '4,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "Unknown argument '$1', see --help." >&2; exit 2 ;;
        esac
done
if [ -z "$berth" ]; then
        berth="$(cd "$(dirname "$0")/../.." && pwd)/build/berth"
fi
if [ ! -x "$berth" ]; then
        echo "Cannot run '$berth': pass the berth binary with -b or \$BERTH." >&2
        exit 1
fi

# The parser of the --help format: section lines ("Image:"), option lines
# ("  -D --directory=PATH   help", "     --volatile[=MODE]  help") and value lines
# ("       one of: a b c") that belong to the option before them.
help_to_tsv() {
        local line section=- short long arg meta help have=0 values=-
        local re_opt='^[[:space:]]+(-([A-Za-z0-9])[[:space:]]+)?--([a-z0-9][a-z0-9-]*)(\[=([^]]*)\]|=([^[:space:]]+))?([[:space:]]+(.*))?$'
        local re_values='^[[:space:]]+one of:[[:space:]]*(.*)$'
        local re_section='^([A-Z][A-Za-z0-9 /-]*):$'

        flush() {
                if [ "$have" = 1 ]; then
                        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$section" "$short" "$long" "$arg" "$meta" "$values" "$help"
                fi
                have=0
                values=-
        }
        while IFS= read -r line; do
                if [[ $line =~ $re_values ]] && [ "$have" = 1 ]; then
                        values=${BASH_REMATCH[1]}
                        values=${values%"${values##*[![:space:]]}"}
                elif [[ $line =~ $re_opt ]]; then
                        flush
                        short=${BASH_REMATCH[2]:--}
                        long=${BASH_REMATCH[3]}
                        if [ -n "${BASH_REMATCH[4]}" ] && [ "${BASH_REMATCH[4]:0:1}" = "[" ]; then
                                arg=optional
                                meta=${BASH_REMATCH[5]}
                        elif [ -n "${BASH_REMATCH[4]}" ]; then
                                arg=required
                                meta=${BASH_REMATCH[6]}
                        else
                                arg=none
                                meta=-
                        fi
                        help=${BASH_REMATCH[8]:--}
                        have=1
                elif [[ $line =~ $re_section ]]; then
                        flush
                        section=${BASH_REMATCH[1]}
                else
                        flush
                fi
        done
        flush
}

tsv() {
        local out
        out=$("$berth" --help) || {
                echo "'$berth --help' failed." >&2
                return 1
        }
        help_to_tsv <<<"$out"
}

md_escape() {
        local s=$1
        s=${s//|/\\|}
        printf '%s' "$s"
}

table() {
        local section short long arg meta values help last=- opt argcol v
        echo "| option | argument | meaning |"
        echo "|---|---|---|"
        while IFS=$'\t' read -r section short long arg meta values help; do
                if [ "$section" != "$last" ]; then
                        echo "| **$(md_escape "$section")** | | |"
                        last=$section
                fi
                opt="\`--$long\`"
                [ "$short" != - ] && opt="\`-$short\`, $opt"
                case $arg in
                none) argcol= ;;
                optional) argcol="\`[=$(md_escape "$meta")]\`" ;;
                *) argcol="\`$(md_escape "$meta")\`" ;;
                esac
                help=$(md_escape "$help")
                if [ "$values" != - ]; then
                        help+="; one of:"
                        for v in $values; do
                                help+=" \`$v\`"
                        done
                fi
                echo "| $opt | $argcol | $help |"
        done
}

update() {
        local f=$1 generated tmp
        if ! grep -qxF "$START_MARKER" "$f"; then
                echo "'$f' has no line '$START_MARKER': nothing to update." >&2
                return 1
        fi
        generated=$(tsv | table)
        tmp=$(mktemp "$f.XXXXXX")
        GENERATED=$generated START=$START_MARKER END=$END_MARKER awk '
                BEGIN { has_end = 0 }
                { lines[NR] = $0; if ($0 == ENVIRON["END"]) has_end = 1 }
                END {
                        state = 0
                        for (i = 1; i <= NR; i++) {
                                l = lines[i]
                                if (state == 0) {
                                        print l
                                        if (l == ENVIRON["START"]) {
                                                print ENVIRON["GENERATED"]
                                                print ENVIRON["END"]
                                                state = 1
                                        }
                                } else if (state == 1) {
                                        # skip the old table: up to the end marker, or
                                        # without one, the table rows right after the start
                                        if (has_end) {
                                                if (l == ENVIRON["END"]) state = 2
                                        } else if (l !~ /^\|/ && !(l ~ /^[[:space:]]*$/ && !seen_row)) {
                                                state = 2
                                                print l
                                        } else if (l ~ /^\|/) {
                                                seen_row = 1
                                        }
                                } else
                                        print l
                        }
                }' "$f" >"$tmp"
        chmod --reference="$f" "$tmp"
        mv "$tmp" "$f"
}

case $mode in
tsv) tsv ;;
table) tsv | table ;;
update) update "$file" ;;
esac
