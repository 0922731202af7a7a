"""Joint sampling that covers the architecture distribution: MoNL's architecture-prior mode (training) and
architecture-first joint sampling (a ~ p(a), then w ~ p(w | a)), checked against known answers.

* The prior mode hides the weights: the architecture outputs of a sample whose weight tokens are masked equal
  those of the same sample without weight tokens (what the sampler feeds), and hidden weights leave the loss.
* With the exact denoiser of a known architecture distribution (a mixture of point masses on the codes),
  architecture-first sampling draws the architectures with the mixture's frequencies.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from nnit.diffusion.arch_codes import ArchCodec
from nnit.diffusion.gaussian import GaussianDiffusion, sample_monl_timesteps
from nnit.diffusion.model import NNiT, nnit_config
from nnit.diffusion.sample import NNiTSampler, total_variation, training_draw_reference
from nnit.diffusion.train import TRAIN_PRESETS, NNiTDataset, nnit_losses
from nnit.errors import NNiTError
from nnit.weights import Architecture, WeightSet
from nnit.weights.architecture import WidthVocab
from nnit.weights.tokenize import PatchGrid
from synthetic import smooth_weights  # noqa: E402  (tests/ is on sys.path)


def test_monl_prior_mode_draws_its_share_with_t_w_at_T():
    g = torch.Generator().manual_seed(0)
    ts = sample_monl_timesteps(20000, 1000, p_joint=0.5, generator=g, p_prior=0.2)
    prior, joint = ts.prior, ts.joint
    assert abs(prior.float().mean() - 0.2) < 0.015 and abs(joint.float().mean() - 0.5) < 0.015
    assert not (prior & joint).any()
    assert (ts.t_w[prior] == 1000).all() and (ts.t_a[prior] >= 1).all()
    cond = ~prior & ~joint
    assert (ts.t_a[cond] == 0).all() and (ts.t_a[joint] == ts.t_w[joint]).all()
    # p_prior = 0 is the paper's stream, draw for draw
    a = sample_monl_timesteps(64, 1000, generator=torch.Generator().manual_seed(1))
    b = sample_monl_timesteps(64, 1000, generator=torch.Generator().manual_seed(1), p_prior=0.0)
    assert b.prior is None and torch.equal(a.t_a, b.t_a) and torch.equal(a.t_w, b.t_w)
    with pytest.raises(NNiTError, match="p_prior"):
        sample_monl_timesteps(4, 1000, p_joint=0.5, p_prior=0.6)


def _random_model(seed: int = 0) -> NNiT:
    torch.manual_seed(seed)
    model = NNiT(nnit_config("NNiT-XS"))
    with torch.no_grad():  # leave the zero init: every output would be 0 and any masking bug invisible
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def _batch(n: int = 3):
    grid, codec = PatchGrid(8, 64), ArchCodec(WidthVocab((16, 32, 64)), 8)
    sets = [smooth_weights(Architecture(20, h, 4), 2, seed=k) for k, h in enumerate([(16, 32, 64, 16), (64, 64, 32, 32)])]
    return NNiTDataset(sets, grid, "valid", codec).collate([0, 2, 3][:n])


def test_hidden_weight_tokens_do_not_reach_the_architecture_outputs():
    """Training hides a prior-mode sample's weight tokens; sampling passes none: the architecture sees the same."""
    model, batch = _random_model(), _batch()
    t_a, t_w = torch.tensor([7, 300, 999]), torch.full((3,), 1000)
    hidden = batch.hide_weights(torch.tensor([True, True, True]))
    out_a, v_a, _, _ = model(batch.arch_codes, hidden.values, batch.positions, t_a, t_w, hidden.token_mask, batch.arch_mask)
    none_a, none_v, none_w, _ = model(batch.arch_codes, batch.values[:, :0], batch.positions[:, :0], t_a, t_w)
    assert none_w.shape[1] == 0
    torch.testing.assert_close(out_a, none_a, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(v_a, none_v, rtol=1e-5, atol=1e-5)
    # and the weights do matter when they are shown (the check above is not vacuous)
    shown_a, _, _, _ = model(batch.arch_codes, batch.values, batch.positions, t_a, t_w, batch.token_mask, batch.arch_mask)
    assert (shown_a - none_a).abs().max() > 1e-3


def test_hidden_weights_leave_the_loss():
    model, batch = _random_model(1), _batch()
    diff = GaussianDiffusion.linear(1000)
    g = torch.Generator().manual_seed(0)
    noise = (torch.randn(batch.values.shape, generator=g), torch.randn(batch.arch_codes.shape, generator=g))
    t = torch.tensor([500, 20, 900])
    rows = torch.tensor([False, True, True])
    mixed = nnit_losses(model, diff, batch.hide_weights(rows), t, t, noise=noise)
    alone = nnit_losses(model, diff, batch.rows(slice(0, 1)), t[:1], t[:1], noise=(noise[0][:1], noise[1][:1]))
    torch.testing.assert_close(mixed["mse_w"], alone["mse_w"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(mixed["vb_w"], alone["vb_w"], rtol=1e-5, atol=1e-6)
    assert mixed["mse_a"] != alone["mse_a"]  # every sample's architecture still counts


def test_min_snr_gamma_weights_each_samples_eps_mse():
    """With gamma the weight and architecture eps-MSE are the per-sample weighted means; L_vb is unchanged."""
    model, batch = _random_model(2), _batch()
    diff = GaussianDiffusion.linear(1000)
    g = torch.Generator().manual_seed(1)
    noise = (torch.randn(batch.values.shape, generator=g), torch.randn(batch.arch_codes.shape, generator=g))
    t_w, t_a = torch.tensor([3, 200, 950]), torch.tensor([0, 200, 950])
    with torch.no_grad():
        plain = nnit_losses(model, diff, batch, t_a, t_w, noise=noise)
        weighted = nnit_losses(model, diff, batch, t_a, t_w, noise=noise, min_snr_gamma=5.0)
        per_sample = [nnit_losses(model, diff, batch.rows(slice(i, i + 1)), t_a[i:i + 1], t_w[i:i + 1],
                                  noise=(noise[0][i:i + 1], noise[1][i:i + 1])) for i in range(3)]
    w_w, w_a = diff.min_snr_weight(t_w, 5.0), diff.min_snr_weight(t_a, 5.0)
    for key, w in (("mse_w", w_w), ("mse_a", w_a)):
        want = sum(float(w[i]) * float(per_sample[i][key]) for i in range(3)) / 3
        assert float(weighted[key]) == pytest.approx(want, rel=1e-4)
    assert float(weighted["mse_w"]) < float(plain["mse_w"])  # t_w = 3 is down-weighted
    torch.testing.assert_close(weighted["vb_w"], plain["vb_w"])


class MixtureOracle(nn.Module):
    """The exact eps of a known architecture distribution: point masses on the code sequences of ``archs`` with
    probabilities ``probs`` (posterior-weighted x0^ = E[x0 | x_t]); the weights' x0^ is 0."""

    def __init__(self, codes: torch.Tensor, probs: torch.Tensor, diff: GaussianDiffusion) -> None:
        super().__init__()
        self.codes, self.log_probs, self.diff = codes, probs.log(), diff  # (K, S, d), (K,)
        self.calls: list[tuple[int, int]] = []

    def check_positions(self, positions: torch.Tensor, num_arch: int) -> None:
        pass

    def forward(self, x_a, x_w, pos_w, t_a, t_w, token_mask=None, arch_mask=None):
        self.calls.append((int(x_w.shape[1]), int(t_w.max())))
        a = self.diff.sqrt_alphas_cumprod[t_a].float()
        s = self.diff.sqrt_one_minus_alphas_cumprod[t_a].float().clamp(min=1e-8)
        d2 = ((x_a[:, None] - a[:, None, None, None] * self.codes[None]) ** 2).flatten(2).sum(-1)  # (B, K)
        w = torch.softmax(self.log_probs[None] - d2 / (2 * s[:, None] ** 2), dim=1)  # (B, K)
        x0 = torch.einsum("bk,ksd->bsd", w, self.codes)
        eps_a = (x_a - a[:, None, None] * x0) / s[:, None, None]
        sw = self.diff.sqrt_one_minus_alphas_cumprod[t_w].float()[:, None, None]
        return eps_a, torch.zeros_like(eps_a), x_w / sw, torch.zeros_like(x_w)


def test_arch_first_joint_sampling_draws_the_architecture_distribution():
    diff = GaussianDiffusion.linear(1000)
    codec = ArchCodec(WidthVocab((16, 32, 64)), 8)
    archs = [Architecture(20, h, 4) for h in [(16, 32, 64, 16), (64, 64, 32, 32), (32, 16, 16, 64)]]
    probs = torch.tensor([0.6, 0.3, 0.1])
    oracle = MixtureOracle(torch.stack([codec.encode(a) for a in archs]), probs, diff)
    cfg = dataclasses.replace(TRAIN_PRESETS["tiny"], parameterization="eps", p_prior=0.1)
    data = {"input_dim": 20, "output_dim": 4, "activation": "tanh", "train_archs": [list(a.hidden) for a in archs[:2]],
            "train_arch_counts": {"16,32,64,16": 60, "64,64,32,32": 30, "32,16,16,64": 10}}
    sampler = NNiTSampler(oracle, codec, cfg, None, data)  # type: ignore[arg-type]
    j = sampler.joint(num=400, depth=4, method="ddim", steps=50, seed=0, clip=None)
    assert j.schedule == "arch-first" and all(j.valid)
    freq = {h: ws.n / 400 for h, ws in j.weights.items()}
    for a, p in zip(archs, probs.tolist()):
        assert abs(freq[a.hidden] - p) < 0.07, (a.hidden, freq)
    summ = j.summary()
    assert summ["novel"] == round(400 * freq[archs[2].hidden])  # the third is not a training architecture
    assert summ["tv_to_train"] < 0.07 and summ["distinct_archs"] == 3
    ref = summ["train_reference"]
    assert ref["distinct_archs"]["mean"] == 3 and ref["tv_to_train"]["mean"] < 0.05
    # the architecture stage saw no weight tokens and t_w = T; the weight stage saw weights
    assert oracle.calls[0] == (0, 1000) and any(n > 0 for n, _ in oracle.calls)
    for h, ws in j.weights.items():
        assert ws.arch.hidden == h and torch.allclose(ws.to_vector(), torch.zeros(()), atol=1e-4)


def test_total_variation_and_the_training_draw_reference():
    freqs = {(16,): 3.0, (32,): 1.0}
    assert total_variation([(16,)] * 3 + [(32,)], freqs) == pytest.approx(0.0)
    assert total_variation([(64,)] * 5, freqs) == pytest.approx(1.0)
    assert total_variation([(16,)] * 4, freqs) == pytest.approx(0.25)
    ref = training_draw_reference({(16,): 1.0}, 50)
    assert ref["distinct_archs"]["mean"] == 1 and ref["tv_to_train"]["mean"] == 0
    ref = training_draw_reference({(k,): 1.0 for k in range(64)}, 100, repeats=500)
    expected = 64 * (1 - (63 / 64) ** 100)  # distinct values among 100 uniform draws of 64
    assert abs(ref["distinct_archs"]["mean"] - expected) < 1.0
    assert 0.2 < ref["tv_to_train"]["mean"] < 0.45 and not math.isnan(ref["tv_to_train"]["p95"])
