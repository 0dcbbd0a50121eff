#!/usr/bin/env bash
# Builds one libFuzzer target with clang (libFuzzer + AddressSanitizer, which also reports leaks,
# + UBSan) and runs it for a bounded time on a copy of its seed corpus. Exit 77 (ctest: skipped)
# when clang or its fuzzer runtime is missing (tools/setup.sh installs clang, libclang-rt-14-dev).
#   tests/fuzz/run_fuzz.sh BUILD_DIR [SECONDS] [TARGET]
# TARGET: pickle (default; the restricted unpickler, inputs up to 1 MB), literal (the config's
# Python-literal parser), manifest (the manifest reader).
# -rss_limit_mb: every reader's memory is linear in its input (the unpickler's budget: a 1 MB
# input makes at most ~250 MB of values and slots, ASan's overhead included below 1 GB); a blow-up
# is a bug. -timeout: one input may take at most 10 s.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:?build dir}/fuzz
seconds=${2:-20}
target=${3:-pickle}
# A skip prints its reason and leaves it for tests/support/print_skipped.py (run after ctest).
skip() { echo "run_fuzz: $1; skipping"; mkdir -p "${out%/fuzz}/Testing/skipped" 2>/dev/null
         echo "$1" > "${out%/fuzz}/Testing/skipped/fuzz_$target" 2>/dev/null; exit 77; }
cxx=$(command -v clang++ || command -v clang++-14 || true)
if [ -z "$cxx" ]; then skip "clang++ not found"; fi
mkdir -p "$out"
flags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I "$root/include")
libs=()
case "$target" in
  pickle)
    src=("$here/fuzz_pickle.cpp" "$root/src/model/checkpoint/pickle_reader.cpp")
    deps=("$root/src/model/checkpoint/pickle_reader.h")
    seeds="$here/corpus"; maxlen=1048576 ;;
  literal)
    src=("$here/fuzz_literal.cpp" "$root/src/config/config.cpp")
    deps=("$root/include/vidfeat/config/config.h")
    flags+=(-DFMT_SHARED -DSPDLOG_COMPILED_LIB -DSPDLOG_FMT_EXTERNAL -DSPDLOG_SHARED_LIB)
    libs=(-lyaml-cpp -lspdlog -lfmt)
    seeds="$here/corpus_literal"; maxlen=65536 ;;
  manifest)
    src=("$here/fuzz_manifest.cpp" "$root/src/run/manifest.cpp")
    deps=("$root/include/vidfeat/run/manifest.h")
    libs=()
    seeds="$here/corpus_manifest"; maxlen=65536 ;;
  *) echo "run_fuzz: unknown target $target"; exit 2 ;;
esac
bin="$out/fuzz_$target"
if [ ! -x "$bin" ] || [ -n "$(find "${src[@]}" "${deps[@]}" "$0" -newer "$bin")" ]; then
  if ! "$cxx" "${flags[@]}" "${src[@]}" "${libs[@]}" -o "$bin" 2> "$out/build_$target.log"; then
    if grep -q "libclang_rt.fuzzer\|fsanitize=fuzzer" "$out/build_$target.log"; then
      cat "$out/build_$target.log"; skip "no libFuzzer runtime (libclang-rt-14-dev)"
    fi
    cat "$out/build_$target.log"; exit 1
  fi
fi
corpus="$out/corpus_$target"
rm -rf "$corpus" && mkdir -p "$corpus" && cp "$seeds"/* "$corpus"/
# -malloc_limit_mb: no single allocation over 512 MB.
"$bin" -max_total_time="$seconds" -rss_limit_mb=1024 -malloc_limit_mb=512 -timeout=10 -max_len="$maxlen" \
  -print_final_stats=1 "$corpus" 2>&1 | tail -25
exit "${PIPESTATUS[0]}"
