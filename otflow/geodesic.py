"""The Wasserstein geodesic between two samples: displacement interpolation, SPEC eqs. (9)-(10).

Each point moves on the straight line :math:`x_t = (1-t)\\,x + t\\,T(x)` at constant speed, with
:math:`T` the exact optimal assignment (cost ``‖x − y‖²``).
"""

from __future__ import annotations

import numpy as np

from otflow._validation import as_scalar, check_pair, check_permutation
from otflow.assignment import optimal_assignment

__all__ = ["displacement_interpolation", "geodesic_tracks"]


def _paired(x, y, sigma):
    x, y = check_pair(x, y)
    if sigma is None:
        sigma = optimal_assignment(x, y)
    else:
        sigma = check_permutation(sigma, x.shape[0])
    return x, y[sigma]


def displacement_interpolation(x, y, t, *, sigma=None) -> np.ndarray:
    r"""Points of the OT geodesic between the empirical measures of ``x`` and ``y`` at time ``t``.

    .. math:: x_t^i = (1 - t)\, x_i + t\, y_{\sigma^*(i)},\qquad t \in [0, 1]

    Parameters
    ----------
    x, y : array (m, D)
    t : float in [0, 1]
    sigma : array (m,), optional
        The pairing to use; by default the exact optimal assignment is solved.

    Returns
    -------
    ndarray (m, D), in the order of ``x``.

    Examples
    --------
    >>> displacement_interpolation([[0.0], [1.0]], [[3.0], [2.0]], 0.5)
    array([[1.],
           [2.]])
    """
    t = as_scalar(t, "t", low=0.0, high=1.0)
    x, yp = _paired(x, y, sigma)
    return (1.0 - t) * x + t * yp


def geodesic_tracks(x, y, n_steps: int, *, sigma=None) -> np.ndarray:
    r"""Whole tracks along the OT geodesic: ``n_steps`` equal steps from ``x_i`` to ``y_{σ*(i)}``.

    .. math:: x_i^l = (1 - l/L)\, x_i + (l/L)\, y_{\sigma^*(i)},\qquad l = 0, \dots, L = \text{n\_steps}

    Returns
    -------
    ndarray (m, n_steps + 1, D)
        LSR = LSS = 1 and ``transport_energy == w2_squared(x, y)`` on these tracks.
    """
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"n_steps: expected a positive integer, got {n_steps!r}")
    x, yp = _paired(x, y, sigma)
    t = np.linspace(0.0, 1.0, n_steps + 1)[None, :, None]
    return (1.0 - t) * x[:, None, :] + t * yp[:, None, :]
