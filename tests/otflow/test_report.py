"""track_report: the metrics of one stage together."""

import numpy as np
import pytest

import otflow


def test_geodesic_report_is_ideal():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(80, 3)), rng.normal(size=(80, 3)) * 2 + 1
    rep = otflow.track_report(otflow.geodesic_tracks(x, y, 5))
    assert rep.ots == 1.0
    np.testing.assert_allclose([rep.lss, rep.lsr, rep.energy_ratio], 1.0, rtol=1e-9)
    np.testing.assert_allclose(rep.segment_proportions, 0.2, rtol=1e-9)
    np.testing.assert_allclose(rep.w2_squared, otflow.w2_squared(x, y), rtol=1e-12)
    assert rep.ot_cost_gap == 0.0
    d = rep.to_dict()
    assert d["n"] == 80 and len(d["segment_proportions"]) == 5


def test_shuffled_endpoints_make_a_bad_report():
    """Tracks that end at a random permutation of the optimal partners: not an OT map, so OTS is
    about 1/m, the energy ratio is well above 1, and the cost gap is positive."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) * 3
    sigma = otflow.optimal_assignment(x, y)
    bad = otflow.geodesic_tracks(x, y, 4, sigma=sigma[rng.permutation(200)])
    rep = otflow.track_report(bad)
    assert rep.ots < 0.05 and rep.energy_ratio > 1.5 and rep.ot_cost_gap > 0


def test_without_ot():
    t = np.random.default_rng(2).normal(size=(5, 3, 2))
    rep = otflow.track_report(t, with_ot=False)
    assert rep.ots is None and rep.energy_ratio is None
    np.testing.assert_allclose(rep.lss, otflow.line_shape_score(t).mean())


def test_energy_ratio_is_none_not_inf_when_w2_vanishes_but_the_tracks_move():
    # two points that swap places: x^L is a permutation of x^0, so W2² = 0 while the energy is not
    t = np.array([[[0.0], [0.2], [1.0]], [[1.0], [0.7], [0.0]]])
    rep = otflow.track_report(t)
    assert rep.w2_squared == 0.0 and rep.transport_energy > 0 and rep.energy_ratio is None
    assert rep.ots == 0.0


def test_bad_tracks():
    with pytest.raises(ValueError, match="tracks"):
        otflow.track_report(np.zeros((2, 1, 3)))
