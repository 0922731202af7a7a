"""Working PushCube-v1 policies for an architecture NNiT never trained on, from Python.

    .venv/bin/python examples/generate_and_evaluate.py [--num 32] [--steps 1000] [--episodes 10]

Samples networks for the held-out architecture [32,32,16,64] from the zoo's NNiT, runs one as a plain
``nn.Sequential``, evaluates all of them in ManiSkill3 with the paper's top-k protocol and saves them
(the same calls ``nnit generate`` makes).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import nnit
from nnit.api import save_generation


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=Path("zoo/nnit_PushCube-v1.safetensors"))
    ap.add_argument("--arch", default="32,32,16,64")
    ap.add_argument("--num", type=int, default=32)
    ap.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's 1000)")
    ap.add_argument("--temperature", type=float, default=0.5)
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1000, help="seed of evaluation episode 0")
    ap.add_argument("--out", type=Path, default=Path("runs/example"))
    args = ap.parse_args()

    result = nnit.generate(args.checkpoint, task="PushCube-v1", arch=args.arch, num=args.num, steps=args.steps,
                           temperature=args.temperature)
    print(f"{result.num} networks of {result.architectures[0]} in {result.seconds:.1f} s ({result.sampler}, {result.steps} steps)")

    policy = result.networks[0]  # a plain torch nn.Sequential
    obs = torch.zeros(1, policy[0].in_features)
    print(f"network 0: {policy}\n  action for a zero observation: {policy(obs).detach().numpy().round(3)}")

    table = nnit.evaluate("PushCube-v1", result, episodes=args.episodes, seed=args.seed)
    print(table.table())
    best = table.top_k
    print(f"top-{best.k} of {best.n}: success {100 * best.success_rate:.0f}%, return {best.mean:.2f} +- {best.std_between:.2f}")

    save_generation(result, args.out, table)
    print(f"wrote {args.out}/networks.safetensors and results.json")


if __name__ == "__main__":
    main()
