"""NNiT training time vs held-out success: compare models trained with different step budgets on the same rows.

Reads the rows ``benchmarks/sampler_speed_quality.py --evaluate`` wrote for each model (``benchmarks/training_time.sh``
produces them) and pairs them across models by (task, architecture, sampling seed, ranking episodes, N, setting).
For every model, over the rows all models share: the mean top-10-of-N success on the ranking episodes and on the
fresh episodes, the mean difference to the reference with a 5-95% interval (each row's N networks
resampled with replacement), and the training time. Writes JSON + a Markdown table, and a figure of success against
training hours.

    .venv/bin/python benchmarks/training_time.py --setting ancestral:100:0.5 --reference zoo-60k \\
        --model zoo-60k 60000 runs/cpu/StackCubeEasy-v1/nnit \\
            results/benchmarks/sampler_table4_StackCubeEasy-v1.json results/benchmarks/training_time_StackCubeEasy-v1_zoo.json \\
        --model 30k 30000 runs/half/StackCubeEasy-v1/nnit results/benchmarks/training_time_StackCubeEasy-v1_30000.json \\
        --seconds-per-step-from runs/half/StackCubeEasy-v1/nnit \\
        --out results/benchmarks/training_time_StackCubeEasy-v1_summary.json --figure docs/figures/training_time.png

Training hours: the run's recorded wall clock (``wall_seconds`` in its checkpoint metadata) when the run directory
holds a checkpoint with it; otherwise (a released model whose run is gone, or RUN given as ``-`` for a run whose wall
clock does not compare, e.g. one trained with one thread beside another run) its steps times the seconds per step of
``--seconds-per-step-from``'s run, or ``--seconds-per-step``, marked "estimated". Recipes that change only the loss
or the conditioning cost the same per step, so their hours are their steps at the reference recipe's rate.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from _results import write_results
from sampler_speed_quality import setting_of, topk_replicates


def run_seconds(run: Path) -> tuple[float | None, int | None]:
    """(wall seconds, step) recorded in a run directory's checkpoint, or (None, None)."""
    ckpt = run / "checkpoint.safetensors" if run.is_dir() else run
    if not ckpt.exists():
        return None, None
    from safetensors import safe_open

    meta = safe_open(str(ckpt), "pt").metadata()
    extra = json.loads(meta.get("meta", "{}"))
    wall = extra.get("wall_seconds")
    return (float(wall) if wall is not None else None), int(meta.get("step", 0)) or None


def compare_models(models: list[dict], reference: str, setting: str) -> list[dict]:
    key = lambda r: (r["task"], r["arch"], r["seed"], r["episodes"], r["eval_seed"], r["num"])  # noqa: E731
    rows = {m["label"]: {key(r): r for r in m["rows"] if "success" in r and setting_of(r) == setting} for m in models}
    ref = rows[reference]
    shared = sorted(set.intersection(*(set(r) for r in rows.values())))  # the rows every model has
    if not shared:
        raise SystemExit(f"no {setting} rows that every model shares")
    out = []
    for m in models:
        mine = [rows[m["label"]][k] for k in shared]
        base = [ref[k] for k in shared]
        reps = np.mean([topk_replicates(r, r["top_k"]) for r in mine], axis=0)
        diff = np.mean([topk_replicates(r, r["top_k"]) - topk_replicates(b, b["top_k"]) for r, b in zip(mine, base)], axis=0)
        out.append({
            "model": m["label"], "steps": m["steps"], "hours": m["hours"], "hours_estimated": m["hours_estimated"],
            "reference": reference, "setting": setting, "rows": len(shared),
            "architectures": sorted({k[1] for k in shared}), "seeds": sorted({k[2] for k in shared}),
            "success": float(np.mean([r["success"] for r in mine])),
            "success_p05": float(np.percentile(reps, 5)), "success_p95": float(np.percentile(reps, 95)),
            "diff": float(np.mean([r["success"] - b["success"] for r, b in zip(mine, base)])),
            "diff_p05": float(np.percentile(diff, 5)), "diff_p95": float(np.percentile(diff, 95)),
            "fresh_success": float(np.mean([r["report_success"] for r in mine])),
            "fresh_diff": float(np.mean([r["report_success"] - b["report_success"] for r, b in zip(mine, base)])),
            "all_success": float(np.mean([r["all_success"] for r in mine])),
            "per_row": [{"arch": k[1], "seed": k[2], "success": r["success"], "reference": b["success"],
                         "fresh": r["report_success"], "fresh_reference": b["report_success"]}
                        for k, r, b in zip(shared, mine, base)],
        })
    return out


