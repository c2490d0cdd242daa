"""Compiled kernels (numba) behind :func:`otflow.solve_assignment`.

* a sparse shortest-augmenting-path solver (Jonker–Volgenant / Hungarian with Dijkstra on a CSR
  candidate graph), warm-startable from given potentials and a partial matching;
* the low-dimensional certificate: every reduced cost ``‖x_i − y_j‖² − u_i − v_j`` of the full
  problem, computed exactly from coordinate differences, with the most negative ones per row;
* small helpers to build and merge CSR candidate graphs.

Conventions: rows are the points ``x_i``, columns the points ``y_j``; ``col4row[i] = j`` means
``x_i → y_j``; reduced costs are ``c_ij − u_i − v_j`` and must be ``≥ 0`` on every edge of the graph
and ``= 0`` on matched edges.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = [
    "sparse_sap",
    "init_duals",
    "warm_restart",
    "lowdim_certificate",
    "edge_costs",
    "csr_from_pairs",
]


@njit(cache=True, inline="always")
def _heap_push(hk, hv, size, key, val):
    pos = size
    while pos > 0:
        parent = (pos - 1) >> 1
        if hk[parent] <= key:
            break
        hk[pos] = hk[parent]
        hv[pos] = hv[parent]
        pos = parent
    hk[pos] = key
    hv[pos] = val
    return size + 1


@njit(cache=True, inline="always")
def _heap_pop(hk, hv, size):
    """Remove the root of a heap of ``size`` entries; the caller reads ``hk[0], hv[0]`` first."""
    size -= 1
    key = hk[size]
    val = hv[size]
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and hk[child + 1] < hk[child]:
            child += 1
        if hk[child] >= key:
            break
        hk[pos] = hk[child]
        hv[pos] = hv[child]
        pos = child
    if size > 0:
        hk[pos] = key
        hv[pos] = val
    return size


@njit(cache=True)
def init_duals(indptr, indices, cost, u, v, col4row, row4col, keep_v):
    """Cold start: column reduction (unless ``keep_v``), row reduction, greedy matching on tight edges.

    Afterwards every reduced cost on the graph is ``>= 0`` and every matched edge is tight.
    """
    n = u.shape[0]
    if not keep_v:
        v[:] = np.inf
        for i in range(n):
            for e in range(indptr[i], indptr[i + 1]):
                j = indices[e]
                if cost[e] < v[j]:
                    v[j] = cost[e]
        for j in range(n):
            if v[j] == np.inf:
                v[j] = 0.0
    col4row[:] = -1
    row4col[:] = -1
    for i in range(n):
        best = np.inf
        bj = -1
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            r = cost[e] - v[j]
            if r < best or (r == best and row4col[j] < 0):
                best = r
                bj = j
        u[i] = best
        if bj >= 0 and row4col[bj] < 0:
            row4col[bj] = i
            col4row[i] = bj


@njit(cache=True)
def warm_restart(indptr, indices, cost, u, v, col4row, row4col, slack):
    """Make the potentials feasible on a graph that gained edges, keeping ``v`` and the matching.

    A row whose smallest ``c_ij − v_j`` fell below ``u_i − slack`` gets ``u_i`` lowered to it and
    is unmatched (its matched edge is no longer tight); the other rows keep their state. Returns the
    number of rows unmatched.
    """
    n = u.shape[0]
    freed = 0
    for i in range(n):
        best = np.inf
        for e in range(indptr[i], indptr[i + 1]):
            r = cost[e] - v[indices[e]]
            if r < best:
                best = r
        if col4row[i] < 0:
            u[i] = best
        elif best < u[i] - slack:
            u[i] = best
            row4col[col4row[i]] = -1
            col4row[i] = -1
            freed += 1
    return freed


@njit(cache=True)
def sparse_sap(indptr, indices, cost, u, v, col4row, row4col):
    """Augment every free row along a shortest path of reduced costs (Dijkstra with a binary heap).

    Modifies ``u, v, col4row, row4col`` in place; requires reduced costs ``>= 0`` on the graph and
    tight matched edges (see :func:`init_duals`, :func:`warm_restart`), and keeps both invariants.
    Returns the number of augmentations, or ``-1 - r`` if free row ``r`` cannot be matched (the
    graph has no perfect matching).
    """
    n = u.shape[0]
    nnz = indices.shape[0]
    dist = np.empty(n)
    pred = np.empty(n, np.int64)
    seen = np.zeros(n, np.int64)
    done = np.zeros(n, np.int64)
    hk = np.empty(nnz + 1)
    hv = np.empty(nnz + 1, np.int64)
    scanned = np.empty(n, np.int64)
    stamp = 0
    n_aug = 0
    for r0 in range(n):
        if col4row[r0] >= 0:
            continue
        stamp += 1
        hsize = 0
        nsc = 0
        i = r0
        di = 0.0
        sink = -1
        dmin = 0.0
        while True:
            ui = u[i]
            for e in range(indptr[i], indptr[i + 1]):
                j = indices[e]
                if done[j] == stamp:
                    continue
                nd = di + cost[e] - ui - v[j]
                if seen[j] != stamp or nd < dist[j]:
                    seen[j] = stamp
                    dist[j] = nd
                    pred[j] = i
                    hsize = _heap_push(hk, hv, hsize, nd, j)
            j = -1
            d = 0.0
            while hsize > 0:
                d = hk[0]
                jj = hv[0]
                hsize = _heap_pop(hk, hv, hsize)
                if done[jj] != stamp and d <= dist[jj]:
                    j = jj
                    break
            if j < 0:
                return -1 - r0
            done[j] = stamp
            scanned[nsc] = j
            nsc += 1
            if row4col[j] < 0:
                sink = j
                dmin = d
                break
            i = row4col[j]
            di = d
        for t in range(nsc - 1):
            j = scanned[t]
            delta = dmin - dist[j]
            v[j] -= delta
            u[row4col[j]] += delta
        u[r0] += dmin
        j = sink
        while True:
            i = pred[j]
            row4col[j] = i
            nxt = col4row[i]
            col4row[i] = j
            if i == r0:
                break
            j = nxt
        n_aug += 1
    return n_aug


@njit(cache=True, parallel=True)
def lowdim_certificate(x, y, u, v, rows, n_keep):
    """Reduced costs of the full problem for the given rows, from exact coordinate differences.

    For each row ``i = rows[t]`` returns the ``n_keep`` columns with the smallest reduced cost
    ``‖x_i − y_j‖² − u_i − v_j`` (ascending), their costs ``‖x_i − y_j‖²`` and reduced costs.
    Every other column of the row has a reduced cost ``>=`` the last one kept.
    """
    nr = rows.shape[0]
    dim = x.shape[1]
    m = y.shape[0]
    keep_cols = np.full((nr, n_keep), -1, np.int64)
    keep_red = np.full((nr, n_keep), np.inf)
    keep_cost = np.zeros((nr, n_keep))
    for t in prange(nr):
        i = rows[t]
        ui = u[i]
        worst = np.inf
        nk = 0
        xi0 = x[i, 0]
        xi1 = x[i, 1] if dim > 1 else 0.0
        for j in range(m):
            if dim == 2:  # the common case, unrolled: the same sum in the same order
                q0 = xi0 - y[j, 0]
                q1 = xi1 - y[j, 1]
                s = q0 * q0 + q1 * q1
            else:
                s = 0.0
                for d in range(dim):
                    q = x[i, d] - y[j, d]
                    s += q * q
            r = s - ui - v[j]
            if nk < n_keep:
                pos = nk
                nk += 1
            elif r < worst:
                pos = n_keep - 1
            else:
                continue
            while pos > 0 and keep_red[t, pos - 1] > r:
                keep_red[t, pos] = keep_red[t, pos - 1]
                keep_cols[t, pos] = keep_cols[t, pos - 1]
                keep_cost[t, pos] = keep_cost[t, pos - 1]
                pos -= 1
            keep_red[t, pos] = r
            keep_cols[t, pos] = j
            keep_cost[t, pos] = s
            worst = keep_red[t, n_keep - 1]
    return keep_cols, keep_cost, keep_red


@njit(cache=True, parallel=True)
def block_row_topk(g, sqx, w, k):
    """Row top-k of a BLAS block: ``key_ij = w_j − 2 g_ij`` (``g = x yᵀ``, ``w = ‖y‖² − v``).

    Returns ``(cols, costs, keys)`` of shape ``(rows, k)``, ascending in key, with
    ``costs = sqx_i + ‖y_j‖² − 2 g_ij`` and ``keys = costs − v_j`` (the row constant included).
    """
    nb, m = g.shape
    cols = np.full((nb, k), -1, np.int64)
    keys = np.full((nb, k), np.inf)
    for t in prange(nb):
        worst = np.inf
        nk = 0
        for j in range(m):
            r = w[j] - 2.0 * g[t, j]
            if nk < k:
                pos = nk
                nk += 1
            elif r < worst:
                pos = k - 1
            else:
                continue
            while pos > 0 and keys[t, pos - 1] > r:
                keys[t, pos] = keys[t, pos - 1]
                cols[t, pos] = cols[t, pos - 1]
                pos -= 1
            keys[t, pos] = r
            cols[t, pos] = j
            worst = keys[t, k - 1]
        for q in range(k):
            keys[t, q] += sqx[t]
    return cols, keys


@njit(cache=True, parallel=True)
def block_col_topk_merge(g, sqx, sqy, shift, rows, best_key, best_row, best_val):
    """Merge a BLAS block ``g = x yᵀ`` into each column's running k smallest ``c_ij − shift_i`` (in place)."""
    nb, m = g.shape
    k = best_key.shape[0]
    for j in prange(m):
        for t in range(nb):
            cc = sqx[t] + sqy[j] - 2.0 * g[t, j]
            r = cc - shift[t]
            if r >= best_key[k - 1, j]:
                continue
            pos = k - 1
            while pos > 0 and best_key[pos - 1, j] > r:
                best_key[pos, j] = best_key[pos - 1, j]
                best_row[pos, j] = best_row[pos - 1, j]
                best_val[pos, j] = best_val[pos - 1, j]
                pos -= 1
            best_key[pos, j] = r
            best_row[pos, j] = rows[t]
            best_val[pos, j] = cc


@njit(cache=True, parallel=True, fastmath=True)
def edge_costs(x, y, rows, cols):
    """``‖x[rows[e]] − y[cols[e]]‖²`` for every edge from coordinate differences (the clouds need no
    centring): consecutive edges of one row keep ``x_i`` in cache, and ``fastmath`` lets
    the sum be reassociated and vectorised (float64 in any order: error ≤ D u ‖x_i − y_j‖², Higham
    §3.1, far inside the solver's tolerance)."""
    ne = rows.shape[0]
    dim = x.shape[1]
    out = np.empty(ne)
    for e in prange(ne):
        i = rows[e]
        j = cols[e]
        s = 0.0
        for d in range(dim):
            t = x[i, d] - y[j, d]
            s += t * t
        out[e] = s
    return out


def csr_from_pairs(n: int, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray | None = None):
    """Sorted, de-duplicated CSR graph from edge lists; returns ``(indptr, indices, rows, vals)``."""
    key = rows.astype(np.int64) * n + cols.astype(np.int64)
    key, first = np.unique(key, return_index=True)
    rows = key // n
    indices = key - rows * n
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return indptr, indices, rows, (None if vals is None else vals[first])
