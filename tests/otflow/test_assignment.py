"""Oracle and theorem tests for otflow.assignment (SPEC (24)-(25), (31)-(32))."""

import numpy as np
import ot
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

import otflow
from tests.strategies import cloud_pairs, planted_assignments, seeds


def scipy_optimum(x, y) -> float:
    c = cdist(x, y, "sqeuclidean")
    r, col = linear_sum_assignment(c)
    return c[r, col].mean()


@given(cloud_pairs())
def test_assignment_cost_equals_scipy_and_pot(case):
    x, y = case.x, case.y
    sigma = otflow.optimal_assignment(x, y)
    np.testing.assert_array_equal(np.sort(sigma), np.arange(len(x)))
    cost = np.sum((x - y[sigma]) ** 2) / len(x)
    scale = max(1.0, np.abs(cdist(x, y, "sqeuclidean")).max())
    np.testing.assert_allclose(cost, scipy_optimum(x, y), rtol=1e-9, atol=1e-12 * scale)
    n = len(x)
    pot = ot.emd2(np.full(n, 1 / n), np.full(n, 1 / n), cdist(x, y, "sqeuclidean"), numItermax=10**7)
    np.testing.assert_allclose(cost, pot, rtol=1e-9, atol=1e-12 * scale)
    np.testing.assert_allclose(otflow.w2_squared(x, y), cost, rtol=1e-12, atol=1e-14 * scale)


@given(cloud_pairs())
def test_optimal_pairing_is_cyclically_monotone_for_every_pair(case):
    """SPEC (24): ‖x_i − y_σi‖² + ‖x_j − y_σj‖² ≤ ‖x_i − y_σj‖² + ‖x_j − y_σi‖² for all i, j."""
    x, y = case.x, case.y
    yp = y[otflow.optimal_assignment(x, y)]
    c = cdist(x, yp, "sqeuclidean")
    diag = np.diag(c)
    lhs = diag[:, None] + diag[None, :]
    rhs = c + c.T
    tol = 1e-9 * max(1.0, c.max())
    assert (lhs <= rhs + tol).all(), f"max violation {np.max(lhs - rhs)}"


@given(planted_assignments())
def test_planted_optimal_permutation_is_recovered(case):
    np.testing.assert_array_equal(otflow.optimal_assignment(case.x, case.y), case.sigma)


