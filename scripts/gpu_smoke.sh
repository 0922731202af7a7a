#!/usr/bin/env bash
# GPU smoke check: every GPU path of the `paper` preset, a few iterations each, on PickCube-v1 (a few minutes,
# under 10 in all). One PASS / FAIL line per check with its wall time, then a summary and a JSON file.
#
#   bash scripts/gpu_smoke.sh                    # on a CUDA machine: the 5 checks below
#   bash scripts/gpu_smoke.sh --out smoke.json   # the JSON summary there (default: a new file in $TMPDIR)
#   bash scripts/gpu_smoke.sh --keep             # keep the work directory (commands' logs, checkpoints)
#   bash scripts/gpu_smoke.sh --only ghn,train   # a subset (generate samples train's checkpoint)
#   bash scripts/gpu_smoke.sh --cpu              # rehearsal on the CPU: the same checks with the cpu backend and
#                                                # smaller budgets (tiny PPO preset), to test this script (~5 min on 2 cores)
#
# The checks (the same commands a user runs; budgets cut by their flags):
#   expert    nnit train-expert --preset paper --backend cuda: 2 PPO iterations on physx_cuda (1,024 envs x 50 steps
#             each), then the final evaluation (evaluate_gpu, 100 episodes)
#   ghn       nnit train-ghn --preset paper --device cuda: 2 DAgger iterations of a 4-member ensemble on the GPU
#             (rollouts in physx_cpu workers); the checkpoint must load and generate on the CPU
#   train     nnit train --preset paper: 20 steps of NNiT-S on a small synthetic PickCube-v1 dataset (random networks
#             of 4 train architectures); the checkpoint must record bf16 autocast on cuda, and the losses be finite
#   generate  nnit generate --preset paper --device cuda: 8 networks of [32,16,64,32] from train's checkpoint, 20
#             ancestral steps
#   eval      nnit eval --backend cuda: generate's networks (8 random ones when generate did not run), 2 episodes each
#             on physx_cuda (evaluate_gpu)
#
# Without a CUDA device (torch.cuda.is_available() False) it prints one SKIP line and exits 0 (unless --cpu).
# Exit status: 0 every check passed (or skipped), 1 a check failed, 2 bad arguments or no .venv.
# Every nnit command runs as ".venv/bin/python -m nnit" (the same as .venv/bin/nnit); NNIT_PYTHON overrides the
# interpreter (the tests run the script with theirs).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${NNIT_PYTHON:-.venv/bin/python}
ALL_CHECKS=(expert ghn train generate eval)
TASK=PickCube-v1
ARCH=32,16,64,32
DATASET_ARCHS=(32,16,64,32 16,32,64,32 64,64,32,16 32,32,32,32)
BUDGET_S=570  # every check's timeout is cut so that the whole run ends within this (GPU mode)

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "gpu_smoke: $*" >&2; exit 2; }

KEEP=0; OUT=""; ONLY=""; MODE=gpu
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) KEEP=1 ;;
    --out) [ $# -ge 2 ] || die "--out needs a file"; OUT=$2; shift ;;
    --out=*) OUT=${1#--out=} ;;
    --only) [ $# -ge 2 ] || die "--only needs a comma-separated list of: ${ALL_CHECKS[*]}"; ONLY=$2; shift ;;
    --only=*) ONLY=${1#--only=} ;;
    --cpu) MODE=cpu ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done
CHECKS=("${ALL_CHECKS[@]}")
if [ -n "$ONLY" ]; then
  CHECKS=()
  IFS=, read -r -a wanted <<<"$ONLY"
  for c in "${wanted[@]}"; do
    case " ${ALL_CHECKS[*]} " in *" $c "*) CHECKS+=("$c") ;; *) die "unknown check '$c' in --only; choose from: ${ALL_CHECKS[*]}" ;; esac
  done
fi
[ -x "$PY" ] || [ -n "${NNIT_PYTHON:-}" ] || die "no .venv: run 'bash scripts/setup.sh' first"

# ---------------------------------------------------------------- is there a GPU?
GPU=$("$PY" -c 'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")') \
  || die "$PY cannot import torch"
if [ -z "$GPU" ] && [ "$MODE" = gpu ]; then
  declare -A WHAT=([expert]="expert (nnit train-expert --backend cuda)" [ghn]="ghn (nnit train-ghn --device cuda)"
    [train]="train (nnit train, bf16 autocast)" [generate]="generate (nnit generate --device cuda)"
    [eval]="eval (nnit eval --backend cuda)")
  what=""; for c in "${CHECKS[@]}"; do what+="${what:+, }${WHAT[$c]}"; done
  echo "gpu_smoke: SKIP: no CUDA device found (torch.cuda.is_available() is False); with one it would run" \
       "${#CHECKS[@]} checks of the paper preset on $TASK, a few minutes: $what; --cpu rehearses them on the CPU"
  if [ -n "$OUT" ]; then
    "$PY" -c 'import json, sys; json.dump({"status": "skipped", "reason": "no CUDA device", "checks": sys.argv[2:]}, open(sys.argv[1], "w"), indent=1)' \
      "$OUT" "${CHECKS[@]}"
  fi
  exit 0
