#!/bin/bash
# NNiT training time vs held-out success (docs/studies/training-time.md): train the cpu preset with fewer steps in one
# schedule (the learning-rate decay and EMA compressed into STEPS), export it like the zoo (fp16 EMA), and measure it
# with the sampler benchmark's protocol beside the zoo model: the paper's 8 held-out architectures, N = 100 with the
# cpu preset's sampler (ancestral, 100 steps, temperature 0.5), top-10 chosen on 10 ranking episodes (seeds
# 11000-11009), re-run on 20 fresh ones (12000-12019); draws = sampling seeds 10 and 11 on the four Table-4
# architectures, seed 10 on the other four. Resumable: training continues from its checkpoint, finished rows are kept.
#   bash benchmarks/training_time.sh                                # StackCubeEasy-v1, 30,000 steps (~85 min + ~45 min on 2 cores)
#   TASK=PickCube-v1 STEPS=30000 bash benchmarks/training_time.sh
#   RECIPE=minsnr5 TRAIN_ARGS="--min-snr-gamma 5" bash benchmarks/training_time.sh   # a recipe change: its own run and JSON
#   THREADS=1 ...                                                   # torch threads (2): two recipes side by side on 2 cores
# --p-prior 0 keeps the zoo models' recipe (they were trained without the architecture-prior mode), so steps are the
# only difference. The zoo model's rows on the Table-4 architectures come from benchmarks/sampler_table4.sh.
set -euo pipefail
cd "$(dirname "$0")"
THREADS=${THREADS:-2}
export PYTHONPATH=$PWD/../src OMP_NUM_THREADS=$THREADS
PY=../.venv/bin/python
TASK=${TASK:-StackCubeEasy-v1}
STEPS=${STEPS:-30000}
RECIPE=${RECIPE:-}
TRAIN_ARGS=${TRAIN_ARGS:-}
TAG=${STEPS}${RECIPE:+_$RECIPE}
RUN=${RUN:-../runs/half/$TASK${RECIPE:+-$RECIPE}}
RES=../results/benchmarks
# shellcheck disable=SC2086  # TRAIN_ARGS is a list of flags
$PY -m nnit train --dataset "../zoo/datasets/cpu/$TASK" --preset cpu --steps "$STEPS" --p-prior 0 --threads "$THREADS" \
  --no-progress --out "$RUN/nnit" $TRAIN_ARGS
$PY -m nnit export --checkpoint "$RUN/nnit" --out "$RUN/nnit_${TASK}_${TAG}.safetensors"
common=(--num 100 --threads "$THREADS" --evaluate --episodes 10 --eval-seed 11000 --report-episodes 20 --report-seed 12000
        --settings ancestral:100:0.5)
table4=(32,32,16,64 32,32,32,64 32,16,16,16 16,16,16,32)
others=(16,64,64,32 32,16,16,64 32,16,32,32 64,32,32,32)
out="$RES/training_time_${TASK}_${TAG}.json"
$PY sampler_speed_quality.py --task "$TASK" --checkpoint "$RUN/nnit_${TASK}_${TAG}.safetensors" "${common[@]}" \
  --arch "${table4[@]}" --seed 10 11 --out "$out"
$PY sampler_speed_quality.py --task "$TASK" --checkpoint "$RUN/nnit_${TASK}_${TAG}.safetensors" "${common[@]}" \
  --arch "${others[@]}" --seed 10 --out "$out"
# the zoo model on the four held-out architectures outside Table 4 (its Table-4 rows: sampler_table4_$TASK.json)
$PY sampler_speed_quality.py --task "$TASK" --checkpoint "../zoo/nnit_$TASK.safetensors" "${common[@]}" \
  --arch "${others[@]}" --seed 10 --out "$RES/training_time_${TASK}_zoo.json"
