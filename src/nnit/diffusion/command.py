"""``nnit train`` and ``nnit generate``: train NNiT on a GHN dataset, then sample, export and evaluate networks."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Literal

from nnit.fileio import atomic_write_json
from nnit.config import PresetName
from nnit.weights.architecture import hidden_label

ModelName = Literal["NNiT-XS", "NNiT-Ti", "NNiT-S", "NNiT-B"]
"""The size presets of ``nnit.diffusion.model.MODEL_PRESETS`` (kept equal by a test)."""

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


class GenerateError(ValueError):
    """A user-facing ``nnit train`` / ``nnit generate`` problem (one line, exit status 2)."""


# ============================================================================ nnit train
def train_command(
    dataset: Path,
    preset: PresetName = "cpu",
    out: Path | None = None,
    model: ModelName | None = None,
    token_mode: Literal["padded", "valid"] | None = None,
    steps: int | None = None,
    normalization: Literal["global", "per_role"] | None = None,
    lr: float | None = None,
    arch_balance: float | None = None,
    threads: int | None = None,
    progress: bool = True,
) -> None:
    """Train NNiT (MoNL diffusion transformer) on the train-role networks of a GHN dataset; resumable.

    Loads DATASET/shards (raw weights of the train architectures), normalizes them (the dataset's global
    statistics, or per-role statistics fitted on them; see --normalization) and trains; re-running the same command continues from
    OUT/checkpoint.safetensors (model size and settings then come from the checkpoint; --steps raises
    the total). Losses go to TensorBoard (OUT/tb).

    Example: nnit train --dataset runs/cpu/PushCube-v1/dataset --preset cpu

    Example: nnit train --dataset runs/tiny/FashionMNIST/dataset --preset tiny --steps 300

    Args:
        dataset: A dataset directory from nnit build-dataset (index.json, shards/, normalization.json).
        preset: tiny / cpu / paper: model size, steps (cpu: 30,000; 60,000 for PickCube-v1 and StackCubeEasy-v1), batch, learning-rate schedule, EMA.
        out: Output directory (default: beside the dataset, in ../nnit).
        model: Override the model size preset.
        token_mode: Override the tokenization: padded (the paper's full grid) or valid (padding-free).
        steps: Override the total number of optimizer steps.
        normalization: Override the weight normalization: global (the paper) or per_role.
        lr: Override the peak learning rate.
        arch_balance: Draw a network of an architecture with n training networks with weight n^-B: 0 = every network equally often (the default, the paper), 1 = every architecture equally often. Also changes a run being continued, from its checkpoint step on.
        threads: torch CPU threads (default: torch's choice).
        progress: Show a progress bar.
    """
    from dataclasses import replace

    import torch

    from nnit.diffusion.train import CHECKPOINT_NAME, CONTINUATION_FIELDS, load_checkpoint, train, train_config
    from nnit.ghn.dataset import dataset_normalizer, iter_dataset
    from nnit.weights.mlp import WeightError
    from nnit.weights.normalize import WeightNormalizer

    if arch_balance is not None and not (arch_balance >= 0 and arch_balance != float("inf")):
        raise GenerateError(f"--arch-balance must be a number >= 0, got {arch_balance}")
    if threads:
        torch.set_num_threads(threads)
    dataset = Path(dataset)
    index_path = dataset / "index.json"
    if not index_path.is_file():
        raise GenerateError(f"{dataset} is not a dataset directory (no index.json); build one with nnit build-dataset")
    index = json.loads(index_path.read_text())
    task = index.get("task")
    sets = [ws for _, ws in iter_dataset(dataset, roles=("train",))]
    if not sets:
        raise GenerateError(f"{dataset} holds no kept networks of train-role architectures; nothing to train on")
    cfg = train_config(preset, task)
    overrides = {k: v for k, v in (("model", model), ("token_mode", token_mode), ("steps", steps),
                                   ("normalization", normalization), ("lr", lr), ("arch_balance", arch_balance))
                 if v is not None}
    cfg = replace(cfg, **overrides)
    continuation = {k: v for k, v in overrides.items() if k in CONTINUATION_FIELDS}
    out = Path(out) if out is not None else (dataset if dataset.name else dataset.resolve()).parent / "nnit"
    ckpt_path = out / CHECKPOINT_NAME
    if ckpt_path.exists():
        ck = load_checkpoint(ckpt_path)
        if ck.data.get("task") not in (None, task):
            raise GenerateError(f"{ckpt_path} was trained on {ck.data['task']}, not {task}; use a fresh --out")
        ignored = {k: v for k, v in overrides.items()
                   if k != "steps" and k not in CONTINUATION_FIELDS and getattr(ck.config, k) != v}
        changed = {k: v for k, v in continuation.items() if getattr(ck.config, k) != v}
        print(f"resuming {ckpt_path} at step {ck.step}/{cfg.steps}"
              + (f" (kept the checkpoint's {', '.join(f'{k}={getattr(ck.config, k)}' for k in ignored)})" if ignored else "")
              + "".join(f"; {k} {getattr(ck.config, k)} -> {v} from step {ck.step}" for k, v in changed.items()))
    try:
        normalizer = (WeightNormalizer.from_dict(ck.data["normalizer"]) if ckpt_path.exists() and "normalizer" in ck.data
                      else dataset_normalizer(dataset, cfg.normalization, sets))
    except WeightError as err:
        raise GenerateError(str(err)) from None
    info = {"task": task, "control_mode": index.get("control_mode"), "dataset": str(dataset)}
    n_nets = sum(ws.n for ws in sets)
    print(f"training NNiT ({cfg.model}, {cfg.token_mode} tokens) on {n_nets} networks of {len(sets)} {task} "
          f"architectures for {cfg.steps} steps -> {out}")
    balance = ck.config.arch_balance if ckpt_path.exists() and arch_balance is None else cfg.arch_balance
    if balance:
        share = [ws.n ** (1 - balance) for ws in sets]
        rare = min(range(len(sets)), key=lambda i: sets[i].n)
        print(f"architecture-balanced sampling (--arch-balance {balance:g}): {','.join(map(str, sets[rare].arch.hidden))} "
              f"({sets[rare].n} networks) is drawn {share[rare] / sum(share):.1%} of the time (uniform: {sets[rare].n / n_nets:.1%})")
    t0 = time.perf_counter()
    res = train(cfg, [normalizer.apply(ws) for ws in sets], out, normalizer=normalizer, progress=progress, info=info,
                continuation=continuation)
    dt = time.perf_counter() - t0
    h = res.history
    if h:
        k = max(1, min(50, len(h) // 5))
        first = sum(r["total"] for r in h[:k]) / k
        last = sum(r["total"] for r in h[-k:]) / k
        print(f"steps {res.start_step} -> {res.end_step} in {dt:.0f} s ({len(h) / max(dt, 1e-9):.2f} steps/s); "
              f"loss {first:.4f} -> {last:.4f} (mean of {k} steps)")
    else:
        print(f"already trained to step {res.end_step}; raise --steps to continue")
    print(f"checkpoint: {res.checkpoint}")
    if task:
        print(f"next: nnit generate --task {task} --checkpoint {res.checkpoint} --arch 32,16,64,32 --evaluate")


# ============================================================================ nnit generate
def _heatmap(sets: list, path: Path, per_set: int = 4) -> Path:
    """|W| of every layer (columns) for the first few networks (rows) of each weight set."""
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


def _merge(results: list, label: str):
    """One EvalResult over networks of several architectures (for the joint top-k)."""
    import numpy as np

    from nnit.eval.harness import EvalResult

    first = results[0]
    metrics = {k: np.concatenate([r.metrics[k] for r in results]) for k in first.metrics}
    per_ep = {k: np.concatenate([r.per_episode[k] for r in results]) for k in first.per_episode}
    return EvalResult(first.task, first.kind, {"hidden": [], "label": label}, metrics, per_ep, first.seeds, {"merged": len(results)})


def _load_generator(ckpt: Path, ema: bool):
    """NNiT's sampler or a baseline's, by the checkpoint's kind (same conditional(...) interface)."""
    from nnit.baselines.train import METHODS, BaselineSampler
    from nnit.checkpoint import checkpoint_kind
    from nnit.diffusion.sample import NNiTSampler

    if checkpoint_kind(ckpt) in METHODS:  # header only: the chosen reader loads the tensors once
        return BaselineSampler.from_checkpoint(ckpt, use_ema=ema)
    return NNiTSampler.from_checkpoint(ckpt, use_ema=ema)


def _num_timesteps(s) -> int:
    d = getattr(s, "diffusion", None)
    return d.num_timesteps if d is not None else getattr(s, "num_timesteps", 1000)


def generate_command(
    task: str,
    arch: str | None = None,
    num: int | None = None,
    preset: PresetName = "cpu",
    checkpoint: Path | None = None,
    out: Path | None = None,
    sampler: Literal["ddim", "ancestral"] = "ancestral",
    steps: int | None = None,
    temperature: float | None = None,
    depth: int = 4,
    seed: int = 0,
    evaluate: bool = False,
    episodes: int | None = None,
    top_k: int | None = None,
    eval_seed: int | None = None,
    workers: int | None = None,
    data_dir: Path | None = None,
    video: bool = False,
    ema: bool = True,
    threads: int | None = None,
    progress: bool = True,
) -> None:
    """Sample networks from a trained NNiT (p(w|a) with --arch, else joint p(a,w)) or baseline, export and evaluate them.

    Writes OUT/networks.safetensors (all N networks of one architecture; joint mode: one
    networks_h<widths>.safetensors per sampled architecture), OUT/README.md (how to load one as an
    nn.Sequential), OUT/heatmap.png (|W| per layer of a few networks) and OUT/results.json. With
    --evaluate it runs the harness and prints the paper's top-k table; --video renders the best
    network's rollout (robot tasks).

    Example: nnit generate --task PushCube-v1 --arch 32,16,64,32 --num 100 --evaluate

    Example: nnit generate --task PushCube-v1 --num 100 --evaluate   (joint mode: architectures sampled too)

    Example: nnit generate --task FashionMNIST --preset tiny --arch 64,32,16,64 --num 8 --sampler ancestral --steps 100

    Args:
        task: PickCube-v1, PushCube-v1, StackCubeEasy-v1, FashionMNIST or MNIST (must match the checkpoint).
        arch: Hidden widths, e.g. 32,16,64,32 (conditional p(w|a)); omitted = joint p(a,w).
        num: Networks to sample (default: the preset's, 100 at cpu/paper).
        preset: tiny / cpu / paper: default checkpoint path and evaluation episodes / top-k.
        checkpoint: NNiT (or D2NWG / SANE baseline) checkpoint file or run directory (default runs/<preset>/<task>/nnit/checkpoint.safetensors).
        out: Output directory (default: beside the checkpoint, in ../generated/<h-widths or joint>; baselines ../generated/<method>_<h-widths>).
        sampler: ancestral (the paper's, learned variance; the default: measured better than DDIM at every step count) or ddim.
        steps: Denoising steps (default: 1000 = T for ancestral, 50 for ddim; fewer = faster, worse: see README).
        temperature: NNiT's sampling temperature, the scale of each weight step's fresh noise (default: the preset's, 0.5 at tiny/cpu, measured better than 1 on every task; 1 = the model's distribution, the paper's). Baselines sample at 1.
        depth: Hidden layers of the sampled architectures in joint mode.
        seed: Sampling seed.
        evaluate: Evaluate every network and print the top-k table.
        episodes: Episodes per network (robot tasks); default from the preset.
        top_k: Networks kept by the top-k protocol; default from the preset.
        eval_seed: Seed of episode 0; default from the preset.
        workers: Simulator worker processes (default: one per core).
        data_dir: IDX folder for image tasks.
        video: Render one episode of the best network to OUT/best.mp4 (robot tasks).
        ema: Sample with the EMA weights (else the raw training weights).
        threads: torch CPU threads (default: torch's choice).
        progress: Show progress bars.
    """
    import torch

    from nnit.checkpoint import DEFAULT_NAME, CheckpointError, resolve_path
    from nnit.config import EVAL
    from nnit.diffusion.model import ModelError
    from nnit.tasks.registry import get_task
    from nnit.weights.architecture import Architecture, ArchitectureError
    from nnit.weights.tokenize import GridError

    if threads:
        torch.set_num_threads(threads)
    spec = get_task(task)
    ckpt = resolve_path(checkpoint) if checkpoint is not None else Path("runs") / preset / spec.name / "nnit" / DEFAULT_NAME
    if not ckpt.exists():
        raise GenerateError(f"no NNiT checkpoint at {ckpt}; train one with 'nnit train --dataset runs/{preset}/{spec.name}/dataset "
                            f"--preset {preset}' (after train-ghn and build-dataset) or pass --checkpoint PATH")
    try:
        s = _load_generator(ckpt, ema)
    except CheckpointError as err:
        raise GenerateError(str(err)) from None
    label = getattr(s, "label", "NNiT")
    if arch is None and label != "NNiT":
        raise GenerateError(f"{label} has no joint mode p(a, w); pass --arch")
    trained_on = s.data.get("task")
    if trained_on is not None and trained_on.lower() != spec.name.lower():
        raise GenerateError(f"checkpoint {ckpt} was trained on {trained_on}, not {spec.name}")
    control_mode = s.data.get("control_mode")
    if spec.kind == "robot" and control_mode is None:
        from nnit.experts.teachers import get_teacher

        control_mode = get_teacher(spec.name).spec.control_mode
    spec = get_task(spec.name, control_mode=control_mode)
    in_dim, out_dim = s.data.get("input_dim"), s.data.get("output_dim")
    if (in_dim, out_dim) != (None, None) and (in_dim, out_dim) != (spec.input_dim, spec.output_dim):
        raise GenerateError(f"checkpoint {ckpt} makes {in_dim} -> {out_dim} networks but {spec.name} needs "
                            f"{spec.input_dim} -> {spec.output_dim}")
    ecfg = EVAL[preset]
    num = ecfg.num_networks if num is None else num
    episodes = ecfg.episodes if episodes is None else episodes
    top_k = ecfg.top_k if top_k is None else top_k
    eval_seed = ecfg.base_seed if eval_seed is None else eval_seed
    steps = (50 if sampler == "ddim" else _num_timesteps(s)) if steps is None else steps
    if num < 1 or steps < 1:
        raise GenerateError(f"--num and --steps must be >= 1 (got {num}, {steps})")
    if temperature is not None and not temperature >= 0:
        raise GenerateError(f"--temperature must be >= 0 (got {temperature})")
    if label != "NNiT" and temperature not in (None, 1.0):
        raise GenerateError(f"--temperature applies to NNiT's sampler only, not to the {label} baseline")
    extra = {"temperature": ecfg.temperature if temperature is None else temperature} if label == "NNiT" else {}
    activation = s.data.get("activation") or "tanh"

    # ------------------------------------------------------------------ sample + assemble
    joint = None
    t0 = time.perf_counter()
    if arch is not None:
        a = Architecture.parse(arch, spec.input_dim, spec.output_dim, activation)
        try:
            ws = s.conditional(a, num=num, method=sampler, steps=steps, seed=seed, progress=progress, **extra)
        except (GridError, ModelError, ArchitectureError) as err:
            raise GenerateError(f"architecture [{a.hidden_str()}] is not expressible by {ckpt}: {err}") from None
        sets = {a.hidden: ws}
    else:
        try:
            joint = s.joint(num=num, depth=depth, input_dim=spec.input_dim, output_dim=spec.output_dim,
                            activation=activation, method=sampler, steps=steps, seed=seed, progress=progress, **extra)
        except (GridError, ModelError, ArchitectureError) as err:
            raise GenerateError(f"joint sampling of depth {depth} is not expressible by {ckpt}: {err}") from None
        sets = dict(joint.weights)
    sample_s = time.perf_counter() - t0
    mode = "conditional" if joint is None else "joint"
    if getattr(s, "kind", None) == "sane":  # no diffusion: --sampler / --steps do not apply
        sampler, steps, how = "sane-anchors", 0, "SANE anchor sampling"
    else:
        how = f"{sampler}, {steps} steps" + (f", temperature {extra['temperature']:g}" if extra else "")
    print(f"{mode} sampling: {num} networks ({how}) sampled and assembled in {sample_s:.2f} s")

    # ------------------------------------------------------------------ export
    out = Path(out) if out is not None else ckpt.parent.parent / "generated" / (
        ("" if label == "NNiT" else f"{label.lower()}_") + (hidden_label(next(iter(sets))) if joint is None else f"joint_d{depth}"))
    out.mkdir(parents=True, exist_ok=True)
    provenance = {"task": spec.name, "checkpoint": str(ckpt), "sampler": sampler, "steps": steps, "seed": seed, "mode": mode,
                  **extra}
    files = {}
    for h, ws in sets.items():
        name = "networks.safetensors" if joint is None else f"networks_{hidden_label(h)}.safetensors"
        files[hidden_label(h)] = str(ws.save(out / name, extra_metadata=provenance))
    first = next(iter(files.values()))
    (out / "README.md").write_text(LOADING_NOTE.format(file=first, act=activation.capitalize(), inp=spec.input_dim,
                                                       out=spec.output_dim, task=spec.name))
    heat = _heatmap(sorted(sets.values(), key=lambda w: -w.n)[:2], out / "heatmap.png")
    results: dict = {**provenance, "num": num, "sample_seconds": sample_s, "files": files, "heatmap": str(heat),
                     "architectures": {hidden_label(h): {"hidden": list(h), "num": ws.n} for h, ws in sets.items()}}
    if joint is not None:
        summ = joint.summary()
        results["joint"] = summ
        train_archs = {tuple(h) for h in s.data.get("train_archs", [])}
        print(f"joint: {summ['valid']}/{num} sampled architectures valid, {summ['novel']}/{num} novel "
              f"(not among the {len(train_archs)} train architectures), {summ['distinct_archs']} distinct")
    print(f"wrote {len(files)} weight file(s) to {out} (load: WeightSet.load(f).to_sequential(i); see {out / 'README.md'})")

    # ------------------------------------------------------------------ evaluate
    best = None
    if evaluate:
        from nnit.eval.harness import evaluate as run_eval
        from nnit.eval.protocol import protocol_table, top_k as top_k_fn

        evals, rows = {}, []
        for h, ws in sets.items():
            r = run_eval(spec, ws, episodes=episodes, base_seed=eval_seed, num_workers=workers,
                         data_dir=None if data_dir is None else str(data_dir), progress=progress)
            r.info.update(provenance)
            evals[h] = r
            summary = top_k_fn(r, top_k, label=f"{label} [{','.join(map(str, h))}]")
            rows.append(summary)
            r.save(out / f"eval_{hidden_label(h)}.json", extra={"top_k": summary.to_dict()})
        shown = rows
        if joint is not None:
            joint_row = top_k_fn(_merge(list(evals.values()), "joint"), top_k, label=f"NNiT joint d{depth}")
            results["joint_top_k"] = joint_row.to_dict()  # its indices count the networks in this order:
            results["joint_networks"] = [[hidden_label(h), i] for h, ws in evals.items() for i in range(ws.n)]
            shown = (rows if len(rows) <= 8 else []) + [joint_row]  # per-architecture rows stay in eval_*.json
        results["top_k"] = [r.to_dict() for r in rows]
        results["episodes"], results["eval_seed"] = episodes, eval_seed
        print()
        print(protocol_table(shown))
        # the best network overall, for the video
        h_best, r_best = max(evals.items(), key=lambda kv: float(kv[1].metrics[kv[1].primary].max()))
        best = (h_best, int(r_best.metrics[r_best.primary].argmax()))
    if video:
        if spec.kind != "robot":
            print("--video: skipped (videos are for robot tasks)")
        else:
            from nnit.eval.harness import record_video

            h_v, i_v = best if best is not None else (next(iter(sets)), 0)
            info = record_video(spec, sets[h_v], out / "best.mp4", network=i_v, seed=eval_seed)
            results["video"] = {**info, "hidden": list(h_v), "chosen": "best mean return" if best else "network 0 (no --evaluate)"}
            print(f"video: {info['path']} (network {i_v} of [{','.join(map(str, h_v))}], return {info['return']:.2f})")
    atomic_write_json(out / "results.json", results)
    print(f"wrote {out / 'results.json'}")
