/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The journal lines of `berthctl status`, as machinectl shows them: the last -n lines since the
 * machine started, in the -o format. They come from two places:
 *   - the host's journal: berth's own messages about the machine (MACHINE=NAME, logged under
 *     systemd), and the guest's own entries when its journal is linked to the host's
 *     (--link-journal=, _MACHINE_ID= the guest's machine ID);
 *   - the guest's persistent journal in its tree, when it is not linked (the same entries
 *     would be shown twice otherwise).
 * Both are merged by time. The tree is hostile: its journal directory is opened inside it and
 * read through sd-journal, which treats journal files as untrusted input anyway. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "berthctl-machine.h"
#include "berthctl.h"
#include "log.h"

static const char *const output_mode_table[_OUTPUT_MODE_MAX] = {
        [OUTPUT_SHORT] = "short",
        [OUTPUT_SHORT_ISO] = "short-iso",
        [OUTPUT_SHORT_PRECISE] = "short-precise",
        [OUTPUT_SHORT_UNIX] = "short-unix",
        [OUTPUT_CAT] = "cat",
        [OUTPUT_VERBOSE] = "verbose",
        [OUTPUT_JSON] = "json",
};

const char *output_mode_to_string(OutputMode m) {
        return m >= 0 && m < _OUTPUT_MODE_MAX ? output_mode_table[m] : NULL;
}

OutputMode output_mode_from_string(const char *s) {
        return (OutputMode) string_table_lookup(output_mode_table, _OUTPUT_MODE_MAX, s);
}

typedef struct Entry {
        uint64_t usec;
        char *text;
} Entry;

typedef struct Entries {
        Entry *list;
        size_t n;
} Entries;

static void entries_done(Entries *e) {
        for (size_t i = 0; i < e->n; i++)
                free(e->list[i].text);
        free(e->list);
}

/* The value of field KEY of the current entry, without "KEY=", cut to SIZE-1 bytes. */
static bool get_field(sd_journal *j, const char *key, char *buf, size_t size) {
        size_t kl = strlen(key), l;
        const void *d;

        if (sd_journal_get_data(j, key, &d, &l) < 0 || l <= kl)
                return false;
        snprintf(buf, size, "%.*s", (int) MIN(l - kl - 1, size - 1), (const char *) d + kl + 1);
        return true;
}

static void sanitize(char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 && *s != '\t')
                        *s = ' ';
}

static void write_short(sd_journal *j, FILE *f, OutputMode mode, uint64_t usec) {
        char ts[64] = "", host[256] = "", ident[128] = "", pid[32] = "", msg[4096] = "";
        time_t t = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;

        if (mode != OUTPUT_CAT) {
                if (mode == OUTPUT_SHORT_UNIX)
                        snprintf(ts, sizeof ts, "%llu.%06llu", (unsigned long long) (usec / USEC_PER_SEC),
                                 (unsigned long long) (usec % USEC_PER_SEC));
                else if (localtime_r(&t, &tm)) {
                        strftime(ts, sizeof ts, mode == OUTPUT_SHORT_ISO ? "%Y-%m-%dT%H:%M:%S%z" : "%b %d %H:%M:%S", &tm);
                        if (mode == OUTPUT_SHORT_PRECISE) {
                                size_t n = strlen(ts);
                                snprintf(ts + n, sizeof ts - n, ".%06llu", (unsigned long long) (usec % USEC_PER_SEC));
                        }
                }
                (void) get_field(j, "_HOSTNAME", host, sizeof host);
                if (!get_field(j, "SYSLOG_IDENTIFIER", ident, sizeof ident) &&
                    !get_field(j, "_COMM", ident, sizeof ident))
                        snprintf(ident, sizeof ident, "unknown");
                if (!get_field(j, "_PID", pid, sizeof pid))
                        (void) get_field(j, "SYSLOG_PID", pid, sizeof pid);
                sanitize(host);
                sanitize(ident);
                sanitize(pid);
                fprintf(f, "%s %s%s%s%s%s%s: ", ts, host, *host ? " " : "", ident, *pid ? "[" : "", pid, *pid ? "]" : "");
        }
        (void) get_field(j, "MESSAGE", msg, sizeof msg);
        sanitize(msg);
        fprintf(f, "%s\n", msg);
}

