"""Benchmark the evaluation harness against the raw simulator, side by side, on CPU.

For each task and each worker count it measures, in the same process layout (W worker processes,
one ``physx_cpu`` env each):

(a) simulator time of the same episodes: the harness's exact episodes (same networks, same seeds,
    each network's first episode from a rebuilt scene as in ``run_network``, so the trajectories
    are identical) run by a bare loop that times only ``env.reset`` / ``env.step``; the slowest
    worker's simulator time;
(a-ref) raw simulator with uniform random actions (a different trajectory distribution: random
    actions jitter in place, a network's steady actions push the arm into contacts, which costs
    more physics — reported for reference only);
(b) the harness: ``CPUEvaluator.evaluate`` of N random networks x E episodes (default 100 x 10).

All run the same number of env steps; times exclude process / env start-up. The ratio (b) / (a)
is the harness's overhead (goal <= 1.1). Medians over --repeats.

Example: python benchmarks/bench_eval.py --networks 100 --episodes 10 --workers 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path


def _raw_worker(task_name: str, episodes: list[int], steps: int, ready, go, out) -> None:
    import numpy as np
    import torch

    from nnit.tasks.maniskill import make_env

    torch.set_num_threads(1)
    env = make_env(task_name)
    ready.put(1)
    go.wait()
    dim = env.action_space.shape[-1]
    for seed in episodes:
        env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        for _ in range(steps):
            env.step(torch.from_numpy(rng.uniform(-1, 1, (1, dim)).astype(np.float32)))
    out.put(1)
    env.close()


def raw_sim(task_name: str, workers: int, total_episodes: int, steps: int = 50) -> dict:
    """(a): random-action episodes split over ``workers`` processes; returns timings."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    shares = [list(range(w, total_episodes, workers)) for w in range(workers)]
    t_start = time.perf_counter()
    procs = [ctx.Process(target=_raw_worker, args=(task_name, s, steps, ready, go, out), daemon=True) for s in shares]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get()
    t0 = time.perf_counter()
    go.set()
    for _ in procs:
        out.get()
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    return {"startup_s": t0 - t_start, "wall_s": wall, "env_steps": total_episodes * steps}


def _same_episodes_worker(task_name: str, arch: str, networks: int, jobs: list, steps: int, out) -> None:
    """Run the harness's episodes (same networks, same seeds, the first of each network from a rebuilt
    scene: identical trajectories) with a bare loop, timing only ``env.reset`` + ``env.step``."""
    import torch

    from nnit.eval.harness import policy_action
    from nnit.tasks.maniskill import make_env
    from nnit.tasks.registry import get_task
    from nnit.weights import Architecture, WeightSet

    torch.set_num_threads(1)
    spec = get_task(task_name)
    ws = WeightSet.init_random(Architecture.parse(arch, spec.input_dim, spec.output_dim), networks, generator=torch.Generator().manual_seed(0))
    nets = [ws[i] for i in range(ws.n)]
    env = make_env(task_name)
    t_sim = 0.0
    with torch.no_grad():
        for net, e in jobs:  # episode e resets with seed e; a network's first episode rebuilds the scene (run_network)
            t0 = time.perf_counter()
            obs, _ = env.reset(seed=e, options={"reconfigure": True} if e == 0 else None)
            t_sim += time.perf_counter() - t0
            for _ in range(steps):
                act = policy_action(nets[net], torch.as_tensor(obs, dtype=torch.float32).reshape(1, -1))[0]
                t0 = time.perf_counter()
                obs, *_ = env.step(act)
                t_sim += time.perf_counter() - t0
    env.close()
    out.put(t_sim)


