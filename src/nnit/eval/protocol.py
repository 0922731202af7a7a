"""The paper's evaluation protocol on top of the harness: top-k of N networks and its table.

Paper (Sec. 6): for each architecture, sample 100 networks, evaluate each for 50 episodes, keep the
10 with the highest mean return, and report over those 10 the return (mean +- std) and the success
rate. Our reading, defined here:

* **Ranking.** By mean return (robot) or accuracy (image), descending; ties broken by success
  rate (robot) / lower loss (image), then by the lower network index, so the choice is
  deterministic.
* **Return +- std.** The mean over the k networks of their mean returns, +- the standard
  deviation (ddof=0) *across those k networks* (``std_between``). The pooled standard deviation over
  all k x E episodes is reported too (``std_episodes``).
* **Success.** The mean over the k networks of their success rates (``success_once``).
* **Fresh episodes (optional).** The k kept networks re-evaluated on other episodes (other seeds) that
  played no part in choosing them (:func:`reevaluated`): the ranking episodes' numbers are optimistic,
  since the same episodes chose the networks. ``nnit eval`` / ``nnit generate --evaluate`` with
  ``--report-episodes`` report both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from nnit.errors import NNiTError
from nnit.eval.results import EvalResult


@dataclass(frozen=True)
class TopKSummary:
    """The protocol's numbers for one evaluation (one task x architecture x method)."""

    task: str
    """Task name."""
    label: str
    """What was evaluated (method / architecture), for the table's first column."""
    k: int
    """How many networks were kept (min(k, N))."""
    n: int
    """How many networks were evaluated."""
    episodes: int
    """Episodes per network (0 for image tasks)."""
    indices: tuple[int, ...]
    """The kept networks, best first."""
    mean: float
    """Mean over the kept networks of the primary metric (mean return, or accuracy)."""
    std_between: float
    """Standard deviation (ddof=0) of the primary metric across the kept networks."""
    std_episodes: float
    """Robot: pooled std of the return over all kept episodes; image: same as ``std_between``."""
    success_rate: float
    """Robot: mean success rate of the kept networks (nan for image tasks)."""
    success_at_end_rate: float
    """Robot: mean success-at-end rate of the kept networks (nan for image tasks)."""
    metric: str
    """The primary metric's name (``mean_return`` or ``accuracy``)."""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["indices"] = list(self.indices)
        return d


def top_k_indices(primary: np.ndarray, k: int, secondary: np.ndarray | None = None) -> np.ndarray:
    """Indices of the k largest ``primary`` values, best first.

    Ties are broken by the larger ``secondary`` value, then by the smaller index. ``k`` larger than
    N keeps all N. NaN ranks last.
    """
    primary = np.asarray(primary, dtype=np.float64)
    if k < 1:
        raise NNiTError(f"k must be >= 1, got {k}")
    n = primary.shape[0]
    sec = np.zeros(n) if secondary is None else np.asarray(secondary, dtype=np.float64)
    p = np.where(np.isnan(primary), -np.inf, primary)
    s = np.where(np.isnan(sec), -np.inf, sec)
    order = np.lexsort((np.arange(n), -s, -p))  # last key is the primary sort key
    return order[: min(k, n)]


def top_k(result: EvalResult, k: int = 10, label: str = "") -> TopKSummary:
    """The paper's protocol on ``result``: keep the best k networks and summarize them."""
    m = result.metrics
    if result.kind == "robot":
        idx = top_k_indices(m["mean_return"], k, m["success_rate"])
        vals = m["mean_return"][idx]
        pooled = result.per_episode["return"][idx].std() if "return" in result.per_episode else float("nan")
        succ = float(m["success_rate"][idx].mean())
        succ_end = float(m["success_at_end_rate"][idx].mean())
        episodes = int(result.per_episode["return"].shape[1]) if "return" in result.per_episode else 0
    else:
        idx = top_k_indices(m["accuracy"], k, -m["loss"])
        vals = m["accuracy"][idx]
        pooled = float(vals.std())
        succ = succ_end = float("nan")
        episodes = 0
    return TopKSummary(
        task=result.task,
        label=label or _arch_label(result.arch),
        k=int(len(idx)),
        n=result.n,
        episodes=episodes,
        indices=tuple(int(i) for i in idx),
        mean=float(vals.mean()),
        std_between=float(vals.std()),
        std_episodes=float(pooled),
        success_rate=succ,
        success_at_end_rate=succ_end,
        metric=result.primary,
    )


