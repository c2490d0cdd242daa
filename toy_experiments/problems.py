r"""The 2-D problems of the Gaussian study and their exact optimal-transport answers.

Cost ``‖x − y‖²`` (not halved) throughout, as in otflow.

* ``transport``: a ring of 4 Gaussians (radius 1, std 0.25) pushed onto a ring of 4 Gaussians at
  the same angles (radius 3, std 0.4). The OT map moves each quadrant outward and scales it:
  up to the Gaussian tails that cross a quadrant boundary it is the gradient of the convex
  :math:`\varphi(x) = \tfrac s2\|x\|^2 + (3 - s)\max_k\langle u_k, x\rangle`, s = 1.6. Rotating the plane by
  90° (or reflecting it) pushes the source onto the target just as well, so the task loss cannot tell
  those maps from the OT map; only the inductive bias of the net and its weight decay can. The exact
  map on held-out points is the barycentric projection of the exact optimal plan (POT's network
  simplex) onto a target sample ``oversample`` times larger.
* ``gaussian``: :math:`N(0, I)` pushed onto :math:`N(m_1, S_1)` with :math:`S_1` anisotropic (standard
  deviations 2 and 0.5) and turned by 30°; the OT map is the closed form :func:`otflow.gaussian_map`.
* ``classification``: the XOR mixture (4 Gaussians on the corners of a square, labels = the two
  diagonals), which no linear head separates in the input space; the stage must move the data. There
  is no fixed target: the exact OT map is the optimal assignment from the inputs to the stage's own
  outputs (as in the paper), computed per run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import ot

import otflow
from toy_experiments.evaluation import w2_squared_simplex

__all__ = ["TASKS", "Problem", "Truth", "make_problem", "ground_truth", "sample_stratified"]

TASKS = ("transport", "gaussian", "classification")


@dataclass(frozen=True)
class Problem:
    """A source law, and either a target law (transport tasks) or labels (classification)."""

    name: str
    source: otflow.GaussianMixture
    target: otflow.GaussianMixture | None
    labels_of_component: np.ndarray | None  # component index -> class label (classification only)
    exact_map: otflow.AffineMap | None  # closed-form OT map where one exists

    @property
    def n_classes(self) -> int | None:
        return None if self.labels_of_component is None else int(self.labels_of_component.max()) + 1

    @property
    def is_transport(self) -> bool:
        return self.target is not None

    def sample_source(self, n: int, rng, *, stratified: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """``n`` source points and, for classification, their labels (see :func:`sample_stratified`)."""
        x, comp = sample_stratified(self.source, n, rng) if stratified else self.source.sample_labeled(n, rng)
        return x, (None if self.labels_of_component is None else self.labels_of_component[comp])


def sample_stratified(mixture: otflow.GaussianMixture, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points of ``mixture`` with the component counts fixed to ``n·w_k`` (rounded by largest
    remainder), in random order, and their component indices.

    A minibatch drawn this way holds each component in its exact proportion, which removes the
    count fluctuations that make a small-batch optimal assignment send points across components.
    """
    w = mixture.weights
    counts = np.floor(n * w).astype(int)
    short = n - counts.sum()
    if short:
        counts[np.argsort(-(n * w - counts), kind="stable")[:short]] += 1
    parts = [c.sample(k, rng) for c, k in zip(mixture.components, counts) if k]
    comp = np.repeat(np.arange(len(w)), counts)
    order = rng.permutation(n)
    return np.concatenate(parts)[order], comp[order]


def _rotation(deg: float) -> np.ndarray:
    t = np.deg2rad(deg)
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


