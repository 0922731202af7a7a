"""D2NWG's VAE alone: how well do VAEs of different capacity reconstruct the dataset's networks, and do the
reconstructions still work? (The D2NWG sanity check found its reconstructions failing.)

For each ``--latent`` (latent dims per 512-entry chunk) it trains only the VAE phase of D2NWG (the ``cpu``
preset's settings, ``--steps`` VAE steps, 10% of each architecture's networks held out) and reports the held-out
reconstruction MSE curve (normalized space) and, for ``--arch``, the success of the held-in networks'
reconstructions next to the originals on the same episodes.

    .venv/bin/python benchmarks/d2nwg_vae.py --task PickCube-v1 --dataset zoo/datasets/cpu/PickCube-v1 \
        --latent 128 64 --steps 6000 --arch 32,16,64,32 --out results/benchmarks/d2nwg_vae_pickcube.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from _results import add_evaluation_args, write_results
from d2nwg_sanity import reconstruct

from nnit import api
from nnit.baselines.d2nwg import D2NWG_PRESETS
from nnit.baselines.train import BaselineSampler, train_d2nwg
from nnit.checkpoint import load_checkpoint
from nnit.ghn.dataset import dataset_normalizer, iter_dataset, shard_name
from nnit.weights.mlp import WeightSet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", required=True)
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--latent", type=int, nargs="+", default=[16, 64, 128])
    ap.add_argument("--vae-hidden", type=int, default=None, help="hidden width of the chunk MLPs (default: the preset's)")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--arch", default="32,16,64,32")
    add_evaluation_args(ap, top_k=False)
    ap.add_argument("--runs", type=Path, default=Path("runs/d2nwg_vae"))
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    control_mode = json.loads((a.dataset / "index.json").read_text()).get("control_mode")
    sets = [ws for _, ws in iter_dataset(a.dataset, roles=("train",))]
    norm = dataset_normalizer(a.dataset, "per_role", sets)
    data = WeightSet.load(a.dataset / "shards" / shard_name([int(w) for w in a.arch.split(",")]))
    rows = json.loads(a.out.read_text())["rows"] if a.out.exists() else []
    for latent in a.latent:
        cfg = dataclasses.replace(D2NWG_PRESETS["cpu"], latent_per_chunk=latent, vae_steps=a.steps, diffusion_steps=0,
                                  val_every=500, patience=10 ** 6,
                                  **({"vae_hidden": a.vae_hidden} if a.vae_hidden else {}))
        if any(r["latent_per_chunk"] == latent and r["vae_hidden"] == cfg.vae_hidden and r["steps"] == a.steps for r in rows):
            continue
        out = a.runs / f"latent{latent}_h{cfg.vae_hidden}_{a.steps}"
        t0 = time.perf_counter()
        model, _ = train_d2nwg(cfg, [norm.apply(ws) for ws in sets], out, normalizer=norm, progress=False)
        seconds = time.perf_counter() - t0
        budget = load_checkpoint(out).sections["budget"]
        recon, mse = reconstruct(BaselineSampler.from_checkpoint(out), data)
        res = {}
        for name, ws in (("dataset", data), ("reconstruction", recon)):
            table = api.evaluate(a.task, ws, a.episodes, a.eval_seed, workers=a.workers, control_mode=control_mode)
            res[name] = float(np.mean(table.results[ws.arch.hidden].metrics["success_rate"]))
        rows.append({"task": a.task, "latent_per_chunk": latent, "vae_hidden": cfg.vae_hidden, "steps": a.steps,
                     "compression": cfg.chunk / latent, "vae_parameters": model.parameter_counts()["vae"],
                     "val_mse_curve": budget["plateaus"]["vae"]["history"], "arch": a.arch, "recon_mse_arch": mse,
                     "success_dataset": res["dataset"], "success_reconstruction": res["reconstruction"],
                     "episodes": a.episodes, "eval_seed": a.eval_seed, "seconds": seconds})
        curve = budget["plateaus"]["vae"]["history"]
        print(f"latent {latent}/chunk: held-out MSE {curve[-1][1]:.5f} after {a.steps} steps ({seconds:.0f} s); "
              f"[{a.arch}] reconstructions {100 * res['reconstruction']:.0f}% vs originals {100 * res['dataset']:.0f}%",
              flush=True)
        write_results(a.out, a, rows)


if __name__ == "__main__":
    main()
