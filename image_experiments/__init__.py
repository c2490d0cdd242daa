"""Image experiments: MNIST and CIFAR-10/100 networks of SPEC Table 1 measured as transport maps.

``python -m image_experiments.run --dataset cifar10 --arch resnet --k 1 --wd 1e-2 --profile cpu``
trains one configuration and writes a run folder (docs/images.md); ``run(cfg)`` does the same from
Python and returns the results without plotting; :mod:`image_experiments.figures` draws a saved run.
Uses only otflow's public API.

The names below are imported lazily, so that ``python -m image_experiments.run`` does not import
its own module twice.
"""

from importlib import import_module

_EXPORTS = {
    "Config": "image_experiments.run",
    "RunError": "image_experiments.run",
    "profile_config": "image_experiments.run",
    "run": "image_experiments.run",
    "run_dir_for": "image_experiments.run",
    "DataError": "image_experiments.data",
    "ImageData": "image_experiments.data",
    "load_dataset": "image_experiments.data",
    "build_model": "image_experiments.models",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'image_experiments' has no attribute {name!r}")
