"""record_tracks on small torch models (SPEC Definition 1, eq. (19))."""

import numpy as np
import pytest

import otflow

torch = pytest.importorskip("torch")
nn = torch.nn


class Block(nn.Module):
    def __init__(self, d, h, residual=True):
        super().__init__()
        self.fc1, self.fc2, self.residual = nn.Linear(d, h), nn.Linear(h, d), residual

    def forward(self, x):
        f = self.fc2(torch.relu(self.fc1(x)))
        return x + f if self.residual else f


class TinyResNet(nn.Module):
    """stem -> stage of 3 blocks (8-d) -> down -> stage of 2 blocks (4-d) -> head."""

    def __init__(self, residual=True):
        super().__init__()
        self.stem = nn.Linear(5, 8)
        self.stage1 = nn.ModuleList([Block(8, 16, residual) for _ in range(3)])
        self.down = nn.Linear(8, 4)
        self.stage2 = nn.ModuleList([Block(4, 8, residual) for _ in range(2)])
        self.head = nn.Linear(4, 3)
        self.bn = nn.BatchNorm1d(8)

    def forward(self, x):
        x = self.bn(self.stem(x))
        for b in self.stage1:
            x = b(x)
        x = self.down(x)
        for b in self.stage2:
            x = b(x)
        return self.head(x)


