"""Train an ensemble of K GHNs: DAgger distillation of a teacher (robot tasks) or supervised
cross-entropy (image tasks). Paper Sec. 4 and Appendix A, Table 5.

One *iteration* = (robot tasks) collect ``episodes_per_iteration`` beta-mixed rollouts, label every
visited state with the teacher, append to the FIFO buffer; then ``updates_per_iteration`` gradient
steps. A gradient step samples a meta-batch of architectures of the split (``GHNTrainConfig.split``: the paper's
depth-4 space or the ``varied`` widths-and-depths space; a meta-batch may mix depths, the GHN runs one chain
propagation per depth), lets every member generate weights for each of them, runs the generated students (batched MLP) on states drawn independently per
member, and regresses their actions onto the teacher's (MSE) — or their logits onto the labels
(cross-entropy) for image tasks. The loss is summed over members (each member's gradient is its own)
and averaged over the meta-batch.

The ensemble trains on the CPU or, with ``device="cuda"`` (``nnit train-ghn --device cuda``), on a GPU; the DAgger
rollouts run in ``physx_cpu`` worker processes either way, and the teacher labels and the buffer stay on the CPU
(each update's sampled states are moved to the device).

The ensemble is cheap on 2 cores because (i) all K members run as one stacked module
(:mod:`nnit.ghn.model`), (ii) rollouts are shared: a rollout episode is driven by one randomly
chosen (member, architecture) student, and its teacher-labelled states feed every member's buffer.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from nnit.checkpoint import load_checkpoint, restore
from nnit.errors import NNiTError
from nnit.ghn.dagger import StateBuffer, beta_at, clip_grad_norm_per_member
from nnit.ghn.model import GHNConfig, GHNEnsemble
from nnit.tasks.registry import ImageTaskSpec, RobotTaskSpec, TaskSpec, get_task
from nnit.training import LoopConfig, Trainer, cosine_lr
from nnit.weights.architecture import Architecture, SplitName, get_split


@dataclass(frozen=True)
class GHNTrainConfig:
    """Hyper-parameters of one GHN-ensemble training run."""

    ensemble_size: int = 16
    """K: number of independently seeded GHNs (paper: 128)."""
    seed: int = 0
    """Member i is initialised from seed ``seed * 100003 + i``; also seeds sampling."""
    iterations: int = 100
    """DAgger iterations (paper: 500; 1500 for StackCubeEasy). For image tasks: outer loops."""
    updates_per_iteration: int = 4
    """Gradient steps per iteration."""
    meta_batch: int = 4
    """Architectures per gradient step (paper: 8; 16 for StackCubeEasy)."""
    batch_size: int = 128
    """States (or images) per member per gradient step."""
    lr_start: float = 1e-3
    """Learning rate at the first step (paper: 1e-3)."""
    lr_end: float = 7e-4
    """Learning rate at the last step, cosine decay (paper: 7e-4)."""
    grad_clip: float = 1.0
    """Per-member gradient-norm clip."""
    beta0: float = 1.0
    """DAgger: probability of executing the teacher's action at iteration 0."""
    beta_decay: float = 0.97
    """DAgger: beta *= beta_decay every iteration (paper: 0.97; 0.98 for StackCubeEasy)."""
    buffer_size: int = 200_000
    """DAgger FIFO buffer capacity in states (paper: 1,000,000)."""
    episodes_per_iteration: int = 2
    """DAgger rollout episodes collected per iteration."""
    architectures: Literal["all", "train"] = "all"
    """Which architectures of the split the GHNs train on: every listed one (the paper's split: the whole
    81-architecture space; the GHN is the data generator, held-out means unseen by NNiT) or only NNiT's train
    architectures."""
    split: SplitName = "paper"
    """The architecture split (``nnit.weights.architecture.get_split``) whose architectures the meta-batches are
    drawn from: ``paper`` (depth 4, widths {16, 32, 64}) or ``varied`` (widths 8..64, depths 2..6)."""
    checkpoint_every: int = 10
    """Iterations between checkpoints."""
    ghn: GHNConfig = field(default_factory=GHNConfig)
    """Shape of each GHN."""

    def member_seeds(self) -> list[int]:
        return [self.seed * 100003 + i for i in range(self.ensemble_size)]


