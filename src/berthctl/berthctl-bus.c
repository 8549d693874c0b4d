/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * berthctl's systemd backend: systemd-machined (org.freedesktop.machine1) and the service manager
 * (org.freedesktop.systemd1) over the system bus. The verbs never call sd-bus themselves: the
 * machine backend (machine_list()/machine_get() in berthctl-machines.c) and the verbs that start,
 * stop and enable machines call the functions here.
 *
 * "With systemd" means: systemd is PID 1 (/run/systemd/system exists) and the system bus can be
 * opened. machined is used when it answers (or can be activated); without it, berthctl works from
 * berth's registry alone, as it does without systemd.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "berthctl.h"
#include "berthctl-machine.h"
#include "log.h"
#include "machine-name.h"
#include "util.h"

#define MACHINED_DEST "org.freedesktop.machine1"
#define MACHINED_PATH "/org/freedesktop/machine1"
#define MACHINED_MANAGER "org.freedesktop.machine1.Manager"
#define MACHINED_MACHINE "org.freedesktop.machine1.Machine"
#define SYSTEMD_DEST "org.freedesktop.systemd1"
#define SYSTEMD_PATH "/org/freedesktop/systemd1"
#define SYSTEMD_MANAGER "org.freedesktop.systemd1.Manager"

static sd_bus *system_bus = NULL;
static int system_bus_state = 0; /* 0: not tried, 1: open, -1: none */
static int machined_state = 0;   /* 0: not tried, 1: answers, -1: not there */

/* The system bus, or NULL without systemd. Doesn't log. */
static sd_bus *bus_get(void) {
        if (system_bus_state == 0) {
                system_bus_state = -1;
                if (access("/run/systemd/system", F_OK) >= 0 &&
                    sd_bus_open_system(&system_bus) >= 0)
                        system_bus_state = 1;
        }
        return system_bus_state > 0 ? system_bus : NULL;
}

bool bus_have_systemd(void) {
        return bus_get() != NULL;
}

static bool error_is_missing_service(const sd_bus_error *e) {
        return sd_bus_error_has_name(e, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
               sd_bus_error_has_name(e, SD_BUS_ERROR_NAME_HAS_NO_OWNER) ||
               sd_bus_error_has_name(e, "org.freedesktop.DBus.Error.Spawn.ServiceNotFound");
}

static bool error_is_no_machine(const sd_bus_error *e) {
        return sd_bus_error_has_name(e, "org.freedesktop.machine1.NoSuchMachine") ||
               sd_bus_error_has_name(e, "org.freedesktop.machine1.NoMachineForPID") ||
               sd_bus_error_has_name(e, SD_BUS_ERROR_UNKNOWN_OBJECT);
}

/* A machined call; -ENXIO if machined isn't there or doesn't know the machine. */
static int machined_call(const char *member, sd_bus_error *error, sd_bus_message **reply, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        sd_bus *bus = bus_get();
        va_list ap;
        int r;

        if (!bus || machined_state < 0)
                return -ENXIO;
        r = sd_bus_message_new_method_call(bus, &m, MACHINED_DEST, MACHINED_PATH, MACHINED_MANAGER, member);
        if (r < 0)
                return r;
        if (types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
                if (r < 0)
                        return r;
        }
        r = sd_bus_call(bus, m, 0, error, reply);
        if (r < 0 && error_is_missing_service(error)) {
                machined_state = -1;
                return -ENXIO;
        }
        if (r < 0 && error_is_no_machine(error))
                return -ENXIO;
        if (r >= 0)
                machined_state = 1;
        return r;
}

bool bus_have_machined(void) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;

        if (machined_state == 0)
                (void) machined_call("ListMachines", &error, &reply, NULL);
        sd_bus_error_free(&error);
        return machined_state > 0;
}

int bus_machine_list(char ***ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_strv_free_ char **l = NULL;
        const char *name, *class, *service, *path;
        int r;

        *ret = NULL;
        r = machined_call("ListMachines", &error, &reply, NULL);
        sd_bus_error_free(&error);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(ssso)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(reply, "(ssso)", &name, &class, &service, &path)) > 0) {
                /* ".host" and other hidden names: not machines to list */
                if (name[0] == '.' || !machine_name_is_valid(name))
                        continue;
                if (strv_extend(&l, name) < 0)
                        return -ENOMEM;
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

static int get_string(sd_bus *bus, const char *path, const char *member, char ***owned, char **ret) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        char *s = NULL;
        int r;

        r = sd_bus_get_property_string(bus, MACHINED_DEST, path, MACHINED_MACHINE, member, &error, &s);
        sd_bus_error_free(&error);
        if (r < 0)
                return r;
        if (isempty(s)) {
                free(s);
                *ret = NULL;
                return 0;
        }
        r = strv_consume(owned, s);
        if (r < 0)
                return r;
        *ret = s;
        return 0;
}

