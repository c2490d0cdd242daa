r"""Calibration of the track metrics against exact OT, from D = 2 to D = 512.

Command::

    python -m toy_experiments.calibration                  # D ∈ {2, 8, 32, 128, 512}, 3 seeds
    python -m toy_experiments.calibration --smoke          # seconds (used by the tests)
    python -m toy_experiments.calibration --out runs/cal --resume   # finish an interrupted run

Run on the project machine, 2026-12-04: 3 min 31 s wall with the two cores shared (load average
4.6-7.0; 108 s of CPU time, so it should take under two minutes on two idle cores, not measured).
Headline, as its table prints it (trained residual nets against their nulls, rule below)::

    == LSS: separated at D = 32, 512; not at D = 2, 8, 128; still separated at the largest D
    == OTS: separated at D = none; not at D = 2, 8, 32, 128, 512; stops separating from D = 2 on
    == OT cost gap: separated at D = none; not at D = 2, 8, 32, 128, 512; stops separating from D = 2 on
    == energy ratio: separated at D = none; not at D = 2, 8, 32, 128, 512; stops separating from D = 2 on
    == map UVP %: separated at D = 8, 32, 128; not at D = 2, 512; stops separating from D = 512 on

OTS = 1 and cost gap 0 from D = 8-32 for the trained net, its untrained start, its shuffled
displacements and a random walk alike; LSS of the trained nets (1.9-2.4) sits next to the random
walk's √L = 2.45. Full table and figure: docs/toy.md.

Residual and plain nets (``toy_experiments.nets``; L blocks of hidden width h) are trained to push
:math:`N(0, I_D)` onto :math:`N(m, S)`, a Gaussian with a random mean and a random covariance (one per
D, drawn from ``target_seed``), on a loss that sees only the first two moments of their outputs
(:func:`train_moments`; residual blocks PyTorch's initialisation, plain blocks ``he-plain``, since
looks-linear needs width ≥ 2D). The exact OT map is the closed form
:func:`otflow.gaussian_map`. On held-out points, every trained net and each of its nulls is scored by
:func:`toy_experiments.evaluation.evaluate_tracks` (cost ``‖x − y‖²``, not halved): LSS, LSR, OTS, OT
cost gap, energy ratio (transport energy / ``W2²(x⁰, xᴸ)``) and the map UVP
``100 · mean_i ‖x^L_i − T*(x_i)‖² / tr S`` (percent of the target's variance; 0 on the exact map).

Nulls, per trained net (all with the trained net's own inputs):

* ``untrained``: the same net before training;
* ``shuffled``: the net's own steps, each segment's steps permuted across samples
  (:func:`otflow.shuffled_displacements`, the null every image run reports): the energy is kept,
  the link between a sample and its steps is broken;
* ``random_walk``: ``x^l = x^{l−1} + ξ_l``, Gaussian steps scaled to the trained net's mean squared
  displacement (LSS ≈ √L in high D);
* ``independent``: each layer's points permuted independently, ``x̃^l_i = x^l_{π_l(i)}`` for l ≥ 1
  (layer marginals kept, tracks broken; LSS ≈ L in high D);

and the exact geodesic ``x → T*(x)`` in L equal steps (:func:`otflow.geodesic_tracks`): LSS = LSR = 1,
energy ratio 1, UVP 0, OTS 1.

Separation rule (printed with the table): at a given D, a metric separates the trained residual nets
from a null when ``|mean_trained − mean_null| > 2 · max(std_trained, std_null)`` (means and population
stds over seeds); it separates them from its nulls when it separates them from every null.

Run folder: ``config.json`` (``"kind": "toy-calibration"``, the config, package versions and git
revision from :func:`otflow.environment_info`), ``cells/D<D>-<arch>-s<seed>.json`` (one per trained
net with its nulls, written as soon as it is scored; ``--resume`` skips them), ``metrics.json`` (all
cells), ``summary.json`` (rows and separation), ``table.txt`` and ``figures/calibration.png``. Every
file is written atomically (:func:`otflow.runs.write_json`).

Exit codes: 0 done, 1 a cell failed (its error is printed; the other cells are kept), 2 bad usage,
130 interrupted (finished cells are kept; finish with ``--resume``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "Config",
    "METRICS",
    "NULLS",
    "make_target",
    "train_moments",
    "null_tracks",
    "run",
    "summarise",
    "separation",
    "format_table",
    "make_figure",
    "main",
]

# (record key, label, reference line); the trained net's own values are compared with each null
METRICS = (
    ("lss", "LSS"),
    ("lsr", "LSR"),
    ("ots", "OTS"),
    ("ot_cost_gap", "OT cost gap"),
    ("energy_ratio", "energy ratio"),
    ("map_uvp", "map UVP %"),
)
NULLS = ("untrained", "shuffled", "random_walk", "independent")
VARIANTS = ("trained", *NULLS, "geodesic")
ARCHS = ("residual", "plain")
SEPARATION_RULE = (
    "a metric separates the trained residual nets from a null at D when |mean_trained − mean_null| > "
    "2·max(std_trained, std_null) over seeds, and from its nulls when it separates them from every null"
)
NULLS_OF = {key: NULLS for key, _ in METRICS}


@dataclass(frozen=True)
class Config:
    """Everything that defines a calibration run; saved in ``config.json``."""

    dims: tuple[int, ...] = (2, 8, 32, 128, 512)  # dimensions D of the Gaussian problems (comma-separated)
    seeds: tuple[int, ...] = (0, 1, 2)  # training seeds per dimension and net
    n_blocks: int = 6  # blocks per net (L)
    width: int = 32  # hidden width of each block
    init: str = "he-plain"  # initialisation of the plain nets (toy_experiments.nets)
    steps: int = 200  # Adam steps per net
    batch: int = 64  # training batch size
    lr: float = 3e-3  # Adam learning rate (cosine schedule)
    lam: float = 0.0  # weight decay λ
    n_eval: int = 300  # held-out points for every metric
    n_pairs: int = 500  # random sample pairs for the track-distance check
    target_seed: int = 20_000  # seed of the random target Gaussian per dimension
    eval_seed: int = 30_000  # seed of the held-out points and pairs
    threads: int = 2  # torch CPU threads
    name: str = dataclasses.field(default="default", compare=False)  # a label for the run folder

    def __post_init__(self):
        from toy_experiments.nets import INITS

        for key in ("dims", "seeds"):
            object.__setattr__(self, key, tuple(getattr(self, key)))
        for key in ("dims", "seeds"):
            v = getattr(self, key)
            if not v or len(set(v)) != len(v) or any(isinstance(s, bool) or not isinstance(s, int) for s in v):
                raise ValueError(f"{key}: expected distinct integers, got {v}")
        if min(self.dims) < 1 or min(self.seeds) < 0:
            raise ValueError(f"dims and seeds: expected dims ≥ 1 and seeds ≥ 0, got {self.dims} and {self.seeds}")
        for key in ("n_blocks", "width", "steps", "n_pairs", "threads"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{key}: expected a positive integer, got {v!r}")
        if self.batch < 2 or self.n_eval < 8:
            raise ValueError(f"batch and n_eval: expected ≥ 2 and ≥ 8, got {self.batch} and {self.n_eval}")
        if self.init not in INITS or "looks-linear" in INITS[self.init]:
            raise ValueError(f"init: expected one of he-plain, he, torch-default (width < 2D), got {self.init!r}")
        if not (math.isfinite(self.lr) and self.lr > 0) or not (math.isfinite(self.lam) and self.lam >= 0):
            raise ValueError(f"lr and lam: expected lr > 0 and lam ≥ 0, got {self.lr} and {self.lam}")

    @classmethod
    def smoke(cls, **kw) -> Config:
        """Seconds: two small dimensions, one seed, tiny nets and few steps."""
        base = dict(dims=(2, 16), seeds=(0,), n_blocks=3, width=8, steps=15, batch=16, n_eval=40, n_pairs=50)
        return cls(**{**base, "name": "smoke", **kw})

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "separation_rule": SEPARATION_RULE}


# ----- the problem, the nulls and the scores -----------------------------------------------------------


def make_target(dim: int, seed) -> tuple[np.ndarray, np.ndarray]:
    """A random Gaussian target ``(m, S)`` in R^dim: ``m ~ N(0, I/4)``, ``S = Q diag(s²) Qᵀ`` with Q a
    random rotation and ``log s`` uniform in [log 0.5, log 2]."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"dim: expected a positive integer, got {dim!r}")
    rng = np.random.default_rng(seed)
    m = rng.normal(scale=0.5, size=dim)
    q, r = np.linalg.qr(rng.normal(size=(dim, dim)))
    q = q * np.sign(np.diag(r))
    s = np.exp(rng.uniform(np.log(0.5), np.log(2.0), size=dim))
    return m, (q * s**2) @ q.T


