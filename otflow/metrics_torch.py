"""LSR and LSS on torch tensors, on the tensors' own device (SPEC eqs. (28)-(30)).

The same definitions, scaling and errors as :func:`otflow.line_shape_ratio` and
:func:`otflow.line_shape_score`, computed in float64 by torch where the tracks already are: a
network's per-epoch probe on a GPU then never copies its tracks (1,000 CIFAR images × 11 points ×
8,192 features: 360 MB in float32) to the host. The numpy functions stay the reference; the tests
compare the two on random tracks of every magnitude.
"""

from __future__ import annotations

__all__ = ["line_shape_stats"]

_BELOW_ONE_TOL = 1e-9


def _pow2_scale(m):
    """The power of two ``2^e > m`` (1 where ``m == 0``), as :func:`otflow._numeric.pow2_scale`."""
    import torch

    _, e = torch.frexp(m)
    one = torch.ones_like(m)
    return torch.where(m > 0, torch.ldexp(one, torch.clamp(e, max=1023)), one)


def _check(tracks):
    import torch

    if not isinstance(tracks, torch.Tensor):
        raise ValueError(f"tracks: expected a torch tensor, got {type(tracks).__name__}")
    if tracks.ndim != 3:
        raise ValueError(f"tracks: expected tracks of shape (N, L+1, D), got a tensor of shape {tuple(tracks.shape)}")
    n, p, d = tracks.shape
    if n == 0 or d == 0:
        raise ValueError(f"tracks: expected a non-empty (N, L+1, D) tensor, got shape {tuple(tracks.shape)}")
    if p < 2:
        raise ValueError(f"tracks: expected at least 2 points per track (L+1 >= 2), got shape {tuple(tracks.shape)}")
    if not tracks.is_floating_point():
        tracks = tracks.double()
    if not bool(torch.isfinite(tracks).all()):
        raise ValueError("tracks: contains NaN or inf")
    return tracks.double()


def _at_least_one(out, what: str):
    import torch

    low = float(out.min())
    if low < 1.0 - _BELOW_ONE_TOL:
        raise RuntimeError(f"{what} = {low!r} < 1 beyond rounding (its lower bound is 1): this is a bug in otflow")
    return torch.clamp(out, min=1.0)


def _lsr(unit, start: int):
    import torch

    seg = torch.diff(unit, dim=1)
    path = torch.linalg.vector_norm(seg, dim=2).sum(1)
    ends = unit[:, -1] - unit[:, 0]
    ends_scale = _pow2_scale(ends.abs().amax(dim=1))
    chord = torch.linalg.vector_norm(ends / ends_scale[:, None], dim=1) * ends_scale
    bad = torch.nonzero(chord == 0).flatten()
    if bad.numel():
        raise ValueError(
            f"tracks: LSR is undefined for {bad.numel()} track(s) whose end point equals the start point "
            f"(first: sample {start + int(bad[0])})"
        )
    ratio = path / chord
    if not bool(torch.isfinite(ratio).all()):
        raise ValueError(
            "tracks: LSR (end point almost at the start) overflows float64 (the input's magnitude is too large); "
            "divide the input by a common factor first"
        )
    return ratio


def _lss(unit, track_scale, eps, start: int):
    import torch

    seg = torch.diff(unit, dim=1)
    seg_scale = _pow2_scale(seg.abs().amax(dim=2))
    seg = seg / seg_scale[..., None]
    scaled = torch.linalg.vector_norm(seg, dim=2)
    keep = scaled > 0.0 if eps is None else scaled * seg_scale * track_scale[:, None] > eps
    if eps is None and not bool(keep.all()):
        i, l = (int(v) for v in torch.nonzero(~keep)[0])
        raise ValueError(
            f"tracks: LSS is undefined for a zero-length segment (sample {start + i}, segment {l + 1}); "
            "pass eps > 0 to drop such segments"
        )
    n_seg = keep.sum(1)
    if bool((n_seg == 0).any()):
        i = int(torch.nonzero(n_seg == 0)[0])
        raise ValueError(f"tracks: sample {start + i} has no segment longer than eps={eps}")
    unit_steps = torch.where(keep[..., None], seg / torch.where(keep, scaled, 1.0)[..., None], 0.0)
    chord = torch.linalg.vector_norm(unit_steps.sum(1), dim=1)
    if bool((chord == 0).any()):
        i = int(torch.nonzero(chord == 0)[0])
        raise ValueError(
            f"tracks: LSS is undefined (infinite) for sample {start + i}: its unit steps cancel exactly "
            "(the normalised track returns to its start)"
        )
    return n_seg.double() / chord


def line_shape_stats(tracks, *, eps: float | None = None, start: int = 0):
    r"""Per-sample LSS and LSR of torch tracks ``(N, L+1, D)``, as float64 tensors on their device.

    Parameters
    ----------
    tracks : torch.Tensor (N, L+1, D)
        Any floating dtype (bf16/fp16/fp32 are widened to float64); finite.
    eps : float, optional
        As in :func:`otflow.line_shape_score`: segments shorter than ``eps`` are dropped from LSS.
    start : int
        Index of the first sample, used only in error messages (for callers that pass chunks).

    Returns
    -------
    (lss, lsr) : two float64 tensors (N,) on ``tracks.device``
        Equal to ``line_shape_score(tracks, eps=eps)`` and ``line_shape_ratio(tracks)`` up to the
        order of floating-point sums; the same ``ValueError`` for the same undefined cases.
    """
    if eps is not None and (isinstance(eps, bool) or not float(eps) >= 0.0 or float(eps) == float("inf")):
        raise ValueError(f"eps: expected a finite number >= 0, got {eps!r}")
    t = _check(tracks)
    track_scale = _pow2_scale(t.abs().amax(dim=(1, 2)))
    unit = t / track_scale[:, None, None]
    lss = _lss(unit, track_scale, None if eps is None else float(eps), start)
    lsr = _lsr(unit, start)
    return _at_least_one(lss, "LSS"), _at_least_one(lsr, "LSR")
