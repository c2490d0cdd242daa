"""otflow/__init__.py: the public surface, and an import that stays light (no torch, POT or numba)."""

import subprocess
import sys
import textwrap

import otflow

HEAVY = ("torch", "ot", "numba", "scipy.spatial")


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_import_otflow_loads_neither_torch_nor_pot_nor_numba():
    _run("import otflow, sys; assert 'torch' not in sys.modules and 'ot' not in sys.modules")
    loaded = _run(f"import otflow, sys; print([m for m in {HEAVY!r} if m in sys.modules])")
    assert loaded.strip() == "[]"


def test_heavy_dependencies_load_where_used_in_a_fresh_process():
    """After the light import every path still works: the solver loads numba, record_tracks torch,
    the network simplex POT."""
    _run(
        """
        import sys
        import numpy as np
        import otflow

        x = np.arange(6.0).reshape(3, 2)
        assert list(otflow.solve_assignment(x, x[::-1]).sigma) == [2, 1, 0]
        assert "numba" in sys.modules

        import torch
        model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
        tracks = otflow.record_tracks(model, x, list(model))
        assert tracks.shape == (3, 3, 2), tracks.shape
        np.testing.assert_allclose(tracks[:, 0], x, rtol=1e-6)
        """
    )


def test_all_lists_exactly_the_public_names():
    assert sorted(otflow.__all__) == sorted(set(otflow.__all__))
    for name in otflow.__all__:
        assert not name.startswith("_")
        assert hasattr(otflow, name), name


def test_public_names_load_on_first_use_and_unknown_names_raise():
    """``import otflow`` loads none of its submodules (PEP 562); each public name resolves to the object
    its module defines, ``dir`` lists them all, and a misspelt name is an AttributeError."""
    assert _run("import otflow, sys; print(sorted(m for m in sys.modules if m.startswith('otflow.')))").strip() == "[]"
    import importlib

    for name in otflow.__all__:
        assert getattr(otflow, name) is getattr(importlib.import_module(otflow._EXPORTS[name]), name)
    assert set(otflow.__all__) == set(otflow._EXPORTS) and set(otflow.__all__) <= set(dir(otflow))
    try:
        otflow.solve_assignmnt  # noqa: B018
    except AttributeError as err:
        assert "solve_assignmnt" in str(err)
    else:
        raise AssertionError("a misspelt name did not raise")
