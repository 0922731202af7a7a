"""One trainer for every stage (:mod:`nnit.training`): fixed-seed tiny runs give the numbers the loops gave
before they were merged into it, checkpoints keep their layout, and data-parallel training equals one process.

The expected values were recorded with the four hand-written loops (``python tests/_training_scenarios.py``)
before :mod:`nnit.training` replaced them."""

from __future__ import annotations

import pytest
import torch

import _training_scenarios as S  # noqa: E402  (tests/ is on sys.path)

EXPECTED = {'nnit': {'total': [0.33656013011932373,
                    0.4408973455429077,
                    0.5860133171081543,
                    0.2818933129310608,
                    0.25904324650764465,
                    0.17470639944076538,
                    0.16189859807491302,
                    0.05956553667783737,
                    0.31575578451156616,
                    0.4070877134799957,
                    0.6104888319969177,
                    0.37053000926971436,
                    0.11439014971256256,
                    0.39710354804992676,
                    0.14552058279514313,
                    0.15885473787784576,
                    0.4031085669994354,
                    0.5890628099441528,
                    0.35127612948417664,
                    0.01284352969378233,
                    0.3189423382282257,
                    0.2623179256916046,
                    0.6019386649131775,
                    0.33922526240348816,
                    0.07150043547153473,
                    0.06599705666303635,
                    0.23563846945762634,
                    0.07593581825494766,
                    0.29531329870224,
                    0.1644115447998047],
          'model': 7630.046075158791,
          'ema': 7491.492278232165,
          'step': 30,
          'layout': '30dc29b0c093'},
 'd2nwg': {'total': [1.0207310914993286,
                     0.7727826237678528,
                     1.145627498626709,
                     0.9677256941795349,
                     0.956798255443573,
                     0.9949921369552612,
                     1.0434240102767944,
                     0.8304670453071594,
                     0.9323845505714417,
                     0.9111750721931458,
                     0.9213197231292725,
                     0.9181058406829834,
                     0.3552541136741638,
                     0.5432842969894409,
                     0.357191264629364,
                     0.272615522146225,
                     0.22521436214447021,
                     0.3316487669944763,
                     0.42770710587501526,
                     0.09256697446107864,
                     0.32352569699287415,
                     0.13693474233150482,
                     0.35447144508361816,
                     0.26479431986808777],
           'model': 9177.767294200305,
           'ema': 8437.067141499007,
           'step': 24,
           'layout': 'd56076c565b3'},
 'sane': {'total': [2.204556703567505,
                    2.2815210819244385,
                    2.0935356616973877,
                    1.9434517621994019,
                    1.562894344329834,
                    1.81246018409729,
                    1.5730866193771362,
                    1.4692065715789795,
                    1.4873782396316528,
                    1.5297985076904297,
                    1.7773137092590332,
                    1.208838939666748,
                    1.3437718152999878,
                    1.1098942756652832,
                    1.3581123352050781],
          'model': 64539.46353851975,
          'ema': 64535.295479182576,
          'step': 15,
          'layout': '7f3983eaad69'},
 'ghn': {'loss_mean': [2.860297679901123, 2.600398302078247, 2.561387538909912, 2.3980166912078857],
         'lr': [0.0009851453301853628, 0.0008833781400934471, 0.0007564765297211899, 0.0007],
         'model': 2592.7263929655746,
         'ema': 0.0,
         'step': 4,
         'layout': '2916b0e5844a'}}
"""Per-step loss curves (GHN: per-iteration mean loss and LR), |weight| sums of the final checkpoint
(model and EMA), its step and a hash of its layout (tensor names, kind, sections, config keys)."""


