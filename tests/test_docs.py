"""The documents' generated blocks equal what the report renders from the committed results."""

from __future__ import annotations

from pathlib import Path

import pytest

from image_experiments import report

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "docs" / "reproduction.md", ROOT / "docs" / "images.md"]


def test_generated_blocks_of_the_docs_are_current(capsys):
    results = ROOT / "results" / "images"
    if not results.is_dir():
        pytest.fail("results/images is missing: the committed runs the docs are generated from")
    code = report.main([str(results), "--check-docs", *map(str, DOCS)])
    assert code == 0, capsys.readouterr().err


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_docs_name_no_machine_paths(doc):
    text = doc.read_text()
    for bad in ("/work/", "/home/", "/root/", "/tmp/"):
        assert bad not in text, f"{doc.name} names a machine path ({bad})"


def test_file_blocks_of_the_other_docs_are_current(tmp_path, capsys):
    """docs/performance.md includes committed script output; python -m otflow.experiment.docs checks it."""
    from otflow.experiment import docs

    assert docs.main(["--check-docs", str(ROOT / "docs" / "performance.md")]) == 0, capsys.readouterr().err
    stale = tmp_path / "docs" / "stale.md"
    stale.parent.mkdir()
    (tmp_path / "out.md").write_text("new\n")
    stale.write_text("<!-- generated:begin file:out.md -->\nold\n<!-- generated:end file:out.md -->\n")
    assert docs.main(["--check-docs", str(stale)]) == 1
    assert "+new" in capsys.readouterr().err
    assert docs.main(["--write-docs", str(stale)]) == 0 and "\nnew\n" in stale.read_text()
    assert docs.main(["--check-docs", str(tmp_path / "missing.md")]) == 2
