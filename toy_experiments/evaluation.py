r"""Score tracks against exact optimal transport: everything measured for one run of the study.

Cost ``‖x − y‖²`` (not halved). Given a net's tracks ``(N, L+1, D)`` on held-out points ``x = x^0``
and the exact OT map ``T*`` at those points, :func:`evaluate_tracks` returns

* LSR, LSS, segment proportions, transport energy (:func:`otflow.track_report`);
* OTS of the pairing ``x^0_i → x^L_i``, its cost gap, ``W2²(x^0, x^L)`` and the energy ratio
  ``energy / W2²(x^0, x^L)`` (≥ 1, = 1 exactly on the discrete geodesic);
* ``map_sq_dist = mean_i ‖x^L_i − T*(x^0_i)‖²`` and ``map_uvp = 100 · map_sq_dist / tr Cov(target)``
  in percent (the L2-UVP of the Wasserstein-2 benchmark, Korotin et al. 2021);
* ``theorem1_share``: the share of sample pairs whose track distance (21) is at least the Theorem 1
  bound (23) computed with ``T*``: 1 on the geodesic of ``T*``;
* with a target sample ``y``, the fit ``w2sq_to_target = W2²(x^L, y)`` and, given the sampling floor
  ``w2sq_floor`` (W2² of two independent target samples of this size), the excess ratio
  ``fit_ratio = (w2sq_to_target − w2sq_floor) / (W2²(x^0, y) − w2sq_floor)``: 0 for a perfect push-forward
  (up to sampling noise), 1 for a net that does not move the data closer to the target.

Where ``T*`` is not given (classification), the exact map is the optimal assignment from the inputs
to the net's own outputs, ``T*(x^0_i) = x^L_{σ*(i)}``, and the target variance is that of the outputs.
"""

from __future__ import annotations

import numpy as np

import otflow

__all__ = ["evaluate_tracks", "theorem1_share", "lifted_weights", "energy_bound_fields", "w2_squared_simplex"]


def w2_squared_simplex(x, y) -> float:
    """Exact ``W2²`` between two uniform samples, by :func:`otflow.w2_squared` with
    ``method="emd"``, POT's exact network simplex (``ot.emd2``): the same value as the assignment
    problem, and several times faster in 2-D (where only the value is needed, not the
    permutation)."""
    return otflow.w2_squared(x, y, method="emd")


def theorem1_share(tracks: np.ndarray, tx: np.ndarray, pairs: np.ndarray, *, rtol: float = 1e-9) -> float:
    """Share of the index pairs ``pairs`` (P, 2) whose track distance meets the Theorem 1 bound.

    The bound uses the exact OT map ``tx = T*(x^0)``; ``rtol`` absorbs rounding on exact geodesics.
    """
    i, j = pairs[:, 0], pairs[:, 1]
    d = otflow.track_distance(tracks[i], tracks[j])
    b = otflow.theorem1_bound(tracks[i, 0], tracks[j, 0], tx[i], tx[j])
    return float(np.mean(d >= b * (1.0 - rtol)))