/* Fills M's machined fields (those still unset) from machined. -ENXIO: not registered there. */
int bus_machine_fill(const char *name, MachineInfo *m) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL, *idr = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus *bus = bus_get();
        const char *p;
        _cleanup_free_ char *path = NULL;
        char *s;
        uint32_t leader = 0;
        uint64_t ts = 0;
        int r;

        r = machined_call("GetMachine", &error, &reply, "s", name);
        sd_bus_error_free(&error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "o", &p);
        if (r < 0)
                return r;
        path = strdup(p);
        if (!path)
                return -ENOMEM;

        r = sd_bus_get_property_trivial(bus, MACHINED_DEST, path, MACHINED_MACHINE, "Leader", &error, 'u', &leader);
        if (r < 0) {
                r = error_is_no_machine(&error) ? -ENXIO : r;
                sd_bus_error_free(&error);
                return r;
        }
        if (m->leader <= 0)
                m->leader = (pid_t) leader;
        m->bus_leader = (pid_t) leader;
        if (sd_bus_get_property_trivial(bus, MACHINED_DEST, path, MACHINED_MACHINE, "Timestamp", &error, 't', &ts) >= 0 &&
            m->since == 0)
                m->since = ts;
        sd_bus_error_free(&error);
#define FILL(field, prop)                                                                  \
        if (!m->field && get_string(bus, path, prop, &m->owned, &s) >= 0)                 \
                m->field = s;
        FILL(class, "Class");
        FILL(service, "Service");
        FILL(state, "State");
        FILL(root, "RootDirectory");
        FILL(unit, "Unit");
#undef FILL
        if (!m->uuid &&
            sd_bus_get_property(bus, MACHINED_DEST, path, MACHINED_MACHINE, "Id", &error, &idr, "ay") >= 0) {
                const void *id;
                size_t n;
                if (sd_bus_message_read_array(idr, 'y', &id, &n) >= 0 && n == 16) {
                        char buf[33];
                        bool zero = true;
                        for (size_t i = 0; i < 16; i++) {
                                snprintf(buf + 2 * i, 3, "%02x", ((const uint8_t *) id)[i]);
                                if (((const uint8_t *) id)[i])
                                        zero = false;
                        }
                        if (!zero && strv_extend(&m->owned, buf) >= 0)
                                m->uuid = m->owned[strv_length(m->owned) - 1];
                }
        }
        sd_bus_error_free(&error);
        m->registered = true;
        return 0;
}

/* Logs. */
int bus_machine_kill(const char *name, const char *whom, int sig) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        char buf[16];
        int r;

        r = machined_call("KillMachine", &error, NULL, "ssi", name, whom, sig);
        if (r == -ENXIO)
                r = log_error_errno(r, "No machine '%s' is running.", name);
        else if (r < 0)
                r = log_error_errno(r, "Failed to send %s to machine '%s' through systemd-machined: %s", signal_to_string(sig, buf),
                                    name, error.message ?: strerror(-r));
        sd_bus_error_free(&error);
        return r;
}

/* Logs. */
int bus_machine_terminate(const char *name) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = machined_call("TerminateMachine", &error, NULL, "s", name);
        if (r == -ENXIO)
                r = log_error_errno(r, "No machine '%s' is running.", name);
        else if (r < 0)
                r = log_error_errno(r, "Failed to terminate machine '%s' through systemd-machined: %s", name,
                                    error.message ?: strerror(-r));
        sd_bus_error_free(&error);
        return r;
}

/* > 0 while machined still knows NAME. */
int bus_machine_registered(const char *name) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r = machined_call("GetMachine", &error, &reply, "s", name);
        sd_bus_error_free(&error);
        if (r == -ENXIO)
                return 0;
        return r < 0 ? r : 1;
}

/* ---------------------------------------------------------------------------------------------------- */
/* The service manager                                                                                  */
/* ---------------------------------------------------------------------------------------------------- */

typedef struct JobWait {
        const char *job;
        char *result;
} JobWait;

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        JobWait *w = userdata;
        const char *path, *unit, *result;
        uint32_t id;

        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        if (w->job && streq(path, w->job) && !w->result)
                w->result = strdup(result);
        return 0;
}

static void log_unit_result(sd_bus *bus, const char *verb, const char *unit, const char *job_result, uint64_t since) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *result = NULL, *why = NULL;
        const char *path = NULL;

        if (sd_bus_call_method(bus, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER, "GetUnit", &error, &reply, "s", unit) >= 0 &&
            sd_bus_message_read(reply, "o", &path) >= 0)
                (void) sd_bus_get_property_string(bus, SYSTEMD_DEST, path, "org.freedesktop.systemd1.Service", "Result",
                                                  &error, &result);
        sd_bus_error_free(&error);
        /* the unit's own reason (berth's one-line error), when the journal has it */
        why = unit_last_error(unit, since, 1000 * 1000);
        if (why)
                log_error("Failed to %s %s: %s (see 'journalctl -u %s').", verb, unit, why, unit);
        else
                log_error("Failed to %s %s: the job %s%s%s. See 'systemctl status %s' and 'journalctl -u %s'.", verb,
                          unit, job_result, result ? ", the unit's result is " : "", strempty(result), unit, unit);
}

