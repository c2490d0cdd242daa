r"""Upper bounds on the transport energy from the weights, SPEC eqs. (13)-(16).

For blocks :math:`f_l(x) = W_{l,2}\,\sigma(W_{l,1} x)` with ReLU :math:`\sigma` and no bias,

* residual, :math:`x_{l+1} = x_l + f_l(x_l)`:
  :math:`\|x_{l+1} - x_l\| \le \|W_{l,2}\|_2 \|W_{l,1}\|_2 \|x_l\| \le \|W_{l,2}\|_F \|W_{l,1}\|_F \|x_l\|`  (13), so

  .. math:: \mathcal E_L \le L \sum_l \|W_{l,2}\|_F^2 \|W_{l,1}\|_F^2\, \mathbb E\|x_l\|^2
            \le C L \sum_l \big(\|W_{l,1}\|_F^2 + \|W_{l,2}\|_F^2\big),\quad C = \tfrac12 B^2 M^2   (14)

* plain, :math:`x_{l+1} = W_{l,2}\,\sigma(W_{l,1} x_l)`:
  :math:`\|x_{l+1} - x_l\|^2 \le 2\|W_{l,2}\|_F^2\|W_{l,1}\|_F^2\|x_l\|^2 + 2\|x_l\|^2`  (15), so

  .. math:: \mathcal E_L \le 2 C L \sum_l \big(\|W_{l,1}\|_F^2 + \|W_{l,2}\|_F^2\big) + 2 L^2 B^2   (16)

with :math:`B^2 = \max_l \mathbb E\|x_l\|^2` over the layers' inputs and
:math:`M = \max_l \max(\|W_{l,1}\|_F, \|W_{l,2}\|_F)` (SPEC §2 assumptions; the constants are a
reconstruction, see docs/theory.md). Expectations are empirical means over the recorded tracks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from otflow._validation import as_tracks, to_numpy

__all__ = ["EnergyBounds", "energy_bounds"]


@dataclass(frozen=True)
class EnergyBounds:
    """Right-hand sides of (13)-(16), from the tightest to the loosest.

    Attributes
    ----------
    residual : bool
        Which network the bounds are for.
    spectral : float
        :math:`L\\sum_l \\|W_{l,2}\\|_2^2\\|W_{l,1}\\|_2^2\\,\\mathbb E\\|x_l\\|^2` (residual) or twice that
        plus :math:`2L\\sum_l\\mathbb E\\|x_l\\|^2` (plain): eq. (13)/(15) with spectral norms.
    frobenius : float
        The same with Frobenius norms, eq. (13)/(15).
    penalty_form : float
        Eq. (14) (residual) or (16) (plain): ``C·L·penalty`` (times 2, plus ``constant_term``, for plain).
    constant_term : float
        :math:`2L^2B^2` for the plain net, 0 for the residual net: the part that no weight decay removes.
    penalty : float
        :math:`\\sum_l \\|W_{l,1}\\|_F^2 + \\|W_{l,2}\\|_F^2`, the weight-decay penalty of the blocks.
    B2, M, C : float
        The constants of the assumptions, :math:`C = B^2 M^2 / 2`.
    """

    residual: bool
    spectral: float
    frobenius: float
    penalty_form: float
    constant_term: float
    penalty: float
    B2: float
    M: float
    C: float


def _pairs(weights) -> list[tuple[np.ndarray, np.ndarray]]:
    pairs = []
    try:
        items = list(weights)
    except TypeError:
        raise ValueError("weights: expected a sequence of (W1, W2) pairs") from None
    if not items:
        raise ValueError("weights: expected at least one (W1, W2) pair")
    for l, item in enumerate(items):
        try:
            w1, w2 = item
        except (TypeError, ValueError):
            raise ValueError(f"weights[{l}]: expected a pair (W1, W2)") from None
        w1 = to_numpy(w1, f"weights[{l}][0]", dtype=np.float64)
        w2 = to_numpy(w2, f"weights[{l}][1]", dtype=np.float64)
        if w1.ndim != 2 or w2.ndim != 2 or w2.shape[1] != w1.shape[0] or w2.shape[0] != w1.shape[1]:
            raise ValueError(
                f"weights[{l}]: expected W1 of shape (h, D) and W2 of shape (D, h), got {w1.shape} and {w2.shape}"
            )
        if not (np.isfinite(w1).all() and np.isfinite(w2).all()):
            raise ValueError(f"weights[{l}]: contains NaN or inf")
        pairs.append((w1, w2))
    return pairs


def energy_bounds(weights, tracks, *, residual: bool = True) -> EnergyBounds:
    """Evaluate bounds (13)-(16) for blocks ``W2 σ(W1 x)`` on recorded tracks.

    Parameters
    ----------
    weights : sequence of L pairs ``(W1, W2)``
        ``W1`` of shape (h, D), ``W2`` of shape (D, h) (``nn.Linear.weight`` layout), numpy or torch.
    tracks : array (N, L+1, D)
        The network's tracks on the data; :math:`\\mathbb E\\|x_l\\|^2` is their mean squared norm at
        each layer input ``l = 0..L-1``.
    residual : bool
        Residual blocks ``x + f(x)`` (eq. (14)) or plain blocks ``f(x)`` (eq. (16)).

    Returns
    -------
    EnergyBounds
        Each field bounds :func:`otflow.transport_energy` of the tracks from above, provided the
        tracks were produced by exactly these bias-free ReLU blocks.
    """
    pairs = _pairs(weights)
    tracks = as_tracks(tracks)
    n_blocks = len(pairs)
    if tracks.shape[1] != n_blocks + 1:
        raise ValueError(
            f"tracks: expected L+1 = {n_blocks + 1} points per track for {n_blocks} blocks, got shape {tracks.shape}"
        )
    if pairs[0][0].shape[1] != tracks.shape[2]:
        raise ValueError(f"weights: W1 has {pairs[0][0].shape[1]} columns but the tracks have D = {tracks.shape[2]}")
    x_in = tracks[:, :-1].astype(np.float64, copy=False)
    second = np.einsum("nld,nld->l", x_in, x_in) / tracks.shape[0]  # E‖x_l‖², l = 0..L-1
    fro1 = np.array([np.sum(w1**2) for w1, _ in pairs])
    fro2 = np.array([np.sum(w2**2) for _, w2 in pairs])
    spec1 = np.array([np.linalg.norm(w1, 2) ** 2 for w1, _ in pairs])
    spec2 = np.array([np.linalg.norm(w2, 2) ** 2 for _, w2 in pairs])
    L = n_blocks
    B2 = float(second.max())
    M = float(np.sqrt(max(fro1.max(), fro2.max())))
    C = 0.5 * B2 * M**2
    penalty = float(np.sum(fro1 + fro2))
    if residual:
        spectral = L * float(np.sum(spec1 * spec2 * second))
        frobenius = L * float(np.sum(fro1 * fro2 * second))
        constant = 0.0
        penalty_form = C * L * penalty
    else:
        spectral = L * float(np.sum(2 * spec1 * spec2 * second + 2 * second))
        frobenius = L * float(np.sum(2 * fro1 * fro2 * second + 2 * second))
        constant = 2.0 * L**2 * B2
        penalty_form = 2 * C * L * penalty + constant
    return EnergyBounds(
        residual=residual,
        spectral=spectral,
        frobenius=frobenius,
        penalty_form=penalty_form,
        constant_term=constant,
        penalty=penalty,
        B2=B2,
        M=M,
        C=C,
    )
