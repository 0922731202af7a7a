"""The Python call behind each stage of ``nnit reproduce``: the work of one ``nnit`` command, done in-process.

Each function does what its command does (same library calls, same files written, the same lines printed,
which the pipeline sends to the stage's log) and returns a typed result. Training stages resume from their
own checkpoints and, stopped by Ctrl-C / SIGTERM, checkpoint and raise :class:`nnit.stopping.TrainingStopped`.

  train_expert     nnit train-expert          (:func:`nnit.api.train_expert`)
  train_ghn        nnit train-ghn             (:func:`nnit.api.train_ghn`)
  build_dataset    nnit build-dataset
  alignment        nnit analyze alignment
  train_nnit       nnit train                 (:func:`nnit.api.train`)
  train_baseline   nnit train-baseline
  evaluate_shard   nnit eval --weights        (:func:`nnit.api.evaluate`)
  generate         nnit generate --evaluate   (:func:`nnit.api.generate`, :func:`~nnit.api.evaluate`,
                                               :func:`~nnit.api.save_generation`)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence, Union

from nnit import api
from nnit.api import EvalTable, ExpertRun, GenerationResult, TrainOverrides, TrainRun

PathLike = Union[str, Path]


def _dir(path: Optional[PathLike]) -> Optional[str]:
    return None if path is None else str(path)


def train_expert(task: str, preset: str, out: PathLike, *, workers: Optional[int] = None, total_steps: Optional[int] = None,
                 control_mode: Optional[str] = None, backend: str = "auto", seed: int = 0, progress: bool = False) -> ExpertRun:
    """Train (or resume) the task's PPO expert in ``out`` and evaluate its actor (``nnit train-expert``)."""
    return api.train_expert(task, preset, out, total_steps=total_steps, control_mode=control_mode, workers=workers,  # type: ignore[arg-type]
                            backend=backend, seed=seed, progress=progress, log=print)


def train_ghn(task: str, preset: str, out: PathLike, *, data_dir: Optional[PathLike] = None, workers: Optional[int] = None,
              ensemble_size: Optional[int] = None, iterations: Optional[int] = None, seed: int = 0,
              teacher_checkpoint: Optional[PathLike] = None, progress: bool = False) -> Path:
    """Train (or resume) the task's GHN ensemble in ``out``; the checkpoint path (``nnit train-ghn``). ``teacher_checkpoint``:
    distil that PPO expert instead of the scripted teacher."""
    return api.train_ghn(task, preset, out, ensemble_size=ensemble_size, iterations=iterations, seed=seed,  # type: ignore[arg-type]
                         teacher_checkpoint=teacher_checkpoint, workers=workers, data_dir=data_dir, progress=progress, log=print)


def build_dataset(ghn: PathLike, preset: str, out: PathLike, *, data_dir: Optional[PathLike] = None,
                  workers: Optional[int] = None, archs: Optional[Sequence[str]] = None, episodes: Optional[int] = None,
                  keep: Optional[int] = None, reuse: Optional[PathLike] = None, progress: bool = False) -> Path:
    """Generate, evaluate, filter and keep the GHN ensemble's networks; the dataset directory (``nnit build-dataset``).
    Resumes: finished architectures are skipped. ``reuse``: an earlier dataset whose networks this ensemble paints
    exactly, with the same settings (an adopted shipped dataset): its architectures are copied."""
    return api.build_dataset(ghn, preset, out, episodes=episodes, keep=keep, archs=archs, workers=workers,  # type: ignore[arg-type]
                             data_dir=data_dir, reuse=reuse, progress=progress, log=print)


def alignment(ghn: PathLike, preset: str, out: PathLike, *, data_dir: Optional[PathLike] = None, arch: str = "64,64,64,64",
              networks: Optional[int] = None, workers: Optional[int] = None, progress: bool = False) -> dict:
    """GHN vs SGD alignment study; the contents of ``out/alignment.json`` (``nnit analyze alignment``)."""
    from nnit.analysis.alignment import alignment_study

    report = alignment_study(ghn, arch, preset, networks, out, evaluate=True, workers=workers, data_dir=data_dir,
                             progress=progress)
    print(json.dumps(report["sets"], indent=1))
    print(f"wrote {Path(out) / 'alignment.json'} and {report['figure']}")
    return report


