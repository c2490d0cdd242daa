r"""The generated blocks of docs/toy.md, rendered from the committed toy runs in ``results/toy``.

Command (the grammar of docs/cli.md; the blocks are those of :mod:`otflow.experiment.docs`)::

    python -m toy_experiments.docs results/toy --check-docs docs/toy.md    # exit 0: current, 1: a diff
    python -m toy_experiments.docs results/toy --write-docs docs/toy.md    # rewrite the blocks

``results/toy/default`` holds the small files of a default ``python -m toy_experiments.gaussians``
run and ``results/toy/calibration`` those of a default ``python -m toy_experiments.calibration``
run (``config.json``, ``environment.json`` where written, ``metrics.json``, ``summary.json``,
``table.txt``). The blocks: ``toy-default`` and ``toy-calibration`` (the tables and verdicts each
command printed, from its ``table.txt``) and ``toy-runs`` (what each run was: revision, machine,
load, wall time). Publishing a new run: :func:`publish` copies those files from a run folder.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from otflow.experiment import docs
from otflow.experiment.cli import EXIT_FAILED, EXIT_OK

__all__ = ["SMALL_FILES", "publish", "render_blocks", "main"]

SMALL_FILES = ("config.json", "environment.json", "metrics.json", "summary.json", "table.txt", "timing.json")
RUNS = {
    "default": "toy_experiments.gaussians",
    "he-plain": "toy_experiments.gaussians --init he-plain",
    "torch-default": "toy_experiments.gaussians --init torch-default",
    "calibration": "toy_experiments.calibration",
}
INITS = (
    ("torch-default", "`torch-default` (before issue 12)"),
    ("he-plain", "`he-plain`"),
    ("default", "`looks-linear` (default)"),
)
COMPARED = (
    "residual LSS below plain",
    "residual OTS above plain",
    "residual energy ratio closer to 1",
    "residual closer to the exact OT map than plain (map UVP lower)",
    "plain: fit to the target is kept as λ grows (the run at λ' fits too)",
)


def publish(run_dir, results_dir) -> list[Path]:
    """Copy a finished run's small files (:data:`SMALL_FILES` that exist) into ``results_dir``."""
    run_dir, results_dir = Path(run_dir), Path(results_dir)
    if not (run_dir / "table.txt").is_file():
        raise ValueError(f"run folder {run_dir}: table.txt is missing (the run has not finished)")
    results_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in SMALL_FILES:
        if (run_dir / name).is_file():
            written.append(Path(shutil.copy2(run_dir / name, results_dir / name)))
    return written


def _fenced(text: str) -> str:
    return "```\n" + text.strip("\n") + "\n```"


def _environment(folder: Path) -> dict:
    if (folder / "environment.json").is_file():
        return json.loads((folder / "environment.json").read_text())
    cfg = json.loads((folder / "config.json").read_text())
    return cfg.get("environment") or {}


def _runs_block(root: Path) -> str:
    rows = [
        "| run | command | git revision | machine | load average at start | wall time |",
        "|---|---|---|---|---|---|",
    ]
    for name, command in RUNS.items():
        folder = root / name
        if not (folder / "config.json").is_file():
            rows.append(f"| {name} | `python -m {command}` | – | – | – | not run |")
            continue
        env = _environment(folder)
        timing = json.loads((folder / "timing.json").read_text()) if (folder / "timing.json").is_file() else {}
        load = env.get("load_average")
        rows.append(
            f"| {name} | `python -m {command}` | `{(env.get('git_revision') or '?')[:7]}` | "
            f"{env.get('cpu_model') or env.get('machine', '?')}, {env.get('cpu_count', '?')} CPUs | "
            f"{'–' if not load else ' / '.join(f'{v:.1f}' for v in load)} | "
            f"{'–' if 'wall_s' not in timing else format(timing['wall_s'], '.1f') + ' s'} |"
        )  # fmt: skip
    return "\n".join(rows)


def _both_fit(folder: Path) -> str:
    """Same-seed residual/plain pairs where both nets fit, per task (of all pairs)."""
    records = json.loads((folder / "metrics.json").read_text())
    by = {}
    for r in records:
        by.setdefault((r["task"], r["lam"], r["seed"]), {})[r["net"]] = bool(r["fit"])
    tasks = list(dict.fromkeys(k[0] for k in by))
    parts = [f"{sum(all(v.values()) for k, v in by.items() if k[0] == t)}/{sum(k[0] == t for k in by)}" for t in tasks]
    return " · ".join(parts) + f" ({' · '.join(tasks)})"


def _verdict(folder: Path, claim: str) -> str:
    lines = json.loads((folder / "summary.json").read_text())["verdicts"]
    for line in lines:
        if line.startswith(claim + ": "):
            word, rest = line[len(claim) + 2 :].split(": ", 1)
            return f"{word}, {rest.split(' ', 3)[2]}"
    return "–"


def _inits_block(root: Path) -> str:
    """The net-comparison verdicts under each plain-net initialisation, from the committed runs."""
    have = [(name, title) for name, title in INITS if (root / name / "summary.json").is_file()]
    if not have:
        return "No committed runs."
    rows = [["pairs where both nets fit"] + [_both_fit(root / name) for name, _ in have]]
    rows += [[claim] + [_verdict(root / name, claim) for name, _ in have] for claim in COMPARED]
    head = "| claim | " + " | ".join(t for _, t in have) + " |"
    lines = [head, "|" + "---|" * (len(have) + 1)] + ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def render_blocks(results_dir) -> dict[str, str]:
    """Block id → Markdown for docs/toy.md, from ``results_dir`` (``results/toy``)."""
    root = Path(results_dir)
    blocks = {"toy-runs": _runs_block(root), "toy-inits": _inits_block(root)}
    for name in RUNS:
        table = root / name / "table.txt"
        blocks[f"toy-{name}"] = _fenced(table.read_text()) if table.is_file() else f"No committed {name} run."
    return blocks


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m toy_experiments.docs",
        description="Check or rewrite the generated blocks of docs/toy.md from the committed toy runs.",
    )
    p.add_argument("results_dir", metavar="RESULTS_DIR", help="the committed toy runs (results/toy)")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check-docs", nargs="+", metavar="DOC", help="exit 1 with a diff if DOC's blocks are stale")
    mode.add_argument("--write-docs", nargs="+", metavar="DOC", help="rewrite DOC's generated blocks")
    args = p.parse_args(argv)
    if not Path(args.results_dir).is_dir():
        p.error(f"RESULTS_DIR: {args.results_dir} is not a folder")
    blocks = render_blocks(args.results_dir)
    for doc in args.check_docs or args.write_docs:
        if not Path(doc).is_file():
            p.error(f"DOC: {doc} is not a file")
    if args.check_docs:
        problems = [q for doc in args.check_docs for q in docs.check(Path(doc), blocks)]
        for q in problems:
            print(q, file=sys.stderr)
        return EXIT_FAILED if problems else EXIT_OK
    for doc in args.write_docs:
        text, unknown = docs.fill(Path(doc).read_text(), blocks)
        if unknown:
            p.error(f"DOC {doc}: unknown generated block(s) {', '.join(unknown)}")
        Path(doc).write_text(text)
        print(f"wrote the generated blocks of {doc}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
