#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (address and undefined-behaviour sanitizers) and runs each
# for FUZZ_SECONDS (default 30) from the corpus in tests/fuzz/corpus (new inputs go to a temporary
# directory, not the repository). Fails on any crash, sanitizer report, leak, out-of-memory
# (-rss_limit_mb) or hang (-timeout). Skipped (77) where clang's libFuzzer is not installed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=${FUZZ_SECONDS:-30}
cxx=${FUZZ_CXX:-clang++}
command -v "$cxx" >/dev/null || { echo "SKIP no $cxx (install clang and libclang-rt-14-dev)"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp" /tmp/distgan-idx-fuzz-*' EXIT
flags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$root"
       -I/usr/include/hdf5/serial)
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' > "$tmp/probe.cpp"
"$cxx" -fsanitize=fuzzer "$tmp/probe.cpp" -o "$tmp/probe" 2>/dev/null ||
  { echo "SKIP $cxx has no libFuzzer (install libclang-rt-14-dev)"; exit 77; }

build() {  # NAME SOURCES... -- LIBS...
  local name=$1; shift
  "$cxx" "${flags[@]}" "$@" -o "$tmp/$name" 2>"$tmp/$name.build.log" ||
    { cat "$tmp/$name.build.log"; echo "FAIL building $name"; exit 1; }
}
build config_fuzzer "$here/config_fuzzer.cpp" "$root/trainer/config/config_yaml.cpp" "$root/trainer/config/config_schema.cpp" -lyaml-cpp
build idx_fuzzer "$here/idx_fuzzer.cpp" "$root/data/idx_import.cpp" -lz

failed=0
for target in config idx; do
  mkdir -p "$tmp/corpus-$target"
  cp "$here/corpus/$target"/* "$tmp/corpus-$target/"
  ASAN_OPTIONS=detect_leaks=1 "$tmp/${target}_fuzzer" "$tmp/corpus-$target" -max_total_time="$seconds" \
    -rss_limit_mb=1024 -malloc_limit_mb=512 -timeout=5 -print_final_stats=1 -artifact_prefix="$tmp/$target-" \
    >"$tmp/$target.log" 2>&1
  rc=$?
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$tmp/$target.log" | grep -oE '[0-9]+$')
  if [ $rc -eq 0 ]; then
    echo "PASS ${target}_fuzzer: ${runs:-?} inputs in ${seconds}s, no crash, leak, hang or excess memory"
  else
    failed=1
    echo "FAIL ${target}_fuzzer (exit $rc):"; grep -E "ERROR|SUMMARY|Test unit written|==[0-9]+==" "$tmp/$target.log" | head -20
    for artifact in "$tmp/$target-"*; do [ -f "$artifact" ] && { echo "input:"; head -c 300 "$artifact" | od -c | head; }; done
  fi
done
exit $failed
