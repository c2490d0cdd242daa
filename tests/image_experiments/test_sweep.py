"""Sweeps (image_experiments.sweep): task naming, skip/resume, bounded retries, local vs Ray.

Most tests inject a tiny task function (a seeded numpy computation written as a run folder), so the
engine is tested in milliseconds; one test runs the real ``smoke`` profile of image_experiments.run
and one a small grid through the command line. Ray tests skip when Ray is not installed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from image_experiments import sweep
from image_experiments.sweep import GRIDS, Grid, Task, result_status, run_sweep
from otflow.experiment.sweep import carry_timings, read_manifest_tasks
from otflow.runs import write_json

# ----------------------------------------------------------------------------------------------
# a tiny task: deterministic "metrics" from (seed, wd), written like an image run folder


def fake_task(task: Task, run_dir: Path) -> dict:
    p = task.params
    attempt_file = run_dir / "attempts.txt"
    run_dir.mkdir(parents=True, exist_ok=True)
    n = int(attempt_file.read_text()) + 1 if attempt_file.exists() else 1
    attempt_file.write_text(str(n))
    if p.get("fail") == "always":
        raise ValueError(f"planted failure in {task.name}")
    if p.get("fail") == "once" and n == 1:
        raise RuntimeError(f"transient failure in {task.name}")
    rng = np.random.default_rng([p["seed"], int(p["wd"] * 1e6)])
    x = rng.standard_normal((64, 3))
    result = {
        "status": "completed",
        "test": {"acc": float(np.mean(x[:, 0] > 0))},
        "summary": {"lss_mean": float(1 + np.abs(x).mean()), "ots_mean": float(np.mean(x[:, 1] > 0))},
    }
    write_json(run_dir / "config.json", p)
    write_json(run_dir / "metrics.json", result)
    return result


def fake_tasks(n=4, extra=None) -> list[Task]:
    tasks = []
    for i in range(n):
        params = {"seed": i % 2, "wd": [0.0, 1e-3][i // 2 % 2], "i": i}
        params.update((extra or {}).get(i, {}))
        tasks.append(Task(f"fake_{i}", "fake", params))
    return tasks


def manifest(result) -> dict:
    return json.loads(Path(result.manifest_path).read_text())


def metrics_of(out_dir: Path, tasks) -> dict:
    return {t.name: json.loads((out_dir / t.name / "metrics.json").read_text()) for t in tasks}


@pytest.fixture
def image_run():
    """Image grids build image_experiments.run's Config (issue 4)."""
    return pytest.importorskip("image_experiments.run", reason="image_experiments.run not in this checkout")


# ----------------------------------------------------------------------------------------------
# grids and names


def test_named_grids_have_the_spec_lambda_grids(image_run):
    assert GRIDS["table4"].wds == (0.0, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.2)
    assert GRIDS["table7"].wds == (0.0, 5e-4, 1e-3, 5e-3, 1e-2)
    tasks = GRIDS["table4"].tasks()
    assert len(tasks) == 9 * 2 * 3
    names = [t.name for t in tasks]
    assert len(set(names)) == len(names)
    assert "cifar10_resnet_k1_wd0.01_seed0_cpu" in names
    assert [t.name for t in GRIDS["table4"].tasks()] == names  # deterministic
    assert len(GRIDS["mnist"].tasks()) == 4 * 2 * 3
    assert len(GRIDS["table4-cpu"].tasks()) == 9 * 2 and GRIDS["table4-cpu"].profile == "cpu-grid"
    assert len(GRIDS["table4-converged"].tasks()) == 18 and len(GRIDS["table4-converged-seeds"].tasks()) == 16
    assert len(GRIDS["mnist-converged"].tasks()) == 24 and len(GRIDS["mnist-width-converged"].tasks()) == 9
    assert "mnist_resnet_k1_w2000_wd0.01_seed2_converged" in {t.name for t in GRIDS["mnist-width-converged"].tasks()}
    assert len(GRIDS["mnist-width"].tasks()) == 9
    assert len(GRIDS["table6"].tasks()) == 5 * 2 * 3


