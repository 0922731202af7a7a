"""D2NWG sanity check: before comparing D2NWG with NNiT on unseen architectures, does it work where it should?

For each *seen* (training) architecture it evaluates, on the same episodes:

1. **dataset** — the dataset's own kept networks of that architecture (what D2NWG was trained on);
2. **VAE reconstruction** — the same networks encoded (VAE mean) and decoded by D2NWG's VAE: if these lose
   their success, the VAE is the bottleneck and no amount of latent diffusion can fix it;
   **noise control** — the same networks plus isotropic Gaussian noise of the reconstruction's MSE (normalized
   space): whether an error of that size breaks them whatever its structure;
3. **generated** — ``--num`` networks sampled by D2NWG for that architecture (:func:`nnit.api.generate`, what
   ``nnit generate --checkpoint <d2nwg>`` runs), the paper's top-10 and the mean of all.

It also reports the VAE's reconstruction error (normalized space, real entries only) per architecture. The
paper's D2NWG reaches 90-100% success on seen architectures.

    .venv/bin/python benchmarks/d2nwg_sanity.py --task PickCube-v1 --dataset zoo/datasets/cpu/PickCube-v1 \
        --checkpoint runs/d2nwg/PickCube-v1 --out results/benchmarks/d2nwg_sanity_pickcube.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from _results import add_evaluation_args, write_results
from pool_size import bootstrap

from nnit import api
from nnit.baselines.train import BaselineSampler
from nnit.ghn.dataset import shard_name
from nnit.weights.mlp import WeightSet

DEFAULT_SEEN = ("32,16,64,32", "32,64,16,32", "32,32,32,16", "64,64,16,32")
"""The paper's Table 4 seen architectures."""


def evaluate(a: argparse.Namespace, ws: WeightSet) -> dict:
    table = api.evaluate(a.task, ws, a.episodes, a.eval_seed, top_k=a.top_k, workers=a.workers, control_mode=a.control_mode)
    res = table.results[ws.arch.hidden]
    succ = np.asarray(res.metrics["success_rate"], dtype=float)
    return {"n": ws.n, "top_k_success": float(table.top_k.success_rate), "top_k_return": float(table.top_k.mean),
            "mean_success": float(succ.mean()), "bootstrap": bootstrap(res, a.top_k),
            "per_network_success": succ.tolist()}


@torch.no_grad()
def add_noise(sampler: BaselineSampler, ws: WeightSet, mse: float, seed: int = 0) -> WeightSet:
    """``ws`` plus N(0, mse) noise on every entry in the normalized space (raw scale out)."""
    norm = sampler.normalizer
    x = norm.apply(ws) if norm is not None else ws
    g = torch.Generator().manual_seed(seed)
    noisy = WeightSet(ws.arch, [w + mse**0.5 * torch.randn(w.shape, generator=g) for w in x.weights],
                      [b + mse**0.5 * torch.randn(b.shape, generator=g) for b in x.biases])
    return norm.invert(noisy) if norm is not None else noisy


def reconstruct(sampler: BaselineSampler, ws: WeightSet) -> tuple[WeightSet, float]:
    """The networks encoded to the VAE mean and decoded (raw scale), and the normalized-space MSE on real entries."""
    return sampler.reconstruct(ws)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", required=True)
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--checkpoint", type=Path, required=True, help="a D2NWG checkpoint (file or run directory)")
    ap.add_argument("--arch", nargs="+", default=list(DEFAULT_SEEN), help="seen architectures, e.g. 32,16,64,32")
    ap.add_argument("--num", type=int, default=100, help="D2NWG samples per architecture")
    ap.add_argument("--sampler", default="ddim")
    ap.add_argument("--steps", type=int, default=50)
    add_evaluation_args(ap)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    index = json.loads((a.dataset / "index.json").read_text())
    a.control_mode = index.get("control_mode")
    sampler = BaselineSampler.from_checkpoint(a.checkpoint)
    if sampler.kind != "d2nwg":
        raise SystemExit(f"{a.checkpoint} is a {sampler.kind} checkpoint, not D2NWG")
    rows = []
    for arch in a.arch:
        hidden = tuple(int(w) for w in arch.split(","))
        rec = index["architectures"].get(",".join(map(str, hidden)), {})
        if rec.get("role") != "train":
            raise SystemExit(f"[{arch}] is not a training architecture of {a.dataset}")
        data = WeightSet.load(a.dataset / "shards" / shard_name(list(hidden)))
        t0 = time.perf_counter()
        recon, mse = reconstruct(sampler, data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gen = api.generate(a.checkpoint, a.task, arch, a.num, sampler=a.sampler, steps=a.steps, seed=0)
        row = {"task": a.task, "arch": arch, "episodes": a.episodes, "eval_seed": a.eval_seed, "recon_mse": mse,
               "dataset": evaluate(a, data), "reconstruction": evaluate(a, recon),
               "noise_control": evaluate(a, add_noise(sampler, data, mse)), "generated": evaluate(a, gen.weights),
               "sampler": a.sampler, "steps": a.steps, "load": os.getloadavg()[0], "seconds": time.perf_counter() - t0}
        rows.append(row)
        print(f"[{arch}] dataset {100 * row['dataset']['mean_success']:.0f}% (n={data.n}) | VAE reconstruction "
              f"{100 * row['reconstruction']['mean_success']:.0f}% (mse {mse:.4f}) | noise of that mse "
              f"{100 * row['noise_control']['mean_success']:.0f}% | D2NWG top-{a.top_k} of {a.num} "
              f"{100 * row['generated']['top_k_success']:.0f}%, mean {100 * row['generated']['mean_success']:.0f}%", flush=True)
        write_results(a.out, a, rows)


if __name__ == "__main__":
    main()
