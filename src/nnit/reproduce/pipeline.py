"""``nnit reproduce``: every stage of the paper's pipeline, per task, with caching and resume.

A stage is a Python call in this process (:mod:`nnit.reproduce.stages`: the work of one ``nnit`` command,
through :mod:`nnit.api` and the library) plus the file that proves it finished. Everything the call prints
goes to ``runs/<preset>/reproduce/logs/<task>/<stage>.log``; the equivalent ``nnit`` command line, for
rerunning a stage by hand, heads the log and is recorded with the stage's wall time in
``runs/<preset>/reproduce/stages.json``. A rerun skips finished stages; an interrupted stage runs again,
and every stage resumes from its own checkpoints (GHN ensemble, dataset shards, NNiT and baseline
checkpoints). Ctrl-C / SIGTERM stops the pipeline with exit 130 / 143 (:class:`nnit.stopping.Stopped`):
a training loop first finishes and checkpoints its step (:func:`nnit.stopping.stop_on_signals`), any
other stage stops at once and runs again next time (its done file is written last; the dataset stage keeps
the architectures it finished).

Stages per task (robot tasks; Fashion-MNIST skips ``expert`` and ``teacher``):

  expert      nnit train-expert                   (PPO expert, the DAgger teacher; only at presets with
              ``ppo_experts``, i.e. ``paper``: ``tiny`` and ``cpu`` distil the scripted teachers)
  teacher     the teacher's success over seeded episodes (the paper's "Expert" row): the PPO expert or
              the scripted teacher
  ghn         nnit train-ghn [--teacher-checkpoint <expert>]  (GHN ensemble, DAgger / supervised)
  dataset     nnit build-dataset                  (candidates, filter, kept networks)
  alignment   nnit analyze alignment              (Tables 1 / 6, Figures 3 / 4)
  nnit        nnit train                          (NNiT, MoNL)
  d2nwg, sane nnit train-baseline                 (baselines, same data and normalization)
  eval-*      nnit eval / nnit generate --evaluate (dataset networks and every generator on the
              seen and unseen architectures, same seeds, top-k of N); eval-d2nwg-vae-*: the seen
              architectures' dataset networks through D2NWG's VAE (its sanity check)
  joint       nnit generate without --arch        (p(a, w), Table 3)
  memorization  generated vs nearest training network after neuron alignment (NNiT at the preset's temperature)

NNiT's evaluations (``eval-nnit-<arch>`` and ``joint``) run at every temperature of
:attr:`ReproduceConfig.nnit_samplings`: the preset's ``sampler_temperature`` under those names
(``eval/nnit/<arch>``, ``eval/nnit/joint``) and, when it is not 1, temperature 1 (the paper's sampler) as
generator ``nnit-t1``: stages ``eval-nnit-t1-<arch>`` and ``joint-t1``, outputs ``eval/nnit-t1/<arch>`` and
``eval/nnit-t1/joint``. ``--only eval-nnit`` / ``--only joint`` select both temperatures' stages. The baselines
sample at 1 only.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, TextIO

from nnit.config import EVAL, PresetName
from nnit.errors import NNiTError
from nnit.fileio import atomic_write_json
from nnit.ghn.dataset import shard_name
from nnit.reproduce import stages as stage_functions
from nnit.stopping import Stopped, stop_on_signals
from nnit.tasks.registry import is_robot_task
from nnit.weights.architecture import hidden_label


@dataclass(frozen=True)
class ReproduceConfig:
    """What ``nnit reproduce`` runs and evaluates at one preset."""

    tasks: tuple[str, ...]
    """Tasks, in order."""
    num_networks: int
    """N: networks generated per architecture and generator."""
    top_k: int
    """k of the top-k protocol."""
    episodes: int
    """Evaluation episodes per network (robot tasks)."""
    seen: tuple[tuple[int, ...], ...]
    """Train architectures evaluated (paper Table 4, top)."""
    unseen: tuple[tuple[int, ...], ...]
    """Held-out architectures evaluated (paper Table 4, bottom)."""
    eval_seed: int = 1000
    """Seed of evaluation episode 0 (disjoint from the dataset filter's 100000 and DAgger's)."""
    baselines: tuple[str, ...] = ("d2nwg", "sane")
    joint: bool = True
    """Also sample p(a, w) (Table 3)."""
    teacher_episodes: int = 50
    """Episodes of the ``teacher`` stage's measurement of the teacher."""
    ppo_experts: bool = False
    """Robot tasks: train a PPO expert first (stage ``expert``, ``nnit train-expert``) and distil it into the GHN
    ensemble, as the paper does; False: distil the scripted teacher."""
    sampler: str = "ancestral"
    sampler_steps: int = 1000
    sampler_temperature: float = 1.0
    """NNiT's ``nnit generate --temperature`` (1 = the paper's sampler; the baselines always sample at 1);
    the tiny and cpu presets use ``EVAL``'s 0.5, measured better on every task. When it is not 1, NNiT's
    evaluations also run at 1 (:attr:`nnit_samplings`), which decides the report's verdicts on the paper."""
    memorization_networks: int = 16
    """Generated networks per seen architecture compared with the training set."""
    stage_args: dict = field(default_factory=dict)
    """Extra arguments per stage name (or ``eval`` for every evaluation), applied to every task: keyword
    arguments of the stage's function in :mod:`nnit.reproduce.stages`, which are also its command's flags
    (``{"workers": 1}`` is ``--workers 1``)."""

    @property
    def nnit_samplings(self) -> tuple["NNiTSampling", ...]:
        """The temperatures NNiT's evaluation stages sample at: 1 (the paper's sampler) first, then the preset's
        ``sampler_temperature`` when it differs."""
        own = NNiTSampling("nnit", self.sampler_temperature, "joint")
        if self.sampler_temperature == 1.0:
            return (own,)
        return (NNiTSampling(PAPER_SAMPLER_GENERATOR, 1.0, "joint-t1"), own)

    @property
    def paper_sampling(self) -> "NNiTSampling":
        """NNiT at temperature 1, the paper's sampler: the numbers the report's verdicts on the paper use."""
        return self.nnit_samplings[0]


