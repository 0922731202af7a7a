"""``nnit train-ghn``: train (or resume) an ensemble of independently seeded GHNs on one task."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Literal

from nnit.config import PresetName


def train_ghn_command(
    task: str,
    preset: PresetName = "cpu",
    out: Path | None = None,
    ensemble_size: int | None = None,
    iterations: int | None = None,
    seed: int = 0,
    workers: int | None = None,
    control_mode: Literal["auto", "pd_joint_delta_pos", "pd_ee_delta_pos"] = "auto",
    data_dir: Path | None = None,
    progress: bool = True,
    teacher_checkpoint: Path | None = None,
) -> None:
    """Train an ensemble of K GHNs by DAgger (robot tasks) or cross-entropy (image tasks); resumable.

    Re-running the same command resumes from OUT/ghn.safetensors (model, optimizer, DAgger buffer).
    Losses go to OUT/train_log.jsonl and TensorBoard (OUT/tb).

    Example: nnit train-ghn --task PushCube-v1 --preset cpu --out runs/cpu/PushCube-v1/ghn
    Example: nnit train-ghn --task FashionMNIST --preset tiny --ensemble-size 2
    Example: nnit train-ghn --task PushCube-v1 --teacher-checkpoint runs/cpu/PushCube-v1/expert

    Args:
        task: PickCube-v1, PushCube-v1, StackCubeEasy-v1, FashionMNIST or MNIST.
        preset: tiny / cpu / paper (ensemble size, iterations, meta-batch, buffer, ...).
        out: Output directory (default runs/<preset>/<task>/ghn).
        ensemble_size: Override K, the number of GHNs.
        iterations: Override the number of DAgger iterations.
        seed: Ensemble seed: member i starts from seed*100003 + i.
        workers: Simulator worker processes for DAgger rollouts (default: one per core).
        control_mode: Robot controller; auto = the teacher's (scripted teachers: pd_ee_delta_pos; a PPO teacher: its own).
        data_dir: Folder with IDX files (image tasks; FashionMNIST defaults to the Debian package).
        teacher_checkpoint: Distil this PPO expert (nnit train-expert checkpoint or run directory) instead of the scripted teacher; a resumed run keeps it.
    """
    from nnit.ghn.train import ghn_config, saved_teacher_checkpoint, train_ghn_ensemble
    from nnit.tasks.registry import get_task

    spec = get_task(task)
    cfg = ghn_config(preset, spec.name)
    if ensemble_size is not None:
        cfg = replace(cfg, ensemble_size=ensemble_size)
    if iterations is not None:
        cfg = replace(cfg, iterations=iterations)
    cfg = replace(cfg, seed=seed)
    out = out or Path("runs") / preset / spec.name / "ghn"
    mode = None
    if spec.kind == "robot":
        if control_mode == "auto":
            from nnit.experts.teachers import get_teacher

            # the given PPO teacher, else the one a resumed run was trained with, else the scripted one
            teacher_ckpt = str(teacher_checkpoint) if teacher_checkpoint is not None else saved_teacher_checkpoint(out)
            mode = get_teacher(spec.name, checkpoint=teacher_ckpt).spec.control_mode
        else:
            mode = control_mode
    path = train_ghn_ensemble(spec.name, cfg, out, num_workers=workers, data_dir=str(data_dir) if data_dir else None,
                              control_mode=mode, progress=progress,
                              teacher_checkpoint=str(teacher_checkpoint) if teacher_checkpoint is not None else None)
    print(f"GHN ensemble ({cfg.ensemble_size} members) saved to {path}")


def build_dataset_command(
    ghn: Path,
    preset: PresetName = "cpu",
    out: Path | None = None,
    episodes: int | None = None,
    keep: int | None = None,
    workers: int | None = None,
    data_dir: Path | None = None,
    limit_archs: int | None = None,
    archs: list[str] | None = None,
    progress: bool = True,
) -> None:
    """Generate one candidate per GHN per architecture, evaluate, filter (paper thresholds), keep the best.

    Writes OUT/shards/*.safetensors, OUT/index.json (every candidate's metrics), OUT/summary.json
    and OUT/normalization.json. Resumable: re-running skips finished architectures.

    Example: nnit build-dataset --ghn runs/cpu/PushCube-v1/ghn/ghn.safetensors --preset cpu

    Args:
        ghn: A trained GHN ensemble checkpoint (from nnit train-ghn).
        preset: tiny / cpu / paper: evaluation episodes per candidate and networks kept per architecture.
        out: Output directory (default: beside the checkpoint, in ../dataset).
        episodes: Override the evaluation episodes per candidate.
        keep: Override the networks kept per architecture.
        workers: Simulator worker processes (default: one per core).
        data_dir: IDX folder for image tasks.
        limit_archs: Only the first N architectures (for quick checks).
        archs: Only these architectures of the split, e.g. --archs 32,16,64,32 32,32,16,64.
    """
    import json

    from nnit.ghn.dataset import DATASET_PRESETS, build_dataset, format_role_summary, role_summary

    cfg = DATASET_PRESETS[preset]
    if episodes is not None:
        cfg = replace(cfg, episodes=episodes)
    if keep is not None:
        cfg = replace(cfg, keep_per_arch=keep)
    out = out or Path(ghn).parent.parent / "dataset"
    from nnit.weights.architecture import Architecture

    only = [Architecture.parse(a, 1, 1).hidden for a in archs] if archs else None
    path = build_dataset(ghn, out, cfg, num_workers=workers, data_dir=str(data_dir) if data_dir else None,
                         limit_archs=limit_archs, only=only, progress=progress)
    summary = json.loads((path / "summary.json").read_text())
    print(format_role_summary(role_summary(path)))
    print(f"dataset {path}: {summary['total_kept']} networks kept over {len(summary['architectures'])} architectures")
