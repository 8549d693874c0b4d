/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "berthctl.h"
#include "log.h"
#include "util.h"

Args arg = {
        .legend = true,
        .lines = 10,
        .max_size = IMPORT_MAX_SIZE_DEFAULT,
        .max_files = IMPORT_MAX_FILES_DEFAULT,
};

static const Verb verbs[] = {
        { "list", 1, 1, verb_list, "", "List running machines" },
        { "status", 2, UINT32_MAX, verb_status, "NAME...", "Show the state of machines" },
        { "show", 1, UINT32_MAX, verb_show, "[NAME...]", "Show properties of machines (KEY=VALUE)" },
        { "start", 2, UINT32_MAX, verb_start, "NAME...", "Boot images as machines" },
        { "login", 1, 2, verb_login, "NAME", "Log in on a machine" },
        { "shell", 1, UINT32_MAX, verb_shell, "[[USER@]NAME [COMMAND...]]", "Open a shell, or run a command, in a machine" },
        { "exec", 3, UINT32_MAX, verb_exec, "NAME COMMAND...", "Run a command in a machine's namespaces, without D-Bus" },
        { "console", 2, 2, verb_console, "NAME", "Attach to a machine's console (Ctrl-] three times detaches)" },
        { "wait", 2, UINT32_MAX, verb_wait, "NAME...", "Wait until machines are running (--until=ready|stopped)" },
        { "poweroff", 2, UINT32_MAX, verb_poweroff, "NAME...", "Power machines off, with their init's signal" },
        { "stop", 2, UINT32_MAX, verb_poweroff, "NAME...", "Same as poweroff" },
        { "reboot", 2, UINT32_MAX, verb_poweroff, "NAME...", "Reboot machines, with their init's signal" },
        { "restart", 2, UINT32_MAX, verb_poweroff, "NAME...", "Same as reboot" },
        { "terminate", 2, UINT32_MAX, verb_terminate, "NAME...", "Kill machines at once" },
        { "kill", 2, UINT32_MAX, verb_kill, "NAME...", "Send a signal to a machine's leader or all its processes" },
        { "enable", 2, UINT32_MAX, verb_enable, "NAME...", "Start machines at boot (berth@NAME.service)" },
        { "disable", 2, UINT32_MAX, verb_enable, "NAME...", "Do not start machines at boot" },
        { "copy-to", 3, 4, verb_copy, "NAME PATH [PATH]", "Copy a file or directory from the host into a machine" },
        { "copy-from", 3, 4, verb_copy, "NAME PATH [PATH]", "Copy a file or directory from a machine to the host" },
        { "bind", 3, 4, verb_bind, "NAME PATH [PATH]", "Bind-mount a host path into a running machine" },
        { "cat", 2, UINT32_MAX, verb_cat, "NAME...", "Show the settings files of machines" },
        { "edit", 2, 2, verb_edit, "NAME", "Edit a machine's settings file (a trusted copy in /etc/berth)" },
        { "list-images", 1, 1, verb_list_images, "", "List images" },
        { "image-status", 2, UINT32_MAX, verb_image_status, "NAME...", "Show the state of images (partitions of raw ones)" },
        { "show-image", 1, UINT32_MAX, verb_image_status, "[NAME...]", "Show properties of images (KEY=VALUE)" },
        { "clone", 3, 3, verb_clone, "NAME NAME", "Copy an image (reflinks where the file system can)" },
        { "rename", 3, 3, verb_rename, "NAME NAME", "Rename an image" },
        { "remove", 2, UINT32_MAX, verb_remove, "NAME...", "Remove images" },
        { "read-only", 2, 3, verb_read_only, "NAME [BOOL]", "Mark an image read-only or writable" },
        { "clean", 1, 1, verb_clean, "", "Remove hidden images (--all: every image not in use)" },
        { "import-tar", 2, 3, verb_import, "FILE [NAME]", "Import a tar archive as an image" },
        { "import-raw", 2, 3, verb_import, "FILE [NAME]", "Import a raw disk image as an image" },
        { "export-tar", 3, 3, verb_export_tar, "NAME FILE", "Export an image as a tar archive" },
        { "export-raw", 3, 3, verb_export_raw, "NAME FILE", "Export a raw image (compressed by FILE's suffix)" },
        { "import-fs", 2, 3, verb_import_fs, "DIRECTORY [NAME]", "Import a directory tree as an image" },
        { "pull-tar", 2, 3, verb_pull, "URL [NAME]", "Download a tar archive and import it as an image" },
        { "pull-raw", 2, 3, verb_pull, "URL [NAME]", "Download a raw disk image and import it as an image" },
};

