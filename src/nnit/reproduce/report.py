"""REPORT.md from the outputs of ``nnit reproduce`` (every number is read from a file a stage wrote).

Tables follow the paper's numbering, each beside the paper's own numbers: Table 1 (GHN vs SGD
alignment and performance), Table 6 (dataset diversity), Table 2 (p(w|a) on seen and unseen
architectures vs D2NWG and SANE), Table 4 (per-architecture results), Table 3 (joint p(a, w)), plus
a memorization table, the teachers, the dataset, Fashion-MNIST and the measured time of every stage.
Every table with NNiT shows it at each of the preset's sampling temperatures
(:attr:`~nnit.reproduce.pipeline.ReproduceConfig.nnit_samplings`): temperature 1, the paper's sampler, and
the preset's own when it differs. A "claims" section checks the paper's claims against the numbers at
temperature 1 and says which the data do not support; what the preset's temperature does better is
reported apart, as this project's improvement.

Protocol: the top k of N networks are chosen on the ranking episodes; at a preset with ``report_episodes`` the robot
tasks' cells show those k networks on the fresh episodes, and ``REPORT.json`` keeps both (``evals`` / ``table2``:
the reported numbers, ``evals_ranking`` / ``table2_ranking``: the ranking episodes'). ``REPORT.json`` also holds
``schema_version`` (:data:`SCHEMA_VERSION`), the ``protocol`` and every stage's ``provenance`` (None: a stage
finished before provenance was recorded, marked in the "Time per stage" table).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Union

from nnit.eval.protocol import TopKSummary
from nnit.fileio import atomic_write_text
from nnit.reproduce.pipeline import NNiTSampling, Pipeline, ReproduceConfig, config_dict
from nnit.tasks.registry import is_robot_task
from nnit.reproduce.results import (Alignment, DatasetEvaluation, DatasetRole, GenerationRecord, GHNLog, Memorization,
                                    SplitMean, Teacher, load_json, to_json)
from nnit.weights.architecture import hidden_label

ROBOT_TASKS = ("PickCube-v1", "PushCube-v1", "StackCubeEasy-v1")

SCHEMA_VERSION = 2
"""``REPORT.json``'s layout: 2 adds ``schema_version``, ``protocol`` (ranking and fresh episodes), ``provenance``,
``evals_ranking`` / ``table2_ranking``; REPORT.json files without the field are the older layout."""

# ---------------------------------------------------------------------------- the paper's numbers
PAPER_TABLE1 = {"GHN": {"return": 39.35, "success": 99.0, "nn_l2": 54.66, "nn_cos": 0.07},
                "SGD": {"return": 39.49, "success": 98.9, "nn_l2": 41.73, "nn_cos": 0.02}}
"""PickCube-v1, [256,256,256], 35 seeds."""
PAPER_TABLE6 = {"PickCube-v1": (46.94, 0.17), "PushCube-v1": (49.66, 0.12), "StackCubeEasy-v1": (72.79, 0.21)}
PAPER_TABLE2 = {  # (return, std, success %)
    ("Dataset", "seen"): {"PickCube-v1": (39.37, 0.55, 98), "PushCube-v1": (42.02, 0.4, 100), "StackCubeEasy-v1": (39.53, 0.78, 94)},
    ("SANE", "seen"): {"PickCube-v1": (3.81, 0.29, 1), "PushCube-v1": (6.90, 0.25, 6), "StackCubeEasy-v1": (4.64, 0.16, 0)},
    ("D2NWG", "seen"): {"PickCube-v1": (38.59, 1.35, 98), "PushCube-v1": (42.28, 0.05, 100), "StackCubeEasy-v1": (37.65, 0.69, 90)},
    ("NNiT", "seen"): {"PickCube-v1": (38.77, 0.41, 98), "PushCube-v1": (42.10, 0.16, 100), "StackCubeEasy-v1": (38.38, 0.51, 91)},
    ("SANE", "unseen"): {"PickCube-v1": (3.65, 0.41, 1), "PushCube-v1": (5.89, 0.32, 2), "StackCubeEasy-v1": (3.71, 0.13, 0)},
    ("D2NWG", "unseen"): {"PickCube-v1": (28.31, 4.53, 59), "PushCube-v1": (37.35, 1.63, 89), "StackCubeEasy-v1": (27.18, 2.35, 42)},
    ("NNiT", "unseen"): {"PickCube-v1": (38.70, 0.36, 99), "PushCube-v1": (42.00, 0.19, 100), "StackCubeEasy-v1": (36.24, 1.33, 86)},
}
PAPER_TABLE3 = {"PickCube-v1": (38.85, 0.32, 99), "PushCube-v1": (41.99, 0.10, 100), "StackCubeEasy-v1": (37.57, 0.85, 90)}
PAPER_TABLE4 = {(32, 16, 64, 32): (39.69, 100), (32, 64, 16, 32): (39.01, 100), (32, 32, 32, 16): (38.99, 100),
                (64, 64, 16, 32): (38.81, 98), (32, 32, 16, 64): (37.75, 96), (32, 32, 32, 64): (37.01, 94),
                (32, 16, 16, 16): (38.53, 98), (16, 16, 16, 32): (33.80, 94)}
"""NNiT, the paper's task for Table 4 is not named per row (its text discusses PickCube)."""

BASELINES = (("d2nwg", "D2NWG"), ("sane", "SANE"))

NOT_RUN = "not run"
"""An NNiT cell whose stage has not run at that temperature (e.g. temperature 1 in a run from before it was sampled)."""


def generators(c: ReproduceConfig) -> list[tuple[str, str]]:
    """(generator key, name in the report) of NNiT at each sampling temperature, temperature 1 first, then the
    baselines: ``[("nnit-t1", "NNiT (T=1)"), ("nnit", "NNiT (T=0.5)"), ("d2nwg", "D2NWG"), ("sane", "SANE")]``."""
    return _nnit(c) + list(BASELINES)


def _record(d: Path, temperature: Optional[float]) -> Optional[GenerationRecord]:
    """``nnit generate``'s results in ``d``; None before it ran, or when sampled at another temperature than
    ``temperature`` (NNiT; None: a baseline) — outputs the pipeline reruns as stale."""
    rec = GenerationRecord.load(d / "results.json")
    return None if rec is None or (temperature is not None and rec.temperature != temperature) else rec


