"""Evaluate N weight sets on a task at once: E episodes each with fixed, reported seeds.

Protocol (robot tasks):

* **Policy.** ``action = clamp(mlp(obs), -1, 1)``: the MLP's linear output layer is clipped to
  the action box ManiSkill expects (no tanh squashing, no observation normalization; the
  experts and the generated networks are trained for exactly this map).
* **Episodes.** Every episode runs all 50 control steps (terminations ignored, as in ManiSkill's
  baseline evaluation). ``return`` = sum of the normalized dense reward (<= 50);
  ``success_once`` = ``info["success"]`` held at any step; ``success_at_end`` = at the last step.
* **Seeds.** Episode ``e`` of *every* network resets the environment with seed
  ``base_seed + e``. A ``physx_cpu`` env is *not* a function of the seed alone after a plain
  ``reset(seed=...)``: contacts and PhysX caches of the previous episode survive it (PickCube-v1's
  first observation reports ``is_grasped`` from the last episode's final step, and later steps
  differ by small amounts too; ``tests/test_eval_sim.py``). So each network's episodes run in
  order on one worker, the first of them from a rebuilt scene (``reset(options={"reconfigure":
  True})``, a fraction of a second): a network's E episodes are a pure function of (network,
  seeds), and evaluating 1 or 100 networks at a time, with 1 or 16 workers, gives bit-identical
  numbers (tested).
* **Layout.** CPU (``physx_cpu``, one env per process): a pool of worker processes (one torch
  thread each), sized to the cores; forked, or spawned when the caller already loaded SAPIEN. The weights go to each worker once; the parent then
  hands out one job per network and gets back three numbers per episode, so nothing crosses a
  process boundary per step. GPU (``physx_cuda``): one process, one env per network, a batched
  forward of all networks per step; for each seed the initial state of env 0 is broadcast to all
  envs so every network starts from the same state (reproducible for a fixed layout; GPU physics
  is not bitwise batch-invariant and this path is untested on the CPU-only dev machines).

Image tasks are evaluated in one batched forward over the test split (:mod:`nnit.tasks.images`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch

from nnit.eval.workers import WorkerPool, _start_method, default_num_workers  # noqa: F401  (re-exported)
from nnit.fileio import atomic_write_text
from nnit.tasks.registry import ImageTaskSpec, RobotTaskSpec, TaskSpec, check_fits, get_task, resolve_sim_backend
from nnit.weights.mlp import WeightSet

Backend = Literal["auto", "cpu", "cuda"]
EnvFactory = Callable[[RobotTaskSpec], Any]
"""Builds one single-env (CPU) gym env for a task; must be picklable (a top-level function)."""


# ============================================================================ results
@dataclass
class EvalResult:
    """Per-network results of one evaluation (and, for robot tasks, per episode)."""

    task: str
    """Task name."""
    kind: Literal["robot", "image"]
    """Task family."""
    arch: dict
    """The evaluated architecture (``Architecture.to_dict()``)."""
    metrics: dict[str, np.ndarray]
    """Per-network metrics, each shape (N,): robot ``mean_return``, ``std_return``, ``success_rate``,
    ``success_at_end_rate``; image ``accuracy``, ``loss``."""
    per_episode: dict[str, np.ndarray] = field(default_factory=dict)
    """Robot tasks: ``return``, ``success_once``, ``success_at_end``, each shape (N, E)."""
    seeds: list[int] = field(default_factory=list)
    """Episode e of every network used seed ``seeds[e]`` (robot tasks)."""
    info: dict = field(default_factory=dict)
    """How it ran: backend, workers, control mode, wall time, env steps, ..."""

    @property
    def n(self) -> int:
        """Number of networks."""
        return int(len(next(iter(self.metrics.values()))))

    @property
    def primary(self) -> str:
        """The metric networks are ranked by: ``mean_return`` (robot) or ``accuracy`` (image)."""
        return "mean_return" if self.kind == "robot" else "accuracy"

    # ------------------------------------------------------------------ serialization
    def to_dict(self) -> dict:
        return {
            "format": "nnit.eval/1",
            "task": self.task,
            "kind": self.kind,
            "arch": self.arch,
            "num_networks": self.n,
            "seeds": list(self.seeds),
            "info": self.info,
            "metrics": {k: v.tolist() for k, v in self.metrics.items()},
            "per_episode": {k: v.tolist() for k, v in self.per_episode.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> "EvalResult":
        return cls(
            task=d["task"],
            kind=d["kind"],
            arch=d["arch"],
            metrics={k: np.asarray(v, dtype=np.float64) for k, v in d["metrics"].items()},
            per_episode={k: np.asarray(v, dtype=np.float64) for k, v in d.get("per_episode", {}).items()},
            seeds=[int(s) for s in d.get("seeds", [])],
            info=d.get("info", {}),
        )

    def to_csv(self) -> str:
        """One row per network: ``network`` then every metric."""
        buf = io.StringIO()
        names = list(self.metrics)
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["network", *names])
        for i in range(self.n):
            w.writerow([i, *(f"{float(self.metrics[k][i]):.6g}" for k in names)])
        return buf.getvalue()

    def save(self, path: str | os.PathLike, extra: dict | None = None) -> tuple[Path, Path]:
        """Write ``path`` (JSON) and the same stem ``.csv``, each atomically (tmp + rename).

        ``extra`` (e.g. the top-k protocol summary) is stored under the JSON key ``"extra"``.
        """
        path = Path(path)
        d = self.to_dict()
        if extra:
            d["extra"] = extra
        csv_path = path.with_suffix(".csv")
        atomic_write_text(path, json.dumps(d, indent=1) + "\n")
        atomic_write_text(csv_path, self.to_csv())
        return path, csv_path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "EvalResult":
        return cls.from_dict(json.loads(Path(path).read_text()))


def episode_seeds(base_seed: int, episodes: int) -> list[int]:
    """The reset seed of each episode: ``base_seed + e`` (the same for every network)."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    return [int(base_seed) + e for e in range(episodes)]


