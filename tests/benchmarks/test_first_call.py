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
