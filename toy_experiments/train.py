r"""Train a group of nets on one problem at once: every (net kind, weight decay, seed) in one batch.

The objective of model ``k`` is SPEC (18) with PyTorch's weight-decay convention,

.. math:: \ell_k(\theta_k) + \tfrac{\lambda_k}{2}\,\|\theta_k\|^2 ,

the penalty on every parameter (weights, biases and the head), minimised with Adam (so each model's
update equals ``torch.optim.Adam(weight_decay=λ_k)`` run on that model alone: Adam is elementwise and
the models share no parameter). The learning rate follows a cosine schedule to 0.

Task losses, on a fresh minibatch each step (models with the same seed see the same batches):

* transport tasks: the exact minibatch W2² between the output batch and a target batch of the same
  size, :math:`\frac1B\min_\sigma\sum_i\|f(x_i) - y_{\sigma(i)}\|^2`, with :math:`\sigma` solved by
  scipy's ``linear_sum_assignment`` per model on the detached costs (its gradient is that of the
  matched cost: the envelope theorem). The loss sees only the output distribution.
* classification: cross-entropy of a per-model linear head on the stage's output.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from toy_experiments.nets import BatchedNets
from toy_experiments.problems import Problem, sample_stratified

__all__ = ["train_group"]


def train_group(
    problem: Problem,
    residual,
    lambdas,
    seeds,
    *,
    n_blocks: int,
    width: int,
    bias: bool,
    init: str,
    steps: int,
    batch: int,
    lr: float,
    device: str = "cpu",
    progress=None,
    stop=None,
) -> tuple[BatchedNets, np.ndarray]:
    """Train one model per entry of ``residual``/``lambdas``/``seeds`` (equal lengths).

    ``progress(1)`` is called after every step; when ``stop()`` returns True the training ends by
    raising ``KeyboardInterrupt`` between two steps.

    Returns the trained stack (on the CPU) and each model's final training loss (n_models,), the
    mean over the last 5 % of steps, without the penalty.
    """
    seeds = [int(s) for s in seeds]
    uniq = sorted(set(seeds))
    seed_index = torch.tensor([uniq.index(s) for s in seeds])
    net = BatchedNets(
        residual, seeds, n_blocks=n_blocks, width=width, bias=bias, init=init, n_classes=problem.n_classes
    ).to(device)
    lam = torch.tensor([float(v) for v in lambdas], device=device)
    rngs = [np.random.default_rng([s, 7919]) for s in uniq]
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    tail = max(1, steps // 20)
    loss_sum = torch.zeros(net.n_models, dtype=torch.float64)
    n_models = net.n_models
    for step in range(steps):
        if stop is not None and stop():
            raise KeyboardInterrupt
        xs, labels, ys = [], [], []
        for rng in rngs:
            x, lab = problem.sample_source(batch, rng, stratified=problem.is_transport)
            xs.append(x)
            labels.append(lab)
            if problem.is_transport:
                ys.append(sample_stratified(problem.target, batch, rng)[0])
        x = torch.as_tensor(np.stack(xs), dtype=torch.float32)[seed_index].to(device)
        out = net(x)
        if problem.is_transport:
            y = torch.as_tensor(np.stack(ys), dtype=torch.float32)[seed_index].to(device)
            cost = torch.cdist(out.detach(), y).pow_(2).cpu().numpy()
            perm = np.stack([linear_sum_assignment(cost[k])[1] for k in range(n_models)])
            y_matched = torch.gather(y, 1, torch.as_tensor(perm, device=device)[..., None].expand(-1, -1, y.shape[2]))
            loss = (out - y_matched).pow(2).sum(2).mean(1)
        else:
            lab = torch.as_tensor(np.stack(labels), dtype=torch.long)[seed_index].to(device)
            logits = net.logits(out)
            loss = (
                torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[2]), lab.reshape(-1), reduction="none"
                )
                .view(n_models, -1)
                .mean(1)
            )
        total = loss.sum() + 0.5 * (lam * net.sq_norms()).sum()
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        sched.step()
        if step >= steps - tail:
            loss_sum += loss.detach().cpu().double()
        if progress is not None:
            progress(1)
    return net.cpu(), (loss_sum / tail).numpy()
