"""Sampling NNiT: conditional p(w | a) and joint p(a, w), then assembly into runnable MLPs (paper Sec. 5.4).

* ``NNiTSampler.conditional(arch, num)``: the architecture codes are held clean (t_a = 0) and only
  the weights are denoised. Any architecture whose layers fit the patch grid and whose depth fits the
  position tables works; a hidden width outside the token vocabulary is written as the nearest
  vocabulary token in "valid" token mode (the weight-token layout carries the true width) and
  refused in "padded" mode (there the tokens are the only place the width is said).
* ``NNiTSampler.joint(num, depth)``: architecture codes and weights are denoised together
  (t_a = t_w) over the layout of the widest architecture of that depth. At each step the current
  architecture estimate x0^_a is rounded to the nearest valid architecture and crops the canvas
  (entries outside it are not part of the state; in valid mode tokens outside it are masked from
  attention), so the model always sees the layout it was trained on. The final codes are decoded to
  widths; ``valid`` says whether the raw rounding was already a valid token sequence.

Samplers: ``"ancestral"`` with ``steps = T`` is the paper's 1000-step sampler (fewer steps = the
respaced IDDPM sampler with learned variance); ``"ddim"`` is DDIM on a respaced schedule;
``"dpm++2m"``, ``"dpm++2m-sde"`` and ``"unipc"`` are diffusers' few-step solvers (``nnit.diffusion.solvers``:
no learned variance; temperature scales ``dpm++2m-sde``'s fresh noise, the ODE solvers accept only 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import torch

from nnit.diffusion.arch_codes import ArchCodec, UnknownWidth
from nnit.diffusion.gaussian import GaussianDiffusion, SamplerName, linear_betas, sample_loop
from nnit.diffusion.model import NNiT
from nnit.diffusion.train import TrainConfig, load_checkpoint
from nnit.weights.architecture import Architecture, ArchitectureError
from nnit.weights.mlp import WeightSet
from nnit.weights.normalize import WeightNormalizer
from nnit.weights.tokenize import GridError, PatchGrid


@dataclass
class JointSample:
    """Networks sampled from p(a, w)."""

    archs: list[Architecture]
    """Decoded (nearest valid) architecture of every sample."""
    valid: list[bool]
    """Whether the raw rounding of each sample's codes was a valid token sequence."""
    novel: list[bool]
    """Whether each architecture is outside the training architectures."""
    weights: dict[tuple[int, ...], WeightSet] = field(default_factory=dict)
    """Networks grouped by hidden widths (un-normalized when a normalizer is known)."""

    def summary(self) -> dict:
        n = len(self.archs)
        return {"num": n, "valid": sum(self.valid), "novel": sum(self.novel), "distinct_archs": len(self.weights),
                "valid_frac": sum(self.valid) / max(n, 1), "novel_frac": sum(self.novel) / max(n, 1)}