def test_overrides_change_the_name_and_invalid_grids_raise(tmp_path, image_run):
    g = Grid("g", datasets=("mnist",), wds=(1e-3,), seeds=(0,), profile="smoke")
    plain = {t.name for t in g.tasks()}
    over = {t.name for t in Grid(**{**g.to_dict(), "overrides": {"epochs": 1}}).tasks()}
    assert plain == {"mnist_resnet_k1_wd0.001_seed0_smoke", "mnist_plain_k1_wd0.001_seed0_smoke"}
    assert plain.isdisjoint(over) and all("_o" in n for n in over)
    with pytest.raises(ValueError, match="wds"):
        Grid("g", wds=(-1.0,))
    with pytest.raises(ValueError, match="profile cpu"):
        Grid("g", ks=(4,), profile="cpu").tasks()
    with pytest.raises(ValueError, match="set by the grid"):
        Grid("g", datasets=("mnist",), profile="smoke", overrides={"seed": 3}).tasks()
    (tmp_path / "bad.toml").write_text('name = "x"\nlambdas = [0.1]\n')
    with pytest.raises(ValueError, match="unknown field"):
        sweep.load_grid(tmp_path / "bad.toml")


def test_grid_file_toml_and_json(tmp_path, image_run):
    (tmp_path / "g.toml").write_text(
        'profile = "smoke"\ndatasets = ["mnist"]\nwds = [0.0, 1e-3]\nseeds = [0, 1]\n[overrides]\nepochs = 1\n'
    )
    g = sweep.load_grid(tmp_path / "g.toml")
    assert g.name == "g" and g.overrides == {"epochs": 1} and len(g.tasks()) == 2 * 2 * 2
    (tmp_path / "h.json").write_text(
        json.dumps(
            {"name": "h", "datasets": ["mnist"], "archs": ["plain"], "wds": [0.0], "seeds": [0], "profile": "smoke"}
        )
    )
    assert [t.name for t in sweep.load_grid(tmp_path / "h.json").tasks()] == ["mnist_plain_k1_wd0_seed0_smoke"]
    (tmp_path / "t.json").write_text(json.dumps({"name": "t", "kind": "toy", "datasets": ["gaussian"]}))
    with pytest.raises(ValueError, match="unknown field"):  # the 2-D study has its own sweep
        sweep.load_grid(tmp_path / "t.json")


# ----------------------------------------------------------------------------------------------
# the engine, local backend


def test_local_sweep_runs_skips_and_writes_a_manifest(tmp_path):
    tasks = fake_tasks(4)
    res = run_sweep(tasks, tmp_path, grid="t", task_fn=fake_task, progress=False)
    assert res.counts == {"completed": 4}
    doc = manifest(res)
    assert doc["format"] == 1 and doc["counts"] == {"completed": 4}
    assert all(e["attempts"] == 1 and not e["cached"] for e in doc["tasks"].values())
    # a second run finds every result and runs nothing
    calls = []
    res2 = run_sweep(tasks, tmp_path, grid="t", task_fn=lambda t, d: calls.append(t.name), progress=False)
    assert calls == [] and all(e["cached"] and e["status"] == "completed" for e in res2.tasks.values())
    table = sweep.summary_table(res2, tmp_path)
    assert "fake_3" in table and "4 tasks: 4 completed" in table


def test_failing_task_is_retried_then_recorded_while_others_finish(tmp_path):
    tasks = fake_tasks(4, {1: {"fail": "always"}, 2: {"fail": "once"}})
    res = run_sweep(tasks, tmp_path, grid="t", task_fn=fake_task, max_attempts=3, progress=False)
    e = res.tasks
    assert e["fake_1"]["status"] == "failed" and e["fake_1"]["attempts"] == 3
    assert [r["attempt"] for r in e["fake_1"]["errors"]] == [1, 2, 3]
    assert e["fake_1"]["errors"][0]["error"] == "ValueError: planted failure in fake_1"
    assert e["fake_2"]["status"] == "completed" and e["fake_2"]["attempts"] == 2
    assert e["fake_2"]["errors"][0]["error"].startswith("RuntimeError: transient")
    assert e["fake_0"]["status"] == e["fake_3"]["status"] == "completed"
    assert res.failed == ["fake_1"]
    assert manifest(res)["tasks"]["fake_1"]["status"] == "failed"
    assert result_status(tmp_path / "fake_1") is None


