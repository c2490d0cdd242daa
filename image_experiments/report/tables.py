"""Markdown tables of a report: each number beside its nulls, the references and the paper's cell.

* :func:`setting_table` — per λ and net: accuracies, OTS, LSR, LSS, energy ratio and OT cost gap as
  mean ± seed std, each with its same-seed untrained net (BatchNorm re-estimated) and its
  shuffled-displacement null in parentheses, the paper's cell in brackets with what differs from
  ours (test-set size m, training), and the analytic references (1, √L, L) in the caption.
* :func:`effects_table` — the *learned* effect (trained − untrained, and its size in seed std) per
  λ and net, and the *structural* one (ResNet − plain at initialisation).
* :func:`segments_table`, :func:`runtime_table`, :func:`head_check`, :func:`problems_table`.
"""

from __future__ import annotations

import numpy as np

import otflow
from image_experiments import paper_values as pv
from image_experiments.report.collect import CONVERGENCE_RULE, seed_stats

__all__ = [
    "md_table",
    "setting_table",
    "effects_table",
    "segments_table",
    "runtime_table",
    "head_check",
    "problems_table",
    "fmt_stats",
]

PAPER_M = 10_000  # SPEC §5: the paper's OTS and test accuracies are on the 10,000 test images
_NULLED = (("ots", "OTS", ".3f"), ("lsr", "LSR", ".2f"), ("lss", "LSS", ".2f"), ("energy_ratio", "energy ratio", ".2f"))


def md_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_stats(ms, fmt: str) -> str:
    if ms is None:
        return "–"
    mean, sd, n = ms
    return f"{mean:{fmt}}" + (f" ± {sd:{fmt}}" if n > 1 else "")


def _mean(ms, fmt: str) -> str:
    return "–" if ms is None else f"{ms[0]:{fmt}}"


def _differs(s: dict, key: str) -> str:
    """What differs between our cell and the paper's (like with like), '' when nothing known does."""
    m = s["runs"][0]["metrics"].get("data", {})
    if key == "ots" and m.get("ots_m") not in (None, PAPER_M):
        return f"m {m['ots_m']:,} vs {PAPER_M:,}"
    if key == "test_acc" and m.get("n_test") not in (None, PAPER_M):
        return f"{m['n_test']:,} vs {PAPER_M:,} test images"
    if key == "train_acc":
        cfg = s["runs"][0]["config"]
        return f"ours: {cfg['epochs']} epochs, {m.get('n_train', 0):,} images"
    return ""


def _paper_cell(s: dict, arch: str, wd: float, key: str) -> str:
    v = pv.paper_value(s["fields"]["dataset"], s["fields"]["k"], arch, wd, key)
    if v is None:
        return ""
    if v.lost:
        return " [paper: lost]"
    diff = _differs(s, key)
    return f" [paper {v.text}" + (f"; {diff}]" if diff else "]")


def references_line(n_blocks: int) -> str:
    r = otflow.null_references(n_blocks)
    return (
        f"References for L = {n_blocks} segments (otflow.null_references): LSS and LSR are 1 on a geodesic, "
        f"√L = {r.random_walk:.2f} for a random walk and L = {r.independent_layers:g} for independent layers; "
        f"the energy ratio is 1, L = {r.energy_ratio_random_walk:g} and ≥ L² = "
        f"{r.energy_ratio_independent_layers:g} (relative to the identity coupling)."
    )


