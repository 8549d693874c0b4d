/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <linux/capability.h>
#include <sys/personality.h>
#include <stdlib.h>
#include <string.h>

#include "berth-caps.h"
#include "berth-mount.h"
#include "berth-settings.h"
#include "util.h"

void settings_free(Settings *s) {
        free(s->directory);
        free(s->template);
        free(s->image);
        free(s->image_policy);
        free(s->root_hash);
        free(s->root_hash_sig);
        free(s->verity_data);
        strv_free(s->parameters);
        strv_free(s->pivot_root);
        free(s->background);
        free(s->machine);
        free(s->hostname);
        strv_free(s->environment);
        credential_free_all(s->credentials, s->n_credentials);
        strv_free(s->import_credentials);
        free(s->working_directory);
        free(s->user);
        strv_free(s->bind_users);
        free(s->bind_user_shell);
        strv_free(s->network_veth_extra);
        free(s->network_bridge);
        free(s->network_zone);
        strv_free(s->network_interfaces);
        strv_free(s->network_macvlan);
        strv_free(s->network_ipvlan);
        free(s->network_namespace_path);
        strv_free(s->ports);
        custom_mount_free_all(s->custom_mounts, s->n_custom_mounts);
        strv_free(s->syscall_allow);
        strv_free(s->syscall_deny);
        for (size_t i = 0; i < ELEMENTSOF(s->rlimit); i++)
                free(s->rlimit[i]);
        free(s->cpu_set.set);
        free(s->slice);
        strv_free(s->properties);
        *s = (Settings) {};
}

int custom_mount_list_add(CustomMount **list, size_t *n, CustomMountType t, CustomMount **ret) {
        CustomMount *l;

        l = realloc(*list, sizeof(CustomMount) * (*n + 1));
        if (!l)
                return -ENOMEM;
        *list = l;
        l[*n] = (CustomMount) {
                .type = t,
                .recursive = true,
        };
        *ret = &l[(*n)++];
        return 0;
}

int custom_mount_add(Settings *s, CustomMountType t, CustomMount **ret) {
        return custom_mount_list_add(&s->custom_mounts, &s->n_custom_mounts, t, ret);
}

static uint64_t capabilities_within(const Settings *s, uint64_t bounding) {
        uint64_t def = capability_default_set(), caps;

        /* With a user namespace on the host's network the container's root cannot bind the host's
         * privileged ports (the network namespace belongs to the host's user namespace): the
         * capability would only mislead programs that look for it before they pick a port. Left out
         * of the default, as nspawn leaves it out; --capability= still gives it. */
        if (s->userns_mode != USERNS_NO && !s->private_network)
                def &= ~(UINT64_C(1) << CAP_NET_BIND_SERVICE);
        caps = def | s->capability;
        if (s->capability_all)
                caps = capability_all();
        /* a network of its own is the container's to manage, as with nspawn */
        if (s->private_network)
                caps |= UINT64_C(1) << CAP_NET_ADMIN;
        /* what the host took from us (a container host, a unit's CapabilityBoundingSet=) the guest
         * cannot have either: the record and berthctl show the set the guest really gets */
        return caps & ~s->drop_capability & bounding;
}

uint64_t settings_effective_capabilities(const Settings *s) {
        return capabilities_within(s, capability_bounding_set());
}

/* With a user namespace the child applies the set past its setns() into it, and the kernel gives a
 * process that enters a user namespace a full bounding set there (set_cred_user_ns()), whatever the
 * host took from us: that is the set it will see. */
uint64_t settings_container_capabilities(const Settings *s) {
        return s->userns_mode != USERNS_NO ? capabilities_within(s, capability_all()) : settings_effective_capabilities(s);
}

/* One table per enum; *_from_string is the reverse lookup. */
#define DEFINE_STRING_TABLE(name, type, max, ...)                                   \
        static const char *const name##_table[max] = { __VA_ARGS__ };               \
        const char *name##_to_string(type v) {                                      \
                if ((int) v < 0 || (int) v >= (int) (max))                          \
                        return NULL;                                                \
                return name##_table[v];                                             \
        }                                                                           \
        static type name##_from_string_internal(const char *s) {                    \
                return (type) string_table_lookup(name##_table, max, s);            \
        }

DEFINE_STRING_TABLE(start_mode, StartMode, _START_MODE_MAX,
                    [START_PID1] = "pid1",
                    [START_PID2] = "pid2",
                    [START_BOOT] = "boot");

