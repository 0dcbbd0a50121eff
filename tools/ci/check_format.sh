#!/usr/bin/env bash
# CI step: every C/C++ file of the tree is formatted as .clang-format says. Lists the files that
# differ (with how many lines would change) and exits 1; exits 0 when none does.
#
# Usage: tools/ci/check_format.sh [FILE...]     (default: every tracked .c/.cc/.cpp/.h/.hpp file)
# Environment: CLANG_FORMAT   the clang-format to use (default /usr/bin/clang-format: Debian 12's
#                             clang-format 14, package clang-format; tools/setup.sh installs it).
# Another major version formats some constructs differently, so the check says which one it ran.
# To fix a file: clang-format -i --style=file FILE
set -euo pipefail
cd "$(dirname "$0")/../.."
CLANG_FORMAT=${CLANG_FORMAT:-/usr/bin/clang-format}
if ! [ -x "$CLANG_FORMAT" ]; then
  echo "check_format: $CLANG_FORMAT not found (Debian: apt-get install clang-format; tools/setup.sh does)" >&2
  exit 1
fi
[ -f .clang-format ] || { echo "check_format: no .clang-format in $(pwd)" >&2; exit 1; }
version=$("$CLANG_FORMAT" --version)
case "$version" in
  *"version 14."*) ;;
  *) echo "check_format: note: $version is not clang-format 14 (CI's); results may differ" >&2 ;;
esac

if [ $# -gt 0 ]; then
  files=("$@")
elif git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files -- '*.c' '*.cc' '*.cpp' '*.h' '*.hpp')
else
  mapfile -t files < <(find src include tests tools -type f \
    \( -name '*.c' -o -name '*.cc' -o -name '*.cpp' -o -name '*.h' -o -name '*.hpp' \) | sort)
fi

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
differ=0
for f in "${files[@]}"; do
  [ -f "$f" ] || continue  # listed by git but deleted in the work tree
  # The formatted text against the file, byte for byte (trailing blank lines included).
  if ! "$CLANG_FORMAT" --style=file "$f" >"$tmp"; then
    echo "check_format: clang-format failed on $f" >&2
    differ=$((differ + 1))
    continue
  fi
  if ! cmp -s "$tmp" "$f"; then
    lines=$(diff "$tmp" "$f" | grep -c '^[<>]' || true)
    echo "  $f: $lines line(s) differ"
    differ=$((differ + 1))
  fi
done
if [ "$differ" -gt 0 ]; then
  echo "check_format: $differ of ${#files[@]} file(s) differ from .clang-format ($version)"
  echo "check_format: fix with: $CLANG_FORMAT -i --style=file FILE..."
  exit 1
fi
echo "check_format: all ${#files[@]} file(s) match .clang-format ($version)"
