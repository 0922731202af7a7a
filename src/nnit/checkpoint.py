"""The one checkpoint format of nnit: a single safetensors file, written atomically.

A checkpoint holds model weights (``model.*``), optionally an EMA copy (``ema.*``), the optimizer
state (``optim.state.<i>.<key>``, with ``param_groups`` as JSON), any extra tensors of the stage
(``extra.*``, e.g. a DAgger buffer or an RNG state), the step, and the stage's config as JSON
metadata, so a resumed run rebuilds its model from the checkpoint alone. A stage may add named JSON
*sections* (e.g. NNiT's ``model_config``, ``codec``, ``data``), each stored as its own header entry
so that a reader of the raw safetensors header finds them directly. No pickle anywhere: a checkpoint
is safe to receive from someone else.

Paths: every function accepts a file or a run directory; a directory means
``<dir>/checkpoint.safetensors`` (:data:`DEFAULT_NAME`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from nnit.errors import NNiTError
from nnit.fileio import atomic_save_safetensors

FORMAT = "nnit.checkpoint/1"
DEFAULT_NAME = "checkpoint.safetensors"
"""The file a run directory's checkpoint lives in."""
_RESERVED = ("format", "step", "config", "param_groups", "has_optimizer", "meta", "sections")


class CheckpointError(NNiTError):
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
    sections: dict = field(default_factory=dict)
    """Named JSON documents the stage stored beside its config (see :func:`save_checkpoint`)."""
    path: Path | None = None
    """The file it was read from."""


def resolve_path(path: str | os.PathLike) -> Path:
    """``path`` itself, or ``path/checkpoint.safetensors`` when ``path`` is a directory."""
    path = Path(path)
    return path / DEFAULT_NAME if path.is_dir() else path


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
    sections: dict | None = None,
) -> Path:
    """Write model / EMA / optimizer / extra tensors and JSON metadata to ``path`` (tmp + rename).

    ``path`` may be a run directory (the file is then ``DEFAULT_NAME`` inside it). ``sections`` maps
    names to JSON-serializable documents, each written as its own header entry (names must not clash
    with the format's own keys, e.g. ``config``, ``meta``, ``step``).
    """
    path = resolve_path(path)
    sections = dict(sections or {})
    clash = sorted(set(sections) & set(_RESERVED))
    if clash:
        raise CheckpointError(f"checkpoint section names {clash} are reserved by the format")
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
        "sections": json.dumps(sorted(sections)),
    }
    metadata.update({name: json.dumps(doc, sort_keys=True) for name, doc in sections.items()})
    return atomic_save_safetensors(tensors, path, metadata)


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (a file or a run directory); clear error on a bad file."""
    from safetensors import safe_open

    path = resolve_path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path} (the file does not exist)")
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
        sections={name: json.loads(md[name]) for name in json.loads(md.get("sections", "[]")) if name in md},
        path=path,
    )


def checkpoint_meta(path: str | os.PathLike) -> dict:
    """A checkpoint's ``meta`` (kind, wall time, release info), read from the safetensors header only."""
    from safetensors import safe_open

    path = resolve_path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            md = f.metadata() or {}
    except Exception as err:
        raise CheckpointError(f"cannot read checkpoint {path}: {err} (truncated or not safetensors?)") from None
    return json.loads(md.get("meta", "{}"))


def checkpoint_kind(path: str | os.PathLike) -> str | None:
    """``meta["kind"]`` of a checkpoint, read from the safetensors header only (no tensors loaded)."""
    return checkpoint_meta(path).get("kind")


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


def export_release(src: str | os.PathLike, dst: str | os.PathLike, dtype: torch.dtype = torch.float16) -> Path:
    """A sampling-only copy of a checkpoint for a model zoo: the EMA weights (or the raw ones when there
    is no EMA) stored as ``model.*`` in ``dtype``, no optimizer / EMA / extra tensors, the same config,
    meta and sections (so every reader rebuilds the model exactly as from the training checkpoint).
    Loading casts the weights back to the model's float32."""
    from safetensors import safe_open

    ck = load_checkpoint(src)
    weights = ck.ema or ck.model
    tensors = {f"model.{k}": (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in weights.items()}
    with safe_open(str(ck.path), framework="pt") as f:
        md = dict(f.metadata() or {})
    meta = {**ck.meta, "release": {"from": str(ck.path), "step": ck.step, "dtype": str(dtype).replace("torch.", ""),
                                   "weights": "ema" if ck.ema else "model"}}
    md.update({"has_optimizer": "False", "param_groups": "[]", "meta": json.dumps(meta, sort_keys=True)})
    return atomic_save_safetensors(tensors, dst, md)
