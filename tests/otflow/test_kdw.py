"""The weighted kd-tree behind the low-dimensional proposals: exact k smallest ‖q − p_j‖² − w_j."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import otflow
from otflow._kdw import LEAF, WeightedTree, build


def _brute(p, q, w, k):
    keys = ((q[:, None, :] - p[None]) ** 2).sum(-1) - w[None]
    return np.sort(keys, axis=1)[:, :k]


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(1, 300),
    d=st.integers(1, 8),
    k=st.integers(1, 20),
    spread=st.sampled_from([0.0, 0.1, 10.0, 1e3]),
    grid=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_knn_equals_brute_force(m, d, k, spread, grid, seed):
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(m, d))
    if grid:  # duplicates and ties
        p = np.round(p)
    q = rng.normal(size=(17, d))
    w = spread * rng.normal(size=m)
    idx, costs, keys = WeightedTree(p).knn(q, w, k)
    kk = min(k, m)
    assert idx.shape == (17, kk)
    np.testing.assert_allclose(keys, _brute(p, q, w, kk), rtol=0, atol=1e-9 * (1 + spread))
    d2 = ((q[:, None, :] - p[idx]) ** 2).sum(-1)
    np.testing.assert_allclose(costs, d2, rtol=1e-14, atol=0)  # coordinate sums (numpy sums pairwise)
    np.testing.assert_array_equal(keys, costs - w[idx])
    assert all(len(set(r)) == kk for r in idx)  # k different points


def test_tree_nodes_partition_the_points():
    p = np.random.default_rng(0).normal(size=(1000, 3))
    perm, lo, hi, left, right, bmin, bmax = build(p, LEAF)
    assert sorted(perm) == list(range(1000))
    for t in range(len(lo)):
        pts = p[perm[lo[t] : hi[t]]]
        assert (pts >= bmin[t]).all() and (pts <= bmax[t]).all()
        if left[t] < 0:
            assert hi[t] - lo[t] <= LEAF
        else:
            assert (lo[left[t]], hi[right[t]], hi[left[t]]) == (lo[t], hi[t], lo[right[t]])


@pytest.mark.parametrize("case", ["mixture", "near-identity"])
def test_lowdim_solve_uses_kd_proposals_and_certifies_every_row(case, monkeypatch):
    """From KD_MIN_N points on (lowered here so the test stays small) the proposals come from kd-trees."""
    monkeypatch.setattr(otflow.solver, "KD_MIN_N", 1000)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1200, 2))
    y = x + 0.1 * rng.normal(size=x.shape) if case == "near-identity" else rng.normal(size=x.shape)[::-1] + 3.0
    trace = []
    r = otflow.solve_assignment(x, y, trace=trace)
    top = [t for t in trace if t.get("n") == 1200]
    assert any(t["step"] == "kd" for t in top)
    first_exact = next(t for t in top if t["step"] == "round")
    assert first_exact["checked"] == 1200  # the certificate is the exact pass over every row
    assert r.max_violation <= r.tol
    from scipy.optimize import linear_sum_assignment

    c = otflow.pairwise_sq_dists(x, y)
    a, b = linear_sum_assignment(c)
    assert abs(r.cost - c[a, b].mean()) <= 1e-9 * c[a, b].mean()


def test_small_lowdim_problems_use_exact_passes_and_no_tree(monkeypatch):
    monkeypatch.setattr(otflow.solver, "KD_MIN_N", 10**9)
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(800, 2)), rng.normal(size=(800, 2)) + 2.0
    trace = []
    r = otflow.solve_assignment(x, y, trace=trace)
    assert not any(t["step"] == "kd" for t in trace) and r.max_violation <= r.tol


def test_morton_order_is_a_permutation_that_keeps_neighbours_close():
    from otflow.solver import _morton_order

    g = np.stack(np.meshgrid(np.arange(32.0), np.arange(32.0)), -1).reshape(-1, 2)
    order = _morton_order(g[np.random.default_rng(0).permutation(len(g))])
    assert sorted(order) == list(range(len(g)))
    pts = g[np.random.default_rng(0).permutation(len(g))][order]
    steps = np.abs(np.diff(pts, axis=0)).sum(1)
    assert np.median(steps) == 1.0  # most consecutive points are grid neighbours
