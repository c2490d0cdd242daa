"""Reading run folders: every completed image run with its per-run numbers, and what is missing.

A run folder is what :mod:`image_experiments.run` writes (or the small copy that
``image_experiments.sweep --results`` commits under ``results/images``): ``config.json``,
``metrics.json``, ``history.json`` and ``environment.json``. Nothing here needs the checkpoints or
``arrays.npz``. Runs are grouped into *settings*: the same dataset, K, profile, head and every other
hyper-parameter but arch, λ and seed.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from image_experiments.run import NON_SEMANTIC

__all__ = ["collect", "aggregate", "run_values", "converged", "accuracy_trend", "CONVERGENCE_RULE", "seed_stats"]

# where a run ran (device) does not change its setting, nor do the fields that never change numbers
_NON_SEMANTIC = (*NON_SEMANTIC, "device")
_PER_RUN = ("arch", "wd", "seed")
_METRICS = ("lss", "lsr", "ots", "ot_cost_gap", "energy_ratio")
PLATEAU_EPOCHS, PLATEAU_POINTS, LR_ANNEALED = 3, 0.5, 0.05
TREND_EPOCHS = 5
CONVERGENCE_RULE = (
    f"Converged: the last epoch's learning rate is at most {LR_ANNEALED:g} of the initial one and the running "
    f"training accuracy no longer rises: its least-squares trend over the last {TREND_EPOCHS} epochs is not "
    f"'still rising', i.e. not both beyond 2 standard errors of the binomial noise of an epoch's running "
    f"accuracy, √(p(1−p)/images), and steeper than {PLATEAU_POINTS} points over {PLATEAU_EPOCHS} epochs "
    f"(the trend and the span of the last {PLATEAU_EPOCHS} epochs are in the runtime table; claim 2 is not "
    f"decided on runs still rising)"
)


# grids whose missing runs will not be run, and why (the problems table says so instead of "missing")
SUPERSEDED = {
    "table4-converged": "superseded by table4-converged-long (at 40 epochs every λ ≥ 5e-3 run still rose)",
    "table4-converged-seeds": "superseded by table4-converged-long-seeds (at 40 epochs every λ ≥ 5e-3 run still rose)",
    "mnist-width": "superseded by mnist-width-converged (at 10 epochs every λ = 1e-2 run still rose)",
}


def _load(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _setting(cfg: dict) -> tuple[str, dict]:
    fields = {k: v for k, v in cfg.items() if k not in _NON_SEMANTIC + _PER_RUN}
    fields.setdefault("head", "bn-relu")  # runs made before the head option had the σ(BN) head
    return json.dumps(fields, sort_keys=True), fields


def setting_title(fields: dict) -> str:
    """``cifar10 K=1, profile cpu, head linear`` plus the fields that differ from the profile's defaults."""
    title = f"{fields['dataset']} K={fields['k']}, profile {fields['profile']}, head {fields.get('head')}"
    try:
        from image_experiments.run import profile_config

        base = profile_config(fields["profile"], fields["dataset"], "resnet", fields["k"]).to_dict()
    except (ImportError, ValueError, TypeError):
        return title
    skip = _PER_RUN + _NON_SEMANTIC + ("head",)
    diff = [f"{k}={fields[k]}" for k in sorted(fields) if k in base and k not in skip and base[k] != fields[k]]
    return title + (f" ({', '.join(diff)})" if diff else "")


def converged(history: list | None) -> tuple[bool | None, str]:
    """Whether a run ended on a plateau (:data:`CONVERGENCE_RULE`), and the numbers behind it.

    None (with the lr and span seen) where the history cannot tell: fewer than TREND_EPOCHS epochs, or
    records without the ``images`` count that the noise model needs. The span of the last
    PLATEAU_EPOCHS epochs is reported but does not decide: on a true plateau three epochs of binomial
    noise with sd σ span about 1.7 σ (CIFAR at 10,000 images: σ ≈ 0.4 points, so 0.7), and a steady
    rise can hide in it.
    """
    recs = [h for h in history or [] if h.get("epoch", 0) >= 1 and "train_acc" in h]
    if not recs:
        return None, "no training epochs"
    last = [100 * h["train_acc"] for h in recs[-PLATEAU_EPOCHS:]]
    lr0 = history[0].get("lr") or recs[0].get("lr")
    lr_ratio = recs[-1]["lr"] / lr0 if lr0 else float("nan")
    seen = f"final lr {lr_ratio:.3f} × initial; last {len(last)} epochs span {max(last) - min(last):.2f} points"
    tr = accuracy_trend(recs)
    if tr is None:
        return None, f"{seen}; no trend (fewer than {TREND_EPOCHS} epochs with their image counts)"
    slope, se, sd = tr
    rising = _steep(slope, se)
    verdict = "still rising" if rising else ("falling" if _steep(-slope, se) else "flat")
    detail = f"{seen}; trend {slope:+.2f} ± {se:.2f} points/epoch (noise sd {sd:.2f}): {verdict}"
    return bool(lr_ratio <= LR_ANNEALED and not rising), detail


