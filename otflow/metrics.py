"""The paper's metrics on data tracks, SPEC §4-§5.

Tracks are arrays of shape ``(N, L+1, D)``: N samples, the input then the output of each of the
L blocks, D (flattened) features. Per-sample scores return ``(N,)`` arrays; aggregates return a
float. Norms are Euclidean on flattened features; costs are ``‖x − y‖²`` (not halved).

Large tracks (e.g. 10,000 CIFAR images × 11 points × 8,192 features in float32) are processed in
chunks of samples, and reductions run in float64.

No metric returns NaN or inf for finite input. Each track (or pair of points) is first divided by
a power of two at least its largest absolute coordinate, which is exact, so that no square
overflows or underflows: the scale-invariant metrics (LSR, LSS, segment proportions, OTS) are
correct for finite input of any magnitude, and the others are multiplied back and raise
``ValueError`` when their value itself does not fit in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from otflow._numeric import check_no_overflow, pow2_scale
from otflow._validation import as_points, as_scalar, as_tracks, check_pair, check_same_shape, to_numpy
from otflow.assignment import assignment_cost, optimal_assignment

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
    "energy_ratio",
]

_CHUNK_BYTES = 64 * 2**20
_BELOW_ONE_TOL = 1e-9  # LSR/LSS below 1 by more than this is a bug, not rounding


def _per_track(chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each track divided by its own power-of-two scale (coordinates in (-1, 1)), and the scales."""
    scale = pow2_scale(np.abs(chunk).max(axis=(1, 2)))
    return chunk / scale[:, None, None], scale


def _norm(v: np.ndarray, axis: int) -> np.ndarray:
    """Euclidean norm along ``axis`` with no overflow or underflow: rescaled by the largest entry."""
    scale = pow2_scale(np.abs(v).max(axis=axis, keepdims=True))
    return np.linalg.norm(v / scale, axis=axis) * np.squeeze(scale, axis=axis)


def _at_least_one(out: np.ndarray, what: str) -> np.ndarray:
    """Clamp rounding below the exact lower bound 1; a value below ``1 - 1e-9`` is a bug and raises."""
    low = float(out.min())
    if low < 1.0 - _BELOW_ONE_TOL:
        raise RuntimeError(f"{what} = {low!r} < 1 beyond rounding (its lower bound is 1): this is a bug in otflow")
    return np.maximum(out, 1.0)


