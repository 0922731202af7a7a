"""End to end on synthetic structured weights: MoNL training, checkpoint + resume, sampling, assembly."""

from __future__ import annotations

import dataclasses
import json
import math
import signal

import pytest
import torch

from nnit.diffusion.model import ModelError
from nnit.diffusion.sample import NNiTSampler
from nnit.diffusion.train import (
    CHECKPOINT_NAME,
    TRAIN_PRESETS,
    CheckpointError,
    TrainConfig,
    TrainingStopped,
    load_checkpoint,
    lr_at,
    train,
    train_config,
)
from synthetic import smooth_weights  # noqa: E402  (tests/ is on sys.path)
from test_stopping import sigterm_when_logged  # noqa: E402
from nnit.weights import Architecture, ArchitectureError, GridError, WeightNormalizer, WeightSet


TRAIN_HIDDEN = [(16, 32, 64, 32), (32, 32, 32, 32), (64, 16, 16, 64), (32, 64, 16, 16)]




def dataset(input_dim: int = 42, n: int = 16):
    raw = [smooth_weights(Architecture(input_dim, h, 8), n, seed=k) for k, h in enumerate(TRAIN_HIDDEN)]
    norm = WeightNormalizer.fit(raw)
    return [norm.apply(ws) for ws in raw], norm


TINY = dataclasses.replace(TRAIN_PRESETS["tiny"], steps=200, ckpt_every=1000, log_every=25)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data, norm = dataset()
    out = tmp_path_factory.mktemp("nnit_tiny")
    res = train(TINY, data, out, normalizer=norm, progress=False)
    return res, out, norm


