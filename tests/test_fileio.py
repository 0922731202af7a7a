"""Atomic writes (nnit.fileio): complete-or-untouched files, no temporaries left, the umask's file mode."""

import os
import stat

import pytest
import torch
from safetensors.torch import load_file

from nnit.checkpoint import save_checkpoint
from nnit.fileio import atomic_save_safetensors, atomic_write_text, truncate_jsonl_log
from nnit.weights.architecture import Architecture
from nnit.weights.mlp import WeightSet


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_safetensors_files_get_the_umask_mode_not_0600(tmp_path, umask_022):
    path = atomic_save_safetensors({"a": torch.arange(3.0)}, tmp_path / "sub" / "x.safetensors", {"k": "v"})
    assert _mode(path) == 0o644
    assert torch.equal(load_file(str(path))["a"], torch.arange(3.0))
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.safetensors"]


def test_checkpoints_and_weight_sets_are_readable_by_others(tmp_path, umask_022):
    ck = save_checkpoint(tmp_path / "run", torch.nn.Linear(2, 2), step=1, config={})
    ws = WeightSet.init_random(Architecture(3, (4, 4), 2), 2).save(tmp_path / "w.safetensors")
    assert _mode(ck) == 0o644 and _mode(ws) == 0o644


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = atomic_write_text(tmp_path / "a.json", "old")
    with pytest.raises(Exception):
        atomic_save_safetensors({"a": "not a tensor"}, tmp_path / "b.safetensors")
    with pytest.raises(TypeError):
        atomic_write_text(path, 123)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_truncate_jsonl_log_keeps_records_up_to_the_checkpoint(tmp_path):
    log = atomic_write_text(tmp_path / "log.jsonl", "".join(f'{{"step": {s}, "loss": {s / 10}}}\n' for s in (10, 20, 30, 40)) + "\n")
    truncate_jsonl_log(log, 20)
    assert log.read_text() == '{"step": 10, "loss": 1.0}\n{"step": 20, "loss": 2.0}\n'
    ppo_log = atomic_write_text(tmp_path / "ppo.jsonl", "".join(f'{{"global_step": {s}}}\n' for s in (100, 200, 300)))
    truncate_jsonl_log(ppo_log, 200, key="global_step")  # the PPO expert's log counts env steps
    assert ppo_log.read_text() == '{"global_step": 100}\n{"global_step": 200}\n'
    truncate_jsonl_log(tmp_path / "missing.jsonl", 5)
    assert not (tmp_path / "missing.jsonl").exists()
