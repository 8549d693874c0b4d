/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "berth-mount.h"
#include "berth-register.h"
#include "dl-load.h"
#include "log.h"
#include "systemd-proto.h"
#include "util.h"

/* Who owns what, and how a crash is survived.
 *
 * The scope (machine-NAME.scope) is systemd's object: berth asks for it with
 * its own PID in it, so that berth and, below it, the container cgroup
 * (berth-cgroup.c) are one unit to systemd, with a device policy and limits
 * at the unit level and Delegate=yes so that the guest's systemd may manage
 * its own subtree. When berth exits, the scope is empty and systemd removes
 * it; nothing of it is ours to tear down.
 *
 * The registration is machined's object, but berth's to end: at exit berth
 * calls UnregisterMachine, not TerminateMachine. The container is already
 * gone by then; TerminateMachine would ask systemd to stop the machine's unit,
 * which under --keep-unit is berth@NAME.service itself: a stop job against our
 * own unit would turn a reboot (exit 133, Restart) into a stop and race with
 * our exit. Unregistering only forgets the name.
 *
 * After a crash (berth killed with SIGKILL) the next start holds the
 * machine's registry lock, so a registration or a scope of that name that
 * belongs to berth is a dead instance's: it is dropped (Unregister, or
 * Terminate when it is in another unit than ours) and a lingering scope is
 * stopped. A registration of that name by another manager (nspawn) whose
 * leader lives is a running machine: berth refuses to start.
 *
 * A restart right after a crash races with machined, which learns about the
 * dead scope asynchronously: when it lets go of a machine (ours dropped, or
 * its unit gone) it stops the machine's unit by name, and the unit of a
 * restarted machine has the same name. So the stale registration is gone
 * from machined (we wait for that) before our scope is created; and the old
 * scope is stopped and gone from systemd (we wait for that too) before
 * StartTransientUnit makes the new one. Only then is no stop job of the dead
 * instance left to hit the new scope, and RegisterMachine finds the name
 * free ("Machine ... already exists" otherwise). */

#define SYSTEMD_DEST "org.freedesktop.systemd1"
#define SYSTEMD_PATH "/org/freedesktop/systemd1"
#define SYSTEMD_MANAGER "org.freedesktop.systemd1.Manager"
#define MACHINED_DEST "org.freedesktop.machine1"
#define MACHINED_PATH "/org/freedesktop/machine1"
#define MACHINED_MANAGER "org.freedesktop.machine1.Manager"
#define DEFAULT_SLICE "machine.slice"
#define JOB_TIMEOUT_USEC (30 * USEC_PER_SEC)

/* sd-bus, from libsystemd loaded when berth first talks to the bus (dl-load.h): only on a host
 * booted with systemd, and only for a machine that registers. Linking libsystemd (and with it
 * libgcrypt, lzma, zstd, lz4) cost every start ~2 ms and every monitor ~80 kB. sd-bus.h's own
 * cleanup helpers (sd_bus_unrefp and friends) call the library by name: ours below go through
 * the pointers. */
#define SD_BUS_SYMBOLS(X)                                                                                \
        X(sd_bus_call) X(sd_bus_call_method) X(sd_bus_error_free) X(sd_bus_error_get_errno)               \
        X(sd_bus_error_has_name) X(sd_bus_flush_close_unref) X(sd_bus_get_property_string)                \
        X(sd_bus_get_property_trivial) X(sd_bus_match_signal) X(sd_bus_message_append)                    \
        X(sd_bus_message_append_array) X(sd_bus_message_close_container) X(sd_bus_message_new_method_call) \
        X(sd_bus_message_open_container) X(sd_bus_message_read) X(sd_bus_message_unref)                   \
        X(sd_bus_open_system) X(sd_bus_process) X(sd_bus_slot_unref) X(sd_bus_wait)
SD_BUS_SYMBOLS(DL_DECLARE)

/* -ELIBACC when libsystemd can't be loaded, with the loader's words in *RET_ERROR. Doesn't log. */
static int sd_bus_load(const char **ret_error) {
        static const DlSymbol symbols[] = { SD_BUS_SYMBOLS(DL_ENTRY) };
        static void *handle;

        return dl_load(&handle, "libsystemd.so.0", symbols, ELEMENTSOF(symbols), ret_error) < 0 ? -ELIBACC : 0;
}

static void bus_flush_close_unrefp(sd_bus **b) {
        if (*b)
                sym_sd_bus_flush_close_unref(*b);
}

static void bus_message_unrefp(sd_bus_message **m) {
        if (*m)
                sym_sd_bus_message_unref(*m);
}

static void bus_slot_unrefp(sd_bus_slot **s) {
        if (*s)
                sym_sd_bus_slot_unref(*s);
}

/* Every error is SD_BUS_ERROR_NULL until a call of the library (then loaded) fills it in. */
static void bus_error_free(sd_bus_error *e) {
        if (sym_sd_bus_error_free)
                sym_sd_bus_error_free(e);
}

struct Registration {
        sd_bus *bus;
        RegisterMode mode;
        char *machine;
        char *unit;          /* the scope we make, or the unit we were started in */
        bool keep_unit;      /* unit is the one we run in (--keep-unit), not a scope of ours */
        bool registered;     /* machined knows the machine */
};

static bool streq_ptr(const char *a, const char *b) {
        return a && b ? streq(a, b) : a == b;
}

/* ---- enums ---- */

static const char *const register_mode_table[_REGISTER_MODE_MAX] = {
        [REGISTER_AUTO] = "auto",
        [REGISTER_NO] = "no",
        [REGISTER_YES] = "yes",
};

const char *register_mode_to_string(RegisterMode m) {
        return m >= 0 && m < _REGISTER_MODE_MAX ? register_mode_table[m] : NULL;
}

RegisterMode register_mode_from_string(const char *s) {
        int b;

        b = string_table_lookup(register_mode_table, _REGISTER_MODE_MAX, s);
        if (b >= 0)
                return (RegisterMode) b;
        b = parse_boolean(s);
        if (b < 0)
                return _REGISTER_MODE_INVALID;
        return b ? REGISTER_YES : REGISTER_NO;
}

