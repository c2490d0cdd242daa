"""docs/theory.md: every row of the SPEC → code → tests table names a test, and every named test exists."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAMED = re.compile(r"`((?:tests/)?[\w/]*test_\w+\.py)::(test_\w+)`")


def _rows() -> list[str]:
    text = (ROOT / "docs" / "theory.md").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| SPEC")]


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def test_every_row_of_the_theory_table_names_an_existing_test():
    rows = _rows()
    assert len(rows) >= 19
    known: dict[str, set[str]] = {}
    for row in rows:
        tests_cell = row.rstrip(" |").split(" | ")[-1]
        named = NAMED.findall(tests_cell)
        assert named, f"no named test in the row {row[:60]!r}"
        for file, name in named:
            # a bare file name is one of the library's tests (tests/otflow/); others are written from the root
            path = ROOT / file if file.startswith("tests/") else ROOT / "tests" / "otflow" / file
            assert path.is_file(), f"{file} (named in {row[:30]!r}) does not exist"
            if file not in known:
                known[file] = _tests_in(path)
            assert name in known[file], f"{file}::{name} (named in {row[:30]!r}) does not exist"
