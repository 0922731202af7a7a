"""``nnit eval``: evaluate a file of weights (or N random networks) on a task, with the top-k protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from nnit.config import EVAL, PresetName


def eval_command(
    task: str,
    weights: Path | None = None,
    random: int = 0,
    arch: str = "32,16,64,32",
    activation: Literal["tanh", "relu", "gelu", "silu"] = "tanh",
    init_seed: int = 0,
    preset: PresetName = "cpu",
    episodes: int | None = None,
    top_k: int | None = None,
    seed: int | None = None,
    backend: Literal["auto", "cpu", "cuda"] = "auto",
    workers: int | None = None,
    control_mode: Literal["pd_joint_delta_pos", "pd_ee_delta_pos"] = "pd_joint_delta_pos",
    data_dir: Path | None = None,
    downsample: int | None = None,
    out: Path | None = None,
    video: Path | None = None,
    video_network: int = 0,
    rows: int = 20,
    progress: bool = True,
) -> None:
    """Evaluate N networks on a task: per-network return / success (or accuracy), top-k table, JSON + CSV.

    Robot tasks run every episode for 50 steps with action = clamp(mlp(obs), -1, 1); episode e of
    every network uses seed (seed + e). Results go to --out (default runs/eval/<task>_<arch>.json)
    plus a CSV beside it, written atomically.

    Example: nnit eval --task PushCube-v1 --random 8 --arch 32,16,64,32 --episodes 4

    Example: nnit eval --task PickCube-v1 --weights runs/gen/pickcube.safetensors --video clip.mp4

    Example: nnit eval --task FashionMNIST --random 4 --arch 64,32

    Args:
        task: PickCube-v1, PushCube-v1, StackCubeEasy-v1, FashionMNIST or MNIST.
        weights: A weight-set file (.safetensors from WeightSet.save); exclusive with --random.
        random: Evaluate this many randomly initialized networks of --arch instead of a file.
        arch: Hidden widths of the random networks, e.g. 32,16,64,32 (input/output come from the task).
        activation: Nonlinearity of the random networks.
        init_seed: Seed of the random initialization.
        preset: Scale preset for the defaults of --episodes / --top-k / --seed.
        episodes: Episodes per network (robot tasks); default from the preset.
        top_k: Keep the k best networks in the protocol table; default from the preset.
        seed: Seed of episode 0 (episode e uses seed + e); default from the preset.
        backend: Simulator: auto (cuda when a GPU is visible), cpu (physx_cpu workers) or cuda.
        workers: Worker processes for the CPU backend (default: one per core; 0 = in this process).
        control_mode: ManiSkill controller (sets the action size: 8 or 4).
        data_dir: Folder with the IDX files (image tasks; FashionMNIST defaults to the Debian package).
        downsample: Image average-pooling factor (default 4: 28x28 -> 7x7).
        out: Where to write the JSON results (a .csv is written beside it).
        video: Also render one episode of --video-network to this .mp4 / .gif (robot tasks).
        video_network: Which network the video shows.
        rows: How many per-network rows to print.
        progress: Show a progress bar.
    """
    import json

    import torch

    from nnit.eval.harness import evaluate, record_video
    from nnit.eval.protocol import protocol_table, results_table, top_k as top_k_fn
    from nnit.tasks.registry import get_task
    from nnit.weights.architecture import Architecture
    from nnit.weights.mlp import WeightSet

    cfg = EVAL[preset]
    spec = get_task(task, control_mode=control_mode, downsample=downsample)
    episodes = cfg.episodes if episodes is None else episodes
    top_k = cfg.top_k if top_k is None else top_k
    seed = cfg.base_seed if seed is None else seed
    if (weights is None) == (random <= 0):
        raise ValueError("give exactly one of --weights FILE or --random N")
    if weights is not None:
        ws = WeightSet.load(weights)
        source = str(weights)
    else:
        a = Architecture.parse(arch, spec.input_dim, spec.output_dim, activation)
        ws = WeightSet.init_random(a, random, generator=torch.Generator().manual_seed(init_seed))
        source = f"random init (nn.Linear default), seed {init_seed}"
    result = evaluate(
        spec, ws, episodes=episodes, base_seed=seed, backend=backend, num_workers=workers,
        data_dir=None if data_dir is None else str(data_dir), progress=progress,
    )
    result.info["weights"] = source
    summary = top_k_fn(result, top_k)
    extra: dict = {"top_k": summary.to_dict()}
    if video is not None:
        extra["video"] = record_video(spec, ws, video, network=video_network, seed=seed)
    if out is None:
        out = Path("runs/eval") / f"{spec.name}_{ws.arch.hidden_str().replace(',', '-')}.json"
    json_path, csv_path = result.save(out, extra=extra)

    print(f"{spec.name}: {ws.n} networks {ws.arch}" + (f", {episodes} episodes each, seeds {seed}..{seed + episodes - 1}" if result.kind == "robot" else ""))
    print(results_table(result, limit=rows))
    print()
    print(protocol_table([summary]))
    if "video" in extra:
        print(f"video: {json.dumps(extra['video'])}")
    print(f"wrote {json_path} and {csv_path}")
