"""The OT geodesic between samples (SPEC (9)-(10))."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import otflow
from tests.strategies import cloud_pairs


@given(cloud_pairs(min_n=1, max_n=30), st.floats(0.0, 1.0))
def test_w2_to_the_interpolant_scales_as_t_squared(case, t):
    """Constant speed: W2²(μ0, μt) = t² W2²(μ0, μ1) on samples."""
    x, y = case.x, case.y
    w2 = otflow.w2_squared(x, y)
    xt = otflow.displacement_interpolation(x, y, t)
    np.testing.assert_allclose(otflow.w2_squared(x, xt), t * t * w2, rtol=1e-8, atol=1e-10 * max(1.0, w2))
    # and the remaining part of the way: W2²(μt, μ1) = (1 − t)² W2²
    np.testing.assert_allclose(otflow.w2_squared(xt, y), (1 - t) ** 2 * w2, rtol=1e-8, atol=1e-10 * max(1.0, w2))


@given(cloud_pairs(min_n=1, max_n=20), st.integers(1, 9))
def test_geodesic_tracks_endpoints_shape_and_straightness(case, steps):
    x, y = case.x, case.y
    sigma = otflow.optimal_assignment(x, y)
    t = otflow.geodesic_tracks(x, y, steps)
    assert t.shape == (len(x), steps + 1, x.shape[1])
    np.testing.assert_array_equal(t[:, 0], x)
    np.testing.assert_allclose(t[:, -1], y[sigma], rtol=1e-12, atol=1e-12)
    for l in range(steps + 1):
        np.testing.assert_allclose(t[:, l], otflow.displacement_interpolation(x, y, l / steps, sigma=sigma), atol=1e-12)
    moving = np.linalg.norm(t[:, -1] - t[:, 0], axis=1) > 1e-9
    if moving.any():
        np.testing.assert_allclose(otflow.line_shape_score(t[moving]), 1.0, atol=1e-9)


def test_bad_arguments():
    x = np.zeros((3, 2))
    with pytest.raises(ValueError, match="t:"):
        otflow.displacement_interpolation(x, x, 1.5)
    with pytest.raises(ValueError, match="n_steps"):
        otflow.geodesic_tracks(x, x, 0)
    with pytest.raises(ValueError, match="permutation"):
        otflow.geodesic_tracks(x, x, 2, sigma=[0, 0, 1])
    with pytest.raises(ValueError, match="square"):
        otflow.displacement_interpolation(x, np.zeros((4, 2)), 0.5)


@given(cloud_pairs(min_n=1, max_n=15), st.integers(1, 8))
def test_geodesic_moves_at_constant_velocity(case, steps):
    """SPEC (9)-(10): x_t = (1−t)x + tT(x) moves at the constant velocity T(x) − x, so every step of
    geodesic_tracks is (T(x) − x)/L and its energy is W2²."""
    x, y = case.x, case.y
    sigma = otflow.optimal_assignment(x, y)
    t = otflow.geodesic_tracks(x, y, steps)
    velocity = (y[sigma] - x) / steps
    scale = max(1.0, float(np.abs(x).max()), float(np.abs(y).max()))
    np.testing.assert_allclose(
        np.diff(t, axis=1),
        np.broadcast_to(velocity[:, None], (len(x), steps, x.shape[1])),
        rtol=1e-9,
        atol=1e-12 * scale,
    )
    w2 = otflow.w2_squared(x, y)
    np.testing.assert_allclose(otflow.transport_energy(t), w2, rtol=1e-9, atol=1e-12 * scale**2)
