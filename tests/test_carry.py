"""`nnit reproduce --carry`: a run continued on a fresh machine from the committed carry folder (fast: the stages are
stand-ins that write files of the real formats)."""

from __future__ import annotations

import json
import signal

import pytest
import torch
from torch import nn

from nnit.checkpoint import load_checkpoint, save_checkpoint
from nnit.fileio import atomic_write_json
from nnit.reproduce import carry, stages
from nnit.reproduce.pipeline import REPRODUCE_PRESETS, Pipeline
from nnit.stopping import TrainingStopped
from nnit.weights import Architecture, WeightSet

TASK = "FashionMNIST"


def _checkpoint(path, step: int, with_ema: bool = True) -> None:
    """A training checkpoint: model, EMA (0.5x the model's weights), an Adam state, a DAgger-like extra tensor."""
    torch.manual_seed(step)
    model = nn.Linear(4, 3)
    ema = nn.Linear(4, 3)
    ema.load_state_dict({k: v * 0.5 for k, v in model.state_dict().items()})
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    save_checkpoint(path, model, step, {"what": "stand-in"}, optimizer=opt, ema=ema if with_ema else None,
                    extra={"buffer.obs": torch.randn(100, 4)}, meta={"kind": "stand-in", "wall_seconds": 12.0})


def _fakes(monkeypatch, nnit_runs: list) -> None:
    """Stand-ins for the stages: GHN and dataset finish; NNiT stops mid-run on its first call and finishes on the next
    (resuming from its checkpoint, as the real loop does); evaluations write results, networks and a heatmap."""

    def train_ghn(out, **_):
        _checkpoint(out / "ghn.safetensors", 5, with_ema=False)
        (out / "train_log.jsonl").write_text('{"iteration": 5}\n')

    def build_dataset(out, **_):
        (out / "shards").mkdir(parents=True)
        WeightSet.init_random(Architecture(49, (32, 16, 64, 32), 10), 3).save(out / "shards" / "h32-16-64-32.safetensors")
        for name in ("index.json", "normalization.json", "summary.json"):
            (out / name).write_text("{}")

    def train_nnit(out, **_):
        resumed = (out / "checkpoint.safetensors").exists()
        nnit_runs.append(load_checkpoint(out).step if resumed else 0)
        _checkpoint(out / "checkpoint.safetensors", 20 if resumed else 10)
        (out / "tb").mkdir(exist_ok=True)
        (out / "tb" / "events").write_text("tensorboard")
        (out / "train_log.jsonl").write_text('{"step": 10}\n')
        if not resumed:
            raise TrainingStopped(10, out / "checkpoint.safetensors", signal.SIGTERM)

    def generate(out, arch, num, **_):
        out.mkdir(parents=True, exist_ok=True)
        WeightSet.init_random(Architecture(49, tuple(map(int, arch.split(","))), 10), num).save(out / "networks.safetensors")
        (out / "results.json").write_text(json.dumps({"temperature": _["temperature"]}))
        (out / "heatmap.png").write_bytes(b"png")

    for name, fn in (("train_ghn", train_ghn), ("build_dataset", build_dataset), ("train_nnit", train_nnit),
                     ("generate", generate)):
        monkeypatch.setattr(stages, name, fn)


