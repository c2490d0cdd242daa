"""Null models for the track metrics: what LSS, LSR, OTS and the energy ratio give without transport.

A metric value is evidence only beside what it would be for tracks that carry no optimal-transport
structure. Three references matter, and in high dimension they sit far from the values a 2-D
picture suggests:

* **Geodesic** (every sample on a straight, evenly paced line): LSS = LSR = energy ratio = 1.
* **Random walk** (independent, isotropic steps): in dimension D → ∞ the unit steps are orthogonal,
  so ``‖Σ_l u_l‖ = √L`` and LSS = LSR = √L; the energy is ``L Σ_l ‖Δ^l‖²`` against the squared
  displacement ``‖Σ_l Δ^l‖² = Σ_l ‖Δ^l‖²``, a ratio of L.
* **Independent layers** (each ``x^l`` drawn afresh, independent of ``x^{l-1}``): the steps
  telescope, ``Σ_l Δ^l = x^L − x^0``, and in high dimension every step is as long as the chord, so
  LSS = LSR = L and the energy is ``L² ‖x^L − x^0‖²``, a ratio of L².

:func:`null_references` gives these limits for a number of segments L; :func:`random_walk_tracks`
and :func:`independent_layer_tracks` draw tracks of both null models at a finite dimension, where
the limits are approached from above (LSS ≥ √L by Jensen's inequality). :func:`shuffled_displacements`
is the data-driven null: it keeps every step vector a network made and breaks the link between a
sample and its steps. The energy ratios above are relative to the squared displacement
``E‖x^L − x^0‖²``; they equal the ratio to W2² when the identity is the optimal pairing (OTS = 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from otflow._validation import as_rng, as_tracks

__all__ = [
    "NullReferences",
    "null_references",
    "shuffled_displacements",
    "random_walk_tracks",
    "independent_layer_tracks",
]


@dataclass(frozen=True)
class NullReferences:
    """Analytic reference values of the track metrics for ``n_segments`` = L segments.

    Attributes
    ----------
    n_segments : int
    geodesic : float
        LSS, LSR and energy ratio of straight, evenly paced tracks: 1.
    random_walk : float
        LSS and LSR of independent isotropic steps as D → ∞: √L.
    independent_layers : float
        LSS and LSR of independent layer positions as D → ∞: L.
    energy_ratio_random_walk : float
        ``E_L / E‖x^L − x^0‖²`` for equal-length orthogonal steps: L.
    energy_ratio_independent_layers : float
        The same for independent positions with equal spread: L².
    """

    n_segments: int
    geodesic: float
    random_walk: float
    independent_layers: float
    energy_ratio_random_walk: float
    energy_ratio_independent_layers: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _check_segments(n_segments) -> int:
    if isinstance(n_segments, bool) or not isinstance(n_segments, (int, np.integer)) or n_segments < 1:
        raise ValueError(f"n_segments: expected a positive integer, got {n_segments!r}")
    return int(n_segments)


def null_references(n_segments: int) -> NullReferences:
    """The geodesic (1), random-walk (√L) and independent-layer (L) references for L segments.

    Examples
    --------
    >>> r = null_references(4)
    >>> (r.geodesic, r.random_walk, r.independent_layers, r.energy_ratio_independent_layers)
    (1.0, 2.0, 4.0, 16.0)
    """
    L = _check_segments(n_segments)
    return NullReferences(
        n_segments=L,
        geodesic=1.0,
        random_walk=math.sqrt(L),
        independent_layers=float(L),
        energy_ratio_random_walk=float(L),
        energy_ratio_independent_layers=float(L * L),
    )


def shuffled_displacements(tracks, rng=None) -> np.ndarray:
    r"""Tracks rebuilt from the same step vectors, each segment's steps shuffled across samples.

    For every segment l an independent random permutation :math:`\pi_l` of the samples is drawn and

    .. math::
        \tilde x_i^0 = x_i^0,\qquad \tilde x_i^l = \tilde x_i^{l-1} + (x^l - x^{l-1})_{\pi_l(i)} .

    The set of step vectors of every segment is kept (so the transport energy (12) is unchanged),
    while the link between consecutive steps of one sample, and between a sample and where it is
    sent, is broken. A network whose LSS, OTS or energy ratio is no better than on these tracks
    shows no sample-specific organisation beyond the steps' common lengths and directions.

    Parameters
    ----------
    tracks : array (N, L+1, D)
    rng : seed or numpy Generator
        Draws the L permutations, in segment order.

    Returns
    -------
    ndarray (N, L+1, D), float64
    """
    tracks = as_tracks(tracks)
    rng = as_rng(rng)
    n = tracks.shape[0]
    steps = np.diff(tracks.astype(np.float64, copy=False), axis=1)
    for l in range(steps.shape[1]):
        steps[:, l] = steps[rng.permutation(n), l]
    out = np.empty(tracks.shape, dtype=np.float64)
    out[:, 0] = tracks[:, 0]
    np.cumsum(steps, axis=1, out=out[:, 1:])
    out[:, 1:] += out[:, :1]
    return out


def _check_sizes(n, n_segments, dim) -> tuple[int, int, int]:
    L = _check_segments(n_segments)
    for name, v in (("n", n), ("dim", dim)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    return int(n), L, int(dim)


def random_walk_tracks(n: int, n_segments: int, dim: int, rng=None) -> np.ndarray:
    """``n`` random-walk tracks in ``dim`` dimensions: L independent N(0, I/dim) steps from 0.

    Their mean LSS decreases towards ``null_references(L).random_walk = √L`` as ``dim`` grows.
    """
    n, L, dim = _check_sizes(n, n_segments, dim)
    steps = as_rng(rng).normal(scale=1 / math.sqrt(dim), size=(n, L, dim))
    out = np.zeros((n, L + 1, dim))
    np.cumsum(steps, axis=1, out=out[:, 1:])
    return out


def independent_layer_tracks(n: int, n_segments: int, dim: int, rng=None) -> np.ndarray:
    """``n`` tracks whose L+1 points are independent N(0, I/dim) draws (layers that forget their input).

    Their mean LSS approaches ``null_references(L).independent_layers = L`` as ``dim`` grows.
    """
    n, L, dim = _check_sizes(n, n_segments, dim)
    return as_rng(rng).normal(scale=1 / math.sqrt(dim), size=(n, L + 1, dim))