def aggregate(returns: np.ndarray, success_once: np.ndarray, success_at_end: np.ndarray) -> dict[str, np.ndarray]:
    """Per-network metrics from (N, E) episode arrays: mean / std (population, ddof=0) of the return,
    success rates (fractions of episodes)."""
    returns = np.asarray(returns, dtype=np.float64)
    return {
        "mean_return": returns.mean(axis=1),
        "std_return": returns.std(axis=1),
        "success_rate": np.asarray(success_once, dtype=np.float64).mean(axis=1),
        "success_at_end_rate": np.asarray(success_at_end, dtype=np.float64).mean(axis=1),
    }


# ============================================================================ one episode
def policy_action(ws: WeightSet, obs: torch.Tensor) -> torch.Tensor:
    """``clamp(mlp(obs), -1, 1)`` for every network: obs (B, in) or (N, B, in) -> (N, B, out)."""
    return ws(obs).clamp_(-1.0, 1.0)


def run_episode(
    env,
    ws1: WeightSet,
    seed: int,
    steps: int,
    teacher: Callable[[torch.Tensor], torch.Tensor] | None = None,
    beta: float = 0.0,
    rng: np.random.Generator | None = None,
    record: list | None = None,
    rebuild: bool = False,
) -> tuple[float, bool, bool]:
    """Run one network (a WeightSet of one) for ``steps`` steps from ``reset(seed=seed)``
    (with ``rebuild``, from a rebuilt scene: ``reset(seed=seed, options={"reconfigure": True})``).

    Terminations and truncations are ignored (the episode always runs ``steps`` steps).
    Returns (return, success_once, success_at_end).

    DAgger rollouts: with a ``teacher``, each step executes the teacher's action with probability
    ``beta`` (drawn from ``rng``) instead of the network's; with ``record``, every visited
    observation is appended to that list (as a float32 numpy row).
    """
    obs, _ = env.reset(seed=int(seed), options={"reconfigure": True} if rebuild else None)
    total, once, last = 0.0, False, False
    with torch.no_grad():
        for _ in range(steps):
            x = torch.as_tensor(obs, dtype=torch.float32).reshape(1, -1)  # (1, in)
            if record is not None:
                record.append(x[0].numpy().copy())
            if teacher is not None and rng is not None and rng.random() < beta:
                act = teacher(x).clamp(-1.0, 1.0)  # (1, out)
            else:
                act = policy_action(ws1, x)[0]  # (1, out)
            obs, reward, _term, _trunc, info = env.step(act)
            total += float(torch.as_tensor(reward).reshape(-1)[0])
            last = bool(torch.as_tensor(info.get("success", False)).reshape(-1)[0])
            once = once or last
    return total, once, last


