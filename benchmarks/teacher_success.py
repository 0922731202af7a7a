"""Measure the scripted teachers: success_once, success_at_end and return over seeded episodes.

Runs each teacher in the project's harness settings (``obs_mode="state"``, ``physx_cpu``, no
rendering, ``normalized_dense`` reward, 50 steps, one env) for all 50 steps of every episode
(ManiSkill's ``ignore_terminations=True`` evaluation), episode i reset with seed ``seed + i``, and
writes a JSON report.

    .venv/bin/python benchmarks/teacher_success.py --episodes 50 --seed 0 \
        --out results/benchmarks/teacher_success.json
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import tyro

from nnit.experts.teachers import measure_teacher


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
    out: Path = Path("results/benchmarks/teacher_success.json")
    """Where the JSON report goes."""


def main(args: Args) -> None:
    report = {}
    for task in args.tasks:
        r = measure_teacher(task, args.episodes, args.seed, args.max_steps)
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
