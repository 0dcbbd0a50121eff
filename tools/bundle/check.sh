#!/usr/bin/env bash
# Self-containment check of the CUDA bundle (tools/bundle/build.sh), run in CI on a machine without
# a GPU: the bundle is unpacked into an EMPTY root (a temporary folder holding only the bundle,
# glibc's own files from Debian's libc6 package, /bin/sh, and PyPI's torch==2.11.0 with its nvidia-*
# wheels bind-mounted read-only at /torch-env, the stand-in for a node's PyTorch), entered with
# chroot in a private mount namespace, so none of the Debian -dev packages' libraries can be found.
# There, with LibTorch's CPU fallback:
#   1. the bundle's ffmpeg makes two test videos (MPEG-4 in .mp4, MJPEG in .mkv) and decodes them back;
#   2. `vidfeat verify` of tests/fixtures' C2D reference passes, and fails against I3D's reference;
#   3. `bin/mpirun -n 2 bin/vidfeat extract` of the two videos succeeds, `vidfeat inspect` reads it;
# and outside the root Debian's h5py (or h5ls) reads the output: both videos complete, one finite,
# non-constant feature row per segment. Before that, `ldd` of every ELF file in the bundle with
# LD_LIBRARY_PATH limited to the bundle and the torch env must resolve nothing elsewhere but glibc.
#
# Usage: tools/bundle/check.sh [TARBALL] [WORK_DIR]   (defaults: build-bundle/vidfeat-*-cuda.tar.xz,
#        build-bundle/check).  Needs root, or unprivileged user namespaces (unshare -r).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
tarball=${1:-$(ls build-bundle/vidfeat-*-cuda.tar.xz 2>/dev/null | head -n 1)}
[ -f "$tarball" ] || { echo "bundle/check: no bundle (run tools/bundle/build.sh first)" >&2; exit 1; }
tarball=$(cd "$(dirname "$tarball")" && pwd)/$(basename "$tarball")
W=${2:-build-bundle/check}
started=$(date +%s)
fail() { echo "bundle/check: FAILED: $*" >&2; exit 1; }
log() { echo "bundle/check: $*" >&2; }

TORCH_ENV=$(tools/bundle/torch_env.sh)
rm -rf "$W"
mkdir -p "$W"
W=$(cd "$W" && pwd)
R=$W/root
mkdir -p "$R"/{opt,work/v,tmp,dev,proc,sys,torch-env,bin,etc,lib64}
chmod 1777 "$R/tmp"
tar -C "$R/opt" -xf "$tarball"
name=$(basename "$tarball" .tar.xz)
B=/opt/$name
[ -x "$R$B/bin/vidfeat" ] || fail "$tarball has no $name/bin/vidfeat"

