"""The released model zoo: every file is listed in zoo/README.md, loads as a sampler, samples finite
networks of a held-out architecture with the task's dims, and the zoo stays small."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nnit.diffusion.sample import NNiTSampler
from nnit.tasks.registry import get_task
from nnit.weights import Architecture

ZOO = Path(__file__).resolve().parents[1] / "zoo"
FILES = sorted(ZOO.glob("*.safetensors")) + sorted(ZOO.glob("varied/*.safetensors"))
"""The paper-split models (zoo/nnit_<task>.safetensors) and the varied-split ones (zoo/varied/nnit_<task>.safetensors)."""


def test_zoo_is_listed_and_small():
    readme = (ZOO / "README.md").read_text()
    assert FILES and all(f"`{f.relative_to(ZOO).as_posix()}`" in readme for f in FILES)
    assert sum(f.stat().st_size for f in FILES) < 40 * 2**20


@pytest.mark.parametrize("path", FILES, ids=[f.relative_to(ZOO).with_suffix("").as_posix() for f in FILES])
def test_zoo_model_samples_a_held_out_architecture(path):
    task = get_task(path.stem.removeprefix("nnit_"))
    s = NNiTSampler.from_checkpoint(path)
    ws = s.conditional(Architecture(task.input_dim, (32, 32, 16, 64), task.output_dim), num=2, method="ddim", steps=3)
    assert ws.n == 2 and ws.arch.input_dim == task.input_dim and ws.arch.output_dim == task.output_dim
    assert torch.isfinite(ws.to_vector()).all()
