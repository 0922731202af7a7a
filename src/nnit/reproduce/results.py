"""Typed readers of what the stages of ``nnit reproduce`` write, for the report.

Each class reads one stage's output file (``load`` returns None when the stage has not run) and keeps the
file's own dict for ``REPORT.json`` (``to_dict``), so the report's JSON holds exactly what the stages wrote.

  Teacher            reproduce/<task>/teacher.json           (teacher stage)
  GHNLog             <task>/ghn/train_log.jsonl              (ghn)
  DatasetRole        <task>/dataset/index.json per role      (dataset; :func:`nnit.ghn.dataset.role_summary`)
  Alignment          <task>/alignment/alignment.json         (alignment)
  DatasetEvaluation  eval/dataset/<h>/eval.json              (eval-dataset-*; ``nnit eval``)
  GenerationRecord   eval/<generator>/<h|joint>/results.json (eval-<generator>-*, joint, joint-t1; ``nnit generate``;
                     NNiT's generators are ``nnit`` at the preset's temperature and ``nnit-t1`` at temperature 1)
  Memorization       reproduce/<task>/memorization.json      (memorization)
  SplitMean          the mean of top-k rows over the seen or unseen architectures (a Table 2 cell)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from nnit.eval.harness import EvalResult
from nnit.eval.protocol import TopKSummary

PathLike = Union[str, Path]


def load_json(path: PathLike) -> Optional[dict]:
    """The JSON object in ``path``; None when it is missing or unreadable (a stage not run, or interrupted)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def top_k_row(d: Optional[Mapping]) -> Optional[TopKSummary]:
    """A :class:`TopKSummary` from its ``to_dict()`` form (None stays None)."""
    if not d:
        return None
    names = {f.name for f in fields(TopKSummary)}
    return TopKSummary(**{k: (tuple(v) if k == "indices" else v) for k, v in d.items() if k in names})


@dataclass(frozen=True)
class Teacher:
    """The teacher's success over seeded episodes (the paper's "Expert" row): the scripted teacher's, or the PPO
    expert's at a preset with ``ppo_experts``."""

    success_once: float
    success_at_end: float
    mean_return: float
    episodes: int
    raw: dict = field(repr=False)

    @classmethod
    def load(cls, path: PathLike) -> Optional["Teacher"]:
        d = load_json(path)
        if d is None:
            return None
        return cls(float(d["success_once"]), float(d["success_at_end"]), float(d["mean_return"]), int(d["episodes"]), d)

    def to_dict(self) -> dict:
        return self.raw


@dataclass(frozen=True)
class GHNLog:
    """The GHN ensemble's training log: one record per iteration."""

    records: list[dict]

    @classmethod
    def load(cls, path: PathLike) -> "GHNLog":
        path = Path(path)
        lines = path.read_text().splitlines() if path.exists() else []
        return cls([json.loads(ln) for ln in lines if ln.strip()])

    @property
    def iterations(self) -> int:
        return len(self.records)

    @property
    def final_loss(self) -> Optional[float]:
        """Mean loss of the last iteration."""
        return self.records[-1].get("loss_mean") if self.records else None

    def to_dict(self) -> dict:
        return {"iterations": self.iterations, "first": self.records[0] if self.records else None,
                "last": self.records[-1] if self.records else None}


@dataclass(frozen=True)
class DatasetRole:
    """The candidates and kept networks of one role (train / held_out / validation) of a built dataset."""

    role: str
    architectures: int
    candidates: int
    passed: int
    kept: int
    candidate_mean: Optional[float]
    """Mean primary metric (success rate or accuracy) of the candidates."""
    raw: dict = field(repr=False)

    @classmethod
    def load_all(cls, dataset: PathLike) -> Optional[dict[str, "DatasetRole"]]:
        """Every role of the dataset in ``dataset`` (None before it is built)."""
        from nnit.ghn.dataset import role_summary

        if not (Path(dataset) / "index.json").exists():
            return None
        out = {}
        for role, r in role_summary(dataset).items():
            mean = next((v for k, v in r.items() if k.startswith("candidate_mean_") and k != "candidate_mean_return"), None)
            out[role] = cls(role, r["architectures"], r["candidates"], r["passed"], r["kept"], mean, r)
        return out

    def to_dict(self) -> dict:
        return self.raw


@dataclass(frozen=True)
class AlignmentSet:
    """Alignment, diversity and task performance of one set of networks (GHN or SGD) of the study architecture."""

    num_networks: int
    alignment_score: float
    local_correlation: float
    nn_l2: float
    nn_cosine: float
    mean_return: Optional[float] = None
    success_rate: Optional[float] = None
    accuracy: Optional[float] = None

    @classmethod
    def from_dict(cls, d: Mapping) -> "AlignmentSet":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class Alignment:
    """The GHN vs SGD alignment study (Tables 1 / 6, Figures 3 / 4)."""

    sets: dict[str, AlignmentSet]
    figure: Optional[str]
    raw: dict = field(repr=False)

    @classmethod
    def load(cls, path: PathLike) -> Optional["Alignment"]:
        d = load_json(path)
        if d is None:
            return None
        return cls({name: AlignmentSet.from_dict(s) for name, s in d["sets"].items()}, d.get("figure"), d)

    def to_dict(self) -> dict:
        return self.raw


