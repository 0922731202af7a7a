"""REPORT.md from the outputs of ``nnit reproduce`` (every number is read from a file a stage wrote).

Tables follow the paper's numbering, each beside the paper's own numbers: Table 1 (GHN vs SGD
alignment and performance), Table 6 (dataset diversity), Table 2 (p(w|a) on seen and unseen
architectures vs D2NWG and SANE), Table 4 (per-architecture results), Table 3 (joint p(a, w)), plus
a memorization table, the teachers, the dataset, Fashion-MNIST and the measured time of every stage.
A "claims" section checks the paper's claims against these numbers and says which the data do not
support.
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
from nnit.reproduce.pipeline import Pipeline, config_dict
from nnit.tasks.registry import is_robot_task
from nnit.reproduce.results import (Alignment, DatasetEvaluation, DatasetRole, GenerationRecord, GHNLog, Memorization,
                                    SplitMean, Teacher, load_json, to_json)
from nnit.weights.architecture import hidden_label

ROBOT_TASKS = ("PickCube-v1", "PushCube-v1", "StackCubeEasy-v1")

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

GENERATORS = (("nnit", "NNiT"), ("d2nwg", "D2NWG"), ("sane", "SANE"))


def _topk(pipe: Pipeline, task: str, gen: str, h) -> Optional[TopKSummary]:
    """The top-k row of one evaluation stage (None before it ran)."""
    d = pipe.eval_dir(task, gen, hidden_label(h))
    if gen == "dataset":
        ev = DatasetEvaluation.load(d / "eval.json")
        return ev.top_k if ev else None
    rec = GenerationRecord.load(d / "results.json")
    return rec.top_k[0] if rec and rec.top_k else None


Row = Union[TopKSummary, SplitMean]


def _fmt(row: Optional[Row], robot: bool) -> str:
    if not row:
        return "–"
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
    """{dataset / nnit / d2nwg / sane: {architecture label: top-k row}}."""
    table2: dict[str, dict[str, Optional[SplitMean]]]
    """{generator: {seen / unseen: mean row over those architectures}}."""
    joint: Optional[GenerationRecord]
    memorization: Optional[Memorization]
    params: dict[str, int] = field(default_factory=dict)
    """Parameters of each trained generator."""
    train_steps: dict[str, int] = field(default_factory=dict)
    """Optimizer steps of each trained generator."""

    def to_dict(self) -> dict:
        d: dict = {"robot": self.robot, "teacher": to_json(self.teacher), "ppo_expert": self.ppo_expert, "ghn": self.ghn.to_dict()}
        if self.dataset is not None:
            d["dataset"] = to_json(self.dataset)
        d.update(alignment=to_json(self.alignment), evals=to_json(self.evals), table2=to_json(self.table2),
                 joint=None if self.joint is None else {"summary": to_json(self.joint.joint), "top_k": to_json(self.joint.joint_top_k)},
                 memorization=to_json(self.memorization), params=self.params)
        if self.train_steps:
            d["train_steps"] = self.train_steps
        return d


@dataclass
class ReportData:
    """Every result the report shows; :meth:`to_dict` is ``REPORT.json``."""

    preset: str
    config: dict
    tasks: dict[str, TaskResults]
    not_run: dict[str, list[str]]
    """Per task, the planned stages that have not finished."""
    timings: dict[str, dict[str, dict]]
    """stages.json's records (seconds, status, command) of the stages the current plan has."""

    def to_dict(self) -> dict:
        return {"preset": self.preset, "config": self.config, "tasks": {t: r.to_dict() for t, r in self.tasks.items()},
                "not_run": self.not_run, "timings": self.timings}


