#!/usr/bin/env bash
# Builds the relocatable CUDA bundle, OUT_DIR/vidfeat-<version>-cuda.tar.xz: vidfeat built against
# PyPI's torch==2.11.0 (CUDA 13.0) LibTorch, for machines that have nothing but glibc, the NVIDIA
# driver and a PyTorch 2.11 (a cluster node without root; README "Clusters without root").
#   - vidfeat (and the GPU check's gpu_probe when the tree has that target) link a minimal static
#     FFmpeg rebuilt from Debian's source (tools/bundle/ffmpeg.sh: vidfeat's demuxers and decoders,
#     nvdec/cuvid/nvenc through ffnvcodec, dav1d) and Debian's static parallel HDF5 (libhdf5_openmpi.a:
#     its only external needs are libsz/libaec/libz; its curl/crypto users, the ROS3 driver, are not
#     linked in);
#   - libtorch/libc10/CUDA are NOT in the bundle: the node's PyTorch supplies them at run time
#     (bin/vidfeat is a launcher: libexec/bundle-env.sh finds it, VIDFEAT_TORCH or python3's torch);
#   - Open MPI 4.1 (Debian's shared libraries) with the MCA components that need nothing outside
#     the bundle (shared-memory transport, MPI-IO, one-node launch: mpirun/orted), its help files
#     and an mca-params.conf, relocated through OPAL_* / PMIX_* variables (bin/mpirun);
#   - every other shared library of that closure, libstdc++ and libgcc_s included, in lib/ with
#     $ORIGIN-relative RUNPATHs; only glibc's own libraries are taken from the machine;
#   - ffmpeg (same static FFmpeg; no ffprobe) in bin/, to make test videos on the node (h264_nvenc,
#     hevc_nvenc, and CPU encoders mpeg4/mjpeg/ffv1).
# tools/bundle/check.sh runs the result in an empty root. CI: .ci/run runs both.
#
# Usage: tools/bundle/build.sh [OUT_DIR]          (default build-bundle)
# Environment: VIDFEAT_CI_CACHE (default ~/.cache/vidfeat-ci: wheel, LibTorch, FFmpeg build),
#   VIDFEAT_BUNDLE_JOBS (default 2), VIDFEAT_BUILD_LOCK (default /tmp/vidfeat-build.lock, taken by
#   every compile), VIDFEAT_BUNDLE_TARGETS (default "vidfeat gpu_probe": executables put in bin/;
#   one the tree does not define is skipped with a note, except vidfeat).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${1:-build-bundle}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
CACHE=${VIDFEAT_CI_CACHE:-$HOME/.cache/vidfeat-ci}
TORCH_VERSION=2.11.0
JOBS=${VIDFEAT_BUNDLE_JOBS:-2}
TARGETS=${VIDFEAT_BUNDLE_TARGETS:-vidfeat gpu_probe}
VERSION=$(sed -n 's/^project(vidfeat VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
NAME=vidfeat-$VERSION-cuda
started=$(date +%s)
log() { echo "bundle: $*" >&2; }
MA=/usr/lib/x86_64-linux-gnu

flock /tmp/vidfeat-apt.lock tools/install_packages.sh bundle patchelf xz-utils binutils >&2

# 1. FFmpeg (cached build), then vidfeat against it and the wheel's LibTorch.
FF=$(tools/bundle/ffmpeg.sh)
export PKG_CONFIG_PATH="$FF/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
BUILD="$OUT/build"
# Only the executables the bundle carries (help lists the targets this tree defines).
want=()
# FFmpeg's static libraries name their own dependencies in Libs.private (pkg-config --static):
# appended after everything (CMAKE_CXX_STANDARD_LIBRARIES), so the archive order does not matter.
ff_private=$(pkg-config --static --libs-only-l libavformat libavcodec libswscale libavutil | tr ' ' '\n' |
  grep -vE '^-l(avformat|avcodec|swscale|avutil)$' | sort -u | tr '\n' ' ')
VIDFEAT_CI_JOBS=$JOBS VIDFEAT_CI_TARGETS="vidfeat" tools/ci/cuda_build.sh "$BUILD" \
  -DHDF5_USE_STATIC_LIBRARIES=ON -DVIDFEAT_DOWNLOADS=OFF -DCMAKE_CXX_STANDARD_LIBRARIES="$ff_private -lsz -laec -lz" \
  >&2
known=$(ninja -C "$BUILD" -t targets all 2>/dev/null | cut -d: -f1)
for t in $TARGETS; do
  if [ "$t" = vidfeat ] || grep -qx "$t" <<<"$known"; then want+=("$t"); else log "no target $t in this tree: not in the bundle"; fi
done
if [ ${#want[@]} -gt 1 ]; then
  tt=(); for t in "${want[@]}"; do tt+=(--target "$t"); done
  flock "${VIDFEAT_BUILD_LOCK:-/tmp/vidfeat-build.lock}" cmake --build "$BUILD" -j "$JOBS" "${tt[@]}" >&2
fi
TORCH_ROOT="$CACHE/torch-$TORCH_VERSION/torch"   # unpacked by cuda_build.sh

# 2. Stage.
S="$OUT/stage/$NAME"
rm -rf "$OUT/stage"
mkdir -p "$S"/{bin,libexec,lib/openmpi,lib/pmix,share/openmpi,share/pmix,etc}
cmake --install "$BUILD" --prefix "$S" >/dev/null   # bin/vidfeat + share/vidfeat/configs
mv "$S/bin/vidfeat" "$S/libexec/vidfeat"
for t in "${want[@]}"; do
  [ "$t" = vidfeat ] && continue
  exe=$(find "$BUILD" -type f -name "$t" -perm -u+x | head -n 1)
  [ -n "$exe" ] || { log "target $t built but its executable is not found under $BUILD"; exit 1; }
  cp "$exe" "$S/libexec/$t"
done
for t in "${want[@]}"; do install -m 755 tools/bundle/launcher.sh "$S/bin/$t"; done
install -m 755 tools/bundle/mpirun.sh "$S/bin/mpirun"
install -m 755 tools/bundle/vidfeat-env.sh "$S/bin/vidfeat-env"
install -m 644 tools/bundle/bundle-env.sh "$S/libexec/bundle-env.sh"
cp "$FF/bin/ffmpeg" "$S/bin/"
cp /usr/bin/orterun /usr/bin/orted "$S/libexec/"
OMPI_PKGLIB=$MA/openmpi/lib/openmpi3
PMIX_PKGLIB=$MA/pmix2/lib/pmix
cp /usr/share/openmpi/help-*.txt /usr/share/openmpi/amca-param-sets -r "$S/share/openmpi/" 2>/dev/null || true
cp "$MA"/pmix2/share/pmix/*.txt "$S/share/pmix/"
cat >"$S/etc/openmpi-mca-params.conf" <<'EOF'
# The bundle's Open MPI: one node, shared memory (the components of other transports are not in
# the bundle; these lines keep Open MPI from looking for them). ~/.openmpi/mca-params.conf and
# OMPI_MCA_* variables still override.
btl = self,vader
pml = ob1
# Processes are started on this node only (no ssh/rsh needed: a singleton's MPI_Init, e.g.
# `vidfeat verify`, starts its daemon with it too).
plm = isolated
btl_base_warn_component_unused = 0
# Single-copy through CMA (process_vm_readv) is refused in many containers and namespaces.
btl_vader_single_copy_mechanism = none
EOF
cat >"$S/etc/pmix-mca-params.conf" <<'EOF'
# The bundle's PMIx components are in lib/pmix (PMIX_MCA_mca_base_component_path, bin/mpirun).
EOF
cp "$ROOT/tools/bundle/README.bundle" "$S/README" 2>/dev/null || true

# 3. Libraries: the ldd closure of every ELF file, minus glibc (the node's) and minus LibTorch /
# CUDA (the node's PyTorch, or the driver). glibc = the shared objects of Debian's libc6 package.
glibc=$(dpkg -L libc6 | sed -n 's|^/lib/x86_64-linux-gnu/\([^/]*\.so[.0-9]*\)$|\1|p; s|^/lib64/\(ld-linux.*\)$|\1|p' | sort -u)
node_lib() {  # $1 soname, $2 resolved path: provided by the node's PyTorch or driver?
  case "$2" in "$TORCH_ROOT"/*|/usr/local/cuda*) return 0 ;; esac
  case "$1" in libcuda.so*|libnvidia-*|libnvcuvid*|libcudart.so*|libcublas*|libcufft*|libcurand*|libcusparse*|libcusolver*|\
    libnvrtc*|libnvJitLink*|libcudnn*|libnccl*|libnvToolsExt*|libnvtx*|libcupti*|libcufile*|libnvshmem*|libtorch*|libc10*|libgomp-*.so*) return 0 ;; esac
  return 1
}
LDLP="$TORCH_ROOT/lib:$MA/openmpi/lib:$MA/pmix2/lib:/usr/local/cuda/lib64"
# deps FILE: "soname path" of each non-glibc, non-node library FILE loads (transitively).
deps() {
  LD_LIBRARY_PATH=$LDLP ldd "$1" 2>/dev/null | while read -r a b c _; do
    [ "$b" = "=>" ] || continue
    grep -qx "$a" <<<"$glibc" && continue
    if [ "$c" = "not" ]; then
      node_lib "$a" "" && continue
      echo "MISSING $a"
      continue
    fi
    node_lib "$a" "$c" && continue
    echo "$a $c"
  done
}
declare -A bundled=()
add_closure() {  # FILE...
  local f line so path
  for f in "$@"; do
    while read -r so path; do
      [ "$so" = MISSING ] && { log "$f needs $path... not found on this machine: $so"; exit 1; }
      [ -n "${bundled[$so]:-}" ] && continue
      bundled[$so]=$path
      cp -L "$path" "$S/lib/$so"
    done < <(deps "$f")
  done
}
main_elves=("$S"/libexec/vidfeat "$S"/libexec/orterun "$S"/libexec/orted "$S"/bin/ffmpeg)
for t in "${want[@]}"; do main_elves+=("$S/libexec/$t"); done
# Open MPI's PMIx glue (libpmix, libmunge) and libmca_common_* (its components' own helpers) are
# loaded by components only.
commons=()
# Copied under their SONAMEs (libmca_common_ompio.so.41: what the components' NEEDED entries say).
for c in sm ompio monitoring; do
  lib=$MA/openmpi/lib/libmca_common_$c.so
  soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
  cp -L "$lib" "$S/lib/$soname" && bundled[$soname]=1
  commons+=("$lib")
done
add_closure "${main_elves[@]}" "$OMPI_PKGLIB/mca_pmix_ext3x.so" "${commons[@]}"
# MCA components: those whose whole closure is already in the bundle (this leaves out the network
# transports: UCX, libfabric, verbs, PSM; netlink; bzip2 compression; treematch).
kept=0 skipped=()
for dir in "$OMPI_PKGLIB" "$PMIX_PKGLIB"; do
  dest=$S/lib/openmpi; [ "$dir" = "$PMIX_PKGLIB" ] && dest=$S/lib/pmix
  for comp in "$dir"/*.so; do
    base=${comp##*/}
    case "$base" in mca_*|pmix_mca_*) ;; *) continue ;; esac
    ok=1
    while read -r so _; do
      [ -n "${bundled[$so]:-}" ] || { ok=0; skipped+=("$base($so)"); break; }
    done < <(deps "$comp")
    [ $ok = 1 ] || continue
    cp "$comp" "$dest/" && kept=$((kept + 1))
  done
