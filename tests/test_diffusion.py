"""Gaussian diffusion against closed forms; MoNL; architecture codes."""

from __future__ import annotations

import math

import pytest
import torch

from nnit.diffusion.arch_codes import ArchCodec, hadamard
from nnit.diffusion.gaussian import (
    GaussianDiffusion,
    continuous_gaussian_log_likelihood,
    discretized_gaussian_log_likelihood,
    masked_mean,
    normal_kl,
    sample_loop,
    sample_monl_timesteps,
)
from nnit.weights import Architecture, ArchitectureError, WidthVocab


@pytest.fixture(scope="module")
def diff() -> GaussianDiffusion:
    return GaussianDiffusion.linear(1000)


def test_linear_schedule_tables(diff):
    assert diff.num_timesteps == 1000
    assert diff.betas[0] == 0 and diff.alphas_cumprod[0] == 1  # index 0 = clean
    assert math.isclose(float(diff.betas[1]), 1e-4) and math.isclose(float(diff.betas[1000]), 0.02)
    ab = torch.cumprod(1 - diff.betas[1:], 0)
    torch.testing.assert_close(diff.alphas_cumprod[1:], ab)
    assert float(diff.alphas_cumprod[-1]) < 1e-4  # x_T is almost pure noise


def test_add_noise_moments(diff):
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((20000, 1), 1.5)
    for t in (1, 100, 500, 1000):
        tt = torch.full((x0.shape[0],), t)
        xt = diff.add_noise(x0, torch.randn(x0.shape, generator=g), tt)
        ab = float(diff.alphas_cumprod[t])
        assert abs(xt.mean().item() - math.sqrt(ab) * 1.5) < 0.03
        assert abs(xt.var().item() - (1 - ab)) < 0.03
        mean, var = diff.q_mean_variance(x0[:1], tt[:1])
        assert math.isclose(mean.item(), math.sqrt(ab) * 1.5, rel_tol=1e-5) and math.isclose(var.item(), 1 - ab, rel_tol=1e-5)
    # t = 0 is the clean state
    torch.testing.assert_close(diff.add_noise(x0[:3], torch.randn(3, 1), torch.zeros(3, dtype=torch.long)), x0[:3])


