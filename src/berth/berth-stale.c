/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "berth-cgroup.h"
#include "berth-network.h"
#include "berth-stale.h"
#include "log.h"
#include "loop.h"
#include "registry.h"
#include "util.h"

/* What a dead instance can leave behind, and who cleans it:
 *  - processes and cgroups: here. A berth killed with SIGKILL normally takes
 *    its container with it (the container's PID 1 dies with it and the kernel
 *    kills the rest of the PID namespace), but a container that outlived its
 *    berth (a PID 1 that ignored its parent's death, a stuck exit) is killed
 *    through its cgroup, which is the only reliable handle: PIDs in the
 *    record may have been reused, so we never kill by PID.
 *  - the record, the scratch dir and what SCRATCH= lists (overlay work dirs,
 *    ephemeral copies): here.
 *  - mounts: nothing to do. All of the container's mounts were made in its
 *    own mount namespace and vanished with its last process; berth makes no
 *    mounts in the host's namespace (an image's are detached, fsmount()).
 *  - loop devices of an image (LOOP=): they have autoclear and go with the
 *    last mount and fd, so normally they are gone already; any still bound to
 *    the record's image (not a reused number) is detached here.
 *  - network links: the container's side goes with its network namespace, but the host side of
 *    a veth may outlive it for a moment (the kernel cleans namespaces asynchronously) and a
 *    zone's bridge stays: the record's NETWORK_LINK= (name and index, so that a link of the same
 *    name made since is left alone) and NETWORK_ZONE= lines, removed here (berth-network.c).
 *  - the lock file: it is ours now (the caller holds it). */

static bool scratch_path_ok(const char *p) {
        /* The record is written by root into root's /run, but a bad line must
         * not turn into rm -rf of something important. */
        static const char *const never[] = { "/", "/usr", "/etc", "/var", "/home", "/root", "/run", "/tmp",
                                             "/var/lib", "/var/lib/machines", "/var/tmp", "/sys", "/proc", "/dev" };

        if (!path_is_safe(p))
                return false;
        for (size_t i = 0; i < ELEMENTSOF(never); i++)
                if (streq(p, never[i]))
                        return false;
        return true;
}

static int kill_cgroup(CGroup *cg, unsigned *killed) {
        int r = cgroup_destroy(cg);
        if (r > 0)
                *killed += (unsigned) r;
        return r;
}

int stale_cleanup(const char *name, int level) {
        _cleanup_(machine_record_freep) MachineRecord *rec = NULL;
        _cleanup_free_ char *scratch = NULL;
        unsigned killed = 0, removed_dirs = 0, detached = 0, removed_links = 0;
        struct stat st;
        bool cleaned = false, cgroups = false;
        int r;

        r = registry_read(name, &rec);
        if (r < 0 && r != -ENOENT)
                log_warning_errno(r, "Failed to read the record of machine '%s', ignoring: %m", name);

        /* The cgroups the record names (the dead instance may have run in
         * another cgroup than ours)... */
        if (rec && rec->cgroup_paths) {
                _cleanup_(cgroup_freep) CGroup *cg = NULL;

                if (cgroup_from_paths(rec->cgroup_paths, &cg) >= 0) {
                        (void) kill_cgroup(cg, &killed);
                        cgroups = true;
                }
        }
        /* ...and the ones at the place we would use (a record that was never
         * written, or one from before the cgroup existed). */
        {
                _cleanup_(cgroup_freep) CGroup *cg = NULL;

                if (cgroup_find(name, &cg) >= 0) {
                        (void) kill_cgroup(cg, &killed);
                        cgroups = true;
                }
        }

        if (rec) {
                r = network_stale_cleanup(rec->network_links, rec->network_zone);
                if (r > 0)
                        removed_links = (unsigned) r;
        }

        if (rec)
                STRV_FOREACH(p, rec->scratch) {
                        if (!scratch_path_ok(*p)) {
                                log_warning("Not removing '%s' listed by the record of machine '%s': unsafe path.",
                                            *p, name);
                                continue;
                        }
                        r = rm_rf(*p);
                        if (r < 0)
                                log_warning_errno(r, "Failed to remove '%s', ignoring: %m", *p);
                        else
                                removed_dirs++;
                }
        if (registry_scratch_dir(name, &scratch) >= 0 && access(scratch, F_OK) >= 0) {
                r = rm_rf(scratch);
                if (r < 0)
                        log_warning_errno(r, "Failed to remove '%s', ignoring: %m", scratch);
                else
                        removed_dirs++;
        }

        if (rec && !strv_isempty(rec->loop_devices) && rec->root && stat(rec->root, &st) >= 0)
                STRV_FOREACH(p, rec->loop_devices) {
                        r = loop_detach_if_backed_by(*p, (uint64_t) st.st_dev, (uint64_t) st.st_ino);
                        if (r < 0)
                                log_warning_errno(r, "Failed to detach loop device '%s', ignoring: %m", *p);
                        else if (r > 0)
                                detached++;
                }

        cleaned = rec || cgroups || removed_dirs > 0 || detached > 0 || removed_links > 0;
        if (rec) {
                _cleanup_free_ char *dir = NULL;

                /* The record only: the lock file is the caller's now. */
                dir = strjoin(registry_run_dir(), "/machines/", name);
                if (dir && unlink(dir) < 0 && errno != ENOENT)
                        log_warning_errno(negative_errno(), "Failed to remove '%s', ignoring: %m", dir);
        }
        if (!cleaned)
                return 0;

        log_full(level, "Cleaned up after a dead instance of machine '%s': killed %u process%s%s%s%s%s%s.", name,
                 killed,
                 killed == 1 ? "" : "es", cgroups ? ", removed cgroups" : "",
                 removed_dirs > 0 ? ", removed scratch directories" : "", detached > 0 ? ", detached loop devices" : "",
                 removed_links > 0 ? ", removed network interfaces" : "", rec ? ", removed its record" : "");
        return 1;
}

/* Names that have a lock file: an instance killed between taking its lock and
 * writing its record leaves only that. */
static int locked_names(char ***names) {
        _cleanup_free_ char *dir = strjoin(registry_run_dir(), "/locks");
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;

        if (!dir)
                return -ENOMEM;
        d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : negative_errno();
        while ((de = readdir(d))) {
                if (!endswith(de->d_name, ".lock"))
                        continue;
                _cleanup_free_ char *name = strndup(de->d_name, strlen(de->d_name) - strlen(".lock"));
                if (!name)
                        return -ENOMEM;
                if (!isempty(name) && !strv_contains(*names, name) && strv_extend(names, name) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int stale_cleanup_all(const char *self) {
        _cleanup_strv_free_ char **names = NULL;
        int n = 0;

        if (registry_list(&names) < 0 || locked_names(&names) < 0)
                return 0;
        STRV_FOREACH(name, names) {
                _cleanup_close_ int lock = -EBADF;

                /* A live instance holds its lock: a quick probe tells, where
                 * registry_lock_machine() would wait a while for probers to go away. */
                if ((self && streq(*name, self)) || registry_is_live(*name) != 0)
                        continue;
                if (registry_lock_machine(*name, &lock) < 0)
                        continue;
                /* not this start's business: said at debug level only, so that a start of one
                 * machine does not report on others (a user's, another test's) */
                if (stale_cleanup(*name, LOG_DEBUG) > 0)
                        n++;
                (void) registry_remove(*name);
        }
        return n;
}
