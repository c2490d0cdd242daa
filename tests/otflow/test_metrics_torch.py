"""otflow.line_shape_stats (torch, on the tensors' device) against the numpy reference functions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import otflow
from tests.strategies import any_finite_arrays, tracks


def _both(t: np.ndarray, eps=None):
    """(numpy LSS, numpy LSR) or the ValueError message of each, and the same from torch."""

    def catch(f):
        try:
            return f()
        except ValueError as err:
            return str(err)

    ref = (catch(lambda: otflow.line_shape_score(t, eps=eps)), catch(lambda: otflow.line_shape_ratio(t)))
    got = catch(lambda: otflow.line_shape_stats(torch.from_numpy(t), eps=eps))
    return ref, got


@settings(max_examples=60, deadline=None)
@given(tracks(max_n=10, max_l=9, max_d=6), st.sampled_from([None, 0.0, 0.3]))
def test_equals_the_numpy_functions_on_random_tracks(t, eps):
    """Generic tracks; eps = 0.3 drops some segments (and may leave a sample none: the same error)."""
    (ref_lss, ref_lsr), got = _both(t, eps)
    if isinstance(ref_lss, str):
        assert got == ref_lss
        return
    lss, lsr = got
    assert lss.dtype == torch.float64 and lss.shape == (len(t),)
    np.testing.assert_allclose(lss.numpy(), ref_lss, rtol=1e-12)
    np.testing.assert_allclose(lsr.numpy(), ref_lsr, rtol=1e-12)


@settings(max_examples=80, deadline=None)
@given(any_finite_arrays((4, 5, 3)), st.sampled_from([None, 1e-3]))
def test_same_values_or_same_errors_at_any_magnitude(t, eps):
    """1e-300..1e300, ties, zeros, cancelling steps: each function either agrees or raises alike."""
    (ref_lss, ref_lsr), got = _both(t, eps)
    if isinstance(got, str):  # torch computes both: its first error is LSS's, else LSR's
        assert got in (ref_lss, ref_lsr)
        assert got == (ref_lss if isinstance(ref_lss, str) else ref_lsr)
        return
    assert not isinstance(ref_lss, str) and not isinstance(ref_lsr, str)
    np.testing.assert_allclose(got[0].numpy(), ref_lss, rtol=1e-12)
    np.testing.assert_allclose(got[1].numpy(), ref_lsr, rtol=1e-12)


def test_straight_tracks_score_one_and_a_zigzag_its_closed_form():
    line = torch.arange(6, dtype=torch.float64)[None, :, None] * torch.tensor([3.0, 4.0], dtype=torch.float64)
    lss, lsr = otflow.line_shape_stats(line)
    assert lss.item() == 1.0 and lsr.item() == 1.0  # exact steps (3, 4) of length 5
    zig = torch.tensor([[[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]]])
    lss, lsr = otflow.line_shape_stats(zig)
    np.testing.assert_allclose([lss.item(), lsr.item()], [np.sqrt(2), np.sqrt(2)], rtol=1e-15)


def test_bfloat16_tracks_are_widened_and_bad_input_is_named():
    t = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(0))
    lss16, _ = otflow.line_shape_stats(t.bfloat16())
    np.testing.assert_allclose(lss16.numpy(), otflow.line_shape_score(t.bfloat16().float().numpy()), rtol=1e-12)
    with pytest.raises(ValueError, match="expected a torch tensor"):
        otflow.line_shape_stats(t.numpy())
    with pytest.raises(ValueError, match=r"shape \(N, L\+1, D\)"):
        otflow.line_shape_stats(t[0])
    with pytest.raises(ValueError, match="at least 2 points"):
        otflow.line_shape_stats(t[:, :1])
    with pytest.raises(ValueError, match="NaN or inf"):
        otflow.line_shape_stats(torch.where(t > 1, float("nan"), t))
    with pytest.raises(ValueError, match="eps"):
        otflow.line_shape_stats(t, eps=-1.0)
    with pytest.raises(ValueError, match="sample 7, segment 2"):  # ``start`` offsets the message
        otflow.line_shape_stats(torch.tensor([[[0.0], [1.0], [1.0]]]), start=7)


def test_stage_tracks_can_stay_on_the_device_as_tensors():
    torch.manual_seed(0)
    blocks = [torch.nn.Linear(4, 4) for _ in range(3)]
    model = torch.nn.Sequential(*blocks)
    x = torch.randn(10, 4)
    (ref,) = otflow.record_stage_tracks(model, x, [blocks], batch_size=4)
    (got,) = otflow.record_stage_tracks(model, x, [blocks], batch_size=4, output="torch")
    assert isinstance(got, torch.Tensor) and got.device == x.device and got.shape == (10, 4, 4)
    np.testing.assert_array_equal(got.numpy(), ref)
    with pytest.raises(ValueError, match="output: expected 'numpy' or 'torch'"):
        otflow.record_stage_tracks(model, x, [blocks], output="cupy")
