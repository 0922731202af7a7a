"""Weight normalization between raw MLP weights and the generators' space.

Two modes, both exact affine maps with an inverse (up to float rounding):

* ``"global"`` — the paper (Appendix A: "all weights are globally normalized to a target standard
  deviation", following G.pt, Peebles et al. 2022): one mean / std over every real parameter,
  ``x -> (x - mean) / std * target_std``.
* ``"per_role"`` — one mean / std per *parameter role*: the weight matrix and the bias of the first
  layer, of the hidden layers and of the output layer (6 roles; an MLP with one layer uses the output
  roles). Roles exist for every width and depth, so the map stays width-agnostic. Why: GHN policies' output layer has a
  smaller std than the other layers, so under global normalization a generator's error, uniform in
  normalized space, is larger *relative* to the output layer — the layer a policy is most sensitive to
  (the measurement: docs/reference/weights-and-tokens.md).

``fit`` measures the statistics on a dataset; they travel with the dataset (or a checkpoint) as JSON,
so generated tokens can be un-normalized later.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Literal, Optional

import torch

from nnit.fileio import atomic_write_json
from nnit.weights.mlp import WeightError, WeightSet

NormalizationMode = Literal["global", "per_role"]
ROLES = ("first.weight", "first.bias", "hidden.weight", "hidden.bias", "last.weight", "last.bias")
"""The parameter roles of ``per_role`` normalization."""


def layer_role(index: int, num_layers: int) -> str:
    """'first', 'hidden' or 'last' for layer ``index`` of an MLP with ``num_layers`` linear layers."""
    if index == num_layers - 1:
        return "last"
    return "first" if index == 0 else "hidden"


def _check_finite_stats(name: str, mean, std) -> None:
    for what, v in (("mean", mean), ("std", std)):
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            raise WeightError(f"normalizer {name} {what} must be a finite number, got {v!r}")
    if std <= 0:
        raise WeightError(f"normalizer {name} std must be > 0, got {std}")


@dataclass(frozen=True)
class WeightNormalizer:
    """Affine map between raw weights and the diffusion model's space."""

    mean: float = 0.0
    """Mean of all raw parameters of the dataset."""
    std: float = 1.0
    """Standard deviation of all raw parameters of the dataset."""
    target_std: float = 1.0
    """Standard deviation of the normalized parameters."""
    mode: NormalizationMode = "global"
    """'global' (the paper) or 'per_role' (``roles`` used; ``mean``/``std`` then only describe the data)."""
    roles: Optional[dict[str, list[float]]] = field(default=None)
    """``per_role`` mode: role -> [mean, std] (see :data:`ROLES`)."""

    def __post_init__(self) -> None:
        _check_finite_stats("global", self.mean, self.std)
        t = self.target_std
        if not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
            raise WeightError(f"normalizer target_std must be a finite number > 0, got {t!r}")
        if self.mode not in ("global", "per_role"):
            raise WeightError(f"normalizer mode must be 'global' or 'per_role', got {self.mode!r}")
        if self.mode == "per_role":
            if not isinstance(self.roles, dict) or set(self.roles) != set(ROLES):
                raise WeightError(f"a per_role normalizer needs [mean, std] for each of {', '.join(ROLES)}")
            for r, ms in self.roles.items():
                if not isinstance(ms, (list, tuple)) or len(ms) != 2:
                    raise WeightError(f"normalizer role {r}: expected [mean, std], got {ms!r}")
                _check_finite_stats(r, *ms)

    @classmethod
    def fit(cls, sets: Iterable[WeightSet], target_std: float = 1.0, mode: NormalizationMode = "global") -> "WeightNormalizer":
        """Mean / std over every parameter of every network (float64), and per role in ``per_role`` mode.

        A role absent from the data (e.g. no hidden-to-hidden layer anywhere) gets the global statistics."""
        acc = {k: [0, 0.0, 0.0] for k in ("all", *ROLES)}
        for ws in sets:
            ws.check_finite()
            L = len(ws.weights)
            for i, (w, b) in enumerate(zip(ws.weights, ws.biases)):
                role = layer_role(i, L)
                for kind, x in (("weight", w), ("bias", b)):
                    v = x.detach().double()
                    for key in ("all", f"{role}.{kind}"):
                        a = acc[key]
                        a[0] += v.numel()
                        a[1] += float(v.sum())
                        a[2] += float((v * v).sum())

        def stats(a) -> tuple[float, float]:
            n, s1, s2 = a
            m = s1 / n
            return m, max(s2 / n - m * m, 0.0) ** 0.5

        if acc["all"][0] < 2:
            raise WeightError("cannot fit a normalizer on fewer than 2 parameters")
        mean, std = stats(acc["all"])
        if std == 0.0:
            raise WeightError("all parameters are equal: the normalizer's std would be 0")
        roles = None
        if mode == "per_role":
            roles = {}
            for r in ROLES:
                m, s = stats(acc[r]) if acc[r][0] >= 2 else (mean, std)
                roles[r] = [m, s if s > 0 else std]
        return cls(mean=mean, std=std, target_std=float(target_std), mode=mode, roles=roles)

    @property
    def scale(self) -> float:
        """Global mode: the factor ``target_std / std``."""
        return self.target_std / self.std

    def _stats(self, role: str) -> tuple[float, float]:
        if self.mode == "per_role":
            m, s = self.roles[role]  # type: ignore[index]
            return m, self.target_std / s
        return self.mean, self.scale

    def apply_tensor(self, x: torch.Tensor, role: str = "hidden.weight") -> torch.Tensor:
        """Normalize a tensor of parameters of ``role`` (ignored in global mode)."""
        m, k = self._stats(role)
        return (x - m) * k

    def invert_tensor(self, x: torch.Tensor, role: str = "hidden.weight") -> torch.Tensor:
        """Inverse of :meth:`apply_tensor`."""
        m, k = self._stats(role)
        return x / k + m

    def _map(self, ws: WeightSet, f) -> WeightSet:
        L = len(ws.weights)
        roles = [layer_role(i, L) for i in range(L)]
        return WeightSet(ws.arch, [f(w, f"{r}.weight") for w, r in zip(ws.weights, roles)],
                         [f(b, f"{r}.bias") for b, r in zip(ws.biases, roles)])

    def apply(self, ws: WeightSet) -> WeightSet:
        return self._map(ws, self.apply_tensor)

    def invert(self, ws: WeightSet) -> WeightSet:
        return self._map(ws, self.invert_tensor)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "WeightNormalizer":
        """Read :meth:`to_dict` output (files from before ``mode`` existed are global)."""
        try:
            roles = data.get("roles")
            return cls(float(data["mean"]), float(data["std"]), float(data["target_std"]), data.get("mode", "global"),
                       {str(k): [float(x) for x in v] for k, v in roles.items()} if roles else None)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise WeightError(f"bad normalization statistics: {err!r}") from None

    def save(self, path: str | os.PathLike) -> Path:
        return atomic_write_json(path, self.to_dict(), indent=2)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "WeightNormalizer":
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            raise WeightError(f"cannot read normalization statistics from {path}: {err}") from None
        try:
            return cls.from_dict(data)
        except WeightError as err:
            raise WeightError(f"cannot read normalization statistics from {path}: {err}") from None