def test_presets_and_lr_schedule():
    assert set(TRAIN_PRESETS) == {"tiny", "cpu", "paper"}
    p = TRAIN_PRESETS["paper"]  # paper Table 7
    assert (p.lr, p.min_lr, p.warmup_steps, p.batch_size, p.ema_decay, p.grad_clip, p.num_timesteps, p.weight_decay) == (
        7e-5, 3e-5, 500, 16, 0.9999, 1.0, 1000, 0.0)
    assert lr_at(0, p) == pytest.approx(7e-5 / 500)
    assert lr_at(499, p) == pytest.approx(7e-5)
    assert lr_at(p.steps, p) == pytest.approx(3e-5)
    mid = lr_at((p.steps + 500) // 2, p)
    assert 3e-5 < mid < 7e-5
    assert TrainConfig.from_dict(p.to_dict()) == p
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.lr = 1.0  # type: ignore[misc]


def test_cpu_preset_trains_the_grasping_tasks_longer():
    assert train_config("cpu", "PushCube-v1") == train_config("cpu") == TRAIN_PRESETS["cpu"]
    for task in ("PickCube-v1", "StackCubeEasy-v1"):
        cfg = train_config("cpu", task)
        assert cfg.steps == 60_000 > TRAIN_PRESETS["cpu"].steps
        assert dataclasses.replace(cfg, steps=TRAIN_PRESETS["cpu"].steps) == TRAIN_PRESETS["cpu"]  # only the length differs
    # paper: Table 7's 1300 epochs (x 400 steps) for the grasping tasks, 1000 for PushCube-v1; epsilon prediction
    assert train_config("paper", "PushCube-v1") == TRAIN_PRESETS["paper"] and TRAIN_PRESETS["paper"].steps == 400_000
    paper_pick = train_config("paper", "PickCube-v1")
    assert paper_pick.steps == 520_000 and dataclasses.replace(paper_pick, steps=400_000) == TRAIN_PRESETS["paper"]
    assert TRAIN_PRESETS["paper"].parameterization == "eps"
    with pytest.raises(ValueError, match="unknown preset"):
        train_config("huge")


def test_loss_falls_and_checkpoint_written(trained):
    res, out, _ = trained
    h = res.history
    assert res.start_step == 0 and res.end_step == TINY.steps and len(h) == TINY.steps
    first = sum(r["total"] for r in h[:15]) / 15
    last = sum(r["total"] for r in h[-15:]) / 15
    assert last < 0.6 * first, (first, last)
    assert all(math.isfinite(r["total"]) for r in h)
    ck = load_checkpoint(out)
    assert ck.step == TINY.steps and ck.config.model == "NNiT-XS"
    assert ck.data["input_dim"] == 42 and [16, 32, 64, 32] in ck.data["train_archs"]
    assert list((out / "tb").glob("events.out.tfevents.*"))
    assert not list(out.glob("*.tmp"))


def test_conditional_sampling_assembles_and_runs(trained):
    _, out, norm = trained
    s = NNiTSampler.from_checkpoint(out)
    for hidden in [(16, 32, 64, 32), (32, 16, 64, 32), (24, 48, 16, 40)]:  # train, unseen combo, unseen widths
        arch = Architecture(42, hidden, 8)
        ws = s.conditional(arch, num=6, method="ddim", steps=10, seed=1)
        assert ws.arch == arch and ws.n == 6
        ws.check_finite()
        y = ws(torch.randn(5, 42))
        assert y.shape == (6, 5, 8) and torch.isfinite(y).all()
        # samples are in the raw (un-normalized) scale and not all equal
        assert ws.to_vector().std(0).mean() > 0
    # a few-step ancestral sampler with learned variance also works
    ws = s.conditional(Architecture(42, (16, 32, 64, 32), 8), num=3, method="ancestral", steps=10)
    assert ws.n == 3


def test_samples_resemble_the_data(trained):
    """After a short training the samples are much closer to the data than to noise (normalized space)."""
    _, out, norm = trained
    s = NNiTSampler.from_checkpoint(out)
    arch = Architecture(42, (16, 32, 64, 32), 8)
    gen = norm.apply(s.conditional(arch, num=16, method="ddim", steps=20, seed=2)).to_vector()
    real = norm.apply(smooth_weights(arch, 16, seed=0)).to_vector()
    d_real = torch.cdist(gen, real).min(1).values.mean()
    d_noise = torch.cdist(torch.randn_like(gen), real).min(1).values.mean()
    cos = torch.nn.functional.cosine_similarity(gen.mean(0), real.mean(0), dim=0)
    print(f"nn distance {float(d_real):.1f} (noise {float(d_noise):.1f}), cosine of means {float(cos):.3f}")
    assert d_real < 0.85 * d_noise, (float(d_real), float(d_noise))
    assert cos > 0.3, float(cos)  # ~0 for noise; ~0.5 after 200 steps, rises with training


def test_joint_sampling_reports_validity(trained):
    _, out, _ = trained
    s = NNiTSampler.from_checkpoint(out)
    j = s.joint(num=6, depth=4, method="ddim", steps=10, seed=0)
    summ = j.summary()
    assert summ["num"] == 6 and 0 <= summ["valid"] <= 6 and summ["distinct_archs"] >= 1
    assert sum(ws.n for ws in j.weights.values()) == 6
    for h, ws in j.weights.items():
        assert ws.arch.hidden == h and len(h) == 4 and set(h) <= {16, 32, 64}
        assert torch.isfinite(ws(torch.randn(2, 42))).all()


def test_conditional_errors(trained):
    _, out, _ = trained
    s = NNiTSampler.from_checkpoint(out)
    with pytest.raises(GridError, match="max_width"):
        s.conditional(Architecture(42, (16, 128, 16, 16), 8), num=1, steps=2)
    with pytest.raises(ModelError, match="depth"):
        s.conditional(Architecture(42, (16,) * 12, 8), num=1, steps=2)
    with pytest.raises(ArchitectureError, match="vocabulary"):
        s.conditional(Architecture(42, (24, 16, 16, 16), 8), num=1, steps=2, unknown="error")


def test_kill_and_resume_continues_the_run(tmp_path):
    data, norm = dataset(n=4)
    cfg = dataclasses.replace(TRAIN_PRESETS["tiny"], steps=24, ckpt_every=1000, log_every=4)
    straight = train(cfg, data, tmp_path / "a", normalizer=norm, progress=False)
    part = train(cfg, data, tmp_path / "b", normalizer=norm, progress=False, stop_after=10)  # "killed" at step 10
    assert part.end_step == 10 and load_checkpoint(tmp_path / "b").step == 10
    # resuming reads the architecture from the checkpoint, even if the caller asks for another model
    rest = train(dataclasses.replace(cfg, model="NNiT-Ti"), data, tmp_path / "b", normalizer=norm, progress=False)
    assert rest.start_step == 10 and rest.end_step == 24
    assert load_checkpoint(tmp_path / "b").config.model == "NNiT-XS"
    a = [r["total"] for r in straight.history[10:]]
    b = [r["total"] for r in rest.history]
    assert [r["step"] for r in rest.history] == list(range(11, 25))
    torch.testing.assert_close(torch.tensor(b), torch.tensor(a), rtol=1e-4, atol=1e-5)


def test_sigterm_checkpoints_the_last_step_and_resume_continues(tmp_path):
    """Ctrl-C / SIGTERM: the step in progress finishes, is checkpointed, and a rerun resumes there."""
    data, norm = dataset(n=4)
    cfg = dataclasses.replace(TRAIN_PRESETS["tiny"], steps=100_000, ckpt_every=100_000, log_every=2)
    log = tmp_path / "run" / "train_log.jsonl"
    before = signal.getsignal(signal.SIGTERM)
    sigterm_when_logged(log, 3)
    with pytest.raises(TrainingStopped) as stopped:
        train(cfg, data, tmp_path / "run", normalizer=norm, progress=False)
    step = stopped.value.step
    assert 6 <= step < 100_000 and stopped.value.signum == signal.SIGTERM
    assert load_checkpoint(tmp_path / "run").step == step
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored
    rest = train(dataclasses.replace(cfg, steps=step + 4), data, tmp_path / "run", normalizer=norm, progress=False)
    assert rest.start_step == step and [r["step"] for r in rest.history] == list(range(step + 1, step + 5))
    logged = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert logged == sorted(set(logged)) and logged[-1] == step + 4


def test_checkpoint_is_not_pickle_and_errors_are_clear(trained, tmp_path):
    _, out, _ = trained
    raw = (out / CHECKPOINT_NAME).read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])  # safetensors: a JSON header, then raw tensor bytes
    meta = header["__metadata__"]
    assert meta["format"] == "nnit.checkpoint/1" and json.loads(meta["model_config"])["hidden_size"] == 64
    assert any(k.startswith("optim.") for k in header) and any(k.startswith("ema.") for k in header)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing")