static const char *const link_journal_table[_LINK_JOURNAL_MAX] = {
        [LINK_JOURNAL_AUTO] = "auto",
        [LINK_JOURNAL_NO] = "no",
        [LINK_JOURNAL_HOST] = "host",
        [LINK_JOURNAL_TRY_HOST] = "try-host",
        [LINK_JOURNAL_GUEST] = "guest",
        [LINK_JOURNAL_TRY_GUEST] = "try-guest",
};

const char *link_journal_to_string(LinkJournal l) {
        return l >= 0 && l < _LINK_JOURNAL_MAX ? link_journal_table[l] : NULL;
}

LinkJournal link_journal_from_string(const char *s) {
        return (LinkJournal) string_table_lookup(link_journal_table, _LINK_JOURNAL_MAX, s);
}

/* ---- unit names ---- */

int scope_name_for_machine(const char *machine, char **ret) {
        /* systemd's escaping of a unit name part: letters, digits, ':', '_'
         * and '.' (not leading) stay, '/' becomes '-', all else \xNN. A
         * machine name is a host name, so in practice '-' -> \x2d. */
        size_t n = strlen(machine);
        char *e = malloc(strlen("machine-") + n * 4 + strlen(".scope") + 1), *p;

        if (!e)
                return -ENOMEM;
        p = stpcpy(e, "machine-");
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) machine[i];
                if (c == '/')
                        *p++ = '-';
                else if (isalnum(c) || c == ':' || c == '_' || (c == '.' && i > 0))
                        *p++ = (char) c;
                else
                        p += sprintf(p, "\\x%02x", c);
        }
        strcpy(p, ".scope");
        *ret = e;
        return 0;
}

/* ---- --property= ---- */

typedef enum PropertyType {
        PROP_SIZE,       /* bytes, K/M/G/T/P/E (1024-based) or infinity */
        PROP_TASKS,      /* a count or infinity */
        PROP_WEIGHT,     /* 1..10000 */
        PROP_UINT64,
        PROP_BOOL,
        PROP_STRING,
        PROP_USEC,       /* a time span, sent as ...USec */
        PROP_CPU_QUOTA,  /* N% of one CPU, sent as CPUQuotaPerSecUSec */
        PROP_DEVICE_ALLOW, /* "PATH-OR-CLASS [rwm]" */
} PropertyType;

typedef struct PropertyDef {
        const char *name;     /* as written on the command line */
        PropertyType type;
        const char *bus_name; /* NULL: the same */
        const char *values;   /* PROP_STRING: space-separated allowed values, NULL: any */
} PropertyDef;

static const PropertyDef property_table[] = {
        { "MemoryMax", PROP_SIZE },
        { "MemoryHigh", PROP_SIZE },
        { "MemoryLow", PROP_SIZE },
        { "MemoryMin", PROP_SIZE },
        { "MemorySwapMax", PROP_SIZE },
        { "MemoryLimit", PROP_SIZE },
        { "TasksMax", PROP_TASKS },
        { "CPUWeight", PROP_WEIGHT },
        { "StartupCPUWeight", PROP_WEIGHT },
        { "IOWeight", PROP_WEIGHT },
        { "StartupIOWeight", PROP_WEIGHT },
        { "CPUShares", PROP_UINT64 },
        { "CPUQuota", PROP_CPU_QUOTA, "CPUQuotaPerSecUSec" },
        { "CPUAccounting", PROP_BOOL },
        { "MemoryAccounting", PROP_BOOL },
        { "TasksAccounting", PROP_BOOL },
        { "IOAccounting", PROP_BOOL },
        { "IPAccounting", PROP_BOOL },
        { "Description", PROP_STRING },
        { "CollectMode", PROP_STRING, NULL, "inactive inactive-or-failed" },
        { "DevicePolicy", PROP_STRING, NULL, "auto closed strict" },
        { "KillMode", PROP_STRING, NULL, "control-group mixed process none" },
        { "TimeoutStopSec", PROP_USEC, "TimeoutStopUSec" },
        { "RuntimeMaxSec", PROP_USEC, "RuntimeMaxUSec" },
        { "DeviceAllow", PROP_DEVICE_ALLOW },
};

static int parse_size(const char *s, uint64_t *ret) {
        static const char suffixes[] = "KMGTPE";
        unsigned long long v;
        _cleanup_free_ char *num = NULL;
        size_t n = strlen(s);
        const char *suf;
        uint64_t mult = 1;

        if (streq(s, "infinity")) {
                *ret = UINT64_MAX;
                return 0;
        }
        if (n == 0)
                return -EINVAL;
        suf = strchr(suffixes, s[n - 1]);
        if (suf && s[n - 1]) {
                for (const char *k = suffixes; k <= suf; k++)
                        mult *= 1024;
                n--;
        }
        num = strndup(s, n);
        if (!num)
                return -ENOMEM;
        if (safe_atollu(num, &v) < 0)
                return -EINVAL;
        if (mult > 1 && v > UINT64_MAX / mult)
                return -ERANGE;
        *ret = (uint64_t) v * mult;
        return 0;
}

static bool word_in_list(const char *w, const char *list) {
        size_t n = strlen(w);
        for (const char *p = list; p && *p;) {
                size_t k = strcspn(p, " ");
                if (k == n && strncmp(p, w, n) == 0)
                        return true;
                p += k;
                p += strspn(p, " ");
        }
        return false;
}

