"""Gaussian diffusion for NNiT: schedule, forward process, learned-variance posterior, hybrid loss,
Mixture of Noise Levels and the samplers (paper Sec. 5.3, Appendix C, Table 7).

Written after the IDDPM / DiT ``gaussian_diffusion.py`` and the diffusers schedulers, with one
convention change that the paper's MoNL needs: **timesteps run 1..T and t = 0 means clean data**.
Every schedule table has T + 1 entries, index 0 being the clean state (alpha_bar_0 = 1, beta_0 = 0),
so ``add_noise(x0, eps, 0) == x0`` and "the architecture held clean at t_a = 0" is just t_a = 0.

Notation (Ho et al. 2020, "DDPM"; Nichol & Dhariwal 2021, "IDDPM"; Song et al. 2021, "DDIM"):

* alpha_t = 1 - beta_t,  alpha_bar_t = prod_{s<=t} alpha_s
* q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)                          (DDPM Eq. 4)
* q(x_{t-1} | x_t, x_0) = N(mu~_t, beta~_t I),
  mu~_t = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) x_0
        + sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) x_t,                   (DDPM Eq. 6-7)
  beta~_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t
* x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)                              (DDPM Eq. 15)
* learned variance: Sigma_theta = exp(u log beta_t + (1 - u) log beta~_t), u = (v + 1) / 2   (IDDPM Eq. 15)
* hybrid loss: L_simple + lambda L_vb, lambda = 1 here (T = 1000; IDDPM's rescaling T / 1000),
  with a stop-gradient on the predicted mean inside L_vb                                 (IDDPM Eq. 16)
* DDIM: x_{t'} = sqrt(alpha_bar_t') x0^ + sqrt(1 - alpha_bar_t' - sigma^2) eps^ + sigma z      (DDIM Eq. 12)

Data here come in two modalities: the weight tokens (continuous; padding entries masked out of the
losses and held at zero in the state) and the architecture codes (vocabulary codes are +-1 vectors, so the
decoder term at t = 1 is the *discretized* Gaussian likelihood with 2 bins; value codes use the continuous one —
see ``nnit.diffusion.arch_codes``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal, Optional

import numpy as np
import torch

from nnit.errors import NNiTError

Likelihood = Literal["continuous", "discretized"]
SamplerName = Literal["ancestral", "ddim", "dpm++2m", "dpm++2m-sde", "unipc"]
"""``ancestral`` / ``ddim`` run on a respaced schedule here; the others are diffusers solvers (``nnit.diffusion.solvers``)."""


# ============================================================================ primitives
def normal_kl(mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor, logvar2: torch.Tensor) -> torch.Tensor:
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)) per element, in nats."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def _approx_std_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    """Phi(x), the standard normal CDF (tanh approximation used by IDDPM; error < 1e-3)."""
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def continuous_gaussian_log_likelihood(x: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, e^{2 log_scale}) per element, in nats (the weights' decoder term at t = 1)."""
    return -0.5 * math.log(2 * math.pi) - log_scales - 0.5 * ((x - means) * torch.exp(-log_scales)) ** 2


def discretized_gaussian_log_likelihood(
    x: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor, num_bins: int = 256
) -> torch.Tensor:
    """log P(x) per element, in nats, of a Gaussian integrated over the bin that holds x (IDDPM / DDPM Eq. 13).

    The data take ``num_bins`` evenly spaced values in [-1, 1] (256 for 8-bit images; 2 for the
    +-1 architecture codes). Bin k covers [x_k - delta, x_k + delta] with delta = 1 / (num_bins - 1);
    the two edge bins extend to -inf / +inf, so the probabilities of all bins sum to 1.
    """
    if num_bins < 2:
        raise ValueError(f"a discretized likelihood needs at least 2 bins, got {num_bins}")
    delta = 1.0 / (num_bins - 1)
    centered = x - means
    inv_std = torch.exp(-log_scales)
    cdf_plus = _approx_std_normal_cdf(inv_std * (centered + delta))
    cdf_min = _approx_std_normal_cdf(inv_std * (centered - delta))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_cdf_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    edge = 1.0 - 0.5 * delta
    return torch.where(x < -edge, log_cdf_plus, torch.where(x > edge, log_one_minus_cdf_min, log_cdf_delta))


