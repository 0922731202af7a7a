"""The shared episode loop (nnit.tasks.rollout), the EvalResult builders and the DAgger mixing, on fake envs (fast)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nnit.eval.results import EvalResult, aggregate
from nnit.ghn.collect import mixed_policy
from nnit.tasks.registry import RobotTaskSpec, default_control_mode, get_task, is_robot_task, task_kind, task_names
from nnit.tasks.rollout import Step, mlp_policy, run_episode, run_episodes
from nnit.weights import Architecture, WeightSet


class CountingEnv:
    """B sub-envs on a line; the reward is the clamped action's first entry, success when the position passes 1."""

    def __init__(self, b: int = 1):
        self.b, self.resets = b, []

    def reset(self, seed=None, options=None):
        self.resets.append((seed, options))
        self.pos = torch.zeros(self.b, 1)
        return self.pos.clone(), {}

    def step(self, action):
        assert action.shape == (self.b, 1) and float(action.abs().max()) <= 1.0
        self.pos += action
        reward = action[:, 0].float()
        return self.pos.clone(), reward, torch.zeros(self.b, dtype=bool), torch.zeros(self.b, dtype=bool), {"success": self.pos[:, 0] > 1.0}


def test_loop_outcome_hooks_and_clamp():
    env = CountingEnv()
    seen, resets = [], []
    ep = run_episode(env, lambda obs: torch.full((1, 1), 0.3 if float(obs[0, 0]) < 1.4 else -5.0), seed=4, steps=7,
                     on_reset=resets.append, on_step=seen.append)
    # positions 0.3 0.6 0.9 1.2 1.5 0.5 (the -5 is clamped to -1) 0.8: success first at step 4, lost at step 6
    assert ep.seed == 4 and env.resets == [(4, None)] and len(resets) == 1 and len(seen) == 7
    assert isinstance(seen[0], Step) and seen[0].t == 1 and float(seen[0].obs[0, 0]) == 0.0
    assert float(seen[5].action[0, 0]) == -1.0  # clamped
    assert ep.outcome() == (pytest.approx(0.3 * 6 - 1.0), True, False)
    assert int(ep.first_success_step[0]) == 4


def test_run_episodes_rebuilds_only_the_first():
    env = CountingEnv()
    eps = run_episodes(env, lambda obs: torch.ones(1, 1), [7, 8, 9], steps=2)
    assert [e.seed for e in eps] == [7, 8, 9]
    assert env.resets == [(7, {"reconfigure": True}), (8, None), (9, None)]


def test_batched_env_one_network_per_sub_env():
    arch = Architecture(1, (4,), 1)
    ws = WeightSet.init_random(arch, 3, generator=torch.Generator().manual_seed(0))
    batched = run_episode(CountingEnv(3), mlp_policy(ws), seed=0, steps=5)
    for i in range(3):
        single = run_episode(CountingEnv(1), mlp_policy(ws[i]), seed=0, steps=5)
        assert batched.outcome(i) == single.outcome()


def test_mixed_policy_draws_once_per_step():
    rng, ref = np.random.default_rng(3), np.random.default_rng(3)
    pol = mixed_policy(lambda obs: torch.zeros(1, 1), lambda obs: torch.ones(1, 1), beta=0.5, rng=rng)
    picks = [float(pol(torch.zeros(1, 1))[0, 0]) for _ in range(20)]
    assert picks == [1.0 if ref.random() < 0.5 else 0.0 for _ in range(20)]


def test_eval_result_builders():
    task = RobotTaskSpec("Fake-v0", obs_dim=1, action_dim=1, success_threshold=0.5, return_threshold=1.0, episode_steps=10)
    rets = np.array([[1.0, 3.0], [2.0, 2.0]])
    once = np.array([[True, False], [True, True]])
    r = EvalResult.from_episodes(task, {"hidden": [4]}, rets, once, once, [5, 6], wall_s=2.0, run={"backend": "fake"})
    assert list(r.info)[:2] == ["backend", "control_mode"] and r.info["base_seed"] == 5 and r.info["env_steps"] == 40
    assert r.info["env_steps_per_s"] == 20.0 and r.seeds == [5, 6]
    for k, v in aggregate(rets, once, once).items():
        np.testing.assert_array_equal(r.metrics[k], v)
    assert r.per_episode["success_once"].dtype == np.float64
    assert "env_steps" not in EvalResult.from_episodes(task, {}, rets, once, once, [5, 6], wall_s=1.0, throughput=False).info
    with pytest.raises(ValueError):
        EvalResult.from_episodes(task, {}, rets, once, once, [5], wall_s=1.0)
    m = EvalResult.merge([r, r], "joint")
    assert m.n == 4 and m.arch == {"hidden": [], "label": "joint"} and m.info == {"merged": 2}
    np.testing.assert_array_equal(m.per_episode["return"], np.concatenate([rets, rets]))
    other = EvalResult.from_episodes(task, {}, rets, once, once, [7, 8], wall_s=1.0)
    with pytest.raises(ValueError, match="cannot merge"):
        EvalResult.merge([r, other], "x")


def test_registry_kind_and_default_control_mode():
    from nnit.experts.teachers import get_teacher

    assert {n: task_kind(n) for n in task_names()} == {
        "PickCube-v1": "robot", "PushCube-v1": "robot", "StackCubeEasy-v1": "robot", "FashionMNIST": "image", "MNIST": "image"}
    assert is_robot_task("pushcube-v1") and not is_robot_task("MNIST")
    assert default_control_mode("FashionMNIST") is None
    for name in ("PickCube-v1", "PushCube-v1", "StackCubeEasy-v1"):
        assert default_control_mode(name) == get_teacher(name).spec.control_mode  # the scripted teachers act in it
        spec = get_task(name).with_default_control_mode()
        assert spec.control_mode == default_control_mode(name) and spec.action_dim == 4
    assert get_task("PushCube-v1").control_mode == "pd_joint_delta_pos"  # get_task's own default is unchanged