def assert_same(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for key, val in want.items():
        if isinstance(val, str) or key == "step":
            assert got[key] == val, key
        else:
            torch.testing.assert_close(torch.tensor(got[key], dtype=torch.float64), torch.tensor(val, dtype=torch.float64),
                                       rtol=1e-5, atol=1e-7, msg=key)


def test_nnit_reproduces_the_recorded_run(tmp_path):
    assert_same(S.run_nnit(tmp_path), EXPECTED["nnit"])


def test_d2nwg_reproduces_the_recorded_run(tmp_path):
    assert_same(S.run_d2nwg(tmp_path), EXPECTED["d2nwg"])


def test_sane_reproduces_the_recorded_run(tmp_path):
    assert_same(S.run_sane(tmp_path), EXPECTED["sane"])


def test_ghn_reproduces_the_recorded_run(tmp_path):
    assert_same(S.run_ghn(tmp_path / "ghn", S.fake_fashion(tmp_path / "fashion")), EXPECTED["ghn"])


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_data_parallel_two_processes_equal_one(tmp_path):
    """2 gloo processes with half the batch each (and an NNiT resume in between) train NNiT, D2NWG and SANE
    as 1 process with the whole batch."""
    import json

    import torch.multiprocessing as mp

    from nnit.checkpoint import load_checkpoint

    single = S.ddp_runs(tmp_path / "one")
    mp.start_processes(S.ddp_worker, args=(2, _free_port(), str(tmp_path / "two")), nprocs=2, join=True, start_method="spawn")
    curves = [json.loads((tmp_path / "two" / f"curves.{r}.json").read_text()) for r in range(2)]
    assert curves[0] == curves[1]  # every rank logs the loss averaged over the ranks
    for key in ("nnit", "d2nwg", "sane", "sane_recon"):
        assert len(curves[0][key]) == len(single[key])
        torch.testing.assert_close(torch.tensor(curves[0][key]), torch.tensor(single[key]), rtol=1e-5, atol=1e-6, msg=key)
    ck, d_ck = load_checkpoint(tmp_path / "two" / "nnit"), load_checkpoint(tmp_path / "two" / "d2nwg")
    assert ck.step == S.DDP_NNIT_STEPS
    torch.testing.assert_close(ck.model, single["nnit_model"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ck.ema, single["nnit_ema"], rtol=1e-5, atol=1e-6)
    # Adam turns the last-bit differences of near-zero gradients into update-sized ones: a looser atol (how large
    # depends on the CPU's floating-point kernels)
    torch.testing.assert_close(d_ck.model, single["d2nwg_model"], rtol=1e-5, atol=5e-5)
    sane = load_checkpoint(tmp_path / "two" / "sane").model
    anchors = {k for k in sane if k.startswith("anchor_")}  # latent statistics of the final EMA encoder
    torch.testing.assert_close({k: v for k, v in sane.items() if k not in anchors},
                               {k: v for k, v in single["sane_model"].items() if k not in anchors}, rtol=1e-5, atol=5e-5)
    torch.testing.assert_close({k: sane[k] for k in anchors}, {k: single["sane_model"][k] for k in anchors}, rtol=1e-3, atol=1e-4)
    logged = [json.loads(line)["step"] for line in (tmp_path / "two" / "nnit" / "train_log.jsonl").read_text().splitlines()]
    assert logged == [2, 4, 6, 8]  # written once (rank 0), the stopped half not repeated


def test_cosine_lr_and_ema():
    from nnit.training import cosine_lr, ema_of

    assert cosine_lr(0, 100, 1.0, 0.1, warmup=10) == pytest.approx(0.1)
    assert cosine_lr(9, 100, 1.0, 0.1, warmup=10) == pytest.approx(1.0)
    assert cosine_lr(100, 100, 1.0, 0.1, warmup=10) == cosine_lr(500, 100, 1.0, 0.1, warmup=10) == pytest.approx(0.1)
    assert cosine_lr(50, 100, 1.0, 0.1, start=50) == pytest.approx(1.0)  # a second phase restarts the schedule
    net = torch.nn.Linear(3, 2)
    ema = ema_of(net, 0.9)
    assert ema.module.state_dict().keys() == net.state_dict().keys()  # checkpoints keep the model's names
    torch.testing.assert_close(ema.module.weight, net.weight)  # starts at the weights
    before = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update_parameters(net)
    torch.testing.assert_close(ema.module.weight, before + 0.1)


def test_trainer_refuses_torchrun_for_single_process_stages(tmp_path, monkeypatch):
    from nnit.training import LoopConfig, Trainer

    monkeypatch.setenv("WORLD_SIZE", "2")
    net = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="one process"):
        Trainer(net, torch.optim.SGD(net.parameters(), lr=0.1), tmp_path, LoopConfig(total=1, kind="x"), config={},
                lr_fn=lambda s: 0.1, generator=torch.Generator())