def _steep(slope: float, se: float) -> bool:
    """A rise both beyond the noise (2 standard errors) and beyond the rule's magnitude: the trend alone
    would make the last PLATEAU_EPOCHS epochs span more than PLATEAU_POINTS."""
    return slope > 2 * se and (PLATEAU_EPOCHS - 1) * slope > PLATEAU_POINTS


def still_rising(recs: list[dict]) -> bool | None:
    """Whether the run's training accuracy still rises at its end (:func:`accuracy_trend`, :func:`_steep`)."""
    tr = accuracy_trend(recs)
    return None if tr is None else _steep(tr[0], tr[1])


def accuracy_trend(recs: list[dict], epochs: int = TREND_EPOCHS) -> tuple[float, float, float] | None:
    """Least-squares slope (points per epoch) of the running training accuracy over the last ``epochs``
    epochs, its standard error if the epochs differ only by binomial noise, and that noise's sd.

    Each epoch's running accuracy is a mean over ``images`` augmented samples, so on a true plateau at
    accuracy p it scatters with sd ``√(p(1−p)/images)``; the slope's standard error is that sd over
    ``√Σ(t − t̄)²``. None without ``images`` in the records or with fewer than ``epochs`` epochs.
    """
    last = recs[-epochs:]
    if len(last) < epochs or any(not h.get("images") for h in last):
        return None
    acc = np.array([h["train_acc"] for h in last])
    t = np.arange(epochs, dtype=float) - (epochs - 1) / 2
    slope = 100 * float(t @ (acc - acc.mean()) / (t @ t))
    sd = 100 * float(np.sqrt(np.mean(acc * (1 - acc) / np.array([h["images"] for h in last]))))
    return slope, sd / float(np.sqrt(t @ t)), sd


def _probe_lss(history: list | None) -> tuple[float | None, float | None]:
    """Mean-over-stages probe LSS at epoch 1 and at the last epoch."""
    vals = [
        float(np.mean([s["lss"] for s in h["probe_stages"]]))
        for h in history or []
        if h.get("epoch", 0) >= 1 and h.get("probe_stages") and all(s.get("lss") is not None for s in h["probe_stages"])
    ]
    return (vals[0], vals[-1]) if len(vals) >= 2 else (None, None)


def _robust_values(rob: dict | None) -> dict:
    if not rob:
        return {}
    out = {}
    for kind in ("noise", "fgsm"):
        acc = rob[f"{kind}_acc"]
        out[f"{kind}_drop"] = 100 * (acc[0] - acc[-1])
        out[f"{kind}_variation"] = float(np.mean(rob[f"{kind}_variation"][-1]))
    out["robust_eps_max"] = max(rob["eps"])
    return out


def _ablation_values(abl: dict | None) -> dict:
    """Accuracy drop (points, mean over blocks) over the 10-50 % part of the curve and at 100 %."""
    if not abl:
        return {}
    fracs, acc = np.asarray(abl["fracs"]), 100 * np.asarray(abl["acc"])
    base = acc[:, fracs == 0.0].mean(1) if (fracs == 0.0).any() else None
    if base is None:
        return {}
    part = (fracs >= 0.1 - 1e-9) & (fracs <= 0.5 + 1e-9)
    out = {}
    if part.any():
        out["ablation_drop_10_50"] = float((base[:, None] - acc[:, part]).mean())
    if (fracs == 1.0).any():
        out["ablation_drop_100"] = float((base - acc[:, fracs == 1.0][:, 0]).mean())
    return out


def run_values(metrics: dict, history: list | None) -> dict:
    """The per-run numbers the tables and claims use (accuracies and drops in percentage points)."""
    s = metrics.get("summary") or {}
    v = {
        "train_acc": 100 * metrics["train"]["acc"] if metrics.get("train") else None,
        "test_acc": 100 * metrics["test"]["acc"] if metrics.get("test") else None,
        "train_loss": (metrics.get("train") or {}).get("loss"),
    }
    for key in _METRICS:
        v[key] = s.get(f"{key}_mean")
        for null in ("untrained", "shuffled"):
            v[f"{key}_{null}"] = s.get(f"{key}_{null}_mean")
    stages = metrics.get("stages") or []
    shares = [st["segment_proportions"][-1] for st in stages if st.get("segment_proportions")]
    v["last_share"] = float(np.mean(shares)) if shares else None
    un = [((st.get("null") or {}).get("untrained") or {}).get("segment_proportions") for st in stages]
    v["last_share_untrained"] = float(np.mean([u[-1] for u in un])) if un and all(un) else None
    v["n_blocks"] = stages[0].get("n_blocks") if stages else None
    v["track_notes"] = "; ".join(track_notes(stages)) or None
    v["lss_epoch1"], v["lss_last"] = _probe_lss(history)
    v["converged"], v["convergence"] = converged(history)
    v["still_rising"] = still_rising([h for h in history or [] if h.get("epoch", 0) >= 1 and "train_acc" in h])
    v.update(_robust_values(metrics.get("robustness")))
    v.update(_ablation_values(metrics.get("ablation")))
    return v