fi

# ---------------------------------------------------------------- settings of the two modes
if [ "$MODE" = gpu ]; then
  BACKEND=cuda; DEVICE=cuda; AUTOCAST=bfloat16
  EXPERT_BUDGET=(--preset paper --total-steps 102400)  # paper PickCube-v1: 1,024 envs x 50 steps per iteration
  GHN_WORKERS=8; TRAIN_STEPS=20; GEN_NUM=8; GEN_STEPS=20; SCALE=1
else
  export CUDA_VISIBLE_DEVICES=""  # everything on the CPU, nnit train (which picks CUDA when it sees one) included
  BACKEND=cpu; DEVICE=cpu; AUTOCAST=none; GPU="none (cpu rehearsal)"
  EXPERT_BUDGET=(--preset tiny --total-steps 200 --workers 0)  # the paper batch (51,200 steps) is too big for a CPU
  GHN_WORKERS=2; TRAIN_STEPS=2; GEN_NUM=2; GEN_STEPS=4
  SCALE=4; BUDGET_S=$((BUDGET_S * SCALE))  # a CPU is slower (NNiT-S: ~30 s a step on 2 cores), and nothing waits on it
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nnit-gpu-smoke.XXXXXX")
mkdir -p "$WORK/logs" "$WORK/results"
[ -n "$OUT" ] || OUT=$(mktemp "${TMPDIR:-/tmp}/nnit-gpu-smoke-XXXXXX.json")
cleanup() { if [ "$KEEP" = 0 ]; then rm -rf "$WORK"; fi; }
trap cleanup EXIT
NNIT=("$PY" -m nnit)
T_START=$EPOCHREALTIME

elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# The checks' Python: "dataset" writes train's dataset; every other name validates what its command wrote, printing a
# one-line detail, or exits non-zero with the reason. Arguments: NAME WORK BACKEND DEVICE AUTOCAST [TASK ARCH...].
CHECKS_PY="$WORK/checks.py"
cat >"$CHECKS_PY" <<'PY'
import json, math, sys
from pathlib import Path

check, work, backend, device, autocast = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]


def fail(msg):
    raise SystemExit(msg)


def log_records(path, need, finite):
    """The JSON-lines log's records: at least ``need``, each with finite values of the keys ``finite``."""
    if not path.is_file():
        fail(f"no {path}")
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    recs = [r for r in recs if all(k in r for k in finite)]
    if len(recs) < need:
        fail(f"{path} holds {len(recs)} records with {', '.join(finite)}, expected >= {need}")
    for r in recs:
        bad = [k for k in finite if not (isinstance(r[k], (int, float)) and math.isfinite(r[k]))]
        if bad:
            fail(f"non-finite {', '.join(bad)} in {path}: {r}")
    return recs


if check == "expert":
    from nnit.eval.results import EvalResult

    recs = log_records(work / "expert" / "train_log.jsonl", 2, ["losses/policy_loss", "losses/value_loss"])
    ev = EvalResult.load(work / "expert" / "eval.json")
    if ev.info.get("backend") != f"physx_{backend}":
        fail(f"the final evaluation ran on {ev.info.get('backend')}, not physx_{backend}")
    ret = float(ev.metrics["mean_return"][0])
    if not math.isfinite(ret):
        fail(f"final evaluation return {ret}")
    print(f"{len(recs)} PPO iterations, {ev.info.get('env_steps_trained')} env steps at {recs[-1]['train/sps']:.0f} steps/s; "
          f"final eval {len(ev.seeds)} episodes on {ev.info['backend']}: return {ret:.2f}")
elif check == "ghn":
    from nnit.checkpoint import load_checkpoint
    from nnit.ghn.train import load_ghn_ensemble, training_architectures
    from nnit.tasks.registry import get_task

    path = work / "ghn" / "ghn.safetensors"
    recs = log_records(work / "ghn" / "train_log.jsonl", 2, ["loss_mean"])
    ck = load_checkpoint(path)
    if ck.config.get("device") != device:
        fail(f"the GHN trained on {ck.config.get('device')}, not {device}")
    losses = [r["loss_mean"] for r in recs]
    model, conf = load_ghn_ensemble(path)  # on the CPU, whatever it trained on
    task = get_task(conf["task"], control_mode=conf["control_mode"])
    ws = model.generate(training_architectures(task, "train")[:1])[0].detach()
    ws.check_finite()
    print(f"{len(recs)} DAgger iterations of {model.k} GHNs on {device}, loss {losses[0]:.4f} -> {losses[-1]:.4f}, buffer "
          f"{recs[-1]['buffer']} states; the checkpoint generates {ws.n} finite {ws.arch.hidden_str()} networks on the CPU")
