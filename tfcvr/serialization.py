"""The one registration of tfcvr's Keras objects for `.keras` saving, and
the configs that follow from their constructors."""

import inspect

import keras

# Serialized names are `tfcvr>ClassName`: saved files depend on both parts.
PACKAGE = "tfcvr"


def register_serializable(cls):
    """Class decorator: registers a layer or loss for `.keras` saving as
    `tfcvr>ClassName`. Estimators and backbones get it from
    `register_estimator` and `register_backbone`."""
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)


def subclass_config(instance, base, exclude=()):
    """`{name: instance.<name>}` for every constructor argument that the
    subclasses of `base` on `instance`'s MRO add (`base`'s own and the
    names in `exclude` left out), so a subclass's `get_config` follows from
    its constructor (the style's rule: one attribute per argument)."""
    names = []
    for klass in reversed(type(instance).__mro__):
        init = klass.__dict__.get("__init__")
        if klass is base or init is None or not issubclass(klass, base):
            continue
        for param in inspect.signature(init).parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            if param.name not in ("self", *exclude, *names):
                names.append(param.name)
    config = {}
    for name in names:
        if not hasattr(instance, name):
            raise TypeError(
                f"{type(instance).__name__} must store its constructor "
                f"argument `{name}` as `self.{name}`."
            )
        config[name] = getattr(instance, name)
    return config
