"""`nnit train` and `nnit generate` end to end through the real CLI, on tiny synthetic dataset directories."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest
import torch

from nnit.cli import main
from nnit.cli.generate import ModelName
from nnit.diffusion.model import MODEL_PRESETS
from nnit.diffusion.train import load_checkpoint
from nnit.ghn.dataset import iter_dataset, shard_name
from synthetic import smooth_weights  # noqa: E402  (tests/ is on sys.path)
from nnit.weights import Architecture, WeightNormalizer, WeightSet

TRAIN_HIDDEN = [(16, 32, 64, 32), (32, 32, 32, 32), (64, 16, 16, 64), (32, 64, 16, 16)]
HELD_OUT = (64, 32, 16, 64)




def write_dataset(path: Path, task: str, input_dim: int, output_dim: int, control_mode: str | None = None, n: int = 8) -> Path:
    """A dataset directory in nnit build-dataset's layout: shards/, index.json, normalization.json."""
    archs = {}
    for k, (role, h) in enumerate([("train", h) for h in TRAIN_HIDDEN] + [("held_out", HELD_OUT)]):
        ws = smooth_weights(Architecture(input_dim, h, output_dim), n, seed=k)
        ws.save(path / "shards" / shard_name(h), extra_metadata={"task": task})
        archs[",".join(map(str, h))] = {"role": role, "hidden": list(h), "candidates": [], "num_passed": n, "num_kept": n}
    index = {"task": task, "control_mode": control_mode, "config": {}, "architectures": archs}
    (path / "index.json").write_text(json.dumps(index))
    WeightNormalizer.fit([ws for _, ws in iter_dataset(path, roles=("train",))]).save(path / "normalization.json")
    return path


def run_cli(args: list[str], capsys) -> str:
    main([str(a) for a in args])
    return capsys.readouterr().out


