"""image_experiments.run: smoke runs end to end, exact resume, divergence, CLI errors, figures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import otflow
from image_experiments import analysis
from image_experiments.data import load_dataset
from image_experiments.figures import make_figures
from image_experiments.models import build_model
from image_experiments.run import Config, main, profile_config, run

from .resume_check import interrupted_then_resumed
from .test_data import _fake_cifar


def _smoke(tmp_path, real_data_dir, dataset="mnist", arch="resnet", k=1, **kw):
    kw.setdefault("threads", 1)
    return profile_config("smoke", dataset, arch, k, data_dir=str(real_data_dir), out_dir=str(tmp_path), **kw)


def _check_completed(res, cfg):
    assert res["status"] == "completed", res
    assert 0 <= res["test"]["acc"] <= 1 and np.isfinite(res["test"]["loss"])
    n_stages = 4 if cfg.k == 4 else 1
    assert len(res["stages"]) == n_stages
    for st in res["stages"]:
        assert st["lss"] >= 1 and st["lsr"] >= 1 and 0 <= st["ots"] <= 1
        assert st["m"] == min(cfg.ots_m, cfg.n_test)
        np.testing.assert_allclose(sum(st["segment_proportions"]), 1.0, rtol=1e-9)
        assert st["energy_ratio"] >= 1 - 1e-9  # SPEC (12): energy >= W2^2
        assert set(st["null"]) == {"untrained", "shuffled", "references", "gaussian_linear"}
        assert st["null"]["references"]["random_walk"] == pytest.approx(np.sqrt(st["n_blocks"]))
        for null in ("untrained", "shuffled"):
            assert st["null"][null]["lss"] >= 1 and 0 <= st["null"][null]["ots"] <= 1
    rob = res["robustness"]
    assert len(rob["noise_acc"]) == len(cfg.eps_grid) and len(rob["layers"]) == len(rob["fgsm_variation"][0])
    np.testing.assert_allclose(rob["noise_variation"][0], 0.0, atol=0)  # eps = 0 changes nothing
    assert np.asarray(res["ablation"]["acc"]).shape == (sum(st["n_blocks"] for st in res["stages"]), 2)


def _check_folder(rdir):
    for f in ("config.json", "environment.json", "history.json", "metrics.json", "arrays.npz", "checkpoint.pt"):
        assert (rdir / f).is_file(), f
    env = json.loads((rdir / "environment.json").read_text())
    assert env["device"] == "cpu" and "torch" in env["packages"] and "git_revision" in env


@pytest.mark.parametrize(
    "dataset,arch,k",
    [
        ("mnist", "resnet", 1),
        ("mnist", "plain", 1),
        ("cifar10", "resnet", 1),
        pytest.param("cifar10", "plain", 1, marks=pytest.mark.slow),
        ("cifar10", "resnet", 4),
        pytest.param("cifar10", "plain", 4, marks=pytest.mark.slow),
    ],
)
def test_smoke_run_end_to_end(tmp_path, real_data_dir, dataset, arch, k):
    cfg = _smoke(tmp_path, real_data_dir, dataset, arch, k)
    res = run(cfg)
    _check_completed(res, cfg)
    rdir = tmp_path / cfg.name
    _check_folder(rdir)
    assert "first 64" in res["data"]["test_images"]
    if dataset == "cifar10":
        assert "only the first 1,000" in res["data"]["test_images"]
    hist = json.loads((rdir / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [0, 1, 2]
    assert all(len(h["probe_stages"]) == len(res["stages"]) for h in hist)


@pytest.mark.slow
def test_smoke_run_k4_full_width(tmp_path, real_data_dir):
    cfg = _smoke(tmp_path, real_data_dir, "cifar10", "resnet", 4, width=None, n_train=32, epochs=1)
    _check_completed(run(cfg), cfg)


def test_smoke_run_cifar100_official_format(tmp_path):
    # the CIFAR-100 path (official pickle format, 100 classes) end to end; the measurements that
    # do not depend on the data set are covered by the CIFAR-10 and MNIST runs
    _fake_cifar(tmp_path / "data", "cifar100", sizes=(96,), n_test=64)
    cfg = profile_config(
        "smoke",
        "cifar100",
        "plain",
        1,
        data_dir=str(tmp_path / "data"),
        out_dir=str(tmp_path),
        threads=1,
        nulls=False,
        robust=False,
        ablation=False,
    )
    res = run(cfg)
    assert res["status"] == "completed" and res["robustness"] is None and res["ablation"] is None
    assert res["data"]["test_images"].startswith("test = first 64 images")
    (st,) = res["stages"]
    assert st["shape"] == [32, 16, 16] and st["n_blocks"] == 10 and 0 <= st["ots"] <= 1 and st["lss"] >= 1
    labels = np.asarray(res["projection"]["labels"])
    assert labels.max() >= 10  # the 100-class labels reach the run


def test_resume_after_interruption_is_exact(tmp_path, real_data_dir):
    kw = dict(epochs=3, nulls=False, robust=False, ablation=False)
    ref, res, cfg = interrupted_then_resumed(lambda d: _smoke(d, real_data_dir, **kw), tmp_path)
    a = torch.load(tmp_path / "a" / cfg.name / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / cfg.name / "checkpoint.pt", weights_only=False)
    strip = [{k: v for k, v in h.items() if not k.endswith("_s") and k != "img_per_s"} for h in a["history"]]
    assert strip == [{k: v for k, v in h.items() if not k.endswith("_s") and k != "img_per_s"} for h in b["history"]]
    # a completed run is not redone
    assert run(cfg)["test"] == res["test"]


def test_interrupted_run_records_its_status(tmp_path, real_data_dir):
    cfg = _smoke(tmp_path, real_data_dir, epochs=2, nulls=False, robust=False, ablation=False)

    def stop(rec):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(cfg, on_epoch_end=stop)
    assert json.loads((tmp_path / cfg.name / "metrics.json").read_text())["status"] == "interrupted"


def test_config_change_in_same_folder_is_refused(tmp_path, real_data_dir):
    from image_experiments.run import RunError

    cfg = _smoke(tmp_path, real_data_dir, epochs=1, nulls=False, robust=False, ablation=False)
    run(cfg)
    with pytest.raises(RunError, match="lr"):
        run(Config.from_dict({**cfg.to_dict(), "lr": 0.5, "run_dir": str(tmp_path / cfg.name)}))


def test_diverging_run_records_status(tmp_path, real_data_dir):
    cfg = _smoke(tmp_path, real_data_dir, lr=1e12, epochs=2)
    res = run(cfg)
    assert res["status"] == "diverged" and res["diverged_at_epoch"] in (1, 2)
    saved = json.loads((tmp_path / cfg.name / "metrics.json").read_text())
    assert saved["status"] == "diverged"


def test_stage_metrics_match_track_report(real_data_dir):
    d = load_dataset("mnist", real_data_dir, download=False)
    torch.manual_seed(0)
    model = build_model("mnist", "plain", 1, n_classes=10)
    x = d.x_test[:50]
    (st,) = analysis.stage_metrics(model, x, chunk=16)
    # the same chunks as stage_metrics, so that the float32 forward passes are identical
    tracks = np.concatenate(
        [otflow.record_stage_tracks(model, analysis.to_float(x[s : s + 16]), model.stages)[0] for s in range(0, 50, 16)]
    )
    rep = otflow.track_report(tracks, eps=0.0)
    keys = ("lss", "lsr", "transport_energy", "displacement_sq", "w2_squared", "energy_ratio", "ots", "ot_cost_gap")
    for key in keys:
        np.testing.assert_allclose(st[key], getattr(rep, key), rtol=1e-10, atol=1e-12, err_msg=key)
    np.testing.assert_allclose(st["segment_proportions"], rep.segment_proportions, rtol=1e-10)


def test_gaussian_null_in_span_coordinates_equals_full_space():
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(12, 40))
    xl = x0 @ rng.normal(size=(40, 40)) * 0.3 + 1.0
    z0, zl = analysis._span_coordinates(x0, xl)
    assert z0.shape[1] <= 24
    np.testing.assert_allclose(otflow.pairwise_sq_dists(z0, zl), otflow.pairwise_sq_dists(x0, xl), rtol=1e-9, atol=1e-9)
    reg = 0.1
    full = otflow.empirical_gaussian_map(x0, xl, reg=reg)
    span = otflow.empirical_gaussian_map(z0, zl, reg=reg)
    # the map in span coordinates is the full map restricted to the span (isometry)
    np.testing.assert_allclose(
        otflow.pairwise_sq_dists(full(x0), xl), otflow.pairwise_sq_dists(span(z0), zl), rtol=1e-7, atol=1e-8
    )
    control = analysis.gaussian_control(x0, xl, gaussian_reg=1e-3)
    assert control["ots"] == 1.0  # positive control: a linear OT map pairs optimally


def test_figures_from_saved_run(tmp_path, real_data_dir):
    cfg = _smoke(tmp_path, real_data_dir, epochs=1)
    run(cfg)
    written = make_figures(tmp_path / cfg.name)
    names = sorted(p.name for p in written)
    assert names == ["ablation.png", "robustness.png", "segments.png", "tracks_stage1.png", "training.png"]
    assert all(p.stat().st_size > 1000 for p in written)


def test_cli_errors_are_clean(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--dataset", "mnist", "--k", "4"])
    assert info.value.code == 2 and "k: expected 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["--dataset", "imagenet"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["--epochs", "many"])
    assert info.value.code == 2 and "epochs" in capsys.readouterr().err
    empty = tmp_path / "empty"
    code = main(
        [
            "--profile",
            "smoke",
            "--dataset",
            "cifar10",
            "--data-dir",
            str(empty),
            "--no-download",
            "--out",
            str(tmp_path / "runs" / "x"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: cifar10 not found") and "by hand" in err and "Traceback" not in err


def test_converged_profile_trains_cifar_k1_to_the_end_of_a_longer_schedule():
    c = profile_config("converged", "cifar10", "plain", 1, wd=1e-2)
    assert (c.epochs, c.n_train, c.batch_size, c.lr, c.momentum, c.warmup_epochs) == (40, 10_000, 128, 0.01, 0.9, 0)
    assert c.name == "cifar10_plain_k1_wd0.01_seed0_converged" and c.ots_m == 10_000
    m = profile_config("converged", "mnist", "resnet", 1, wd=1e-2)
    assert (m.epochs, m.n_train, m.batch_size, m.lr, m.ots_m) == (20, None, 128, 0.01, 10_000)  # all 60,000 images
    assert profile_config("converged-long", "mnist", "plain", 1).epochs == 40
    with pytest.raises(ValueError, match="K=4 needs a GPU"):
        profile_config("converged", "cifar10", "resnet", 4)
    long = profile_config("converged-long", "cifar10", "resnet", 1, wd=1e-2)
    assert (long.epochs, long.n_train, long.batch_size, long.lr) == (80, 10_000, 128, 0.01)
    assert long.name == "cifar10_resnet_k1_wd0.01_seed0_converged-long"  # not the 40-epoch run's folder


def test_profiles_set_their_sizes_and_overrides_win():
    cpu = profile_config("cpu", "cifar10", "resnet", 1)
    assert (cpu.epochs, cpu.n_train, cpu.ots_m, cpu.robust_n) == (8, None, 10_000, 1000)
    grid = profile_config("cpu-grid", "cifar10", "plain", 1, wd=0.1)
    assert (grid.epochs, grid.n_train, grid.robust_n, grid.ablation_n, grid.wd) == (4, 10_000, 500, 500, 0.1)
    assert grid.name == "cifar10_plain_k1_wd0.1_seed0_cpu-grid"
    mnist = profile_config("cpu-grid", "mnist", "resnet", 1, epochs=3)
    assert (mnist.epochs, mnist.n_train, mnist.wd) == (3, None, 1e-3)
    for profile in ("cpu", "cpu-grid"):
        with pytest.raises(ValueError, match="K=4 needs a GPU"):
            profile_config(profile, "cifar10", "resnet", 4)
    with pytest.raises(ValueError, match="profile: expected one of"):
        profile_config("laptop", "mnist", "resnet", 1)


def test_cli_smoke_run_and_overrides(tmp_path, real_data_dir, capsys):
    code = main(
        [
            "--profile",
            "smoke",
            "--dataset",
            "mnist",
            "--arch",
            "plain",
            "--wd",
            "1e-2",
            "--seed",
            "3",
            "--epochs",
            "1",
            "--no-nulls",
            "--no-ablation",
            "--no-robust",
            "--eps-grid",
            "0,0.2",
            "--threads",
            "2",
            "--data-dir",
            str(real_data_dir),
            "--out",
            str(tmp_path / "run"),
            "--no-progress",
        ]
    )
    assert code == 0
    rdir = tmp_path / "run"
    cfg = Config.from_dict(json.loads((rdir / "config.json").read_text()))
    assert (cfg.wd, cfg.seed, cfg.epochs, cfg.nulls, cfg.ablation, cfg.robust) == (0.01, 3, 1, False, False, False)
    assert cfg.eps_grid == (0.0, 0.2)
    assert (rdir / "figures" / "training.png").is_file()
    assert "test acc" in capsys.readouterr().out
    # the same folder again: refused without --resume (exit 2), reported as it is with it
    args = ["--profile", "smoke", "--dataset", "mnist", "--arch", "plain", "--wd", "1e-2", "--seed", "3"]
    args += ["--epochs", "1", "--no-nulls", "--no-ablation", "--no-robust", "--eps-grid", "0,0.2", "--threads", "2"]
    args += ["--data-dir", str(real_data_dir), "--out", str(rdir), "--no-figures"]
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2 and "--resume" in capsys.readouterr().err
    assert main(args + ["--resume"]) == 0


def test_every_cli_option_has_help_text():
    from image_experiments.run import build_parser

    actions = [a for a in build_parser()._actions if a.option_strings and a.dest != "help"]
    assert len(actions) > 35
    missing = [a.option_strings[0] for a in actions if not a.help or a.help.startswith(a.dest.replace("_", " ") + " (")]
    assert not missing, missing


def _toy_images(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8)


@pytest.mark.parametrize("arch", ["plain", "resnet"])
def test_streamed_shuffled_null_equals_the_whole_array(arch):
    """The chunked scatter-add null equals otflow.shuffled_displacements on all tracks at once."""
    torch.manual_seed(0)
    model = build_model("mnist", arch, 1, n_classes=10, width=24).eval()
    x = _toy_images(70)
    (st,) = analysis.stage_metrics(model, x, chunk=16, lss_eps=0.0, null_seed=5)
    tracks = otflow.record_stage_tracks(model, analysis.to_float(x), model.stages, batch_size=70)[0]
    sh = otflow.shuffled_displacements(tracks, rng=5)  # stage index 0: rng = null_seed + 0
    rep = otflow.track_report(sh, eps=0.0)
    for key in ("lss", "lsr", "ots", "ot_cost_gap", "w2_squared", "energy_ratio"):
        np.testing.assert_allclose(st["shuffled"][key], getattr(rep, key), rtol=2e-5, atol=1e-9, err_msg=key)
    # the shuffled tracks keep every step, so the energy is the trained tracks' energy
    np.testing.assert_allclose(rep.transport_energy, st["transport_energy"], rtol=1e-5)


def test_recalibrated_bn_normalises_an_untrained_net():
    """Fresh running statistics (0, 1) do not normalise: a plain net's signal shrinks block by block.
    Re-estimated on the data, the first BN's statistics equal the batch moments of its input and the
    segments keep their length."""
    torch.manual_seed(0)
    model = build_model("mnist", "plain", 1, n_classes=10)
    x = _toy_images(300)
    before = otflow.segment_lengths(otflow.record_stage_tracks(model, analysis.to_float(x), model.stages)[0]).mean(0)
    assert analysis.recalibrate_bn(model, x, batch=100) == 10  # 2 per block, 5 blocks, no head BN
    with torch.no_grad():
        h = model.lift(model.normalise(analysis.to_float(x)).flatten(1))
    bn = model.stage_modules[0][0].bn1
    np.testing.assert_allclose(bn.running_mean, h.mean(0), rtol=1e-4, atol=1e-5)
    batches = [h[s : s + 100].var(0, unbiased=True) for s in range(0, 300, 100)]
    np.testing.assert_allclose(bn.running_var, torch.stack(batches).mean(0), rtol=1e-4, atol=1e-6)
    assert bn.momentum == 0.1 and model.training  # momentum and mode (train, as built) restored
    after = otflow.segment_lengths(otflow.record_stage_tracks(model, analysis.to_float(x), model.stages)[0]).mean(0)
    assert before[-1] < 0.1 * before[0]  # collapse with initial statistics
    assert after.min() > 0.5 * after.max()  # every block moves its input about as far
    assert analysis.recalibrate_bn(build_model("mnist", "plain", 1, n_classes=10, bn=False), x) == 0


def test_epoch0_probe_and_untrained_null_are_bn_normalised(tmp_path, real_data_dir):
    cfg = _smoke(tmp_path, real_data_dir, arch="plain", epochs=1, robust=False, ablation=False)
    res = run(cfg)
    hist = json.loads((tmp_path / cfg.name / "history.json").read_text())
    assert hist[0]["epoch"] == 0 and hist[0]["bn_recalibrated"] is True
    assert "re-estimated" in res["data"]["bn_recalibration"]
    # a plain 5-block net with normalising BN is far from a straight track: LSS well above 1
    assert res["stages"][0]["null"]["untrained"]["lss"] > 1.5
    summary = res["summary"]
    for key in ("lss", "lsr", "ots", "energy_ratio"):
        assert f"{key}_untrained_mean" in summary and f"{key}_shuffled_mean" in summary


@pytest.mark.parametrize("head,n_bn", [("linear", 0), ("bn-relu", 1)])
def test_head_options(head, n_bn):
    model = build_model("cifar10", "plain", 1, n_classes=10, head=head)
    assert model.head == head
    assert isinstance(model.head_bn, torch.nn.BatchNorm2d) == bool(n_bn)
    out = model.eval()(torch.rand(3, 3, 32, 32))
    assert out.shape == (3, 10)
    with pytest.raises(ValueError, match="head"):
        build_model("mnist", "plain", 1, n_classes=10, head="mlp")
    with pytest.raises(ValueError, match="head"):
        Config(dataset="mnist", head="mlp")


def test_linear_head_sees_the_scale_of_the_last_representation():
    """Pool → linear: scaling x^L scales the logits' deviation from the bias; σ(BN) → pool → linear
    (in eval mode with fixed statistics, after recalibration) does not simply scale."""
    torch.manual_seed(0)
    model = build_model("mnist", "plain", 1, n_classes=10, head="linear").eval()
    z = torch.randn(4, 1000)
    np.testing.assert_allclose(
        (model.fc(2 * z) - model.fc.bias).detach(), 2 * (model.fc(z) - model.fc.bias).detach(), rtol=1e-5, atol=1e-6
    )
