#!/bin/sh
# SPDX-License-Identifier: MIT
# Regenerates the GGUF fuzz seeds in tests/fuzz/corpora/gguf/ from the cases
# in tests/engine/gguf/test_gguf_bad.c, which is the one place the files are
# defined: the test writes them when KZ_GGUF_CORPUS_OUT is set, and checks
# them against the directory otherwise.
#
# Usage: tools/gen_gguf_corpus.sh [BUILD_DIR]   (default: build)
# Only the generated seeds (cf1_*.seed, ok_*.seed) are replaced; inputs kept
# from fuzzing runs (fz_*) stay.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
cmake --build "$build" --target engine_gguf_test_gguf_bad
out=$src/tests/fuzz/corpora/gguf
mkdir -p "$out"
rm -f "$out"/cf1_*.seed "$out"/ok_*.seed
KZ_GGUF_CORPUS_OUT=$out "$build/engine_gguf_test_gguf_bad" >/dev/null
echo "$(ls "$out" | wc -l) seeds, $(du -sk "$out" | cut -f1) KiB in $out"
