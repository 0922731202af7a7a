"""D2NWG and SANE baselines: their weight layouts, training (loss falls, resume), sampling and the CLI."""

from __future__ import annotations

import json

from dataclasses import replace

import pytest
import torch

from nnit.baselines.common import ArchEmbedding
from nnit.baselines.early_stopping import Plateau, validation_split
from nnit.baselines.d2nwg import D2NWG_PRESETS, PaddedLayout
from nnit.baselines.sane import SANE_PRESETS, row_tokens, tokens_to_weights
from nnit.checkpoint import load_checkpoint
from nnit.ghn.dataset import shard_name
from nnit.baselines.train import BaselineSampler, sane_token_dim, train_d2nwg, train_sane
from nnit.weights import Architecture, WeightSet, WidthVocab
from nnit.weights.architecture import ArchitectureError
from synthetic import smooth_weights  # noqa: E402
from test_nnit_cli import HELD_OUT, TRAIN_HIDDEN, cli_error, run_cli, write_dataset  # noqa: E402


def _sets(in_dim=10, out_dim=4, n=6):
    return [smooth_weights(Architecture(in_dim, h, out_dim), n, seed=k) for k, h in enumerate(TRAIN_HIDDEN)]


def test_padded_layout_round_trip_and_fixed_positions():
    layout = PaddedLayout(10, 4, 4, 64)
    for h in TRAIN_HIDDEN + [HELD_OUT]:
        ws = WeightSet.init_random(Architecture(10, h, 4), 3)
        vec, mask = layout.flatten(ws)
        assert vec.shape == (3, layout.dim) and int(mask.sum()) == ws.arch.num_params
        assert (vec[:, ~mask] == 0).all()
        back = layout.unflatten(ws.arch, vec)
        torch.testing.assert_close(back.to_vector(), ws.to_vector())
    # the first layer's weight W[0, 0] sits at the same index for every width: no width awareness
    a = layout.flatten(WeightSet.init_random(Architecture(10, (16, 16, 16, 16), 4), 1))[0]
    b_ws = WeightSet.init_random(Architecture(10, (64, 64, 64, 64), 4), 1)
    assert float(layout.flatten(b_ws)[0][0, 0]) == float(b_ws.weights[0][0, 0, 0]) and a[0, 0] != 0
    with pytest.raises(ArchitectureError, match="zero-padded layout"):
        layout.flatten(WeightSet.init_random(Architecture(10, (16, 16, 16), 4), 1))


def test_row_tokens_round_trip_and_global_positions_shift_with_width():
    ws = WeightSet.init_random(Architecture(10, (16, 32), 4), 2)
    tok, pos, emask = row_tokens(ws, 33)
    assert tok.shape == (2, 16 + 32 + 4, 33) and pos.shape == (52, 3)
    torch.testing.assert_close(tokens_to_weights(ws.arch, tok, 33).to_vector(), ws.to_vector())
    _, pos_wide, _ = row_tokens(WeightSet.init_random(Architecture(10, (32, 32), 4), 1), 33)
    # the output layer's first row: global index 48 vs 64, layer index 2 in both
    assert pos[48].tolist() == [48, 2, 0] and pos_wide[64].tolist() == [64, 2, 0]
    with pytest.raises(ArchitectureError, match="fan-in"):
        row_tokens(ws, 16)


def test_arch_embedding_rejects_widths_outside_the_vocabulary():
    emb = ArchEmbedding(WidthVocab((16, 32, 64)), 4, 8)
    assert emb([Architecture(10, (16, 32, 64, 16), 4)]).shape == (1, 8)
    with pytest.raises(ArchitectureError, match="not in the token vocabulary"):
        emb([Architecture(10, (16, 24, 64, 16), 4)])


