r"""Exact, certified assignment solver for the squared Euclidean cost at 10⁴–10⁵ points.

The cost is ``c(x, y) = ‖x − y‖²`` (**not** halved), uniform weights, equal sizes: SPEC eqs.
(31)-(32). :func:`solve_assignment` returns the optimal permutation *and* dual potentials ``u, v``
that prove it optimal on the full problem,

.. math::
    c_{ij} - u_i - v_j \ge -\mathrm{tol}\ \ \forall i, j, \qquad
    c_{i\sigma(i)} - u_i - v_{\sigma(i)} = 0 \ (\pm\,\mathrm{tol}),

so that :math:`\sum_i c_{i\sigma(i)} \le \sum_i c_{i\tau(i)} + 2 m\,\mathrm{tol}` for every
permutation :math:`\tau` (LP duality). The dense ``m × m`` cost matrix is never held in memory.

How (see docs/performance.md):

1. a sparse candidate graph: the pairs ``i → i`` (so a perfect matching always exists), the k
   nearest neighbours of every ``x_i`` among the ``y`` and of every ``y_j`` among the ``x`` after
   aligning the two clouds (a kd-tree in low dimension, blocked BLAS passes in high dimension);
2. an exact shortest-augmenting-path solver (Jonker–Volgenant with Dijkstra, compiled with numba)
   on that graph, which returns the matching and the potentials;
3. the certificate on the *full* problem, in row blocks (memory ``O(m · block)``): exact
   coordinate differences in low dimension, ``‖x‖² + ‖y‖² − 2 xᵀy`` with BLAS (or torch on the GPU)
   after centring in high dimension;
4. pairs that violate it join the graph, the solver restarts warm from its potentials, and the
   loop repeats until the certificate holds, so the answer is exact whatever the input.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from otflow._nnpath import _pair_costs
from otflow._nnpath import gram as _nnpath_gram
from otflow._validation import check_pair

__all__ = ["AssignmentResult", "solve_assignment"]

_METHODS = ("auto", "dense", "lowdim", "blas")
_ENGINES = ("auto", "numpy", "torch")
DENSE_MAX_N = 256  # complete graph below this size
LOWDIM_MAX_D = 8  # kd-tree candidates and the compiled exact certificate up to this dimension
K_DEFAULT = 16  # candidates per row (and per column in the first graph) and pass
KD_MIN_N = 20_000  # low D from this size on: candidates from weighted kd-trees (below: exact passes)
KD_ROUNDS = 20  # at most this many kd-tree proposal rounds before the exact certificate (low D)
KD_CHECK_K = 2  # columns per row proposed in those rounds (few: a small k prunes the search most)
MULTISCALE_DEPTH = 8
MULTISCALE_MIN_N = 256  # coarse-to-fine potentials above this size (mean-shift potential below)
FLOAT32_MIN_D = 512  # float32 passes from this dimension (below, the passes are not what costs)
FLOAT32_MIN_N = 1_000  # ... and from this many points (the coarse levels below it stay float64)
TOL_REL = 1e-11  # default tolerance relative to the cost scale max‖x_c‖² + max‖y_c‖²


@dataclass(frozen=True)
class AssignmentResult:
    """An optimal assignment with its optimality certificate.

    Attributes
    ----------
    sigma : ndarray (m,), int64
        ``x[i]`` is sent to ``y[sigma[i]]``.
    u, v : ndarray (m,), float64
        Dual potentials of the rows (``x``) and columns (``y``): ``‖x_i − y_j‖² − u_i − v_j ≥ −tol``
        for all ``i, j``, with equality (within ``tol``) on the pairs ``(i, sigma[i])``.
    cost : float
        Mean cost :math:`\\frac1m \\sum_i \\|x_i - y_{\\sigma(i)}\\|^2` (equals ``w2_squared(x, y)``).
    method : str
        Strategy used: ``"dense"``, ``"lowdim"``, ``"blas"``, or ``"nn"`` when the row-wise
        nearest neighbours already form a permutation (one float32 pass with a rigorous error
        bound, or for large problems on a CPU with native bfloat16 a bfloat16 pass through torch
        first, engine ``"torch:cpu"``; ``u`` the row minima, ``v = 0``; see ``otflow._nnpath``).
    engine : str
        Where the cost blocks and the certificate ran: ``"numba"``, ``"numpy"``, ``"torch:cpu"``,
        ``"torch:cuda"``.
    tol : float
        Certificate tolerance (absolute, in cost units).
    max_violation : float
        ``max(0, −min_ij (c_ij − u_i − v_j))`` over the full problem; ``≤ tol``.
    max_gap : float
        ``max_i |c_{iσ(i)} − u_i − v_{σ(i)}|``; ``≤ tol``.
    rounds : int
        Solve–certify rounds (1 when the first candidate graph already held the optimum).
    n_edges : int
        Edges of the final candidate graph.
    seconds : float
        Wall time of the call.
    """

    sigma: np.ndarray
    u: np.ndarray
    v: np.ndarray
    cost: float
    method: str
    engine: str
    tol: float
    max_violation: float
    max_gap: float
    rounds: int
    n_edges: int
    seconds: float


def _emit(trace: list | None, **fields) -> dict | None:
    """Append one step's record to ``trace`` (see :func:`solve_assignment`) and return it for updates."""
    if trace is None:
        return None
    trace.append(fields)
    return fields


def _kernels():
    """The compiled kernels (``otflow._lap``, numba), loaded on first use so ``import otflow`` stays light."""
    from otflow import _lap

    return _lap


# ----------------------------------------------------------------------------------------------
# the problem in centred coordinates


