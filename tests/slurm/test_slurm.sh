#!/bin/bash
# The slurm/ scripts under a REAL SLURM (Debian's slurm-wlm + munge) on this one machine:
#
#   test_slurm.sh VIDFEAT SOURCE_DIR CORPUS_DIR
#
# 1. installs slurm-wlm and munge with apt-get when missing (tools/setup.sh lists them, so CI has
#    them already);
# 2. starts munged (unless one already answers) and slurmctld + slurmd on localhost, one node
#    (CPUs=2), with a slurm.conf in a scratch folder (SLURM_CONF; free ports, so another SLURM on
#    this machine is not disturbed), and waits for the node to be idle;
# 3. submits slurm/extract_array.sbatch as a 2-task array and slurm/merge.sbatch afterok on it
#    (slurm/submit_array.sh 2), and slurm/extract.sbatch as one job of 2 MPI ranks (srun
#    --mpi=pmix, parallel HDF5), with a tiny model over a manifest of videos of the generated
#    corpus (CORPUS_DIR, tests/support/make_corpus.py), and
#    waits (bounded) for them;
# 4. checks that every job COMPLETED with exit code 0 and that the merged file and the one-job
#    file each equal a direct `vidfeat extract` of the same manifest (per video id: features
#    bit-identical, same /videos, /segments and /failures rows), with Debian's python3 + h5py
#    (compare_h5.py);
# 5. always tears down (trap): scancel, then stops the daemons it started and every process
#    carrying its SLURM_CONF (job steps), by PID, and removes the scratch folder. Outside the
#    scratch folder it touches only /etc/munge (creates a key if there is none), /var/log/munge
#    and /run/munge.
# Not root: skipped (exit 77). KEEP_SCRATCH=1 keeps the scratch folder (logs) for debugging; the daemons are stopped anyway.
set -uo pipefail

VIDFEAT=$(readlink -f "${1:?usage: test_slurm.sh VIDFEAT SOURCE_DIR CORPUS_DIR}")
SOURCE=$(readlink -f "${2:?}")
CORPUS=$(readlink -f "${3:?}")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WAIT_JOBS_S=${WAIT_JOBS_S:-300}   # bound on the wait for the jobs
BUDGET_S=${BUDGET_S:-840}         # then the test stops itself (and tears down): ctest's TIMEOUT is 900

say() { echo "[slurm-test $(date -u +%H:%M:%S)] $*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }

# Nothing of an enclosing SLURM job (if ctest itself runs in one) may leak into ours.
while IFS='=' read -r name _; do
  case $name in SLURM_*|SBATCH_*|SRUN_*|SALLOC_*) unset "$name" ;; esac
done < <(env)

SCRATCH=$(mktemp -d /tmp/vidfeat-slurm-XXXXXX)
chmod 755 "$SCRATCH"
mkdir -p "$SCRATCH"/{state,spool,log,run,tmp}
export SLURM_CONF=$SCRATCH/slurm.conf
export TMPDIR=$SCRATCH/tmp   # Open MPI's session folders; TmpFS below: the pmix plugin's
started_munged=""
jobs_submitted=""
watchdog=""

# Processes whose environment holds our SLURM_CONF: slurmctld, slurmd, slurmstepd and job steps
# (sbatch passes the environment on). Matching the exact scratch path only finds what we started.
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

teardown() {
  local rc=$? pid pids i
  trap - EXIT INT TERM HUP
  set +e
  say "teardown (test exit code $rc)"
  [[ -n "$watchdog" ]] && kill "$watchdog" 2>/dev/null   # (its sleep carries SLURM_CONF: stopped below)
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
  pids=$(our_pids)
  for pid in $pids; do stop_pid "$pid" "left-over $({ tr '\0' ' ' < "/proc/$pid/cmdline"; } 2>/dev/null)"; done
  if [[ -n "$started_munged" ]]; then
    stop_pid "$started_munged" munged
  fi
  if [[ "${KEEP_SCRATCH:-0}" == 1 ]]; then say "kept $SCRATCH"; else rm -rf "$SCRATCH"; fi
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
# A watchdog: TERM to this script after BUDGET_S (the trap tears down), before ctest would kill it.
( sleep "$BUDGET_S" && echo "FAILED: the test ran past ${BUDGET_S} s" >&2 && kill -TERM $$ ) &
watchdog=$!

# ---- 1. packages ----
if [[ $(id -u) != 0 ]]; then
  why="the SLURM test installs packages and starts munged/slurmd: it needs root"
  echo "SKIPPED: $why"
  # Recorded for tests/support/print_skipped.py (run after ctest); $VIDFEAT is build/vidfeat.
  mkdir -p "$(dirname "$VIDFEAT")/Testing/skipped" && echo "$why" > "$(dirname "$VIDFEAT")/Testing/skipped/Slurm_array_merge"
  exit 77
fi
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null ||
   ! command -v munged >/dev/null; then
  say "installing slurm-wlm munge (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  { timeout 300 apt-get update -qq &&
    timeout 400 apt-get install -y -qq --no-install-recommends slurm-wlm munge; } ||
    fail "apt-get install slurm-wlm munge"
