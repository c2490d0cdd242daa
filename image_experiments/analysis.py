"""What a trained image network is measured by (SPEC §5, App. 7.1-7.2), on top of otflow's public API.

All functions take a model built by :func:`image_experiments.models.build_model` (it exposes
``.stages`` and ``.blocks``) and uint8 images ``(N, C, H, W)``; they work in chunks so that K=4
tracks (65,536-dimensional in stage 1) never have to be held for all samples at once.

* :func:`stage_metrics`: per stage LSR, LSS, segment proportions and transport energy (means over
  samples, as :func:`otflow.track_report` computes them, accumulated chunk by chunk), then OTS, its
  cost gap, W2² of the endpoints and the energy ratio from one exact assignment on ``(x^0, x^L)``.
* :func:`ots_nulls`: the null baselines for OTS (see the function for what each one means).
* :func:`robustness`: accuracy under Gaussian noise and FGSM over an ε grid, and the per-layer
  variation rate (35).
* :func:`unit_ablation`: accuracy against the number of important units replaced, per block (App. 7.1).
* :func:`track_projection`: 2-D random projections of a few tracks per class for pictures.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

import otflow

__all__ = [
    "to_float",
    "evaluate",
    "probe",
    "stage_metrics",
    "ots_nulls",
    "robustness",
    "unit_ablation",
    "track_projection",
    "select_per_class",
]


def to_float(x: torch.Tensor, device=None) -> torch.Tensor:
    """uint8 images → float32 in [0, 1] on ``device``."""
    return x.to(device=device).float().div_(255.0)


def _chunks(n: int, size: int):
    for s in range(0, n, size):
        yield s, min(s + size, n)


def _device_of(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def evaluate(model, x, y, *, batch: int = 500, autocast: bool = False) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` (eval mode) on uint8 images ``x``."""
    dev = _device_of(model)
    was = model.training
    model.eval()
    loss = correct = 0.0
    try:
        for s, e in _chunks(len(x), batch):
            xb = to_float(x[s:e], dev)
            yb = y[s:e].to(dev)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=autocast):
                out = model(xb)
            loss += float(F.cross_entropy(out.float(), yb, reduction="sum"))
            correct += float((out.argmax(1) == yb).sum())
    finally:
        model.train(was)
    return loss / len(x), correct / len(x)


def _tracks(model, xb: torch.Tensor):
    """Tracks of one chunk as a list (one array per stage)."""
    return otflow.record_stage_tracks(model, xb, model.stages, batch_size=len(xb))


def probe(model, x, y, *, chunk: int = 250, lss_eps: float | None = 0.0) -> dict:
    """The per-epoch probe: mean LSS and LSR per stage, loss and accuracy, from one forward pass.

    The logits are caught by a forward hook on the model during :func:`otflow.record_tracks`.
    """
    dev = _device_of(model)
    logits = []
    handle = model.register_forward_hook(lambda m, a, out: logits.append(out.detach().float()))
    n_stages = len(model.stages)
    lss = [[] for _ in range(n_stages)]
    lsr = [[] for _ in range(n_stages)]
    errors: list[str | None] = [None] * n_stages
    try:
        for s, e in _chunks(len(x), chunk):
            for k, t in enumerate(_tracks(model, to_float(x[s:e], dev))):
                if errors[k]:
                    continue
                try:
                    lss[k].append(otflow.line_shape_score(t, eps=lss_eps))
                    lsr[k].append(otflow.line_shape_ratio(t))
                except ValueError as err:
                    errors[k] = str(err)
    finally:
        handle.remove()
    out = torch.cat(logits)
    yd = y.to(out.device)
    stages = []
    for k in range(n_stages):
        if errors[k]:
            stages.append({"lss": None, "lsr": None, "error": errors[k]})
        else:
            stages.append({"lss": float(np.concatenate(lss[k]).mean()), "lsr": float(np.concatenate(lsr[k]).mean())})
    return {
        "loss": float(F.cross_entropy(out, yd)),
        "acc": float((out.argmax(1) == yd).float().mean()),
        "stages": stages,
    }


