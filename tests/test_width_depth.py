"""One NNiT for many widths and depths: the ``varied`` architecture split, the GHN data engine over it, width codes by
value (``arch_encoding="value"``), and the support warnings for widths and depths a model never saw."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import pytest
import torch

import nnit
from nnit.api import APIError, TrainOverrides, generation_record, support_warnings
from nnit.diffusion.arch_codes import ArchCodec, ValueArchCodec, codec_from_dict, default_code_dim, make_codec
from nnit.diffusion.train import TrainConfig, load_checkpoint, split_arch_settings
from nnit.errors import NNiTError
from nnit.ghn.dataset import iter_dataset, shard_name
from nnit.weights import Architecture, WeightNormalizer, WidthVocab, get_split, paper_split, search_space, varied_split
from nnit.weights.architecture import (VARIED_DEPTHS, VARIED_HELD_OUT_DEPTHS, VARIED_HELD_OUT_WIDTHS, VARIED_WIDTHS,
                                       ArchitectureError)
from synthetic import smooth_weights  # noqa: E402  (tests/ is on sys.path)

GRID = VARIED_WIDTHS
SEEN_W = set(GRID) - set(VARIED_HELD_OUT_WIDTHS)


# ---------------------------------------------------------------------------- the varied split
def test_varied_split_is_deterministic_and_sized_as_documented():
    s = varied_split()
    assert s == varied_split() == get_split("varied") and s.name == "varied"
    assert Counter(len(h) for h in s.train) == {2: 16, 3: 16, 4: 16, 6: 16}
    assert Counter(len(h) for h in s.validation) == {2: 1, 3: 1, 4: 1, 6: 1}
    assert Counter(c for _, c in s.categories) == {"combination": 8, "width": 8, "depth": 6, "width_and_depth": 2}
    assert len(s.held_out) == 24 and len(s.listed()) == 92 and s.excluded == ()
    everything = [*s.train, *s.validation, *s.held_out]
    assert len(set(everything)) == len(everything)  # the roles are disjoint, no architecture twice
    assert all(len(h) in VARIED_DEPTHS and set(h) <= set(GRID) for h in everything)
    assert varied_split(seed=1) != s  # the seed draws it


def test_held_out_widths_and_depths_never_reach_train_or_validation():
    s = varied_split()
    for h in [*s.train, *s.validation]:
        assert not set(h) & set(VARIED_HELD_OUT_WIDTHS) and len(h) not in VARIED_HELD_OUT_DEPTHS
    for d in (2, 3, 4, 6):  # every seen width is trained at every seen depth
        assert {w for h in s.train if len(h) == d for w in h} == SEEN_W
    for h, cat in s.categories:
        assert s.role(h) == "held_out" and s.category(h) == cat
        new_w, new_d = bool(set(h) & set(VARIED_HELD_OUT_WIDTHS)), len(h) in VARIED_HELD_OUT_DEPTHS
        assert (new_w, new_d) == {"combination": (False, False), "width": (True, False), "depth": (False, True),
                                  "width_and_depth": (True, True)}[cat], (h, cat)
    assert {w for h in s.by_category()["width"] for w in h} >= set(VARIED_HELD_OUT_WIDTHS)
    assert s.role((8, 8, 8, 8, 8, 8, 8)) == "outside" and s.role((72, 8)) == "outside"
    unlisted = next(h for h in search_space(sorted(SEEN_W), 2) if h not in s.listed())
    assert s.role(unlisted) == "unlisted" and s.category(s.train[0]) is None


def test_varied_all_depths_trains_the_held_out_depth_and_keeps_every_varied_architecture():
    """``varied-all-depths``: every architecture of ``varied`` keeps its role; 16 train and 1 validation tuples of
    seen widths are added at depth 5; the former depth-5 tests stay held out as combinations / held-out widths."""
    v, a = varied_split(), get_split("varied-all-depths")
    assert a == get_split("varied-all-depths") and a.name == "varied-all-depths" and a.held_out_depths == ()
    assert set(v.train) < set(a.train) and set(v.validation) < set(a.validation) and a.held_out == v.held_out
    new_train = set(a.train) - set(v.train)
    assert len(new_train) == 16 and all(len(h) == 5 and set(h) <= SEEN_W for h in new_train)
    assert len(a.validation) == 5 and len(a.validation[-1]) == 5
    assert {w for h in new_train for w in h} == SEEN_W  # every seen width trained at depth 5 too
    assert not set(a.listed()) - set(a.held_out) & set(a.held_out)
    recat = {"depth": "combination", "width_and_depth": "width"}
    assert [(h, recat.get(c, c)) for h, c in v.categories] == list(a.categories)
    for h in [*a.train, *a.validation]:
        assert not set(h) & set(VARIED_HELD_OUT_WIDTHS)


def test_varied_dense_adds_train_architectures_at_every_depth_and_keeps_every_other_role():
    """``varied-dense``: ``varied-all-depths`` plus up to 48 train tuples of seen widths per depth (depth 2: all
    that are left), disjoint from every test and validation architecture; the test architectures are unchanged."""
    a, d = get_split("varied-all-depths"), get_split("varied-dense")
    assert d.name == "varied-dense" and d.held_out == a.held_out and d.categories == a.categories
    assert d.validation == a.validation and set(a.train) < set(d.train) and len(set(d.train)) == len(d.train)
    per_depth = {k: sum(len(h) == k for h in d.train) for k in (2, 3, 4, 5, 6)}
    assert per_depth == {2: 36 - 3, 3: 64, 4: 64, 5: 64, 6: 64}  # depth 2: 6^2 tuples minus 2 tests and 1 validation
    assert not set(d.train) & (set(d.held_out) | set(d.validation))
    assert all(set(h) <= SEEN_W for h in d.train)


def test_the_docs_page_lists_the_split_the_code_draws(capsys):
    page = (Path(__file__).resolve().parents[1] / "docs" / "reference" / "architecture-splits.md").read_text()
    s = varied_split()

    def label(h: tuple[int, ...]) -> str:
        return "[" + ",".join(map(str, h)) + "]"

    for cat, hs in s.by_category().items():
        (row,) = [line for line in page.splitlines() if line.startswith(f"| `{cat}` |")]
        assert row.split("|")[3].strip() == ", ".join(map(label, hs)), cat
    for d in (2, 3, 4, 6):
        (row,) = [line for line in page.splitlines() if line.startswith(f"| {d} | [")]
        assert row.split("|")[2].strip() == ", ".join(label(h) for h in s.train if len(h) == d), d
    assert "Validation: " + ", ".join(map(label, s.validation)) + "." in page
    a = get_split("varied-all-depths")
    (row,) = [line for line in page.splitlines() if line.startswith("| 5 | [")]
    assert row.split("|")[2].strip() == ", ".join(label(h) for h in a.train if len(h) == 5)
    assert "Added validation: " + label(a.validation[-1]) + "." in page
    from nnit.cli import main

    main(["info", "--split", "varied", "--mode", "valid"])
    out = capsys.readouterr().out
    assert "held_out/width_and_depth  8,8,40,64,56" in out and "over the 88 train and held-out architectures" in out


def test_the_paper_split_stays_the_default_and_unchanged():
    p = get_split()
    assert p == paper_split() and p.name == "paper" and len(p.train) == 64 and len(p.held_out) == 8
    assert p.listed() == search_space()  # the GHN's "all" architectures, in the order of the recorded runs
    assert {c for _, c in p.categories} == {"combination"} and p.widths == (16, 32, 64) and p.depths == (4,)
    with pytest.raises(ArchitectureError, match="unknown architecture split 'wide'"):
        get_split("wide")


def test_ghn_training_architectures_follow_the_split():
    from nnit.ghn.train import GHN_PRESETS, training_architectures
    from nnit.tasks.registry import get_task

    task = get_task("FashionMNIST")
    assert [a.hidden for a in training_architectures(task, "all")] == search_space()
    allv = training_architectures(task, "all", split="varied")
    assert [a.hidden for a in allv] == varied_split().listed() and {a.depth for a in allv} == set(VARIED_DEPTHS)
    assert [a.hidden for a in training_architectures(task, "train", split="varied")] == list(varied_split().train)
    assert GHN_PRESETS["cpu"].split == "paper"


def test_a_ghn_meta_batch_mixes_depths_and_trains_every_one():
    from nnit.ghn.model import GHNConfig, GHNEnsemble

    ghn = GHNEnsemble(GHNConfig(hidden_dim=16, decoder_channels=4), seeds=[0, 1])
    archs = [Architecture(49, h, 10) for h in [(8, 64), (24, 40, 56), (64, 8, 48, 16, 32), (8, 16, 24, 32, 40, 64)]]
    nets = ghn.generate(archs)
    loss = sum(ws(torch.randn(3, 49)).pow(2).mean() for ws in nets)
    loss.backward()
    for ws, a in zip(nets, archs):
        assert ws.arch == a and [w.shape[1:] for w in ws.weights] == a.layer_shapes
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in ghn.parameters())


# ---------------------------------------------------------------------------- width codes by value
def test_value_codes_round_trip_on_the_grid_and_keep_the_markers_apart():
    c = ValueArchCodec(GRID, 8)
    arch = Architecture(49, (8, 24, 64, 40, 56, 16), 10)
    codes = c.encode(arch)
    assert codes.shape == (8, 8) and c.likelihood == "continuous" and c.encoding == "value"
    archs, valid, raw = c.decode(codes.unsqueeze(0), 49, 10)
    assert archs == [arch] and valid == [True] and raw[0, 0] == WidthVocab.INPUT and raw[0, -1] == WidthVocab.OUTPUT
    assert torch.equal(codes[1:-1], c.codes[[c.vocab.token_of(w) for w in arch.hidden]])  # the grid rows are the codes
    dist = torch.cdist(c.codes, c.codes)
    assert dist[0, 1] > 2.8 and dist[:2, 2:].min() > 3.4  # <in> != <out>, both far from every width
    widths = torch.arange(8, 65, dtype=torch.float32)
    all_codes = c.width_codes(widths)  # every integer width of the range has its own code
    assert torch.cdist(all_codes, all_codes).add(torch.eye(len(widths)) * 9).min() > 0.1


def test_noisy_and_off_grid_value_codes_decode_to_the_nearest_grid_width():
    c = ValueArchCodec(GRID, 8)
    g = torch.Generator().manual_seed(0)
    archs = [Architecture(49, tuple(GRID[int(i)] for i in torch.randint(len(GRID), (d,), generator=g)), 10) for d in (2, 4, 6)]
    codes, mask = c.encode_batch(archs)
    assert mask.sum(1).tolist() == [4, 6, 8]
    for a, x in zip(archs, codes):
        noisy = x[: a.depth + 2] + 0.25 * torch.randn(a.depth + 2, 8, generator=g)
        got, valid, _ = c.decode(noisy.unsqueeze(0), 49, 10)
        assert got == [a] and valid == [True]
    for off, near in ((9, 8), (30, 32), (45, 48), (62, 64)):
        (got,), _, _ = c.decode(c.encode(Architecture(49, (off, off), 10)).unsqueeze(0), 49, 10)
        assert got.hidden == (near, near), off
    bad = c.encode(Architecture(49, (32, 32), 10))
    bad[0] = c.codes[WidthVocab.OUTPUT]  # a marker where a marker does not belong: invalid, decoded anyway
    (got,), (ok,), _ = c.decode(bad.unsqueeze(0), 49, 10)
    assert not ok and got.hidden == (32, 32)


def test_value_codes_accept_any_width_in_range_and_clamp_or_refuse_the_rest():
    c = ValueArchCodec(GRID, 8)
    assert c.expresses(8) and c.expresses(27) and c.expresses(64) and not c.expresses(4) and not c.expresses(72)
    with pytest.raises(ArchitectureError, match="width 4 is outside the value encoding's range"):
        c.encode(Architecture(49, (4, 32), 10))
    clamped = c.encode(Architecture(49, (4, 32), 10), unknown="nearest")
    torch.testing.assert_close(clamped, c.encode(Architecture(49, (8, 32), 10)))
    with pytest.raises(ArchitectureError, match="even dim"):
        ValueArchCodec(GRID, 5)
    with pytest.raises(ArchitectureError, match="inside the range"):
        ValueArchCodec(GRID, 8, lo=16)


def test_codecs_are_stored_with_their_encoding_and_old_records_read_as_vocab():
    v = ValueArchCodec(GRID, 12)
    back = codec_from_dict(json.loads(json.dumps(v.to_dict())))
    assert isinstance(back, ValueArchCodec) and back.to_dict() == v.to_dict() and torch.equal(back.codes, v.codes)
    old = codec_from_dict({"widths": [16, 32, 64], "dim": 8})  # a checkpoint written before value codes
    assert type(old) is ArchCodec and old.encoding == "vocab" and old.to_dict()["encoding"] == "vocab"
    assert TrainConfig.from_dict({"steps": 5}).arch_encoding == "vocab"
    assert default_code_dim("vocab", 3) == 8 and default_code_dim("vocab", 8) == 16 and default_code_dim("value", 8) == 8
    assert type(make_codec("vocab", GRID, 16)) is ArchCodec and make_codec("vocab", GRID, 16).expresses(24)
    assert split_arch_settings("varied", "value") == {"arch_widths": GRID, "arch_dim": 8, "arch_encoding": "value"}
    assert split_arch_settings("paper", "vocab") == {"arch_widths": (16, 32, 64), "arch_dim": 8, "arch_encoding": "vocab"}
    with pytest.raises(NNiTError, match="unknown arch encoding"):
        codec_from_dict({"encoding": "onehot", "widths": [16], "dim": 8})


# ---------------------------------------------------------------------------- a tiny value-coded NNiT
TRAIN_HIDDEN = [(8, 64), (48, 16), (32, 8, 40), (64, 48, 16, 32), (16, 40, 8, 64), (40, 32, 48, 16, 8, 64)]


def write_varied_dataset(path: Path, n: int = 4) -> Path:
    """A FashionMNIST-shaped (49 -> 10) dataset of the varied split in nnit build-dataset's layout: 6 train
    architectures of depths 2, 3, 4 and 6 over the seen widths {8, 16, 32, 40, 48, 64}."""
    archs = {}
    for k, h in enumerate(TRAIN_HIDDEN):
        assert varied_split().role(h) in ("train", "unlisted")
        smooth_weights(Architecture(49, h, 10), n, seed=k).save(path / "shards" / shard_name(h), extra_metadata={"task": "FashionMNIST"})
        archs[",".join(map(str, h))] = {"role": "train", "hidden": list(h), "candidates": [], "num_passed": n, "num_kept": n}
    (path / "index.json").write_text(json.dumps({"task": "FashionMNIST", "control_mode": None, "config": {"split": "varied"},
                                                 "architectures": archs}))
    WeightNormalizer.fit([ws for _, ws in iter_dataset(path, roles=("train",))]).save(path / "normalization.json")
    return path


@pytest.fixture(scope="module", params=["absolute", "both_ends"])
def value_model(tmp_path_factory, request):
    """A tiny value-coded NNiT with the paper's layer positions and with positions counted from both ends."""
    root = tmp_path_factory.mktemp("value")
    ds = write_varied_dataset(root / "dataset")
    messages: list[str] = []
    run = nnit.train(ds, "tiny", overrides=TrainOverrides(steps=30, arch_encoding="value", layer_positions=request.param),
                     log=messages.append)
    return run, messages


