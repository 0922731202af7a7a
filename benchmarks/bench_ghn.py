"""Time one GHN-ensemble update (generate a meta-batch of architectures for all K members, run the
students on a state batch, backward, Adam step) for several ensemble sizes, and the cost per member.

Example: python benchmarks/bench_ghn.py --ensemble 1 16 64 --meta-batch 4 --batch 128 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path


def main() -> None:
    import torch

    from nnit.ghn.model import GHNConfig, GHNEnsemble
    from nnit.ghn.train import GHN_PRESETS
    from nnit.weights import Architecture, paper_split

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ensemble", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--preset", default="cpu", choices=list(GHN_PRESETS))
    ap.add_argument("--meta-batch", type=int, default=4)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("results/benchmarks/bench_ghn.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg: GHNConfig = GHN_PRESETS[args.preset].ghn
    archs = [Architecture(42, h, 4) for h in paper_split().train]
    rows = []
    for k in args.ensemble:
        model = GHNEnsemble(cfg, range(k))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(0)
        times = []
        for r in range(args.repeats + 1):
            pick = torch.randperm(len(archs), generator=g)[: args.meta_batch].tolist()
            obs = torch.randn(k, args.batch, 42)
            t0 = time.perf_counter()
            nets = model.generate([archs[i] for i in pick])
            loss = sum(ws(obs).pow(2).mean(dim=(1, 2)) for ws in nets).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if r:  # the first repeat warms up
                times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        rows.append({"ensemble": k, "update_s_median": round(med, 4), "per_member_ms": round(1000 * med / k, 2),
                     "params_per_member": sum(p.numel() for p in model.parameters()) // k})
        print(f"K={k:>4}: {med * 1000:8.1f} ms / update  ({1000 * med / k:6.2f} ms per member)", flush=True)
    rec = {"args": {k: str(v) for k, v in vars(args).items()}, "ghn": cfg.__dict__, "rows": rows, "loadavg": os.getloadavg()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rec, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
