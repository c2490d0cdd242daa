"""toy_experiments.sweep: the 2-D study as resumable tasks on the shared sweep engine."""

from __future__ import annotations

import json

import pytest

from toy_experiments import sweep
from toy_experiments.sweep import ToyGrid


def test_cli_toy_sweep_end_to_end(tmp_path, capsys):
    argv = ["--profile", "smoke", "--problems", "gaussian", "--wds", "0,0.01", "--seeds", "0"]
    argv += ["--out", str(tmp_path), "--no-progress", "--no-figures"]
    assert sweep.main(argv) == 0
    out = capsys.readouterr().out
    assert "2 tasks: 2 completed" in out
    recs = json.loads((tmp_path / "toy_gaussian_wd0.01_seed0_smoke" / "metrics.json").read_text())
    assert {r["net"] for r in recs} == {"residual", "plain"} and {r["lam"] for r in recs} == {0.01}
    with pytest.raises(SystemExit) as exc:  # the same sweep again needs --resume
        sweep.main(argv)
    assert exc.value.code == 2 and "--resume" in capsys.readouterr().err
    assert sweep.main(argv + ["--resume"]) == 0
    assert "(cached)" in capsys.readouterr().out
    (manifest,) = tmp_path.glob("sweep-toy-*.json")
    doc = json.loads(manifest.read_text())
    assert sorted(doc["tasks"]) == ["toy_gaussian_wd0.01_seed0_smoke", "toy_gaussian_wd0_seed0_smoke"]
    assert sweep.status(tmp_path / "toy_gaussian_wd0_seed0_smoke") == "completed"
    assert sweep.status(tmp_path / "nothing") is None


def test_toy_grid_validates_and_names_its_tasks():
    names = [t.name for t in ToyGrid(problems=("transport",), wds=(0.0, 0.1), seeds=(1,), profile="smoke").tasks()]
    assert names == ["toy_transport_wd0_seed1_smoke", "toy_transport_wd0.1_seed1_smoke"]
    assert len(ToyGrid().tasks()) == 3 * 5 * 3
    with pytest.raises(ValueError, match="problems"):
        ToyGrid(problems=("mnist",))
    with pytest.raises(ValueError, match="profile"):
        ToyGrid(profile="cpu")
    with pytest.raises(ValueError, match="set by the grid"):
        ToyGrid(overrides={"seeds": [3]}).tasks()
    over = ToyGrid(overrides={"steps": 5}, profile="smoke").tasks()
    assert all("_o" in t.name for t in over)


def test_every_toy_sweep_option_has_help_text():
    actions = [a for a in sweep.build_parser()._actions if a.option_strings and a.dest != "help"]
    assert {"--out", "--resume", "--progress", "--figures"} <= {o for a in actions for o in a.option_strings}
    assert all(a.help for a in actions)
