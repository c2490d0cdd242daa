"""All the track metrics of one stage in one call, as a small typed result."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from otflow._validation import as_tracks
from otflow.metrics import (
    energy_ratio,
    line_shape_ratio,
    line_shape_score,
    ot_score,
    segment_proportions,
    transport_energy,
)

__all__ = ["TrackReport", "track_report"]


@dataclass(frozen=True)
class TrackReport:
    """Aggregates of one stage's tracks (means over samples; see the metric functions for each).

    ``energy_ratio`` is ``transport_energy / W2²(x^0, x^L)``: ≥ 1, and 1 exactly on the discrete
    geodesic. ``ots``, ``ot_cost_gap`` and ``energy_ratio`` are None when computed with
    ``with_ot=False``; ``energy_ratio`` is also None when ``W2² = 0`` while the tracks move (the end
    points are a permutation of the start points, so the ratio is infinite; it is never inf).
    """

    n: int
    n_blocks: int
    dim: int
    lsr: float
    lss: float
    segment_proportions: tuple[float, ...]
    transport_energy: float
    displacement_sq: float
    w2_squared: float | None
    energy_ratio: float | None
    ots: float | None
    ot_cost_gap: float | None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["segment_proportions"] = list(self.segment_proportions)
        return d


def track_report(tracks, *, with_ot: bool = True, eps: float | None = None) -> TrackReport:
    """LSR, LSS, segment proportions, energy and (optionally) OTS of tracks ``(N, L+1, D)``.

    ``eps`` is passed to :func:`otflow.line_shape_score`. With ``with_ot`` the exact assignment
    between ``x^0`` and ``x^L`` is solved once and gives OTS, its cost gap and W2².
    """
    tracks = as_tracks(tracks)
    x0, xl = tracks[:, 0], tracks[:, -1]
    d = (xl - x0).astype(np.float64)
    disp = float(np.einsum("ij,ij->", d, d) / len(d))
    energy = transport_energy(tracks)
    ots = gap = w2 = ratio = None
    if with_ot:
        res = ot_score(x0, xl)
        ots, gap, w2 = res.score, res.cost_gap, res.cost_optimal
        ratio = energy_ratio(energy, w2)
    return TrackReport(
        n=tracks.shape[0],
        n_blocks=tracks.shape[1] - 1,
        dim=tracks.shape[2],
        lsr=float(np.mean(line_shape_ratio(tracks))),
        lss=float(np.mean(line_shape_score(tracks, eps=eps))),
        segment_proportions=tuple(float(p) for p in segment_proportions(tracks).mean(0)),
        transport_energy=energy,
        displacement_sq=disp,
        w2_squared=w2,
        energy_ratio=ratio,
        ots=ots,
        ot_cost_gap=gap,
    )