/* "4096", "500K", "64G": bytes, the suffixes in powers of 1024 */
static int parse_size(const char *s, uint64_t *ret) {
        static const char suffixes[] = "KMGTPE";
        _cleanup_free_ char *n = strdup(s);
        uint64_t v;
        unsigned shift = 0;
        size_t l;
        char *p;

        if (!n)
                return -ENOMEM;
        l = strlen(n);
        if (l > 1 && (n[l - 1] == 'B' || n[l - 1] == 'b'))
                n[--l] = 0;
        if (l > 1 && (n[l - 1] & ~0x20) != 0 && (p = strchr(suffixes, n[l - 1] & ~0x20))) {
                shift = 10 * (unsigned) (p - suffixes + 1);
                n[--l] = 0;
        }
        if (safe_atou64(n, &v) < 0)
                return -EINVAL;
        if (shift > 0 && v > (UINT64_MAX >> shift))
                return -ERANGE;
        *ret = v << shift;
        return 0;
}

static void help(void) {
        printf("berthctl [OPTIONS...] COMMAND ...\n\n"
               "Manage berth's machines and images, with machinectl's verbs.\n\nCommands:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                char left[64];
                snprintf(left, sizeof left, "%s %s", verbs[i].name, verbs[i].synopsis);
                printf("  %-34s %s\n", left, verbs[i].help);
        }
        printf("\nOptions:\n"
               "  -h --help                          Show this help\n"
               "     --version                      Print the version\n"
               "     --json=MODE                    Output JSON (short, pretty, off)\n"
               "     --no-legend                    Do not print headers and footers\n"
               "     --no-pager                     Do not pipe output into a pager (berthctl never pages)\n"
               "     --no-ask-password              Do not ask for passwords (berthctl never asks)\n"
               "  -q --quiet                         Print less\n"
               "  -H --host=[USER@]HOST[:PORT]       Operate on a remote host, over SSH\n"
               "  -p --property=NAME                 Show only this property (show, show-image)\n"
               "     --value                        Show only the values of properties (show, show-image)\n"
               "  -P NAME                            Same as --property=NAME --value\n"
               "  -l --full                          Do not shorten output (berthctl never does)\n"
               "  -n --lines=INTEGER                 Journal lines to show (status; default 10)\n"
               "  -o --output=MODE                   Format of the journal lines (status): short, short-iso,\n"
               "                                     short-precise, short-unix, cat, verbose, json\n"
               "  -a --all                           Show all properties, or all images (clean)\n"
               "     --kill-whom=WHOM               Whom to signal: leader or all (kill)\n"
               "  -s --signal=SIGNAL                 Which signal to send (kill)\n"
               "     --until=STATE                  Wait until running, ready or stopped (wait)\n"
               "     --now                          Also start or power off the machines (enable, disable)\n"
               "     --timeout=TIME                 How long to wait (wait, start)\n"
               "     --read-only                    Bind, import or pull read-only\n"
               "     --verify=MODE                  What to check of a download: signature, checksum or no (pull-*)\n"
               "     --keep-devices                 Keep every device node of the archive (import-tar, pull-tar)\n"
               "     --keep-setuid                  Keep setuid and setgid files of the archive (import-tar, pull-tar)\n"
               "     --keep-capabilities            Keep file capabilities of the archive (import-tar, pull-tar)\n"
               "     --max-size=BYTES               Refuse an archive that expands beyond it (import-tar, pull-tar;\n"
               "                                    default 64G)\n"
               "     --max-files=NUMBER             Refuse an archive with more members (import-tar, pull-tar;\n"
               "                                    default 4000000)\n"
               "     --mkdir                        Create the destination (bind)\n"
               "     --force                        Replace an existing image (import-*, pull-*, clone) or file\n"
               "     --uid=USER                     User to run the shell as (shell)\n"
               "  -E --setenv=VAR=VALUE              Environment for the command (shell, exec)\n"
               "  -t --tty                           Run the command on a pseudo-terminal (exec)\n"
               "  -T --no-tty                        Never allocate a pseudo-terminal (exec)\n"
               "\nSee the berthctl(1) man page for details.\n");
}

enum {
        ARG_VERSION = 0x100,
        ARG_JSON,
        ARG_NO_LEGEND,
        ARG_NO_PAGER,
        ARG_KILL_WHOM,
        ARG_UNTIL,
        ARG_TIMEOUT,
        ARG_READ_ONLY,
        ARG_MKDIR,
        ARG_FORCE,
        ARG_UID,
        ARG_VALUE,
        ARG_NOW,
        ARG_VERIFY,
        ARG_NO_ASK_PASSWORD,
        ARG_KEEP_DEVICES,
        ARG_KEEP_SETUID,
        ARG_KEEP_CAPABILITIES,
        ARG_MAX_SIZE,
        ARG_MAX_FILES,
};

/* -H: where to run, and the tokens of main()'s argv that said so (not passed on to the remote) */
static RemoteHost remote = {};
static char *remote_spec = NULL;
static bool *remote_drop = NULL;

