"""The NNiT transformer: shapes in both token modes, unseen widths, mixed batches, mask correctness."""

from __future__ import annotations

import pytest
import torch

from nnit.diffusion.arch_codes import ArchCodec
from nnit.diffusion.model import MODEL_PRESETS, ModelError, NNiT, nnit_config
from nnit.weights import Architecture, PatchGrid, WeightSet, WidthVocab, collate_tokens


GRID = PatchGrid(8, 64)
CODEC = ArchCodec(WidthVocab((16, 32, 64)))


def _model(seed: int = 0, perturb: bool = True) -> NNiT:
    torch.manual_seed(seed)
    m = NNiT(nnit_config("NNiT-XS")).eval()
    if perturb:  # zero-init heads would make every output 0: give the test something to see
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.05 * torch.randn_like(p))
    return m


def _inputs(archs, mode, unknown="nearest"):
    toks = [GRID.tokenize(WeightSet.init_random(a, 1), mode) for a in archs]
    b = collate_tokens(toks)
    codes, amask = CODEC.encode_batch(archs, unknown)
    B = len(archs)
    t_a = torch.tensor([0, 500] * B)[:B]
    t_w = torch.full((B,), 500)
    return codes, b, amask, t_a, t_w


def test_presets_and_zero_init():
    sizes = {n: NNiT(nnit_config(n)).num_params() for n in ("NNiT-XS", "NNiT-Ti")}
    assert 0.8e6 < sizes["NNiT-Ti"] < 1.5e6  # the CPU model: ~1M params (DESIGN sec. 2)
    assert sizes["NNiT-XS"] < sizes["NNiT-Ti"]
    assert set(MODEL_PRESETS) >= {"NNiT-Ti", "NNiT-S", "NNiT-B"}
    with pytest.raises(ModelError, match="unknown model size"):
        nnit_config("NNiT-XXL")
    m = _model(perturb=False)
    codes, b, amask, t_a, t_w = _inputs([Architecture(42, (16, 32, 64, 32), 8)], "valid")
    eps_a, v_a, eps_w, v_w = m(codes, b.values, b.positions, t_a, t_w, b.token_mask, amask)
    assert eps_w.abs().max() == 0 and v_w.abs().max() == 0 and eps_a.abs().max() == 0  # AdaLN-Zero + zero heads


@pytest.mark.parametrize("mode", ["padded", "valid"])
def test_shapes_both_modes_mixed_batch_and_unseen_widths(mode):
    archs = [Architecture(42, (16, 32, 64, 32), 8), Architecture(42, (24, 48, 16, 64), 8), Architecture(35, (64, 64), 8)]
    m = _model()
    codes, b, amask, t_a, t_w = _inputs(archs, mode)
    eps_a, v_a, eps_w, v_w = m(codes, b.values, b.positions, t_a, t_w, b.token_mask, amask)
    T = b.values.shape[1]
    assert eps_a.shape == v_a.shape == (3, 6, CODEC.dim)
    assert eps_w.shape == v_w.shape == (3, T, 64)
    assert torch.isfinite(eps_w).all() and v_w.abs().max() <= 1
    if mode == "valid":  # a wider layer is just more tokens
        assert [GRID.num_tokens(a, mode) for a in archs] == b.token_mask.sum(1).tolist()
        assert GRID.num_tokens(archs[1], mode) != GRID.num_tokens(archs[0], mode)
    else:
        assert T == 5 * 8 * 9


def test_padding_tokens_do_not_change_real_outputs():
    """The same network alone and in a batch padded to a longer sequence: identical real-token outputs."""
    m = _model()
    small, big = Architecture(42, (16, 16, 32, 16), 8), Architecture(42, (64, 64, 64, 64), 8)
    ws = WeightSet.init_random(small, 1)
    alone = collate_tokens([GRID.tokenize(ws, "valid")])
    mixed = collate_tokens([GRID.tokenize(ws, "valid"), GRID.tokenize(WeightSet.init_random(big, 1), "valid")])
    codes, amask = CODEC.encode_batch([small, big])
    t = torch.tensor([300, 300])
    out1 = m(codes[:1], alone.values, alone.positions, t[:1], t[:1], alone.token_mask, amask[:1])
    out2 = m(codes, mixed.values, mixed.positions, t, t, mixed.token_mask, amask)
    n = alone.values.shape[1]
    assert mixed.values.shape[1] > n
    torch.testing.assert_close(out2[0][:1], out1[0], rtol=1e-4, atol=1e-5)  # arch tokens
    torch.testing.assert_close(out2[2][:1, :n], out1[2], rtol=1e-4, atol=1e-5)  # weight tokens
    # garbage in the padding slots changes nothing either
    vals = mixed.values.clone()
    vals[0, n:] = 1e3
    out3 = m(codes, vals, mixed.positions, t, t, mixed.token_mask, amask)
    torch.testing.assert_close(out3[2][:1, :n], out1[2], rtol=1e-4, atol=1e-5)
    # ...and without the mask they would leak (the mask is doing something)
    out4 = m(codes, vals, mixed.positions, t, t, None, amask)
    assert not torch.allclose(out4[2][:1, :n], out1[2], atol=1e-3)


