"""FLOPs per image of the CIFAR nets and an estimate of the gpu profile's time on one H100 (not a measurement).

    python benchmarks/flops.py                    # the tables of docs/images.md "GPU profile"
    python benchmarks/flops.py --m 10000 --json estimate.json

FLOPs are counted by :class:`torch.utils.flop_counter.FlopCounterMode` on the ``meta`` device (no
arithmetic is done, so the K=4 net costs milliseconds): convolutions and linear layers, forward, and
forward + backward of the cross-entropy loss, per image (1 multiply-add = 2 FLOPs; BatchNorm, ReLU
and the residual adds are not counted, they are memory-bound).

The time estimate combines three things, each stated in :data:`ASSUMED` or timed here:

* GPU arithmetic: FLOPs divided by an *assumed* sustained throughput on an H100 SXM (a fraction of
  its 989 TFLOPS dense bf16 peak for training; TF32 for the float32 measurement forwards; FP64 for
  the OT solver's cost blocks);
* host (CPU) work of the probe and of the final measurements, which run in numpy on the tracks
  copied from the GPU: *timed on this machine* per sample with synthetic tracks of each stage's shape
  (``otflow`` LSS/LSR for the probe, ``analysis._StageStream`` with and without the shuffled null,
  ``analysis.variation_sums`` for robustness), then scaled to the sample counts of the profile;
* the linear Gaussian control (host BLAS/LAPACK): an ``eigh`` and a product timed here, scaled by
  the cube of the order (:func:`gaussian_host_seconds`);
* the solver's work, counted as full ``m × m × D`` cost passes by running the torch engine on the CPU
  on a small track-like problem and scaled to the stage dimensions (3 solves per stage: trained,
  shuffled null, untrained null).

Runs are assumed to share the GPU ``--workers`` at a time (Ray, ``--gpus-per-task 1/workers``), so
the 28 runs take about ``max(GPU seconds, host seconds / workers)``. Runs in seconds on a CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's packages, not an installed copy

import otflow
from image_experiments import analysis
from image_experiments.models import build_model
from image_experiments.run import profile_config
from otflow import solver as _solver
from otflow.runs import write_json

# assumptions for the estimate (H100 SXM: 989 TFLOPS dense bf16, 494 TF32, 67 FP64 tensor core)
ASSUMED = {
    "train_tflops": {1: 0.05 * 989, 4: 0.30 * 989},  # K=1: 32-channel convs, memory/launch bound
    "fp32_tflops": {1: 0.05 * 494, 4: 0.30 * 494},  # measurement forwards in float32 (TF32 convs)
    "fp64_tflops": 0.5 * 67,  # the OT solver's float64 cost blocks
    "workers": 8,  # runs sharing the GPU (16 host cores, 2 per run)
}
GRID = {1: 9, 4: 5}  # λ values of Table 4 (K=1) and Table 6 (K=4), 2 nets each, one seed
TRAIN_IMAGES = 50_000


def flops_per_image(arch: str, k: int, n_classes: int = 10) -> tuple[float, float]:
    """(forward, forward + backward) FLOPs of one CIFAR image through the Table 1 net."""
    with torch.device("meta"):
        model = build_model("cifar10", arch, k, n_classes=n_classes)
        x = torch.empty(2, 3, 32, 32)
        y = torch.zeros(2, dtype=torch.long)
    with FlopCounterMode(display=False) as fwd:
        model(x)
    with FlopCounterMode(display=False) as both:
        torch.nn.functional.cross_entropy(model(x), y).backward()
    return fwd.get_total_flops() / 2, both.get_total_flops() / 2


def _stage_shapes(k: int) -> list[tuple[int, int]]:
    """(points per track L+1, dimension D) of each stage."""
    with torch.device("meta"):
        model = build_model("cifar10", "resnet", k, n_classes=10)
    return [(len(s) + 1, int(np.prod(d))) for s, d in zip(model.stages, model.stage_dims)]


def _timed(fn, *args, reps: int = 3) -> float:
    """Best of ``reps`` wall times of ``fn(*args)``."""
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best


def _lss_lsr(t: np.ndarray) -> None:
    otflow.line_shape_score(t, eps=0.0)
    otflow.line_shape_ratio(t)


def host_seconds_per_sample(k: int, m: int, floats: int = 2_000_000) -> dict:
    """Host seconds per sample, summed over stages, of the numpy work on tracks (timed here on
    ``n ≈ floats / (points × D)`` synthetic tracks per stage, best of 3)."""
    rng = np.random.default_rng(0)
    out = {"probe": 0.0, "stream_null": 0.0, "stream": 0.0, "variation": 0.0}
    for pts, dim in _stage_shapes(k):
        n = max(4, floats // (pts * dim))
        t = rng.standard_normal((n, pts, dim), dtype=np.float32)
        t2 = t + 0.01 * rng.standard_normal(t.shape, dtype=np.float32)
        perms = [rng.permutation(m) for _ in range(pts - 1)]
        null = analysis._StageStream(m, pts - 1, dim, 0.0, perms)
        plain = analysis._StageStream(m, pts - 1, dim, 0.0, None)
        out["probe"] += _timed(_lss_lsr, t) / n
        out["stream_null"] += _timed(null.add, 0, t) / n
        out["stream"] += _timed(plain.add, 0, t) / n
        out["variation"] += _timed(analysis.variation_sums, [t], [t2]) / n
    return out


def gaussian_host_seconds(k: int, m: int, max_dim: int = 8192, size: int = 400) -> float:
    """Host seconds of the linear Gaussian control of one run (all stages), from an ``eigh`` and a
    matrix product of order ``size`` timed here and scaled by the cube of the order.

    Per stage of dimension D: the span coordinates (Gram matrix of the 2m points, one ``eigh`` of
    order 2m) when ``D > 2m``, then in ``r = min(D, 2m)`` dimensions two covariances, three ``eigh``
    and about ``14 r³`` FLOPs of products (:func:`otflow.gaussian_map`); skipped when ``r > max_dim``.
    """
    rng = np.random.default_rng(2)
    a = rng.standard_normal((size, size))
    spd = a @ a.T
    eigh_s = _timed(np.linalg.eigh, spd)
    gemm_rate = 2 * size**3 / _timed(np.matmul, a, a)  # FLOP/s of this machine's BLAS
    total = 0.0
    for _, dim in _stage_shapes(k):
        r = min(dim, 2 * m)
        if r > max_dim:
            continue
        total += 3 * eigh_s * (r / size) ** 3 + (14 * r**3 + 4 * m * r**2) / gemm_rate
        if dim > 2 * m:
            total += eigh_s * (2 * m / size) ** 3 + 2 * (2 * m) ** 2 * dim / gemm_rate
    return total


def solver_passes(m: int = 600, dim: int = 16) -> float:
    """Full ``m × m`` cost passes of one solve of a track-like problem (torch engine, counted on the CPU)."""
    rows = [0]
    original = _solver._TorchBlocks._costs

    def counting(self, r):
        rows[0] += len(r)
        return original(self, r)

    rng = np.random.default_rng(1)
    x = rng.standard_normal((m, dim))
    _solver._TorchBlocks._costs = counting
    try:
        otflow.solve_assignment(x, x + 0.5 * rng.standard_normal((m, dim)), engine="torch", device="cpu")
    finally:
        _solver._TorchBlocks._costs = original
    return rows[0] / m


def _measurement_gpu_flops(k: int, fwd: float, bwd: float, cfg, m: int, passes: float) -> tuple[float, float]:
    """(fp32/TF32 forward FLOPs, fp64 solver FLOPs) of one run's final measurements."""
    n_blocks = sum(p - 1 for p, _ in _stage_shapes(k))
    eps = len(cfg.eps_grid)
    images = (
        10_000 + m  # evaluate (test, first 10,000 training images); stage metrics of the trained net
        + cfg.bn_recalib_n + m  # untrained null: BN re-estimation, its stage metrics
        + cfg.robust_n * (1 + 2 * eps * 2)  # clean tracks; per ε and kind: the perturbed forward, tracks
        + cfg.ablation_importance_n + cfg.ablation_n * len(cfg.ablation_fracs) * n_blocks
    )  # fmt: skip
    flops = images * fwd + cfg.robust_n * eps * bwd  # FGSM's gradient per ε
    ot = 3 * sum(passes * m * m * dim * 2 for _, dim in _stage_shapes(k))
    return flops, ot


