#!/usr/bin/env bash
# Sets up, builds and runs kyozon's main job: `kyozon run` on a model.
#   scripts/run.sh [kyozon run options]
# The model is -m FILE if given, else $KYOZON_MODEL, else the small real model
# in ../shared/data when present, else a synthetic model written on the spot.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh" release >/dev/null
bin="$root/build/kyozon"

args=("$@")
have_m=0; have_p=0
for a in "${args[@]+"${args[@]}"}"; do
  case "$a" in -m|--model) have_m=1 ;; -p|--prompt) have_p=1 ;; esac
done
if [ $have_m -eq 0 ]; then
  model="${KYOZON_MODEL:-}"
  if [ -z "$model" ]; then
    data="${KYOZON_TEST_DATA:-$root/../shared/data}"
    if [ -f "$data/aidreams260K.gguf" ]; then
      model="$data/aidreams260K.gguf"
    else
      model="${KYOZON_HOME:-$HOME/.cache/kyozon}/models/synthetic-tiny-q8_0.gguf"
      mkdir -p "$(dirname "$model")"
      [ -f "$model" ] || "$bin" synth -o "$model" --shape tiny --type q8_0 --seed 1
      echo "run.sh: no model given; using a synthetic model with random weights ($model)" >&2
    fi
  fi
  args=(-m "$model" "${args[@]+"${args[@]}"}")
fi
if [ $have_p -eq 0 ]; then args+=(-p "Once upon a time"); fi
exec "$bin" run "${args[@]}"
