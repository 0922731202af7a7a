"""Build the aligned weight dataset from a trained GHN ensemble (paper Appendix A, Table 5).

For every architecture of the split (``DatasetConfig.split``: train, held-out and validation), each of the K GHNs generates
one candidate; every candidate is evaluated with the harness (``episodes`` seeded episodes, or test
accuracy for image tasks), filtered by the task's thresholds (paper: success >= 0.9 / 0.9 / 0.8 and
return >= 35 / 35 / 30), and the best ``keep_per_arch`` survivors are stored.

Layout of a dataset directory::

    shards/<hidden>.safetensors   kept networks of one architecture (a WeightSet, raw weights)
    index.json                    every candidate: architecture, role (a held-out one's category), GHN member seed,
                                  metrics, kept; the split's name
    normalization.json            global mean / std of the kept *train* networks -> target std
    summary.json                  per-architecture counts and the stage's wall time

Resumable: an architecture whose shard and index entry exist is skipped, so a killed build picks
up at the next architecture. The index is rewritten atomically after every architecture.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Literal, Optional, Sequence

import numpy as np
import torch

from nnit.errors import NNiTError
from nnit.fileio import atomic_write_json
from nnit.tasks.registry import RobotTaskSpec, TaskSpec, get_task
from nnit.weights.architecture import Architecture, SplitName, get_split, hidden_label
from nnit.weights.mlp import WeightError, WeightSet
from nnit.weights.normalize import WeightNormalizer


@dataclass(frozen=True)
class DatasetConfig:
    """How candidates are evaluated, filtered and kept."""

    episodes: int = 8
    """Evaluation episodes per candidate (paper: 64)."""
    keep_per_arch: int = 16
    """Best survivors kept per architecture (paper: 100)."""
    eval_seed: int = 100_000
    """Seed of the first filtering episode (episode e uses eval_seed + e); disjoint from NNiT's evaluation seeds."""
    min_accuracy: float = 0.7
    """Image tasks: minimum validation accuracy (last 5k training images) a candidate needs
    (the paper gives no image threshold)."""
    target_std: float = 1.0
    """Std of the normalized weights the diffusion models see."""
    roles: tuple[str, ...] = ("train", "held_out", "validation")
    """Which parts of the architecture split get candidates."""
    split: SplitName = "paper"
    """The architecture split whose architectures are built (``nnit.weights.architecture.get_split``): ``paper``,
    ``varied`` or ``varied-all-depths``; the GHN ensemble's, or another split of the same widths and depths (the
    GHN paints any architecture of its space)."""
    apply_filter: bool = True
    """Keep only candidates passing the paper's thresholds. The tiny preset turns it off (its 3-iteration
    GHNs pass nothing; it proves the plumbing, e.g. for ``nnit reproduce --preset tiny``)."""


DATASET_PRESETS: dict[str, DatasetConfig] = {
    "tiny": DatasetConfig(episodes=2, keep_per_arch=2, roles=("train", "held_out"), apply_filter=False),
    "cpu": DatasetConfig(episodes=8, keep_per_arch=16),
    "paper": DatasetConfig(episodes=64, keep_per_arch=100),
}


def passes_filter(task: TaskSpec, metrics: dict, cfg: DatasetConfig) -> bool:
    """The paper's filter for one candidate (``metrics`` holds its per-network scalars)."""
    if isinstance(task, RobotTaskSpec):
        return metrics["success_rate"] >= task.success_threshold and metrics["mean_return"] >= task.return_threshold
    return metrics["accuracy"] >= cfg.min_accuracy


