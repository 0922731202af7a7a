"""Diagnostic: can NNiT denoise precisely at all? Train it on the networks of ONE architecture of a
dataset and measure, for training networks noised to timestep t, the RMS error of the one-step x0
estimate and the success of the policies it decodes to (robot tasks).

    .venv/bin/python benchmarks/nnit_single_arch.py --dataset runs/cpu/PushCube-v1/dataset \
        --arch 32,16,64,32 --steps 5000 --out runs/nnit_single_arch
    .venv/bin/python benchmarks/nnit_single_arch.py --dataset ... --checkpoint runs/cpu/PushCube-v1/nnit   # probe a trained model
    .venv/bin/python benchmarks/nnit_single_arch.py --dataset ... --arch 64,64,64,64 --noise   # weight-noise sensitivity

Used to tell an optimization-limited model (error falls with steps) from a broken pipeline.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import torch


def probe(ckpt: Path, dataset: Path, hidden: tuple[int, ...], ts=(10, 50, 100, 200, 400), episodes: int = 10) -> list[dict]:
    from nnit.diffusion.sample import NNiTSampler
    from nnit.eval.harness import CPUEvaluator
    from nnit.ghn.dataset import iter_dataset
    from nnit.tasks.registry import get_task

    s = NNiTSampler.from_checkpoint(ckpt)
    index = json.loads((dataset / "index.json").read_text())
    ws = next(w for _, w in iter_dataset(dataset, roles=("train", "held_out")) if w.arch.hidden == hidden)
    tok = s.grid.tokenize(s.normalizer.apply(ws), s.mode)
    n = ws.n
    x0 = tok.values * tok.element_mask
    pos = tok.positions.unsqueeze(0).expand(n, -1, -1)
    em = tok.element_mask.unsqueeze(0).expand(n, -1, -1)
    codes = s.codec.encode(ws.arch).unsqueeze(0).expand(n, -1, -1)
    d = s.diffusion
    task = get_task(index["task"], control_mode=index.get("control_mode"))
    ev = CPUEvaluator(task).start() if task.kind == "robot" else None
    rows = []
    try:
        if ev is not None:
            rows.append({"t": 0, "x0_rms": 0.0, "success": float(ev.evaluate(ws, episodes, 1000).metrics["success_rate"].mean())})
        g = torch.Generator().manual_seed(0)
        for t in ts:
            tt = torch.full((n,), t)
            xt = d.add_noise(x0, torch.randn(x0.shape, generator=g), tt) * em
            with torch.no_grad():
                _, _, eps_w, _ = s._denoiser(pos)(codes, xt, torch.zeros_like(tt), tt, em)
            x0h = d.predict_x0_from_eps(xt, tt, eps_w) * em
            row = {"t": t, "x0_rms": float(((x0h - x0) ** 2)[em].mean().sqrt()),
                   "input_rms": float(((xt / d.sqrt_alphas_cumprod[t] - x0) ** 2)[em].mean().sqrt())}
            if ev is not None:
                w = s.normalizer.invert(s.grid.assemble(ws.arch, x0h, s.mode))
                row["success"] = float(ev.evaluate(w, episodes, 1000).metrics["success_rate"].mean())
            rows.append(row)
            print(row, flush=True)
    finally:
        if ev is not None:
            ev.close()
    return rows


def noise_sensitivity(dataset: Path, hidden: tuple[int, ...], levels=(0.0, 0.05, 0.1, 0.2, 0.4), episodes: int = 10) -> list[dict]:
    """Mean success of the kept networks of ``hidden`` after i.i.d. noise of std ``level`` in the dataset's
    global-normalized weight space (how precise a generator must be)."""
    from nnit.eval.harness import CPUEvaluator
    from nnit.ghn.dataset import iter_dataset
    from nnit.tasks.registry import get_task
    from nnit.weights.mlp import WeightSet
    from nnit.weights.normalize import WeightNormalizer

    index = json.loads((dataset / "index.json").read_text())
    norm = WeightNormalizer.load(dataset / "normalization.json")
    ws = next(w for _, w in iter_dataset(dataset, roles=("train", "held_out")) if w.arch.hidden == hidden)
    ev = CPUEvaluator(get_task(index["task"], control_mode=index.get("control_mode"))).start()
    rows, g = [], torch.Generator().manual_seed(0)
    try:
        for s in levels:
            z = norm.apply(ws)
            noisy = WeightSet(z.arch, [w + s * torch.randn(w.shape, generator=g) for w in z.weights],
                              [b + s * torch.randn(b.shape, generator=g) for b in z.biases])
            r = ev.evaluate(norm.invert(noisy), episodes=episodes, base_seed=200_000)
            rows.append({"noise_std": s, "mean_success": float(r.metrics["success_rate"].mean()),
                         "per_network": r.metrics["success_rate"].tolist()})
            print(rows[-1], flush=True)
    finally:
        ev.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--arch", default="32,16,64,32")
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--out", type=Path, default=Path("runs/nnit_single_arch"))
    ap.add_argument("--checkpoint", type=Path, default=None, help="probe this trained model instead of training one")
    ap.add_argument("--noise", action="store_true", help="only measure the kept networks' noise sensitivity")
    a = ap.parse_args()
    hidden = tuple(int(x) for x in a.arch.split(","))
    if a.noise:
        rows = noise_sensitivity(a.dataset, hidden)
        Path(a.out).mkdir(parents=True, exist_ok=True)
        (Path(a.out) / "noise.json").write_text(json.dumps(rows, indent=1))
        return
    ckpt = a.checkpoint
    if ckpt is None:
        from nnit.diffusion.train import TRAIN_PRESETS, train
        from nnit.ghn.dataset import dataset_normalizer, iter_dataset

        sets = [ws for _, ws in iter_dataset(a.dataset, roles=("train",))]
        norm = dataset_normalizer(a.dataset, "per_role", sets)
        one = [ws for ws in sets if ws.arch.hidden == hidden]
        cfg = replace(TRAIN_PRESETS["cpu"], steps=a.steps, lr=a.lr, warmup_steps=100, ema_decay=0.995)
        index = json.loads((a.dataset / "index.json").read_text())
        res = train(cfg, [norm.apply(ws) for ws in one], a.out, normalizer=norm, progress=False,
                    info={"task": index["task"], "control_mode": index.get("control_mode")})
        ckpt = res.checkpoint
    rows = probe(Path(ckpt), a.dataset, hidden)
    (Path(a.out) / "probe.json").parent.mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "probe.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
