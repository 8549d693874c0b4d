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
 * $BERTH_SSH names the ssh binary (as $SYSTEMD_SSH does for machinectl); ssh's own configuration
 * (~/.ssh/config, keys, known hosts) applies as it would to a plain ssh call.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "berthctl.h"
#include "log.h"
#include "util.h"

#define REMOTE_NO_BERTHCTL 254

/* The verbs machinectl has with the same meaning: these may fall back to machinectl -H. */
static const char *const machinectl_verbs[] = {
        "list", "status", "show", "start", "login", "shell", "poweroff", "stop", "reboot", "restart",
        "terminate", "kill", "enable", "disable", "copy-to", "copy-from", "bind", "list-images",
        "image-status", "show-image", "clone", "rename", "remove", "read-only", "clean", "import-tar",
        "import-raw", "export-tar", "export-raw", "import-fs", "pull-tar", "pull-raw", NULL,
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

int remote_run(const RemoteHost *h, const char *spec, char **args, bool tty) {
        _cleanup_strv_free_ char **ssh = NULL, **mctl = NULL;
        _cleanup_free_ char *cmd = NULL;
        const char *verb = args && args[0] ? args[0] : "list";
        bool fallback = false;
        int r;

        for (const char *const *v = machinectl_verbs; *v; v++)
                if (streq(*v, verb))
                        fallback = true;

        /* the remote shell's command: berthctl with our arguments, each quoted */
        cmd = strdup(fallback ? "command -v berthctl >/dev/null 2>&1 || exit 254; exec berthctl"
                              : "command -v berthctl >/dev/null 2>&1 || { echo \"berthctl: no berthctl on $(hostname); "
                                "'exec' has no machinectl equivalent.\" >&2; exit 254; }; exec berthctl");
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

        if (strv_extend(&ssh, getenv("BERTH_SSH") ?: "ssh") < 0 || strv_extend(&ssh, "-x") < 0 ||
            strv_extend(&ssh, tty ? "-t" : "-T") < 0 ||
            (h->port && (strv_extend(&ssh, "-p") < 0 || strv_extend(&ssh, h->port) < 0)) ||
            (h->user && (strv_extend(&ssh, "-l") < 0 || strv_extend(&ssh, h->user) < 0)) ||
            strv_extend(&ssh, "--") < 0 || strv_extend(&ssh, h->host) < 0 || strv_extend(&ssh, cmd) < 0)
                return log_oom();

        log_debug("Running on %s: %s", h->host, cmd);
        r = run_wait(ssh);
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
        if (strv_extend(&mctl, "machinectl") < 0 || strv_extend(&mctl, "-H") < 0 || strv_extend(&mctl, spec) < 0)
                return log_oom();
        STRV_FOREACH(a, args)
                if (strv_extend(&mctl, *a) < 0)
                        return log_oom();
        if (getenv("BERTH_SSH") && setenv("SYSTEMD_SSH", getenv("BERTH_SSH"), 1) < 0)
                return log_oom();
        r = run_wait(mctl);
        return r < 0 ? r : VERB_EXIT_STATUS(r);
}