def train_nnit(dataset: PathLike, preset: str, out: PathLike, *, progress: bool = False, **overrides) -> TrainRun:
    """Train (or resume) NNiT on the dataset (``nnit train``); ``overrides``: :class:`nnit.api.TrainOverrides` fields."""
    return api.train(dataset, preset, out, TrainOverrides(**overrides), progress=progress, log=print)  # type: ignore[arg-type]


def train_baseline(method: str, dataset: PathLike, preset: str, out: PathLike, *, steps: Optional[int] = None,
                   normalization: str = "per_role", max_seconds: float = 0.0, progress: bool = False) -> api.BaselineRun:
    """Train (or resume) D2NWG or SANE on NNiT's data and normalization (``nnit train-baseline``), until its validation
    loss plateaus (the presets that validate) or ``max_seconds`` of wall clock (NNiT's, in the equal-budget comparison)."""
    return api.train_baseline(method, dataset, preset, out, steps=steps, normalization=normalization,  # type: ignore[arg-type]
                              max_seconds=max_seconds, progress=progress, log=print)


def evaluate_shard(task: str, weights: PathLike, out: PathLike, *, episodes: int, top_k: int, seed: int, preset: str,
                   control_mode: Optional[str] = None, data_dir: Optional[PathLike] = None, workers: Optional[int] = None,
                   reconstruct_with: Optional[PathLike] = None, report_episodes: int = 0, report_seed: Optional[int] = None,
                   progress: bool = False) -> EvalTable:
    """Evaluate a weight-set file (``nnit eval --weights``): ``out`` (JSON with the top-k row under ``extra``) and its CSV.
    ``reconstruct_with`` (a D2NWG checkpoint): the networks after its VAE encodes and decodes them (``--reconstruct-with``;
    ``extra`` records the reconstruction MSE). ``report_episodes``: the top-k networks re-evaluated on that many fresh
    episodes from ``report_seed`` (``extra["top_k_report"]``)."""
    from nnit.weights.mlp import WeightSet

    ws = WeightSet.load(weights)
    extra: dict = {}
    if reconstruct_with is not None:
        from nnit.baselines.train import BaselineSampler

        ws, mse = BaselineSampler.from_checkpoint(reconstruct_with).reconstruct(ws)
        extra = {"recon_mse": mse, "reconstructed_by": str(reconstruct_with)}
        print(f"D2NWG VAE reconstruction MSE {mse:.5f} (normalized space)")
    table = api.evaluate(task, ws, episodes, seed, top_k=top_k, preset=preset, control_mode=control_mode, workers=workers,
                         data_dir=data_dir, report_episodes=report_episodes, report_seed=report_seed, progress=progress)
    result = table.results[ws.arch.hidden]
    result.info["weights"] = str(weights)
    json_path, csv_path = result.save(out, extra={"top_k": table.top_k.to_dict(), **api.report_fields(table, ws.arch.hidden),
                                                  **extra})
    print(table.table())
    print(f"wrote {json_path} and {csv_path}")
    return table


def generate(task: str, checkpoint: PathLike, out: PathLike, *, arch: Optional[str], num: int, sampler: str, steps: int,
             temperature: float, episodes: int, top_k: int, eval_seed: int, preset: str, depth: int = 4, seed: int = 0,
             data_dir: Optional[PathLike] = None, workers: Optional[int] = None, report_episodes: int = 0,
             report_seed: Optional[int] = None, progress: bool = False) -> tuple[GenerationResult, EvalTable, dict]:
    """Sample ``num`` networks (p(w | a) for ``arch``, the joint p(a, w) without), evaluate them and write what
    ``nnit generate --evaluate`` writes to ``out``; the generation, its table and the ``results.json`` record.
    ``report_episodes``: the top-k networks re-evaluated on that many fresh episodes from ``report_seed``."""
    gen = api.generate(checkpoint, task, arch, num, sampler=sampler, steps=steps, temperature=temperature,  # type: ignore[arg-type]
                       depth=depth, seed=seed, progress=progress)
    for line in gen.summary_lines():
        print(line)
    table = api.evaluate(task, gen, episodes, eval_seed, top_k=top_k, preset=preset, workers=workers,  # type: ignore[arg-type]
                         data_dir=data_dir, report_episodes=report_episodes, report_seed=report_seed, progress=progress)
    rec = api.save_generation(gen, Path(out), table)
    print(table.table())
    print(f"wrote {len(rec['files'])} weight file(s) and {Path(out) / 'results.json'}")
    return gen, table, rec
