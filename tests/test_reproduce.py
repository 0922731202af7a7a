"""`nnit reproduce`: the stage plan, caching / resume, and the report (fast); the tiny preset, and the paper preset's
pipeline (PPO experts first) at the tiny preset's scale, end to end (slow)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nnit.reproduce import stages
from nnit.reproduce.pipeline import REPRODUCE_PRESETS, Pipeline, ReproduceConfig, StageFailed
from nnit.reproduce.report import write_report


def test_plan_covers_every_stage_and_passes_out_dirs(tmp_path):
    pipe = Pipeline("tiny", REPRODUCE_PRESETS["tiny"], root=tmp_path)
    names = [s.name for s in pipe.stages("PushCube-v1")]
    assert names[:7] == ["teacher", "ghn", "dataset", "alignment", "nnit", "d2nwg", "sane"]
    assert "eval-dataset-h32-16-64-32" in names and "eval-sane-h32-32-16-64" in names and names[-3:] == ["joint-t1", "joint", "memorization"]
    assert "teacher" not in [s.name for s in pipe.stages("FashionMNIST")]
    for s in pipe.stages("PushCube-v1"):
        if s.command:  # every command writes under the pipeline's root, never the default runs/
            outs = [s.command[i + 1] for i, a in enumerate(s.command) if a == "--out"]
            assert outs and outs[0].startswith(str(tmp_path)), s.command
            assert s.command[-1] == "--no-progress"
    ds = next(s for s in pipe.stages("PushCube-v1") if s.name == "dataset")
    assert "--archs" in ds.command  # the tiny preset builds only the architectures it evaluates (+ a few)
    from nnit.weights import paper_split

    split = paper_split()
    archs = ds.command[ds.command.index("--archs") + 1 : ds.command.index("--no-progress")]
    assert archs and all(tuple(map(int, a.split(","))) in split.train + split.held_out for a in archs)
    ev = next(s for s in pipe.stages("PushCube-v1") if s.name == "eval-dataset-h32-16-64-32")
    assert ev.command[ev.command.index("--control-mode") + 1] == "pd_ee_delta_pos"


def test_every_stage_calls_its_function_with_arguments_it_takes(tmp_path):
    """Each stage is a call of a function of nnit.reproduce.stages; its keyword arguments (the preset's stage_args
    included, also as flags of the recorded command) must fit that function's signature."""
    import inspect
    from dataclasses import replace

    from nnit.reproduce.pipeline import StageCall

    extra = {"eval": {"workers": 2}, "nnit": {"steps": 7}, "d2nwg": {"steps": 5}}
    cfg = replace(REPRODUCE_PRESETS["tiny"], stage_args={**REPRODUCE_PRESETS["tiny"].stage_args, **extra})
    pipe = Pipeline("tiny", cfg, root=tmp_path, data_dir=tmp_path / "idx")
    paper = Pipeline("paper", replace(REPRODUCE_PRESETS["paper"], stage_args={**extra, "expert": {"workers": 1, "total_steps": 300}}),
                     root=tmp_path, data_dir=tmp_path / "idx")  # the paper's plan has the expert stage
    for p, task in [(pipe, t) for t in cfg.tasks] + [(paper, t) for t in paper.cfg.tasks]:
        for s in p.stages(task):
            if not isinstance(s.func, StageCall):
                assert s.name in ("teacher", "memorization") and s.command is None
                continue
            inspect.signature(getattr(stages, s.func.function)).bind(**s.func.kwargs)
            if s.name.startswith("eval-"):
                assert s.func.kwargs["workers"] == 2 and s.command[-3:] == ["--workers", "2", "--no-progress"]
            if task == "FashionMNIST" and s.name != "nnit" and s.name not in cfg.baselines:
                assert s.func.kwargs["data_dir"] == tmp_path / "idx" and "--data-dir" in s.command
    plan = {s.name: s for s in pipe.stages("PushCube-v1")}
    assert plan["nnit"].func.kwargs["steps"] == 7 and plan["d2nwg"].func.kwargs["steps"] == 5 and "--steps" in plan["nnit"].command
    expert = next(s for s in paper.stages("PickCube-v1") if s.name == "expert")
    assert expert.func.kwargs["total_steps"] == 300 and expert.command[-5:] == ["--workers", "1", "--total-steps", "300", "--no-progress"]


def test_the_paper_preset_trains_ppo_experts_first_and_distils_them(tmp_path):
    """paper: per robot task, the expert stage (nnit train-expert) before the teacher and GHN stages, the GHN
    ensemble given the expert as its teacher, the dataset's networks evaluated in the expert's controller;
    tiny and cpu keep the scripted teachers; Fashion-MNIST has neither teacher stage."""
    assert REPRODUCE_PRESETS["paper"].ppo_experts and not REPRODUCE_PRESETS["cpu"].ppo_experts
    pipe = Pipeline("paper", REPRODUCE_PRESETS["paper"], root=tmp_path)
    plan = {s.name: s for s in pipe.stages("PickCube-v1")}
    assert list(plan)[:4] == ["expert", "teacher", "ghn", "dataset"]
    expert_dir = tmp_path / "paper" / "PickCube-v1" / "expert"
    assert pipe.expert_dir("PickCube-v1") == expert_dir == pipe.teacher_checkpoint("PickCube-v1")
    assert plan["expert"].command[:7] == ["train-expert", "--task", "PickCube-v1", "--preset", "paper", "--out", str(expert_dir)]
    assert plan["expert"].func.function == "train_expert" and plan["expert"].done_file == expert_dir / "train_done.json"
    assert plan["ghn"].func.kwargs["teacher_checkpoint"] == expert_dir
    assert plan["ghn"].command[plan["ghn"].command.index("--teacher-checkpoint") + 1] == str(expert_dir)
    ev = plan["eval-dataset-h32-16-64-32"]
    assert ev.func.kwargs["control_mode"] == "pd_joint_delta_pos"  # the expert's controller, before the dataset exists
    assert next(s.name for s in pipe.stages("FashionMNIST")) == "ghn" and pipe.teacher_checkpoint("FashionMNIST") is None
    for preset in ("tiny", "cpu"):
        scripted = Pipeline(preset, REPRODUCE_PRESETS[preset], root=tmp_path)
        names = [s.name for s in scripted.stages("PushCube-v1")]
        ghn = next(s for s in scripted.stages("PushCube-v1") if s.name == "ghn")
        assert "expert" not in names and names[0] == "teacher" and "teacher_checkpoint" not in ghn.func.kwargs


def test_outputs_made_with_the_other_kind_of_teacher_are_stale(tmp_path, monkeypatch):
    """A GHN ensemble or teacher measurement made with the scripted teacher (e.g. before the paper preset trained PPO
    experts) is rerun at a preset with PPO experts, its old outputs moved aside; the tiny preset's stay cached."""
    paper = Pipeline("paper", REPRODUCE_PRESETS["paper"], root=tmp_path)
    tiny = Pipeline("paper", REPRODUCE_PRESETS["tiny"], root=tmp_path)  # same directories, scripted teachers
    plan = {s.name: s for s in paper.stages("PushCube-v1")}
    ghn, teacher = plan["ghn"], plan["teacher"]
    ghn.output.mkdir(parents=True)
    ghn.done_file.write_text(json.dumps({"stage": "ghn", "command": "nnit train-ghn ..."}))  # a run from before: no teacher recorded
    teacher.done_file.parent.mkdir(parents=True)
    teacher.done_file.write_text(json.dumps({"success_once": 1.0}))
    assert ghn.stale() == "teacher scripted != ppo_expert" and teacher.stale() == "teacher scripted != ppo_expert"
    assert all(s.stale() is None for s in tiny.stages("PushCube-v1") if s.name in ("ghn", "teacher"))
    calls: list[dict] = []
    monkeypatch.setattr(stages, "train_ghn", _recorder(calls))
    logs: list[str] = []
    paper.run(tasks=["PushCube-v1"], only=["ghn"], log=logs.append)
    assert calls[0]["teacher_checkpoint"] == paper.expert_dir("PushCube-v1")
    assert any("other settings (teacher scripted != ppo_expert)" in ln for ln in logs)
    assert json.loads(ghn.done_file.read_text())["teacher"] == "ppo_expert" and ghn.stale() is None
    assert [p.name for p in ghn.output.parent.iterdir() if p.name.startswith("ghn.old-")]  # the old run is kept


