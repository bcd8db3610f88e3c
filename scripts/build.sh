#!/usr/bin/env bash
# Configures and builds one flavour of kyozon.
#   scripts/build.sh            -> build/          (Release)
#   scripts/build.sh asan       -> build-asan/     (ASan + UBSan, -O1 -g)
#   scripts/build.sh arm64      -> build-arm64/    (the kernels and their tests only,
#                                                   cross-compiled for AArch64; ctest runs them under qemu)
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-release}
jobs=$(nproc 2>/dev/null || echo 2)
extra=()
if [ "${CI:-}" = "true" ]; then extra+=(-DKZ_WERROR=ON); fi
case "$flavour" in
  release) dir=build; cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "${extra[@]}" >/dev/null ;;
  asan)    dir=build-asan; cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DKZ_SANITIZE=address,undefined "${extra[@]}" >/dev/null ;;
  arm64)   dir=build-arm64; cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DKZ_KERNELS_ONLY=ON \
             -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake "${extra[@]}" >/dev/null ;;
  *) echo "build.sh: unknown flavour '$flavour' (release, asan, arm64)" >&2; exit 2 ;;
esac
cmake --build "$dir" -j "$jobs"