/* Checks ASSIGNMENT and, when M is not NULL, appends it as one (sv) to M. */
static int property_append(sd_bus_message *m, const char *assignment, const char **ret_detail) {
        const PropertyDef *def = NULL;
        _cleanup_free_ char *name = NULL;
        const char *eq = strchr(assignment, '='), *value, *bus_name;
        const char *dummy;
        uint64_t u;
        int b, r;

        if (!ret_detail)
                ret_detail = &dummy;
        if (!eq || eq == assignment) {
                *ret_detail = "expected NAME=VALUE, e.g. MemoryMax=2G";
                return -EINVAL;
        }
        name = strndup(assignment, (size_t) (eq - assignment));
        if (!name)
                return -ENOMEM;
        value = eq + 1;
        if (streq(name, "Delegate")) {
                *ret_detail = "berth always delegates the unit to the container (Delegate=yes)";
                return -EINVAL;
        }
        if (streq(name, "Slice")) {
                *ret_detail = "use --slice= to choose the slice";
                return -EINVAL;
        }
        for (size_t i = 0; i < ELEMENTSOF(property_table); i++)
                if (streq(property_table[i].name, name))
                        def = &property_table[i];
        if (!def) {
                *ret_detail = "unknown property; berth knows MemoryMax, MemoryHigh, MemoryLow, MemoryMin, "
                              "MemorySwapMax, TasksMax, CPUWeight, StartupCPUWeight, IOWeight, StartupIOWeight, "
                              "CPUShares, CPUQuota, CPUAccounting, MemoryAccounting, TasksAccounting, IOAccounting, "
                              "IPAccounting, Description, CollectMode, DevicePolicy, KillMode, TimeoutStopSec, "
                              "RuntimeMaxSec, DeviceAllow";
                return -EINVAL;
        }
        bus_name = def->bus_name ?: def->name;

        switch (def->type) {
        case PROP_SIZE:
                if (parse_size(value, &u) < 0) {
                        *ret_detail = "expected a size in bytes, with an optional K, M, G, T, P or E suffix, or 'infinity'";
                        return -EINVAL;
                }
                return m ? sym_sd_bus_message_append(m, "(sv)", bus_name, "t", u) : 0;
        case PROP_TASKS:
                if (streq(value, "infinity"))
                        u = UINT64_MAX;
                else if (safe_atou64(value, &u) < 0 || u == 0) {
                        *ret_detail = "expected a positive number of tasks or 'infinity'";
                        return -EINVAL;
                }
                return m ? sym_sd_bus_message_append(m, "(sv)", bus_name, "t", u) : 0;
        case PROP_WEIGHT:
                if (safe_atou64(value, &u) < 0 || u < 1 || u > 10000) {
                        *ret_detail = "expected a weight from 1 to 10000";
                        return -EINVAL;
                }
                return m ? sym_sd_bus_message_append(m, "(sv)", bus_name, "t", u) : 0;
        case PROP_UINT64:
                if (safe_atou64(value, &u) < 0) {
                        *ret_detail = "expected a number";
                        return -EINVAL;
                }
                return m ? sym_sd_bus_message_append(m, "(sv)", bus_name, "t", u) : 0;
        case PROP_BOOL:
                b = parse_boolean(value);
                if (b < 0) {
                        *ret_detail = "expected a boolean (yes or no)";
                        return -EINVAL;
                }
                return m ? sym_sd_bus_message_append(m, "(sv)", bus_name, "b", b) : 0;
        case PROP_STRING:
                if (isempty(value) || (def->values && !word_in_list(value, def->values))) {
                        *ret_detail = def->values ? "not one of the values systemd takes for it" : "empty value";
                        return -EINVAL;
                }
                return m ? sym_sd_bus_message_append(m, "(sv)", bus_name, "s", value) : 0;
        case PROP_USEC:
                if (parse_sec(value, &u) < 0) {
                        *ret_detail = "expected a time span such as 90s, 500ms or 2min, or 'infinity'";
                        return -EINVAL;
                }
                return m ? sym_sd_bus_message_append(m, "(sv)", bus_name, "t", u) : 0;
        case PROP_CPU_QUOTA: {
                size_t n = strlen(value);
                _cleanup_free_ char *num = NULL;
                if (n < 2 || value[n - 1] != '%' || !(num = strndup(value, n - 1)) || safe_atou64(num, &u) < 0 ||
                    u == 0 || u > 100000) {
                        *ret_detail = "expected a percentage of one CPU such as 50% or 200%";
                        return -EINVAL;
                }
                return m ? sym_sd_bus_message_append(m, "(sv)", bus_name, "t", u * 10000) : 0;
        }
        case PROP_DEVICE_ALLOW: {
                _cleanup_free_ char *path = NULL;
                const char *sp = strchr(value, ' '), *access = sp ? sp + 1 : "rwm";
                path = sp ? strndup(value, (size_t) (sp - value)) : strdup(value);
                if (!path)
                        return -ENOMEM;
                if ((!startswith(path, "/dev/") && !startswith(path, "char-") && !startswith(path, "block-")) ||
                    isempty(access) || strspn(access, "rwm") != strlen(access)) {
                        *ret_detail = "expected a /dev/ path, char-CLASS or block-CLASS, then optionally r, w and m";
                        return -EINVAL;
                }
                if (!m)
                        return 0;
                r = sym_sd_bus_message_open_container(m, 'r', "sv");
                if (r >= 0)
                        r = sym_sd_bus_message_append(m, "sv", bus_name, "a(ss)", 1, path, access);
                if (r >= 0)
                        r = sym_sd_bus_message_close_container(m);
                return r;
        }
        }
        return -EINVAL;
}

int unit_property_check(const char *assignment, const char **ret_detail) {
        return property_append(NULL, assignment, ret_detail);
}