def _chunks(tracks: np.ndarray):
    per_sample = max(1, tracks.shape[1] * tracks.shape[2] * 8)
    step = max(1, _CHUNK_BYTES // per_sample)
    for start in range(0, tracks.shape[0], step):
        yield start, tracks[start : start + step].astype(np.float64, copy=False)


def _segments(chunk: np.ndarray) -> np.ndarray:
    return np.diff(chunk, axis=1)


def segment_lengths(tracks) -> np.ndarray:
    r"""Lengths :math:`\|x^l - x^{l-1}\|_2` of every segment, shape ``(N, L)``.

    Raises ``ValueError`` if a length does not fit in float64 (coordinates near ``1e308``).
    """
    tracks = as_tracks(tracks)
    out = np.empty((tracks.shape[0], tracks.shape[1] - 1))
    for start, chunk in _chunks(tracks):
        unit, scale = _per_track(chunk)
        with np.errstate(over="ignore"):
            lengths = np.linalg.norm(_segments(unit), axis=2) * scale[:, None]
        out[start : start + len(chunk)] = check_no_overflow(lengths, "tracks", "a segment length")
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
        Equal to 1 exactly for straight, monotone tracks, finite for finite tracks of any
        magnitude (each track is rescaled first). Raises ``ValueError`` for a track whose end
        point equals its start point (the ratio is undefined there). Rounding can put a straight
        track a few ulps below 1, and such values are clamped to 1; a value below ``1 - 1e-9``
        would be a bug and raises ``RuntimeError``.

    Examples
    --------
    >>> line_shape_ratio([[[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]]]).round(4)
    array([1.4142])
    """
    tracks = as_tracks(tracks)
    out = np.empty(tracks.shape[0])
    for start, chunk in _chunks(tracks):
        unit, _ = _per_track(chunk)
        path = np.linalg.norm(_segments(unit), axis=2).sum(1)
        chord = _norm(unit[:, -1] - unit[:, 0], axis=1)
        bad = np.flatnonzero(chord == 0)
        if bad.size:
            raise ValueError(
                f"tracks: LSR is undefined for {bad.size} track(s) whose end point equals the start point "
                f"(first: sample {start + int(bad[0])})"
            )
        with np.errstate(over="ignore"):
            ratio = path / chord
        out[start : start + len(chunk)] = check_no_overflow(ratio, "tracks", "LSR (end point almost at the start)")
    return _at_least_one(out, "LSR")


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
        Finite for finite tracks of any magnitude (each segment is rescaled before it is
        normalised). A track whose unit steps cancel exactly (e.g. one step forward, one back) has
        no finite LSS and raises ``ValueError``. Rounding below 1 is clamped to 1; a value below
        ``1 - 1e-9`` would be a bug and raises ``RuntimeError``.

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
        rescaled, track_scale = _per_track(chunk)
        seg = _segments(rescaled)
        seg_scale = pow2_scale(np.abs(seg).max(axis=2))
        seg = seg / seg_scale[..., None]  # each segment rescaled on its own: no underflow when normalised
        scaled = np.linalg.norm(seg, axis=2)
        if eps is None:
            keep = scaled > 0.0
        else:
            with np.errstate(over="ignore"):
                keep = scaled * seg_scale * track_scale[:, None] > eps  # the true length, inf if it overflows
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
        unit = np.where(keep[..., None], seg / np.where(keep, scaled, 1.0)[..., None], 0.0)
        chord = np.linalg.norm(unit.sum(1), axis=1)
        if (chord == 0).any():
            i = int(np.flatnonzero(chord == 0)[0])
            raise ValueError(
                f"tracks: LSS is undefined (infinite) for sample {start + i}: its unit steps cancel exactly "
                "(the normalised track returns to its start)"
            )
        out[start : start + len(chunk)] = n_seg / chord
    return _at_least_one(out, "LSS")


def segment_proportions(tracks) -> np.ndarray:
    r"""Share of each segment in the track's length (Tables 2-3).

    .. math:: p_l = \frac{\|x^l - x^{l-1}\|}{\sum_j \|x^j - x^{j-1}\|}

    Returns
    -------
    ndarray (N, L)
        Rows sum to 1. Average over axis 0 for the tables. A track of zero length raises.
    """
    tracks = as_tracks(tracks)
    out = np.empty((tracks.shape[0], tracks.shape[1] - 1))
    for start, chunk in _chunks(tracks):
        unit, _ = _per_track(chunk)  # proportions are scale-free: no overflow for any finite track
        lengths = np.linalg.norm(_segments(unit), axis=2)
        total = lengths.sum(1, keepdims=True)
        if (total == 0).any():
            i = int(np.flatnonzero(total[:, 0] == 0)[0])
            raise ValueError(f"tracks: sample {start + i} does not move, so its segment proportions are undefined")
        out[start : start + len(chunk)] = lengths / total
    return out


def transport_energy(tracks) -> float:
    r"""Discrete Benamou–Brenier energy of the tracks, SPEC eq. (12), with step :math:`h = 1/L`.

    .. math::
        \mathcal E_L = L \sum_{l=0}^{L-1} \frac1N \sum_i \|x_i^{l+1} - x_i^l\|^2
        \ \ge\ \frac1N\sum_i \|x_i^L - x_i^0\|^2 \ \ge\ W_2^2(\mu_0, \mu_L)

    with equality throughout exactly for constant-speed straight tracks that realise the optimal
    assignment (the discrete geodesic). Raises ``ValueError`` when the energy overflows float64.

    Examples
    --------
    >>> transport_energy([[[0.0], [1.0], [2.0]]])
    4.0
    """
    tracks = as_tracks(tracks)
    n, p, _ = tracks.shape
    scale = float(pow2_scale(np.abs(tracks).max()))  # exact: the sum of squares cannot overflow
    total = 0.0
    for _, chunk in _chunks(tracks):
        seg = _segments(chunk / scale)
        total += float(np.einsum("nld,nld->", seg, seg))
    with np.errstate(over="ignore"):
        energy = (p - 1) * total / n * scale * scale
    return float(check_no_overflow(energy, "tracks", "the transport energy"))


def _track_pair(a, b) -> tuple[np.ndarray, np.ndarray, tuple]:
    a_arr, b_arr = to_numpy(a, "track_a"), to_numpy(b, "track_b")
    check_same_shape(a_arr, b_arr, "track_a", "track_b")
    if a_arr.ndim not in (2, 3):
        raise ValueError(f"track_a: expected a track (L+1, D) or tracks (N, L+1, D), got shape {a_arr.shape}")
    batch = a_arr.shape[:-2]
    a3 = as_tracks(a_arr.reshape(-1, *a_arr.shape[-2:]), "track_a", min_points=1)
    b3 = as_tracks(b_arr.reshape(-1, *b_arr.shape[-2:]), "track_b", min_points=1)
    return a3, b3, batch


def track_distance(track_a, track_b):
    r"""Distance of two tracks, SPEC eq. (21): the smallest distance between same-index points.

    .. math:: d(\mathrm{Tr}(x), \mathrm{Tr}(x')) = \min_{0 \le l \le L} \|x^l - x'^l\|_2

    Parameters
    ----------
    track_a, track_b : array (L+1, D) or (N, L+1, D)
        Of the same shape.

    Returns
    -------
    ndarray, float64, of the batch shape
        Always an array: shape ``(N,)`` for batches, 0-d (shape ``()``) for two single tracks;
        ``float(d)`` gives the number. Raises ``ValueError`` when a distance overflows float64.

    Examples
    --------
    >>> track_distance([[0.0, 0.0], [1.0, 0.0]], [[0.0, 3.0], [1.0, 2.0]])
    array(2.)
    """
    a, b, batch = _track_pair(track_a, track_b)
    a, b = a.astype(np.float64), b.astype(np.float64)
    scale = pow2_scale(np.maximum(np.abs(a).max(axis=(1, 2)), np.abs(b).max(axis=(1, 2))))[:, None, None]
    with np.errstate(over="ignore"):
        d = np.linalg.norm(a / scale - b / scale, axis=2).min(1) * scale[:, 0, 0]
    return check_no_overflow(d, "track_a and track_b", "their distance").reshape(batch)


def theorem1_bound(x, x2, y, y2):
    r"""Theorem 1's lower bound on the distance of two geodesic tracks, SPEC eq. (23).

    .. math::
        d(\mathrm{Tr}(x), \mathrm{Tr}(x')) \ \ge\ \frac{\|x - x'\|\,\|y - y'\|}{\sqrt{\|x - x'\|^2 + \|y - y'\|^2}}

    where ``y = T(x)`` and ``y2 = T(x2)`` under the OT map ``T``. The bound is 0 when both
    differences vanish.

    Parameters
    ----------
    x, x2, y, y2 : array (D,) or (N, D)
        All of the same shape.

    Returns
    -------
    ndarray, float64, of the batch shape
        Always an array: shape ``(N,)`` for batches, 0-d (shape ``()``) for vectors. Computed as
        :math:`m / \sqrt{1 + (m/M)^2}` with :math:`m, M` the smaller and larger of
        :math:`\|x - x'\|, \|y - y'\|` (the same value, with no overflow); raises ``ValueError``
        when the bound itself overflows float64.

    Examples
    --------
    >>> theorem1_bound([0.0, 0.0], [3.0, 0.0], [0.0, 0.0], [0.0, 4.0])
    array(2.4)
    """
    arrs = [to_numpy(v, n) for v, n in ((x, "x"), (x2, "x2"), (y, "y"), (y2, "y2"))]
    for v, n in zip(arrs[1:], ("x2", "y", "y2")):
        check_same_shape(arrs[0], v, "x", n)
    if arrs[0].ndim not in (1, 2):
        raise ValueError(f"x: expected a point (D,) or points (N, D), got shape {arrs[0].shape}")
    batch = arrs[0].shape[:-1]
    arrs = [as_points(v.reshape(-1, v.shape[-1]), n).astype(np.float64) for v, n in zip(arrs, ("x", "x2", "y", "y2"))]
    with np.errstate(over="ignore"):
        p = _pair_distance(arrs[0], arrs[1])
        q = _pair_distance(arrs[2], arrs[3])
    lo, hi = np.minimum(p, q), np.maximum(p, q)
    ratio = np.divide(lo, hi, out=np.zeros_like(lo), where=hi > 0)  # hi = inf gives 0: bound = lo
    bound = lo / np.sqrt(1.0 + ratio * ratio)
    return check_no_overflow(bound, "x, x2, y, y2", "the bound").reshape(batch)


def _pair_distance(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Row-wise ``‖u_i − v_i‖`` with no overflow in the difference or the squares (inf if it overflows)."""
    scale = pow2_scale(np.maximum(np.abs(u).max(axis=1), np.abs(v).max(axis=1)))
    return np.linalg.norm(u / scale[:, None] - v / scale[:, None], axis=1) * scale


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
    scale : float
        The unit of the costs: they are those of ``x / scale`` and ``y / scale``, so the costs of
        the input are ``cost · scale²``. ``scale`` is 1 unless those would overflow float64 (then a
        power of two that brings the largest coordinate near 1); the score never depends on it.
    """

    score: float
    sigma: np.ndarray
    cost_identity: float
    cost_optimal: float
    scale: float = 1.0

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
        beside OTS: a collapsed map can score 1 (SPEC §8.14). The score and the permutation are
        scale-free and exact at any finite magnitude. Where the mean squared costs would overflow
        float64 (coordinates ``≳ 1e154``) they are reported for the clouds divided by a power of
        two, ``OTScore.scale`` (exact), instead of raising; costs below ``1e-308`` round to 0.

    Examples
    --------
    >>> r = ot_score([[0.0], [1.0]], [[0.1], [1.1]])
    >>> r.score, r.cost_gap
    (1.0, 0.0)
    """
    x, y = check_pair(x, y)
    sigma = optimal_assignment(x, y)  # scale-free: found for finite input of any magnitude
    m = x.shape[0]
    scale = 1.0
    big = max(float(np.abs(x).max()), float(np.abs(y).max()))
    if big > 1e150:  # squared distances would overflow: report costs in units of scale² (exact: a power of 2)
        # 2**e ≥ big (frexp: big < 2**e), capped at 2**1023, the largest power of two in float64
        # (2**1024 overflows); then |x| / scale < 2 and the squared distances stay finite
        scale = float(np.ldexp(1.0, min(int(np.frexp(big)[1]), 1023)))
        x, y = x / scale, y / scale
    return OTScore(
        score=float(np.count_nonzero(sigma == np.arange(m)) / m),
        sigma=sigma,
        cost_identity=assignment_cost(x, y),
        cost_optimal=assignment_cost(x, y, sigma),
        scale=scale,
    )


def energy_ratio(energy: float, w2_squared: float) -> float | None:
    """Transport energy (12) over ``W2²(x⁰, xᴸ)``: 1 on the geodesic, larger on any other path.

    Returns 1.0 for tracks that do not move (both are 0) and None where the ratio is undefined
    (the tracks move but ``W2² = 0``, e.g. the outputs are a permutation of the inputs); never inf.
    The one definition used by :func:`otflow.track_report` and the studies.

    >>> energy_ratio(6.0, 2.0), energy_ratio(0.0, 0.0), energy_ratio(1.0, 0.0)
    (3.0, 1.0, None)
    """
    energy = as_scalar(energy, "energy", low=0.0)
    w2_squared = as_scalar(w2_squared, "w2_squared", low=0.0)
    if w2_squared > 0:
        return energy / w2_squared
    return 1.0 if energy == 0 else None