/* systemctl start|stop UNIT: waits for the job. Logs. */
static int unit_job(const char *method, const char *verb, const char *unit, uint64_t timeout) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus *bus = bus_get();
        _cleanup_free_ char *job = NULL;
        JobWait w = {};
        const char *p;
        uint64_t deadline, since;
        int r;

        if (!bus)
                return log_error_errno(-EOPNOTSUPP, "Cannot %s %s: no system bus.", verb, unit);
        r = sd_bus_match_signal(bus, &slot, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER, "JobRemoved", on_job_removed, &w);
        if (r < 0)
                return log_error_errno(r, "Failed to watch systemd's jobs: %m");
        /* the manager only sends job signals to subscribers */
        (void) sd_bus_call_method(bus, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER, "Subscribe", &error, NULL, NULL);
        sd_bus_error_free(&error);

        since = now_usec(CLOCK_REALTIME);
        r = sd_bus_call_method(bus, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER, method, &error, &reply, "ss", unit,
                               "replace");
        if (r < 0) {
                r = log_error_errno(r, "Failed to %s %s: %s", verb, unit, error.message ?: strerror(-r));
                sd_bus_error_free(&error);
                return r;
        }
        r = sd_bus_message_read(reply, "o", &p);
        if (r < 0 || !(job = strdup(p)))
                return log_error_errno(r < 0 ? r : -ENOMEM, "Failed to read the job of %s: %m", unit);
        w.job = job;

        deadline = now_usec(CLOCK_MONOTONIC) + timeout;
        while (!w.result) {
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                if (now >= deadline)
                        return log_error_errno(-ETIMEDOUT, "%s did not %s in time (its job %s is still running).", unit,
                                               verb, job);
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return log_error_errno(r, "Failed to talk to systemd: %m");
                if (r > 0)
                        continue;
                r = sd_bus_wait(bus, deadline - now);
                if (r < 0)
                        return log_error_errno(r, "Failed to talk to systemd: %m");
        }
        r = 0;
        if (!streq(w.result, "done")) {
                log_unit_result(bus, verb, unit, w.result, since);
                r = -EIO;
        }
        free(w.result);
        return r;
}

int bus_start_unit(const char *unit, uint64_t timeout) {
        return unit_job("StartUnit", "start", unit, timeout);
}

int bus_stop_unit(const char *unit, uint64_t timeout) {
        return unit_job("StopUnit", "stop", unit, timeout);
}

static int append_strv(sd_bus_message *m, char **l) {
        int r = sd_bus_message_open_container(m, 'a', "s");
        if (r < 0)
                return r;
        STRV_FOREACH(s, l) {
                r = sd_bus_message_append(m, "s", *s);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}

static void log_changes(sd_bus_message *reply) {
        const char *type, *path, *source;

        if (sd_bus_message_enter_container(reply, 'a', "(sss)") < 0)
                return;
        while (sd_bus_message_read(reply, "(sss)", &type, &path, &source) > 0)
                if (!arg.quiet) {
                        if (streq(type, "symlink"))
                                log_info("Created symlink %s → %s.", path, source);
                        else if (streq(type, "unlink"))
                                log_info("Removed \"%s\".", path);
                }
}

/* systemctl enable/disable UNITS, then daemon-reload. Logs. */
int bus_enable_units(char **units, bool enable) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus *bus = bus_get();
        int b = 0, r;

        if (!bus)
                return log_error_errno(-EOPNOTSUPP, "No system bus.");
        r = sd_bus_message_new_method_call(bus, &m, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                           enable ? "EnableUnitFiles" : "DisableUnitFiles");
        if (r >= 0)
                r = append_strv(m, units);
        if (r >= 0)
                r = enable ? sd_bus_message_append(m, "bb", false, false) : sd_bus_message_append(m, "b", false);
        if (r < 0)
                return log_oom();
        r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r < 0) {
                r = log_error_errno(r, "Failed to %s %s: %s", enable ? "enable" : "disable", units[0],
                                    error.message ?: strerror(-r));
                sd_bus_error_free(&error);
                return r;
        }
        if (enable)
                (void) sd_bus_message_read(reply, "b", &b);
        log_changes(reply);
        r = sd_bus_call_method(bus, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER, "Reload", &error, NULL, NULL);
        if (r < 0)
                r = log_error_errno(r, "Failed to reload systemd: %s", error.message ?: strerror(-r));
        sd_bus_error_free(&error);
        return r < 0 ? r : 0;
}
