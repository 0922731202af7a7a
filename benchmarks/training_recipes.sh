#!/bin/bash
# NNiT training recipes side by side (docs/studies/training-time.md): each recipe is benchmarks/training_time.sh with its
# own flags (its own run folder and JSON), two at a time with one torch thread each (on 2 cores two 1-thread runs
# did 1.2x the steps of one 2-thread run). Resumable like training_time.sh.
#   bash benchmarks/training_recipes.sh minsnr5 value          # StackCubeEasy-v1, 30,000 steps each
#   TASK=PickCube-v1 bash benchmarks/training_recipes.sh eps global
# Recipes (the cpu preset's choice first, the alternative after the colon):
#   minsnr5   unweighted eps-MSE : Min-SNR-5 weighting            (--min-snr-gamma 5)
#   value     vocabulary width codes : width codes by value        (--arch-encoding value)
#   eps       v-prediction : the paper's eps-prediction            (--parameterization eps)
#   global    per-role normalization : the paper's global one      (--normalization global)
#   balanced  every network equally often : every architecture      (--arch-balance 1)
#   xs        NNiT-Ti : NNiT-XS                                    (--model NNiT-XS)
#   conditional  half the samples in MoNL's joint mode : a tenth   (--p-joint 0.1; conditional and architecture-first
#             joint sampling never use the joint mode, so its share is conditional training the samplers do not get)
set -euo pipefail
cd "$(dirname "$0")"
declare -A ARGS=(
  [minsnr5]="--min-snr-gamma 5"
  [value]="--arch-encoding value"
  [eps]="--parameterization eps"
  [global]="--normalization global"
  [balanced]="--arch-balance 1"
  [xs]="--model NNiT-XS"
  [conditional]="--p-joint 0.1"
)
if [ $# -eq 0 ]; then echo "usage: $0 RECIPE... (one of: ${!ARGS[*]})" >&2; exit 2; fi
for r in "$@"; do
  if [ -z "${ARGS[$r]+x}" ]; then echo "unknown recipe '$r' (one of: ${!ARGS[*]})" >&2; exit 2; fi
done
mkdir -p ../runs/half
set -- "$@"
while [ $# -gt 0 ]; do
  pids=()
  for r in "${@:1:2}"; do
    THREADS=1 RECIPE=$r TRAIN_ARGS="${ARGS[$r]}" bash training_time.sh > "../runs/half/recipe-$r.log" 2>&1 &
    pids+=($!)
    echo "recipe $r: running (log runs/half/recipe-$r.log)"
  done
  status=0
  for p in "${pids[@]}"; do wait "$p" || status=1; done
  [ $status -eq 0 ] || { echo "a recipe failed: see runs/half/recipe-*.log" >&2; exit 1; }
  shift $(( $# < 2 ? $# : 2 ))
done