class _Problem:
    """Both clouds centred on their common mean (costs unchanged), squared norms, scale and tol.

    The centred float64 copies ``x``, ``y`` are made on first use (at 8,192-D and n = 10,000 each is
    655 MB of fresh memory): the float32 passes never need ``x`` whole, nor ``y`` unless a row falls
    back to float64; ``xrows`` centres just the rows asked for, with the same values.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, tol: float | None):
        from otflow._nnpath import centred, common_centre

        self.n, self.dim = x.shape
        self.x0, self.y0 = x, y
        self.center = common_centre(x, y)
        self.sqx = centred(x, self.center, None)[1]
        self.sqy = centred(y, self.center, None)[1]
        self.scale = float(self.sqx.max() + self.sqy.max())
        self.tol = TOL_REL * self.scale if tol is None else float(tol)

    @functools.cached_property
    def x(self) -> np.ndarray:
        from otflow._nnpath import centred

        return centred(self.x0, self.center)[0]

    @functools.cached_property
    def y(self) -> np.ndarray:
        from otflow._nnpath import centred

        return centred(self.y0, self.center)[0]

    def xrows(self, rows) -> np.ndarray:
        """``x[rows]`` centred, without centring all of ``x``."""
        if "x" in self.__dict__:
            return self.x[rows]
        return self.x0[rows] - self.center

    def sub(self, rows: np.ndarray, cols: np.ndarray) -> _Problem:
        return _Problem(self.x0[rows], self.y0[cols], None)

    def translation_potential(self) -> np.ndarray:
        """Column potential ``v_j = 2 δ·y_j`` that ranks ``c_ij − v_j`` like ``‖x_i + δ − y_j‖²``."""
        return 2.0 * (self.y @ (self.y.mean(0) - self.x.mean(0)))


# ----------------------------------------------------------------------------------------------
# engines for the blocked dense computations (BLAS through numpy, or torch on CPU / CUDA)


class _NumpyBlocks:
    """Row blocks of ``c_ij = ‖x_i‖² + ‖y_j‖² − 2 x_iᵀy_j`` (centred, float64), never the whole matrix."""

    name = "numpy"

    def __init__(self, p: _Problem, block: int):
        self.p = p
        self.block = block

    def _costs(self, rows):
        p = self.p
        c = _nnpath_gram(p.xrows(rows), p.y)
        c *= -2.0
        c += p.sqx[rows, None]
        c += p.sqy[None, :]
        return c

    def ctransform(self, rows: np.ndarray, u_rows: np.ndarray) -> np.ndarray:
        """``v_j = min_{t} c_{rows[t], j} − u_rows[t]`` for every column j."""
        v = np.full(self.p.n, np.inf)
        for s in range(0, rows.size, self.block):
            c = self._costs(rows[s : s + self.block])
            c -= u_rows[s : s + self.block, None]
            np.minimum(v, c.min(axis=0), out=v)
        return v

    def row_topk(self, rows: np.ndarray, v: np.ndarray, k: int, col_k: int = 0):
        """For each row, the k columns with the smallest ``c_ij − v_j``: ``(cols, costs, keys, thresh)``,
        sorted by key, where every other column has ``c_ij − v_j ≥ thresh`` (here the k-th key).

        With ``col_k > 0`` also returns, as a fifth item ``(rows, cols, costs)``, each column's
        ``col_k`` rows with the smallest ``c_ij − u_i``, where ``u_i = min_j c_ij − v_j``.
        """
        cols, keys, col_pairs = self._scan(self._gram64, rows, v, k, col_k)
        out = cols, keys + v[cols], keys, keys[:, -1].copy()
        return out if not col_k else (*out, col_pairs)

    def _gram64(self, r: np.ndarray) -> np.ndarray:
        return _nnpath_gram(self.p.xrows(r), self.p.y)

    def _scan(self, gram_of, rows: np.ndarray, v: np.ndarray, k: int, col_k: int):
        """One blocked pass over the rows with Gram blocks ``gram_of(r)``: each row's k smallest keys
        ``c_ij − v_j`` (columns and keys, ascending) and, with ``col_k``, each column's ``col_k`` best
        rows as ``(rows, cols, costs)`` pairs (else None); costs and keys at the blocks' precision."""
        n = self.p.n
        k = min(k, n)
        out_c, out_key = [], []
        if col_k:
            col_k = min(col_k, rows.size)
            best_key = np.full((col_k, n), np.inf)
            best_row = np.zeros((col_k, n), np.int64)
            best_val = np.zeros((col_k, n))
        for s in range(0, rows.size, self.block):
            r = rows[s : s + self.block]
            gram = gram_of(r)
            cols, keys = _kernels().block_row_topk(gram, self.p.sqx[r], self.p.sqy - v, k)
            out_c.append(cols)
            out_key.append(keys)
            if col_k:
                _kernels().block_col_topk_merge(
                    gram, self.p.sqx[r], self.p.sqy, keys[:, 0], r, best_key, best_row, best_val
                )
        if not col_k:
            return np.concatenate(out_c), np.concatenate(out_key), None
        ok = np.isfinite(best_key)
        ccols = np.broadcast_to(np.arange(n), best_key.shape)
        return np.concatenate(out_c), np.concatenate(out_key), (best_row[ok], ccols[ok], best_val[ok])


