"""The paper's metrics on data tracks, SPEC §4-§5.

Tracks are arrays of shape ``(N, L+1, D)``: N samples, the input then the output of each of the
L blocks, D (flattened) features. Per-sample scores return ``(N,)`` arrays; aggregates return a
float. Norms are Euclidean on flattened features; costs are ``‖x − y‖²`` (not halved).

Large tracks (e.g. 10,000 CIFAR images × 11 points × 8,192 features in float32) are processed in
chunks of samples, and reductions run in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from otflow._validation import as_points, as_scalar, as_tracks, check_pair, check_same_shape, to_numpy
from otflow.assignment import optimal_assignment

__all__ = [
    "segment_lengths",
    "line_shape_ratio",
    "line_shape_score",
    "segment_proportions",
    "transport_energy",
    "track_distance",
    "theorem1_bound",
    "OTScore",
    "ot_score",
]

_CHUNK_BYTES = 64 * 2**20


def _chunks(tracks: np.ndarray):
    per_sample = max(1, tracks.shape[1] * tracks.shape[2] * 8)
    step = max(1, _CHUNK_BYTES // per_sample)
    for start in range(0, tracks.shape[0], step):
        yield start, tracks[start : start + step].astype(np.float64, copy=False)


def _segments(chunk: np.ndarray) -> np.ndarray:
    return np.diff(chunk, axis=1)


def segment_lengths(tracks) -> np.ndarray:
    r"""Lengths :math:`\|x^l - x^{l-1}\|_2` of every segment, shape ``(N, L)``."""
    tracks = as_tracks(tracks)
    out = np.empty((tracks.shape[0], tracks.shape[1] - 1))
    for start, chunk in _chunks(tracks):
        out[start : start + len(chunk)] = np.linalg.norm(_segments(chunk), axis=2)
    return out


def line_shape_ratio(tracks) -> np.ndarray:
    r"""Line-shape ratio per sample, SPEC eq. (28).

    .. math::
        \mathrm{LSR}(x) = \frac{\sum_{l=1}^{L} \|x^l - x^{l-1}\|}{\|x^L - x^0\|} \ \ge 1

    Parameters
    ----------
    tracks : array (N, L+1, D)

    Returns
    -------
    ndarray (N,)
        Equal to 1 exactly for straight, monotone tracks. Raises ``ValueError`` for a track whose
        end point equals its start point (the ratio is undefined there).

    Examples
    --------
    >>> line_shape_ratio([[[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]]]).round(4)
    array([1.4142])
    """
    tracks = as_tracks(tracks)
    out = np.empty(tracks.shape[0])
    for start, chunk in _chunks(tracks):
        path = np.linalg.norm(_segments(chunk), axis=2).sum(1)
        chord = np.linalg.norm(chunk[:, -1] - chunk[:, 0], axis=1)
        bad = np.flatnonzero(chord == 0)
        if bad.size:
            raise ValueError(
                f"tracks: LSR is undefined for {bad.size} track(s) whose end point equals the start point "
                f"(first: sample {start + int(bad[0])})"
            )
        out[start : start + len(chunk)] = path / chord
    # rounding can put a straight track a few ulps below its true value of 1
    return np.maximum(out, 1.0)


def line_shape_score(tracks, *, eps: float | None = None) -> np.ndarray:
    r"""Line-shape score per sample, SPEC eqs. (29)-(30): the LSR of the track whose segments
    are all rescaled to unit length.

    .. math::
        \tilde x^0 = x^0,\quad \tilde x^l = \tilde x^{l-1} + \frac{x^l - x^{l-1}}{\|x^l - x^{l-1}\|},\qquad
        \mathrm{LSS}(x) = \frac{L}{\|\tilde x^L - \tilde x^0\|} \ \ge 1

    LSS is 1 iff every segment points the same way. It is invariant to rotation, translation,
    global scaling and any per-segment positive rescaling (LSR is not).

    Parameters
    ----------
    tracks : array (N, L+1, D)
    eps : float, optional
        A zero-length segment makes (29) undefined, and by default raises ``ValueError``. With
        ``eps`` set, segments shorter than ``eps`` are dropped and ``L`` counts the remaining ones
        (SPEC §5); a track with no segment left still raises.

    Returns
    -------
    ndarray (N,)
        ``inf`` for a track whose unit steps cancel exactly (e.g. one step forward, one back).

    Examples
    --------
    >>> line_shape_score([[[0.0, 0.0], [1.0, 0.0], [1.0, 5.0]]]).round(4)
    array([1.4142])
    """
    tracks = as_tracks(tracks)
    if eps is not None:
        eps = as_scalar(eps, "eps", low=0.0)
    out = np.empty(tracks.shape[0])
    for start, chunk in _chunks(tracks):
        seg = _segments(chunk)
        length = np.linalg.norm(seg, axis=2)
        keep = length > (0.0 if eps is None else eps)
        if eps is None and not keep.all():
            i, l = np.argwhere(~keep)[0]
            raise ValueError(
                f"tracks: LSS is undefined for a zero-length segment (sample {start + int(i)}, segment {int(l) + 1}); "
                "pass eps > 0 to drop such segments"
            )
        n_seg = keep.sum(1)
        if (n_seg == 0).any():
            i = int(np.flatnonzero(n_seg == 0)[0])
            raise ValueError(f"tracks: sample {start + i} has no segment longer than eps={eps}")
        unit = np.where(keep[..., None], seg / np.where(keep, length, 1.0)[..., None], 0.0)
        chord = np.linalg.norm(unit.sum(1), axis=1)
        with np.errstate(divide="ignore"):
            out[start : start + len(chunk)] = np.where(chord > 0, n_seg / np.where(chord > 0, chord, 1.0), np.inf)
    # rounding can put a straight track a few ulps below its true value of 1
    return np.maximum(out, 1.0)


def segment_proportions(tracks) -> np.ndarray:
    r"""Share of each segment in the track's length (Tables 2-3).

    .. math:: p_l = \frac{\|x^l - x^{l-1}\|}{\sum_j \|x^j - x^{j-1}\|}

    Returns
    -------
    ndarray (N, L)
        Rows sum to 1. Average over axis 0 for the tables. A track of zero length raises.
    """
    lengths = segment_lengths(tracks)
    total = lengths.sum(1, keepdims=True)
    if (total == 0).any():
        i = int(np.flatnonzero(total[:, 0] == 0)[0])
        raise ValueError(f"tracks: sample {i} does not move, so its segment proportions are undefined")
    return lengths / total


def transport_energy(tracks) -> float:
    r"""Discrete Benamou–Brenier energy of the tracks, SPEC eq. (12), with step :math:`h = 1/L`.

    .. math::
        \mathcal E_L = L \sum_{l=0}^{L-1} \frac1N \sum_i \|x_i^{l+1} - x_i^l\|^2
        \ \ge\ \frac1N\sum_i \|x_i^L - x_i^0\|^2 \ \ge\ W_2^2(\mu_0, \mu_L)

    with equality throughout exactly for constant-speed straight tracks that realise the optimal
    assignment (the discrete geodesic).

    Examples
    --------
    >>> transport_energy([[[0.0], [1.0], [2.0]]])
    4.0
    """
    tracks = as_tracks(tracks)
    n, p, _ = tracks.shape
    total = 0.0
    for _, chunk in _chunks(tracks):
        seg = _segments(chunk)
        total += float(np.einsum("nld,nld->", seg, seg))
    return (p - 1) * total / n


def _track_pair(a, b) -> tuple[np.ndarray, np.ndarray, bool]:
    a_arr = to_numpy(a, "track_a")
    single = a_arr.ndim == 2
    a3 = as_tracks(a_arr[None] if single else a_arr, "track_a", min_points=1)
    b_arr = to_numpy(b, "track_b")
    b3 = as_tracks(b_arr[None] if b_arr.ndim == 2 else b_arr, "track_b", min_points=1)
    check_same_shape(a3, b3, "track_a", "track_b")
    return a3, b3, single


def track_distance(track_a, track_b):
    r"""Distance of two tracks, SPEC eq. (21): the smallest distance between same-index points.

    .. math:: d(\mathrm{Tr}(x), \mathrm{Tr}(x')) = \min_{0 \le l \le L} \|x^l - x'^l\|_2

    Parameters
    ----------
    track_a, track_b : array (L+1, D) or (N, L+1, D)

    Returns
    -------
    float for single tracks, ndarray (N,) for batches.
    """
    a, b, single = _track_pair(track_a, track_b)
    d = np.linalg.norm(a.astype(np.float64) - b.astype(np.float64), axis=2).min(1)
    return float(d[0]) if single else d


def theorem1_bound(x, x2, y, y2):
    r"""Theorem 1's lower bound on the distance of two geodesic tracks, SPEC eq. (23).

    .. math::
        d(\mathrm{Tr}(x), \mathrm{Tr}(x')) \ \ge\ \frac{\|x - x'\|\,\|y - y'\|}{\sqrt{\|x - x'\|^2 + \|y - y'\|^2}}

    where ``y = T(x)`` and ``y2 = T(x2)`` under the OT map ``T``. The bound is 0 when both
    differences vanish.

    Parameters
    ----------
    x, x2, y, y2 : array (D,) or (N, D)

    Returns
    -------
    float for vectors, ndarray (N,) for batches.
    """
    arrs = [to_numpy(v, n) for v, n in ((x, "x"), (x2, "x2"), (y, "y"), (y2, "y2"))]
    single = arrs[0].ndim == 1
    arrs = [as_points(v[None] if v.ndim == 1 else v, n) for v, n in zip(arrs, ("x", "x2", "y", "y2"))]
    for v, n in zip(arrs[1:], ("x2", "y", "y2")):
        check_same_shape(arrs[0], v, "x", n)
    a = np.sum((arrs[0] - arrs[1]) ** 2, axis=1)
    b = np.sum((arrs[2] - arrs[3]) ** 2, axis=1)
    s = a + b
    bound = np.sqrt(np.divide(a * b, s, out=np.zeros_like(s), where=s > 0))
    return float(bound[0]) if single else bound


@dataclass(frozen=True)
class OTScore:
    """Result of :func:`ot_score`.

    Attributes
    ----------
    score : float
        OTS, eq. (33): the fraction of ``i`` with ``sigma[i] == i``.
    sigma : ndarray (m,)
        The optimal permutation found by the solver.
    cost_identity : float
        Mean cost of the network's own pairing, :math:`\\frac1m\\sum_i\\|x_i - y_i\\|^2`.
    cost_optimal : float
        Mean cost of the optimal pairing, i.e. :math:`W_2^2` of the two empirical measures.
    """

    score: float
    sigma: np.ndarray
    cost_identity: float
    cost_optimal: float

    @property
    def cost_gap(self) -> float:
        """``cost_identity − cost_optimal ≥ 0``; 0 iff the network's pairing is *an* optimal one
        (OTS can be below 1 with a zero gap when optima tie, SPEC §8.5)."""
        return max(self.cost_identity - self.cost_optimal, 0.0)

    @property
    def m(self) -> int:
        return int(self.sigma.shape[0])


def ot_score(x, y) -> OTScore:
    r"""Optimal-transport score of the pairing ``x_i → y_i``, SPEC eqs. (32)-(33).

    .. math::
        \mathrm{OTS} = \frac1m \#\{i : \sigma^*(i) = i\},\qquad
        \sigma^* = \arg\min_\sigma \sum_i \|x_i - y_{\sigma(i)}\|^2

    Parameters
    ----------
    x : array (m, D)
        Inputs of a stage (``x^0`` of the tracks).
    y : array (m, D)
        Their images under the network (``x^L``).

    Returns
    -------
    OTScore
        With the score, the optimal permutation and the cost gap. Always report the task fit
        beside OTS: a collapsed map can score 1 (SPEC §8.14).

    Examples
    --------
    >>> r = ot_score([[0.0], [1.0]], [[0.1], [1.1]])
    >>> r.score, r.cost_gap
    (1.0, 0.0)
    """
    x, y = check_pair(x, y)
    sigma = optimal_assignment(x, y)
    m = x.shape[0]
    d_id = x - y
    d_opt = x - y[sigma]
    return OTScore(
        score=float(np.count_nonzero(sigma == np.arange(m)) / m),
        sigma=sigma,
        cost_identity=float(np.einsum("ij,ij->", d_id, d_id) / m),
        cost_optimal=float(np.einsum("ij,ij->", d_opt, d_opt) / m),
    )
