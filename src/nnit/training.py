"""One resumable training loop for every stage: NNiT, the D2NWG and SANE baselines and the GHN ensemble.

A stage builds its model, optimizer and data, then hands the loop to a :class:`Trainer`, which owns what
all stages share:

* the learning-rate schedule (:func:`cosine_lr`, set before every optimizer step),
* the optimizer step: backward, gradient averaging over data-parallel ranks (:mod:`nnit.distributed`),
  gradient clipping (global norm, or a stage's own rule) and the EMA of the weights
  (``torch.optim.swa_utils.AveragedModel`` with ``get_ema_multi_avg_fn``),
* the run directory: one atomic checkpoint in the project format (:mod:`nnit.checkpoint`: model, EMA,
  optimizer, the data / noise generator and a stage's extra tensors) every ``ckpt_every`` units and at the
  end, ``train_log.jsonl`` (truncated to the checkpoint on resume, so redone units are logged once),
  TensorBoard scalars (``losses/*``, ``train/*``) and a tqdm bar — all written by rank 0 only,
* stopping: ``stop_after`` units (a simulated kill), and Ctrl-C / SIGTERM (:func:`nnit.stopping.stop_on_signals`),
  which finishes the unit in progress, checkpoints it and raises :class:`~nnit.stopping.TrainingStopped`.

A stage's ``step_fn(i)`` does unit ``i`` (an optimizer step, or a GHN iteration of collection plus several
optimizer steps) through :meth:`Trainer.optimizer_step` and returns its losses and other statistics.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional

import torch
from torch import nn

from nnit import distributed as dist
from nnit.checkpoint import DEFAULT_NAME, Checkpoint, restore, save_checkpoint
from nnit.errors import NNiTError
from nnit.fileio import truncate_jsonl_log
from nnit.stopping import TrainingStopped, stop_on_signals

Scalar = float | torch.Tensor


def cosine_lr(step: int, total: int, peak: float, final: float, warmup: int = 0, start: int = 0) -> float:
    """The learning rate of every stage: linear warmup from ``peak / warmup`` to ``peak`` over ``warmup``
    steps counted from ``start``, then cosine decay reaching ``final`` at step ``total`` (constant after)."""
    s = step - start
    span = max(total - start, 1)
    if warmup > 0 and s < warmup:
        return peak * (s + 1) / warmup
    frac = min(max(s - warmup, 0) / max(span - warmup, 1), 1.0)
    return final + 0.5 * (peak - final) * (1 + math.cos(math.pi * frac))


def ema_of(model: nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel:
    """An EMA of ``model``'s parameters starting at its current weights (buffers follow the model)."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=False)
    ema.update_parameters(model)  # the first update copies: the average starts at the initial weights
    ema.requires_grad_(False)
    return ema


@dataclass
class TrainResult:
    """What a training call did."""

    checkpoint: Path
    """The checkpoint written last."""
    start_step: int
    """Units done before the call (resumed from)."""
    end_step: int
    """Units done after it."""
    history: list[dict]
    """One record per unit of this call: the unit's number, statistics (e.g. lr) and losses."""


@dataclass(frozen=True)
class LoopConfig:
    """How a :class:`Trainer` runs, logs and checkpoints a loop (not what it trains)."""

    total: int
    """Units (steps or iterations) of the whole run; a resumed run continues up to this."""
    kind: str
    """``meta["kind"]`` of the checkpoint (e.g. "nnit", "d2nwg", "ghn_ensemble")."""
    ckpt_every: int = 500
    """Checkpoint interval in units; one is always written at the end."""
    log_every: int = 10
    """Interval of the JSON-lines log, TensorBoard and the progress bar's loss."""
    unit: str = "step"
    """Name of a unit: the log's key and the word in a stop message."""
    checkpoint_name: str = DEFAULT_NAME
    """File of the checkpoint inside the run directory."""
    desc: str = "train"
    """Progress-bar label."""
    progress: bool = True
    """Show a tqdm bar (rank 0 only)."""
    stop_after: Optional[int] = None
    """End the call after this many units (a simulated kill; the checkpoint stays resumable)."""


