"""``nnit train-ghn`` and ``nnit build-dataset``: the GHN data engine's commands, thin wrappers over
:func:`nnit.ghn.train.train_ghn_ensemble` and :func:`nnit.ghn.dataset.build_dataset`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Optional

from nnit.config import PresetName


@dataclass(frozen=True)
class TrainGHNCommand:
    """Train an ensemble of K GHNs by DAgger (robot tasks) or cross-entropy (image tasks); resumable.

    Re-running the same command resumes from OUT/ghn.safetensors (model, optimizer, DAgger buffer).
    Losses go to OUT/train_log.jsonl and TensorBoard (OUT/tb).

    Example: nnit train-ghn --task PushCube-v1 --preset cpu --out runs/cpu/PushCube-v1/ghn

    Example: nnit train-ghn --task FashionMNIST --preset tiny --ensemble-size 2

    Example: nnit train-ghn --task PushCube-v1 --teacher-checkpoint runs/cpu/PushCube-v1/expert
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
    control_mode: Literal["auto", "pd_joint_delta_pos", "pd_ee_delta_pos"] = "auto"
    """Robot controller; auto = the teacher's (scripted teachers: pd_ee_delta_pos; a PPO teacher: its own)."""
    data_dir: Optional[Path] = None
    """Folder with IDX files (image tasks; FashionMNIST defaults to the Debian package)."""
    progress: bool = True
    """Show a progress bar."""
    teacher_checkpoint: Optional[Path] = None
    """Distil this PPO expert (nnit train-expert checkpoint or run directory) instead of the scripted teacher; a
    resumed run keeps it."""

    def run(self) -> None:
        from nnit.ghn.train import ghn_config, saved_teacher_checkpoint, train_ghn_ensemble
        from nnit.tasks.registry import get_task

        spec = get_task(self.task)
        cfg = ghn_config(self.preset, spec.name)
        if self.ensemble_size is not None:
            cfg = replace(cfg, ensemble_size=self.ensemble_size)
        if self.iterations is not None:
            cfg = replace(cfg, iterations=self.iterations)
        cfg = replace(cfg, seed=self.seed)
        out = self.out or Path("runs") / self.preset / spec.name / "ghn"
        teacher = str(self.teacher_checkpoint) if self.teacher_checkpoint is not None else None
        mode = None
        if spec.kind == "robot":
            if self.control_mode == "auto":
                from nnit.experts.teachers import get_teacher

                # the given PPO teacher, else the one a resumed run was trained with, else the scripted one
                mode = get_teacher(spec.name, checkpoint=teacher or saved_teacher_checkpoint(out)).spec.control_mode
            else:
                mode = self.control_mode
        path = train_ghn_ensemble(spec.name, cfg, out, num_workers=self.workers, data_dir=str(self.data_dir) if self.data_dir else None,
                                  control_mode=mode, progress=self.progress, teacher_checkpoint=teacher)
        print(f"GHN ensemble ({cfg.ensemble_size} members) saved to {path}")


@dataclass(frozen=True)
class BuildDatasetCommand:
    """Generate one candidate per GHN per architecture, evaluate, filter (paper thresholds), keep the best.

    Writes OUT/shards/*.safetensors, OUT/index.json (every candidate's metrics), OUT/summary.json
    and OUT/normalization.json. Resumable: re-running skips finished architectures.

    Example: nnit build-dataset --ghn runs/cpu/PushCube-v1/ghn/ghn.safetensors --preset cpu
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
    progress: bool = True
    """Show a progress bar."""

    def run(self) -> None:
        import json

        from nnit.ghn.dataset import DATASET_PRESETS, build_dataset, format_role_summary, role_summary
        from nnit.weights.architecture import Architecture

        cfg = DATASET_PRESETS[self.preset]
        if self.episodes is not None:
            cfg = replace(cfg, episodes=self.episodes)
        if self.keep is not None:
            cfg = replace(cfg, keep_per_arch=self.keep)
        out = self.out or Path(self.ghn).parent.parent / "dataset"
        only = [Architecture.parse(a, 1, 1).hidden for a in self.archs] if self.archs else None
        path = build_dataset(self.ghn, out, cfg, num_workers=self.workers, data_dir=str(self.data_dir) if self.data_dir else None,
                             limit_archs=self.limit_archs, only=only, progress=self.progress)
        summary = json.loads((path / "summary.json").read_text())
        print(format_role_summary(role_summary(path)))
        print(f"dataset {path}: {summary['total_kept']} networks kept over {len(summary['architectures'])} architectures")