def test_padded_mode_trains_and_refuses_unknown_widths(tmp_path):
    data, norm = dataset(n=2)
    cfg = dataclasses.replace(TRAIN_PRESETS["tiny"], token_mode="padded", steps=3, batch_size=2)
    train(cfg, data, tmp_path, normalizer=norm, progress=False)
    s = NNiTSampler.from_checkpoint(tmp_path)
    assert s.conditional(Architecture(42, (16, 32, 64, 32), 8), num=2, steps=2).n == 2
    with pytest.raises(ArchitectureError, match="valid"):
        s.conditional(Architecture(42, (24, 32, 64, 32), 8), num=1, steps=2)


def test_length_bucketed_batches_pad_little_and_stay_uniform():
    from nnit.diffusion.arch_codes import ArchCodec
    from nnit.diffusion.train import NNiTDataset
    from nnit.weights import PatchGrid, WidthVocab, paper_split

    split = paper_split()
    sets = [WeightSet.init_random(Architecture(42, h, 8), 2, torch.Generator().manual_seed(k))
            for k, h in enumerate((*split.train, *split.held_out))]
    ds = NNiTDataset(sets, PatchGrid(8, 64), "valid", ArchCodec(WidthVocab((16, 32, 64)), 8))
    B, steps = 16, 256
    assert ds.bucket_indices(13, B, 8, seed=3) == ds.bucket_indices(13, B, 8, seed=3)  # a pure function of the step
    assert ds.bucket_indices(13, B, 8, seed=3) != ds.bucket_indices(13, B, 8, seed=4)
    b = ds.batch_at(5, B, 8)
    assert b.values.shape[:2] == b.token_mask.shape and b.token_mask.sum(1).max() == b.values.shape[1]

    def padded_len(pool: int) -> float:
        return sum(int(ds.lengths[ds.bucket_indices(s, B, pool)].max()) for s in range(steps)) / steps

    mean_len = float(ds.lengths.float().mean())
    plain, bucketed = padded_len(1), padded_len(8)
    print(f"mean tokens {mean_len:.0f}; batch padded to {plain:.0f} (uniform) vs {bucketed:.0f} (bucketed)")
    assert bucketed < 0.75 * plain and bucketed < 1.35 * mean_len
    # still uniform over networks: every network is drawn about equally often
    counts = torch.bincount(torch.tensor([j for s in range(steps) for j in ds.bucket_indices(s, B, 8)]), minlength=len(ds))
    expected = steps * B / len(ds)
    assert counts.min() > 0.4 * expected and counts.max() < 1.8 * expected, (counts.min(), counts.max(), expected)


