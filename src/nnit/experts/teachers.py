"""Privileged-state scripted teachers for the ManiSkill3 tasks (the DAgger labellers of the `cpu` preset).

PPO experts for PickCube and StackCube need 10-50M environment steps, hours to a day on two CPU
cores. The GHN's DAgger loop only needs *a labeller*: a function from a
state observation to an action. The teachers here read the privileged state the ManiSkill
``obs_mode="state"`` vector already carries (TCP pose, cube poses, goal position, gripper width)
and drive the Panda's end effector with clipped proportional control in ``pd_ee_delta_pos``
(action = [dx, dy, dz, gripper] in [-1, 1]; +-1 on xyz = +-0.1 m of target displacement,
gripper -1 = close, +1 = open).

Every teacher is **memoryless**: the phase (approach / descend / grasp / carry / place / release /
push) is re-derived from each observation, because DAgger asks for labels on arbitrary states
visited by a student. ``teacher(obs)`` with a batch of B observations equals B single calls.

Interface (:class:`Teacher`, defined in :mod:`nnit.experts.interface`): ``teacher(obs: (B, obs_dim) tensor) -> (B, act_dim) tensor`` plus a
``spec`` (:class:`TeacherSpec`: task, control mode, obs/act sizes). A PPO actor that exposes the
same two things (``spec`` attribute and a deterministic ``__call__``) drops in unchanged; see
:func:`get_teacher` for the registry.

Their measured success: ``benchmarks/teacher_success.py`` (docs/reference/teachers-and-experts.md).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from types import MappingProxyType

import torch

from nnit.errors import NNiTError
from nnit.experts.interface import Teacher, TeacherSpec  # noqa: F401  (the interface; re-exported)

# ====================================================================== observation layouts


@dataclass(frozen=True)
class ObsLayout:
    """Index layout of a flat ManiSkill state observation: ``(name, start, stop)`` per field.

    The flat vector is ``obs_mode="state_dict"`` flattened in insertion order: ``agent`` (qpos,
    qvel) then ``extra`` (the task's ``_get_obs_extra``). Checked against ManiSkill 3.0.1 by
    ``tests/test_teachers.py`` (``test_layouts_match_state_dict``).
    """

    dim: int
    fields: tuple[tuple[str, int, int], ...]

    def __post_init__(self) -> None:
        stop = 0
        for name, a, b in self.fields:
            if a != stop or b <= a:
                raise ValueError(f"field {name} [{a}:{b}] does not continue at {stop}")
            stop = b
        if stop != self.dim:
            raise ValueError(f"fields cover {stop} entries, layout says {self.dim}")

    def get(self, obs: torch.Tensor, name: str) -> torch.Tensor:
        """The ``name`` slice of a (B, dim) observation batch: (B, stop - start)."""
        for field, a, b in self.fields:
            if field == name:
                return obs[:, a:b]
        raise KeyError(f"no field {name!r}; have {[f for f, _, _ in self.fields]}")


# Panda (and panda_wristcam): qpos = 7 arm joints + 2 finger joints (each finger 0..0.04 m, so the
# opening width is qpos[7] + qpos[8], 0.08 when open); qvel likewise. Poses are [x, y, z, qw, qx, qy, qz]
# in the world frame (robot base at x = -0.615; table top at z = 0).
PICK_CUBE_LAYOUT = ObsLayout(
    dim=42,
    fields=(
        ("qpos", 0, 9),  # 7 arm joints + 2 fingers
        ("qvel", 9, 18),  # joint velocities
        ("is_grasped", 18, 19),  # 1.0 when both fingers press the cube
        ("tcp_pose", 19, 26),  # tool centre point pose (p, q)
        ("goal_pos", 26, 29),  # 3-D goal point the cube centre must reach (within 0.025 m)
        ("obj_pose", 29, 36),  # cube pose (p, q); half size 0.02
        ("tcp_to_obj_pos", 36, 39),  # cube.p - tcp.p
        ("obj_to_goal_pos", 39, 42),  # goal.p - cube.p
    ),
)
PUSH_CUBE_LAYOUT = ObsLayout(
    dim=35,
    fields=(
        ("qpos", 0, 9),  # 7 arm joints + 2 fingers
        ("qvel", 9, 18),  # joint velocities
        ("tcp_pose", 18, 25),  # tool centre point pose (p, q)
        ("goal_pos", 25, 28),  # centre of the goal disc (radius 0.1) on the table, z = 1e-3
        ("obj_pose", 28, 35),  # cube pose (p, q); half size 0.02
    ),
)
STACK_CUBE_LAYOUT = ObsLayout(
    dim=48,
    fields=(
        ("qpos", 0, 9),  # 7 arm joints + 2 fingers (panda_wristcam)
        ("qvel", 9, 18),  # joint velocities
        ("tcp_pose", 18, 25),  # tool centre point pose (p, q)
        ("cubeA_pose", 25, 32),  # red cube to pick (p, q); half size 0.02
        ("cubeB_pose", 32, 39),  # green cube to stack on (kinematic in StackCubeEasy-v1)
        ("tcp_to_cubeA_pos", 39, 42),  # cubeA.p - tcp.p
        ("tcp_to_cubeB_pos", 42, 45),  # cubeB.p - tcp.p
        ("cubeA_to_cubeB_pos", 45, 48),  # cubeB.p - cubeA.p
    ),
)

_MAX_DELTA = 0.1  # metres of EE target displacement for an action of 1 (Panda pd_ee_delta_pos)
_BASE_XY = (-0.615, 0.0)  # Panda base position in the table-top tasks
_OPEN, _CLOSE = 1.0, -1.0


# ====================================================================== shared helpers


def _as_batch(obs: torch.Tensor, dim: int) -> tuple[torch.Tensor, bool]:
    """Accept (obs_dim,) or (B, obs_dim); return a float (B, obs_dim) batch and whether it was 1-D."""
    if obs.shape[-1] != dim or obs.dim() not in (1, 2):
        raise ValueError(f"expected observations of shape (B, {dim}) or ({dim},), got {tuple(obs.shape)}")
    single = obs.dim() == 1
    obs = obs.unsqueeze(0) if single else obs
    return obs.float(), single


def _move(delta: torch.Tensor, gain: float) -> torch.Tensor:
    """Proportional EE command for a desired displacement (B, 3) in metres, clipped to [-1, 1]."""
    return (gain * delta / _MAX_DELTA).clamp(-1.0, 1.0)  # (B, 3)


def _within_reach(tcp: torch.Tensor, move: torch.Tensor, reach: float) -> torch.Tensor:
    """Shorten a (B, 3) EE command so its target stays within ``reach`` (m, horizontal) of the base.

    ``pd_ee_delta_pos`` solves IK for the commanded target; a target beyond the arm's reach (about
    0.80 m from the base at table height with the gripper pointing down, measured) makes IK fail
    and the arm freeze in place, so the target is pulled back onto the reach circle (which also
    steers an over-stretched arm back inwards).
    """
    base = torch.tensor(_BASE_XY, dtype=tcp.dtype, device=tcp.device)
    target = tcp[:, :2] + move[:, :2] * _MAX_DELTA - base  # (B, 2) relative to the base
    r = target.norm(dim=-1, keepdim=True).clamp_min(1e-6)  # (B, 1)
    target = torch.where(r > reach, target * (reach / r), target)
    xy = ((target + base - tcp[:, :2]) / _MAX_DELTA).clamp(-1.0, 1.0)  # (B, 2)
    return torch.cat([xy, move[:, 2:]], dim=-1)  # (B, 3)


def _action(move: torch.Tensor, grip: torch.Tensor) -> torch.Tensor:
    return torch.cat([move, grip.unsqueeze(-1)], dim=-1).clamp(-1.0, 1.0)  # (B, 4)


def _finger_width(qpos: torch.Tensor) -> torch.Tensor:
    return qpos[:, 7] + qpos[:, 8]  # (B,) 0.08 open, ~0.04 around a cube, ~0 closed on nothing


def _pick_approach(
    tcp: torch.Tensor,
    cube: torch.Tensor,
    width: torch.Tensor,
    *,
    gain: float,
    xy_gain: float,
    xy_tol: float,
    z_tol: float,
    cone: float,
    hover: float,
    open_width: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reach-and-grasp for a cube that is not held: (B, 3) move command, (B,) gripper command.

    The TCP target is the cube centre, raised by ``cone * xy_error`` (capped at ``hover``) so the
    fingers come down over the cube instead of sweeping into it (the horizontal part uses the
    stiffer ``xy_gain``: a fingertip resting on a cube edge needs a firm sideways command to slide
    off). Once the TCP is within ``xy_tol``/``z_tol`` of the cube centre the gripper closes. While
    the fingers are not open (``width < open_width``) the target sits ``hover`` above the cube: at
    the cube this starts a slow lift (half gain) as the fingers close — the caller's "held" phase
    takes over once the grasp registers — and after a missed grasp (fingers shut on nothing, TCP
    risen out of the ``z_tol`` band) the gripper reopens above the cube and tries again.
    """
    d_xy = (tcp[:, :2] - cube[:, :2]).norm(dim=-1)  # (B,)
    dz = tcp[:, 2] - cube[:, 2]  # (B,)
    at_cube = (d_xy < xy_tol) & (dz < z_tol)  # (B,)
    lift = (cone * (d_xy - 0.5 * xy_tol)).clamp(0.0, hover)  # (B,)
    lift = torch.where(width < open_width, torch.full_like(lift, hover), lift)
    target = torch.cat([cube[:, :2], (cube[:, 2] + lift).unsqueeze(-1)], dim=-1)  # (B, 3)
    move = _move(target - tcp, gain)  # (B, 3)
    move[:, :2] = _move(target[:, :2] - tcp[:, :2], xy_gain)  # stiffer sideways: a finger resting on a cube edge must slide off
    # closing: half gain (a small centring correction, then a slow lift once the fingers shut)
    move = torch.where(at_cube.unsqueeze(-1), _move(target - tcp, 0.5 * gain), move)
    grip = torch.where(at_cube, torch.full_like(d_xy, _CLOSE), torch.full_like(d_xy, _OPEN))
    return move, grip


