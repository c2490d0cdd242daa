"""The calibration against dimension: the smoke run end to end, the nulls with their known values, the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import otflow
from toy_experiments.calibration import METRICS, VARIANTS, Config, main, make_target, null_tracks, run


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("calibration")
    cfg = Config.smoke()
    cells, errors = run(cfg, out, progress=False)
    return cfg, out, cells, errors


def test_smoke_run_scores_every_cell_finite_and_the_geodesic_exactly(smoke):
    cfg, out, cells, errors = smoke
    assert errors == []
    assert sorted(c["id"] for c in cells) == sorted(
        f"D{d}-{a}-s{s}" for d in cfg.dims for a in ("residual", "plain") for s in cfg.seeds
    )
    for c in cells:
        assert set(c["scores"]) == set(VARIANTS)
        for variant, scores in c["scores"].items():
            for key, _ in METRICS:
                assert math.isfinite(scores[key]), (c["id"], variant, key)
        geo = c["scores"]["geodesic"]  # the exact geodesic x → T*(x), at every D
        np.testing.assert_allclose([geo["lss"], geo["lsr"], geo["energy_ratio"], geo["ots"]], 1.0, rtol=1e-9)
        np.testing.assert_allclose(geo["map_uvp"], 0.0, atol=1e-9)
        assert math.isfinite(c["fit_pct"]) and c["scores"]["trained"]["map_uvp"] > 0
    config = json.loads((out / "config.json").read_text())
    assert config["kind"] == "toy-calibration" and "git_revision" in config["environment"]
    assert config["environment"]["packages"]["torch"]
    for name in ("metrics.json", "summary.json", "table.txt"):
        assert (out / name).is_file()
    table = (out / "table.txt").read_text()
    assert table.startswith("rule: ") and "== LSS: " in table and "== map UVP %: " in table


def test_resume_redoes_only_missing_cells_with_the_same_numbers(smoke, tmp_path):
    cfg, out, cells, _ = smoke
    with pytest.raises(ValueError, match="--resume"):
        run(cfg, out, progress=False)
    victim = next(c for c in cells if c["dim"] == cfg.dims[-1] and c["arch"] == "residual")
    (out / "cells" / f"{victim['id']}.json").unlink()
    again, errors = run(cfg, out, resume=True, progress=False)
    assert errors == [] and len(again) == len(cells)
    redone = next(c for c in again if c["id"] == victim["id"])
    for key in ("lss", "ots", "map_uvp"):
        np.testing.assert_allclose(redone["scores"]["trained"][key], victim["scores"]["trained"][key], rtol=1e-4)
    with pytest.raises(ValueError, match="different config"):
        run(Config.smoke(steps=16), out, resume=True, progress=False)


def test_nulls_score_their_reference_values_in_high_dimension():
    rng = np.random.default_rng(0)
    n, L, D = 200, 6, 400
    x = rng.normal(size=(n, D))
    straight = otflow.geodesic_tracks(x, x + rng.normal(size=(n, D)), L, sigma=np.arange(n))
    # shuffled: otflow.shuffled_displacements; straight tracks in random directions become random walks (√L)
    shuffled = null_tracks(straight, "shuffled", 1)
    np.testing.assert_array_equal(shuffled, otflow.shuffled_displacements(straight, 1))
    np.testing.assert_allclose(otflow.track_report(shuffled, with_ot=False).lss, math.sqrt(L), rtol=0.05)
    walk = otflow.track_report(null_tracks(straight, "random_walk", 2), with_ot=False).lss
    independent = otflow.track_report(null_tracks(straight, "independent", 3), with_ot=False).lss
    np.testing.assert_allclose(walk, math.sqrt(L), rtol=0.05)  # √L: independent unit steps
    np.testing.assert_allclose(independent, L, rtol=0.1)  # L: consecutive segments anti-correlated
    with pytest.raises(ValueError, match="kind"):
        null_tracks(straight, "untrained", 0)
    m, S = make_target(5, 0)
    assert np.all(np.linalg.eigvalsh(S) > 0.2) and m.shape == (5,)
    with pytest.raises(ValueError, match="dim"):
        make_target(0, 0)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--dims", "2,x"], "--dims"),
        (["--n-seeds", "0"], "--n-seeds"),
        (["--steps", "0"], "steps"),
        (["--resume"], "--resume needs --out"),
        (["--no-such-option"], "unrecognized"),
    ],
)
def test_bad_usage_exits_2_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--smoke", "--no-progress", *argv])
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_existing_folder_without_resume_exits_2(smoke, capsys):
    _, out, _, _ = smoke
    assert main(["--smoke", "--no-progress", "--no-figures", "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_help_names_every_option(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    text = capsys.readouterr().out
    assert e.value.code == 0
    for option in (
        "--out",
        "--resume",
        "--progress",
        "--no-progress",
        "--figures",
        "--no-figures",
        "--seed",
        "--smoke",
    ):
        assert option in text


def test_a_failing_cell_exits_1_and_a_stop_request_interrupts(tmp_path, monkeypatch, capsys):
    from toy_experiments import calibration

    with pytest.raises(KeyboardInterrupt):
        run(Config.smoke(dims=(2,)), tmp_path / "stopped", progress=False, stop=lambda: True)

    def broken(*args, **kwargs):
        raise RuntimeError("planted failure")

    monkeypatch.setattr(calibration, "_score_cell", broken)
    code = main(["--smoke", "--dims", "2", "--no-progress", "--no-figures", "--out", str(tmp_path / "failed")])
    assert code == 1 and "planted failure" in capsys.readouterr().err
