"""The ``nnit`` command: one subcommand per pipeline stage (``nnit <stage> --help``).

Every subcommand is a thin wrapper over the Python API (:mod:`nnit.api`) or a stage's own entry point:
either a frozen config dataclass with a ``run()`` method or a typed function; tyro turns the dataclass
fields (or the signature) and their docstrings into flags and help.
Bad input (:class:`nnit.errors.NNiTError` and the error types derived from it) prints one line and exits with
status 2; any other exception is a bug and keeps its traceback. A training command stopped by Ctrl-C / SIGTERM
checkpoints its last step and exits with 128 + the signal number (:mod:`nnit.stopping`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Literal

from nnit.config import TOKENS, PresetName
from nnit.errors import NNiTError
from nnit.weights.architecture import SplitName


class CLIError(NNiTError):
    """A user-facing error of a command: printed as one line, exit status 2."""


def info(preset: PresetName = "cpu", mode: Literal["padded", "valid", "both"] = "both", json_out: bool = False,
         split: SplitName = "paper") -> None:
    """Show an architecture split (the paper's, or the varied widths-and-depths one) and the token counts of each
    architecture.

    Example: nnit info --preset cpu --mode both

    Example: nnit info --split varied --mode valid
    """
    from nnit.weights import Architecture, PatchGrid, get_split

    cfg = TOKENS[preset]
    grid = PatchGrid(cfg.patch_size, cfg.max_width)
    s = get_split(split)
    modes = ["padded", "valid"] if mode == "both" else [mode]
    rows = []
    # token counts depend on the task's input/output dims: report PickCube (42 -> 8) as the example
    for role in ("train", "held_out", "validation"):
        for h in getattr(s, role):
            arch = Architecture(42, h, 8)
            rows.append({"role": role, **({"category": s.category(h)} if role == "held_out" and split != "paper" else {}),
                         "hidden": list(h), "params": arch.num_params, **{m: grid.num_tokens(arch, m) for m in modes}})
    if json_out:
        print(json.dumps({"split": split, "rule": s.rule, "grid": vars(cfg), "architectures": rows}, indent=1))
        return
    print(f"split rule: {s.rule}" if split == "paper" else f"split {split}: {s.rule}")
    print(f"grid: p={cfg.patch_size}, M={cfg.max_width} (canvas {grid.height}x{grid.width}); example task dims 42 -> 8")
    rw, hw = (11, 18) if split == "paper" else (26, 20)
    print(f"{'role':<{rw}}{'hidden':<{hw}}{'params':>7}" + "".join(f"{m:>8}" for m in modes))
    for r in rows:
        role = r["role"] + (f"/{r['category']}" if "category" in r else "")
        print(f"{role:<{rw}}{','.join(map(str, r['hidden'])):<{hw}}{r['params']:>7}" + "".join(f"{r[m]:>8}" for m in modes))
    tested = [r for r in rows if r["role"] in ("train", "held_out")]
    for m in modes:
        counts = [r[m] for r in tested]
        print(f"{m}: mean {sum(counts) / len(counts):.1f} tokens, max {max(counts)} over the {len(tested)} "
              f"{'paper' if split == 'paper' else 'train and held-out'} architectures")


def export(checkpoint: Path, out: Path, dtype: Literal["float16", "bfloat16", "float32"] = "float16") -> None:
    """Write a sampling-only copy of a trained NNiT / baseline checkpoint (EMA weights, no optimizer) for a model zoo,
    or of a GHN ensemble (its weights without the optimizer and DAgger buffer; nnit build-dataset reads it).

    Example: nnit export --checkpoint runs/cpu/PushCube-v1/nnit --out zoo/nnit_PushCube-v1.safetensors
             nnit export --checkpoint runs/cpu/PickCube-v1/ghn/ghn.safetensors --out ghn.safetensors --dtype float32

    Args:
        checkpoint: A checkpoint file or run directory.
        out: The release file to write.
        dtype: Storage dtype of the weights (loading casts them back to float32).
    """
    import torch

    from nnit.checkpoint import CheckpointError, export_release

    try:
        path = export_release(checkpoint, out, getattr(torch, dtype))
    except CheckpointError as err:
        raise CLIError(str(err)) from None
    print(f"wrote {path} ({path.stat().st_size / 2**20:.2f} MiB)")


def main(argv: list[str] | None = None) -> None:
    import tyro

    from nnit.cli.analyze import AnalyzeCommand
    from nnit.cli.baselines import TrainBaselineCommand
    from nnit.cli.evaluate import EvalCommand
    from nnit.cli.experts import TrainExpertCommand
    from nnit.cli.generate import GenerateCommand, TrainCommand
    from nnit.cli.ghn import BuildDatasetCommand, TrainGHNCommand
    from nnit.cli.presets import presets_command
    from nnit.cli.reproduce import ReproduceCommand
    from nnit.reproduce.pipeline import StageFailed
    from nnit.stopping import Stopped

    commands = {
        "info": info,
        "presets": presets_command,
        "eval": EvalCommand,
        "train-expert": TrainExpertCommand,
        "train-ghn": TrainGHNCommand,
        "build-dataset": BuildDatasetCommand,
        "analyze": AnalyzeCommand,
        "train": TrainCommand,
        "generate": GenerateCommand,
        "train-baseline": TrainBaselineCommand,
        "reproduce": ReproduceCommand,
        "export": export,
    }
    try:
        command = tyro.extras.subcommand_cli_from_dict(commands, prog="nnit", args=argv, description=__doc__.splitlines()[0])
        if hasattr(command, "run"):  # a config dataclass: parsing built it, run() does the work
            command.run()
    except Stopped as stopped:  # Ctrl-C / SIGTERM during training: the last step is checkpointed
        print(f"nnit: {stopped}; rerun the same command to resume", file=sys.stderr)
        raise SystemExit(128 + stopped.signum) from None
    except StageFailed as err:  # a pipeline stage failed (nnit reproduce): its log tail, exit 1
        print(f"nnit: error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    except NNiTError as err:  # the user's input (a bad argument, file, checkpoint, setting): one line, exit 2
        print(f"nnit: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None

if __name__ == "__main__":
    main()
