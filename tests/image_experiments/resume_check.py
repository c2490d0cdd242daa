"""Shared check of exact resume: a run interrupted after epoch 1 and resumed equals an uninterrupted one."""

from __future__ import annotations

import pytest
import torch

from image_experiments.run import run


class _Stop(KeyboardInterrupt):
    pass


def _stop_after_first(rec):
    if rec["epoch"] == 1:
        raise _Stop


def interrupted_then_resumed(make_cfg, tmp_path) -> tuple[dict, dict, object]:
    """Run ``make_cfg(tmp_path / "a")`` straight through and ``make_cfg(tmp_path / "b")`` stopped
    after epoch 1 then resumed; assert the results and the final weights are identical. Returns the
    reference result, the resumed result and the resumed run's config."""
    ref = run(make_cfg(tmp_path / "a"))
    cfg = make_cfg(tmp_path / "b")
    with pytest.raises(_Stop):
        run(cfg, on_epoch_end=_stop_after_first)
    rdir = tmp_path / "b" / cfg.name
    assert torch.load(rdir / "checkpoint.pt", weights_only=False)["epoch"] == 1
    res = run(cfg)
    for key in ("final_epoch", "train", "test", "summary", "stages"):
        assert res[key] == ref[key], key
    a = torch.load(tmp_path / "a" / cfg.name / "checkpoint.pt", weights_only=False)
    b = torch.load(rdir / "checkpoint.pt", weights_only=False)
    for name, t in a["model"].items():
        torch.testing.assert_close(b["model"][name], t, rtol=0, atol=0)
    return ref, res, cfg