# ====================================================================== PickCube-v1


@dataclass(frozen=True)
class PickCubeTeacher:
    """Grasp the cube from above, carry it straight to the 3-D goal, hold still there.

    Phases (from the observation): ``is_grasped`` -> carry (move the TCP by goal - cube, gripper
    closed; the proportional command fades near the goal so the arm comes to rest, which success
    requires); otherwise -> :func:`_pick_approach`.
    """

    gain: float = 1.0
    """EE command per metre of error, in units of the 0.1 m action scale (1 = move by the error)."""
    xy_gain: float = 1.0
    """Horizontal gain while reaching for the cube."""
    carry_gain: float = 1.0
    """Gain while carrying the cube to the goal."""
    xy_tol: float = 0.01
    """Horizontal TCP-cube distance under which the gripper may close (m)."""
    z_tol: float = 0.01
    """TCP height above the cube centre under which the gripper may close (m)."""
    cone: float = 2.0
    """Approach height above the cube per metre of horizontal error."""
    hover: float = 0.06
    """Maximum approach height above the cube centre (m)."""
    open_width: float = 0.07
    """Finger opening (m) needed before descending onto the cube."""
    reach: float = 0.80
    """Horizontal distance from the robot base that EE targets are kept within (m)."""

    @property
    def spec(self) -> TeacherSpec:
        return TeacherSpec("PickCube-v1", "pd_ee_delta_pos", PICK_CUBE_LAYOUT.dim, 4)

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        return self.act(obs)

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, 42) or (42,) state observation -> (B, 4) or (4,) action in [-1, 1]."""
        obs, single = _as_batch(obs, PICK_CUBE_LAYOUT.dim)
        L = PICK_CUBE_LAYOUT
        tcp = L.get(obs, "tcp_pose")[:, :3]  # (B, 3)
        cube = L.get(obs, "obj_pose")[:, :3]  # (B, 3)
        goal = L.get(obs, "goal_pos")  # (B, 3)
        grasped = L.get(obs, "is_grasped")[:, 0] > 0.5  # (B,)
        width = _finger_width(L.get(obs, "qpos"))  # (B,)

        move, grip = _pick_approach(
            tcp, cube, width, gain=self.gain, xy_gain=self.xy_gain, xy_tol=self.xy_tol, z_tol=self.z_tol,
            cone=self.cone, hover=self.hover, open_width=self.open_width,
        )  # (B, 3), (B,)
        carry = _move(goal - cube, self.carry_gain)  # (B, 3)
        move = torch.where(grasped.unsqueeze(-1), carry, move)
        grip = torch.where(grasped, torch.full_like(grip, _CLOSE), grip)
        act = _action(_within_reach(tcp, move, self.reach), grip)  # (B, 4)
        return act[0] if single else act


# ====================================================================== PushCube-v1


@dataclass(frozen=True)
class PushCubeTeacher:
    """Push the cube along the table into the goal disc with the closed gripper.

    Phases: if the cube is within ``done_tol`` of the goal -> stay still; if the TCP is low and
    right behind the cube (on the side opposite the goal) -> push
    (move by goal - cube along the push direction, plus a lateral correction that keeps the
    fingers centred on the cube); otherwise -> go to the pre-push point behind the cube, flying
    above the cube height while far from it (``cone``) and descending when close.
    """

    gain: float = 1.0
    """EE command per metre of error while getting into position."""
    push_gain: float = 0.7
    """EE command per metre of remaining cube-goal distance while pushing."""
    push_speed: float = 0.8
    """Largest forward push command (a fast push flicks the cube past the goal)."""
    push_z: float = 0.02
    """TCP height while pushing (m); the cube centre is at 0.02."""
    standoff: float = 0.035
    """Pre-push TCP distance behind the cube centre (m)."""
    lateral_tol: float = 0.012
    """Lateral TCP offset from the push line within which pushing may start (m)."""
    z_tol: float = 0.015
    """TCP height above ``push_z`` within which pushing may start (m)."""
    cone: float = 2.0
    """Approach height per metre of horizontal distance to the pre-push point."""
    hover: float = 0.06
    """Maximum approach height above ``push_z`` (m)."""
    overshoot: float = 0.0
    """Push the cube this far past the goal centre along the push line (m)."""
    done_tol: float = 0.02
    """Cube-goal distance under which the arm stops (m); the goal disc has radius 0.1."""
    reach: float = 0.785
    """Horizontal distance from the robot base that EE targets are kept within (m)."""

    @property
    def spec(self) -> TeacherSpec:
        return TeacherSpec("PushCube-v1", "pd_ee_delta_pos", PUSH_CUBE_LAYOUT.dim, 4)

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        return self.act(obs)

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, 35) or (35,) state observation -> (B, 4) or (4,) action in [-1, 1]."""
        obs, single = _as_batch(obs, PUSH_CUBE_LAYOUT.dim)
        L = PUSH_CUBE_LAYOUT
        tcp = L.get(obs, "tcp_pose")[:, :3]  # (B, 3)
        cube = L.get(obs, "obj_pose")[:, :3]  # (B, 3)
        goal = L.get(obs, "goal_pos")  # (B, 3)

        to_goal = goal[:, :2] - cube[:, :2]  # (B, 2)
        dist = to_goal.norm(dim=-1, keepdim=True)  # (B, 1)
        d = to_goal / dist.clamp_min(1e-6)  # (B, 2) push direction
        perp = torch.stack([-d[:, 1], d[:, 0]], dim=-1)  # (B, 2)
        rel = tcp[:, :2] - cube[:, :2]  # (B, 2)
        s = (rel * d).sum(-1)  # (B,) along the push line (negative = behind)
        lat = (rel * perp).sum(-1)  # (B,) sideways offset
        low = tcp[:, 2] < self.push_z + self.z_tol  # (B,)
        behind = (s < -0.02) & (lat.abs() < self.lateral_tol) & low  # (B,)

        # push: cube towards (goal + overshoot), TCP kept on the push line and at push height
        fwd = (self.push_gain * (dist + self.overshoot) / _MAX_DELTA).clamp(0.0, self.push_speed)  # (B, 1)
        side = -lat.unsqueeze(-1) * (self.gain / _MAX_DELTA)  # (B, 1)
        push_xy = d * fwd + perp * side  # (B, 2)
        push_z = (self.push_z - tcp[:, 2]).unsqueeze(-1) * (self.gain / _MAX_DELTA)  # (B, 1)
        push = torch.cat([push_xy, push_z], dim=-1).clamp(-1.0, 1.0)  # (B, 3)

        # approach: pre-push point behind the cube, above cube height while far from it
        pre = cube[:, :2] - d * self.standoff  # (B, 2)
        d_pre = (tcp[:, :2] - pre).norm(dim=-1)  # (B,)
        lift = (self.cone * (d_pre - 0.005)).clamp(0.0, self.hover)  # (B,)
        target = torch.cat([pre, (self.push_z + lift).unsqueeze(-1)], dim=-1)  # (B, 3)
        approach = _move(target - tcp, self.gain)  # (B, 3)

        move = torch.where(behind.unsqueeze(-1), push, approach)
        move = torch.where(dist < self.done_tol, torch.zeros_like(move), move)  # on the goal: stay
        grip = torch.full_like(s, _CLOSE)
        act = _action(_within_reach(tcp, move, self.reach), grip)  # (B, 4)
        return act[0] if single else act


