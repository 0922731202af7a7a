"""Architecture tokens as points of a continuous diffusion space (paper Sec. 5.1.1 and Appendix C).

The paper diffuses "the embedded architecture tokens" z_a. Diffusing a *learnable* embedding table
invites collapse (the table can shrink until the noise hides nothing) and needs a rounding loss
(Diffusion-LM). We instead give each token of the :class:`~nnit.weights.WidthVocab` a **fixed code**:
a row of a Sylvester-Hadamard matrix, i.e. a vector in {-1, +1}^d with unit variance per entry, all
codes mutually orthogonal (pairwise distance sqrt(2 d), the largest possible for V <= d codes).

* The learnable table of the paper is still there: the model's input projection
  ``Linear(d, D)`` applied to a code *is* a learnable D-dim embedding of that token.
* Entries are +-1, so the decoder term of L_vb at t = 1 is exactly a discretized Gaussian likelihood
  with 2 bins (paper Appendix C: "discretized Gaussian log-likelihoods for the architecture").
* Decoding (rounding) a sampled vector x: the token whose code is nearest in L2, which for codes of
  equal norm is argmax_k <x, c_k>. ``decode`` reports whether the raw decoding is a valid
  ``[<in>, widths..., <out>]`` sequence and also returns the nearest *valid* architecture
  (markers forced at the ends, the nearest width token elsewhere).

Widths outside the vocabulary cannot be written as tokens. ``encode(..., unknown="nearest")`` maps
them to the nearest vocabulary width (the weight-token layout in valid mode still carries the true
width); ``unknown="error"`` refuses them.

**Width by value** (:class:`ValueArchCodec`, ``TrainConfig.arch_encoding = "value"``): a width is coded by its
value instead of a vocabulary row, so every width of a range has its own code and a width never trained on lies
between the codes of its trained neighbours. A d-dim code (d even, >= 6) is

* dims 0-3, the **kind**: a zero-mean row of the 4 x 4 Hadamard matrix, one each for ``<in>``, ``<out>`` and
  "a width" (+-1 entries, pairwise distance sqrt(8));
* dims 4.., the **value**: with u = (w - lo) / (hi - lo) in [0, 1] over the codec's range [lo, hi],
  sqrt(2) (cos(k pi u), sin(k pi u)) for k = 1 .. (d - 4) / 2 (Fourier features; k = 1 alone is a half circle,
  so u -> code is one-to-one; mean square ~1 per entry); zero for the markers.

Depth stays positional (the model's index embedding), as for the vocabulary codes. Decoding rounds a sampled
vector to the nearest (L2) code among ``<in>``, ``<out>`` and the widths of a documented **grid** (the split's
width grid, e.g. 8, 16, ..., 64), so the raw token ids of :meth:`ArchCodec.decode` mean the same as for a
:class:`~nnit.weights.WidthVocab` over that grid. Encoding accepts any width in [lo, hi] (default: the grid's
ends) exactly; outside it ``unknown="nearest"`` clamps to the range and ``"error"`` refuses. The codes are not
+-1, so the decoder term of L_vb is the continuous Gaussian likelihood (:attr:`ArchCodec.likelihood`).

:func:`make_codec` builds either codec; :func:`codec_from_dict` reads one back from a checkpoint (a record
without ``encoding`` is a vocabulary codec, as every checkpoint written before value codes existed).
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

import torch

from nnit.weights.architecture import Architecture, ArchitectureError, WidthVocab

UnknownWidth = Literal["error", "nearest"]
ArchEncoding = Literal["vocab", "value"]
"""How architecture tokens are coded: ``vocab`` (a fixed Hadamard row per vocabulary width, the default) or
``value`` (a width by its value, :class:`ValueArchCodec`)."""


def hadamard(n: int) -> torch.Tensor:
    """The n x n Sylvester-Hadamard matrix (n a power of two): +-1 entries, orthogonal rows."""
    if n < 1 or n & (n - 1):
        raise ValueError(f"Hadamard size must be a power of two, got {n}")
    h = torch.ones(1, 1)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


class ArchCodec:
    """Fixed +-1 codes for architecture tokens, and their nearest-code decoding."""

    encoding: ArchEncoding = "vocab"
    """How a width is coded (the ``encoding`` of :meth:`to_dict`)."""

    def __init__(self, vocab: WidthVocab, dim: int | None = None) -> None:
        self.vocab = vocab
        V = len(vocab)
        if dim is None:
            dim = 1
            while dim <= V:
                dim *= 2
        if dim <= V or dim & (dim - 1):
            raise ArchitectureError(f"arch code dim must be a power of two > vocabulary size {V}, got {dim}")
        self.dim = int(dim)
        self.codes = hadamard(dim)[1 : V + 1].clone()  # (V, d); row 0 (all ones) skipped: zero-mean codes

    def __repr__(self) -> str:
        return f"ArchCodec({list(self.vocab.widths)}, dim={self.dim})"

    @property
    def widths(self) -> tuple[int, ...]:
        """The widths a sampled code decodes to (the vocabulary; a value codec's grid)."""
        return self.vocab.widths

    @property
    def likelihood(self) -> Literal["continuous", "discretized"]:
        """The decoder term of L_vb for these codes: discretized with 2 bins (+-1 entries)."""
        return "discretized"

    def expresses(self, width: int) -> bool:
        """Whether ``width`` has a code of its own (else ``encode`` needs ``unknown="nearest"``)."""
        return int(width) in self.vocab.widths

    # ------------------------------------------------------------------ encode
    def tokens(self, arch: Architecture, unknown: UnknownWidth = "error") -> list[int]:
        """``[<in>, w(h_1), ..., w(h_L), <out>]``; widths outside the vocabulary per ``unknown``."""
        out = [WidthVocab.INPUT]
        for h in arch.hidden:
            if h in self.vocab.widths or unknown == "error":
                out.append(self.vocab.token_of(h))  # raises ArchitectureError for unknown widths
            else:
                out.append(self.vocab.nearest_width_token(h))
        return out + [WidthVocab.OUTPUT]

    def encode(self, arch: Architecture, unknown: UnknownWidth = "error") -> torch.Tensor:
        """(S, d) codes of ``arch``'s tokens, S = depth + 2."""
        return self.codes[torch.tensor(self.tokens(arch, unknown))]

    def encode_batch(self, archs: Sequence[Architecture], unknown: UnknownWidth = "error") -> tuple[torch.Tensor, torch.Tensor]:
        """Codes right-padded to the deepest architecture: ((B, S, d) codes, (B, S) bool mask)."""
        seqs = [self.encode(a, unknown) for a in archs]
        S = max(s.shape[0] for s in seqs)
        codes = torch.zeros(len(seqs), S, self.dim)
        mask = torch.zeros(len(seqs), S, dtype=torch.bool)
        for b, s in enumerate(seqs):
            codes[b, : s.shape[0]] = s
            mask[b, : s.shape[0]] = True
        return codes, mask

    # ------------------------------------------------------------------ decode
    def nearest_tokens(self, x: torch.Tensor, widths_only: bool = False) -> torch.Tensor:
        """(..., d) -> (...) token ids of the nearest code (optionally among width tokens only)."""
        scores = x.float() @ self.codes.to(x.device).T  # (..., V)
        if widths_only:
            scores[..., : len(WidthVocab.SPECIALS)] = float("-inf")
        return scores.argmax(-1)

    def decode(
        self, x: torch.Tensor, input_dim: int, output_dim: int, activation: str = "tanh"
    ) -> tuple[list[Architecture], list[bool], torch.Tensor]:
        """Round (B, S, d) sampled codes to architectures.

        Returns (nearest valid architectures, whether each raw decoding was already valid, raw tokens (B, S)).
        """
        raw = self.nearest_tokens(x)  # (B, S)
        hidden = self.nearest_tokens(x[:, 1:-1], widths_only=True)  # (B, S - 2)
        archs, valid = [], []
        for b in range(x.shape[0]):
            toks = raw[b].tolist()
            ok = toks[0] == WidthVocab.INPUT and toks[-1] == WidthVocab.OUTPUT and all(
                t >= len(WidthVocab.SPECIALS) for t in toks[1:-1]
            )
            valid.append(bool(ok))
            widths = tuple(self.vocab.width_of(t) for t in hidden[b].tolist())
            archs.append(Architecture(input_dim, widths, output_dim, activation))
        return archs, valid, raw

    def to_dict(self) -> dict:
        return {"encoding": self.encoding, "widths": list(self.vocab.widths), "dim": self.dim}

    @classmethod
    def from_dict(cls, data: dict) -> "ArchCodec":
        return cls(WidthVocab(data["widths"]), int(data["dim"]))


KIND_DIMS = 4
"""Dims 0-3 of a value code: which kind of token it is (``<in>``, ``<out>`` or a width)."""


class ValueArchCodec(ArchCodec):
    """Codes of widths by value (module docstring): any width in [lo, hi] has its own code; sampled codes
    decode to the nearest width of ``grid``."""

    encoding: ArchEncoding = "value"

    def __init__(self, grid: Sequence[int], dim: int = 8, lo: int | None = None, hi: int | None = None) -> None:
        self.vocab = WidthVocab(grid)  # the decoding grid; token ids as for a vocabulary over it
        g = self.vocab.widths
        self.lo = int(g[0] if lo is None else lo)
        self.hi = int(g[-1] if hi is None else hi)
        if dim < KIND_DIMS + 2 or dim % 2:
            raise ArchitectureError(f"a value arch code needs an even dim >= {KIND_DIMS + 2}, got {dim}")
        if not 0 < self.lo < self.hi:
            raise ArchitectureError(f"a value arch code needs a width range 0 < lo < hi, got [{self.lo}, {self.hi}]")
        if g[0] < self.lo or g[-1] > self.hi:
            raise ArchitectureError(f"the decoding grid {list(g)} must lie inside the range [{self.lo}, {self.hi}]")
        self.dim = int(dim)
        self.freqs = torch.arange(1, (self.dim - KIND_DIMS) // 2 + 1, dtype=torch.float32)  # (F,)
        kinds = hadamard(KIND_DIMS)[1:]  # (3, 4): <in>, <out>, width
        self.kinds = kinds
        markers = torch.zeros(len(WidthVocab.SPECIALS), self.dim)
        markers[:, :KIND_DIMS] = kinds[:2]
        self.codes = torch.cat([markers, self.width_codes(torch.tensor(g, dtype=torch.float32))])  # (2 + G, d)

    def __repr__(self) -> str:
        return f"ValueArchCodec(grid={list(self.vocab.widths)}, range=[{self.lo}, {self.hi}], dim={self.dim})"

    @property
    def likelihood(self) -> Literal["continuous", "discretized"]:
        """The decoder term of L_vb for these codes: continuous (the value part is not +-1)."""
        return "continuous"

    def expresses(self, width: int) -> bool:
        return self.lo <= int(width) <= self.hi

    def width_codes(self, widths: torch.Tensor) -> torch.Tensor:
        """(...) widths -> (..., d) codes: the width kind, then sqrt(2) (cos, sin)(k pi u) per frequency k."""
        u = (widths.float() - self.lo) / (self.hi - self.lo)  # (...)
        ang = math.pi * u.unsqueeze(-1) * self.freqs  # (..., F)
        value = math.sqrt(2.0) * torch.stack([ang.cos(), ang.sin()], -1).flatten(-2)  # (..., 2F)
        kind = self.kinds[2].expand(*widths.shape, KIND_DIMS)  # (..., 4)
        return torch.cat([kind, value], -1)

    def coded_width(self, width: int, unknown: UnknownWidth = "error") -> int:
        """The width whose code ``encode`` writes for ``width``: itself inside [lo, hi]; outside, the nearer end
        with ``unknown="nearest"``, else :class:`ArchitectureError`."""
        w = int(width)
        if self.lo <= w <= self.hi:
            return w
        if unknown == "error":
            raise ArchitectureError(f"width {w} is outside the value encoding's range [{self.lo}, {self.hi}]")
        return min(max(w, self.lo), self.hi)

    def tokens(self, arch: Architecture, unknown: UnknownWidth = "error") -> list[int]:
        """The token ids ``arch``'s codes decode to: the markers and the nearest grid width of each (coded) width."""
        return [WidthVocab.INPUT, *(self.vocab.nearest_width_token(self.coded_width(h, unknown)) for h in arch.hidden),
                WidthVocab.OUTPUT]

    def encode(self, arch: Architecture, unknown: UnknownWidth = "error") -> torch.Tensor:
        """(S, d) codes of ``arch``: ``<in>``, each hidden width by value, ``<out>``."""
        widths = torch.tensor([self.coded_width(h, unknown) for h in arch.hidden], dtype=torch.float32)  # (L,)
        return torch.cat([self.codes[:1], self.width_codes(widths), self.codes[1:2]])

    def nearest_tokens(self, x: torch.Tensor, widths_only: bool = False) -> torch.Tensor:
        """(..., d) -> (...) ids of the nearest code in L2 (the codes differ in norm) among ``<in>``, ``<out>`` and
        the grid widths (optionally the grid widths only)."""
        codes = self.codes.to(x.device)
        d2 = (x.float().unsqueeze(-2) - codes).pow(2).sum(-1)  # (..., 2 + G)
        if widths_only:
            d2[..., : len(WidthVocab.SPECIALS)] = float("inf")
        return d2.argmin(-1)

    def to_dict(self) -> dict:
        return {"encoding": self.encoding, "widths": list(self.vocab.widths), "dim": self.dim, "lo": self.lo, "hi": self.hi}

    @classmethod
    def from_dict(cls, data: dict) -> "ValueArchCodec":
        return cls(data["widths"], int(data["dim"]), int(data["lo"]), int(data["hi"]))


def default_code_dim(encoding: ArchEncoding, num_widths: int) -> int:
    """The smallest code size that holds ``num_widths`` widths: vocabulary codes need a power of two > the
    vocabulary (widths + 2 markers); value codes 8 (kind + 2 frequencies) whatever the grid."""
    if encoding == "value":
        return 8
    dim = 1
    while dim <= num_widths + len(WidthVocab.SPECIALS):
        dim *= 2
    return dim


def make_codec(encoding: ArchEncoding, widths: Sequence[int], dim: int) -> ArchCodec:
    """A codec over ``widths`` (the vocabulary, or the value codec's decoding grid and range)."""
    if encoding == "vocab":
        return ArchCodec(WidthVocab(widths), dim)
    if encoding == "value":
        return ValueArchCodec(widths, dim)
    raise ArchitectureError(f"unknown arch encoding {encoding!r}; choose vocab or value")


def codec_from_dict(data: dict) -> ArchCodec:
    """The codec a checkpoint stored (``to_dict``); a record without ``encoding`` is a vocabulary codec."""
    encoding = data.get("encoding", "vocab")
    if encoding == "vocab":
        return ArchCodec.from_dict(data)
    if encoding == "value":
        return ValueArchCodec.from_dict(data)
    raise ArchitectureError(f"unknown arch encoding {encoding!r} in a checkpoint's codec record")
