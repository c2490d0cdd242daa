"""Recording data tracks from a torch model (SPEC Definition 1 and eq. (19)).

For a stage of blocks :math:`x^{l+1} = x^l + f_l(x^l)` (or :math:`x^{l+1} = g_l(x^l)` in a plain
net), the track of an input is :math:`(x^0, x^1, \\dots, x^L)`: the input of the first block, then
the output of each block, each flattened to a vector. :func:`record_tracks` records one stage and
always returns one ``(N, L+1, D)`` array; :func:`record_stage_tracks` records a network with K
stages of different dimensions (eq. (19)) and always returns a list of K such arrays. torch is
imported inside the functions, so ``import otflow`` does not load it.
"""

from __future__ import annotations

import numpy as np

from otflow._validation import to_numpy

__all__ = ["record_tracks", "record_stage_tracks"]


def _is_block(b, nn) -> bool:
    return isinstance(b, nn.Module) and not isinstance(b, (nn.Sequential, nn.ModuleList))


def _as_stage(blocks, name: str) -> list:
    """A non-empty flat sequence of torch modules (``nn.Sequential``/``nn.ModuleList`` or a list)."""
    import torch.nn as nn

    if _is_block(blocks, nn) or isinstance(blocks, (str, bytes)):
        raise ValueError(f"{name}: expected a sequence of torch modules (the blocks of one stage), got a single module")
    try:
        stage = list(blocks)
    except TypeError:
        raise ValueError(f"{name}: expected a sequence of torch modules, got {type(blocks).__name__}") from None
    if not stage:
        raise ValueError(f"{name}: expected at least one block, got an empty sequence")
    for l, b in enumerate(stage):
        if isinstance(b, (list, tuple, nn.Sequential, nn.ModuleList)):
            raise ValueError(
                f"{name}[{l}]: is a sequence, so {name} looks like several stages; record_tracks records one stage "
                "(a flat sequence of blocks), use record_stage_tracks for several"
            )
        if not isinstance(b, nn.Module):
            raise ValueError(f"{name}[{l}]: expected a torch module, got {type(b).__name__}")
    return stage


def _as_stages(stages) -> list[list]:
    """A non-empty sequence of stages, each a non-empty flat sequence of modules."""
    import torch.nn as nn

    if _is_block(stages, nn) or isinstance(stages, (str, bytes)):
        raise ValueError("stages: expected a sequence of stages (each a sequence of torch modules), got a module")
    stages = list(stages)
    if not stages:
        raise ValueError("stages: expected at least one stage, got an empty sequence")
    if any(_is_block(b, nn) for b in stages):
        raise ValueError(
            "stages: holds modules, not sequences of modules; pass [[stage-1 blocks], ...], or record one "
            "stage's blocks with record_tracks"
        )
    return [_as_stage(st, f"stages[{k}]") for k, st in enumerate(stages)]


def record_tracks(model, x, blocks, *, batch_size: int = 1024, device=None, eval_mode: bool = True) -> np.ndarray:
    r"""Tracks of ``x`` through one stage of blocks of ``model``, SPEC Definition 1.

    Forward hooks are placed on the blocks: a pre-hook on the first block records its input
    :math:`x^0`, and a hook on every block records its output :math:`x^l`. The model is run on
    ``x`` in batches under ``torch.no_grad()``; hooks are always removed afterwards, also when the
    forward raises.

    Parameters
    ----------
    model : torch.nn.Module
        Called as ``model(batch)``.
    x : array or tensor (N, ...)
        Inputs, batched along the first axis.
    blocks : sequence of modules
        The stage ``[block_1, ..., block_L]`` (a list, ``nn.Sequential`` or ``nn.ModuleList``).
        For a network of several stages (eq. (19)) use :func:`record_stage_tracks`.
    batch_size : int
    device : torch.device or str, optional
        Where to run; by default the device of the model's first parameter (CPU if none).
    eval_mode : bool
        Run in ``eval()`` mode (batch-norm statistics frozen, dropout off); the model's previous
        training flags are restored afterwards.

    Returns
    -------
    ndarray (N, L+1, D)
        Always one array, in the dtype of the activations (float32 for a float32 model), with
        ``D`` the flattened feature size.

    Raises
    ------
    ValueError
        If ``blocks`` is not a flat sequence of modules (e.g. a list of stages), if a block is never
        called or called more than once per forward (then the tracks would be ambiguous), or if the
        blocks change the feature size.
    """
    (tracks,) = _record(model, x, [_as_stage(blocks, "blocks")], batch_size, device, eval_mode)
    return tracks


