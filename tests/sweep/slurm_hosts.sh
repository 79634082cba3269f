#!/usr/bin/env bash
# slurm_hosts.sh - a private, throw-away two-host SLURM cluster on one machine
# (munged + slurmctld in the root namespaces, one slurmd per "host" in its own
# network, UTS and mount namespace) whose whole state lives in one folder.
#
#   slurm_hosts.sh start       DIR       start (or reuse) the cluster; on success the
#                                        only stdout line is: export SLURM_CONF=DIR/slurm.conf
#   slurm_hosts.sh stop        DIR       cancel its jobs, stop the daemons, kill what is
#                                        left in the hosts' namespaces, delete namespaces,
#                                        veths and bridge; idempotent, never fails
#   slurm_hosts.sh status      DIR       one line per daemon/host; exit 0 when munged,
#                                        slurmctld and both slurmds are alive
#   slurm_hosts.sh kill-host   DIR HOST  the host dies abruptly: SIGKILL every process in
#                                        its network namespace (slurmd, slurmstepd, the
#                                        job's processes), then its link goes down (a dead
#                                        host drops packets; SLURM_HOSTS_KILL_LINK=0 keeps
#                                        it up, so peers get "connection refused" instead)
#   slurm_hosts.sh revive-host DIR HOST  link up, start HOST's slurmd again, wait until
#                                        SLURM has it back (scontrol ... state=resume if
#                                        it does not return by itself)
#   slurm_hosts.sh net-down    DIR HOST  network partition: HOST's link down, processes live
#   slurm_hosts.sh net-up      DIR HOST  end of the partition
#   slurm_hosts.sh netns       DIR HOST  print /run/netns/<name> of HOST (n1, n2, foreign),
#                                        for: nsenter --net=$(slurm_hosts.sh netns DIR n2) CMD
#
# Layout: a bridge in the root network namespace holding .1 of a private /24
# that is not in use here (checked against every address, route and resolver
# of this machine), and four network namespaces on it: n1 (.11, CPUs=2) and
# n2 (.12, CPUs=1) in the default partition "hosts", n3 (.14, CPUs=2) alone in
# the partition "single" (one-node jobs beside a multi-host one), and
# "foreign" (.13, no slurmd: a stranger on the same
# network). Each has lo and eth0 up and NO default route: the hosts reach only
# each other and the bridge address, nothing leaves the machine.
# slurmctld listens on the bridge address (SlurmctldHost=<this host>(<.1>)).
# Each slurmd runs under `nsenter --net` (not `ip netns exec`, which remounts
# /sys without the cgroup mounts slurmd 22.05 checks) + `unshare --uts --mount`
# (private propagation), so that on that host, and in every job step there:
#   - `hostname` says n1 / n2;
#   - /etc/hosts is DIR/hosts/<h>/hosts (n1, n2, foreign and this machine's
#     name resolve to their bridge addresses; the real /etc/hosts is untouched);
#   - DIR/r is DIR/hosts/<h>/r: give the jobs RAY_TMPDIR=DIR/r (the same string
#     on both hosts) and each host has its own Ray temp folder. Also
#     DIR/r/tmp exists there, for TMPDIR=DIR/r/tmp. Keep DIR short (Ray's
#     socket paths under DIR/r must stay below 107 bytes).
#   /tmp stays shared: the jobs' project and results folders (and DIR itself,
#   e.g. from mkdtemp) often live under /tmp, and a private /tmp would hide them.
#   SLURM_HOSTS_PRIVATE_TMP=1 binds DIR/hosts/<h>/tmp over /tmp anyway; refused
#   when DIR is under /tmp.
# Names (bridge, veths, namespaces) carry a random suffix kept in DIR/hosts.env
# (sourceable: SH_BRIDGE, SH_NET, SH_CTLD_IP, SH_NS_n1, SH_IP_n1, ...), so two
# clusters never collide.
#
# Needs root, slurm-wlm + munge (tested: 22.05.8 / 0.5.15), iproute2,
# util-linux (nsenter, unshare, flock). Client commands (sbatch, squeue,
# scancel, scontrol, srun, sinfo) only need SLURM_CONF, from any namespace.
#
# Environment knobs:
#   SLURM_HOSTS_TIMEOUT        seconds to wait for each daemon / node state (30)
#   SLURM_HOSTS_CRED_EXPIRE    AuthInfo cred_expire (10; slurm default 120)
#   SLURM_HOSTS_KILLWAIT       KillWait, seconds between SIGTERM and SIGKILL (10)
#   SLURM_HOSTS_SLURMD_TIMEOUT SlurmdTimeout: how soon a silent host is DOWN (15)
#   SLURM_HOSTS_SCHED          SchedulerParameters (sched_interval=5,bf_interval=5)
#   SLURM_HOSTS_KILL_LINK      kill-host also takes the host's link down (1)
#   SLURM_HOSTS_PRIVATE_TMP    bind a per-host folder over /tmp (0; see above)
#   SLURM_HOSTS_EXTRA_CONF     extra lines appended verbatim to slurm.conf
set -u
PROG=${0##*/}
PATH=$PATH:/usr/sbin:/sbin:/usr/bin:/bin
TIMEOUT=${SLURM_HOSTS_TIMEOUT:-30}
HOSTS="n1 n2 n3"              # hosts with a slurmd
ALL_NS="n1 n2 n3 foreign"     # every namespace on the bridge
USAGE="usage: $PROG start|stop|status DIR | kill-host|revive-host|net-down|net-up|netns DIR HOST"
LOCK=/run/lock/slurm_hosts.net.lock

die() { echo "$PROG: $*" >&2; exit 1; }

need() {
    local b
    for b in "$@"; do
        command -v "$b" >/dev/null 2>&1 \
            || die "missing binary '$b' (apt-get install -y slurm-wlm munge iproute2 util-linux)"
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

# a TCP port nobody uses in the root namespace (checked in /proc/net/tcp{,6})
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

# every process whose environment has SLURM_CONF=$CONF and SLURM_JOB_ID, or
# that is a slurmstepd of this cluster (jobs that setsid() escape proctrack/pgid)
sweep_job_procs() {
    local e p comm skip victims=""
    skip=" $(ancestors | tr '\n' ' ') "
    for e in $(grep -lzxF "SLURM_CONF=$CONF" /proc/[0-9]*/environ 2>/dev/null); do
        p=${e#/proc/}; p=${p%/environ}
        case "$skip" in *" $p "*) continue ;; esac
        comm=$(cat "/proc/$p/comm" 2>/dev/null)
        if [ "$comm" = slurmstepd ] || grep -qz '^SLURM_JOB_ID=' "$e" 2>/dev/null; then
            victims="$victims $p"
        fi
    done
    # shellcheck disable=SC2086
    [ -n "$victims" ] && kill -KILL $victims 2>/dev/null
    return 0
}

# ---- network helpers ---------------------------------------------------------
ip2int() { local a b c d; IFS=. read -r a b c d <<<"$1"; echo $(((a << 24) | (b << 16) | (c << 8) | d)); }

# overlaps A/LA B/LB : the two prefixes share an address
overlaps() {
    local a b l m
    a=$(ip2int "$1"); b=$(ip2int "$3"); l=$2
    [ "$4" -lt "$l" ] && l=$4
    m=$(( l == 0 ? 0 : (0xFFFFFFFF << (32 - l)) & 0xFFFFFFFF ))
    [ $((a & m)) -eq $((b & m)) ]
}

# every prefix this machine knows of: addresses, routes (all tables, except
# default routes), resolvers; plus docker's usual 172.17/16
used_prefixes() {
    {
        ip -4 -o addr show 2>/dev/null | awk '{ print $4 }'
        ip -4 route show table all 2>/dev/null | awk '
            $1 ~ /^(local|broadcast|unicast|blackhole|unreachable|prohibit|throw|anycast|multicast)$/ { print $2; next }
            { print $1 }'
        awk '$1 == "nameserver" { print $2 }' /etc/resolv.conf 2>/dev/null
        echo 172.17.0.0/16
    } | grep -E '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+(/[0-9]+)?$' | grep -v '^0\.0\.0\.0/0$' \
      | awk -F/ '{ print $1, ($2 == "" ? 32 : $2) }'
}

# pick_subnet: print "172.X.Y" whose /24 overlaps nothing this machine uses
pick_subnet() {
    local i net used a l ok
    used=$(used_prefixes)
    for i in $(seq 200); do
        net="172.$((16 + RANDOM % 16)).$((RANDOM % 256))"
        ok=1
        while read -r a l; do
            [ -n "$a" ] || continue
            overlaps "$net.0" 24 "$a" "$l" && { ok=0; break; }
        done <<<"$used"
        [ "$ok" = 1 ] && { echo "$net"; return 0; }
    done
    return 1
}

rand_hex() { od -An -N4 -tx1 /dev/urandom | tr -d ' \n' | cut -c1-"$1"; }

ns_path() { echo "/run/netns/$1"; }
ns_exists() { [ -e "/run/netns/$1" ]; }
# SIGKILL every process in network namespace $1 (several rounds: forks race us)
ns_kill_all() {
    local ns=$1 i pids
    ns_exists "$ns" || return 0
    for i in $(seq 20); do
        pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
        [ -z "${pids// /}" ] && return 0
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null
        sleep 0.2
    done
    return 1
}

load_env() { [ -s "$ENVF" ] && . "$ENVF"; }   # SH_* variables of this DIR

# ---- paths -----------------------------------------------------------------------
set_paths() {   # set_paths DIR [create] [exit-code-when-missing]
    [ -n "${1:-}" ] || die "$USAGE"
    if [ -n "${2:-}" ]; then
        mkdir -p "$1" 2>/dev/null || die "cannot create $1"
    elif [ ! -d "$1" ]; then
        exit "${3:-0}"      # stop: nothing to do; status: not running
    fi
    DIR=$(cd "$1" && pwd -P) || die "cannot enter $1"
    case "$DIR" in *[[:space:]]*) die "DIR must not contain white space: $DIR" ;; esac
    CONF=$DIR/slurm.conf
    ENVF=$DIR/hosts.env
    MDIR=$DIR/munge
    MSOCK=$MDIR/munge.socket
    MPID=$MDIR/munged.pid
    CPID=$DIR/slurmctld.pid
    export SLURM_CONF=$CONF
}

dpid() { echo "$DIR/hosts/$1/slurmd.pid"; }
ns_var() { local v="SH_NS_$1"; echo "${!v:-}"; }     # ns_var n1 -> namespace name
ip_var() { local v="SH_IP_$1"; echo "${!v:-}"; }

check_host() {  # check_host HOST [slurmd]: HOST is one of ALL_NS (of HOSTS)
    local set=$ALL_NS
    [ -n "${2:-}" ] && set=$HOSTS
    case " $set " in
        *" $1 "*) ;;
        *) die "unknown host '$1' (one of: $set)" ;;
    esac
}