class Trainer:
    """The shared loop (module docstring): optimizer steps, EMA, checkpoints, logs, resume and stopping.

    ``config`` is stored as the checkpoint's config; ``sections_fn()`` gives its JSON sections and
    ``extra_fn()`` extra tensors (beside the generator's state, saved as ``extra.rng``). ``lr_fn(k)`` is the
    learning rate of optimizer step ``k``; ``clip_fn(params)`` replaces global-norm clipping at ``grad_clip``.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        out_dir: str | os.PathLike,
        loop: LoopConfig,
        *,
        config: dict,
        lr_fn: Callable[[int], float],
        generator: torch.Generator,
        ema_decay: Optional[float] = None,
        grad_clip: Optional[float] = None,
        clip_fn: Optional[Callable[[list[nn.Parameter]], torch.Tensor]] = None,
        sections_fn: Callable[[], dict] = dict,
        extra_fn: Callable[[], dict[str, torch.Tensor]] = dict,
    ) -> None:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_distributed():
            raise NNiTError(f"{loop.kind} training runs in one process: start it without torchrun "
                             "(the stages that train data-parallel join the process group before building a Trainer)")
        self.model, self.optimizer, self.loop = model, optimizer, loop
        self.out = Path(out_dir)
        self.path = self.out / loop.checkpoint_name
        self.config, self.lr_fn, self.generator = config, lr_fn, generator
        self.grad_clip, self.clip_fn = grad_clip, clip_fn
        self.sections_fn, self.extra_fn = sections_fn, extra_fn
        self.averaged = ema_of(model, ema_decay) if ema_decay is not None else None
        self.step = 0
        """Units done (the checkpoint's step)."""
        self.wall_before = 0.0
        """Wall time of the run's earlier sessions (from the checkpoint it resumed)."""
        self._session_start = time.perf_counter()

    @property
    def ema(self) -> Optional[nn.Module]:
        """The EMA copy of the model (same class and state-dict keys), or None."""
        return self.averaged.module if self.averaged is not None else None

    # ------------------------------------------------------------------ checkpoint
    def restore(self, ck: Checkpoint) -> None:
        """Continue from a checkpoint: weights, EMA, optimizer, generator and step."""
        restore(ck, self.model, self.optimizer, self.ema)
        if "rng" in ck.extra:
            self.generator.set_state(ck.extra["rng"].to(torch.uint8))
        self.step = ck.step
        self.wall_before = float(ck.meta.get("wall_seconds", 0.0))
        self._session_start = time.perf_counter()

    @property
    def wall_seconds(self) -> float:
        """Wall time of the whole run so far, earlier sessions included (stored as ``meta["wall_seconds"]``)."""
        return self.wall_before + time.perf_counter() - self._session_start

    def save(self, step: int) -> Path:
        """Write the checkpoint of ``step`` (rank 0; the other ranks wait for it)."""
        if dist.is_main():
            save_checkpoint(self.path, self.model, step, self.config, optimizer=self.optimizer, ema=self.ema,
                            extra={"rng": self.generator.get_state(), **self.extra_fn()},
                            meta={"kind": self.loop.kind, "wall_seconds": round(self.wall_seconds, 1)},
                            sections=self.sections_fn())
        dist.barrier()
        return self.path

    # ------------------------------------------------------------------ one update
    def optimizer_step(self, loss: torch.Tensor, lr_step: int) -> torch.Tensor:
        """Backward ``loss``, average gradients over ranks, clip, step at ``lr_fn(lr_step)``, update the EMA;
        returns the gradient norm (before clipping)."""
        lr = self.lr_fn(lr_step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for p in self.model.parameters() if p.grad is not None]
        dist.average_gradients(params)
        if self.clip_fn is not None:
            norm = self.clip_fn(list(self.model.parameters()))
        else:
            norm = torch.nn.utils.clip_grad_norm_(params, self.grad_clip if self.grad_clip is not None else math.inf)
        self.optimizer.step()
        if self.averaged is not None:
            self.averaged.update_parameters(self.model)
        return norm

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    # ------------------------------------------------------------------ the loop
    def run(
        self,
        step_fn: Callable[[int], tuple[Mapping[str, Scalar], Mapping[str, Optional[Scalar]]]],
        on_end: Optional[Callable[[int], None]] = None,
        finished: Optional[Callable[[int], bool]] = None,
    ) -> list[dict]:
        """Run units ``self.step .. end`` (``end`` = ``total``, or ``stop_after`` units on); returns one record
        per unit: ``{unit: n, **stats, **losses}``.

        ``step_fn(i)`` does unit ``i`` and returns ``(losses, stats)``; losses are averaged over ranks. ``on_end(end)``
        runs before the final checkpoint. ``finished(n)``, asked after each unit (n units done), ends the run early
        when it returns True (e.g. early stopping on a validation loss): that unit becomes the last."""
        from tqdm.auto import tqdm

        loop, main = self.loop, dist.is_main()
        start = self.step
        end = loop.total if loop.stop_after is None else min(loop.total, start + loop.stop_after)
        self.out.mkdir(parents=True, exist_ok=True)
        log_path = self.out / "train_log.jsonl"
        writer = None
        if main:
            from torch.utils.tensorboard import SummaryWriter

            truncate_jsonl_log(log_path, start, key=loop.unit)  # a resumed run drops the units past its checkpoint
            writer = SummaryWriter(str(self.out / "tb"), purge_step=start)
        bar = tqdm(range(start, end), desc=loop.desc, disable=not (loop.progress and main), initial=start, total=loop.total)
        history: list[dict] = []
        t0 = time.perf_counter()
        try:
            with stop_on_signals() as stop:
                for i in bar:
                    losses, stats = step_fn(i)
                    names = list(losses)
                    values = dist.mean_over_ranks([float(losses[k]) for k in names])
                    done = i + 1
                    rec = {loop.unit: done, **{k: _number(v) for k, v in stats.items()}, **dict(zip(names, values))}
                    history.append(rec)
                    if finished is not None and done != end and dist.any_rank(finished(done)):
                        end = done  # finished early: this unit is the last one
                    if main and (done % loop.log_every == 0 or done == end):
                        self._log(writer, log_path, rec, names, done, (done - start) / (time.perf_counter() - t0))
                        if names:
                            bar.set_postfix(loss=f"{rec['total' if 'total' in rec else names[0]]:.4f}")
                    if done == end:
                        break
                    if dist.any_rank(stop.signum is not None):  # checkpoint this unit, then stop
                        bar.close()
                        raise TrainingStopped(done, self.save(done), stop.signum or signal.SIGTERM, unit=loop.unit)
                    if done % loop.ckpt_every == 0 and done != end:
                        self.save(done)
            if on_end is not None:
                on_end(end)
            self.save(end)
        finally:
            bar.close()
            if writer is not None:
                writer.close()
        self.step = end
        return history

    def _log(self, writer, log_path: Path, rec: dict, loss_names: Iterable[str], done: int, rate: float) -> None:
        loss_names = set(loss_names)
        for k, v in rec.items():
            if k != self.loop.unit and v is not None:
                writer.add_scalar(("losses/" if k in loss_names else "train/") + k, v, done)
        writer.add_scalar(f"train/{self.loop.unit}s_per_sec", rate, done)
        with log_path.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")


def _number(v: Optional[Scalar]) -> Optional[float]:
    return float(v) if torch.is_tensor(v) else v
