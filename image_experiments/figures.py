"""Figures of a saved run folder (never retrains; STYLE 16).

    python -m image_experiments.figures runs/images/mnist_resnet_k1_wd0.001_seed0_cpu

Writes ``figures/`` in the run folder: ``training.png`` (loss, accuracy and probe LSS/LSR per
epoch), ``tracks_stage<k>.png`` (random 2-D projections of a few tracks per class, Figs. 3/4),
``segments.png`` (segment-length proportions, Tables 2-3), ``robustness.png`` (accuracy vs ε and
variation rate per layer, Fig. 9) and ``ablation.png`` (accuracy vs units replaced per block, Fig. 8).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

__all__ = ["make_figures", "main"]


def _save(fig, path: Path) -> None:
    from otflow.runs import save_figure

    save_figure(fig, path)


def _training(plt, history: list, title: str):
    ep = [h["epoch"] for h in history if h["epoch"] > 0]
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.5))
    ax[0].plot(ep, [h["train_loss"] for h in history if h["epoch"] > 0], label="train (running)")
    ax[0].plot([h["epoch"] for h in history], [h["probe_loss"] for h in history], label="probe (test)")
    ax[0].set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax[1].plot(ep, [h["train_acc"] for h in history if h["epoch"] > 0], label="train (running)")
    ax[1].plot([h["epoch"] for h in history], [h["probe_acc"] for h in history], label="probe (test)")
    ax[1].set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    epochs = [h["epoch"] for h in history]
    for k in range(len(history[0]["probe_stages"])):
        for key, style in (("lss", "-"), ("lsr", "--")):
            vals = [np.nan if h["probe_stages"][k][key] is None else h["probe_stages"][k][key] for h in history]
            ax[2].plot(epochs, vals, style, label=f"{key.upper()} stage {k + 1}")
    ax[2].set(xlabel="epoch (0 = untrained, BN re-estimated)", title="probe LSS / LSR", yscale="log")
    for a in ax:
        a.legend(fontsize=7)
    fig.suptitle(title, y=1.03)
    return fig


def _tracks(plt, metrics: dict, k: int):
    proj = np.asarray(metrics["projection"]["stages"][k - 1])
    labels = metrics["projection"]["labels"]
    cmap = plt.get_cmap("tab10" if max(labels) < 10 else "tab20")
    fig, ax = plt.subplots(figsize=(5, 5))
    for tr, c in zip(proj, labels):
        col = cmap(int(c) % cmap.N)
        ax.plot(tr[:, 0], tr[:, 1], "-", color=col, lw=0.7, alpha=0.8)
        ax.plot(tr[0, 0], tr[0, 1], "o", color=col, ms=2)
        ax.plot(tr[-1, 0], tr[-1, 1], "s", color=col, ms=3)
    st = metrics["stages"][k - 1]
    ax.set_title(
        f"stage {k} {tuple(st['shape'])}: LSS {st.get('lss', float('nan')):.2f}, "
        f"OTS {st.get('ots', float('nan')):.3f}\n(random 2-D projection; o start, ■ end)",
        fontsize=9,
    )
    return fig


def _segments(plt, stages: list, title: str):
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for st in stages:
        if "segment_proportions" in st:
            p = st["segment_proportions"]
            ax.plot(range(1, len(p) + 1), p, "o-", label=f"stage {st['stage']}")
    ax.set(xlabel="segment l", ylabel="mean share of track length", title=f"segment proportions: {title}")
    ax.legend(fontsize=7)
    return fig


def _robustness(plt, rob: dict):
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.5))
    ax[0].plot(rob["eps"], rob["noise_acc"], "o-", label="Gaussian noise")
    ax[0].plot(rob["eps"], rob["fgsm_acc"], "s-", label="FGSM")
    ax[0].set(xlabel="ε (pixels in [0, 1])", ylabel="test accuracy", title="robustness")
    ax[0].legend()
    layers = np.arange(len(rob["layers"]))
    ax[1].plot(layers, rob["noise_variation"][-1], "o-", label=f"noise ε={rob['eps'][-1]}")
    ax[1].plot(layers, rob["fgsm_variation"][-1], "s-", label=f"FGSM ε={rob['eps'][-1]}")
    ax[1].set_xticks(layers, rob["layers"], rotation=90, fontsize=6)
    ax[1].set(ylabel="variation rate (35)", title="per-layer variation rate")
    ax[1].legend()
    return fig


def _ablation(plt, abl: dict, title: str):
    fig, ax = plt.subplots(figsize=(6, 4))
    acc = np.asarray(abl["acc"])
    for b, name in enumerate(abl["blocks"]):
        ax.plot(abl["fracs"], acc[b], "o-", lw=0.8, ms=2, label=name)
    ax.set(xlabel="fraction of units replaced (most important first)", ylabel="test accuracy")
    ax.set_title(f"unit ablation: {title}")
    ax.legend(fontsize=5, ncol=2)
    return fig


def make_figures(run_dir) -> list[Path]:
    """Draw every figure the saved results allow (from ``metrics.json`` and ``history.json`` only,
    so a committed results folder is enough); returns the written paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rdir = Path(run_dir)
    metrics = json.loads((rdir / "metrics.json").read_text())
    history = json.loads((rdir / "history.json").read_text())
    title = metrics.get("name", rdir.name)
    figs = [("training.png", _training(plt, history, title))]
    if metrics.get("projection"):
        for k in range(1, len(metrics["projection"]["stages"]) + 1):
            figs.append((f"tracks_stage{k}.png", _tracks(plt, metrics, k)))
    figs.append(("segments.png", _segments(plt, metrics["stages"], title)))
    if metrics.get("robustness"):
        figs.append(("robustness.png", _robustness(plt, metrics["robustness"])))
    if metrics.get("ablation"):
        figs.append(("ablation.png", _ablation(plt, metrics["ablation"], title)))
    written = []
    for name, fig in figs:
        written.append(rdir / "figures" / name)
        _save(fig, written[-1])
        plt.close(fig)
    return written


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: python -m image_experiments.figures RUN_DIR [RUN_DIR ...]", file=sys.stderr)
        return 2
    for d in argv:
        if not (Path(d) / "metrics.json").exists():
            print(f"error: {d} is not a run folder (no metrics.json)", file=sys.stderr)
            return 1
        for p in make_figures(d):
            print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
