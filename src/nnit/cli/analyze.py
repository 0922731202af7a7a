"""``nnit analyze alignment``: GHN vs SGD structural alignment, diversity and heatmaps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import tyro

from nnit.analysis.alignment import ALIGNMENT_PRESETS
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
        preset: tiny / cpu / paper: SGD steps, networks per set, evaluation episodes.
        networks: Networks per set (default: the preset's, capped by the ensemble size).
        out: Output directory (default: beside the checkpoint, in ../alignment).
        evaluate: Also evaluate both sets on the task (Table 1's performance columns).
        seed: First SGD seed (network i uses seed + i).
        workers: Simulator workers for the evaluation.
        data_dir: IDX folder for image tasks.
    """
    import torch

    from nnit.analysis.alignment import SGDConfig, alignment_score, diversity, local_correlation, plot_heatmaps, train_sgd_set
    from nnit.checkpoint import load_checkpoint
    from nnit.ghn.train import load_ghn_ensemble
    from nnit.tasks.registry import get_task
    from nnit.weights.architecture import Architecture

    p = ALIGNMENT_PRESETS[preset]
    model, conf = load_ghn_ensemble(ghn)
    task = get_task(conf["task"], control_mode=conf.get("control_mode"))
    a = Architecture.parse(arch, task.input_dim, task.output_dim)
    n = min(networks or p["networks"], model.k)
    out = out or Path(ghn).parent.parent / "alignment"
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        ghn_set = model.generate([a])[0][torch.arange(n)].detach()
    if task.kind == "robot":
        extra = load_checkpoint(ghn).extra
        x, y, loss = extra["buffer.obs"], extra["buffer.act"], "mse"
    else:
        from nnit.tasks.images import load_split

        x, y = load_split(task, "fit", data_dir=data_dir)
        loss = "ce"
    sgd_set = train_sgd_set(a, [seed + i for i in range(n)], x.float(), y, loss, SGDConfig(steps=p["sgd_steps"]), progress=progress)
    sets = {"GHN": ghn_set, "SGD": sgd_set}
    report = {"task": task.name, "arch": a.to_dict(), "networks_per_set": n, "sgd_steps": p["sgd_steps"], "sets": {}}
    for name, ws in sets.items():
        report["sets"][name] = {"alignment_score": alignment_score(ws), "local_correlation": local_correlation(ws), **diversity(ws)}
    if evaluate:
        from nnit.eval.harness import evaluate as run_eval

        for name, ws in sets.items():
            res = run_eval(task, ws, episodes=p["episodes"], num_workers=workers, data_dir=data_dir, progress=progress)
            report["sets"][name].update({k: float(v.mean()) for k, v in res.metrics.items() if k != "std_return"})
    fig = plot_heatmaps(sets, out / "alignment_heatmaps.png", title=f"{task.name} {a}: |W| per layer, GHN vs SGD")
    report["figure"] = str(fig)
    (out / "alignment.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report["sets"], indent=1))
    print(f"wrote {out / 'alignment.json'} and {fig}")