def _topk(pipe: Pipeline, task: str, gen: str, h, temperature: Optional[float] = None,
          fresh: bool = False) -> Optional[TopKSummary]:
    """The top-k row of one evaluation stage (None before it ran): on the ranking episodes, or with ``fresh`` the same
    networks on the fresh episodes (None when not re-evaluated); ``temperature``: NNiT's, which the results must have."""
    d = pipe.eval_dir(task, gen, hidden_label(h))
    if gen == "dataset":
        ev = DatasetEvaluation.load(d / "eval.json")
        return (ev.top_k_report if fresh else ev.top_k) if ev else None
    rec = _record(d, temperature)
    rows = (rec.top_k_report if fresh else rec.top_k) if rec else None
    return rows[0] if rows else None


Row = Union[TopKSummary, SplitMean]


def _fmt(row: Optional[Row], robot: bool, missing: str = "–") -> str:
    """A cell: return ± std (success) on robot tasks, accuracy ± std on image tasks; ``missing`` when there is no row."""
    if not row:
        return missing
    if robot:
        return f"{row.mean:.2f} ± {row.std_between:.2f} ({100 * row.success_rate:.0f}%)"
    return f"{100 * row.mean:.1f}% ± {100 * row.std_between:.1f}"


def ppo_expert_summary(run_dir: Path) -> Optional[dict]:
    """A finished ``nnit train-expert`` run (the ``expert`` stage's, or one made by hand): the actor's hidden widths,
    env steps, training wall time (sum of the logged rollout + update seconds) and the final evaluation (``eval.json``)."""
    from nnit.eval.harness import EvalResult

    if not (run_dir / "eval.json").exists():
        return None
    log = [json.loads(ln) for ln in (run_dir / "train_log.jsonl").read_text().splitlines() if ln.strip()]
    train = [r for r in log if "train/rollout_s" in r]
    ev = EvalResult.load(run_dir / "eval.json")
    return {"dir": str(run_dir), "control_mode": ev.info.get("control_mode"), "hidden": list(ev.arch.get("hidden", [])),
            "env_steps": max((r["global_step"] for r in log), default=0),
            "train_wall_s": sum(r["train/rollout_s"] + r["train/update_s"] for r in train),
            "episodes": int(ev.info.get("episodes", len(ev.seeds))), "first_seed": int(ev.info.get("base_seed", 0)),
            "success_once": float(ev.metrics["success_rate"][0]), "success_at_end": float(ev.metrics["success_at_end_rate"][0]),
            "mean_return": float(ev.metrics["mean_return"][0]), "std_return": float(ev.metrics["std_return"][0]),
            "evals": [{"env_steps": r["global_step"], "success_once": r["eval/success_once"]} for r in log if "eval/success_once" in r]}


@dataclass
class TaskResults:
    """Everything the stages of one task produced, as typed results (None: the stage has not run)."""

    robot: bool
    teacher: Optional[Teacher]
    ppo_expert: Optional[dict]
    """:func:`ppo_expert_summary` of the task's PPO expert: the ``expert`` stage's run at a preset with
    ``ppo_experts``, else a run made outside ``nnit reproduce`` in ``<task>/expert_ppo``."""
    ghn: GHNLog
    dataset: Optional[dict[str, DatasetRole]]
    alignment: Optional[Alignment]
    evals: dict[str, dict[str, Optional[TopKSummary]]]
    """{dataset / nnit-t1 / nnit / d2nwg / sane: {architecture label: top-k row}}; NNiT per sampling temperature
    (:func:`generators`: ``nnit-t1`` at 1 beside a preset temperature that is not 1, ``nnit`` at the preset's)."""
    table2: dict[str, dict[str, Optional[SplitMean]]]
    """{generator: {seen / unseen: mean row over those architectures}}."""
    joints: dict[str, Optional[GenerationRecord]]
    """Joint sampling p(a, w) per NNiT generator (sampling temperature); None: not run at that temperature."""
    memorization: Optional[Memorization]
    params: dict[str, int] = field(default_factory=dict)
    train_wall: dict[str, dict] = field(default_factory=dict)
    d2nwg_vae: dict[str, dict] = field(default_factory=dict)
    """D2NWG's sanity check per seen architecture: the dataset's networks and their VAE reconstructions (mean success
    or accuracy of all networks, reconstruction MSE)."""
    """Per generator: training wall clock over all sessions, the wall-clock cap, why training ended (equal budget)."""
    """Parameters of each trained generator."""
    train_steps: dict[str, int] = field(default_factory=dict)
    """Optimizer steps of each trained generator."""
    evals_ranking: dict[str, dict[str, Optional[TopKSummary]]] = field(default_factory=dict)
    """:attr:`evals` on the ranking episodes (the same as :attr:`evals` when the report shows those)."""
    table2_ranking: dict[str, dict[str, Optional[SplitMean]]] = field(default_factory=dict)
    """:attr:`table2` on the ranking episodes."""
    fresh: bool = False
    """:attr:`evals`, :attr:`table2` and the joint rows shown are the fresh episodes' (robot tasks at a preset with
    ``report_episodes``)."""

    def joint_row(self, generator: str) -> Optional[TopKSummary]:
        """The joint top-k row the report shows: on the fresh episodes when :attr:`fresh`, else the ranking one."""
        j = self.joints.get(generator)
        return None if j is None else (j.joint_top_k_report if self.fresh else j.joint_top_k)

    def to_dict(self) -> dict:
        d: dict = {"robot": self.robot, "teacher": to_json(self.teacher), "ppo_expert": self.ppo_expert, "ghn": self.ghn.to_dict()}
        if self.dataset is not None:
            d["dataset"] = to_json(self.dataset)
        d.update(alignment=to_json(self.alignment), evals=to_json(self.evals), table2=to_json(self.table2),
                 joint={g: None if j is None else j.joint_dict() for g, j in self.joints.items()},
                 memorization=to_json(self.memorization), params=self.params,
                 evals_ranking=to_json(self.evals_ranking), table2_ranking=to_json(self.table2_ranking), fresh=self.fresh)
        if self.train_steps:
            d["train_steps"] = self.train_steps
        if self.train_wall:
            d["train_wall"] = self.train_wall
        if self.d2nwg_vae:
            d["d2nwg_vae"] = self.d2nwg_vae
        return d