done
log "Open MPI/PMIx components: $kept kept; left out (needs a library outside the bundle): ${skipped[*]:-none}"

# 4. RUNPATHs relative to each file, so nothing depends on LD_LIBRARY_PATH but PyTorch's folders
# (which the launchers add); debug info stripped.
for f in "$S"/lib/*.so*; do
  if readelf -d "$f" | grep -q '(NEEDED)'; then patchelf --set-rpath '$ORIGIN' "$f"; fi
done
for f in "$S"/lib/openmpi/*.so "$S"/lib/pmix/*.so; do patchelf --set-rpath '$ORIGIN/..' "$f"; done
for f in "$S"/libexec/* "$S"/bin/ffmpeg; do
  head -c 4 "$f" | grep -q ELF || continue
  patchelf --set-rpath '$ORIGIN/../lib' "$f"
done
strip --strip-unneeded "$S"/libexec/vidfeat "$S"/bin/ffmpeg "$S"/lib/*.so* "$S"/lib/openmpi/*.so "$S"/lib/pmix/*.so 2>/dev/null || true
for t in "${want[@]}"; do strip --strip-unneeded "$S/libexec/$t" 2>/dev/null || true; done

# 5. The glibc floor: the newest GLIBC_x.y symbol version any file needs.
floor=$(find "$S" -type f \( -name '*.so*' -o -perm -u+x \) -exec sh -c 'head -c 4 "$1" | grep -q ELF && objdump -T "$1"' _ {} \; 2>/dev/null |
  grep -o 'GLIBC_[0-9.]*' | sort -u -V | tail -n 1)
cat >"$S/BUILDINFO" <<EOF
vidfeat $VERSION ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ", with local changes")), built $(date -u +%Y-%m-%dT%H:%MZ) on $(. /etc/os-release && echo "$PRETTY_NAME")
LibTorch: PyPI torch==$TORCH_VERSION (CUDA 13.0) -- not carried: the node's PyTorch (VIDFEAT_TORCH or python3's torch)
FFmpeg: $(basename "$FF") (Debian source $(dpkg-query -W -f='${Version}' libavcodec-dev))
HDF5: $(dpkg-query -W -f='${Version}' libhdf5-openmpi-dev) static; Open MPI $(dpkg-query -W -f='${Version}' libopenmpi3) shared
glibc needed: $floor or newer (x86_64)
EOF

# 6. Pack.
tarball="$OUT/$NAME.tar.xz"
tar -C "$OUT/stage" --owner=0 --group=0 --numeric-owner -cf - "$NAME" | xz -T"$JOBS" -6 >"$tarball.partial"
mv "$tarball.partial" "$tarball"
files=$(find "$S" -type f | wc -l)
size=$(du -sb "$S" | cut -f1)
log "$tarball: $files files, $((size / 1048576)) MiB unpacked, $(( $(stat -c %s "$tarball") / 1048576 )) MiB packed (xz); needs $floor; $(( $(date +%s) - started )) s"
echo "$tarball"
