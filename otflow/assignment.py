"""Exact discrete optimal transport: the assignment problem and the empirical W2².

The cost is ``c(x, y) = ‖x − y‖²`` (squared Euclidean, **not** halved) throughout; functions named
``w2_squared`` return the un-rooted quantity the paper calls "W2" (SPEC (8), §8.1).

Every function here first divides both clouds by one power of two above their largest coordinate
(exact), so squares never overflow or underflow on the way: the permutation is found for finite
input of any magnitude, and a cost whose value does not fit in float64 raises ``ValueError``
instead of returning inf.
"""

from __future__ import annotations

import numpy as np

from otflow._numeric import check_no_overflow, common_scale
from otflow._validation import as_points, as_weights, check_pair, check_permutation
from otflow.solver import solve_assignment

__all__ = ["pairwise_sq_dists", "optimal_assignment", "assignment_cost", "w2_squared"]


def pairwise_sq_dists(x, y) -> np.ndarray:
    r"""Dense matrix of squared Euclidean distances, in float64.

    .. math:: C_{ij} = \|x_i - y_j\|_2^2

    Computed as ``‖x‖² + ‖y‖² − 2 x yᵀ`` with BLAS after subtracting the common mean of both clouds
    (which leaves every ``C_ij`` unchanged but reduces cancellation), and clipped at 0. Raises
    ``ValueError`` when an entry overflows float64.

    Parameters
    ----------
    x : array (n, D)
    y : array (m, D)

    Returns
    -------
    C : ndarray (n, m), float64

    Examples
    --------
    >>> pairwise_sq_dists([[0.0, 0.0]], [[3.0, 4.0]])
    array([[25.]])
    """
    x = as_points(x, "x").astype(np.float64, copy=False)
    y = as_points(y, "y").astype(np.float64, copy=False)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y: expected the same dimension D, got {x.shape[1]} and {y.shape[1]}")
    s = common_scale(x, y)
    with np.errstate(over="ignore"):
        c = _sq_dists(x / s, y / s) * s * s
    return check_no_overflow(c, "x and y", "a squared distance")


