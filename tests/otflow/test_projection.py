"""random_projection: one shared Gaussian matrix for pictures (SPEC §5)."""

import numpy as np
import pytest

import otflow


def test_shapes_reproducibility_and_variance():
    t = np.random.default_rng(0).normal(size=(6, 4, 300))
    p1 = otflow.random_projection(t, dim=2, rng=3)
    assert p1.shape == (6, 4, 2)
    np.testing.assert_array_equal(p1, otflow.random_projection(t, dim=2, rng=3))
    P = otflow.random_projection_matrix(300, 2, rng=3)
    np.testing.assert_allclose(p1, t @ P, rtol=1e-12)
    # entries ~ N(0, 1/D): the sample variance of 600 entries is within 4 s.e. (√(2/600)) of 1/D
    big = otflow.random_projection_matrix(300, 2, rng=0)
    np.testing.assert_allclose(big.var() * 300, 1.0, atol=4 * np.sqrt(2 / 600))


def test_linear_projection_keeps_geodesic_tracks_straight_and_evenly_paced():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(20, 50)), rng.normal(size=(20, 50)) + 2
    t = otflow.geodesic_tracks(x, y, 6)
    p = otflow.random_projection(t, rng=0)
    np.testing.assert_allclose(otflow.line_shape_score(p), 1.0, atol=1e-9)
    np.testing.assert_allclose(otflow.segment_proportions(p), 1 / 6, atol=1e-9)


def test_bad_input():
    with pytest.raises(ValueError, match="dim"):
        otflow.random_projection(np.zeros((2, 3)), dim=0)
    with pytest.raises(ValueError, match="NaN"):
        otflow.random_projection(np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="non-empty"):
        otflow.random_projection(np.zeros((0, 3)))