def stage_metrics(model, x, *, chunk: int = 250, lss_eps: float | None = 0.0, with_ot: bool = True) -> list[dict]:
    """Per-stage track metrics on uint8 images ``x`` (m samples).

    Returns one dict per stage with the fields of :class:`otflow.TrackReport` (``lsr``, ``lss``,
    ``segment_proportions``, ``transport_energy``, ``displacement_sq``, ``w2_squared``,
    ``energy_ratio``, ``ots``, ``ot_cost_gap``) plus ``shape`` and the per-sample arrays under
    ``"arrays"`` (``lsr``, ``lss``, ``proportions``, ``sigma``) and the endpoints ``x0``, ``xL``
    (float32) for the null baselines. Per-sample scores come from otflow's metric functions and
    chunk means are combined with weights ``n_chunk / m``, so the aggregates equal those of
    :func:`otflow.track_report` on the whole array (tested) without holding it in memory.
    """
    dev = _device_of(model)
    m = len(x)
    per = None
    for s, e in _chunks(m, chunk):
        tracks = _tracks(model, to_float(x[s:e], dev))
        if per is None:
            per = [
                {
                    "lss": [],
                    "lsr": [],
                    "prop": [],
                    "energy": 0.0,
                    "disp": 0.0,
                    "x0": np.empty((m, t.shape[2]), np.float32),
                    "xL": np.empty((m, t.shape[2]), np.float32),
                    "n_blocks": t.shape[1] - 1,
                    "error": None,
                }
                for t in tracks
            ]
        for k, t in enumerate(tracks):
            p = per[k]
            p["x0"][s:e] = t[:, 0]
            p["xL"][s:e] = t[:, -1]
            if p["error"]:
                continue
            try:
                p["lss"].append(otflow.line_shape_score(t, eps=lss_eps))
                p["lsr"].append(otflow.line_shape_ratio(t))
                p["prop"].append(otflow.segment_proportions(t))
            except ValueError as err:
                p["error"] = str(err)
                continue
            w = len(t) / m
            d = (t[:, -1] - t[:, 0]).astype(np.float64)
            p["energy"] += otflow.transport_energy(t) * w
            p["disp"] += float(np.einsum("ij,ij->", d, d)) / m
    results = []
    for k, p in enumerate(per):
        shape = tuple(int(v) for v in _stage_shape(model, k))
        r = {"stage": k + 1, "shape": list(shape), "dim": int(p["x0"].shape[1]), "n_blocks": p["n_blocks"], "m": m}
        if p["error"]:
            r.update(error=p["error"], arrays={})
        else:
            lss, lsr, prop = (np.concatenate(p[key]) for key in ("lss", "lsr", "prop"))
            r.update(
                lsr=float(lsr.mean()),
                lss=float(lss.mean()),
                segment_proportions=[float(v) for v in prop.mean(0)],
                transport_energy=p["energy"],
                displacement_sq=p["disp"],
                arrays={"lss": lss, "lsr": lsr, "proportions": prop},
            )
        if with_ot:
            res = otflow.ot_score(p["x0"], p["xL"])
            w2 = res.cost_optimal
            r.update(ots=res.score, ot_cost_gap=res.cost_gap, w2_squared=w2)
            if "transport_energy" in r:
                r["energy_ratio"] = r["transport_energy"] / w2 if w2 > 0 else None
            r["arrays"]["sigma"] = res.sigma
        r["x0"], r["xL"] = p["x0"], p["xL"]
        results.append(r)
    return results


def _stage_shape(model, k: int):
    return model.stage_dims[k]


