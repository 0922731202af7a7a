"""``nnit eval``: evaluate a file of weights (or N random networks) on a task with the top-k protocol; a thin
wrapper over :func:`nnit.api.evaluate`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from nnit.config import EVAL, PresetName
from nnit.errors import NNiTError


@dataclass(frozen=True)
class EvalCommand:
    """Evaluate N networks on a task: per-network return / success (or accuracy), top-k table, JSON + CSV.

    Robot tasks run every episode for 50 steps with action = clamp(mlp(obs), -1, 1); episode e of
    every network uses seed (seed + e). Results go to --out (default runs/eval/<task>_<arch>.json)
    plus a CSV beside it, written atomically. Python: nnit.api.evaluate.

    Example: nnit eval --task PushCube-v1 --random 8 --arch 32,16,64,32 --episodes 4

    Example: nnit eval --task PickCube-v1 --weights runs/gen/pickcube.safetensors --video clip.mp4

    Example: nnit eval --task FashionMNIST --random 4 --arch 64,32

    Example: nnit eval --task PushCube-v1 --weights runs/cpu/PushCube-v1/dataset/shards/h32-16-64-32.safetensors --episodes 10 --report-episodes 50
    """

    task: str
    """PickCube-v1, PushCube-v1, StackCubeEasy-v1, FashionMNIST or MNIST."""
    weights: Optional[Path] = None
    """A weight-set file (.safetensors from WeightSet.save); exclusive with --random."""
    reconstruct_with: Optional[Path] = None
    """A D2NWG checkpoint: evaluate the --weights networks after its VAE encodes and decodes them (D2NWG's sanity
    check: reconstructions that lose the networks' success cap what it can generate)."""
    random: int = 0
    """Evaluate this many randomly initialized networks of --arch instead of a file."""
    arch: str = "32,16,64,32"
    """Hidden widths of the random networks, e.g. 32,16,64,32 (input/output come from the task)."""
    activation: Literal["tanh", "relu", "gelu", "silu"] = "tanh"
    """Nonlinearity of the random networks."""
    init_seed: int = 0
    """Seed of the random initialization."""
    preset: PresetName = "cpu"
    """Scale preset for the defaults of --episodes / --top-k / --seed."""
    episodes: Optional[int] = None
    """Episodes per network (robot tasks); default from the preset."""
    top_k: Optional[int] = None
    """Keep the k best networks in the protocol table; default from the preset."""
    seed: Optional[int] = None
    """Seed of episode 0 (episode e uses seed + e); default from the preset."""
    report_episodes: int = 0
    """Robot tasks: re-evaluate the top-k networks on this many fresh episodes (seeds --report-seed + e) that played
    no part in choosing them, and report those numbers too (0: off)."""
    report_seed: Optional[int] = None
    """Seed of fresh episode 0 (default 5000; must not overlap the ranking episodes' seeds)."""
    backend: Literal["auto", "cpu", "cuda"] = "auto"
    """Simulator: auto (cuda when a GPU is visible), cpu (physx_cpu workers) or cuda."""
    workers: Optional[int] = None
    """Worker processes for the CPU backend (default: one per core; 0 = in this process)."""
    control_mode: Literal["pd_joint_delta_pos", "pd_ee_delta_pos"] = "pd_joint_delta_pos"
    """ManiSkill controller (sets the action size: 8 or 4)."""
    data_dir: Optional[Path] = None
    """Folder with the IDX files (image tasks; FashionMNIST defaults to the Debian package)."""
    downsample: Optional[int] = None
    """Image average-pooling factor (default 4: 28x28 -> 7x7)."""
    out: Optional[Path] = None
    """Where to write the JSON results (a .csv is written beside it)."""
    video: Optional[Path] = None
    """Also render one episode of --video-network to this .mp4 / .gif (robot tasks)."""
    video_network: int = 0
    """Which network the video shows."""
    rows: int = 20
    """How many per-network rows to print."""
    progress: bool = True
    """Show a progress bar."""

    def run(self) -> None:
        import json

        import torch

        from nnit.api import evaluate, report_fields
        from nnit.eval.harness import record_video
        from nnit.eval.protocol import results_table
        from nnit.tasks.registry import get_task
        from nnit.weights.architecture import Architecture
        from nnit.weights.mlp import WeightSet

        cfg = EVAL[self.preset]
        spec = get_task(self.task, control_mode=self.control_mode, downsample=self.downsample)
        episodes = cfg.episodes if self.episodes is None else self.episodes
        seed = cfg.base_seed if self.seed is None else self.seed
        if (self.weights is None) == (self.random <= 0):
            raise NNiTError("give exactly one of --weights FILE or --random N")
        if self.weights is not None:
            ws = WeightSet.load(self.weights)
            source = str(self.weights)
        elif self.reconstruct_with is not None:
            raise NNiTError("--reconstruct-with needs --weights")
        else:
            a = Architecture.parse(self.arch, spec.input_dim, spec.output_dim, self.activation)
            ws = WeightSet.init_random(a, self.random, generator=torch.Generator().manual_seed(self.init_seed))
            source = f"random init (nn.Linear default), seed {self.init_seed}"
        recon_mse = None
        if self.reconstruct_with is not None:
            from nnit.baselines.train import BaselineSampler

            ws, recon_mse = BaselineSampler.from_checkpoint(self.reconstruct_with).reconstruct(ws)
            source += f", encoded and decoded by the VAE of {self.reconstruct_with} (reconstruction MSE {recon_mse:.5f})"
        table = evaluate(spec, ws, episodes, seed, top_k=self.top_k, preset=self.preset, control_mode=self.control_mode,
                         backend=self.backend, workers=self.workers, data_dir=self.data_dir, report_episodes=self.report_episodes,
                         report_seed=self.report_seed, progress=self.progress)
        result, summary = table.results[ws.arch.hidden], table.top_k
        result.info["weights"] = source
        extra: dict = {"top_k": summary.to_dict(), **report_fields(table, ws.arch.hidden)}
        if recon_mse is not None:
            extra.update(recon_mse=recon_mse, reconstructed_by=str(self.reconstruct_with))
        if self.video is not None:
            extra["video"] = record_video(spec, ws, self.video, network=self.video_network, seed=seed)
        out = self.out if self.out is not None else Path("runs/eval") / f"{spec.name}_{ws.arch.hidden_str().replace(',', '-')}.json"
        json_path, csv_path = result.save(out, extra=extra)

        print(f"{spec.name}: {ws.n} networks {ws.arch}" + (f", {episodes} episodes each, seeds {seed}..{seed + episodes - 1}" if result.kind == "robot" else ""))
        print(results_table(result, limit=self.rows))
        print()
        print(table.table())
        if "video" in extra:
            print(f"video: {json.dumps(extra['video'])}")
        print(f"wrote {json_path} and {csv_path}")
