"""Settings shared by every stage: the preset and device names, the token grid, the evaluation protocol, and the
JSON mixin of the config dataclasses.

The presets are ``tiny`` (tests / CI), ``cpu`` (2-core reference run) and ``paper`` (the paper's
hyper-parameters, for a GPU). Each stage owns a frozen config dataclass (one docstring per field) with its
preset table beside it; ``nnit presets`` (:mod:`nnit.cli.presets`) shows all of them in one table, and
``docs/reference/presets.md`` is that table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Literal, Optional

PresetName = Literal["tiny", "cpu", "paper"]
DeviceName = Literal["cpu", "cuda"]
"""The choices of a ``--device`` option (``nnit.distributed.torch_device`` turns one into a torch device)."""


class JSONConfig:
    """Mixin for frozen config dataclasses stored as JSON (checkpoints): ``to_dict`` turns tuples into
    lists, ``from_dict`` ignores unknown keys (configs written by other versions) and turns lists back
    into tuples where the field's default is a tuple."""

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict):
        tuples = {f.name for f in fields(cls) if isinstance(f.default, tuple)}  # type: ignore[arg-type]
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: tuple(v) if k in tuples and isinstance(v, list) else v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class TokenConfig:
    """How MLP weights become tokens (paper Sec. 5.1.2)."""

    patch_size: int = 8
    """p: side of a square weight patch."""
    max_width: int = 64
    """M: the largest layer fan-in/fan-out the grid holds (canvas is M x (M + p))."""
    mode: Literal["padded", "valid"] = "valid"
    """'padded' keeps every patch of the M x (M+p) grid (the paper); 'valid' keeps only patches with real weights."""


TOKENS: dict[str, TokenConfig] = {
    "tiny": TokenConfig(patch_size=8, max_width=64, mode="valid"),
    "cpu": TokenConfig(patch_size=8, max_width=64, mode="valid"),
    "paper": TokenConfig(patch_size=8, max_width=64, mode="padded"),
}


@dataclass(frozen=True)
class EvalConfig:
    """How generated networks are judged (``nnit eval``; the paper's Sec. 6 protocol)."""

    episodes: int = 10
    """Episodes per network (robot tasks); episode e of every network uses seed ``base_seed + e``."""
    top_k: int = 10
    """The protocol keeps the k networks with the best mean return (accuracy) and reports them."""
    num_networks: int = 100
    """Networks sampled per architecture before the top-k cut (the paper: 100)."""
    base_seed: int = 0
    """Seed of episode 0; reported with the results."""
    temperature: float = 1.0
    """NNiT's sampling temperature (``nnit generate --temperature``): the scale of each weight step's fresh
    noise. 1 samples the model's distribution (the paper); the tiny and cpu presets sample at 0.5
    (the comparison: docs/studies/temperature.md)."""
    sampler: str = "ancestral"
    """NNiT's sampler (``nnit generate --sampler``): ``ancestral`` is the paper's; the few-step solvers and how
    they compare: docs/studies/fast-sampling.md."""
    steps: Optional[int] = None
    """Denoising steps of :attr:`sampler` (``nnit generate --steps``); None: the sampler's default (the model's
    T = 1000 for ``ancestral``)."""


REPORT_SEED = 5000
"""Seed of the first fresh episode (``--report-seed``) on which the top-k networks are re-evaluated after the ranking
episodes chose them (``--report-episodes``); disjoint from the ranking seeds of every preset and from the dataset
filter's (100000..)."""

EVAL: dict[str, EvalConfig] = {
    "tiny": EvalConfig(episodes=2, top_k=2, num_networks=4, temperature=0.5),
    # the paper's ancestral sampler respaced to 100 steps: the 1000-step sampler's quality at a tenth of the time on
    # the three robot tasks' Table-4 architectures (docs/studies/fast-sampling.md)
    "cpu": EvalConfig(episodes=10, top_k=10, num_networks=100, temperature=0.5, sampler="ancestral", steps=100),
    "paper": EvalConfig(episodes=50, top_k=10, num_networks=100),
}
