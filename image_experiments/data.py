"""MNIST, CIFAR-10 and CIFAR-100 from their official files, with a checked download.

Layout under the data directory (the same as the official releases):

* ``mnist/`` the four IDX files, gzip-compressed (``*.gz``) or not;
* ``cifar10/cifar-10-batches-py/`` ``data_batch_1`` … ``data_batch_5``, ``test_batch``;
* ``cifar100/cifar-100-python/`` ``train``, ``test``.

The data directory is ``--data-dir``, else ``$OTFLOW_DATA``, else ``~/.cache/otflow``. A missing
data set is downloaded from its official location with a progress bar and checked against the
published md5 (MNIST: the md5 of the *decompressed* files; CIFAR: of the tarball). Downloads go to a
temporary file that is renamed into place only after the check, so a failed or corrupt download
leaves nothing half-written; it ends with a :class:`DataError` saying where to put the files by hand.

Files already on disk are checked before use, and a truncated or corrupt one raises a
:class:`DataError` that names the file and says to delete it (and re-download) or where to get it:

* MNIST: the gzip stream and the IDX header must be complete; a file of the official size must
  have the official md5 of its decompressed bytes. A file of another size (a hand-made subset) is
  checked for its layout only.
* CIFAR: a batch whose file md5 is the official one (torchvision's table) is trusted. Any other
  batch (a re-pickled copy such as ``../shared/data``, whose test batch also holds only the first
  1,000 test images) must unpickle to the official layout, and where the content is known its
  pixels must hash to it: the 50,000 CIFAR-10 training images (any pickling, same pixels) and the
  first 1,000 test images. Other batches (e.g. hand-made ones) are checked for their layout only.

Hashes are computed once per file and process (keyed by path, size and mtime); loading CIFAR-10
again in the same process does not hash again.

Images are kept as uint8 tensors ``(N, C, H, W)`` in the official order; batches become floats in
[0, 1] at use, and the model normalises them (so noise and FGSM act on pixel values).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from otflow.runs import temp_file

__all__ = ["DataError", "ImageData", "DATASETS", "default_data_dir", "resolve_data_dir", "load_dataset"]

DATASETS = ("mnist", "cifar10", "cifar100")
OFFICIAL_TEST_SIZE = 10_000

MNIST_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
# md5 of the decompressed files, as published (and as in ../shared/data/README.md)
MNIST_FILES = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
# md5 of the official files as unpacked from the tarballs (torchvision, datasets/cifar.py)
CIFAR_FILE_MD5 = {
    "cifar10": {
        "data_batch_1": "c99cafc152244af753f735de768cd75f",
        "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "634d18415352ddfa80567beed471001a",
        "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
        "test_batch": "40351d587109b95175f43aff81a1287e",
    },
    "cifar100": {"train": "16019d7e3df5f24257cddd939b257f8d", "test": "f0ef6b0ae62326f3e7ffdfab6717acfc"},
}
# sha256 of the uint8 image rows of a whole split, in official order, whatever the pickling:
# (data set, split, number of images) -> hash (../shared/data/README.md)
CIFAR_CONTENT_SHA256 = {
    ("cifar10", "train", 50_000): "9d5c2eddadb0deff02c14c350c0385aab7b1d5ff1edfeb4997c8dc8644960111",
    ("cifar10", "test", 1_000): "f167149948fc8fe0b9a76ba86421e987817f98b63761ba9415c5d42664d51f03",
}
# byte counts of the decompressed official MNIST files
MNIST_SIZES = {
    "train-images-idx3-ubyte": 47_040_016,
    "train-labels-idx1-ubyte": 60_008,
    "t10k-images-idx3-ubyte": 7_840_016,
    "t10k-labels-idx1-ubyte": 10_008,
}
CIFAR = {
    "cifar10": {
        "url": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "md5": "c58f30108f718f92721af3b95e74349a",
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "label_key": "labels",
        "classes": 10,
    },
    "cifar100": {
        "url": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "md5": "eb9058c3a382ffc7106e4002c42a8d85",
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "label_key": "fine_labels",
        "classes": 100,
    },
}


class DataError(RuntimeError):
    """A data set is missing, unreadable or failed its checksum; the message says what to do."""


@dataclass(frozen=True)
class ImageData:
    """One data set in memory: uint8 images ``(N, C, H, W)`` and int64 labels, official order."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    root: Path

    @property
    def n_test_official(self) -> int:
        return OFFICIAL_TEST_SIZE

    def describe_test(self, n_used: int) -> str:
        """The sentence a run states about its test images, e.g. "test = first 1,000 images"."""
        have = len(self.x_test)
        if n_used == OFFICIAL_TEST_SIZE == have:
            return f"test = all {OFFICIAL_TEST_SIZE:,} official test images"
        note = f"test = first {n_used:,} images (of the {OFFICIAL_TEST_SIZE:,} official test images"
        if have < OFFICIAL_TEST_SIZE:
            note += f"; the data copy holds only the first {have:,}"
        return note + ")"