def null_tracks(tracks: np.ndarray, kind: str, rng) -> np.ndarray:
    """The null ``kind`` (one of :data:`NULLS` but ``untrained``) built from ``tracks`` (N, L+1, D)."""
    tracks = np.asarray(tracks, dtype=np.float64)
    if tracks.ndim != 3 or tracks.shape[0] < 2 or tracks.shape[1] < 2:
        raise ValueError(f"tracks: expected shape (N ≥ 2, L+1 ≥ 2, D), got {tracks.shape}")
    rng = np.random.default_rng(rng)
    n, n_points, dim = tracks.shape
    x0 = tracks[:, :1]
    if kind == "shuffled":
        import otflow

        return otflow.shuffled_displacements(tracks, rng)
    if kind == "random_walk":
        scale = math.sqrt(np.mean(np.sum((tracks[:, -1] - tracks[:, 0]) ** 2, 1)) / ((n_points - 1) * dim))
        steps = rng.normal(scale=scale, size=(n, n_points - 1, dim))
        return np.concatenate([x0, x0 + np.cumsum(steps, axis=1)], axis=1)
    if kind == "independent":
        return np.stack([tracks[:, 0]] + [tracks[rng.permutation(n), l] for l in range(1, n_points)], axis=1)
    raise ValueError(f"kind: expected shuffled, random_walk or independent, got {kind!r}")


