"""Closed-form Gaussian OT (SPEC (8)-(9)): oracle (POT), closed forms and statistical checks."""

import numpy as np
import ot
import pytest
from hypothesis import given
from hypothesis import strategies as st

import otflow
from tests.strategies import gaussian_pairs, seeds, spd_matrices


@given(gaussian_pairs())
def test_map_pushes_s0_to_s1_and_is_symmetric_psd(case):
    m0, S0, m1, S1 = case
    T = otflow.gaussian_map(m0, S0, m1, S1)
    A = T.A
    np.testing.assert_allclose(A, A.T, rtol=0, atol=1e-12 * np.abs(A).max())
    assert np.linalg.eigvalsh(A).min() >= -1e-10 * np.abs(A).max()
    np.testing.assert_allclose(A @ S0 @ A, S1, rtol=1e-7, atol=1e-9 * np.abs(S1).max())
    np.testing.assert_allclose(T(m0[None])[0], m1, rtol=1e-9, atol=1e-9 * (1 + np.abs(m1).max()))


@given(gaussian_pairs())
def test_w2_squared_equals_the_cost_of_the_map(case):
    """E‖T(x) − x‖² under N(m0, S0) = ‖m1 − m0‖² + tr((A − I) S0 (A − I)) equals the closed-form W2²."""
    m0, S0, m1, S1 = case
    A = otflow.gaussian_map(m0, S0, m1, S1).A
    eye = np.eye(len(m0))
    cost = np.sum((m1 - m0) ** 2) + np.trace((A - eye) @ S0 @ (A - eye))
    w2 = otflow.gaussian_w2_squared(m0, S0, m1, S1)
    np.testing.assert_allclose(w2, cost, rtol=1e-7, atol=1e-9 * (1 + np.trace(S0) + np.trace(S1)))


@given(gaussian_pairs())
def test_matches_pot_bures_wasserstein(case):
    m0, S0, m1, S1 = case
    w = ot.gaussian.bures_wasserstein_distance(m0, m1, S0, S1)
    scale = 1 + np.trace(S0) + np.trace(S1)
    np.testing.assert_allclose(otflow.gaussian_w2_squared(m0, S0, m1, S1), w**2, rtol=1e-6, atol=1e-8 * scale)
    A_pot, b_pot = ot.gaussian.bures_wasserstein_mapping(m0, m1, S0, S1)
    T = otflow.gaussian_map(m0, S0, m1, S1)
    x = np.random.default_rng(0).normal(size=(7, len(m0)))
    np.testing.assert_allclose(T(x), x @ A_pot + b_pot, rtol=1e-6, atol=1e-8 * scale)


@given(st.floats(-5, 5), st.floats(0.01, 9), st.floats(-5, 5), st.floats(0.01, 9))
def test_one_dimensional_closed_form(m0, v0, m1, v1):
    """1-D: W2² = (m0 − m1)² + (s0 − s1)² and T(x) = m1 + (s1/s0)(x − m0)."""
    w2 = otflow.gaussian_w2_squared([m0], [[v0]], [m1], [[v1]])
    np.testing.assert_allclose(w2, (m0 - m1) ** 2 + (np.sqrt(v0) - np.sqrt(v1)) ** 2, rtol=1e-9, atol=1e-12)
    T = otflow.gaussian_map([m0], [[v0]], [m1], [[v1]])
    np.testing.assert_allclose(T.A, [[np.sqrt(v1 / v0)]], rtol=1e-9)


