"""Width- and depth-agnostic generation: NNiT's networks for architectures held out of its training data, beside
the GHN ensemble's own networks for them and beside other models (e.g. the vocabulary-only zoo model).

For every architecture asked for (default: the dataset's held-out ones, each with its category -- `combination`,
`width`, `depth`, `width_and_depth` -- and its validation ones):

* ``ghn``: the GHN ensemble that built the dataset paints its K members' networks for the architecture
  (the reference: the GHN draws any width up to its canvas and any depth);
* each ``--model LABEL=CHECKPOINT`` at each ``--temperature``: ``--num`` networks from :func:`nnit.api.generate`
  (the support warnings it raises are recorded in the row);

all run on the same ``--episodes`` episodes from ``--eval-seed``; each row has the paper's top-k success and
return (ranked by return), a bootstrap of the top-k success over the networks (``pool_size.py``'s), the mean
success of all networks, the same k networks' success on ``--report-episodes`` fresh episodes from
``--report-seed`` (the ranking chose them, so only the fresh numbers are free of that selection; the GHN's top-k
of K and NNiT's top-k of N are compared on them), and the sampling and evaluation seconds.

    .venv/bin/python benchmarks/width_depth.py --task PushCube-v1 --dataset runs/cpu-varied/PushCube-v1/dataset \
        --ghn runs/cpu-varied/PushCube-v1/ghn/ghn.safetensors \
        --model value=runs/cpu-varied/PushCube-v1/nnit/nnit.safetensors --model zoo=zoo/nnit_PushCube-v1.safetensors \
        --temperature 1 0.5 --out results/width_depth/PushCube-v1.json --markdown results/width_depth/PushCube-v1.md \
        --figure docs/figures/width_depth_pushcube.png

Rows already in ``--out`` (same model, architecture, sampler, steps, temperature, N, seed, episodes) are kept and
not redone, so an interrupted run resumes and several models accumulate in one file. ``--figure-only`` redraws
the table and figure from ``--out``.
"""

from __future__ import annotations

import argparse
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
from nnit.tasks.registry import get_task
from nnit.weights.architecture import Architecture, hidden_label

CATEGORY_ORDER = ("validation", "combination", "width", "depth", "width_and_depth", "train", "paper_held_out", "unlisted")


def row_key(r: dict) -> tuple:
    return (r["label"], tuple(r["hidden"]), r.get("sampler"), r.get("steps"), r.get("temperature"), r["num"],
            r.get("seed"), r["episodes"], r["eval_seed"], r["top_k"], r.get("report_episodes", 0))


def architectures(dataset: Path, roles: list[str], extra: list[str], extra_category: str) -> list[tuple[tuple[int, ...], str]]:
    """(hidden, category) for the dataset's architectures of ``roles`` (a held-out one by its category), then ``extra``
    (its role in the dataset when listed there, else ``extra_category``)."""
    index = json.loads((dataset / "index.json").read_text())
    out = []
    for rec in index["architectures"].values():
        if rec["role"] in roles:
            out.append((tuple(rec["hidden"]), rec.get("category", rec["role"])))
    out.sort(key=arch_order)
    for s in extra:
        h = tuple(int(w) for w in s.split(","))
        rec = index["architectures"].get(",".join(map(str, h)))
        out.append((h, rec.get("category", rec["role"]) if rec else extra_category))
    return out


def summarize(table, top_k: int) -> dict:
    """The top-k row on the ranking episodes (with its bootstrap over networks) and, with fresh episodes, the same
    k networks' success and return on them."""
    merged = table.merged
    top = table.rows[0]
    out = {"success": float(top.success_rate), "mean_return": float(top.mean), "bootstrap": bootstrap(merged, top_k),
           "all_success": float(np.mean(merged.metrics["success_rate"]))}
    if table.report_rows:
        fresh = table.report_rows[0]
        out.update(fresh_success=float(fresh.success_rate), fresh_return=float(fresh.mean),
                   report_episodes=table.report_episodes, report_seed=table.report_seed)
    return out


