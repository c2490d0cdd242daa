"""image_experiments.analysis against hand computations: FGSM, noise, the variation rate (35), unit
ablation, and the weight-decay convention of the training loop (SPEC §5, App. 7.1-7.2, §6)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import otflow
from image_experiments import analysis
from image_experiments.models import build_model


def _net(seed=0, **kw):
    torch.manual_seed(seed)
    kw.setdefault("width", 16)
    return build_model("mnist", kw.pop("arch", "plain"), 1, n_classes=10, **kw)


def _images(n, seed=0, lo=0.2, hi=0.8):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand((n, 1, 28, 28), generator=g)


def test_fgsm_steps_eps_along_the_sign_of_the_eval_mode_gradient_and_raises_the_loss():
    model = _net()
    analysis.recalibrate_bn(model, (255 * _images(64, seed=1)).to(torch.uint8))
    model.train()  # fgsm must use eval mode whatever mode it gets
    x, y = _images(32), torch.arange(32) % 10
    eps = 0.01
    xa = analysis.fgsm(model, x, y, eps)
    assert model.training  # mode restored
    model.eval()
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(xg), y), xg)
    torch.testing.assert_close(xa - x, eps * grad.sign(), rtol=0, atol=1e-6)  # no clamp: x in [0.2, 0.8]
    with torch.no_grad():
        assert F.cross_entropy(model(xa), y) > F.cross_entropy(model(x), y)
    # in train mode (batch statistics) the gradient differs: the choice of mode matters
    model.train()
    xg = x.clone().requires_grad_(True)
    (grad_train,) = torch.autograd.grad(F.cross_entropy(model(xg), y), xg)
    assert not torch.equal(grad_train.sign(), grad.sign())


def test_fgsm_and_noise_stay_in_the_pixel_range_and_eps_zero_is_the_identity():
    model = _net().eval()
    x, y = _images(16, lo=0.0, hi=1.0), torch.arange(16) % 10
    x[:, :, :3] = 0.0
    x[:, :, -3:] = 1.0
    for xt in (analysis.fgsm(model, x, y, 0.3), analysis.gaussian_noise(x, 0.3, torch.Generator().manual_seed(0))):
        assert xt.min() >= 0.0 and xt.max() <= 1.0
        assert (xt != x).any()
    assert analysis.fgsm(model, x, y, 0.0) is x
    assert analysis.gaussian_noise(x, 0.0, torch.Generator()) is x


def test_gaussian_noise_is_eps_times_a_standard_normal_from_the_generator():
    x = torch.full((200, 1, 28, 28), 0.5)
    eps = 0.01
    out = analysis.gaussian_noise(x, eps, torch.Generator().manual_seed(3))
    xi = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(out, (x + eps * xi).clamp(0, 1))
    z = ((out - x) / eps).flatten()  # at 0.5 ± 5 std nothing is clipped
    assert abs(float(z.mean())) < 0.01 and abs(float(z.std()) - 1) < 0.01


def test_variation_rate_on_a_hand_computed_case():
    """Two samples, one stage of 2 track points. Point 0: ‖(3,4)→(6,8)‖/‖(3,4)‖ = 5/5 = 1 and
    ‖(1,0)→(1,0)‖ = 0 → mean 0.5. Point 1: sample 1 is at the origin (left out), sample 2 moves
    (0,2)→(0,3): 1/2."""
    clean = [np.array([[[3.0, 4.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 2.0]]])]
    pert = [np.array([[[6.0, 8.0], [5.0, 5.0]], [[1.0, 0.0], [0.0, 3.0]]])]
    sums, counts = analysis.variation_sums(clean, pert)
    np.testing.assert_allclose(sums / counts, [0.5, 0.5])
    np.testing.assert_array_equal(counts, [2, 1])


def test_robustness_variation_at_eps_zero_is_zero_and_accuracy_is_clean():
    model = _net().eval()
    x = (255 * _images(40)).to(torch.uint8)
    y = torch.arange(40) % 10
    rob = analysis.robustness(model, x, y, [0.0, 0.05], seed=0, chunk=16)
    np.testing.assert_array_equal(rob["noise_variation"][0], 0.0)
    assert rob["noise_acc"][0] == rob["fgsm_acc"][0] == analysis.evaluate(model, x, y)[1]
    assert len(rob["layers"]) == 6 and np.all(np.asarray(rob["fgsm_variation"][1]) > 0)


def test_unit_ablation_ranks_and_masks_as_a_hand_written_loop():
    model = _net(arch="resnet", depth=2, width=8).eval()
    x_imp, y_imp = (255 * _images(60, seed=1)).to(torch.uint8), torch.arange(60) % 3
    x_ev, y_ev = (255 * _images(30, seed=2)).to(torch.uint8), torch.arange(30) % 3
    fracs = (0.0, 0.25, 0.5)
    res = analysis.unit_ablation(model, x_imp, y_imp, x_ev, y_ev, fracs, 10, chunk=7)
    assert res["units"] == [[0, 2, 4], [0, 2, 4]]
    # by hand: importance per class and unit from the training tracks, then the top-k units of each
    # test sample's class are set back to the block's input
    t = otflow.record_stage_tracks(model, analysis.to_float(x_imp), model.stages)[0]
    xe = analysis.to_float(x_ev)
    for b in range(len(model.blocks)):
        imp = np.stack([np.abs(t[y_imp == c, b + 1] - t[y_imp == c, b]).mean(0) for c in range(3)])
        for j, k in enumerate(res["units"][b]):
            correct = 0
            for i in range(len(xe)):
                top = np.argsort(-imp[int(y_ev[i])], kind="stable")[:k]
                with torch.no_grad():
                    h = model.lift(model.normalise(xe[i : i + 1]).flatten(1))
                    for bb, blk in enumerate(model.blocks):
                        out = blk(h)
                        if bb == b and k:
                            out[:, top] = h[:, top]
                        h = out
                    correct += int(model.fc(h).argmax(1) == y_ev[i])
            assert res["acc"][b][j] == pytest.approx(correct / len(xe)), (b, k)


def test_sgd_weight_decay_is_the_gradient_of_half_lambda_theta_squared():
    """PyTorch's ``weight_decay=λ`` adds λθ to the gradient: the penalty (λ/2)‖θ‖² (SPEC §6, §8.7)."""
    torch.manual_seed(0)
    lam, lr = 0.3, 0.1
    w0 = torch.randn(5)
    x = torch.randn(7, 5)

    def loss(w):
        return ((x @ w).sin() ** 2).mean()

    w = w0.clone().requires_grad_(True)
    opt = torch.optim.SGD([w], lr=lr, weight_decay=lam)
    loss(w).backward()
    opt.step()
    v = w0.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss(v) + lam / 2 * (v**2).sum(), v)
    torch.testing.assert_close(w.detach(), w0 - lr * g)
    (g_full,) = torch.autograd.grad(loss(v) + lam * (v**2).sum(), v)  # the text's λ‖W‖²: twice the decay
    assert not torch.allclose(w.detach(), w0 - lr * g_full)