def make_problem(name: str) -> Problem:
    """The problem called ``name`` (one of :data:`TASKS`)."""
    if name == "transport":
        source = otflow.GaussianMixture.ring(4, radius=1.0, std=0.25)
        target = otflow.GaussianMixture.ring(4, radius=3.0, std=0.4)
        return Problem(name, source, target, None, None)
    if name == "gaussian":
        m1 = np.array([1.0, 0.5])
        rot = _rotation(30.0)
        S1 = rot @ np.diag([2.0**2, 0.5**2]) @ rot.T
        source = otflow.GaussianMixture(np.ones(1), np.zeros((1, 2)), np.eye(2)[None])
        target = otflow.GaussianMixture(np.ones(1), m1[None], S1[None])
        return Problem(name, source, target, None, otflow.gaussian_map(np.zeros(2), np.eye(2), m1, S1))
    if name == "classification":
        source = otflow.GaussianMixture.grid(side=2, spacing=2.0, std=0.3)
        # grid order (x-major): (-1,-1), (-1,1), (1,-1), (1,1); the diagonals are the two classes
        return Problem(name, source, None, np.array([0, 1, 1, 0]), None)
    raise ValueError(f"task: expected one of {', '.join(TASKS)}, got {name!r}")


@dataclass(frozen=True)
class Truth:
    """Held-out evaluation data of one problem and its exact OT answer.

    Attributes
    ----------
    x : (n, 2) held-out source points (the inputs of every evaluated net)
    labels : (n,) their class labels (classification) or None
    tx : (n, 2) the exact OT map at ``x`` (transport tasks) or None (classification: per run)
    y : (n, 2) an independent target sample, for the fit ``W2²(outputs, y)``; None for classification
    target_var : float, total variance ``tr Cov`` of the target law (None for classification)
    w2sq_source_target : float, ``W2²(x, y)``: how far the source starts from the target
    w2sq_floor : float, ``W2²(y', y)`` of two independent target samples of size n: the best fit
        any map can show on these samples (sampling noise)
    map_floor : float, for the sample-based map, the mean squared distance between two estimates of
        ``T*(x)`` from independent target samples, normalised like L2-UVP (×100 %); 0 for a closed form
    """

    x: np.ndarray
    labels: np.ndarray | None
    tx: np.ndarray | None
    y: np.ndarray | None
    target_var: float | None
    w2sq_source_target: float | None
    w2sq_floor: float | None
    map_floor: float | None


def _barycentric_map(x: np.ndarray, y_big: np.ndarray) -> np.ndarray:
    """Barycentric projection of the exact optimal plan from uniform ``x`` to uniform ``y_big``."""
    a = np.full(len(x), 1.0 / len(x))
    b = np.full(len(y_big), 1.0 / len(y_big))
    plan = ot.emd(a, b, otflow.pairwise_sq_dists(x, y_big), numItermax=10_000_000)
    return (plan @ y_big) / plan.sum(1, keepdims=True)


def ground_truth(problem: Problem, n: int, *, seed: int, oversample: int = 8) -> Truth:
    """Held-out points of ``problem`` and the exact OT answer on them (drawn from ``seed``).

    Every sample is stratified (:func:`sample_stratified`: each component in its exact proportion),
    so the sampled optimal plan does not have to move mass across components to make up for
    sampling fluctuations in the component counts, which the continuous problem does not have.
    """
    rng = np.random.default_rng(seed)
    x, labels = problem.sample_source(n, rng, stratified=True)
    if not problem.is_transport:
        return Truth(x, labels, None, None, None, None, None, None)

    def target(k):
        return sample_stratified(problem.target, k, rng)[0]

    y, y2 = target(n), target(n)
    var = float(np.trace(problem.target.cov()))
    if problem.exact_map is not None:
        tx, map_floor = problem.exact_map(x), 0.0
    else:
        tx = _barycentric_map(x, target(oversample * n))
        tx2 = _barycentric_map(x, target(oversample * n))
        map_floor = 100.0 * float(np.mean(np.sum((tx - tx2) ** 2, 1))) / var
    return Truth(
        x=x,
        labels=labels,
        tx=tx,
        y=y,
        target_var=var,
        w2sq_source_target=w2_squared_simplex(x, y),
        w2sq_floor=w2_squared_simplex(y2, y),
        map_floor=map_floor,
    )
