"""nnit — Neural Network Diffusion Transformers (arXiv 2603.00180).

The Python API (:mod:`nnit.api`), re-exported here::

    import nnit
    result = nnit.generate("zoo/nnit_PushCube-v1.safetensors", task="PushCube-v1", arch="32,32,16,64", num=8)
    table = nnit.evaluate("PushCube-v1", result, episodes=10, seed=1000)

Pipeline (one subpackage per stage, each layer importing only the ones above it in this list):

    weights/    architectures, batched functional MLPs, patch tokenization, normalization
    tasks/      ManiSkill3 robot tasks and MNIST-format image classification
    eval/       the evaluation harness and the paper's top-k protocol
    experts/    PPO experts and cheaper teachers (obs -> action)
    ghn/        graph hypernetwork with a CNN decoder, DAgger distillation, aligned dataset
    analysis/   structural alignment and memorization studies
    diffusion/  the NNiT diffusion transformer, Gaussian diffusion, MoNL training, samplers
    baselines/  D2NWG and SANE
    api.py      generate / evaluate / train
    reproduce/  every stage of the paper's pipeline and REPORT.md
    cli/        the ``nnit`` command, a thin wrapper over the API

Imports go one way, from the command line down to the base modules (``weights``, ``checkpoint``,
``config``, ``stopping``, ``fileio``): cli > reproduce > api > baselines > diffusion > analysis > ghn >
experts > eval > tasks > base; the contract is ``[tool.importlinter]`` in pyproject.toml.
"""

__version__ = "0.1.0"

_API = ("APIError", "EvalTable", "GenerationResult", "TrainOverrides", "TrainRun", "evaluate", "generate", "train")


def __getattr__(name: str):
    """``nnit.generate`` etc. import :mod:`nnit.api` (and torch) on first use, so ``import nnit`` stays cheap."""
    if name in _API:
        from nnit import api

        return getattr(api, name)
    raise AttributeError(f"module 'nnit' has no attribute {name!r}")


__all__ = list(_API)