@dataclass(frozen=True)
class DatasetEvaluation:
    """``nnit eval`` of the dataset's kept networks of one architecture: per-network results and the top-k row."""

    result: EvalResult
    top_k: Optional[TopKSummary]
    """The top-k row on the ranking episodes."""
    top_k_report: Optional[TopKSummary] = None
    """The same networks on the fresh episodes (None: not re-evaluated)."""

    @classmethod
    def load(cls, path: PathLike) -> Optional["DatasetEvaluation"]:
        d = load_json(path)
        if d is None:
            return None
        extra = d.get("extra", {})
        return cls(EvalResult.from_dict(d), top_k_row(extra.get("top_k")), top_k_row(extra.get("top_k_report")))


@dataclass(frozen=True)
class JointSummary:
    """Joint sampling p(a, w): how many sampled architectures were valid, novel and distinct."""

    num: int
    valid: int
    novel: int
    distinct_archs: int
    raw: dict = field(repr=False)

    @classmethod
    def from_dict(cls, d: Optional[Mapping]) -> Optional["JointSummary"]:
        return None if not d else cls(int(d["num"]), int(d["valid"]), int(d["novel"]), int(d["distinct_archs"]), dict(d))

    def to_dict(self) -> dict:
        return self.raw


@dataclass(frozen=True)
class GenerationRecord:
    """``results.json`` of ``nnit generate --evaluate`` (:func:`nnit.api.save_generation`)."""

    top_k: list[TopKSummary]
    """One row per sampled architecture."""
    joint: Optional[JointSummary]
    """Joint mode: the architecture summary."""
    joint_top_k: Optional[TopKSummary]
    """Joint mode: the top-k row over every sampled network."""
    temperature: float
    """NNiT's sampling temperature (1 when not recorded: the baselines, or made before the option existed)."""
    raw: dict = field(repr=False)
    top_k_report: list[TopKSummary] = field(default_factory=list)
    """:attr:`top_k`'s networks on the fresh episodes (empty: not re-evaluated)."""
    joint_top_k_report: Optional[TopKSummary] = None
    """Joint mode: :attr:`joint_top_k`'s networks on the fresh episodes."""

    @classmethod
    def load(cls, path: PathLike) -> Optional["GenerationRecord"]:
        d = load_json(path)
        if d is None:
            return None
        rows = [r for r in (top_k_row(x) for x in d.get("top_k") or []) if r is not None]
        fresh = [r for r in (top_k_row(x) for x in d.get("top_k_report") or []) if r is not None]
        return cls(rows, JointSummary.from_dict(d.get("joint")), top_k_row(d.get("joint_top_k")),
                   float(d.get("temperature", 1.0)), d, fresh, top_k_row(d.get("joint_top_k_report")))

    def joint_dict(self) -> dict:
        """Joint mode, for ``REPORT.json``: the sampling temperature, the architecture summary, the top-k row on the
        ranking episodes and on the fresh episodes (None: not re-evaluated)."""
        return {"temperature": self.temperature, "summary": to_json(self.joint), "top_k": to_json(self.joint_top_k),
                "top_k_report": to_json(self.joint_top_k_report)}


@dataclass(frozen=True)
class MemorizationRow:
    """Generated networks of one generator and architecture against the nearest training network."""

    generator: str
    arch: list[int]
    num_generated: int
    num_train: int
    gen_to_train_median: float
    train_to_train_median: Optional[float]
    ratio_median: Optional[float]

    @classmethod
    def from_dict(cls, d: Mapping) -> "MemorizationRow":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class Memorization:
    rows: list[MemorizationRow]
    raw: dict = field(repr=False)

    @classmethod
    def load(cls, path: PathLike) -> Optional["Memorization"]:
        d = load_json(path)
        return None if d is None else cls([MemorizationRow.from_dict(r) for r in d.get("rows", [])], d)

    def to_dict(self) -> dict:
        return self.raw


@dataclass(frozen=True)
class SplitMean:
    """A Table 2 cell: the mean of the top-k rows of the seen (or unseen) architectures."""

    mean: float
    std_between: float
    success_rate: float
    archs: int

    @classmethod
    def of(cls, rows: Sequence[Optional[TopKSummary]]) -> Optional["SplitMean"]:
        """The mean over the architectures evaluated so far (None before any)."""
        rows = [r for r in rows if r is not None]
        if not rows:
            return None
        n = len(rows)
        return cls(sum(r.mean for r in rows) / n, sum(r.std_between for r in rows) / n,
                   sum(r.success_rate for r in rows) / n, n)

    @classmethod
    def from_dict(cls, d: Union[Mapping, "SplitMean"]) -> "SplitMean":
        if isinstance(d, SplitMean):
            return d
        return cls(float(d["mean"]), float(d.get("std_between", 0.0)), float(d.get("success_rate", 0.0)), int(d.get("archs", 1)))

    def to_dict(self) -> dict:
        return {"mean": self.mean, "std_between": self.std_between, "success_rate": self.success_rate, "archs": self.archs}


def to_json(x: Any) -> Any:
    """The JSON form of a (nested) result: ``to_dict()`` of the typed objects, mappings and lists element-wise."""
    if hasattr(x, "to_dict"):
        return x.to_dict()
    if isinstance(x, Mapping):
        return {k: to_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_json(v) for v in x]
    return x
