"""``python -m image_experiments.report``: the command line (grammar: docs/cli.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from image_experiments.report.collect import aggregate, collect
from image_experiments.report.figures import figures
from image_experiments.report.render import make_report, render_blocks
from otflow.experiment import docs
from otflow.runs import write_text

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m image_experiments.report",
        description="Tables with nulls, claim verdicts and figures from a folder of image runs; "
        "fills or checks the generated blocks of the project's documents.",
    )
    p.add_argument("runs_dir", metavar="RUNS_DIR", help="folder of run folders (e.g. results/images)")
    p.add_argument(
        "--out", metavar="DIR", default=None, help="where report.md, runs.csv and figures go (default RUNS_DIR)"
    )
    p.add_argument(
        "--figures", action=argparse.BooleanOptionalAction, default=True, help="draw the figures (default: yes)"
    )
    p.add_argument(
        "--check-docs",
        nargs="+",
        metavar="DOC",
        default=None,
        help="exit 1 with a diff if the generated blocks of DOC differ from the report now; write nothing",
    )
    p.add_argument(
        "--write-docs",
        nargs="+",
        metavar="DOC",
        default=None,
        help="rewrite the generated blocks of DOC and draw the figures into DOC's figures/ folder",
    )
    p.add_argument(
        "--resume", action="store_true", help="accepted for the common grammar; a report always reads every run"
    )
    p.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=True, help="accepted for the common grammar"
    )
    return p


def _figure_files(doc: Path) -> set[str]:
    """The report figures present beside a document (its ``figures/`` folder)."""
    return {p.name for p in (doc.parent / "figures").glob("repro_*.png")}


def _docs(args, parser) -> int:
    col = collect(args.runs_dir)
    settings = aggregate(col["runs"])
    paths = [Path(d) for d in (args.check_docs or args.write_docs)]
    for d in paths:
        if not d.is_file():
            parser.error(f"DOC: {d} is not a file")
    if args.check_docs:
        problems = []
        for d in paths:
            problems += docs.check(d, render_blocks(col, settings, figure_files=_figure_files(d)))
        for p in problems:
            print(p, file=sys.stderr)
        if problems:
            print(f"error: {len(problems)} generated block(s) out of date; rerun with --write-docs", file=sys.stderr)
            return 1
        print(f"docs current: {', '.join(map(str, paths))}")
        return 0
    for d in paths:
        if args.figures and settings:
            figures(settings, d.parent / "figures")
        blocks = render_blocks(col, settings, figure_files=_figure_files(d))
        text, unknown = docs.fill(d.read_text(), blocks, root=d.resolve().parents[1])
        if unknown:
            parser.error(f"DOC {d}: unknown generated block(s) {', '.join(unknown)}")
        write_text(d, text)
        print(f"wrote the generated blocks of {d}")
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.check_docs and args.write_docs:
        parser.error("--check-docs and --write-docs exclude each other")
    if not Path(args.runs_dir).is_dir():
        parser.error(f"RUNS_DIR: {args.runs_dir} is not a folder")
    try:
        if args.check_docs or args.write_docs:
            return _docs(args, parser)
        path = make_report(args.runs_dir, args.out, figures_on=args.figures)
    except ValueError as err:
        parser.error(str(err))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(f"wrote {path}")
    return 0
