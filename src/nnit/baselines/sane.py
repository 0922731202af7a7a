"""SANE baseline (Schürholt et al. 2024, "Towards Scalable and Versatile Weight Space Learning"),
adapted to mixed widths as the NNiT paper did (its Sec. 6.3).

* Tokens (:func:`row_tokens`): every output neuron of every layer is one token, its incoming weights
  and bias ``[W[j, :], b[j]]`` zero-padded to the widest fan-in + 1. A network is the sequence of its
  layers' rows, so the sequence length is the sum of the widths (+ output dim).
* Positions: SANE's three learned embeddings summed — the **global** token index n, the layer index l
  and the index k within the layer. With mixed widths, changing one layer's width shifts n for every
  later token: the failure mode the paper names.
* Autoencoder (:class:`SANE`): a transformer encoder maps tokens to per-token latents (a linear
  bottleneck), a transformer decoder reconstructs the tokens. Loss: masked reconstruction MSE + gamma
  x NT-Xent contrastive loss between two noise-augmented views of each network on the pooled latents
  (SANE's self-supervised objective; permutation augmentation is off by default because the GHN
  dataset is aligned and the reconstruction targets keep that alignment).
* Sampling (:meth:`SANE.generate`, SANE's anchor-based sampling): the latents of all training
  networks are collected per global position n (:meth:`SANE.fit_anchors`); a new network of a given
  architecture draws each token's latent from a Gaussian fitted per position (mean, std per dim) and
  is decoded with that architecture's positions. For a held-out width tuple the anchors at position n
  come from whatever layer sat at n in the training networks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nnit.config import JSONConfig
from nnit.baselines.common import count_parameters
from nnit.weights.architecture import Architecture, ArchitectureError
from nnit.weights.mlp import WeightSet


@dataclass(frozen=True)
class SANEConfig(JSONConfig):
    """Everything that defines a SANE baseline run (stored in its checkpoint)."""

    d_model: int = 128
    heads: int = 4
    encoder_layers: int = 2
    decoder_layers: int = 2
    latent_dim: int = 32
    """Per-token latent size (the bottleneck)."""
    gamma: float = 0.05
    """Weight of the contrastive loss."""
    temperature: float = 0.1
    """NT-Xent temperature."""
    aug_noise: float = 0.05
    """Std of the Gaussian noise of the two augmented views (normalized weight space)."""
    max_tokens: int = 512
    """Size of the global position table."""
    max_depth: int = 8
    """Hidden layers the layer-index table holds."""
    steps: int = 5000
    batch_size: int = 16
    lr: float = 3e-4
    min_lr: float = 3e-5
    warmup_steps: int = 200
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    sample_temperature: float = 1.0
    """Scale of the per-position std when sampling latents."""
    seed: int = 0
    val_fraction: float = 0.0
    """Share of each architecture's networks held out to decide when training stops improving (0 = fixed steps)."""
    val_every: int = 250
    """Steps between validations."""
    patience: int = 5
    """Validations without a 1% improvement before training ends (``steps`` is then a cap)."""


SANE_PRESETS: dict[str, SANEConfig] = {
    "tiny": SANEConfig(d_model=64, heads=2, encoder_layers=1, decoder_layers=1, latent_dim=16, steps=60, batch_size=8,
                       lr=1e-3, min_lr=1e-4, warmup_steps=20, ema_decay=0.95, val_fraction=0.25, val_every=20, patience=2),
    # equal budget: until the validation loss plateaus (steps is a cap), capped at NNiT's wall-clock for the task
    "cpu": SANEConfig(steps=100_000, val_fraction=0.1, val_every=250, patience=5),
    "paper": SANEConfig(d_model=512, heads=8, encoder_layers=8, decoder_layers=8, latent_dim=128, steps=200_000,
                        lr=1e-4, min_lr=1e-5, ema_decay=0.9999),
}


