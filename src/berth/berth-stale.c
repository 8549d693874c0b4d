/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "berth-cgroup.h"
#include "berth-network.h"
#include "berth-port.h"
#include "berth-stale.h"
#include "log.h"
#include "loop.h"
#include "registry.h"
#include "util.h"

/* What a dead instance can leave behind, and who cleans it (the rows of
 * stale_resource_types[] below):
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
 *  - nftables: the table of its port forwards, the record's NFT_TABLE= (berth-port.c).
 *  - links and tables live in a network namespace: the record's NETNS= says which, and a berth
 *    in another one leaves them alone (stale_cleanup_all() leaves that record whole).
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

/* ---- the resources a dead instance can leave, one cleaner per type ---- */

typedef struct StaleContext {
        const char *name;           /* the machine's */
        const MachineRecord *rec;   /* its record, NULL if there was none (or it was unreadable) */
        unsigned killed;            /* processes killed */
} StaleContext;

/* The cgroups the record names, in mounted hierarchies and in those mounted nowhere (the dead
 * instance may have run in another cgroup than ours), and the ones at the place we would use (a
 * record that was never written, or one from before the cgroup existed). Killing goes through the
 * cgroup: the PIDs in the record may have been reused. */
static int clean_cgroups(StaleContext *c) {
        int n = 0;

        if (c->rec && (c->rec->cgroup_paths || c->rec->cgroup_detached)) {
                _cleanup_(cgroup_freep) CGroup *cg = NULL;

                if (cgroup_from_paths(c->rec->cgroup_paths, c->rec->cgroup_detached, &cg) >= 0) {
                        int r = cgroup_destroy(cg);
                        if (r > 0)
                                c->killed += (unsigned) r;
                        n++;
                }
        }
        {
                _cleanup_(cgroup_freep) CGroup *cg = NULL;

                if (cgroup_find(c->name, &cg) >= 0) {
                        int r = cgroup_destroy(cg);
                        if (r > 0)
                                c->killed += (unsigned) r;
                        n++;
                }
        }
        return n;
}

/* Links and nftables tables belong to the network namespace the dead instance ran in: a berth in
 * another one would look for them in the wrong place (and an ifindex there names another link). */
static bool same_netns(const StaleContext *c) {
        unsigned long long ours = netns_self();

        if (c->rec->netns == 0 || ours == 0 || c->rec->netns == ours)
                return true;
        log_debug("Machine '%s' ran in another network namespace: its links and tables are left to it.", c->name);
        return false;
}

/* NETWORK_LINK=, NETWORK_ZONE=: host-side network interfaces (berth-network.c). */
static int clean_network(StaleContext *c) {
        int r;

        if (!c->rec || !same_netns(c))
                return 0;
        r = network_stale_cleanup(c->rec->network_links, c->rec->network_zone);
        return r > 0 ? r : 0;
}

/* NFT_TABLE=: the table of its port forwards (berth-port.c). */
static int clean_nft_table(StaleContext *c) {
        if (!c->rec || !c->rec->nft_table || !same_netns(c))
                return 0;
        return ports_stale_cleanup(c->rec->nft_table) > 0 ? 1 : 0;
}

/* SCRATCH= (overlay work dirs, temporary bind sources) and RUN/scratch/NAME. */
static int clean_scratch(StaleContext *c) {
        _cleanup_free_ char *scratch = NULL;
        int n = 0, r;

        if (c->rec)
                STRV_FOREACH(p, c->rec->scratch) {
                        if (!scratch_path_ok(*p)) {
                                log_warning("Not removing '%s' listed by the record of machine '%s': unsafe path.",
                                            *p, c->name);
                                continue;
                        }
                        r = rm_rf(*p);
                        if (r < 0)
                                log_warning_errno(r, "Failed to remove '%s', ignoring: %m", *p);
                        else
                                n++;
                }
        if (registry_scratch_dir(c->name, &scratch) >= 0 && access(scratch, F_OK) >= 0) {
                r = rm_rf(scratch);
                if (r < 0)
                        log_warning_errno(r, "Failed to remove '%s', ignoring: %m", scratch);
                else
                        n++;
        }
        return n;
}

/* LOOP=: loop devices of an image. They have autoclear and go with the last
 * mount and fd, so normally they are gone already; any still bound to the
 * record's image (not a reused number) is detached here. */
