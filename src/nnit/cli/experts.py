"""``nnit train-expert``: train (or resume) a PPO expert for one ManiSkill3 task."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Literal

from nnit.config import PresetName


def train_expert_command(
    task: str,
    preset: PresetName = "cpu",
    out: Path | None = None,
    total_steps: int | None = None,
    workers: int | None = None,
    control_mode: Literal["pd_joint_delta_pos", "pd_ee_delta_pos"] | None = None,
    backend: Literal["auto", "cpu", "cuda"] = "auto",
    seed: int = 0,
    progress: bool = True,
) -> None:
    """Train a PPO expert (ManiSkill's PPO recipe) and evaluate its deterministic actor; resumable.

    Re-running the same command resumes from OUT/checkpoint.safetensors. Writes OUT/actor.safetensors
    (the deterministic actor as a weight set, usable with nnit eval), OUT/eval.json (final
    evaluation: 50-step episodes, success_once, return), OUT/train_log.jsonl and TensorBoard (OUT/tb).
    Use the expert as a DAgger teacher with get_teacher(task, checkpoint=OUT).

    Example: nnit train-expert --task PushCube-v1 --preset cpu
    Example: nnit train-expert --task PickCube-v1 --preset paper --backend cuda --out runs/gpu/PickCube-v1/expert

    Args:
        task: PickCube-v1, PushCube-v1 or StackCubeEasy-v1.
        preset: tiny / cpu / paper (batch, epochs, budget; paper = ManiSkill's per-task commands).
        out: Output directory (default runs/<preset>/<task>/expert).
        total_steps: Override the environment-step budget (a resumed run may extend it).
        workers: CPU rollout worker processes, one env each (default: one per core; 0 = in-process).
        control_mode: Override the controller (default pd_joint_delta_pos, ManiSkill's PPO baseline).
        backend: Simulator: auto = physx_cuda when a GPU is visible, else physx_cpu.
        seed: Seed of the weights, action noise and env resets.
    """
    from nnit.experts.ppo import ppo_config, train_ppo
    from nnit.tasks.registry import RobotTaskSpec, get_task

    spec = get_task(task)
    if not isinstance(spec, RobotTaskSpec):
        raise ValueError(f"PPO experts are for robot tasks; {spec.name} is an image task")
    cfg = replace(ppo_config(preset, spec.name), seed=seed)
    if total_steps is not None:
        cfg = replace(cfg, total_steps=total_steps)
    if control_mode is not None:
        cfg = replace(cfg, control_mode=control_mode)
    out = out or Path("runs") / preset / spec.name / "expert"
    run = train_ppo(spec.name, cfg, out, num_workers=workers, backend=backend, progress=progress)
    import json

    ev = json.loads((run / "eval.json").read_text())
    m = {k: v[0] for k, v in ev["metrics"].items()}
    print(f"PPO expert {run}: success {m['success_rate']:.2f}, return {m['mean_return']:.1f} +- {m['std_return']:.1f} "
          f"over {len(ev['seeds'])} episodes ({ev['info'].get('env_steps_trained')} env steps)")