@dataclass
class ReportData:
    """Every result the report shows; :meth:`to_dict` is ``REPORT.json``."""

    preset: str
    config: dict
    samplings: tuple[NNiTSampling, ...]
    """NNiT's sampling temperatures (:attr:`ReproduceConfig.nnit_samplings`): temperature 1 first, whose numbers decide
    the verdicts on the paper's claims."""
    tasks: dict[str, TaskResults]
    not_run: dict[str, list[str]]
    """Per task, the planned stages that have not finished (or whose outputs were made with other settings)."""
    timings: dict[str, dict[str, dict]]
    """stages.json's records (seconds, status, command) of the stages the current plan has."""
    protocol: dict = field(default_factory=dict)
    """The evaluation protocol (:func:`protocol`)."""
    provenance: dict[str, dict[str, Optional[dict]]] = field(default_factory=dict)
    """Per task and planned stage that finished, its provenance summary (:func:`provenance_summary`); None: it ran
    before ``nnit reproduce`` recorded provenance."""

    @property
    def paper_sampling(self) -> NNiTSampling:
        """NNiT at temperature 1, the paper's sampler: the generator the verdicts on the paper's claims use."""
        return self.samplings[0]

    @property
    def own_sampling(self) -> Optional[NNiTSampling]:
        """NNiT at the preset's temperature when it is not 1 (this project's sampler); None at the paper's."""
        return self.samplings[1] if len(self.samplings) > 1 else None

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, "preset": self.preset, "config": self.config, "protocol": self.protocol,
                "provenance": self.provenance,
                "nnit_temperatures": {n.generator: n.temperature for n in self.samplings},
                "verdicts_at": self.paper_sampling.generator,
                "tasks": {t: r.to_dict() for t, r in self.tasks.items()}, "not_run": self.not_run, "timings": self.timings}


def protocol(c: ReproduceConfig) -> dict:
    """The evaluation protocol of the preset: N, k, the ranking and the fresh episodes and their seeds, the
    architectures, which numbers the report shows."""
    fresh = c.report_episodes > 0
    return {"num_networks": c.num_networks, "top_k": c.top_k,
            "ranking_episodes": c.episodes, "ranking_seeds": [c.eval_seed, c.eval_seed + c.episodes - 1],
            "report_episodes": c.report_episodes,
            "report_seeds": [c.report_seed, c.report_seed + c.report_episodes - 1] if fresh else None,
            "reported": "fresh episodes (robot tasks; image tasks: test accuracy)" if fresh else "ranking episodes",
            "dataset": "top-k of the dataset's kept networks of each architecture (at most the dataset preset's keep_per_arch)",
            "seen": [list(h) for h in c.seen], "unseen": [list(h) for h in c.unseen]}


def protocol_text(c: ReproduceConfig) -> str:
    """The protocol in one sentence: 'top-10 of 100 chosen on 10 ranking episodes (seeds 1000..1009), reported on 50
    fresh episodes (seeds 5000..5049) ...'."""
    ranking = f"top-{c.top_k} of {c.num_networks} chosen on {c.episodes} ranking episodes (seeds {c.eval_seed}..{c.eval_seed + c.episodes - 1})"
    if not c.report_episodes:
        return ranking + ", reported on those episodes (the paper's protocol)"
    return (ranking + f", reported on {c.report_episodes} fresh episodes (seeds {c.report_seed}.."
            f"{c.report_seed + c.report_episodes - 1}) that played no part in the choice")


def provenance_summary(rec: Optional[dict]) -> Optional[dict]:
    """What REPORT.json keeps of a stage's provenance: commit, dirtiness, config hash, times, threads."""
    if rec is None:
        return None
    git = rec.get("git") or {}
    return {"git_commit": git.get("commit"), "git_dirty": git.get("dirty"), "config_hash": rec.get("config_hash"),
            "started_utc": rec.get("started_utc"), "finished_utc": rec.get("finished_utc"),
            "wall_seconds": rec.get("wall_seconds"), "torch_threads": rec.get("torch_threads"),
            "cpu_count": (rec.get("machine") or {}).get("cpu_count")}


def task_results(pipe: Pipeline, task: str) -> TaskResults:
    """Read every output of ``task``'s stages."""
    c, T = pipe.cfg, pipe.task_dir(task)
    robot = is_robot_task(task)
    fresh = robot and c.report_episodes > 0
    temperature = {n.generator: n.temperature for n in c.nnit_samplings}
    gens = ("dataset", *(g for g, _ in generators(c)))
    ranking = {gen: {hidden_label(h): _topk(pipe, task, gen, h, temperature.get(gen)) for h in c.seen + c.unseen} for gen in gens}
    evals = {gen: {hidden_label(h): _topk(pipe, task, gen, h, temperature.get(gen), fresh=True) for h in c.seen + c.unseen}
             for gen in gens} if fresh else ranking

    def split_means(rows_by_gen: dict) -> dict:
        return {gen: {"seen": SplitMean.of([rows[hidden_label(h)] for h in c.seen]),
                      "unseen": SplitMean.of([rows[hidden_label(h)] for h in c.unseen])} for gen, rows in rows_by_gen.items()}

    table2 = split_means(evals)
    joints = {n.generator: _record(pipe.eval_dir(task, n.generator, "joint"), n.temperature) for n in c.nnit_samplings}
    t = TaskResults(robot=robot, teacher=Teacher.load(pipe.state_dir / task / "teacher.json"),
                    ppo_expert=ppo_expert_summary(pipe.expert_dir(task) if c.ppo_experts else T / "expert_ppo") if robot else None,
                    ghn=GHNLog.load(T / "ghn" / "train_log.jsonl"), dataset=DatasetRole.load_all(T / "dataset"),
                    alignment=Alignment.load(T / "alignment" / "alignment.json"), evals=evals, table2=table2,
                    joints={g: j if j is not None and j.raw else None for g, j in joints.items()},
                    memorization=Memorization.load(pipe.state_dir / task / "memorization.json"),
                    evals_ranking=ranking, table2_ranking=split_means(ranking) if fresh else table2, fresh=fresh)
    metric = "success_rate" if robot else "accuracy"
    for h in c.seen if "d2nwg" in c.baselines else ():
        ds_ev = DatasetEvaluation.load(pipe.eval_dir(task, "dataset", hidden_label(h)) / "eval.json")
        vae_path = pipe.eval_dir(task, "d2nwg-vae", hidden_label(h)) / "eval.json"
        vae_ev = DatasetEvaluation.load(vae_path)
        if ds_ev is not None and vae_ev is not None and metric in vae_ev.result.metrics:
            t.d2nwg_vae[hidden_label(h)] = {
                "dataset": float(ds_ev.result.metrics[metric].mean()), "reconstruction": float(vae_ev.result.metrics[metric].mean()),
                "recon_mse": (load_json(vae_path) or {}).get("extra", {}).get("recon_mse"), "networks": int(vae_ev.result.n)}
    for g in ("nnit", *c.baselines):
        ck = T / g / "checkpoint.safetensors"
        if ck.exists():
            from nnit.checkpoint import load_checkpoint

            k = load_checkpoint(ck)
            t.params[g] = sum(v.numel() for v in k.model.values() if v.is_floating_point()) if g == "nnit" else k.sections.get("params", {}).get("total")
            t.train_steps[g] = k.step
            budget = k.sections.get("budget", {})
            t.train_wall[g] = {"seconds": budget.get("seconds", k.meta.get("wall_seconds")), "cap": budget.get("max_seconds"),
                               "ended": budget.get("reason") or ("full steps" if g == "nnit" or budget else None),
                               "phase_end": budget.get("phase_end")}
    return t


