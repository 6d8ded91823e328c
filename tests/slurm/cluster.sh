#!/usr/bin/env bash
# tests/slurm/cluster.sh: a real one-node SLURM cluster with slurmrestd, for
# jobfs's integration tests.
#
#   tests/slurm/cluster.sh up       install Debian's slurm packages if missing,
#                                   configure, start, wait until REST answers
#   tests/slurm/cluster.sh status   exit 0 only when every daemon runs and
#                                   GET /slurm/v0.0.38/ping answers UP
#   tests/slurm/cluster.sh down     cancel all jobs, stop the daemons this
#                                   script started (by pid), remove the state
#
# Everything lives in one state directory, $JOBFS_SLURM_DIR (default
# /tmp/jobfs-slurm; kept short: the munge socket path must fit in 108 bytes).
# Nothing is written to /etc/slurm. After `up`, $JOBFS_SLURM_DIR/env holds
# KEY=VALUE lines (shell- and Python-readable, mode 0600):
#   SLURM_URL       http://127.0.0.1:PORT, a slurmrestd with JWT auth
#   SLURM_JWT       a token for SLURM_USER (24 h)
#   SLURM_USER      whose token it is (default: the caller, normally root)
#   SLURM_CONF      what sbatch/scancel/scontrol need to find the cluster
#   SLURM_JOBDIR    a world-writable working directory for test jobs
#   SLURM_TOKEN_FILE  the token as `SLURM_JWT=...`, mode 0600
#   MUNGED_PID SLURMCTLD_PID SLURMD_PID SLURMRESTD_PID
#
# Settings (environment): JOBFS_SLURM_MIN_JOB_AGE (s a finished job stays
# visible, default 300), JOBFS_SLURM_CPUS (CPUs the node claims, default 8,
# whatever the hardware), JOBFS_SLURM_USER (the token's user),
# JOBFS_SLURM_TIMEOUT (s per readiness step, default 60).
#
# Needs root (slurmd runs jobs as their users) and Debian 12's packages. The
# daemons are started by hand, each in its foreground mode, so this works
# without systemd, as in a container or a CI VM. Ports are picked free when
# the cluster starts, so a cluster on the default ports (6817, 6818, 6820)
# does not collide with this one. `up` on a running cluster changes nothing;
# on a half-running one it starts only what is missing (running jobs and
# ports stay); on a stopped state directory it keeps the job records (ids go
# on counting).
set -euo pipefail

DIR=${JOBFS_SLURM_DIR:-/tmp/jobfs-slurm}
MIN_JOB_AGE=${JOBFS_SLURM_MIN_JOB_AGE:-300}
CPUS=${JOBFS_SLURM_CPUS:-8}
TIMEOUT=${JOBFS_SLURM_TIMEOUT:-60}
REST_USER=slurmrestd
MARK=.jobfs-slurm-cluster
PKGS=(slurmctld slurmd slurmrestd slurm-client slurm-wlm-basic-plugins slurm-wlm-jwt-plugin munge)
DAEMONS=(munged slurmctld slurmd slurmrestd)

# A half-started cluster is worse than none: a caller's `| head` must not
# kill this script between two daemons (the daemons get SIGPIPE back).
trap '' PIPE

say() { printf 'cluster.sh: %s\n' "$*" >&2 || true; }
die() { say "error: $*"; exit 1; }