def _sq_dists(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    center = (x.sum(0) + y.sum(0)) / (len(x) + len(y))
    xc = x - center
    yc = y - center
    c = xc @ yc.T  # the only (n, m) allocation: the rest is in place
    c *= -2.0
    c += np.einsum("ij,ij->i", xc, xc)[:, None]
    c += np.einsum("ij,ij->i", yc, yc)[None, :]
    np.maximum(c, 0.0, out=c)
    return c


def optimal_assignment(x, y) -> np.ndarray:
    r"""Optimal permutation of the assignment problem with squared Euclidean cost, SPEC eq. (32).

    .. math::
        \sigma^* = \arg\min_{\sigma \in S_m} \sum_{i=1}^m \|x_i - y_{\sigma(i)}\|_2^2

    Parameters
    ----------
    x, y : array (m, D)
        Two point clouds with the same number of points (numpy or torch).

    Returns
    -------
    sigma : ndarray (m,), int64
        ``x[i]`` is sent to ``y[sigma[i]]``; ``sigma`` is a permutation of ``0..m-1``.

    Notes
    -----
    Solved by :func:`otflow.solve_assignment`, which also returns the dual potentials and checks
    optimality on the full problem; see there for the strategies and docs/performance.md.

    Examples
    --------
    >>> optimal_assignment([[0.0], [1.0]], [[1.1], [0.1]])
    array([1, 0])
    """
    x, y = check_pair(x, y)
    s = common_scale(x, y)
    return solve_assignment(x / s, y / s).sigma


def assignment_cost(x, y, sigma=None) -> float:
    r"""Mean cost of a pairing, :math:`\frac1m\sum_i \|x_i - y_{\sigma(i)}\|^2` (identity if ``sigma`` is None).

    Raises ``ValueError`` when the cost overflows float64.
    """
    x, y = check_pair(x, y)
    if sigma is not None:
        y = y[check_permutation(sigma, x.shape[0])]
    return _mean_sq(x, y, common_scale(x, y), "the mean cost")


def _mean_sq(x: np.ndarray, y: np.ndarray, s: float, what: str) -> float:
    """``mean_i ‖x_i − y_i‖²`` computed on ``x/s, y/s`` and multiplied back; ValueError on overflow."""
    d = x / s - y / s
    with np.errstate(over="ignore"):
        value = np.einsum("ij,ij->", d, d) / x.shape[0] * s * s
    return float(check_no_overflow(value, "x and y", what))


_W2_METHODS = ("assignment", "emd")


def w2_squared(x, y, a=None, b=None, *, method: str = "assignment") -> float:
    r"""Exact squared 2-Wasserstein distance between two empirical measures, SPEC eq. (31).

    .. math::
        W_2^2(\hat\mu, \hat\nu) = \min_{\pi \in \Pi(a, b)} \sum_{ij} \pi_{ij} \|x_i - y_j\|_2^2

    Parameters
    ----------
    x : array (n, D)
    y : array (m, D)
    a : array (n,), optional
        Weights of ``x`` (non-negative, summing to 1); uniform by default. Only with ``method="emd"``.
    b : array (m,), optional
        Weights of ``y``; uniform by default. Only with ``method="emd"``.
    method : {"assignment", "emd"}
        The exact solver, chosen by the caller and never switched behind their back.
        ``"assignment"`` (default): uniform weights and equal sizes ``n = m``, where (31) is the
        assignment problem :math:`\min_\sigma \frac1m \sum_i \|x_i - y_{\sigma(i)}\|^2`, solved
        by :func:`otflow.solve_assignment` (certified, scales to 10⁵ points without the dense
        matrix). ``"emd"``: POT's network simplex (``ot.emd2``) on the dense ``n × m`` cost matrix;
        allows weights and unequal sizes, and is often faster for small problems in low dimension.

    Returns
    -------
    float
        W2² (the cost is not halved and no square root is taken). Both methods give the same
        value up to rounding.

    Raises
    ------
    ValueError
        Weights or unequal sizes with ``method="assignment"``; bad shapes, NaN or inf; a W2² too
        large for float64.

    Examples
    --------
    >>> w2_squared([[0.0], [1.0]], [[2.0], [3.0]])
    4.0
    >>> w2_squared([[0.0], [1.0]], [[2.0]], [0.5, 0.5], method="emd")
    2.5
    """
    if method not in _W2_METHODS:
        raise ValueError(f"method: expected one of {_W2_METHODS}, got {method!r}")
    x = as_points(x, "x").astype(np.float64, copy=False)
    y = as_points(y, "y").astype(np.float64, copy=False)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y: expected the same dimension D, got {x.shape[1]} and {y.shape[1]}")
    if method == "assignment":
        for w, name in ((a, "a"), (b, "b")):
            if w is not None:
                raise ValueError(
                    f"{name}: weights need method='emd' (POT's network simplex); method='assignment' "
                    "solves the uniform, equal-size problem only"
                )
        if x.shape[0] != y.shape[0]:
            raise ValueError(
                f"x and y: method='assignment' needs as many points on each side, got {x.shape[0]} and "
                f"{y.shape[0]}; use method='emd' for unequal sizes"
            )
        s = common_scale(x, y)
        sigma = solve_assignment(x / s, y / s).sigma
        return _mean_sq(x, y[sigma], s, "W2²")
    a = as_weights(a, x.shape[0], "a")
    b = as_weights(b, y.shape[0], "b")
    import ot  # POT, and through it torch: loaded only for this method

    s = common_scale(x, y)
    value = max(ot.emd2(a, b, _sq_dists(x / s, y / s), numItermax=10_000_000), 0.0)
    with np.errstate(over="ignore"):
        value = value * s * s
    return float(check_no_overflow(value, "x and y", "W2²"))
