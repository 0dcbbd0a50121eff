#!/bin/sh
# Prints the environment of the bundle as shell assignments, for a shell or a job script:
#   eval "$(/path/to/vidfeat-<version>-cuda/bin/vidfeat-env)"
# PATH gets the bundle's bin/ (vidfeat, mpirun, ffmpeg, ffprobe, ...), VIDFEAT_TORCH the node's
# PyTorch, and Open MPI's / PMIx's paths point into the bundle. LD_LIBRARY_PATH is left alone (the
# launchers set it for their own program only, so python and other programs keep the node's
# libraries); VIDFEAT_TORCH_LIBS holds the folders they add.
case $0 in */*) d=${0%/*} ;; *) d=. ;; esac
B=$(cd "$d/.." && pwd -P) || exit 1
. "$B/libexec/bundle-env.sh" || exit 1
vidfeat_bundle_env
vidfeat_bundle_torch || exit 1
for v in OPAL_PREFIX OPAL_EXEC_PREFIX OPAL_BINDIR OPAL_LIBDIR OPAL_PKGLIBDIR OPAL_DATADIR OPAL_PKGDATADIR \
  OPAL_SYSCONFDIR OPAL_DATAROOTDIR OMPI_MCA_mca_base_component_path \
  PMIX_PREFIX PMIX_EXEC_PREFIX PMIX_LIBDIR PMIX_PKGLIBDIR PMIX_DATADIR PMIX_DATAROOTDIR PMIX_PKGDATADIR \
  PMIX_SYSCONFDIR PMIX_MCA_mca_base_component_path VIDFEAT_BUNDLE VIDFEAT_TORCH VIDFEAT_TORCH_LIBS; do
  eval "val=\$$v"
  printf "export %s='%s'\n" "$v" "$val"
done
printf "export PATH='%s/bin'\${PATH:+:\$PATH}\n" "$B"