def test_cached_stages_are_skipped_and_a_failure_is_reported(tmp_path, monkeypatch):
    pipe = Pipeline("tiny", REPRODUCE_PRESETS["tiny"], root=tmp_path)
    for s in pipe.stages("FashionMNIST"):
        s.done_file.parent.mkdir(parents=True, exist_ok=True)
        s.done_file.write_text(json.dumps(_as_expected(s)))  # NNiT's samples at their stage's temperature
    logs: list[str] = []
    pipe.run(tasks=["FashionMNIST"], log=logs.append)
    assert logs and all("done (cached" in ln for ln in logs)
    # a stage that fails: the error and the log's tail in the message, timing recorded as failed
    ghn = next(s for s in pipe.stages("PushCube-v1") if s.name == "ghn")

    def boom(**kwargs):
        print("boom")
        raise ValueError("no GHN today (3)")

    monkeypatch.setattr(stages, "train_ghn", boom)
    with pytest.raises(StageFailed, match=r"ValueError: no GHN today \(3\)") as err:
        pipe.run(tasks=["PushCube-v1"], only=["ghn"], log=lambda s: None)
    assert "boom" in str(err.value) and "Traceback" in str(err.value)  # the log's tail
    log = pipe.log_file("PushCube-v1", "ghn").read_text()
    assert log.startswith("$ nnit train-ghn --task PushCube-v1") and "boom" in log
    t = json.loads(pipe.timings_path.read_text())
    assert t["PushCube-v1"]["ghn"]["status"] == "failed" and not ghn.done_file.exists()
    assert t["PushCube-v1"]["ghn"]["command"].startswith("nnit train-ghn --task PushCube-v1")


def _as_expected(stage, **extra) -> dict:
    """A done file's contents matching what ``stage`` expects (e.g. NNiT's sampling temperature), plus ``extra``."""
    out: dict = {}
    for key, (want, _) in stage.expect.items():  # a dotted key is a nested value (extra.report_episodes)
        *path, last = key.split(".")
        d = out
        for k in path:
            d = d.setdefault(k, {})
        d[last] = want
    return {**out, **extra}


def _recorder(calls: list, write=None):
    """A stand-in for a function of nnit.reproduce.stages: records its keyword arguments, prints, writes its output."""

    def fake(**kwargs):
        calls.append(kwargs)
        print("fake stage ran")
        if write is not None:
            write(kwargs)

    return fake


def test_a_killed_training_run_is_not_taken_for_a_finished_one(tmp_path, monkeypatch):
    """Training stages checkpoint while they run: a checkpoint alone (a killed run) must not count as done;
    the stage runs again (and resumes) and is marked done only after its call returns."""
    pipe = Pipeline("tiny", REPRODUCE_PRESETS["tiny"], root=tmp_path)
    ghn = next(s for s in pipe.stages("PushCube-v1") if s.name == "ghn")
    ckpt = tmp_path / "tiny" / "PushCube-v1" / "ghn" / "ghn.safetensors"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_text("checkpoint of a killed run")
    assert ghn.done_file != ckpt and not ghn.done_file.exists()
    calls: list[dict] = []
    monkeypatch.setattr(stages, "train_ghn", _recorder(calls))
    pipe.run(tasks=["PushCube-v1"], only=["ghn"], log=lambda s: None)
    assert calls[0]["task"] == "PushCube-v1" and calls[0]["out"] == ckpt.parent and ghn.done_file.exists()
    assert calls[0]["workers"] == 1 and calls[0]["progress"] is False  # the preset's stage_args and --no-progress
    assert json.loads(ghn.done_file.read_text())["command"].startswith("nnit train-ghn --task PushCube-v1")
    assert "fake stage ran" in pipe.log_file("PushCube-v1", "ghn").read_text()  # its output went to its log
    pipe.run(tasks=["PushCube-v1"], only=["ghn"], log=lambda s: None)  # now cached: not run again
    assert len(calls) == 1


def test_report_from_partial_results(tmp_path):
    pipe = Pipeline("tiny", REPRODUCE_PRESETS["tiny"], root=tmp_path)
    path = write_report(pipe, tmp_path / "REPORT.md", tmp_path / "fig")
    text = path.read_text()
    assert text.startswith("# NNiT reproduction report") and "Scale-downs" in text and "Table 2 analogue" in text
    assert json.loads(path.with_suffix(".json").read_text())["preset"] == "tiny"


@pytest.mark.slow
def test_reproduce_tiny_end_to_end(tmp_path):
    """The whole pipeline at the tiny preset through the real CLI, then a cached rerun."""
    cmd = [sys.executable, "-m", "nnit.cli", "reproduce", "--preset", "tiny", "--runs", str(tmp_path / "runs"),
           "--report", str(tmp_path / "REPORT.md")]
    subprocess.run(cmd, check=True, timeout=1500)
    text = (tmp_path / "REPORT.md").read_text()
    for task in ("FashionMNIST", "PushCube-v1"):
        assert task in text
    data = json.loads((tmp_path / "REPORT.json").read_text())
    push = data["tasks"]["PushCube-v1"]
    assert push["teacher"]["success_once"] >= 0.5
    assert push["table2"]["nnit"]["unseen"] is not None and push["table2"]["d2nwg"]["seen"] is not None
    assert push["joint"]["nnit"]["summary"]["num"] == 4 and push["joint"]["nnit"]["temperature"] == 0.5
    assert push["joint"]["nnit-t1"]["summary"]["num"] == 4 and push["joint"]["nnit-t1"]["temperature"] == 1.0
    assert push["table2"]["nnit-t1"]["unseen"] is not None and data["verdicts_at"] == "nnit-t1"
    assert "| NNiT (T=1) | seen |" in text and "| NNiT (T=0.5) | seen |" in text
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600).stdout
    assert "running" not in out and out.count("done (cached") > 20


