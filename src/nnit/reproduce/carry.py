"""Carrying a ``nnit reproduce`` run from one machine to the next: a folder git can hold.

A ``cpu`` run takes more than one session, and a session may start on a fresh machine with an empty ``runs/``.
``nnit reproduce --carry DIR`` keeps ``DIR/<preset>/`` as a mirror of the run folder ``RUNS/<preset>/`` holding only
what a fresh machine needs to continue the run and to write its report, small enough to commit:

* every finished stage's done file, log and provenance, and ``stages.json`` (the timings);
* a finished training stage (``expert``, ``ghn``, ``nnit``, ``d2nwg``, ``sane``): its checkpoint as a float32
  sampling-only copy (:func:`nnit.checkpoint.export_release`: the weights later stages read, i.e. the EMA where the
  run keeps one, with the same config, meta and sections; no optimizer state, EMA copy or DAgger buffer; a
  checkpoint that already is one, e.g. an adopted shipped ensemble, as it is), and its ``.json`` / ``.jsonl`` files;
* a training stage that has started but not finished: its full checkpoint, so it resumes where it stopped (a mid-run
  checkpoint: it leaves the carry folder when the stage finishes and its sampling-only copy replaces it);
* a finished dataset and alignment study: all their files;
* a finished evaluation: its ``.json`` / ``.md`` files; of the seen architectures' generated networks, which the
  ``memorization`` stage reads, the first ``memorization_networks`` of them, until that stage has run.

Not carried: TensorBoard folders, outputs moved aside by a rerun (``*.old-*``), videos and heatmaps of evaluations,
and unfinished datasets and evaluations (they start again). :func:`restore` copies every carried file whose
counterpart is missing from the run folder (it never overwrites one); :func:`save` brings the carry folder up to
date: it rewrites only what changed (``carry.json`` records each file's source SHA-256) and deletes what is no longer
carried, so a committed carry folder gains one version of each file per finished stage.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from nnit.fileio import atomic_write_json

if TYPE_CHECKING:
    from nnit.reproduce.pipeline import Pipeline, Stage

MANIFEST = "carry.json"
"""The carry folder's index (under ``DIR/<preset>/``): each carried file's kind and its source's SHA-256."""
SMALL = (".json", ".jsonl", ".md")
"""What is carried of a finished training stage's or evaluation's other files."""
COPY, RELEASE, FIRST = "copy", "release", "first"


