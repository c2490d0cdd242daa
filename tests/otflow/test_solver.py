"""Tests of otflow/solver.py: the certified exact assignment solver.

Oracle: scipy's ``linear_sum_assignment`` on the dense cost matrix. Every result's certificate is
re-checked here on the dense matrix, independently of the solver's own blocked check.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

import otflow
from otflow.assignment import _sq_dists
from otflow.solver import AssignmentResult, solve_assignment
from tests.strategies import cloud_pairs, planted_assignments, seeds

RTOL = 1e-9  # the bar: the optimal mean cost to 1e-9 relative


def _scipy_cost(x, y) -> float:
    c = _sq_dists(x, y)
    r, k = linear_sum_assignment(c)
    d = x[r] - y[k]
    return float(np.einsum("ij,ij->", d, d) / len(x))


def _check_certificate(x, y, res: AssignmentResult) -> None:
    """Independent dense re-check: reduced costs >= -tol everywhere, = 0 (±tol) on the chosen pairs."""
    n = len(x)
    assert isinstance(res.sigma, np.ndarray) and res.sigma.dtype == np.int64 and res.sigma.shape == (n,)
    np.testing.assert_array_equal(np.sort(res.sigma), np.arange(n))
    red = _sq_dists(x, y) - res.u[:, None] - res.v[None, :]
    # the solver's tol, plus the rounding of this independent evaluation of the costs
    slack = res.tol + 1e-13 * (1.0 + np.abs(red).max())
    assert red.min() >= -slack, (red.min(), res.tol)
    np.testing.assert_allclose(red[np.arange(n), res.sigma], 0.0, rtol=0, atol=slack)
    assert 0.0 <= res.max_violation <= res.tol and 0.0 <= res.max_gap <= res.tol


def _check_optimal(x, y, res: AssignmentResult) -> None:
    _check_certificate(x, y, res)
    ref = _scipy_cost(x, y)
    np.testing.assert_allclose(res.cost, ref, rtol=RTOL, atol=1e-12 * (1.0 + np.abs(x).max() ** 2))
    d = x - y[res.sigma]
    np.testing.assert_allclose(res.cost, np.einsum("ij,ij->", d, d) / len(x), rtol=1e-12, atol=0)


# ---------------------------------------------------------------------------------------------
# random problems against the scipy oracle, on every strategy


@given(cloud_pairs(min_n=1, max_n=300, max_d=6))
def test_auto_matches_scipy_and_is_certified(case):
    res = solve_assignment(case.x, case.y)
    _check_optimal(case.x, case.y, res)
    assert res.method in ("dense", "lowdim", "blas")


@given(cloud_pairs(min_n=2, max_n=200, max_d=6), st.sampled_from(["lowdim", "blas"]))
def test_sparse_strategies_match_scipy_on_small_problems(case, method):
    x, y = case.x, case.y
    if method == "lowdim" and x.shape[1] > 8:
        return
    res = solve_assignment(x, y, method=method, k=3)
    assert res.method == method
    _check_optimal(x, y, res)


@settings(max_examples=15)
@given(seeds, st.integers(257, 500), st.sampled_from([16, 64, 200]))
def test_high_dimensional_problems_match_scipy(seed, n, d):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    a = rng.normal(size=(d, d)) / np.sqrt(d)
    y = 0.5 * x @ a + 1.0 + 0.1 * rng.normal(size=(n, d))
    res = solve_assignment(x, y)
    assert res.method == "blas"
    _check_optimal(x, y, res)


@given(seeds, st.integers(257, 700))
def test_near_ties_and_duplicates_in_2d(seed, n):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 12, size=(n // 2 + 1, 2)).astype(float)
    x = base[rng.integers(0, len(base), n)] + 1e-9 * rng.normal(size=(n, 2))
    y = base[rng.integers(0, len(base), n)] + rng.integers(0, 2, size=(n, 2))
    res = solve_assignment(x, y)
    _check_optimal(x, y, res)


# ---------------------------------------------------------------------------------------------
# known answers


@given(planted_assignments(min_n=2, max_n=400, max_d=5))
def test_planted_optimal_permutation_is_recovered(case):
    res = solve_assignment(case.x, case.y)
    np.testing.assert_array_equal(res.sigma, case.sigma)
    _check_certificate(case.x, case.y, res)


@settings(max_examples=15)
@given(seeds, st.integers(257, 600))
def test_planted_permutation_with_sparse_strategies(seed, n):
    rng = np.random.default_rng(seed)
    d = int(rng.integers(2, 12))
    x = rng.normal(size=(n, d))
    b = rng.normal(size=(d, d))
    tx = x @ (b @ b.T + 0.5 * np.eye(d)) + 3.0
    perm = rng.permutation(n)
    sigma = np.empty(n, np.int64)
    sigma[perm] = np.arange(n)
    res = solve_assignment(x, tx[perm])
    np.testing.assert_array_equal(res.sigma, sigma)


# ---------------------------------------------------------------------------------------------
# adversarial: nearest neighbours are not the optimal partners


@settings(max_examples=12)
@given(seeds, st.integers(257, 600), st.sampled_from([1e2, 1e4]))
def test_large_translation_is_solved_exactly(seed, n, shift):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    y = rng.normal(size=(n, 2)) * [2.0, 0.5] + shift * np.array([1.0, -0.5])
    res = solve_assignment(x, y)
    _check_optimal(x, y, res)


@settings(max_examples=15)
@given(seeds, st.integers(257, 600), st.sampled_from([2, 3, 32]))
def test_far_moving_mixture_is_solved_exactly(seed, n, d):
    rng = np.random.default_rng(seed)
    c0 = rng.normal(size=(3, d)) * 6
    c1 = c0[[1, 2, 0]] + rng.normal(size=(3, d))  # every cluster moves onto another one's place
    w = rng.dirichlet(np.ones(3) * 2)
    x = c0[rng.choice(3, n, p=w)] + rng.normal(size=(n, d))
    y = c1[rng.choice(3, n, p=w[[2, 0, 1]])] + 0.5 * rng.normal(size=(n, d))
    res = solve_assignment(x, y)
    _check_optimal(x, y, res)


def test_neighbours_are_decoys():
    """Each x_i has an exact copy among the y, but the optimum sends the other points elsewhere."""
    rng = np.random.default_rng(0)
    n = 600
    x = rng.uniform(0, 1, size=(n, 2))
    y = np.concatenate([x[: n // 2], x[: n // 2] + [5.0, 0.0]])
    res = solve_assignment(x, y, k=2)
    _check_optimal(x, y, res)
    assert res.rounds >= 1


# ---------------------------------------------------------------------------------------------
# engines, integration and errors


@pytest.mark.parametrize("d", [2, 40])
def test_torch_engine_on_cpu_matches_numpy(d):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(700, d))
    y = x @ rng.normal(size=(d, d)) / np.sqrt(d) + 0.3
    ref = solve_assignment(x, y, engine="numpy")
    res = solve_assignment(x, y, engine="torch", device="cpu")
    assert res.engine == "torch:cpu" and ref.engine in ("numba", "numpy")
    np.testing.assert_allclose(res.cost, ref.cost, rtol=RTOL, atol=0)
    _check_optimal(x, y, res)


def test_optimal_assignment_ot_score_and_w2_delegate_to_the_solver():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(500, 3))
    y = x + 0.2 * rng.normal(size=(500, 3))
    res = otflow.solve_assignment(x, y)
    sigma = otflow.optimal_assignment(x, y)
    assert isinstance(sigma, np.ndarray)
    np.testing.assert_array_equal(sigma, res.sigma)
    np.testing.assert_allclose(otflow.w2_squared(x, y), res.cost, rtol=1e-12, atol=0)
    np.testing.assert_allclose(otflow.ot_score(x, y).cost_optimal, res.cost, rtol=1e-12, atol=0)


def test_result_is_frozen_and_exported():
    res = otflow.solve_assignment([[0.0, 1.0]], [[2.0, 3.0]])
    assert "solve_assignment" in otflow.__all__ and "AssignmentResult" in otflow.__all__
    np.testing.assert_array_equal(res.sigma, [0])
    np.testing.assert_allclose(res.cost, 8.0, rtol=0, atol=1e-12)
    with pytest.raises(AttributeError):
        res.cost = 0.0


@pytest.mark.parametrize(
    ("x", "y", "kwargs", "match"),
    [
        (np.zeros((3, 2)), np.zeros((4, 2)), {}, "as many points"),
        (np.zeros((3, 2)), np.zeros((3, 3)), {}, "same dimension"),
        (np.zeros((0, 2)), np.zeros((0, 2)), {}, "non-empty"),
        (np.array([[np.nan, 0.0]]), np.zeros((1, 2)), {}, "NaN"),
        (np.zeros(3), np.zeros(3), {}, "shape"),
        (np.zeros((3, 2)), np.zeros((3, 2)), {"method": "magic"}, "method"),
        (np.zeros((3, 2)), np.zeros((3, 2)), {"engine": "gpu"}, "engine"),
        (np.zeros((3, 2)), np.zeros((3, 2)), {"tol": -1.0}, "tol"),
        (np.zeros((3, 2)), np.zeros((3, 2)), {"k": 0}, "k"),
        (np.zeros((3, 2)), np.zeros((3, 2)), {"block": 2.5}, "block"),
        (np.zeros((300, 12)), np.zeros((300, 12)), {"method": "lowdim"}, "lowdim"),
    ],
)
def test_bad_input_raises_value_error(x, y, kwargs, match):
    with pytest.raises(ValueError, match=match):
        solve_assignment(x, y, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mixture", "near_identity", "d64"])
def test_medium_problems_match_pot(kind):
    import ot

    rng = np.random.default_rng(3)
    n = 3000
    if kind == "mixture":
        c0, c1 = np.array([[-4, 0], [0, 4], [4, 0]]), np.array([[0, -4], [4, 4], [-4, 4]])
        x = c0[rng.integers(0, 3, n)] + rng.normal(size=(n, 2))
        y = c1[rng.integers(0, 3, n)] + 0.7 * rng.normal(size=(n, 2))
    elif kind == "near_identity":
        x = rng.normal(size=(n, 2))
        y = x + 0.1 * np.tanh(x[:, ::-1]) + 0.05 * rng.normal(size=(n, 2))
    else:
        x = rng.normal(size=(n, 64))
        y = 0.5 * x @ (rng.normal(size=(64, 64)) / 8) + 1
    res = solve_assignment(x, y)
    ref = ot.emd2(np.full(n, 1 / n), np.full(n, 1 / n), _sq_dists(x, y), numItermax=10**8)
    np.testing.assert_allclose(res.cost, ref, rtol=RTOL, atol=0)
    assert res.max_violation <= res.tol


def test_torch_thread_count_is_left_as_it_was():
    # numba's OpenMP pool and torch share libgomp; the solver must not change torch's setting
    torch = pytest.importorskip("torch")
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        w = torch.randn(8, 2, requires_grad=True)
        (w**2).sum().backward()
        rng = np.random.default_rng(0)
        solve_assignment(rng.normal(size=(2000, 2)), rng.normal(size=(2000, 2)) + 1.0)
        solve_assignment(rng.normal(size=(600, 32)), rng.normal(size=(600, 32)))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(old)


def test_trace_records_the_solver_steps_into_the_given_list():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(600, 2)), rng.normal(size=(600, 2)) + 0.3
    trace = []
    res = otflow.solve_assignment(x, y, trace=trace)
    assert {"sap", "first", "round"} <= {t["step"] for t in trace}
    top = [t for t in trace if t["n"] == 600]
    rounds = [t for t in top if t["step"] == "round"]
    assert rounds and rounds[-1]["checked"] == 0  # the last round finds nothing left to check
    assert len(rounds) >= res.rounds + 1  # one record per certification pass, one more than re-solves
    assert all(t["sap_status"] >= 0 for t in trace if t["step"] == "sap")
    # tracing changes nothing, and without a trace nothing is kept between calls
    np.testing.assert_array_equal(otflow.solve_assignment(x, y).sigma, res.sigma)
    with pytest.raises(ValueError, match="trace: expected a list"):
        otflow.solve_assignment(x[:3], y[:3], trace=print)


# ----- the one-pass nearest-neighbour certificate (otflow._nnpath) ------------------------------------


@pytest.mark.parametrize("dim", [16, 64, 512])
def test_near_identity_in_high_dimension_takes_the_one_pass_path_and_is_exact(dim):
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(dim)
    n = 600
    x = rng.normal(size=(n, dim))
    y = x + 0.1 * np.tanh(x @ rng.normal(size=(dim, dim)) / np.sqrt(dim)) + 0.05 * rng.normal(size=(n, dim))
    perm = rng.permutation(n)
    y = y[perm]
    res = otflow.solve_assignment(x, y)
    assert res.method == "nn" and res.rounds == 0
    c = cdist(x, y, "sqeuclidean")
    _, cols = linear_sum_assignment(c)
    np.testing.assert_array_equal(res.sigma, cols)
    np.testing.assert_allclose(res.cost, c[np.arange(n), cols].mean(), rtol=1e-12)
    # the certificate itself: v = 0 and u the row minima, so every reduced cost is >= 0
    reduced = c - res.u[:, None] - res.v[None, :]
    assert reduced.min() >= -res.tol and np.abs(reduced[np.arange(n), res.sigma]).max() <= res.tol


def test_when_nearest_neighbours_collide_the_full_solver_runs():
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(500, 32)), rng.normal(size=(500, 32))
    res = otflow.solve_assignment(x, y)
    assert res.method == "blas"
    c = cdist(x, y, "sqeuclidean")
    _, cols = linear_sum_assignment(c)
    np.testing.assert_allclose(res.cost, c[np.arange(500), cols].mean(), rtol=1e-12)
    assert otflow.solve_assignment(x, x[::-1].copy()).method == "nn"  # a permutation of the same points


def test_a_row_the_float32_pass_cannot_decide_is_decided_in_float64():
    """Two columns whose distances to the row differ by ~1e-14 relative: below float32's bound, so
    the row is rechecked from coordinate differences and the truly nearer column wins."""
    from otflow import _nnpath

    rng = np.random.default_rng(2)
    dim = 256
    ya = rng.normal(size=dim)
    yb = ya + 1e-3 * rng.normal(size=dim)
    others = rng.normal(size=(20, dim)) * 3
    offset = rng.normal(size=dim)
    offset -= offset @ (yb - ya) / ((yb - ya) @ (yb - ya)) * (yb - ya)  # orthogonal to yb − ya
    for t, nearer in ((0.5 + 1e-6, 1), (0.5 - 1e-6, 0)):
        x0 = ya + t * (yb - ya) + offset
        y = np.vstack([ya, yb, others])
        exact = ((x0 - y) ** 2).sum(1)
        assert exact.argmin() == nearer and abs(exact[0] - exact[1]) < 1e-9 * exact[0]
        c = _nnpath._Clouds(x0[None, :], y)
        assert _nnpath._block_minima(c, np.arange(1), _nnpath._dot_bound(dim))[0] == nearer
        # bfloat16 cannot tell them apart either: the row goes down to float32, then float64
        lowp = _nnpath._Bf16Pass(c)
        _, undecided, _ = _nnpath._decide(lowp.h(c, 0, 1), c.errors(slice(0, 1), lowp.coef, lowp.absolute))
        assert undecided.tolist() == [0]
        assert lowp.block_minima(c, 0, 1)[0] == nearer


@settings(max_examples=40, deadline=None)
@given(seed=seeds, dim=st.sampled_from([1, 7, 64, 1000, 5000]), log_scale=st.floats(-12, 12), skew=st.floats(0, 1))
def test_the_bfloat16_dot_product_bound_holds(seed, dim, log_scale, skew):
    """torch's bfloat16 GEMM (as the one-pass path calls it) stays within ``_dot_bound`` (bfloat16 inputs
    and result) plus ``_flush_bound`` of the float64 ``−2 x·y``, over the magnitudes the solver sends
    to the one-pass path (largest coordinate from 1e-12 to 1e12) and heavy-tailed coordinates (entries
    spread over many orders of magnitude, down to subnormal products, with ``skew``)."""
    import torch

    from otflow import _nnpath

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(8, dim)) * np.exp(skew * 6 * rng.normal(size=(8, dim)))
    y = rng.normal(size=(9, dim)) * np.exp(skew * 6 * rng.normal(size=(9, dim)))
    x *= 10.0**log_scale / np.abs(x).max()
    y *= 10.0**log_scale / np.abs(y).max()
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    got = -2.0 * (torch.from_numpy(x32).bfloat16() @ torch.from_numpy(y32).bfloat16().T).double().numpy()
    exact = -2.0 * (x @ y.T)
    nx, ny = np.linalg.norm(x, axis=1), np.linalg.norm(y, axis=1)
    coef = _nnpath._dot_bound(dim, (1 + _nnpath._U32) * (1 + _nnpath._U16) - 1, _nnpath._U16)
    bound = coef * nx[:, None] * ny[None, :] + _nnpath._flush_bound(dim, nx.max(), ny.max())
    assert np.all(np.abs(got - exact) <= bound)
    # and the bound is not vacuous: on typical data the largest error reaches 2^-10 of it
    if skew == 0 and dim >= 64:
        assert np.abs(got - exact).max() > bound.max() / 2**10


def test_the_bfloat16_pass_gives_the_float32_answer_and_falls_back_when_its_check_fails(monkeypatch):
    from scipy.spatial.distance import cdist

    from otflow import _nnpath

    rng = np.random.default_rng(5)
    n, dim = 700, 256
    x = rng.normal(size=(n, dim))
    y = 0.5 * x + 1 + 0.2 * rng.normal(size=(n, dim))
    # two columns 1e-4 apart and a row 1e-6 from each: only float64 tells which is whose
    y[1] = y[0] + 1e-4 * rng.normal(size=dim)
    x[0] = y[0] + 1e-6 * rng.normal(size=dim)
    x[1] = y[1] + 1e-6 * rng.normal(size=dim)
    perm = rng.permutation(n)
    y = y[perm]
    partner = np.argsort(perm)  # x_i's partner now sits at y[partner[i]]
    f32 = _nnpath.nearest_neighbour_assignment(x, y, 100, precision="float32")
    b16 = _nnpath.nearest_neighbour_assignment(x, y, 100, precision="bfloat16")
    assert f32[3] == "float32" and b16[3] == "bfloat16"
    np.testing.assert_array_equal(b16[0], f32[0])
    np.testing.assert_array_equal(b16[1], f32[1])
    c = cdist(x, y, "sqeuclidean")
    np.testing.assert_array_equal(b16[0], c.argmin(axis=1))
    np.testing.assert_array_equal(b16[0], partner)
    # those two rows are not decided in bfloat16 (nor in float32)
    clouds = _nnpath._Clouds(x, y)
    lowp = _nnpath._Bf16Pass(clouds)
    _, undecided, _ = _nnpath._decide(lowp.h(clouds, 0, 2), clouds.errors(slice(0, 2), lowp.coef, lowp.absolute))
    assert undecided.tolist() == [0, 1]
    # a GEMM that rounds worse than the bound assumes is caught before any block is trusted
    monkeypatch.setattr(_nnpath._Bf16Pass, "h", lambda self, c, a, b: c.h32(slice(a, b)) * 1.05)
    assert _nnpath.nearest_neighbour_assignment(x, y, 100, precision="bfloat16")[3] == "float32"
    with pytest.raises(ValueError, match="precision"):
        _nnpath.nearest_neighbour_assignment(x, y, 100, precision="half")


def test_bfloat16_is_chosen_by_the_cpu_flags_and_the_environment(monkeypatch):
    from otflow import _nnpath

    monkeypatch.setenv("OTFLOW_BF16", "0")
    assert _nnpath.bf16_native() is False
    monkeypatch.setenv("OTFLOW_BF16", "1")
    assert _nnpath.bf16_native() is True
    monkeypatch.delenv("OTFLOW_BF16")
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            flags = next(line for line in f if line.startswith("flags")).split()
        assert _nnpath.bf16_native() == ("avx512_bf16" in flags or "amx_bf16" in flags)


@pytest.mark.skipif(
    os.path.exists("/dev/nvidiactl") or not sys.platform.startswith("linux"), reason="a machine that may have CUDA"
)
def test_first_call_without_a_gpu_does_not_import_torch():
    """engine='auto' on a Linux machine with no NVIDIA device node solves with numpy and leaves torch unloaded
    (its import alone is over a second of a one-off call)."""
    code = (
        "import sys, numpy as np, otflow\n"
        "r = otflow.solve_assignment(np.random.default_rng(0).normal(size=(400, 2)), np.zeros((400, 2)) + 1)\n"
        "print(r.engine, 'torch' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert out.stdout.split() == ["numba", "False"]


# ---------------------------------------------------------------------------------------------
# the float32 passes of the full solver (otflow.solver._Float32Blocks)


def _f32_engine(x, y, block=64):
    from otflow import solver

    p = solver._Problem(x, y, None)
    return p, solver._Float32Blocks(p, block)


@settings(max_examples=30, deadline=None)
@given(seed=seeds, n=st.integers(2, 150), dim=st.sampled_from([1, 3, 40, 300]), log_scale=st.floats(-5, 5))
def test_float32_candidates_have_exact_costs_and_a_valid_threshold(seed, n, dim, log_scale):
    """Against the dense float64 matrix: the candidates' costs are exact, sorted by key, and every
    column left out of a row has ``c_ij − v_j ≥ thresh_i`` (the certificate rests on this)."""
    rng = np.random.default_rng(seed)
    scale = 10.0**log_scale
    x = rng.normal(size=(n, dim)) * scale
    y = (x[rng.permutation(n)] + rng.normal(size=(n, dim)) * rng.uniform(0, 2)) * rng.uniform(0.5, 2)
    p, eng = _f32_engine(x, y, block=int(rng.integers(1, 80)))
    v = rng.normal(size=n) * scale**2
    k = int(rng.integers(1, 6))
    rows = np.sort(rng.choice(n, int(rng.integers(1, n + 1)), replace=False))
    cols, costs, keys, thresh, (cr, cc, cv) = eng.row_topk(rows, v, k, col_k=k)
    c = _sq_dists(x, y)
    tol = 1e-12 * p.scale
    np.testing.assert_allclose(costs, c[rows[:, None], cols], rtol=0, atol=tol)
    np.testing.assert_allclose(cv, c[cr, cc], rtol=0, atol=tol)
    assert np.all(np.diff(keys, axis=1) >= 0)
    key_all = c[rows] - v[None, :]
    left_out = np.ones_like(key_all, dtype=bool)
    np.put_along_axis(left_out, cols, False, axis=1)
    lowest_left = np.where(left_out, key_all, np.inf).min(axis=1)
    assert np.all(lowest_left >= thresh - tol)


def test_float32_rows_the_bound_cannot_certify_take_the_float64_route(monkeypatch):
    """With a bound wider than any gap every row goes to float64, and the answer is unchanged."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 600))
    y = x[rng.permutation(120)] + 0.3 * rng.normal(size=(120, 600))
    p, eng = _f32_engine(x, y)
    v = np.zeros(120)
    ref = eng.row_topk(np.arange(120), v, 4)
    eng.err = np.full(120, 1e30)
    got = eng.row_topk(np.arange(120), v, 4)
    assert eng.float64_rows == 120
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_allclose(got[3], ref[2][:, -1], rtol=1e-12)  # float64 threshold: the k-th key


