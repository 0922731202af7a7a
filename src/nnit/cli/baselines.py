"""``nnit train-baseline``: train D2NWG or SANE on the same GHN dataset as NNiT; a thin wrapper over
:func:`nnit.api.train_baseline`. Data-parallel under ``torchrun`` like ``nnit train``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from nnit.config import PresetName


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
    max_seconds: float = 0.0
    """Wall-clock cap of the run in seconds, over all its sessions (0 = none; the equal-budget comparison passes
    NNiT's training time for the task)."""
    threads: Optional[int] = None
    """torch CPU threads."""
    progress: bool = True
    """Show a progress bar."""

    def run(self) -> None:
        from nnit.api import train_baseline
        from nnit.distributed import init_from_env, is_main

        init_from_env()  # under torchrun: join the process group now, so only rank 0 reports
        say = print if is_main() else (lambda *_: None)
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)
        run = train_baseline(self.method, self.dataset, self.preset, self.out, steps=self.steps, normalization=self.normalization,
                             max_seconds=self.max_seconds, progress=self.progress, log=say)
        if run.task:
            say(f"next: nnit generate --task {run.task} --checkpoint {run.checkpoint} --arch 32,16,64,32 --evaluate")
