"""Benchmark: ``otflow.solve_assignment`` with the torch engine on a GPU against the CPU engines.

    python benchmarks/solver_cuda.py --out solver_cuda.json            # the issue's cases on cuda
    python benchmarks/solver_cuda.py --device cpu --sizes 400 --cases 64d-near-identity   # tests

For each case of ``benchmarks/assignment.py`` (same generator, same seed) the problem is solved
three ways in this process, each after an untimed warm-up call on 300 points that loads the
compiled kernels and initialises the device:

* ``numpy``: ``engine="numpy"``, ``method="auto"`` (the CPU default: the one-pass
  nearest-neighbour certificate in high dimension, blocked BLAS otherwise);
* ``torch``: ``engine="torch"`` on ``--device`` (cost blocks and certificate there; the
  augmenting-path solves stay on the CPU);

and the two answers are compared: same mean cost to 1e-9 relative and each certificate checked
(``max_violation <= tol``). Rows are printed as a table and written to ``--out`` as JSON.
Exit status 0 when every answer agrees, 1 otherwise, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's packages
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from assignment import make_case  # noqa: E402

import otflow  # noqa: E402
from otflow.runs import write_json  # noqa: E402

CASES = ("8192d-near-identity", "64d-near-identity", "64d-linear", "2d-mixture")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(x, y, engine: str, device: str | None) -> tuple[float, otflow.AssignmentResult]:
    otflow.solve_assignment(x[:300], y[:300], engine=engine, device=device)  # warm-up, not timed
    _sync(device or "cpu")
    t0 = time.perf_counter()
    res = otflow.solve_assignment(x, y, engine=engine, device=device)
    _sync(device or "cpu")
    return time.perf_counter() - t0, res


def run_case(name: str, n: int, device: str) -> dict:
    x, y = make_case(name, n, 0)
    t_cpu, r_cpu = _timed(x, y, "numpy", None)
    t_dev, r_dev = _timed(x, y, "torch", device)
    rel = abs(r_dev.cost - r_cpu.cost) / max(abs(r_cpu.cost), 1e-300)
    certified = bool(r_cpu.max_violation <= r_cpu.tol and r_dev.max_violation <= r_dev.tol)
    return {
        "case": name,
        "n": n,
        "device": device,
        "numpy_s": t_cpu,
        "numpy_method": r_cpu.method,
        "torch_s": t_dev,
        "torch_method": r_dev.method,
        "torch_engine": r_dev.engine,
        "speedup": t_cpu / t_dev,
        "cost": r_cpu.cost,
        "cost_rel_diff": rel,
        "same_sigma": bool((r_cpu.sigma == r_dev.sigma).all()),
        "certified": certified,
        "ok": certified and rel <= 1e-9,
    }


def _print(row: dict) -> None:
    print(
        f"{row['case']:<21} {row['n']:>7,} numpy {row['numpy_s']:8.2f} s ({row['numpy_method']:<5}) "
        f"{row['torch_engine']:<11} {row['torch_s']:8.2f} s ({row['torch_method']:<5}) "
        f"x{row['speedup']:6.2f}  rel {row['cost_rel_diff']:.1e}  same sigma {row['same_sigma']}  "
        f"{'ok' if row['ok'] else 'FAIL'}",
        flush=True,
    )


def markdown(doc: dict) -> str:
    """The rows of a saved ``--out`` file as a markdown table (``--markdown FILE``; docs include it)."""
    lines = [
        f"torch {doc['torch']} on {doc['device_name']}; the numpy engine on that machine's CPU",
        "",
        "| case | n | numpy engine (CPU) | torch engine | CPU / torch | same answer, certified |",
        "|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        lines.append(
            f"| {r['case']} | {r['n']:,} | {r['numpy_s']:.2f} s ({r['numpy_method']}) | {r['torch_s']:.2f} s "
            f"({r['torch_engine']}, {r['torch_method']}) | {r['speedup']:.2f}× | "
            f"{'yes' if r['ok'] and r['same_sigma'] else 'NO'} (cost rel. diff {r['cost_rel_diff']:.0e}) |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="torch device of the torch engine (default cuda)")
    p.add_argument("--cases", nargs="*", default=list(CASES), help=f"subset of {list(CASES)}")
    p.add_argument("--sizes", nargs="*", type=int, default=[10_000], help="numbers of points (default 10,000)")
    p.add_argument("--out", default=None, metavar="FILE", help="write the rows as JSON to FILE")
    p.add_argument("--markdown", default=None, metavar="FILE", help="print the rows of a saved --out FILE as markdown")
    args = p.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(Path(args.markdown).read_text())), end="")
        return 0
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"error: --device {args.device}: CUDA is not available here", file=sys.stderr)
        return 2
    bad = [c for c in args.cases if c not in CASES]
    if bad or any(n < 300 for n in args.sizes):
        print(f"error: cases must be among {list(CASES)} and sizes >= 300 (got {bad or args.sizes})", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"torch {torch.__version__} on {name}; CPU threads {torch.get_num_threads()}", flush=True)
    rows = []
    for case in args.cases:
        for n in args.sizes:
            rows.append(run_case(case, n, args.device))
            _print(rows[-1])
            if args.out:
                write_json(args.out, {"device_name": name, "torch": torch.__version__, "rows": rows})
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
