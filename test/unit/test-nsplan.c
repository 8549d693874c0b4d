/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The namespace plan (berth-nsplan.c): what the settings make new, what is
 * made at clone and what after a start-up step, joining by path. TAP. */
#include <sched.h>
#include <unistd.h>

#include "berth-nsplan.h"
#include "log.h"
#include "tap.h"
#include "util.h"

static void test_kinds(void) {
        for (int i = 0; i < _NAMESPACE_KIND_MAX; i++) {
                CHECK(namespace_kind_from_string(namespace_kind_to_string(i)) == (NamespaceKind) i);
                CHECK(namespace_kind_clone_flag(i) != 0);
        }
        CHECK(namespace_kind_to_string(_NAMESPACE_KIND_MAX) == NULL);
        CHECK(namespace_kind_from_string("time") < 0);
        CHECK(namespace_kind_clone_flag(NAMESPACE_NET) == CLONE_NEWNET);
}

static void test_default_plan(void) {
        Settings s = {};
        NamespacePlan p;

        namespace_plan_make(&s, &p);
        /* what clone() made before the plan existed */
        CHECK(namespace_plan_clone_flags(&p) == (CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC));
        CHECK(p.ns[NAMESPACE_NET].source == NAMESPACE_HOST);
        CHECK(p.ns[NAMESPACE_USER].source == NAMESPACE_HOST);
        CHECK(p.final_mount_owner == NAMESPACE_OWNER_LOCK);
        /* the cgroup namespace waits for the cgroup barrier */
        CHECK(namespace_plan_unshare_flags(&p, STARTUP_CGROUP_READY) == CLONE_NEWCGROUP);
        CHECK(namespace_plan_unshare_flags(&p, STARTUP_PIVOTED) == 0);
        CHECK(namespace_plan_unshare_flags(&p, NAMESPACE_AT_CLONE) == 0);
}

static void test_private_network(void) {
        Settings s = { .private_network = true };
        NamespacePlan p;

        namespace_plan_make(&s, &p);
        CHECK(namespace_plan_clone_flags(&p) & CLONE_NEWNET);
        CHECK(p.ns[NAMESPACE_NET].source == NAMESPACE_NEW);
}

/* -U: a private network is made with the user namespace (owned by it) and entered for the clone;
 * so is the PID namespace, which the child is born in (not made at clone) */
static void test_userns_private_network(void) {
        Settings s = { .private_network = true, .userns_mode = USERNS_PICK };
        NamespacePlan p;

        namespace_plan_make(&s, &p);
        CHECK(p.ns[NAMESPACE_NET].source == NAMESPACE_USERNS);
        CHECK(p.ns[NAMESPACE_NET].after == NAMESPACE_AT_CLONE);
        CHECK(!(namespace_plan_clone_flags(&p) & CLONE_NEWNET));
        CHECK(p.ns[NAMESPACE_PID].source == NAMESPACE_USERNS);
        CHECK(!(namespace_plan_clone_flags(&p) & CLONE_NEWPID));
        /* -U on the host's network: the host's; the PID namespace is still the user namespace's */
        s.private_network = false;
        namespace_plan_make(&s, &p);
        CHECK(p.ns[NAMESPACE_NET].source == NAMESPACE_HOST);
        CHECK(p.ns[NAMESPACE_PID].source == NAMESPACE_USERNS);
}

static void test_network_namespace_path(void) {
        Settings s = { .network_namespace_path = (char *) "/nonexistent/berth-test-netns" };
        NamespacePlan p;

        namespace_plan_make(&s, &p);
        CHECK(p.ns[NAMESPACE_NET].source == NAMESPACE_PATH);
        CHECK(p.ns[NAMESPACE_NET].after == NAMESPACE_AT_CLONE);
        CHECK(!(namespace_plan_clone_flags(&p) & CLONE_NEWNET)); /* joined, not made */
        CHECK(namespace_plan_join(&p) == 0); /* the monitor's to enter, around clone() */
}

static void test_join(void) {
        Settings s = {};
        NamespacePlan p;

        namespace_plan_make(&s, &p);
        CHECK(namespace_plan_join(&p) == 0); /* nothing to join */

        p.ns[NAMESPACE_UTS] = (NamespaceEntry) { .source = NAMESPACE_PATH, .path = "/nonexistent/berth-test-ns" };
        CHECK(namespace_plan_join(&p) == -ENOENT);
        CHECK(!(namespace_plan_clone_flags(&p) & CLONE_NEWUTS)); /* joined, not made */

        if (geteuid() != 0) {
                printf("# joining by path needs root, skipped\n");
                return;
        }
        /* our own UTS namespace: setns() into it changes nothing but must work */
        p.ns[NAMESPACE_UTS].path = "/proc/self/ns/uts";
        CHECK(namespace_plan_join(&p) == 0);
        /* a namespace file of the wrong kind is refused by the kernel */
        p.ns[NAMESPACE_UTS].path = "/proc/self/ns/ipc";
        CHECK(namespace_plan_join(&p) == -EINVAL);
}

int main(void) {
        static const TapCase cases[] = {
                { "kinds", test_kinds },
                { "default plan", test_default_plan },
                { "private network", test_private_network },
                { "user namespace with a private network", test_userns_private_network },
                { "network namespace path", test_network_namespace_path },
                { "join by path", test_join },
        };
        log_set_max_level(LOG_CRIT);
        return tap_run(cases, ELEMENTSOF(cases));
}