ONE_STEP_SHARE = 0.99  # a stage whose path one block carries (≥ 99 %) has LSS ≈ LSR ≈ 1 trivially
VANISHING_DISP_SQ = 1e-12  # a mean squared displacement below this (features of order 1) is a collapsed net


def track_notes(stages: list) -> list[str]:
    """Why a stage's track metrics are missing (``–`` in the tables) or trivial; one line per such stage.

    * A stage records ``error`` when LSS/LSR could not be computed at the end of training (a sample
      with no segment longer than ``lss_eps``). When its W2² is also 0, no sample moved at all: the
      stage is the identity map (e.g. every residual branch decayed to zero), LSS and LSR are 0/0,
      and its OTS of 1 is the identity's, not a learned geodesic.
    * When one block carries ≥ ``ONE_STEP_SHARE`` of the mean path length (e.g. a plain net whose
      later blocks decayed to zero, so every sample sits still after the first step), LSS and LSR are
      ≈ 1 because the path has one step, not because the steps line up. When the mean squared
      displacement is also below ``VANISHING_DISP_SQ``, the activations have collapsed (every weight
      decayed to ~0) and OTS and the energy ratio measure vanishing steps.
    """
    notes = []
    for i, st in enumerate(stages):
        k = st.get("stage", i + 1)
        props = st.get("segment_proportions") or []
        if st.get("error"):
            note = f"stage {k}: LSS and LSR undefined ({st['error']})"
            if st.get("w2_squared") == 0:
                note += (
                    "; its W2² is 0, so no sample moves: the stage is the identity map, LSS and LSR are 0/0, "
                    "and its OTS of 1 is that of the identity"
                )
            notes.append(note)
        elif len(props) > 1 and max(props) >= ONE_STEP_SHARE:
            j = int(np.argmax(props))
            note = (
                f"stage {k}: block {j + 1} of {len(props)} carries {100 * props[j]:.1f} % of the mean path length, "
                "so its LSS and LSR of about 1 describe a single step, not steps that line up"
            )
            disp = st.get("displacement_sq")
            if disp is not None and disp < VANISHING_DISP_SQ:
                note += (
                    f"; its mean squared displacement is {disp:.1e}: the activations have collapsed to (almost) "
                    "zero, and its OTS and energy ratio are those of vanishing steps"
                )
            notes.append(note)
    return notes


def _problem(rel: str, metrics) -> dict:
    status = metrics.get("status") if isinstance(metrics, dict) else None
    detail = ""
    if isinstance(metrics, dict):
        detail = metrics.get("message") or metrics.get("error") or ""
        if not detail and status in ("running", "interrupted"):
            detail = f"{metrics.get('epochs_completed', 0)} epochs done"
    return {"name": rel, "status": status or "no metrics.json", "detail": detail}


def _grid_base(name: str | None) -> str | None:
    """A manifest's grid name without the hash of its command-line changes (``table4-converged-c3eb8df9``)."""
    return None if name is None else re.sub(r"-[0-9a-f]{8}$", "", name)


def _manifests(root: Path, done: set, listed: set, problems: list) -> list[dict]:
    manifests = []
    for mpath in sorted(root.glob("sweep-*.json")):
        doc = _load(mpath)
        if not isinstance(doc, dict) or not isinstance(doc.get("tasks"), dict):
            continue
        grid = (doc.get("grid") or {}).get("name")
        manifests.append({"path": mpath.name, "grid": grid, "doc": doc})
        superseded = SUPERSEDED.get(_grid_base(grid))
        for name, e in doc["tasks"].items():
            if name in done or name in listed:
                continue
            err = (e.get("errors") or [{}])[-1].get("error", "")
            status = e.get("status", "?")
            status = "missing" if status in ("pending", "running") else status
            detail = f"{mpath.name}: {e.get('attempts', 0)} attempt(s)" + (f"; {err}" if err else "")
            if superseded and status == "missing":
                status, detail = "superseded", f"{mpath.name}: not scheduled; {superseded}"
            problems.append({"name": name, "status": status, "detail": detail})
            listed.add(name)
    return manifests