def estimate(m: int, workers: int) -> dict:
    """Per K: FLOPs per image, and the estimated seconds per epoch, per run and for the grid."""
    passes = solver_passes()
    out = {"assumed": {**ASSUMED, "workers": workers}, "m": m, "solver_passes": passes, "k": {}}
    for k in (1, 4):
        cfg = profile_config("gpu", "cifar10", "resnet", k)
        fwd, both = flops_per_image("resnet", k)
        host = host_seconds_per_sample(k, m)
        train_s = TRAIN_IMAGES * both / (ASSUMED["train_tflops"][k] * 1e12)
        probe_gpu = cfg.probe_n * fwd / (ASSUMED["fp32_tflops"][k] * 1e12)
        meas_flops, ot_flops = _measurement_gpu_flops(k, fwd, both - fwd, cfg, m, passes)
        meas_gpu = meas_flops / (ASSUMED["fp32_tflops"][k] * 1e12) + ot_flops / (ASSUMED["fp64_tflops"] * 1e12)
        rn = cfg.robust_n * 2 * len(cfg.eps_grid)
        gauss = gaussian_host_seconds(k, m, cfg.gaussian_max_dim)
        meas_host = m * (host["stream_null"] + host["stream"]) + rn * host["variation"] + gauss
        gpu_run = cfg.epochs * (train_s + probe_gpu) + meas_gpu
        host_run = cfg.epochs * cfg.probe_n * host["probe"] + meas_host
        out["k"][k] = {
            "flops_forward": fwd,
            "flops_forward_backward": both,
            "epochs": cfg.epochs,
            "train_epoch_s": train_s,
            "probe_epoch_s": {"gpu": probe_gpu, "host": cfg.probe_n * host["probe"]},
            "measure_s": {
                "gpu": meas_gpu,
                "host": meas_host,
                "solver_gpu": ot_flops / (ASSUMED["fp64_tflops"] * 1e12),
                "gaussian_host": gauss,
            },
            "run_s": {"gpu": gpu_run, "host": host_run},
            "runs": 2 * GRID[k],
            "host_per_sample_s": host,
        }
    runs = out["k"].values()
    gpu = sum(r["runs"] * r["run_s"]["gpu"] for r in runs)
    host = sum(r["runs"] * r["run_s"]["host"] for r in runs)
    out["grid_s"] = {"gpu": gpu, "host": host, "wall": max(gpu, host / workers), "one_worker": gpu + host}
    return out