def record_stage_tracks(
    model, x, stages, *, batch_size: int = 1024, device=None, eval_mode: bool = True, output: str = "numpy"
) -> list:
    r"""Tracks of ``x`` through each of the K stages of ``model``, SPEC eq. (19), from one forward pass.

    Like :func:`record_tracks`, with a pre-hook on the first block of every stage, so the input of
    each stage (e.g. after a dimension-changing layer between stages) is its :math:`x^0`.

    Parameters
    ----------
    model : torch.nn.Module
    x : array or tensor (N, ...)
    stages : sequence of sequences of modules
        ``[[stage-1 blocks], [stage-2 blocks], ...]``; K = 1 is allowed and gives a list of one.
    batch_size, device, eval_mode
        As in :func:`record_tracks`.
    output : {"numpy", "torch"}
        ``"numpy"``: host arrays. ``"torch"``: tensors left on the device the model ran on, in the
        activations' dtype (nothing is copied to the host; :func:`otflow.metrics_torch.line_shape_stats`
        computes LSS and LSR there).

    Returns
    -------
    list of K arrays (or tensors) (N, L_k+1, D_k)
        Always a list, one per stage, in the order of ``stages``.
    """
    if output not in ("numpy", "torch"):
        raise ValueError(f"output: expected 'numpy' or 'torch', got {output!r}")
    return _record(model, x, _as_stages(stages), batch_size, device, eval_mode, output=output)


def _prepare(model, x, batch_size, device):
    """Check the options; the inputs as a tensor in the model's dtype, and the device to run on."""
    import torch

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
    if isinstance(x, torch.Tensor):
        xt = x.detach()
    else:
        xt = torch.from_numpy(np.ascontiguousarray(to_numpy(x, "x")))
    if xt.ndim < 1 or xt.shape[0] == 0:
        raise ValueError(f"x: expected a non-empty batch of inputs, got shape {tuple(xt.shape)}")
    if xt.is_floating_point() and not torch.isfinite(xt).all():
        raise ValueError("x: contains NaN or inf")
    p = next(model.parameters(), None)
    dtype = p.dtype if p is not None else torch.float32
    if device is None:
        device = p.device if p is not None else torch.device("cpu")
    else:
        device = torch.device(device)
    if xt.is_floating_point():
        xt = xt.to(dtype)
    return xt, device


def _check_calls(k: int, calls: list[int], buffers: list) -> None:
    for l, c in enumerate(calls):
        if c != 1:
            what = "its input" if l == 0 else f"block {l}"
            raise ValueError(
                f"blocks: stage {k}, {what} was recorded {c} times in one forward pass; "
                "each block must be called exactly once"
            )
    sizes = {t.shape[1] for t in buffers}
    if len(sizes) != 1:
        raise ValueError(
            f"blocks: stage {k} changes the feature size across its blocks ({sorted(sizes)}); "
            "a stage must keep one dimension (put dimension-changing layers between stages)"
        )


def _record(model, x, stages: list[list], batch_size, device, eval_mode, output: str = "numpy") -> list:
    import torch

    xt, device = _prepare(model, x, batch_size, device)
    n = xt.shape[0]
    buffers: list[list] = [[None] * (len(s) + 1) for s in stages]
    calls: list[list[int]] = [[0] * (len(s) + 1) for s in stages]

    def pre_hook(k):
        def hook(module, args):
            calls[k][0] += 1
            buffers[k][0] = args[0].detach().flatten(1)

        return hook

    def post_hook(k, l):
        def hook(module, args, output):
            if not isinstance(output, torch.Tensor):
                raise ValueError(f"blocks: block {l} of stage {k} returned {type(output).__name__}, not a tensor")
            calls[k][l] += 1
            buffers[k][l] = output.detach().flatten(1)

        return hook

    flags = {m: m.training for m in model.modules()}
    handles = []
    out: list[np.ndarray | None] = [None] * len(stages)
    parts: list[list] = [[] for _ in stages]  # output="torch": each batch's tensors, on the device
    try:
        for k, stage in enumerate(stages):
            handles.append(stage[0].register_forward_pre_hook(pre_hook(k)))
            for l, block in enumerate(stage, start=1):
                handles.append(block.register_forward_hook(post_hook(k, l)))
        if eval_mode:
            model.eval()
        with torch.no_grad():
            for start in range(0, n, batch_size):
                for k in range(len(stages)):
                    calls[k] = [0] * (len(stages[k]) + 1)
                model(xt[start : start + batch_size].to(device))
                for k, stage in enumerate(stages):
                    _check_calls(k, calls[k], buffers[k])
                    if output == "torch":
                        parts[k].append(torch.stack(buffers[k], dim=1))
                        buffers[k] = [None] * (len(stage) + 1)
                        continue
                    arr = torch.stack(buffers[k], dim=1).cpu()
                    if arr.dtype in (torch.bfloat16, torch.float16):
                        arr = arr.float()
                    if out[k] is None:
                        out[k] = np.empty((n, *arr.shape[1:]), dtype=arr.numpy().dtype)
                    out[k][start : start + len(arr)] = arr.numpy()
                    buffers[k] = [None] * (len(stage) + 1)
    finally:
        for h in handles:
            h.remove()
        for m, flag in flags.items():
            m.train(flag)
    if output == "torch":
        return [torch.cat(p) if len(p) > 1 else p[0] for p in parts]
    return out