class _Float32Blocks(_NumpyBlocks):
    """The passes in float32 BLAS (about twice float64's speed) with float64 where it matters.

    The Gram blocks ``x_iᵀy_j`` are float32 products of the centred clouds, with the rigorous bound
    ``|c̃_ij − c_ij| ≤ e ‖x_i‖ ‖y_j‖`` of ``otflow._nnpath._dot_bound`` (conversion to float32 and a
    length-D float32 sum in any order). Three uses, three needs:

    * the c-transform of the coarse potentials is a heuristic start: float32 as it is;
    * the candidates of a row are its k smallest float32 keys ``c̃_ij − v_j``; the costs that enter
      the graph are recomputed in float64 (:func:`_edge_costs`), so the graph is exact;
    * the certificate's threshold (every column left out has ``c_ij − v_j ≥ thresh_i``) is the k-th
      float32 key less the bound ``E_i = e ‖x_i‖ max_j ‖y_j‖``. A row whose threshold so lowered
      falls below its smallest exact key (the bound is too loose for that row to be certified by
      its candidates) is recomputed with the float64 blocks.

    So the answer and its certificate are those of the float64 engine; only the number of rows that
    take the float64 route depends on the bound (about 1-2 % at D = 8,192 on real image features).
    """

    name = "numpy"
    precision = "float32"

    def __init__(self, p: _Problem, block: int, clouds=None):
        super().__init__(p, block)
        from otflow._nnpath import _dot_bound

        if clouds is not None:  # the one-pass attempt's float32 copies: the same centre, the same values
            self.x32, self.y32 = clouds.x32, clouds.y32
        else:
            from otflow._nnpath import centred

            self.x32 = centred(p.x0, p.center, np.float32)[0]
            self.y32 = centred(p.y0, p.center, np.float32)[0]
        self.err = _dot_bound(p.dim) * np.sqrt(p.sqx) * float(np.sqrt(p.sqy.max()))
        self.float64_rows = 0  # rows that took the float64 route (for the trace)

    def _costs(self, rows):
        p = self.p
        c = _nnpath_gram(self.x32[rows], self.y32).astype(np.float64)
        c *= -2.0
        c += p.sqx[rows, None]
        c += p.sqy[None, :]
        return c

    def _gram32(self, r: np.ndarray) -> np.ndarray:
        return _nnpath_gram(self.x32[r], self.y32).astype(np.float64)

    def row_topk(self, rows: np.ndarray, v: np.ndarray, k: int, col_k: int = 0):
        n = self.p.n
        cols, keys32, col_pairs = self._scan(self._gram32, rows, v, k, col_k)
        cols, costs, keys, thresh = self._exact_candidates(rows, cols, keys32[:, -1] - self.err[rows], v, k)
        if not col_k:
            return cols, costs, keys, thresh
        cr, cc, _ = col_pairs  # their float32 costs are not used: the graph gets float64 ones
        fresh = ~np.isin(cr * n + cc, rows[:, None] * n + cols)  # pairs the rows did not propose
        cr, cc = cr[fresh], cc[fresh]
        return cols, costs, keys, thresh, (cr, cc, _edge_costs(self.p, cr, cc))

    def _exact_candidates(self, rows, cols, thresh, v, k):
        """float64 costs of the float32 candidates, sorted by exact key; rows the bound cannot
        certify through their candidates are redone in float64."""
        costs = _edge_costs(self.p, np.repeat(rows, cols.shape[1]), cols.ravel()).reshape(cols.shape)
        keys = costs - v[cols]
        order = np.argsort(keys, axis=1, kind="stable")
        cols, costs, keys = (np.take_along_axis(a, order, axis=1) for a in (cols, costs, keys))
        loose = np.flatnonzero(thresh < keys[:, 0])
        if loose.size:
            self.float64_rows += loose.size
            c64, cost64, key64, th64 = _NumpyBlocks.row_topk(self, rows[loose], v, k)
            cols[loose], costs[loose], keys[loose], thresh[loose] = c64, cost64, key64, th64
        return cols, costs, keys, thresh


class _TorchBlocks(_NumpyBlocks):
    """The same blocks with torch (float64) on a CPU or CUDA device."""

    def __init__(self, p: _Problem, block: int, device):
        import torch

        self.torch = torch
        self.p = p
        self.block = block
        self.device = torch.device(device)
        self.name = f"torch:{self.device.type}"
        self.tx, self.ty, self.tsqx, self.tsqy = (self._t(a) for a in (p.x, p.y, p.sqx, p.sqy))

    def _t(self, a):
        return self.torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    def _costs(self, rows):
        rows = self._t(rows)
        c = self.torch.addmm(self.tsqy[None, :], self.tx[rows], self.ty.T, beta=1.0, alpha=-2.0)
        c += self.tsqx[rows, None]
        return c

    def ctransform(self, rows, u_rows):
        torch = self.torch
        v = torch.full((self.p.n,), math.inf, dtype=torch.float64, device=self.device)
        tu = self._t(u_rows)
        for s in range(0, rows.size, self.block):
            c = self._costs(rows[s : s + self.block])
            c -= tu[s : s + self.block, None]
            v = torch.minimum(v, c.min(dim=0).values)
        return v.cpu().numpy()

    def row_topk(self, rows, v, k, col_k=0):
        torch = self.torch
        n = self.p.n
        k = min(k, n)
        tv = self._t(v)
        trows = self._t(rows)
        out_c, out_cost, out_key = [], [], []
        if col_k:
            col_k = min(col_k, rows.size)
            best_key = torch.full((col_k, n), math.inf, dtype=torch.float64, device=self.device)
            best_row = torch.zeros((col_k, n), dtype=torch.int64, device=self.device)
            best_val = torch.zeros((col_k, n), dtype=torch.float64, device=self.device)
        for s in range(0, rows.size, self.block):
            c = self._costs(rows[s : s + self.block])
            key = c - tv[None, :]
            kv, idx = torch.topk(key, k, dim=1, largest=False, sorted=True)
            out_c.append(idx.cpu().numpy())
            out_cost.append(torch.gather(c, 1, idx).cpu().numpy())
            out_key.append(kv.cpu().numpy())
            if col_k:
                key -= kv[:, :1]
                key += tv[None, :]
                kk = min(col_k, c.shape[0])
                kc, idc = torch.topk(key, kk, dim=0, largest=False)
                ck = torch.cat([best_key, kc])
                cr = torch.cat([best_row, trows[s + idc]])
                cv = torch.cat([best_val, torch.gather(c, 0, idc)])
                best_key, sel = torch.topk(ck, col_k, dim=0, largest=False)
                best_row = torch.gather(cr, 0, sel)
                best_val = torch.gather(cv, 0, sel)
        keys = np.concatenate(out_key)
        out = np.concatenate(out_c), np.concatenate(out_cost), keys, keys[:, -1].copy()
        if not col_k:
            return out
        ok = torch.isfinite(best_key)
        ccols = torch.arange(n, device=self.device).expand(col_k, n)
        return (*out, (best_row[ok].cpu().numpy(), ccols[ok].cpu().numpy(), best_val[ok].cpu().numpy()))


