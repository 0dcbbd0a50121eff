#!/usr/bin/env bash
# Prepares a machine to run the reference harness (tools/reference/pysf_ref.py, seed_pipeline.py),
# the fixture generators (tools/fixtures/) and tools/bench/: Debian's Python packages PySlowFast's
# model code imports, and exports of PySlowFast's slowfast/ and configs/ folders outside the
# repository (never committed).
# The test suite needs none of this (tools/setup.sh installs what it needs).
#
#   tools/reference/setup.sh [--pysf DIR] [--pysf-old DIR] [--rev REV] [--mirror GIT_DIR] [--no-apt]
#
#   --pysf DIR      export of PySlowFast at REV (default /tmp/SlowFast, what $PYSF defaults to)
#   --pysf-old DIR  export from before commit 99a655b ("unsup"), which still has the c2d_nopool
#                   arch of C2D_NOPOOL_8x8_R50 (default /tmp/SlowFast_old, $PYSF_OLD's default)
#   --rev REV       PySlowFast commit for --pysf (default: the one the committed fixtures were made
#                   with)
#   --mirror GIT_DIR  a clone of PySlowFast already here (its .git or a bare repository) instead of
#                   cloning https://github.com/facebookresearch/SlowFast
#   --no-apt        do not install packages
# An existing export (DIR/slowfast/models/build.py present) is left as it is.
set -euo pipefail

PYSF=/tmp/SlowFast
PYSF_OLD=/tmp/SlowFast_old
REV=287ec0076846560f44a9327e931a5a2360240533
OLD_REV=99a655b^
APT=1
mirror=""
URL=https://github.com/facebookresearch/SlowFast
while [ $# -gt 0 ]; do
  case "$1" in
    --pysf) PYSF=$2; shift 2 ;;
    --pysf-old) PYSF_OLD=$2; shift 2 ;;
    --rev) REV=$2; shift 2 ;;
    --mirror) mirror=$2; shift 2 ;;
    --no-apt) APT=0; shift ;;
    *) echo "setup.sh: unknown argument '$1' (see the comment at the top of $0)" >&2; exit 2 ;;
  esac
done

PACKAGES=(
  git
  python3-torch python3-torchvision python3-yaml python3-simplejson python3-opencv python3-psutil
  python3-scipy python3-pandas python3-tqdm python3-termcolor python3-matplotlib
  python3-av                                # seed_pipeline.py decodes with PyAV
  python3-h5py                              # seed_pipeline.py --compare, bench.py
)
[ "$APT" = 0 ] || "$(dirname "$0")/../install_packages.sh" "reference setup" "${PACKAGES[@]}"

export_at() {  # export_at DIR REV
  if [ -f "$1/slowfast/models/build.py" ]; then
    echo "reference setup: $1 already holds a PySlowFast export; left as it is"
    return
  fi
  if [ -z "$mirror" ]; then
    mirror=$(mktemp -d)/SlowFast.git
    trap 'rm -rf "$(dirname "$mirror")"' EXIT
    echo "reference setup: cloning $URL"
    git clone --quiet --bare "$URL" "$mirror"
  fi
  mkdir -p "$1"
  git --git-dir="$mirror" archive "$2" slowfast configs | tar -x -C "$1"
  echo "reference setup: $1 <- PySlowFast $(git --git-dir="$mirror" rev-parse --short "$2")"
}
export_at "$PYSF" "$REV"
export_at "$PYSF_OLD" "$OLD_REV"

/usr/bin/python3 "$(dirname "$0")/pysf_ref.py" --help >/dev/null
echo "reference setup: done (PYSF=$PYSF PYSF_OLD=$PYSF_OLD)"