def default_data_dir() -> Path:
    """``$OTFLOW_DATA`` if set, else ``$XDG_CACHE_HOME/otflow`` (``~/.cache/otflow``)."""
    env = os.environ.get("OTFLOW_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME")
    return (Path(cache).expanduser() if cache else Path.home() / ".cache") / "otflow"


def resolve_data_dir(data_dir=None) -> Path:
    return Path(data_dir).expanduser() if data_dir else default_data_dir()


# ----------------------------------------------------------------------------------------------
# download


def _manual_hint(name: str, root: Path) -> str:
    if name == "mnist":
        files = ", ".join(f"{f}.gz" for f in MNIST_FILES)
        return (
            f"Put the MNIST files ({files}; gzip-compressed or not) from {MNIST_URLS[0]} into "
            f"{root / 'mnist'}/ by hand, or pass --data-dir (or set OTFLOW_DATA) to a folder holding mnist/."
        )
    spec = CIFAR[name]
    return (
        f"Download {spec['url']} (md5 {spec['md5']}) by hand and unpack it so that "
        f"{root / name / spec['folder']}/ holds {', '.join(spec['train'] + spec['test'])}, "
        f"or pass --data-dir (or set OTFLOW_DATA) to a folder holding {name}/{spec['folder']}/."
    )


def _fetch(url: str, dest_dir: Path, *, progress: bool = True) -> tuple[Path, str]:
    """Download ``url`` to a temporary file in ``dest_dir``; return (path, md5). Removes it on error."""
    from tqdm.auto import tqdm

    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file(dest_dir, prefix=".download.")
    md5 = hashlib.md5()
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=60) as resp:
            total = resp.headers.get("Content-Length") if hasattr(resp, "headers") else None
            bar = tqdm(
                total=int(total) if total else None,
                unit="B",
                unit_scale=True,
                desc=url.rsplit("/", 1)[-1],
                disable=not progress,
            )
            with bar:
                while True:
                    chunk = resp.read(1 << 20)
                    if not chunk:
                        break
                    f.write(chunk)
                    md5.update(chunk)
                    bar.update(len(chunk))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp), md5.hexdigest()


def _download_mnist(root: Path, missing: list[str], progress: bool) -> None:
    folder = root / "mnist"
    for name in missing:
        errors = []
        for base in MNIST_URLS:
            try:
                tmp, _ = _fetch(base + name + ".gz", folder, progress=progress)
            except Exception as err:  # network errors of any kind: try the next mirror
                errors.append(f"{base}: {err}")
                continue
            try:
                raw = gzip.decompress(tmp.read_bytes())
            except (OSError, EOFError) as err:
                tmp.unlink(missing_ok=True)
                errors.append(f"{base}: not a gzip file ({err})")
                continue
            got = hashlib.md5(raw).hexdigest()
            if got != MNIST_FILES[name]:
                tmp.unlink(missing_ok=True)
                errors.append(f"{base}: md5 of {name} is {got}, expected {MNIST_FILES[name]}")
                continue
            os.replace(tmp, folder / (name + ".gz"))
            break
        else:
            raise DataError(f"could not download MNIST file {name}: {'; '.join(errors)}. {_manual_hint('mnist', root)}")


def _safe_members(tar: tarfile.TarFile, prefix: str):
    for m in tar.getmembers():
        p = Path(m.name)
        if p.is_absolute() or ".." in p.parts or not (m.isfile() or m.isdir()) or p.parts[0] != prefix:
            raise DataError(f"unexpected entry {m.name!r} in the archive")
        yield m


def _download_cifar(name: str, root: Path, progress: bool) -> None:
    spec = CIFAR[name]
    folder = root / name
    try:
        tmp, got = _fetch(spec["url"], folder, progress=progress)
    except Exception as err:
        raise DataError(f"could not download {name} from {spec['url']}: {err}. {_manual_hint(name, root)}") from None
    try:
        if got != spec["md5"]:
            raise DataError(
                f"the download of {name} is corrupt: md5 {got}, expected {spec['md5']} (file removed). "
                f"{_manual_hint(name, root)}"
            )
        staging = Path(tempfile.mkdtemp(dir=folder, prefix=".extract."))
        try:
            with tarfile.open(tmp, "r:gz") as tar:
                tar.extractall(staging, members=list(_safe_members(tar, spec["folder"])))
            os.replace(staging / spec["folder"], folder / spec["folder"])
        except (tarfile.TarError, OSError, EOFError) as err:
            raise DataError(f"could not unpack {name}: {err}. {_manual_hint(name, root)}") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        tmp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------------
