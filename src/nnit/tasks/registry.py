"""The typed task registry: every task nnit can evaluate, robot and image, by name.

A task spec says what a policy / classifier MLP must look like for that task (``input_dim`` ->
``output_dim``) and how the harness runs it (``kind``). Specs are plain frozen dataclasses and
this module imports nothing heavy: the simulator lives in :mod:`nnit.tasks.maniskill` and the
image data in :mod:`nnit.tasks.images`, both imported only when a task is actually run.

>>> get_task("PushCube-v1").obs_dim
35
>>> get_task("FashionMNIST").input_dim   # 28x28 images average-pooled 4x4 -> 7x7
49
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, Union

from nnit.errors import NNiTError

ControlMode = Literal["pd_joint_delta_pos", "pd_ee_delta_pos"]
SimBackend = Literal["physx_cpu", "physx_cuda"]

EPISODE_STEPS = 50
"""Control steps per robot episode (ManiSkill's default for these tasks and the paper's protocol)."""

ACTION_DIMS: dict[str, int] = {"pd_joint_delta_pos": 8, "pd_ee_delta_pos": 4}
"""Panda action size per control mode (7 joints or 3 end-effector axes, + 1 gripper)."""

IMAGE_SIDE = 28
"""Side of an MNIST / Fashion-MNIST image."""
DEFAULT_DOWNSAMPLE = 4
"""Default average-pooling factor for image tasks: 28x28 -> 7x7 = 49 inputs. The token grid of the
weight generators holds layers up to M = 64 wide (the tokenizer's M), so the first layer's fan-in
must be <= 64; 7x7 is the largest exact pooling of 28x28 that fits. Set 1 for full 784-pixel inputs."""


def resolve_sim_backend(backend: Literal["auto", "cpu", "cuda", "physx_cpu", "physx_cuda"] = "auto") -> SimBackend:
    """``auto`` -> ``physx_cuda`` when torch sees a CUDA device, else ``physx_cpu``."""
    if backend == "auto":
        import torch

        return "physx_cuda" if torch.cuda.is_available() else "physx_cpu"
    table = {"cpu": "physx_cpu", "cuda": "physx_cuda", "physx_cpu": "physx_cpu", "physx_cuda": "physx_cuda"}
    if backend not in table:
        raise NNiTError(f"unknown simulation backend {backend!r}; choose one of auto, {', '.join(table)}")
    return table[backend]  # type: ignore[return-value]


class TaskError(NNiTError):
    """An unknown task, or weights that do not fit a task."""


@dataclass(frozen=True)
class RobotTaskSpec:
    """A ManiSkill3 manipulation task with state observations."""

    name: str
    """The registered ManiSkill environment id (e.g. ``PushCube-v1``)."""
    obs_dim: int
    """State observation size with ``pd_joint_delta_pos`` (checked against the environment in tests)."""
    action_dim: int
    """Action size for ``control_mode``; actions live in [-1, 1]."""
    success_threshold: float
    """The paper's dataset filter on success rate (0.9 / 0.9 / 0.8)."""
    return_threshold: float
    """The paper's dataset filter on mean return (35 / 35 / 30)."""
    control_mode: ControlMode = "pd_joint_delta_pos"
    """ManiSkill controller: ``pd_joint_delta_pos`` (8-d action, ManiSkill's PPO baseline) or ``pd_ee_delta_pos`` (4-d)."""
    episode_steps: int = EPISODE_STEPS
    """Control steps per episode; every evaluation episode runs all of them (terminations ignored)."""
    kind: Literal["robot"] = "robot"
    """Task family: the harness dispatches on it."""
    default_control_mode: ControlMode = "pd_ee_delta_pos"
    """The controller the pipeline's networks use for this task when no checkpoint, dataset or option
    names one (the scripted teachers act in it, so the GHN students, the dataset and the generators
    do too). ``get_task(name)`` keeps ``control_mode`` at ``pd_joint_delta_pos``; use
    :func:`default_control_mode` / :meth:`with_default_control_mode` for the pipeline's."""

    def with_control_mode(self, control_mode: ControlMode) -> "RobotTaskSpec":
        """The same task under another controller (the action size follows it)."""
        if control_mode not in ACTION_DIMS:
            raise TaskError(f"unknown control mode {control_mode!r}; choose one of {', '.join(ACTION_DIMS)}")
        return replace(self, control_mode=control_mode, action_dim=ACTION_DIMS[control_mode])

    def with_default_control_mode(self) -> "RobotTaskSpec":
        """The same task under its :attr:`default_control_mode`."""
        return self.with_control_mode(self.default_control_mode)

    @property
    def input_dim(self) -> int:
        """The policy MLP's input size (= ``obs_dim``)."""
        return self.obs_dim

    @property
    def output_dim(self) -> int:
        """The policy MLP's output size (= ``action_dim``)."""
        return self.action_dim


@dataclass(frozen=True)
class ImageTaskSpec:
    """An MLP classifier on 28x28 grey images in IDX format (MNIST, Fashion-MNIST)."""

    name: str
    """Registry name (``FashionMNIST`` or ``MNIST``)."""
    default_dir: str | None
    """Folder holding the IDX files when the user gives none (None: the user must point at them)."""
    num_classes: int = 10
    """Output size of the classifier (logits)."""
    downsample: int = DEFAULT_DOWNSAMPLE
    """Average-pooling factor applied to each 28x28 image (see ``DEFAULT_DOWNSAMPLE`` for why 4)."""
    kind: Literal["image"] = "image"
    """Task family: the harness dispatches on it."""

    def __post_init__(self) -> None:
        if self.downsample not in (1, 2, 4, 7, 14, 28):
            raise TaskError(f"downsample must divide 28 (1, 2, 4, 7, 14 or 28), got {self.downsample}")

    @property
    def side(self) -> int:
        """Image side after pooling."""
        return IMAGE_SIDE // self.downsample

    @property
    def input_dim(self) -> int:
        """Flattened pooled image size."""
        return self.side * self.side

    @property
    def output_dim(self) -> int:
        return self.num_classes


TaskSpec = Union[RobotTaskSpec, ImageTaskSpec]

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
"""Where Debian's ``dataset-fashion-mnist`` package installs the IDX files."""


def all_tasks() -> tuple[TaskSpec, ...]:
    """Every registered task, robot tasks first (built fresh each call: no module state)."""
    return (
        RobotTaskSpec("PickCube-v1", obs_dim=42, action_dim=8, success_threshold=0.9, return_threshold=35.0),
        RobotTaskSpec("PushCube-v1", obs_dim=35, action_dim=8, success_threshold=0.9, return_threshold=35.0),
        RobotTaskSpec("StackCubeEasy-v1", obs_dim=48, action_dim=8, success_threshold=0.8, return_threshold=30.0),
        ImageTaskSpec("FashionMNIST", default_dir=FASHION_MNIST_DIR),
        ImageTaskSpec("MNIST", default_dir=None),
    )


def task_names() -> tuple[str, ...]:
    """Names accepted by :func:`get_task` and ``nnit eval --task``."""
    return tuple(t.name for t in all_tasks())


def get_task(name: str | TaskSpec, control_mode: ControlMode | None = None, downsample: int | None = None) -> TaskSpec:
    """The spec of task ``name`` (case-insensitive); raises :class:`TaskError` listing the valid names.

    ``control_mode`` applies to robot tasks and ``downsample`` to image tasks; ``None`` keeps the default.
    """
    spec: TaskSpec | None = name if isinstance(name, (RobotTaskSpec, ImageTaskSpec)) else None
    if spec is None:
        by_name = {t.name.lower(): t for t in all_tasks()}
        spec = by_name.get(str(name).lower())
    if spec is not None:
        if isinstance(spec, RobotTaskSpec) and control_mode is not None:
            spec = spec.with_control_mode(control_mode)
        if isinstance(spec, ImageTaskSpec) and downsample is not None:
            spec = replace(spec, downsample=downsample)
        return spec
    raise TaskError(f"unknown task {name!r}; valid tasks: {', '.join(task_names())}")


def task_kind(name: str | TaskSpec) -> Literal["robot", "image"]:
    """``"robot"`` or ``"image"``: the family of task ``name`` (raises :class:`TaskError` for unknown names)."""
    return get_task(name).kind


def is_robot_task(name: str | TaskSpec) -> bool:
    """Whether ``name`` is a ManiSkill robot task (raises :class:`TaskError` for unknown names)."""
    return task_kind(name) == "robot"


def default_control_mode(name: str | TaskSpec) -> ControlMode | None:
    """The controller the pipeline uses for robot task ``name`` (:attr:`RobotTaskSpec.default_control_mode`);
    None for image tasks. Raises :class:`TaskError` for unknown names."""
    spec = get_task(name)
    return spec.default_control_mode if isinstance(spec, RobotTaskSpec) else None


def check_fits(task: TaskSpec, arch) -> None:
    """Raise :class:`TaskError` when an architecture's input/output dims differ from the task's."""
    problems = []
    if arch.input_dim != task.input_dim:
        problems.append(f"input dim {arch.input_dim} != the task's {task.input_dim}")
    if arch.output_dim != task.output_dim:
        problems.append(f"output dim {arch.output_dim} != the task's {task.output_dim}")
    if problems:
        what = "observation" if task.kind == "robot" else "pixel"
        raise TaskError(
            f"weights {arch} do not fit task {task.name} ({task.input_dim} {what}s -> {task.output_dim} outputs): "
            + "; ".join(problems)
        )
