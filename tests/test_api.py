"""The Python API (nnit.api): typed results from generate / evaluate / train, errors as APIError, and the
README's API snippet and examples/ run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import nnit
from nnit.api import APIError, EvalTable, GenerationResult, TrainOverrides, TrainRun
from nnit.weights import Architecture, WeightSet
from test_nnit_cli import write_dataset  # noqa: E402  (tests/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A FashionMNIST-shaped dataset and an NNiT trained on it through nnit.train (tiny preset)."""
    root = tmp_path_factory.mktemp("api")
    ds = write_dataset(root / "dataset", "FashionMNIST", 49, 10)
    messages: list[str] = []
    run = nnit.train(ds, "tiny", overrides=TrainOverrides(steps=30), log=messages.append)
    return ds, run, messages


def test_train_returns_a_typed_run_and_resumes(trained):
    ds, run, messages = trained
    assert isinstance(run, TrainRun) and run.checkpoint.exists() and run.task == "FashionMNIST"
    assert (run.start_step, run.end_step) == (0, 30) and len(run.history) == 30 and run.seconds > 0
    assert any(m.startswith("training NNiT") for m in messages)
    more: list[str] = []
    again = nnit.train(ds, "tiny", overrides=TrainOverrides(steps=35), log=more.append)
    assert (again.start_step, again.end_step) == (30, 35) and any("resuming" in m for m in more)


def test_generate_conditional_gives_weights_and_sequentials(trained):
    _, run, _ = trained
    res = nnit.generate(run.checkpoint, task="FashionMNIST", arch="64,32,16,64", num=3, steps=4, temperature=0.5)
    assert isinstance(res, GenerationResult) and res.mode == "conditional" and res.generator == "NNiT"
    assert res.weights.arch == Architecture(49, (64, 32, 16, 64), 10) and res.num == 3
    assert (res.sampler, res.steps, res.temperature) == ("ancestral", 4, 0.5) and res.seconds > 0
    nets = res.networks
    assert len(nets) == 3 and isinstance(nets[0], torch.nn.Sequential)
    x = torch.randn(5, 49)
    torch.testing.assert_close(nets[1](x), res.weights(x)[1])
    same = nnit.generate(run.checkpoint, task="FashionMNIST", arch=(64, 32, 16, 64), num=3, steps=4, temperature=0.5)
    torch.testing.assert_close(same.weights.weights[0], res.weights.weights[0])  # same seed, same networks


def test_evaluate_gives_per_network_results_and_the_top_k_row(trained):
    _, run, _ = trained
    res = nnit.generate(run.checkpoint, task="FashionMNIST", arch="32,32,32,32", num=4, steps=3)
    table = nnit.evaluate("FashionMNIST", res, top_k=2)
    assert isinstance(table, EvalTable) and table.top_k.k == 2 and table.top_k.n == 4
    r = table.results[(32, 32, 32, 32)]
    assert r.n == 4 and r.primary == "accuracy"
    assert table.top_k.mean == pytest.approx(sum(sorted(r.metrics["accuracy"])[-2:]) / 2)
    assert "top-k" in str(table) and "NNiT [32,32,32,32]" in table.table()
    plain = nnit.evaluate("FashionMNIST", res.weights, top_k=2)  # a bare WeightSet gives the same numbers
    assert plain.top_k.mean == table.top_k.mean


def test_joint_generation_groups_architectures_and_has_a_joint_row(trained):
    _, run, _ = trained
    res = nnit.generate(run.checkpoint, task="FashionMNIST", num=4, steps=3)
    assert res.mode == "joint" and res.num == 4 and res.joint["num"] == 4
    assert all(isinstance(ws, WeightSet) and ws.arch.hidden == h for h, ws in res.sets.items())
    table = nnit.evaluate("FashionMNIST", res, top_k=2)
    assert table.top_k is table.joint_row and table.joint_row.n == 4
    if len(res.sets) > 1:
        with pytest.raises(APIError):
            res.weights
    # the tiny preset trains the architecture-prior mode: architectures are drawn first, then their weights
    assert res.joint["schedule"] == "arch-first" and "warning" not in res.joint
    ref = res.joint["train_reference"]
    assert 0 <= res.joint["tv_to_train"] <= 1 and ref["num"] == 4 and ref["distinct_archs"]["mean"] >= 1
    assert any("total variation to the training frequencies" in line for line in res.summary_lines())


@pytest.mark.skipif(not (ROOT / "zoo" / "nnit_PushCube-v1.safetensors").exists(), reason="no zoo model")
def test_joint_sampling_without_an_architecture_prior_says_so():
    """A valid-token model trained without the prior mode samples architectures and weights together over one layout,
    which reveals the architecture: the result carries a warning and ``nnit generate`` prints it."""
    res = nnit.generate(ROOT / "zoo" / "nnit_PushCube-v1.safetensors", "PushCube-v1", num=3, steps=2, sampler="ddim")
    assert res.joint["schedule"] == "together" and "without the architecture-prior mode" in res.joint["warning"]
    assert any(line.startswith("warning: ") and "architecture-prior" in line for line in res.summary_lines())


def test_api_errors_are_api_errors(trained, tmp_path):
    _, run, _ = trained
    with pytest.raises(APIError, match="trained on FashionMNIST, not MNIST"):
        nnit.generate(run.checkpoint, task="MNIST", arch="32,32,32,32", num=1, steps=1)
    with pytest.raises(APIError, match="not expressible"), pytest.warns(nnit.api.SupportWarning, match="width 128"):
        nnit.generate(run.checkpoint, task="FashionMNIST", arch="16,128,16,16", num=1, steps=1)
    with pytest.raises(APIError, match="temperature must be >= 0"):
        nnit.generate(run.checkpoint, task="FashionMNIST", arch="32,32,32,32", num=1, steps=1, temperature=-1)
    with pytest.raises(APIError, match="no checkpoint"):
        nnit.generate(tmp_path / "missing.safetensors", task="FashionMNIST", arch="32,32,32,32")
    with pytest.raises(APIError, match="not a dataset directory"):
        nnit.train(tmp_path / "nope", "tiny")


