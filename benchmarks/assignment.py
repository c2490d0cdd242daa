"""Benchmark: otflow.solve_assignment against POT ``ot.emd``, scipy ``linear_sum_assignment`` and ``lap.lapjv``.

Command (the full table in docs/performance.md; about 15 minutes on 2 cores, most of it in the peers)::

    python benchmarks/assignment.py --out benchmarks/assignment.json

Quick smoke run (about a minute)::

    python benchmarks/assignment.py --quick

Every problem is generated once from a fixed seed and given to every solver. The solver runs in a
fresh process (``spawn``) so that its peak resident memory is its own; its compiled kernels are
loaded by a tiny warm-up call first, which is not timed. A peer is skipped above the size where
the issue's earlier measurements (or this script's first runs) show it takes minutes, and the
output says so. Where a peer ran, its mean cost is compared with the solver's (relative difference).
For the 8,192-D case the reference is the time to compute all pairwise costs once with BLAS
(float64, in row blocks, nothing stored).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time

import numpy as np

# the largest n at which each peer runs, per case; above it the peer is skipped and the reason printed.
# Measured here (2 cores) with the dense cost matrix included: scipy 3.9 s and lap 8.8 s at n = 2,000
# on 2d-mixture (86 s and 154 s at 5,000 on the 2-D problem); lap 36 s at 5,000 on
# 2d-near-identity; scipy 352 s at 10,000 on 64d-linear (issue 6). No peer runs at 50,000: its dense
# float64 cost matrix alone is 20 GB (POT needs a dense plan of the same size besides).
PEER_LIMITS = {
    "2d-mixture": {"pot": 10_000, "scipy": 2_000, "lap": 2_000},
    "2d-near-identity": {"pot": 10_000, "scipy": 10_000, "lap": 5_000},
    "64d-linear": {"pot": 10_000, "scipy": 5_000, "lap": 10_000},
    "64d-near-identity": {"pot": 10_000, "scipy": 10_000, "lap": 10_000},
    "8192d-near-identity": {"pot": 10_000, "scipy": 10_000, "lap": 10_000},
}
SKIP_WHY = {
    ("2d-mixture", "scipy"): "3.9 s at 2,000 and 86 s at 5,000 (issue 6), growing like n^3",
    ("2d-mixture", "lap"): "8.8 s at 2,000 and 154 s at 5,000 (issue 6)",
    ("2d-near-identity", "lap"): "36 s at 5,000, growing like n^2.5-n^3",
    ("64d-linear", "scipy"): "352 s at 10,000 (issue 6)",
}
DENSE_LIMIT_WHY = "the dense n x n float64 cost matrix needs {gb:.0f} GB"


def make_case(name: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The benchmark problems; every one is a fixed function of (name, n, seed)."""
    rng = np.random.default_rng(seed)
    if name == "2d-mixture":  # mass moves far: three clusters move onto each other's places
        c0 = np.array([[-4.0, 0.0], [0.0, 4.0], [4.0, 0.0]])
        c1 = np.array([[0.0, -4.0], [4.0, 4.0], [-4.0, 4.0]])
        x = c0[rng.integers(0, 3, n)] + rng.normal(size=(n, 2))
        y = c1[rng.integers(0, 3, n)] + 0.7 * rng.normal(size=(n, 2))
        return x, y
    if name == "2d-near-identity":  # a residual-block-like map: y = x + small smooth field + noise
        x = rng.normal(size=(n, 2))
        return x, x + 0.1 * np.tanh(x[:, ::-1]) + 0.05 * rng.normal(size=(n, 2))
    if name == "64d-linear":  # y = 0.5 x A + 1
        a = rng.normal(size=(64, 64)) / 8.0
        x = rng.normal(size=(n, 64))
        return x, 0.5 * x @ a + 1.0
    if name == "64d-near-identity":  # y = x + 0.1 tanh(x B) + noise
        b = rng.normal(size=(64, 64)) / 8.0
        x = rng.normal(size=(n, 64))
        return x, x + 0.1 * np.tanh(x @ b) + 0.05 * rng.normal(size=(n, 64))
    if name == "8192d-near-identity":  # the CIFAR K=1 stage size: y = 0.5 x + 1 + noise
        x = rng.normal(size=(n, 8192))
        return x, 0.5 * x + 1.0 + 0.1 * rng.normal(size=(n, 8192))
    raise ValueError(f"unknown case {name!r}")


SIZES = {
    "2d-mixture": [1_000, 5_000, 10_000, 50_000],
    "2d-near-identity": [1_000, 5_000, 10_000, 50_000],
    "64d-linear": [5_000, 10_000],
    "64d-near-identity": [5_000, 10_000],
    "8192d-near-identity": [10_000],
}
QUICK = {"2d-mixture": [1_000], "2d-near-identity": [1_000], "64d-linear": [1_000], "64d-near-identity": [1_000]}


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would include the parent's, inherited at fork)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _solver_child(name, n, seed, queue):
    import otflow

    x, y = make_case(name, n, seed)
    otflow.solve_assignment(x[:300], y[:300])  # load the compiled kernels (not timed)
    trace = []
    t0 = time.perf_counter()
    res = otflow.solve_assignment(x, y, trace=trace)
    sec = time.perf_counter() - t0
    top = [t for t in trace if t.get("n") == n]
    queue.put(
        dict(
            seconds=sec,
            cost=res.cost,
            method=res.method,
            engine=res.engine,
            rounds=res.rounds,
            edges=res.n_edges,
            max_violation=res.max_violation,
            tol=res.tol,
            peak_rss_mb=_peak_rss_mb(),
            rows_rechecked=int(sum(t.get("checked", 0) for t in top)),
        )
    )