case $DIR in
/*) ;;
*) die "JOBFS_SLURM_DIR must be an absolute path, not '$DIR'" ;;
esac
DIR=${DIR%/}
[ -n "$DIR" ] || die "JOBFS_SLURM_DIR must not be /"
# Unix socket paths are limited to 108 bytes (sun_path)
[ ${#DIR} -le 80 ] || die "JOBFS_SLURM_DIR is too long (${#DIR} bytes, at most 80)"
export SLURM_CONF=$DIR/etc/slurm.conf
HOST=$(hostname -s)

now() { date +%s.%N; }

# ---- processes ------------------------------------------------------------

# The pid this script recorded for daemon $1, or nothing.
recorded_pid() {
        local f=$DIR/pids/$1.pid
        if [ -r "$f" ]; then
                cat "$f"
        fi
}

# Whether pid $2 is our daemon $1, alive: its argv[0] names the program and
# its arguments name our state directory (a reused pid is someone else's).
# A zombie counts as stopped.
is_ours() {
        local prog=$1 pid=$2 state cmd
        [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
        state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null) || return 1
        [ "$state" != Z ] || return 1
        cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
        case ${cmd%% *} in
        "$prog" | */"$prog") ;;
        *) return 1 ;;
        esac
        case $cmd in
        *"$DIR/"*) return 0 ;;
        esac
        return 1
}

alive() { is_ours "$1" "$(recorded_pid "$1")"; }

# Starts daemon $1 (the program) with the rest as its command line, in its
# own session, in the jobs directory (slurmrestd runs REST-submitted jobs
# without a working directory there), and records its pid.
start_daemon() {
        local name=$1 pid
        shift
        (
                trap - PIPE
                cd "$DIR/jobs"
                exec setsid "$@"
        ) >"$DIR/log/$name.stdout" 2>&1 </dev/null &
        pid=$!
        echo "$pid" >"$DIR/pids/$name.pid"
        # setsid does not fork here (the subshell is no process-group
        # leader), so $! is the daemon itself; check rather than trust it
        wait_until 5 "$name to start" is_ours "$name" "$pid" ||
                die "$name did not start: $(tail -n 5 "$DIR/log/$name.stdout")"
}

# Polls "$@" every 0.1 s until it succeeds or $1 seconds pass.
wait_until() {
        local limit=$1 what=$2 end
        shift 2
        end=$(($(date +%s) + ${limit%.*}))
        until "$@" >/dev/null 2>&1; do
                if [ "$(date +%s)" -ge "$end" ]; then
                        say "timed out after ${limit}s waiting for $what"
                        return 1
                fi
                sleep 0.1
        done
}

# Like wait_until, but gives up at once when daemon $1 has died.
wait_ready() {
        local name=$1 what=$2 end
        shift 2
        end=$(($(date +%s) + TIMEOUT))
        until "$@" >/dev/null 2>&1; do
                alive "$name" || die "$name died while starting; its log ends with:
$(tail -n 8 "$DIR/log/$name.stdout" 2>/dev/null)
$(tail -n 8 "$DIR/log/$name.log" 2>/dev/null)"
                [ "$(date +%s)" -lt "$end" ] || die "timed out after ${TIMEOUT}s waiting for $what"
                sleep 0.1
        done
}

