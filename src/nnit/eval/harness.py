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

The episode loop itself is :mod:`nnit.tasks.rollout` (shared with videos, teachers, PPO and DAgger);
results are built by :class:`nnit.eval.results.EvalResult` (re-exported here).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch

from nnit.errors import NNiTError
from nnit.eval.results import POLICY, EvalResult, aggregate, episode_seeds  # noqa: F401  (re-exported)
from nnit.eval.workers import WorkerPool, default_num_workers, weights_from_message, weights_message
from nnit.tasks.registry import ImageTaskSpec, RobotTaskSpec, TaskError, TaskSpec, check_fits, get_task, resolve_sim_backend
from nnit.tasks.rollout import mlp_policy, plain_reset, policy_action, reset_from_env0, run_episodes  # noqa: F401
from nnit.tasks.rollout import run_episode as _rollout_episode
from nnit.weights.mlp import WeightSet

Backend = Literal["auto", "cpu", "cuda"]
EnvFactory = Callable[[RobotTaskSpec], Any]
"""Builds one single-env (CPU) gym env for a task; must be picklable (a top-level function)."""


# ============================================================================ one network's episodes
def run_episode(env, ws1: WeightSet, seed: int, steps: int, rebuild: bool = False) -> tuple[float, bool, bool]:
    """One episode of one network (a WeightSet of one) in ``env``: ``steps`` steps from ``reset(seed=seed)``
    (with ``rebuild``, from a rebuilt scene), terminations ignored (:func:`nnit.tasks.rollout.run_episode`).
    Returns (return, success_once, success_at_end)."""
    return _rollout_episode(env, mlp_policy(ws1), seed, steps, rebuild=rebuild).outcome()


def run_network(env, ws1: WeightSet, seeds: Sequence[int], steps: int) -> list[tuple[float, bool, bool]]:
    """The evaluation protocol's episodes of one network: ``seeds`` in order, the first from a rebuilt scene,
    so the result does not depend on what ran in ``env`` before (see the module docstring)."""
    return [ep.outcome() for ep in run_episodes(env, mlp_policy(ws1), seeds, steps)]


def default_env_factory(task: RobotTaskSpec):
    """A ManiSkill ``physx_cpu`` env with rendering off (imports the simulator)."""
    from nnit.tasks.maniskill import make_env

    return make_env(task.name, sim_backend="physx_cpu", control_mode=task.control_mode)


# ============================================================================ CPU worker pool
def start_worker_env(wid: int, task: RobotTaskSpec, env_factory: EnvFactory, outbox, label: str):
    """A simulator worker's start: one torch thread, its env, then ``("ready", wid)``; on failure ``("error", ...)``
    goes to the parent (instead of leaving it waiting) and None is returned."""
    torch.set_num_threads(1)
    try:
        env = env_factory(task)
    except Exception as err:
        outbox.put(("error", wid, f"{label} {wid} could not create {task.name}: {type(err).__name__}: {err}"))
        return None
    outbox.put(("ready", wid))
    return env


def _worker_main(wid: int, task: RobotTaskSpec, env_factory: EnvFactory, inbox, outbox) -> None:
    """Worker process: build one env, then serve messages until ``("stop",)``.

    ``("weights", arch_dict, [arrays])`` replaces the networks; ``("run", net, seeds)`` runs that
    network's episodes (:func:`run_network`) and answers ``("done", net, [(return, once, at_end), ...])``.
    """
    env = start_worker_env(wid, task, env_factory, outbox, "worker")
    if env is None:
        return
    nets: list[WeightSet] = []
    try:
        while True:
            msg = inbox.get()
            if msg[0] == "stop":
                break
            if msg[0] == "weights":
                ws = weights_from_message(msg[1], msg[2])
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


class SimulatorPool(WorkerPool):
    """Worker processes, each holding one ``physx_cpu`` env of one robot task, serving ``worker_main``'s messages;
    ``num_workers=0`` keeps one env in the calling process instead (``self._env``). The base of the evaluator
    and of the DAgger collector (:class:`nnit.ghn.collect.DaggerCollector`)."""

    role = "simulation"
    """What the pool does, for its error messages."""

    def __init__(self, task: RobotTaskSpec | str, num_workers: int | None, env_factory: EnvFactory | None, worker_main) -> None:
        self.task = get_task(task)
        if not isinstance(self.task, RobotTaskSpec):
            raise NNiTError(f"{type(self).__name__} runs robot tasks; {self.task.name} is an image task")
        self.env_factory = env_factory or default_env_factory
        super().__init__(default_num_workers() if num_workers is None else int(num_workers), worker_main,
                         (self.task, self.env_factory), label=self.role)
        self._env = None  # the in-process env when num_workers == 0

    def start(self):
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