@dataclass(frozen=True)
class Item:
    """One carried file: ``source`` (in the run folder) written to ``rel`` (under the carry folder's preset) as is
    (``copy``), as a float32 sampling-only checkpoint (``release``) or as its first ``n`` networks (``first``)."""

    source: Path
    rel: str
    how: str = COPY
    n: int = 0


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(folder: Path) -> list[Path]:
    """Files under ``folder``, without TensorBoard folders and outputs moved aside by a rerun."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and "tb" not in p.relative_to(folder).parts[:-1]
                  and not any(".old-" in part for part in p.relative_to(folder).parts))


def stage_items(pipe: "Pipeline", task: str, stage: "Stage", memorization_done: bool) -> list[Item]:
    """What of ``stage`` is carried (nothing for a stage that has not started)."""
    from nnit.reproduce.pipeline import DONE, TRAINING_STAGES

    root = pipe.root
    rel = lambda p: str(p.relative_to(root))  # noqa: E731
    done = pipe.status(task, stage).state == DONE
    out = stage.output
    items: list[Item] = []
    if stage.name in TRAINING_STAGES + tuple(pipe.cfg.baselines) and out is not None:  # checkpoints at the top
        checkpoints = [p for p in sorted(out.glob("*.safetensors")) if p.is_file()]
        if not done and not checkpoints:
            return []
        items += [Item(p, rel(p), RELEASE if done and not _is_release(p) else COPY) for p in checkpoints]
        items += [Item(p, rel(p)) for p in _files(out) if p.suffix in SMALL]
    elif not done:
        return []
    elif stage.name in ("dataset", "alignment") and out is not None:
        items += [Item(p, rel(p)) for p in _files(out)]
    elif out is not None:  # an evaluation
        items += [Item(p, rel(p)) for p in _files(out) if p.suffix in SMALL]
        nets = out / "networks.safetensors"
        if not memorization_done and nets.is_file() and _memorization_reads(pipe, task, stage.name):
            items.append(Item(nets, rel(nets), FIRST, pipe.cfg.memorization_networks))
    for p in (stage.done_file, pipe.log_file(task, stage.name), pipe.provenance_file(task, stage.name)):
        if p.is_file() and p.is_relative_to(root) and rel(p) not in {i.rel for i in items}:
            items.append(Item(p, rel(p)))
    return items


def _is_release(path: Path) -> bool:
    """Whether a checkpoint is already a sampling-only copy (e.g. an adopted shipped ensemble): carried as it is."""
    from nnit.checkpoint import checkpoint_meta

    return "release" in checkpoint_meta(path)


def _memorization_reads(pipe: "Pipeline", task: str, stage_name: str) -> bool:
    """Whether the memorization stage reads the networks of this evaluation stage (a seen architecture's samples of
    one of its generators)."""
    from nnit.weights.architecture import hidden_label

    return any(stage_name == f"eval-{g}-{hidden_label(h)}" for g in pipe._memorization_generators() for h in pipe.cfg.seen)


def carried_items(pipe: "Pipeline") -> list[Item]:
    """Everything the carry folder should hold now, for every task of the preset."""
    from nnit.reproduce.pipeline import DONE

    items = [Item(pipe.timings_path, str(pipe.timings_path.relative_to(pipe.root)))] if pipe.timings_path.is_file() else []
    for task in pipe.cfg.tasks:
        plan = pipe.stages(task)
        mem = [s for s in plan if s.name == "memorization"]
        memorization_done = bool(mem) and pipe.status(task, mem[0]).state == DONE
        for stage in plan:
            items += stage_items(pipe, task, stage, memorization_done)
    return items


def _write(item: Item, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if item.how == RELEASE:
        import torch

        from nnit.checkpoint import export_release

        export_release(item.source, dst, dtype=torch.float32)
    elif item.how == FIRST:
        import torch

        from nnit.weights.mlp import WeightSet

        ws = WeightSet.load(item.source)
        ws[torch.arange(min(item.n, ws.n))].save(dst, {"carried": f"the first {min(item.n, ws.n)} of {ws.n} networks"})
    else:
        tmp = dst.with_name(dst.name + ".tmp")
        shutil.copy2(item.source, tmp)
        tmp.replace(dst)


def save(pipe: "Pipeline", carry: Path, log: Callable[[str], None] = print) -> dict:
    """Bring ``carry/<preset>/`` up to date with the run folder; returns counts (written, kept, deleted) and bytes."""
    base = Path(carry) / pipe.preset
    manifest_path = base / MANIFEST
    old = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    new: dict[str, dict] = {}
    written = kept = 0
    for item in carried_items(pipe):
        dst = base / item.rel
        sha = _sha256(item.source)
        entry = {"how": item.how, "source_sha256": sha, **({"n": item.n} if item.how == FIRST else {})}
        prev = old.get(item.rel)
        unchanged = dst.is_file() and (
            (prev is not None and {k: prev.get(k) for k in entry} == entry)
            or (item.how != FIRST and _sha256(dst) == sha))  # e.g. a checkpoint restored from this folder
        if unchanged:
            entry = prev if prev is not None else entry  # the same bytes: keep the record of how they were made
            kept += 1
        else:
            _write(item, dst)
            written += 1
        new[item.rel] = entry
    deleted = 0
    if base.is_dir():
        for p in sorted(base.rglob("*"), reverse=True):
            r = str(p.relative_to(base))
            if p.is_file() and r != MANIFEST and r not in new:
                p.unlink()
                deleted += 1
            elif p.is_dir() and not any(p.iterdir()):
                p.rmdir()
    if new != old:
        atomic_write_json(manifest_path, dict(sorted(new.items())))
    size = sum((base / r).stat().st_size for r in new)
    log(f"carry folder {base}: {len(new)} files, {size / 2**20:.1f} MiB ({written} written, {kept} unchanged, {deleted} deleted)")
    return {"files": len(new), "written": written, "kept": kept, "deleted": deleted, "bytes": size}


def restore(pipe: "Pipeline", carry: Path, log: Callable[[str], None] = print) -> int:
    """Copy every file of ``carry/<preset>/`` whose counterpart is missing from the run folder into it (existing
    files are never overwritten); returns how many were copied."""
    base = Path(carry) / pipe.preset
    if not base.is_dir():
        return 0
    n = 0
    for p in sorted(base.rglob("*")):
        r = p.relative_to(base)
        if not p.is_file() or str(r) == MANIFEST or p.name.endswith(".tmp"):
            continue
        dst = pipe.root / r
        if dst.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, dst)
        n += 1
    if n:
        log(f"restored {n} files from the carry folder {base} into {pipe.root}")
    return n
