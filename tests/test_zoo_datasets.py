"""The shipped GHN weight datasets (zoo/datasets/<preset>/<task>): complete, loadable with the task's
dims, listed in zoo/README.md, and small enough for the repository."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nnit.ghn.dataset import dataset_normalizer, iter_dataset
from nnit.tasks.registry import get_task

ROOT = Path(__file__).resolve().parents[1] / "zoo" / "datasets"
DATASETS = sorted(p.parent for p in ROOT.glob("*/*/index.json"))


def test_shipped_datasets_are_listed_and_small():
    readme = (ROOT.parent / "README.md").read_text()
    for d in DATASETS:
        assert f"`{d.relative_to(ROOT.parent.parent).as_posix()}`" in readme
    assert sum(f.stat().st_size for f in ROOT.rglob("*") if f.is_file()) < 80 * 2**20


@pytest.mark.parametrize("path", DATASETS, ids=[f"{d.parent.name}-{d.name}" for d in DATASETS])
def test_shipped_dataset_is_complete_and_loads(path):
    index = json.loads((path / "index.json").read_text())
    task = get_task(index["task"], control_mode=index.get("control_mode"))
    assert task.name == path.name
    roles = {rec["role"] for rec in index["architectures"].values()}
    assert {"train", "held_out"} <= roles
    sets = list(iter_dataset(path, roles=("train", "held_out")))
    assert {role for role, _ in sets} == {"train", "held_out"}
    for _, ws in sets:
        assert ws.arch.input_dim == task.input_dim and ws.arch.output_dim == task.output_dim
        assert ws.n >= 1 and torch.isfinite(ws.to_vector()).all()
    norm = dataset_normalizer(path, "per_role")
    assert norm.target_std > 0
