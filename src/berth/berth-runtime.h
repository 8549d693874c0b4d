/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "berth-mount.h"
#include "berth-nsplan.h"
#include "berth-rootsrc.h"
#include "berth-seccomp.h"
#include "berth-settings.h"

/* What one run of a container derives from its settings. The settings are
 * frozen once verified (const from container_run() on); everything that a run
 * computes, creates or looks up goes here instead. The monitor owns it: made
 * by runtime_prepare() before the child is cloned, torn down by
 * runtime_done() on every exit path. The child receives it read-only (its
 * copy of the monitor's memory, ChildParams.runtime).
 *
 * Host state listed here must also be in the machine's record, so that stale
 * cleanup (berth-stale.c) finds it after a crash: runtime_scratch() says what.
 * Next to come: the uid range of a user namespace, the names of host-side
 * links, loop devices of a disk image. */
typedef struct Runtime {
        uint8_t uuid[16];       /* --uuid=, or random */
        uint64_t capabilities;  /* the bounding set: settings_container_capabilities() */
        NamespacePlan namespaces; /* which namespaces are new, joined, made when, owned by whom */
        /* The custom mounts to make: the settings' own, plus the bind --link-journal=host adds,
         * sorted by destination, with the temporary directories berth made (CustomMount.work). */
        CustomMount *mounts;
        size_t n_mounts;
        SeccompFilter *seccomp; /* built (or read from /run/berth/cache) here, loaded by the child */
        char **host_os_env;     /* container_host_id=... from the host's os-release, for the payload */
        HostOsRelease host_os_release; /* the host's os-release, for /run/host/os-release */
} Runtime;

/* In the monitor, with the machine's lock held: UUID, --link-journal=, the custom mounts' work
 * directories, the seccomp programs. On failure, what was made is removed again. Logs. */
int runtime_prepare(const Settings *s, const RootSource *root, uid_t tree_owner, Runtime *ret);
/* Removes what runtime_prepare() made on the host and frees RT. Idempotent. Logs warnings. */
void runtime_done(Runtime *rt);
/* The host paths the record must list for stale cleanup (SCRATCH=). */
int runtime_scratch(const Runtime *rt, char ***ret);