@settings(max_examples=8, deadline=None)
@given(seeds, st.integers(257, 500), st.sampled_from([16, 200]), st.sampled_from(["linear", "mixture"]))
def test_the_solver_with_float32_passes_matches_scipy(seed, n, d, kind):
    """The whole solver on the float32 engine (its size thresholds lowered), on problems the one-pass
    certificate cannot take: certified, and the cost equals scipy's."""
    with pytest.MonkeyPatch.context() as mp:
        from otflow import solver

        mp.setattr(solver, "FLOAT32_MIN_D", 1)
        mp.setattr(solver, "FLOAT32_MIN_N", 1)
        _float32_solver_case(seed, n, d, kind)


def _float32_solver_case(seed, n, d, kind):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    if kind == "linear":
        y = 0.5 * x @ (rng.normal(size=(d, d)) / np.sqrt(d)) + 1.0 + 0.1 * rng.normal(size=(n, d))
    else:
        c0 = rng.normal(size=(3, d)) * 6
        x = c0[rng.integers(0, 3, n)] + rng.normal(size=(n, d))
        y = c0[[1, 2, 0]][rng.integers(0, 3, n)] + 0.5 * rng.normal(size=(n, d))
    trace = []
    res = solve_assignment(x, y, trace=trace)
    assert res.method == "blas"
    assert any(t.get("precision") == "float32" for t in trace if t["step"] == "first")
    _check_optimal(x, y, res)


