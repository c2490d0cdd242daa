"""How much the per-epoch probe (tracks → LSS/LSR per stage, probe loss/accuracy) adds to an epoch.

    python benchmarks/probe_overhead.py --dataset mnist --n-train 10000 --reps 3 --threads 2
    python benchmarks/probe_overhead.py --dataset cifar10 --k 1 --n-train 2000 --reps 3

Real data only (``--data-dir`` or ``$OTFLOW_DATA``; it stops with a message when the data are
missing, never falls back to synthetic images). In one process and with one model it alternates
epochs of the training loop of :mod:`image_experiments.run` (``_train_epoch``, the same code the runs
use) with the probe off and on, ``--reps`` times each, so that load drift on a shared machine hits
both alike, and prints the median times and their ratio, and the ratio (train + probe) / train
within each probe-on epoch (less exposed to load changes between epochs). The epoch covers ``--n-train``
images; since the probe's cost does not grow with the training set, the script also prints the
overhead extrapolated to an epoch over the full training set (from the measured images/s), which is
what a run pays. The 1-minute load average (``os.getloadavg``) is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch

from image_experiments.data import DataError
from image_experiments.models import build_model
from image_experiments.run import _data, _probe_record, _train_epoch, profile_config


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="mnist", choices=("mnist", "cifar10", "cifar100"))
    p.add_argument("--arch", default="resnet", choices=("resnet", "plain"))
    p.add_argument("--k", type=int, default=1)
    p.add_argument("--n-train", type=int, default=10_000)
    p.add_argument("--probe-n", type=int, default=1000)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--json", default=None, help="also write the numbers to this file")
    a = p.parse_args(argv)

    torch.set_num_threads(a.threads)
    cfg = profile_config(
        "cpu" if a.k == 1 else "full",
        a.dataset,
        a.arch,
        a.k,
        n_train=a.n_train,
        probe_n=a.probe_n,
        data_dir=a.data_dir,
        download=False,
        progress=False,
        device="cpu",
    )
    try:
        data = _data(cfg)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    x, y = data.x_train[: a.n_train], data.y_train[: a.n_train]
    xp, yp = data.x_test[: a.probe_n], data.y_test[: a.probe_n]
    torch.manual_seed(0)
    model = build_model(a.dataset, a.arch, a.k, n_classes=data.n_classes)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.wd)
    dev = torch.device("cpu")
    load0 = os.getloadavg()[0]
    off, on, probe, ips, within = [], [], [], [], []
    for rep in range(a.reps):
        for with_probe in (False, True):
            t0 = time.perf_counter()
            tr = _train_epoch(model, opt, (x, y), cfg, 2 * rep + with_probe, dev, False, False, "")
            if with_probe:
                rec = _probe_record(model, xp, yp, cfg)
                probe.append(rec["probe_s"])
                within.append((tr["train_s"] + rec["probe_s"]) / tr["train_s"])
            el = time.perf_counter() - t0
            (on if with_probe else off).append(el)
            ips.append(tr["img_per_s"])
    load1 = os.getloadavg()[0]
    t_off, t_on, t_probe, rate = (statistics.median(v) for v in (off, on, probe, ips))
    full_n = len(data.x_train)
    full_epoch = full_n / rate
    out = {
        "setting": f"{a.dataset} {a.arch} K={a.k}",
        "n_train_epoch": a.n_train,
        "probe_n": a.probe_n,
        "reps": a.reps,
        "threads": a.threads,
        "epoch_s_probe_off": t_off,
        "epoch_s_probe_on": t_on,
        "probe_s": t_probe,
        "ratio_on_off": t_on / t_off,
        "ratio_within_epoch": statistics.median(within),
        "train_img_per_s": rate,
        "full_epoch_s_estimate": full_epoch,
        "overhead_full_epoch": t_probe / full_epoch,
        "loadavg_1min_before_after": [load0, load1],
        "all_off_s": off,
        "all_on_s": on,
    }
    print(
        f"{out['setting']}: epoch of {a.n_train:,} images: probe off {t_off:.2f} s, on {t_on:.2f} s, "
        f"ratio {t_on / t_off:.3f} (median of {a.reps}); within the probe-on epochs (train + probe) / train "
        f"{statistics.median(within):.3f}; probe {t_probe:.2f} s for {a.probe_n} images; "
        f"{rate:.0f} train img/s -> full epoch of {full_n:,} ~{full_epoch:.0f} s, probe overhead "
        f"{100 * t_probe / full_epoch:.2f} %; load avg {load0:.2f} -> {load1:.2f} on {os.cpu_count()} cores"
    )
    if a.json:
        from otflow.runs import write_json

        write_json(a.json, out)
    else:
        print(json.dumps({k: v for k, v in out.items() if not k.startswith("all_")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
