"""tfcvr: entire-space post-click conversion-rate estimation in Keras 3.

The packages, in the order data flows through them (each imports only from
the ones before it): `features`; `simulation`, `data`, `layers`, `losses`,
`evaluation`; `models`; `training`; `export`; `serving`; `testing`.
"""

import importlib

__version__ = "0.1.0"

# Imported on first use (`tfcvr.models.ESMM`), not by `import tfcvr`:
# `tfcvr --help` must start fast, and `features`, `simulation`,
# `evaluation` and the serving client must work without TensorFlow, which
# the Keras packages bring in.
_PACKAGES = (
    "features",
    "simulation",
    "data",
    "layers",
    "losses",
    "evaluation",
    "models",
    "training",
    "export",
    "serving",
    "testing",
)

__all__ = ["__version__", *_PACKAGES]


def __getattr__(name):
    if name in _PACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_PACKAGES))
