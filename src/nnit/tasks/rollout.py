"""The one episode loop: every rollout of a policy in a ManiSkill env runs through :func:`run_episode`.

Evaluation (CPU worker pool and the batched ``physx_cuda`` path of :mod:`nnit.eval.harness`), rollout
videos, teacher measurement (:mod:`nnit.experts.teachers`), PPO's evaluation of its actor and DAgger
collection (:mod:`nnit.ghn.collect`) all step their envs here, so they share one definition of an
episode:

* **Loop.** ``obs -> policy(obs) -> clamp(-1, 1) -> env.step`` for exactly ``steps`` steps;
  terminations and truncations are ignored (ManiSkill's baseline evaluation).
* **Outcome.** ``return`` = sum of the rewards (accumulated in float64), ``success_once`` =
  ``info["success"]`` held at any step, ``success_at_end`` = at the last step, and the first step
  (1-based) at which success held (-1: never).
* **Batched envs.** An env with B sub-envs (``physx_cuda``) gives B outcomes per call; a
  ``physx_cpu`` env has B = 1. Observations are (B, obs_dim), actions (B, act_dim).
* **Seeds.** :func:`run_episodes` is the evaluation protocol's sequence of one policy's episodes:
  the seeds in order in one env, the first from a rebuilt scene (``reset(options={"reconfigure":
  True})``), because a plain ``physx_cpu`` reset keeps contact state of the previous episode (see
  :mod:`nnit.eval.harness`). A rebuild costs a fraction of a second.
* **Hooks.** ``on_reset(obs)`` runs after the reset and ``on_step(step)`` after every env step
  (:class:`Step`: the observation the action was chosen on, the action, the next observation,
  reward and info): enough for DAgger's state recording and for capturing video frames.

This module imports no simulator: it only calls the env it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import torch

from nnit.weights.mlp import WeightSet

Policy = Callable[[torch.Tensor], torch.Tensor]
"""``(B, obs_dim) float32 observations -> (B, act_dim) actions``; the loop clamps them to [-1, 1]."""
ResetFn = Callable[[Any, int, bool], Any]
"""``reset(env, seed, rebuild) -> first observation``."""


class Step(NamedTuple):
    """What ``on_step`` sees after env step ``t`` (1-based)."""

    t: int
    """Steps taken so far, this one included (1..steps)."""
    obs: torch.Tensor
    """The float32 observation the action was chosen on, (B, obs_dim)."""
    action: torch.Tensor
    """The executed (clamped) action, (B, act_dim)."""
    next_obs: Any
    """The env's observation after the step."""
    reward: Any
    """The env's reward for the step."""
    info: dict
    """The env's info dict for the step."""


@dataclass(frozen=True)
class Episodes:
    """The outcome of one episode in each of the env's B sub-envs (B = 1 on ``physx_cpu``)."""

    seed: int
    """The reset seed."""
    returns: np.ndarray
    """(B,) float64: sum of the rewards over all steps."""
    success_once: np.ndarray
    """(B,) bool: success held at some step."""
    success_at_end: np.ndarray
    """(B,) bool: success held at the last step."""
    first_success_step: np.ndarray
    """(B,) int64: the first step (1-based) at which success held; -1 when it never did."""

    def outcome(self, i: int = 0) -> tuple[float, bool, bool]:
        """Sub-env ``i``'s ``(return, success_once, success_at_end)`` as Python values."""
        return float(self.returns[i]), bool(self.success_once[i]), bool(self.success_at_end[i])


# ============================================================================ policies
def policy_action(ws: WeightSet, obs: torch.Tensor) -> torch.Tensor:
    """``clamp(mlp(obs), -1, 1)`` for every network: obs (B, in) or (N, B, in) -> (N, B, out)."""
    return ws(obs).clamp_(-1.0, 1.0)


def mlp_policy(ws: WeightSet) -> Policy:
    """The evaluated policy ``clamp(mlp(obs), -1, 1)`` of a weight set.

    One network drives every sub-env; a set of N networks drives an env of N sub-envs, network i
    sub-env i (the batched GPU evaluation)."""
    if ws.n == 1:
        return lambda obs: policy_action(ws, obs)[0]  # (B, out)
    return lambda obs: policy_action(ws, obs.unsqueeze(1))[:, 0]  # (N, out)