def test_a_value_coded_nnit_trains_and_stores_its_codec(value_model):
    run, messages = value_model
    assert any("value width codes over the varied split" in m for m in messages)
    ck = load_checkpoint(run.checkpoint)
    both = ck.config.layer_positions == "both_ends"
    assert ck.model_config.layer_positions == ck.config.layer_positions
    assert any("layer positions from both ends" in m for m in messages) == both
    assert ("w_pos.layer_from_end.weight" in ck.model and "a_pos_from_end.weight" in ck.model) == both
    assert ck.config.arch_encoding == "value" and ck.config.arch_widths == GRID and ck.data["split"] == "varied"
    assert isinstance(ck.codec, ValueArchCodec) and (ck.codec.lo, ck.codec.hi, ck.codec.dim) == (8, 64, 8)
    assert all(torch.isfinite(torch.tensor([r["mse_a"], r["vb_a"], r["total"]])).all() for r in run.history)


def test_a_value_coded_nnit_samples_unseen_widths_and_depths_and_joint_architectures(value_model):
    from nnit.diffusion.sample import NNiTSampler

    run, _ = value_model
    sampler = NNiTSampler.from_checkpoint(run.checkpoint)
    for hidden in [(24, 56), (8, 24, 40, 56), (16, 27, 40, 64, 8), (24, 56, 24, 56, 24)]:  # unseen widths / depth 5 / off grid
        arch = Architecture(49, hidden, 10)
        ws = sampler.conditional(arch, num=2, steps=3, seed=1)
        assert ws.arch == arch and ws.n == 2 and torch.isfinite(ws.to_vector()).all()
    padded = dataclasses.replace(sampler.config, token_mode="padded")  # value codes write a width without the layout
    assert NNiTSampler(sampler.model, sampler.codec, padded, sampler.normalizer, sampler.data).codec.encode(
        Architecture(49, (24, 56), 10)).shape == (4, 8)
    for depth in (5, 2):
        j = sampler.joint(num=6, depth=depth, steps=3, seed=0)
        assert j.schedule == "arch-first" and len(j.archs) == 6
        assert all(a.depth == depth and set(a.hidden) <= set(GRID) for a in j.archs)
        assert sum(ws.n for ws in j.weights.values()) == 6


