"""Experts and teachers: observation batch -> action batch labellers for DAgger.

Scripted privileged-state teachers live in :mod:`nnit.experts.teachers`; a PPO actor that exposes
the same ``spec`` + ``__call__`` (:class:`Teacher`) drops in wherever a teacher is expected.
"""

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

__all__ = [
    "PICK_CUBE_LAYOUT",
    "PUSH_CUBE_LAYOUT",
    "STACK_CUBE_LAYOUT",
    "ObsLayout",
    "PickCubeTeacher",
    "PushCubeTeacher",
    "StackCubeTeacher",
    "Teacher",
    "TeacherSpec",
    "get_teacher",
    "teacher_tasks",
]
