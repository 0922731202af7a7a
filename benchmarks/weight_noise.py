"""How much weight error do a task's working networks tolerate? The yardstick for a generator's reconstruction error.

For each architecture the dataset's kept networks are evaluated as they are and with isotropic Gaussian noise of
each ``--mse`` added in the normalized weight space the generators work in (the dataset's ``per_role`` or
``global`` normalization, :func:`nnit.ghn.dataset.dataset_normalizer`), on the same episodes.

    .venv/bin/python benchmarks/weight_noise.py --task PickCube-v1 --dataset zoo/datasets/cpu/PickCube-v1 \
        --arch 32,16,64,32 --mse 0.001 0.003 0.01 0.02 --out results/benchmarks/weight_noise_pickcube.json
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch

from _results import write_results

from nnit import api
from nnit.ghn.dataset import dataset_normalizer, iter_dataset, shard_name
from nnit.weights.mlp import WeightSet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", required=True)
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--arch", nargs="+", required=True)
    ap.add_argument("--mse", type=float, nargs="+", default=[0.001, 0.003, 0.01, 0.02])
    ap.add_argument("--normalization", default="per_role", choices=["per_role", "global"])
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--eval-seed", type=int, default=7000)
    ap.add_argument("--seed", type=int, default=0, help="noise seed")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    control_mode = json.loads((a.dataset / "index.json").read_text()).get("control_mode")
    norm = dataset_normalizer(a.dataset, a.normalization, [ws for _, ws in iter_dataset(a.dataset, roles=("train",))])
    rows = json.loads(a.out.read_text())["rows"] if a.out.exists() else []  # rows already measured are kept
    for arch in a.arch:
        data = WeightSet.load(a.dataset / "shards" / shard_name([int(w) for w in arch.split(",")]))
        x = norm.apply(data)
        for mse in [0.0, *a.mse]:
            if any(r["arch"] == arch and r["mse"] == mse and r["eval_seed"] == a.eval_seed for r in rows):
                continue
            g = torch.Generator().manual_seed(a.seed)
            noisy = WeightSet(x.arch, [w + mse**0.5 * torch.randn(w.shape, generator=g) for w in x.weights],
                              [b + mse**0.5 * torch.randn(b.shape, generator=g) for b in x.biases])
            table = api.evaluate(a.task, norm.invert(noisy), a.episodes, a.eval_seed, workers=a.workers, control_mode=control_mode)
            succ = np.asarray(table.results[data.arch.hidden].metrics["success_rate"], dtype=float)
            rows.append({"task": a.task, "arch": arch, "mse": mse, "n": data.n, "episodes": a.episodes, "eval_seed": a.eval_seed,
                         "normalization": a.normalization, "mean_success": float(succ.mean()),
                         "per_network_success": succ.tolist(), "load": os.getloadavg()[0]})
            print(f"[{arch}] mse {mse:g}: mean success {100 * succ.mean():.0f}% of {data.n} networks", flush=True)
            write_results(a.out, a, rows)


if __name__ == "__main__":
    main()
