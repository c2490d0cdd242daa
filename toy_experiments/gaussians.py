r"""Residual vs plain nets on 2-D Gaussian problems, judged against exact optimal transport.

Command (default study: 3 tasks × 5 weight decays × 2 nets × 3 seeds = 90 runs)::

    python -m toy_experiments.gaussians                 # about a minute on two CPU cores
    python -m toy_experiments.gaussians --smoke         # a few seconds (used by the tests)
    python -m toy_experiments.gaussians --full          # more seeds, deeper/wider nets, depth × width sweep
    python -m toy_experiments.gaussians --out runs/g1 --seeds 0,1 --lambdas 0,0.01 --steps 400
    python -m toy_experiments.gaussians --out runs/g1 --resume      # finish an interrupted run

Default run on the project machine, 2026-12-04: 49 s wall with the two cores shared (load average
5.4-5.9; 26 s when idle). Headline, as its verdicts print it (same-seed pairs where both nets fit;
residual blocks with PyTorch's initialisation, plain blocks looks-linear)::

    residual LSS below plain: MIXED: true in 7/39 ... of 45
    residual OTS above plain: DOES NOT HOLD: true in 4/39 ... of 45
    residual: LSS falls as λ grows: MIXED: true in 76/90 ...; transport HOLDS 28/30 (2.51 → 1.25),
        gaussian HOLDS 26/30 (4.72 → 2.63), classification MIXED 22/30 (1.31 → 1.26)
    residual: distance to the exact OT map (map UVP) falls as λ grows: MIXED: true in 60/90 ...;
        transport MIXED 17/30 (0.544 → 0.895), gaussian MIXED 22/30 (4.58 → 2.22), ...
    residual: fit to the target is kept as λ grows (the run at λ' fits too): HOLDS: true in 90/90 ...

With ``--init torch-default`` (the behaviour before issue 12) only 12 of 45 pairs have both nets fit
and every residual-vs-plain claim is INCONCLUSIVE. Numbers, the rule and figures: docs/toy.md.

Every field of :class:`Config` is an option ``--field-name value`` (tuples comma-separated, booleans
``true``/``false``). See docs/toy.md for what each task tests and the numbers of the default run.

Tasks (``toy_experiments.problems``): *transport* (4-Gaussian ring onto a larger ring turned by 30°;
exact map from POT's exact plan on a large target sample), *gaussian* (N(0, I) onto an anisotropic
rotated Gaussian; closed-form map, L2-UVP), *classification* (XOR mixture, linear head, cross-entropy).
Nets (``toy_experiments.nets``): L blocks in R², residual ``x + W2 σ(W1 x + b1) + b2`` or plain
``W2 σ(W1 x + b1) + b2``, trained together in one batch (``toy_experiments.train``); ``--init``
chooses each kind's initialisation (default ``looks-linear``: every plain block starts as the
identity; ``he-plain``, ``he``, ``torch-default``).

A run folder holds ``config.json``, ``environment.json`` (package versions, git revision),
``runs/<run id>.json`` (each run's metrics, written as soon as it is evaluated), ``arrays/`` (tracks
and outputs for the figures), ``truth/`` (held-out points and the exact OT map), ``metrics.json``,
``metrics.csv``, ``summary.json``, ``table.txt`` and ``figures/`` (drawn from the saved files by
``toy_experiments.plots``).

"Fit" (config ``fit_w2sq_fraction``, ``fit_accuracy``): on held-out points, with ``F`` the sampling
floor ``W2²`` between two independent target samples of the same size, a transport net fits when
``W2²(outputs, target) − F ≤ fit_w2sq_fraction · (W2²(inputs, target) − F)``, i.e. it closes at least
90 % (default) of the gap that sampling noise allows to close; a classifier fits when its held-out
accuracy is ``≥ fit_accuracy``. OTS is always printed beside the
fit and the distance to the exact OT map, and the verdicts compare nets only on same-seed pairs where
both fit (SPEC §8.14).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toy_experiments.nets import INITS
from toy_experiments.problems import TASKS

__all__ = ["Config", "run", "main", "run_id", "planned_runs"]


KIND = "toy-gaussians"  # config.json["kind"] of a study folder


@dataclass(frozen=True)
class Config:
    """Everything that defines a study; saved as ``config.json`` in the run folder."""

    tasks: tuple[str, ...] = TASKS  # problems to study: transport, gaussian, classification (comma-separated)
    lambdas: tuple[float, ...] = (0.0, 1e-4, 1e-3, 1e-2, 1e-1)  # weight decays λ (comma-separated)
    seeds: tuple[int, ...] = (0, 1, 2)  # training seeds; residual and plain nets share each seed
    n_blocks: int = 8  # blocks per net (L)
    width: int = 32  # hidden width of each block
    bias: bool = True  # blocks with biases (the energy bounds are then evaluated on the lifted net)
    init: str = "looks-linear"  # looks-linear | he-plain | he | torch-default (docs/toy.md)
    steps: int = 600  # Adam steps per net
    batch: int = 64  # training batch size
    lr: float = 3e-3  # Adam learning rate (cosine schedule)
    n_eval: int = 500  # held-out points for every metric
    n_pairs: int = 4000  # random sample pairs for the Theorem 1 check
    n_plot: int = 48  # tracks kept for the pictures
    truth_oversample: int = 8  # target sample size, relative to n_eval, for the W2² sampling floor
    eval_seed: int = 10_000  # seed of the held-out points and pairs
    fit_w2sq_fraction: float = 0.1  # a transport net fits when its excess W2² to the target is ≤ this share
    fit_accuracy: float = 0.9  # a classifier fits at this held-out accuracy
    sweep_task: str = "gaussian"  # problem of the depth/width sweep
    sweep_depths: tuple[int, ...] = ()  # depths of the sweep (comma-separated; empty: no sweep)
    sweep_widths: tuple[int, ...] = ()  # widths of the sweep (comma-separated; empty: no sweep)
    sweep_lambda: float = 1e-2  # λ of the sweep
    device: str = "cpu"  # torch device of the training
    threads: int = 1  # torch CPU threads
    figures: bool = True  # draw the figures
    name: str = field(default="default", compare=False)  # a label for the run folder

    def __post_init__(self):
        for key in ("tasks", "lambdas", "seeds", "sweep_depths", "sweep_widths"):
            object.__setattr__(self, key, tuple(getattr(self, key)))
        if not self.tasks or any(t not in TASKS for t in self.tasks):
            raise ValueError(f"tasks: expected a non-empty subset of {','.join(TASKS)}, got {','.join(self.tasks)}")
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"tasks: repeated task in {self.tasks}")
        if not self.lambdas or any(not (math.isfinite(v) and v >= 0) for v in self.lambdas):
            raise ValueError(f"lambdas: expected finite non-negative weight decays, got {self.lambdas}")
        if len(set(self.lambdas)) != len(self.lambdas):
            raise ValueError(f"lambdas: repeated value in {self.lambdas}")
        if not self.seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in self.seeds):
            raise ValueError(f"seeds: expected non-negative integers, got {self.seeds}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: repeated seed in {self.seeds}")
        positive = ("n_blocks", "width", "steps", "n_pairs", "n_plot", "truth_oversample", "threads")
        for key in positive:
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{key}: expected a positive integer, got {v!r}")
        if isinstance(self.batch, bool) or not isinstance(self.batch, int) or self.batch < 2:
            raise ValueError(f"batch: expected an integer ≥ 2, got {self.batch!r}")
        if isinstance(self.n_eval, bool) or not isinstance(self.n_eval, int) or self.n_eval < 8:
            raise ValueError(f"n_eval: expected an integer ≥ 8, got {self.n_eval!r}")
        if self.n_plot > self.n_eval:
            raise ValueError(f"n_plot: expected at most n_eval = {self.n_eval}, got {self.n_plot}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr: expected a positive learning rate, got {self.lr}")
        if not (0 < self.fit_w2sq_fraction <= 1):
            raise ValueError(f"fit_w2sq_fraction: expected a number in (0, 1], got {self.fit_w2sq_fraction}")
        if not (0 < self.fit_accuracy <= 1):
            raise ValueError(f"fit_accuracy: expected a number in (0, 1], got {self.fit_accuracy}")
        if self.init not in INITS:
            raise ValueError(f"init: expected one of {', '.join(INITS)}, got {self.init!r}")
        if "looks-linear" in INITS[self.init]:
            odd = [w for w in (self.width, *self.sweep_widths) if w % 2 or w < 4]
            if odd:
                raise ValueError(f"width: init {self.init} needs even widths ≥ 4 (2·dim), got {odd}")
        if self.sweep_task not in TASKS:
            raise ValueError(f"sweep_task: expected one of {','.join(TASKS)}, got {self.sweep_task!r}")
        if bool(self.sweep_depths) != bool(self.sweep_widths):
            raise ValueError("sweep_depths and sweep_widths: give both (a depth × width grid) or neither")
        if any(v < 1 for v in self.sweep_depths + self.sweep_widths):
            raise ValueError("sweep_depths and sweep_widths: expected positive integers")
        if not (math.isfinite(self.sweep_lambda) and self.sweep_lambda >= 0):
            raise ValueError(f"sweep_lambda: expected a finite non-negative weight decay, got {self.sweep_lambda}")
        if self.eval_seed < 0:
            raise ValueError(f"eval_seed: expected a non-negative integer, got {self.eval_seed}")

    @classmethod
    def smoke(cls, **kw) -> Config:
        """Seconds: tiny nets, two weight decays, one seed, few steps and points."""
        base = dict(
            lambdas=(0.0, 1e-2),
            seeds=(0,),
            n_blocks=3,
            width=8,
            steps=40,
            batch=16,
            n_eval=64,
            n_pairs=300,
            n_plot=16,
            truth_oversample=2,
            name="smoke",
        )
        return cls(**{**base, **kw})

    @classmethod
    def full(cls, **kw) -> Config:
        """Minutes to an hour: 5 seeds, deeper and wider nets, more steps and points, a depth × width sweep."""
        base = dict(
            seeds=(0, 1, 2, 3, 4),
            n_blocks=12,
            width=64,
            steps=1500,
            n_eval=1000,
            n_pairs=20000,
            sweep_depths=(4, 8, 16),
            sweep_widths=(16, 32, 64, 128),
            name="full",
        )
        return cls(**{**base, **kw})

    def fit_rules(self) -> dict[str, str]:
        rule = f"W2²(outputs, target) − F ≤ {self.fit_w2sq_fraction:g}·(W2²(inputs, target) − F), F = sampling floor"
        return {"transport": rule, "gaussian": rule, "classification": f"held-out accuracy ≥ {self.fit_accuracy:g}"}

    def to_dict(self) -> dict:
        d = {"kind": KIND, **dataclasses.asdict(self)}
        d["fit_rules"] = self.fit_rules()
        return d


# ----- the plan: groups of runs trained together ----------------------------------------------------


def run_id(task: str, n_blocks: int, width: int, net: str, lam: float, seed: int) -> str:
    return f"{task}-L{n_blocks}w{width}-{net}-lam{lam:g}-s{seed}"


def planned_runs(cfg: Config) -> list[dict]:
    """Every run of the study as ``{task, n_blocks, width, net, lam, seed, kind, id}``, in groups
    (same task and architecture) that are trained together."""
    runs = []
    archs = [("grid", t, cfg.n_blocks, cfg.width, cfg.lambdas) for t in cfg.tasks]
    for depth in cfg.sweep_depths:
        for width in cfg.sweep_widths:
            if (depth, width) != (cfg.n_blocks, cfg.width) or cfg.sweep_lambda not in cfg.lambdas:
                archs.append(("sweep", cfg.sweep_task, depth, width, (cfg.sweep_lambda,)))
    for kind, task, depth, width, lams in archs:
        for net in ("residual", "plain"):
            for lam in lams:
                for seed in cfg.seeds:
                    runs.append(
                        dict(
                            task=task,
                            n_blocks=depth,
                            width=width,
                            net=net,
                            lam=float(lam),
                            seed=seed,
                            kind=kind,
                            id=run_id(task, depth, width, net, lam, seed),
                        )
                    )
    return runs


def _groups(runs: list[dict]) -> list[list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["task"], r["n_blocks"], r["width"]), []).append(r)
    return list(groups.values())


# ----- evaluation of one trained model ---------------------------------------------------------------


def _evaluate_model(net, k: int, meta: dict, truth, problem, pairs, cfg: Config, out: Path, train_loss: float) -> dict:
    import torch

    import otflow
    from toy_experiments.evaluation import energy_bound_fields, evaluate_tracks, lifted_weights

    model = net.export(k)
    tracks = otflow.record_tracks(model, truth.x, blocks=list(model), batch_size=len(truth.x))
    rec = dict(meta)
    rec["train_loss"] = float(train_loss)
    rec.update(
        evaluate_tracks(
            tracks,
            tx=truth.tx,
            y=truth.y,
            target_var=truth.target_var,
            w2sq_floor=truth.w2sq_floor or 0.0,
            w2sq_source_target=truth.w2sq_source_target,
            pairs=pairs,
        )
    )
    xl = tracks[:, -1]
    if problem.is_transport:
        rec["task_loss"] = rec["w2sq_to_target"]
        rec["accuracy"] = None
        rec["fit"] = bool(rec["fit_ratio"] <= cfg.fit_w2sq_fraction)
    else:
        with torch.no_grad():
            logits = net.logits(torch.as_tensor(xl, dtype=torch.float32)[None].expand(net.n_models, -1, -1))[k]
            lab = torch.as_tensor(truth.labels, dtype=torch.long)
            rec["task_loss"] = float(torch.nn.functional.cross_entropy(logits, lab))
            rec["accuracy"] = float((logits.argmax(1) == lab).float().mean())
        rec["fit"] = bool(rec["accuracy"] >= cfg.fit_accuracy)
    residual = meta["net"] == "residual"
    if cfg.bias:
        weights = [
            lifted_weights(
                net.W1[k, l].detach(),
                net.b1[k, l].detach(),
                net.W2[k, l].detach(),
                net.b2[k, l].detach(),
                residual=residual,
            )
            for l in range(net.n_blocks)
        ]
    else:
        weights = net.block_weights(k)
    rec.update(energy_bound_fields(weights, tracks, residual=residual, lifted=cfg.bias))
    rec["param_sq_norm"] = float(net.sq_norms()[k].detach())
    bad = [key for key, v in rec.items() if isinstance(v, float) and not math.isfinite(v)]
    rec["nonfinite"] = bad
    from otflow.runs import save_npz, write_json

    save_npz(
        out / "arrays" / f"{meta['id']}.npz",
        tracks=tracks[: cfg.n_plot].astype(np.float32),
        outputs=xl.astype(np.float32),
    )
    write_json(out / "runs" / f"{meta['id']}.json", rec)
    return rec


# ----- the study -------------------------------------------------------------------------------------


def _prepare_folder(cfg: Config, out: Path, resume: bool) -> None:
    from otflow.runs import prepare_run_folder, write_json

    skip = ("name", "figures", "threads", "device", "kind")  # kind: folders written before kinds were recorded
    prepare_run_folder(out, lambda doc: doc, cfg.to_dict(), resume=resume, skip=skip)
    write_json(out / "config.json", cfg.to_dict())


def _task_truth(task: str, cfg: Config, out: Path):
    """The problem ``task`` and its held-out points with their exact OT answer, saved under ``truth/``."""
    from otflow.runs import save_npz, write_json
    from toy_experiments.problems import ground_truth, make_problem

    problem = make_problem(task)
    t = ground_truth(problem, cfg.n_eval, seed=cfg.eval_seed, oversample=cfg.truth_oversample)
    save_npz(
        out / "truth" / f"{task}.npz",
        x=t.x,
        **{k: v for k, v in (("tx", t.tx), ("y", t.y), ("labels", t.labels)) if v is not None},
    )
    write_json(
        out / "truth" / f"{task}.json",
        {
            "target_var": t.target_var,
            "w2sq_source_target": t.w2sq_source_target,
            "w2sq_floor": t.w2sq_floor,
            "map_floor_uvp": t.map_floor,
        },
    )
    return problem, t


def run(cfg: Config, out, *, resume: bool = False, progress: bool = True, stop=None) -> list[dict]:
    """Train and evaluate every planned run, writing each run's results as it finishes.

    Returns the records of all runs (loaded from disk for those already done). No plotting. When
    ``stop()`` becomes True, the study ends with ``KeyboardInterrupt`` at the next training step or
    before the next evaluation; every run evaluated so far is on disk.
    """
    import torch
    from tqdm import tqdm

    import otflow
    from otflow.runs import write_json
    from toy_experiments.train import train_group

    out = Path(out)
    _prepare_folder(cfg, out, resume)
    torch.set_num_threads(cfg.threads)
    write_json(out / "environment.json", otflow.environment_info(device=cfg.device))
    plan = planned_runs(cfg)
    done = {r["id"] for r in plan if (out / "runs" / f"{r['id']}.json").exists()}
    groups = _groups(plan)
    todo = [g for g in groups if any(r["id"] not in done for r in g)]
    bar = tqdm(
        total=sum(cfg.steps + len(g) for g in todo),
        disable=not progress,
        unit="it",
        desc="gaussians",
        dynamic_ncols=True,
        leave=True,
    )
    truths, problems, timings = {}, {}, []
    t0 = time.perf_counter()
    try:
        for group in todo:
            task = group[0]["task"]
            if task not in truths:
                problems[task], truths[task] = _task_truth(task, cfg, out)
            problem, truth = problems[task], truths[task]
            # again before every group: otflow's compiled (numba, OpenMP) solver can reset the OpenMP
            # thread count that torch uses, which made later groups train several times slower
            torch.set_num_threads(cfg.threads)
            t_group = time.perf_counter()
            bar.set_description(f"{task} L={group[0]['n_blocks']} w={group[0]['width']}: training {len(group)} nets")
            net, losses = train_group(
                problem,
                [r["net"] == "residual" for r in group],
                [r["lam"] for r in group],
                [r["seed"] for r in group],
                n_blocks=group[0]["n_blocks"],
                width=group[0]["width"],
                bias=cfg.bias,
                init=cfg.init,
                steps=cfg.steps,
                batch=cfg.batch,
                lr=cfg.lr,
                device=cfg.device,
                progress=bar.update,
                stop=stop,
            )
            t_train = time.perf_counter()
            pairs = np.random.default_rng([cfg.eval_seed, 1]).integers(0, cfg.n_eval, size=(cfg.n_pairs, 2))
            pairs = pairs[pairs[:, 0] != pairs[:, 1]]
            bar.set_description(f"{task} L={group[0]['n_blocks']} w={group[0]['width']}: evaluating")
            for k, meta in enumerate(group):
                if stop is not None and stop():
                    raise KeyboardInterrupt
                if meta["id"] not in done:
                    _evaluate_model(net, k, meta, truth, problem, pairs, cfg, out, losses[k])
                    done.add(meta["id"])
                bar.update(1)
            t_eval = time.perf_counter()
            timings.append(
                {
                    "task": task,
                    "n_blocks": group[0]["n_blocks"],
                    "width": group[0]["width"],
                    "n_models": len(group),
                    "train_s": t_train - t_group,
                    "eval_s": t_eval - t_train,
                }
            )
    finally:
        bar.close()
    records = [json.loads((out / "runs" / f"{r['id']}.json").read_text()) for r in plan]
    _write_summary(cfg, out, records, time.perf_counter() - t0, timings)
    return records


def _write_summary(cfg: Config, out: Path, records: list[dict], seconds: float, timings: list[dict]) -> None:
    from otflow.runs import write_json, write_text
    from toy_experiments.summary import format_table, summarise, verdict_results, verdicts

    write_json(out / "metrics.json", records)
    scalar_keys = []
    for r in records:
        for k, v in r.items():
            if k not in scalar_keys and not isinstance(v, (list, dict)):
                scalar_keys.append(k)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=scalar_keys + ["segment_proportions"], extrasaction="ignore")
    w.writeheader()
    for r in records:
        w.writerow({**r, "segment_proportions": " ".join(f"{p:.4f}" for p in r["segment_proportions"])})
    write_text(out / "metrics.csv", buf.getvalue())
    grid = [r for r in records if r["kind"] == "grid"]
    rows = summarise(records)
    lines = verdicts(grid)
    table = format_table(rows, cfg.fit_rules())
    write_json(
        out / "summary.json",
        {
            "rows": rows,
            "verdicts": lines,
            "verdict_counts": [dataclasses.asdict(v) for v in verdict_results(grid)],
            "train_eval_seconds": seconds,
            "group_timings": timings,
        },
    )
    write_text(out / "table.txt", table + "\n\nVerdicts (default grid):\n" + "\n".join(lines) + "\n")


# ----- command line ----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    from otflow.experiment import add_common_options, add_config_options

    p = argparse.ArgumentParser(
        prog="python -m toy_experiments.gaussians",
        description="Residual vs plain nets on 2-D Gaussian problems, judged against exact optimal transport.",
        epilog="Exit status: 0 done, 1 a run failed, 2 bad usage, 130 interrupted (rerun with --resume). "
        "See docs/toy.md and docs/cli.md.",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--smoke", action="store_true", help="tiny study in seconds (used by the tests)")
    mode.add_argument("--full", action="store_true", help="bigger study: more seeds, deeper/wider nets, sweep")
    add_common_options(
        p,
        out_help="run folder (default: runs/gaussians-<name>-<time>)",
        resume_help="finish the study in --out, skipping its completed runs",
    )
    add_config_options(
        p, Config, skip=("figures",), defaults={f.name: getattr(Config(), f.name) for f in dataclasses.fields(Config)}
    )
    return p


def _check_device(device: str) -> None:
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device: not a torch device: {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device: {device} requested but CUDA is not available here")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"--device: expected cpu or cuda[:i], got {device!r}")


def main(argv=None) -> int:
    """Parse ``argv``, run the study, print the table and verdicts, draw the figures. Returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    from otflow.experiment import config_overrides

    try:
        overrides = {**config_overrides(args, Config), "figures": args.figures}
        factory = Config.smoke if args.smoke else Config.full if args.full else Config
        cfg = factory(**overrides)
        _check_device(cfg.device)
    except (ValueError, TypeError) as e:
        parser.error(str(e))
    out = Path(args.out) if args.out else Path("runs") / f"gaussians-{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if args.resume and not args.out:
        parser.error("--resume needs --out (the run folder to finish)")
    t0 = time.perf_counter()
    from otflow.experiment.cli import graceful_stop

    try:
        with graceful_stop() as stop:
            records = run(cfg, out, resume=args.resume, progress=args.progress, stop=stop)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # a run failed: the folder keeps every finished run
        print(f"error: {type(e).__name__}: {e}; finished runs are kept in {out} (--resume)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        n = len(list((out / "runs").glob("*.json"))) if (out / "runs").exists() else 0
        print(f"\ninterrupted: {n} completed run(s) saved in {out}; finish with --out {out} --resume", file=sys.stderr)
        return 130
    print((out / "table.txt").read_text())
    bad = [r["id"] for r in records if r["nonfinite"]]
    if bad:
        print(f"warning: non-finite metrics in {len(bad)} run(s): {', '.join(bad[:5])}", file=sys.stderr)
    if cfg.figures:
        from toy_experiments.plots import make_figures

        paths = make_figures(out)
        print(f"figures: {', '.join(str(p) for p in paths)}")
    from otflow.runs import write_timing

    write_timing(out, time.perf_counter() - t0)
    print(f"run folder: {out}   ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