static void write_verbose(sd_journal *j, FILE *f, uint64_t usec) {
        char ts[64] = "";
        time_t t = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;
        const void *d;
        size_t l;

        if (localtime_r(&t, &tm))
                strftime(ts, sizeof ts, "%a %Y-%m-%d %H:%M:%S", &tm);
        fprintf(f, "%s.%06llu\n", ts, (unsigned long long) (usec % USEC_PER_SEC));
        SD_JOURNAL_FOREACH_DATA(j, d, l) {
                char *s = strndup(d, l);
                if (!s)
                        continue;
                sanitize(s);
                fprintf(f, "    %s\n", s);
                free(s);
        }
}

static void write_json(sd_journal *j, FILE *f, uint64_t usec) {
        const void *d;
        size_t l;

        fprintf(f, "{\"__REALTIME_TIMESTAMP\":\"%llu\"", (unsigned long long) usec);
        SD_JOURNAL_FOREACH_DATA(j, d, l) {
                const char *eq = memchr(d, '=', l);
                char *k, *v;
                if (!eq)
                        continue;
                k = strndup(d, (size_t) (eq - (const char *) d));
                v = strndup(eq + 1, l - (size_t) (eq - (const char *) d) - 1);
                if (k && v) {
                        fputc(',', f);
                        json_write_string(f, k);
                        fputc(':', f);
                        json_write_string(f, v);
                }
                free(k);
                free(v);
        }
        fputs("}\n", f);
}

/* The last LINES entries of J (matches already added) since SINCE, formatted, into E. */
static int collect(sd_journal *j, unsigned lines, uint64_t since, OutputMode mode, Entries *e) {
        int r;

        r = sd_journal_seek_tail(j);
        if (r < 0)
                return r;
        /* on the LINES-th entry from the end: that one first, then on */
        r = sd_journal_previous_skip(j, lines);
        if (r <= 0)
                return r;
        for (; r > 0; r = sd_journal_next(j)) {
                uint64_t usec = 0;
                char *text = NULL;
                size_t size = 0;
                FILE *f;

                if (sd_journal_get_realtime_usec(j, &usec) < 0 || usec < since)
                        continue;
                f = open_memstream(&text, &size);
                if (!f)
                        return -ENOMEM;
                if (mode == OUTPUT_VERBOSE)
                        write_verbose(j, f, usec);
                else if (mode == OUTPUT_JSON)
                        write_json(j, f, usec);
                else
                        write_short(j, f, mode, usec);
                if (fclose(f) != 0 || !text) {
                        free(text);
                        return -ENOMEM;
                }
                Entry *n = realloc(e->list, (e->n + 1) * sizeof(Entry));
                if (!n) {
                        free(text);
                        return -ENOMEM;
                }
                e->list = n;
                e->list[e->n++] = (Entry) { .usec = usec, .text = text };
        }
        return r;
}

static int entry_cmp(const void *a, const void *b) {
        const Entry *x = a, *y = b;
        return x->usec < y->usec ? -1 : x->usec > y->usec;
}

/* The guest's machine ID, from its running tree. */
static bool guest_machine_id(int root, char ret[static 33]) {
        _cleanup_close_ int fd = open_regular_in_root(root, "etc/machine-id", NULL);
        char buf[64];
        ssize_t n;

        if (fd < 0 || (n = read(fd, buf, sizeof buf - 1)) < 32)
                return false;
        buf[n] = 0;
        buf[strcspn(buf, "\n")] = 0;
        if (strlen(buf) != 32 || strspn(buf, "0123456789abcdef") != 32)
                return false;
        memcpy(ret, buf, 33);
        return true;
}

