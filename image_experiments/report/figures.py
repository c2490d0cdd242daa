"""Figures of a report, drawn from the collected runs (metrics.json and history.json only).

Per setting: probe LSS per epoch (Fig. 4), metrics against λ with the untrained and shuffled nulls
and the √L / L references (Figs. 6-7), robustness (Fig. 9), unit ablation (Fig. 8) and projected
tracks of a ResNet and a plain net (Fig. 3), each where the data exist; across settings that differ
only in width, LSS and accuracy against the width (Fig. 5).
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

import otflow
from image_experiments import paper_values as pv

__all__ = ["figures", "slug", "width_studies"]

COLORS = {"resnet": "tab:blue", "plain": "tab:red"}
_PANELS = (("train_acc", "train acc %"), ("test_acc", "test acc %"), ("ots", "OTS"), ("lsr", "LSR"), ("lss", "LSS"))


def slug(s: dict) -> str:
    f = s["fields"]
    return f"{f['dataset']}_k{f['k']}_{f['profile']}_{hashlib.sha1(s['title'].encode()).hexdigest()[:6]}"


def _save(plt, fig, path: Path, written: list) -> None:
    from otflow.runs import save_figure

    save_figure(fig, path)
    plt.close(fig)
    written.append(path)


def _lss_vs_epoch(plt, s: dict):
    curves = defaultdict(list)
    for r in s["runs"]:
        pts = [
            (h["epoch"], np.mean([st["lss"] for st in h["probe_stages"]]))
            for h in r["history"] or []
            if h.get("probe_stages") and all(st.get("lss") is not None for st in h["probe_stages"])
        ]
        if pts:
            curves[(r["config"]["arch"], float(r["config"]["wd"]))].append(pts)
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    wds = sorted({wd for _, wd in curves})
    cmap = plt.get_cmap("viridis", max(len(wds), 2))
    for (arch, wd), runs in sorted(curves.items()):
        ep = [e for e, _ in runs[0]]
        vals = np.mean([[v for _, v in pts] for pts in runs if len(pts) == len(ep)], axis=0)
        ax.plot(ep, vals, "-" if arch == "resnet" else "--", color=cmap(wds.index(wd)), label=f"{arch} λ={wd:g}")
    _references(ax, s, axis="y")
    ax.set(xlabel="epoch (0 = untrained, BN re-estimated)", ylabel="probe LSS", yscale="log")
    from matplotlib import ticker

    ax.yaxis.set_major_formatter(ticker.ScalarFormatter())  # 2, 3, 4 rather than 2×10⁰
    ax.yaxis.set_minor_formatter(ticker.FormatStrFormatter("%g"))
    ax.set_title(f"LSS during training: {s['title']}", fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    return fig


def _references(ax, s: dict, *, axis: str) -> None:
    n = s["runs"][0]["values"].get("n_blocks")
    if not n:
        return
    r = otflow.null_references(n)
    for val, name in ((r.random_walk, "√L random walk"), (r.independent_layers, "L independent layers")):
        ax.axhline(val, color="grey", lw=0.8, ls=":")
        ax.annotate(name, (0.01, val), xycoords=("axes fraction", "data"), fontsize=6, color="grey", va="bottom")


def _metric_panel(ax, s: dict, key: str, title: str) -> None:
    ax.set_xscale("symlog", linthresh=1e-4)  # first: set after axhline, the margins were linear (x from −5e-4)
    for arch in ("resnet", "plain"):
        cells = sorted((wd, c) for (a, wd), c in s["cells"].items() if a == arch and c[key] is not None)
        if not cells:
            continue
        x = [wd for wd, _ in cells]
        ax.errorbar(
            x,
            [c[key][0] for _, c in cells],
            yerr=[c[key][1] for _, c in cells],
            marker="o",
            ms=3,
            color=COLORS[arch],
            label=f"{arch}",
            capsize=2,
        )
        for null, style in (("untrained", "--"), ("shuffled", ":")):
            ys = [(wd, c.get(f"{key}_{null}")) for wd, c in cells]
            ys = [(wd, v[0]) for wd, v in ys if v is not None]
            if ys:
                ax.plot(*zip(*ys), style, color=COLORS[arch], alpha=0.6, lw=1, label=f"{arch} {null}")
        ref = [(wd, pv.paper_value(s["fields"]["dataset"], s["fields"]["k"], arch, wd, key)) for wd in x]
        ref = [(wd, v.value) for wd, v in ref if v is not None and not v.lost]
        if ref:
            ax.plot(*zip(*ref), "x", color=COLORS[arch], alpha=0.7, label=f"{arch} paper")
    if key in ("lss", "lsr"):
        _references(ax, s, axis="y")
    ax.set(xlabel="λ", title=title)


def _metrics_vs_lambda(plt, s: dict):
    if len({wd for _, wd in s["cells"]}) < 2:
        return None
    fig, axes = plt.subplots(1, len(_PANELS), figsize=(18, 3.4))
    for ax, (key, title) in zip(axes, _PANELS):
        _metric_panel(ax, s, key, title)
    axes[-1].legend(fontsize=5, ncol=2)
    fig.suptitle(f"Metrics against λ (dashed: untrained, dotted: shuffled, x: paper): {s['title']}", fontsize=9, y=1.03)
    return fig


def _pick_lambda(s: dict, want: float = 5e-2) -> float | None:
    """The λ with both nets run closest (in log scale) to ``want`` (SPEC §5's robustness λ)."""
    lams = sorted({wd for (a, wd) in s["cells"] if ("resnet", wd) in s["cells"] and ("plain", wd) in s["cells"]})
    return min(lams, key=lambda w: abs(math.log10(w + 1e-5) - math.log10(want))) if lams else None


def _chosen(s: dict, lam: float) -> dict:
    return {a: min(c["runs"], key=lambda r: r["config"]["seed"]) for (a, wd), c in s["cells"].items() if wd == lam}


def _robustness(plt, s: dict, lam: float):
    rob = {a: r["metrics"]["robustness"] for a, r in _chosen(s, lam).items() if r["metrics"].get("robustness")}
    if not rob:
        return None
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.2))
    for arch, d in rob.items():
        for j, kind in enumerate(("noise", "fgsm")):
            axes[j].plot(d["eps"], np.asarray(d[f"{kind}_acc"]) * 100, "o-", ms=3, color=COLORS[arch], label=arch)
            axes[j].set(xlabel="ε", ylabel="test acc %", title=f"{kind} (λ={lam:g})")
            axes[2 + j].plot(d[f"{kind}_variation"][-1], "o-", ms=3, color=COLORS[arch], label=arch)
            axes[2 + j].set(xlabel="track point", ylabel="variation rate", title=f"{kind}, ε={d['eps'][-1]:g}")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Robustness (Fig. 9 style), lowest seed: {s['title']}", fontsize=9, y=1.03)
    fig.tight_layout()  # the third panel's y label ran into the second's tick labels
    return fig


