"""Data-parallel helpers on ``torch.distributed``: start from torchrun's environment, ask the rank, average.

``torchrun --nproc_per_node=N -m nnit train ...`` starts N processes with ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK`` set; :func:`init_from_env` (called by the trainers) then joins the process group (NCCL on
CUDA, gloo on CPU) and picks this process's GPU. Without those variables (or with ``WORLD_SIZE=1``)
everything here is a no-op answering rank 0 of 1, so single-process code needs no special case.

Data parallelism in this project is exact: every rank draws the same global batch (and noise) from the same
generator and computes the loss of its slice (:func:`shard`); :func:`average_gradients` averages the
gradients, so the update equals the one of a single process that sees the whole batch.

:func:`torch_device` turns a command's ``--device cpu|cuda`` choice into a torch device (the stages that pick
their device by a flag rather than by :func:`default_device`: GHN training and NNiT sampling).
"""

from __future__ import annotations

import atexit
import os
from typing import Iterable, Sequence

import torch

from nnit.errors import NNiTError


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if is_distributed() else 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0")) if is_distributed() else 0


def is_main() -> bool:
    """True on the process that writes checkpoints, logs, TensorBoard and the progress bar (rank 0)."""
    return rank() == 0


def init_from_env() -> bool:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1); True when running distributed.

    Idempotent. NCCL when CUDA is available (each process on GPU ``LOCAL_RANK``), gloo otherwise. The group
    is destroyed when the process exits."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return False
    if not dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo")
        atexit.register(cleanup)
    return is_distributed()


class DeviceError(NNiTError):
    """An unknown device name, or one this machine does not have (``--device cuda`` without a CUDA device)."""


def torch_device(name: str | torch.device) -> torch.device:
    """``"cpu"`` or ``"cuda"`` (or a torch device) as a torch device. Raises :class:`DeviceError` for another name,
    and for a CUDA device when torch sees none."""
    if not isinstance(name, torch.device):
        if name not in ("cpu", "cuda"):
            raise DeviceError(f"unknown device {name!r}; choose cpu or cuda")
        name = torch.device(name)
    if name.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name} asked for, but torch sees no CUDA device on this machine (use --device cpu)")
    return name


def default_device() -> torch.device:
    """This process's device: its own GPU under torchrun, else CUDA when available, else the CPU."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank()) if is_distributed() else torch.device("cuda")


def cleanup() -> None:
    """Leave the process group (no-op when none)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    import torch.distributed as dist

    if is_distributed():
        dist.barrier()


def shard(n: int) -> slice:
    """This rank's rows of a global batch of ``n`` (``n`` must split evenly over the ranks)."""
    w, r = world_size(), rank()
    if n % w:
        raise NNiTError(f"a global batch of {n} does not split evenly over {w} processes")
    return slice(r * (n // w), (r + 1) * (n // w))


def _comm_device() -> torch.device:
    import torch.distributed as dist

    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def average_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """All-reduce the gradients of ``params`` to their mean over the ranks (one flat buffer per dtype)."""
    import torch.distributed as dist

    if not is_distributed():
        return
    grads = [p.grad for p in params if p.grad is not None]
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for g in grads:
        by_dtype.setdefault(g.dtype, []).append(g)
    for group in by_dtype.values():
        flat = torch.cat([g.reshape(-1) for g in group]).to(_comm_device())  # NCCL reduces CUDA tensors only
        dist.all_reduce(flat)
        flat /= world_size()
        offset = 0
        for g in group:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()


def mean_over_ranks(values: Sequence[float]) -> list[float]:
    """The mean of each value over the ranks (the values themselves when not distributed)."""
    import torch.distributed as dist

    if not is_distributed() or not values:
        return list(values)
    t = torch.tensor(list(values), dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    return (t / world_size()).tolist()


def gather_rows(x: torch.Tensor) -> torch.Tensor:
    """Every rank's ``x`` (same shape on all) concatenated along dim 0, differentiable: the gradient of a loss
    that every rank computes identically from the result reaches each rank's own rows, summed over the ranks."""
    if not is_distributed():
        return x
    return _GatherRows.apply(x)


class _GatherRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        xc = x.detach().contiguous().to(_comm_device())
        parts = [torch.empty_like(xc) for _ in range(world_size())]
        dist.all_gather(parts, xc)
        return torch.cat(parts).to(x.device)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        total = grad.contiguous().to(_comm_device(), copy=True)
        dist.all_reduce(total)
        return total[shard(total.shape[0])].to(grad.device)


def any_rank(flag: bool) -> bool:
    """True when ``flag`` is true on any rank (e.g. a stop request seen by one process)."""
    import torch.distributed as dist

    if not is_distributed():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)
