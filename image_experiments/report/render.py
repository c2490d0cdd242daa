"""Rendering a collected folder of runs: the named blocks, report.md and the CSV files."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path

import numpy as np

from image_experiments import paper_values as pv
from image_experiments.report import tables
from image_experiments.report.campaign import campaign_table, rerun_table, rule_table
from image_experiments.report.claims import OTS_SATURATED, claims
from image_experiments.report.collect import aggregate, collect, setting_title
from image_experiments.report.compare import convergence_table
from image_experiments.report.figures import figures, slug, width_studies
from image_experiments.report.stats import DIRECTION_RULE, MIN_SEEDS
from otflow.runs import write_text

__all__ = ["render_blocks", "make_report", "correlations", "figure_names"]

FIGURE_KINDS = ("lss_vs_epoch", "metrics_vs_lambda", "robustness", "ablation", "tracks")


def correlations(runs: list[dict]) -> list[dict]:
    """Pearson r and Spearman ρ of LSS and OTS with train and test accuracy, within each setting of
    more than one λ (accuracies of different settings are not comparable), per net and both nets."""
    from scipy import stats

    by_setting = defaultdict(list)
    for r in runs:
        by_setting[r["setting"]].append(r)
    out = []
    for _, rs in sorted(by_setting.items()):
        if len({float(r["config"]["wd"]) for r in rs}) < 2:
            continue
        title = setting_title(rs[0]["setting_fields"])
        for arch in (None, "resnet", "plain"):
            sub = [r for r in rs if arch is None or r["config"]["arch"] == arch]
            for x in ("lss", "ots"):
                for y in ("train_acc", "test_acc"):
                    pts = [
                        (r["values"][x], r["values"][y]) for r in sub if None not in (r["values"][x], r["values"][y])
                    ]
                    row = {"group": f"{title}: {arch or 'both nets'}", "x": x, "y": y, "n": len(pts)}
                    row["pearson"] = row["spearman"] = None
                    if len(pts) >= 3:
                        a, b = np.asarray(pts, dtype=float).T
                        if np.ptp(a) > 0 and np.ptp(b) > 0:
                            row["pearson"] = float(stats.pearsonr(a, b)[0])
                            row["spearman"] = float(stats.spearmanr(a, b)[0])
                    out.append(row)
    return out


def _correlation_block(runs) -> str:
    rows = [
        [
            c["group"],
            c["x"].upper(),
            c["y"].replace("_acc", ""),
            c["n"],
            "–" if c["pearson"] is None else f"{c['pearson']:+.2f}",
            "–" if c["spearman"] is None else f"{c['spearman']:+.2f}",
        ]
        for c in correlations(runs)
    ]
    if not rows:
        return "No setting with more than one λ."
    head = ["runs", "metric", "accuracy", "n", "Pearson r", "Spearman ρ"]
    return tables.md_table(head, rows) + "\n\n(– : fewer than 3 runs, or a constant variable. One point per run.)"


def _claims_block(settings) -> str:
    out = [
        f"Each sub-claim is judged on its own (never a sum across sub-claims): {DIRECTION_RULE} for a "
        f"direction; ≥ {MIN_SEEDS} seeds with mean ± 2 seed std inside the band for a magnitude; a claim "
        "made at every λ holds only if it holds at each, reads MIXED if it holds at some and fails at "
        f"others, and INCONCLUSIVE if the rest is undecided. A λ run with fewer than {MIN_SEEDS} seeds is "
        f"not judged when other λ have {MIN_SEEDS} (the converged CIFAR grids run seeds 1-2 at 4 of their "
        "9 λ): the verdict then names the λ it covers, e.g. HOLDS (4 of 9 λ). An OTS verdict whose trained net "
        f"and null all score ≥ {OTS_SATURATED:g} adds (OTS saturated): the score cannot tell them apart, whatever "
        "the word.",
        "",
    ]
    summary = []
    for num, subs in claims(settings):
        out += [f"**Claim {num}.** {pv.CLAIMS[num]}", ""]
        for label, statement, v in subs:
            out.append(
                f"- **{label}. {v.label}**: {statement}. Measured: {v.text}." + (f" Rule: {v.rule}." if v.rule else "")
            )
            summary.append([label, statement, v.label])
        out.append("")
    return "\n".join(["Verdicts at a glance:", "", tables.md_table(["", "sub-claim", "verdict"], summary), ""] + out)


def _tables_block(settings) -> str:
    out = []
    for s in settings.values():
        out += [tables.setting_table(s), "", tables.effects_table(s), ""]
        seg = tables.segments_table(s)
        if seg:
            out += [seg, ""]
    return "\n".join(out) if out else "No completed image runs."


def _summary_block(col, settings) -> str:
    lines = [
        f"{len(col['runs'])} completed image run(s) in {len(settings)} setting(s); {len(col['problems'])} "
        "missing, failed or unfinished (listed under problems).",
    ]
    for m in col["manifests"]:
        counts = m["doc"].get("counts") or {}
        lines.append(
            f"- sweep `{m['path']}` (grid {m['grid']}): " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        )
    return "\n".join(lines)


def figure_names(settings) -> list[str]:
    """Every figure the report may draw for these settings: per setting, then the width studies."""
    per_setting = [f"repro_{slug(s)}_{kind}.png" for s in settings.values() for kind in FIGURE_KINDS]
    return per_setting + [name for name, _, _ in width_studies(settings)]


def _figures_block(settings, prefix: str, existing) -> str:
    names = [n for n in figure_names(settings) if existing is None or n in existing]
    return "\n".join(f"![{n[:-4]}]({prefix}{n})" for n in names) or "No figures."


def render_blocks(col: dict, settings: dict | None = None, *, figure_prefix: str = "figures/", figure_files=None):
    """Every named block a document can hold (see :mod:`otflow.experiment.docs`): id → Markdown."""
    settings = aggregate(col["runs"]) if settings is None else settings
    return {
        "images-summary": _summary_block(col, settings),
        "images-tables": _tables_block(settings),
        "images-claims": _claims_block(settings),
        "images-convergence": convergence_table(settings, claims(settings)),
        "images-correlations": _correlation_block(col["runs"]),
        "images-head": tables.head_check(col["runs"]),
        "images-runtimes": tables.runtime_table(col["runs"]),
        "images-campaign": campaign_table(col["runs"]),
        "images-rule": rule_table(col["runs"]),
        # pilots live beside the runs folder (results/pilots next to results/images)
        "images-pilots": rerun_table(Path(col["root"]).parent / "pilots", col["runs"]) if col.get("root") else "",
        "images-problems": tables.problems_table(col["problems"]),
        "images-figures": _figures_block(settings, figure_prefix, figure_files),
    }


def _csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    if rows:
        keys = list(dict.fromkeys(k for r in rows for k in r))
        w = csv.DictWriter(buf, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return buf.getvalue()


def _runs_rows(runs) -> list[dict]:
    keep = ("dataset", "k", "arch", "wd", "seed", "profile", "head")
    return [{"run": r["name"], **{k: r["config"].get(k) for k in keep}, **r["values"]} for r in runs]


def make_report(runs_dir, out_dir=None, *, figures_on: bool = True) -> Path:
    """Write ``report.md``, ``runs.csv`` (one row per run, every value the claims use) and
    ``report_figures/`` into ``out_dir`` (default ``runs_dir``); returns the path of report.md."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise ValueError(f"RUNS_DIR: {runs_dir} is not a folder")
    out_dir = Path(out_dir) if out_dir is not None else runs_dir
    col = collect(runs_dir)
    settings = aggregate(col["runs"])
    written = figures(settings, out_dir / "report_figures") if figures_on and settings else []
    blocks = render_blocks(col, settings, figure_prefix="report_figures/", figure_files={p.name for p in written})
    sections = [
        ("Runs", "images-summary"),
        ("Tables", "images-tables"),
        ("Headline claims (SPEC §7)", "images-claims"),
        ("Verdicts at convergence beside early training and the paper", "images-convergence"),
        ("Correlation of LSS and OTS with accuracy, within each setting", "images-correlations"),
        ("Does the head move the plain net's length to the last segment?", "images-head"),
        ("Run times", "images-runtimes"),
        ("The convergence campaign: done and left", "images-campaign"),
        ("Figures", "images-figures"),
        ("Missing, failed and unfinished runs", "images-problems"),
    ]
    md = [f"# Report: {runs_dir.name}", ""]
    for title, bid in sections:
        md += [f"## {title}", "", blocks[bid], ""]
    write_text(out_dir / "report.md", "\n".join(md))
    write_text(out_dir / "runs.csv", _csv_text(_runs_rows(col["runs"])))
    return out_dir / "report.md"
