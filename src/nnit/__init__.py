"""nnit — Neural Network Diffusion Transformers (arXiv 2603.00180).

Pipeline (one subpackage per stage):

    tasks/      ManiSkill3 robot tasks and MNIST-format image classification
    experts/    PPO experts and cheaper teachers (obs -> action)
    ghn/        graph hypernetwork with a CNN decoder, DAgger distillation, aligned dataset
    weights/    architectures, batched functional MLPs, patch tokenization, normalization
    diffusion/  the NNiT diffusion transformer, Gaussian diffusion, MoNL training, samplers
    baselines/  D2NWG and SANE
    eval/       the evaluation harness and the paper's top-k protocol

Imports go one way, from the command line down to the base modules (``weights``, ``checkpoint``,
``config``, ``stopping``, ``fileio``): cli > reproduce > api > baselines > diffusion > analysis > ghn >
experts > eval > tasks > base; the contract is ``[tool.importlinter]`` in pyproject.toml.
"""

__version__ = "0.1.0"
