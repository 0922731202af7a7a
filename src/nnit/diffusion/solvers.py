"""Few-step samplers for NNiT from the diffusers schedulers (DPM-Solver++, SDE-DPM-Solver++, UniPC).

The solvers are diffusers' own ``step`` functions used standalone: this module only turns NNiT's
two-modality denoiser into what they expect and keeps NNiT's sampling conventions.

* **Schedule.** The scheduler is built from the diffusion's own betas (``trained_betas``), so diffusers'
  timestep k (0..T-1) is NNiT's t = k + 1 (NNiT's t = 0 is the clean state; see ``gaussian.py``). The
  denoiser gets the original timestep ``diffusion.timestep_map[k + 1]``. The K solver timesteps run from
  t = T to t = 1, spaced uniformly in log-SNR (DPM-Solver's spacing: ``use_lu_lambdas``) for DPM-Solver++
  and uniformly in log sigma (``use_exponential_sigmas``) for UniPC, which has no log-SNR option; the last
  step lands on the clean state (``final_sigmas_type="zero"``) and returns the x0^ of t = 1. diffusers'
  default, time-uniform spacing, ends with one jump from t ~ T / K to 0, whose x0^ is far from the
  answer: the exact-denoiser tests in tests/test_samplers.py fail with it.
* **Prediction type.** All samplers here are data-prediction solvers (DPM-Solver++ / UniPC with
  ``predict_x0``): each step gets x0^ = x_t / sqrt(alpha_bar_t) - sqrt(1 / alpha_bar_t - 1) eps^ with
  ``prediction_type="sample"``. The denoiser returns eps^ (a v-prediction model's output is already
  converted by ``GaussianDiffusion.eps_from_output``), so v- and eps-models are handled alike, and x0^ is
  clipped to [-c, c] exactly as the ancestral sampler clips it (``weight_clip`` / ``arch_clip``).
* **Learned variance.** Not used: these solvers integrate the probability-flow ODE (``dpm++2m``,
  ``unipc``) or the reverse SDE whose noise is fixed by the schedule (``dpm++2m-sde``), not the learned
  Sigma_theta of the ancestral sampler. The variance output of the denoiser is ignored.
* **Temperature.** ``dpm++2m-sde`` scales each weight step's fresh noise by tau (diffusers'
  ``variance_noise``), as the ancestral sampler does (tau = 1: the model's distribution; the architecture's
  noise in joint mode stays at 1). The ODE samplers have no fresh noise: they accept only tau = 1 and
  raise ``ValueError`` otherwise, so a temperature never silently does nothing.
* **Masking.** Weight entries where the mask is False are not part of the state: the denoiser sees them
  as 0, their x0^ is 0 and they rest at sqrt(1 - alpha_bar_t) z (q(x_t | x_0 = 0) with one fixed z), as in
  ``sample_loop``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch

from nnit.errors import NNiTError
from nnit.diffusion.gaussian import GaussianDiffusion


@dataclass(frozen=True)
class SolverSpec:
    """One named sampler: which diffusers scheduler, its settings, and whether it draws fresh noise."""

    scheduler: str
    """Class name in ``diffusers``."""
    options: dict[str, Any] = field(default_factory=dict)
    """Constructor settings besides the schedule and the prediction type."""
    stochastic: bool = False
    """True for SDE solvers (temperature scales their fresh noise); False for ODE solvers."""
    doc: str = ""


SOLVERS: dict[str, SolverSpec] = {
    "dpm++2m": SolverSpec("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2,
                                                          "use_lu_lambdas": True},
                          doc="DPM-Solver++(2M), multistep 2nd-order ODE solver (Lu et al. 2022)"),
    "dpm++2m-sde": SolverSpec("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "solver_order": 2,
                                                                  "use_lu_lambdas": True},
                              stochastic=True, doc="SDE-DPM-Solver++(2M), 2nd-order reverse-SDE solver (Lu et al. 2022)"),
    "unipc": SolverSpec("UniPCMultistepScheduler", {"solver_order": 2, "solver_type": "bh2", "predict_x0": True,
                                                  "use_exponential_sigmas": True},
                        doc="UniPC-2 (bh2), predictor-corrector ODE solver (Zhao et al. 2023)"),
}
"""The few-step samplers, by the name ``sample_loop(method=...)`` / ``NNiTSampler.conditional(method=...)`` takes."""


def make_scheduler(diffusion: GaussianDiffusion, method: str, steps: int):
    """A fresh diffusers scheduler for ``method`` over ``diffusion``'s betas, set to ``steps`` steps."""
    import diffusers  # noqa: PLC0415  (imported on first use: it takes a while to import)

    spec = SOLVERS[method]
    T = diffusion.num_timesteps
    if not 1 <= steps <= T:
        raise NNiTError(f"steps must be in 1..{T}, got {steps}")
    cls = getattr(diffusers, spec.scheduler)
    sched = cls(num_train_timesteps=T, trained_betas=diffusion.betas[1:].numpy(), prediction_type="sample",
                **spec.options)
    sched.set_timesteps(steps)
    return sched


