"""What the two baselines (D2NWG, SANE) share: architecture conditioning, timestep embeddings and the
summary of a training history.

Both baselines train on exactly NNiT's data (the kept train networks of a GHN dataset, normalized by
:func:`nnit.ghn.dataset.dataset_normalizer` with the same mode), are sampled per architecture
(``generate(arch, num, seed) -> WeightSet``, un-normalized) and are evaluated by the same harness
through ``nnit generate --checkpoint``. They train with NNiT's loop (:mod:`nnit.training`): AdamW,
warmup + cosine LR, grad clipping, EMA, tqdm, TensorBoard, a JSON-lines log, one atomic checkpoint in
the project format (:mod:`nnit.checkpoint`) and resume.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from nnit.weights.architecture import Architecture, ArchitectureError, WidthVocab

class ArchEmbedding(nn.Module):
    """Architecture -> one conditioning vector: a learned table per hidden-layer slot over the width
    vocabulary (+ an "absent layer" entry), summed over slots (D2NWG's class/architecture conditioning).

    Widths outside the vocabulary raise :class:`ArchitectureError`: a zero-padded fixed-slot model has no
    way to say them (the rigidity the paper attributes to D2NWG)."""

    def __init__(self, vocab: WidthVocab, max_depth: int, dim: int) -> None:
        super().__init__()
        self.vocab, self.max_depth = vocab, max_depth
        self.table = nn.Embedding(max_depth * (len(vocab.widths) + 1), dim)

    def ids(self, arch: Architecture) -> list[int]:
        if arch.depth > self.max_depth:
            raise ArchitectureError(f"{arch.depth} hidden layers exceed this model's {self.max_depth}")
        V = len(self.vocab.widths) + 1
        ids = []
        for slot in range(self.max_depth):
            if slot < arch.depth:
                tok = self.vocab.token_of(arch.hidden[slot]) - len(WidthVocab.SPECIALS) + 1  # raises outside the vocab
            else:
                tok = 0
            ids.append(slot * V + tok)
        return ids

    def forward(self, archs: Sequence[Architecture]) -> torch.Tensor:
        ids = torch.tensor([self.ids(a) for a in archs], device=self.table.weight.device)  # (B, max_depth)
        return self.table(ids).sum(1)  # (B, dim)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (B,) timesteps -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def summarize_history(history: list[dict], key: str = "total") -> tuple[float, float]:
    """Mean of ``key`` over the first and last ~50 logged steps."""
    k = max(1, min(50, len(history) // 5))
    vals = [r[key] for r in history if key in r]
    if not vals:
        return float("nan"), float("nan")
    return sum(vals[:k]) / len(vals[:k]), sum(vals[-k:]) / len(vals[-k:])