def run_network(env, ws1: WeightSet, seeds: Sequence[int], steps: int) -> list[tuple[float, bool, bool]]:
    """The evaluation protocol's episodes of one network: ``seeds`` in order, the first from a rebuilt scene,
    so the result does not depend on what ran in ``env`` before (see the module docstring)."""
    return [run_episode(env, ws1, s, steps, rebuild=e == 0) for e, s in enumerate(seeds)]


def run_dagger_job(env, task: RobotTaskSpec, job: tuple, teachers: dict) -> tuple:
    """One beta-mixed, recorded episode: ``job = (arch_dict, arrays, seed, beta, mix_seed, teacher_checkpoint)``.

    The teacher is the task's scripted one, or with ``teacher_checkpoint`` (a path; may be left off
    the tuple) the PPO actor saved there; ``teachers`` caches them by (task, checkpoint).
    Returns (return, success_once, success_at_end, states (steps, obs_dim) float32)."""
    from nnit.experts.teachers import get_teacher

    arch, arrays, seed, beta, mix_seed, *rest = job
    checkpoint = rest[0] if rest else None
    key = (task.name, checkpoint)
    if key not in teachers:
        teachers[key] = get_teacher(task.name, checkpoint=checkpoint)
    states: list = []
    ret, once, at_end = run_episode(env, _weights_from_message(arch, arrays), seed, task.episode_steps,
                                    teacher=teachers[key], beta=beta, rng=np.random.default_rng(mix_seed), record=states)
    return ret, once, at_end, np.stack(states)


def default_env_factory(task: RobotTaskSpec):
    """A ManiSkill ``physx_cpu`` env with rendering off (imports the simulator)."""
    from nnit.tasks.maniskill import make_env

    return make_env(task.name, sim_backend="physx_cpu", control_mode=task.control_mode)


# ============================================================================ CPU worker pool
def _worker_main(wid: int, task: RobotTaskSpec, env_factory: EnvFactory, inbox, outbox) -> None:
    """Worker process: build one env, then serve messages until ``("stop",)``.

    ``("weights", arch_dict, [arrays])`` replaces the networks; ``("run", net, seeds)`` runs that
    network's episodes (:func:`run_network`) and answers ``("done", net, [(return, once, at_end), ...])``;
    ``("collect", job_id, job)`` runs a DAgger episode (:func:`run_dagger_job`) and answers
    ``("collected", job_id, return, once, at_end, states)``.
    """
    torch.set_num_threads(1)
    try:
        env = env_factory(task)
    except Exception as err:  # report the failure instead of hanging the parent
        outbox.put(("error", wid, f"worker {wid} could not create {task.name}: {type(err).__name__}: {err}"))
        return
    outbox.put(("ready", wid))
    nets: list[WeightSet] = []
    teachers: dict = {}
    try:
        while True:
            msg = inbox.get()
            if msg[0] == "stop":
                break
            if msg[0] == "collect":
                try:
                    outbox.put(("collected", msg[1], *run_dagger_job(env, task, msg[2], teachers)))
                except Exception as err:
                    outbox.put(("error", wid, f"worker {wid}, DAgger job {msg[1]}: {type(err).__name__}: {err}"))
                continue
            if msg[0] == "weights":
                ws = _weights_from_message(msg[1], msg[2])
                nets = [ws[i] for i in range(ws.n)]  # per-network views, built once
                continue
            _, net, seeds = msg
            try:
                episodes = run_network(env, nets[net], seeds, task.episode_steps)
            except Exception as err:
                outbox.put(("error", wid, f"worker {wid}, network {net}, seeds {seeds}: {type(err).__name__}: {err}"))
                continue
            outbox.put(("done", net, episodes))
    finally:
        env.close()