static int clean_loop_devices(StaleContext *c) {
        struct stat st;
        int n = 0, r;

        if (!c->rec || strv_isempty(c->rec->loop_devices) || !c->rec->root || stat(c->rec->root, &st) < 0)
                return 0;
        STRV_FOREACH(p, c->rec->loop_devices) {
                r = loop_detach_if_backed_by(*p, (uint64_t) st.st_dev, (uint64_t) st.st_ino);
                if (r < 0)
                        log_warning_errno(r, "Failed to detach loop device '%s', ignoring: %m", *p);
                else if (r > 0)
                        n++;
        }
        return n;
}

/* A record's temporary copy, left by an instance killed while it wrote the record. */
static int clean_temp_records(StaleContext *c) {
        return registry_remove_temp_records(c->name) > 0 ? 1 : 0;
}

/* The record itself, last; the lock file is the caller's now. */
static int clean_record(StaleContext *c) {
        _cleanup_free_ char *path = NULL;

        if (!c->rec)
                return 0;
        path = strjoin(registry_run_dir(), "/machines/", c->name);
        if (path && unlink(path) < 0 && errno != ENOENT)
                log_warning_errno(negative_errno(), "Failed to remove '%s', ignoring: %m", path);
        return 1;
}

/* Every kind of host state an instance owns, in the order it is cleaned. A
 * feature that leaves new host state behind (a uid range, host-side links,
 * nftables tables, loop devices) lists it in the record and adds its row
 * here: one cleaner for every kind, one walk, one log line. CLEAN returns
 * how many it removed (> 0: DONE goes into the log line). */
typedef struct StaleResourceType {
        const char *done;
        int (*clean)(StaleContext *c);
} StaleResourceType;

static const StaleResourceType stale_resource_types[] = {
        { "removed cgroups", clean_cgroups },
        { "removed nftables table", clean_nft_table },
        { "removed network interfaces", clean_network },
        { "removed scratch directories", clean_scratch },
        { "detached loop devices", clean_loop_devices },
        { "removed a half-written record", clean_temp_records },
        { "removed its record", clean_record },
};

int stale_cleanup(const char *name, int level) {
        _cleanup_(machine_record_freep) MachineRecord *rec = NULL;
        char done[256] = "";
        size_t k = 0;
        int r;

        r = registry_read(name, &rec);
        if (r < 0 && r != -ENOENT)
                log_warning_errno(r, "Failed to read the record of machine '%s', ignoring: %m", name);

        StaleContext c = { .name = name, .rec = rec };
        for (size_t i = 0; i < ELEMENTSOF(stale_resource_types); i++)
                if (stale_resource_types[i].clean(&c) > 0 && k < sizeof done)
                        k += (size_t) snprintf(done + k, sizeof done - k, ", %s", stale_resource_types[i].done);
        if (k == 0)
                return 0;

        log_full(level, "Cleaned up after a dead instance of machine '%s': killed %u process%s%s.", name, c.killed,
                 c.killed == 1 ? "" : "es", done);
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

/* A record of an instance that ran in another network namespace: its links and nftables table are
 * there, out of our reach, so the whole record is left for a berth in that namespace (or the next
 * start of the same machine, which cleans what it can wherever it runs). */
static bool other_netns(const char *name) {
        _cleanup_(machine_record_freep) MachineRecord *rec = NULL;
        unsigned long long ours = netns_self();

        if (registry_read(name, &rec) < 0 || rec->netns == 0 || ours == 0)
                return false;
        return rec->netns != ours && (rec->nft_table || rec->network_links || rec->network_zone);
}

int stale_cleanup_all(const char *self) {
        _cleanup_strv_free_ char **names = NULL;
        int n = 0;

        if (registry_list(&names) < 0 || locked_names(&names) < 0)
                return 0;
        STRV_FOREACH(name, names) {
                _cleanup_close_ int lock = -EBADF;
                int max = log_get_max_level();

                /* A live instance holds its lock: a quick probe tells, where
                 * registry_lock_machine() would wait a while for probers to go away; and
                 * whoever else holds it now (a start of that machine, another cleaner) is left
                 * to it: registry_try_lock_machine() does not wait. */
                if ((self && streq(*name, self)) || registry_is_live(*name) != 0 || other_netns(*name))
                        continue;
                if (registry_try_lock_machine(*name, &lock) < 0)
                        continue;
                /* not this start's business: said at debug level only, so that a start of one
                 * machine does not report on others (a user's, another test's); and so are the
                 * warnings of its cleaners (a record naming a loop device that is no longer
                 * one, a cgroup that will not go), unless we log at debug level anyway */
                if (max < LOG_DEBUG)
                        log_set_max_level(LOG_ERR);
                if (stale_cleanup(*name, LOG_DEBUG) > 0)
                        n++;
                (void) registry_remove(*name);
                log_set_max_level(max);
        }
        return n;
}