# SIGTERM to each recorded daemon that is still ours, SIGKILL after 15 s.
stop_daemons() {
        local name pid pids=()
        for name in slurmrestd slurmd slurmctld munged; do
                pid=$(recorded_pid "$name")
                if is_ours "$name" "$pid"; then
                        kill -TERM "$pid" 2>/dev/null || true
                        pids+=("$name:$pid")
                fi
        done
        for entry in "${pids[@]}"; do
                if ! wait_until 15 "${entry%%:*} to stop" bash -c "! [ -d /proc/${entry#*:} ] ||
                    grep -q '^State:[[:space:]]*Z' /proc/${entry#*:}/status"; then
                        if is_ours "${entry%%:*}" "${entry#*:}"; then
                                kill -KILL "${entry#*:}" 2>/dev/null || true
                        fi
                fi
        done
        rm -f "$DIR"/pids/*.pid
}

# ---- install ----------------------------------------------------------------

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

install_packages() {
        local missing=() p made_policy=0
        for p in "${PKGS[@]}"; do
                installed "$p" || missing+=("$p")
        done
        command -v curl >/dev/null || missing+=(curl)
        [ ${#missing[@]} -gt 0 ] || return 0
        say "installing ${missing[*]}"
        # The packages' postinst would start the system's own slurm and munge
        # daemons; a policy-rc.d answering 101 stops invoke-rc.d from doing so.
        if [ ! -e /usr/sbin/policy-rc.d ]; then
                printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
                chmod 755 /usr/sbin/policy-rc.d
                made_policy=1
        fi
        if ! { apt-get -o DPkg::Lock::Timeout=600 update -qq &&
                DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
                        --no-install-recommends "${missing[@]}" >/dev/null; }; then
                [ $made_policy = 0 ] || rm -f /usr/sbin/policy-rc.d
                die "apt-get could not install ${missing[*]}"
        fi
        [ $made_policy = 0 ] || rm -f /usr/sbin/policy-rc.d
}

ensure_rest_user() {
        getent passwd "$REST_USER" >/dev/null && return 0
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
                --shell /usr/sbin/nologin "$REST_USER"
}

# ---- configuration ----------------------------------------------------------

# Ports something listens on now (TCP, v4 and v6), one per line, decimal.
listening_ports() {
        local f
        for f in /proc/net/tcp /proc/net/tcp6; do
                [ -r "$f" ] || continue
                # local_address is HEXADDR:HEXPORT, st 0A is LISTEN
                awk 'NR > 1 && $4 == "0A" { split($2, a, ":"); print a[2] }' "$f"
        done | while read -r hex; do echo $((16#$hex)); done
}

# Three distinct free ports in 20000-59999 (slurmctld, slurmd, slurmrestd).
# Picked by chance, checked against the listeners; the daemons fail loudly
# in the rare case that something takes one between here and their bind.
pick_ports() {
        local used ports=() p tries=0
        used=" $(listening_ports | tr '\n' ' ') "
        while [ ${#ports[@]} -lt 3 ]; do
                tries=$((tries + 1))
                [ $tries -lt 1000 ] || die "found no free TCP port"
                p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
                case "$used ${ports[*]:-} " in
                *" $p "*) continue ;;
                esac
                ports+=("$p")
        done
        CTLD_PORT=${ports[0]} SLURMD_PORT=${ports[1]} REST_PORT=${ports[2]}
        printf 'CTLD_PORT=%s\nSLURMD_PORT=%s\nREST_PORT=%s\n' "$CTLD_PORT" "$SLURMD_PORT" \
                "$REST_PORT" >"$DIR/etc/ports"
}

# The ports of the configuration in place.
read_ports() {
        CTLD_PORT=$(sed -n 's/^CTLD_PORT=//p' "$DIR/etc/ports")
        SLURMD_PORT=$(sed -n 's/^SLURMD_PORT=//p' "$DIR/etc/ports")
        REST_PORT=$(sed -n 's/^REST_PORT=//p' "$DIR/etc/ports")
        [ -n "$CTLD_PORT" ] && [ -n "$SLURMD_PORT" ] && [ -n "$REST_PORT" ]
}

any_alive() {
        local d
        for d in "${DAEMONS[@]}"; do
                ! alive "$d" || return 0
        done
        return 1
}

make_layout() {
        local fresh=0
        [ -e "$DIR/$MARK" ] || fresh=1
        if [ $fresh = 1 ] && [ -e "$DIR" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ]; then
                die "$DIR exists, is not empty and was not made by this script"
        fi
        mkdir -p "$DIR"
        touch "$DIR/$MARK"
        # every level must be executable for all: munged refuses a socket in
        # a 0700 directory, slurmctld (user slurm) must reach its spool
        chmod 755 "$DIR"
        mkdir -p "$DIR"/{etc,munge,run,pids,spool/ctld,spool/d,log,jobs}
        chmod 755 "$DIR"/etc "$DIR"/run "$DIR"/spool "$DIR"/log
        chmod 700 "$DIR"/munge "$DIR"/pids
        chmod 1777 "$DIR"/jobs
        chown slurm:slurm "$DIR"/spool/ctld "$DIR"/log
        if [ ! -s "$DIR/munge/munge.key" ]; then
                mungekey --create --keyfile="$DIR/munge/munge.key"
        fi
        chmod 600 "$DIR/munge/munge.key"
        if [ ! -s "$DIR/etc/jwt_hs256.key" ]; then
                dd if=/dev/urandom of="$DIR/etc/jwt_hs256.key" bs=32 count=1 status=none
        fi
        chown slurm:slurm "$DIR/etc/jwt_hs256.key"
        chmod 600 "$DIR/etc/jwt_hs256.key"
}

write_conf() {
        cat >"$DIR/etc/slurm.conf.new" <<EOF
# written by jobfs tests/slurm/cluster.sh; rewritten at every up
ClusterName=jobfs
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=slurm
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/run/munge.socket
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$DIR/etc/jwt_hs256.key
StateSaveLocation=$DIR/spool/ctld
SlurmdSpoolDir=$DIR/spool/d
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups: works in containers and VMs without a delegated hierarchy
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
# start batch jobs at once (the default 3 s delay doubles submit-to-RUNNING)
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# let the node claim $CPUS CPUs whatever the hardware has, so that several
# one-CPU test jobs run at once on a 2-core machine
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=$MIN_JOB_AGE
KillWait=5
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$CPUS ThreadsPerCore=1 RealMemory=4096 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
        chmod 644 "$DIR/etc/slurm.conf.new"
        mv "$DIR/etc/slurm.conf.new" "$SLURM_CONF"
}

# ---- readiness --------------------------------------------------------------

munge_ok() { munge -S "$DIR/run/munge.socket" -n | unmunge -S "$DIR/run/munge.socket"; }
ctld_ok() { scontrol ping | grep -q "is UP"; }
# responding ("idle*" or "down" is not), with or without jobs on it
node_ready() {
        case $(sinfo -h -n "$HOST" -o %T) in
        idle | mixed | allocated | completing) return 0 ;;
        esac
        return 1
}

# GET /slurm/v0.0.38/ping with the token: 200 and "UP".
rest_ok() {
        local url token
        url=$(sed -n 's/^SLURM_URL=//p' "$DIR/env" 2>/dev/null)
        token=$(sed -n 's/^SLURM_JWT=//p' "$DIR/env" 2>/dev/null)
        [ -n "$url" ] && [ -n "$token" ] || return 1
        # the token goes through a header file, never onto a command line
        curl -sf --max-time 5 -H @- "$url/slurm/v0.0.38/ping" <<EOF | grep -q '"UP"'
X-SLURM-USER-NAME: $(sed -n 's/^SLURM_USER=//p' "$DIR/env")
X-SLURM-USER-TOKEN: $token
EOF
}

all_alive() {
        local d
        for d in "${DAEMONS[@]}"; do
                alive "$d" || return 1
        done
}

write_env() {
        local user=$1 token=$2 tmp=$DIR/env.new
        (
                umask 077
                cat >"$tmp" <<EOF
JOBFS_SLURM_DIR=$DIR
SLURM_CONF=$SLURM_CONF
SLURM_URL=http://127.0.0.1:$REST_PORT
SLURM_JWT=$token
SLURM_USER=$user
SLURM_JOBDIR=$DIR/jobs
SLURM_TOKEN_FILE=$DIR/token
MUNGED_PID=$(recorded_pid munged)
SLURMCTLD_PID=$(recorded_pid slurmctld)
SLURMD_PID=$(recorded_pid slurmd)
SLURMRESTD_PID=$(recorded_pid slurmrestd)
EOF
                printf 'SLURM_JWT=%s\n' "$token" >"$DIR/token.new"
        )
        mv "$DIR/token.new" "$DIR/token"
        mv "$tmp" "$DIR/env"
}

# ---- commands -----------------------------------------------------------------

cmd_up() {
        local t0 user token
        t0=$(now)
        [ "$(id -u)" = 0 ] || die "up needs root (slurmd runs jobs as their users)"
        if [ -e "$DIR/$MARK" ] && all_alive && rest_ok; then
                say "already up: $(sed -n 's/^SLURM_URL=//p' "$DIR/env") (env: $DIR/env)"
                return 0
        fi
        install_packages
        ensure_rest_user
        if [ -e "$DIR/$MARK" ] && any_alive && read_ports 2>/dev/null; then
                # some daemons run (one died, or slurmrestd was stopped): keep
                # them, their ports and their jobs, and start what is missing
                say "restarting what is not running in $DIR"
        else
                stop_daemons 2>/dev/null || true       # what a half-start left
                make_layout
                pick_ports
                write_conf
        fi
        rm -f "$DIR/env"

        alive munged || start_daemon munged munged -F --key-file="$DIR/munge/munge.key" \
                --socket="$DIR/run/munge.socket" --pid-file="$DIR/run/munged.pid" \
                --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"
        wait_ready munged "munged to answer" munge_ok
        alive slurmctld || start_daemon slurmctld slurmctld -D -f "$SLURM_CONF"
        wait_ready slurmctld "slurmctld to answer ping" ctld_ok
        alive slurmd || start_daemon slurmd slurmd -D -f "$SLURM_CONF" -N "$HOST"
        wait_ready slurmd "node $HOST to be up" node_ready

        user=${JOBFS_SLURM_USER:-$(id -un)}
        token=$(scontrol token username="$user" lifespan=86400 | sed -n 's/^SLURM_JWT=//p')
        [ -n "$token" ] || die "scontrol token gave no token"
        # SLURM_JWT=daemon: slurmrestd takes each request's own token; without
        # it every JWT request is refused (401). The dbv0.0.3x plugins need
        # slurmdbd, and slurmrestd exits when asked to load them.
        alive slurmrestd || start_daemon slurmrestd env SLURM_JWT=daemon slurmrestd -f "$SLURM_CONF" \
                -a rest_auth/jwt -s openapi/v0.0.38,openapi/v0.0.37,openapi/v0.0.36 \
                -u "$REST_USER" -g "$REST_USER" "127.0.0.1:$REST_PORT"
        write_env "$user" "$token"
        wait_ready slurmrestd "slurmrestd to answer /ping" rest_ok
        say "up in $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s:" \
                "SLURM_URL=http://127.0.0.1:$REST_PORT (env: $DIR/env)"
}

cmd_down() {
        local t0
        t0=$(now)
        if [ ! -e "$DIR" ]; then
                say "nothing to stop in $DIR"
                return 0
        fi
        [ -e "$DIR/$MARK" ] || die "$DIR was not made by this script; not touching it"
        if alive slurmctld; then
                # cancel everything (pending included), then let running jobs end
                scancel --partition=debug >/dev/null 2>&1 || true
                wait_until 30 "jobs to end" bash -c \
                        "[ -z \"\$(squeue -h -t R,CG,S -o %i 2>/dev/null)\" ]" || true
        fi
        stop_daemons
        rm -rf -- "$DIR"
        say "down in $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s"
}

cmd_status() {
        local d ok=0
        [ -e "$DIR/$MARK" ] || { say "no cluster in $DIR"; return 1; }
        for d in "${DAEMONS[@]}"; do
                if alive "$d"; then
                        echo "$d: running (pid $(recorded_pid "$d"))"
                else
                        echo "$d: stopped"
                        ok=1
                fi
        done
        if rest_ok; then
                echo "rest: $(sed -n 's/^SLURM_URL=//p' "$DIR/env") answers UP"
        else
                echo "rest: not answering"
                ok=1
        fi
        return $ok
}

case ${1:-} in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
*)
        echo "usage: $0 up|down|status   (state in \$JOBFS_SLURM_DIR, default /tmp/jobfs-slurm)" >&2
        exit 2
        ;;
esac