elif check == "dataset":
    import torch

    from nnit.ghn.dataset import shard_name
    from nnit.tasks.registry import get_task
    from nnit.weights import Architecture, WeightSet
    from nnit.weights.normalize import WeightNormalizer

    task = get_task(sys.argv[6])
    out = work / "dataset"
    archs, sets = {}, []
    for k, label in enumerate(sys.argv[7:]):
        arch = Architecture.parse(label, task.input_dim, task.output_dim)
        ws = WeightSet.init_random(arch, 16, generator=torch.Generator().manual_seed(k))
        ws.save(out / "shards" / shard_name(arch.hidden), extra_metadata={"task": task.name})
        archs[label] = {"role": "train", "hidden": list(arch.hidden), "candidates": [], "num_passed": ws.n, "num_kept": ws.n}
        sets.append(ws)
    (out / "index.json").write_text(json.dumps({"task": task.name, "control_mode": task.control_mode, "config": {},
                                                "architectures": archs}))
    WeightNormalizer.fit(sets).save(out / "normalization.json")
    print(f"{sum(ws.n for ws in sets)} random {task.name} networks of {len(sets)} architectures in {out}")
elif check == "train":
    from nnit.diffusion.train import load_checkpoint

    ck = load_checkpoint(work / "nnit")
    recs = log_records(work / "nnit" / "train_log.jsonl", 1, ["total"])
    want = None if autocast == "none" else autocast
    if ck.data.get("device") != device or ck.data.get("autocast") != want:
        fail(f"trained on {ck.data.get('device')} with autocast {ck.data.get('autocast')}, expected {device} with {want}")
    total = recs[-1]["total"]
    params = sum(v.numel() for v in ck.model.values())
    print(f"{ck.step} steps of {ck.config.model} ({params / 1e6:.1f}M parameters, {ck.config.token_mode} tokens) on "
          f"{ck.data['device']}, autocast {ck.data['autocast']}; loss {total:.4f} at step {recs[-1]['step']}")
elif check == "generate":
    from nnit.weights import WeightSet

    out = work / "generated"
    rec = json.loads((out / "results.json").read_text())
    if rec.get("device") != device:
        fail(f"sampled on {rec.get('device')}, not {device}")
    ws = WeightSet.load(out / "networks.safetensors")
    ws.check_finite()
    print(f"{ws.n} finite {ws.arch.hidden_str()} networks, {rec['sampler']} {rec['steps']} steps on {rec['device']} in "
          f"{rec['sample_seconds']:.1f} s")
elif check == "eval":
    from nnit.eval.results import EvalResult

    ev = EvalResult.load(work / "eval" / "eval.json")
    if ev.info.get("backend") != f"physx_{backend}":
        fail(f"evaluated on {ev.info.get('backend')}, not physx_{backend}")
    ret = ev.metrics["mean_return"]
    if not all(math.isfinite(float(x)) for x in ret):
        fail(f"non-finite returns {ret}")
    print(f"{ev.n} networks ({ev.info.get('weights')}) x {len(ev.seeds)} episodes on {ev.info['backend']} in "
          f"{ev.info.get('wall_s')} s; best return {float(max(ret)):.2f}")
else:
    fail(f"unknown check {check}")
PY
validate() { "$PY" "$CHECKS_PY" "$@"; }
# q ARG...: the arguments as one shell command line (quoted only where needed)
q() {
  local a out=()
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then out+=("$a"); else out+=("$(printf '%q' "$a")"); fi
  done
  echo "${out[*]}"
}

# run_check NAME CAP_S COMMAND_LINE: run it (bash -c) with a timeout cut to what is left of BUDGET_S, validate, record.
run_check() {
  local name=$1 cap=$(($2 * SCALE)) cmd=$3
  local log="$WORK/logs/$name.log" t0=$EPOCHREALTIME rc=0 detail status left
  echo "$cmd" >"$WORK/results/$name.cmd"
  left=$(awk -v a="$T_START" -v b="$EPOCHREALTIME" -v n="$BUDGET_S" 'BEGIN { printf "%d", n - (b - a) }')
  [ "$left" -lt "$cap" ] && cap=$left
  if [ "$cap" -lt 20 ]; then
    rc=-1; echo "not started: ${left}s of the ${BUDGET_S}s budget left" >"$log"
  else
    echo "\$ $cmd" >"$log"
    timeout -k 15 "$cap" bash -c "$cmd" >>"$log" 2>&1 || rc=$?
  fi
  if [ "$rc" -eq 0 ]; then
    if detail=$(validate "$name" "$WORK" "$BACKEND" "$DEVICE" "$AUTOCAST" 2>>"$log" | tail -n 1); then status=PASS
    else status=FAIL; detail="check failed: $(tail -n 1 "$log")"; fi
  elif [ "$rc" -eq -1 ]; then
    status=FAIL; detail=$(cat "$log")
  elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    status=FAIL; detail="timed out after ${cap}s"
  else
    status=FAIL; detail="exit $rc: $( (grep -v '^[[:space:]]*$' "$log" || true) | tail -n 1)"
  fi
  local secs; secs=$(elapsed "$t0")
  printf '%s\n' "$status" >"$WORK/results/$name.status"
  printf '%s\n' "$secs" >"$WORK/results/$name.seconds"
  printf '%s\n' "$detail" >"$WORK/results/$name.detail"
  printf '%-4s  %-8s %7ss  %s\n' "$status" "$name" "$secs" "$detail"
  if [ "$status" = FAIL ]; then
    tail -n 15 "$log" >"$WORK/results/$name.tail"
    sed 's/^/      | /' "$WORK/results/$name.tail"
  fi
}

