#!/usr/bin/env bash
# The stand-in for a GPU node's PyTorch in tools/bundle/check.sh: PyPI's torch==2.11.0 (CUDA 13.0)
# with its nvidia-* dependency wheels (libtorch_cuda.so's RUNPATH names ../../nvidia/*/lib: even
# the CPU fallback loads them), pip-installed once into a folder (--target, no virtualenv, the
# node's layout: <dir>/torch, <dir>/nvidia/cu13/lib ...). Prints the folder.
#   Cold: ~4.6 GB, ~3 min at PyPI's ~27 MB/s here; then cached, finished when .complete exists.
# Usage: tools/bundle/torch_env.sh        Environment: VIDFEAT_CI_CACHE (default ~/.cache/vidfeat-ci)
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE=${VIDFEAT_CI_CACHE:-$HOME/.cache/vidfeat-ci}
TORCH_VERSION=2.11.0
env_dir="$CACHE/torch-env-$TORCH_VERSION"
if [ ! -f "$env_dir/.complete" ]; then
  python3 -m pip --version >/dev/null 2>&1 || flock /tmp/vidfeat-apt.lock tools/install_packages.sh bundle python3-pip >&2
  echo "bundle/torch_env: pip install torch==$TORCH_VERSION and its CUDA wheels into $env_dir (once)" >&2
  rm -rf "$env_dir" "$env_dir.partial"
  # The wheel tools/ci/cuda_build.sh downloaded is reused (--find-links); cp311 like that one.
  # With --platform pip takes only the tags named: torch's is manylinux_2_28, the nvidia-* wheels'
  # older (cuDNN 2_27, NCCL 2_18, ...): every glibc 2.17..2.28 tag.
  platforms=(--platform manylinux2014_x86_64)
  for minor in $(seq 17 28); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
  mkdir -p "$CACHE/wheels"
  python3 -m pip install --disable-pip-version-check --no-cache-dir --only-binary=:all: \
    --python-version 3.11 --target "$env_dir.partial" "${platforms[@]}" \
    --find-links "$CACHE/wheels" "torch==$TORCH_VERSION" >&2
  touch "$env_dir.partial/.complete"
  mv "$env_dir.partial" "$env_dir"
fi
[ -f "$env_dir/torch/lib/libtorch_cpu.so" ] || { echo "bundle/torch_env: $env_dir has no torch/lib/libtorch_cpu.so" >&2; exit 1; }
echo "$env_dir"