/* VALUE is -H's optarg: a pointer into one of main()'s arguments, either a whole one ("-H VALUE",
 * "--host VALUE") or the tail of one ("-HVALUE", "--host=VALUE"). Marks them dropped. */
static int host_option(const char *value) {
        int n = (int) strv_length(berthctl_argv);

        if (remote_spec)
                return log_error_errno(-EINVAL, "-H/--host= given twice.");
        if (!remote_drop) {
                remote_drop = calloc((size_t) n + 1, sizeof(bool));
                if (!remote_drop)
                        return log_oom();
        }
        for (int i = 1;; i++) {
                if (i >= n) /* not one of our arguments: never pass -H on, or the far side would go on */
                        return log_error_errno(-EINVAL, "Cannot tell which argument gave -H.");
                const char *a = berthctl_argv[i];
                bool whole = a == value, tail = !whole && value > a && value <= a + strlen(a);

                if (!whole && !tail)
                        continue;
                /* the option's own token: "-H", "--host", or the start of "-HVALUE", "--host=VALUE" */
                if (whole && i > 1 && (streq(berthctl_argv[i - 1], "-H") || startswith(berthctl_argv[i - 1], "--")))
                        remote_drop[i - 1] = remote_drop[i] = true;
                else if (tail && (startswith(a, "-H") || startswith(a, "--")))
                        remote_drop[i] = true;
                else
                        return log_error_errno(-EINVAL, "Give -H on its own, not combined with other short options.");
                break;
        }
        remote_spec = strdup(value);
        if (!remote_spec)
                return log_oom();
        return remote_host_parse(value, &remote);
}

/* The arguments the remote berthctl gets: ours without -H. VERB: NULL for none (list). */
static int run_remote(const char *verb) {
        _cleanup_strv_free_ char **args = NULL;
        int n = (int) strv_length(berthctl_argv);
        bool tty;

        for (int i = 1; i < n; i++)
                if (!remote_drop[i] && strv_extend(&args, berthctl_argv[i]) < 0)
                        return log_oom();
        /* a terminal on the far side for what is interactive, as ssh does for a login */
        tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) && !arg.no_tty;
        if (tty && !arg.tty)
                tty = verb && (streq(verb, "shell") || streq(verb, "login") || streq(verb, "console"));
        return remote_run(&remote, remote_spec, verb ?: "list", args, tty);
}

