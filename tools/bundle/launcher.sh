#!/bin/sh
# The bundle's launcher for its executables (bin/vidfeat, bin/gpu_probe, ...: copies of this file,
# each running libexec/<its own name>). It finds the node's PyTorch (libexec/bundle-env.sh:
# VIDFEAT_TORCH, else python3's torch), puts the bundle's lib/ and then PyTorch's (torch/lib, the
# nvidia-* wheels' lib folders) ahead of LD_LIBRARY_PATH, sets Open MPI's paths into the bundle,
# and execs the real program. POSIX sh with builtins only.
case $0 in */*) d=${0%/*} ;; *) d=. ;; esac
B=$(cd "$d/.." && pwd -P) || exit 1
. "$B/libexec/bundle-env.sh" || exit 1
vidfeat_bundle_env
vidfeat_bundle_torch || exit 1
LD_LIBRARY_PATH="$B/lib:$VIDFEAT_TORCH_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LD_LIBRARY_PATH
exec "$B/libexec/${0##*/}" "$@"
