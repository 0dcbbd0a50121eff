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
#    and /run/munge. Steps 2 and 5 are tests/slurm/slurm_env.sh's (shared with
#    tests/lifecycle/test_slurm_timelimit.sh).
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
# shellcheck source=slurm_env.sh
source "$HERE/slurm_env.sh"

# ---- 1. packages ----
if [[ $(id -u) != 0 ]]; then
  why="the SLURM test installs packages and starts munged/slurmd: it needs root"
  echo "SKIPPED: $why"
  # Recorded for tests/support/print_skipped.py (run after ctest); $VIDFEAT is build/vidfeat.
  mkdir -p "$(dirname "$VIDFEAT")/Testing/skipped" && echo "$why" > "$(dirname "$VIDFEAT")/Testing/skipped/Slurm_array_merge"
  exit 77
fi
slurm_env_begin vidfeat-slurm "$BUDGET_S"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null ||
   ! command -v munged >/dev/null; then
  say "installing slurm-wlm munge (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  { timeout 300 apt-get update -qq &&
    timeout 400 apt-get install -y -qq --no-install-recommends slurm-wlm munge; } ||
    fail "apt-get install slurm-wlm munge"
fi
[[ -x /usr/bin/python3 ]] || fail "no /usr/bin/python3"

# ---- 2. munge, 3. slurmctld + slurmd ----
slurm_start_munge
slurm_start vidfeattest
say "node $SLURM_HOST idle; srun --mpi=list: $(srun --mpi=list 2>&1 | tr -s ' \n' ' ')"

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
