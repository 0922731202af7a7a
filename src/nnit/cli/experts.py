"""``nnit train-expert``: train (or resume) a PPO expert for one ManiSkill3 task; a thin wrapper over
:func:`nnit.experts.ppo.train_ppo`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Optional

from nnit.config import PresetName
from nnit.errors import NNiTError


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
        from nnit.eval.results import EvalResult
        from nnit.experts.ppo import ppo_config, train_ppo
        from nnit.tasks.registry import RobotTaskSpec, get_task

        spec = get_task(self.task)
        if not isinstance(spec, RobotTaskSpec):
            raise NNiTError(f"PPO experts are for robot tasks; {spec.name} is an image task")
        cfg = replace(ppo_config(self.preset, spec.name), seed=self.seed)
        if self.total_steps is not None:
            cfg = replace(cfg, total_steps=self.total_steps)
        if self.control_mode is not None:
            cfg = replace(cfg, control_mode=self.control_mode)
        out = self.out or Path("runs") / self.preset / spec.name / "expert"
        run = train_ppo(spec.name, cfg, out, num_workers=self.workers, backend=self.backend, progress=self.progress)
        ev = EvalResult.load(run / "eval.json")
        m = {k: float(v[0]) for k, v in ev.metrics.items()}
        print(f"PPO expert {run}: success {m['success_rate']:.2f}, return {m['mean_return']:.1f} +- {m['std_return']:.1f} "
              f"over {len(ev.seeds)} episodes ({ev.info.get('env_steps_trained')} env steps)")