def _score(tracks, tx, target_var: float, pairs) -> dict:
    from toy_experiments.evaluation import evaluate_tracks

    rec = evaluate_tracks(tracks, tx=tx, target_var=target_var, pairs=pairs)
    return {k: float(v) for k, v in rec.items() if k != "segment_proportions"}


def _fit_pct(xl: np.ndarray, m: np.ndarray, S: np.ndarray) -> float:
    """``100 · W2²(N(mean, cov of the outputs), N(m, S)) / tr S``: how far the outputs' first two moments
    are from the target's, in percent of its variance."""
    import otflow

    return (
        100.0 * otflow.gaussian_w2_squared(xl.mean(0), np.cov(xl.T, bias=True).reshape(len(m), -1), m, S) / np.trace(S)
    )


# ----- the study ----------------------------------------------------------------------------------------


def train_moments(cfg: Config, dim: int, residual, seeds, m, S, *, progress=None, stop=None):
    r"""Train one net per entry of ``residual``/``seeds`` to push :math:`N(0, I_D)` onto :math:`N(m, S)`.

    The loss of model k sees only its output distribution, through its first two moments on a fresh
    batch :math:`z` of ``cfg.batch`` source points (the same batch for the models of one seed):

    .. math:: \ell_k = \|\bar z - m\|^2 + \|\widehat{\mathrm{Cov}}(z) - S\|_F^2 / \sqrt D
              + \tfrac{\lambda}{2}\|\theta_k\|^2 ,

    minimised by Adam with a cosine schedule; the exact OT map is one of its minimisers, and the loss
    does not single it out. (The exact minibatch ``W2²`` of the 2-D study is no estimate of ``W2²`` in
    high D at these batch sizes.) Returns the trained stack and each model's mean loss over the last 5 %
    of the steps.
    """
    import torch

    from toy_experiments.nets import BatchedNets

    net = BatchedNets(residual, seeds, dim=dim, n_blocks=cfg.n_blocks, width=cfg.width, init=cfg.init)
    uniq = sorted(set(seeds))
    index = torch.tensor([uniq.index(s) for s in seeds])
    gens = [torch.Generator().manual_seed(int(s) * 7919 + dim) for s in uniq]
    m_t, S_t = torch.as_tensor(m, dtype=torch.float32), torch.as_tensor(S, dtype=torch.float32)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    tail, loss_sum = max(1, cfg.steps // 20), torch.zeros(net.n_models, dtype=torch.float64)
    for step in range(cfg.steps):
        if stop is not None and stop():
            raise KeyboardInterrupt
        x = torch.stack([torch.randn(cfg.batch, dim, generator=g) for g in gens])[index]
        z = net(x)
        mean = z.mean(1)
        zc = z - mean[:, None]
        cov = zc.transpose(1, 2) @ zc / cfg.batch
        loss = (mean - m_t).pow(2).sum(1) + (cov - S_t).pow(2).sum((1, 2)) / math.sqrt(dim)
        total = loss.sum() + 0.5 * cfg.lam * net.sq_norms().sum()
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        sched.step()
        if step >= cfg.steps - tail:
            loss_sum += loss.detach().double()
        if progress is not None:
            progress(1)
    return net, (loss_sum / tail).numpy()


def cell_id(dim: int, arch: str, seed: int) -> str:
    return f"D{dim}-{arch}-s{seed}"


def _problem(cfg: Config, dim: int):
    import otflow
    from toy_experiments.problems import Problem

    m, S = make_target(dim, [cfg.target_seed, dim])
    source = otflow.GaussianMixture(np.ones(1), np.zeros((1, dim)), np.eye(dim)[None])
    target = otflow.GaussianMixture(np.ones(1), m[None], S[None])
    return Problem(f"gaussian-D{dim}", source, target, None, otflow.gaussian_map(np.zeros(dim), np.eye(dim), m, S))


def _score_cell(cfg, dim, arch, seed, tracks, untrained, x, tx, problem, pairs, fit_exact: float) -> dict:
    """The trained net's scores and its nulls' (see the module docstring)."""
    import otflow

    m, S = problem.target.means[0], problem.target.covs[0]
    var = float(np.trace(S))
    scores = {"trained": _score(tracks, tx, var, pairs), "untrained": _score(untrained, tx, var, pairs)}
    for i, kind in enumerate(("shuffled", "random_walk", "independent")):
        scores[kind] = _score(null_tracks(tracks, kind, [cfg.eval_seed, dim, seed, i]), tx, var, pairs)
    geo = otflow.geodesic_tracks(x, tx, cfg.n_blocks, sigma=np.arange(len(x)))
    scores["geodesic"] = _score(geo, tx, var, pairs)
    return {
        "id": cell_id(dim, arch, seed),
        "dim": dim,
        "arch": arch,
        "seed": seed,
        "fit_pct": _fit_pct(tracks[:, -1], m, S),
        "fit_pct_exact_map": fit_exact,
        "scores": scores,
    }


def _run_dim(cfg: Config, dim: int, todo: list[tuple[str, int]], out: Path, bar, stop) -> list[str]:
    """Train the nets of ``todo`` at dimension ``dim`` together, score each and write its cell."""
    import otflow
    from otflow.runs import write_json
    from toy_experiments.nets import BatchedNets

    problem = _problem(cfg, dim)
    x = problem.source.sample(cfg.n_eval, np.random.default_rng([cfg.eval_seed, dim]))
    tx = problem.exact_map(x)
    pairs = np.random.default_rng([cfg.eval_seed, dim, 1]).integers(0, cfg.n_eval, size=(cfg.n_pairs, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    fit_exact = _fit_pct(tx, problem.target.means[0], problem.target.covs[0])  # the sampling floor of the fit
    flags, seeds = [a == "residual" for a, _ in todo], [s for _, s in todo]
    before = BatchedNets(flags, seeds, dim=dim, n_blocks=cfg.n_blocks, width=cfg.width, init=cfg.init)
    t0 = time.perf_counter()
    bar.set_description(f"D={dim}: training {len(todo)} nets")
    m, S = problem.target.means[0], problem.target.covs[0]
    net, losses = train_moments(cfg, dim, flags, seeds, m, S, progress=bar.update, stop=stop)
    seconds = time.perf_counter() - t0
    done = []
    bar.set_description(f"D={dim}: scoring")
    for k, (arch, seed) in enumerate(todo):
        if stop is not None and stop():
            raise KeyboardInterrupt
        tracks, untrained = (
            otflow.record_tracks(model, x, blocks=list(model), batch_size=len(x))
            for model in (net.export(k), before.export(k))
        )
        cell = _score_cell(cfg, dim, arch, seed, tracks, untrained, x, tx, problem, pairs, fit_exact)
        cell |= {"train_loss": float(losses[k]), "train_seconds_group": seconds, "width": cfg.width}
        write_json(out / "cells" / f"{cell['id']}.json", cell)
        done.append(cell["id"])
        bar.update(1)
    return done


def _prepare_folder(cfg: Config, out: Path, resume: bool) -> None:
    import otflow
    from otflow.runs import prepare_run_folder, write_json

    prepare_run_folder(out, lambda doc: doc.get("config", {}), cfg.to_dict(), resume=resume, skip=("name", "threads"))
    env = otflow.environment_info(device="cpu")
    write_json(out / "config.json", {"kind": "toy-calibration", "config": cfg.to_dict(), "environment": env})


def run(cfg: Config, out, *, resume: bool = False, progress: bool = True, stop=None) -> tuple[list[dict], list[str]]:
    """Train and score every (D, arch, seed) cell, writing each as it finishes; then the summary files.

    Returns the cells on disk and the errors of the cells that failed (one line each). No plotting.
    ``stop()`` turning True ends the run with ``KeyboardInterrupt`` at the next safe point.
    """
    import torch
    from tqdm import tqdm

    from otflow.runs import write_json

    out = Path(out)
    _prepare_folder(cfg, out, resume)
    torch.set_num_threads(cfg.threads)
    plan = [(d, a, s) for d in cfg.dims for a in ARCHS for s in cfg.seeds]
    todo = [c for c in plan if not (out / "cells" / f"{cell_id(*c)}.json").exists()]
    dims = list(dict.fromkeys(d for d, _, _ in todo))
    bar = tqdm(total=len(dims) * cfg.steps + len(todo), disable=not progress, desc="calibration", dynamic_ncols=True)
    errors = []
    try:
        for dim in dims:
            torch.set_num_threads(cfg.threads)  # otflow's compiled solver can reset torch's thread count
            try:
                _run_dim(cfg, dim, [(a, s) for d, a, s in todo if d == dim], out, bar, stop)
            except (KeyboardInterrupt, MemoryError):
                raise
            except Exception as e:  # one dimension failing must not lose the others
                errors.append(f"D={dim}: {type(e).__name__}: {e}")
                traceback.print_exc(file=sys.stderr)
    finally:
        bar.close()
    cells = [json.loads(p.read_text()) for c in plan if (p := out / "cells" / f"{cell_id(*c)}.json").exists()]
    write_json(out / "metrics.json", cells)
    rows = summarise(cells)
    sep = separation(rows)
    write_json(out / "summary.json", {"rows": rows, "separation": sep, "rule": SEPARATION_RULE, "errors": errors})
    from otflow.runs import write_text

    write_text(out / "table.txt", format_table(rows, sep, n_blocks=cfg.n_blocks) + "\n")
    return cells, errors


# ----- summary, separation and the table ---------------------------------------------------------------


def summarise(cells: list[dict]) -> list[dict]:
    """One row per (D, arch, variant): mean and population std over seeds of every metric, and the fit."""
    groups: dict[tuple, list[dict]] = {}
    for c in cells:
        for variant, scores in c["scores"].items():
            groups.setdefault((c["dim"], c["arch"], variant), []).append((c, scores))
    rows = []
    for (dim, arch, variant), items in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] != "residual")):
        row = {"dim": dim, "arch": arch, "variant": variant, "n": len(items)}
        for key, _ in METRICS:
            vals = np.array([s[key] for _, s in items], dtype=float)
            row[key], row[key + "_std"] = float(np.mean(vals)), float(np.std(vals))
        if variant == "trained":
            row["fit_pct"] = float(np.mean([c["fit_pct"] for c, _ in items]))
            row["fit_pct_exact_map"] = float(np.mean([c["fit_pct_exact_map"] for c, _ in items]))
        rows.append(row)
    return rows


