"""``nnit train-baseline``: train D2NWG or SANE on the same GHN dataset as NNiT (issue 6)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Literal

from nnit.config import PresetName


class BaselineError(ValueError):
    """A user-facing error of ``nnit train-baseline`` (one line, exit 2)."""


def train_baseline_command(
    method: Literal["d2nwg", "sane"],
    dataset: Path,
    preset: PresetName = "cpu",
    out: Path | None = None,
    steps: int | None = None,
    normalization: Literal["global", "per_role"] = "per_role",
    threads: int | None = None,
    progress: bool = True,
) -> None:
    """Train a baseline weight generator (D2NWG or SANE, adapted to mixed widths) on a GHN dataset; resumable.

    Uses exactly NNiT's data (the kept networks of the train architectures) and normalization; sample
    and evaluate it with nnit generate --checkpoint OUT (same harness, seeds and top-k protocol).

    Example: nnit train-baseline --method d2nwg --dataset runs/cpu/PushCube-v1/dataset --preset cpu

    Example: nnit generate --task PushCube-v1 --checkpoint runs/cpu/PushCube-v1/d2nwg --arch 32,16,64,32 --evaluate

    Args:
        method: d2nwg (zero-padded vectors, VAE + latent diffusion) or sane (row tokens, autoencoder).
        dataset: A dataset directory from nnit build-dataset.
        preset: tiny / cpu / paper sizes and steps (see nnit.baselines.d2nwg / sane).
        out: Output directory (default: beside the dataset, in ../<method>).
        steps: Override the training steps (D2NWG: the diffusion phase; its VAE phase keeps the preset's).
        normalization: Weight normalization, as for nnit train (NNiT's cpu default: per_role).
        threads: torch CPU threads.
        progress: Show a progress bar.
    """
    import torch

    from nnit.baselines.common import summarize_history
    from nnit.baselines.train import PRESETS, train_baseline
    from nnit.ghn.dataset import dataset_normalizer, iter_dataset
    from nnit.weights.mlp import WeightError

    if threads:
        torch.set_num_threads(threads)
    dataset = Path(dataset)
    if not (dataset / "index.json").is_file():
        raise BaselineError(f"{dataset} is not a dataset directory (no index.json); build one with nnit build-dataset")
    index = json.loads((dataset / "index.json").read_text())
    sets = [ws for _, ws in iter_dataset(dataset, roles=("train",))]
    if not sets:
        raise BaselineError(f"{dataset} holds no kept networks of train-role architectures; nothing to train on")
    try:
        normalizer = dataset_normalizer(dataset, normalization, sets)
    except WeightError as err:
        raise BaselineError(str(err)) from None
    cfg = PRESETS[method][preset]
    if steps is not None:
        cfg = replace(cfg, **({"diffusion_steps": steps} if method == "d2nwg" else {"steps": steps}))
    out = Path(out) if out is not None else (dataset if dataset.name else dataset.resolve()).parent / method
    info = {"task": index.get("task"), "control_mode": index.get("control_mode"), "dataset": str(dataset)}
    print(f"training {method} on {sum(ws.n for ws in sets)} networks of {len(sets)} {info['task']} architectures -> {out}")
    t0 = time.perf_counter()
    model, res = train_baseline(method, cfg, [normalizer.apply(ws) for ws in sets], out, normalizer=normalizer,
                                info=info, progress=progress)
    first, last = summarize_history(res.history)
    print(f"steps {res.start_step} -> {res.end_step} in {time.perf_counter() - t0:.0f} s; loss {first:.4f} -> {last:.4f}; "
          f"parameters {model.parameter_counts()}")
    print(f"checkpoint: {res.checkpoint}")
    if info["task"]:
        print(f"next: nnit generate --task {info['task']} --checkpoint {res.checkpoint} --arch 32,16,64,32 --evaluate")