running() {
    local h
    alive "$MPID" && alive "$CPID" || return 1
    for h in $HOSTS; do alive "$(dpid "$h")" || return 1; done
}

node_state() { sinfo -h -N -n "$1" -o %T 2>/dev/null | head -n1; }
node_idle() { [ "$(node_state "$1")" = idle ]; }
all_idle() { local h; for h in $HOSTS; do node_idle "$h" || return 1; done; }
# back in service: responding (no '*') and usable (not down/drain/fail/unknown)
node_serving() {
    local s; s=$(node_state "$1")
    case "$s" in
        ""|*'*'|down*|drain*|fail*|unk*|inval*|future*|power*|*~|*#|*%) return 1 ;;
    esac
    return 0
}
munge_ok() { munge -n --socket="$MSOCK" 2>/dev/null | unmunge --socket="$MSOCK" >/dev/null 2>&1; }
ctld_ok() { alive "$CPID" && scontrol ping 2>/dev/null | grep -q 'is UP'; }
# no job left to start or run, and no slurmstepd left on our hosts
jobs_settled() {
    local p n
    [ -z "$(squeue -h -t PD,R,S,CF -o %i 2>/dev/null)" ] || return 1
    for p in $(pgrep -x slurmstepd); do
        n=$(ip netns identify "$p" 2>/dev/null) || continue
        case " $(for h in $ALL_NS; do ns_var "$h"; done | tr '\n' ' ') " in
            *" $n "*) return 1 ;;
        esac
    done
    return 0
}