# ============================================================================ resets
def plain_reset(env, seed: int, rebuild: bool = False):
    """``env.reset(seed=seed)``; with ``rebuild`` from a rebuilt scene (``options={"reconfigure": True}``)."""
    obs, _ = env.reset(seed=int(seed), options={"reconfigure": True} if rebuild else None)
    return obs


def reset_from_env0(env, seed: int, rebuild: bool = False):
    """Reset a batched env, then copy sub-env 0's state to every sub-env, so all of them start an
    episode from the same state (the batched GPU evaluation: one network per sub-env)."""
    plain_reset(env, seed, rebuild)
    u = env.unwrapped
    u.set_state_dict(_broadcast_env0(u.get_state_dict()))
    return u.get_obs()


def _broadcast_env0(state):
    """Copy env 0's entry of every (num_envs, ...) tensor in a nested state dict to all envs."""
    if isinstance(state, dict):
        return {k: _broadcast_env0(v) for k, v in state.items()}
    return state[:1].expand_as(state).clone()


# ============================================================================ the loop
def _as_obs(obs) -> torch.Tensor:
    """A float32 (B, obs_dim) copy of an observation (a copy: the env may reuse its buffers)."""
    x = torch.as_tensor(obs, dtype=torch.float32)
    return x.reshape(-1, x.shape[-1]).clone()  # (B, obs_dim)


def run_episode(
    env,
    policy: Policy,
    seed: int,
    steps: int,
    *,
    rebuild: bool = False,
    reset: ResetFn = plain_reset,
    on_reset: Callable[[torch.Tensor], None] | None = None,
    on_step: Callable[[Step], None] | None = None,
) -> Episodes:
    """One episode of ``steps`` steps in every sub-env of ``env`` from ``reset(env, seed, rebuild)``.

    Terminations and truncations are ignored. ``policy`` gets (B, obs_dim) float32 observations;
    its actions are clamped to [-1, 1]. ``on_reset`` gets the first observation (float32, (B,
    obs_dim)), ``on_step`` a :class:`Step` after every env step.
    """
    x = _as_obs(reset(env, seed, rebuild))
    if on_reset is not None:
        on_reset(x)
    total = once = last = first = None
    with torch.no_grad():
        for t in range(1, steps + 1):
            act = policy(x).clamp(-1.0, 1.0)  # (B, act)
            obs, reward, _term, _trunc, info = env.step(act)
            r = torch.as_tensor(reward).reshape(-1).to(torch.float64)  # (B,)
            if total is None:
                b = x.shape[0]
                total = torch.zeros(b, dtype=torch.float64, device=r.device)
                once = torch.zeros(b, dtype=torch.bool, device=r.device)
                first = torch.full((b,), -1, dtype=torch.int64, device=r.device)
            total += r
            last = torch.as_tensor(info.get("success", False), device=r.device).reshape(-1).bool().expand(total.shape[0])
            first = torch.where((first < 0) & last, torch.full_like(first, t), first)
            once = once | last
            if on_step is not None:
                on_step(Step(t, x, act, obs, reward, info))
            x = _as_obs(obs)
    if total is None:  # steps == 0
        b = x.shape[0]
        return Episodes(int(seed), np.zeros(b), np.zeros(b, bool), np.zeros(b, bool), np.full(b, -1, np.int64))
    return Episodes(int(seed), total.cpu().numpy(), once.cpu().numpy(), last.cpu().numpy(), first.cpu().numpy())


def run_episodes(env, policy: Policy, seeds: Sequence[int], steps: int, **hooks) -> list[Episodes]:
    """The evaluation protocol's episodes of one policy: ``seeds`` in order in ``env``, the first
    from a rebuilt scene, so the outcome does not depend on what ran in ``env`` before.
    ``hooks``: ``reset`` / ``on_reset`` / ``on_step`` as in :func:`run_episode`."""
    return [run_episode(env, policy, s, steps, rebuild=e == 0, **hooks) for e, s in enumerate(seeds)]
