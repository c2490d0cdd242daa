"""benchmarks/first_call.py: fresh-process timings of otflow and a peer, same answer, rendered as a table."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import first_call  # noqa: E402


def test_first_call_rows_agree_with_the_peer_and_render(tmp_path, capsys):
    out = tmp_path / "rows.json"
    assert first_call.main(["--cases", "2d-mixture", "--sizes", "300", "--peers", "scipy", "--out", str(out)]) == 0
    row = json.loads(out.read_text())["rows"][0]
    assert row["otflow"]["seconds"] > 0 and row["scipy"]["rel_cost_diff"] <= 1e-12
    assert row["fastest_peer_over_otflow"] == row["scipy"]["seconds"] / row["otflow"]["seconds"]
    capsys.readouterr()
    assert first_call.main(["--markdown", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| 2d-mixture | 300 | 2 |" in text and "not run" in text  # POT and lap were not asked for


def test_first_call_refuses_unknown_peers(capsys):
    assert first_call.main(["--peers", "otflow"]) == 2
    assert "unknown case or peer" in capsys.readouterr().err


def test_committed_first_call_tables_are_the_rendering_of_their_rows(capsys):
    """results/benchmarks/first_call*.md are what --markdown prints for the committed raw rows."""
    root = Path(__file__).resolve().parents[2]
    pairs = {
        "first_call.md": "results_first_call.json",
        "first_call_scale.md": "results_first_call_scale.json",
        "first_call_2026-12-06.md": "results_first_call_2026-12-06.json",
        "first_call_2026-12-06b.md": "results_first_call_2026-12-06b.json",
        "stage_assignment.md": "results_stage_assignment.json",  # same table (stage_assignment.py reuses it)
        "stage_assignment_float32.md": "results_stage_assignment_float32.json",
    }
    for md, raw in pairs.items():
        capsys.readouterr()
        assert first_call.main(["--markdown", str(root / "benchmarks" / raw)]) == 0
        assert capsys.readouterr().out == (root / "results" / "benchmarks" / md).read_text(), md
