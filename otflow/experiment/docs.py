"""Generated blocks in the project's documents: filled by the report, checked against it.

A document marks each generated part with a pair of HTML comments that Markdown does not show::

    <!-- generated:begin claims -->
    ...whatever the report renders for the block "claims"...
    <!-- generated:end claims -->

:func:`fill` replaces every block's content with what the report renders now; :func:`check`
returns a unified diff for every block whose content differs, and names blocks the report does
not know. Prose outside the blocks carries no measured number; a number that prose needs is put in
a block of its own. A block whose id is ``file:<path>`` holds the text of that committed file
(``<path>`` relative to the repository, e.g. ``file:results/benchmarks/gpu_estimate_m1000.md``):
the output a script wrote, included as it is.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

__all__ = ["fill", "check", "block_ids", "with_files"]

_BLOCK = re.compile(
    r"(<!-- generated:begin (?P<id>[\w.:/-]+) -->\n)(?P<body>.*?)(<!-- generated:end (?P=id) -->)", re.DOTALL
)


def block_ids(text: str) -> list[str]:
    return [m.group("id") for m in _BLOCK.finditer(text)]


def _body(content: str) -> str:
    return content.strip("\n") + "\n"


def with_files(blocks: dict[str, str], text: str, root) -> dict[str, str]:
    """``blocks`` plus the ``file:<path>`` blocks that ``text`` names, read from ``root``."""
    out = dict(blocks)
    for bid in block_ids(text):
        if bid.startswith("file:"):
            path = Path(root) / bid[len("file:") :]
            if path.is_file():
                out[bid] = path.read_text()
    return out


def fill(text: str, blocks: dict[str, str], root=None) -> tuple[str, list[str]]:
    """``text`` with every known block's body replaced (``file:`` blocks read from ``root``, the
    repository); returns it and the ids the report does not know."""
    if root is not None:
        blocks = with_files(blocks, text, root)
    unknown = []

    def repl(m):
        if m.group("id") not in blocks:
            unknown.append(m.group("id"))
            return m.group(0)
        return m.group(1) + _body(blocks[m.group("id")]) + m.group(4)

    return _BLOCK.sub(repl, text), unknown


def check(path: Path, blocks: dict[str, str]) -> list[str]:
    """Problems of one document: a diff per stale block, a line per unknown block; [] when current."""
    text = Path(path).read_text()
    blocks = with_files(blocks, text, Path(path).resolve().parents[1])
    ids = block_ids(text)
    if not ids:
        return [f"{path}: no generated blocks (<!-- generated:begin ID --> … <!-- generated:end ID -->)"]
    problems = []
    for m in _BLOCK.finditer(text):
        bid = m.group("id")
        if bid not in blocks:
            problems.append(
                f"{path}: block {bid!r} is not produced by this report (known: {', '.join(sorted(blocks))})"
            )
            continue
        want = _body(blocks[bid])
        if m.group("body") != want:
            diff = difflib.unified_diff(
                m.group("body").splitlines(keepends=True),
                want.splitlines(keepends=True),
                fromfile=f"{path} [{bid}] (in the document)",
                tofile=f"{path} [{bid}] (the report now)",
            )
            problems.append("".join(diff))
    return problems


def main(argv=None) -> int:
    """``python -m otflow.experiment.docs --check-docs|--write-docs DOC...``: the ``file:`` blocks of
    documents that hold no report's blocks (e.g. docs/performance.md). Exit 0 when current (or
    written), 1 with a diff when stale, 2 for bad usage."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="python -m otflow.experiment.docs", description=main.__doc__.split("\n")[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--check-docs", nargs="+", metavar="DOC", help="exit 1 with a diff if a file: block is stale")
    g.add_argument("--write-docs", nargs="+", metavar="DOC", help="rewrite the file: blocks from the files")
    args = p.parse_args(argv)
    docs = args.check_docs or args.write_docs
    missing = [d for d in docs if not Path(d).is_file()]
    if missing:
        print(f"error: no such document: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.check_docs:
        problems = [q for d in docs for q in check(Path(d), {})]
        for q in problems:
            print(q, file=sys.stderr)
        return 1 if problems else 0
    for d in docs:
        text, unknown = fill(Path(d).read_text(), {}, Path(d).resolve().parents[1])
        if unknown:
            print(f"error: {d}: blocks with no file: {', '.join(unknown)}", file=sys.stderr)
            return 1
        Path(d).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