PAPER_SAMPLER_GENERATOR = "nnit-t1"
"""The generator name of NNiT sampled at temperature 1 beside a preset temperature that is not 1."""


@dataclass(frozen=True)
class NNiTSampling:
    """One temperature NNiT's evaluation stages sample at, and the names of those stages and their outputs."""

    generator: str
    """``nnit`` at the preset's temperature (stages ``eval-nnit-<arch>``, outputs ``eval/nnit/<arch>``); ``nnit-t1``
    at temperature 1 beside a preset temperature that is not 1 (``eval-nnit-t1-<arch>``, ``eval/nnit-t1/<arch>``)."""
    temperature: float
    """``nnit generate --temperature``."""
    joint_stage: str
    """The joint-sampling stage's name (``joint`` / ``joint-t1``; its outputs: ``eval/<generator>/joint``)."""

    @property
    def label(self) -> str:
        """How the report names it: ``NNiT (T=1)``."""
        return f"NNiT (T={self.temperature:g})"


PAPER_SEEN = ((32, 16, 64, 32), (32, 64, 16, 32), (32, 32, 32, 16), (64, 64, 16, 32))
PAPER_UNSEEN = ((32, 32, 16, 64), (32, 32, 32, 64), (32, 16, 16, 16), (16, 16, 16, 32))
"""The architectures of the paper's Table 4 (its unseen ones are this project's first 4 held-out)."""

