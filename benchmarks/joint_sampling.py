"""Joint synthesis p(a, w): does it sample the architecture distribution, and do its networks work?

For each checkpoint and temperature, this script draws ``--num`` joint samples with :func:`nnit.api.generate`
(``arch=None``: what ``nnit generate`` without ``--arch`` runs) and reports

* the valid fraction, the number of distinct architectures, the novel fraction (outside the training
  architectures) and the total-variation distance between the sampled architecture frequencies and the
  training frequencies (the networks per architecture the model was trained on);
* the same statistics for drawing ``--num`` architectures from the training set itself (2,000 repeats:
  mean and 5-95% range), the yardstick joint sampling should match;
* with ``--evaluate``: every network run for ``--episodes`` episodes from ``--eval-seed`` and the paper's
  top-10 (ranked by return) success and return of all ``--num`` networks together, with a bootstrap of the
  top-10 success over the networks (``pool_size.py``'s).

    .venv/bin/python benchmarks/joint_sampling.py --task PickCube-v1 --dataset zoo/datasets/cpu/PickCube-v1 \
        --checkpoint zoo/nnit_PickCube-v1.safetensors --label zoo --sampler ancestral --steps 1000 \
        --temperature 1 0.5 --evaluate --out results/benchmarks/joint_pickcube.json

Rows already in ``--out`` (same label, sampler, steps, temperature, seed, evaluation) are kept and not redone,
so several checkpoints / settings accumulate in one file; ``--markdown`` writes the table beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch

# benchmarks/_results.py and pool_size.py: a script's own folder is on sys.path
from _results import add_evaluation_args, write_results
from pool_size import bootstrap

from nnit import api
from nnit.diffusion.sample import total_variation, training_draw_reference
from nnit.weights.architecture import hidden_label


def row_key(r: dict) -> tuple:
    return (r["label"], r["sampler"], r["steps"], r["temperature"], r["seed"], r.get("episodes"), r.get("eval_seed"))


def measure(a: argparse.Namespace, tau: float) -> dict:
    load0 = os.getloadavg()[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SupportWarning for novel architectures: counted below instead
        gen = api.generate(a.checkpoint, a.task, None, a.num, sampler=a.sampler, steps=a.steps, temperature=tau,
                           depth=a.depth, seed=a.seed)
    j = gen.joint or {}
    counts = Counter({hidden_label(h): ws.n for h, ws in gen.sets.items()})
    if a.dataset is not None:  # the reference frequencies: the dataset's train networks per architecture
        index = json.loads((a.dataset / "index.json").read_text())
        freqs = {tuple(r["hidden"]): float(r["num_kept"]) for r in index["architectures"].values()
                 if r["role"] == "train" and r["num_kept"]}
        sampled = [h for h, ws in gen.sets.items() for _ in range(ws.n)]
        j = {**j, "tv_to_train": total_variation(sampled, freqs), "train_reference": training_draw_reference(freqs, len(sampled)),
             "reference_freqs": str(a.dataset)}
    row = {"task": a.task, "label": a.label, "checkpoint": str(a.checkpoint), "sampler": a.sampler, "steps": a.steps,
           "temperature": tau, "num": a.num, "depth": a.depth, "seed": a.seed, "seconds": gen.seconds,
           "threads": torch.get_num_threads(), "load_before": load0, **{k: v for k, v in j.items()},
           "sampled_counts": dict(counts.most_common())}
    if a.evaluate:
        t = time.perf_counter()
        table = api.evaluate(a.task, gen, a.episodes, a.eval_seed, top_k=a.top_k, workers=a.workers)
        merged = table.merged
        top = table.joint_row
        row.update(episodes=a.episodes, eval_seed=a.eval_seed, top_k=a.top_k, success=float(top.success_rate),
                   mean_return=float(top.mean), bootstrap=bootstrap(merged, a.top_k),
                   all_success=float(np.mean(merged.metrics["success_rate"])), eval_seconds=time.perf_counter() - t)
    return row


def table(rows: list[dict]) -> str:
    head = ("| task | model | sampler | steps | temp | N | valid | distinct archs (training draw) | novel | "
            "TV to training freqs (training draw) | top-10 success (bootstrap 5-95%) | top-10 return | seconds |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        ref = r.get("train_reference", {})
        dref = ref.get("distinct_archs", {})
        tref = ref.get("tv_to_train", {})
        distinct = f"{r['distinct_archs']}" + (f" ({dref['mean']:.1f}, {dref['p05']:.0f}-{dref['p95']:.0f})" if dref else "")
        tv = (f"{r['tv_to_train']:.2f} ({tref['mean']:.2f}, {tref['p05']:.2f}-{tref['p95']:.2f})"
              if "tv_to_train" in r else "-")
        q = (f"{100 * r['success']:.0f}% ({100 * r['bootstrap']['p05']:.0f}-{100 * r['bootstrap']['p95']:.0f}%)"
             if "success" in r else "-")
        ret = f"{r['mean_return']:.1f}" if "mean_return" in r else "-"
        lines.append(f"| {r['task']} | {r['label']} ({r.get('schedule', '?')}) | {r['sampler']} | {r['steps']} | "
                     f"{r['temperature']:g} | {r['num']} | {r['valid']} | {distinct} | {r['novel']} | {tv} | {q} | {ret} | "
                     f"{r['seconds']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--label", required=True, help="the model's name in the table")
    ap.add_argument("--sampler", default="ancestral")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--temperature", type=float, nargs="+", default=[1.0])
    ap.add_argument("--num", type=int, default=100)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--dataset", type=Path, default=None,
                    help="the GHN dataset the model was trained on: its train networks per architecture are the reference "
                         "frequencies (default: the checkpoint's own record of them)")
    ap.add_argument("--seed", type=int, default=0, help="sampling seed")
    ap.add_argument("--evaluate", action="store_true")
    add_evaluation_args(ap)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--markdown", type=Path, default=None)
    a = ap.parse_args()
    rows = json.loads(a.out.read_text())["rows"] if a.out.exists() else []
    done = {row_key(r) for r in rows}
    for tau in a.temperature:
        probe = {"label": a.label, "sampler": a.sampler, "steps": a.steps, "temperature": tau, "seed": a.seed,
                 "episodes": a.episodes if a.evaluate else None, "eval_seed": a.eval_seed if a.evaluate else None}
        if row_key(probe) in done:
            continue
        row = measure(a, tau)
        rows.append(row)
        print(table([row]).splitlines()[-1], flush=True)
        write_results(a.out, a, rows)
    print(table(rows))
    if a.markdown:
        a.markdown.write_text(table(rows) + "\n")
        print(f"wrote {a.markdown}")


if __name__ == "__main__":
    main()