static int parse_argv(int argc, char *argv[], bool permute) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "json", required_argument, NULL, ARG_JSON },
                { "no-legend", no_argument, NULL, ARG_NO_LEGEND },
                { "no-pager", no_argument, NULL, ARG_NO_PAGER },
                { "quiet", no_argument, NULL, 'q' },
                { "property", required_argument, NULL, 'p' },
                { "all", no_argument, NULL, 'a' },
                { "kill-whom", required_argument, NULL, ARG_KILL_WHOM },
                { "signal", required_argument, NULL, 's' },
                { "until", required_argument, NULL, ARG_UNTIL },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "read-only", no_argument, NULL, ARG_READ_ONLY },
                { "mkdir", no_argument, NULL, ARG_MKDIR },
                { "force", no_argument, NULL, ARG_FORCE },
                { "uid", required_argument, NULL, ARG_UID },
                { "setenv", required_argument, NULL, 'E' },
                { "tty", no_argument, NULL, 't' },
                { "no-tty", no_argument, NULL, 'T' },
                { "value", no_argument, NULL, ARG_VALUE },
                { "full", no_argument, NULL, 'l' },
                { "now", no_argument, NULL, ARG_NOW },
                { "verify", required_argument, NULL, ARG_VERIFY },
                { "no-ask-password", no_argument, NULL, ARG_NO_ASK_PASSWORD },
                { "keep-devices", no_argument, NULL, ARG_KEEP_DEVICES },
                { "keep-setuid", no_argument, NULL, ARG_KEEP_SETUID },
                { "keep-capabilities", no_argument, NULL, ARG_KEEP_CAPABILITIES },
                { "max-size", required_argument, NULL, ARG_MAX_SIZE },
                { "max-files", required_argument, NULL, ARG_MAX_FILES },
                { "lines", required_argument, NULL, 'n' },
                { "output", required_argument, NULL, 'o' },
                { "host", required_argument, NULL, 'H' },
                {}
        };
        int c, r;

        opterr = 0;
        /* "+": options end at the verb's command (shell, exec) */
        while ((c = getopt_long(argc, argv, permute ? "hqp:P:las:E:tTn:o:H:" : "+hqp:P:las:E:tTn:o:H:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("berthctl %s\n", BERTH_VERSION);
                        return 0;
                case ARG_JSON:
                        if (streq(optarg, "short"))
                                arg.json = JSON_SHORT;
                        else if (streq(optarg, "pretty"))
                                arg.json = JSON_PRETTY;
                        else if (streq(optarg, "off"))
                                arg.json = JSON_OFF;
                        else
                                return log_error_errno(-EINVAL, "Invalid --json= value '%s': expected short, pretty or off.", optarg);
                        break;
                case ARG_NO_LEGEND:
                        arg.legend = false;
                        break;
                case ARG_NO_PAGER:
                case ARG_NO_ASK_PASSWORD:
                        break; /* berthctl never pages, and never asks: it runs as root, without polkit */
                case 'n':
                        if (safe_atou(optarg, &arg.lines) < 0)
                                return log_error_errno(-EINVAL, "Invalid --lines= value '%s': expected a number of lines (0: none).",
                                                       optarg);
                        break;
                case 'o':
                        if (streq(optarg, "help")) {
                                for (int i = 0; i < _OUTPUT_MODE_MAX; i++)
                                        puts(output_mode_to_string((OutputMode) i));
                                return 0;
                        }
                        arg.output = output_mode_from_string(optarg);
                        if (arg.output < 0)
                                return log_error_errno(-EINVAL, "Invalid --output= value '%s': expected short, short-iso, "
                                                                "short-precise, short-unix, cat, verbose or json ('help' lists them).",
                                                       optarg);
                        break;
                case 'q':
                        arg.quiet = true;
                        break;
                case 'p':
                        if (isempty(optarg))
                                return log_error_errno(-EINVAL, "Invalid --property= value: empty.");
                        r = strv_extend(&arg.property, optarg);
                        if (r < 0)
                                return log_oom();
                        break;
                case 'P':
                        if (isempty(optarg))
                                return log_error_errno(-EINVAL, "Invalid -P value: empty.");
                        r = strv_extend(&arg.property, optarg);
                        if (r < 0)
                                return log_oom();
                        arg.value = true;
                        break;
                case ARG_VALUE:
                        arg.value = true;
                        break;
                case 'l':
                        break; /* nothing is ever shortened */
                case ARG_NOW:
                        arg.now = true;
                        break;
                case 'a':
                        arg.all = true;
                        break;
                case ARG_KILL_WHOM:
                        if (!streq(optarg, "leader") && !streq(optarg, "all"))
                                return log_error_errno(-EINVAL, "Invalid --kill-whom= value '%s': expected leader or all.", optarg);
                        r = free_and_strdup(&arg.kill_whom, optarg);
                        if (r < 0)
                                return log_oom();
                        break;
                case 's':
                        arg.signal = signal_from_string(optarg);
                        if (arg.signal < 0)
                                return log_error_errno(-EINVAL, "Invalid --signal= value '%s': expected a signal name or number.", optarg);
                        break;
                case ARG_UNTIL:
                        if (!streq(optarg, "running") && !streq(optarg, "ready") && !streq(optarg, "stopped"))
                                return log_error_errno(-EINVAL, "Invalid --until= value '%s': expected running, ready or stopped.",
                                                       optarg);
                        r = free_and_strdup(&arg.until, optarg);
                        if (r < 0)
                                return log_oom();
                        break;
                case ARG_TIMEOUT:
                        if (parse_sec(optarg, &arg.timeout_usec) < 0 || arg.timeout_usec == 0)
                                return log_error_errno(-EINVAL, "Invalid --timeout= value '%s': expected a time span such as 30s.", optarg);
                        break;
                case ARG_VERIFY:
                        r = import_verify_from_string(optarg);
                        if (r < 0)
                                return log_error_errno(-EINVAL, "Invalid --verify= value '%s': expected signature, checksum "
                                                                "or no.", optarg);
                        arg.verify = r;
                        break;
                case ARG_READ_ONLY:
                        arg.read_only = true;
                        break;
                case ARG_KEEP_DEVICES:
                        arg.keep_devices = true;
                        break;
                case ARG_KEEP_SETUID:
                        arg.keep_setuid = true;
                        break;
                case ARG_KEEP_CAPABILITIES:
                        arg.keep_caps = true;
                        break;
                case ARG_MAX_SIZE:
                        if (parse_size(optarg, &arg.max_size) < 0 || arg.max_size == 0)
                                return log_error_errno(-EINVAL, "Invalid --max-size= value '%s': expected bytes such as "
                                                                "500M or 64G.", optarg);
                        break;
                case ARG_MAX_FILES:
                        if (safe_atou64(optarg, &arg.max_files) < 0 || arg.max_files == 0)
                                return log_error_errno(-EINVAL, "Invalid --max-files= value '%s': expected a number.",
                                                       optarg);
                        break;
                case ARG_MKDIR:
                        arg.mkdir = true;
                        break;
                case ARG_FORCE:
                        arg.force = true;
                        break;
                case ARG_UID:
                        if (isempty(optarg))
                                return log_error_errno(-EINVAL, "Invalid --uid= value: empty.");
                        r = free_and_strdup(&arg.uid, optarg);
                        if (r < 0)
                                return log_oom();
                        break;
                case 'E':
                        if (!strchr(optarg, '=') || optarg[0] == '=')
                                return log_error_errno(-EINVAL, "Invalid --setenv= value '%s': expected VAR=VALUE.", optarg);
                        r = strv_extend(&arg.setenv, optarg);
                        if (r < 0)
                                return log_oom();
                        break;
                case 'H':
                        r = host_option(optarg);
                        if (r < 0)
                                return r;
                        break;
                case 't':
                        arg.tty = true;
                        break;
                case 'T':
                        arg.no_tty = true;
                        break;
                case '?':
                default:
                        if (optopt > 0 && optopt < 0x100 && isprint(optopt))
                                return log_error_errno(-EINVAL, "Unknown option '-%c', or it needs a value, see --help.", optopt);
                        return log_error_errno(-EINVAL, "Unknown option '%s', or it needs a value, see --help.", argv[optind - 1]);
                }
        }
        if (arg.tty && arg.no_tty)
                return log_error_errno(-EINVAL, "--tty and --no-tty cannot be combined.");
        return 1;
}