def test_architecture_balanced_sampling_draws_rare_architectures_as_often():
    from nnit.diffusion.arch_codes import ArchCodec
    from nnit.diffusion.train import NNiTDataset
    from nnit.weights import PatchGrid, WidthVocab

    rare, common = Architecture(42, (16, 16, 16, 32), 8), Architecture(42, (32, 32, 32, 64), 8)
    sets = [WeightSet.init_random(rare, 2, torch.Generator().manual_seed(0)),
            WeightSet.init_random(common, 18, torch.Generator().manual_seed(1))]
    args = (sets, PatchGrid(8, 64), "valid", ArchCodec(WidthVocab((16, 32, 64)), 8))

    def rare_share(ds, steps: int = 200) -> float:
        picks = torch.tensor([j for s in range(steps) for j in ds.bucket_indices(s, 16, 8)])
        return float((picks < 2).float().mean())  # the rare architecture's networks are indices 0 and 1

    uniform, balanced, half = NNiTDataset(*args), NNiTDataset(*args, arch_balance=1.0), NNiTDataset(*args, arch_balance=0.5)
    assert uniform.arch_shares()[rare.hidden] == pytest.approx(0.1)
    assert balanced.arch_shares()[rare.hidden] == pytest.approx(0.5)
    assert half.arch_shares()[rare.hidden] == pytest.approx(2**0.5 / (2**0.5 + 18**0.5))
    assert abs(rare_share(uniform) - 0.1) < 0.03 and abs(rare_share(balanced) - 0.5) < 0.05
    assert abs(rare_share(half) - half.arch_shares()[rare.hidden]) < 0.04
    # within an architecture every network is still equally likely
    picks = torch.tensor([j for s in range(200) for j in balanced.bucket_indices(s, 16, 8)])
    counts = torch.bincount(picks, minlength=len(balanced)).float()
    common_counts = counts[2:] / counts[2:].mean()  # ~89 draws each: Poisson noise ~10%
    assert abs(counts[0] / counts[1] - 1) < 0.2 and common_counts.min() > 0.6 and common_counts.max() < 1.4
    with pytest.raises(ValueError, match="arch_balance"):
        NNiTDataset(*args, arch_balance=-1.0)


def test_continuation_changes_the_data_stream_and_is_kept(tmp_path):
    data, norm = dataset(n=4)
    cfg = dataclasses.replace(TRAIN_PRESETS["tiny"], steps=6, ckpt_every=1000, log_every=2)
    train(cfg, data, tmp_path, normalizer=norm, progress=False)
    assert load_checkpoint(tmp_path).config.arch_balance == 0.0
    res = train(dataclasses.replace(cfg, steps=10), data, tmp_path, normalizer=norm, progress=False,
                continuation={"arch_balance": 1.0})
    assert res.start_step == 6 and load_checkpoint(tmp_path).config.arch_balance == 1.0
    train(dataclasses.replace(cfg, steps=12), data, tmp_path, normalizer=norm, progress=False)  # a plain resume keeps it
    assert load_checkpoint(tmp_path).config.arch_balance == 1.0 and load_checkpoint(tmp_path).step == 12
    with pytest.raises(ValueError, match="only change arch_balance"):
        train(dataclasses.replace(cfg, steps=14), data, tmp_path, normalizer=norm, progress=False, continuation={"lr": 1.0})


def test_checkpoint_module_sections_and_directories(tmp_path):
    from nnit.checkpoint import DEFAULT_NAME, load_checkpoint as load_core, save_checkpoint as save_core

    net = torch.nn.Linear(3, 2)
    run = tmp_path / "run"
    run.mkdir()
    path = save_core(run, net, 5, {"a": 1}, meta={"kind": "x"}, sections={"model_config": {"hidden_size": 7}})
    assert path == run / DEFAULT_NAME
    ck = load_core(run)
    assert ck.step == 5 and ck.sections == {"model_config": {"hidden_size": 7}} and ck.path == path
    with pytest.raises(CheckpointError, match="reserved"):
        save_core(run, net, 5, {}, sections={"config": {}})
    with pytest.raises(CheckpointError, match="not an NNiT checkpoint"):
        load_checkpoint(run)  # another stage's checkpoint
