"""Report of a folder of runs against the paper: Tables 2-7 side by side, headline claims, figures.

Command::

    python -m image_experiments.report runs/images            # writes runs/images/report.md, report.csv,
                                                              # runs.csv and report_figures/*.png
    python -m image_experiments.report runs/images --out docs/report_mnist

Reads the run folders that ``image_experiments.run`` (or ``image_experiments.sweep``) wrote under
RUNS_DIR, at any depth, and the sweep manifests ``sweep-*.json`` there; never retrains. Toy run
folders of ``toy_experiments.gaussians`` found there get their own section.

* Runs are grouped into *settings*: the same dataset, K, profile and every other hyper-parameter but
  arch, λ and seed. Per setting, one table shaped like the paper's (Tables 4-7; MNIST has no paper
  table): per λ and net, mean ± std over seeds (population std) of train and test accuracy (%), OTS,
  LSR and LSS (K=4: the mean over the 4 stages, as in the paper), the paper's value in brackets
  ``[…]``, ``[lost]`` where the paper's number is lost (SPEC §8.6), ``[–]`` where the paper has no
  such cell. Segment-length proportions (Tables 2-3) for K=1 settings.
* Headline claims 1-7 of SPEC §7: for each, what our runs show and whether the claim's direction held
  (``HOLDS``: in every comparison; ``HOLDS MOSTLY``: in more than half; ``DOES NOT HOLD``; ``NOT
  MEASURED`` when no run holds the data). Computed from the runs, never written in.
* Pearson and Spearman correlations of LSS and OTS with train and test accuracy across all runs.
* Missing runs (tasks of a manifest without a result), failed, diverged and unfinished runs are listed.
* Figures from the saved runs: LSS per epoch (Fig. 4), metrics against λ (Figs. 6-7), robustness
  (Fig. 9), ablation (Fig. 8), projected tracks residual vs plain (Fig. 3), each where the data exist.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from image_experiments import paper_values as pv
from otflow.runs import atomic_write_bytes, write_text

__all__ = ["collect", "aggregate", "claims", "correlations", "make_report", "main"]

_NON_SEMANTIC = ("data_dir", "download", "out_dir", "run_dir", "progress", "threads", "device")
_PER_RUN = ("arch", "wd", "seed")
COLUMNS = (  # (key, title, format)
    ("train_acc", "train acc %", ".1f"),
    ("test_acc", "test acc %", ".1f"),
    ("ots", "OTS", ".3f"),
    ("lsr", "LSR", ".2f"),
    ("lss", "LSS", ".2f"),
)
EXTRA = ("energy_ratio", "ot_cost_gap", "ots_null_untrained", "ots_null_gaussian_linear", "lss_stage_std")


# ----------------------------------------------------------------------------------------------
# collecting runs


def _load(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _setting(cfg: dict) -> tuple[str, dict]:
    """The setting of a run (everything but arch, λ, seed and where things are): a key and its fields."""
    fields = {k: v for k, v in cfg.items() if k not in _NON_SEMANTIC + _PER_RUN}
    return json.dumps(fields, sort_keys=True), fields


def _setting_title(fields: dict) -> str:
    """``cifar10 K=1, profile cpu`` plus the fields that differ from the profile's defaults."""
    title = f"{fields['dataset']} K={fields['k']}, profile {fields['profile']}"
    try:
        from image_experiments.run import profile_config

        base = profile_config(fields["profile"], fields["dataset"], "resnet", fields["k"]).to_dict()
    except (ImportError, ValueError, TypeError):
        return title
    diff = [
        f"{k}={fields[k]}"
        for k in sorted(fields)
        if k in base and k not in _PER_RUN + _NON_SEMANTIC and base[k] != fields[k]
    ]
    return title + (f" ({', '.join(diff)})" if diff else "")


def _values(metrics: dict) -> dict:
    """The per-run numbers the tables use (accuracies in percent)."""
    s = metrics.get("summary") or {}
    out = {
        "train_acc": 100 * metrics["train"]["acc"] if metrics.get("train") else None,
        "test_acc": 100 * metrics["test"]["acc"] if metrics.get("test") else None,
        "ots": s.get("ots_mean"),
        "lsr": s.get("lsr_mean"),
        "lss": s.get("lss_mean"),
        "energy_ratio": s.get("energy_ratio_mean"),
        "ot_cost_gap": s.get("ot_cost_gap_mean"),
        "ots_null_untrained": s.get("ots_null_untrained_mean"),
        "ots_null_gaussian_linear": s.get("ots_null_gaussian_linear_mean"),
        "lss_stage_std": s.get("lss_std"),
    }
    return out


