"""NNiT: a Diffusion Transformer over [architecture tokens ; weight-patch tokens] (paper Sec. 5.1-5.2).

After facebookresearch/DiT ``models.py``. Differences from DiT:

* two modalities in one sequence: S architecture codes (see ``arch_codes.py``) projected by
  ``Linear(d_arch, D)`` (= the paper's learnable table E_a applied to a fixed code) plus a learned
  embedding of the token index; and T weight patches (p*p values) projected by ``Linear(p*p, D)``
  plus a *factorized* learned position embedding E_layer[l] + E_row[r] + E_col[c], so a wider layer
  is just more patches and every (l, r, c) inside the grid can be written; with ``layer_positions="both_ends"``
  a layer (and an architecture token) also gets its index counted from the output end,
  E_layer[l] + E_end[L - l], so the output layer is the output layer at every depth and a depth between trained
  ones is written with entries each seen in training (the paper: index from the input only);
* a key-padding mask: in "valid" token mode a batch mixes architectures with different token
  counts, and padding tokens are invisible to real ones (``F.scaled_dot_product_attention``);
* AdaLN-Zero conditioned on concat(t_emb_a(t_a), t_emb_w(t_w)) (two timestep embedders, Sec. 5.2);
* SwiGLU feed-forward (LLaMA) instead of GELU;
* learned variance: each token outputs eps and v = tanh(.) in [-1, 1] (IDDPM interpolation);
* an optional *input skip* ``Linear(x_t token -> output)`` per modality (like the long skips of
  U-Net / U-ViT), initialised so that eps starts as x_t (and v at 0). At high noise the ideal eps is ~x_t and the x0 estimate amplifies eps
  errors by 1 / sqrt(alpha_bar_T) ~ 150; a plain DiT must rebuild x_t through LayerNorms (which drop
  each token's scale) and plateaus at an eps-MSE ~0.04 there after short training, which sends the
  sampler off the data. The skip makes that part a linear map. ``input_skip=False`` is the paper's DiT.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Literal, Optional

import torch
from torch import nn
from torch.nn import functional as F

from nnit.errors import NNiTError


class ModelError(NNiTError):
    """Inputs that the model's position tables cannot express."""


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


#################################################################################
#                                   Embedders                                   #
#################################################################################


class TimestepEmbedder(nn.Module):
    """Scalar timesteps (0 = clean .. T) -> vectors: sinusoidal features and a 2-layer MLP (DiT)."""

    def __init__(self, out_size: int, freq_size: int = 256) -> None:
        super().__init__()
        self.freq_size = freq_size
        self.mlp = nn.Sequential(nn.Linear(freq_size, out_size), nn.SiLU(), nn.Linear(out_size, out_size))

    @staticmethod
    def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        args = t.float()[:, None] * freqs[None]  # (B, half)
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (B, dim)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.timestep_embedding(t, self.freq_size))  # (B, out)


