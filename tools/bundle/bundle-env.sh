# Sourced (POSIX sh, shell builtins only: the self-containment check runs it in an empty root) by
# the bundle's launchers, bin/vidfeat, bin/mpirun, bin/vidfeat-env, with B set to the bundle's
# folder. Installed as libexec/bundle-env.sh by tools/bundle/build.sh.
#
# vidfeat_bundle_env: Open MPI 4.1 and PMIx relocated into the bundle (their compiled-in /usr and
#   /etc paths are overridden one by one: OPAL_PREFIX alone does not move Debian's libdir layout).
# vidfeat_bundle_torch: VIDFEAT_TORCH (the torch package folder, holding lib/libtorch_cpu.so) as
#   given, or asked from ${VIDFEAT_PYTHON:-python3} without importing torch (find_spec: no CUDA
#   initialisation, no second of start-up per rank); then VIDFEAT_TORCH_LIBS, the folders the
#   node's PyTorch loads its libraries from: torch/lib and the nvidia-* wheels' lib folders beside
#   it (site-packages/nvidia/*/lib, nvidia/cu13/lib), and a conda prefix's lib when it holds libcudart.

vidfeat_bundle_env() {
  export OPAL_PREFIX="$B" OPAL_EXEC_PREFIX="$B" OPAL_BINDIR="$B/libexec" OPAL_LIBDIR="$B/lib"
  export OPAL_PKGLIBDIR="$B/lib/openmpi" OPAL_DATADIR="$B/share" OPAL_PKGDATADIR="$B/share/openmpi"
  export OPAL_SYSCONFDIR="$B/etc" OPAL_DATAROOTDIR="$B/share"
  export OMPI_MCA_mca_base_component_path="$B/lib/openmpi"
  export PMIX_PREFIX="$B" PMIX_EXEC_PREFIX="$B" PMIX_LIBDIR="$B/lib" PMIX_PKGLIBDIR="$B/lib/pmix"
  export PMIX_DATADIR="$B/share" PMIX_DATAROOTDIR="$B/share" PMIX_PKGDATADIR="$B/share/pmix"
  export PMIX_SYSCONFDIR="$B/etc"
  export PMIX_MCA_mca_base_component_path="$B/lib/pmix"
  export VIDFEAT_BUNDLE="$B"
}

vidfeat_bundle_torch() {
  if [ -z "${VIDFEAT_TORCH:-}" ]; then
    VIDFEAT_TORCH=$("${VIDFEAT_PYTHON:-python3}" -c 'import importlib.util as u, os, sys
s = u.find_spec("torch")
sys.exit(1) if s is None or s.origin is None else print(os.path.dirname(s.origin))' 2>/dev/null) || {
      echo "vidfeat bundle: no PyTorch found: ${VIDFEAT_PYTHON:-python3} cannot import torch; set VIDFEAT_TORCH to the torch package folder (.../site-packages/torch) or VIDFEAT_PYTHON to a python that has torch 2.11" >&2
      return 1
    }
  fi
  if [ ! -f "$VIDFEAT_TORCH/lib/libtorch_cpu.so" ]; then
    echo "vidfeat bundle: VIDFEAT_TORCH=$VIDFEAT_TORCH has no lib/libtorch_cpu.so (it must be the torch package folder, .../site-packages/torch)" >&2
    return 1
  fi
  export VIDFEAT_TORCH
  VIDFEAT_TORCH_LIBS="$VIDFEAT_TORCH/lib"
  for d in "$VIDFEAT_TORCH"/../nvidia/*/lib "$VIDFEAT_TORCH"/../nvidia/*/*/lib; do
    [ -d "$d" ] && VIDFEAT_TORCH_LIBS="$VIDFEAT_TORCH_LIBS:$d"
  done
  # A conda PyTorch takes CUDA from the environment's lib (PREFIX/lib/pythonX.Y/site-packages/torch).
  set -- "$VIDFEAT_TORCH"/../../../../lib/libcudart.so.*
  [ -e "$1" ] && VIDFEAT_TORCH_LIBS="$VIDFEAT_TORCH_LIBS:${1%/*}"
  return 0
}
