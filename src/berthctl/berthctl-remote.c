/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * -H/--host=[USER@]HOST[:PORT]: run the command on another host over SSH.
 *
 * berthctl's verbs read berth's registry and enter the machines' namespaces, which no bus call can
 * do from afar; so the remote side is berthctl itself, started by ssh with the same verb, arguments
 * and options (without -H). Where the remote host has no berthctl, the verbs that machinectl has go
 * to machinectl -H, whose transport (ssh to systemd-stdio-bridge) reaches systemd-machined there:
 * the remote command exits with REMOTE_NO_BERTHCTL then, without a word, and we hand over.
 *
 * $BERTH_SSH names the ssh binary, for machinectl's transport too (as $SYSTEMD_SSH, and as the
 * "ssh" on its PATH, see ssh_shim_make()); ssh's own configuration (~/.ssh/config, keys, known
 * hosts) applies as it would to a plain ssh call.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "berthctl.h"
#include "log.h"
#include "util.h"

#define REMOTE_NO_BERTHCTL 254

/* The verbs machinectl has with the same meaning: these may fall back to machinectl -H. Not shell
 * and login: machinectl does them on local machines only. Not import-* and export-*: they hand a
 * file descriptor to machined, which a bus over ssh cannot carry ("Operation not supported"). */
static const char *const machinectl_verbs[] = {
        "list", "status", "show", "start", "poweroff", "stop", "reboot", "restart", "terminate",
        "kill", "enable", "disable", "copy-to", "copy-from", "bind", "list-images", "image-status",
        "show-image", "clone", "rename", "remove", "read-only", "clean", "pull-tar", "pull-raw", NULL,
};

static bool host_char_ok(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               strchr(".-_:%", c);
}

int remote_host_parse(const char *s, RemoteHost *ret) {
        _cleanup_free_ char *user = NULL, *host = NULL, *port = NULL;
        const char *at, *h, *p = NULL;
        unsigned u;

        if (isempty(s))
                return log_error_errno(-EINVAL, "Invalid --host= value: empty (expected [USER@]HOST[:PORT]).");
        if (strchr(s, '/'))
                return log_error_errno(-EINVAL, "Invalid --host= value '%s': a /MACHINE suffix is not supported, "
                                                "name the machine in the command.", s);
        at = strrchr(s, '@');
        h = at ? at + 1 : s;
        if (at) {
                if (at == s)
                        return log_error_errno(-EINVAL, "Invalid --host= value '%s': empty user name before '@'.", s);
                user = strndup(s, (size_t) (at - s));
                if (!user)
                        return log_oom();
                for (const char *c = user; *c; c++)
                        if (!host_char_ok(*c) || *c == ':')
                                return log_error_errno(-EINVAL, "Invalid --host= value '%s': bad user name.", s);
        }
        if (*h == '[') {
                /* [IPv6 address][:PORT] */
                const char *e = strchr(h, ']');
                if (!e || e == h + 1)
                        return log_error_errno(-EINVAL, "Invalid --host= value '%s': expected [ADDRESS] in brackets.", s);
                host = strndup(h + 1, (size_t) (e - h - 1));
                if (e[1] == ':')
                        p = e + 2;
                else if (e[1] != '\0')
                        return log_error_errno(-EINVAL, "Invalid --host= value '%s': junk after ']'.", s);
        } else {
                const char *c = strchr(h, ':');
                if (c && strchr(c + 1, ':'))
                        return log_error_errno(-EINVAL, "Invalid --host= value '%s': put an IPv6 address in brackets, "
                                                        "[ADDRESS]:PORT.", s);
                host = c ? strndup(h, (size_t) (c - h)) : strdup(h);
                p = c ? c + 1 : NULL;
        }
        if (!host)
                return log_oom();
        if (isempty(host) || host[0] == '-')
                return log_error_errno(-EINVAL, "Invalid --host= value '%s': expected [USER@]HOST[:PORT].", s);
        for (const char *c = host; *c; c++)
                if (!host_char_ok(*c))
                        return log_error_errno(-EINVAL, "Invalid --host= value '%s': bad character in the host name.", s);
        if (p) {
                if (safe_atou(p, &u) < 0 || u == 0 || u > 65535)
                        return log_error_errno(-EINVAL, "Invalid --host= value '%s': the port is not a number from 1 to 65535.", s);
                port = strdup(p);
                if (!port)
                        return log_oom();
        }
        ret->user = TAKE_PTR(user);
        ret->host = TAKE_PTR(host);
        ret->port = TAKE_PTR(port);
        return 0;
}

