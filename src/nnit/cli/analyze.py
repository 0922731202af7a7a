"""``nnit analyze alignment``: GHN vs SGD structural alignment, diversity and heatmaps; a thin wrapper over
:func:`nnit.analysis.alignment.alignment_study`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import tyro

from nnit.config import PresetName


@dataclass(frozen=True)
class AnalyzeCommand:
    """Measure structural alignment: GHN-generated vs SGD-trained networks of one architecture.

    GHN set: the ensemble's members generate ARCH. SGD set: ARCH trained from different seeds by plain
    gradient descent. Robot tasks (--sgd dagger, the default): DAgger with the GHN's teacher and schedule
    until the set's mean success is within 10 points of the GHN set's (checked every few iterations on
    episodes apart from the final evaluation's) or an iteration cap. --sgd bc: a fixed number of steps
    of behaviour cloning on the GHN run's DAgger buffer. Image tasks: cross-entropy. Writes heatmaps
    (PNG), the alignment score, the diversity table, how the SGD set was trained and (with --evaluate)
    both sets' task performance to OUT/alignment.json.

    Example: nnit analyze alignment --ghn runs/cpu/PushCube-v1/ghn/ghn.safetensors --arch 64,64,64,64

    Example: nnit analyze alignment --ghn zoo/datasets/cpu/StackCubeEasy-v1/ghn.safetensors --networks 8 --sgd-max-iterations 300
    """

    what: tyro.conf.Positional[Literal["alignment"]]
    """The analysis to run (alignment)."""
    ghn: Path
    """A trained GHN ensemble checkpoint (from nnit train-ghn)."""
    arch: str = "64,64,64,64"
    """Hidden widths of the study architecture."""
    preset: PresetName = "cpu"
    """tiny / cpu / paper: networks per set, evaluation episodes, SGD steps / DAgger checks and cap (nnit presets --stage alignment)."""
    networks: Optional[int] = None
    """Networks per set (default: the preset's, capped by the ensemble size)."""
    out: Optional[Path] = None
    """Output directory (default: beside the checkpoint, in ../alignment)."""
    evaluate: bool = True
    """Also evaluate both sets on the task (Table 1's performance columns)."""
    seed: int = 0
    """First SGD seed (network i uses seed + i)."""
    workers: Optional[int] = None
    """Simulator workers for the evaluation."""
    data_dir: Optional[Path] = None
    """IDX folder for image tasks."""
    progress: bool = True
    """Show progress bars."""
    sgd: Optional[Literal["dagger", "bc"]] = None
    """How the SGD set trains: dagger (to the GHN set's success; the default for robot tasks) or bc (fixed steps on the
    GHN run's buffer for robot tasks; cross-entropy, the only choice, for image tasks)."""
    sgd_max_iterations: Optional[int] = None
    """Cap on the SGD set's DAgger iterations (default: the preset's)."""

    def run(self) -> None:
        from nnit.analysis.alignment import alignment_study

        report = alignment_study(self.ghn, self.arch, self.preset, self.networks, self.out, self.evaluate, self.seed,
                                 self.workers, self.data_dir, self.progress, sgd=self.sgd,
                                 sgd_max_iterations=self.sgd_max_iterations)
        print(json.dumps({k: report[k] for k in ("sgd", "quality", "sets") if k in report}, indent=1))
        print(f"wrote {Path(report['figure']).parent / 'alignment.json'} and {report['figure']}")
