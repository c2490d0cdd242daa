"""otflow._validation: the one place that checks input layouts, shared by every public function."""

import numpy as np
import pytest

import otflow


@pytest.mark.parametrize("sigma", [[0, 0, 1], [0, 1], [0.0, 1.0, 2.0], [0, 1, 3]])
def test_every_function_taking_sigma_rejects_a_non_permutation_alike(sigma):
    x = np.arange(6.0).reshape(3, 2)
    messages = set()
    for call in (
        lambda: otflow.assignment_cost(x, x, sigma),
        lambda: otflow.displacement_interpolation(x, x, 0.5, sigma=sigma),
        lambda: otflow.geodesic_tracks(x, x, 2, sigma=sigma),
    ):
        with pytest.raises(ValueError, match="^sigma: expected") as err:
            call()
        messages.add(str(err.value))
    assert len(messages) == 1


def test_pair_functions_reject_unequal_sizes_alike():
    x, y = np.zeros((3, 2)), np.ones((4, 2))
    for f in (otflow.optimal_assignment, otflow.assignment_cost, otflow.ot_score):
        with pytest.raises(ValueError, match="as many points on each side"):
            f(x, y)


@pytest.mark.parametrize(
    ("mean", "cov", "match"),
    [
        ([0.0, np.nan], np.eye(2), "mean: contains NaN"),
        ([[0.0, 0.0]], np.eye(2), r"mean: expected a mean vector of shape \(D,\)"),
        ([0.0, 0.0], np.eye(3), r"cov: expected a covariance of shape \(2, 2\)"),
        ([0.0, 0.0], [[1.0, 2.0], [0.0, 1.0]], "cov: expected a symmetric matrix"),
        ([0.0, 0.0], -np.eye(2), "cov: expected a positive semi-definite matrix"),
    ],
)
def test_gaussian_parameters_are_checked_by_the_shared_helpers(mean, cov, match):
    with pytest.raises(ValueError, match=match):
        otflow.Gaussian(mean, cov)


def test_the_finiteness_check_sees_every_nan_and_inf_and_not_an_overflowing_sum():
    """The check sums first (one pass, no mask); a sum that overflows from finite values must not be
    mistaken for a NaN or an inf, and every NaN/inf position is still found."""
    from otflow._validation import as_points

    big = np.full((4, 3), 1.5e308)
    big[::2] *= -1
    big[0, 0] = 1.7e308
    assert not np.isfinite(np.sum(np.abs(big)))
    as_points(np.abs(big))  # finite values whose sum overflows: accepted
    as_points(big)
    for bad in (np.nan, np.inf, -np.inf):
        x = np.ones((5, 2))
        x[3, 1] = bad
        with pytest.raises(ValueError, match=r"1 NaN or inf value\(s\), the first at index \(3, 1\)"):
            as_points(x)
    x = np.ones((5, 2))
    x[1, 0], x[2, 1] = np.inf, -np.inf  # opposite infinities: the sum is NaN
    with pytest.raises(ValueError, match=r"2 NaN or inf value\(s\), the first at index \(1, 0\)"):
        as_points(x)
