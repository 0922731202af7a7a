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

Every stage records its provenance beside its log (:mod:`nnit.reproduce.provenance`: git commit, resolved config
and its hash, command, UTC start and end, wall time, torch threads, machine). A finished stage is rerun, its old
outputs moved aside, when its outputs were made with other settings (:meth:`Stage.stale`) or its recorded config
differs from what the preset now resolves to; ``nnit reproduce --plan`` lists every stage's state without running
anything (:meth:`Pipeline.plan`).

Evaluation protocol (:class:`ReproduceConfig`): per architecture and generator, N networks; the top k are chosen
on ``episodes`` ranking episodes (seeds from ``eval_seed``) and, robot tasks, re-evaluated on ``report_episodes``
fresh episodes (seeds from ``report_seed``) that played no part in the choice; the report shows the fresh numbers.

NNiT's evaluations (``eval-nnit-<arch>`` and ``joint``) run with every sampling of
:attr:`ReproduceConfig.nnit_samplings`: the preset's sampler, steps and ``sampler_temperature`` under those names
(``eval/nnit/<arch>``, ``eval/nnit/joint``) and, when that is not the paper's sampler (ancestral, temperature 1), the
paper's sampler as generator ``nnit-t1``: stages ``eval-nnit-t1-<arch>`` and ``joint-t1``, outputs
``eval/nnit-t1/<arch>`` and ``eval/nnit-t1/joint``. ``--only eval-nnit`` / ``--only joint`` select both samplings'
stages. The baselines sample with the paper's sampler at 1 only.
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

from nnit.config import EVAL, REPORT_SEED, PresetName
from nnit.errors import NNiTError
from nnit.fileio import atomic_write_json
from nnit.ghn.dataset import shard_name
from nnit.reproduce import provenance
from nnit.reproduce import stages as stage_functions
from nnit.stopping import Stopped, stop_on_signals
from nnit.tasks.registry import is_robot_task
from nnit.weights.architecture import get_split, hidden_label


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
    """Ranking episodes per network (robot tasks): the top k are chosen on them."""
    seen: tuple[tuple[int, ...], ...]
    """Train architectures evaluated (paper Table 4, top)."""
    unseen: tuple[tuple[int, ...], ...]
    """Held-out architectures evaluated (paper Table 4, bottom)."""
    eval_seed: int = 1000
    """Seed of ranking episode 0 (disjoint from the dataset filter's 100000 and DAgger's)."""
    report_episodes: int = 0
    """Robot tasks: fresh episodes on which the top k networks (chosen on the ranking episodes) are re-evaluated;
    the report shows these numbers (0: the ranking episodes' numbers, as the paper reports)."""
    report_seed: int = REPORT_SEED
    """Seed of fresh episode 0 (disjoint from the ranking episodes)."""
    baselines: tuple[str, ...] = ("d2nwg", "sane")
    joint: bool = True
    """Also sample p(a, w) (Table 3)."""
    teacher_episodes: int = 50
    """Episodes of the ``teacher`` stage's measurement of the teacher."""
    ppo_experts: bool = False
    """Robot tasks: train a PPO expert first (stage ``expert``, ``nnit train-expert``) and distil it into the GHN
    ensemble, as the paper does; False: distil the scripted teacher."""
    sampler: str = "ancestral"
    """NNiT's sampler at the preset's temperature (``nnit generate --sampler``; the preset's :data:`nnit.config.EVAL`)."""
    sampler_steps: int = 1000
    """Its denoising steps (``nnit generate --steps``)."""
    sampler_temperature: float = 1.0
    """NNiT's ``nnit generate --temperature`` (1 = the paper's sampler; the baselines always sample at 1);
    the tiny and cpu presets use ``EVAL``'s 0.5, measured better on every task. When the preset's sampling is not
    the paper's (ancestral at temperature 1), NNiT's evaluations also run with the paper's sampler
    (:attr:`nnit_samplings`), which decides the report's verdicts on the paper."""
    paper_steps: int = 1000
    """Steps of the paper's ancestral sampler: NNiT at temperature 1 and the diffusion baselines."""
    memorization_networks: int = 16
    """Generated networks per seen architecture compared with the training set."""
    stage_args: dict = field(default_factory=dict)
    """Extra arguments per stage name (or ``eval`` for every evaluation), applied to every task: keyword
    arguments of the stage's function in :mod:`nnit.reproduce.stages`, which are also its command's flags
    (``{"workers": 1}`` is ``--workers 1``)."""

    @property
    def nnit_samplings(self) -> tuple["NNiTSampling", ...]:
        """How NNiT's evaluation stages sample: the paper's sampler (ancestral, temperature 1) first, then the
        preset's sampler and temperature when they differ."""
        own = NNiTSampling("nnit", self.sampler_temperature, "joint", self.sampler, self.sampler_steps)
        if (self.sampler, self.sampler_steps, self.sampler_temperature) == ("ancestral", self.paper_steps, 1.0):
            return (own,)
        return (NNiTSampling(PAPER_SAMPLER_GENERATOR, 1.0, "joint-t1", "ancestral", self.paper_steps), own)

    @property
    def paper_sampling(self) -> "NNiTSampling":
        """NNiT at temperature 1, the paper's sampler: the numbers the report's verdicts on the paper use."""
        return self.nnit_samplings[0]