fi
[[ -x /usr/bin/python3 ]] || fail "no /usr/bin/python3"

# ---- 2. munge ----
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  say "munged already running: using it"
else
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
fi

# ---- 3. slurmctld + slurmd ----
host=$(hostname -s)
read -r ctld_port d_port < <(/usr/bin/python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))')
mem_mb=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
real_mb=$((mem_mb * 8 / 10))
((real_mb > 20000)) && real_mb=20000
cat > "$SLURM_CONF" <<EOF
ClusterName=vidfeattest
SlurmctldHost=$host(127.0.0.1)
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
NodeName=$host NodeAddr=127.0.0.1 CPUs=2 RealMemory=$real_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
say "slurmctld (port $ctld_port) + slurmd (port $d_port), node $host: CPUs=2 RealMemory=$real_mb"
slurmctld -f "$SLURM_CONF" -i || fail "slurmctld did not start"
slurmd -f "$SLURM_CONF" -N "$host" || fail "slurmd did not start"
state=""
for ((i = 0; i < 120; i++)); do
  state=$(timeout 10 sinfo -h -n "$host" -o %t 2>/dev/null)
  [[ "$state" == idle ]] && break
  sleep 0.5
done
[[ "$state" == idle ]] || fail "node $host is not idle after 60 s (sinfo: '$state')"
say "node $host idle; srun --mpi=list: $(srun --mpi=list 2>&1 | tr -s ' \n' ' ')"

# ---- 4. the array + merge, and a direct run ----
manifest=$SCRATCH/videos.csv
{
  echo "video_id,path"
  # rotations 90 and 270, VP8, a MOV out of presentation order, a name like an option
  for v in rot90.mov vp8.webm rot270.mov bframes.mov -dash.mp4; do
    grep -q "^$v"$'\t' "$CORPUS/corpus.tsv" || fail "$v is not in $CORPUS/corpus.tsv"
    echo "${v%.*},$CORPUS/$v"
  done
} > "$manifest"
tiny=(--set RESNET.WIDTH_PER_GROUP=4 --set DATA.TRAIN_CROP_SIZE=64 --set DATA.TEST_CROP_SIZE=64
      --set "DATA.TRAIN_JITTER_SCALES=[64, 80]" --set DATA.NUM_FRAMES=4 --set DATA.SAMPLING_RATE=2)
tiny_shell=$(printf "'%s' " "${tiny[@]}")
config=$SOURCE/configs/Kinetics/SLOW_8x8_R50.yaml

cd "$SCRATCH/run" || fail "cd $SCRATCH/run"
# Options of the jobs (sbatch exports the environment). The #SBATCH lines ask for GPUs, 8 cores
# per task and more memory than this node has: the sbatch command line (--cpus-per-task,
# --gpus-per-*, --nodes/--ntasks-per-node) and SBATCH_MEM_PER_NODE fit them to this node, as a
# user would to theirs.
export VIDFEAT CONFIG=$config RANDOM_WEIGHTS=2 MANIFEST=$manifest PARTS_DIR=$SCRATCH/run/parts \
       OUTPUT=$SCRATCH/run/merged.h5 THREADS=1 BATCH=2 EXTRA_ARGS=$tiny_shell \
       SBATCH_MEM_PER_NODE=1G SBATCH_TIMELIMIT=15 \
       OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
t0=$SECONDS
submitted=$("$SOURCE/slurm/submit_array.sh" 2 --cpus-per-task=1 --gpus-per-task=0) ||
  fail "slurm/submit_array.sh 2: $submitted"
echo "$submitted"
if [[ $submitted =~ array\ job\ ([0-9]+).*merge\ job\ ([0-9]+) ]]; then
  array_job=${BASH_REMATCH[1]} merge_job=${BASH_REMATCH[2]}
else
  fail "cannot read the job ids from: $submitted"
fi
jobs_submitted="$array_job $merge_job"
# slurm/extract.sbatch too: one job, 2 MPI ranks started by `srun --mpi=pmix`, writing one file
# with parallel HDF5. It waits for free cores (the array takes both).
one=$SCRATCH/run/one-job.h5
one_job=$(OUTPUT=$one sbatch --parsable --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 --gpus-per-node=0 \
          "$SOURCE/slurm/extract.sbatch") || fail "sbatch slurm/extract.sbatch: $one_job"
