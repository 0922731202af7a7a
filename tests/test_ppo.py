"""PPO experts: GAE and the clipped objective on hand-computed values, the agent / actor export,
the teacher protocol of a loaded actor, and (marked ``sim``) a tiny real training run with resume."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch

from nnit.checkpoint import load_checkpoint
from nnit.experts.ppo import (
    PPO_PRESETS,
    PPOActorTeacher,
    PPOAgent,
    PPOConfig,
    actor_weight_set,
    gae,
    load_ppo_agent,
    ppo_config,
    ppo_loss,
    ppo_update,
    save_ppo_checkpoint,
)
from nnit.experts.teachers import Teacher, get_teacher
from nnit.stopping import TrainingStopped
from nnit.tasks.registry import get_task
from test_stopping import sigterm_when_logged  # noqa: E402  (tests/ is on sys.path)

torch.set_num_threads(1)


# ---------------------------------------------------------------------- GAE
def test_gae_hand_computed():
    """T = 3, one env whose episode ends with step 1 (bootstrapped from V(final obs) = 0.7)."""
    t = lambda *v: torch.tensor(v, dtype=torch.float64).reshape(-1, 1)  # noqa: E731  (T, 1)
    adv, ret = gae(t(1.0, 0.0, 2.0), t(0.5, 0.2, 0.1), t(0.0, 1.0, 0.0), t(0.0, 0.7, 0.0),
                   torch.tensor([0.3], dtype=torch.float64), gamma=0.8, lam=0.9)
    # t=2: 2 + 0.8*0.3 - 0.1 = 2.14
    # t=1: done -> 0 + 0.8*0.7 - 0.2 = 0.36 (no continuation into the next episode)
    # t=0: 1 + 0.8*0.2 - 0.5 = 0.66; + 0.8*0.9*0.36 = 0.9192
    assert torch.allclose(adv[:, 0], torch.tensor([0.9192, 0.36, 2.14], dtype=torch.float64))
    assert torch.allclose(ret[:, 0], torch.tensor([1.4192, 0.56, 2.24], dtype=torch.float64))


def test_gae_lambda_one_is_discounted_return():
    g = torch.Generator().manual_seed(0)
    r, v = torch.rand(6, 3, generator=g), torch.rand(6, 3, generator=g)
    nv = torch.rand(3, generator=g)
    zeros = torch.zeros(6, 3)
    _, ret = gae(r, v, zeros, zeros, nv, gamma=0.9, lam=1.0)
    mc = nv.clone()
    for k in reversed(range(6)):
        mc = r[k] + 0.9 * mc
        assert torch.allclose(ret[k], mc, atol=1e-6)


# ---------------------------------------------------------------------- loss pieces
def _loss(new_lp, adv, new_v=0.0, old_v=0.0, ret=0.0, **cfg):
    n = len(new_lp)
    new_lp = torch.tensor(new_lp, requires_grad=True)
    cfg = replace(PPOConfig(), norm_adv=False, **cfg)
    full = lambda x: torch.full((n,), float(x))  # noqa: E731
    loss, stats = ppo_loss(new_lp, torch.zeros(n), torch.tensor(adv), full(new_v), full(old_v), full(ret), torch.zeros(n), cfg)
    return new_lp, loss, stats


def test_ratio_clipping_hand_values():
    # ratios 1.5 (A = +1) and 0.5 (A = -1): both beyond the clip in the direction that would help
    lp, _, st = _loss([math.log(1.5), math.log(0.5)], [1.0, -1.0], vf_coef=0.0)
    assert st["policy_loss"] == pytest.approx((-1.2 + 0.8) / 2)  # clipped to 1.2 and 0.8
    assert st["clipfrac"] == 1.0
    # ratio 1.1 (inside the clip): loss -A r, gradient -A r / B
    lp, loss, st = _loss([math.log(1.1), math.log(0.5)], [1.0, 1.0], vf_coef=0.0)
    assert st["policy_loss"] == pytest.approx((-1.1 - 0.5) / 2)  # A > 0, r < 1 - eps: pessimistic, not clipped
    loss.backward()
    assert lp.grad.tolist() == pytest.approx([-1.1 / 2, -0.5 / 2])
    # clipped samples carry no gradient
    lp, loss, _ = _loss([math.log(1.5), math.log(0.5)], [1.0, -1.0], vf_coef=0.0)
    loss.backward()
    assert lp.grad.tolist() == [0.0, 0.0]


def test_kl_and_value_loss_hand_values():
    _, _, st = _loss([0.0, 0.0], [1.0, -1.0], new_v=2.0, ret=1.0)
    assert st["approx_kl"] == 0.0 and st["clipfrac"] == 0.0
    assert st["value_loss"] == pytest.approx(0.5)
    _, _, st = _loss([math.log(2.0)], [1.0])
    assert st["approx_kl"] == pytest.approx((2 - 1) - math.log(2.0))
    # value clipping around the rollout's value 0 (eps 0.2): the pessimistic max of the two errors
    _, _, st = _loss([0.0], [1.0], new_v=2.0, old_v=0.0, ret=1.0, clip_vloss=True)
    assert st["value_loss"] == pytest.approx(0.5 * max(1.0, 0.8**2))
    _, _, st = _loss([0.0], [1.0], new_v=0.5, old_v=0.0, ret=1.0, clip_vloss=True)
    assert st["value_loss"] == pytest.approx(0.5 * 0.8**2)


def test_advantage_normalization():
    cfg = PPOConfig(norm_adv=True)
    adv = torch.tensor([1.0, 2.0, 3.0, 4.0])
    z = torch.zeros(4)
    _, st = ppo_loss(z, z, adv, z, z, z, z, cfg)
    assert st["policy_loss"] == pytest.approx(0.0, abs=1e-6)  # ratio 1: -mean(normalized A) = 0


# ---------------------------------------------------------------------- agent and update
def test_agent_init_and_actor_export():
    torch.manual_seed(0)
    agent = PPOAgent(35, 8)
    assert [m.out_features for m in agent.actor_mean if isinstance(m, torch.nn.Linear)] == [256, 256, 256, 8]
    assert torch.all(agent.actor_logstd == -0.5)
    for m in agent.modules():
        if isinstance(m, torch.nn.Linear):
            assert torch.all(m.bias == 0)
    obs = torch.randn(5, 35)
    ws = actor_weight_set(agent)
    assert ws.arch.hidden == (256, 256, 256) and ws.arch.activation == "tanh"
    assert torch.allclose(ws(obs)[0], agent.actor_mean(obs), atol=1e-5)
    assert agent.actor_mean(obs).abs().max() < 0.2  # small initial actions (last-layer gain 0.01 sqrt 2)
    act = torch.randn(5, 8)
    logp, ent, v = agent.evaluate_actions(obs, act)
    ref = torch.distributions.Normal(agent.actor_mean(obs), math.exp(-0.5)).log_prob(act).sum(-1)
    assert torch.allclose(logp, ref, atol=1e-5) and ent.shape == v.shape == (5,)


def _random_batch(agent, n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, 35, generator=g)
    act = torch.randn(n, 8, generator=g)
    with torch.no_grad():
        logp, _, v = agent.evaluate_actions(obs, act)
    return {"obs": obs, "actions": act, "logprobs": logp, "values": v,
            "advantages": torch.randn(n, generator=g), "returns": torch.randn(n, generator=g)}


def test_update_changes_policy_and_target_kl_stops_early():
    torch.manual_seed(0)
    agent = PPOAgent(35, 8, hidden=(16, 16, 16))
    opt = torch.optim.Adam(agent.parameters(), lr=3e-4, eps=1e-5)
    batch = _random_batch(agent)
    cfg = replace(PPOConfig(), update_epochs=2, num_minibatches=4, target_kl=None)
    before = [p.detach().clone() for p in agent.parameters()]
    st = ppo_update(agent, opt, batch, cfg, torch.Generator().manual_seed(0))
    assert st["grad_steps"] == 8 and st["kl_stop"] == 0.0
    assert all(math.isfinite(v) for k, v in st.items() if k != "explained_variance")
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.parameters()))
    # target_kl = 0: the first minibatch (identical policy, KL exactly 0) steps, the second stops
    st = ppo_update(agent, opt, _random_batch(agent, seed=1), replace(cfg, target_kl=0.0), torch.Generator().manual_seed(0))
    assert st["grad_steps"] == 1 and st["kl_stop"] == 1.0


def test_presets():
    assert set(PPO_PRESETS) == {"tiny", "cpu", "paper"}
    cpu = ppo_config("cpu", "PushCube-v1")
    assert cpu.total_steps == 2_000_000 and (cpu.gamma, cpu.gae_lambda, cpu.learning_rate) == (0.8, 0.9, 3e-4)
    assert cpu.control_mode == "pd_joint_delta_pos" and cpu.hidden == (256, 256, 256)
    paper = ppo_config("paper", "PushCube-v1")
    assert (paper.num_envs, paper.batch_steps // paper.num_envs, paper.update_epochs) == (2048, 20, 8)
    with pytest.raises(ValueError, match="unknown preset"):
        ppo_config("huge", "PushCube-v1")


# ---------------------------------------------------------------------- teacher protocol
def test_loaded_actor_is_a_teacher(tmp_path):
    torch.manual_seed(0)
    task = get_task("PushCube-v1")
    agent = PPOAgent(task.obs_dim, task.action_dim, hidden=(32, 32, 32))
    with torch.no_grad():
        agent.actor_mean[-1].weight.mul_(300)  # big outputs: the clamp matters
    cfg = replace(PPO_PRESETS["tiny"], hidden=(32, 32, 32))
    save_ppo_checkpoint(tmp_path, agent, cfg, task, step=123, iteration=1)

    teacher = get_teacher("PushCube-v1", checkpoint=tmp_path)
    assert isinstance(teacher, PPOActorTeacher) and isinstance(teacher, Teacher)
    assert (teacher.spec.task, teacher.spec.control_mode, teacher.spec.obs_dim, teacher.spec.act_dim) == (
        "PushCube-v1", "pd_joint_delta_pos", 35, 8)
    obs = torch.randn(7, 35)
    act = teacher(obs)
    assert act.shape == (7, 8) and act.abs().max() <= 1.0 and (act.abs() == 1.0).any()
    assert torch.equal(act, teacher(obs))  # deterministic
    assert torch.allclose(torch.stack([teacher(o) for o in obs]), act, atol=1e-6)  # batch = single calls
    with torch.no_grad():
        assert torch.allclose(act, agent.actor_mean(obs).clamp(-1, 1), atol=1e-5)  # the mean action, clipped
    # the exported weight set is the same policy (what nnit eval runs)
    from nnit.weights.mlp import WeightSet

    ws = WeightSet.load(tmp_path / "actor.safetensors")
    assert torch.allclose(ws(obs)[0].clamp(-1, 1), act, atol=1e-6)
    loaded, config = load_ppo_agent(tmp_path / "checkpoint.safetensors")
    assert config["task"] == "PushCube-v1" and load_checkpoint(tmp_path).step == 123
    with pytest.raises(ValueError, match="not PickCube-v1"):
        get_teacher("PickCube-v1", checkpoint=tmp_path)
    with pytest.raises(ValueError, match="overrides"):
        get_teacher("PushCube-v1", checkpoint=tmp_path, gain=2.0)
    with pytest.raises(ValueError, match="shape"):
        teacher(torch.zeros(2, 42))


# ---------------------------------------------------------------------- real simulator
@pytest.mark.sim
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tiny_training_run_checkpoints_and_resumes(tmp_path):
    """The CLI trains 200 steps with 2 CPU workers; then train_ppo resumes the run to 300 steps."""
    from nnit.cli import main
    from nnit.experts.ppo import train_ppo

    out = tmp_path / "expert"
    main(["train-expert", "--task", "PushCube-v1", "--preset", "tiny", "--out", str(out), "--workers", "2", "--no-progress"])
    ck = load_checkpoint(out)
    assert ck.step == 200 and ck.meta["iteration"] == 2
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    steps = [r["global_step"] for r in log if "losses/policy_loss" in r]
    assert steps == [100, 200]
    for r in log:
        assert all(math.isfinite(v) for k, v in r.items() if k.startswith("losses/") and k != "losses/explained_variance")
    assert any("eval/success_once" in r for r in log) and any("train/episode_return" in r for r in log)
    ev = json.loads((out / "eval.json").read_text())
    assert len(ev["seeds"]) == 2 and 0.0 <= ev["metrics"]["mean_return"][0] <= 50.0
    assert (out / "tb").is_dir() and (out / "actor.safetensors").is_file()
    # the trainer's evaluation is the protocol's: `nnit eval` of the saved actor gives the same episodes
    from nnit.eval.harness import evaluate
    from nnit.weights.mlp import WeightSet

    again = evaluate("PushCube-v1", WeightSet.load(out / "actor.safetensors"), episodes=2, base_seed=ev["seeds"][0],
                     backend="cpu", num_workers=1, control_mode=ev["info"]["control_mode"], progress=False)
    assert again.per_episode["return"][0].tolist() == ev["per_episode"]["return"][0]

    # resume with a larger budget, in-process collection (workers=0): continues from step 200
    cfg = replace(ppo_config("tiny", "PushCube-v1"), total_steps=300)
    train_ppo("PushCube-v1", cfg, out, num_workers=0, progress=False)
    ck2 = load_checkpoint(out)
    assert ck2.step == 300 and ck2.meta["iteration"] == 3
    steps = [json.loads(line)["global_step"] for line in (out / "train_log.jsonl").read_text().splitlines()
             if "losses/policy_loss" in line]
    assert steps == [100, 200, 300]
    assert not torch.equal(ck.model["actor_logstd"], ck2.model["actor_logstd"])  # it kept learning
    # SIGTERM: the iteration in progress finishes and is checkpointed, then the run stops
    log_path = out / "train_log.jsonl"
    sigterm_when_logged(log_path, log_path.read_text().count("\n") + 1)
    with pytest.raises(TrainingStopped) as stopped:
        train_ppo("PushCube-v1", replace(cfg, total_steps=100_000), out, num_workers=0, progress=False)
    assert stopped.value.step >= 400 and load_checkpoint(out).step == stopped.value.step
    # a changed learning setting refuses to resume into the same directory
    with pytest.raises(ValueError, match="another config"):
        train_ppo("PushCube-v1", replace(cfg, learning_rate=1e-3), out, num_workers=0, progress=False)
