"""Sampler quality vs speed for a trained NNiT: top-k success (or accuracy) and sampling time per
(sampler, steps), all on the same architecture, networks and evaluation seeds.

    .venv/bin/python benchmarks/bench_samplers.py --checkpoint runs/cpu/PushCube-v1/nnit --task PushCube-v1 \
        --arch 32,16,64,32 --num 32 --out results/benchmarks/bench_samplers_pushcube.json

Each setting calls :func:`nnit.api.generate`, :func:`nnit.api.evaluate` and :func:`nnit.api.save_generation` in
this process (what ``nnit generate --evaluate`` runs, so the numbers are exactly the CLI's; its files go to
``--tmp``) and records the sampling time and the top-k row. ``--settings`` picks other (sampler, steps,
temperature) triples, e.g. the noise-temperature sweep of the README:

    .venv/bin/python benchmarks/bench_samplers.py --checkpoint runs/cpu/PickCube-v1/nnit --task PickCube-v1 \
        --arch 16,16,16,32 --settings ancestral:1000:1 ancestral:1000:0.5 ancestral:1000:0 \
        --out results/benchmarks/bench_temperature_pickcube.json
"""

from __future__ import annotations

import argparse
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
    from nnit import api

    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    rows = []
    for sampler, steps, temperature in a.settings:
        out = a.tmp / f"{sampler}_{steps}_t{temperature:g}"
        try:
            gen = api.generate(a.checkpoint, a.task, a.arch, a.num, sampler=sampler, steps=steps, temperature=temperature)
            table = api.evaluate(a.task, gen, a.episodes, a.eval_seed, top_k=a.top_k, workers=a.workers)
        except api.APIError as err:
            sys.exit(f"bench_samplers: {sampler}:{steps}:{temperature:g}: {err}")
        api.save_generation(gen, out, table)
        top = table.top_k
        rows.append({"sampler": sampler, "steps": steps, "temperature": temperature, "sample_seconds": round(gen.seconds, 2),
                     "mean": top.mean, "std_between": top.std_between, "success_rate": top.success_rate})
        quality = (f"accuracy {100 * top.mean:.1f}%" if top.metric == "accuracy" else f"success {100 * top.success_rate:.0f}%")
        print(f"{sampler:>9} {steps:>5} steps, temperature {temperature:g}: {gen.seconds:7.2f} s  top-{a.top_k} {top.mean:.3f} +- "
              f"{top.std_between:.3f}  {quality}", flush=True)
    write_results(a.out, a, rows)


if __name__ == "__main__":
    main()
