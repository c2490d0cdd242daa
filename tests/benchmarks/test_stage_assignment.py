"""benchmarks/stage_assignment.py: a real stage's (x⁰, xᴸ) from a run's checkpoint, solved by otflow and a peer."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import stage_assignment  # noqa: E402


def test_a_checkpointed_stage_is_solved_alike_by_otflow_and_scipy(tmp_path, real_data_dir, capsys):
    import torch

    from image_experiments.models import build_model
    from image_experiments.run import profile_config

    cfg = profile_config("smoke", "cifar10", "resnet", 1, data_dir=str(real_data_dir), width=4, bn_recalib_n=64)
    net = build_model("cifar10", "resnet", 1, n_classes=10, width=cfg.width, depth=cfg.depth, head=cfg.head)
    with torch.no_grad():  # weights unlike the untrained twin's, as training would leave them
        for p in net.parameters():
            p.mul_(1.5).add_(0.01)
    rdir = tmp_path / "run"
    rdir.mkdir()
    torch.save({"model": net.state_dict(), "config": cfg.to_dict()}, rdir / "checkpoint.pt")
    out = tmp_path / "rows.json"
    argv = ["--run", str(rdir), "--data-dir", str(real_data_dir), "--n", "200", "120", "--peers", "scipy"]
    argv += ["--out", str(out)]
    assert stage_assignment.main(argv) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["case"].split(", ")[-1] for r in rows] == ["trained", "untrained"] * 2
    assert [r["n"] for r in rows] == [120, 120, 200, 200]  # sizes in order, each on both nets
    for r in rows:
        assert r["scipy"]["rel_cost_diff"] <= 1e-12
    assert rows[2]["otflow"]["cost"] != rows[3]["otflow"]["cost"]  # the checkpoint's weights were loaded
    capsys.readouterr()
    assert stage_assignment.main(["--markdown", str(out)]) == 0
    assert "stage 1" in capsys.readouterr().out


def test_a_folder_without_a_checkpoint_is_refused(tmp_path, capsys):
    assert stage_assignment.main(["--run", str(tmp_path)]) == 2
    assert "checkpoint.pt" in capsys.readouterr().err
