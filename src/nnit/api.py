"""nnit's Python API: generate networks, evaluate them with the paper's protocol, train NNiT.

Every ``nnit`` command is a thin wrapper over these calls, and ``nnit reproduce`` and the benchmarks
call them in-process. Results are typed objects; nothing here prints (long calls take a ``log``
callback and show tqdm bars only when ``progress=True``).

>>> import nnit
>>> result = nnit.generate("zoo/nnit_PushCube-v1.safetensors", task="PushCube-v1", arch="32,32,16,64", num=8)  # doctest: +SKIP
>>> table = nnit.evaluate("PushCube-v1", result, episodes=10, seed=1000)  # doctest: +SKIP
>>> table.top_k.success_rate  # doctest: +SKIP

* :func:`generate` samples p(w | a) for a given architecture (paper Eq. 6 with t_a = 0) or the joint
  p(a, w) (t_a = t_w) from an NNiT checkpoint, or p(w | a) from a D2NWG / SANE baseline, and
  assembles the samples into :class:`~nnit.weights.WeightSet` s (one per architecture).
* :func:`evaluate` runs every network on the task (robot: ManiSkill3 episodes; image: the test
  split) and applies the paper's top-k-of-N protocol (:mod:`nnit.eval.protocol`).
* :func:`train` trains (or resumes) NNiT with the mixture of noise levels on a GHN dataset.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Literal, Mapping, Optional, Sequence, Union

from nnit.config import EVAL, REPORT_SEED, DeviceName, PresetName
from nnit.diffusion.gaussian import SamplerName
from nnit.errors import NNiTError
from nnit.fileio import atomic_write_json
from nnit.weights.architecture import Architecture, SplitName, hidden_label
from nnit.weights.mlp import WeightSet

if TYPE_CHECKING:
    from torch import nn

    from nnit.eval.protocol import TopKSummary
    from nnit.eval.results import EvalResult
    from nnit.tasks.registry import TaskSpec

FEW_STEP_DEFAULTS = {"ddim": 50, "dpm++2m": 20, "dpm++2m-sde": 20, "unipc": 20}
"""Default steps of the few-step samplers (``ancestral`` defaults to the model's T)."""
ODE_SAMPLERS = ("dpm++2m", "unipc")
"""Solvers without fresh noise, which refuse a sampling temperature other than 1."""
Hidden = tuple[int, ...]
Log = Optional[Callable[[str], None]]


class SupportWarning(UserWarning):
    """A generator was asked for an architecture outside what it was trained on (its networks may not work)."""


class APIError(NNiTError):
    """A problem with the caller's input (a missing checkpoint, a task the model was not trained on, ...).

    The ``nnit`` commands print it as one line and exit with status 2."""


# ============================================================================ generation
@dataclass
class GenerationResult:
    """Networks sampled from a generator, grouped by architecture, with how they were made."""

    task: str
    """The task the networks are for."""
    generator: str
    """``NNiT``, ``D2NWG`` or ``SANE``."""
    checkpoint: Path
    """The generator's checkpoint file."""
    mode: Literal["conditional", "joint"]
    """``conditional``: p(w | a) for one given architecture; ``joint``: p(a, w), architectures sampled too."""
    sets: dict[Hidden, WeightSet]
    """The networks, one batched :class:`WeightSet` per hidden-width tuple (one entry in conditional mode)."""
    sampler: str
    """Sampling method (``ancestral``, ``ddim``; ``sane-anchors`` for SANE, which has no diffusion)."""
    steps: int
    """Denoising steps (0 for SANE)."""
    temperature: Optional[float]
    """NNiT's sampling temperature (None for the baselines, which sample at 1)."""
    seed: int
    """Sampling seed."""
    seconds: float
    """Wall time of sampling and assembly."""
    control_mode: Optional[str] = None
    """The robot controller the generator's networks were trained for (None for image tasks)."""
    depth: Optional[int] = None
    """Hidden layers of the sampled architectures (joint mode)."""
    joint: Optional[dict] = None
    """Joint mode: how many samples decoded to a valid / novel architecture, and how many distinct ones."""
    train_archs: list[Hidden] = field(default_factory=list)
    """The architectures the generator was trained on (from its checkpoint)."""
    device: str = "cpu"
    """Where the networks were sampled (``cpu`` or ``cuda``; the same seed draws different networks on each)."""
    support_warnings: list[str] = field(default_factory=list)
    """Why the requested architecture (conditional mode) or depth (joint mode) lies outside what the generator was
    trained on (a depth or a width it never saw); empty when it lies inside (:func:`support_warnings`)."""
    arch_encoding: Optional[str] = None
    """How NNiT codes hidden widths (``vocab`` or ``value``; None for the baselines)."""

    @property
    def in_support(self) -> bool:
        """Whether the requested architecture's depth and widths were all seen in training."""
        return not self.support_warnings

    @property
    def num(self) -> int:
        """Total networks over every architecture."""
        return sum(ws.n for ws in self.sets.values())

    @property
    def architectures(self) -> list[Architecture]:
        """The sampled architectures, one per weight set."""
        return [ws.arch for ws in self.sets.values()]

    @property
    def weights(self) -> WeightSet:
        """The networks of the one architecture (conditional mode); joint samples of several architectures
        are in :attr:`sets`."""
        if len(self.sets) != 1:
            raise APIError(f"{len(self.sets)} architectures were sampled; pick one from .sets")
        return next(iter(self.sets.values()))

    @property
    def networks(self) -> list["nn.Sequential"]:
        """Every network as a plain ``torch.nn.Sequential`` (architecture by architecture)."""
        return [ws.to_sequential(i) for ws in self.sets.values() for i in range(ws.n)]

    def summary_lines(self) -> list[str]:
        """What ``nnit generate`` reports about the sampling: how, how long, and (joint mode) the architectures."""
        how = ("SANE anchor sampling" if self.sampler == "sane-anchors" else
               f"{self.sampler}, {self.steps} steps" + (f", temperature {self.temperature:g}" if self.temperature is not None else ""))
        lines = [f"{self.mode} sampling: {self.num} networks ({how}) sampled and assembled in {self.seconds:.2f} s"]
        if self.joint is not None:
            j = self.joint
            lines.append(f"joint: {j['valid']}/{self.num} sampled architectures valid, {j['novel']}/{self.num} novel "
                         f"(not among the {len(self.train_archs)} train architectures), {j['distinct_archs']} distinct"
                         + (f"; total variation to the training frequencies {j['tv_to_train']:.2f} (drawing {self.num} "
                            f"from the training set: {j['train_reference']['tv_to_train']['mean']:.2f}, "
                            f"{j['train_reference']['distinct_archs']['mean']:.0f} distinct)" if "tv_to_train" in j else "")
                         )
            if j.get("warning"):
                lines.append(f"warning: {j['warning']}")
        asked = f"[{self.architectures[0].hidden_str()}]" if self.mode == "conditional" else f"joint sampling of depth {self.depth}"
        lines += [f"warning: {asked} is outside what this model was trained on: {w}; "
                  "its networks may not work (--strict refuses such architectures)" for w in self.support_warnings]
        return lines

    def provenance(self) -> dict:
        """What every exported weight file records about how it was made."""
        extra = {"temperature": self.temperature} if self.temperature is not None else {}
        return {"task": self.task, "checkpoint": str(self.checkpoint), "sampler": self.sampler, "steps": self.steps,
                "seed": self.seed, "mode": self.mode, **extra, "device": self.device}

    def save(self, out: Path) -> dict[str, str]:
        """Write the weight files (``networks.safetensors``; joint: ``networks_h<widths>.safetensors`` each), the
        loading note ``README.md`` and ``heatmap.png`` to ``out``; returns {architecture label: file}."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        files = {}
        for h, ws in self.sets.items():
            name = "networks.safetensors" if self.mode == "conditional" else f"networks_{hidden_label(h)}.safetensors"
            files[hidden_label(h)] = str(ws.save(out / name, extra_metadata=self.provenance()))
        first = self.architectures[0]
        (out / "README.md").write_text(LOADING_NOTE.format(file=next(iter(files.values())), act=first.activation.capitalize(),
                                                           inp=first.input_dim, out=first.output_dim, task=self.task))
        weight_heatmap(sorted(self.sets.values(), key=lambda w: -w.n)[:2], out / "heatmap.png")
        return files


LOADING_NOTE = """\
# Loading the generated networks

`{file}` is a WeightSet file: safetensors tensors `layers.<l>.weight` (N, out, in) and
`layers.<l>.bias` (N, out) with the architecture as JSON in the header (no pickle).

```python
from nnit.weights import WeightSet

ws = WeightSet.load("{file}")       # all N networks, batched
net = ws.to_sequential(0)           # network 0 as a plain torch nn.Sequential(Linear, {act}, ...)
y = net(x)                          # x: (batch, {inp}) -> (batch, {out})
ys = ws(x)                          # every network at once: (N, batch, {out})
```

Evaluate them again with `nnit eval --task {task} --weights {file}`.
"""


def support_warnings(hidden: Sequence[int], train_archs: Sequence[Sequence[int]], codec=None) -> list[str]:
    """Why hidden widths ``hidden`` lie outside the support of a generator trained on ``train_archs``: a depth
    it never saw (interpolated between trained depths, or extrapolated beyond them), or widths no training
    architecture had — one line per kind, saying how the generator's architecture codes (``codec``, an NNiT
    sampler's :class:`~nnit.diffusion.arch_codes.ArchCodec`; None for the baselines) write such a width: by value
    between trained widths (interpolated), by value outside the trained widths (extrapolated), clamped to the
    value codes' range, an untrained vocabulary code, or the nearest vocabulary width. Empty when inside (or when
    nothing is recorded). A width wider than the canvas is not a warning: sampling refuses it."""
    if not train_archs:
        return []
    widths = sorted({int(w) for h in train_archs for w in h})
    out = depth_warnings(len(hidden), train_archs)
    notes: dict[str, list[int]] = {}
    for w in sorted({int(w) for w in hidden} - set(widths)):
        notes.setdefault(_width_note(w, widths, codec), []).append(w)
    for note, ws in notes.items():
        out.append(f"width{'s' if len(ws) > 1 else ''} {', '.join(map(str, ws))} never seen in training "
                   f"({note + '; ' if note else ''}trained widths: {', '.join(map(str, widths))})")
    return out


def depth_warnings(depth: int, train_archs: Sequence[Sequence[int]]) -> list[str]:
    """The depth line of :func:`support_warnings` (also joint sampling's): empty when ``depth`` was trained on (or
    nothing is recorded), else whether it lies between trained depths (interpolated) or beyond them."""
    depths = sorted({len(h) for h in train_archs})
    if not depths or depth in depths:
        return []
    how = (f"interpolated between trained depths {max(x for x in depths if x < depth)} and "
           f"{min(x for x in depths if x > depth)}" if depths[0] < depth < depths[-1] else "extrapolated")
    return [f"depth {depth} was never trained on ({how}; trained depths: {', '.join(map(str, depths))})"]


def _width_note(width: int, trained: Sequence[int], codec) -> str:
    """How ``codec`` writes a width no training architecture had (:func:`support_warnings`)."""
    if codec is None:
        return ""
    if getattr(codec, "encoding", "vocab") == "value":
        if not codec.expresses(width):
            return (f"outside the value codes' range {codec.lo}-{codec.hi}: coded as width "
                    f"{min(max(width, codec.lo), codec.hi)}")
        if trained[0] < width < trained[-1]:
            return "interpolated: coded by its value, between trained widths"
        return f"extrapolated: coded by its value, outside the trained widths {trained[0]}-{trained[-1]}"
    if codec.expresses(width):
        return "its vocabulary code was never trained"
    return f"not in the code vocabulary {', '.join(map(str, codec.widths))}: coded as the nearest vocabulary width"


def load_generator(checkpoint: Union[str, Path], ema: bool = True, device: DeviceName = "cpu"):
    """NNiT's sampler or a baseline's, by the checkpoint's kind (both offer ``conditional(arch, ...)``); NNiT's samples
    on ``device`` (``cpu`` or ``cuda``), the baselines' on the CPU only.

    Raises :class:`APIError` for a missing or unreadable checkpoint, or a baseline asked to sample on CUDA, and
    :class:`~nnit.distributed.DeviceError` for ``cuda`` on a machine without it."""
    from nnit.baselines.train import METHODS, BaselineSampler
    from nnit.checkpoint import CheckpointError, checkpoint_kind, resolve_path
    from nnit.diffusion.sample import NNiTSampler
    from nnit.distributed import torch_device

    path = resolve_path(checkpoint)
    if not path.exists():
        raise APIError(f"no checkpoint at {path}")
    try:
        kind = checkpoint_kind(path)  # header only: the chosen reader loads the tensors once
        if kind in METHODS:
            if device != "cpu":
                raise APIError(f"{path} is a {kind} baseline, which samples on the CPU only (device {device} is for NNiT)")
            return BaselineSampler.from_checkpoint(path, use_ema=ema)
        return NNiTSampler.from_checkpoint(path, use_ema=ema, device=torch_device(device))
    except CheckpointError as err:
        raise APIError(str(err)) from None


def generate(
    checkpoint: Union[str, Path],
    task: str,
    arch: Union[str, Sequence[int], Architecture, None] = None,
    num: int = 100,
    *,
    sampler: SamplerName = "ancestral",
    steps: Optional[int] = None,
    temperature: float = 1.0,
    depth: int = 4,
    seed: int = 0,
    ema: bool = True,
    strict: bool = False,
    device: DeviceName = "cpu",
    progress: bool = False,
) -> GenerationResult:
    """Sample ``num`` networks for ``task`` from a trained NNiT (or D2NWG / SANE) checkpoint.

    ``arch`` (hidden widths, e.g. ``"32,16,64,32"`` or ``(32, 16, 64, 32)``) samples p(w | a); ``None``
    samples the joint p(a, w) with ``depth`` hidden layers (NNiT only). ``sampler``: ``ancestral`` (the paper's,
    learned variance; ``steps`` defaults to the model's T = 1000), ``ddim`` (50), or diffusers' DPM-Solver++ 2M
    ``dpm++2m`` / its SDE variant ``dpm++2m-sde`` / ``unipc`` (20; docs/studies/fast-sampling.md). ``temperature`` scales each weight step's fresh noise
    (1 = the model's distribution, the paper's sampler); the baselines sample at 1. An architecture
    (or a joint depth) outside what the model was trained on (:func:`support_warnings`) is sampled with the reasons
    in ``support_warnings``, or refused with ``strict``. ``device``: where NNiT samples (``cpu`` or ``cuda``; the same
    seed draws different networks on each); the baselines sample on the CPU. The networks are returned on the CPU.
    """
    from nnit.diffusion.model import ModelError
    from nnit.tasks.registry import get_task
    from nnit.weights.architecture import ArchitectureError
    from nnit.weights.tokenize import GridError

    from nnit.checkpoint import resolve_path

    spec = get_task(task)
    gen = load_generator(checkpoint, ema, device)
    gen_path = resolve_path(checkpoint)
    label = getattr(gen, "label", "NNiT")
    if arch is None and label != "NNiT":
        raise APIError(f"{label} has no joint mode p(a, w); pass an architecture")
    trained_on = gen.data.get("task")
    if trained_on is not None and trained_on.lower() != spec.name.lower():
        raise APIError(f"checkpoint {gen_path} was trained on {trained_on}, not {spec.name}")
    control_mode = gen.data.get("control_mode")
    if spec.kind == "robot":
        control_mode = control_mode or _default_control_mode(spec.name)
        spec = get_task(spec.name, control_mode=control_mode)
    in_dim, out_dim = gen.data.get("input_dim"), gen.data.get("output_dim")
    if (in_dim, out_dim) != (None, None) and (in_dim, out_dim) != (spec.input_dim, spec.output_dim):
        raise APIError(f"checkpoint {gen_path} makes {in_dim} -> {out_dim} networks but {spec.name} needs "
                       f"{spec.input_dim} -> {spec.output_dim}")
    num_timesteps = getattr(getattr(gen, "diffusion", None), "num_timesteps", None) or getattr(gen, "num_timesteps", 1000)
    steps = (num_timesteps if sampler == "ancestral" else FEW_STEP_DEFAULTS.get(sampler, 50)) if steps is None else steps
    if num < 1 or steps < 1:
        raise APIError(f"num and steps must be >= 1 (got {num}, {steps})")
    if not temperature >= 0:
        raise APIError(f"temperature must be >= 0 (got {temperature})")
    if label != "NNiT" and temperature != 1.0:
        raise APIError(f"temperature applies to NNiT's sampler only, not to the {label} baseline")
    extra = {"temperature": temperature} if label == "NNiT" else {}
    activation = gen.data.get("activation") or "tanh"
    train_archs = [tuple(h) for h in gen.data.get("train_archs", [])]
    outside: list[str] = []

    joint = None
    t0 = time.perf_counter()
    if arch is not None:
        a = arch if isinstance(arch, Architecture) else (
            Architecture.parse(arch, spec.input_dim, spec.output_dim, activation) if isinstance(arch, str)
            else Architecture(spec.input_dim, tuple(int(w) for w in arch), spec.output_dim, activation))
        outside = support_warnings(a.hidden, train_archs, getattr(gen, "codec", None))
        _flag_outside(f"architecture [{a.hidden_str()}]", outside, gen_path, strict)
        try:
            ws = gen.conditional(a, num=num, method=sampler, steps=steps, seed=seed, progress=progress, **extra)
        except (GridError, ModelError, ArchitectureError) as err:
            raise APIError(f"architecture [{a.hidden_str()}] is not expressible by {gen_path}: {err}") from None
        sets = {a.hidden: ws}
    else:
        outside = depth_warnings(depth, train_archs)
        _flag_outside(f"joint sampling of depth {depth}", outside, gen_path, strict)
        try:
            joint = gen.joint(num=num, depth=depth, input_dim=spec.input_dim, output_dim=spec.output_dim,
                              activation=activation, method=sampler, steps=steps, seed=seed, progress=progress, **extra)
        except (GridError, ModelError, ArchitectureError) as err:
            raise APIError(f"joint sampling of depth {depth} is not expressible by {gen_path}: {err}") from None
        sets = dict(joint.weights)
    seconds = time.perf_counter() - t0
    if getattr(gen, "kind", None) == "sane":  # no diffusion: sampler / steps do not apply
        sampler, steps = "sane-anchors", 0  # type: ignore[assignment]
    return GenerationResult(
        task=spec.name, generator=label, checkpoint=gen_path, mode="conditional" if joint is None else "joint", sets=sets,
        sampler=sampler, steps=steps, temperature=extra.get("temperature"), seed=seed, seconds=seconds,
        control_mode=control_mode if spec.kind == "robot" else None, depth=None if joint is None else depth,
        joint=None if joint is None else joint.summary(), train_archs=train_archs, support_warnings=outside, device=device,
        arch_encoding=getattr(getattr(gen, "codec", None), "encoding", None))


def _flag_outside(what: str, reasons: list[str], gen_path, strict: bool) -> None:
    """Out-of-support ``reasons`` for ``what``: an :class:`APIError` in strict mode, else one :class:`SupportWarning`."""
    if not reasons:
        return
    message = f"{what} is outside what {gen_path} was trained on: {'; '.join(reasons)}"
    if strict:
        raise APIError(message + " (strict mode refuses it)")
    warnings.warn(message, SupportWarning, stacklevel=3)


def _default_control_mode(task: str) -> str:
    """The controller a robot task's networks use when a checkpoint does not record one."""
    from nnit.tasks.registry import default_control_mode

    return default_control_mode(task)


# ============================================================================ evaluation
@dataclass
class EvalTable:
    """Per-network results of every evaluated architecture and the paper's top-k rows."""

    task: str
    """Task name."""
    results: dict[Hidden, "EvalResult"]
    """Per-network (and per-episode) results, by hidden widths."""
    rows: list["TopKSummary"]
    """The top-k protocol row of each architecture, in the order of :attr:`results`."""
    joint_row: Optional["TopKSummary"] = None
    """Joint samples: the top-k over all networks of every architecture together."""
    episodes: int = 0
    """Episodes per network (0 for image tasks)."""
    seed: int = 0
    """Seed of episode 0."""
    report_rows: Optional[list["TopKSummary"]] = None
    """With fresh episodes (``report_episodes``): each architecture's kept networks re-evaluated on the fresh
    episodes, in the order of :attr:`rows` (the numbers to report; :attr:`rows` are the ranking episodes')."""
    joint_report_row: Optional["TopKSummary"] = None
    """Joint samples with fresh episodes: the joint top-k networks on the fresh episodes."""
    report_episodes: int = 0
    """Fresh episodes per kept network (0: none)."""
    report_seed: Optional[int] = None
    """Seed of fresh episode 0."""

    @property
    def top_k(self) -> "TopKSummary":
        """The headline row: the joint row for joint samples, else the one architecture's row."""
        if self.joint_row is not None:
            return self.joint_row
        if len(self.rows) != 1:
            raise APIError(f"{len(self.rows)} architectures were evaluated; see .rows")
        return self.rows[0]

    @property
    def merged(self) -> "EvalResult":
        """One result over the networks of every architecture (in the order of :attr:`results`)."""
        from nnit.eval.results import EvalResult

        return EvalResult.merge(list(self.results.values()), "joint")

    def best(self) -> tuple[Hidden, int]:
        """The architecture and index of the network with the best primary metric."""
        h, r = max(self.results.items(), key=lambda kv: float(kv[1].metrics[kv[1].primary].max()))
        return h, int(r.metrics[r.primary].argmax())

    def table(self, per_architecture_limit: int = 8) -> str:
        """The paper's table: one row per architecture (up to ``per_architecture_limit``) and the joint row."""
        from nnit.eval.protocol import protocol_table

        def pick(rows: list, joint) -> list:
            return (rows if len(rows) <= per_architecture_limit or joint is None else []) + ([joint] if joint is not None else [])

        text = protocol_table(pick(list(self.rows), self.joint_row))
        if self.report_rows is not None:
            last = (self.report_seed or 0) + self.report_episodes - 1
            text += (f"\n\nthe same top-k networks on {self.report_episodes} fresh episodes (seeds {self.report_seed}..{last}; "
                     f"the ranking episodes above chose them):\n" + protocol_table(pick(list(self.report_rows), self.joint_report_row)))
        return text

    def __str__(self) -> str:
        from nnit.eval.protocol import results_table

        per_net = [f"[{','.join(map(str, h))}]\n{results_table(r, limit=10)}" for h, r in list(self.results.items())[:2]]
        return "\n\n".join(per_net + [self.table()])


def evaluate(
    task: Union[str, "TaskSpec"],
    weights: Union[WeightSet, GenerationResult, Mapping[Hidden, WeightSet]],
    episodes: Optional[int] = None,
    seed: Optional[int] = None,
    *,
    top_k: Optional[int] = None,
    preset: PresetName = "cpu",
    control_mode: Optional[str] = None,
    backend: Literal["auto", "cpu", "cuda"] = "auto",
    workers: Optional[int] = None,
    data_dir: Union[str, Path, None] = None,
    label: Optional[str] = None,
    report_episodes: int = 0,
    report_seed: Optional[int] = None,
    progress: bool = False,
) -> EvalTable:
    """Evaluate every network and apply the paper's top-k protocol.

    ``weights``: one :class:`WeightSet`, a :class:`GenerationResult` (every architecture it holds; joint
    samples also get a top-k row over all of them) or a mapping of weight sets. Robot tasks run
    ``episodes`` episodes per network with seeds ``seed + e``; ``episodes`` / ``seed`` / ``top_k`` default to
    the preset's evaluation settings. ``control_mode`` defaults to the generator's (a GenerationResult),
    else to the controller whose action size matches the networks' output.

    ``report_episodes`` > 0 (robot tasks): the networks the ranking episodes kept are then re-evaluated on
    ``report_episodes`` fresh episodes, seeds ``report_seed + e`` (default :data:`nnit.config.REPORT_SEED`), which
    must not overlap the ranking seeds; :attr:`EvalTable.report_rows` holds those numbers. Image tasks have no
    episodes (the test split is fixed), so they get no fresh rows.
    """
    from nnit.eval.harness import evaluate as run_eval
    from nnit.eval.protocol import reevaluated
    from nnit.eval.protocol import top_k as top_k_fn
    from nnit.eval.results import EvalResult
    from nnit.tasks.registry import get_task

    ecfg = EVAL[preset]
    episodes = ecfg.episodes if episodes is None else episodes
    seed = ecfg.base_seed if seed is None else seed
    top_k = ecfg.top_k if top_k is None else top_k
    if episodes < 1 or top_k < 1:
        raise APIError(f"episodes and top_k must be >= 1 (got {episodes}, {top_k})")
    report_seed = REPORT_SEED if report_seed is None else report_seed
    if report_episodes < 0:
        raise APIError(f"report episodes must be >= 0 (got {report_episodes})")
    if report_episodes and report_seed < seed + episodes and seed < report_seed + report_episodes:
        raise APIError(f"the fresh episodes' seeds {report_seed}..{report_seed + report_episodes - 1} overlap the ranking "
                       f"episodes' {seed}..{seed + episodes - 1}; pick another report seed")
    gen_label, joint = "", False
    if isinstance(weights, GenerationResult):
        control_mode = control_mode or weights.control_mode
        gen_label, joint, sets = weights.generator, weights.mode == "joint", dict(weights.sets)
    elif isinstance(weights, WeightSet):
        sets = {weights.arch.hidden: weights}
    else:
        sets = dict(weights)
    if not sets:
        raise APIError("no networks to evaluate")
    spec = get_task(task)
    if spec.kind == "robot" and control_mode is None:
        control_mode = _control_mode_for(spec, next(iter(sets.values())).arch.output_dim)
    results, rows = {}, []
    for h, ws in sets.items():
        r = run_eval(spec, ws, episodes=episodes, base_seed=seed, backend=backend, num_workers=workers,
                     control_mode=control_mode if spec.kind == "robot" else None,
                     data_dir=None if data_dir is None else str(data_dir), progress=progress)
        results[h] = r
        row_label = label or (f"{gen_label} [{','.join(map(str, h))}]" if gen_label else "")
        rows.append(top_k_fn(r, top_k, label=row_label))
    table = EvalTable(spec.name, results, rows, episodes=episodes if spec.kind == "robot" else 0, seed=seed)
    if joint:
        table.joint_row = top_k_fn(table.merged, top_k, label=f"NNiT joint d{weights.depth}")  # type: ignore[union-attr]
    if report_episodes and spec.kind == "robot":
        def fresh(h: Hidden, idx: Sequence[int]) -> "EvalResult":
            import torch

            return run_eval(spec, sets[h][torch.as_tensor(list(idx), dtype=torch.long)], episodes=report_episodes,
                            base_seed=report_seed, backend=backend, num_workers=workers, control_mode=control_mode,
                            progress=progress)

        table.report_rows = [reevaluated(row, fresh(h, row.indices)) for h, row in zip(results, rows)]
        table.report_episodes, table.report_seed = report_episodes, report_seed
        if table.joint_row is not None:  # the joint row's indices count the networks of every architecture in order
            owner = [(h, i) for h, r in results.items() for i in range(r.n)]
            chosen: dict[Hidden, list[int]] = {}
            for j in table.joint_row.indices:
                chosen.setdefault(owner[j][0], []).append(owner[j][1])
            merged = EvalResult.merge([fresh(h, idx) for h, idx in chosen.items()], "joint")
            table.joint_report_row = reevaluated(table.joint_row, merged)
    return table


def _control_mode_for(spec, output_dim: int) -> str:
    """The robot controller whose action size is ``output_dim`` (the task's own default when it matches)."""
    from nnit.tasks.registry import ACTION_DIMS

    if spec.output_dim == output_dim:
        return spec.control_mode
    modes = [m for m, d in ACTION_DIMS.items() if d == output_dim]
    if not modes:
        raise APIError(f"networks with {output_dim} outputs fit no controller of {spec.name} "
                       f"({', '.join(f'{m}: {d}' for m, d in ACTION_DIMS.items())})")
    return modes[0]


def record_best_video(table: Optional[EvalTable], generation: GenerationResult, path: Path) -> dict:
    """Render one episode of the best evaluated network (network 0 without a table) to ``path`` (robot tasks)."""
    from nnit.eval.harness import record_video
    from nnit.tasks.registry import get_task

    h, i = table.best() if table is not None else (next(iter(generation.sets)), 0)
    spec = get_task(generation.task, control_mode=generation.control_mode)
    info = record_video(spec, generation.sets[h], path, network=i, seed=table.seed if table is not None else 0)
    return {**info, "network": i, "hidden": list(h), "chosen": "best mean return" if table is not None else "network 0 (not evaluated)"}


def generation_record(generation: GenerationResult, files: dict[str, str], heatmap: Path,
                      table: Optional[EvalTable] = None) -> dict:
    """The ``results.json`` of ``nnit generate``: provenance, files, architectures, joint summary and top-k rows."""
    rec: dict = {**generation.provenance(), "num": generation.num, "sample_seconds": generation.seconds, "files": files,
                 "heatmap": str(heatmap),
                 "architectures": {hidden_label(h): {"hidden": list(h), "num": ws.n} for h, ws in generation.sets.items()}}
    if generation.joint is not None:
        rec["joint"] = generation.joint
    if generation.train_archs:
        rec["support"] = {"in_support": generation.in_support, "warnings": generation.support_warnings,
                          "train_depths": sorted({len(h) for h in generation.train_archs}),
                          "train_widths": sorted({w for h in generation.train_archs for w in h})}
        if generation.arch_encoding is not None:
            rec["support"]["arch_encoding"] = generation.arch_encoding
    if table is not None:
        if table.joint_row is not None:
            rec["joint_top_k"] = table.joint_row.to_dict()  # its indices count the networks in this order:
            rec["joint_networks"] = [[hidden_label(h), i] for h, r in table.results.items() for i in range(r.n)]
        rec["top_k"] = [r.to_dict() for r in table.rows]
        rec["episodes"], rec["eval_seed"] = table.episodes, table.seed
        rec.update(report_fields(table))
    return rec


def report_fields(table: EvalTable, hidden: Optional[Hidden] = None) -> dict:
    """What a results file records of the fresh episodes: ``report_episodes`` (0: none), ``report_seed`` and the
    fresh-episode rows, ``top_k_report`` (every architecture's, or ``hidden``'s alone) and ``joint_top_k_report``."""
    if table.report_rows is None:
        return {"report_episodes": 0}
    rows = {h: r.to_dict() for h, r in zip(table.results, table.report_rows)}
    d: dict = {"report_episodes": table.report_episodes, "report_seed": table.report_seed,
               "top_k_report": rows[hidden] if hidden is not None else list(rows.values())}
    if hidden is None and table.joint_report_row is not None:
        d["joint_top_k_report"] = table.joint_report_row.to_dict()
    return d


def save_generation(generation: GenerationResult, out: Path, table: Optional[EvalTable] = None,
                    video: bool = False) -> dict:
    """Everything ``nnit generate`` writes to ``out``: weight files, README.md, heatmap.png, per-architecture
    ``eval_<arch>.json`` (with ``table``), ``best.mp4`` (``video``, robot tasks) and ``results.json``; returns the
    results.json record."""
    out = Path(out)
    files = generation.save(out)
    if table is not None:
        for (h, r), row in zip(table.results.items(), table.rows):
            r.info.update(generation.provenance())
            r.save(out / f"eval_{hidden_label(h)}.json", extra={"top_k": row.to_dict(), **report_fields(table, h)})
    rec = generation_record(generation, files, out / "heatmap.png", table)
    if video and generation.control_mode is not None:
        rec["video"] = record_best_video(table, generation, out / "best.mp4")
    atomic_write_json(out / "results.json", rec)
    return rec


def weight_heatmap(sets: list[WeightSet], path: Path, per_set: int = 4) -> Path:
    """|W| of every layer (columns) for the first few networks (rows) of each weight set, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(ws, i) for ws in sets for i in range(min(per_set, ws.n))][: max(per_set, 1) * 2]
    cols = max(ws.arch.num_layers for ws, _ in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.2 * cols, 2.0 * len(rows)), squeeze=False)
    for r, (ws, i) in enumerate(rows):
        for c in range(cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= ws.arch.num_layers:
                ax.axis("off")
                continue
            w = ws.weights[c][i].detach().abs().numpy()
            ax.imshow(w, cmap="viridis", aspect="auto", interpolation="nearest")
            if r == 0 or rows[r - 1][0] is not ws:
                ax.set_title(f"W{c + 1} {w.shape[0]}x{w.shape[1]}", fontsize=8)
            if c == 0:
                ax.set_ylabel(f"[{ws.arch.hidden_str()}] #{i}", fontsize=7)
    fig.suptitle("|W| per layer of generated networks", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ============================================================================ data engine and baselines
@dataclass(frozen=True)
class ExpertRun:
    """What a call of :func:`train_expert` did: the PPO expert's run and its final evaluation."""

    run_dir: Path
    """The run directory (``checkpoint.safetensors``, ``actor.safetensors``, ``eval.json``); a DAgger teacher as
    :func:`train_ghn`'s ``teacher_checkpoint``."""
    task: str
    """The robot task."""
    control_mode: str
    """The controller the actor drives."""
    hidden: tuple[int, ...]
    """Hidden widths of the actor (Tanh)."""
    env_steps: int
    """Environment steps trained."""
    episodes: int
    """Episodes of the final evaluation of the deterministic actor."""
    success_rate: float
    """Share of those episodes that succeeded at some step."""
    mean_return: float
    """Mean return over those episodes."""
    std_return: float
    """Standard deviation of the return over those episodes."""


def train_expert(task: str, preset: PresetName = "cpu", out: Union[str, Path, None] = None, *,
                 total_steps: Optional[int] = None, control_mode: Optional[str] = None, workers: Optional[int] = None,
                 backend: Literal["auto", "cpu", "cuda"] = "auto", seed: int = 0, progress: bool = False,
                 log: Log = None) -> ExpertRun:
    """Train (or resume) a PPO expert for a robot task in ``out`` (default ``runs/<preset>/<task>/expert``) and
    evaluate its deterministic actor (:func:`nnit.experts.ppo.train_ppo`). ``total_steps`` and ``control_mode``
    replace the preset's; ``workers``: CPU rollout processes (default one per core, 0 = in this process);
    ``backend`` ``auto`` = ``physx_cuda`` when a GPU is visible."""
    from nnit.eval.results import EvalResult
    from nnit.experts.ppo import ppo_config, train_ppo
    from nnit.tasks.registry import RobotTaskSpec, get_task

    spec = get_task(task)
    if not isinstance(spec, RobotTaskSpec):
        raise APIError(f"PPO experts are for robot tasks; {spec.name} is an image task")
    cfg = replace(ppo_config(preset, spec.name), seed=seed)
    if total_steps is not None:
        cfg = replace(cfg, total_steps=total_steps)
    if control_mode is not None:
        cfg = replace(cfg, control_mode=control_mode)
    out = Path(out) if out is not None else Path("runs") / preset / spec.name / "expert"
    run_dir = Path(train_ppo(spec.name, cfg, out, num_workers=workers, backend=backend, progress=progress))
    ev = EvalResult.load(run_dir / "eval.json")
    result = ExpertRun(run_dir, spec.name, str(ev.info["control_mode"]), tuple(ev.arch["hidden"]),
                       int(ev.info.get("env_steps_trained", 0)), len(ev.seeds), float(ev.metrics["success_rate"][0]),
                       float(ev.metrics["mean_return"][0]), float(ev.metrics["std_return"][0]))
    (log or _quiet)(f"PPO expert {run_dir}: success {result.success_rate:.2f}, return {result.mean_return:.1f} +- "
                    f"{result.std_return:.1f} over {result.episodes} episodes ({result.env_steps} env steps)")
    return result


def train_ghn(task: str, preset: PresetName = "cpu", out: Union[str, Path, None] = None, *,
              ensemble_size: Optional[int] = None, iterations: Optional[int] = None, seed: int = 0,
              control_mode: Optional[str] = None, teacher_checkpoint: Union[str, Path, None] = None,
              workers: Optional[int] = None, data_dir: Union[str, Path, None] = None, device: DeviceName = "cpu",
              split: SplitName = "paper", progress: bool = False, log: Log = None) -> Path:
    """Train (or resume) the task's GHN ensemble (DAgger for robot tasks, cross-entropy for image tasks) in ``out``
    (default ``runs/<preset>/<task>/ghn``); returns the checkpoint path. ``control_mode`` None = the teacher's:
    ``teacher_checkpoint``'s PPO expert, else the one a resumed run was trained with, else the scripted teacher's.
    ``device``: where the ensemble trains, ``cpu`` or ``cuda`` (the DAgger rollouts run on CPU workers either way).
    ``split``: the architecture split the meta-batches are drawn from (``paper`` or ``varied``,
    :func:`nnit.weights.architecture.get_split`)."""
    from nnit.ghn.train import ghn_config, saved_teacher_checkpoint, train_ghn_ensemble
    from nnit.tasks.registry import get_task

    spec = get_task(task)
    cfg = ghn_config(preset, spec.name)
    if ensemble_size is not None:
        cfg = replace(cfg, ensemble_size=ensemble_size)
    if iterations is not None:
        cfg = replace(cfg, iterations=iterations)
    cfg = replace(cfg, seed=seed, split=split)
    out = Path(out) if out is not None else Path("runs") / preset / spec.name / "ghn"
    teacher = None if teacher_checkpoint is None else str(teacher_checkpoint)
    if spec.kind == "robot" and control_mode is None:
        from nnit.experts.teachers import get_teacher

        control_mode = get_teacher(spec.name, checkpoint=teacher or saved_teacher_checkpoint(out)).spec.control_mode
    path = Path(train_ghn_ensemble(spec.name, cfg, out, num_workers=workers, data_dir=None if data_dir is None else str(data_dir),
                                   control_mode=control_mode if spec.kind == "robot" else None, progress=progress,
                                   teacher_checkpoint=teacher, device=device))
    (log or _quiet)(f"GHN ensemble ({cfg.ensemble_size} members) saved to {path}")
    return path


def build_dataset(ghn: Union[str, Path], preset: PresetName = "cpu", out: Union[str, Path, None] = None, *,
                  episodes: Optional[int] = None, keep: Optional[int] = None, archs: Optional[Sequence[str]] = None,
                  limit_archs: Optional[int] = None, workers: Optional[int] = None, data_dir: Union[str, Path, None] = None,
                  split: SplitName = "paper", reuse: Union[str, Path, None] = None, progress: bool = False,
                  log: Log = None) -> Path:
    """One candidate per GHN member and architecture, evaluated, filtered (the paper's thresholds) and the best kept,
    in ``out`` (default beside the GHN run, ``../dataset``); returns the dataset directory. Resumes: finished
    architectures are skipped. ``archs``: only these hidden widths (e.g. ``["32,16,64,32"]``). ``split``: the
    architecture split whose train / held-out / validation architectures are built (the GHN's own split or another
    over the same widths and depths). ``reuse``: an earlier dataset of the same GHN and settings whose finished
    architectures are copied rather than generated and evaluated again."""
    from nnit.ghn.dataset import DATASET_PRESETS, build_dataset as build, format_role_summary, role_summary

    cfg = replace(DATASET_PRESETS[preset], split=split)
    if episodes is not None:
        cfg = replace(cfg, episodes=episodes)
    if keep is not None:
        cfg = replace(cfg, keep_per_arch=keep)
    out = Path(out) if out is not None else Path(ghn).parent.parent / "dataset"
    only = [Architecture.parse(a, 1, 1).hidden for a in archs] if archs else None
    path = Path(build(ghn, out, cfg, num_workers=workers, data_dir=None if data_dir is None else str(data_dir),
                      limit_archs=limit_archs, only=only, progress=progress, reuse=reuse))
    summary = json.loads((path / "summary.json").read_text())
    say = log or _quiet
    say(format_role_summary(role_summary(path, by="role" if split == "paper" else "category")))
    say(f"dataset {path}: {summary['total_kept']} networks kept over {len(summary['architectures'])} architectures")
    return path


@dataclass
class TrainRun:
    """What a call of :func:`train` did."""

    checkpoint: Path
    """The checkpoint file (model, EMA, optimizer, step, config)."""
    task: Optional[str]
    """The dataset's task."""
    start_step: int
    """Step the call started from (> 0 when it resumed)."""
    end_step: int
    """Step it ended at."""
    history: list[dict]
    """Per-step losses and learning rate of this call."""
    seconds: float
    """Wall time of the training loop."""


@dataclass
class BaselineRun(TrainRun):
    """What a call of :func:`train_baseline` did."""

    method: str = "d2nwg"
    """``d2nwg`` or ``sane``."""
    parameters: dict = field(default_factory=dict)
    """Parameter counts of the model's parts."""
    budget: dict = field(default_factory=dict)
    """Early stopping: the wall-clock cap, the run's wall time, phase ends, validation curves and why it ended
    (:class:`nnit.baselines.early_stopping.Budget`)."""


def train_baseline(method: Literal["d2nwg", "sane"], dataset: Union[str, Path], preset: PresetName = "cpu",
                   out: Union[str, Path, None] = None, *, steps: Optional[int] = None,
                   normalization: Literal["global", "per_role"] = "per_role", max_seconds: float = 0.0,
                   progress: bool = False, log: Log = None) -> BaselineRun:
    """Train (or resume) D2NWG or SANE on exactly NNiT's data (the train architectures' kept networks) and
    normalization, in ``out`` (default beside the dataset, ``../<method>``). ``steps``: D2NWG's diffusion phase
    (its VAE phase keeps the preset's) or SANE's steps, caps when the preset stops on a validation plateau.
    ``max_seconds`` caps the run's wall clock (0 = none; the equal-budget comparison passes NNiT's training time).
    Data-parallel under torchrun like :func:`train`."""
    from nnit.baselines.common import summarize_history
    from nnit.baselines.train import PRESETS, train_baseline as train_loop
    from nnit.ghn.dataset import dataset_normalizer, iter_dataset
    from nnit.weights.mlp import WeightError

    say = log or _quiet
    dataset = Path(dataset)
    if not (dataset / "index.json").is_file():
        raise APIError(f"{dataset} is not a dataset directory (no index.json); build one with nnit build-dataset")
    index = json.loads((dataset / "index.json").read_text())
    sets = [ws for _, ws in iter_dataset(dataset, roles=("train",))]
    if not sets:
        raise APIError(f"{dataset} holds no kept networks of train-role architectures; nothing to train on")
    try:
        normalizer = dataset_normalizer(dataset, normalization, sets)
    except WeightError as err:
        raise APIError(str(err)) from None
    cfg = PRESETS[method][preset]
    if steps is not None:
        cfg = replace(cfg, **({"diffusion_steps": steps} if method == "d2nwg" else {"steps": steps}))
    out = Path(out) if out is not None else (dataset if dataset.name else dataset.resolve()).parent / method
    info = {"task": index.get("task"), "control_mode": index.get("control_mode"), "dataset": str(dataset)}
    say(f"training {method} on {sum(ws.n for ws in sets)} networks of {len(sets)} {info['task']} architectures -> {out}")
    t0 = time.perf_counter()
    if not max_seconds >= 0:
        raise APIError(f"--max-seconds must be >= 0, got {max_seconds}")
    model, res = train_loop(method, cfg, [normalizer.apply(ws) for ws in sets], out, normalizer=normalizer, info=info,
                            progress=progress, max_seconds=float(max_seconds))
    from nnit.checkpoint import load_checkpoint as load_any

    budget = load_any(res.checkpoint).sections.get("budget", {})
    run = BaselineRun(Path(res.checkpoint), info["task"], res.start_step, res.end_step, res.history, time.perf_counter() - t0,
                      method=method, parameters=model.parameter_counts(), budget=budget)
    first, last = summarize_history(run.history)
    say(f"steps {run.start_step} -> {run.end_step} in {run.seconds:.0f} s; loss {first:.4f} -> {last:.4f}; parameters {run.parameters}")
    if budget.get("finished"):
        say(f"ended early ({budget['reason']}) at step {run.end_step} after {budget['seconds']:.0f} s in total"
            + "".join(f"; {k} phase ended at step {v}" for k, v in budget.get("phase_end", {}).items()))
    say(f"checkpoint: {run.checkpoint}")
    return run


def _quiet(_message: str) -> None:
    """The default ``log``: the API prints nothing."""


# ============================================================================ training
@dataclass(frozen=True)
class TrainOverrides:
    """Settings of ``nnit train`` that replace the preset's (None keeps the preset's)."""

    model: Optional[Literal["NNiT-XS", "NNiT-Ti", "NNiT-S", "NNiT-B"]] = None
    """Model size preset (``nnit.diffusion.model.MODEL_PRESETS``)."""
    token_mode: Optional[Literal["padded", "valid"]] = None
    """Tokenization: padded (the paper's full grid) or valid (padding-free)."""
    steps: Optional[int] = None
    """Total number of optimizer steps."""
    normalization: Optional[Literal["global", "per_role"]] = None
    """Weight normalization: global (the paper) or per_role."""
    parameterization: Optional[Literal["eps", "v"]] = None
    """What the model predicts: eps (the paper's Table 7) or v (the tiny / cpu presets')."""
    lr: Optional[float] = None
    """Peak learning rate."""
    arch_balance: Optional[float] = None
    """Draw a network of an architecture with n training networks with weight n^-B: 0 = every network equally
    often (the paper), 1 = every architecture equally often. Also changes a run being continued, from its
    checkpoint step on."""
    p_prior: Optional[float] = None
    """Share of samples in the architecture-prior mode (weights hidden, t_w = T), which architecture-first joint
    sampling of valid-token models needs."""
    p_joint: Optional[float] = None
    """Share of samples in MoNL's joint mode (architecture codes noised too); the rest train p(w | a) with clean
    codes (and the prior mode, --p-prior). The paper: 0.5."""
    min_snr_gamma: Optional[float] = None
    """Min-SNR-gamma loss weighting of the eps-MSE (e.g. 5; 0 = unweighted, the paper): caps the weight of the
    low-noise timesteps."""
    arch_encoding: Optional[Literal["vocab", "value"]] = None
    """How hidden widths are coded: vocab (a fixed code per width of the dataset split's grid, the paper's tokens)
    or value (Fourier features of the width's value: any width of the grid's range has a code, unseen widths lie
    between seen ones; sampled codes decode to the grid)."""
    layer_positions: Optional[Literal["absolute", "both_ends"]] = None
    """How the model embeds a layer's index: absolute (from the input, the paper) or both_ends (also from the output
    layer, so a depth between trained depths is written with trained position entries)."""
    init_from: Optional[Path] = None
    """Start a new run from this NNiT checkpoint's weights (fine-tuning: fresh optimizer and LR schedule; model size,
    tokens, normalization and parameterization from that checkpoint). Ignored when --out already holds a run."""


def train(
    dataset: Union[str, Path],
    preset: PresetName = "cpu",
    out: Union[str, Path, None] = None,
    overrides: TrainOverrides = TrainOverrides(),
    *,
    progress: bool = False,
    log: Log = None,
) -> TrainRun:
    """Train NNiT (MoNL, paper Sec. 5.2) on the train-role networks of a GHN dataset, or resume it.

    ``out`` defaults to ``<dataset>/../nnit``; an existing checkpoint there is continued (its model and
    settings win; ``overrides.steps`` raises the total, ``overrides.arch_balance`` changes the data stream).
    ``log`` receives one-line status messages (what is trained, resume notes)."""
    from nnit.diffusion.train import (CHECKPOINT_NAME, CONTINUATION_FIELDS, load_checkpoint, split_arch_settings,
                                      train as train_loop, train_config)
    from nnit.ghn.dataset import dataset_normalizer, iter_dataset
    from nnit.weights.mlp import WeightError
    from nnit.weights.normalize import WeightNormalizer

    say = log or _quiet
    ab = overrides.arch_balance
    if ab is not None and not (ab >= 0 and ab != float("inf")):
        raise APIError(f"--arch-balance must be a number >= 0, got {ab}")
    dataset = Path(dataset)
    index_path = dataset / "index.json"
    if not index_path.is_file():
        raise APIError(f"{dataset} is not a dataset directory (no index.json); build one with nnit build-dataset")
    index = json.loads(index_path.read_text())
    task = index.get("task")
    sets = [ws for _, ws in iter_dataset(dataset, roles=("train",))]
    if not sets:
        raise APIError(f"{dataset} holds no kept networks of train-role architectures; nothing to train on")
    given = {k: v for k, v in vars(overrides).items() if v is not None and k != "init_from"}
    cfg = replace(train_config(preset, task), **given)
    split = index.get("config", {}).get("split", "paper")  # the codes cover the split's width grid
    cfg = replace(cfg, **split_arch_settings(split, cfg.arch_encoding))
    continuation = {k: v for k, v in given.items() if k in CONTINUATION_FIELDS}
    if not 0 <= cfg.p_joint <= 1:
        raise APIError(f"--p-joint must be in [0, 1], got {cfg.p_joint}")
    if not 0 <= cfg.p_prior <= 1 - cfg.p_joint:
        raise APIError(f"--p-prior must be in [0, {1 - cfg.p_joint:g}] (1 - p_joint), got {cfg.p_prior}")
    if not (cfg.min_snr_gamma >= 0 and cfg.min_snr_gamma != float("inf")):
        raise APIError(f"--min-snr-gamma must be a number >= 0 (0 = unweighted), got {cfg.min_snr_gamma}")
    out = Path(out) if out is not None else (dataset if dataset.name else dataset.resolve()).parent / "nnit"
    ckpt_path = out / CHECKPOINT_NAME
    ck = load_checkpoint(ckpt_path) if ckpt_path.exists() else None
    if ck is not None:
        if ck.data.get("task") not in (None, task):
            raise APIError(f"{ckpt_path} was trained on {ck.data['task']}, not {task}; use a fresh --out")
        ignored = {k: v for k, v in given.items()
                   if k != "steps" and k not in CONTINUATION_FIELDS and getattr(ck.config, k) != v}
        changed = {k: v for k, v in continuation.items() if getattr(ck.config, k) != v}
        say(f"resuming {ckpt_path} at step {ck.step}/{cfg.steps}"
            + (f" (kept the checkpoint's {', '.join(f'{k}={getattr(ck.config, k)}' for k in ignored)})" if ignored else "")
            + "".join(f"; {k} {getattr(ck.config, k)} -> {v} from step {ck.step}" for k, v in changed.items()))
    init = None
    if overrides.init_from is not None and ck is None:
        init = load_checkpoint(overrides.init_from)
        if init.data.get("task") not in (None, task):
            raise APIError(f"--init-from {overrides.init_from} was trained on {init.data['task']}, not {task}")
        say(f"starting from the weights of {overrides.init_from} (step {init.step}; its model, tokens and normalization)")
    source = ck if ck is not None else init
    try:
        normalizer = (WeightNormalizer.from_dict(source.data["normalizer"]) if source is not None and "normalizer" in source.data
                      else dataset_normalizer(dataset, cfg.normalization, sets))
    except WeightError as err:
        raise APIError(str(err)) from None
    info = {"task": task, "control_mode": index.get("control_mode"), "dataset": str(dataset), "split": split}
    if init is not None:
        info["init_from"] = {"path": str(overrides.init_from), "step": init.step}
    n_nets = sum(ws.n for ws in sets)
    encoding = (source.config if source is not None else cfg).arch_encoding
    layers = (source.config if source is not None else cfg).layer_positions
    say(f"training NNiT ({cfg.model}, {cfg.token_mode} tokens, {encoding} width codes over the {split} split's widths"
        f"{', layer positions from both ends' if layers == 'both_ends' else ''}) "
        f"on {n_nets} networks of {len(sets)} {task} architectures for {cfg.steps} steps -> {out}")
    balance = ck.config.arch_balance if ck is not None and ab is None else cfg.arch_balance
    if balance:
        share = [ws.n ** (1 - balance) for ws in sets]
        rare = min(range(len(sets)), key=lambda i: sets[i].n)
        say(f"architecture-balanced sampling (--arch-balance {balance:g}): {','.join(map(str, sets[rare].arch.hidden))} "
            f"({sets[rare].n} networks) is drawn {share[rare] / sum(share):.1%} of the time (uniform: {sets[rare].n / n_nets:.1%})")
    t0 = time.perf_counter()
    res = train_loop(cfg, [normalizer.apply(ws) for ws in sets], out, normalizer=normalizer, progress=progress, info=info,
                     continuation=continuation, init_from=overrides.init_from if init is not None else None)
    run = TrainRun(Path(res.checkpoint), task, res.start_step, res.end_step, res.history, time.perf_counter() - t0)
    if run.history:
        from nnit.baselines.common import summarize_history

        first, last = summarize_history(run.history)
        k = max(1, min(50, len(run.history) // 5))
        say(f"steps {run.start_step} -> {run.end_step} in {run.seconds:.0f} s ({len(run.history) / max(run.seconds, 1e-9):.2f} "
            f"steps/s); loss {first:.4f} -> {last:.4f} (mean of {k} steps)")
    else:
        say(f"already trained to step {run.end_step}; raise --steps to continue")
    say(f"checkpoint: {run.checkpoint}")
    return run


__all__ = ["APIError", "SupportWarning", "EvalTable", "ExpertRun", "GenerationResult", "BaselineRun", "TrainOverrides", "TrainRun", "build_dataset", "evaluate", "generate",
           "load_generator", "save_generation", "support_warnings", "train", "train_baseline", "train_expert",
           "train_ghn"]
