"""Memorization check (the question behind the paper's Table 4): are generated networks
copies of training networks?

For a generated network g of architecture a and the training networks t_1..t_n of a, we align g's
hidden neurons to each t_j (permutations are function-preserving, so a copy with shuffled neurons is
still a copy) and measure the per-parameter RMS distance; the nearest training network's distance is
g's *memorization distance*. The yardstick is the same quantity between training networks (each t_j
against the others). Ratios near 0 mean copies; near 1 mean generated networks are as far from the
training set as training networks are from each other.

Alignment is weight matching (Ainsworth et al. 2023, "Git Re-Basin", its weight-matching objective
solved one layer at a time, front to back): the permutation of hidden layer l maximizes the inner
product of the two networks' incoming rows [W_l P_{l-1}^T | b_l] (the previous layer already
permuted), a linear assignment problem (``scipy.optimize.linear_sum_assignment``).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from nnit.weights.mlp import WeightSet


def _nets(ws: WeightSet) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    return [[(w[i].detach().double(), b[i].detach().double()) for w, b in zip(ws.weights, ws.biases)] for i in range(ws.n)]


def align(net: list[tuple[torch.Tensor, torch.Tensor]], ref: list[tuple[torch.Tensor, torch.Tensor]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``net`` with its hidden neurons permuted to match ``ref`` (same architecture); the function is unchanged."""
    out = []
    prev = None  # permutation of the previous hidden layer: new index j <- old index prev[j]
    L = len(net)
    for l, ((w, b), (wr, br)) in enumerate(zip(net, ref)):
        if prev is not None:
            w = w[:, prev]
        if l < L - 1:
            rows, rows_ref = torch.cat([w, b[:, None]], 1), torch.cat([wr, br[:, None]], 1)
            _, perm = linear_sum_assignment((rows_ref @ rows.T).numpy(), maximize=True)
            perm = torch.as_tensor(perm)
            w, b = w[perm], b[perm]
            prev = perm
        out.append((w, b))
    return out


def _dist(a, b) -> float:
    sq = sum(float(((wa - wb) ** 2).sum() + ((ba - bb) ** 2).sum()) for (wa, ba), (wb, bb) in zip(a, b))
    n = sum(wa.numel() + ba.numel() for wa, ba in a)
    return (sq / n) ** 0.5


def nearest_aligned_distances(generated: WeightSet, train: WeightSet) -> np.ndarray:
    """For each generated network: RMS distance to the nearest training network after alignment."""
    if generated.arch.hidden != train.arch.hidden:
        raise ValueError(f"architectures differ: [{generated.arch.hidden_str()}] vs [{train.arch.hidden_str()}]")
    tr = _nets(train)
    return np.array([min(_dist(align(g, t), t) for t in tr) for g in _nets(generated)])


def train_to_train_median(train: WeightSet) -> float | None:
    """The yardstick: median over training networks of the aligned distance to their nearest other one
    (None for a single network)."""
    tr = _nets(train)
    if len(tr) < 2:
        return None
    return float(np.median([min(_dist(align(t, u), u) for j, u in enumerate(tr) if j != i) for i, t in enumerate(tr)]))


def memorization_stats(generated: WeightSet, train: WeightSet, normalizer=None) -> dict:
    """Generated->nearest-train vs train->nearest-other-train distances (in the normalizer's space if given)."""
    if normalizer is not None:
        generated, train = normalizer.apply(generated), normalizer.apply(train)
    gen = nearest_aligned_distances(generated, train)
    within = train_to_train_median(train)  # one training network: None, and so is the ratio
    return {
        "arch": list(generated.arch.hidden),
        "num_generated": generated.n,
        "num_train": train.n,
        "gen_to_train_median": float(np.median(gen)),
        "gen_to_train_min": float(gen.min()),
        "train_to_train_median": within,
        "ratio_median": None if within is None else float(np.median(gen)) / within,
    }
