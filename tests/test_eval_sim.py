"""Real-simulator tests (ManiSkill3 on physx_cpu): the three tasks, StackCubeEasy's kinematic goal
cube, determinism given reset(seed), and a 2-network x 2-episode evaluation."""

import json

import numpy as np
import pytest
import torch

from nnit.eval.harness import evaluate, run_episode
from nnit.tasks.registry import get_task
from nnit.tasks.rollout import mlp_policy
from nnit.weights import Architecture, WeightSet

pytestmark = [pytest.mark.sim, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

TASKS = ["PickCube-v1", "PushCube-v1", "StackCubeEasy-v1"]


def _nets(task: str, n: int, seed: int = 0) -> WeightSet:
    spec = get_task(task)
    ws = WeightSet.init_random(Architecture(spec.input_dim, (32, 16), spec.output_dim), n, generator=torch.Generator().manual_seed(seed))
    ws.weights[-1] *= 10  # bigger actions: the arm moves (and may touch the cube)
    return ws


@pytest.mark.parametrize("task", TASKS)
def test_step_each_task(task):
    from nnit.tasks.maniskill import make_env

    spec = get_task(task)
    env = make_env(task)
    try:
        assert env.observation_space.shape[-1] == spec.obs_dim
        assert env.action_space.shape[-1] == spec.action_dim
        obs, _ = env.reset(seed=0)
        assert tuple(obs.shape) == (1, spec.obs_dim)
        for _ in range(3):
            obs, reward, _term, _trunc, info = env.step(torch.rand(1, spec.action_dim) * 2 - 1)
            assert 0.0 <= float(reward[0]) <= 1.0  # normalized dense reward
            assert "success" in info
        assert int(info["elapsed_steps"][0]) == 3
    finally:
        env.close()


def test_ee_control_mode_has_4d_actions():
    from nnit.tasks.maniskill import env_dims

    assert env_dims("PushCube-v1", "pd_ee_delta_pos") == (35, 4) == (35, get_task("PushCube-v1", "pd_ee_delta_pos").action_dim)


@pytest.mark.parametrize("task, moves", [("StackCube-v1", True), ("StackCubeEasy-v1", False)])
def test_goal_cube_stays_put_only_in_easy_variant(task, moves):
    """Throw cube A at cube B: B slides in StackCube-v1 but not in StackCubeEasy-v1 (kinematic)."""
    from mani_skill.utils.structs.pose import Pose

    from nnit.tasks.maniskill import make_env

    env = make_env(task)
    u = env.unwrapped
    try:
        env.reset(seed=0)
        p_b = u.cubeB.pose.p.clone()
        p_a = p_b.clone()
        p_a[..., 0] -= 0.06
        u.cubeA.set_pose(Pose.create_from_pq(p=p_a, q=u.cubeB.pose.q))
        u.cubeA.set_linear_velocity(torch.tensor([[1.0, 0.0, 0.0]]))
        for _ in range(10):
            env.step(torch.zeros(1, 8))
        shift = float((u.cubeB.pose.p - p_b).norm())
        assert float((u.cubeA.pose.p - p_a).norm()) > 0.01  # A did fly into B
        assert (shift > 0.01) if moves else (shift == 0.0), shift
    finally:
        env.close()


def test_episodes_do_not_depend_on_what_ran_before():
    """A plain physx_cpu reset(seed) keeps the last episode's contacts: after the scripted teacher has grasped
    the cube, PickCube's first observation still says "grasped" and a network's episode changes. The
    harness's run_network rebuilds the scene for a network's first episode, so its episodes equal a fresh
    env's whatever ran before."""
    from nnit.eval.harness import run_network
    from nnit.experts.teachers import get_teacher
    from nnit.ghn.collect import dagger_episode
    from nnit.tasks.maniskill import make_env

    teacher = get_teacher("PickCube-v1")
    spec = get_task("PickCube-v1").with_default_control_mode()
    ws = WeightSet.init_random(Architecture(spec.input_dim, (32, 16), spec.output_dim), 1, generator=torch.Generator().manual_seed(0))
    fresh, used = (make_env("PickCube-v1", control_mode=spec.control_mode) for _ in range(2))
    try:
        first_fresh = fresh.reset(seed=3)[0]
        ref = run_network(fresh, ws, [3, 4], steps=50)
        teach = dict(steps=50, teacher=teacher, beta=1.0, rng=np.random.default_rng(0))
        assert dagger_episode(used, ws, seed=7, **teach)[2]  # the teacher picked the cube up and holds it at the goal
        assert not torch.equal(used.reset(seed=3)[0], first_fresh)  # stale contact state leaks into the observation
        assert run_episode(used, ws, seed=3, steps=50) != ref[0]  # ... and into the episode
        dagger_episode(used, ws, seed=7, **teach)
        assert run_network(used, ws, [3, 4], steps=50) == ref
    finally:
        fresh.close()
        used.close()


def test_two_by_two_evaluation_is_batching_invariant(tmp_path):
    ws = _nets("PushCube-v1", 2)
    both = evaluate("PushCube-v1", ws, episodes=2, base_seed=10, backend="cpu", num_workers=2, progress=False)
    assert both.per_episode["return"].shape == (2, 2) and both.seeds == [10, 11]
    assert both.info["backend"] == "physx_cpu" and both.info["env_steps"] == 200
    assert np.all((both.metrics["mean_return"] >= 0) & (both.metrics["mean_return"] <= 50))
    one = evaluate("PushCube-v1", ws[1], episodes=2, base_seed=10, backend="cpu", num_workers=0, progress=False)
    np.testing.assert_array_equal(one.per_episode["return"][0], both.per_episode["return"][1])
    np.testing.assert_array_equal(one.per_episode["success_once"][0], both.per_episode["success_once"][1])
    path, _ = both.save(tmp_path / "r.json")
    assert json.loads(path.read_text())["per_episode"]["return"] == both.per_episode["return"].tolist()


def test_cli_eval_on_stack_cube_easy(tmp_path, capsys):
    from nnit.cli import main

    out = tmp_path / "s.json"
    main(["eval", "--task", "StackCubeEasy-v1", "--random", "2", "--preset", "tiny", "--workers", "1", "--out", str(out), "--no-progress"])
    d = json.loads(out.read_text())
    assert d["num_networks"] == 2 and d["seeds"] == [0, 1] and d["info"]["episodes"] == 2
    assert "StackCubeEasy-v1" in capsys.readouterr().out


@pytest.mark.slow
def test_rollout_video(tmp_path):
    from nnit.eval.harness import record_video

    ws = _nets("PushCube-v1", 2)
    info = record_video("PushCube-v1", ws, tmp_path / "clip.gif", network=1, seed=10)
    assert (tmp_path / "clip.gif").stat().st_size > 1000 and info["frames"] == 51
    ref = evaluate("PushCube-v1", ws[1], episodes=1, base_seed=10, num_workers=0, progress=False)
    assert info["return"] == pytest.approx(float(ref.per_episode["return"][0, 0]))  # rendering does not change the physics


def _ppo_checkpoint(out_dir, task: str = "PushCube-v1"):
    """A tiny (untrained, big-output) PPO expert saved as ``nnit train-expert`` saves one."""
    from dataclasses import replace

    from nnit.experts.ppo import PPO_PRESETS, PPOAgent, save_ppo_checkpoint

    torch.manual_seed(0)
    spec = get_task(task)
    agent = PPOAgent(spec.obs_dim, spec.action_dim, hidden=(16, 16, 16))
    with torch.no_grad():
        agent.actor_mean[-1].weight.mul_(300)  # big actions: the arm moves
    save_ppo_checkpoint(out_dir, agent, replace(PPO_PRESETS["tiny"], hidden=(16, 16, 16)), spec, step=1, iteration=1)
    return WeightSet.load(out_dir / "actor.safetensors")


def test_dagger_collect_with_a_ppo_teacher(tmp_path):
    """With beta = 1 every step executes the PPO teacher: the visited states are the actor's own episode."""
    from nnit.ghn.collect import DaggerCollector
    from nnit.tasks.rollout import run_episode as rollout_episode

    actor = _ppo_checkpoint(tmp_path)
    student = _nets("PushCube-v1", 1)
    with DaggerCollector("PushCube-v1", num_workers=0) as ev:
        states, stats = ev.collect([student, student], [5, 6], beta=1.0, mix_seed=0, teacher_checkpoint=tmp_path)
        assert len(states) == 2 and states[0].shape == (50, 35) and stats["episodes"] == 2
        assert list(ev._teachers) == [("PushCube-v1", str(tmp_path))]  # loaded once, cached by (task, checkpoint)
        ref: list = []
        rollout_episode(ev._env, mlp_policy(actor), seed=5, steps=50, on_step=lambda step: ref.append(step.obs[0].numpy().copy()))
        np.testing.assert_allclose(states[0], np.stack(ref), atol=1e-5)
        mixed, _ = ev.collect([student], [5], beta=0.0, mix_seed=0, teacher_checkpoint=tmp_path)  # the student alone
    assert np.abs(mixed[0] - states[0]).max() > 1e-3
