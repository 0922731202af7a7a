"""The alignment study's SGD set for robot tasks: plain MLPs trained by DAgger, with the GHN's teacher and
schedule, until they succeed about as often as the GHN's networks.

Table 1 of the paper compares GHN-generated networks with networks of the same architecture trained by
gradient descent from different seeds, both of about the same quality. Behaviour cloning on a fixed
buffer for a fixed number of steps does not get there on the grasping tasks, so this trains the SGD set
the way the GHN was trained:

* **Networks.** K MLPs of the study architecture, PyTorch's default initialisation from their own
  seeds, stacked as one :class:`~nnit.weights.mlp.WeightSet` and trained at once; each member draws
  its own minibatches, its loss is its own action MSE and its gradient is clipped on its own
  (:func:`~nnit.ghn.dagger.clip_grad_norm_per_member`), so the members never interact.
* **DAgger.** :class:`~nnit.ghn.train.DaggerDistillation` with the GHN run's training config: each
  iteration runs ``episodes_per_iteration`` beta-mixed episodes (beta = beta0 * beta_decay^i), each
  driven by one randomly chosen member, the GHN run's episode seeds, every visited state labelled by
  the GHN's teacher (the scripted one or its PPO expert) into a shared FIFO buffer of the GHN's size;
  then ``updates_per_iteration`` Adam steps on ``batch_size`` states per member, learning rate cosine
  from ``lr_start`` to ``lr_end`` over the iteration cap.
* **Stopping.** Every ``check_every`` iterations (and at the cap) all members are evaluated on
  ``check_episodes`` episodes whose seeds (``check_seed + e``) are disjoint from the final
  evaluation's; training stops as soon as their mean success reaches the target (the caller's: the
  GHN set's success on the same check episodes minus a margin) or at ``max_iterations``.
  :class:`DaggerSGDResult` records which, when, and at what cost.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch

from nnit.errors import NNiTError
from nnit.weights.architecture import Architecture
from nnit.weights.mlp import WeightSet

if TYPE_CHECKING:
    from nnit.eval.harness import CPUEvaluator
    from nnit.ghn.train import GHNTrainConfig
    from nnit.tasks.registry import RobotTaskSpec


@dataclass(frozen=True)
class DaggerSGDConfig:
    """When DAgger training of the SGD set stops; the DAgger schedule itself is the GHN run's."""

    max_iterations: int = 1000
    """Cap on DAgger iterations (the cosine learning-rate schedule spans it)."""
    check_every: int = 25
    """Iterations between success checks (a check also runs at the cap)."""
    check_episodes: int = 4
    """Episodes per network at each check."""
    check_seed: int = 5_000
    """Check episode e resets with seed ``check_seed + e``; must lie above the final evaluation's seeds
    (0 .. episodes - 1) and below the DAgger episodes' (from 10,000)."""
    margin: float = 0.10
    """The target is the GHN set's mean check success minus this (0.10: within 10 points)."""


@dataclass(frozen=True)
class DaggerSGDResult:
    """The DAgger-trained SGD set and how its training went."""

    weights: WeightSet
    """The K trained networks (detached)."""
    target: float
    """Mean check success the set had to reach."""
    target_met: bool
    """Whether it reached it."""
    stopped: Literal["target", "cap"]
    """Why training ended: the target was reached, or the iteration cap."""
    iterations: int
    """DAgger iterations run."""
    gradient_steps: int
    """Adam steps taken (every member took each of them)."""
    seconds: float
    """Wall time of the training, checks included."""
    check_seconds: float
    """Wall time of the checks alone."""
    checks: tuple[dict, ...]
    """One record per check: iteration, gradient steps, seconds so far, mean success and return on the
    check episodes, mean action MSE of the iteration's updates, beta and buffer size."""

    def to_dict(self) -> dict:
        """Everything but the weights, for a JSON report."""
        return {"target": self.target, "target_met": self.target_met, "stopped": self.stopped, "iterations": self.iterations,
                "gradient_steps": self.gradient_steps, "seconds": round(self.seconds, 1),
                "check_seconds": round(self.check_seconds, 1), "checks": list(self.checks)}