def _table(est: dict) -> str:
    lines = [
        "| | K=1 | K=4 |",
        "|---|---|---|",
    ]
    k1, k4 = est["k"][1], est["k"][4]

    def row(label, f):
        lines.append(f"| {label} | {f(k1)} | {f(k4)} |")

    row("forward GFLOPs / image", lambda r: f"{r['flops_forward'] / 1e9:.3f}")
    row("forward + backward GFLOPs / image", lambda r: f"{r['flops_forward_backward'] / 1e9:.3f}")
    row("assumed sustained TFLOPS (training, bf16)", lambda r: f"{ASSUMED['train_tflops'][r['k']]:.0f}")
    row("training s / epoch (50,000 images)", lambda r: f"{r['train_epoch_s']:.2f}")
    row("probe s / epoch: GPU / host", lambda r: f"{r['probe_epoch_s']['gpu']:.2f} / {r['probe_epoch_s']['host']:.1f}")
    row("epochs", lambda r: f"{r['epochs']}")
    row(
        f"final measurements s (m = {est['m']:,}): GPU (of it OT) / host (of it Gaussian control)",
        lambda r: (
            f"{r['measure_s']['gpu']:.1f} ({r['measure_s']['solver_gpu']:.1f}) / "
            f"{r['measure_s']['host']:.0f} ({r['measure_s']['gaussian_host']:.0f})"
        ),
    )
    row("one run s: GPU / host", lambda r: f"{r['run_s']['gpu']:.0f} / {r['run_s']['host']:.0f}")
    row("runs (Table 4 / Table 6, one seed)", lambda r: f"{r['runs']}")
    g = est["grid_s"]
    lines.append(
        f"\n28 runs: GPU {g['gpu'] / 60:.1f} min, host {g['host'] / 60:.1f} min; with "
        f"{est['assumed']['workers']} runs sharing the GPU about **{g['wall'] / 60:.1f} min**; "
        f"one run at a time {g['one_worker'] / 60:.1f} min. "
        f"Solver: {est['solver_passes']:.1f} full cost passes per solve."
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/flops.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--m", type=int, default=1000, help="test images of the final stage metrics (CIFAR-10 here: 1,000)")
    p.add_argument("--workers", type=int, default=ASSUMED["workers"], help="runs sharing the GPU at a time")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the estimate as JSON")
    args = p.parse_args(argv)
    if args.m < 2 or args.workers < 1:
        p.error("--m must be at least 2 and --workers at least 1")
    est = estimate(args.m, args.workers)
    for k in (1, 4):
        est["k"][k]["k"] = k
    print(_table(est))
    if args.json:
        write_json(args.json, est)
    return 0


if __name__ == "__main__":
    sys.exit(main())
