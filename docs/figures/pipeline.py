"""Draw docs/figures/pipeline.png, the pipeline diagram at the top of the README.

    .venv/bin/python docs/figures/pipeline.py
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

STAGES = [
    ("teacher", "scripted controller\nor PPO expert", "nnit train-expert"),
    ("GHN ensemble", "K graph hypernets,\nDAgger-distilled", "nnit train-ghn"),
    ("aligned dataset", "every GHN x every\nwidth, filtered", "nnit build-dataset"),
    ("NNiT", "diffusion transformer:\nwidth + patch tokens", "nnit train"),
    ("new weights", "MLPs for widths\nnever trained on", "nnit generate"),
    ("evaluation", "ManiSkill3 or\nFashion-MNIST, top-k", "nnit eval"),
]


def main(out: Path = Path(__file__).with_name("pipeline.png")) -> None:
    fig, ax = plt.subplots(figsize=(13, 2.3), dpi=100)
    ax.set_xlim(-0.1, len(STAGES) * 2.2 - 0.3)
    ax.set_ylim(0, 2.3)
    ax.axis("off")
    for i, (title, body, command) in enumerate(STAGES):
        x = i * 2.2
        color = "#dbe9f6" if title != "NNiT" else "#f6e0c8"
        ax.add_patch(FancyBboxPatch((x, 0.35), 1.8, 1.6, boxstyle="round,pad=0.02,rounding_size=0.12",
                                    fc=color, ec="#33475b", lw=1.2))
        ax.text(x + 0.9, 1.68, title, ha="center", va="center", fontsize=11, weight="bold", color="#1d2b38")
        ax.text(x + 0.9, 1.1, body, ha="center", va="center", fontsize=8, color="#1d2b38")
        ax.text(x + 0.9, 0.12, command, ha="center", va="center", fontsize=8, family="monospace", color="#33475b")
        if i < len(STAGES) - 1:
            ax.annotate("", xy=(x + 2.17, 1.15), xytext=(x + 1.83, 1.15),
                        arrowprops=dict(arrowstyle="-|>", color="#33475b", lw=1.4))
    fig.savefig(out, bbox_inches="tight", facecolor="white")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
