"""The few-step diffusers solvers (nnit.diffusion.solvers) against known answers.

* Gaussian data x0 ~ N(mu, s^2): the ideal denoiser is closed form, E[x0 | x_t] = mu + a s^2 (x_t - a mu) / (a^2 s^2 + sigma^2)
  (a = sqrt(alpha_bar_t), sigma = sqrt(1 - alpha_bar_t)), and the probability-flow ODE is the affine map
  x0 = mu + s (x_T - a_T mu) / sqrt(a_T^2 s^2 + sigma_T^2) of the starting noise: an ODE solver must land on it
  per sample, with the error of a second-order method; the SDE solver must sample N(mu, s^2).
* A point mass (the exact eps of fixed data): every solver must return the data, in both modes, with masks.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from nnit.diffusion.gaussian import GaussianDiffusion, sample_loop
from nnit.diffusion.solvers import SOLVERS
from test_diffusion import _exact_denoiser  # noqa: E402  (tests/ is on sys.path)

pytest.importorskip("diffusers")

MU, S = 0.7, 0.3
ODE = [m for m, s in SOLVERS.items() if not s.stochastic]
SDE = [m for m, s in SOLVERS.items() if s.stochastic]
ZOO = Path(__file__).resolve().parents[1] / "zoo" / "nnit_PushCube-v1.safetensors"


@pytest.fixture(scope="module")
def diff() -> GaussianDiffusion:
    return GaussianDiffusion.linear(1000)


def gaussian_oracle(diff: GaussianDiffusion):
    """The exact eps of x0 ~ N(MU, S^2) per element (the weights); the architecture is held clean."""

    def denoise(x_a, x_w, t_a, t_w, w_mask):
        a = diff.sqrt_alphas_cumprod[t_w].float().reshape(-1, 1, 1)
        sg = diff.sqrt_one_minus_alphas_cumprod[t_w].float().reshape(-1, 1, 1)
        x0 = MU + a * S**2 * (x_w - a * MU) / (a**2 * S**2 + sg**2)
        return torch.zeros_like(x_a), torch.zeros_like(x_a), (x_w - a * x0) / sg, torch.zeros_like(x_w)

    return denoise


def flow_answer(diff: GaussianDiffusion, z: torch.Tensor) -> torch.Tensor:
    """Where the exact probability-flow ODE takes the starting noise z (at t = T) for Gaussian data."""
    a = float(diff.sqrt_alphas_cumprod[-1])
    r = math.sqrt(a**2 * S**2 + float(1 - diff.alphas_cumprod[-1]))
    return MU + S * (z - a * MU) / r


def ode_error(diff, method: str, steps: int, mask: torch.Tensor) -> float:
    shape = tuple(mask.shape)
    z = torch.randn(shape, generator=torch.Generator().manual_seed(0))  # the loop's first draw: x_T
    _, x_w = sample_loop(diff, gaussian_oracle(diff), torch.ones(shape[0], 6, 8), shape, conditional=True, weight_mask=mask,
                         method=method, steps=steps, generator=torch.Generator().manual_seed(0))
    assert (x_w[~mask] == 0).all()  # entries outside the mask are not weights
    return float((x_w - flow_answer(diff, z) * mask).abs().max())


@pytest.mark.parametrize("method", ODE)
def test_ode_solvers_follow_the_exact_gaussian_flow(diff, method):
    mask = torch.ones(2, 300, 1, dtype=torch.bool)
    mask[1, 200:] = False
    err = {k: ode_error(diff, method, k, mask) for k in (10, 20, 40)}
    assert err[20] < 0.04 and err[40] < 0.015, err
    # second order: 4x the steps cut the error by well over the 4x of a first-order method
    assert err[40] < err[10] / 5.5, err
    # and at equal steps beat DDIM (the first-order DPM-Solver++) on the usual respaced schedule
    ddim_mask = mask
    z = torch.randn(tuple(mask.shape), generator=torch.Generator().manual_seed(0))
    _, x_ddim = sample_loop(diff.respace(20), gaussian_oracle(diff), torch.ones(2, 6, 8), tuple(mask.shape), conditional=True,
                            weight_mask=ddim_mask, method="ddim", generator=torch.Generator().manual_seed(0))
    assert err[20] < float((x_ddim - flow_answer(diff, z) * mask).abs().max()) / 3


def sde_samples(diff, method: str, tau: float, steps: int = 20, n: int = 8000) -> torch.Tensor:
    mask = torch.ones(1, n, 1, dtype=torch.bool)
    _, x_w = sample_loop(diff, gaussian_oracle(diff), torch.ones(1, 6, 8), (1, n, 1), conditional=True, weight_mask=mask,
                         method=method, steps=steps, temperature=tau, generator=torch.Generator().manual_seed(1))
    return x_w.flatten()


@pytest.mark.parametrize("method", SDE)
def test_sde_solver_samples_the_gaussian_and_temperature_scales_its_noise(diff, method):
    x = sde_samples(diff, method, 1.0)
    assert abs(x.mean().item() - MU) < 0.015 and abs(x.std().item() - S) < 0.015  # tau = 1: the data's distribution
    stds = [sde_samples(diff, method, tau).std().item() for tau in (0.0, 0.5)]
    assert stds[0] < 0.02 < stds[1] - 0.05 < x.std().item() - 0.1  # less fresh noise, less spread
    with pytest.raises(ValueError, match="temperature"):
        sde_samples(diff, method, -1.0)


@pytest.mark.parametrize("method", ODE)
def test_ode_solvers_refuse_a_temperature(diff, method):
    with pytest.raises(ValueError, match="ODE solver"):
        sde_samples(diff, method, 0.5, steps=3, n=4)
    with pytest.raises(ValueError, match="steps"):
        sde_samples(diff, method, 1.0, steps=0, n=4)


@pytest.mark.parametrize("method", list(SOLVERS))
@pytest.mark.parametrize("conditional", [True, False])
def test_point_mass_is_recovered(diff, method, conditional):
    g = torch.Generator().manual_seed(4)
    x0_a = torch.sign(torch.randn(3, 6, 8, generator=g))
    x0_w = torch.randn(3, 7, 4, generator=g)
    mask = torch.ones(3, 7, 4, dtype=torch.bool)
    mask[:, -1, 2:] = False
    seen = []

    def mask_fn(x0_a_hat):  # joint mode: the mask is asked for with each step's architecture estimate
        seen.append(x0_a_hat)
        return mask

    x_a, x_w = sample_loop(diff, _exact_denoiser(diff, x0_a, x0_w), x0_a.clone(), tuple(x0_w.shape), conditional=conditional,
                           weight_mask=mask if conditional else mask_fn, method=method, steps=8, generator=g)
    torch.testing.assert_close(x_w, x0_w * mask, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(x_a, x0_a, rtol=1e-3, atol=1e-3)
    if not conditional:
        assert seen[0] is None and len(seen) == 9  # 8 steps + the final crop
        torch.testing.assert_close(seen[2], x0_a, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("method", list(SOLVERS))
def test_x0_clip_bounds_the_weights(diff, method):
    """A denoiser whose x0^ is far outside [-c, c]: the clipped solvers return weights inside it."""

    def wild(x_a, x_w, t_a, t_w, w_mask):
        x0 = torch.full_like(x_w, 50.0)
        return torch.zeros_like(x_a), torch.zeros_like(x_a), diff.predict_eps_from_x0(x_w, t_w, x0), torch.zeros_like(x_w)

    mask = torch.ones(2, 5, 3, dtype=torch.bool)
    _, x_w = sample_loop(diff, wild, torch.ones(2, 6, 8), (2, 5, 3), conditional=True, weight_mask=mask, method=method,
                         steps=6, weight_clip=2.0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(x_w, torch.full_like(x_w, 2.0), rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not ZOO.exists(), reason="no zoo checkpoint")
def test_nnit_sampler_runs_every_solver_on_a_v_model():
    """End to end on the zoo's v-prediction model: conditional and joint, seeded, finite, in the data's range."""
    from nnit.diffusion.sample import NNiTSampler
    from nnit.weights.architecture import Architecture

    s = NNiTSampler.from_checkpoint(ZOO)
    assert s.config.parameterization == "v"
    d = s.data
    arch = Architecture(d["input_dim"], (32, 32, 16, 64), d["output_dim"], d.get("activation") or "tanh")
    for method, spec in SOLVERS.items():
        tau = 0.5 if spec.stochastic else 1.0
        a = s.conditional(arch, num=3, method=method, steps=4, seed=1, temperature=tau)
        b = s.conditional(arch, num=3, method=method, steps=4, seed=1, temperature=tau)
        assert a.n == 3 and torch.equal(a.to_vector(), b.to_vector())
        assert torch.isfinite(a.to_vector()).all()
        j = s.joint(num=2, depth=4, method=method, steps=3, seed=0, temperature=tau)
        assert len(j.archs) == 2 and sum(w.n for w in j.weights.values()) == 2
    with pytest.raises(ValueError, match="ODE solver"):
        s.conditional(arch, num=1, method="dpm++2m", steps=2, temperature=0.5)
