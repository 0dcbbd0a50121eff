#!/usr/bin/env bash
# A self-contained demo: generates three short videos with FFmpeg, then runs `vidfeat extract`
# with a SLOW 8x8 R50 model carrying seeded RANDOM weights (untrained: the features only show
# that the pipeline works), and `vidfeat inspect` on the result.
# Usage: tools/demo.sh [BUILD_DIR] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
OUT=${2:-demo-out}
mkdir -p "$OUT/videos"

gen() { ffmpeg -nostdin -loglevel error -y -f lavfi -i "$1" -c:v libx264 -pix_fmt yuv420p "$OUT/videos/$2"; }
gen "testsrc2=size=320x240:rate=25:duration=6" testsrc.mp4
gen "mandelbrot=size=320x240:rate=30,trim=duration=4" mandelbrot.mp4
gen "life=size=240x320:rate=15:mold=10:ratio=0.4:death_color=#C83232:life_color=#00ff00,format=yuv420p,trim=duration=3" life.mp4
printf 'path\nvideos/testsrc.mp4\nvideos/mandelbrot.mp4\nvideos/life.mp4\n' > "$OUT/manifest.csv"

# Two threads, one rank: the demo machine is small. `mpirun -n N` runs N ranks.
"$BUILD_DIR/vidfeat" extract --config configs/Kinetics/SLOW_8x8_R50.yaml --random-weights 0 \
  --manifest "$OUT/manifest.csv" --output "$OUT/features.h5" --overwrite --threads 2
"$BUILD_DIR/vidfeat" inspect "$OUT/features.h5"