def _readme_api_snippet() -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"^## Python API\n(.*?)^## ", text, flags=re.S | re.M)
    assert m, "README.md has no '## Python API' section"
    blocks = re.findall(r"```python\n(.*?)```", m.group(1), flags=re.S)
    assert blocks, "README.md's Python API section has no python code block"
    return blocks[0]


@pytest.mark.slow
@pytest.mark.sim
def test_readme_api_snippet_runs(tmp_path):
    """The README's API example, executed as written from the repository root."""
    code = _readme_api_snippet()
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert "top-k" in proc.stdout and 0.0 <= float(lines[-1]) <= 1.0


@pytest.mark.slow
@pytest.mark.sim
def test_example_script_runs(tmp_path):
    proc = subprocess.run([sys.executable, "examples/generate_and_evaluate.py", "--num", "4", "--steps", "20", "--episodes", "2",
                           "--out", str(tmp_path / "ex")], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "top-4 of 4: success" in proc.stdout
    assert WeightSet.load(tmp_path / "ex" / "networks.safetensors").n == 4


# ---------------------------------------------------------------------------- support: depth and widths seen in training
@pytest.mark.parametrize("arch,why", [("32,32,32", "depth 3 was never trained on"), ("32,32,32,32,32", "depth 5 was never trained on"),
                                      ("32,24,32,32", "width 24 never seen in training"),
                                      ("16,48,64,8", "widths 8, 48 never seen in training")])
def test_an_architecture_outside_the_training_support_is_flagged_and_strict_refuses_it(trained, arch, why):
    _, run, _ = trained  # trained on depth 4, widths {16, 32, 64}
    with pytest.warns(nnit.api.SupportWarning, match=why):
        res = nnit.generate(run.checkpoint, task="FashionMNIST", arch=arch, num=2, steps=2)
    assert not res.in_support and any(why in w for w in res.support_warnings) and res.num == 2
    with pytest.raises(APIError, match=f"outside what .* was trained on: .*{why}.*strict"):
        nnit.generate(run.checkpoint, task="FashionMNIST", arch=arch, num=2, steps=2, strict=True)


def test_an_architecture_inside_the_support_gets_no_warning(trained, recwarn):
    _, run, _ = trained
    res = nnit.generate(run.checkpoint, task="FashionMNIST", arch="64,32,16,64", num=2, steps=2, strict=True)  # held out, seen widths
    assert res.in_support and res.support_warnings == []
    assert not [w for w in recwarn if issubclass(w.category, nnit.api.SupportWarning)]


def test_parameterization_override_trains_and_samples_an_eps_model(trained, tmp_path):
    from nnit.diffusion.train import load_checkpoint

    ds, run, _ = trained
    assert load_checkpoint(run.checkpoint).config.parameterization == "v"  # the tiny preset's
    eps = nnit.train(ds, "tiny", out=tmp_path / "eps", overrides=TrainOverrides(steps=2, parameterization="eps"))
    assert load_checkpoint(eps.checkpoint).config.parameterization == "eps"
    res = nnit.generate(eps.checkpoint, task="FashionMNIST", arch="64,32,16,64", num=2, steps=2)
    (ws,) = res.sets.values()
    assert ws.n == 2 and all(torch.isfinite(w).all() for w in ws.weights)


def test_init_from_starts_a_new_run_from_a_checkpoints_weights(trained, tmp_path):
    from nnit.diffusion.train import load_checkpoint

    ds, run, _ = trained
    messages: list[str] = []
    ft = nnit.train(ds, "tiny", out=tmp_path / "ft", log=messages.append,
                    overrides=TrainOverrides(steps=2, init_from=run.checkpoint, model="NNiT-Ti", p_prior=0.3))
    init, ck = load_checkpoint(run.checkpoint), load_checkpoint(ft.checkpoint)
    assert (ft.start_step, ft.end_step) == (0, 2) and any("starting from the weights" in m for m in messages)
    assert ck.model_config == init.model_config  # the model comes from the checkpoint, not from --model
    assert ck.config.p_prior == 0.3 and ck.data["init_from"] == {"path": str(run.checkpoint), "step": init.step}
    moved = max(float((ck.model[k] - init.ema[k]).abs().max()) for k in init.ema)
    assert moved < 1e-3  # two small warm-up steps away from the EMA weights it started from
    with pytest.raises(APIError, match="p-prior"):
        nnit.train(ds, "tiny", out=tmp_path / "bad", overrides=TrainOverrides(p_prior=0.9))
    with pytest.raises(APIError, match="p-joint"):
        nnit.train(ds, "tiny", out=tmp_path / "bad", overrides=TrainOverrides(p_joint=1.5))
    with pytest.raises(APIError, match=r"p-prior must be in \[0, 0.2\]"):  # the two modes' shares add up to at most 1
        nnit.train(ds, "tiny", out=tmp_path / "bad", overrides=TrainOverrides(p_joint=0.8, p_prior=0.3))
    with pytest.raises(APIError, match="min-snr-gamma"):
        nnit.train(ds, "tiny", out=tmp_path / "bad", overrides=TrainOverrides(min_snr_gamma=-1.0))
