/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Settings files: NAME.berth, or systemd-nspawn's NAME.nspawn, with the sections and keys of
 * systemd.nspawn(5) for what berth can do. Each key is parsed by the command-line option of
 * the same meaning (berth-options.c), and the file's settings are merged with the command
 * line's by the rule written down at settings_merge(). */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "berth-settings.h"

const char *settings_mode_to_string(SettingsMode m);
SettingsMode settings_mode_from_string(const char *s); /* also takes booleans */

/* A parsed settings file. */
typedef struct SettingsFile {
        char *path;
        bool trusted;       /* privileged keys were applied (else dropped, with a warning) */
        Settings settings;  /* what the file says */
        uint64_t set;       /* SETTING_MASK()s of what the file set */
} SettingsFile;

void settings_file_done(SettingsFile *f);

/* Where the settings file of machine MACHINE whose tree is DIRECTORY is: the first of
 * NAME.berth in /etc/berth, /run/berth, next to the tree; then NAME.nspawn in
 * /etc/systemd/nspawn, /run/systemd/nspawn, next to the tree. The first two places of each
 * are trusted. $BERTH_SETTINGS_PATH (DIR[:DIR...], for tests) replaces the trusted places.
 * Returns 1 with *ret_path and *ret_trusted, 0 if there is none. Does not log. */
int settings_file_find(const char *machine, const char *directory, char **ret_path, bool *ret_trusted);

/* Parses F (named PATH in messages). Unless TRUSTED, privileged keys are checked but not
 * applied, and each is logged at warning level once. Errors are logged as one line,
 * "PATH:LINE: ...", and returned (-EINVAL for what the file says wrong). */
int settings_file_parse(FILE *f, const char *path, bool trusted, SettingsFile *ret);

/* Merges the file's settings into S (the command line's, S->cli_set saying which it set);
 * takes what it uses out of FILE. With OVERRIDE the file's scalars win. Returns 0 or -ENOMEM. */
int settings_merge(Settings *s, SettingsFile *file, bool override);

/* All of it, between parse_argv() and settings_verify(): finds the file for S (machine name
 * and directory as settings_verify() will make them), parses it and merges it, as
 * s->settings_mode says. Logs. Returns 1 if a file was used, 0 if none, or negative errno. */
int settings_file_load(Settings *s);

/* The host's configuration, berth.conf: defaults for every machine, of which [Exec] PrivateUsers=
 * and [Files] PrivateUsersOwnership= may be set (in the syntax and with the meaning of the settings
 * files'). The first of /etc/berth/berth.conf, /run/berth/berth.conf and /usr/lib/berth/berth.conf
 * that exists, as systemd picks between files of one name; $BERTH_CONF names another (empty:
 * none). Returns 1 with *ret_path, 0 if there is none. Does not log. */
int host_config_find(char **ret_path);
/* Between parse_argv() and settings_file_load(): what berth.conf sets, S keeps what its command
 * line set; the machine's settings file then overrides the rest as usual. Logs. Returns 1 if a
 * file was read, 0 if none, or negative errno. */
int host_config_load(Settings *s);

/* The key table, for tests and docs: row I's key name (NULL past the end), its section, the
 * option that parses it (NULL for keys berth does not support) and whether it is privileged. */
size_t settings_keys_count(void);
const char *settings_key_describe(size_t i, const char **ret_section, const char **ret_option,
                                  bool *ret_supported, bool *ret_privileged);
