import inspect

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



def estimator_arguments(name):
    """The constructor argument names of estimator `name` (its own and its
    bases' up to `keras.Model`, `schema` left out): what `get_config`
    lists besides the Keras `name`/`trainable`/`dtype`."""
    cls = get_estimator(name)
    names = []
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        if init is None or getattr(klass, "__module__", "").split(".")[0] != "tfcvr":
            continue
        for param in inspect.signature(init).parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            if param.name not in ("self", "schema", *names):
                names.append(param.name)
    return names
