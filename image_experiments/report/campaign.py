"""Where the convergence campaign stands: per grid, the runs committed, converged and missing, and
the CPU time the missing ones will take, from the measured cost of the committed runs like them.

The cost of a run is what its ``metrics.json`` records (training, per-epoch probe and the final
measurements), so it does not depend on a sweep manifest; a missing run is estimated from the
committed runs most like it (:func:`_estimate`).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

__all__ = ["CAMPAIGN", "campaign_rows", "campaign_table", "rerun_rows", "rerun_table", "rule_table"]

# issue 11's grids at the end of training, in the order the background campaign runs them
CAMPAIGN = ("table4-converged-long", "table4-converged-long-seeds", "mnist-converged", "mnist-width-converged")


def _cost(metrics: dict) -> float:
    timing = metrics.get("timing") or {}
    return float(metrics.get("train_s", 0.0) + metrics.get("probe_s", 0.0) + sum(timing.values()))


def _parts(r: dict) -> tuple[float, float]:
    """(training + probe seconds per epoch, final-measurement seconds) of a committed run."""
    m = r["metrics"]
    epochs = max(1, int(r["config"].get("epochs") or 1))
    return (m.get("train_s", 0.0) + m.get("probe_s", 0.0)) / epochs, float(sum((m.get("timing") or {}).values()))


def _width(c: dict) -> int:
    """The first stage's width of a run's config: its override, else SPEC Table 1's."""
    from image_experiments.models import TABLE1

    if c.get("width") is not None:
        return int(c["width"])
    family = "mnist" if c["dataset"] == "mnist" else "cifar"
    return int(TABLE1[(family, int(c.get("k") or 1))]["dims"][0][0])


def _costs(runs: list[dict]) -> list[dict]:
    """Measured (per-epoch, measurement) seconds, keyed three ways from the closest to the loosest:
    (dataset, profile, arch, width), (dataset, profile, width), (dataset, width)."""
    keys = (
        lambda c: (c["dataset"], c["profile"], c["arch"], _width(c)),
        lambda c: (c["dataset"], c["profile"], _width(c)),
        lambda c: (c["dataset"], _width(c)),
    )
    tables = [defaultdict(list) for _ in keys]
    for r in runs:
        for key, table in zip(keys, tables):
            table[key(r["config"])].append(_parts(r))
    return [dict(keys=key, table=table) for key, table in zip(keys, tables)]


def _width_fit(c: dict, costs: list[dict]) -> tuple[float, float] | None:
    """(per-epoch, measurement) seconds at a width no committed run has, from a power law
    ``cost ∝ width^p`` fitted by least squares in log-log to the median costs of the committed runs
    of the same data set, profile and net at ≥ 2 other widths (each part fitted on its own)."""
    closest = costs[0]["table"]
    at = sorted(
        (key[3], np.median(np.array(got), axis=0))
        for key, got in closest.items()
        if key[:3] == (c["dataset"], c["profile"], c["arch"]) and got
    )
    if len({w for w, _ in at}) < 2:
        return None
    logw = np.log([w for w, _ in at])
    parts = []
    for j in range(2):
        y = np.array([m[j] for _, m in at])
        if np.any(y <= 0):
            return None
        slope, icept = np.polyfit(logw, np.log(y), 1)
        parts.append(float(np.exp(icept + slope * np.log(c["width"]))))
    return parts[0], parts[1]


def _estimate(task, costs: list[dict]) -> tuple[float, bool] | None:
    """(seconds, extrapolated) of a missing run: median per-epoch cost × its epochs + median
    measurement time, from the closest group of committed runs (the loosest, another profile, only
    scales by epochs); at a width no run has, the power law of :func:`_width_fit` (extrapolated)."""
    from image_experiments.run import profile_config

    p = task.params
    cfg = profile_config(p["profile"], p["dataset"], p["arch"], p["k"], wd=p["wd"], seed=p["seed"], **p["overrides"])
    c = {"dataset": cfg.dataset, "profile": cfg.profile, "arch": cfg.arch, "k": cfg.k, "width": cfg.width}
    c["width"] = _width(c)
    for level in costs:
        got = level["table"].get(level["keys"](c))
        if got:
            per_epoch, measure = np.median(np.array(got), axis=0)
            return float(per_epoch * cfg.epochs + measure), False
    fit = _width_fit(c, costs)
    if fit is None:
        return None
    return float(fit[0] * cfg.epochs + fit[1]), True