# ---------------------------------------------------------------------------- support warnings
TRAINED = [h for h in varied_split().train]  # widths {8..64 step 8} minus {24, 56}; depths 2, 3, 4, 6


@pytest.mark.parametrize("encoding", ["value", "vocab"])
def test_support_warnings_say_how_each_unseen_width_and_depth_is_coded(encoding):
    codec = make_codec(encoding, GRID, default_code_dim(encoding, len(GRID)))
    assert support_warnings((8, 64, 40), TRAINED, codec) == []
    (depth5,) = support_warnings((8, 16, 32, 40, 48), TRAINED, codec)
    assert depth5.startswith("depth 5 was never trained on (interpolated between trained depths 4 and 6;")
    (depth7,) = support_warnings((8,) * 7, TRAINED, codec)
    assert depth7.startswith("depth 7 was never trained on (extrapolated;")
    (w24,) = support_warnings((24, 32), TRAINED, codec)
    assert w24.startswith("width 24 never seen in training (")
    assert ("interpolated: coded by its value" if encoding == "value" else "its vocabulary code was never trained") in w24
    both = support_warnings((24, 56, 32, 8, 8), TRAINED, codec)
    assert len(both) == 2 and both[0].startswith("depth 5") and both[1].startswith("widths 24, 56 never seen in training")
    (w4,) = support_warnings((4, 32), TRAINED, codec)
    assert ("outside the value codes' range 8-64: coded as width 8" if encoding == "value"
            else "not in the code vocabulary 8, 16, 24, 32, 40, 48, 56, 64") in w4
    assert all("\n" not in w for w in both + [w4])


