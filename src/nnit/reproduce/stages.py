"""The Python call behind each stage of ``nnit reproduce``: the work of one ``nnit`` command, done in-process.

Each function does what its command does (same library calls, same files written, the same lines printed,
which the pipeline sends to the stage's log) and returns a typed result. Training stages resume from their
own checkpoints and, stopped by Ctrl-C / SIGTERM, checkpoint and raise :class:`nnit.stopping.TrainingStopped`.

  train_ghn        nnit train-ghn
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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Sequence, Union

from nnit import api
from nnit.api import EvalTable, GenerationResult, TrainOverrides, TrainRun

PathLike = Union[str, Path]


def _dir(path: Optional[PathLike]) -> Optional[str]:
    return None if path is None else str(path)


def train_ghn(task: str, preset: str, out: PathLike, *, data_dir: Optional[PathLike] = None, workers: Optional[int] = None,
              ensemble_size: Optional[int] = None, iterations: Optional[int] = None, seed: int = 0,
              progress: bool = False) -> Path:
    """Train (or resume) the task's GHN ensemble in ``out``; the checkpoint path (``nnit train-ghn``)."""
    from nnit.ghn.train import ghn_config, saved_teacher_checkpoint, train_ghn_ensemble
    from nnit.tasks.registry import get_task

    spec = get_task(task)
    cfg = ghn_config(preset, spec.name)
    if ensemble_size is not None:
        cfg = replace(cfg, ensemble_size=ensemble_size)
    if iterations is not None:
        cfg = replace(cfg, iterations=iterations)
    cfg = replace(cfg, seed=seed)
    mode = None
    if spec.kind == "robot":  # the teacher's controller (a resumed run keeps its PPO teacher)
        from nnit.experts.teachers import get_teacher

        mode = get_teacher(spec.name, checkpoint=saved_teacher_checkpoint(out)).spec.control_mode
    path = train_ghn_ensemble(spec.name, cfg, out, num_workers=workers, data_dir=_dir(data_dir), control_mode=mode,
                              progress=progress)
    print(f"GHN ensemble ({cfg.ensemble_size} members) saved to {path}")
    return Path(path)


def build_dataset(ghn: PathLike, preset: str, out: PathLike, *, data_dir: Optional[PathLike] = None,
                  workers: Optional[int] = None, archs: Optional[Sequence[str]] = None, episodes: Optional[int] = None,
                  keep: Optional[int] = None, progress: bool = False) -> Path:
    """Generate, evaluate, filter and keep the GHN ensemble's networks; the dataset directory (``nnit build-dataset``).
    Resumes: finished architectures are skipped."""
    from nnit.ghn.dataset import DATASET_PRESETS, build_dataset as build, format_role_summary, role_summary
    from nnit.weights.architecture import Architecture

    cfg = DATASET_PRESETS[preset]
    if episodes is not None:
        cfg = replace(cfg, episodes=episodes)
    if keep is not None:
        cfg = replace(cfg, keep_per_arch=keep)
    only = [Architecture.parse(a, 1, 1).hidden for a in archs] if archs else None
    path = Path(build(ghn, out, cfg, num_workers=workers, data_dir=_dir(data_dir), only=only, progress=progress))
    summary = json.loads((path / "summary.json").read_text())
    print(format_role_summary(role_summary(path)))
    print(f"dataset {path}: {summary['total_kept']} networks kept over {len(summary['architectures'])} architectures")
    return path


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
    from nnit.baselines.common import summarize_history

    res = api.train(dataset, preset, out, TrainOverrides(**overrides), progress=progress, log=print)
    if res.history:
        first, last = summarize_history(res.history)
        print(f"steps {res.start_step} -> {res.end_step} in {res.seconds:.0f} s; loss {first:.4f} -> {last:.4f}")
    else:
        print(f"already trained to step {res.end_step}")
    print(f"checkpoint: {res.checkpoint}")
    return res


@dataclass
class BaselineRun:
    """What :func:`train_baseline` did."""

    method: str
    checkpoint: Path
    start_step: int
    end_step: int
    parameters: dict


