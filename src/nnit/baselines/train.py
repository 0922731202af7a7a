"""Training and sampling the baselines on a GHN dataset (``nnit train-baseline``, ``nnit generate``).

``train_baseline(method, config, sets, normalizer, out_dir)`` trains D2NWG or SANE on normalized
weight sets with the project's trainer (:mod:`nnit.training`); :class:`BaselineSampler` reads the
checkpoint back and exposes the same ``conditional(arch, num, ...)`` call as NNiT's sampler, so
``nnit generate --checkpoint`` evaluates all three generators through one path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
from torch import nn

from nnit import distributed as dist
from nnit.baselines.d2nwg import D2NWG, D2NWG_PRESETS, D2NWGConfig
from nnit.baselines.sane import SANE, SANE_PRESETS, SANEConfig, row_tokens
from nnit.checkpoint import DEFAULT_NAME, CheckpointError, load_checkpoint
from nnit.errors import NNiTError
from nnit.training import LoopConfig, Trainer, TrainResult, cosine_lr
from nnit.weights.architecture import Architecture
from nnit.weights.mlp import WeightSet
from nnit.weights.normalize import WeightNormalizer

METHODS = ("d2nwg", "sane")
PRESETS = {"d2nwg": D2NWG_PRESETS, "sane": SANE_PRESETS}


def _data_section(sets: Sequence[WeightSet], normalizer: Optional[WeightNormalizer], info: Optional[dict]) -> dict:
    from nnit.diffusion.train import data_metadata

    return {**data_metadata(sets, normalizer), **(info or {})}


def _check_sets(sets: Sequence[WeightSet]) -> tuple[int, int, str, int]:
    if not sets:
        raise NNiTError("a baseline needs at least one weight set to train on")
    a = sets[0].arch
    for ws in sets:
        if (ws.arch.input_dim, ws.arch.output_dim, ws.arch.activation) != (a.input_dim, a.output_dim, a.activation):
            raise NNiTError("all training networks must share input dim, output dim and activation")
    return a.input_dim, a.output_dim, a.activation, max(ws.arch.depth for ws in sets)


def _train(model: nn.Module, loss_fn: Callable[[int, torch.Generator], dict[str, torch.Tensor]],
           lr_fn: Callable[[int], float], total: int, out_dir: str | os.PathLike, *, kind: str, cfg,
           sections_fn: Callable[[], dict], on_step: Callable[[int, nn.Module], None], resume: bool, progress: bool,
           stop_after: Optional[int]) -> TrainResult:
    """Optimize ``loss_fn(step, generator)["total"]`` with the shared trainer; checkpoint + resume in ``out_dir``.

    ``on_step(step, ema)`` runs before each step and once at the end (e.g. a phase change); ``sections_fn()``
    gives the JSON sections stored with every checkpoint."""
    path = Path(out_dir) / DEFAULT_NAME
    opt = torch.optim.AdamW(model.parameters(), lr=lr_fn(0), weight_decay=0.0)
    loop = LoopConfig(total=total, kind=kind, ckpt_every=500, log_every=10, desc=kind, progress=progress, stop_after=stop_after)
    trainer = Trainer(model, opt, out_dir, loop, config=cfg.to_dict(), lr_fn=lr_fn, generator=torch.Generator().manual_seed(cfg.seed),
                      ema_decay=cfg.ema_decay, grad_clip=cfg.grad_clip, sections_fn=sections_fn)
    if resume and path.exists():
        ck = load_checkpoint(path)
        if ck.meta.get("kind") != kind:
            raise CheckpointError(f"{path} is a {ck.meta.get('kind')!r} checkpoint, not {kind!r}; use a fresh --out")
        trainer.restore(ck)
    start = trainer.step

    def step_fn(step: int) -> tuple[dict, dict]:
        on_step(step, trainer.ema)
        losses = loss_fn(step, trainer.generator)
        trainer.optimizer_step(losses["total"], step)
        return {k: v.detach() for k, v in losses.items()}, {"lr": trainer.lr}

    model.train()
    history = trainer.run(step_fn, on_end=lambda end: on_step(end, trainer.ema))
    return TrainResult(trainer.path, start, trainer.step, history)


# ============================================================================ D2NWG
def train_d2nwg(cfg: D2NWGConfig, sets: Sequence[WeightSet], out_dir: str | os.PathLike, *, normalizer=None,
                info=None, resume: bool = True, progress: bool = True, stop_after: Optional[int] = None) -> tuple[D2NWG, TrainResult]:
    """Train (or resume) D2NWG: VAE steps, then latent diffusion. Under torchrun every rank draws the same global
    batch and noise and computes the loss of its slice (:mod:`nnit.distributed`)."""
    dist.init_from_env()
    rows = dist.shard(cfg.batch_size)
    in_dim, out_dim, act, depth = _check_sets(sets)
    if any(ws.arch.depth != depth for ws in sets):
        raise NNiTError("D2NWG's zero-padded layout needs one depth for all training networks")
    torch.manual_seed(cfg.seed)
    model = D2NWG(cfg, in_dim, out_dim, depth, act)
    vecs, masks, archs = [], [], []
    for ws in sets:
        v, m = model.layout.flatten(ws)
        vecs.append(v)
        masks.append(m.unsqueeze(0).expand(ws.n, -1))
        archs += [ws.arch] * ws.n
    X, M = torch.cat(vecs), torch.cat(masks)  # (N, D)
    state: dict = {"z": None}

    def on_step(step: int, ema) -> None:
        if step >= cfg.vae_steps and state["z"] is None:  # phase 2: freeze the VAE, encode the data once
            model.vae.requires_grad_(False)
            mu, _ = model.vae.encode(X)
            model.latent_scale.fill_(float(mu.detach().std()))
            ema.vae.load_state_dict(model.vae.state_dict())
            ema.latent_scale.copy_(model.latent_scale)
            state["z"] = model.latents(X)
            model.latent_absmax.fill_(float(state["z"].abs().max()))
            ema.latent_absmax.copy_(model.latent_absmax)

    def loss_fn(step: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        idx = torch.randint(len(X), (cfg.batch_size,), generator=gen)
        if step < cfg.vae_steps:
            return model.vae_loss(X[idx], M[idx], gen, rows)
        return model.diffusion_loss(state["z"][idx], [archs[i] for i in idx.tolist()], gen, rows)

    def lr_fn(step: int) -> float:
        if step < cfg.vae_steps:
            return cosine_lr(step, cfg.vae_steps, cfg.lr, cfg.min_lr, cfg.warmup_steps)
        return cosine_lr(step, cfg.total_steps, cfg.lr, cfg.min_lr, cfg.warmup_steps, start=cfg.vae_steps)

    data = _data_section(sets, normalizer, info)
    res = _train(model, loss_fn, lr_fn, cfg.total_steps, out_dir, kind="d2nwg", cfg=cfg,
                 sections_fn=lambda: {"data": data, "params": model.parameter_counts(), "layout": {"depth": depth}},
                 on_step=on_step, resume=resume, progress=progress, stop_after=stop_after)
    return model, res


# ============================================================================ SANE
@dataclass
class _TokenData:
    tokens: list[torch.Tensor]  # per set: (n, S, d)
    positions: list[torch.Tensor]  # per set: (S, 3)
    emasks: list[torch.Tensor]  # per set: (S, d)
    index: list[tuple[int, int]]

    def batch(self, picks: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        items = [self.index[j] for j in picks]
        S = max(self.positions[i].shape[0] for i, _ in items)
        d = self.tokens[0].shape[-1]
        B = len(items)
        tok = torch.zeros(B, S, d)
        pos = torch.zeros(B, S, 3, dtype=torch.long)
        em = torch.zeros(B, S, d, dtype=torch.bool)
        pad = torch.ones(B, S, dtype=torch.bool)
        for b, (i, k) in enumerate(items):
            s = self.positions[i].shape[0]
            tok[b, :s] = self.tokens[i][k]
            pos[b, :s] = self.positions[i]
            em[b, :s] = self.emasks[i]
            pad[b, :s] = False
        return tok, pos, em, pad


def sane_token_dim(sets: Sequence[WeightSet]) -> int:
    return max(i for ws in sets for _, i in ws.arch.layer_shapes) + 1


def train_sane(cfg: SANEConfig, sets: Sequence[WeightSet], out_dir: str | os.PathLike, *, normalizer=None, info=None,
               resume: bool = True, progress: bool = True, stop_after: Optional[int] = None) -> tuple[SANE, TrainResult]:
    """Train (or resume) SANE. Under torchrun every rank draws the same global batch and noise and computes its
    slice; the contrastive term gathers every rank's latents (:meth:`SANE.loss`)."""
    dist.init_from_env()
    rows = dist.shard(cfg.batch_size)
    _check_sets(sets)
    token_dim = sane_token_dim(sets)
    torch.manual_seed(cfg.seed)
    model = SANE(cfg, token_dim)
    parts = [row_tokens(ws, token_dim) for ws in sets]
    data = _TokenData([p[0] for p in parts], [p[1] for p in parts], [p[2] for p in parts],
                      [(i, k) for i, ws in enumerate(sets) for k in range(ws.n)])

    def loss_fn(step: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        picks = torch.randint(len(data.index), (cfg.batch_size,), generator=gen).tolist()
        tok, pos, em, pad = data.batch(picks)
        return model.loss(tok, pos, em, pad, gen, rows)

    done = {"anchors": False}

    def on_step(step: int, ema) -> None:
        if step >= cfg.steps and not done["anchors"]:  # end of training: anchors from the EMA encoder
            ema.eval()
            chunks = [list(range(j, min(j + 64, len(data.index)))) for j in range(0, len(data.index), 64)]
            ema.fit_anchors([(b[0], b[1], b[3]) for b in (data.batch(c) for c in chunks)])
            model.anchor_mean.copy_(ema.anchor_mean)
            model.anchor_std.copy_(ema.anchor_std)
            model.anchor_count.copy_(ema.anchor_count)
            done["anchors"] = True

    meta = _data_section(sets, normalizer, info)
    res = _train(model, loss_fn, lambda s: cosine_lr(s, cfg.steps, cfg.lr, cfg.min_lr, cfg.warmup_steps), cfg.steps,
                 out_dir, kind="sane", cfg=cfg,
                 sections_fn=lambda: {"data": meta, "params": model.parameter_counts(), "layout": {"token_dim": token_dim}},
                 on_step=on_step, resume=resume, progress=progress, stop_after=stop_after)
    return model, res


def train_baseline(method: str, cfg, sets: Sequence[WeightSet], out_dir, **kw):
    """Dispatch to :func:`train_d2nwg` or :func:`train_sane`."""
    if method == "d2nwg":
        return train_d2nwg(cfg, sets, out_dir, **kw)
    if method == "sane":
        return train_sane(cfg, sets, out_dir, **kw)
    raise NNiTError(f"unknown baseline {method!r}; choose one of {', '.join(METHODS)}")


# ============================================================================ sampling
class BaselineSampler:
    """A trained baseline read from its checkpoint, with NNiT's sampler interface for p(w | a)."""

    def __init__(self, kind: str, model, normalizer: Optional[WeightNormalizer], data: dict, config) -> None:
        self.kind, self.model, self.normalizer, self.data, self.config = kind, model.eval(), normalizer, data, config
        self.num_timesteps = getattr(getattr(model, "diffusion", None), "num_timesteps", 1)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, use_ema: bool = True) -> "BaselineSampler":
        ck = load_checkpoint(path)
        kind = ck.meta.get("kind")
        if kind not in METHODS:
            raise CheckpointError(f"{ck.path} is not a baseline checkpoint (kind {kind!r})")
        data = ck.sections.get("data", {})
        if kind == "d2nwg":
            cfg = D2NWGConfig.from_dict(ck.config)
            model = D2NWG(cfg, data["input_dim"], data["output_dim"], ck.sections["layout"]["depth"], data.get("activation") or "tanh")
        else:
            cfg = SANEConfig.from_dict(ck.config)
            model = SANE(cfg, ck.sections["layout"]["token_dim"])
        state = ck.ema if (use_ema and ck.ema) else ck.model
        model.load_state_dict(state)
        norm = data.get("normalizer")
        return cls(kind, model, WeightNormalizer.from_dict(norm) if norm else None, data, cfg)

    @property
    def label(self) -> str:
        return {"d2nwg": "D2NWG", "sane": "SANE"}[self.kind]

    @torch.no_grad()
    def conditional(self, arch: Architecture, num: int = 100, method: str = "ddim", steps: Optional[int] = 50, seed: int = 0,
                    progress: bool = False, **_) -> WeightSet:
        if self.kind == "d2nwg":
            ws = self.model.generate(arch, num, seed=seed, method=method, steps=steps or 50)
        else:
            ws = self.model.generate(arch, num, seed=seed)
        ws.check_finite()
        return self.normalizer.invert(ws) if self.normalizer is not None else ws
