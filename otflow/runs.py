"""Run folders: atomic writes, seeding, and the provenance every result carries (STYLE 16).

A run folder holds ``config.json``, the results, ``environment.json`` (package versions, git
revision, device, command line) and figures. Every file is written to a temporary name in the same
folder and renamed into place, so an interrupted run never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np

__all__ = [
    "atomic_write_bytes",
    "prepare_run_folder",
    "write_timing",
    "save_figure",
    "temp_file",
    "write_json",
    "write_text",
    "save_npz",
    "environment_info",
    "seed_everything",
]

_PACKAGES = ("otflow", "numpy", "scipy", "torch", "pot", "matplotlib", "tqdm", "hypothesis", "ray")


def _umask() -> int:
    """The process's umask, read without changing it where /proc allows (os.umask sets it)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temp_file(folder, prefix: str, suffix: str = ".tmp") -> tuple[int, str]:
    """``tempfile.mkstemp`` in ``folder``, but with the permissions of a normally created file.

    ``mkstemp`` creates files readable by their owner only (0600); renamed into place they would keep
    that mode, and run folders or data sets on shared storage (a Ray cluster, a group project) would
    be unreadable by everyone else. The file gets ``0o666 & ~umask``, as ``open(path, "w")`` gives.
    """
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=suffix)
    os.fchmod(fd, 0o666 & ~_umask())
    return fd, tmp


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file(path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_json(path, obj) -> Path:
    """Atomically write ``obj`` as indented JSON (numpy scalars and arrays converted)."""
    return atomic_write_bytes(path, (json.dumps(obj, indent=2, default=_json_default) + "\n").encode())


def write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def save_npz(path, **arrays) -> Path:
    """Atomically write compressed arrays."""
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def _git_revision() -> str | None:
    """``git rev-parse HEAD`` of this checkout (``-dirty`` with uncommitted changes to tracked files).

    Where the code runs from a copy of the tree (a remote machine, whose ``.git``, if any, may be
    stale), the revision the copy was made from can be given in ``$OTFLOW_GIT_REVISION``: it is
    recorded, with ``-copy``, in place of what git says.
    """
    here = Path(__file__).resolve().parent
    given = os.environ.get("OTFLOW_GIT_REVISION")
    if given:
        return f"{given}-copy"
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def environment_info(device=None) -> dict:
    """Package versions, git revision, Python, platform, device and command line, for a run folder."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    info = {
        "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_revision": _git_revision(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "packages": versions,
        "argv": sys.argv,
    }
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["cuda_available"] = torch.cuda.is_available()
        if device is not None:
            dev = torch.device(device)
            info["device"] = str(dev)
            if dev.type == "cuda":
                info["device_name"] = torch.cuda.get_device_name(dev)
    except ImportError:
        pass
    if device is not None and "device" not in info:
        info["device"] = str(device)
    return info


def seed_everything(seed: int) -> np.random.Generator:
    """Seed torch (CPU and CUDA) and return a numpy Generator for the same seed.

    Python's and numpy's global states are left alone: otflow code draws only from the Generator
    it is given.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    try:
        import torch

        torch.manual_seed(int(seed))
    except ImportError:
        pass
    return np.random.default_rng(int(seed))


FIGURE_DPI = 110


def save_figure(fig, path, *, dpi: int = FIGURE_DPI) -> Path:
    """Write a matplotlib figure as PNG, atomically (the project's one figure saver)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return atomic_write_bytes(path, buf.getvalue())


def write_timing(folder, wall_s: float) -> Path:
    """``timing.json`` in a run folder: a command's wall time and the load average at its end."""
    load = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return write_json(Path(folder) / "timing.json", {"wall_s": float(wall_s), "load_average_end": load})


def prepare_run_folder(out, saved_config, now_config: dict, *, resume: bool, skip=()) -> None:
    """Check that ``out`` may receive a run whose configuration is ``now_config``.

    A folder that already holds a run (``config.json``) needs ``resume`` and the same configuration
    (``saved_config(folder_doc)`` extracts the saved one; keys in ``skip`` may differ); a non-empty
    folder without ``config.json`` is refused. Raises ValueError naming ``--out`` otherwise.
    """
    import json

    out = Path(out)
    cfg_file = out / "config.json"
    if cfg_file.exists():
        if not resume:
            raise ValueError(f"--out: {out} already holds a run; pass --resume to finish it, or choose another --out")
        saved = saved_config(json.loads(cfg_file.read_text()))
        now = json.loads(json.dumps(now_config))
        differ = sorted(k for k in now if k not in skip and saved.get(k) != now[k])
        if differ:
            raise ValueError(f"--out: {out} was run with a different config ({', '.join(differ)}); cannot resume")
    elif out.exists() and any(out.iterdir()):
        raise ValueError(f"--out: {out} exists and is not a run folder of this study; choose another --out")
