"""A one-pass exact path for assignments whose row-wise nearest neighbours form a permutation.

If every ``x_i``'s nearest ``y`` is a different point, ``σ(i) = argmin_j c_ij`` is an optimal
assignment: with ``u_i = c_{iσ(i)}`` and ``v = 0`` the dual is feasible (``c_ij − u_i ≥ 0`` for all
pairs, as ``u_i`` is the row minimum) and tight on σ, so σ is optimal by LP duality. This is the
common case of the maps this project measures: a residual stage in high dimension moves every point
by less than the spacing of the points (the "near-identity" problems).

The pass runs in float32 BLAS (about twice the speed of float64) with a rigorous error bound:
for ``x, y`` converted to float32 and a dot product of length D accumulated in float32 in any
order, ``|fl(x·y) − x·y| ≤ ((2u + u²) + γ_D (1 + u)²) ‖x‖ ‖y‖`` with ``u = 2⁻²⁴`` and
``γ_D = Du / (1 − Du)`` (Higham, Accuracy and Stability, §3.1). A row whose float32 minimum is not
separated from every other column by the bound has its close columns recomputed in float64 from
coordinate differences, so the row minimum is exact. The costs of the chosen pairs are recomputed
in float64 too; the certificate then holds to float64 rounding.

Large problems on a CPU that multiplies bfloat16 natively (``avx512_bf16`` or ``amx_bf16``) make the
pass in bfloat16 first (torch's oneDNN GEMM: bfloat16 products, float32 accumulation, a bfloat16
result), about twice the float32 speed, with the same kind of bound widened for the bfloat16
rounding of the inputs and of the result, and for the flushing of subnormals (:func:`_dot_bound`).
Rows it cannot decide go to the float32 pass, and from there to float64 as above. Before the
first block is trusted, its bfloat16 values are compared with float32 ones on a sample of rows;
a difference beyond the two bounds (a GEMM that accumulates otherwise) turns bfloat16 off.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["nearest_neighbour_assignment"]

_U32 = 2.0**-24
_U16 = 2.0**-8  # bfloat16: 8 significant bits, rounding to nearest
BF16_MIN_FLOPS = 2e11  # 2·n²·D from which the bfloat16 pass pays for importing torch


def _dot_bound(dim: int, unit_in: float = _U32, unit_out: float = 0.0) -> float:
    """Coefficient e with ``|c̃_ij − c_ij| ≤ e ‖x_i‖ ‖y_j‖`` for the −2 x·y term, see the module docstring.

    ``unit_in``: the relative rounding of each coordinate before the products (float32: u; bfloat16
    of a float32 copy: (1 + u)(1 + u₁₆) − 1); the products are exact in float32 and summed in float32
    in any order (γ_D); ``unit_out``: the rounding of the result (bfloat16: u₁₆, float32: none).
    """
    gamma = dim * _U32 / (1.0 - dim * _U32)
    e = unit_in
    s = (1 + e) ** 2
    return 2.0 * ((2 * e + e * e) + gamma * s + unit_out * s * (1 + gamma)) * (1 + 1e-6)


def _flush_bound(dim: int, nx_max: float, ny_max: float) -> float:
    """Absolute error of the −2 x·y term from subnormals flushed to zero (bfloat16 dot instructions):
    inputs below 2⁻¹²⁶ read as 0 (≤ 2⁻¹²⁶ √D (‖x‖ + ‖y‖)) and each of the D partial sums may lose 2⁻¹²⁶."""
    return 2.0 * 2.0**-126 * (dim + np.sqrt(dim) * 2 * (nx_max + ny_max)) * 2


FEW_ROWS = 64  # below this many rows a block's Gram matrix is computed as (Y Xᵀ)ᵀ (see :func:`gram`)


def gram(xr: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``xr @ y.T`` for a block of rows. OpenBLAS (0.3.31, as numpy ships it) is slow on a few rows
    against many long columns in that orientation: at D = 8,192, 10 rows against 1,250 columns took
    0.17 s, ``(y @ xr.T).T`` 0.02 s; so few rows take the transposed product (same values up to the
    order of summation, which every error bound here allows)."""
    if xr.shape[0] < FEW_ROWS:
        return np.ascontiguousarray((y @ xr.T).T)
    return xr @ y.T


def _exact_costs(x: np.ndarray, y: np.ndarray, i: int, cols: np.ndarray) -> np.ndarray:
    d = x[i][None, :] - y[cols]
    return np.einsum("ij,ij->i", d, d)