def collect(runs_dir) -> dict:
    """Every run folder under ``runs_dir``: completed image runs, toy studies, and what is missing or failed.

    Returns ``{"runs": [...], "toy": [...], "problems": [...], "manifests": [...]}``; a run is a dict
    with ``dir``, ``name``, ``config``, ``metrics``, ``values`` (see :func:`_values`), ``setting``.
    """
    root = Path(runs_dir)
    runs, toy, problems = [], [], []
    seen = set()
    for cfg_path in sorted(root.rglob("config.json")):
        rdir = cfg_path.parent
        if any(p.name.startswith(".") for p in rdir.relative_to(root).parents if p.name) or rdir in seen:
            continue
        cfg = _load(cfg_path)
        if not isinstance(cfg, dict):
            problems.append({"name": str(rdir.relative_to(root)), "status": "unreadable", "detail": "config.json"})
            continue
        seen.add(rdir)
        rel = str(rdir.relative_to(root))
        metrics = _load(rdir / "metrics.json")
        if "tasks" in cfg and "lambdas" in cfg:  # a toy_experiments.gaussians study
            if isinstance(metrics, list) and (rdir / "summary.json").exists():
                toy.append({"dir": rdir, "name": rel, "config": cfg, "records": metrics})
            else:
                problems.append({"name": rel, "status": "incomplete", "detail": "toy study without summary.json"})
            continue
        if "dataset" not in cfg or "arch" not in cfg:
            continue
        status = metrics.get("status") if isinstance(metrics, dict) else None
        if status != "completed":
            detail = ""
            if isinstance(metrics, dict):
                detail = (
                    metrics.get("message")
                    or metrics.get("error")
                    or (
                        f"{metrics.get('epochs_completed', 0)} epochs done"
                        if status in ("running", "interrupted")
                        else ""
                    )
                )
            problems.append({"name": rel, "status": status or "no metrics.json", "detail": detail})
            continue
        key, fields = _setting(cfg)
        runs.append(
            {
                "dir": rdir,
                "name": rel,
                "config": cfg,
                "metrics": metrics,
                "values": _values(metrics),
                "setting": key,
                "setting_fields": fields,
            }
        )
    manifests = []
    done = {r["name"] for r in runs} | {t["name"] for t in toy}
    listed = {p["name"] for p in problems}
    for mpath in sorted(root.glob("sweep-*.json")):
        doc = _load(mpath)
        if not isinstance(doc, dict) or not isinstance(doc.get("tasks"), dict):
            continue
        manifests.append({"path": mpath.name, "grid": (doc.get("grid") or {}).get("name"), "counts": doc.get("counts")})
        for name, e in doc["tasks"].items():
            if name in done or name in listed:
                continue
            err = (e.get("errors") or [{}])[-1].get("error", "")
            status = e.get("status", "?")
            problems.append(
                {
                    "name": name,
                    "status": "missing" if status == "pending" else status,
                    "detail": f"{mpath.name}: {e.get('attempts', 0)} attempt(s)" + (f"; {err}" if err else ""),
                }
            )
            listed.add(name)
    return {"runs": runs, "toy": toy, "problems": problems, "manifests": manifests}


# ----------------------------------------------------------------------------------------------
# aggregation


def _mean_std(vals):
    vals = [v for v in vals if v is not None and math.isfinite(v)]
    if not vals:
        return None
    return float(np.mean(vals)), float(np.std(vals)), len(vals)


def aggregate(runs: list[dict]) -> dict:
    """Settings → ``{"fields", "title", "cells": {(arch, λ): {"n", "seeds", metric: (mean, std, n)}}, "runs"}``."""
    out = {}
    for r in runs:
        s = out.setdefault(r["setting"], {"fields": r["setting_fields"], "runs": [], "cells": {}})
        s["runs"].append(r)
    for s in out.values():
        s["title"] = _setting_title(s["fields"])
        groups = defaultdict(list)
        for r in s["runs"]:
            groups[(r["config"]["arch"], float(r["config"]["wd"]))].append(r)
        for key, rs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0] != "plain")):
            cell = {"n": len(rs), "seeds": sorted(r["config"]["seed"] for r in rs)}
            for m in [c[0] for c in COLUMNS] + list(EXTRA):
                cell[m] = _mean_std([r["values"][m] for r in rs])
            cell["segments"] = _mean_vec([r["metrics"]["stages"][0].get("segment_proportions") for r in rs])
            s["cells"][key] = cell
    return dict(sorted(out.items(), key=lambda kv: (kv[1]["fields"]["dataset"], kv[1]["fields"]["k"], kv[0])))


def _mean_vec(vecs):
    vecs = [v for v in vecs if v]
    if not vecs or len({len(v) for v in vecs}) != 1:
        return None
    return [float(x) for x in np.mean(np.asarray(vecs, dtype=float), axis=0)]


def _fmt(ms, fmt: str) -> str:
    if ms is None:
        return "–"
    mean, std, n = ms
    return f"{mean:{fmt}}" + (f" ± {std:{fmt}}" if n > 1 else "")


def _paper_cell(fields: dict, arch: str, wd: float, metric: str) -> str:
    v = pv.paper_value(fields["dataset"], fields["k"], arch, wd, metric)
    if v is None:
        return "[–]"
    return "[lost]" if v.lost else f"[{v.text}]"


