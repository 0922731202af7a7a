"""Which generated networks work: the copies of training networks or the new ones?

``nnit reproduce``'s memorization stage reports one median distance per architecture (generated ->
nearest training network after aligning hidden neurons, over training -> nearest other training
network). This script looks at each generated network instead: its distance ratio (the same two
quantities, ``nnit.analysis.memorization``) beside its own success (or accuracy) from the evaluation
``nnit generate --evaluate`` ran, and groups the networks by ratio:

* copy: ratio < 0.1 (a training network up to a small perturbation),
* near: 0.1 <= ratio < 0.5,
* new: ratio >= 0.5 (about as far from every training network as those are from each other).

    .venv/bin/python benchmarks/copies_vs_success.py --dataset runs/cpu/StackCubeEasy-v1/dataset \
        --generated runs/cpu/StackCubeEasy-v1/eval/nnit/h32-16-64-32 runs/cpu/StackCubeEasy-v1/eval/nnit/h32-64-16-32 \
        --out results/benchmarks/copies_vs_success_stackcubeeasy.json

Each ``--generated`` folder is an ``nnit generate --evaluate --arch A`` output (``networks.safetensors``
and ``eval_<arch>.json``; ``benchmarks/pool_size.py``'s folders too); its architecture must have a shard in
``--dataset`` with >= 2 networks. For a held-out architecture those networks were never shown to NNiT: a
"copy" of one then means NNiT produced (nearly) the network the GHN made for that architecture.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

# benchmarks/_results.py: a script's own folder is on sys.path
from _results import write_results

from nnit.analysis.memorization import nearest_aligned_distances, train_to_train_median
from nnit.eval.harness import EvalResult
from nnit.ghn.dataset import shard_name
from nnit.weights.architecture import hidden_label
from nnit.weights.mlp import WeightSet
from nnit.weights.normalize import WeightNormalizer

GROUPS = (("copy", 0.0, 0.1), ("near", 0.1, 0.5), ("new", 0.5, float("inf")))


def quality(result: EvalResult) -> tuple[str, np.ndarray]:
    """('success', per-network success rate) for robot tasks, ('accuracy', ...) for classifiers."""
    return ("success", result.metrics["success_rate"]) if result.kind == "robot" else ("accuracy", result.metrics["accuracy"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, required=True, help="the training dataset (shards/ and normalization.json)")
    ap.add_argument("--generated", type=Path, nargs="+", required=True, help="nnit generate --evaluate output folders")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    norm = WeightNormalizer.load(a.dataset / "normalization.json")
    roles = {",".join(map(str, v["hidden"])): v["role"] for v in json.loads((a.dataset / "index.json").read_text())["architectures"].values()}
    rows = []
    for d in a.generated:
        if not (d / "networks.safetensors").exists():
            sys.exit(f"copies_vs_success: {d} holds no networks.safetensors (an `nnit generate --evaluate --arch A` output folder is needed)")
        gen = WeightSet.load(d / "networks.safetensors")
        label = hidden_label(gen.arch.hidden)
        shard = a.dataset / "shards" / shard_name(gen.arch.hidden)
        if not shard.exists():
            sys.exit(f"copies_vs_success: {d}: the dataset keeps no [{gen.arch.hidden_str()}] networks ({shard} is missing)")
        train = norm.apply(WeightSet.load(shard))
        within = train_to_train_median(train)  # None for a single network
        if within is None:
            sys.exit(f"copies_vs_success: {d}: the dataset keeps {train.n} [{gen.arch.hidden_str()}] network; need >= 2 for the yardstick")
        ratio = nearest_aligned_distances(norm.apply(gen), train) / within
        metric, q = quality(EvalResult.load(d / f"eval_{label}.json"))
        role = roles.get(gen.arch.hidden_str(), "?")
        row = {"arch": gen.arch.hidden_str(), "generated": gen.n, "role": role, "dataset_networks": train.n, "train_to_train_median": within,
               "metric": metric, "ratio": ratio.round(4).tolist(), metric: q.round(4).tolist(), "groups": {}}
        cells = []
        for name, lo, hi in GROUPS:
            sel = (ratio >= lo) & (ratio < hi)
            mean = float(q[sel].mean()) if sel.any() else None
            row["groups"][name] = {"n": int(sel.sum()), f"mean_{metric}": mean}
            cells.append(f"{name} {int(sel.sum())} ({'-' if mean is None else f'{100 * mean:.0f}%'})")
        rows.append(row)
        print(f"[{gen.arch.hidden_str()}] {gen.n} generated, {train.n} dataset networks ({role}): " + ", ".join(cells), flush=True)
    write_results(a.out, a, rows)


if __name__ == "__main__":
    main()
