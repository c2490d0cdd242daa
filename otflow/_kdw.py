"""A kd-tree for weighted nearest neighbours: the k points ``j`` with the smallest ``‖q − p_j‖² − w_j``.

Behind the low-dimensional candidate proposals of :func:`otflow.solve_assignment` (the smallest
reduced costs ``c_ij − v_j`` of a row are exactly such a query). The tree is built once per point
set; each node keeps its bounding box, and for each new weight vector every node's largest weight
(:func:`node_max`), so a node whose ``mindist²(q, box) − max w`` is not below the k-th best key
so far is skipped (branch and bound). The answers are proposals: each pair's cost is exact
(coordinate differences), but a bound computed in floating point may skip a point whose key ties
the k-th best to rounding; the solver's certificate, an exact pass over all pairs, does not rely on
them.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

LEAF = 16


@njit(cache=True)
def build(p, leaf):
    """Nodes over the points ``p`` (m, d): ``perm`` orders the points so that node ``t`` holds
    ``perm[lo[t]:hi[t]]``; ``left``/``right`` are children (-1 at leaves); boxes ``bmin``/``bmax``.
    Children are created after their parent, so a reverse sweep over the nodes is bottom-up."""
    m, d = p.shape
    cap = 4 * (m // leaf + 1) + 8
    lo = np.empty(cap, np.int64)
    hi = np.empty(cap, np.int64)
    left = np.full(cap, -1, np.int64)
    right = np.full(cap, -1, np.int64)
    bmin = np.empty((cap, d))
    bmax = np.empty((cap, d))
    perm = np.arange(m)
    stack = np.empty(cap, np.int64)
    lo[0], hi[0], count, sp = 0, m, 1, 1
    stack[0] = 0
    while sp > 0:
        sp -= 1
        t = stack[sp]
        a, b = lo[t], hi[t]
        for c in range(d):
            mn, mx = np.inf, -np.inf
            for s in range(a, b):
                val = p[perm[s], c]
                mn, mx = min(mn, val), max(mx, val)
            bmin[t, c], bmax[t, c] = mn, mx
        if b - a <= leaf:
            continue
        axis = np.argmax(bmax[t] - bmin[t])
        seg = perm[a:b]
        order = np.argsort(p[seg, axis], kind="mergesort")
        perm[a:b] = seg[order]
        mid = (a + b) // 2
        for child, (ca, cb) in ((0, (a, mid)), (1, (mid, b))):
            lo[count], hi[count] = ca, cb
            if child == 0:
                left[t] = count
            else:
                right[t] = count
            stack[sp] = count
            sp += 1
            count += 1
    return perm, lo[:count], hi[:count], left[:count], right[:count], bmin[:count], bmax[:count]


@njit(cache=True)
def node_max(perm, lo, hi, left, right, w):
    """Every node's largest weight, bottom-up."""
    nn = lo.shape[0]
    out = np.empty(nn)
    for t in range(nn - 1, -1, -1):
        if left[t] < 0:
            mx = -np.inf
            for s in range(lo[t], hi[t]):
                mx = max(mx, w[perm[s]])
            out[t] = mx
        else:
            out[t] = max(out[left[t]], out[right[t]])
    return out


@njit(cache=True, inline="always")
def _bound(q, bmin, bmax, t, maxw):
    s = 0.0
    for c in range(q.shape[0]):
        if q[c] < bmin[t, c]:
            g = bmin[t, c] - q[c]
            s += g * g
        elif q[c] > bmax[t, c]:
            g = q[c] - bmax[t, c]
            s += g * g
    return s - maxw[t]


@njit(cache=True, parallel=True)
def query(p, perm, lo, hi, left, right, bmin, bmax, maxw, w, q, k):
    """For each row of ``q``: the k smallest ``‖q_t − p_j‖² − w_j`` (ascending), their ``j`` and
    ``‖q_t − p_j‖²``. Branch and bound, nearer child first."""
    nq, d = q.shape
    idx = np.full((nq, k), -1, np.int64)
    keys = np.full((nq, k), np.inf)
    costs = np.zeros((nq, k))
    for t in prange(nq):
        stack = np.empty(128, np.int64)
        stack[0], sp = 0, 1
        qt = q[t]
        while sp > 0:
            sp -= 1
            node = stack[sp]
            if _bound(qt, bmin, bmax, node, maxw) >= keys[t, k - 1]:
                continue
            if left[node] < 0:
                for s in range(lo[node], hi[node]):
                    j = perm[s]
                    c = 0.0
                    for e in range(d):
                        g = qt[e] - p[j, e]
                        c += g * g
                    r = c - w[j]
                    if r >= keys[t, k - 1]:
                        continue
                    pos = k - 1
                    while pos > 0 and keys[t, pos - 1] > r:
                        keys[t, pos], idx[t, pos], costs[t, pos] = keys[t, pos - 1], idx[t, pos - 1], costs[t, pos - 1]
                        pos -= 1
                    keys[t, pos], idx[t, pos], costs[t, pos] = r, j, c
                continue
            a, b = left[node], right[node]
            if _bound(qt, bmin, bmax, a, maxw) < _bound(qt, bmin, bmax, b, maxw):
                a, b = b, a  # push the farther child first: the nearer one is searched first
            stack[sp], stack[sp + 1] = a, b
            sp += 2
    return idx, costs, keys


class WeightedTree:
    """A tree over fixed points; :meth:`knn` takes a new weight vector each call."""

    def __init__(self, points: np.ndarray):
        self.p = np.ascontiguousarray(points, dtype=np.float64)
        self.nodes = build(self.p, LEAF)

    def knn(self, q: np.ndarray, w: np.ndarray, k: int):
        """``(idx, costs, keys)`` of shape (len(q), k), ascending in ``key = ‖q_t − p_j‖² − w_j``."""
        k = min(k, len(self.p))
        perm, lo, hi, left, right, bmin, bmax = self.nodes
        w = np.ascontiguousarray(w, dtype=np.float64)
        maxw = node_max(perm, lo, hi, left, right, w)
        q = np.ascontiguousarray(q, dtype=np.float64)
        return query(self.p, perm, lo, hi, left, right, bmin, bmax, maxw, w, q, k)
