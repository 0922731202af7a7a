"""D2NWG baseline (Soro et al. 2024, "Diffusion-based Neural Network Weights Generation"), adapted to
mixed widths as the NNiT paper did (its Sec. 6.3): weights flattened into **zero-padded vectors**, a
VAE compresses them, and a diffusion model in the VAE's latent space generates them **conditioned on
the architecture**.

* Vectorization (:class:`PaddedLayout`): every network is written into the layout of the widest
  architecture of the training depth (all hidden widths = the vocabulary's largest): layer l's
  ``[W | b]`` sits in the top-left block of a ``(max_out, max_in + 1)`` slab, the rest is zero. The
  position of a weight in the vector therefore depends only on its (layer, row, col) — there is no
  notion of a width anywhere but in the conditioning vector.
* VAE (:class:`ChunkVAE`): the vector is cut into chunks (D2NWG's chunk-wise encoding of long weight
  vectors); a shared MLP encoder with a learned chunk embedding maps each chunk to a small Gaussian
  latent, a shared MLP decoder maps it back. Loss: MSE on the real (non-padding) entries + a small KL.
* Latent diffusion (:class:`LatentDenoiser`): the latents of all chunks, flattened and scaled to unit
  std, are denoised by a residual MLP (plus an identity-initialised linear input skip) with AdaLN
  conditioning on (timestep + architecture embedding); sampling clips x0^ to the training latents' range,
  epsilon prediction, linear schedule T = 1000 (:class:`nnit.diffusion.gaussian.GaussianDiffusion`),
  DDIM or ancestral (fixed posterior variance) sampling.

Training runs the two phases in one step counter (VAE for ``vae_steps``, then the denoiser with the
VAE frozen), so a killed run resumes in either phase.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nnit.baselines.common import ArchEmbedding, count_parameters, timestep_embedding
from nnit.config import JSONConfig
from nnit.diffusion.gaussian import GaussianDiffusion, linear_betas
from nnit.errors import NNiTError
from nnit.weights.architecture import Architecture, ArchitectureError, WidthVocab
from nnit.weights.mlp import WeightSet


@dataclass(frozen=True)
class D2NWGConfig(JSONConfig):
    """Everything that defines a D2NWG baseline run (stored in its checkpoint)."""

    chunk: int = 512
    """Chunk length of the padded weight vector (VAE input)."""
    latent_per_chunk: int = 16
    """Latent dims per chunk."""
    vae_hidden: int = 256
    """Hidden width of the chunk encoder / decoder MLPs."""
    kl_weight: float = 1e-4
    """Weight of the KL term of the VAE loss."""
    input_noise: float = 0.001
    """Gaussian noise added to the VAE input during training (D2NWG's noise augmentation)."""
    denoiser_width: int = 256
    denoiser_hidden: int = 1024
    denoiser_blocks: int = 3
    vae_steps: int = 2000
    diffusion_steps: int = 4000
    batch_size: int = 16
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    num_timesteps: int = 1000
    arch_widths: tuple[int, ...] = (16, 32, 64)
    seed: int = 0
    val_fraction: float = 0.0
    """Share of each architecture's networks held out to decide when a phase stops improving (0 = fixed steps)."""
    val_every: int = 500
    """Steps between validations."""
    patience: int = 5
    """Validations without a 1% improvement before a phase ends (``vae_steps`` / ``diffusion_steps`` are then caps)."""
    vae_time_share: float = 0.3
    """Share of the run's wall-clock cap (``nnit train-baseline --max-seconds``) the VAE phase may take."""

    @property
    def total_steps(self) -> int:
        return self.vae_steps + self.diffusion_steps


D2NWG_PRESETS: dict[str, D2NWGConfig] = {
    "tiny": D2NWGConfig(chunk=256, vae_hidden=64, denoiser_width=64, denoiser_hidden=128, denoiser_blocks=2,
                        vae_steps=100, diffusion_steps=150, batch_size=8, ema_decay=0.95, val_fraction=0.25, val_every=25,
                        patience=2),
    # equal budget: each phase until its validation loss plateaus (the step counts are caps), the run capped at NNiT's
    # wall-clock for the task (``nnit reproduce`` passes it as --max-seconds)
    "cpu": D2NWGConfig(vae_steps=20_000, diffusion_steps=200_000, val_fraction=0.1, val_every=500, patience=5),
    "paper": D2NWGConfig(vae_steps=50_000, diffusion_steps=200_000, lr=3e-4, min_lr=3e-5, ema_decay=0.9999),
}


# ============================================================================ vectorization
class PaddedLayout:
    """Zero-padded flat vectors in the widest architecture's layout (see the module docstring)."""

    def __init__(self, input_dim: int, output_dim: int, depth: int, max_width: int, activation: str = "tanh") -> None:
        self.widest = Architecture(input_dim, (max_width,) * depth, output_dim, activation)
        self.slabs = [(o, i + 1) for o, i in self.widest.layer_shapes]  # [W | b] per layer
        self.offsets = [0]
        for o, c in self.slabs:
            self.offsets.append(self.offsets[-1] + o * c)
        self.dim = self.offsets[-1]

    def check(self, arch: Architecture) -> None:
        w = self.widest
        if (arch.input_dim, arch.output_dim, arch.depth) != (w.input_dim, w.output_dim, w.depth) or max(arch.hidden, default=0) > w.hidden[0]:
            raise ArchitectureError(f"[{arch.hidden_str()}] does not fit D2NWG's zero-padded layout of "
                                    f"{w.depth} hidden layers <= {w.hidden[0]} wide ({w.input_dim} -> {w.output_dim})")

    def flatten(self, ws: WeightSet) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, D) padded vectors and the (D,) bool mask of real entries."""
        self.check(ws.arch)
        vec = torch.zeros(ws.n, self.dim)
        mask = torch.zeros(self.dim, dtype=torch.bool)
        for l, ((O, C), (o, i)) in enumerate(zip(self.slabs, ws.arch.layer_shapes)):
            slab = torch.zeros(ws.n, O, C)
            slab[:, :o, :i] = ws.weights[l].detach().float()
            slab[:, :o, C - 1] = ws.biases[l].detach().float()
            vec[:, self.offsets[l] : self.offsets[l + 1]] = slab.flatten(1)
            m = torch.zeros(O, C, dtype=torch.bool)
            m[:o, :i] = True
            m[:o, C - 1] = True
            mask[self.offsets[l] : self.offsets[l + 1]] = m.flatten()
        return vec, mask

    def unflatten(self, arch: Architecture, vec: torch.Tensor) -> WeightSet:
        """Crop (N, D) vectors to ``arch``'s real entries."""
        self.check(arch)
        ws, bs = [], []
        for l, ((O, C), (o, i)) in enumerate(zip(self.slabs, arch.layer_shapes)):
            slab = vec[:, self.offsets[l] : self.offsets[l + 1]].reshape(-1, O, C)
            ws.append(slab[:, :o, :i].clone())
            bs.append(slab[:, :o, C - 1].clone())
        return WeightSet(arch, ws, bs)