fail_start() {   # fail_start MSG LOGNAME: one-line message, tear down what was started
    local msg=$1 f last=""
    for f in "$DIR/log/$2.out" "$DIR/log/$2.log"; do   # stderr first, then the log
        [ -s "$f" ] && last=$(grep -v '^[[:space:]]*$' "$f" | tail -n1) && break
    done
    do_stop >/dev/null 2>&1
    die "$msg${last:+ (last log line: $last)}"
}

# ---- network set-up ----------------------------------------------------------
net_up() {
    local sfx net h i ns vr vp
    mkdir -p "${LOCK%/*}" 2>/dev/null
    exec 9>"$LOCK" || die "cannot open $LOCK"
    flock -w 60 9 || die "another $PROG holds $LOCK for 60 s"

    for i in $(seq 50); do       # a suffix no bridge/namespace uses yet
        sfx=$(rand_hex 5)
        ip link show "shb$sfx" >/dev/null 2>&1 && continue
        ls /run/netns/sh"$sfx"-* >/dev/null 2>&1 && continue
        break
    done
    net=$(pick_subnet) || { exec 9>&-; die "no free private /24 found in 172.16.0.0/12"; }

    # written before anything is created, so that stop finds a half-built network
    {
        echo "SH_SUFFIX=$sfx"
        echo "SH_NET=$net"
        echo "SH_BRIDGE=shb$sfx"
        echo "SH_CTLD_IP=$net.1"
        for h in $ALL_NS; do
            case "$h" in n1) i=11 ;; n2) i=12 ;; foreign) i=13 ;; n3) i=14 ;; esac
            echo "SH_NS_$h=sh$sfx-$h"
            echo "SH_IP_$h=$net.$i"
            echo "SH_VETH_$h=shv$sfx${h:0:1}${h:1:1}"
        done
    } >"$ENVF" || { exec 9>&-; die "cannot write $ENVF"; }
    load_env

    ip link add "$SH_BRIDGE" type bridge \
        && ip addr add "$SH_CTLD_IP/24" dev "$SH_BRIDGE" \
        && ip link set "$SH_BRIDGE" up \
        || { exec 9>&-; fail_start "cannot create bridge $SH_BRIDGE ($net.0/24)" none; }
    exec 9>&-       # our /24 now shows in `ip route`: other starts will avoid it

    for h in $ALL_NS; do
        ns=$(ns_var "$h"); vr="SH_VETH_$h"; vr=${!vr}; vp="shp${vr#shv}"
        ip netns add "$ns" \
            && ip link add "$vr" type veth peer name "$vp" \
            && ip link set "$vp" netns "$ns" \
            && ip link set "$vr" master "$SH_BRIDGE" \
            && ip link set "$vr" up \
            && nsenter --net="$(ns_path "$ns")" sh -c "
                   ip link set lo up && ip link set '$vp' name eth0 &&
                   ip addr add '$(ip_var "$h")/24' dev eth0 && ip link set eth0 up" \
            || fail_start "cannot set up network namespace $ns for $h" none
    done
}