def solver_loop(
    diffusion: GaussianDiffusion,
    denoise: Callable,
    x_a: torch.Tensor,
    w_shape: tuple[int, ...],
    *,
    conditional: bool,
    weight_mask: torch.Tensor | Callable[[Optional[torch.Tensor]], torch.Tensor],
    method: str,
    steps: int,
    arch_clip: Optional[float] = 1.0,
    weight_clip: Optional[float] = None,
    temperature: float = 1.0,
    generator: Optional[torch.Generator] = None,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``sample_loop`` with a diffusers solver (``SOLVERS[method]``) in ``steps`` steps; same arguments and result.

    Conditional mode holds the architecture clean (t_a = 0); joint mode steps the architecture codes with
    a second scheduler of the same kind (x0^ clipped to ``arch_clip``), and each step's architecture
    estimate x0^_a picks the next weight mask, as in ``sample_loop``."""
    if method not in SOLVERS:
        raise NNiTError(f"unknown solver {method!r}; choose one of {', '.join(SOLVERS)}")
    spec = SOLVERS[method]
    if not temperature >= 0:
        raise NNiTError(f"temperature must be >= 0 (got {temperature})")
    if not spec.stochastic and temperature != 1.0:
        raise NNiTError(f"temperature {temperature:g}: the {method!r} sampler is an ODE solver with no fresh noise to scale; "
                         "sample it at temperature 1 (or use 'dpm++2m-sde' / 'ancestral', whose noise it scales)")
    device = x_a.device
    B = x_a.shape[0]
    randn = lambda shape: torch.randn(shape, generator=generator, device=device)  # noqa: E731
    sched_w = make_scheduler(diffusion, method, steps)
    sched_a = None if conditional else make_scheduler(diffusion, method, steps)
    ks = [int(k) for k in sched_w.timesteps]
    tmap = diffusion.timestep_map.to(device)
    sigma = diffusion.sqrt_one_minus_alphas_cumprod  # float64 (T + 1,)
    z_w = randn(w_shape)  # inactive weight entries rest at q(x_t | x_0 = 0) = sqrt(1 - alpha_bar_t) z
    x_w = z_w.clone()
    if not conditional:
        x_a = randn(tuple(x_a.shape))
    x0_a_hat: Optional[torch.Tensor] = None
    fixed_mask = None if callable(weight_mask) else weight_mask
    zeros_t = torch.zeros(B, dtype=torch.long, device=device)
    order = range(len(ks))
    if progress:
        from tqdm import tqdm

        order = tqdm(order, desc=f"sampling ({method}, {len(ks)} steps)", leave=False)
    for n in order:
        k = ks[n]
        ii = torch.full((B,), k + 1, dtype=torch.long, device=device)  # this schedule's step, 1..T
        t_orig = tmap[ii]
        mask = fixed_mask if fixed_mask is not None else weight_mask(x0_a_hat)  # type: ignore[operator]
        x_in = x_w * mask
        t_a = zeros_t if conditional else t_orig
        eps_a, _v_a, eps_w, _v_w = (o.float() for o in denoise(x_a, x_in, t_a, t_orig, mask))
        x0_w = diffusion.predict_x0_from_eps(x_in, ii, eps_w)
        if weight_clip is not None:
            x0_w = x0_w.clamp(-weight_clip, weight_clip)
        x0_w = x0_w * mask
        if spec.stochastic:
            x_new = sched_w.step(x0_w, k, x_w, variance_noise=temperature * randn(w_shape)).prev_sample
        else:
            x_new = sched_w.step(x0_w, k, x_w).prev_sample
        t_next = ks[n + 1] + 1 if n + 1 < len(ks) else 0
        x_w = torch.where(mask, x_new, float(sigma[t_next]) * z_w)
        if sched_a is not None:
            x0_a = diffusion.predict_x0_from_eps(x_a, ii, eps_a)
            if arch_clip is not None:
                x0_a = x0_a.clamp(-arch_clip, arch_clip)
            if spec.stochastic:
                x_a = sched_a.step(x0_a, k, x_a, variance_noise=randn(tuple(x_a.shape))).prev_sample
            else:
                x_a = sched_a.step(x0_a, k, x_a).prev_sample
            x0_a_hat = x0_a
    final_mask = weight_mask(x_a) if callable(weight_mask) else weight_mask
    return x_a, x_w * final_mask


__all__ = ["SOLVERS", "SolverSpec", "make_scheduler", "solver_loop"]
