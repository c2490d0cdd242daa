"""Tests for otflow.nulls: the analytic references and the null models they describe."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import otflow
from tests.strategies import seeds, tracks


@given(st.integers(1, 50))
def test_references_are_the_closed_forms(L):
    r = otflow.null_references(L)
    assert r.geodesic == 1.0
    assert r.random_walk == pytest.approx(math.sqrt(L), rel=0, abs=1e-15)
    assert r.independent_layers == L
    assert r.energy_ratio_random_walk == L
    assert r.energy_ratio_independent_layers == L * L
    assert r.as_dict()["n_segments"] == L


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, None, "3"])
def test_references_reject_a_bad_segment_count(bad):
    with pytest.raises(ValueError, match="n_segments"):
        otflow.null_references(bad)


@pytest.mark.parametrize("L", [2, 5, 10])
def test_random_walk_lss_approaches_sqrt_l_from_above(L):
    """Jensen: E[L/‖Σu‖] ≥ L/√E‖Σu‖² = √L at every D; the gap (O(1/D)) closes as D grows, until
    at D = 4096 it is below the sampling error of 400 tracks."""
    ref = otflow.null_references(L).random_walk
    lss = [otflow.line_shape_score(otflow.random_walk_tracks(400, L, d, rng=d)).mean() for d in (4, 64, 4096)]
    assert lss[0] > lss[1] > ref
    assert lss[0] > lss[1] > lss[2]
    assert lss[2] == pytest.approx(ref, rel=0.02)


@pytest.mark.parametrize("L", [2, 5, 10])
def test_independent_layers_lss_and_lsr_approach_l(L):
    ref = otflow.null_references(L).independent_layers
    t = otflow.independent_layer_tracks(400, L, 4096, rng=1)
    assert otflow.line_shape_score(t).mean() == pytest.approx(ref, rel=0.03)
    assert otflow.line_shape_ratio(t).mean() == pytest.approx(ref, rel=0.03)
    # and far from it in low dimension, where the null references do not apply
    low = otflow.line_shape_score(otflow.independent_layer_tracks(400, L, 2, rng=1)).mean()
    assert abs(low - ref) > 0.1 * ref


def test_energy_ratio_references_hold_in_high_dimension():
    L, d = 6, 4096
    r = otflow.null_references(L)
    for t, ref in (
        (otflow.random_walk_tracks(300, L, d, rng=2), r.energy_ratio_random_walk),
        (otflow.independent_layer_tracks(300, L, d, rng=3), r.energy_ratio_independent_layers),
    ):
        disp = np.mean(np.sum((t[:, -1] - t[:, 0]) ** 2, 1))
        assert otflow.transport_energy(t) / disp == pytest.approx(ref, rel=0.03)


@given(tracks(min_l=2), seeds)
def test_shuffled_displacements_keep_each_segments_steps(t, seed):
    s = otflow.shuffled_displacements(t, rng=seed)
    assert s.shape == t.shape
    np.testing.assert_array_equal(s[:, 0], t[:, 0])
    a, b = np.diff(t, axis=1), np.diff(s, axis=1)
    for l in range(a.shape[1]):  # the same multiset of step vectors per segment
        key = lambda v: np.lexsort(v.T[::-1])  # noqa: E731
        np.testing.assert_allclose(b[key(b[:, l]), l], a[key(a[:, l]), l], rtol=1e-9, atol=1e-9)
    # hence the same transport energy
    assert otflow.transport_energy(s) == pytest.approx(otflow.transport_energy(t), rel=1e-9, abs=1e-12)


def test_shuffled_displacements_break_straight_tracks():
    """Straight tracks in many directions become random walks: LSS rises from 1 towards √L."""
    rng = np.random.default_rng(0)
    n, L, d = 500, 8, 512
    x0 = rng.normal(size=(n, d))
    v = rng.normal(size=(n, d)) / math.sqrt(d)
    t = x0[:, None] + np.linspace(0, 1, L + 1)[None, :, None] * v[:, None]
    assert otflow.line_shape_score(t).mean() == pytest.approx(1.0, abs=1e-9)
    s = otflow.shuffled_displacements(t, rng=1)
    assert otflow.line_shape_score(s).mean() == pytest.approx(math.sqrt(L), rel=0.1)


def test_shuffled_displacements_are_reproducible_and_validate():
    t = otflow.random_walk_tracks(20, 3, 4, rng=0)
    np.testing.assert_array_equal(otflow.shuffled_displacements(t, 5), otflow.shuffled_displacements(t, 5))
    with pytest.raises(ValueError, match="tracks"):
        otflow.shuffled_displacements(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="dim"):
        otflow.random_walk_tracks(3, 2, 0)
