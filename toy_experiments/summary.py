"""Aggregate per-run records of the Gaussian study: mean ± std tables and one-line verdicts.

Pure functions on the list of run records (dicts, as saved in ``runs/*.json``); no training, no I/O.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

__all__ = ["TABLE_METRICS", "BOUND_METRICS", "summarise", "verdicts", "format_table"]

# (key, column title, format); "fit" is handled apart
TABLE_METRICS = (
    ("task_loss", "loss", ".3g"),
    ("accuracy", "acc", ".3f"),
    ("w2_to_target", "W2²→tgt", ".3g"),
    ("lss", "LSS", ".3f"),
    ("lsr", "LSR", ".3f"),
    ("ots", "OTS", ".3f"),
    ("ot_cost_gap", "OT gap", ".2g"),
    ("energy_ratio", "E/W2²", ".3f"),
    ("map_uvp", "map UVP%", ".3g"),
    ("theorem1_share", "Thm1", ".3f"),
)


# measured energy next to the right-hand sides of SPEC (13)-(16) (see toy_experiments.evaluation)
BOUND_METRICS = (
    ("transport_energy", "energy", ".3g"),
    ("bound_spectral", "(13)/(15) spec", ".3g"),
    ("bound_frobenius", "(13)/(15) Frob", ".3g"),
    ("bound_penalty_form", "(14)/(16)", ".3g"),
    ("bound_weight_penalty", "Σ‖W1‖²+‖W2‖²", ".3g"),
)


def summarise(records: list[dict]) -> list[dict]:
    """One row per (task, architecture, λ, net): mean and population std over seeds of every metric,
    and the number of seeds that fit."""
    groups = defaultdict(list)
    for r in records:
        groups[(r["task"], r["n_blocks"], r["width"], r["lam"], r["net"])].append(r)
    task_order = {t: i for i, t in enumerate(dict.fromkeys(r["task"] for r in records))}
    rows = []
    order = sorted(groups.items(), key=lambda kv: (task_order[kv[0][0]], kv[0][1:4], kv[0][4] != "residual"))
    for (task, n_blocks, width, lam, net), rs in order:
        row = {"task": task, "n_blocks": n_blocks, "width": width, "lam": lam, "net": net, "n": len(rs)}
        row["n_fit"] = int(sum(bool(r["fit"]) for r in rs))
        row["bound_form"] = rs[0].get("bound_form")
        row["n_within_bounds"] = int(sum(bool(r.get("energy_within_bounds")) for r in rs))
        for key, _, _ in TABLE_METRICS + BOUND_METRICS + (("w2_in_out", "", ""),):
            vals = [r[key] for r in rs if r.get(key) is not None]
            if vals:
                row[key] = float(np.mean(vals))
                row[key + "_std"] = float(np.std(vals))
        rows.append(row)
    return rows


def _pairs(records: list[dict]):
    """Residual/plain pairs with the same task, architecture, λ and seed."""
    by_key = defaultdict(dict)
    for r in records:
        by_key[(r["task"], r["n_blocks"], r["width"], r["lam"], r["seed"])][r["net"]] = r
    return [(k, d["residual"], d["plain"]) for k, d in sorted(by_key.items()) if "residual" in d and "plain" in d]


def verdicts(records: list[dict]) -> list[str]:
    """One line per claim of the paper, stating what was measured on pairs where both nets fit."""
    claims = (
        ("residual LSS below plain", "lss", lambda a, b: a < b),
        ("residual OTS above plain", "ots", lambda a, b: a > b),
        ("residual energy ratio closer to 1", "energy_ratio", lambda a, b: abs(a - 1) < abs(b - 1)),
    )
    pairs = _pairs(records)
    both = [(k, r, p) for k, r, p in pairs if r["fit"] and p["fit"]]
    excluded = len(pairs) - len(both)
    lines = []
    for title, key, better in claims:
        if not both:
            lines.append(
                f"{title}: NOT TESTED: no residual/plain pair where both nets fit ({len(pairs)} pairs, all excluded)"
            )
            continue
        wins = sum(bool(better(r[key], p[key])) for _, r, p in both)
        n = len(both)
        word = "HOLDS" if wins == n else ("HOLDS MOSTLY" if wins > n / 2 else "DOES NOT HOLD")
        per_task = defaultdict(lambda: [0, 0])
        for k, r, p in both:
            per_task[k[0]][0] += bool(better(r[key], p[key]))
            per_task[k[0]][1] += 1
        detail = ", ".join(f"{t} {w}/{m}" for t, (w, m) in per_task.items())
        mean_r = float(np.mean([r[key] for _, r, _ in both]))
        mean_p = float(np.mean([p[key] for _, _, p in both]))
        lines.append(
            f"{title}: {word}: true in {wins}/{n} same-seed pairs where both nets fit ({detail}); "
            f"mean {key} residual {mean_r:.3g} vs plain {mean_p:.3g}; {excluded} pair(s) excluded (a net did not fit)"
        )
    return lines


def _cell(row: dict, key: str, fmt: str) -> str:
    if key not in row or row[key] is None or (isinstance(row[key], float) and math.isnan(row[key])):
        return "—"
    return f"{row[key]:{fmt}}±{row[key + '_std']:{fmt}}"


def format_table(rows: list[dict], fit_rules: dict[str, str]) -> str:
    """A plain-text table: per task and architecture, per λ, residual and plain lines."""
    out = []
    by_task = defaultdict(list)
    for row in rows:
        by_task[(row["task"], row["n_blocks"], row["width"])].append(row)
    for (task, n_blocks, width), rs in by_task.items():
        skip = ("task_loss", "accuracy") if task != "classification" else ()  # the loss is W2²→tgt there
        cols = [(k, t, f) for k, t, f in TABLE_METRICS if k not in skip and any(k in r for r in rs)]
        out.append(f"\n== {task} (L={n_blocks}, width={width}); fit: {fit_rules.get(task, '?')}; mean±std over seeds")
        header = f"{'λ':>7} {'net':<8} {'fit':>4} " + " ".join(f"{t:>15}" for _, t, _ in cols)
        out.append(header)
        out.append("-" * len(header))
        for row in rs:
            cells = " ".join(f"{_cell(row, k, f):>15}" for k, _, f in cols)
            out.append(f"{row['lam']:>7g} {row['net']:<8} {row['n_fit']:>2}/{row['n']:<1} {cells}")
        form = rs[0].get("bound_form")
        note = (
            "bias-free blocks: eq. (13) itself"
            if form == "bias-free (13)"
            else ("blocks with biases: bounds of the bias-free blocks on the lifted state (x, 1), not (13) itself")
        )
        out.append(
            f"-- energy vs the right-hand sides of (13)-(16) ({note}); "
            "ok: seeds whose energy is ≤ the tightest bound (spectral)"
        )
        header = f"{'λ':>7} {'net':<8} {'ok':>4} " + " ".join(f"{t:>19}" for _, t, _ in BOUND_METRICS)
        out.append(header)
        for row in rs:
            cells = " ".join(f"{_cell(row, k, f):>19}" for k, _, f in BOUND_METRICS)
            out.append(f"{row['lam']:>7g} {row['net']:<8} {row['n_within_bounds']:>2}/{row['n']:<1} {cells}")
    return "\n".join(out)
