"""The process-pool plumbing shared by the simulator worker pools.

:class:`WorkerPool` spawns W processes, each running ``target(wid, *args, inbox, outbox)`` with its
own inbox queue and one outbox shared by all. A worker first answers ``("ready", wid)`` or
``("error", wid, text)``; afterwards any ``("error", wid, text)`` it sends makes :meth:`WorkerPool._get`
raise ``RuntimeError(text)``. ``("stop",)`` ends a worker. Used by the evaluation harness
(:class:`nnit.eval.harness.CPUEvaluator`), the PPO collector (:class:`nnit.experts.ppo.CPURolloutPool`)
and the DAgger collector (:class:`nnit.ghn.collect.DaggerCollector`). :func:`weights_message` /
:func:`weights_from_message` carry a :class:`~nnit.weights.mlp.WeightSet` to a worker as plain arrays.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np
import torch

from nnit.weights.architecture import Architecture
from nnit.weights.mlp import WeightSet


def _start_method() -> str:
    """``fork`` (fast, no re-import, works from scripts without a ``__main__`` guard) unless this
    process already initialized SAPIEN / Vulkan or CUDA (e.g. a GHN training on the GPU), which must not be
    forked: then ``spawn``."""
    import multiprocessing as mp
    import sys

    if "fork" in mp.get_all_start_methods() and "sapien" not in sys.modules and not torch.cuda.is_initialized():
        return "fork"
    return "spawn"


def _worker_entry(target: Callable[..., None], *args) -> None:
    """A worker ignores Ctrl-C: the terminal sends SIGINT to the whole process group, and the parent
    decides (a training loop checkpoints and then closes the pool; anything else exits, and daemon
    workers end with it)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    target(*args)


def weights_message(ws: WeightSet) -> tuple[dict, list[np.ndarray]]:
    """A weight set as ``(arch_dict, [W_0, b_0, W_1, b_1, ...])`` float32 CPU arrays (cheap to pickle)."""
    arrays = []
    for w, b in zip(ws.weights, ws.biases):
        arrays += [w.detach().cpu().float().numpy(), b.detach().cpu().float().numpy()]
    return ws.arch.to_dict(), arrays


def weights_from_message(arch_dict: dict, arrays: list[np.ndarray]) -> WeightSet:
    """Inverse of :func:`weights_message`."""
    arch = Architecture.from_dict(arch_dict)
    t = [torch.from_numpy(a) for a in arrays]
    return WeightSet(arch, t[0::2], t[1::2])


def default_num_workers() -> int:
    """One worker per core available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class WorkerPool:
    """W daemon worker processes with one inbox each and a shared outbox.

    ``target`` must be a picklable top-level function ``target(wid, *args, inbox, outbox)``;
    ``label`` names the workers in error messages ("evaluation", "PPO").
    """

    def __init__(self, num_workers: int, target: Callable[..., None], args: tuple = (), label: str = "worker"):
        self.num_workers = int(num_workers)
        self._target, self._args, self._label = target, tuple(args), label
        self._procs: list = []
        self._inboxes: list = []
        self._outbox: Any = None

    def start(self) -> "WorkerPool":
        """Start the workers and wait until each is ready; on any failure close them and raise."""
        if self._procs:
            return self
        import multiprocessing as mp

        ctx = mp.get_context(_start_method())
        self._outbox = ctx.Queue()
        for wid in range(self.num_workers):
            inbox = ctx.Queue()
            p = ctx.Process(target=_worker_entry, args=(self._target, wid, *self._args, inbox, self._outbox), daemon=True)
            p.start()
            self._procs.append(p)
            self._inboxes.append(inbox)
        try:
            for _ in range(self.num_workers):
                self._get()  # ("ready", wid); an ("error", ...) raises
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Send ``("stop",)`` to every worker, join them (terminate those still alive after 30 s)."""
        for q in self._inboxes:
            q.put(("stop",))
        for p in self._procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
        self._procs, self._inboxes, self._outbox = [], [], None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _get(self, timeout: float = 600.0):
        """The next message from any worker. Raises RuntimeError for an ``("error", wid, text)``
        message or when workers died, TimeoutError after ``timeout`` s without a message."""
        import queue

        left = timeout
        while True:
            try:
                msg = self._outbox.get(timeout=5.0)
            except queue.Empty:
                dead = [i for i, p in enumerate(self._procs) if not p.is_alive()]
                if dead:
                    codes = [self._procs[i].exitcode for i in dead]
                    raise RuntimeError(
                        f"{self._label} worker(s) {dead} died (exit codes {codes}); with the 'spawn' start method a "
                        "calling script needs an `if __name__ == '__main__':` guard"
                    ) from None
                left -= 5.0
                if left <= 0:
                    raise TimeoutError(f"no message from the {self._label} workers for {timeout:g} s") from None
                continue
            if msg[0] == "error":
                raise RuntimeError(msg[2])
            return msg
