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
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch

from nnit.weights.architecture import Architecture, ArchitectureError, WidthVocab

UnknownWidth = Literal["error", "nearest"]


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
        return {"widths": list(self.vocab.widths), "dim": self.dim}

    @classmethod
    def from_dict(cls, data: dict) -> "ArchCodec":
        return cls(WidthVocab(data["widths"]), int(data["dim"]))
