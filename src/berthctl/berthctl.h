/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cleanup.h"

/* berthctl: machinectl's verbs over berth's machines and images. Verbs
 * live in one file per family (berthctl-machines.c, berthctl-images.c) and
 * are dispatched from the table in berthctl.c; options are global, as in
 * machinectl, and each verb reads the ones it cares about from `arg`. */

typedef enum JsonMode {
        JSON_OFF,
        JSON_SHORT,
        JSON_PRETTY,
} JsonMode;

/* -o/--output= of status's journal lines: journalctl's names */
typedef enum OutputMode {
        OUTPUT_SHORT,
        OUTPUT_SHORT_ISO,
        OUTPUT_SHORT_PRECISE,
        OUTPUT_SHORT_UNIX,
        OUTPUT_CAT,
        OUTPUT_VERBOSE,
        OUTPUT_JSON,
        _OUTPUT_MODE_MAX,
        _OUTPUT_MODE_INVALID = -EINVAL,
} OutputMode;

const char *output_mode_to_string(OutputMode m);
OutputMode output_mode_from_string(const char *s);

typedef struct Args {
        JsonMode json;
        bool legend;          /* --no-legend clears it */
        bool quiet;           /* -q */
        bool read_only;       /* --read-only (bind, clone, import) */
        bool mkdir;           /* --mkdir (bind) */
        bool force;           /* --force (import over an existing image, remove of a running one: refused anyway) */
        bool all;             /* -a/--all */
        char **property;      /* -p/--property= (show) */
        bool value;           /* --value, -P (show): values only */
        bool now;             /* --now (enable, disable): start or stop too */
        char *kill_whom;      /* --kill-whom=leader|all */
        int signal;           /* -s/--signal=, 0: the verb's default */
        char *until;          /* --until= (wait) */
        uint64_t timeout_usec;/* --timeout= (wait, start), 0: the verb's default */
        char *uid;            /* --uid= (shell) */
        char **setenv;        /* -E/--setenv= (shell, exec) */
        bool tty;             /* -t/--tty (exec): force a pty */
        bool no_tty;          /* -T (exec): never a pty */
        int verify;           /* --verify= (pull-*): an ImportVerify */
        unsigned lines;       /* -n/--lines= (status): journal lines, 10 by default */
        OutputMode output;    /* -o/--output= (status): their format */
        bool keep_devices;    /* --keep-devices (import-tar, pull-tar): every device node of the archive */
        bool keep_setuid;     /* --keep-setuid: setuid and setgid files */
        bool keep_caps;       /* --keep-capabilities: security.capability xattrs */
        uint64_t max_size;    /* --max-size= (import-tar, pull-tar): bytes the archive may expand to */
        uint64_t max_files;   /* --max-files=: members it may have */
} Args;

#define IMPORT_MAX_SIZE_DEFAULT (UINT64_C(64) << 30)
#define IMPORT_MAX_FILES_DEFAULT UINT64_C(4000000)

/* --verify=: what pull-tar and pull-raw check before an image is put in place (machinectl's) */
typedef enum ImportVerify {
        IMPORT_VERIFY_SIGNATURE, /* the default: SHA256SUMS, and its signature SHA256SUMS.gpg */
        IMPORT_VERIFY_CHECKSUM,  /* SHA256SUMS only */
        IMPORT_VERIFY_NO,
        _IMPORT_VERIFY_MAX,
} ImportVerify;
const char *import_verify_to_string(ImportVerify v);
int import_verify_from_string(const char *s);

extern Args arg;
/* main()'s argument vector as it was given, before option parsing permuted it */
extern char **berthctl_argv;

typedef int (*verb_fn_t)(int argc, char *argv[]);

/* A verb that passes on a command's exit status N (exec, shell) returns VERB_EXIT_STATUS(N); any
 * other value >= 0 is success (exit 0), < 0 failure (exit 1). */
#define VERB_EXIT_STATUS(n) (0x10000 | ((n) & 0xff))

/* One row of the verb table; argc counts the verb itself. */
typedef struct Verb {
        const char *name;
        unsigned min_args, max_args; /* UINT32_MAX: unlimited */
        verb_fn_t fn;
        const char *synopsis;        /* "NAME [COMMAND...]" for --help */
        const char *help;
} Verb;

