"""Equal-budget training of the baselines: a validation split, early stopping on a plateau, a wall-clock cap.

A fair comparison trains D2NWG and SANE on the same data as NNiT *until their own validation losses stop
improving*, capped at NNiT's wall-clock for the task, instead of a fixed (and much smaller) number of steps:

* :func:`validation_split` holds out a seeded share of each architecture's networks (never an architecture's
  last training network), so the validation loss measures fitting the distribution, not memorizing it;
* :class:`Plateau` tracks one training phase's validation loss and says when it has not improved by more than
  ``min_rel`` (relative) for ``patience`` validations in a row;
* :class:`Budget` is the run's early-stopping state (phase ends, plateaus, wall time spent, why it finished),
  stored in every checkpoint (section ``budget``) so a resumed run continues its clock and does not train past
  a finished run's end.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Optional, Sequence

import torch


def validation_split(counts: Sequence[int], fraction: float, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per weight set with ``counts[i]`` networks: (train indices, validation indices). ``round(fraction * n)``
    networks of each set are held out, at most ``n - 1`` (a set keeps a training network); ``fraction = 0``
    holds out none."""
    if not 0 <= fraction < 1:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in counts:
        perm = torch.randperm(n, generator=g)
        k = min(int(round(fraction * n)), n - 1) if fraction > 0 else 0
        out.append((perm[k:].sort().values, perm[:k].sort().values))
    return out


@dataclass
class Plateau:
    """One phase's validation losses and whether they stopped improving."""

    patience: int
    """Validations in a row without a relative improvement of ``min_rel`` before the phase ends."""
    min_rel: float = 0.01
    """Smallest relative improvement over the best value that counts."""
    best: float = math.inf
    best_step: int = 0
    bad: int = 0
    """Validations since the last improvement."""
    history: list = field(default_factory=list)
    """[step, validation loss] pairs."""

    def update(self, step: int, value: float) -> bool:
        """Record the validation loss at ``step``; True when the phase has plateaued."""
        self.history.append([int(step), float(value)])
        improved = math.isfinite(value) and (not math.isfinite(self.best) or value < self.best * (1 - self.min_rel))
        if improved:
            self.best, self.best_step, self.bad = float(value), int(step), 0
        else:
            self.bad += 1
        return self.bad >= self.patience

    def to_dict(self) -> dict:
        return {"patience": self.patience, "min_rel": self.min_rel, "best": self.best, "best_step": self.best_step,
                "bad": self.bad, "history": self.history}


@dataclass
class Budget:
    """A baseline run's early-stopping state (module docstring)."""

    max_seconds: float = 0.0
    """Wall-clock cap of the whole run in seconds (0 = none)."""
    seconds: float = 0.0
    """Wall time spent in earlier sessions of this run."""
    phase_end: dict = field(default_factory=dict)
    """Step at which a phase ended early (e.g. ``{"vae": 3500}``)."""
    plateaus: dict = field(default_factory=dict)
    """Phase name -> :class:`Plateau`."""
    finished: bool = False
    """Whether the run ended (plateau or wall clock): a resumed run does not train further."""
    reason: str = ""
    """Why it ended: "plateau", "wall-clock cap" or "" (ran its full steps)."""
    _t0: float = field(default_factory=time.perf_counter, repr=False)

    @classmethod
    def from_dict(cls, d: Optional[dict], max_seconds: float, patience: int) -> "Budget":
        """The saved state of a resumed run (its wall-clock cap replaced by ``max_seconds``), or a fresh one."""
        if not d:
            return cls(max_seconds=max_seconds)
        plateaus = {k: Plateau(**{**v, "patience": patience}) for k, v in d.get("plateaus", {}).items()}
        return cls(max_seconds=max_seconds, seconds=float(d.get("seconds", 0.0)), phase_end=dict(d.get("phase_end", {})),
                   plateaus=plateaus, finished=bool(d.get("finished", False)), reason=str(d.get("reason", "")))

    def elapsed(self) -> float:
        """Wall time of the whole run so far (earlier sessions included)."""
        return self.seconds + time.perf_counter() - self._t0

    def over(self, share: float = 1.0) -> bool:
        """Whether ``share`` of the wall-clock cap is spent (never without a cap)."""
        return self.max_seconds > 0 and self.elapsed() >= share * self.max_seconds

    def plateau(self, phase: str, patience: int) -> Plateau:
        return self.plateaus.setdefault(phase, Plateau(patience))

    def finish(self, reason: str) -> bool:
        self.finished, self.reason = True, reason
        return True

    def to_dict(self) -> dict:
        return {"max_seconds": self.max_seconds, "seconds": self.elapsed(), "phase_end": self.phase_end,
                "plateaus": {k: p.to_dict() for k, p in self.plateaus.items()}, "finished": self.finished,
                "reason": self.reason}
