"""How much the evaluation protocol's pool size N matters, and whether top-k selection is optimistic.

The paper keeps the 10 best of N = 100 sampled networks, ranked on the same 50 episodes it reports; the
``cpu`` preset of ``nnit reproduce`` samples N = 32 and runs 10 episodes (to save time). For each
architecture this script samples N networks once with :func:`nnit.api.generate` and evaluates them with
:func:`nnit.api.evaluate` (what ``nnit generate --evaluate`` runs, so sampling and the ranking episodes are
exactly the CLI's), then reports side by side:

* top-k of the first ``--small`` networks (a valid N = 32 draw: the samples are independent) and
  top-k of all N, both on the ranking episodes (the paper's protocol);
* the same two selections re-evaluated on ``--fresh-episodes`` episodes with other seeds
  (``--fresh-seed``): what the selected networks are worth on episodes they were not chosen on;
* a bootstrap of the top-k-of-N ranking success (the N networks resampled with replacement): how much
  one draw of N networks can move the protocol's number;
* the dataset's own kept networks of that architecture (when ``--dataset`` is given), ranked and
  re-evaluated the same way.

    .venv/bin/python benchmarks/pool_size.py --task PushCube-v1 --checkpoint runs/cpu/PushCube-v1/nnit \
        --dataset runs/cpu/PushCube-v1/dataset --arch 32,32,16,64 32,16,16,16 \
        --out results/benchmarks/pool_size_pushcube.json

Each architecture's generated networks and evaluations (the files ``nnit generate`` / ``nnit eval`` write, via
:func:`nnit.api.save_generation`) are kept under ``--tmp`` and reused on a rerun. ``--temperature`` is the
sampling temperature (``nnit generate --temperature``; default: the cpu preset's; each temperature gets its own
folders); ``--sample-seed`` is the sampling seed (``nnit generate --seed``): another seed is another independent
draw of the N networks (its own folders), which shows how much the protocol's number moves between draws beyond
what the bootstrap estimates.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

# benchmarks/_results.py: a script's own folder is on sys.path
from _results import write_results

from nnit import api
from nnit.config import EVAL
from nnit.eval.harness import EvalResult
from nnit.eval.protocol import top_k_indices
from nnit.ghn.dataset import shard_name
from nnit.weights.architecture import hidden_label
from nnit.weights.mlp import WeightSet


def evaluate_file(path: Path, out: Path, episodes: int, seed: int, k: int, a: argparse.Namespace) -> None:
    """Evaluate the weight-set file ``path`` and write what ``nnit eval --weights path --out out`` writes (the
    per-network results with the top-k row, and a CSV beside it)."""
    ws = WeightSet.load(path)
    table = api.evaluate(a.task, ws, episodes, seed, top_k=k, control_mode=a.control_mode, workers=a.workers)
    result = table.results[ws.arch.hidden]
    result.info["weights"] = str(path)
    result.save(out, extra={"top_k": table.top_k.to_dict()})


def ranked(result: EvalResult, subset: int | None, k: int) -> np.ndarray:
    """Top-k indices (into the whole result) among its first ``subset`` networks, ranked like the protocol."""
    m = result.metrics
    n = result.n if subset is None else min(subset, result.n)
    return top_k_indices(m["mean_return"][:n], k, m["success_rate"][:n])


def summary(result: EvalResult, idx: np.ndarray) -> dict:
    ret = result.metrics["mean_return"][idx]
    return {"k": len(idx), "return": float(ret.mean()), "return_std": float(ret.std()),
            "success": float(result.metrics["success_rate"][idx].mean())}


def bootstrap(result: EvalResult, k: int, resamples: int = 2000, seed: int = 0) -> dict:
    """How much the top-k-of-N ranking-episode success moves with the draw: the N sampled networks resampled
    with replacement ``resamples`` times, the protocol's top k of each resample; 5th / 50th / 95th percentiles."""
    m = result.metrics
    ret, succ = np.asarray(m["mean_return"]), np.asarray(m["success_rate"])
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(resamples):
        draw = rng.integers(0, result.n, result.n)
        vals.append(float(succ[draw][top_k_indices(ret[draw], k, succ[draw])].mean()))
    p05, p50, p95 = np.percentile(vals, [5, 50, 95])
    return {"resamples": resamples, "p05": float(p05), "median": float(p50), "p95": float(p95)}


