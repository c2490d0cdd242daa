"""Energy bounds (13)-(16) on random bias-free ReLU networks."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import otflow
from tests.strategies import seeds


def run_net(x, weights, residual):
    states = [x]
    for w1, w2 in weights:
        f = np.maximum(states[-1] @ w1.T, 0.0) @ w2.T
        states.append(states[-1] + f if residual else f)
    return np.stack(states, axis=1)


def random_weights(rng, L, d, h, scale):
    return [
        (rng.normal(size=(h, d)) * scale / np.sqrt(d), rng.normal(size=(d, h)) * scale / np.sqrt(h)) for _ in range(L)
    ]


@given(seeds, st.integers(1, 6), st.integers(1, 5), st.integers(1, 12), st.floats(0.01, 2.0), st.booleans())
def test_bounds_hold_for_random_weights_and_inputs(seed, L, d, h, scale, residual):
    rng = np.random.default_rng(seed)
    weights = random_weights(rng, L, d, h, scale)
    x = rng.normal(size=(30, d)) * rng.uniform(0.1, 5.0)
    tracks = run_net(x, weights, residual)
    energy = otflow.transport_energy(tracks)
    b = otflow.energy_bounds(weights, tracks, residual=residual)
    tol = 1e-9 * max(1.0, energy)
    assert energy <= b.spectral + tol
    assert b.spectral <= b.frobenius + tol * max(1.0, b.frobenius)
    assert b.frobenius <= b.penalty_form * (1 + 1e-12) + tol
    np.testing.assert_allclose(b.C, 0.5 * b.B2 * b.M**2, rtol=1e-12)


@given(seeds, st.integers(1, 6), st.integers(1, 5))
def test_plain_bound_carries_the_constant_term_and_zero_weights_show_why(seed, L, d):
    """With zero weights a residual net does not move (energy 0) while a plain net jumps to 0 at the
    first block: energy = L·E‖x_0‖², which only the extra 2L²B² term of (16) can cover."""
    rng = np.random.default_rng(seed)
    weights = [(np.zeros((3, d)), np.zeros((d, 3))) for _ in range(L)]
    x = rng.normal(size=(20, d)) + 1.0
    res = run_net(x, weights, True)
    plain = run_net(x, weights, False)
    assert otflow.transport_energy(res) == 0.0
    e_plain = otflow.transport_energy(plain)
    np.testing.assert_allclose(e_plain, L * np.mean(np.sum(x**2, 1)), rtol=1e-12)
    bp = otflow.energy_bounds(weights, plain, residual=False)
    br = otflow.energy_bounds(weights, res, residual=True)
    assert br.penalty_form == 0.0 and br.constant_term == 0.0
    np.testing.assert_allclose(bp.constant_term, 2 * L**2 * bp.B2, rtol=1e-12)
    assert e_plain <= bp.penalty_form
    np.testing.assert_allclose(bp.penalty_form, bp.constant_term, rtol=1e-12)


def test_penalty_and_constants_closed_form():
    w = [(np.array([[3.0, 0.0]]), np.array([[0.0], [4.0]]))]  # ‖W1‖_F² = 9, ‖W2‖_F² = 16
    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    tracks = run_net(x, w, True)
    b = otflow.energy_bounds(w, tracks)
    assert b.penalty == 25.0 and b.M == 4.0 and b.B2 == 1.0 and b.C == 8.0
    assert b.penalty_form == 8.0 * 1 * 25.0
    np.testing.assert_allclose(b.frobenius, 9 * 16 * 1.0)
    # spectral norms equal Frobenius norms for rank-one matrices
    np.testing.assert_allclose(b.spectral, b.frobenius)


def test_torch_weights_are_accepted():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    weights = random_weights(rng, 2, 3, 4, 1.0)
    tracks = run_net(rng.normal(size=(5, 3)), weights, True)
    tw = [(torch.from_numpy(a), torch.from_numpy(b)) for a, b in weights]
    assert otflow.energy_bounds(tw, tracks) == otflow.energy_bounds(weights, tracks)


@pytest.mark.parametrize(
    "weights, match",
    [
        ([], "at least one"),
        ([(np.zeros((4, 3)), np.zeros((4, 3)))], r"W2 of shape \(D, h\)"),
        ([np.zeros((4, 3))], "pair"),
        ([(np.full((4, 3), np.nan), np.zeros((3, 4)))], "NaN"),
    ],
)
def test_bad_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        otflow.energy_bounds(weights, np.zeros((2, 2, 3)))


def test_tracks_must_match_the_number_of_blocks():
    w = [(np.zeros((4, 3)), np.zeros((3, 4)))] * 2
    with pytest.raises(ValueError, match="L\\+1 = 3"):
        otflow.energy_bounds(w, np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match="D = 5"):
        otflow.energy_bounds(w, np.zeros((2, 3, 5)))
