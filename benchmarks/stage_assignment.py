"""Benchmark: the assignment of a real residual stage, the problem OTS solves on every image run.

    python benchmarks/stage_assignment.py --run runs/images/cifar10_resnet_k1_wd0.01_seed0_converged \
        --data-dir ../shared/data --n 10000 --out benchmarks/results_stage_assignment.json
    python benchmarks/stage_assignment.py --markdown benchmarks/results_stage_assignment.json

The issue's "for realism" case: the input ``x⁰`` and output ``xᴸ`` of the first stage of a trained
image net (a run folder's ``checkpoint.pt``; CIFAR-10 K=1: D = 8,192), on its first ``n`` training
images, solved in a fresh process by otflow and by the peers on their dense matrix, exactly as in
``benchmarks/first_call.py`` (same timing and the same table). The untrained net of the same seed
(BatchNorm re-estimated on 2,000 training images, as the image runs do for their null) is a second
row, unless ``--no-untrained``.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import first_call  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def load_net(run_dir: Path, data_dir, n: int):
    """The run's trained net (eval mode, CPU), its untrained twin, and its first ``n`` training images."""
    import torch

    from image_experiments import analysis, run
    from image_experiments.data import load_dataset
    from image_experiments.models import build_model

    ckpt = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)
    cfg = run.Config.from_dict(ckpt["config"])
    data = load_dataset(cfg.dataset, data_dir, download=False, progress=False)
    n_train = min(cfg.n_train or len(data.x_train), len(data.x_train))
    mean, std = run._channel_stats(data.x_train[:n_train])
    kw = dict(n_classes=data.n_classes, bn=cfg.bn, width=cfg.width, depth=cfg.depth, head=cfg.head, mean=mean, std=std)
    from otflow import seed_everything

    seed_everything(cfg.seed)
    untrained = build_model(cfg.dataset, cfg.arch, cfg.k, **kw)
    trained = copy.deepcopy(untrained)
    trained.load_state_dict(ckpt["model"])
    analysis.recalibrate_bn(untrained, data.x_train[: min(cfg.bn_recalib_n, n_train)], batch=cfg.eval_batch)
    return cfg, trained.eval(), untrained.eval(), data.x_train[:n]


def stage_ends(model, images, chunk: int = 250) -> tuple[np.ndarray, np.ndarray]:
    """``x⁰`` and ``xᴸ`` of the first stage (float64, flattened), chunk by chunk (the whole tracks of
    10,000 CIFAR images would take 3.6 GB)."""
    import torch

    import otflow
    from image_experiments.analysis import to_float

    first, last = [], []
    with torch.no_grad():
        for s in range(0, len(images), chunk):
            t = otflow.record_stage_tracks(model, to_float(images[s : s + chunk]), model.stages[:1])[0]
            first.append(t[:, 0].astype(np.float64))
            last.append(t[:, -1].astype(np.float64))
    return np.concatenate(first), np.concatenate(last)


def row(label: str, x: np.ndarray, y: np.ndarray, peers: list[str], tmp: Path) -> dict:
    """One fresh-process row of ``first_call`` for the pair ``(x, y)``."""
    xf, yf = str(tmp / "x.npy"), str(tmp / "y.npy")
    np.save(xf, x)
    np.save(yf, y)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    first_call.fresh("otflow", xf, yf, env)  # fills numba's cache; not timed
    out = {
        "case": label,
        "n": len(x),
        "D": x.shape[1],
        "cold_cache": False,
        "otflow": first_call.fresh("otflow", xf, yf, env),
    }
    for peer in peers:
        res = first_call.fresh(peer, xf, yf, env)
        res["rel_cost_diff"] = abs(res["cost"] - out["otflow"]["cost"]) / max(abs(res["cost"]), 1e-300)
        out[peer] = res
    if peers:
        out["fastest_peer_over_otflow"] = min(out[p]["seconds"] for p in peers) / out["otflow"]["seconds"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, help="a finished image run folder holding checkpoint.pt")
    ap.add_argument("--data-dir", default=None, help="the data folder (default $OTFLOW_DATA)")
    ap.add_argument(
        "--n",
        type=int,
        nargs="+",
        default=[10_000],
        help="problem sizes: the first n training images pushed through the stage (one row per size and net)",
    )
    ap.add_argument("--peers", nargs="*", default=["lap", "scipy"], help="peers to run (pot, scipy, lap)")
    ap.add_argument("--no-untrained", action="store_true", help="skip the untrained net's row")
    ap.add_argument("--out", default=None, metavar="FILE", help="write the rows as JSON to FILE")
    ap.add_argument("--markdown", default=None, metavar="FILE", help="print the rows of a saved --out FILE as markdown")
    args = ap.parse_args(argv)
    if args.markdown:
        import json

        print(first_call.markdown(json.loads(Path(args.markdown).read_text())["rows"]), end="")
        return 0
    if args.run is None or not (args.run / "checkpoint.pt").is_file():
        print(f"error: --run: expected a run folder with checkpoint.pt, got {args.run}", file=sys.stderr)
        return 2
    if min(args.n) < 2 or any(p not in ("pot", "scipy", "lap") for p in args.peers):
        print("error: --n must be >= 2 and --peers a subset of pot, scipy, lap", file=sys.stderr)
        return 2
    cfg, trained, untrained, images = load_net(args.run, args.data_dir, max(args.n))
    nets = [("trained", trained)] + ([] if args.no_untrained else [("untrained", untrained)])
    rows = []
    meta = {"run": args.run.name, "load_average_at_start": os.getloadavg(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        ends = {name: stage_ends(net, images) for name, net in nets}
        for n in sorted(args.n):
            for name, (x, y) in ends.items():
                label = f"{cfg.dataset} {cfg.arch} stage 1, λ={cfg.wd:g}, {name}"
                rows.append(row(label, x[:n], y[:n], args.peers, Path(tmp)))
                print(first_call.markdown(rows[-1:]).splitlines()[-1], flush=True)
                if args.out:
                    from otflow.runs import write_json

                    write_json(args.out, {**meta, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
