/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cat and edit: a machine's settings file (NAME.berth or NAME.nspawn), as machinectl has them.
 *
 * Which file a machine reads is berth's own rule (settings_file_find(): the trusted places
 * /etc/berth, /run/berth, /etc/systemd/nspawn, /run/systemd/nspawn first, then next to the
 * image), so both verbs ask berth's code rather than guess. 'edit' never writes next to the
 * image: a file there is untrusted (privileged keys are ignored), and a trusted copy in
 * /etc/berth is what an administrator means by editing. The new text is checked with berth's
 * own parser before it replaces anything; a broken edit is kept aside, named, and changes
 * nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "berth-settings-file.h"
#include "berthctl.h"
#include "berthctl-images.h"
#include "log.h"
#include "util.h"

/* The settings file of image NAME: *ret_path NULL when it has none. Logs. */
static int find_settings(const char *name, char **ret_path, bool *ret_trusted) {
        _cleanup_(image_freep) Image *img = NULL;
        int r;

        r = image_get(name, &img);
        if (r < 0)
                return r;
        *ret_path = NULL;
        *ret_trusted = false;
        r = settings_file_find(img->name, img->path, ret_path, ret_trusted);
        if (r < 0)
                return log_error_errno(r, "Failed to look for the settings file of '%s': %m", name);
        return 0;
}

int verb_cat(int argc, char *argv[]) {
        int r, ret = 0;

        for (int i = 1; i < argc; i++) {
                _cleanup_free_ char *path = NULL, *data = NULL;
                bool trusted;

                r = find_settings(argv[i], &path, &trusted);
                if (r >= 0 && !path)
                        r = log_error_errno(-ENOENT, "Image '%s' has no settings file (NAME.berth or NAME.nspawn); "
                                                     "'berthctl edit %s' makes one.", argv[i], argv[i]);
                if (r >= 0) {
                        r = read_full_file(path, &data, NULL);
                        if (r < 0)
                                log_error_errno(r, "Failed to read '%s': %m", path);
                }
                if (r < 0) {
                        if (ret == 0)
                                ret = r;
                        continue;
                }
                printf("%s# %s%s\n%s", i > 1 ? "\n" : "", path, trusted ? "" : " (untrusted: privileged keys are ignored)",
                       data);
                if (!endswith(data, "\n") && data[0])
                        putchar('\n');
        }
        return ret;
}

/* Runs $VISUAL, $EDITOR or the first of editor, nano, vi on PATH; waits for it. Logs. */
static int run_editor(const char *path) {
        const char *e = getenv("VISUAL");
        int status;
        pid_t pid;

        if (isempty(e))
                e = getenv("EDITOR");
        pid = fork();
        if (pid < 0)
                return log_error_errno(negative_errno(), "Failed to fork: %m");
        if (pid == 0) {
                if (!isempty(e))
                        /* $EDITOR may carry arguments ("code --wait"), as for git and systemctl */
                        execl("/bin/sh", "sh", "-c", "exec $0 \"$1\"", e, path, (char *) NULL);
                else {
                        execlp("editor", "editor", path, (char *) NULL);
                        execlp("nano", "nano", path, (char *) NULL);
                        execlp("vi", "vi", path, (char *) NULL);
                }
                _exit(127);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return log_error_errno(negative_errno(), "Failed to wait for the editor: %m");
        if (!WIFEXITED(status) || WEXITSTATUS(status) == 127)
                return log_error_errno(-ENOENT, "Failed to run an editor: set $EDITOR.");
        if (WEXITSTATUS(status) != 0)
                return log_error_errno(-ECANCELED, "The editor exited with status %d: nothing changed.",
                                       WEXITSTATUS(status));
        return 0;
}

/* Whether the text in PATH parses as a settings file. Logs its error. */
static int check_settings(const char *path) {
        _cleanup_(settings_file_done) SettingsFile file = {};
        _cleanup_fclose_ FILE *f = fopen(path, "re");

        if (!f)
                return log_error_errno(negative_errno(), "Failed to read '%s': %m", path);
        return settings_file_parse(f, path, true, &file);
}

int verb_edit(int argc, char *argv[]) {
        _cleanup_free_ char *path = NULL, *target = NULL, *tmp = NULL, *data = NULL;
        const char *dir = getenv("BERTH_SETTINGS_PATH");
        bool trusted;
        int r, fd;

        r = find_settings(argv[1], &path, &trusted);
        if (r < 0)
                return r;
        /* a trusted file is edited where it is; else a trusted copy goes to the first trusted place */
        if (path && trusted)
                target = strdup(path);
        else {
                _cleanup_free_ char *first = strndup(dir ?: "/etc/berth", dir ? strcspn(dir, ":") : SIZE_MAX);
                if (!first)
                        return log_oom();
                if (isempty(first))
                        return log_error_errno(-EINVAL, "No trusted place for settings files ($BERTH_SETTINGS_PATH is empty).");
                target = strjoin(first, "/", argv[1], path && endswith(path, ".nspawn") ? ".nspawn" : ".berth");
                r = mkdir_p(first, 0755);
                if (r < 0)
                        return log_error_errno(r, "Failed to create '%s': %m", first);
        }
        if (!target)
                return log_oom();

        tmp = strjoin(target, ".edit-XXXXXX");
        if (!tmp)
                return log_oom();
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(negative_errno(), "Failed to create a file next to '%s': %m", target);
        if (path)
                r = read_full_file(path, &data, NULL);
        else
                r = (data = strjoin("# Settings of machine ", argv[1], ", see berth(1) SETTINGS FILES.\n[Exec]\n")) ? 0 : -ENOMEM;
        if (r >= 0)
                r = loop_write(fd, data, strlen(data));
        if (r >= 0 && fchmod(fd, 0644) < 0)
                r = negative_errno();
        safe_close(fd);
        if (r < 0) {
                (void) unlink(tmp);
                return log_error_errno(r, "Failed to write '%s': %m", tmp);
        }

        r = run_editor(tmp);
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }
        r = check_settings(tmp);
        if (r < 0) {
                /* the parser named the line; what happened to the edit, on a line of its own */
                log_info("Nothing changed; the edit is kept in '%s'.", tmp);
                return r;
        }
        if (rename(tmp, target) < 0) {
                r = log_error_errno(negative_errno(), "Failed to install '%s': %m", target);
                (void) unlink(tmp);
                return r;
        }
        if (!arg.quiet)
                log_info("Saved the settings of machine '%s' in %s%s.", argv[1], target,
                         path && !trusted ? " (a trusted copy of the file next to the image)" : "");
        return 0;
}