def train_sgd_dagger(task: RobotTaskSpec, arch: Architecture, seeds: Sequence[int], schedule: GHNTrainConfig, target: float,
                     cfg: DaggerSGDConfig, teacher_checkpoint: str | None = None, num_workers: int | None = None,
                     evaluator: CPUEvaluator | None = None, progress: bool = False) -> DaggerSGDResult:
    """Train ``len(seeds)`` MLPs of ``arch`` on the robot task ``task`` by DAgger until their mean success on the
    check episodes reaches ``target`` or ``cfg.max_iterations`` iterations have run.

    ``schedule`` is the GHN run's :class:`~nnit.ghn.train.GHNTrainConfig` (beta0, beta_decay, buffer_size,
    episodes_per_iteration, updates_per_iteration, batch_size, lr_start / lr_end, grad_clip, and ``seed`` for the
    episode seeds); ``teacher_checkpoint`` its teacher (None: the task's scripted teacher). ``num_workers``
    simulator workers collect the DAgger episodes; ``evaluator`` (a :class:`~nnit.eval.harness.CPUEvaluator` of
    ``task``) runs the checks, or one with ``num_workers`` workers is opened for them.
    """
    from tqdm.auto import tqdm

    from nnit.eval.harness import CPUEvaluator
    from nnit.ghn.dagger import clip_grad_norm_per_member
    from nnit.ghn.train import DaggerDistillation
    from nnit.training import cosine_lr

    if task.kind != "robot":
        raise NNiTError(f"DAgger trains policies for robot tasks; {task.name} is an image task")
    if cfg.max_iterations < 1 or cfg.check_every < 1 or cfg.check_episodes < 1:
        raise NNiTError(f"max_iterations, check_every and check_episodes must be >= 1, got {cfg}")
    k = len(seeds)
    ws = WeightSet.stack([WeightSet.init_random(arch, 1, generator=torch.Generator().manual_seed(int(s))) for s in seeds])
    params = [t.requires_grad_() for t in (*ws.weights, *ws.biases)]
    opt = torch.optim.Adam(params, lr=schedule.lr_start)
    g = torch.Generator().manual_seed(int(seeds[0]) + 7)
    total_updates = cfg.max_iterations * schedule.updates_per_iteration
    source = DaggerDistillation(task, schedule, num_workers, teacher_checkpoint=teacher_checkpoint)
    own_evaluator = evaluator is None
    if own_evaluator:
        evaluator = CPUEvaluator(task, num_workers=num_workers)
    checks: list[dict] = []
    steps, check_s, stopped = 0, 0.0, "cap"
    t0 = time.perf_counter()
    bar = tqdm(total=cfg.max_iterations, desc=f"SGD-DAgger x{k} {arch.hidden_str()}", unit="it", disable=not progress)
    try:
        for it in range(cfg.max_iterations):
            with torch.no_grad():  # each episode is driven by one random member, as the GHN's by one random student
                students = [ws[int(torch.randint(k, (1,), generator=g))].detach() for _ in range(schedule.episodes_per_iteration)]
            source.collect(students, it, seed_base=10_000 + it * 1000 + schedule.seed * 7)
            losses = []
            for _ in range(schedule.updates_per_iteration):
                for group in opt.param_groups:
                    group["lr"] = cosine_lr(steps, total_updates - 1, schedule.lr_start, schedule.lr_end)
                per_member = source.loss([ws], k, schedule.batch_size, g)  # (K,)
                opt.zero_grad(set_to_none=True)
                per_member.sum().backward()
                clip_grad_norm_per_member(params, k, schedule.grad_clip)
                opt.step()
                steps += 1
                losses.append(float(per_member.detach().mean()))
            bar.update(1)
            if (it + 1) % cfg.check_every and it + 1 < cfg.max_iterations:
                continue
            tc = time.perf_counter()
            res = evaluator.evaluate(ws.detach(), episodes=cfg.check_episodes, base_seed=cfg.check_seed)
            check_s += time.perf_counter() - tc
            success = float(res.metrics["success_rate"].mean())
            checks.append({"iteration": it + 1, "gradient_steps": steps, "seconds": round(time.perf_counter() - t0, 1),
                           "success_rate": success, "mean_return": float(res.metrics["mean_return"].mean()),
                           "action_mse": sum(losses) / len(losses), "beta": source.last_rollout["beta"],
                           "buffer": len(source.buffer)})
            bar.set_postfix(success=f"{success:.2f}", target=f"{target:.2f}")
            if success >= target:
                stopped = "target"
                break
    finally:
        bar.close()
        source.close()
        if own_evaluator:
            evaluator.close()
    return DaggerSGDResult(ws.detach(), float(target), stopped == "target", stopped, checks[-1]["iteration"], steps,
                           time.perf_counter() - t0, check_s, tuple(checks))
