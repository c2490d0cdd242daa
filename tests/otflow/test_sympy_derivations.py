"""sympy proves the algebra the code relies on (STYLE 14), then the numeric functions are checked
against the symbolic results at hypothesis-drawn points."""

import numpy as np
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

import otflow
from tests.strategies import seeds

t, a, b = sp.symbols("t a b", nonnegative=True)
f_t = (1 - t) ** 2 * a + t**2 * b  # right side of (26)


def _theorem1_minimum():
    t_star = sp.solve(sp.diff(f_t, t), t)
    assert len(t_star) == 1
    t_star = t_star[0]
    value = sp.simplify(f_t.subs(t, t_star))
    return t_star, value


def test_theorem1_minimisation_over_t():
    """(27): f(t) = (1−t)²a + t²b is minimal at t* = a/(a+b), where it equals ab/(a+b); f'' = 2(a+b) ≥ 0."""
    t_star, value = _theorem1_minimum()
    assert sp.simplify(t_star - a / (a + b)) == 0
    assert sp.simplify(value - a * b / (a + b)) == 0
    assert sp.simplify(sp.diff(f_t, t, 2) - 2 * (a + b)) == 0


@given(st.floats(1e-3, 1e3), st.floats(1e-3, 1e3))
def test_theorem1_bound_matches_the_symbolic_minimum(av, bv):
    _, value = _theorem1_minimum()
    expected = float(sp.sqrt(value).subs({a: av, b: bv}))
    x, x2 = np.array([0.0, 0.0]), np.array([np.sqrt(av), 0.0])
    y, y2 = np.array([0.0, 0.0]), np.array([0.0, np.sqrt(bv)])
    np.testing.assert_allclose(otflow.theorem1_bound(x, x2, y, y2), expected, rtol=1e-10)


def _vec(name, d=3):
    return sp.Matrix(sp.symbols(f"{name}0:{d}", real=True))


def test_cyclical_monotonicity_expansion_24_to_25():
    """(24) ⇔ (25): ‖x−y'‖² + ‖x'−y‖² − ‖x−y‖² − ‖x'−y'‖² = 2⟨x − x', y − y'⟩."""
    x, x2, y, y2 = _vec("x"), _vec("xp"), _vec("y"), _vec("yp")

    def sq(v):
        return (v.T * v)[0]

    lhs = sq(x - y2) + sq(x2 - y) - sq(x - y) - sq(x2 - y2)
    assert sp.expand(lhs - 2 * ((x - x2).T * (y - y2))[0]) == 0


def test_track_distance_expansion_26():
    """(26): ‖x_t − x'_t‖² = (1−t)²‖x−x'‖² + t²‖y−y'‖² + 2t(1−t)⟨x−x', y−y'⟩."""
    x, x2, y, y2 = _vec("x"), _vec("xp"), _vec("y"), _vec("yp")
    d = (1 - t) * (x - x2) + t * (y - y2)
    lhs = (d.T * d)[0]
    rhs = (
        (1 - t) ** 2 * ((x - x2).T * (x - x2))[0]
        + t**2 * ((y - y2).T * (y - y2))[0]
        + 2 * t * (1 - t) * ((x - x2).T * (y - y2))[0]
    )
    assert sp.expand(lhs - rhs) == 0


def test_frobenius_am_gm_step_14():
    """(14): for 0 ≤ a, b ≤ M²: M²(a+b)/2 − ab = a(M²−b)/2 + b(M²−a)/2 ≥ 0."""
    M2 = sp.symbols("M2", positive=True)
    gap = M2 * (a + b) / 2 - a * b
    assert sp.expand(gap - (a * (M2 - b) / 2 + b * (M2 - a) / 2)) == 0


@given(seeds, st.integers(1, 6), st.integers(1, 6))
def test_frobenius_am_gm_numerically_on_weights(seed, d, h):
    """‖W1‖²‖W2‖² ≤ (M²/2)(‖W1‖² + ‖W2‖²) with M = max Frobenius norm, and ‖W‖₂ ≤ ‖W‖_F (13)."""
    rng = np.random.default_rng(seed)
    w1, w2 = rng.normal(size=(h, d)) * rng.uniform(0.1, 3), rng.normal(size=(d, h)) * rng.uniform(0.1, 3)
    fa, fb = np.sum(w1**2), np.sum(w2**2)
    m2 = max(fa, fb)
    assert fa * fb <= m2 / 2 * (fa + fb) * (1 + 1e-12)
    assert np.linalg.norm(w1, 2) <= np.sqrt(fa) * (1 + 1e-12)


def test_gaussian_map_formula_pushes_s0_to_s1_symbolically():
    """With R = S0^{1/2} and N = (R S1 R)^{1/2}: A = R⁻¹ N R⁻¹ gives A S0 A = R⁻¹ N² R⁻¹ = S1."""
    n = 3
    R, N, S1 = sp.MatrixSymbol("R", n, n), sp.MatrixSymbol("N", n, n), sp.MatrixSymbol("S1", n, n)
    A = R.I * N * R.I
    pushed = (A * (R * R) * A).doit()
    # substitute N² = R S1 R and simplify R⁻¹R = I
    pushed = sp.simplify(pushed.subs(N * N, R * S1 * R))
    assert sp.simplify(pushed - S1) == sp.ZeroMatrix(n, n)


def test_gaussian_map_one_dimensional_formula():
    """1-D, variances v0, v1: A = v0^{-1/2} (v0^{1/2} v1 v0^{1/2})^{1/2} v0^{-1/2} = √(v1/v0),
    and W2² = (m0−m1)² + (√v0 − √v1)²."""
    v0, v1 = sp.symbols("v0 v1", positive=True)
    A = 1 / sp.sqrt(v0) * sp.sqrt(sp.sqrt(v0) * v1 * sp.sqrt(v0)) / sp.sqrt(v0)
    assert sp.simplify(A - sp.sqrt(v1 / v0)) == 0
    bures = v0 + v1 - 2 * sp.sqrt(sp.sqrt(v0) * v1 * sp.sqrt(v0))
    assert sp.simplify(bures - (sp.sqrt(v0) - sp.sqrt(v1)) ** 2) == 0


@given(st.floats(0.01, 10), st.floats(0.01, 10), st.floats(-3, 3), st.floats(-3, 3))
def test_gaussian_functions_match_the_symbolic_1d_forms(v0, v1, m0, m1):
    T = otflow.gaussian_map([m0], [[v0]], [m1], [[v1]])
    np.testing.assert_allclose(T.A[0, 0], np.sqrt(v1 / v0), rtol=1e-10)
    np.testing.assert_allclose(T.b[0], m1 - np.sqrt(v1 / v0) * m0, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        otflow.gaussian_w2_squared([m0], [[v0]], [m1], [[v1]]),
        (m0 - m1) ** 2 + (np.sqrt(v0) - np.sqrt(v1)) ** 2,
        rtol=1e-9,
        atol=1e-12,
    )


def test_energy_cauchy_schwarz_step_12():
    """(12): ‖Σ_l d_l‖² ≤ L Σ_l ‖d_l‖² (Cauchy–Schwarz), as a sum of squares:
    L Σ d_l² − (Σ d_l)² = Σ_{l<k} (d_l − d_k)²."""
    L = 4
    d = sp.symbols(f"d0:{L}", real=True)
    lhs = L * sum(di**2 for di in d) - sum(d) ** 2
    rhs = sum((d[i] - d[j]) ** 2 for i in range(L) for j in range(i + 1, L))
    assert sp.expand(lhs - rhs) == 0
