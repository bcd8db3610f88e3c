#!/usr/bin/env bash
# Sets up and runs the whole test suite: the Release build and the
# ASan+UBSan build, each with every test (unit, golden conformance on
# ../shared/data when present, fuzz corpus replay), then the compute kernels
# cross-compiled for AArch64 and their tests run under qemu (the NEON
# families against the scalar reference). The last line sums the test
# programs of all three runs: "N passed, N failed".
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/setup.sh --arm64 || exit 1
jobs=$(nproc 2>/dev/null || echo 2)
log=$(mktemp)
pass=0; fail=0
for flavour in release asan arm64; do
  echo "=== $flavour build ==="
  scripts/build.sh "$flavour" || { echo "$flavour build failed"; fail=$((fail + 1)); continue; }
  dir=build; [ "$flavour" != release ] && dir=build-$flavour
  echo "=== $flavour tests ==="
  (cd "$dir" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest --output-on-failure -j "$jobs") 2>&1 | tee "$log"
  line=$(grep -E "tests passed, [0-9]+ tests? failed out of [0-9]+" "$log" | tail -1)
  if [ -z "$line" ]; then fail=$((fail + 1)); continue; fi
  f=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
  t=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
  pass=$((pass + t - f)); fail=$((fail + f))
done
rm -f "$log"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