def test_d2nwg_trains_resumes_and_samples(tmp_path):
    cfg = replace(D2NWG_PRESETS["tiny"], vae_steps=60, diffusion_steps=60, ema_decay=0.9, val_fraction=0.0)  # fixed steps
    sets = _sets()
    model, res = train_d2nwg(cfg, sets, tmp_path / "a", progress=False)
    h = res.history
    vae = [r["recon"] for r in h if "recon" in r]
    assert sum(vae[-10:]) / 10 < 0.7 * sum(vae[:10]) / 10  # the VAE learns
    assert float(model.latent_scale) > 0 and len([r for r in h if "eps_mse" in r]) == 60
    # killed in the VAE phase and resumed == the step count and the curve go on
    _, part = train_d2nwg(cfg, sets, tmp_path / "b", progress=False, stop_after=40)
    assert part.end_step == 40
    _, rest = train_d2nwg(cfg, sets, tmp_path / "b", progress=False)
    assert (rest.start_step, rest.end_step) == (40, 120)
    assert abs(rest.history[0]["total"] - h[40]["total"]) < 1e-4  # same data / noise stream after resume
    s = BaselineSampler.from_checkpoint(tmp_path / "a")
    ws = s.conditional(Architecture(10, HELD_OUT, 4), num=3, steps=10)
    assert ws.n == 3 and ws.arch.hidden == HELD_OUT and torch.isfinite(ws.to_vector()).all()
    # x0^ is clipped to the training latents' range: samples stay on the data's scale (unclipped: ~100x off)
    assert float(model.latent_absmax) > 0
    assert float(ws.to_vector().std()) < 5 * float(torch.cat([w.to_vector().flatten() for w in sets]).std())
    with pytest.raises(ArchitectureError):
        s.conditional(Architecture(10, (16, 24, 64, 16), 4), num=1, steps=5)


def test_sane_trains_fits_anchors_and_samples(tmp_path):
    cfg = replace(SANE_PRESETS["tiny"], steps=60, ema_decay=0.9, val_fraction=0.0)  # fixed steps
    sets = _sets()
    model, res = train_sane(cfg, sets, tmp_path, progress=False)
    rec = [r["recon"] for r in res.history]
    assert sum(rec[-10:]) / 10 < 0.7 * sum(rec[:10]) / 10
    longest = max(sum(ws.arch.hidden) + 4 for ws in sets)
    assert int((model.anchor_count > 0).sum()) == longest
    s = BaselineSampler.from_checkpoint(tmp_path)
    assert s.model.token_dim == sane_token_dim(sets) == 65
    ws = s.conditional(Architecture(10, (32, 32, 32, 16), 4), num=2)
    assert ws.n == 2 and torch.isfinite(ws.to_vector()).all()
    with pytest.raises(ArchitectureError, match="no anchors"):
        s.conditional(Architecture(10, (64, 64, 64, 64), 4), num=1)


def test_validation_split_holds_out_a_share_of_each_architecture():
    split = validation_split([10, 1, 4], 0.25, seed=3)
    (t0, v0), (t1, v1), (t2, v2) = split
    assert len(v0) == 2 and len(t0) == 8 and sorted(t0.tolist() + v0.tolist()) == list(range(10))
    assert len(v1) == 0 and t1.tolist() == [0]  # an architecture keeps its only network for training
    assert len(v2) == 1 and len(t2) == 3
    assert [t.tolist() for t, _ in validation_split([10, 1, 4], 0.25, seed=3)] == [t.tolist() for t, _ in split]
    assert all(len(v) == 0 for _, v in validation_split([5, 5], 0.0))


def test_plateau_ends_a_phase_after_patience_validations_without_improvement():
    p = Plateau(patience=2, min_rel=0.01)
    assert not p.update(10, 1.0) and not p.update(20, 0.5)  # improving
    assert not p.update(30, 0.499)  # less than 1% better: does not count
    assert p.update(40, 0.6) and p.best == 0.5 and p.best_step == 20


def test_d2nwg_stops_each_phase_on_its_validation_plateau_and_stays_stopped(tmp_path):
    # lr = 0: nothing improves, so each phase plateaus after its first validation + `patience` more
    cfg = replace(D2NWG_PRESETS["tiny"], vae_steps=500, diffusion_steps=500, lr=0.0, min_lr=0.0, val_fraction=0.25,
                  val_every=10, patience=2)
    _, res = train_d2nwg(cfg, _sets(), tmp_path, progress=False)
    budget = load_checkpoint(res.checkpoint).sections["budget"]
    assert budget["phase_end"] == {"vae": 30} and budget["finished"] and budget["reason"] == "plateau"
    assert res.end_step == 60 and [s for s, _ in budget["plateaus"]["diffusion"]["history"]] == [40, 50, 60]
    assert any("eps_mse" in r for r in res.history[30:]) and all("recon" in r for r in res.history[:30])
    _, again = train_d2nwg(cfg, _sets(), tmp_path, progress=False)  # a finished run is not trained further
    assert (again.start_step, again.end_step) == (60, 60)
    assert load_checkpoint(again.checkpoint).sections["data"]["validation_networks"] == 4 * 2  # 2 of 6 per architecture
    _, capped = train_d2nwg(cfg, _sets(), tmp_path / "capped", progress=False, max_seconds=1e-9)
    assert capped.end_step == 1 and load_checkpoint(capped.checkpoint).sections["budget"]["reason"] == "wall-clock cap"


