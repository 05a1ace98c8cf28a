"""The estimator zoo. Every module in `tfcvr/models/estimators/` is imported
here, so adding an estimator is adding one file with a
`@register_estimator` class; it then appears as `tfcvr.models.<Class>`, in
`tfcvr models` and in `tfcvr train --model NAME`."""

import importlib
import pkgutil

from tfcvr.models import estimators as _estimators
from tfcvr.models.cvr_model import CVRModel
from tfcvr.models.registry import ESTIMATORS
from tfcvr.models.registry import build_estimator
from tfcvr.models.registry import estimator_names
from tfcvr.models.registry import get_estimator
from tfcvr.models.registry import register_estimator

for _module in sorted(pkgutil.iter_modules(_estimators.__path__), key=lambda m: m.name):
    importlib.import_module(f"{_estimators.__name__}.{_module.name}")

for _cls in ESTIMATORS.values():
    globals()[_cls.__name__] = _cls

__all__ = [
    "CVRModel",
    "ESTIMATORS",
    "build_estimator",
    "estimator_names",
    "get_estimator",
    "register_estimator",
] + sorted(cls.__name__ for cls in ESTIMATORS.values())
