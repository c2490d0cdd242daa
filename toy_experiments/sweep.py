r"""The 2-D study as a sweep: one task per (problem, λ, seed), each training the residual and the plain net.

Command (the grammar of docs/cli.md)::

    python -m toy_experiments.sweep --profile smoke --out runs/toy                 # every problem, λ and seed
    python -m toy_experiments.sweep --problems gaussian --wds 0,0.01 --seeds 0 --out runs/toy
    python -m toy_experiments.sweep --backend ray --out runs/toy --resume           # continue on a Ray cluster

A task runs :func:`toy_experiments.gaussians.run` for one problem, one λ and one seed (both nets,
as the study pairs them) into ``<out>/toy_<problem>_wd<λ>_seed<seed>_<profile>``; the engine
(:mod:`otflow.experiment.sweep`) skips finished tasks, retries failed ones and keeps the manifest
``<out>/sweep-<grid>.json``. A task folder is finished once its ``summary.json`` (written last)
exists.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from otflow.experiment import sweep as engine
from otflow.experiment.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, add_common_options, csv_list

__all__ = ["ToyGrid", "WDS", "PROBLEMS", "PROFILES", "status", "run_task", "run_sweep", "main"]

WDS = (0.0, 1e-4, 1e-3, 1e-2, 1e-1)  # toy_experiments.gaussians.Config default
PROBLEMS = ("transport", "gaussian", "classification")
PROFILES = ("smoke", "default", "full")
_FIXED = {"tasks", "lambdas", "seeds", "threads", "figures", "name"}


def _hash(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:8]


def _tuples(d: dict) -> dict:
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()}


def toy_config(params: dict, *, threads: int):
    """The :class:`toy_experiments.gaussians.Config` of one task."""
    from toy_experiments.gaussians import Config

    bad = sorted(set(params["overrides"]) & _FIXED)
    if bad:
        raise ValueError(f"overrides: {', '.join(bad)} are set by the grid or the sweep, not by overrides")
    factory = {"smoke": Config.smoke, "default": Config, "full": Config.full}[params["profile"]]
    kw = dict(
        tasks=(params["problem"],),
        lambdas=(params["wd"],),
        seeds=(params["seed"],),
        sweep_depths=(),
        sweep_widths=(),
        threads=threads,
        figures=False,
    )
    return factory(**{**kw, **_tuples(params["overrides"])})


@dataclass(frozen=True)
class ToyGrid:
    """A product grid of toy tasks (problems × λ × seeds) at one profile, with Config overrides."""

    name: str = "toy"
    problems: tuple[str, ...] = PROBLEMS
    wds: tuple[float, ...] = WDS
    seeds: tuple[int, ...] = (0, 1, 2)
    profile: str = "default"
    overrides: dict = field(default_factory=dict)

    def __post_init__(self):
        if any(p not in PROBLEMS for p in self.problems) or not self.problems:
            raise ValueError(f"problems: expected some of {', '.join(PROBLEMS)}, got {list(self.problems)}")
        if self.profile not in PROFILES:
            raise ValueError(f"profile: expected one of {', '.join(PROFILES)}, got {self.profile!r}")
        if not self.wds or any(not (isinstance(w, (int, float)) and w >= 0) for w in self.wds):
            raise ValueError(f"wds: expected non-negative weight decays, got {list(self.wds)}")
        if not self.seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in self.seeds):
            raise ValueError(f"seeds: expected non-negative integers, got {list(self.seeds)}")

    def tasks(self) -> list[engine.Task]:
        out = []
        for p in self.problems:
            for wd in self.wds:
                for s in self.seeds:
                    params = {"problem": p, "wd": float(wd), "seed": int(s), "profile": self.profile}
                    params["overrides"] = dict(self.overrides)
                    toy_config(params, threads=1)  # validates the overrides
                    suffix = f"_o{_hash(self.overrides)}" if self.overrides else ""
                    out.append(engine.Task(f"toy_{p}_wd{wd:g}_seed{s}_{self.profile}{suffix}", "toy", params))
        return out


def status(run_dir) -> str | None:
    """``completed`` once the task's ``summary.json`` (written last by the study) exists."""
    return "completed" if (Path(run_dir) / "summary.json").exists() else None