def collect_results(pipe: Pipeline) -> ReportData:
    """Every result the report shows, read from the files the stages wrote."""
    c = pipe.cfg
    tasks = {task: task_results(pipe, task) for task in c.tasks}
    plan = {task: pipe.stages(task) for task in c.tasks}
    not_run = {task: [st.name for st in stages if not st.done_file.exists() or st.stale()] for task, stages in plan.items()}
    # only the stages the current plan has: a rebuilt dataset may drop an evaluation an older one had
    planned = {task: {st.name for st in stages} for task, stages in plan.items()}
    timings = {task: {name: r for name, r in stages.items() if name in planned[task]}
               for task, stages in (load_json(pipe.timings_path) or {}).items() if task in planned}
    prov = {task: {st.name: provenance_summary(pipe.provenance(task, st.name)) for st in stages if st.done_file.exists()}
            for task, stages in plan.items()}
    return ReportData(pipe.preset, config_dict(c), c.nnit_samplings, tasks, not_run, timings, protocol(c), prov)


def collect(pipe: Pipeline) -> dict:
    """Every number the report shows, as one JSON-able dict (also written next to the report)."""
    return collect_results(pipe).to_dict()


SUCCESS_MARGIN = 0.05
"""Robot tasks: success rates closer than this (5 points, e.g. 1% vs 0%) count as a tie, and the mean return
decides which generator is better (10 networks x 10 episodes per architecture cannot tell 1% from 0%)."""


def _versus(nn: Union[SplitMean, Mapping], other: Union[SplitMean, Mapping], robot: bool) -> tuple[str, str]:
    """('beats' or 'does not beat', the numbers behind it): robot tasks on success, or on return when the success
    rates tie; image tasks on accuracy."""
    nn, other = SplitMean.from_dict(nn), SplitMean.from_dict(other)
    if not robot:
        better, why = nn.mean > other.mean, f"{100 * nn.mean:.1f}% vs {100 * other.mean:.1f}% accuracy"
    elif abs(nn.success_rate - other.success_rate) >= SUCCESS_MARGIN:
        better = nn.success_rate > other.success_rate
        why = f"{100 * nn.success_rate:.0f}% vs {100 * other.success_rate:.0f}% success"
    else:
        better = nn.mean > other.mean
        why = (f"return {nn.mean:.1f} vs {other.mean:.1f}; success {100 * nn.success_rate:.0f}% vs "
               f"{100 * other.success_rate:.0f}%, a tie within {100 * SUCCESS_MARGIN:.0f} points")
    return ("beats" if better else "does not beat"), why


def _closeness(nn: Optional[SplitMean], ds: Optional[SplitMean], robot: bool) -> Optional[float]:
    """NNiT's unseen-architecture success (robot) or accuracy as a fraction of the dataset's own; None without both."""
    key = "success_rate" if robot else "mean"
    return getattr(nn, key) / getattr(ds, key) if nn and ds and getattr(ds, key) > 0 else None


CLOSE_TO_DATASET = 0.95
"""The paper's "close to the training set" claim holds when NNiT reaches this fraction of the dataset's own success
(robot tasks) or accuracy on the unseen architectures."""


def _claims(data: ReportData) -> list[str]:
    """The paper's claims against these numbers: decided with NNiT at temperature 1 (the paper's sampler); what the
    preset's own temperature does better is said apart, as this project's improvement, never as support for the paper."""
    paper, own = data.paper_sampling, data.own_sampling
    temperature_of = {paper.generator: paper.temperature, **({own.generator: own.temperature} if own else {})}
    at1 = "at temperature 1 (the paper's sampler)" if own else "at temperature 1"
    lines = []
    for task, t in data.tasks.items():
        tb = t.table2
        ds_un, nn_un = tb["dataset"]["unseen"], tb[paper.generator]["unseen"]
        lo = tb[own.generator]["unseen"] if own else None
        what = "success" if t.robot else "accuracy"
        key = "success_rate" if t.robot else "mean"
        baselines = [(name, b) for g, name in BASELINES if (b := tb.get(g, {}).get("unseen"))]
        if nn_un is None and (ds_un or lo or baselines):
            lines.append(f"- **{task}**: no verdict on the paper's claims yet: NNiT {at1} has not been evaluated on the unseen "
                         f"architectures (stages `eval-{paper.generator}-*`).")
        r = _closeness(nn_un, ds_un, t.robot)
        if r is not None:
            verdict = "supported" if r >= CLOSE_TO_DATASET else "NOT supported"
            lines.append(f"- **{task}**: NNiT's unseen-architecture {what} {at1} is {100 * r:.0f}% of the dataset's own "
                         f"({100 * getattr(nn_un, key):.0f}% vs {100 * getattr(ds_un, key):.0f}%): the paper's 'close to the training set' claim is {verdict} here.")
        for name, b in baselines:
            if nn_un:
                verdict, why = _versus(nn_un, b, t.robot)
                lines.append(f"- **{task}**: NNiT {at1} {verdict} {name} on unseen architectures ({why}).")
        if own and lo:
            lines += _improvement(task, t.robot, own, lo, nn_un, ds_un, baselines)
        a = t.alignment
        if a:
            g, s = a.sets["GHN"].alignment_score, a.sets["SGD"].alignment_score
            lines.append(f"- **{task}**: GHN weights are {'more' if g > s else 'NOT more'} aligned across seeds than SGD weights "
                         f"(alignment score {g:.3f} vs {s:.3f}); GHN nearest-neighbour cosine {a.sets['GHN'].nn_cosine:.2f} "
                         f"({'no' if a.sets['GHN'].nn_cosine < 0.5 else 'possible'} mode collapse).")
        for m in t.memorization.rows if t.memorization else []:
            if m.generator not in temperature_of:
                continue
            memorized = temperature_of[m.generator]
            where = f"- **{task}** [{','.join(map(str, m.arch))}]"
            if m.ratio_median is None:
                lines.append(f"{where}: one training network only, so no within-training distance to compare NNiT's "
                             f"samples with (no memorization claim).")
            else:
                lines.append(f"{where}: NNiT samples (temperature {memorized:g}) lie {m.ratio_median:.2f}x as far "
                             f"from their nearest training network (after neuron alignment) as training networks lie from each other "
                             f"({'close copies' if m.ratio_median < 0.3 else 'not copies'}).")
    return lines