def sim_time_same_episodes(task_name: str, workers: int, networks: int, episodes: int, arch: str, steps: int = 50) -> dict:
    """(a'): pure simulator time (reset + step) of exactly the harness's episodes, split over
    ``workers`` processes like the harness; ``wall_s`` = the slowest worker's simulator time."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    out = ctx.Queue()
    shares = [[(i, e) for i in range(w, networks, workers) for e in range(episodes)] for w in range(workers)]
    procs = [ctx.Process(target=_same_episodes_worker, args=(task_name, arch, networks, sh, steps, out), daemon=True) for sh in shares]
    for p in procs:
        p.start()
    times = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return {"wall_s": max(times), "sim_s_per_worker": times, "env_steps": networks * episodes * steps}


def harness(task_name: str, workers: int, networks: int, episodes: int, arch: str) -> dict:
    """(b): the harness evaluating ``networks`` random nets x ``episodes`` episodes."""
    import torch

    from nnit.eval.harness import CPUEvaluator
    from nnit.tasks.registry import get_task
    from nnit.weights import Architecture, WeightSet

    spec = get_task(task_name)
    ws = WeightSet.init_random(Architecture.parse(arch, spec.input_dim, spec.output_dim), networks, generator=torch.Generator().manual_seed(0))
    t_start = time.perf_counter()
    with CPUEvaluator(spec, num_workers=workers) as ev:
        t0 = time.perf_counter()
        res = ev.evaluate(ws, episodes=episodes, base_seed=0)
        wall = time.perf_counter() - t0
    return {"startup_s": t0 - t_start, "wall_s": wall, "env_steps": res.info["env_steps"], "mean_return": float(res.metrics["mean_return"].mean())}


def per_step_probe(task_name: str, arch: str, steps: int = 300) -> dict:
    """In this process: mean time of one ``env.step`` (random actions) and of one policy forward
    (``clamp(mlp(obs), -1, 1)`` for one network, as a worker runs it). Interleaved, so CPU
    contention from other processes hits both alike: a contention-robust view of the overhead."""
    import numpy as np
    import torch

    from nnit.eval.harness import policy_action
    from nnit.tasks.maniskill import make_env
    from nnit.tasks.registry import get_task
    from nnit.weights import Architecture, WeightSet

    torch.set_num_threads(1)
    spec = get_task(task_name)
    ws = WeightSet.init_random(Architecture.parse(arch, spec.input_dim, spec.output_dim), 1)
    env = make_env(task_name)
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    t_sim = t_pol = 0.0
    with torch.no_grad():
        for i in range(steps):
            t0 = time.perf_counter()
            policy_action(ws, torch.as_tensor(obs, dtype=torch.float32).reshape(1, -1))
            t1 = time.perf_counter()
            obs, *_ = env.step(torch.from_numpy(rng.uniform(-1, 1, (1, spec.action_dim)).astype(np.float32)))
            t2 = time.perf_counter()
            t_pol += t1 - t0
            t_sim += t2 - t1
            if (i + 1) % 50 == 0:
                obs, _ = env.reset(seed=i)
    env.close()
    return {"sim_step_us": 1e6 * t_sim / steps, "policy_us": 1e6 * t_pol / steps, "est_ratio": (t_sim + t_pol) / t_sim}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=["PickCube-v1", "PushCube-v1", "StackCubeEasy-v1"])
    ap.add_argument("--networks", type=int, default=100)
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=1, help="repeat each measurement; medians are reported")
    ap.add_argument("--arch", default="32,16,64,32")
    ap.add_argument("--out", type=Path, default=Path("results/benchmarks/bench_eval.json"))
    args = ap.parse_args()

    rows = []
    probes = {}
    for task in args.tasks:
        pr = per_step_probe(task, args.arch)
        probes[task] = pr
        print(f"{task:<18} in-process: env.step {pr['sim_step_us']:.0f} us, policy forward {pr['policy_us']:.0f} us "
              f"-> per-step overhead ratio {pr['est_ratio']:.3f}", flush=True)
        for w in args.workers:
            raws = [raw_sim(task, w, args.networks * args.episodes) for _ in range(args.repeats)]
            sims = [sim_time_same_episodes(task, w, args.networks, args.episodes, args.arch) for _ in range(args.repeats)]
            hars = [harness(task, w, args.networks, args.episodes, args.arch) for _ in range(args.repeats)]
            ra = statistics.median(r["wall_s"] for r in raws)
            sa = statistics.median(r["wall_s"] for r in sims)
            hb = statistics.median(h["wall_s"] for h in hars)
            steps = raws[0]["env_steps"]
            row = {
                "task": task,
                "workers": w,
                "env_steps": steps,
                "raw_wall_s": round(ra, 3),
                "raw_steps_per_s": round(steps / ra, 1),
                "raw_startup_s": round(statistics.median(r["startup_s"] for r in raws), 2),
                "sim_same_episodes_wall_s": round(sa, 3),
                "sim_same_episodes_steps_per_s": round(steps / sa, 1),
                "harness_wall_s": round(hb, 3),
                "harness_steps_per_s": round(steps / hb, 1),
                "harness_startup_s": round(statistics.median(h["startup_s"] for h in hars), 2),
                "ratio_harness_over_raw": round(hb / ra, 3),
                "ratio_harness_over_sim_same_episodes": round(hb / sa, 3),
            }
            rows.append(row)
            print(
                f"{task:<18} workers={w}  random-action sim {row['raw_steps_per_s']:>7.1f} steps/s   "
                f"sim of the same episodes {row['sim_same_episodes_steps_per_s']:>7.1f} steps/s   harness {row['harness_steps_per_s']:>7.1f} steps/s"
                f"   ratio harness/sim {row['ratio_harness_over_sim_same_episodes']:.3f}",
                flush=True,
            )
    for task in args.tasks:
        by_w = {r["workers"]: r for r in rows if r["task"] == task}
        if 1 in by_w and len(by_w) > 1:
            wmax = max(by_w)
            print(f"{task:<18} scaling 1 -> {wmax} workers: raw x{by_w[wmax]['raw_steps_per_s'] / by_w[1]['raw_steps_per_s']:.2f}, "
                  f"harness x{by_w[wmax]['harness_steps_per_s'] / by_w[1]['harness_steps_per_s']:.2f}")
    load = os.getloadavg()
    print(f"load average during run end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    record = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "loadavg_end": load},
        "per_step_probe": probes,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
