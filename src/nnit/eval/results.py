"""Evaluation results: :class:`EvalResult` (per-network metrics and per-episode arrays) and its builders.

Every evaluation, robot or image, CPU or GPU, harness or PPO, builds its result here:
:meth:`EvalResult.from_episodes` from (N, E) episode arrays, :meth:`EvalResult.from_classification`
from per-network accuracy and loss, and :meth:`EvalResult.merge` joins results of several
architectures into one (the joint top-k). Results save to JSON + CSV (``nnit.eval/1``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from nnit.errors import NNiTError
from nnit.fileio import atomic_write_text
from nnit.tasks.registry import ImageTaskSpec, RobotTaskSpec

POLICY = "clamp(mlp(obs), -1, 1)"
"""How a robot network is run (recorded in ``info["policy"]``)."""


@dataclass
class EvalResult:
    """Per-network results of one evaluation (and, for robot tasks, per episode)."""

    task: str
    """Task name."""
    kind: Literal["robot", "image"]
    """Task family."""
    arch: dict
    """The evaluated architecture (``Architecture.to_dict()``)."""
    metrics: dict[str, np.ndarray]
    """Per-network metrics, each shape (N,): robot ``mean_return``, ``std_return``, ``success_rate``,
    ``success_at_end_rate``; image ``accuracy``, ``loss``."""
    per_episode: dict[str, np.ndarray] = field(default_factory=dict)
    """Robot tasks: ``return``, ``success_once``, ``success_at_end``, each shape (N, E)."""
    seeds: list[int] = field(default_factory=list)
    """Episode e of every network used seed ``seeds[e]`` (robot tasks)."""
    info: dict = field(default_factory=dict)
    """How it ran: backend, workers, control mode, wall time, env steps, ..."""

    @property
    def n(self) -> int:
        """Number of networks."""
        return int(len(next(iter(self.metrics.values()))))

    @property
    def primary(self) -> str:
        """The metric networks are ranked by: ``mean_return`` (robot) or ``accuracy`` (image)."""
        return "mean_return" if self.kind == "robot" else "accuracy"

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_episodes(
        cls,
        task: RobotTaskSpec,
        arch: dict,
        returns: np.ndarray,
        success_once: np.ndarray,
        success_at_end: np.ndarray,
        seeds: Sequence[int],
        wall_s: float,
        run: dict | None = None,
        throughput: bool = True,
    ) -> "EvalResult":
        """A robot result from (N, E) episode arrays; episode e of every network used ``seeds[e]``.

        ``info`` holds ``run`` (how it ran, e.g. backend and workers) first, then the protocol
        (control mode, steps, policy, base seed = ``seeds[0]``, episodes) and, with ``throughput``,
        the env-step count and rate next to the wall time.
        """
        rets = np.asarray(returns, dtype=np.float64)
        once, at_end = np.asarray(success_once, dtype=bool), np.asarray(success_at_end, dtype=bool)
        if not rets.shape == once.shape == at_end.shape or rets.ndim != 2 or rets.shape[1] != len(seeds):
            raise ValueError(f"episode arrays {rets.shape}, {once.shape}, {at_end.shape} do not match (N, {len(seeds)} seeds)")
        seeds = [int(s) for s in seeds]
        info = {**(run or {}), "control_mode": task.control_mode, "episode_steps": task.episode_steps, "policy": POLICY,
                "base_seed": seeds[0], "episodes": len(seeds)}
        if throughput:
            steps = rets.shape[0] * len(seeds) * task.episode_steps
            info.update(env_steps=int(steps), wall_s=round(wall_s, 3),
                        env_steps_per_s=round(steps / wall_s, 1) if wall_s > 0 else math.nan)
        else:
            info["wall_s"] = round(wall_s, 3)
        return cls(
            task=task.name,
            kind="robot",
            arch=arch,
            metrics=aggregate(rets, once, at_end),
            per_episode={"return": rets, "success_once": once.astype(np.float64), "success_at_end": at_end.astype(np.float64)},
            seeds=seeds,
            info=info,
        )

    @classmethod
    def from_classification(cls, task: ImageTaskSpec, arch: dict, accuracy: np.ndarray, loss: np.ndarray, info: dict) -> "EvalResult":
        """An image result from per-network (N,) accuracy and mean cross-entropy."""
        return cls(task=task.name, kind="image", arch=arch,
                   metrics={"accuracy": np.asarray(accuracy), "loss": np.asarray(loss)}, info=dict(info))

    @classmethod
    def merge(cls, results: Sequence["EvalResult"], label: str) -> "EvalResult":
        """One result over the networks of several results (e.g. several architectures, for the joint
        top-k), in order; ``arch`` becomes ``{"hidden": [], "label": label}``. All results must be of
        one task and kind and (robot tasks) share the episode seeds."""
        if not results:
            raise ValueError("nothing to merge")
        first = results[0]
        for r in results[1:]:
            if (r.task, r.kind, list(r.seeds)) != (first.task, first.kind, list(first.seeds)):
                raise ValueError(f"cannot merge {r.task} ({r.kind}, seeds {r.seeds}) into {first.task} ({first.kind}, seeds {first.seeds})")
        metrics = {k: np.concatenate([r.metrics[k] for r in results]) for k in first.metrics}
        per_ep = {k: np.concatenate([r.per_episode[k] for r in results]) for k in first.per_episode}
        return cls(first.task, first.kind, {"hidden": [], "label": label}, metrics, per_ep, first.seeds, {"merged": len(results)})

    # ------------------------------------------------------------------ serialization
    def to_dict(self) -> dict:
        return {
            "format": "nnit.eval/1",
            "task": self.task,
            "kind": self.kind,
            "arch": self.arch,
            "num_networks": self.n,
            "seeds": list(self.seeds),
            "info": self.info,
            "metrics": {k: v.tolist() for k, v in self.metrics.items()},
            "per_episode": {k: v.tolist() for k, v in self.per_episode.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> "EvalResult":
        return cls(
            task=d["task"],
            kind=d["kind"],
            arch=d["arch"],
            metrics={k: np.asarray(v, dtype=np.float64) for k, v in d["metrics"].items()},
            per_episode={k: np.asarray(v, dtype=np.float64) for k, v in d.get("per_episode", {}).items()},
            seeds=[int(s) for s in d.get("seeds", [])],
            info=d.get("info", {}),
        )

    def to_csv(self) -> str:
        """One row per network: ``network`` then every metric."""
        buf = io.StringIO()
        names = list(self.metrics)
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["network", *names])
        for i in range(self.n):
            w.writerow([i, *(f"{float(self.metrics[k][i]):.6g}" for k in names)])
        return buf.getvalue()

    def save(self, path: str | os.PathLike, extra: dict | None = None) -> tuple[Path, Path]:
        """Write ``path`` (JSON) and the same stem ``.csv``, each atomically (tmp + rename).

        ``extra`` (e.g. the top-k protocol summary) is stored under the JSON key ``"extra"``.
        """
        path = Path(path)
        d = self.to_dict()
        if extra:
            d["extra"] = extra
        csv_path = path.with_suffix(".csv")
        atomic_write_text(path, json.dumps(d, indent=1) + "\n")
        atomic_write_text(csv_path, self.to_csv())
        return path, csv_path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "EvalResult":
        return cls.from_dict(json.loads(Path(path).read_text()))


def episode_seeds(base_seed: int, episodes: int) -> list[int]:
    """The reset seed of each episode: ``base_seed + e`` (the same for every network)."""
    if episodes < 1:
        raise NNiTError(f"episodes must be >= 1, got {episodes}")
    return [int(base_seed) + e for e in range(episodes)]


def aggregate(returns: np.ndarray, success_once: np.ndarray, success_at_end: np.ndarray) -> dict[str, np.ndarray]:
    """Per-network metrics from (N, E) episode arrays: mean / std (population, ddof=0) of the return,
    success rates (fractions of episodes)."""
    returns = np.asarray(returns, dtype=np.float64)
    return {
        "mean_return": returns.mean(axis=1),
        "std_return": returns.std(axis=1),
        "success_rate": np.asarray(success_once, dtype=np.float64).mean(axis=1),
        "success_at_end_rate": np.asarray(success_at_end, dtype=np.float64).mean(axis=1),
    }