GHN_PRESETS: dict[str, GHNTrainConfig] = {
    "tiny": GHNTrainConfig(
        ensemble_size=2, iterations=3, updates_per_iteration=2, meta_batch=2, batch_size=32,
        buffer_size=5_000, episodes_per_iteration=1, checkpoint_every=1,
        ghn=GHNConfig(hidden_dim=16, decoder_channels=4),
    ),
    # cpu: sized from measurements on 2 cores (docs/studies/preset-choices.md)
    "cpu": GHNTrainConfig(
        ensemble_size=16, iterations=100, updates_per_iteration=32, meta_batch=4, batch_size=256,
        buffer_size=200_000, episodes_per_iteration=4, checkpoint_every=5,
        ghn=GHNConfig(hidden_dim=64, decoder_channels=16),
    ),
    "paper": GHNTrainConfig(
        ensemble_size=128, iterations=500, updates_per_iteration=8, meta_batch=8, batch_size=256,
        buffer_size=1_000_000, episodes_per_iteration=16, checkpoint_every=10,
        ghn=GHNConfig(hidden_dim=64, decoder_channels=16),
    ),
}


CPU_ITERATIONS = {"PickCube-v1": 600, "StackCubeEasy-v1": 1000}
"""DAgger iterations of the ``cpu`` preset for the tasks where 100 are not enough: the grasping tasks' students keep
improving long after PushCube-v1's plateau; StackCubeEasy-v1 gets the most, as in the paper
(docs/studies/preset-choices.md)."""


def ghn_config(preset: str, task: str) -> GHNTrainConfig:
    """The preset's config with the per-task changes: the paper's (StackCubeEasy: longer, larger meta-batch) and,
    for ``cpu``, more iterations for the grasping tasks (:data:`CPU_ITERATIONS`)."""
    if preset not in GHN_PRESETS:
        raise NNiTError(f"unknown preset {preset!r}; choose one of {', '.join(GHN_PRESETS)}")
    cfg = GHN_PRESETS[preset]
    if preset == "cpu" and task in CPU_ITERATIONS:
        cfg = replace(cfg, iterations=CPU_ITERATIONS[task])
    if task == "StackCubeEasy-v1":
        cfg = replace(cfg, beta_decay=0.98)
        if preset == "paper":
            cfg = replace(cfg, iterations=1500, meta_batch=16)
    return cfg


def config_to_dict(cfg: GHNTrainConfig) -> dict:
    return asdict(cfg)


def config_from_dict(d: dict) -> GHNTrainConfig:
    d = dict(d)
    d["ghn"] = GHNConfig(**d["ghn"])
    return GHNTrainConfig(**d)


def training_architectures(task: TaskSpec, which: str, activation: str = "tanh", split: str = "paper") -> list[Architecture]:
    """The architectures the GHNs are trained on, with the task's in/out dims: ``which="all"``, every architecture
    ``split`` lists, ordered by depth then widths (the paper's split: its 81-tuple search space in lexicographic
    order); ``"train"``, its train architectures."""
    s = get_split(split)
    hidden = s.listed() if which == "all" else list(s.train)
    return [Architecture(task.input_dim, h, task.output_dim, activation) for h in hidden]


# ============================================================================ losses / data
class ImageDistillation:
    """Supervised training data for image tasks: random training images per member."""

    def __init__(self, task: ImageTaskSpec, data_dir: str | None = None, device: torch.device = torch.device("cpu")) -> None:
        from nnit.tasks.images import load_split

        self.task, self.device = task, device
        x, y = load_split(task, "fit", data_dir=data_dir)  # the val split is kept for dataset filtering
        self.x, self.y = x.float(), y.long()

    def loss(self, nets: Sequence, k: int, batch: int, g: torch.Generator) -> torch.Tensor:
        """(K,) mean cross-entropy of each member over the meta-batch."""
        idx = torch.randint(0, self.x.shape[0], (k, batch), generator=g)
        x, y = self.x[idx].to(self.device), self.y[idx].to(self.device)  # (K, B, in), (K, B)
        total = 0.0
        for ws in nets:
            logits = ws(x)  # (K, B, classes)
            total = total + F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").reshape(k, -1).mean(1)
        return total / len(nets)


