"""Fixed-seed tiny runs of every trainer (NNiT, D2NWG, SANE, GHN on image data), shared by tests/test_training.py.

``python tests/_training_scenarios.py`` prints the curves and checksums; the expected values in
test_training.py were recorded this way with the loops as they were before :mod:`nnit.training`."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import smooth_weights  # noqa: E402

from nnit.weights import Architecture, WeightNormalizer  # noqa: E402

TRAIN_HIDDEN = [(16, 32, 64, 32), (32, 32, 32, 32), (64, 16, 16, 64), (32, 64, 16, 16)]


def weight_sets(input_dim: int = 42, output_dim: int = 8, n: int = 4):
    raw = [smooth_weights(Architecture(input_dim, h, output_dim), n, seed=k) for k, h in enumerate(TRAIN_HIDDEN)]
    norm = WeightNormalizer.fit(raw)
    return [norm.apply(ws) for ws in raw], norm


def checksum(state: dict) -> float:
    """Sum of |x| over every floating tensor of a state dict (float64)."""
    return float(sum(v.double().abs().sum() for v in state.values() if v.is_floating_point()))


def ckpt_sums(path) -> dict:
    from nnit.checkpoint import load_checkpoint

    import hashlib

    ck = load_checkpoint(path)
    keys = sorted([f"model.{k}" for k in ck.model] + [f"ema.{k}" for k in ck.ema or {}] + [f"extra.{k}" for k in ck.extra]
                  + [f"optim.{i}.{k}" for i, st in (ck.optimizer or {"state": {}})["state"].items() for k in st])
    layout = json.dumps({"keys": keys, "kind": ck.meta.get("kind"), "sections": sorted(ck.sections), "config": sorted(ck.config)})
    return {"model": checksum(ck.model), "ema": checksum(ck.ema or {}), "step": ck.step,
            "layout": hashlib.sha1(layout.encode()).hexdigest()[:12]}


NNIT_STEPS = 30


def run_nnit(out: Path, **kw) -> dict:
    from nnit.diffusion.train import TRAIN_PRESETS, train

    data, norm = weight_sets()
    cfg = dataclasses.replace(TRAIN_PRESETS["tiny"], steps=NNIT_STEPS, warmup_steps=5, ckpt_every=1000, log_every=5,
                              p_prior=0.0)  # the paper's two MoNL modes, as recorded
    res = train(cfg, data, out, normalizer=norm, progress=False, **kw)
    return {"total": [r["total"] for r in res.history], **ckpt_sums(out)}


def run_d2nwg(out: Path) -> dict:
    from nnit.baselines.d2nwg import D2NWG_PRESETS
    from nnit.baselines.train import train_d2nwg

    data, norm = weight_sets(10, 4)
    cfg = dataclasses.replace(D2NWG_PRESETS["tiny"], vae_steps=12, diffusion_steps=12, warmup_steps=3, ema_decay=0.9,
                              val_fraction=0.0)  # fixed steps on all the data, as recorded
    _, res = train_d2nwg(cfg, data, out, normalizer=norm, progress=False)
    return {"total": [r["total"] for r in res.history], **ckpt_sums(out)}


def run_sane(out: Path) -> dict:
    from nnit.baselines.sane import SANE_PRESETS
    from nnit.baselines.train import train_sane

    data, norm = weight_sets(10, 4)
    cfg = dataclasses.replace(SANE_PRESETS["tiny"], steps=15, warmup_steps=3, ema_decay=0.9, val_fraction=0.0)
    _, res = train_sane(cfg, data, out, normalizer=norm, progress=False)
    return {"total": [r["total"] for r in res.history], **ckpt_sums(out)}


def fake_fashion(root: Path, n: int = 5200) -> Path:
    """Random FashionMNIST-shaped IDX files (the training split needs more than the 5,000 validation images)."""
    from nnit.tasks.images import write_idx

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, (n,))
    x = (rng.integers(0, 60, (n, 28, 28)) + 18 * y[:, None, None]).clip(0, 255)  # learnable: brightness ~ label
    write_idx(root / "train-images-idx3-ubyte", x)
    write_idx(root / "train-labels-idx1-ubyte", y)
    return root


def run_ghn(out: Path, data_dir: Path) -> dict:
    from nnit.ghn.train import ghn_config, train_ghn_ensemble

    cfg = dataclasses.replace(ghn_config("tiny", "FashionMNIST"), iterations=4, checkpoint_every=2)
    train_ghn_ensemble("FashionMNIST", cfg, out, data_dir=str(data_dir), progress=False)
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    return {"loss_mean": [r["loss_mean"] for r in log], "lr": [r["lr"] for r in log], **ckpt_sums(out / "ghn.safetensors")}


DDP_NNIT_STEPS = 8
DDP_D2NWG = {"vae_steps": 4, "diffusion_steps": 4, "warmup_steps": 2, "ema_decay": 0.9, "val_fraction": 0.0}


def ddp_runs(out: Path, resume_split: bool = False) -> dict:
    """Short NNiT and D2NWG runs in ``out`` (one process, or one rank of a torchrun-like group). With
    ``resume_split`` the NNiT run is stopped half-way and resumed. Returns the loss curves and final weights."""
    from nnit.baselines.d2nwg import D2NWG_PRESETS
    from nnit.baselines.sane import SANE_PRESETS
    from nnit.baselines.train import train_d2nwg, train_sane
    from nnit.checkpoint import load_checkpoint
    from nnit.diffusion.train import TRAIN_PRESETS, train

    data, norm = weight_sets()
    cfg = dataclasses.replace(TRAIN_PRESETS["tiny"], steps=DDP_NNIT_STEPS, warmup_steps=2, ckpt_every=1000, log_every=2)
    if resume_split:
        first = train(cfg, data, out / "nnit", normalizer=norm, progress=False, stop_after=DDP_NNIT_STEPS // 2)
        rest = train(cfg, data, out / "nnit", normalizer=norm, progress=False)
        hist = first.history + rest.history
    else:
        hist = train(cfg, data, out / "nnit", normalizer=norm, progress=False).history
    d_data, d_norm = weight_sets(10, 4)
    d_cfg = dataclasses.replace(D2NWG_PRESETS["tiny"], **DDP_D2NWG)
    _, d_res = train_d2nwg(d_cfg, d_data, out / "d2nwg", normalizer=d_norm, progress=False)
    s_cfg = dataclasses.replace(SANE_PRESETS["tiny"], steps=6, warmup_steps=2, ema_decay=0.9, val_fraction=0.0)
    _, s_res = train_sane(s_cfg, d_data, out / "sane", normalizer=d_norm, progress=False)
    ck, d_ck, s_ck = load_checkpoint(out / "nnit"), load_checkpoint(out / "d2nwg"), load_checkpoint(out / "sane")
    return {"nnit": [r["total"] for r in hist], "d2nwg": [r["total"] for r in d_res.history],
            "sane": [r["total"] for r in s_res.history], "sane_recon": [r["recon"] for r in s_res.history],
            "nnit_model": ck.model, "nnit_ema": ck.ema, "d2nwg_model": d_ck.model, "sane_model": s_ck.model}


def ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    """One rank of a data-parallel group (gloo on CPU), set up the way torchrun sets up its workers."""
    import os

    torch.set_num_threads(1)
    os.environ.update({"WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    res = ddp_runs(Path(out), resume_split=True)
    curves = {k: res[k] for k in ("nnit", "d2nwg", "sane", "sane_recon")}
    (Path(out) / f"curves.{rank}.json").write_text(json.dumps(curves))
    from nnit import distributed

    distributed.cleanup()


if __name__ == "__main__":
    import tempfile

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tmp)
        out = {"nnit": run_nnit(tmp / "nnit"), "d2nwg": run_d2nwg(tmp / "d2nwg"), "sane": run_sane(tmp / "sane"),
               "ghn": run_ghn(tmp / "ghn", fake_fashion(tmp / "fashion"))}
    print(json.dumps(out, indent=1))