def paper_at_tiny_scale() -> ReproduceConfig:
    """The paper preset's pipeline on PushCube-v1 (its stage list and choices: a PPO expert trained first and distilled
    into the GHN ensemble, both baselines, joint sampling, the sampler at temperature 1) with the tiny preset's
    evaluation budgets; run by a Pipeline at the tiny preset, every stage trains at its tiny budget (the PPO expert:
    2 iterations of 100 env steps, collected in the test's process)."""
    from dataclasses import replace

    paper, tiny = REPRODUCE_PRESETS["paper"], REPRODUCE_PRESETS["tiny"]
    budgets = ("num_networks", "top_k", "episodes", "seen", "unseen", "teacher_episodes", "sampler_steps", "paper_steps",
               "memorization_networks")
    return replace(paper, tasks=("PushCube-v1",), stage_args={**tiny.stage_args, "expert": {"workers": 0}},
                   **{f: getattr(tiny, f) for f in budgets})


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # ManiSkill, in this process
def test_reproduce_paper_pipeline_at_tiny_scale(tmp_path):
    """The paper's pipeline end to end at the tiny scale on CPU: the PPO expert is trained first, measured as the
    teacher, and is what the GHN ensemble distils (its checkpoint, controller pd_joint_delta_pos, the dataset's
    controller); the report shows the expert stage; a rerun skips every finished stage."""
    from nnit.checkpoint import load_checkpoint
    from nnit.weights.mlp import WeightSet

    cfg = paper_at_tiny_scale()
    pipe = Pipeline("tiny", cfg, root=tmp_path / "runs")
    full = Pipeline("paper", REPRODUCE_PRESETS["paper"], root=tmp_path / "plan")
    names = [s.name for s in pipe.stages("PushCube-v1")]
    assert [n for n in names if not n.startswith("eval-")] == [n for n in (s.name for s in full.stages("PushCube-v1"))
                                                               if not n.startswith("eval-")]  # the paper's stages
    logs: list[str] = []
    pipe.run(log=logs.append)
    assert [ln.split(": ")[0] for ln in logs if ln.endswith(": running") or ": running " in ln][:3] == \
        ["[PushCube-v1] expert", "[PushCube-v1] teacher", "[PushCube-v1] ghn"]
    expert = pipe.expert_dir("PushCube-v1")
    assert load_checkpoint(expert).step == 200 and (expert / "eval.json").is_file() and (expert / "train_done.json").is_file()
    teacher = json.loads((pipe.state_dir / "PushCube-v1" / "teacher.json").read_text())
    assert teacher["teacher"] == "ppo_expert" and teacher["teacher_checkpoint"] == str(expert)
    assert teacher["spec"]["control_mode"] == "pd_joint_delta_pos" and teacher["episodes"] == 2
    T = pipe.task_dir("PushCube-v1")
    ghn = load_checkpoint(T / "ghn" / "ghn.safetensors")
    assert ghn.config["teacher_checkpoint"] == str(expert) and ghn.config["control_mode"] == "pd_joint_delta_pos"
    assert json.loads((T / "ghn" / "train_done.json").read_text())["teacher"] == "ppo_expert"
    assert "--teacher-checkpoint" in json.loads(pipe.timings_path.read_text())["PushCube-v1"]["ghn"]["command"]
    index = json.loads((T / "dataset" / "index.json").read_text())
    assert index["control_mode"] == "pd_joint_delta_pos"
    shard = next((T / "dataset" / "shards").glob("*.safetensors"))
    assert WeightSet.load(shard).arch.output_dim == 8  # pd_joint_delta_pos's 8 actions (pd_ee_delta_pos: 4)
    ev = next(s for s in pipe.stages("PushCube-v1") if s.name.startswith("eval-dataset-"))
    assert ev.command[ev.command.index("--control-mode") + 1] == "pd_joint_delta_pos"
    assert all(s.done_file.exists() for s in pipe.stages("PushCube-v1"))
    path = write_report(pipe, tmp_path / "REPORT.md", tmp_path / "fig")
    data = json.loads(path.with_suffix(".json").read_text())["tasks"]["PushCube-v1"]
    assert data["ppo_expert"]["dir"] == str(expert) and data["ppo_expert"]["control_mode"] == "pd_joint_delta_pos"
    assert data["ppo_expert"]["env_steps"] == 200 and data["teacher"]["teacher"] == "ppo_expert"
    text = path.read_text()
    assert "PPO experts (stage `expert`" in text and "| Teacher | PPO expert 3x256 Tanh (multi-task) | PPO experts, one per task" in text
    rerun: list[str] = []
    pipe.run(log=rerun.append)
    assert len(rerun) == len(names) and all("done (cached" in ln for ln in rerun)


