"""otflow: measure neural networks as transport maps.

Exact optimal-transport ground truth, data tracks of torch models, and the metrics of
"Deep Residual Networks Learn the Geodesic Curve in the Wasserstein Space" (Gai & Zhang,
arXiv 2102.09235). Costs are ``‖x − y‖²`` (not halved); ``w2_squared`` is the un-rooted W2².
Shapes: points ``(n, D)``, tracks ``(N, L+1, D)``. See docs/conventions.md.
"""

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for type checkers and IDEs: the names as if imported eagerly
    from otflow.assignment import assignment_cost, optimal_assignment, pairwise_sq_dists, w2_squared
    from otflow.bounds import EnergyBounds, energy_bounds
    from otflow.distributions import Gaussian, GaussianMixture
    from otflow.gaussian import (
        AffineMap,
        empirical_gaussian_map,
        empirical_gaussian_w2_squared,
        gaussian_map,
        gaussian_w2_squared,
        sqrtm_psd,
    )
    from otflow.geodesic import displacement_interpolation, geodesic_tracks
    from otflow.metrics import (
        OTScore,
        energy_ratio,
        line_shape_ratio,
        line_shape_score,
        ot_score,
        segment_lengths,
        segment_proportions,
        theorem1_bound,
        track_distance,
        transport_energy,
    )
    from otflow.metrics_torch import line_shape_stats
    from otflow.nulls import (
        NullReferences,
        independent_layer_tracks,
        null_references,
        random_walk_tracks,
        shuffled_displacements,
    )
    from otflow.projection import random_projection, random_projection_matrix
    from otflow.report import TrackReport, track_report
    from otflow.runs import environment_info, seed_everything
    from otflow.solver import AssignmentResult, solve_assignment
    from otflow.tracks import record_stage_tracks, record_tracks

_EXPORTS = {  # public name -> the module that defines it (imported on first use, PEP 562)
    "AffineMap": "otflow.gaussian",
    "AssignmentResult": "otflow.solver",
    "EnergyBounds": "otflow.bounds",
    "Gaussian": "otflow.distributions",
    "GaussianMixture": "otflow.distributions",
    "NullReferences": "otflow.nulls",
    "OTScore": "otflow.metrics",
    "TrackReport": "otflow.report",
    "assignment_cost": "otflow.assignment",
    "displacement_interpolation": "otflow.geodesic",
    "empirical_gaussian_map": "otflow.gaussian",
    "empirical_gaussian_w2_squared": "otflow.gaussian",
    "energy_bounds": "otflow.bounds",
    "energy_ratio": "otflow.metrics",
    "environment_info": "otflow.runs",
    "gaussian_map": "otflow.gaussian",
    "gaussian_w2_squared": "otflow.gaussian",
    "geodesic_tracks": "otflow.geodesic",
    "independent_layer_tracks": "otflow.nulls",
    "line_shape_ratio": "otflow.metrics",
    "line_shape_score": "otflow.metrics",
    "line_shape_stats": "otflow.metrics_torch",
    "null_references": "otflow.nulls",
    "optimal_assignment": "otflow.assignment",
    "ot_score": "otflow.metrics",
    "pairwise_sq_dists": "otflow.assignment",
    "random_projection": "otflow.projection",
    "random_projection_matrix": "otflow.projection",
    "random_walk_tracks": "otflow.nulls",
    "record_stage_tracks": "otflow.tracks",
    "record_tracks": "otflow.tracks",
    "seed_everything": "otflow.runs",
    "segment_lengths": "otflow.metrics",
    "segment_proportions": "otflow.metrics",
    "shuffled_displacements": "otflow.nulls",
    "solve_assignment": "otflow.solver",
    "sqrtm_psd": "otflow.gaussian",
    "theorem1_bound": "otflow.metrics",
    "track_distance": "otflow.metrics",
    "track_report": "otflow.report",
    "transport_energy": "otflow.metrics",
    "w2_squared": "otflow.assignment",
}


def __getattr__(name: str):
    """Import a public name's module on first use: ``import otflow`` stays cheap (a one-off
    ``solve_assignment`` in a fresh process loads the solver, not torch, matplotlib or the track code)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'otflow' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__version__ = "0.1.0"

__all__ = [
    "AffineMap",
    "AssignmentResult",
    "EnergyBounds",
    "Gaussian",
    "GaussianMixture",
    "NullReferences",
    "OTScore",
    "TrackReport",
    "assignment_cost",
    "displacement_interpolation",
    "empirical_gaussian_map",
    "empirical_gaussian_w2_squared",
    "energy_bounds",
    "energy_ratio",
    "environment_info",
    "gaussian_map",
    "gaussian_w2_squared",
    "geodesic_tracks",
    "independent_layer_tracks",
    "line_shape_ratio",
    "line_shape_score",
    "line_shape_stats",
    "null_references",
    "optimal_assignment",
    "ot_score",
    "pairwise_sq_dists",
    "random_projection",
    "random_projection_matrix",
    "random_walk_tracks",
    "record_stage_tracks",
    "record_tracks",
    "seed_everything",
    "segment_lengths",
    "segment_proportions",
    "shuffled_displacements",
    "solve_assignment",
    "sqrtm_psd",
    "theorem1_bound",
    "track_distance",
    "track_report",
    "transport_energy",
    "w2_squared",
]