def run_solver(name: str, n: int, seed: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_solver_child, args=(name, n, seed, queue))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def _sq_dists(x, y):
    from otflow import pairwise_sq_dists

    return pairwise_sq_dists(x, y)


def run_peer(peer: str, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    n = len(x)
    t0 = time.perf_counter()
    c = _sq_dists(x, y)
    if peer == "pot":
        import ot

        plan = ot.emd(np.full(n, 1.0 / n), np.full(n, 1.0 / n), c, numItermax=100_000_000)
        cost = float(np.sum(plan * c))
    elif peer == "scipy":
        from scipy.optimize import linear_sum_assignment

        r, k = linear_sum_assignment(c)
        cost = float(c[r, k].mean())
    elif peer == "lap":
        import lap

        _, col, _ = lap.lapjv(c)
        cost = float(c[np.arange(n), col].mean())
    else:
        raise ValueError(peer)
    return time.perf_counter() - t0, cost


def blas_pairwise_seconds(x: np.ndarray, y: np.ndarray) -> float:
    """All pairwise ‖x_i − y_j‖² once, float64 BLAS in row blocks of ~32 MB, nothing stored."""
    t0 = time.perf_counter()
    sqy = np.einsum("ij,ij->i", y, y)
    block = max(1, 4_000_000 // len(y))
    for s in range(0, len(x), block):
        xb = x[s : s + block]
        c = xb @ y.T
        c *= -2.0
        c += np.einsum("ij,ij->i", xb, xb)[:, None]
        c += sqy[None, :]
    return time.perf_counter() - t0


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes only (a smoke run)")
    ap.add_argument("--cases", nargs="*", default=None, help=f"subset of {list(SIZES)}")
    ap.add_argument("--sizes", nargs="*", type=int, default=None, help="override the sizes of every case")
    ap.add_argument("--peers", nargs="*", default=["pot", "scipy", "lap"], help="peers to run")
    ap.add_argument("--no-limits", action="store_true", help="run every peer at every size (slow)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random cost matrices (default 0)")
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    args = ap.parse_args(argv)

    table = QUICK if args.quick else SIZES
    cases = args.cases or list(table)
    print(f"# load average at start: {os.getloadavg()}; cpus: {os.cpu_count()}")
    rows = []
    skipped: dict = {}
    for name in cases:
        for n in args.sizes or table.get(name, SIZES[name]):
            x, y = make_case(name, n, args.seed)
            dim = x.shape[1]
            sol = run_solver(name, n, args.seed)
            row = dict(case=name, n=n, D=dim, solver=sol, peers={}, load=os.getloadavg()[0])
            line = (
                f"{name:>20} n={n:>6} D={dim:>4} | otflow {sol['seconds']:8.2f} s ({sol['method']}/{sol['engine']}, "
                f"{sol['rounds']} rounds, peak RSS {sol['peak_rss_mb']:.0f} MB)"
            )
            for peer in args.peers:
                lim = PEER_LIMITS[name][peer]
                if n > lim and not args.no_limits:
                    why = SKIP_WHY.get((name, peer)) or DENSE_LIMIT_WHY.format(gb=8 * n * n / 1e9)
                    row["peers"][peer] = dict(skipped=f"n > {lim}: {why}")
                    line += f" | {peer}: skipped (n > {lim})"
                    skipped.setdefault((name, peer, lim), why)
                    continue
                sec, cost = run_peer(peer, x, y)
                rel = abs(cost - sol["cost"]) / max(abs(cost), 1e-300)
                row["peers"][peer] = dict(seconds=sec, cost=cost, rel_cost_diff=rel, ratio=sec / sol["seconds"])
                line += f" | {peer} {sec:8.2f} s (x{sec / sol['seconds']:.1f}, cost rel diff {rel:.1e})"
            ran = [p["seconds"] for p in row["peers"].values() if "seconds" in p]
            if ran:
                row["ratio_to_fastest_peer"] = min(ran) / sol["seconds"]
                line += f" | fastest peer / otflow = {row['ratio_to_fastest_peer']:.1f}"
            if dim >= 1024:
                ref = blas_pairwise_seconds(x, y)
                row["blas_pairwise_seconds"] = ref
                line += f" | all pairwise costs once (BLAS): {ref:.2f} s, otflow / that = {sol['seconds'] / ref:.2f}"
            print(line, flush=True)
            rows.append(row)
    for (name, peer, lim), why in skipped.items():
        print(f"# {name}: {peer} skipped above n = {lim}: {why}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