class _Clouds:
    """Both clouds centred on their common mean in float32, with the norms the error bounds need."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.dim = x.shape[1]
        center = common_centre(x, y)
        self.x, self.y = x, y
        self.x32, sqx = centred(x, center, np.float32)
        self.y32, sqy = centred(y, center, np.float32)
        self.sqy32 = sqy.astype(np.float32)
        self.nx = np.sqrt(sqx)
        self.ny_max, self.sqy_max = float(np.sqrt(sqy.max())), float(sqy.max())
        self.scale = float(sqx.max() + sqy.max())

    def errors(self, rows, coef: float, absolute: float = 0.0) -> np.ndarray:
        """``E_i`` for the rows: the dot product's bound, then the float32 rounding of ``‖y_j‖²`` and of
        ``h_ij = ‖y_j‖² − 2 x_iᵀy_j``."""
        nxr = self.nx[rows]
        return coef * nxr * self.ny_max + absolute + 3 * _U32 * (self.sqy_max + 2 * nxr * self.ny_max)

    def h32(self, rows) -> np.ndarray:
        h = gram(self.x32[rows], self.y32)
        h *= -2.0
        h += self.sqy32[None, :]
        return h


def _decide(h: np.ndarray, err: np.ndarray):
    """Each row's argmin column of ``h``, the rows with more than one column within ``2 err`` of their
    minimum (not decided at this precision), and the mask of those close columns."""
    j = h.argmin(axis=1)
    r = np.arange(h.shape[0])
    threshold = (h[r, j].astype(np.float64) + 2 * err).astype(np.float32)
    close = h <= np.nextafter(threshold, np.float32(np.inf))[:, None]  # rounded up: never too tight
    return j.astype(np.int64), np.flatnonzero(np.count_nonzero(close, axis=1) > 1), close


def _block_minima(c: _Clouds, rows: np.ndarray, coef: float) -> np.ndarray:
    """The exact argmin column of each row of ``rows`` (indices).

    ``argmin_j c_ij = argmin_j h_ij`` with ``h_ij = ‖y_j‖² − 2 x_iᵀy_j`` (``‖x_i‖²`` is constant in
    the row), computed in float32. Its error is at most ``E_i`` (:meth:`_Clouds.errors`), so only
    columns with ``h_ij ≤ min_j h_ij + 2 E_i`` can be the minimum; a row with more than one such
    column is decided from float64 coordinate differences.
    """
    cols, undecided, close = _decide(c.h32(rows), c.errors(rows, coef))
    for t in undecided:
        cand = np.flatnonzero(close[t])
        cols[t] = cand[int(_exact_costs(c.x, c.y, rows[t], cand).argmin())]
    return cols


def bf16_native() -> bool:
    """Whether this CPU multiplies bfloat16 natively and torch is installed (``$OTFLOW_BF16`` = 0 or 1
    overrides). Elsewhere torch emulates bfloat16 GEMM, slower than float32."""
    forced = os.environ.get("OTFLOW_BF16")
    if forced is not None:
        return forced == "1"
    import importlib.util

    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return ("avx512_bf16" in flags or "amx_bf16" in flags) and importlib.util.find_spec("torch") is not None


class _Bf16Pass:
    """``h`` in bfloat16 through torch's GEMM, with its bound (module docstring)."""

    def __init__(self, c: _Clouds):
        import torch

        self.sqy32 = c.sqy32
        self.xb = torch.from_numpy(c.x32).to(torch.bfloat16)
        self.ybt = torch.from_numpy(c.y32).to(torch.bfloat16).T
        self.coef = _dot_bound(c.dim, (1 + _U32) * (1 + _U16) - 1, _U16)
        self.absolute = _flush_bound(c.dim, float(c.nx.max()), c.ny_max)

    def h(self, c: _Clouds, start: int, stop: int) -> np.ndarray:
        h = (self.xb[start:stop] @ self.ybt).float().numpy()
        h *= -2.0
        h += c.sqy32[None, :]
        return h

    def h_rows(self, rows: np.ndarray) -> np.ndarray:
        import torch

        h = (self.xb[torch.from_numpy(rows)] @ self.ybt).float().numpy()
        h *= -2.0
        h += self.sqy32[None, :]
        return h

    def agrees_with_float32(self, c: _Clouds, rows: int = 32) -> bool:
        """On the first rows, does every bfloat16 ``h`` lie within both bounds of the float32 one?"""
        rows = min(rows, c.x32.shape[0])
        tol = c.errors(slice(0, rows), self.coef, self.absolute) + c.errors(slice(0, rows), _dot_bound(c.dim))
        diff = np.abs(self.h(c, 0, rows).astype(np.float64) - c.h32(slice(0, rows)))
        return bool(np.all(diff <= tol[:, None]))

    def block_minima(self, c: _Clouds, start: int, stop: int) -> np.ndarray:
        """As :func:`_block_minima`; rows bfloat16 cannot decide go through it (float32, then float64)."""
        cols, undecided, _ = _decide(self.h(c, start, stop), c.errors(slice(start, stop), self.coef, self.absolute))
        if undecided.size:
            cols[undecided] = _block_minima(c, start + undecided, _dot_bound(c.dim))
        return cols


def _chunked(n: int, size: int, one, chunk: int) -> None:
    """``one(s)`` for the chunk starts ``s`` of ``range(n)``, spread over the CPU's cores when the work
    is large (numpy releases the GIL in its loops); chunks keep the temporaries in cache."""
    starts = range(0, n, chunk)
    if size < 1 << 22:  # small: threads cost more than they save
        for s in starts:
            one(s)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(one, starts))


