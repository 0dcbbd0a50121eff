#!/bin/bash
# A job whose SLURM time limit ends mid-run, resubmitted, completes identical (real SLURM, one node):
#
#   test_slurm_timelimit.sh VIDFEAT SOURCE_DIR
#
# 1. starts munged (unless one answers), slurmctld and slurmd on localhost (CPUs=2, free ports, a
#    slurm.conf in a scratch folder: another SLURM on this machine is not disturbed);
# 2. generates 6 videos with the ffmpeg CLI and submits slurm/extract.sbatch unchanged (its
#    `#SBATCH --signal=B:USR1@120` and its trap passing the signal to srun) with --time=10, one
#    rank, a small model (slower than vftest's TINY, so the run lasts about a minute);
# 3. once the job has written a video, shortens its time limit to 1 minute (scontrol update
#    TimeLimit=1): the warning signal is due at once, SLURM sends SIGUSR1 to the batch script at its
#    next time-limit check, the script passes it on, vidfeat stops gracefully;
# 4. checks: the job ended with exit code 75 before its limit (state FAILED 75:0, not TIMEOUT),
#    its log shows the signal passed on and the graceful stop, the file holds some but not all
#    videos; the same sbatch resubmitted COMPLETES with exit 0 and the file equals a direct
#    `vidfeat extract` of the same manifest (tests/slurm/compare_h5.py: per video id, features
#    bit-identical, same /videos, /segments, /failures rows);
# 5. always tears down (trap): scancel, the daemons it started and every process carrying its
#    SLURM_CONF, by PID; removes the scratch folder (KEEP_SCRATCH=1 keeps it).
# Steps 1 and 5 are tests/slurm/slurm_env.sh's (shared with tests/slurm/test_slurm.sh).
# Skipped (exit 77) when not root or when slurm-wlm / munge are not installed (tools/setup.sh
# installs them; tests/slurm/test_slurm.sh installs them when missing).
set -uo pipefail

VIDFEAT=$(readlink -f "${1:?usage: test_slurm_timelimit.sh VIDFEAT SOURCE_DIR}")
SOURCE=$(readlink -f "${2:?}")
BUDGET_S=${BUDGET_S:-540}   # the test stops itself (and tears down) before ctest's TIMEOUT (600)