def test_both_ends_layer_positions_name_the_output_layer_at_every_depth_and_respect_padding():
    """layer_positions="both_ends": a layer's index from the output end comes from each network's own architecture
    token count, so the output layer of a depth-2 and a depth-5 MLP share E_end[0]; in a batch of mixed depths
    (architecture tokens padded) each network's outputs equal its outputs alone."""
    from dataclasses import replace

    torch.manual_seed(0)
    m = NNiT(replace(nnit_config("NNiT-XS"), layer_positions="both_ends")).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    shallow, deep = Architecture(42, (16, 32), 8), Architecture(42, (16, 32, 64, 32, 16), 8)
    # the embedder alone: only the from-end table left, the output layers of both depths embed alike
    pos = m.w_pos
    with torch.no_grad():
        for t in (pos.layer, pos.row, pos.col):
            t.weight.zero_()
    toks = [GRID.tokenize(WeightSet.init_random(a, 1), "valid") for a in (shallow, deep)]
    emb = [pos(t.positions[None], torch.tensor([a.depth])) for t, a in zip(toks, (shallow, deep))]
    out_rows = [t.positions[:, 0] == a.depth for t, a in zip(toks, (shallow, deep))]
    torch.testing.assert_close(emb[0][0, out_rows[0]][0], emb[1][0, out_rows[1]][0])
    assert not torch.allclose(emb[1][0, out_rows[1]][0], emb[1][0, ~out_rows[1]][0])  # a hidden layer differs
    with pytest.raises(ModelError, match="last layer"):
        pos(toks[0].positions[None])
    # the whole model: mixed depths in one padded batch equal each network alone
    torch.manual_seed(1)
    with torch.no_grad():
        for t in (pos.layer, pos.row, pos.col):
            t.weight.normal_(0, 0.05)
    sets = [WeightSet.init_random(a, 1) for a in (shallow, deep)]
    mixed = collate_tokens([GRID.tokenize(ws, "valid") for ws in sets])
    codes, amask = CODEC.encode_batch([shallow, deep])
    assert not amask[0].all()  # the shallow network's architecture tokens are padded
    t = torch.tensor([300, 300])
    both = m(codes, mixed.values, mixed.positions, t, t, mixed.token_mask, amask)
    for i, (a, ws) in enumerate(zip((shallow, deep), sets)):
        alone = collate_tokens([GRID.tokenize(ws, "valid")])
        c1, am1 = CODEC.encode_batch([a])
        one = m(c1, alone.values, alone.positions, t[:1], t[:1], alone.token_mask, am1)
        n, s = alone.values.shape[1], c1.shape[1]
        torch.testing.assert_close(both[2][i:i + 1, :n], one[2], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(both[0][i:i + 1, :s], one[0], rtol=1e-4, atol=1e-5)
    # without the from-end tables (the paper's positions) the same weights give other outputs
    absolute = NNiT(nnit_config("NNiT-XS")).eval()
    absolute.load_state_dict({k: v for k, v in m.state_dict().items() if "from_end" not in k})
    assert not torch.allclose(absolute(codes, mixed.values, mixed.positions, t, t, mixed.token_mask, amask)[2], both[2])
    with pytest.raises(ModelError, match="unknown layer positions"):
        NNiT(replace(nnit_config("NNiT-XS"), layer_positions="relative"))


def test_token_order_equivariance():
    """Positions are carried by embeddings, not by sequence order: permuting tokens permutes outputs."""
    m = _model()
    codes, b, amask, t_a, t_w = _inputs([Architecture(42, (32, 16, 64, 32), 8)], "valid")
    perm = torch.randperm(b.values.shape[1], generator=torch.Generator().manual_seed(0))
    o1 = m(codes, b.values, b.positions, t_a, t_w, b.token_mask, amask)[2]
    o2 = m(codes, b.values[:, perm], b.positions[:, perm], t_a, t_w, b.token_mask[:, perm], amask)[2]
    torch.testing.assert_close(o2, o1[:, perm], rtol=1e-4, atol=1e-5)


def test_timesteps_condition_the_output():
    m = _model()
    codes, b, amask, _, _ = _inputs([Architecture(42, (32, 16, 64, 32), 8)], "valid")
    o = [m(codes, b.values, b.positions, torch.tensor([ta]), torch.tensor([tw]), b.token_mask, amask)[2]
         for ta, tw in ((0, 10), (10, 10), (0, 900))]
    assert not torch.allclose(o[0], o[1]) and not torch.allclose(o[0], o[2])


def test_out_of_table_positions_raise():
    m = _model()
    deep = Architecture(42, (16,) * 9, 8)  # 10 linear layers > max_layers = 9
    codes, b, amask, t_a, t_w = _inputs([deep], "valid")
    with pytest.raises(ModelError, match="architecture tokens|layer"):
        m(codes, b.values, b.positions, t_a, t_w, b.token_mask, amask)


def test_gradients_flow_to_all_parameters():
    m = _model().train()
    codes, b, amask, t_a, t_w = _inputs([Architecture(42, (16, 32, 64, 32), 8), Architecture(42, (64, 16, 16, 64), 8)], "valid")
    t_a = torch.tensor([0, 400])
    out = m(codes, b.values, b.positions, t_a, t_w, b.token_mask, amask)
    sum(o.pow(2).sum() for o in out).backward()
    # the padded rows of the position tables may get no gradient; everything else must
    missing = [n for n, p in m.named_parameters() if (p.grad is None or p.grad.abs().sum() == 0) and "pos" not in n]
    assert not missing, missing
