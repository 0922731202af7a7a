"""Sampling NNiT: conditional p(w | a) and joint p(a, w), then assembly into runnable MLPs (paper Sec. 5.4).

* ``NNiTSampler.conditional(arch, num)``: the architecture codes are held clean (t_a = 0) and only
  the weights are denoised. Any architecture whose layers fit the patch grid and whose depth fits the
  position tables works. With vocabulary codes a hidden width outside the token vocabulary is written as
  the nearest vocabulary token in "valid" token mode (the weight-token layout carries the true width) and
  refused in "padded" mode (there the tokens are the only place the width is said); with value codes
  (``arch_encoding="value"``) every width in the codec's range is written by its own value, and only widths
  outside the range are clamped (valid mode) or refused (padded mode).
* ``NNiTSampler.joint(num, depth)``: architectures and weights from p(a, w). Two schedules:

  - **architecture-first** (models trained with the prior mode, ``TrainConfig.p_prior > 0``): a ~ p(a)
    by denoising the architecture codes alone with t_w = T (the prior mode: no weight tokens, which carry no
    information at t_w = T), rounded to the nearest valid architecture; then w ~ p(w | a) for all samples in
    one batch. p(a) p(w | a) = p(a, w). Valid-token models need this: their weight-token layout is a function
    of the architecture, so denoising both together over one layout tells the model the answer.
  - **together** (the paper's; padded-token models and models without the prior mode): t_a = t_w over the
    layout of the widest architecture of that depth. At each step the current architecture estimate x0^_a
    is rounded to the nearest valid architecture and crops the canvas (entries outside it are not part of
    the state; in valid mode tokens outside it are masked from attention).

  The final codes are decoded to widths (the vocabulary, or a value codec's grid); ``valid`` says whether the
  raw rounding was already a valid token sequence. ``JointSample.summary()`` compares the sampled architectures with the training frequencies
  (total variation) and with drawing as many architectures from the training set itself.

Samplers: ``"ancestral"`` with ``steps = T`` is the paper's 1000-step sampler (fewer steps = the
respaced IDDPM sampler with learned variance); ``"ddim"`` is DDIM on a respaced schedule;
``"dpm++2m"``, ``"dpm++2m-sde"`` and ``"unipc"`` are diffusers' few-step solvers (``nnit.diffusion.solvers``:
no learned variance; temperature scales ``dpm++2m-sde``'s fresh noise, the ODE solvers accept only 1).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Mapping, Optional, Sequence

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
    schedule: str = "together"
    """How it was sampled: "arch-first" (p(a) from the prior mode, then p(w | a)) or "together" (t_a = t_w)."""
    train_freqs: dict[tuple[int, ...], float] = field(default_factory=dict)
    """The training architectures' frequencies (of networks), the reference distribution; empty if unknown."""
    freqs_source: str = ""
    """Where ``train_freqs`` come from: "train_arch_counts" (the checkpoint's counts) or "uniform" (its list)."""
    warning: str = ""
    """Why these samples may not cover the architecture distribution (empty when nothing is known against them)."""

    def summary(self) -> dict:
        n = len(self.archs)
        out = {"num": n, "valid": sum(self.valid), "novel": sum(self.novel), "distinct_archs": len(self.weights),
               "valid_frac": sum(self.valid) / max(n, 1), "novel_frac": sum(self.novel) / max(n, 1),
               "schedule": self.schedule}
        if self.train_freqs and n:
            out["tv_to_train"] = total_variation([a.hidden for a in self.archs], self.train_freqs)
            out["train_reference"] = training_draw_reference(self.train_freqs, n)
            out["reference_freqs"] = self.freqs_source
        if self.warning:
            out["warning"] = self.warning
        return out


