"""`nnit presets`: every stage's presets in one table, and docs/reference/presets.md is its output."""

from __future__ import annotations

from pathlib import Path

from nnit.cli import main
from nnit.cli.presets import render, stages

ROOT = Path(__file__).resolve().parents[1]


def test_docs_page_is_the_commands_output():
    page = (ROOT / "docs" / "reference" / "presets.md").read_text()
    assert page == render(markdown=True), "regenerate with: nnit presets --markdown > docs/reference/presets.md"


def test_per_task_settings_are_resolved(capsys):
    main(["presets", "--task", "PickCube-v1", "--stage", "ghn"])
    out = capsys.readouterr().out
    (row,) = [line for line in out.splitlines() if line.startswith("iterations ")]
    assert row.split()[1:] == ["3", "600", "500"]  # the cpu preset's longer PickCube-v1 schedule
    table = render()  # every task: the usual value and the tasks that differ
    assert "100 (PickCube-v1: 600; StackCubeEasy-v1: 1000)" in table and "500 (StackCubeEasy-v1: 1500)" in table


def test_every_stage_resolves_for_every_preset_and_task():
    names = [s.name for s in stages()]
    assert {"GHN ensemble (DAgger)", "NNiT training", "D2NWG", "SANE", "dataset", "evaluation"} <= set(names)
    assert len(render(task="FashionMNIST").splitlines()) > 100
