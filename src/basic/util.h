/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Small libc-only helpers: strings, string vectors, parsing, files. None of
 * these log; all return negative errno on failure. */

#include <stdbool.h>
#include <stddef.h>
#include <sched.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "cleanup.h"

/* string vectors (NULL-terminated char**) */
void strv_free(char **l);
static inline void strv_freep(char ***l) {
        strv_free(*l);
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)
size_t strv_length(char * const *l);
static inline bool strv_isempty(char * const *l) {
        return !l || !*l;
}
int strv_extend(char ***l, const char *value);      /* copies value */
int strv_consume(char ***l, char *value);           /* takes value, frees it on failure */
char **strv_copy(char * const *l);
bool strv_contains(char * const *l, const char *s);
/* Splits at any of the characters in sep; empty fields are kept. */
int strv_split(const char *s, const char *sep, char ***ret);
#define STRV_FOREACH(s, l) for (char * const *s = (l); s && *s; s++)

char *strjoin_internal(const char *first, ...);
#define strjoin(a, ...) strjoin_internal(a, __VA_ARGS__, (const char *) -1)
bool startswith(const char *s, const char *prefix);
const char *startswith_ptr(const char *s, const char *prefix);
bool endswith(const char *s, const char *suffix);
char *strdup_or_null(const char *s);
/* Replaces *p by a copy of s (NULL allowed). */
int free_and_strdup(char **p, const char *s);

/* parsing */
int parse_boolean(const char *s);   /* 1, 0 or -EINVAL */
int safe_atoi(const char *s, int *ret);
int safe_atou(const char *s, unsigned *ret);
int safe_atou64(const char *s, uint64_t *ret);
int safe_atollu(const char *s, unsigned long long *ret);
int parse_pid(const char *s, pid_t *ret);
int parse_sec(const char *s, uint64_t *ret_usec);
int signal_from_string(const char *s);  /* "SIGTERM", "TERM", "RTMIN+4", "15" */
const char *signal_to_string(int sig, char buf[static 16]);

/* paths */
bool path_is_absolute(const char *p);
bool path_is_normalized(const char *p);   /* no "..", "." or "//" components */
bool path_is_safe(const char *p);          /* absolute and normalized */
char *path_join(const char *a, const char *b);
int path_make_absolute_cwd(const char *p, char **ret);
const char *path_basename(const char *p);

/* files */
int read_full_file(const char *path, char **ret, size_t *ret_size);
int read_one_line_file(const char *path, char **ret);
int write_string_file(const char *path, const char *s, int flags);  /* flags: O_CREAT etc. in addition to O_WRONLY */
int write_string_fd(int fd, const char *s);
int loop_write(int fd, const void *buf, size_t n);
int mkdir_p(const char *path, mode_t mode);
int mkdir_parents(const char *path, mode_t mode);
int touch(const char *path, mode_t mode);
int copy_file(const char *from, const char *to, mode_t mode);
int rm_rf(const char *path);
/* NAME in DIR_FD, recursively, through fds only: never follows a symlink, never enters a mount point. */
int rm_rf_at_name(int dir_fd, const char *name);
/* A path as one layer in overlayfs' lowerdir=/upperdir= options: ':', ',' and backslash escaped. */
char *overlay_option_escape(const char *p);
/* Opens PATH inside the tree at ROOT_FD as if ROOT_FD were "/": absolute symlinks and ".."
 * stop at the tree's root, /proc magic links are refused (openat2 RESOLVE_IN_ROOT). */
int open_in_root(int root_fd, const char *path, int flags);
/* PATH inside the tree at ROOT_FD (as open_in_root()) opened for reading, if it is a regular file:
 * looked at through O_PATH first, so that a FIFO (an open that waits for a writer) or a device
 * node (an open acts on the device: a watchdog starts, a tape rewinds) that a hostile tree put
 * there is never opened, by host root outside the container's device policy. -EBADFD: not a
 * regular file. *RET_ST (if given): its stat. */
int open_regular_in_root(int root_fd, const char *path, struct stat *ret_st);
/* NAME directly below DIR_FD: never through a symlink, never across a mount (-EXDEV), O_NOFOLLOW
 * (with O_PATH a symlink itself is opened) */
int openat_beneath(int dir_fd, const char *name, int flags);   /* stays on one file system, never follows symlinks */
/* Writes DATA as the file NAME in the directory DIR_FD (which may be in a hostile tree): a new inode
 * made under a temporary name with O_EXCL, then renamed over NAME. Whatever NAME was (a symlink, a hard
 * link to a file elsewhere) is replaced, never written through; a directory there is an error. On
 * failure nothing is left behind. ret_fd (NULL: not wanted): the new file, open read-write. */
int write_file_atomic_at(int dir_fd, const char *name, const void *data, size_t size, mode_t mode, int *ret_fd);
/* The same for a symlink NAME -> TARGET. */
int symlink_atomic_at(const char *target, int dir_fd, const char *name);
int fd_set_cloexec(int fd, bool b);
int fd_set_nonblock(int fd, bool b);
/* One fixed-size message over a SOCK_SEQPACKET/DGRAM socket, with an fd (SCM_RIGHTS, -EBADF: none).
 * recv: 1 with a message (*ret_fd -EBADF if none came), 0 on EOF, -EBADMSG on a wrong size. */
int send_message_fd(int sock, const void *data, size_t size, int fd);
int recv_message_fd(int sock, void *data, size_t size, int *ret_fd);
/* Closes every fd >= 3 except those listed. */
int close_all_fds(const int except[], size_t n_except);

/* misc */
/* The message of a failure for a caller that words its own error (*RET_DETAIL replaced, freed
 * first; NULL when out of memory); nothing when RET_DETAIL is NULL. Returns 0. */
int set_detail(char **ret_detail, const char *fmt, ...) _printf_(2, 3);
/* Enum names: the index of S in TABLE of N names (NULL entries match nothing), or -EINVAL for
 * anything else, NULL too. */
int string_table_lookup(const char *const *table, size_t n, const char *s);
/* "512B", "1.5G" (binary units); "-" for UINT64_MAX (unknown). */
char *format_bytes(uint64_t bytes, char *buf, size_t n);
/* CLOCK's time now, and a timespec (a file's mtime...), in µs */
uint64_t now_usec(int clock);
uint64_t timespec_to_usec(const struct timespec *ts);
int id128_randomize(uint8_t ret[16]);
int id128_from_string(const char *s, uint8_t ret[16]);
char *id128_to_string(const uint8_t id[16], char buf[static 33]);
/* One hex digit, either case: its value, or -EINVAL. */
int unhex(char c);
/* Hex (an even number of digits, either case) and base64 (standard alphabet, padded, blanks
 * ignored) into a malloc'd buffer; -EINVAL for anything else, or nothing. */
int unhexmem(const char *s, uint8_t **ret, size_t *ret_size);
int unbase64mem(const char *s, uint8_t **ret, size_t *ret_size);
char *id128_to_uuid_string(const uint8_t id[16], char buf[static 37]);

#define USEC_PER_SEC ((uint64_t) 1000000ULL)
#define USEC_PER_MSEC ((uint64_t) 1000ULL)
#define NSEC_PER_USEC ((uint64_t) 1000ULL)
