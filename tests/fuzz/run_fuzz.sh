#!/usr/bin/env bash
# Builds the unpickler fuzz target with clang (libFuzzer + AddressSanitizer, which also reports
# leaks) and runs it for a bounded time on a copy of the seed corpus. Exit 77 (ctest: skipped)
# when clang or its fuzzer runtime is missing (tools/setup.sh installs clang, libclang-rt-14-dev).
#   tests/fuzz/run_fuzz.sh BUILD_DIR [SECONDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:?build dir}/fuzz
seconds=${2:-20}
cxx=$(command -v clang++ || command -v clang++-14 || true)
if [ -z "$cxx" ]; then echo "run_fuzz: clang++ not found; skipping"; exit 77; fi
mkdir -p "$out"
bin="$out/fuzz_pickle"
src=("$here/fuzz_pickle.cpp" "$root/src/model/checkpoint/pickle_reader.cpp")
if [ ! -x "$bin" ] || [ -n "$(find "${src[@]}" "$root/src/model/checkpoint/pickle_reader.h" -newer "$bin")" ]; then
  if ! "$cxx" -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
      -I "$root/include" "${src[@]}" -o "$bin" 2> "$out/build.log"; then
    if grep -q "libclang_rt.fuzzer\|fsanitize=fuzzer" "$out/build.log"; then
      cat "$out/build.log"; echo "run_fuzz: no libFuzzer runtime (libclang-rt-14-dev); skipping"; exit 77
    fi
    cat "$out/build.log"; exit 1
  fi
fi
corpus="$out/corpus"
rm -rf "$corpus" && mkdir -p "$corpus" && cp "$here"/corpus/* "$corpus"/
# -rss_limit_mb / -malloc_limit_mb: the parser's memory is linear in its input; a blow-up is a bug.
"$bin" -max_total_time="$seconds" -rss_limit_mb=1024 -malloc_limit_mb=512 -timeout=10 -max_len=4096 \
  -print_final_stats=1 "$corpus" 2>&1 | tail -25
exit "${PIPESTATUS[0]}"
