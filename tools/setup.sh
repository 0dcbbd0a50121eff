#!/usr/bin/env bash
# Installs vidfeat's build and test dependencies (Debian 12 packages only) and builds it.
# Idempotent: packages already present are not reinstalled and `apt-get update` runs only when
# something is missing. Usage: tools/setup.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libtorch-dev libopenblas0-openmp          # LibTorch + an optimised BLAS (else the reference BLAS, ~20x slower)
  libdnnl-dev                               # oneDNN's sgemm for the attention / MLP products (src/model/kernels/gemm.h)
  libopenmpi-dev openmpi-bin
  libhdf5-openmpi-dev hdf5-tools            # parallel HDF5 (MPI-IO) and h5dump
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev
  libboost-program-options-dev libfmt-dev libyaml-cpp-dev libspdlog-dev
  libcurl4-openssl-dev                      # --model NAME downloads published checkpoints
  libgtest-dev
  ffmpeg                                    # tests and the demo generate videos with it
  python3-h5py python3-numpy                # tests read the output with h5py
  python3-pil                               # test_pil_resize: CLIP's scale against Pillow itself
  clang libclang-rt-14-dev                  # the unpickler's libFuzzer test (tests/fuzz)
  clang-format                              # tools/ci/check_format.sh (Debian's clang-format 14)
  slurm-wlm munge                           # tests/slurm runs the slurm/ scripts under a real SLURM
)

tools/install_packages.sh setup "${PACKAGES[@]}"

cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIDFEAT_WERROR="${VIDFEAT_WERROR:-OFF}"
cmake --build "$BUILD_DIR" -j "$(nproc)"
