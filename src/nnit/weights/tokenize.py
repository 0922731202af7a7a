"""Patch tokenization of MLP weights and its exact inverse, assembly (paper Sec. 5.1.2 and 5.3).

Each linear layer l becomes a parameter block ``B_l = [W_l | b_l]`` placed on a fixed canvas of
``H x W`` cells with ``H = M`` and ``W = M + p`` (M the largest supported width, p the patch size):

* ``W_l`` (out x in, the ``nn.Linear`` convention; the paper writes its transpose) sits in the
  top-left corner ``[0:out, 0:in]``;
* ``b_l`` sits in column ``M``, i.e. the first column of the last patch column, at the same place for
  every fan-in. Anchoring both at fixed coordinates is what makes neuron i sit at row i for every
  width — the structural alignment the GHN's CNN decoder produces.

The canvas is cut into non-overlapping ``p x p`` patches; a token is one flattened patch (p^2
numbers) with its position ``(layer, patch_row, patch_col)``. Two modes:

* ``"padded"`` — the paper's: every patch of every layer's canvas, ``L * (H/p) * (W/p)`` tokens.
* ``"valid"`` — only patches that hold at least one real weight or bias:
  ``sum_l ceil(out_l/p) * (ceil(in_l/p) + 1)`` tokens, with the same positions as in padded mode.
  A wider layer is just more tokens; nothing depends on the width vocabulary.

Both carry an element mask saying which of a token's p^2 entries are real parameters. ``assemble``
scatters tokens back onto the canvas and crops each block: ``assemble(tokenize(x)) == x`` exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import torch

from nnit.errors import NNiTError
from nnit.weights.architecture import Architecture
from nnit.weights.mlp import WeightError, WeightSet

TokenMode = Literal["padded", "valid"]
TOKEN_MODES: tuple[str, ...] = ("padded", "valid")


class GridError(NNiTError):
    """An architecture that does not fit the configured patch grid, or a bad grid."""


@dataclass(frozen=True)
class PatchGrid:
    """The canvas every layer block is painted on: ``H = max_width`` rows, ``W = max_width + p`` columns."""

    patch_size: int = 8
    """p: side of a square patch."""
    max_width: int = 64
    """M: the largest fan-in or fan-out any layer may have (input dim and output dim included)."""

    def __post_init__(self) -> None:
        if self.patch_size <= 0 or self.max_width <= 0:
            raise GridError(f"patch size and max width must be positive, got p={self.patch_size}, M={self.max_width}")
        if self.max_width % self.patch_size:
            raise GridError(f"max width M={self.max_width} must be a multiple of the patch size p={self.patch_size}")

    @property
    def height(self) -> int:
        return self.max_width

    @property
    def width(self) -> int:
        return self.max_width + self.patch_size

    @property
    def patch_rows(self) -> int:
        return self.height // self.patch_size

    @property
    def patch_cols(self) -> int:
        return self.width // self.patch_size

    @property
    def bias_col(self) -> int:
        """Canvas column that holds the bias."""
        return self.max_width

    def check_fits(self, arch: Architecture) -> None:
        """Raise :class:`GridError` naming the first layer wider than the grid."""
        for l, (o, i) in enumerate(arch.layer_shapes):
            if o > self.max_width or i > self.max_width:
                raise GridError(
                    f"layer {l} of {arch} is {o}x{i} but the patch grid holds at most "
                    f"{self.max_width}x{self.max_width} (max_width M={self.max_width}); "
                    "use a grid with a larger max_width"
                )

    # ------------------------------------------------------------------ positions
    def positions(self, arch: Architecture, mode: TokenMode) -> torch.Tensor:
        """(T, 3) long tensor of ``(layer, patch_row, patch_col)`` for every token, in token order."""
        self.check_fits(arch)
        if mode not in TOKEN_MODES:
            raise GridError(f"unknown token mode {mode!r}; choose one of {TOKEN_MODES}")
        p = self.patch_size
        rows = []
        for l, (o, i) in enumerate(arch.layer_shapes):
            if mode == "padded":
                rr, cc = range(self.patch_rows), range(self.patch_cols)
            else:
                rr = range(math.ceil(o / p))
                cc = [*range(math.ceil(i / p)), self.bias_col // p]
            rows += [(l, r, c) for r in rr for c in cc]
        return torch.tensor(rows, dtype=torch.long).reshape(-1, 3)

    def num_tokens(self, arch: Architecture, mode: TokenMode) -> int:
        """Number of weight tokens of ``arch`` in ``mode``."""
        return int(self.positions(arch, mode).shape[0])

    # ------------------------------------------------------------------ canvas
    def element_mask(self, arch: Architecture) -> torch.Tensor:
        """(L, H, W) bool: True on canvas cells that hold a real weight or bias."""
        mask = torch.zeros(arch.num_layers, self.height, self.width, dtype=torch.bool)
        for l, (o, i) in enumerate(arch.layer_shapes):
            mask[l, :o, :i] = True
            mask[l, :o, self.bias_col] = True
        return mask

    def to_canvas(self, ws: WeightSet) -> torch.Tensor:
        """(N, L, H, W): each layer's ``[W | b]`` painted on the canvas, zeros elsewhere."""
        self.check_fits(ws.arch)
        ref = ws.weights[0]
        canvas = ref.new_zeros(ws.n, ws.arch.num_layers, self.height, self.width)
        for l, ((o, i), w, b) in enumerate(zip(ws.arch.layer_shapes, ws.weights, ws.biases)):
            canvas[:, l, :o, :i] = w
            canvas[:, l, :o, self.bias_col] = b
        return canvas

    def from_canvas(self, arch: Architecture, canvas: torch.Tensor) -> WeightSet:
        """Crop every layer's block out of an (N, L, H, W) canvas (the padding is discarded)."""
        self.check_fits(arch)
        if canvas.dim() != 4 or tuple(canvas.shape[1:]) != (arch.num_layers, self.height, self.width):
            raise GridError(f"canvas has shape {tuple(canvas.shape)}, expected (N, {arch.num_layers}, {self.height}, {self.width})")
        ws = [canvas[:, l, :o, :i] for l, (o, i) in enumerate(arch.layer_shapes)]
        bs = [canvas[:, l, :o, self.bias_col] for l, (o, _) in enumerate(arch.layer_shapes)]
        return WeightSet(arch, ws, bs)

    def _patchify(self, canvas: torch.Tensor) -> torch.Tensor:
        """(N, L, H, W) -> (N, L, R, C, p*p) with R = H/p, C = W/p."""
        n, L = canvas.shape[:2]
        p = self.patch_size
        x = canvas.reshape(n, L, self.patch_rows, p, self.patch_cols, p)  # (N, L, R, p, C, p)
        return x.permute(0, 1, 2, 4, 3, 5).reshape(n, L, self.patch_rows, self.patch_cols, p * p)

    def _unpatchify(self, patches: torch.Tensor) -> torch.Tensor:
        """(N, L, R, C, p*p) -> (N, L, H, W)."""
        n, L = patches.shape[:2]
        p = self.patch_size
        x = patches.reshape(n, L, self.patch_rows, self.patch_cols, p, p)  # (N, L, R, C, p, p)
        return x.permute(0, 1, 2, 4, 3, 5).reshape(n, L, self.height, self.width)

    # ------------------------------------------------------------------ tokens
    def tokenize(self, ws: WeightSet, mode: TokenMode = "valid") -> "PatchTokens":
        """Cut every layer block into p x p patches (see module docstring for the two modes)."""
        pos = self.positions(ws.arch, mode)  # (T, 3)
        patches = self._patchify(self.to_canvas(ws))  # (N, L, R, C, p*p)
        values = patches[:, pos[:, 0], pos[:, 1], pos[:, 2]]  # (N, T, p*p)
        emask = self._patchify(self.element_mask(ws.arch).unsqueeze(0))[0]  # (L, R, C, p*p)
        return PatchTokens(ws.arch, mode, values, pos, emask[pos[:, 0], pos[:, 1], pos[:, 2]])

    def assemble(self, arch: Architecture, values: torch.Tensor, mode: TokenMode = "valid") -> WeightSet:
        """Inverse of :meth:`tokenize`: (N, T, p*p) token values -> the ``WeightSet`` of ``arch``.

        Entries of a token outside the real block (padding) are ignored.
        """
        pos = self.positions(arch, mode)
        if values.dim() == 2:
            values = values.unsqueeze(0)
        p2 = self.patch_size**2
        if values.dim() != 3 or values.shape[1] != pos.shape[0] or values.shape[2] != p2:
            raise GridError(
                f"{arch} in {mode} mode needs token values of shape (N, {pos.shape[0]}, {p2}), got {tuple(values.shape)}"
            )
        patches = values.new_zeros(values.shape[0], arch.num_layers, self.patch_rows, self.patch_cols, p2)
        patches[:, pos[:, 0], pos[:, 1], pos[:, 2]] = values
        return self.from_canvas(arch, self._unpatchify(patches))


