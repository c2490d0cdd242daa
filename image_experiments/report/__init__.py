"""Report of a folder of image runs against the paper: tables with nulls, claim verdicts, figures, docs.

Command (one grammar with the other commands, see docs/cli.md)::

    python -m image_experiments.report results/images                  # report.md, CSVs, figures into RUNS_DIR
    python -m image_experiments.report results/images --out /tmp/rep   # elsewhere
    python -m image_experiments.report results/images --check-docs docs/reproduction.md docs/images.md
    python -m image_experiments.report results/images --write-docs docs/reproduction.md docs/images.md

Reads the run folders under RUNS_DIR (at any depth; only ``config.json``, ``metrics.json``,
``history.json``; never retrains) and the sweep manifests ``sweep-*.json`` beside them.

* :mod:`.collect` reads runs and groups them into settings; :mod:`.tables` renders each number
  beside its untrained and shuffled nulls, the √L / L references and the paper's cell (saying what
  differs); :mod:`.claims` judges every sub-claim of SPEC §7 by one rule (:mod:`.stats`);
  :mod:`.figures` draws Figs. 3-9 analogues; :mod:`otflow.experiment.docs` fills and checks the generated blocks of
  the project's documents.
* ``--check-docs`` exits 1 with a diff when a document's generated blocks differ from what the
  report renders now, 0 when they are current; ``--write-docs`` rewrites them and draws the figures
  into the document's ``figures/`` folder.
"""

from __future__ import annotations

from image_experiments.report.claims import claims
from image_experiments.report.collect import aggregate, collect
from image_experiments.report.render import correlations, make_report, render_blocks

__all__ = ["collect", "aggregate", "claims", "correlations", "render_blocks", "make_report", "main"]


def main(argv=None) -> int:
    from image_experiments.report.cli import main as _main

    return _main(argv)
