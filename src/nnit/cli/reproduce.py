"""``nnit reproduce``: run the whole pipeline at a preset and write REPORT.md."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from nnit.config import PresetName


@dataclass(frozen=True)
class ReproduceCommand:
    """Run every stage (PPO experts, teachers, GHN ensembles, dataset, alignment, NNiT, baselines, evaluation); write the report.

    The paper preset trains a PPO expert per robot task first and distils it (its expert stage); tiny and cpu distil the
    scripted teachers. NNiT's evaluations sample at temperature 1 (the paper's sampler, which decides the report's
    verdicts) and, at tiny and cpu, also at their temperature 0.5 (stages eval-nnit-t1-* / joint-t1 and eval-nnit-* /
    joint; --only eval-nnit selects both).

    Every stage runs in this process (nnit.api and the library). Cached: a rerun skips finished stages; a killed
    or stopped run resumes (each stage's own checkpoints). Ctrl-C / SIGTERM: a training stage checkpoints its step,
    then the run exits 130 / 143. Stage logs: RUNS/<preset>/reproduce/logs/; timings and each stage's equivalent
    nnit command line (to rerun it by hand): RUNS/<preset>/reproduce/stages.json; each stage's provenance (git commit,
    resolved config and its hash, command, UTC start / end, wall time, torch threads, machine) beside its log, in
    RUNS/<preset>/reproduce/logs/<task>/<stage>.provenance.json. A finished stage whose recorded config differs from
    what the preset now resolves to is rerun (its old outputs moved aside).

    Evaluation: top-k of N chosen on the ranking episodes, then (robot tasks) re-evaluated on fresh episodes that played
    no part in the choice (the preset's report_episodes, from seed report_seed); the report shows the fresh numbers.

    Example: nnit reproduce --preset cpu            (hours on 2 cores; stage times: docs/reference/reproduce.md)

    Example: nnit reproduce --preset tiny           (minutes: plumbing only, numbers meaningless)

    Example: nnit reproduce --preset cpu --plan     (every stage's state and recorded wall time; runs nothing)

    Example: nnit reproduce --preset cpu --report-only --readme README.md   (README's results table from REPORT.json)

    Example: nnit reproduce --preset cpu --tasks PushCube-v1 --only nnit eval-nnit

    Example: nnit reproduce --preset cpu --carry results/reproduce-run   (commit it to continue on another machine)

    Example: nnit reproduce --preset cpu --tasks StackCubeEasy-v1 --adopt zoo/datasets/cpu/StackCubeEasy-v1

    Example: nnit reproduce --preset cpu --tasks PushCube-v1 --only eval-nnit joint memorization --rerun eval-nnit joint memorization
    """

    preset: PresetName = "cpu"
    """tiny / cpu / paper."""
    tasks: Optional[list[str]] = None
    """Only these tasks (default: the preset's)."""
    only: Optional[list[str]] = None
    """Only these stages (names or prefixes, e.g. ghn dataset eval-nnit)."""
    rerun: Optional[list[str]] = None
    """Run these stages again although finished (names or prefixes; e.g. after replacing a checkpoint by hand). Their old
    outputs are renamed to <dir>.old-<UTC time>, not deleted. Stages that read a rerun stage's outputs are rerun only
    when named too."""
    report: Optional[Path] = None
    """Where REPORT.md goes (default: REPORT.md for cpu / paper, RUNS/tiny/REPORT.md for tiny); figures go to
    docs/report/<preset>/ beside it (RUNS/tiny/report_figures for tiny). The default report is left as it is when it
    covers more timed stages than the runs here (e.g. on a fresh machine)."""
    runs: Path = Path("runs")
    """Root of the run directories."""
    data_dir: Optional[Path] = None
    """IDX folder for image tasks (FashionMNIST defaults to the Debian package)."""
    report_only: bool = False
    """Only rewrite the report from what exists."""
    plan: bool = False
    """Print every selected stage in order with its state (done / stale and why / to run) and the wall time its last
    finished run recorded, then the totals; run nothing, write nothing."""
    progress: bool = False
    """Show the stages' progress bars in their logs."""
    adopt: Optional[list[Path]] = None
    """Shipped GHN dataset folders (ghn.safetensors beside the dataset, e.g. zoo/datasets/cpu/StackCubeEasy-v1) to
    take as their task's ghn stage instead of training it, when the ensemble's training config is the preset's
    (else an error names the differences); the dataset stage then copies their networks where this ensemble paints
    them exactly (build-dataset --reuse). Recorded in the stage's provenance (adopted_from)."""
    carry: Optional[Path] = None
    """A folder to commit that carries the run to another machine (nnit.reproduce.carry): its files missing from
    RUNS/<preset> are copied in first (also with --plan and --report-only), and after every stage it is brought up to
    date with the finished stages' final outputs (sampling-only float32 checkpoints, datasets, evaluation JSON, logs,
    provenance) and an unfinished training stage's checkpoint."""
    readme: Optional[Path] = None
    """After writing the report, rewrite the results table of this README (between its results-table markers) from
    the report's REPORT.json (nnit.reproduce.readme; a test checks README.md against REPORT.json)."""

    def run(self) -> None:
        from nnit.reproduce.pipeline import REPRODUCE_PRESETS, Pipeline
        from nnit.reproduce.report import write_report
        from nnit.tasks.registry import get_task

        cfg = REPRODUCE_PRESETS[self.preset]
        names = [get_task(t).name for t in self.tasks] if self.tasks else None  # clear error for unknown tasks
        pipe = Pipeline(self.preset, cfg, root=self.runs, data_dir=self.data_dir, progress=self.progress, carry=self.carry)
        if self.carry is not None:
            from nnit.reproduce.carry import restore

            restore(pipe, self.carry)
        if self.adopt and not self.plan:
            from nnit.reproduce.adopt import adopt

            for folder in self.adopt:
                adopt(pipe, folder)
        if self.plan:
            from nnit.reproduce.pipeline import format_plan

            print(format_plan(pipe.plan(tasks=names, only=self.only)))
            return
        if not self.report_only:
            pipe.run(tasks=names, only=self.only, rerun=self.rerun)  # --tasks selects what runs; the report always covers every task of the preset
        report = self.report
        if report is None:
            report = Path("REPORT.md") if self.preset != "tiny" else self.runs / "tiny" / "REPORT.md"
            committed = report.with_suffix(".json")
            kept = _stage_count(json.loads(committed.read_text()).get("timings", {}) if committed.is_file() else {})
            have = _stage_count(pipe._timings())
            if have < kept:  # e.g. a fresh machine holding only some tasks' runs: do not shrink the committed report
                print(f"{report} reports {kept} timed stages, the runs under {pipe.root} only {have}: {report} left as it is "
                      f"(--report PATH writes this report elsewhere)")
                return
        figures = (Path(report).parent / "docs" / "report" / self.preset if self.preset != "tiny"
                   else self.runs / "tiny" / "report_figures")  # beside the report: REPORT.md -> docs/report/<preset>/
        path = write_report(pipe, Path(report), figures)
        print(f"wrote {path}")
        if self.readme is not None:
            from nnit.reproduce.readme import update_readme

            changed = update_readme(self.readme, json.loads(path.with_suffix(".json").read_text()))
            print(f"{self.readme}: results table {'rewritten' if changed else 'unchanged'} from {path.with_suffix('.json')}")


def _stage_count(timings: dict) -> int:
    """How many stages a ``{task: {stage: timing}}`` mapping (stages.json, a report's ``timings``) times."""
    return sum(len(stages) for stages in timings.values())
