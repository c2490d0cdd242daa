"""benchmarks/flops.py: the counted FLOPs equal the conv/linear multiply-adds written out by hand."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "flops.py"


def _flops():
    spec = importlib.util.spec_from_file_location("flops_benchmark", _PATH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("flops_benchmark", mod)
    spec.loader.exec_module(mod)
    return mod


def _conv(side, cin, cout, k=3):
    return side * side * cin * cout * k * k  # multiply-adds of one conv per image (output side)


def test_flops_per_image_match_hand_counts():
    mod = _flops()
    # K=1: 3x3 stride-2 lift 3->32 at 16x16, 10 blocks of two 3x3 convs 32->32 at 16x16, linear 32->10
    k1 = _conv(16, 3, 32) + 20 * _conv(16, 32, 32) + 32 * 10
    # K=4: lift 3->64 at 32x32; per stage 5 blocks of two convs; three stride-2 transitions with a
    # 1x1 shortcut (residual net); linear 512->10
    widths, sides = (64, 128, 256, 512), (32, 16, 8, 4)
    k4 = _conv(32, 3, 64) + sum(10 * _conv(s, w, w) for w, s in zip(widths, sides)) + 512 * 10
    k4 += sum(
        _conv(s, wi, wo) + _conv(s, wo, wo) + _conv(s, wi, wo, 1) for wi, wo, s in zip(widths, widths[1:], sides[1:])
    )
    for k, macs in ((1, k1), (4, k4)):
        fwd, both = mod.flops_per_image("resnet", k)
        assert fwd == 2 * macs
        # backward: gradients of the weights and of the inputs (none for the first layer's input)
        assert 2.9 * fwd < both < 3.0 * fwd