# ============================================================================ model
class ChunkVAE(nn.Module):
    """Chunk-wise MLP VAE over a padded weight vector."""

    def __init__(self, dim: int, cfg: D2NWGConfig) -> None:
        super().__init__()
        self.dim, self.chunk, self.z = dim, cfg.chunk, cfg.latent_per_chunk
        self.num_chunks = -(-dim // cfg.chunk)
        h = cfg.vae_hidden
        self.enc_in = nn.Linear(cfg.chunk, h)
        self.enc_pos = nn.Parameter(torch.zeros(self.num_chunks, h))
        self.enc = nn.Sequential(nn.SiLU(), nn.Linear(h, h), nn.SiLU(), nn.Linear(h, 2 * self.z))
        self.dec_in = nn.Linear(self.z, h)
        self.dec_pos = nn.Parameter(torch.zeros(self.num_chunks, h))
        self.dec = nn.Sequential(nn.SiLU(), nn.Linear(h, h), nn.SiLU(), nn.Linear(h, cfg.chunk))

    def _chunks(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.num_chunks * self.chunk - self.dim
        return F.pad(x, (0, pad)).view(x.shape[0], self.num_chunks, self.chunk)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D) -> mean, logvar, each (B, num_chunks * z)."""
        h = self.enc(self.enc_in(self._chunks(x)) + self.enc_pos)
        mu, logvar = h.chunk(2, dim=-1)
        return mu.flatten(1), logvar.clamp(-12, 6).flatten(1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, num_chunks * z) -> (B, D)."""
        h = self.dec(self.dec_in(z.view(z.shape[0], self.num_chunks, self.z)) + self.dec_pos)
        return h.flatten(1)[:, : self.dim]


class LatentDenoiser(nn.Module):
    """Residual MLP with AdaLN (scale, shift, gate) from timestep + architecture embeddings."""

    def __init__(self, latent_dim: int, cfg: D2NWGConfig, vocab: WidthVocab, depth: int) -> None:
        super().__init__()
        w = cfg.denoiser_width
        self.inp = nn.Linear(latent_dim, w)
        self.t_mlp = nn.Sequential(nn.Linear(w, w), nn.SiLU(), nn.Linear(w, w))
        self.arch = ArchEmbedding(vocab, depth, w)
        self.norms = nn.ModuleList(nn.LayerNorm(w, elementwise_affine=False) for _ in range(cfg.denoiser_blocks))
        self.mods = nn.ModuleList(nn.Linear(w, 3 * w) for _ in range(cfg.denoiser_blocks))
        self.ffs = nn.ModuleList(nn.Sequential(nn.Linear(w, cfg.denoiser_hidden), nn.SiLU(), nn.Linear(cfg.denoiser_hidden, w))
                                 for _ in range(cfg.denoiser_blocks))
        self.out_norm = nn.LayerNorm(w)
        self.out = nn.Linear(w, latent_dim)
        # input skip, initialised to the identity: eps ~ z_t at high noise comes for free (the residual stream is
        # narrower than the latent, so without it the identity is out of reach and sampling diverges)
        self.skip = nn.Linear(latent_dim, latent_dim)
        nn.init.eye_(self.skip.weight)
        nn.init.zeros_(self.skip.bias)
        for m in self.mods:  # AdaLN-Zero: every block starts as the identity
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, archs: Sequence[Architecture]) -> torch.Tensor:
        c = F.silu(self.t_mlp(timestep_embedding(t, self.inp.out_features)) + self.arch(archs))
        h = self.inp(x)
        for norm, mod, ff in zip(self.norms, self.mods, self.ffs):
            scale, shift, gate = mod(c).chunk(3, dim=-1)
            h = h + gate * ff(norm(h) * (1 + scale) + shift)
        return self.out(self.out_norm(h)) + self.skip(x)