def task_results(pipe: Pipeline, task: str) -> TaskResults:
    """Read every output of ``task``'s stages."""
    c, T = pipe.cfg, pipe.task_dir(task)
    robot = is_robot_task(task)
    evals = {gen: {hidden_label(h): _topk(pipe, task, gen, h) for h in c.seen + c.unseen}
             for gen in ("dataset", *(g for g, _ in GENERATORS))}
    table2 = {gen: {"seen": SplitMean.of([rows[hidden_label(h)] for h in c.seen]),
                    "unseen": SplitMean.of([rows[hidden_label(h)] for h in c.unseen])} for gen, rows in evals.items()}
    joint = GenerationRecord.load(pipe.eval_dir(task, "nnit", "joint") / "results.json")
    t = TaskResults(robot=robot, teacher=Teacher.load(pipe.state_dir / task / "teacher.json"),
                    ppo_expert=ppo_expert_summary(pipe.expert_dir(task) if c.ppo_experts else T / "expert_ppo") if robot else None,
                    ghn=GHNLog.load(T / "ghn" / "train_log.jsonl"), dataset=DatasetRole.load_all(T / "dataset"),
                    alignment=Alignment.load(T / "alignment" / "alignment.json"), evals=evals, table2=table2,
                    joint=joint if joint is not None and joint.raw else None,
                    memorization=Memorization.load(pipe.state_dir / task / "memorization.json"))
    for g in ("nnit", *c.baselines):
        ck = T / g / "checkpoint.safetensors"
        if ck.exists():
            from nnit.checkpoint import load_checkpoint

            k = load_checkpoint(ck)
            t.params[g] = sum(v.numel() for v in k.model.values() if v.is_floating_point()) if g == "nnit" else k.sections.get("params", {}).get("total")
            t.train_steps[g] = k.step
    return t


def collect_results(pipe: Pipeline) -> ReportData:
    """Every result the report shows, read from the files the stages wrote."""
    c = pipe.cfg
    tasks = {task: task_results(pipe, task) for task in c.tasks}
    plan = {task: pipe.stages(task) for task in c.tasks}
    not_run = {task: [st.name for st in stages if not st.done_file.exists()] for task, stages in plan.items()}
    # only the stages the current plan has: a rebuilt dataset may drop an evaluation an older one had
    planned = {task: {st.name for st in stages} for task, stages in plan.items()}
    timings = {task: {name: r for name, r in stages.items() if name in planned[task]}
               for task, stages in (load_json(pipe.timings_path) or {}).items() if task in planned}
    return ReportData(pipe.preset, config_dict(c), tasks, not_run, timings)


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


