"""benchmarks/solver_cuda.py runs its code paths on the CPU (the torch engine on torch:cpu)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import solver_cuda  # noqa: E402


def test_solver_cuda_on_cpu_agrees_and_writes_rows(tmp_path):
    out = tmp_path / "rows.json"
    rc = solver_cuda.main(
        ["--device", "cpu", "--sizes", "400", "--cases", "64d-near-identity", "2d-mixture", "--out", str(out)]
    )
    assert rc == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["case"] for r in rows] == ["64d-near-identity", "2d-mixture"]
    for r in rows:
        assert r["certified"] and r["cost_rel_diff"] <= 1e-9 and r["torch_engine"] == "torch:cpu"


def test_solver_cuda_refuses_bad_usage(capsys):
    assert solver_cuda.main(["--device", "cpu", "--cases", "no-such-case"]) == 2
    assert "cases must be among" in capsys.readouterr().err


def test_committed_h200_table_is_the_rendering_of_its_rows(capsys):
    """results/benchmarks/h200/solver_cuda.md is what --markdown prints for the committed JSON."""
    root = Path(__file__).resolve().parents[2] / "results" / "benchmarks" / "h200"
    assert solver_cuda.main(["--markdown", str(root / "solver_cuda.json")]) == 0
    assert capsys.readouterr().out == (root / "solver_cuda.md").read_text()
