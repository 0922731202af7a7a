"""Training NNiT with the Mixture of Noise Levels (paper Sec. 5.3, Appendix C, Table 7).

``train(config, data, out_dir)`` runs AdamW (no weight decay) with a cosine LR schedule after a
linear warmup, gradient clipping, an EMA of the weights and bf16 autocast on CUDA only, on the project's
trainer (:mod:`nnit.training`: tqdm progress, TensorBoard scalars ``losses/*``, ``train/*``,
``train_log.jsonl``, checkpoints, resume, signal stop). Batches are length-bucketed
(:meth:`NNiTDataset.batch_at`) so padding-free batches stay short. Everything needed to continue
lives in one checkpoint file in the project's one format (:mod:`nnit.checkpoint`;
``checkpoint.safetensors``: model, EMA, optimizer, noise RNG; step, configs and data metadata as JSON
in the safetensors header — no pickle), written atomically (tmp + rename).
``train(..., resume=True)`` rebuilds the model from the checkpoint's own config and continues the
step count, the LR schedule, the data stream and the TensorBoard curve. Ctrl-C or SIGTERM stops a run
after the step in progress and checkpoints that step (:class:`TrainingStopped`), so a stopped run loses
nothing; a second signal stops at once.

Data parallel: under ``torchrun --nproc_per_node=N -m nnit train ...`` every process draws the same
global batch, timesteps and noise and computes the loss of its ``batch_size / N`` networks; the gradients
are averaged (:mod:`nnit.distributed`), so N processes take exactly the steps of one. Rank 0 writes the
checkpoint, the logs and TensorBoard.

The data are any in-memory list of normalized :class:`~nnit.weights.WeightSet` (N networks of one
architecture each); the GHN dataset plugs in here.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Optional, Sequence

import torch
from torch import nn

from nnit import distributed as dist
from nnit.checkpoint import DEFAULT_NAME, Checkpoint, CheckpointError
from nnit.checkpoint import load_checkpoint as load_core_checkpoint
from nnit.config import JSONConfig
from nnit.diffusion.arch_codes import ArchCodec, ArchEncoding, codec_from_dict, default_code_dim, make_codec
from nnit.diffusion.gaussian import GaussianDiffusion, linear_betas, sample_monl_timesteps
from nnit.diffusion.model import NNiT, NNiTConfig, nnit_config
from nnit.errors import NNiTError
from nnit.stopping import TrainingStopped  # noqa: F401  (re-exported: what a stopped train() raises)
from nnit.training import LoopConfig, Trainer, TrainResult, cosine_lr
from nnit.weights.architecture import Architecture, get_split
from nnit.weights.mlp import WeightSet
from nnit.weights.normalize import WeightNormalizer
from nnit.weights.tokenize import PatchGrid, collate_tokens

CHECKPOINT_NAME = DEFAULT_NAME
CHECKPOINT_KIND = "nnit"
"""``meta["kind"]`` of an NNiT checkpoint (the GHN's is "ghn_ensemble")."""

# ============================================================================ config
@dataclass(frozen=True)
class TrainConfig(JSONConfig):
    """Everything that defines an NNiT training run (stored in its checkpoint)."""

    model: str = "NNiT-Ti"
    """Model size preset (``nnit.diffusion.model.MODEL_PRESETS``)."""
    token_mode: Literal["padded", "valid"] = "valid"
    """'padded': the paper's full M x (M+p) grid per layer; 'valid': only patches holding real weights."""
    patch_size: int = 8
    """p: weight patch side."""
    max_width: int = 64
    """M: the widest layer the grid holds."""
    arch_widths: tuple[int, ...] = (16, 32, 64)
    """The architecture token vocabulary (hidden widths); with ``arch_encoding="value"`` the grid sampled codes
    decode to, whose ends are the range of widths the codes express (:func:`split_arch_settings`: the split's grid)."""
    arch_dim: int = 8
    """Size of an architecture code (vocab: a power of two > vocabulary size + 2; value: even, >= 6)."""
    arch_encoding: ArchEncoding = "vocab"
    """How a hidden width is coded (``nnit.diffusion.arch_codes``): ``vocab``, a fixed code per vocabulary width
    (the paper's tokens), or ``value``, Fourier features of the width's value, so that any width in the range has
    a code and unseen widths lie between seen ones. Depth is positional either way."""
    max_depth: int = 8
    """Deepest MLP (hidden layers) the position tables hold."""
    layer_positions: Literal["absolute", "both_ends"] = "absolute"
    """How the model embeds a layer's index (:attr:`nnit.diffusion.model.NNiTConfig.layer_positions`): from the input
    (the paper) or from both ends, so that a depth between the trained depths reads as seen positions."""
    num_timesteps: int = 1000
    """T of the linear schedule (Table 7)."""
    parameterization: Literal["eps", "v"] = "v"
    """What the network outputs: 'eps' (the paper) or 'v' (eps = sqrt(1-a) x_t + sqrt(a) v); the loss is eps-MSE either way."""
    normalization: Literal["global", "per_role"] = "per_role"
    """Weight normalization fitted on the training networks (:mod:`nnit.weights.normalize`): 'global'
    (the paper) or 'per_role' (first / hidden / output layer weights and biases each to unit std)."""
    p_joint: float = 0.5
    """MoNL: probability of joint mode (t_a = t_w); else conditional (t_a = 0). Paper: 0.5."""
    min_snr_gamma: float = 0.0
    """Min-SNR-gamma loss weighting (Hang et al. 2023): each sample's eps-MSE of a noised modality is weighted by
    min(SNR(t), gamma) / SNR(t), which caps the weight of the low-noise steps. 0 = unweighted (the paper)."""
    monl_per: Literal["sample", "batch"] = "sample"
    """Draw the MoNL mode per sample or once per batch."""
    p_prior: float = 0.0
    """Probability of the architecture-prior mode (t_a = t, t_w = T, weights hidden; taken from the conditional
    share): it teaches the marginal p(a) that architecture-first joint sampling draws from, which valid-token
    models need because their weight-token layout reveals the architecture. 0 = the paper's two modes."""
    steps: int = 20000
    """Optimizer steps in total (a resumed run continues up to this)."""
    batch_size: int = 16
    """Networks per step."""
    lr: float = 3e-4
    """Peak learning rate (after warmup)."""
    min_lr: float = 3e-5
    """Learning rate at the end of the cosine decay."""
    warmup_steps: int = 200
    """Linear warmup from 0 to ``lr``."""
    weight_decay: float = 0.0
    """AdamW weight decay (paper: 0)."""
    grad_clip: float = 1.0
    """Max global gradient norm."""
    ema_decay: float = 0.999
    """EMA rate of the sampling weights."""
    bf16: bool = True
    """bf16 autocast when training on CUDA (never on CPU)."""
    seed: int = 0
    """Seed of the model init and of the data / noise stream."""
    bucket_pool: int = 8
    """Length bucketing: networks are drawn in pools of ``bucket_pool`` batches, sorted by token count and
    cut into batches, so a batch pads little (``NNiTDataset.batch_at``); 1 = independent uniform batches."""
    arch_balance: float = 0.0
    """Architecture-balanced sampling: a network of an architecture holding n training networks is drawn with
    weight n ** -arch_balance. 0 = every network equally often (the paper); 1 = every architecture equally
    often, so architectures the GHN ensemble kept few networks of are not under-trained. A data-stream setting:
    ``nnit train --arch-balance`` may change it when continuing a run (``train(..., continuation=...)``)."""
    log_every: int = 10
    """TensorBoard logging interval (steps)."""
    ckpt_every: int = 500
    """Checkpoint interval (steps); one is always written at the end."""


    def model_config(self) -> NNiTConfig:
        return nnit_config(self.model, self.patch_size, self.max_width, self.arch_dim, self.max_depth, self.layer_positions)

    def codec(self) -> ArchCodec:
        """The architecture codec of this config (``arch_encoding`` over ``arch_widths``, ``arch_dim``)."""
        return make_codec(self.arch_encoding, self.arch_widths, self.arch_dim)


TRAIN_PRESETS: dict[str, TrainConfig] = {
    # seconds on a laptop core: proves plumbing and that the loss falls
    "tiny": TrainConfig(model="NNiT-XS", steps=200, batch_size=8, lr=1e-3, min_lr=1e-4, warmup_steps=20,
                        ema_decay=0.95, p_prior=0.1, log_every=10, ckpt_every=100),
    # the 2-core reference run: a small model, valid tokens, a high learning rate (the model is optimization-limited
    # on CPU; the measurements behind these values: docs/studies/preset-choices.md)
    "cpu": TrainConfig(model="NNiT-Ti", steps=30000, batch_size=16, lr=1e-3, min_lr=3e-5, warmup_steps=200,
                       ema_decay=0.999, p_prior=0.1, ckpt_every=500),
    # paper Table 7: epsilon prediction, AdamW without weight decay, grad clip 1, EMA 0.9999, cosine 7e-5 -> 3e-5 after
    # 500 warm-up steps, batch 16; 1000 epochs of 6,400 policies = 400k steps (PAPER_STEPS: 1300 epochs for the
    # grasping tasks); the model size is not given
    "paper": TrainConfig(model="NNiT-S", token_mode="padded", normalization="global", parameterization="eps", steps=400_000,
                         batch_size=16, lr=7e-5, min_lr=3e-5, warmup_steps=500, ema_decay=0.9999, ckpt_every=5000, log_every=50),
}

CPU_STEPS = {"PickCube-v1": 60_000, "StackCubeEasy-v1": 60_000}
"""NNiT steps of the ``cpu`` preset for the grasping tasks, which need a longer schedule than the others
(docs/studies/preset-choices.md)."""


PAPER_STEPS = {"PickCube-v1": 1300 * 400, "StackCubeEasy-v1": 1300 * 400}
"""The ``paper`` preset's steps where Table 7 gives 1300 epochs (of 6,400 policies at batch 16: 400 steps each)."""


def train_config(preset: str, task: str | None = None) -> TrainConfig:
    """The preset's NNiT training config for ``task``: :data:`TRAIN_PRESETS` with the tasks' longer schedules
    (``cpu``: :data:`CPU_STEPS`; ``paper``: :data:`PAPER_STEPS`, Table 7's epochs)."""
    if preset not in TRAIN_PRESETS:
        raise NNiTError(f"unknown preset {preset!r}; choose one of {', '.join(TRAIN_PRESETS)}")
    cfg = TRAIN_PRESETS[preset]
    longer = {"cpu": CPU_STEPS, "paper": PAPER_STEPS}.get(preset, {})
    if task in longer:
        cfg = replace(cfg, steps=longer[task])
    return cfg


def split_arch_settings(split: str, encoding: ArchEncoding) -> dict:
    """The TrainConfig fields that make the architecture codes fit a split's width grid: ``arch_widths`` = the
    split's grid (the vocabulary, or the value codes' decoding grid and range) and the smallest ``arch_dim``
    that holds it (:func:`~nnit.diffusion.arch_codes.default_code_dim`; the paper's split: (16, 32, 64) and 8,
    the presets' values)."""
    widths = get_split(split).widths
    return {"arch_widths": tuple(widths), "arch_dim": default_code_dim(encoding, len(widths)), "arch_encoding": encoding}


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to ``lr`` over ``warmup_steps``, then cosine decay to ``min_lr`` at ``steps``."""
    return cosine_lr(step, cfg.steps, cfg.lr, cfg.min_lr, cfg.warmup_steps)


# ============================================================================ data
@dataclass
class NNiTBatch:
    """One training batch: architecture codes and weight tokens of B networks."""

    arch_codes: torch.Tensor  # (B, S, d_a) +-1 codes
    arch_mask: torch.Tensor  # (B, S) bool
    values: torch.Tensor  # (B, T, p*p) normalized weights, 0 on padding
    positions: torch.Tensor  # (B, T, 3) long
    token_mask: torch.Tensor  # (B, T) bool
    element_mask: torch.Tensor  # (B, T, p*p) bool
    archs: list[Architecture]

    def rows(self, rows: slice) -> "NNiTBatch":
        """The networks ``rows`` of the batch (a data-parallel rank's share), padded as the whole batch."""
        t = [x[rows] for x in (self.arch_codes, self.arch_mask, self.values, self.positions, self.token_mask, self.element_mask)]
        return NNiTBatch(*t, self.archs[rows])

    def hide_weights(self, rows: torch.Tensor) -> "NNiTBatch":
        """The batch with the weight tokens of ``rows`` ((B,) bool) removed from attention and from the loss
        (the architecture-prior mode of MoNL)."""
        keep = ~rows.to(self.token_mask.device).unsqueeze(-1)  # (B, 1)
        return NNiTBatch(self.arch_codes, self.arch_mask, self.values * keep.unsqueeze(-1), self.positions,
                         self.token_mask & keep, self.element_mask & keep.unsqueeze(-1), self.archs)

    def to(self, device: torch.device | str) -> "NNiTBatch":
        t = [x.to(device) for x in (self.arch_codes, self.arch_mask, self.values, self.positions, self.token_mask, self.element_mask)]
        return NNiTBatch(*t, self.archs)


class NNiTDataset:
    """Normalized weight sets (one per architecture, N networks each), tokenized once.

    Two ways to draw a batch, both picking networks independently with replacement — uniformly, or with
    ``arch_balance = b > 0`` each network of an architecture with n networks with probability
    proportional to n ** -b (b = 1: every architecture equally often):

    * :meth:`sample` — B independent uniform picks from ``generator``; the batch is padded to its
      longest network.
    * :meth:`batch_at` — **length-bucketed** and stateless: for pool ``j = step // pool_batches`` a
      generator seeded by ``(seed, j)`` draws ``pool_batches * B`` uniform picks, sorts them by token
      count (stable, so ties keep their random order) and cuts them into ``pool_batches`` batches,
      served in a random order. Each network is still a uniform draw, but a batch holds networks of
      similar length, so valid-mode batches carry little padding (the paper's architectures: a random
      batch of 16 pads to ~224 tokens, a pool of 8 batches to ~136; the mean is ~121). Being a pure
      function of the step, the stream resumes exactly without any saved state.
    """

    def __init__(self, sets: Sequence[WeightSet], grid: PatchGrid, mode: str, codec: ArchCodec,
                 arch_balance: float = 0.0) -> None:
        if not sets:
            raise NNiTError("an NNiT dataset needs at least one weight set")
        if not math.isfinite(arch_balance) or arch_balance < 0:
            raise NNiTError(f"arch_balance must be a finite number >= 0, got {arch_balance}")
        self.grid, self.mode, self.codec = grid, mode, codec
        self.tokens = [grid.tokenize(ws.detach().to("cpu", torch.float32), mode) for ws in sets]
        self.codes = [codec.encode(ws.arch) for ws in sets]  # raises for widths outside the vocabulary
        self.index = [(i, k) for i, t in enumerate(self.tokens) for k in range(t.values.shape[0])]
        self.archs = [ws.arch for ws in sets]
        self.lengths = torch.tensor([self.tokens[i].num_tokens for i, _ in self.index])  # (N_total,)
        self.arch_balance = float(arch_balance)
        per_set = torch.tensor([float(t.values.shape[0]) for t in self.tokens])
        self.pick_weights = per_set[[i for i, _ in self.index]] ** -self.arch_balance  # (N_total,) unnormalized

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` network indices drawn with replacement (uniform, or architecture-balanced; class docstring)."""
        if self.arch_balance == 0:  # the original stream, kept bit-identical so older runs resume exactly
            return torch.randint(len(self.index), (n,), generator=generator)
        return torch.multinomial(self.pick_weights, n, replacement=True, generator=generator)

    def arch_shares(self) -> dict[tuple[int, ...], float]:
        """The expected share of draws of each architecture (keyed by its hidden widths)."""
        shares: dict[tuple[int, ...], float] = {}
        total = float(self.pick_weights.sum())
        for (i, _), w in zip(self.index, self.pick_weights.tolist()):
            hidden = tuple(self.archs[i].hidden)
            shares[hidden] = shares.get(hidden, 0.0) + w / total
        return shares

    def __len__(self) -> int:
        return len(self.index)

    def sample(self, batch_size: int, generator: torch.Generator) -> NNiTBatch:
        """B uniform picks from ``generator`` (no bucketing)."""
        return self.collate(self.draw(batch_size, generator).tolist())

    def bucket_indices(self, step: int, batch_size: int, pool_batches: int, seed: int = 0) -> list[int]:
        """The networks of batch ``step`` of the length-bucketed stream (see the class docstring)."""
        pool_batches = max(int(pool_batches), 1)
        pool, slot = divmod(int(step), pool_batches)
        g = torch.Generator().manual_seed((int(seed) * 1_000_003 + pool) % (2**63))
        picks = self.draw(pool_batches * batch_size, g)  # (K*B,)
        order = torch.sort(self.lengths[picks], stable=True).indices
        batches = picks[order].view(pool_batches, batch_size)  # (K, B), rows of similar length
        return batches[torch.randperm(pool_batches, generator=g)[slot]].tolist()

    def batch_at(self, step: int, batch_size: int, pool_batches: int = 8, seed: int = 0) -> NNiTBatch:
        """Batch ``step`` of the length-bucketed stream; ``pool_batches = 1`` is plain uniform sampling."""
        return self.collate(self.bucket_indices(step, batch_size, pool_batches, seed))

    def collate(self, picks: Sequence[int]) -> NNiTBatch:
        """The networks ``picks`` (indices into :attr:`index`) as one batch, padded to the longest."""
        items, codes = [], []
        for j in picks:
            i, k = self.index[j]
            t = self.tokens[i]
            items.append(type(t)(t.arch, t.mode, t.values[k : k + 1], t.positions, t.element_mask))
            codes.append(self.codes[i])
        tb = collate_tokens(items)
        B, S = len(picks), max(c.shape[0] for c in codes)
        arch_codes = torch.zeros(B, S, self.codec.dim)
        arch_mask = torch.zeros(B, S, dtype=torch.bool)
        for b, c in enumerate(codes):
            arch_codes[b, : c.shape[0]] = c
            arch_mask[b, : c.shape[0]] = True
        return NNiTBatch(arch_codes, arch_mask, tb.values * tb.element_mask, tb.positions, tb.token_mask, tb.element_mask, tb.archs)


# ============================================================================ loss
def nnit_losses(
    model: nn.Module, diffusion: GaussianDiffusion, batch: NNiTBatch, t_a: torch.Tensor, t_w: torch.Tensor,
    generator: Optional[torch.Generator] = None, parameterization: str = "eps",
    noise: Optional[tuple[torch.Tensor, torch.Tensor]] = None,
    shown_fraction: Optional[float] = None,
    arch_likelihood: str = "discretized",
    min_snr_gamma: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Paper Eq. 5: sum over modalities of eps-MSE + L_vb, each a masked per-sample mean, averaged over the batch
    (the weight terms over the samples that show weights: not those in architecture-prior mode). ``shown_fraction``
    is the share of the *global* batch that shows weights (data-parallel ranks pass it so that their averaged
    gradients equal one process's); default: this batch's share.

    Weight padding entries are outside the state (held at 0, no loss); the arch eps target is 0 where t_a = 0.
    ``noise`` = (weight noise, arch noise) drawn by the caller; else both are drawn from ``generator``.
    ``arch_likelihood``: the decoder term of the architecture codes (``ArchCodec.likelihood``: discretized with 2
    bins for +-1 vocabulary codes, continuous for value codes). ``min_snr_gamma`` > 0 weights each sample's eps-MSE
    by :meth:`GaussianDiffusion.min_snr_weight` (1 at t = 0, the clean boundary); L_vb is not weighted."""
    dev = batch.values.device
    wmask = batch.element_mask & batch.token_mask.unsqueeze(-1)  # (B, T, p*p)
    if noise is None:
        noise = (torch.randn(batch.values.shape, generator=generator), torch.randn(batch.arch_codes.shape, generator=generator))
    noise_w, noise_a = (n.to(dev) for n in noise)
    xt_w = diffusion.add_noise(batch.values, noise_w, t_w) * wmask  # (B, T, p*p)
    xt_a = diffusion.add_noise(batch.arch_codes, noise_a, t_a)  # (B, S, d_a)
    out_a, v_a, out_w, v_w = model(xt_a, xt_w, batch.positions, t_a, t_w, batch.token_mask, batch.arch_mask)
    eps_a = diffusion.eps_from_output(out_a.float(), xt_a, t_a, parameterization)  # (B, S, d_a)
    eps_w = diffusion.eps_from_output(out_w.float(), xt_w, t_w, parameterization)  # (B, T, p*p)
    lw = diffusion.hybrid_loss(batch.values, xt_w, t_w, noise_w, eps_w, v_w, wmask, "continuous")
    la = diffusion.hybrid_loss(batch.arch_codes, xt_a, t_a, noise_a, eps_a, v_a, batch.arch_mask.unsqueeze(-1),
                               arch_likelihood, 2)  # type: ignore[arg-type]
    if min_snr_gamma > 0:
        lw["mse"] = lw["mse"] * diffusion.min_snr_weight(t_w.to(dev), min_snr_gamma)
        la["mse"] = la["mse"] * diffusion.min_snr_weight(t_a.to(dev), min_snr_gamma)
    if shown_fraction is None:
        shown_fraction = float(wmask.flatten(1).any(1).float().mean())  # samples whose weights are part of the loss
    scale = 1.0 / max(shown_fraction, 1e-12)  # hidden samples' terms are 0: the batch mean over the shown ones
    out = {"mse_w": lw["mse"].mean() * scale, "vb_w": lw["vb"].mean() * scale,
           "mse_a": la["mse"].mean(), "vb_a": la["vb"].mean()}
    out["total"] = out["mse_w"] + out["vb_w"] + out["mse_a"] + out["vb_a"]
    return out


# ============================================================================ checkpoint
@dataclass
class NNiTCheckpoint:
    """NNiT's reading of a checkpoint in the project's one format (:mod:`nnit.checkpoint`).

    The file holds ``model.*``, ``ema.*``, ``optim.*`` and ``extra.rng`` (the data / noise generator)
    tensors; the header holds the step, the :class:`TrainConfig` (``config``) and three JSON sections:
    ``model_config`` (:class:`NNiTConfig`), ``codec`` (:class:`ArchCodec`) and ``data`` (task, dims,
    training architectures, normalizer; see :func:`data_metadata`)."""

    config: TrainConfig
    model_config: NNiTConfig
    codec: ArchCodec
    step: int
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor]
    optimizer: Optional[dict]
    rng: Optional[torch.Tensor]
    data: dict
    raw: Checkpoint
    """The format-level checkpoint (for :func:`nnit.checkpoint.restore`)."""


def load_checkpoint(path: str | os.PathLike) -> NNiTCheckpoint:
    """Read an NNiT checkpoint (a file or a run directory); :class:`CheckpointError` when it is missing,
    unreadable, or another stage's checkpoint. Never unpickles."""
    ck = load_core_checkpoint(path)
    if ck.meta.get("kind") != CHECKPOINT_KIND or not {"model_config", "codec"} <= set(ck.sections):
        raise CheckpointError(f"{ck.path} is not an NNiT checkpoint (kind {ck.meta.get('kind')!r}; "
                              "an NNiT checkpoint comes from 'nnit train')")
    return NNiTCheckpoint(
        config=TrainConfig.from_dict(ck.config),
        model_config=NNiTConfig.from_dict(ck.sections["model_config"]),
        codec=codec_from_dict(ck.sections["codec"]),
        step=ck.step,
        model=ck.model,
        ema=ck.ema or {},
        optimizer=ck.optimizer,
        rng=ck.extra.get("rng"),
        data=ck.sections.get("data", {}),
        raw=ck,
    )


# ============================================================================ loop
def data_metadata(sets: Sequence[WeightSet], normalizer: Optional[WeightNormalizer]) -> dict:
    """Task dims, activation, training architectures, the largest |normalized weight| and the normalization
    statistics, saved with the model."""
    archs = [ws.arch for ws in sets]
    meta: dict = {"train_archs": [list(h) for h in sorted({tuple(a.hidden) for a in archs})]}
    counts: dict[str, int] = {}
    for ws in sets:
        key = ",".join(map(str, ws.arch.hidden))
        counts[key] = counts.get(key, 0) + ws.n
    meta["train_arch_counts"] = dict(sorted(counts.items()))  # the reference frequencies of joint sampling
    for name in ("input_dim", "output_dim", "activation"):
        vals = {getattr(a, name) for a in archs}
        meta[name] = vals.pop() if len(vals) == 1 else None
    meta["abs_max"] = max(float(ws.to_vector().detach().abs().max()) for ws in sets)  # sampling clips x0^ here
    if normalizer is not None:
        meta["normalizer"] = normalizer.to_dict()
    return meta


MODEL_FIELDS: tuple[str, ...] = ("model", "token_mode", "patch_size", "max_width", "arch_widths", "arch_dim", "arch_encoding",
                                 "max_depth", "layer_positions", "num_timesteps", "parameterization", "normalization")
"""TrainConfig fields that define the model and its data space: a run started ``init_from`` a checkpoint takes them
from that checkpoint."""

CONTINUATION_FIELDS: tuple[str, ...] = ("arch_balance",)
"""TrainConfig fields a resumed run may change (besides ``steps``): they shape the data stream, not the model."""


def train(
    config: TrainConfig,
    data: Sequence[WeightSet],
    out_dir: str | os.PathLike,
    *,
    normalizer: Optional[WeightNormalizer] = None,
    resume: bool = True,
    device: str | torch.device | None = None,
    progress: bool = True,
    stop_after: Optional[int] = None,
    info: Optional[dict] = None,
    continuation: Optional[dict] = None,
    init_from: Optional[str | os.PathLike] = None,
) -> TrainResult:
    """Train (or continue) an NNiT on normalized weight sets; see the module docstring.

    With ``resume`` and an existing checkpoint in ``out_dir``, the model size, codec and every other
    setting come from the checkpoint; only ``config.steps`` (the total) is taken from the caller.
    ``stop_after`` ends the call after that many steps (a simulated kill; the checkpoint stays resumable).
    ``info`` (e.g. task name, control mode, dataset path) is stored in the checkpoint's ``data`` section.
    ``continuation`` changes data-stream settings of a resumed run from its checkpoint step on (only
    :data:`CONTINUATION_FIELDS`, e.g. ``{"arch_balance": 1.0}``); the checkpoint then stores the new values.
    ``init_from`` (an NNiT checkpoint or zoo export) starts a *new* run from its weights (EMA when stored): fine-tuning
    with a fresh optimizer and LR schedule; the model-defining fields (:data:`MODEL_FIELDS`) come from it, the
    training settings from ``config``. Ignored when ``out_dir`` already holds a checkpoint (that run is resumed).
    """
    dist.init_from_env()  # under torchrun: join the process group; each rank computes a slice of every batch
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT_NAME
    device = torch.device(device) if device is not None else dist.default_device()
    ckpt = load_checkpoint(ckpt_path) if resume and ckpt_path.exists() else None
    bad = set(continuation or {}) - set(CONTINUATION_FIELDS)
    if bad:
        raise NNiTError(f"a continuation can only change {', '.join(CONTINUATION_FIELDS)}, not {', '.join(sorted(bad))}")
    init = load_checkpoint(init_from) if init_from is not None and ckpt is None else None
    if ckpt is not None:
        config = replace(ckpt.config, steps=config.steps, **(continuation or {}))
        model_cfg, codec = ckpt.model_config, ckpt.codec
    elif init is not None:
        config = replace(config, **{k: getattr(init.config, k) for k in MODEL_FIELDS})
        model_cfg, codec = init.model_config, init.codec
    else:
        model_cfg, codec = config.model_config(), config.codec()
    rows = dist.shard(config.batch_size)  # this rank's part of every global batch (all of it in one process)
    torch.manual_seed(config.seed)
    model = NNiT(model_cfg)
    if init is not None:
        model.load_state_dict(init.ema or init.model)
    model = model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.999), weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(config.seed)
    grid = PatchGrid(config.patch_size, config.max_width)
    dataset = NNiTDataset(data, grid, config.token_mode, codec, config.arch_balance)
    diffusion = GaussianDiffusion(linear_betas(config.num_timesteps))
    use_bf16 = config.bf16 and device.type == "cuda"
    # how the last call trained (a resumed run may have moved): the device and the autocast dtype, None = float32
    meta = {**data_metadata(data, normalizer), **(info or {}), "device": device.type, "autocast": "bfloat16" if use_bf16 else None}
    loop = LoopConfig(total=config.steps, kind=CHECKPOINT_KIND, ckpt_every=config.ckpt_every, log_every=config.log_every,
                      desc="nnit train", progress=progress, stop_after=stop_after)
    trainer = Trainer(model, opt, out, loop, config=config.to_dict(), lr_fn=lambda s: lr_at(s, config), generator=gen,
                      ema_decay=config.ema_decay, grad_clip=config.grad_clip,
                      sections_fn=lambda: {"model_config": model.config.to_dict(), "codec": codec.to_dict(), "data": meta})
    if ckpt is not None:
        trainer.restore(ckpt.raw)
    start = trainer.step
    if dist.is_main():
        (out / "train_config.json").write_text(json.dumps(config.to_dict(), indent=1))

    def step_fn(step: int) -> tuple[dict, dict]:
        # every rank draws the same global batch, timesteps and noise, in the order one process would
        batch = dataset.batch_at(step, config.batch_size, config.bucket_pool, config.seed)
        ts = sample_monl_timesteps(config.batch_size, config.num_timesteps, config.p_joint, config.monl_per, gen, device,
                                   p_prior=config.p_prior)
        noise = (torch.randn(batch.values.shape, generator=gen), torch.randn(batch.arch_codes.shape, generator=gen))
        shown = None
        if ts.prior is not None:
            batch = batch.hide_weights(ts.prior.cpu())
            shown = 1.0 - float(ts.prior.float().mean())
        batch = batch.rows(rows).to(device)
        noise = tuple(n[rows].to(device) for n in noise)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            losses = nnit_losses(model, diffusion, batch, ts.t_a[rows], ts.t_w[rows], parameterization=config.parameterization,
                                 noise=noise, shown_fraction=shown, arch_likelihood=codec.likelihood,
                                 min_snr_gamma=config.min_snr_gamma)
        grad_norm = trainer.optimizer_step(losses["total"], step)
        return {k: v.detach() for k, v in losses.items()}, {"lr": trainer.lr, "grad_norm": grad_norm}

    model.train()
    history = trainer.run(step_fn)
    return TrainResult(trainer.path, start, trainer.step, history)
