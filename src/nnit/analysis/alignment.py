"""The alignment study: are GHN-generated weights structurally aligned across seeds, and SGD ones
not? (Paper Sec. 6.1, Figures 3-5, Tables 1 and 6 — measured here, not assumed.)

* **GHN set**: every member of a trained GHN ensemble generates the study architecture.
* **SGD set**: the same architecture trained from different seeds by plain gradient descent on the
  same supervision, to about the GHN set's quality (the paper compares networks of equal success).
  Robot tasks (``sgd="dagger"``, the default): DAgger with the GHN's teacher and schedule until the
  set's mean success is within 10 points of the GHN set's or an iteration cap
  (:mod:`nnit.analysis.sgd_dagger`). Image tasks, and robot tasks with ``sgd="bc"``: a fixed number
  of Adam steps of cross-entropy on the training images, or of behaviour cloning on the GHN run's
  teacher-labelled DAgger buffer (:func:`train_sgd_set`; a released checkpoint has no buffer). All
  seeds train at once as one batched :class:`~nnit.weights.mlp.WeightSet`.
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
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.nn import functional as F

from nnit.analysis.sgd_dagger import DaggerSGDConfig, train_sgd_dagger
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
@dataclass(frozen=True)
class AlignmentPreset:
    """Scale of the alignment study."""

    networks: int
    """Networks per set (capped by the GHN ensemble's size; paper: 35)."""
    episodes: int
    """Final evaluation episodes per network, seeds 0 .. episodes - 1 (both sets)."""
    sgd_steps: int
    """Adam steps of the fixed-length SGD training (``sgd="bc"``, and image tasks)."""
    dagger: DaggerSGDConfig = field(default_factory=DaggerSGDConfig)
    """Checks and iteration cap of the DAgger-trained SGD set (``sgd="dagger"``, robot tasks)."""


ALIGNMENT_PRESETS: dict[str, AlignmentPreset] = {
    "tiny": AlignmentPreset(networks=2, episodes=1, sgd_steps=50,
                            dagger=DaggerSGDConfig(max_iterations=2, check_every=1, check_episodes=1)),
    # cpu / paper: the cap is the preset's longest GHN DAgger run (StackCubeEasy-v1), so the SGD set never gets more
    # iterations than the GHN had on the hardest task; the check stops within half the study's 10-point tolerance,
    # so that the final evaluation, on other episodes, still lands within it
    "cpu": AlignmentPreset(networks=16, episodes=8, sgd_steps=3000,
                           dagger=DaggerSGDConfig(max_iterations=1000, check_every=25, check_episodes=8, margin=0.05)),
    "paper": AlignmentPreset(networks=35, episodes=64, sgd_steps=20000,
                             dagger=DaggerSGDConfig(max_iterations=1500, check_every=25, check_episodes=8, margin=0.05)),
}
"""The study's scale at each preset."""

SGDMethod = Literal["dagger", "bc"]
"""How the SGD set is trained: DAgger to the GHN set's quality (robot tasks) or a fixed number of Adam steps on fixed
data (behaviour cloning on the GHN run's buffer, or cross-entropy for image tasks)."""


def alignment_study(ghn: str | Path, arch: str = "64,64,64,64", preset: str = "cpu", networks: int | None = None,
                    out: str | Path | None = None, evaluate: bool = True, seed: int = 0, workers: int | None = None,
                    data_dir: str | Path | None = None, progress: bool = False, sgd: SGDMethod | None = None,
                    sgd_max_iterations: int | None = None) -> dict:
    """GHN-generated vs SGD-trained networks of one architecture: alignment score, local correlation, diversity,
    (with ``evaluate``) both sets' task performance and the heatmap figure; writes ``out/alignment.json`` (default
    ``<ghn>/../../alignment``) and returns its contents.

    GHN set: the ensemble's members generate ``arch``. SGD set: ``arch`` trained from seeds ``seed + i``, with ``sgd``
    (default: ``"dagger"`` for robot tasks, ``"bc"`` — cross-entropy — for image tasks):

    * ``"dagger"``: DAgger with the GHN's teacher (the checkpoint's ``teacher_checkpoint``, None = scripted) and its
      training schedule until the set's mean success on the preset's check episodes is within the preset's margin
      (5 points, half the study's 10-point tolerance) of the GHN set's on the same episodes, or ``sgd_max_iterations``
      (default: the preset's cap); see :mod:`nnit.analysis.sgd_dagger`. ``report["sgd"]`` records the target, whether
      it was met, iterations, gradient steps and seconds, and ``report["quality"]`` both sets' success on the final
      evaluation episodes.
    * ``"bc"``: the preset's ``sgd_steps`` Adam steps of behaviour cloning on the checkpoint's DAgger buffer (robot
      tasks; a released checkpoint has none) or of cross-entropy on the training images.

    ``arch`` defaults to [64,64,64,64], the widest architecture of the space the GHNs are trained on ({16,32,64}^4):
    the GHN's decoder paints every layer as a crop of a ``GHNConfig.canvas`` = 64 square canvas (the cpu and paper
    presets), so no layer may be wider than 64. The paper's [256,256,256] needs a canvas of 256 (and 3 hidden layers,
    which the GHNs never train on); any architecture that fits can be given."""
    import json

    from nnit.checkpoint import load_checkpoint
    from nnit.fileio import atomic_write_text
    from nnit.ghn.train import config_from_dict, load_ghn_ensemble
    from nnit.tasks.registry import get_task

    if preset not in ALIGNMENT_PRESETS:
        raise NNiTError(f"unknown preset {preset!r}; choose one of {', '.join(ALIGNMENT_PRESETS)}")
    p = ALIGNMENT_PRESETS[preset]
    model, conf = load_ghn_ensemble(ghn)
    task = get_task(conf["task"], control_mode=conf.get("control_mode"))
    sgd = sgd or ("dagger" if task.kind == "robot" else "bc")
    if sgd not in ("dagger", "bc"):
        raise NNiTError(f"unknown SGD method {sgd!r}; choose dagger or bc")
    if sgd == "dagger" and task.kind != "robot":
        raise NNiTError(f"{task.name} is an image task: its SGD set trains by cross-entropy (sgd='bc')")
    a = Architecture.parse(arch, task.input_dim, task.output_dim)
    n = min(networks or p.networks, model.k)
    out = Path(out) if out is not None else Path(ghn).parent.parent / "alignment"
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        ghn_set = model.generate([a])[0][torch.arange(n)].detach()
    seeds = [seed + i for i in range(n)]
    t0 = time.perf_counter()
    if sgd == "dagger":
        from nnit.eval.harness import CPUEvaluator

        dcfg = p.dagger if sgd_max_iterations is None else replace(p.dagger, max_iterations=int(sgd_max_iterations))
        if dcfg.check_seed < p.episodes:
            raise NNiTError(f"check seeds from {dcfg.check_seed} overlap the final evaluation's 0 .. {p.episodes - 1}")
        schedule = config_from_dict(conf["train"])
        teacher = conf.get("teacher_checkpoint")
        with CPUEvaluator(task, num_workers=workers) as ev:
            ghn_check = ev.evaluate(ghn_set, episodes=dcfg.check_episodes, base_seed=dcfg.check_seed)
            ghn_check_success = float(ghn_check.metrics["success_rate"].mean())
            res = train_sgd_dagger(task, a, seeds, schedule, ghn_check_success - dcfg.margin, dcfg, teacher_checkpoint=teacher,
                                   num_workers=workers, evaluator=ev, progress=progress)
        sgd_set = res.weights
        sgd_info = {
            "method": "dagger", "teacher": teacher or "scripted", "margin": dcfg.margin, "max_iterations": dcfg.max_iterations,
            "check_every": dcfg.check_every, "check_episodes": dcfg.check_episodes,
            "check_seeds": [dcfg.check_seed, dcfg.check_seed + dcfg.check_episodes - 1], "ghn_check_success": ghn_check_success,
            "schedule": {f: getattr(schedule, f) for f in ("beta0", "beta_decay", "buffer_size", "episodes_per_iteration",
                                                           "updates_per_iteration", "batch_size", "lr_start", "lr_end",
                                                           "grad_clip", "seed")},
            **res.to_dict(),
        }
    else:
        if task.kind == "robot":
            extra = load_checkpoint(ghn).extra
            if "buffer.obs" not in extra:
                raise NNiTError(f"{ghn} holds no DAgger buffer (a released checkpoint); train the SGD set with sgd='dagger'")
            x, y, loss = extra["buffer.obs"], extra["buffer.act"], "mse"
        else:
            from nnit.tasks.images import load_split

            x, y = load_split(task, "fit", data_dir=data_dir)
            loss = "ce"
        sgd_set = train_sgd_set(a, seeds, x.float(), y, loss, SGDConfig(steps=p.sgd_steps), progress=progress)
        sgd_info = {"method": "bc" if loss == "mse" else "cross-entropy", "gradient_steps": p.sgd_steps,
                    "seconds": round(time.perf_counter() - t0, 1)}
    sets = {"GHN": ghn_set, "SGD": sgd_set}
    report: dict = {"task": task.name, "arch": a.to_dict(), "networks_per_set": n, "sgd_seeds": [seeds[0], seeds[-1]],
                    "sgd": sgd_info, "sets": {}}
    for name, ws in sets.items():
        report["sets"][name] = {"alignment_score": alignment_score(ws), "local_correlation": local_correlation(ws), **diversity(ws)}
    if evaluate:
        from nnit.eval.harness import evaluate as run_eval

        for name, ws in sets.items():
            res_eval = run_eval(task, ws, episodes=p.episodes, num_workers=workers, data_dir=None if data_dir is None else str(data_dir),
                                progress=progress)
            report["sets"][name].update({k: float(v.mean()) for k, v in res_eval.metrics.items() if k != "std_return"})
        metric = "success_rate" if task.kind == "robot" else "accuracy"
        g, s_ = report["sets"]["GHN"][metric], report["sets"]["SGD"][metric]
        report["quality"] = {"metric": metric, "GHN": g, "SGD": s_, "gap_points": round(100 * (g - s_), 2),
                             "episodes": p.episodes if task.kind == "robot" else None,
                             "seeds": [0, p.episodes - 1] if task.kind == "robot" else None}
    fig = plot_heatmaps(sets, out / "alignment_heatmaps.png", title=f"{task.name} {a}: |W| per layer, GHN vs SGD ({sgd_info['method']})")
    report["figure"] = str(fig)
    atomic_write_text(out / "alignment.json", json.dumps(report, indent=1))
    return report
