"""NNiT speed on CPU: training steps/s of the two token modes at equal model size, and the time to
sample + assemble 100 networks with the 1000-step ancestral sampler vs few-step DDIM.

    .venv/bin/python benchmarks/bench_nnit.py --out results/benchmarks/bench_nnit.json
    .venv/bin/python benchmarks/bench_nnit.py --quick      # fewer repeats, 100-step ancestral stand-in
    .venv/bin/python benchmarks/bench_nnit.py --threads 2 --steps 40 --no-sample --compile \
        --out results/benchmarks/bench_nnit_compile.json    # training: eager vs torch.compile

Training uses the paper's 72 architectures (64 train + 8 held-out; input 42, output 8, p = 8, M = 64)
with synthetic weights (speed does not depend on the values) and an untrained model; batches come from the
training pipeline (length-bucketed, ``TrainConfig.bucket_pool``), and valid mode is also timed without
bucketing for comparison. Medians are printed
and written as JSON with the machine's thread count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch


def _weights(arch, n, seed):
    from nnit.weights import WeightSet

    return WeightSet.init_random(arch, n, torch.Generator().manual_seed(seed))


def bench_train(model: str, mode: str, steps: int, warmup: int, batch: int, bucket_pool: int | None = None,
                compile: bool = False) -> dict:
    """Steps/s of the training step as ``train()`` runs it, batches from ``NNiTDataset.batch_at`` (length-bucketed
    with ``bucket_pool`` batches per pool; None = the cpu preset's; 1 = independent uniform batches). ``compile``:
    the model under ``torch.compile(dynamic=True)`` (the batches' lengths vary); its compilation time is reported
    apart from the timed steps."""
    from nnit.diffusion.arch_codes import ArchCodec
    from nnit.diffusion.gaussian import GaussianDiffusion, sample_monl_timesteps
    from nnit.diffusion.model import NNiT
    from nnit.diffusion.train import TRAIN_PRESETS, NNiTDataset, nnit_losses
    from nnit.weights import Architecture, PatchGrid, WidthVocab, paper_split

    split = paper_split()
    archs = [Architecture(42, h, 8) for h in (*split.train, *split.held_out)]
    cfg = replace(TRAIN_PRESETS["cpu"], model=model, token_mode=mode, batch_size=batch)
    if bucket_pool is not None:
        cfg = replace(cfg, bucket_pool=bucket_pool)
    codec = ArchCodec(WidthVocab(cfg.arch_widths), cfg.arch_dim)
    data = NNiTDataset([_weights(a, 2, k) for k, a in enumerate(archs)], PatchGrid(cfg.patch_size, cfg.max_width), mode, codec)
    torch.manual_seed(0)
    net = NNiT(cfg.model_config())
    forward = torch.compile(net, dynamic=True) if compile else net
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=0.0)
    diff = GaussianDiffusion.linear(cfg.num_timesteps)
    gen = torch.Generator().manual_seed(0)
    times, tokens = [], []
    start = time.perf_counter()
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        b = data.batch_at(i, batch, cfg.bucket_pool, cfg.seed)
        ts = sample_monl_timesteps(batch, cfg.num_timesteps, generator=gen)
        loss = nnit_losses(forward, diff, b, ts.t_a, ts.t_w, gen, cfg.parameterization)["total"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
            tokens.append(int(b.values.shape[1]))
    med = statistics.median(times)
    return {"model": model, "mode": mode, "bucket_pool": cfg.bucket_pool, "compile": compile,
            "warmup_seconds": time.perf_counter() - start - sum(times), "params": net.num_params(), "batch": batch, "steps_timed": steps,
            "median_s_per_step": med, "steps_per_s": 1.0 / med, "mean_s_per_step": statistics.mean(times),
            "throughput_steps_per_s": len(times) / sum(times), "median_seq_len": statistics.median(tokens),
            "mean_seq_len": statistics.mean(tokens)}


def bench_sample(model: str, mode: str, hidden: tuple, num: int, runs: list[tuple[str, int]]) -> list[dict]:
    from nnit.diffusion.arch_codes import ArchCodec
    from nnit.diffusion.model import NNiT
    from nnit.diffusion.sample import NNiTSampler
    from nnit.diffusion.train import TRAIN_PRESETS
    from nnit.weights import Architecture, WidthVocab

    cfg = replace(TRAIN_PRESETS["cpu"], model=model, token_mode=mode)
    torch.manual_seed(0)
    s = NNiTSampler(NNiT(cfg.model_config()), ArchCodec(WidthVocab(cfg.arch_widths), cfg.arch_dim), cfg,
                    data={"abs_max": 5.0})
    arch = Architecture(42, hidden, 8)
    out = []
    for method, steps in runs:
        t0 = time.perf_counter()
        ws = s.conditional(arch, num=num, method=method, steps=steps)  # sample + assemble (+ finiteness check)
        ws(torch.randn(4, 42))  # and the networks run
        dt = time.perf_counter() - t0
        out.append({"model": model, "mode": mode, "arch": list(hidden), "num": num, "method": method, "steps": steps,
                    "seconds": dt})
        print(f"  sample {num} x {hidden} {method:>9} {steps:>4} steps: {dt:7.2f} s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="NNiT-Ti")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10, help="timed training steps per mode")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--ancestral-steps", default="50,1000", help="comma-separated step counts of the ancestral sampler")
    ap.add_argument("--ddim-steps", default="10,25,50")
    ap.add_argument("--quick", action="store_true", help="3 timed steps, ancestral with 100 steps")
    ap.add_argument("--no-sample", action="store_true", help="time training only")
    ap.add_argument("--compile", action="store_true",
                    help="also time valid-token training under torch.compile (20 warm-up steps absorb the recompiles)")
    ap.add_argument("--out", default="results/benchmarks/bench_nnit.json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = 3 if args.quick else args.steps
    anc = [100] if args.quick else [int(k) for k in args.ancestral_steps.split(",")]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, model {args.model}")
    train = []
    for mode, pool in (("padded", None), ("valid", None), ("valid", 1)):
        r = bench_train(args.model, mode, steps, warmup=2, batch=args.batch, bucket_pool=pool)
        train.append(r)
        print(f"  train {mode:>6} (bucket pool {r['bucket_pool']}): {r['steps_per_s']:.3f} steps/s median, "
              f"{r['throughput_steps_per_s']:.3f} overall ({r['median_s_per_step']:.3f} s/step; batch padded to "
              f"{r['mean_seq_len']:.0f} weight tokens on average; {r['params']:,} params)", flush=True)
    speedup = train[1]["steps_per_s"] / train[0]["steps_per_s"]
    unbucketed = train[2]["steps_per_s"] / train[0]["steps_per_s"]
    overall = train[1]["throughput_steps_per_s"] / train[0]["throughput_steps_per_s"]
    print(f"  valid / padded training speed: {speedup:.2f}x median, {overall:.2f}x overall (length-bucketed; "
          f"{unbucketed:.2f}x median without bucketing)")
    compiled = None
    if args.compile:
        compiled = bench_train(args.model, "valid", steps, warmup=20, batch=args.batch, compile=True)
        train.append(compiled)
        print(f"  train  valid under torch.compile: {compiled['steps_per_s']:.3f} steps/s median "
              f"({compiled['median_s_per_step']:.3f} s/step; {compiled['warmup_seconds']:.0f} s to compile and warm up); "
              f"compiled / eager {compiled['steps_per_s'] / train[1]['steps_per_s']:.2f}x", flush=True)
    runs = [("ddim", int(k)) for k in args.ddim_steps.split(",")] + [("ancestral", k) for k in anc]
    sample = [] if args.no_sample else bench_sample(args.model, "valid", (16, 64, 64, 32), 100, runs)  # a held-out architecture
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine(),
              "cpus": os.cpu_count(), "load_avg_1_5_15_at_end": os.getloadavg(),
              "train": train, "valid_over_padded": speedup, "valid_unbucketed_over_padded": unbucketed,
              "valid_over_padded_throughput": overall,
              "compiled_over_eager": compiled["steps_per_s"] / train[1]["steps_per_s"] if compiled else None, "sample": sample}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