def test_sane_stops_on_its_validation_plateau_with_anchors_fitted(tmp_path):
    cfg = replace(SANE_PRESETS["tiny"], steps=1000, lr=0.0, min_lr=0.0, val_fraction=0.25, val_every=5, patience=2)
    model, res = train_sane(cfg, _sets(), tmp_path, progress=False)
    assert res.end_step == 15 and load_checkpoint(res.checkpoint).sections["budget"]["reason"] == "plateau"
    assert int((model.anchor_count > 0).sum()) > 0
    assert BaselineSampler.from_checkpoint(tmp_path).conditional(Architecture(10, (32, 32, 32, 16), 4), num=2).n == 2


def test_train_baseline_cli_then_generate_and_evaluate(tmp_path, capsys):
    ds = write_dataset(tmp_path / "dataset", "FashionMNIST", 49, 10)
    out = run_cli(["train-baseline", "--method", "d2nwg", "--dataset", ds, "--preset", "tiny", "--steps", "50", "--no-progress"], capsys)
    assert "parameters" in out and (tmp_path / "d2nwg" / "checkpoint.safetensors").exists()
    out = run_cli(["generate", "--task", "FashionMNIST", "--checkpoint", tmp_path / "d2nwg", "--arch", ",".join(map(str, HELD_OUT)),
                   "--num", "3", "--preset", "tiny", "--evaluate", "--steps", "5", "--no-progress"], capsys)
    assert "D2NWG [64,32,16,64]" in out and "(ancestral, 5 steps)" in out
    assert (tmp_path / "generated" / "d2nwg_h64-32-16-64" / "networks.safetensors").exists()
    err = cli_error(["generate", "--task", "FashionMNIST", "--checkpoint", tmp_path / "d2nwg", "--num", "2", "--preset", "tiny"], capsys)
    assert "no joint mode" in err
    # D2NWG's sanity check: the dataset's networks through its VAE, evaluated
    shard = ds / "shards" / shard_name(TRAIN_HIDDEN[0])
    out = run_cli(["eval", "--task", "FashionMNIST", "--weights", shard, "--reconstruct-with", tmp_path / "d2nwg", "--preset", "tiny",
                   "--out", tmp_path / "recon.json", "--no-progress"], capsys)
    rec = json.loads((tmp_path / "recon.json").read_text())
    assert rec["extra"]["recon_mse"] > 0 and "encoded and decoded by the VAE" in rec["info"]["weights"] and "accuracy" in out
    err = cli_error(["eval", "--task", "FashionMNIST", "--random", "2", "--reconstruct-with", tmp_path / "d2nwg", "--preset", "tiny"],
                    capsys)
    assert "--reconstruct-with needs --weights" in err
    err = cli_error(["generate", "--task", "FashionMNIST", "--checkpoint", tmp_path / "d2nwg", "--arch", "32,32,32,16", "--num", "2",
                     "--temperature", "0.5", "--preset", "tiny"], capsys)
    assert "--temperature applies to NNiT's sampler only" in err
    run_cli(["train-baseline", "--method", "sane", "--dataset", ds, "--preset", "tiny", "--steps", "5", "--no-progress"], capsys)
    out = run_cli(["generate", "--task", "FashionMNIST", "--checkpoint", tmp_path / "sane", "--arch", "32,32,32,16", "--num", "2",
                   "--preset", "tiny", "--no-progress"], capsys)
    assert "(SANE anchor sampling)" in out  # not a diffusion sampler: --sampler / --steps are not reported as used
    assert json.loads((tmp_path / "generated" / "sane_h32-32-32-16" / "results.json").read_text())["sampler"] == "sane-anchors"
    err = cli_error(["train-baseline", "--method", "sane", "--dataset", tmp_path / "nowhere", "--preset", "tiny"], capsys)
    assert "not a dataset directory" in err
