"""image_experiments.models: Table 1 dimensions through otflow.record_tracks, block forms, plain vs residual."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import otflow
from image_experiments.models import Block, build_model

# (dataset, k) -> per-stage (blocks + 1, flattened dimension), SPEC Table 1
TABLE1 = {
    ("mnist", 1): [(6, 1000)],
    ("cifar10", 1): [(11, 32 * 16 * 16)],
    ("cifar100", 4): [(6, 64 * 32 * 32), (6, 128 * 16 * 16), (6, 256 * 8 * 8), (6, 512 * 4 * 4)],
}


@pytest.mark.parametrize("arch", ["resnet", "plain"])
@pytest.mark.parametrize("key", list(TABLE1))
def test_record_tracks_gives_table1_dimensions(key, arch):
    dataset, k = key
    torch.manual_seed(0)
    n_classes = 100 if dataset == "cifar100" else 10
    model = build_model(dataset, arch, k, n_classes=n_classes)
    x = torch.rand(3, 1, 28, 28) if dataset == "mnist" else torch.rand(3, 3, 32, 32)
    tracks = otflow.record_stage_tracks(model, x, model.stages)
    assert [t.shape for t in tracks] == [(3, p, d) for p, d in TABLE1[key]]
    assert model(x).shape == (3, n_classes)
    # x^0 of the first stage is the output of the lifting map G0 (SPEC §5, §8.10)
    with torch.no_grad():
        model.eval()
        h = model.normalise(x)
        g0 = model.lift(h.flatten(1) if dataset == "mnist" else h)
    np.testing.assert_allclose(tracks[0][:, 0], g0.flatten(1).numpy(), rtol=1e-6, atol=1e-6)


def test_block_without_bn_is_exactly_w2_relu_w1():
    torch.manual_seed(1)
    for kind, x in (("fc", torch.randn(5, 16)), ("conv", torch.randn(2, 4, 6, 6))):
        res = Block(kind, x.shape[1], residual=True, bn=False)
        plain = Block(kind, x.shape[1], residual=False, bn=False)
        plain.load_state_dict(res.state_dict())
        expected = res.w2(torch.relu(res.w1(x)))
        torch.testing.assert_close(plain(x), expected, rtol=0, atol=0)
        torch.testing.assert_close(res(x), x + expected, rtol=0, atol=0)
        assert all(getattr(m, "bias", None) is None for m in (res.w1, res.w2))


def test_preactivation_block_form():
    torch.manual_seed(2)
    b = Block("conv", 4, residual=True, bn=True).eval()
    x = torch.randn(2, 4, 5, 5)
    f = b.w2(torch.relu(b.bn2(b.w1(torch.relu(b.bn1(x))))))
    torch.testing.assert_close(b(x), x + f)


def test_plain_nets_have_no_shortcuts():
    res = build_model("cifar10", "resnet", 4, n_classes=10)
    plain = build_model("cifar10", "plain", 4, n_classes=10)
    names_res = {n for n, _ in res.named_parameters()}
    names_plain = {n for n, _ in plain.named_parameters()}
    assert names_res - names_plain == {f"transitions.{i}.shortcut.weight" for i in range(3)}
    assert not any(b.residual for b in plain.blocks) and all(b.residual for b in res.blocks)


def test_width_and_depth_overrides():
    m = build_model("cifar10", "resnet", 4, n_classes=10, width=8, depth=2)
    assert m.stage_dims == [(8, 32, 32), (16, 16, 16), (32, 8, 8), (64, 4, 4)]
    assert [len(s) for s in m.stages] == [2, 2, 2, 2]
    with pytest.raises(ValueError, match="k"):
        build_model("mnist", "resnet", 4, n_classes=10)