static int dispatch(int argc, char *argv[]) {
        const Verb *v = NULL;
        unsigned n;

        if (argc <= 0) {
                v = &verbs[0]; /* "list", as machinectl does */
                char *def[] = { (char *) "list", NULL };
                return v->fn(1, def);
        }
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, argv[0]))
                        v = &verbs[i];
        if (!v)
                return log_error_errno(-EINVAL, "Unknown command '%s', see --help.", argv[0]);
        n = (unsigned) argc;
        if (n < v->min_args)
                return log_error_errno(-EINVAL, "Too few arguments for '%s': berthctl %s %s", v->name, v->name, v->synopsis);
        if (n > v->max_args)
                return log_error_errno(-EINVAL, "Too many arguments for '%s': berthctl %s %s", v->name, v->name, v->synopsis);
        return v->fn(argc, argv);
}

char **berthctl_argv = NULL;

int main(int argc, char *argv[]) {
        _cleanup_free_ char **argv_copy = NULL;
        int r;

        log_set_prefix("berthctl");
        log_open();

        /* as we were started, for exec's re-execution of itself (option parsing permutes argv) */
        argv_copy = calloc((size_t) argc + 1, sizeof(char *));
        if (argv_copy)
                memcpy(argv_copy, argv, sizeof(char *) * (size_t) argc);
        berthctl_argv = argv_copy;

        r = parse_argv(argc, argv, false);
        if (r > 0 && optind < argc) {
                /* Options may follow the verb too, as with machinectl; for exec and shell only up to
                 * the machine name ("+": the rest is the command's). Second pass over the verb's
                 * arguments; permuting moves the non-options to the end. */
                int vargc = argc - optind;
                char **vargv = argv + optind;
                bool cmd = streq(vargv[0], "exec") || streq(vargv[0], "shell");

                optind = 0;
                r = parse_argv(vargc, vargv, !cmd);
                if (r > 0) {
                        vargv[optind - 1] = vargv[0]; /* the verb, in front of its arguments */
                        r = remote_spec ? run_remote(vargv[0]) : dispatch(vargc - optind + 1, vargv + optind - 1);
                }
        } else if (r > 0)
                r = remote_spec ? run_remote(NULL) : dispatch(0, argv + optind);

        strv_free(arg.property);
        strv_free(arg.setenv);
        free(arg.kill_whom);
        free(arg.until);
        free(arg.uid);
        remote_host_done(&remote);
        free(remote_spec);
        free(remote_drop);
        /* a verb may return a positive exit status of its own (shell, exec) */
        return r < 0 ? EXIT_FAILURE : r >= VERB_EXIT_STATUS(0) ? r & 0xff : EXIT_SUCCESS;
}

/* ---- output ---- */

typedef struct Cell {
        CellType type;
        char *s;
        char **strv;
        long long i;
        unsigned long long u;
        bool b;
        Table *table;
} Cell;

struct Table {
        char **headers;
        size_t n_columns;
        Cell *cells;
        size_t n_cells;
};

Table *table_new(const char *const *headers) {
        Table *t = calloc(1, sizeof(Table));
        if (!t)
                return NULL;
        for (const char *const *h = headers; *h; h++)
                if (strv_extend(&t->headers, *h) < 0)
                        return table_free(t);
        t->n_columns = strv_length(t->headers);
        return t;
}

static void cell_done(Cell *c) {
        free(c->s);
        strv_free(c->strv);
        table_free(c->table);
}

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_cells; i++)
                cell_done(&t->cells[i]);
        free(t->cells);
        strv_free(t->headers);
        free(t);
        return NULL;
}

size_t table_rows(const Table *t) {
        return t->n_columns ? t->n_cells / t->n_columns : 0;
}

