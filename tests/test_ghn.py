"""GHN ensemble: shapes for unseen widths, member independence, DAgger buffer / beta, clipping, resume."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from nnit.checkpoint import CheckpointError, export_release, load_checkpoint, restore, save_checkpoint
from nnit.ghn.dagger import StateBuffer, beta_at, clip_grad_norm_per_member
from nnit.training import cosine_lr
from nnit.ghn.model import GHNConfig, GHNEnsemble
from nnit.weights import Architecture

SMALL = GHNConfig(hidden_dim=16, decoder_channels=4)


def test_generates_every_width_and_depth_including_unseen():
    ghn = GHNEnsemble(SMALL, seeds=[0, 1, 2])
    archs = [
        Architecture(42, (32, 16, 64, 32), 8),
        Architecture(42, (24, 48, 7), 8),  # widths never in the vocabulary
        Architecture(35, (64,), 4),  # another depth and in/out dims
        Architecture(48, (16, 16, 16, 16, 16, 16), 8),
    ]
    out = ghn.generate(archs)
    for arch, ws in zip(archs, out):
        assert ws.arch == arch and ws.n == 3
        assert torch.isfinite(ws.to_vector()).all()
        y = ws(torch.randn(5, arch.input_dim))
        assert y.shape == (3, 5, arch.output_dim)


def test_fresh_ghn_emits_lecun_scale_weights():
    ghn = GHNEnsemble(SMALL, seeds=range(4))
    ws = ghn.generate([Architecture(42, (32, 16, 64, 32), 8)])[0]
    for w in ws.weights:
        ratio = w.std(dim=(1, 2)) * math.sqrt(w.shape[2])
        assert torch.all((ratio > 0.3) & (ratio < 3.0)), ratio


def test_members_are_independent_of_each_other():
    a = Architecture(42, (32, 16, 64, 32), 8)
    pair = GHNEnsemble(SMALL, seeds=[11, 22]).generate([a])[0]
    alone = GHNEnsemble(SMALL, seeds=[22]).generate([a])[0]
    torch.testing.assert_close(pair[1].to_vector(), alone.to_vector(), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(pair[0].to_vector(), alone.to_vector())


def test_member_gradients_do_not_mix():
    ghn = GHNEnsemble(SMALL, seeds=[1, 2])
    ws = ghn.generate([Architecture(10, (16, 16), 3)])[0]
    ws(torch.randn(4, 10))[0].sum().backward()  # a loss on member 0 only
    for p in ghn.parameters():
        if p.grad is not None:
            g = p.grad.reshape(2, -1)
            assert torch.all(g[1] == 0)


def test_too_wide_for_canvas():
    with pytest.raises(ValueError, match="canvas"):
        GHNEnsemble(SMALL, seeds=[0]).generate([Architecture(42, (128,), 8)])


def test_state_buffer_fifo_and_resume():
    buf = StateBuffer(5, 2, 1)
    for i in range(7):
        buf.add(torch.full((1, 2), float(i)), torch.full((1, 1), float(i)))
    assert len(buf) == 5 and buf.total_added == 7
    kept = sorted(buf.obs[:, 0].tolist())
    assert kept == [2.0, 3.0, 4.0, 5.0, 6.0]
    state = buf.state_dict()
    assert state["obs"][:, 0].tolist() == [2.0, 3.0, 4.0, 5.0, 6.0]  # oldest first
    other = StateBuffer(5, 2, 1)
    other.load_state_dict(state)
    other.add(torch.full((1, 2), 7.0), torch.full((1, 1), 7.0))
    assert sorted(other.obs[:, 0].tolist()) == [3.0, 4.0, 5.0, 6.0, 7.0]
    o, a = other.sample((3, 4), generator=torch.Generator().manual_seed(0))
    assert o.shape == (3, 4, 2) and a.shape == (3, 4, 1)
    assert torch.equal(o[..., 0], a[..., 0])
    with pytest.raises(ValueError):
        StateBuffer(3, 1, 1).sample((1,))


def test_beta_and_lr_schedules():
    assert beta_at(0) == 1.0
    assert beta_at(10, 1.0, 0.97) == pytest.approx(0.97**10)
    def lr_at(step, total, lr_start, lr_end):  # the GHN's schedule: cosine reaching lr_end at the last of total steps
        return cosine_lr(step, total - 1, lr_start, lr_end)

    assert lr_at(0, 100, 1e-3, 7e-4) == pytest.approx(1e-3)
    assert lr_at(99, 100, 1e-3, 7e-4) == pytest.approx(7e-4)
    assert 7e-4 < lr_at(50, 100, 1e-3, 7e-4) < 1e-3


def test_per_member_clipping():
    ghn = GHNEnsemble(SMALL, seeds=[1, 2])
    ws = ghn.generate([Architecture(10, (16,), 3)])[0]
    out = ws(torch.randn(4, 10))
    (out[0].sum() * 1000 + out[1].sum() * 1e-3).backward()
    params = list(ghn.parameters())
    before = [p.grad.clone() for p in params]
    norms = clip_grad_norm_per_member(params, 2, 1.0)
    assert norms[0] > 1.0 > norms[1]
    after = torch.zeros(2)
    for p in params:
        after += p.grad.reshape(2, -1).pow(2).sum(1)
    assert after.sqrt()[0] == pytest.approx(1.0, rel=1e-3)
    for b, p in zip(before, params):  # member 1 (small gradient) untouched
        torch.testing.assert_close(b.reshape(2, -1)[1], p.grad.reshape(2, -1)[1])


def test_checkpoint_round_trip_and_errors(tmp_path):
    ghn = GHNEnsemble(SMALL, seeds=[1, 2])
    opt = torch.optim.Adam(ghn.parameters(), lr=1e-3)
    ghn.generate([Architecture(10, (16,), 3)])[0](torch.randn(2, 10)).sum().backward()
    opt.step()
    path = save_checkpoint(tmp_path / "c.safetensors", ghn, 7, {"a": 1}, optimizer=opt, extra={"x": torch.arange(3)})
    ck = load_checkpoint(path)
    assert ck.step == 7 and ck.config == {"a": 1} and torch.equal(ck.extra["x"], torch.arange(3))
    fresh = GHNEnsemble(SMALL, seeds=[5, 6])
    opt2 = torch.optim.Adam(fresh.parameters(), lr=1e-3)
    restore(ck, fresh, opt2)
    for p, q in zip(ghn.parameters(), fresh.parameters()):
        assert torch.equal(p, q)
    assert opt2.state_dict()["state"][0]["exp_avg"].shape == opt.state_dict()["state"][0]["exp_avg"].shape
    with pytest.raises(CheckpointError, match="does not match"):
        restore(ck, GHNEnsemble(replace(SMALL, hidden_dim=8), seeds=[1, 2]))
    # `nnit export --dtype float32`: the weights alone (no optimizer, no DAgger buffer), bit-identical
    release = load_checkpoint(export_release(path, tmp_path / "r.safetensors", torch.float32))
    assert release.step == 7 and release.config == {"a": 1} and not release.extra and release.optimizer is None
    again = GHNEnsemble(SMALL, seeds=[5, 6])
    restore(release, again)
    assert all(torch.equal(p, q) for p, q in zip(ghn.parameters(), again.parameters()))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(path)