def masked_mean(x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Per-sample mean over all non-batch dims of ``x``, counting only entries where ``mask`` (broadcastable
    to ``x``) is True. A sample with an empty mask gets 0: it contributes nothing."""
    if mask is None:
        return x.flatten(1).mean(1)
    m = mask.to(x.dtype).expand_as(x)
    return (x * m).flatten(1).sum(1) / m.flatten(1).sum(1).clamp(min=1.0)


def _extract(table: torch.Tensor, t: torch.Tensor, ndim: int) -> torch.Tensor:
    """table[t] reshaped to (B, 1, ..., 1) for broadcasting against a tensor of ``ndim`` dims."""
    out = table.to(t.device)[t.long()].float()
    return out.reshape(t.shape[0], *([1] * (ndim - 1)))


# ============================================================================ schedule
def linear_betas(num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
    """DDPM's linear schedule, rescaled as in IDDPM so other T keep the same curve (scale = 1000 / T)."""
    scale = 1000.0 / num_timesteps
    return np.linspace(scale * beta_start, scale * beta_end, num_timesteps, dtype=np.float64)


class GaussianDiffusion:
    """The forward process, the learned-variance reverse process and the per-step samplers.

    ``betas`` are beta_1..beta_T. All tables are float64 tensors indexed by t in 0..T (index 0 = clean).
    ``timestep_map[i]`` is the original timestep of step i (identity unless the schedule was respaced
    by :meth:`respace`); the denoiser always receives original timesteps.
    """

    def __init__(self, betas: np.ndarray | torch.Tensor, timestep_map: Optional[torch.Tensor] = None) -> None:
        b = torch.as_tensor(np.asarray(betas, dtype=np.float64))
        if b.dim() != 1 or b.numel() < 1 or not bool(((b > 0) & (b <= 1)).all()):
            raise ValueError("betas must be a 1-D array with every beta in (0, 1]")
        self.num_timesteps = int(b.numel())
        self.betas = torch.cat([torch.zeros(1, dtype=torch.float64), b])  # (T+1,), beta_0 = 0
        alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(alphas, 0)  # alpha_bar_t, alpha_bar_0 = 1
        self.alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod[:-1]])
        self.sqrt_alphas_cumprod = self.alphas_cumprod.sqrt()
        self.sqrt_one_minus_alphas_cumprod = (1.0 - self.alphas_cumprod).sqrt()
        self.sqrt_recip_alphas_cumprod = (1.0 / self.alphas_cumprod).sqrt()
        self.sqrt_recipm1_alphas_cumprod = (1.0 / self.alphas_cumprod - 1.0).sqrt()
        # beta~_t (DDPM Eq. 7); beta~_0 = beta~_1 = 0, so the log is clipped to beta~_2 at t <= 1 (IDDPM)
        denom = (1.0 - self.alphas_cumprod).clamp(min=1e-20)
        self.posterior_variance = self.betas * (1.0 - self.alphas_cumprod_prev) / denom
        self.posterior_variance[0] = 0.0
        clip = self.posterior_variance[2] if self.num_timesteps > 1 else self.betas[1]
        pv = self.posterior_variance.clone()
        pv[:2] = clip
        self.posterior_log_variance_clipped = pv.log()
        self.log_betas = self.betas.clamp(min=1e-20).log()
        self.posterior_mean_coef1 = self.betas * self.alphas_cumprod_prev.sqrt() / denom
        self.posterior_mean_coef2 = (1.0 - self.alphas_cumprod_prev) * alphas.sqrt() / denom
        self.posterior_mean_coef1[0], self.posterior_mean_coef2[0] = 1.0, 0.0
        self.timestep_map = torch.arange(self.num_timesteps + 1) if timestep_map is None else timestep_map.long()

    @classmethod
    def linear(cls, num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> "GaussianDiffusion":
        """The paper's schedule (Table 7: linear, T = 1000)."""
        return cls(linear_betas(num_timesteps, beta_start, beta_end))

    # ------------------------------------------------------------------ respacing
    def respace(self, num_steps: int) -> "GaussianDiffusion":
        """A schedule over ``num_steps`` evenly spaced original timesteps (IDDPM "SpacedDiffusion").

        For kept timesteps tau_1 < ... < tau_S (tau_S = T): beta'_i = 1 - alpha_bar_{tau_i} / alpha_bar_{tau_{i-1}}
        (alpha_bar_{tau_0} = 1), so alpha_bar'_i = alpha_bar_{tau_i}; beta~' and the learned-variance
        interpolation follow from the new betas. ``timestep_map`` maps step i to tau_i.
        """
        if not 1 <= num_steps <= self.num_timesteps:
            raise NNiTError(f"num_steps must be in 1..{self.num_timesteps}, got {num_steps}")
        T = self.num_timesteps
        kept = sorted(set(int(round(x)) for x in np.linspace(T / num_steps, T, num_steps)))
        ab = self.alphas_cumprod[kept]
        ab_prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
        betas = (1.0 - ab / ab_prev).clamp(max=0.999)
        tmap = self.timestep_map[torch.tensor([0, *kept])]
        return GaussianDiffusion(betas.numpy(), timestep_map=tmap)

    # ------------------------------------------------------------------ forward process
    def min_snr_weight(self, t: torch.Tensor, gamma: float) -> torch.Tensor:
        """Per-sample Min-SNR-gamma weight of the eps-MSE (Hang et al. 2023, Eq. 8 read for eps targets):
        min(SNR(t), gamma) / SNR(t) = min(1, gamma / SNR(t)) with 1 / SNR(t) = 1 / alpha_bar_t - 1; 1 where t = 0."""
        w = torch.clamp(gamma * _extract(self.sqrt_recipm1_alphas_cumprod, t, 1) ** 2, max=1.0)
        return torch.where(t > 0, w, torch.ones_like(w))

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Sample q(x_t | x_0) = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (DDPM Eq. 4); t = 0 gives x_0."""
        n = x0.dim()
        return _extract(self.sqrt_alphas_cumprod, t, n) * x0 + _extract(self.sqrt_one_minus_alphas_cumprod, t, n) * noise

    def q_mean_variance(self, x0: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of q(x_t | x_0) (DDPM Eq. 4)."""
        n = x0.dim()
        return _extract(self.sqrt_alphas_cumprod, t, n) * x0, _extract(1.0 - self.alphas_cumprod, t, n).expand_as(x0)

    def q_posterior_mean_variance(
        self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """mu~_t(x_t, x_0), beta~_t and log beta~_t (clipped) of q(x_{t-1} | x_t, x_0) (DDPM Eq. 6-7)."""
        n = x0.dim()
        mean = _extract(self.posterior_mean_coef1, t, n) * x0 + _extract(self.posterior_mean_coef2, t, n) * x_t
        var = _extract(self.posterior_variance, t, n).expand_as(x0)
        logvar = _extract(self.posterior_log_variance_clipped, t, n).expand_as(x0)
        return mean, var, logvar

    # ------------------------------------------------------------------ eps <-> x0
    def predict_x0_from_eps(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x_0 = x_t / sqrt(alpha_bar_t) - sqrt(1/alpha_bar_t - 1) eps (DDPM Eq. 15)."""
        n = x_t.dim()
        return _extract(self.sqrt_recip_alphas_cumprod, t, n) * x_t - _extract(self.sqrt_recipm1_alphas_cumprod, t, n) * eps

    def predict_eps_from_x0(self, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """eps = (x_t / sqrt(alpha_bar_t) - x_0) / sqrt(1/alpha_bar_t - 1), the inverse of the above (t >= 1)."""
        n = x_t.dim()
        num = _extract(self.sqrt_recip_alphas_cumprod, t, n) * x_t - x0
        return num / _extract(self.sqrt_recipm1_alphas_cumprod, t, n).clamp(min=1e-12)

    # ------------------------------------------------------------------ network output -> eps
    def eps_from_output(self, out: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, parameterization: str = "eps") -> torch.Tensor:
        """The eps prediction from a network output ``out``.

        * ``"eps"``: the network predicts eps directly (DDPM; the paper's Table 7).
        * ``"v"``: the network predicts v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x_0 (Salimans & Ho 2022) and
          eps = sqrt(1 - alpha_bar_t) x_t + sqrt(alpha_bar_t) v. The loss is still the eps-MSE of Eq. 5, but the
          x0 estimate sqrt(alpha_bar) x_t - sqrt(1 - alpha_bar) v no longer amplifies network errors by
          1 / sqrt(alpha_bar_T) ~ 150 at high noise, which short (CPU) trainings cannot drive low enough.
          At t = 0 eps = v (clean input, target 0).
        """
        if parameterization == "eps":
            return out
        if parameterization != "v":
            raise ValueError(f"unknown parameterization {parameterization!r}; choose 'eps' or 'v'")
        n = x_t.dim()
        return _extract(self.sqrt_one_minus_alphas_cumprod, t, n) * x_t + _extract(self.sqrt_alphas_cumprod, t, n) * out

    # ------------------------------------------------------------------ reverse process
    def model_log_variance(self, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """log Sigma_theta = u log beta_t + (1 - u) log beta~_t with u = (v + 1) / 2 (IDDPM Eq. 15)."""
        n = v.dim()
        frac = (v + 1.0) / 2.0
        return frac * _extract(self.log_betas, t, n) + (1.0 - frac) * _extract(self.posterior_log_variance_clipped, t, n)

    def p_mean_variance(
        self, eps: torch.Tensor, v: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, clip: Optional[float] = None
    ) -> dict[str, torch.Tensor]:
        """p_theta(x_{t-1} | x_t) = N(mu~_t(x_t, x0^), Sigma_theta) with x0^ from the predicted eps.

        ``clip`` clamps x0^ to [-clip, clip] (used for the +-1 architecture codes)."""
        x0 = self.predict_x0_from_eps(x_t, t, eps)
        if clip is not None:
            x0 = x0.clamp(-clip, clip)
        mean, _, _ = self.q_posterior_mean_variance(x0, x_t, t)
        logvar = self.model_log_variance(v, t)
        return {"mean": mean, "log_variance": logvar, "x0": x0}

    def vb_terms(
        self,
        x0: torch.Tensor,
        x_t: torch.Tensor,
        t: torch.Tensor,
        eps: torch.Tensor,
        v: torch.Tensor,
        likelihood: Likelihood = "continuous",
        num_bins: int = 2,
    ) -> torch.Tensor:
        """Per-element L_vb in bits: KL(q(x_{t-1}|x_t,x_0) || p_theta(x_{t-1}|x_t)) for t >= 2 (DDPM Eq. 5),
        the decoder NLL -log p_theta(x_0|x_1) at t = 1, and 0 at t = 0 (clean input, nothing to model).

        The caller passes ``eps.detach()`` so that L_vb trains only the variance (IDDPM Sec. 3.1)."""
        n = x0.dim()
        true_mean, _, true_logvar = self.q_posterior_mean_variance(x0, x_t, t)
        out = self.p_mean_variance(eps, v, x_t, t)
        kl = normal_kl(true_mean, true_logvar, out["mean"], out["log_variance"]) / math.log(2.0)
        log_scales = 0.5 * out["log_variance"]
        if likelihood == "discretized":
            ll = discretized_gaussian_log_likelihood(x0, out["mean"], log_scales, num_bins)
        elif likelihood == "continuous":
            ll = continuous_gaussian_log_likelihood(x0, out["mean"], log_scales)
        else:
            raise ValueError(f"unknown likelihood {likelihood!r}")
        nll = -ll / math.log(2.0)
        tt = t.reshape(t.shape[0], *([1] * (n - 1)))
        return torch.where(tt == 1, nll, torch.where(tt == 0, torch.zeros_like(kl), kl))

    def hybrid_loss(
        self,
        x0: torch.Tensor,
        x_t: torch.Tensor,
        t: torch.Tensor,
        noise: torch.Tensor,
        eps: torch.Tensor,
        v: torch.Tensor,
        mask: Optional[torch.Tensor] = None,
        likelihood: Likelihood = "continuous",
        num_bins: int = 2,
    ) -> dict[str, torch.Tensor]:
        """Per-sample ``mse`` and ``vb`` of one modality (paper Eq. 3 and Eq. 5; IDDPM Eq. 16).

        The eps target is ``noise`` where t > 0 and 0 where t = 0 (the MoNL clean boundary, Eq. 5).
        Entries where ``mask`` is False (padding) do not count; each term is a masked mean per sample.
        """
        target = torch.where(t.reshape(-1, *([1] * (x0.dim() - 1))) > 0, noise, torch.zeros_like(noise))
        mse = masked_mean((eps.float() - target) ** 2, mask)
        vb = masked_mean(self.vb_terms(x0, x_t, t, eps.detach().float(), v.float(), likelihood, num_bins), mask)
        return {"mse": mse, "vb": vb}

    # ------------------------------------------------------------------ one reverse step
    def p_sample_step(
        self, eps: torch.Tensor, v: torch.Tensor, x_t: torch.Tensor, i: torch.Tensor, noise: torch.Tensor,
        clip: Optional[float] = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Ancestral step x_{i-1} = mu_theta + Sigma_theta^{1/2} z (no noise at i = 1). Returns (x_{i-1}, x0^)."""
        out = self.p_mean_variance(eps, v, x_t, i, clip)
        nonzero = (i > 1).float().reshape(-1, *([1] * (x_t.dim() - 1)))
        return out["mean"] + nonzero * torch.exp(0.5 * out["log_variance"]) * noise, out["x0"]

    def ddim_step(
        self, eps: torch.Tensor, x_t: torch.Tensor, i: torch.Tensor, noise: torch.Tensor, eta: float = 0.0,
        clip: Optional[float] = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """DDIM step (DDIM Eq. 12) from step i to i - 1 of this (possibly respaced) schedule.

        sigma = eta sqrt((1 - a'_{i-1}) / (1 - a'_i)) sqrt(1 - a'_i / a'_{i-1}); eta = 0 is deterministic."""
        n = x_t.dim()
        x0 = self.predict_x0_from_eps(x_t, i, eps)
        if clip is not None:
            x0 = x0.clamp(-clip, clip)
            eps = self.predict_eps_from_x0(x_t, i, x0)
        ab = _extract(self.alphas_cumprod, i, n)
        ab_prev = _extract(self.alphas_cumprod_prev, i, n)
        sigma = eta * ((1 - ab_prev) / (1 - ab)).clamp(min=0).sqrt() * (1 - ab / ab_prev).clamp(min=0).sqrt()
        dir_xt = (1 - ab_prev - sigma**2).clamp(min=0).sqrt() * eps
        return ab_prev.sqrt() * x0 + dir_xt + sigma * noise, x0


# ============================================================================ Mixture of Noise Levels
@dataclass
class MoNLTimesteps:
    """Timesteps of one training batch under MoNL (paper Appendix C, Eq. 4), plus this project's prior mode."""

    t_a: torch.Tensor
    """(B,) architecture timesteps: t_ref (joint and prior modes) or 0 (conditional)."""
    t_w: torch.Tensor
    """(B,) weight timesteps: t_ref in 1..T (T in prior mode)."""
    joint: torch.Tensor
    """(B,) bool: True where the sample is in joint mode."""
    prior: Optional[torch.Tensor] = None
    """(B,) bool: True where the sample is in architecture-prior mode (weights hidden); None when p_prior = 0."""


def sample_monl_timesteps(
    batch_size: int,
    num_timesteps: int,
    p_joint: float = 0.5,
    per: Literal["sample", "batch"] = "sample",
    generator: Optional[torch.Generator] = None,
    device: torch.device | str = "cpu",
    p_prior: float = 0.0,
) -> MoNLTimesteps:
    """t_ref ~ U{1..T}, m ~ U(0, 1); t_w = t_ref; t_a = t_ref if m >= 1 - p_joint (joint) else 0 (paper Eq. 4).

    ``per="sample"`` draws m per sample (lower-variance mixing within a batch); ``per="batch"`` draws one
    m for the whole batch, as Sec. 5.3's wording ("for each batch") reads. p_joint = 0.5 is the paper's.

    ``p_prior > 0`` adds a third mode taken from the conditional share: where m < p_prior the sample is in
    *architecture-prior* mode, t_a = t_ref and t_w = T with the weights hidden from the model (the caller
    masks them out): the limit t_w -> T of the joint mode, i.e. the marginal p(a) that architecture-first joint
    sampling draws from (``NNiTSampler.joint``). It needs p_prior + p_joint <= 1; p_prior = 0 draws exactly
    the paper's stream.
    """
    if p_prior < 0 or p_joint < 0 or p_prior + p_joint > 1 + 1e-9:
        raise NNiTError(f"MoNL mode probabilities must be >= 0 with p_prior + p_joint <= 1 (got {p_prior}, {p_joint})")
    t_ref = torch.randint(1, num_timesteps + 1, (batch_size,), generator=generator)
    m = torch.rand(batch_size if per == "sample" else 1, generator=generator).expand(batch_size)
    joint = m >= 1.0 - p_joint
    t_a = torch.where(joint, t_ref, torch.zeros_like(t_ref))
    if p_prior <= 0:
        return MoNLTimesteps(t_a.to(device), t_ref.to(device), joint.to(device))
    prior = m < p_prior
    t_a = torch.where(prior, t_ref, t_a)
    t_w = torch.where(prior, torch.full_like(t_ref, num_timesteps), t_ref)
    return MoNLTimesteps(t_a.to(device), t_w.to(device), joint.to(device), prior.to(device))


# ============================================================================ two-modality sampler
Denoiser = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
                    tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]
"""denoise(x_a, x_w, t_a, t_w, w_mask) -> (eps_a, v_a, eps_w, v_w); t_* are *original* timesteps."""


def sample_loop(
    diffusion: GaussianDiffusion,
    denoise: Denoiser,
    x_a: torch.Tensor,
    w_shape: tuple[int, ...],
    *,
    conditional: bool,
    weight_mask: torch.Tensor | Callable[[Optional[torch.Tensor]], torch.Tensor],
    method: SamplerName = "ancestral",
    eta: float = 0.0,
    arch_clip: Optional[float] = 1.0,
    weight_clip: Optional[float] = None,
    temperature: float = 1.0,
    generator: Optional[torch.Generator] = None,
    progress: bool = False,
    steps: Optional[int] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the reverse process over all steps of ``diffusion`` (respace it first for few-step sampling).

    * conditional (p(w | a)): ``x_a`` are the clean architecture codes, held at t_a = 0 every step.
    * joint (p(a, w)): ``x_a`` is ignored except for its shape; both modalities start from noise and
      step together with t_a = t_w.

    Weight entries where the mask is False are not part of the state: the denoiser sees them as 0.
    ``weight_mask`` is a fixed (B, T, p*p) bool tensor or a function of the current architecture
    estimate x0^_a (None before the first step) — joint mode uses that to crop the canvas to the
    architecture being sampled. ``arch_clip`` / ``weight_clip`` clamp each step's x0^ to [-c, c]
    (IDDPM's ``clip_denoised``; the +-1 codes use c = 1, weights e.g. the data's largest |value|): an
    imperfect eps at t ~ T is amplified 1 / sqrt(alpha_bar_T) ~ 150x in x0^, which the clip bounds.
    ``temperature`` scales the fresh noise of every weight step, x_{i-1} = mu + tau Sigma^{1/2} z (ancestral;
    DDIM's sigma z with eta > 0 alike): tau = 1 is the model's distribution, tau < 1 trades diversity for
    fidelity (the temperature of Glow / IDDPM-style samplers; the architecture's noise is left at 1).
    Returns (x0_a, x0_w) with the final masked weights.

    ``method`` other than ``ancestral`` / ``ddim`` (``dpm++2m``, ``dpm++2m-sde``, ``unipc``) runs that diffusers
    solver in ``steps`` steps (default: all of ``diffusion``'s) over ``diffusion`` (pass the unrespaced one);
    see ``nnit.diffusion.solvers`` for how they treat temperature, the learned variance and masking.
    ``steps`` is ignored by ``ancestral`` / ``ddim``, which take every step of ``diffusion``.
    """
    if not temperature >= 0:
        raise NNiTError(f"temperature must be >= 0 (got {temperature})")
    if method not in ("ancestral", "ddim"):
        from nnit.diffusion.solvers import solver_loop

        return solver_loop(diffusion, denoise, x_a, w_shape, conditional=conditional, weight_mask=weight_mask, method=method,
                           steps=diffusion.num_timesteps if steps is None else int(steps), arch_clip=arch_clip,
                           weight_clip=weight_clip, temperature=temperature, generator=generator, progress=progress)
    device = x_a.device
    T = diffusion.num_timesteps
    B = x_a.shape[0]
    randn = lambda shape: torch.randn(shape, generator=generator, device=device)  # noqa: E731
    z_w = randn(w_shape)  # inactive weight entries rest at q(x_t | x_0 = 0) = sqrt(1 - alpha_bar_t) z
    x_w = z_w.clone()
    if not conditional:
        x_a = randn(tuple(x_a.shape))
    x0_a_hat: Optional[torch.Tensor] = None
    steps = range(T, 0, -1)
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc=f"sampling ({method}, {T} steps)", leave=False)
    for i in steps:
        ii = torch.full((B,), i, dtype=torch.long, device=device)
        t_orig = diffusion.timestep_map.to(device)[ii]
        mask = weight_mask(x0_a_hat) if callable(weight_mask) else weight_mask
        x_in = x_w * mask
        t_a = torch.zeros_like(t_orig) if conditional else t_orig
        eps_a, v_a, eps_w, v_w = (o.float() for o in denoise(x_a, x_in, t_a, t_orig, mask))
        if method == "ancestral":
            x_new, _ = diffusion.p_sample_step(eps_w, v_w, x_in, ii, temperature * randn(w_shape), clip=weight_clip)
            if not conditional:
                x_a, x0_a_hat = diffusion.p_sample_step(eps_a, v_a, x_a, ii, randn(tuple(x_a.shape)), clip=arch_clip)
        elif method == "ddim":
            x_new, _ = diffusion.ddim_step(eps_w, x_in, ii, temperature * randn(w_shape), eta, clip=weight_clip)
            if not conditional:
                x_a, x0_a_hat = diffusion.ddim_step(eps_a, x_a, ii, randn(tuple(x_a.shape)), eta, clip=arch_clip)
        else:
            raise NNiTError(f"unknown sampler {method!r}; choose 'ancestral' or 'ddim'")
        rest = float(diffusion.sqrt_one_minus_alphas_cumprod[i - 1]) * z_w
        x_w = torch.where(mask, x_new, rest)
    final_mask = weight_mask(x_a) if callable(weight_mask) else weight_mask
    return x_a, x_w * final_mask