def campaign_rows(runs: list[dict], grids=CAMPAIGN) -> list[dict]:
    """Per grid: tasks, committed, converged, still rising, missing, and the missing runs' CPU hours."""
    from image_experiments.sweep import GRIDS

    by_name = {Path(r["name"]).name: r for r in runs}
    costs = _costs(runs)
    rows = []
    for g in grids:
        tasks = GRIDS[g].tasks()
        done = [by_name[t.name] for t in tasks if t.name in by_name]
        missing = [t for t in tasks if t.name not in by_name]
        got = [_estimate(t, costs) for t in missing]
        est = [None if g is None else g[0] for g in got]
        rows.append(
            {
                "grid": g,
                "profile": GRIDS[g].profile,
                "tasks": len(tasks),
                "done": len(done),
                "converged": sum(r["values"].get("converged") is True for r in done),
                "rising": sum(bool(r["values"].get("still_rising")) for r in done),
                "missing": len(missing),
                "hours": None if any(e is None for e in est) else sum(est) / 3600,
                "known_hours": sum(e for e in est if e is not None) / 3600,
                "unknown": sum(e is None for e in est),
                "extrapolated": sum(g is not None and g[1] for g in got),
                "done_hours": sum(_cost(r["metrics"]) for r in done) / 3600,
            }
        )
    return rows


def campaign_table(runs: list[dict]) -> str:
    """The Markdown table of :func:`campaign_rows`, with the command that finishes each grid."""
    from image_experiments.report.tables import md_table

    rows = []
    for r in campaign_rows(runs):
        if r["hours"] is not None:
            left = f"{r['hours']:.1f}"
            if r["extrapolated"]:
                left += f" ({r['extrapolated']} run(s) extrapolated by width)"
        else:
            left = f"≥ {r['known_hours']:.1f} (+ {r['unknown']} run(s) of a kind not yet measured)"
        rows.append(
            [
                f"`{r['grid']}`",
                r["profile"],
                r["tasks"],
                r["done"],
                r["converged"],
                r["rising"],
                r["missing"],
                f"{r['done_hours']:.1f}",
                left if r["missing"] else "0",
            ]
        )
    head = ["grid", "profile", "runs", "committed", "converged", "still rising", "missing", "CPU h spent", "CPU h left"]
    cmd = (
        "python -m image_experiments.sweep GRID --out runs/images --results results/images --no-download "
        "--resume --cpus-per-task 2"
    )
    note = (
        "CPU hours: training, per-epoch probe and final measurements as each run's `metrics.json` records "
        "them (two threads of this machine); a missing run is estimated from the median per-epoch and "
        "measurement times of the committed runs of its data set, profile, net and width (else of its data set "
        "and width at another profile, scaled by epochs; at a width no committed run has, a power law in the width "
        "fitted to the committed widths of the same data set, profile and net). "
        f"To finish a grid: `{cmd}` (skips what `results/images` holds)."
    )
    return md_table(head, rows) + "\n\n" + note


# what may differ between a pilot and the grid run that repeats it (names, places, the profile label)
_RERUN_FREE = ("profile", "name", "run_dir", "out_dir", "data_dir", "download", "progress", "threads", "kind")


def _twin_key(cfg: dict) -> str:
    import json

    return json.dumps({k: v for k, v in cfg.items() if k not in _RERUN_FREE}, sort_keys=True, default=str)