class NNiTSampler:
    """A trained NNiT plus everything needed to turn its samples into networks."""

    def __init__(
        self, model: NNiT, codec: ArchCodec, config: TrainConfig, normalizer: Optional[WeightNormalizer] = None,
        data: Optional[dict] = None, device: str | torch.device = "cpu",
    ) -> None:
        self.model = model.to(device).eval()
        self.codec, self.config, self.normalizer = codec, config, normalizer
        self.data = data or {}
        self.device = torch.device(device)
        self.grid = PatchGrid(config.patch_size, config.max_width)
        self.mode = config.token_mode
        self.diffusion = GaussianDiffusion(linear_betas(config.num_timesteps))
        self._emask_cache: dict[Architecture, torch.Tensor] = {}

    @classmethod
    def from_checkpoint(cls, path: str | Path, use_ema: bool = True, device: str | torch.device = "cpu") -> "NNiTSampler":
        """Rebuild the model from the checkpoint's own config (EMA weights by default)."""
        ck = load_checkpoint(path)
        model = NNiT(ck.model_config)
        model.load_state_dict(ck.ema if (use_ema and ck.ema) else ck.model)
        norm = ck.data.get("normalizer")
        return cls(model, ck.codec, ck.config, WeightNormalizer.from_dict(norm) if norm else None, ck.data, device)

    # ------------------------------------------------------------------ helpers
    def schedule(self, method: SamplerName, steps: Optional[int]) -> GaussianDiffusion:
        """The schedule ``sample_loop`` runs: respaced to ``steps`` for ancestral / DDIM; the full one for the
        diffusers solvers, which pick their own ``steps`` timesteps of it."""
        T = self.diffusion.num_timesteps
        steps = T if steps is None else int(steps)
        if method not in ("ancestral", "ddim"):
            return self.diffusion
        return self.diffusion if steps == T else self.diffusion.respace(steps)

    def _padded_emask(self, arch: Architecture) -> torch.Tensor:
        """(L * R * C, p*p) element mask of ``arch`` over the full padded grid, in padded token order."""
        if arch not in self._emask_cache:
            zeros = WeightSet(arch, [torch.zeros(1, o, i) for o, i in arch.layer_shapes],
                              [torch.zeros(1, o) for o, _ in arch.layer_shapes])
            self._emask_cache[arch] = self.grid.tokenize(zeros, "padded").element_mask
        return self._emask_cache[arch]

    def _layout_emask(self, arch: Architecture, positions: torch.Tensor) -> torch.Tensor:
        """Element mask of ``arch`` at the token ``positions`` (T, 3) of some layout: (T, p*p)."""
        R, C = self.grid.patch_rows, self.grid.patch_cols
        flat = positions[:, 0] * R * C + positions[:, 1] * C + positions[:, 2]
        em = self._padded_emask(arch)
        out = torch.zeros(positions.shape[0], em.shape[1], dtype=torch.bool)
        inside = positions[:, 0] < arch.num_layers
        out[inside] = em[flat[inside]]
        return out

    def _clip(self, clip: Optional[float] | str) -> Optional[float]:
        if clip == "data":
            return self.data.get("abs_max")
        return None if clip is None else float(clip)

    def _denoiser(self, positions: torch.Tensor):
        def denoise(x_a, x_w, t_a, t_w, w_mask):
            token_mask = w_mask.any(-1) if self.mode == "valid" else None
            if token_mask is not None and bool(token_mask.all()):
                token_mask = None  # nothing to hide: the unmasked attention kernel gives the same outputs, faster
            out_a, v_a, out_w, v_w = self.model(x_a, x_w, positions, t_a, t_w, token_mask, None)
            par, d = self.config.parameterization, self.diffusion
            return d.eps_from_output(out_a.float(), x_a, t_a, par), v_a, d.eps_from_output(out_w.float(), x_w, t_w, par), v_w

        return denoise

    def _finish(self, arch: Architecture, values: torch.Tensor, positions_mode: str) -> WeightSet:
        ws = self.grid.assemble(arch, values.cpu(), positions_mode)  # type: ignore[arg-type]
        ws.check_finite()
        return self.normalizer.invert(ws) if self.normalizer is not None else ws

    # ------------------------------------------------------------------ p(w | a)
    @torch.no_grad()
    def conditional(
        self, arch: Architecture, num: int = 100, method: SamplerName = "ddim", steps: Optional[int] = 50,
        eta: float = 0.0, seed: int = 0, unknown: Optional[UnknownWidth] = None,
        clip: Optional[float] | Literal["data"] = "data", temperature: float = 1.0, progress: bool = False,
    ) -> WeightSet:
        """``num`` networks for ``arch`` from p(w | a) (un-normalized when the checkpoint has a normalizer).

        Raises ``GridError`` (layer wider than the grid), ``ModelError`` (too deep for the position
        tables) or ``ArchitectureError`` (width outside the vocabulary where that is not allowed).
        ``clip`` bounds each step's x0^ of the weights: "data" = the training data's largest |value|
        (normalized space, stored in the checkpoint), a number, or None for no clipping. ``temperature``
        scales each weight step's fresh noise (1 = the model's distribution; see ``sample_loop``)."""
        self.grid.check_fits(arch)
        unknown = unknown or ("nearest" if self.mode == "valid" else "error")
        try:
            codes = self.codec.encode(arch, unknown)  # (S, d_a)
        except ArchitectureError as err:
            raise ArchitectureError(f"{err} (token mode {self.mode!r}: only 'valid' mode can condition on widths "
                                    "outside the vocabulary)") from None
        pos = self.grid.positions(arch, self.mode)  # (T, 3)
        self.model.check_positions(pos, codes.shape[0])
        emask = self.grid.tokenize(WeightSet(arch, [torch.zeros(1, o, i) for o, i in arch.layer_shapes],
                                             [torch.zeros(1, o) for o, _ in arch.layer_shapes]), self.mode).element_mask
        dev = self.device
        x_a = codes.unsqueeze(0).expand(num, -1, -1).to(dev)  # (N, S, d_a)
        positions = pos.unsqueeze(0).expand(num, -1, -1).to(dev)  # (N, T, 3)
        w_mask = emask.unsqueeze(0).expand(num, -1, -1).to(dev)  # (N, T, p*p)
        gen = torch.Generator(device=dev).manual_seed(seed)
        _, x_w = sample_loop(self.schedule(method, steps), self._denoiser(positions), x_a, tuple(w_mask.shape),
                             conditional=True, weight_mask=w_mask, method=method, eta=eta, generator=gen,
                             weight_clip=self._clip(clip), temperature=temperature,
                             progress=progress, steps=steps)
        return self._finish(arch, x_w, self.mode)

    # ------------------------------------------------------------------ p(a, w)
    @torch.no_grad()
    def joint(
        self, num: int = 100, depth: int = 4, input_dim: Optional[int] = None, output_dim: Optional[int] = None,
        activation: Optional[str] = None, method: SamplerName = "ddim", steps: Optional[int] = 50, eta: float = 0.0,
        seed: int = 0, clip: Optional[float] | Literal["data"] = "data", temperature: float = 1.0, progress: bool = False,
    ) -> JointSample:
        """Sample ``num`` (architecture, weights) pairs of ``depth`` hidden layers from p(a, w)."""
        input_dim = input_dim or self.data.get("input_dim")
        output_dim = output_dim or self.data.get("output_dim")
        activation = activation or self.data.get("activation") or "tanh"
        if not input_dim or not output_dim:
            raise ArchitectureError("joint sampling needs the task's input and output dims (not stored in this checkpoint)")
        widest = Architecture(input_dim, (max(self.codec.vocab.widths),) * depth, output_dim, activation)
        self.grid.check_fits(widest)
        pos = self.grid.positions(widest, self.mode)  # (T, 3): every patch any architecture of this depth can use
        self.model.check_positions(pos, depth + 2)
        dev = self.device
        positions = pos.unsqueeze(0).expand(num, -1, -1).to(dev)  # (N, T, 3)
        full = self._layout_emask(widest, pos).unsqueeze(0).expand(num, -1, -1).to(dev)  # (N, T, p*p)

        def weight_mask(x0_a: Optional[torch.Tensor]) -> torch.Tensor:
            if x0_a is None:
                return full
            archs, _, _ = self.codec.decode(x0_a, input_dim, output_dim, activation)
            return torch.stack([self._layout_emask(a, pos) for a in archs]).to(dev)  # (N, T, p*p)

        x_a = torch.zeros(num, depth + 2, self.codec.dim, device=dev)  # shape only: joint mode starts from noise
        gen = torch.Generator(device=dev).manual_seed(seed)
        x_a, x_w = sample_loop(self.schedule(method, steps), self._denoiser(positions), x_a, tuple(full.shape),
                               conditional=False, weight_mask=weight_mask, method=method, eta=eta, generator=gen,
                               weight_clip=self._clip(clip), temperature=temperature,
                               progress=progress, steps=steps)
        archs, valid, _ = self.codec.decode(x_a, input_dim, output_dim, activation)
        seen = {tuple(h) for h in self.data.get("train_archs", [])}
        result = JointSample(archs, valid, [a.hidden not in seen for a in archs])
        raw = self.grid.assemble(widest, x_w.cpu(), self.mode)  # type: ignore[arg-type]  # crop below per arch
        for h in sorted({a.hidden for a in archs}):
            idx = torch.tensor([i for i, a in enumerate(archs) if a.hidden == h])
            arch = Architecture(input_dim, h, output_dim, activation)
            ws = WeightSet(arch, [w[idx][:, :o, :i] for w, (o, i) in zip(raw.weights, arch.layer_shapes)],
                           [b[idx][:, :o] for b, (o, _) in zip(raw.biases, arch.layer_shapes)])
            ws.check_finite()
            result.weights[h] = self.normalizer.invert(ws) if self.normalizer is not None else ws
        return result


__all__ = ["JointSample", "NNiTSampler", "GridError"]
