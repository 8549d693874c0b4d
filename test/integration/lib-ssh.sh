# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
# An sshd of the case's own, for berthctl -H (test-berthctl-habits.sh on this machine,
# test-berthctl-systemd.sh in the systemd test host); sourced after lib.sh.

# start_sshd [PATH]: an sshd on 127.0.0.1:$SSH_PORT with a host key and a client key made for it;
# root may log in with that key only, no password. Commands run there with PATH (default: the
# build directory first, so "berthctl" there is ours; without it, there is none). Exports
# $BERTH_SSH, an ssh with a config of the case's own: its key, known hosts in $T/ssh (nobody's
# ~/.ssh is read or written), no questions; it notes each call's arguments in $T/ssh/calls.
# sshd rewrites its environment for its process title, so the case's marker does not find it: a
# script that uses this calls stop_sshd from its case_teardown.
start_sshd() {
        local d=$T/ssh port path=${1:-$BERTH_BUILD:/usr/sbin:/usr/bin:/sbin:/bin}
        [ -x /usr/sbin/sshd ] || skip "no sshd (openssh-server)"
        port=$(unique_port 50)
        mkdir -p "$d"
        ssh-keygen -q -t ed25519 -N '' -f "$d/host" -C host >/dev/null
        ssh-keygen -q -t ed25519 -N '' -f "$d/id" -C client >/dev/null
        cp "$d/id.pub" "$d/authorized_keys"
        cat >"$d/sshd_config" <<CONF
ListenAddress 127.0.0.1:$port
HostKey $d/host
PidFile $d/sshd.pid
AuthorizedKeysFile $d/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
SetEnv PATH=$path BERTH=$BERTH BERTH_CONF=
CONF
        cat >"$d/ssh_config" <<CONF
Host *
        IdentityFile $d/id
        IdentitiesOnly yes
        UserKnownHostsFile $d/known_hosts
        StrictHostKeyChecking accept-new
        BatchMode yes
        LogLevel ERROR
CONF
        cat >"$d/ssh" <<SH
#!/bin/sh
printf '%s\n' "\$*" >>"$d/calls"
exec ssh -F "$d/ssh_config" "\$@"
SH
        chmod +x "$d/ssh"
        # sshd wants its privilege separation directory, which the openssh-server package makes at
        # boot: made here if missing, and left (an sshd of another run may be using it)
        mkdir -p -m 0755 /run/sshd
        /usr/sbin/sshd -f "$d/sshd_config" -E "$d/sshd.log"
        SSH_PORT=$port
        export BERTH_SSH=$d/ssh
        wait_for ssh_answers || fail "sshd did not come up: $(cat "$d/sshd.log")"
}

ssh_answers() {
        "$BERTH_SSH" -p "$SSH_PORT" root@127.0.0.1 true 2>/dev/null
}

# stop_sshd: stops the sshd of start_sshd, if the case started one.
stop_sshd() {
        local d=$T/ssh pid
        if [ -f "$d/sshd.pid" ]; then
                pid=$(<"$d/sshd.pid")
                kill "$pid" 2>/dev/null || true
                wait_for sh -c "! kill -0 $pid 2>/dev/null" || kill -KILL "$pid" 2>/dev/null || true
        fi
}