def run_task(task: engine.Task, run_dir, *, threads: int = 1) -> dict:
    """Run one toy task (both nets of one problem, λ and seed) into ``run_dir``; resumable."""
    from toy_experiments.gaussians import run

    records = run(toy_config(task.params, threads=threads), Path(run_dir), resume=True, progress=False)
    return {"status": "completed", "records": records}


def _task_fn(threads: int) -> Callable:
    def fn(task, run_dir):
        return run_task(task, run_dir, threads=threads)

    return fn


def run_sweep(tasks, out_dir, *, cpus_per_task: int = 1, task_fn: Callable | None = None, **engine_options):
    """:func:`otflow.experiment.sweep.run_sweep` with :func:`run_task` and :func:`status`."""
    return engine.run_sweep(
        tasks,
        out_dir,
        task_fn=task_fn or _task_fn(cpus_per_task),
        cpus_per_task=cpus_per_task,
        status_fn=status,
        **engine_options,
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m toy_experiments.sweep",
        description="The 2-D toy study as a resumable sweep, one task per (problem, λ, seed), locally or on Ray.",
        epilog="Exit status: 0 every task has a result, 1 some failed, 2 bad usage, 130 interrupted "
        "(rerun with --resume). See docs/toy.md and docs/cli.md.",
    )
    add_common_options(
        p,
        out_help="where the task folders and the manifest go (default runs/toy)",
        resume_help="continue the sweep in --out: finished tasks are skipped",
    )
    p.add_argument("--profile", choices=PROFILES, default="default", help="study size of every task (default: default)")
    p.add_argument("--problems", type=csv_list(str, "--problems"), default=PROBLEMS, help="comma-separated problems")
    p.add_argument("--wds", type=csv_list(float, "--wds"), default=WDS, help="comma-separated λ values")
    p.add_argument("--seeds", type=csv_list(int, "--seeds"), default=(0, 1, 2), help="comma-separated seeds")
    engine.add_sweep_options(p, set_help="override a toy_experiments.gaussians Config field in every task (repeatable)")
    return p


def _grid(args) -> ToyGrid:
    changes = {"problems": args.problems, "wds": args.wds, "seeds": args.seeds, "overrides": dict(args.overrides)}
    default = ToyGrid(profile=args.profile)
    same = all(tuple(getattr(default, k)) == tuple(v) for k, v in changes.items() if k != "overrides")
    name = "toy" if same and not args.overrides else f"toy-{_hash(changes)}"
    if args.max_attempts < 1 or args.cpus_per_task < 1:
        raise ValueError("--max-attempts and --cpus-per-task: expected positive integers")
    return ToyGrid(name=f"{name}-{args.profile}", profile=args.profile, **changes)


def main(argv=None) -> int:
    parser = build_parser()
    args, grid, tasks = engine.grid_from_command_line(parser, argv, _grid)
    out = Path(args.out or "runs/toy")
    engine.refuse_without_resume(parser, out, grid.name, args.resume)
    t0 = time.perf_counter()
    try:
        result = run_sweep(
            tasks,
            out,
            grid={**asdict(grid)},
            backend=args.backend,
            address=args.address,
            max_attempts=args.max_attempts,
            cpus_per_task=args.cpus_per_task,
            progress=args.progress,
        )
    except KeyboardInterrupt:
        print(f"\ninterrupted; rerun with --resume (state in {out}/sweep-{grid.name}.json)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    for name, e in result.tasks.items():
        print(f"{name}  {e['status']}{' (cached)' if e.get('cached') else ''}  {e['attempts']} attempt(s)")
    counts = ", ".join(f"{n} {k}" for k, n in sorted(result.counts.items()))
    print(f"{len(result.tasks)} tasks: {counts}; manifest {result.manifest_path} ({time.perf_counter() - t0:.1f} s)")
    if args.figures:
        from toy_experiments.plots import make_figures

        for name, e in result.tasks.items():
            if e["status"] == "completed":
                make_figures(out / name)
    return EXIT_FAILED if result.failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
