"""What a trained image network is measured by (SPEC §5, App. 7.1-7.2), on top of otflow's public API.

All functions take a model built by :func:`image_experiments.models.build_model` (it exposes
``.stages`` and ``.blocks``) and uint8 images ``(N, C, H, W)``; they work in chunks so that K=4
tracks (65,536-dimensional in stage 1) never have to be held for all samples at once.

* :func:`stage_metrics`: per stage LSR, LSS, segment proportions and transport energy (means over
  samples, as :func:`otflow.track_report` computes them, accumulated chunk by chunk), then OTS, its
  cost gap, W2² of the endpoints and the energy ratio from one exact assignment on ``(x^0, x^L)``,
  and the same metrics for the per-segment shuffled-displacement null.
* :func:`recalibrate_bn`: BatchNorm statistics re-estimated on training images (untrained nets).
* :func:`gaussian_control`: the linear Gaussian OT map on the same endpoints (a positive control).
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
    "gaussian_control",
    "recalibrate_bn",
    "robustness",
    "gaussian_noise",
    "fgsm",
    "variation_sums",
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


def _tracks(model, xb: torch.Tensor, *, on_device: bool = False):
    """Tracks of one chunk as a list (one per stage): host arrays, or with ``on_device`` tensors left
    where the model ran (an accelerator's probe then copies no track to the host)."""
    output = "torch" if on_device else "numpy"
    return otflow.record_stage_tracks(model, xb, model.stages, batch_size=len(xb), output=output)


def _line_shapes(t, eps, start: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample LSS and LSR of one chunk's tracks: numpy's reference functions for host arrays,
    :func:`otflow.line_shape_stats` on the device for tensors (only the two (n,) results travel)."""
    if isinstance(t, torch.Tensor):
        a, b = otflow.line_shape_stats(t, eps=eps, start=start)
        return a.cpu().numpy(), b.cpu().numpy()
    return otflow.line_shape_score(t, eps=eps), otflow.line_shape_ratio(t)


def probe(model, x, y, *, chunk: int = 250, lss_eps: float | None = 0.0, on_device: bool | None = None) -> dict:
    """The per-epoch probe: mean LSS and LSR per stage, loss and accuracy, from one forward pass.

    The logits are caught by a forward hook on the model during :func:`otflow.record_stage_tracks`.
    ``on_device`` (default: the model is not on the CPU) keeps the tracks on the model's device and
    computes LSS and LSR there (:func:`otflow.line_shape_stats`); else numpy's reference functions.
    """
    dev = _device_of(model)
    on_device = dev.type != "cpu" if on_device is None else on_device
    logits = []
    handle = model.register_forward_hook(lambda m, a, out: logits.append(out.detach().float()))
    n_stages = len(model.stages)
    lss = [[] for _ in range(n_stages)]
    lsr = [[] for _ in range(n_stages)]
    errors: list[str | None] = [None] * n_stages
    try:
        for s, e in _chunks(len(x), chunk):
            for k, t in enumerate(_tracks(model, to_float(x[s:e], dev), on_device=on_device)):
                if errors[k]:
                    continue
                try:
                    a, b = _line_shapes(t, lss_eps, s)
                    lss[k].append(a)
                    lsr[k].append(b)
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


class _StageStream:
    """One stage's metrics accumulated over chunks of samples, so the tracks are never held at once.

    Per sample: LSS, LSR and segment proportions (otflow's functions on each chunk); in total: the
    transport energy (12) and the squared displacement; the endpoints ``x^0``, ``x^L`` for OTS.
    With ``perms`` (one permutation of the m samples per segment, as drawn by
    :func:`otflow.shuffled_displacements`) it also streams that null: sample j's step of segment l
    goes to sample ``π_l^{-1}(j)``, so the shuffled end points, unit-step sums, path lengths and
    segment counts are built by scatter-adds (no two samples of a chunk share a target).
    """

    def __init__(self, m: int, n_blocks: int, dim: int, lss_eps, perms=None):
        self.m, self.n_blocks, self.lss_eps = m, n_blocks, lss_eps
        self.per = {"lss": [], "lsr": [], "prop": []}
        self.energy = self.disp = 0.0
        self.error = None
        self.x0 = np.empty((m, dim), np.float32)
        self.xl = np.empty((m, dim), np.float32)
        self.inv = None if perms is None else [np.argsort(p) for p in perms]
        if self.inv is not None:
            self.sh_disp = np.zeros((m, dim), np.float32)
            self.sh_unit = np.zeros((m, dim), np.float32)
            self.sh_path = np.zeros(m)
            self.sh_count = np.zeros(m, np.int64)

    def add(self, s: int, t: np.ndarray) -> None:
        self.x0[s : s + len(t)] = t[:, 0]
        self.xl[s : s + len(t)] = t[:, -1]
        if self.error:
            return
        try:
            self.per["lss"].append(otflow.line_shape_score(t, eps=self.lss_eps))
            self.per["lsr"].append(otflow.line_shape_ratio(t))
            self.per["prop"].append(otflow.segment_proportions(t))
        except ValueError as err:
            self.error = str(err)
            return
        d = (t[:, -1] - t[:, 0]).astype(np.float64)
        self.energy += otflow.transport_energy(t) * len(t) / self.m
        self.disp += float(np.einsum("ij,ij->", d, d)) / self.m
        if self.inv is not None:
            self._add_shuffled(s, t)

    def _add_shuffled(self, s: int, t: np.ndarray) -> None:
        steps = np.diff(t.astype(np.float64), axis=1)
        length = np.linalg.norm(steps, axis=2)
        keep = length > (self.lss_eps or 0.0)
        for l, inv in enumerate(self.inv):
            tgt = inv[s : s + len(t)]
            self.sh_disp[tgt] += steps[:, l]
            unit = steps[:, l] / np.where(keep[:, l], length[:, l], 1.0)[:, None]
            self.sh_unit[tgt] += np.where(keep[:, l, None], unit, 0.0)
            self.sh_path[tgt] += length[:, l]
            self.sh_count[tgt] += keep[:, l]

    def shuffled(self) -> dict:
        """LSS, LSR, OTS, cost gap, W2² and energy ratio of the shuffled-displacement tracks."""
        chord_unit = np.linalg.norm(self.sh_unit.astype(np.float64), axis=1)
        chord = np.linalg.norm(self.sh_disp.astype(np.float64), axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            lss = np.where(chord_unit > 0, self.sh_count / chord_unit, np.inf)
            lsr = self.sh_path / chord
        res = otflow.ot_score(self.x0, self.x0 + self.sh_disp)
        w2 = res.cost_optimal
        return {
            "lss": float(np.mean(np.maximum(lss, 1.0))),
            "lsr": float(np.mean(np.maximum(lsr, 1.0))) if (chord > 0).all() else None,
            "ots": res.score,
            "ot_cost_gap": res.cost_gap,
            "w2_squared": w2,
            "energy_ratio": otflow.energy_ratio(self.energy, w2),
        }

    def result(self, stage: int, shape, with_ot: bool) -> dict:
        r = {"stage": stage, "shape": list(shape), "dim": int(self.x0.shape[1]), "n_blocks": self.n_blocks}
        r["m"] = self.m
        if self.error:
            r.update(error=self.error, arrays={})
        else:
            lss, lsr, prop = (np.concatenate(self.per[key]) for key in ("lss", "lsr", "prop"))
            r.update(
                lsr=float(lsr.mean()),
                lss=float(lss.mean()),
                segment_proportions=[float(v) for v in prop.mean(0)],
                transport_energy=self.energy,
                displacement_sq=self.disp,
                arrays={"lss": lss, "lsr": lsr, "proportions": prop},
            )
        if with_ot:
            res = otflow.ot_score(self.x0, self.xl)
            w2 = res.cost_optimal
            r.update(ots=res.score, ot_cost_gap=res.cost_gap, w2_squared=w2)
            if "transport_energy" in r:
                r["energy_ratio"] = otflow.energy_ratio(r["transport_energy"], w2)
            r["arrays"]["sigma"] = res.sigma
            if self.inv is not None and not self.error:
                r["shuffled"] = self.shuffled()
        r["x0"], r["xL"] = self.x0, self.xl
        return r


def stage_metrics(
    model, x, *, chunk: int = 250, lss_eps: float | None = 0.0, with_ot: bool = True, null_seed: int | None = None
) -> list[dict]:
    """Per-stage track metrics on uint8 images ``x`` (m samples).

    Returns one dict per stage with the fields of :class:`otflow.TrackReport` (``lsr``, ``lss``,
    ``segment_proportions``, ``transport_energy``, ``displacement_sq``, ``w2_squared``,
    ``energy_ratio``, ``ots``, ``ot_cost_gap``) plus ``shape`` and the per-sample arrays under
    ``"arrays"`` (``lsr``, ``lss``, ``proportions``, ``sigma``) and the endpoints ``x0``, ``xL``
    (float32) for the positive control. Per-sample scores come from otflow's metric functions and
    chunk means are combined with weights ``n_chunk / m``, so the aggregates equal those of
    :func:`otflow.track_report` on the whole array (tested) without holding it in memory.

    With ``null_seed`` (and ``with_ot``), each stage also gets ``"shuffled"``: the same metrics on
    :func:`otflow.shuffled_displacements` of its tracks with ``rng=null_seed + stage_index``
    (equal to computing them on the whole array; tested).
    """
    dev = _device_of(model)
    m = len(x)
    streams = None
    for s, e in _chunks(m, chunk):
        tracks = _tracks(model, to_float(x[s:e], dev))
        if streams is None:
            streams = []
            for k, t in enumerate(tracks):
                perms = None
                if null_seed is not None and with_ot:
                    rng = np.random.default_rng(null_seed + k)
                    perms = [rng.permutation(m) for _ in range(t.shape[1] - 1)]
                streams.append(_StageStream(m, t.shape[1] - 1, t.shape[2], lss_eps, perms))
        for stream, t in zip(streams, tracks):
            stream.add(s, t)
    return [st.result(k + 1, model.stage_dims[k], with_ot) for k, st in enumerate(streams)]


@torch.no_grad()
def recalibrate_bn(model, x, *, batch: int = 250) -> int:
    """Re-estimate every BatchNorm's running mean and variance on the uint8 images ``x``.

    A freshly built net has running statistics (0, 1), so in eval mode its BatchNorms do not
    normalise and an untrained net measured that way is not the net that training starts from
    (its signal may vanish or explode layer by layer). This resets the statistics and runs ``x``
    through the net in train mode with ``momentum=None`` (an equal-weight average over batches),
    without gradients; weights are unchanged. Batches of fewer than 2 images are skipped. Returns
    the number of BatchNorm layers recalibrated (0 for a net without BN).
    """
    bns = [mod for mod in model.modules() if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return 0
    dev = _device_of(model)
    momenta = [mod.momentum for mod in bns]
    was = model.training
    for mod in bns:
        mod.reset_running_stats()
        mod.momentum = None
    model.train()
    try:
        for s, e in _chunks(len(x), batch):
            if e - s >= 2:
                model(to_float(x[s:e], dev))
    finally:
        for mod, mom in zip(bns, momenta):
            mod.momentum = mom
        model.train(was)
    return len(bns)


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


def gaussian_control(
    x0: np.ndarray,
    xl: np.ndarray,
    *,
    gaussian_reg: float = 1e-3,
    gaussian_max_dim: int = 8192,
) -> dict:
    """A positive control for the OTS of the pairing ``x0[i] → xl[i]``: the linear Gaussian OT map.

    ``T`` is the linear OT map between Gaussians fitted to ``x0`` and ``xl``
    (:func:`otflow.empirical_gaussian_map`, ridge ``gaussian_reg × mean variance``). It is affine
    with a symmetric positive-definite matrix, the gradient of a convex function, so
    ``(x0, T(x0))`` is cyclically monotone and its OTS is 1 unless the solver breaks ties: a value
    below 1 shows the resolution of OTS at this m and D. It is *not* a null (its OTS is 1 by
    construction). ``rel_sq_error = mean‖T(x0) − xl‖² / mean‖xl − x0‖²`` says how much of the
    network's displacement the linear OT map does *not* explain. Computed in the joint span of the
    points (an isometry, :func:`_span_coordinates`) and skipped when that span exceeds
    ``gaussian_max_dim``. The nulls (untrained net, shuffled displacements) are computed by
    :func:`stage_metrics` and the run.
    """
    m = len(x0)
    r = min(x0.shape[1], 2 * m)
    if r > gaussian_max_dim:
        return {"skipped": f"joint span dimension {r} exceeds gaussian_max_dim={gaussian_max_dim}"}
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
    return {
        "ots": res.score,
        "ot_cost_gap": res.cost_gap,
        "reg": reg,
        "span_dim": int(z0.shape[1]),
        "rel_sq_error": float(np.mean(np.sum((tz - zl) ** 2, 1)) / disp) if disp > 0 else None,
    }


def gaussian_noise(x: torch.Tensor, eps: float, gen: torch.Generator) -> torch.Tensor:
    """``clip(x + ε ξ, 0, 1)`` with ξ ~ N(0, I) drawn from ``gen`` (CPU): noise on pixel values, and
    the result is again an image (SPEC App. 7.2 leaves the clipping open; clipping is our choice)."""
    if eps == 0:
        return x
    xi = torch.randn(x.shape, generator=gen).to(x.device)
    return (x + eps * xi).clamp_(0.0, 1.0)


def fgsm(model, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """FGSM, ``clip(x + ε sign ∇_x ℓ(T(x), y), 0, 1)``, with the gradient of the model in eval mode
    (BatchNorm on its running statistics, so each image's attack does not depend on its batch)."""
    if eps == 0:
        return x
    was = model.training
    model.eval()
    try:
        xg = x.clone().requires_grad_(True)
        with torch.enable_grad():
            loss = F.cross_entropy(model(xg), y)
            (grad,) = torch.autograd.grad(loss, xg)
    finally:
        model.train(was)
    return (x + eps * grad.sign()).clamp_(0.0, 1.0)


def variation_sums(clean: list[np.ndarray], pert: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per track point (all stages in order) the sum over samples of ``‖x̃^l − x^l‖ / ‖x^l‖`` and the
    count of samples with ``x^l ≠ 0``; their ratio is the variation rate (35)."""
    ratios, valid = [], []
    for tc, tp in zip(clean, pert):
        num = np.linalg.norm((tp - tc).astype(np.float64), axis=2)
        den = np.linalg.norm(tc.astype(np.float64), axis=2)
        ok = den > 0
        ratios.append(np.where(ok, num / np.where(ok, den, 1.0), 0.0).sum(0))
        valid.append(ok.sum(0))
    return np.concatenate(ratios), np.concatenate(valid)


def _robust_kind(model, x, y, eps_grid, kind: str, seed: int, chunk: int) -> tuple[list, list]:
    dev = _device_of(model)
    gen = torch.Generator().manual_seed(seed)
    correct = np.zeros(len(eps_grid))
    ratio_sum = ratio_cnt = None
    for s, e in _chunks(len(x), chunk):
        xb, yb = to_float(x[s:e], dev), y[s:e].to(dev)
        clean = _tracks(model, xb)
        for j, eps in enumerate(eps_grid):
            xt = gaussian_noise(xb, eps, gen) if kind == "noise" else fgsm(model, xb, yb, eps)
            with torch.no_grad():
                correct[j] += float((model(xt).argmax(1) == yb).sum())
            rs, vc = variation_sums(clean, _tracks(model, xt))
            if ratio_sum is None:
                ratio_sum, ratio_cnt = np.zeros((len(eps_grid), len(rs))), np.zeros((len(eps_grid), len(rs)))
            ratio_sum[j] += rs
            ratio_cnt[j] += vc
    return (correct / len(x)).tolist(), (ratio_sum / np.maximum(ratio_cnt, 1)).tolist()


def robustness(model, x, y, eps_grid, *, seed: int = 0, chunk: int = 250) -> dict:
    """Accuracy under noise and FGSM, and the variation rate (35) per layer, SPEC App. 7.2.

    Random noise: :func:`gaussian_noise`; FGSM: :func:`fgsm`. Pixels are in [0, 1]. Variation rate
    at track point l (all stages in forward order): ``r_l = mean_i ‖x̃_i^l − x_i^l‖ / ‖x_i^l‖``
    (samples with ``x_i^l = 0`` are left out; :func:`variation_sums`).
    """
    was = model.training
    model.eval()
    eps_grid = [float(e) for e in eps_grid]
    out = {"eps": eps_grid}
    try:
        for kind in ("noise", "fgsm"):
            out[f"{kind}_acc"], out[f"{kind}_variation"] = _robust_kind(model, x, y, eps_grid, kind, seed, chunk)
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