def rerun_rows(pilots_dir, runs: list[dict]) -> list[dict]:
    """Each pilot run under ``pilots_dir`` beside the committed run with the same hyper-parameters
    (a grid's rerun of it): their final numbers, and whether they are bit for bit the same."""
    from image_experiments.report.collect import collect

    pilots = collect(pilots_dir)["runs"] if Path(pilots_dir).is_dir() else []
    twins = {_twin_key(r["config"]): r for r in runs}
    rows = []
    for p in pilots:
        t = twins.get(_twin_key(p["config"]))
        same = None
        if t is not None:
            hp, ht = p["history"] or [], t["history"] or []
            same = p["metrics"].get("summary") == t["metrics"].get("summary") and [h.get("train_acc") for h in hp] == [
                h.get("train_acc") for h in ht
            ]
        rows.append({"pilot": p, "twin": t, "identical": same})
    return rows


def rerun_table(pilots_dir, runs: list[dict]) -> str:
    """The Markdown table of :func:`rerun_rows`."""
    from image_experiments.report.tables import md_table

    def nums(r):
        v = r["values"]
        return [
            f"{v['train_acc']:.2f} / {v['test_acc']:.2f}",
            f"{v['lss']:.4f} ({v['lss_untrained']:.2f} · {v['lss_shuffled']:.2f})",
            f"{v['ots']:.3f}",
            r["values"]["convergence"].split("; ", 2)[-1],
        ]

    out = []
    for row in rerun_rows(pilots_dir, runs):
        p, t = row["pilot"], row["twin"]
        verdict = {True: "bit for bit", False: "**differ**", None: "no rerun yet"}[row["identical"]]
        out.append([f"`{Path(p['name']).name}` (pilot)", *nums(p), verdict])
        if t is not None:
            out.append([f"`{Path(t['name']).name}` (grid)", *nums(t), verdict])
    if not out:
        return "No pilot runs."
    head = ["run", "train / test acc %", "LSS (untrained · shuffled)", "OTS", "trend", "same numbers"]
    note = (
        "A pilot and the grid run with the same hyper-parameters (only the profile's name differs): "
        "'bit for bit' when every epoch's training accuracy and every final summary number are equal."
    )
    return md_table(head, out) + "\n\n" + note


def _span_rule(history: list) -> bool | None:
    """The dropped rule: the last PLATEAU_EPOCHS epochs span ≤ PLATEAU_POINTS, lr ≤ LR_ANNEALED × initial."""
    from image_experiments.report.collect import LR_ANNEALED, PLATEAU_EPOCHS, PLATEAU_POINTS

    recs = [h for h in history or [] if h.get("epoch", 0) >= 1 and "train_acc" in h]
    if len(recs) < PLATEAU_EPOCHS:
        return None
    last = [100 * h["train_acc"] for h in recs[-PLATEAU_EPOCHS:]]
    lr0 = history[0].get("lr") or recs[0].get("lr")
    return max(last) - min(last) <= PLATEAU_POINTS and bool(lr0) and recs[-1]["lr"] / lr0 <= LR_ANNEALED


def rule_table(runs: list[dict]) -> str:
    """Per data set and profile: how the trend (the rule) and the dropped span rule classify the runs."""
    from image_experiments.report.collect import accuracy_trend, still_rising
    from image_experiments.report.tables import md_table

    groups = defaultdict(list)
    for r in runs:
        recs = [h for h in r["history"] or [] if h.get("epoch", 0) >= 1 and "train_acc" in h]
        if accuracy_trend(recs) is not None:
            groups[(r["config"]["dataset"], r["config"]["profile"])].append((r, recs))
    rows = []
    for (ds, prof), items in sorted(groups.items()):
        rising = [(r, recs) for r, recs in items if still_rising(recs)]
        flat = [(r, recs) for r, recs in items if not still_rising(recs)]
        slopes = [accuracy_trend(recs)[0] for _, recs in rising]
        rows.append(
            [
                ds,
                prof,
                len(items),
                f"{len(flat)} (span rule fails {sum(_span_rule(r['history']) is False for r, _ in flat)})",
                f"{len(rising)} (span rule passes {sum(_span_rule(r['history']) is True for r, _ in rising)})",
                f"{min(slopes):+.2f} to {max(slopes):+.2f}" if slopes else "–",
            ]
        )
    head = ["data", "profile", "runs", "flat", "still rising", "their trends, points/epoch"]
    return md_table(head, rows) if rows else "No run with 5 epochs or more."