def setting_table(s: dict) -> str:
    """The paper-shaped table of one setting, every metric beside its nulls (see the module docstring)."""
    f = s["fields"]
    paper = pv.table_for(f["dataset"], f["k"])
    rows = []
    for (arch, wd), c in s["cells"].items():
        row = [f"{wd:g}", arch, f"{c['n']} ({','.join(map(str, c['seeds']))}); {c['converged']} conv."]
        for key in ("train_acc", "test_acc"):
            row.append(fmt_stats(c[key], ".1f") + _paper_cell(s, arch, wd, key))
        for key, _, fmt in _NULLED:
            nulls = f" ({_mean(c[f'{key}_untrained'], fmt)} · {_mean(c[f'{key}_shuffled'], fmt)})"
            row.append(fmt_stats(c[key], fmt) + _paper_cell(s, arch, wd, key) + nulls)
        row.append(fmt_stats(c["ot_cost_gap"], ".2g") + f" ({_mean(c['ot_cost_gap_untrained'], '.2g')})")
        rows.append(row)
    header = ["λ", "net", "seeds; converged", "train acc %", "test acc %"]
    header += [f"{t} (untrained · shuffled)" for _, t, _ in _NULLED] + ["OT cost gap (untrained)"]
    n_blocks = s["runs"][0]["values"].get("n_blocks") or 1
    m = s["runs"][0]["metrics"].get("data", {})
    lines = [
        f"### {s['title']}",
        "",
        (f"Paper: {pv.TABLES[paper]['title']}, in brackets." if paper else "The paper has no table for this setting.")
        + f" Ours: mean ± seed std (ddof=1); OTS and the track metrics on the first {m.get('ots_m', 0):,} test "
        "images; in parentheses the same-seed untrained net (BatchNorm statistics re-estimated on training "
        "images) and the shuffled-displacement null (each segment's steps permuted across samples). "
        + references_line(n_blocks)
        + f" {CONVERGENCE_RULE}.",
        "",
        md_table(header, rows),
    ]
    if f["k"] == 4:
        lines.append("\nK=4 cells are the mean over the 4 stages; the paper's (std) is over stages, our ± over seeds.")
    notes = [(r["name"], r["values"]["track_notes"]) for r in s["runs"] if r["values"].get("track_notes")]
    if notes:
        lines += ["", "Track metrics that are missing (–, or a mean over fewer seeds) or trivial in single runs:", ""]
        lines += [f"- `{name}`: {note}." for name, note in notes]
    return "\n".join(lines)


def _paired(runs, a: str, b: str) -> tuple[float, float, int] | None:
    d = [r["values"].get(a) - r["values"].get(b) for r in runs if None not in (r["values"].get(a), r["values"].get(b))]
    return seed_stats(d)


def _effect(ms, fmt=".3g") -> str:
    if ms is None:
        return "–"
    mean, sd, n = ms
    if n < 2:
        return f"{mean:+{fmt}} (n=1)"
    z = "∞" if sd == 0 and mean != 0 else ("0" if sd == 0 else f"{abs(mean) / sd:.1f}")
    return f"{mean:+{fmt}} ({z} sd, n={n})"


def effects_table(s: dict) -> str:
    """Learned (trained − untrained, per λ and net) and structural (ResNet − plain at init) effects."""
    keys = ("lss", "lsr", "ots", "energy_ratio")
    rows = []
    for (arch, wd), c in s["cells"].items():
        rows.append([f"{wd:g}", arch] + [_effect(_paired(c["runs"], k, f"{k}_untrained")) for k in keys])
    out = [
        "Learned effect, trained − same-seed untrained net (mean over seeds, its size in seed std):",
        "",
        md_table(["λ", "net"] + [k.upper() if k != "energy_ratio" else "energy ratio" for k in keys], rows),
    ]
    by_seed = {}
    for (arch, _), c in s["cells"].items():
        for r in c["runs"]:
            by_seed.setdefault((arch, r["config"]["seed"]), r["values"])  # the untrained net does not depend on λ
    seeds = sorted({sd for a, sd in by_seed if a == "resnet"} & {sd for a, sd in by_seed if a == "plain"})
    if seeds:
        cells = []
        for k in keys:
            d = [
                by_seed[("resnet", sd)][f"{k}_untrained"] - by_seed[("plain", sd)][f"{k}_untrained"]
                for sd in seeds
                if by_seed[("resnet", sd)].get(f"{k}_untrained") is not None
                and by_seed[("plain", sd)].get(f"{k}_untrained") is not None
            ]
            cells.append(_effect(seed_stats(d)))
        out += [
            "",
            "Structural effect, ResNet − plain at initialisation (same seeds, untrained, BatchNorm re-estimated):",
            "",
            md_table([k.upper() if k != "energy_ratio" else "energy ratio" for k in keys], [cells]),
        ]
    return "\n".join(out)


