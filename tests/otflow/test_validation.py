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
