"""The gpu profile of image_experiments.run: its config, the warm-up + cosine schedule, exact resume
with warm-up, torch.compile on the training forward only, on-device augmentation; and the other
profiles pinned to the numbers they had before the gpu profile existed."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from image_experiments import run as R
from image_experiments.run import Config, lr_factor, profile_config, run

from .resume_check import interrupted_then_resumed

# Config() (the full profile) and what each profile changed, as they were before the gpu profile
_FULL = {
    "dataset": "cifar10", "arch": "resnet", "k": 1, "wd": 0.0005, "seed": 0, "profile": "full",
    "epochs": 200, "batch_size": 128, "lr": 0.01, "momentum": 0.9, "bn": True, "head": "linear",
    "width": None, "depth": None, "augment": True, "n_train": None, "n_test": None, "probe_n": 1000,
    "ots_m": 10000, "lss_eps": 0.0, "nulls": True, "bn_recalib_n": 2000, "gaussian_reg": 0.001,
    "gaussian_max_dim": 8192, "robust": True, "robust_n": 1000,
    "eps_grid": [0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1], "ablation": True,
    "ablation_n": 1000, "ablation_importance_n": 1000, "ablation_fracs": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 1.0],
    "plot_per_class": 10, "eval_batch": 250, "device": "auto", "threads": 0, "data_dir": None,
    "download": True, "out_dir": "runs/images", "run_dir": None, "progress": True,
}  # fmt: skip
_SMOKE = {
    "epochs": 2, "batch_size": 32, "n_train": 96, "n_test": 64, "probe_n": 32, "ots_m": 64, "robust_n": 32,
    "eps_grid": [0.0, 0.1], "ablation_n": 32, "ablation_importance_n": 32, "ablation_fracs": [0.0, 0.5],
    "plot_per_class": 2, "eval_batch": 64, "progress": False,
}  # fmt: skip
_GRID = {"robust_n": 500, "ablation_n": 500, "ablation_importance_n": 500}
_PINNED = {
    ("smoke", "mnist", 1): _SMOKE,
    ("smoke", "cifar10", 1): _SMOKE,
    ("smoke", "cifar100", 4): {**_SMOKE, "width": 8},
    ("cpu", "mnist", 1): {"epochs": 10},
    ("cpu", "cifar10", 1): {"epochs": 8},
    ("cpu", "cifar100", 1): {"epochs": 8},
    ("cpu-grid", "mnist", 1): {"epochs": 2, **_GRID},
    ("cpu-grid", "cifar10", 1): {"epochs": 4, "n_train": 10_000, **_GRID},
    ("cpu-grid", "cifar100", 1): {"epochs": 4, "n_train": 10_000, **_GRID},
    ("full", "cifar10", 4): {},
    ("full", "mnist", 1): {},
}


@pytest.mark.parametrize("profile,dataset,k", sorted(_PINNED))
def test_earlier_profiles_are_unchanged(profile, dataset, k):
    cfg = profile_config(profile, dataset, "plain", k)
    expected = {"kind": "image", **_FULL, "profile": profile, "dataset": dataset, "arch": "plain", "k": k}
    expected.update(wd=1e-3 if dataset == "mnist" else 5e-4, **_PINNED[(profile, dataset, k)])
    # the new fields stay at their defaults and are left out of config.json (old run folders match)
    assert cfg.to_dict() == expected
    assert (cfg.warmup_epochs, cfg.compile) == (0, False)
    assert Config.from_dict(cfg.to_dict()) == cfg


def test_gpu_profile_config():
    for dataset in ("cifar10", "cifar100"):
        for k in (1, 4):
            cfg = profile_config("gpu", dataset, "resnet", k)
            assert (cfg.device, cfg.epochs, cfg.batch_size, cfg.warmup_epochs) == ("cuda", 15, 512, 2)
            assert cfg.lr == pytest.approx(0.01 * 512 / 128)  # linear scaling from SPEC's 0.01 at 128
            assert cfg.augment and not cfg.compile and cfg.width is None and cfg.n_train is None
            assert (cfg.momentum, cfg.wd) == (0.9, 5e-4)
            # every measurement keeps the full profile's sizes
            full = profile_config("full", dataset, "resnet", k)
            for key in ("probe_n", "ots_m", "robust_n", "eps_grid", "ablation_n", "ablation_fracs", "eval_batch"):
                assert getattr(cfg, key) == getattr(full, key), key
            assert cfg.name.endswith("_gpu")
    cfg = profile_config("gpu", "cifar10", "plain", 4, compile=True, wd=1e-2)
    assert cfg.compile and cfg.wd == 1e-2
    assert cfg.to_dict()["compile"] is True and cfg.to_dict()["warmup_epochs"] == 2
    with pytest.raises(ValueError, match="profile gpu covers CIFAR"):
        profile_config("gpu", "mnist", "resnet", 1)


@pytest.mark.parametrize("bad", [-1, 15, 1.5])
def test_warmup_must_leave_cosine_epochs(bad):
    with pytest.raises(ValueError, match="warmup_epochs: expected an integer in"):
        profile_config("gpu", "cifar10", "resnet", 1, warmup_epochs=bad)


def _lrs(cfg: Config) -> list[float]:
    """The learning rate of epochs 1..E as _train sees it (read at the start of each epoch)."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr, momentum=0.9)
    sched = R._scheduler(opt, cfg)
    out = []
    for _ in range(cfg.epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_warmup_cosine_schedule_values():
    cfg = profile_config("gpu", "cifar10", "resnet", 1)
    lrs = _lrs(cfg)
    lr, w, e = 0.04, 2, 15
    np.testing.assert_allclose(lrs[:3], [lr / 3, 2 * lr / 3, lr], rtol=1e-12)  # warm-up, then the peak
    np.testing.assert_allclose(lrs[w + 6], lr * 0.5 * (1 + math.cos(math.pi * 6 / (e - w))), rtol=1e-12)
    np.testing.assert_allclose(lrs[-1], lr * 0.5 * (1 + math.cos(math.pi * 12 / 13)), rtol=1e-12)
    assert all(a > b for a, b in zip(lrs[w:], lrs[w + 1 :]))  # the cosine decreases
    # without warm-up: SPEC's CosineAnnealingLR itself, whose values lr_factor reproduces
    cos = profile_config("full", "cifar10", "resnet", 1, epochs=7)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    assert isinstance(R._scheduler(opt, cos), torch.optim.lr_scheduler.CosineAnnealingLR)
    np.testing.assert_allclose(_lrs(cos), [0.01 * lr_factor(i, epochs=7) for i in range(7)], rtol=1e-12)


def _smoke_cifar(tmp_path, real_data_dir, **kw):
    kw = {"threads": 1, "nulls": False, "robust": False, "ablation": False, **kw}
    return profile_config("smoke", "cifar10", "resnet", 1, data_dir=str(real_data_dir), out_dir=str(tmp_path), **kw)


def test_resume_with_warmup_is_exact(tmp_path, real_data_dir):
    kw = dict(epochs=3, warmup_epochs=1)
    _, _, cfg = interrupted_then_resumed(lambda d: _smoke_cifar(d, real_data_dir, **kw), tmp_path)
    rdir = tmp_path / "b" / cfg.name
    assert "lr_lambdas" in torch.load(rdir / "checkpoint.pt", weights_only=False)["scheduler"]  # LambdaLR saved
    hist = json.loads((rdir / "history.json").read_text())
    np.testing.assert_allclose([h["lr"] for h in hist], [0.01, 0.005, 0.01, 0.005], rtol=1e-12)
    assert json.loads((rdir / "config.json").read_text())["warmup_epochs"] == 1


def test_compile_wraps_the_training_forward_only(tmp_path, real_data_dir, monkeypatch):
    calls = {"compile": 0, "forward": 0}

    class Wrapped(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            calls["forward"] += 1
            assert self.training  # never used for tracks, probes or evaluation
            return self.inner(x)

    def fake_compile(model):
        calls["compile"] += 1
        return Wrapped(model)

    monkeypatch.setattr(torch, "compile", fake_compile)
    cfg = _smoke_cifar(tmp_path, real_data_dir, compile=True)
    res = run(cfg)
    assert res["status"] == "completed"
    assert calls == {"compile": 1, "forward": cfg.epochs * cfg.n_train // cfg.batch_size}


def _augment_reference(xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per-sample loop with the same draws as run._augment: crop of the padded image, then flip."""
    n, _, h, w = xb.shape
    oy, ox = torch.randint(0, 9, (n,), generator=gen), torch.randint(0, 9, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    pad = torch.nn.functional.pad(xb, (4, 4, 4, 4))
    out = []
    for i in range(n):
        crop = pad[i, :, oy[i] : oy[i] + h, ox[i] : ox[i] + w]
        out.append(crop.flip(-1) if flip[i] else crop)
    return torch.stack(out)


def test_augmentation_is_vectorised_and_stays_on_the_device():
    x = torch.rand(16, 3, 32, 32)
    got = R._augment(x, torch.Generator().manual_seed(3))
    torch.testing.assert_close(got, _augment_reference(x, torch.Generator().manual_seed(3)), rtol=0, atol=0)
    # on the meta device no value can be read back: the gather never leaves the batch's device
    meta = R._augment(torch.empty(8, 3, 32, 32, device="meta"), torch.Generator().manual_seed(0))
    assert meta.device.type == "meta" and meta.shape == (8, 3, 32, 32)
