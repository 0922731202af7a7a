"""DAgger pieces for distilling a teacher into GHN-generated students (paper Appendix A, Table 5).

* :class:`StateBuffer` — a FIFO buffer of teacher-labelled states (paper: 1M). States visited by
  the beta-mixed rollouts are labelled with the teacher's action and appended; the oldest fall out.
* :func:`beta_at` — the probability of executing the teacher's action at iteration i,
  ``beta_0 * decay^i`` (paper: decay 0.97, 0.98 for StackCubeEasy).
* :func:`clip_grad_norm_per_member` — gradient clipping that treats every ensemble member on its
  own, so stacking K GHNs in one module never couples their updates.
"""

from __future__ import annotations


import torch


class StateBuffer:
    """Fixed-capacity FIFO ring buffer of (state, teacher action) pairs."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int) -> None:
        if capacity <= 0:
            raise ValueError(f"buffer capacity must be positive, got {capacity}")
        self.capacity = int(capacity)
        self.obs = torch.zeros(self.capacity, obs_dim)
        self.act = torch.zeros(self.capacity, act_dim)
        self.size = 0
        self.head = 0  # next write position
        self.total_added = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs: torch.Tensor, act: torch.Tensor) -> None:
        """Append a batch (B, obs_dim), (B, act_dim); overwrites the oldest entries when full."""
        if obs.shape[0] != act.shape[0]:
            raise ValueError(f"{obs.shape[0]} states but {act.shape[0]} actions")
        obs, act = obs[-self.capacity :], act[-self.capacity :]
        n = obs.shape[0]
        idx = (self.head + torch.arange(n)) % self.capacity
        self.obs[idx] = obs.float()
        self.act[idx] = act.float()
        self.head = int((self.head + n) % self.capacity)
        self.size = min(self.capacity, self.size + n)
        self.total_added += int(obs.shape[0])

    def sample(self, shape: tuple[int, ...], generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Uniform samples with replacement: obs (*shape, obs_dim), act (*shape, act_dim)."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty buffer")
        idx = torch.randint(0, self.size, shape, generator=generator)
        return self.obs[idx], self.act[idx]

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Only the filled part, oldest first (so a resumed buffer keeps FIFO order)."""
        order = (torch.arange(self.size) + (self.head - self.size)) % self.capacity
        return {"obs": self.obs[order].clone(), "act": self.act[order].clone(), "total_added": torch.tensor(self.total_added)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.size, self.head = 0, 0
        self.add(state["obs"], state["act"])
        self.total_added = int(state["total_added"])


def beta_at(iteration: int, beta0: float = 1.0, decay: float = 0.97) -> float:
    """Teacher-execution probability at DAgger iteration ``iteration`` (0-based)."""
    return float(beta0) * float(decay) ** int(iteration)


def clip_grad_norm_per_member(params, k: int, max_norm: float) -> torch.Tensor:
    """Clip each ensemble member's gradient to ``max_norm`` on its own; returns the (K,) norms.

    Every stacked parameter stores the K members as K equal blocks of axis 0 (see
    :mod:`nnit.ghn.model`), so member i's gradient is ``grad.reshape(K, -1)[i]``.
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(k)
    sq = torch.zeros(k, device=grads[0].device)
    for g in grads:
        sq += g.reshape(k, -1).float().pow(2).sum(1)
    norms = sq.sqrt()
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)  # (K,)
    for g in grads:
        per_row = scale.to(g.dtype).repeat_interleave(g.shape[0] // k)  # (g.shape[0],)
        g.mul_(per_row.reshape(-1, *([1] * (g.dim() - 1))))
    return norms
