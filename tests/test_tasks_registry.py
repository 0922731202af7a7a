"""Task registry: names, dims, control modes, fit checks (fast, no simulator)."""

import pytest

from nnit.tasks.registry import (
    ImageTaskSpec,
    RobotTaskSpec,
    TaskError,
    check_fits,
    get_task,
    resolve_sim_backend,
    task_names,
)
from nnit.weights import Architecture


def test_names_and_dims():
    assert task_names() == ("PickCube-v1", "PushCube-v1", "StackCubeEasy-v1", "FashionMNIST", "MNIST")
    dims = {n: (get_task(n).input_dim, get_task(n).output_dim) for n in task_names()}
    assert dims["PickCube-v1"] == (42, 8) and dims["PushCube-v1"] == (35, 8) and dims["StackCubeEasy-v1"] == (48, 8)
    assert dims["FashionMNIST"] == (49, 10)
    assert isinstance(get_task("pushcube-v1"), RobotTaskSpec)  # case-insensitive
    assert isinstance(get_task("FashionMNIST"), ImageTaskSpec)


def test_unknown_task_lists_valid_names():
    with pytest.raises(TaskError, match="unknown task 'Nope'.*PickCube-v1.*FashionMNIST"):
        get_task("Nope")


def test_control_mode_and_downsample():
    assert get_task("PickCube-v1", control_mode="pd_ee_delta_pos").action_dim == 4
    with pytest.raises(TaskError, match="control mode"):
        get_task("PickCube-v1", control_mode="pd_nope")  # type: ignore[arg-type]
    assert get_task("FashionMNIST", downsample=1).input_dim == 784
    assert get_task("FashionMNIST", downsample=2).input_dim == 196
    with pytest.raises(TaskError, match="divide 28"):
        get_task("FashionMNIST", downsample=3)


def test_check_fits_names_the_mismatch():
    task = get_task("PushCube-v1")
    check_fits(task, Architecture(35, (16,), 8))
    with pytest.raises(TaskError, match=r"input dim 42 != the task's 35"):
        check_fits(task, Architecture(42, (16,), 8))
    with pytest.raises(TaskError, match=r"output dim 4 != the task's 8"):
        check_fits(task, Architecture(35, (16,), 4))


def test_resolve_backend():
    assert resolve_sim_backend("cpu") == "physx_cpu"
    assert resolve_sim_backend("cuda") == "physx_cuda"
    assert resolve_sim_backend("auto") in ("physx_cpu", "physx_cuda")
    with pytest.raises(ValueError, match="unknown simulation backend"):
        resolve_sim_backend("tpu")  # type: ignore[arg-type]