def test_task_without_result_counts_as_failed_attempt(tmp_path):
    res = run_sweep(
        fake_tasks(1), tmp_path, grid="t", task_fn=lambda t, d: {"status": "running"}, max_attempts=2, progress=False
    )
    e = res.tasks["fake_0"]
    assert e["status"] == "failed" and e["attempts"] == 2 and "without a result" in e["errors"][0]["error"]


class Interrupt:
    """Runs fake_task but raises KeyboardInterrupt when it reaches task ``at`` (a simulated Ctrl-C/kill)."""

    def __init__(self, at: str):
        self.at, self.calls = at, []

    def __call__(self, task, run_dir):
        self.calls.append(task.name)
        if task.name == self.at:
            raise KeyboardInterrupt
        return fake_task(task, run_dir)


def test_interrupted_sweep_resumes_with_only_the_missing_tasks(tmp_path):
    tasks = fake_tasks(5)
    first = Interrupt(at="fake_2")
    with pytest.raises(KeyboardInterrupt):
        run_sweep(tasks, tmp_path, grid="t", task_fn=first, progress=False)
    doc = json.loads((tmp_path / "sweep-t.json").read_text())
    assert [doc["tasks"][t.name]["status"] for t in tasks] == [
        "completed",
        "completed",
        "interrupted",
        "pending",
        "pending",
    ]
    second = Interrupt(at="none")
    res = run_sweep(tasks, tmp_path, grid="t", task_fn=second, progress=False)
    assert second.calls == ["fake_2", "fake_3", "fake_4"]
    assert res.counts == {"completed": 5}
    assert [res.tasks[t.name]["cached"] for t in tasks] == [True, True, False, False, False]
    assert res.tasks["fake_2"]["attempts_before"] == 1
    # the resumed sweep's results equal those of one uninterrupted sweep
    run_sweep(tasks, tmp_path / "clean", grid="t", task_fn=fake_task, progress=False)
    assert metrics_of(tmp_path, tasks) == metrics_of(tmp_path / "clean", tasks)


def test_bad_arguments_raise(tmp_path):
    with pytest.raises(ValueError, match="backend"):
        run_sweep(fake_tasks(1), tmp_path, backend="dask")
    with pytest.raises(ValueError, match="max_attempts"):
        run_sweep(fake_tasks(1), tmp_path, max_attempts=0)
    with pytest.raises(ValueError, match="repeated"):
        run_sweep(fake_tasks(1) * 2, tmp_path)


def test_cli_errors_are_clean(capsys, image_run):
    for argv, msg in [
        (["nogrid"], "expected one of table4"),
        (["mnist", "--wds", "x"], "--wds"),
        (["table6", "--profile", "cpu"], "K=4 needs a GPU"),
        (["mnist", "--set", "epochs"], "KEY=VALUE"),
        (["mnist", "--backend", "dask"], "invalid choice"),
        (["mnist", "--max-attempts", "0"], "--max-attempts"),
        (["mnist", "--quiet"], "unrecognized arguments"),
    ]:
        with pytest.raises(SystemExit) as exc:
            sweep.main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err


def test_every_sweep_option_has_help_text():
    actions = [a for a in sweep.build_parser()._actions if a.option_strings and a.dest != "help"]
    assert {"--out", "--resume", "--progress", "--figures"} <= {o for a in actions for o in a.option_strings}
    assert all(a.help for a in actions), [a.option_strings for a in actions if not a.help]


def test_real_smoke_grid_end_to_end(tmp_path, real_data_dir, image_run):
    """Two image runs of the real smoke profile through the sweep; the folder holds image_experiments.run's layout."""
    grid = Grid("smoke", datasets=("mnist",), wds=(1e-3,), seeds=(0,), profile="smoke")
    res = run_sweep(
        grid.tasks(), tmp_path, grid=grid.to_dict(), data_dir=str(real_data_dir), download=False, progress=False
    )
    assert res.counts == {"completed": 2}, res.tasks
    for name in res.tasks:
        rdir = tmp_path / name
        assert {"config.json", "metrics.json", "history.json", "arrays.npz", "environment.json"} <= {
            p.name for p in rdir.iterdir()
        }
        cfg = json.loads((rdir / "config.json").read_text())
        assert cfg["threads"] == 1 and cfg["run_dir"] == str(rdir) and cfg["profile"] == "smoke"