static int append_properties(sd_bus_message *m, char **properties) {
        STRV_FOREACH(p, properties) {
                int r = property_append(m, *p, NULL);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- connecting ---- */

static bool error_is_missing_service(const sd_bus_error *e) {
        return sym_sd_bus_error_has_name(e, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
               sym_sd_bus_error_has_name(e, SD_BUS_ERROR_NAME_HAS_NO_OWNER) ||
               sym_sd_bus_error_has_name(e, "org.freedesktop.systemd1.NoSuchUnit");
}

static int bus_errno(const sd_bus_error *e, int r) {
        int k = sym_sd_bus_error_get_errno(e);
        return k > 0 ? -k : r < 0 ? r : -EIO;
}

int register_open(const Settings *s, Registration **ret) {
        _cleanup_(bus_flush_close_unrefp) sd_bus *bus = NULL;
        Registration *reg;
        const char *e;
        int r;

        *ret = NULL;
        if (s->register_mode == REGISTER_NO)
                return 0;
        if (!systemd_booted()) {
                if (s->register_mode == REGISTER_YES)
                        return log_error_errno(-EOPNOTSUPP, "Cannot register machine '%s' (--register=yes): systemd "
                                               "is not the init system of this host.", s->machine);
                log_debug("Not registering machine '%s': systemd is not the init system of this host.", s->machine);
                return 0;
        }
        r = sd_bus_load(&e);
        if (r < 0) {
                if (s->register_mode == REGISTER_YES)
                        return log_error_errno(r, "Cannot register machine '%s' (--register=yes): %s. Install "
                                               "libsystemd0.", s->machine, e);
                log_warning("Not registering machine '%s' with systemd-machined: %s. Install libsystemd0.",
                            s->machine, e);
                return 0;
        }
        r = sym_sd_bus_open_system(&bus);
        if (r < 0) {
                if (s->register_mode == REGISTER_YES)
                        return log_error_errno(r, "Cannot register machine '%s' (--register=yes): failed to connect "
                                               "to the system bus: %m", s->machine);
                log_debug_errno(r, "Not registering machine '%s': no system bus: %m", s->machine);
                return 0;
        }
        reg = calloc(1, sizeof *reg);
        if (!reg || !(reg->machine = strdup(s->machine))) {
                free(reg);
                return log_oom();
        }
        reg->mode = s->register_mode;
        reg->bus = TAKE_PTR(bus);
        *ret = reg;
        return 0;
}

const char *register_unit_name(const Registration *r) {
        return r ? r->unit : NULL;
}

/* ---- jobs ---- */

typedef struct JobWait {
        const char *path;  /* the job's object path, once known */
        char *result;      /* "done", "failed", ... when it is gone */
} JobWait;

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        JobWait *w = userdata;
        const char *path, *unit, *result;
        uint32_t id;

        if (sym_sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        if (w->path && streq(path, w->path) && !w->result)
                w->result = strdup(result) ?: strdup("oom");
        return 0;
}

/* Calls a method of systemd's manager that returns a job (StartTransientUnit,
 * StopUnit) and waits until the job is gone. The match is in place before the
 * call, so the signal cannot be missed; a signal that arrives during the call
 * waits in the queue until we know the job's path. */
static int call_and_wait_for_job(sd_bus *bus, sd_bus_message *call, sd_bus_error *error, char **ret_result) {
        _cleanup_(bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_(bus_message_unrefp) sd_bus_message *reply = NULL;
        JobWait w = {};
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + JOB_TIMEOUT_USEC;
        int r;

        r = sym_sd_bus_match_signal(bus, &slot, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER, "JobRemoved",
                                on_job_removed, &w);
        if (r < 0)
                return r;
        r = sym_sd_bus_call(bus, call, 0, error, &reply);
        if (r < 0)
                return r;
        r = sym_sd_bus_message_read(reply, "o", &w.path);
        if (r < 0)
                return r;
        while (!w.result) {
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                if (now >= deadline)
                        return -ETIMEDOUT;
                r = sym_sd_bus_process(bus, NULL);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                r = sym_sd_bus_wait(bus, deadline - now);
                if (r < 0)
                        return r;
        }
        *ret_result = w.result;
        return 0;
}

/* ---- waiting for machined and systemd to let go ---- */

#define GONE_POLL_USEC (20 * USEC_PER_MSEC)

static bool machine_known(Registration *reg, const char *name) {
        return sym_sd_bus_call_method(reg->bus, MACHINED_DEST, MACHINED_PATH, MACHINED_MANAGER, "GetMachine", NULL, NULL,
                                  "s", name) >= 0;
}

static bool unit_loaded(Registration *reg, const char *unit) {
        return sym_sd_bus_call_method(reg->bus, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER, "GetUnit", NULL, NULL, "s",
                                  unit) >= 0;
}

/* Polls until STILL(reg, name) is false: 0, or -ETIMEDOUT after JOB_TIMEOUT_USEC. */
static int wait_gone(Registration *reg, bool (*still)(Registration *, const char *), const char *name) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + JOB_TIMEOUT_USEC;

        while (still(reg, name)) {
                if (now_usec(CLOCK_MONOTONIC) >= deadline)
                        return -ETIMEDOUT;
                (void) usleep(GONE_POLL_USEC);
        }
        return 0;
}

static int stop_unit(Registration *reg, const char *unit, bool say) {
        _cleanup_(bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *result = NULL;
        int r;

        /* a failed transient unit stays loaded until its failure is reset */
        (void) sym_sd_bus_call_method(reg->bus, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER, "ResetFailedUnit", NULL, NULL,
                                  "s", unit);
        r = sym_sd_bus_message_new_method_call(reg->bus, &m, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER, "StopUnit");
        if (r >= 0)
                r = sym_sd_bus_message_append(m, "ss", unit, "replace");
        if (r >= 0)
                r = call_and_wait_for_job(reg->bus, m, &e, &result);
        if (r < 0 && sym_sd_bus_error_has_name(&e, "org.freedesktop.systemd1.NoSuchUnit"))
                return 0;
        if (r < 0)
                return log_error_errno(bus_errno(&e, r), "Failed to stop the stale unit '%s' of machine '%s': %s",
                                       unit, reg->machine, e.message ?: strerror(-r));
        (void) sym_sd_bus_call_method(reg->bus, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER, "ResetFailedUnit", NULL, NULL,
                                  "s", unit);
        if (say)
                log_info("Stopped the stale unit '%s' of a dead instance of machine '%s'.", unit, reg->machine);
        return 0;
}

/* ---- machined: stale registrations ---- */

static bool pid_is_alive(pid_t pid) {
        return pid > 0 && (kill(pid, 0) >= 0 || errno != ESRCH);
}

/* A registration of our name: dropped if it is a dead instance's, refused if
 * it is a live machine of another manager. 0: nothing (left) in the way. */
static int drop_stale_registration(Registration *reg) {
        _cleanup_(bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *service = NULL, *unit = NULL, *path = NULL;
        const char *p;
        uint32_t leader = 0;
        bool alive;
        int r;

        r = sym_sd_bus_call_method(reg->bus, MACHINED_DEST, MACHINED_PATH, MACHINED_MANAGER, "GetMachine", &e, &reply, "s",
                               reg->machine);
        if (r < 0)
                return 0; /* no such machine, or no machined: nothing in the way */
        r = sym_sd_bus_message_read(reply, "o", &p);
        if (r < 0 || !(path = strdup(p)))
                return r < 0 ? r : -ENOMEM;
        (void) sym_sd_bus_get_property_trivial(reg->bus, MACHINED_DEST, path, "org.freedesktop.machine1.Machine", "Leader",
                                           NULL, 'u', &leader);
        (void) sym_sd_bus_get_property_string(reg->bus, MACHINED_DEST, path, "org.freedesktop.machine1.Machine", "Service",
                                          NULL, &service);
        (void) sym_sd_bus_get_property_string(reg->bus, MACHINED_DEST, path, "org.freedesktop.machine1.Machine", "Unit",
                                          NULL, &unit);
        alive = pid_is_alive((pid_t) leader);
        if (alive && !streq_ptr(service, "berth"))
                return log_error_errno(-EEXIST, "Machine '%s' is already running, registered by %s (leader PID %" PRIu32
                                       "). Pick another name with --machine=, or stop that one first.",
                                       reg->machine, strempty(service), leader);

        sym_sd_bus_error_free(&e);
        /* Our own unit must live on (a restart of berth@NAME.service): only forget the name.
         * Another unit is the dead instance's, and so is a scope of the name we are about to
         * create: terminating the machine stops it too. */
        if (!unit || (reg->keep_unit && streq_ptr(unit, reg->unit)) ||
            sym_sd_bus_call_method(reg->bus, MACHINED_DEST, MACHINED_PATH, MACHINED_MANAGER, "TerminateMachine", &e, NULL,
                               "s", reg->machine) < 0) {
                sym_sd_bus_error_free(&e);
                r = sym_sd_bus_call_method(reg->bus, MACHINED_DEST, MACHINED_PATH, MACHINED_MANAGER, "UnregisterMachine",
                                       &e, NULL, "s", reg->machine);
                if (r < 0 && !sym_sd_bus_error_has_name(&e, "org.freedesktop.machine1.NoSuchMachine"))
                        return log_error_errno(bus_errno(&e, r),
                                               "Failed to drop the stale registration of machine '%s': %s",
                                               reg->machine, e.message ?: strerror(-r));
        }
        /* machined drops it (and queues the stop of its unit) in its own time */
        r = wait_gone(reg, machine_known, reg->machine);
        if (r < 0)
                return log_error_errno(r, "systemd-machined still has the stale registration of machine '%s' after "
                                          "%llu s: stop it with 'machinectl terminate %s', then start again.",
                                       reg->machine, (unsigned long long) (JOB_TIMEOUT_USEC / USEC_PER_SEC),
                                       reg->machine);
        log_info("Dropped the stale registration of machine '%s' (unit %s, leader PID %" PRIu32 " %s).", reg->machine,
                 strna(unit), leader, alive ? "left over" : "gone");
        return 0;
}

/* A scope of our name, before we create ours: a dead instance's, still stopping or stopped and
 * not yet collected. Stopped, and waited for until systemd has let go of it. */
static int drop_stale_scope(Registration *reg, bool say) {
        int r;

        if (!unit_loaded(reg, reg->unit))
                return 0;
        r = stop_unit(reg, reg->unit, say);
        if (r < 0)
                return r;
        r = wait_gone(reg, unit_loaded, reg->unit);
        if (r < 0)
                return log_error_errno(r, "The stale unit '%s' of machine '%s' is still there after %llu s: stop it "
                                          "with 'systemctl stop %s', then start again.",
                                       reg->unit, reg->machine, (unsigned long long) (JOB_TIMEOUT_USEC / USEC_PER_SEC),
                                       reg->unit);
        return 0;
}

/* ---- the unit ---- */

/* Our unit: the last component of our cgroup2 path that names a service or scope. */
static int own_unit(char **ret) {
        _cleanup_free_ char *cg = NULL;
        char *line, *end, *best = NULL;
        int r;

        r = read_full_file("/proc/self/cgroup", &cg, NULL);
        if (r < 0)
                return r;
        line = strstr(cg, "0::");
        if (line != cg && (!line || line[-1] != '\n'))
                return -ENOMEDIUM;
        line += 3;
        line[strcspn(line, "\n")] = 0;
        for (char *c = strtok_r(line, "/", &end); c; c = strtok_r(NULL, "/", &end))
                if (endswith(c, ".service") || endswith(c, ".scope"))
                        best = c;
        if (!best)
                return -ENOENT;
        *ret = strdup(best);
        return *ret ? 0 : -ENOMEM;
}

static int set_unit_properties(Registration *reg, const Settings *s) {
        _cleanup_(bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        if (strv_isempty(s->properties))
                return 0;
        r = sym_sd_bus_message_new_method_call(reg->bus, &m, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                           "SetUnitProperties");
        if (r >= 0)
                r = sym_sd_bus_message_append(m, "sb", reg->unit, 1);
        if (r >= 0)
                r = sym_sd_bus_message_open_container(m, 'a', "(sv)");
        if (r >= 0)
                r = append_properties(m, s->properties);
        if (r >= 0)
                r = sym_sd_bus_message_close_container(m);
        if (r < 0)
                return log_error_errno(r, "Failed to build the unit properties: %m");
        r = sym_sd_bus_call(reg->bus, m, 0, &e, NULL);
        if (r < 0)
                return log_error_errno(bus_errno(&e, r), "Failed to set --property= on unit '%s': %s", reg->unit,
                                       e.message ?: strerror(-r));
        return 0;
}

/* The devices a container gets at the unit level, as systemd-nspawn@.service
 * allows them (DevicePolicy=closed adds the basic pseudo devices read-write);
 * 'm' for the nodes berth creates in the container's /dev. berth's own policy
 * on the container cgroup (berth-devices.c) narrows this further. */
static const char *const scope_device_allow[][2] = {
        { "/dev/null", "rwm" },    { "/dev/zero", "rwm" },    { "/dev/full", "rwm" },
        { "/dev/random", "rwm" },  { "/dev/urandom", "rwm" }, { "/dev/tty", "rwm" },
        { "/dev/ptmx", "rwm" },    { "/dev/net/tun", "rwm" }, { "/dev/fuse", "rwm" },
        { "char-pts", "rw" },
};

static int build_scope_call(Registration *reg, const Settings *s, sd_bus_message **ret) {
        _cleanup_(bus_message_unrefp) sd_bus_message *m = NULL;
        char desc[128];
        int r;

        snprintf(desc, sizeof desc, "Container %s", s->machine);
        r = sym_sd_bus_message_new_method_call(reg->bus, &m, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                           "StartTransientUnit");
        if (r < 0)
                return r;
        r = sym_sd_bus_message_append(m, "ss", reg->unit, "fail");
        if (r < 0)
                return r;
        r = sym_sd_bus_message_open_container(m, 'a', "(sv)");
        if (r < 0)
                return r;
        r = sym_sd_bus_message_append(m, "(sv)(sv)(sv)(sv)(sv)(sv)(sv)", "Description", "s", desc, "Slice", "s",
                                  s->slice ?: DEFAULT_SLICE, "PIDs", "au", 1, (uint32_t) getpid(), "Delegate", "b", 1,
                                  "TasksMax", "t", (uint64_t) 16384, "DevicePolicy", "s", "closed", "CollectMode", "s",
                                  "inactive-or-failed");
        if (r < 0)
                return r;
        /* Stopping the scope (machinectl terminate, shutdown of the host) signals every process
         * in it. SIGTERM would make the guest's systemd re-execute itself and its services die
         * under it, and the guest then hangs in its shutdown; SIGRTMIN+4 is a poweroff request
         * to a systemd guest, and to berth (which passes the init's own poweroff signal on). */
        r = sym_sd_bus_message_append(m, "(sv)", "KillSignal", "i", (int32_t) (SIGRTMIN + 4));
        if (r < 0)
                return r;
        r = sym_sd_bus_message_open_container(m, 'r', "sv");
        if (r >= 0)
                r = sym_sd_bus_message_append(m, "s", "DeviceAllow");
        if (r >= 0)
                r = sym_sd_bus_message_open_container(m, 'v', "a(ss)");
        if (r >= 0)
                r = sym_sd_bus_message_open_container(m, 'a', "(ss)");
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(scope_device_allow); i++) {
                struct stat st;
                /* systemd warns about nodes that are not there (no tun or fuse module loaded) */
                if (startswith(scope_device_allow[i][0], "/dev/") && stat(scope_device_allow[i][0], &st) < 0)
                        continue;
                r = sym_sd_bus_message_append(m, "(ss)", scope_device_allow[i][0], scope_device_allow[i][1]);
        }
        for (int k = 0; r >= 0 && k < 3; k++)
                r = sym_sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        /* the user's last: a later assignment wins in systemd */
        r = append_properties(m, s->properties);
        if (r < 0)
                return r;
        r = sym_sd_bus_message_close_container(m);
        if (r >= 0)
                r = sym_sd_bus_message_append(m, "a(sa(sv))", 0);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

int register_unit(Registration *reg, const Settings *s) {
        int r;

        if (!reg)
                return 0;

        reg->keep_unit = s->keep_unit;
        if (s->keep_unit) {
                r = own_unit(&reg->unit);
                if (r < 0)
                        return log_error_errno(r, "Failed to find the unit berth runs in (--keep-unit): %m");
                r = drop_stale_registration(reg);
                if (r < 0)
                        return r;
                return set_unit_properties(reg, s);
        }

        r = scope_name_for_machine(s->machine, &reg->unit);
        if (r < 0)
                return log_oom();
        r = drop_stale_registration(reg);
        if (r < 0)
                return r;
        r = drop_stale_scope(reg, true);
        if (r < 0)
                return r;

        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + JOB_TIMEOUT_USEC;
        for (int attempt = 0;; attempt++) {
                _cleanup_(bus_message_unrefp) sd_bus_message *m = NULL;
                _cleanup_(bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                _cleanup_free_ char *result = NULL;

                r = build_scope_call(reg, s, &m);
                if (r < 0)
                        return log_error_errno(r, "Failed to build the request for scope '%s': %m", reg->unit);
                r = call_and_wait_for_job(reg->bus, m, &e, &result);
                if (r < 0 && sym_sd_bus_error_has_name(&e, "org.freedesktop.systemd1.UnitExists") &&
                    now_usec(CLOCK_MONOTONIC) < deadline) {
                        /* we hold the machine's lock: a scope of its name is a dead instance's,
                         * one that appeared after we looked (or is not collected yet) */
                        r = drop_stale_scope(reg, attempt == 0);
                        if (r < 0)
                                return r;
                        (void) usleep(GONE_POLL_USEC);
                        continue;
                }
                if (r == -ETIMEDOUT)
                        return log_error_errno(r, "Timed out waiting for systemd to start scope '%s'.", reg->unit);
                if (r < 0)
                        return log_error_errno(bus_errno(&e, r), "Failed to create scope '%s' for machine '%s': %s",
                                               reg->unit, s->machine, e.message ?: strerror(-r));
                if (!streq(result, "done"))
                        return log_error_errno(-EIO, "Failed to start scope '%s' for machine '%s': job result '%s'.",
                                               reg->unit, s->machine, result);
                break;
        }
        log_debug("Running in scope '%s'.", reg->unit);
        return 0;
}

/* ---- machined ---- */

static int call_register(Registration *reg, const Settings *s, const uint8_t uuid[16], pid_t leader, bool with_network, const int *ifindexes,
                         size_t n_ifindexes, sd_bus_error *e) {
        _cleanup_(bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sym_sd_bus_message_new_method_call(reg->bus, &m, MACHINED_DEST, MACHINED_PATH, MACHINED_MANAGER,
                                           with_network ? "RegisterMachineWithNetwork" : "RegisterMachine");
        if (r >= 0)
                r = sym_sd_bus_message_append(m, "s", s->machine);
        if (r >= 0)
                r = sym_sd_bus_message_append_array(m, 'y', uuid, 16);
        if (r >= 0)
                r = sym_sd_bus_message_append(m, "ssus", "berth", "container", (uint32_t) leader, s->directory);
        if (r >= 0 && with_network)
                r = sym_sd_bus_message_append_array(m, 'i', ifindexes, n_ifindexes * sizeof(int));
        if (r < 0)
                return r;
        return sym_sd_bus_call(reg->bus, m, 0, e, NULL);
}

int register_machine(Registration *reg, const Settings *s, const uint8_t uuid[16], pid_t leader, const int *ifindexes, size_t n_ifindexes) {
        int r;

        if (!reg)
                return 0;
        for (int attempt = 0;; attempt++) {
                _cleanup_(bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

                r = call_register(reg, s, uuid, leader, true, ifindexes, n_ifindexes, &e);
                if (r < 0 && sym_sd_bus_error_has_name(&e, SD_BUS_ERROR_UNKNOWN_METHOD)) {
                        /* machined from before RegisterMachineWithNetwork */
                        sym_sd_bus_error_free(&e);
                        r = call_register(reg, s, uuid, leader, false, NULL, 0, &e);
                }
                if (r >= 0)
                        break;
                if (error_is_missing_service(&e)) {
                        if (reg->mode == REGISTER_YES)
                                return log_error_errno(-EOPNOTSUPP, "Cannot register machine '%s' (--register=yes): "
                                                       "systemd-machined is not available on this host (install "
                                                       "systemd-container).", s->machine);
                        log_notice("systemd-machined is not available (install systemd-container): machine '%s' "
                                   "runs unregistered.", s->machine);
                        return 0;
                }
                if (attempt == 0 && sym_sd_bus_error_has_name(&e, "org.freedesktop.machine1.MachineExists")) {
                        /* registered after register_unit() made sure the name was free. Under
                         * --keep-unit a stale one can be dropped as there. Otherwise its unit is,
                         * by name, our scope now: dropping it would have machined stop that; a
                         * registration that goes away by itself is fine, another is in the way. */
                        r = reg->keep_unit ? drop_stale_registration(reg) : wait_gone(reg, machine_known, reg->machine);
                        if (r < 0 && r != -ETIMEDOUT)
                                return r;
                        if (r >= 0)
                                continue;
                }
                return log_error_errno(bus_errno(&e, r), "Failed to register machine '%s' with systemd-machined: %s",
                                       s->machine, e.message ?: strerror(-r));
        }
        reg->registered = true;
        log_debug("Registered machine '%s' with systemd-machined (unit %s).", s->machine, strna(reg->unit));
        return 0;
}

Registration *register_close(Registration *reg) {
        if (!reg)
                return NULL;
        if (reg->registered) {
                _cleanup_(bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                int r = sym_sd_bus_call_method(reg->bus, MACHINED_DEST, MACHINED_PATH, MACHINED_MANAGER,
                                           "UnregisterMachine", &e, NULL, "s", reg->machine);
                /* machined drops a machine whose unit went away by itself */
                if (r < 0 && !sym_sd_bus_error_has_name(&e, "org.freedesktop.machine1.NoSuchMachine"))
                        log_warning_errno(bus_errno(&e, r), "Failed to unregister machine '%s', ignoring: %s",
                                          reg->machine, e.message ?: strerror(-r));
        }
        sym_sd_bus_flush_close_unref(reg->bus);
        free(reg->machine);
        free(reg->unit);
        free(reg);
        return NULL;
}

/* ---- --link-journal= ---- */

/* The id the guest's journald names its directory after, found as systemd
 * finds it at boot: the tree's /etc/machine-id, else D-Bus's
 * /var/lib/dbus/machine-id, else the container UUID that berth gives systemd
 * (as $container_uuid) and commands (as /etc/machine-id). */
static bool read_id_in_tree(int dfd, const char *path, char ret[static 33]) {
        _cleanup_close_ int fd = -EBADF;
        char buf[64];
        ssize_t n;

        fd = open_regular_in_root(dfd, path, NULL);
        if (fd < 0 || (n = read(fd, buf, sizeof buf - 1)) < 32)
                return false;
        buf[n] = 0;
        buf[strcspn(buf, "\n")] = 0;
        if (strlen(buf) != 32 || strspn(buf, "0123456789abcdef") != 32)
                return false;
        memcpy(ret, buf, 33);
        return true;
}

static void guest_machine_id(const RootSource *root, const uint8_t uuid[16], char ret[static 33]) {
        if (read_id_in_tree(root->mount_fd, "etc/machine-id", ret) ||
            read_id_in_tree(root->mount_fd, "var/lib/dbus/machine-id", ret))
                return;
        id128_to_string(uuid, ret);
}

static int link_journal_host(const Settings *s, const char *id, bool try, CustomMount **mounts, size_t *n_mounts) {
        _cleanup_free_ char *dir = NULL;
        CustomMount *m;
        struct stat st;
        int r;

        dir = strjoin("/var/log/journal/", id);
        if (!dir)
                return log_oom();
        r = mkdir_p(dir, 0755);
        if (r >= 0 && (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode)))
                r = -ENOTDIR;
        if (r >= 0) {
                /* the same path on both sides, as --bind=DIR would say */
                if (custom_mount_list_add(mounts, n_mounts, CUSTOM_MOUNT_BIND, &m) < 0 ||
                    !(m->source = strdup(dir)) || !(m->destination = strdup(dir)))
                        return log_oom();
                /* With a user namespace the host's root-owned directory would be nobody's inside,
                 * and the guest's journald could not write it: mapped through the container's own
                 * namespace, host root is the guest's root there, and what the guest writes is
                 * stored as host root's, as the host's journal is (nspawn shows it so too). */
                if (s->userns_mode != USERNS_NO)
                        m->idmap = BIND_IDMAP;
        }
        if (r < 0) {
                if (try) {
                        log_debug_errno(r, "Not linking the journal of machine '%s' (--link-journal=try-host): '%s': %m",
                                        s->machine, dir);
                        return 0;
                }
                return log_error_errno(r, "Failed to link the journal of machine '%s' (--link-journal=host): '%s': %m",
                                       s->machine, dir);
        }
        return 0;
}

static int link_journal_guest(const Settings *s, const RootSource *root, uid_t owner, const char *id, bool try) {
        _cleanup_free_ char *link = NULL, *target = NULL, *old = NULL;
        _cleanup_close_ int jfd = -EBADF;
        const char *why = NULL;
        char buf[PATH_MAX];
        ssize_t n;
        int r = 0;

        link = strjoin("/var/log/journal/", id);
        target = strjoin(s->directory, "/var/log/journal/", id);
        if (!link || !target)
                return log_oom();
        if (s->image)
                why = "the guest's journal is inside the image, which the host cannot link to (--image=)";
        else if (s->ephemeral || s->volatile_mode != VOLATILE_NO)
                why = "the guest's /var does not persist in the tree (--ephemeral, --volatile=)";
        else {
                /* the tree is hostile: create the directory through fds that stay inside it */
                jfd = open_in_root(root->mount_fd, "var/log/journal", O_RDONLY | O_DIRECTORY);
                if (jfd < 0)
                        why = "the tree has no /var/log/journal";
                else if (mkdirat(jfd, id, 02755) < 0 && errno != EEXIST) {
                        r = negative_errno();
                        why = "cannot create the guest's journal directory";
                } else if (owner != 0) {
                        /* a tree shifted to a user namespace's range: its journald is that root (also
                         * for a directory an earlier start without -U made as host root) */
                        _cleanup_close_ int d = openat_beneath(jfd, id, O_RDONLY | O_DIRECTORY);
                        struct stat dst;
                        r = d < 0 ? d : fstat(d, &dst) < 0 ? negative_errno() : 0;
                        if (r >= 0 && dst.st_uid == 0 && fchown(d, owner, owner) < 0)
                                r = negative_errno();
                        if (r < 0)
                                why = "cannot give the guest's journal directory to the guest's root";
                }
        }
        if (!why) {
                n = readlink(link, buf, sizeof buf - 1);
                if (n >= 0) {
                        buf[n] = 0;
                        if (!streq(buf, target) && (unlink(link) < 0 || symlink(target, link) < 0)) {
                                r = negative_errno();
                                why = "cannot replace the host's symlink";
                        }
                } else if (errno == ENOENT) {
                        (void) mkdir_p("/var/log/journal", 02755);
                        if (symlink(target, link) < 0) {
                                r = negative_errno();
                                why = "cannot create the host's symlink";
                        }
                } else
                        why = "the host has a directory of that id (a journal of its own)";
        }
        if (!why)
                return 0;
        if (try) {
                log_debug("Not linking the journal of machine '%s' (--link-journal=try-guest): %s.", s->machine, why);
                return 0;
        }
        return log_error_errno(r ?: -EINVAL, "Failed to link the journal of machine '%s' to '%s' (--link-journal=guest): %s.",
                               s->machine, link, why);
}

int link_journal_prepare(const Settings *s, const RootSource *root, uid_t owner, const uint8_t uuid[16],
                         CustomMount **mounts, size_t *n_mounts) {
        LinkJournal l = s->link_journal;
        _cleanup_free_ char *host = NULL, *host_id = NULL;
        char id[33];
        struct stat st;

        if (l == LINK_JOURNAL_NO)
                return 0;
        guest_machine_id(root, uuid, id);
        if (l == LINK_JOURNAL_AUTO) {
                /* auto never creates anything on the host: it links only where the host
                 * already keeps a place for this guest (a directory: bind it; a symlink: a
                 * previous guest-mode link, renew it). Containers of throw-away trees must not
                 * leave a trail in /var/log/journal. */
                host = strjoin("/var/log/journal/", id);
                if (!host)
                        return log_oom();
                if (lstat(host, &st) < 0)
                        return 0;
                l = S_ISLNK(st.st_mode) ? LINK_JOURNAL_TRY_GUEST : S_ISDIR(st.st_mode) ? LINK_JOURNAL_TRY_HOST
                                                                                         : LINK_JOURNAL_NO;
                if (l == LINK_JOURNAL_NO)
                        return 0;
        }
        /* A tree copied from the host, or made by its hostile owner, can carry the host's own
         * machine id: its "journal directory" would then be the host's journal, bound writable into
         * the guest. Never link that, as nspawn refuses too. */
        if (read_one_line_file("/etc/machine-id", &host_id) >= 0 && streq(host_id, id)) {
                bool try = l != LINK_JOURNAL_HOST && l != LINK_JOURNAL_GUEST;
                if (try) {
                        log_warning("Not linking the journal of machine '%s': its machine id is the host's (%s); "
                                    "give the tree an id of its own (an empty /etc/machine-id).", s->machine, id);
                        return 0;
                }
                return log_error_errno(-EEXIST, "Cannot link the journal of machine '%s' (--link-journal=): its machine id "
                                                "is the host's (%s). Give the tree an id of its own (an empty "
                                                "/etc/machine-id), or pass --link-journal=no.", s->machine, id);
        }
        if (l == LINK_JOURNAL_HOST || l == LINK_JOURNAL_TRY_HOST)
                return link_journal_host(s, id, l == LINK_JOURNAL_TRY_HOST, mounts, n_mounts);
        return link_journal_guest(s, root, owner, id, l == LINK_JOURNAL_TRY_GUEST);
}
