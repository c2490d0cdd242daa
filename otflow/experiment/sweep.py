"""The sweep engine: run a list of tasks into run folders, resumably, locally or on Ray.

A :class:`Task` names its run folder (``<out>/<task.name>``) and carries the parameters a study's
task function needs. :func:`run_sweep` skips tasks whose folder (or ``results_dir``) already holds
a final result, retries a task that raises up to ``max_attempts`` times, records everything in a
manifest ``<out>/sweep-<grid>.json`` rewritten atomically after each change, and on request copies
each finished run's small files into ``results_dir`` (:func:`export_results`). The studies define
their own grids and task functions (``image_experiments.sweep``, ``toy_experiments``).
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from otflow.runs import atomic_write_bytes, write_json

__all__ = [
    "DONE",
    "RESULT_FILES",
    "Task",
    "SweepResult",
    "result_status",
    "export_results",
    "read_manifest_tasks",
    "carry_timings",
    "run_sweep",
    "grid_from_command_line",
    "refuse_without_resume",
    "add_sweep_options",
]

DONE = ("completed", "diverged")  # a result that is final: not rerun
# the small files of a finished run that go under results/ (no checkpoints, no arrays)
RESULT_FILES = ("config.json", "metrics.json", "history.json", "environment.json")
MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class Task:
    """One run of a sweep. ``params`` say what is computed (they make the name); the run folder is
    ``<out>/<name>``; ``kind`` says which study's task function runs it."""

    name: str
    kind: str
    params: dict