def row_tokens(ws: WeightSet, token_dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, S, token_dim) row tokens, (S, 3) positions [global n, layer l, row k], (S, token_dim) real-entry mask."""
    toks, pos, masks = [], [], []
    n = 0
    for l, (w, b) in enumerate(zip(ws.weights, ws.biases)):
        o, i = w.shape[1], w.shape[2]
        if i + 1 > token_dim:
            raise ArchitectureError(f"layer {l + 1} has fan-in {i}; SANE's tokens hold at most {token_dim - 1}")
        t = torch.zeros(ws.n, o, token_dim)
        t[:, :, :i] = w.detach().float()
        t[:, :, token_dim - 1] = b.detach().float()
        m = torch.zeros(o, token_dim, dtype=torch.bool)
        m[:, :i] = True
        m[:, token_dim - 1] = True
        toks.append(t)
        masks.append(m)
        pos.append(torch.stack([torch.arange(n, n + o), torch.full((o,), l), torch.arange(o)], dim=1))
        n += o
    return torch.cat(toks, 1), torch.cat(pos, 0), torch.cat(masks, 0)


def tokens_to_weights(arch: Architecture, tokens: torch.Tensor, token_dim: int) -> WeightSet:
    """Inverse of :func:`row_tokens` for (N, S, token_dim) tokens."""
    ws, bs, n = [], [], 0
    for o, i in arch.layer_shapes:
        t = tokens[:, n : n + o]
        ws.append(t[:, :, :i].clone())
        bs.append(t[:, :, token_dim - 1].clone())
        n += o
    return WeightSet(arch, ws, bs)


def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Normalized-temperature cross entropy between two views (B, d) (SimCLR)."""
    z = F.normalize(torch.cat([a, b]), dim=-1)
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    B = a.shape[0]
    target = torch.cat([torch.arange(B, 2 * B), torch.arange(B)]).to(a.device)
    return F.cross_entropy(sim, target)