def reevaluated(ranking: TopKSummary, fresh: EvalResult) -> TopKSummary:
    """The protocol's numbers of the networks ``ranking`` kept, measured on other episodes: ``fresh`` holds exactly
    those k networks (any order) evaluated on the fresh seeds. ``indices`` and ``n`` stay the ranking's (which
    networks of the pool of N were kept); ``episodes`` is the fresh evaluation's."""
    if fresh.n != ranking.k:
        raise NNiTError(f"the fresh evaluation holds {fresh.n} networks, the ranking kept {ranking.k}")
    m = fresh.metrics
    vals = m[fresh.primary]
    if fresh.kind == "robot":
        pooled = float(fresh.per_episode["return"].std()) if "return" in fresh.per_episode else float("nan")
        succ, succ_end = float(m["success_rate"].mean()), float(m["success_at_end_rate"].mean())
        episodes = int(fresh.per_episode["return"].shape[1]) if "return" in fresh.per_episode else len(fresh.seeds)
    else:
        pooled, succ, succ_end, episodes = float(vals.std()), float("nan"), float("nan"), 0
    return TopKSummary(task=ranking.task, label=ranking.label, k=ranking.k, n=ranking.n, episodes=episodes,
                       indices=ranking.indices, mean=float(vals.mean()), std_between=float(vals.std()), std_episodes=pooled,
                       success_rate=succ, success_at_end_rate=succ_end, metric=fresh.primary)


def _arch_label(arch: dict) -> str:
    return "[" + ",".join(str(h) for h in arch.get("hidden", [])) + "]"


def protocol_table(rows: Sequence[TopKSummary]) -> str:
    """The paper's table: one line per (label, task) with return +- std and success (or accuracy)."""
    lines = [f"{'label':<20}{'task':<18}{'top-k':>9}{'return / acc':>18}{'success':>9}{'at end':>8}"]
    for r in rows:
        if r.metric == "mean_return":
            val = f"{r.mean:.2f} +- {r.std_between:.2f}"
            succ, end = f"{100 * r.success_rate:.0f}%", f"{100 * r.success_at_end_rate:.0f}%"
        else:
            val = f"{100 * r.mean:.2f}% +- {100 * r.std_between:.2f}"
            succ = end = "-"
        lines.append(f"{r.label:<20}{r.task:<18}{f'{r.k}/{r.n}':>9}{val:>18}{succ:>9}{end:>8}")
    return "\n".join(lines)


def results_table(result: EvalResult, limit: int | None = 20) -> str:
    """Per-network table, best first (``limit`` rows; None for all)."""
    idx = top_k_indices(
        result.metrics[result.primary],
        result.n if limit is None else limit,
        result.metrics["success_rate"] if result.kind == "robot" else -result.metrics["loss"],
    )
    names = list(result.metrics)
    lines = [f"{'net':>5}" + "".join(f"{n:>21}" for n in names)]
    for i in idx:
        lines.append(f"{int(i):>5}" + "".join(f"{float(result.metrics[n][i]):>21.4f}" for n in names))
    if limit is not None and result.n > limit:
        lines.append(f"... {result.n - limit} more networks (see the CSV)")
    return "\n".join(lines)


def paper_reference() -> dict[str, dict[str, float]]:
    """Success rates (%) the paper reports for top-10 of 100 on unseen architectures (its Table 2 and Table 3)."""
    return {
        "NNiT": {"PickCube-v1": 99.0, "PushCube-v1": 100.0, "StackCubeEasy-v1": 86.0},
        "NNiT (joint)": {"PickCube-v1": 99.0, "PushCube-v1": 100.0, "StackCubeEasy-v1": 90.0},
        "D2NWG": {"PickCube-v1": 59.0, "PushCube-v1": 89.0, "StackCubeEasy-v1": 42.0},
        "SANE": {"PickCube-v1": 1.0, "PushCube-v1": 2.0, "StackCubeEasy-v1": 0.0},
    }