class _ExactLowDim:
    """Low dimension on the CPU: costs from exact coordinate differences (compiled, parallel)."""

    name = "numba"

    def __init__(self, p: _Problem):
        self.p = p

    def ctransform(self, rows, u_rows):
        n = self.p.n
        _, _, key = _kernels().lowdim_certificate(self.p.y, self.p.x[rows], np.zeros(n), u_rows, np.arange(n), 1)
        return key[:, 0]

    def row_topk(self, rows, v, k):
        k = min(k, self.p.n)
        cols, costs, red = _kernels().lowdim_certificate(self.p.x, self.p.y, np.zeros(self.p.n), v, rows, k)
        return cols, costs, red, red[:, -1].copy()

    # candidates from weighted kd-trees (otflow._kdw): proposals only (each pair's cost is exact);
    # the certificate is always the exact pass over all pairs above

    def _tree(self, side: str):
        if not hasattr(self, "_trees"):
            self._trees = {}
        if side not in self._trees:
            from otflow._kdw import WeightedTree

            self._trees[side] = WeightedTree(self.p.y if side == "y" else self.p.x)
        return self._trees[side]

    def leaf_order(self, side: str) -> np.ndarray:
        """The points of ``x`` or ``y`` along a Z-order (Morton) curve: neighbours stay close."""
        return _morton_order(self.p.y if side == "y" else self.p.x)

    def kd_row_topk(self, rows, v, k):
        """Each row's k smallest ``c_ij − v_j``: ``(cols, costs, keys)``, ascending in key."""
        return self._tree("y").knn(self.p.x[rows], v, k)

    def kd_col_topk(self, u, k):
        """Each column's k smallest ``c_ij − u_i``: ``(rows, cols, costs)`` of those pairs."""
        idx, costs, _ = self._tree("x").knn(self.p.y, u, k)
        return idx, np.repeat(np.arange(self.p.n), idx.shape[1]).reshape(idx.shape), costs

    def kd_col_query(self, cols, u, k):
        """For the given columns, their k smallest ``c_ij − u_i``: ``(rows, costs, keys)``."""
        return self._tree("x").knn(self.p.y[cols], u, k)

    def kd_ctransform(self, rows, u_rows):
        """``v_j = min_{i ∈ rows} c_ij − u_i`` (the c-transform over a sub-sample of the rows)."""
        from otflow._kdw import WeightedTree

        return WeightedTree(self.p.x[rows]).knn(self.p.y, u_rows, 1)[2][:, 0]