PAPER_SAMPLER_GENERATOR = "nnit-t1"
"""The generator name of NNiT sampled at temperature 1 beside a preset temperature that is not 1."""


@dataclass(frozen=True)
class NNiTSampling:
    """One way NNiT's evaluation stages sample (sampler, steps, temperature), and the names of those stages and
    their outputs."""

    generator: str
    """``nnit`` at the preset's temperature (stages ``eval-nnit-<arch>``, outputs ``eval/nnit/<arch>``); ``nnit-t1``
    at temperature 1 beside a preset temperature that is not 1 (``eval-nnit-t1-<arch>``, ``eval/nnit-t1/<arch>``)."""
    temperature: float
    """``nnit generate --temperature``."""
    joint_stage: str
    """The joint-sampling stage's name (``joint`` / ``joint-t1``; its outputs: ``eval/<generator>/joint``)."""
    sampler: str = "ancestral"
    """``nnit generate --sampler``."""
    steps: int = 1000
    """``nnit generate --steps``."""

    @property
    def label(self) -> str:
        """How the report names it: ``NNiT (T=1)``."""
        return f"NNiT (T={self.temperature:g})"


PAPER_SEEN = ((32, 16, 64, 32), (32, 64, 16, 32), (32, 32, 32, 16), (64, 64, 16, 32))
PAPER_UNSEEN = ((32, 32, 16, 64), (32, 32, 32, 64), (32, 16, 16, 16), (16, 16, 16, 32))
"""The architectures of the paper's Table 4 (its unseen ones are this project's first 4 held-out)."""
HELD_OUT = tuple(get_split("paper").held_out)
"""All 8 held-out architectures of the paper split (Table 4's 4 unseen ones first)."""
SEEN_8 = PAPER_SEEN + tuple(h for h in sorted(get_split("paper").train) if h not in PAPER_SEEN)[::15]
"""8 train architectures: Table 4's 4 seen ones, then every 15th of the other 60 train architectures in sorted
order (the 1st, 16th, 31st and 46th), spread over the widths."""