def test_a_run_continues_on_a_fresh_machine_from_the_carry_folder(tmp_path, monkeypatch):
    cfg = REPRODUCE_PRESETS["tiny"]
    box = tmp_path / "carried"  # what would be committed
    nnit_runs: list[int] = []
    _fakes(monkeypatch, nnit_runs)
    first = Pipeline("tiny", cfg, root=tmp_path / "machine1", carry=box)
    with pytest.raises(TrainingStopped):  # the session ends during NNiT's training
        first.run(tasks=[TASK], only=["ghn", "dataset", "nnit"], log=lambda s: None)
    base = box / "tiny"
    manifest = json.loads((base / carry.MANIFEST).read_text())
    ghn = load_checkpoint(base / TASK / "ghn" / "ghn.safetensors")
    assert manifest[f"{TASK}/ghn/ghn.safetensors"]["how"] == carry.RELEASE  # finished: sampling-only float32
    assert ghn.optimizer is None and not ghn.extra and ghn.step == 5 and ghn.meta["kind"] == "stand-in"
    assert torch.equal(ghn.model["weight"], load_checkpoint(first.root / TASK / "ghn" / "ghn.safetensors").model["weight"])
    assert (base / TASK / "dataset" / "shards" / "h32-16-64-32.safetensors").is_file()  # a finished dataset: all of it
    mid = load_checkpoint(base / TASK / "nnit" / "checkpoint.safetensors")  # unfinished: the full checkpoint
    assert manifest[f"{TASK}/nnit/checkpoint.safetensors"]["how"] == carry.COPY and mid.optimizer is not None
    assert not (base / TASK / "nnit" / "tb").exists() and not (base / TASK / "nnit" / "train_done.json").exists()
    assert (base / "reproduce" / "stages.json").is_file() and (base / "reproduce" / "logs" / TASK / "ghn.provenance.json").is_file()

    # a fresh machine: an empty run folder, the carry folder from git
    second = Pipeline("tiny", cfg, root=tmp_path / "machine2", carry=box)
    assert carry.restore(second, box, log=lambda s: None) > 0
    assert carry.restore(second, box, log=lambda s: None) == 0  # nothing is overwritten
    states = {r.stage: r.status.state for r in second.plan(tasks=[TASK], only=["ghn", "dataset", "nnit"])}
    assert states == {"ghn": "done", "dataset": "done", "nnit": "to run"}
    logs: list[str] = []
    second.run(tasks=[TASK], only=["ghn", "dataset", "nnit", "eval-nnit"], log=logs.append)
    assert nnit_runs == [0, 10]  # NNiT resumed from the carried step instead of starting again
    assert not any("ghn: running" in ln or "dataset: running" in ln for ln in logs)
    manifest = json.loads((base / carry.MANIFEST).read_text())
    done = load_checkpoint(base / TASK / "nnit" / "checkpoint.safetensors")
    assert manifest[f"{TASK}/nnit/checkpoint.safetensors"]["how"] == carry.RELEASE and done.optimizer is None
    assert done.step == 20 and done.ema is None
    assert torch.equal(done.model["weight"], load_checkpoint(second.root / TASK / "nnit").ema["weight"])  # the EMA

    # evaluations: results carried, heatmaps not; the seen architecture's first networks until memorization has run
    seen = base / TASK / "eval" / "nnit" / "h32-16-64-32"
    unseen = base / TASK / "eval" / "nnit" / "h32-32-16-64"
    assert (seen / "results.json").is_file() and not (seen / "heatmap.png").exists()
    assert WeightSet.load(seen / "networks.safetensors").n == cfg.memorization_networks < cfg.num_networks
    assert (unseen / "results.json").is_file() and not (unseen / "networks.safetensors").exists()
    mem = next(s for s in second.stages(TASK) if s.name == "memorization")
    monkeypatch.setattr(Pipeline, "_memorization", lambda self, task: atomic_write_json(
        mem.done_file, {"generators": self._memorization_generators(), "rows": []}))
    second.run(tasks=[TASK], only=["memorization"], log=lambda s: None)
    assert not (seen / "networks.safetensors").exists() and (base / "reproduce" / TASK / "memorization.json").is_file()

    # saving again with nothing new writes nothing: one version of each carried file
    before = {p: p.stat().st_mtime_ns for p in base.rglob("*") if p.is_file()}
    res = carry.save(second, box, log=lambda s: None)
    assert res["written"] == 0 and res["deleted"] == 0
    assert {p: p.stat().st_mtime_ns for p in base.rglob("*") if p.is_file()} == before
    # a third machine restores the finished NNiT (its sampling-only copy) and saving there changes nothing either
    third = Pipeline("tiny", cfg, root=tmp_path / "machine3", carry=box)
    carry.restore(third, box, log=lambda s: None)
    assert load_checkpoint(third.root / TASK / "nnit").step == 20
    assert carry.save(third, box, log=lambda s: None)["written"] == 0
    assert {p: p.stat().st_mtime_ns for p in base.rglob("*") if p.is_file()} == before