def segments_table(s: dict) -> str:
    """Segment-length proportions (Tables 2-3) of trained and untrained nets, beside the paper's."""
    rows = []
    same = s["fields"]["dataset"] == pv.SEGMENTS["dataset"] and s["fields"]["k"] == pv.SEGMENTS["k"]
    for (arch, wd), c in s["cells"].items():
        if c["segments"] is None:
            continue
        rows.append([f"{wd:g}", arch, "trained", " ".join(f"{v:.3f}" for v in c["segments"])])
        if c["segments_untrained"] is not None:
            rows.append(["", "", "untrained", " ".join(f"{v:.3f}" for v in c["segments_untrained"])])
        ref = pv.SEGMENTS[arch].get(wd) if same else None
        if ref is not None and len(ref) == len(c["segments"]):
            rows.append(["", "", "paper", " ".join(f"{v:.3f}" for v in ref)])
    if not rows:
        return ""
    where = "Tables 2 (plain) / 3 (ResNet)" if same else "the paper gives these for CIFAR-100 K=1 only (Tables 2-3)"
    return "\n".join(
        [
            f"Segment-length proportions, segments 1…L, stage 1 (mean over samples and seeds; {where}):",
            "",
            md_table(["λ", "net", "", "proportions"], rows),
        ]
    )


def runtime_table(runs: list[dict]) -> str:
    """Per run: wall time of its sweep task, training time, throughput and the probe's overhead."""
    rows = []
    for r in sorted(runs, key=lambda r: r["name"]):
        m, v = r["metrics"], r["values"]
        timing = m.get("timing") or {}
        rows.append(
            [
                r["name"].split("/")[-1],
                "–" if v.get("wall_s") is None else f"{v['wall_s']:.0f}",
                f"{m.get('train_s', float('nan')):.0f}",
                f"{m.get('img_per_s', float('nan')):.0f}",
                f"{100 * m.get('probe_s', 0) / m['train_s']:.1f}" if m.get("train_s") else "–",
                f"{sum(timing.values()):.0f}",
                r["values"]["convergence"],
            ]
        )
    header = ["run", "wall s (last attempt)", "train s", "img/s", "probe % of train", "measure s", "convergence"]
    return md_table(header, rows) if rows else "No completed runs."


def head_check(runs: list[dict]) -> str:
    """Does the head move the plain net's length to the last segment? Same dataset, λ and seed."""
    by = {}
    for r in runs:
        c = r["config"]
        if c["arch"] == "plain":
            by.setdefault((c["dataset"], c["profile"], float(c["wd"]), c["seed"]), {})[c.get("head", "bn-relu")] = r
    rows = []
    for (ds, prof, wd, seed), d in sorted(by.items()):
        if "linear" in d and "bn-relu" in d:
            share = [100 * d[h]["values"]["last_share"] for h in ("linear", "bn-relu")]
            first = [100 * d[h]["metrics"]["stages"][0]["segment_proportions"][0] for h in ("linear", "bn-relu")]
            rows.append(
                [ds, prof, f"{wd:g}", seed, f"{share[0]:.1f}", f"{share[1]:.1f}", f"{first[0]:.1f}", f"{first[1]:.1f}"]
            )
    if not rows:
        return "No plain run pair that differs only in the head yet."
    moved = sum(float(r[4]) > float(r[5]) for r in rows)
    header = [
        "data",
        "profile",
        "λ",
        "seed",
        "last % (linear)",
        "last % (bn-relu)",
        "first % (linear)",
        "first % (bn-relu)",
    ]
    return "\n".join(
        [
            md_table(header, rows),
            "",
            f"The pool → linear head gives the plain net's last segment a larger share than σ(BN) → pool → linear "
            f"in {moved} of {len(rows)} same-seed pairs.",
        ]
    )


def problems_table(problems: list[dict]) -> str:
    if not problems:
        return "None."
    return md_table(
        ["run", "status", "detail"], [[p["name"], p["status"], p["detail"].replace("|", "/")] for p in problems]
    )


def mean_or_none(vals):
    vals = [v for v in vals if v is not None]
    return float(np.mean(vals)) if vals else None
