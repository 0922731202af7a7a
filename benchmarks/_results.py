"""What the benchmark scripts share: writing their JSON result file (arguments, machine, rows)."""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path


def write_results(out: Path, args: argparse.Namespace, rows: list) -> None:
    """Write ``{"args", "machine", "rows"}`` to ``out`` (its folder is created) and say where."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "machine": platform.platform(),
                               "rows": rows}, indent=1))
    print(f"wrote {out}")


def add_evaluation_args(ap: argparse.ArgumentParser, top_k: bool = True) -> None:
    """The evaluation flags the benchmarks share: --episodes, --eval-seed (7000: seeds no choice was tuned on),
    --top-k and --workers."""
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--eval-seed", type=int, default=7000)
    if top_k:
        ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--workers", type=int, default=None, help="simulator worker processes (default: one per core)")