say() { echo "[slurm-timelimit $(date -u +%H:%M:%S)] $*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }
# shellcheck source=../slurm/slurm_env.sh
source "$SOURCE/tests/slurm/slurm_env.sh"

if [[ $(id -u) != 0 ]]; then echo "SKIPPED: starts munged/slurmd: needs root"; exit 77; fi
for c in slurmctld slurmd sbatch scontrol munged ffmpeg; do
  command -v "$c" >/dev/null || { echo "SKIPPED: $c is not installed (tools/setup.sh installs it)"; exit 77; }
done
slurm_env_begin vidfeat-slurm-tl "$BUDGET_S"

# ---- 1. munge, slurmctld, slurmd ----
slurm_start_munge
slurm_start vidfeattl KillWait=30
say "SLURM up (node $SLURM_HOST)"

# ---- 2. videos, the job ----
manifest=$SCRATCH/videos.csv
echo "video_id,path" > "$manifest"
for i in 0 1 2 3 4 5; do
  ffmpeg -nostdin -loglevel error -y -f lavfi -i "testsrc2=size=160x120:rate=25:duration=$((20 + i))" \
      -c:v libx264 -preset ultrafast -pix_fmt yuv420p "$SCRATCH/v$i.mp4" || fail "ffmpeg"
  echo "v$i,$SCRATCH/v$i.mp4" >> "$manifest"
done
small=(--set RESNET.WIDTH_PER_GROUP=64 --set DATA.TRAIN_CROP_SIZE=112 --set DATA.TEST_CROP_SIZE=112
       --set "DATA.TRAIN_JITTER_SCALES=[112, 140]" --set DATA.NUM_FRAMES=4 --set DATA.SAMPLING_RATE=2)
config=$SOURCE/configs/Kinetics/SLOW_8x8_R50.yaml
out=$SCRATCH/run/tl.h5
cd "$SCRATCH/run" || fail "cd"
export VIDFEAT CONFIG=$config RANDOM_WEIGHTS=2 MANIFEST=$manifest OUTPUT=$out THREADS=1 BATCH=1 \
       EXTRA_ARGS="$(printf "'%s' " "${small[@]}") --wave 1 -v" SBATCH_MEM_PER_NODE=1G \
       OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
submit() {
  sbatch --parsable --time=10 --nodes=1 --ntasks-per-node=1 --cpus-per-task=1 --gpus-per-node=0 \
      "$SOURCE/slurm/extract.sbatch" | cut -d';' -f1
}
wait_end() {   # wait_end JOB SECONDS
  local deadline=$((SECONDS + $2)) s
  while ((SECONDS < deadline)); do
    s=$(job_state "$1")
    [[ -n "$s" && ! $s =~ ^(PENDING|RUNNING|CONFIGURING|COMPLETING|SUSPENDED) ]] && return 0
    sleep 0.5
  done
  return 1
}
job=$(submit) || fail "sbatch"
jobs_submitted=$job
log=$SCRATCH/run/vidfeat-extract-$job.log
say "job $job submitted (--time=10); waiting for its first video"
for ((i = 0; i < 240; i++)); do
  grep -qE ': [0-9]+ frames, [0-9]+ segments' "$log" 2>/dev/null && break
  sleep 0.5
done
grep -qE ': [0-9]+ frames, [0-9]+ segments' "$log" 2>/dev/null || fail "the job wrote no video in 120 s"
scontrol update JobId="$job" TimeLimit=1 || fail "scontrol update TimeLimit=1"
t_update=$SECONDS
say "job $job: time limit cut to 1 minute; the USR1 warning (120 s lead) is due now"
wait_end "$job" 180 || fail "job $job did not end 180 s after its time limit was cut"
took=$((SECONDS - t_update))
state=$(job_state "$job")
say "job $job ended $took s after the update: $state"

errors=0
check() { if [[ $1 == 0 ]]; then echo "ok:      $2"; else echo "FAILED:  $2"; errors=$((errors + 1)); fi; }
[[ $state == "FAILED 75:0" ]]
check $? "the job ended with vidfeat's exit code 75 (interrupted, resumable) before its limit, not TIMEOUT (got '$state')"
grep -q "SIGUSR1 received: passing it to the ranks" "$log"
check $? "the batch script got SLURM's warning signal and passed it on"
grep -q "stopped by a signal (SIGUSR1 on rank 0)" "$log"
check $? "vidfeat stopped gracefully on SIGUSR1"
grep -q "interrupted (signal or time limit, exit 75)" "$log"
check $? "the script's closing line says interrupted, resubmit"
done_videos=$(/usr/bin/python3 -c "
import h5py, sys
with h5py.File(sys.argv[1]) as f: print(int((f['videos']['status'] == 1).sum()))" "$out" 2>/dev/null || echo -1)
say "after the stop: $done_videos of 6 videos complete on disk"
((done_videos > 0 && done_videos < 6))
check $? "the finished videos are written, the rest left ($done_videos of 6)"
[[ ! -e "$out.lock" ]]
check $? "the output lock is removed after the graceful stop"

job2=$(submit) || fail "sbatch (resubmission)"
jobs_submitted="$jobs_submitted $job2"
say "resubmitted: job $job2; direct run meanwhile"
direct=$SCRATCH/direct.h5
( unset SBATCH_MEM_PER_NODE
  timeout 300 "$VIDFEAT" extract --config "$config" --random-weights 2 --manifest "$manifest" --output "$direct" \
      --threads 1 --batch 1 "${small[@]}" > "$SCRATCH/log/direct.log" 2>&1 ) || fail "direct vidfeat extract"
wait_end "$job2" 300 || fail "job $job2 did not end in 300 s"
state2=$(job_state "$job2")
[[ $state2 == "COMPLETED 0:0" ]]
check $? "the resubmitted job COMPLETED with exit code 0 (got '$state2')"
grep -q "$((6 - done_videos)) to extract, $done_videos already complete" "$SCRATCH/run/vidfeat-extract-$job2.log"
check $? "the resubmitted job did only what was left"
/usr/bin/python3 "$SOURCE/tests/slurm/compare_h5.py" "$direct" "$out"
check $? "the resumed file equals a direct, uninterrupted vidfeat extract"
say "$errors failure(s)"
((errors == 0))
