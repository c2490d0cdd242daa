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


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="mnist", choices=("mnist", "cifar10", "cifar100"), help="data set (default mnist)")
    p.add_argument("--arch", default="resnet", choices=("resnet", "plain"), help="network (default resnet)")
    p.add_argument("--k", type=int, default=1, help="stages K of the SPEC Table 1 net (default 1)")
    p.add_argument("--n-train", type=int, default=10_000, help="training images per timed epoch (default 10000)")
    p.add_argument("--probe-n", type=int, default=1000, help="test images the probe tracks (default 1000)")
    p.add_argument("--reps", type=int, default=3, help="epochs timed with the probe off and on, each (default 3)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--data-dir", default=None, help="data directory (default $OTFLOW_DATA)")
    p.add_argument("--json", default=None, help="also write the numbers to this file")
    return p


def _time_epochs(model, opt, data, cfg, a):
    """Alternate probe-off and probe-on epochs ``a.reps`` times; the per-epoch timings as lists."""
    x, y = data.x_train[: a.n_train], data.y_train[: a.n_train]
    xp, yp = data.x_test[: a.probe_n], data.y_test[: a.probe_n]
    dev = torch.device("cpu")
    t = {"off": [], "on": [], "probe": [], "ips": [], "within": []}
    for rep in range(a.reps):
        for with_probe in (False, True):
            t0 = time.perf_counter()
            tr = _train_epoch(model, opt, (x, y), cfg, 2 * rep + with_probe, dev, False, False, "")
            if with_probe:
                rec = _probe_record(model, xp, yp, cfg)
                t["probe"].append(rec["probe_s"])
                t["within"].append((tr["train_s"] + rec["probe_s"]) / tr["train_s"])
            t["on" if with_probe else "off"].append(time.perf_counter() - t0)
            t["ips"].append(tr["img_per_s"])
    return t


def _summary(a, t, full_n, loads):
    t_off, t_on, t_probe, rate = (statistics.median(t[k]) for k in ("off", "on", "probe", "ips"))
    full_epoch = full_n / rate
    return {
        "setting": f"{a.dataset} {a.arch} K={a.k}",
        "n_train_epoch": a.n_train,
        "probe_n": a.probe_n,
        "reps": a.reps,
        "threads": a.threads,
        "epoch_s_probe_off": t_off,
        "epoch_s_probe_on": t_on,
        "probe_s": t_probe,
        "ratio_on_off": t_on / t_off,
        "ratio_within_epoch": statistics.median(t["within"]),
        "train_img_per_s": rate,
        "full_n_train": full_n,
        "full_epoch_s_estimate": full_epoch,
        "overhead_full_epoch": t_probe / full_epoch,
        "loadavg_1min_before_after": list(loads),
        "all_off_s": t["off"],
        "all_on_s": t["on"],
    }


def _line(o) -> str:
    return (
        f"{o['setting']}: epoch of {o['n_train_epoch']:,} images: probe off {o['epoch_s_probe_off']:.2f} s, "
        f"on {o['epoch_s_probe_on']:.2f} s, ratio {o['ratio_on_off']:.3f} (median of {o['reps']}); within the "
        f"probe-on epochs (train + probe) / train {o['ratio_within_epoch']:.3f}; probe {o['probe_s']:.2f} s for "
        f"{o['probe_n']} images; {o['train_img_per_s']:.0f} train img/s -> full epoch of {o['full_n_train']:,} "
        f"~{o['full_epoch_s_estimate']:.0f} s, probe overhead {100 * o['overhead_full_epoch']:.2f} %; load avg "
        f"{o['loadavg_1min_before_after'][0]:.2f} -> {o['loadavg_1min_before_after'][1]:.2f} on {os.cpu_count()} cores"
    )


def main(argv=None) -> int:
    a = _parser().parse_args(argv)
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
    torch.manual_seed(0)
    model = build_model(a.dataset, a.arch, a.k, n_classes=data.n_classes)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.wd)
    load0 = os.getloadavg()[0]
    t = _time_epochs(model, opt, data, cfg, a)
    out = _summary(a, t, len(data.x_train), (load0, os.getloadavg()[0]))
    print(_line(out))
    if a.json:
        from otflow.runs import write_json

        write_json(a.json, out)
    else:
        print(json.dumps({k: v for k, v in out.items() if not k.startswith("all_")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
