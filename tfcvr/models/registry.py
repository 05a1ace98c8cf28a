from tfcvr.serialization import register_serializable

ESTIMATORS = {}


def register_estimator(name, paper):
    """Class decorator: registers a `CVRModel` under `name` for the
    registry, `tfcvr train --model NAME` and `.keras` saving.

    Args:
        name: str. Registry name, e.g. `"esmm"`.
        paper: str. Citation shown by `tfcvr models`.
    """

    def decorator(cls):
        if name in ESTIMATORS and ESTIMATORS[name] is not cls:
            raise ValueError(f"Estimator name {name!r} is already registered.")
        cls.estimator_name = name
        cls.paper = paper
        ESTIMATORS[name] = cls
        return register_serializable(cls)

    return decorator


def get_estimator(name):
    """The estimator class registered under `name`."""
    from tfcvr import models  # noqa: F401  (imports every estimator)

    if name not in ESTIMATORS:
        raise ValueError(
            f"Unknown model {name!r}. Registered: {', '.join(sorted(ESTIMATORS))}"
        )
    return ESTIMATORS[name]


def estimator_names():
    """Every registered estimator name, sorted."""
    from tfcvr import models  # noqa: F401  (imports every estimator)

    return sorted(ESTIMATORS)


def build_estimator(name, schema, params=None):
    """The registered estimator `name` on `schema` with constructor params;
    a wrong parameter name is a one-line ValueError."""
    cls = get_estimator(name)
    try:
        return cls(schema=schema, **(params or {}))
    except TypeError as e:
        raise ValueError(f"Bad parameters for model {name!r}: {e}") from None