echo "gpu_smoke: $MODE mode on $GPU; $TASK, checks: ${CHECKS[*]}; work dir $WORK"
for check in "${CHECKS[@]}"; do
  case "$check" in
    expert)
      run_check expert 170 "$(q "${NNIT[@]}" train-expert --task "$TASK" "${EXPERT_BUDGET[@]}" --backend "$BACKEND" \
        --out "$WORK/expert" --no-progress)" ;;
    ghn)
      run_check ghn 130 "$(q "${NNIT[@]}" train-ghn --task "$TASK" --preset paper --device "$DEVICE" --ensemble-size 4 \
        --iterations 2 --workers "$GHN_WORKERS" --out "$WORK/ghn" --no-progress)" ;;
    train)
      # the dataset: random networks in nnit build-dataset's layout (a GHN's would need the CPU evaluation and filter)
      run_check train 100 "$(q "$PY" "$CHECKS_PY" dataset "$WORK" "$BACKEND" "$DEVICE" "$AUTOCAST" "$TASK" \
        "${DATASET_ARCHS[@]}") && $(q "${NNIT[@]}" train --dataset "$WORK/dataset" --preset paper --steps "$TRAIN_STEPS" \
        --out "$WORK/nnit" --no-progress)" ;;
    generate)
      run_check generate 60 "$(q "${NNIT[@]}" generate --task "$TASK" --preset paper --checkpoint "$WORK/nnit" --arch "$ARCH" \
        --num "$GEN_NUM" --steps "$GEN_STEPS" --device "$DEVICE" --out "$WORK/generated" --no-progress)" ;;
    eval)
      if [ -f "$WORK/generated/networks.safetensors" ]; then weights=(--weights "$WORK/generated/networks.safetensors")
      else weights=(--random "$GEN_NUM" --arch "$ARCH"); fi
      run_check eval 90 "$(q "${NNIT[@]}" eval --task "$TASK" "${weights[@]}" --preset paper --backend "$BACKEND" \
        --episodes 2 --top-k 4 --workers 2 --out "$WORK/eval/eval.json" --no-progress)" ;;
  esac
done

# ---------------------------------------------------------------- summary
FAILED=0
for check in "${CHECKS[@]}"; do [ "$(cat "$WORK/results/$check.status")" = PASS ] || FAILED=$((FAILED + 1)); done
TOTAL=$(elapsed "$T_START")
"$PY" - "$OUT" "$WORK/results" "$MODE" "$GPU" "$TOTAL" "${CHECKS[@]}" <<'PY'
import json, subprocess, sys, time
from pathlib import Path

import torch

out, res, mode, gpu, total, checks = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5]), sys.argv[6:]


def read(name, ext):
    f = res / f"{name}.{ext}"
    return f.read_text().rstrip("\n") if f.is_file() else None


commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip() or None
summary = {
    "status": "pass" if all(read(c, "status") == "PASS" for c in checks) else "fail",
    "mode": mode, "gpu": gpu, "torch": torch.__version__, "cuda": torch.version.cuda, "commit": commit,
    "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": total,
    "checks": [{"name": c, "status": read(c, "status"), "seconds": float(read(c, "seconds")), "detail": read(c, "detail"),
                "command": read(c, "cmd"), **({"log_tail": read(c, "tail")} if read(c, "tail") else {})} for c in checks],
}
Path(out).write_text(json.dumps(summary, indent=1) + "\n")
PY
KEPT=""; [ "$KEEP" = 0 ] || KEPT="; work dir kept: $WORK"
echo "gpu_smoke: $(( ${#CHECKS[@]} - FAILED ))/${#CHECKS[@]} checks passed in ${TOTAL}s on $GPU; summary: $OUT$KEPT"
[ "$FAILED" -eq 0 ]
