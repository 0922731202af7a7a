"""Global weight normalization (paper Appendix A: "all weights are globally normalized to a target
standard deviation", following G.pt, Peebles et al. 2022).

``fit`` measures the mean and std of every real parameter in a dataset; ``apply`` maps
``x -> (x - mean) / std * target_std``; ``invert`` is its exact inverse (up to float rounding).
The statistics travel with the dataset as JSON, so generated tokens can be un-normalized later.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import torch

from nnit.weights.mlp import WeightError, WeightSet


@dataclass(frozen=True)
class WeightNormalizer:
    """Affine map between raw weights and the diffusion model's space."""

    mean: float = 0.0
    """Mean of all raw parameters of the dataset."""
    std: float = 1.0
    """Standard deviation of all raw parameters of the dataset."""
    target_std: float = 1.0
    """Standard deviation of the normalized parameters."""

    def __post_init__(self) -> None:
        for name in ("mean", "std", "target_std"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")):
                raise WeightError(f"normalizer {name} must be a finite number, got {v!r}")
        if self.std <= 0 or self.target_std <= 0:
            raise WeightError(f"normalizer std and target_std must be > 0, got {self.std}, {self.target_std}")

    @classmethod
    def fit(cls, sets: Iterable[WeightSet], target_std: float = 1.0) -> "WeightNormalizer":
        """Global mean / std over every parameter of every network (float64 accumulation)."""
        total, s1, s2 = 0, 0.0, 0.0
        for ws in sets:
            ws.check_finite()
            v = ws.to_vector().detach().double()
            total += v.numel()
            s1 += float(v.sum())
            s2 += float((v * v).sum())
        if total < 2:
            raise WeightError("cannot fit a normalizer on fewer than 2 parameters")
        mean = s1 / total
        var = max(s2 / total - mean * mean, 0.0)
        if var == 0.0:
            raise WeightError("all parameters are equal: the normalizer's std would be 0")
        return cls(mean=mean, std=var**0.5, target_std=float(target_std))

    @property
    def scale(self) -> float:
        return self.target_std / self.std

    def apply_tensor(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.scale

    def invert_tensor(self, x: torch.Tensor) -> torch.Tensor:
        return x / self.scale + self.mean

    def apply(self, ws: WeightSet) -> WeightSet:
        f = self.apply_tensor
        return WeightSet(ws.arch, [f(w) for w in ws.weights], [f(b) for b in ws.biases])

    def invert(self, ws: WeightSet) -> WeightSet:
        f = self.invert_tensor
        return WeightSet(ws.arch, [f(w) for w in ws.weights], [f(b) for b in ws.biases])

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "WeightNormalizer":
        try:
            data = json.loads(Path(path).read_text())
            return cls(float(data["mean"]), float(data["std"]), float(data["target_std"]))
        except (OSError, KeyError, TypeError, ValueError) as err:
            raise WeightError(f"cannot read normalization statistics from {path}: {err}") from None
