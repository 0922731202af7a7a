"""Graph hypernetwork (GHN) for MLPs with a CNN decoder, as an ensemble of K independent GHNs.

Paper Sec. 4 / Appendix A, following GHN-2 (Knyazev et al., 2021):

* **Graph.** An MLP is a chain ``input -> W_1 -> b_1 -> ... -> W_L -> b_L``.
* **Node embeddings** from the node type (input / hidden weight / hidden bias / output weight /
  output bias) and the layer shape ``(out, in)`` (Fourier features of ``out / C`` and ``in / C``, so
  widths never seen in training still get a meaningful embedding), plus a learned task vector at
  the input node ("anchored at an input node with task features").
* **Gated GNN.** GRU message passing: a forward sweep along the chain, then a backward sweep.
* **CNN decoder.** A weight node's embedding paints a fixed ``C x C`` canvas (C >= every width)
  through resize-convolutions (nearest upsampling + 3x3 convolution); the layer's ``out x in`` matrix is the top-left crop. Every
  architecture is cut from the same canvas, so neuron i sits at row i for every width: the
  structural alignment NNiT builds on. Biases come from a linear head over the bias node's
  embedding, cropped to ``out``.
* **GHN-2 scaling.** ``W = exp(s) * standardize(crop) / sqrt(in)`` and ``b = tanh(0.2 * raw)``: the
  cropped block is standardised to zero mean and unit std (so a fresh GHN emits LeCun-scale
  weights whatever its seed, and the decoder can neither shrink a layer by moving its energy
  outside the crop nor collapse it to a constant) and
  ``s = tanh(.)`` is a bounded scalar predicted from the weight node's embedding (the GHN keeps
  control of each layer's magnitude within [1/e, e] x LeCun, so no layer can collapse to zero, e.g. a
  member "solving" the large initial loss by shrinking the output layer to ~0).

Ensemble: the K members are *independent networks* (own initialisation seeds, own parameters,
own gradients), but they are stored stacked along a leading K axis and run together — linear
layers as batched ``einsum`` and convolutions as grouped convolutions (``groups=K``) — so training
128 GHNs costs a handful of large kernels per step instead of 128 small ones. Adam is element-wise,
so one optimizer over the stacked tensors trains K independent GHNs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from nnit.errors import NNiTError
from nnit.weights.architecture import Architecture
from nnit.weights.mlp import WeightSet

# node types
INPUT, HID_W, HID_B, OUT_W, OUT_B = range(5)


@dataclass(frozen=True)
class GHNConfig:
    """Size of one GHN (every ensemble member has the same shape)."""

    hidden_dim: int = 64
    """d: node embedding size."""
    canvas: int = 64
    """C: side of the decoder's square canvas; must be >= every layer's fan-in and fan-out."""
    decoder_channels: int = 16
    """Channels of the CNN decoder's feature maps."""
    decoder_base: int = 8
    """Side of the decoder's first feature map."""
    decoder_shuffle: int = 4
    """Pixel-shuffle factor of the decoder's head; C = decoder_base x decoder_shuffle x 2^n."""
    fourier_features: int = 8
    """Number of frequencies used to encode a layer's (out, in) shape."""


