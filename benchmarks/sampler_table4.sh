#!/bin/bash
# Few-step sampler vs the paper's 1000-step sampler on the four Table-4 unseen architectures of the three robot tasks
# (docs/studies/fast-sampling.md): N = 100 per draw, top-10 chosen on 10 ranking episodes (seeds 11000-11009),
# re-run on 20 fresh ones (12000-12019). One draw (sampling seed 10) of every task, then a second (seed 11),
# then temperature 1 (seed 10). Resumable: rows already in a task's JSON are skipped.
#   bash benchmarks/sampler_table4.sh                 # all of it (hours on 2 cores)
#   TASKS="PickCube-v1" bash benchmarks/sampler_table4.sh
# Then the comparison table and figure:
#   (cd benchmarks && PYTHONPATH=../src ../.venv/bin/python sampler_speed_quality.py --summarize \
#      ../results/benchmarks/sampler_table4_*.json --reference ancestral:1000:0.5 \
#      --out ../results/benchmarks/sampler_table4_summary.json --figure ../docs/figures/sampler_table4.png)
set -euo pipefail
cd "$(dirname "$0")"
export PYTHONPATH=$PWD/../src OMP_NUM_THREADS=2
PY=../.venv/bin/python
TASKS=${TASKS:-"PickCube-v1 StackCubeEasy-v1 PushCube-v1"}
common=(--arch 32,32,16,64 32,32,32,64 32,16,16,16 16,16,16,32 --num 100 --threads 2 --evaluate --episodes 10
        --eval-seed 11000 --report-episodes 20 --report-seed 12000)
# First draw: the paper's sampler, the 20-step SDE solver and the respaced 100- and 25-step ancestral sampler; second
# draw: the paper's sampler against the 100- and 25-step ancestral ones (the SDE solver failed StackCubeEasy-v1's first
# draw); temperature 1: the paper's sampler against the 100- and 25-step ancestral ones.
for t in $TASKS; do
  $PY sampler_speed_quality.py --task "$t" --checkpoint "../zoo/nnit_$t.safetensors" "${common[@]}" --seed 10 \
    --settings ancestral:1000:0.5 dpm++2m-sde:20:0.25 ancestral:100:0.5 ancestral:25:0.5 --out "../results/benchmarks/sampler_table4_$t.json"
done
for t in $TASKS; do
  $PY sampler_speed_quality.py --task "$t" --checkpoint "../zoo/nnit_$t.safetensors" "${common[@]}" --seed 11 \
    --settings ancestral:1000:0.5 ancestral:100:0.5 ancestral:25:0.5 --out "../results/benchmarks/sampler_table4_$t.json"
done
for t in $TASKS; do
  $PY sampler_speed_quality.py --task "$t" --checkpoint "../zoo/nnit_$t.safetensors" "${common[@]}" --seed 10 \
    --settings ancestral:1000:1 ancestral:100:1 ancestral:25:1 --out "../results/benchmarks/sampler_table4_$t.json"
done