def _morton_order(p: np.ndarray) -> np.ndarray:
    """Indices of the points sorted along a Z-order curve (coordinates quantised to 63 // D bits,
    bits interleaved), in numpy: a spatially even order without building a tree."""
    n, d = p.shape
    bits = max(1, 63 // d)
    lo, span = p.min(0), np.ptp(p, axis=0)
    q = ((p - lo) / np.where(span > 0, span, 1.0) * ((1 << bits) - 1)).astype(np.uint64)
    code = np.zeros(n, np.uint64)
    for b in range(bits - 1, -1, -1):
        for c in range(d):
            code = (code << np.uint64(1)) | ((q[:, c] >> np.uint64(b)) & np.uint64(1))
    return np.argsort(code, kind="stable")


# ----------------------------------------------------------------------------------------------
# solving on a candidate graph


class _Graph:
    """A growing edge list with costs; ``csr()`` de-duplicates it into CSR for the compiled solver."""

    def __init__(self, n: int):
        self.n = n
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.indptr = self.indices = self.cost = None

    def add(self, rows, cols, costs):
        self.parts.append((np.asarray(rows, np.int64).ravel(), np.asarray(cols, np.int64).ravel(), np.ravel(costs)))

    def csr(self):
        rows = np.concatenate([q[0] for q in self.parts])
        cols = np.concatenate([q[1] for q in self.parts])
        vals = np.concatenate([q[2] for q in self.parts])
        self.indptr, self.indices, rows, self.cost = _kernels().csr_from_pairs(self.n, rows, cols, vals)
        self.parts = [(rows, self.indices, self.cost)]
        return self.indptr, self.indices, self.cost


class _Matching:
    def __init__(self, n: int):
        self.u = np.zeros(n)
        self.v = np.zeros(n)
        self.col4row = np.full(n, -1, np.int64)
        self.row4col = np.full(n, -1, np.int64)

    def solve(self, g: _Graph, slack: float, *, v0=None, warm: bool = False, trace: list | None = None) -> int:
        indptr, indices, cost = g.csr()
        if warm:
            freed = _kernels().warm_restart(indptr, indices, cost, self.u, self.v, self.col4row, self.row4col, slack)
        else:
            if v0 is not None:
                self.v[:] = v0
            _kernels().init_duals(indptr, indices, cost, self.u, self.v, self.col4row, self.row4col, v0 is not None)
            freed = int((self.col4row < 0).sum())
        status = _kernels().sparse_sap(indptr, indices, cost, self.u, self.v, self.col4row, self.row4col)
        _emit(trace, step="sap", n=len(self.u), sap_status=status)
        if status < 0:  # impossible: the pairs i -> i are always in the graph
            raise RuntimeError(f"candidate graph without a perfect matching (row {-1 - status})")
        return freed


def _identity_costs(p: _Problem) -> np.ndarray:
    """``c_ii`` from coordinate differences (the centre cancels), chunk by chunk."""
    return _pair_costs(p.x0, p.y0, np.arange(p.n))


def _approx_potential(p: _Problem, eng, k: int, depth: int, trace: list | None) -> np.ndarray:
    """Column potentials ``v0`` from the problem on a random quarter of the points (multiscale).

    The sub-problem is solved exactly (recursively, certified) and its row potentials are
    c-transformed over the sub-sample: ``v0_j = min_{i∈S} c_ij − u_i``. Small problems, or the
    end of the recursion, use the potential of the mean shift instead.
    """
    n = p.n
    if n <= MULTISCALE_MIN_N or depth <= 0:
        return p.translation_potential()
    ns = n // 4
    if isinstance(eng, _ExactLowDim):
        # every 4th point in kd-tree leaf order: a spatially even sub-sample, so the coarse
        # problem's potentials carry little sampling noise
        rows = np.sort(eng.leaf_order("x")[::4][:ns])
        cols = np.sort(eng.leaf_order("y")[::4][:ns])
    else:
        rng = np.random.default_rng(n)  # fixed: the answer must not depend on global random state
        rows = np.sort(rng.choice(n, ns, replace=False))
        cols = np.sort(rng.choice(n, ns, replace=False))
    sp = p.sub(rows, cols)
    state = _solve(sp, _make_engine(sp, eng), "auto", k, 1000, depth - 1, trace)
    # the sub-problem's costs are the full problem's costs, so its potentials transfer
    if isinstance(eng, _ExactLowDim) and n >= KD_MIN_N:
        return eng.kd_ctransform(rows, state.m.u)
    return eng.ctransform(rows, state.m.u)


def _first_graph(p: _Problem, eng, v0: np.ndarray, k: int):
    """Identity pairs, each row's k smallest ``c_ij − v0_j`` and each column's k smallest ``c_ij − u0_i``.

    Returns the graph and, for a blocked pass, the per-row threshold (every other column has
    ``c_ij − v0_j`` at least that large).
    """
    n = p.n
    k = min(k, n)
    g = _Graph(n)
    g.add(np.arange(n), np.arange(n), _identity_costs(p))
    if isinstance(eng, _ExactLowDim) and n < KD_MIN_N:  # small: exact passes over all pairs are cheap
        cols, costs, keys, thresh = eng.row_topk(np.arange(n), v0, k)
        g.add(np.repeat(np.arange(n), cols.shape[1]), cols, costs)
        idr, costr, _ = _kernels().lowdim_certificate(p.y, p.x, np.zeros(n), keys[:, 0], np.arange(n), k)
        g.add(idr, np.repeat(np.arange(n), idr.shape[1]), costr)
        return g, thresh
    if isinstance(eng, _ExactLowDim):  # kd-tree proposals; no threshold: the exact pass certifies
        cols, costs, keys = eng.kd_row_topk(np.arange(n), v0, k)
        g.add(np.repeat(np.arange(n), cols.shape[1]), cols, costs)
        idr, idc, costr = eng.kd_col_topk(keys[:, 0], k)
        g.add(idr, idc, costr)
        return g, None
    cols, costs, keys, thresh, (cr, cc, cv) = eng.row_topk(np.arange(n), v0, k, col_k=k)
    g.add(np.repeat(np.arange(n), cols.shape[1]), cols, costs)
    g.add(cr, cc, cv)
    return g, thresh


class _State:
    """A solved graph with the data of its certificate.

    For every row ``i``, each column outside the graph has ``c_ij − snaps[snap_of_row[i]]_j >=
    thresh[i]``; hence its reduced cost is at least ``thresh[i] − u_i − max_j(v_j − vref_j)``.
    """

    def __init__(self, n: int, m: _Matching, g: _Graph):
        self.m = m
        self.g = g
        self.thresh = np.full(n, -np.inf)
        self.snap_of_row = np.zeros(n, np.int64)
        self.snaps = [np.zeros(n)]
        self.rounds = 1

    def row_lower_bounds(self) -> np.ndarray:
        drift = np.array([np.max(self.m.v - s) for s in self.snaps])
        return self.thresh - self.m.u - drift[self.snap_of_row]


def _kd_refine(p: _Problem, cand: _ExactLowDim, m: _Matching, g: _Graph, k: int, slack: float, trace) -> None:
    """Cheap rounds before the exact certificate (low D): weighted kd-tree proposals of the smallest
    reduced costs; pairs that violate the dual join the graph and the matching is re-solved warm,
    until the proposals show no violation (or ``KD_ROUNDS``). The first round asks for every row;
    later ones only for the rows and columns whose potential the re-solve changed (a pair can turn
    negative only through them). Proposals only: what certifies the answer is the exact pass over
    all pairs that follows in :func:`_solve`."""
    rows, cols_changed = np.arange(p.n), np.empty(0, np.int64)
    for r in range(KD_ROUNDS):
        t0 = time.perf_counter()
        cc, costs, keys = cand.kd_row_topk(rows, m.v, KD_CHECK_K)
        bad = keys - m.u[rows, None] < -p.tol
        new = [(np.broadcast_to(rows[:, None], bad.shape)[bad], cc[bad], costs[bad])]
        if cols_changed.size:
            rr, costs, keys = cand.kd_col_query(cols_changed, m.u, KD_CHECK_K)
            bad = keys - m.v[cols_changed, None] < -p.tol
            new.append((rr[bad], np.broadcast_to(cols_changed[:, None], bad.shape)[bad], costs[bad]))
        n_bad = sum(q[0].size for q in new)
        rec = _emit(trace, step="kd", n=p.n, round=r + 1, checked=int(rows.size + cols_changed.size),
                    violating=n_bad, kd_s=time.perf_counter() - t0)  # fmt: skip
        if n_bad == 0:
            return
        for q in new:
            g.add(*q)
        u0, v0 = m.u.copy(), m.v.copy()
        t0 = time.perf_counter()
        m.solve(g, slack, warm=True, trace=trace)
        if rec is not None:
            rec["solve_s"] = time.perf_counter() - t0
        # a reduced cost c_ij − u_i − v_j falls only where u_i or v_j rose: those rows and columns
        rows, cols_changed = np.flatnonzero(m.u - u0 > slack), np.flatnonzero(m.v - v0 > slack)


def _solve(p: _Problem, eng, method: str, k: int, max_rounds: int, depth: int, trace: list | None) -> _State:
    """Solve, certify every row, add violating pairs, re-solve warm; until the certificate holds."""
    n, dim = p.n, p.dim
    if method == "auto":
        method = "dense" if n <= DENSE_MAX_N else ("lowdim" if dim <= LOWDIM_MAX_D else "blas")
    m = _Matching(n)
    slack = max(0.01 * p.tol, 1e-15 * p.scale)
    if method == "dense":
        g = _Graph(n)
        rows = np.repeat(np.arange(n), n)
        cols = np.tile(np.arange(n), n)
        g.add(rows, cols, _edge_costs(p, rows, cols) if dim <= LOWDIM_MAX_D else _dense_costs(p))
        m.solve(g, slack, trace=trace)
        st = _State(n, m, g)
    else:
        if method == "lowdim" and dim > LOWDIM_MAX_D:
            raise ValueError(f"method: 'lowdim' needs D <= {LOWDIM_MAX_D}, got D = {dim}")
        if method == "lowdim":
            cand = eng if isinstance(eng, _ExactLowDim) else _ExactLowDim(p)
        else:
            cand = eng if not isinstance(eng, _ExactLowDim) else _NumpyBlocks(p, max(1, 4_000_000 // n))
        t0 = time.perf_counter()
        v0 = _approx_potential(p, cand, k, depth, trace)
        t1 = time.perf_counter()
        g, thresh = _first_graph(p, cand, v0, k)
        t2 = time.perf_counter()
        freed = m.solve(g, slack, v0=v0, trace=trace)
        _emit(
            trace,
            step="first",
            n=n,
            coarse_s=t1 - t0,
            graph_s=t2 - t1,
            first_solve_s=time.perf_counter() - t2,
            freed=freed,
            precision=getattr(cand, "precision", "float64"),
            float64_rows=getattr(cand, "float64_rows", n),
        )
        st = _State(n, m, g)
        if thresh is not None:
            st.thresh[:] = thresh
            st.snaps[0] = v0.copy()
        else:
            _kd_refine(p, cand, m, g, k, slack, trace)
    st.method = method
    while True:
        need = np.flatnonzero(st.row_lower_bounds() < -p.tol)
        rec = _emit(trace, step="round", n=n, round=st.rounds, edges=int(g.indices.size), checked=int(need.size))
        if need.size == 0:
            return st
        t0 = time.perf_counter()
        cols, costs, keys, thresh = eng.row_topk(need, m.v, k)
        red = keys - m.u[need, None]
        if rec is not None:
            rec.update(check_s=time.perf_counter() - t0, violating=int((red[:, 0] < -p.tol).sum()))
        g.add(np.repeat(need, cols.shape[1]), cols, costs)
        st.snaps.append(m.v.copy())
        st.snap_of_row[need] = len(st.snaps) - 1
        st.thresh[need] = thresh
        if red[:, 0].min() >= -p.tol:
            continue  # no violation: the added pairs are certified, nothing to re-solve
        if st.rounds >= max_rounds:
            raise RuntimeError(f"certificate still violated after {st.rounds} rounds (tol {p.tol:.3g})")
        st.rounds += 1
        t0 = time.perf_counter()
        freed = m.solve(g, slack, warm=True, trace=trace)
        if rec is not None:
            rec.update(freed=freed, solve_s=time.perf_counter() - t0)


def _make_engine(p: _Problem, like):
    if isinstance(like, _ExactLowDim):
        return _ExactLowDim(p)
    if isinstance(like, _TorchBlocks):
        return _TorchBlocks(p, like.block, like.device)
    if isinstance(like, _Float32Blocks) and p.n >= FLOAT32_MIN_N:
        return _Float32Blocks(p, like.block)
    return _NumpyBlocks(p, like.block)


def _edge_costs(p: _Problem, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``c_ij`` of the given pairs from coordinate differences (the centre cancels: none is needed)."""
    return _kernels().edge_costs(p.x0, p.y0, rows.astype(np.int64), cols.astype(np.int64))


def _may_have_cuda() -> bool:
    """Whether CUDA could be available, without importing torch: torch is loaded already (then
    it is asked), or an NVIDIA device node exists (Linux), or the platform is not Linux (where no
    cheap test exists; torch is asked)."""
    if "torch" in sys.modules or not sys.platform.startswith("linux"):
        return True
    return os.path.exists("/dev/nvidiactl") or os.path.exists("/dev/nvidia0")


def _pick_engine(engine: str, device):
    if engine not in _ENGINES:
        raise ValueError(f"engine: expected one of {_ENGINES}, got {engine!r}")
    if engine == "numpy":
        if device is not None:
            raise ValueError("device: only meaningful with engine='torch' (or 'auto')")
        return "numpy", None
    if engine == "auto" and device is None and not _may_have_cuda():
        return "numpy", None  # no NVIDIA device: spare the first call torch's import (over a second)
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if engine == "auto":
        return ("torch", device) if torch.device(device).type == "cuda" else ("numpy", None)
    return "torch", device


# ----------------------------------------------------------------------------------------------
# the public solver


def _float32_safe(x: np.ndarray, y: np.ndarray) -> bool:
    """float32 passes need moderate magnitudes (no overflow, no subnormals in the bound); others take
    the float64 route (which rescales or raises)."""
    big = max(float(x.max()), -float(x.min()), float(y.max()), -float(y.min()))  # no |x| temporaries
    return 1e-12 < big < 1e12


def _check_options(method: str, tol, trace, **positive) -> None:
    """The options of :func:`solve_assignment` other than the clouds and the engine."""
    if method not in _METHODS:
        raise ValueError(f"method: expected one of {_METHODS}, got {method!r}")
    if tol is not None and not (isinstance(tol, int | float) and np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol: expected a finite number >= 0, got {tol!r}")
    if trace is not None and not isinstance(trace, list):
        raise ValueError(f"trace: expected a list to append the solver's steps to, or None, got {type(trace).__name__}")
    for name, val in positive.items():
        if val is not None and (not isinstance(val, int | np.integer) or val < 1):
            raise ValueError(f"{name}: expected a positive integer, got {val!r}")


def solve_assignment(
    x,
    y,
    *,
    method: str = "auto",
    engine: str = "auto",
    device=None,
    tol: float | None = None,
    k: int | None = None,
    block: int | None = None,
    max_rounds: int = 1000,
    trace: list | None = None,
) -> AssignmentResult:
    r"""Exact optimal assignment with squared Euclidean cost, with a certificate of optimality.

    Solves SPEC eq. (32),

    .. math::
        \sigma^* = \arg\min_{\sigma \in S_m} \frac1m \sum_{i=1}^m \|x_i - y_{\sigma(i)}\|_2^2,

    together with its LP dual :math:`\max \sum_i u_i + \sum_j v_j` subject to
    :math:`\|x_i - y_j\|^2 - u_i - v_j \ge 0`, and verifies both on the full ``m × m`` problem in
    row blocks (the dense matrix is never held in memory).

    Parameters
    ----------
    x, y : array (m, D)
        Two point clouds with the same number of points (numpy or torch).
    method : {"auto", "dense", "lowdim", "blas"}
        ``"dense"`` solves on the complete graph (small m); ``"lowdim"`` proposes candidates with
        kd-trees (low D); ``"blas"`` proposes them with blocked BLAS passes (any D). ``"auto"``
        picks ``"dense"`` for ``m ≤ 256``, else ``"lowdim"`` for ``D ≤ 8``, else ``"blas"``, which
        on the CPU first tries the one-pass nearest-neighbour certificate (method ``"nn"``).
    engine : {"auto", "numpy", "torch"}
        Where the blocked cost computations and the certificate run. ``"auto"`` uses torch when
        CUDA is available, else the CPU: compiled exact coordinate differences for ``D ≤ 8``,
        numpy BLAS otherwise.
    device : str or torch.device, optional
        Torch device for ``engine="torch"`` (default: CUDA when available, else CPU).
    tol : float, optional
        Absolute certificate tolerance; default ``1e-11 · (max‖x_c‖² + max‖y_c‖²)`` for the clouds
        centred on their common mean: far above the float64 rounding of the costs, far below any
        meaningful cost gap.
    k : int, optional
        Candidates per row proposed by each pass (default 16).
    block : int, optional
        Rows per block of the dense passes (default: about 32 MB of float64 per block).
    max_rounds : int
        Safety bound on solve–certify rounds; each round adds at least one violating pair to the
        candidate graph, so the loop is finite and short in practice.
    trace : list, optional
        For profiling (benchmarks/assignment.py): the solver appends one dict per step, each with
        ``step`` and the size ``n`` of the problem it belongs to (the coarse sub-problems of the
        multiscale start come first, with smaller ``n``). ``step="sap"``: one run of the compiled
        shortest-augmenting-path solver, with its ``sap_status``; ``step="first"``: the timings of
        the start (``coarse_s``, ``graph_s``, ``first_solve_s``) and the unmatched rows ``freed``;
        ``step="round"``: one certification round, with ``round``, the graph's ``edges`` and the
        rows re-``checked``, and when rows were re-checked ``check_s`` and ``violating``, and after
        a warm re-solve ``freed`` and ``solve_s``. Nothing is recorded when None.

    Returns
    -------
    AssignmentResult
        ``sigma``, the potentials ``u, v``, the mean cost and the certificate.

    Raises
    ------
    ValueError
        For NaN/inf or empty input, different numbers of points or dimensions, bad options, and
        coordinates so large (or small) that the squared distances, the potentials and the
        tolerance do not fit in float64; :func:`optimal_assignment` rescales the clouds exactly
        first and works at any magnitude.

    Examples
    --------
    >>> r = solve_assignment([[0.0], [1.0], [2.0]], [[2.1], [0.1], [1.1]])
    >>> r.sigma
    array([1, 2, 0])
    >>> round(r.cost, 6), bool(r.max_violation <= r.tol), r.method
    (0.01, True, 'dense')
    """
    t0 = time.perf_counter()
    x, y = check_pair(x, y)
    _check_options(method, tol, trace, k=k, block=block, max_rounds=max_rounds)
    eng_kind, dev = _pick_engine(engine, device)
    n, dim = x.shape
    if method == "auto" and n > DENSE_MAX_N and dim > LOWDIM_MAX_D and eng_kind == "numpy":
        res, clouds = _nearest_neighbour_path(x, y, tol, block, t0, trace) if _float32_safe(x, y) else (None, None)
        if res is not None:
            return res

    p = _Problem(x, y, tol)
    if not np.isfinite(p.scale) or 0.0 < p.scale < np.finfo(np.float64).tiny / TOL_REL:
        raise ValueError(
            f"x and y: squared distances {'overflow' if p.scale > 1 else 'underflow'} float64 at this magnitude "
            f"(largest coordinate {max(np.abs(x).max(), np.abs(y).max()):.3g}); divide both by a common factor "
            "(optimal_assignment, w2_squared and ot_score do this themselves)"
        )
    if method == "auto":
        method = "dense" if n <= DENSE_MAX_N else ("lowdim" if dim <= LOWDIM_MAX_D else "blas")
    if block is None:
        block = int(max(1, min(n, 4_000_000 // n)))
    k = K_DEFAULT if k is None else int(k)
    exact = eng_kind == "numpy" and dim <= LOWDIM_MAX_D
    if exact:
        eng = _ExactLowDim(p)
    elif eng_kind == "torch":
        eng = _TorchBlocks(p, block, dev)
    elif dim >= FLOAT32_MIN_D and n >= FLOAT32_MIN_N and _float32_safe(x, y):
        eng = _Float32Blocks(p, block, clouds)
    else:
        eng = _NumpyBlocks(p, block)

    torch = sys.modules.get("torch")
    torch_threads = torch.get_num_threads() if torch is not None else None
    try:
        st = _solve(p, eng, method, k, max_rounds, MULTISCALE_DEPTH, trace)
    except SystemError as e:  # Ctrl-C while a compiled kernel ran surfaces as SystemError
        if isinstance(e.__cause__ or e.__context__, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        raise
    finally:
        # numba's OpenMP pool can reset the thread count torch shares with it; give it back
        if torch_threads is not None and torch.get_num_threads() != torch_threads:
            torch.set_num_threads(torch_threads)
    m, g = st.m, st.g

    # the certificate: graph edges directly, every other pair through its row's last full check
    indptr, indices, cost = g.indptr, g.indices, g.cost
    if g.parts[0][0].size != indices.size:
        indptr, indices, cost = g.csr()
    erows = g.parts[0][0]
    red_e = cost - m.u[erows] - m.v[indices]
    lower = st.row_lower_bounds()
    max_violation = max(0.0, -float(red_e.min()), -float(lower.min()))
    matched = indices == m.col4row[erows]
    max_gap = float(np.abs(red_e[matched]).max())
    if max_violation > p.tol or max_gap > p.tol or np.count_nonzero(matched) != n:
        raise RuntimeError(f"certificate failed: violation {max_violation:.3g}, gap {max_gap:.3g}, tol {p.tol:.3g}")

    sigma = m.col4row.copy()
    return AssignmentResult(
        sigma=sigma,
        u=m.u.copy(),
        v=m.v.copy(),
        cost=float(_pair_costs(x, y, sigma).sum() / n),
        method=st.method,
        engine=eng.name,
        tol=p.tol,
        max_violation=max_violation,
        max_gap=max_gap,
        rounds=st.rounds,
        n_edges=int(indices.size),
        seconds=time.perf_counter() - t0,
    )


def _nearest_neighbour_path(x, y, tol, block, t0: float, trace):
    """One float32 (or bfloat16) pass when the row-wise nearest neighbours form a permutation (``otflow._nnpath``):
    then ``u_i = c_{iσ(i)}``, ``v = 0`` certify σ. Screened first on 256 rows. Returns the result (None
    when it does not apply) and the clouds' float32 copies, which the full solver's float32 passes reuse."""
    from otflow import _nnpath

    t1 = time.perf_counter()
    n = x.shape[0]
    clouds = _nnpath._Clouds(x, y)
    found = _nnpath.nearest_neighbour_assignment(x, y, block or int(max(1, min(n, 4_000_000 // n))), clouds=clouds)
    _emit(
        trace,
        step="nn",
        n=n,
        applies=found is not None,
        pass_s=time.perf_counter() - t1,
        precision=found[3] if found else None,
    )
    if found is None:
        return None, clouds
    sigma, u, scale, precision = found
    if not np.isfinite(scale):
        return None, None  # the full solver raises the overflow error
    return AssignmentResult(
        sigma=sigma,
        u=u,
        v=np.zeros(n),
        cost=float(u.sum() / n),  # u_i is the float64 cost of the pair (i, σ(i))
        method="nn",
        engine="torch:cpu" if precision == "bfloat16" else "numpy",
        tol=TOL_REL * scale if tol is None else float(tol),
        max_violation=0.0,  # every reduced cost c_ij − u_i ≥ 0: u_i is the exact row minimum
        max_gap=0.0,  # u_i is the cost of the pair (i, σ(i)) itself
        rounds=0,
        n_edges=n,
        seconds=time.perf_counter() - t0,
    ), None


def _dense_costs(p: _Problem) -> np.ndarray:
    c = p.x @ p.y.T
    c *= -2.0
    c += p.sqx[:, None]
    c += p.sqy[None, :]
    return c.ravel()
