"""A one-pass exact path for assignments whose row-wise nearest neighbours form a permutation.

If every ``x_i``'s nearest ``y`` is a different point, ``σ(i) = argmin_j c_ij`` is an optimal
assignment: with ``u_i = c_{iσ(i)}`` and ``v = 0`` the dual is feasible (``c_ij − u_i ≥ 0`` for all
pairs, as ``u_i`` is the row minimum) and tight on σ, so σ is optimal by LP duality. This is the
common case of the maps this project measures: a residual stage in high dimension moves every point
by less than the spacing of the points (the "near-identity" problems).

The pass runs in float32 BLAS (about twice the speed of float64) with a rigorous error bound:
for ``x, y`` converted to float32 and a dot product of length D accumulated in float32 in any
order, ``|fl(x·y) − x·y| ≤ ((2u + u²) + γ_D (1 + u)²) ‖x‖ ‖y‖`` with ``u = 2⁻²⁴`` and
``γ_D = Du / (1 − Du)`` (Higham, Accuracy and Stability, §3.1). A row whose float32 minimum is not
separated from every other column by the bound has its close columns recomputed in float64 from
coordinate differences, so the row minimum is exact. The costs of the chosen pairs are recomputed
in float64 too; the certificate then holds to float64 rounding.
"""

from __future__ import annotations

import numpy as np

__all__ = ["nearest_neighbour_assignment"]

_U32 = 2.0**-24


def _dot_bound(dim: int) -> float:
    """Coefficient e with ``|c32_ij − c_ij| ≤ e ‖x_i‖ ‖y_j‖`` (the −2 x·y term), see the module docstring."""
    gamma = dim * _U32 / (1.0 - dim * _U32)
    return 2.0 * ((2 * _U32 + _U32 * _U32) + gamma * (1 + _U32) ** 2) * (1 + 1e-6)


def _exact_costs(x: np.ndarray, y: np.ndarray, i: int, cols: np.ndarray) -> np.ndarray:
    d = x[i][None, :] - y[cols]
    return np.einsum("ij,ij->i", d, d)


def _block_minima(x, y, x32, y32t, sqy32, nx, ny_max, sqy_max, rows, coef) -> np.ndarray:
    """The exact argmin column of each row of ``rows`` (a slice).

    ``argmin_j c_ij = argmin_j h_ij`` with ``h_ij = ‖y_j‖² − 2 x_iᵀy_j`` (``‖x_i‖²`` is constant in
    the row), computed in float32 in place. Its error is at most ``E_i = coef ‖x_i‖ max‖y‖ +
    3u (max‖y‖² + 2 ‖x_i‖ max‖y‖)`` (the dot product, then the float32 rounding of ``‖y_j‖²`` and of
    the subtraction), so only columns with ``h_ij ≤ min_j h_ij + 2 E_i`` can be the minimum; a row
    with more than one such column is decided from float64 coordinate differences.
    """
    h = x32[rows] @ y32t
    h *= -2.0
    h += sqy32[None, :]
    j = h.argmin(axis=1)
    r = np.arange(h.shape[0])
    nxr = nx[rows]
    err = coef * nxr * ny_max + 3 * _U32 * (sqy_max + 2 * nxr * ny_max)
    threshold = (h[r, j].astype(np.float64) + 2 * err).astype(np.float32)
    close = h <= np.nextafter(threshold, np.float32(np.inf))[:, None]  # rounded up: never too tight
    cols = j.astype(np.int64)
    for t in np.flatnonzero(np.count_nonzero(close, axis=1) > 1):  # not decided in float32
        cand = np.flatnonzero(close[t])
        cols[t] = cand[int(_exact_costs(x, y, rows.start + t, cand).argmin())]
    return cols


def _centred_float32(z: np.ndarray, center: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """``z − center`` in float32 and its squared norms in float64, chunk by chunk (no float64 copy)."""
    out = np.empty(z.shape, dtype=np.float32)
    sq = np.empty(z.shape[0])
    for s in range(0, z.shape[0], chunk):
        c = z[s : s + chunk] - center
        out[s : s + chunk] = c
        sq[s : s + chunk] = np.einsum("ij,ij->i", c, c)
    return out, sq


def _screen(x32, y32, sqy32, rng, sample: int = 256) -> bool:
    """A cheap screen: do the nearest neighbours of a random sample of rows differ from each other?
    (If not, the full pass would fail; the solver then skips it.)"""
    n = x32.shape[0]
    rows = rng.choice(n, size=min(sample, n), replace=False)
    h = x32[rows] @ y32.T
    h *= -2.0
    h += sqy32[None, :]
    nn = h.argmin(axis=1)
    return len(np.unique(nn)) == len(nn)


def nearest_neighbour_assignment(x: np.ndarray, y: np.ndarray, block: int, rng=None):
    """``(sigma, u, scale)`` when the exact row-wise nearest neighbours of ``x`` and ``y`` form a
    permutation (``u`` the exact costs of the chosen pairs, ``v = 0``; ``scale = max‖x_c‖² +
    max‖y_c‖²`` of the clouds centred on their common mean, for the tolerance), else None.

    The float32 pass works on the centred clouds (smaller norms, a tighter bound); the float64
    rechecks and the final costs use coordinate differences, in which the centre cancels.
    """
    n, dim = x.shape
    center = (x.sum(0) + y.sum(0)) / (2 * n)
    x32, sqx = _centred_float32(x, center)
    y32, sqy = _centred_float32(y, center)
    sqy32 = sqy.astype(np.float32)
    if not _screen(x32, y32, sqy32, np.random.default_rng(0 if rng is None else rng)):
        return None
    nx = np.sqrt(sqx)
    bounds = (float(np.sqrt(sqy.max())), float(sqy.max()))
    coef = _dot_bound(dim)
    y32t = y32.T
    sigma = np.empty(n, dtype=np.int64)
    for s in range(0, n, block):
        rows = slice(s, min(s + block, n))
        sigma[rows] = _block_minima(x, y, x32, y32t, sqy32, nx, *bounds, rows, coef)
    if np.unique(sigma).size != n:
        return None
    d = x - y[sigma]
    return sigma, np.einsum("ij,ij->i", d, d), float(sqx.max() + sqy.max())
