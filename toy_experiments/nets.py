r"""Many small residual or plain networks in :math:`\mathbb R^D`, trained together as one batch.

A stack of ``n_models`` networks of ``L`` blocks each, with weights in tensors that carry a leading
model axis, so one forward pass (``torch.baddbmm``) and one optimiser step serve every model, seed
and weight decay of a study at once. Model ``k`` is residual or plain by its own flag:

* residual block: :math:`x^{l+1} = x^l + W_{l,2}\,\sigma(W_{l,1} x^l + b_{l,1}) + b_{l,2}`
* plain block: :math:`x^{l+1} = W_{l,2}\,\sigma(W_{l,1} x^l + b_{l,1}) + b_{l,2}`

with :math:`\sigma` = ReLU and hidden width ``h``. With ``bias=False`` the blocks are exactly
:math:`W_{l,2}\sigma(W_{l,1}x)` of SPEC eq. (13), the form on which :func:`otflow.energy_bounds`
holds. Initialisation (``init``, drawn from the model's own seed; see :data:`INITS`):

* ``looks-linear`` (default): residual blocks get PyTorch's ``nn.Linear`` default (uniform in
  :math:`\pm 1/\sqrt{\text{fan-in}}`), so each starts near the identity; plain blocks get the
  looks-linear initialisation of Balduzzi et al. (2017), ``W1 = [U; −U]``, ``W2 = [Uᵀ, −Uᵀ]`` with
  orthonormal ``U``, zero biases, so each plain block starts as the identity too (an isometry, hence
  variance-preserving) and a deep plain stack in R² trains;
* ``he-plain``: residual as above, plain blocks Kaiming-uniform (He et al. 2015; variance-preserving
  but random, so a plain stack in R² starts as a folded, non-injective map);
* ``he``: Kaiming-uniform for both kinds;
* ``torch-default``: PyTorch's default for both kinds (the study's behaviour before issue 12): a plain
  stack of 2-D blocks then shrinks its signal more than tenfold per block.

:meth:`BatchedNets.export` turns one model into an ordinary ``nn.Sequential`` of :class:`Block`
modules, so its tracks can be recorded with :func:`otflow.record_tracks`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["Block", "BatchedNets", "INITS"]

# init name -> (scheme of residual blocks, scheme of plain blocks); see _init_weights
INITS = {
    "looks-linear": ("torch", "looks-linear"),
    "he-plain": ("torch", "he"),
    "he": ("he", "he"),
    "torch-default": ("torch", "torch"),
}


def _init_weights(shapes: dict, seed: int, scheme: str, *, dim: int, width: int) -> dict:
    r"""One model's initial parameters under ``scheme``, drawn from ``seed``.

    * ``torch``: PyTorch's ``nn.Linear`` default, uniform in :math:`\pm 1/\sqrt{\text{fan-in}}` for
      weights and biases;
    * ``he``: Kaiming-uniform weights (He et al. 2015), variance 2/fan-in before the ReLU and 1/fan-in
      after it, so that a plain block keeps :math:`E\|x\|^2`; zero biases;
    * ``looks-linear``: ``W1 = [U; −U]``, ``W2 = [Uᵀ, −Uᵀ]`` with ``U`` (width/2, dim) of orthonormal
      columns (Balduzzi et al. 2017), zero biases: ``W2 σ(W1 x) = x``, the block starts as the identity.

    The head (``Wh``, ``bh``) always has PyTorch's default. Every scheme draws the same uniform numbers
    first, so a model's stream does not depend on the scheme.
    """
    g = torch.Generator().manual_seed(seed)
    fan_in = {"W1": dim, "b1": dim, "W2": width, "b2": width, "Wh": dim, "bh": dim}
    u = {name: torch.rand(shape, generator=g) * 2 - 1 for name, shape in shapes.items()}  # fixed order
    out = {}
    for name, shape in shapes.items():
        if scheme == "torch" or name in ("Wh", "bh"):
            out[name] = u[name] / math.sqrt(fan_in[name])
        elif name.startswith("b"):
            out[name] = torch.zeros(shape)
        elif scheme == "he":
            out[name] = u[name] * math.sqrt(3 * (2.0 if name == "W1" else 1.0) / fan_in[name])
        elif name == "W1":
            if width % 2 or width // 2 < dim:
                raise ValueError(f"init: looks-linear needs an even width ≥ 2·dim, got width {width}, dim {dim}")
            z = torch.randn((shape[0], width // 2, dim), generator=g)
            q = torch.linalg.qr(z).Q  # (n_blocks, width/2, dim), orthonormal columns
            out["W1"] = torch.cat([q, -q], dim=1)
            out["W2"] = out["W1"].transpose(1, 2).clone()
    return out


class Block(nn.Module):
    """One block ``x ↦ [x +] W2 σ(W1 x + b1) + b2`` (biases optional), as an ordinary module."""

    def __init__(self, dim: int, width: int, *, residual: bool, bias: bool = True):
        super().__init__()
        self.residual = residual
        self.fc1 = nn.Linear(dim, width, bias=bias)
        self.fc2 = nn.Linear(width, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc2(torch.relu(self.fc1(x)))
        return x + out if self.residual else out


class BatchedNets(nn.Module):
    """``n_models`` networks of ``n_blocks`` blocks in :math:`\\mathbb R^{dim}`, optionally with a
    linear head to ``n_classes`` logits.

    Parameters
    ----------
    residual : sequence of bool, length n_models
        Residual (True) or plain (False) blocks, per model.
    seeds : sequence of int, length n_models
        Initialisation seed per model.
    dim, n_blocks, width : int
        State dimension D, number of blocks L and hidden width h.
    bias : bool
        Blocks with biases (default) or the bias-free form of SPEC (13).
    n_classes : int, optional
        Adds a per-model linear head ``R^D → R^{n_classes}`` (with bias).
    init : str
        A key of :data:`INITS` (see the module docstring); ``looks-linear`` needs an even width ≥ 2·dim.
    """

    def __init__(
        self,
        residual,
        seeds,
        *,
        dim: int = 2,
        n_blocks: int = 8,
        width: int = 32,
        bias: bool = True,
        n_classes: int | None = None,
        init: str = "looks-linear",
    ):
        super().__init__()
        residual = [bool(r) for r in residual]
        seeds = [int(s) for s in seeds]
        if len(residual) != len(seeds) or not residual:
            raise ValueError(
                f"residual and seeds: expected equal non-zero lengths, got {len(residual)} and {len(seeds)}"
            )
        self.n_models, self.dim, self.n_blocks, self.width, self.bias = len(seeds), dim, n_blocks, width, bias
        self.n_classes = n_classes
        self.register_buffer("skip", torch.tensor(residual, dtype=torch.float32))
        shapes = {"W1": (n_blocks, width, dim), "W2": (n_blocks, dim, width)}
        if bias:
            shapes |= {"b1": (n_blocks, width), "b2": (n_blocks, dim)}
        if n_classes is not None:
            shapes |= {"Wh": (n_classes, dim), "bh": (n_classes,)}
        if init not in INITS:
            raise ValueError(f"init: expected one of {', '.join(INITS)}, got {init!r}")
        self.init = init
        values = {name: [] for name in shapes}
        for res, seed in zip(residual, seeds):
            drawn = _init_weights(shapes, seed, INITS[init][0 if res else 1], dim=dim, width=width)
            for name in shapes:
                values[name].append(drawn[name])
        for name in shapes:
            setattr(self, name, nn.Parameter(torch.stack(values[name])))

    def forward(self, x: torch.Tensor, *, tracks: bool = False):
        """Push ``x`` of shape (n_models, B, D) through every model's blocks.

        Returns the outputs (n_models, B, D), or with ``tracks=True`` the tracks
        (n_models, B, L+1, D) (input, then each block's output).
        """
        points = [x] if tracks else None
        skip = self.skip.view(-1, 1, 1)
        # unbind once: its backward is a single stack, not one zero-filled gradient per block
        w1s, w2s = self.W1.transpose(2, 3).unbind(1), self.W2.transpose(2, 3).unbind(1)
        if self.bias:
            b1s, b2s = self.b1.unsqueeze(2).unbind(1), self.b2.unsqueeze(2).unbind(1)
        for l in range(self.n_blocks):
            w1t, w2t = w1s[l], w2s[l]
            if self.bias:
                a = torch.relu(torch.baddbmm(b1s[l], x, w1t))
                out = torch.baddbmm(b2s[l], a, w2t)
            else:
                out = torch.bmm(torch.relu(torch.bmm(x, w1t)), w2t)
            x = skip * x + out
            if tracks:
                points.append(x)
        return torch.stack(points, dim=2) if tracks else x

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """Head logits (n_models, B, n_classes) of stage outputs ``z`` (n_models, B, D)."""
        if self.n_classes is None:
            raise ValueError("logits: this stack was built without a head (n_classes=None)")
        return torch.baddbmm(self.bh[:, None, :], z, self.Wh.transpose(1, 2))

    def sq_norms(self) -> torch.Tensor:
        """Squared Euclidean norm of every model's parameters (all weights, biases and head), shape (n_models,)."""
        return sum(p.pow(2).flatten(1).sum(1) for p in self.parameters())

    def block_weights(self, k: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``[(W1, W2), ...]`` of model ``k`` in ``nn.Linear.weight`` layout, detached (for energy bounds)."""
        return [(self.W1[k, l].detach(), self.W2[k, l].detach()) for l in range(self.n_blocks)]

    def export(self, k: int, dtype=torch.float64) -> nn.Sequential:
        """Model ``k``'s blocks as an ``nn.Sequential`` of :class:`Block` (a copy, in ``dtype``)."""
        if not 0 <= k < self.n_models:
            raise ValueError(f"k: expected a model index in [0, {self.n_models}), got {k}")
        residual = bool(self.skip[k] > 0)
        blocks = []
        with torch.no_grad():
            for l in range(self.n_blocks):
                b = Block(self.dim, self.width, residual=residual, bias=self.bias)
                b.fc1.weight.copy_(self.W1[k, l])
                b.fc2.weight.copy_(self.W2[k, l])
                if self.bias:
                    b.fc1.bias.copy_(self.b1[k, l])
                    b.fc2.bias.copy_(self.b2[k, l])
                blocks.append(b)
        return nn.Sequential(*blocks).to(dtype)
