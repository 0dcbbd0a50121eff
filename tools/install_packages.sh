#!/usr/bin/env bash
# Installs the Debian packages given that are not installed yet (dpkg's "install ok installed");
# `apt-get update` runs only when something is missing, with sudo unless run as root. Shared by
# tools/setup.sh, tools/reference/setup.sh and tools/ci/cuda_build.sh.
#
#   tools/install_packages.sh LABEL PACKAGE...     (LABEL starts the line naming what it installs)
set -euo pipefail
label=${1:?usage: install_packages.sh LABEL PACKAGE...}
shift

missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -gt 0 ] || exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "$label: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