def result_status(run_dir) -> str | None:
    """The status a run folder records: ``status`` of its ``metrics.json`` (``completed``,
    ``diverged``, ``failed``, ``running``, …), or None when there is none. A study whose folders
    record their status otherwise passes its own ``status_fn`` to :func:`run_sweep`."""
    try:
        doc = json.loads((Path(run_dir) / "metrics.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return doc.get("status") if isinstance(doc, dict) else None


def export_results(run_dir, results_dir) -> list[Path]:
    """Copy a finished run's small files (:data:`RESULT_FILES`) into ``results_dir``, atomically.

    ``config.json`` and ``metrics.json`` must exist; the others are copied where present. Returns
    the written paths. ``metrics.json`` is written last, so a results folder that has it is complete.
    """
    run_dir, results_dir = Path(run_dir), Path(results_dir)
    for name in ("config.json", "metrics.json"):
        if not (run_dir / name).is_file():
            raise ValueError(f"run folder {run_dir}: {name} is missing, nothing to export")
    order = [f for f in RESULT_FILES if f != "metrics.json"] + ["metrics.json"]
    written = []
    for name in order:
        src = run_dir / name
        if src.is_file():
            written.append(atomic_write_bytes(results_dir / name, src.read_bytes()))
    return written


_TIMING = ("wall_s", "started_utc", "finished_utc")


def read_manifest_tasks(path) -> dict:
    """The task entries (name → entry) of the manifest at ``path``; empty if it is missing or unreadable."""
    try:
        tasks = json.loads(Path(path).read_text()).get("tasks", {})
    except (OSError, json.JSONDecodeError, AttributeError):
        return {}
    return tasks if isinstance(tasks, dict) else {}


def carry_timings(tasks: dict, *previous: dict) -> dict:
    """Give each finished task that a sweep skipped (``cached``, no ``wall_s``) the timing of the
    attempt that produced its result, from earlier manifests' task entries (first match wins).

    A sweep that finds a task's result already there records it as cached; without this, every
    rerun of a grid would overwrite the only record of how long its finished runs took. Returns
    ``tasks``, changed in place.
    """
    for name, e in tasks.items():
        if e.get("status") not in DONE or not e.get("cached") or e.get("wall_s") is not None:
            continue
        for prev in previous:
            p = prev.get(name) or {}
            if p.get("status") in DONE and p.get("wall_s") is not None:
                e.update({k: p[k] for k in _TIMING if k in p})
                break
    return tasks


def _attempt(task_fn: Callable, task: Task, run_dir: str, status_fn: Callable = result_status) -> dict:
    """One attempt in the worker (local or Ray): call the task, then read the status it left."""
    t0 = time.perf_counter()
    out = task_fn(task, Path(run_dir))
    status = status_fn(run_dir)
    if status is None and isinstance(out, dict):
        status = out.get("status")
    return {"status": status, "wall_s": time.perf_counter() - t0}


# ----------------------------------------------------------------------------------------------
# the sweep


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class SweepResult:
    """Where the manifest is and each task's entry in it (name → dict)."""

    manifest_path: Path
    tasks: dict

    @property
    def counts(self) -> dict:
        out: dict[str, int] = {}
        for e in self.tasks.values():
            out[e["status"]] = out.get(e["status"], 0) + 1
        return out

    @property
    def failed(self) -> list[str]:
        return [n for n, e in self.tasks.items() if e["status"] == "failed"]


class _Manifest:
    def __init__(self, path: Path, grid: dict, tasks: list[Task], out_dir: Path, backend: str, max_attempts: int,
                 results_dir: Path | None = None):  # fmt: skip
        self.path = path
        self.out_dir = out_dir
        self.results_dir = results_dir
        self.status_fn: Callable = result_status
        # what earlier sweeps of this grid recorded: the run folder's manifest first, then the copy in
        # results_dir (all that is left when the run folders are lost, e.g. on a new machine)
        self.previous = [read_manifest_tasks(path)]
        if results_dir is not None:
            self.previous.append(read_manifest_tasks(results_dir / path.name))
        self.doc = {
            "format": MANIFEST_FORMAT,
            "grid": grid,
            "out_dir": str(out_dir),
            "backend": backend,
            "max_attempts": max_attempts,
            "created_utc": _now(),
            "updated_utc": None,
            "tasks": {},
        }
        for t in tasks:
            prev = next((old[t.name] for old in self.previous if t.name in old), {})
            self.doc["tasks"][t.name] = {
                "kind": t.kind,
                "params": t.params,
                "run_dir": t.name,
                "status": "pending",
                "cached": False,
                "attempts": 0,
                "attempts_before": int(prev.get("attempts_before", 0)) + int(prev.get("attempts", 0)),
                "errors": [],
                "wall_s": None,
            }

    def mark_done(self, name: str, status: str, cached) -> None:
        """A task skipped because its result exists: keep the timing of the attempt that made it."""
        self[name].update(status=status, cached=cached)
        carry_timings({name: self[name]}, *self.previous)

    def __getitem__(self, name):
        return self.doc["tasks"][name]

    def save(self):
        self.doc["updated_utc"] = _now()
        counts: dict[str, int] = {}
        for e in self.doc["tasks"].values():
            counts[e["status"]] = counts.get(e["status"], 0) + 1
        self.doc["counts"] = counts
        write_json(self.path, self.doc)
        if self.results_dir is not None:
            write_json(self.results_dir / self.path.name, self.doc)


def _error_record(attempt: int, err: BaseException) -> dict:
    cause = getattr(err, "cause", None) or err  # ray.exceptions.RayTaskError carries the task's exception
    tb = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    return {
        "attempt": attempt,
        "error": f"{type(cause).__name__}: {cause}".splitlines()[0][:500],
        "traceback": tb[-4000:],
    }


def run_sweep(
    tasks: list[Task],
    out_dir,
    *,
    grid: dict | str = "custom",
    backend: str = "local",
    task_fn: Callable | None = None,
    max_attempts: int = 3,
    cpus_per_task: int = 1,
    gpus_per_task: float | None = None,
    address: str | None = None,
    progress: bool = True,
    results_dir=None,
    status_fn: Callable = result_status,
) -> SweepResult:
    """Run every task that has no result in ``out_dir`` (or in ``results_dir``) yet; return the final
    manifest entries.

    Parameters
    ----------
    tasks : list of Task
        Distinct names; task ``t`` writes into ``out_dir / t.name``.
    grid : dict or str
        What the tasks came from; its ``name`` (or the string) names the manifest ``sweep-<name>.json``.
    backend : ``local`` or ``ray``
    task_fn : callable
        ``task_fn(task, run_dir)`` runs one task and leaves its result in ``run_dir`` (by default a
        ``metrics.json`` with a ``status``); an exception is a failed attempt. On Ray it must be
        picklable, and it should use ``cpus_per_task`` threads.
    max_attempts : int
        Attempts per task in this invocation (retries = max_attempts − 1).
    cpus_per_task, gpus_per_task : resources per task (Ray); ``gpus_per_task=None`` asks for one GPU
        per task when the cluster has any.
    address : str, optional
        Ray cluster to join (``auto`` or ``host:port``); default: start a local one. A Ray instance
        already initialised in this process is used as it is.
    results_dir : path, optional
        Where finished image runs' small files go (:func:`export_results`, e.g. ``results/images``
        in the repository), with a copy of the manifest. A task whose ``results_dir/<name>`` already
        holds a final ``metrics.json`` is skipped (``cached: "results"``), so a sweep resumed from a
        fresh clone reruns only what has not been committed.

    Raises
    ------
    KeyboardInterrupt
        After marking the running tasks ``interrupted`` in the manifest.
    """
    if backend not in ("local", "ray"):
        raise ValueError(f"backend: expected local or ray, got {backend!r}")
    if not isinstance(max_attempts, int) or max_attempts < 1:
        raise ValueError(f"max_attempts: expected a positive integer, got {max_attempts!r}")
    if not isinstance(cpus_per_task, int) or cpus_per_task < 1:
        raise ValueError(f"cpus_per_task: expected a positive integer, got {cpus_per_task!r}")
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"tasks: repeated run folder name(s) {', '.join(dup[:5])}")
    grid = grid if isinstance(grid, dict) else {"name": str(grid)}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if task_fn is None:
        raise ValueError("task_fn: expected a function task_fn(task, run_dir)")
    if results_dir is not None:
        results_dir = Path(results_dir)
        results_dir.mkdir(parents=True, exist_ok=True)
    man = _Manifest(out_dir / f"sweep-{grid['name']}.json", grid, tasks, out_dir, backend, max_attempts, results_dir)
    man.status_fn = status_fn
    todo = []
    for t in tasks:
        committed = status_fn(man.results_dir / t.name) if man.results_dir is not None else None
        status = status_fn(out_dir / t.name)
        if committed in DONE:
            man.mark_done(t.name, committed, "results")
        elif status in DONE:
            man.mark_done(t.name, status, True)
            if man.results_dir is not None:
                export_results(out_dir / t.name, man.results_dir / t.name)
        else:
            todo.append(t)
    man.save()

    from tqdm.auto import tqdm

    bar = tqdm(
        total=len(tasks),
        initial=len(tasks) - len(todo),
        disable=not progress,
        unit="task",
        desc=f"sweep {grid['name']}",
        dynamic_ncols=True,
    )
    try:
        if backend == "local":
            _run_local(todo, out_dir, man, task_fn, max_attempts, bar)
        else:
            _run_ray(todo, out_dir, man, task_fn, max_attempts, bar, cpus_per_task, gpus_per_task, address)
    finally:
        bar.close()
    return SweepResult(man.path, man.doc["tasks"])


def _finish(man: _Manifest, task: Task, attempt: int, out: dict | None, err: BaseException | None) -> bool:
    """Record one attempt's outcome; True when the task is settled (result or out of attempts)."""
    e = man[task.name]
    if err is None and out["status"] in DONE:
        e.update(status=out["status"], wall_s=out["wall_s"], finished_utc=_now())
        if man.results_dir is not None:
            export_results(man.out_dir / task.name, man.results_dir / task.name)
        return True
    if err is None:
        err = RuntimeError(f"task ended without a result (status {out['status']!r} in {task.name}/metrics.json)")
    e["errors"].append(_error_record(attempt, err))
    return False


def _run_local(todo, out_dir, man, task_fn, max_attempts, bar):
    for t in todo:
        e = man[t.name]
        for attempt in range(1, max_attempts + 1):
            e.update(status="running", attempts=attempt, started_utc=_now())
            man.save()
            bar.set_postfix_str(t.name)
            try:
                out = _attempt(task_fn, t, str(out_dir / t.name), man.status_fn)
            except (KeyboardInterrupt, SystemExit):
                e["status"] = "interrupted"
                man.save()
                raise
            except Exception as err:
                settled = _finish(man, t, attempt, None, err)
            else:
                settled = _finish(man, t, attempt, out, None)
            if settled:
                break
        else:
            e["status"] = "failed"
        man.save()
        bar.update(1)


def _run_ray(todo, out_dir, man, task_fn, max_attempts, bar, cpus_per_task, gpus_per_task, address):
    try:
        import ray
    except ImportError:
        raise RuntimeError('backend ray: Ray is not installed; pip install "otflow[ray]" (or "ray[default]")') from None
    started = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        started = True
    try:
        if gpus_per_task is None:
            gpus_per_task = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        remote = ray.remote(_attempt).options(num_cpus=cpus_per_task, num_gpus=gpus_per_task, max_retries=0)
        fn_ref = ray.put(task_fn)
        pending = {}

        def submit(t):
            e = man[t.name]
            e.update(status="running", attempts=e["attempts"] + 1, started_utc=_now())
            pending[remote.remote(fn_ref, t, str(out_dir / t.name), man.status_fn)] = t

        for t in todo:
            submit(t)
        man.save()
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    t = pending.pop(ref)
                    e = man[t.name]
                    try:
                        out = ray.get(ref)
                    except Exception as err:  # RayTaskError (the task raised), WorkerCrashedError, ...
                        settled = _finish(man, t, e["attempts"], None, err)
                    else:
                        settled = _finish(man, t, e["attempts"], out, None)
                    if settled:
                        bar.update(1)
                    elif e["attempts"] < max_attempts:
                        submit(t)
                    else:
                        e["status"] = "failed"
                        bar.update(1)
                    man.save()
        except (KeyboardInterrupt, SystemExit):
            for ref, t in pending.items():
                ray.cancel(ref, force=True)
                man[t.name]["status"] = "interrupted"
            man.save()
            raise
    finally:
        if started:
            ray.shutdown()


def grid_from_command_line(parser, argv, make_grid) -> tuple:
    """``(args, grid, tasks)`` from ``argv``: ``make_grid(args)`` builds the grid; a ValueError or
    TypeError there, or in ``grid.tasks()``, is a usage error (argparse's exit 2 with the message)."""
    args = parser.parse_args(argv)
    try:
        grid = make_grid(args)
        return args, grid, grid.tasks()
    except (TypeError, ValueError) as err:
        parser.error(str(err))


def refuse_without_resume(parser, out, grid_name: str, resume: bool) -> None:
    """The common grammar: a folder that already holds this sweep's manifest needs ``--resume``."""
    if (Path(out) / f"sweep-{grid_name}.json").exists() and not resume:
        parser.error(f"--out: {out} already holds sweep {grid_name}; pass --resume to continue it")


def add_sweep_options(parser, *, set_help: str) -> None:
    """The options every sweep command shares: ``--set KEY=VALUE``, ``--backend``, ``--address``,
    ``--max-attempts``, ``--cpus-per-task``."""
    from otflow.experiment.cli import key_value

    parser.add_argument(
        "--set", dest="overrides", type=key_value, action="append", default=[], metavar="KEY=VALUE", help=set_help
    )
    parser.add_argument("--backend", choices=("local", "ray"), default="local", help="run tasks here or on Ray")
    parser.add_argument("--address", default=None, help="Ray cluster address (auto or host:port); default: a local one")
    parser.add_argument("--max-attempts", type=int, default=3, help="attempts per task before it is recorded failed")
    parser.add_argument("--cpus-per-task", type=int, default=1, help="CPUs (torch threads) per task")
