"""Closed-form optimal transport between Gaussians, and the sample-based twins.

Cost ``‖x − y‖²`` (not halved). For :math:`\\mu_0 = N(m_0, S_0)` and :math:`\\mu_1 = N(m_1, S_1)`:

.. math::
    W_2^2 = \\|m_0 - m_1\\|^2 + \\operatorname{tr}\\big(S_0 + S_1 - 2 (S_0^{1/2} S_1 S_0^{1/2})^{1/2}\\big)

and, for :math:`S_0 \\succ 0`, the OT map is the affine map :math:`T(x) = m_1 + A (x - m_0)` with

.. math::
    A = S_0^{-1/2} (S_0^{1/2} S_1 S_0^{1/2})^{1/2} S_0^{-1/2},

symmetric positive semi-definite (the gradient of a convex function), SPEC (8)-(9).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from otflow._validation import as_cov, as_mean, as_points

__all__ = [
    "AffineMap",
    "sqrtm_psd",
    "gaussian_w2_squared",
    "gaussian_map",
    "empirical_gaussian_w2_squared",
    "empirical_gaussian_map",
]


@dataclass(frozen=True)
class AffineMap:
    """The map ``x ↦ A x + b`` applied row-wise: ``T(x) = x @ A.T + b`` for points of shape (n, D)."""

    A: np.ndarray
    b: np.ndarray

    def __call__(self, x) -> np.ndarray:
        x = as_points(x, "x")
        if x.shape[1] != self.A.shape[1]:
            raise ValueError(f"x: expected points of dimension {self.A.shape[1]}, got shape {x.shape}")
        return x @ self.A.T + self.b


def sqrtm_psd(S) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (eigen-decomposition)."""
    S = np.asarray(S, dtype=np.float64)
    w, V = np.linalg.eigh(0.5 * (S + S.T))
    return (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T


def _inv_sqrtm_pd(S: np.ndarray) -> np.ndarray:
    w, V = np.linalg.eigh(S)
    return (V / np.sqrt(w)) @ V.T


def gaussian_w2_squared(m0, S0, m1, S1) -> float:
    r"""Closed-form W2² between :math:`N(m_0, S_0)` and :math:`N(m_1, S_1)` (the Bures–Wasserstein formula).

    .. math::
        W_2^2 = \|m_0 - m_1\|^2 + \operatorname{tr}\big(S_0 + S_1 - 2 (S_0^{1/2} S_1 S_0^{1/2})^{1/2}\big)

    Parameters
    ----------
    m0, m1 : array (D,)
    S0, S1 : array (D, D), symmetric positive semi-definite

    Examples
    --------
    >>> gaussian_w2_squared([0.0], [[1.0]], [3.0], [[4.0]])
    10.0
    """
    m0 = as_mean(m0, "m0")
    d = m0.shape[0]
    m1 = as_mean(m1, "m1")
    if m1.shape != (d,):
        raise ValueError(f"m1: expected shape ({d},) like m0, got {m1.shape}")
    S0 = as_cov(S0, d, "S0")
    S1 = as_cov(S1, d, "S1")
    r0 = sqrtm_psd(S0)
    cross = sqrtm_psd(r0 @ S1 @ r0)
    value = float(np.sum((m0 - m1) ** 2) + np.trace(S0) + np.trace(S1) - 2.0 * np.trace(cross))
    return max(value, 0.0)


def gaussian_map(m0, S0, m1, S1) -> AffineMap:
    r"""The OT map from :math:`N(m_0, S_0)` to :math:`N(m_1, S_1)`, SPEC (8)-(9), as an :class:`AffineMap`.

    .. math::
        T(x) = m_1 + A (x - m_0),\qquad A = S_0^{-1/2} (S_0^{1/2} S_1 S_0^{1/2})^{1/2} S_0^{-1/2}

    ``A`` is symmetric positive semi-definite and satisfies :math:`A S_0 A = S_1`.
    ``S0`` must be positive definite.

    Examples
    --------
    >>> T = gaussian_map([0.0], [[1.0]], [3.0], [[4.0]])
    >>> T([[1.0]])
    array([[5.]])
    """
    m0 = as_mean(m0, "m0")
    d = m0.shape[0]
    m1 = as_mean(m1, "m1")
    if m1.shape != (d,):
        raise ValueError(f"m1: expected shape ({d},) like m0, got {m1.shape}")
    S0 = as_cov(S0, d, "S0", definite=True)
    S1 = as_cov(S1, d, "S1")
    r0 = sqrtm_psd(S0)
    r0_inv = _inv_sqrtm_pd(S0)
    A = r0_inv @ sqrtm_psd(r0 @ S1 @ r0) @ r0_inv
    A = 0.5 * (A + A.T)
    return AffineMap(A=A, b=m1 - A @ m0)


def _moments(x, name: str, reg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    x = as_points(x, name).astype(np.float64, copy=False)
    if x.shape[0] < 2:
        raise ValueError(f"{name}: need at least 2 samples to estimate a covariance, got {x.shape[0]}")
    if not (np.isfinite(reg) and reg >= 0):
        raise ValueError(f"reg: expected a finite non-negative ridge, got {reg!r}")
    m = x.mean(0)
    xc = x - m
    S = xc.T @ xc / x.shape[0]
    if reg:
        S[np.diag_indices_from(S)] += reg
    return m, S


def empirical_gaussian_w2_squared(x, y, *, reg: float = 0.0) -> float:
    """:func:`gaussian_w2_squared` between the Gaussians with the sample means and covariances
    (maximum-likelihood, ``ddof=0``, plus ``reg`` on the diagonal) of ``x`` (n, D) and ``y`` (m, D)."""
    mx, Sx = _moments(x, "x", reg)
    my, Sy = _moments(y, "y", reg)
    if mx.shape != my.shape:
        raise ValueError(f"x and y: expected the same dimension D, got {mx.shape[0]} and {my.shape[0]}")
    return gaussian_w2_squared(mx, Sx, my, Sy)


def empirical_gaussian_map(x, y, *, reg: float = 0.0) -> AffineMap:
    """:func:`gaussian_map` between the Gaussians fitted (``ddof=0``) to ``x`` (n, D) and ``y`` (m, D):
    the linear OT map, used as a null baseline for OTS in high dimension.

    ``reg`` adds a ridge to both covariances; it is needed when ``n <= D`` (singular sample
    covariance), where the map is otherwise undefined."""
    mx, Sx = _moments(x, "x", reg)
    my, Sy = _moments(y, "y", reg)
    if mx.shape != my.shape:
        raise ValueError(f"x and y: expected the same dimension D, got {mx.shape[0]} and {my.shape[0]}")
    return gaussian_map(mx, Sx, my, Sy)