# ---------------------------------------------------------------------- --adopt: a shipped GHN dataset as the ghn stage
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_shipped_ghn_dataset_is_adopted_only_when_it_is_what_the_preset_makes(tmp_path, monkeypatch):
    import dataclasses
    import shutil

    from nnit.errors import NNiTError
    from nnit.ghn import train as ghn_train
    from nnit.reproduce.adopt import adopt

    cfg = REPRODUCE_PRESETS["tiny"]
    made = Pipeline("tiny", cfg, root=tmp_path / "made")  # the run that made the shipped folder, with the preset's commands
    made.run(tasks=[TASK], only=["ghn", "dataset"], log=lambda s: None)
    shipped = tmp_path / "zoo" / TASK
    shutil.copytree(made.root / TASK / "dataset", shipped)
    shutil.copy2(made.root / TASK / "ghn" / "ghn.safetensors", shipped / "ghn.safetensors")
    shutil.copy2(made.root / TASK / "ghn" / "train_log.jsonl", shipped / "ghn_train_log.jsonl")

    pipe = Pipeline("tiny", cfg, root=tmp_path / "runs")
    logs: list[str] = []
    assert adopt(pipe, shipped, log=logs.append) == TASK and "adopted" in logs[0]
    states = {r.stage: r.status.state for r in pipe.plan(tasks=[TASK], only=["ghn", "dataset"])}
    assert states == {"ghn": "done", "dataset": "to run"}
    rec = pipe.provenance(TASK, "ghn")
    assert rec["adopted_from"] == str(shipped) and rec["wall_seconds"] > 0
    assert json.loads(pipe.timings_path.read_text())[TASK]["ghn"]["status"] == "done"
    dataset = next(s for s in pipe.stages(TASK) if s.name == "dataset")
    assert "--reuse" in dataset.command and "reuse" not in dataset.config["args"]  # how it runs, not what it makes
    pipe.run(tasks=[TASK], only=["ghn", "dataset"], log=logs.append)
    index = json.loads((pipe.root / TASK / "dataset" / "index.json").read_text())
    assert index["architectures"] and all(r.get("reused_from") == str(shipped) for r in index["architectures"].values())
    for shard in (shipped / "shards").iterdir():  # the same networks
        a, b = WeightSet.load(shard), WeightSet.load(pipe.root / TASK / "dataset" / "shards" / shard.name)
        assert torch.equal(a.to_vector(), b.to_vector())
    # a later run without --adopt finds both stages done (the reuse is not part of the dataset's config)
    again = Pipeline("tiny", cfg, root=tmp_path / "runs")
    assert {r.stage: r.status.state for r in again.plan(tasks=[TASK], only=["ghn", "dataset"])} == {"ghn": "done", "dataset": "done"}

    # an ensemble trained with other settings than the preset's is refused, naming them
    real = ghn_train.ghn_config
    monkeypatch.setattr(ghn_train, "ghn_config", lambda preset, task: dataclasses.replace(real(preset, task), iterations=999))
    with pytest.raises(NNiTError, match=r"other settings than the tiny preset's for FashionMNIST: iterations \d+ -> 999"):
        adopt(Pipeline("tiny", cfg, root=tmp_path / "other"), shipped, log=lambda s: None)
    with pytest.raises(NNiTError, match="not a shipped GHN dataset"):
        adopt(Pipeline("tiny", cfg, root=tmp_path / "other"), made.root / TASK / "ghn", log=lambda s: None)