def _claims(data: ReportData) -> list[str]:
    lines = []
    for task, t in data.tasks.items():
        tb = t.table2
        ds_un, nn_un = tb["dataset"]["unseen"], tb["nnit"]["unseen"]
        key = "success_rate" if t.robot else "mean"
        what = "success" if t.robot else "accuracy"
        if ds_un and nn_un and getattr(ds_un, key) > 0:
            r = getattr(nn_un, key) / getattr(ds_un, key)
            verdict = "supported" if r >= 0.95 else "NOT supported"
            lines.append(f"- **{task}**: NNiT's unseen-architecture {what} is {100 * r:.0f}% of the dataset's own "
                         f"({100 * getattr(nn_un, key):.0f}% vs {100 * getattr(ds_un, key):.0f}%): the paper's 'close to the training set' claim is {verdict} here.")
        for g, name in GENERATORS[1:]:
            b = tb.get(g, {}).get("unseen")
            if b and nn_un:
                verdict, why = _versus(nn_un, b, t.robot)
                lines.append(f"- **{task}**: NNiT {verdict} {name} on unseen architectures ({why}).")
        a = t.alignment
        if a:
            g, s = a.sets["GHN"].alignment_score, a.sets["SGD"].alignment_score
            lines.append(f"- **{task}**: GHN weights are {'more' if g > s else 'NOT more'} aligned across seeds than SGD weights "
                         f"(alignment score {g:.3f} vs {s:.3f}); GHN nearest-neighbour cosine {a.sets['GHN'].nn_cosine:.2f} "
                         f"({'no' if a.sets['GHN'].nn_cosine < 0.5 else 'possible'} mode collapse).")
        for r in t.memorization.rows if t.memorization else []:
            if r.generator != "nnit":
                continue
            where = f"- **{task}** [{','.join(map(str, r.arch))}]"
            if r.ratio_median is None:
                lines.append(f"{where}: one training network only, so no within-training distance to compare NNiT's "
                             f"samples with (no memorization claim).")
            else:
                lines.append(f"{where}: NNiT samples lie {r.ratio_median:.2f}x as far from their nearest "
                             f"training network (after neuron alignment) as training networks lie from each other "
                             f"({'close copies' if r.ratio_median < 0.3 else 'not copies'}).")
    return lines


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
            + f". Their cells show '–'; `nnit reproduce --preset {pipe.preset}` runs them (finished stages are kept).\n")
    add("## Scale-downs against the paper\n")
    add(_scaledowns(pipe))
    # ---------------------------------------------------------------- time
    add("\n## Time per stage (measured)\n")
    add("| task | stage | seconds | status | command |\n|---|---|---:|---|---|")
    total = 0.0
    for task, stages in data.timings.items():
        for name, r in stages.items():
            total += r["seconds"] or 0.0
            cmd = r["command"] if not name.startswith("eval-") and name != "joint" else "nnit eval / generate --evaluate (see the log)"
            secs = "–" if r["seconds"] is None else f"{r['seconds']:.0f}"
            add(f"| {task} | {name} | {secs} | {r['status']} | `{cmd}` |")
    add(f"\nTotal: {total / 60:.1f} min over the timed stages (a rerun keeps the time of the run that made a stage; "
        f"'–' = made outside `nnit reproduce`, its time is in the README).\n")
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
    add(f"\n## Table 2 analogue — p(w | a), top-{c.top_k} of {c.num_networks}, {c.episodes} episodes per network\n")
    add(f"Seen = mean over {len(c.seen)} train architectures {_archs(c.seen)}; unseen = mean over {len(c.unseen)} held-out "
        f"architectures {_archs(c.unseen)}. Dataset = the kept GHN networks of the same architectures (top-{c.top_k} of those kept), "
        f"same harness and seeds ({c.eval_seed}..{c.eval_seed + c.episodes - 1}). Cells: return ± std across the top-k networks (success). "
        f"Sampler: {c.sampler}, {c.sampler_steps} steps{_temperature(c)}.\n")
    robot_tasks = [t for t in data.tasks if is_robot_task(t)]
    if robot_tasks:
        add("| generator | split | " + " | ".join(robot_tasks) + " | paper " + " | paper ".join(robot_tasks) + " |")
        add("|---|---|" + "---:|" * (2 * len(robot_tasks)))
        for gen, name in (("dataset", "Dataset"), *GENERATORS[::-1]):
            for split in ("seen", "unseen"):
                ours = [_fmt(data.tasks[t].table2[gen][split], True) for t in robot_tasks]
                ref = PAPER_TABLE2.get((name, split), {})
                paper = [f"{ref[t][0]} ± {ref[t][1]} ({ref[t][2]}%)" if t in ref else "–" for t in robot_tasks]
                add(f"| {name} | {split} | " + " | ".join(ours) + " | " + " | ".join(paper) + " |")
    # ---------------------------------------------------------------- table 4
    add("\n## Table 4 analogue — per architecture\n")
    add("'paper NNiT' is the paper's Table 4, whose task is not named (its text discusses PickCube-v1); it is repeated "
        "under each robot task for comparison.\n")
    gens = [("dataset", "Dataset")] + [g for g in GENERATORS if g[0] == "nnit" or g[0] in c.baselines]
    for task, t in data.tasks.items():
        add(f"\n**{task}**\n")
        add("| architecture | split | " + " | ".join(n for _, n in gens) + (" | paper NNiT |" if t.robot else " |"))
        add("|---|---|" + "---:|" * (len(gens) + (1 if t.robot else 0)))
        for split, archs in (("seen", c.seen), ("unseen", c.unseen)):
            for h in archs:
                cells = [_fmt(t.evals[g][hidden_label(h)], t.robot) for g, _ in gens]
                ref = PAPER_TABLE4.get(tuple(h))
                add(f"| {','.join(map(str, h))} | {split} | " + " | ".join(cells)
                    + ((f" | {ref[0]} ({ref[1]}%) |" if ref else " | – |") if t.robot else " |"))
    # ---------------------------------------------------------------- table 3
    add(f"\n## Table 3 analogue — joint p(a, w), {c.num_networks} samples of depth 4, top-{c.top_k}\n")
    add("| task | valid architectures | novel (not in train) | distinct | top-k return / acc | success | paper |\n|---|---:|---:|---:|---:|---:|---|")
    for task, t in data.tasks.items():
        j = t.joint
        if not j or not j.joint:
            continue
        s, k = j.joint, j.joint_top_k
        ref = PAPER_TABLE3.get(task)
        add(f"| {task} | {s.valid}/{s.num} | {s.novel}/{s.num} | {s.distinct_archs} | "
            f"{_num(k.mean if k else None)} ± {_num(k.std_between if k else None)} | "
            f"{_pct(k.success_rate if k else None) if t.robot else '–'} | "
            f"{f'{ref[0]} ± {ref[1]}, {ref[2]}%' if ref else '–'} |")
    # ---------------------------------------------------------------- memorization
    add("\n## Memorization — distance to the nearest training network after aligning hidden neurons\n")
    add("RMS distance per parameter in the normalized weight space (weight matching, `nnit.analysis.memorization`). "
        "ratio = generated→nearest-train / train→nearest-other-train (medians): ~0 = copies, ~1 = as novel as the training networks are from each other.\n")
    add("| task | generator | architecture | generated | train | gen→train | train→train | ratio |\n|---|---|---|---:|---:|---:|---:|---:|")
    for task, t in data.tasks.items():
        for r in t.memorization.rows if t.memorization else []:
            add(f"| {task} | {r.generator} | {','.join(map(str, r.arch))} | {r.num_generated} | {r.num_train} | "
                f"{r.gen_to_train_median:.3f} | {_num(r.train_to_train_median, 3)} | {_num(r.ratio_median, 2)} |")
    # ---------------------------------------------------------------- image tasks
    img = [t for t in data.tasks if not is_robot_task(t)]
    if img:
        add("\n## Image classification (test accuracy of the top-k networks)\n")
        add("| task | generator | seen | unseen |\n|---|---|---:|---:|")
        for task in img:
            for gen, name in (("dataset", "Dataset"), *GENERATORS):
                tb = data.tasks[task].table2.get(gen, {})
                add(f"| {task} | {name} | {_fmt(tb.get('seen'), False)} | {_fmt(tb.get('unseen'), False)} |")
    # ---------------------------------------------------------------- params
    add("\n## Generators: size and training steps\n")
    add("| task | generator | parameters | optimizer steps |\n|---|---|---:|---:|")
    for task, t in data.tasks.items():
        for g, n in t.params.items():
            add(f"| {task} | {g} | {n:,} | {t.train_steps.get(g, '–')} |")
    # ---------------------------------------------------------------- claims
    add("\n## The paper's claims against these numbers\n")
    add("\n".join(_claims(data)) or "(no results yet)")
    add("")
    atomic_write_text(path.with_suffix(".json"), json.dumps(data.to_dict(), indent=1, default=str))
    return atomic_write_text(path, "\n".join(L) + "\n")


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


def _temperature(c) -> str:
    """', NNiT at temperature 0.5' when the preset lowers NNiT's sampling noise (``nnit generate --temperature``)."""
    return f", NNiT at temperature {c.sampler_temperature:g} (baselines 1)" if c.sampler_temperature != 1.0 else ""


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
        ("Evaluation", "top-10 of 100, 50 episodes", f"top-{c.top_k} of {c.num_networks}, {c.episodes} episodes"),
        ("Architectures evaluated", "all 64 seen / 8 unseen", f"{len(c.seen)} seen / {len(c.unseen)} unseen (the paper's Table 4 ones)"),
        ("Sampler", "1000-step ancestral", f"{c.sampler}, {c.sampler_steps} steps{_temperature(c)}"),
    ]
    return "| item | paper | here |\n|---|---|---|\n" + "\n".join(f"| {a} | {b} | {x} |" for a, b, x in rows)