static int cell_from_va(Cell *c, CellType type, va_list ap) {
        *c = (Cell) { .type = type };
        switch (type) {
        case CELL_STRING: {
                const char *s = va_arg(ap, const char *);
                if (s && !(c->s = strdup(s)))
                        return -ENOMEM;
                break;
        }
        case CELL_INT:
                c->i = va_arg(ap, long long);
                break;
        case CELL_UINT:
        case CELL_TIMESTAMP:
        case CELL_SIZE:
                c->u = va_arg(ap, unsigned long long);
                break;
        case CELL_BOOL:
                c->b = va_arg(ap, int);
                break;
        case CELL_STRV: {
                char **l = va_arg(ap, char **);
                if (l && !(c->strv = strv_copy(l)))
                        return -ENOMEM;
                break;
        }
        case CELL_TABLE:
                c->table = va_arg(ap, Table *);
                break;
        }
        return 0;
}

int table_add(Table *t, CellType type, ...) {
        va_list ap;
        Cell c, *n;
        int r;

        /* as fields_add(): the cell owns what it was given, also when we fail */
        va_start(ap, type);
        r = cell_from_va(&c, type, ap);
        va_end(ap);
        if (r < 0)
                return r;
        n = realloc(t->cells, sizeof(Cell) * (t->n_cells + 1));
        if (!n) {
                cell_done(&c);
                return -ENOMEM;
        }
        t->cells = n;
        t->cells[t->n_cells++] = c;
        return 0;
}

char *format_timestamp(uint64_t usec, char *buf, size_t n) {
        time_t t = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;

        if (usec == 0 || !localtime_r(&t, &tm) || strftime(buf, n, "%a %Y-%m-%d %H:%M:%S %Z", &tm) == 0)
                snprintf(buf, n, "n/a");
        return buf;
}

char *format_timespan(uint64_t usec, char *buf, size_t n) {
        static const struct {
                const char *suffix;
                uint64_t usec;
        } units[] = {
                { "d", 86400 * USEC_PER_SEC }, { "h", 3600 * USEC_PER_SEC }, { "min", 60 * USEC_PER_SEC },
                { "s", USEC_PER_SEC },         { "ms", USEC_PER_MSEC },
        };
        size_t k = 0;
        int parts = 0;

        buf[0] = 0;
        for (size_t i = 0; i < ELEMENTSOF(units) && parts < 2; i++)
                if (usec >= units[i].usec) {
                        k += (size_t) snprintf(buf + k, n - MIN(k, n), "%s%llu%s", parts ? " " : "",
                                               (unsigned long long) (usec / units[i].usec), units[i].suffix);
                        usec %= units[i].usec;
                        parts++;
                }
        if (parts == 0)
                snprintf(buf, n, "0");
        return buf;
}

bool colors_enabled(void) {
        return isatty(STDOUT_FILENO) && !getenv("NO_COLOR") && arg.json == JSON_OFF;
}

void json_write_string(FILE *f, const char *s) {
        fputc('"', f);
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                switch (*p) {
                case '"':
                        fputs("\\\"", f);
                        break;
                case '\\':
                        fputs("\\\\", f);
                        break;
                case '\n':
                        fputs("\\n", f);
                        break;
                case '\t':
                        fputs("\\t", f);
                        break;
                default:
                        if (*p < 0x20)
                                fprintf(f, "\\u%04x", *p);
                        else
                                fputc(*p, f);
                }
        }
        fputc('"', f);
}

static void table_print_json(const Table *t, FILE *f, bool pretty);

static void cell_print_json(const Cell *c, FILE *f) {
        switch (c->type) {
        case CELL_STRING:
                if (c->s)
                        json_write_string(f, c->s);
                else
                        fputs("null", f);
                break;
        case CELL_INT:
                fprintf(f, "%lld", c->i);
                break;
        case CELL_UINT:
                fprintf(f, "%llu", c->u);
                break;
        case CELL_TIMESTAMP:
                if (c->u == 0)
                        fputs("null", f);
                else
                        fprintf(f, "%llu", c->u);
                break;
        case CELL_SIZE:
                if (c->u == UINT64_MAX)
                        fputs("null", f);
                else
                        fprintf(f, "%llu", c->u);
                break;
        case CELL_BOOL:
                fputs(c->b ? "true" : "false", f);
                break;
        case CELL_STRV:
                fputc('[', f);
                STRV_FOREACH(s, c->strv) {
                        if (s != c->strv)
                                fputc(',', f);
                        json_write_string(f, *s);
                }
                fputc(']', f);
                break;
        case CELL_TABLE:
                if (c->table)
                        table_print_json(c->table, f, false);
                else
                        fputs("null", f);
                break;
        }
}

