"""2-D studies of otflow: residual vs plain nets judged against exact optimal transport.

One module per experiment (STYLE 15): :mod:`toy_experiments.gaussians` is the main study
(``python -m toy_experiments.gaussians``); :mod:`toy_experiments.nets`, :mod:`~toy_experiments.problems`,
:mod:`~toy_experiments.train`, :mod:`~toy_experiments.evaluation`, :mod:`~toy_experiments.summary` and
:mod:`~toy_experiments.plots` are its parts. Only otflow's public API is used.
"""
