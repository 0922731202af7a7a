"""The alignment study: are GHN-generated weights structurally aligned across seeds, and SGD ones
not? (Paper Sec. 6.1, Figures 3-5, Tables 1 and 6 — measured here, not assumed.)

* **GHN set**: every member of a trained GHN ensemble generates the study architecture.
* **SGD set**: the same architecture trained from different seeds by plain gradient descent on the
  same supervision — behaviour cloning on the GHN run's teacher-labelled DAgger buffer (robot
  tasks) or cross-entropy on the training images (image tasks). All seeds train at once as one
  batched :class:`~nnit.weights.mlp.WeightSet`.
* **Heatmaps** (:func:`plot_heatmaps`): |W_l| of a few seeds per set, side by side, and the mean
  |W_l| over all seeds (structure survives averaging only if it is aligned).
* **Diversity** (:func:`diversity`): nearest-neighbour L2 distance and cosine similarity of the
  flattened networks within a set (Table 6: high distance, low cosine = no mode collapse).
* **Local correlation** (:func:`local_correlation`): lag-1 correlation of neighbouring rows /
  columns inside each W_l — the spatial locality that patch tokens exploit.
* **Alignment score** (:func:`alignment_score`): the mean Pearson correlation, over pairs of seeds
  and over layers, of the per-layer magnitude maps |W_l|. Permutation-scrambled (unaligned) sets
  score ~0; a set whose neuron i plays the same role in every seed scores high.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from nnit.errors import NNiTError
from nnit.weights.architecture import Architecture
from nnit.weights.mlp import WeightSet


@dataclass(frozen=True)
class SGDConfig:
    """Plain gradient-descent training of the comparison set."""

    steps: int = 2000
    """Adam steps."""
    batch_size: int = 256
    """States / images per network per step."""
    lr: float = 1e-3
    """Adam learning rate."""


def train_sgd_set(arch: Architecture, seeds: list[int], x: torch.Tensor, y: torch.Tensor, loss: str, cfg: SGDConfig,
                  progress: bool = False) -> WeightSet:
    """Train ``len(seeds)`` MLPs of ``arch`` (PyTorch default init, own seed each) on (x, y) at once.

    ``loss`` is ``"mse"`` (behaviour cloning: y are teacher actions) or ``"ce"`` (y are labels).
    Each network sees its own minibatch order.
    """
    from tqdm.auto import tqdm

    sets = [WeightSet.init_random(arch, 1, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
    ws = WeightSet.stack(sets)
    params = [t.requires_grad_() for t in (*ws.weights, *ws.biases)]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    g = torch.Generator().manual_seed(int(seeds[0]) + 7)
    k = len(seeds)
    for _ in tqdm(range(cfg.steps), desc=f"SGD x{k} {arch.hidden_str()}", disable=not progress):
        idx = torch.randint(0, x.shape[0], (k, cfg.batch_size), generator=g)
        out = ws(x[idx])  # (K, B, out)
        if loss == "mse":
            l = (out - y[idx]).pow(2).mean()
        else:
            l = F.cross_entropy(out.flatten(0, 1), y[idx].flatten())
        opt.zero_grad(set_to_none=True)
        (l * k).backward()  # per-network gradients independent of K
        opt.step()
    return ws.detach()


# ============================================================================ metrics
def magnitude_maps(ws: WeightSet) -> list[torch.Tensor]:
    """|W_l| per layer: a list of (N, out, in)."""
    return [w.detach().abs() for w in ws.weights]


def _pairwise_corr(maps: torch.Tensor) -> torch.Tensor:
    """(N, D) -> (N, N) Pearson correlation matrix of the rows."""
    z = maps - maps.mean(1, keepdim=True)
    z = z / (z.norm(dim=1, keepdim=True) + 1e-12)
    return z @ z.T


def alignment_score(ws: WeightSet) -> float:
    """Mean over layers and over pairs of networks of corr(|W_l^i|, |W_l^j|)."""
    if ws.n < 2:
        raise NNiTError("the alignment score needs at least two networks")
    scores = []
    for m in magnitude_maps(ws):
        c = _pairwise_corr(m.flatten(1).double())
        off = c[~torch.eye(ws.n, dtype=torch.bool)]
        scores.append(float(off.mean()))
    return float(np.mean(scores))


def local_correlation(ws: WeightSet) -> float:
    """Mean lag-1 correlation between neighbouring rows and between neighbouring columns of every
    W_l, averaged over networks and layers: the within-network locality a p x p patch relies on
    (~0 for i.i.d. or permutation-scrambled weights)."""
    vals = []
    for w in ws.weights:
        w = w.detach().double()
        for a, b in ((w[:, 1:, :], w[:, :-1, :]), (w[:, :, 1:], w[:, :, :-1])):
            if a.numel() == 0:
                continue
            a = a.flatten(1) - a.flatten(1).mean(1, keepdim=True)
            b = b.flatten(1) - b.flatten(1).mean(1, keepdim=True)
            vals.append(float(((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + 1e-12)).mean()))
    return float(np.mean(vals))


def diversity(ws: WeightSet) -> dict[str, float]:
    """Nearest-neighbour L2 distance and the cosine similarity to that neighbour, averaged over
    networks (paper Table 6), plus the mean pairwise L2 distance."""
    if ws.n < 2:
        raise NNiTError("diversity needs at least two networks")
    v = ws.to_vector().detach().double()
    d = torch.cdist(v, v)
    d.fill_diagonal_(math.inf)
    nn_dist, nn_idx = d.min(1)
    cos = F.cosine_similarity(v, v[nn_idx], dim=1)
    d.fill_diagonal_(0.0)
    n = ws.n
    return {
        "nn_l2": float(nn_dist.mean()),
        "nn_cosine": float(cos.mean()),
        "mean_pairwise_l2": float(d.sum() / (n * (n - 1))),
        "num_networks": n,
    }


# ============================================================================ figures
def plot_heatmaps(sets: dict[str, WeightSet], path: str | Path, seeds_shown: int = 4, title: str = "") -> Path:
    """Figure 3/4 analogue: |W_l| of ``seeds_shown`` networks of each set, and each set's mean over all."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(sets)
    L = next(iter(sets.values())).arch.num_layers
    rows = [(name, i) for name in names for i in range(min(seeds_shown, sets[name].n))] + [(name, "mean") for name in names]
    fig, axes = plt.subplots(len(rows), L, figsize=(2.2 * L, 1.6 * len(rows)), squeeze=False)
    for r, (name, i) in enumerate(rows):
        maps = magnitude_maps(sets[name])
        for l in range(L):
            m = maps[l].mean(0) if i == "mean" else maps[l][i]
            ax = axes[r, l]
            ax.imshow(m.numpy(), aspect="auto", cmap="viridis", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"layer {l + 1}", fontsize=8)
            if l == 0:
                ax.set_ylabel(f"{name}\n{'mean' if i == 'mean' else f'seed {i}'}", fontsize=7)
    fig.suptitle(title or "|W| per layer: rows = seeds", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------- the study (nnit analyze alignment)
ALIGNMENT_PRESETS = {
    "tiny": {"sgd_steps": 50, "networks": 2, "episodes": 1},
    "cpu": {"sgd_steps": 3000, "networks": 16, "episodes": 8},
    "paper": {"sgd_steps": 20000, "networks": 35, "episodes": 64},
}
"""SGD steps, networks per set and evaluation episodes of the study at each preset."""


def alignment_study(ghn: str | Path, arch: str = "64,64,64,64", preset: str = "cpu", networks: int | None = None,
                    out: str | Path | None = None, evaluate: bool = True, seed: int = 0, workers: int | None = None,
                    data_dir: str | Path | None = None, progress: bool = False) -> dict:
    """GHN-generated vs SGD-trained networks of one architecture: alignment score, local correlation, diversity,
    (with ``evaluate``) both sets' task performance and the heatmap figure; writes ``out/alignment.json`` (default
    ``<ghn>/../../alignment``) and returns its contents.

    GHN set: the ensemble's members generate ``arch``. SGD set: ``arch`` trained from seeds ``seed + i`` by
    behaviour cloning on the GHN run's teacher-labelled DAgger buffer (robot tasks) or by cross-entropy (images)."""
    import json

    from nnit.checkpoint import load_checkpoint
    from nnit.fileio import atomic_write_text
    from nnit.ghn.train import load_ghn_ensemble
    from nnit.tasks.registry import get_task

    p = ALIGNMENT_PRESETS[preset]
    model, conf = load_ghn_ensemble(ghn)
    task = get_task(conf["task"], control_mode=conf.get("control_mode"))
    a = Architecture.parse(arch, task.input_dim, task.output_dim)
    n = min(networks or p["networks"], model.k)
    out = Path(out) if out is not None else Path(ghn).parent.parent / "alignment"
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        ghn_set = model.generate([a])[0][torch.arange(n)].detach()
    if task.kind == "robot":
        extra = load_checkpoint(ghn).extra
        x, y, loss = extra["buffer.obs"], extra["buffer.act"], "mse"
    else:
        from nnit.tasks.images import load_split

        x, y = load_split(task, "fit", data_dir=data_dir)
        loss = "ce"
    sgd_set = train_sgd_set(a, [seed + i for i in range(n)], x.float(), y, loss, SGDConfig(steps=p["sgd_steps"]), progress=progress)
    sets = {"GHN": ghn_set, "SGD": sgd_set}
    report: dict = {"task": task.name, "arch": a.to_dict(), "networks_per_set": n, "sgd_steps": p["sgd_steps"], "sets": {}}
    for name, ws in sets.items():
        report["sets"][name] = {"alignment_score": alignment_score(ws), "local_correlation": local_correlation(ws), **diversity(ws)}
    if evaluate:
        from nnit.eval.harness import evaluate as run_eval

        for name, ws in sets.items():
            res = run_eval(task, ws, episodes=p["episodes"], num_workers=workers, data_dir=None if data_dir is None else str(data_dir),
                           progress=progress)
            report["sets"][name].update({k: float(v.mean()) for k, v in res.metrics.items() if k != "std_return"})
    fig = plot_heatmaps(sets, out / "alignment_heatmaps.png", title=f"{task.name} {a}: |W| per layer, GHN vs SGD")
    report["figure"] = str(fig)
    atomic_write_text(out / "alignment.json", json.dumps(report, indent=1))
    return report
