"""Sampler speed vs quality: seconds to sample and assemble N networks, and (``--evaluate``) their top-k success.

For each task x architecture x setting (SAMPLER:STEPS[:TEMPERATURE]) this calls the Python API in-process,
``nnit.api.generate(checkpoint, task, arch, num, sampler=, steps=, temperature=, seed=)`` — its ``seconds``
are sampling plus assembly, the model already loaded — and with ``--evaluate``
``nnit.api.evaluate(task, result, episodes, seed, top_k=)``: the protocol's top-k-of-N success on the ranking
episodes, with a bootstrap interval over the N networks (``benchmarks/pool_size.py``'s ``bootstrap``).

    .venv/bin/python benchmarks/sampler_speed_quality.py --task PushCube-v1 --checkpoint zoo/nnit_PushCube-v1.safetensors \\
        --arch 32,32,16,64 --num 100 --settings ancestral:1000 dpm++2m:10 dpm++2m:20 dpm++2m-sde:20 unipc:10 \\
        --out results/benchmarks/sampler_speed_pushcube.json

    .venv/bin/python benchmarks/sampler_speed_quality.py --task PickCube-v1 --checkpoint zoo/nnit_PickCube-v1.safetensors \\
        --arch 32,16,16,16 --num 32 --evaluate --episodes 10 --eval-seed 7000 \\
        --settings ancestral:1000 dpm++2m-sde:20 dpm++2m:20 --out results/benchmarks/sampler_quality_pickcube.json \\
        --figure docs/figures/sampler_speed_quality_pickcube.png

A setting's temperature defaults to the cpu preset's for the samplers with fresh noise (ancestral, DDIM,
dpm++2m-sde) and to 1 for the ODE solvers (dpm++2m, unipc), which accept no other. Rows accumulate in
``--out``: a rerun skips the rows already there (same task, architecture, setting, N, seed, episodes), so a run
can be split or resumed; ``--figure`` plots every evaluated row of the file (success vs seconds, one line per
sampler), or seconds vs steps when nothing was evaluated. Each row records the load average around it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch

# benchmarks/_results.py and pool_size.py: a script's own folder is on sys.path
from _results import add_evaluation_args, write_results
from pool_size import bootstrap

from nnit import api
from nnit.config import EVAL
from nnit.diffusion.solvers import SOLVERS
from nnit.eval.protocol import top_k_indices

STOCHASTIC = {"ancestral", "ddim", *(m for m, s in SOLVERS.items() if s.stochastic)}
SAMPLERS = ("ancestral", "ddim", *SOLVERS)


def parse_setting(text: str, default_temperature: float) -> tuple[str, int, float]:
    """'dpm++2m-sde:20[:0.5]' -> ('dpm++2m-sde', 20, 0.5)."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or parts[0] not in SAMPLERS:
        raise argparse.ArgumentTypeError(f"setting {text!r} is not SAMPLER:STEPS[:TEMPERATURE] with SAMPLER one of {', '.join(SAMPLERS)}")
    tau = float(parts[2]) if len(parts) == 3 else (default_temperature if parts[0] in STOCHASTIC else 1.0)
    return parts[0], int(parts[1]), tau


def row_key(r: dict) -> tuple:
    return (r["task"], r["arch"], r["sampler"], r["steps"], r["temperature"], r["num"], r["seed"], r.get("episodes"),
            r.get("eval_seed"))


def warm_up(a: argparse.Namespace, arch: str, samplers: set[str]) -> dict:
    """One tiny generate per sampler (imports diffusers, fills caches), so the timed calls are steady-state."""
    out = {}
    for s in sorted(samplers):
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            api.generate(a.checkpoint, a.task, arch, 2, sampler=s, steps=2, temperature=0.5 if s in STOCHASTIC else 1.0)
        out[s] = time.perf_counter() - t
    return out