def _weights_message(ws: WeightSet) -> tuple[dict, list[np.ndarray]]:
    arrays = []
    for w, b in zip(ws.weights, ws.biases):
        arrays += [w.detach().cpu().float().numpy(), b.detach().cpu().float().numpy()]
    return ws.arch.to_dict(), arrays


def _weights_from_message(arch_dict: dict, arrays: list[np.ndarray]) -> WeightSet:
    from nnit.weights.architecture import Architecture

    arch = Architecture.from_dict(arch_dict)
    t = [torch.from_numpy(a) for a in arrays]
    return WeightSet(arch, t[0::2], t[1::2])


class CPUEvaluator(WorkerPool):
    """A pool of worker processes, each holding one ``physx_cpu`` env of one task.

    Reuse one evaluator for many weight sets (dataset building evaluates thousands) so the
    workers and envs are built once. ``num_workers=0`` runs episodes in the calling process.

    >>> with CPUEvaluator(get_task("PushCube-v1"), num_workers=2) as ev:   # doctest: +SKIP
    ...     result = ev.evaluate(ws, episodes=10, base_seed=0)
    """

    def __init__(self, task: RobotTaskSpec | str, num_workers: int | None = None, env_factory: EnvFactory | None = None):
        self.task = get_task(task)
        if not isinstance(self.task, RobotTaskSpec):
            raise ValueError(f"CPUEvaluator runs robot tasks; {self.task.name} is an image task")
        self.env_factory = env_factory or default_env_factory
        super().__init__(default_num_workers() if num_workers is None else int(num_workers), _worker_main,
                         (self.task, self.env_factory), label="evaluation")
        self._env = None  # the in-process env when num_workers == 0
        self._teachers: dict = {}  # the in-process DAgger teachers, by (task, checkpoint)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "CPUEvaluator":
        if self._procs or self._env is not None:
            return self
        if self.num_workers == 0:
            torch.set_num_threads(1)
            self._env = self.env_factory(self.task)
            return self
        super().start()
        return self

    def close(self) -> None:
        super().close()
        if self._env is not None:
            self._env.close()
            self._env = None

    # ------------------------------------------------------------------ evaluation
    def run_episodes(self, ws: WeightSet, seeds: Sequence[int], progress: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Episode arrays (N, E): return, success_once, success_at_end; episode e uses ``seeds[e]``."""
        from tqdm.auto import tqdm

        self.start()
        n, e_count = ws.n, len(seeds)
        rets = np.zeros((n, e_count))
        once = np.zeros((n, e_count), dtype=bool)
        at_end = np.zeros((n, e_count), dtype=bool)
        seeds = [int(x) for x in seeds]
        bar = tqdm(total=n * e_count, desc=f"eval {self.task.name}", unit="ep", disable=not progress, leave=False)

        def store(i: int, episodes: list) -> None:
            for e, (r, o, a) in enumerate(episodes):
                rets[i, e], once[i, e], at_end[i, e] = r, o, a
            bar.update(len(episodes))

        try:
            if self._env is not None:  # in-process
                for i in range(n):
                    store(i, run_network(self._env, ws[i], seeds, self.task.episode_steps))
                return rets, once, at_end
            arch, arrays = _weights_message(ws)
            for q in self._inboxes:
                q.put(("weights", arch, arrays))
            # one job per network; keep two queued per worker so a worker never waits for the parent
            it = iter(range(n))
            owner: dict[int, int] = {}

            def feed(w: int) -> None:
                i = next(it, None)
                if i is not None:
                    self._inboxes[w].put(("run", i, seeds))
                    owner[i] = w

            for w in range(len(self._inboxes)):
                feed(w)
                feed(w)
            for _ in range(n):
                _, i, episodes = self._get()  # an ("error", ...) message raises
                store(i, episodes)
                feed(owner.pop(i))
            return rets, once, at_end
        finally:
            bar.close()

    def collect(self, students: Sequence[WeightSet], seeds: Sequence[int], beta: float, mix_seed: int,
                teacher_checkpoint: str | os.PathLike | None = None) -> tuple[list[np.ndarray], dict]:
        """DAgger rollouts: episode j runs ``students[j]`` (a WeightSet of one) from ``seeds[j]``,
        executing the teacher's action with probability ``beta`` at each step. The teacher is the
        task's scripted one, or the PPO expert saved at ``teacher_checkpoint`` (checkpoint file or
        run directory; see :func:`nnit.experts.teachers.get_teacher`).

        Returns the visited states of every episode, (steps, obs_dim) each, in job order, and
        rollout statistics (mean return, success rate of the mixed policy). Rollouts use plain resets, so
        an episode carries some contact state over from the worker's previous one (module docstring);
        they are training data, and episode j always runs on worker j % W in order, so a run with the
        same worker count repeats exactly."""
        self.start()
        ckpt = None if teacher_checkpoint is None else str(teacher_checkpoint)
        jobs = []
        for j, (ws1, s) in enumerate(zip(students, seeds)):
            check_weights(self.task, ws1)
            arch, arrays = _weights_message(ws1)
            jobs.append((arch, arrays, int(s), float(beta), int(mix_seed) * 1009 + j, ckpt))
        results: list = [None] * len(jobs)
        if self._env is not None:
            for j, job in enumerate(jobs):
                results[j] = run_dagger_job(self._env, self.task, job, self._teachers)
        else:
            for j, job in enumerate(jobs):
                self._inboxes[j % len(self._inboxes)].put(("collect", j, job))
            for _ in jobs:
                msg = self._get()  # an ("error", ...) message raises
                results[msg[1]] = msg[2:]
        stats = {
            "rollout_return": float(np.mean([r[0] for r in results])),
            "success_rate": float(np.mean([r[1] for r in results])),
            "episodes": len(results),
        }
        return [r[3] for r in results], stats

    def evaluate(self, ws: WeightSet, episodes: int = 10, base_seed: int = 0, progress: bool = False) -> EvalResult:
        """Evaluate every network of ``ws`` for ``episodes`` episodes (seeds ``base_seed + e``)."""
        check_weights(self.task, ws)
        seeds = episode_seeds(base_seed, episodes)
        t0 = time.perf_counter()
        rets, once, at_end = self.run_episodes(ws, seeds, progress=progress)
        wall = time.perf_counter() - t0
        steps = ws.n * episodes * self.task.episode_steps
        return EvalResult(
            task=self.task.name,
            kind="robot",
            arch=ws.arch.to_dict(),
            metrics=aggregate(rets, once, at_end),
            per_episode={"return": rets, "success_once": once.astype(np.float64), "success_at_end": at_end.astype(np.float64)},
            seeds=seeds,
            info={
                "backend": "physx_cpu",
                "num_workers": self.num_workers,
                "control_mode": self.task.control_mode,
                "episode_steps": self.task.episode_steps,
                "policy": "clamp(mlp(obs), -1, 1)",
                "base_seed": int(base_seed),
                "episodes": int(episodes),
                "env_steps": int(steps),
                "wall_s": round(wall, 3),
                "env_steps_per_s": round(steps / wall, 1) if wall > 0 else math.nan,
            },
        )


# ============================================================================ GPU (physx_cuda)
def evaluate_gpu(task: RobotTaskSpec, ws: WeightSet, episodes: int, base_seed: int = 0, progress: bool = False, max_envs: int = 1024) -> EvalResult:
    """Many envs in one process (``physx_cuda``): networks in chunks of ``max_envs``, one env each."""
    from tqdm.auto import tqdm

    from nnit.tasks.maniskill import make_env

    check_weights(task, ws)
    seeds = episode_seeds(base_seed, episodes)
    device = torch.device("cuda")
    n = ws.n
    rets = np.zeros((n, episodes))
    once = np.zeros((n, episodes), dtype=bool)
    at_end = np.zeros((n, episodes), dtype=bool)
    t0 = time.perf_counter()
    bar = tqdm(total=n * episodes, desc=f"eval {task.name} (gpu)", unit="ep", disable=not progress, leave=False)
    for lo in range(0, n, max_envs):
        sub = ws[lo : lo + max_envs].to(device)  # (n_sub networks)
        env = make_env(task.name, sim_backend="physx_cuda", num_envs=sub.n, control_mode=task.control_mode)
        u = env.unwrapped
        try:
            for e, s in enumerate(seeds):
                env.reset(seed=s)
                state = _broadcast_env0(u.get_state_dict())
                u.set_state_dict(state)
                obs = u.get_obs()  # (n_sub, obs)
                r_sum = torch.zeros(sub.n, device=device)
                o_any = torch.zeros(sub.n, dtype=torch.bool, device=device)
                last = o_any
                with torch.no_grad():
                    for _ in range(task.episode_steps):
                        act = policy_action(sub, obs.float().unsqueeze(1))[:, 0]  # (n_sub, act)
                        obs, reward, _t, _tr, info = env.step(act)
                        r_sum += reward.float()
                        last = info["success"].bool()
                        o_any |= last
                rets[lo : lo + sub.n, e] = r_sum.cpu().numpy()
                once[lo : lo + sub.n, e] = o_any.cpu().numpy()
                at_end[lo : lo + sub.n, e] = last.cpu().numpy()
                bar.update(sub.n)
        finally:
            env.close()
    bar.close()
    wall = time.perf_counter() - t0
    steps = n * episodes * task.episode_steps
    return EvalResult(
        task=task.name,
        kind="robot",
        arch=ws.arch.to_dict(),
        metrics=aggregate(rets, once, at_end),
        per_episode={"return": rets, "success_once": once.astype(np.float64), "success_at_end": at_end.astype(np.float64)},
        seeds=seeds,
        info={"backend": "physx_cuda", "control_mode": task.control_mode, "episode_steps": task.episode_steps,
              "policy": "clamp(mlp(obs), -1, 1)", "base_seed": int(base_seed), "episodes": int(episodes),
              "env_steps": int(steps), "wall_s": round(wall, 3), "env_steps_per_s": round(steps / wall, 1)},
    )


def _broadcast_env0(state):
    """Copy env 0's entry of every (num_envs, ...) tensor in a nested state dict to all envs."""
    if isinstance(state, dict):
        return {k: _broadcast_env0(v) for k, v in state.items()}
    return state[:1].expand_as(state).clone()