def _separates(a: dict, b: dict, key: str) -> bool:
    return abs(a[key] - b[key]) > 2 * max(a[key + "_std"], b[key + "_std"])


def separation(rows: list[dict], arch: str = "residual") -> dict:
    """Per metric: at each D, whether the trained ``arch`` nets are separated from each null and from
    all of them (:data:`SEPARATION_RULE`), and the smallest D from which they are not, at it and above."""
    index = {(r["dim"], r["arch"], r["variant"]): r for r in rows}
    dims = sorted({r["dim"] for r in rows if r["arch"] == arch})
    out = {}
    for key, _ in METRICS:
        per_dim = {}
        for d in dims:
            trained = index.get((d, arch, "trained"))
            if trained is None:
                continue
            nulls = [n for n in NULLS_OF[key] if (d, arch, n) in index]
            by_null = {n: _separates(trained, index[(d, arch, n)], key) for n in nulls}
            per_dim[d] = {"all": bool(by_null) and all(by_null.values()), "by_null": by_null}
        stops = None
        for d in reversed(list(per_dim)):
            if per_dim[d]["all"]:
                break
            stops = d
        out[key] = {"per_dim": {str(d): v for d, v in per_dim.items()}, "stops_from": stops}
    return out


def _cell(row, key) -> str:
    return "—" if row is None else f"{row[key]:.3g}±{row[key + '_std']:.2g}"


