"""Scripted teachers: interface, purity, bounds, phase logic on hand-made states, and (marked
``sim``) the observation layouts and a few real episodes in ManiSkill3."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nnit.experts.teachers import (
    PICK_CUBE_LAYOUT,
    PUSH_CUBE_LAYOUT,
    STACK_CUBE_LAYOUT,
    ObsLayout,
    PickCubeTeacher,
    PushCubeTeacher,
    StackCubeTeacher,
    Teacher,
    TeacherSpec,
    get_teacher,
    teacher_tasks,
)

TASKS = ["PickCube-v1", "PushCube-v1", "StackCubeEasy-v1"]
LAYOUTS = {"PickCube-v1": PICK_CUBE_LAYOUT, "PushCube-v1": PUSH_CUBE_LAYOUT, "StackCubeEasy-v1": STACK_CUBE_LAYOUT}
OPEN_QPOS = [0.0, 0.4, 0.0, -1.9, 0.0, 2.3, 0.8, 0.04, 0.04]  # Panda rest pose, fingers open


def _random_states(task: str, n: int, seed: int = 0) -> torch.Tensor:
    """Plausible random states: positions over the table, unit quaternions, random finger widths."""
    g = torch.Generator().manual_seed(seed)
    layout = LAYOUTS[task]
    obs = torch.randn(n, layout.dim, generator=g) * 0.1
    for name, a, b in layout.fields:
        if name.endswith("_pose"):
            obs[:, a : a + 2] = torch.rand(n, 2, generator=g) * 0.4 - 0.2  # x, y
            obs[:, a + 2] = torch.rand(n, generator=g) * 0.3  # z
            q = torch.randn(n, 4, generator=g)
            obs[:, a + 3 : b] = q / q.norm(dim=-1, keepdim=True)
        elif name == "qpos":
            obs[:, a + 7 : a + 9] = torch.rand(n, 2, generator=g) * 0.04
        elif name == "is_grasped":
            obs[:, a] = (torch.rand(n, generator=g) > 0.5).float()
    return obs


def _state(task: str, **fields: list[float]) -> torch.Tensor:
    """One observation with the named fields set (the rest zero, fingers open)."""
    layout = LAYOUTS[task]
    obs = torch.zeros(1, layout.dim)
    obs[0, :9] = torch.tensor(OPEN_QPOS)
    for name, value in fields.items():
        _, a, b = next(f for f in layout.fields if f[0] == name)
        obs[0, a:b] = torch.tensor(value, dtype=torch.float32)
    return obs


# ---------------------------------------------------------------------- interface


@pytest.mark.parametrize("task", TASKS)
def test_shapes_bounds_and_spec(task):
    teacher = get_teacher(task)
    assert isinstance(teacher, Teacher)
    spec = teacher.spec
    assert spec == TeacherSpec(task, "pd_ee_delta_pos", LAYOUTS[task].dim, 4)
    obs = _random_states(task, 256)
    act = teacher(obs)
    assert act.shape == (256, spec.act_dim) and act.dtype == torch.float32
    assert torch.isfinite(act).all()
    assert act.abs().max() <= 1.0
    single = teacher(obs[0])
    assert single.shape == (spec.act_dim,)


@pytest.mark.parametrize("task", TASKS)
def test_pure_function_of_the_observation(task):
    teacher = get_teacher(task)
    obs = _random_states(task, 64, seed=1)
    first = teacher(obs)
    again = teacher(obs.clone())
    assert torch.equal(first, again)  # no memory between calls
    singles = torch.stack([teacher(o) for o in obs])
    torch.testing.assert_close(first, singles)  # batch of B == B single calls
    shuffled = torch.randperm(64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(teacher(obs[shuffled]), first[shuffled])  # rows do not interact
    teacher(obs).sum()
    assert torch.equal(obs, _random_states(task, 64, seed=1))  # input left untouched


def test_registry_overrides_and_errors():
    assert set(TASKS) <= set(teacher_tasks())
    assert get_teacher("PushCube-v1", push_speed=0.5).push_speed == 0.5
    assert get_teacher("StackCube-v1").spec.task == "StackCube-v1"
    with pytest.raises(KeyError, match="no scripted teacher"):
        get_teacher("OpenCabinetDrawer-v1")
    with pytest.raises(TypeError):
        get_teacher("PickCube-v1", no_such_gain=1.0)
    with pytest.raises(ValueError, match="expected observations"):
        get_teacher("PickCube-v1")(torch.zeros(3, 35))
    with pytest.raises(ValueError, match="does not continue"):
        ObsLayout(dim=4, fields=(("a", 0, 2), ("b", 3, 4)))
    with pytest.raises(KeyError):
        PICK_CUBE_LAYOUT.get(torch.zeros(1, 42), "cubeA_pose")


def test_ppo_style_actor_satisfies_the_protocol():
    class Actor(nn.Module):  # what a PPO expert exposes: spec + deterministic obs -> action
        def __init__(self) -> None:
            super().__init__()
            self.spec = TeacherSpec("PushCube-v1", "pd_joint_delta_pos", 35, 8)
            self.net = nn.Sequential(nn.Linear(35, 8), nn.Tanh())

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            return self.net(obs)

    actor = Actor()
    assert isinstance(actor, Teacher)
    assert actor(torch.zeros(5, 35)).shape == (5, 8)


# ---------------------------------------------------------------------- phase logic


def test_pick_phases():
    t = PickCubeTeacher()
    cube, goal = [0.05, 0.0, 0.02, 1, 0, 0, 0], [0.05, 0.0, 0.25]
    far = t(_state("PickCube-v1", tcp_pose=[-0.1, 0.1, 0.2, 0, 1, 0, 0], obj_pose=cube, goal_pos=goal))[0]
    assert far[3] == 1.0 and far[0] > 0 and far[1] < 0  # open, heading for the cube
    at = t(_state("PickCube-v1", tcp_pose=[0.05, 0.0, 0.022, 0, 1, 0, 0], obj_pose=cube, goal_pos=goal))[0]
    assert at[3] == -1.0 and at[:3].abs().max() < 0.1  # close in place
    held = t(_state("PickCube-v1", is_grasped=[1.0], tcp_pose=[0.05, 0.0, 0.022, 0, 1, 0, 0], obj_pose=cube, goal_pos=goal))[0]
    assert held[3] == -1.0 and held[2] > 0.9  # keep closed, carry up to the goal
    there = t(_state("PickCube-v1", is_grasped=[1.0], tcp_pose=[0.05, 0.0, 0.25, 0, 1, 0, 0], obj_pose=[0.05, 0.0, 0.25, 1, 0, 0, 0], goal_pos=goal))[0]
    assert there[:3].abs().max() < 1e-6  # at the goal: hold still (success needs a static robot)


def test_push_phases():
    t = PushCubeTeacher()
    cube, goal = [0.0, 0.0, 0.02, 1, 0, 0, 0], [0.2, 0.0, 0.001]
    above = t(_state("PushCube-v1", tcp_pose=[0.0, 0.0, 0.2, 0, 1, 0, 0], obj_pose=cube, goal_pos=goal))[0]
    assert above[0] < 0  # first go behind the cube (away from the goal)
    behind = t(_state("PushCube-v1", tcp_pose=[-0.035, 0.0, 0.02, 0, 1, 0, 0], obj_pose=cube, goal_pos=goal))[0]
    assert behind[0] > 0.5 and behind[1].abs() < 1e-6 and behind[3] == -1.0  # push towards the goal
    done = t(_state("PushCube-v1", tcp_pose=[0.165, 0.0, 0.02, 0, 1, 0, 0], obj_pose=[0.19, 0.0, 0.02, 1, 0, 0, 0], goal_pos=goal))[0]
    assert done[:3].abs().max() < 1e-6  # cube on the goal: stop


def test_stack_phases():
    t = StackCubeTeacher()
    a, b = [0.0, -0.1, 0.02, 1, 0, 0, 0], [0.0, 0.1, 0.02, 1, 0, 0, 0]
    reach = t(_state("StackCubeEasy-v1", tcp_pose=[0.0, 0.0, 0.2, 0, 1, 0, 0], cubeA_pose=a, cubeB_pose=b))[0]
    assert reach[1] < 0 and reach[3] == 1.0  # towards A, open
    closed = _state("StackCubeEasy-v1", tcp_pose=[0.0, -0.1, 0.022, 0, 1, 0, 0], cubeA_pose=a, cubeB_pose=b)
    closed[0, 7:9] = 0.02  # fingers closed on a 4 cm cube
    carry = t(closed)[0]
    assert carry[3] == -1.0 and carry[1] > 0 and carry[2] > 0  # keep closed, lift towards B
    placed = _state("StackCubeEasy-v1", tcp_pose=[0.0, 0.1, 0.062, 0, 1, 0, 0], cubeA_pose=[0.0, 0.1, 0.061, 1, 0, 0, 0], cubeB_pose=b)
    placed[0, 7:9] = 0.02
    release = t(placed)[0]
    assert release[3] == 1.0 and release[:3].abs().max() < 1e-6  # open in place


# ---------------------------------------------------------------------- simulator


@pytest.mark.sim
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("task", TASKS)
def test_layouts_match_state_dict(task):
    """Each layout field equals the corresponding entry of ManiSkill's ``state_dict`` observation."""
    import gymnasium as gym

    from nnit.tasks.maniskill import make_env  # also registers StackCubeEasy-v1

    flat_env = make_env(task, control_mode="pd_ee_delta_pos")
    dict_env = gym.make(
        task, obs_mode="state_dict", control_mode="pd_ee_delta_pos", sim_backend="physx_cpu", render_backend="none", num_envs=1
    )
    try:
        nested, _ = dict_env.reset(seed=3)
        flat, _ = flat_env.reset(seed=3)
        entries = {**nested["agent"], **nested["extra"]}
        layout = LAYOUTS[task]
        assert [f for f, _, _ in layout.fields] == list(entries)
        assert flat.shape == (1, layout.dim)
        for name, a, b in layout.fields:
            torch.testing.assert_close(flat[:, a:b], entries[name].reshape(1, -1).float())
    finally:
        dict_env.close()
        flat_env.close()


@pytest.mark.sim
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_pick_cube_teacher_succeeds_in_the_simulator():
    from nnit.tasks.maniskill import make_env

    teacher = get_teacher("PickCube-v1")
    env = make_env("PickCube-v1", control_mode=teacher.spec.control_mode)
    wins = 0
    try:
        for seed in range(5):
            obs, _ = env.reset(seed=seed)
            once = False
            for _ in range(50):
                obs, _, _, _, info = env.step(teacher(obs))
                once |= bool(info["success"])
            wins += once
    finally:
        env.close()
    assert wins >= 4, f"{wins}/5 episodes succeeded"