# 0. ldd: every ELF file of the bundle resolves into the bundle, the torch env or glibc only.
glibc_files=$(dpkg -L libc6 | grep -E '^/lib(64)?/[^ ]*\.so[.0-9]*$|^/lib/x86_64-linux-gnu/ld-linux' || true)
glibc_real=$(for g in $glibc_files; do readlink -f "$g"; done | sort -u)
torch_libs="$TORCH_ENV/torch/lib"
for d in "$TORCH_ENV"/nvidia/*/lib; do torch_libs="$torch_libs:$d"; done
bad=0
while IFS= read -r f; do
  head -c 4 "$f" | grep -q ELF || continue
  while read -r so arrow path _; do
    [ "$arrow" = "=>" ] || continue
    case "$path" in
      "$R$B"/*|"$TORCH_ENV"/*) ;;
      not) case "$so" in libcuda.so.1|libnvidia-*) ;; *) echo "  $f: $so not found" >&2; bad=1 ;; esac ;;
      *) grep -qx "$(readlink -f "$path")" <<<"$glibc_real" ||
         { echo "  ${f#$R}: $so resolved outside the bundle: $path" >&2; bad=1; } ;;
    esac
  done < <(LD_LIBRARY_PATH="$R$B/lib:$torch_libs" ldd "$f" 2>/dev/null || true)
done < <(find "$R$B" -type f \( -name '*.so*' -o -perm -u+x \))
[ $bad = 0 ] || fail "libraries resolved outside the bundle, torch and glibc (above)"
log "ldd: every ELF file resolves to the bundle, the torch env or glibc"

# The empty root: glibc's files (same paths), dash as /bin/sh, passwd/group for getpwuid.
for g in $glibc_files; do
  mkdir -p "$R$(dirname "$g")"
  cp -L "$g" "$R$g"
done
cp /bin/dash "$R/bin/sh"
echo "root:x:0:0:root:/work:/bin/sh" >"$R/etc/passwd"
echo "root:x:0:" >"$R/etc/group"
echo "127.0.0.1 localhost $(hostname)" >"$R/etc/hosts"
cp tests/fixtures/C2D_8x8_R50.pkl tests/fixtures/C2D_8x8_R50.io.pt tests/fixtures/I3D_8x8_R50.io.pt "$R/work/"
log "empty root at $R: $(find "$R" -path "$R/opt" -prune -o -type f -print | wc -l) files besides the bundle ($(du -sh "$R/opt" | cut -f1) bundle)"

# What runs inside (POSIX sh, only the bundle's programs).
cat >"$R/work/inside.sh" <<EOF
set -e
B=$B
cd /work
echo "-- ffmpeg: two test videos"
\$B/bin/ffmpeg -nostdin -loglevel error -f lavfi -i testsrc2=size=160x120:rate=25:duration=3 -c:v mpeg4 -q:v 4 v/a.mp4
\$B/bin/ffmpeg -nostdin -loglevel error -f lavfi -i mandelbrot=size=128x96:rate=15,trim=duration=4 -pix_fmt yuvj420p -c:v mjpeg v/b.mkv
frames() {  # decoded frames of \$1 (framecrc lines of stream 0), POSIX sh only: no grep in here
  n=0
  \$B/bin/ffmpeg -nostdin -v error -i "\$1" -f framecrc - > v/crc.txt
  while read -r l; do case "\$l" in 0,*) n=\$((n + 1)) ;; esac; done < v/crc.txt
  echo \$n
}
na=\$(frames v/a.mp4); nb=\$(frames v/b.mkv)
echo "decoded back: a.mp4 \$na frames (75 made), b.mkv \$nb frames (60 made)"
[ "\$na" = 75 ] && [ "\$nb" = 60 ]
printf 'video_id,path\na,v/a.mp4\nb,v/b.mkv\n' > manifest.csv
cfg=\$B/share/vidfeat/configs/Kinetics/C2D_8x8_R50.yaml
small="--set DATA.NUM_FRAMES=8 --set DATA.TRAIN_CROP_SIZE=64 --set DATA.TEST_CROP_SIZE=96 --set MODEL.NUM_CLASSES=10 --set RESNET.WIDTH_PER_GROUP=4"
echo "-- vidfeat verify (C2D fixture)"
\$B/bin/vidfeat verify --config \$cfg --checkpoint C2D_8x8_R50.pkl \$small --io C2D_8x8_R50.io.pt
echo "-- vidfeat verify against another model's reference: must fail"
if \$B/bin/vidfeat verify --config \$cfg --checkpoint C2D_8x8_R50.pkl \$small --io I3D_8x8_R50.io.pt > verify-wrong.log 2>&1; then
  echo "verify accepted I3D's reference for C2D"; exit 1
fi
echo "-- mpirun -n 2 vidfeat extract"
\$B/bin/mpirun -n 2 --bind-to none \$B/bin/vidfeat extract --config \$cfg \$small --random-weights 0 \
  --manifest manifest.csv --output features.h5 --threads 1 --batch 2
\$B/bin/vidfeat inspect features.h5 > inspect.txt
EOF

# Enter it: a private mount namespace (unshare -m as root, else a user namespace mapping us to
# root), /dev, /proc, /sys and the torch env mounted, then a clean environment (env -i, outside:
# the root has no env) and chroot.
inner_env=(env -i PATH="$B/bin" HOME=/work TMPDIR=/tmp LANG=C VIDFEAT_TORCH=/torch-env/torch
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 VIDFEAT_OFFLINE=1)
[ -n "${OPENBLAS_CORETYPE:-}" ] && inner_env+=(OPENBLAS_CORETYPE="$OPENBLAS_CORETYPE")
[ -n "${OPENBLAS_L2_SIZE:-}" ] && inner_env+=(OPENBLAS_L2_SIZE="$OPENBLAS_L2_SIZE")
ns=(unshare --mount --fork)
[ "$(id -u)" -eq 0 ] || ns=(unshare --user --map-root-user --mount --fork)
set +e
"${ns[@]}" bash -c '
  set -e
  R=$1; T=$2; shift 2
  mount --make-rprivate /
  mount --rbind /dev "$R/dev"
  mount -t proc proc "$R/proc"
  mount --rbind /sys "$R/sys"
  mount --bind "$T" "$R/torch-env"
  mount -o remount,bind,ro "$R/torch-env" 2>/dev/null || true
  exec "$@"
' check "$R" "$TORCH_ENV" "${inner_env[@]}" "$(command -v chroot)" "$R" /bin/sh /work/inside.sh 2>&1 |
  tee "$W/inside.log"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" -eq 0 ] || fail "inside the empty root (exit $rc; log $W/inside.log)"

# Outside: the output as another reader sees it.
cat "$R/work/inspect.txt"
grep -q '^videos: *2 (2 complete, 0 failed, 0 pending)' "$R/work/inspect.txt" || fail "vidfeat inspect: not 2 complete videos"
py=/usr/bin/python3
if "$py" -c 'import h5py, numpy' 2>/dev/null; then
  "$py" - "$R/work/features.h5" <<'PY' || fail "features.h5 does not read back as expected"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    x = f["/features"][...]
    seg = f["/segments"][...]
    vids = f["/videos"][...]
assert x.ndim == 2 and x.shape[0] >= 2 and x.shape[0] == seg.shape[0], (x.shape, seg.shape)
assert np.isfinite(x).all(), "non-finite features"
assert float(x.std()) > 0, "constant features"
assert sorted(set(seg["video_row"].tolist())) == [0, 1], seg["video_row"]
assert len(vids) == 2
print(f"bundle/check: features.h5: {x.shape[0]} rows x {x.shape[1]}, finite, std {x.std():.3g}; 2 videos")
PY
else
  h5ls "$R/work/features.h5/features" | grep -qE '\{[1-9][0-9]*, [1-9]' || fail "h5ls: no /features rows"
fi
log "passed in $(( $(date +%s) - started )) s (bundle $(basename "$tarball"))"
