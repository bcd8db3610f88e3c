#!/usr/bin/env bash
# Sets up, builds and runs kyozon's main job: the OpenAI-compatible server.
#   scripts/run.sh [kyozon serve options]
# The model is -m MODEL if given, else $KYOZON_MODEL, else a small real chat
# model pulled into the model cache (SmolLM2 360M Instruct, Q8_0, ~370 MB).
# Without network it falls back to the shared test model, then to a
# synthetic one (random weights: meaningless text, but every stage runs).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh" release >/dev/null
bin="$root/build/kyozon"
DEFAULT_SOURCE="hf:ngxson/SmolLM2-360M-Instruct-Q8_0-GGUF/smollm2-360m-instruct-q8_0.gguf"

args=("$@")
have_m=0
for a in "${args[@]+"${args[@]}"}"; do
  case "$a" in -m|--model) have_m=1 ;; esac
done
if [ $have_m -eq 0 ]; then
  model="${KYOZON_MODEL:-}"
  if [ -z "$model" ]; then
    if model=$("$bin" pull "$DEFAULT_SOURCE"); then
      :
    else
      data="${KYOZON_TEST_DATA:-$root/../shared/data}"
      if [ -f "$data/aidreams260K.gguf" ]; then
        model="$data/aidreams260K.gguf"
      else
        model="${KYOZON_HOME:-$HOME/.cache/kyozon}/models/synthetic-tiny-q8_0.gguf"
        mkdir -p "$(dirname "$model")"
        [ -f "$model" ] || "$bin" synth -o "$model" --shape tiny --type q8_0 --seed 1
      fi
      echo "run.sh: could not pull $DEFAULT_SOURCE; serving $model instead" >&2
    fi
  fi
  args=(-m "$model" "${args[@]+"${args[@]}"}")
fi
exec "$bin" serve "${args[@]}"
