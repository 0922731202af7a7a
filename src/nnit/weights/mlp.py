"""Weight sets of MLPs: a batch of N networks of one architecture, run all at once.

Every stage of the pipeline passes MLP weights around as a :class:`WeightSet`: the GHN generates
one (with gradients), the dataset stores them, NNiT assembles them from patches, the evaluation
harness runs them. ``forward`` evaluates N different networks on their own inputs with batched
matmuls (``torch.baddbmm``), so 100 candidate policies cost one call, not a Python loop.

Files a user receives are safetensors with the architecture as JSON metadata (no pickle).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from nnit.errors import NNiTError
from nnit.fileio import atomic_save_safetensors
from nnit.weights.architecture import Architecture, ArchitectureError

_ACT = {"tanh": torch.tanh, "relu": F.relu, "gelu": F.gelu, "silu": F.silu}
_ACT_MODULE = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


class WeightError(NNiTError):
    """Weights that do not fit their architecture, contain NaN/inf, or a bad weight file."""


@dataclass
class WeightSet:
    """N networks sharing one :class:`Architecture`.

    ``weights[l]`` has shape (N, out_l, in_l) and ``biases[l]`` (N, out_l), the ``nn.Linear``
    convention. Tensors may carry gradients (the GHN trains through them).
    """

    arch: Architecture
    weights: list[torch.Tensor]
    biases: list[torch.Tensor]

    def __post_init__(self) -> None:
        shapes = self.arch.layer_shapes
        if len(self.weights) != len(shapes) or len(self.biases) != len(shapes):
            raise WeightError(
                f"{self.arch} has {len(shapes)} layers but got {len(self.weights)} weight and "
                f"{len(self.biases)} bias tensors"
            )
        n = self.weights[0].shape[0] if self.weights[0].dim() == 3 else None
        for l, ((o, i), w, b) in enumerate(zip(shapes, self.weights, self.biases)):
            if w.dim() != 3 or tuple(w.shape[1:]) != (o, i) or w.shape[0] != n:
                raise WeightError(f"layer {l} weight has shape {tuple(w.shape)}, expected ({n}, {o}, {i}) for {self.arch}")
            if b.dim() != 2 or tuple(b.shape) != (n, o):
                raise WeightError(f"layer {l} bias has shape {tuple(b.shape)}, expected ({n}, {o}) for {self.arch}")

    # ------------------------------------------------------------------ construction
    @classmethod
    def init_random(cls, arch: Architecture, n: int = 1, generator: torch.Generator | None = None) -> "WeightSet":
        """PyTorch's default ``nn.Linear`` initialisation (U(-1/sqrt(in), 1/sqrt(in))), n times."""
        ws, bs = [], []
        for o, i in arch.layer_shapes:
            bound = 1.0 / math.sqrt(i)
            ws.append((torch.rand(n, o, i, generator=generator) * 2 - 1) * bound)
            bs.append((torch.rand(n, o, generator=generator) * 2 - 1) * bound)
        return cls(arch, ws, bs)

    @classmethod
    def from_vector(cls, arch: Architecture, flat: torch.Tensor) -> "WeightSet":
        """Inverse of :meth:`to_vector`: (N, P) -> WeightSet, layer by layer [W_l (row-major), b_l]."""
        if flat.dim() == 1:
            flat = flat.unsqueeze(0)
        if flat.shape[-1] != arch.num_params:
            raise WeightError(f"{arch} has {arch.num_params} parameters, vector has {flat.shape[-1]}")
        ws, bs, k = [], [], 0
        for o, i in arch.layer_shapes:
            ws.append(flat[:, k : k + o * i].reshape(-1, o, i))
            k += o * i
            bs.append(flat[:, k : k + o])
            k += o
        return cls(arch, ws, bs)

    @classmethod
    def stack(cls, sets: Sequence["WeightSet"]) -> "WeightSet":
        """Concatenate weight sets of the same architecture along N."""
        if not sets:
            raise WeightError("cannot stack an empty list of weight sets")
        arch = sets[0].arch
        for s in sets:
            if s.arch.widths != arch.widths or s.arch.activation != arch.activation:
                raise WeightError(f"cannot stack {s.arch} with {arch}: architectures differ")
        return cls(
            arch,
            [torch.cat([s.weights[l] for s in sets]) for l in range(arch.num_layers)],
            [torch.cat([s.biases[l] for s in sets]) for l in range(arch.num_layers)],
        )

    # ------------------------------------------------------------------ views
    @property
    def n(self) -> int:
        """Number of networks."""
        return self.weights[0].shape[0]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, idx) -> "WeightSet":
        """Select networks: an int keeps a batch of one, a slice / index tensor selects several."""
        if isinstance(idx, int):
            idx = slice(idx, idx + 1) if idx != -1 else slice(-1, None)
        return WeightSet(self.arch, [w[idx] for w in self.weights], [b[idx] for b in self.biases])

    def to(self, *args, **kwargs) -> "WeightSet":
        return WeightSet(self.arch, [w.to(*args, **kwargs) for w in self.weights], [b.to(*args, **kwargs) for b in self.biases])

    def detach(self) -> "WeightSet":
        return WeightSet(self.arch, [w.detach() for w in self.weights], [b.detach() for b in self.biases])

    def to_vector(self) -> torch.Tensor:
        """(N, P): every network flattened layer by layer as [W_l (row-major), b_l]."""
        parts = []
        for w, b in zip(self.weights, self.biases):
            parts += [w.reshape(self.n, -1), b]
        return torch.cat(parts, dim=1)

    def check_finite(self) -> None:
        """Raise :class:`WeightError` naming the first layer that holds NaN or inf."""
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            for name, t in (("weight", w), ("bias", b)):
                if not torch.isfinite(t).all():
                    bad = (~torch.isfinite(t)).flatten(1).any(1).nonzero().flatten().tolist()
                    raise WeightError(f"layer {l} {name} holds NaN or inf values (networks {bad[:10]})")

    # ------------------------------------------------------------------ running
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run all N networks.

        ``x``: (B, in) — the same inputs for every network — or (N, B, in) — one batch per
        network. Returns (N, B, out).
        """
        if x.shape[-1] != self.arch.input_dim:
            raise WeightError(f"input has {x.shape[-1]} features but {self.arch} expects {self.arch.input_dim}")
        h = x.unsqueeze(0).expand(self.n, *x.shape) if x.dim() == 2 else x  # (N, B, in)
        if h.shape[0] != self.n:
            raise WeightError(f"input batch is for {h.shape[0]} networks, weight set has {self.n}")
        act = _ACT[self.arch.activation]
        last = self.arch.num_layers - 1
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))  # (N, B, out_l)
            if l < last:
                h = act(h)
        return h

    __call__ = forward

    def to_sequential(self, index: int = 0) -> nn.Sequential:
        """Network ``index`` as a plain ``nn.Sequential`` of Linear and activation modules."""
        if not -self.n <= index < self.n:
            raise IndexError(f"network {index} out of range for a weight set of {self.n}")
        mods: list[nn.Module] = []
        last = self.arch.num_layers - 1
        for l, ((o, i), w, b) in enumerate(zip(self.arch.layer_shapes, self.weights, self.biases)):
            lin = nn.Linear(i, o)
            with torch.no_grad():
                lin.weight.copy_(w[index])
                lin.bias.copy_(b[index])
            mods.append(lin)
            if l < last:
                mods.append(_ACT_MODULE[self.arch.activation]())
        return nn.Sequential(*mods)

    @classmethod
    def from_sequential(cls, model: nn.Sequential, activation: str | None = None) -> "WeightSet":
        """A batch of one from an ``nn.Sequential`` of Linear layers and activations."""
        linears = [m for m in model if isinstance(m, nn.Linear)]
        if not linears:
            raise WeightError("the module holds no nn.Linear layers")
        if activation is None:
            acts = [name for name, cls_ in _ACT_MODULE.items() for m in model if type(m) is cls_]
            activation = acts[0] if acts else "tanh"
        arch = Architecture(linears[0].in_features, tuple(m.out_features for m in linears[:-1]), linears[-1].out_features, activation)
        return cls(arch, [m.weight.detach().unsqueeze(0).clone() for m in linears], [m.bias.detach().unsqueeze(0).clone() for m in linears])

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike, extra_metadata: dict | None = None) -> Path:
        """Write safetensors (``layers.{l}.weight`` (N, out, in), ``layers.{l}.bias`` (N, out))
        with the architecture in the metadata; atomic (tmp file + rename)."""
        tensors = {}
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            tensors[f"layers.{l}.weight"] = w.detach().contiguous().cpu()
            tensors[f"layers.{l}.bias"] = b.detach().contiguous().cpu()
        meta = {"format": "nnit.weightset/1", "architecture": self.arch.to_json(), "num_networks": str(self.n)}
        if extra_metadata:
            meta["extra"] = json.dumps(extra_metadata, sort_keys=True)
        return atomic_save_safetensors(tensors, path, meta)

    @classmethod
    def load(cls, path: str | os.PathLike, dtype: torch.dtype = torch.float32) -> "WeightSet":
        """Read a file written by :meth:`save`; checks shapes and finiteness, never unpickles."""
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise WeightError(f"weight file {path} does not exist")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                if "architecture" not in meta:
                    raise WeightError(f"{path} has no 'architecture' metadata: not an nnit weight file")
                arch = Architecture.from_json(meta["architecture"])
                ws = [f.get_tensor(f"layers.{l}.weight").to(dtype) for l in range(arch.num_layers)]
                bs = [f.get_tensor(f"layers.{l}.bias").to(dtype) for l in range(arch.num_layers)]
        except WeightError:
            raise
        except ArchitectureError as err:
            raise WeightError(f"{path}: {err}") from None
        except Exception as err:  # safetensors raises SafetensorError / OSError on bad files
            raise WeightError(f"cannot read weight file {path}: {err} (truncated or not safetensors?)") from None
        ws_ = cls(arch, ws, bs)
        ws_.check_finite()
        return ws_


def load_extra_metadata(path: str | os.PathLike) -> dict:
    """The ``extra_metadata`` dict a weight file was saved with ({} when none)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    return json.loads(meta.get("extra", "{}"))