def format_table(rows: list[dict], sep: dict, *, n_blocks: int) -> str:
    """Per metric: D, the trained nets, each null and the geodesic (mean±std over seeds), and whether the
    trained residual nets are separated from every null (✓) or not (✗: the nulls it is not separated from)."""
    index = {(r["dim"], r["arch"], r["variant"]): r for r in rows}
    dims = sorted({r["dim"] for r in rows})
    cols = [("residual", "trained"), ("plain", "trained")] + [("residual", v) for v in (*NULLS, "geodesic")]
    titles = ["trained res", "trained plain", *(f"{v} (res)" for v in NULLS), "geodesic"]
    out = [
        f"rule: {SEPARATION_RULE}",
        f"references (high D): random walk LSS ≈ √L = {math.sqrt(n_blocks):.3g}, independent layers LSS ≈ L = "
        f"{n_blocks}",
    ]
    for key, label in METRICS:
        s = sep[key]
        ok = [d for d in dims if s["per_dim"].get(str(d), {}).get("all")]
        no = [d for d in dims if str(d) in s["per_dim"] and d not in ok]
        stops = s["stops_from"]
        verdict = (
            f"separated at D = {', '.join(map(str, ok)) or 'none'}; not at D = {', '.join(map(str, no)) or 'none'}; "
            + (f"stops separating from D = {stops} on" if stops is not None else "still separated at the largest D")
        )
        out += ["", f"== {label}: {verdict}", f"{'D':>5} " + " ".join(f"{t:>17}" for t in titles) + "  separated?"]
        for d in dims:
            cells = " ".join(f"{_cell(index.get((d, a, v)), key):>17}" for a, v in cols)
            pd = s["per_dim"].get(str(d))
            mark = (
                "—"
                if pd is None
                else ("✓" if pd["all"] else "✗ " + ",".join(n for n, v in pd["by_null"].items() if not v))
            )
            out.append(f"{d:>5} {cells}  {mark}")
    fit = [
        f"D={d}: {r['fit_pct']:.3g} (exact map {r['fit_pct_exact_map']:.3g})"
        for d in dims
        if (r := index.get((d, "residual", "trained")))
    ]
    title = "fit of the trained residual nets, 100·W2²(Gaussian fitted to the outputs, target)/tr S"
    out += ["", f"{title} (the exact map's outputs on the same points give the sampling floor): " + ", ".join(fit)]
    return "\n".join(out)


