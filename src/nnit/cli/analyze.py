"""``nnit analyze alignment``: GHN vs SGD structural alignment, diversity and heatmaps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import tyro

from nnit.config import PresetName


def analyze_command(
    what: tyro.conf.Positional[Literal["alignment"]],
    ghn: Path,
    arch: str = "64,64,64,64",
    preset: PresetName = "cpu",
    networks: int | None = None,
    out: Path | None = None,
    evaluate: bool = True,
    seed: int = 0,
    workers: int | None = None,
    data_dir: Path | None = None,
    progress: bool = True,
) -> None:
    """Measure structural alignment: GHN-generated vs SGD-trained networks of one architecture.

    GHN set: the ensemble's members generate ARCH. SGD set: ARCH trained from different seeds by
    behaviour cloning on the GHN run's teacher-labelled DAgger buffer (robot tasks) or by
    cross-entropy (image tasks). Writes heatmaps (PNG), the alignment score, the diversity table
    and (with --evaluate) both sets' task performance to OUT/alignment.json.

    Example: nnit analyze alignment --ghn runs/cpu/PushCube-v1/ghn/ghn.safetensors --arch 64,64,64,64

    Args:
        what: The analysis to run (alignment).
        ghn: A trained GHN ensemble checkpoint (from nnit train-ghn).
        arch: Hidden widths of the study architecture.
        preset: tiny / cpu / paper: SGD steps, networks per set, evaluation episodes (nnit.analysis.alignment.ALIGNMENT_PRESETS).
        networks: Networks per set (default: the preset's, capped by the ensemble size).
        out: Output directory (default: beside the checkpoint, in ../alignment).
        evaluate: Also evaluate both sets on the task (Table 1's performance columns).
        seed: First SGD seed (network i uses seed + i).
        workers: Simulator workers for the evaluation.
        data_dir: IDX folder for image tasks.
    """
    from nnit.analysis.alignment import alignment_study

    report = alignment_study(ghn, arch, preset, networks, out, evaluate, seed, workers, data_dir, progress)
    print(json.dumps(report["sets"], indent=1))
    print(f"wrote {Path(report['figure']).parent / 'alignment.json'} and {report['figure']}")