void remote_host_done(RemoteHost *h) {
        free(h->user);
        free(h->host);
        free(h->port);
        *h = (RemoteHost) {};
}

/* ARG in single quotes for the remote shell ssh hands the command line to. */
static char *shell_quote(const char *s) {
        size_t n = 3;
        char *q, *o;

        for (const char *c = s; *c; c++)
                n += *c == '\'' ? 4 : 1;
        q = o = malloc(n);
        if (!q)
                return NULL;
        *o++ = '\'';
        for (const char *c = s; *c; c++) {
                if (*c == '\'') {
                        memcpy(o, "'\\''", 4);
                        o += 4;
                } else
                        *o++ = *c;
        }
        *o++ = '\'';
        *o = '\0';
        return q;
}

static int run_wait(char **argv) {
        pid_t pid;
        int status;

        pid = fork();
        if (pid < 0)
                return log_error_errno(-errno, "Failed to fork: %m");
        if (pid == 0) {
                execvp(argv[0], argv);
                log_error_errno(-errno, "Failed to run %s: %m", argv[0]);
                _exit(127);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return log_error_errno(-errno, "Failed to wait for %s: %m", argv[0]);
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        return 128 + WTERMSIG(status);
}

/* machinectl -H's arguments: ours, with -P NAME, which machinectl 252 lacks, as what it means there
 * (--property=NAME --value). Only for show and show-image, whose arguments are all options and names
 * (elsewhere a "-P" may be a command's). */
static int machinectl_args(const char *spec, const char *verb, char **args, char ***ret) {
        _cleanup_strv_free_ char **m = NULL;
        bool show = streq(verb, "show") || streq(verb, "show-image"), options = true;

        if (strv_extend(&m, "machinectl") < 0 || strv_extend(&m, "-H") < 0 || strv_extend(&m, spec) < 0)
                return -ENOMEM;
        STRV_FOREACH(a, args) {
                const char *p = NULL;

                if (streq(*a, "--"))
                        options = false;
                if (show && options && streq(*a, "-P") && a[1])
                        p = *++a;
                else if (show && options && startswith(*a, "-P") && (*a)[2])
                        p = *a + 2;
                if (p) {
                        _cleanup_free_ char *o = strjoin("--property=", p);
                        if (!o || strv_extend(&m, o) < 0 || strv_extend(&m, "--value") < 0)
                                return -ENOMEM;
                } else if (strv_extend(&m, *a) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(m);
        return 0;
}

/* Runs CMD in the remote shell over ssh; returns its exit status (ssh's own failures: 255). TTY: a
 * terminal there. */
static int run_ssh(const RemoteHost *h, const char *cmd, bool tty) {
        _cleanup_strv_free_ char **ssh = NULL;

        if (strv_extend(&ssh, getenv("BERTH_SSH") ?: "ssh") < 0 || strv_extend(&ssh, "-x") < 0 ||
            strv_extend(&ssh, tty ? "-t" : "-T") < 0 ||
            (h->port && (strv_extend(&ssh, "-p") < 0 || strv_extend(&ssh, h->port) < 0)) ||
            (h->user && (strv_extend(&ssh, "-l") < 0 || strv_extend(&ssh, h->user) < 0)) ||
            strv_extend(&ssh, "--") < 0 || strv_extend(&ssh, h->host) < 0 || strv_extend(&ssh, cmd) < 0)
                return log_oom();
        log_debug("Running on %s: %s", h->host, cmd);
        return run_wait(ssh);
}

/* machinectl of systemd before 254 (Debian 12's) knows no $SYSTEMD_SSH: it runs "ssh" from $PATH.
 * So that $BERTH_SSH holds for it too, a directory of our own goes in front of PATH, with an "ssh"
 * there that runs $BERTH_SSH with the PATH we had (a $BERTH_SSH that wraps "ssh" must find the real
 * one, not this again). Returns the directory, for the caller to remove. */
static int ssh_shim_make(char **ret_dir) {
        _cleanup_free_ char *dir = strdup("/tmp/berthctl-ssh-XXXXXX"), *p = NULL, *q = NULL, *script = NULL,
                            *path = NULL;
        const char *old = getenv("PATH") ?: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        int r;

        if (!dir)
                return -ENOMEM;
        if (!mkdtemp(dir))
                return -errno;
        p = strjoin(dir, "/ssh");
        q = shell_quote(old);
        script = q ? strjoin("#!/bin/sh\nPATH=", q, "\nexec \"$BERTH_SSH\" \"$@\"\n") : NULL;
        path = strjoin(dir, ":", old);
        r = p && script && path ? write_string_file(p, script, O_CREAT | O_EXCL) : -ENOMEM;
        if (r >= 0 && chmod(p, 0755) < 0)
                r = -errno;
        if (r >= 0 && setenv("PATH", path, 1) < 0)
                r = -errno;
        if (r < 0) {
                (void) rm_rf(dir);
                return r;
        }
        *ret_dir = TAKE_PTR(dir);
        return 0;
}

#define HAS_BERTHCTL "command -v berthctl >/dev/null 2>&1"

int remote_run(const RemoteHost *h, const char *spec, const char *verb, char **args, bool tty) {
        _cleanup_strv_free_ char **mctl = NULL;
        _cleanup_free_ char *cmd = NULL, *shim = NULL;
        bool fallback = false;
        int r;

        for (const char *const *v = machinectl_verbs; *v; v++)
                if (streq(*v, verb))
                        fallback = true;

        /* The remote shell's command: berthctl with our arguments, each quoted. Without berthctl
         * there, a verb that machinectl has ends it with REMOTE_NO_BERTHCTL (254), silently:
         * machinectl takes over. Any other verb fails there, with our message, as a failure of
         * berthctl would: its status may be a command's (exec, shell), so no status of its own
         * could tell us that berthctl is missing. */
        if (fallback)
                cmd = strdup(HAS_BERTHCTL " || exit 254; exec berthctl");
        else {
                _cleanup_free_ char *msg = NULL, *q = NULL;

                msg = strjoin("berthctl: berthctl is not installed on ", h->host, ", and machinectl -H cannot do '", verb,
                              "' instead: install berth there.");
                q = msg ? shell_quote(msg) : NULL;
                if (q)
                        cmd = strjoin(HAS_BERTHCTL " || { printf '%s\\n' ", q, " >&2; exit 1; }; exec berthctl");
        }
        if (!cmd)
                return log_oom();
        STRV_FOREACH(a, args) {
                _cleanup_free_ char *q = shell_quote(*a);
                char *n;
                if (!q)
                        return log_oom();
                n = strjoin(cmd, " ", q);
                if (!n)
                        return log_oom();
                free(cmd);
                cmd = n;
        }

        r = run_ssh(h, cmd, tty);
        if (r < 0)
                return r;
        if (r != REMOTE_NO_BERTHCTL || !fallback)
                return VERB_EXIT_STATUS(r);

        /* no berthctl there: machinectl's transport, to systemd-machined on that host */
        if (access("/usr/bin/machinectl", X_OK) < 0 && access("/bin/machinectl", X_OK) < 0)
                return log_error_errno(-ENOENT, "berthctl is not installed on %s, and machinectl (to reach systemd-machined "
                                                "there) is not installed here: install berth there, or systemd-container here.",
                                       h->host);
        log_debug("No berthctl on %s: handing over to machinectl -H.", h->host);
        if (machinectl_args(spec, verb, args, &mctl) < 0)
                return log_oom();
        if (getenv("BERTH_SSH") && !streq(getenv("BERTH_SSH"), "ssh")) {
                if (setenv("SYSTEMD_SSH", getenv("BERTH_SSH"), 1) < 0)
                        return log_oom();
                r = ssh_shim_make(&shim);
                if (r < 0)
                        return log_error_errno(r, "Failed to make $BERTH_SSH the ssh of machinectl: %m");
        }
        r = run_wait(mctl);
        if (shim)
                (void) rm_rf(shim);
        return r < 0 ? r : VERB_EXIT_STATUS(r);
}