def _ablation(plt, s: dict, lam: float):
    abl = {a: r["metrics"]["ablation"] for a, r in _chosen(s, lam).items() if r["metrics"].get("ablation")}
    if not abl:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for arch, d in abl.items():
        acc = np.asarray(d["acc"]) * 100
        for row in acc:
            ax.plot(d["fracs"], row, color=COLORS[arch], alpha=0.25, lw=0.8)
        ax.plot(d["fracs"], acc.mean(0), "o-", color=COLORS[arch], label=f"{arch} (mean over blocks)")
    ax.axvspan(0.1, 0.5, color="grey", alpha=0.1, lw=0)
    ax.set(xlabel="fraction of important units replaced (claim 6 judged on the shaded part)", ylabel="test acc %")
    ax.set_title(f"Unit ablation (Fig. 8 style), λ={lam:g}", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def _tracks(plt, s: dict, lam: float):
    proj = {a: r["metrics"]["projection"] for a, r in _chosen(s, lam).items() if r["metrics"].get("projection")}
    if not proj:
        return None
    fig, axes = plt.subplots(1, len(proj), figsize=(5 * len(proj), 4.5), squeeze=False)
    cm = plt.get_cmap("tab10")
    for ax, (arch, p) in zip(axes[0], sorted(proj.items())):
        tr, lab = np.asarray(p["stages"][0]), p["labels"]
        for i in range(len(tr)):
            ax.plot(tr[i, :, 0], tr[i, :, 1], "-", color=cm(int(lab[i]) % 10), lw=0.8, alpha=0.8)
            ax.plot(tr[i, -1, 0], tr[i, -1, 1], ".", color=cm(int(lab[i]) % 10), ms=4)
        ax.set_title(f"{arch}, λ={lam:g}: stage-1 tracks", fontsize=10)
    fig.suptitle(f"{s['title']}: random 2-D projection (Fig. 3 style); dot = end", fontsize=9)
    return fig


def _width_groups(settings: dict) -> dict:
    """(setting without its width, arch, λ) → {width: cell}, for settings that differ only in width."""
    from image_experiments.models import TABLE1

    groups = defaultdict(dict)
    for s in settings.values():
        f = s["fields"]
        family = "mnist" if f["dataset"] == "mnist" else "cifar"
        width = f.get("width") or TABLE1[(family, f["k"])]["dims"][0][0]
        rest = {k: v for k, v in f.items() if k != "width"}
        for (arch, wd), c in s["cells"].items():
            groups[(s["title"].split(" (width=")[0], str(sorted(rest.items())), arch, wd)][width] = c
    return {k: v for k, v in groups.items() if len(v) >= 2}


def _width_study(plt, title: str, arch: str, wd: float, by_w: dict):
    """LSS (with the untrained and shuffled nulls) and test accuracy against the width (Fig. 5)."""
    ws = sorted(by_w)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, key, label in ((axes[0], "lss", "LSS"), (axes[1], "test_acc", "test acc %")):
        pts = [(w, by_w[w][key]) for w in ws if by_w[w].get(key) is not None]
        ax.errorbar([w for w, _ in pts], [v[0] for _, v in pts], yerr=[v[1] for _, v in pts], marker="o",
                    ms=3, capsize=2, color=COLORS[arch], label=f"{arch} trained")  # fmt: skip
        for null, style in (("untrained", "--"), ("shuffled", ":")):
            ys = [(w, by_w[w].get(f"{key}_{null}")) for w in ws]
            ys = [(w, v[0]) for w, v in ys if v is not None]
            if ys:
                ax.plot(*zip(*ys), style, color=COLORS[arch], alpha=0.6, lw=1, label=f"{null}")
        ax.set(xscale="log", xlabel="width of the stage", title=label)
        ax.minorticks_off()  # the log axis' minor labels (3×10², …) would collide with the widths'
        ax.set_xticks(ws, [str(w) for w in ws])
    n = by_w[ws[0]]["runs"][0]["values"].get("n_blocks")
    if n:
        axes[0].axhline(otflow.null_references(n).random_walk, color="grey", lw=0.8, ls="-.", label="random walk √L")
    axes[0].legend(fontsize=6)
    fig.suptitle(f"Width study (Fig. 5): {title}, {arch}, λ={wd:g}; seeds' mean ± std", fontsize=9, y=1.02)
    return fig


def figures(settings: dict, fig_dir: Path) -> list[Path]:
    """Draw every figure the runs allow into ``fig_dir``; returns the written paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    for s in settings.values():
        name = slug(s)
        lam = _pick_lambda(s)
        figs = [("lss_vs_epoch", _lss_vs_epoch(plt, s)), ("metrics_vs_lambda", _metrics_vs_lambda(plt, s))]
        if lam is not None:
            figs += [("robustness", _robustness(plt, s, lam)), ("ablation", _ablation(plt, s, lam))]
            figs += [("tracks", _tracks(plt, s, lam))]
        for kind, fig in figs:
            if fig is not None:
                _save(plt, fig, Path(fig_dir) / f"repro_{name}_{kind}.png", written)
    for name, (title, _, arch, wd), by_w in width_studies(settings):
        _save(plt, _width_study(plt, title, arch, wd, by_w), Path(fig_dir) / name, written)
    return written


def width_studies(settings: dict) -> list[tuple[str, tuple, dict]]:
    """(file name, group key, {width: cell}) of each width figure the runs allow, in drawing order."""
    out = []
    for key, by_w in sorted(_width_groups(settings).items(), key=lambda kv: kv[0][:3]):
        _, rest, arch, wd = key
        out.append((f"repro_width_{hashlib.sha1(f'{rest}{arch}{wd}'.encode()).hexdigest()[:6]}.png", key, by_w))
    return out
