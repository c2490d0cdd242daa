"""One place that turns user input into otflow's array layouts, or says clearly why it cannot.

Layouts (see docs/conventions.md):

* points: ``(n, D)``, one row per sample;
* tracks: ``(N, L+1, D)``, N samples, the input then the output of each of L blocks, D features.

Every public function calls these helpers once at its boundary, so a NaN, an empty array or a
wrong shape is reported by name instead of turning into a silent NaN result.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "to_numpy",
    "as_points",
    "as_tracks",
    "as_weights",
    "as_rng",
    "as_scalar",
    "as_mean",
    "as_cov",
    "check_same_shape",
    "check_pair",
    "check_permutation",
]


def to_numpy(value, name: str, *, dtype=None) -> np.ndarray:
    """Convert a numpy array, a torch tensor or a nested sequence to a numpy array.

    Torch tensors are detached and moved to the CPU once; no copy is made when ``value``
    already is a numpy array of the requested dtype.
    """
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch.Tensor, without importing torch
        value = value.detach().cpu()
        if str(value.dtype) in ("torch.bfloat16", "torch.float16"):
            value = value.float()
        value = value.numpy()
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: expected a numeric array, got {type(value).__name__} ({err})") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    if np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.complexfloating):
        if np.isfinite(np.sum(arr)):  # a NaN or inf anywhere makes the sum NaN or inf: one pass, no mask
            return
        finite = np.isfinite(arr)  # (the sum may also have overflowed: look at the values)
        if not finite.all():
            bad = np.argwhere(~finite)[0]
            n_bad = int((~finite).sum())
            raise ValueError(
                f"{name}: contains {n_bad} NaN or inf value(s), the first at index {tuple(int(i) for i in bad)}"
            )


def _float(arr: np.ndarray) -> np.ndarray:
    """Keep float32/float64 as they are (large tracks stay float32); promote everything else."""
    if arr.dtype in (np.float32, np.float64):
        return arr
    return arr.astype(np.float64)


def as_points(x, name: str = "x") -> np.ndarray:
    """Validate a point cloud of shape ``(n, D)`` with ``n >= 1``, ``D >= 1``, all values finite."""
    arr = _float(to_numpy(x, name))
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected points of shape (n, D), got an array of shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name}: expected a non-empty (n, D) array, got shape {arr.shape}")
    _check_finite(arr, name)
    return arr


def as_tracks(tracks, name: str = "tracks", *, min_points: int = 2) -> np.ndarray:
    """Validate tracks of shape ``(N, L+1, D)``: ``N >= 1`` samples, ``L+1 >= min_points``, finite."""
    arr = _float(to_numpy(tracks, name))
    if arr.ndim != 3:
        raise ValueError(f"{name}: expected tracks of shape (N, L+1, D), got an array of shape {arr.shape}")
    n, p, d = arr.shape
    if n == 0 or d == 0:
        raise ValueError(f"{name}: expected a non-empty (N, L+1, D) array, got shape {arr.shape}")
    if p < min_points:
        raise ValueError(
            f"{name}: expected at least {min_points} points per track (L+1 >= {min_points}), got shape {arr.shape}"
        )
    _check_finite(arr, name)
    return arr


def check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b}: expected the same shape, got {a.shape} and {b.shape}")


def as_weights(w, n: int, name: str) -> np.ndarray:
    """Validate a probability vector of length ``n`` (non-negative, finite, summing to 1 within 1e-6)."""
    if w is None:
        return np.full(n, 1.0 / n)
    arr = to_numpy(w, name, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"{name}: expected weights of shape ({n},), got shape {arr.shape}")
    _check_finite(arr, name)
    if (arr < 0).any():
        raise ValueError(f"{name}: weights must be non-negative, got min {arr.min()}")
    total = arr.sum()
    if not abs(total - 1.0) <= 1e-6:
        raise ValueError(f"{name}: weights must sum to 1, got sum {total!r}")
    return arr / total


def as_rng(rng) -> np.random.Generator:
    """The project's rng policy: a ``numpy.random.Generator``, an int seed, or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, numbers.Integral):
        if rng is not None and rng < 0:
            raise ValueError(f"rng: a seed must be a non-negative integer, got {rng}")
        return np.random.default_rng(rng)
    raise ValueError(f"rng: expected a numpy Generator, an int seed or None, got {type(rng).__name__}")


def as_scalar(value, name: str, *, low=None, high=None) -> float:
    """A finite float, optionally within ``[low, high]``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a real number, got {value!r}") from None
    if not np.isfinite(v):
        raise ValueError(f"{name}: expected a finite number, got {v}")
    if (low is not None and v < low) or (high is not None and v > high):
        raise ValueError(f"{name}: expected a value in [{low}, {high}], got {v}")
    return v


def as_mean(m, name: str) -> np.ndarray:
    """A finite mean vector of shape ``(D,)``, as float64."""
    m = to_numpy(m, name, dtype=np.float64)
    if m.ndim != 1 or m.size == 0:
        raise ValueError(f"{name}: expected a mean vector of shape (D,), got shape {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError(f"{name}: contains NaN or inf")
    return m


def as_cov(S, d: int, name: str, *, definite: bool = False) -> np.ndarray:
    """A finite symmetric PSD covariance of shape ``(d, d)`` (positive definite if ``definite``), symmetrised."""
    S = to_numpy(S, name, dtype=np.float64)
    if S.shape != (d, d):
        raise ValueError(f"{name}: expected a covariance of shape ({d}, {d}), got shape {S.shape}")
    if not np.isfinite(S).all():
        raise ValueError(f"{name}: contains NaN or inf")
    scale = max(float(np.abs(S).max()), 1e-300)
    if not np.allclose(S, S.T, rtol=0, atol=1e-10 * scale):
        raise ValueError(f"{name}: expected a symmetric matrix, max |S - S.T| = {np.abs(S - S.T).max():.3g}")
    S = 0.5 * (S + S.T)
    w_min = float(np.linalg.eigvalsh(S)[0])
    if w_min < -1e-10 * scale:
        raise ValueError(f"{name}: expected a positive semi-definite matrix, smallest eigenvalue {w_min:.3g}")
    if definite and w_min <= 1e-12 * scale:
        raise ValueError(
            f"{name}: the OT map needs a positive definite source covariance, smallest eigenvalue {w_min:.3g}"
        )
    return S


def check_pair(x, y) -> tuple[np.ndarray, np.ndarray]:
    """Two point clouds ``x, y`` of the same shape ``(m, D)`` for the assignment problem, as float64."""
    x = as_points(x, "x").astype(np.float64, copy=False)
    y = as_points(y, "y").astype(np.float64, copy=False)
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y: the assignment problem needs as many points on each side (a square cost matrix), "
            f"got {x.shape[0]} and {y.shape[0]}"
        )
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y: expected the same dimension D, got shapes {x.shape} and {y.shape}")
    return x, y


def check_permutation(sigma, m: int, name: str = "sigma") -> np.ndarray:
    """An integer array of shape ``(m,)`` holding a permutation of ``0..m-1``."""
    sigma = np.asarray(sigma)
    if sigma.shape != (m,) or not np.issubdtype(sigma.dtype, np.integer):
        raise ValueError(f"{name}: expected an integer permutation of shape ({m},), got {sigma.dtype} {sigma.shape}")
    if not np.array_equal(np.sort(sigma), np.arange(m)):
        raise ValueError(f"{name}: expected a permutation of 0..m-1")
    return sigma
