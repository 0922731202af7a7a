"""Lossless stopping (:mod:`nnit.stopping`): Ctrl-C / SIGTERM finishes the step or iteration in progress,
checkpoints it, and the same command resumes there — for the GHN and baseline trainers and the CLI's exit
status (``nnit train`` itself: tests/test_nnit_train.py)."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from nnit.checkpoint import load_checkpoint
from nnit.stopping import TrainingStopped, call_forwarding_signals, stop_on_signals


def sigterm_when_logged(log: Path, lines: int) -> None:
    """From a thread: send this process SIGTERM once ``log`` holds ``lines`` lines (the loop is running)."""

    def watch():
        while not (log.exists() and log.read_text().count("\n") >= lines):
            time.sleep(0.005)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()


def logged(log: Path, key: str) -> list[int]:
    return [json.loads(line)[key] for line in log.read_text().splitlines()]


def test_first_signal_requests_a_stop_second_interrupts_handlers_restored():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with stop_on_signals() as stop:
        assert stop.signum is None
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signum == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    assert str(TrainingStopped(7, Path("ck"), signal.SIGINT, unit="iteration")) == "stopped by SIGINT at iteration 7; checkpoint ck"


def test_a_signal_no_inner_loop_acted_on_reaches_the_enclosing_handler():
    """A signal after a training loop's last step (its stop request unused) is not lost: an enclosing
    stop_on_signals (nnit reproduce's) gets it when the loop's block ends; without one, nothing happens."""
    from nnit.stopping import Stopped

    def stop_now(signum):
        raise Stopped("outer", signum)

    with pytest.raises(Stopped, match="outer"):
        with stop_on_signals(on_signal=stop_now):
            with stop_on_signals() as inner:
                os.kill(os.getpid(), signal.SIGTERM)
                assert inner.signum == signal.SIGTERM  # the loop saw it but finished anyway
    with stop_on_signals() as alone:  # standalone: the request stays a request
        os.kill(os.getpid(), signal.SIGTERM)
    assert alone.signum == signal.SIGTERM
    with stop_on_signals(on_signal=stop_now):  # an inner block that acted on it (raised) is not passed on twice
        with pytest.raises(TrainingStopped):
            with stop_on_signals():
                os.kill(os.getpid(), signal.SIGTERM)
                raise TrainingStopped(3, Path("ck"), signal.SIGTERM)


def _echo_worker(wid, inbox, outbox):
    outbox.put(("ready", wid))
    while (msg := inbox.get())[0] != "stop":
        outbox.put(("echo", wid, msg[1]))


def test_workers_ignore_ctrl_c_so_the_parent_can_finish_its_step():
    """The terminal sends Ctrl-C to the whole process group; simulator workers must survive it."""
    from nnit.eval.workers import WorkerPool

    with WorkerPool(1, _echo_worker, label="test") as pool:
        os.kill(pool._procs[0].pid, signal.SIGINT)
        time.sleep(0.2)
        assert pool._procs[0].is_alive()
        pool._inboxes[0].put(("ping", 5))
        assert pool._get(timeout=10) == ("echo", 0, 5)


def test_baseline_training_stops_on_sigterm_and_resumes(tmp_path):
    from nnit.baselines.d2nwg import D2NWG_PRESETS
    from nnit.baselines.train import train_d2nwg
    from test_baselines import _sets  # noqa: E402  (tests/ is on sys.path)

    cfg = replace(D2NWG_PRESETS["tiny"], vae_steps=50_000, diffusion_steps=50_000)
    sets = _sets(n=4)
    log = tmp_path / "train_log.jsonl"
    sigterm_when_logged(log, 3)  # the loop logs every 10 steps
    with pytest.raises(TrainingStopped) as stopped:
        train_d2nwg(cfg, sets, tmp_path, progress=False)
    step = stopped.value.step
    assert 30 <= step < 100_000 and load_checkpoint(tmp_path).step == step
    _, rest = train_d2nwg(cfg, sets, tmp_path, progress=False, stop_after=5)
    assert (rest.start_step, rest.end_step) == (step, step + 5)
    steps = logged(log, "step")
    assert steps == sorted(set(steps)) and steps[-1] == step + 5


def test_ghn_training_stops_on_sigterm_checkpoints_the_iteration_and_the_cli_resumes(tmp_path, capsys):
    from nnit.cli import main

    out = tmp_path / "ghn"
    args = ["train-ghn", "--task", "FashionMNIST", "--preset", "tiny", "--out", str(out), "--no-progress"]
    log = out / "train_log.jsonl"
    sigterm_when_logged(log, 2)
    with pytest.raises(SystemExit) as exit_:
        main(args + ["--iterations", "100000"])
    assert exit_.value.code == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert "stopped by SIGTERM at iteration" in err and "rerun the same command to resume" in err
    it = load_checkpoint(out / "ghn.safetensors").step
    assert it >= 2 and logged(log, "iteration") == list(range(1, it + 1))  # the checkpoint holds every logged iteration
    main(args + ["--iterations", str(it + 1)])
    assert load_checkpoint(out / "ghn.safetensors").step == it + 1
    assert logged(log, "iteration") == list(range(1, it + 2))


CHILD = """
import signal, sys, time
signal.signal(signal.SIGTERM, {handler})
print("ready", flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("obeys", [True, False])
def test_a_child_command_gets_the_first_signal_and_a_second_one_kills_it(tmp_path, obeys):
    """``nnit reproduce``'s stages: the first SIGTERM is forwarded once (the child saves and exits), a
    second kills a child that did not stop."""
    out = tmp_path / "child.log"
    handler = "lambda s, f: sys.exit(143)" if obeys else "signal.SIG_IGN"
    sigterm_when_logged(out, 1)
    t0 = time.perf_counter()
    with out.open("w") as fh:
        if obeys:
            assert call_forwarding_signals([sys.executable, "-c", CHILD.format(handler=handler)], stdout=fh) == (143, signal.SIGTERM)
        else:
            threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM)).start()  # the second signal
            with pytest.raises(KeyboardInterrupt):
                call_forwarding_signals([sys.executable, "-c", CHILD.format(handler=handler)], stdout=fh)
    assert time.perf_counter() - t0 < 30  # neither waited for the child's sleep
