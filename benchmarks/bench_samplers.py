"""Sampler quality vs speed for a trained NNiT: top-k success (or accuracy) and sampling time per
(sampler, steps), all on the same architecture, networks and evaluation seeds.

    .venv/bin/python benchmarks/bench_samplers.py --checkpoint runs/cpu/PushCube-v1/nnit --task PushCube-v1 \
        --arch 32,16,64,32 --num 32 --out results/benchmarks/bench_samplers_pushcube.json

Each setting runs ``nnit generate --evaluate`` (so the numbers are exactly the CLI's) and records the
"sampled and assembled in X s" time and the top-k row. ``--settings`` picks other (sampler, steps,
temperature) triples, e.g. the noise-temperature sweep of the README:

    .venv/bin/python benchmarks/bench_samplers.py --checkpoint runs/cpu/PickCube-v1/nnit --task PickCube-v1 \
        --arch 16,16,16,32 --settings ancestral:1000:1 ancestral:1000:0.5 ancestral:1000:0 \
        --out results/benchmarks/bench_temperature_pickcube.json
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

# benchmarks/_results.py: a script's own folder is on sys.path
from _results import write_results

SETTINGS = ("ddim:50", "ddim:250", "ancestral:50", "ancestral:250", "ancestral:1000")


def parse_setting(text: str) -> tuple[str, int, float]:
    """'ancestral:1000[:0.5]' -> ('ancestral', 1000, 0.5); the temperature defaults to 1."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or parts[0] not in ("ancestral", "ddim"):
        raise argparse.ArgumentTypeError(f"setting {text!r} is not SAMPLER:STEPS[:TEMPERATURE] with SAMPLER ancestral or ddim")
    try:
        return parts[0], int(parts[1]), float(parts[2]) if len(parts) == 3 else 1.0
    except ValueError:
        raise argparse.ArgumentTypeError(f"setting {text!r}: STEPS must be an integer and TEMPERATURE a number") from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--task", required=True)
    ap.add_argument("--arch", default="32,16,64,32")
    ap.add_argument("--num", type=int, default=32)
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--eval-seed", type=int, default=1000)
    ap.add_argument("--settings", nargs="+", type=parse_setting, default=[parse_setting(x) for x in SETTINGS],
                    help="SAMPLER:STEPS[:TEMPERATURE] triples (default: %s)" % " ".join(SETTINGS))
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--out", type=Path, default=Path("results/benchmarks/bench_samplers.json"))
    ap.add_argument("--tmp", type=Path, default=Path("runs/bench_samplers"))
    a = ap.parse_args()
    rows = []
    for sampler, steps, temperature in a.settings:
        out = a.tmp / f"{sampler}_{steps}_t{temperature:g}"
        cmd = [sys.executable, "-m", "nnit.cli", "generate", "--task", a.task, "--checkpoint", a.checkpoint, "--arch", a.arch,
               "--num", str(a.num), "--sampler", sampler, "--steps", str(steps), "--evaluate", "--episodes", str(a.episodes),
               "--top-k", str(a.top_k), "--eval-seed", str(a.eval_seed), "--out", str(out), "--no-progress",
               "--temperature", str(temperature)]
        cmd += ["--threads", str(a.threads)] if a.threads else []
        cmd += ["--workers", str(a.workers)] if a.workers else []
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"bench_samplers: {' '.join(cmd)} failed (exit {done.returncode}):\n{done.stderr.strip()[-2000:]}")
        text = done.stdout
        secs = float(re.search(r"sampled and assembled in ([0-9.]+) s", text).group(1))
        res = json.loads((out / "results.json").read_text())
        top = res["top_k"][0]
        rows.append({"sampler": sampler, "steps": steps, "temperature": temperature, "sample_seconds": secs, "mean": top["mean"],
                     "std_between": top["std_between"], "success_rate": top.get("success_rate")})
        quality = (f"accuracy {100 * top['mean']:.1f}%" if top.get("metric") == "accuracy"
                   else f"success {100 * top['success_rate']:.0f}%")
        print(f"{sampler:>9} {steps:>5} steps, temperature {temperature:g}: {secs:7.2f} s  top-{a.top_k} {top['mean']:.3f} +- {top['std_between']:.3f}"
              f"  {quality}", flush=True)
    write_results(a.out, a, rows)


if __name__ == "__main__":
    main()