def evaluate_tracks(
    tracks,
    *,
    tx=None,
    y=None,
    target_var: float | None = None,
    w2sq_floor: float = 0.0,
    w2sq_source_target: float | None = None,
    pairs: np.ndarray,
    lss_eps: float = 1e-12,
) -> dict:
    """All track metrics of one run; see the module docstring. Returns a flat dict of floats.

    Parameters
    ----------
    tracks : array (N, L+1, D)
    tx : array (N, D), optional
        The exact OT map at ``tracks[:, 0]``; by default the optimal assignment onto ``tracks[:, -1]``.
    y : array (N, D), optional
        An independent target sample, for the fit.
    w2sq_floor : float
        W2² between two independent target samples of size N (the fit of a perfect map).
    w2sq_source_target : float, optional
        ``W2²(tracks[:, 0], y)``, if already known (it is the same for every net on the same inputs).
    target_var : float, optional
        ``tr Cov`` of the target law, the L2-UVP normaliser (default: total variance of ``tx``).
    pairs : int array (P, 2)
        Index pairs for the Theorem 1 share.
    lss_eps : float
        Segments shorter than this are dropped in LSS (a block that leaves a point exactly in place).
    """
    tracks = np.asarray(tracks, dtype=np.float64)
    x0, xl = tracks[:, 0], tracks[:, -1]
    rep = otflow.track_report(tracks, with_ot=False, eps=lss_eps)
    ots = otflow.ot_score(x0, xl)
    w2sq = ots.cost_optimal
    energy = rep.transport_energy
    ratio = otflow.energy_ratio(energy, w2sq)  # None where undefined (moved, but W2² = 0)
    if tx is None:
        tx = xl[ots.sigma]
    tx = np.asarray(tx, dtype=np.float64)
    if target_var is None:
        target_var = float(np.trace(np.cov(tx.T, bias=True)))
    map_sq = float(np.mean(np.sum((xl - tx) ** 2, axis=1)))
    out = {
        "lsr": rep.lsr,
        "lss": rep.lss,
        "segment_proportions": list(rep.segment_proportions),
        "transport_energy": energy,
        "displacement_sq": rep.displacement_sq,
        "w2sq_in_out": w2sq,
        "energy_ratio": ratio,
        "ots": ots.score,
        "ot_cost_gap": ots.cost_gap,
        "map_sq_dist": map_sq,
        "map_uvp": 100.0 * map_sq / target_var if target_var > 0 else float("inf"),
        "theorem1_share": theorem1_share(tracks, tx, pairs),
    }
    if y is not None:
        w2sq_t = w2_squared_simplex(xl, y)
        w2sq_start = w2_squared_simplex(x0, y) if w2sq_source_target is None else w2sq_source_target
        out["w2sq_to_target"] = w2sq_t
        out["fit_ratio"] = (w2sq_t - w2sq_floor) / (w2sq_start - w2sq_floor)
    return out


def lifted_weights(W1, b1, W2, b2, *, residual: bool) -> tuple[np.ndarray, np.ndarray]:
    r"""Blocks with biases written as bias-free blocks on :math:`\tilde x = (x, 1)`.

    :math:`\tilde W_1 = \begin{pmatrix} W_1 & b_1 \\ 0 & 1\end{pmatrix}` and
    :math:`\tilde W_2 = \begin{pmatrix} W_2 & b_2 \\ 0 & r\end{pmatrix}` with :math:`r = 0` (residual)
    or 1 (plain) give :math:`\tilde W_2\sigma(\tilde W_1 \tilde x) = (W_2\sigma(W_1x+b_1)+b_2,\ r)`, so the
    lifted net maps ``(x, 1)`` to ``(x', 1)`` with the same tracks; :func:`otflow.energy_bounds` then
    applies to it (the bias-free form of SPEC (13)), with :math:`\|\tilde x\|^2 = \|x\|^2 + 1`.
    """
    W1, b1, W2, b2 = (np.asarray(a, dtype=np.float64) for a in (W1, b1, W2, b2))
    h, d = W1.shape
    w1 = np.zeros((h + 1, d + 1))
    w1[:h, :d], w1[:h, d], w1[h, d] = W1, b1, 1.0
    w2 = np.zeros((d + 1, h + 1))
    w2[:d, :h], w2[:d, h], w2[d, h] = W2, b2, 0.0 if residual else 1.0
    return w1, w2


def energy_bound_fields(weights, tracks, *, residual: bool, lifted: bool) -> dict:
    """Right-hand sides of (13)-(16) next to the measured energy (``weights`` as for energy_bounds).

    With ``lifted`` the weights are lifted pairs and the tracks get a constant last coordinate 1.
    """
    tracks = np.asarray(tracks, dtype=np.float64)
    if lifted:
        tracks = np.concatenate([tracks, np.ones((*tracks.shape[:2], 1))], axis=2)
    eb = otflow.energy_bounds(weights, tracks, residual=residual)
    energy = otflow.transport_energy(tracks)
    return {
        "bound_form": "lifted (x, 1)" if lifted else "bias-free (13)",
        "bound_spectral": eb.spectral,
        "bound_frobenius": eb.frobenius,
        "bound_penalty_form": eb.penalty_form,
        "bound_constant_term": eb.constant_term,
        "bound_weight_penalty": eb.penalty,
        "energy_within_bounds": bool(energy <= eb.spectral * (1 + 1e-9) + 1e-12),
    }
