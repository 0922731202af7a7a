"""Lossless stopping of long training loops (``nnit train``, ``train-ghn``, ``train-baseline``, ``train-expert``).

Inside :func:`stop_on_signals` the first Ctrl-C (SIGINT) or SIGTERM only records a stop request; the
loop finishes the step (or GHN iteration) in progress, checkpoints it and raises
:class:`TrainingStopped`, so rerunning the same command resumes exactly there. A second signal raises
KeyboardInterrupt at once. The CLI turns any :class:`Stopped` into a one-line message and the
conventional exit status 128 + signal number (130 for Ctrl-C, 143 for SIGTERM).

:func:`call_forwarding_signals` runs such a command as a child process: the child gets the first
signal once, checkpoints and exits, and the caller stops after it (:class:`Stopped`).
"""

from __future__ import annotations

import signal
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence


class Stopped(Exception):
    """A command stopped by SIGINT / SIGTERM after saving what it had; rerunning it resumes."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


class TrainingStopped(Stopped):
    """Training was stopped by a signal after a completed step (or iteration), which is checkpointed."""

    def __init__(self, step: int, checkpoint: Path, signum: int, unit: str = "step") -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name} at {unit} {step}; checkpoint {checkpoint}", signum)
        self.step, self.checkpoint = step, checkpoint


class StopRequest:
    """Set by the signal handler; the training loop polls :attr:`signum` after each step."""

    signum: Optional[int] = None


@contextmanager
def stop_on_signals(on_signal: Optional[Callable[[int], None]] = None) -> Iterator[StopRequest]:
    """While the block runs, SIGINT / SIGTERM request a stop instead of killing the process; the previous
    handlers come back afterwards. ``on_signal(signum)`` runs after the request is recorded (it may raise, e.g.
    :class:`Stopped`, to stop at once). A second signal raises KeyboardInterrupt. When the block ends normally
    with a request nobody acted on (a signal after a loop's last step) and an enclosing block of this kind is
    listening, the signal is passed on to it. Outside the main thread, where Python cannot install handlers,
    nothing changes (the request is never set)."""
    req = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield req
        return

    def handler(signum, frame):
        if req.signum is not None:
            raise KeyboardInterrupt
        req.signum = signum
        if on_signal is not None:
            on_signal(signum)

    handler.nnit_stop = True  # type: ignore[attr-defined]  # marks the handlers installed here
    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield req
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if req.signum is not None and getattr(old[req.signum], "nnit_stop", False):  # ended normally, request pending
        signal.raise_signal(req.signum)


def call_forwarding_signals(args: Sequence[str], **popen_kwargs) -> tuple[int, Optional[int]]:
    """Run ``args`` to completion and return ``(exit status, signal received or None)``.

    The child runs in its own session, so a terminal's Ctrl-C reaches only this process, which passes the
    first SIGINT / SIGTERM on to the child once (a training command then checkpoints its step and exits) and
    keeps waiting for it; a second signal kills the child and raises KeyboardInterrupt."""
    with stop_on_signals() as stop:
        proc = subprocess.Popen(list(args), start_new_session=True, **popen_kwargs)
        try:
            forwarded = False
            while True:
                try:
                    return proc.wait(timeout=0.2), stop.signum
                except subprocess.TimeoutExpired:
                    pass
                if stop.signum is not None and not forwarded:
                    proc.send_signal(stop.signum)
                    forwarded = True
        except BaseException:
            proc.kill()
            proc.wait()
            raise
