"""Tests of toy_experiments (the 2-D Gaussian study): smoke run, oracle maps, CLI, pieces."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

import otflow
from toy_experiments import gaussians
from toy_experiments.evaluation import energy_bound_fields, evaluate_tracks, lifted_weights
from toy_experiments.gaussians import Config, main, planned_runs, run
from toy_experiments.nets import INITS, BatchedNets
from toy_experiments.problems import TASKS, ground_truth, make_problem

SMOKE = dict(figures=False)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    cfg = Config.smoke(**SMOKE)
    records = run(cfg, out, progress=False)
    return cfg, out, records


def _numbers(rec: dict):
    for k, v in rec.items():
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, (int, float)):
            yield k, v
        elif isinstance(v, list) and v and isinstance(v[0], float):
            for i, x in enumerate(v):
                yield f"{k}[{i}]", x


# ----- the study end to end ----------------------------------------------------------------------------


def test_smoke_run_writes_every_run_with_finite_metrics(smoke_run):
    cfg, out, records = smoke_run
    assert [r["id"] for r in records] == [r["id"] for r in planned_runs(cfg)]
    assert len(records) == len(cfg.tasks) * len(cfg.lambdas) * len(cfg.seeds) * 2
    required = (
        "lss",
        "lsr",
        "ots",
        "ot_cost_gap",
        "transport_energy",
        "energy_ratio",
        "map_uvp",
        "theorem1_share",
        "task_loss",
        "bound_spectral",
        "bound_frobenius",
        "bound_penalty_form",
    )
    for r in records:
        for key in required:
            assert key in r, (r["id"], key)
        bad = [k for k, v in _numbers(r) if not math.isfinite(v)]
        assert bad == [], (r["id"], bad)
        assert r["nonfinite"] == []
        assert len(r["segment_proportions"]) == cfg.n_blocks
        np.testing.assert_allclose(sum(r["segment_proportions"]), 1.0, rtol=1e-9)
        assert r["energy_ratio"] >= 1 - 1e-9  # SPEC (12): energy ≥ W2²(x⁰, xᴸ) for every net
        assert r["energy_within_bounds"], r["id"]
        if r["task"] == "classification":
            assert 0 <= r["accuracy"] <= 1
        else:
            assert r["w2sq_to_target"] >= 0 and "fit_ratio" in r
    for name in ("config.json", "environment.json", "metrics.json", "metrics.csv", "summary.json", "table.txt"):
        assert (out / name).is_file(), name
    env = json.loads((out / "environment.json").read_text())
    assert "git_revision" in env and env["packages"]["torch"]
    assert json.loads((out / "config.json").read_text())["fit_rules"]["classification"].startswith("held-out")
    csv_lines = (out / "metrics.csv").read_text().strip().splitlines()
    assert len(csv_lines) == len(records) + 1


def test_resume_skips_done_runs_and_redoes_missing_ones(smoke_run, tmp_path):
    cfg, out, records = smoke_run
    with pytest.raises(ValueError, match="--resume"):
        run(cfg, out, progress=False)
    victim = records[1]
    (out / "runs" / f"{victim['id']}.json").unlink()
    again = run(cfg, out, resume=True, progress=False)
    redone = next(r for r in again if r["id"] == victim["id"])
    # the group is retrained from the same seeds, so the missing run comes back with the same numbers
    for key in ("lss", "ots", "transport_energy", "map_uvp", "w2sq_to_target"):
        np.testing.assert_allclose(redone[key], victim[key], rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="different config"):
        run(Config.smoke(steps=41, **SMOKE), out, resume=True, progress=False)


@pytest.mark.slow
def test_ctrl_c_keeps_finished_runs_and_resume_completes_the_study(tmp_path):
    import signal
    import time

    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "toy_experiments.gaussians",
        "--smoke",
        "--no-progress",
        "--no-figures",
        "--steps",
        "400",
        "--out",
        str(out),
    ]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not list((out / "runs").glob("*.json")) and time.time() - t0 < 240:
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=240)
    assert p.returncode == 130, err
    assert "interrupted" in err and "--resume" in err and "Traceback" not in err
    n_done = len(list((out / "runs").glob("*.json")))
    total = len(planned_runs(Config.smoke(steps=400)))
    assert 1 <= n_done < total
    p = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr
    assert len(list((out / "runs").glob("*.json"))) == total


def test_main_smoke_prints_table_verdicts_and_draws_figures(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["--smoke", "--no-progress", "--out", str(out), "--tasks", "gaussian", "--steps", "20"])
    assert code == 0
    text = capsys.readouterr().out
    assert "== gaussian" in text and "residual LSS below plain" in text
    pngs = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert pngs == ["metrics_vs_lambda.png", "pushforward_gaussian.png", "tracks_gaussian.png"]
    assert all((out / "figures" / p).stat().st_size < 300_000 for p in pngs)


# ----- the evaluation, with answers known -------------------------------------------------------------


def _pairs(n, seed=0, k=3000):
    p = np.random.default_rng(seed).integers(0, n, size=(k, 2))
    return p[p[:, 0] != p[:, 1]]


def _shuffled_geodesic(x, tx, n_steps, seed):
    """A deliberately bad map with the geodesic's marginals: every layer's points are the geodesic's
    points at that time in a fresh random order (a random permutation per layer, the input kept)."""
    rng = np.random.default_rng(seed)
    geo = otflow.geodesic_tracks(x, tx, n_steps, sigma=np.arange(len(x)))
    bad = geo.copy()
    for l in range(1, n_steps + 1):
        bad[:, l] = geo[rng.permutation(len(x)), l]
    return bad


@pytest.mark.parametrize("task", ["transport", "gaussian"])
def test_exact_geodesic_as_the_network_scores_perfectly(task):
    truth = ground_truth(make_problem(task), 200, seed=3, oversample=2)
    tracks = otflow.geodesic_tracks(truth.x, truth.tx, 6, sigma=np.arange(200))
    m = evaluate_tracks(tracks, tx=truth.tx, y=truth.y, target_var=truth.target_var, pairs=_pairs(200))
    assert m["ots"] == 1.0
    assert m["ot_cost_gap"] == 0.0
    np.testing.assert_allclose(m["lss"], 1.0, rtol=1e-12)
    np.testing.assert_allclose(m["lsr"], 1.0, rtol=1e-12)
    np.testing.assert_allclose(m["energy_ratio"], 1.0, rtol=1e-9)
    assert m["map_sq_dist"] == 0.0 and m["map_uvp"] == 0.0
    assert m["theorem1_share"] == 1.0
    np.testing.assert_allclose(m["segment_proportions"], np.full(6, 1 / 6), rtol=1e-9)


@pytest.mark.parametrize("task", ["transport", "gaussian"])
def test_random_permutation_map_scores_badly(task):
    truth = ground_truth(make_problem(task), 200, seed=3, oversample=2)
    tracks = _shuffled_geodesic(truth.x, truth.tx, 6, seed=1)
    m = evaluate_tracks(tracks, tx=truth.tx, y=truth.y, target_var=truth.target_var, pairs=_pairs(200))
    good = evaluate_tracks(
        otflow.geodesic_tracks(truth.x, truth.tx, 6, sigma=np.arange(200)),
        tx=truth.tx,
        y=truth.y,
        target_var=truth.target_var,
        pairs=_pairs(200),
    )
    # same output distribution, so the fit cannot tell them apart ...
    np.testing.assert_allclose(m["w2sq_to_target"], good["w2sq_to_target"], rtol=1e-9)
    # ... but every track metric can
    assert m["ots"] < 0.1
    assert m["ot_cost_gap"] > 0.5
    assert m["lss"] > 2.0
    assert m["energy_ratio"] > 3.0
    assert m["map_uvp"] > 50.0
    assert m["theorem1_share"] < 0.8


def test_classification_uses_the_assignment_onto_the_outputs_as_exact_map():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 2))
    y = x @ np.array([[2.0, 0.5], [0.5, 1.0]]) + 1.0  # a Brenier map: its own optimal assignment
    geo = otflow.geodesic_tracks(x, y, 5, sigma=np.arange(150))
    m = evaluate_tracks(geo, pairs=_pairs(150))
    assert m["ots"] == 1.0 and m["map_uvp"] == 0.0 and m["theorem1_share"] == 1.0
    np.testing.assert_allclose(m["energy_ratio"], 1.0, rtol=1e-9)
    bad = evaluate_tracks(_shuffled_geodesic(x, y, 5, seed=2), pairs=_pairs(150))
    assert bad["ots"] < 0.1 and bad["map_uvp"] > 50 and bad["lss"] > 2.0


def test_ground_truth_maps_are_exact_where_known():
    g = ground_truth(make_problem("gaussian"), 100, seed=0)
    np.testing.assert_allclose(g.tx, make_problem("gaussian").exact_map(g.x), rtol=1e-12)
    assert g.map_floor == 0.0
    problem = make_problem("transport")
    t = ground_truth(problem, 400, seed=0, oversample=4)
    # the sampled map is monotone (a Brenier map) and pushes the source onto the target sample
    d = t.x[:, None] - t.x[None]
    e = t.tx[:, None] - t.tx[None]
    assert np.einsum("ijk,ijk->ij", d, e).min() >= -1e-9
    assert otflow.w2_squared(t.tx, t.y) < 2 * t.w2sq_floor + 1e-3
    # away from the tails, each quadrant moves outward onto the target component at its own angle
    comp = np.argmax(t.x @ problem.source.means.T, axis=1)
    for k in range(4):
        np.testing.assert_allclose(t.tx[comp == k].mean(0), problem.target.means[k], atol=0.15)
    assert t.map_floor < 5.0


# ----- nets and bounds ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_batched_forward_matches_record_tracks_of_the_exported_model(bias):
    net = BatchedNets([True, False, True], [0, 0, 5], n_blocks=4, width=6, bias=bias)
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        batched = net(x[None].expand(3, -1, -1), tracks=True).numpy()
    for k in range(3):
        model = net.export(k)
        tr = otflow.record_tracks(model, x.numpy().astype(np.float64), blocks=list(model))
        np.testing.assert_allclose(batched[k], tr, rtol=1e-5, atol=1e-6)
    assert not torch.equal(net.W1[0], net.W1[2])


def test_inits_start_each_kind_where_documented():
    x = torch.randn(40, 2, generator=torch.Generator().manual_seed(3))
    kinds, seeds = [True, False, True, False], [0, 0, 4, 4]
    nets = {init: BatchedNets(kinds, seeds, n_blocks=3, width=8, init=init) for init in INITS}
    old = nets["torch-default"]
    # torch-default: both kinds of the same seed share PyTorch's nn.Linear draws (the old behaviour)
    np.testing.assert_array_equal(old.W1[0].detach(), old.W1[1].detach())
    w2_max, bound = float(old.W2.detach().abs().max()), 1 / math.sqrt(8)
    assert 0.8 * bound < w2_max <= bound
    # every init keeps the residual draws of torch-default except "he"; looks-linear plain blocks are the identity
    for init in ("looks-linear", "he-plain"):
        np.testing.assert_array_equal(nets[init].W1[0].detach(), old.W1[0].detach())
    with torch.no_grad():
        out = nets["looks-linear"](x[None].expand(4, -1, -1))
    np.testing.assert_allclose(out[1].numpy(), x.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[3].numpy(), x.numpy(), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(out[0], x, atol=1e-3)  # residual: near, not at, the identity
    # one plain block of the default width, over 20 seeds: he-plain keeps E‖x‖² (= 2), torch-default shrinks it
    big = torch.randn(4000, 2, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        he, td = (
            float(
                BatchedNets([False] * 20, range(20), n_blocks=1, width=32, init=i)(big[None].expand(20, -1, -1))
                .pow(2)
                .sum(2)
                .mean()
            )
            for i in ("he-plain", "torch-default")
        )
    assert 1.0 < he < 4.0 and td < 0.4, (he, td)  # measured: 1.72 and 0.18
    with pytest.raises(ValueError, match="even width"):
        BatchedNets([False], [0], width=7, init="looks-linear")
    with pytest.raises(ValueError, match="init"):
        BatchedNets([False], [0], init="xavier")


@pytest.mark.parametrize("residual", [True, False])
def test_energy_bounds_hold_bias_free_and_lifted(residual):
    for bias in (False, True):
        net = BatchedNets([residual], [3], n_blocks=5, width=7, bias=bias, init="he")  # random weights, odd width
        model = net.export(0)
        x = np.random.default_rng(0).normal(size=(300, 2))
        tr = otflow.record_tracks(model, x, blocks=list(model))
        if bias:
            weights = [
                lifted_weights(
                    net.W1[0, l].detach(),
                    net.b1[0, l].detach(),
                    net.W2[0, l].detach(),
                    net.b2[0, l].detach(),
                    residual=residual,
                )
                for l in range(5)
            ]
            # the lifted bias-free blocks reproduce the tracks on (x, 1)
            z = np.c_[x, np.ones(len(x))]
            for l, (w1, w2) in enumerate(weights):
                z = (z if residual else 0) + np.maximum(z @ w1.T, 0) @ w2.T
                np.testing.assert_allclose(z[:, :2], tr[:, l + 1], rtol=1e-10, atol=1e-12)
                np.testing.assert_allclose(z[:, 2], 1.0)
        else:
            weights = net.block_weights(0)
        f = energy_bound_fields(weights, tr, residual=residual, lifted=bias)
        energy = otflow.transport_energy(tr)
        assert f["energy_within_bounds"]
        assert energy <= f["bound_spectral"] <= f["bound_frobenius"] <= f["bound_penalty_form"] * (1 + 1e-12)
        assert (f["bound_constant_term"] > 0) == (not residual)


# ----- summary and verdicts -------------------------------------------------------------------------------


# ----- command line ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--steps", "abc"], "--steps"),
        (["--steps", "0"], "steps"),
        (["--lambdas", "0,-1"], "lambdas"),
        (["--tasks", "transport,nope"], "tasks"),
        (["--seeds", "1,1"], "seeds"),
        (["--init", "xavier"], "init"),
        (["--device", "banana"], "device"),
        (["--smoke", "--full"], "not allowed with"),
        (["--no-such-option", "1"], "unrecognized"),
        (["--resume"], "--resume needs --out"),
        (["--bias", "maybe"], "--bias"),
    ],
)
def test_bad_options_exit_nonzero_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_cuda_request_without_cuda_is_a_clear_error(capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(SystemExit) as e:
        main(["--smoke", "--device", "cuda"])
    assert e.value.code == 2 and "CUDA is not available" in capsys.readouterr().err


def test_bad_option_from_the_shell_has_no_traceback(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "toy_experiments.gaussians", "--lambdas", "x"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert p.returncode == 2
    assert "--lambdas" in p.stderr and "Traceback" not in p.stderr


def test_existing_folder_without_resume_is_refused(smoke_run, capsys):
    _, out, _ = smoke_run
    assert main(["--smoke", "--no-progress", "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_config_rejects_bad_values_and_knows_every_task():
    assert set(Config().tasks) == set(TASKS)
    with pytest.raises(ValueError, match="n_plot"):
        Config(n_eval=10, n_plot=20)
    with pytest.raises(ValueError, match="sweep"):
        Config(sweep_depths=(2,))
    assert gaussians.run_id("gaussian", 8, 32, "plain", 1e-3, 2) == "gaussian-L8w32-plain-lam0.001-s2"


def test_full_sweep_plan_has_fig5_grid():
    cfg = Config.full()
    sweep = [r for r in planned_runs(cfg) if r["kind"] == "sweep"]
    assert {(r["n_blocks"], r["width"]) for r in sweep} == {(d, w) for d in (4, 8, 16) for w in (16, 32, 64, 128)}