def collect(runs_dir) -> dict:
    """Every image run folder under ``runs_dir`` (at any depth) and the sweep manifests beside them.

    Returns ``{"runs": [...], "problems": [...], "manifests": [...]}``; a run is a dict with
    ``dir``, ``name``, ``config``, ``metrics``, ``history``, ``values`` (:func:`run_values`),
    ``setting`` and ``setting_fields``. Only folders whose ``config.json`` says ``"kind": "image"``
    are image runs; others (toy studies, …) are left out.
    """
    root = Path(runs_dir)
    runs, problems, seen = [], [], set()
    for cfg_path in sorted(root.rglob("config.json")):
        rdir = cfg_path.parent
        rel = str(rdir.relative_to(root))
        if any(p.name.startswith(".") for p in rdir.relative_to(root).parents if p.name) or rdir in seen:
            continue
        seen.add(rdir)
        cfg = _load(cfg_path)
        if not isinstance(cfg, dict):
            problems.append({"name": rel, "status": "unreadable", "detail": "config.json"})
            continue
        if cfg.get("kind") != "image":
            continue
        metrics = _load(rdir / "metrics.json")
        if not isinstance(metrics, dict) or metrics.get("status") != "completed":
            problems.append(_problem(rel, metrics))
            continue
        history = _load(rdir / "history.json")
        key, fields = _setting(cfg)
        runs.append(
            {
                "dir": rdir,
                "name": rel,
                "config": cfg,
                "metrics": metrics,
                "history": history if isinstance(history, list) else None,
                "values": run_values(metrics, history if isinstance(history, list) else None),
                "setting": key,
                "setting_fields": fields,
            }
        )
    listed = {p["name"] for p in problems}
    manifests = _manifests(root, {r["name"] for r in runs}, listed, problems)
    _attach_wall_times(runs, manifests)
    return {"runs": runs, "problems": problems, "manifests": manifests, "root": root}


def _attach_wall_times(runs: list, manifests: list) -> None:
    walls = {}
    for m in manifests:
        for name, e in m["doc"]["tasks"].items():
            if e.get("wall_s") is not None and not e.get("cached"):
                walls[name] = e["wall_s"]
            elif e.get("wall_s") is not None:
                walls.setdefault(name, e["wall_s"])
    for r in runs:
        r["values"]["wall_s"] = walls.get(Path(r["name"]).name)


def seed_stats(vals) -> tuple[float, float, int] | None:
    """Mean, sample std over seeds (ddof=1; 0 for one seed) and count of the finite values, or None."""
    vals = [float(v) for v in vals if v is not None and not isinstance(v, bool) and math.isfinite(v)]
    if not vals:
        return None
    mean = float(np.mean(vals))
    sd = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
    if sd <= 1e-12 * max(1.0, abs(mean)):  # rounding of equal values
        sd = 0.0
    return mean, sd, len(vals)


def aggregate(runs: list[dict]) -> dict:
    """Settings → ``{"fields", "title", "runs", "cells": {(arch, λ): {"n", "seeds", "runs", key: stats}}}``.

    Cells are ordered by λ, then plain before ResNet; ``stats`` are :func:`seed_stats` of the key's
    per-run values.
    """
    out = {}
    for r in runs:
        s = out.setdefault(r["setting"], {"fields": r["setting_fields"], "runs": [], "cells": {}})
        s["runs"].append(r)
    for s in out.values():
        s["title"] = setting_title(s["fields"])
        groups = defaultdict(list)
        for r in s["runs"]:
            groups[(r["config"]["arch"], float(r["config"]["wd"]))].append(r)
        for key, rs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0] != "plain")):
            rs = sorted(rs, key=lambda r: r["config"]["seed"])
            cell = {"n": len(rs), "seeds": [r["config"]["seed"] for r in rs], "runs": rs}
            for m in rs[0]["values"]:
                if m not in ("convergence", "track_notes"):
                    cell[m] = seed_stats([r["values"].get(m) for r in rs])
            cell["converged"] = sum(bool(r["values"]["converged"]) for r in rs)
            cell["segments"] = _mean_vec([r["metrics"]["stages"][0].get("segment_proportions") for r in rs])
            un = [((r["metrics"]["stages"][0].get("null") or {}).get("untrained") or {}) for r in rs]
            cell["segments_untrained"] = _mean_vec([u.get("segment_proportions") for u in un])
            s["cells"][key] = cell
    return dict(sorted(out.items(), key=lambda kv: (kv[1]["fields"]["dataset"], kv[1]["fields"]["k"], kv[0])))


def _mean_vec(vecs):
    vecs = [v for v in vecs if v]
    if not vecs or len({len(v) for v in vecs}) != 1:
        return None
    return [float(x) for x in np.mean(np.asarray(vecs, dtype=float), axis=0)]