@dataclass
class PatchTokens:
    """Weight tokens of N networks of one architecture."""

    arch: Architecture
    mode: str
    values: torch.Tensor
    """(N, T, p*p) patch values."""
    positions: torch.Tensor
    """(T, 3) long: (layer, patch_row, patch_col)."""
    element_mask: torch.Tensor
    """(T, p*p) bool: which entries are real parameters (False = padding)."""

    @property
    def num_tokens(self) -> int:
        return int(self.positions.shape[0])


@dataclass
class TokenBatch:
    """Tokens of networks of *different* architectures, right-padded to a common length."""

    values: torch.Tensor  # (B, T, p*p)
    positions: torch.Tensor  # (B, T, 3), padding rows are 0
    token_mask: torch.Tensor  # (B, T) bool: real tokens
    element_mask: torch.Tensor  # (B, T, p*p) bool: real parameters
    archs: list[Architecture]


def collate_tokens(items: Sequence[PatchTokens]) -> TokenBatch:
    """Stack one network from each item (items may have N > 1: all are kept) into a padded batch."""
    rows = [(t, k) for t in items for k in range(t.values.shape[0])]
    if not rows:
        raise GridError("cannot collate an empty list of tokens")
    T = max(t.num_tokens for t, _ in rows)
    p2 = rows[0][0].values.shape[-1]
    B = len(rows)
    ref = rows[0][0].values
    values = ref.new_zeros(B, T, p2)
    positions = torch.zeros(B, T, 3, dtype=torch.long)
    token_mask = torch.zeros(B, T, dtype=torch.bool)
    element_mask = torch.zeros(B, T, p2, dtype=torch.bool)
    for b, (t, k) in enumerate(rows):
        n = t.num_tokens
        values[b, :n] = t.values[k]
        positions[b, :n] = t.positions
        token_mask[b, :n] = True
        element_mask[b, :n] = t.element_mask
    return TokenBatch(values, positions, token_mask, element_mask, [t.arch for t, _ in rows])


def check_token_values(values: torch.Tensor) -> None:
    """Raise :class:`WeightError` if generated token values hold NaN or inf."""
    if not torch.isfinite(values).all():
        raise WeightError("token values hold NaN or inf; refusing to assemble them into networks")
