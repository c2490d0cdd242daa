"""Gaussian and Gaussian-mixture distributions in any dimension, with 2-D presets for toy studies.

Every sampler takes ``rng`` (a ``numpy.random.Generator``, an int seed or None); nothing draws from
global random state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from otflow._validation import as_cov, as_mean, as_points, as_rng, to_numpy

__all__ = ["Gaussian", "GaussianMixture"]


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: expected a positive integer number of samples, got {n!r}")
    return int(n)


@dataclass(frozen=True)
class Gaussian:
    """The normal law :math:`N(\\text{mean}, \\text{cov})` in :math:`\\mathbb R^D`.

    Examples
    --------
    >>> g = Gaussian([0.0, 0.0], [[1.0, 0.0], [0.0, 4.0]])
    >>> g.sample(3, rng=0).shape
    (3, 2)
    """

    mean: np.ndarray
    cov: np.ndarray
    _chol: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        m = as_mean(self.mean, "mean")
        S = as_cov(self.cov, m.shape[0], "cov")
        object.__setattr__(self, "mean", m)
        object.__setattr__(self, "cov", S)
        w, V = np.linalg.eigh(S)
        object.__setattr__(self, "_chol", V * np.sqrt(np.clip(w, 0.0, None)))

    @property
    def dim(self) -> int:
        return self.mean.shape[0]

    def sample(self, n: int, rng=None) -> np.ndarray:
        """``n`` samples, shape (n, D)."""
        n = _check_n(n)
        z = as_rng(rng).standard_normal((n, self.dim))
        return self.mean + z @ self._chol.T

    def log_prob(self, x) -> np.ndarray:
        """Log density at points ``x`` (n, D), shape (n,). Needs a positive definite covariance."""
        x = as_points(x, "x")
        if x.shape[1] != self.dim:
            raise ValueError(f"x: expected points of dimension {self.dim}, got shape {x.shape}")
        sign, logdet = np.linalg.slogdet(self.cov)
        if sign <= 0 or not np.isfinite(logdet):
            raise ValueError("cov: log_prob needs a positive definite covariance")
        diff = x - self.mean
        sol = np.linalg.solve(self.cov, diff.T).T
        maha = np.einsum("ij,ij->i", diff, sol)
        return -0.5 * (maha + logdet + self.dim * np.log(2 * np.pi))


@dataclass(frozen=True)
class GaussianMixture:
    """A finite mixture :math:`\\sum_k w_k N(m_k, S_k)`.

    Parameters
    ----------
    weights : array (K,), non-negative, summing to 1
    means : array (K, D)
    covs : array (K, D, D), each symmetric positive semi-definite

    Examples
    --------
    >>> gm = GaussianMixture.ring(4, radius=2.0, std=0.1)
    >>> x, labels = gm.sample_labeled(5, rng=0)
    >>> x.shape, labels.shape
    ((5, 2), (5,))
    """

    weights: np.ndarray
    means: np.ndarray
    covs: np.ndarray

    def __post_init__(self):
        w = to_numpy(self.weights, "weights", dtype=np.float64)
        means = to_numpy(self.means, "means", dtype=np.float64)
        if means.ndim != 2 or means.shape[0] == 0 or means.shape[1] == 0:
            raise ValueError(f"means: expected shape (K, D), got {means.shape}")
        k, d = means.shape
        if w.shape != (k,):
            raise ValueError(f"weights: expected shape ({k},) to match means, got {w.shape}")
        if not np.isfinite(w).all() or (w < 0).any() or not abs(w.sum() - 1.0) <= 1e-6:
            raise ValueError(f"weights: expected non-negative finite weights summing to 1, got {w}")
        covs = to_numpy(self.covs, "covs", dtype=np.float64)
        if covs.shape != (k, d, d):
            raise ValueError(f"covs: expected shape ({k}, {d}, {d}), got {covs.shape}")
        comps = tuple(Gaussian(means[i], covs[i]) for i in range(k))
        object.__setattr__(self, "weights", w / w.sum())
        object.__setattr__(self, "means", np.stack([c.mean for c in comps]))
        object.__setattr__(self, "covs", np.stack([c.cov for c in comps]))
        object.__setattr__(self, "_components", comps)

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    @property
    def components(self) -> tuple[Gaussian, ...]:
        return self._components

    def mean(self) -> np.ndarray:
        """Mean of the mixture, shape (D,)."""
        return self.weights @ self.means

    def cov(self) -> np.ndarray:
        """Covariance of the mixture (law of total covariance), shape (D, D)."""
        m = self.mean()
        dm = self.means - m
        return np.einsum("k,kij->ij", self.weights, self.covs) + np.einsum("k,ki,kj->ij", self.weights, dm, dm)

    def sample_labeled(self, n: int, rng=None) -> tuple[np.ndarray, np.ndarray]:
        """``n`` samples (n, D) and the index (n,) of the component each was drawn from."""
        n = _check_n(n)
        rng = as_rng(rng)
        labels = rng.choice(self.n_components, size=n, p=self.weights)
        x = np.empty((n, self.dim))
        for k, comp in enumerate(self._components):
            idx = np.flatnonzero(labels == k)
            if idx.size:
                x[idx] = comp.sample(idx.size, rng)
        return x, labels

    def sample(self, n: int, rng=None) -> np.ndarray:
        """``n`` samples, shape (n, D)."""
        return self.sample_labeled(n, rng)[0]

    def log_prob(self, x) -> np.ndarray:
        """Log density at points ``x`` (n, D), shape (n,)."""
        from scipy.special import logsumexp

        x = as_points(x, "x")
        with np.errstate(divide="ignore"):
            logw = np.log(self.weights)
        parts = np.stack([c.log_prob(x) for c in self._components], axis=1) + logw
        return logsumexp(parts, axis=1)

    # ----- 2-D presets -------------------------------------------------------------------------
    @classmethod
    def isotropic(cls, means, std: float, weights=None) -> GaussianMixture:
        """Equal-weight (unless given) mixture of isotropic Gaussians with the given means (K, D)."""
        means = to_numpy(means, "means", dtype=np.float64)
        if means.ndim != 2:
            raise ValueError(f"means: expected shape (K, D), got {means.shape}")
        if not (np.isfinite(std) and std > 0):
            raise ValueError(f"std: expected a positive number, got {std!r}")
        k, d = means.shape
        w = np.full(k, 1.0 / k) if weights is None else weights
        return cls(w, means, np.tile(np.eye(d) * std**2, (k, 1, 1)))

    @classmethod
    def ring(cls, k: int = 8, radius: float = 2.0, std: float = 0.2, phase: float = 0.0) -> GaussianMixture:
        """``k`` equal Gaussians evenly spaced on a circle (the classic 8-Gaussians target)."""
        if k < 1:
            raise ValueError(f"k: expected a positive number of components, got {k}")
        ang = phase + 2 * np.pi * np.arange(k) / k
        return cls.isotropic(radius * np.stack([np.cos(ang), np.sin(ang)], 1), std)

    @classmethod
    def grid(cls, side: int = 3, spacing: float = 2.0, std: float = 0.2) -> GaussianMixture:
        """``side × side`` Gaussians on a square grid centred at the origin."""
        if side < 1:
            raise ValueError(f"side: expected a positive integer, got {side}")
        c = spacing * (np.arange(side) - (side - 1) / 2)
        gx, gy = np.meshgrid(c, c, indexing="ij")
        return cls.isotropic(np.stack([gx.ravel(), gy.ravel()], 1), std)

    @classmethod
    def two_blobs(cls, separation: float = 4.0, std: float = 0.5) -> GaussianMixture:
        """Two equal Gaussians on the horizontal axis at ``±separation/2``."""
        return cls.isotropic([[-separation / 2, 0.0], [separation / 2, 0.0]], std)