one_job=${one_job%%;*}
jobs_submitted="$jobs_submitted $one_job"
echo "extract.sbatch: job $one_job (2 ranks) -> $one"

say "direct run (vidfeat extract, no SLURM) while the jobs run"
direct=$SCRATCH/direct.h5
( unset SBATCH_MEM_PER_NODE SBATCH_TIMELIMIT
  timeout 200 "$VIDFEAT" extract --config "$config" --random-weights 2 --manifest "$manifest" \
      --output "$direct" --threads 1 --batch 2 "${tiny[@]}" > "$SCRATCH/log/direct.log" 2>&1 )
rc=$?
((rc == 0)) || { cat "$SCRATCH/log/direct.log"; fail "direct vidfeat extract exited $rc"; }

job_state() {   # job_state ID: the job's state and exit code, one line per array task ("COMPLETED 0:0")
  timeout 10 scontrol -o show job "$1" 2>/dev/null |
    sed -n 's/.*JobState=\([A-Z_]*\).* ExitCode=\([0-9:]*\).*/\1 \2/p'
}
finished() {    # finished ID: every task of the job has ended (or it waits on a dependency that failed)
  local s
  s=$(job_state "$1")
  [[ -n "$s" ]] || return 1
  if grep -qvE '^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED) ' <<< "$s"; then
    timeout 10 scontrol -o show job "$1" 2>/dev/null | grep -q 'Reason=DependencyNeverSatisfied'
  fi
}
say "waiting (at most ${WAIT_JOBS_S} s) for jobs $jobs_submitted"
deadline=$((SECONDS + WAIT_JOBS_S))
until finished "$array_job" && finished "$merge_job" && finished "$one_job"; do
  if ((SECONDS >= deadline)); then
    for j in $jobs_submitted; do scontrol -o show job "$j"; done
    fail "the jobs did not finish in ${WAIT_JOBS_S} s"
  fi
  sleep 1
done
say "jobs done after $((SECONDS - t0)) s"
array_states=$(job_state "$array_job") merge_state=$(job_state "$merge_job") one_state=$(job_state "$one_job")
echo "array job $array_job: $(echo "$array_states" | tr '\n' ';')"
echo "merge job $merge_job: $merge_state"
echo "extract.sbatch job $one_job: $one_state"
for f in "$SCRATCH"/run/*.log; do echo "----- ${f##*/}"; cat "$f"; done

errors=0
check() {   # check EXIT-CODE-OF-THE-CONDITION WHAT
  if [[ $1 == 0 ]]; then echo "ok:      $2"; else echo "FAILED:  $2"; errors=$((errors + 1)); fi
}
[[ $(grep -c '^COMPLETED 0:0$' <<< "$array_states") == 2 && $(wc -l <<< "$array_states") == 2 ]]
check $? "both array tasks COMPLETED with exit code 0"
[[ $merge_state == "COMPLETED 0:0" ]]
check $? "merge job (afterok on the array) COMPLETED with exit code 0"
[[ $one_state == "COMPLETED 0:0" ]]
check $? "extract.sbatch job (2 ranks, srun --mpi=pmix) COMPLETED with exit code 0"
[[ -f $PARTS_DIR/part-0.h5 && -f $PARTS_DIR/part-1.h5 ]]
check $? "parts part-0.h5 and part-1.h5 written"
[[ -f "vidfeat-part-${array_job}_0.log" && -f "vidfeat-part-${array_job}_1.log" &&
   -f "vidfeat-merge-${merge_job}.log" && -f "vidfeat-extract-${one_job}.log" ]]
check $? "job logs vidfeat-part-${array_job}_{0,1}.log, vidfeat-merge-${merge_job}.log, vidfeat-extract-${one_job}.log"
grep -q "shard 0/2: manifest lines" "vidfeat-part-${array_job}_0.log" 2>/dev/null &&
  grep -q "shard 1/2: manifest lines" "vidfeat-part-${array_job}_1.log" 2>/dev/null
check $? "array task 0 extracted shard 0/2, task 1 shard 1/2"
grep -q "2 rank(s)" "vidfeat-extract-${one_job}.log" 2>/dev/null
check $? "extract.sbatch ran vidfeat on 2 MPI ranks"
for out in "$OUTPUT" "$one"; do
  if [[ -f $out ]]; then
    /usr/bin/python3 "$HERE/compare_h5.py" "$direct" "$out"
    check $? "${out##*/} equals the direct vidfeat extract"
  else
    check 1 "$out exists"
  fi
done
say "$errors failure(s), $((SECONDS - t0)) s after submitting"
((errors == 0))