def cli_error(args: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nnit: error:") and "\n" not in err, err
    return err


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    """FashionMNIST-shaped dataset (49 -> 10) and an NNiT trained on it with `nnit train --preset tiny`."""
    root = tmp_path_factory.mktemp("fashion")
    ds = write_dataset(root / "dataset", "FashionMNIST", 49, 10)
    main(["train", "--dataset", str(ds), "--preset", "tiny", "--no-progress"])
    return ds, root / "nnit"


def test_model_choices_follow_the_presets():
    assert set(typing.get_args(ModelName)) == set(MODEL_PRESETS)


def test_train_writes_a_checkpoint_and_the_loss_falls(fashion):
    ds, out = fashion
    ck = load_checkpoint(out)
    assert ck.step == 200 and ck.config.model == "NNiT-XS"
    assert ck.data["task"] == "FashionMNIST" and ck.data["input_dim"] == 49 and ck.data["output_dim"] == 10
    assert sorted(map(tuple, ck.data["train_archs"])) == sorted(TRAIN_HIDDEN)  # the held-out architecture stays out
    from nnit.ghn.dataset import dataset_normalizer  # the default per-role statistics of the train networks

    assert ck.data["normalizer"]["mode"] == "per_role"
    assert ck.data["normalizer"] == dataset_normalizer(ds, "per_role").to_dict()
    assert ck.data["normalizer"]["mean"] == json.loads((ds / "normalization.json").read_text())["mean"]
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 200
    first, last = log[0]["total"], sum(r["total"] for r in log[-3:]) / 3
    assert last < 0.7 * first, (first, last)


def test_train_again_resumes(fashion, capsys, tmp_path):
    ds, out = fashion
    copy = tmp_path / "nnit"
    copy.mkdir()
    (copy / "checkpoint.safetensors").write_bytes((out / "checkpoint.safetensors").read_bytes())
    text = run_cli(["train", "--dataset", ds, "--preset", "tiny", "--out", copy, "--steps", 205, "--no-progress"], capsys)
    assert "resuming" in text and "at step 200/205" in text
    assert load_checkpoint(copy).step == 205
    assert [json.loads(x)["step"] for x in (copy / "train_log.jsonl").read_text().splitlines()] == [205]
    # a continuation may switch on architecture-balanced sampling; the checkpoint keeps it
    text = run_cli(["train", "--dataset", ds, "--preset", "tiny", "--out", copy, "--steps", 210, "--arch-balance", 1,
                    "--no-progress"], capsys)
    assert "arch_balance 0.0 -> 1.0 from step 205" in text and "architecture-balanced sampling" in text
    assert load_checkpoint(copy).config.arch_balance == 1.0 and load_checkpoint(copy).step == 210


def test_generate_conditional_evaluates_and_exports(fashion, capsys, tmp_path):
    _, out = fashion
    gen = tmp_path / "gen"
    text = run_cli(["generate", "--task", "FashionMNIST", "--preset", "tiny", "--checkpoint", out / "checkpoint.safetensors",
                    "--arch", "64,32,16,64", "--num", 4, "--steps", 5, "--evaluate", "--out", gen, "--no-progress"], capsys)
    ws = WeightSet.load(gen / "networks.safetensors")
    assert ws.n == 4 and ws.arch == Architecture(49, (64, 32, 16, 64), 10)
    for i in range(ws.n):
        x = torch.randn(3, 49)
        y = ws.to_sequential(i)(x)
        assert y.shape == (3, 10) and torch.isfinite(y).all()
        torch.testing.assert_close(y, ws(x)[i])  # the plain nn.Sequential is the same network
    assert (gen / "heatmap.png").stat().st_size > 1000 and "to_sequential" in (gen / "README.md").read_text()
    res = json.loads((gen / "results.json").read_text())
    assert res["mode"] == "conditional" and res["num"] == 4 and res["sample_seconds"] > 0
    (row,) = res["top_k"]
    assert row["metric"] == "accuracy" and row["k"] == 2 and row["n"] == 4 and 0.0 <= row["mean"] <= 1.0
    assert (gen / "eval_h64-32-16-64.json").exists() and (gen / "eval_h64-32-16-64.csv").exists()
    assert "top-k" in text and "NNiT [64,32,16,64]" in text
    assert "temperature 0.5)" in text and res["temperature"] == 0.5  # the preset's default


def test_generate_with_a_lower_temperature_records_it(fashion, capsys, tmp_path):
    _, out = fashion
    text = run_cli(["generate", "--task", "FashionMNIST", "--checkpoint", out, "--arch", "64,32,16,64", "--num", 2,
                    "--steps", 3, "--temperature", 0.8, "--out", tmp_path / "gen", "--no-progress"], capsys)
    assert "(ancestral, 3 steps, temperature 0.8)" in text
    assert json.loads((tmp_path / "gen" / "results.json").read_text())["temperature"] == 0.8
    assert WeightSet.load(tmp_path / "gen" / "networks.safetensors").n == 2


def test_generate_defaults_to_the_presets_sampler(fashion, capsys, tmp_path, monkeypatch):
    """Without --sampler / --steps, nnit generate samples with the preset's (nnit.config.EVAL); --sampler alone
    takes that sampler's own default steps."""
    from dataclasses import replace

    from nnit.config import EVAL

    _, out = fashion
    monkeypatch.setitem(EVAL, "tiny", replace(EVAL["tiny"], sampler="dpm++2m-sde", steps=3, temperature=0.25))
    common = ["generate", "--task", "FashionMNIST", "--preset", "tiny", "--checkpoint", out, "--arch", "64,32,16,64",
              "--num", 2, "--no-progress"]
    text = run_cli(common + ["--out", tmp_path / "a"], capsys)
    assert "(dpm++2m-sde, 3 steps, temperature 0.25)" in text
    res = json.loads((tmp_path / "a" / "results.json").read_text())
    assert (res["sampler"], res["steps"], res["temperature"]) == ("dpm++2m-sde", 3, 0.25)
    run_cli(common + ["--sampler", "ddim", "--out", tmp_path / "b"], capsys)
    res = json.loads((tmp_path / "b" / "results.json").read_text())
    assert (res["sampler"], res["steps"]) == ("ddim", 50)


def test_generate_joint_reports_validity_and_novelty(fashion, capsys):
    _, out = fashion
    text = run_cli(["generate", "--task", "fashionmnist", "--preset", "tiny", "--checkpoint", out, "--num", 4,
                    "--steps", 4, "--evaluate", "--no-progress"], capsys)
    gen = out.parent / "generated" / "joint_d4"  # default: beside the checkpoint
    res = json.loads((gen / "results.json").read_text())
    assert res["mode"] == "joint" and res["joint"]["num"] == 4
    assert 0 <= res["joint"]["valid"] <= 4 and 0 <= res["joint"]["novel"] <= 4
    assert sum(a["num"] for a in res["architectures"].values()) == 4
    for f in res["files"].values():
        ws = WeightSet.load(f)
        assert torch.isfinite(ws.to_sequential(0)(torch.randn(2, 49))).all()
    assert "valid" in text and "novel" in text and "NNiT joint d4" in text
    assert res["joint_top_k"]["n"] == 4 and len(res["joint_networks"]) == 4


def test_generate_errors_are_one_line(fashion, capsys, tmp_path, monkeypatch):
    _, out = fashion
    ck = out / "checkpoint.safetensors"
    monkeypatch.chdir(tmp_path)
    err = cli_error(["generate", "--task", "PushCube-v1", "--preset", "tiny", "--arch", "32,32,32,32"], capsys)
    assert "no NNiT checkpoint at runs/tiny/PushCube-v1/nnit/checkpoint.safetensors" in err and "nnit train" in err
    err = cli_error(["generate", "--task", "MNIST", "--checkpoint", ck, "--arch", "32,32,32,32"], capsys)
    assert "trained on FashionMNIST, not MNIST" in err
    err = cli_error(["generate", "--task", "FashionMNIST", "--checkpoint", ck, "--arch", "16,128,16,16", "--num", 1], capsys)
    assert "not expressible" in err and "max_width" in err
    err = cli_error(["generate", "--task", "FashionMNIST", "--checkpoint", ck, "--arch", ",".join(["16"] * 12), "--num", 1], capsys)
    assert "not expressible" in err and "depth" in err
    err = cli_error(["train", "--dataset", tmp_path / "nope"], capsys)
    assert "not a dataset directory" in err
    err = cli_error(["train", "--dataset", tmp_path / "nope", "--arch-balance", "-1"], capsys)
    assert "--arch-balance must be a number >= 0" in err
    err = cli_error(["generate", "--task", "FashionMNIST", "--checkpoint", ck, "--arch", "32,32,32,32", "--temperature", "-1"], capsys)
    assert "--temperature must be >= 0" in err
    bad = tmp_path / "ghn.safetensors"
    bad.write_bytes(b"not a checkpoint")
    err = cli_error(["generate", "--task", "FashionMNIST", "--checkpoint", bad, "--arch", "32,32,32,32"], capsys)
    assert "cannot read" in err


def test_robot_task_train_and_generate_without_evaluation(tmp_path, capsys):
    """PushCube in the scripted teachers' control mode (pd_ee_delta_pos: 35 -> 4), read from the dataset index."""
    ds = write_dataset(tmp_path / "dataset", "PushCube-v1", 35, 4, control_mode="pd_ee_delta_pos", n=4)
    run_cli(["train", "--dataset", ds, "--preset", "tiny", "--steps", 10, "--no-progress"], capsys)
    ck = load_checkpoint(tmp_path / "nnit")
    assert ck.data["task"] == "PushCube-v1" and ck.data["control_mode"] == "pd_ee_delta_pos"
    text = run_cli(["generate", "--task", "PushCube-v1", "--preset", "tiny", "--checkpoint", tmp_path / "nnit",
                    "--arch", "24,32,64,16", "--num", 4, "--steps", 3, "--no-progress"], capsys)  # width 24: unseen
    ws = WeightSet.load(tmp_path / "generated" / "h24-32-64-16" / "networks.safetensors")
    assert ws.arch == Architecture(35, (24, 32, 64, 16), 4) and ws.n == 4
    assert torch.isfinite(ws.to_sequential(3)(torch.randn(2, 35))).all()
    assert "sampled and assembled" in text


def test_generate_says_when_an_architecture_is_outside_the_training_support(fashion, capsys, tmp_path):
    _, out = fashion  # trained on depth 4, widths {16, 32, 64}
    text = run_cli(["generate", "--task", "FashionMNIST", "--checkpoint", out, "--arch", "32,32,32", "--num", 2, "--steps", 2,
                    "--out", tmp_path / "d3", "--no-progress"], capsys)
    (line,) = [ln for ln in text.splitlines() if ln.startswith("warning:")]
    assert "[32,32,32] is outside what this model was trained on: depth 3 was never trained on" in line and "--strict" in line
    support = json.loads((tmp_path / "d3" / "results.json").read_text())["support"]
    assert support["in_support"] is False and support["train_depths"] == [4] and support["train_widths"] == [16, 32, 64]
    text = run_cli(["generate", "--task", "FashionMNIST", "--checkpoint", out, "--arch", "64,32,16,64", "--num", 2, "--steps", 2,
                    "--out", tmp_path / "ok", "--no-progress"], capsys)
    assert "warning" not in text and json.loads((tmp_path / "ok" / "results.json").read_text())["support"]["in_support"] is True
    for arch, why in (("32,32,32", "depth 3"), ("32,24,32,32", "width 24")):
        err = cli_error(["generate", "--task", "FashionMNIST", "--checkpoint", out, "--arch", arch, "--num", 2, "--steps", 2,
                         "--out", tmp_path / "strict", "--strict"], capsys)
        assert why in err and "strict" in err
    assert not (tmp_path / "strict").exists()  # refused before anything is written