def _md_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _setting_tables(s: dict) -> str:
    f = s["fields"]
    paper = pv.table_for(f["dataset"], f["k"])
    out = [f"### {s['title']}", ""]
    out.append(
        f"Paper: {pv.TABLES[paper]['title']} (values in brackets)."
        if paper
        else "The paper has no table for this setting ([–]); claim 4 below quotes its MNIST figure."
    )
    out.append("")
    rows = []
    for (arch, wd), cell in s["cells"].items():
        row = [f"{wd:g}", arch, f"{cell['n']} ({','.join(map(str, cell['seeds']))})"]
        for key, _, fmt in COLUMNS:
            row.append(f"{_fmt(cell[key], fmt)} {_paper_cell(f, arch, wd, key)}")
        rows.append(row)
    out.append(_md_table(["λ", "net", "seeds"] + [c[1] for c in COLUMNS], rows))
    if f["k"] == 4:
        out.append(
            '\nK=4 cells are the mean over the 4 stages (the paper\'s "(std)" is the std over stages; '
            "our ± is the std over seeds of that mean)."
        )
    nulls = [
        (arch, wd, c["ots_null_untrained"], c["ots_null_gaussian_linear"])
        for (arch, wd), c in s["cells"].items()
        if c["ots_null_untrained"] is not None
    ]
    if nulls:
        out.append(
            "\nOTS null baselines (SPEC §8.14): OTS of the untrained net / of a linear Gaussian OT map on the "
            "same endpoints: "
            + "; ".join(f"{a} λ={w:g}: {_fmt(u, '.3f')} / {_fmt(g, '.3f')}" for a, w, u, g in nulls)
            + "."
        )
    if f["k"] == 1:
        seg_rows = []
        for (arch, wd), cell in s["cells"].items():
            if cell["segments"] is None:
                continue
            seg_rows.append([f"{wd:g}", arch, "ours", " ".join(f"{v:.3f}" for v in cell["segments"])])
            ref = pv.SEGMENTS[arch].get(wd) if f["dataset"] == pv.SEGMENTS["dataset"] else None
            if ref is not None and len(ref) == len(cell["segments"]):
                seg_rows.append(["", "", "paper", " ".join(f"{v:.3f}" for v in ref)])
        if seg_rows:
            where = (
                "Tables 2 (plain) / 3 (ResNet)"
                if f["dataset"] == "cifar100"
                else "the paper gives these for CIFAR-100 only (Tables 2-3)"
            )
            out += [
                "",
                f"Segment-length proportions, segments 1…L (mean over samples and seeds; {where}):",
                "",
                _md_table(["λ", "net", "", "proportions"], seg_rows),
            ]
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------
# claims


def _word(wins: int, n: int) -> str:
    if n == 0:
        return "NOT MEASURED"
    return "HOLDS" if wins == n else ("HOLDS MOSTLY" if wins > n / 2 else "DOES NOT HOLD")


def _range(vals) -> str:
    vals = [v for v in vals if v is not None]
    return f"{min(vals):.3g}-{max(vals):.3g}" if vals else "–"


def _pairs_by_lambda(s: dict):
    """(λ, resnet cell, plain cell) for every λ where both nets have runs."""
    by = defaultdict(dict)
    for (arch, wd), c in s["cells"].items():
        by[wd][arch] = c
    return [(wd, d["resnet"], d["plain"]) for wd, d in sorted(by.items()) if "resnet" in d and "plain" in d]


def _m(cell, key):
    return None if cell[key] is None else cell[key][0]


def _compare(pairs, key, better) -> tuple[int, int, list, list]:
    ok = [(r, p) for _, r, p in pairs if _m(r, key) is not None and _m(p, key) is not None]
    wins = sum(bool(better(_m(r, key), _m(p, key))) for r, p in ok)
    return wins, len(ok), [_m(r, key) for r, _ in ok], [_m(p, key) for _, p in ok]


def _run_pairs(runs):
    """(resnet run, plain run) with the same setting, λ and seed."""
    by = defaultdict(dict)
    for r in runs:
        c = r["config"]
        by[(r["setting"], float(c["wd"]), c["seed"])][c["arch"]] = r
    return [(d["resnet"], d["plain"]) for _, d in sorted(by.items()) if "resnet" in d and "plain" in d]


def _claim1(settings):
    lines = []
    for s in settings.values():
        if s["fields"]["k"] != 4:
            continue
        pairs = _pairs_by_lambda(s)
        parts = []
        for key, name, better in (
            ("lss", "ResNet LSS < plain", lambda a, b: a < b),
            ("ots", "ResNet OTS > plain", lambda a, b: a > b),
            ("test_acc", "ResNet test acc > plain", lambda a, b: a > b),
        ):
            w, n, rv, pvv = _compare(pairs, key, better)
            parts.append((w, n, f"{name}: {_word(w, n)} ({w}/{n} λ; ResNet {_range(rv)} vs plain {_range(pvv)})"))
        w, n = sum(p[0] for p in parts), sum(p[1] for p in parts)
        lines.append((_word(w, n), f"{s['title']}: " + "; ".join(p[2] for p in parts)))
    return lines or [("NOT MEASURED", "no K=4 runs")]


CLAIM2_LSS_DROP = 0.2  # "drops LSS sharply": mean LSS at 5e-3-1e-2 at most 80 % of that at λ ≤ 1e-3
CLAIM2_ACC_JUMP = 10.0  # "training accuracy jumps": at least 10 percentage points higher