static char *cell_to_text(const Cell *c) {
        char buf[128];

        switch (c->type) {
        case CELL_STRING:
                return strdup(c->s ?: "-");
        case CELL_INT:
                snprintf(buf, sizeof buf, "%lld", c->i);
                return strdup(buf);
        case CELL_UINT:
                snprintf(buf, sizeof buf, "%llu", c->u);
                return strdup(buf);
        case CELL_BOOL:
                return strdup(yes_no(c->b));
        case CELL_TIMESTAMP:
                return strdup(format_timestamp(c->u, buf, sizeof buf));
        case CELL_SIZE:
                return strdup(format_bytes(c->u, buf, sizeof buf));
        case CELL_STRV: {
                size_t l = 0;
                STRV_FOREACH(s, c->strv)
                        l += strlen(*s) + 2;
                char *r = calloc(1, l + 2);
                if (!r)
                        return NULL;
                STRV_FOREACH(s, c->strv) {
                        if (s != c->strv)
                                strcat(r, ", ");
                        strcat(r, *s);
                }
                if (!c->strv)
                        strcpy(r, "-");
                return r;
        }
        case CELL_TABLE:
                snprintf(buf, sizeof buf, "%zu", c->table ? table_rows(c->table) : 0);
                return strdup(buf);
        }
        return NULL;
}

static void json_key(FILE *f, const char *header) {
        _cleanup_free_ char *k = strdup(header);
        if (!k)
                return;
        for (char *p = k; *p; p++)
                *p = *p == ' ' ? '_' : (char) tolower((unsigned char) *p);
        json_write_string(f, k);
}

static void table_print_json(const Table *t, FILE *f, bool pretty) {
        size_t rows = table_rows(t);

        fputc('[', f);
        for (size_t r = 0; r < rows; r++) {
                fputs(r ? (pretty ? ",\n  {" : ",{") : (pretty ? "\n  {" : "{"), f);
                for (size_t c = 0; c < t->n_columns; c++) {
                        if (c)
                                fputs(pretty ? ", " : ",", f);
                        json_key(f, t->headers[c]);
                        fputs(pretty ? ": " : ":", f);
                        cell_print_json(&t->cells[r * t->n_columns + c], f);
                }
                fputc('}', f);
        }
        fputs(pretty && rows ? "\n]" : "]", f);
}