def shard_name(hidden: Iterable[int]) -> str:
    return hidden_label(hidden) + ".safetensors"


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (identifies the GHN checkpoint a dataset was built from)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def build_dataset(
    ghn_checkpoint: str | Path,
    out_dir: str | Path,
    cfg: DatasetConfig,
    num_workers: int | None = None,
    data_dir: str | None = None,
    limit_archs: int | None = None,
    only: Optional[Sequence[tuple[int, ...]]] = None,
    progress: bool = True,
    reuse: str | Path | None = None,
) -> Path:
    """Generate, evaluate, filter and store; returns the dataset directory (see module docstring).

    ``reuse``: an earlier dataset of the same GHN checkpoint and settings (another split of the same space allowed):
    an architecture it finished is copied from it (its shard and candidates' record, the role and category this
    split gives it) instead of being generated and evaluated again."""
    from tqdm.auto import tqdm

    from nnit.ghn.train import load_ghn_ensemble

    out = Path(out_dir)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    model, conf = load_ghn_ensemble(ghn_checkpoint)
    task = get_task(conf["task"], control_mode=conf.get("control_mode"))
    seeds = list(model.seeds)
    ghn_split = conf["train"].get("split", "paper")
    split, trained_on = get_split(cfg.split), get_split(ghn_split)
    if (split.widths, split.depths) != (trained_on.widths, trained_on.depths):
        raise NNiTError(f"{ghn_checkpoint} was trained on the {ghn_split!r} architecture split, not {cfg.split!r} or "
                        f"another split of its widths and depths; build with --split {ghn_split} or train a GHN with "
                        f"--split {cfg.split}")
    todo = [(role, h) for role in cfg.roles for h in getattr(split, role)]
    if only is not None:
        missing = [h for h in only if h not in {x for _, x in todo}]
        if missing:
            raise NNiTError(f"architectures {missing} are not in the split's {', '.join(cfg.roles)} roles")
        todo = [(role, h) for role, h in todo if h in set(only)]
    if limit_archs is not None:
        todo = todo[:limit_archs]
    index_path = out / "index.json"
    cfg_json = json.loads(json.dumps(asdict(cfg)))
    ghn_id = file_sha256(ghn_checkpoint)
    index = json.loads(index_path.read_text()) if index_path.exists() else {"task": task.name, "control_mode": getattr(task, "control_mode", None), "config": cfg_json, "ghn_sha256": ghn_id, "architectures": {}}
    defaults = json.loads(json.dumps(asdict(DatasetConfig())))  # fields added later read as their defaults
    if {**defaults, **index["config"]} != cfg_json or index["task"] != task.name:
        raise NNiTError(f"{out} was built with another dataset config; use a fresh --out directory")
    if index.get("ghn_sha256", ghn_id) != ghn_id:  # e.g. the GHN was trained further since: its candidates would be stale
        raise NNiTError(f"{out} was built from another GHN checkpoint than {ghn_checkpoint} (trained further since?); "
                         f"use a fresh --out directory")
    reused = _reusable(Path(reuse), cfg, ghn_id, task, model) if reuse is not None else {}
    t_start = time.perf_counter()
    evaluator = None
    if isinstance(task, RobotTaskSpec):
        from nnit.eval.harness import CPUEvaluator

        evaluator = CPUEvaluator(task, num_workers=num_workers)
    try:
        bar = tqdm(todo, desc=f"dataset {task.name}", unit="arch", disable=not progress)
        for role, hidden in bar:
            key = ",".join(map(str, hidden))
            done = index["architectures"].get(key)
            if done is not None and (done["num_kept"] == 0 or (out / "shards" / shard_name(hidden)).exists()):
                continue
            if key in reused:
                rec = reused[key]
                if rec["num_kept"]:
                    shutil.copyfile(Path(reuse) / "shards" / shard_name(hidden), out / "shards" / shard_name(hidden))
                index["architectures"][key] = {
                    **{k: v for k, v in rec.items() if k not in ("role", "category")}, "role": role,
                    **({"category": split.category(hidden)} if role == "held_out" else {}), "reused_from": str(reuse)}
                atomic_write_json(index_path, index)
                continue
            arch = Architecture(task.input_dim, hidden, task.output_dim)
            t0 = time.perf_counter()
            with torch.no_grad():
                cands = model.generate([arch])[0].detach()
            if evaluator is not None:
                res = evaluator.evaluate(cands, episodes=cfg.episodes, base_seed=cfg.eval_seed)
            else:
                from nnit.eval.harness import evaluate_image_task

                res = evaluate_image_task(task, cands, data_dir=data_dir, split="val")  # never the test split
            metric_names = list(res.metrics)
            per = [{m: float(res.metrics[m][i]) for m in metric_names} for i in range(cands.n)]
            primary = np.array([p[res.primary] for p in per])
            ok = [i for i in range(cands.n) if not cfg.apply_filter or passes_filter(task, per[i], cfg)]
            ok.sort(key=lambda i: -primary[i])
            kept = ok[: cfg.keep_per_arch]
            if kept:
                cands[torch.tensor(kept)].save(out / "shards" / shard_name(hidden),
                                               extra_metadata={"task": task.name, "member_seeds": [seeds[i] for i in kept]})
            index["architectures"][key] = {
                "role": role,
                **({"category": split.category(hidden)} if role == "held_out" else {}),
                "hidden": list(hidden),
                "candidates": [{"member_seed": seeds[i], **per[i], "passed": i in ok, "kept": i in kept} for i in range(cands.n)],
                "num_passed": len(ok),
                "num_kept": len(kept),
                "wall_s": round(time.perf_counter() - t0, 2),
            }
            atomic_write_json(index_path, index)
            bar.set_postfix(arch=key, kept=len(kept))
    finally:
        if evaluator is not None:
            evaluator.close()
    _finish(out, index, task, cfg, time.perf_counter() - t_start)
    return out


