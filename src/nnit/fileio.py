"""Atomic file writes shared by every stage: write a temporary file beside the target, then rename.

A reader (or a killed run) therefore sees either the old file or the complete new one, never a
half-written one. The temporary name carries the process id, so several processes writing the same
file (e.g. parallel ``nnit reproduce`` runs sharing ``stages.json``) never clobber each other's
temporary file.

``safetensors.save_file`` creates its file with mode 0600 whatever the umask; the safetensors writer
here gives the file the mode a plain ``open()`` would (0666 minus the umask), so checkpoints, weight
sets and zoo exports are as readable as every other output.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    import torch


def _tmp_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.{os.getpid()}.tmp")


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (parent folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(path)
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_json(path: str | os.PathLike, obj, indent: int = 1) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=indent))


def truncate_jsonl_log(path: str | os.PathLike, step: int, key: str = "step") -> None:
    """Keep only the records of a JSON-lines training log whose ``key`` is <= ``step`` (atomic rewrite).

    A run resumed from a checkpoint at ``step`` calls this so that the steps it redoes are logged once:
    the log then continues the loss curve of the killed run. A missing log is left missing."""
    path = Path(path)
    if not path.exists():
        return
    kept = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln).get(key, 0) <= step]
    atomic_write_text(path, "".join(ln + "\n" for ln in kept))


def atomic_save_safetensors(tensors: Mapping[str, "torch.Tensor"], path: str | os.PathLike,
                            metadata: Mapping[str, str] | None = None) -> Path:
    """``safetensors.torch.save_file`` made atomic, with the umask's file mode instead of 0600."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(path)
    try:
        save_file(dict(tensors), str(tmp), metadata=dict(metadata) if metadata is not None else None)
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