net_down() {
    local h ns vr
    load_env || return 0
    for h in $ALL_NS; do
        ns=$(ns_var "$h")
        [ -n "$ns" ] || continue
        ns_kill_all "$ns"
        ns_exists "$ns" && ip netns del "$ns" 2>/dev/null
    done
    for h in $ALL_NS; do          # deleting a namespace deletes its veth pair; in case not
        vr="SH_VETH_$h"; vr=${!vr:-}
        [ -n "$vr" ] && ip link show "$vr" >/dev/null 2>&1 && ip link del "$vr" 2>/dev/null
    done
    [ -n "${SH_BRIDGE:-}" ] && ip link show "$SH_BRIDGE" >/dev/null 2>&1 \
        && ip link del "$SH_BRIDGE" 2>/dev/null
    return 0
}

host_link() {   # host_link HOST up|down
    nsenter --net="$(ns_path "$(ns_var "$1")")" ip link set eth0 "$2"
}

# ---- slurmd of one host --------------------------------------------------------
write_hosts_file() {   # write_hosts_file HOST
    local h f=$DIR/hosts/$1/hosts
    {
        echo "# written by $PROG for $DIR: /etc/hosts of host $1"
        echo "127.0.0.1 localhost"
        echo "::1 localhost ip6-localhost ip6-loopback"
        echo "$SH_CTLD_IP $CTLD_NAME"
        for h in $ALL_NS; do echo "$(ip_var "$h") $h"; done
    } >"$f"
}