def _reusable(path: Path, cfg: DatasetConfig, ghn_id: str, task: TaskSpec, model) -> dict[str, dict]:
    """The finished architectures of an earlier dataset ``path`` that a build of ``cfg`` may copy (``build_dataset``'s
    ``reuse``): built for the same task, with the same settings but perhaps another split, by the same GHN: the same
    checkpoint file, or one whose members paint exactly the networks the earlier dataset kept (a weights-only
    release of it); an error names what differs."""
    index_path = path / "index.json"
    if not index_path.is_file():
        raise NNiTError(f"--reuse {path} is not a dataset directory (no index.json)")
    prev = json.loads(index_path.read_text())
    defaults = json.loads(json.dumps(asdict(DatasetConfig())))
    theirs = {**defaults, **prev["config"]}
    ours = json.loads(json.dumps(asdict(cfg)))
    differ = sorted(k for k in ours if k != "split" and theirs.get(k) != ours[k])
    if prev.get("task") != task.name or differ:
        why = f"task {prev.get('task')}" if prev.get("task") != task.name else f"other settings ({', '.join(differ)})"
        raise NNiTError(f"--reuse {path} was built with {why}; its networks cannot stand in for this build's")
    done = {k: r for k, r in prev["architectures"].items()
            if r["num_kept"] == 0 or (path / "shards" / shard_name(r["hidden"])).exists()}
    if prev.get("ghn_sha256") != ghn_id and not _paints_the_same(model, task, path, done):
        raise NNiTError(f"--reuse {path} was built by another GHN (its kept networks are not what this GHN paints); "
                        "its networks cannot stand in for this build's")
    return done


def _paints_the_same(model, task: TaskSpec, path: Path, done: dict[str, dict]) -> bool:
    """Whether ``model`` paints, for one architecture the dataset at ``path`` kept networks of, exactly those networks
    (the kept members' candidates, compared to float32 rounding)."""
    from nnit.weights.mlp import load_extra_metadata

    rec = next((r for r in done.values() if r["num_kept"]), None)
    if rec is None:
        return False
    shard = path / "shards" / shard_name(rec["hidden"])
    kept = WeightSet.load(shard)
    seeds = load_extra_metadata(shard).get("member_seeds") or []
    members = list(model.seeds)
    if len(seeds) != kept.n or any(s not in members for s in seeds):
        return False
    with torch.no_grad():
        cands = model.generate([Architecture(task.input_dim, tuple(rec["hidden"]), task.output_dim)])[0].detach()
    mine = cands[torch.tensor([members.index(s) for s in seeds])]
    return torch.allclose(mine.to_vector(), kept.to_vector(), rtol=1e-5, atol=1e-6)


def _finish(out: Path, index: dict, task: TaskSpec, cfg: DatasetConfig, wall: float) -> None:
    """Fit the normalizer on the kept train networks and write the summary."""
    train_sets = [ws for role, ws in iter_dataset(out, roles=("train",))]
    if train_sets:
        WeightNormalizer.fit(train_sets, target_std=cfg.target_std).save(out / "normalization.json")
    rows = {}
    for key, rec in index["architectures"].items():
        c = rec["candidates"]
        primary = "success_rate" if task.kind == "robot" else "accuracy"
        rows[key] = {
            "role": rec["role"],
            "candidates": len(c),
            "passed": rec["num_passed"],
            "kept": rec["num_kept"],
            f"mean_{primary}": float(np.mean([x[primary] for x in c])),
            f"kept_mean_{primary}": float(np.mean([x[primary] for x in c if x["kept"]])) if rec["num_kept"] else None,
        }
    prev = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    atomic_write_json(out / "summary.json", {
        "task": task.name,
        "architectures": rows,
        "total_kept": sum(r["kept"] for r in rows.values()),
        "wall_s_total": round(prev.get("wall_s_total", 0.0) + wall, 1),
    })


