"""``nnit train-ghn`` and ``nnit build-dataset``: the GHN data engine's commands, thin wrappers over
:func:`nnit.api.train_ghn` and :func:`nnit.api.build_dataset`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from nnit.config import DeviceName, PresetName
from nnit.weights.architecture import SplitName


@dataclass(frozen=True)
class TrainGHNCommand:
    """Train an ensemble of K GHNs by DAgger (robot tasks) or cross-entropy (image tasks); resumable.

    Re-running the same command resumes from OUT/ghn.safetensors (model, optimizer, DAgger buffer).
    Losses go to OUT/train_log.jsonl and TensorBoard (OUT/tb).

    Example: nnit train-ghn --task PushCube-v1 --preset cpu --out runs/cpu/PushCube-v1/ghn

    Example: nnit train-ghn --task FashionMNIST --preset tiny --ensemble-size 2

    Example: nnit train-ghn --task PushCube-v1 --teacher-checkpoint runs/cpu/PushCube-v1/expert

    Example: nnit train-ghn --task PickCube-v1 --preset paper --device cuda

    Example: nnit train-ghn --task PushCube-v1 --preset cpu --split varied --out runs/cpu-varied/PushCube-v1/ghn
    """

    task: str
    """PickCube-v1, PushCube-v1, StackCubeEasy-v1, FashionMNIST or MNIST."""
    preset: PresetName = "cpu"
    """tiny / cpu / paper (ensemble size, iterations, meta-batch, buffer, ...)."""
    out: Optional[Path] = None
    """Output directory (default runs/<preset>/<task>/ghn)."""
    ensemble_size: Optional[int] = None
    """Override K, the number of GHNs."""
    iterations: Optional[int] = None
    """Override the number of DAgger iterations."""
    seed: int = 0
    """Ensemble seed: member i starts from seed*100003 + i."""
    workers: Optional[int] = None
    """Simulator worker processes for DAgger rollouts (default: one per core)."""
    device: DeviceName = "cpu"
    """Where the GHN ensemble trains: cpu or cuda (the DAgger rollouts run on physx_cpu workers either way); a resumed
    run may change it."""
    control_mode: Literal["auto", "pd_joint_delta_pos", "pd_ee_delta_pos"] = "auto"
    """Robot controller; auto = the teacher's (scripted teachers: pd_ee_delta_pos; a PPO teacher: its own)."""
    data_dir: Optional[Path] = None
    """Folder with IDX files (image tasks; FashionMNIST defaults to the Debian package)."""
    progress: bool = True
    """Show a progress bar."""
    teacher_checkpoint: Optional[Path] = None
    """Distil this PPO expert (nnit train-expert checkpoint or run directory) instead of the scripted teacher; a
    resumed run keeps it."""
    split: SplitName = "paper"
    """Architecture split the meta-batches are drawn from: paper (depth 4, widths 16/32/64) or varied (widths 8..64
    in steps of 8, depths 2..6; docs/reference/architecture-splits.md)."""

    def run(self) -> None:
        from nnit.api import train_ghn

        train_ghn(self.task, self.preset, self.out, ensemble_size=self.ensemble_size, iterations=self.iterations, seed=self.seed,
                  control_mode=None if self.control_mode == "auto" else self.control_mode,
                  teacher_checkpoint=self.teacher_checkpoint, workers=self.workers, data_dir=self.data_dir,
                  device=self.device, split=self.split, progress=self.progress, log=print)


@dataclass(frozen=True)
class BuildDatasetCommand:
    """Generate one candidate per GHN per architecture, evaluate, filter (paper thresholds), keep the best.

    Writes OUT/shards/*.safetensors, OUT/index.json (every candidate's metrics), OUT/summary.json
    and OUT/normalization.json. Resumable: re-running skips finished architectures.

    Example: nnit build-dataset --ghn runs/cpu/PushCube-v1/ghn/ghn.safetensors --preset cpu

    Example: nnit build-dataset --ghn runs/cpu-varied/PushCube-v1/ghn/ghn.safetensors --preset cpu --split varied

    Example: nnit build-dataset --ghn runs/cpu-varied/PushCube-v1/ghn/ghn.safetensors --preset cpu
      --split varied-all-depths --reuse runs/cpu-varied/PushCube-v1/dataset --out runs/cpu-varied5/PushCube-v1/dataset
    """

    ghn: Path
    """A trained GHN ensemble checkpoint (from nnit train-ghn)."""
    preset: PresetName = "cpu"
    """tiny / cpu / paper: evaluation episodes per candidate and networks kept per architecture."""
    out: Optional[Path] = None
    """Output directory (default: beside the checkpoint, in ../dataset)."""
    episodes: Optional[int] = None
    """Override the evaluation episodes per candidate."""
    keep: Optional[int] = None
    """Override the networks kept per architecture."""
    workers: Optional[int] = None
    """Simulator worker processes (default: one per core)."""
    data_dir: Optional[Path] = None
    """IDX folder for image tasks."""
    limit_archs: Optional[int] = None
    """Only the first N architectures (for quick checks)."""
    archs: Optional[list[str]] = None
    """Only these architectures of the split, e.g. --archs 32,16,64,32 32,32,16,64."""
    split: SplitName = "paper"
    """Architecture split to build (paper, varied, varied-all-depths or varied-dense): the GHN's own, or another over the same
    widths and depths."""
    reuse: Optional[Path] = None
    """An earlier dataset of the same GHN and settings (e.g. of another split): architectures it finished are copied."""
    progress: bool = True
    """Show a progress bar."""

    def run(self) -> None:
        from nnit.api import build_dataset

        build_dataset(self.ghn, self.preset, self.out, episodes=self.episodes, keep=self.keep, archs=self.archs,
                      limit_archs=self.limit_archs, workers=self.workers, data_dir=self.data_dir, split=self.split,
                      reuse=self.reuse, progress=self.progress, log=print)
