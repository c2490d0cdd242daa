"""Figures of the Gaussian study, drawn only from a saved run folder (never retrains).

    python -m toy_experiments.plots runs/gaussians-default-<time>

* ``tracks_<task>.png``: tracks of both nets (first seed, every λ) over the exact geodesic (grey),
  the displacement interpolation ``x → T*(x)`` drawn with :func:`otflow.geodesic_tracks`;
* ``pushforward_<task>.png``: the nets' outputs on held-out points against a target sample;
* ``metrics_vs_lambda.png``: each metric against λ, mean ± std over seeds, residual vs plain;
* ``sweep.png`` (with a depth × width sweep): LSS and map distance against width, one line per depth.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

__all__ = ["make_figures"]

_COLORS = {"residual": "tab:blue", "plain": "tab:red"}
_METRICS = (
    ("fit", "fit: W2²(out, target) / accuracy"),
    ("lss", "LSS (1 = straight)"),
    ("ots", "OTS"),
    ("energy_ratio", "energy / W2²(x⁰, xᴸ)"),
    ("map_uvp", "map distance to T*, UVP %"),
    ("theorem1_share", "Theorem 1 share"),
)


def _load(folder: Path):
    cfg = json.loads((folder / "config.json").read_text())
    records = json.loads((folder / "metrics.json").read_text())
    return cfg, records


def _save(fig, path: Path) -> Path:
    from otflow.runs import save_figure

    return save_figure(fig, path, dpi=80)  # many small panels: a lower resolution keeps the PNGs small


def _truth(folder: Path, task: str) -> dict:
    with np.load(folder / "truth" / f"{task}.npz") as z:
        return {k: z[k] for k in z.files}


def _grid_runs(records, task, seed):
    return {(r["net"], r["lam"]): r for r in records if r["kind"] == "grid" and r["task"] == task and r["seed"] == seed}


def _exact_targets(truth: dict, outputs: np.ndarray) -> np.ndarray:
    """T*(x) on all held-out points: given (transport tasks) or the optimal assignment onto the outputs."""
    import otflow

    if "tx" in truth:
        return truth["tx"]
    return outputs[otflow.optimal_assignment(truth["x"], outputs)]


def _net_lambda_grid(plt, records, task, cfg, **share):
    """A residual/plain × λ grid of axes for seed ``cfg["seeds"][0]``: the figure and, per run that
    exists, ``(ax, net, λ, record)``; axes without a run are switched off."""
    runs = _grid_runs(records, task, cfg["seeds"][0])
    lams = cfg["lambdas"]
    fig, axes = plt.subplots(2, len(lams), figsize=(2.6 * len(lams), 5.4), squeeze=False, **share)
    cells = []
    for i, net in enumerate(("residual", "plain")):
        for j, lam in enumerate(lams):
            r = runs.get((net, float(lam)))
            if r is None:
                axes[i, j].set_axis_off()
            else:
                cells.append((axes[i, j], net, lam, r))
    return fig, cells


def _tracks_figure(folder, cfg, records, task):
    import matplotlib.pyplot as plt

    import otflow

    truth = _truth(folder, task)
    fig, cells = _net_lambda_grid(plt, records, task, cfg)
    for ax, net, lam, r in cells:
        with np.load(folder / "arrays" / f"{r['id']}.npz") as z:
            tracks, outputs = z["tracks"], z["outputs"]
        # the window is set by the exact problem; tracks that wander further are clipped
        ref = np.concatenate([truth["x"], truth.get("y", outputs), truth.get("tx", truth["x"])])
        mid, half = (ref.min(0) + ref.max(0)) / 2, 0.575 * (ref.max(0) - ref.min(0)).max()
        ax.set_xlim(mid[0] - half, mid[0] + half)
        ax.set_ylim(mid[1] - half, mid[1] + half)
        n = len(tracks)
        tx = _exact_targets(truth, outputs.astype(np.float64))[:n]
        geo = otflow.geodesic_tracks(truth["x"][:n], tx, tracks.shape[1] - 1, sigma=np.arange(n))
        for g in geo:
            ax.plot(g[:, 0], g[:, 1], color="0.6", lw=1.2, zorder=1)
        for t in tracks:
            ax.plot(t[:, 0], t[:, 1], color=_COLORS[net], lw=0.7, alpha=0.8, zorder=2)
        ax.scatter(tracks[:, 0, 0], tracks[:, 0, 1], s=5, color="k", zorder=3)
        ax.scatter(tracks[:, -1, 0], tracks[:, -1, 1], s=5, color=_COLORS[net], zorder=3)
        fit = "fit" if r["fit"] else "NOT fit"
        ax.set_title(f"{net} λ={lam:g}\nLSS {r['lss']:.2f} OTS {r['ots']:.2f} {fit}", fontsize=8)
        ax.set_aspect("equal", adjustable="box")
        ax.tick_params(labelsize=7)
    fig.suptitle(f"{task}: tracks (colour) over the exact OT geodesic (grey), seed {cfg['seeds'][0]}", fontsize=10)
    fig.tight_layout()
    path = _save(fig, folder / "figures" / f"tracks_{task}.png")
    plt.close(fig)
    return path


def _pushforward_figure(folder, cfg, records, task):
    import matplotlib.pyplot as plt

    truth = _truth(folder, task)
    fig, cells = _net_lambda_grid(plt, records, task, cfg, sharex=True, sharey=True)
    for ax, net, lam, r in cells:
        with np.load(folder / "arrays" / f"{r['id']}.npz") as z:
            outputs = z["outputs"]
        if "y" in truth:
            ax.scatter(truth["y"][:, 0], truth["y"][:, 1], s=3, color="0.7", label="target sample")
            ax.scatter(outputs[:, 0], outputs[:, 1], s=3, color=_COLORS[net], label="outputs")
            ax.set_title(f"{net} λ={lam:g}\nW2²→target {r['w2sq_to_target']:.3g}", fontsize=8)
        else:
            ax.scatter(outputs[:, 0], outputs[:, 1], s=3, c=truth["labels"], cmap="coolwarm")
            ax.set_title(f"{net} λ={lam:g}\naccuracy {r['accuracy']:.3f}", fontsize=8)
        ax.tick_params(labelsize=7)
    what = "outputs (colour) vs target sample (grey)" if "y" in truth else "outputs coloured by class"
    fig.suptitle(f"{task}: pushed-forward held-out points, {what}, seed {cfg['seeds'][0]}", fontsize=10)
    fig.tight_layout()
    path = _save(fig, folder / "figures" / f"pushforward_{task}.png")
    plt.close(fig)
    return path


def _metrics_figure(folder, cfg, records):
    import matplotlib.pyplot as plt

    tasks = cfg["tasks"]
    lams = [float(v) for v in cfg["lambdas"]]
    fig, axes = plt.subplots(len(tasks), len(_METRICS), figsize=(2.7 * len(_METRICS), 2.4 * len(tasks)), squeeze=False)
    xs = np.arange(len(lams))
    for i, task in enumerate(tasks):
        for j, (key, title) in enumerate(_METRICS):
            ax = axes[i, j]
            for off, net in ((-0.08, "residual"), (0.08, "plain")):
                means, stds, nfit = [], [], []
                for lam in lams:
                    rs = [
                        r
                        for r in records
                        if r["kind"] == "grid" and r["task"] == task and r["net"] == net and r["lam"] == lam
                    ]
                    k = ("accuracy" if task == "classification" else "w2sq_to_target") if key == "fit" else key
                    vals = np.array([r[k] for r in rs], dtype=float)
                    means.append(vals.mean() if len(vals) else np.nan)
                    stds.append(vals.std() if len(vals) else np.nan)
                    nfit.append(sum(r["fit"] for r in rs) / max(len(rs), 1))
                means, stds = np.array(means), np.array(stds)
                ax.errorbar(
                    xs + off,
                    means,
                    yerr=stds,
                    color=_COLORS[net],
                    marker="o",
                    ms=4,
                    capsize=2,
                    lw=1,
                    label=net,
                    mfc="none",
                )
                full = np.array(nfit) == 1
                ax.plot((xs + off)[full], means[full], "o", color=_COLORS[net], ms=4)
            if key in ("lss", "map_uvp", "energy_ratio") or (key == "fit" and task != "classification"):
                ax.set_yscale("log")
            ax.set_xticks(xs, [f"{v:g}" for v in lams], fontsize=7)
            ax.tick_params(labelsize=7)
            if i == 0:
                ax.set_title(title, fontsize=8)
            if j == 0:
                ax.set_ylabel(task, fontsize=9)
            if i == len(tasks) - 1:
                ax.set_xlabel("weight decay λ", fontsize=8)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(
        "metrics vs weight decay, mean ± std over seeds (filled: every seed fits; hollow: some do not)", fontsize=10
    )
    fig.tight_layout()
    path = _save(fig, folder / "figures" / "metrics_vs_lambda.png")
    plt.close(fig)
    return path


def _sweep_figure(folder, cfg, records):
    import matplotlib.pyplot as plt

    task, lam = cfg["sweep_task"], float(cfg["sweep_lambda"])
    rs = [r for r in records if r["task"] == task and r["lam"] == lam]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, key, title in zip(axes, ("lss", "map_uvp", "energy_ratio"), ("LSS", "map UVP %", "energy ratio")):
        for net, ls in (("residual", "-"), ("plain", "--")):
            by_depth = defaultdict(lambda: defaultdict(list))
            for r in rs:
                if r["net"] == net:
                    by_depth[r["n_blocks"]][r["width"]].append(r[key])
            for depth in sorted(by_depth):
                widths = sorted(by_depth[depth])
                m = [np.mean(by_depth[depth][w]) for w in widths]
                s = [np.std(by_depth[depth][w]) for w in widths]
                ax.errorbar(widths, m, yerr=s, ls=ls, marker="o", ms=3, capsize=2, label=f"{net} L={depth}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("width")
        ax.set_title(f"{title} ({task}, λ={lam:g})", fontsize=9)
    axes[0].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    path = _save(fig, folder / "figures" / "sweep.png")
    plt.close(fig)
    return path


def make_figures(folder) -> list[Path]:
    """Draw every figure of the run folder ``folder`` into ``folder/figures``; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    folder = Path(folder)
    cfg, records = _load(folder)
    paths = []
    for task in cfg["tasks"]:
        paths.append(_tracks_figure(folder, cfg, records, task))
        paths.append(_pushforward_figure(folder, cfg, records, task))
    paths.append(_metrics_figure(folder, cfg, records))
    if cfg["sweep_depths"]:
        paths.append(_sweep_figure(folder, cfg, records))
    return paths


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not (Path(argv[0]) / "metrics.json").exists():
        print("usage: python -m toy_experiments.plots RUN_FOLDER (a folder holding metrics.json)", file=sys.stderr)
        return 2
    for p in make_figures(argv[0]):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