start_slurmd() {   # start_slurmd HOST
    local h=$1 ns hd=$DIR/hosts/$1 ptmp=""
    ns=$(ns_var "$h")
    ns_exists "$ns" || die "network namespace $ns of $h is missing (start again)"
    mkdir -p "$hd/spool" "$hd/r/tmp" "$hd/tmp" "$DIR/r" || die "cannot populate $hd"
    chmod 0700 "$hd/spool"
    chmod 1777 "$hd/r/tmp" "$hd/tmp"
    write_hosts_file "$h" || die "cannot write $hd/hosts"
    [ "${SLURM_HOSTS_PRIVATE_TMP:-0}" = 1 ] && ptmp=$hd/tmp
    rm -f "$(dpid "$h")"
    # hostname, /etc/hosts, DIR/r (and /tmp) of this host only: private mount
    # propagation, so none of the binds shows in the root mount namespace
    nsenter --net="$(ns_path "$ns")" -- \
        unshare --uts --mount --propagation private -- /bin/sh -c '
            set -e
            hostname "$1"
            mount --bind "$2/hosts" /etc/hosts
            mount --bind "$2/r" "$3/r"
            [ -z "$5" ] || mount --bind "$5" /tmp
            exec slurmd -f "$4" -N "$1"' \
        sh "$h" "$hd" "$DIR" "$CONF" "$ptmp" \
        </dev/null >"$DIR/log/slurmd.$h.out" 2>&1
}