DEFINE_STRING_TABLE(console_mode, ConsoleMode, _CONSOLE_MODE_MAX,
                    [CONSOLE_INTERACTIVE] = "interactive",
                    [CONSOLE_READ_ONLY] = "read-only",
                    [CONSOLE_PASSIVE] = "passive",
                    [CONSOLE_PIPE] = "pipe",
                    [CONSOLE_AUTOPIPE] = "autopipe");

ConsoleMode console_mode_from_string(const char *s) {
        return console_mode_from_string_internal(s);
}

DEFINE_STRING_TABLE(volatile_mode, VolatileMode, _VOLATILE_MODE_MAX,
                    [VOLATILE_NO] = "no",
                    [VOLATILE_YES] = "yes",
                    [VOLATILE_STATE] = "state",
                    [VOLATILE_OVERLAY] = "overlay");

VolatileMode volatile_mode_from_string(const char *s) {
        int b = parse_boolean(s);
        if (b >= 0)
                return b ? VOLATILE_YES : VOLATILE_NO;
        return volatile_mode_from_string_internal(s);
}

DEFINE_STRING_TABLE(resolv_conf_mode, ResolvConfMode, _RESOLV_CONF_MODE_MAX,
                    [RESOLV_CONF_OFF] = "off",
                    [RESOLV_CONF_COPY_HOST] = "copy-host",
                    [RESOLV_CONF_COPY_STATIC] = "copy-static",
                    [RESOLV_CONF_COPY_UPLINK] = "copy-uplink",
                    [RESOLV_CONF_COPY_STUB] = "copy-stub",
                    [RESOLV_CONF_REPLACE_HOST] = "replace-host",
                    [RESOLV_CONF_REPLACE_STATIC] = "replace-static",
                    [RESOLV_CONF_REPLACE_UPLINK] = "replace-uplink",
                    [RESOLV_CONF_REPLACE_STUB] = "replace-stub",
                    [RESOLV_CONF_BIND_HOST] = "bind-host",
                    [RESOLV_CONF_BIND_STATIC] = "bind-static",
                    [RESOLV_CONF_BIND_UPLINK] = "bind-uplink",
                    [RESOLV_CONF_BIND_STUB] = "bind-stub",
                    [RESOLV_CONF_DELETE] = "delete",
                    [RESOLV_CONF_AUTO] = "auto");

ResolvConfMode resolv_conf_mode_from_string(const char *s) {
        return resolv_conf_mode_from_string_internal(s);
}

DEFINE_STRING_TABLE(timezone_mode, TimezoneMode, _TIMEZONE_MODE_MAX,
                    [TIMEZONE_OFF] = "off",
                    [TIMEZONE_COPY] = "copy",
                    [TIMEZONE_BIND] = "bind",
                    [TIMEZONE_SYMLINK] = "symlink",
                    [TIMEZONE_DELETE] = "delete",
                    [TIMEZONE_AUTO] = "auto");

TimezoneMode timezone_mode_from_string(const char *s) {
        return timezone_mode_from_string_internal(s);
}

DEFINE_STRING_TABLE(custom_mount_type, CustomMountType, _CUSTOM_MOUNT_TYPE_MAX,
                    [CUSTOM_MOUNT_BIND] = "bind",
                    [CUSTOM_MOUNT_TMPFS] = "tmpfs",
                    [CUSTOM_MOUNT_OVERLAY] = "overlay",
                    [CUSTOM_MOUNT_INACCESSIBLE] = "inaccessible");

StartMode start_mode_from_string(const char *s) {
        return start_mode_from_string_internal(s);
}

CustomMountType custom_mount_type_from_string(const char *s) {
        return custom_mount_type_from_string_internal(s);
}

DEFINE_STRING_TABLE(bind_idmap, BindIdmap, _BIND_IDMAP_MAX,
                    [BIND_NOIDMAP] = "noidmap",
                    [BIND_IDMAP] = "idmap",
                    [BIND_ROOTIDMAP] = "rootidmap",
                    [BIND_OWNERIDMAP] = "owneridmap");

BindIdmap bind_idmap_from_string(const char *s) {
        return bind_idmap_from_string_internal(s);
}

static const char *const personality_table[_PERSONALITY_MAX] = { NULL, PERSONALITY_NAMES };

const char *personality_to_string(Personality p) {
        return p > PERSONALITY_INHERIT && p < _PERSONALITY_MAX ? personality_table[p] : NULL;
}

Personality personality_from_string(const char *s) {
        /* PERSONALITY_INHERIT has no name */
        return (Personality) string_table_lookup(personality_table, _PERSONALITY_MAX, s);
}

long personality_domain(Personality p) {
        return p == PERSONALITY_NATIVE ? PER_LINUX : p == PERSONALITY_SECONDARY ? PER_LINUX32 : -1;
}
