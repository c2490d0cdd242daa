"""benchmarks/gpu_check.py on the CPU (--device cpu --tiny): every check passes, the table is printed
and written as JSON; bad usage exits 2 with one line."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", _PATH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gpu_check", mod)
    spec.loader.exec_module(mod)
    return mod


def test_cpu_tiny_passes_every_check(tmp_path, capsys):
    out = tmp_path / "check.json"
    threads = torch.get_num_threads()
    assert _gpu_check().main(["--device", "cpu", "--tiny", "--out", str(out)]) == 0
    assert torch.get_num_threads() == threads  # the one-thread setting of --tiny is undone
    text = capsys.readouterr().out
    assert "check" in text and "tolerance" in text and "FAIL" not in text
    doc = json.loads(out.read_text())
    names = [r["check"] for r in doc["checks"]]
    expected = ["augment", "train K=1", "train K=4", "tracks K=1", "tracks K=4", "probe K=1", "probe K=4", "solver"]
    expected += ["metrics K=1"]
    assert names == expected + ["metrics K=4", "compile"]
    assert doc["passed"] and all(r["pass"] is True for r in doc["checks"][:-1])
    assert doc["checks"][-1]["pass"] is None  # compile runs only with --compile
    for name in names[:-1]:
        assert any(line.startswith(name) and line.rstrip().endswith("pass") for line in text.splitlines()), name
    assert "tracks on cpu" in next(r["device"] for r in doc["checks"] if r["check"] == "probe K=1")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_bad_usage(capsys):
    with pytest.raises(SystemExit) as info:
        _gpu_check().main(["--device", "cuda"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "CUDA is not available" in err


@pytest.mark.parametrize("argv", [["--device", "nonsense"], ["--device", "meta"], ["--frobnicate"]])
def test_bad_usage_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        _gpu_check().main(argv)
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_committed_h200_table_is_the_rendering_of_its_json(capsys):
    """results/benchmarks/h200/gpu_check.md is what --markdown prints; cell text with '|' is escaped."""
    root = _PATH.parents[1] / "results" / "benchmarks" / "h200"
    assert _gpu_check().main(["--markdown", str(root / "gpu_check.json")]) == 0
    text = capsys.readouterr().out
    assert text == (root / "gpu_check.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert all(line.replace("\\|", "").count("|") == 6 for line in rows)  # five cells in every row
