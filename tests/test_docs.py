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