def measure(a: argparse.Namespace, arch: str, sampler: str, steps: int, tau: float, seed: int) -> dict:
    load0 = os.getloadavg()[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SupportWarning: unseen architectures are the point here
        times, gen = [], None
        for _ in range(a.repeats):
            gen = api.generate(a.checkpoint, a.task, arch, a.num, sampler=sampler, steps=steps, temperature=tau, seed=seed)
            times.append(gen.seconds)
    row = {"task": a.task, "arch": arch, "sampler": sampler, "steps": steps, "temperature": tau, "num": a.num, "seed": seed,
           "seconds": float(np.median(times)), "seconds_all": times, "threads": torch.get_num_threads(),
           "load_before": load0, "load_after": os.getloadavg()[0]}
    if a.evaluate:
        t = time.perf_counter()
        table = api.evaluate(a.task, gen, a.episodes, a.eval_seed, top_k=a.top_k, workers=a.workers,
                             report_episodes=a.report_episodes, report_seed=a.report_seed)
        res = next(iter(table.results.values()))
        top = table.top_k
        row.update(episodes=a.episodes, eval_seed=a.eval_seed, top_k=a.top_k, success=float(top.success_rate),
                   mean_return=float(top.mean), bootstrap=bootstrap(res, a.top_k),
                   all_success=float(np.mean(res.metrics["success_rate"])),
                   per_network={"success_rate": [float(x) for x in res.metrics["success_rate"]],
                                "mean_return": [float(x) for x in res.metrics["mean_return"]]},
                   eval_seconds=time.perf_counter() - t)
        if table.report_rows:
            fresh = table.report_rows[0]
            row.update(report_episodes=a.report_episodes, report_seed=table.report_seed,
                       report_success=float(fresh.success_rate), report_mean_return=float(fresh.mean))
    return row


def table(rows: list[dict]) -> str:
    head = "| task | arch | sampler | steps | temp | N | seconds | top-k success (bootstrap 5-95%) | top-k return | mean success of all N | load |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        q = (f"{100 * r['success']:.0f}% ({100 * r['bootstrap']['p05']:.0f}-{100 * r['bootstrap']['p95']:.0f}%)"
             if "success" in r else "-")
        ret = f"{r['mean_return']:.1f}" if "mean_return" in r else "-"
        allm = f"{100 * r['all_success']:.1f}%" if "all_success" in r else "-"
        lines.append(f"| {r['task']} | [{r['arch']}] | {r['sampler']} | {r['steps']} | {r['temperature']:g} | {r['num']} | "
                     f"{r['seconds']:.2f} | {q} | {ret} | {allm} | {r['load_before']:.1f} |")
    return "\n".join(lines)


def topk_replicates(row: dict, k: int, resamples: int = 2000, seed: int = 0) -> np.ndarray:
    """The row's top-k-of-N ranking success over ``resamples`` bootstrap resamples of its N networks."""
    ret = np.asarray(row["per_network"]["mean_return"])
    succ = np.asarray(row["per_network"]["success_rate"])
    rng = np.random.default_rng(seed)
    out = np.empty(resamples)
    for i in range(resamples):
        draw = rng.integers(0, len(ret), len(ret))
        out[i] = succ[draw][top_k_indices(ret[draw], k, succ[draw])].mean()
    return out


def setting_of(r: dict) -> str:
    return f"{r['sampler']}:{r['steps']}:{r['temperature']:g}"


def compare(rows: list[dict], reference: str) -> list[dict]:
    """Each evaluated setting against ``reference`` (SAMPLER:STEPS:TEMP), per task and over all tasks.

    Rows are paired by (task, architecture, sampling seed, ranking episodes); for each setting with paired rows:
    the mean over the pairs of the top-k ranking success, of the fresh-episode success of the kept networks
    and of the mean success of all N, the mean difference to the reference, and a 5-95% interval of the mean
    ranking difference (each row's N networks resampled with replacement, 2000 times).
    """
    ev = [r for r in rows if "success" in r]
    key = lambda r: (r["task"], r["arch"], r["seed"], r["episodes"], r["eval_seed"], r["num"])  # noqa: E731
    ref = {key(r): r for r in ev if setting_of(r) == reference}
    out = []
    for task in sorted({r["task"] for r in ev}) + ["all tasks"]:
        for setting in sorted({setting_of(r) for r in ev}, key=lambda x: (x != reference, x)):
            pairs = [(r, ref[key(r)]) for r in ev if setting_of(r) == setting and key(r) in ref
                     and task in (r["task"], "all tasks")]
            if not pairs:
                continue
            reps = [topk_replicates(c, c["top_k"]) - topk_replicates(b, b["top_k"]) for c, b in pairs]
            d = np.mean(reps, axis=0)
            fresh = [(c.get("report_success"), b.get("report_success")) for c, b in pairs]
            have_fresh = all(x is not None and y is not None for x, y in fresh)
            out.append({
                "task": task, "setting": setting, "reference": reference, "pairs": len(pairs),
                "success": float(np.mean([c["success"] for c, _ in pairs])),
                "diff": float(np.mean([c["success"] - b["success"] for c, b in pairs])),
                "diff_p05": float(np.percentile(d, 5)), "diff_p95": float(np.percentile(d, 95)),
                "fresh_success": float(np.mean([x for x, _ in fresh])) if have_fresh else None,
                "fresh_diff": float(np.mean([x - y for x, y in fresh])) if have_fresh else None,
                "all_success": float(np.mean([c["all_success"] for c, _ in pairs])),
                "seconds_median": float(np.median([c["seconds"] for c, _ in pairs])),
            })
    return out


