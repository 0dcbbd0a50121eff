#!/usr/bin/env bash
# CI step: configure and build vidfeat (no run: CI has no GPU) against PyPI's CUDA-enabled LibTorch
# with the CUDA toolkit installed on the machine, so that the CUDA code paths (pinned buffers,
# non-blocking copies, c10::cuda streams, --precision on the device) and the LibTorch 2.x API are
# compiled on every CI run, next to the Debian CPU LibTorch 1.13 build that runs the tests.
#
# Usage: tools/ci/cuda_build.sh [BUILD_DIR [EXTRA CMAKE ARGS...]]     (default: build-cuda)
#   The extra arguments go to the configure step (tools/bundle/build.sh passes its static FFmpeg,
#   static HDF5 and a Release build of the vidfeat target only through them).
# Environment:
#   VIDFEAT_CUDA_TORCH   torch wheel version to build against (default below)
#   VIDFEAT_CI_CACHE     where the wheel and its unpacked LibTorch are kept (default ~/.cache/vidfeat-ci;
#                        outside the clone, so a fresh clone reuses them)
#   CUDA_HOME            the CUDA toolkit (default /usr/local/cuda)
#   VIDFEAT_CI_JOBS      build jobs (default: nproc)
#   VIDFEAT_CI_TARGETS   what to build (default: all)
#   VIDFEAT_BUILD_LOCK   every compile takes this lock (default /tmp/vidfeat-build.lock; a shared
#                        machine's builds run one at a time)
#
# Which wheel: PyPI's x86_64 torch wheels carry one CUDA each (their cuda-toolkit / nvidia-*
# requirements say which): 2.10.0 is CUDA 12.8, 2.11.0 and 2.12.1 are CUDA 13.0
# (cuda-toolkit==13.0.2), 2.15.0 is CUDA 13.2. The toolkit here is 13.0, so 2.11.0 (the PyTorch of
# the GPU nodes the relocatable bundle, tools/bundle/, is built for: CI needs that one wheel only).
# Its libtorch_cuda.so needs
# libcudart.so.13, libcublas(Lt).so.13, libcufft.so.12, libcusparse.so.12, libnvrtc.so.13,
# libcudnn.so.9 and libnccl.so.2, which the toolkit (with cuDNN and NCCL) has, with the same minor
# version, and the toolkit's headers compile torch's c10/cuda headers. What the toolkit lacks is
# what the wheel takes from other nvidia-* wheels: cuSPARSELt, cuFile and NVSHMEM, plus the
# driver's libcuda.so. Downloading those wheels would add gigabytes to the CI cache for a build that
# is never run here, so executables are linked with -Wl,--unresolved-symbols=ignore-in-shared-libs:
# the references *inside* LibTorch's shared libraries to those absent libraries are left to load
# time; every symbol vidfeat's own objects use must still resolve (an API change or a typo is still
# a link error). To run such a build on a GPU machine, use the environment where
# `pip install torch==<version>` put the nvidia-* wheels (LD_LIBRARY_PATH to their lib folders).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD_DIR=${1:-build-cuda}
shift $(( $# > 0 ? 1 : 0 ))
LOCK=${VIDFEAT_BUILD_LOCK:-/tmp/vidfeat-build.lock}
TORCH_VERSION=${VIDFEAT_CUDA_TORCH:-2.11.0}
CACHE=${VIDFEAT_CI_CACHE:-$HOME/.cache/vidfeat-ci}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
started=$(date +%s)

if ! command -v nvcc >/dev/null; then
  [ -x "$CUDA_HOME/bin/nvcc" ] || { echo "ci_cuda_build: no CUDA toolkit (nvcc) on PATH or in $CUDA_HOME" >&2; exit 1; }
  export PATH="$CUDA_HOME/bin:$PATH"
fi

# 1. The wheel, downloaded once (pip's own client; only the torch wheel, none of its dependencies).
wheels="$CACHE/wheels"
mkdir -p "$wheels"
wheel=$(ls "$wheels"/torch-"$TORCH_VERSION"-*manylinux*x86_64.whl 2>/dev/null | head -n 1 || true)
if [ -z "$wheel" ]; then
  python3 -m pip --version >/dev/null 2>&1 || tools/install_packages.sh ci_cuda_build python3-pip
  echo "ci_cuda_build: downloading torch $TORCH_VERSION (once, into $wheels)"
  # --python-version/--platform: the C++ parts are the same in every cp3X wheel; take the cp311 one
  # whatever python3 is here.
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_28_x86_64 -d "$wheels" "torch==$TORCH_VERSION"
  wheel=$(ls "$wheels"/torch-"$TORCH_VERSION"-*manylinux*x86_64.whl | head -n 1)
fi

# 2. Its LibTorch (torch/lib, include, share), unpacked once; .complete marks a finished unpack.
root="$CACHE/torch-$TORCH_VERSION"
if [ ! -f "$root/.complete" ]; then
  rm -rf "$root" "$root.partial"
  mkdir -p "$root.partial"
  python3 - "$wheel" "$root.partial" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    z.extractall(sys.argv[2], [n for n in z.namelist()
                               if n.startswith(("torch/lib/", "torch/include/", "torch/share/")) or n == "torch/version.py"])
PY
  touch "$root.partial/.complete"
  mv "$root.partial" "$root"
fi
echo "ci_cuda_build: $(grep -E '^(__version__|cuda)' "$root/torch/version.py" | tr '\n' ' ')against $(nvcc --version | tail -n 1)"

# 3. Configure and build. Tests are not built: they run in the CPU build; this build checks that
# the library, the CUDA paths and the executable compile and link against LibTorch 2.x with CUDA.
# TORCH_CUDA_ARCH_LIST: there is no GPU to detect (no .cu files are compiled either way).
# CMAKE_PREFIX_PATH is <wheel>/torch, not the usual <wheel>/torch/share/cmake: TorchConfig.cmake
# finds libtorch.so with find_library(... PATHS <wheel>/torch/lib), which searches the system
# folders first, where Debian's CPU LibTorch (libtorch-dev, for the main build) would be taken;
# a prefix of <wheel>/torch puts <wheel>/torch/lib ahead of them (the check below makes sure).
# The wheel's include folder carries its own {fmt} (a newer major version than Debian's), and it is
# on the include path of everything that uses the model; Debian's spdlog is built against Debian's
# fmt and does not compile against the wheel's. A folder holding only a link to Debian's fmt,
# passed with -I (searched before the -isystem folders), puts it first for every file.
mkdir -p "$BUILD_DIR/debian-fmt"
fmt_dir=$(cd "$BUILD_DIR/debian-fmt" && pwd)
ln -sfn /usr/include/fmt "$fmt_dir/fmt"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DVIDFEAT_BUILD_TESTS=OFF \
  -DCMAKE_CXX_FLAGS="-I$fmt_dir" \
  -DCMAKE_PREFIX_PATH="$root/torch" -DCUDAToolkit_ROOT="$CUDA_HOME" \
  -DTORCH_CUDA_ARCH_LIST="9.0" \
  -DCMAKE_EXE_LINKER_FLAGS="-Wl,--unresolved-symbols=ignore-in-shared-libs" "$@"
grep -q '^VIDFEAT_TORCH_CUDA:INTERNAL=ON' "$BUILD_DIR/CMakeCache.txt" || {
  echo "ci_cuda_build: LibTorch at $root was configured without CUDA" >&2
  exit 1
}
if ! grep -q "^TORCH_LIBRARY:FILEPATH=$root/torch/lib/libtorch.so" "$BUILD_DIR/CMakeCache.txt"; then
  echo "ci_cuda_build: configured with $(grep '^TORCH_LIBRARY:' "$BUILD_DIR/CMakeCache.txt"), not the wheel's" >&2
  exit 1
fi
targets=()
for t in ${VIDFEAT_CI_TARGETS:-}; do targets+=(--target "$t"); done
flock "$LOCK" cmake --build "$BUILD_DIR" -j "${VIDFEAT_CI_JOBS:-$(nproc)}" "${targets[@]}"
echo "ci_cuda_build: built $BUILD_DIR/vidfeat against CUDA LibTorch $TORCH_VERSION in $(( $(date +%s) - started )) s"
