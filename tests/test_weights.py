"""Weight representation: architectures, batched MLPs, safetensors, tokenization, normalization."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nnit.weights import (
    Architecture,
    ArchitectureError,
    GridError,
    PatchGrid,
    WeightError,
    WeightNormalizer,
    WeightSet,
    WidthVocab,
    collate_tokens,
    paper_split,
    search_space,
)

# ---------------------------------------------------------------------- architectures


def test_parse_forms_and_properties():
    a = Architecture.parse("32,16,64,32", 42, 8)
    assert a.hidden == (32, 16, 64, 32)
    assert Architecture.parse("[32, 16, 64, 32]", 42, 8) == a
    assert a.widths == (42, 32, 16, 64, 32, 8)
    assert a.layer_shapes == [(32, 42), (16, 32), (64, 16), (32, 64), (8, 32)]
    assert a.num_params == sum(o * i + o for o, i in a.layer_shapes)
    assert Architecture.from_json(a.to_json()) == a


@pytest.mark.parametrize("bad", ["", "32,,16", "32x16", "a,b", "32,-4", "0,16", "[]"])
def test_parse_rejects_bad_strings(bad):
    with pytest.raises(ArchitectureError):
        Architecture.parse(bad, 42, 8)


def test_unknown_activation():
    with pytest.raises(ArchitectureError, match="activation"):
        Architecture(4, (8,), 2, "sigmoidish")


def test_paper_split_is_deterministic_and_complete():
    s = paper_split()
    assert s == paper_split()
    assert len(s.train) == 64 and len(s.held_out) == 8 and len(s.validation) == 1 and len(s.excluded) == 8
    for known in [(32, 32, 16, 64), (32, 32, 32, 64), (32, 16, 16, 16), (16, 16, 16, 32), (16, 64, 64, 32)]:
        assert s.role(known) == "held_out"
    everything = set(s.train) | set(s.held_out) | set(s.validation) | set(s.excluded)
    assert everything == set(search_space()) and len(search_space()) == 81
    assert not set(s.train) & set(s.held_out)
    assert all(not (h[2] == 16 and h[3] == 16) for h in s.train)
    assert s.role((100, 100, 100, 100)) == "outside"


def test_width_vocab_round_trip_and_errors():
    v = WidthVocab()
    a = Architecture(42, (32, 16, 64, 32), 8)
    toks = v.encode(a)
    assert toks[0] == v.INPUT and toks[-1] == v.OUTPUT and len(toks) == 6
    assert v.decode(toks, 42, 8) == a
    with pytest.raises(ArchitectureError, match="not in the token vocabulary"):
        v.encode(Architecture(42, (32, 24, 64, 32), 8))
    with pytest.raises(ArchitectureError):
        v.decode([v.INPUT, 99, v.OUTPUT], 42, 8)
    assert v.width_of(v.nearest_width_token(40)) == 32


# ---------------------------------------------------------------------- batched MLP

archs = st.builds(
    lambda i, h, o: Architecture(i, tuple(h), o),
    st.integers(1, 20),
    st.lists(st.integers(1, 20), min_size=0, max_size=5),
    st.integers(1, 10),
)


@settings(max_examples=30, deadline=None)
@given(arch=archs, n=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_batched_forward_equals_sequential(arch, n, seed):
    g = torch.Generator().manual_seed(seed)
    ws = WeightSet.init_random(arch, n, generator=g)
    x = torch.randn(5, arch.input_dim, generator=g)
    out = ws(x)
    assert out.shape == (n, 5, arch.output_dim)
    for k in range(n):
        torch.testing.assert_close(out[k], ws.to_sequential(k)(x), rtol=1e-5, atol=1e-6)
    # per-network inputs
    xs = torch.randn(n, 3, arch.input_dim, generator=g)
    for k in range(n):
        torch.testing.assert_close(ws(xs)[k], ws.to_sequential(k)(xs[k]), rtol=1e-5, atol=1e-6)


def test_hidden_neuron_permutation_leaves_outputs_unchanged():
    """The permutation symmetry the paper is about: reordering hidden neurons changes weights, not the function."""
    torch.manual_seed(0)
    arch = Architecture(7, (16, 32, 8), 3)
    ws = WeightSet.init_random(arch, 2)
    W = [w.clone() for w in ws.weights]
    B = [b.clone() for b in ws.biases]
    for l in range(arch.depth):
        perm = torch.randperm(arch.hidden[l])
        W[l] = W[l][:, perm, :]
        B[l] = B[l][:, perm]
        W[l + 1] = W[l + 1][:, :, perm]
    permuted = WeightSet(arch, W, B)
    x = torch.randn(11, 7)
    assert not torch.equal(permuted.to_vector(), ws.to_vector())
    torch.testing.assert_close(permuted(x), ws(x), rtol=1e-5, atol=1e-6)


def test_vector_round_trip_and_sequential_import():
    arch = Architecture(5, (4, 6), 2, "relu")
    ws = WeightSet.init_random(arch, 3)
    back = WeightSet.from_vector(arch, ws.to_vector())
    assert torch.equal(back.to_vector(), ws.to_vector())
    seq = ws.to_sequential(1)
    again = WeightSet.from_sequential(seq)
    assert again.arch == arch and torch.equal(again.to_vector()[0], ws.to_vector()[1])


def test_shape_and_input_errors():
    arch = Architecture(5, (4,), 2)
    ws = WeightSet.init_random(arch, 2)
    with pytest.raises(WeightError, match="expects 5"):
        ws(torch.randn(3, 6))
    with pytest.raises(WeightError, match="layer 0 weight"):
        WeightSet(arch, [torch.zeros(2, 4, 4), ws.weights[1]], ws.biases)
    with pytest.raises(WeightError):
        WeightSet.from_vector(arch, torch.zeros(2, arch.num_params + 1))


def test_nan_weights_are_reported():
    ws = WeightSet.init_random(Architecture(3, (4,), 2), 3)
    ws.weights[1][2, 0, 0] = float("nan")
    with pytest.raises(WeightError, match=r"layer 1 weight holds NaN.*\[2\]"):
        ws.check_finite()


# ---------------------------------------------------------------------- safetensors


def test_safetensors_round_trip(tmp_path):
    arch = Architecture(42, (32, 16, 64, 32), 8)
    ws = WeightSet.init_random(arch, 4)
    path = ws.save(tmp_path / "nets.safetensors", extra_metadata={"task": "PickCube-v1"})
    back = WeightSet.load(path)
    assert back.arch == arch and torch.equal(back.to_vector(), ws.to_vector())
    assert not (tmp_path / "nets.safetensors.tmp").exists()
    raw = path.read_bytes()
    assert b"pickle" not in raw[:200]


def test_truncated_file_gives_clear_error(tmp_path):
    ws = WeightSet.init_random(Architecture(4, (8,), 2), 2)
    path = ws.save(tmp_path / "w.safetensors")
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(WeightError, match="truncated"):
        WeightSet.load(path)
    with pytest.raises(WeightError, match="does not exist"):
        WeightSet.load(tmp_path / "missing.safetensors")


def test_nan_file_is_refused(tmp_path):
    ws = WeightSet.init_random(Architecture(4, (8,), 2), 1)
    ws.biases[0][0, 0] = float("inf")
    path = ws.save(tmp_path / "w.safetensors")
    with pytest.raises(WeightError, match="NaN or inf"):
        WeightSet.load(path)


# ---------------------------------------------------------------------- tokenization

grid_archs = st.builds(
    lambda i, h, o: Architecture(i, tuple(h), o),
    st.integers(1, 100),
    st.lists(st.sampled_from([1, 5, 16, 24, 32, 48, 64, 100, 7]), min_size=0, max_size=6),
    st.integers(1, 100),
)


@settings(max_examples=60, deadline=None)
@given(arch=grid_archs, mode=st.sampled_from(["padded", "valid"]), p=st.sampled_from([4, 8, 16]), n=st.integers(1, 3))
def test_tokenize_assemble_round_trip(arch, mode, p, n):
    grid = PatchGrid(patch_size=p, max_width=112)
    ws = WeightSet.init_random(arch, n)
    tokens = grid.tokenize(ws, mode)
    assert tokens.values.shape == (n, grid.num_tokens(arch, mode), p * p)
    back = grid.assemble(arch, tokens.values, mode)
    assert back.arch == arch
    assert torch.equal(back.to_vector(), ws.to_vector())
    # the element mask counts every real parameter exactly once
    assert int(tokens.element_mask.sum()) == arch.num_params
    # padding entries are zero
    assert torch.all(tokens.values[:, ~tokens.element_mask] == 0)


def test_valid_tokens_are_the_real_subset_of_padded_tokens():
    grid = PatchGrid(8, 64)
    arch = Architecture(42, (32, 16, 64, 32), 8)
    ws = WeightSet.init_random(arch, 2)
    pad, val = grid.tokenize(ws, "padded"), grid.tokenize(ws, "valid")
    pad_pos = {tuple(p): k for k, p in enumerate(pad.positions.tolist())}
    for k, pos in enumerate(val.positions.tolist()):
        assert torch.equal(val.values[:, k], pad.values[:, pad_pos[tuple(pos)]])
    # every padded token not in the valid set is pure padding
    valid_set = {tuple(p) for p in val.positions.tolist()}
    rest = [k for p, k in pad_pos.items() if p not in valid_set]
    assert torch.all(pad.values[:, rest] == 0)
    assert pad.num_tokens == 5 * 8 * 9
    expected_valid = sum(math.ceil(o / 8) * (math.ceil(i / 8) + 1) for o, i in arch.layer_shapes)
    assert val.num_tokens == expected_valid


def test_bias_sits_at_a_fixed_column_for_every_fan_in():
    grid = PatchGrid(8, 64)
    for fan_in in (16, 32, 64):
        arch = Architecture(fan_in, (16,), 4)
        ws = WeightSet.init_random(arch, 1)
        canvas = grid.to_canvas(ws)
        assert torch.equal(canvas[0, 0, :16, 64], ws.biases[0][0])


def test_grid_overflow_and_bad_tokens():
    grid = PatchGrid(8, 64)
    with pytest.raises(GridError, match="layer 1 .* at most 64x64"):
        grid.tokenize(WeightSet.init_random(Architecture(42, (32, 100), 8), 1))
    with pytest.raises(GridError, match="multiple of the patch size"):
        PatchGrid(8, 60)
    arch = Architecture(42, (32,), 8)
    with pytest.raises(GridError, match="needs token values"):
        grid.assemble(arch, torch.zeros(1, 3, 64), "valid")
    with pytest.raises(GridError, match="unknown token mode"):
        grid.positions(arch, "ragged")


def test_collate_pads_mixed_architectures():
    grid = PatchGrid(8, 64)
    a = grid.tokenize(WeightSet.init_random(Architecture(42, (16, 16), 8), 2))
    b = grid.tokenize(WeightSet.init_random(Architecture(42, (64, 64, 64), 8), 1))
    batch = collate_tokens([a, b])
    assert batch.values.shape == (3, b.num_tokens, 64)
    assert batch.token_mask.sum(1).tolist() == [a.num_tokens, a.num_tokens, b.num_tokens]
    assert torch.equal(batch.values[2, : b.num_tokens], b.values[0])
    assert not batch.element_mask[0, a.num_tokens :].any()


# ---------------------------------------------------------------------- normalization


def test_normalizer_fit_apply_invert(tmp_path):
    torch.manual_seed(0)
    arch = Architecture(10, (16, 16), 4)
    sets = [WeightSet.init_random(arch, 5) for _ in range(3)]
    for s in sets:
        for w in s.weights:
            w.mul_(3.0).add_(0.5)
    norm = WeightNormalizer.fit(sets, target_std=0.5)
    allv = torch.cat([s.to_vector() for s in sets]).flatten()
    z = torch.cat([norm.apply(s).to_vector() for s in sets]).flatten()
    assert abs(float(z.mean())) < 1e-5 and abs(float(z.std(unbiased=False)) - 0.5) < 1e-4
    back = norm.invert(norm.apply(sets[0]))
    torch.testing.assert_close(back.to_vector(), sets[0].to_vector(), rtol=1e-5, atol=1e-6)
    assert abs(norm.mean - float(allv.double().mean())) < 1e-9
    again = WeightNormalizer.load(norm.save(tmp_path / "norm.json"))
    assert again == norm


def test_per_role_normalizer_unit_std_per_role_and_exact_inverse(tmp_path):
    from nnit.weights.normalize import ROLES, layer_role

    torch.manual_seed(0)
    scales = {"first": 2.0, "hidden": 0.5, "last": 0.05}
    sets = []
    for hidden in [(16, 16, 32), (32, 8), (64,)]:
        ws = WeightSet.init_random(Architecture(10, hidden, 4), 6)
        L = len(ws.weights)
        for i, (w, b) in enumerate(zip(ws.weights, ws.biases)):
            w.normal_().mul_(scales[layer_role(i, L)]).add_(0.3)
            b.normal_().mul_(0.1)
        sets.append(ws)
    norm = WeightNormalizer.fit(sets, target_std=0.7, mode="per_role")
    assert set(norm.roles) == set(ROLES)
    assert norm.roles["last.weight"][1] < 0.1 < norm.roles["first.weight"][1]
    per_role: dict[str, list[torch.Tensor]] = {r: [] for r in ROLES}
    for ws in sets:
        z = norm.apply(ws)
        L = len(z.weights)
        for i, (w, b) in enumerate(zip(z.weights, z.biases)):
            per_role[f"{layer_role(i, L)}.weight"].append(w.flatten())
            per_role[f"{layer_role(i, L)}.bias"].append(b.flatten())
        torch.testing.assert_close(norm.invert(z).to_vector(), ws.to_vector(), rtol=1e-5, atol=1e-6)
    for r, xs in per_role.items():
        x = torch.cat(xs)
        assert abs(float(x.mean())) < 1e-4 and abs(float(x.std(unbiased=False)) - 0.7) < 1e-3, r
    again = WeightNormalizer.load(norm.save(tmp_path / "norm.json"))
    assert again == norm
    # a role missing from the data (no hidden-to-hidden layer) falls back to the global statistics
    only_one = WeightNormalizer.fit([WeightSet.init_random(Architecture(10, (16,), 4), 3)], mode="per_role")
    assert only_one.roles["hidden.weight"] == [only_one.mean, only_one.std]
    with pytest.raises(WeightError, match="per_role"):
        WeightNormalizer(0.0, 1.0, 1.0, "per_role", {"first.weight": [0.0, 1.0]})


def test_normalizer_errors(tmp_path):
    with pytest.raises(WeightError):
        WeightNormalizer(0.0, 0.0, 1.0)
    with pytest.raises(WeightError):
        WeightNormalizer(float("nan"), 1.0, 1.0)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(WeightError, match="cannot read"):
        WeightNormalizer.load(tmp_path / "bad.json")


def test_memorization_alignment_recovers_permuted_copies():
    from nnit.analysis.memorization import memorization_stats, nearest_aligned_distances

    torch.manual_seed(0)
    arch = Architecture(6, (8, 8), 3)
    train = WeightSet.init_random(arch, 4)
    # generated = training network 2 with its hidden neurons shuffled (the same function)
    p1, p2 = torch.randperm(8), torch.randperm(8)
    w = [train.weights[0][2:3, p1], train.weights[1][2:3][:, p2][:, :, p1], train.weights[2][2:3][:, :, p2]]
    b = [train.biases[0][2:3, p1], train.biases[1][2:3, p2], train.biases[2][2:3]]
    copy = WeightSet(arch, w, b)
    x = torch.randn(5, 6)
    torch.testing.assert_close(copy.forward(x.expand(1, -1, -1)), train[2:3].forward(x.expand(1, -1, -1)))
    assert nearest_aligned_distances(copy, train)[0] < 1e-9
    s = memorization_stats(copy, train)
    assert s["ratio_median"] < 1e-6 and s["train_to_train_median"] > 0.1
    fresh = memorization_stats(WeightSet.init_random(arch, 3), train)
    assert fresh["ratio_median"] > 0.5
    # one training network: no within-training distance, so no ratio (None, not NaN: the report prints '–')
    single = memorization_stats(copy, train[2:3])
    assert single["train_to_train_median"] is None and single["ratio_median"] is None
    assert single["gen_to_train_median"] < 1e-9