def test_support_warnings_without_a_codec_keep_the_plain_message():
    assert support_warnings((24,) * 3, [(16, 32, 64, 32)]) == [
        "depth 3 was never trained on (extrapolated; trained depths: 4)",
        "width 24 never seen in training (trained widths: 16, 32, 64)"]
    assert support_warnings((16,), []) == []


@pytest.mark.parametrize("arch,why", [
    ("24,32,40", "width 24 never seen in training (interpolated"),
    ("8,16,32,40,48", "depth 5 was never trained on (interpolated between trained depths 4 and 6"),
    ("8,16,32,40,48,64,8", "depth 7 was never trained on (extrapolated"),
    ("4,32", "width 4 never seen in training (outside the value codes' range 8-64"),
])
def test_generate_warns_records_and_strict_refuses(value_model, tmp_path, arch, why):
    run, _ = value_model
    with pytest.warns(nnit.api.SupportWarning, match=why.replace("(", r"\(")):
        res = nnit.generate(run.checkpoint, task="FashionMNIST", arch=arch, num=2, steps=2)
    assert not res.in_support and res.num == 2 and res.arch_encoding == "value"
    rec = generation_record(res, {}, tmp_path / "heatmap.png")["support"]
    assert rec["in_support"] is False and any(w.startswith(why) for w in rec["warnings"]) and rec["arch_encoding"] == "value"
    with pytest.raises(APIError, match="strict mode refuses it"):
        nnit.generate(run.checkpoint, task="FashionMNIST", arch=arch, num=2, steps=2, strict=True)


