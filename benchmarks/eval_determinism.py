"""Is an evaluation a pure function of (networks, seeds)? Evaluate one weight file several times, with
different worker counts, and compare every episode; also time the scene rebuild that makes it so.

The harness (``nnit.eval.harness.run_network``) runs each network's episodes in order on one worker and
starts the first from a rebuilt scene (``reset(options={"reconfigure": True})``), because a plain
physx_cpu ``reset(seed)`` keeps contact state of the previous episode. This script checks the result
on real networks and reports the cost of the rebuild against a plain reset (medians).

Example: python benchmarks/eval_determinism.py --task PickCube-v1 \
    --weights runs/cpu/PickCube-v1/eval/nnit/h32-32-16-64/networks.safetensors --workers 2 1 2
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from _results import write_results


def reset_cost(task: str, control_mode: str, repeats: int) -> dict:
    """Median seconds of a plain ``reset(seed)`` and of a rebuilding one, in this process."""
    from nnit.tasks.maniskill import make_env

    env = make_env(task, control_mode=control_mode)
    try:
        out = {}
        for name, options in (("plain", None), ("rebuild", {"reconfigure": True})):
            times = []
            for r in range(repeats):
                t0 = time.perf_counter()
                env.reset(seed=r, options=options)
                times.append(time.perf_counter() - t0)
            out[f"{name}_reset_s"] = statistics.median(times)
        return out
    finally:
        env.close()


def main() -> None:
    import numpy as np
    import torch

    from nnit.eval.harness import CPUEvaluator
    from nnit.tasks.registry import get_task
    from nnit.weights import WeightSet

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="PickCube-v1")
    ap.add_argument("--control-mode", default="pd_ee_delta_pos")
    ap.add_argument("--weights", type=Path, required=True, help="a WeightSet file (e.g. a generate run's networks.safetensors)")
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--workers", type=int, nargs="+", default=[2, 1, 2], help="one evaluation per entry")
    ap.add_argument("--reset-repeats", type=int, default=20)
    ap.add_argument("--out", type=Path, default=Path("results/benchmarks/eval_determinism.json"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    spec = get_task(a.task, control_mode=a.control_mode)
    ws = WeightSet.load(a.weights)
    rows, first = [], None
    for w in a.workers:
        with CPUEvaluator(spec, num_workers=w) as ev:
            t0 = time.perf_counter()
            res = ev.evaluate(ws, episodes=a.episodes, base_seed=a.seed)
            wall = time.perf_counter() - t0
        ret = res.per_episode["return"]
        first = ret if first is None else first
        differing = int((ret != first).sum())
        rows.append({"workers": w, "wall_s": round(wall, 2), "episodes_differing_from_run_1": differing,
                     "max_abs_return_difference": float(np.abs(ret - first).max()),
                     "mean_return": float(ret.mean()), "success_once": float(res.per_episode["success_once"].mean())})
        print(f"{w} workers: {wall:6.1f} s, {differing} of {ret.size} episodes differ from run 1, mean return {ret.mean():.4f}")
    cost = reset_cost(a.task, a.control_mode, a.reset_repeats)
    n_eps = ws.n * a.episodes
    cost["rebuilds_per_episode"] = ws.n / n_eps
    print(f"reset: plain {cost['plain_reset_s'] * 1e3:.1f} ms, rebuild {cost['rebuild_reset_s'] * 1e3:.0f} ms (median of "
          f"{a.reset_repeats}); one rebuild per network = {ws.n} per {n_eps} episodes")
    write_results(a.out, a, rows + [cost])


if __name__ == "__main__":
    main()