class DaggerDistillation:
    """Teacher-labelled states for robot tasks, gathered by beta-mixed rollouts.

    The teacher is the task's scripted one, or with ``teacher_checkpoint`` the PPO expert saved
    there (checkpoint file or run directory of ``nnit train-expert``). The buffer stays on the CPU; the states
    of each update move to ``device``, the ensemble's."""

    def __init__(self, task: RobotTaskSpec, cfg: GHNTrainConfig, num_workers: int | None = None,
                 teacher_checkpoint: str | None = None, device: torch.device = torch.device("cpu")) -> None:
        from nnit.experts.teachers import get_teacher
        from nnit.ghn.collect import DaggerCollector

        self.task = task
        self.teacher_checkpoint = None if teacher_checkpoint is None else str(teacher_checkpoint)
        self.teacher = get_teacher(task.name, checkpoint=self.teacher_checkpoint)
        if self.teacher.spec.control_mode != task.control_mode:
            raise NNiTError(
                f"the {task.name} teacher acts in {self.teacher.spec.control_mode} but the task is set to "
                f"{task.control_mode}; pass the teacher's control mode"
            )
        self.buffer = StateBuffer(cfg.buffer_size, task.obs_dim, task.action_dim)
        self.collector = DaggerCollector(task, num_workers=num_workers)
        self.cfg, self.device = cfg, device
        self.last_rollout: dict = {}

    def close(self) -> None:
        self.collector.close()

    def collect(self, students, iteration: int, seed_base: int) -> None:
        """Run ``episodes_per_iteration`` beta-mixed episodes and add the labelled states."""
        beta = beta_at(iteration, self.cfg.beta0, self.cfg.beta_decay)
        seeds = [seed_base + j for j in range(len(students))]
        obs_list, stats = self.collector.collect(students, seeds, beta=beta, mix_seed=seed_base,
                                                 teacher_checkpoint=self.teacher_checkpoint)
        obs = torch.as_tensor(np.concatenate(obs_list), dtype=torch.float32)
        with torch.no_grad():
            act = self.teacher(obs)
        self.buffer.add(obs, act)
        self.last_rollout = {"beta": beta, **stats}

    def loss(self, nets: Sequence, k: int, batch: int, g: torch.Generator) -> torch.Tensor:
        """(K,) mean action MSE of each member over the meta-batch."""
        obs, act = self.buffer.sample((k, batch), generator=g)  # (K, B, obs), (K, B, act)
        obs, act = obs.to(self.device), act.to(self.device)
        total = 0.0
        for ws in nets:
            pred = ws(obs)  # (K, B, act)
            total = total + (pred - act).pow(2).mean(dim=(1, 2))
        return total / len(nets)