REPRODUCE_PRESETS: dict[str, ReproduceConfig] = {
    "tiny": ReproduceConfig(tasks=("FashionMNIST", "PushCube-v1"), num_networks=4, top_k=2, episodes=2,
                            seen=PAPER_SEEN[:1], unseen=PAPER_UNSEEN[:1], teacher_episodes=2, sampler_steps=10,
                            memorization_networks=2, sampler_temperature=EVAL["tiny"].temperature,
                            stage_args={"ghn": {"workers": 1},  # the dataset: the evaluated architectures + 3 more train ones
                                        "dataset": {"workers": 1, "archs": ("32,16,64,32", "32,32,16,64", "16,16,32,32",
                                                                            "64,64,64,64", "16,32,64,16")}}),
    "cpu": ReproduceConfig(tasks=("PushCube-v1", "FashionMNIST", "PickCube-v1", "StackCubeEasy-v1"), num_networks=32,
                           top_k=10, episodes=10, seen=PAPER_SEEN[:2], unseen=PAPER_UNSEEN, sampler_temperature=EVAL["cpu"].temperature),
    "paper": ReproduceConfig(tasks=("PickCube-v1", "PushCube-v1", "StackCubeEasy-v1", "FashionMNIST"), num_networks=100,
                             top_k=10, episodes=50, seen=PAPER_SEEN, unseen=PAPER_UNSEEN, ppo_experts=True),
}


@dataclass
class StageCall:
    """A call of one function of :mod:`nnit.reproduce.stages` (looked up when called) with keyword arguments."""

    function: str
    """The function's name in :mod:`nnit.reproduce.stages`."""
    kwargs: dict = field(default_factory=dict)

    def __call__(self) -> Any:
        return getattr(stage_functions, self.function)(**self.kwargs)


@dataclass
class Stage:
    name: str
    done_file: Path
    command: Optional[list[str]] = None
    """The equivalent ``nnit`` command line (without the leading 'nnit'), recorded for rerunning the stage by hand;
    None for steps with no command of their own."""
    func: Optional[Callable[[], Any]] = None
    """What runs the stage, in this process (a :class:`StageCall` or one of the pipeline's own steps)."""
    output: Optional[Path] = None
    """Everything the stage writes (its --out directory), moved aside by a rerun; None: just the done file."""
    expect: dict = field(default_factory=dict)
    """Values the done file (JSON) must hold for a cached result to count, with their defaults when absent:
    e.g. NNiT's sampling temperature, so changing it reruns the stage instead of reusing old samples. A training
    stage's done file, which the pipeline writes, records them."""

    @property
    def command_line(self) -> str:
        """``nnit <command>``, or ``(in-process)`` for a step without a command."""
        return "nnit " + " ".join(self.command) if self.command else "(in-process)"

    def stale(self) -> Optional[str]:
        """Why the finished outputs no longer match this stage's settings (None: they do, or none exist)."""
        if not self.expect or not self.done_file.exists():
            return None
        done = json.loads(self.done_file.read_text())
        found = {k: done.get(k, default) for k, (_, default) in self.expect.items()}
        return ", ".join(f"{k} {found[k]} != {want}" for k, (want, _) in self.expect.items() if found[k] != want) or None

    def move_aside(self) -> Optional[Path]:
        """Rename the stage's outputs to ``<name>.old-<UTC time>`` so a rerun starts fresh without losing them."""
        src = self.output or self.done_file
        if not src.exists():
            return None
        stamp = f"{src.name}.old-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
        dst, n = src.with_name(stamp), 1
        while dst.exists():  # two reruns within a second
            dst, n = src.with_name(f"{stamp}-{n}"), n + 1
        src.rename(dst)
        return dst


TRAINING_STAGES = ("expert", "ghn", "nnit")
"""Stages that checkpoint while they run (so a stopped run leaves files that look finished): they are done
only when ``train_done.json``, written after the call returns, exists (the baselines' stages too)."""


TEACHER_PPO, TEACHER_SCRIPTED = "ppo_expert", "scripted"
"""What a robot task's ``teacher`` and ``ghn`` stages record as their teacher (``"teacher"`` in ``teacher.json`` and
the GHN's ``train_done.json``): outputs made with the other kind of teacher than the preset's are stale."""


def nnit_wall_seconds(run_dir: Path) -> Optional[float]:
    """The wall time NNiT's training took over all its sessions (the checkpoint's ``meta["wall_seconds"]``), rounded
    to a second: the baselines' wall-clock cap in the equal-budget comparison. None before NNiT is trained (or for a
    checkpoint that does not record it)."""
    from nnit.checkpoint import checkpoint_meta

    path = run_dir / "checkpoint.safetensors"
    if not (run_dir / "train_done.json").exists() or not path.exists():
        return None
    wall = checkpoint_meta(path).get("wall_seconds")
    return float(round(wall)) if wall else None


