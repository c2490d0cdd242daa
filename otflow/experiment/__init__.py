"""The experiment layer every study of this project shares (the studies live in their own packages).

* :mod:`otflow.runs` — run folders: atomic writes, JSON, figures, the environment record.
* :mod:`otflow.experiment.cli` — one command-line grammar: a Config dataclass becomes options with
  help text taken from the comment beside each field, the common options (``--out``, ``--resume``,
  ``--progress/--no-progress``, ``--figures/--no-figures``) and the exit codes (0 done, 1 a run
  failed, 2 bad usage, 130 interrupted and resumable).
* :mod:`otflow.experiment.sweep` — the sweep engine: a task list, a manifest rewritten atomically,
  bounded retries, local and Ray backends, export of finished runs' small files.

Nothing here imports torch; a study's own package defines its configs, grids and report.
"""

from otflow.experiment.cli import (
    EXIT_BAD_USAGE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    add_common_options,
    add_config_options,
    config_overrides,
    field_help,
    parse_field,
)

__all__ = [
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_BAD_USAGE",
    "EXIT_INTERRUPTED",
    "add_common_options",
    "add_config_options",
    "config_overrides",
    "field_help",
    "parse_field",
]