def _claim2(settings):
    lines = []
    for s in settings.values():
        f = s["fields"]
        if f["k"] != 1 or f["dataset"] == "mnist":
            continue
        parts, tw, tn = [], 0, 0
        for arch in ("plain", "resnet"):
            cells = {wd: c for (a, wd), c in s["cells"].items() if a == arch}
            low = [c for wd, c in cells.items() if wd <= 1e-3]
            mid = [c for wd, c in cells.items() if 5e-3 <= wd <= 1e-2]
            high = [c for wd, c in cells.items() if wd >= 5e-2]
            if not low or not mid:
                parts.append(f"{arch}: needs runs at λ ≤ 1e-3 and at 5e-3-1e-2")
                continue

            def mean(cs, key):
                vals = [_m(c, key) for c in cs if _m(c, key) is not None]
                return float(np.mean(vals)) if vals else None

            ll, lm = mean(low, "lss"), mean(mid, "lss")
            al, am = mean(low, "train_acc"), mean(mid, "train_acc")
            # "drops sharply" and "jumps": the paper's drops are 25-70 % and its jumps 18-45 points, so
            # a drop of a few per cent or a rise of a few points does not count as the claimed effect
            checks = [
                ll is not None and lm is not None and lm <= (1 - CLAIM2_LSS_DROP) * ll,
                al is not None and am is not None and am >= al + CLAIM2_ACC_JUMP,
            ]
            txt = (
                f"{arch}: LSS {ll:.3g} (λ ≤ 1e-3) → {lm:.3g} (5e-3-1e-2; {100 * (lm / ll - 1):+.0f} %), "
                f"train acc {al:.1f} → {am:.1f} % ({am - al:+.1f} points)"
            )
            if high:
                ah = mean(high, "train_acc")
                checks.append(ah is not None and ah < am)
                txt += f", then {ah:.1f} % at λ ≥ 5e-2"
            tw += sum(checks)
            tn += len(checks)
            parts.append(txt + f" ({sum(checks)}/{len(checks)} as in the paper)")
        rule = (
            f"counted as in the paper: an LSS drop of at least {100 * CLAIM2_LSS_DROP:.0f} %, a train-accuracy "
            f"rise of at least {CLAIM2_ACC_JUMP:g} points, and lower train accuracy at λ ≥ 5e-2"
        )
        lines.append((_word(tw, tn), f"{s['title']}: " + "; ".join(parts) + (f" ({rule})" if tn else "")))
    return lines or [("NOT MEASURED", "no CIFAR K=1 runs")]


def _claim3(settings):
    lines = []
    for s in settings.values():
        f = s["fields"]
        if f["k"] != 1 or f["dataset"] != "cifar100":
            continue
        cells = [(wd, c) for (a, wd), c in s["cells"].items() if a == "plain" and 5e-3 <= wd <= 0.1 and c["segments"]]
        if not cells:
            continue
        shares = [c["segments"][-1] for _, c in cells]
        longest = sum(c["segments"][-1] == max(c["segments"]) for _, c in cells)
        below = sum(
            _m(c, "lsr") is not None and _m(c, "lss") is not None and _m(c, "lsr") < _m(c, "lss") for _, c in cells
        )
        n = len(cells)
        lines.append(
            (
                _word(longest + below, 2 * n),
                f"{s['title']}: plain last-segment share {_range(shares)} over {n} λ; the last segment is the "
                f"longest at {longest}/{n} λ; plain LSR < LSS at {below}/{n} λ",
            )
        )
    return lines or [("NOT MEASURED", "no CIFAR-100 K=1 plain runs with 5e-3 ≤ λ ≤ 0.1")]


def _claim4(settings):
    lines = []
    for s in settings.values():
        if s["fields"]["dataset"] != "mnist":
            continue
        pairs = _pairs_by_lambda(s)
        w1, n1, rl, pl = _compare(pairs, "lss", lambda a, b: a < b)
        w2, n2, ro, po = _compare(pairs, "ots", lambda a, b: a >= b)
        res = [r for r in s["runs"] if r["config"]["arch"] == "resnet"]
        straight = [_lss_first_last(r) for r in res]
        straight = [x for x in straight if x is not None]
        w3 = sum(last < first for first, last in straight)
        lines.append(
            (
                _word(w1 + w2 + w3, n1 + n2 + len(straight)),
                f"{s['title']}: ResNet LSS {_range(rl)} (paper ≈ 1.12) vs plain {_range(pl)}, lower at "
                f"{w1}/{n1} λ; ResNet OTS {_range(ro)} (paper ≈ 0.96) vs plain {_range(po)}, not lower at "
                f"{w2}/{n2} λ; ResNet probe LSS fell from epoch 1 to the last epoch in "
                f"{w3}/{len(straight)} runs",
            )
        )
    return lines or [("NOT MEASURED", "no MNIST runs")]


def _lss_first_last(run):
    hist = _load(run["dir"] / "history.json")
    if not isinstance(hist, list):
        return None
    vals = [
        (h["epoch"], np.mean([s["lss"] for s in h["probe_stages"]]))
        for h in hist
        if h.get("epoch", 0) >= 1 and h.get("probe_stages") and all(s.get("lss") is not None for s in h["probe_stages"])
    ]
    if len(vals) < 2:
        return None
    return float(vals[0][1]), float(vals[-1][1])


