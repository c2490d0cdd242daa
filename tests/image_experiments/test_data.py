"""image_experiments.data: real MNIST/CIFAR-10, the official CIFAR format, downloads and their failures."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import shutil
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from image_experiments import data as D
from image_experiments.data import DataError, load_dataset


def test_mnist_real_files(real_data_dir):
    d = load_dataset("mnist", real_data_dir, download=False)
    assert tuple(d.x_train.shape) == (60_000, 1, 28, 28) and tuple(d.x_test.shape) == (10_000, 1, 28, 28)
    counts = np.bincount(d.y_train.numpy(), minlength=10)
    np.testing.assert_array_equal(counts, [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    assert d.describe_test(10_000) == "test = all 10,000 official test images"


def test_cifar10_real_files(real_data_dir):
    d = load_dataset("cifar10", real_data_dir, download=False)
    assert tuple(d.x_train.shape) == (50_000, 3, 32, 32)
    np.testing.assert_array_equal(np.bincount(d.y_train.numpy()), [5000] * 10)
    np.testing.assert_array_equal(d.y_train[:20].numpy(), [6, 9, 9, 4, 1, 1, 2, 7, 8, 3, 4, 7, 7, 2, 9, 9, 9, 3, 2, 6])
    # the shared copy holds only the first 1,000 test images; the loader reads what is there
    assert len(d.x_test) == 1000
    np.testing.assert_array_equal(d.y_test[:10].numpy(), [3, 8, 8, 0, 6, 6, 1, 6, 3, 1])
    # README's hash is of the official rows (R plane, G plane, B plane), i.e. the (N, 3, 32, 32) layout
    assert hashlib.sha256(d.x_test.numpy().tobytes()).hexdigest() == (
        "f167149948fc8fe0b9a76ba86421e987817f98b63761ba9415c5d42664d51f03"
    )
    assert "first 1,000" in d.describe_test(1000)


def _official_batch(path: Path, rows: np.ndarray, labels, label_key: str, str_keys: bool) -> None:
    """Write a batch the way the official files are made: a dict of N×3072 rows (R, G, B planes)."""
    d = {"batch_label": "test batch", "data": rows, label_key: list(labels), "filenames": ["x.png"] * len(rows)}
    if label_key == "fine_labels":
        d["coarse_labels"] = [v // 5 for v in labels]
    if not str_keys:
        d = {k.encode(): (v.encode() if isinstance(v, str) else v) for k, v in d.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(d, f, protocol=2)


def _fake_cifar(root: Path, name: str, *, str_keys: bool = False, sizes=(7, 5, 3, 4, 6), n_test: int = 9):
    spec = D.CIFAR[name]
    rng = np.random.default_rng(0)
    folder = root / name / spec["folder"]
    train_rows, train_labels = [], []
    for batch, n in zip(spec["train"], sizes):
        rows = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, spec["classes"], n).tolist()
        _official_batch(folder / batch, rows, labels, spec["label_key"], str_keys)
        train_rows.append(rows)
        train_labels += labels
    rows = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    labels = rng.integers(0, spec["classes"], n_test).tolist()
    _official_batch(folder / spec["test"][0], rows, labels, spec["label_key"], str_keys)
    return np.concatenate(train_rows), np.array(train_labels), rows, np.array(labels)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
@pytest.mark.parametrize("str_keys", [False, True])
def test_cifar_loader_reads_official_format(tmp_path, name, str_keys):
    tr_rows, tr_labels, te_rows, te_labels = _fake_cifar(tmp_path, name, str_keys=str_keys)
    d = load_dataset(name, tmp_path, download=False)
    assert d.n_classes == (10 if name == "cifar10" else 100)
    assert len(d.x_train) == len(tr_rows) and len(d.x_test) == len(te_rows) == 9
    np.testing.assert_array_equal(d.y_train.numpy(), tr_labels)
    np.testing.assert_array_equal(d.y_test.numpy(), te_labels)
    # pixel (c, r, col) of image i is row[i, 1024 c + 32 r + col]
    i, c, r, col = 4, 2, 5, 31
    assert d.x_train[i, c, r, col] == tr_rows[i, 1024 * c + 32 * r + col]
    assert d.x_test[8, 0, 31, 0] == te_rows[8, 32 * 31]
    assert "first 9 images" in d.describe_test(9)


def test_cifar_corrupt_batch_is_reported(tmp_path):
    _fake_cifar(tmp_path, "cifar10")
    (tmp_path / "cifar10" / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="data_batch_3"):
        load_dataset("cifar10", tmp_path, download=False)


@pytest.mark.parametrize("name", ["mnist", "cifar10", "cifar100"])
def test_missing_dataset_message(tmp_path, name):
    with pytest.raises(DataError) as info:
        load_dataset(name, tmp_path, download=False)
    msg = str(info.value)
    assert "not found" in msg and str(tmp_path / name) in msg and "by hand" in msg and "OTFLOW_DATA" in msg


def test_data_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("OTFLOW_DATA", str(tmp_path))
    assert D.resolve_data_dir(None) == tmp_path
    monkeypatch.delenv("OTFLOW_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert D.resolve_data_dir(None) == tmp_path / "cache" / "otflow"


class _Resp(io.BytesIO):
    def __init__(self, payload: bytes):
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _serve(monkeypatch, table: dict):
    """Replace urlopen by a local fake: url -> bytes, or an exception to raise."""
    seen = []

    def fake_urlopen(url, timeout=None):
        seen.append(url)
        value = table.get(url, urllib.error.URLError("no route to host (fake)"))
        if isinstance(value, Exception):
            raise value
        return _Resp(value)

    monkeypatch.setattr(D.urllib.request, "urlopen", fake_urlopen)
    return seen


def _cifar_tarball(tmp_path: Path) -> bytes:
    src = tmp_path / "src"
    _fake_cifar(src, "cifar10", sizes=(2, 2, 2, 2, 2), n_test=3)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(src / "cifar10" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return buf.getvalue()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def test_cifar_download_checked_and_unpacked(tmp_path, monkeypatch):
    payload = _cifar_tarball(tmp_path)
    monkeypatch.setitem(D.CIFAR["cifar10"], "md5", hashlib.md5(payload).hexdigest())
    seen = _serve(monkeypatch, {D.CIFAR["cifar10"]["url"]: payload})
    root = tmp_path / "data"
    d = load_dataset("cifar10", root, progress=False)
    assert seen == [D.CIFAR["cifar10"]["url"]]
    assert len(d.x_train) == 10 and len(d.x_test) == 3
    assert _leftovers(root / "cifar10") == sorted(["cifar-10-batches-py", *D.CIFAR["cifar10"]["train"], "test_batch"])


def test_cifar_corrupt_download_leaves_nothing(tmp_path, monkeypatch):
    payload = _cifar_tarball(tmp_path)  # md5 differs from the official one
    _serve(monkeypatch, {D.CIFAR["cifar10"]["url"]: payload})
    root = tmp_path / "data"
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", root, progress=False)
    msg = str(info.value)
    assert "corrupt" in msg and "c58f30108f718f92721af3b95e74349a" in msg and "by hand" in msg
    assert _leftovers(root / "cifar10") == []


def test_failed_download_leaves_nothing(tmp_path, monkeypatch):
    _serve(monkeypatch, {})
    root = tmp_path / "data"
    for name in ("cifar100", "mnist"):
        with pytest.raises(DataError, match="could not download.*by hand"):
            load_dataset(name, root, progress=False)
        assert _leftovers(root / name) == []


def _idx(magic: int, arr: np.ndarray) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def test_mnist_download_checks_decompressed_md5(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    raw = {
        "train-images-idx3-ubyte": _idx(2051, rng.integers(0, 256, (5, 28, 28))),
        "train-labels-idx1-ubyte": _idx(2049, np.arange(5)),
        "t10k-images-idx3-ubyte": _idx(2051, rng.integers(0, 256, (3, 28, 28))),
        "t10k-labels-idx1-ubyte": _idx(2049, np.arange(3)),
    }
    for name, blob in raw.items():
        monkeypatch.setitem(D.MNIST_FILES, name, hashlib.md5(blob).hexdigest())
    # first mirror serves a corrupt copy of one file; the second mirror a good one
    first, second = D.MNIST_URLS
    table = {second + n + ".gz": gzip.compress(b) for n, b in raw.items()}
    table[first + "train-labels-idx1-ubyte.gz"] = gzip.compress(raw["train-labels-idx1-ubyte"][:-1] + b"\x09")
    _serve(monkeypatch, table)
    root = tmp_path / "data"
    d = load_dataset("mnist", root, progress=False)
    np.testing.assert_array_equal(d.y_train.numpy(), np.arange(5))
    assert tuple(d.x_test.shape) == (3, 1, 28, 28)
    assert _leftovers(root / "mnist") == sorted(n + ".gz" for n in raw)


def test_mnist_plain_idx_files_are_read(tmp_path):
    rng = np.random.default_rng(2)
    folder = tmp_path / "mnist"
    folder.mkdir()
    imgs = rng.integers(0, 256, (4, 28, 28))
    (folder / "train-images-idx3-ubyte").write_bytes(_idx(2051, imgs))
    (folder / "train-labels-idx1-ubyte").write_bytes(_idx(2049, np.array([3, 1, 4, 1])))
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(2051, imgs[:2])))
    (folder / "t10k-labels-idx1-ubyte").write_bytes(_idx(2049, np.array([5, 9])))
    d = load_dataset("mnist", tmp_path, download=False)
    np.testing.assert_array_equal(d.x_train[:, 0].numpy(), imgs)
    np.testing.assert_array_equal(d.y_test.numpy(), [5, 9])
    (folder / "t10k-labels-idx1-ubyte").write_bytes(_idx(2049, np.array([5, 9]))[:-1])
    with pytest.raises(DataError, match="truncated"):
        load_dataset("mnist", tmp_path, download=False)


# ----- files on disk are checked before use (issue 13)


def _fake_mnist(folder: Path, n_train: int = 4, n_test: int = 2) -> dict:
    rng = np.random.default_rng(3)
    raw = {
        "train-images-idx3-ubyte": _idx(2051, rng.integers(0, 256, (n_train, 28, 28))),
        "train-labels-idx1-ubyte": _idx(2049, rng.integers(0, 10, n_train)),
        "t10k-images-idx3-ubyte": _idx(2051, rng.integers(0, 256, (n_test, 28, 28))),
        "t10k-labels-idx1-ubyte": _idx(2049, rng.integers(0, 10, n_test)),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, blob in raw.items():
        (folder / (name + ".gz")).write_bytes(gzip.compress(blob))
    return raw


def test_truncated_mnist_gz_names_the_file_and_the_fix(tmp_path):
    _fake_mnist(tmp_path / "mnist")
    bad = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-40])
    with pytest.raises(DataError) as info:
        load_dataset("mnist", tmp_path, download=False)
    msg = str(info.value)
    assert str(bad) in msg and "truncated or corrupt" in msg and "delete it" in msg and "by hand" in msg
    assert "EOFError" in msg or "gzip" in msg


def test_mnist_file_of_the_official_size_must_have_the_official_md5(tmp_path):
    raw = _fake_mnist(tmp_path / "mnist")
    labels = _idx(2049, np.zeros(10_000, dtype=np.uint8))  # official size (10,008 bytes), wrong content
    assert len(labels) == D.MNIST_SIZES["t10k-labels-idx1-ubyte"]
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels))
    (tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(_idx(2051, np.zeros((10_000, 28, 28), dtype=np.uint8)))
    )
    with pytest.raises(DataError, match=r"t10k-\w+-idx\d-ubyte.gz: md5 of the decompressed file is .*expected"):
        load_dataset("mnist", tmp_path, download=False)
    assert raw  # a hand-made subset of another size is read on its layout alone (the other tests)


def test_truncated_real_mnist_file(tmp_path, real_data_dir):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for p in (real_data_dir / "mnist").glob("*.gz"):
        (folder / p.name).symlink_to(p)
    bad = folder / "t10k-labels-idx1-ubyte.gz"
    blob = bad.read_bytes()
    bad.unlink()
    bad.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz: unreadable gzip stream.*delete it"):
        load_dataset("mnist", tmp_path, download=False)


def test_truncated_cifar_batch_names_the_file_and_the_fix(tmp_path):
    _fake_cifar(tmp_path, "cifar10")
    bad = tmp_path / "cifar10" / "cifar-10-batches-py" / "data_batch_2"
    bad.write_bytes(bad.read_bytes()[:-100])
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", tmp_path, download=False)
    msg = str(info.value)
    assert str(bad) in msg and "not a CIFAR pickle batch" in msg and "delete it" in msg
    assert "cifar-10-python.tar.gz" in msg  # where to get a good copy


def _flip_a_pixel(path: Path) -> None:
    with open(path, "rb") as f:
        d = pickle.load(f, encoding="bytes")
    d[b"data"] = d[b"data"].copy()
    d[b"data"][0, 0] ^= 0xFF
    with open(path, "wb") as f:
        pickle.dump(d, f, protocol=4)


def test_corrupt_cifar_pixels_are_caught_by_the_content_hash(tmp_path, monkeypatch):
    tr_rows, _, te_rows, _ = _fake_cifar(tmp_path, "cifar10")
    train_hash = hashlib.sha256(tr_rows.tobytes()).hexdigest()
    monkeypatch.setitem(D.CIFAR_CONTENT_SHA256, ("cifar10", "train", len(tr_rows)), train_hash)
    assert len(load_dataset("cifar10", tmp_path, download=False).x_train) == len(tr_rows)
    _flip_a_pixel(tmp_path / "cifar10" / "cifar-10-batches-py" / "data_batch_1")
    with pytest.raises(DataError, match=r"train images of cifar10 \(data_batch_1, .*\) hash to .*delete it"):
        load_dataset("cifar10", tmp_path, download=False)


def test_cifar_files_with_the_official_md5_are_trusted_and_hashed_once(tmp_path, monkeypatch):
    _fake_cifar(tmp_path, "cifar10")
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    for p in folder.iterdir():
        monkeypatch.setitem(D.CIFAR_FILE_MD5["cifar10"], p.name, hashlib.md5(p.read_bytes()).hexdigest())
    monkeypatch.setitem(D.CIFAR_CONTENT_SHA256, ("cifar10", "train", 25), "0" * 64)  # never consulted
    load_dataset("cifar10", tmp_path, download=False)
    n_hashes = len(D._HASHES)
    load_dataset("cifar10", tmp_path, download=False)
    assert len(D._HASHES) == n_hashes  # the second load hashes nothing


def test_corrupt_real_cifar_test_batch(tmp_path, real_data_dir):
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for p in (real_data_dir / "cifar10" / "cifar-10-batches-py").iterdir():
        if p.name != "test_batch":
            (folder / p.name).symlink_to(p)
    shutil.copy(real_data_dir / "cifar10" / "cifar-10-batches-py" / "test_batch", folder / "test_batch")
    _flip_a_pixel(folder / "test_batch")
    with pytest.raises(DataError, match=r"the 1,000 test images of cifar10 \(test_batch\) hash to"):
        load_dataset("cifar10", tmp_path, download=False)