/* The rows of T as aligned columns, one string a line, the header first when HEADER. */
static int table_format(const Table *t, bool header, char ***ret) {
        size_t rows = table_rows(t);
        _cleanup_strv_free_ char **text = calloc(t->n_cells + 1, sizeof(char *));
        _cleanup_strv_free_ char **lines = NULL;
        _cleanup_free_ size_t *width = calloc(t->n_columns, sizeof(size_t));

        if (!text || !width)
                return -ENOMEM;
        for (size_t c = 0; c < t->n_columns; c++)
                width[c] = header ? strlen(t->headers[c]) : 0;
        for (size_t i = 0; i < t->n_cells; i++) {
                text[i] = cell_to_text(&t->cells[i]);
                if (!text[i])
                        return -ENOMEM;
                width[i % t->n_columns] = MAX(width[i % t->n_columns], strlen(text[i]));
        }
        for (size_t r = header ? 0 : 1; r <= rows; r++) {
                char **cells = r == 0 ? t->headers : text + (r - 1) * t->n_columns;
                char *line = NULL;
                size_t n = 0;
                FILE *f = open_memstream(&line, &n);

                if (!f)
                        return -ENOMEM;
                for (size_t c = 0; c < t->n_columns; c++) {
                        if (c + 1 == t->n_columns)
                                fputs(cells[c], f);
                        else
                                fprintf(f, "%-*s ", (int) width[c], cells[c]);
                }
                if (fclose(f) != 0 || !line) {
                        free(line);
                        return -ENOMEM;
                }
                if (strv_consume(&lines, line) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(lines);
        return 0;
}

int table_print(Table *t, FILE *f) {
        _cleanup_strv_free_ char **lines = NULL;
        int r;

        if (arg.json != JSON_OFF) {
                table_print_json(t, f, arg.json == JSON_PRETTY);
                fputc('\n', f);
                return 0;
        }
        r = table_format(t, arg.legend && table_rows(t) > 0, &lines);
        if (r < 0)
                return r;
        STRV_FOREACH(l, lines)
                fprintf(f, "%s\n", *l);
        return 0;
}

typedef struct Field {
        char *key;
        Cell value;
} Field;

struct Fields {
        Field *f;
        size_t n;
};

Fields *fields_new(void) {
        return calloc(1, sizeof(Fields));
}

Fields *fields_free(Fields *f) {
        if (!f)
                return NULL;
        for (size_t i = 0; i < f->n; i++) {
                free(f->f[i].key);
                cell_done(&f->f[i].value);
        }
        free(f->f);
        free(f);
        return NULL;
}

int fields_add(Fields *f, const char *key, CellType type, ...) {
        Field *n;
        va_list ap;
        Cell c;
        int r;

        /* the cell first: from here on it owns what it was given (a CELL_TABLE's table), and
         * every failure below frees that, so that a caller never has to know how far we got */
        va_start(ap, type);
        r = cell_from_va(&c, type, ap);
        va_end(ap);
        if (r < 0)
                return r;
        n = realloc(f->f, sizeof(Field) * (f->n + 1));
        if (!n) {
                cell_done(&c);
                return -ENOMEM;
        }
        f->f = n;
        n[f->n].key = strdup(key);
        if (!n[f->n].key) {
                cell_done(&c);
                return -ENOMEM;
        }
        n[f->n].value = c;
        f->n++;
        return 0;
}

/* A nested table in a block of fields. Status style: its columns, the header on the key's
 * line, the rows below aligned with it. Show style: a KEY= line per row, of the row's
 * column=value pairs (sizes in bytes), or only the pairs with --value. */
static int fields_print_table(const char *key, const Table *t, FILE *out, bool show_style, size_t width) {
        _cleanup_strv_free_ char **lines = NULL;
        size_t rows = t ? table_rows(t) : 0;
        int r;

        if (!show_style) {
                if (rows == 0) {
                        fprintf(out, "%*s: -\n", (int) width, key);
                        return 0;
                }
                r = table_format(t, true, &lines);
                if (r < 0)
                        return r;
                STRV_FOREACH(l, lines)
                        fprintf(out, "%*s%s %s\n", (int) width, l == lines ? key : "", l == lines ? ":" : " ", *l);
                return 0;
        }
        for (size_t row = 0; row < rows; row++) {
                if (!arg.value)
                        fprintf(out, "%s=", key);
                for (size_t c = 0; c < t->n_columns; c++) {
                        const Cell *cell = &t->cells[row * t->n_columns + c];
                        _cleanup_free_ char *v = cell->type == CELL_SIZE || cell->type == CELL_UINT ? NULL
                                                                                                   : cell_to_text(cell);
                        if (c)
                                fputc(' ', out);
                        for (const char *h = t->headers[c]; *h; h++)
                                fputc(*h == ' ' ? '-' : tolower((unsigned char) *h), out);
                        fputc('=', out);
                        if (cell->type == CELL_SIZE || cell->type == CELL_UINT)
                                fprintf(out, "%llu", cell->u);
                        else if (!v)
                                return -ENOMEM;
                        else
                                fputs(v, out);
                }
                fputc('\n', out);
        }
        return 0;
}

int fields_print(Fields *fl, FILE *out, bool show_style) {
        size_t width = 0;

        if (arg.json != JSON_OFF) {
                bool pretty = arg.json == JSON_PRETTY, first = true;
                fputc('{', out);
                for (size_t i = 0; i < fl->n; i++) {
                        if (arg.property && !strv_contains(arg.property, fl->f[i].key))
                                continue;
                        fputs(first ? (pretty ? "\n  " : "") : (pretty ? ",\n  " : ","), out);
                        first = false;
                        json_write_string(out, fl->f[i].key);
                        fputs(pretty ? ": " : ":", out);
                        cell_print_json(&fl->f[i].value, out);
                }
                fputs(pretty && !first ? "\n}\n" : "}\n", out);
                return 0;
        }
        for (size_t i = 0; i < fl->n; i++)
                width = MAX(width, strlen(fl->f[i].key));
        for (size_t i = 0; i < fl->n; i++) {
                _cleanup_free_ char *v = NULL;
                if (show_style && arg.property && !strv_contains(arg.property, fl->f[i].key))
                        continue;
                if (fl->f[i].value.type == CELL_TABLE) {
                        int r = fields_print_table(fl->f[i].key, fl->f[i].value.table, out, show_style, width);
                        if (r < 0)
                                return r;
                        continue;
                }
                v = cell_to_text(&fl->f[i].value);
                if (!v)
                        return -ENOMEM;
                if (show_style && arg.value) {
                        if (fl->f[i].value.type == CELL_SIZE || fl->f[i].value.type == CELL_UINT ||
                            fl->f[i].value.type == CELL_TIMESTAMP)
                                fprintf(out, "%llu\n", fl->f[i].value.u);
                        else
                                fprintf(out, "%s\n", fl->f[i].value.type == CELL_STRING && !fl->f[i].value.s ? "" : v);
                } else if (show_style) {
                        /* show: raw values, timestamps as numbers are more useful to scripts */
                        if (fl->f[i].value.type == CELL_SIZE || fl->f[i].value.type == CELL_UINT ||
                            fl->f[i].value.type == CELL_TIMESTAMP)
                                fprintf(out, "%s=%llu\n", fl->f[i].key, fl->f[i].value.u);
                        else
                                fprintf(out, "%s=%s\n", fl->f[i].key, fl->f[i].value.type == CELL_STRING && !fl->f[i].value.s ? "" : v);
                } else
                        fprintf(out, "%*s: %s\n", (int) width, fl->f[i].key, v);
        }
        return 0;
}
