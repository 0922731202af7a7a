"""DAgger collection: beta-mixed rollouts of GHN students whose visited states the teacher labels.

An episode runs a student network (a WeightSet of one) through the shared episode loop
(:func:`nnit.tasks.rollout.run_episode`); at every step the teacher's action is executed instead of
the student's with probability ``beta`` (one draw per step from the job's own generator), and the
observation the action was chosen on is recorded. The teacher is the task's scripted one or a PPO
expert (:func:`nnit.experts.teachers.get_teacher`).

:class:`DaggerCollector` runs the episodes on a pool of ``physx_cpu`` worker processes (or in the
calling process with ``num_workers=0``). Episode j always runs on worker j % W, in order, and with
plain resets (an episode carries some contact state over from the worker's previous one; these
are training data, not evaluations), so a run with the same worker count repeats exactly.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from nnit.eval.harness import EnvFactory, SimulatorPool, check_weights, start_worker_env
from nnit.eval.workers import weights_from_message, weights_message
from nnit.tasks.registry import RobotTaskSpec
from nnit.tasks.rollout import Policy, Step, mlp_policy, run_episode
from nnit.weights.mlp import WeightSet


def mixed_policy(student: Policy, teacher: Policy, beta: float, rng: np.random.Generator) -> Policy:
    """At each call the teacher's action with probability ``beta`` (one ``rng.random()`` draw), else the student's."""
    return lambda obs: teacher(obs) if rng.random() < beta else student(obs)


def dagger_episode(
    env,
    student: WeightSet,
    seed: int,
    steps: int,
    teacher: Policy,
    beta: float,
    rng: np.random.Generator,
    record: list | None = None,
) -> tuple[float, bool, bool]:
    """One beta-mixed episode of ``student`` (a WeightSet of one) from a plain ``reset(seed=seed)``.

    With ``record``, every observation an action was chosen on is appended (a float32 numpy row).
    Returns (return, success_once, success_at_end) of the mixed policy."""

    def keep(step: Step) -> None:
        record.append(step.obs[0].numpy().copy())

    policy = mixed_policy(mlp_policy(student), teacher, beta, rng)
    return run_episode(env, policy, seed, steps, on_step=keep if record is not None else None).outcome()


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
    ret, once, at_end = dagger_episode(env, weights_from_message(arch, arrays), seed, task.episode_steps, teachers[key],
                                       beta, np.random.default_rng(mix_seed), record=states)
    return ret, once, at_end, np.stack(states)


def _dagger_worker_main(wid: int, task: RobotTaskSpec, env_factory: EnvFactory, inbox, outbox) -> None:
    """Worker process: one env; ``("collect", job_id, job)`` runs :func:`run_dagger_job` and answers
    ``("collected", job_id, return, once, at_end, states)``; ``("stop",)`` ends it."""
    env = start_worker_env(wid, task, env_factory, outbox, "DAgger worker")
    if env is None:
        return
    teachers: dict = {}
    try:
        while True:
            msg = inbox.get()
            if msg[0] == "stop":
                break
            try:
                outbox.put(("collected", msg[1], *run_dagger_job(env, task, msg[2], teachers)))
            except Exception as err:
                outbox.put(("error", wid, f"worker {wid}, DAgger job {msg[1]}: {type(err).__name__}: {err}"))
    finally:
        env.close()


class DaggerCollector(SimulatorPool):
    """A pool of worker processes, each holding one ``physx_cpu`` env of one task, running DAgger
    episodes. ``num_workers=0`` runs them in the calling process."""

    role = "DAgger"

    def __init__(self, task: RobotTaskSpec | str, num_workers: int | None = None, env_factory: EnvFactory | None = None):
        super().__init__(task, num_workers, env_factory, _dagger_worker_main)
        self._teachers: dict = {}  # the in-process teachers, by (task, checkpoint)

    def collect(self, students: Sequence[WeightSet], seeds: Sequence[int], beta: float, mix_seed: int,
                teacher_checkpoint: str | os.PathLike | None = None) -> tuple[list[np.ndarray], dict]:
        """DAgger rollouts: episode j runs ``students[j]`` (a WeightSet of one) from ``seeds[j]``,
        executing the teacher's action with probability ``beta`` at each step (generator seed
        ``mix_seed * 1009 + j``). The teacher is the task's scripted one, or the PPO expert saved at
        ``teacher_checkpoint`` (checkpoint file or run directory).

        Returns the visited states of every episode, (steps, obs_dim) each, in job order, and
        rollout statistics (mean return, success rate of the mixed policy)."""
        self.start()
        ckpt = None if teacher_checkpoint is None else str(teacher_checkpoint)
        jobs = []
        for j, (ws1, s) in enumerate(zip(students, seeds)):
            check_weights(self.task, ws1)
            arch, arrays = weights_message(ws1)
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
