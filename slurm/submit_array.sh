#!/bin/bash
# Submits slurm/extract_array.sbatch as an N-task array and slurm/merge.sbatch after it
# (--dependency=afterok: the merge runs only when every task finished; a task whose only problem
# is failed videos counts as finished, see extract_array.sbatch).
#
#   slurm/submit_array.sh N [extra sbatch options for the array, e.g. --array throttle: %8 below]
#
# Options come from the environment and reach both jobs (sbatch exports it):
#   CONFIG=... CHECKPOINT=... MANIFEST=videos.csv PARTS_DIR=parts-16 OUTPUT=features.h5 \
#     slurm/submit_array.sh 16
# THROTTLE=8 runs at most 8 tasks at once. Resubmitting resumes every part (and then merges, with
# OVERWRITE=1 if an earlier merge already wrote OUTPUT).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
N=${1:?usage: submit_array.sh N [sbatch options for the array]}
shift
THROTTLE=${THROTTLE:-}
export SHARDS=$N PARTS_DIR=${PARTS_DIR:-parts} OUTPUT=${OUTPUT:-features.h5}

array=$(sbatch --parsable --array="0-$((N - 1))${THROTTLE:+%$THROTTLE}" "$@" "$here/extract_array.sbatch")
array=${array%%;*}   # --parsable prints "jobid[;cluster]"
merge=$(sbatch --parsable --dependency="afterok:$array" "$here/merge.sbatch")
merge=${merge%%;*}
echo "array job $array ($N tasks -> $PARTS_DIR/part-K.h5), merge job $merge -> $OUTPUT"