# ============================================================================ trainer
def train_ghn_ensemble(
    task_name: str,
    cfg: GHNTrainConfig,
    out_dir: str | Path,
    num_workers: int | None = None,
    data_dir: str | None = None,
    control_mode: str | None = None,
    progress: bool = True,
    teacher_checkpoint: str | None = None,
    device: str | torch.device = "cpu",
) -> Path:
    """Train (or resume) a GHN ensemble; returns the path of the final checkpoint ``ghn.safetensors``.

    Resumes from ``out_dir/ghn.safetensors`` when it exists (model, optimizer, iteration, DAgger
    buffer and RNG state), so a killed run continues where its last checkpoint left off. Ctrl-C or
    SIGTERM finishes the iteration in progress, checkpoints it and raises
    :class:`~nnit.stopping.TrainingStopped` (:mod:`nnit.stopping`), so a stopped run loses nothing.
    ``teacher_checkpoint`` (robot tasks): DAgger distils the PPO expert saved there instead of the
    scripted teacher; it is stored in the checkpoint, and a resumed run given None keeps the stored one.
    ``device`` (``"cpu"`` or ``"cuda"``): where the ensemble trains; a run may resume on another device. The
    checkpoint's config records the device of the last call (``config["device"]``).
    """
    from nnit.distributed import torch_device

    device = torch_device(device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "ghn.safetensors"
    task = get_task(task_name, control_mode=control_mode)
    archs = training_architectures(task, cfg.architectures, split=cfg.split)
    model = GHNEnsemble(cfg.ghn, cfg.member_seeds()).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr_start)
    g = torch.Generator().manual_seed(cfg.seed)
    ck = load_checkpoint(ckpt_path) if ckpt_path.exists() else None
    if ck is not None:
        saved = config_from_dict(ck.config["train"])
        # a run may be extended (more iterations; the LR schedule stretches to the new length),
        # but every other setting must match the checkpoint's
        if replace(saved, iterations=cfg.iterations, checkpoint_every=cfg.checkpoint_every) != cfg:
            raise NNiTError(f"{ckpt_path} was trained with another config; use a fresh --out directory")
        saved_teacher = ck.config.get("teacher_checkpoint")
        if teacher_checkpoint is None:
            teacher_checkpoint = saved_teacher
        elif saved_teacher is None or Path(saved_teacher).resolve() != Path(teacher_checkpoint).resolve():
            raise NNiTError(f"{ckpt_path} was trained with another teacher ({saved_teacher or 'the scripted one'}); "
                             "use a fresh --out directory")
    total_updates = cfg.iterations * cfg.updates_per_iteration
    trainer = Trainer(
        model, opt, out,
        LoopConfig(total=cfg.iterations, kind="ghn_ensemble", ckpt_every=cfg.checkpoint_every, log_every=1, unit="iteration",
                   checkpoint_name=ckpt_path.name, desc=f"GHN x{cfg.ensemble_size} {task.name}", progress=progress),
        config=_checkpoint_config(cfg, task, teacher_checkpoint, device),
        lr_fn=lambda step: cosine_lr(step, total_updates - 1, cfg.lr_start, cfg.lr_end),  # lr_end at the last update
        generator=g,
        clip_fn=lambda params: clip_grad_norm_per_member(params, cfg.ensemble_size, cfg.grad_clip),
        extra_fn=lambda: _buffer_tensors(source),
    )
    if ck is not None:
        trainer.restore(ck)
    if task.kind == "robot":
        source = DaggerDistillation(task, cfg, num_workers, teacher_checkpoint=teacher_checkpoint, device=device)
    elif teacher_checkpoint is not None:
        raise NNiTError(f"a teacher checkpoint applies to robot tasks; {task.name} is trained on its labels")
    else:
        source = ImageDistillation(task, data_dir, device)
    if ck is not None:
        if isinstance(source, DaggerDistillation) and "buffer.obs" in ck.extra:
            source.buffer.load_state_dict({"obs": ck.extra["buffer.obs"], "act": ck.extra["buffer.act"], "total_added": ck.extra["buffer.total_added"]})
    if trainer.step >= cfg.iterations:
        if isinstance(source, DaggerDistillation):
            source.close()
        return ckpt_path

    def iteration(it: int) -> tuple[dict, dict]:
        t0 = time.perf_counter()
        if isinstance(source, DaggerDistillation):
            # shared rollouts: each episode is driven by one random (member, architecture) student
            with torch.no_grad():
                students = []
                for _ in range(cfg.episodes_per_iteration):
                    a = archs[int(torch.randint(len(archs), (1,), generator=g))]
                    m = int(torch.randint(cfg.ensemble_size, (1,), generator=g))
                    students.append(model.generate([a])[0][m])
            source.collect(students, it, seed_base=10_000 + it * 1000 + cfg.seed * 7)
        t_roll = time.perf_counter() - t0
        losses = []
        for u in range(cfg.updates_per_iteration):
            pick = torch.randperm(len(archs), generator=g)[: cfg.meta_batch].tolist()
            nets = model.generate([archs[i] for i in pick])
            per_member = source.loss(nets, cfg.ensemble_size, cfg.batch_size, g)  # (K,)
            norms = trainer.optimizer_step(per_member.sum(), it * cfg.updates_per_iteration + u)
            losses.append(per_member.detach())
        loss = torch.stack(losses).mean(0)  # (K,)
        stats = {"grad_norm_mean": float(norms.mean()), "lr": trainer.lr, "rollout_s": round(t_roll, 3),
                 "update_s": round(time.perf_counter() - t0 - t_roll, 3)}
        if isinstance(source, DaggerDistillation):
            stats.update({"beta": source.last_rollout["beta"], "buffer": len(source.buffer),
                          "rollout_success": source.last_rollout.get("success_rate")})
        return {"loss_mean": loss.mean(), "loss_min": loss.min(), "loss_max": loss.max()}, stats

    try:
        trainer.run(iteration)
    finally:
        if isinstance(source, DaggerDistillation):
            source.close()
    return ckpt_path


def _buffer_tensors(source) -> dict[str, torch.Tensor]:
    """The DAgger buffer as checkpoint extras (nothing for image tasks)."""
    if not isinstance(source, DaggerDistillation):
        return {}
    b = source.buffer.state_dict()
    return {"buffer.obs": b["obs"], "buffer.act": b["act"], "buffer.total_added": b["total_added"]}


def _checkpoint_config(cfg: GHNTrainConfig, task: TaskSpec, teacher_checkpoint: str | None, device: torch.device) -> dict:
    return {"train": config_to_dict(cfg), "task": task.name, "input_dim": task.input_dim, "output_dim": task.output_dim,
            "control_mode": getattr(task, "control_mode", None),
            "teacher_checkpoint": None if teacher_checkpoint is None else str(teacher_checkpoint), "device": device.type}


def saved_teacher_checkpoint(out_dir: str | Path) -> str | None:
    """The PPO teacher checkpoint stored in ``out_dir/ghn.safetensors`` (None: none stored or no run there)."""
    path = Path(out_dir) / "ghn.safetensors"
    return load_checkpoint(path).config.get("teacher_checkpoint") if path.exists() else None


def load_ghn_ensemble(path: str | Path) -> tuple[GHNEnsemble, dict]:
    """The trained ensemble and its checkpoint config (task, dims, training config)."""
    ck = load_checkpoint(path)
    cfg = config_from_dict(ck.config["train"])
    model = GHNEnsemble(cfg.ghn, cfg.member_seeds())
    restore(ck, model)
    model.eval()
    return model, ck.config