# ======================================================================= ensemble layers
class EnsembleLinear(nn.Module):
    """K independent linear layers: (K, ..., in) -> (K, ..., out)."""

    def __init__(self, k: int, d_in: int, d_out: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(d_in)
        self.weight = nn.Parameter((torch.rand(k, d_in, d_out, generator=generator) * 2 - 1) * bound)
        self.bias = nn.Parameter((torch.rand(k, 1, d_out, generator=generator) * 2 - 1) * bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        y = torch.baddbmm(self.bias, x.reshape(shape[0], -1, shape[-1]), self.weight)  # (K, M, out)
        return y.reshape(*shape[:-1], -1)


class EnsembleGRUCell(nn.Module):
    """K independent GRU cells (same equations as ``nn.GRUCell``)."""

    def __init__(self, k: int, d: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.ih = EnsembleLinear(k, d, 3 * d, generator)
        self.hh = EnsembleLinear(k, d, 3 * d, generator)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        xr, xz, xn = self.ih(x).chunk(3, dim=-1)
        hr, hz, hn = self.hh(h).chunk(3, dim=-1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return (1 - z) * n + z * h


class EnsembleCNNDecoder(nn.Module):
    """K independent CNN decoders: embedding (K, M, d) -> canvas (K, M, C, C).

    ``fc`` -> (ch, base, base) feature map -> resize-convolutions (nearest x2 upsampling + 3x3
    conv + SiLU) up to ``C / shuffle`` -> a 3x3 conv to ``1 + shuffle^2`` channels: the first is
    bilinearly upsampled (a smooth field), the others are pixel-shuffled (detail), their sum is the
    ``C x C`` canvas. Resize-convolutions rather than strided transposed convolutions, which
    paint checkerboard artefacts (anti-correlated neighbouring weights); the pixel-shuffle head keeps
    every convolution at <= C/4 resolution (cheaper than convolving at full resolution on CPU) while
    neighbouring weights still come from shared features.
    """

    def __init__(self, k: int, cfg: GHNConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        low = cfg.canvas // cfg.decoder_shuffle
        ups = int(round(math.log2(max(low, 1) / cfg.decoder_base)))
        if cfg.canvas % cfg.decoder_shuffle or ups < 0 or cfg.decoder_base * 2**ups != low:
            raise ValueError(
                f"canvas {cfg.canvas} must be decoder_base {cfg.decoder_base} x decoder_shuffle "
                f"{cfg.decoder_shuffle} x a power of two"
            )
        self.k, self.ch, self.base, self.shuffle = k, cfg.decoder_channels, cfg.decoder_base, cfg.decoder_shuffle
        self.fc = EnsembleLinear(k, cfg.hidden_dim, cfg.decoder_channels * cfg.decoder_base**2, generator)
        kc = k * cfg.decoder_channels
        self.ups = nn.ModuleList(nn.Conv2d(kc, kc, 3, padding=1, groups=k) for _ in range(ups))
        # per member: 1 coarse channel (bilinearly upsampled: smooth) + shuffle^2 detail channels
        self.head = nn.Conv2d(kc, k * (cfg.decoder_shuffle**2 + 1), 3, padding=1, groups=k)
        if generator is not None:  # seeded init of the conv layers (member-specific through the generator stream)
            for conv in [*self.ups, self.head]:
                bound = 1.0 / math.sqrt(conv.weight[0].numel())
                with torch.no_grad():
                    conv.weight.copy_((torch.rand(conv.weight.shape, generator=generator) * 2 - 1) * bound)
                    conv.bias.copy_((torch.rand(conv.bias.shape, generator=generator) * 2 - 1) * bound)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        K, M, _ = e.shape
        s = self.shuffle
        x = self.fc(e)  # (K, M, ch*base*base)
        x = x.reshape(K, M, self.ch, self.base, self.base).permute(1, 0, 2, 3, 4)  # (M, K, ch, b, b)
        x = x.reshape(M, K * self.ch, self.base, self.base)  # (M, K*ch, b, b)
        for up in self.ups:
            x = F.silu(up(F.interpolate(x, scale_factor=2.0, mode="nearest")))  # (M, K*ch, 2h, 2h)
        x = self.head(x)  # (M, K*(s*s+1), C/s, C/s)
        h = x.shape[-1]
        x = x.reshape(M * K, s * s + 1, h, h)  # (M*K, s*s+1, C/s, C/s)
        coarse = F.interpolate(x[:, :1], scale_factor=float(s), mode="bilinear", align_corners=False)  # (M*K, 1, C, C)
        detail = F.pixel_shuffle(x[:, 1:], s)  # (M*K, 1, C, C)
        return (coarse + detail).reshape(M, K, h * s, h * s).permute(1, 0, 2, 3)  # (K, M, C, C)


# ======================================================================= the GHN
class GHNEnsemble(nn.Module):
    """K graph hypernetworks; ``generate(archs)`` returns one WeightSet (N = K) per architecture."""

    def __init__(self, cfg: GHNConfig, seeds: Sequence[int]) -> None:
        super().__init__()
        self.cfg = cfg
        self.seeds = tuple(int(s) for s in seeds)
        k = len(self.seeds)
        if k == 0:
            raise ValueError("a GHN ensemble needs at least one seed")
        # one generator per member keeps members independent: member i's initial weights depend
        # only on seeds[i] (we draw each member's slice from its own stream, then stack)
        members = [GHNMemberInit(cfg, s) for s in self.seeds]
        self.k = k
        self.type_embed = nn.Parameter(torch.stack([m.type_embed for m in members]))  # (K, 5, d)
        self.shape_proj = nn.Parameter(torch.stack([m.shape_proj for m in members]))  # (K, 4*nf, d)
        self.task_embed = nn.Parameter(torch.stack([m.task_embed for m in members]))  # (K, d)
        self.message = _stack_modules([m.message for m in members])
        self.gru_fwd = _stack_modules([m.gru_fwd for m in members])
        self.gru_bwd = _stack_modules([m.gru_bwd for m in members])
        self.decoder = _stack_modules([m.decoder for m in members])
        self.bias_head = _stack_modules([m.bias_head for m in members])
        self.scale_head = _stack_modules([m.scale_head for m in members])
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(cfg.fourier_features, dtype=torch.float32), persistent=False)

    # ------------------------------------------------------------------ graph features
    def _node_features(self, archs: Sequence[Architecture]) -> torch.Tensor:
        """(K, A, n_nodes, d) initial node embeddings for archs of one depth."""
        C = self.cfg.canvas
        L = archs[0].num_layers
        types = [INPUT] + [t for l in range(L) for t in ((HID_W, HID_B) if l < L - 1 else (OUT_W, OUT_B))]
        shapes = torch.zeros(len(archs), 2 * L + 1, 2)
        for a, arch in enumerate(archs):
            for l, (o, i) in enumerate(arch.layer_shapes):
                shapes[a, 1 + 2 * l] = torch.tensor([o / C, i / C])
                shapes[a, 2 + 2 * l] = torch.tensor([o / C, 1.0 / C])
        ang = shapes.to(self.freqs.device).unsqueeze(-1) * self.freqs  # (A, n, 2, nf)
        fourier = torch.cat([ang.sin(), ang.cos()], dim=-1).flatten(2)  # (A, n, 4*nf)
        h = torch.einsum("anf,kfd->kand", fourier.to(self.shape_proj), self.shape_proj)  # (K, A, n, d)
        h = h + self.type_embed[:, types].unsqueeze(1)  # (K, A, n, d)
        h[:, :, 0] = h[:, :, 0] + self.task_embed.unsqueeze(1)  # input node carries the task vector
        return h

    def _propagate(self, h: torch.Tensor) -> torch.Tensor:
        """Gated GNN on a chain: forward sweep then backward sweep. h: (K, A, n, d)."""
        n = h.shape[2]
        nodes = list(h.unbind(2))
        for v in range(1, n):
            nodes[v] = self.gru_fwd(torch.tanh(self.message(nodes[v - 1])), nodes[v])  # (K, A, d)
        for v in range(n - 2, -1, -1):
            nodes[v] = self.gru_bwd(torch.tanh(self.message(nodes[v + 1])), nodes[v])  # (K, A, d)
        return torch.stack(nodes, dim=2)  # (K, A, n, d)

    # ------------------------------------------------------------------ generation
    def generate(self, archs: Sequence[Architecture]) -> list[WeightSet]:
        """One WeightSet of K networks (member i -> network i) for every architecture, differentiable."""
        C = self.cfg.canvas
        for arch in archs:
            if max(arch.widths) > C:
                raise NNiTError(f"{arch} has a layer wider than the GHN canvas C={C}")
        out: list[WeightSet | None] = [None] * len(archs)
        by_depth: dict[int, list[int]] = {}
        for idx, arch in enumerate(archs):
            by_depth.setdefault(arch.num_layers, []).append(idx)
        for L, idxs in by_depth.items():
            group = [archs[i] for i in idxs]
            h = self._propagate(self._node_features(group))  # (K, A, 2L+1, d)
            w_nodes = h[:, :, 1::2]  # (K, A, L, d)
            b_nodes = h[:, :, 2::2]  # (K, A, L, d)
            K, A = w_nodes.shape[:2]
            canvas = self.decoder(w_nodes.reshape(K, A * L, -1)).reshape(K, A, L, C, C)
            # bounded log-scale: a layer can shrink to 1/e or grow to e times LeCun scale, never collapse
            gain = torch.tanh(self.scale_head(w_nodes)).exp()  # (K, A, L, 1)
            bias = torch.tanh(0.2 * self.bias_head(b_nodes))  # (K, A, L, C)
            for a, (i, arch) in enumerate(zip(idxs, group)):
                ws = [
                    _standardize(canvas[:, a, l, :o, :n_in]) * gain[:, a, l, :, None] / math.sqrt(n_in)
                    for l, (o, n_in) in enumerate(arch.layer_shapes)
                ]
                bs = [bias[:, a, l, :o] for l, (o, _) in enumerate(arch.layer_shapes)]
                out[i] = WeightSet(arch, ws, bs)
        return out  # type: ignore[return-value]

    def member_state(self, i: int) -> dict[str, torch.Tensor]:
        """The parameters of member i only (for inspection / export)."""
        return {name: _member_slice(name, p, i, self.k) for name, p in self.named_parameters()}


class GHNMemberInit(nn.Module):
    """The freshly initialised parameters of one ensemble member, drawn from its own seed."""

    def __init__(self, cfg: GHNConfig, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(int(seed))
        d, nf = cfg.hidden_dim, cfg.fourier_features
        self.type_embed = torch.randn(5, d, generator=g) * 0.5
        self.shape_proj = torch.randn(4 * nf, d, generator=g) / math.sqrt(4 * nf)
        self.task_embed = torch.randn(d, generator=g) * 0.5
        self.message = EnsembleLinear(1, d, d, g)
        self.gru_fwd = EnsembleGRUCell(1, d, g)
        self.gru_bwd = EnsembleGRUCell(1, d, g)
        self.decoder = EnsembleCNNDecoder(1, cfg, g)
        self.bias_head = EnsembleLinear(1, d, cfg.canvas, g)
        self.scale_head = EnsembleLinear(1, d, 1, g)
        with torch.no_grad():  # start at exp(0) = 1: pure fan-in scaling
            self.scale_head.weight.mul_(0.1)
            self.scale_head.bias.zero_()


def _standardize(w: torch.Tensor) -> torch.Tensor:
    """(K, out, in) -> the crop with zero mean and unit std, per member (a 1x1 crop becomes 0)."""
    w = w - w.mean(dim=(-2, -1), keepdim=True)
    return w / (w.pow(2).mean(dim=(-2, -1), keepdim=True) + 1e-8).sqrt()


def _stack_modules(mods: Sequence[nn.Module]) -> nn.Module:
    """Merge K single-member ensemble modules into one K-member module of the same class.

    Every stacked parameter concatenates the members along axis 0: a leading K axis for the
    ensemble linears, contiguous channel blocks for the grouped convolutions (member i owns
    output-channel group i).
    """
    merged = _clone_empty(mods[0], len(mods))
    with torch.no_grad():
        for (_, p), *others in zip(merged.named_parameters(), *[m.named_parameters() for m in mods]):
            p.copy_(torch.cat([o[1] for o in others], dim=0))
    return merged


def _clone_empty(m: nn.Module, k: int) -> nn.Module:
    if isinstance(m, EnsembleLinear):
        return EnsembleLinear(k, m.weight.shape[1], m.weight.shape[2])
    if isinstance(m, EnsembleGRUCell):
        return EnsembleGRUCell(k, m.hh.weight.shape[1])
    if isinstance(m, EnsembleCNNDecoder):
        cfg = GHNConfig(
            hidden_dim=m.fc.weight.shape[1], canvas=m.base * 2 ** len(m.ups) * m.shuffle, decoder_channels=m.ch,
            decoder_base=m.base, decoder_shuffle=m.shuffle,
        )
        return EnsembleCNNDecoder(k, cfg)
    raise TypeError(type(m))


def _member_slice(name: str, p: torch.Tensor, i: int, k: int) -> torch.Tensor:
    """Member i's part of a stacked parameter (leading K axis, or K equal blocks of axis 0)."""
    if p.shape[0] == k:
        return p[i]
    size = p.shape[0] // k
    return p[i * size : (i + 1) * size]
