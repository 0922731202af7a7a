"""Protocol maths, seeding and batching invariance of the harness, bad input (fast: a tiny fake env)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nnit.eval.harness import CPUEvaluator, EvalResult, aggregate, episode_seeds, evaluate
from nnit.eval.protocol import paper_reference, protocol_table, results_table, top_k, top_k_indices
from nnit.tasks.registry import RobotTaskSpec, TaskError
from nnit.weights import Architecture, WeightError, WeightSet


class FakeReachEnv:
    """A 4-d point that the action pushes around; the seed picks the start and the goal.

    Mimics ManiSkill's CPU env API: torch tensors with a leading env dim of 1, ``info["success"]``.
    Stateful on purpose: results are only right if ``reset(seed)`` fully determines an episode.
    """

    def __init__(self, task: RobotTaskSpec):
        self.pos = torch.zeros(1, 4)
        self.goal = torch.zeros(1, 4)

    def reset(self, seed=None, options=None):  # gymnasium's signature; a rebuild (options) has nothing to rebuild here
        g = torch.Generator().manual_seed(int(seed))
        self.pos = torch.rand(1, 4, generator=g) * 2 - 1
        self.goal = torch.rand(1, 4, generator=g) * 2 - 1
        return self._obs(), {}

    def _obs(self):
        return torch.cat([self.pos, self.goal], 1)  # (1, 8)

    def step(self, action):
        assert action.shape == (1, 2) and float(action.abs().max()) <= 1.0  # the harness clamps
        self.pos[:, :2] += 0.1 * action
        dist = float((self.pos - self.goal).norm())
        reward = torch.tensor([1.0 - np.tanh(dist)])
        return self._obs(), reward, torch.tensor([False]), torch.tensor([False]), {"success": torch.tensor([dist < 0.8])}

    def close(self):
        pass


def fake_factory(task: RobotTaskSpec) -> FakeReachEnv:
    return FakeReachEnv(task)


FAKE = RobotTaskSpec("Fake-v0", obs_dim=8, action_dim=2, success_threshold=0.5, return_threshold=1.0, episode_steps=10)


def _nets(n: int, seed: int = 0) -> WeightSet:
    ws = WeightSet.init_random(Architecture(8, (16, 16), 2), n, generator=torch.Generator().manual_seed(seed))
    ws.weights[-1] *= 20  # large outputs so the clamp matters
    return ws


# ---------------------------------------------------------------------- protocol maths
def test_top_k_indices_order_ties_nan():
    p = np.array([1.0, 3.0, 3.0, np.nan, 2.0, 3.0])
    s = np.array([0.0, 0.5, 0.9, 1.0, 0.0, 0.5])
    assert top_k_indices(p, 4, s).tolist() == [2, 1, 5, 4]  # ties: higher secondary, then lower index
    assert top_k_indices(p, 100).tolist() == [1, 2, 5, 4, 0, 3]  # k > N keeps all, NaN last
    with pytest.raises(ValueError):
        top_k_indices(p, 0)


def test_aggregate_and_top_k_summary():
    rets = np.array([[1.0, 3.0], [10.0, 10.0], [5.0, 7.0]])
    once = np.array([[0, 1], [1, 1], [1, 0]], bool)
    end = np.array([[0, 0], [1, 0], [1, 0]], bool)
    m = aggregate(rets, once, end)
    np.testing.assert_allclose(m["mean_return"], [2, 10, 6])
    np.testing.assert_allclose(m["std_return"], [1, 0, 1])
    np.testing.assert_allclose(m["success_rate"], [0.5, 1, 0.5])
    np.testing.assert_allclose(m["success_at_end_rate"], [0, 0.5, 0.5])
    r = EvalResult("Fake-v0", "robot", {"hidden": [4]}, m, {"return": rets}, [0, 1])
    s = top_k(r, 2)
    assert s.indices == (1, 2) and s.k == 2 and s.n == 3 and s.episodes == 2
    assert s.mean == pytest.approx(8.0) and s.std_between == pytest.approx(2.0)
    assert s.std_episodes == pytest.approx(np.std([10, 10, 5, 7]))
    assert s.success_rate == pytest.approx(0.75) and s.success_at_end_rate == pytest.approx(0.5)
    table = protocol_table([s])
    assert "8.00 +- 2.00" in table and "75%" in table and "2/3" in table
    assert results_table(r, limit=2).splitlines()[1].split()[0] == "1"
    assert set(paper_reference()["NNiT"]) == {"PickCube-v1", "PushCube-v1", "StackCubeEasy-v1"}


def test_image_top_k():
    m = {"accuracy": np.array([0.5, 0.9, 0.9]), "loss": np.array([1.0, 0.4, 0.3])}
    s = top_k(EvalResult("FashionMNIST", "image", {"hidden": [8]}, m), 2)
    assert s.indices == (2, 1) and s.mean == pytest.approx(0.9) and np.isnan(s.success_rate)


def test_episode_seeds():
    assert episode_seeds(100, 3) == [100, 101, 102]
    with pytest.raises(ValueError):
        episode_seeds(0, 0)


# ---------------------------------------------------------------------- harness with the fake env
def test_fake_env_batching_and_worker_invariance():
    ws = _nets(5)
    with CPUEvaluator(FAKE, num_workers=0, env_factory=fake_factory) as ev:
        full = ev.evaluate(ws, episodes=3, base_seed=7)
        singles = [ev.evaluate(ws[i], episodes=3, base_seed=7) for i in range(ws.n)]
        shifted = ev.evaluate(ws[1:3], episodes=2, base_seed=8)  # episodes 1..2 of the full run
    rets = full.per_episode["return"]
    assert rets.shape == (5, 3) and full.seeds == [7, 8, 9]
    for i, s in enumerate(singles):
        np.testing.assert_array_equal(s.per_episode["return"][0], rets[i])
    np.testing.assert_array_equal(shifted.per_episode["return"], rets[1:3, 1:3])
    assert len(np.unique(rets)) > 5  # networks and seeds actually differ
    with CPUEvaluator(FAKE, num_workers=2, env_factory=fake_factory) as ev:
        pooled = ev.evaluate(ws, episodes=3, base_seed=7)
    for k in ("return", "success_once", "success_at_end"):
        np.testing.assert_array_equal(pooled.per_episode[k], full.per_episode[k])
    assert pooled.info["num_workers"] == 2 and pooled.info["env_steps"] == 5 * 3 * 10


def test_evaluate_entry_point_with_factory(tmp_path):
    r = evaluate(FAKE, _nets(2), episodes=2, backend="cpu", num_workers=0, env_factory=fake_factory, progress=False)
    json_path, csv_path = r.save(tmp_path / "res.json", extra={"note": 1})
    back = EvalResult.load(json_path)
    np.testing.assert_array_equal(back.metrics["mean_return"], r.metrics["mean_return"])
    assert json.loads(json_path.read_text())["extra"] == {"note": 1}
    assert csv_path.read_text().splitlines()[0] == "network,mean_return,std_return,success_rate,success_at_end_rate"
    assert not list(tmp_path.glob("*.tmp"))


def test_bad_inputs_raise_before_anything_runs(tmp_path):
    wrong_in = WeightSet.init_random(Architecture(9, (4,), 2), 2)
    with pytest.raises(TaskError, match="input dim 9 != the task's 8"):
        evaluate(FAKE, wrong_in, env_factory=fake_factory, num_workers=0)
    wrong_out = WeightSet.init_random(Architecture(8, (4,), 3), 2)
    with pytest.raises(TaskError, match="output dim 3 != the task's 2"):
        evaluate(FAKE, wrong_out, env_factory=fake_factory, num_workers=0)
    nan = _nets(3)
    nan.biases[0][1, 0] = float("nan")
    with pytest.raises(WeightError, match=r"layer 0 bias holds NaN.*\[1\]"):
        evaluate(FAKE, nan, env_factory=fake_factory, num_workers=0)
    with pytest.raises(TaskError, match="unknown task"):
        evaluate("Nope-v9", _nets(1))


def test_cli_errors_write_nothing(tmp_path, capsys):
    from nnit.cli import main

    bad = WeightSet.init_random(Architecture(42, (8,), 8), 2)  # PickCube dims
    bad.save(tmp_path / "pick.safetensors")
    out = tmp_path / "res.json"
    with pytest.raises(SystemExit) as e:
        main(["eval", "--task", "PushCube-v1", "--weights", str(tmp_path / "pick.safetensors"), "--out", str(out)])
    assert e.value.code == 2
    assert "input dim 42 != the task's 35" in capsys.readouterr().err
    assert not out.exists() and not out.with_suffix(".csv").exists()


def test_cli_fashion_mnist(tmp_path, capsys):
    from pathlib import Path

    from nnit.cli import main
    from nnit.tasks.registry import FASHION_MNIST_DIR

    if not Path(FASHION_MNIST_DIR).is_dir():
        pytest.skip("dataset-fashion-mnist not installed")
    out = tmp_path / "f.json"
    main(["eval", "--task", "FashionMNIST", "--random", "3", "--arch", "16,16", "--out", str(out), "--no-progress"])
    d = json.loads(out.read_text())
    assert d["num_networks"] == 3 and d["extra"]["top_k"]["k"] == 3 and "accuracy" in capsys.readouterr().out


# ---------------------------------------------------------------------- ranking episodes, then fresh episodes
def test_top_k_chosen_on_ranking_episodes_is_reported_on_fresh_ones(monkeypatch):
    """nnit.api.evaluate with report_episodes: the top-k is chosen on the ranking episodes (seed, seed + 1, ...), then
    exactly those k networks run again on the fresh episodes (report_seed, ...); both rows are kept, and the fresh row
    equals evaluating the chosen networks directly on the fresh seeds. Joint samples: the joint top-k likewise."""
    import torch

    from nnit import api
    from nnit.eval import harness
    from nnit.eval.protocol import top_k as top_k_fn

    calls: list[tuple[int, int, int]] = []
    real = harness.evaluate

    def fake(spec, ws, episodes=10, base_seed=0, **kw):  # the harness on the fake env, in this process
        calls.append((ws.n, episodes, base_seed))
        return real(FAKE, ws, episodes, base_seed, backend="cpu", num_workers=0, env_factory=fake_factory, progress=False)

    monkeypatch.setattr(harness, "evaluate", fake)
    ws = _nets(6)
    table = api.evaluate(FAKE, ws, 3, 100, top_k=2, report_episodes=4, report_seed=500)
    assert calls == [(6, 3, 100), (2, 4, 500)]
    ranking, fresh = table.rows[0], table.report_rows[0]
    assert ranking == top_k_fn(table.results[ws.arch.hidden], 2) and ranking.episodes == 3
    direct = real(FAKE, ws[torch.as_tensor(list(ranking.indices))], 4, 500, num_workers=0, env_factory=fake_factory, progress=False)
    assert fresh.indices == ranking.indices and fresh.n == 6 and fresh.k == 2 and fresh.episodes == 4
    assert fresh.mean == pytest.approx(float(direct.metrics["mean_return"].mean()))
    assert fresh.success_rate == pytest.approx(float(direct.metrics["success_rate"].mean()))
    assert fresh.mean != ranking.mean  # other episodes, other numbers
    fields = api.report_fields(table, ws.arch.hidden)
    assert fields["report_episodes"] == 4 and fields["report_seed"] == 500 and fields["top_k_report"] == fresh.to_dict()
    assert "4 fresh episodes (seeds 500..503" in table.table()
    calls.clear()  # off by default: no second evaluation, nothing recorded
    plain = api.evaluate(FAKE, ws, 3, 100, top_k=2)
    assert calls == [(6, 3, 100)] and plain.report_rows is None and api.report_fields(plain) == {"report_episodes": 0}
    with pytest.raises(api.APIError, match="overlap the ranking"):
        api.evaluate(FAKE, ws, 3, 100, top_k=2, report_episodes=4, report_seed=102)
    # joint samples (several architectures): the joint top-k re-evaluated per architecture
    other = WeightSet.init_random(Architecture(8, (8, 16), 2), 3, generator=torch.Generator().manual_seed(1))
    gen = api.GenerationResult(task="Fake-v0", generator="NNiT", checkpoint=Path("x"), mode="joint",
                               sets={ws.arch.hidden: ws, other.arch.hidden: other}, sampler="ancestral", steps=1,
                               temperature=1.0, seed=0, seconds=0.0, depth=2, control_mode="pd_joint_delta_pos")
    joint = api.evaluate(FAKE, gen, 3, 100, top_k=3, report_episodes=4, report_seed=500)
    assert joint.joint_row is not None and joint.joint_report_row.indices == joint.joint_row.indices
    assert joint.joint_report_row.k == 3 and joint.joint_report_row.n == 9 and joint.joint_report_row.episodes == 4
    assert api.report_fields(joint)["joint_top_k_report"] == joint.joint_report_row.to_dict()
