"""Gaussian and mixture distributions: oracle (scipy.stats), moments, reproducibility, bad input."""

import numpy as np
import pytest
from hypothesis import given
from scipy.stats import multivariate_normal

import otflow
from tests.strategies import gaussian_pairs, seeds


@given(gaussian_pairs(max_d=4))
def test_gaussian_log_prob_matches_scipy(case):
    m0, S0, _, _ = case
    g = otflow.Gaussian(m0, S0)
    x = np.random.default_rng(0).normal(size=(6, len(m0))) * 2 + m0
    np.testing.assert_allclose(g.log_prob(x), multivariate_normal(m0, S0).logpdf(x).reshape(-1), rtol=1e-9)


def test_gaussian_sample_moments():
    """n = 100,000: sample mean within 5 s.e. (√(S_ii/n)), covariance entries within 0.03."""
    m, S = np.array([1.0, -2.0]), np.array([[2.0, 0.5], [0.5, 1.0]])
    x = otflow.Gaussian(m, S).sample(100_000, rng=0)
    assert x.shape == (100_000, 2)
    np.testing.assert_allclose(x.mean(0), m, atol=5 * np.sqrt(2.0 / 100_000))
    np.testing.assert_allclose(np.cov(x.T), S, atol=0.03)


def test_mixture_log_prob_matches_weighted_sum_and_moments():
    gm = otflow.GaussianMixture([0.2, 0.8], [[0.0, 0.0], [3.0, 1.0]], [np.eye(2), np.diag([0.5, 2.0])])
    x = np.random.default_rng(1).normal(size=(5, 2))
    dens = 0.2 * multivariate_normal([0, 0], np.eye(2)).pdf(x) + 0.8 * multivariate_normal(
        [3, 1], np.diag([0.5, 2.0])
    ).pdf(x)
    np.testing.assert_allclose(np.exp(gm.log_prob(x)), dens, rtol=1e-10)
    s, labels = gm.sample_labeled(200_000, rng=2)
    np.testing.assert_allclose(np.mean(labels == 1), 0.8, atol=5 * np.sqrt(0.16 / 200_000))
    np.testing.assert_allclose(s.mean(0), gm.mean(), atol=0.02)
    np.testing.assert_allclose(np.cov(s.T), gm.cov(), atol=0.05)


@given(seeds)
def test_sampling_is_reproducible_from_a_seed(seed):
    gm = otflow.GaussianMixture.ring(8)
    np.testing.assert_array_equal(gm.sample(50, rng=seed), gm.sample(50, rng=seed))
    g1, g2 = np.random.default_rng(seed), np.random.default_rng(seed)
    np.testing.assert_array_equal(gm.sample(50, rng=g1), gm.sample(50, rng=g2))


def test_presets():
    assert otflow.GaussianMixture.ring(8).means.shape == (8, 2)
    np.testing.assert_allclose(np.linalg.norm(otflow.GaussianMixture.ring(5, radius=3.0).means, axis=1), 3.0)
    grid = otflow.GaussianMixture.grid(3, spacing=2.0)
    assert grid.n_components == 9
    np.testing.assert_allclose(grid.mean(), [0.0, 0.0], atol=1e-12)
    assert otflow.GaussianMixture.two_blobs().dim == 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(weights=[0.5, 0.6], means=[[0.0], [1.0]], covs=[[[1.0]], [[1.0]]]), "sum"),
        (dict(weights=[1.0], means=[[0.0], [1.0]], covs=[[[1.0]], [[1.0]]]), "weights"),
        (dict(weights=[0.5, 0.5], means=[[0.0], [1.0]], covs=[[[1.0]]]), "covs"),
        (dict(weights=[0.5, 0.5], means=[[0.0], [1.0]], covs=[[[1.0]], [[-1.0]]]), "positive semi-definite"),
    ],
)
def test_bad_mixture(kwargs, match):
    with pytest.raises(ValueError, match=match):
        otflow.GaussianMixture(**kwargs)


def test_bad_sample_arguments():
    g = otflow.Gaussian([0.0], [[1.0]])
    with pytest.raises(ValueError, match="n:"):
        g.sample(0)
    with pytest.raises(ValueError, match="rng"):
        g.sample(3, rng="seed")
    with pytest.raises(ValueError, match="dimension"):
        g.log_prob(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="positive definite"):
        otflow.Gaussian([0.0, 0.0], np.diag([1.0, 0.0])).log_prob(np.zeros((1, 2)))