def flags(kwargs: dict) -> list[str]:
    """Command-line flags of keyword arguments: ``{"workers": 1, "archs": ["a", "b"]}`` -> ``--workers 1 --archs a b``."""
    out: list[str] = []
    for k, v in kwargs.items():
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            out.append(flag if v else f"--no-{k.replace('_', '-')}")
        elif isinstance(v, (list, tuple)):
            out += [flag, *map(str, v)]
        elif v is not None:
            out += [flag, f"{v:g}" if isinstance(v, float) else str(v)]
    return out


def _temperature_expect(temperature: float) -> dict:
    """The ``expect`` of an NNiT sampling stage: its results.json's temperature (1 when not recorded: ``nnit generate``
    records it only when it is not 1, and results made before the option existed were sampled at 1)."""
    return {"temperature": (temperature, 1.0)}


def _selects(pattern: str, stage_name: str) -> bool:
    """``--only`` matching: a stage's full name or a dash-separated prefix of it (``eval-nnit`` selects ``eval-nnit-h32-16-64-32``)."""
    return stage_name == pattern or stage_name.startswith(pattern + "-")


class StageFailed(RuntimeError):
    pass


class _StopNow:
    """While active, the first SIGINT / SIGTERM raises :class:`Stopped` at once (naming :attr:`where`), a second one
    KeyboardInterrupt. A training loop inside installs its own handler (:func:`nnit.stopping.stop_on_signals`)
    for its duration, which checkpoints the step before stopping, and passes on a signal it did not act on."""

    def __init__(self) -> None:
        self.where = "between stages"

    def _stop(self, signum: int) -> None:
        raise Stopped(f"stopped by {signal.Signals(signum).name} {self.where}", signum)

    @contextmanager
    def active(self) -> Iterator["_StopNow"]:
        with stop_on_signals(on_signal=self._stop):
            yield self