# ----------------------------------------------------------------------------------------------
# Ray


def test_ray_local_cluster_matches_local_backend(tmp_path):
    """A local Ray cluster started by the sweep gives the same results, retries and failures as local."""
    pytest.importorskip("ray")
    tasks = fake_tasks(6, {1: {"fail": "always"}, 2: {"fail": "once"}})
    local = run_sweep(tasks, tmp_path / "local", grid="t", task_fn=fake_task, max_attempts=2, progress=False)
    ray_res = run_sweep(
        tasks,
        tmp_path / "ray",
        grid="t",
        backend="ray",
        task_fn=fake_task,
        max_attempts=2,
        cpus_per_task=1,
        progress=False,
    )
    assert manifest(ray_res)["backend"] == "ray"
    for name in local.tasks:
        a, b = local.tasks[name], ray_res.tasks[name]
        assert (a["status"], a["attempts"]) == (b["status"], b["attempts"]), name
        assert [e["error"] for e in a["errors"]] == [e["error"] for e in b["errors"]], name
    done = [t for t in tasks if local.tasks[t.name]["status"] == "completed"]
    assert len(done) == 5
    assert metrics_of(tmp_path / "local", done) == metrics_of(tmp_path / "ray", done)
    import ray

    assert not ray.is_initialized()  # the sweep shut down the cluster it started


@pytest.mark.slow
def test_ray_real_smoke_runs_equal_local(tmp_path, real_data_dir, image_run):
    """The real smoke profile on Ray gives the same numbers as on the local backend (1 thread each)."""
    pytest.importorskip("ray")
    grid = Grid("smoke", datasets=("mnist",), wds=(1e-3,), seeds=(0,), profile="smoke")
    kw = dict(grid=grid.to_dict(), data_dir=str(real_data_dir), download=False, progress=False)
    run_sweep(grid.tasks(), tmp_path / "local", **kw)
    res = run_sweep(grid.tasks(), tmp_path / "ray", backend="ray", **kw)
    assert res.counts == {"completed": 2}, res.tasks
    for name in res.tasks:
        a, b = (json.loads((tmp_path / d / name / "metrics.json").read_text()) for d in ("local", "ray"))
        assert a["test"] == b["test"] and a["summary"] == b["summary"] and a["ablation"] == b["ablation"]


def test_ray_backend_without_ray_gives_a_clean_error(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kw):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("no ray")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(RuntimeError, match="Ray is not installed"):
        run_sweep(fake_tasks(1), tmp_path, backend="ray", task_fn=fake_task, progress=False)
    assert os.path.exists(tmp_path / "sweep-custom.json")


def _image_fake_tasks(n=3) -> list[Task]:
    return [Task(f"img_{i}", "image", {"seed": i, "wd": 0.0}) for i in range(n)]


def test_results_are_exported_and_committed_results_are_skipped(tmp_path):
    """Finished runs' small files land in --results; a sweep from a fresh checkout (empty run folder)
    skips what results/ already holds and reruns only the rest."""
    tasks = _image_fake_tasks(3)
    res = run_sweep(tasks[:2], tmp_path / "runs", grid="g", task_fn=fake_task, progress=False,
                    results_dir=tmp_path / "results")  # fmt: skip
    assert res.counts == {"completed": 2}
    for t in tasks[:2]:
        got = sorted(p.name for p in (tmp_path / "results" / t.name).iterdir())
        assert got == ["config.json", "metrics.json"]  # what exists of RESULT_FILES; no attempts.txt
        assert (tmp_path / "results" / t.name / "metrics.json").read_bytes() == (
            tmp_path / "runs" / t.name / "metrics.json"
        ).read_bytes()
    assert (tmp_path / "results" / "sweep-g.json").is_file()
    calls = []

    def counting(task, run_dir):
        calls.append(task.name)
        return fake_task(task, run_dir)

    res2 = run_sweep(tasks, tmp_path / "fresh_runs", grid="g", task_fn=counting, progress=False,
                     results_dir=tmp_path / "results")  # fmt: skip
    assert calls == ["img_2"]
    assert res2.tasks["img_0"]["cached"] == "results" and res2.tasks["img_2"]["cached"] is False
    assert (tmp_path / "results" / "img_2" / "metrics.json").is_file()