def _claim5(runs):
    pairs = [(r, p) for r, p in _run_pairs(runs) if r["metrics"].get("robustness") and p["metrics"].get("robustness")]
    if not pairs:
        return [("NOT MEASURED", "no residual/plain pair with robustness data")]
    lines = []
    for kind in ("noise", "fgsm"):
        dr = [_drop(r["metrics"]["robustness"][f"{kind}_acc"]) for r, _ in pairs]
        dp = [_drop(p["metrics"]["robustness"][f"{kind}_acc"]) for _, p in pairs]
        w = sum(a < b for a, b in zip(dr, dp))
        lines.append(
            (
                _word(w, len(pairs)),
                f"{kind}: accuracy drop from ε=0 to the largest ε is smaller for the ResNet in {w}/{len(pairs)} "
                f"same-seed pairs (mean drop ResNet {100 * np.mean(dr):.1f} vs plain {100 * np.mean(dp):.1f} "
                f"points; ε up to {max(pairs[0][0]['metrics']['robustness']['eps']):g})",
            )
        )
        vr = [np.mean(r["metrics"]["robustness"][f"{kind}_variation"][-1]) for r, _ in pairs]
        vp = [np.mean(p["metrics"]["robustness"][f"{kind}_variation"][-1]) for _, p in pairs]
        w = sum(a < b for a, b in zip(vr, vp))
        lines.append(
            (
                _word(w, len(pairs)),
                f"{kind}: mean variation rate over layers at the largest ε is lower for the ResNet in "
                f"{w}/{len(pairs)} pairs (ResNet {np.mean(vr):.3g} vs plain {np.mean(vp):.3g})",
            )
        )
    where = sorted({f"{r['setting_fields']['dataset']} K={r['setting_fields']['k']}" for r, _ in pairs})
    lines.append(("", f"pairs from {', '.join(where)} at every λ run (the paper: CIFAR-100 K=1, one λ)"))
    return lines


def _drop(acc) -> float:
    return float(acc[0] - acc[-1])


def _claim6(runs):
    pairs = [(r, p) for r, p in _run_pairs(runs) if r["metrics"].get("ablation") and p["metrics"].get("ablation")]
    if not pairs:
        return [("NOT MEASURED", "no residual/plain pair with ablation data")]
    dr = [float(np.mean([row[0] - row[-1] for row in r["metrics"]["ablation"]["acc"]])) for r, _ in pairs]
    dp = [float(np.mean([row[0] - row[-1] for row in p["metrics"]["ablation"]["acc"]])) for _, p in pairs]
    w = sum(a < b for a, b in zip(dr, dp))
    frac = pairs[0][0]["metrics"]["ablation"]["fracs"][-1]
    return [
        (
            _word(w, len(pairs)),
            f"accuracy drop (mean over blocks) when the top {100 * frac:g} % of units are replaced is smaller for "
            "the ResNet "
            f"in {w}/{len(pairs)} same-seed pairs (ResNet {100 * np.mean(dr):.1f} vs plain {100 * np.mean(dp):.1f} "
            "points)",
        )
    ]


def _claim7(runs, settings):
    fl = [(r["config"]["arch"], _lss_first_last(r)) for r in runs]
    fl = [(a, x) for a, x in fl if x is not None]
    lines = []
    if fl:
        w = sum(last < first for _, (first, last) in fl)
        by = {
            a: f"{sum(l < f for b, (f, l) in fl if b == a)}/{sum(b == a for b, _ in fl)}" for a in ("resnet", "plain")
        }
        lines.append(
            (
                _word(w, len(fl)),
                f"probe LSS lower at the last epoch than at epoch 1 in {w}/{len(fl)} runs "
                f"(ResNet {by['resnet']}, plain {by['plain']})",
            )
        )
    else:
        lines.append(("NOT MEASURED", "no run with at least 2 training epochs of probe LSS"))
    widths = defaultdict(dict)
    for r in runs:
        c = r["config"]
        if c.get("width") is None:
            continue
        key = json.dumps({k: v for k, v in r["setting_fields"].items() if k != "width"}, sort_keys=True)
        widths[(key, c["arch"], float(c["wd"]))].setdefault(c["width"], []).append(r["values"]["lss"])
    series = [sorted((w, np.mean(v)) for w, v in d.items()) for d in widths.values() if len(d) >= 2]
    if series:
        steps = [(a[1], b[1]) for s in series for a, b in zip(s, s[1:])]
        w = sum(b < a for a, b in steps)
        lines.append((_word(w, len(steps)), f"LSS lower at the larger width in {w}/{len(steps)} width steps"))
    else:
        lines.append(("NOT MEASURED", "width part (Fig. 5): no runs that differ only in width"))
    return lines


def claims(collected: dict, settings: dict) -> list[tuple[int, list[tuple[str, str]]]]:
    """For each claim of SPEC §7: a list of (verdict, measured text)."""
    runs = collected["runs"]
    return [
        (1, _claim1(settings)),
        (2, _claim2(settings)),
        (3, _claim3(settings)),
        (4, _claim4(settings)),
        (5, _claim5(runs)),
        (6, _claim6(runs)),
        (7, _claim7(runs, settings)),
    ]


# ----------------------------------------------------------------------------------------------
# correlations


