# A REAL one-node SLURM (Debian's slurm-wlm + munge) started on this machine for one test and
# always torn down. Sourced (bash) by tests/slurm/test_slurm.sh and
# tests/lifecycle/test_slurm_timelimit.sh, which define say MESSAGE and fail MESSAGE (exit 1) first.
#
#   slurm_env_begin PREFIX BUDGET_S   drops the SLURM_*/SBATCH_*/SRUN_*/SALLOC_* variables of an
#        enclosing job; makes SCRATCH=/tmp/PREFIX-XXXXXX with state/ spool/ log/ run/ tmp/;
#        exports SLURM_CONF=$SCRATCH/slurm.conf and TMPDIR=$SCRATCH/tmp (Open MPI's session
#        folders; the pmix plugin's TmpFS); traps EXIT/INT/TERM/HUP to slurm_teardown; starts a
#        watchdog that TERMs the test after BUDGET_S (so it tears down before ctest kills it).
#   slurm_start_munge                 uses a munged that answers, else starts one (creates
#        /etc/munge/munge.key if there is none); the one it started is stopped at teardown.
#   slurm_start CLUSTER [CONF_LINE...]   writes slurm.conf (free ports on 127.0.0.1, one node of
#        CPUs=2, RealMemory 80% of this machine's up to 20000 MB, the extra lines given), starts
#        slurmctld and slurmd and waits (60 s at most) for the node to be idle.
#   job_state JOB                     "STATE EXIT:SIGNAL" per job or array task ("COMPLETED 0:0").
#   jobs_submitted                    job ids the test submitted, cancelled at teardown.
#
# slurm_teardown: scancel $jobs_submitted; when the test failed, the last 40 lines of every log in
# $SCRATCH/log and $SCRATCH/run; stops slurmd, slurmctld, every process whose environment holds
# our SLURM_CONF (job steps, slurmstepd: found by the exact scratch path, so only what the test
# started) and the munged it started, by PID; removes SCRATCH (KEEP_SCRATCH=1 keeps it). Outside
# SCRATCH it touches only /etc/munge, /var/log/munge and /run/munge.

started_munged="" jobs_submitted="" slurm_watchdog=""

# Processes whose environment holds our SLURM_CONF: slurmctld, slurmd, slurmstepd and job steps
# (sbatch passes the environment on).
our_pids() {
  local d pid
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
    if { tr '\0' '\n' < "$d/environ"; } 2>/dev/null | grep -qxF "SLURM_CONF=$SLURM_CONF"; then
      echo "$pid"
    fi
  done
}

stop_pid() {   # stop_pid PID NAME: TERM, wait up to 15 s, then KILL
  local pid=$1 i
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 30; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.5
  done
  say "$2 (pid $pid) ignored TERM: KILL"
  kill -KILL "$pid" 2>/dev/null
}

