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
from nnit.baselines.early_stopping import Budget, validation_split
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


def _saved(out_dir: str | os.PathLike, kind: str, resume: bool):
    """The run's checkpoint in ``out_dir`` when resuming (None for a fresh run); refuses another stage's."""
    path = Path(out_dir) / DEFAULT_NAME
    if not (resume and path.exists()):
        return None
    ck = load_checkpoint(path)
    if ck.meta.get("kind") != kind:
        raise CheckpointError(f"{path} is a {ck.meta.get('kind')!r} checkpoint, not {kind!r}; use a fresh --out")
    return ck


def _train(model: nn.Module, loss_fn: Callable[[int, torch.Generator], dict[str, torch.Tensor]],
           lr_fn: Callable[[int], float], total: int, out_dir: str | os.PathLike, *, kind: str, cfg, ck,
           budget: Budget, sections_fn: Callable[[], dict], on_step: Callable[[int, nn.Module], None],
           on_end: Callable[[int, nn.Module], None], finished: Callable[[int, nn.Module], bool], progress: bool,
           stop_after: Optional[int]) -> TrainResult:
    """Optimize ``loss_fn(step, generator)["total"]`` with the shared trainer; checkpoint + resume in ``out_dir``.

    ``on_step(step, ema)`` runs before each step (e.g. a phase change), ``on_end(end, ema)`` once before the final
    checkpoint; ``finished(done, ema)`` ends the run early (validation plateau, wall clock). ``sections_fn()`` gives
    the JSON sections stored with every checkpoint, which include ``budget``'s state: a run that already finished
    early is not trained further."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr_fn(0), weight_decay=0.0)
    if ck is not None and budget.finished:
        total = ck.step
    loop = LoopConfig(total=total, kind=kind, ckpt_every=500, log_every=10, desc=kind, progress=progress, stop_after=stop_after)
    trainer = Trainer(model, opt, out_dir, loop, config=cfg.to_dict(), lr_fn=lr_fn, generator=torch.Generator().manual_seed(cfg.seed),
                      ema_decay=cfg.ema_decay, grad_clip=cfg.grad_clip,
                      sections_fn=lambda: {**sections_fn(), "budget": budget.to_dict()})
    if ck is not None:
        trainer.restore(ck)
    start = trainer.step

    def step_fn(step: int) -> tuple[dict, dict]:
        on_step(step, trainer.ema)
        losses = loss_fn(step, trainer.generator)
        trainer.optimizer_step(losses["total"], step)
        return {k: v.detach() for k, v in losses.items()}, {"lr": trainer.lr}

    model.train()
    history = trainer.run(step_fn, on_end=lambda end: on_end(end, trainer.ema),
                          finished=lambda done: finished(done, trainer.ema))
    return TrainResult(trainer.path, start, trainer.step, history)


def _split_sets(sets: Sequence[WeightSet], cfg) -> tuple[list[WeightSet], list[WeightSet]]:
    """The training and validation networks (``cfg.val_fraction`` of each architecture's, seeded by ``cfg.seed``)."""
    train, val = [], []
    for ws, (ti, vi) in zip(sets, validation_split([ws.n for ws in sets], cfg.val_fraction, cfg.seed)):
        train.append(ws[ti])
        if len(vi):
            val.append(ws[vi])
    return train, val


# ============================================================================ D2NWG
def train_d2nwg(cfg: D2NWGConfig, sets: Sequence[WeightSet], out_dir: str | os.PathLike, *, normalizer=None,
                info=None, resume: bool = True, progress: bool = True, stop_after: Optional[int] = None,
                max_seconds: float = 0.0) -> tuple[D2NWG, TrainResult]:
    """Train (or resume) D2NWG: VAE steps, then latent diffusion. Under torchrun every rank draws the same global
    batch and noise and computes the loss of its slice (:mod:`nnit.distributed`).

    With ``cfg.val_fraction > 0`` each phase ends early when its validation loss (VAE: reconstruction MSE of the
    held-out networks; diffusion: the EMA denoiser's eps-MSE on their latents at fixed timesteps and noise) has
    plateaued (:mod:`nnit.baselines.early_stopping`), the VAE phase also when ``cfg.vae_time_share`` of
    ``max_seconds`` is spent, and the run when ``max_seconds`` (0 = no cap) is spent."""
    dist.init_from_env()
    rows = dist.shard(cfg.batch_size)
    in_dim, out_dim, act, depth = _check_sets(sets)
    if any(ws.arch.depth != depth for ws in sets):
        raise NNiTError("D2NWG's zero-padded layout needs one depth for all training networks")
    ck = _saved(out_dir, "d2nwg", resume)
    budget = Budget.from_dict(ck.sections.get("budget") if ck is not None else None, max_seconds, cfg.patience)
    train_sets, val_sets = _split_sets(sets, cfg)
    torch.manual_seed(cfg.seed)
    model = D2NWG(cfg, in_dim, out_dim, depth, act)

    def vectors(wsets: Sequence[WeightSet]) -> tuple[torch.Tensor, torch.Tensor, list[Architecture]]:
        vecs, masks, archs = [], [], []
        for ws in wsets:
            v, m = model.layout.flatten(ws)
            vecs.append(v)
            masks.append(m.unsqueeze(0).expand(ws.n, -1))
            archs += [ws.arch] * ws.n
        return torch.cat(vecs), torch.cat(masks), archs  # (N, D), (N, D), N architectures

    X, M, archs = vectors(train_sets)
    Xv, Mv, archs_v = vectors(val_sets) if val_sets else (None, None, [])
    state: dict = {"z": None, "zv": None}
    vg = torch.Generator().manual_seed(cfg.seed + 1)  # fixed validation timesteps and noise, 4 draws per network
    n_val = 0 if Xv is None else Xv.shape[0]
    val_t = torch.randint(1, cfg.num_timesteps + 1, (4 * n_val,), generator=vg)
    val_noise = torch.randn(4 * n_val, model.latent_dim, generator=vg)

    def vae_end() -> int:
        return int(budget.phase_end.get("vae", cfg.vae_steps))

    def on_step(step: int, ema) -> None:
        if step >= vae_end() and state["z"] is None:  # phase 2: freeze the VAE, encode the data once
            model.vae.requires_grad_(False)
            mu, _ = model.vae.encode(X)
            model.latent_scale.fill_(float(mu.detach().std()))
            ema.vae.load_state_dict(model.vae.state_dict())
            ema.latent_scale.copy_(model.latent_scale)
            state["z"] = model.latents(X)
            model.latent_absmax.fill_(float(state["z"].abs().max()))
            ema.latent_absmax.copy_(model.latent_absmax)
            if Xv is not None:
                state["zv"] = model.latents(Xv)

    def loss_fn(step: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        idx = torch.randint(len(X), (cfg.batch_size,), generator=gen)
        if step < vae_end():
            return model.vae_loss(X[idx], M[idx], gen, rows)
        return model.diffusion_loss(state["z"][idx], [archs[i] for i in idx.tolist()], gen, rows)

    def lr_fn(step: int) -> float:
        if step < vae_end():
            return cosine_lr(step, cfg.vae_steps, cfg.lr, cfg.min_lr, cfg.warmup_steps)
        return cosine_lr(step, cfg.total_steps, cfg.lr, cfg.min_lr, cfg.warmup_steps, start=vae_end())

    @torch.no_grad()
    def val_loss(done: int, ema) -> float:
        if done <= vae_end():  # the VAE just trained (the raw model: phase 2 freezes this one)
            mu, _ = model.vae.encode(Xv)
            m = Mv.float()
            return float(((((model.vae.decode(mu) - Xv) ** 2) * m).sum(1) / m.sum(1)).mean())
        z0 = state["zv"].repeat(4, 1)
        zt = ema.diffusion.add_noise(z0, val_noise, val_t)
        return float(((ema.denoiser(zt, val_t, archs_v * 4) - val_noise) ** 2).mean())

    def finished(done: int, ema) -> bool:
        if budget.over():
            return budget.finish("wall-clock cap")
        if Xv is None or done % cfg.val_every:
            if done < vae_end() and budget.over(cfg.vae_time_share):
                budget.phase_end["vae"] = done  # the VAE's share of the clock is spent: on to the diffusion phase
            return False
        if done < vae_end():
            if budget.plateau("vae", cfg.patience).update(done, val_loss(done, ema)) or budget.over(cfg.vae_time_share):
                budget.phase_end["vae"] = done
            return False
        if done > vae_end() and state["zv"] is not None:
            if budget.plateau("diffusion", cfg.patience).update(done, val_loss(done, ema)):
                return budget.finish("plateau")
        return False

    data = _data_section(train_sets, normalizer, {**(info or {}), "validation_networks": n_val})
    res = _train(model, loss_fn, lr_fn, cfg.total_steps, out_dir, kind="d2nwg", cfg=cfg, ck=ck, budget=budget,
                 sections_fn=lambda: {"data": data, "params": model.parameter_counts(), "layout": {"depth": depth}},
                 on_step=on_step, on_end=on_step, finished=finished, progress=progress, stop_after=stop_after)
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
               resume: bool = True, progress: bool = True, stop_after: Optional[int] = None,
               max_seconds: float = 0.0) -> tuple[SANE, TrainResult]:
    """Train (or resume) SANE. Under torchrun every rank draws the same global batch and noise and computes its
    slice; the contrastive term gathers every rank's latents (:meth:`SANE.loss`). With ``cfg.val_fraction > 0``
    the run ends early when the EMA model's loss on the held-out networks (fixed augmentation noise) has
    plateaued, or when ``max_seconds`` (0 = no cap) is spent; the anchors are then fitted at that step."""
    dist.init_from_env()
    rows = dist.shard(cfg.batch_size)
    _check_sets(sets)
    ck = _saved(out_dir, "sane", resume)
    budget = Budget.from_dict(ck.sections.get("budget") if ck is not None else None, max_seconds, cfg.patience)
    train_sets, val_sets = _split_sets(sets, cfg)
    token_dim = sane_token_dim(sets)
    torch.manual_seed(cfg.seed)
    model = SANE(cfg, token_dim)

    def token_data(wsets: Sequence[WeightSet]) -> _TokenData:
        parts = [row_tokens(ws, token_dim) for ws in wsets]
        return _TokenData([p[0] for p in parts], [p[1] for p in parts], [p[2] for p in parts],
                          [(i, k) for i, ws in enumerate(wsets) for k in range(ws.n)])

    data = token_data(train_sets)
    val = token_data(val_sets) if val_sets else None

    def loss_fn(step: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        picks = torch.randint(len(data.index), (cfg.batch_size,), generator=gen).tolist()
        tok, pos, em, pad = data.batch(picks)
        return model.loss(tok, pos, em, pad, gen, rows)

    @torch.no_grad()
    def val_loss(ema) -> float:
        """The EMA autoencoder's reconstruction MSE on the held-out networks' real entries (no augmentation)."""
        err = count = 0.0
        for j in range(0, len(val.index), 64):
            tok, pos, em, pad = val.batch(list(range(j, min(j + 64, len(val.index)))))
            rec = ema.decode(ema.encode(tok * em, pos, pad), pos, pad)
            err += float((((rec - tok) ** 2) * em).sum())
            count += float(em.sum())
        return err / max(count, 1.0)

    def finished(done: int, ema) -> bool:
        if budget.over():
            return budget.finish("wall-clock cap")
        if val is None or done % cfg.val_every:
            return False
        return budget.plateau("train", cfg.patience).update(done, val_loss(ema)) and budget.finish("plateau")

    def on_end(step: int, ema) -> None:  # end of training: anchors from the EMA encoder
        if step < cfg.steps and not budget.finished:  # a partial call (stop_after): the run is not over
            return
        ema.eval()
        chunks = [list(range(j, min(j + 64, len(data.index)))) for j in range(0, len(data.index), 64)]
        ema.fit_anchors([(b[0], b[1], b[3]) for b in (data.batch(c) for c in chunks)])
        model.anchor_mean.copy_(ema.anchor_mean)
        model.anchor_std.copy_(ema.anchor_std)
        model.anchor_count.copy_(ema.anchor_count)

    meta = _data_section(train_sets, normalizer, {**(info or {}), "validation_networks": 0 if val is None else len(val.index)})
    res = _train(model, loss_fn, lambda s: cosine_lr(s, cfg.steps, cfg.lr, cfg.min_lr, cfg.warmup_steps), cfg.steps,
                 out_dir, kind="sane", cfg=cfg, ck=ck, budget=budget,
                 sections_fn=lambda: {"data": meta, "params": model.parameter_counts(), "layout": {"token_dim": token_dim}},
                 on_step=lambda step, ema: None, on_end=on_end, finished=finished, progress=progress, stop_after=stop_after)
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
    def reconstruct(self, ws: WeightSet) -> tuple[WeightSet, float]:
        """D2NWG only: networks encoded to the VAE mean and decoded (raw scale), and the reconstruction MSE of their
        real entries in the normalized space. The sanity check of the comparison: a VAE whose reconstructions lose
        the networks' success caps whatever the latent diffusion can generate."""
        if self.kind != "d2nwg":
            raise NNiTError(f"only D2NWG has a VAE to reconstruct with, not {self.label}")
        x, mask = self.model.layout.flatten(self.normalizer.apply(ws) if self.normalizer is not None else ws)
        mu, _ = self.model.vae.encode(x)
        rec = self.model.vae.decode(mu)
        mse = float(((rec - x) ** 2)[:, mask].mean())
        out = self.model.layout.unflatten(ws.arch, rec)
        return (self.normalizer.invert(out) if self.normalizer is not None else out), mse

    @torch.no_grad()
    def conditional(self, arch: Architecture, num: int = 100, method: str = "ddim", steps: Optional[int] = 50, seed: int = 0,
                    progress: bool = False, **_) -> WeightSet:
        if self.kind == "d2nwg":
            ws = self.model.generate(arch, num, seed=seed, method=method, steps=steps or 50)
        else:
            ws = self.model.generate(arch, num, seed=seed)
        ws.check_finite()
        return self.normalizer.invert(ws) if self.normalizer is not None else ws