@given(st.integers(1, 60), seeds)
def test_one_dimensional_optimum_is_the_sorted_matching(n, seed):
    """Closed form in 1-D: the monotone rearrangement is optimal, W2² = mean (x_(i) − y_(i))²."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, 1)), rng.exponential(size=(n, 1)) * 3
    expected = np.mean((np.sort(x[:, 0]) - np.sort(y[:, 0])) ** 2)
    np.testing.assert_allclose(otflow.w2_squared(x, y), expected, rtol=1e-10, atol=1e-13)


@given(cloud_pairs(min_n=2, max_n=25), seeds)
def test_w2_squared_symmetry_and_translation(case, seed):
    """W2²(x, y) = W2²(y, x); W2²(x, y + c) = W2²(x, y) + ‖c‖² + 2⟨c, ȳ − x̄⟩."""
    x, y = case.x, case.y
    c = np.random.default_rng(seed).normal(size=x.shape[1]) * 3
    w = otflow.w2_squared(x, y)
    scale = max(1.0, w, float(np.sum(c**2)))
    np.testing.assert_allclose(otflow.w2_squared(y, x), w, rtol=1e-9, atol=1e-10 * scale)
    expected = w + c @ c + 2 * c @ (y.mean(0) - x.mean(0))
    np.testing.assert_allclose(otflow.w2_squared(x, y + c), expected, rtol=1e-9, atol=1e-9 * scale)


@given(seeds, st.integers(1, 12), st.integers(1, 12), st.integers(1, 4))
def test_weighted_w2_squared_matches_pot(seed, n, m, d):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, d)), rng.normal(size=(m, d)) + 1
    a, b = rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(m))
    expected = ot.emd2(a, b, cdist(x, y, "sqeuclidean"))
    np.testing.assert_allclose(otflow.w2_squared(x, y, a, b, method="emd"), expected, rtol=1e-9, atol=1e-12)


@given(seeds, st.integers(1, 30), st.integers(1, 5), st.sampled_from([1e-3, 1.0, 1e3]))
def test_both_w2_methods_agree_with_each_other_and_with_pot(seed, n, d, scale):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, d)) * scale, (rng.normal(size=(n, d)) + 0.5) * scale
    expected = ot.emd2(np.full(n, 1 / n), np.full(n, 1 / n), cdist(x, y, "sqeuclidean"))
    by_assignment = otflow.w2_squared(x, y)
    by_emd = otflow.w2_squared(x, y, method="emd")
    np.testing.assert_allclose(by_assignment, expected, rtol=1e-9, atol=1e-12 * scale**2)
    np.testing.assert_allclose(by_emd, expected, rtol=1e-9, atol=1e-12 * scale**2)
    u = np.full(n, 1 / n)  # explicit uniform weights are the default of "emd"
    np.testing.assert_allclose(otflow.w2_squared(x, y, u, u, method="emd"), by_emd, rtol=1e-12, atol=0)


def test_w2_method_is_explicit_and_weights_need_emd():
    x, y = np.zeros((2, 1)), np.ones((2, 1))
    u = np.full(2, 0.5)
    with pytest.raises(ValueError, match="^a: weights need method='emd'"):
        otflow.w2_squared(x, y, u)
    with pytest.raises(ValueError, match="^b: weights need method='emd'"):
        otflow.w2_squared(x, y, None, u)
    with pytest.raises(ValueError, match="as many points on each side.*method='emd'"):
        otflow.w2_squared(x, np.ones((3, 1)))
    with pytest.raises(ValueError, match="^method: expected one of"):
        otflow.w2_squared(x, y, method="sinkhorn")
    np.testing.assert_allclose(otflow.w2_squared(x, np.ones((3, 1)), method="emd"), 1.0, rtol=1e-12)


def test_assignment_cost_of_a_pairing():
    x = np.array([[0.0], [1.0]])
    y = np.array([[1.0], [0.0]])
    assert otflow.assignment_cost(x, y) == 1.0
    assert otflow.assignment_cost(x, y, [1, 0]) == 0.0


def test_torch_tensors_are_accepted():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
    np.testing.assert_array_equal(
        otflow.optimal_assignment(torch.from_numpy(x).float(), torch.from_numpy(y).float()),
        otflow.optimal_assignment(x.astype(np.float32), y.astype(np.float32)),
    )


@pytest.mark.parametrize(
    "x, y, match",
    [
        (np.zeros((3, 2)), np.zeros((4, 2)), "square"),
        (np.zeros((3, 2)), np.zeros((3, 3)), "shape"),
        (np.zeros((0, 2)), np.zeros((0, 2)), "non-empty"),
        (np.zeros(3), np.zeros(3), r"\(n, D\)"),
        (np.array([[0.0, np.nan]]), np.zeros((1, 2)), "NaN"),
        (np.array([[0.0, 1.0]]), np.array([[np.inf, 1.0]]), "inf"),
        ([["a", "b"]], [["c", "d"]], "numeric"),
    ],
)
def test_bad_input_raises_value_error(x, y, match):
    with pytest.raises(ValueError, match=match):
        otflow.optimal_assignment(x, y)


@pytest.mark.parametrize(
    "a, b, match",
    [
        ([0.5, 0.6], None, "sum to 1"),
        ([1.5, -0.5], None, "non-negative"),
        ([1.0], None, r"shape \(2,\)"),
        ([np.nan, 1.0], None, "NaN"),
    ],
)
def test_bad_weights_raise(a, b, match):
    with pytest.raises(ValueError, match=match):
        otflow.w2_squared(np.zeros((2, 1)), np.ones((3, 1)), a, b, method="emd")


def test_dimension_mismatch_in_w2_squared():
    with pytest.raises(ValueError, match="dimension"):
        otflow.w2_squared(np.zeros((2, 1)), np.ones((3, 2)), method="emd")


@pytest.mark.slow
def test_large_planted_problem_in_64d():
    """m = 10,000 points in D = 64: the solver returns the planted optimum (the issue's scale)."""
    rng = np.random.default_rng(0)
    m, d = 10_000, 64
    x = rng.normal(size=(m, d))
    B = rng.normal(size=(d, d)) / np.sqrt(d)
    A = B @ B.T + 0.5 * np.eye(d)
    perm = rng.permutation(m)
    y = (x @ A + 1.0)[perm]
    sigma = otflow.optimal_assignment(x, y)
    expected = np.empty(m, dtype=np.int64)
    expected[perm] = np.arange(m)
    np.testing.assert_array_equal(sigma, expected)
    r = otflow.ot_score(x, y[sigma])
    assert r.score == 1.0


@given(seeds, st.integers(1, 6), st.floats(0.1, 10.0))
def test_w2_squared_is_unrooted_and_the_cost_is_not_halved(seed, d, length):
    """SPEC (8), §8.1: translating a cloud by c costs exactly ‖c‖² (not ‖c‖, not ‖c‖²/2), for the
    empirical and the Gaussian W2² alike."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(7, d))
    c = rng.normal(size=d)
    c *= length / np.linalg.norm(c)
    np.testing.assert_allclose(otflow.w2_squared(x, x + c), length**2, rtol=1e-9)
    np.testing.assert_allclose(otflow.w2_squared(x, x + c, method="emd"), length**2, rtol=1e-9)
    np.testing.assert_allclose(otflow.gaussian_w2_squared(np.zeros(d), np.eye(d), c, np.eye(d)), length**2, rtol=1e-9)