def _span_coordinates(x0: np.ndarray, xl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of both clouds in an orthonormal basis of their joint affine span.

    All points lie in ``c + span(U)``, so the map ``x ↦ Uᵀ(x − c)`` is an isometry on them: every
    pairwise distance, hence every assignment cost and OTS, is unchanged. It makes the Gaussian
    OT map cheap when ``2m < D`` (it needs ``r × r`` matrices with ``r ≤ 2m``).
    """
    both = np.concatenate([x0, xl]).astype(np.float64)
    both -= both.mean(0)
    # rows = W Λ^{1/2} Qᵀ with Q orthonormal (D × r); coordinates z = rows @ Q = W Λ^{1/2}, from the
    # small Gram matrix instead of an SVD of the tall data
    lam, w = np.linalg.eigh(both @ both.T)
    keep = lam > max(float(lam[-1]), 0.0) * 1e-12
    if not keep.any():
        keep[-1] = True
    z = w[:, keep] * np.sqrt(np.clip(lam[keep], 0.0, None))
    return z[: len(x0)], z[len(x0) :]


def ots_nulls(
    x0: np.ndarray,
    xl: np.ndarray,
    *,
    rng,
    gaussian_reg: float = 1e-3,
    gaussian_max_dim: int = 8192,
) -> dict:
    """Null baselines and a positive control for the OTS of the pairing ``x0[i] → xl[i]``.

    A high OTS can be trivial in high dimension: when every displacement ``xl[i] − x0[i]`` is short
    next to the spacing of the points, the identity is the optimal assignment whatever the
    directions. So OTS is compared with:

    * ``shuffled_displacement``: ``x0[i] + (xl − x0)[π(i)]`` for a random permutation π. It keeps
      the set of displacement vectors (lengths and directions) and breaks their link with the
      points. An OTS near the network's means OTS says no more than "the steps are short"; a
      network well above it moves points in an organised, transport-optimal way.
    * ``gaussian_linear`` (positive control, not a null): the linear OT map ``T`` between Gaussians
      fitted to ``x0`` and ``xl`` (:func:`otflow.empirical_gaussian_map`, ridge
      ``gaussian_reg × mean variance``). ``T`` is affine with a symmetric positive-definite matrix,
      the gradient of a convex function, so ``(x0, T(x0))`` is cyclically monotone and its OTS is
      1 unless the solver breaks ties; a value below 1 shows the resolution of OTS at this m and D.
      ``rel_sq_error = mean‖T(x0) − xl‖² / mean‖xl − x0‖²`` says how much of the network's
      displacement the linear OT map does *not* explain. Computed in the joint span of the points
      (an isometry, :func:`_span_coordinates`) and skipped when that span exceeds ``gaussian_max_dim``.

    The third null, an untrained network of the same architecture, is computed by the run (it needs
    the model); see :func:`image_experiments.run.run`.
    """
    rng = np.random.default_rng(rng)
    m = len(x0)
    d = (xl - x0).astype(np.float32)
    pi = rng.permutation(m)
    shuf = otflow.ot_score(x0, x0 + d[pi])
    out = {
        "shuffled_displacement": {
            "ots": shuf.score,
            "ot_cost_gap": shuf.cost_gap,
            "fixed_points_of_pi": int((pi == np.arange(m)).sum()),
        }
    }
    r = min(x0.shape[1], 2 * m)
    if r > gaussian_max_dim:
        out["gaussian_linear"] = {
            "skipped": f"joint span dimension {r} exceeds gaussian_max_dim={gaussian_max_dim}",
        }
        return out
    if x0.shape[1] > 2 * m:
        z0, zl = _span_coordinates(x0, xl)
    else:
        z0, zl = x0.astype(np.float64), xl.astype(np.float64)
    var = (z0.var(0).sum() + zl.var(0).sum()) / (2 * x0.shape[1])
    reg = float(gaussian_reg * var) if var > 0 else float(gaussian_reg)
    T = otflow.empirical_gaussian_map(z0, zl, reg=reg)
    tz = T(z0)
    res = otflow.ot_score(z0, tz)
    disp = float(np.mean(np.sum((zl - z0) ** 2, 1)))
    out["gaussian_linear"] = {
        "ots": res.score,
        "ot_cost_gap": res.cost_gap,
        "reg": reg,
        "span_dim": int(z0.shape[1]),
        "rel_sq_error": float(np.mean(np.sum((tz - zl) ** 2, 1)) / disp) if disp > 0 else None,
    }
    return out


def _perturb(model, xb: torch.Tensor, yb: torch.Tensor, eps: float, kind: str, gen: torch.Generator) -> torch.Tensor:
    if eps == 0:
        return xb
    if kind == "noise":
        xi = torch.randn(xb.shape, generator=gen).to(xb.device)
        return (xb + eps * xi).clamp_(0.0, 1.0)
    xg = xb.clone().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(xg), yb)
        (grad,) = torch.autograd.grad(loss, xg)
    return (xb + eps * grad.sign()).clamp_(0.0, 1.0)


def robustness(model, x, y, eps_grid, *, seed: int = 0, chunk: int = 250) -> dict:
    """Accuracy under noise and FGSM, and the variation rate (35) per layer, SPEC App. 7.2.

    Random noise: ``x̃ = clip(x + ε ξ, 0, 1)``, ξ ~ N(0, I); FGSM: ``x̃ = clip(x + ε sign ∇_x ℓ, 0, 1)``
    with the gradient of the eval-mode model at the clean input. Pixels are in [0, 1].
    Variation rate at track point l (all stages in forward order):
    ``r_l = mean_i ‖x̃_i^l − x_i^l‖ / ‖x_i^l‖`` (samples with ``x_i^l = 0`` are left out).
    """
    dev = _device_of(model)
    was = model.training
    model.eval()
    eps_grid = [float(e) for e in eps_grid]
    out = {"eps": eps_grid}
    try:
        for kind in ("noise", "fgsm"):
            gen = torch.Generator().manual_seed(seed)
            correct = np.zeros(len(eps_grid))
            ratio_sum = None
            ratio_cnt = None
            for s, e in _chunks(len(x), chunk):
                xb = to_float(x[s:e], dev)
                yb = y[s:e].to(dev)
                clean = _tracks(model, xb)
                for j, eps in enumerate(eps_grid):
                    xt = _perturb(model, xb, yb, eps, kind, gen)
                    with torch.no_grad():
                        correct[j] += float((model(xt).argmax(1) == yb).sum())
                    pert = _tracks(model, xt)
                    ratios, valid = [], []
                    for tc, tp in zip(clean, pert):
                        num = np.linalg.norm((tp - tc).astype(np.float64), axis=2)
                        den = np.linalg.norm(tc.astype(np.float64), axis=2)
                        ok = den > 0
                        ratios.append(np.where(ok, num / np.where(ok, den, 1.0), 0.0).sum(0))
                        valid.append(ok.sum(0))
                    rs, vc = np.concatenate(ratios), np.concatenate(valid)
                    if ratio_sum is None:
                        ratio_sum = np.zeros((len(eps_grid), len(rs)))
                        ratio_cnt = np.zeros((len(eps_grid), len(rs)))
                    ratio_sum[j] += rs
                    ratio_cnt[j] += vc
            out[f"{kind}_acc"] = (correct / len(x)).tolist()
            out[f"{kind}_variation"] = (ratio_sum / np.maximum(ratio_cnt, 1)).tolist()
    finally:
        model.train(was)
    out["layers"] = [f"s{k + 1}.x{l}" for k, s in enumerate(model.stages) for l in range(len(s) + 1)]
    out["n"] = len(x)
    return out


def _unit_diff(t: np.ndarray, l: int, n_units: int) -> np.ndarray:
    """Per-sample per-unit ``mean |x^l − x^{l-1}|`` (over spatial positions for conv nets), ``(n, units)``."""
    diff = np.abs(t[:, l].astype(np.float64) - t[:, l - 1])
    return diff.reshape(len(t), n_units, -1).mean(2)


def unit_ablation(
    model,
    x_imp,
    y_imp,
    x_eval,
    y_eval,
    fracs,
    n_classes: int,
    *,
    chunk: int = 250,
) -> dict:
    """Accuracy against the number of important units replaced, per block (SPEC App. 7.1).

    Importance of unit u (a channel of a conv net, a neuron of the FC net) for block l and class
    c is ``mean_{i in c} |x_i^l[u] − x_i^{l−1}[u]|`` (averaged over spatial positions), measured on
    ``x_imp`` (training images, so the test images are not used to choose the units). On the test
    images, for each sample of class c (its true label) the top-k units of block l's output are set
    back to their values at the block's input, which removes the block's contribution on them; the
    rest of the network runs unchanged. ``k = round(frac × units)`` for each ``frac``.
    """
    dev = _device_of(model)
    blocks = model.blocks
    n_units = [model.stage_dims[k][0] for k, s in enumerate(model.stages) for _ in s]
    sums = [np.zeros((n_classes, u)) for u in n_units]
    counts = np.zeros(n_classes)
    y_np = y_imp.numpy()
    for s, e in _chunks(len(x_imp), chunk):
        tracks = _tracks(model, to_float(x_imp[s:e], dev))
        yc = y_np[s:e]
        counts += np.bincount(yc, minlength=n_classes)
        b = 0
        for t in tracks:
            for l in range(1, t.shape[1]):
                dif = _unit_diff(t, l, n_units[b])
                np.add.at(sums[b], yc, dif)
                b += 1
    order = [np.argsort(-(sm / np.maximum(counts, 1)[:, None]), axis=1, kind="stable") for sm in sums]

    was = model.training
    model.eval()
    units = np.array([[int(round(f * u)) for f in fracs] for u in n_units])
    acc = np.zeros((len(blocks), len(fracs)))
    base = None
    state = {}

    def hook(module, args, output):
        mask = state["mask"]
        shape = (mask.shape[0], mask.shape[1]) + (1,) * (output.ndim - 2)
        return torch.where(mask.view(shape), args[0], output)

    try:
        for b, block in enumerate(blocks):
            rank = torch.from_numpy(np.argsort(order[b], axis=1))  # rank[c, u] = position of unit u for class c
            for j, kk in enumerate(units[b]):
                if kk == 0:
                    if base is None:
                        base = evaluate(model, x_eval, y_eval, batch=chunk)[1]
                    acc[b, j] = base
                    continue
                handle = block.register_forward_hook(hook)
                correct = 0
                try:
                    with torch.no_grad():
                        for s, e in _chunks(len(x_eval), chunk):
                            yb = y_eval[s:e]
                            state["mask"] = (rank[yb] < kk).to(dev)
                            out = model(to_float(x_eval[s:e], dev))
                            correct += int((out.argmax(1).cpu() == yb).sum())
                finally:
                    handle.remove()
                acc[b, j] = correct / len(x_eval)
    finally:
        model.train(was)
    return {
        "fracs": [float(f) for f in fracs],
        "units": units.tolist(),
        "acc": acc.tolist(),
        "blocks": [f"s{k + 1}.b{l}" for k, s in enumerate(model.stages) for l in range(1, len(s) + 1)],
        "n_eval": len(x_eval),
        "n_importance": len(x_imp),
    }


def select_per_class(y: torch.Tensor, per_class: int, n_classes: int) -> np.ndarray:
    """Indices of the first ``per_class`` samples of each class (in data order), class by class."""
    y = y.numpy()
    idx = [np.flatnonzero(y == c)[:per_class] for c in range(n_classes)]
    return np.concatenate(idx).astype(np.int64)


def track_projection(model, x, *, seed: int) -> list[np.ndarray]:
    """Random 2-D projections ``(n, L+1, 2)`` of the tracks of ``x``, one per stage, SPEC §5.

    One Gaussian matrix per stage (:func:`otflow.random_projection` with ``rng=seed + stage``) shared
    by all points of that stage.
    """
    tracks = _tracks(model, to_float(x, _device_of(model)))
    return [otflow.random_projection(t, 2, rng=seed + k) for k, t in enumerate(tracks)]
