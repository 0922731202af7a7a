"""ManiSkill3 robot tasks: PickCube-v1, PushCube-v1 and StackCubeEasy-v1 with state observations.

* **StackCubeEasy-v1** is StackCube-v1 with the goal cube B built as a *kinematic* body (paper
  Sec. 6): the robot can touch it but never move it. It is registered with ManiSkill by
  :func:`register_stack_cube_easy`, which runs when this module is imported (the registration is
  idempotent; ManiSkill's registry, not this module, holds the state).
* Episodes last 50 control steps (20 Hz control, 100 Hz physics); the reward is ManiSkill's
  ``normalized_dense`` reward (<= 1 per step, so a return is <= 50); success comes from the
  environment's own ``info["success"]``.
* Simulation backends: ``physx_cpu`` (one env per process; vectorize across processes) and
  ``physx_cuda`` (many envs in one process). Rendering is off (``render_backend="none"``) unless
  a video is requested.

This module is the edge where ``mani_skill`` is imported: importing it imports ManiSkill (heavy,
~2 s) and registers StackCubeEasy-v1. The task specs (dims, thresholds) live in
:mod:`nnit.tasks.registry`, which stays light; the harness imports this module only inside its
worker functions.
"""

from __future__ import annotations

from typing import Any

from nnit.tasks.registry import EPISODE_STEPS, ControlMode, SimBackend, resolve_sim_backend  # noqa: F401 (re-export)

REWARD_MODE = "normalized_dense"
STACK_CUBE_EASY = "StackCubeEasy-v1"


def register_stack_cube_easy() -> None:
    """Register ``StackCubeEasy-v1`` with ManiSkill (no-op when already registered).

    The subclass overrides ``_load_scene``: it runs StackCube-v1's scene building but builds cube B
    with ``body_type="kinematic"`` (removing and rebuilding an actor after ``super()`` fails in
    mani-skill 3.0.1, so the scene is rebuilt here in full, mirroring the parent's code).
    """
    from mani_skill.utils.registration import REGISTERED_ENVS, register_env

    if STACK_CUBE_EASY in REGISTERED_ENVS:
        return
    import sapien
    from mani_skill.envs.tasks.tabletop.stack_cube import StackCubeEnv
    from mani_skill.utils import common
    from mani_skill.utils.building import actors
    from mani_skill.utils.scene_builder.table import TableSceneBuilder

    class StackCubeEasyEnv(StackCubeEnv):
        """StackCube-v1 whose goal cube B (green) is kinematic: it never moves when pushed."""

        def _load_scene(self, options: dict):
            self.cube_half_size = common.to_tensor([0.02] * 3, device=self.device)
            self.table_scene = TableSceneBuilder(env=self, robot_init_qpos_noise=self.robot_init_qpos_noise)
            self.table_scene.build()
            self.cubeA = actors.build_cube(
                self.scene, half_size=0.02, color=[1, 0, 0, 1], name="cubeA", initial_pose=sapien.Pose(p=[0, 0, 0.1])
            )
            self.cubeB = actors.build_cube(
                self.scene,
                half_size=0.02,
                color=[0, 1, 0, 1],
                name="cubeB",
                body_type="kinematic",
                initial_pose=sapien.Pose(p=[1, 0, 0.1]),
            )

    StackCubeEasyEnv.__name__ = "StackCubeEasyEnv"
    register_env(STACK_CUBE_EASY, max_episode_steps=EPISODE_STEPS)(StackCubeEasyEnv)


def make_env(
    task: str,
    *,
    sim_backend: SimBackend = "physx_cpu",
    num_envs: int = 1,
    control_mode: ControlMode = "pd_joint_delta_pos",
    render: bool = False,
    **kwargs: Any,
):
    """Create a ManiSkill3 env for ``task`` with state observations and normalized dense reward.

    ``physx_cpu`` supports ``num_envs == 1`` only (vectorize across processes instead).
    ``render=True`` turns on the CPU renderer with ``render_mode="rgb_array"`` (for videos).
    Returns ManiSkill's gymnasium env; observations are torch tensors of shape (num_envs, obs_dim).
    """
    import gymnasium as gym
    import mani_skill.envs  # noqa: F401  (registers the ManiSkill tasks)

    register_stack_cube_easy()
    if sim_backend == "physx_cpu" and num_envs != 1:
        raise ValueError(f"physx_cpu runs one env per process (got num_envs={num_envs}); use worker processes")
    render_kwargs: dict[str, Any] = {"render_backend": "none"}
    if render:
        render_kwargs = {"render_backend": "cpu" if sim_backend == "physx_cpu" else "gpu", "render_mode": "rgb_array"}
    return gym.make(
        task,
        obs_mode="state",
        sim_backend=sim_backend,
        num_envs=num_envs,
        control_mode=control_mode,
        reward_mode=REWARD_MODE,
        max_episode_steps=EPISODE_STEPS,
        **render_kwargs,
        **kwargs,
    )


def env_dims(task: str, control_mode: ControlMode = "pd_joint_delta_pos") -> tuple[int, int]:
    """(obs_dim, action_dim) as the environment reports them (creates and closes one CPU env)."""
    env = make_env(task, control_mode=control_mode)
    try:
        return int(env.observation_space.shape[-1]), int(env.action_space.shape[-1])
    finally:
        env.close()


# Importing this module registers StackCubeEasy-v1 (this module is the edge where mani_skill is
# imported; the rest of nnit imports it lazily).
register_stack_cube_easy()