def fresh(ws: WeightSet, idx: np.ndarray, path: Path, a: argparse.Namespace) -> dict:
    """Re-evaluate the networks ``idx`` of ``ws`` on the fresh seeds; summary over all of them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = path.with_suffix(".eval.json")
    if not out.exists():
        ws[torch.as_tensor(idx)].save(path)
        evaluate_file(path, out, a.fresh_episodes, a.fresh_seed, len(idx), a)
    res = EvalResult.load(out)
    return summary(res, np.arange(res.n))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--arch", nargs="+", required=True, help="hidden widths, e.g. 32,16,64,32 (several allowed)")
    ap.add_argument("--dataset", type=Path, default=None, help="a built dataset: also rank its kept networks")
    ap.add_argument("--num", type=int, default=100)
    ap.add_argument("--small", type=int, default=32)
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--eval-seed", type=int, default=1000)
    ap.add_argument("--fresh-episodes", type=int, default=20)
    ap.add_argument("--fresh-seed", type=int, default=5000)
    ap.add_argument("--sample-seed", type=int, default=0,
                    help="nnit generate --seed: another seed draws another N networks (a second, independent draw)")
    ap.add_argument("--temperature", type=float, default=EVAL["cpu"].temperature,
                    help="nnit generate --temperature (default: the cpu preset's; 1 = the model's distribution, the paper's)")
    ap.add_argument("--control-mode", default="pd_ee_delta_pos")
    ap.add_argument("--threads", type=int, default=None, help="torch threads while sampling (nnit generate --threads)")
    ap.add_argument("--workers", type=int, default=None, help="simulator worker processes of every evaluation (default: one per core)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--tmp", type=Path, default=Path("runs/pool_size"))
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    rows = []
    for arch in a.arch:
        hidden = [int(w) for w in arch.split(",")]
        d = a.tmp / a.task / (f"{hidden_label(hidden)}_t{a.temperature:g}" + (f"_s{a.sample_seed}" if a.sample_seed else ""))
        if not (d / "results.json").exists():
            gen = api.generate(a.checkpoint, a.task, arch, a.num, temperature=a.temperature, seed=a.sample_seed)
            api.save_generation(gen, d, api.evaluate(a.task, gen, a.episodes, a.eval_seed, top_k=a.top_k, workers=a.workers))
        res = EvalResult.load(d / f"eval_{hidden_label(hidden)}.json")
        ws = WeightSet.load(d / "networks.safetensors")
        row = {"arch": arch}
        for name, subset in ((f"top{a.top_k}_of_{a.small}", a.small), (f"top{a.top_k}_of_{a.num}", None)):
            idx = ranked(res, subset, a.top_k)
            row[name] = {"ranking_episodes": summary(res, idx), "fresh_episodes": fresh(ws, idx, d / f"{name}.safetensors", a)}
        row[f"top{a.top_k}_of_{a.num}"]["ranking_bootstrap"] = bootstrap(res, a.top_k)
        shard = a.dataset / "shards" / shard_name(hidden) if a.dataset else None
        if shard is not None and shard.exists():
            dd = a.tmp / a.task / f"dataset_{hidden_label(hidden)}"
            dd.mkdir(parents=True, exist_ok=True)
            ev = dd / "eval.json"
            if not ev.exists():
                evaluate_file(shard, ev, a.episodes, a.eval_seed, a.top_k, a)
            dres = EvalResult.load(ev)
            idx = ranked(dres, None, a.top_k)
            row["dataset"] = {"kept": dres.n, "ranking_episodes": summary(dres, idx),
                              "fresh_episodes": fresh(WeightSet.load(shard), idx, dd / "top.safetensors", a)}
        rows.append(row)
        cells = [f"{k}: {100 * v['ranking_episodes']['success']:.0f}% -> {100 * v['fresh_episodes']['success']:.0f}% fresh"
                 + (f" (bootstrap 90%: {100 * v['ranking_bootstrap']['p05']:.0f}-{100 * v['ranking_bootstrap']['p95']:.0f}%)"
                    if "ranking_bootstrap" in v else "")
                 for k, v in row.items() if k != "arch"]
        print(f"[{arch}] " + " | ".join(cells), flush=True)
    write_results(a.out, a, rows)


if __name__ == "__main__":
    main()
