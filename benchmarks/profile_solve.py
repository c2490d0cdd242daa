"""Profile one solve: the solver's trace (``solve_assignment(trace=...)``) of a benchmark case, with the
time of each step summed over rounds, for the cases a target is out of reach on.

    python benchmarks/profile_solve.py 2d-mixture 200000 --out results/benchmarks/profile_2d-mixture_200000.json
    python benchmarks/profile_solve.py --markdown results/benchmarks/profile_2d-mixture_200000.json
    python benchmarks/profile_solve.py "cifar10 stage, untrained" 5000 --arrays x.npy y.npy --out ...

With ``--arrays`` the problem is the first n rows of two saved clouds (``stage_assignment.py``'s
stage ends, say) and the case is only a label.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from assignment import PEER_LIMITS, make_case  # noqa: E402

# the timed fields of the trace's steps, and what each one is
PARTS = {
    ("first", "coarse_s"): "coarse potentials (the sub-sample solved recursively, then interpolated)",
    ("first", "graph_s"): "first candidate graph",
    ("first", "first_solve_s"): "first solve on the candidate graph",
    ("kd", "kd_s"): "kd proposal rounds: search",
    ("kd", "solve_s"): "kd proposal rounds: warm re-solves",
    ("round", "check_s"): "certificate passes over every pair",
    ("round", "solve_s"): "certificate rounds: warm re-solves",
    ("nn", "pass_s"): "one-pass nearest-neighbour attempt",
}


def profile(case: str, n: int, seed: int = 0, arrays: tuple | None = None) -> dict:
    """The trace of a first call in this process (numba's import timed on its own when not loaded
    yet), and a second, warm call's time: their difference is numba's import when the call made it,
    kernel loading and first touch. ``arrays``: two ``.npy`` files to take the first n rows of."""
    if arrays:
        import numpy as np

        x, y = (np.ascontiguousarray(np.load(f, mmap_mode="r")[:n], dtype=np.float64) for f in arrays)
    else:
        x, y = make_case(case, n, seed)
    had_numba = "numba" in sys.modules
    import otflow

    trace: list = []
    t0 = time.perf_counter()
    res = otflow.solve_assignment(x, y, trace=trace)
    total = time.perf_counter() - t0
    numba_s = None
    if not had_numba and "numba" in sys.modules:  # the call imported numba: how long that takes alone
        code = "import time; t = time.perf_counter(); import numba; print(time.perf_counter() - t)"
        numba_s = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout)
    t0 = time.perf_counter()
    otflow.solve_assignment(x, y)
    warm = time.perf_counter() - t0
    top = [t for t in trace if t["n"] == n]
    parts = {label: sum(t.get(field, 0.0) for t in top if t["step"] == step) for (step, field), label in PARTS.items()}
    return {
        "case": case,
        "n": n,
        "seconds": total,
        "numba_import_s": numba_s,
        "warm_seconds": warm,
        "method": res.method,
        "rounds": res.rounds,
        "certified": bool(res.max_violation <= res.tol and res.max_gap <= res.tol),
        "parts": {k: v for k, v in parts.items() if v > 0},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # kB on Linux
        "trace": trace,
        "load_average_at_start": os.getloadavg(),
    }


def markdown(doc: dict) -> str:
    lines = [
        f"{doc['case']}, n = {doc['n']:,}: {doc['seconds']:.1f} s, method {doc['method']}, "
        f"{doc['rounds']} round(s), certified: {doc['certified']}, peak RSS {doc['peak_rss_mb'] / 1024:.2f} GB",
        "",
        "| step (at full size) | seconds | share |",
        "|---|---|---|",
    ]
    for label, sec in doc["parts"].items():
        lines.append(f"| {label} | {sec:.1f} | {sec / doc['seconds']:.0%} |")
    rest = doc["seconds"] - sum(doc["parts"].values())
    lines.append(f"| the rest (validation, set-up, bookkeeping) | {rest:.1f} | {rest / doc['seconds']:.0%} |")
    lines.append("")
    if doc.get("numba_import_s") is not None:
        lines.append(
            f"The call imported numba: `import numba` alone takes {doc['numba_import_s']:.2f} s (in a fresh process)."
        )
    if doc.get("warm_seconds") is not None:
        lines.append(
            f"A second call in the same process took {doc['warm_seconds']:.2f} s: the first call's extra "
            f"{doc['seconds'] - doc['warm_seconds']:.2f} s is numba's import (when the call made it), "
            "kernel loading and first touch."
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("case", nargs="?", help=f"one of {list(PEER_LIMITS)}")
    ap.add_argument("n", nargs="?", type=int, help="number of points")
    ap.add_argument("--seed", type=int, default=0, help="seed of the case generator")
    ap.add_argument(
        "--arrays",
        nargs=2,
        default=None,
        metavar=("X", "Y"),
        help="solve the first n rows of these two .npy clouds instead (the case is then a label)",
    )
    ap.add_argument("--out", default=None, metavar="FILE", help="write the profile as JSON to FILE")
    ap.add_argument("--markdown", default=None, metavar="FILE", help="print a saved --out FILE as markdown")
    args = ap.parse_args(argv)
    if args.markdown:
        import json

        print(markdown(json.loads(Path(args.markdown).read_text())), end="")
        return 0
    if (args.case not in PEER_LIMITS and not (args.arrays and args.case)) or args.n is None or args.n < 2:
        print(f"error: give a case of {list(PEER_LIMITS)} (or a label with --arrays) and n >= 2", file=sys.stderr)
        return 2
    doc = profile(args.case, args.n, args.seed, args.arrays)
    if args.out:
        from otflow.runs import write_json

        write_json(args.out, doc)
    print(markdown(doc), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
