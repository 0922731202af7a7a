"""NNiT: the diffusion transformer, Gaussian diffusion with MoNL, training and sampling.

* ``gaussian``   — schedule, q(x_t|x_0), posterior, learned variance, hybrid loss, MoNL, samplers
* ``arch_codes`` — architecture tokens as fixed codes for continuous diffusion (+-1 per vocabulary width, or a
  width by its value), nearest-code decoding
* ``model``      — the NNiT DiT and its size presets (``MODEL_PRESETS``)
* ``train``      — ``TrainConfig`` / ``TRAIN_PRESETS``, length-bucketed data, ``train()``, NNiT's view of the
  one checkpoint format (``nnit.checkpoint``)
* ``sample``     — ``NNiTSampler``: p(w|a) and p(a,w), assembly into ``WeightSet``s
* ``command``    — the ``nnit train`` and ``nnit generate`` subcommands
"""

from nnit.diffusion.arch_codes import ArchCodec, ValueArchCodec
from nnit.diffusion.gaussian import GaussianDiffusion, sample_monl_timesteps
from nnit.diffusion.model import MODEL_PRESETS, NNiT, NNiTConfig, nnit_config

__all__ = ["ArchCodec", "ValueArchCodec", "GaussianDiffusion", "MODEL_PRESETS", "NNiT", "NNiTConfig", "nnit_config", "sample_monl_timesteps"]