/* berthctl-machines.c */
int verb_list(int argc, char *argv[]);
int verb_status(int argc, char *argv[]);
int verb_show(int argc, char *argv[]);
int verb_start(int argc, char *argv[]);
int verb_login(int argc, char *argv[]);
int verb_shell(int argc, char *argv[]);
int verb_exec(int argc, char *argv[]);
int verb_console(int argc, char *argv[]);
int verb_wait(int argc, char *argv[]);
int verb_poweroff(int argc, char *argv[]);   /* also "reboot" (argv[0] tells) */
int verb_terminate(int argc, char *argv[]);
int verb_kill(int argc, char *argv[]);
int verb_enable(int argc, char *argv[]);     /* also "disable" */
int verb_copy(int argc, char *argv[]);       /* "copy-to" and "copy-from" */
int verb_bind(int argc, char *argv[]);

/* berthctl-settings.c */
int verb_cat(int argc, char *argv[]);
int verb_edit(int argc, char *argv[]);

/* berthctl-images.c */
int verb_list_images(int argc, char *argv[]);
int verb_image_status(int argc, char *argv[]);   /* also "show-image" */
int verb_clone(int argc, char *argv[]);
int verb_rename(int argc, char *argv[]);
int verb_remove(int argc, char *argv[]);
int verb_read_only(int argc, char *argv[]);
int verb_clean(int argc, char *argv[]);
int verb_import(int argc, char *argv[]);       /* import-tar and import-raw */
int verb_export_tar(int argc, char *argv[]);
int verb_export_raw(int argc, char *argv[]);

/* berthctl-remote.c: -H/--host= */
typedef struct RemoteHost {
        char *user, *host, *port;   /* user and port NULL: ssh's defaults */
} RemoteHost;
int remote_host_parse(const char *s, RemoteHost *ret);   /* logs */
void remote_host_done(RemoteHost *h);
/* Runs "berthctl ARGS" on the host over ssh (or machinectl -H SPEC ARGS where it has no berthctl and
 * VERB, the verb among ARGS as our option parser found it, is one of machinectl's); returns
 * VERB_EXIT_STATUS(remote exit status) or a negative errno. */
int remote_run(const RemoteHost *h, const char *spec, const char *verb, char **args, bool tty);

/* berthctl-pull.c */
int verb_pull(int argc, char *argv[]);         /* pull-tar and pull-raw */
int verb_import_fs(int argc, char *argv[]);

/* ---- output: a table is printed as columns, or as JSON with --json= ---- */

typedef enum CellType {
        CELL_STRING,
        CELL_INT,      /* long long */
        CELL_UINT,     /* unsigned long long */
        CELL_BOOL,
        CELL_TIMESTAMP,/* usec since the epoch, CLOCK_REALTIME; 0: unset */
        CELL_SIZE,     /* bytes, UINT64_MAX: unknown */
        CELL_STRV,     /* char **, shown comma-separated, a JSON array */
        CELL_TABLE,    /* Table *, owned by the cell from then on (fields only): a nested table,
                        * a JSON array of objects. Taken also when the add fails: freed then */
} CellType;

typedef struct Table Table;

/* Columns: NULL-terminated header names; JSON keys are the lowercased headers. */
Table *table_new(const char *const *headers);
Table *table_free(Table *t);
static inline void table_freep(Table **t) {
        table_free(*t);
}
/* Adds one cell to the current row (a new row starts after the last column). */
int table_add(Table *t, CellType type, ...);
/* Prints as columns (with a header and a count line unless --no-legend) or JSON (array of objects). */
int table_print(Table *t, FILE *f);
size_t table_rows(const Table *t);

/* "Key: value" blocks (status, show): a list of pairs; JSON: one object. */
typedef struct Fields Fields;
Fields *fields_new(void);
Fields *fields_free(Fields *f);
static inline void fields_freep(Fields **f) {
        fields_free(*f);
}
/* Adds one "key: value" pair. A CELL_TABLE value is the block's from the call on, whatever it
 * returns: on failure (-ENOMEM) it is freed, so a caller must not free it or use it again. */
int fields_add(Fields *f, const char *key, CellType type, ...);
/* show style: KEY=value lines (only the keys in arg.property when set);
 * status style: right-aligned "Key: value" lines. */
int fields_print(Fields *f, FILE *out, bool show_style);

void json_write_string(FILE *f, const char *s);
char *format_timestamp(uint64_t usec, char *buf, size_t n);   /* "Sun 2026-11-29 03:00:00 UTC" */
char *format_timespan(uint64_t usec, char *buf, size_t n);    /* "3min 2s ago"-style span */
bool colors_enabled(void);   /* stdout is a tty and $NO_COLOR unset */
