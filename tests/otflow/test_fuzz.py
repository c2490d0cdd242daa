"""Fuzz of every public metric function (issue 13): finite input of any shape and magnitude gives a
finite result or a ValueError, never NaN, inf or another exception."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import otflow
from tests.strategies import any_finite_arrays


def _ots(x, y):
    r = otflow.ot_score(x, y)
    return r.score, r.cost_identity, r.cost_optimal, r.cost_gap


TRACK_FUNCTIONS = {
    "segment_lengths": otflow.segment_lengths,
    "line_shape_ratio": otflow.line_shape_ratio,
    "line_shape_score": otflow.line_shape_score,
    "line_shape_score(eps)": lambda t: otflow.line_shape_score(t, eps=1e-12),
    "segment_proportions": otflow.segment_proportions,
    "transport_energy": otflow.transport_energy,
    "track_distance": lambda t: otflow.track_distance(t, t[::-1]),
}
PAIR_FUNCTIONS = {
    "theorem1_bound": lambda x, y: otflow.theorem1_bound(x, x[::-1], y, y[::-1]),
    "ot_score": _ots,
    "w2_squared": otflow.w2_squared,
    "w2_squared(emd)": lambda x, y: otflow.w2_squared(x, y, method="emd"),
    "pairwise_sq_dists": otflow.pairwise_sq_dists,
    "assignment_cost": otflow.assignment_cost,
    "optimal_assignment": otflow.optimal_assignment,
}


def _finite_or_value_error(f, *args):
    try:
        out = f(*args)
    except ValueError:
        return
    for v in out if isinstance(out, tuple) else (out,):
        assert np.all(np.isfinite(np.asarray(v, dtype=float))), (out, args)


@st.composite
def track_inputs(draw):
    shape = (draw(st.integers(1, 6)), draw(st.integers(2, 6)), draw(st.integers(1, 4)))
    return draw(any_finite_arrays(shape))


@st.composite
def pair_inputs(draw):
    shape = (draw(st.integers(1, 8)), draw(st.integers(1, 4)))
    return draw(any_finite_arrays(shape)), draw(any_finite_arrays(shape))


@pytest.mark.parametrize("name", sorted(TRACK_FUNCTIONS))
@given(t=track_inputs())
def test_track_metrics_are_finite_or_raise_value_error(name, t):
    _finite_or_value_error(TRACK_FUNCTIONS[name], t)


@pytest.mark.parametrize("name", sorted(PAIR_FUNCTIONS))
@given(xy=pair_inputs())
def test_pair_metrics_are_finite_or_raise_value_error(name, xy):
    _finite_or_value_error(PAIR_FUNCTIONS[name], *xy)
