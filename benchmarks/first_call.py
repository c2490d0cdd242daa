"""Benchmark: the first call in a fresh process, imports included, otflow against POT, scipy and lap.

    python benchmarks/first_call.py --out benchmarks/results_first_call.json    # every case, 1,000-50,000
    python benchmarks/first_call.py --cold --cases 2d-mixture --sizes 1000      # numba's cache emptied first
    python benchmarks/first_call.py --markdown benchmarks/results_first_call.json

What a user sees who solves one problem in a new Python process: for each problem of
``benchmarks/assignment.py`` (same generator and seed), the points are written to a temporary
``.npy`` file, and each library runs in a fresh interpreter that loads them and then, timed from
before its first import to its answer: ``import otflow; otflow.solve_assignment(x, y)`` (numba's
on-disk cache warm: the script makes one untimed call first in a throwaway process; ``--cold``
points ``NUMBA_CACHE_DIR`` at an empty folder instead, so the kernels compile), ``import ot;
ot.emd(a, b, ot.dist(x, y))``, ``scipy.optimize.linear_sum_assignment`` and ``lap.lapjv`` on the
dense cost matrix built as a user would: ``cdist(x, y, "sqeuclidean")`` in D ≤ 8 (exact), the BLAS
form ``‖x‖² + ‖y‖² − 2xyᵀ`` above (cdist has no BLAS path and takes minutes at 8,192-D). A peer is
skipped above the sizes of ``assignment.PEER_LIMITS``. Every peer's mean cost is compared with otflow's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from assignment import PEER_LIMITS, make_case  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIZES = (1_000, 5_000, 10_000, 50_000)
CASES = tuple(PEER_LIMITS)
_LOAD = "import time, numpy as np; x = np.load({x!r}); y = np.load({y!r}); t0 = time.perf_counter()\n"
_CODE = {
    "otflow": "import otflow\nr = otflow.solve_assignment(x, y)\ncost = r.cost\n",
    "pot": "import ot\nM = ot.dist(x, y)\na = np.full(len(x), 1.0 / len(x))\n"
    "P = ot.emd(a, a, M, numItermax=100_000_000)\ncost = float((P * M).sum())\n",
    "scipy": "from scipy.optimize import linear_sum_assignment\n" + "{cost}"
    "r, k = linear_sum_assignment(c)\ncost = float(c[r, k].mean())\n",
    "lap": "import lap\n" + "{cost}" + "_, col, _ = lap.lapjv(c)\ncost = float(c[np.arange(len(x)), col].mean())\n",
}
# the dense cost matrix as a user would build it: scipy's exact cdist in low D, BLAS above
_DENSE = (
    "if x.shape[1] <= 8:\n    from scipy.spatial.distance import cdist\n    c = cdist(x, y, 'sqeuclidean')\n"
    "else:\n    c = np.maximum((x * x).sum(1)[:, None] + (y * y).sum(1)[None] - 2.0 * (x @ y.T), 0.0)\n"
)
_END = "import json; print(json.dumps({'seconds': time.perf_counter() - t0, 'cost': cost}))\n"


def fresh(lib: str, xf: str, yf: str, env: dict | None = None) -> dict:
    """Time ``lib`` in a new interpreter (from before its import to its answer)."""
    code = _LOAD.format(x=xf, y=yf) + _CODE[lib].replace("{cost}", _DENSE) + _END
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{lib} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_case(name: str, n: int, peers: list[str], cold: bool, tmp: Path) -> dict:
    x, y = make_case(name, n, 0)
    xf, yf = str(tmp / "x.npy"), str(tmp / "y.npy")
    np.save(xf, x)
    np.save(yf, y)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if cold:
        env["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(dir=tmp)
    else:
        fresh("otflow", str(tmp / "x.npy"), str(tmp / "y.npy"), env)  # fills numba's cache; not timed
    row = {"case": name, "n": n, "D": x.shape[1], "cold_cache": cold, "otflow": fresh("otflow", xf, yf, env)}
    for peer in peers:
        if n > PEER_LIMITS[name][peer]:
            row[peer] = {"skipped": f"n > {PEER_LIMITS[name][peer]} (see assignment.PEER_LIMITS)"}
            continue
        res = fresh(peer, xf, yf, env)
        res["rel_cost_diff"] = abs(res["cost"] - row["otflow"]["cost"]) / max(abs(res["cost"]), 1e-300)
        row[peer] = res
    ran = [row[p]["seconds"] for p in peers if "seconds" in row.get(p, {})]
    if ran:
        row["fastest_peer_over_otflow"] = min(ran) / row["otflow"]["seconds"]
    return row


def markdown(rows: list[dict]) -> str:
    """The rows as a markdown table (``--markdown FILE``)."""
    lines = [
        "| case | n | D | otflow first call (s) | POT (s) | scipy (s) | lap (s) | fastest peer / otflow |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [
            f"{r[p]['seconds']:.2f}" if "seconds" in r.get(p, {}) else ("skipped" if p in r else "not run")
            for p in ("pot", "scipy", "lap")
        ]
        ratio = f"{r['fastest_peer_over_otflow']:.1f}×" if "fastest_peer_over_otflow" in r else "—"
        cold = " (cold cache)" if r["cold_cache"] else ""
        lines.append(
            f"| {r['case']} | {r['n']:,} | {r['D']} | {r['otflow']['seconds']:.2f}{cold} | "
            + " | ".join(cells)
            + f" | {ratio} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", nargs="*", default=list(CASES), help=f"subset of {list(CASES)}")
    ap.add_argument("--sizes", nargs="*", type=int, default=list(SIZES), help="numbers of points")
    ap.add_argument("--peers", nargs="*", default=["pot", "scipy", "lap"], help="peers to run (pot, scipy, lap)")
    ap.add_argument("--cold", action="store_true", help="empty numba cache: the kernels compile in the timed call")
    ap.add_argument("--out", default=None, metavar="FILE", help="write the rows as JSON to FILE")
    ap.add_argument("--markdown", default=None, metavar="FILE", help="print the rows of a saved --out FILE as markdown")
    args = ap.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(Path(args.markdown).read_text())["rows"]), end="")
        return 0
    bad = [c for c in args.cases if c not in CASES] + [p for p in args.peers if p not in _CODE or p == "otflow"]
    if bad:
        print(f"error: unknown case or peer: {bad}", file=sys.stderr)
        return 2
    rows = []
    meta = {"load_average_at_start": os.getloadavg(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases:
            for n in args.sizes:
                rows.append(run_case(name, n, args.peers, args.cold, Path(tmp)))
                print(markdown(rows[-1:]).splitlines()[-1], flush=True)
                if args.out:
                    from otflow.runs import write_json

                    write_json(args.out, {**meta, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