def train_baseline(method: str, dataset: PathLike, preset: str, out: PathLike, *, steps: Optional[int] = None,
                   normalization: str = "per_role", progress: bool = False) -> BaselineRun:
    """Train (or resume) D2NWG or SANE on NNiT's data and normalization (``nnit train-baseline``)."""
    from nnit.baselines.common import summarize_history
    from nnit.baselines.train import PRESETS, train_baseline as train
    from nnit.ghn.dataset import dataset_normalizer, iter_dataset

    dataset = Path(dataset)
    index = json.loads((dataset / "index.json").read_text())
    sets = [ws for _, ws in iter_dataset(dataset, roles=("train",))]
    if not sets:
        raise api.APIError(f"{dataset} holds no kept networks of train-role architectures; nothing to train on")
    normalizer = dataset_normalizer(dataset, normalization, sets)
    cfg = PRESETS[method][preset]
    if steps is not None:
        cfg = replace(cfg, **({"diffusion_steps": steps} if method == "d2nwg" else {"steps": steps}))
    info = {"task": index.get("task"), "control_mode": index.get("control_mode"), "dataset": str(dataset)}
    print(f"training {method} on {sum(ws.n for ws in sets)} networks of {len(sets)} {info['task']} architectures -> {out}")
    model, res = train(method, cfg, [normalizer.apply(ws) for ws in sets], out, normalizer=normalizer, info=info,
                       progress=progress)
    first, last = summarize_history(res.history)
    print(f"steps {res.start_step} -> {res.end_step}; loss {first:.4f} -> {last:.4f}; parameters {model.parameter_counts()}")
    print(f"checkpoint: {res.checkpoint}")
    return BaselineRun(method, Path(res.checkpoint), res.start_step, res.end_step, model.parameter_counts())


def evaluate_shard(task: str, weights: PathLike, out: PathLike, *, episodes: int, top_k: int, seed: int, preset: str,
                   control_mode: Optional[str] = None, data_dir: Optional[PathLike] = None, workers: Optional[int] = None,
                   progress: bool = False) -> EvalTable:
    """Evaluate a weight-set file (``nnit eval --weights``): ``out`` (JSON with the top-k row under ``extra``) and its CSV."""
    from nnit.weights.mlp import WeightSet

    ws = WeightSet.load(weights)
    table = api.evaluate(task, ws, episodes, seed, top_k=top_k, preset=preset, control_mode=control_mode, workers=workers,
                         data_dir=data_dir, progress=progress)
    result = table.results[ws.arch.hidden]
    result.info["weights"] = str(weights)
    json_path, csv_path = result.save(out, extra={"top_k": table.top_k.to_dict()})
    print(table.table())
    print(f"wrote {json_path} and {csv_path}")
    return table


def generate(task: str, checkpoint: PathLike, out: PathLike, *, arch: Optional[str], num: int, sampler: str, steps: int,
             temperature: float, episodes: int, top_k: int, eval_seed: int, preset: str, depth: int = 4, seed: int = 0,
             data_dir: Optional[PathLike] = None, workers: Optional[int] = None,
             progress: bool = False) -> tuple[GenerationResult, EvalTable, dict]:
    """Sample ``num`` networks (p(w | a) for ``arch``, the joint p(a, w) without), evaluate them and write what
    ``nnit generate --evaluate`` writes to ``out``; the generation, its table and the ``results.json`` record."""
    gen = api.generate(checkpoint, task, arch, num, sampler=sampler, steps=steps, temperature=temperature,  # type: ignore[arg-type]
                       depth=depth, seed=seed, progress=progress)
    how = ("SANE anchor sampling" if gen.sampler == "sane-anchors" else
           f"{gen.sampler}, {gen.steps} steps" + (f", temperature {gen.temperature:g}" if gen.temperature is not None else ""))
    print(f"{gen.mode} sampling: {num} networks ({how}) sampled and assembled in {gen.seconds:.2f} s")
    if gen.joint is not None:
        j = gen.joint
        print(f"joint: {j['valid']}/{num} sampled architectures valid, {j['novel']}/{num} novel "
              f"(not among the {len(gen.train_archs)} train architectures), {j['distinct_archs']} distinct")
    table = api.evaluate(task, gen, episodes, eval_seed, top_k=top_k, preset=preset, workers=workers,  # type: ignore[arg-type]
                         data_dir=data_dir, progress=progress)
    rec = api.save_generation(gen, Path(out), table)
    print(table.table())
    print(f"wrote {len(rec['files'])} weight file(s) and {Path(out) / 'results.json'}")
    return gen, table, rec
