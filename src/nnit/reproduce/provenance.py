"""What each stage of ``nnit reproduce`` records about how it ran (its provenance), and the config-change check.

One JSON file per stage, beside the stage's log: ``runs/<preset>/reproduce/logs/<task>/<stage>.provenance.json``:

  schema          :data:`SCHEMA`
  task, stage, preset, status   status: done / failed / stopped
  command         the equivalent ``nnit`` command line (``(in-process)`` for the teacher and memorization steps)
  config          the stage's resolved config: its function, its arguments (paths under the run's folder as
                  ``$RUN/...``; runtime knobs that do not change results, :data:`RUNTIME_ARGS`, left out) and the
                  preset config the function resolves (e.g. ``ghn_config(preset, task)``)
  config_hash     sha256 of ``config`` as canonical JSON
  git             {"commit", "dirty"} of the source tree the ``nnit`` package was imported from (None outside git)
  started_utc, finished_utc, wall_seconds
  torch_threads, machine   torch's intra-op threads; platform, CPU count, Python / torch versions, GPU (no hostname)

A finished stage whose recorded ``config`` differs from what the current preset resolves to (:func:`config_changes`)
is stale: ``nnit reproduce`` moves its outputs aside and runs it again.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any, Optional

SCHEMA = 1
"""Version of the provenance file's layout."""

RUNTIME_ARGS = ("progress", "workers", "data_dir", "reuse")
"""Stage arguments that change how a stage runs but not its results: recorded in no config, so changing them
(e.g. more simulator workers, or a dataset copying the networks of an earlier build that the same ensemble paints
exactly) does not make a finished stage stale."""


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second: ``2026-12-01T09:30:00Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def canonical(config: Any) -> Any:
    """``config`` as plain JSON values (tuples -> lists, paths and other objects -> str), as it reads back from a file."""
    return json.loads(json.dumps(config, sort_keys=True, default=str))


def config_hash(config: Any) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``config``."""
    text = json.dumps(canonical(config), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


def config_changes(recorded: dict, current: dict) -> list[str]:
    """The settings whose value differs between a stage's recorded config and its current one, as
    ``"args.num 32 -> 100"``. A setting present in only one of them (added to or removed from the code since the
    stage ran) is not a change: its old run did not depend on it."""
    old, new = _flat(canonical(recorded)), _flat(canonical(current))
    return [f"{k} {json.dumps(old[k])} -> {json.dumps(new[k])}" for k in new if k in old and old[k] != new[k]]


def git_state(path: Optional[Path] = None) -> Optional[dict]:
    """``{"commit": <sha>, "dirty": <tracked files modified>}`` of the git tree holding ``path`` (default: this
    package's source); None when it is not in a git tree or git is missing."""
    where = str(path or Path(__file__).resolve().parent)
    try:
        commit = subprocess.run(["git", "-C", where, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30)
        if commit.returncode != 0:
            return None
        status = subprocess.run(["git", "-C", where, "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None}


def machine() -> dict:
    """The machine, without its hostname: platform, architecture, CPU count, Python and torch versions, GPU."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"platform": platform.platform(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__, "gpu": gpu}


def record(*, task: str, stage: str, preset: str, status: str, command: str, config: dict, started_utc: str,
           wall_seconds: float) -> dict:
    """A stage's provenance (the layout above), taken when the stage ends."""
    import torch

    return {"schema": SCHEMA, "task": task, "stage": stage, "preset": preset, "status": status, "command": command,
            "config": canonical(config), "config_hash": config_hash(config), "git": git_state(),
            "started_utc": started_utc, "finished_utc": utc_now(), "wall_seconds": round(wall_seconds, 1),
            "torch_threads": torch.get_num_threads(), "machine": machine()}


def load(path: Path) -> Optional[dict]:
    """The provenance in ``path``; None when there is none (or it is unreadable)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
