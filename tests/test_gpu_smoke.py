"""scripts/gpu_smoke.sh: the GPU smoke check. Its syntax and arguments, the clean skip on a machine without CUDA,
and (slow) its CPU rehearsal, which runs every check with the cpu backend to test the script itself. On a CUDA
machine the real run takes minutes: run it by hand (docs/reference/cli.md, "GPU smoke check")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_smoke.sh"
CHECKS = ["expert", "ghn", "train", "generate", "eval"]


def run_script(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The script with this interpreter (NNIT_PYTHON) and this checkout's sources first on the path."""
    env = {**os.environ, "NNIT_PYTHON": sys.executable,
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_syntax():
    proc = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_bad_arguments_exit_2():
    proc = run_script("--only", "expert,nope")
    assert proc.returncode == 2 and "unknown check 'nope'" in proc.stderr
    proc = run_script("--bogus")
    assert proc.returncode == 2 and "unknown argument --bogus" in proc.stderr
    proc = run_script("--help")
    assert proc.returncode == 0 and "--cpu" in proc.stdout and all(c in proc.stdout for c in CHECKS)


@pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA the script runs its GPU checks (minutes): run it by hand")
def test_without_cuda_it_skips_cleanly(tmp_path):
    out = tmp_path / "smoke.json"
    proc = run_script("--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (line,) = proc.stdout.splitlines()
    assert line.startswith("gpu_smoke: SKIP: no CUDA device found")
    assert all(f"{c} (nnit " in line for c in CHECKS) and "--backend cuda" in line and "--device cuda" in line
    assert json.loads(out.read_text()) == {"status": "skipped", "reason": "no CUDA device", "checks": CHECKS}
    proc = run_script("--only", "train,eval")
    assert proc.returncode == 0 and "2 checks" in proc.stdout and "ghn (" not in proc.stdout


@pytest.mark.slow
@pytest.mark.sim
def test_cpu_rehearsal_passes_every_check(tmp_path):
    out = tmp_path / "smoke.json"
    proc = run_script("--cpu", "--out", str(out), timeout=2400)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert [ln.split()[:2] for ln in lines if ln.startswith(("PASS", "FAIL"))] == [["PASS", c] for c in CHECKS]
    summary = json.loads(out.read_text())
    assert summary["status"] == "pass" and summary["mode"] == "cpu"
    assert [(c["name"], c["status"]) for c in summary["checks"]] == [(c, "PASS") for c in CHECKS]
    assert all(c["seconds"] > 0 and c["command"] for c in summary["checks"])
    assert "autocast None" in summary["checks"][2]["detail"]  # the rehearsal trains in float32
    assert f"summary: {out}" in lines[-1]
