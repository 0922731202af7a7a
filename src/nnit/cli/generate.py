"""``nnit train`` and ``nnit generate``: thin command-line wrappers over :func:`nnit.api.train`,
:func:`nnit.api.generate` and :func:`nnit.api.evaluate`. Each command is a frozen dataclass that tyro
turns into flags (one docstring per field); ``run()`` calls the API and prints what it returns."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Optional

import tyro

from nnit.api import TrainOverrides
from nnit.config import EVAL, DeviceName, PresetName
from nnit.errors import NNiTError

ModelName = Literal["NNiT-XS", "NNiT-Ti", "NNiT-S", "NNiT-B"]
"""The size presets of ``nnit.diffusion.model.MODEL_PRESETS`` (kept equal by a test)."""


class GenerateError(NNiTError):
    """A user-facing ``nnit train`` / ``nnit generate`` problem (one line, exit status 2)."""


def _set_threads(threads: Optional[int]) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


# ============================================================================ nnit train
@dataclass(frozen=True)
class TrainCommand:
    """Train NNiT (MoNL diffusion transformer) on the train-role networks of a GHN dataset; resumable.

    Loads DATASET/shards (raw weights of the train architectures), normalizes them (the dataset's global
    statistics, or per-role statistics fitted on them; see --normalization) and trains; re-running the same
    command continues from OUT/checkpoint.safetensors (model size and settings then come from the checkpoint;
    --steps raises the total). Losses go to TensorBoard (OUT/tb). Python: nnit.api.train. Data-parallel:
    torchrun --nproc_per_node=N -m nnit train ... (the batch is split over the processes; rank 0 writes).

    Example: nnit train --dataset runs/cpu/PushCube-v1/dataset --preset cpu

    Example: nnit train --dataset runs/tiny/FashionMNIST/dataset --preset tiny --steps 300
    """

    dataset: Path
    """A dataset directory from nnit build-dataset (index.json, shards/, normalization.json)."""
    preset: PresetName = "cpu"
    """tiny / cpu / paper: model size, steps, batch, learning-rate schedule, EMA (nnit presets lists them)."""
    out: Optional[Path] = None
    """Output directory (default: beside the dataset, in ../nnit)."""
    overrides: Annotated[TrainOverrides, tyro.conf.arg(name="")] = TrainOverrides()
    threads: Optional[int] = None
    """torch CPU threads (default: torch's choice)."""
    progress: bool = True
    """Show a progress bar."""

    def run(self) -> None:
        from nnit.api import train
        from nnit.distributed import init_from_env, is_main

        init_from_env()  # under torchrun: join the process group now, so only rank 0 reports
        say = print if is_main() else (lambda *_: None)
        _set_threads(self.threads)
        res = train(self.dataset, self.preset, self.out, self.overrides, progress=self.progress, log=say)
        if res.task:
            say(f"next: nnit generate --task {res.task} --checkpoint {res.checkpoint} --arch 32,16,64,32 --evaluate")


# ============================================================================ nnit generate
@dataclass(frozen=True)
class SamplingOptions:
    """How networks are drawn from the generator."""

    num: Optional[int] = None
    """Networks to sample (default: the preset's, 100 at cpu/paper)."""
    sampler: Optional[Literal["ancestral", "ddim", "dpm++2m", "dpm++2m-sde", "unipc"]] = None
    """ancestral (the paper's, learned variance), ddim, or diffusers' few-step solvers dpm++2m, dpm++2m-sde (SDE:
    takes a temperature), unipc: 100 networks in seconds instead of minutes (docs/studies/fast-sampling.md).
    Default: the preset's (tiny, cpu and paper: ancestral)."""
    steps: Optional[int] = None
    """Denoising steps (default: the preset's with its sampler -- cpu: ancestral respaced to 100 steps, as good as
    1000 on the robot tasks' unseen architectures --, else 1000 = T for ancestral, 50 for ddim, 20 for
    dpm++2m / dpm++2m-sde / unipc)."""
    temperature: Optional[float] = None
    """NNiT's sampling temperature, the scale of each weight step's fresh noise (default: the preset's; 1 = the
    model's distribution, the paper's). Baselines sample at 1."""
    depth: int = 4
    """Hidden layers of the sampled architectures in joint mode."""
    seed: int = 0
    """Sampling seed."""
    ema: bool = True
    """Sample with the EMA weights (else the raw training weights)."""
    device: DeviceName = "cpu"
    """Where NNiT samples: cpu or cuda (the same seed draws different networks on each). The baselines sample on
    the CPU."""


@dataclass(frozen=True)
class EvaluationOptions:
    """How the generated networks are evaluated (with --evaluate)."""

    episodes: Optional[int] = None
    """Episodes per network (robot tasks); default from the preset."""
    top_k: Optional[int] = None
    """Networks kept by the top-k protocol; default from the preset."""
    eval_seed: Optional[int] = None
    """Seed of episode 0; default from the preset."""
    report_episodes: int = 0
    """Robot tasks: re-evaluate the top-k networks on this many fresh episodes (seeds --report-seed + e) that played
    no part in choosing them, and report those numbers too (0: off; nnit reproduce's cpu and paper presets: 50)."""
    report_seed: Optional[int] = None
    """Seed of fresh episode 0 (default 5000; must not overlap the ranking episodes' seeds)."""
    workers: Optional[int] = None
    """Simulator worker processes (default: one per core)."""
    data_dir: Optional[Path] = None
    """IDX folder for image tasks."""


@dataclass(frozen=True)
class GenerateCommand:
    """Sample networks from a trained NNiT (p(w|a) with --arch, else joint p(a,w)) or baseline, export and evaluate them.

    Writes OUT/networks.safetensors (all N networks of one architecture; joint mode: one
    networks_h<widths>.safetensors per sampled architecture), OUT/README.md (how to load one as an
    nn.Sequential), OUT/heatmap.png (|W| per layer of a few networks) and OUT/results.json. With
    --evaluate it runs the harness and prints the paper's top-k table; --video renders the best
    network's rollout (robot tasks). Python: nnit.api.generate / nnit.api.evaluate.

    Example: nnit generate --task PushCube-v1 --arch 32,16,64,32 --num 100 --evaluate

    Example: nnit generate --task PushCube-v1 --num 100 --evaluate   (joint mode: architectures sampled too)

    Example: nnit generate --task PushCube-v1 --arch 32,32,16,64 --num 100 --evaluate --episodes 10 --report-episodes 50   (top-10 chosen on 10 episodes, reported on 50 fresh ones)

    Example: nnit generate --task FashionMNIST --preset tiny --arch 64,32,16,64 --num 8 --sampler ancestral --steps 100

    Example: nnit generate --task PickCube-v1 --preset paper --arch 32,16,64,32 --device cuda --evaluate
    """

    task: str
    """PickCube-v1, PushCube-v1, StackCubeEasy-v1, FashionMNIST or MNIST (must match the checkpoint)."""
    arch: Optional[str] = None
    """Hidden widths, e.g. 32,16,64,32 (conditional p(w|a)); omitted = joint p(a,w)."""
    preset: PresetName = "cpu"
    """tiny / cpu / paper: default checkpoint path, number of networks, temperature and evaluation settings."""
    checkpoint: Optional[Path] = None
    """NNiT (or D2NWG / SANE baseline) checkpoint file or run directory (default runs/<preset>/<task>/nnit/checkpoint.safetensors)."""
    out: Optional[Path] = None
    """Output directory (default: beside the checkpoint, in ../generated/<h-widths or joint_d<depth>>; baselines ../generated/<method>_<h-widths>)."""
    sampling: Annotated[SamplingOptions, tyro.conf.arg(name="")] = SamplingOptions()
    evaluate: bool = False
    """Evaluate every network and print the top-k table."""
    evaluation: Annotated[EvaluationOptions, tyro.conf.arg(name="")] = EvaluationOptions()
    video: bool = False
    """Render one episode of the best network to OUT/best.mp4 (robot tasks)."""
    strict: bool = False
    """Refuse an architecture whose depth or widths the model never saw in training, or joint sampling at a depth it
    never saw (default: warn, sample anyway and record the warning in results.json)."""
    threads: Optional[int] = None
    """torch CPU threads (default: torch's choice)."""
    progress: bool = True
    """Show progress bars."""

    def run(self) -> None:
        from nnit import api
        from nnit.baselines.train import METHODS
        from nnit.checkpoint import DEFAULT_NAME, checkpoint_kind, resolve_path
        from nnit.tasks.registry import get_task
        from nnit.weights.architecture import hidden_label

        s, e = self.sampling, self.evaluation
        _set_threads(self.threads)
        spec = get_task(self.task)
        ckpt = resolve_path(self.checkpoint) if self.checkpoint is not None else Path("runs") / self.preset / spec.name / "nnit" / DEFAULT_NAME
        if not ckpt.exists():
            raise GenerateError(f"no NNiT checkpoint at {ckpt}; train one with 'nnit train --dataset runs/{self.preset}/{spec.name}/dataset "
                                f"--preset {self.preset}' (after train-ghn and build-dataset) or pass --checkpoint PATH")
        ecfg = EVAL[self.preset]
        num = ecfg.num_networks if s.num is None else s.num
        sampler = ecfg.sampler if s.sampler is None else s.sampler
        steps = (ecfg.steps if sampler == ecfg.sampler else None) if s.steps is None else s.steps
        if num < 1 or (steps is not None and steps < 1):
            raise GenerateError(f"--num and --steps must be >= 1 (got {num}, {steps})")
        if s.temperature is not None and not s.temperature >= 0:
            raise GenerateError(f"--temperature must be >= 0 (got {s.temperature})")
        is_nnit = checkpoint_kind(ckpt) not in METHODS  # header only
        if not is_nnit and s.temperature not in (None, 1.0):
            raise GenerateError(f"--temperature applies to NNiT's sampler only, not to the baseline in {ckpt}")
        deterministic = sampler in api.ODE_SAMPLERS  # no fresh noise to scale
        if deterministic and s.temperature not in (None, 1.0):
            raise GenerateError(f"--temperature applies to samplers with fresh noise (ancestral, dpm++2m-sde), not {sampler}")
        temperature = (ecfg.temperature if s.temperature is None else s.temperature) if is_nnit and not deterministic else 1.0
        with warnings.catch_warnings():  # the support warning is printed below, as one line
            warnings.simplefilter("ignore", api.SupportWarning)
            gen = api.generate(ckpt, spec.name, self.arch, num, sampler=sampler, steps=steps, temperature=temperature,
                               depth=s.depth, seed=s.seed, ema=s.ema, strict=self.strict, device=s.device,
                               progress=self.progress)
        for line in gen.summary_lines():
            print(line)
        out = Path(self.out) if self.out is not None else ckpt.parent.parent / "generated" / (
            ("" if gen.generator == "NNiT" else f"{gen.generator.lower()}_")
            + (hidden_label(gen.architectures[0].hidden) if gen.mode == "conditional" else f"joint_d{s.depth}"))
        table = None
        if self.evaluate:
            table = api.evaluate(spec.name, gen, e.episodes, e.eval_seed, top_k=e.top_k, preset=self.preset, workers=e.workers,
                                 data_dir=e.data_dir, report_episodes=e.report_episodes, report_seed=e.report_seed,
                                 progress=self.progress)
        video = self.video and spec.kind == "robot"
        rec = api.save_generation(gen, out, table, video=video)
        print(f"wrote {len(rec['files'])} weight file(s) to {out} (load: WeightSet.load(f).to_sequential(i); see {out / 'README.md'})")
        if table is not None:
            print()
            print(table.table())
        if self.video and not video:
            print("--video: skipped (videos are for robot tasks)")
        elif video:
            v = rec["video"]
            print(f"video: {v['path']} (network {v['network']} of [{','.join(map(str, v['hidden']))}], return {v['return']:.2f})")
        print(f"wrote {out / 'results.json'}")
