"""Aggregate per-run records of the Gaussian study: mean ± std tables and one-line verdicts.

Pure functions on the list of run records (dicts, as saved in ``runs/*.json``); no training, no I/O.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

__all__ = [
    "TABLE_METRICS",
    "BOUND_METRICS",
    "VERDICT_RULE",
    "Verdict",
    "Count",
    "summarise",
    "verdict_word",
    "verdict_results",
    "format_verdict",
    "verdicts",
    "format_table",
]

# (key, column title, format); "fit" is handled apart
TABLE_METRICS = (
    ("task_loss", "loss", ".3g"),
    ("accuracy", "acc", ".3f"),
    ("w2sq_to_target", "W2²→tgt", ".3g"),
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
        for key, _, _ in TABLE_METRICS + BOUND_METRICS + (("w2sq_in_out", "", ""),):
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


# ----- verdicts: every headline of the docs, counted on same-seed pairs --------------------------------

VERDICT_RULE = (
    "rule: a claim HOLDS where it is true in ≥ 80 % of the tested pairs, DOES NOT HOLD where ≤ 20 %, is MIXED "
    "in between, and is INCONCLUSIVE where fewer than 3 pairs, or fewer than half the candidate pairs, could be "
    "tested (both runs fit); over tasks: the common word of the tasks that are not INCONCLUSIVE, MIXED if they differ"
)


@dataclass(frozen=True)
class Count:
    """How one claim fared on one task (or pooled): true in ``wins`` of ``tested`` pairs, of ``candidates``."""

    word: str
    wins: int
    tested: int
    candidates: int
    before: float | None = None  # mean of the metric on the first side (plain / smallest λ), tested runs
    after: float | None = None  # mean on the second side (residual / largest λ)


@dataclass(frozen=True)
class Verdict:
    """One claim of the docs, measured: the overall word, the pooled count, and the count per task."""

    claim: str
    key: str
    pairs: str  # what a pair is
    word: str
    total: Count
    per_task: dict


def verdict_word(wins: int, tested: int, candidates: int) -> str:
    """The word for a claim true in ``wins`` of ``tested`` pairs, of ``candidates`` (see :data:`VERDICT_RULE`)."""
    if not 0 <= wins <= tested <= candidates:
        raise ValueError(f"counts: expected 0 ≤ wins ≤ tested ≤ candidates, got {wins}, {tested}, {candidates}")
    if tested < 3 or tested < candidates / 2:
        return "INCONCLUSIVE"
    share = wins / tested
    return "HOLDS" if share >= 0.8 else "DOES NOT HOLD" if share <= 0.2 else "MIXED"


def _combine(per_task: dict) -> str:
    words = {c.word for c in per_task.values() if c.word != "INCONCLUSIVE"}
    if not words:
        return "INCONCLUSIVE"
    return words.pop() if len(words) == 1 else "MIXED"


def _count(outcomes: list, *, candidates: int, means=None) -> Count:
    """``outcomes``: (true?, value on the first side, value on the second side) per tested pair;
    ``means``: (before, after) to report instead of the means over the tested pairs."""
    wins, tested = sum(bool(o[0]) for o in outcomes), len(outcomes)
    if means is None:
        means = tuple(float(np.mean([o[i] for o in outcomes])) if outcomes else None for i in (1, 2))
    return Count(verdict_word(wins, tested, candidates), wins, tested, candidates, *means)


def _measure(claim, key, pairs, outcomes_by_task: dict, candidates_by_task: dict, means_by_task=None) -> Verdict:
    means_by_task = means_by_task or {}
    per_task = {
        t: _count(outcomes_by_task.get(t, []), candidates=n, means=means_by_task.get(t))
        for t, n in candidates_by_task.items()
    }
    everything = [o for t in candidates_by_task for o in outcomes_by_task.get(t, [])]
    total = _count(everything, candidates=sum(candidates_by_task.values()), means=(None, None))
    return Verdict(claim, key, pairs, _combine(per_task), total, per_task)


def _end_means(records: list[dict], net: str, value, *, fitted: bool) -> dict:
    """Per task: mean of ``value(run)`` at the smallest and at the largest λ (over fitted runs if ``fitted``)."""
    out = {}
    for task in dict.fromkeys(r["task"] for r in records):
        runs = [r for r in records if r["task"] == task and r["net"] == net and (r["fit"] or not fitted)]
        lams = [r["lam"] for r in records if r["task"] == task and r["net"] == net]
        ends = [[value(r) for r in runs if r["lam"] == lam] for lam in (min(lams), max(lams))] if lams else [[], []]
        ends = [[v for v in e if v is not None] for e in ends]
        out[task] = tuple(float(np.mean(v)) if v else None for v in ends)
    return out


_NET_CLAIMS = (
    ("residual LSS below plain", "lss", lambda r, p: r < p),
    ("residual OTS above plain", "ots", lambda r, p: r > p),
    ("residual energy ratio closer to 1", "energy_ratio", lambda r, p: abs(r - 1) < abs(p - 1)),
    ("residual closer to the exact OT map than plain (map UVP lower)", "map_uvp", lambda r, p: r < p),
)

_TREND_CLAIMS = (
    ("LSS falls as λ grows", "lss", lambda a, b: b < a),
    ("energy ratio falls as λ grows", "energy_ratio", lambda a, b: b < a),
    ("OTS rises as λ grows", "ots", lambda a, b: b > a),
    ("distance to the exact OT map (map UVP) falls as λ grows", "map_uvp", lambda a, b: b < a),
)


def _net_verdicts(records: list[dict]) -> list[Verdict]:
    pairs = _pairs(records)
    candidates = Counter(k[0] for k, _, _ in pairs)
    out = []
    for claim, key, true in _NET_CLAIMS:
        outcomes = defaultdict(list)
        for k, r, p in pairs:
            if r["fit"] and p["fit"] and r[key] is not None and p[key] is not None:
                outcomes[k[0]].append((true(r[key], p[key]), p[key], r[key]))
        out.append(
            _measure(
                claim, key, "same-seed residual/plain pairs (same task, λ) where both nets fit", outcomes, candidates
            )
        )
    return out


def _lambda_pairs(records: list[dict], net: str):
    """Same-seed pairs ``(task, run at λ, run at λ')`` with λ < λ', for one kind of net."""
    by_key = defaultdict(dict)
    for r in records:
        if r["net"] == net:
            by_key[(r["task"], r["n_blocks"], r["width"], r["seed"])][r["lam"]] = r
    out = []
    for k, runs in by_key.items():
        lams = sorted(runs)
        out += [(k[0], runs[a], runs[b]) for i, a in enumerate(lams) for b in lams[i + 1 :]]
    return out


def _fit_value(r: dict) -> float:
    return r["accuracy"] if r["task"] == "classification" else r["w2sq_to_target"]


def _trend_verdicts(records: list[dict], net: str) -> list[Verdict]:
    pairs = _lambda_pairs(records, net)
    candidates = Counter(t for t, _, _ in pairs)
    out = []
    what = "same-seed pairs of λ < λ' where both runs fit"
    for claim, key, true in _TREND_CLAIMS:
        outcomes = defaultdict(list)
        for t, a, b in pairs:
            if a["fit"] and b["fit"] and a[key] is not None and b[key] is not None:
                outcomes[t].append((true(a[key], b[key]), a[key], b[key]))
        means = _end_means(records, net, lambda r, key=key: r[key], fitted=True)
        out.append(_measure(f"{net}: {claim}", key, what, outcomes, candidates, means))
    kept = defaultdict(list)
    for t, a, b in pairs:
        if a["fit"]:
            kept[t].append((b["fit"], _fit_value(a), _fit_value(b)))
    tested = {t: len(kept.get(t, [])) for t in candidates}  # every pair whose smaller λ fits is tested
    claim = f"{net}: fit to the target is kept as λ grows (the run at λ' fits too)"
    means = _end_means(records, net, _fit_value, fitted=False)
    out.append(_measure(claim, "fit", "same-seed pairs of λ < λ' where the run at λ fits", kept, tested, means))
    return out


def verdict_results(records: list[dict]) -> list[Verdict]:
    """Every claim the docs state, measured on the grid records (see :data:`VERDICT_RULE`)."""
    nets = [n for n in ("residual", "plain") if any(r["net"] == n for r in records)]
    return _net_verdicts(records) + [v for n in nets for v in _trend_verdicts(records, n)]


def _fmt(v) -> str:
    return "—" if v is None else f"{v:.3g}"


def format_verdict(v: Verdict, lams=None) -> str:
    """One line: the claim, its word, the pooled count, and each task's word, count and means
    (residual vs plain over the tested pairs, or at the smallest → the largest λ of ``lams``)."""
    net_claim = " as λ grows" not in v.claim
    if net_claim:
        tasks = [
            f"{t} {c.word} {c.wins}/{c.tested} ({_fmt(c.after)} vs {_fmt(c.before)})" for t, c in v.per_task.items()
        ]
        means = "residual vs plain, tested pairs"
    else:
        tasks = [
            f"{t} {c.word} {c.wins}/{c.tested} ({_fmt(c.before)} → {_fmt(c.after)})" for t, c in v.per_task.items()
        ]
        ends = f"λ={min(lams):g} → λ={max(lams):g}" if lams else "smallest → largest λ"
        means = f"{ends}, {'all' if v.key == 'fit' else 'fitted'} runs"
    key = "W2²→tgt or accuracy" if v.key == "fit" else v.key
    return (
        f"{v.claim}: {v.word}: true in {v.total.wins}/{v.total.tested} {v.pairs}, of {v.total.candidates}; "
        f"per task (mean {key}, {means}): {', '.join(tasks)}"
    )


def verdicts(records: list[dict]) -> list[str]:
    """The rule, then one line per claim (:func:`format_verdict`)."""
    lams = sorted({r["lam"] for r in records})
    return [VERDICT_RULE] + [format_verdict(v, lams) for v in verdict_results(records)]


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
