"""Measure the scripted teachers: success_once, success_at_end and return over seeded episodes.

Runs each teacher in the project's harness settings (``obs_mode="state"``, ``physx_cpu``, no
rendering, ``normalized_dense`` reward, 50 steps, one env) for all 50 steps of every episode
(ManiSkill's ``ignore_terminations=True`` evaluation), episode i reset with seed ``seed + i``, and
writes a JSON report.

    .venv/bin/python benchmarks/teacher_success.py --episodes 50 --seed 0 \
        --out benchmarks/results/teacher_success.json
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import tyro

from nnit.experts.teachers import Teacher, get_teacher


@dataclass(frozen=True)
class Args:
    tasks: tuple[str, ...] = ("PickCube-v1", "PushCube-v1", "StackCubeEasy-v1")
    """ManiSkill task ids to measure."""
    episodes: int = 50
    """Episodes per task; episode i is reset with seed ``seed + i``."""
    seed: int = 0
    """First reset seed."""
    max_steps: int = 50
    """Control steps per episode (all are run, success or not; the env itself truncates at 50)."""
    out: Path = Path("benchmarks/results/teacher_success.json")
    """Where the JSON report goes."""


def make_env(task: str, control_mode: str):
    """The harness's environment (``nnit.tasks.maniskill.make_env``: state obs, physx_cpu, 50 steps)."""
    from nnit.tasks.maniskill import make_env as _make_env  # heavy: imports ManiSkill

    return _make_env(task, control_mode=control_mode)


def rollout(env, teacher: Teacher, seed: int, max_steps: int = 50) -> dict:
    """One episode of ``max_steps`` steps; returns success_once, success_at_end, return, first success step."""
    obs, _ = env.reset(seed=seed)
    ret, once, first, success = 0.0, False, -1, False
    for t in range(max_steps):
        with torch.no_grad():
            action = teacher(torch.as_tensor(obs, dtype=torch.float32).reshape(1, -1))
        obs, reward, _, _, info = env.step(action)
        ret += float(reward)
        success = bool(info["success"])
        if success and not once:
            once, first = True, t + 1
    return {"seed": seed, "success_once": once, "success_at_end": success, "return": ret, "first_success_step": first}


def evaluate(task: str, episodes: int, seed: int, max_steps: int = 50, teacher: Teacher | None = None) -> dict:
    """Aggregate metrics of ``teacher`` (default: the scripted one) over seeds seed..seed+episodes-1."""
    teacher = teacher if teacher is not None else get_teacher(task)
    env = make_env(task, teacher.spec.control_mode)
    try:
        t0 = time.perf_counter()
        eps = [rollout(env, teacher, seed + i, max_steps) for i in range(episodes)]
        wall = time.perf_counter() - t0
    finally:
        env.close()
    n = len(eps)
    firsts = [e["first_success_step"] for e in eps if e["success_once"]]
    return {
        "task": task,
        "spec": vars(teacher.spec) if hasattr(teacher.spec, "__dict__") else str(teacher.spec),
        "episodes": n,
        "seeds": [seed, seed + n - 1],
        "success_once": sum(e["success_once"] for e in eps) / n,
        "success_at_end": sum(e["success_at_end"] for e in eps) / n,
        "mean_return": sum(e["return"] for e in eps) / n,
        "mean_first_success_step": (sum(firsts) / len(firsts)) if firsts else None,
        "failed_seeds": [e["seed"] for e in eps if not e["success_once"]],
        "wall_s": round(wall, 1),
        "per_episode": eps,
    }


def main(args: Args) -> None:
    report = {}
    for task in args.tasks:
        r = evaluate(task, args.episodes, args.seed, args.max_steps)
        report[task] = r
        print(
            f"{task:18s} success_once {r['success_once']:.2f}  success_at_end {r['success_at_end']:.2f}  "
            f"return {r['mean_return']:.1f}  first success at step {r['mean_first_success_step']}  "
            f"failed seeds {r['failed_seeds']}  ({r['wall_s']} s)",
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1))
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main(tyro.cli(Args))