class CPUEvaluator(SimulatorPool):
    """A pool of worker processes, each holding one ``physx_cpu`` env of one task.

    Reuse one evaluator for many weight sets (dataset building evaluates thousands) so the
    workers and envs are built once. ``num_workers=0`` runs episodes in the calling process.

    >>> with CPUEvaluator(get_task("PushCube-v1"), num_workers=2) as ev:   # doctest: +SKIP
    ...     result = ev.evaluate(ws, episodes=10, base_seed=0)
    """

    role = "evaluation"

    def __init__(self, task: RobotTaskSpec | str, num_workers: int | None = None, env_factory: EnvFactory | None = None):
        super().__init__(task, num_workers, env_factory, _worker_main)

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
            arch, arrays = weights_message(ws)
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

    def evaluate(self, ws: WeightSet, episodes: int = 10, base_seed: int = 0, progress: bool = False) -> EvalResult:
        """Evaluate every network of ``ws`` for ``episodes`` episodes (seeds ``base_seed + e``)."""
        check_weights(self.task, ws)
        seeds = episode_seeds(base_seed, episodes)
        t0 = time.perf_counter()
        rets, once, at_end = self.run_episodes(ws, seeds, progress=progress)
        wall = time.perf_counter() - t0
        return EvalResult.from_episodes(self.task, ws.arch.to_dict(), rets, once, at_end, seeds, wall,
                                        run={"backend": "physx_cpu", "num_workers": self.num_workers})


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
        try:
            for e, s in enumerate(seeds):
                ep = _rollout_episode(env, mlp_policy(sub), s, task.episode_steps, reset=reset_from_env0)  # (n_sub,) each
                rets[lo : lo + sub.n, e] = ep.returns
                once[lo : lo + sub.n, e] = ep.success_once
                at_end[lo : lo + sub.n, e] = ep.success_at_end
                bar.update(sub.n)
        finally:
            env.close()
    bar.close()
    return EvalResult.from_episodes(task, ws.arch.to_dict(), rets, once, at_end, seeds, time.perf_counter() - t0,
                                    run={"backend": "physx_cuda"})


# ============================================================================ image tasks
def evaluate_image_task(task: ImageTaskSpec | str, ws: WeightSet, data_dir: str | os.PathLike | None = None, split: str = "test") -> EvalResult:
    """Accuracy and loss of every network on the task's ``split`` (:mod:`nnit.tasks.images`), one batched forward."""
    from nnit.tasks.images import classify, load_split

    spec = get_task(task)
    if not isinstance(spec, ImageTaskSpec):
        raise TaskError(f"{spec.name} is not an image task")
    check_weights(spec, ws)
    t0 = time.perf_counter()
    x, y = load_split(spec, split, data_dir)
    acc, loss = classify(ws.detach().to(torch.float32), x, y)
    return EvalResult.from_classification(spec, ws.arch.to_dict(), acc.numpy(), loss.numpy(), info={
        "split": split,
        "num_examples": int(len(y)),
        "downsample": spec.downsample,
        "input": f"pixels/255, {spec.downsample}x{spec.downsample} average pool -> {spec.side}x{spec.side}",
        "data_dir": str(data_dir or spec.default_dir),
        "wall_s": round(time.perf_counter() - t0, 3),
    })


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
        raise NNiTError(f"videos are for robot tasks; {spec.name} is an image task")
    check_weights(spec, weights)
    if not -weights.n <= network < weights.n:
        raise NNiTError(f"network {network} out of range: the weight set holds {weights.n}")
    path = Path(path)
    if path.suffix.lower() not in (".mp4", ".gif"):
        raise NNiTError(f"video path must end in .mp4 or .gif, got {path.name}")
    env = make_env(spec.name, sim_backend="physx_cpu", control_mode=spec.control_mode, render=True)
    net = weights[network].detach().to(torch.float32)
    frames: list[np.ndarray] = []
    try:
        (ep,) = run_episodes(env, mlp_policy(net), [seed], spec.episode_steps,
                             on_reset=lambda obs: frames.append(_frame(env.render())),
                             on_step=lambda step: frames.append(_frame(env.render())))
    finally:
        env.close()
    total, once, _ = ep.outcome()
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