def markdown(summary: list[dict]) -> str:
    head = ("| model | steps | training hours | rows (arch x draw) | top-10 success, ranking eps (5-95%) | "
            "difference to reference (5-95%) | top-10 on fresh eps | difference, fresh | mean success of all N |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for s in summary:
        is_ref = s["model"] == s["reference"]
        hours = f"{s['hours']:.2f}" + (" (estimated)" if s["hours_estimated"] else "") if s["hours"] is not None else "-"
        diff = "reference" if is_ref else f"{100 * s['diff']:+.1f} ({100 * s['diff_p05']:+.1f} to {100 * s['diff_p95']:+.1f})"
        frd = "reference" if is_ref else f"{100 * s['fresh_diff']:+.1f}"
        lines.append(f"| {s['model']} | {s['steps']:,} | {hours} | {s['rows']} | {100 * s['success']:.1f}% "
                     f"({100 * s['success_p05']:.1f}-{100 * s['success_p95']:.1f}%) | {diff} | {100 * s['fresh_success']:.1f}% | "
                     f"{frd} | {100 * s['all_success']:.1f}% |")
    return "\n".join(lines)


def figure(summary: list[dict], task: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    pts = sorted((s for s in summary if s["hours"] is not None), key=lambda s: s["hours"])
    x = [s["hours"] for s in pts]
    y = [100 * s["success"] for s in pts]
    err = np.clip([[100 * (s["success"] - s["success_p05"]) for s in pts], [100 * (s["success_p95"] - s["success"]) for s in pts]], 0, None)
    # one point per model: different schedules, not one curve
    ax.errorbar(x, y, yerr=err, marker="o", ls="none", capsize=3, label="top-10 of 100, ranking episodes")
    ax.plot(x, [100 * s["fresh_success"] for s in pts], marker="s", ls="none", label="same networks, fresh episodes")
    for s, xi, yi in zip(pts, x, y):
        ax.annotate(f"{s['model']}" + (" (est.)" if s["hours_estimated"] else ""), (xi, yi), textcoords="offset points",
                    xytext=(4, -12), fontsize=7)
    ax.set_xlabel("NNiT training time on 2 CPU threads (hours)")
    ax.set_ylabel("held-out success (%), mean over rows")
    ax.set_title(f"{task}: success vs training time ({pts[0]['setting'] if pts else ''})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", nargs="+", action="append", required=True, metavar="LABEL STEPS RUN FILE",
                    help="a model: its label, training steps, run directory (or checkpoint) and the row files")
    ap.add_argument("--reference", required=True, help="label of the model the others are compared with")
    ap.add_argument("--setting", default="ancestral:100:0.5", help="SAMPLER:STEPS:TEMP of the rows compared")
    ap.add_argument("--seconds-per-step-from", type=Path, default=None,
                    help="a run whose recorded wall clock / step estimates the hours of runs that recorded none")
    ap.add_argument("--seconds-per-step", type=float, default=None,
                    help="seconds per training step (2 threads) for runs that recorded no comparable wall clock")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--figure", type=Path, default=None)
    a = ap.parse_args()
    per_step = a.seconds_per_step
    if a.seconds_per_step_from is not None:
        wall, step = run_seconds(a.seconds_per_step_from)
        if wall is None or not step:
            raise SystemExit(f"{a.seconds_per_step_from} records no wall clock")
        per_step = wall / step
    models = []
    for spec in a.model:
        if len(spec) < 4:
            raise SystemExit(f"--model {' '.join(spec)}: expected LABEL STEPS RUN FILE [FILE ...]")
        label, steps, run, *files = spec
        wall, _ = (None, None) if run == "-" else run_seconds(Path(run))
        estimated = wall is None
        if wall is None and per_step is not None:
            wall = int(steps) * per_step
        rows = [r for f in files for r in json.loads(Path(f).read_text())["rows"]]
        models.append({"label": label, "steps": int(steps), "hours": None if wall is None else wall / 3600,
                       "hours_estimated": estimated, "rows": rows})
    if a.reference not in {m["label"] for m in models}:
        raise SystemExit(f"--reference {a.reference} is not one of the --model labels")
    summary = compare_models(models, a.reference, a.setting)
    write_results(a.out, a, summary)
    a.out.with_suffix(".md").write_text(markdown(summary) + "\n")
    print(markdown(summary))
    if a.figure is not None:
        tasks = {r["task"] for m in models for r in m["rows"]}
        figure(summary, ", ".join(sorted(tasks)), a.figure)


if __name__ == "__main__":
    main()
