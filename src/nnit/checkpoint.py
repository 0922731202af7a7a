"""The one checkpoint format of nnit: a single safetensors file, written atomically.

A checkpoint holds model weights (``model.*``), optionally an EMA copy (``ema.*``), the optimizer
state (``optim.state.<i>.<key>``, with ``param_groups`` as JSON), any extra tensors of the stage
(``extra.*``, e.g. a DAgger buffer), the step, and the stage's config as JSON metadata, so a
resumed run rebuilds its model from the checkpoint alone. No pickle anywhere: a checkpoint is
safe to receive from someone else.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

FORMAT = "nnit.checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not match the model."""


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns."""

    step: int
    config: dict
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor] | None = None
    optimizer: dict | None = None
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)


def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list]:
    sd = opt.state_dict()
    tensors = {}
    for idx, st in sd["state"].items():
        for key, val in st.items():
            t = val if torch.is_tensor(val) else torch.tensor(val)
            tensors[f"optim.state.{idx}.{key}"] = t.detach().cpu().contiguous()
    return tensors, sd["param_groups"]


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    step: int,
    config: dict,
    optimizer: torch.optim.Optimizer | None = None,
    ema: nn.Module | None = None,
    extra: dict[str, torch.Tensor] | None = None,
    meta: dict | None = None,
) -> Path:
    """Write model / EMA / optimizer / extra tensors and JSON metadata to ``path`` (tmp + rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if ema is not None:
        tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in ema.state_dict().items()})
    groups: list = []
    if optimizer is not None:
        opt_t, groups = _optimizer_tensors(optimizer)
        tensors.update(opt_t)
    for k, v in (extra or {}).items():
        tensors[f"extra.{k}"] = v.detach().cpu().contiguous()
    metadata = {
        "format": FORMAT,
        "step": str(int(step)),
        "config": json.dumps(config, sort_keys=True),
        "param_groups": json.dumps(groups),
        "has_optimizer": str(optimizer is not None),
        "meta": json.dumps(meta or {}, sort_keys=True),
    }
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`; clear error on a bad file."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            md = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:
        raise CheckpointError(f"cannot read checkpoint {path}: {err} (truncated or not safetensors?)") from None
    if md.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an nnit checkpoint (format {md.get('format')!r})")

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

    optimizer = None
    if md.get("has_optimizer") == "True":
        state: dict[int, dict] = {}
        for k, v in part("optim.state.").items():
            idx, key = k.split(".", 1)
            state.setdefault(int(idx), {})[key] = v
        optimizer = {"state": state, "param_groups": json.loads(md["param_groups"])}
    ema = part("ema.") or None
    return Checkpoint(
        step=int(md["step"]),
        config=json.loads(md["config"]),
        model=part("model."),
        ema=ema,
        optimizer=optimizer,
        extra=part("extra."),
        meta=json.loads(md.get("meta", "{}")),
    )


def restore(ckpt: Checkpoint, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, ema: nn.Module | None = None) -> None:
    """Load a checkpoint's tensors into live objects (strict: shapes and names must match)."""
    try:
        model.load_state_dict(ckpt.model)
        if ema is not None and ckpt.ema is not None:
            ema.load_state_dict(ckpt.ema)
        if optimizer is not None and ckpt.optimizer is not None:
            optimizer.load_state_dict(ckpt.optimizer)
    except (RuntimeError, ValueError, KeyError) as err:
        raise CheckpointError(f"checkpoint does not match the model: {err}") from None
