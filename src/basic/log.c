/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "systemd-proto.h"
#include "util.h"

static int max_level = LOG_INFO;
static const char *prefix = NULL;
static const char *machine = NULL;
static bool use_journal = false;
static int sink_level = -1;
static LogSink sink = NULL;
static void *sink_userdata = NULL;
static uint64_t timing_start = 0, timing_last = 0;

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

void log_set_prefix(const char *p) {
        prefix = p;
}

void log_set_machine(const char *m) {
        machine = m;
}

void log_set_sink(int level, LogSink s, void *userdata) {
        sink_level = s ? level : -1;
        sink = s;
        sink_userdata = userdata;
}

/* Is our stderr the journal stream that systemd gave us? $JOURNAL_STREAM names that stream's
 * device and inode; a child of a unit inherits the variable with its stderr sent elsewhere (a
 * script's 2>file, a pipe), and then the messages must go where stderr goes. */
static bool stderr_is_journal(void) {
        unsigned long long dev, ino;
        const char *e = getenv("JOURNAL_STREAM");
        struct stat st;
        int n = 0;

        if (isempty(e) || sscanf(e, "%llu:%llu%n", &dev, &ino, &n) != 2 || e[n] != '\0')
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

void log_open(void) {
        const char *e;

        use_journal = stderr_is_journal();

        e = getenv("BERTH_LOG_LEVEL");
        if (e) {
                if (streq(e, "debug"))
                        max_level = LOG_DEBUG;
                else if (streq(e, "info"))
                        max_level = LOG_INFO;
                else if (streq(e, "notice"))
                        max_level = LOG_NOTICE;
                else if (streq(e, "warning"))
                        max_level = LOG_WARNING;
                else if (streq(e, "err"))
                        max_level = LOG_ERR;
        }
        timing_start = timing_last = now_usec(CLOCK_MONOTONIC);
}

void log_timing(const char *side, const char *what) {
        uint64_t t;

        if (max_level < LOG_DEBUG)
                return;
        t = now_usec(CLOCK_MONOTONIC);
        log_debug("Timing: %s %s: %.3f ms (at %.3f ms)", side, what, (double) (t - timing_last) / 1000,
                  (double) (t - timing_start) / 1000);
        /* after the line: what printing it cost counts for no mark */
        timing_last = now_usec(CLOCK_MONOTONIC);
}

/* With structured fields, so that `journalctl MACHINE=NAME` finds a machine's messages. A message
 * that can't go there (journald is restarting) goes to stderr, the unit's journal stream. */
static int log_to_journal(int level, int error, const char *file, int line, const char *func, const char *message) {
        char pb[16], lb[16], eb[16];
        const JournalField fields[] = {
                { "MESSAGE", message },
                { "PRIORITY", pb },
                { "CODE_FILE", file },
                { "CODE_LINE", lb },
                { "CODE_FUNC", func },
                { "MACHINE", machine ?: "" },
                { "SYSLOG_IDENTIFIER", prefix ?: "berth" },
                { "ERRNO", error > 0 ? eb : NULL },
        };

        (void) snprintf(pb, sizeof pb, "%i", level);
        (void) snprintf(lb, sizeof lb, "%i", line);
        (void) snprintf(eb, sizeof eb, "%i", error);
        return journal_send_to(JOURNAL_SOCKET, fields, ELEMENTSOF(fields));
}

int log_internal(int level, int error, const char *file, int line, const char *func, const char *format, ...) {
        char buf[2048];
        va_list ap;
        int saved = errno;

        if (error < 0)
                error = -error;
        if (error > 0)
                errno = error;

        va_start(ap, format);
        (void) vsnprintf(buf, sizeof buf, format, ap);
        va_end(ap);

        if (sink && level <= sink_level)
                sink(level, error, buf, sink_userdata);
        else if (!use_journal || log_to_journal(level, error, file, line, func, buf) < 0) {
                if (prefix)
                        fprintf(stderr, "%s: %s\n", prefix, buf);
                else
                        fprintf(stderr, "%s\n", buf);
        }

        errno = saved;
        return -error;
}
