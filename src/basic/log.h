/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <syslog.h>

#include "cleanup.h"

/* Logging. Helpers in src/basic and src/shared never log above debug; each
 * step of src/berth logs once where it fails. log_*_errno() return the
 * (negative) error they were given so that "return log_error_errno(r, ...)"
 * reads naturally, and set errno so that %m prints it. */

void log_set_max_level(int level);
int log_get_max_level(void);
void log_set_prefix(const char *prefix);
/* Machine name added as MACHINE= field when logging to the journal. */
void log_set_machine(const char *machine);
void log_open(void);

/* The start-up's timing, at debug level: one line "Timing: SIDE WHAT: X ms (at Y ms)" per mark,
 * X the time since the previous mark of this process (a child's first mark counts from its
 * parent's last one before the fork: the memory is copied), Y since log_open(). A mark goes at the
 * end of the work it names; "waited for" marks the wait for the other side. Costs nothing
 * (not even a clock read) below debug. */
void log_timing(const char *side, const char *what);

/* A process that cannot reach the user itself (the container's child, whose
 * stdio may be the container's console and whose journal socket is gone after
 * pivot_root) hands its messages at LEVEL or more severe to SINK instead of
 * printing them; the rest is printed as usual. MESSAGE has %m expanded; ERROR
 * is positive (0: none). NULL: back to printing everything. */
typedef void (*LogSink)(int level, int error, const char *message, void *userdata);
void log_set_sink(int level, LogSink sink, void *userdata);

int log_internal(int level, int error, const char *file, int line, const char *func, const char *format, ...)
        _printf_(6, 7);

#define log_full_errno(level, error, ...)                                                           \
        ({                                                                                          \
                int _l_ = (level), _e_ = (error);                                                   \
                (_l_ <= log_get_max_level()) ? log_internal(_l_, _e_, __FILE__, __LINE__, __func__, \
                                                            __VA_ARGS__)                            \
                                             : -((_e_) < 0 ? -(_e_) : (_e_));                       \
        })

#define log_full(level, ...) (void) log_full_errno(level, 0, __VA_ARGS__)

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, e, __VA_ARGS__)
#define log_notice_errno(e, ...) log_full_errno(LOG_NOTICE, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)

#define log_oom() log_error_errno(-ENOMEM, "Out of memory.")