def measure_ghn(a: argparse.Namespace, model, task: str, hidden: tuple[int, ...], category: str) -> dict:
    spec = get_task(task, control_mode=a.control_mode)
    arch = Architecture(spec.input_dim, hidden, spec.output_dim)
    t = time.perf_counter()
    with torch.no_grad():
        ws = model.generate([arch])[0].detach()
    seconds = time.perf_counter() - t
    t = time.perf_counter()
    table = api.evaluate(spec, ws, a.episodes, a.eval_seed, top_k=a.top_k, workers=a.workers, control_mode=a.control_mode,
                         report_episodes=a.report_episodes, report_seed=a.report_seed)
    return {"task": task, "label": "ghn", "checkpoint": str(a.ghn), "hidden": list(hidden), "depth": len(hidden),
            "category": category, "num": ws.n, "seconds": seconds, "episodes": a.episodes, "eval_seed": a.eval_seed,
            "top_k": a.top_k, "support_warnings": [], **summarize(table, a.top_k), "eval_seconds": time.perf_counter() - t}


def measure_model(a: argparse.Namespace, label: str, ckpt: str, task: str, hidden: tuple[int, ...], category: str,
                  tau: float) -> dict:
    load0 = os.getloadavg()[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", api.SupportWarning)  # recorded in the row instead
        gen = api.generate(ckpt, task, hidden, a.num, sampler=a.sampler, steps=a.steps, temperature=tau, seed=a.seed)
    t = time.perf_counter()
    table = api.evaluate(task, gen, a.episodes, a.eval_seed, top_k=a.top_k, workers=a.workers,
                         report_episodes=a.report_episodes, report_seed=a.report_seed)
    return {"task": task, "label": label, "checkpoint": ckpt, "hidden": list(hidden), "depth": len(hidden),
            "category": category, "sampler": a.sampler, "steps": a.steps, "temperature": tau, "num": a.num,
            "seed": a.seed, "seconds": gen.seconds, "threads": torch.get_num_threads(), "load_before": load0,
            "episodes": a.episodes, "eval_seed": a.eval_seed, "top_k": a.top_k, "arch_encoding": gen.arch_encoding,
            "support_warnings": list(gen.support_warnings), **summarize(table, a.top_k),
            "eval_seconds": time.perf_counter() - t}


def column(r: dict) -> str:
    return "ghn" if r["label"] == "ghn" else f"{r['label']} T={r['temperature']:g}"


def arch_order(x: tuple[tuple[int, ...], str]) -> tuple:
    """Sort key of (hidden, category): by category (:data:`CATEGORY_ORDER`), then depth, then widths."""
    return (CATEGORY_ORDER.index(x[1]) if x[1] in CATEGORY_ORDER else 99, len(x[0]), x[0])


def layout(rows: list[dict]) -> tuple[list[str], dict, list[tuple[tuple[int, ...], str]]]:
    """The columns (GHN first), the rows by (hidden, column), and the (hidden, category) pairs in order."""
    cols = sorted({column(r) for r in rows}, key=lambda c: (c != "ghn", c))
    by = {(tuple(r["hidden"]), column(r)): r for r in rows}
    return cols, by, sorted({(tuple(r["hidden"]), r["category"]) for r in rows}, key=arch_order)


def table(rows: list[dict]) -> str:
    """One line per architecture, one column per model: top-k success on the ranking episodes (bootstrap 5-95% over
    networks) / on the fresh episodes, and [the ratio to the GHN's networks] (on the fresh episodes when both have
    them); then the mean per category."""
    cols, by, archs = layout(rows)
    ghn_k = next((r["num"] for r in rows if r["label"] == "ghn"), None)
    n = next((r["num"] for r in rows if r["label"] != "ghn"), None)
    k = rows[0]["top_k"] if rows else 10
    head = (f"| category | architecture | " + " | ".join(
        f"{c} (top-{k} of {ghn_k if c == 'ghn' else n})" for c in cols) + " |")
    lines = [head, "|" + "---|" * (2 + len(cols))]
    for h, cat in archs:
        cells = []
        for c in cols:
            r = by.get((h, c))
            if r is None:
                cells.append("-")
                continue
            b = r["bootstrap"]
            cell = f"{100 * r['success']:.0f}% ({100 * b['p05']:.0f}-{100 * b['p95']:.0f})"
            if "fresh_success" in r:
                cell += f" / {100 * r['fresh_success']:.0f}%"
            g = by.get((h, "ghn"))
            key = "fresh_success" if "fresh_success" in r and g is not None and "fresh_success" in g else "success"
            if c != "ghn" and g is not None and g[key] > 0:
                cell += f" [{r[key] / g[key]:.2f}x]"
            cells.append(cell)
        lines.append(f"| {cat} | [{','.join(map(str, h))}] | " + " | ".join(cells) + " |")
    # per category: mean success of each column
    lines += ["", "| category | architectures | " + " | ".join(cols) + " |", "|" + "---|" * (2 + len(cols))]
    for cat in [c for c in CATEGORY_ORDER if any(x[1] == c for x in archs)]:
        hs = [h for h, c2 in archs if c2 == cat]
        cells = []
        for c in cols:
            vals = [by[(h, c)]["success"] for h in hs if (h, c) in by]
            fresh = [by[(h, c)]["fresh_success"] for h in hs if (h, c) in by and "fresh_success" in by[(h, c)]]
            cell = f"{100 * np.mean(vals):.0f}%" + (f" / {100 * np.mean(fresh):.0f}%" if fresh and len(fresh) == len(vals) else "")
            cells.append(cell + (f" ({len(vals)})" if len(vals) != len(hs) else "") if vals else "-")
        lines.append(f"| {cat} | {len(hs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(rows: list[dict], path: Path, title: str) -> None:
    """Success against depth (left: mean over the architectures of each depth) and per architecture (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols, by, archs = layout(rows)
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(15, 4.8), gridspec_kw={"width_ratios": [1, 3]})
    depths = sorted({len(h) for h, _ in archs})
    for c in cols:
        ys = [np.mean([by[(h, c)]["success"] for h, _ in archs if len(h) == d and (h, c) in by] or [np.nan]) for d in depths]
        ax0.plot(depths, [100 * y for y in ys], "o-", label=c)
    ax0.set_xlabel("hidden layers (depth)")
    ax0.set_ylabel("top-10 success (%)")
    ax0.set_xticks(depths)
    ax0.set_ylim(-3, 103)
    ax0.grid(alpha=0.3)
    ax0.set_title("mean over held-out architectures")
    width = 0.8 / max(1, len(cols))
    x = np.arange(len(archs))
    for i, c in enumerate(cols):
        ys = [100 * by[(h, c)]["success"] if (h, c) in by else np.nan for h, _ in archs]
        lo = [100 * (by[(h, c)]["success"] - by[(h, c)]["bootstrap"]["p05"]) if (h, c) in by else 0 for h, _ in archs]
        hi = [100 * (by[(h, c)]["bootstrap"]["p95"] - by[(h, c)]["success"]) if (h, c) in by else 0 for h, _ in archs]
        ax1.bar(x + (i - (len(cols) - 1) / 2) * width, ys, width, yerr=[np.maximum(lo, 0), np.maximum(hi, 0)],
                capsize=1.5, label=c)
    ax1.set_xticks(x)
    ax1.set_xticklabels([f"{cat[:5]}\n" + ",".join(map(str, h)) for h, cat in archs], rotation=90, fontsize=7)
    ax1.set_ylim(0, 105)
    ax1.grid(axis="y", alpha=0.3)
    ax1.set_title("per architecture (category, hidden widths); bars: bootstrap 5-95% over networks")
    fig.suptitle(title)
    fig.legend(*ax1.get_legend_handles_labels(), loc="lower center", ncol=len(cols), fontsize=8)  # below both panels
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", required=True)
    ap.add_argument("--dataset", type=Path, required=True, help="the dataset (its index.json lists roles and categories)")
    ap.add_argument("--ghn", type=Path, default=None, help="the GHN ensemble that built the dataset (the reference rows)")
    ap.add_argument("--model", action="append", default=[], metavar="LABEL=CHECKPOINT")
    ap.add_argument("--roles", nargs="+", default=["held_out", "validation"])
    ap.add_argument("--arch", nargs="*", default=[], help="further architectures (hidden widths, e.g. 24,24,24,24)")
    ap.add_argument("--arch-category", default="unlisted", choices=CATEGORY_ORDER,
                    help="the category of --arch architectures the dataset does not list (e.g. paper_held_out)")
    ap.add_argument("--sampler", default="dpm++2m-sde")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--temperature", type=float, nargs="+", default=[1.0])
    ap.add_argument("--num", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0, help="sampling seed")
    ap.add_argument("--control-mode", default=None, help="the GHN's controller (default: the task's)")
    add_evaluation_args(ap)
    ap.add_argument("--report-episodes", type=int, default=20,
                    help="fresh episodes on which the chosen top-k networks are re-evaluated (0: none)")
    ap.add_argument("--report-seed", type=int, default=9000, help="seed of the first fresh episode")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--markdown", type=Path, default=None)
    ap.add_argument("--figure", type=Path, default=None)
    ap.add_argument("--figure-only", action="store_true", help="only redraw --markdown / --figure from --out")
    a = ap.parse_args()
    rows = json.loads(a.out.read_text())["rows"] if a.out.exists() else []
    if not a.figure_only:
        done = {row_key(r) for r in rows}
        ghn_model = None
        if a.ghn is not None:
            from nnit.ghn.train import load_ghn_ensemble

            ghn_model, conf = load_ghn_ensemble(a.ghn)
            a.control_mode = a.control_mode or conf.get("control_mode")
        for hidden, cat in architectures(a.dataset, a.roles, a.arch, a.arch_category):
            todo = []
            if ghn_model is not None:
                todo.append(("ghn", None, None))
            todo += [(lab, ck, tau) for lab, ck in (m.split("=", 1) for m in a.model) for tau in a.temperature]
            for label, ckpt, tau in todo:
                probe = {"label": label, "hidden": hidden, "num": len(ghn_model.seeds) if label == "ghn" else a.num,
                         "episodes": a.episodes, "eval_seed": a.eval_seed, "top_k": a.top_k,
                         "report_episodes": a.report_episodes}
                if label != "ghn":
                    probe.update(sampler=a.sampler, steps=a.steps, temperature=tau, seed=a.seed)
                if row_key(probe) in done:
                    continue
                row = (measure_ghn(a, ghn_model, a.task, hidden, cat) if label == "ghn"
                       else measure_model(a, label, ckpt, a.task, hidden, cat, tau))
                rows.append(row)
                done.add(row_key(row))
                warn = f"  ({'; '.join(row['support_warnings'])})" if row["support_warnings"] else ""
                fresh = f" fresh {100 * row['fresh_success']:5.1f}%" if "fresh_success" in row else ""
                print(f"{cat:16s} [{hidden_label(hidden)}] {column(row):14s} top-{a.top_k} {100 * row['success']:5.1f}%{fresh} "
                      f"all {100 * row['all_success']:5.1f}%  sample {row['seconds']:.1f}s eval {row['eval_seconds']:.0f}s"
                      f"{warn}", flush=True)
                write_results(a.out, a, rows)
    print(table(rows))
    if a.markdown:
        a.markdown.parent.mkdir(parents=True, exist_ok=True)
        a.markdown.write_text(table(rows) + "\n")
        print(f"wrote {a.markdown}")
    if a.figure and rows:
        figure(rows, a.figure, f"{a.task}: held-out widths and depths (top-{a.top_k}, {a.episodes} episodes from seed {a.eval_seed})")


if __name__ == "__main__":
    main()