# ====================================================================== StackCube(Easy)-v1


@dataclass(frozen=True)
class StackCubeTeacher:
    """Pick cube A, carry it over cube B, lower it onto B, open the gripper.

    There is no ``is_grasped`` entry in this task's observation, so holding is inferred: TCP
    within ``hold_dist`` of A's centre and the fingers closed to about a cube's width (the
    fingers close from 0.08 to ~0.045 in one control step, so the closing transient is short). Phases, in
    priority order: A resting on B -> open the gripper and back off upwards once open (success
    needs A static and released); A held -> carry A to B + (0, 0, 0.04 + clearance) where the
    clearance shrinks as A gets above B; otherwise -> :func:`_pick_approach` on A.
    Works for StackCube-v1 and StackCubeEasy-v1 (same observation layout).
    """

    task: str = "StackCubeEasy-v1"
    """Environment id recorded in the spec (``StackCubeEasy-v1`` or ``StackCube-v1``)."""
    gain: float = 1.0
    """EE command per metre of error while reaching for A."""
    xy_gain: float = 1.5
    """Horizontal gain while reaching for A."""
    carry_gain: float = 1.0
    """EE command per metre of error while carrying A."""
    xy_tol: float = 0.01
    """Horizontal TCP-A distance under which the gripper may close (m)."""
    z_tol: float = 0.01
    """TCP height above A's centre under which the gripper may close (m)."""
    cone: float = 4.0
    """Approach height per metre of horizontal error (reaching A, and carrying A over B)."""
    hover: float = 0.06
    """Maximum approach height above A's centre (m)."""
    carry_hover: float = 0.05
    """Maximum clearance of A above B's top while carrying (m)."""
    retreat: float = 0.08
    """After release, the TCP backs off to this height above A's centre (m) and waits."""
    hold_dist: float = 0.02
    """TCP-A distance under which A counts as held when the fingers are closed on it (m)."""
    hold_width: tuple[float, float] = (0.03, 0.06)
    """Finger opening (m) range that means "closed on a cube" (0.04 square-on, up to 0.057 across a
    yawed cube's corners)."""
    place_xy_tol: float = 0.008
    """Horizontal A-B error under which A may be lowered the last centimetres / released (m)."""
    place_z_tol: float = 0.006
    """|A.z - (B.z + 0.04)| under which A counts as resting on B (m)."""
    open_width: float = 0.07
    """Finger opening (m) needed before descending onto A, and before backing off after release."""
    reach: float = 0.80
    """Horizontal distance from the robot base that EE targets are kept within (m)."""

    @property
    def spec(self) -> TeacherSpec:
        return TeacherSpec(self.task, "pd_ee_delta_pos", STACK_CUBE_LAYOUT.dim, 4)

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        return self.act(obs)

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, 48) or (48,) state observation -> (B, 4) or (4,) action in [-1, 1]."""
        obs, single = _as_batch(obs, STACK_CUBE_LAYOUT.dim)
        L = STACK_CUBE_LAYOUT
        tcp = L.get(obs, "tcp_pose")[:, :3]  # (B, 3)
        a = L.get(obs, "cubeA_pose")[:, :3]  # (B, 3)
        b = L.get(obs, "cubeB_pose")[:, :3]  # (B, 3)
        width = _finger_width(L.get(obs, "qpos"))  # (B,)

        ab_xy = (a[:, :2] - b[:, :2]).norm(dim=-1)  # (B,)
        on_b = (ab_xy < 2 * self.place_xy_tol) & ((a[:, 2] - b[:, 2] - 0.04).abs() < self.place_z_tol)  # (B,)
        held = (
            ((tcp - a).norm(dim=-1) < self.hold_dist)
            & (width > self.hold_width[0])
            & (width < self.hold_width[1])
        )  # (B,)

        # reach A
        move, grip = _pick_approach(
            tcp, a, width, gain=self.gain, xy_gain=self.xy_gain, xy_tol=self.xy_tol, z_tol=self.z_tol,
            cone=self.cone, hover=self.hover, open_width=self.open_width,
        )  # (B, 3), (B,)

        # carry A over B, lowering as it lines up
        clearance = (self.cone * (ab_xy - self.place_xy_tol)).clamp(0.0, self.carry_hover)  # (B,)
        a_target = torch.cat([b[:, :2], (b[:, 2] + 0.04 + clearance).unsqueeze(-1)], dim=-1)  # (B, 3)
        carry = _move(a_target - a, self.carry_gain)  # (B, 3)
        move = torch.where(held.unsqueeze(-1), carry, move)
        grip = torch.where(held, torch.full_like(grip, _CLOSE), grip)

        # release: open in place, then back off upwards once the fingers are clear
        opened = width > self.open_width  # (B,)
        rise = ((a[:, 2] + self.retreat - tcp[:, 2]) * (self.gain / _MAX_DELTA)).clamp(0.0, 0.5)  # (B,)
        up = torch.zeros_like(move)
        up[:, 2] = torch.where(opened, rise, torch.zeros_like(rise))
        move = torch.where(on_b.unsqueeze(-1), up, move)
        grip = torch.where(on_b, torch.full_like(grip, _OPEN), grip)
        act = _action(_within_reach(tcp, move, self.reach), grip)  # (B, 4)
        return act[0] if single else act


# ====================================================================== registry

_SCRIPTED = MappingProxyType(  # read-only: task id -> scripted teacher class
    {
        "PickCube-v1": PickCubeTeacher,
        "PushCube-v1": PushCubeTeacher,
        "StackCube-v1": StackCubeTeacher,
        "StackCubeEasy-v1": StackCubeTeacher,
    }
)


def teacher_tasks() -> tuple[str, ...]:
    """Task ids that have a scripted teacher."""
    return tuple(_SCRIPTED)


def get_teacher(task: str, checkpoint: str | os.PathLike | None = None, **overrides) -> Teacher:
    """The scripted teacher for ``task``; ``overrides`` replace its dataclass fields (gains...).

    With ``checkpoint`` (a PPO expert's checkpoint file or run directory, from ``nnit
    train-expert``) the trained actor is returned instead (:class:`nnit.experts.ppo.PPOActorTeacher`;
    its ``spec`` carries the checkpoint's control mode). Any object with ``spec`` and a
    deterministic ``__call__`` can be used wherever this returns a teacher.
    """
    if checkpoint is not None:
        if overrides:
            raise NNiTError(f"overrides {sorted(overrides)} apply to scripted teachers, not to a PPO checkpoint")
        from nnit.experts.ppo import PPOActorTeacher

        teacher = PPOActorTeacher.from_checkpoint(checkpoint)
        if teacher.spec.task != task:
            raise NNiTError(f"{checkpoint} holds a {teacher.spec.task} expert, not {task}")
        return teacher
    try:
        cls = _SCRIPTED[task]
    except KeyError:
        raise KeyError(f"no scripted teacher for {task!r}; have {sorted(_SCRIPTED)}") from None
    if cls is StackCubeTeacher:
        overrides.setdefault("task", task)
    return cls(**overrides)


# ============================================================================ measuring a teacher
def _teacher_env(task: str, control_mode: str):
    """The harness's environment (``nnit.tasks.maniskill.make_env``: state obs, physx_cpu, 50 steps)."""
    from nnit.tasks.maniskill import make_env as _make_env  # heavy: imports ManiSkill

    return _make_env(task, control_mode=control_mode)


def _episode_record(ep) -> dict:
    once, end = bool(ep.success_once[0]), bool(ep.success_at_end[0])
    return {"seed": ep.seed, "success_once": once, "success_at_end": end, "return": float(ep.returns[0]),
            "first_success_step": int(ep.first_success_step[0])}


def teacher_rollout(env, teacher: Teacher, seed: int, max_steps: int = 50, rebuild: bool = False) -> dict:
    """One episode of ``max_steps`` steps (:func:`nnit.tasks.rollout.run_episode`; with ``rebuild`` from a
    rebuilt scene); returns success_once, success_at_end, return, first success step."""
    from nnit.tasks.rollout import run_episode

    return _episode_record(run_episode(env, teacher, seed, max_steps, rebuild=rebuild))


def measure_teacher(task: str, episodes: int = 50, seed: int = 0, max_steps: int = 50, teacher: "Teacher | None" = None) -> dict:
    """Success of a teacher in the harness's settings and protocol (state obs, physx_cpu, all steps run, the
    episodes in order in one env, the first from a rebuilt scene; :func:`nnit.tasks.rollout.run_episodes`):
    aggregate metrics of ``teacher`` (default: the scripted one) over seeds seed..seed+episodes-1."""
    from nnit.tasks.rollout import run_episodes

    teacher = teacher if teacher is not None else get_teacher(task)
    env = _teacher_env(task, teacher.spec.control_mode)
    try:
        t0 = time.perf_counter()
        eps = [_episode_record(ep) for ep in run_episodes(env, teacher, [seed + i for i in range(episodes)], max_steps)]
        wall = time.perf_counter() - t0
    finally:
        env.close()
    n = len(eps)
    firsts = [e["first_success_step"] for e in eps if e["success_once"]]
    return {
        "task": task,
        "spec": vars(teacher.spec) if hasattr(teacher.spec, "__dict__") else str(teacher.spec),
        "episodes": n,
        "seeds": [seed, seed + n - 1],
        "success_once": sum(e["success_once"] for e in eps) / n,
        "success_at_end": sum(e["success_at_end"] for e in eps) / n,
        "mean_return": sum(e["return"] for e in eps) / n,
        "mean_first_success_step": (sum(firsts) / len(firsts)) if firsts else None,
        "failed_seeds": [e["seed"] for e in eps if not e["success_once"]],
        "wall_s": round(wall, 1),
        "per_episode": eps,
    }
