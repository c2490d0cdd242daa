"""Shared hypothesis strategies (STYLE 11): each builds a problem and, where one is known, its answer.

Shapes are small and bounded; SPD matrices are ``B Bᵀ + εI``; every case is drawn from a seed so a
failure is reproducible from hypothesis' printed example.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

seeds = st.integers(min_value=0, max_value=2**32 - 1)


@dataclass(frozen=True)
class CloudPair:
    """Two point clouds of equal size, and how they were made."""

    x: np.ndarray
    y: np.ndarray
    kind: str


def _cloud(rng: np.random.Generator, n: int, d: int, kind: str) -> np.ndarray:
    if kind == "gaussian":
        return rng.normal(size=(n, d)) * rng.uniform(0.1, 10.0)
    if kind == "clustered":
        k = int(rng.integers(1, 4))
        centers = rng.normal(size=(k, d)) * 5
        return centers[rng.integers(0, k, n)] + 0.05 * rng.normal(size=(n, d))
    if kind == "duplicated":
        base = rng.normal(size=(max(1, n // 3), d))
        return base[rng.integers(0, len(base), n)]
    if kind == "lattice":  # many exact ties in the cost
        return rng.integers(-2, 3, size=(n, d)).astype(float)
    raise ValueError(kind)


@st.composite
def cloud_pairs(draw, min_n: int = 1, max_n: int = 40, max_d: int = 6, kinds=None) -> CloudPair:
    """Random pairs of clouds: Gaussian, clustered, with duplicated points, or on a lattice (ties)."""
    kinds = kinds or ("gaussian", "clustered", "duplicated", "lattice")
    rng = np.random.default_rng(draw(seeds))
    n = draw(st.integers(min_n, max_n))
    d = draw(st.integers(1, max_d))
    kind = draw(st.sampled_from(kinds))
    x = _cloud(rng, n, d, kind)
    shift = rng.normal(size=d) * draw(st.sampled_from([0.0, 1.0, 20.0]))
    y = _cloud(rng, n, d, kind) + shift
    return CloudPair(x, y, kind)


@dataclass(frozen=True)
class PlantedAssignment:
    """``y = T(x)[perm⁻¹]`` for a map T that is the gradient of a convex function, so the optimal
    assignment is known: ``sigma[i] = position of T(x_i) in y``."""

    x: np.ndarray
    y: np.ndarray
    sigma: np.ndarray


@st.composite
def planted_assignments(draw, min_n: int = 2, max_n: int = 40, max_d: int = 5) -> PlantedAssignment:
    """A planted optimum: T(x) = A x + b with A symmetric positive definite (a Brenier map) is the
    unique optimal map for generic points; y holds T(x) in shuffled order."""
    rng = np.random.default_rng(draw(seeds))
    n = draw(st.integers(min_n, max_n))
    d = draw(st.integers(1, max_d))
    x = rng.normal(size=(n, d)) * 3
    B = rng.normal(size=(d, d))
    A = B @ B.T + 0.2 * np.eye(d)
    tx = x @ A + rng.normal(size=d) * 5
    perm = rng.permutation(n)  # y[j] = tx[perm[j]]
    y = tx[perm]
    sigma = np.empty(n, dtype=np.int64)
    sigma[perm] = np.arange(n)
    return PlantedAssignment(x, y, sigma)


@st.composite
def spd_matrices(draw, d: int, eps: float = 0.1) -> np.ndarray:
    """Symmetric positive definite ``B Bᵀ + eps I`` of size d."""
    rng = np.random.default_rng(draw(seeds))
    B = rng.normal(size=(d, d)) * rng.uniform(0.2, 2.0)
    return B @ B.T + eps * np.eye(d)


@st.composite
def gaussian_pairs(draw, max_d: int = 5):
    """Two Gaussians ``(m0, S0, m1, S1)`` with positive definite covariances."""
    d = draw(st.integers(1, max_d))
    rng = np.random.default_rng(draw(seeds))
    return rng.normal(size=d) * 3, draw(spd_matrices(d)), rng.normal(size=d) * 3, draw(spd_matrices(d))


@st.composite
def tracks(draw, max_n: int = 12, max_l: int = 8, max_d: int = 5, min_l: int = 1) -> np.ndarray:
    """Random tracks (N, L+1, D) with generic (non-zero, non-cancelling) segments."""
    rng = np.random.default_rng(draw(seeds))
    n = draw(st.integers(1, max_n))
    steps = draw(st.integers(min_l, max_l))
    d = draw(st.integers(1, max_d))
    start = rng.normal(size=(n, 1, d)) * 3
    seg = rng.normal(size=(n, steps, d)) + draw(st.sampled_from([0.0, 0.5, 3.0])) * rng.normal(size=(n, 1, d))
    if d == 1:  # in 1-D unit steps cancel whenever as many go each way: break the tie
        balanced = np.sign(seg[:, :, 0]).sum(1) == 0
        seg[balanced, 0] *= -1
    return np.concatenate([start, start + np.cumsum(seg, axis=1)], axis=1)


@st.composite
def any_finite_arrays(draw, shape: tuple[int, ...]) -> np.ndarray:
    """Arrays of any finite magnitude for fuzzing: an overall scale 1e-300..1e300, and entries that
    are generic, small integers (ties, zeros, cancelling steps), or of mixed magnitudes."""
    rng = np.random.default_rng(draw(seeds))
    kind = draw(st.sampled_from(["normal", "integers", "mixed", "uniform"]))
    scale = 10.0 ** draw(st.integers(-300, 300))
    if kind == "normal":
        a = rng.normal(size=shape)
    elif kind == "integers":
        a = rng.integers(-2, 3, size=shape).astype(float)
    elif kind == "mixed":
        a = rng.normal(size=shape) * 10.0 ** rng.integers(-30, 30, size=shape)
    else:
        a = rng.uniform(-1.0, 1.0, size=shape)
    with np.errstate(over="ignore"):
        a = a * scale
    return np.clip(a, -np.finfo(np.float64).max, np.finfo(np.float64).max)  # overflow: the largest floats
