"""The README's results table, generated from ``REPORT.json`` so the two cannot disagree.

:func:`readme_results_table` turns a ``REPORT.json`` (schema 2, :data:`nnit.reproduce.report.SCHEMA_VERSION`) into the
table; the README holds it between :data:`BEGIN` and :data:`END`. ``nnit reproduce --readme README.md`` rewrites that
block (:func:`update_readme`) and ``tests/test_readme_results.py`` checks that the README holds exactly the generated
text (:func:`check_readme`) once the committed ``REPORT.json`` has the new layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from nnit.errors import NNiTError

BEGIN = "<!-- results-table: generated from REPORT.json by `nnit reproduce --readme README.md`; do not edit by hand -->"
END = "<!-- /results-table -->"

BASELINE_NAMES = (("d2nwg", "D2NWG"), ("sane", "SANE"))


def _pct(x: Optional[float]) -> str:
    return "–" if x is None else f"{100 * float(x):.1f}%"


def _protocol(p: dict) -> str:
    text = (f"top-{p['top_k']} of {p['num_networks']} networks per architecture, chosen on {p['ranking_episodes']} "
            f"ranking episodes (seeds {p['ranking_seeds'][0]}-{p['ranking_seeds'][1]})")
    if p.get("report_episodes"):
        text += (f" and reported on {p['report_episodes']} fresh episodes (seeds {p['report_seeds'][0]}-"
                 f"{p['report_seeds'][1]}) that played no part in the choice")
    return text


def readme_results_table(report: dict) -> str:
    """The README's results table from a ``REPORT.json`` dict: per task, the mean over the held-out (unseen)
    architectures of NNiT at each sampling temperature, the dataset's own networks, NNiT at the preset's temperature
    as a fraction of the dataset, D2NWG, SANE and the paper's NNiT. Robot tasks: success on the fresh episodes, the
    ranking episodes' in parentheses; image tasks: test accuracy."""
    from nnit.reproduce.report import PAPER_TABLE2, SCHEMA_VERSION

    if report.get("schema_version", 1) < SCHEMA_VERSION:
        raise NNiTError(f"REPORT.json has schema {report.get('schema_version', 1)}, the README table needs {SCHEMA_VERSION}: "
                        f"rerun nnit reproduce")
    temps = report["nnit_temperatures"]  # {generator: temperature}, temperature 1 first
    nnit = [(g, f"NNiT (T={t:g})") for g, t in temps.items()]
    own = list(temps)[-1]
    p = report["protocol"]
    lines = [f"`nnit reproduce --preset {report['preset']}`: mean over the {len(p['unseen'])} held-out architectures "
             f"{', '.join('[' + ','.join(map(str, h)) + ']' for h in p['unseen'])}; {_protocol(p)}. Robot tasks: success on the "
             + ("fresh episodes (on the ranking episodes); " if p.get("report_episodes") else "ranking episodes; ")
             + "Fashion-MNIST: test accuracy. The dataset's networks: the top-k of those it kept.", "",
             "| task | " + " | ".join(n for _, n in nnit) + f" | dataset's networks | {dict(nnit)[own]} / dataset | "
             + " | ".join(n for _, n in BASELINE_NAMES) + " | paper's NNiT |",
             "|---|" + "---:|" * (len(nnit) + 2 + len(BASELINE_NAMES)) + "---:|"]
    for task, t in report["tasks"].items():
        robot = t["robot"]
        key = "success_rate" if robot else "mean"

        def unseen(gen: str, ranking: bool = False) -> Optional[float]:
            row = (t["table2_ranking" if ranking else "table2"].get(gen) or {}).get("unseen")
            return None if row is None else row[key]

        def cell(gen: str) -> str:
            if robot and t.get("fresh"):
                return f"{_pct(unseen(gen))} ({_pct(unseen(gen, ranking=True))})"
            return _pct(unseen(gen))

        ds, mine = unseen("dataset"), unseen(own)
        ratio = f"{100 * mine / ds:.0f}%" if ds and mine is not None else "–"
        paper = PAPER_TABLE2[("NNiT", "unseen")].get(task)
        lines.append(f"| {task} | " + " | ".join(cell(g) for g, _ in nnit) + f" | {cell('dataset')} | {ratio} | "
                     + " | ".join(cell(g) for g, _ in BASELINE_NAMES) + f" | {f'{paper[2]}%' if paper else '–'} |")
    return "\n".join(lines)


def readme_block(report: dict) -> str:
    """The table between its markers, as the README holds it."""
    return f"{BEGIN}\n{readme_results_table(report)}\n{END}"


def _current_block(text: str) -> Optional[str]:
    start, end = text.find(BEGIN), text.find(END)
    return text[start:end + len(END)] if start >= 0 and end > start else None


def check_readme(readme_text: str, report: dict) -> list[str]:
    """Why the README's results table differs from the one ``report`` generates: the README lines that differ, or
    that the markers are missing; empty when it is exactly the generated text."""
    block = _current_block(readme_text)
    if block is None:
        return [f"no results table between {BEGIN!r} and {END!r}"]
    want = readme_block(report)
    if block == want:
        return []
    have, need = block.splitlines(), want.splitlines()
    diffs = [f"README: {h!r}\nREPORT.json: {n!r}" for h, n in zip(have, need) if h != n]
    return diffs or [f"the table has {len(have)} lines, REPORT.json gives {len(need)}"]


def update_readme(path: Path, report: dict) -> bool:
    """Replace the README's results table with the one ``report`` generates; whether the file changed."""
    text = Path(path).read_text()
    block = _current_block(text)
    if block is None:
        raise NNiTError(f"{path} has no results table between the lines {BEGIN} and {END}; add them where the table goes")
    new = text.replace(block, readme_block(report))
    if new != text:
        Path(path).write_text(new)
    return new != text