# ============================================================================ the one entry point
def check_weights(task: TaskSpec, ws: WeightSet) -> None:
    """Raise a ValueError naming the mismatch when ``ws`` cannot be evaluated on ``task``."""
    check_fits(task, ws.arch)
    ws.check_finite()


def evaluate(
    task: str | TaskSpec,
    weights: WeightSet,
    episodes: int = 10,
    base_seed: int = 0,
    backend: Backend = "auto",
    num_workers: int | None = None,
    control_mode: str | None = None,
    data_dir: str | None = None,
    progress: bool = True,
    env_factory: EnvFactory | None = None,
) -> EvalResult:
    """Evaluate all N networks of ``weights`` on ``task`` and return per-network results.

    Robot tasks: ``episodes`` episodes per network with seeds ``base_seed + e``; ``backend``
    ``auto`` picks ``cuda`` (physx_cuda) when a GPU is visible, else ``cpu`` (physx_cpu worker
    pool of ``num_workers`` processes, default one per core). Image tasks: accuracy and loss on
    the test split in ``data_dir`` (``episodes`` / seeds unused).
    Raises ValueError (TaskError / WeightError) for unknown tasks, dims that do not fit, or NaN weights.
    """
    spec = get_task(task, control_mode=control_mode)  # type: ignore[arg-type]
    check_weights(spec, weights)
    if isinstance(spec, ImageTaskSpec):
        from nnit.tasks.images import evaluate_image_task

        return evaluate_image_task(spec, weights, data_dir=data_dir)
    sim = resolve_sim_backend(backend)
    if sim == "physx_cuda" and env_factory is None:
        return evaluate_gpu(spec, weights, episodes, base_seed, progress=progress)
    workers = default_num_workers() if num_workers is None else num_workers
    workers = min(workers, weights.n * episodes) if workers > 0 else 0
    with CPUEvaluator(spec, num_workers=workers, env_factory=env_factory) as ev:
        return ev.evaluate(weights, episodes, base_seed, progress=progress)


