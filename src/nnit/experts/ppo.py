"""PPO experts for the ManiSkill3 tasks, following ManiSkill's PPO baseline recipe.

The recipe (ManiSkill3 ``examples/baselines/ppo/ppo.py``, re-implemented here): actor and critic
are separate MLPs (3 x 256, Tanh, orthogonal init; the actor's last layer at gain 0.01 * sqrt(2)),
a state-independent log-std (init -0.5), GAE with gamma 0.8 / lambda 0.9 (bootstrapping from
``V(final observation)`` at every episode end, truncation or success alike), the clipped surrogate
(clip 0.2), optional value clipping, an approximate-KL early stop (0.1), per-minibatch advantage
normalization, Adam (lr 3e-4, eps 1e-5), grad-norm clip 0.5, normalized dense reward, 50-step
episodes with automatic partial resets, ``pd_joint_delta_pos`` by default. Actions are sampled
from N(mean, std) and clipped to [-1, 1] before stepping.

**The actor's mean is the deployed policy.** Its output layer is linear and the simulator gets
``clamp(action, -1, 1)``, so the deterministic actor is exactly the harness policy
``clamp(mlp(obs), -1, 1)`` (:mod:`nnit.eval.harness`): :func:`actor_weight_set` exports it as a
:class:`~nnit.weights.mlp.WeightSet` and :class:`PPOActorTeacher` serves it as a DAgger teacher
(``get_teacher(task, checkpoint=...)``).

**Collection.** ``physx_cpu`` runs one env per process, so on CPU a pool of worker processes
(one per core, one torch thread each) each owns one env. Once per PPO iteration every worker gets
the current actor + critic weights (one message), collects its own ``T`` steps (sampling actions,
log-probs and values locally) and sends the arrays back: nothing crosses a process boundary per
step. The learner stacks the workers' streams as the ``N`` axis of a (T, N) batch, exactly as if
they were the envs of one vectorized simulator. On a GPU (``physx_cuda``) the same collector runs
``num_envs`` envs in the learner's process. The batch per iteration is ``batch_steps`` env steps
whatever the number of workers (each of W workers collects ``batch_steps // W``).

**Evaluation** of the deterministic actor uses the harness's protocol and code
(:func:`nnit.eval.harness.run_network`: 50 steps, terminations ignored, ``success_once`` and the
return; the episodes in order, the first from a rebuilt scene), run in the first rollout worker's
env, so the numbers equal ``nnit eval``'s whatever ran in that env before (tested); on a GPU
:func:`nnit.eval.harness.evaluate_gpu`.

Outputs in the run directory: ``checkpoint.safetensors`` (the project's checkpoint format; its
``step`` is the env-step count), ``actor.safetensors`` (the deterministic actor as a WeightSet),
``eval.json`` / ``eval.csv`` (final evaluation), ``train_log.jsonl`` and TensorBoard (``tb/``).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch
from torch import nn

from nnit.checkpoint import load_checkpoint, restore, save_checkpoint
from nnit.errors import NNiTError
from nnit.eval.workers import WorkerPool
from nnit.experts.interface import TeacherSpec
from nnit.fileio import truncate_jsonl_log
from nnit.stopping import TrainingStopped, stop_on_signals
from nnit.tasks.registry import RobotTaskSpec, get_task, resolve_sim_backend
from nnit.weights.mlp import WeightSet


# ============================================================================ config
@dataclass(frozen=True)
class PPOConfig:
    """Hyper-parameters of one PPO expert run (ManiSkill's PPO baseline names in brackets)."""

    total_steps: int = 2_000_000
    """Environment steps to train for [total_timesteps]."""
    batch_steps: int = 2_000
    """Env steps per PPO iteration, all envs together [num_envs * num_steps]. On CPU each of W
    workers collects ``batch_steps // W``; on a GPU each of ``num_envs`` envs ``batch_steps // num_envs``."""
    num_envs: int = 512
    """Parallel envs in one ``physx_cuda`` simulation (GPU only; on CPU the envs are the workers)."""
    control_mode: Literal["pd_joint_delta_pos", "pd_ee_delta_pos"] = "pd_joint_delta_pos"
    """ManiSkill controller the actor drives [control_mode]."""
    ignore_terminations: bool = True
    """True: every training episode runs all 50 steps (the harness's episodes). False: an episode
    also ends (and its env resets) on success, ManiSkill's default [partial_reset=True]."""
    hidden: tuple[int, ...] = (256, 256, 256)
    """Hidden widths of both the actor and the critic MLP (Tanh)."""
    init_logstd: float = -0.5
    """Initial log standard deviation of the (state-independent) Gaussian policy."""
    learning_rate: float = 3e-4
    """Adam learning rate [learning_rate]."""
    anneal_lr: bool = False
    """Decay the learning rate linearly to 0 over the run [anneal_lr]."""
    gamma: float = 0.8
    """Discount factor [gamma]."""
    gae_lambda: float = 0.9
    """GAE lambda [gae_lambda]."""
    update_epochs: int = 8
    """Passes over each batch [update_epochs]."""
    num_minibatches: int = 8
    """Minibatches per pass [num_minibatches]."""
    norm_adv: bool = True
    """Normalize advantages within each minibatch [norm_adv]."""
    clip_coef: float = 0.2
    """Surrogate clipping epsilon [clip_coef]."""
    clip_vloss: bool = False
    """Clip the value update around the rollout's values too [clip_vloss]."""
    ent_coef: float = 0.0
    """Entropy bonus weight [ent_coef]."""
    vf_coef: float = 0.5
    """Value-loss weight [vf_coef]."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip [max_grad_norm]."""
    target_kl: float | None = 0.1
    """Stop the iteration's update once the approximate KL exceeds this (None: never) [target_kl]."""
    seed: int = 0
    """Seeds the initial weights, minibatch order, action noise and env resets."""
    eval_every: int = 50
    """Iterations between evaluations of the deterministic actor [eval_freq]."""
    eval_episodes: int = 16
    """Episodes per periodic evaluation (seeds ``eval_seed + e``)."""
    final_eval_episodes: int = 50
    """Episodes of the final evaluation (written to ``eval.json``)."""
    eval_seed: int = 0
    """Seed of evaluation episode 0 (the harness's default)."""
    checkpoint_every: int = 10
    """Iterations between checkpoints."""

    @property
    def num_iterations(self) -> int:
        """Iterations the run takes (at ``batch_steps`` each; the last may overshoot ``total_steps``)."""
        return math.ceil(self.total_steps / self.batch_steps)


PPO_PRESETS: dict[str, PPOConfig] = {
    "tiny": PPOConfig(
        total_steps=200, batch_steps=100, num_envs=16, hidden=(64, 64, 64), update_epochs=2, num_minibatches=2,
        eval_every=1, eval_episodes=2, final_eval_episodes=2, checkpoint_every=1,
    ),
    # 2 cores: batch 2,000 steps (1,000 per worker, 20 episodes each), 1,000 iterations for PushCube
    "cpu": PPOConfig(total_steps=2_000_000, batch_steps=2_000, update_epochs=8, num_minibatches=8, eval_every=50, checkpoint_every=10),
    # ManiSkill's defaults (the per-task commands of its baseline README are applied by ppo_config)
    "paper": PPOConfig(
        total_steps=10_000_000, batch_steps=512 * 50, num_envs=512, ignore_terminations=False, update_epochs=4,
        num_minibatches=32, eval_every=25, eval_episodes=16, final_eval_episodes=100, checkpoint_every=25,
    ),
}

# ManiSkill's baseline README commands (num_envs, num_steps, update_epochs, total_timesteps)
_PAPER_TASKS = {
    "PushCube-v1": dict(num_envs=2048, batch_steps=2048 * 20, update_epochs=8, total_steps=2_000_000),
    "PickCube-v1": dict(num_envs=1024, batch_steps=1024 * 50, update_epochs=8, total_steps=10_000_000),
    "StackCubeEasy-v1": dict(num_envs=1024, batch_steps=1024 * 50, update_epochs=8, total_steps=25_000_000),
}
_CPU_STEPS = {"PushCube-v1": 2_000_000, "PickCube-v1": 10_000_000, "StackCubeEasy-v1": 25_000_000}
_RESUMABLE = ("total_steps", "eval_every", "eval_episodes", "final_eval_episodes", "checkpoint_every")
"""Config fields a resumed run may change (they do not alter what has been learned so far)."""


def ppo_config(preset: str, task: str) -> PPOConfig:
    """The preset's config with the per-task budgets (cpu: PushCube 2M steps, PickCube 10M,
    StackCubeEasy 25M; paper: ManiSkill's per-task commands)."""
    if preset not in PPO_PRESETS:
        raise NNiTError(f"unknown preset {preset!r}; choose one of {', '.join(PPO_PRESETS)}")
    cfg = PPO_PRESETS[preset]
    if preset == "paper" and task in _PAPER_TASKS:
        cfg = replace(cfg, **_PAPER_TASKS[task])
    if preset == "cpu" and task in _CPU_STEPS:
        cfg = replace(cfg, total_steps=_CPU_STEPS[task])
    return cfg


def config_from_dict(d: dict) -> PPOConfig:
    d = dict(d)
    d["hidden"] = tuple(d["hidden"])
    return PPOConfig(**d)


# ============================================================================ agent
def _layer(i: int, o: int, std: float) -> nn.Linear:
    """``nn.Linear`` with an orthogonal weight of gain ``std`` and a zero bias."""
    lin = nn.Linear(i, o)
    nn.init.orthogonal_(lin.weight, std)
    nn.init.zeros_(lin.bias)  # zero-init: the initial output is a pure function of the weights
    return lin


def _mlp(inp: int, hidden: tuple[int, ...], out: int, out_std: float) -> nn.Sequential:
    mods: list[nn.Module] = []
    for i, o in zip((inp, *hidden[:-1]), hidden):
        mods += [_layer(i, o, math.sqrt(2)), nn.Tanh()]
    mods.append(_layer(hidden[-1], out, out_std))
    return nn.Sequential(*mods)


class PPOAgent(nn.Module):
    """Gaussian actor N(actor_mean(obs), exp(actor_logstd)) and a separate critic V(obs)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...] = (256, 256, 256), init_logstd: float = -0.5):
        super().__init__()
        self.actor_mean = _mlp(obs_dim, hidden, act_dim, out_std=0.01 * math.sqrt(2))  # small: near-zero initial actions
        self.critic = _mlp(obs_dim, hidden, 1, out_std=1.0)
        self.actor_logstd = nn.Parameter(torch.full((1, act_dim), float(init_logstd)))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(obs).squeeze(-1)  # (B,)

    def evaluate_actions(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log pi(a|s), entropy, V(s)), each (B,), for obs (B, obs_dim) and unclipped actions (B, act_dim)."""
        mean = self.actor_mean(obs)  # (B, act)
        dist = torch.distributions.Normal(mean, self.actor_logstd.exp().expand_as(mean))
        return dist.log_prob(actions).sum(-1), dist.entropy().sum(-1), self.value(obs)


def actor_weight_set(agent: PPOAgent) -> WeightSet:
    """The deterministic actor (mean head) as a CPU WeightSet of one: ``clamp(ws(obs), -1, 1)`` is the policy."""
    return WeightSet.from_sequential(agent.actor_mean, "tanh").to("cpu")


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


# ============================================================================ PPO math
def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    final_values: torch.Tensor,
    next_value: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation (Schulman et al. 2016, Eq. 16) over (T, N) rollouts.

    ``dones[t]`` marks an episode that ended *with* step t (the env was then reset, so
    ``values[t + 1]`` belongs to a new episode); ``final_values[t]`` is V of that episode's final
    observation (0 where not done): the return is bootstrapped from it, for truncations and
    terminations alike, as in ManiSkill's baseline. ``next_value`` (N,) is V of the observation
    after the last step. With y_t = (1 - d_t) V(s_{t+1}) + f_t:
    delta_t = r_t + gamma y_t - V(s_t),  A_t = delta_t + gamma lam (1 - d_t) A_{t+1}.
    Returns (advantages, returns = advantages + values), each (T, N).
    """
    T = rewards.shape[0]
    adv = torch.zeros_like(rewards)  # (T, N)
    last = torch.zeros_like(next_value)  # (N,)
    for t in reversed(range(T)):
        nxt = next_value if t == T - 1 else values[t + 1]  # (N,)
        keep = 1.0 - dones[t]  # (N,)
        delta = rewards[t] + gamma * (keep * nxt + final_values[t]) - values[t]  # (N,)
        last = delta + gamma * lam * keep * last
        adv[t] = last
    return adv, adv + values


def ppo_loss(
    new_logprob: torch.Tensor,
    old_logprob: torch.Tensor,
    advantages: torch.Tensor,
    new_value: torch.Tensor,
    old_value: torch.Tensor,
    returns: torch.Tensor,
    entropy: torch.Tensor,
    cfg: PPOConfig,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The PPO objective on one minibatch (all inputs (B,)); returns (loss, stats).

    Clipped surrogate (Schulman et al. 2017, Eq. 7): with r = exp(log pi - log pi_old),
    L_pg = mean(max(-A r, -A clip(r, 1 - eps, 1 + eps))); value loss 0.5 (V - R)^2, or with
    ``clip_vloss`` 0.5 max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2);
    loss = L_pg - ent_coef H + vf_coef L_v. Stats: the approximate KL ``mean((r - 1) - log r)``
    (Schulman's k3 estimator) and the fraction of clipped ratios.
    """
    logratio = new_logprob - old_logprob  # (B,)
    ratio = logratio.exp()  # (B,)
    if cfg.norm_adv and advantages.numel() > 1:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    pg_loss = torch.max(-advantages * ratio, -advantages * ratio.clamp(1 - cfg.clip_coef, 1 + cfg.clip_coef)).mean()
    if cfg.clip_vloss:
        v_clipped = old_value + (new_value - old_value).clamp(-cfg.clip_coef, cfg.clip_coef)  # (B,)
        v_loss = 0.5 * torch.max((new_value - returns) ** 2, (v_clipped - returns) ** 2).mean()
    else:
        v_loss = 0.5 * ((new_value - returns) ** 2).mean()
    ent = entropy.mean()
    loss = pg_loss - cfg.ent_coef * ent + cfg.vf_coef * v_loss
    with torch.no_grad():
        stats = {
            "policy_loss": float(pg_loss),
            "value_loss": float(v_loss),
            "entropy": float(ent),
            "approx_kl": float(((ratio - 1) - logratio).mean()),
            "old_approx_kl": float((-logratio).mean()),
            "clipfrac": float(((ratio - 1).abs() > cfg.clip_coef).float().mean()),
        }
    return loss, stats


def ppo_update(agent: PPOAgent, opt: torch.optim.Optimizer, batch: dict[str, torch.Tensor], cfg: PPOConfig, g: torch.Generator) -> dict[str, float]:
    """``update_epochs`` passes of minibatch steps over a flat batch (B, ...), stopping early once
    the approximate KL exceeds ``target_kl``. Returns the last minibatch's stats plus bookkeeping."""
    n = batch["obs"].shape[0]
    mb = max(1, n // cfg.num_minibatches)
    stats: dict[str, float] = {}
    steps, stop = 0, False
    for _ in range(cfg.update_epochs):
        perm = torch.randperm(n, generator=g).to(batch["obs"].device)
        for lo in range(0, n - mb + 1, mb):
            i = perm[lo : lo + mb]
            logp, ent, v = agent.evaluate_actions(batch["obs"][i], batch["actions"][i])  # (mb,) each
            loss, stats = ppo_loss(logp, batch["logprobs"][i], batch["advantages"][i], v, batch["values"][i],
                                   batch["returns"][i], ent, cfg)
            if cfg.target_kl is not None and stats["approx_kl"] > cfg.target_kl:
                stop = True
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(agent.parameters(), cfg.max_grad_norm)
            opt.step()
            steps += 1
        if stop:
            break
    y, pred = batch["returns"], batch["values"]
    var = float(y.var())
    stats.update({"grad_steps": float(steps), "kl_stop": float(stop),
                  "explained_variance": math.nan if var == 0 else 1.0 - float((y - pred).var()) / var})
    return stats


# ============================================================================ rollouts
ROLLOUT_KEYS = ("obs", "actions", "logprobs", "values", "rewards", "dones", "final_values")
"""Per-step arrays of a rollout, each (T, N, ...); plus ``next_value`` (N,) and episode stats."""


class RolloutCollector:
    """One ManiSkill vector env (``num_envs`` envs; 1 on ``physx_cpu``) with auto partial resets.

    ``collect`` samples T steps from N(actor(obs), std), steps the env with the clipped actions,
    and records everything GAE and the update need; the env state carries over between calls
    (episodes straddle iterations, as in ManiSkill's baseline).
    """

    def __init__(self, task: RobotTaskSpec, sim_backend: str, num_envs: int, ignore_terminations: bool):
        from mani_skill.vector.wrappers.gymnasium import ManiSkillVectorEnv

        from nnit.tasks.maniskill import make_env

        self.raw_env = make_env(task.name, sim_backend=sim_backend, num_envs=num_envs, control_mode=task.control_mode)
        self.env = ManiSkillVectorEnv(self.raw_env, ignore_terminations=ignore_terminations, record_metrics=True)
        self.obs: torch.Tensor | None = None

    def reset(self, seed: int) -> None:
        torch.manual_seed(seed)  # ManiSkill draws unseeded (partial) resets from torch's global RNG
        self.obs, _ = self.env.reset(seed=int(seed))

    @torch.no_grad()
    def collect(self, actor: Callable, critic: Callable, logstd: torch.Tensor, steps: int, g: torch.Generator) -> dict:
        """``actor``: (N, obs) -> (N, act) mean actions; ``critic``: (N, obs) -> (N,) values."""
        obs = self.obs.float()  # (N, obs)
        dev, n = obs.device, obs.shape[0]
        std = logstd.to(dev).exp().reshape(1, -1)  # (1, act)
        out = {k: [] for k in ROLLOUT_KEYS}
        ep_ret, ep_once, ep_end = [], [], []
        for _ in range(steps):
            mean = actor(obs)  # (N, act)
            value = critic(obs)  # (N,)
            action = mean + std * torch.randn(mean.shape, generator=g, device=dev)  # (N, act)
            logprob = torch.distributions.Normal(mean, std.expand_as(mean)).log_prob(action).sum(-1)  # (N,)
            nxt, reward, term, trunc, info = self.env.step(action.clamp(-1.0, 1.0))
            done = (term | trunc).reshape(n)  # (N,)
            final = torch.zeros(n, device=dev)  # (N,)
            if "final_info" in info:
                mask = info["_final_info"].reshape(n)
                final[mask] = critic(info["final_observation"][mask].float())
                fi = info["final_info"]
                ep_ret.append(fi["episode"]["return"][mask].float().cpu())
                ep_once.append(fi["episode"]["success_once"][mask].float().cpu())
                ep_end.append(fi["success"].reshape(n)[mask].float().cpu())
            for k, v in zip(ROLLOUT_KEYS, (obs, action, logprob, value, reward.reshape(n).float(), done.float(), final)):
                out[k].append(v)
            obs = nxt.float()
        self.obs = obs
        roll = {k: torch.stack(v) for k, v in out.items()}  # (T, N, ...)
        roll["next_value"] = critic(obs)  # (N,)
        cat = lambda xs: torch.cat(xs) if xs else torch.zeros(0)  # noqa: E731
        roll.update(ep_return=cat(ep_ret), ep_success_once=cat(ep_once), ep_success_at_end=cat(ep_end))
        return roll

    def close(self) -> None:
        self.env.close()


def _stream_seed(seed: int, worker: int, iteration: int) -> int:
    """A seed for (run seed, worker / env stream, iteration): resets and action noise."""
    return int(np.random.SeedSequence([int(seed), int(worker), int(iteration)]).generate_state(1)[0] & 0x7FFFFFFF)


def _ws_callables(actor: WeightSet, critic: WeightSet) -> tuple[Callable, Callable]:
    return (lambda x: actor(x)[0]), (lambda x: critic(x)[0, :, 0])  # (N, act), (N,)


def _rollout_worker_main(wid: int, task: RobotTaskSpec, ignore_terminations: bool, seed: int, inbox, outbox) -> None:
    """Worker process: one ``physx_cpu`` env. Messages:

    ``("collect", iteration, steps, actor_msg, critic_msg, logstd)`` -> ``("rollout", wid, {name: array})``;
    ``("eval", actor_msg, [seed, ...])`` -> ``("evaluated", wid, [(return, once, at_end), ...])``
    (the harness's episodes of one network; the training stream restarts afterwards); ``("stop",)``.
    """
    from nnit.eval.harness import run_network
    from nnit.eval.workers import weights_from_message

    torch.set_num_threads(1)
    try:
        col = RolloutCollector(task, "physx_cpu", 1, ignore_terminations)
    except Exception as err:  # report instead of hanging the parent
        outbox.put(("error", wid, f"PPO worker {wid} could not create {task.name}: {type(err).__name__}: {err}"))
        return
    outbox.put(("ready", wid))
    try:
        while True:
            msg = inbox.get()
            try:
                if msg[0] == "stop":
                    break
                if msg[0] == "collect":
                    _, it, steps, a_msg, c_msg, logstd = msg
                    s = _stream_seed(seed, wid, it)
                    if col.obs is None:
                        col.reset(s)
                    actor, critic = _ws_callables(weights_from_message(*a_msg), weights_from_message(*c_msg))
                    roll = col.collect(actor, critic, torch.from_numpy(logstd), steps, torch.Generator().manual_seed(s))
                    outbox.put(("rollout", wid, {k: v.numpy() for k, v in roll.items()}))
                elif msg[0] == "eval":
                    res = run_network(col.raw_env, weights_from_message(*msg[1]), msg[2], task.episode_steps)
                    col.obs = None  # the eval episodes replaced the training episode: start a new one
                    outbox.put(("evaluated", wid, res))
            except Exception as err:
                outbox.put(("error", wid, f"PPO worker {wid}, {msg[0]}: {type(err).__name__}: {err}"))
    finally:
        col.close()


class CPURolloutPool(WorkerPool):
    """W worker processes, one ``physx_cpu`` env each (the harness's :class:`~nnit.eval.workers.WorkerPool`)."""

    def __init__(self, task: RobotTaskSpec, num_workers: int, ignore_terminations: bool, seed: int):
        self.task, self.ignore_terminations, self.seed = task, ignore_terminations, seed
        super().__init__(num_workers, _rollout_worker_main, (task, ignore_terminations, seed), label="PPO")

    @property
    def num_envs(self) -> int:
        return self.num_workers

    def collect(self, agent: PPOAgent, iteration: int, steps: int) -> dict[str, torch.Tensor]:
        """Every worker collects ``steps`` steps with the current agent; streams stacked as N."""
        from nnit.eval.workers import weights_message

        a_msg = weights_message(actor_weight_set(agent))
        c_msg = weights_message(WeightSet.from_sequential(agent.critic, "tanh").to("cpu"))
        logstd = agent.actor_logstd.detach().cpu().reshape(-1).numpy().copy()
        for q in self._inboxes:
            q.put(("collect", int(iteration), int(steps), a_msg, c_msg, logstd))
        parts: dict[int, dict] = {}
        for _ in self._inboxes:
            _, wid, roll = self._get()
            parts[wid] = roll
        rolls = [parts[w] for w in range(self.num_workers)]
        out = {k: torch.from_numpy(np.concatenate([r[k] for r in rolls], axis=1)) for k in ROLLOUT_KEYS}  # (T, W, ...)
        out["next_value"] = torch.from_numpy(np.concatenate([r["next_value"] for r in rolls]))  # (W,)
        for k in ("ep_return", "ep_success_once", "ep_success_at_end"):
            out[k] = torch.from_numpy(np.concatenate([r[k] for r in rolls]))
        return out

    def evaluate(self, ws: WeightSet, seeds: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The harness's episodes of one network, on the first worker (the protocol runs a network's episodes in
        order in one env; :func:`nnit.eval.harness.run_network`): (1, E) arrays return, success_once, success_at_end."""
        from nnit.eval.workers import weights_message

        self._inboxes[0].put(("eval", weights_message(ws), [int(s) for s in seeds]))
        return _episode_arrays(self._get()[2])


class InProcessRollouts:
    """The collector in the learner's process: ``physx_cuda`` with many envs, or one ``physx_cpu`` env."""

    def __init__(self, task: RobotTaskSpec, sim_backend: str, num_envs: int, ignore_terminations: bool, seed: int):
        self.task, self.sim, self.seed = task, sim_backend, seed
        self.num_envs = num_envs
        self.col = RolloutCollector(task, sim_backend, num_envs, ignore_terminations)

    def __enter__(self) -> "InProcessRollouts":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.col.close()

    def collect(self, agent: PPOAgent, iteration: int, steps: int) -> dict[str, torch.Tensor]:
        s = _stream_seed(self.seed, 0, iteration)
        if self.col.obs is None:
            self.col.reset(s)
        dev = _device(agent)
        return self.col.collect(agent.actor_mean, agent.value, agent.actor_logstd.detach(), steps, torch.Generator(dev).manual_seed(s))

    def evaluate(self, ws: WeightSet, seeds: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from nnit.eval.harness import evaluate_gpu, run_network

        if self.sim == "physx_cuda":
            r = evaluate_gpu(self.task, ws, len(seeds), base_seed=seeds[0])
            pe = r.per_episode
            return pe["return"], pe["success_once"].astype(bool), pe["success_at_end"].astype(bool)
        res = run_network(self.col.raw_env, ws, seeds, self.task.episode_steps)
        self.col.obs = None
        return _episode_arrays(res)


def _episode_arrays(res: list[tuple[float, bool, bool]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[(return, once, at_end)] per episode -> (1, E) arrays return, success_once, success_at_end."""
    arr = np.asarray(res, dtype=np.float64).T[:, None, :]  # (3, 1, E)
    return arr[0], arr[1].astype(bool), arr[2].astype(bool)


# ============================================================================ training
def _evaluate(collector, agent: PPOAgent, task: RobotTaskSpec, episodes: int, base_seed: int):
    from nnit.eval.results import EvalResult, episode_seeds

    ws = actor_weight_set(agent)
    seeds = episode_seeds(base_seed, episodes)
    t0 = time.perf_counter()
    rets, once, at_end = collector.evaluate(ws, seeds)
    return EvalResult.from_episodes(task, ws.arch.to_dict(), rets, once, at_end, seeds, time.perf_counter() - t0, throughput=False)


def save_ppo_checkpoint(
    out_dir: str | Path,
    agent: PPOAgent,
    cfg: PPOConfig,
    task: RobotTaskSpec,
    step: int,
    iteration: int,
    optimizer: torch.optim.Optimizer | None = None,
    rng: torch.Generator | None = None,
    wall_s: float = 0.0,
) -> Path:
    """Write ``out_dir/checkpoint.safetensors`` (``step`` = env steps) and ``out_dir/actor.safetensors``."""
    out = Path(out_dir)
    config = {"ppo": asdict(cfg), "task": task.name, "obs_dim": task.obs_dim, "act_dim": task.action_dim,
              "control_mode": task.control_mode}
    extra = {"rng": rng.get_state()} if rng is not None else None
    path = save_checkpoint(out / "checkpoint.safetensors", agent, step, config, optimizer=optimizer, extra=extra,
                           meta={"kind": "ppo_agent", "iteration": int(iteration), "wall_s": round(wall_s, 1)})
    actor_weight_set(agent).save(out / "actor.safetensors", {"task": task.name, "control_mode": task.control_mode})
    return path


def _check_resume(saved: PPOConfig, cfg: PPOConfig, path: Path) -> None:
    a, b = asdict(saved), asdict(cfg)
    diff = sorted(k for k in a if k not in _RESUMABLE and a[k] != b[k])
    if diff:
        raise NNiTError(f"{path} was trained with another config ({', '.join(diff)} differ); use a fresh --out directory")


def train_ppo(
    task_name: str,
    cfg: PPOConfig,
    out_dir: str | Path,
    num_workers: int | None = None,
    backend: Literal["auto", "cpu", "cuda"] = "auto",
    progress: bool = True,
) -> Path:
    """Train (or resume) a PPO expert; returns the run directory.

    Resumes from ``out_dir/checkpoint.safetensors`` when it exists (agent, optimizer, env-step
    count, iteration, minibatch RNG): a killed run continues from its last checkpoint; Ctrl-C or SIGTERM
    finishes the iteration in progress, checkpoints it and raises :class:`~nnit.stopping.TrainingStopped`. On CPU,
    ``num_workers`` rollout processes (default one per core; 0 = in this process).
    """
    from torch.utils.tensorboard import SummaryWriter
    from tqdm.auto import tqdm

    from nnit.eval.workers import default_num_workers

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.safetensors"
    task = get_task(task_name, control_mode=cfg.control_mode)
    if not isinstance(task, RobotTaskSpec):
        raise NNiTError(f"PPO experts are for robot tasks; {task.name} is an image task")
    sim = resolve_sim_backend(backend)
    device = torch.device("cuda" if sim == "physx_cuda" else "cpu")
    torch.manual_seed(cfg.seed)
    agent = PPOAgent(task.obs_dim, task.action_dim, cfg.hidden, cfg.init_logstd).to(device)
    opt = torch.optim.Adam(agent.parameters(), lr=cfg.learning_rate, eps=1e-5)
    g = torch.Generator().manual_seed(cfg.seed)
    global_step, iteration, wall = 0, 0, 0.0
    if ckpt_path.exists():
        ck = load_checkpoint(ckpt_path)
        _check_resume(config_from_dict(ck.config["ppo"]), cfg, ckpt_path)
        restore(ck, agent, opt)
        global_step, iteration, wall = ck.step, int(ck.meta["iteration"]), float(ck.meta.get("wall_s", 0.0))
        g.set_state(ck.extra["rng"].to(torch.uint8))
        truncate_jsonl_log(out / "train_log.jsonl", global_step, key="global_step")  # drop iterations redone after a kill
    if global_step >= cfg.total_steps and (out / "eval.json").exists():
        return out

    if sim == "physx_cuda":
        collector = InProcessRollouts(task, sim, cfg.num_envs, cfg.ignore_terminations, cfg.seed)
    else:
        workers = default_num_workers() if num_workers is None else int(num_workers)
        collector = (CPURolloutPool(task, workers, cfg.ignore_terminations, cfg.seed).start() if workers > 0
                     else InProcessRollouts(task, sim, 1, cfg.ignore_terminations, cfg.seed))
    steps_per_env = max(1, cfg.batch_steps // collector.num_envs)
    batch = steps_per_env * collector.num_envs
    writer = SummaryWriter(str(out / "tb"), purge_step=global_step if global_step else None)
    log_path = out / "train_log.jsonl"
    bar = tqdm(total=cfg.total_steps, initial=min(global_step, cfg.total_steps), desc=f"PPO {task.name}", unit="step",
               disable=not progress, dynamic_ncols=True)

    def save() -> None:
        save_ppo_checkpoint(out, agent, cfg, task, global_step, iteration, optimizer=opt, rng=g, wall_s=wall)

    def log(rec: dict, step: int) -> None:
        for key, val in rec.items():
            if isinstance(val, (int, float)) and not (isinstance(val, float) and math.isnan(val)):
                writer.add_scalar(key, val, step)
        with log_path.open("a") as fh:
            fh.write(json.dumps({"global_step": step, **rec}) + "\n")

    try:
        with stop_on_signals() as stop:
            while global_step < cfg.total_steps:
                t0 = time.perf_counter()
                if cfg.anneal_lr:
                    for group in opt.param_groups:
                        group["lr"] = cfg.learning_rate * (1.0 - global_step / cfg.total_steps)
                roll = collector.collect(agent, iteration, steps_per_env)  # (T, N, ...)
                roll = {k: v.to(device) for k, v in roll.items()}
                t_roll = time.perf_counter() - t0
                adv, ret = gae(roll["rewards"], roll["values"], roll["dones"], roll["final_values"], roll["next_value"],
                               cfg.gamma, cfg.gae_lambda)  # (T, N) each
                flat = {k: roll[k].flatten(0, 1) for k in ("obs", "actions", "logprobs", "values")}  # (T*N, ...)
                flat.update(advantages=adv.flatten(), returns=ret.flatten())
                stats = ppo_update(agent, opt, flat, cfg, g)
                global_step += batch
                iteration += 1
                dt = time.perf_counter() - t0
                rec = {f"losses/{k}": v for k, v in stats.items()}
                n_ep = int(roll["ep_return"].numel())
                rec.update({
                    "train/sps": batch / dt, "train/rollout_sps": batch / t_roll, "train/rollout_s": t_roll,
                    "train/update_s": dt - t_roll, "train/learning_rate": opt.param_groups[0]["lr"], "train/episodes": n_ep,
                    "train/std": float(agent.actor_logstd.detach().exp().mean()), "train/reward": float(roll["rewards"].mean()),
                })
                if n_ep:
                    rec.update({"train/episode_return": float(roll["ep_return"].mean()),
                                "train/success_once": float(roll["ep_success_once"].mean()),
                                "train/success_at_end": float(roll["ep_success_at_end"].mean())})
                if iteration % cfg.eval_every == 0 and global_step < cfg.total_steps:
                    r = _evaluate(collector, agent, task, cfg.eval_episodes, cfg.eval_seed)
                    rec.update({"eval/return": float(r.metrics["mean_return"][0]), "eval/return_std": float(r.metrics["std_return"][0]),
                                "eval/success_once": float(r.metrics["success_rate"][0]),
                                "eval/success_at_end": float(r.metrics["success_at_end_rate"][0])})
                wall += time.perf_counter() - t0  # rollout + update + evaluation
                log(rec, global_step)
                bar.update(min(batch, cfg.total_steps - bar.n))
                bar.set_postfix(ret=f"{rec.get('train/episode_return', float('nan')):.1f}",
                                succ=f"{rec.get('train/success_once', float('nan')):.2f}", sps=f"{rec['train/sps']:.0f}")
                stopping = stop.signum is not None and global_step < cfg.total_steps  # checkpoint, then stop
                if stopping or iteration % cfg.checkpoint_every == 0 or global_step >= cfg.total_steps:
                    save()
                if stopping:
                    raise TrainingStopped(global_step, ckpt_path, stop.signum, unit="env step")
        # final evaluation of the deterministic actor (>= 50 episodes at the cpu preset)
        if not ckpt_path.exists():
            save()
        r = _evaluate(collector, agent, task, cfg.final_eval_episodes, cfg.eval_seed)
        r.info.update({"backend": sim, "env_steps_trained": int(global_step), "train_wall_s": round(wall, 1), "iterations": iteration})
        r.save(out / "eval.json", extra={"kind": "ppo_final_eval"})
        log({"eval/return": float(r.metrics["mean_return"][0]), "eval/success_once": float(r.metrics["success_rate"][0]),
             "eval/success_at_end": float(r.metrics["success_at_end_rate"][0])}, global_step)
    finally:
        bar.close()
        writer.close()
        collector.close()
    return out


# ============================================================================ loading, teacher
def load_ppo_agent(path: str | Path) -> tuple[PPOAgent, dict]:
    """The agent of a PPO checkpoint (a file or a run directory) and the checkpoint's config."""
    ck = load_checkpoint(path)
    if ck.meta.get("kind") != "ppo_agent":
        raise NNiTError(f"{ck.path} is not a PPO expert checkpoint (kind {ck.meta.get('kind')!r})")
    cfg = config_from_dict(ck.config["ppo"])
    agent = PPOAgent(ck.config["obs_dim"], ck.config["act_dim"], cfg.hidden, cfg.init_logstd)
    restore(ck, agent)
    agent.eval()
    return agent, ck.config


class PPOActorTeacher:
    """A trained PPO actor as a DAgger teacher: ``obs (B, obs_dim) -> clamp(mean(obs), -1, 1) (B, act_dim)``.

    Deterministic and stateless (the Gaussian's mean; no observation normalization), so it
    satisfies :class:`nnit.experts.teachers.Teacher`; the network is a WeightSet of one, the same
    map the harness evaluates.
    """

    def __init__(self, actor: WeightSet, spec: TeacherSpec):
        if actor.n != 1 or actor.arch.input_dim != spec.obs_dim or actor.arch.output_dim != spec.act_dim:
            raise NNiTError(f"actor {actor.arch} (x{actor.n}) does not match {spec}")
        self.actor = actor.detach()
        self.spec = spec

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> "PPOActorTeacher":
        agent, config = load_ppo_agent(path)
        spec = TeacherSpec(config["task"], config["control_mode"], int(config["obs_dim"]), int(config["act_dim"]))
        return cls(actor_weight_set(agent), spec)

    @torch.no_grad()
    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, obs_dim) or (obs_dim,) -> (B, act_dim) or (act_dim,) in [-1, 1]."""
        if obs.shape[-1] != self.spec.obs_dim or obs.dim() not in (1, 2):
            raise ValueError(f"expected observations of shape (B, {self.spec.obs_dim}), got {tuple(obs.shape)}")
        x = obs.float().reshape(-1, self.spec.obs_dim).cpu()  # (B, obs)
        act = self.actor(x)[0].clamp(-1.0, 1.0)  # (B, act)
        return act[0] if obs.dim() == 1 else act
