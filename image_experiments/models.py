"""The networks of SPEC §6, Table 1, as residual or plain nets whose stages ``record_stage_tracks`` reads.

``T = G_K ∘ F_K ∘ … ∘ G_1 ∘ F_1 ∘ G_0`` (SPEC (19)): ``G_0`` lifts the input, each stage ``F_k``
is a stack of same-dimension blocks, the ``G_k`` in between change the dimension, and the head
``G_K`` is global average pool → linear (``head="linear"``, SPEC §6's default) or
``σ(BN(·))`` → pool → linear (``head="bn-relu"``, the usual pre-activation ResNet head, which
makes the loss blind to the scale of ``x^L``). Every model exposes ``model.stages`` (a list of lists
of block modules) for :func:`otflow.record_stage_tracks`; the input of a stage's first block, i.e. the
output of ``G_0`` or of a transition, is the track's ``x^0`` (SPEC §5, §8.10).

Block (SPEC §6, pre-activation, convs/linears without bias):
``f(x) = W2 σ(BN(W1 σ(BN(x))))``; with ``bn=False`` exactly ``f(x) = W2 σ(W1 x)`` (eq. (13)).
A residual block returns ``x + f(x)``, a plain block ``f(x)``. Transitions (K=4) are stride-2
blocks; the residual ones add a 1×1 stride-2 conv shortcut, the plain ones have no shortcut
(SPEC §8.11). The model takes images in [0, 1] and normalises them per channel itself, so noise
and FGSM act on pixel values.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Block", "Transition", "ImageNet", "build_model", "TABLE1", "HEADS"]

# dims per stage for each (dataset family, K): (channels or features, spatial side), blocks per stage
TABLE1 = {
    ("mnist", 1): {"dims": [(1000, None)], "blocks": 5},
    ("cifar", 1): {"dims": [(32, 16)], "blocks": 10},
    ("cifar", 4): {"dims": [(64, 32), (128, 16), (256, 8), (512, 4)], "blocks": 5},
}
HEADS = ("linear", "bn-relu")


def _bn(kind: str, width: int) -> nn.Module:
    return nn.BatchNorm1d(width) if kind == "fc" else nn.BatchNorm2d(width)


def _layer(kind: str, cin: int, cout: int, stride: int = 1) -> nn.Module:
    if kind == "fc":
        return nn.Linear(cin, cout, bias=False)
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class Block(nn.Module):
    """One same-dimension block: ``x + f(x)`` (residual) or ``f(x)`` (plain)."""

    def __init__(self, kind: str, width: int, *, residual: bool, bn: bool = True):
        super().__init__()
        self.residual = residual
        self.bn = bn
        self.bn1 = _bn(kind, width) if bn else nn.Identity()
        self.w1 = _layer(kind, width, width)
        self.bn2 = _bn(kind, width) if bn else nn.Identity()
        self.w2 = _layer(kind, width, width)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(x)) if self.bn else x
        return self.w2(F.relu(self.bn2(self.w1(h))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.branch(x)
        return x + f if self.residual else f


class Transition(nn.Module):
    """A stride-2 conv block ``G_k`` between K=4 stages: ``shortcut(x) + f(x)`` or ``f(x)``."""

    def __init__(self, cin: int, cout: int, *, residual: bool, bn: bool = True):
        super().__init__()
        self.residual = residual
        self.bn = bn
        self.bn1 = nn.BatchNorm2d(cin) if bn else nn.Identity()
        self.w1 = _layer("conv", cin, cout, stride=2)
        self.bn2 = nn.BatchNorm2d(cout) if bn else nn.Identity()
        self.w2 = _layer("conv", cout, cout)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=2, bias=False) if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(x)) if self.bn else x
        f = self.w2(F.relu(self.bn2(self.w1(h))))
        return self.shortcut(x) + f if self.residual else f


class ImageNet(nn.Module):
    """``normalise → G_0 → stage_1 → (transition → stage_k)… → head``; see the module docstring.

    Attributes
    ----------
    stages : list of lists of :class:`Block`
        For :func:`otflow.record_stage_tracks` (one stage for MNIST and K=1, four for K=4).
    stage_dims : list of tuples
        Per stage the representation shape, e.g. ``(32, 16, 16)`` or ``(1000,)``.
    """

    def __init__(
        self,
        *,
        kind: str,
        in_shape: tuple[int, int, int],
        widths: list[int],
        blocks: int,
        n_classes: int,
        residual: bool,
        bn: bool = True,
        head: str = "linear",
        mean=None,
        std=None,
    ):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head: expected one of {', '.join(HEADS)}, got {head!r}")
        c, h, w = in_shape
        self.head = head
        self.kind = kind
        self.register_buffer("mean", torch.as_tensor(mean if mean is not None else [0.0] * c).view(1, c, 1, 1))
        self.register_buffer("std", torch.as_tensor(std if std is not None else [1.0] * c).view(1, c, 1, 1))
        if kind == "fc":
            self.lift = nn.Linear(c * h * w, widths[0])
            dims = [(widths[0],)]
        elif len(widths) == 1:  # K=1: 3×3 stride-2 conv 3→32
            self.lift = nn.Conv2d(c, widths[0], 3, stride=2, padding=1, bias=False)
            dims = [(widths[0], h // 2, w // 2)]
        else:  # K=4: 3×3 stride-1 conv 3→64, then stride-2 transitions
            self.lift = nn.Conv2d(c, widths[0], 3, stride=1, padding=1, bias=False)
            dims = [(wd, h >> k, w >> k) for k, wd in enumerate(widths)]
        self.stage_dims = dims
        self.stage_modules = nn.ModuleList(
            nn.ModuleList(Block(kind, wd, residual=residual, bn=bn) for _ in range(blocks)) for wd in widths
        )
        self.transitions = nn.ModuleList(
            Transition(widths[k], widths[k + 1], residual=residual, bn=bn) for k in range(len(widths) - 1)
        )
        self.head_bn = _bn(kind, widths[-1]) if (bn and head == "bn-relu") else nn.Identity()
        self.fc = nn.Linear(widths[-1], n_classes)

    @property
    def stages(self) -> list[list[nn.Module]]:
        return [list(s) for s in self.stage_modules]

    @property
    def blocks(self) -> list[nn.Module]:
        """All blocks in forward order (for per-block ablation)."""
        return [b for s in self.stage_modules for b in s]

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.normalise(x)
        if self.kind == "fc":
            x = x.flatten(1)
        x = self.lift(x)
        for k, stage in enumerate(self.stage_modules):
            if k > 0:
                x = self.transitions[k - 1](x)
            for block in stage:
                x = block(x)
        if self.head == "bn-relu":
            x = F.relu(self.head_bn(x))
        if self.kind != "fc":
            x = x.mean((2, 3))
        return self.fc(x)


def build_model(
    dataset: str,
    arch: str,
    k: int,
    *,
    n_classes: int,
    bn: bool = True,
    width: int | None = None,
    depth: int | None = None,
    head: str = "linear",
    mean=None,
    std=None,
) -> ImageNet:
    """The Table 1 network for ``dataset`` (mnist/cifar10/cifar100), ``arch`` (resnet/plain), ``k``.

    ``width`` overrides the first stage's width (later K=4 stages double it) and ``depth`` the
    number of blocks per stage (SPEC Fig. 5); None keeps Table 1. ``head`` is ``"linear"`` (pool →
    linear, SPEC §6) or ``"bn-relu"`` (σ(BN) → pool → linear).
    """
    if arch not in ("resnet", "plain"):
        raise ValueError(f"arch: expected 'resnet' or 'plain', got {arch!r}")
    family = "mnist" if dataset == "mnist" else "cifar"
    if (family, k) not in TABLE1:
        raise ValueError(f"k: {dataset} supports K in {sorted(kk for f, kk in TABLE1 if f == family)}, got {k!r}")
    spec = TABLE1[(family, k)]
    widths = [d[0] for d in spec["dims"]]
    if width is not None:
        widths = [width * 2**i for i in range(len(widths))]
    blocks = depth if depth is not None else spec["blocks"]
    in_shape = (1, 28, 28) if family == "mnist" else (3, 32, 32)
    return ImageNet(
        kind="fc" if family == "mnist" else "conv",
        in_shape=in_shape,
        widths=widths,
        blocks=blocks,
        n_classes=n_classes,
        residual=arch == "resnet",
        bn=bn,
        head=head,
        mean=mean,
        std=std,
    )
