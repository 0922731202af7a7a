"""The data engine end to end at the `tiny` preset: GHN training (DAgger / supervised), resume,
dataset building with filtering and resume, and the alignment study — through the real CLI."""

from __future__ import annotations

import json

import pytest
import torch

from nnit.cli import main as nnit_main
from nnit.ghn.train import load_ghn_ensemble


def run_cli(*args: str) -> None:
    try:
        nnit_main(list(args))
    except SystemExit as err:  # tyro exits 0 after a command on some paths
        if err.code not in (0, None):
            raise


@pytest.mark.slow
def test_fashion_mnist_ghn_dataset_alignment(tmp_path):
    ghn_dir = tmp_path / "ghn"
    run_cli("train-ghn", "--task", "FashionMNIST", "--preset", "tiny", "--iterations", "2", "--out", str(ghn_dir), "--no-progress")
    log = [json.loads(l) for l in (ghn_dir / "train_log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in log] == [1, 2]
    with (ghn_dir / "train_log.jsonl").open("a") as fh:  # a run killed after logging an iteration it never checkpointed
        fh.write(json.dumps({"iteration": 3, "loss_mean": 99.0}) + "\n")
    # resume: asking for more iterations continues from the checkpoint (no repeated iterations)
    run_cli("train-ghn", "--task", "FashionMNIST", "--preset", "tiny", "--iterations", "4", "--out", str(ghn_dir), "--no-progress")
    log = [json.loads(l) for l in (ghn_dir / "train_log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in log] == [1, 2, 3, 4]
    assert all(torch.isfinite(torch.tensor(r["loss_mean"])) for r in log)
    assert log[2]["loss_mean"] != 99.0

    ds = tmp_path / "dataset"
    ckpt = ghn_dir / "ghn.safetensors"
    run_cli("build-dataset", "--ghn", str(ckpt), "--preset", "tiny", "--out", str(ds), "--limit-archs", "2", "--no-progress")
    index = json.loads((ds / "index.json").read_text())
    assert len(index["architectures"]) == 2
    for rec in index["architectures"].values():
        assert len(rec["candidates"]) == 2  # one per GHN member
        assert rec["num_kept"] == sum(c["kept"] for c in rec["candidates"])
        assert all(c["passed"] for c in rec["candidates"])  # the tiny preset keeps the best without the threshold
    from nnit.ghn.dataset import role_summary

    summ = role_summary(ds)
    assert summ["train"]["architectures"] == 2 and summ["train"]["candidates"] == 4
    assert summ["train"]["kept"] == sum(r["num_kept"] for r in index["architectures"].values())
    # resume: a rerun with more architectures keeps the finished ones and adds the rest
    before = (ds / "index.json").read_text()
    run_cli("build-dataset", "--ghn", str(ckpt), "--preset", "tiny", "--out", str(ds), "--limit-archs", "3", "--no-progress")
    index2 = json.loads((ds / "index.json").read_text())
    assert len(index2["architectures"]) == 3
    for key, rec in json.loads(before)["architectures"].items():
        assert index2["architectures"][key] == rec

    # a GHN trained further since: its old candidates are stale, so the dataset refuses to resume
    run_cli("train-ghn", "--task", "FashionMNIST", "--preset", "tiny", "--iterations", "5", "--out", str(ghn_dir), "--no-progress")
    with pytest.raises(SystemExit) as err:
        run_cli("build-dataset", "--ghn", str(ckpt), "--preset", "tiny", "--out", str(ds), "--limit-archs", "3", "--no-progress")
    assert err.value.code not in (0, None)
    assert json.loads((ds / "index.json").read_text()) == index2  # nothing already produced is lost

    out = tmp_path / "align"
    run_cli("analyze", "alignment", "--ghn", str(ckpt), "--preset", "tiny", "--out", str(out), "--no-progress")
    rep = json.loads((out / "alignment.json").read_text())
    assert set(rep["sets"]) == {"GHN", "SGD"}
    assert rep["sgd"]["method"] == "cross-entropy" and rep["quality"]["metric"] == "accuracy"
    assert (out / "alignment_heatmaps.png").stat().st_size > 1000


def test_a_dataset_of_another_split_reuses_the_finished_architectures(tmp_path):
    """A GHN of the varied split builds the varied-all-depths split (the same widths and depths); ``--reuse`` copies
    the architectures an earlier dataset of the same GHN and settings finished (shard and record, with the new
    split's role and category) and builds only the rest; a dataset of other settings cannot be reused."""
    from nnit.weights.architecture import get_split

    ghn_dir, first, second = tmp_path / "ghn", tmp_path / "varied", tmp_path / "all-depths"
    run_cli("train-ghn", "--task", "FashionMNIST", "--preset", "tiny", "--iterations", "1", "--split", "varied",
            "--out", str(ghn_dir), "--no-progress")
    ckpt = str(ghn_dir / "ghn.safetensors")
    shallow, depth5 = get_split("varied").train[0], get_split("varied").by_category()["depth"][0]
    new5 = next(h for h in get_split("varied-all-depths").train if len(h) == 5)
    label = lambda h: ",".join(map(str, h))  # noqa: E731
    run_cli("build-dataset", "--ghn", ckpt, "--preset", "tiny", "--split", "varied", "--out", str(first),
            "--archs", label(shallow), label(depth5), "--no-progress")
    run_cli("build-dataset", "--ghn", ckpt, "--preset", "tiny", "--split", "varied-all-depths", "--reuse", str(first),
            "--out", str(second), "--archs", label(shallow), label(depth5), label(new5), "--no-progress")
    old = json.loads((first / "index.json").read_text())["architectures"]
    new = json.loads((second / "index.json").read_text())["architectures"]
    assert set(new) == {label(shallow), label(depth5), label(new5)}
    for h, role, cat in ((shallow, "train", None), (depth5, "held_out", "combination")):
        rec = new[label(h)]
        assert rec["reused_from"] == str(first) and rec["candidates"] == old[label(h)]["candidates"]
        assert (rec["role"], rec.get("category")) == (role, cat) and old[label(depth5)]["category"] == "depth"
        assert (second / "shards" / f"h{label(h).replace(',', '-')}.safetensors").read_bytes() == \
            (first / "shards" / f"h{label(h).replace(',', '-')}.safetensors").read_bytes()
    assert new[label(new5)]["role"] == "train" and "reused_from" not in new[label(new5)]
    # a float32 weights-only release of the same GHN (another file) paints the same networks: it may reuse them
    from nnit.checkpoint import export_release

    release = export_release(ckpt, tmp_path / "release.safetensors", dtype=torch.float32)
    run_cli("build-dataset", "--ghn", str(release), "--preset", "tiny", "--split", "varied-all-depths", "--reuse",
            str(first), "--out", str(tmp_path / "from-release"), "--archs", label(shallow), "--no-progress")
    rec = json.loads((tmp_path / "from-release" / "index.json").read_text())["architectures"][label(shallow)]
    assert rec["reused_from"] == str(first)
    with pytest.raises(SystemExit):  # an fp16 release paints other networks: no reuse
        half = export_release(ckpt, tmp_path / "half.safetensors", dtype=torch.float16)
        run_cli("build-dataset", "--ghn", str(half), "--preset", "tiny", "--split", "varied-all-depths", "--reuse",
                str(first), "--out", str(tmp_path / "from-half"), "--archs", label(shallow), "--no-progress")
    with pytest.raises(SystemExit) as err:  # other settings (episodes): its networks were filtered otherwise
        run_cli("build-dataset", "--ghn", ckpt, "--preset", "tiny", "--split", "varied-all-depths", "--episodes", "3",
                "--reuse", str(first), "--out", str(tmp_path / "other"), "--archs", label(shallow), "--no-progress")
    assert err.value.code not in (0, None)
    with pytest.raises(SystemExit):  # a GHN of the paper's depth-4 space cannot build the varied widths and depths
        paper_ghn = tmp_path / "paper-ghn"
        run_cli("train-ghn", "--task", "FashionMNIST", "--preset", "tiny", "--iterations", "1", "--out", str(paper_ghn),
                "--no-progress")
        run_cli("build-dataset", "--ghn", str(paper_ghn / "ghn.safetensors"), "--preset", "tiny", "--split",
                "varied-all-depths", "--out", str(tmp_path / "x"), "--limit-archs", "1", "--no-progress")


def test_dataset_filter_keeps_best_passing(tmp_path):
    """Kept = the best passing candidates, ranked by the primary metric; normalizer fitted on train."""
    from dataclasses import replace

    from nnit.ghn.dataset import DATASET_PRESETS, passes_filter
    from nnit.tasks.registry import get_task

    push = get_task("PushCube-v1")
    assert passes_filter(push, {"success_rate": 0.9, "mean_return": 35.0}, DATASET_PRESETS["cpu"])
    assert not passes_filter(push, {"success_rate": 0.89, "mean_return": 40.0}, DATASET_PRESETS["cpu"])
    assert not passes_filter(push, {"success_rate": 1.0, "mean_return": 34.9}, DATASET_PRESETS["cpu"])
    stack = get_task("StackCubeEasy-v1")
    assert passes_filter(stack, {"success_rate": 0.8, "mean_return": 30.0}, DATASET_PRESETS["cpu"])
    fm = get_task("FashionMNIST")
    assert passes_filter(fm, {"accuracy": 0.75}, replace(DATASET_PRESETS["cpu"], min_accuracy=0.7))


@pytest.mark.sim
@pytest.mark.slow
def test_pushcube_dagger_tiny(tmp_path):
    ghn_dir = tmp_path / "ghn"
    run_cli("train-ghn", "--task", "PushCube-v1", "--preset", "tiny", "--out", str(ghn_dir), "--workers", "1", "--no-progress")
    log = [json.loads(l) for l in (ghn_dir / "train_log.jsonl").read_text().splitlines()]
    assert log[0]["beta"] == 1.0 and log[1]["beta"] == pytest.approx(0.97)
    assert log[-1]["buffer"] == 50 * len(log)  # one 50-step episode per iteration at the tiny preset
    assert log[-1]["loss_mean"] < log[0]["loss_mean"]
    model, conf = load_ghn_ensemble(ghn_dir / "ghn.safetensors")
    assert conf["control_mode"] == "pd_ee_delta_pos" and model.k == 2
    ds = tmp_path / "dataset"
    run_cli("build-dataset", "--ghn", str(ghn_dir / "ghn.safetensors"), "--preset", "tiny", "--out", str(ds),
            "--limit-archs", "1", "--workers", "1", "--no-progress")
    rec = next(iter(json.loads((ds / "index.json").read_text())["architectures"].values()))
    assert len(rec["candidates"]) == 2 and all(len(c) >= 5 for c in rec["candidates"])


@pytest.mark.sim
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_dagger_with_a_ppo_teacher_is_stored_and_resumed(tmp_path, capsys):
    """--teacher-checkpoint: auto control mode = the expert's, stored in the GHN checkpoint, kept on resume."""
    from dataclasses import replace

    from nnit.experts.ppo import PPO_PRESETS, PPOAgent, save_ppo_checkpoint
    from nnit.tasks.registry import get_task

    spec = get_task("PushCube-v1")  # pd_joint_delta_pos, unlike the scripted teacher's pd_ee_delta_pos
    torch.manual_seed(0)
    expert = tmp_path / "expert"
    save_ppo_checkpoint(expert, PPOAgent(spec.obs_dim, spec.action_dim, hidden=(16, 16, 16)),
                        replace(PPO_PRESETS["tiny"], hidden=(16, 16, 16)), spec, step=1, iteration=1)
    ghn_dir = tmp_path / "ghn"
    common = ("train-ghn", "--task", "PushCube-v1", "--preset", "tiny", "--out", str(ghn_dir), "--workers", "0", "--no-progress")
    run_cli(*common, "--iterations", "1", "--teacher-checkpoint", str(expert))
    _, conf = load_ghn_ensemble(ghn_dir / "ghn.safetensors")
    assert conf["teacher_checkpoint"] == str(expert) and conf["control_mode"] == "pd_joint_delta_pos"
    run_cli(*common, "--iterations", "2")  # resumed without the flag: same teacher, same control mode
    _, conf = load_ghn_ensemble(ghn_dir / "ghn.safetensors")
    assert conf["teacher_checkpoint"] == str(expert) and conf["control_mode"] == "pd_joint_delta_pos"
    log = [json.loads(line) for line in (ghn_dir / "train_log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in log] == [1, 2] and log[-1]["buffer"] == 100
    other = tmp_path / "other"
    save_ppo_checkpoint(other, PPOAgent(spec.obs_dim, spec.action_dim, hidden=(16, 16, 16)),
                        replace(PPO_PRESETS["tiny"], hidden=(16, 16, 16)), spec, step=1, iteration=1)
    with pytest.raises(SystemExit):
        run_cli(*common, "--iterations", "3", "--teacher-checkpoint", str(other))
    assert "another teacher" in capsys.readouterr().err


def test_ghn_config_per_task_iterations():
    """The cpu preset's longer DAgger runs for the grasping tasks, StackCubeEasy's beta decay and the paper's
    StackCubeEasy schedule come from ``ghn_config``; other tasks keep the preset as it is."""
    from nnit.ghn.train import CPU_ITERATIONS, GHN_PRESETS, ghn_config

    assert ghn_config("cpu", "PushCube-v1") == GHN_PRESETS["cpu"]
    for task, iterations in CPU_ITERATIONS.items():
        assert ghn_config("cpu", task).iterations == iterations > GHN_PRESETS["cpu"].iterations
    stack = ghn_config("paper", "StackCubeEasy-v1")
    assert (stack.iterations, stack.meta_batch, stack.beta_decay) == (1500, 16, 0.98)
    assert ghn_config("paper", "PickCube-v1").iterations == GHN_PRESETS["paper"].iterations
    with pytest.raises(ValueError, match="unknown preset"):
        ghn_config("huge", "PushCube-v1")