class D2NWG(nn.Module):
    """The whole baseline: layout + VAE + latent denoiser (+ the latent scale, a buffer)."""

    def __init__(self, cfg: D2NWGConfig, input_dim: int, output_dim: int, depth: int, activation: str = "tanh") -> None:
        super().__init__()
        self.cfg = cfg
        self.vocab = WidthVocab(cfg.arch_widths)
        self.layout = PaddedLayout(input_dim, output_dim, depth, max(cfg.arch_widths), activation)
        self.vae = ChunkVAE(self.layout.dim, cfg)
        self.latent_dim = self.vae.num_chunks * cfg.latent_per_chunk
        self.denoiser = LatentDenoiser(self.latent_dim, cfg, self.vocab, depth)
        self.register_buffer("latent_scale", torch.ones(()))
        self.register_buffer("latent_absmax", torch.zeros(()))  # clip of x0^ while sampling (0 = none)
        self.diffusion = GaussianDiffusion(linear_betas(cfg.num_timesteps))

    def parameter_counts(self) -> dict[str, int]:
        return {"vae": count_parameters(self.vae), "denoiser": count_parameters(self.denoiser), "total": count_parameters(self)}

    # ------------------------------------------------------------------ losses
    def vae_loss(self, x: torch.Tensor, mask: torch.Tensor, gen: torch.Generator, rows: slice = slice(None)) -> dict[str, torch.Tensor]:
        """VAE loss of the networks ``rows`` of the batch ``x`` (a data-parallel rank's share; the noise is drawn
        for the whole batch, so the ranks together compute one process's loss)."""
        eps_x = torch.randn(x.shape, generator=gen)
        eps_z = torch.randn((x.shape[0], self.latent_dim), generator=gen)
        x, mask, eps_x, eps_z = x[rows], mask[rows], eps_x[rows], eps_z[rows]
        noisy = x + self.cfg.input_noise * eps_x
        mu, logvar = self.vae.encode(noisy)
        z = mu + torch.exp(0.5 * logvar) * eps_z
        rec = self.vae.decode(z)
        m = mask.float()
        mse = (((rec - x) ** 2) * m).sum(1) / m.sum(1)
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).mean(1)
        return {"recon": mse.mean(), "kl": kl.mean(), "total": mse.mean() + self.cfg.kl_weight * kl.mean()}

    @torch.no_grad()
    def latents(self, x: torch.Tensor) -> torch.Tensor:
        """Scaled VAE means of padded vectors (the diffusion model's data)."""
        mu, _ = self.vae.encode(x)
        return mu / self.latent_scale

    def diffusion_loss(self, z0: torch.Tensor, archs: Sequence[Architecture], gen: torch.Generator,
                       rows: slice = slice(None)) -> dict[str, torch.Tensor]:
        """Epsilon-MSE of the latents ``rows`` of the batch ``z0`` (as :meth:`vae_loss`)."""
        B = z0.shape[0]
        t = torch.randint(1, self.cfg.num_timesteps + 1, (B,), generator=gen)
        noise = torch.randn(z0.shape, generator=gen)
        z0, archs, t, noise = z0[rows], list(archs)[rows], t[rows], noise[rows]
        zt = self.diffusion.add_noise(z0, noise, t)
        mse = ((self.denoiser(zt, t, archs) - noise) ** 2).mean()
        return {"eps_mse": mse, "total": mse}

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def generate(self, arch: Architecture, num: int, seed: int = 0, method: str = "ddim", steps: int = 50,
                 clip: Optional[float] = None) -> WeightSet:
        """``num`` normalized networks of ``arch`` (un-normalize with the checkpoint's normalizer)."""
        self.layout.check(arch)
        self.denoiser.arch.ids(arch)  # clear error for widths outside the vocabulary
        d = self.diffusion if steps >= self.cfg.num_timesteps else self.diffusion.respace(steps)
        if clip is None and float(self.latent_absmax) > 0:
            clip = float(self.latent_absmax)
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(num, self.latent_dim, generator=g)
        archs = [arch] * num
        for i in range(d.num_timesteps, 0, -1):
            ii = torch.full((num,), i, dtype=torch.long)
            eps = self.denoiser(z, d.timestep_map[ii], archs)
            if method == "ddim":
                z, _ = d.ddim_step(eps, z, ii, torch.zeros_like(z), 0.0, clip=clip)
            elif method == "ancestral":  # fixed posterior variance beta~ (v = -1 in the learned-variance form)
                z, _ = d.p_sample_step(eps, torch.full_like(z, -1.0), z, ii, torch.randn(z.shape, generator=g), clip=clip)
            else:
                raise NNiTError(f"unknown sampler {method!r}; choose 'ddim' or 'ancestral'")
        vec = self.vae.decode(z * self.latent_scale)
        return self.layout.unflatten(arch, vec)
