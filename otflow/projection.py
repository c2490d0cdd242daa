"""Random linear projections for pictures of high-dimensional tracks (SPEC §5, visualisation)."""

from __future__ import annotations

import numpy as np

from otflow._validation import as_rng, to_numpy

__all__ = ["random_projection_matrix", "random_projection"]


def random_projection_matrix(D: int, dim: int = 2, rng=None) -> np.ndarray:
    r"""A Gaussian matrix :math:`P \in \mathbb R^{D \times \text{dim}}` with :math:`P_{ij} \sim N(0, 1/D)`."""
    for name, v in (("D", D), ("dim", dim)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    return as_rng(rng).standard_normal((int(D), int(dim))) / np.sqrt(D)


def random_projection(tracks, dim: int = 2, rng=None) -> np.ndarray:
    """Project points or tracks ``(..., D)`` to ``(..., dim)`` with one shared Gaussian matrix.

    All points (every sample and every layer) share the same projection, so straight tracks stay
    straight and constant-speed tracks keep their pace. The same ``rng`` seed and ``D`` give the
    same matrix, so two arrays can be drawn in the same frame.

    Examples
    --------
    >>> random_projection(np.zeros((4, 6, 100)), dim=2, rng=0).shape
    (4, 6, 2)
    """
    arr = to_numpy(tracks, "tracks")
    if arr.ndim < 1 or arr.size == 0:
        raise ValueError(f"tracks: expected a non-empty array of shape (..., D), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("tracks: contains NaN or inf")
    P = random_projection_matrix(arr.shape[-1], dim, rng)
    return arr.astype(np.float64, copy=False) @ P
