"""Synthetic stand-ins for GHN weights shared by the NNiT tests."""

from __future__ import annotations

import math

import torch

from nnit.weights import Architecture, WeightSet


def smooth_weights(arch: Architecture, n: int, seed: int, max_width: int = 64) -> WeightSet:
    """Low-rank smooth fields of the canvas: W[o, i] = sum_k c_k f_k(o) g_k(i), so patches are correlated and
    neuron i means the same thing for every width (a stand-in for GHN weights)."""
    g = torch.Generator().manual_seed(seed)
    u = torch.arange(max_width).float() / max_width
    f = torch.stack([torch.sin(3 * u), torch.cos(2 * u), u - 0.5], 1)  # (M, 3)
    ws, bs = [], []
    for o, i in arch.layer_shapes:
        c = 1 + 0.3 * torch.randn(n, 3, generator=g)
        ws.append(torch.einsum("nk,ok,ik->noi", c, f[:o], f[:i]) / math.sqrt(i))
        bs.append(0.5 * c[:, :1] * f[:o, 1])
    return WeightSet(arch, ws, bs)
