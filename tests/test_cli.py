"""One command-line grammar (docs/cli.md): every command has the common options and help on each option."""

from __future__ import annotations

import pytest


def _parsers():
    from image_experiments.report.cli import build_parser as report
    from image_experiments.run import build_parser as run
    from image_experiments.sweep import build_parser as image_sweep
    from toy_experiments.calibration import _parser as calibration
    from toy_experiments.gaussians import _parser as gaussians
    from toy_experiments.sweep import build_parser as toy_sweep

    return {
        "toy_experiments.gaussians": gaussians(),
        "toy_experiments.calibration": calibration(),
        "toy_experiments.sweep": toy_sweep(),
        "image_experiments.run": run(),
        "image_experiments.sweep": image_sweep(),
        "image_experiments.report": report(),
    }


@pytest.mark.parametrize("name", list(_parsers()))
def test_every_command_has_the_common_options_and_help_on_every_option(name):
    parser = _parsers()[name]
    actions = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    flags = {o for a in actions for o in a.option_strings}
    assert {"--out", "--resume", "--progress", "--no-progress", "--figures", "--no-figures"} <= flags, name
    missing = [a.option_strings[0] for a in actions if not (a.help and a.help.strip())]
    assert not missing, f"{name}: options without help text: {missing}"


def test_graceful_stop_asks_first_and_interrupts_on_the_second_ctrl_c():
    import os
    import signal

    from otflow.experiment.cli import graceful_stop

    before = signal.getsignal(signal.SIGINT)
    with graceful_stop() as stop:
        assert stop() is False
        os.kill(os.getpid(), signal.SIGINT)
        assert stop() is True  # the first Ctrl-C only asks
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before  # restored