REPRODUCE_PRESETS: dict[str, ReproduceConfig] = {
    "tiny": ReproduceConfig(tasks=("FashionMNIST", "PushCube-v1"), num_networks=4, top_k=2, episodes=2, report_episodes=2,
                            seen=PAPER_SEEN[:1], unseen=PAPER_UNSEEN[:1], teacher_episodes=2, sampler_steps=10, paper_steps=10,
                            memorization_networks=2, sampler_temperature=EVAL["tiny"].temperature,
                            stage_args={"ghn": {"workers": 1},  # the dataset: the evaluated architectures + 3 more train ones
                                        "dataset": {"workers": 1, "archs": ("32,16,64,32", "32,32,16,64", "16,16,32,32",
                                                                            "64,64,64,64", "16,32,64,16")}}),
    "cpu": ReproduceConfig(tasks=("PushCube-v1", "FashionMNIST", "PickCube-v1", "StackCubeEasy-v1"),
                           num_networks=EVAL["cpu"].num_networks, top_k=10, episodes=10, report_episodes=50, seen=SEEN_8,
                           unseen=HELD_OUT, sampler=EVAL["cpu"].sampler, sampler_steps=EVAL["cpu"].steps or 1000,
                           sampler_temperature=EVAL["cpu"].temperature),
    "paper": ReproduceConfig(tasks=("PickCube-v1", "PushCube-v1", "StackCubeEasy-v1", "FashionMNIST"), num_networks=100,
                             top_k=10, episodes=50, report_episodes=50, seen=PAPER_SEEN, unseen=HELD_OUT, ppo_experts=True),
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
    stage's done file, which the pipeline writes, records them. A dotted key reads a nested value
    (``extra.report_episodes``)."""
    config: dict = field(default_factory=dict)
    """The stage's resolved config (:mod:`nnit.reproduce.provenance`): a finished stage whose recorded config differs
    is stale."""

    @property
    def command_line(self) -> str:
        """``nnit <command>``, or ``(in-process)`` for a step without a command."""
        return "nnit " + " ".join(self.command) if self.command else "(in-process)"

    def stale(self) -> Optional[str]:
        """Why the finished outputs no longer match this stage's settings (None: they do, or none exist)."""
        if not self.expect or not self.done_file.exists():
            return None
        done = json.loads(self.done_file.read_text())
        found = {k: _lookup(done, k, default) for k, (_, default) in self.expect.items()}
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


def _fresh_expect(report_episodes: int, key: str = "report_episodes") -> dict:
    """The ``expect`` of an evaluation stage with fresh episodes: the results file's ``report_episodes`` (0 when not
    recorded: made before the option existed); none without fresh episodes."""
    return {key: (report_episodes, 0)} if report_episodes else {}


def _temperature_expect(temperature: float) -> dict:
    """The ``expect`` of an NNiT sampling stage: its results.json's temperature (1 when not recorded: ``nnit generate``
    records it only when it is not 1, and results made before the option existed were sampled at 1)."""
    return {"temperature": (temperature, 1.0)}


def _lookup(d: dict, dotted: str, default: Any) -> Any:
    """``d["a"]["b"]`` for ``"a.b"``; ``default`` where a key is missing."""
    for key in dotted.split("."):
        if not isinstance(d, dict) or key not in d:
            return default
        d = d[key]
    return d


def _relative(value: Any, root: Path) -> Any:
    """Paths (and strings) under the run folder ``root`` as ``$RUN/...``, element-wise in lists and dicts: a config
    that does not change with where the runs live."""
    if isinstance(value, dict):
        return {k: _relative(v, root) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_relative(v, root) for v in value]
    if isinstance(value, (str, Path)):
        text, base = str(value), str(root)
        return "$RUN" + text[len(base):] if text == base or text.startswith(base + os.sep) else value
    return value


def preset_config(function: str, preset: str, task: str, kwargs: dict) -> dict:
    """The preset config a stage function resolves for ``task`` (``{}`` for the evaluations, whose arguments are
    their whole config)."""
    if function == "train_expert":
        from nnit.experts.ppo import ppo_config

        return asdict(ppo_config(preset, task))
    if function == "train_ghn":
        from nnit.ghn.train import ghn_config

        return asdict(ghn_config(preset, task))
    if function == "build_dataset":
        from nnit.ghn.dataset import DATASET_PRESETS

        return asdict(DATASET_PRESETS[preset])
    if function == "alignment":
        from nnit.analysis.alignment import ALIGNMENT_PRESETS

        return asdict(ALIGNMENT_PRESETS[preset])
    if function == "train_nnit":
        from nnit.diffusion.train import train_config

        return asdict(train_config(preset, task))
    if function == "train_baseline":
        from nnit.baselines.d2nwg import D2NWG_PRESETS
        from nnit.baselines.sane import SANE_PRESETS

        return asdict({"d2nwg": D2NWG_PRESETS, "sane": SANE_PRESETS}[kwargs["method"]][preset])
    return {}


def _selects(pattern: str, stage_name: str) -> bool:
    """``--only`` matching: a stage's full name or a dash-separated prefix of it (``eval-nnit`` selects ``eval-nnit-h32-16-64-32``)."""
    return stage_name == pattern or stage_name.startswith(pattern + "-")


class StageFailed(RuntimeError):
    pass


DONE, STALE, TO_RUN = "done", "stale", "to run"


@dataclass(frozen=True)
class StageStatus:
    """A stage's state before a run: ``done``, ``stale`` (finished, rerun next time: :attr:`why`) or ``to run``."""

    state: str
    why: Optional[str] = None
    provenance: bool = True
    """False for a finished stage that ran before ``nnit reproduce`` recorded provenance (its config unknown)."""

    @property
    def label(self) -> str:
        if self.state == STALE:
            return f"stale: {self.why}"
        return self.state if self.provenance or self.state != DONE else "done, no provenance"


@dataclass(frozen=True)
class PlanRow:
    """One line of ``nnit reproduce --plan``."""

    task: str
    stage: str
    status: StageStatus
    seconds: Optional[float]
    """The wall time its last finished run recorded (None: never timed)."""


def format_plan(rows: list[PlanRow]) -> str:
    """``nnit reproduce --plan``'s text: one line per stage (task, stage, state, recorded wall time), then the totals
    of the stages done and of those a run would (re)run, the latter with how many have no recorded time."""
    lines = [f"{'task':<18}{'stage':<28}{'time':>9}  state"]
    for r in rows:
        t = "–" if r.seconds is None else _duration(r.seconds)
        lines.append(f"{r.task:<18}{r.stage:<28}{t:>9}  {r.status.label}")
    done = [r for r in rows if r.status.state == DONE]
    todo = [r for r in rows if r.status.state != DONE]
    timed = [r.seconds for r in todo if r.seconds is not None]
    lines.append("")
    lines.append(f"done: {len(done)} stages, {_duration(sum(r.seconds or 0.0 for r in done))} recorded"
                 f" ({sum(r.seconds is None for r in done)} without a recorded time)")
    lines.append(f"to run or rerun: {len(todo)} stages; {len(timed)} of them recorded {_duration(sum(timed))} when they last ran, "
                 f"{len(todo) - len(timed)} never timed")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    """``42 s``, ``12.5 min`` or ``3.2 h``."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"


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
                 data_dir: Optional[Path] = None, progress: bool = False, carry: Optional[Path] = None) -> None:
        self.preset, self.cfg = preset, cfg
        self.root = Path(root) / preset
        self.state_dir = self.root / "reproduce"
        self.data_dir = data_dir
        self.progress = progress
        self.timings_path = self.state_dir / "stages.json"
        self.carry = Path(carry) if carry is not None else None
        """The carry folder (:mod:`nnit.reproduce.carry`): brought up to date after every stage :meth:`run` ends."""
        self.adopted: dict[str, Path] = {}
        """Per task, the shipped dataset adopted as its ``ghn`` stage (:mod:`nnit.reproduce.adopt`), which its
        ``dataset`` stage reuses."""

    # ------------------------------------------------------------------ paths
    def task_dir(self, task: str) -> Path:
        return self.root / task

    def eval_dir(self, task: str, generator: str, what: str) -> Path:
        return self.task_dir(task) / "eval" / generator / what

    def log_file(self, task: str, stage: str) -> Path:
        return self.state_dir / "logs" / task / f"{stage}.log"

    def provenance_file(self, task: str, stage: str) -> Path:
        """The stage's provenance (:mod:`nnit.reproduce.provenance`), beside its log."""
        return self.state_dir / "logs" / task / f"{stage}.provenance.json"

    def provenance(self, task: str, stage: str) -> Optional[dict]:
        """The provenance of the stage's finished run; None when it has none (it failed or stopped, or ran before
        ``nnit reproduce`` recorded provenance)."""
        rec = provenance.load(self.provenance_file(task, stage))
        return rec if rec is not None and rec.get("status") == "done" else None

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
        adopted = self.adopted.get(task)
        reuse = ({"reuse": adopted}, ["--reuse", str(adopted)]) if adopted is not None else ({}, [])
        out: list[Stage] = []
        if expert:
            out.append(self._stage("expert", expert / "train_done.json", "train-expert", "train_expert",
                                   {"task": task, "preset": p, "out": expert},
                                   ["--task", task, "--preset", p, "--out", str(expert)], output=expert))
        if robot:
            out.append(Stage("teacher", self.state_dir / task / "teacher.json", func=lambda: self._teacher(task),
                             expect=teacher_expect, config={"function": "teacher", "args": {
                                 "episodes": c.teacher_episodes, "seed": c.eval_seed,
                                 "teacher": TEACHER_PPO if expert else TEACHER_SCRIPTED,
                                 "teacher_checkpoint": _relative(None if expert is None else str(expert), self.root)}}))
        out += [
            self._stage("ghn", T / "ghn" / "train_done.json", "train-ghn", "train_ghn",
                        {"task": task, "preset": p, "out": T / "ghn", "data_dir": data_dir, **distil[0]},
                        ["--task", task, "--preset", p, "--out", str(T / "ghn"), *distil[1], *data], output=T / "ghn",
                        expect=teacher_expect),
            self._stage("dataset", ds / "summary.json", "build-dataset", "build_dataset",
                        {"ghn": ghn_ckpt, "preset": p, "out": ds, "data_dir": data_dir, **reuse[0]},
                        ["--ghn", str(ghn_ckpt), "--preset", p, "--out", str(ds), *data, *reuse[1]], output=ds),
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
        # (generator, checkpoint, NNiT's temperature, sampler, steps): NNiT with each of its samplings; the baselines
        # (temperature None) sample at 1 with the paper's sampler, and nnit generate refuses them another temperature
        gens = [(n.generator, T / "nnit", n.temperature, n.sampler, n.steps) for n in c.nnit_samplings] + [
            (b, T / b, None, "ancestral", c.paper_steps) for b in c.baselines]
        evaluation = {"episodes": c.episodes, "top_k": c.top_k, "preset": p, "data_dir": data_dir}
        common_eval = ["--preset", p, "--episodes", str(c.episodes), "--top-k", str(c.top_k), "--eval-seed", str(c.eval_seed)]
        # robot tasks: the top k re-evaluated on fresh episodes (image tasks have no episodes)
        fresh_n = c.report_episodes if robot else 0
        fresh = ({"report_episodes": fresh_n, "report_seed": c.report_seed},
                 ["--report-episodes", str(fresh_n), "--report-seed", str(c.report_seed)]) if fresh_n else ({}, [])
        for h in c.seen + c.unseen:
            arch = ",".join(map(str, h))
            d = self.eval_dir(task, "dataset", hidden_label(h))
            shard = ds / "shards" / shard_name(h)
            if shard.exists() or not (ds / "summary.json").exists():  # a built dataset may keep none of an architecture
                out.append(self._stage(
                    f"eval-dataset-{hidden_label(h)}", d / "eval.json", "eval", "evaluate_shard",
                    {"task": task, "weights": shard, "out": d / "eval.json", "seed": c.eval_seed, "control_mode": mode, **evaluation,
                     **fresh[0]},
                    ["--task", task, "--weights", str(shard), "--out", str(d / "eval.json"), "--episodes", str(c.episodes),
                     "--top-k", str(c.top_k), "--seed", str(c.eval_seed), *fresh[1], "--preset", p, *control, *data], output=d,
                    expect=_fresh_expect(fresh_n, "extra.report_episodes")))
                if "d2nwg" in c.baselines and h in c.seen:  # D2NWG's sanity check: its VAE's reconstructions of these
                    dv = self.eval_dir(task, "d2nwg-vae", hidden_label(h))
                    out.append(self._stage(
                        f"eval-d2nwg-vae-{hidden_label(h)}", dv / "eval.json", "eval", "evaluate_shard",
                        {"task": task, "weights": shard, "out": dv / "eval.json", "seed": c.eval_seed, "control_mode": mode,
                         "reconstruct_with": T / "d2nwg", **evaluation},
                        ["--task", task, "--weights", str(shard), "--reconstruct-with", str(T / "d2nwg"), "--out",
                         str(dv / "eval.json"), "--episodes", str(c.episodes), "--top-k", str(c.top_k), "--seed",
                         str(c.eval_seed), "--preset", p, *control, *data], output=dv))
            for g, ck, t, sampler, steps in gens:
                d = self.eval_dir(task, g, hidden_label(h))
                out.append(self._stage(
                    f"eval-{g}-{hidden_label(h)}", d / "results.json", "generate", "generate",
                    {"task": task, "checkpoint": ck, "out": d, "arch": arch, "num": c.num_networks, "sampler": sampler,
                     "steps": steps, "temperature": 1.0 if t is None else t, "eval_seed": c.eval_seed, **evaluation,
                     **fresh[0]},
                    ["--task", task, "--checkpoint", str(ck), "--arch", arch, "--num", str(c.num_networks), "--sampler", sampler,
                     "--steps", str(steps), *([] if t is None else ["--temperature", f"{t:g}"]),
                     "--evaluate", "--out", str(d), *common_eval, *fresh[1], *data], output=d,
                    expect={**({} if t is None else _temperature_expect(t)), **_fresh_expect(fresh_n)}))
        for n in c.nnit_samplings if c.joint else ():
            d = self.eval_dir(task, n.generator, "joint")
            t = n.temperature
            out.append(self._stage(
                n.joint_stage, d / "results.json", "generate", "generate",
                {"task": task, "checkpoint": T / "nnit", "out": d, "arch": None, "num": c.num_networks, "sampler": n.sampler,
                 "steps": n.steps, "temperature": t, "eval_seed": c.eval_seed, **evaluation, **fresh[0]},
                ["--task", task, "--checkpoint", str(T / "nnit"), "--num", str(c.num_networks), "--sampler", n.sampler,
                 "--steps", str(n.steps), "--temperature", f"{t:g}", "--evaluate", "--out", str(d), *common_eval,
                 *fresh[1], *data],
                output=d, expect={**_temperature_expect(t), **_fresh_expect(fresh_n)}, args_key="joint"))
        out.append(Stage("memorization", self.state_dir / task / "memorization.json", func=lambda: self._memorization(task),
                         expect={"generators": (self._memorization_generators(), ["nnit", *c.baselines])},
                         config={"function": "memorization", "args": {
                             "generators": self._memorization_generators(), "seen": [list(h) for h in c.seen],
                             "networks": c.memorization_networks}}))
        for st in out:
            if isinstance(st.func, StageCall):
                kwargs = {k: v for k, v in st.func.kwargs.items() if k not in provenance.RUNTIME_ARGS}
                st.config = {"function": st.func.function, "args": _relative(kwargs, self.root),
                             "preset_config": preset_config(st.func.function, p, task, st.func.kwargs)}
        return out

    # ------------------------------------------------------------------ state
    def status(self, task: str, stage: Stage) -> "StageStatus":
        """Whether ``stage`` is done, stale (finished, but with other settings or another config than the preset now
        resolves to) or to run, and why."""
        if not stage.done_file.exists():
            return StageStatus(TO_RUN)
        if (stale := stage.stale()) is not None:
            return StageStatus(STALE, f"its outputs were made with other settings ({stale})")
        rec = self.provenance(task, stage.name)
        if rec is None:
            return StageStatus(DONE, provenance=False)
        changes = provenance.config_changes(rec.get("config") or {}, stage.config)
        if changes:
            more = f" and {len(changes) - 3} more" if len(changes) > 3 else ""
            return StageStatus(STALE, f"its config changed since it ran ({'; '.join(changes[:3])}{more})")
        return StageStatus(DONE)

    def recorded_seconds(self, task: str, stage: str) -> Optional[float]:
        """The wall time the stage's last finished run recorded (its provenance, else stages.json); None if never timed."""
        rec = provenance.load(self.provenance_file(task, stage))
        if rec is not None and rec.get("status") == "done" and rec.get("wall_seconds") is not None:
            return float(rec["wall_seconds"])
        t = self._timings().get(task, {}).get(stage, {})
        return t.get("seconds") if t.get("status") == "done" else None

    def plan(self, tasks: Optional[list[str]] = None, only: Optional[list[str]] = None) -> list["PlanRow"]:
        """Every selected stage in run order with its state and recorded wall time, without running anything.
        Stages whose list depends on earlier outputs (the dataset's kept architectures) appear as the outputs
        there now allow."""
        rows = []
        for task in tasks or list(self.cfg.tasks):
            for stage in self.stages(task):
                if only and not any(_selects(o, stage.name) for o in only):
                    continue
                rows.append(PlanRow(task, stage.name, self.status(task, stage), self.recorded_seconds(task, stage.name)))
        return rows

    # ------------------------------------------------------------------ run
    def _timings(self) -> dict:
        return json.loads(self.timings_path.read_text()) if self.timings_path.exists() else {}

    def _record(self, task: str, stage: Stage, seconds: Optional[float], status: str, started_utc: Optional[str] = None) -> None:
        """stages.json's timing of the stage and, for a stage this process ran (``started_utc``), its provenance."""
        t = self._timings()
        t.setdefault(task, {})[stage.name] = {"seconds": None if seconds is None else round(seconds, 1), "status": status,
                                              "command": stage.command_line}
        atomic_write_json(self.timings_path, t)  # per-process tmp: several reproduce runs share it
        if started_utc is not None and seconds is not None:
            atomic_write_json(self.provenance_file(task, stage.name), provenance.record(
                task=task, stage=stage.name, preset=self.preset, status=status, command=stage.command_line,
                config=stage.config, started_utc=started_utc, wall_seconds=seconds))

    def _move_aside(self, task: str, stage: Stage) -> Optional[Path]:
        """Move the stage's outputs aside (:meth:`Stage.move_aside`) and its provenance with them (renamed to
        ``<stage>.provenance.old-<UTC time>.json``)."""
        old = stage.move_aside()
        prov = self.provenance_file(task, stage.name)
        if old is not None and prov.exists():
            prov.rename(prov.with_name(f"{stage.name}.provenance.old-{old.name.rsplit('.old-', 1)[1]}.json"))
        return old

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
                    state = self.status(task, stage)
                    if rerun and stage.name not in fresh and any(_selects(r, stage.name) for r in rerun):
                        fresh.add(stage.name)
                        why = "rerun"
                    elif state.state == STALE:
                        why = f"{state.why}; rerunning"
                    old = self._move_aside(task, stage) if why else None
                    if old is not None:
                        log(f"[{task}] {stage.name}: {why}; the old outputs are kept in {old}")
                    if stage.done_file.exists():
                        note = "" if state.provenance else "; no provenance: made before nnit reproduce recorded it"
                        log(f"[{task}] {stage.name}: done (cached: {stage.done_file}{note})")
                        if stage.name not in self._timings().get(task, {}):  # made outside the pipeline: time unknown
                            self._record(task, stage, None, "cached (made outside nnit reproduce)")
                        continue
                    log(f"[{task}] {stage.name}: running" + (f" {stage.command_line}" if stage.command else ""))
                    started = provenance.utc_now()
                    t0 = time.perf_counter()
                    stop.where = f"during stage {stage.name} of {task} (its log: {self.log_file(task, stage.name)})"
                    try:
                        self._run_stage(task, stage)
                    except Stopped:
                        self._record(task, stage, time.perf_counter() - t0, "stopped", started)
                        self._save_carry(log)  # a training stage's mid-run checkpoint, so another machine resumes it
                        raise
                    except BaseException:
                        self._record(task, stage, time.perf_counter() - t0, "failed", started)
                        self._save_carry(log)
                        raise
                    finally:
                        stop.where = f"after stage {stage.name} of {task}"
                    dt = time.perf_counter() - t0
                    self._record(task, stage, dt, "done", started)
                    log(f"[{task}] {stage.name}: done in {dt:.0f} s")
                    self._save_carry(log)

    def _save_carry(self, log: Callable[[str], None]) -> None:
        """Bring the carry folder (if any) up to date; a failure to do so is reported, never raised over the run's."""
        if self.carry is None:
            return
        from nnit.reproduce import carry

        try:
            carry.save(self, self.carry, log=log)
        except Exception as err:  # noqa: BLE001  (the run's own outcome matters more)
            log(f"carry folder {self.carry}: not updated ({type(err).__name__}: {err})")

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
