"""otflow.experiment: generated blocks in documents (docs), including committed files (file: blocks)."""

from __future__ import annotations

from otflow.experiment import docs


def test_fill_and_check_generated_blocks_and_file_blocks(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "table.md").write_text("| a |\n|---|\n| 1 |\n")
    doc = tmp_path / "docs" / "page.md"
    doc.write_text(
        "intro\n<!-- generated:begin numbers -->\nold\n<!-- generated:end numbers -->\n"
        "<!-- generated:begin file:results/table.md -->\n<!-- generated:end file:results/table.md -->\nend\n"
    )
    blocks = {"numbers": "42"}
    assert len(docs.check(doc, blocks)) == 2  # both blocks are stale
    text, unknown = docs.fill(doc.read_text(), blocks, root=tmp_path)
    assert unknown == []
    doc.write_text(text)
    assert "intro\n<!-- generated:begin numbers -->\n42\n" in text and "| 1 |\n<!-- generated:end file:" in text
    assert docs.check(doc, blocks) == []
    (tmp_path / "results" / "table.md").write_text("| a |\n|---|\n| 2 |\n")  # the data changed
    (problem,) = docs.check(doc, blocks)
    assert "-| 1 |" in problem and "+| 2 |" in problem
    assert "not produced" in docs.check(doc, {})[0]
