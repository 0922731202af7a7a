"""The alignment study's SGD set: DAgger-trained MLPs that stop at the GHN set's quality or at a cap
(:mod:`nnit.analysis.sgd_dagger`), the study's choice of method and its report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_ghn_pipeline import run_cli  # tests/ is on sys.path

from nnit.analysis.alignment import ALIGNMENT_PRESETS, alignment_study
from nnit.analysis.sgd_dagger import DaggerSGDConfig, train_sgd_dagger
from nnit.errors import NNiTError
from nnit.ghn.train import GHN_PRESETS

ZOO_STACK_GHN = Path(__file__).resolve().parents[1] / "zoo" / "datasets" / "cpu" / "StackCubeEasy-v1" / "ghn.safetensors"


@pytest.mark.sim
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_sgd_dagger_stops_at_the_target_or_the_cap():
    """Target 0: stops at the first check. Unreachable target: runs to the cap, checking every
    ``check_every`` iterations and at the cap. Steps and beta follow the GHN schedule."""
    from nnit.tasks.registry import get_task
    from nnit.weights.architecture import Architecture

    task = get_task("PushCube-v1", control_mode="pd_ee_delta_pos")
    arch = Architecture.parse("16,16,16,16", task.input_dim, task.output_dim)
    schedule = GHN_PRESETS["tiny"]  # 1 episode and 2 updates per iteration, beta decay 0.97
    easy = train_sgd_dagger(task, arch, [0, 1], schedule, 0.0, DaggerSGDConfig(max_iterations=3, check_every=2, check_episodes=1),
                            num_workers=0)
    assert (easy.stopped, easy.target_met, easy.iterations, easy.gradient_steps) == ("target", True, 2, 4)
    assert [c["iteration"] for c in easy.checks] == [2] and easy.checks[0]["buffer"] == 100
    assert easy.weights.n == 2 and torch.isfinite(easy.weights.to_vector()).all()
    assert not torch.equal(easy.weights.weights[0][0], easy.weights.weights[0][1])  # own seed each

    hard = train_sgd_dagger(task, arch, [0, 1], schedule, 1.01, DaggerSGDConfig(max_iterations=3, check_every=2, check_episodes=1),
                            num_workers=0)
    assert (hard.stopped, hard.target_met, hard.iterations, hard.gradient_steps) == ("cap", False, 3, 6)
    assert [c["iteration"] for c in hard.checks] == [2, 3]
    assert hard.checks[-1]["beta"] == pytest.approx(0.97**2)
    rep = hard.to_dict()
    assert {"target", "target_met", "stopped", "iterations", "gradient_steps", "seconds", "checks"} <= set(rep)
    assert "weights" not in rep
    json.dumps(rep)


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_alignment_study_dagger_sgd_tiny(tmp_path):
    """A tiny PushCube-v1 GHN, then the study at the tiny preset: robot tasks default to the DAgger SGD set with the
    GHN's teacher, and the report says how it trained and how both sets do on the final episodes; --sgd bc still
    trains on the run's buffer."""
    ghn_dir = tmp_path / "ghn"
    run_cli("train-ghn", "--task", "PushCube-v1", "--preset", "tiny", "--out", str(ghn_dir), "--workers", "0", "--no-progress")
    ckpt = ghn_dir / "ghn.safetensors"
    out = tmp_path / "align"
    run_cli("analyze", "alignment", "--ghn", str(ckpt), "--preset", "tiny", "--out", str(out), "--workers", "0", "--no-progress")
    rep = json.loads((out / "alignment.json").read_text())
    sgd = rep["sgd"]
    tiny = ALIGNMENT_PRESETS["tiny"]
    assert sgd["method"] == "dagger" and sgd["teacher"] == "scripted"
    assert sgd["target"] == pytest.approx(sgd["ghn_check_success"] - 0.10)
    assert sgd["target_met"] == (sgd["stopped"] == "target")
    assert 1 <= sgd["iterations"] <= tiny.dagger.max_iterations
    assert sgd["gradient_steps"] == sgd["iterations"] * GHN_PRESETS["tiny"].updates_per_iteration
    assert sgd["schedule"]["beta_decay"] == GHN_PRESETS["tiny"].beta_decay and sgd["check_seeds"][0] >= tiny.episodes
    assert rep["quality"]["GHN"] == rep["sets"]["GHN"]["success_rate"] and rep["quality"]["SGD"] == rep["sets"]["SGD"]["success_rate"]
    assert rep["networks_per_set"] == 2 and rep["sets"]["SGD"]["num_networks"] == 2

    run_cli("analyze", "alignment", "--ghn", str(ckpt), "--preset", "tiny", "--out", str(tmp_path / "bc"), "--sgd", "bc",
            "--no-evaluate", "--no-progress")
    bc = json.loads((tmp_path / "bc" / "alignment.json").read_text())
    assert bc["sgd"] == {"method": "bc", "gradient_steps": tiny.sgd_steps, "seconds": bc["sgd"]["seconds"]}
    assert "quality" not in bc


def test_bc_needs_a_buffer_and_dagger_a_robot_task(tmp_path):
    """A released checkpoint has no DAgger buffer: the bc SGD set cannot train on it (dagger can)."""
    with pytest.raises(NNiTError, match="no DAgger buffer"):
        alignment_study(ZOO_STACK_GHN, preset="tiny", out=tmp_path, evaluate=False, sgd="bc")
    with pytest.raises(NNiTError, match="unknown SGD method"):
        alignment_study(ZOO_STACK_GHN, preset="tiny", out=tmp_path, evaluate=False, sgd="adam")  # type: ignore[arg-type]


def test_alignment_presets_keep_check_seeds_apart_from_the_final_evaluation():
    """Check episodes never reuse the final evaluation's seeds (0 .. episodes - 1) nor the DAgger episodes' (10,000 +)."""
    for name, p in ALIGNMENT_PRESETS.items():
        d = p.dagger
        assert p.episodes <= d.check_seed and d.check_seed + d.check_episodes <= 10_000, name
        assert d.max_iterations >= d.check_every >= 1, name