def test_posterior_matches_bayes_rule(diff):
    """q(x_{t-1}|x_t,x_0) ∝ q(x_t|x_{t-1}) q(x_{t-1}|x_0): product of Gaussians in x_{t-1}."""
    x0 = torch.tensor([[0.7], [-1.2], [0.1]])
    xt = torch.tensor([[0.3], [0.5], [-2.0]])
    for t in (2, 10, 400, 1000):
        tt = torch.full((3,), t)
        mean, var, logvar = diff.q_posterior_mean_variance(x0, xt, tt)
        a_t = 1 - float(diff.betas[t])
        ab_prev = float(diff.alphas_cumprod[t - 1])
        # q(x_t | x_{t-1}) = N(sqrt(a_t) x_{t-1}, 1 - a_t); q(x_{t-1} | x_0) = N(sqrt(ab_prev) x0, 1 - ab_prev)
        prec = a_t / (1 - a_t) + 1 / (1 - ab_prev)
        m = (math.sqrt(a_t) * xt / (1 - a_t) + math.sqrt(ab_prev) * x0 / (1 - ab_prev)) / prec
        torch.testing.assert_close(mean, m, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(var, torch.full_like(var, 1 / prec), rtol=1e-4, atol=1e-9)
        torch.testing.assert_close(logvar, var.log(), rtol=1e-4, atol=1e-6)


def test_eps_x0_round_trip(diff):
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(64, 5, generator=g)
    eps = torch.randn(64, 5, generator=g)
    t = torch.randint(1, 1001, (64,), generator=g)
    xt = diff.add_noise(x0, eps, t)
    torch.testing.assert_close(diff.predict_x0_from_eps(xt, t, eps), x0, rtol=1e-3, atol=2e-3)
    torch.testing.assert_close(diff.predict_eps_from_x0(xt, t, x0), eps, rtol=1e-3, atol=2e-3)


def test_kl_and_likelihoods():
    m, lv = torch.randn(10), torch.randn(10)
    torch.testing.assert_close(normal_kl(m, lv, m, lv), torch.zeros(10))
    # KL(N(0,1) || N(1, e^0)) = 0.5
    assert math.isclose(normal_kl(torch.zeros(1), torch.zeros(1), torch.ones(1), torch.zeros(1)).item(), 0.5)
    x = torch.tensor([0.3])
    ll = continuous_gaussian_log_likelihood(x, torch.tensor([0.0]), torch.tensor([0.0]))
    assert math.isclose(ll.item(), -0.5 * math.log(2 * math.pi) - 0.045, rel_tol=1e-5)


@pytest.mark.parametrize("num_bins", [2, 5, 256])
@pytest.mark.parametrize("mean,log_scale", [(0.0, -1.0), (0.4, -3.0), (-0.9, 0.5)])
def test_discretized_likelihood_sums_to_one(num_bins, mean, log_scale):
    levels = torch.linspace(-1, 1, num_bins)
    ll = discretized_gaussian_log_likelihood(levels, torch.full_like(levels, mean), torch.full_like(levels, log_scale), num_bins)
    assert abs(ll.exp().sum().item() - 1.0) < 1e-3
    if num_bins == 2:
        # P(+1) = 1 - Phi(-mean / sigma) exactly for 2 bins split at 0 (up to the tanh approximation)
        p1 = 0.5 * (1 + math.erf(mean / math.exp(log_scale) / math.sqrt(2)))
        assert abs(ll[1].exp().item() - p1) < 2e-3


def test_model_variance_interpolates(diff):
    t = torch.tensor([5, 500])
    lo = diff.model_log_variance(-torch.ones(2, 1), t).flatten()
    hi = diff.model_log_variance(torch.ones(2, 1), t).flatten()
    torch.testing.assert_close(lo, diff.posterior_log_variance_clipped[t].float())
    torch.testing.assert_close(hi, diff.betas[t].log().float())


def test_vb_terms_zero_for_true_eps_and_posterior_variance(diff):
    """With the true eps and v = -1 (Sigma = beta~_t), p equals q's posterior: KL = 0 for t >= 2."""
    g = torch.Generator().manual_seed(2)
    x0, eps = torch.randn(8, 6, generator=g), torch.randn(8, 6, generator=g)
    t = torch.tensor([2, 3, 50, 100, 400, 700, 999, 1000])
    xt = diff.add_noise(x0, eps, t)
    vb = diff.vb_terms(x0, xt, t, eps, -torch.ones_like(x0))
    assert vb.abs().max().item() < 1e-3
    # t = 0 contributes nothing; t = 1 is a decoder NLL (positive for a continuous likelihood with small var? just finite)
    t01 = torch.tensor([0, 1] * 4)
    vb01 = diff.vb_terms(x0, diff.add_noise(x0, eps, t01), t01, eps, torch.zeros_like(x0))
    assert (vb01[t01 == 0] == 0).all() and torch.isfinite(vb01).all()


def test_hybrid_loss_masks_and_clean_target(diff):
    g = torch.Generator().manual_seed(3)
    x0, noise = torch.randn(2, 4, 3, generator=g), torch.randn(2, 4, 3, generator=g)
    t = torch.tensor([0, 300])
    xt = diff.add_noise(x0, noise, t)
    mask = torch.ones(2, 4, 3, dtype=torch.bool)
    mask[:, 2:] = False
    eps = torch.zeros_like(x0)
    eps[:, 2:] = 1e6  # garbage on padding must not matter
    out = diff.hybrid_loss(x0, xt, t, noise, eps, torch.zeros_like(x0), mask)
    assert out["mse"][0].item() == 0.0  # t = 0: target is 0 and eps = 0 on real entries
    torch.testing.assert_close(out["mse"][1], (noise[1, :2] ** 2).mean())
    assert out["vb"][0].item() == 0.0 and torch.isfinite(out["vb"]).all()
    torch.testing.assert_close(masked_mean(torch.ones(2, 3), torch.tensor([[1, 0, 0], [0, 0, 0]]).bool()), torch.tensor([1.0, 0.0]))


def test_respace_keeps_alpha_bar(diff):
    sp = diff.respace(50)
    assert sp.num_timesteps == 50 and int(sp.timestep_map[-1]) == 1000 and int(sp.timestep_map[0]) == 0
    torch.testing.assert_close(sp.alphas_cumprod[1:], diff.alphas_cumprod[sp.timestep_map[1:]])
    with pytest.raises(ValueError):
        diff.respace(0)


def _exact_denoiser(diff_full, x0_a, x0_w):
    """A 'perfect model' for fixed data: returns the eps that x_t would have if it came from x0."""

    def denoise(x_a, x_w, t_a, t_w, w_mask):
        eps_a = diff_full.predict_eps_from_x0(x_a, t_a.clamp(min=1), x0_a) * (t_a > 0).float()[:, None, None]
        eps_w = diff_full.predict_eps_from_x0(x_w, t_w, x0_w * w_mask)
        return eps_a, -torch.ones_like(eps_a), eps_w, -torch.ones_like(eps_w)

    return denoise


@pytest.mark.parametrize("steps", [10, 50])
@pytest.mark.parametrize("conditional", [True, False])
def test_ddim_eta0_with_exact_eps_recovers_x0(diff, steps, conditional):
    g = torch.Generator().manual_seed(4)
    x0_a = torch.sign(torch.randn(3, 6, 8, generator=g))
    x0_w = torch.randn(3, 7, 4, generator=g)
    mask = torch.ones(3, 7, 4, dtype=torch.bool)
    mask[:, -1, 2:] = False
    x_a, x_w = sample_loop(diff.respace(steps), _exact_denoiser(diff, x0_a, x0_w), x0_a.clone(), tuple(x0_w.shape),
                           conditional=conditional, weight_mask=mask, method="ddim", eta=0.0, generator=g)
    torch.testing.assert_close(x_w, x0_w * mask, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(x_a, x0_a, rtol=1e-3, atol=1e-3)


def test_ancestral_with_exact_eps_recovers_x0(diff):
    g = torch.Generator().manual_seed(5)
    x0_a = torch.sign(torch.randn(2, 6, 8, generator=g))
    x0_w = torch.randn(2, 5, 4, generator=g)
    mask = torch.ones(2, 5, 4, dtype=torch.bool)
    x_a, x_w = sample_loop(diff.respace(20), _exact_denoiser(diff, x0_a, x0_w), x0_a.clone(), tuple(x0_w.shape),
                           conditional=False, weight_mask=mask, method="ancestral", generator=g)
    # the posterior mean with the exact x0 at the last step is x0; earlier noise is absorbed by exact eps
    torch.testing.assert_close(x_w, x0_w, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(x_a, x0_a, rtol=1e-3, atol=1e-3)


def test_temperature_scales_the_ancestral_noise(diff):
    """tau multiplies each step's fresh noise: the spread of the samples grows with tau; a negative tau is refused."""
    x0_a = torch.ones(1, 6, 8)

    def unit_gaussian_data(x_a, x_w, t_a, t_w, w_mask):  # the exact eps when x0 ~ N(0, 1): sqrt(1 - alpha_bar_t) x_t
        ab = diff.alphas_cumprod[t_w].float().reshape(-1, 1, 1)
        return torch.zeros_like(x_a), torch.zeros_like(x_a), (1 - ab).sqrt() * x_w, torch.zeros_like(x_w)

    def spread(tau):
        mask = torch.ones(1, 4000, 1, dtype=torch.bool)
        _, x_w = sample_loop(diff.respace(20), unit_gaussian_data, x0_a.clone(), (1, 4000, 1), conditional=True, weight_mask=mask,
                             method="ancestral", temperature=tau, generator=torch.Generator().manual_seed(7))
        return x_w

    stds = [spread(tau).std().item() for tau in (0.0, 0.5, 1.0)]
    assert stds[0] < stds[1] - 0.05 < stds[2] - 0.1 and abs(stds[2] - 1.0) < 0.1  # tau = 1 samples the data, N(0, 1)
    with pytest.raises(ValueError, match="temperature"):
        spread(-0.5)


def test_min_snr_weight(diff):
    """min(SNR, gamma) / SNR: 1 where SNR <= gamma (high noise), gamma / SNR below that noise level, 1 at t = 0."""
    ac = diff.alphas_cumprod.double()
    snr = ac / (1 - ac)
    t = torch.tensor([0, 1, 10, 100, 500, 1000])
    w = diff.min_snr_weight(t, 5.0)
    for ti, wi in zip(t.tolist(), w.tolist()):
        want = 1.0 if ti == 0 else min(float(snr[ti]), 5.0) / float(snr[ti])
        assert wi == pytest.approx(want, rel=1e-5)
    assert w[1] < 0.01 and w[-1] == 1.0  # the first step (SNR ~ 1e4) nearly drops out; the noisiest keeps 1
    cross = int((snr[1:] <= 5.0).nonzero()[0]) + 1  # the first t with SNR <= gamma
    assert diff.min_snr_weight(torch.tensor([cross - 1]), 5.0) < 1 and diff.min_snr_weight(torch.tensor([cross]), 5.0) == 1


def test_monl_modes():
    g = torch.Generator().manual_seed(6)
    ts = sample_monl_timesteps(4000, 1000, p_joint=0.5, generator=g)
    assert ((ts.t_w >= 1) & (ts.t_w <= 1000)).all()
    assert (ts.t_a[ts.joint] == ts.t_w[ts.joint]).all()  # joint: t_a = t_w = t_ref
    assert (ts.t_a[~ts.joint] == 0).all()  # conditional: architecture clean
    assert 0.45 < ts.joint.float().mean().item() < 0.55
    tb = sample_monl_timesteps(64, 1000, per="batch", generator=g)
    assert tb.joint.all() or (~tb.joint).all()
    assert not sample_monl_timesteps(100, 1000, p_joint=0.0, generator=g).joint.any()
    assert sample_monl_timesteps(100, 1000, p_joint=1.0, generator=g).joint.all()


def test_arch_codec_round_trip_and_errors():
    codec = ArchCodec(WidthVocab((16, 32, 64)))
    assert codec.dim == 8 and set(codec.codes.unique().tolist()) == {-1.0, 1.0}
    gram = codec.codes @ codec.codes.T
    torch.testing.assert_close(gram, 8 * torch.eye(5))  # orthogonal codes
    assert (hadamard(4) @ hadamard(4).T == 4 * torch.eye(4)).all()
    arch = Architecture(42, (32, 16, 64, 32), 8)
    x = codec.encode(arch)
    archs, valid, raw = codec.decode((x + 0.4 * torch.randn(6, 8)).unsqueeze(0), 42, 8)
    assert archs == [arch] and valid == [True]
    with pytest.raises(ArchitectureError, match="not in the token vocabulary"):
        codec.encode(Architecture(42, (24, 16), 8))
    assert codec.tokens(Architecture(42, (24, 48), 8), unknown="nearest")[1:3] == [codec.vocab.token_of(16), codec.vocab.token_of(32)]
    # a marker in the middle is invalid; the nearest valid decoding replaces it by a width
    bad = codec.codes[torch.tensor([0, 0, 3, 4, 2, 1])].unsqueeze(0)
    archs, valid, _ = codec.decode(bad, 42, 8)
    assert valid == [False] and len(archs[0].hidden) == 4
    codes, mask = codec.encode_batch([arch, Architecture(42, (16, 16), 8)])
    assert codes.shape == (2, 6, 8) and mask.sum(1).tolist() == [6, 4]