def test_joint_sampling_at_an_unseen_depth_warns_records_and_strict_refuses(value_model, tmp_path):
    run, _ = value_model
    with pytest.warns(nnit.api.SupportWarning, match=r"joint sampling of depth 5 is outside .*interpolated between trained"):
        res = nnit.generate(run.checkpoint, task="FashionMNIST", depth=5, num=3, steps=2)
    assert res.mode == "joint" and all(a.depth == 5 for a in res.architectures)
    rec = generation_record(res, {}, tmp_path / "heatmap.png")
    assert rec["support"]["in_support"] is False and rec["support"]["warnings"][0].startswith("depth 5 was never trained on")
    assert any(ln.startswith("warning: joint sampling of depth 5 is outside") for ln in res.summary_lines())
    with pytest.raises(APIError, match="joint sampling of depth 5 is outside .*strict mode refuses it"):
        nnit.generate(run.checkpoint, task="FashionMNIST", depth=5, num=3, steps=2, strict=True)
    quiet = nnit.generate(run.checkpoint, task="FashionMNIST", depth=3, num=3, steps=2, strict=True)
    assert quiet.in_support and generation_record(quiet, {}, tmp_path / "h.png")["support"]["in_support"] is True


def test_generate_in_support_is_quiet_and_wider_than_the_canvas_is_an_error(value_model, recwarn):
    run, _ = value_model
    res = nnit.generate(run.checkpoint, task="FashionMNIST", arch="40,16,8", num=2, steps=2, strict=True)
    assert res.in_support and not [w for w in recwarn if issubclass(w.category, nnit.api.SupportWarning)]
    with pytest.raises(APIError, match=r"not expressible by .*patch grid holds at most 64x64"):
        nnit.generate(run.checkpoint, task="FashionMNIST", arch="72,32", num=2, steps=2)


