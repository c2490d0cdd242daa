"""Run-folder helpers: atomic writes, provenance and seeding."""

import json

import numpy as np
import pytest

from otflow import runs


def test_write_json_is_atomic_and_converts_numpy(tmp_path, monkeypatch):
    p = runs.write_json(tmp_path / "a" / "m.json", {"x": np.float32(1.5), "v": np.arange(3)})
    assert json.loads(p.read_text()) == {"x": 1.5, "v": [0, 1, 2]}

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(runs.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        runs.write_json(p, {"x": 2})
    assert json.loads(p.read_text())["x"] == 1.5  # the old file is intact
    assert [f.name for f in p.parent.iterdir()] == ["m.json"]  # no temporary left behind


def test_save_npz_roundtrip(tmp_path):
    p = runs.save_npz(tmp_path / "a.npz", t=np.ones((2, 3)))
    np.testing.assert_array_equal(np.load(p)["t"], np.ones((2, 3)))


def test_environment_info_has_provenance():
    info = runs.environment_info(device="cpu")
    assert info["packages"]["numpy"] == np.__version__
    assert info["device"] == "cpu"
    assert "git_revision" in info and "python" in info


def test_seed_everything():
    torch = pytest.importorskip("torch")
    g = runs.seed_everything(3)
    a = torch.rand(2)
    runs.seed_everything(3)
    assert torch.equal(a, torch.rand(2))
    assert g.integers(10**9) == np.random.default_rng(3).integers(10**9)
    with pytest.raises(ValueError, match="seed"):
        runs.seed_everything(-1)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_get_the_permissions_of_a_normal_file(tmp_path, umask):
    """mkstemp's 0600 must not survive the rename: run folders on shared storage stay readable."""
    import os

    old = os.umask(umask)
    try:
        p = runs.write_text(tmp_path / f"r{umask:o}.txt", "x")
        plain = tmp_path / f"plain{umask:o}.txt"
        plain.write_text("x")
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o666 & ~umask


def test_prepare_run_folder_needs_resume_and_the_same_config(tmp_path):
    import json

    from otflow.runs import prepare_run_folder

    out = tmp_path / "run"
    prepare_run_folder(out, dict, {"a": 1}, resume=False)  # a new folder is fine
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"a": 1, "threads": 4}))
    with pytest.raises(ValueError, match="--resume"):
        prepare_run_folder(out, dict, {"a": 1}, resume=False)
    prepare_run_folder(out, dict, {"a": 1, "threads": 2}, resume=True, skip=("threads",))
    with pytest.raises(ValueError, match=r"different config \(a\)"):
        prepare_run_folder(out, dict, {"a": 2}, resume=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("x")
    with pytest.raises(ValueError, match="not a run folder"):
        prepare_run_folder(tmp_path / "other", dict, {"a": 1}, resume=True)


def test_git_revision_of_a_copy_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("OTFLOW_GIT_REVISION", "0123abcd")  # wins over a (possibly stale) .git
    assert runs._git_revision() == "0123abcd-copy"

    def no_git(*a, **k):
        raise OSError("git: not found")

    monkeypatch.setattr(runs.subprocess, "run", no_git)
    assert runs._git_revision() == "0123abcd-copy"
    monkeypatch.delenv("OTFLOW_GIT_REVISION")
    assert runs._git_revision() is None
