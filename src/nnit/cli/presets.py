"""``nnit presets``: every stage's ``tiny`` / ``cpu`` / ``paper`` settings in one table.

Each stage owns its frozen config dataclass and its preset table (beside the code that reads it, as
DiT keeps its size presets beside the model); this command gathers them, resolved per task where a
stage changes settings by task, so a reader finds every scale in one place. ``docs/reference/presets.md``
is this command's ``--markdown`` output (a test keeps them equal).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, is_dataclass
from typing import Callable, Optional

PRESETS = ("tiny", "cpu", "paper")
TASKS = ("PushCube-v1", "PickCube-v1", "StackCubeEasy-v1", "FashionMNIST")


@dataclass(frozen=True)
class Stage:
    """One stage's preset table: where it lives and how to resolve it for (preset, task)."""

    name: str
    """Stage name, as in the pipeline table."""
    source: str
    """The module attribute(s) holding the presets."""
    resolve: Callable[[str, str], object]
    """(preset, task) -> the stage's config (a dataclass or a dict)."""


def stages() -> list[Stage]:
    """Every stage with presets, in pipeline order (imports each stage's module)."""
    from nnit.analysis.alignment import ALIGNMENT_PRESETS
    from nnit.baselines.d2nwg import D2NWG_PRESETS
    from nnit.baselines.sane import SANE_PRESETS
    from nnit.config import EVAL, TOKENS
    from nnit.diffusion.model import MODEL_PRESETS
    from nnit.diffusion.train import train_config
    from nnit.experts.ppo import ppo_config
    from nnit.ghn.dataset import DATASET_PRESETS
    from nnit.ghn.train import ghn_config
    from nnit.reproduce.pipeline import REPRODUCE_PRESETS

    return [
        Stage("tokens", "nnit.config.TOKENS", lambda p, t: TOKENS[p]),
        Stage("evaluation", "nnit.config.EVAL", lambda p, t: EVAL[p]),
        Stage("expert (PPO)", "nnit.experts.ppo.PPO_PRESETS, ppo_config()", ppo_config),
        Stage("GHN ensemble (DAgger)", "nnit.ghn.train.GHN_PRESETS, ghn_config()", ghn_config),
        Stage("dataset", "nnit.ghn.dataset.DATASET_PRESETS", lambda p, t: DATASET_PRESETS[p]),
        Stage("alignment study", "nnit.analysis.alignment.ALIGNMENT_PRESETS", lambda p, t: ALIGNMENT_PRESETS[p]),
        Stage("NNiT training", "nnit.diffusion.train.TRAIN_PRESETS, train_config()", train_config),
        Stage("NNiT model size", "nnit.diffusion.model.MODEL_PRESETS", lambda p, t: MODEL_PRESETS[train_config(p, t).model]),
        Stage("D2NWG", "nnit.baselines.d2nwg.D2NWG_PRESETS", lambda p, t: D2NWG_PRESETS[p]),
        Stage("SANE", "nnit.baselines.sane.SANE_PRESETS", lambda p, t: SANE_PRESETS[p]),
        Stage("nnit reproduce", "nnit.reproduce.pipeline.REPRODUCE_PRESETS", lambda p, t: REPRODUCE_PRESETS[p]),
    ]


def _flat(cfg: object, prefix: str = "") -> dict[str, object]:
    d = asdict(cfg) if is_dataclass(cfg) else dict(cfg)  # type: ignore[arg-type,call-overload]
    out: dict[str, object] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v and all(isinstance(x, str) for x in v):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10_000:
        return f"{v:,}"
    if isinstance(v, (tuple, list)):
        return "(" + ", ".join(_fmt(x) for x in v) + ")"
    return str(v)


def _cell(by_task: dict[str, object]) -> str:
    """One value, or the most common one with the tasks that differ in parentheses."""
    texts = {t: _fmt(v) for t, v in by_task.items()}
    values = list(texts.values())
    common = max(values, key=values.count)  # ties: the first task's value (deterministic)
    others = [f"{t}: {v}" for t, v in texts.items() if v != common]
    return common + (f" ({'; '.join(others)})" if others else "")


def preset_rows(stage: Stage, task: Optional[str] = None) -> list[tuple[str, list[str]]]:
    """(setting, [tiny, cpu, paper]) for every field of the stage's config; per-task values when ``task`` is None."""
    tasks = (task,) if task else TASKS
    flat = {p: {t: _flat(stage.resolve(p, t)) for t in tasks} for p in PRESETS}
    keys = list(dict.fromkeys(k for p in PRESETS for t in tasks for k in flat[p][t]))
    return [(k, [_cell({t: flat[p][t].get(k, "-") for t in tasks}) for p in PRESETS]) for k in keys]


def render(task: Optional[str] = None, markdown: bool = False, only: Optional[str] = None) -> str:
    """The whole table as text (or Markdown)."""
    lines: list[str] = []
    if markdown:
        lines += ["# Presets", "",
                  "Every stage takes `--preset`: `tiny` (tests and CI: seconds per stage, proves the plumbing), `cpu` "
                  "(the reference reproduction on a 2-core machine) and `paper` (the paper's hyper-parameters, for a GPU). "
                  "Each stage keeps its presets beside its config dataclass; this page is `nnit presets --markdown` "
                  "(regenerate it after changing a preset). Where a task changes a setting, the cell gives the usual value "
                  "and the tasks that differ. Field meanings: the config dataclasses' docstrings (`nnit <stage> --help`).", ""]
    for stage in stages():
        if only and only.lower() not in stage.name.lower():
            continue
        rows = preset_rows(stage, task)
        if markdown:
            lines += [f"## {stage.name}", "", f"`{stage.source}`", "", "| setting | tiny | cpu | paper |", "|---|---|---|---|"]
            lines += [f"| {k} | " + " | ".join(v.replace("|", "\\|") for v in vals) + " |" for k, vals in rows]
            lines.append("")
        else:
            width = max(len(k) for k, _ in rows)
            lines += [f"== {stage.name}  ({stage.source})", f"{'':<{width}}  " + "  ".join(f"{p:<24}" for p in PRESETS)]
            lines += [f"{k:<{width}}  " + "  ".join(f"{v:<24}" for v in vals) for k, vals in rows]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def presets_command(task: Optional[str] = None, stage: Optional[str] = None, markdown: bool = False) -> None:
    """Show every stage's tiny / cpu / paper settings in one table (per task where a stage changes them by task).

    Example: nnit presets

    Example: nnit presets --task PickCube-v1 --stage ghn

    Example: nnit presets --markdown > docs/reference/presets.md

    Args:
        task: Resolve per-task settings for this task only (default: every task, differences in parentheses).
        stage: Only the stages whose name contains this text (e.g. ghn, nnit, d2nwg).
        markdown: Markdown (docs/reference/presets.md) instead of plain text.
    """
    if task is not None:
        from nnit.tasks.registry import get_task

        task = get_task(task).name
    print(render(task, markdown, stage), end="")