def correlations(runs: list[dict]) -> list[dict]:
    """Pearson r and Spearman ρ of LSS and OTS with train and test accuracy: over all runs and per net,
    then within each setting (data set, K, profile) of more than one λ, where accuracies are comparable.
    Rows carry ``group`` ("all", "resnet", "plain", or "<setting>: all|resnet|plain")."""
    from scipy import stats

    groups = [(g, None, None if g == "all" else g) for g in ("all", "resnet", "plain")]
    by_setting = defaultdict(list)
    for r in runs:
        by_setting[r["setting"]].append(r)
    if len(by_setting) > 1:
        for setting, rs in sorted(by_setting.items()):
            if len({float(r["config"]["wd"]) for r in rs}) > 1:
                title = _setting_title(rs[0]["setting_fields"])
                groups += [(f"{title}: {g}", setting, None if g == "all" else g) for g in ("all", "resnet", "plain")]
    out = []
    for group, setting, arch in groups:
        rs = [
            r
            for r in runs
            if (setting is None or r["setting"] == setting) and (arch is None or r["config"]["arch"] == arch)
        ]
        for x in ("lss", "ots"):
            for y in ("train_acc", "test_acc"):
                pts = [
                    (r["values"][x], r["values"][y])
                    for r in rs
                    if r["values"][x] is not None and r["values"][y] is not None
                ]
                row = {"group": group, "x": x, "y": y, "n": len(pts), "pearson": None, "spearman": None}
                if len(pts) >= 3:
                    a, b = np.asarray(pts, dtype=float).T
                    if np.ptp(a) > 0 and np.ptp(b) > 0:
                        row["pearson"] = float(stats.pearsonr(a, b)[0])
                        row["spearman"] = float(stats.spearmanr(a, b)[0])
                out.append(row)
    return out


# ----------------------------------------------------------------------------------------------
# figures


def _slug(s: dict) -> str:
    f = s["fields"]
    import hashlib

    suffix = "" if s["title"].endswith(f["profile"]) else "_" + hashlib.sha1(s["title"].encode()).hexdigest()[:8]
    return f"{f['dataset']}_k{f['k']}_{f['profile']}{suffix}"


def _pick_lambda(s: dict, want: float = 5e-2) -> float | None:
    """The λ with both nets run closest (in log scale) to ``want`` (SPEC §5's robustness λ)."""
    lams = [wd for wd, _, _ in _pairs_by_lambda(s)]
    if not lams:
        return None
    return min(lams, key=lambda w: abs(math.log10(w + 1e-5) - math.log10(want)))


