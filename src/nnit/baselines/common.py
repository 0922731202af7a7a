"""What the two baselines (D2NWG, SANE) share: architecture conditioning, the training loop and the
checkpoint reader.

Both baselines train on exactly NNiT's data (the kept train networks of a GHN dataset, normalized by
:func:`nnit.ghn.dataset.dataset_normalizer` with the same mode), are sampled per architecture
(``generate(arch, num, seed) -> WeightSet``, un-normalized) and are evaluated by the same harness
through ``nnit generate --checkpoint``. The loop here mirrors NNiT's (:mod:`nnit.diffusion.train`):
AdamW, warmup + cosine LR, grad clipping, EMA, tqdm, a JSON-lines log, one atomic checkpoint in the
project format (:mod:`nnit.checkpoint`) and resume.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
from torch import nn

from nnit.checkpoint import DEFAULT_NAME, CheckpointError, load_checkpoint, restore, save_checkpoint
from nnit.fileio import truncate_jsonl_log
from nnit.stopping import TrainingStopped, stop_on_signals
from nnit.weights.architecture import Architecture, ArchitectureError, WidthVocab

BASELINE_KINDS = ("d2nwg", "sane")
"""``meta["kind"]`` of the baselines' checkpoints."""


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


def cosine_lr(step: int, total: int, lr: float, min_lr: float, warmup: int, start: int = 0) -> float:
    """Linear warmup then cosine decay over ``[start, total)``."""
    s = step - start
    span = max(total - start, 1)
    if warmup > 0 and s < warmup:
        return lr * (s + 1) / warmup
    frac = min(max(s - warmup, 0) / max(span - warmup, 1), 1.0)
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * frac))


@dataclass
class LoopResult:
    checkpoint: Path
    start_step: int
    end_step: int
    history: list[dict]
    seconds: float


def train_loop(
    model: nn.Module,
    loss_fn: Callable[[int, torch.Generator], dict[str, torch.Tensor]],
    lr_fn: Callable[[int], float],
    total_steps: int,
    out_dir: str | os.PathLike,
    *,
    kind: str,
    config: dict,
    sections_fn: Callable[[], dict],
    ema_decay: float = 0.999,
    grad_clip: float = 1.0,
    seed: int = 0,
    resume: bool = True,
    progress: bool = True,
    stop_after: Optional[int] = None,
    on_step: Optional[Callable[[int, nn.Module], None]] = None,
    ckpt_every: int = 500,
    desc: str = "train",
) -> LoopResult:
    """Optimize ``loss_fn(step, generator)["total"]``; checkpoint + resume in ``out_dir``.

    ``on_step(step, ema)`` runs before each step and once at the end (e.g. a phase change); ``sections_fn()`` gives the JSON
    sections stored with every checkpoint (configs, normalizer, statistics). Ctrl-C / SIGTERM checkpoints the step
    in progress and raises :class:`~nnit.stopping.TrainingStopped`, so a rerun resumes there."""
    from tqdm import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / DEFAULT_NAME
    ema = _ema_copy(model)
    opt = torch.optim.AdamW(model.parameters(), lr=lr_fn(0), weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    step = 0
    if resume and path.exists():
        ck = load_checkpoint(path)
        if ck.meta.get("kind") != kind:
            raise CheckpointError(f"{path} is a {ck.meta.get('kind')!r} checkpoint, not {kind!r}; use a fresh --out")
        restore(ck, model, opt, ema)
        if "rng" in ck.extra:
            gen.set_state(ck.extra["rng"].to(torch.uint8))
        step = ck.step
    log_path = out / "train_log.jsonl"
    truncate_jsonl_log(log_path, step)  # a resumed run drops the lines past its checkpoint

    def _save(s: int) -> Path:
        return save_checkpoint(path, model, s, config, optimizer=opt, ema=ema, extra={"rng": gen.get_state()},
                               meta={"kind": kind}, sections=sections_fn())

    start = step
    end = total_steps if stop_after is None else min(total_steps, step + stop_after)
    history: list[dict] = []
    t0 = time.perf_counter()
    model.train()
    bar = tqdm(range(start, end), desc=desc, disable=not progress, initial=start, total=total_steps)
    with stop_on_signals() as stop:
        for step in bar:
            if on_step is not None:
                on_step(step, ema)
            lr = lr_fn(step)
            for g in opt.param_groups:
                g["lr"] = lr
            losses = loss_fn(step, gen)
            opt.zero_grad(set_to_none=True)
            losses["total"].backward()
            params = [p for p in model.parameters() if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
            opt.step()
            with torch.no_grad():
                for pe, pm in zip(ema.parameters(), model.parameters()):
                    pe.lerp_(pm, 1.0 - ema_decay)
                for be, bm in zip(ema.buffers(), model.buffers()):
                    be.copy_(bm)
            done = step + 1
            rec = {"step": done, "lr": lr, **{k: float(v.detach()) for k, v in losses.items()}}
            history.append(rec)
            if done % 10 == 0 or done == end:
                bar.set_postfix(loss=f"{rec['total']:.4f}")
                with log_path.open("a") as fh:
                    fh.write(json.dumps(rec) + "\n")
            if done != end and stop.signum is not None:  # a stop request: checkpoint this step, then stop
                bar.close()
                raise TrainingStopped(done, _save(done), stop.signum)
            if done % ckpt_every == 0 and done != end:
                _save(done)
    if on_step is not None:
        on_step(end, ema)
    ckpt = _save(end)
    return LoopResult(ckpt, start, end, history, time.perf_counter() - t0)


def _ema_copy(model: nn.Module) -> nn.Module:
    import copy

    ema = copy.deepcopy(model)
    ema.requires_grad_(False)
    return ema


def summarize_history(history: list[dict], key: str = "total") -> tuple[float, float]:
    """Mean of ``key`` over the first and last ~50 logged steps."""
    k = max(1, min(50, len(history) // 5))
    vals = [r[key] for r in history if key in r]
    if not vals:
        return float("nan"), float("nan")
    return sum(vals[:k]) / len(vals[:k]), sum(vals[-k:]) / len(vals[-k:])
