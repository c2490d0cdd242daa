"""Training throughput (images/s) of every Table 1 architecture, with the training loop of the runs.

    python benchmarks/images_throughput.py --threads 2
    python benchmarks/images_throughput.py --only cifar10-k1 --images 2048
    python benchmarks/images_throughput.py --only cifar10-k1 --formats both   # NCHW vs channels-last

Real data only (``--data-dir`` or ``$OTFLOW_DATA``). For each (dataset, K, arch) it trains one epoch
over the first ``--images`` training images (K=4: ``--images-k4``) with batch 128 through
``image_experiments.run._train_epoch`` (augmentation on for CIFAR; bf16 autocast on CUDA and
channels-last for the conv nets, as in a run) after one warm-up batch, and prints images/s. On a shared machine, numbers
move with the load: the 1-minute load average is printed with each line.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from image_experiments.data import DataError
from image_experiments.models import build_model
from image_experiments.run import _data, _pick_device, _train_epoch, profile_config, uses_channels_last

SETTINGS = {
    "mnist": ("mnist", 1),
    "cifar10-k1": ("cifar10", 1),
    "cifar10-k4": ("cifar10", 4),
}


def _rate(dataset, arch, k, n, data, cfg, dev, amp, cl) -> dict:
    """One epoch of the run's training loop over the first ``n`` images, after one warm-up batch."""
    torch.manual_seed(0)
    model = build_model(dataset, arch, k, n_classes=data.n_classes).to(dev)
    if cl:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x, y = data.x_train[:n].to(dev), data.y_train[:n].to(dev)
    _train_epoch(model, opt, (x[:256], y[:256]), cfg, 0, dev, amp, cl, "")  # warm-up
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    tr = _train_epoch(model, opt, (x, y), cfg, 1, dev, amp, cl, "")
    el = time.perf_counter() - t0
    return {"rate": tr["images"] / el, "images": tr["images"], "s": el, "load0": load0}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", choices=sorted(SETTINGS), action="append", help="a setting to time (repeatable)")
    p.add_argument("--images", type=int, default=4096, help="training images per timed epoch (default 4096)")
    p.add_argument("--images-k4", type=int, default=128, help="the same for K=4 nets (default 128)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.add_argument("--data-dir", default=None, help="folder with mnist/ and cifar10/ (default $OTFLOW_DATA)")
    p.add_argument(
        "--formats",
        choices=("run", "both"),
        default="run",
        help="memory format of the conv nets: as a run uses it (run), or NCHW and channels-last side by side (both)",
    )
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    dev = _pick_device(a.device)
    amp = dev.type == "cuda"
    for key in a.only or SETTINGS:
        dataset, k = SETTINGS[key]
        n = a.images_k4 if k == 4 else a.images
        for arch in ("resnet", "plain"):
            cfg = profile_config(
                "full", dataset, arch, k, n_train=n, data_dir=a.data_dir, download=False, progress=False
            )
            try:
                data = _data(cfg)
            except DataError as err:
                print(f"error: {err}", file=sys.stderr)
                return 1
            formats = [uses_channels_last(dataset)] if a.formats == "run" or dataset == "mnist" else [False, True]
            for cl in formats:
                rate = _rate(dataset, arch, k, n, data, cfg, dev, amp, cl)
                print(
                    f"{dataset:8s} K={k} {arch:6s} {rate['rate']:8.1f} img/s  ({rate['images']} images in "
                    f"{rate['s']:.1f} s, {dev}{' bf16' if amp else ''}, {'channels-last' if cl else 'NCHW'}, "
                    f"{a.threads} threads, load avg {rate['load0']:.2f} -> {os.getloadavg()[0]:.2f})",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
