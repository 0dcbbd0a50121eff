#!/usr/bin/env bash
# Builds one libFuzzer target with clang (libFuzzer + AddressSanitizer, which also reports leaks,
# + UBSan) and runs it for a bounded time on a copy of its seed corpus. Exit 77 (ctest: skipped)
# when clang or its fuzzer runtime is missing (tools/setup.sh installs clang, libclang-rt-14-dev).
#   tests/fuzz/run_fuzz.sh BUILD_DIR [SECONDS] [TARGET]
# TARGET: pickle (default; the restricted unpickler, inputs up to 1 MB), literal (the config's
# Python-literal parser), manifest (the manifest reader), output (the validation and reading of an
# untrusted output file; its seeds are real outputs made by tests/fuzz/make_output_seeds.py into
# BUILD_DIR/fuzz/seeds_output, the ctest fixture fuzz_output_seeds).
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
  output)
    src=("$here/fuzz_output.cpp" "$root"/src/store/{store_validation,store_reader,store_schema,hdf5}.cpp)
    deps=("$root"/src/store/*.h "$root/include/vidfeat/store/feature_store.h"
          "$root/include/vidfeat/common/video_record.h")
    flags+=(-DFMT_SHARED -DSPDLOG_COMPILED_LIB -DSPDLOG_FMT_EXTERNAL -DSPDLOG_SHARED_LIB
            $(pkg-config --cflags hdf5-openmpi))
    libs=($(pkg-config --libs hdf5-openmpi) -lz -lspdlog -lfmt)
    seeds="$out/seeds_output"; maxlen=131072
    export LSAN_OPTIONS="suppressions=$here/lsan_hdf5.supp:print_suppressions=0"  # its own, alone
    # HDF5 itself mallocs the sizes a corrupt header declares (3e15 bytes seen) before it finds
    # they exceed the file; glibc's malloc answers NULL and HDF5 fails cleanly, so ASan must too
    # (allocator_may_return_null) and libFuzzer's per-malloc limit cannot tell its requests from
    # ours: for this target the bound is memory actually used (-rss_limit_mb), and a bad_alloc
    # in vidfeat's code aborts (fuzz_output.cpp).
    # fast_unwind_on_malloc=0: HDF5 has no frame pointers; a leak report must reach H5C_protect
    # for the suppression to match.
    # max_allocation_size_mb: HDF5 also mallocs declared sizes small enough to be granted (8 GiB
    # for an object header whose size field was mutated, regress_output/oom-8cbbf142...) and
    # frees them untouched when the read past EOA fails: without ASan that costs no memory
    # (`vidfeat inspect` refuses that file at 175 MB peak RSS), but ASan poisons the shadow of
    # every granted chunk (1/8 of its size: 1 GiB here), which crossed -rss_limit_mb in CI. Above
    # 2 GiB ASan answers NULL as glibc does for the larger ones; vidfeat's own allocations are
    # bounded by the validation far below that (a NULL there is a bad_alloc: the harness aborts).
    export ASAN_OPTIONS="allocator_may_return_null=1:fast_unwind_on_malloc=0:max_allocation_size_mb=2048${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    malloc_limit=1048576
    [ -n "$(ls -A "$seeds" 2>/dev/null)" ] || { echo "run_fuzz: no seeds in $seeds (make_output_seeds.py)"; exit 1; } ;;
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
# Inputs that once failed this target (tests/fuzz/regress_TARGET/) run first, every time.
if [ -d "$here/regress_$target" ]; then cp "$here/regress_$target"/* "$corpus"/; fi
# -malloc_limit_mb: no single allocation over 512 MB (but see the output target).
"$bin" -max_total_time="$seconds" -rss_limit_mb=1024 -malloc_limit_mb="${malloc_limit:-512}" -timeout=10 -max_len="$maxlen" \
  -print_final_stats=1 "$corpus" 2>&1 | tail -25
exit "${PIPESTATUS[0]}"