# ----- figure (from the saved run) -------------------------------------------------------------------


def make_figure(folder) -> Path:
    """``figures/calibration.png``: each metric against D, trained nets and null bands (mean ± std)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from otflow.runs import save_figure

    folder = Path(folder)
    rows = summarise(json.loads((folder / "metrics.json").read_text()))
    styles = {
        ("residual", "trained"): ("tab:blue", "-", "trained residual"),
        ("plain", "trained"): ("tab:red", "-", "trained plain"),
        ("residual", "untrained"): ("tab:gray", "--", "untrained (res)"),
        ("residual", "shuffled"): ("tab:olive", "--", "shuffled (res)"),
        ("residual", "random_walk"): ("tab:orange", "--", "random walk (res)"),
        ("residual", "independent"): ("tab:purple", "--", "independent (res)"),
        ("residual", "geodesic"): ("black", ":", "exact geodesic"),
    }
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    for ax, (key, label) in zip(axes.flat, METRICS):
        for (arch, variant), (color, ls, name) in styles.items():
            rs = sorted((r for r in rows if r["arch"] == arch and r["variant"] == variant), key=lambda r: r["dim"])
            if not rs:
                continue
            d = np.array([r["dim"] for r in rs])
            mu, sd = np.array([r[key] for r in rs]), np.array([r[key + "_std"] for r in rs])
            ax.plot(d, mu, ls, color=color, marker="o", ms=3, label=name)
            ax.fill_between(d, np.maximum(mu - sd, 0), mu + sd, color=color, alpha=0.15, lw=0)
        ax.set_xscale("log", base=2)
        if key in ("lss", "lsr", "energy_ratio"):  # ≥ 1 by definition
            ax.set_yscale("log")
            ax.set_ylim(bottom=0.8)
        elif key in ("map_uvp", "ot_cost_gap"):  # ≥ 0, 0 on the geodesic
            ax.set_yscale("symlog", linthresh=1e-2 if key == "ot_cost_gap" else 1.0)
            ax.set_ylim(bottom=0)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("D")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    path = save_figure(fig, folder / "figures" / "calibration.png", dpi=70)  # many panels: keep the PNG small
    plt.close(fig)
    return path


# ----- command line ----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    from otflow.experiment import add_common_options, add_config_options

    p = argparse.ArgumentParser(
        prog="python -m toy_experiments.calibration",
        description="Calibrate LSS, LSR, OTS, OT cost gap, energy ratio and map UVP against exact OT, "
        "from D = 2 to 512, against null tracks.",
        epilog="Exit status: 0 done, 1 a cell failed, 2 bad usage, 130 interrupted (rerun with --resume).",
    )
    add_common_options(
        p,
        out_help="run folder (default: runs/calibration-<name>-<time>)",
        resume_help="finish the run in --out, skipping its finished cells",
    )
    p.add_argument("--smoke", action="store_true", help="a run of seconds with tiny nets (used by the tests)")
    p.add_argument("--seed", type=int, default=None, help="first seed; seeds are SEED, SEED+1, ... (default 0)")
    p.add_argument("--n-seeds", type=int, default=None, help="number of seeds (default 3; smoke 1)")
    add_config_options(
        p, Config, skip=("seeds",), defaults={f.name: getattr(Config(), f.name) for f in dataclasses.fields(Config)}
    )
    return p


def _config(args) -> Config:
    from otflow.experiment import config_overrides

    kw = config_overrides(args, Config)
    factory = Config.smoke if args.smoke else Config
    if args.seed is not None or args.n_seeds is not None:
        first = 0 if args.seed is None else args.seed
        n = (1 if args.smoke else 3) if args.n_seeds is None else args.n_seeds
        if n < 1:
            raise ValueError(f"--n-seeds: expected a positive integer, got {n}")
        kw["seeds"] = tuple(range(first, first + n))
    return factory(**kw)


def main(argv=None) -> int:
    """Parse ``argv``, run the calibration, print the table, draw the figure. Returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        cfg = _config(args)
    except (ValueError, TypeError) as e:
        parser.error(str(e))
    if args.resume and not args.out:
        parser.error("--resume needs --out (the run folder to finish)")
    out = Path(args.out) if args.out else Path("runs") / f"calibration-{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    from otflow.experiment.cli import graceful_stop

    t0 = time.perf_counter()
    try:
        with graceful_stop() as stop:
            cells, errors = run(cfg, out, resume=args.resume, progress=args.progress, stop=stop)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        n = len(list((out / "cells").glob("*.json"))) if (out / "cells").exists() else 0
        print(f"\ninterrupted: {n} finished cell(s) in {out}; finish with --out {out} --resume", file=sys.stderr)
        return 130
    print((out / "table.txt").read_text())
    if args.figures and cells:
        print(f"figure: {make_figure(out)}")
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    from otflow.runs import write_timing

    write_timing(out, time.perf_counter() - t0)
    print(f"run folder: {out}   ({time.perf_counter() - t0:.1f} s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