# ---- start -----------------------------------------------------------------------
do_start() {
    need munged munge unmunge slurmctld slurmd sinfo scontrol squeue scancel \
         hostname awk dd tr od ip nsenter unshare flock mount pgrep grep
    [ "$(id -u)" = 0 ] || die "must run as root"
    CTLD_NAME=$(hostname -s)
    if [ "${SLURM_HOSTS_PRIVATE_TMP:-0}" = 1 ]; then
        case "$DIR/" in /tmp/*) die "SLURM_HOSTS_PRIVATE_TMP=1 would hide $DIR (under /tmp) from the hosts" ;; esac
    fi

    if load_env && running && all_idle; then
        echo "export SLURM_CONF=$CONF"
        return 0
    fi
    do_stop >/dev/null 2>&1     # leftovers from an earlier, broken start

    mkdir -p "$MDIR" "$DIR/state" "$DIR/log" "$DIR/r" || die "cannot populate $DIR"
    for h in $HOSTS; do mkdir -p "$DIR/hosts/$h" || die "cannot populate $DIR"; done
    chmod 0755 "$DIR" "$MDIR"
    chmod 0700 "$DIR/state"
    rm -f "$DIR"/log/*.log "$DIR"/log/*.out   # fresh logs, so error messages quote this start

    # ---- network: bridge + three namespaces -----------------------------------
    net_up

    # ---- munge, with its own key/socket/pid/log/seed ---------------------
    if [ ! -s "$MDIR/munge.key" ]; then
        dd if=/dev/urandom of="$MDIR/munge.key" bs=1024 count=1 status=none \
            || fail_start "cannot write $MDIR/munge.key" none
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
    local cport dport h
    cport=$(free_port) || fail_start "no free TCP port found" none
    dport=$(free_port "$cport") || fail_start "no free TCP port found" none

    cat >"$CONF" <<EOF
# generated by $PROG for $DIR (network $SH_NET.0/24, bridge $SH_BRIDGE)
ClusterName=twohosts
SlurmctldHost=$CTLD_NAME($SH_CTLD_IP)
SlurmctldPort=$cport
SlurmdPort=$dport
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MSOCK,cred_expire=${SLURM_HOSTS_CRED_EXPIRE:-10}
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/hosts/%n/spool
SlurmctldPidFile=$CPID
SlurmdPidFile=$DIR/hosts/%n/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.%n.log
SlurmctldDebug=info
SlurmdDebug=info
# the hosts' CPUs are configured, not detected (n2 has fewer than the machine)
SlurmdParameters=config_overrides
MpiDefault=none
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
SchedulerType=sched/backfill
SchedulerParameters=${SLURM_HOSTS_SCHED:-sched_interval=5,bf_interval=5}
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
KillWait=${SLURM_HOSTS_KILLWAIT:-10}
OverTimeLimit=0
MinJobAge=300
InactiveLimit=0
SlurmdTimeout=${SLURM_HOSTS_SLURMD_TIMEOUT:-15}
MessageTimeout=10
MailProg=/bin/true
NodeName=n1 NodeAddr=$SH_IP_n1 NodeHostname=n1 CPUs=2 RealMemory=1000 State=UNKNOWN
NodeName=n2 NodeAddr=$SH_IP_n2 NodeHostname=n2 CPUs=1 RealMemory=1000 State=UNKNOWN
NodeName=n3 NodeAddr=$SH_IP_n3 NodeHostname=n3 CPUs=2 RealMemory=1000 State=UNKNOWN
PartitionName=hosts Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP
PartitionName=single Nodes=n3 MaxTime=INFINITE State=UP
${SLURM_HOSTS_EXTRA_CONF:-}
EOF

    # ---- slurmctld (root namespaces), one slurmd per host ----------------------
    rm -f "$CPID"
    slurmctld -c -f "$CONF" </dev/null >"$DIR/log/slurmctld.out" 2>&1 \
        || fail_start "slurmctld failed to start" slurmctld
    wait_until "$TIMEOUT" ctld_ok \
        || fail_start "slurmctld not up within ${TIMEOUT}s" slurmctld
    for h in $HOSTS; do
        start_slurmd "$h" || fail_start "slurmd of $h failed to start" "slurmd.$h"
    done
    for h in $HOSTS; do
        wait_until "$TIMEOUT" node_idle "$h" \
            || fail_start "node $h not idle within ${TIMEOUT}s (state: $(node_state "$h"))" "slurmd.$h"
    done
    running || fail_start "a daemon died during start" slurmctld

    echo "export SLURM_CONF=$CONF"
}

# ---- stop ------------------------------------------------------------------------
stop_daemon() {   # stop_daemon PIDFILE SECONDS: SIGTERM, SIGKILL after SECONDS, pid file removed
    local p
    if alive "$1"; then
        p=$(pid_of "$1")
        kill -TERM "$p" 2>/dev/null
        wait_until "$2" sh -c "! kill -0 $p 2>/dev/null" || kill -KILL "$p" 2>/dev/null
    fi
    rm -f "$1"
}

do_stop() {
    local f p pids h m
    load_env
    # 1. cancel every job (SIGTERM, SIGKILL after KillWait) while slurmctld still
    #    runs; wait until the live hosts' slurmstepds are gone (a job on a dead
    #    host stays COMPLETING until SlurmdTimeout: not worth waiting for)
    if [ -f "$CONF" ] && alive "$CPID"; then
        pids=$(squeue -h -o %i 2>/dev/null)
        if [ -n "$pids" ]; then
            # shellcheck disable=SC2086
            scancel $pids 2>/dev/null
            wait_until $(( ${SLURM_HOSTS_KILLWAIT:-10} + 5 )) jobs_settled
        fi
    fi
    # 2. the slurmds (SIGTERM, then SIGKILL with everything else on the hosts:
    #    leftover job processes, a test's nsenter commands), then slurmctld
    pids=""
    for h in $HOSTS; do
        f=$(dpid "$h")
        alive "$f" && p=$(pid_of "$f") && kill -TERM "$p" 2>/dev/null && pids="$pids $p"
    done
    for p in $pids; do       # their state is thrown away: no long grace
        wait_until 2 sh -c "! kill -0 $p 2>/dev/null"
    done
    for h in $ALL_NS; do
        [ -n "$(ns_var "$h")" ] && ns_kill_all "$(ns_var "$h")"
    done
    for p in $pids; do kill -KILL "$p" 2>/dev/null; done   # in case its namespace is gone
    for h in $HOSTS; do rm -f "$(dpid "$h")"; done
    stop_daemon "$CPID" 15
    # 3. this cluster's job processes anywhere else
    sweep_job_procs
    # 4. munged last (scancel above needed it)
    stop_daemon "$MPID" 10
    # 5. namespaces, veths, bridge
    net_down
    # 6. a bind of ours that leaked into this mount namespace (should not happen)
    for m in $(awk -v d="$DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo 2>/dev/null | sort -r); do
        umount -l "$m" 2>/dev/null
    done
    return 0
}

# ---- per-host commands -------------------------------------------------------------
do_kill_host() {
    local h=$1 ns
    load_env || die "no cluster in $DIR"
    ns=$(ns_var "$h")
    ns_exists "$ns" || die "network namespace $ns of $h is missing"
    ns_kill_all "$ns" || die "processes in $ns survived SIGKILL"
    rm -f "$(dpid "$h")"
    if [ "${SLURM_HOSTS_KILL_LINK:-1}" = 1 ]; then
        host_link "$h" down || die "cannot take $h's link down"
    fi
    return 0
}

do_revive_host() {
    local h=$1 ns
    need slurmd sinfo scontrol nsenter unshare mount hostname
    load_env || die "no cluster in $DIR"
    alive "$CPID" || die "slurmctld is not running (start the cluster first)"
    CTLD_NAME=$(hostname -s)
    ns=$(ns_var "$h")
    ns_exists "$ns" || die "network namespace $ns of $h is missing"
    host_link "$h" up || die "cannot bring $h's link up"
    if ! alive "$(dpid "$h")"; then
        ns_kill_all "$ns"        # stray processes of the dead host
        start_slurmd "$h" || die "slurmd of $h failed to start$(tail -n1 "$DIR/log/slurmd.$h.out" 2>/dev/null | sed 's/^/: /')"
        wait_until "$TIMEOUT" alive "$(dpid "$h")" || die "slurmd of $h did not stay up"
    fi
    # ReturnToService=2 brings a node that was DOWN for not responding back
    # when its slurmd registers; anything else (drained, down by an admin): resume
    if ! wait_until $((TIMEOUT / 2)) node_serving "$h"; then
        scontrol update nodename="$h" state=resume 2>/dev/null
        wait_until "$TIMEOUT" node_serving "$h" \
            || die "node $h not back within ${TIMEOUT}s (state: $(node_state "$h"))"
    fi
    return 0
}

do_status() {
    local h ns p rc=0
    load_env
    if alive "$MPID"; then echo "munged alive pid=$(pid_of "$MPID")"; else echo "munged dead"; rc=1; fi
    if alive "$CPID"; then
        echo "slurmctld alive pid=$(pid_of "$CPID") addr=${SH_CTLD_IP:-?}"
    else
        echo "slurmctld dead"; rc=1
    fi
    for h in $ALL_NS; do
        ns=$(ns_var "$h")
        p="-"
        case " $HOSTS " in
            *" $h "*) if alive "$(dpid "$h")"; then p="alive pid=$(pid_of "$(dpid "$h")")"; else p=dead; rc=1; fi ;;
        esac
        echo "$h slurmd=${p// /,} ip=$(ip_var "$h") netns=$(ns_path "${ns:-?}")$(ns_exists "${ns:-?}" || echo ' (missing)')$(
            case " $HOSTS " in *" $h "*) alive "$CPID" && echo " state=$(node_state "$h")" ;; esac)"
    done
    return $rc
}

cmd=${1:-}
case "$cmd" in
    start)  set_paths "${2:-}" create; do_start ;;
    stop)   set_paths "${2:-}"; do_stop ;;
    status) set_paths "${2:-}" "" 1; do_status ;;
    kill-host|revive-host|net-down|net-up|netns)
            [ -n "${3:-}" ] || die "$USAGE"
            set_paths "${2:-}" "" 1
            case "$cmd" in
                kill-host)   check_host "$3" slurmd; do_kill_host "$3" ;;
                revive-host) check_host "$3" slurmd; do_revive_host "$3" ;;
                net-down|net-up)
                    check_host "$3"; load_env || die "no cluster in $DIR"
                    host_link "$3" "${cmd#net-}" || die "cannot set $3's link ${cmd#net-}" ;;
                netns)
                    check_host "$3"; load_env || die "no cluster in $DIR"
                    echo "$(ns_path "$(ns_var "$3")")" ;;
            esac ;;
    *)      die "$USAGE" ;;
esac