def _rows_per_chunk(dim: int) -> int:
    """Rows per chunk of the elementwise passes: about 2 MB of float64, so the temporaries stay in
    cache and are reused rather than faulted in afresh (at 8,192-D, 1,000 rows: 0.24 s -> 0.02 s)."""
    return max(1, (1 << 18) // dim)


def _pair_costs(x: np.ndarray, y: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """``‖x_i − y_σ(i)‖²`` in float64 from coordinate differences, chunk by chunk."""
    out = np.empty(x.shape[0])
    chunk = _rows_per_chunk(x.shape[1])

    def one(s: int) -> None:
        d = x[s : s + chunk] - y[sigma[s : s + chunk]]
        out[s : s + chunk] = np.einsum("ij,ij->i", d, d)

    _chunked(x.shape[0], x.size, one, chunk)
    return out


def common_centre(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The mean of both clouds together (costs are unchanged by a common shift; norms get smaller). The
    one-pass certificate and the full solver centre alike, so their float32 copies are the same."""
    return (x.sum(0) + y.sum(0)) / (2 * x.shape[0])


def centred(z: np.ndarray, center: np.ndarray, dtype=np.float64) -> tuple[np.ndarray | None, np.ndarray]:
    """``z − center`` (float64, then stored as ``dtype``; ``dtype=None``: not stored) and its squared
    norms in float64, chunk by chunk over the cores (at 8,192-D the whole-array subtraction pays a
    page fault per page)."""
    out = None if dtype is None else np.empty(z.shape, dtype=dtype)
    chunk = _rows_per_chunk(z.shape[1])
    sq = np.empty(z.shape[0])

    def one(s: int) -> None:
        c = z[s : s + chunk] - center
        if out is not None:
            out[s : s + chunk] = c
        sq[s : s + chunk] = np.einsum("ij,ij->i", c, c)

    _chunked(z.shape[0], z.size, one, chunk)
    return out, sq


def _screen(h_rows, n: int, sample: int = 256) -> bool:
    """A cheap screen: do the nearest neighbours of an evenly spread sample of rows differ from each
    other? (If not, the full pass would fail; the solver then skips it.) ``h_rows(rows)`` gives ``h``
    of the rows at any precision: the screen only decides whether to try."""
    rows = np.linspace(0, n - 1, min(sample, n)).astype(np.int64)  # distinct: the step is >= 1
    nn = h_rows(rows).argmin(axis=1)
    return int(np.bincount(nn).max()) == 1  # (np.unique would load numpy.ma: 25 ms of a first call)


def nearest_neighbour_assignment(x: np.ndarray, y: np.ndarray, block: int, precision: str = "auto", clouds=None):
    """``(sigma, u, scale, precision)`` when the exact row-wise nearest neighbours of ``x`` and ``y``
    form a permutation (``u`` the exact costs of the chosen pairs, ``v = 0``; ``scale = max‖x_c‖² +
    max‖y_c‖²`` of the clouds centred on their common mean, for the tolerance; ``precision`` the
    first pass's, ``"bfloat16"`` or ``"float32"``), else None.

    ``precision``: ``"auto"`` takes bfloat16 where :func:`bf16_native` and ``2 n² D ≥``
    :data:`BF16_MIN_FLOPS`, else float32; ``"bfloat16"`` and ``"float32"`` force one. The passes work
    on the centred clouds (smaller norms, a tighter bound); the float64 rechecks and the final costs
    use coordinate differences, in which the centre cancels.
    """
    if precision not in ("auto", "bfloat16", "float32"):
        raise ValueError(f"precision: expected 'auto', 'bfloat16' or 'float32', got {precision!r}")
    n, dim = x.shape
    c = _Clouds(x, y) if clouds is None else clouds
    # the screen runs in float32 before any bfloat16 set-up: where it fails (the common case of a
    # problem that is not a near-identity) neither torch's import nor the bfloat16 copies are paid
    if not _screen(c.h32, n):
        return None
    lowp = None
    if precision == "bfloat16" or (precision == "auto" and 2.0 * n * n * dim >= BF16_MIN_FLOPS and bf16_native()):
        lowp = _Bf16Pass(c)
    if lowp is not None and not lowp.agrees_with_float32(c):
        lowp = None
    coef = _dot_bound(dim)
    sigma = np.empty(n, dtype=np.int64)
    if lowp is not None:  # larger blocks: the bfloat16 GEMM runs faster on them (~40 MB of float32 each)
        block = max(block, min(n, 10_000_000 // n))
    for s in range(0, n, block):
        stop = min(s + block, n)
        sigma[s:stop] = lowp.block_minima(c, s, stop) if lowp else _block_minima(c, np.arange(s, stop), coef)
    if int(np.bincount(sigma, minlength=n).max()) != 1:
        return None
    return sigma, _pair_costs(x, y, sigma), c.scale, "bfloat16" if lowp else "float32"
