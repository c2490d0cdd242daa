"""Recording data tracks from a torch model (SPEC Definition 1 and eq. (19)).

For a stage of blocks :math:`x^{l+1} = x^l + f_l(x^l)` (or :math:`x^{l+1} = g_l(x^l)` in a plain
net), the track of an input is :math:`(x^0, x^1, \\dots, x^L)`: the input of the first block, then
the output of each block, each flattened to a vector. A network with K stages of different
dimensions (eq. (19)) gives one track array per stage.
"""

from __future__ import annotations

import numpy as np

from otflow._validation import to_numpy

__all__ = ["record_tracks"]


def _stages(blocks) -> tuple[list[list], bool]:
    """Normalise ``blocks``: modules are blocks; lists, tuples or ``nn.ModuleList`` are stages."""
    import torch.nn as nn

    def is_stage(b):
        return isinstance(b, (list, tuple, nn.ModuleList))

    if isinstance(blocks, nn.Module) and not isinstance(blocks, (nn.Sequential, nn.ModuleList)):
        raise ValueError("blocks: expected a sequence of modules (one stage) or a sequence of such sequences")
    blocks = list(blocks)
    if not blocks:
        raise ValueError("blocks: expected at least one block, got an empty sequence")
    if all(isinstance(b, nn.Module) and not is_stage(b) for b in blocks):
        return [blocks], True
    if not all(is_stage(b) for b in blocks):
        raise ValueError("blocks: mixes modules and sequences; pass either blocks or a list of stages")
    stages = []
    for k, stage in enumerate(blocks):
        stage = list(stage)
        if not stage or not all(isinstance(b, nn.Module) and not is_stage(b) for b in stage):
            raise ValueError(f"blocks[{k}]: expected a non-empty sequence of torch modules")
        stages.append(stage)
    return stages, False


def record_tracks(model, x, blocks, *, batch_size: int = 1024, device=None, eval_mode: bool = True):
    r"""Tracks of ``x`` through the blocks of ``model``, SPEC Definition 1.

    Forward hooks are placed on the blocks: a pre-hook on the first block of each stage records its
    input :math:`x^0`, and a hook on every block records its output :math:`x^l`. The model is run
    on ``x`` in batches under ``torch.no_grad()``; hooks are always removed afterwards, also when
    the forward raises.

    Parameters
    ----------
    model : torch.nn.Module
        Called as ``model(batch)``.
    x : array or tensor (N, ...)
        Inputs, batched along the first axis.
    blocks : sequence of modules, or sequence of sequences of modules
        One stage: ``[block_1, ..., block_L]`` gives one array. Several stages (K > 1):
        ``[[stage-1 blocks], [stage-2 blocks], ...]`` gives a list of arrays, one per stage.
    batch_size : int
    device : torch.device or str, optional
        Where to run; by default the device of the model's first parameter (CPU if none).
    eval_mode : bool
        Run in ``eval()`` mode (batch-norm statistics frozen, dropout off); the model's previous
        training flags are restored afterwards.

    Returns
    -------
    ndarray (N, L+1, D) for one stage, or a list of such arrays (one per stage), in the dtype of
    the activations (float32 for a float32 model), with ``D`` the flattened feature size.

    Raises
    ------
    ValueError
        If a block is never called, or called more than once per forward (then the tracks would be
        ambiguous), or if a stage's blocks change the feature size.
    """
    import torch

    stages, single = _stages(blocks)
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
    if device is None:
        p = next(model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
        dtype = p.dtype if p is not None else torch.float32
    else:
        device = torch.device(device)
        p = next(model.parameters(), None)
        dtype = p.dtype if p is not None else torch.float32
    if xt.is_floating_point():
        xt = xt.to(dtype)

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
                    for l, c in enumerate(calls[k]):
                        if c != 1:
                            what = "its input" if l == 0 else f"block {l}"
                            raise ValueError(
                                f"blocks: stage {k}, {what} was recorded {c} times in one forward pass; "
                                "each block must be called exactly once"
                            )
                    sizes = {t.shape[1] for t in buffers[k]}
                    if len(sizes) != 1:
                        raise ValueError(
                            f"blocks: stage {k} changes the feature size across its blocks ({sorted(sizes)}); "
                            "a stage must keep one dimension (put dimension-changing layers between stages)"
                        )
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
    return out[0] if single else out
