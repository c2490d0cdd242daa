"""docs/toy.md's generated blocks equal what toy_experiments.docs renders from results/toy."""

from __future__ import annotations

from pathlib import Path

from toy_experiments import docs

ROOT = Path(__file__).resolve().parents[2]


def test_toy_docs_are_current(capsys):
    assert docs.main([str(ROOT / "results" / "toy"), "--check-docs", str(ROOT / "docs" / "toy.md")]) == 0, (
        capsys.readouterr().err
    )


def test_blocks_render_from_a_published_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "table.txt").write_text("== planted table\n")
    (run / "config.json").write_text(
        '{"kind": "toy-calibration", "config": {}, "environment": {"git_revision": "abc1234"}}'
    )
    docs.publish(run, tmp_path / "results" / "calibration")
    blocks = docs.render_blocks(tmp_path / "results")
    assert blocks["toy-calibration"] == "```\n== planted table\n```"
    assert "No committed default run." in blocks["toy-default"]
    assert "`abc1234`" in blocks["toy-runs"]