def _figures(settings: dict, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker as mticker

    fig_dir = out_dir / "report_figures"
    paths = []

    def save(fig, name):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        paths.append(atomic_write_bytes(fig_dir / name, buf.getvalue()))

    colors = {"resnet": "tab:blue", "plain": "tab:red"}
    for s in settings.values():
        slug = _slug(s)
        # Fig. 4: probe LSS per epoch, mean over seeds and stages
        curves = defaultdict(list)
        for r in s["runs"]:
            hist = _load(r["dir"] / "history.json")
            if isinstance(hist, list):
                pts = [
                    (h["epoch"], np.mean([st["lss"] for st in h["probe_stages"]]))
                    for h in hist
                    if h.get("probe_stages") and all(st.get("lss") is not None for st in h["probe_stages"])
                ]
                if pts:
                    curves[(r["config"]["arch"], float(r["config"]["wd"]))].append(pts)
        if curves:
            fig, ax = plt.subplots(figsize=(6, 4))
            wds = sorted({wd for _, wd in curves})
            cmap = plt.get_cmap("viridis", max(len(wds), 2))
            for (arch, wd), runs in sorted(curves.items()):
                ep = [e for e, _ in runs[0]]
                vals = np.mean([[v for _, v in pts] for pts in runs if len(pts) == len(ep)], axis=0)
                ax.plot(
                    ep, vals, "-" if arch == "resnet" else "--", color=cmap(wds.index(wd)), label=f"{arch} λ={wd:g}"
                )
            ax.set(
                xlabel="epoch (0 = untrained)",
                ylabel="probe LSS (mean over stages)",
                yscale="log",
                title=f"LSS during training: {s['title']}",
            )
            ax.yaxis.set_major_formatter(mticker.FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(mticker.FormatStrFormatter("%g"))
            ax.legend(fontsize=6, ncol=2)
            save(fig, f"{slug}_lss_vs_epoch.png")
        # Figs. 6-7: metrics against λ
        if len({wd for _, wd in s["cells"]}) >= 2:
            fig, axes = plt.subplots(1, 5, figsize=(17, 3.2))
            for ax, (key, title, _) in zip(axes, COLUMNS):
                for arch in ("resnet", "plain"):
                    pts = [(wd, c[key]) for (a, wd), c in s["cells"].items() if a == arch and c[key] is not None]
                    if pts:
                        x = [wd for wd, _ in pts]
                        ax.errorbar(
                            x,
                            [m[0] for _, m in pts],
                            yerr=[m[1] for _, m in pts],
                            marker="o",
                            ms=3,
                            color=colors[arch],
                            label=f"{arch} (ours)",
                            capsize=2,
                        )
                    ref = [
                        (wd, pv.paper_value(s["fields"]["dataset"], s["fields"]["k"], arch, wd, key))
                        for wd in sorted({w for _, w in s["cells"]})
                    ]
                    ref = [(wd, v.value) for wd, v in ref if v is not None and not v.lost]
                    if ref:
                        ax.plot(
                            [w for w, _ in ref],
                            [v for _, v in ref],
                            "x:",
                            color=colors[arch],
                            alpha=0.6,
                            label=f"{arch} (paper)",
                        )
                ax.set_xscale("symlog", linthresh=1e-4)
                ax.set(xlabel="λ", title=title)
            axes[0].legend(fontsize=6)
            fig.suptitle(f"Metrics against λ: {s['title']}", fontsize=9, y=1.02)
            save(fig, f"{slug}_metrics_vs_lambda.png")
        lam = _pick_lambda(s)
        if lam is None:
            continue
        chosen = {}
        for r in sorted(s["runs"], key=lambda r: r["config"]["seed"]):
            if float(r["config"]["wd"]) == lam:
                chosen.setdefault(r["config"]["arch"], r)
        # Fig. 9: robustness and variation rates
        rob = {a: r["metrics"]["robustness"] for a, r in chosen.items() if r["metrics"].get("robustness")}
        if rob:
            fig, axes = plt.subplots(1, 4, figsize=(16, 3.2))
            for arch, d in rob.items():
                for j, kind in enumerate(("noise", "fgsm")):
                    axes[j].plot(
                        d["eps"], np.asarray(d[f"{kind}_acc"]) * 100, "o-", ms=3, color=colors[arch], label=arch
                    )
                    axes[j].set(xlabel="ε", ylabel="test acc %", title=f"{kind} (λ={lam:g})")
                    axes[2 + j].plot(d[f"{kind}_variation"][-1], "o-", ms=3, color=colors[arch], label=arch)
                    axes[2 + j].set(
                        xlabel="track point (layer)",
                        ylabel="variation rate",
                        title=f"{kind} variation rate, ε={d['eps'][-1]:g}",
                    )
            axes[0].legend(fontsize=7)
            seed = min(r["config"]["seed"] for r in chosen.values())
            fig.suptitle(f"Robustness (Fig. 9 style): {s['title']}, seed {seed}", fontsize=9, y=1.02)
            save(fig, f"{slug}_robustness.png")
        # Fig. 8: ablation
        abl = {a: r["metrics"]["ablation"] for a, r in chosen.items() if r["metrics"].get("ablation")}
        if abl:
            fig, ax = plt.subplots(figsize=(5.5, 3.6))
            for arch, d in abl.items():
                acc = np.asarray(d["acc"]) * 100
                for row in acc:
                    ax.plot(d["fracs"], row, color=colors[arch], alpha=0.25, lw=0.8)
                ax.plot(d["fracs"], acc.mean(0), "o-", color=colors[arch], label=f"{arch} (mean over blocks)")
            ax.set(
                xlabel="fraction of important units replaced",
                ylabel="test acc %",
                title=f"Unit ablation (Fig. 8 style), λ={lam:g}",
            )
            ax.legend(fontsize=7)
            save(fig, f"{slug}_ablation.png")
        # Fig. 3: projected tracks, residual vs plain
        proj = {}
        for arch, r in chosen.items():
            try:
                with np.load(r["dir"] / "arrays.npz") as z:
                    if "stage1_projection" in z:
                        proj[arch] = (z["stage1_projection"], z["projection_labels"])
            except (OSError, ValueError):
                continue
        if proj:
            fig, axes = plt.subplots(1, len(proj), figsize=(5 * len(proj), 4.5), squeeze=False)
            cm = plt.get_cmap("tab10")
            for ax, (arch, (p, lab)) in zip(axes[0], sorted(proj.items())):
                for i in range(len(p)):
                    ax.plot(p[i, :, 0], p[i, :, 1], "-", color=cm(int(lab[i]) % 10), lw=0.8, alpha=0.8)
                    ax.plot(p[i, -1, 0], p[i, -1, 1], ".", color=cm(int(lab[i]) % 10), ms=4)
                ax.set_title(f"{arch}, λ={lam:g}: stage-1 tracks", fontsize=10)
            fig.suptitle(f"{s['title']}: random 2-D projection (Fig. 3 style), colour = class, dot = end", fontsize=10)
            save(fig, f"{slug}_tracks.png")
    return paths


# ----------------------------------------------------------------------------------------------
# the report


def _csv_rows(settings: dict) -> list[dict]:
    rows = []
    for s in settings.values():
        f = s["fields"]
        for (arch, wd), c in s["cells"].items():
            row = {
                "setting": s["title"],
                "dataset": f["dataset"],
                "k": f["k"],
                "profile": f["profile"],
                "arch": arch,
                "wd": wd,
                "n_seeds": c["n"],
                "seeds": " ".join(map(str, c["seeds"])),
            }
            for key in [k for k, _, _ in COLUMNS] + list(EXTRA):
                ms = c[key]
                row[f"{key}_mean"] = None if ms is None else ms[0]
                row[f"{key}_std"] = None if ms is None else ms[1]
                if key in pv.METRICS:
                    p = pv.paper_value(f["dataset"], f["k"], arch, wd, key)
                    row[f"{key}_paper"] = "" if p is None else ("lost" if p.lost else p.value)
            rows.append(row)
    return rows


def _write_csv(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    if rows:
        keys = list(dict.fromkeys(k for r in rows for k in r))
        w = csv.DictWriter(buf, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    write_text(path, buf.getvalue())


def _toy_section(toy: list[dict]) -> str:
    if not toy:
        return ""
    from toy_experiments.summary import format_table, summarise, verdicts

    records = [r for t in toy for r in t["records"]]
    fit_rules = toy[0]["config"].get("fit_rules", {})
    out = [
        "## 2-D toy study (toy_experiments.gaussians)",
        "",
        f"{len(toy)} toy run folder(s), {len(records)} trained nets. Mean ± std over seeds:",
        "",
        "```",
        format_table(summarise(records), fit_rules).strip("\n"),
        "```",
        "",
        "Verdicts (same-seed pairs where both nets fit):",
        "",
    ]
    out += [f"- {line}" for line in verdicts([r for r in records if r.get("kind", "grid") == "grid"])]
    return "\n".join(out)


def make_report(runs_dir, out_dir=None, *, figures: bool = True) -> Path:
    """Write ``report.md``, ``report.csv`` (one row per setting, net and λ), ``runs.csv`` (one row per run)
    and ``report_figures/`` into ``out_dir`` (default ``runs_dir``); returns the path of report.md."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise ValueError(f"RUNS_DIR: {runs_dir} is not a folder")
    out_dir = Path(out_dir) if out_dir is not None else runs_dir
    col = collect(runs_dir)
    settings = aggregate(col["runs"])
    md = [
        f"# Report: {runs_dir}",
        "",
        f"{len(col['runs'])} completed image run(s) in {len(settings)} setting(s); {len(col['toy'])} toy study "
        f"folder(s); {len(col['problems'])} missing, failed or unfinished run(s) (listed at the end). Paper values "
        "from SPEC §7 in brackets: `[lost]` = the paper's number is lost, `[–]` = no such cell in the paper. "
        "Ours: mean ± std (population) over seeds; accuracies in %.",
        "",
    ]
    if col["manifests"]:
        md += ["Sweeps: " + "; ".join(f"`{m['path']}` (grid {m['grid']}: {m['counts']})" for m in col["manifests"]), ""]
    if settings:
        md += ["## Tables", ""]
        for s in settings.values():
            md += [_setting_tables(s), ""]
    md += ["## Headline claims (SPEC §7)", ""]
    for num, lines in claims(col, settings):
        md.append(f"**Claim {num}.** {pv.CLAIMS[num]}")
        md.append("")
        for verdict, text in lines:
            md.append(f"- {'**' + verdict + '**: ' if verdict else ''}{text}")
        md.append("")
    corr = correlations(col["runs"])
    if any(c["n"] for c in corr):
        md += [
            "## Correlation of LSS and OTS with accuracy, across all runs and within each setting",
            "",
            _md_table(
                ["runs", "metric", "accuracy", "n", "Pearson r", "Spearman ρ"],
                [
                    [
                        c["group"],
                        c["x"].upper(),
                        c["y"].replace("_acc", ""),
                        c["n"],
                        "–" if c["pearson"] is None else f"{c['pearson']:+.2f}",
                        "–" if c["spearman"] is None else f"{c['spearman']:+.2f}",
                    ]
                    for c in corr
                ],
            ),
            "",
            "(– : fewer than 3 runs, or a constant variable.)",
            "",
        ]
    toy = _toy_section(col["toy"])
    if toy:
        md += [toy, ""]
    if figures and settings:
        paths = _figures(settings, out_dir)
        if paths:
            md += ["## Figures", ""] + [f"![{p.stem}](report_figures/{p.name})" for p in paths] + [""]
    md += ["## Missing, failed and unfinished runs", ""]
    if col["problems"]:
        md.append(
            _md_table(
                ["run", "status", "detail"],
                [[p["name"], p["status"], p["detail"].replace("|", "/")] for p in col["problems"]],
            )
        )
    else:
        md.append("None.")
    md.append("")
    write_text(out_dir / "report.md", "\n".join(md))
    _write_csv(out_dir / "report.csv", _csv_rows(settings))
    _write_csv(
        out_dir / "runs.csv",
        [
            {
                "run": r["name"],
                "dataset": r["config"]["dataset"],
                "k": r["config"]["k"],
                "arch": r["config"]["arch"],
                "wd": r["config"]["wd"],
                "seed": r["config"]["seed"],
                "profile": r["config"]["profile"],
                **r["values"],
            }
            for r in col["runs"]
        ],
    )
    return out_dir / "report.md"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m image_experiments.report",
        description="Tables against the paper, claims and figures from a folder of runs.",
    )
    p.add_argument("runs_dir", metavar="RUNS_DIR")
    p.add_argument("--out", default=None, help="where report.md, the CSVs and figures go (default RUNS_DIR)")
    p.add_argument("--no-figures", action="store_true")
    args = p.parse_args(argv)
    try:
        path = make_report(args.runs_dir, args.out, figures=not args.no_figures)
    except ValueError as err:
        p.error(str(err))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
