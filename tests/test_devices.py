"""The device options: ``nnit train-ghn --device`` and ``nnit generate --device`` (cpu / cuda), and what the checkpoints
record about where they trained (GHN: ``config["device"]``; NNiT: ``data["device"]`` and ``data["autocast"]``).
The CUDA cases run only where torch sees a GPU; without one, asking for CUDA is a one-line error."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import _training_scenarios as S  # noqa: E402  (tests/ is on sys.path)
import nnit
from nnit import api
from nnit.api import APIError, TrainOverrides
from nnit.checkpoint import load_checkpoint
from nnit.distributed import DeviceError, default_device, torch_device
from test_nnit_cli import cli_error, write_dataset  # noqa: E402

CUDA = torch.cuda.is_available()
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not CUDA, reason="needs a CUDA device"))]
without_cuda = pytest.mark.skipif(CUDA, reason="the error of a machine without CUDA")


@pytest.fixture(scope="module")
def tiny_nnit(tmp_path_factory):
    """An NNiT trained by nnit.train for a few steps (tiny preset) on a FashionMNIST-shaped dataset."""
    root = tmp_path_factory.mktemp("devices")
    ds = write_dataset(root / "dataset", "FashionMNIST", 49, 10)
    return nnit.train(ds, "tiny", overrides=TrainOverrides(steps=4)).checkpoint


def test_device_names():
    assert torch_device("cpu") == torch.device("cpu") and torch_device(torch.device("cpu")).type == "cpu"
    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        torch_device("tpu")


@without_cuda
def test_cuda_without_a_gpu_is_a_one_line_error(tiny_nnit, capsys, tmp_path):
    with pytest.raises(DeviceError, match="no CUDA device"):
        torch_device("cuda")
    err = cli_error(["train-ghn", "--task", "FashionMNIST", "--preset", "tiny", "--device", "cuda", "--out", tmp_path / "ghn"],
                    capsys)
    assert "no CUDA device" in err and not (tmp_path / "ghn").exists()
    err = cli_error(["generate", "--task", "FashionMNIST", "--checkpoint", tiny_nnit, "--arch", "64,32,16,64", "--num", 1,
                     "--device", "cuda", "--out", tmp_path / "gen"], capsys)
    assert "no CUDA device" in err


@pytest.mark.parametrize("device", DEVICES)
def test_ghn_trains_on_the_device_and_loads_on_the_cpu(device, tmp_path):
    from nnit.ghn.train import ghn_config, load_ghn_ensemble, train_ghn_ensemble
    from nnit.weights import Architecture

    cfg = dataclasses.replace(ghn_config("tiny", "FashionMNIST"), iterations=2)
    path = train_ghn_ensemble("FashionMNIST", cfg, tmp_path / "ghn", data_dir=str(S.fake_fashion(tmp_path / "fashion")),
                              progress=False, device=device)
    assert load_checkpoint(path).config["device"] == device
    log = [json.loads(line) for line in (tmp_path / "ghn" / "train_log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in log] == [1, 2] and all(torch.isfinite(torch.tensor(r["loss_mean"])) for r in log)
    model, _ = load_ghn_ensemble(path)  # the checkpoint holds CPU tensors, whatever it trained on
    ws = model.generate([Architecture(49, (64, 32, 16, 64), 10)])[0].detach()
    assert ws.weights[0].device.type == "cpu" and ws.n == 2
    ws.check_finite()


@pytest.mark.parametrize("device", DEVICES)
def test_generate_samples_on_the_device(device, tiny_nnit, tmp_path):
    gen = nnit.generate(tiny_nnit, "FashionMNIST", "64,32,16,64", num=3, steps=3, device=device)
    ws = gen.weights
    assert ws.n == 3 and ws.weights[0].device.type == "cpu"  # returned on the CPU
    ws.check_finite()
    assert gen.device == device and gen.provenance()["device"] == device
    api.save_generation(gen, tmp_path / "gen")
    assert json.loads((tmp_path / "gen" / "results.json").read_text())["device"] == device


def test_nnit_checkpoint_records_device_and_autocast(tiny_nnit):
    data = load_checkpoint(tiny_nnit).sections["data"]
    assert data["device"] == default_device().type  # nnit train picks CUDA when it sees one
    assert data["autocast"] == ("bfloat16" if CUDA else None)  # bf16 autocast on CUDA only


def test_a_baseline_samples_on_the_cpu_only(tmp_path):
    S.run_sane(tmp_path / "sane")
    assert api.load_generator(tmp_path / "sane", device="cpu").label == "SANE"
    with pytest.raises(APIError, match="samples on the CPU only"):
        api.load_generator(tmp_path / "sane", device="cuda")