def iter_dataset(path: str | Path, roles: Iterable[str] = ("train",)) -> Iterable[tuple[str, WeightSet]]:
    """(role, WeightSet of the kept networks) for every stored architecture of the given roles."""
    path = Path(path)
    index = json.loads((path / "index.json").read_text())
    for key, rec in index["architectures"].items():
        if rec["role"] in roles and rec["num_kept"]:
            yield rec["role"], WeightSet.load(path / "shards" / shard_name(rec["hidden"]))


def dataset_normalizer(path: str | Path, mode: str = "global", sets: Optional[Sequence[WeightSet]] = None) -> WeightNormalizer:
    """The normalizer a generator trains with: the dataset's own global statistics (normalization.json,
    the paper) or, for ``mode="per_role"``, per-role statistics fitted on the kept train networks with
    the same target std. Every generator (NNiT and the baselines) gets its normalizer here."""
    path = Path(path)
    norm_path = path / "normalization.json"
    if not norm_path.is_file():
        raise WeightError(f"{norm_path} is missing; re-run nnit build-dataset to finish the dataset")
    base = WeightNormalizer.load(norm_path)
    if mode == "global":
        return base
    if sets is None:
        sets = [ws for _, ws in iter_dataset(path, roles=("train",))]
    return WeightNormalizer.fit(sets, target_std=base.target_std, mode=mode)  # type: ignore[arg-type]


def role_summary(path: str | Path, by: Literal["role", "category"] = "role") -> dict[str, dict]:
    """Per role (train / held_out / validation): architectures, candidates, mean candidate metric,
    fraction passing the filter, networks kept, and the kept networks' mean metric. ``by="category"`` splits the
    held-out architectures by their category (``held_out/width``, ``held_out/depth``, ...; datasets of splits
    with categories)."""
    path = Path(path)
    index = json.loads((path / "index.json").read_text())
    task = get_task(index["task"])
    primary = "success_rate" if task.kind == "robot" else "accuracy"
    out: dict[str, dict] = {}
    for rec in index["architectures"].values():
        key = rec["role"] + (f"/{rec['category']}" if by == "category" and rec.get("category") else "")
        r = out.setdefault(key, {"architectures": 0, "candidates": 0, "passed": 0, "kept": 0, "_all": [], "_kept": [], "_ret": []})
        r["architectures"] += 1
        r["candidates"] += len(rec["candidates"])
        r["passed"] += rec["num_passed"]
        r["kept"] += rec["num_kept"]
        r["_all"] += [c[primary] for c in rec["candidates"]]
        r["_kept"] += [c[primary] for c in rec["candidates"] if c["kept"]]
        r["_ret"] += [c["mean_return"] for c in rec["candidates"] if "mean_return" in c]
    for r in out.values():
        r[f"candidate_mean_{primary}"] = float(np.mean(r.pop("_all")))
        kept = r.pop("_kept")
        r[f"kept_mean_{primary}"] = float(np.mean(kept)) if kept else None
        ret = r.pop("_ret")
        if ret:
            r["candidate_mean_return"] = float(np.mean(ret))
        r["pass_rate"] = r["passed"] / max(r["candidates"], 1)
    return out


def format_role_summary(summary: dict[str, dict]) -> str:
    """A small text table of :func:`role_summary`."""
    w = max([11] + [len(role) + 2 for role in summary])
    lines = [f"{'role':<{w}}{'archs':>6}{'cands':>7}{'cand. mean':>12}{'passed':>8}{'kept':>6}{'kept mean':>11}"]
    for role, r in summary.items():
        key = next(k for k in r if k.startswith("candidate_mean_") and k != "candidate_mean_return")
        kept_key = "kept_mean_" + key[len("candidate_mean_"):]
        km = r[kept_key]
        lines.append(f"{role:<{w}}{r['architectures']:>6}{r['candidates']:>7}{r[key]:>12.3f}{r['passed']:>8}{r['kept']:>6}"
                     f"{(f'{km:.3f}' if km is not None else '-'):>11}")
    return "\n".join(lines)
