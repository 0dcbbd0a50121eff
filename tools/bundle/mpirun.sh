#!/bin/sh
# The bundle's mpirun (Open MPI 4.1's orterun, relocated: libexec/bundle-env.sh). The ranks it
# starts inherit this environment; start them with the bundle's launchers (bin/vidfeat), which add
# PyTorch's libraries. PyTorch is looked up here once (VIDFEAT_TORCH exported to every rank), but
# not required: mpirun itself needs only the bundle. POSIX sh with builtins only.
case $0 in */*) d=${0%/*} ;; *) d=. ;; esac
B=$(cd "$d/.." && pwd -P) || exit 1
. "$B/libexec/bundle-env.sh" || exit 1
vidfeat_bundle_env
vidfeat_bundle_torch 2>/dev/null || unset VIDFEAT_TORCH
exec "$B/libexec/orterun" "$@"