def _improvement(task: str, robot: bool, own: NNiTSampling, lo: SplitMean, nn_un: Optional[SplitMean],
                 ds_un: Optional[SplitMean], baselines: list[tuple[str, SplitMean]]) -> list[str]:
    """Claims lines on NNiT at the preset's temperature (``lo``, unseen architectures) against temperature 1 (``nn_un``):
    this project's improvement where it does better, including the paper's claims it alone would meet."""
    T = f"{own.temperature:g}"
    head = f"- **{task}** (this project's sampler, temperature {T}; not evidence for the paper)"
    what = "success" if robot else "accuracy"
    r_lo = _closeness(lo, ds_un, robot)
    if nn_un is None:
        share = f": {100 * r_lo:.0f}% of the dataset's own unseen-architecture {what}" if r_lo is not None else ""
        return [f"{head}: NNiT at temperature {T}{share}; temperature 1 not evaluated yet, so no comparison."]
    verdict, why = _versus(lo, nn_un, robot)
    if verdict != "beats":
        return [f"{head}: NNiT at temperature {T} is not better than at temperature 1 on unseen architectures "
                f"(T={T} vs T=1: {why})."]
    out = [f"{head}: NNiT at temperature {T} does better than at temperature 1 on unseen architectures "
           f"(T={T} vs T=1: {why}) — this project's improvement."]
    r = _closeness(nn_un, ds_un, robot)
    if r_lo is not None and r is not None and r_lo >= CLOSE_TO_DATASET > r:
        out.append(f"{head}: at temperature {T} NNiT reaches {100 * r_lo:.0f}% of the dataset's own {what} (temperature 1: "
                   f"{100 * r:.0f}%), the 'close to the training set' bar the paper's sampler misses here.")
    for name, b in baselines:
        if _versus(lo, b, robot)[0] == "beats" and _versus(nn_un, b, robot)[0] != "beats":
            out.append(f"{head}: at temperature {T} NNiT beats {name} on unseen architectures ({_versus(lo, b, robot)[1]}), "
                       f"which it does not at temperature 1.")
    return out