@given(seeds, st.integers(1, 6))
def test_commuting_covariances_closed_form(seed, d):
    """Diagonal covariances: W2² = ‖m0 − m1‖² + Σ (√a_i − √b_i)²."""
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0.01, 5, d), rng.uniform(0.0, 5, d)
    m0, m1 = rng.normal(size=d), rng.normal(size=d)
    expected = np.sum((m0 - m1) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    np.testing.assert_allclose(
        otflow.gaussian_w2_squared(m0, np.diag(a), m1, np.diag(b)), expected, rtol=1e-9, atol=1e-12
    )


@given(gaussian_pairs(max_d=4), seeds)
def test_sample_w2_of_the_map_is_its_unbiased_mean_cost(case, seed):
    """On samples x ~ N(m0, S0), the pairing x_i → T(x_i) is optimal (T is the gradient of a convex
    function), so w2_squared(x, T(x)) = mean‖T(x) − x‖², an unbiased estimate of the closed form.
    Tolerance: 6 standard errors of that mean, estimated from the same sample."""
    m0, S0, m1, S1 = case
    T = otflow.gaussian_map(m0, S0, m1, S1)
    x = np.random.default_rng(seed).multivariate_normal(m0, S0, size=400)
    c = np.sum((T(x) - x) ** 2, axis=1)
    np.testing.assert_allclose(otflow.w2_squared(x, T(x)), c.mean(), rtol=1e-9)
    se = c.std() / np.sqrt(len(c))
    w2 = otflow.gaussian_w2_squared(m0, S0, m1, S1)
    assert abs(c.mean() - w2) <= 6 * se + 1e-9 * (1 + w2)


@given(st.integers(1, 6).flatmap(lambda d: spd_matrices(d, eps=0.0)))
def test_sqrtm_psd_squares_back(S):
    R = otflow.sqrtm_psd(S)
    np.testing.assert_allclose(R @ R, S, rtol=1e-8, atol=1e-10 * np.abs(S).max())
    np.testing.assert_allclose(R, R.T, atol=1e-12 * np.abs(R).max())


def test_empirical_twins_converge_to_the_closed_form():
    """Moment estimates from n = 200,000 samples: the fitted map and W2² are within a few standard
    errors (relative error of a covariance entry ~ √(2/n) ≈ 0.003) of the closed form."""
    rng = np.random.default_rng(0)
    m0, S0 = np.array([0.0, 1.0]), np.array([[2.0, 0.6], [0.6, 1.0]])
    m1, S1 = np.array([3.0, -1.0]), np.array([[0.5, -0.2], [-0.2, 1.5]])
    x = rng.multivariate_normal(m0, S0, size=200_000)
    y = rng.multivariate_normal(m1, S1, size=200_000)
    np.testing.assert_allclose(
        otflow.empirical_gaussian_w2_squared(x, y), otflow.gaussian_w2_squared(m0, S0, m1, S1), rtol=0.01
    )
    np.testing.assert_allclose(otflow.empirical_gaussian_map(x, y).A, otflow.gaussian_map(m0, S0, m1, S1).A, atol=0.02)


@pytest.mark.slow
def test_closed_form_matches_exact_ot_between_independent_large_samples():
    """Independent samples x ~ μ0, y ~ μ1 (n = 6,000, 2-D): the empirical W2² converges to the closed
    form from above at rate ~ n^{-1/2} log n in 2-D. Stated tolerance: relative 5 % (measured gap
    at this n and seed: see the assertion message)."""
    rng = np.random.default_rng(1)
    m0, S0 = np.array([0.0, 0.0]), np.array([[1.0, 0.3], [0.3, 0.5]])
    m1, S1 = np.array([2.0, 1.0]), np.array([[0.4, 0.0], [0.0, 2.0]])
    x = rng.multivariate_normal(m0, S0, size=6000)
    y = rng.multivariate_normal(m1, S1, size=6000)
    exact = otflow.gaussian_w2_squared(m0, S0, m1, S1)
    emp = otflow.w2_squared(x, y)
    assert abs(emp - exact) / exact < 0.05, (emp, exact)


@pytest.mark.parametrize(
    "args, match",
    [
        (([0.0], [[1.0]], [0.0, 1.0], np.eye(2)), "m1"),
        (([0.0, 0.0], np.eye(3), [0.0, 0.0], np.eye(2)), "S0"),
        (([0.0, 0.0], [[1.0, 2.0], [0.0, 1.0]], [0.0, 0.0], np.eye(2)), "symmetric"),
        (([0.0, 0.0], [[1.0, 0.0], [0.0, -1.0]], [0.0, 0.0], np.eye(2)), "positive semi-definite"),
        (([0.0, np.nan], np.eye(2), [0.0, 0.0], np.eye(2)), "NaN"),
    ],
)
def test_bad_gaussian_input(args, match):
    with pytest.raises(ValueError, match=match):
        otflow.gaussian_w2_squared(*args)


def test_map_needs_a_definite_source():
    with pytest.raises(ValueError, match="positive definite"):
        otflow.gaussian_map([0.0, 0.0], np.diag([1.0, 0.0]), [0.0, 0.0], np.eye(2))
    # the W2² itself is defined for singular covariances
    np.testing.assert_allclose(otflow.gaussian_w2_squared([0.0, 0.0], np.diag([1.0, 0.0]), [0.0, 0.0], np.eye(2)), 1.0)


def test_empirical_map_with_ridge_in_high_dimension():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 50)), rng.normal(size=(20, 50)) * 2
    with pytest.raises(ValueError, match="positive definite"):
        otflow.empirical_gaussian_map(x, y)
    T = otflow.empirical_gaussian_map(x, y, reg=1e-3)
    assert np.isfinite(T(x)).all()
    with pytest.raises(ValueError, match="reg"):
        otflow.empirical_gaussian_map(x, y, reg=-1.0)
