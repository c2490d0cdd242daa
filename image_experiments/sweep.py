r"""λ sweeps: every (dataset, arch, K, λ, seed) of a grid as one task, run locally or on Ray.

Commands (docs/reproduction.md has the grids, the expected runtimes and the report)::

    python -m image_experiments.sweep mnist --backend local            # 4 λ × 2 archs × 3 seeds, cpu profile
    python -m image_experiments.sweep table4 --backend ray             # a local Ray cluster
    python -m image_experiments.sweep table6 --backend ray --address auto   # join a running cluster
    python -m image_experiments.sweep my_grid.toml --dry-run           # a custom grid; list tasks and their state
    python -m image_experiments.report runs/images                     # tables against the paper, figures

Named grids (SPEC §6 λ grids): ``table4`` (CIFAR-10, K=1, 9 λ), ``table5`` (CIFAR-100, K=1, 9 λ;
also Tables 2-3), ``table6`` / ``table7`` (CIFAR-10 / CIFAR-100, K=4, 5 λ), ``mnist`` (4 λ, 3
seeds), ``table4-cpu``, ``table4-converged(-long)(-seeds)``, ``mnist-width`` and
``mnist(-width)-converged`` (the CPU campaign of docs/reproduction.md). The 2-D study has its own
sweep, :mod:`toy_experiments.sweep`.
A custom grid is a JSON or TOML file with the fields of :class:`Grid`::

    name = "mnist_quick"
    profile = "smoke"
    datasets = ["mnist"]
    wds = [0.0, 1e-3]
    seeds = [0, 1]
    [overrides]            # Config fields of image_experiments.run, applied to every task
    epochs = 3

Every task has a deterministic run folder ``<out>/<name>``: the image run's ``Config.name``
(``cifar10_resnet_k1_wd0.01_seed0_cpu``), with ``_o<hash>`` appended when the grid overrides the
profile. A task whose folder already holds a result (``metrics.json`` with status ``completed`` or
``diverged``) is skipped. A task that raises is retried up to ``--max-attempts`` times in all
(default 3) and then recorded as ``failed``; the sweep goes on. Rerunning it with ``--resume`` retries its failed
tasks with a fresh budget and resumes interrupted image runs from their last epoch checkpoint.

The sweep's state is ``<out>/sweep-<grid>.json`` (rewritten atomically after every change;
a grid changed on the command line, e.g. ``table4 --profile cpu-grid``, is named
``<grid>-<hash of the changes>`` so that it never overwrites the state of another sweep):
per task its kind, parameters, run folder, status (``pending``, ``running``, ``completed``,
``diverged``, ``failed``, ``interrupted``), ``cached`` (result found, not rerun), attempts, the
error of each failed attempt and the wall time.

Both backends pin each task to ``--cpus-per-task`` torch threads (default 1), so the same grid gives
the same numbers on either. On Ray each task asks for that many CPUs and, where the cluster has
GPUs, one GPU (``--gpus-per-task``); the run folders must be on storage every node can reach.
Exit status: 0 when every task has a result, 1 when some failed, 2 for bad options, 130 when
interrupted (rerun the same command to resume).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from otflow.experiment import sweep as engine
from otflow.experiment.sweep import SweepResult, Task, export_results, result_status

__all__ = [
    "K1_WDS",
    "K4_WDS",
    "MNIST_WDS",
    "GRIDS",
    "Grid",
    "Task",
    "SweepResult",
    "load_grid",
    "result_status",
    "export_results",
    "run_task",
    "run_sweep",
    "main",
]

# SPEC §6 λ grids
K1_WDS = (0.0, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.2)
K4_WDS = (0.0, 5e-4, 1e-3, 5e-3, 1e-2)
MNIST_WDS = (0.0, 1e-4, 1e-3, 1e-2)  # SPEC §6 gives only "1e-3 [U]"; the issue asks for ≥ 4 values


@dataclass(frozen=True)
class Grid:
    """A product grid of image runs (:mod:`image_experiments.run`); the 2-D study has its own
    (:mod:`toy_experiments.sweep`)."""

    name: str
    datasets: tuple[str, ...] = ("cifar10",)
    archs: tuple[str, ...] = ("resnet", "plain")
    ks: tuple[int, ...] = (1,)
    wds: tuple[float, ...] = K1_WDS
    seeds: tuple[int, ...] = (0, 1, 2)
    profile: str = "cpu"
    overrides: dict = field(default_factory=dict)
    widths: tuple = (None,)  # first-stage widths (Fig. 5); None = Table 1

    def __post_init__(self):
        for key in ("datasets", "archs", "ks", "wds", "seeds", "widths"):
            val = getattr(self, key)
            if isinstance(val, (str, bytes)) or not isinstance(val, Iterable):
                raise ValueError(f"{key}: expected a list, got {val!r}")
            object.__setattr__(self, key, tuple(val))
            if not getattr(self, key):
                raise ValueError(f"{key}: expected a non-empty list")
        if not isinstance(self.name, str) or not self.name or any(c in self.name for c in "/\\ "):
            raise ValueError(f"name: expected a non-empty name without '/', '\\' or spaces, got {self.name!r}")
        if any(
            not isinstance(w, (int, float)) or isinstance(w, bool) or not (w >= 0 and math.isfinite(w))
            for w in self.wds
        ):
            raise ValueError(f"wds: expected finite non-negative weight decays, got {list(self.wds)}")
        object.__setattr__(self, "wds", tuple(float(w) for w in self.wds))
        if any(w is not None and (isinstance(w, bool) or not isinstance(w, int) or w < 1) for w in self.widths):
            raise ValueError(f"widths: expected positive integers or null, got {list(self.widths)}")
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in self.seeds):
            raise ValueError(f"seeds: expected non-negative integers, got {list(self.seeds)}")
        if not isinstance(self.overrides, dict):
            raise ValueError(f"overrides: expected a table of Config fields, got {self.overrides!r}")

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    def tasks(self) -> list[Task]:
        """Every task of the grid, in a fixed order; raises ValueError for an invalid configuration."""
        return [
            _image_task(d, a, k, wd, s, self.profile, {**self.overrides, **({} if w is None else {"width": w})})
            for d in self.datasets
            for k in self.ks
            for w in self.widths
            for a in self.archs
            for wd in self.wds
            for s in self.seeds
        ]


GRIDS = {
    "table4": Grid("table4", datasets=("cifar10",), ks=(1,), wds=K1_WDS, profile="cpu"),
    "table5": Grid("table5", datasets=("cifar100",), ks=(1,), wds=K1_WDS, profile="cpu"),
    "table6": Grid("table6", datasets=("cifar10",), ks=(4,), wds=K4_WDS, profile="full"),
    "table7": Grid("table7", datasets=("cifar100",), ks=(4,), wds=K4_WDS, profile="full"),
    "table4-cpu": Grid("table4-cpu", datasets=("cifar10",), ks=(1,), wds=K1_WDS, seeds=(0,), profile="cpu-grid"),
    "mnist": Grid("mnist", datasets=("mnist",), ks=(1,), wds=MNIST_WDS, seeds=(0, 1, 2), profile="cpu"),
    # issue 11: CIFAR-10 K=1 trained to convergence on CPU: every λ at seed 0, seeds 1-2 at four λ
    "table4-converged": Grid("table4-converged", datasets=("cifar10",), wds=K1_WDS, seeds=(0,), profile="converged"),
    "table4-converged-seeds": Grid(
        "table4-converged-seeds", datasets=("cifar10",), wds=(0.0, 1e-3, 1e-2, 0.1), seeds=(1, 2), profile="converged"
    ),
    # the same grids with twice the epochs (profile converged-long), for the λ that still rose at 40
    "table4-converged-long": Grid(
        "table4-converged-long", datasets=("cifar10",), wds=K1_WDS, seeds=(0,), profile="converged-long"
    ),
    "table4-converged-long-seeds": Grid(
        "table4-converged-long-seeds",
        datasets=("cifar10",),
        wds=(0.0, 1e-3, 1e-2, 0.1),
        seeds=(1, 2),
        profile="converged-long",
    ),
    # claim 7 (Fig. 5): the MNIST ResNet at λ = 1e-2 at other widths; Table 1's 1000 is in the mnist grid
    "mnist-width": Grid(
        "mnist-width",
        datasets=("mnist",),
        archs=("resnet",),
        wds=(1e-2,),
        seeds=(0, 1, 2),
        profile="cpu",
        widths=(250, 500, 2000),
    ),
    # the MNIST grids at profile converged (20 epochs): at the cpu profile's 10 every λ = 1e-2 run still rose
    "mnist-converged": Grid(
        "mnist-converged", datasets=("mnist",), ks=(1,), wds=MNIST_WDS, seeds=(0, 1, 2), profile="converged"
    ),
    "mnist-width-converged": Grid(
        "mnist-width-converged",
        datasets=("mnist",),
        archs=("resnet",),
        wds=(1e-2,),
        seeds=(0, 1, 2),
        profile="converged",
        widths=(250, 500, 2000),
    ),
}


def _hash(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:8]


def _tuples(d: dict) -> dict:
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()}


_IMAGE_FIXED = ("dataset", "arch", "k", "wd", "seed", "profile", "run_dir", "out_dir", "threads", "progress")


def _image_task(dataset, arch, k, wd, seed, profile, overrides) -> Task:
    from image_experiments.run import profile_config

    bad = sorted(set(overrides) & set(_IMAGE_FIXED))
    if bad:
        raise ValueError(f"overrides: {', '.join(bad)} are set by the grid or the sweep, not by overrides")
    cfg = profile_config(profile, dataset, arch, k, wd=float(wd), seed=int(seed), **_tuples(overrides))
    extra = {k: v for k, v in overrides.items() if k != "width"}  # the width is in the name already
    name = cfg.name + (f"_o{_hash(extra)}" if extra else "")
    params = {
        "dataset": dataset,
        "arch": arch,
        "k": int(k),
        "wd": float(wd),
        "seed": int(seed),
        "profile": profile,
        "overrides": dict(overrides),
    }
    return Task(name, "image", params)


def load_grid(path) -> Grid:
    """A custom grid from a JSON or TOML file (the fields of :class:`Grid`; ``name`` defaults to the file stem)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ValueError(f"grid file {path}: cannot read it ({err.strerror})") from None
    try:
        if path.suffix == ".toml":
            import tomllib

            doc = tomllib.loads(text)
        elif path.suffix == ".json":
            doc = json.loads(text)
        else:
            raise ValueError(f"grid file {path}: expected a .json or .toml file")
    except (json.JSONDecodeError, ValueError) as err:
        if isinstance(err, ValueError) and str(err).startswith("grid file"):
            raise
        raise ValueError(f"grid file {path}: cannot parse it: {err}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"grid file {path}: expected a table of grid fields at the top level")
    known = {f.name for f in fields(Grid)}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ValueError(
            f"grid file {path}: unknown field(s) {', '.join(unknown)}; expected {', '.join(sorted(known))}"
        )
    doc.setdefault("name", path.stem)
    return Grid(**doc)


# ----------------------------------------------------------------------------------------------
# running one task


def run_task(task: Task, run_dir, *, threads: int = 1, data_dir: str | None = None, download: bool = True) -> dict:
    """The default task function: train and measure one image configuration."""
    run_dir = Path(run_dir)
    p = task.params
    if task.kind != "image":
        raise ValueError(f"task {task.name}: unknown kind {task.kind!r} (image sweeps run image tasks)")
    from image_experiments.run import profile_config, run

    cfg = profile_config(
        p["profile"],
        p["dataset"],
        p["arch"],
        p["k"],
        wd=p["wd"],
        seed=p["seed"],
        **_tuples(p["overrides"]),
        run_dir=str(run_dir),
        out_dir=str(run_dir.parent),
        threads=threads,
        progress=False,
        data_dir=data_dir,
        download=download,
    )
    return run(cfg)


def _default_task_fn(threads: int, data_dir: str | None, download: bool) -> Callable:
    def fn(task, run_dir):
        return run_task(task, run_dir, threads=threads, data_dir=data_dir, download=download)

    return fn


def run_sweep(
    tasks: list[Task],
    out_dir,
    *,
    task_fn: Callable | None = None,
    cpus_per_task: int = 1,
    data_dir: str | None = None,
    download: bool = True,
    **engine_options,
) -> SweepResult:
    """:func:`otflow.experiment.sweep.run_sweep` (its ``engine_options``: ``grid``, ``backend``,
    ``max_attempts``, ``gpus_per_task``, ``address``, ``progress``, ``results_dir``) with this
    package's task function, :func:`run_task` with ``cpus_per_task`` threads, ``data_dir`` and
    ``download``, unless ``task_fn`` is given."""
    if not isinstance(cpus_per_task, int) or cpus_per_task < 1:
        raise ValueError(f"cpus_per_task: expected a positive integer, got {cpus_per_task!r}")
    if task_fn is None:
        task_fn = _default_task_fn(cpus_per_task, data_dir, download)
    return engine.run_sweep(tasks, out_dir, task_fn=task_fn, cpus_per_task=cpus_per_task, **engine_options)


# ----------------------------------------------------------------------------------------------
# summary and command line


def _headline(run_dir: Path) -> dict:
    try:
        doc = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    if not isinstance(doc, dict):
        return {}
    s = doc.get("summary") or {}
    return {"test_acc": (doc.get("test") or {}).get("acc"), "lss": s.get("lss_mean"), "ots": s.get("ots_mean")}


def summary_table(result: SweepResult, out_dir) -> str:
    """A plain-text table: one line per task (status, attempts, wall time, test accuracy, LSS, OTS)."""
    rows = [("task", "status", "tries", "wall s", "test acc", "LSS", "OTS")]

    def f(v, fmt):
        return "-" if v is None else format(v, fmt)

    for name, e in result.tasks.items():
        h = _headline(Path(out_dir) / name)
        status = e["status"] + (" (cached)" if e.get("cached") else "")
        rows.append(
            (
                name,
                status,
                str(e["attempts"]),
                f(e.get("wall_s"), ".1f"),
                f(h.get("test_acc"), ".4f"),
                f(h.get("lss"), ".3f"),
                f(h.get("ots"), ".4f"),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    counts = ", ".join(f"{n} {k}" for k, n in sorted(result.counts.items()))
    return "\n".join(lines) + f"\n\n{len(result.tasks)} tasks: {counts}"


def build_parser() -> argparse.ArgumentParser:
    from otflow.experiment import add_common_options
    from otflow.experiment.cli import csv_list

    p = argparse.ArgumentParser(
        prog="python -m image_experiments.sweep",
        description="Run a λ grid of image runs, locally or on Ray; resumable (the 2-D study: toy_experiments.sweep).",
        epilog="GRID is one of " + ", ".join(GRIDS) + ", or a .json/.toml grid file. Exit status: 0 every task "
        "has a result, 1 some failed, 2 bad usage, 130 interrupted (rerun with --resume). See docs/reproduction.md.",
    )
    p.add_argument("grid", help="named grid or grid file")
    add_common_options(
        p,
        out_help="where the run folders and the manifest go (default runs/images)",
        resume_help="continue the sweep in --out: tasks with a result are skipped, interrupted runs resume",
    )
    p.add_argument(
        "--profile",
        default=None,
        help="profile of every task (smoke, cpu, cpu-grid, converged, converged-long, gpu, full); default: the grid's",
    )
    p.add_argument("--datasets", type=csv_list(str, "--datasets"), default=None, help="comma-separated")
    p.add_argument("--archs", type=csv_list(str, "--archs"), default=None, help="comma-separated")
    p.add_argument("--ks", type=csv_list(int, "--ks"), default=None, help="comma-separated K values")
    p.add_argument("--wds", type=csv_list(float, "--wds"), default=None, help="comma-separated λ values")
    p.add_argument("--seeds", type=csv_list(int, "--seeds"), default=None, help="comma-separated seeds")
    engine.add_sweep_options(p, set_help="override a Config field in every task (repeatable), e.g. --set epochs=3")
    p.add_argument(
        "--gpus-per-task", type=float, default=None, help="GPUs per Ray task (default 1 if the cluster has any)"
    )
    p.add_argument(
        "--results",
        default=None,
        metavar="DIR",
        help="copy each finished run's small files (config, metrics, history, environment) and the "
        "manifest into DIR (e.g. results/images) and skip tasks whose result DIR already holds",
    )
    p.add_argument("--data-dir", default=None, help="data directory (default $OTFLOW_DATA or the user cache)")
    p.add_argument("--no-download", action="store_true", help="never download a missing dataset")
    p.add_argument("--dry-run", action="store_true", help="list the tasks and whether each has a result; run nothing")
    return p


def _grid_from_args(args) -> Grid:
    if args.grid in GRIDS:
        grid = GRIDS[args.grid]
    elif args.grid.endswith((".json", ".toml")):
        grid = load_grid(args.grid)
    else:
        raise ValueError(f"grid: expected one of {', '.join(GRIDS)} or a .json/.toml file, got {args.grid!r}")
    changes = {
        k: getattr(args, k)
        for k in ("profile", "datasets", "archs", "ks", "wds", "seeds")
        if getattr(args, k) is not None
    }
    if args.overrides:
        changes["overrides"] = {**grid.overrides, **dict(args.overrides)}
    if changes:
        # a changed grid keeps its own manifest: `table4 --profile cpu-grid` and `table4 --wds 5e-4` must
        # not overwrite each other's state; the same options give the same name, so a rerun resumes
        key = json.dumps(changes, sort_keys=True, default=str)
        name = f"{grid.name}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"
        grid = Grid(**{**grid.to_dict(), **changes, "name": name})
    if args.max_attempts < 1:
        raise ValueError(f"--max-attempts: expected a positive integer, got {args.max_attempts}")
    if args.cpus_per_task < 1:
        raise ValueError(f"--cpus-per-task: expected a positive integer, got {args.cpus_per_task}")
    return grid


def _figures(result: SweepResult, out_dir: Path) -> None:
    from image_experiments.figures import make_figures

    for name, e in result.tasks.items():
        if e["kind"] == "image" and e["status"] == "completed" and (out_dir / name / "history.json").exists():
            make_figures(out_dir / name)


def main(argv=None) -> int:
    from otflow.experiment import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK

    parser = build_parser()
    args, grid, tasks = engine.grid_from_command_line(parser, argv, _grid_from_args)
    out_dir = Path(args.out or "runs/images")
    if args.dry_run:
        for t in tasks:  # a result in --results counts, as the sweep itself would skip it
            committed = result_status(Path(args.results) / t.name) if args.results else None
            state = f"{committed} (in {args.results})" if committed == "completed" else result_status(out_dir / t.name)
            print(f"{t.name}  {state or 'no result'}")
        print(f"{len(tasks)} tasks in grid {grid.name}; run folders under {out_dir}")
        return EXIT_OK
    engine.refuse_without_resume(parser, out_dir, grid.name, args.resume)
    t0 = time.perf_counter()
    try:
        result = run_sweep(
            tasks,
            out_dir,
            grid=grid.to_dict(),
            backend=args.backend,
            max_attempts=args.max_attempts,
            cpus_per_task=args.cpus_per_task,
            gpus_per_task=args.gpus_per_task,
            address=args.address,
            data_dir=args.data_dir,
            download=not args.no_download,
            progress=args.progress,
            results_dir=args.results,
        )
    except KeyboardInterrupt:
        print(
            f"\ninterrupted; rerun with --resume to continue (state in {out_dir}/sweep-{grid.name}.json)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    if args.figures:
        _figures(result, out_dir)
    print(summary_table(result, out_dir))
    print(f"manifest: {result.manifest_path}   ({time.perf_counter() - t0:.1f} s)")
    if result.failed:
        print(f"error: {len(result.failed)} task(s) failed; errors in {result.manifest_path}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