@contextmanager
def output_to(fh: TextIO) -> Iterator[None]:
    """Send everything printed in the block to ``fh``: Python's ``sys.stdout`` / ``sys.stderr`` and the process's
    file descriptors 1 and 2 (native libraries, worker processes started in the block)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    fh.flush()
    saved = []
    for fd in (1, 2):
        try:
            saved.append((fd, os.dup(fd)))
        except OSError:  # no such descriptor: nothing to redirect
            continue
    try:
        for fd, _ in saved:
            os.dup2(fh.fileno(), fd)
        with redirect_stdout(fh), redirect_stderr(fh):
            yield
    finally:
        try:
            fh.flush()
        finally:
            for fd, old in saved:
                os.dup2(old, fd)
                os.close(old)


class Pipeline:
    """The stages of every task at one preset, their cache and their timings."""

    def __init__(self, preset: PresetName, cfg: ReproduceConfig, root: Path = Path("runs"),
                 data_dir: Optional[Path] = None, progress: bool = False) -> None:
        self.preset, self.cfg = preset, cfg
        self.root = Path(root) / preset
        self.state_dir = self.root / "reproduce"
        self.data_dir = data_dir
        self.progress = progress
        self.timings_path = self.state_dir / "stages.json"

    # ------------------------------------------------------------------ paths
    def task_dir(self, task: str) -> Path:
        return self.root / task

    def eval_dir(self, task: str, generator: str, what: str) -> Path:
        return self.task_dir(task) / "eval" / generator / what

    def log_file(self, task: str, stage: str) -> Path:
        return self.state_dir / "logs" / task / f"{stage}.log"

    def expert_dir(self, task: str) -> Path:
        """The ``expert`` stage's PPO run (``nnit train-expert --out``)."""
        return self.task_dir(task) / "expert"

    def teacher_checkpoint(self, task: str) -> Optional[Path]:
        """The PPO expert the task's GHN ensemble distils; None: the scripted teacher (or an image task)."""
        return self.expert_dir(task) if self.cfg.ppo_experts and is_robot_task(task) else None

    def _teacher_control_mode(self, task: str) -> str:
        """The controller of the task's teacher: the PPO expert's (its preset's, or the ``expert`` stage's
        ``control_mode`` argument) or the scripted teacher's."""
        if self.teacher_checkpoint(task) is not None:
            from nnit.experts.ppo import ppo_config

            return self.cfg.stage_args.get("expert", {}).get("control_mode") or ppo_config(self.preset, task).control_mode
        from nnit.tasks.registry import default_control_mode

        return default_control_mode(task)  # type: ignore[return-value]

    # ------------------------------------------------------------------ plan
    def _stage(self, name: str, done_file: Path, command: str, function: str, kwargs: dict, flag_args: list[str],
               output: Path, expect: Optional[dict] = None, args_key: Optional[str] = None) -> Stage:
        """A stage calling ``stages.<function>(**kwargs, **stage_args, progress=...)``, with the equivalent command
        ``nnit <command> <flag_args> <stage_args as flags> [--no-progress]``. Its ``stage_args`` are those of its name,
        else of ``args_key`` (default: ``eval`` for an evaluation, else its name)."""
        base = args_key or ("eval" if name.startswith("eval-") else name)
        extra = dict(self.cfg.stage_args.get(name, self.cfg.stage_args.get(base, {})))
        cmd = [*command.split(), *flag_args, *flags(extra)] + ([] if self.progress else ["--no-progress"])
        return Stage(name, done_file, cmd, StageCall(function, {**kwargs, **extra, "progress": self.progress}), output=output,
                     expect=expect or {})

    def stages(self, task: str) -> list[Stage]:
        c, p, T = self.cfg, self.preset, self.task_dir(task)
        robot = is_robot_task(task)
        data_dir = self.data_dir if not robot else None
        data = ["--data-dir", str(data_dir)] if data_dir else []
        ghn_ckpt = T / "ghn" / "ghn.safetensors"
        ds = T / "dataset"
        expert = self.teacher_checkpoint(task)
        mode = None
        if robot:  # the dataset's controller (the teacher's), for evaluating its networks
            mode = json.loads((ds / "index.json").read_text()).get("control_mode") if (ds / "index.json").exists() else None
            if mode is None:
                mode = self._teacher_control_mode(task)
        control = ["--control-mode", mode] if mode else []
        teacher_expect = {"teacher": (TEACHER_PPO if expert else TEACHER_SCRIPTED, TEACHER_SCRIPTED)} if robot else {}
        distil = ({"teacher_checkpoint": expert}, ["--teacher-checkpoint", str(expert)]) if expert else ({}, [])
        out: list[Stage] = []
        if expert:
            out.append(self._stage("expert", expert / "train_done.json", "train-expert", "train_expert",
                                   {"task": task, "preset": p, "out": expert},
                                   ["--task", task, "--preset", p, "--out", str(expert)], output=expert))
        if robot:
            out.append(Stage("teacher", self.state_dir / task / "teacher.json", func=lambda: self._teacher(task),
                             expect=teacher_expect))
        out += [
            self._stage("ghn", T / "ghn" / "train_done.json", "train-ghn", "train_ghn",
                        {"task": task, "preset": p, "out": T / "ghn", "data_dir": data_dir, **distil[0]},
                        ["--task", task, "--preset", p, "--out", str(T / "ghn"), *distil[1], *data], output=T / "ghn",
                        expect=teacher_expect),
            self._stage("dataset", ds / "summary.json", "build-dataset", "build_dataset",
                        {"ghn": ghn_ckpt, "preset": p, "out": ds, "data_dir": data_dir},
                        ["--ghn", str(ghn_ckpt), "--preset", p, "--out", str(ds), *data], output=ds),
            self._stage("alignment", T / "alignment" / "alignment.json", "analyze alignment", "alignment",
                        {"ghn": ghn_ckpt, "preset": p, "out": T / "alignment", "data_dir": data_dir},
                        ["--ghn", str(ghn_ckpt), "--preset", p, "--out", str(T / "alignment"), *data], output=T / "alignment"),
            self._stage("nnit", T / "nnit" / "train_done.json", "train", "train_nnit", {"dataset": ds, "preset": p, "out": T / "nnit"},
                        ["--dataset", str(ds), "--preset", p, "--out", str(T / "nnit")], output=T / "nnit"),
        ]
        budget = nnit_wall_seconds(T / "nnit")  # equal budget: the baselines' wall clock is capped at NNiT's
        cap = ({"max_seconds": budget}, ["--max-seconds", f"{budget:g}"]) if budget else ({}, [])
        for b in c.baselines:
            out.append(self._stage(b, T / b / "train_done.json", "train-baseline", "train_baseline",
                                   {"method": b, "dataset": ds, "preset": p, "out": T / b, **cap[0]},
                                   ["--method", b, "--dataset", str(ds), "--preset", p, "--out", str(T / b), *cap[1]],
                                   output=T / b))
        # (generator, checkpoint, NNiT's temperature): NNiT at each of its temperatures; the baselines (None) sample at 1,
        # and nnit generate refuses them another temperature
        gens = [(n.generator, T / "nnit", n.temperature) for n in c.nnit_samplings] + [(b, T / b, None) for b in c.baselines]
        evaluation = {"episodes": c.episodes, "top_k": c.top_k, "preset": p, "data_dir": data_dir}
        common_eval = ["--preset", p, "--episodes", str(c.episodes), "--top-k", str(c.top_k), "--eval-seed", str(c.eval_seed)]
        for h in c.seen + c.unseen:
            arch = ",".join(map(str, h))
            d = self.eval_dir(task, "dataset", hidden_label(h))
            shard = ds / "shards" / shard_name(h)
            if shard.exists() or not (ds / "summary.json").exists():  # a built dataset may keep none of an architecture
                out.append(self._stage(
                    f"eval-dataset-{hidden_label(h)}", d / "eval.json", "eval", "evaluate_shard",
                    {"task": task, "weights": shard, "out": d / "eval.json", "seed": c.eval_seed, "control_mode": mode, **evaluation},
                    ["--task", task, "--weights", str(shard), "--out", str(d / "eval.json"), "--episodes", str(c.episodes),
                     "--top-k", str(c.top_k), "--seed", str(c.eval_seed), "--preset", p, *control, *data], output=d))
                if "d2nwg" in c.baselines and h in c.seen:  # D2NWG's sanity check: its VAE's reconstructions of these
                    dv = self.eval_dir(task, "d2nwg-vae", hidden_label(h))
                    out.append(self._stage(
                        f"eval-d2nwg-vae-{hidden_label(h)}", dv / "eval.json", "eval", "evaluate_shard",
                        {"task": task, "weights": shard, "out": dv / "eval.json", "seed": c.eval_seed, "control_mode": mode,
                         "reconstruct_with": T / "d2nwg", **evaluation},
                        ["--task", task, "--weights", str(shard), "--reconstruct-with", str(T / "d2nwg"), "--out",
                         str(dv / "eval.json"), "--episodes", str(c.episodes), "--top-k", str(c.top_k), "--seed",
                         str(c.eval_seed), "--preset", p, *control, *data], output=dv))
            for g, ck, t in gens:
                d = self.eval_dir(task, g, hidden_label(h))
                out.append(self._stage(
                    f"eval-{g}-{hidden_label(h)}", d / "results.json", "generate", "generate",
                    {"task": task, "checkpoint": ck, "out": d, "arch": arch, "num": c.num_networks, "sampler": c.sampler,
                     "steps": c.sampler_steps, "temperature": 1.0 if t is None else t, "eval_seed": c.eval_seed, **evaluation},
                    ["--task", task, "--checkpoint", str(ck), "--arch", arch, "--num", str(c.num_networks), "--sampler", c.sampler,
                     "--steps", str(c.sampler_steps), *([] if t is None else ["--temperature", f"{t:g}"]),
                     "--evaluate", "--out", str(d), *common_eval, *data], output=d, expect={} if t is None else _temperature_expect(t)))
        for n in c.nnit_samplings if c.joint else ():
            d = self.eval_dir(task, n.generator, "joint")
            t = n.temperature
            out.append(self._stage(
                n.joint_stage, d / "results.json", "generate", "generate",
                {"task": task, "checkpoint": T / "nnit", "out": d, "arch": None, "num": c.num_networks, "sampler": c.sampler,
                 "steps": c.sampler_steps, "temperature": t, "eval_seed": c.eval_seed, **evaluation},
                ["--task", task, "--checkpoint", str(T / "nnit"), "--num", str(c.num_networks), "--sampler", c.sampler,
                 "--steps", str(c.sampler_steps), "--temperature", f"{t:g}", "--evaluate", "--out", str(d), *common_eval, *data],
                output=d, expect=_temperature_expect(t), args_key="joint"))
        out.append(Stage("memorization", self.state_dir / task / "memorization.json", func=lambda: self._memorization(task),
                         expect={"generators": (self._memorization_generators(), ["nnit", *c.baselines])}))
        return out

    # ------------------------------------------------------------------ run
    def _timings(self) -> dict:
        return json.loads(self.timings_path.read_text()) if self.timings_path.exists() else {}

    def _record(self, task: str, stage: Stage, seconds: Optional[float], status: str) -> None:
        t = self._timings()
        t.setdefault(task, {})[stage.name] = {"seconds": None if seconds is None else round(seconds, 1), "status": status,
                                              "command": stage.command_line}
        atomic_write_json(self.timings_path, t)  # per-process tmp: several reproduce runs share it

    def run(self, tasks: Optional[list[str]] = None, only: Optional[list[str]] = None, log: Callable[[str], None] = print,
            rerun: Optional[list[str]] = None) -> None:
        """Run the stages of ``tasks`` (all of the preset's) that ``only`` selects (all), skipping finished ones.

        ``rerun``: stages to run again although finished; their old outputs are moved aside (:meth:`Stage.move_aside`).
        Selected stages that depend on a rerun stage are not rerun unless named too. Ctrl-C / SIGTERM raises
        :class:`Stopped` (after a training stage checkpointed its step); a stage that fails raises :class:`StageFailed`."""
        if only or rerun:
            names = {s.name for task in tasks or list(self.cfg.tasks) for s in self.stages(task)}
            for flag, patterns in (("--only", only), ("--rerun", rerun)):
                unknown = [o for o in patterns or [] if not any(_selects(o, n) for n in names)]
                if unknown:
                    raise NNiTError(f"{flag} {' '.join(unknown)}: no such stage (stages: {', '.join(sorted(names))})")
            if only and rerun:
                selected = {n for n in names if any(_selects(o, n) for o in only)}
                unselected = [r for r in rerun if not any(_selects(r, n) for n in selected)]
                if unselected:
                    raise NNiTError(f"--rerun {' '.join(unselected)}: not among the --only stages ({' '.join(only)})")
        stop = _StopNow()
        with stop.active():
            for task in tasks or list(self.cfg.tasks):
                fresh: set[str] = set()  # stages rerun in this call (the plan is rebuilt after each stage)
                i = 0
                while i < len(plan := self.stages(task)):  # re-planned each time: later stages read earlier outputs
                    stage = plan[i]
                    i += 1
                    if only and not any(_selects(o, stage.name) for o in only):
                        continue
                    why = None  # a reason to move finished outputs aside and run the stage again
                    if rerun and stage.name not in fresh and any(_selects(r, stage.name) for r in rerun):
                        fresh.add(stage.name)
                        why = "rerun"
                    elif (stale := stage.stale()) is not None:
                        why = f"its outputs were made with other settings ({stale}); rerunning"
                    old = stage.move_aside() if why else None
                    if old is not None:
                        log(f"[{task}] {stage.name}: {why}; the old outputs are kept in {old}")
                    if stage.done_file.exists():
                        log(f"[{task}] {stage.name}: done (cached: {stage.done_file})")
                        if stage.name not in self._timings().get(task, {}):  # made outside the pipeline: time unknown
                            self._record(task, stage, None, "cached (made outside nnit reproduce)")
                        continue
                    log(f"[{task}] {stage.name}: running" + (f" {stage.command_line}" if stage.command else ""))
                    t0 = time.perf_counter()
                    stop.where = f"during stage {stage.name} of {task} (its log: {self.log_file(task, stage.name)})"
                    try:
                        self._run_stage(task, stage)
                    except Stopped:
                        self._record(task, stage, time.perf_counter() - t0, "stopped")
                        raise
                    except BaseException:
                        self._record(task, stage, time.perf_counter() - t0, "failed")
                        raise
                    finally:
                        stop.where = f"after stage {stage.name} of {task}"
                    dt = time.perf_counter() - t0
                    self._record(task, stage, dt, "done")
                    log(f"[{task}] {stage.name}: done in {dt:.0f} s")

    def _run_stage(self, task: str, stage: Stage) -> None:
        """Call the stage with its output in its log; :class:`StageFailed` (with the log's tail) when it raises."""
        logf = self.log_file(task, stage.name)
        logf.parent.mkdir(parents=True, exist_ok=True)
        failure: Optional[BaseException] = None
        with logf.open("a") as fh:
            fh.write(f"$ {stage.command_line}\n")
            with output_to(fh):
                try:
                    stage.func()  # type: ignore[misc]
                except Stopped as stopped:
                    print(f"nnit: {stopped}; rerun to resume")
                    raise
                except Exception as err:  # noqa: BLE001  (reported with the log's tail)
                    traceback.print_exc()
                    failure = err
        if failure is not None:
            tail = "".join(logf.read_text().splitlines(keepends=True)[-15:])
            raise StageFailed(f"stage {stage.name} of {task} failed ({type(failure).__name__}: {failure}); log {logf}:\n{tail}") \
                from failure
        if stage.name in TRAINING_STAGES + tuple(self.cfg.baselines):  # their checkpoints exist mid-run; mark the finished run
            atomic_write_json(stage.done_file, {"stage": stage.name, "command": stage.command_line,
                                                **{k: want for k, (want, _) in stage.expect.items()}})
        if not stage.done_file.exists():
            raise StageFailed(f"stage {stage.name} of {task} finished but did not write {stage.done_file}; log {logf}")

    # ------------------------------------------------------------------ in-process stages
    def _teacher(self, task: str) -> None:
        from nnit.experts.teachers import get_teacher, measure_teacher

        expert = self.teacher_checkpoint(task)
        teacher = get_teacher(task, checkpoint=expert) if expert else None
        r = measure_teacher(task, episodes=self.cfg.teacher_episodes, seed=self.cfg.eval_seed, teacher=teacher)
        r.pop("per_episode", None)
        r.update(teacher=TEACHER_PPO if expert else TEACHER_SCRIPTED, teacher_checkpoint=None if expert is None else str(expert))
        atomic_write_json(self.state_dir / task / "teacher.json", r)

    def _memorization_generators(self) -> list[str]:
        """Whose samples the memorization stage compares with the training set: NNiT at each sampling temperature,
        then the baselines."""
        return [n.generator for n in self.cfg.nnit_samplings] + list(self.cfg.baselines)

    def _memorization(self, task: str) -> None:
        import torch

        from nnit.analysis.memorization import memorization_stats
        from nnit.weights.mlp import WeightSet
        from nnit.weights.normalize import WeightNormalizer

        T = self.task_dir(task)
        norm = WeightNormalizer.load(T / "dataset" / "normalization.json")
        rows = []
        for g in self._memorization_generators():
            for h in self.cfg.seen:
                f = self.eval_dir(task, g, hidden_label(h)) / "networks.safetensors"
                shard = T / "dataset" / "shards" / shard_name(h)
                if not (f.exists() and shard.exists()):
                    continue
                gen = WeightSet.load(f)
                gen = gen[torch.arange(min(gen.n, self.cfg.memorization_networks))]
                rows.append({"generator": g, **memorization_stats(gen, WeightSet.load(shard), norm)})
        atomic_write_json(self.state_dir / task / "memorization.json", {"task": task, "space": "global-normalized weights",
                                                                        "generators": self._memorization_generators(), "rows": rows})


def config_dict(cfg: ReproduceConfig) -> dict:
    return json.loads(json.dumps(asdict(cfg)))
