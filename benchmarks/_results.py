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