def test_large_high_dimensional_problems_take_the_float32_passes():
    rng = np.random.default_rng(0)
    n, d = 1_000, 512
    c0 = rng.normal(size=(3, d)) * 3
    x = c0[rng.integers(0, 3, n)] + rng.normal(size=(n, d))
    y = c0[[1, 2, 0]][rng.integers(0, 3, n)] + rng.normal(size=(n, d))
    trace = []
    res = solve_assignment(x, y, trace=trace)
    first = [t for t in trace if t["step"] == "first" and t["n"] == n]
    assert first and first[0]["precision"] == "float32"
    _check_optimal(x, y, res)


def test_float32_threshold_holds_among_near_ties():
    """Columns closer together than float32 can tell apart: the k chosen in float32 may not be the
    true k smallest, and only the bound keeps the threshold below the columns left out."""
    rng = np.random.default_rng(7)
    n, dim = 200, 700
    centre = rng.normal(size=dim) * 10
    y = centre + 1e-6 * rng.normal(size=(n, dim))  # all columns within float32's resolution
    x = centre + rng.normal(size=(n, dim))
    p, eng = _f32_engine(x, y)
    v = np.zeros(n)
    cols, costs, keys, thresh = eng.row_topk(np.arange(n), v, 5)
    c = _sq_dists(x, y)
    left_out = np.ones_like(c, dtype=bool)
    np.put_along_axis(left_out, cols, False, axis=1)
    lowest_left = np.where(left_out, c, np.inf).min(axis=1)
    assert np.all(lowest_left >= thresh - 1e-12 * p.scale)
    np.testing.assert_allclose(costs, c[np.arange(n)[:, None], cols], rtol=0, atol=1e-12 * p.scale)
