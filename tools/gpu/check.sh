#!/bin/sh
# vidfeat's GPU check (tools/gpu/README.md): one table of parity, throughput, the PySlowFast anchor,
# NVDEC decoding and end-to-end extraction on this node, written to OUT/check.md and check.json.
#   tools/gpu/check.sh vidfeat-<version>-cuda.tar.xz [--quick] [--out DIR] [--pysf DIR]
#   tools/gpu/check.sh --vidfeat build/src/cli/vidfeat [--quick] ...   (a build tree; CPU fallback here)
# Python: $VIDFEAT_PYTHON, else python3 (standard library; torch for the PySlowFast row).
here=$(cd "$(dirname "$0")" && pwd)
py=${VIDFEAT_PYTHON:-python3}
exec "$py" "$here/check.py" "$@"
