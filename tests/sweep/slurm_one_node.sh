#!/usr/bin/env bash
# slurm-one-node.sh - a private, throw-away one-node SLURM cluster
# (munged + slurmctld + slurmd) whose whole state lives in one folder.
#
#   slurm-one-node.sh start  DIR   start (or reuse) the cluster; on success the
#                                  only stdout line is: export SLURM_CONF=DIR/slurm.conf
#   slurm-one-node.sh stop   DIR   cancel its jobs, stop the three daemons, wait
#   slurm-one-node.sh status DIR   exit 0 when all three daemons are alive
#
# Needs root and the Debian packages slurm-wlm + munge (tested: 22.05.8 / 0.5.15).
# Client commands (sbatch, squeue, scancel, scontrol, srun, sinfo) only need
# SLURM_CONF: they read AuthInfo=socket=... from slurm.conf and talk to this
# cluster's own munged; no system munged or /etc/slurm/slurm.conf is used.
#
# Environment knobs:
#   SLURM_ONE_NODE_TIMEOUT     seconds to wait for each daemon / node idle (30)
#   SLURM_ONE_NODE_CRED_EXPIRE AuthInfo cred_expire = delay before a requeued
#                              job may start again (slurm default 120; here 10)
#   SLURM_ONE_NODE_KILLWAIT    KillWait, seconds between SIGTERM and SIGKILL (10)
#   SLURM_ONE_NODE_PROCTRACK   ProctrackType (proctrack/pgid). linuxproc loses
#                              orphaned grandchildren (they outlive the job);
#                              pgid kills the job's process group; cgroup (v1
#                              only, a cgroup.conf is written) is the most
#                              thorough but needs writable /sys/fs/cgroup.
#   SLURM_ONE_NODE_SCHED       SchedulerParameters (sched_interval=5,bf_interval=5;
#                              slurm's 60 s default delays requeued jobs)
#   SLURM_ONE_NODE_EXTRA_CONF  extra lines appended verbatim to slurm.conf
set -u
PROG=${0##*/}
PATH=$PATH:/usr/sbin:/sbin:/usr/bin:/bin
TIMEOUT=${SLURM_ONE_NODE_TIMEOUT:-30}

die() { echo "$PROG: $*" >&2; exit 1; }

need() {
    local b
    for b in "$@"; do
        command -v "$b" >/dev/null 2>&1 \
            || die "missing binary '$b' (apt-get install -y slurm-wlm munge)"
    done
}

pid_of() { [ -s "$1" ] && tr -dc '0-9' <"$1"; }
alive() { local p; p=$(pid_of "$1") && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

# wait_until SECONDS CMD... : poll CMD every 0.5 s until it succeeds
wait_until() {
    local end=$((SECONDS + $1)); shift
    until "$@"; do
        [ "$SECONDS" -ge "$end" ] && return 1
        sleep 0.5
    done
}

# a TCP port nobody uses (checked in /proc/net/tcp{,6}, every state)
port_in_use() {
    local hex; hex=$(printf ':%04X' "$1")
    awk -v h="$hex" 'FNR > 1 && substr($2, length($2) - 4) == h { f = 1 } END { exit !f }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
free_port() {   # free_port EXCLUDED_PORT
    local p i
    for i in $(seq 200); do
        p=$((20000 + RANDOM % 40000))
        [ "$p" = "${1:-0}" ] && continue
        port_in_use "$p" || { echo "$p"; return 0; }
    done
    return 1
}

ancestors() {    # $$ and all its ancestors
    local p=$$
    while [ -n "$p" ] && [ "$p" -gt 1 ]; do
        echo "$p"
        p=$(awk '{ print $4 }' "/proc/$p/stat" 2>/dev/null)
    done
}

sweep_job_procs() {
    local e p env comm skip victims=""
    skip=" $(ancestors | tr '\n' ' ') "
    for e in /proc/[0-9]*/environ; do
        p=${e#/proc/}; p=${p%/environ}
        case "$skip" in *" $p "*) continue ;; esac
        env=$( { tr '\0' '\n' <"$e"; } 2>/dev/null) || continue
        printf '%s\n' "$env" | grep -qxF "SLURM_CONF=$CONF" || continue
        comm=$(cat "/proc/$p/comm" 2>/dev/null)
        if [ "$comm" = slurmstepd ] || printf '%s\n' "$env" | grep -q '^SLURM_JOB_ID='; then
            victims="$victims $p"
        fi
    done
    # shellcheck disable=SC2086
    [ -n "$victims" ] && kill -KILL $victims 2>/dev/null
    return 0
}

set_paths() {   # set_paths DIR [create]
    [ -n "${1:-}" ] || die "usage: $PROG start|stop|status DIR"
    if [ -n "${2:-}" ]; then
        mkdir -p "$1" 2>/dev/null || die "cannot create $1"
    elif [ ! -d "$1" ]; then
        exit "${3:-0}"      # stop: nothing to do; status: not running
    fi
    DIR=$(cd "$1" && pwd -P) || die "cannot enter $1"
    CONF=$DIR/slurm.conf
    MDIR=$DIR/munge
    MSOCK=$MDIR/munge.socket
    MPID=$MDIR/munged.pid
    CPID=$DIR/slurmctld.pid
    DPID=$DIR/slurmd.pid
    export SLURM_CONF=$CONF
}

running() { alive "$MPID" && alive "$CPID" && alive "$DPID"; }

node_state() { sinfo -h -N -n "$HOST" -o %T 2>/dev/null | head -n1; }
node_idle() { [ "$(node_state)" = idle ]; }
munge_ok() { munge -n --socket="$MSOCK" 2>/dev/null | unmunge --socket="$MSOCK" >/dev/null 2>&1; }
ctld_ok() { alive "$CPID" && scontrol ping 2>/dev/null | grep -q 'is UP'; }

fail_start() {   # fail_start MSG DAEMON: one-line message, tear down what was started
    local msg=$1 f last=""
    for f in "$DIR/log/$2.out" "$DIR/log/$2.log"; do   # stderr first, then the log
        [ -s "$f" ] && last=$(grep -v '^[[:space:]]*$' "$f" | tail -n1) && break
    done
    do_stop >/dev/null 2>&1
    die "$msg${last:+ (last log line: $last)}"
}

do_start() {
    need munged munge unmunge slurmctld slurmd sinfo scontrol squeue scancel \
         hostname nproc free awk dd tr
    [ "$(id -u)" = 0 ] || die "must run as root"
    HOST=$(hostname -s)

    if running && node_idle; then
        echo "export SLURM_CONF=$CONF"
        return 0
    fi
    do_stop >/dev/null 2>&1     # leftovers from an earlier, broken start

    mkdir -p "$MDIR" "$DIR/state" "$DIR/spool" "$DIR/log" || die "cannot populate $DIR"
    chmod 0755 "$DIR" "$MDIR"
    chmod 0700 "$DIR/state" "$DIR/spool"
    rm -f "$DIR"/log/*.log       # fresh logs, so error messages quote this start

    # ---- munge, with its own key/socket/pid/log/seed ---------------------
    if [ ! -s "$MDIR/munge.key" ]; then
        dd if=/dev/urandom of="$MDIR/munge.key" bs=1024 count=1 status=none \
            || die "cannot write $MDIR/munge.key"
    fi
    chmod 0400 "$MDIR/munge.key"
    rm -f "$MSOCK" "$MSOCK.lock" "$MPID"
    munged --force --key-file="$MDIR/munge.key" --socket="$MSOCK" \
           --pid-file="$MPID" --log-file="$DIR/log/munged.log" \
           --seed-file="$MDIR/munged.seed" \
           </dev/null >"$DIR/log/munged.out" 2>&1 \
        || fail_start "munged failed to start" munged
    wait_until "$TIMEOUT" munge_ok \
        || fail_start "munged not answering on $MSOCK within ${TIMEOUT}s" munged

    # ---- slurm.conf ---------------------------------------------------------
    local cpus mem real cport dport proctrack
    proctrack=${SLURM_ONE_NODE_PROCTRACK:-proctrack/pgid}
    if [ "$proctrack" = proctrack/cgroup ] && [ ! -f "$DIR/cgroup.conf" ]; then
        printf '%s\n' CgroupPlugin=cgroup/v1 CgroupMountpoint=/sys/fs/cgroup \
            CgroupAutomount=no >"$DIR/cgroup.conf"   # read from slurm.conf's folder
    fi
    cpus=$(nproc)
    mem=$(free -m | awk '/^Mem:/ { print $2 }')
    real=$((mem - mem / 10))                   # 10 % margin
    [ "$real" -lt 1 ] && real=1
    cport=$(free_port) || die "no free TCP port found"
    dport=$(free_port "$cport") || die "no free TCP port found"

    cat >"$CONF" <<EOF
# generated by $PROG for $DIR
ClusterName=onenode
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$cport
SlurmdPort=$dport
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MSOCK,cred_expire=${SLURM_ONE_NODE_CRED_EXPIRE:-10}
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$CPID
SlurmdPidFile=$DPID
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MpiDefault=none
ProctrackType=$proctrack
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
SchedulerType=sched/backfill
SchedulerParameters=${SLURM_ONE_NODE_SCHED:-sched_interval=5,bf_interval=5}
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
KillWait=${SLURM_ONE_NODE_KILLWAIT:-10}
OverTimeLimit=0
MinJobAge=300
InactiveLimit=0
SlurmdTimeout=300
MessageTimeout=10
MailProg=/bin/true
NodeName=$HOST NodeAddr=127.0.0.1 NodeHostname=$HOST CPUs=$cpus RealMemory=$real State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
${SLURM_ONE_NODE_EXTRA_CONF:-}
EOF

    # ---- slurmctld, slurmd ----------------------------------------------------
    rm -f "$CPID" "$DPID"
    slurmctld -c -f "$CONF" </dev/null >"$DIR/log/slurmctld.out" 2>&1 \
        || fail_start "slurmctld failed to start" slurmctld
    wait_until "$TIMEOUT" ctld_ok \
        || fail_start "slurmctld not up within ${TIMEOUT}s" slurmctld
    slurmd -c -f "$CONF" </dev/null >"$DIR/log/slurmd.out" 2>&1 \
        || fail_start "slurmd failed to start" slurmd
    wait_until "$TIMEOUT" node_idle \
        || fail_start "node $HOST not idle within ${TIMEOUT}s (state: $(node_state))" slurmd
    running || fail_start "a daemon died during start" slurmctld

    echo "export SLURM_CONF=$CONF"
}

do_stop() {
    local f p pids
    # 1. cancel every job (SIGTERM, SIGKILL after KillWait) while slurmctld still runs
    if [ -f "$CONF" ] && alive "$CPID"; then
        pids=$(squeue -h -o %i 2>/dev/null)
        if [ -n "$pids" ]; then
            # shellcheck disable=SC2086
            scancel $pids 2>/dev/null
            wait_until $(( ${SLURM_ONE_NODE_KILLWAIT:-10} + 10 )) \
                sh -c '[ -z "$(squeue -h -t PD,R,CG,S,CF -o %i 2>/dev/null)" ]'
        fi
    fi
    # 2. the slurm daemons
    pids=""
    for f in "$DPID" "$CPID"; do
        alive "$f" && p=$(pid_of "$f") && kill -TERM "$p" 2>/dev/null && pids="$pids $p"
    done
    for p in $pids; do
        wait_until 15 sh -c "! kill -0 $p 2>/dev/null" || kill -KILL "$p" 2>/dev/null
    done
    rm -f "$DPID" "$CPID"
    # 3. leftovers of this cluster's jobs: every process whose environment has
    #    SLURM_CONF=$CONF (slurmd/stepd pass it on even with --export=NONE) and
    #    SLURM_JOB_ID, or that is a slurmstepd started by our slurmd; orphans
    #    escape proctrack/linuxproc and processes that setsid() escape pgid.
    sweep_job_procs
    # 4. munged last (scancel above needed it)
    if alive "$MPID"; then
        p=$(pid_of "$MPID")
        kill -TERM "$p" 2>/dev/null
        wait_until 10 sh -c "! kill -0 $p 2>/dev/null" || kill -KILL "$p" 2>/dev/null
    fi
    rm -f "$MPID"
    return 0
}

cmd=${1:-}
case "$cmd" in
    start)  set_paths "${2:-}" create; do_start ;;
    stop)   set_paths "${2:-}"; do_stop ;;
    status) set_paths "${2:-}" "" 1; running ;;
    *)      die "usage: $PROG start|stop|status DIR" ;;
esac