# readers


_HASHES: dict[tuple, str] = {}  # (what, path, size, mtime_ns) -> hex digest: hash each file once per process


def _cached_hash(path: Path, what: str, compute) -> str:
    st = path.stat()
    key = (what, str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        _HASHES[key] = compute()
    return _HASHES[key]


def _file_md5(path: Path) -> str:
    def compute():
        h = hashlib.md5()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        return h.hexdigest()

    return _cached_hash(path, "md5", compute)


def _bad_file(path: Path, problem: str, name: str, root: Path | None = None) -> DataError:
    """The error for a corrupt file on disk: what is wrong, and how to get a good copy.

    ``root`` is the data directory, by default read off the official layout of ``path``.
    """
    if root is None:
        depth = 2 if name in CIFAR else 1
        root = path.parents[depth] if len(path.parents) > depth else path.parent
    where = _manual_hint(name, root)
    return DataError(
        f"{path}: {problem}. The file is truncated or corrupt: delete it and run again to download it afresh "
        f"(with downloads on), or: {where}"
    )


def _read_maybe_gz(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix != ".gz":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:
        raise _bad_file(path, f"unreadable gzip stream ({type(err).__name__}: {err})", "mnist") from None


def _mnist_path(folder: Path, name: str) -> Path | None:
    for cand in (folder / name, folder / (name + ".gz")):
        if cand.is_file():
            return cand
    return None


def read_idx(path) -> np.ndarray:
    """Read an IDX file (gzip or not): magic 2051 images ``(n, rows, cols)``, 2049 labels ``(n,)``."""
    path = Path(path)
    raw = _read_maybe_gz(path)
    if len(raw) < 8:
        raise _bad_file(path, f"too short for an IDX file ({len(raw)} bytes)", "mnist")
    magic = int.from_bytes(raw[0:4], "big")
    if magic == 2049:
        n = int.from_bytes(raw[4:8], "big")
        arr = np.frombuffer(raw, dtype=np.uint8, offset=8)
        shape = (n,)
    elif magic == 2051:
        n, rows, cols = (int.from_bytes(raw[i : i + 4], "big") for i in (4, 8, 12))
        arr = np.frombuffer(raw, dtype=np.uint8, offset=16)
        shape = (n, rows, cols)
    else:
        raise _bad_file(path, f"not an IDX label/image file (magic {magic})", "mnist")
    if arr.size != int(np.prod(shape)):
        raise _bad_file(path, f"the header says {shape} but the file holds {arr.size} values (truncated)", "mnist")
    name = path.name.removesuffix(".gz")
    if len(raw) == MNIST_SIZES.get(name):  # the official file: its md5 is known
        got = _cached_hash(path, "mnist-md5", lambda: hashlib.md5(raw).hexdigest())
        if got != MNIST_FILES[name]:
            raise _bad_file(path, f"md5 of the decompressed file is {got}, expected {MNIST_FILES[name]}", "mnist")
    return arr.reshape(shape).copy()


def _load_mnist(root: Path) -> ImageData:
    folder = root / "mnist"
    arrays = {}
    for name in MNIST_FILES:
        path = _mnist_path(folder, name)
        arrays[name] = read_idx(path)
    xtr, ytr = arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"]
    xte, yte = arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"]
    for x, y, what in ((xtr, ytr, "train"), (xte, yte, "test")):
        if len(x) != len(y):
            raise DataError(f"MNIST {what}: {len(x)} images but {len(y)} labels")
    return ImageData(
        name="mnist",
        x_train=torch.from_numpy(xtr[:, None]),
        y_train=torch.from_numpy(ytr.astype(np.int64)),
        x_test=torch.from_numpy(xte[:, None]),
        y_test=torch.from_numpy(yte.astype(np.int64)),
        n_classes=10,
        root=root,
    )


def read_cifar_batch(path, label_key: str = "labels") -> tuple[np.ndarray, np.ndarray]:
    """Read one official CIFAR pickle batch: ``(images uint8 (N, 3, 32, 32), labels int64 (N,))``.

    Accepts bytes keys (``pickle.load(f, encoding="bytes")``, the official files under Python 3) and
    str keys; reads however many images the batch holds.
    """
    path = Path(path)
    name = "cifar100" if label_key == "fine_labels" else "cifar10"
    with open(path, "rb") as f:
        try:
            d = pickle.load(f, encoding="bytes")
        except Exception as err:
            raise _bad_file(path, f"not a CIFAR pickle batch ({type(err).__name__}: {err})", name) from None
    if not isinstance(d, dict):
        raise _bad_file(path, f"expected a dict, got {type(d).__name__}", name)
    d = {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in d.items()}
    if "data" not in d or label_key not in d:
        raise _bad_file(path, f"expected keys 'data' and {label_key!r}, got {sorted(d)}", name)
    data = d["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        what = getattr(data, "dtype", type(data).__name__)
        raise _bad_file(path, f"expected 'data' as a uint8 array, got {what}", name)
    labels = np.asarray(d[label_key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise _bad_file(path, f"expected data (N, 3072) and N labels, got {data.shape} and {labels.shape}", name)
    return data.reshape(-1, 3, 32, 32), labels


def _check_cifar_split(name: str, split: str, paths: list[Path], images: np.ndarray) -> None:
    """Files with the official md5 are trusted; otherwise the pixels must hash to the known content."""
    official = CIFAR_FILE_MD5[name]
    if all(_file_md5(p) == official.get(p.name) for p in paths):
        return
    expected = CIFAR_CONTENT_SHA256.get((name, split, len(images)))
    if expected is None:
        return  # neither official files nor a known subset: the layout checks are all we can do
    key = ("sha256-" + split, *((str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths))
    if key not in _HASHES:
        _HASHES[key] = hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()
    if _HASHES[key] != expected:
        files = ", ".join(p.name for p in paths)
        raise _bad_file(
            paths[0].parent,
            f"the {len(images):,} {split} images of {name} ({files}) hash to {_HASHES[key]}, expected {expected}; "
            "one of these files is corrupt (a file with the official md5 is always accepted)",
            name,
            root=paths[0].parents[2],
        )


def _load_cifar(name: str, root: Path) -> ImageData:
    spec = CIFAR[name]
    folder = root / name / spec["folder"]
    parts = {}
    for split in ("train", "test"):
        paths = [folder / b for b in spec[split]]
        xs, ys = zip(*(read_cifar_batch(p, spec["label_key"]) for p in paths))
        parts[split] = (np.concatenate(xs), np.concatenate(ys))
        _check_cifar_split(name, split, paths, parts[split][0])
    for split, (_, y) in parts.items():
        if y.min() < 0 or y.max() >= spec["classes"]:
            raise DataError(f"{name} {split}: labels outside 0..{spec['classes'] - 1}")
    return ImageData(
        name=name,
        x_train=torch.from_numpy(parts["train"][0]),
        y_train=torch.from_numpy(parts["train"][1]),
        x_test=torch.from_numpy(parts["test"][0]),
        y_test=torch.from_numpy(parts["test"][1]),
        n_classes=spec["classes"],
        root=root,
    )


def _missing(name: str, root: Path) -> list[str]:
    if name == "mnist":
        return [f for f in MNIST_FILES if _mnist_path(root / "mnist", f) is None]
    spec = CIFAR[name]
    folder = root / name / spec["folder"]
    return [b for b in spec["train"] + spec["test"] if not (folder / b).is_file()]


def load_dataset(name: str, data_dir=None, *, download: bool = True, progress: bool = True) -> ImageData:
    """Load ``name`` (``mnist``, ``cifar10``, ``cifar100``) from ``data_dir`` (see module docstring).

    Missing files are downloaded and checked when ``download`` is true; otherwise, and when the
    download fails, a :class:`DataError` says where to put the files by hand.
    """
    if name not in DATASETS:
        raise ValueError(f"dataset: expected one of {DATASETS}, got {name!r}")
    root = resolve_data_dir(data_dir)
    missing = _missing(name, root)
    if missing:
        if not download:
            raise DataError(
                f"{name} not found in {root} (missing: {', '.join(missing)}; downloads are off). "
                f"{_manual_hint(name, root)}"
            )
        if name == "mnist":
            _download_mnist(root, missing, progress)
        else:
            _download_cifar(name, root, progress)
        missing = _missing(name, root)
        if missing:
            raise DataError(f"{name}: still missing {', '.join(missing)} after download. {_manual_hint(name, root)}")
    return _load_mnist(root) if name == "mnist" else _load_cifar(name, root)
