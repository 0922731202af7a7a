"""Adopting a shipped GHN dataset as a ``nnit reproduce`` run's ``ghn`` and ``dataset`` stages.

A GHN ensemble of a grasping task takes hours on 2 cores (StackCubeEasy-v1: 1,000 DAgger iterations). When a
shipped dataset folder (``zoo/datasets/<preset>/<task>``: the ensemble's weights ``ghn.safetensors`` and its log
beside the dataset) was made by the preset's own commands in one schedule, ``nnit reproduce --adopt FOLDER`` takes it
instead of training again, after checking that it is what the stage would make:

* the ensemble's recorded training config equals what the preset resolves to for the task (settings added to the
  code since count as unchanged, as for any finished stage: :func:`nnit.reproduce.provenance.config_changes`), its
  task and teacher are the run's;
* the dataset stage then runs as usual with ``build-dataset --reuse FOLDER``, which copies an architecture's networks
  only when the dataset was built with the preset's settings and this ensemble paints exactly those networks
  (:func:`nnit.ghn.dataset.build_dataset`), and builds any other architecture itself.

The ``ghn`` stage's provenance says where it came from (``adopted_from``) and its time is the training log's
rollout + update seconds (``wall_seconds_from``).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from nnit.errors import NNiTError
from nnit.fileio import atomic_write_json

if TYPE_CHECKING:
    from nnit.reproduce.pipeline import Pipeline


def adopt(pipe: "Pipeline", folder: Path, log: Callable[[str], None] = print) -> str:
    """Make ``folder`` (a shipped dataset with its ``ghn.safetensors``) the ``ghn`` stage of its task and the source
    the ``dataset`` stage reuses; returns the task. Raises :class:`NNiTError` (naming the differences) when the
    ensemble is not what the preset would train."""
    from nnit.checkpoint import load_checkpoint
    from nnit.ghn.train import ghn_config
    from nnit.reproduce import provenance
    from nnit.reproduce.pipeline import DONE, TEACHER_PPO, TEACHER_SCRIPTED
    from nnit.tasks.registry import get_task

    folder = Path(folder)
    index_path, ghn_path = folder / "index.json", folder / "ghn.safetensors"
    if not index_path.is_file() or not ghn_path.is_file():
        raise NNiTError(f"--adopt {folder}: not a shipped GHN dataset (needs index.json and ghn.safetensors)")
    task = get_task(json.loads(index_path.read_text())["task"]).name
    if task not in pipe.cfg.tasks:
        raise NNiTError(f"--adopt {folder}: its task {task} is not one of the {pipe.preset} preset's ({', '.join(pipe.cfg.tasks)})")
    ck = load_checkpoint(ghn_path)
    if ck.meta.get("kind") != "ghn_ensemble" or "train" not in ck.config:
        raise NNiTError(f"--adopt {folder}: {ghn_path} is not a GHN ensemble checkpoint")
    if ck.config.get("task") != task:
        raise NNiTError(f"--adopt {folder}: the ensemble was trained on {ck.config.get('task')}, the dataset is {task}'s")
    expert = pipe.teacher_checkpoint(task)
    if bool(ck.config.get("teacher_checkpoint")) != (expert is not None):
        want = "a PPO expert" if expert is not None else "the scripted teacher"
        raise NNiTError(f"--adopt {folder}: the ensemble did not distil {want}, as the {pipe.preset} preset does")
    changes = provenance.config_changes(ck.config["train"], asdict(ghn_config(pipe.preset, task)))
    if changes:
        raise NNiTError(f"--adopt {folder}: the ensemble was trained with other settings than the {pipe.preset} preset's "
                        f"for {task}: {'; '.join(changes)}")
    stage = next(s for s in pipe.stages(task) if s.name == "ghn")
    pipe.adopted[task] = folder
    if pipe.status(task, stage).state == DONE:
        log(f"[{task}] ghn: already done; --adopt {folder} is used only by an unfinished dataset stage")
        return task
    out = stage.output
    assert out is not None
    if out.exists():
        stage.move_aside()
    out.mkdir(parents=True)
    shutil.copy2(ghn_path, out / "ghn.safetensors")
    seconds = 0.0
    if (folder / "ghn_train_log.jsonl").is_file():
        shutil.copy2(folder / "ghn_train_log.jsonl", out / "train_log.jsonl")
        rows = [json.loads(ln) for ln in (out / "train_log.jsonl").read_text().splitlines() if ln.strip()]
        seconds = sum(float(r.get("rollout_s", 0.0)) + float(r.get("update_s", 0.0)) for r in rows)
    teacher = TEACHER_PPO if expert is not None else TEACHER_SCRIPTED
    atomic_write_json(stage.done_file, {"stage": "ghn", "command": stage.command_line, "teacher": teacher,
                                        "adopted_from": str(folder)})
    pipe._record(task, stage, seconds, "done", provenance.utc_now())  # stages.json and the provenance file
    rec = json.loads(pipe.provenance_file(task, "ghn").read_text())
    rec.update(adopted_from=str(folder), wall_seconds_from="the adopted run's training log: rollout_s + update_s summed")
    atomic_write_json(pipe.provenance_file(task, "ghn"), rec)
    log_file = pipe.log_file(task, "ghn")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("a") as fh:
        fh.write(f"$ {stage.command_line}\nadopted {ghn_path} (training config = the {pipe.preset} preset's; "
                 f"{seconds:.0f} s of rollouts and updates in its log)\n")
    log(f"[{task}] ghn: adopted {ghn_path} (its training config is the {pipe.preset} preset's); "
        f"the dataset stage reuses {folder}'s networks where this ensemble paints them")
    return task
