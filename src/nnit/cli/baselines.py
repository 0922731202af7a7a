"""``nnit train-baseline``: train D2NWG or SANE on the same GHN dataset as NNiT; a thin wrapper over
:func:`nnit.baselines.train.train_baseline`. Data-parallel under ``torchrun`` like ``nnit train``."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Optional

from nnit.config import PresetName


class BaselineError(ValueError):
    """A user-facing error of ``nnit train-baseline`` (one line, exit 2)."""


@dataclass(frozen=True)
class TrainBaselineCommand:
    """Train a baseline weight generator (D2NWG or SANE, adapted to mixed widths) on a GHN dataset; resumable.

    Uses exactly NNiT's data (the kept networks of the train architectures) and normalization; sample
    and evaluate it with nnit generate --checkpoint OUT (same harness, seeds and top-k protocol).
    Data-parallel: torchrun --nproc_per_node=N -m nnit train-baseline ... (the batch is split over the processes).

    Example: nnit train-baseline --method d2nwg --dataset runs/cpu/PushCube-v1/dataset --preset cpu

    Example: nnit generate --task PushCube-v1 --checkpoint runs/cpu/PushCube-v1/d2nwg --arch 32,16,64,32 --evaluate
    """

    method: Literal["d2nwg", "sane"]
    """d2nwg (zero-padded vectors, VAE + latent diffusion) or sane (row tokens, autoencoder)."""
    dataset: Path
    """A dataset directory from nnit build-dataset."""
    preset: PresetName = "cpu"
    """tiny / cpu / paper sizes and steps (nnit presets --stage d2nwg / sane)."""
    out: Optional[Path] = None
    """Output directory (default: beside the dataset, in ../<method>)."""
    steps: Optional[int] = None
    """Override the training steps (D2NWG: the diffusion phase; its VAE phase keeps the preset's)."""
    normalization: Literal["global", "per_role"] = "per_role"
    """Weight normalization, as for nnit train (NNiT's cpu default: per_role)."""
    threads: Optional[int] = None
    """torch CPU threads."""
    progress: bool = True
    """Show a progress bar."""

    def run(self) -> None:
        import json
        import time

        import torch

        from nnit.baselines.common import summarize_history
        from nnit.baselines.train import PRESETS, train_baseline
        from nnit.distributed import init_from_env, is_main
        from nnit.ghn.dataset import dataset_normalizer, iter_dataset
        from nnit.weights.mlp import WeightError

        init_from_env()  # under torchrun: join the process group now, so only rank 0 reports
        say = print if is_main() else (lambda *_: None)
        if self.threads:
            torch.set_num_threads(self.threads)
        dataset = Path(self.dataset)
        if not (dataset / "index.json").is_file():
            raise BaselineError(f"{dataset} is not a dataset directory (no index.json); build one with nnit build-dataset")
        index = json.loads((dataset / "index.json").read_text())
        sets = [ws for _, ws in iter_dataset(dataset, roles=("train",))]
        if not sets:
            raise BaselineError(f"{dataset} holds no kept networks of train-role architectures; nothing to train on")
        try:
            normalizer = dataset_normalizer(dataset, self.normalization, sets)
        except WeightError as err:
            raise BaselineError(str(err)) from None
        cfg = PRESETS[self.method][self.preset]
        if self.steps is not None:
            cfg = replace(cfg, **({"diffusion_steps": self.steps} if self.method == "d2nwg" else {"steps": self.steps}))
        out = Path(self.out) if self.out is not None else (dataset if dataset.name else dataset.resolve()).parent / self.method
        info = {"task": index.get("task"), "control_mode": index.get("control_mode"), "dataset": str(dataset)}
        say(f"training {self.method} on {sum(ws.n for ws in sets)} networks of {len(sets)} {info['task']} architectures -> {out}")
        t0 = time.perf_counter()
        model, res = train_baseline(self.method, cfg, [normalizer.apply(ws) for ws in sets], out, normalizer=normalizer,
                                    info=info, progress=self.progress)
        first, last = summarize_history(res.history)
        say(f"steps {res.start_step} -> {res.end_step} in {time.perf_counter() - t0:.0f} s; loss {first:.4f} -> {last:.4f}; "
            f"parameters {model.parameter_counts()}")
        say(f"checkpoint: {res.checkpoint}")
        if info["task"]:
            say(f"next: nnit generate --task {info['task']} --checkpoint {res.checkpoint} --arch 32,16,64,32 --evaluate")