def hand_tracks(model, x, batch_size=None):
    """The states of a hand-written forward loop, run on the same batches as record_tracks
    (BLAS may round a 7-row batch differently from a 37-row one, so exact equality needs the same
    batches)."""
    if batch_size is not None:
        parts = [hand_tracks(model, x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        return tuple(np.concatenate(p, 0) for p in zip(*parts))
    with torch.no_grad():
        h = model.bn(model.stem(x))
        s1 = [h]
        for b in model.stage1:
            h = b(h)
            s1.append(h)
        h = model.down(h)
        s2 = [h]
        for b in model.stage2:
            h = b(h)
            s2.append(h)
    return torch.stack(s1, 1).numpy(), torch.stack(s2, 1).numpy()


@pytest.mark.parametrize("residual", [True, False])
def test_matches_a_hand_written_forward_loop(residual):
    torch.manual_seed(0)
    model = TinyResNet(residual).eval()
    x = torch.randn(37, 5)
    expected1, _ = hand_tracks(model, x, batch_size=10)
    one = otflow.record_tracks(model, x, model.stage1, batch_size=10)
    assert isinstance(one, np.ndarray) and one.shape == (37, 4, 8)
    np.testing.assert_array_equal(one, expected1)
    expected1, expected2 = hand_tracks(model, x, batch_size=16)
    both = otflow.record_stage_tracks(model, x.numpy(), [model.stage1, model.stage2], batch_size=16)
    assert isinstance(both, list) and [t.shape for t in both] == [(37, 4, 8), (37, 3, 4)]
    np.testing.assert_array_equal(both[0], expected1)
    np.testing.assert_array_equal(both[1], expected2)
    # batching changes nothing beyond float32 rounding
    whole = otflow.record_tracks(model, x, model.stage1, batch_size=64)
    np.testing.assert_allclose(one, whole, rtol=0, atol=1e-6)


def test_conv_features_are_flattened():
    torch.manual_seed(0)
    blocks = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Conv2d(3, 3, 3, padding=1))
    x = torch.randn(4, 3, 6, 6)
    t = otflow.record_tracks(blocks, x, list(blocks))
    assert t.shape == (4, 3, 3 * 6 * 6)
    with torch.no_grad():
        np.testing.assert_allclose(t[:, 2], blocks(x).flatten(1).numpy(), rtol=1e-6)


def test_eval_mode_is_used_and_training_flags_are_restored():
    torch.manual_seed(0)
    model = TinyResNet().train()
    model.bn.running_mean.fill_(1.0)
    x = torch.randn(8, 5)
    t = otflow.record_tracks(model, x, model.stage1)
    assert model.training and model.bn.training
    model.eval()
    np.testing.assert_array_equal(t, hand_tracks(model, x)[0])


def test_hooks_are_removed_even_when_the_forward_raises():
    class Boom(TinyResNet):
        def forward(self, x):
            super().forward(x)
            raise RuntimeError("boom")

    model = Boom()
    with pytest.raises(RuntimeError, match="boom"):
        otflow.record_tracks(model, torch.randn(4, 5), model.stage1)
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks
    assert model.training


def test_a_block_called_twice_is_an_error():
    class Twice(TinyResNet):
        def forward(self, x):
            h = self.bn(self.stem(x))
            for b in self.stage1:
                h = b(h)
            return self.stage1[0](h)

    model = Twice()
    with pytest.raises(ValueError, match="recorded 2 times"):
        otflow.record_tracks(model, torch.randn(4, 5), model.stage1)
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks


def test_a_block_never_called_is_an_error():
    model = TinyResNet()
    stray = Block(8, 4)
    with pytest.raises(ValueError, match="recorded 0 times"):
        otflow.record_tracks(model, torch.randn(4, 5), [*model.stage1, stray])


def test_a_stage_that_changes_dimension_is_an_error():
    model = TinyResNet()
    with pytest.raises(ValueError, match="changes the feature size"):
        otflow.record_tracks(model, torch.randn(4, 5), [model.stage1[2], model.down])


@pytest.mark.parametrize(
    "blocks, match",
    [
        ("empty", "^blocks: expected at least one block"),
        ("empty stage", r"^blocks\[0\]: is a sequence.*use record_stage_tracks"),
        ("mixed", r"^blocks\[1\]: is a sequence"),
        ("stages", r"^blocks\[0\]: is a sequence.*use record_stage_tracks"),
        ("module", "^blocks: .*got a single module"),
        ("ints", r"^blocks\[0\]: expected a torch module, got int"),
    ],
)
def test_bad_blocks(blocks, match):
    model = TinyResNet()
    blocks = {
        "mixed": [model.stage1[0], [model.stage1[1]]],
        "stages": [model.stage1, model.stage2],
        "module": model.stage1[0],
        "ints": [1, 2],
        "empty": [],
        "empty stage": [[]],
    }[blocks]
    with pytest.raises(ValueError, match=match):
        otflow.record_tracks(model, torch.randn(4, 5), blocks)


@pytest.mark.parametrize(
    "stages, match",
    [
        ("empty", "^stages: expected at least one stage"),
        ("empty stage", r"^stages\[0\]: expected at least one block"),
        ("flat", "^stages: holds modules, not sequences"),
        ("nested", r"^stages\[0\]\[0\]: is a sequence"),
    ],
)
def test_bad_stages(stages, match):
    model = TinyResNet()
    stages = {"flat": list(model.stage1), "nested": [[model.stage1]], "empty": [], "empty stage": [[]]}[stages]
    with pytest.raises(ValueError, match=match):
        otflow.record_stage_tracks(model, torch.randn(4, 5), stages)


def test_return_types_do_not_depend_on_the_input():
    """record_tracks always gives one (N, L+1, D) array; record_stage_tracks always a list, also for K = 1."""
    torch.manual_seed(0)
    model = TinyResNet().eval()
    x = torch.randn(6, 5)
    for blocks in (model.stage1, list(model.stage1), tuple(model.stage1), nn.Sequential(*model.stage1)):
        t = otflow.record_tracks(model, x, blocks)
        assert isinstance(t, np.ndarray) and t.shape == (6, 4, 8)
    one = otflow.record_stage_tracks(model, x, [model.stage1])
    assert isinstance(one, list) and len(one) == 1
    np.testing.assert_array_equal(one[0], otflow.record_tracks(model, x, model.stage1))
    two = otflow.record_stage_tracks(model, x, (model.stage1, model.stage2))
    assert isinstance(two, list) and [t.shape for t in two] == [(6, 4, 8), (6, 3, 4)]


def test_bad_x_and_batch_size():
    model = TinyResNet()
    with pytest.raises(ValueError, match="NaN"):
        otflow.record_tracks(model, torch.full((2, 5), float("nan")), model.stage1)
    with pytest.raises(ValueError, match="non-empty"):
        otflow.record_tracks(model, torch.zeros(0, 5), model.stage1)
    with pytest.raises(ValueError, match="batch_size"):
        otflow.record_tracks(model, torch.zeros(2, 5), model.stage1, batch_size=0)


def test_tracks_feed_the_metrics():
    torch.manual_seed(0)
    model = TinyResNet()
    t = otflow.record_tracks(model, torch.randn(64, 5), model.stage1)
    rep = otflow.track_report(t)
    assert rep.n == 64 and rep.n_blocks == 3 and rep.dim == 8
    assert rep.lss >= 1 and rep.energy_ratio >= 1 - 1e-9 and 0 <= rep.ots <= 1


def test_row_i_of_every_layer_comes_from_input_i():
    """SPEC (4), mass conservation: the empirical law of every layer is the push-forward of the input
    law, each sample keeping its weight 1/N. Row i of every point of the tracks is the image of input
    i, so permuting the inputs permutes every layer's rows alike and no row is lost or duplicated."""
    torch.manual_seed(0)
    model = TinyResNet().eval()
    x = torch.randn(12, 5)
    perm = torch.from_numpy(np.random.default_rng(0).permutation(12))
    for tracks, permuted in zip(
        otflow.record_stage_tracks(model, x, [model.stage1, model.stage2], batch_size=12),
        otflow.record_stage_tracks(model, x[perm], [model.stage1, model.stage2], batch_size=12),
    ):
        assert tracks.shape[0] == 12
        np.testing.assert_allclose(permuted, tracks[perm.numpy()], rtol=1e-5, atol=1e-6)
    single = np.stack([otflow.record_tracks(model, x[i : i + 1], model.stage1)[0] for i in range(12)])
    np.testing.assert_allclose(single, otflow.record_tracks(model, x, model.stage1), rtol=1e-5, atol=1e-6)
