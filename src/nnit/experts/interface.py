"""The teacher interface: what a DAgger labeller is (:class:`Teacher`) and what it expects (:class:`TeacherSpec`).

Kept apart from the scripted teachers (:mod:`nnit.experts.teachers`) and the PPO actor
(:mod:`nnit.experts.ppo`) so that both can implement it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch


@dataclass(frozen=True)
class TeacherSpec:
    """What a teacher expects and emits; the student is evaluated with the same settings."""

    task: str
    """ManiSkill environment id, e.g. ``"PickCube-v1"``."""
    control_mode: str
    """ManiSkill controller the actions are meant for, e.g. ``"pd_ee_delta_pos"``."""
    obs_dim: int
    """Length of the flat ``obs_mode="state"`` observation."""
    act_dim: int
    """Length of the action vector (every entry in [-1, 1])."""


@runtime_checkable
class Teacher(Protocol):
    """An observation -> action labeller. Scripted teachers and PPO actors both satisfy it.

    ``__call__`` must be deterministic and stateless: the same observation always gives the same
    action, and a batch of B observations gives the same actions as B single calls.
    """

    spec: TeacherSpec

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:  # (B, obs_dim) -> (B, act_dim)
        ...