static bool host_has_journal(void) {
        struct stat st;
        return stat("/var/log/journal", &st) >= 0 || stat("/run/log/journal", &st) >= 0;
}

void machine_journal_print(const MachineInfo *m, unsigned lines, int output_mode) {
        OutputMode mode = (OutputMode) output_mode;
        _cleanup_close_ int root = -EBADF, dfd = -EBADF;
        _cleanup_free_ char *mmatch = NULL;
        Entries e = {};
        char id[33] = "";
        bool linked = false, any = false;
        struct stat st;
        sd_journal *j = NULL;
        int r;

        if (lines == 0)
                return;
        if (machine_open_root(m, &root) >= 0 && guest_machine_id(root, id)) {
                char p[64];
                snprintf(p, sizeof p, "/var/log/journal/%s", id);
                linked = stat(p, &st) >= 0 && S_ISDIR(st.st_mode);
        }

        /* the host's journal (not SD_JOURNAL_LOCAL_ONLY: a linked guest's directory is another
         * machine's) */
        if (host_has_journal() && sd_journal_open(&j, 0) >= 0) {
                any = true;
                mmatch = strjoin("MACHINE=", m->name);
                r = mmatch ? sd_journal_add_match(j, mmatch, 0) : -ENOMEM;
                if (r >= 0 && *id) {
                        char idm[64];
                        snprintf(idm, sizeof idm, "_MACHINE_ID=%s", id);
                        r = sd_journal_add_disjunction(j);
                        if (r >= 0)
                                r = sd_journal_add_match(j, idm, 0);
                }
                if (r >= 0)
                        (void) collect(j, lines, m->since, mode, &e);
                sd_journal_close(j);
                j = NULL;
        }
        /* the guest's own persistent journal in its tree, unless linked (then it was read above) */
        if (!linked && root >= 0 && (dfd = open_in_root(root, "var/log/journal", O_RDONLY | O_DIRECTORY)) >= 0 &&
            sd_journal_open_directory_fd(&j, dfd, 0) >= 0) {
                any = true;
                (void) collect(j, lines, m->since, mode, &e);
                sd_journal_close(j);
        }

        printf("\n");
        if (!any)
                printf("No journal of machine '%s' to show: the host keeps none, and its tree has no "
                       "persistent one (see berth's --link-journal=).\n",
                       m->name);
        else if (e.n == 0)
                printf("-- No entries --\n");
        else {
                qsort(e.list, e.n, sizeof(Entry), entry_cmp);
                for (size_t i = e.n > lines ? e.n - lines : 0; i < e.n; i++)
                        fputs(e.list[i].text, stdout);
        }
        entries_done(&e);
}

/* The last message of priority err or worse that UNIT logged at or after SINCE (CLOCK_REALTIME
 * usec), e.g. berth's one-line reason for failing; journald may store it a moment after the unit
 * ended, so this waits up to WAIT usec for one. NULL if there is none. */
char *unit_last_error(const char *unit, uint64_t since, uint64_t wait) {
        _cleanup_free_ char *match = strjoin("_SYSTEMD_UNIT=", unit);
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + wait;
        sd_journal *j = NULL;
        char *found = NULL;

        if (!match || sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM) < 0)
                return NULL;
        for (;;) {
                sd_journal_flush_matches(j);
                if (sd_journal_add_match(j, match, 0) < 0 || sd_journal_seek_tail(j) < 0)
                        break;
                while (!found && sd_journal_previous(j) > 0) {
                        uint64_t t;
                        char prio[4], msg[512];

                        if (sd_journal_get_realtime_usec(j, &t) < 0 || t < since)
                                break;
                        if (!get_field(j, "PRIORITY", prio, sizeof prio) || prio[0] > '3' ||
                            !get_field(j, "MESSAGE", msg, sizeof msg))
                                continue;
                        sanitize(msg);
                        found = strdup(msg);
                }
                if (found)
                        break;
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                if (now >= deadline || sd_journal_wait(j, deadline - now) < 0)
                        break;
        }
        sd_journal_close(j);
        return found;
}