# ---------------------------------------------------------------------------- the data engine on the varied split
def run_cli(*args: str) -> None:
    from nnit.cli import main

    try:
        main([str(a) for a in args])
    except SystemExit as err:
        if err.code not in (0, None):
            raise


def test_tiny_ghn_and_dataset_on_the_varied_split(tmp_path, capsys):
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from _training_scenarios import fake_fashion

    data = fake_fashion(tmp_path / "fashion")
    ghn = tmp_path / "ghn"
    run_cli("train-ghn", "--task", "FashionMNIST", "--preset", "tiny", "--iterations", "2", "--split", "varied",
            "--data-dir", data, "--out", ghn, "--no-progress")
    from nnit.checkpoint import load_checkpoint as load_any

    assert load_any(ghn / "ghn.safetensors").config["train"]["split"] == "varied"
    s = varied_split()
    picks = [s.train[0], s.train[-1], s.by_category()["width"][0], s.by_category()["depth"][0]]
    ds = tmp_path / "dataset"
    run_cli("build-dataset", "--ghn", ghn / "ghn.safetensors", "--preset", "tiny", "--split", "varied", "--data-dir", data,
            "--out", ds, "--archs", *[",".join(map(str, h)) for h in picks], "--no-progress")
    out = capsys.readouterr().out
    assert "held_out/width" in out and "held_out/depth" in out
    index = json.loads((ds / "index.json").read_text())
    assert index["config"]["split"] == "varied"
    recs = {tuple(r["hidden"]): r for r in index["architectures"].values()}
    assert set(recs) == set(picks)
    assert [recs[h]["role"] for h in picks] == ["train", "train", "held_out", "held_out"]
    assert (recs[picks[2]]["category"], recs[picks[3]]["category"]) == ("width", "depth") and "category" not in recs[picks[0]]
    assert all(r["num_kept"] == 2 for r in recs.values())  # the tiny preset keeps without the threshold
    with pytest.raises(SystemExit) as err:  # the GHN's split, not the default paper one
        run_cli("build-dataset", "--ghn", ghn / "ghn.safetensors", "--preset", "tiny", "--data-dir", data,
                "--out", tmp_path / "other", "--no-progress")
    assert err.value.code == 2 and "trained on the 'varied' architecture split" in capsys.readouterr().err
