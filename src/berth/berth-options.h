/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "berth-settings.h"

/* The option table is the single source of truth: getopt's table, --help,
 * and the docs test (every long option must be in the man page and the
 * completions) are all made from it. */

typedef enum OptionArg {
        OPTION_ARG_NONE,
        OPTION_ARG_REQUIRED,
        OPTION_ARG_OPTIONAL,
} OptionArg;

/* Returns 0 or a negative errno; on -EINVAL *ret_detail may say what is wrong. */
typedef int (*option_parser_t)(Settings *s, const char *arg, const char **ret_detail);

typedef struct OptionDef {
        const char *section;     /* starts a new help section when set */
        const char *name;        /* long name */
        char short_name;         /* 0 if none */
        OptionArg arg;
        const char *metavar;     /* "PATH", "MODE", ... */
        const char *values;      /* space-separated fixed values (help and completion), or NULL */
        const char *help;
        option_parser_t parse;
        SettingKind setting;     /* what a settings file key of the same meaning would set, recorded in
                                  * Settings.cli_set; SETTING_NONE if no key has the meaning */
} OptionDef;

extern const OptionDef option_table[];
extern const unsigned option_table_size;
/* The row of the long option NAME, or NULL. */
const OptionDef *option_find(const char *name);

/* Parses argv into s. Returns 1 to continue, 0 when --help/--version was
 * handled (exit 0), negative errno after having logged a one-line error. */
int parse_argv(int argc, char *argv[], Settings *s);
/* Checks that concern several options or the tree itself. Logs. */
/* -M NAME without -D and -i: the image is looked up by name as nspawn does (image-path.h). Before the
 * settings file is looked for, which sits next to the image. Logs. */
int settings_find_image(Settings *s);
int settings_verify(Settings *s);
/* systemd-nspawn's $SYSTEMD_NSPAWN_* knobs that berth honours, into s (settings_verify() calls it).
 * Logs. */
int settings_load_environment(Settings *s);
/* The machine name: --machine=, else made from --directory=/--image=. Logs. */
int settings_machine_name(Settings *s);
void help(void);
