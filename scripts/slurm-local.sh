#!/usr/bin/env bash
# A one-node Slurm cluster on localhost, as root, for tests (tests/slurm.rs) and trying out the
# README's job array:
#
#   scripts/slurm-local.sh start [DIR]   # munged, slurmctld, slurmd; waits until the node is idle
#   scripts/slurm-local.sh stop  [DIR]   # cancels the jobs, stops the daemons and their job steps
#   export SLURM_CONF=DIR/slurm.conf     # then sbatch, squeue, scontrol, ... use this cluster
#
# Everything lives in DIR (default target/slurm-local): slurm.conf, the munge key, sockets, state,
# logs and pid files. Nothing else is touched: no systemd, no /etc/slurm, no /run/munge, no
# cgroups (proctrack/linuxproc, task/none). The node has 2 CPUs whatever the machine has; the two
# ports are free ones picked at start (SLURM_LOCAL_PORTS="CTLD SLURMD" picks them instead).
# Needs Debian's slurm-wlm and munge (scripts/setup.sh installs them).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf '[slurm-local] %s\n' "$*" >&2; }
die() { printf '[slurm-local] error: %s\n' "$*" >&2; exit 1; }

# A TCP port nothing listens on (from $RANDOM; a connection refused means free).
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 30000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  die "no free TCP port found"
}

write_conf() {
  local dir=$1 ctld_port=$2 slurmd_port=$3
  cat >"$dir/slurm.conf" <<EOF
ClusterName=vidcls-local
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket,cred_expire=5
StateSaveLocation=$dir/ctld
SlurmdSpoolDir=$dir/slurmd
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
JobRequeue=1
KillWait=2
SlurmctldDebug=info
SlurmdDebug=info
NodeName=local1 NodeAddr=127.0.0.1 NodeHostname=$(hostname -s) CPUs=2 State=UNKNOWN
PartitionName=local Nodes=local1 Default=YES MaxTime=INFINITE State=UP
EOF
}

# munged with its own key, socket, pid, log and seed files under $dir/munge.
start_munge() {
  local m=$1/munge
  mkdir -p "$m" && chmod 755 "$m"
  [ -f "$m/munge.key" ] || mungekey --create --keyfile="$m/munge.key" \
    || die "mungekey failed"
  chmod 400 "$m/munge.key"
  munged --socket="$m/munge.socket" --key-file="$m/munge.key" --pid-file="$m/munged.pid" \
    --log-file="$m/munged.log" --seed-file="$m/munged.seed" --force </dev/null >/dev/null 2>&1 \
    || die "munged did not start: $(tail -n 5 "$m/munged.log" 2>/dev/null)"
}

# Whether the daemon of pid file $1 runs.
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Shows the last lines of the daemons' logs and fails with $1.
fail_with_logs() {
  local log
  for log in slurmctld slurmd munge/munged; do
    say "--- last lines of $dir/$log.log"
    tail -n 15 "$dir/$log.log" >&2 || true
  done
  die "$1"
}

# Waits (up to 30 s) until the node reports idle; fails at once when a daemon has exited.
wait_idle() {
  local dir=$1 state="" d
  for _ in $(seq 150); do
    state=$(SLURM_CONF="$dir/slurm.conf" sinfo -h -N -o %T 2>/dev/null || true)
    [ "$state" = idle ] && return
    for d in slurmctld slurmd; do
      [ ! -f "$dir/$d.pid" ] || alive "$dir/$d.pid" || fail_with_logs "$d exited (see its log above)"
    done
    sleep 0.2
  done
  fail_with_logs "the node is not idle after 30 s (state: '${state:-none}'); see the logs above"
}

start() {
  local dir=$1 ctld_port slurmd_port
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    die "slurmctld or munged missing: run scripts/setup.sh (Debian slurm-wlm, munge)"
  fi
  [ "$(id -u)" -eq 0 ] || die "must run as root (the daemons run as root, SlurmUser=root)"
  [ ! -e "$dir/slurmctld.pid" ] || die "$dir holds a running cluster: stop it first"
  mkdir -p "$dir/ctld" "$dir/slurmd"
  # shellcheck disable=SC2064 # $dir is expanded now, on purpose
  trap "[ \$? -eq 0 ] || stop '$dir'" EXIT   # a failed start leaves no daemon behind
  read -r ctld_port slurmd_port <<<"${SLURM_LOCAL_PORTS:-$(free_port) $(free_port)}"
  write_conf "$dir" "$ctld_port" "$slurmd_port"
  start_munge "$dir"
  export SLURM_CONF="$dir/slurm.conf"
  slurmctld -i </dev/null >>"$dir/slurmctld.out" 2>&1 \
    || die "slurmctld did not start: $(tail -n 5 "$dir/slurmctld.log" "$dir/slurmctld.out")"
  slurmd -N local1 </dev/null >>"$dir/slurmd.out" 2>&1 \
    || die "slurmd did not start: $(tail -n 5 "$dir/slurmd.log" "$dir/slurmd.out")"
  wait_idle "$dir"
  say "up: export SLURM_CONF=$dir/slurm.conf"
}

# Pids of the processes with a file open under $dir: the daemons (their logs) and the job steps
# (slurmstepd logs to slurmd.log), however they were forked.
pids_in() {
  local fd
  for fd in /proc/[0-9]*/fd/*; do
    case $(readlink "$fd" 2>/dev/null) in "$1"/*) fd=${fd#/proc/}; echo "${fd%%/*}" ;; esac
  done | sort -u
}

stop() {
  local dir=$1 pids=()
  [ -f "$dir/slurm.conf" ] || { say "no cluster in $dir"; return 0; }
  export SLURM_CONF="$dir/slurm.conf"
  # Jobs first, so that slurmstepd ends them before the daemons go.
  if alive "$dir/slurmctld.pid"; then
    scancel --full --quiet --partition=local 2>/dev/null || true
    for _ in $(seq 50); do
      [ -z "$(squeue -h -t R,CG 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
  for pidfile in slurmd.pid slurmctld.pid munge/munged.pid; do
    if [ -f "$dir/$pidfile" ]; then kill "$(cat "$dir/$pidfile")" 2>/dev/null || true; fi
  done
  for _ in $(seq 50); do
    mapfile -t pids < <(pids_in "$dir")
    [ ${#pids[@]} -eq 0 ] && break
    sleep 0.2
  done
  if [ ${#pids[@]} -gt 0 ]; then
    say "killing what is left: ${pids[*]}"
    kill -KILL "${pids[@]}" 2>/dev/null || true
  fi
  rm -f "$dir/slurmctld.pid" "$dir/slurmd.pid" "$dir/munge/munged.pid"
  say "stopped"
}

cmd=${1:-}
dir=${2:-$root/target/slurm-local}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
case $cmd in
  start) start "$dir" ;;
  stop) stop "$dir" ;;
  *) die "usage: $0 start|stop [DIR]" ;;
esac