class PatchPositionEmbedder(nn.Module):
    """Learned factorized positions of weight patches: E_layer[l] + E_row[r] + E_col[c], plus E_end[L - l] (the
    layer's index from the output layer L) when built ``both_ends``."""

    def __init__(self, hidden: int, max_layers: int, max_rows: int, max_cols: int, both_ends: bool = False) -> None:
        super().__init__()
        self.layer = nn.Embedding(max_layers, hidden)
        self.row = nn.Embedding(max_rows, hidden)
        self.col = nn.Embedding(max_cols, hidden)
        self.layer_from_end = nn.Embedding(max_layers, hidden) if both_ends else None

    def forward(self, pos: torch.Tensor, last_layer: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``pos`` (B, T, 3) of (layer, row, column); ``last_layer`` (B,): each network's output-layer index
        (required when built ``both_ends``)."""
        out = self.layer(pos[..., 0]) + self.row(pos[..., 1]) + self.col(pos[..., 2])  # (B, T, D)
        if self.layer_from_end is not None:
            if last_layer is None:
                raise ModelError("both-ends layer positions need each network's last layer index")
            from_end = (last_layer[:, None] - pos[..., 0]).clamp(0, self.layer_from_end.num_embeddings - 1)  # (B, T)
            out = out + self.layer_from_end(from_end)  # padding tokens may clamp: they are never attended to
        return out


#################################################################################
#                                 Core NNiT Model                               #
#################################################################################


class Attention(nn.Module):
    """Multi-head self-attention with a key-padding mask (True = a real token, attendable)."""

    def __init__(self, hidden: int, num_heads: int) -> None:
        super().__init__()
        if hidden % num_heads:
            raise ModelError(f"hidden size {hidden} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, key_mask: Optional[torch.Tensor]) -> torch.Tensor:
        B, N, D = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, D // self.num_heads)  # (B, N, 3, H, Dh)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # 3 x (B, H, N, Dh)
        mask = None if key_mask is None else key_mask[:, None, None, :]  # (B, 1, 1, N)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, N, Dh)
        return self.proj(out.transpose(1, 2).reshape(B, N, D))  # (B, N, D)


class SwiGLU(nn.Module):
    """FFN(x) = W2 (SiLU(W1 x) * W3 x), hidden = 2/3 * ratio * D rounded up to a multiple of 8 (LLaMA)."""

    def __init__(self, hidden: int, mlp_ratio: float) -> None:
        super().__init__()
        inner = int(math.ceil(2 * mlp_ratio * hidden / 3 / 8) * 8)
        self.w12 = nn.Linear(hidden, 2 * inner)
        self.w3 = nn.Linear(inner, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.w12(x).chunk(2, dim=-1)  # 2 x (B, N, inner)
        return self.w3(F.silu(a) * b)  # (B, N, D)


class NNiTBlock(nn.Module):
    """A DiT block with AdaLN-Zero: x += g1 * Attn(mod(LN(x))); x += g2 * FFN(mod(LN(x)))."""

    def __init__(self, hidden: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden, num_heads)
        self.norm2 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.mlp = SwiGLU(hidden, mlp_ratio)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 6 * hidden))

    def forward(self, x: torch.Tensor, c: torch.Tensor, key_mask: Optional[torch.Tensor]) -> torch.Tensor:
        sh1, sc1, g1, sh2, sc2, g2 = self.adaLN_modulation(c).chunk(6, dim=-1)  # 6 x (B, D)
        x = x + g1.unsqueeze(1) * self.attn(modulate(self.norm1(x), sh1, sc1), key_mask)  # (B, N, D)
        x = x + g2.unsqueeze(1) * self.mlp(modulate(self.norm2(x), sh2, sc2))  # (B, N, D)
        return x


class FinalLayer(nn.Module):
    """AdaLN (shift, scale) then one linear head per modality: 2 * p*p (weights), 2 * d_arch (arch)."""

    def __init__(self, hidden: int, patch_dim: int, arch_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))
        self.head_w = nn.Linear(hidden, 2 * patch_dim)
        self.head_a = nn.Linear(hidden, 2 * arch_dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor, num_arch: int) -> tuple[torch.Tensor, torch.Tensor]:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)  # 2 x (B, D)
        x = modulate(self.norm(x), shift, scale)  # (B, N, D)
        return self.head_a(x[:, :num_arch]), self.head_w(x[:, num_arch:])  # (B, S, 2 d_a), (B, T, 2 p*p)


@dataclass(frozen=True)
class NNiTConfig:
    """Sizes of an NNiT; stored in every checkpoint so a model can be rebuilt from it."""

    hidden_size: int = 128
    """D: token width."""
    depth: int = 4
    """Number of transformer blocks."""
    num_heads: int = 4
    """Attention heads (D must be divisible by it)."""
    mlp_ratio: float = 4.0
    """SwiGLU hidden = 2/3 * mlp_ratio * D (same parameter count as a GELU MLP of ratio mlp_ratio)."""
    patch_size: int = 8
    """p: weight tokens carry p*p values."""
    arch_dim: int = 8
    """d_arch: size of an architecture code (``ArchCodec.dim``)."""
    max_layers: int = 8
    """Rows of the layer position table: the most linear layers an MLP may have (depth + 1)."""
    max_patch_rows: int = 8
    """Rows of the patch-row table: M / p."""
    max_patch_cols: int = 9
    """Rows of the patch-column table: (M + p) / p."""
    max_arch_len: int = 10
    """Rows of the architecture-index table: the most architecture tokens (depth + 2)."""
    freq_size: int = 256
    """Sinusoidal features of a timestep."""
    input_skip: bool = False
    """Add a linear skip from each token's noisy input to its outputs, eps initialised to x_t (module doc)."""
    layer_positions: Literal["absolute", "both_ends"] = "absolute"
    """How a layer's (and an architecture token's) index is embedded: ``absolute``, from the input (the paper), or
    ``both_ends``, from the input plus from the output end (module doc), for depths between trained ones."""

    @classmethod
    def from_dict(cls, data: dict) -> "NNiTConfig":
        return cls(**data)

    def to_dict(self) -> dict:
        return asdict(self)


class NNiT(nn.Module):
    """eps_theta and Sigma_theta for both modalities from one transformer over the joint sequence."""

    def __init__(self, config: NNiTConfig) -> None:
        super().__init__()
        self.config = c = config
        D = c.hidden_size
        if D % 2:
            raise ModelError(f"hidden size must be even (two timestep embeddings of D/2), got {D}")
        self.patch_dim = c.patch_size**2
        self.w_embed = nn.Linear(self.patch_dim, D)
        self.a_embed = nn.Linear(c.arch_dim, D)
        if c.layer_positions not in ("absolute", "both_ends"):
            raise ModelError(f"unknown layer positions {c.layer_positions!r}; choose absolute or both_ends")
        both_ends = c.layer_positions == "both_ends"
        self.w_pos = PatchPositionEmbedder(D, c.max_layers, c.max_patch_rows, c.max_patch_cols, both_ends)
        self.a_pos = nn.Embedding(c.max_arch_len, D)
        self.a_pos_from_end = nn.Embedding(c.max_arch_len, D) if both_ends else None
        self.t_embed_a = TimestepEmbedder(D // 2, c.freq_size)
        self.t_embed_w = TimestepEmbedder(D // 2, c.freq_size)
        self.blocks = nn.ModuleList([NNiTBlock(D, c.num_heads, c.mlp_ratio) for _ in range(c.depth)])
        self.final_layer = FinalLayer(D, self.patch_dim, c.arch_dim)
        self.skip_w = nn.Linear(self.patch_dim, 2 * self.patch_dim) if c.input_skip else None
        self.skip_a = nn.Linear(c.arch_dim, 2 * c.arch_dim) if c.input_skip else None
        self.initialize_weights()

    def initialize_weights(self) -> None:
        def _basic_init(module: nn.Module) -> None:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

        self.apply(_basic_init)
        for emb in (self.w_pos.layer, self.w_pos.row, self.w_pos.col, self.a_pos, self.w_pos.layer_from_end,
                    self.a_pos_from_end):
            if emb is not None:
                nn.init.normal_(emb.weight, std=0.02)  # learned positions start small
        for te in (self.t_embed_a, self.t_embed_w):
            nn.init.normal_(te.mlp[0].weight, std=0.02)
            nn.init.normal_(te.mlp[2].weight, std=0.02)
        for block in self.blocks:
            # AdaLN-Zero: shift = scale = gate = 0, so every block starts as the identity
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        # zero final modulation and heads: eps = 0 and v = 0 (variance halfway between beta~ and beta) at start
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].weight)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].bias)
        for head in (self.final_layer.head_w, self.final_layer.head_a, self.skip_w, self.skip_a):
            if head is not None:  # zero heads: the transformer's contribution starts at 0 (v = 0: mid variance)
                nn.init.zeros_(head.weight)
                nn.init.zeros_(head.bias)
        for skip, n in ((self.skip_w, self.patch_dim), (self.skip_a, self.config.arch_dim)):
            if skip is not None:  # not zero: eps starts as x_t, the exact answer at t = T (see module doc)
                with torch.no_grad():
                    skip.weight[:n].copy_(torch.eye(n))

    def check_positions(self, positions: torch.Tensor, num_arch: int) -> None:
        """Raise :class:`ModelError` if some position is outside the learned tables."""
        c = self.config
        if num_arch > c.max_arch_len:
            raise ModelError(f"{num_arch} architecture tokens (depth {num_arch - 2}) but the model holds at most "
                             f"{c.max_arch_len} (depth {c.max_arch_len - 2})")
        if positions.numel():
            hi = positions.reshape(-1, 3).amax(0).tolist()
            for name, v, lim in zip(("layer", "patch row", "patch column"), hi,
                                    (c.max_layers, c.max_patch_rows, c.max_patch_cols)):
                if v >= lim:
                    raise ModelError(f"weight token {name} {v} is outside the model's table (< {lim}); "
                                     "the MLP is deeper or wider than this model's grid")

    def forward(
        self,
        x_a: torch.Tensor,
        x_w: torch.Tensor,
        pos_w: torch.Tensor,
        t_a: torch.Tensor,
        t_w: torch.Tensor,
        token_mask: Optional[torch.Tensor] = None,
        arch_mask: Optional[torch.Tensor] = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x_a (B, S, d_a), x_w (B, T, p*p), pos_w (B, T, 3) long, t_a (B,), t_w (B,), masks (B, T) / (B, S) bool)
        -> eps_a (B, S, d_a), v_a (B, S, d_a), eps_w (B, T, p*p), v_w (B, T, p*p); v in [-1, 1].

        Padding tokens (mask False) are never attended to, so they do not change real tokens' outputs;
        their own outputs are meaningless."""
        B, S, _ = x_a.shape
        self.check_positions(pos_w, S)
        idx = torch.arange(S, device=x_a.device)  # (S,)
        za = self.a_embed(x_a) + self.a_pos(idx)[None]  # (B, S, D)
        last_layer = None
        if self.a_pos_from_end is not None:  # a network of n architecture tokens has depth n - 2, last layer n - 2
            n_arch = arch_mask.sum(1) if arch_mask is not None else torch.full((B,), S, device=x_a.device)  # (B,)
            last_layer = n_arch - 2
            a_from_end = (n_arch[:, None] - 1 - idx[None]).clamp(0, S - 1)  # (B, S); padding clamps, never attended
            za = za + self.a_pos_from_end(a_from_end)
        zw = self.w_embed(x_w) + self.w_pos(pos_w, last_layer)  # (B, T, D)
        x = torch.cat([za, zw], dim=1)  # (B, S + T, D)
        key_mask = None
        if token_mask is not None or arch_mask is not None:
            am = arch_mask if arch_mask is not None else x_a.new_ones(B, S, dtype=torch.bool)  # (B, S)
            tm = token_mask if token_mask is not None else x_w.new_ones(B, x_w.shape[1], dtype=torch.bool)  # (B, T)
            key_mask = torch.cat([am, tm], dim=1)  # (B, S + T)
        c = torch.cat([self.t_embed_a(t_a), self.t_embed_w(t_w)], dim=-1)  # (B, D)
        for block in self.blocks:
            x = block(x, c, key_mask)  # (B, S + T, D)
        out_a, out_w = self.final_layer(x, c, S)  # (B, S, 2 d_a), (B, T, 2 p*p)
        if self.skip_w is not None:
            out_a = out_a + self.skip_a(x_a)  # (B, S, 2 d_a)
            out_w = out_w + self.skip_w(x_w)  # (B, T, 2 p*p)
        eps_a, v_a = out_a.chunk(2, dim=-1)  # 2 x (B, S, d_a)
        eps_w, v_w = out_w.chunk(2, dim=-1)  # 2 x (B, T, p*p)
        return eps_a, torch.tanh(v_a), eps_w, torch.tanh(v_w)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


#################################################################################
#                                  NNiT Configs                                 #
#################################################################################

MODEL_PRESETS: dict[str, dict] = {
    "NNiT-XS": dict(hidden_size=64, depth=2, num_heads=2, mlp_ratio=3.0),  # ~0.18M params: tests / CI
    "NNiT-Ti": dict(hidden_size=128, depth=4, num_heads=4, mlp_ratio=3.0),  # ~1.2M: the CPU model
    "NNiT-S": dict(hidden_size=384, depth=12, num_heads=6),  # ~32M: GPU
    "NNiT-B": dict(hidden_size=768, depth=12, num_heads=12),  # ~129M: GPU
}
"""Size presets; their names are the CLI choices."""


def nnit_config(name: str, patch_size: int = 8, max_width: int = 64, arch_dim: int = 8, max_depth: int = 8,
                layer_positions: str = "absolute") -> NNiTConfig:
    """The preset ``name`` sized for a patch grid of ``max_width`` (M) and MLPs up to ``max_depth`` hidden layers,
    with ``layer_positions`` (:attr:`NNiTConfig.layer_positions`)."""
    if name not in MODEL_PRESETS:
        raise ModelError(f"unknown model size {name!r}; choose one of {', '.join(MODEL_PRESETS)}")
    rows = max_width // patch_size
    base = NNiTConfig(**MODEL_PRESETS[name])
    return replace(base, patch_size=patch_size, arch_dim=arch_dim, max_layers=max_depth + 1,
                   max_patch_rows=rows, max_patch_cols=rows + 1, max_arch_len=max_depth + 2,
                   layer_positions=layer_positions)
