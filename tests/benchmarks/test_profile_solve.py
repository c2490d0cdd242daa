"""benchmarks/profile_solve.py: the solver's steps at full size, their times summing to at most the total."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import profile_solve  # noqa: E402


def test_the_profile_splits_the_solve_into_its_steps_and_renders(tmp_path, capsys):
    out = tmp_path / "p.json"
    assert profile_solve.main(["2d-mixture", "2000", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["certified"] and doc["method"] == "lowdim" and doc["peak_rss_mb"] > 0
    assert 0 < doc["warm_seconds"] and (doc["numba_import_s"] is None or doc["numba_import_s"] > 0)
    parts = doc["parts"]
    assert "first solve on the candidate graph" in parts and "certificate passes over every pair" in parts
    assert 0 < sum(parts.values()) <= doc["seconds"]
    capsys.readouterr()
    assert profile_solve.main(["--markdown", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("2d-mixture, n = 2,000:") and "| the rest" in text


def test_the_profile_refuses_an_unknown_case(capsys):
    assert profile_solve.main(["3d-nothing", "10"]) == 2
    assert "give a case of" in capsys.readouterr().err


def test_committed_profiles_are_the_rendering_of_their_json(capsys):
    """Every results/benchmarks/profile_*.md is what --markdown prints for its JSON (no typed numbers)."""
    root = Path(__file__).resolve().parents[2] / "results" / "benchmarks"
    profiles = sorted(root.glob("profile_*.json"))
    assert profiles
    for f in profiles:
        capsys.readouterr()
        assert profile_solve.main(["--markdown", str(f)]) == 0
        assert capsys.readouterr().out == f.with_suffix(".md").read_text(), f.name


def test_the_profile_takes_saved_clouds(tmp_path, capsys):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 20))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", x[::-1] + 3.0)
    out = tmp_path / "p.json"
    argv = ["a saved pair", "300", "--arrays", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "--out", str(out)]
    assert profile_solve.main(argv) == 0
    doc = json.loads(out.read_text())
    assert doc["case"] == "a saved pair" and doc["n"] == 300 and doc["certified"]
    assert profile_solve.main(["a label without arrays", "300"]) == 2