def test_export_needs_a_finished_run(tmp_path):
    (tmp_path / "run").mkdir()
    write_json(tmp_path / "run" / "config.json", {})
    with pytest.raises(ValueError, match="metrics.json is missing"):
        sweep.export_results(tmp_path / "run", tmp_path / "out")


def test_dry_run_counts_results_already_in_the_results_folder(tmp_path, capsys):
    """--dry-run reports a task whose result sits in --results as done, as the sweep would skip it."""
    from image_experiments import sweep

    argv = ["mnist", "--archs", "resnet,plain", "--wds", "0", "--seeds", "0", "--out", str(tmp_path / "runs")]
    assert sweep.main([*argv, "--dry-run"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()[:2]]
    res = tmp_path / "results" / names[0]
    res.mkdir(parents=True)
    (res / "metrics.json").write_text('{"status": "completed"}')
    assert sweep.main([*argv, "--dry-run", "--results", str(tmp_path / "results")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{names[0]}  completed (in {tmp_path / 'results'})"
    assert out[1] == f"{names[1]}  no result"


def test_a_rerun_from_lost_run_folders_keeps_the_timings_of_finished_runs(tmp_path):
    """A sweep that finds a result already committed records it as cached; it must keep the wall time
    and start/finish times of the attempt that produced it (from the run folder's manifest, else the
    committed copy), not overwrite the only record of them; earlier attempts of unfinished tasks count."""
    tasks = _image_fake_tasks(3)
    first = run_sweep(tasks[:2], tmp_path / "runs", grid="g", task_fn=fake_task, progress=False,
                      results_dir=tmp_path / "results")  # fmt: skip
    timing = {n: {k: e[k] for k in ("wall_s", "started_utc", "finished_utc")} for n, e in first.tasks.items()}
    assert all(t["wall_s"] is not None for t in timing.values())
    committed = json.loads((tmp_path / "results" / "sweep-g.json").read_text())
    committed["tasks"]["img_2"] = {"status": "running", "attempts": 1, "attempts_before": 0, "wall_s": 5.0}
    write_json(tmp_path / "results" / "sweep-g.json", committed)
    for fresh in ("lost_1", "lost_2"):  # twice: the carried timings must survive a second rerun too
        res = run_sweep(tasks, tmp_path / fresh, grid="g", task_fn=fake_task, progress=False,
                        results_dir=tmp_path / "results")  # fmt: skip
        on_disk = json.loads((tmp_path / "results" / "sweep-g.json").read_text())["tasks"]
        for name, want in timing.items():
            assert res.tasks[name]["cached"] == "results"
            assert {k: on_disk[name][k] for k in want} == want
        if fresh == "lost_1":  # img_2 ran now (the planted "running" record is not a finished one)
            assert on_disk["img_2"]["cached"] is False and on_disk["img_2"]["wall_s"] != 5.0
            timing["img_2"] = {k: on_disk["img_2"][k] for k in ("wall_s", "started_utc", "finished_utc")}
    assert json.loads((tmp_path / "lost_1" / "sweep-g.json").read_text())["tasks"]["img_2"]["attempts_before"] == 1


def test_carry_timings_takes_only_finished_records_and_keeps_own_timings():
    prev_running = {"a": {"status": "running", "wall_s": 9.0}}
    prev_done = {"a": {"status": "completed", "wall_s": 3.0, "started_utc": "s", "finished_utc": "f"}}
    tasks = {"a": {"status": "completed", "cached": "results", "wall_s": None}}
    carry_timings(tasks, prev_running, prev_done)
    assert tasks["a"] == {"status": "completed", "cached": "results", "wall_s": 3.0, "started_utc": "s", "finished_utc": "f"}
    own = {"a": {"status": "completed", "cached": False, "wall_s": 1.0}}
    assert carry_timings(own, prev_done)["a"]["wall_s"] == 1.0
    pending = {"a": {"status": "pending", "cached": False, "wall_s": None}}
    assert carry_timings(pending, prev_done)["a"]["wall_s"] is None
    assert read_manifest_tasks("/nonexistent/sweep-x.json") == {}