slurm_teardown() {
  local rc=$? pid i f
  trap - EXIT INT TERM HUP
  set +e
  say "teardown (test exit code $rc)"
  [[ -n "$slurm_watchdog" ]] && kill "$slurm_watchdog" 2>/dev/null   # (its sleep: stopped below)
  if [[ -n "$jobs_submitted" ]]; then
    # shellcheck disable=SC2086
    timeout 20 scancel $jobs_submitted 2>/dev/null
    for ((i = 0; i < 20; i++)); do   # let slurmd end the job steps itself
      [[ -z "$(timeout 10 squeue -h -o %i 2>/dev/null)" ]] && break
      sleep 0.5
    done
  fi
  if [[ $rc != 0 && -d "$SCRATCH/log" ]]; then
    for f in "$SCRATCH"/log/*.log "$SCRATCH"/run/*.log; do
      [[ -f "$f" ]] || continue
      echo "----- ${f#"$SCRATCH"/} (last 40 lines)"
      tail -n 40 "$f"
    done
  fi
  [[ -f "$SCRATCH/slurmd.pid" ]] && stop_pid "$(cat "$SCRATCH/slurmd.pid")" slurmd
  [[ -f "$SCRATCH/slurmctld.pid" ]] && stop_pid "$(cat "$SCRATCH/slurmctld.pid")" slurmctld
  for pid in $(our_pids); do
    stop_pid "$pid" "left-over $({ tr '\0' ' ' < "/proc/$pid/cmdline"; } 2>/dev/null)"
  done
  [[ -n "$started_munged" ]] && stop_pid "$started_munged" munged
  if [[ "${KEEP_SCRATCH:-0}" == 1 ]]; then say "kept $SCRATCH"; else rm -rf "$SCRATCH"; fi
  exit "$rc"
}

slurm_env_begin() {   # slurm_env_begin PREFIX BUDGET_S
  local name
  while IFS='=' read -r name _; do
    case $name in SLURM_*|SBATCH_*|SRUN_*|SALLOC_*) unset "$name" ;; esac
  done < <(env)
  SCRATCH=$(mktemp -d "/tmp/$1-XXXXXX") || fail "mktemp"
  chmod 755 "$SCRATCH"
  mkdir -p "$SCRATCH"/{state,spool,log,run,tmp}
  export SLURM_CONF=$SCRATCH/slurm.conf TMPDIR=$SCRATCH/tmp
  trap slurm_teardown EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
  ( sleep "$2" && echo "FAILED: the test ran past $2 s" >&2 && kill -TERM $$ ) &
  slurm_watchdog=$!
}

slurm_start_munge() {
  local i
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    say "munged already running: using it"
    return
  fi
  say "starting munged"
  if [[ ! -s /etc/munge/munge.key ]]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  mkdir -p /var/log/munge /run/munge
  chown -R munge:munge /etc/munge /var/log/munge /run/munge
  chmod 700 /etc/munge
  chmod 400 /etc/munge/munge.key
  chmod 755 /run/munge
  runuser -u munge -- munged --force || fail "munged did not start"
  for ((i = 0; i < 20; i++)); do
    [[ -s /run/munge/munged.pid ]] && break
    sleep 0.25
  done
  started_munged=$(cat /run/munge/munged.pid 2>/dev/null)
  [[ -n "$started_munged" ]] || fail "munged wrote no /run/munge/munged.pid"
  munge -n | unmunge >/dev/null || fail "munge -n | unmunge"
}

slurm_start() {   # slurm_start CLUSTER [CONF_LINE...]
  local cluster=$1 ctld_port d_port mem_mb real_mb state i
  shift
  SLURM_HOST=$(hostname -s)
  read -r ctld_port d_port < <(/usr/bin/python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))')
  mem_mb=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
  real_mb=$((mem_mb * 8 / 10))
  ((real_mb > 20000)) && real_mb=20000
  cat > "$SLURM_CONF" <<EOF
ClusterName=$cluster
SlurmctldHost=$SLURM_HOST(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$SCRATCH/state
SlurmdSpoolDir=$SCRATCH/spool
SlurmctldPidFile=$SCRATCH/slurmctld.pid
SlurmdPidFile=$SCRATCH/slurmd.pid
SlurmctldLogFile=$SCRATCH/log/slurmctld.log
SlurmdLogFile=$SCRATCH/log/slurmd.log
TmpFS=$SCRATCH/tmp
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
MinJobAge=600
$(printf '%s\n' "$@")
NodeName=$SLURM_HOST NodeAddr=127.0.0.1 CPUs=2 RealMemory=$real_mb State=UNKNOWN
PartitionName=debug Nodes=$SLURM_HOST Default=YES MaxTime=INFINITE State=UP
EOF
  say "slurmctld (port $ctld_port) + slurmd (port $d_port), node $SLURM_HOST: CPUs=2 RealMemory=$real_mb"
  slurmctld -f "$SLURM_CONF" -i || fail "slurmctld did not start"
  slurmd -f "$SLURM_CONF" -N "$SLURM_HOST" || fail "slurmd did not start"
  state=""
  for ((i = 0; i < 120; i++)); do
    state=$(timeout 10 sinfo -h -n "$SLURM_HOST" -o %t 2>/dev/null)
    [[ "$state" == idle ]] && break
    sleep 0.5
  done
  [[ "$state" == idle ]] || fail "node $SLURM_HOST is not idle after 60 s (sinfo: '$state')"
}

job_state() {   # job_state JOB: the job's state and exit code, one line per array task
  timeout 10 scontrol -o show job "$1" 2>/dev/null |
    sed -n 's/.*JobState=\([A-Z_]*\).* ExitCode=\([0-9:]*\).*/\1 \2/p'
}