def write_report(pipe: Pipeline, path: Path, figures_dir: Path) -> Path:
    """Write REPORT.md to ``path`` (figures copied to ``figures_dir``) and the same numbers as ``path`` with ``.json``."""
    data = collect_results(pipe)
    c = pipe.cfg
    figures_dir.mkdir(parents=True, exist_ok=True)
    rel = os.path.relpath(figures_dir, path.parent)
    L: list[str] = []
    add = L.append
    add(f"# NNiT reproduction report — preset `{pipe.preset}`\n")
    add(f"Generated by `nnit reproduce --preset {pipe.preset}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}"
        f"{', GPU ' + _gpu() if _gpu() else ', no GPU'}. Every number below is read from the files the stages wrote "
        f"(`{pipe.root}`; the same numbers as JSON in `{path.with_suffix('.json').name}`).\n")
    missing = {task: v for task, v in data.not_run.items() if v}
    if missing:
        add("**This report is partial**: stages not run yet — " + "; ".join(
            f"{task}: {', '.join(v[:6])}{f' and {len(v) - 6} more' if len(v) > 6 else ''}" for task, v in missing.items())
            + f". Their cells show '–' (NNiT's: '{NOT_RUN}'); `nnit reproduce --preset {pipe.preset}` runs them (finished stages are kept).\n")
    add("## Scale-downs against the paper\n")
    add(_scaledowns(pipe))
    # ---------------------------------------------------------------- time
    add("\n## Time per stage (measured)\n")
    add("Provenance: the commit (`+dirty`: with uncommitted changes) and the first characters of the resolved config's hash "
        "each stage recorded (`logs/<task>/<stage>.provenance.json` under the run folder); 'none' = finished before "
        "`nnit reproduce` recorded provenance (its config unknown).\n")
    add("| task | stage | seconds | status | provenance | command |\n|---|---|---:|---|---|---|")
    total = 0.0
    for task, stages in data.timings.items():
        for name, r in stages.items():
            total += r["seconds"] or 0.0
            cmd = r["command"] if not name.startswith(("eval-", "joint")) else "nnit eval / generate --evaluate (see the log)"
            secs = "–" if r["seconds"] is None else f"{r['seconds']:.0f}"
            add(f"| {task} | {name} | {secs} | {r['status']} | {_provenance_cell(data.provenance.get(task, {}), name)} | `{cmd}` |")
    add(f"\nTotal: {total / 60:.1f} min over the timed stages (a rerun keeps the time of the run that made a stage; "
        f"'–' = made outside `nnit reproduce`, its time is in the README).\n")
    commits = sorted({(p["git_commit"] or "?")[:10] + ("+dirty" if p["git_dirty"] else "")
                      for stages in data.provenance.values() for p in stages.values() if p})
    missing_prov = sum(p is None for stages in data.provenance.values() for p in stages.values())
    add(f"Commits the finished stages ran at: {', '.join(f'`{x}`' for x in commits) or 'none recorded'}"
        + (f"; {missing_prov} finished stages have no provenance" if missing_prov else "") + ".\n")
    # ---------------------------------------------------------------- teachers & dataset
    add("## Teachers and the dataset\n")
    if any(is_robot_task(t) for t in c.tasks):
        add(f"Teacher: {'the PPO expert of stage `expert` (below)' if c.ppo_experts else 'the scripted controller'}, "
            f"measured by stage `teacher` over {c.teacher_episodes} episodes (seeds {c.eval_seed}..); the GHN ensemble distils it.\n")
    add("| task | teacher success | teacher return | GHN iterations | GHN final loss | role | candidates | candidate mean | passed | kept |\n|---|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    for task, t in data.tasks.items():
        te = t.teacher
        for role, r in (t.dataset or {}).items():
            add(f"| {task} | {_pct(te.success_once if te else None)} | {_num(te.mean_return if te else None)} | {t.ghn.iterations} | "
                f"{_num(t.ghn.final_loss, 4)} | {role} | {r.candidates} | {_pct(r.candidate_mean)} | {r.passed} | {r.kept} |")
    experts = {task: t.ppo_expert for task, t in data.tasks.items() if t.ppo_expert}
    if experts:
        add("\nPPO experts (stage `expert`, `nnit train-expert`; the GHN ensembles distil them):\n" if c.ppo_experts else
            f"\nPPO experts (`nnit train-expert`, run outside `nnit reproduce`; the `{pipe.preset}` preset distils the scripted teachers):\n")
        add("| task | actor (Tanh) | control mode | env steps | training wall time | final eval episodes | success (once) | success at end | return | success during training |\n|---|---|---|---:|---:|---:|---:|---:|---:|---|")
        for task, e in experts.items():
            curve = ", ".join(f"{v['env_steps'] // 1000}k: {_pct(v['success_once'])}" for v in e["evals"])
            add(f"| {task} | {_hidden(e.get('hidden'))} | `{e['control_mode']}` | {e['env_steps']:,} | {e['train_wall_s'] / 60:.1f} min | {e['episodes']} (seeds {e['first_seed']}..) | "
                f"{_pct(e['success_once'])} | {_pct(e['success_at_end'])} | {e['mean_return']:.1f} ± {e['std_return']:.1f} | {curve} |")
    # ---------------------------------------------------------------- table 1 / 6 + figures
    add("\n## Table 1 analogue — structural alignment, GHN vs SGD\n")
    add("Same architecture per task (`nnit analyze alignment`, default [64,64,64,64]); the paper used PickCube-v1, [256,256,256], 35 seeds.\n")
    add("| task | set | networks | return | success | alignment score | local corr. | NN L2 (↑) | NN cosine (↓) |\n|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for task, t in data.tasks.items():
        a = t.alignment
        if not a:
            continue
        for name in ("GHN", "SGD"):
            s = a.sets[name]
            perf = (_num(s.mean_return), _pct(s.success_rate)) if t.robot else ("–", _pct(s.accuracy))
            add(f"| {task} | {name} | {s.num_networks} | {perf[0]} | {perf[1]} | {s.alignment_score:.3f} | {s.local_correlation:.3f} | "
                f"{s.nn_l2:.2f} | {s.nn_cosine:.3f} |")
    for name in ("GHN", "SGD"):
        p = PAPER_TABLE1[name]
        add(f"| paper PickCube-v1 | {name} | 35 | {p['return']} | {p['success']}% | – | – | {p['nn_l2']} | {p['nn_cos']} |")
    add("\nTable 6 analogue (diversity of GHN networks of one architecture; the paper: 100 filtered networks): "
        + "; ".join(f"{task} NN L2 {t.alignment.sets['GHN'].nn_l2:.2f}, cosine {t.alignment.sets['GHN'].nn_cosine:.3f}"
                    + (f" (paper {PAPER_TABLE6[task][0]}, {PAPER_TABLE6[task][1]})" if task in PAPER_TABLE6 else "")
                    for task, t in data.tasks.items() if t.alignment) + ".\n")
    add("Figures 3–4 analogues (|W| per layer across seeds; top rows GHN, bottom rows SGD):\n")
    for task, t in data.tasks.items():
        a = t.alignment
        if a and a.figure and Path(a.figure).exists():
            dst = figures_dir / f"alignment_{task}.png"
            shutil.copyfile(a.figure, dst)
            add(f"![{task} alignment heatmaps]({rel}/alignment_{task}.png)\n")
    # ---------------------------------------------------------------- table 2
    add(f"\n## Table 2 analogue — p(w | a), top-{c.top_k} of {c.num_networks}" + (
        f", {c.report_episodes} fresh episodes per kept network\n" if c.report_episodes else f", {c.episodes} episodes per network\n"))
    add(f"Protocol: {protocol_text(c)}; REPORT.json keeps the ranking episodes' numbers too (`table2_ranking`, `evals_ranking`). "
        f"Seen = mean over {len(c.seen)} train architectures {_archs(c.seen)}; unseen = mean over {len(c.unseen)} held-out "
        f"architectures {_archs(c.unseen)}. Dataset = the kept GHN networks of the same architectures (top-{c.top_k} of those kept), "
        f"same harness and seeds. Cells: return ± std across the top-k networks (success). "
        f"Sampler: {_sampling(c)}. The paper's NNiT numbers are beside "
        f"NNiT (T=1), the paper's sampler; '{NOT_RUN}': that stage has not run at that temperature.\n")
    robot_tasks = [t for t in data.tasks if is_robot_task(t)]
    paper_gen = c.paper_sampling.generator
    if robot_tasks:
        add("| generator | split | " + " | ".join(robot_tasks) + " | paper " + " | paper ".join(robot_tasks) + " |")
        add("|---|---|" + "---:|" * (2 * len(robot_tasks)))
        for gen, name in (("dataset", "Dataset"), *BASELINES[::-1], *_nnit(c)):
            for split in ("seen", "unseen"):
                ours = [_fmt(data.tasks[t].table2[gen][split], True, _missing(gen)) for t in robot_tasks]
                ref_name = "NNiT" if gen == paper_gen else None if gen in _nnit_keys(c) else name  # the paper sampled NNiT at 1
                ref = PAPER_TABLE2.get((ref_name, split), {})
                paper = [f"{ref[t][0]} ± {ref[t][1]} ({ref[t][2]}%)" if t in ref else "–" for t in robot_tasks]
                add(f"| {name} | {split} | " + " | ".join(ours) + " | " + " | ".join(paper) + " |")
    # ---------------------------------------------------------------- table 4
    add("\n## Table 4 analogue — per architecture\n")
    add("'paper NNiT (T=1)' is the paper's Table 4 (its sampler, temperature 1), whose task is not named (its text discusses PickCube-v1); it is repeated "
        "under each robot task for comparison.\n")
    gens = [("dataset", "Dataset")] + [g for g in generators(c) if g[0] in _nnit_keys(c) or g[0] in c.baselines]
    for task, t in data.tasks.items():
        add(f"\n**{task}**\n")
        add("| architecture | split | " + " | ".join(n for _, n in gens) + (" | paper NNiT (T=1) |" if t.robot else " |"))
        add("|---|---|" + "---:|" * (len(gens) + (1 if t.robot else 0)))
        for split, archs in (("seen", c.seen), ("unseen", c.unseen)):
            for h in archs:
                cells = [_fmt(t.evals[g][hidden_label(h)], t.robot, _missing(g)) for g, _ in gens]
                ref = PAPER_TABLE4.get(tuple(h))
                add(f"| {','.join(map(str, h))} | {split} | " + " | ".join(cells)
                    + ((f" | {ref[0]} ({ref[1]}%) |" if ref else " | – |") if t.robot else " |"))
    # ---------------------------------------------------------------- table 3
    add(f"\n## Table 3 analogue — joint p(a, w), {c.num_networks} samples of depth 4, top-{c.top_k}\n")
    add("Distinct architectures and the total-variation distance (TV) between the sampled and the training architecture "
        "frequencies, beside drawing as many architectures from the training set itself (mean over 2,000 draws): joint "
        "sampling covers the architecture distribution when they match. Schedule: how the architectures were sampled "
        "(arch-first: from the prior mode, then the weights; together: t_a = t_w over one layout).\n")
    add("| task | sampler | schedule | valid architectures | novel (not in train) | distinct (training draw) | TV (training draw) | "
        "top-k return / acc | success | paper |\n|---|---|---|---:|---:|---:|---:|---:|---:|---|")
    for task, t in data.tasks.items():
        if not any(j and j.joint for j in t.joints.values()):
            continue
        for n in c.nnit_samplings:
            j = t.joints.get(n.generator)
            ref = PAPER_TABLE3.get(task) if n.temperature == 1.0 else None
            paper_cell = f"{ref[0]} ± {ref[1]}, {ref[2]}%" if ref else "–"
            if not j or not j.joint:
                add(f"| {task} | {n.label} | – | {NOT_RUN} | – | – | – | – | – | {paper_cell} |")
                continue
            s, k = j.joint, t.joint_row(n.generator)
            ref_draw = s.raw.get("train_reference") or {}
            d_ref = (ref_draw.get("distinct_archs") or {}).get("mean")
            tv, tv_ref = s.raw.get("tv_to_train"), (ref_draw.get("tv_to_train") or {}).get("mean")
            add(f"| {task} | {n.label} | {s.raw.get('schedule', '–')} | {s.valid}/{s.num} | {s.novel}/{s.num} | "
                f"{s.distinct_archs} ({_num(d_ref, 1)}) | {_num(tv)} ({_num(tv_ref)}) | "
                f"{_num(k.mean if k else None)} ± {_num(k.std_between if k else None)} | "
                f"{_pct(k.success_rate if k else None) if t.robot else '–'} | {paper_cell} |")
    # ---------------------------------------------------------------- memorization
    add("\n## Memorization — distance to the nearest training network after aligning hidden neurons\n")
    add("RMS distance per parameter in the normalized weight space (weight matching, `nnit.analysis.memorization`). "
        "ratio = generated→nearest-train / train→nearest-other-train (medians): ~0 = copies, ~1 = as novel as the training networks are from each other. "
        "NNiT's samples at each of its sampling temperatures.\n")
    add("| task | generator | architecture | generated | train | gen→train | train→train | ratio |\n|---|---|---|---:|---:|---:|---:|---:|")
    for task, t in data.tasks.items():
        for r in t.memorization.rows if t.memorization else []:
            gen = dict(generators(c)).get(r.generator, r.generator)
            add(f"| {task} | {gen} | {','.join(map(str, r.arch))} | {r.num_generated} | {r.num_train} | "
                f"{r.gen_to_train_median:.3f} | {_num(r.train_to_train_median, 3)} | {_num(r.ratio_median, 2)} |")
    # ---------------------------------------------------------------- image tasks
    img = [t for t in data.tasks if not is_robot_task(t)]
    if img:
        add("\n## Image classification (test accuracy of the top-k networks)\n")
        add("| task | generator | seen | unseen |\n|---|---|---:|---:|")
        for task in img:
            for gen, name in (("dataset", "Dataset"), *generators(c)):
                tb = data.tasks[task].table2.get(gen, {})
                add(f"| {task} | {name} | {_fmt(tb.get('seen'), False, _missing(gen))} | {_fmt(tb.get('unseen'), False, _missing(gen))} |")
    # ---------------------------------------------------------------- D2NWG sanity check
    if any(t.d2nwg_vae for t in data.tasks.values()):
        add("\n## D2NWG sanity check — its VAE's reconstructions of the training networks\n")
        add("Mean success (robot tasks) or accuracy of all the dataset's kept networks of each seen architecture, as they are "
            "and after D2NWG's VAE encodes and decodes them (same episodes): no latent diffusion generates better networks than "
            "its decoder gives back. MSE: reconstruction error in the normalized weight space.\n")
        add("| task | architecture | networks | dataset | VAE reconstructions | reconstruction MSE |\n|---|---|---:|---:|---:|---:|")
        for task, t in data.tasks.items():
            for label, r in t.d2nwg_vae.items():
                add(f"| {task} | {label} | {r['networks']} | {_pct(r['dataset'])} | {_pct(r['reconstruction'])} | "
                    f"{_num(r['recon_mse'], 5)} |")
    # ---------------------------------------------------------------- params
    add("\n## Generators: size and training steps\n")
    add("Equal budget: D2NWG and SANE train on the same data until their own validation losses stop improving "
        "(each D2NWG phase separately), capped at NNiT's training wall clock for the task.\n")
    add("| task | generator | parameters | optimizer steps | training wall clock | wall-clock cap | ended by |\n|---|---|---:|---:|---:|---:|---|")
    for task, t in data.tasks.items():
        for g, n in t.params.items():
            w = t.train_wall.get(g, {})
            sec, cap = w.get("seconds"), w.get("cap")
            phases = "".join(f"; {k} phase to step {v}" for k, v in (w.get("phase_end") or {}).items())
            add(f"| {task} | {g} | {n:,} | {t.train_steps.get(g, '–')} | {f'{sec / 60:.0f} min' if sec else '–'} | "
                f"{f'{cap / 60:.0f} min' if cap else '–'} | {(w.get('ended') or '–') + phases} |")
    # ---------------------------------------------------------------- claims
    add("\n## The paper's claims against these numbers\n")
    if data.own_sampling:
        add(f"Decided with NNiT at temperature 1, the paper's sampler. Where this preset's temperature "
            f"({data.own_sampling.temperature:g}) does better, that is said in separate lines: this project's improvement, "
            f"not support for the paper's claims.\n")
    add("\n".join(_claims(data)) or "(no results yet)")
    add("")
    atomic_write_text(path.with_suffix(".json"), json.dumps(data.to_dict(), indent=1, default=str))
    return atomic_write_text(path, "\n".join(L) + "\n")


def _provenance_cell(stages: dict, name: str) -> str:
    """``abc1234567 / 1f2e3d4c`` (commit / config hash), ``none`` without provenance, '–' for a stage not finished."""
    if name not in stages:
        return "–"
    p = stages[name]
    if p is None:
        return "none"
    commit = (p["git_commit"] or "?")[:10] + ("+dirty" if p["git_dirty"] else "")
    return f"`{commit}` / `{(p['config_hash'] or '')[7:15]}`"


def _gpu() -> str:
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
    except Exception:  # noqa: BLE001
        return ""


def _pct(x) -> str:
    return "–" if x is None else f"{100 * float(x):.0f}%"


def _num(x, digits: int = 2) -> str:
    return "–" if x is None else f"{float(x):.{digits}f}"


def _hidden(widths) -> str:
    """Hidden widths as ``3x256`` when equal, else ``[64,32]``; '–' when unknown."""
    if not widths:
        return "–"
    return f"{len(widths)}x{widths[0]}" if len(set(widths)) == 1 else "[" + ",".join(map(str, widths)) + "]"


def _archs(archs) -> str:
    return ", ".join("[" + ",".join(map(str, h)) + "]" for h in archs)


def _sampling(c: ReproduceConfig) -> str:
    """How NNiT and the baselines sample: 'ancestral, 1000 steps' when the preset samples as the paper does, else
    'NNiT with the paper's sampler (ancestral, 1000 steps, temperature 1) and this preset's (ancestral, 1000 steps,
    temperature 0.5); baselines with the paper's sampler'."""
    own = c.nnit_samplings[-1]
    if len(c.nnit_samplings) == 1:
        return f"{own.sampler}, {own.steps} steps"
    paper = c.paper_sampling
    return (f"NNiT with the paper's sampler ({paper.sampler}, {paper.steps} steps, temperature 1) and this preset's "
            f"({own.sampler}, {own.steps} steps, temperature {own.temperature:g}); baselines with the paper's sampler")


def _nnit(c: ReproduceConfig) -> list[tuple[str, str]]:
    """(generator key, name) of NNiT at each sampling temperature, temperature 1 first."""
    return [(n.generator, n.label) for n in c.nnit_samplings]


def _nnit_keys(c: ReproduceConfig) -> set[str]:
    return {n.generator for n in c.nnit_samplings}


def _missing(gen: str) -> str:
    """A missing cell: NNiT's say which temperature's stage has not run ('not run'), others '–'."""
    return NOT_RUN if gen.startswith("nnit") else "–"


def _scaledowns(pipe: Pipeline) -> str:
    from nnit.diffusion.train import train_config
    from nnit.experts.ppo import ppo_config
    from nnit.ghn.dataset import DATASET_PRESETS
    from nnit.ghn.train import GHN_PRESETS, ghn_config

    p = pipe.preset
    g, d, n, c = GHN_PRESETS[p], DATASET_PRESETS[p], train_config(p), pipe.cfg
    robot = [t for t in c.tasks if is_robot_task(t)]
    if c.ppo_experts:
        over = c.stage_args.get("expert", {})  # the expert stage's own overrides of its preset
        e = {t: ppo_config(p, t) for t in robot}
        modes = sorted({str(over.get("control_mode") or x.control_mode) for x in e.values()})
        teacher = (f"PPO experts, one per task (stage `expert`), {' / '.join(sorted({_hidden(x.hidden) for x in e.values()}))} Tanh, "
                   f"{', '.join(modes)}; env steps: " + ", ".join(f"{t} {over.get('total_steps') or x.total_steps:,}" for t, x in e.items()))
    else:
        teacher = ("scripted privileged-state controllers (pd_ee_delta_pos); `nnit reproduce --preset paper` trains PPO experts "
                   "first, and a PPO expert drops in via `nnit train-ghn --teacher-checkpoint`")
    rows = [
        ("Teacher", "PPO expert 3x256 Tanh (multi-task)", teacher),
        ("GHN ensemble", "128 GHNs, 500 DAgger iterations (1500 StackCubeEasy)",
         f"{g.ensemble_size} GHNs, DAgger iterations x {g.updates_per_iteration} updates: "
         + ", ".join(f"{t} {ghn_config(p, t).iterations}" for t in robot) + f"; hidden {g.ghn.hidden_dim}"),
        ("Dataset", "100 kept networks per architecture, 64 filter episodes", f"<= {d.keep_per_arch} kept per architecture (one candidate per GHN), {d.episodes} filter episodes"),
        ("NNiT", "Table 7: 400k steps (1000 epochs), batch 16", f"{n.model}, steps: " + ", ".join(f"{t} {train_config(p, t).steps}" for t in c.tasks) + f", batch {n.batch_size}, {n.token_mode} tokens, {n.normalization} normalization"),
        ("Evaluation", "top-10 of 100, 50 episodes", protocol_text(c)),
        ("Architectures evaluated", "all 64 seen / 8 unseen", f"{len(c.seen)} seen / {len(c.unseen)} unseen"),
        ("Sampler", "1000-step ancestral", _sampling(c)),
    ]
    return "| item | paper | here |\n|---|---|---|\n" + "\n".join(f"| {a} | {b} | {x} |" for a, b, x in rows)