def total_variation(sampled: Sequence[tuple[int, ...]], freqs: Mapping[tuple[int, ...], float]) -> float:
    """TV(p^, p) = 1/2 sum_a |p^(a) - p(a)| between the empirical distribution of ``sampled`` and ``freqs``
    (normalized here), over the union of their supports."""
    n = len(sampled)
    if n == 0:
        raise ValueError("total variation of an empty sample")
    total = float(sum(freqs.values()))
    counts = Counter(tuple(a) for a in sampled)
    keys = set(counts) | set(freqs)
    return 0.5 * sum(abs(counts.get(k, 0) / n - freqs.get(k, 0.0) / total) for k in keys)


def training_draw_reference(freqs: Mapping[tuple[int, ...], float], num: int, repeats: int = 2000, seed: int = 0) -> dict:
    """What drawing ``num`` architectures from the training set itself gives (the yardstick of joint sampling):
    over ``repeats`` draws, the mean and 5-95% range of the number of distinct architectures and of the TV distance
    to ``freqs``; novel = 0 by construction."""
    keys = list(freqs)
    p = torch.tensor([float(freqs[k]) for k in keys], dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    draws = torch.multinomial(p / p.sum(), num * repeats, replacement=True, generator=g).view(repeats, num)
    distinct, tv = [], []
    for row in draws.tolist():
        sampled = [keys[i] for i in row]
        distinct.append(len(set(row)))
        tv.append(total_variation(sampled, freqs))

    def stats(x: list[float]) -> dict:
        t = torch.tensor(x, dtype=torch.float64)
        return {"mean": float(t.mean()), "p05": float(t.quantile(0.05)), "p95": float(t.quantile(0.95))}

    return {"num": num, "repeats": repeats, "distinct_archs": stats(distinct), "tv_to_train": stats(tv)}


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
    def _layout(self, arch: Architecture) -> tuple[torch.Tensor, torch.Tensor]:
        """``arch``'s token positions (T, 3) and element mask (T, p*p) in this model's token mode."""
        zeros = WeightSet(arch, [torch.zeros(1, o, i) for o, i in arch.layer_shapes], [torch.zeros(1, o) for o, _ in arch.layer_shapes])
        return self.grid.positions(arch, self.mode), self.grid.tokenize(zeros, self.mode).element_mask

    def _sample_weights(
        self, archs: Sequence[Architecture], codes: torch.Tensor, method: SamplerName, steps: Optional[int], eta: float,
        generator: torch.Generator, clip: Optional[float], temperature: float, progress: bool,
    ) -> dict[tuple[int, ...], WeightSet]:
        """p(w | a) for a batch of (possibly different) architectures with clean codes (N, S, d_a): each
        network's tokens padded to the longest layout (padding tokens hidden from attention in valid mode).
        Returns the networks grouped by hidden widths, in the order of ``archs`` within each group."""
        layouts = {a: self._layout(a) for a in dict.fromkeys(archs)}
        T = max(pos.shape[0] for pos, _ in layouts.values())
        n, p2 = len(archs), self.grid.patch_size**2
        positions = torch.zeros(n, T, 3, dtype=torch.long)
        w_mask = torch.zeros(n, T, p2, dtype=torch.bool)
        for i, a in enumerate(archs):
            pos, em = layouts[a]
            positions[i, : pos.shape[0]], w_mask[i, : em.shape[0]] = pos, em
        self.model.check_positions(positions, codes.shape[1])
        dev = self.device
        positions, w_mask = positions.to(dev), w_mask.to(dev)  # (N, T, 3), (N, T, p*p)
        _, x_w = sample_loop(self.schedule(method, steps), self._denoiser(positions), codes.to(dev), tuple(w_mask.shape),
                             conditional=True, weight_mask=w_mask, method=method, eta=eta, generator=generator,
                             weight_clip=clip, temperature=temperature, progress=progress, steps=steps)
        out = {}
        for a, (pos, _) in layouts.items():
            idx = torch.tensor([i for i, b in enumerate(archs) if b == a])
            out[a.hidden] = self._finish(a, x_w[idx.to(dev), : pos.shape[0]], self.mode)
        return out

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
            outside = "outside the value codes' range" if self.codec.encoding == "value" else "outside the vocabulary"
            raise ArchitectureError(f"{err} (token mode {self.mode!r}: only 'valid' mode can condition on widths "
                                    f"{outside})") from None
        gen = torch.Generator(device=self.device).manual_seed(seed)
        codes = codes.unsqueeze(0).expand(num, -1, -1)  # (N, S, d_a)
        return self._sample_weights([arch] * num, codes, method, steps, eta, gen, self._clip(clip), temperature,
                                    progress)[arch.hidden]

    # ------------------------------------------------------------------ p(a, w)
    @property
    def arch_first(self) -> bool:
        """Whether joint sampling draws the architecture first: models trained with the prior mode (p_prior > 0)."""
        return self.config.p_prior > 0

    def _reference_freqs(self) -> tuple[dict[tuple[int, ...], float], str]:
        counts = self.data.get("train_arch_counts")
        if counts:
            return {tuple(int(w) for w in k.split(",")): float(v) for k, v in counts.items()}, "train_arch_counts"
        archs = self.data.get("train_archs") or []
        return {tuple(h): 1.0 for h in archs}, "uniform"

    def sample_architectures(
        self, num: int, depth: int, input_dim: int, output_dim: int, activation: str, method: SamplerName,
        steps: Optional[int], generator: torch.Generator, progress: bool = False,
    ) -> tuple[list[Architecture], list[bool]]:
        """``num`` architectures from the marginal p(a) of the prior mode: the architecture codes are denoised
        with t_w = T and no weight tokens (the weights carry no information there). Returns (nearest valid
        architectures, whether each raw rounding was valid)."""
        if not self.arch_first:
            raise ArchitectureError("this model was trained without the architecture-prior mode (p_prior = 0): "
                                    "it has no p(a) of its own")
        dev, p2, T = self.device, self.grid.patch_size**2, self.diffusion.num_timesteps
        no_tokens = torch.zeros(num, 0, 3, dtype=torch.long, device=dev)  # (N, 0, 3)
        t_w = torch.full((num,), T, dtype=torch.long, device=dev)
        par = self.config.parameterization

        def denoise(x_a, x_w, t_a, _t_w, _mask):
            out_a, v_a, out_w, v_w = self.model(x_a, x_w, no_tokens, t_a, t_w, None, None)
            return self.diffusion.eps_from_output(out_a.float(), x_a, t_a, par), v_a, out_w, v_w

        x_a = torch.zeros(num, depth + 2, self.codec.dim, device=dev)  # shape only: starts from noise
        x_a, _ = sample_loop(self.schedule(method, steps), denoise, x_a, (num, 0, p2), conditional=False,
                             weight_mask=torch.zeros(num, 0, p2, dtype=torch.bool, device=dev), method=method,
                             generator=generator, progress=progress, steps=steps)
        archs, valid, _ = self.codec.decode(x_a, input_dim, output_dim, activation)
        return archs, valid

    @torch.no_grad()
    def joint(
        self, num: int = 100, depth: int = 4, input_dim: Optional[int] = None, output_dim: Optional[int] = None,
        activation: Optional[str] = None, method: SamplerName = "ddim", steps: Optional[int] = 50, eta: float = 0.0,
        seed: int = 0, clip: Optional[float] | Literal["data"] = "data", temperature: float = 1.0, progress: bool = False,
    ) -> JointSample:
        """Sample ``num`` (architecture, weights) pairs of ``depth`` hidden layers from p(a, w).

        Architecture-first (models with the prior mode): a ~ p(a), then w ~ p(w | a) for all samples in one
        batch. Otherwise both modalities are denoised together (t_a = t_w) over the widest layout of that depth."""
        input_dim = input_dim or self.data.get("input_dim")
        output_dim = output_dim or self.data.get("output_dim")
        activation = activation or self.data.get("activation") or "tanh"
        if not input_dim or not output_dim:
            raise ArchitectureError("joint sampling needs the task's input and output dims (not stored in this checkpoint)")
        widest = Architecture(input_dim, (max(self.codec.widths),) * depth, output_dim, activation)
        self.grid.check_fits(widest)
        self.model.check_positions(self.grid.positions(widest, self.mode), depth + 2)
        gen = torch.Generator(device=self.device).manual_seed(seed)
        if self.arch_first:
            archs, valid = self.sample_architectures(num, depth, input_dim, output_dim, activation, method, steps, gen,
                                                     progress)
            codes = torch.stack([self.codec.encode(a) for a in archs])  # (N, S, d_a)
            weights = self._sample_weights(archs, codes, method, steps, eta, gen, self._clip(clip), temperature, progress)
            schedule = "arch-first"
        else:
            archs, valid, weights = self._joint_together(num, widest, method, steps, eta, gen, clip, temperature, progress)
            schedule = "together"
        seen = {tuple(h) for h in self.data.get("train_archs", [])}
        freqs, source = self._reference_freqs()
        warning = ("this valid-token model was trained without the architecture-prior mode (p_prior = 0), so its "
                   "architectures and weights were denoised together over one token layout, which tells the model the "
                   "architecture: expect few distinct architectures" if schedule == "together" and self.mode == "valid" else "")
        return JointSample(archs, valid, [a.hidden not in seen for a in archs], dict(sorted(weights.items())), schedule,
                           freqs, source, warning)

    def _joint_together(
        self, num: int, widest: Architecture, method: SamplerName, steps: Optional[int], eta: float,
        gen: torch.Generator, clip: Optional[float] | str, temperature: float, progress: bool,
    ) -> tuple[list[Architecture], list[bool], dict[tuple[int, ...], WeightSet]]:
        """Both modalities denoised together (t_a = t_w, the paper's joint mode) over ``widest``'s layout. At each
        step the current architecture estimate x0^_a is rounded to the nearest valid architecture and crops the
        canvas (entries outside it are not part of the state; in valid mode tokens outside it are masked from
        attention)."""
        input_dim, output_dim, activation = widest.input_dim, widest.output_dim, widest.activation
        pos = self.grid.positions(widest, self.mode)  # (T, 3): every patch any architecture of this depth can use
        dev = self.device
        positions = pos.unsqueeze(0).expand(num, -1, -1).to(dev)  # (N, T, 3)
        full = self._layout_emask(widest, pos).unsqueeze(0).expand(num, -1, -1).to(dev)  # (N, T, p*p)

        def weight_mask(x0_a: Optional[torch.Tensor]) -> torch.Tensor:
            if x0_a is None:
                return full
            archs, _, _ = self.codec.decode(x0_a, input_dim, output_dim, activation)
            return torch.stack([self._layout_emask(a, pos) for a in archs]).to(dev)  # (N, T, p*p)

        x_a = torch.zeros(num, widest.depth + 2, self.codec.dim, device=dev)  # shape only: joint mode starts from noise
        x_a, x_w = sample_loop(self.schedule(method, steps), self._denoiser(positions), x_a, tuple(full.shape),
                               conditional=False, weight_mask=weight_mask, method=method, eta=eta, generator=gen,
                               weight_clip=self._clip(clip), temperature=temperature,
                               progress=progress, steps=steps)
        archs, valid, _ = self.codec.decode(x_a, input_dim, output_dim, activation)
        raw = self.grid.assemble(widest, x_w.cpu(), self.mode)  # type: ignore[arg-type]  # crop below per arch
        weights = {}
        for h in sorted({a.hidden for a in archs}):
            idx = torch.tensor([i for i, a in enumerate(archs) if a.hidden == h])
            arch = Architecture(input_dim, h, output_dim, activation)
            ws = WeightSet(arch, [w[idx][:, :o, :i] for w, (o, i) in zip(raw.weights, arch.layer_shapes)],
                           [b[idx][:, :o] for b, (o, _) in zip(raw.biases, arch.layer_shapes)])
            ws.check_finite()
            weights[h] = self.normalizer.invert(ws) if self.normalizer is not None else ws
        return archs, valid, weights


__all__ = ["JointSample", "NNiTSampler", "GridError"]