# ============================================================================ rollout video
def record_video(
    task: str | RobotTaskSpec,
    weights: WeightSet,
    path: str | os.PathLike,
    network: int = 0,
    seed: int = 0,
    control_mode: str | None = None,
    fps: int = 20,
) -> dict:
    """Render one episode of network ``network`` (seed ``seed``) to ``path`` (.mp4 or .gif).

    Uses the CPU renderer (lavapipe on machines without a GPU: slow, ~1 s per frame is normal).
    Written atomically. Returns the episode's return / success and the frame count.
    """
    import imageio.v2 as imageio

    from nnit.tasks.maniskill import make_env

    spec = get_task(task, control_mode=control_mode)  # type: ignore[arg-type]
    if not isinstance(spec, RobotTaskSpec):
        raise ValueError(f"videos are for robot tasks; {spec.name} is an image task")
    check_weights(spec, weights)
    if not -weights.n <= network < weights.n:
        raise ValueError(f"network {network} out of range: the weight set holds {weights.n}")
    path = Path(path)
    if path.suffix.lower() not in (".mp4", ".gif"):
        raise ValueError(f"video path must end in .mp4 or .gif, got {path.name}")
    env = make_env(spec.name, sim_backend="physx_cpu", control_mode=spec.control_mode, render=True)
    net = weights[network].detach().to(torch.float32)
    frames = []
    total, once = 0.0, False
    try:
        obs, _ = env.reset(seed=int(seed))
        frames.append(_frame(env.render()))
        with torch.no_grad():
            for _ in range(spec.episode_steps):
                act = policy_action(net, torch.as_tensor(obs, dtype=torch.float32).reshape(1, -1))[0]
                obs, reward, _t, _tr, info = env.step(act)
                total += float(torch.as_tensor(reward).reshape(-1)[0])
                once = once or bool(torch.as_tensor(info.get("success", False)).reshape(-1)[0])
                frames.append(_frame(env.render()))
    finally:
        env.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    if path.suffix.lower() == ".gif":
        imageio.mimsave(tmp, frames, duration=1000 / fps, loop=0)
    else:
        imageio.mimsave(tmp, frames, fps=fps, macro_block_size=1)
    os.replace(tmp, path)
    return {"path": str(path), "network": int(network), "seed": int(seed), "return": total, "success_once": once, "frames": len(frames)}


def _frame(img) -> np.ndarray:
    a = img.cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
    return a.reshape(a.shape[-3:]).astype(np.uint8)  # (H, W, 3), dropping the env batch dim