def compare_table(summary: list[dict]) -> str:
    head = ("| task | setting (sampler:steps:temp) | pairs (arch x draw) | top-10 success, ranking eps | "
            "difference to reference (5-95%) | top-10 on fresh eps | difference, fresh | mean success of all N | "
            "median seconds for N |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for s in summary:
        is_ref = s["setting"] == s["reference"]
        diff = "reference" if is_ref else f"{100 * s['diff']:+.1f} ({100 * s['diff_p05']:+.1f} to {100 * s['diff_p95']:+.1f})"
        fr = "-" if s["fresh_success"] is None else f"{100 * s['fresh_success']:.1f}%"
        frd = "reference" if is_ref else ("-" if s["fresh_diff"] is None else f"{100 * s['fresh_diff']:+.1f}")
        lines.append(f"| {s['task']} | {s['setting']} | {s['pairs']} | {100 * s['success']:.1f}% | {diff} | {fr} | {frd} | "
                     f"{100 * s['all_success']:.1f}% | {s['seconds_median']:.1f} |")
    return "\n".join(lines)


def figure(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401

    evaluated = [r for r in rows if "success" in r]
    groups = sorted({(r["task"], r["arch"], r["num"]) for r in (evaluated or rows)})
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 4.2), squeeze=False)
    for ax, (task, arch, num) in zip(axes[0], groups):
        sel = [r for r in (evaluated or rows) if (r["task"], r["arch"], r["num"]) == (task, arch, num)]
        for s in sorted({(r["sampler"], r["temperature"], r["seed"]) for r in sel}):
            pts = sorted((r for r in sel if (r["sampler"], r["temperature"], r["seed"]) == s), key=lambda r: r["steps"])
            label = f"{s[0]} (T={s[1]:g}" + (f", seed {s[2]})" if len({r["seed"] for r in sel}) > 1 else ")")
            x = [r["seconds"] for r in pts]
            if evaluated:
                y = [100 * r["success"] for r in pts]
                err = [[100 * (r["success"] - r["bootstrap"]["p05"]) for r in pts],
                       [100 * (r["bootstrap"]["p95"] - r["success"]) for r in pts]]
                ax.errorbar(x, y, yerr=np.clip(err, 0, None), marker="o", capsize=3, label=label)
            else:
                y = [r["steps"] for r in pts]
                ax.plot(x, y, marker="o", label=label)
            for xi, yi, r in zip(x, y, pts):
                ax.annotate(str(r["steps"]), (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        _style(ax, f"seconds for {num} networks (sampling + assembly)",
               "top-10 success (%), bootstrap 5-95%" if evaluated else "steps", f"{task} [{arch}]")
    _save(fig, path)


def _style(ax, xlabel: str, ylabel: str, title: str) -> None:
    """Log-scale seconds on x, labels, grid and legend of one panel."""
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def summarize(a: argparse.Namespace) -> None:
    inputs = [f for f in a.summarize if f.resolve() != a.out.resolve()]  # a glob may catch the summary itself
    rows = []
    for f in inputs:
        data = json.loads(f.read_text())
        if data.get("args", {}).get("summarize") not in (None, "None"):
            print(f"skipping {f}: a summary, not measured rows")  # a glob may catch other summaries too
            continue
        rows += data["rows"]
    sampler, steps, tau = parse_setting(a.reference, a.temperature)
    ref = f"{sampler}:{steps}:{tau:g}"
    summary = compare(rows, ref)
    if not summary:
        raise SystemExit(f"no evaluated rows paired with the reference {ref} in {', '.join(map(str, a.summarize))}")
    write_results(a.out, a, summary)
    a.out.with_suffix(".md").write_text(compare_table(summary) + "\n")
    print(compare_table(summary))
    if a.figure is not None:
        compare_figure(rows, summary, a.figure)


def compare_figure(rows: list[dict], summary: list[dict], path: Path) -> None:
    """One panel per task: each setting's mean top-10 success (ranking episodes) over its (arch, draw) pairs
    against its median seconds, the per-pair values as faint dots; one colour per sampler and step count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in dict.fromkeys(s["task"] for s in summary) if t != "all tasks"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4), squeeze=False)
    colours = {}
    for ax, task in zip(axes[0], tasks):
        for s in (s for s in summary if s["task"] == task):
            c = colours.setdefault(s["setting"].rsplit(":", 1)[0], f"C{len(colours)}")  # one colour per sampler:steps
            sel = [r for r in rows if r["task"] == task and "success" in r and setting_of(r) == s["setting"]]
            ax.scatter([r["seconds"] for r in sel], [100 * r["success"] for r in sel], color=c, alpha=0.25, s=12)
            marker = "o" if s["setting"].endswith(":1") else "s"
            ax.scatter([s["seconds_median"]], [100 * s["success"]], color=c, marker=marker, s=60, edgecolor="k",
                       label=f"{s['setting']} (mean of {s['pairs']})")
        _style(ax, "seconds for 100 networks (sampling + assembly)", "top-10-of-100 success (%), ranking episodes", task)
    _save(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task")
    ap.add_argument("--checkpoint")
    ap.add_argument("--arch", nargs="+", help="hidden widths, e.g. 32,32,16,64 (several allowed)")
    ap.add_argument("--settings", nargs="+", default=["ancestral:1000", "ancestral:50", "ddim:20", "dpm++2m:10", "dpm++2m:20",
                                                      "dpm++2m-sde:10", "dpm++2m-sde:20", "unipc:10", "unipc:20"],
                    help="SAMPLER:STEPS[:TEMPERATURE]")
    ap.add_argument("--num", type=int, default=100)
    ap.add_argument("--seed", type=int, nargs="+", default=[0],
                    help="sampling seeds (each seed is another independent draw of N networks; several allowed)")
    ap.add_argument("--temperature", type=float, default=EVAL["cpu"].temperature,
                    help="default temperature of the samplers with fresh noise (the ODE solvers always get 1)")
    ap.add_argument("--repeats", type=int, default=1, help="timed generate calls per setting (the median is kept)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads while sampling (default: torch's)")
    ap.add_argument("--evaluate", action="store_true")
    add_evaluation_args(ap)
    ap.add_argument("--report-episodes", type=int, default=0,
                    help="re-run each setting's top-k networks on this many fresh episodes (the reported numbers)")
    ap.add_argument("--report-seed", type=int, default=None, help="seed of fresh episode 0 (must not overlap the ranking seeds)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--figure", type=Path, default=None)
    ap.add_argument("--figure-also", type=Path, nargs="*", default=[],
                    help="other result files of this script whose rows the figure also shows (one panel per task x arch x N)")
    ap.add_argument("--summarize", type=Path, nargs="+", default=None, metavar="FILE",
                    help="measure nothing: compare the evaluated rows of these result files with --reference and write "
                         "--out (JSON) and its .md table, and --figure (mean success vs seconds per setting and task)")
    ap.add_argument("--reference", default="ancestral:1000:0.5", help="SAMPLER:STEPS:TEMP the others are compared with")
    a = ap.parse_args()
    if a.summarize:
        summarize(a)
        return
    if not (a.task and a.checkpoint and a.arch):
        ap.error("--task, --checkpoint and --arch are required (unless --summarize)")
    if a.threads:
        torch.set_num_threads(a.threads)
    settings = [parse_setting(s, a.temperature) for s in a.settings]
    rows = json.loads(a.out.read_text())["rows"] if a.out.exists() else []
    done = {row_key(r) for r in rows}
    for seed, arch in itertools.product(a.seed, a.arch):  # draw by draw: a run cut short has whole draws
        todo = []
        for sampler, steps, tau in settings:
            key = (a.task, arch, sampler, steps, tau, a.num, seed, a.episodes if a.evaluate else None,
                   a.eval_seed if a.evaluate else None)
            if key not in done:
                todo.append((sampler, steps, tau))
        if not todo:
            continue
        warm = warm_up(a, arch, {s for s, _, _ in todo})
        print(f"[{a.task} {arch} seed {seed}] warm-up (first call, incl. imports) s: "
              + ", ".join(f"{k} {v:.1f}" for k, v in warm.items()), flush=True)
        for sampler, steps, tau in todo:
            row = measure(a, arch, sampler, steps, tau, seed)
            row["warm_up_seconds"] = warm[sampler]
            rows.append(row)
            print(table([row]).splitlines()[-1], flush=True)
            write_results(a.out, a, rows)  # after every row: a killed run keeps what it measured
    print(table(rows))
    a.out.with_suffix(".md").write_text(table(rows) + "\n")
    if a.figure is not None:
        figure(rows + [r for f in a.figure_also for r in json.loads(f.read_text())["rows"]], a.figure)


if __name__ == "__main__":
    main()