def test_ppo_expert_summary_reads_a_finished_run(tmp_path):
    import numpy as np

    from nnit.eval.harness import EvalResult, aggregate
    from nnit.reproduce.report import ppo_expert_summary

    run = tmp_path / "expert_ppo"
    run.mkdir()
    assert ppo_expert_summary(run) is None  # no final evaluation yet
    log = [{"global_step": 2000, "train/rollout_s": 6.0, "train/update_s": 1.0},
           {"global_step": 4000, "train/rollout_s": 5.0, "train/update_s": 1.0, "eval/success_once": 0.5}]
    (run / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    rets = np.array([[10.0, 20.0, 30.0, 40.0]])
    once = np.array([[1, 1, 0, 1]])
    EvalResult(task="PushCube-v1", kind="robot", arch={"in_dim": 1, "hidden": [2], "out_dim": 1}, metrics=aggregate(rets, once, once),
               per_episode={}, seeds=[7, 8, 9, 10], info={"episodes": 4, "base_seed": 7}).save(run / "eval.json")
    s = ppo_expert_summary(run)
    assert s["env_steps"] == 4000 and s["train_wall_s"] == 13.0 and s["episodes"] == 4 and s["first_seed"] == 7
    assert s["success_once"] == 0.75 and s["mean_return"] == 25.0 and s["evals"] == [{"env_steps": 4000, "success_once": 0.5}]


def test_a_tasks_subset_runs_only_those_tasks_but_reports_every_task(tmp_path):
    from nnit.cli.reproduce import ReproduceCommand

    ReproduceCommand(preset="tiny", tasks=["FashionMNIST"], report_only=True, runs=tmp_path / "runs", report=tmp_path / "REPORT.md").run()
    data = json.loads((tmp_path / "REPORT.json").read_text())
    assert set(data["tasks"]) == set(REPRODUCE_PRESETS["tiny"].tasks)  # a partial run does not shrink the report
    with pytest.raises(ValueError, match="no-such-stage"):  # a misspelt --only is an error, not a silent no-op
        ReproduceCommand(preset="tiny", tasks=["FashionMNIST"], only=["no-such-stage"], runs=tmp_path / "runs",
                          report=tmp_path / "REPORT.md").run()


def test_default_report_is_not_shrunk_by_a_machine_with_fewer_runs(tmp_path, monkeypatch, capsys):
    from nnit.cli.reproduce import ReproduceCommand

    monkeypatch.chdir(tmp_path)
    committed = {"timings": {"PushCube-v1": {"ghn": {"seconds": 581}, "dataset": {"seconds": 1055}}}}
    (tmp_path / "REPORT.json").write_text(json.dumps(committed))
    (tmp_path / "REPORT.md").write_text("the committed report")
    stages = tmp_path / "runs" / "cpu" / "reproduce" / "stages.json"
    stages.parent.mkdir(parents=True)
    stages.write_text(json.dumps({"PickCube-v1": {"eval-dataset-h32-16-64-32": {"seconds": 24}}}))
    ReproduceCommand(preset="cpu", report_only=True, runs=tmp_path / "runs").run()
    assert (tmp_path / "REPORT.md").read_text() == "the committed report"
    assert "reports 2 timed stages" in capsys.readouterr().out
    # as many timed stages as the report: it is rewritten
    rec = {"seconds": 1.0, "status": "done", "command": "(in-process)"}
    stages.write_text(json.dumps({"PickCube-v1": {"ghn": rec, "dataset": rec}}))
    ReproduceCommand(preset="cpu", report_only=True, runs=tmp_path / "runs").run()
    assert (tmp_path / "REPORT.md").read_text().startswith("# NNiT reproduction report")


def test_no_dataset_evaluation_for_an_architecture_the_filter_kept_none_of(tmp_path):
    pipe = Pipeline("tiny", REPRODUCE_PRESETS["tiny"], root=tmp_path)
    assert "eval-dataset-h32-16-64-32" in [s.name for s in pipe.stages("FashionMNIST")]  # not built yet: planned
    ds = tmp_path / "tiny" / "FashionMNIST" / "dataset"
    (ds / "shards").mkdir(parents=True)
    (ds / "summary.json").write_text("{}")  # built, and no shard of [32,16,64,32]
    names = [s.name for s in pipe.stages("FashionMNIST")]
    assert "eval-dataset-h32-16-64-32" not in names and "eval-nnit-h32-16-64-32" in names


def test_report_times_only_the_stages_the_plan_still_has(tmp_path):
    """A dataset rebuilt with fewer kept architectures drops their evaluations from the plan; their old timings
    must not stay in the report's time table (nor a task the preset no longer has)."""
    from nnit.reproduce.report import collect

    pipe = Pipeline("tiny", REPRODUCE_PRESETS["tiny"], root=tmp_path)
    pipe.timings_path.parent.mkdir(parents=True)
    row = {"seconds": 5.0, "status": "done", "command": "x"}
    pipe.timings_path.write_text(json.dumps({"FashionMNIST": {"eval-dataset-h32-16-64-32": row, "ghn": row}, "Gone-v0": {"ghn": row}}))
    assert set(collect(pipe)["timings"]["FashionMNIST"]) == {"eval-dataset-h32-16-64-32", "ghn"}
    ds = tmp_path / "tiny" / "FashionMNIST" / "dataset"
    (ds / "shards").mkdir(parents=True)
    (ds / "summary.json").write_text("{}")  # rebuilt, keeping none of [32,16,64,32]
    timings = collect(pipe)["timings"]
    assert set(timings) == {"FashionMNIST"} and set(timings["FashionMNIST"]) == {"ghn"}


def test_claims_need_a_real_difference():
    """REPORT.md's 'NNiT beats X' claims: success rates within SUCCESS_MARGIN tie and the return decides, so 1% vs 0%
    success alone never makes a claim; a clear success gap decides on its own; image tasks compare accuracy."""
    from nnit.reproduce.report import _versus

    nn, d2 = {"mean": 14.6, "success_rate": 0.0075}, {"mean": 4.2, "success_rate": 0.0}
    verdict, why = _versus(nn, d2, robot=True)
    assert verdict == "beats" and "return 14.6 vs 4.2" in why and "tie" in why
    assert _versus({"mean": 3.0, "success_rate": 0.01}, d2, robot=True)[0] == "does not beat"  # 1% vs 0%, lower return
    assert _versus({"mean": 3.0, "success_rate": 0.30}, d2, robot=True) == ("beats", "30% vs 0% success")
    assert _versus({"mean": 0.70}, {"mean": 0.72}, robot=False) == ("does not beat", "70.0% vs 72.0% accuracy")


def _write_results(record):
    """A fake generate stage's output: results.json holding ``record(kwargs)``."""

    def write(kwargs):
        kwargs["out"].mkdir(parents=True, exist_ok=True)
        (kwargs["out"] / "results.json").write_text(json.dumps(record(kwargs)))

    return write


def test_rerun_moves_old_outputs_aside_and_runs_the_stage_again(tmp_path, monkeypatch):
    pipe = Pipeline("tiny", REPRODUCE_PRESETS["tiny"], root=tmp_path)
    evals = [s for s in pipe.stages("FashionMNIST") if s.name.startswith("eval-nnit-")]
    for s in evals:  # every NNiT evaluation finished, at both temperatures
        s.output.mkdir(parents=True)
        s.done_file.write_text(json.dumps(_as_expected(s, old=True)))
    stage = next(s for s in evals if s.name == "eval-nnit-h32-16-64-32")
    (stage.output / "networks.safetensors").write_text("old networks")
    calls: list[dict] = []
    monkeypatch.setattr(stages, "generate", _recorder(calls, _write_results(lambda kw: {})))
    logs: list[str] = []
    pipe.run(tasks=["FashionMNIST"], only=["eval-nnit-h32-16-64-32"], log=logs.append)
    assert not calls and "cached" in logs[-1]  # finished: skipped without --rerun
    pipe.run(tasks=["FashionMNIST"], only=["eval-nnit"], rerun=["eval-nnit-h32-16-64-32"], log=logs.append)
    assert [c["out"] for c in calls] == [stage.output]  # only the named stage ran again, once
    assert all(json.loads(s.done_file.read_text())["old"] for s in evals if s is not stage)
    assert json.loads(stage.done_file.read_text()) == {} and not (stage.output / "networks.safetensors").exists()
    kept = [p for p in stage.output.parent.iterdir() if p.name.startswith(stage.output.name + ".old-")]
    assert len(kept) == 1 and (kept[0] / "networks.safetensors").read_text() == "old networks"  # nothing lost
    with pytest.raises(ValueError, match="not among the --only"):
        pipe.run(tasks=["FashionMNIST"], only=["joint"], rerun=["eval-nnit"], log=logs.append)
    with pytest.raises(ValueError, match="--rerun nope"):
        pipe.run(tasks=["FashionMNIST"], rerun=["nope"], log=logs.append)


def test_a_new_sampling_temperature_reruns_nnits_evaluations_only(tmp_path, monkeypatch):
    """NNiT's samples depend on the preset's temperature: outputs made at another one are moved aside
    and sampled again; the baselines (always temperature 1) and the dataset's evaluations stay cached."""
    from dataclasses import replace

    cfg = replace(REPRODUCE_PRESETS["tiny"], sampler_temperature=0.5)
    pipe = Pipeline("tiny", cfg, root=tmp_path)
    plan = {s.name: s for s in pipe.stages("FashionMNIST")}
    nnit_eval, d2nwg_eval, joint = plan["eval-nnit-h32-16-64-32"], plan["eval-d2nwg-h32-16-64-32"], plan["joint"]
    assert nnit_eval.command[nnit_eval.command.index("--temperature") + 1] == "0.5" and "--temperature" in joint.command
    assert nnit_eval.func.kwargs["temperature"] == 0.5 and joint.func.kwargs["temperature"] == 0.5
    assert "--temperature" not in d2nwg_eval.command  # generate refuses a temperature for the baselines
    assert d2nwg_eval.func.kwargs["temperature"] == 1.0  # the baselines sample at 1
    for s in (nnit_eval, d2nwg_eval):
        s.output.mkdir(parents=True)
        s.done_file.write_text('{"sampler": "ancestral"}')  # made at temperature 1 (generate records it only when != 1)
    assert "temperature 1.0 != 0.5" in nnit_eval.stale() and d2nwg_eval.stale() is None
    calls: list[dict] = []
    monkeypatch.setattr(stages, "generate", _recorder(calls, _write_results(lambda kw: {"temperature": kw["temperature"]})))
    logs: list[str] = []
    pipe.run(tasks=["FashionMNIST"], only=["eval-nnit-h32-16-64-32", "eval-d2nwg-h32-16-64-32"], log=logs.append)
    assert json.loads(nnit_eval.done_file.read_text()) == {"temperature": 0.5} and nnit_eval.stale() is None
    assert [c["out"] for c in calls] == [nnit_eval.output]  # the baseline's evaluation stayed cached
    assert any("other settings (temperature 1.0 != 0.5)" in ln for ln in logs) and "cached" in logs[-1]
    assert [p.name for p in nnit_eval.output.parent.iterdir() if ".old-" in p.name]  # the old samples are kept
    paper_sampler = Pipeline("tiny", replace(cfg, sampler_temperature=1.0), root=tmp_path)
    back = {s.name: s for s in paper_sampler.stages("FashionMNIST")}
    assert back["eval-nnit-h32-16-64-32"].stale() == "temperature 0.5 != 1.0"  # and back again at the paper's 1
    assert REPRODUCE_PRESETS["cpu"].sampler_temperature == 0.5 and REPRODUCE_PRESETS["paper"].sampler_temperature == 1.0


def test_nnit_is_evaluated_at_temperature_1_beside_the_presets_own(tmp_path):
    """tiny / cpu (temperature 0.5): every NNiT evaluation and the joint sampling also at 1, the paper's sampler, as
    generator nnit-t1 (its own stages and directories, each expecting temperature 1); the preset's temperature keeps
    the old names and directories. paper (temperature 1): one of each, at 1."""
    from dataclasses import replace

    from nnit.weights.architecture import hidden_label

    for preset in ("tiny", "cpu"):
        cfg = replace(REPRODUCE_PRESETS[preset], stage_args={"joint": {"workers": 3}})
        assert cfg.sampler_temperature == 0.5 and [(n.generator, n.temperature) for n in cfg.nnit_samplings] == \
            [("nnit-t1", 1.0), ("nnit", 0.5)] and cfg.paper_sampling.generator == "nnit-t1"
        pipe = Pipeline(preset, cfg, root=tmp_path)
        for task in cfg.tasks:
            plan = {s.name: s for s in pipe.stages(task)}
            for h in cfg.seen + cfg.unseen:
                for gen, t in (("nnit-t1", 1.0), ("nnit", 0.5)):
                    s = plan[f"eval-{gen}-{hidden_label(h)}"]
                    assert s.output == tmp_path / preset / task / "eval" / gen / hidden_label(h)
                    assert s.done_file == s.output / "results.json" and s.expect["temperature"] == (t, 1.0)
                    assert s.func.kwargs["temperature"] == t and s.func.kwargs["checkpoint"] == tmp_path / preset / task / "nnit"
                    assert s.command[s.command.index("--temperature") + 1] == f"{t:g}"
                    assert s.command[s.command.index("--arch") + 1] == ",".join(map(str, h))
                assert plan[f"eval-d2nwg-{hidden_label(h)}"].func.kwargs["temperature"] == 1.0  # the baselines: 1 only
                assert not any(n.startswith("eval-d2nwg-t1") for n in plan)
            for name, gen, t in (("joint-t1", "nnit-t1", 1.0), ("joint", "nnit", 0.5)):
                j = plan[name]
                assert j.output == tmp_path / preset / task / "eval" / gen / "joint" and j.expect["temperature"] == (t, 1.0)
                assert j.func.kwargs["arch"] is None and j.func.kwargs["temperature"] == t
                assert j.func.kwargs["workers"] == 3 and j.command[-3:] == ["--workers", "3", "--no-progress"]  # joint's stage_args
        t1 = plan["eval-nnit-t1-h32-16-64-32"]
        t1.output.mkdir(parents=True)
        t1.done_file.write_text(json.dumps({"temperature": 0.5, "report_episodes": cfg.report_episodes}))  # the preset's temperature
        assert t1.stale() == "temperature 0.5 != 1.0"
    paper = REPRODUCE_PRESETS["paper"]
    assert [(n.generator, n.temperature) for n in paper.nnit_samplings] == [("nnit", 1.0)]
    names = [s.name for s in Pipeline("paper", paper, root=tmp_path).stages("PushCube-v1")]
    assert not any("t1" in n for n in names) and names.count("joint") == 1
    plan = {s.name: s for s in Pipeline("paper", paper, root=tmp_path).stages("PushCube-v1")}
    assert plan["eval-nnit-h32-16-64-32"].func.kwargs["temperature"] == 1.0 and plan["joint"].expect["temperature"] == (1.0, 1.0)


def test_a_few_step_preset_sampler_keeps_the_papers_sampler_beside_it(tmp_path):
    """A preset whose own sampler is a few-step solver (even at temperature 1): NNiT's own stages sample with it,
    nnit-t1 and the baselines with the paper's (ancestral, paper_steps, temperature 1); the report says both."""
    from dataclasses import replace

    from nnit.reproduce.report import _sampling

    for t in (0.25, 1.0):
        cfg = replace(REPRODUCE_PRESETS["cpu"], sampler="dpm++2m-sde", sampler_steps=20, sampler_temperature=t)
        assert [(n.generator, n.sampler, n.steps, n.temperature) for n in cfg.nnit_samplings] == \
            [("nnit-t1", "ancestral", 1000, 1.0), ("nnit", "dpm++2m-sde", 20, t)]
        plan = {s.name: s for s in Pipeline("cpu", cfg, root=tmp_path).stages("PushCube-v1")}
        for name, want in (("eval-nnit-h32-16-64-32", ("dpm++2m-sde", 20, t)), ("eval-nnit-t1-h32-16-64-32", ("ancestral", 1000, 1.0)),
                           ("eval-d2nwg-h32-16-64-32", ("ancestral", 1000, 1.0)), ("joint", ("dpm++2m-sde", 20, t)),
                           ("joint-t1", ("ancestral", 1000, 1.0))):
            kw, cmd = plan[name].func.kwargs, plan[name].command
            assert (kw["sampler"], kw["steps"], kw["temperature"]) == want, name
            assert cmd[cmd.index("--sampler") + 1] == want[0] and cmd[cmd.index("--steps") + 1] == str(want[1])
        assert _sampling(cfg) == ("NNiT with the paper's sampler (ancestral, 1000 steps, temperature 1) and this preset's "
                                  f"(dpm++2m-sde, 20 steps, temperature {t:g}); baselines with the paper's sampler")
    assert _sampling(REPRODUCE_PRESETS["paper"]) == "ancestral, 1000 steps"


def test_only_selects_the_nnit_evaluations_at_both_temperatures(tmp_path, monkeypatch):
    """--only eval-nnit / joint select both temperatures' stages; eval-nnit-t1 / joint-t1 only temperature 1's; a full
    architecture name only the preset's temperature's."""
    calls: list[dict] = []
    monkeypatch.setattr(stages, "generate", _recorder(calls, _write_results(lambda kw: {"temperature": kw["temperature"]})))

    def ran(only: list[str]) -> list[tuple[str, float]]:
        """(output under eval/, temperature) of every stage ``only`` runs, in a fresh run tree."""
        calls.clear()
        pipe = Pipeline("tiny", REPRODUCE_PRESETS["tiny"], root=tmp_path / "-".join(only))
        pipe.run(tasks=["FashionMNIST"], only=only, log=lambda s: None)
        return [(str(c["out"].relative_to(pipe.task_dir("FashionMNIST") / "eval")), c["temperature"]) for c in calls]

    assert ran(["eval-nnit"]) == [("nnit-t1/h32-16-64-32", 1.0), ("nnit/h32-16-64-32", 0.5),
                                  ("nnit-t1/h32-32-16-64", 1.0), ("nnit/h32-32-16-64", 0.5)]
    assert ran(["eval-nnit-t1"]) == [("nnit-t1/h32-16-64-32", 1.0), ("nnit-t1/h32-32-16-64", 1.0)]
    assert ran(["eval-nnit-h32-32-16-64"]) == [("nnit/h32-32-16-64", 0.5)]
    assert ran(["joint"]) == [("nnit-t1/joint", 1.0), ("nnit/joint", 0.5)]
    assert ran(["joint-t1"]) == [("nnit-t1/joint", 1.0)]


def _topk_dict(mean: float, success: float, std: float = 0.5) -> dict:
    from nnit.eval.protocol import TopKSummary

    return TopKSummary(task="t", label="l", k=2, n=4, episodes=2, indices=(0, 1), mean=mean, std_between=std, std_episodes=1.0,
                       success_rate=success, success_at_end_rate=success, metric="mean_return").to_dict()


def _fake_evaluations(pipe: Pipeline, values: dict, skip: tuple = ()) -> None:
    """Every evaluation and joint stage's output, as the stages write them: ``values[generator] = (return, success)``
    (Fashion-MNIST: accuracy return / 50); NNiT's results.json records its temperature when it is not 1, as
    ``nnit generate`` does. Generators in ``skip`` are left unrun."""
    for task in pipe.cfg.tasks:
        for s in pipe.stages(task):
            if s.name.startswith("eval-"):
                gen = next(g for g in sorted(values, key=len, reverse=True) if s.name.startswith(f"eval-{g}-"))
            elif s.name.startswith("joint"):
                gen = s.output.parent.name
            else:
                continue
            if gen in skip:
                continue
            mean, success = values[gen]
            row = _topk_dict(mean / 50, 0.0, std=0.01) if task == "FashionMNIST" else _topk_dict(mean, success)
            fresh = s.func.kwargs.get("report_episodes", 0)  # robot tasks: the same row on the fresh episodes
            if gen == "dataset" or s.name.startswith("eval-d2nwg-vae-"):  # nnit eval's output
                extra = {"top_k": row, **({"top_k_report": row, "report_episodes": fresh} if fresh else {})}
                rec = {"task": task, "kind": "robot", "arch": {}, "metrics": {}, "extra": extra}
            elif s.name.startswith("joint"):
                rec = {"joint": {"num": 4, "valid": 4, "novel": 1, "distinct_archs": 2, "schedule": "arch-first",
                                 "tv_to_train": 0.3, "train_reference": {"distinct_archs": {"mean": 2.5}, "tv_to_train": {"mean": 0.25}}},
                       "joint_top_k": row, **({"joint_top_k_report": row, "report_episodes": fresh} if fresh else {})}
            else:
                rec = {"top_k": [row], **({"top_k_report": [row], "report_episodes": fresh} if fresh else {})}
            if s.func.kwargs.get("temperature", 1.0) != 1.0:
                rec["temperature"] = s.func.kwargs["temperature"]
            s.done_file.parent.mkdir(parents=True, exist_ok=True)
            s.done_file.write_text(json.dumps(rec))


FAKE = {"dataset": (38.0, 0.98), "nnit-t1": (20.0, 0.40), "nnit": (36.0, 0.96), "d2nwg": (30.0, 0.50), "sane": (4.0, 0.0)}
"""NNiT worse at temperature 1 than the dataset and D2NWG, as good as the dataset at 0.5."""


def test_report_shows_both_temperatures_and_decides_the_paper_verdicts_at_1(tmp_path):
    """Every NNiT table shows temperature 1 beside the preset's 0.5; the claims use temperature 1 (here: not close to
    the dataset, below D2NWG) and list what 0.5 does better apart, as this project's improvement; REPORT.json holds
    both per generator key."""
    pipe = Pipeline("tiny", REPRODUCE_PRESETS["tiny"], root=tmp_path)
    _fake_evaluations(pipe, FAKE)
    path = write_report(pipe, tmp_path / "REPORT.md", tmp_path / "fig")
    text = path.read_text()
    table2 = text[text.index("## Table 2"):text.index("## Table 4")]
    assert "| NNiT (T=1) | unseen | 20.00 ± 0.50 (40%) | 42.0 ± 0.19 (100%) |" in table2  # the paper's NNiT beside T=1
    assert "| NNiT (T=0.5) | unseen | 36.00 ± 0.50 (96%) | – |" in table2
    assert "| architecture | split | Dataset | NNiT (T=1) | NNiT (T=0.5) | D2NWG | SANE | paper NNiT (T=1) |" in text
    assert "| 32,32,16,64 | unseen | 38.00 ± 0.50 (98%) | 20.00 ± 0.50 (40%) | 36.00 ± 0.50 (96%) |" in text
    assert "| PushCube-v1 | NNiT (T=1) | arch-first | 4/4 | 1/4 | 2 (2.5) | 0.30 (0.25) | 20.00 ± 0.50 | 40% | 41.99 ± 0.1, 100% |" in text  # Table 3
    assert "| PushCube-v1 | NNiT (T=0.5) | arch-first | 4/4 | 1/4 | 2 (2.5) | 0.30 (0.25) | 36.00 ± 0.50 | 96% | – |" in text
    assert "| FashionMNIST | NNiT (T=1) | 40.0% ± 1.0 | 40.0% ± 1.0 |" in text  # image classification
    assert "| FashionMNIST | NNiT (T=0.5) | 72.0% ± 1.0 | 72.0% ± 1.0 |" in text
    claims = text[text.index("## The paper's claims"):]
    lines = [ln for ln in claims.splitlines() if ln.startswith("- **PushCube-v1**")]
    paper = [ln for ln in lines if "this project's sampler" not in ln]
    assert any("at temperature 1 (the paper's sampler) is 41% of the dataset's own" in ln and "is NOT supported" in ln for ln in paper)
    assert any("at temperature 1 (the paper's sampler) does not beat D2NWG" in ln for ln in paper)
    assert any("at temperature 1 (the paper's sampler) beats SANE" in ln for ln in paper)
    assert not any("supported here" in ln and "NOT" not in ln for ln in lines)  # 0.5 never supports the paper's claim
    own = [ln for ln in lines if "this project's sampler, temperature 0.5; not evidence for the paper" in ln]
    assert any("does better than at temperature 1" in ln and "96% vs 40% success" in ln and "improvement" in ln for ln in own)
    assert any("reaches 98% of the dataset's own success" in ln for ln in own)
    assert any("beats D2NWG" in ln and "which it does not at temperature 1" in ln for ln in own)
    data = json.loads(path.with_suffix(".json").read_text())
    assert data["nnit_temperatures"] == {"nnit-t1": 1.0, "nnit": 0.5} and data["verdicts_at"] == "nnit-t1"
    push = data["tasks"]["PushCube-v1"]
    assert push["table2"]["nnit-t1"]["unseen"]["success_rate"] == 0.4 and push["table2"]["nnit"]["unseen"]["success_rate"] == 0.96
    assert push["evals"]["nnit-t1"]["h32-32-16-64"]["mean"] == 20.0 and push["evals"]["nnit"]["h32-32-16-64"]["mean"] == 36.0
    assert push["joint"]["nnit-t1"]["temperature"] == 1.0 and push["joint"]["nnit"]["temperature"] == 0.5
    assert push["joint"]["nnit"]["top_k"]["mean"] == 36.0


def test_report_of_a_run_without_temperature_1_says_so(tmp_path):
    """A run from before temperature 1 was sampled: its cells say 'not run', no verdict on the paper's claims, the
    preset's temperature's numbers still shown (not as a verdict); samples at the wrong temperature do not count."""
    pipe = Pipeline("tiny", REPRODUCE_PRESETS["tiny"], root=tmp_path)
    _fake_evaluations(pipe, FAKE, skip=("nnit-t1",))
    stale = next(s for s in pipe.stages("PushCube-v1") if s.name == "eval-nnit-t1-h32-16-64-32")
    stale.output.mkdir(parents=True)
    stale.done_file.write_text(json.dumps({"top_k": [_topk_dict(36.0, 0.96)], "temperature": 0.5}))  # not temperature 1's
    text = write_report(pipe, tmp_path / "REPORT.md", tmp_path / "fig").read_text()
    assert "| NNiT (T=1) | seen | not run |" in text and "| NNiT (T=0.5) | seen | 36.00 ± 0.50 (96%) |" in text
    assert "| 32,16,64,32 | seen | 38.00 ± 0.50 (98%) | not run | 36.00 ± 0.50 (96%) |" in text
    assert "| PushCube-v1 | NNiT (T=1) | – | not run | – | – | – | – | – | 41.99 ± 0.1, 100% |" in text
    claims = text[text.index("## The paper's claims"):]
    assert "**PushCube-v1**: no verdict on the paper's claims yet: NNiT at temperature 1" in claims
    assert "supported here" not in claims and "D2NWG on unseen" not in claims
    assert "NNiT at temperature 0.5: 98% of the dataset's own unseen-architecture success; temperature 1 not evaluated yet" in claims
    report = json.loads((tmp_path / "REPORT.json").read_text())
    assert "eval-nnit-t1-h32-16-64-32" in report["not_run"]["PushCube-v1"]  # stale: listed with the stages not run
    data = report["tasks"]["PushCube-v1"]
    assert data["table2"]["nnit-t1"] == {"seen": None, "unseen": None} and data["joint"]["nnit-t1"] is None


def test_report_at_the_paper_preset_has_nnit_at_temperature_1_only(tmp_path):
    from dataclasses import replace

    cfg = replace(REPRODUCE_PRESETS["tiny"], sampler_temperature=1.0)  # the paper's sampler, at the tiny scale
    pipe = Pipeline("tiny", cfg, root=tmp_path)
    _fake_evaluations(pipe, {**FAKE, "nnit": FAKE["nnit-t1"]})
    text = write_report(pipe, tmp_path / "REPORT.md", tmp_path / "fig").read_text()
    assert "| NNiT (T=1) | unseen | 20.00 ± 0.50 (40%) | 42.0 ± 0.19 (100%) |" in text and "T=0.5" not in text
    assert "NNiT's unseen-architecture success at temperature 1 is 41% of the dataset's own" in text
    assert "this project's sampler" not in text
    data = json.loads((tmp_path / "REPORT.json").read_text())
    assert data["nnit_temperatures"] == {"nnit": 1.0} and data["verdicts_at"] == "nnit" and "nnit-t1" not in data["tasks"]["PushCube-v1"]["evals"]


def test_a_signal_stops_the_pipeline_and_a_training_stage_checkpoints_first(tmp_path, monkeypatch):
    """Ctrl-C / SIGTERM during a stage: a training loop (its own stop_on_signals) finishes its step, checkpoints and
    raises TrainingStopped; any other stage stops at once. Either way the pipeline raises Stopped (the CLI exits
    128 + signal), records the stage as stopped, leaves it unfinished and restores the signal handlers."""
    import os
    import signal
    import time

    from nnit.stopping import Stopped, TrainingStopped, stop_on_signals

    pipe = Pipeline("tiny", REPRODUCE_PRESETS["tiny"], root=tmp_path)
    saved: list[int] = []

    def training(**kwargs):
        with stop_on_signals() as req:
            for step in range(1, 100):
                if step == 3:
                    os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C during step 3: the step completes
                saved.append(step)  # "checkpoint"
                if req.signum is not None:
                    raise TrainingStopped(step, kwargs["out"] / "ghn.safetensors", req.signum, unit="iteration")

    monkeypatch.setattr(stages, "train_ghn", training)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingStopped) as err:
        pipe.run(tasks=["FashionMNIST"], only=["ghn"], log=lambda s: None)
    assert err.value.signum == signal.SIGINT and saved == [1, 2, 3]
    ghn = next(s for s in pipe.stages("FashionMNIST") if s.name == "ghn")
    assert not ghn.done_file.exists() and json.loads(pipe.timings_path.read_text())["FashionMNIST"]["ghn"]["status"] == "stopped"
    assert "stopped by SIGINT at iteration 3" in pipe.log_file("FashionMNIST", "ghn").read_text()

    def evaluation(**kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # interrupted at once
        raise AssertionError("not stopped")

    monkeypatch.setattr(stages, "evaluate_shard", evaluation)
    t0 = time.perf_counter()
    with pytest.raises(Stopped, match="SIGTERM during stage eval-dataset-h32-16-64-32 of FashionMNIST") as err:
        pipe.run(tasks=["FashionMNIST"], only=["eval-dataset"], log=lambda s: None)
    assert err.value.signum == signal.SIGTERM and time.perf_counter() - t0 < 4
    assert json.loads(pipe.timings_path.read_text())["FashionMNIST"]["eval-dataset-h32-16-64-32"]["status"] == "stopped"
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_memorization_compares_nnit_at_each_temperature(tmp_path):
    """The memorization stage covers NNiT's samples at temperature 1 and at the preset's, then the baselines; a
    memorization.json made before (NNiT at the preset's temperature only) is stale at the cpu preset."""
    pipe = Pipeline("cpu", REPRODUCE_PRESETS["cpu"], root=tmp_path)
    stage = next(s for s in pipe.stages("PushCube-v1") if s.name == "memorization")
    assert pipe._memorization_generators() == ["nnit-t1", "nnit", "d2nwg", "sane"]
    stage.done_file.parent.mkdir(parents=True, exist_ok=True)
    stage.done_file.write_text(json.dumps({"task": "PushCube-v1", "rows": []}))
    assert stage.stale() is not None and "generators" in stage.stale()
    paper = Pipeline("paper", REPRODUCE_PRESETS["paper"], root=tmp_path / "p")
    assert paper._memorization_generators() == ["nnit", "d2nwg", "sane"]


# ---------------------------------------------------------------------- provenance, stale on config change, plan
def test_each_stage_records_its_provenance(tmp_path, monkeypatch):
    """A stage run by the pipeline writes <stage>.provenance.json beside its log: git commit and dirtiness, the resolved
    config (paths relative to the run folder, runtime knobs left out, the preset config the function resolves) and its
    hash, the command, UTC start / end, wall time, torch threads, machine, preset."""
    import torch

    from nnit.ghn.train import ghn_config
    from nnit.reproduce import provenance

    pipe = Pipeline("tiny", REPRODUCE_PRESETS["tiny"], root=tmp_path)
    monkeypatch.setattr(stages, "train_ghn", _recorder([]))
    pipe.run(tasks=["PushCube-v1"], only=["ghn"], log=lambda s: None)
    path = pipe.provenance_file("PushCube-v1", "ghn")
    assert path == pipe.log_file("PushCube-v1", "ghn").with_name("ghn.provenance.json")
    rec = json.loads(path.read_text())
    assert rec["schema"] == provenance.SCHEMA and (rec["task"], rec["stage"], rec["preset"], rec["status"]) == ("PushCube-v1", "ghn", "tiny", "done")
    assert rec["command"].startswith("nnit train-ghn --task PushCube-v1 --preset tiny --out ")
    cfg = rec["config"]
    assert cfg["function"] == "train_ghn" and cfg["args"] == {"task": "PushCube-v1", "preset": "tiny", "out": "$RUN/PushCube-v1/ghn"}
    assert cfg["preset_config"]["iterations"] == ghn_config("tiny", "PushCube-v1").iterations  # the resolved preset
    assert rec["config_hash"] == provenance.config_hash(cfg) and rec["config_hash"].startswith("sha256:")
    git = rec["git"]
    assert git is None or (len(git["commit"]) == 40 and isinstance(git["dirty"], bool))
    for key in ("started_utc", "finished_utc"):
        assert rec[key].endswith("Z") and rec[key][:2] == "20"
    assert rec["finished_utc"] >= rec["started_utc"] and rec["wall_seconds"] >= 0
    assert rec["torch_threads"] == torch.get_num_threads()
    assert rec["machine"]["cpu_count"] and rec["machine"]["torch"] == torch.__version__ and "hostname" not in rec["machine"]
    assert pipe.provenance("PushCube-v1", "ghn") == rec and pipe.status("PushCube-v1", next(
        s for s in pipe.stages("PushCube-v1") if s.name == "ghn")).state == "done"


def test_a_finished_stage_whose_config_changed_is_rerun(tmp_path, monkeypatch):
    """A stage whose recorded config differs from what the preset now resolves to is stale: one log line says which
    settings changed, its outputs and provenance are moved aside, and it runs again. A stage finished before provenance
    existed is reused (no other stale check objects) and the log says it has no provenance. Runtime knobs (workers)
    do not make a stage stale."""
    from dataclasses import replace

    calls: list[dict] = []
    monkeypatch.setattr(stages, "generate", _recorder(calls, _write_results(
        lambda kw: {"temperature": kw["temperature"], "report_episodes": kw.get("report_episodes", 0)})))
    cfg = REPRODUCE_PRESETS["tiny"]
    pipe = Pipeline("tiny", cfg, root=tmp_path)
    name = "eval-nnit-h32-32-16-64"
    pipe.run(tasks=["PushCube-v1"], only=[name], log=lambda s: None)
    assert len(calls) == 1 and pipe.provenance("PushCube-v1", name)["config"]["args"]["num"] == cfg.num_networks
    logs: list[str] = []
    faster = Pipeline("tiny", replace(cfg, stage_args={**cfg.stage_args, "eval": {"workers": 2}}), root=tmp_path)
    faster.run(tasks=["PushCube-v1"], only=[name], log=logs.append)  # more workers: same results, still cached
    assert len(calls) == 1 and logs == [f"[PushCube-v1] {name}: done (cached: {tmp_path}/tiny/PushCube-v1/eval/nnit/h32-32-16-64/results.json)"]
    bigger = Pipeline("tiny", replace(cfg, num_networks=6), root=tmp_path)
    stage = next(s for s in bigger.stages("PushCube-v1") if s.name == name)
    status = bigger.status("PushCube-v1", stage)
    assert status.state == "stale" and "args.num 4 -> 6" in status.why
    plan = {r.stage: r for r in bigger.plan(tasks=["PushCube-v1"], only=[name])}
    assert plan[name].status.label.startswith("stale: its config changed since it ran (args.num 4 -> 6") and plan[name].seconds is not None
    logs.clear()
    bigger.run(tasks=["PushCube-v1"], only=[name], log=logs.append)
    assert len(calls) == 2 and calls[-1]["num"] == 6
    (line,) = [ln for ln in logs if "config changed" in ln]
    assert line.startswith(f"[PushCube-v1] {name}: its config changed since it ran (args.num 4 -> 6); rerunning; the old outputs are kept in ")
    olds = [p.name for p in stage.output.parent.iterdir() if p.name.startswith("h32-32-16-64.old-")]
    stamp = olds[0].split(".old-")[1]
    assert (bigger.provenance_file("PushCube-v1", name).with_name(f"{name}.provenance.old-{stamp}.json")).exists()
    assert bigger.provenance("PushCube-v1", name)["config"]["args"]["num"] == 6
    # finished before provenance existed: kept unless the other stale checks object, and said so
    bigger.provenance_file("PushCube-v1", name).unlink()
    logs.clear()
    Pipeline("tiny", cfg, root=tmp_path).run(tasks=["PushCube-v1"], only=[name], log=logs.append)
    assert len(calls) == 2 and "no provenance" in logs[0]
    assert Pipeline("tiny", cfg, root=tmp_path).status("PushCube-v1", stage).label == "done, no provenance"


def test_config_changes_ignore_settings_added_or_removed():
    from nnit.reproduce.provenance import config_changes

    old = {"args": {"num": 4, "gone": 1}, "preset_config": {"steps": 10, "lr": 0.1}}
    new = {"args": {"num": 4, "added": 2}, "preset_config": {"steps": 20, "lr": 0.1}}
    assert config_changes(old, new) == ["preset_config.steps 10 -> 20"] and config_changes(old, old) == []


def test_plan_lists_every_stage_with_its_state_and_recorded_time(tmp_path, monkeypatch, capsys):
    """nnit reproduce --plan: every stage in run order with done / stale / to run and the wall time its last run
    recorded, then the totals; it runs nothing and writes nothing."""
    from nnit.cli import main
    from nnit.reproduce.pipeline import format_plan

    pipe = Pipeline("tiny", REPRODUCE_PRESETS["tiny"], root=tmp_path)
    monkeypatch.setattr(stages, "train_ghn", _recorder([]))
    pipe.run(tasks=["FashionMNIST"], only=["ghn"], log=lambda s: None)
    rows = pipe.plan(tasks=["FashionMNIST"])
    assert [r.stage for r in rows] == [s.name for s in pipe.stages("FashionMNIST")]
    assert rows[0].stage == "ghn" and rows[0].status.state == "done" and rows[0].seconds is not None
    assert all(r.status.state == "to run" and r.seconds is None for r in rows[1:])
    text = format_plan(rows)
    assert "done: 1 stages" in text and f"to run or rerun: {len(rows) - 1} stages; 0 of them recorded" in text
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    main(["reproduce", "--preset", "tiny", "--runs", str(tmp_path), "--tasks", "FashionMNIST", "--plan"])
    out = capsys.readouterr().out
    assert out.splitlines()[1].split()[:2] == ["FashionMNIST", "ghn"] and "done: 1 stages" in out
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_report_shows_the_fresh_episodes_and_keeps_the_ranking_ones(tmp_path):
    """At a preset with report episodes the robot tasks' cells are the top-k networks on the fresh episodes, REPORT.json
    keeps the ranking episodes' rows beside them, says which protocol and schema it uses, and marks the stages without
    provenance; outputs evaluated without fresh episodes are stale (not run)."""
    from nnit.reproduce.report import SCHEMA_VERSION

    pipe = Pipeline("tiny", REPRODUCE_PRESETS["tiny"], root=tmp_path)
    _fake_evaluations(pipe, FAKE)
    d = pipe.eval_dir("PushCube-v1", "nnit", "h32-32-16-64") / "results.json"
    rec = json.loads(d.read_text())
    rec["top_k_report"] = [_topk_dict(30.0, 0.75)]  # fewer successes on the fresh episodes than on the ranking ones
    d.write_text(json.dumps(rec))
    stale = pipe.eval_dir("PushCube-v1", "sane", "h32-32-16-64") / "results.json"
    stale.write_text(json.dumps({"top_k": [_topk_dict(4.0, 0.0)]}))  # evaluated before fresh episodes existed
    path = write_report(pipe, tmp_path / "REPORT.md", tmp_path / "fig")
    text = path.read_text()
    assert "Protocol: top-2 of 4 chosen on 2 ranking episodes (seeds 1000..1001), reported on 2 fresh episodes (seeds 5000..5001)" in text
    assert "| 32,32,16,64 | unseen | 38.00 ± 0.50 (98%) | 20.00 ± 0.50 (40%) | 30.00 ± 0.50 (75%) | 30.00 ± 0.50 (50%) | – |" in text
    assert "| PushCube-v1 | ghn |" not in text and "finished stages have no provenance" in text
    data = json.loads(path.with_suffix(".json").read_text())
    assert data["schema_version"] == SCHEMA_VERSION and data["protocol"]["report_episodes"] == 2
    assert data["protocol"]["ranking_seeds"] == [1000, 1001] and data["protocol"]["report_seeds"] == [5000, 5001]
    push = data["tasks"]["PushCube-v1"]
    assert push["fresh"] and push["evals"]["nnit"]["h32-32-16-64"]["success_rate"] == 0.75
    assert push["evals_ranking"]["nnit"]["h32-32-16-64"]["success_rate"] == 0.96
    assert push["evals"]["sane"]["h32-32-16-64"] is None and "eval-sane-h32-32-16-64" in data["not_run"]["PushCube-v1"]
    assert data["provenance"]["PushCube-v1"]["eval-nnit-h32-32-16-64"] is None  # made outside the pipeline
    fashion = data["tasks"]["FashionMNIST"]  # image tasks: test accuracy, no episodes to re-run
    assert not fashion["fresh"] and fashion["evals"] == fashion["evals_ranking"]
    from nnit.reproduce.readme import readme_results_table

    table = readme_results_table(data)  # the README's table reads this layout
    assert "| PushCube-v1 | 40.0% (40.0%) | 75.0% (96.0%) | 98.0% (98.0%) | 77% | 50.0% (50.0%) | – (0.0%) | 100% |" in table