class SANE(nn.Module):
    """Row-token transformer autoencoder with global / layer / row position embeddings."""

    def __init__(self, cfg: SANEConfig, token_dim: int) -> None:
        super().__init__()
        self.cfg, self.token_dim = cfg, token_dim
        d = cfg.d_model
        self.inp = nn.Linear(token_dim, d)
        self.pos_n = nn.Embedding(cfg.max_tokens, d)
        self.pos_l = nn.Embedding(cfg.max_depth + 1, d)
        self.pos_k = nn.Embedding(cfg.max_tokens, d)

        def stack(layers: int) -> nn.TransformerEncoder:
            layer = nn.TransformerEncoderLayer(d, cfg.heads, 3 * d, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
            return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

        self.encoder = stack(cfg.encoder_layers)
        self.to_latent = nn.Linear(d, cfg.latent_dim)
        self.from_latent = nn.Linear(cfg.latent_dim, d)
        self.decoder = stack(cfg.decoder_layers)
        self.out = nn.Linear(d, token_dim)
        self.proj = nn.Sequential(nn.Linear(cfg.latent_dim, 128), nn.ReLU(), nn.Linear(128, 64))  # contrastive head
        self.register_buffer("anchor_mean", torch.zeros(cfg.max_tokens, cfg.latent_dim))
        self.register_buffer("anchor_std", torch.zeros(cfg.max_tokens, cfg.latent_dim))
        self.register_buffer("anchor_count", torch.zeros(cfg.max_tokens))

    def parameter_counts(self) -> dict[str, int]:
        return {"total": count_parameters(self)}

    def _pos(self, positions: torch.Tensor) -> torch.Tensor:
        if int(positions[..., 0].max()) >= self.cfg.max_tokens or int(positions[..., 1].max()) > self.cfg.max_depth:
            raise ArchitectureError(f"sequence longer than SANE's {self.cfg.max_tokens} positions or deeper than "
                                    f"{self.cfg.max_depth} hidden layers")
        return self.pos_n(positions[..., 0]) + self.pos_l(positions[..., 1]) + self.pos_k(positions[..., 2])

    def encode(self, tokens: torch.Tensor, positions: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """(B, S, token_dim) -> (B, S, latent_dim); ``pad`` (B, S) True where a token is padding."""
        h = self.encoder(self.inp(tokens) + self._pos(positions), src_key_padding_mask=pad)
        return self.to_latent(h)

    def decode(self, z: torch.Tensor, positions: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        h = self.decoder(self.from_latent(z) + self._pos(positions), src_key_padding_mask=pad)
        return self.out(h)

    def loss(self, tokens: torch.Tensor, positions: torch.Tensor, emask: torch.Tensor, pad: torch.Tensor,
             gen: torch.Generator, rows: slice = slice(None)) -> dict[str, torch.Tensor]:
        """Masked reconstruction of each view + gamma x NT-Xent between the two views' pooled latents.

        ``rows``: a data-parallel rank's share of the batch (:mod:`nnit.distributed`). The noise is drawn for the
        whole batch, the reconstruction is normalized by the whole batch's entries and scaled by the number of
        ranks, and the contrastive term sees the pooled latents of every rank, so the ranks' gradients average
        to one process's and their losses average to its loss."""
        from nnit import distributed as dist

        noise = [torch.randn(tokens.shape, generator=gen) for _ in range(2)]  # the two views' augmentations
        count = emask.float().sum()
        tokens, positions, emask, pad = tokens[rows], positions[rows], emask[rows], pad[rows]
        views, pooled = [], []
        keep = (~pad).float().unsqueeze(-1)
        for eps in noise:
            x = (tokens + self.cfg.aug_noise * eps[rows]) * emask
            z = self.encode(x, positions, pad)
            views.append(self.decode(z, positions, pad))
            pooled.append(self.proj((z * keep).sum(1) / keep.sum(1)))
        m = emask.float()
        rec = sum((((v - tokens) ** 2) * m).sum() / count for v in views) / 2
        if dist.is_distributed():
            rec = rec * dist.world_size()
            pooled = [dist.gather_rows(p) for p in pooled]  # gradients flow back to each rank's own rows
        con = nt_xent(pooled[0], pooled[1], self.cfg.temperature) if pooled[0].shape[0] > 1 else rec * 0
        return {"recon": rec, "contrastive": con, "total": rec + self.cfg.gamma * con}

    @torch.no_grad()
    def fit_anchors(self, batches: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> None:
        """Per-global-position latent mean / std over all training networks ((tokens, positions, pad) batches)."""
        S = self.cfg.max_tokens
        n = torch.zeros(S)
        s1 = torch.zeros(S, self.cfg.latent_dim)
        s2 = torch.zeros(S, self.cfg.latent_dim)
        for tokens, positions, pad in batches:
            z = self.encode(tokens, positions, pad)  # (B, T, z)
            idx = positions[..., 0][~pad]
            zz = z[~pad]
            n.index_add_(0, idx, torch.ones(len(idx)))
            s1.index_add_(0, idx, zz)
            s2.index_add_(0, idx, zz * zz)
        mean = s1 / n.clamp(min=1).unsqueeze(1)
        var = (s2 / n.clamp(min=1).unsqueeze(1) - mean**2).clamp(min=0)
        self.anchor_mean.copy_(mean)
        self.anchor_std.copy_(var.sqrt())
        self.anchor_count.copy_(n)

    @torch.no_grad()
    def generate(self, arch: Architecture, num: int, seed: int = 0) -> WeightSet:
        """``num`` normalized networks of ``arch`` decoded from latents drawn per position."""
        zeros = WeightSet(arch, [torch.zeros(1, o, i) for o, i in arch.layer_shapes], [torch.zeros(1, o) for o, _ in arch.layer_shapes])
        _, positions, _ = row_tokens(zeros, self.token_dim)  # raises for fan-in too large
        n = positions[:, 0]
        if int(n.max()) >= self.cfg.max_tokens:
            raise ArchitectureError(f"[{arch.hidden_str()}] needs {int(n.max()) + 1} tokens; this SANE holds {self.cfg.max_tokens}")
        if (self.anchor_count[n] == 0).any():
            raise ArchitectureError(f"[{arch.hidden_str()}] is longer than every training network: no anchors for its last "
                                    f"{int((self.anchor_count[n] == 0).sum())} token positions")
        g = torch.Generator().manual_seed(seed)
        z = self.anchor_mean[n] + self.cfg.sample_temperature * self.anchor_std[n] * torch.randn(num, len(n), self.cfg.latent_dim, generator=g)
        tokens = self.decode(z, positions.unsqueeze(0).expand(num, -1, -1), None)
        return tokens_to_weights(arch, tokens, self.token_dim)
