"""``nnit train-expert``: train (or resume) a PPO expert for one ManiSkill3 task; a thin wrapper over
:func:`nnit.api.train_expert`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from nnit.config import PresetName


@dataclass(frozen=True)
class TrainExpertCommand:
    """Train a PPO expert (ManiSkill's PPO recipe) and evaluate its deterministic actor; resumable.

    Re-running the same command resumes from OUT/checkpoint.safetensors. Writes OUT/actor.safetensors
    (the deterministic actor as a weight set, usable with nnit eval), OUT/eval.json (final
    evaluation: 50-step episodes, success_once, return), OUT/train_log.jsonl and TensorBoard (OUT/tb).
    Use the expert as a DAgger teacher with get_teacher(task, checkpoint=OUT).

    Example: nnit train-expert --task PushCube-v1 --preset cpu

    Example: nnit train-expert --task PickCube-v1 --preset paper --backend cuda --out runs/gpu/PickCube-v1/expert
    """

    task: str
    """PickCube-v1, PushCube-v1 or StackCubeEasy-v1."""
    preset: PresetName = "cpu"
    """tiny / cpu / paper (batch, epochs, budget; paper = ManiSkill's per-task commands)."""
    out: Optional[Path] = None
    """Output directory (default runs/<preset>/<task>/expert)."""
    total_steps: Optional[int] = None
    """Override the environment-step budget (a resumed run may extend it)."""
    workers: Optional[int] = None
    """CPU rollout worker processes, one env each (default: one per core; 0 = in-process)."""
    control_mode: Optional[Literal["pd_joint_delta_pos", "pd_ee_delta_pos"]] = None
    """Override the controller (default pd_joint_delta_pos, ManiSkill's PPO baseline)."""
    backend: Literal["auto", "cpu", "cuda"] = "auto"
    """Simulator: auto = physx_cuda when a GPU is visible, else physx_cpu."""
    seed: int = 0
    """Seed of the weights, action noise and env resets."""
    progress: bool = True
    """Show a progress bar."""

    def run(self) -> None:
        from nnit.api import train_expert

        train_expert(self.task, self.preset, self.out, total_steps=self.total_steps, control_mode=self.control_mode,
                     workers=self.workers, backend=self.backend, seed=self.seed, progress=self.progress, log=print)
